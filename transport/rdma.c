// SPDX-License-Identifier: MIT
/*
 * The rdma transport: one RC queue pair per stream (librdmacm set-up in
 * rdma_cm.c), memory registered once, writes placed by the NIC.
 *
 * A write is an RDMA WRITE of the caller's range into landing + roff,
 * followed on the same QP by a SEND of a 32-byte descriptor {len, roff,
 * imm, seq, crc} (the tcp segment header): the immediate of WRITE WITH
 * IMM is 32 bits, too small for the 64-bit tag and the offset. RC keeps
 * the two in order, so when the destination sees the SEND the bytes are
 * in place. The NIC checks every write against the landing MR's bounds;
 * the descriptor is checked again in software.
 *
 * Signalling is selective: one SEND in sig_every asks for a completion,
 * which retires every earlier write of its QP. When the caller polls with
 * unsignalled writes pending, a zero-length signalled WRITE flushes them.
 * The destination keeps cfg.depth receives posted per QP and reposts each
 * as soon as its descriptor is turned into a RECV completion; a sender
 * that runs ahead waits in RNR retry (unbounded), and cfg.timeout_ms
 * bounds how long queued writes may go without completing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hint.h"
#include "rdma_priv.h"
#include "tcp_conn.h"

enum { W_SEND = 1, W_FENCE = 2, W_RECV = 3 };

static inline struct vfm_rdma *to_rdma(struct vfm_xport *x)
{
	return (struct vfm_rdma *)x;
}

static void set_err(struct vfm_rdma *r, int err)
{
	if (!r->err)
		r->err = err;
}

static bool q_full(const struct vfm_rdma *r)
{
	return r->cq_count == r->cq_cap;
}

static void q_push(struct vfm_rdma *r, const struct vfm_cqe *c)
{
	r->cq_q[(r->cq_head + r->cq_count) % r->cq_cap] = *c;
	r->cq_count++;
}

/* ------------------------------------------------------------------ */
/* registration */

/* CAP_IPC_LOCK lifts RLIMIT_MEMLOCK for verbs registrations. */
static bool can_lock_any(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	unsigned long long cap = 0;
	char line[256];

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &cap) == 1)
			break;
	fclose(f);
	return cap & (1ull << 14);
}

static int xr_reg(struct vfm_xport *x, void *addr, size_t len,
		  struct vfm_mr *mr)
{
	struct vfm_rdma *r = to_rdma(x);
	size_t total = len;
	struct rlimit rl;
	unsigned int i, slot = RDMA_MAX_REGS;

	if (!mr || !addr || !len)
		return -EINVAL;
	for (i = 0; i < RDMA_MAX_REGS; i++) {
		if (r->regs[i].used)
			total += r->regs[i].len;
		else if (slot == RDMA_MAX_REGS)
			slot = i;
	}
	if (slot == RDMA_MAX_REGS)
		return -ENOSPC;
	/* Say so up front rather than fail in the middle of set-up. */
	if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    total > rl.rlim_cur && !can_lock_any()) {
		vfm_xport_hint_memlock(total, rl.rlim_cur);
		return -ENOMEM;
	}
	r->regs[slot] =
		(struct rdma_reg){ .used = true, .addr = addr, .len = len };
	if (r->pd) {
		r->regs[slot].mr =
			ibv_reg_mr(r->pd, addr, len, IBV_ACCESS_LOCAL_WRITE);
		if (!r->regs[slot].mr) {
			int err = errno ? -errno : -ENOMEM;

			r->regs[slot].used = false;
			if ((err == -ENOMEM || err == -EPERM) &&
			    !getrlimit(RLIMIT_MEMLOCK, &rl))
				vfm_xport_hint_memlock(total, rl.rlim_cur);
			return err;
		}
	}
	*mr = (struct vfm_mr){ .addr = addr,
			       .len = len,
			       .key = r->regs[slot].mr ?
					      r->regs[slot].mr->rkey :
					      0,
			       .priv = &r->regs[slot] };
	return 0;
}

static struct rdma_reg *reg_of(struct vfm_rdma *r, const struct vfm_mr *mr)
{
	unsigned int i;

	for (i = 0; mr && i < RDMA_MAX_REGS; i++)
		if (mr->priv == &r->regs[i] && r->regs[i].used)
			return &r->regs[i];
	return NULL;
}

