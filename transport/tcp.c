// SPDX-License-Identifier: MIT
/*
 * The tcp transport: N TCP streams driven by one io_uring per endpoint.
 *
 * Source: every write becomes a 32-byte header {len, roff, imm, seq, crc}
 * and the payload, sent straight from the caller's registered range
 * (plain send, write from a registered buffer, or zero-copy send). The
 * writes queued on one stream go out as one linked chain of SQEs, so the
 * kernel keeps them in order; a short or failed SQE cancels the rest of
 * the chain, and the chain is rebuilt from the first byte not yet sent.
 * A one-byte recv stays posted on each source stream: the destination
 * never sends after the greeting, so its completion means the peer closed
 * or reset, and poll reports it even while no write is queued.
 *
 * Destination: each stream has one recv in flight, for the header or for
 * the payload. A header is checked (magic, CRC, sequence, roff + len
 * inside the landing buffer, else -EPROTO) before its payload is read
 * directly into landing + roff; no bounce buffer.
 *
 * With an AEAD key (--encrypt), every payload crosses as AES-256-GCM
 * ciphertext followed by its 16-byte tag. The header is the associated
 * data, so it is authenticated but stays readable (length, offset, stream
 * position, sequence). The nonce is the stream index and a 64-bit count of
 * the segments on that stream, so no nonce repeats under one key, and the
 * key is new for every migration. The source seals into a per-slot buffer
 * (the caller's range is never modified); the destination receives the
 * ciphertext straight into the landing buffer, then the tag, and opens the
 * segment in place before its RECV completion exists: a segment that does
 * not verify fails the transport with -EBADMSG and is never delivered.
 *
 * Nothing runs behind the caller's back: all progress happens inside
 * write() and poll(), on the caller's thread. One object is used by one
 * thread at a time.
 */
#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vfm/transport.h"
#include "hint.h"
#include "tcp_conn.h"
#include "tcp_wire.h"

#define TCP_MAX_STREAMS 64
#define TCP_MAX_DEPTH 256
#define TCP_MAX_REGS 8
#define TCP_CHUNK (1ull << 30) /* io_uring's limit per registered buffer */
#define TCP_MAX_BUFS 64
#define TCP_TAG_LEN 16
#define TCP_AEAD_DEPTH 8 /* sealed writes in flight per stream */

enum tcp_send_mode {
	TCP_SEND_PLAIN, /* IORING_OP_SEND, MSG_WAITALL */
	TCP_SEND_WRITE_FIXED, /* IORING_OP_WRITE_FIXED from the registration */
	TCP_SEND_ZC, /* IORING_OP_SEND_ZC, registered when possible */
};

enum tcp_recv_mode {
	TCP_RECV_PLAIN, /* IORING_OP_RECV, MSG_WAITALL */
	TCP_RECV_READ_FIXED, /* IORING_OP_READ_FIXED into the registration */
};

enum tcp_ud_kind {
	UD_HDR = 1,
	UD_PAY,
	UD_WATCH,
	UD_RX,
	UD_CANCEL,
};

struct tcp_reg {
	bool used;
	uint8_t *addr;
	size_t len;
	int first; /* first fixed-buffer index, -1 when none */
};

/* One posted write on the source. */
struct tcp_seg {
	uint64_t wr_id;
	const uint8_t *buf;
	uint32_t len; /* the caller's bytes */
	uint32_t wlen; /* payload bytes on the wire: len, + tag when sealed */
	int buf_index; /* fixed buffer covering the payload, or -1 */
	uint8_t *ct; /* sealed payload and tag (AEAD only) */
	uint32_t ct_cap;
	uint32_t done; /* header + payload bytes already sent */
	uint32_t notifs; /* zero-copy notifications still due */
	uint8_t hdr[VFM_TCP_HDR_LEN];
};

struct tcp_stream {
	int fd;
	/* source */
	struct tcp_seg *segs; /* ring of cfg.depth slots */
	unsigned int head, count;
	unsigned int chain; /* result CQEs due for the chain in flight */
	uint32_t seq;
	uint64_t nseal; /* AEAD: segments sealed (source) / opened (dest.) */
	uint8_t watch_byte;
	/* destination */
	bool rx_busy; /* a recv is in flight */
	bool rx_blocked; /* payload done, waiting for CQE queue space */
	bool in_payload;
	uint32_t rgot, pgot, rseq;
	struct vfm_tcp_hdr cur;
	uint8_t rhdr[VFM_TCP_HDR_LEN];
	uint8_t rtag[TCP_TAG_LEN];
};

