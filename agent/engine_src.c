// SPDX-License-Identifier: MIT
/*
 * The source side of a migration (vfmig send / check): handshake; after
 * ACCEPT, pre-copy iterations into the destination's landing ring under
 * credits, the convergence decision, STOP_COPY and the final data, then
 * the commit. Any failure before the commit resumes the device.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "cmd.h"
#include "dev_set.h"
#include "engine.h"
#include "policy.h"
#include "vfm/switchover.h"

#define SRC_SEG_MAX (2u << 20) /* bytes asked of save_next at once */
#define SRC_CHUNK (1u << 20) /* largest transport write */
#define SRC_FIFO 8192 /* segments outstanding */
#define SRC_FIXED_MS 15.0 /* state changes + commit round trip */
#define SRC_RATE_WINDOW_MS 500.0 /* the rate of now: its window */

struct src_seg {
	struct vfm_dev_seg seg;
	unsigned int pending; /* writes not yet completed */
	bool posted; /* every write posted */
};

struct src {
	struct vfm_eng e;
	uint64_t landing; /* destination ring size */
	unsigned int streams, next_stream;
	uint64_t sent; /* stream bytes posted */
	uint64_t credit; /* stream bytes the destination has loaded */
	struct src_seg *fifo;
	uint64_t fifo_head, fifo_tail; /* tail: oldest unreleased */
	unsigned int inflight; /* writes posted, not yet completed */
	double last_progress; /* ms */
	bool committed;
	struct vfm_ctl commit;
	char peer_digest[72];
	/* Stats. */
	double t_precopy, t_stop, t_commit;
	double t_phase; /* stopped and the PHASE message sent */
	double t_loaded; /* the final byte loaded at the destination */
	unsigned int iterations;
	uint64_t precopy_bytes;
	double bw; /* bytes/s, last good estimate */
	struct vfm_rate rate; /* the rate of now, from the credits */
	double t_bucket; /* --rate-limit: when its bucket was empty */
	bool stopped; /* STOP_COPY reached */
	bool done_sent; /* DONE sent: the control connection decides */
	bool xport_dead; /* the streams closed after DONE */
	bool loaded; /* LOADED received */
	enum vfm_sw_src_state sw; /* the switchover (vfm/switchover.h) */
	char digest[VFM_DIGEST_HEX]; /* this device, stopped, all saved */
	double t_run; /* RUN sent: the point of no return */
	double digest_ms;
	bool resume_failed;
	double last_report; /* ms: the last progress event */
	/* The digest of the stopped device, computed on its own thread
	 * while the final data goes; verify_est_ms: one pass, measured at
	 * start, which the destination's check adds to the downtime. */
	pthread_t digest_thread;
	bool digest_running;
	int digest_ret;
	double verify_est_ms;
};

static void *digest_main(void *arg)
{
	struct src *s = arg;
	double t = vfm_now_ms();

	s->digest_ret = vfm_dev_digest(s->e.dev, s->digest);
	s->digest_ms = vfm_now_ms() - t;
	return NULL;
}

/* Start the digest of the stopped device; its result is needed at LOADED. */
static void digest_start(struct src *s)
{
	if (!s->e.o->verify || s->digest_running)
		return;
	s->digest_running =
		pthread_create(&s->digest_thread, NULL, digest_main, s) == 0;
	if (!s->digest_running)
		digest_main(s);
}

static void digest_join(struct src *s)
{
	if (s->digest_running)
		pthread_join(s->digest_thread, NULL);
	s->digest_running = false;
	if (s->digest_ret)
		s->digest[0] = '\0';
}

static int ms_left(struct src *s)
{
	return (int)(s->last_progress + vfm_eng_timeout_ms(&s->e) -
		     vfm_now_ms());
}

static void progress(struct src *s)
{
	s->last_progress = vfm_now_ms();
}

/* Release completed segments, oldest first. */
static int release_done(struct src *s)
{
	while (s->fifo_tail < s->fifo_head) {
		struct src_seg *f = &s->fifo[s->fifo_tail % SRC_FIFO];
		int ret;

		if (!f->posted || f->pending)
			break;
		double c0 = vfm_thread_cpu_s();

		ret = vfm_dev_save_release(s->e.dev, &f->seg);
		s->e.cpu_dev_s += vfm_thread_cpu_s() - c0;
		if (ret) {
			snprintf(s->e.why, sizeof(s->e.why),
				 "The device refused to release a segment: %s.",
				 strerror(-ret));
			return ret;
		}
		s->fifo_tail++;
	}
	return 0;
}

static int ctl_drain(struct src *s, bool *any)
{
	struct vfm_ctl m;
	int ret;

	for (;;) {
		ret = vfm_eng_ctl_recv(&s->e, 0, &m);
		if (ret <= 0)
			return ret;
		*any = true;
		if (m.type == VFM_CTL_CREDIT) {
			if (m.pos > s->sent || m.pos < s->credit) {
				snprintf(s->e.why, sizeof(s->e.why),
					 "The destination sent a bad credit.");
				return -EPROTO;
			}
			if (!s->stopped)
				vfm_rate_add(&s->rate, vfm_now_ms(),
					     m.pos - s->credit, true);
			s->credit = m.pos;
			if (s->done_sent && s->credit == s->sent &&
			    !s->t_loaded)
				s->t_loaded = vfm_now_ms();
		} else if (m.type == VFM_CTL_LOADED && s->done_sent &&
			   !s->loaded) {
			s->loaded = true;
			s->commit.resume_us = m.resume_us;
			if (!s->t_loaded)
				s->t_loaded = vfm_now_ms();
			snprintf(s->peer_digest, sizeof(s->peer_digest), "%s",
				 m.digest);
		} else if (m.type == VFM_CTL_COMMIT && s->t_run) {
			s->t_commit = vfm_now_ms();
			s->committed = true;
			s->commit.resume_us = m.resume_us;
		} else if (m.type == VFM_CTL_DIGEST) {
			snprintf(s->peer_digest, sizeof(s->peer_digest), "%s",
				 m.digest);
		} else {
			snprintf(s->e.why, sizeof(s->e.why),
				 "Unexpected %s from the destination.",
				 vfm_ctl_name(m.type));
			return -EPROTO;
		}
	}
}

