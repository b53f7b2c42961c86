// SPDX-License-Identifier: MIT
/*
 * The tcp transport: N TCP streams, each served by a worker thread with
 * its own io_uring (VFM_TCP_THREADS caps the workers; streams are then
 * dealt round robin, a worker serving its share on one ring).
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
 * Sealing and opening run on the stream's worker, outside its lock.
 *
 * Threads: the workers start once connect() or accept() has every stream.
 * Only a worker touches its ring after that (submissions and completions;
 * io_uring runs a request's task work on the thread that submitted it).
 * write() queues the write under the worker's lock and wakes it through an
 * eventfd whose read stays posted on the ring; the worker reaps, seals,
 * opens and pushes completions into its own queue; poll() drains those
 * queues (each stream's completions in order) and sleeps on a condition
 * variable the workers signal. One object is still used by one caller
 * thread at a time; destroy() stops the workers, each of which quiesces
 * its ring before it exits.
 */
#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
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
#define TCP_WORKER_NAP_MS 200 /* a worker looks at its stop flag this often */

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
	UD_WAKE,
};

struct tcp_reg {
	bool used;
	uint8_t *addr;
	size_t len;
};

/* One posted write on the source. */
struct tcp_seg {
	uint64_t wr_id;
	const uint8_t *buf;
	uint32_t len; /* the caller's bytes */
	uint32_t wlen; /* payload bytes on the wire: len, + tag when sealed */
	int buf_index; /* fixed buffer covering the payload, or -1 */
	bool sealed; /* AEAD: buf is the sealed copy */
	uint8_t *ct; /* sealed payload and tag (AEAD only) */
	uint32_t ct_cap;
	uint32_t done; /* header + payload bytes already sent */
	uint32_t notifs; /* zero-copy notifications still due */
	uint8_t hdr[VFM_TCP_HDR_LEN];
};

struct tcp_stream {
	int fd;
	unsigned int sh; /* the worker serving this stream */
	_Atomic int tid; /* thread that last did this stream's work */
	/* source */
	struct tcp_seg *segs; /* ring of cfg.depth slots */
	unsigned int head, count;
	unsigned int chain; /* result CQEs due for the chain in flight */
	uint32_t seq;
	uint64_t nseal; /* AEAD: segments sealed (source) / opened (dest.) */
	uint8_t watch_byte;
	bool peer_closed; /* EOF with nothing outstanding: writes now fail */
	/* destination */
	bool rx_busy; /* a recv is in flight */
	bool rx_blocked; /* payload done, waiting for CQE queue space */
	bool in_payload;
	uint32_t rgot, pgot, rseq;
	struct vfm_tcp_hdr cur;
	uint8_t rhdr[VFM_TCP_HDR_LEN];
	uint8_t rtag[TCP_TAG_LEN];
};

struct vfm_tcp;

/* One worker: a thread, its ring and the streams it serves. */
struct tcp_shard {
	struct vfm_tcp *t;
	unsigned int idx;
	struct io_uring ring;
	bool ring_ok, fixed_ok, have_zc;
	unsigned int nbufs;
	int first[TCP_MAX_REGS]; /* first fixed-buffer index per region */
	unsigned int nstreams;
	/* everything below and the shard's streams are under mu */
	pthread_mutex_t mu;
	pthread_t thr;
	bool thr_ok;
	bool stop;
	bool woken; /* the eventfd holds a wake not yet read */
	bool want_room; /* blocked on a full queue until poll drains it */
	bool pushed; /* news for the caller since it was told */
	int efd;
	uint64_t efd_val;
	int tid;
	struct vfm_cqe *cq; /* completions not yet returned by poll */
	unsigned int cq_head, cq_count, cq_cap;
	unsigned int inflight; /* CQEs the kernel still owes us */
	EVP_CIPHER_CTX *aead; /* NULL: payloads in clear */
};

struct vfm_tcp {
	struct vfm_xport base;
	struct vfm_xport_cfg cfg;
	struct tcp_shard *sh;
	unsigned int nsh, rr;
	bool is_src, is_dst, connected, sealed;
	enum tcp_send_mode smode;
	enum tcp_recv_mode rmode;
	uint32_t zc_min;
	struct tcp_reg regs[TCP_MAX_REGS];
	struct tcp_stream *st;
	int lfd;
	struct vfm_tcp_info info;
	uint8_t *land;
	size_t land_len;
	const struct tcp_reg *land_reg;
	_Atomic unsigned int eof_streams; /* destination streams closed */
	uint8_t key[32];
	_Atomic int err; /* sticky transport error */
	_Atomic int64_t last_progress;
	/* the caller sleeps in poll on cv until a worker bumps events */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t events;
	bool sync_ok;
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
	int zero = 0;

	atomic_compare_exchange_strong(&t->err, &zero, err);
}

static inline int get_err(struct vfm_tcp *t)
{
	return atomic_load(&t->err);
}

static inline struct tcp_shard *shard_of(struct vfm_tcp *t, unsigned int i)
{
	return &t->sh[t->st[i].sh];
}

static void progress(struct vfm_tcp *t)
{
	atomic_store(&t->last_progress, vfm_tcp_now_ms());
}

