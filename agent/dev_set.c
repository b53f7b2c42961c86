// SPDX-License-Identifier: MIT
/* A device set as one device (see dev_set.h). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "dev_set.h"
#include "quiesce.h"
#include "vfm/compat.h"
#include "vfm/transport.h"

#define SET_RING (64u << 20) /* the set's own ring, bytes */
#define SET_MEMBER_FB (4u << 20) /* a member without a mapped buffer */
#define SET_SEG_MAX (2u << 20) /* payload of one frame */
#define SET_MIN_ROOM (64u << 10) /* wrap the ring below this */
#define SET_QUEUE 8192 /* frames handed out, not yet released */

struct member {
	struct vfm_dev *d;
	void *buf; /* its migration buffer in this session */
	size_t size;
	uint64_t pos; /* its stream bytes moved */
	bool eof; /* its end frame sent / received */
	bool idle; /* PRE_COPY: nothing now */
	double state_ms; /* its state changes in the last plan */
	char digest[VFM_DIGEST_HEX];
};

struct frame {
	size_t off, len, gap; /* gap: ring bytes skipped before it */
};

struct vfm_set {
	struct vfm_dev hdr;
	unsigned int n;
	struct member m[VFM_SET_MAX];
	bool p2p;
	uint32_t state;
	bool mixed; /* a plan failed part-way: members differ */
	uint8_t *ring;
	size_t ring_size;
	/* Saving: frames in the ring, oldest first. */
	struct frame *q;
	unsigned int qhead, qtail; /* monotonic */
	size_t head, used; /* next free offset; bytes from oldest to head */
	uint64_t spos; /* set stream position */
	unsigned int next; /* round robin */
	bool eof;
	/* Loading: the frame being parsed. */
	uint8_t fh[VFM_SET_FRAME_HDR];
	unsigned int fh_have;
	int cur; /* member receiving payload, -1: a header is next */
	uint64_t left;
	/* Test hook: VFMIG_TEST_CORRUPT_DEVICE=N flips one byte of device
	 * N's stream (at its byte 8192) on the way into it. */
	unsigned int corrupt;
};

static const struct vfm_dev_ops set_ops;

static struct vfm_set *to_set(struct vfm_dev *d)
{
	return (struct vfm_set *)d;
}

bool vfm_dev_is_set(const struct vfm_dev *d)
{
	return d && d->ops == &set_ops;
}

unsigned int vfm_dev_set_count(const struct vfm_dev *d)
{
	return vfm_dev_is_set(d) ? ((const struct vfm_set *)d)->n : 1;
}

struct vfm_dev *vfm_dev_set_member(struct vfm_dev *d, unsigned int i)
{
	if (!vfm_dev_is_set(d))
		return i ? NULL : d;
	return i < to_set(d)->n ? to_set(d)->m[i].d : NULL;
}

const char *vfm_dev_set_member_digest(const struct vfm_dev *d, unsigned int i)
{
	const struct vfm_set *s = (const struct vfm_set *)d;

	return vfm_dev_is_set(d) && i < s->n ? s->m[i].digest : "";
}

static bool saving(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       s == VFIO_DEVICE_STATE_STOP_COPY;
}

static int ring_alloc(struct vfm_set *s)
{
	if (!s->ring) {
		s->ring = vfm_xport_buf_alloc(SET_RING);
		if (!s->ring)
			return -ENOMEM;
		s->ring_size = SET_RING;
	}
	return 0;
}

/* A new saving or loading session: every member's buffer, positions 0. */
static int session_start(struct vfm_set *s)
{
	int ret = ring_alloc(s);

	s->qhead = s->qtail = 0;
	s->head = s->used = 0;
	s->spos = 0;
	s->next = 0;
	s->eof = false;
	s->fh_have = 0;
	s->cur = -1;
	s->left = 0;
	for (unsigned int i = 0; !ret && i < s->n; i++) {
		struct member *m = &s->m[i];

		m->pos = 0;
		m->eof = false;
		m->idle = false;
		ret = vfm_dev_buf(m->d, SET_MEMBER_FB, &m->buf, &m->size);
	}
	return ret;
}

static void log_step(struct vfm_set *s, uint32_t state, unsigned int k,
		     unsigned int of, double ms)
{
	struct vfm_json j;

	vfm_json_init(&j);
	vfm_json_str(&j, "state", vfm_dev_state_name(state));
	vfm_json_u64(&j, "step", k + 1);
	vfm_json_u64(&j, "steps", of);
	vfm_json_u64(&j, "devices", s->n);
	vfm_json_bool(&j, "p2p", s->p2p);
	vfm_json_f64(&j, "step_ms", ms);
	vfm_log_emit("set_step", &j);
}