static int xport_reap(struct src *s, int wait_ms, bool *any)
{
	struct vfm_cqe cqe[64];
	int n;

	if (s->xport_dead) {
		struct pollfd pf = { .fd = s->e.conn.fd, .events = POLLIN };

		if (wait_ms)
			poll(&pf, 1, wait_ms);
		return 0;
	}
	n = vfm_xport_poll(s->e.x, cqe, 64, wait_ms);
	if (n < 0) {
		/* After DONE the destination may finish and close the streams
		 * before its last credit is read: the control connection says
		 * whether it committed or failed. */
		if (s->done_sent) {
			s->xport_dead = true;
			return 0;
		}
		snprintf(s->e.why, sizeof(s->e.why),
			 "The data transport failed: %s.", strerror(-n));
		return n;
	}
	for (int i = 0; i < n; i++) {
		if (cqe[i].status) {
			snprintf(s->e.why, sizeof(s->e.why),
				 "A data write failed: %s.",
				 strerror(-cqe[i].status));
			return cqe[i].status;
		}
		if (cqe[i].kind == VFM_CQE_SEND) {
			s->fifo[cqe[i].wr_id % SRC_FIFO].pending--;
			if (s->inflight)
				s->inflight--;
		}
		*any = true;
	}
	return release_done(s);
}

/* Wait up to @wait_ms for the next event where it will come from: the
 * transport while writes are in flight (their completions, and the
 * transport only makes progress inside its poll), otherwise the control
 * connection (credits, the commit), which the transport cannot see. */
static int wait_event(struct src *s, int wait_ms, bool *any)
{
	struct pollfd pf = { .fd = s->e.conn.fd, .events = POLLIN };

	if (s->inflight && !s->xport_dead)
		return xport_reap(s, wait_ms, any);
	if (poll(&pf, 1, wait_ms) > 0)
		*any = true;
	return 0;
}

/* Once a second: where the migration is, with the numbers operators know
 * from QEMU's query-migrate (the JSON log; the TTY has its bar). */
static void report(struct src *s)
{
	double now = vfm_now_ms(), el, rate;
	uint64_t init = 0, dirty = 0;
	struct vfm_json j;

	if (now - s->last_report < 1000 || !s->t_precopy)
		return;
	s->last_report = now;
	el = (now - s->t_precopy) / 1e3;
	if (!s->stopped)
		vfm_dev_precopy_info(s->e.dev, &init, &dirty);
	vfm_json_init(&j);
	vfm_json_str(&j, "phase",
		     !s->stopped   ? "pre-copy" :
		     !s->done_sent ? "stop-copy" :
				     "switchover");
	vfm_json_u64(&j, "iteration", s->iterations);
	vfm_json_u64(&j, "bytes_sent", s->sent);
	vfm_json_u64(&j, "bytes_loaded", s->credit);
	vfm_json_f64(&j, "rate_mbps", el > 0 ? (double)s->sent / el / 1e6 : 0);
	vfm_json_u64(&j, "remaining_bytes", init + dirty);
	vfm_json_u64(&j, "dirty_bytes", dirty);
	/* The last iteration's bandwidth, or so far this one's. */
	rate = s->bw > 0 ? s->bw : el > 0 ? (double)s->sent / el : 0;
	vfm_json_f64(&j, "expected_downtime_ms",
		     rate > 0 ? (double)(init + dirty) / rate * 1e3 +
					SRC_FIXED_MS :
				-1);
	vfm_log_emit("progress", &j);
}

/* Handle control messages and transport completions; wait up to @wait_ms
 * when nothing happened. Control first: a commit that arrives together with
 * the end of the data streams must be seen. */
static int pump(struct src *s, int wait_ms)
{
	bool any = false;
	int ret;

	if (vfm_eng_cancelled()) {
		snprintf(s->e.why, sizeof(s->e.why), "Cancelled by signal %d.",
			 vfm_eng_cancelled());
		return -EINTR;
	}
	report(s);
	ret = ctl_drain(s, &any);
	if (!ret)
		ret = xport_reap(s, 0, &any);
	if (ret)
		return ret;
	if (any) {
		progress(s);
		return 0;
	}
	if (ms_left(s) <= 0) {
		snprintf(s->e.why, sizeof(s->e.why),
			 "The destination made no progress for %.0f s.",
			 s->e.o->timeout_s);
		return -ETIMEDOUT;
	}
	if (wait_ms) {
		ret = wait_event(s, wait_ms, &any);
		if (any)
			progress(s);
	}
	return ret;
}

/* Respect --rate-limit during pre-copy. */
static int throttle(struct src *s)
{
	double rate = s->e.o->rate_limit_mbps * 1e6;

	while (rate > 0 && !s->stopped) {
		double allowed = (vfm_now_ms() - s->t_bucket) / 1e3 * rate;
		int ret;

		/* A bucket of a quarter second: time spent below the limit
		 * (a slow device, a busy host) is not saved up for a burst
		 * above it. */
		if (allowed - (double)s->precopy_bytes > rate / 4) {
			s->t_bucket += (allowed - (double)s->precopy_bytes -
					rate / 4) /
				       rate * 1e3;
			allowed = (double)s->precopy_bytes + rate / 4;
		}
		if ((double)s->precopy_bytes <= allowed)
			return 0;
		ret = pump(s, 2);
		if (ret)
			return ret;
		progress(s);
	}
	return 0;
}