/* Tell a caller sleeping in poll that something changed. */
static void notify(struct vfm_tcp *t)
{
	pthread_mutex_lock(&t->mu);
	t->events++;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* Wake the worker (under sh->mu). */
static void wake(struct tcp_shard *sh)
{
	uint64_t one = 1;

	if (sh->woken || sh->efd < 0)
		return;
	sh->woken = true;
	if (write(sh->efd, &one, sizeof(one)) != sizeof(one))
		sh->woken = false;
}

/* ------------------------------------------------------------------ */
/* completion queue towards the caller, one per worker */

static bool cq_full(const struct tcp_shard *sh)
{
	return sh->cq_count == sh->cq_cap;
}

static void cq_push(struct tcp_shard *sh, const struct vfm_cqe *c)
{
	sh->cq[(sh->cq_head + sh->cq_count) % sh->cq_cap] = *c;
	sh->cq_count++;
	sh->pushed = true;
}

static int cq_drain(struct tcp_shard *sh, struct vfm_cqe *out, int max)
{
	int n = 0;

	while (n < max && sh->cq_count) {
		out[n++] = sh->cq[sh->cq_head];
		sh->cq_head = (sh->cq_head + 1) % sh->cq_cap;
		sh->cq_count--;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* registered buffers */

/* Fixed buffer index covering [p, p + len), or -1. */
static int fixed_index(const struct tcp_shard *sh, const struct vfm_tcp *t,
		       const struct tcp_reg *r, const uint8_t *p, size_t len)
{
	size_t off, c0, c1;
	int first;

	if (!sh->fixed_ok || !r || !len)
		return -1;
	first = sh->first[r - t->regs];
	if (first < 0)
		return -1;
	off = (size_t)(p - r->addr);
	c0 = off / TCP_CHUNK;
	c1 = (off + len - 1) / TCP_CHUNK;
	return c0 == c1 ? first + (int)c0 : -1;
}

/*
 * (Re)register every live region with a worker's ring, cut into 1 GiB
 * buffers. When the kernel refuses (RLIMIT_MEMLOCK, too many buffers), the
 * data path falls back to unregistered I/O: slower, never wrong.
 */
static void fixed_refresh(struct tcp_shard *sh)
{
	struct vfm_tcp *t = sh->t;
	struct iovec iov[TCP_MAX_BUFS];
	unsigned int n = 0, i;
	size_t off;

	if (!sh->ring_ok)
		return;
	if (sh->nbufs)
		io_uring_unregister_buffers(&sh->ring);
	sh->nbufs = 0;
	for (i = 0; i < TCP_MAX_REGS; i++) {
		struct tcp_reg *r = &t->regs[i];

		sh->first[i] = -1;
		if (!r->used || !sh->fixed_ok || !r->len)
			continue;
		if (n + (r->len + TCP_CHUNK - 1) / TCP_CHUNK > TCP_MAX_BUFS)
			continue;
		sh->first[i] = (int)n;
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
	if (io_uring_register_buffers(&sh->ring, iov, n)) {
		for (i = 0; i < TCP_MAX_REGS; i++)
			sh->first[i] = -1;
		return;
	}
	sh->nbufs = n;
}

static void fixed_refresh_all(struct vfm_tcp *t)
{
	for (unsigned int k = 0; k < t->nsh; k++) {
		pthread_mutex_lock(&t->sh[k].mu);
		fixed_refresh(&t->sh[k]);
		pthread_mutex_unlock(&t->sh[k].mu);
	}
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
	t->regs[i] = (struct tcp_reg){ .used = true, .addr = addr, .len = len };
	fixed_refresh_all(t);
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
	for (unsigned int k = 0; k < t->nsh; k++)
		pthread_mutex_lock(&t->sh[k].mu);
	if (t->land_reg == r)
		t->land_reg = NULL;
	r->used = false;
	for (unsigned int k = 0; k < t->nsh; k++) {
		fixed_refresh(&t->sh[k]);
		pthread_mutex_unlock(&t->sh[k].mu);
	}
	mr->priv = NULL;
}

/* ------------------------------------------------------------------ */
/* SQE helpers */

static struct io_uring_sqe *get_sqe(struct tcp_shard *sh)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->ring);

	if (!sqe) {
		io_uring_submit(&sh->ring);
		sqe = io_uring_get_sqe(&sh->ring);
	}
	return sqe;
}

/* ------------------------------------------------------------------ */
/* AEAD (--encrypt), on the stream's worker with its own context */

static void aead_nonce(uint8_t iv[12], unsigned int stream, uint64_t n)
{
	for (unsigned int k = 0; k < 4; k++)
		iv[k] = (uint8_t)(stream >> (8 * k));
	for (unsigned int k = 0; k < 8; k++)
		iv[4 + k] = (uint8_t)(n >> (8 * k));
}

/* Seal @len bytes of @in into @out (ciphertext, then the tag), with the
 * segment header as associated data. */
static int aead_seal(EVP_CIPHER_CTX *c, unsigned int stream, uint64_t n,
		     const uint8_t *hdr, const uint8_t *in, uint32_t len,
		     uint8_t *out)
{
	uint8_t iv[12];
	int l;

	aead_nonce(iv, stream, n);
	if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &l, hdr, VFM_TCP_HDR_LEN) != 1 ||
	    (len && EVP_EncryptUpdate(c, out, &l, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(c, out + len, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TCP_TAG_LEN,
				out + len) != 1)
		return -EIO;
	return 0;
}

/* Open @len bytes at @p in place; -EBADMSG when the tag does not verify. */
static int aead_open(EVP_CIPHER_CTX *c, unsigned int stream, uint64_t n,
		     const uint8_t *hdr, uint8_t *p, uint32_t len, uint8_t *tag)
{
	uint8_t iv[12];
	int l;

	aead_nonce(iv, stream, n);
	if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &l, hdr, VFM_TCP_HDR_LEN) != 1 ||
	    (len && EVP_DecryptUpdate(c, p, &l, p, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TCP_TAG_LEN, tag) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(c, p + len, &l) != 1) {
		/* what was decrypted is not the sender's: do not leave it */
		OPENSSL_cleanse(p, len);
		return -EBADMSG;
	}
	return 0;
}

static int aead_start(struct vfm_tcp *t, bool seal)
{
	for (unsigned int k = 0; t->sealed && k < t->nsh; k++) {
		EVP_CIPHER_CTX *c = t->sh[k].aead;

		if (seal ? EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL,
					      t->key, NULL) != 1 :
			   EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL,
					      t->key, NULL) != 1)
			return -EIO;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* source side (on the worker, under sh->mu) */

static void src_watch(struct tcp_shard *sh, unsigned int i)
{
	struct tcp_stream *s = &sh->t->st[i];
	struct io_uring_sqe *sqe = get_sqe(sh);

	if (!sqe) {
		set_err(sh->t, -EBUSY);
		return;
	}
	io_uring_prep_recv(sqe, s->fd, &s->watch_byte, 1, 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_WATCH, i, 0));
	sh->inflight++;
}

