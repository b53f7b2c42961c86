// SPDX-License-Identifier: MIT
/*
 * The destination side (vfmig recv): serve one migration. Handshake (the
 * destination decides); after ACCEPT and GO, RESUMING, the landing ring
 * registered with the transport, writes loaded into the device in stream
 * order with credits back, then RESUMING -> STOP (verify) -> RUNNING and
 * the commit. Any failure before the commit resets the device.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cmd.h"
#include "dev_sim.h"
#include "dev_set.h"
#include "engine.h"
#include "listener.h"
#include "loader.h"
#include "vfm/switchover.h"

#define DST_PEND_MAX 4096
/* Once the source has stopped its device, the final data comes on the
 * transport and DONE on the control connection: a 1 ms sleep in either's
 * wait would be downtime, so the loop looks at both in turn and naps on the
 * control socket in between: DST_NAP_NS for DST_SPIN_MS after each event,
 * DST_NAP_IDLE_NS when the source is slower (a device still saving). */
#define DST_SPIN_MS 2.0
#define DST_NAP_NS 20000
#define DST_NAP_IDLE_NS 200000

struct pend {
	uint64_t pos, roff;
	uint32_t len;
};

struct dst {
	struct vfm_eng e;
	int lfd;
	uint64_t landing;
	unsigned int streams;
	bool sealed; /* the data plane is AES-256-GCM (--encrypt) */
	uint64_t loaded, credited, total;
	bool have_total;
	struct pend pend[DST_PEND_MAX]; /* received, not yet queued */
	unsigned int npend;
	uint64_t queued; /* handed to the loader up to here */
	struct vfm_loader *ld; /* while receiving */
	char load_why[512]; /* the loader's failure (its thread writes it) */
	double loader_cpu_s;
	double last_progress, t_stop_seen, t_first;
	bool touched; /* the device left RUNNING */
	bool device_failed; /* the device refused the stream */
	uint32_t iterations; /* the source's pre-copy iterations */
	bool corrupt; /* test hook: VFMIG_TEST_CORRUPT flips one byte */
	struct vfm_lsn lsn; /* the listening port, for the whole run */
	bool lsn_ok;
	enum vfm_sw_dst_state sw; /* the switchover (vfm/switchover.h) */
	char digest[VFM_DIGEST_HEX]; /* the loaded state, while stopped */
	double verify_ms, resume_ms;
	int fail_code; /* exit code once ABORTED */
	bool bye; /* the source knows the outcome */
	struct vfm_ctl done; /* DONE: the total and the stream MAC */
};

/*
 * On the loader thread (loader.h): one segment, next in stream order, into
 * the device. The stream MAC runs here too, over the bytes in the order
 * they are loaded. A refusal is described in d->load_why, which the agent's
 * thread reads once it sees the loader's error.
 */
static int load_one(void *ctx, const struct vfm_load_seg *p)
{
	struct dst *d = ctx;
	uint8_t *ring = d->e.mr.addr;
	const char *w;
	double c0;
	int ret;

	if (d->corrupt && p->pos >= 8192) {
		ring[p->roff + p->len / 2] ^= 0x40;
		d->corrupt = false;
	}
	if (vfm_smac_active(&d->e.smac))
		vfm_smac_update(&d->e.smac, ring + p->roff, p->len);
	c0 = vfm_thread_cpu_s();
	ret = vfm_dev_load_commit(d->e.dev, p->roff, p->len);
	d->e.cpu_dev_s += vfm_thread_cpu_s() - c0;
	if (!ret)
		return 0;
	w = vfm_sim_load_error(d->e.dev);
	snprintf(d->load_why, sizeof(d->load_why),
		 "The device refused the stream at byte %llu: %s%s",
		 (unsigned long long)p->pos, strerror(-ret), w[0] ? "; " : ".");
	if (w[0])
		strncat(d->load_why, w,
			sizeof(d->load_why) - strlen(d->load_why) - 1);
	return ret;
}

/* Hand every received write that is next in stream order to the loader. */
static int queue_ready(struct dst *d)
{
	bool again = true;

	while (again) {
		again = false;
		for (unsigned int i = 0; i < d->npend; i++) {
			struct pend p = d->pend[i];
			struct vfm_load_seg s = { .pos = p.pos,
						  .roff = p.roff,
						  .len = p.len };
			int ret;

			if (p.pos != d->queued)
				continue;
			ret = vfm_loader_push(d->ld, &s);
			if (ret == -EAGAIN)
				return 0;
			if (ret)
				return ret;
			d->queued += p.len;
			d->pend[i] = d->pend[--d->npend];
			again = true;
			break;
		}
	}
	return 0;
}