/* Write one segment to the landing ring, chunk by chunk, under credits. */
static int post_segment(struct src *s, const struct vfm_dev_seg *seg)
{
	struct src_seg *f = &s->fifo[s->fifo_head % SRC_FIFO];
	uint64_t id = s->fifo_head, done = 0;
	int ret;

	f->seg = *seg;
	f->pending = 0;
	f->posted = false;
	s->fifo_head++;
	/* Nothing was in flight: the link was idle, which is no rate. */
	if (!s->stopped && s->credit == s->sent)
		vfm_rate_add(&s->rate, vfm_now_ms(), 0, false);
	while (done < seg->len) {
		uint64_t pos = seg->stream_pos + done;
		uint64_t roff = pos % s->landing;
		uint64_t len = seg->len - done;

		if (len > SRC_CHUNK)
			len = SRC_CHUNK;
		if (len > s->landing - roff)
			len = s->landing - roff;
		while (pos + len > s->credit + s->landing) {
			ret = pump(s, 1);
			if (ret)
				return ret;
		}
		ret = vfm_xport_write(s->e.x, s->next_stream, &s->e.mr,
				      seg->off + done, roff, (uint32_t)len, pos,
				      id);
		if (ret == -EAGAIN) {
			ret = pump(s, 1);
			if (ret)
				return ret;
			continue;
		}
		if (ret) {
			snprintf(s->e.why, sizeof(s->e.why),
				 "A data write failed: %s.", strerror(-ret));
			return ret;
		}
		f->pending++;
		s->inflight++;
		if (vfm_smac_active(&s->e.smac))
			vfm_smac_update(
				&s->e.smac,
				(uint8_t *)s->e.mr.addr + seg->off + done, len);
		s->next_stream = (s->next_stream + 1) % s->streams;
		done += len;
		s->sent = pos + len;
		if (!s->stopped)
			s->precopy_bytes += len;
	}
	f->posted = true;
	/* Let the transport move what is queued before the next segment is
	 * generated: its progress happens inside poll(). */
	return pump(s, 0);
}

/* Next segment: 0 and @seg, -ENOMSG when caught up (PRE_COPY). */
static int next_segment(struct src *s, struct vfm_dev_seg *seg)
{
	for (;;) {
		uint64_t room = s->credit + s->landing - s->sent;
		uint64_t max = room < SRC_SEG_MAX ? room : SRC_SEG_MAX;
		double limit = s->e.o->rate_limit_mbps * 1e6 / 4;
		double c0;
		int ret;

		/* Under --rate-limit, segments of at most a quarter second of
		 * the rate (64 KiB at least), so the limit is smooth, not a
		 * burst of SRC_SEG_MAX at a time. */
		if (limit > 0 && !s->stopped && room >= 65536)
			max = limit < 65536	  ? 65536 :
			      (double)max > limit ? (uint64_t)limit :
						    max;
		if (max < 65536 ||
		    s->fifo_head - s->fifo_tail >= SRC_FIFO - 64) {
			ret = pump(s, 1);
			if (ret)
				return ret;
			continue;
		}
		c0 = vfm_thread_cpu_s();
		ret = vfm_dev_save_next(s->e.dev, max, seg);
		s->e.cpu_dev_s += vfm_thread_cpu_s() - c0;
		if (ret == -ENOBUFS) {
			ret = pump(s, 1);
			if (ret)
				return ret;
			continue;
		}
		if (ret && ret != -ENOMSG)
			snprintf(s->e.why, sizeof(s->e.why),
				 "The device failed to save: %s.",
				 strerror(-ret));
		return ret;
	}
}

/* Wait until the destination has loaded everything posted. */
static int drain(struct src *s)
{
	while (s->credit < s->sent) {
		int ret = pump(s, 1);

		if (ret)
			return ret;
	}
	return 0;
}

static void log_iteration(struct src *s, uint64_t bytes, double ms,
			  uint64_t init, uint64_t dirty, double est,
			  double recent_bps, double plan_bps,
			  const char *decision)
{
	struct vfm_json j;

	vfm_json_init(&j);
	vfm_json_u64(&j, "iteration", s->iterations);
	vfm_json_u64(&j, "bytes", bytes);
	vfm_json_f64(&j, "ms", ms);
	vfm_json_f64(&j, "bandwidth_mbps",
		     ms > 0 ? (double)bytes / ms / 1e3 : 0);
	/* the last half second of busy transfer, and what the plan used */
	vfm_json_f64(&j, "recent_bandwidth_mbps", recent_bps / 1e6);
	vfm_json_f64(&j, "plan_bandwidth_mbps", plan_bps / 1e6);
	vfm_json_u64(&j, "initial_bytes", init);
	vfm_json_u64(&j, "dirty_bytes", dirty);
	vfm_json_f64(&j, "estimated_downtime_ms", est > 1e15 ? -1 : est);
	vfm_json_str(&j, "decision", decision);
	vfm_log_emit("iteration", &j);
}