/* A failed plan left members in different states: each goes its own way. */
static int set_each(struct vfm_set *s, uint32_t to)
{
	int first = 0;

	vfm_log_msg(
		"set_mixed", "warning",
		"The device set was left in mixed states by a failed change; each of its %u devices goes to %s on its own.",
		s->n, vfm_dev_state_name(to));
	for (unsigned int i = 0; i < s->n; i++) {
		int ret = vfm_dev_set_state(s->m[i].d, to);

		if (ret && !first)
			first = ret;
	}
	return first;
}

static int set_set_state(struct vfm_dev *d, uint32_t to)
{
	struct vfm_set *s = to_set(d);
	uint32_t from = s->state;
	struct vfm_qs_plan p;
	int ret = 0;

	if (s->mixed) {
		ret = set_each(s, to);
	} else {
		vfm_qs_plan(from, to, s->p2p, &p);
		for (unsigned int i = 0; i < s->n; i++)
			s->m[i].state_ms = 0;
		for (unsigned int k = 0; !ret && k < p.nsteps; k++) {
			double t0 = vfm_now_ms();

			/* Every device completes this step before any
			 * begins the next (quiesce.h). */
			for (unsigned int i = 0; i < s->n; i++) {
				double t = vfm_now_ms();

				ret = vfm_dev_set_state(s->m[i].d, p.step[k]);
				s->m[i].state_ms += vfm_now_ms() - t;
				if (ret) {
					vfm_log_msg(
						"set_step_failed", "error",
						"Device %u of the set (%s) refused %s -> %s: %s.",
						i + 1, s->m[i].d->spec,
						vfm_dev_state_name(from),
						vfm_dev_state_name(p.step[k]),
						strerror(-ret));
					s->mixed = i > 0 || k > 0;
					break;
				}
			}
			if (!ret)
				log_step(s, p.step[k], k, p.nsteps,
					 vfm_now_ms() - t0);
		}
	}
	if (ret)
		return ret;
	s->mixed = false;
	s->state = to;
	if ((saving(to) && !saving(from)) || to == VFIO_DEVICE_STATE_RESUMING)
		return session_start(s);
	return 0;
}

static int set_get_state(struct vfm_dev *d, uint32_t *state)
{
	*state = to_set(d)->state;
	return 0;
}

static int set_precopy_info(struct vfm_dev *d, uint64_t *initial,
			    uint64_t *dirty)
{
	struct vfm_set *s = to_set(d);

	*initial = *dirty = 0;
	for (unsigned int i = 0; i < s->n; i++) {
		uint64_t a, b;
		int ret = vfm_dev_precopy_info(s->m[i].d, &a, &b);

		if (ret)
			return ret;
		/* Plus one frame header per segment of it. */
		*initial += a + (a + SET_SEG_MAX - 1) / SET_SEG_MAX *
					VFM_SET_FRAME_HDR;
		*dirty += b + (b + SET_SEG_MAX - 1) / SET_SEG_MAX *
				      VFM_SET_FRAME_HDR;
	}
	return 0;
}

static int set_data_size(struct vfm_dev *d, uint64_t *bytes)
{
	struct vfm_set *s = to_set(d);

	*bytes = 0;
	for (unsigned int i = 0; i < s->n; i++) {
		uint64_t b;
		int ret = vfm_dev_data_size(s->m[i].d, &b);

		if (ret)
			return ret;
		*bytes += b + (b / SET_SEG_MAX + 2) * VFM_SET_FRAME_HDR;
	}
	return 0;
}

static int set_buf(struct vfm_dev *d, void **addr, size_t *size)
{
	struct vfm_set *s = to_set(d);
	int ret = ring_alloc(s);

	if (ret)
		return ret;
	*addr = s->ring;
	*size = s->ring_size;
	return 0;
}

static void frame_hdr(uint8_t *p, unsigned int index, unsigned int flags,
		      uint32_t len)
{
	uint32_t magic = VFM_SET_MAGIC, crc;
	uint16_t ix = (uint16_t)index, fl = (uint16_t)flags;

	/* Little endian on every host this runs on (x86-64, arm64). */
	memcpy(p, &magic, 4);
	memcpy(p + 4, &ix, 2);
	memcpy(p + 6, &fl, 2);
	memcpy(p + 8, &len, 4);
	crc = vfm_crc32c(0, p, 12);
	memcpy(p + 12, &crc, 4);
}