struct vfm_tcp {
	struct vfm_xport base;
	struct vfm_xport_cfg cfg;
	struct io_uring ring;
	bool ring_ok, fixed_ok, have_zc;
	bool is_src, is_dst, connected;
	enum tcp_send_mode smode;
	enum tcp_recv_mode rmode;
	uint32_t zc_min;
	struct tcp_reg regs[TCP_MAX_REGS];
	unsigned int nbufs;
	struct tcp_stream *st;
	int lfd;
	struct vfm_tcp_info info;
	uint8_t *land;
	size_t land_len;
	const struct tcp_reg *land_reg;
	struct vfm_cqe *cq; /* completions not yet returned by poll */
	unsigned int cq_head, cq_count, cq_cap;
	unsigned int inflight; /* CQEs the kernel still owes us */
	unsigned int eof_streams; /* destination streams closed cleanly */
	EVP_CIPHER_CTX *aead; /* NULL: payloads in clear */
	uint8_t key[32];
	int err; /* sticky transport error */
	int64_t last_progress;
};

static inline struct vfm_tcp *to_tcp(struct vfm_xport *x)
{
	return (struct vfm_tcp *)x;
}

static inline uint64_t ud_make(enum tcp_ud_kind k, unsigned int stream,
			       unsigned int slot)
{
	return ((uint64_t)k << 56) | ((uint64_t)stream << 32) | slot;
}

static void set_err(struct vfm_tcp *t, int err)
{
	if (!t->err)
		t->err = err;
}

/* ------------------------------------------------------------------ */
/* completion queue towards the caller */

static bool cq_full(const struct vfm_tcp *t)
{
	return t->cq_count == t->cq_cap;
}

static void cq_push(struct vfm_tcp *t, const struct vfm_cqe *c)
{
	t->cq[(t->cq_head + t->cq_count) % t->cq_cap] = *c;
	t->cq_count++;
}