static int precopy(struct src *s)
{
	const struct vfm_mig_opts *o = s->e.o;
	struct vfm_policy pol = {
		.downtime_limit_ms = o->downtime_limit_ms,
		.fixed_ms = SRC_FIXED_MS + (o->verify ? s->verify_est_ms : 0),
		.max_iterations = o->max_iterations,
		.max_precopy_s = o->max_precopy_s,
		.fail_over_limit = o->fail_over_limit,
	};
	uint64_t init, dirty, total;
	int ret;

	s->t_precopy = s->t_bucket = vfm_now_ms();
	vfm_rate_init(&s->rate, SRC_RATE_WINDOW_MS);
	vfm_dev_data_size(s->e.dev, &total);
	for (;;) {
		struct vfm_precopy_status st;
		enum vfm_decision d;
		double t_it = vfm_now_ms(), ms, recent, est;
		uint64_t target, bytes = 0;

		ret = vfm_dev_precopy_info(s->e.dev, &init, &dirty);
		if (ret) {
			snprintf(s->e.why, sizeof(s->e.why),
				 "The device gave no pre-copy info: %s.",
				 strerror(-ret));
			return ret;
		}
		target = init + dirty;
		s->iterations++;
		if (s->iterations == 2)
			vfm_eng_crash_point("precopy_2");
		while (bytes < target) {
			struct vfm_dev_seg seg;

			ret = throttle(s);
			if (!ret)
				ret = next_segment(s, &seg);
			if (ret == -ENOMSG)
				break;
			if (ret)
				return ret;
			ret = post_segment(s, &seg);
			if (ret)
				return ret;
			bytes += seg.len;
			vfm_log_progress(
				"pre-copy", s->precopy_bytes, total,
				(double)s->precopy_bytes /
					(vfm_now_ms() - s->t_precopy + 1e-3) /
					1e3);
			vfm_eng_crash_point("precopy");
		}
		ret = drain(s);
		if (ret)
			return ret;
		ms = vfm_now_ms() - t_it;
		if (bytes && ms > 0 && (bytes >= (8u << 20) || s->bw <= 0))
			s->bw = (double)bytes / (ms / 1e3);
		ret = vfm_dev_precopy_info(s->e.dev, &init, &dirty);
		if (ret)
			return ret;
		recent = vfm_rate_bps(&s->rate);
		st = (struct vfm_precopy_status){
			.iteration = s->iterations,
			.elapsed_s = (vfm_now_ms() - s->t_precopy) / 1e3,
			.initial_bytes = init,
			.dirty_bytes = dirty,
			.bandwidth_bps = vfm_rate_plan(s->bw, recent),
		};
		d = vfm_policy_decide(&pol, &st);
		est = vfm_policy_estimate_ms(&pol, &st);
		log_iteration(s, bytes, ms, init, dirty, est, recent,
			      st.bandwidth_bps, vfm_decision_name(d));
		if (d == VFM_FAIL_ITERATIONS || d == VFM_FAIL_TIME ||
		    d == VFM_FAIL_FIXED) {
			snprintf(
				s->e.why, sizeof(s->e.why),
				"Pre-copy did not converge: after %u iteration%s (%.1f s) the rest, %.1f MiB at %.1f MB/s, would take about %.0f ms, over the downtime limit of %.0f ms; with --if-over-limit fail the source keeps running.",
				s->iterations, s->iterations == 1 ? "" : "s",
				st.elapsed_s,
				(double)(init + dirty) / 1048576.0,
				st.bandwidth_bps / 1e6, est > 1e15 ? -1 : est,
				pol.downtime_limit_ms);
			return -ETIME;
		}
		if (d == VFM_SWITCH_FIXED)
			vfm_log_msg(
				"over_limit", "warning",
				"Nothing is left to send, but the fixed costs alone (state changes, round trips, the digest check) are about %.0f ms, over the limit of %.0f ms: switching now (--if-over-limit fail would keep the source running instead).",
				est, pol.downtime_limit_ms);
		else if (vfm_decision_over_limit(&pol, &st, d))
			vfm_log_msg(
				"over_limit", "warning",
				"Switching at the %s limit with an expected downtime of %.0f ms, over the limit of %.0f ms (--if-over-limit fail would keep the source running instead).",
				d == VFM_SWITCH_TIME ? "time" : "iteration",
				est > 1e15 ? -1 : est, pol.downtime_limit_ms);
		if (d != VFM_CONTINUE)
			return 0;
	}
}

static int final(struct src *s)
{
	struct vfm_ctl m = { .type = VFM_CTL_PHASE,
			     .iteration = s->iterations };
	uint64_t start = s->sent;
	struct vfm_json j;
	int ret;

	if (!s->stopped) {
		s->t_stop = vfm_now_ms();
		ret = vfm_dev_set_state(s->e.dev, VFIO_DEVICE_STATE_STOP_COPY);
		if (ret) {
			snprintf(s->e.why, sizeof(s->e.why),
				 "The device refused STOP_COPY: %s.",
				 strerror(-ret));
			return ret;
		}
		s->stopped = true;
	}
	/* Stopped: the state that must arrive. Its digest runs alongside. */
	digest_start(s);
	snprintf(m.phase, sizeof(m.phase), "stop_copy");
	ret = vfm_eng_ctl_send(&s->e, &m);
	if (ret)
		return ret;
	s->t_phase = vfm_now_ms();
	vfm_json_init(&j);
	vfm_json_f64(&j, "precopy_ms", s->t_stop - s->t_precopy);
	vfm_json_u64(&j, "precopy_bytes", s->precopy_bytes);
	vfm_log_emit("phase_stop_copy", &j);
	vfm_eng_crash_point("stop_copy");
	for (;;) {
		struct vfm_dev_seg seg;

		ret = next_segment(s, &seg);
		if (ret == -ENOMSG) { /* a device that is still catching up */
			ret = pump(s, 1); /* bounded by --timeout-s */
			if (ret)
				return ret;
			continue;
		}
		if (ret)
			return ret;
		if (seg.eof)
			break;
		ret = post_segment(s, &seg);
		if (ret)
			return ret;
		vfm_eng_crash_point("final");
	}
	m = (struct vfm_ctl){ .type = VFM_CTL_DONE, .total = s->sent };
	if (vfm_smac_active(&s->e.smac)) {
		m.has_mac = vfm_smac_final(&s->e.smac, m.mac) == 0;
		vfm_smac_free(&s->e.smac);
	}
	ret = vfm_eng_ctl_send(&s->e, &m);
	if (ret)
		return ret;
	s->done_sent = true;
	vfm_json_init(&j);
	vfm_json_u64(&j, "final_bytes", s->sent - start);
	vfm_json_u64(&j, "total_bytes", s->sent);
	vfm_json_f64(&j, "ms", vfm_now_ms() - s->t_stop);
	vfm_log_emit("phase_final_sent", &j);
	vfm_eng_crash_point("done_sent");
	while (!s->loaded) {
		ret = pump(s, 1);
		if (ret)
			return ret;
	}
	return 0;
}

/* Before the point of no return: back to RUNNING with the state intact,
 * first of all; then tell the destination and close the streams. */
static void recover(struct src *s)
{
	uint32_t before = VFIO_DEVICE_STATE_ERROR;
	struct vfm_json j;
	int ret;

	digest_join(s); /* the device must not change under it */
	vfm_dev_get_state(s->e.dev, &before);
	ret = vfm_dev_set_state(s->e.dev, VFIO_DEVICE_STATE_RUNNING);
	s->resume_failed = ret != 0;
	vfm_json_init(&j);
	vfm_json_str(&j, "from_state", vfm_dev_state_name(before));
	vfm_json_str(&j, "reason", s->e.why);
	vfm_json_bool(&j, "ok", ret == 0);
	vfm_eng_json_device(&s->e, &j, true);
	vfm_log_emit("source_resumed", &j);
}