static void xr_dereg(struct vfm_xport *x, struct vfm_mr *mr)
{
	struct vfm_rdma *r = to_rdma(x);
	struct rdma_reg *g = reg_of(r, mr);

	if (!g)
		return;
	if (g->mr)
		ibv_dereg_mr(g->mr);
	if (r->land == g)
		r->land = NULL;
	*g = (struct rdma_reg){ 0 };
	mr->priv = NULL;
}

/* ------------------------------------------------------------------ */
/* source */

static int post_fence(struct vfm_rdma *r, unsigned int i)
{
	struct rdma_stream *s = &r->st[i];
	struct ibv_send_wr wr = {
		.wr_id = ((uint64_t)W_FENCE << 56) | ((uint64_t)i << 32),
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = r->raddr, .rkey = r->rkey },
	}, *bad;
	int ret = ibv_post_send(s->id->qp, &wr, &bad);

	if (ret)
		return -ret;
	s->fence = true;
	s->fence_seq = s->seq;
	s->unsignaled = 0;
	return 0;
}

static int xr_write(struct vfm_xport *x, unsigned int stream,
		    const struct vfm_mr *mr, size_t loff, uint64_t roff,
		    uint32_t len, uint64_t imm, uint64_t wr_id)
{
	struct vfm_rdma *r = to_rdma(x);
	struct ibv_send_wr wr[2], *bad;
	struct ibv_sge sge[2];
	struct vfm_tcp_hdr h;
	struct rdma_stream *s;
	struct rdma_reg *g;
	unsigned int slot, n = 0;
	int ret;

	if (!r->connected || !r->is_src)
		return -ENOTCONN;
	if (r->err)
		return r->err;
	g = reg_of(r, mr);
	if (stream >= r->cfg.streams || !g || !g->mr || loff > mr->len ||
	    len > mr->len - loff || roff > r->rlen || len > r->rlen - roff)
		return -EINVAL;
	s = &r->st[stream];
	if (s->count == r->cfg.depth)
		return -EAGAIN;
	slot = (s->head + s->count) % r->cfg.depth;
	h = (struct vfm_tcp_hdr){
		.len = len, .roff = roff, .imm = imm, .seq = s->seq
	};
	vfm_tcp_hdr_encode(s->desc + (size_t)slot * RDMA_DESC_LEN, &h);
	memset(wr, 0, sizeof(wr));
	if (len) {
		sge[0] = (struct ibv_sge){ .addr = (uintptr_t)mr->addr + loff,
					   .length = len,
					   .lkey = g->mr->lkey };
		wr[0].opcode = IBV_WR_RDMA_WRITE;
		wr[0].sg_list = &sge[0];
		wr[0].num_sge = 1;
		wr[0].wr.rdma.remote_addr = r->raddr + roff;
		wr[0].wr.rdma.rkey = r->rkey;
		wr[0].next = &wr[1];
		n = 1;
	}
	sge[1] = (struct ibv_sge){
		.addr = (uintptr_t)(s->desc + (size_t)slot * RDMA_DESC_LEN),
		.length = RDMA_DESC_LEN,
		.lkey = s->desc_mr->lkey
	};
	wr[1].wr_id = ((uint64_t)W_SEND << 56) | ((uint64_t)stream << 32) |
		      slot;
	wr[1].opcode = IBV_WR_SEND;
	wr[1].sg_list = &sge[1];
	wr[1].num_sge = 1;
	/* A full queue must hold a signalled write, or nothing retires it. */
	s->last_signaled = ++s->unsignaled >= r->sig_every ||
			   s->count + 1 == r->cfg.depth;
	if (s->last_signaled) {
		wr[1].send_flags = IBV_SEND_SIGNALED;
		s->unsignaled = 0;
	}
	ret = ibv_post_send(s->id->qp, n ? &wr[0] : &wr[1], &bad);
	if (ret)
		return -ret;
	s->ws[slot] = (struct rdma_wslot){ .wr_id = wr_id,
					   .len = len,
					   .seq = s->seq };
	if (!s->count && !r->cq_count)
		r->last_progress = vfm_tcp_now_ms();
	s->seq++;
	s->count++;
	return 0;
}

