// SPDX-License-Identifier: MIT
/*
 * rdma backend set-up with librdmacm: one RC connection (QP) per stream.
 *
 * The source's connect request carries the tcp greeting (stream index,
 * stream count, session cookie from the info blob); the destination
 * rejects any other and answers a good one with its landing buffer
 * {addr, len, rkey} in the accept's private data. Everything waits on the
 * one event channel with poll(2) and a deadline.
 *
 * The device is known only once an id is bound to it (a connect request
 * on the destination, address resolution on the source): the protection
 * domain, the completion queue and every registration are made then, once.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hint.h"
#include "rdma_priv.h"
#include "tcp_conn.h"

#define ACCEPT_MAGIC 0x41524676u /* "vFRA" */
#define ACCEPT_LEN 28

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/* Registration ran out of locked memory: say how much all of it needs. */
static void memlock_hint(const struct vfm_rdma *r)
{
	struct rlimit rl;
	size_t need = 0;

	for (unsigned int i = 0; i < RDMA_MAX_REGS; i++)
		if (r->regs[i].used)
			need += r->regs[i].len;
	if (!getrlimit(RLIMIT_MEMLOCK, &rl))
		vfm_xport_hint_memlock(need, rl.rlim_cur);
}

int vfm_rdma_device_setup(struct vfm_rdma *r, struct ibv_context *verbs)
{
	unsigned int i, cqe;
	int err;

	if (!verbs)
		return -ENODEV;
	if (r->verbs)
		return r->verbs == verbs ? 0 : -EXDEV;
	r->verbs = verbs;
	r->pd = ibv_alloc_pd(verbs);
	if (!r->pd)
		return -ENOMEM;
	r->cc = ibv_create_comp_channel(verbs);
	if (!r->cc)
		return -errno ? -errno : -ENOMEM;
	err = nonblock(r->cc->fd);
	if (!err)
		err = nonblock(verbs->async_fd);
	if (err)
		return err;
	cqe = r->cfg.streams * (3 * r->cfg.depth + 4);
	r->cq = ibv_create_cq(verbs, (int)cqe, NULL, r->cc, 0);
	if (!r->cq)
		return -errno ? -errno : -ENOMEM;
	for (i = 0; i < RDMA_MAX_REGS; i++) {
		struct rdma_reg *g = &r->regs[i];
		int acc = IBV_ACCESS_LOCAL_WRITE;

		if (!g->used || g->mr)
			continue;
		if (g == r->land)
			acc |= IBV_ACCESS_REMOTE_WRITE;
		g->mr = ibv_reg_mr(r->pd, g->addr, g->len, acc);
		if (!g->mr && (errno == EPERM || errno == ENOMEM)) {
			memlock_hint(r);
			return -ENOMEM;
		}
		if (!g->mr)
			return errno ? -errno : -EIO;
	}
	return 0;
}

int vfm_rdma_post_recv(struct vfm_rdma *r, unsigned int i, unsigned int slot)
{
	struct rdma_stream *s = &r->st[i];
	struct ibv_sge sge = {
		.addr = (uintptr_t)(s->desc + (size_t)slot * RDMA_DESC_LEN),
		.length = RDMA_DESC_LEN,
		.lkey = s->desc_mr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = ((uint64_t)3 << 56) | ((uint64_t)i << 32) | slot,
		.sg_list = &sge,
		.num_sge = 1,
	}, *bad;
	int ret = ibv_post_recv(s->id->qp, &wr, &bad);

	return ret ? -ret : 0;
}

int vfm_rdma_qp_create(struct vfm_rdma *r, unsigned int i,
		       struct rdma_cm_id *id)
{
	struct rdma_stream *s = &r->st[i];
	struct ibv_qp_init_attr qa = {
		.send_cq = r->cq,
		.recv_cq = r->cq,
		.qp_type = IBV_QPT_RC,
		.cap = {
			.max_send_wr = 2 * r->cfg.depth + 2,
			.max_recv_wr = r->cfg.depth + 1,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
	};
	unsigned int k;
	int err;

