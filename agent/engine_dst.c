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
#include "engine.h"

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
	uint64_t loaded, credited, total;
	bool have_total;
	struct pend pend[DST_PEND_MAX];
	unsigned int npend;
	double last_progress, t_stop_seen, t_first;
	bool touched; /* the device left RUNNING */
	bool device_failed; /* the device refused the stream */
	bool ready; /* writes wait to be loaded in order */
	uint32_t iterations; /* the source's pre-copy iterations */
	bool corrupt; /* test hook: VFMIG_TEST_CORRUPT flips one byte */
};

/*
 * Load up to @max writes that are next in stream order. Few at a time: the
 * transport re-posts its receives only inside poll(), so the loop goes back
 * to it between loads. Returns 1 when more are ready, 0, or an error.
 */
static int load_ready(struct dst *d, int max)
{
	bool again = true;
	int loads = 0;

	while (again) {
		again = false;
		for (unsigned int i = 0; i < d->npend; i++) {
			struct pend p = d->pend[i];
			int ret;

			if (p.pos != d->loaded)
				continue;
			if (d->corrupt && p.pos >= 8192) {
				((uint8_t *)d->e.mr.addr)[p.roff + p.len / 2] ^=
					0x40;
				d->corrupt = false;
			}
			ret = vfm_dev_load_commit(d->e.dev, p.roff, p.len);
			if (ret) {
				d->device_failed = true;
				const char *w = vfm_sim_load_error(d->e.dev);

				snprintf(
					d->e.why, sizeof(d->e.why),
					"The device refused the stream at byte %llu: %s%s",
					(unsigned long long)p.pos,
					strerror(-ret), w[0] ? "; " : ".");
				if (w[0])
					strncat(d->e.why, w,
						sizeof(d->e.why) -
							strlen(d->e.why) - 1);
				return ret;
			}
			d->loaded += p.len;
			d->pend[i] = d->pend[--d->npend];
			again = true;
			break;
		}
		if (again && ++loads == max)
			break;
	}
	for (unsigned int i = 0; i < d->npend; i++)
		if (d->pend[i].pos == d->loaded)
			return 1;
	return 0;
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

static int receive(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	struct vfm_cqe cqe[64];
	uint64_t total_est = 0;

	vfm_dev_data_size(e->dev, &total_est);
	d->last_progress = vfm_now_ms();
	for (;;) {
		struct vfm_ctl m;
		bool any = false;
		int n, ret, wait = d->ready ? 0 : 1;
		long nap = 0;

		if (d->t_stop_seen && !d->ready) {
			wait = 0;
			nap = vfm_now_ms() - d->last_progress < DST_SPIN_MS ?
				      DST_NAP_NS :
				      DST_NAP_IDLE_NS;
		}
		n = vfm_xport_poll(e->x, cqe, 64, wait);
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
			    cqe[i].imm < d->loaded ||
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
		}
		if (n || d->ready) {
			uint64_t before = d->loaded;

			if (!d->t_first)
				d->t_first = vfm_now_ms();
			ret = load_ready(d, 2);
			if (ret < 0)
				return ret;
			d->ready = ret;
			any |= d->loaded != before;
			ret = send_credit(d, false);
			if (ret)
				return ret;
			vfm_eng_crash_point(d->loaded > (64u << 20) ?
						    "precopy_64m" :
						    "none");
		}
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
				d->total = m.total;
				d->have_total = true;
			} else {
				snprintf(e->why, sizeof(e->why),
					 "Unexpected %s from the source.",
					 vfm_ctl_name(m.type));
				return -EPROTO;
			}
		}
		if (!any &&
		    vfm_now_ms() - d->last_progress > vfm_eng_timeout_ms(e)) {
			snprintf(e->why, sizeof(e->why),
				 "The source made no progress for %.0f s.",
				 e->o->timeout_s);
			return -ETIMEDOUT;
		}
		if (any)
			d->last_progress = vfm_now_ms();
		if (nap && !any) {
			struct pollfd pf = { .fd = e->conn.fd,
					     .events = POLLIN };
			struct timespec ts = { .tv_nsec = nap };

			ppoll(&pf, 1, &ts, NULL);
		}
		ret = send_credit(d, true);
		if (ret)
			return ret;
		vfm_log_progress("receiving", d->loaded, total_est, 0);
		if (d->have_total && d->loaded == d->total && !d->npend)
			return 0;
		if (d->have_total && d->loaded > d->total) {
			snprintf(e->why, sizeof(e->why),
				 "The source sent more than it announced.");
			return -EPROTO;
		}
	}
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
	ret = e->xops->create(&e->x, &cfg);
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
		e->dev->fb_buf ? "loaded with write()" :
				 "the device's mapped buffer");
	return 0;
}