/* Contiguous ring room for a frame, wrapping to the start when the end is
 * too short; the skipped bytes are charged to the frame (f->gap). */
static size_t ring_room(struct vfm_set *s, struct frame *f)
{
	size_t tail, end;

	f->gap = 0;
	if (!s->used) {
		s->head = 0;
		return s->ring_size;
	}
	if (s->used >= s->ring_size)
		return 0;
	tail = (s->head + s->ring_size - s->used) % s->ring_size;
	if (s->head < tail)
		return tail - s->head;
	end = s->ring_size - s->head;
	if (end >= SET_MIN_ROOM || end >= tail)
		return end;
	f->gap = end;
	return tail;
}

static void ring_take(struct vfm_set *s, struct frame *f,
		      struct vfm_dev_seg *seg)
{
	if (f->gap)
		s->head = 0;
	f->off = s->head;
	s->head = (s->head + f->len) % s->ring_size;
	s->used += f->gap + f->len;
	s->q[s->qhead++ % SET_QUEUE] = *f;
	*seg = (struct vfm_dev_seg){ .off = f->off,
				     .len = f->len,
				     .stream_pos = s->spos };
	s->spos += f->len;
}

static int set_save_next(struct vfm_dev *d, uint64_t max,
			 struct vfm_dev_seg *seg)
{
	struct vfm_set *s = to_set(d);
	unsigned int idle = 0;

	if (s->eof) {
		*seg = (struct vfm_dev_seg){ .stream_pos = s->spos,
					     .eof = true };
		return 0;
	}
	if (s->qhead - s->qtail == SET_QUEUE)
		return -ENOBUFS;
	for (unsigned int tries = 0; tries < s->n; tries++) {
		unsigned int i = s->next;
		struct member *m = &s->m[i];
		struct vfm_dev_seg ms;
		struct frame f;
		size_t room = ring_room(s, &f);
		uint64_t want;
		int ret;

		s->next = (s->next + 1) % s->n;
		if (m->eof) {
			idle++;
			continue;
		}
		if (room < VFM_SET_FRAME_HDR + 1)
			return -ENOBUFS;
		want = room - VFM_SET_FRAME_HDR;
		if (max && max > VFM_SET_FRAME_HDR &&
		    want > max - VFM_SET_FRAME_HDR)
			want = max - VFM_SET_FRAME_HDR;
		if (want > SET_SEG_MAX)
			want = SET_SEG_MAX;
		ret = vfm_dev_save_next(m->d, want, &ms);
		if (ret == -ENOMSG || ret == -ENOBUFS) {
			idle++;
			continue;
		}
		if (ret)
			return ret;
		if (ms.eof) {
			f.len = VFM_SET_FRAME_HDR;
			ring_take(s, &f, seg);
			frame_hdr(s->ring + f.off, i, VFM_SET_FRAME_END, 0);
			m->eof = true;
			return 0;
		}
		if (ms.len > want || ms.off > m->size ||
		    ms.len > m->size - ms.off)
			return -EIO;
		f.len = VFM_SET_FRAME_HDR + ms.len;
		ring_take(s, &f, seg);
		frame_hdr(s->ring + f.off, i, 0, (uint32_t)ms.len);
		memcpy(s->ring + f.off + VFM_SET_FRAME_HDR,
		       (uint8_t *)m->buf + ms.off, ms.len);
		m->pos += ms.len;
		ret = vfm_dev_save_release(m->d, &ms);
		return ret;
	}
	for (unsigned int i = 0; i < s->n; i++)
		if (!s->m[i].eof)
			return -ENOMSG;
	s->eof = true;
	*seg = (struct vfm_dev_seg){ .stream_pos = s->spos, .eof = true };
	return 0;
}

static int set_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg)
{
	struct vfm_set *s = to_set(d);
	struct frame *f;

	if (s->qtail == s->qhead)
		return -EINVAL;
	f = &s->q[s->qtail % SET_QUEUE];
	if (f->off != seg->off || f->len != seg->len)
		return -EINVAL;
	s->used -= f->gap + f->len;
	s->qtail++;
	return 0;
}