static void prep_payload(struct tcp_shard *sh, struct io_uring_sqe *sqe,
			 const struct tcp_stream *s, const struct tcp_seg *g,
			 uint32_t off)
{
	const struct vfm_tcp *t = sh->t;
	const uint8_t *p = g->buf + off;
	uint32_t n = g->wlen - off;

	if (t->smode == TCP_SEND_ZC && sh->have_zc && g->wlen >= t->zc_min) {
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
 * AEAD: seal the queued writes of stream @i not sealed yet, in order, with
 * the lock dropped around each seal (write() may queue more meanwhile; a
 * queued slot is left alone by the caller until its completion).
 */
static void src_seal(struct tcp_shard *sh, unsigned int i)
{
	struct vfm_tcp *t = sh->t;
	struct tcp_stream *s = &t->st[i];

	while (t->sealed && !get_err(t)) {
		uint32_t pending = s->seq - (uint32_t)s->nseal;
		unsigned int slot;
		struct tcp_seg *g;
		int err;

		if (!pending)
			return;
		slot = (s->head + s->count - pending) % t->cfg.depth;
		g = &s->segs[slot];
		if (g->ct_cap < g->len + TCP_TAG_LEN) {
			uint8_t *ct = realloc(g->ct, g->len + TCP_TAG_LEN);

			if (!ct) {
				set_err(t, -ENOMEM);
				return;
			}
			g->ct = ct;
			g->ct_cap = g->len + TCP_TAG_LEN;
		}
		pthread_mutex_unlock(&sh->mu);
		err = aead_seal(sh->aead, i, s->nseal, g->hdr, g->buf, g->len,
				g->ct);
		pthread_mutex_lock(&sh->mu);
		if (err) {
			set_err(t, err);
			return;
		}
		s->nseal++;
		g->buf = g->ct;
		g->wlen = g->len + TCP_TAG_LEN;
		g->buf_index = -1;
		g->sealed = true;
	}
}

/*
 * Send every unfinished queued write of stream @i as one linked chain,
 * unless a chain is still in flight. A chain never spans two submissions
 * (the kernel would not keep them ordered), so it is cut to the SQ space.
 * Short completions of plain writes do not stop a chain, so in that mode
 * a write's payload always ends its chain. Sealed mode: only the writes
 * already sealed.
 */
static void src_kick(struct tcp_shard *sh, unsigned int i)
{
	struct vfm_tcp *t = sh->t;
	struct tcp_stream *s = &t->st[i];
	struct io_uring_sqe *sqe, *last = NULL;
	unsigned int k, space;

	if (s->chain || !s->count || get_err(t))
		return;
	space = io_uring_sq_space_left(&sh->ring);
	if (space < 2) {
		io_uring_submit(&sh->ring);
		space = io_uring_sq_space_left(&sh->ring);
	}
	for (k = 0; k < s->count && space >= 2; k++) {
		unsigned int slot = (s->head + k) % t->cfg.depth;
		struct tcp_seg *g = &s->segs[slot];
		uint32_t off;

		if (t->sealed && !g->sealed)
			break;
		if (g->done == VFM_TCP_HDR_LEN + g->wlen)
			continue;
		if (g->done < VFM_TCP_HDR_LEN) {
			sqe = io_uring_get_sqe(&sh->ring);
			io_uring_prep_send(sqe, s->fd, g->hdr + g->done,
					   VFM_TCP_HDR_LEN - g->done,
					   MSG_WAITALL | MSG_NOSIGNAL |
						   (g->wlen ? MSG_MORE : 0));
			io_uring_sqe_set_data64(sqe, ud_make(UD_HDR, i, slot));
			sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
			s->chain++;
			sh->inflight++;
			space--;
		}
		off = g->done > VFM_TCP_HDR_LEN ? g->done - VFM_TCP_HDR_LEN : 0;
		if (g->wlen > off) {
			sqe = io_uring_get_sqe(&sh->ring);
			prep_payload(sh, sqe, s, g, off);
			io_uring_sqe_set_data64(sqe, ud_make(UD_PAY, i, slot));
			sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
			s->chain++;
			sh->inflight++;
			space--;
			if (t->smode == TCP_SEND_WRITE_FIXED)
				break;
		}
	}
	if (last)
		last->flags &= ~IOSQE_IO_LINK;
}

/* Hand finished writes, in order, to the caller as SEND completions. */
static void src_retire(struct tcp_shard *sh, unsigned int i)
{
	struct vfm_tcp *t = sh->t;
	struct tcp_stream *s = &t->st[i];

	while (s->count) {
		struct tcp_seg *g = &s->segs[s->head];
		struct vfm_cqe c = { .kind = VFM_CQE_SEND,
				     .wr_id = g->wr_id,
				     .len = g->len,
				     .stream = i };

		if (g->done != VFM_TCP_HDR_LEN + g->wlen || g->notifs)
			break;
		if (cq_full(sh)) {
			sh->want_room = true;
			break;
		}
		cq_push(sh, &c);
		s->head = (s->head + 1) % t->cfg.depth;
		s->count--;
	}
}

static void src_complete(struct tcp_shard *sh, const struct io_uring_cqe *cqe,
			 unsigned int i, unsigned int slot)
{
	struct vfm_tcp *t = sh->t;
	struct tcp_stream *s = &t->st[i];
	struct tcp_seg *g = &s->segs[slot];
	int res = cqe->res;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		g->notifs--;
		src_retire(sh, i);
		return;
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		g->notifs++;
	s->chain--;
	if (res > 0) {
		g->done += (uint32_t)res;
		progress(t);
	} else if (res == 0) {
		set_err(t, -EPIPE);
	} else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
		set_err(t, res);
	}
	if (!s->chain) {
		src_retire(sh, i);
		src_kick(sh, i);
	}
}

/* Every write posted on stream @s is on the wire (its completion may
 * still wait for room in the caller's queue). */
static bool src_all_sent(const struct vfm_tcp *t, const struct tcp_stream *s)
{
	for (unsigned int k = 0; k < s->count; k++) {
		const struct tcp_seg *g =
			&s->segs[(s->head + k) % t->cfg.depth];

		if (g->done != VFM_TCP_HDR_LEN + g->wlen || g->notifs)
			return false;
	}
	return true;
}

static void watch_complete(struct tcp_shard *sh, int res, unsigned int i)
{
	struct vfm_tcp *t = sh->t;

	if (res == -EINTR || res == -EAGAIN) {
		if (!get_err(t))
			src_watch(sh, i);
		return;
	}
	if (res == -ECANCELED)
		return;
	/*
	 * The destination closes once it holds every byte. EOF on a stream
	 * with nothing outstanding is that end, not a failure: its writes
	 * completed before (the ring reaps in order), and another stream's
	 * last completion may still be on its way to the caller. A write
	 * posted on it later fails.
	 */
	if (res == 0 && src_all_sent(t, &t->st[i])) {
		t->st[i].peer_closed = true;
		return;
	}
	/* The destination never talks after its ack: EOF, reset or junk. */
	set_err(t, res < 0 ? res : res == 0 ? -ECONNRESET : -EPROTO);
}

/* ------------------------------------------------------------------ */
/* destination side (on the worker, under sh->mu) */

static void dst_post(struct tcp_shard *sh, unsigned int i)
{
	struct vfm_tcp *t = sh->t;
	struct tcp_stream *s = &t->st[i];
	struct io_uring_sqe *sqe;

	if (get_err(t) || s->rx_busy || s->rx_blocked)
		return;
	sqe = get_sqe(sh);
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
			idx = fixed_index(sh, t, t->land_reg, p, n);
		if (idx >= 0)
			io_uring_prep_read_fixed(sqe, s->fd, p, n, 0, idx);
		else
			io_uring_prep_recv(sqe, s->fd, p, n, MSG_WAITALL);
	}
	io_uring_sqe_set_data64(sqe, ud_make(UD_RX, i, 0));
	s->rx_busy = true;
	sh->inflight++;
}