/* The loader's progress, and its failure as this side's. */
static int loader_progress(struct dst *d, bool *moved)
{
	uint64_t before = d->loaded;
	int err;

	d->loaded = vfm_loader_loaded(d->ld, &err);
	*moved |= d->loaded != before;
	if (!err)
		return 0;
	d->device_failed = true;
	snprintf(d->e.why, sizeof(d->e.why), "%s", d->load_why);
	return err;
}

static int send_credit(struct dst *d, bool force)
{
	struct vfm_ctl m = { .type = VFM_CTL_CREDIT, .pos = d->loaded };

	if (d->loaded == d->credited)
		return 0;
	if (!force && d->npend && d->loaded - d->credited < d->landing / 8)
		return 0;
	d->credited = d->loaded;
	return vfm_eng_ctl_send(&d->e, &m);
}

static int receive_loop(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	struct vfm_cqe cqe[64];
	uint64_t total_est = 0;

	vfm_dev_data_size(e->dev, &total_est);
	d->last_progress = vfm_now_ms();
	for (;;) {
		struct vfm_ctl m;
		bool any = false;
		int n, ret, wait = 1;
		long nap = 0;

		if (d->t_stop_seen) {
			wait = 0;
			nap = vfm_now_ms() - d->last_progress < DST_SPIN_MS ?
				      DST_NAP_NS :
				      DST_NAP_IDLE_NS;
		}
		n = vfm_xport_poll(e->x, cqe, 64, wait);
		if (n == -EBADMSG && d->sealed) {
			snprintf(
				e->why, sizeof(e->why),
				"A sealed data segment failed authentication (%s): it was changed on the way, or sealed under another migration's key.",
				VFM_DATA_CIPHER);
			return n;
		}
		if (n < 0) {
			snprintf(e->why, sizeof(e->why),
				 "The data transport failed: %s.",
				 strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++) {
			if (cqe[i].status) {
				snprintf(e->why, sizeof(e->why),
					 "A data stream failed: %s.",
					 strerror(-cqe[i].status));
				return cqe[i].status;
			}
			if (cqe[i].kind != VFM_CQE_RECV)
				continue;
			if (d->npend == DST_PEND_MAX ||
			    cqe[i].imm < d->queued ||
			    cqe[i].roff != cqe[i].imm % d->landing) {
				snprintf(
					e->why, sizeof(e->why),
					"The source wrote outside the credit window.");
				return -EPROTO;
			}
			d->pend[d->npend++] =
				(struct pend){ .pos = cqe[i].imm,
					       .roff = cqe[i].roff,
					       .len = cqe[i].len };
			any = true;
			if (!d->t_first)
				d->t_first = vfm_now_ms();
		}
		ret = queue_ready(d);
		if (!ret)
			ret = loader_progress(d, &any);
		else
			loader_progress(d, &any);
		if (ret)
			return ret;
		ret = send_credit(d, false);
		if (ret)
			return ret;
		vfm_eng_crash_point(d->loaded > (64u << 20) ? "precopy_64m" :
							      "none");
		for (;;) {
			ret = vfm_eng_ctl_recv(e, 0, &m);
			if (ret < 0)
				return ret;
			if (!ret)
				break;
			any = true;
			if (m.type == VFM_CTL_PHASE) {
				struct vfm_json j;

				d->t_stop_seen = vfm_now_ms();
				d->iterations = m.iteration;
				vfm_json_init(&j);
				vfm_json_str(&j, "phase", m.phase);
				vfm_json_u64(&j, "iterations", m.iteration);
				vfm_json_u64(&j, "loaded_bytes", d->loaded);
				vfm_log_emit("phase_stop_copy", &j);
				vfm_eng_crash_point("stop_copy");
			} else if (m.type == VFM_CTL_DONE) {
				d->done = m;
				d->total = m.total;
				d->have_total = true;
			} else {
				snprintf(e->why, sizeof(e->why),
					 "Unexpected %s from the source.",
					 vfm_ctl_name(m.type));
				return -EPROTO;
			}
		}
		if (vfm_eng_cancelled()) {
			snprintf(e->why, sizeof(e->why),
				 "Cancelled by signal %d.",
				 vfm_eng_cancelled());
			return -EINTR;
		}
		/* A long load is progress too: the loader still has work. */
		if (!any && d->queued == d->loaded &&
		    vfm_now_ms() - d->last_progress > vfm_eng_timeout_ms(e)) {
			snprintf(e->why, sizeof(e->why),
				 "The source made no progress for %.0f s.",
				 e->o->timeout_s);
			return -ETIMEDOUT;
		}
		if (any || d->queued != d->loaded)
			d->last_progress = vfm_now_ms();
		if (nap && !any) {
			struct pollfd pf[2] = {
				{ .fd = e->conn.fd, .events = POLLIN },
				{ .fd = vfm_loader_fd(d->ld),
				  .events = POLLIN },
			};
			struct timespec ts = { .tv_nsec = nap };
			uint64_t v;

			if (ppoll(pf, 2, &ts, NULL) > 0 &&
			    (pf[1].revents & POLLIN) &&
			    read(pf[1].fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another read took it */
			}
		}
		ret = send_credit(d, true);
		if (ret)
			return ret;
		vfm_log_progress("receiving", d->loaded, total_est, 0);
		if (d->have_total && d->loaded == d->total && !d->npend)
			return 0;
		if (d->have_total && d->queued > d->total) {
			snprintf(e->why, sizeof(e->why),
				 "The source sent more than it announced.");
			return -EPROTO;
		}
	}
}

/*
 * Receive and load the whole stream: the agent's thread orders the
 * transport's completions and sends credits; the loader thread loads
 * (loader.h). The loader is gone when this returns.
 */
static int receive(struct dst *d)
{
	int ret = vfm_loader_start(&d->ld, load_one, d, 0, DST_PEND_MAX);

	if (ret) {
		snprintf(d->e.why, sizeof(d->e.why),
			 "Cannot start the loader thread: %s.", strerror(-ret));
		return ret;
	}
	ret = receive_loop(d);
	d->loader_cpu_s = vfm_loader_cpu_s(d->ld);
	vfm_loader_stop(d->ld);
	d->ld = NULL;
	return ret;
}

/*
 * The source's OFFER says whether the data plane is sealed. A destination
 * started with --encrypt refuses one that is not; any destination refuses
 * a cipher it does not know, or one on a transport that cannot open it.
 * All of this before RESUMING, with the source still running.
 */
static int data_cipher(struct dst *d, const struct vfm_offer *off)
{
	struct vfm_eng *e = &d->e;

	d->sealed = off->cipher[0] != 0;
	if (d->sealed && strcmp(off->cipher, VFM_DATA_CIPHER)) {
		snprintf(
			e->why, sizeof(e->why),
			"The source wants the data sealed with '%s'; this destination knows only %s.",
			off->cipher, VFM_DATA_CIPHER);
		return -ENOTSUP;
	}
	if (d->sealed && strcmp(off->transport, "tcp")) {
		snprintf(
			e->why, sizeof(e->why),
			"The source wants the data sealed on %s; only tcp can carry sealed data.",
			off->transport);
		return -ENOTSUP;
	}
	if (!d->sealed && e->o->encrypt) {
		snprintf(
			e->why, sizeof(e->why),
			"This destination requires --encrypt, and the source would send the state in clear; start the source with --encrypt.");
		return -EPERM;
	}
	vfm_log_msg("data_plane", "info", "Data plane: %s over %s, %s.",
		    d->sealed ? "sealed with " VFM_DATA_CIPHER :
				"in clear (authenticated by the stream MAC)",
		    off->transport,
		    d->sealed ? "its key derived from this handshake" :
				"start both sides with --encrypt to seal it");
	return 0;
}

static int prepare(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	const struct vfm_offer *off = vfm_hs_offer(e->hs);
	struct vfm_xport_cfg cfg = {
		.streams = off->streams ? off->streams : 1,
		.max_write = 1u << 20,
		.depth = 32,
		.timeout_ms = vfm_eng_timeout_ms(e),
	};
	struct vfm_ctl m = { .type = VFM_CTL_XPORT };
	char host[256], port[32];
	void *addr;
	size_t size;
	int ret;

	d->streams = cfg.streams;
	ret = data_cipher(d, off);
	if (ret)
		return ret;
	if (d->streams > 64) {
		snprintf(e->why, sizeof(e->why),
			 "The source asked for %u streams; at most 64.",
			 d->streams);
		return -EINVAL;
	}
	e->xops = vfm_xport_find(off->transport);
	if (!e->xops) {
		snprintf(e->why, sizeof(e->why),
			 "The transport '%s' is not built in.", off->transport);
		return -ENOTSUP;
	}
	d->touched = true;
	ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_RESUMING);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The device refused RESUMING: %s.", strerror(-ret));
		return ret;
	}
	ret = vfm_dev_buf(e->dev, 0, &addr, &size);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The device has no migration buffer: %s.",
			 strerror(-ret));
		return ret;
	}
	d->landing = size;
	ret = vfm_eng_xport_create(e, &cfg, d->sealed);
	if (ret == -ENOKEY)
		return ret;
	if (!ret)
		ret = vfm_xport_reg(e->x, addr, size, &e->mr);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "Cannot set up the %s transport: %s.", off->transport,
			 strerror(-ret));
		return ret;
	}
	e->mr_reg = true;
	vfm_addr_split(e->o->addr, host, sizeof(host), port, sizeof(port));
	ret = vfm_xport_listen(e->x, host[0] ? host : "0.0.0.0", &e->mr,
			       &m.info);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The transport cannot listen on %s: %s.", host,
			 strerror(-ret));
		return ret;
	}
	snprintf(m.transport, sizeof(m.transport), "%s", e->xops->name);
	m.landing = d->landing;
	m.streams = d->streams;
	ret = vfm_eng_ctl_send(e, &m);
	if (ret)
		return ret;
	ret = vfm_xport_accept(e->x, vfm_eng_timeout_ms(e));
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The source's data streams did not connect: %s.",
			 strerror(-ret));
		return ret;
	}
	vfm_log_msg(
		"phase_receiving", "info",
		"RESUMING; %u %s stream%s connected, landing ring %llu bytes (%s).",
		d->streams, e->xops->name, d->streams == 1 ? "" : "s",
		(unsigned long long)d->landing,
		vfm_dev_is_set(e->dev) ?
			"the set's ring, each frame copied into its device's buffer" :
		e->dev->fb_buf ? "loaded with write()" :
				 "the device's mapped buffer");
	return 0;
}

