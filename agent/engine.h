/* SPDX-License-Identifier: MIT */
/*
 * The migration engine: one migration per process, as source (send, check)
 * or destination (recv). Both return a VFM_EXIT_* code.
 */
#ifndef VFM_ENGINE_H
#define VFM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "ctrl.h"
#include "dev.h"
#include "log.h"
#include "vfm/handshake.h"
#include "vfm/kdf.h"
#include "vfm/transport.h"

/* The data plane's AEAD with --encrypt (tcp; transport/tcp.c). */
#define VFM_DATA_CIPHER "aes-256-gcm"

struct vfm_mig_opts {
	const char *device; /* SPEC: the first of devices[] */
	const char *devices[VFM_SET_MAX]; /* --device, repeated: a set */
	unsigned int ndevices;
	const char *addr; /* send/check: --to; recv: --listen */
	const char *secret_file;
	const char *transport; /* "tcp" */
	const char *log_path;
	const char *stats_path;
	char migration_id[40]; /* "" until set */
	unsigned int streams;
	double downtime_limit_ms;
	unsigned int max_iterations;
	double max_precopy_s;
	double rate_limit_mbps; /* 0: none */
	double timeout_s; /* stall limit for every wait */
	double wait_s; /* recv: how long to wait for a source */
	double linger_s; /* recv: answer outcome queries this long */
	double outcome_s; /* send: ask the outcome at most this long */
	double preauth_s; /* recv: a peer's time to authenticate */
	bool verify; /* compare the state digests before the switch */
	bool integrity; /* the stream MAC (vfm/kdf.h) */
	bool encrypt; /* send: seal the data plane; recv: require it */
	bool fail_over_limit; /* send: at a limit, fail rather than overshoot */
	bool check; /* handshake only */
	bool outcome; /* vfmig outcome: ask, do not migrate */
	bool resume; /* vfmig outcome --resume */
	uint8_t secret[VFM_HS_SECRET_MAX];
	size_t secret_len;
};

/* Engine state shared by both roles. */
struct vfm_eng {
	struct vfm_mig_opts *o;
	const char *role; /* "source" / "destination" */
	struct vfm_dev *dev;
	struct vfm_desc desc; /* this side's device (a set's first) */
	/* A device set (dev_set.h): every device's descriptor, in order;
	 * ndev 1 for a single device (descs[0] == desc). */
	struct vfm_desc *descs;
	unsigned int ndev;
	struct vfm_conn conn;
	struct vfm_hs *hs;
	const struct vfm_xport_ops *xops;
	struct vfm_xport *x;
	struct vfm_mr mr;
	bool mr_reg;
	struct vfm_smac smac; /* over the stream, in stream order */
	uint8_t tx[VFM_WIRE_FRAME_MAX];
	char why[512]; /* the failure, as a sentence */
	double t0; /* ms, monotonic: start */
	/* CPU seconds by part (vfm_eng_json_cpu): in the device's produce
	 * and load calls, and of transports already torn down; this thread's
	 * clock when the data phase began (vfm_eng_xport_create). */
	double cpu_dev_s, cpu_xport_s, cpu_t0;
};

int vfm_engine_send(struct vfm_mig_opts *o);
int vfm_engine_recv(struct vfm_mig_opts *o);
/* vfmig outcome: 0 running, 4 aborted (resumed with --resume), 7 unknown. */
int vfm_engine_outcome(struct vfm_mig_opts *o);

/* engine.c: shared pieces. */
/* Every option at its documented default (the CLI's and tests'). */
void vfm_mig_opts_defaults(struct vfm_mig_opts *o);
int vfm_secret_load(struct vfm_mig_opts *o, char *why, size_t whylen);
int vfm_eng_open_device(struct vfm_eng *e);
/* Run the handshake on e->conn; 0 when DONE (verdict available). */
int vfm_eng_handshake(struct vfm_eng *e, const struct vfm_hs_cfg *cfg);
void vfm_eng_log_verdict(struct vfm_eng *e);
/* Failed rules of the verdict, every device of a set counted. */
unsigned int vfm_eng_verdict_failures(struct vfm_eng *e);
int vfm_eng_ctl_send(struct vfm_eng *e, const struct vfm_ctl *m);
/* 1 and @m, 0 on timeout, negative errno (e->why says why). */
int vfm_eng_ctl_recv(struct vfm_eng *e, int timeout_ms, struct vfm_ctl *m);
void vfm_eng_xport_teardown(struct vfm_eng *e);
/* e->x from e->xops and @cfg; @sealed: under this migration's data key
 * (--encrypt), wiped once the transport holds its copy. -ENOKEY (e->why
 * says why) when the handshake gives no key. */
int vfm_eng_xport_create(struct vfm_eng *e, struct vfm_xport_cfg *cfg,
			 bool sealed);
/* One "switchover" log event: a step of vfm/switchover.h's machines. */
void vfm_eng_log_switch(const char *from, const char *on, const char *to,
			unsigned int action);
/* The stream MAC keyed from the handshake (e->smac). */
int vfm_eng_smac_start(struct vfm_eng *e);
void vfm_eng_fail(struct vfm_eng *e, uint16_t code, const char *text);
int vfm_eng_timeout_ms(const struct vfm_eng *e);
void vfm_eng_write_stats(struct vfm_eng *e, struct vfm_json *summary);
/* CPU seconds of the calling thread so far (its own clock). */
double vfm_thread_cpu_s(void);
/*
 * Where this side's CPU went, into @j: cpu_device_s (the device's produce
 * or load calls), cpu_transport_s (the transport's own threads) and
 * cpu_agent_s (the engine's threads from the data phase on, the calling
 * one plus @other_s, less the device's share: stream MAC, ordering,
 * credits, control, the digest check). Set-up before it (the handshake,
 * opening the device) is not counted. Threads
 * that stand for the guest (a simulated device's workload) and the digest
 * threads are in none of them.
 */
void vfm_eng_json_cpu(struct vfm_eng *e, struct vfm_json *j, double other_s);
/* Test hook: VFMIG_TEST_CRASH=<point> kills this process at @point. */
void vfm_eng_crash_point(const char *point);
/* SIGTERM, SIGINT and SIGHUP cancel the migration (see switchover.h):
 * the handlers only set a flag the engines look at. */
void vfm_eng_signals_install(void);
/* The signal that cancelled, 0 if none. */
int vfm_eng_cancelled(void);
/* "state": "RUNNING", "state_digest": ... into @j. */
void vfm_eng_json_device(struct vfm_eng *e, struct vfm_json *j, bool digest);
/* The stream format each device produces or loads, as its pair's verdict
 * settled (vfm/compat.h, "stream"); @why on failure. */
int vfm_eng_stream_formats(struct vfm_eng *e);
/* Close the device (a set: every member) and free the descriptors. */
void vfm_eng_close_device(struct vfm_eng *e);

#endif
