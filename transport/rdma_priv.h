/* SPDX-License-Identifier: MIT */
/* rdma backend: shared state of rdma.c (data path) and rdma_cm.c (set-up). */
#ifndef VFM_RDMA_PRIV_H
#define VFM_RDMA_PRIV_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stdint.h>

#include "vfm/transport.h"
#include "tcp_wire.h"

#define RDMA_MAX_STREAMS 64
#define RDMA_MAX_DEPTH 1024
#define RDMA_MAX_REGS 8
#define RDMA_DESC_LEN VFM_TCP_HDR_LEN /* descriptor = the tcp segment header */

struct rdma_reg {
	bool used;
	void *addr;
	size_t len;
	struct ibv_mr *mr; /* registered once the device is known */
};

struct rdma_wslot { /* one posted write (source) */
	uint64_t wr_id;
	uint32_t len;
	uint32_t seq;
};

struct rdma_stream {
	struct rdma_cm_id *id;
	bool established;
	uint8_t *desc; /* cfg.depth descriptors of RDMA_DESC_LEN */
	struct ibv_mr *desc_mr;
	/* source */
	struct rdma_wslot *ws;
	unsigned int head, count;
	uint32_t seq; /* next write's sequence number */
	uint32_t done_seq; /* writes below this one have completed */
	unsigned int unsignaled; /* writes posted since the last signal */
	bool last_signaled; /* the newest write asks for a completion */
	bool fence; /* a zero-length signalled write is in flight */
	uint32_t fence_seq;
	/* destination */
	uint32_t rseq;
};

struct vfm_rdma {
	struct vfm_xport base;
	struct vfm_xport_cfg cfg;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *lid;
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	unsigned int cq_unacked;
	struct rdma_reg regs[RDMA_MAX_REGS];
	struct rdma_stream *st;
	bool is_src, is_dst, connected;
	struct vfm_tcp_info info;
	/* destination: the landing buffer */
	struct rdma_reg *land;
	/* source: the peer's landing buffer */
	uint64_t raddr, rlen;
	uint32_t rkey;
	struct vfm_cqe *cq_q; /* completions not yet returned by poll */
	unsigned int cq_head, cq_count, cq_cap;
	unsigned int sig_every; /* signal one write in this many */
	int err;
	int64_t last_progress;
};

int vfm_rdma_device_setup(struct vfm_rdma *r, struct ibv_context *verbs);
int vfm_rdma_qp_create(struct vfm_rdma *r, unsigned int i,
		       struct rdma_cm_id *id);
int vfm_rdma_post_recv(struct vfm_rdma *r, unsigned int i, unsigned int slot);
int vfm_rdma_cm_listen(struct vfm_rdma *r, const char *bind_addr);
int vfm_rdma_cm_accept(struct vfm_rdma *r, int timeout_ms);
int vfm_rdma_cm_connect(struct vfm_rdma *r, const char *peer, int timeout_ms);
/* Non-blocking: handle pending CM events after set-up (disconnects). */
void vfm_rdma_cm_events(struct vfm_rdma *r);

#endif /* VFM_RDMA_PRIV_H */