/* RESUMING -> STOP: the device checks the whole stream and applies it;
 * then, still stopped, the digest of what it now holds. */
static int verify(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	double t = vfm_now_ms();
	uint8_t tag[VFM_SMAC_TAG_LEN];
	int ret;

	/* First the stream: exactly what the source sent, in its order. */
	if (e->o->integrity && !d->done.has_mac) {
		snprintf(
			e->why, sizeof(e->why),
			"The source sent no stream MAC (--integrity none there); this destination requires one.");
		return -EBADMSG;
	}
	if (d->done.has_mac &&
	    (vfm_smac_final(&e->smac, tag) ||
	     !vfm_tag_equal(tag, d->done.mac, sizeof(tag)))) {
		snprintf(
			e->why, sizeof(e->why),
			"The stream's MAC does not match: data was modified, replayed, reordered or lost on the way; the state was not applied.");
		return -EBADMSG;
	}

	if (getenv("VFMIG_TEST_SLOW_LOAD_MS")) /* test hook */
		poll(NULL, 0, atoi(getenv("VFMIG_TEST_SLOW_LOAD_MS")));
	ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_STOP);
	if (ret) {
		const char *w = vfm_sim_load_error(e->dev);

		snprintf(
			e->why, sizeof(e->why),
			"The device refused the complete stream (RESUMING->STOP): %s%s%s",
			strerror(-ret), w[0] ? "; " : ".", w);
		return ret;
	}
	d->resume_ms = vfm_now_ms() - t;
	if (getenv("VFMIG_TEST_ALTER_LOADED")) /* test hook: a wrong state */
		vfm_sim_poke(e->dev, 4096, "!", 1);
	t = vfm_now_ms();
	d->digest[0] = '\0';
	if (e->o->verify)
		vfm_dev_digest(e->dev, d->digest);
	d->verify_ms = vfm_now_ms() - t;
	return 0;
}