/* @n payload bytes for member @i: into its buffer, loaded there. */
static int feed(struct vfm_set *s, unsigned int i, const uint8_t *p, uint64_t n)
{
	struct member *m = &s->m[i];

	while (n) {
		uint64_t off = m->pos % m->size;
		uint64_t c = m->size - off < n ? m->size - off : n;
		int ret;

		memcpy((uint8_t *)m->buf + off, p, c);
		if (s->corrupt == i + 1 && m->pos <= 8192 &&
		    m->pos + c > 8192) {
			((uint8_t *)m->buf)[off + 8192 - m->pos] ^= 0x40;
			s->corrupt = 0;
		}
		ret = vfm_dev_load_commit(m->d, off, c);
		if (ret) {
			vfm_log_msg(
				"set_load_failed", "error",
				"Device %u of the set (%s) refused its data at byte %llu: %s.",
				i + 1, m->d->spec, (unsigned long long)m->pos,
				strerror(-ret));
			return ret;
		}
		m->pos += c;
		p += c;
		n -= c;
	}
	return 0;
}

static int frame_parse(struct vfm_set *s)
{
	uint32_t magic, len, crc;
	uint16_t ix, fl;

	memcpy(&magic, s->fh, 4);
	memcpy(&ix, s->fh + 4, 2);
	memcpy(&fl, s->fh + 6, 2);
	memcpy(&len, s->fh + 8, 4);
	memcpy(&crc, s->fh + 12, 4);
	if (magic != VFM_SET_MAGIC || crc != vfm_crc32c(0, s->fh, 12) ||
	    ix >= s->n || (fl & ~VFM_SET_FRAME_END) || s->m[ix].eof ||
	    (fl && len) || (!fl && !len)) {
		vfm_log_msg(
			"set_frame_bad", "error",
			"The device set's stream has a corrupt frame header at byte %llu (device %u, flags %u, %u bytes).",
			(unsigned long long)s->spos, ix + 1u, fl, len);
		return -EBADMSG;
	}
	if (fl) {
		s->m[ix].eof = true;
		return 0;
	}
	s->cur = ix;
	s->left = len;
	return 0;
}

static int set_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len)
{
	struct vfm_set *s = to_set(d);
	const uint8_t *p;

	if (off > s->ring_size || len > s->ring_size - off)
		return -EINVAL;
	p = s->ring + off;
	while (len) {
		uint64_t c;
		int ret;

		if (s->cur < 0) {
			c = VFM_SET_FRAME_HDR - s->fh_have;
			if (c > len)
				c = len;
			memcpy(s->fh + s->fh_have, p, c);
			s->fh_have += (unsigned int)c;
			ret = 0;
			if (s->fh_have == VFM_SET_FRAME_HDR) {
				s->fh_have = 0;
				ret = frame_parse(s);
			}
		} else {
			c = s->left < len ? s->left : len;
			ret = feed(s, (unsigned int)s->cur, p, c);
			s->left -= c;
			if (!s->left)
				s->cur = -1;
		}
		if (ret)
			return ret;
		s->spos += c;
		p += c;
		len -= c;
	}
	return 0;
}

/* RESUMING -> STOP: first every member's stream must have ended. */
static int set_state_checked(struct vfm_dev *d, uint32_t to)
{
	struct vfm_set *s = to_set(d);

	if (s->state == VFIO_DEVICE_STATE_RESUMING &&
	    to != VFIO_DEVICE_STATE_RESUMING && to != VFIO_DEVICE_STATE_ERROR) {
		for (unsigned int i = 0; i < s->n; i++) {
			if (s->m[i].eof && s->cur < 0 && !s->fh_have)
				continue;
			vfm_log_msg(
				"set_incomplete", "error",
				"The stream of device %u of the set (%s) ended early (%llu bytes, no end frame).",
				i + 1, s->m[i].d->spec,
				(unsigned long long)s->m[i].pos);
			if (to == VFIO_DEVICE_STATE_STOP)
				return -EIO;
			break;
		}
	}
	return set_set_state(d, to);
}

static int set_describe(struct vfm_dev *d, struct vfm_desc *desc, char *why,
			size_t whylen)
{
	return vfm_dev_describe(to_set(d)->m[0].d, desc, why, whylen);
}

