/* SPDX-License-Identifier: MIT */
/*
 * vfmig-bench: real migrations (vfmig recv + vfmig send processes) over a
 * matrix of state sizes, dirty rates, transports, stream counts and data
 * paths, with peers measured in the same run (iperf3, ib_write_bw, the
 * transport alone, memcpy), where the downtime goes, and peak memory.
 */
#ifndef VB_BENCH_H
#define VB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "model.h"

#define VB_LIST_MAX 16
#define VB_WHY 256

struct vb_opts {
	const char *vfmig; /* path to the vfmig program */
	const char *xport_perf; /* vfm-xport-perf, or NULL */
	const char *out; /* output folder */
	const char *peer; /* NULL: loopback */
	const char *peer_cmd; /* starts vfmig recv on the peer ({ARGS}) */
	const char *secret_file; /* NULL: the bench writes one */
	const char *iperf_server; /* HOST:PORT of a running iperf3 -s */
	uint64_t sizes[VB_LIST_MAX];
	int nsizes;
	uint64_t dirty[VB_LIST_MAX];
	int ndirty;
	char transports[2][8];
	int ntransports;
	unsigned int streams[VB_LIST_MAX];
	int nstreams;
	char datapaths[2][8];
	int ndatapaths;
	uint64_t rss_sizes[4];
	int nrss;
	unsigned int zero_pct; /* --zero: percent of the state in zero pages */
	char formats[2][8]; /* --formats: "2" as negotiated, "1" old dest. */
	int nformats;
	bool no_precopy; /* --no-precopy: sim devices without PRE_COPY */
	int reps;
	int port; /* first port to try; 0: any free one */
	double link_gbps;
	double downtime_limit_ms;
	double peer_s; /* seconds each peer tool runs */
	double timeout_s; /* per migration */
	bool no_peers;
	bool no_plots;
};

/* One migration. */
struct vb_run {
	char transport[8], datapath[8];
	char path_seen[8]; /* the data path the source's log names */
	uint64_t size, dirty;
	unsigned int streams;
	unsigned int zero_pct; /* of the source state's pages */
	unsigned int format; /* 1: the destination loads format 1 only */
	int rep;
	bool ok; /* migrated, digests equal */
	bool skipped;
	char why[VB_WHY]; /* skip or failure reason */
	int send_rc, recv_rc;
	/* From --stats-json and the logs. */
	double downtime_ms, total_ms, precopy_ms, resume_ms;
	double stop_ms, final_ms, commit_ms; /* downtime split */
	bool split_from_stats; /* the agent reported the split itself */
	uint64_t bytes, precopy_bytes, final_bytes;
	unsigned int iterations;
	char decision[24]; /* last iteration's: converged, ... */
	double est_downtime_ms; /* the policy's last estimate */
	double bw_Bps; /* the agent's bandwidth estimate */
	double xfer_Bps; /* bytes / (pre-copy start .. final sent) */
	/* Derived. */
	double overhead_ms; /* downtime - final_bytes / bw */
	double peer_Bps; /* iperf3 (tcp) / ib_write_bw (rdma) */
	double peer_ratio; /* xfer_Bps / peer_Bps */
	double floor_ms; /* final_bytes / peer goodput */
	double link_floor_ms; /* final_bytes / --link-gbps goodput */
	double proj_downtime_ms; /* on --link-gbps */
	char dominant[12]; /* "transport" or "device" */
	/* Resources. */
	long src_rss_kb, dst_rss_kb;
	double src_cpu_s, dst_cpu_s; /* whole processes */
	double xfer_cpu_s; /* both, over the transfer window */
	double cpu_s_per_gib;
	/* Both ends' CPU s/GiB by part, as the agents report it
	 * (cpu_device_s, cpu_transport_s, cpu_agent_s); -1: not reported */
	double cpu_dev_gib, cpu_xport_gib, cpu_agent_gib;
	bool digest_match;
};

struct vb_peers {
	double memcpy_Bps;
	unsigned int streams[VB_LIST_MAX];
	double iperf_Bps[VB_LIST_MAX]; /* by index of streams; 0: none */
	/* iperf3's CPU s/GiB, both ends (its cpu_utilization); 0: none */
	double iperf_cpu_gib[VB_LIST_MAX];
	double xport_Bps[VB_LIST_MAX]; /* vfm-xport-perf tcp */
	/* Measured before and after the matrix; the above is their mean. */
	double iperf_before[VB_LIST_MAX], iperf_after[VB_LIST_MAX];
	double xport_before[VB_LIST_MAX], xport_after[VB_LIST_MAX];
	int n;
	char iperf_why[VB_WHY]; /* why iperf3 is missing */
	double ib_Bps; /* ib_write_bw, 1 MiB messages */
	char ib_why[VB_WHY]; /* why it was skipped */
	char rdma_dev[64]; /* "" if none */
};