/* Drive the switchover one event on and do what it says. */
static void sw_event(struct dst *d, enum vfm_sw_dst_event ev)
{
	struct vfm_eng *e = &d->e;
	struct vfm_sw_step st = vfm_sw_dst_step(d->sw, ev);
	struct vfm_json j;

	vfm_eng_log_switch(vfm_sw_dst_state_name(d->sw),
			   vfm_sw_dst_event_name(ev),
			   vfm_sw_dst_state_name(st.next), st.action);
	d->sw = st.next;
	if (st.action & VFM_SW_A_RESET) {
		int ret;

		vfm_eng_xport_teardown(e);
		ret = d->touched ? vfm_dev_reset(e->dev) : 0;
		vfm_json_init(&j);
		vfm_json_bool(&j, "ok", ret == 0);
		vfm_eng_json_device(e, &j, false);
		vfm_log_emit("destination_reset", &j);
	}
	if (st.action & VFM_SW_A_SEND_LOADED) {
		struct vfm_ctl m = { .type = VFM_CTL_LOADED,
				     .resume_us =
					     (uint64_t)(d->resume_ms * 1e3) };

		snprintf(m.digest, sizeof(m.digest), "%s", d->digest);
		if (vfm_eng_ctl_send(e, &m)) {
			sw_event(d, VFM_SW_DE_FAULT);
			return;
		}
	}
	if (st.action & VFM_SW_A_START) {
		double t = vfm_now_ms();
		int ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_RUNNING);

		if (ret) {
			snprintf(
				e->why, sizeof(e->why),
				"The device did not start (STOP->RUNNING): %s.",
				strerror(-ret));
			d->fail_code = VFM_EXIT_DEVICE;
			sw_event(d, VFM_SW_DE_START_FAILED);
			return;
		}
		d->resume_ms += vfm_now_ms() - t;
		{
			struct vfm_ctl m = {
				.type = VFM_CTL_COMMIT,
				.resume_us = (uint64_t)(d->resume_ms * 1e3)
			};

			snprintf(m.digest, sizeof(m.digest), "%s", d->digest);
			/* Lost or not, the source asks if it must. */
			if (vfm_eng_ctl_send(e, &m))
				vfm_log_msg("commit_unconfirmed", "warning",
					    "%s", e->why);
		}
		vfm_log_msg("committed", "info",
			    "The device is RUNNING with the migrated state.");
	}
	if (st.action & VFM_SW_A_SEND_FAIL)
		vfm_eng_fail(e, (uint16_t)d->fail_code, e->why);
}