/* A whole write landed: tell the caller, or wait for room to. */
static void dst_deliver(struct tcp_shard *sh, unsigned int i)
{
	struct tcp_stream *s = &sh->t->st[i];
	struct vfm_cqe c = { .kind = VFM_CQE_RECV,
			     .roff = s->cur.roff,
			     .len = s->cur.len,
			     .stream = i,
			     .imm = s->cur.imm };

	if (cq_full(sh)) {
		s->rx_blocked = true;
		sh->want_room = true;
		return;
	}
	cq_push(sh, &c);
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

static void dst_complete(struct tcp_shard *sh, int res, unsigned int i)
{
	struct vfm_tcp *t = sh->t;
	struct tcp_stream *s = &t->st[i];
	int err;

	s->rx_busy = false;
	if (res == -EINTR || res == -EAGAIN) {
		dst_post(sh, i);
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
		    atomic_fetch_add(&t->eof_streams, 1) + 1 == t->cfg.streams)
			set_err(t, -ECONNRESET);
		return;
	}
	progress(t);
	if (!s->in_payload && !s->rgot)
		sh->pushed = true; /* now busy: poll's stall clock runs */
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
	    s->pgot == s->cur.len + (t->sealed ? TCP_TAG_LEN : 0)) {
		if (t->sealed) {
			/* only this worker touches the stream's receive
			 * state: open without holding up poll() */
			pthread_mutex_unlock(&sh->mu);
			err = aead_open(sh->aead, i, s->nseal, s->rhdr,
					t->land + s->cur.roff, s->cur.len,
					s->rtag);
			pthread_mutex_lock(&sh->mu);
			if (err) {
				set_err(t, err);
				return;
			}
			s->nseal++;
		}
		dst_deliver(sh, i);
	}