static int setup_transport(struct src *s, const struct vfm_ctl *xp)
{
	struct vfm_eng *e = &s->e;
	struct vfm_xport_cfg cfg = {
		.streams = xp->streams,
		.max_write = SRC_CHUNK,
		.depth = 32,
		.timeout_ms = vfm_eng_timeout_ms(e),
	};
	char host[256], port[32];
	void *addr;
	size_t size;
	int ret;

	s->streams = xp->streams;
	s->landing = xp->landing;
	if (!s->streams || s->streams > 64 || s->landing < (1u << 20)) {
		snprintf(e->why, sizeof(e->why),
			 "The destination's transport parameters are invalid.");
		return -EPROTO;
	}
	e->xops = vfm_xport_find(xp->transport);
	if (!e->xops) {
		snprintf(e->why, sizeof(e->why),
			 "The transport '%s' is not built in.", xp->transport);
		return -ENOTSUP;
	}
	ret = vfm_eng_xport_create(e, &cfg, e->o->encrypt);
	if (ret) {
		if (ret != -ENOKEY)
			snprintf(e->why, sizeof(e->why),
				 "Cannot create the %s transport%s: %s.",
				 xp->transport,
				 e->o->encrypt ? " with encryption" : "",
				 strerror(-ret));
		return ret;
	}
	/* The stream format the verdict settled (vfm/compat.h, "stream"). */
	ret = vfm_eng_stream_formats(e);
	if (ret)
		return ret;
	/* The device's saving session: PRE_COPY (nothing before ACCEPT). A
	 * device without PRE_COPY is stopped and copied. */
	ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_PRE_COPY);
	if (ret == -EINVAL || ret == -ENOTTY || ret == -EOPNOTSUPP) {
		vfm_log_msg("no_precopy", "warning",
			    "The device has no PRE_COPY (%s): stop and copy.",
			    strerror(-ret));
		s->t_precopy = s->t_stop = vfm_now_ms();
		ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_STOP_COPY);
		s->stopped = !ret;
	}
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The device refused to start saving: %s.",
			 strerror(-ret));
		return ret;
	}
	ret = vfm_dev_buf(e->dev, 0, &addr, &size);
	vfm_log_msg(
		"phase_precopy", "info",
		"The source device entered PRE_COPY; data through %s (%zu-byte buffer).",
		vfm_dev_is_set(e->dev) ?
			"the set's ring (each device's data copied in behind a frame header)" :
		e->dev->fb_buf ? "read() and a 1 MiB bounce buffer" :
				 "the device's mapped buffer",
		size);
	if (!ret)
		ret = vfm_xport_reg(e->x, addr, size, &e->mr);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "Cannot register the migration buffer: %s.",
			 strerror(-ret));
		return ret;
	}
	e->mr_reg = true;
	vfm_addr_split(e->o->addr, host, sizeof(host), port, sizeof(port));
	ret = vfm_xport_connect(e->x, host, &xp->info, vfm_eng_timeout_ms(e));
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "Cannot connect %u data stream%s to %s: %s.",
			 s->streams, s->streams == 1 ? "" : "s", host,
			 strerror(-ret));
		return ret;
	}
	return 0;
}

static void summary(struct src *s)
{
	struct vfm_eng *e = &s->e;
	double downtime = s->t_commit - s->t_stop;
	double resume = (double)s->commit.resume_us / 1e3;
	double loaded, phase, commit;
	double total = s->t_commit - e->t0;
	struct vfm_json *j = malloc(sizeof(*j));
	char hex[VFM_DIGEST_HEX] = "";

	if (!j)
		return;
	/* The digests were compared before RUN (switch_over()). */
	snprintf(hex, sizeof(hex), "%s", s->digest);
	vfm_json_init(j);
	vfm_json_str(j, "result", "migrated");
	vfm_json_f64(j, "downtime_ms", downtime);
	vfm_json_f64(j, "downtime_limit_ms", e->o->downtime_limit_ms);
	vfm_json_f64(j, "total_ms", total);
	vfm_json_f64(j, "precopy_ms", s->t_stop - s->t_precopy);
	vfm_json_f64(j, "destination_resume_ms",
		     (double)s->commit.resume_us / 1e3);
	vfm_json_u64(j, "bytes", s->sent);
	vfm_json_u64(j, "precopy_bytes", s->precopy_bytes);
	vfm_json_u64(j, "final_bytes", s->sent - s->precopy_bytes);
	vfm_json_u64(j, "iterations", s->iterations);
	vfm_json_f64(j, "bandwidth_mbps", s->bw / 1e6);
	vfm_dev_set_json(e->dev, j);
	/* Where the downtime went, on this clock: stop (STOP_COPY and the
	 * PHASE message), the final transfer (until the last credit), the
	 * destination's resume (its report) and the commit (the rest: the
	 * COMMIT message back and this side seeing it). The four sum to the
	 * downtime; the destination resumes between its last credit and
	 * its COMMIT, so the final transfer ends no later than that allows. */
	phase = s->t_phase > s->t_stop ? s->t_phase : s->t_stop;
	if (phase > s->t_commit)
		phase = s->t_commit;
	loaded = s->t_loaded ? s->t_loaded : s->t_commit;
	if (loaded > s->t_commit - resume)
		loaded = s->t_commit - resume;
	if (loaded < phase)
		loaded = phase;
	vfm_json_f64(j, "stop_ms", phase - s->t_stop);
	vfm_json_f64(j, "final_transfer_ms", loaded - phase);
	vfm_json_f64(j, "resume_ms", resume);
	commit = s->t_commit - loaded - resume;
	vfm_json_f64(j, "commit_ms", commit > 0 ? commit : 0);
	vfm_json_f64(j, "downtime_minus_final_at_bandwidth_ms",
		     s->bw > 0 ?
			     downtime - (double)(s->sent - s->precopy_bytes) /
						s->bw * 1e3 :
			     0);
	vfm_json_str(j, "transport", e->xops ? e->xops->name : "");
	vfm_json_str(j, "cipher", e->o->encrypt ? VFM_DATA_CIPHER : "none");
	vfm_json_u64(j, "streams", s->streams);
	vfm_eng_json_cpu(e, j, 0);
	vfm_json_str(j, "state_digest", hex);
	vfm_json_str(j, "destination_state_digest", s->peer_digest);
	vfm_json_bool(j, "digest_match",
		      hex[0] && !strcmp(hex, s->peer_digest));
	vfm_json_bool(j, "verified", hex[0] && s->peer_digest[0]);
	vfm_json_f64(j, "digest_ms", s->digest_ms);
	vfm_json_bool(j, "commit_confirmed", s->committed);
	vfm_log_emit("summary", j);
	vfm_eng_write_stats(e, j);
	vfm_log_progress_end();
	printf("vfmig: migration %s done: %.1f MiB in %.0f ms, %u pre-copy iteration%s, "
	       "downtime %.1f ms (limit %.0f ms), %u %s stream%s, digest %s\n",
	       e->o->migration_id, (double)s->sent / 1048576.0, total,
	       s->iterations, s->iterations == 1 ? "" : "s", downtime,
	       e->o->downtime_limit_ms, s->streams,
	       e->xops ? e->xops->name : "", s->streams == 1 ? "" : "s",
	       hex[0] && !strcmp(hex, s->peer_digest) ?
		       "match (verified before the destination ran)" :
		       "not verified (--verify none, or a device without one)");
	fflush(stdout);
	free(j);
}