/* An authenticated peer on the listening port: answer its outcome query
 * (the source lost its connection after RUN, or wants to know). */
static void answer_query(struct dst *d, struct vfm_conn *c, struct vfm_hs *hs)
{
	struct vfm_eng *e = &d->e;
	struct vfm_conn keep = e->conn;
	struct vfm_hs *keep_hs = e->hs;
	struct vfm_ctl m;
	int ret;

	/* The query speaks through the engine's control helpers. */
	e->conn = *c;
	e->hs = hs;
	ret = vfm_eng_ctl_recv(e, 2000, &m);
	if (ret == 1 && m.type == VFM_CTL_GO && m.mode == VFM_CTL_MODE_QUERY) {
		struct vfm_json j;

		sw_event(d, VFM_SW_DE_QUERY);
		m = (struct vfm_ctl){ .type = d->sw == VFM_SW_D_RUNNING ?
						      VFM_CTL_COMMIT :
						      VFM_CTL_FAIL,
				      .code = (uint16_t)d->fail_code };
		if (m.type == VFM_CTL_FAIL)
			snprintf(
				m.text, sizeof(m.text),
				"The destination aborted this migration and will not run it.");
		vfm_eng_ctl_send(e, &m);
		vfm_json_init(&j);
		vfm_json_str(&j, "peer", e->conn.peer);
		vfm_json_str(&j, "answer",
			     d->sw == VFM_SW_D_RUNNING ? "running" : "aborted");
		vfm_log_emit("outcome_query", &j);
	} else {
		vfm_log_msg("connection_refused", "warning",
			    "An authenticated peer %s sent no outcome query.",
			    e->conn.peer);
	}
	vfm_conn_close(&e->conn);
	vfm_hs_free(e->hs);
	e->conn = keep;
	e->hs = keep_hs;
}

/* Serve the listening port for up to @ms. */
static void serve_port(struct dst *d, int ms)
{
	struct vfm_conn *c = malloc(sizeof(*c));
	struct vfm_hs *hs = NULL;

	if (!c || !d->lsn_ok) {
		free(c);
		if (ms > 0)
			poll(NULL, 0, ms);
		return;
	}
	if (vfm_lsn_poll(&d->lsn, ms, c, &hs) == 1)
		answer_query(d, c, hs);
	free(c);
}