repost:
	dst_post(sh, i);
}

/* ------------------------------------------------------------------ */
/* the worker */

static void wake_post(struct tcp_shard *sh)
{
	struct io_uring_sqe *sqe;

	if (sh->stop)
		return;
	sqe = get_sqe(sh);
	if (!sqe) {
		set_err(sh->t, -EBUSY);
		return;
	}
	io_uring_prep_read(sqe, sh->efd, &sh->efd_val, sizeof(sh->efd_val), 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_WAKE, 0, 0));
	sh->inflight++;
}

static void handle_cqe(struct tcp_shard *sh, const struct io_uring_cqe *cqe)
{
	struct vfm_tcp *t = sh->t;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum tcp_ud_kind kind = (enum tcp_ud_kind)(ud >> 56);
	unsigned int i = (unsigned int)(ud >> 32) & 0xffffff;
	unsigned int slot = (unsigned int)ud;

	if (kind == UD_CANCEL || i >= t->cfg.streams)
		return;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		sh->inflight--;
	if (kind == UD_WAKE) {
		sh->woken = false;
		wake_post(sh);
		return;
	}
	atomic_store_explicit(&t->st[i].tid, sh->tid, memory_order_relaxed);
	switch (kind) {
	case UD_HDR:
	case UD_PAY:
		src_complete(sh, cqe, i, slot);
		break;
	case UD_WATCH:
		watch_complete(sh, cqe->res, i);
		break;
	case UD_RX:
		dst_complete(sh, cqe->res, i);
		break;
	default:
		break;
	}
}

static unsigned int reap(struct tcp_shard *sh)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0;

	/* one at a time: handling may drop the lock, never the ring */
	while (io_uring_peek_cqe(&sh->ring, &cqe) == 0) {
		struct io_uring_cqe c = *cqe;

		io_uring_cqe_seen(&sh->ring, cqe);
		handle_cqe(sh, &c);
		n++;
	}
	return n;
}

/* Work that waited for the caller: queue room, new writes to seal/send. */
static void shard_run(struct tcp_shard *sh)
{
	struct vfm_tcp *t = sh->t;

	sh->want_room = false;
	for (unsigned int i = sh->idx; i < t->cfg.streams; i += t->nsh) {
		struct tcp_stream *s = &t->st[i];

		if (t->is_dst && s->rx_blocked) {
			dst_deliver(sh, i);
			dst_post(sh, i);
		}
		if (t->is_src) {
			src_retire(sh, i);
			src_seal(sh, i);
			src_kick(sh, i);
		}
	}
}

/* Cancel everything in flight and wait (bounded) until the kernel is done
 * with our buffers: the caller frees them right after destroy. */
static void quiesce(struct tcp_shard *sh)
{
	struct vfm_tcp *t = sh->t;
	struct io_uring_sqe *sqe;
	unsigned int tries;

	set_err(t, -ESHUTDOWN);
	for (unsigned int i = sh->idx; i < t->cfg.streams; i += t->nsh)
		if (t->st[i].fd >= 0)
			shutdown(t->st[i].fd, SHUT_RDWR);
	if (!sh->inflight)
		return;
	sqe = get_sqe(sh);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, ud_make(UD_CANCEL, 0, 0));
	}
	for (tries = 0; sh->inflight && tries < 500; tries++) {
		struct __kernel_timespec ts = { .tv_nsec = 10000000 };
		struct io_uring_cqe *cqe;

		io_uring_submit_and_wait_timeout(&sh->ring, &cqe, 1, &ts, NULL);
		reap(sh);
	}
}