struct vb_mem {
	uint64_t size;
	bool ok;
	char why[VB_WHY];
	long src_rss_kb, dst_rss_kb;
	double src_expect_kb, dst_expect_kb; /* device state + buffers */
	double src_over_kb, dst_over_kb;
};

struct vb_results {
	struct vb_run *runs;
	int nruns, cap;
	struct vb_peers peers;
	struct vb_mem mem[4];
	int nmem;
	char started[32];
	double wall_s;
	struct vb_model model; /* fitted on the runs (project.c) */
	bool have_model;
};

/* util.c */
double vb_now(void);
int vb_parse_size(const char *s, uint64_t *out);
void vb_fmt_size(uint64_t v, char *buf, size_t len);
int vb_free_port(void);
char *vb_read_file(const char *path, size_t *len);
int vb_mkdir_p(const char *path);
bool vb_have_prog(const char *name);
double vb_median(double *v, int n);
double vb_pct(double *v, int n, double p);

/* json.c: JSON through json-c. A @key may be a dotted path
 * ("end.sum_received.bits_per_second"). */
struct json_object *vb_json_load(const char *path); /* one object, or NULL */
struct json_object *vb_json_get(struct json_object *o, const char *key);
bool vb_json_num(struct json_object *o, const char *key, double *out);
bool vb_json_str(struct json_object *o, const char *key, char *out, size_t len);
bool vb_json_bool(struct json_object *o, const char *key, bool *out);
/* An agent's JSON-lines log as an array of its lines (those that parse). */
struct json_object *vb_log_load(const char *path);
/* The last line of @event, or NULL; the next one from *@i on. */
struct json_object *vb_log_last(struct json_object *log, const char *event);
struct json_object *vb_log_next(struct json_object *log, const char *event,
				size_t *i);
bool vb_log_has(const char *path, const char *event);
double vb_ts_parse(const char *ts); /* ISO 8601 UTC -> seconds */
/* Writing: a number (null for NaN and infinities, 6 significant digits),
 * members, and the whole document to @path (0 or -errno). */
struct json_object *vb_json_double(double v);
void vb_json_put_num(struct json_object *o, const char *key, double v);
void vb_json_put_str(struct json_object *o, const char *key, const char *s);
int vb_json_save(const char *path, struct json_object *o);

/* proc.c: child processes. */
struct vb_proc {
	pid_t pid;
	bool done;
	int status;
	long maxrss_kb;
	double cpu_s;
};
int vb_spawn(struct vb_proc *p, char *const argv[], const char *out_path);
int vb_spawn_sh(struct vb_proc *p, const char *cmd, const char *out_path);
/* Reap if finished; true when done. */
bool vb_poll(struct vb_proc *p);
/* Wait up to @timeout_s, then kill; the exit code, or -1. */
int vb_wait(struct vb_proc *p, double timeout_s);
void vb_kill(struct vb_proc *p);
int vb_exit_code(const struct vb_proc *p);
/* utime + stime of a live process, seconds; -1 if gone. */
double vb_proc_cpu(pid_t pid);

/* run.c */
void vb_run_one(const struct vb_opts *o, const char *secret, const char *dir,
		struct vb_run *r);
void vb_derive(const struct vb_opts *o, const struct vb_peers *pe,
	       struct vb_run *r);

/* peers.c */
void vb_peers_measure(const struct vb_opts *o, struct vb_peers *pe,
		      const char *dir);
/* Measure the tcp peers again and use the mean of both measurements. */
void vb_peers_again(const struct vb_opts *o, struct vb_peers *pe,
		    const char *dir);
double vb_peer_for(const struct vb_peers *pe, const char *transport,
		   unsigned int streams);
double vb_link_Bps(double gbps);

/* project.c: the downtime model fitted on the runs, proj_downtime_ms on
 * --link-gbps for each; the model as a line of text and as JSON. */
void vb_project(const struct vb_opts *o, struct vb_results *res);
void vb_model_line(FILE *f, const struct vb_results *res);
struct json_object *vb_model_json(const struct vb_results *res);

/* report.c */
void vb_report_table(const struct vb_opts *o, const struct vb_results *res);
int vb_report_json(const struct vb_opts *o, const struct vb_results *res,
		   const char *path);
int vb_report_csv(const struct vb_results *res, const char *path);
int vb_report_plots(const struct vb_opts *o, const struct vb_results *res,
		    const char *dir);

/* Groups of runs with the same configuration. */
struct vb_group {
	const struct vb_run *first;
	int n, nok;
	double downtime, overhead, stop, final, resume, commit; /* p50 */
	double xfer, ratio, cpu_gib, floor, link_floor, proj, iters;
	double cpu_dev, cpu_xport, cpu_agent; /* s/GiB by part, p50 */
	double final_bytes;
	char dominant[12];
};
int vb_groups(const struct vb_results *res, struct vb_group **out);

#endif