/* LOADED: wait for RUN (or anything that decides otherwise). */
static void wait_run(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	double until = vfm_now_ms() + vfm_eng_timeout_ms(e);

	vfm_eng_crash_point("loaded");
	while (d->sw == VFM_SW_D_LOADED) {
		struct vfm_ctl m;
		int ret;

		if (vfm_eng_cancelled()) {
			snprintf(e->why, sizeof(e->why),
				 "Cancelled by signal %d before the switch.",
				 vfm_eng_cancelled());
			sw_event(d, VFM_SW_DE_CANCEL);
			return;
		}
		if (vfm_now_ms() > until) {
			snprintf(e->why, sizeof(e->why),
				 "The source did not say RUN within %.0f s.",
				 e->o->timeout_s);
			sw_event(d, VFM_SW_DE_FAULT);
			return;
		}
		ret = vfm_eng_ctl_recv(e, 20, &m);
		if (ret == -ECANCELED) {
			sw_event(d, VFM_SW_DE_SRC_FAIL);
			return;
		}
		if (ret < 0) {
			sw_event(d, VFM_SW_DE_FAULT);
			return;
		}
		if (ret == 1 && m.type == VFM_CTL_RUN && vfm_eng_cancelled())
			continue; /* the signal came first: the loop cancels */
		if (ret == 1 && m.type == VFM_CTL_RUN) {
			vfm_eng_crash_point("run_received");
			sw_event(d, VFM_SW_DE_RUN);
			return;
		}
		if (ret == 1) {
			snprintf(e->why, sizeof(e->why),
				 "Expected RUN, got %s.", vfm_ctl_name(m.type));
			sw_event(d, VFM_SW_DE_FAULT);
			return;
		}
		serve_port(d, 0);
	}
}

/* After the outcome: until the source says BYE, answer outcome queries
 * for --linger-s, so a source that lost its connection can learn it. */
static void linger(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	double until = vfm_now_ms() + e->o->linger_s * 1000;
	bool conn_ok = e->conn.fd >= 0;

	while (vfm_now_ms() < until && !d->bye) {
		if (conn_ok) {
			struct vfm_ctl m;
			int ret = vfm_eng_ctl_recv(e, 20, &m);

			if (ret == 1 && m.type == VFM_CTL_BYE)
				d->bye = true;
			else if (ret == 1 && m.type == VFM_CTL_RUN &&
				 d->sw == VFM_SW_D_ABORTED)
				sw_event(d, VFM_SW_DE_RUN);
			else if (ret < 0)
				conn_ok = false;
		}
		if (!d->bye)
			serve_port(d, conn_ok ? 0 : 50);
		if (vfm_eng_cancelled() && d->sw == VFM_SW_D_ABORTED)
			break;
	}
	if (!d->bye)
		vfm_log_msg(
			"linger_end",
			d->sw == VFM_SW_D_RUNNING ? "info" : "warning",
			"No word from the source after the outcome (%s); stopped answering queries after %.0f s.",
			vfm_sw_dst_state_name(d->sw), e->o->linger_s);
}

/* Wait for one authenticated source. 0 with a verdict, or a failure. */
static int serve_handshake(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	double deadline = vfm_now_ms() + e->o->wait_s * 1000;
	struct vfm_conn *c = malloc(sizeof(*c));
	int ret = -ETIMEDOUT;

	if (!c)
		return -ENOMEM;
	while (vfm_now_ms() < deadline) {
		if (vfm_eng_cancelled()) {
			snprintf(
				e->why, sizeof(e->why),
				"Cancelled by signal %d while waiting for a source.",
				vfm_eng_cancelled());
			ret = -EINTR;
			break;
		}
		ret = vfm_lsn_poll(&d->lsn, 200, c, &e->hs);
		if (ret < 0) {
			snprintf(e->why, sizeof(e->why),
				 "Cannot accept connections: %s.",
				 strerror(-ret));
			break;
		}
		if (ret == 1) {
			char mid[40];

			e->conn = *c;
			uuid_unparse_lower(vfm_hs_migration_id(e->hs), mid);
			snprintf(e->o->migration_id, sizeof(e->o->migration_id),
				 "%s", mid);
			vfm_log_set_migration_id(mid);
			/* From now on the port answers this migration only. */
			memcpy(d->lsn.cfg.migration_id,
			       vfm_hs_migration_id(e->hs),
			       sizeof(d->lsn.cfg.migration_id));
			vfm_log_msg("connection", "info",
				    "Source %s authenticated.", e->conn.peer);
			ret = 0;
			break;
		}
		ret = -ETIMEDOUT;
	}
	free(c);
	if (ret == -ETIMEDOUT) {
		snprintf(
			e->why, sizeof(e->why),
			"No source authenticated within %.0f s (%lu connection%s dropped, %lu failed authentication).",
			e->o->wait_s, d->lsn.dropped,
			d->lsn.dropped == 1 ? "" : "s", d->lsn.auth_failed);
		if (d->lsn.auth_failed)
			ret = -EACCES;
	}
	return ret;
}