static void src_retire(struct vfm_rdma *r, unsigned int i)
{
	struct rdma_stream *s = &r->st[i];

	while (s->count && !q_full(r) &&
	       (int32_t)(s->ws[s->head].seq - s->done_seq) < 0) {
		struct rdma_wslot *w = &s->ws[s->head];
		struct vfm_cqe c = { .kind = VFM_CQE_SEND,
				     .wr_id = w->wr_id,
				     .len = w->len,
				     .stream = i };

		q_push(r, &c);
		s->head = (s->head + 1) % r->cfg.depth;
		s->count--;
	}
}

/* ------------------------------------------------------------------ */
/* destination */

static int dst_recv(struct vfm_rdma *r, unsigned int i, unsigned int slot,
		    uint32_t byte_len)
{
	struct rdma_stream *s = &r->st[i];
	struct vfm_tcp_hdr h;
	struct vfm_cqe c;

	if (byte_len != RDMA_DESC_LEN ||
	    vfm_tcp_hdr_decode(&h, s->desc + (size_t)slot * RDMA_DESC_LEN) ||
	    h.seq != s->rseq || !r->land || h.roff > r->land->len ||
	    h.len > r->land->len - h.roff)
		return -EPROTO;
	c = (struct vfm_cqe){ .kind = VFM_CQE_RECV,
			      .roff = h.roff,
			      .len = h.len,
			      .stream = i,
			      .imm = h.imm };
	q_push(r, &c);
	s->rseq++;
	return vfm_rdma_post_recv(r, i, slot);
}

/* ------------------------------------------------------------------ */
/* completions */