	err = vfm_rdma_device_setup(r, id->verbs);
	if (err)
		return err;
	if (!s->desc_mr)
		s->desc_mr = ibv_reg_mr(r->pd, s->desc,
					(size_t)r->cfg.depth * RDMA_DESC_LEN,
					IBV_ACCESS_LOCAL_WRITE);
	if (!s->desc_mr)
		return errno ? -errno : -ENOMEM;
	if (rdma_create_qp(id, r->pd, &qa))
		return errno ? -errno : -EIO;
	s->id = id;
	for (k = 0; r->is_dst && k < r->cfg.depth; k++) {
		err = vfm_rdma_post_recv(r, i, k);
		if (err)
			return err;
	}
	return 0;
}

static int wait_event(struct vfm_rdma *r, int64_t deadline,
		      struct rdma_cm_event **ev)
{
	for (;;) {
		struct pollfd p = { .fd = r->ch->fd, .events = POLLIN };
		int64_t left = deadline < 0 ? -1 : deadline - vfm_tcp_now_ms();
		int n;

		if (!rdma_get_cm_event(r->ch, ev))
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (deadline >= 0 && left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(left > 100000 ? 100000 : left));
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int event_errno(enum rdma_cm_event_type e, int status)
{
	switch (e) {
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED;
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
		return status < 0 ? status : -EHOSTUNREACH;
	case RDMA_CM_EVENT_DISCONNECTED:
		return -ECONNRESET;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		return -ENODEV;
	default:
		return status < 0 ? status : -EPROTO;
	}
}

static int channel_open(struct vfm_rdma *r)
{
	if (r->ch)
		return 0;
	r->ch = rdma_create_event_channel();
	if (!r->ch)
		return errno == ENODEV || errno == ENOENT ? -ENODEV :
		       errno				  ? -errno :
							    -ENODEV;
	return nonblock(r->ch->fd);
}

static int resolve(const char *host, uint16_t port, int passive,
		   struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV |
					      (passive ? AI_PASSIVE : 0) };
	struct addrinfo *res;
	char ps[8];
	int rc;

	snprintf(ps, sizeof(ps), "%u", port);
	rc = getaddrinfo(host && *host ? host : NULL, ps, &hints, &res);
	if (rc)
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int vfm_rdma_cm_listen(struct vfm_rdma *r, const char *bind_addr)
{
	struct sockaddr_storage ss;
	int err;

	err = channel_open(r);
	if (err)
		return err;
	err = resolve(bind_addr, 0, 1, &ss);
	if (err)
		return err;
	if (rdma_create_id(r->ch, &r->lid, r, RDMA_PS_TCP))
		return -errno;
	if (rdma_bind_addr(r->lid, (struct sockaddr *)&ss) ||
	    rdma_listen(r->lid, 16))
		return errno == ENODEV ? -ENODEV : -errno;
	if (r->lid->verbs) {
		err = vfm_rdma_device_setup(r, r->lid->verbs);
		if (err)
			return err;
	}
	if (getrandom(r->info.cookie, VFM_TCP_COOKIE_LEN, 0) !=
	    VFM_TCP_COOKIE_LEN)
		return -EIO;
	r->info.version = VFM_TCP_WIRE_VERSION;
	r->info.streams = (uint16_t)r->cfg.streams;
	r->info.port = ntohs(rdma_get_src_port(r->lid));
	r->info.landing_len = r->land ? r->land->len : 0;
	return 0;
}

/* Returns the stream a connect request names, or -1 to reject it. */
static int request_check(struct vfm_rdma *r, const struct rdma_cm_event *ev)
{
	const struct rdma_conn_param *cp = &ev->param.conn;
	struct vfm_tcp_greet g;

	if (!cp->private_data || cp->private_data_len < VFM_TCP_GREET_LEN)
		return -1;
	if (vfm_tcp_greet_decode(&g, cp->private_data))
		return -1;
	if (CRYPTO_memcmp(g.cookie, r->info.cookie, VFM_TCP_COOKIE_LEN) ||
	    g.streams != r->cfg.streams || g.stream >= r->cfg.streams ||
	    r->st[g.stream].id)
		return -1;
	return g.stream;
}

static int accept_one(struct vfm_rdma *r, struct rdma_cm_id *id, int i)
{
	uint8_t pd[ACCEPT_LEN] = { 0 };
	struct rdma_conn_param cp = {
		.private_data = pd,
		.private_data_len = sizeof(pd),
		.rnr_retry_count = 7,
	};
	int err;

	err = vfm_rdma_device_setup(r, id->verbs);
	if (err)
		return err;
	if (!r->land || !r->land->mr)
		return -EINVAL;
	err = vfm_rdma_qp_create(r, (unsigned int)i, id);
	if (err)
		return err;
	put_le32(pd, ACCEPT_MAGIC);
	put_le64(pd + 4, (uintptr_t)r->land->addr);
	put_le64(pd + 12, r->land->len);
	put_le32(pd + 20, r->land->mr->rkey);
	if (rdma_accept(id, &cp))
		return -errno;
	return 0;
}

int vfm_rdma_cm_accept(struct vfm_rdma *r, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : vfm_tcp_now_ms() + timeout_ms;
	unsigned int up = 0, i;
	int err = 0;

	while (!err && up < r->cfg.streams) {
		struct rdma_cm_event *ev;
		struct rdma_cm_id *id;
		int idx;

		err = wait_event(r, deadline, &ev);
		if (err)
			break;
		id = ev->id;
		switch (ev->event) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			idx = request_check(r, ev);
			if (idx >= 0 && accept_one(r, id, idx)) {
				if (id->qp)
					rdma_destroy_qp(id);
				r->st[idx].id = NULL;
				idx = -1;
			}
			if (idx < 0) {
				rdma_reject(id, NULL, 0);
				rdma_ack_cm_event(ev);
				rdma_destroy_id(id);
				continue;
			}
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			for (i = 0; i < r->cfg.streams; i++)
				if (r->st[i].id == id &&
				    !r->st[i].established) {
					r->st[i].established = true;
					up++;
				}
			break;
		default:
			/* a stream we accepted failed before it was up */
			for (i = 0; i < r->cfg.streams; i++)
				if (r->st[i].id == id)
					err = event_errno(ev->event,
							  ev->status);
			break;
		}
		rdma_ack_cm_event(ev);
	}
	return err;
}

static int expect(struct vfm_rdma *r, struct rdma_cm_id *id,
		  enum rdma_cm_event_type want, int64_t deadline, uint8_t *pd,
		  size_t pdlen)
{
	struct rdma_cm_event *ev;
	int err;

	for (;;) {
		err = wait_event(r, deadline, &ev);
		if (err)
			return err;
		if (ev->id != id) { /* an older stream's event */
			if (ev->event == RDMA_CM_EVENT_DISCONNECTED ||
			    ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL)
				r->err = event_errno(ev->event, ev->status);
			rdma_ack_cm_event(ev);
			continue;
		}
		if (ev->event != want) {
			err = event_errno(ev->event, ev->status);
			rdma_ack_cm_event(ev);
			return err;
		}
		if (pd) {
			const struct rdma_conn_param *cp = &ev->param.conn;

			if (!cp->private_data || cp->private_data_len < pdlen)
				err = -EPROTO;
			else
				memcpy(pd, cp->private_data, pdlen);
		}
		rdma_ack_cm_event(ev);
		return err;
	}
}

static int connect_one(struct vfm_rdma *r, unsigned int i,
		       const struct sockaddr_storage *ss, int64_t deadline)
{
	struct vfm_tcp_greet g = { .version = VFM_TCP_WIRE_VERSION,
				   .stream = (uint16_t)i,
				   .streams = (uint16_t)r->cfg.streams };
	uint8_t greet[VFM_TCP_GREET_LEN], acc[ACCEPT_LEN];
	struct rdma_conn_param cp = {
		.private_data = greet,
		.private_data_len = sizeof(greet),
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
	struct rdma_cm_id *id;
	int ms = (int)(deadline - vfm_tcp_now_ms()), err;

	if (ms <= 0)
		return -ETIMEDOUT;
	memcpy(g.cookie, r->info.cookie, VFM_TCP_COOKIE_LEN);
	vfm_tcp_greet_encode(greet, &g);
	if (rdma_create_id(r->ch, &id, r, RDMA_PS_TCP))
		return -errno;
	r->st[i].id = id; /* destroyed with the object from now on */
	if (rdma_resolve_addr(id, NULL, (struct sockaddr *)ss, ms))
		return -errno;
	err = expect(r, id, RDMA_CM_EVENT_ADDR_RESOLVED, deadline, NULL, 0);
	if (err)
		return err;
	err = vfm_rdma_device_setup(r, id->verbs);
	if (err)
		return err;
	ms = (int)(deadline - vfm_tcp_now_ms());
	if (ms <= 0)
		return -ETIMEDOUT;
	if (rdma_resolve_route(id, ms))
		return -errno;
	err = expect(r, id, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, NULL, 0);
	if (err)
		return err;
	err = vfm_rdma_qp_create(r, i, id);
	if (err)
		return err;
	if (rdma_connect(id, &cp))
		return -errno;
	err = expect(r, id, RDMA_CM_EVENT_ESTABLISHED, deadline, acc,
		     sizeof(acc));
	if (err)
		return err;
	if (get_le32(acc) != ACCEPT_MAGIC)
		return -EPROTO;
	r->raddr = get_le64(acc + 4);
	r->rlen = get_le64(acc + 12);
	r->rkey = get_le32(acc + 20);
	r->st[i].established = true;
	return 0;
}

int vfm_rdma_cm_connect(struct vfm_rdma *r, const char *peer, int timeout_ms)
{
	int64_t deadline =
		vfm_tcp_now_ms() + (timeout_ms < 0 ? 3600000 : timeout_ms);
	struct sockaddr_storage ss;
	unsigned int i;
	int err;

	err = channel_open(r);
	if (err)
		return err;
	err = resolve(peer, r->info.port, 0, &ss);
	if (err)
		return err;
	for (i = 0; i < r->cfg.streams; i++) {
		err = connect_one(r, i, &ss, deadline);
		if (err)
			return err;
	}
	return 0;
}

void vfm_rdma_cm_events(struct vfm_rdma *r)
{
	struct rdma_cm_event *ev;

	while (r->ch && !rdma_get_cm_event(r->ch, &ev)) {
		switch (ev->event) {
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
		case RDMA_CM_EVENT_ADDR_CHANGE:
			if (!r->err)
				r->err = event_errno(ev->event, ev->status);
			break;
		case RDMA_CM_EVENT_CONNECT_REQUEST: {
			/* nobody else may join once the streams are up */
			struct rdma_cm_id *id = ev->id;

			rdma_reject(id, NULL, 0);
			rdma_ack_cm_event(ev);
			rdma_destroy_id(id);
			continue;
		}
		default:
			break;
		}
		rdma_ack_cm_event(ev);
	}
}