static void summary(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	struct vfm_json j;

	vfm_json_init(&j);
	vfm_json_str(&j, "result", "migrated");
	vfm_json_f64(&j, "total_ms", vfm_now_ms() - e->t0);
	vfm_json_f64(&j, "stop_to_running_ms",
		     d->t_stop_seen ? vfm_now_ms() - d->t_stop_seen : 0);
	vfm_json_f64(&j, "resume_ms", d->resume_ms);
	vfm_json_f64(&j, "verify_ms", d->verify_ms);
	vfm_json_u64(&j, "bytes", d->loaded);
	vfm_json_u64(&j, "iterations", d->iterations);
	vfm_json_str(&j, "transport", e->xops->name);
	vfm_json_str(&j, "cipher", d->sealed ? VFM_DATA_CIPHER : "none");
	vfm_json_u64(&j, "streams", d->streams);
	vfm_eng_json_cpu(e, &j, d->loader_cpu_s);
	/* The state as loaded, taken while the device was stopped: once it
	 * runs, its own workload changes it. */
	vfm_json_str(&j, "state_digest", d->digest);
	vfm_json_bool(&j, "source_confirmed", d->bye);
	vfm_eng_json_device(e, &j, false);
	vfm_log_emit("summary", &j);
	vfm_eng_write_stats(e, &j);
	vfm_log_progress_end();
	printf("vfmig: migration %s received: %.1f MiB, device RUNNING, loaded state digest %s\n",
	       e->o->migration_id, (double)d->loaded / 1048576.0,
	       d->digest[0] ? d->digest : "(not verified)");
	fflush(stdout);
}

static void summary_failed(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	struct vfm_json j;

	vfm_log_progress_end();
	vfm_json_init(&j);
	vfm_json_str(&j, "result", "failed");
	vfm_json_str(&j, "reason", e->why);
	vfm_eng_json_device(e, &j, false);
	vfm_log_emit("summary", &j);
	vfm_eng_write_stats(e, &j);
	fprintf(stderr,
		"vfmig: migration %s failed: %s The device was reset; it never ran this state.\n",
		e->o->migration_id[0] ? e->o->migration_id : "(none)", e->why);
}

