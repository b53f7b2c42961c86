/* SPDX-License-Identifier: MIT */
/*
 * vfmig data-plane transports behind one RMA-shaped ops table.
 *
 * The control connection (handshake, phases, credits) is a plain TCP socket
 * owned by the agent; a transport only moves bulk data:
 *
 *   destination                          source
 *   -----------                          ------
 *   vfm_xport_create(ops, &cfg)          vfm_xport_create(ops, &cfg)
 *   vfm_xport_reg(landing buffer) -> mr  vfm_xport_reg(send buffer) -> mr
 *   vfm_xport_listen(bind) -> info ----> (info travels in a handshake TLV)
 *   vfm_xport_accept(timeout)            vfm_xport_connect(peer, info)
 *                     <---- write(local range -> remote offset, imm) ----
 *   poll: VFM_CQE_RECV {roff, len, imm}  poll: VFM_CQE_SEND {wr_id}
 *
 * A write places len bytes of a registered local range at byte offset roff
 * of the peer's registered landing buffer, then delivers {roff, len, imm}
 * to the peer's poll. Writes on one stream arrive in order; writes on
 * different streams may not. Flow control (when the destination may reuse
 * a range) is the caller's business, done over the control connection.
 *
 * Every function returns 0 (or a count) or a negative errno; none prints.
 */
#ifndef VFM_TRANSPORT_H
#define VFM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#define VFM_XPORT_INFO_MAX 512 /* opaque connection info, sent by the agent */

struct vfm_xport;

struct vfm_xport_cfg {
	unsigned int streams; /* parallel data streams / QPs (>= 1) */
	uint32_t max_write; /* largest single write, bytes */
	unsigned int depth; /* writes in flight per stream */
	int timeout_ms; /* connection set-up and I/O stall limit */
	/* 32 bytes: seal every write with AES-256-GCM under this key (tcp
	 * only; rdma refuses it with -EOPNOTSUPP). NULL: payloads in clear.
	 * Both ends must agree; the key is copied. */
	const uint8_t *aead_key;
};

struct vfm_mr {
	void *addr;
	size_t len;
	uint64_t key; /* rkey for RDMA; 0 for tcp */
	void *priv; /* backend's registration */
};

/* Opaque blob the destination produces and the source consumes. */
struct vfm_xport_info {
	uint32_t len;
	uint8_t data[VFM_XPORT_INFO_MAX];
};

enum vfm_cqe_kind {
	VFM_CQE_SEND = 1, /* source: a write has left (buffer reusable) */
	VFM_CQE_RECV = 2, /* destination: bytes landed in the buffer */
};

struct vfm_cqe {
	enum vfm_cqe_kind kind;
	int status; /* 0 or a negative errno */
	uint64_t wr_id; /* SEND: caller's id */
	uint64_t roff; /* RECV: offset in the landing buffer */
	uint32_t len; /* RECV: bytes */
	uint32_t stream; /* stream/QP index the write used */
	uint64_t imm; /* RECV: the writer's tag */
};

struct vfm_xport_ops {
	const char *name;
	int (*create)(struct vfm_xport **out, const struct vfm_xport_cfg *cfg);
	/* Register [addr, addr + len) once, before any transfer. */
	int (*reg)(struct vfm_xport *x, void *addr, size_t len,
		   struct vfm_mr *mr);
	void (*dereg)(struct vfm_xport *x, struct vfm_mr *mr);
	/* Destination: bind (host or address, port 0 = any), fill @info for
	 * the peer. @landing is the registered buffer writes land in. */
	int (*listen)(struct vfm_xport *x, const char *bind_addr,
		      const struct vfm_mr *landing,
		      struct vfm_xport_info *info);
	int (*accept)(struct vfm_xport *x, int timeout_ms);
	/* Source: connect every stream to the peer described by @info. */
	int (*connect)(struct vfm_xport *x, const char *peer_addr,
		       const struct vfm_xport_info *info, int timeout_ms);
	/* Post one write; -EAGAIN when the stream's queue is full (poll). */
	int (*write)(struct vfm_xport *x, unsigned int stream,
		     const struct vfm_mr *mr, size_t loff, uint64_t roff,
		     uint32_t len, uint64_t imm, uint64_t wr_id);
	/* Up to @max completions, waiting at most @timeout_ms (0: none, -1:
	 * forever). Returns how many, or a negative errno when the transport
	 * failed (peer gone, device error). */
	int (*poll)(struct vfm_xport *x, struct vfm_cqe *cqe, int max,
		    int timeout_ms);
	void (*destroy)(struct vfm_xport *x);
	/* Optional: CPU seconds the transport's own threads used so far (tcp:
	 * its workers, where the copies and the AEAD run). NULL: it has none;
	 * its work runs in the caller's write() and poll(). */
	double (*thread_cpu_s)(struct vfm_xport *x);
};