static int src_handshake(struct vfm_eng *e)
{
	const char *req[VFM_DESC_FEATURES_MAX];
	struct vfm_hs_cfg cfg = {
		.role = VFM_ROLE_SOURCE,
		.secret = e->o->secret,
		.secret_len = e->o->secret_len,
		.features = VFM_PFEAT_TCP | VFM_PFEAT_PRE_COPY | VFM_PFEAT_MMAP,
		.desc = e->descs,
		.ndesc = e->ndev,
		.req = req,
		.nreq = e->desc.nfeatures,
		.transport = e->o->transport,
		.streams = e->o->streams,
		.cipher = e->o->encrypt ? VFM_DATA_CIPHER : NULL,
	};
	uuid_t u;

	for (unsigned int i = 0; i < e->desc.nfeatures; i++)
		req[i] = e->desc.features[i];
	uuid_parse(e->o->migration_id, u);
	memcpy(cfg.migration_id, u, sizeof(u));
	return vfm_eng_handshake(e, &cfg);
}

static int finish(struct src *s);

/* Drive the switchover one event on and do what it says. */
static void sw_event(struct src *s, enum vfm_sw_src_event ev)
{
	struct vfm_eng *e = &s->e;
	struct vfm_sw_step st = vfm_sw_src_step(s->sw, ev);

	vfm_eng_log_switch(vfm_sw_src_state_name(s->sw),
			   vfm_sw_src_event_name(ev),
			   vfm_sw_src_state_name(st.next), st.action);
	s->sw = st.next;
	/* STOP_DEVICE: final() stops the device itself. Resume first of
	 * all, then tell the peer, then close the streams. */
	if (st.action & VFM_SW_A_RESUME)
		recover(s);
	if (st.action & VFM_SW_A_SEND_FAIL)
		vfm_eng_fail(e, VFM_EXIT_PEER, e->why);
	if (st.action & (VFM_SW_A_RESUME | VFM_SW_A_SEND_FAIL))
		vfm_eng_xport_teardown(e);
	if (st.action & VFM_SW_A_SEND_RUN) {
		struct vfm_ctl m = { .type = VFM_CTL_RUN };

		/* The point of no return: from here the source never resumes
		 * unless the destination says it will not run. */
		s->t_run = vfm_now_ms();
		vfm_log_msg(
			"point_of_no_return", "info",
			"The destination holds the verified state; RUN sent.");
		vfm_eng_crash_point("before_run");
		if (vfm_eng_ctl_send(e, &m))
			vfm_log_msg("run_unconfirmed", "warning", "%s", e->why);
		vfm_eng_crash_point("run_sent");
	}
}

/* One outcome query: a new connection, the handshake, GO {QUERY}. 1 and
 * @running when the destination answered, 0 when it could not be asked. */
static int query_once(struct src *s, bool *running)
{
	struct vfm_eng *q = calloc(1, sizeof(*q));
	struct vfm_ctl m = { .type = VFM_CTL_GO, .mode = VFM_CTL_MODE_QUERY };
	int ret = 0;

	if (!q)
		return 0;
	*q = (struct vfm_eng){ .o = s->e.o,
			       .role = "source",
			       .dev = s->e.dev,
			       .desc = s->e.desc };
	q->conn.fd = -1;
	if (vfm_conn_connect(&q->conn, s->e.o->addr, 1000) == 0) {
		ret = src_handshake(q);
		if (!ret && vfm_hs_verdict(q->hs)->accept &&
		    !vfm_eng_ctl_send(q, &m)) {
			ret = vfm_eng_ctl_recv(q, 3000, &m);
			if (ret == 1 && m.type == VFM_CTL_COMMIT) {
				*running = true;
				ret = 1;
			} else if (ret == -ECANCELED) {
				*running = false;
				ret = 1;
			} else {
				ret = 0;
			}
		} else {
			ret = 0;
		}
	}
	vfm_conn_close(&q->conn);
	vfm_hs_free(q->hs);
	free(q);
	return ret;
}

/* QUERY: ask until the destination answers or --outcome-s is over. */
static void ask_outcome(struct src *s)
{
	double until = vfm_now_ms() + s->e.o->outcome_s * 1000;
	unsigned int tries = 0;

	vfm_log_msg(
		"outcome_query", "warning",
		"Lost the destination after RUN (%s); asking it for the outcome for up to %.0f s. The device stays stopped.",
		s->e.why, s->e.o->outcome_s);
	vfm_eng_xport_teardown(&s->e);
	vfm_conn_close(&s->e.conn);
	while (s->sw == VFM_SW_S_QUERY) {
		bool running = false;

		tries++;
		if (query_once(s, &running) == 1) {
			struct vfm_json j;

			vfm_json_init(&j);
			vfm_json_str(&j, "answer",
				     running ? "running" : "aborted");
			vfm_json_u64(&j, "tries", tries);
			vfm_log_emit("outcome", &j);
			if (running) {
				s->t_commit = vfm_now_ms();
				sw_event(s, VFM_SW_SE_COMMITTED);
			} else {
				snprintf(
					s->e.why, sizeof(s->e.why),
					"The destination aborted after RUN and will not run this state.");
				sw_event(s, VFM_SW_SE_ABORTED);
			}
			return;
		}
		if (vfm_now_ms() >= until) {
			sw_event(s, VFM_SW_SE_QUERY_EXPIRED);
			return;
		}
		poll(NULL, 0, 500);
	}
}