static int resume(struct dst *d, double *resume_ms)
{
	struct vfm_eng *e = &d->e;
	double t = vfm_now_ms();
	int ret;

	ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_STOP);
	if (ret) {
		const char *w = vfm_sim_load_error(e->dev);

		snprintf(
			e->why, sizeof(e->why),
			"The device refused the complete stream (RESUMING->STOP): %s%s%s",
			strerror(-ret), w[0] ? "; " : ".", w);
		return ret;
	}
	ret = vfm_dev_set_state(e->dev, VFIO_DEVICE_STATE_RUNNING);
	if (ret) {
		snprintf(e->why, sizeof(e->why),
			 "The device did not start (STOP->RUNNING): %s.",
			 strerror(-ret));
		return ret;
	}
	*resume_ms = vfm_now_ms() - t;
	return 0;
}

/* Wait for one source and run the handshake; loops over peers that are not
 * vfmig agents. Returns 0 with a verdict, or a failure. */
static int serve_handshake(struct dst *d)
{
	struct vfm_eng *e = &d->e;
	double deadline = vfm_now_ms() + e->o->wait_s * 1000;
	struct vfm_hs_cfg cfg = {
		.role = VFM_ROLE_DESTINATION,
		.secret = e->o->secret,
		.secret_len = e->o->secret_len,
		.features = VFM_PFEAT_TCP | VFM_PFEAT_PRE_COPY | VFM_PFEAT_MMAP,
		.desc = &e->desc,
	};

	if (e->o->migration_id[0]) {
		uuid_t u;

		uuid_parse(e->o->migration_id, u);
		memcpy(cfg.migration_id, u, sizeof(u));
	}
	for (;;) {
		int left = (int)(deadline - vfm_now_ms());
		int ret;

		if (left <= 0) {
			snprintf(e->why, sizeof(e->why),
				 "No source connected within %.0f s.",
				 e->o->wait_s);
			return -ETIMEDOUT;
		}
		ret = vfm_conn_accept(&e->conn, d->lfd, left);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret) {
			snprintf(e->why, sizeof(e->why),
				 "Cannot accept a connection: %s.",
				 strerror(-ret));
			return ret;
		}
		vfm_log_msg("connection", "info", "Control connection from %s.",
			    e->conn.peer);
		ret = vfm_eng_handshake(e, &cfg);
		if (!ret) {
			char mid[40];

			uuid_unparse_lower(vfm_hs_migration_id(e->hs), mid);
			snprintf(e->o->migration_id, sizeof(e->o->migration_id),
				 "%s", mid);
			vfm_log_set_migration_id(mid);
			return 0;
		}
		if (ret == -EACCES) {
			vfm_log_msg("auth_failed", "error", "%s", e->why);
			return ret;
		}
		/* Not a vfmig source, or it went away: refuse it, keep serving. */
		vfm_log_msg("connection_refused", "warning", "%s", e->why);
		vfm_hs_free(e->hs);
		e->hs = NULL;
		vfm_conn_close(&e->conn);
	}
}

static void summary(struct dst *d, double resume_ms, const char *hex)
{
	struct vfm_eng *e = &d->e;
	struct vfm_json j;

	vfm_json_init(&j);
	vfm_json_str(&j, "result", "migrated");
	vfm_json_f64(&j, "total_ms", vfm_now_ms() - e->t0);
	vfm_json_f64(&j, "stop_to_running_ms",
		     d->t_stop_seen ? vfm_now_ms() - d->t_stop_seen : 0);
	vfm_json_f64(&j, "resume_ms", resume_ms);
	vfm_json_u64(&j, "bytes", d->loaded);
	vfm_json_u64(&j, "iterations", d->iterations);
	vfm_json_str(&j, "transport", e->xops->name);
	vfm_json_u64(&j, "streams", d->streams);
	vfm_json_str(&j, "state_digest", hex);
	vfm_eng_json_device(e, &j, false);
	vfm_log_emit("summary", &j);
	vfm_eng_write_stats(e, &j);
	vfm_log_progress_end();
	printf("vfmig: migration %s received: %.1f MiB, device RUNNING, digest %s\n",
	       e->o->migration_id, (double)d->loaded / 1048576.0, hex);
	fflush(stdout);
}

