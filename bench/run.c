// SPDX-License-Identifier: MIT
/*
 * One migration: a real `vfmig recv` and `vfmig send`, each with its JSON
 * log and --stats-json; their CPU time is sampled while the data moves
 * and their peak RSS comes from wait4(). Then the numbers are read back.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct paths {
	char src_log[4200], dst_log[4200], src_json[4200], dst_json[4200];
	char src_out[4200], dst_out[4200];
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The sentence of the last error line of the log at @path, into @out. */
static void last_error(const char *path, char *out, size_t len)
{
	struct json_object *log = vb_log_load(path);

	for (size_t i = log ? json_object_array_length(log) : 0; i > 0; i--) {
		struct json_object *o = json_object_array_get_idx(log, i - 1);
		char level[16] = "";

		vb_json_str(o, "level", level, sizeof(level));
		if (strcmp(level, "error"))
			continue;
		if (!vb_json_str(o, "message", out, len))
			vb_json_str(o, "reason", out, len);
		break;
	}
	json_object_put(log);
}

static void specs(const struct vb_opts *o, const struct vb_run *r, char *src,
		  char *dst, size_t len)
{
	char sz[32], dr[32], zr[24] = "";
	/* a device without PRE_COPY (and without the feature that says so) */
	const char *pc = o->no_precopy ? ",precopy=off,features=p2p/mmap" : "";
	/* mmap=off: the sim offers read()/write() only, like a driver without
	 * the mmap-able buffer; the agent then copies through its own buffer,
	 * as QEMU does. */
	const char *dp = strcmp(r->datapath, "bounce") ? "" : ",mmap=off";

	vb_fmt_size(r->size, sz, sizeof(sz));
	vb_fmt_size(r->dirty, dr, sizeof(dr));
	if (r->zero_pct)
		snprintf(zr, sizeof(zr), ",zero=%u", r->zero_pct);
	snprintf(src, len, "sim:size=%s,dirty=%s%s%s%s", sz, dr, zr, dp, pc);
	/* formats=1: a destination that loads the old stream format only */
	snprintf(dst, len, "sim:size=%s%s%s%s", sz, dp, pc,
		 r->format == 1 ? ",formats=1" : "");
}

static int start_recv(const struct vb_opts *o, const char *secret,
		      const struct paths *p, const char *spec, int port,
		      struct vb_proc *pr, struct vb_run *r)
{
	char listen[64], tmo[32], wait[32];

	snprintf(tmo, sizeof(tmo), "%g", o->timeout_s);
	/* The source fills its sim memory before it connects: ~50 MB/s on a
	 * busy small machine. */
	snprintf(wait, sizeof(wait), "%.0f",
		 o->timeout_s + (double)r->size / 5e7);
	if (o->peer && !o->peer_cmd)
		return 0; /* the user runs it */
	if (o->peer) {
		char args[2048], cmd[8192];
		const char *at = strstr(o->peer_cmd, "{ARGS}");

		snprintf(
			args, sizeof(args),
			"recv --device '%s' --listen 0.0.0.0:%d --secret-file '%s' --timeout-s %s --wait-s %s",
			spec, port, secret, tmo, wait);
		if (at)
			snprintf(cmd, sizeof(cmd), "%.*s%s%s",
				 (int)(at - o->peer_cmd), o->peer_cmd, args,
				 at + 6);
		else
			snprintf(cmd, sizeof(cmd), "%s %s", o->peer_cmd, args);
		/* Its JSON lines come back on stderr: they are the dst log. */
		return vb_spawn_sh(pr, cmd, p->dst_log);
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	{
		char *argv[] = { (char *)o->vfmig,
				 "recv",
				 "--device",
				 (char *)spec,
				 "--listen",
				 listen,
				 "--secret-file",
				 (char *)secret,
				 "--log",
				 (char *)p->dst_log,
				 "--stats-json",
				 (char *)p->dst_json,
				 "--timeout-s",
				 tmo,
				 "--wait-s",
				 wait,
				 NULL };
		int ret = vb_spawn(pr, argv, p->dst_out);

		if (ret)
			snprintf(r->why, sizeof(r->why),
				 "Cannot start vfmig recv: %s.",
				 strerror(-ret));
		return ret;
	}
}

/* Wait for the receiver's "start" event (it has its device and port). */
static int wait_recv_ready(const struct vb_opts *o, const struct paths *p,
			   struct vb_proc *pr, struct vb_run *r)
{
	double until = vb_now() + o->timeout_s + r->size / 2e8;