/* SHA-256 over "index digest\n" of every member, in order. */
static int set_digest(struct vfm_dev *d, char hex[VFM_DIGEST_HEX])
{
	struct vfm_set *s = to_set(d);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

	for (unsigned int i = 0; ok && i < s->n; i++) {
		char line[VFM_DIGEST_HEX + 16];
		int ret = vfm_dev_digest(s->m[i].d, s->m[i].digest);
		int n;

		if (ret) {
			EVP_MD_CTX_free(ctx);
			return ret;
		}
		n = snprintf(line, sizeof(line), "%u %s\n", i + 1,
			     s->m[i].digest);
		ok = EVP_DigestUpdate(ctx, line, (size_t)n);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen != 32)
		return -EIO;
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int set_reset(struct vfm_dev *d)
{
	struct vfm_set *s = to_set(d);
	int first = 0;

	for (unsigned int i = 0; i < s->n; i++) {
		int ret = vfm_dev_reset(s->m[i].d);

		if (ret && !first)
			first = ret;
	}
	s->mixed = first != 0;
	s->state = VFIO_DEVICE_STATE_RUNNING;
	return first;
}

static int set_prepare_resume(struct vfm_dev *d)
{
	struct vfm_set *s = to_set(d);

	for (unsigned int i = 0; i < s->n; i++) {
		int ret = vfm_dev_prepare_resume(s->m[i].d);

		if (ret)
			return ret;
	}
	return 0;
}

/* The members' formats are set one by one (each pair negotiated its own);
 * the set's frames have no format of their own. */
static int set_stream_format(struct vfm_dev *d, unsigned int format)
{
	(void)d;
	(void)format;
	return 0;
}

static void set_close(struct vfm_dev *d)
{
	struct vfm_set *s = to_set(d);

	for (unsigned int i = 0; i < s->n; i++)
		vfm_dev_close(s->m[i].d);
	vfm_xport_buf_free(s->ring, SET_RING);
	free(s->q);
	free(s);
}

static int set_open(const char *args, struct vfm_dev **out, char *why,
		    size_t whylen)
{
	(void)args;
	(void)out;
	snprintf(why, whylen, "A device set is built from its devices.");
	return -EINVAL;
}

static const struct vfm_dev_ops set_ops = {
	.name = "set",
	.open = set_open,
	.close = set_close,
	.get_state = set_get_state,
	.set_state = set_state_checked,
	.precopy_info = set_precopy_info,
	.data_size = set_data_size,
	.buf = set_buf,
	.save_next = set_save_next,
	.save_release = set_save_release,
	.load_commit = set_load_commit,
	.describe = set_describe,
	.digest = set_digest,
	.reset = set_reset,
	.prepare_resume = set_prepare_resume,
	.set_stream_format = set_stream_format,
};

int vfm_dev_set_new(struct vfm_dev **members, unsigned int n, bool p2p,
		    struct vfm_dev **out)
{
	struct vfm_set *s;
	uint32_t st = VFIO_DEVICE_STATE_RUNNING;

	if (n < 2 || n > VFM_SET_MAX)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->q = calloc(SET_QUEUE, sizeof(*s->q));
	if (!s->q) {
		free(s);
		return -ENOMEM;
	}
	s->hdr.ops = &set_ops;
	s->n = n;
	s->p2p = p2p;
	s->cur = -1;
	if (getenv("VFMIG_TEST_CORRUPT_DEVICE"))
		s->corrupt =
			(unsigned int)atoi(getenv("VFMIG_TEST_CORRUPT_DEVICE"));
	for (unsigned int i = 0; i < n; i++)
		s->m[i].d = members[i];
	vfm_dev_get_state(members[0], &st);
	s->state = st;
	snprintf(s->hdr.spec, sizeof(s->hdr.spec), "set of %u devices", n);
	*out = &s->hdr;
	return 0;
}

void vfm_dev_set_json(struct vfm_dev *d, struct vfm_json *j)
{
	struct vfm_set *s = to_set(d);
	char out[4096];
	size_t n = 0;

	if (!vfm_dev_is_set(d))
		return;
	out[n++] = '[';
	for (unsigned int i = 0; i < s->n; i++) {
		struct member *m = &s->m[i];
		uint32_t st = VFIO_DEVICE_STATE_ERROR;
		char q[512];
		size_t qn = 0;
		int w;

		vfm_dev_get_state(m->d, &st);
		vfm_json_quote(q, sizeof(q), &qn, m->d->spec);
		w = snprintf(
			out + n, sizeof(out) - n,
			"%s{\"index\":%u,\"spec\":%s,\"bytes\":%llu,\"state_change_ms\":%.3f,\"state\":\"%s\",\"state_digest\":\"%s\"}",
			i ? "," : "", i + 1, qn ? q : "\"\"",
			(unsigned long long)m->pos, m->state_ms,
			vfm_dev_state_name(st), m->digest);
		if (w < 0 || (size_t)w >= sizeof(out) - n - 2)
			break;
		n += (size_t)w;
	}
	out[n++] = ']';
	out[n] = '\0';
	vfm_json_raw(j, "devices", out);
}