static int cq_drain(struct vfm_tcp *t, struct vfm_cqe *out, int max)
{
	int n = 0;

	while (n < max && t->cq_count) {
		out[n++] = t->cq[t->cq_head];
		t->cq_head = (t->cq_head + 1) % t->cq_cap;
		t->cq_count--;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* registered buffers */

/* Fixed buffer index covering [p, p + len), or -1. */
static int fixed_index(const struct vfm_tcp *t, const struct tcp_reg *r,
		       const uint8_t *p, size_t len)
{
	size_t off, c0, c1;

	if (!t->fixed_ok || !r || r->first < 0 || !len)
		return -1;
	off = (size_t)(p - r->addr);
	c0 = off / TCP_CHUNK;
	c1 = (off + len - 1) / TCP_CHUNK;
	return c0 == c1 ? r->first + (int)c0 : -1;
}

/*
 * (Re)register every live region with the ring, cut into 1 GiB buffers.
 * When the kernel refuses (RLIMIT_MEMLOCK, too many buffers), the data
 * path falls back to unregistered I/O: slower, never wrong.
 */
static void fixed_refresh(struct vfm_tcp *t)
{
	struct iovec iov[TCP_MAX_BUFS];
	unsigned int n = 0, i;
	size_t off;

	if (t->nbufs)
		io_uring_unregister_buffers(&t->ring);
	t->nbufs = 0;
	for (i = 0; i < TCP_MAX_REGS; i++) {
		struct tcp_reg *r = &t->regs[i];

		r->first = -1;
		if (!r->used || !t->fixed_ok || !r->len)
			continue;
		if (n + (r->len + TCP_CHUNK - 1) / TCP_CHUNK > TCP_MAX_BUFS)
			continue;
		r->first = (int)n;
		for (off = 0; off < r->len; off += TCP_CHUNK) {
			iov[n].iov_base = r->addr + off;
			iov[n].iov_len = r->len - off < TCP_CHUNK ?
						 r->len - off :
						 TCP_CHUNK;
			n++;
		}
	}
	if (!n)
		return;
	if (io_uring_register_buffers(&t->ring, iov, n)) {
		for (i = 0; i < TCP_MAX_REGS; i++)
			t->regs[i].first = -1;
		return;
	}
	t->nbufs = n;
}

static int tcp_reg(struct vfm_xport *x, void *addr, size_t len,
		   struct vfm_mr *mr)
{
	struct vfm_tcp *t = to_tcp(x);
	unsigned int i;

	if (!mr || (!addr && len))
		return -EINVAL;
	for (i = 0; i < TCP_MAX_REGS && t->regs[i].used; i++)
		;
	if (i == TCP_MAX_REGS)
		return -ENOSPC;
	t->regs[i] = (struct tcp_reg){
		.used = true, .addr = addr, .len = len, .first = -1
	};
	fixed_refresh(t);
	*mr = (struct vfm_mr){
		.addr = addr, .len = len, .key = 0, .priv = &t->regs[i]
	};
	return 0;
}

static struct tcp_reg *reg_of(struct vfm_tcp *t, const struct vfm_mr *mr)
{
	unsigned int i;

	for (i = 0; mr && i < TCP_MAX_REGS; i++)
		if (mr->priv == &t->regs[i] && t->regs[i].used)
			return &t->regs[i];
	return NULL;
}

static void tcp_dereg(struct vfm_xport *x, struct vfm_mr *mr)
{
	struct vfm_tcp *t = to_tcp(x);
	struct tcp_reg *r = reg_of(t, mr);

	if (!r)
		return;
	if (t->land_reg == r)
		t->land_reg = NULL;
	r->used = false;
	fixed_refresh(t);
	mr->priv = NULL;
}

/* ------------------------------------------------------------------ */
/* SQE helpers */

static struct io_uring_sqe *get_sqe(struct vfm_tcp *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	if (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	return sqe;
}

/* ------------------------------------------------------------------ */
/* AEAD (--encrypt) */

static void aead_nonce(uint8_t iv[12], unsigned int stream, uint64_t n)
{
	for (unsigned int k = 0; k < 4; k++)
		iv[k] = (uint8_t)(stream >> (8 * k));
	for (unsigned int k = 0; k < 8; k++)
		iv[4 + k] = (uint8_t)(n >> (8 * k));
}

/* Seal @len bytes of @in into @out (ciphertext, then the tag), with the
 * segment header as associated data. */
static int aead_seal(struct vfm_tcp *t, unsigned int stream, uint64_t n,
		     const uint8_t *hdr, const uint8_t *in, uint32_t len,
		     uint8_t *out)
{
	uint8_t iv[12];
	int l;

	aead_nonce(iv, stream, n);
	if (EVP_EncryptInit_ex(t->aead, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(t->aead, NULL, &l, hdr, VFM_TCP_HDR_LEN) != 1 ||
	    (len && EVP_EncryptUpdate(t->aead, out, &l, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(t->aead, out + len, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(t->aead, EVP_CTRL_GCM_GET_TAG, TCP_TAG_LEN,
				out + len) != 1)
		return -EIO;
	return 0;
}

/* Open @len bytes at @p in place; -EBADMSG when the tag does not verify. */
static int aead_open(struct vfm_tcp *t, unsigned int stream, uint64_t n,
		     const uint8_t *hdr, uint8_t *p, uint32_t len, uint8_t *tag)
{
	uint8_t iv[12];
	int l;

	aead_nonce(iv, stream, n);
	if (EVP_DecryptInit_ex(t->aead, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(t->aead, NULL, &l, hdr, VFM_TCP_HDR_LEN) != 1 ||
	    (len && EVP_DecryptUpdate(t->aead, p, &l, p, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(t->aead, EVP_CTRL_GCM_SET_TAG, TCP_TAG_LEN,
				tag) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(t->aead, p + len, &l) != 1) {
		/* what was decrypted is not the sender's: do not leave it */
		OPENSSL_cleanse(p, len);
		return -EBADMSG;
	}
	return 0;
}

static int aead_start(struct vfm_tcp *t, bool seal)
{
	if (!t->aead)
		return 0;
	if (seal ? EVP_EncryptInit_ex(t->aead, EVP_aes_256_gcm(), NULL, t->key,
				      NULL) != 1 :
		   EVP_DecryptInit_ex(t->aead, EVP_aes_256_gcm(), NULL, t->key,
				      NULL) != 1)
		return -EIO;
	return 0;
}

/* ------------------------------------------------------------------ */
/* source side */

static void src_watch(struct vfm_tcp *t, unsigned int i)
{
	struct tcp_stream *s = &t->st[i];
	struct io_uring_sqe *sqe = get_sqe(t);

	if (!sqe) {
		set_err(t, -EBUSY);
		return;
	}
	io_uring_prep_recv(sqe, s->fd, &s->watch_byte, 1, 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_WATCH, i, 0));
	t->inflight++;
}

static void prep_payload(struct vfm_tcp *t, struct io_uring_sqe *sqe,
			 const struct tcp_stream *s, const struct tcp_seg *g,
			 uint32_t off)
{
	const uint8_t *p = g->buf + off;
	uint32_t n = g->wlen - off;

	if (t->smode == TCP_SEND_ZC && t->have_zc && g->wlen >= t->zc_min) {
		if (g->buf_index >= 0)
			io_uring_prep_send_zc_fixed(sqe, s->fd, p, n,
						    MSG_WAITALL | MSG_NOSIGNAL,
						    0, (unsigned)g->buf_index);
		else
			io_uring_prep_send_zc(sqe, s->fd, p, n,
					      MSG_WAITALL | MSG_NOSIGNAL, 0);
	} else if (t->smode == TCP_SEND_WRITE_FIXED && g->buf_index >= 0) {
		io_uring_prep_write_fixed(sqe, s->fd, p, n, 0, g->buf_index);
	} else {
		io_uring_prep_send(sqe, s->fd, p, n,
				   MSG_WAITALL | MSG_NOSIGNAL);
	}
}

/*
 * Send every unfinished queued write of stream @i as one linked chain,
 * unless a chain is still in flight. A chain never spans two submissions
 * (the kernel would not keep them ordered), so it is cut to the SQ space.
 * Short completions of plain writes do not stop a chain, so in that mode
 * a write's payload always ends its chain.
 */
static void src_kick(struct vfm_tcp *t, unsigned int i)
{
	struct tcp_stream *s = &t->st[i];
	struct io_uring_sqe *sqe, *last = NULL;
	unsigned int k, space;

	if (s->chain || !s->count || t->err)
		return;
	space = io_uring_sq_space_left(&t->ring);
	if (space < 2) {
		io_uring_submit(&t->ring);
		space = io_uring_sq_space_left(&t->ring);
	}
	for (k = 0; k < s->count && space >= 2; k++) {
		unsigned int slot = (s->head + k) % t->cfg.depth;
		struct tcp_seg *g = &s->segs[slot];
		uint32_t off;

		if (g->done == VFM_TCP_HDR_LEN + g->wlen)
			continue;
		if (g->done < VFM_TCP_HDR_LEN) {
			sqe = io_uring_get_sqe(&t->ring);
			io_uring_prep_send(sqe, s->fd, g->hdr + g->done,
					   VFM_TCP_HDR_LEN - g->done,
					   MSG_WAITALL | MSG_NOSIGNAL |
						   (g->wlen ? MSG_MORE : 0));
			io_uring_sqe_set_data64(sqe, ud_make(UD_HDR, i, slot));
			sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
			s->chain++;
			t->inflight++;
			space--;
		}
		off = g->done > VFM_TCP_HDR_LEN ? g->done - VFM_TCP_HDR_LEN : 0;
		if (g->wlen > off) {
			sqe = io_uring_get_sqe(&t->ring);
			prep_payload(t, sqe, s, g, off);
			io_uring_sqe_set_data64(sqe, ud_make(UD_PAY, i, slot));
			sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
			s->chain++;
			t->inflight++;
			space--;
			if (t->smode == TCP_SEND_WRITE_FIXED)
				break;
		}
	}
	if (last)
		last->flags &= ~IOSQE_IO_LINK;
}

/* Hand finished writes, in order, to the caller as SEND completions. */
static void src_retire(struct vfm_tcp *t, unsigned int i)
{
	struct tcp_stream *s = &t->st[i];

	while (s->count && !cq_full(t)) {
		struct tcp_seg *g = &s->segs[s->head];
		struct vfm_cqe c = { .kind = VFM_CQE_SEND,
				     .wr_id = g->wr_id,
				     .len = g->len,
				     .stream = i };

		if (g->done != VFM_TCP_HDR_LEN + g->wlen || g->notifs)
			break;
		cq_push(t, &c);
		s->head = (s->head + 1) % t->cfg.depth;
		s->count--;
	}
}

static void src_complete(struct vfm_tcp *t, const struct io_uring_cqe *cqe,
			 enum tcp_ud_kind kind, unsigned int i,
			 unsigned int slot)
{
	struct tcp_stream *s = &t->st[i];
	struct tcp_seg *g = &s->segs[slot];
	int res = cqe->res;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		g->notifs--;
		src_retire(t, i);
		return;
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		g->notifs++;
	s->chain--;
	if (res > 0) {
		g->done += (uint32_t)res;
		t->last_progress = vfm_tcp_now_ms();
	} else if (res == 0) {
		set_err(t, -EPIPE);
	} else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
		set_err(t, res);
	}
	(void)kind;
	if (!s->chain) {
		src_retire(t, i);
		src_kick(t, i);
	}
}

static void watch_complete(struct vfm_tcp *t, int res, unsigned int i)
{
	if (res == -EINTR || res == -EAGAIN) {
		if (!t->err)
			src_watch(t, i);
		return;
	}
	if (res == -ECANCELED)
		return;
	/* The destination never talks after its ack: EOF, reset or junk. */
	set_err(t, res < 0 ? res : res == 0 ? -ECONNRESET : -EPROTO);
}

/* ------------------------------------------------------------------ */
/* destination side */

static void dst_post(struct vfm_tcp *t, unsigned int i)
{
	struct tcp_stream *s = &t->st[i];
	struct io_uring_sqe *sqe;

	if (t->err || s->rx_busy || s->rx_blocked)
		return;
	sqe = get_sqe(t);
	if (!sqe) {
		set_err(t, -EBUSY);
		return;
	}
	if (!s->in_payload) {
		io_uring_prep_recv(sqe, s->fd, s->rhdr + s->rgot,
				   VFM_TCP_HDR_LEN - s->rgot, MSG_WAITALL);
	} else if (s->pgot >= s->cur.len) {
		/* sealed: the tag after the ciphertext */
		uint32_t got = s->pgot - s->cur.len;

		io_uring_prep_recv(sqe, s->fd, s->rtag + got, TCP_TAG_LEN - got,
				   MSG_WAITALL);
	} else {
		uint8_t *p = t->land + s->cur.roff + s->pgot;
		uint32_t n = s->cur.len - s->pgot;
		int idx = -1;

		if (t->rmode == TCP_RECV_READ_FIXED)
			idx = fixed_index(t, t->land_reg, p, n);
		if (idx >= 0)
			io_uring_prep_read_fixed(sqe, s->fd, p, n, 0, idx);
		else
			io_uring_prep_recv(sqe, s->fd, p, n, MSG_WAITALL);
	}
	io_uring_sqe_set_data64(sqe, ud_make(UD_RX, i, 0));
	s->rx_busy = true;
	t->inflight++;
}

/* A whole write landed: tell the caller, or wait for room to. */
static void dst_deliver(struct vfm_tcp *t, unsigned int i)
{
	struct tcp_stream *s = &t->st[i];
	struct vfm_cqe c = { .kind = VFM_CQE_RECV,
			     .roff = s->cur.roff,
			     .len = s->cur.len,
			     .stream = i,
			     .imm = s->cur.imm };

	if (cq_full(t)) {
		s->rx_blocked = true;
		return;
	}
	cq_push(t, &c);
	s->rx_blocked = false;
	s->in_payload = false;
	s->rseq++;
}

static int dst_header(struct vfm_tcp *t, struct tcp_stream *s)
{
	struct vfm_tcp_hdr h;

	if (vfm_tcp_hdr_decode(&h, s->rhdr))
		return -EPROTO;
	if (h.seq != s->rseq)
		return -EPROTO;
	/* A hostile peer must not write outside the landing buffer. */
	if (h.roff > t->land_len || h.len > t->land_len - h.roff)
		return -EPROTO;
	s->cur = h;
	s->rgot = 0;
	s->pgot = 0;
	s->in_payload = true;
	return 0;
}

static void dst_complete(struct vfm_tcp *t, int res, unsigned int i)
{
	struct tcp_stream *s = &t->st[i];
	int err;

	s->rx_busy = false;
	if (res == -EINTR || res == -EAGAIN) {
		dst_post(t, i);
		return;
	}
	if (res < 0) {
		set_err(t, res == -ECANCELED ? -ESHUTDOWN : res);
		return;
	}
	if (res == 0) {
		/*
		 * The source closed the stream. Inside a write that is a
		 * failure now; between writes the stream is merely finished,
		 * and the transport fails once every stream is, so that the
		 * writes still in flight on the others land first.
		 */
		if (s->in_payload || s->rgot ||
		    ++t->eof_streams == t->cfg.streams)
			set_err(t, -ECONNRESET);
		return;
	}
	t->last_progress = vfm_tcp_now_ms();
	if (!s->in_payload) {
		s->rgot += (uint32_t)res;
		if (s->rgot < VFM_TCP_HDR_LEN)
			goto repost;
		err = dst_header(t, s);
		if (err) {
			set_err(t, err);
			return;
		}
	} else {
		s->pgot += (uint32_t)res;
	}
	if (s->in_payload &&
	    s->pgot == s->cur.len + (t->aead ? TCP_TAG_LEN : 0)) {
		if (t->aead) {
			err = aead_open(t, i, s->nseal, s->rhdr,
					t->land + s->cur.roff, s->cur.len,
					s->rtag);
			if (err) {
				set_err(t, err);
				return;
			}
			s->nseal++;
		}
		dst_deliver(t, i);
	}
repost:
	dst_post(t, i);
}

/* ------------------------------------------------------------------ */
/* the completion loop */

static void handle_cqe(struct vfm_tcp *t, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum tcp_ud_kind kind = (enum tcp_ud_kind)(ud >> 56);
	unsigned int i = (unsigned int)(ud >> 32) & 0xffffff;
	unsigned int slot = (unsigned int)ud;

	if (kind == UD_CANCEL || i >= t->cfg.streams)
		return;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		t->inflight--;
	switch (kind) {
	case UD_HDR:
	case UD_PAY:
		src_complete(t, cqe, kind, i, slot);
		break;
	case UD_WATCH:
		watch_complete(t, cqe->res, i);
		break;
	case UD_RX:
		dst_complete(t, cqe->res, i);
		break;
	default:
		break;
	}
}

static unsigned int reap(struct vfm_tcp *t)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&t->ring, head, cqe)
	{
		handle_cqe(t, cqe);
		n++;
	}
	io_uring_cq_advance(&t->ring, n);
	return n;
}

/* Queued work that has not moved for cfg.timeout_ms is a stalled peer. */
static bool busy(const struct vfm_tcp *t)
{
	unsigned int i;

	for (i = 0; i < t->cfg.streams; i++) {
		const struct tcp_stream *s = &t->st[i];

		if (t->is_src && s->count)
			return true;
		if (t->is_dst && (s->rgot || s->in_payload) && !s->rx_blocked)
			return true;
	}
	return false;
}

static void unblock(struct vfm_tcp *t)
{
	unsigned int i;

	for (i = 0; i < t->cfg.streams; i++) {
		if (t->is_dst && t->st[i].rx_blocked && !cq_full(t)) {
			dst_deliver(t, i);
			dst_post(t, i);
		}
		if (t->is_src) {
			src_retire(t, i);
			src_kick(t, i);
		}
	}
}

static int tcp_poll(struct vfm_xport *x, struct vfm_cqe *out, int max,
		    int timeout_ms)
{
	struct vfm_tcp *t = to_tcp(x);
	int64_t deadline = timeout_ms < 0 ? -1 : vfm_tcp_now_ms() + timeout_ms;

	if (!out || max <= 0)
		return -EINVAL;
	if (!t->connected)
		return t->err ? t->err : -ENOTCONN;
	for (;;) {
		struct __kernel_timespec ts;
		struct io_uring_cqe *cqe;
		int64_t now, wait, stall = -1;
		int n, r;

		reap(t);
		unblock(t);
		n = cq_drain(t, out, max);
		if (n) {
			/* chains and recvs prepared while reaping go out
			 * now, not at the caller's next poll */
			if (io_uring_sq_ready(&t->ring))
				io_uring_submit(&t->ring);
			return n;
		}
		if (t->err)
			return t->err;
		now = vfm_tcp_now_ms();
		if (t->cfg.timeout_ms > 0 && busy(t)) {
			stall = t->last_progress + t->cfg.timeout_ms - now;
			if (stall <= 0) {
				set_err(t, -ETIMEDOUT);
				return t->err;
			}
		}
		if (t->is_src && !busy(t)) {
			/* Nothing queued: only a peer failure can happen. */
			if (timeout_ms < 0) {
				io_uring_submit(&t->ring);
				return 0;
			}
		}
		wait = deadline < 0 ? -1 : deadline - now;
		if (wait == 0 || (deadline >= 0 && wait < 0)) {
			/* enter the kernel even with nothing to submit: with
			 * COOP_TASKRUN, completions wait for us there */
			io_uring_submit_and_get_events(&t->ring);
			if (reap(t))
				continue;
			return 0;
		}
		if (stall >= 0 && (wait < 0 || stall < wait))
			wait = stall;
		if (wait < 0) {
			r = io_uring_submit_and_wait(&t->ring, 1);
		} else {
			ts.tv_sec = wait / 1000;
			ts.tv_nsec = (wait % 1000) * 1000000;
			r = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1,
							     &ts, NULL);
		}
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN &&
		    r != -EBUSY)
			set_err(t, r);
	}
}

/* ------------------------------------------------------------------ */
/* posting writes */

static int tcp_write(struct vfm_xport *x, unsigned int stream,
		     const struct vfm_mr *mr, size_t loff, uint64_t roff,
		     uint32_t len, uint64_t imm, uint64_t wr_id)
{
	struct vfm_tcp *t = to_tcp(x);
	struct tcp_stream *s;
	struct tcp_seg *g;
	struct vfm_tcp_hdr h;
	bool was_busy;

	if (!t->connected || !t->is_src)
		return -ENOTCONN;
	if (t->err)
		return t->err;
	if (stream >= t->cfg.streams || !mr || loff > mr->len ||
	    len > mr->len - loff)
		return -EINVAL;
	if (roff > t->info.landing_len || len > t->info.landing_len - roff)
		return -EINVAL;
	s = &t->st[stream];
	if (s->count == t->cfg.depth || (t->aead && s->count >= TCP_AEAD_DEPTH))
		return -EAGAIN;
	if (t->aead && len > INT_MAX - TCP_TAG_LEN)
		return -EINVAL;
	was_busy = busy(t);
	g = &s->segs[(s->head + s->count) % t->cfg.depth];
	g->wr_id = wr_id;
	g->buf = (const uint8_t *)mr->addr + loff;
	g->len = len;
	g->wlen = len;
	g->buf_index = fixed_index(t, reg_of(t, mr), g->buf, len);
	g->done = 0;
	g->notifs = 0;
	h = (struct vfm_tcp_hdr){
		.len = len, .roff = roff, .imm = imm, .seq = s->seq
	};
	vfm_tcp_hdr_encode(g->hdr, &h);
	if (t->aead) {
		int err;

		if (g->ct_cap < len + TCP_TAG_LEN) {
			uint8_t *ct = realloc(g->ct, len + TCP_TAG_LEN);

			if (!ct)
				return -ENOMEM;
			g->ct = ct;
			g->ct_cap = len + TCP_TAG_LEN;
		}
		err = aead_seal(t, stream, s->nseal, g->hdr, g->buf, len,
				g->ct);
		if (err)
			return err;
		s->nseal++;
		g->buf = g->ct;
		g->wlen = len + TCP_TAG_LEN;
		g->buf_index = -1;
	}
	s->seq++;
	s->count++;
	if (!was_busy)
		t->last_progress = vfm_tcp_now_ms();
	if (!s->chain) {
		src_kick(t, stream);
		io_uring_submit(&t->ring);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* set-up and teardown */

static int tcp_listen(struct vfm_xport *x, const char *bind_addr,
		      const struct vfm_mr *landing, struct vfm_xport_info *info)
{
	struct vfm_tcp *t = to_tcp(x);
	int err;

	if (!landing || !info || (!landing->addr && landing->len))
		return -EINVAL;
	if (t->is_src || t->is_dst)
		return -EALREADY;
	if (getrandom(t->info.cookie, VFM_TCP_COOKIE_LEN, 0) !=
	    VFM_TCP_COOKIE_LEN)
		return -EIO;
	err = vfm_tcp_listen_fd(bind_addr, &t->lfd, &t->info.port);
	if (err)
		return err;
	t->info.version = VFM_TCP_WIRE_VERSION;
	t->info.streams = (uint16_t)t->cfg.streams;
	t->info.landing_len = landing->len;
	t->land = landing->addr;
	t->land_len = landing->len;
	t->land_reg = reg_of(t, landing);
	err = aead_start(t, false);
	if (err) {
		close(t->lfd);
		t->lfd = -1;
		return err;
	}
	t->is_dst = true;
	memset(info, 0, sizeof(*info));
	vfm_tcp_info_encode(info->data, &t->info);
	info->len = VFM_TCP_INFO_LEN;
	return 0;
}

static int tcp_accept(struct vfm_xport *x, int timeout_ms)
{
	struct vfm_tcp *t = to_tcp(x);
	int fds[TCP_MAX_STREAMS];
	unsigned int i;
	int err;

	if (!t->is_dst || t->lfd < 0)
		return -EINVAL;
	if (t->connected)
		return -EISCONN;
	err = vfm_tcp_accept_streams(t->lfd, &t->info, fds, timeout_ms);
	if (err)
		return err;
	close(t->lfd);
	t->lfd = -1;
	for (i = 0; i < t->cfg.streams; i++)
		t->st[i].fd = fds[i];
	t->connected = true;
	t->last_progress = vfm_tcp_now_ms();
	for (i = 0; i < t->cfg.streams; i++)
		dst_post(t, i);
	io_uring_submit(&t->ring);
	return t->err;
}

static int tcp_connect(struct vfm_xport *x, const char *peer,
		       const struct vfm_xport_info *info, int timeout_ms)
{
	struct vfm_tcp *t = to_tcp(x);
	int64_t deadline = vfm_tcp_now_ms() + timeout_ms;
	unsigned int i;
	int err;

	if (!info || !peer)
		return -EINVAL;
	if (t->is_src || t->is_dst)
		return -EALREADY;
	err = vfm_tcp_info_decode(&t->info, info->data, info->len);
	if (err)
		return err;
	if (t->info.streams != t->cfg.streams)
		return -EINVAL;
	err = aead_start(t, true);
	if (err)
		return err;
	for (i = 0; i < t->cfg.streams; i++) {
		int left = timeout_ms < 0 ? -1 :
					    (int)(deadline - vfm_tcp_now_ms());

		if (timeout_ms >= 0 && left <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		err = vfm_tcp_connect_stream(peer, &t->info, (uint16_t)i, left,
					     &t->st[i].fd);
		if (err)
			break;
	}
	if (err) {
		while (i--) {
			close(t->st[i].fd);
			t->st[i].fd = -1;
		}
		return err;
	}
	t->is_src = true;
	t->connected = true;
	for (i = 0; i < t->cfg.streams; i++)
		src_watch(t, i);
	io_uring_submit(&t->ring);
	return t->err;
}

/* Cancel everything in flight and wait (bounded) until the kernel is done
 * with our buffers: the caller frees them right after destroy. */
static void quiesce(struct vfm_tcp *t)
{
	struct io_uring_sqe *sqe;
	unsigned int i, tries;

	set_err(t, -ESHUTDOWN);
	for (i = 0; i < t->cfg.streams; i++)
		if (t->st[i].fd >= 0)
			shutdown(t->st[i].fd, SHUT_RDWR);
	if (!t->inflight)
		return;
	sqe = get_sqe(t);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, ud_make(UD_CANCEL, 0, 0));
	}
	for (tries = 0; t->inflight && tries < 500; tries++) {
		struct __kernel_timespec ts = { .tv_nsec = 10000000 };
		struct io_uring_cqe *cqe;

		io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
		reap(t);
	}
}

static void tcp_destroy(struct vfm_xport *x)
{
	struct vfm_tcp *t = to_tcp(x);
	unsigned int i;

	if (t->ring_ok) {
		quiesce(t);
		io_uring_queue_exit(&t->ring);
	}
	if (t->lfd >= 0)
		close(t->lfd);
	for (i = 0; t->st && i < t->cfg.streams; i++) {
		if (t->st[i].fd >= 0)
			close(t->st[i].fd);
		for (unsigned int k = 0; t->st[i].segs && k < t->cfg.depth; k++)
			free(t->st[i].segs[k].ct);
		free(t->st[i].segs);
	}
	EVP_CIPHER_CTX_free(t->aead);
	OPENSSL_cleanse(t->key, sizeof(t->key));
	free(t->st);
	free(t->cq);
	free(t);
}

static void pick_modes(struct vfm_tcp *t)
{
	const char *s = getenv("VFM_TCP_SEND");
	const char *r = getenv("VFM_TCP_RECV");
	const char *z = getenv("VFM_TCP_ZC_MIN");

	t->smode = TCP_SEND_PLAIN;
	if (s && !strcmp(s, "zc"))
		t->smode = TCP_SEND_ZC;
	else if (s && !strcmp(s, "write_fixed"))
		t->smode = TCP_SEND_WRITE_FIXED;
	t->rmode = TCP_RECV_PLAIN;
	if (r && !strcmp(r, "read_fixed"))
		t->rmode = TCP_RECV_READ_FIXED;
	t->zc_min = 64 * 1024;
	if (z && *z)
		t->zc_min = (uint32_t)strtoul(z, NULL, 0);
}

static int ring_setup(struct vfm_tcp *t)
{
	unsigned int want = t->cfg.streams * (2 * t->cfg.depth + 2);
	unsigned int entries = 32;
	struct io_uring_params p;
	struct io_uring_probe *probe;
	int err;

	while (entries < want && entries < 4096)
		entries <<= 1;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG;
	if (getenv("VFM_TCP_DEFER"))
		p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
			  IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = entries * 4;
	err = io_uring_queue_init_params(entries, &t->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		err = io_uring_queue_init_params(entries, &t->ring, &p);
	}
	if (err == -EPERM || err == -ENOSYS)
		vfm_xport_hint_uring(err);
	if (err)
		return err;
	t->ring_ok = true;
	probe = io_uring_get_probe_ring(&t->ring);
	if (!probe)
		return -EOPNOTSUPP;
	if (!io_uring_opcode_supported(probe, IORING_OP_SEND) ||
	    !io_uring_opcode_supported(probe, IORING_OP_RECV) ||
	    !io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL))
		err = -EOPNOTSUPP;
	t->have_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	io_uring_free_probe(probe);
	t->fixed_ok = true;
	return err;
}

static int tcp_create(struct vfm_xport **out, const struct vfm_xport_cfg *cfg)
{
	struct vfm_tcp *t;
	unsigned int i;
	int err;

	if (!out || !cfg || !cfg->streams || cfg->streams > TCP_MAX_STREAMS ||
	    cfg->depth > TCP_MAX_DEPTH)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->base.ops = &vfm_xport_tcp_ops;
	t->cfg = *cfg;
	if (!t->cfg.depth)
		t->cfg.depth = 4;
	t->lfd = -1;
	t->cq_cap = t->cfg.streams * (t->cfg.depth + 1);
	t->cq = calloc(t->cq_cap, sizeof(*t->cq));
	t->st = calloc(t->cfg.streams, sizeof(*t->st));
	err = (!t->cq || !t->st) ? -ENOMEM : 0;
	for (i = 0; !err && i < t->cfg.streams; i++) {
		t->st[i].fd = -1;
		t->st[i].segs = calloc(t->cfg.depth, sizeof(struct tcp_seg));
		if (!t->st[i].segs)
			err = -ENOMEM;
	}
	if (!err && cfg->aead_key) {
		memcpy(t->key, cfg->aead_key, sizeof(t->key));
		t->cfg.aead_key = NULL;
		t->aead = EVP_CIPHER_CTX_new();
		if (!t->aead)
			err = -ENOMEM;
	}
	if (!err)
		err = ring_setup(t);
	if (err) {
		tcp_destroy(&t->base);
		return err;
	}
	pick_modes(t);
	*out = &t->base;
	return 0;
}

const struct vfm_xport_ops vfm_xport_tcp_ops = {
	.name = "tcp",
	.create = tcp_create,
	.reg = tcp_reg,
	.dereg = tcp_dereg,
	.listen = tcp_listen,
	.accept = tcp_accept,
	.connect = tcp_connect,
	.write = tcp_write,
	.poll = tcp_poll,
	.destroy = tcp_destroy,
};