	if (o->peer && !o->peer_cmd)
		return 0;
	while (vb_now() < until) {
		if (vb_log_has(p->dst_log, "start"))
			return 0;
		if (vb_poll(pr)) {
			snprintf(r->why, sizeof(r->why),
				 "vfmig recv exited (%d) before listening",
				 vb_exit_code(pr));
			last_error(p->dst_log, r->why, sizeof(r->why));
			return -EIO;
		}
		sleep_ms(5);
	}
	snprintf(r->why, sizeof(r->why),
		 "vfmig recv did not start listening in time.");
	return -ETIMEDOUT;
}

/* Sample both processes' CPU at the transfer's start and end events. */
struct sampler {
	size_t seen; /* log bytes already scanned */
	double cpu0, cpu1; /* src + dst CPU, s */
	bool have0, have1;
};

static double cpu_both(const struct vb_proc *s, const struct vb_proc *d)
{
	double a = vb_proc_cpu(s->pid),
	       b = (d->pid > 0) ? vb_proc_cpu(d->pid) : 0;

	return (a < 0 || b < 0) ? -1 : a + b;
}

static void sample(struct sampler *sm, const struct paths *p,
		   const struct vb_proc *s, const struct vb_proc *d)
{
	struct json_object *log;
	struct stat st;

	if (sm->have1 || stat(p->src_log, &st) ||
	    (size_t)st.st_size == sm->seen)
		return;
	/* Read CPU first: the event has just happened. */
	double cpu = cpu_both(s, d);

	log = vb_log_load(p->src_log);
	if (!log)
		return;
	sm->seen = (size_t)st.st_size;
	if (!sm->have0 && vb_log_last(log, "phase_precopy") && cpu >= 0) {
		sm->cpu0 = cpu;
		sm->have0 = true;
	}
	if (sm->have0 && vb_log_last(log, "phase_final_sent") && cpu >= 0) {
		sm->cpu1 = cpu;
		sm->have1 = true;
	}
	json_object_put(log);
}

/* ts of the last line with @event in @log (0 if none); @line gets it. */
static double event_ts(struct json_object *log, const char *event,
		       struct json_object **line)
{
	struct json_object *last = vb_log_last(log, event);
	char ts[40];