static void *worker(void *arg)
{
	struct tcp_shard *sh = arg;
	struct vfm_tcp *t = sh->t;

	pthread_mutex_lock(&sh->mu);
	sh->tid = (int)syscall(SYS_gettid);
	wake_post(sh);
	for (unsigned int i = sh->idx; i < t->cfg.streams; i += t->nsh) {
		atomic_store(&t->st[i].tid, sh->tid);
		if (t->is_src)
			src_watch(sh, i);
		else
			dst_post(sh, i);
	}
	while (!sh->stop) {
		struct __kernel_timespec ts = { .tv_nsec = TCP_WORKER_NAP_MS *
							   1000000L };
		struct io_uring_cqe *cqe;
		int err = get_err(t), r;
		bool tell;

		shard_run(sh);
		tell = sh->pushed || get_err(t) != err;
		sh->pushed = false;
		pthread_mutex_unlock(&sh->mu);
		if (tell)
			notify(t);
		err = get_err(t);
		r = io_uring_submit_and_wait_timeout(&sh->ring, &cqe, 1, &ts,
						     NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN &&
		    r != -EBUSY)
			set_err(t, r);
		pthread_mutex_lock(&sh->mu);
		reap(sh);
		tell = sh->pushed || get_err(t) != err;
		sh->pushed = false;
		if (tell) {
			pthread_mutex_unlock(&sh->mu);
			notify(t);
			pthread_mutex_lock(&sh->mu);
		}
	}
	quiesce(sh);
	pthread_mutex_unlock(&sh->mu);
	notify(t);
	return NULL;
}

static int workers_start(struct vfm_tcp *t)
{
	for (unsigned int k = 0; k < t->nsh; k++) {
		struct tcp_shard *sh = &t->sh[k];
		int err = pthread_create(&sh->thr, NULL, worker, sh);

		if (err) {
			set_err(t, -err);
			return -err;
		}
		sh->thr_ok = true;
	}
	return 0;
}

static void workers_stop(struct vfm_tcp *t)
{
	for (unsigned int k = 0; k < t->nsh; k++) {
		struct tcp_shard *sh = &t->sh[k];

		if (!sh->thr_ok)
			continue;
		pthread_mutex_lock(&sh->mu);
		sh->stop = true;
		sh->woken = false;
		wake(sh);
		pthread_mutex_unlock(&sh->mu);
	}
	for (unsigned int k = 0; k < t->nsh; k++) {
		if (t->sh[k].thr_ok)
			pthread_join(t->sh[k].thr, NULL);
		t->sh[k].thr_ok = false;
	}
}

/* ------------------------------------------------------------------ */
/* the caller's side: poll and write */

/* Queued work that has not moved for cfg.timeout_ms is a stalled peer. */
static bool busy(struct vfm_tcp *t)
{
	bool b = false;

	for (unsigned int k = 0; k < t->nsh && !b; k++) {
		struct tcp_shard *sh = &t->sh[k];

		pthread_mutex_lock(&sh->mu);
		for (unsigned int i = k; i < t->cfg.streams && !b;
		     i += t->nsh) {
			const struct tcp_stream *s = &t->st[i];

			if (t->is_src && s->count)
				b = true;
			if (t->is_dst && (s->rgot || s->in_payload) &&
			    !s->rx_blocked)
				b = true;
		}
		pthread_mutex_unlock(&sh->mu);
	}
	return b;
}

/* Completions from every worker, each stream's in order. */
static int drain(struct vfm_tcp *t, struct vfm_cqe *out, int max)
{
	int n = 0;

	for (unsigned int j = 0; j < t->nsh && n < max; j++) {
		struct tcp_shard *sh = &t->sh[(t->rr + j) % t->nsh];
		int got;

		pthread_mutex_lock(&sh->mu);
		got = cq_drain(sh, out + n, max - n);
		if (got && sh->want_room)
			wake(sh);
		pthread_mutex_unlock(&sh->mu);
		n += got;
	}
	t->rr = (t->rr + 1) % t->nsh;
	return n;
}

static int tcp_poll(struct vfm_xport *x, struct vfm_cqe *out, int max,
		    int timeout_ms)
{
	struct vfm_tcp *t = to_tcp(x);
	int64_t deadline = timeout_ms < 0 ? -1 : vfm_tcp_now_ms() + timeout_ms;

	if (!out || max <= 0)
		return -EINVAL;
	if (!t->connected)
		return get_err(t) ? get_err(t) : -ENOTCONN;
	for (;;) {
		int64_t now, wait, stall = -1;
		uint64_t ev;
		bool b;
		int n, err;

		pthread_mutex_lock(&t->mu);
		ev = t->events;
		pthread_mutex_unlock(&t->mu);
		/* an error seen before the drain: every completion queued
		 * before it was set has been drained, so it is the last word */
		err = get_err(t);
		n = drain(t, out, max);
		if (n)
			return n;
		if (err)
			return err;
		if (get_err(t))
			continue;
		now = vfm_tcp_now_ms();
		b = busy(t);
		if (t->cfg.timeout_ms > 0 && b) {
			stall = atomic_load(&t->last_progress) +
				t->cfg.timeout_ms - now;
			if (stall <= 0) {
				set_err(t, -ETIMEDOUT);
				return get_err(t);
			}
		}
		/* A source with nothing queued: only a peer failure can
		 * happen. */
		if (t->is_src && !b && timeout_ms < 0)
			return 0;
		wait = deadline < 0 ? -1 : deadline - now;
		if (deadline >= 0 && wait <= 0)
			return 0;
		if (stall >= 0 && (wait < 0 || stall < wait))
			wait = stall;
		pthread_mutex_lock(&t->mu);
		if (t->events == ev) {
			struct timespec ts;

			if (wait < 0)
				wait = 1000; /* and look again */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&t->cv, &t->mu, &ts);
		}
		pthread_mutex_unlock(&t->mu);
	}
}