extern const struct vfm_xport_ops vfm_xport_tcp_ops;
extern const struct vfm_xport_ops vfm_xport_rdma_ops;

/* "tcp" or "rdma" -> ops, or NULL. */
const struct vfm_xport_ops *vfm_xport_find(const char *name);

/*
 * After a failure in this thread, a sentence naming its cause and the fix
 * when the backend knows more than the errno it returned (the locked memory
 * an RDMA registration needs; io_uring refused by a seccomp profile), or
 * NULL. Taking it clears it; the text is valid until the next failure.
 */
const char *vfm_xport_take_hint(void);

/*
 * Memory for data-plane buffers (a migration buffer, a landing ring, a
 * fallback buffer): anonymous, aligned to 2 MiB, asked to be backed by
 * transparent huge pages (MADV_HUGEPAGE, honoured when THP is "always" or
 * "madvise") and touched, so that no page fault lands inside a transfer.
 * The kernel's copies through user addresses walk the page tables on every
 * TLB miss; with 4 KiB pages a cold 256 MiB buffer costs 3x the CPU of a
 * cached one on loopback, with 2 MiB pages about the same
 * (transport/README.md, "Buffers"). NULL with errno set on failure.
 *
 * vfm_xport_buf_reserve() is the same without the touch (MAP_NORESERVE),
 * for memory filled later or only in part, as a simulated device's.
 * Every large region a process streams should come from one of the two:
 * on a paravirtualized host (measured here, PVM) one huge-page region in a
 * process made reads of its 4 KiB-page regions 10x slower.
 */
void *vfm_xport_buf_alloc(size_t len);
void *vfm_xport_buf_reserve(size_t len);
/* Frees either; @len as allocated. */
void vfm_xport_buf_free(void *p, size_t len);

/* Every transport object begins with this header. */
struct vfm_xport {
	const struct vfm_xport_ops *ops;
};

static inline int vfm_xport_reg(struct vfm_xport *x, void *addr, size_t len,
				struct vfm_mr *mr)
{
	return x->ops->reg(x, addr, len, mr);
}

static inline void vfm_xport_dereg(struct vfm_xport *x, struct vfm_mr *mr)
{
	x->ops->dereg(x, mr);
}

static inline int vfm_xport_listen(struct vfm_xport *x, const char *bind_addr,
				   const struct vfm_mr *landing,
				   struct vfm_xport_info *info)
{
	return x->ops->listen(x, bind_addr, landing, info);
}

static inline int vfm_xport_accept(struct vfm_xport *x, int timeout_ms)
{
	return x->ops->accept(x, timeout_ms);
}

static inline int vfm_xport_connect(struct vfm_xport *x, const char *peer,
				    const struct vfm_xport_info *info,
				    int timeout_ms)
{
	return x->ops->connect(x, peer, info, timeout_ms);
}

static inline int vfm_xport_write(struct vfm_xport *x, unsigned int stream,
				  const struct vfm_mr *mr, size_t loff,
				  uint64_t roff, uint32_t len, uint64_t imm,
				  uint64_t wr_id)
{
	return x->ops->write(x, stream, mr, loff, roff, len, imm, wr_id);
}

static inline int vfm_xport_poll(struct vfm_xport *x, struct vfm_cqe *cqe,
				 int max, int timeout_ms)
{
	return x->ops->poll(x, cqe, max, timeout_ms);
}

static inline double vfm_xport_thread_cpu_s(struct vfm_xport *x)
{
	return x && x->ops->thread_cpu_s ? x->ops->thread_cpu_s(x) : 0;
}

static inline void vfm_xport_destroy(struct vfm_xport *x)
{
	if (x)
		x->ops->destroy(x);
}

#endif /* VFM_TRANSPORT_H */