	if (line)
		*line = last;
	if (!last || !vb_json_str(last, "ts", ts, sizeof(ts)))
		return 0;
	return vb_ts_parse(ts);
}

static void parse_logs(const struct paths *p, struct vb_run *r)
{
	struct json_object *src = vb_log_load(p->src_log);
	struct json_object *dst = vb_log_load(p->dst_log);
	struct json_object *line = NULL, *it;
	double it_bytes = 0, it_ms = 0, t_it, t_pc, t_commit;
	size_t i = 0;

	if (!src)
		goto out;
	/* Pre-copy throughput: the iterations' bytes over their time. */
	while ((it = vb_log_next(src, "iteration", &i))) {
		double b = 0, ms = 0, est = -1;

		vb_json_num(it, "bytes", &b);
		vb_json_num(it, "ms", &ms);
		vb_json_num(it, "estimated_downtime_ms", &est);
		vb_json_str(it, "decision", r->decision, sizeof(r->decision));
		r->est_downtime_ms = est;
		it_bytes += b;
		it_ms += ms;
	}
	if (it_ms > 0)
		r->xfer_Bps = it_bytes / (it_ms / 1e3);
	/* Which data path the source really took (its phase_precopy line). */
	if (event_ts(src, "phase_precopy", &line) >= 0 && line) {
		char msg[VB_WHY] = "";

		vb_json_str(line, "message", msg, sizeof(msg));
		snprintf(r->path_seen, sizeof(r->path_seen), "%s",
			 strstr(msg, "read()") ? "bounce" :
			 strstr(msg, "mapped") ? "mmap" :
						 "");
	}
	line = NULL;
	if (r->split_from_stats || !dst)
		goto out;
	/* The downtime split from both logs (one clock on loopback):
	 * source stop = last iteration -> phase_stop_copy logged; final
	 * transfer = until the destination loaded it all (its "committed"
	 * minus its resume time); resume = the destination's; commit = the
	 * rest (the COMMIT message back and the source seeing it). */
	t_it = event_ts(src, "iteration", NULL);
	t_pc = event_ts(src, "phase_stop_copy", NULL);
	t_commit = event_ts(dst, "committed", &line);
	if (t_it > 0 && t_pc >= t_it && t_commit > t_pc) {
		r->stop_ms = (t_pc - t_it) * 1e3;
		r->final_ms = (t_commit - t_pc) * 1e3 - r->resume_ms;
		/* "committed" is logged just after COMMIT is sent: a destination
		 * descheduled in between makes it late. Never more than the
		 * downtime leaves; the commit phase then reads 0. */
		if (r->final_ms > r->downtime_ms - r->stop_ms - r->resume_ms)
			r->final_ms =
				r->downtime_ms - r->stop_ms - r->resume_ms;
		if (r->final_ms < 0)
			r->final_ms = 0;
		r->commit_ms = r->downtime_ms - r->stop_ms - r->final_ms -
			       r->resume_ms;
		if (r->commit_ms < 0)
			r->commit_ms = 0;
	} else {
		r->stop_ms = r->final_ms = r->commit_ms = -1;
	}
out:
	json_object_put(src);
	json_object_put(dst);
}

/* Both ends' CPU by part (the agents' cpu_*_s), s/GiB; -1 if either
 * side did not report it. */
static void parse_cpu_split(const struct paths *p, struct vb_run *r)
{
	static const char *const key[3] = { "cpu_device_s", "cpu_transport_s",
					    "cpu_agent_s" };
	struct json_object *side[2] = { vb_json_load(p->src_json),
					vb_json_load(p->dst_json) };
	double sum[3] = { 0, 0, 0 }, gib = (double)r->bytes / (1ull << 30);
	struct json_object *dlog = NULL;
	bool ok;

	/* A --peer destination writes no file here: its summary is the
	 * last one in the log that came back on its stderr. */
	if (!side[1]) {
		dlog = vb_log_load(p->dst_log);
		side[1] = json_object_get(vb_log_last(dlog, "summary"));
		json_object_put(dlog);
	}
	ok = side[0] && side[1] && gib > 0;

	for (int s = 0; s < 2 && ok; s++)
		for (int k = 0; k < 3 && ok; k++) {
			double v;

			ok = vb_json_num(side[s], key[k], &v);
			sum[k] += v;
		}
	r->cpu_dev_gib = ok ? sum[0] / gib : -1;
	r->cpu_xport_gib = ok ? sum[1] / gib : -1;
	r->cpu_agent_gib = ok ? sum[2] / gib : -1;
	json_object_put(side[0]);
	json_object_put(side[1]);
}

static void parse_stats(const struct paths *p, struct vb_run *r)
{
	struct json_object *s = vb_json_load(p->src_json);
	char res[32] = "";
	double v;

	if (!s) {
		if (!r->why[0])
			snprintf(
				r->why, sizeof(r->why),
				"vfmig send wrote no --stats-json (or not JSON).");
		return;
	}
	vb_json_str(s, "result", res, sizeof(res));
	vb_json_num(s, "downtime_ms", &r->downtime_ms);
	vb_json_num(s, "total_ms", &r->total_ms);
	vb_json_num(s, "precopy_ms", &r->precopy_ms);
	vb_json_num(s, "destination_resume_ms", &r->resume_ms);
	if (vb_json_num(s, "bytes", &v))
		r->bytes = (uint64_t)v;
	if (vb_json_num(s, "precopy_bytes", &v))
		r->precopy_bytes = (uint64_t)v;
	if (vb_json_num(s, "final_bytes", &v))
		r->final_bytes = (uint64_t)v;
	if (vb_json_num(s, "iterations", &v))
		r->iterations = (unsigned int)v;
	if (vb_json_num(s, "bandwidth_mbps", &v))
		r->bw_Bps = v * 1e6;
	vb_json_bool(s, "digest_match", &r->digest_match);
	/* A split the agent measures itself wins over the logs' timestamps. */
	if (vb_json_num(s, "stop_ms", &r->stop_ms) &&
	    vb_json_num(s, "final_transfer_ms", &r->final_ms) &&
	    vb_json_num(s, "commit_ms", &r->commit_ms))
		r->split_from_stats = true;
	r->ok = !strcmp(res, "migrated") && r->digest_match && r->send_rc == 0;
	parse_cpu_split(p, r);
	if (!r->ok && !r->why[0]) {
		if (!vb_json_str(s, "reason", r->why, sizeof(r->why)))
			snprintf(r->why, sizeof(r->why),
				 "result '%s', digest %s", res,
				 r->digest_match ? "match" : "MISMATCH");
	}
	json_object_put(s);
}

void vb_run_one(const struct vb_opts *o, const char *secret, const char *dir,
		struct vb_run *r)
{
	char src_spec[256], dst_spec[256], to[300], streams[16], tmo[32],
		limit[32];
	struct vb_proc recv = { 0 }, send = { 0 };
	struct sampler sm = { 0 };
	struct paths p;
	int port = o->port;
	double until;