int vfm_engine_recv(struct vfm_mig_opts *o)
{
	struct dst *d = calloc(1, sizeof(*d));
	struct vfm_eng *e;
	struct vfm_ctl m;
	struct vfm_json j;
	double resume_ms = 0;
	char hex[VFM_DIGEST_HEX] = "";
	int ret, code = VFM_EXIT_PEER;

	if (!d)
		return VFM_EXIT_ERROR;
	e = &d->e;
	e->o = o;
	e->role = "destination";
	e->conn.fd = -1;
	e->t0 = vfm_now_ms();
	d->lfd = -1;
	d->corrupt = getenv("VFMIG_TEST_CORRUPT") != NULL;
	if (vfm_eng_open_device(e)) {
		vfm_log_msg("error", "error", "%s", e->why);
		code = VFM_EXIT_DEVICE;
		goto out;
	}
	vfm_dev_prepare_resume(e->dev);
	d->lfd = vfm_listen_tcp(o->addr, e->why, sizeof(e->why));
	if (d->lfd < 0) {
		vfm_log_msg("error", "error", "%s", e->why);
		code = VFM_EXIT_USAGE;
		goto out;
	}
	vfm_json_init(&j);
	vfm_json_str(&j, "listen", o->addr);
	vfm_eng_json_device(e, &j, false);
	vfm_log_emit("start", &j);
	ret = serve_handshake(d);
	if (ret) {
		code = ret == -EACCES ? VFM_EXIT_AUTH : VFM_EXIT_PEER;
		if (ret != -EACCES)
			vfm_log_msg("error", "error", "%s", e->why);
		goto out;
	}
	close(d->lfd);
	d->lfd = -1;
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
		goto fail;
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
	ret = prepare(d);
	if (ret)
		goto fail;
	ret = receive(d);
	if (ret && d->device_failed) {
		code = VFM_EXIT_DEVICE;
		goto fail_code;
	}
	if (ret)
		goto fail;
	ret = resume(d, &resume_ms);
	if (ret) {
		code = VFM_EXIT_DEVICE;
		goto fail_code;
	}
	m = (struct vfm_ctl){ .type = VFM_CTL_COMMIT,
			      .resume_us = (uint64_t)(resume_ms * 1e3) };
	ret = vfm_eng_ctl_send(e, &m);
	if (ret) {
		/* The source may or may not have seen it: it decides by itself. */
		vfm_log_msg("commit_unconfirmed", "warning", "%s", e->why);
	}
	vfm_log_msg("committed", "info",
		    "The device is RUNNING with the migrated state.");
	vfm_eng_xport_teardown(e);
	vfm_dev_digest(e->dev, hex);
	m = (struct vfm_ctl){ .type = VFM_CTL_DIGEST };
	snprintf(m.digest, sizeof(m.digest), "%s", hex);
	if (!ret)
		vfm_eng_ctl_send(e, &m);
	summary(d, resume_ms, hex);
	code = VFM_EXIT_OK;
	goto out;
fail:
	code = VFM_EXIT_PEER;
fail_code:
	vfm_log_progress_end();
	vfm_log_msg("migration_failed", "error", "%s", e->why);
	vfm_eng_fail(e, (uint16_t)code, e->why);
	vfm_eng_xport_teardown(e);
	if (d->touched) {
		ret = vfm_dev_reset(e->dev);
		vfm_json_init(&j);
		vfm_json_bool(&j, "ok", ret == 0);
		vfm_eng_json_device(e, &j, false);
		vfm_log_emit("destination_reset", &j);
	}
	vfm_json_init(&j);
	vfm_json_str(&j, "result", "failed");
	vfm_json_str(&j, "reason", e->why);
	vfm_log_emit("summary", &j);
	vfm_eng_write_stats(e, &j);
	fprintf(stderr,
		"vfmig: migration %s failed: %s The device was reset.\n",
		o->migration_id[0] ? o->migration_id : "(none)", e->why);
out:
	if (d->lfd >= 0)
		close(d->lfd);
	vfm_eng_xport_teardown(e);
	vfm_conn_close(&e->conn);
	vfm_hs_free(e->hs);
	vfm_dev_close(e->dev);
	free(d);
	return code;
}