static int wc_errno(enum ibv_wc_status st)
{
	switch (st) {
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return -ETIMEDOUT;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR:
		return -EACCES;
	case IBV_WC_WR_FLUSH_ERR:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

static void handle_wc(struct vfm_rdma *r, const struct ibv_wc *wc)
{
	unsigned int kind = (unsigned int)(wc->wr_id >> 56);
	unsigned int i = (unsigned int)(wc->wr_id >> 32) & 0xffffff;
	unsigned int slot = (unsigned int)wc->wr_id;
	struct rdma_stream *s;
	int err;

	if (wc->status != IBV_WC_SUCCESS) {
		set_err(r, wc_errno(wc->status));
		return;
	}
	if (i >= r->cfg.streams)
		return;
	s = &r->st[i];
	r->last_progress = vfm_tcp_now_ms();
	switch (kind) {
	case W_SEND:
		/* completions of one QP arrive in order: never backwards */
		if ((int32_t)(s->ws[slot].seq + 1 - s->done_seq) > 0)
			s->done_seq = s->ws[slot].seq + 1;
		break;
	case W_FENCE:
		s->fence = false;
		if ((int32_t)(s->fence_seq - s->done_seq) > 0)
			s->done_seq = s->fence_seq;
		break;
	case W_RECV:
		err = dst_recv(r, i, slot, wc->byte_len);
		if (err)
			set_err(r, err);
		break;
	default:
		break;
	}
}

/* Poll the CQ, taking no more than the caller's queue can hold. */
static int reap(struct vfm_rdma *r)
{
	struct ibv_wc wc[16];
	int n, k, total = 0;
	unsigned int i;

	for (;;) {
		int room = (int)(r->cq_cap - r->cq_count);

		if (r->is_dst && room <= 0)
			break;
		n = ibv_poll_cq(r->cq, r->is_dst && room < 16 ? room : 16, wc);
		if (n < 0) {
			set_err(r, -EIO);
			break;
		}
		for (k = 0; k < n; k++)
			handle_wc(r, &wc[k]);
		total += n;
		if (n < 16)
			break;
	}
	for (i = 0; r->is_src && i < r->cfg.streams; i++)
		src_retire(r, i);
	return total;
}

static void async_events(struct vfm_rdma *r)
{
	struct ibv_async_event ev;

	while (r->verbs && !ibv_get_async_event(r->verbs, &ev)) {
		switch (ev.event_type) {
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_QP_ACCESS_ERR:
		case IBV_EVENT_CQ_ERR:
		case IBV_EVENT_DEVICE_FATAL:
			set_err(r, -EIO);
			break;
		case IBV_EVENT_PORT_ERR:
			set_err(r, -ENETDOWN);
			break;
		default:
			break;
		}
		ibv_ack_async_event(&ev);
	}
}

static bool busy(const struct vfm_rdma *r)
{
	unsigned int i;

	for (i = 0; r->is_src && i < r->cfg.streams; i++)
		if (r->st[i].count)
			return true;
	return false;
}

/* Writes left unsignalled at the tail of a QP get a flushing fence. */
static void fences(struct vfm_rdma *r)
{
	unsigned int i;

	for (i = 0; r->is_src && i < r->cfg.streams; i++) {
		struct rdma_stream *s = &r->st[i];
		int err;

		if (!s->count || s->last_signaled || s->fence)
			continue;
		err = post_fence(r, i);
		if (err)
			set_err(r, err);
		s->last_signaled = true;
	}
}

static int xr_poll(struct vfm_xport *x, struct vfm_cqe *out, int max,
		   int timeout_ms)
{
	struct vfm_rdma *r = to_rdma(x);
	int64_t deadline = timeout_ms < 0 ? -1 : vfm_tcp_now_ms() + timeout_ms;

	if (!out || max <= 0)
		return -EINVAL;
	if (!r->connected)
		return r->err ? r->err : -ENOTCONN;
	for (;;) {
		struct pollfd p[3];
		int64_t now, wait, stall = -1;
		int n = 0;

		reap(r);
		while (n < max && r->cq_count) {
			out[n++] = r->cq_q[r->cq_head];
			r->cq_head = (r->cq_head + 1) % r->cq_cap;
			r->cq_count--;
		}
		if (n)
			return n;
		vfm_rdma_cm_events(r);
		async_events(r);
		if (r->err)
			return r->err;
		fences(r);
		now = vfm_tcp_now_ms();
		if (r->cfg.timeout_ms > 0 && busy(r)) {
			stall = r->last_progress + r->cfg.timeout_ms - now;
			if (stall <= 0) {
				set_err(r, -ETIMEDOUT);
				return r->err;
			}
		}
		if (r->is_src && !busy(r) && timeout_ms < 0)
			return 0;
		wait = deadline < 0 ? -1 : deadline - now;
		if (deadline >= 0 && wait <= 0)
			return 0;
		if (stall >= 0 && (wait < 0 || stall < wait))
			wait = stall;
		/* arm, then look again: a completion may have slipped in */
		if (ibv_req_notify_cq(r->cq, 0)) {
			set_err(r, -EIO);
			continue;
		}
		if (reap(r) || r->cq_count)
			continue;
		p[0] = (struct pollfd){ .fd = r->cc->fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = r->ch->fd, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = r->verbs->async_fd,
					.events = POLLIN };
		if (poll(p, 3, (int)(wait > 100000 ? 100000 : wait)) > 0 &&
		    (p[0].revents & POLLIN)) {
			struct ibv_cq *cq;
			void *ctx;

			if (!ibv_get_cq_event(r->cc, &cq, &ctx) &&
			    ++r->cq_unacked >= 64) {
				ibv_ack_cq_events(r->cq, r->cq_unacked);
				r->cq_unacked = 0;
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* set-up and teardown */

static int xr_listen(struct vfm_xport *x, const char *bind_addr,
		     const struct vfm_mr *landing, struct vfm_xport_info *info)
{
	struct vfm_rdma *r = to_rdma(x);
	int err;

	if (!landing || !info)
		return -EINVAL;
	if (r->is_src || r->is_dst)
		return -EALREADY;
	r->land = reg_of(r, landing);
	if (!r->land)
		return -EINVAL; /* the landing buffer must be registered here */
	r->is_dst = true;
	if (r->land->mr) {
		/* registered before the device was known: grant remote write */
		ibv_dereg_mr(r->land->mr);
		r->land->mr = NULL;
	}
	err = vfm_rdma_cm_listen(r, bind_addr);
	if (err)
		return err;
	memset(info, 0, sizeof(*info));
	vfm_tcp_info_encode(info->data, &r->info);
	info->len = VFM_TCP_INFO_LEN;
	return 0;
}

static int xr_accept(struct vfm_xport *x, int timeout_ms)
{
	struct vfm_rdma *r = to_rdma(x);
	int err;

	if (!r->is_dst || !r->lid)
		return -EINVAL;
	if (r->connected)
		return -EISCONN;
	err = vfm_rdma_cm_accept(r, timeout_ms);
	if (err)
		return err;
	r->connected = true;
	r->last_progress = vfm_tcp_now_ms();
	return 0;
}

static int xr_connect(struct vfm_xport *x, const char *peer,
		      const struct vfm_xport_info *info, int timeout_ms)
{
	struct vfm_rdma *r = to_rdma(x);
	int err;

	if (!info || !peer)
		return -EINVAL;
	if (r->is_src || r->is_dst)
		return -EALREADY;
	err = vfm_tcp_info_decode(&r->info, info->data, info->len);
	if (err)
		return err;
	if (r->info.streams != r->cfg.streams)
		return -EINVAL;
	r->is_src = true;
	err = vfm_rdma_cm_connect(r, peer, timeout_ms);
	if (err)
		return err;
	r->connected = true;
	r->last_progress = vfm_tcp_now_ms();
	return r->err;
}

static void xr_destroy(struct vfm_xport *x)
{
	struct vfm_rdma *r = to_rdma(x);
	unsigned int i;

	for (i = 0; r->st && i < r->cfg.streams; i++) {
		struct rdma_stream *s = &r->st[i];

		if (s->id) {
			if (s->established)
				rdma_disconnect(s->id);
			if (s->id->qp)
				rdma_destroy_qp(s->id);
			rdma_destroy_id(s->id);
		}
		if (s->desc_mr)
			ibv_dereg_mr(s->desc_mr);
		free(s->desc);
		free(s->ws);
	}
	if (r->lid)
		rdma_destroy_id(r->lid);
	for (i = 0; i < RDMA_MAX_REGS; i++)
		if (r->regs[i].mr)
			ibv_dereg_mr(r->regs[i].mr);
	if (r->cq) {
		if (r->cq_unacked)
			ibv_ack_cq_events(r->cq, r->cq_unacked);
		ibv_destroy_cq(r->cq);
	}
	if (r->cc)
		ibv_destroy_comp_channel(r->cc);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->ch)
		rdma_destroy_event_channel(r->ch);
	free(r->st);
	free(r->cq_q);
	free(r);
}

static int xr_create(struct vfm_xport **out, const struct vfm_xport_cfg *cfg)
{
	struct vfm_rdma *r;
	unsigned int i;
	int err = 0;

	if (!out || !cfg || !cfg->streams || cfg->streams > RDMA_MAX_STREAMS ||
	    cfg->depth > RDMA_MAX_DEPTH)
		return -EINVAL;
	/* One-sided writes land before any code of ours sees them: no place
	 * to open a sealed segment. The stream MAC still authenticates. */
	if (cfg->aead_key)
		return -EOPNOTSUPP;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base.ops = &vfm_xport_rdma_ops;
	r->cfg = *cfg;
	if (!r->cfg.depth)
		r->cfg.depth = 16;
	r->sig_every = r->cfg.depth / 4 ? r->cfg.depth / 4 : 1;
	r->cq_cap = r->cfg.streams * (r->cfg.depth + 1);
	r->cq_q = calloc(r->cq_cap, sizeof(*r->cq_q));
	r->st = calloc(r->cfg.streams, sizeof(*r->st));
	if (!r->cq_q || !r->st)
		err = -ENOMEM;
	for (i = 0; !err && i < r->cfg.streams; i++) {
		r->st[i].desc = calloc(r->cfg.depth, RDMA_DESC_LEN);
		r->st[i].ws = calloc(r->cfg.depth, sizeof(*r->st[i].ws));
		if (!r->st[i].desc || !r->st[i].ws)
			err = -ENOMEM;
	}
	if (err) {
		xr_destroy(&r->base);
		return err;
	}
	*out = &r->base;
	return 0;
}

const struct vfm_xport_ops vfm_xport_rdma_ops = {
	.name = "rdma",
	.create = xr_create,
	.reg = xr_reg,
	.dereg = xr_dereg,
	.listen = xr_listen,
	.accept = xr_accept,
	.connect = xr_connect,
	.write = xr_write,
	.poll = xr_poll,
	.destroy = xr_destroy,
};