	snprintf(p.src_log, sizeof(p.src_log), "%s/src.log", dir);
	snprintf(p.dst_log, sizeof(p.dst_log), "%s/dst.log", dir);
	snprintf(p.src_json, sizeof(p.src_json), "%s/src.json", dir);
	snprintf(p.dst_json, sizeof(p.dst_json), "%s/dst.json", dir);
	snprintf(p.src_out, sizeof(p.src_out), "%s/src.out", dir);
	snprintf(p.dst_out, sizeof(p.dst_out), "%s/dst.out", dir);
	unlink(p.src_log);
	unlink(p.dst_log);
	unlink(p.src_json);
	unlink(p.dst_json);
	specs(o, r, src_spec, dst_spec, sizeof(src_spec));
	if (!o->peer && port <= 0)
		port = vb_free_port();
	if (port <= 0) {
		snprintf(r->why, sizeof(r->why),
			 "No free TCP port on 127.0.0.1.");
		return;
	}
	if (start_recv(o, secret, &p, dst_spec, port, &recv, r))
		return;
	if (wait_recv_ready(o, &p, &recv, r)) {
		vb_kill(&recv);
		return;
	}
	snprintf(to, sizeof(to), "%s:%d", o->peer ? o->peer : "127.0.0.1",
		 port);
	snprintf(streams, sizeof(streams), "%u", r->streams);
	snprintf(tmo, sizeof(tmo), "%g", o->timeout_s);
	snprintf(limit, sizeof(limit), "%g", o->downtime_limit_ms);
	{
		char *argv[] = { (char *)o->vfmig,
				 "send",
				 "--device",
				 src_spec,
				 "--to",
				 to,
				 "--secret-file",
				 (char *)secret,
				 "--streams",
				 streams,
				 "--transport",
				 r->transport,
				 "--downtime-limit-ms",
				 limit,
				 "--log",
				 p.src_log,
				 "--stats-json",
				 p.src_json,
				 "--timeout-s",
				 tmo,
				 NULL };
		int ret = vb_spawn(&send, argv, p.src_out);

		if (ret) {
			snprintf(r->why, sizeof(r->why),
				 "Cannot start vfmig send: %s.",
				 strerror(-ret));
			vb_kill(&recv);
			return;
		}
	}
	until = vb_now() + 4 * o->timeout_s + (double)r->size / 5e7;
	while (!vb_poll(&send)) {
		sample(&sm, &p, &send, &recv);
		if (vb_now() > until) {
			vb_kill(&send);
			snprintf(r->why, sizeof(r->why),
				 "vfmig send did not finish in %.0f s.",
				 4 * o->timeout_s + (double)r->size / 5e7);
			break;
		}
		sleep_ms(2);
	}
	r->send_rc = vb_exit_code(&send);
	r->recv_rc = vb_wait(&recv, o->timeout_s + (double)r->size / 1e8);
	r->src_rss_kb = send.maxrss_kb;
	r->src_cpu_s = send.cpu_s;
	if (!o->peer) {
		r->dst_rss_kb = recv.maxrss_kb;
		r->dst_cpu_s = recv.cpu_s;
	} else {
		r->dst_rss_kb = -1;
		r->dst_cpu_s = -1;
	}
	if (sm.have0 && sm.have1 && !o->peer)
		r->xfer_cpu_s = sm.cpu1 - sm.cpu0;
	else
		r->xfer_cpu_s = -1;
	parse_stats(&p, r);
	parse_logs(&p, r);
	if (!r->ok && !r->why[0])
		last_error(p.src_log, r->why, sizeof(r->why));
	if (!r->ok && !r->why[0])
		snprintf(r->why, sizeof(r->why),
			 "vfmig send exited %d, recv %d.", r->send_rc,
			 r->recv_rc);
}

void vb_derive(const struct vb_opts *o, const struct vb_peers *pe,
	       struct vb_run *r)
{
	double bw = r->bw_Bps > 0 ? r->bw_Bps : r->xfer_Bps;
	double link = vb_link_Bps(o->link_gbps);

	r->peer_Bps = vb_peer_for(pe, r->transport, r->streams);
	r->peer_ratio = r->peer_Bps > 0 ? r->xfer_Bps / r->peer_Bps : 0;
	r->overhead_ms =
		bw > 0 ? r->downtime_ms - (double)r->final_bytes / bw * 1e3 :
			 -1;
	r->floor_ms = r->peer_Bps > 0 ?
			      (double)r->final_bytes / r->peer_Bps * 1e3 :
			      -1;
	r->link_floor_ms = (double)r->final_bytes / link * 1e3;
	if (r->bytes && r->size)
		r->cpu_s_per_gib = r->xfer_cpu_s >= 0 ?
					   r->xfer_cpu_s / ((double)r->bytes /
							    1073741824.0) :
					   -1;
	/* proj_downtime_ms and dominant: the downtime model, fitted once
	 * every run is in (vb_project()). */
	r->proj_downtime_ms = NAN;
	snprintf(r->dominant, sizeof(r->dominant), "-");
}