/* LOADED arrived: compare, cross the point of no return, wait COMMIT. */
static int switch_over(struct src *s)
{
	struct vfm_eng *e = &s->e;
	bool checked;
	struct vfm_json j;

	digest_join(s);
	checked = s->digest[0] && s->peer_digest[0];

	vfm_json_init(&j);
	vfm_json_str(&j, "state_digest", s->digest);
	vfm_json_str(&j, "destination_state_digest", s->peer_digest);
	vfm_json_bool(&j, "verified", checked);
	vfm_json_bool(&j, "match",
		      checked && !strcmp(s->digest, s->peer_digest));
	vfm_json_f64(&j, "digest_ms", s->digest_ms);
	vfm_log_emit("loaded", &j);
	if (checked && strcmp(s->digest, s->peer_digest)) {
		snprintf(
			e->why, sizeof(e->why),
			"The destination loaded a state that differs from this device's (digest %.16s... here, %.16s... there); it was not started.",
			s->digest, s->peer_digest);
		vfm_log_msg("state_mismatch", "error", "%s", e->why);
		sw_event(s, VFM_SW_SE_LOADED_BAD);
		return finish(s);
	}
	if (!checked)
		vfm_log_msg("not_verified", "warning",
			    "The state digests were not compared (%s).",
			    e->o->verify ? "a device without a digest" :
					   "--verify none");
	sw_event(s, VFM_SW_SE_LOADED_OK);
	while (s->sw == VFM_SW_S_GO) {
		int ret = 0;

		if (ms_left(s) <= 0) {
			snprintf(e->why, sizeof(e->why),
				 "No COMMIT within %.0f s after RUN.",
				 e->o->timeout_s);
			sw_event(s, VFM_SW_SE_FAULT);
			break;
		}
		{
			bool any = false;

			ret = ctl_drain(s, &any);
			if (any)
				progress(s);
		}
		if (s->committed) {
			vfm_eng_crash_point("committed");
			sw_event(s, VFM_SW_SE_COMMITTED);
			break;
		}
		if (ret == -ECANCELED) {
			sw_event(s, VFM_SW_SE_ABORTED);
			break;
		}
		if (ret) {
			sw_event(s, VFM_SW_SE_FAULT);
			break;
		}
		{
			struct pollfd pf = { .fd = e->conn.fd,
					     .events = POLLIN };

			poll(&pf, 1, 20);
		}
	}
	if (s->sw == VFM_SW_S_QUERY)
		ask_outcome(s);
	return finish(s);
}

/* The end, whichever it is: log, stats, a sentence, the exit code. */
static int finish(struct src *s)
{
	struct vfm_eng *e = &s->e;
	struct vfm_ctl bye = { .type = VFM_CTL_BYE };
	struct vfm_json j;
	int code;

	digest_join(s);

	if (e->conn.fd >= 0 && e->hs && vfm_hs_done(e->hs)) {
		char why[sizeof(e->why)];

		/* The destination may exit; a failure here is no news. */
		memcpy(why, e->why, sizeof(why));
		vfm_eng_ctl_send(e, &bye);
		memcpy(e->why, why, sizeof(why));
	}
	vfm_eng_xport_teardown(e);
	if (s->sw == VFM_SW_S_MIGRATED) {
		vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_STOP);
		if (!s->t_commit)
			s->t_commit = vfm_now_ms();
		summary(s);
		return VFM_EXIT_OK;
	}
	vfm_log_progress_end();
	vfm_json_init(&j);
	if (s->sw == VFM_SW_S_UNKNOWN) {
		vfm_json_str(&j, "result", "unknown");
		vfm_json_str(&j, "reason", e->why);
		vfm_json_str(&j, "last_seen",
			     s->committed ? "commit" :
			     s->t_run	  ? "loaded, RUN sent" :
					    "loaded");
		vfm_eng_json_device(e, &j, false);
		vfm_log_emit("summary", &j);
		vfm_eng_write_stats(e, &j);
		fprintf(stderr,
			"vfmig: migration %s: OUTCOME UNKNOWN. RUN was sent and the destination could not be asked within %.0f s (%s). This device stays STOPPED: fence, then settle with 'vfmig outcome --to %s --migration-id %s --secret-file FILE' before resuming it.\n",
			e->o->migration_id, e->o->outcome_s, e->why, e->o->addr,
			e->o->migration_id);
		return VFM_EXIT_UNKNOWN;
	}
	code = s->resume_failed ? VFM_EXIT_RESUME_FAILED : VFM_EXIT_PEER;
	vfm_json_str(&j, "result", "failed");
	vfm_json_str(&j, "reason", e->why);
	vfm_json_bool(&j, "source_resumed", !s->resume_failed);
	vfm_eng_json_device(e, &j, false);
	vfm_log_emit("summary", &j);
	vfm_eng_write_stats(e, &j);
	if (s->resume_failed)
		fprintf(stderr,
			"vfmig: migration %s failed: %s The source device could NOT be resumed.\n",
			e->o->migration_id, e->why);
	else
		fprintf(stderr,
			"vfmig: migration %s failed: %s The source device is running again.\n",
			e->o->migration_id, e->why);
	return code;
}