int vfm_engine_recv(struct vfm_mig_opts *o)
{
	struct dst *d = calloc(1, sizeof(*d));
	struct vfm_hs_cfg cfg = {
		.role = VFM_ROLE_DESTINATION,
		.features = VFM_PFEAT_TCP | VFM_PFEAT_PRE_COPY | VFM_PFEAT_MMAP,
	};
	struct vfm_eng *e;
	struct vfm_ctl m;
	struct vfm_json j;
	int lfd, ret, code = VFM_EXIT_PEER;

	if (!d)
		return VFM_EXIT_ERROR;
	e = &d->e;
	e->o = o;
	e->role = "destination";
	e->conn.fd = -1;
	e->t0 = vfm_now_ms();
	d->sw = VFM_SW_D_RECEIVING;
	d->fail_code = VFM_EXIT_PEER;
	d->corrupt = getenv("VFMIG_TEST_CORRUPT") != NULL;
	if (vfm_eng_open_device(e)) {
		vfm_log_msg("error", "error", "%s", e->why);
		vfm_log_error_line("recv", e->why);
		code = VFM_EXIT_DEVICE;
		goto out;
	}
	vfm_dev_prepare_resume(e->dev);
	lfd = vfm_listen_tcp(o->addr, e->why, sizeof(e->why));
	if (lfd < 0) {
		vfm_log_msg("error", "error", "%s", e->why);
		vfm_log_error_line("recv", e->why);
		code = VFM_EXIT_USAGE;
		goto out;
	}
	cfg.secret = o->secret;
	cfg.secret_len = o->secret_len;
	cfg.desc = e->descs;
	cfg.ndesc = e->ndev;
	if (o->migration_id[0]) {
		uuid_t u;

		uuid_parse(o->migration_id, u);
		memcpy(cfg.migration_id, u, sizeof(u));
	}
	if (vfm_lsn_init(&d->lsn, lfd, &cfg, o->preauth_s)) {
		close(lfd);
		code = VFM_EXIT_ERROR;
		goto out;
	}
	d->lsn_ok = true;
	vfm_json_init(&j);
	vfm_json_str(&j, "listen", o->addr);
	vfm_eng_json_device(e, &j, false);
	vfm_log_emit("start", &j);
	ret = serve_handshake(d);
	if (ret) {
		code = ret == -EACCES ? VFM_EXIT_AUTH : VFM_EXIT_PEER;
		vfm_log_msg(ret == -EACCES ? "auth_failed" : "error", "error",
			    "%s", e->why);
		vfm_log_error_line("recv", e->why);
		goto out;
	}
	e->t0 = vfm_now_ms();
	vfm_eng_log_verdict(e);
	if (!vfm_hs_verdict(e->hs)->accept) {
		vfm_json_init(&j);
		vfm_json_str(&j, "result", "refused");
		vfm_eng_json_device(e, &j, false);
		vfm_log_emit("summary", &j);
		vfm_eng_write_stats(e, &j);
		printf("vfmig: migration %s refused; this device was not touched.\n",
		       o->migration_id);
		code = VFM_EXIT_REFUSED;
		goto out;
	}
	ret = vfm_eng_ctl_recv(e, vfm_eng_timeout_ms(e), &m);
	if (ret <= 0 || m.type != VFM_CTL_GO) {
		if (!ret)
			snprintf(e->why, sizeof(e->why),
				 "The source did not go ahead within %.0f s.",
				 o->timeout_s);
		else if (ret > 0)
			snprintf(e->why, sizeof(e->why), "Expected GO, got %s.",
				 vfm_ctl_name(m.type));
		sw_event(d, VFM_SW_DE_FAULT);
		goto ended;
	}
	if (m.mode == VFM_CTL_MODE_CHECK) {
		vfm_json_init(&j);
		vfm_json_str(&j, "result", "compatible");
		vfm_eng_json_device(e, &j, false);
		vfm_log_emit("summary", &j);
		vfm_eng_write_stats(e, &j);
		printf("vfmig: check %s: compatible; this device was not touched.\n",
		       o->migration_id);
		code = VFM_EXIT_OK;
		goto out;
	}
	ret = vfm_eng_smac_start(e);
	if (!ret)
		ret = prepare(d);
	if (!ret)
		ret = receive(d);
	if (!ret) {
		ret = verify(d);
		if (ret)
			d->device_failed = true;
		/* A stream that fails its MAC is the network's fault. */
		if (ret == -EBADMSG)
			d->fail_code = VFM_EXIT_PEER;
		else if (ret)
			d->fail_code = VFM_EXIT_DEVICE;
	} else if (d->device_failed) {
		d->fail_code = VFM_EXIT_DEVICE;
	}
	if (ret) {
		vfm_log_progress_end();
		vfm_log_msg("migration_failed", "error", "%s", e->why);
		sw_event(d, d->device_failed	? VFM_SW_DE_LOAD_BAD :
			    ret == -ECANCELED	? VFM_SW_DE_SRC_FAIL :
			    vfm_eng_cancelled() ? VFM_SW_DE_CANCEL :
						  VFM_SW_DE_FAULT);
		goto ended;
	}
	vfm_json_init(&j);
	vfm_json_f64(&j, "resume_ms", d->resume_ms);
	vfm_json_f64(&j, "verify_ms", d->verify_ms);
	vfm_json_str(&j, "state_digest", d->digest);
	vfm_log_emit("loaded", &j);
	sw_event(d, VFM_SW_DE_LOAD_OK);
	if (d->sw == VFM_SW_D_LOADED)
		wait_run(d);
ended:
	if (d->sw == VFM_SW_D_RECEIVING) /* failed before it began */
		sw_event(d, VFM_SW_DE_FAULT);
	if (d->sw == VFM_SW_D_RUNNING) {
		vfm_eng_xport_teardown(e);
		linger(d);
		summary(d);
		code = VFM_EXIT_OK;
	} else {
		code = d->fail_code;
		summary_failed(d);
		linger(d);
	}
out:
	vfm_lsn_fini(&d->lsn);
	vfm_smac_free(&e->smac);
	vfm_eng_xport_teardown(e);
	vfm_conn_close(&e->conn);
	vfm_hs_free(e->hs);
	vfm_eng_close_device(e);
	free(d);
	return code;
}