static int tcp_write(struct vfm_xport *x, unsigned int stream,
		     const struct vfm_mr *mr, size_t loff, uint64_t roff,
		     uint32_t len, uint64_t imm, uint64_t wr_id)
{
	struct vfm_tcp *t = to_tcp(x);
	struct tcp_shard *sh;
	struct tcp_stream *s;
	struct tcp_seg *g;
	struct vfm_tcp_hdr h;

	if (!t->connected || !t->is_src)
		return -ENOTCONN;
	if (get_err(t))
		return get_err(t);
	if (stream >= t->cfg.streams || !mr || loff > mr->len ||
	    len > mr->len - loff)
		return -EINVAL;
	if (roff > t->info.landing_len || len > t->info.landing_len - roff)
		return -EINVAL;
	if (t->sealed && len > INT_MAX - TCP_TAG_LEN)
		return -EINVAL;
	s = &t->st[stream];
	sh = shard_of(t, stream);
	pthread_mutex_lock(&sh->mu);
	if (s->peer_closed) {
		pthread_mutex_unlock(&sh->mu);
		return -ECONNRESET;
	}
	if (s->count == t->cfg.depth ||
	    (t->sealed && s->count >= TCP_AEAD_DEPTH)) {
		pthread_mutex_unlock(&sh->mu);
		return -EAGAIN;
	}
	if (!s->count)
		progress(t);
	g = &s->segs[(s->head + s->count) % t->cfg.depth];
	g->wr_id = wr_id;
	g->buf = (const uint8_t *)mr->addr + loff;
	g->len = len;
	g->wlen = len;
	g->buf_index = fixed_index(sh, t, reg_of(t, mr), g->buf, len);
	g->sealed = false;
	g->done = 0;
	g->notifs = 0;
	h = (struct vfm_tcp_hdr){
		.len = len, .roff = roff, .imm = imm, .seq = s->seq
	};
	vfm_tcp_hdr_encode(g->hdr, &h);
	s->seq++;
	s->count++;
	if (!s->chain || t->sealed)
		wake(sh);
	pthread_mutex_unlock(&sh->mu);
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
	progress(t);
	/* what the workers find from now on, poll() reports */
	return workers_start(t);
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
	progress(t);
	/* what the workers find from now on, poll() reports */
	return workers_start(t);
}

int vfm_tcp_stream_tid(struct vfm_xport *x, unsigned int stream)
{
	struct vfm_tcp *t = to_tcp(x);

	if (!x || x->ops != &vfm_xport_tcp_ops || stream >= t->cfg.streams)
		return -EINVAL;
	return atomic_load(&t->st[stream].tid);
}

static void tcp_destroy(struct vfm_xport *x)
{
	struct vfm_tcp *t = to_tcp(x);
	unsigned int i;

	workers_stop(t);
	for (unsigned int k = 0; t->sh && k < t->nsh; k++) {
		struct tcp_shard *sh = &t->sh[k];

		if (sh->ring_ok) {
			/* never started: nothing of ours is in flight */
			quiesce(sh);
			io_uring_queue_exit(&sh->ring);
		}
		if (sh->efd >= 0)
			close(sh->efd);
		EVP_CIPHER_CTX_free(sh->aead);
		free(sh->cq);
		pthread_mutex_destroy(&sh->mu);
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
	if (t->sync_ok) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
	}
	OPENSSL_cleanse(t->key, sizeof(t->key));
	free(t->sh);
	free(t->st);
	free(t);
}

static void pick_modes(struct vfm_tcp *t)
{
	const char *s = getenv("VFM_TCP_SEND");
	const char *r = getenv("VFM_TCP_RECV");
	const char *z = getenv("VFM_TCP_ZC_MIN");

	/*
	 * Defaults: zero-copy send and fixed reads, each from or into the
	 * registered buffers (falling back per write to SEND/RECV where no
	 * registration covers it). A device's state is cold to the caches;
	 * streaming it through user addresses cost ~40% more CPU per GiB
	 * (transport/README.md, "Why these defaults").
	 */
	t->smode = TCP_SEND_ZC;
	if (s && !strcmp(s, "send"))
		t->smode = TCP_SEND_PLAIN;
	else if (s && !strcmp(s, "write_fixed"))
		t->smode = TCP_SEND_WRITE_FIXED;
	t->rmode = TCP_RECV_READ_FIXED;
	if (r && !strcmp(r, "recv"))
		t->rmode = TCP_RECV_PLAIN;
	t->zc_min = 64 * 1024;
	if (z && *z)
		t->zc_min = (uint32_t)strtoul(z, NULL, 0);
}