int vfm_engine_send(struct vfm_mig_opts *o)
{
	struct src *s = calloc(1, sizeof(*s));
	struct vfm_eng *e;
	struct vfm_ctl m;
	struct vfm_json j;
	int ret, code = VFM_EXIT_PEER;

	if (!s)
		return VFM_EXIT_ERROR;
	e = &s->e;
	e->o = o;
	e->role = "source";
	e->conn.fd = -1;
	e->t0 = vfm_now_ms();
	s->fifo = calloc(SRC_FIFO, sizeof(*s->fifo));
	if (!s->fifo) {
		free(s);
		return VFM_EXIT_ERROR;
	}
	if (vfm_eng_open_device(e)) {
		vfm_log_msg("error", "error", "%s", e->why);
		code = VFM_EXIT_DEVICE;
		goto out;
	}
	vfm_json_init(&j);
	vfm_json_str(&j, "to", o->addr);
	vfm_json_str(&j, "transport", o->transport);
	vfm_json_u64(&j, "streams", o->streams);
	vfm_json_bool(&j, "check_only", o->check);
	/* The state before anything happens, to compare with any resume;
	 * the time it takes tells what the destination's check will cost. */
	{
		char hex[VFM_DIGEST_HEX] = "";
		double t = vfm_now_ms();

		if (!vfm_dev_digest(e->dev, hex)) {
			s->verify_est_ms = vfm_now_ms() - t;
			vfm_json_str(&j, "state_digest", hex);
			vfm_json_f64(&j, "digest_ms", s->verify_est_ms);
		}
		vfm_eng_json_device(e, &j, false);
	}
	vfm_log_emit("start", &j);
	ret = vfm_conn_connect(&e->conn, o->addr, vfm_eng_timeout_ms(e));
	if (ret) {
		vfm_log_msg("error", "error", "%s", e->conn.why);
		goto out;
	}
	vfm_eng_crash_point("handshake");
	ret = src_handshake(e);
	if (ret) {
		code = ret == -EACCES ? VFM_EXIT_AUTH : VFM_EXIT_PEER;
		vfm_log_msg("handshake_failed", "error", "%s", e->why);
		goto out;
	}
	vfm_eng_log_verdict(e);
	if (!vfm_hs_verdict(e->hs)->accept) {
		vfm_json_init(&j);
		vfm_json_str(&j, "result", "refused");
		vfm_json_u64(&j, "failed_rules", vfm_eng_verdict_failures(e));
		vfm_eng_json_device(e, &j, true);
		vfm_log_emit("summary", &j);
		vfm_eng_write_stats(e, &j);
		printf("vfmig: migration %s refused by the destination; the source device stays %s.\n",
		       o->migration_id, "RUNNING");
		code = VFM_EXIT_REFUSED;
		goto out;
	}
	m = (struct vfm_ctl){ .type = VFM_CTL_GO,
			      .mode = o->check ? VFM_CTL_MODE_CHECK :
						 VFM_CTL_MODE_MIGRATE };
	ret = vfm_eng_ctl_send(e, &m);
	if (o->check) {
		vfm_json_init(&j);
		vfm_json_str(&j, "result", "compatible");
		vfm_eng_json_device(e, &j, false);
		vfm_log_emit("summary", &j);
		vfm_eng_write_stats(e, &j);
		printf("vfmig: check %s: the destination accepts this device.\n",
		       o->migration_id);
		code = VFM_EXIT_OK;
		goto out;
	}
	if (ret)
		goto fail;
	/* The destination prepares its device and transport. */
	do {
		ret = vfm_eng_ctl_recv(e, vfm_eng_timeout_ms(e), &m);
	} while (ret == 1 && m.type != VFM_CTL_XPORT);
	if (ret <= 0) {
		if (!ret)
			snprintf(
				e->why, sizeof(e->why),
				"The destination did not get ready within %.0f s.",
				o->timeout_s);
		goto fail;
	}
	progress(s);
	if (o->integrity && vfm_eng_smac_start(e))
		goto fail;
	ret = setup_transport(s, &m);
	if (ret)
		goto fail;
	progress(s);
	ret = s->stopped ? 0 : precopy(s);
	if (ret)
		goto fail;
	sw_event(s, VFM_SW_SE_STOP);
	ret = final(s);
	if (ret)
		goto fail;
	code = switch_over(s);
	goto out;
fail:
	vfm_log_progress_end();
	vfm_log_msg("migration_failed", "error", "%s", e->why);
	sw_event(s, ret == -ECANCELED	? VFM_SW_SE_ABORTED :
		    vfm_eng_cancelled() ? VFM_SW_SE_CANCEL :
					  VFM_SW_SE_FAULT);
	code = finish(s);
out:
	vfm_eng_xport_teardown(e);
	vfm_conn_close(&e->conn);
	vfm_hs_free(e->hs);
	vfm_smac_free(&e->smac);
	vfm_eng_close_device(e);
	free(s->fifo);
	free(s);
	return code;
}

int vfm_engine_outcome(struct vfm_mig_opts *o)
{
	struct src *s = calloc(1, sizeof(*s));
	double until = vfm_now_ms() + o->outcome_s * 1000;
	struct vfm_json j;
	bool running = false;
	int code = VFM_EXIT_UNKNOWN, got = 0;

	if (!s)
		return VFM_EXIT_ERROR;
	s->e.o = o;
	s->e.role = "source";
	s->e.conn.fd = -1;
	if (vfm_eng_open_device(&s->e)) {
		fprintf(stderr, "vfmig outcome: %s\n", s->e.why);
		free(s);
		return VFM_EXIT_DEVICE;
	}
	while (!(got = query_once(s, &running)) && vfm_now_ms() < until &&
	       !vfm_eng_cancelled())
		poll(NULL, 0, 500);
	vfm_json_init(&j);
	vfm_json_str(&j, "answer",
		     !got    ? "unknown" :
		     running ? "running" :
			       "aborted");
	if (got && !running) {
		code = VFM_EXIT_PEER;
		if (o->resume) {
			int ret = vfm_dev_set_state(s->e.dev,
						    VFIO_DEVICE_STATE_RUNNING);

			vfm_json_bool(&j, "resumed", ret == 0);
			if (ret)
				code = VFM_EXIT_RESUME_FAILED;
		}
	} else if (got) {
		code = VFM_EXIT_OK;
	}
	vfm_eng_json_device(&s->e, &j, false);
	vfm_log_emit("outcome", &j);
	printf("%s\n", !got ? "unknown" : running ? "running" : "aborted");
	if (!got)
		fprintf(stderr,
			"vfmig outcome: the destination %s did not answer within %.0f s: keep the source fenced.\n",
			o->addr, o->outcome_s);
	vfm_eng_close_device(&s->e);
	free(s);
	return code;
}