/* Workers: one per stream, at most VFM_TCP_THREADS when set. */
static unsigned int pick_workers(unsigned int streams)
{
	const char *w = getenv("VFM_TCP_THREADS");
	unsigned long n = w && *w ? strtoul(w, NULL, 0) : 0;

	return n && n < streams ? (unsigned int)n : streams;
}

static int ring_setup(struct tcp_shard *sh)
{
	const struct vfm_tcp *t = sh->t;
	unsigned int want = sh->nstreams * (2 * t->cfg.depth + 2) + 2;
	unsigned int entries = 32;
	struct io_uring_params p;
	struct io_uring_probe *probe;
	int err;

	while (entries < want && entries < 4096)
		entries <<= 1;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG;
	p.cq_entries = entries * 4;
	err = io_uring_queue_init_params(entries, &sh->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		err = io_uring_queue_init_params(entries, &sh->ring, &p);
	}
	if (err == -EPERM || err == -ENOSYS)
		vfm_xport_hint_uring(err);
	if (err)
		return err;
	sh->ring_ok = true;
	probe = io_uring_get_probe_ring(&sh->ring);
	if (!probe)
		return -EOPNOTSUPP;
	if (!io_uring_opcode_supported(probe, IORING_OP_SEND) ||
	    !io_uring_opcode_supported(probe, IORING_OP_RECV) ||
	    !io_uring_opcode_supported(probe, IORING_OP_READ) ||
	    !io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL))
		err = -EOPNOTSUPP;
	sh->have_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	io_uring_free_probe(probe);
	sh->fixed_ok = true;
	return err;
}

static int shard_init(struct vfm_tcp *t, unsigned int k)
{
	struct tcp_shard *sh = &t->sh[k];
	int err;

	sh->t = t;
	sh->idx = k;
	sh->efd = -1;
	for (unsigned int i = 0; i < TCP_MAX_REGS; i++)
		sh->first[i] = -1;
	sh->nstreams = (t->cfg.streams - k + t->nsh - 1) / t->nsh;
	err = pthread_mutex_init(&sh->mu, NULL);
	if (err)
		return -err;
	sh->cq_cap = sh->nstreams * (t->cfg.depth + 1);
	sh->cq = calloc(sh->cq_cap, sizeof(*sh->cq));
	if (!sh->cq)
		return -ENOMEM;
	sh->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sh->efd < 0)
		return -errno;
	if (t->sealed) {
		sh->aead = EVP_CIPHER_CTX_new();
		if (!sh->aead)
			return -ENOMEM;
	}
	return ring_setup(sh);
}

static int tcp_create(struct vfm_xport **out, const struct vfm_xport_cfg *cfg)
{
	struct vfm_tcp *t;
	pthread_condattr_t ca;
	unsigned int i, k = 0;
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
	t->nsh = pick_workers(t->cfg.streams);
	t->st = calloc(t->cfg.streams, sizeof(*t->st));
	t->sh = calloc(t->nsh, sizeof(*t->sh));
	err = (!t->st || !t->sh) ? -ENOMEM : 0;
	for (i = 0; !err && i < t->cfg.streams; i++) {
		t->st[i].fd = -1;
		t->st[i].sh = i % t->nsh;
		t->st[i].segs = calloc(t->cfg.depth, sizeof(struct tcp_seg));
		if (!t->st[i].segs)
			err = -ENOMEM;
	}
	if (!err && cfg->aead_key) {
		memcpy(t->key, cfg->aead_key, sizeof(t->key));
		t->cfg.aead_key = NULL;
		t->sealed = true;
	}
	if (!err) {
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		err = -pthread_cond_init(&t->cv, &ca);
		pthread_condattr_destroy(&ca);
		if (!err && pthread_mutex_init(&t->mu, NULL)) {
			pthread_cond_destroy(&t->cv);
			err = -ENOMEM;
		}
		t->sync_ok = !err;
	}
	/* shards not initialised have efd -1 and nothing to free */
	for (k = 0; t->sh && k < t->nsh; k++)
		t->sh[k].efd = -1;
	for (k = 0; !err && k < t->nsh; k++)
		err = shard_init(t, k);
	if (err) {
		/* shard_init sets up mu first; the rest have none */
		for (unsigned int j = k; t->sh && j < t->nsh; j++)
			pthread_mutex_init(&t->sh[j].mu, NULL);
		tcp_destroy(&t->base);
		return err;
	}
	pick_modes(t);
	*out = &t->base;
	return 0;
}

/* The workers' CPU time, each on its own thread clock. */
static double tcp_thread_cpu_s(struct vfm_xport *x)
{
	struct vfm_tcp *t = to_tcp(x);
	double sum = 0;

	for (unsigned int k = 0; k < t->nsh; k++) {
		struct timespec ts;
		clockid_t cid;

		if (t->sh[k].thr_ok &&
		    !pthread_getcpuclockid(t->sh[k].thr, &cid) &&
		    !clock_gettime(cid, &ts))
			sum += (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	}
	return sum;
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
	.thread_cpu_s = tcp_thread_cpu_s,
};
