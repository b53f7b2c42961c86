// SPDX-License-Identifier: MIT
/* The sim device's saving side: the vfmig.h stream out of its memory, with
 * exact per-page dirty tracking, through read() or the buffer segments. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "dev_sim.h"

#define VFM_SIM_PEND_CAP (VFM_REC_HDR_LEN + VFMIG_REC_MAX_PAYLOAD)

static bool saving(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       s == VFIO_DEVICE_STATE_STOP_COPY;
}

int vfm_sim_save_start_locked(struct vfm_sim *s)
{
	struct vfm_sim_save *sv = &s->sv;
	size_t words = (s->pages + 63) / 64;

	vfm_sim_save_end_locked(s);
	sv->unsent = calloc(words, 8);
	sv->dirty = calloc(words, 8);
	sv->pend = malloc(VFM_SIM_PEND_CAP);
	if (!sv->unsent || !sv->dirty || !sv->pend) {
		vfm_sim_save_end_locked(s);
		return -ENOMEM;
	}
	for (uint64_t p = 0; p < s->pages; p++)
		vfm_bit_set(sv->unsent, p);
	sv->unsent_count = s->pages;
	for (uint64_t w = 0; w < words; w++)
		sv->unsent_zero += (uint64_t)__builtin_popcountll(s->zmap[w]);
	sv->format = s->format;
	sv->active = true;
	return 0;
}

void vfm_sim_save_end_locked(struct vfm_sim *s)
{
	struct vfm_sim_save *sv = &s->sv;

	free(sv->unsent);
	free(sv->dirty);
	free(sv->pend);
	memset(sv, 0, sizeof(*sv));
}

/* First set bit at or after @from (no wrap); s->pages if none. */
static uint64_t find_set(const uint64_t *m, uint64_t pages, uint64_t from)
{
	uint64_t words = (pages + 63) / 64;
	uint64_t w = from / 64;
	uint64_t cur;

	if (from >= pages)
		return pages;
	cur = m[w] & (~0ull << (from % 64));
	for (;;) {
		if (cur) {
			uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(cur);

			return i < pages ? i : pages;
		}
		if (++w >= words)
			return pages;
		cur = m[w];
	}
}

/* Emit pages [first, first + n) as one DATA record at @out. */
static size_t emit_pages(struct vfm_sim *s, uint64_t first, uint64_t n,
			 uint8_t *out)
{
	struct vfm_rec r = {
		.type = VFMIG_REC_DATA,
		.len = (uint32_t)(n * VFMIG_PAGE_SIZE),
		.offset = first * VFMIG_PAGE_SIZE,
	};

	r.data_crc = vfm_crc32c_copy(0, out + VFM_REC_HDR_LEN,
				     s->mem + r.offset, r.len);
	vfm_rec_hdr_encode(&r, out);
	s->sv.records++;
	return VFM_REC_HDR_LEN + r.len;
}

/* Bits of @m set in [first, first + n). */
static uint64_t count_set(const uint64_t *m, uint64_t first, uint64_t n)
{
	uint64_t c = 0;

	for (uint64_t i = first; i < first + n; i++)
		c += vfm_bit_test(m, i);
	return c;
}

/* Emit the zero page @page as one ZERO record (format 2) at @out. */
static size_t emit_zero(struct vfm_sim *s, uint64_t page, uint8_t *out)
{
	struct vfm_rec r = {
		.type = VFMIG_REC_ZERO,
		.offset = page * VFMIG_PAGE_SIZE,
	};

	vfm_rec_hdr_encode(&r, out);
	s->sv.records++;
	return VFM_REC_HDR_LEN;
}

/* A run of set bits of @m from @start, at most @max long, that stops
 * before a bit set in @stop (NULL: none); clears them. */
static uint64_t take_run(uint64_t *m, uint64_t pages, uint64_t start,
			 uint64_t max, const uint64_t *stop)
{
	uint64_t n = 0;

	while (start + n < pages && n < max && vfm_bit_test(m, start + n) &&
	       !(stop && n && vfm_bit_test(stop, start + n))) {
		vfm_bit_clear(m, start + n);
		n++;
	}
	return n;
}

/*
 * The next record into @out (room @cap). 0 and *len; -ENOSPC: @cap is too
 * small for it; -ENOMSG: nothing to send now (PRE_COPY); 1: stream done.
 */
static int next_record_locked(struct vfm_sim *s, uint8_t *out, size_t cap,
			      size_t *len)
{
	struct vfm_sim_save *sv = &s->sv;
	bool stop = s->state == VFIO_DEVICE_STATE_STOP_COPY;
	uint64_t maxp;

	if (!sv->hdr_sent) {
		struct vfm_stream_info si = { .mem_size = s->size,
					      .regs_size = VFM_SIM_REGS_SIZE };

		if (cap < VFM_STREAM_HDR_LEN)
			return -ENOSPC;
		si.format = sv->format;
		snprintf(si.model, sizeof(si.model), "%s", s->desc.model);
		vfm_version_format(&s->desc.version, si.version,
				   sizeof(si.version));
		memcpy(si.params, s->params_text, sizeof(si.params));
		if (vfm_stream_hdr_encode(&si, out))
			return -ENAMETOOLONG;
		sv->hdr_sent = true;
		*len = VFM_STREAM_HDR_LEN;
		return 0;
	}
	if (sv->unsent_count || sv->dirty_count) {
		bool zf = sv->format >= VFMIG_STREAM_FORMAT_ZERO;
		uint64_t *m;
		uint64_t first, n;

		if (cap < VFM_REC_HDR_LEN + VFMIG_PAGE_SIZE)
			return -ENOSPC;
		maxp = (cap - VFM_REC_HDR_LEN) / VFMIG_PAGE_SIZE;
		if (maxp > VFMIG_REC_MAX_PAYLOAD / VFMIG_PAGE_SIZE)
			maxp = VFMIG_REC_MAX_PAYLOAD / VFMIG_PAGE_SIZE;
		if (sv->unsent_count) {
			m = sv->unsent;
			first = find_set(m, s->pages, sv->init_cursor);
			sv->init_cursor = first;
		} else {
			m = sv->dirty;
			first = find_set(m, s->pages, sv->dirty_cursor);
			if (first == s->pages)
				first = find_set(m, s->pages, 0);
		}
		if (zf && vfm_bit_test(s->zmap, first)) {
			n = take_run(m, s->pages, first, 1, NULL);
			*(m == sv->unsent ? &sv->unsent_zero :
					    &sv->dirty_zero) -= 1;
		} else {
			n = take_run(m, s->pages, first, maxp,
				     zf ? s->zmap : NULL);
		}
		if (m == sv->unsent)
			sv->unsent_count -= n;
		else
			sv->dirty_count -= n, sv->dirty_cursor = first + n;
		if (!zf) /* format 1: zero pages go as DATA */
			*(m == sv->unsent ? &sv->unsent_zero :
					    &sv->dirty_zero) -=
				count_set(s->zmap, first, n);
		if (zf && vfm_bit_test(s->zmap, first))
			*len = emit_zero(s, first, out);
		else
			*len = emit_pages(s, first, n, out);
		return 0;
	}
	if (!stop)
		return -ENOMSG;
	if (!sv->regs_sent) {
		struct vfm_rec r = { .type = VFMIG_REC_REGS,
				     .len = VFM_SIM_REGS_SIZE };

		if (cap < VFM_REC_HDR_LEN + VFM_SIM_REGS_SIZE)
			return -ENOSPC;
		memcpy(out + VFM_REC_HDR_LEN, s->regs, VFM_SIM_REGS_SIZE);
		r.data_crc = vfm_crc32c(0, out + VFM_REC_HDR_LEN, r.len);
		vfm_rec_hdr_encode(&r, out);
		sv->records++;
		sv->regs_sent = true;
		*len = VFM_REC_HDR_LEN + VFM_SIM_REGS_SIZE;
		return 0;
	}
	if (!sv->end_sent) {
		struct vfm_rec r = { .type = VFMIG_REC_END,
				     .len = VFM_REC_END_LEN };
		uint64_t e[2] = { htole64(sv->records), htole64(sv->pos) };

		if (cap < VFM_REC_HDR_LEN + VFM_REC_END_LEN)
			return -ENOSPC;
		memcpy(out + VFM_REC_HDR_LEN, e, sizeof(e));
		r.data_crc = vfm_crc32c(0, e, sizeof(e));
		vfm_rec_hdr_encode(&r, out);
		sv->end_sent = true;
		*len = VFM_REC_HDR_LEN + VFM_REC_END_LEN;
		return 0;
	}
	return 1;
}

int vfm_sim_save_gen_locked(struct vfm_sim *s, uint8_t *out, size_t room,
			    size_t *got)
{
	struct vfm_sim_save *sv = &s->sv;
	size_t done = 0;
	int ret = 0;

	if (!sv->active || !saving(s->state))
		return -EINVAL;
	while (done < room) {
		size_t len = 0;

		if (sv->pend_off < sv->pend_len) {
			size_t n = sv->pend_len - sv->pend_off;

			if (n > room - done)
				n = room - done;
			memcpy(out + done, sv->pend + sv->pend_off, n);
			sv->pend_off += (uint32_t)n;
			done += n;
			continue;
		}
		ret = next_record_locked(s, out + done, room - done, &len);
		if (ret == -ENOSPC) {
			if (done)
				break;
			ret = next_record_locked(s, sv->pend, VFM_SIM_PEND_CAP,
						 &len);
			if (ret)
				break;
			sv->pend_len = (uint32_t)len;
			sv->pend_off = 0;
			sv->pos += len;
			continue;
		}
		if (ret)
			break;
		sv->pos += len;
		done += len;
	}
	*got = done;
	if (done)
		return 0;
	if (ret == 1) {
		sv->eof = true;
		return 0;
	}
	return ret;
}

/* Stream bytes of @pages pending pages, @zero of them zero pages: DATA
 * payload (the run's record headers depend on how the reader segments
 * the stream) or, in format 2, a ZERO record for each zero page. */
static uint64_t pending_bytes(uint16_t format, uint64_t pages, uint64_t zero)
{
	if (format < VFMIG_STREAM_FORMAT_ZERO)
		return pages * VFMIG_PAGE_SIZE;
	return (pages - zero) * VFMIG_PAGE_SIZE + zero * VFM_REC_HDR_LEN;
}

int vfm_sim_precopy_info(struct vfm_dev *d, uint64_t *initial, uint64_t *dirty)
{
	struct vfm_sim *s = to_sim(d);
	struct vfm_sim_save *sv = &s->sv;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->state != VFIO_DEVICE_STATE_PRE_COPY &&
	    s->state != VFIO_DEVICE_STATE_PRE_COPY_P2P) {
		ret = -EINVAL;
	} else {
		*initial = (sv->hdr_sent ? 0 : VFM_STREAM_HDR_LEN) +
			   pending_bytes(sv->format, sv->unsent_count,
					 sv->unsent_zero) +
			   (sv->pend_len - sv->pend_off);
		*dirty = pending_bytes(sv->format, sv->dirty_count,
				       sv->dirty_zero);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int vfm_sim_data_size(struct vfm_dev *d, uint64_t *bytes)
{
	struct vfm_sim *s = to_sim(d);
	struct vfm_sim_save *sv = &s->sv;
	uint64_t pages, tail = 2 * VFM_REC_HDR_LEN + VFM_SIM_REGS_SIZE +
			       VFM_REC_END_LEN;

	pthread_mutex_lock(&s->lock);
	if (sv->active) {
		pages = sv->unsent_count + sv->dirty_count;
		*bytes = (sv->hdr_sent ? 0 : VFM_STREAM_HDR_LEN) +
			 pending_bytes(sv->format, sv->unsent_count,
				       sv->unsent_zero) +
			 pending_bytes(sv->format, sv->dirty_count,
				       sv->dirty_zero) +
			 (sv->pend_len - sv->pend_off) +
			 (pages + 255) / 256 * VFM_REC_HDR_LEN + tail;
	} else {
		uint64_t zero = 0;

		for (uint64_t w = 0; w < (s->pages + 63) / 64; w++)
			zero += (uint64_t)__builtin_popcountll(s->zmap[w]);
		*bytes = VFM_STREAM_HDR_LEN +
			 pending_bytes(s->format, s->pages, zero) +
			 (s->pages + 255) / 256 * VFM_REC_HDR_LEN + tail;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int vfm_sim_save_next(struct vfm_dev *d, uint64_t max, struct vfm_dev_seg *seg)
{
	struct vfm_sim *s = to_sim(d);
	struct vfm_sim_save *sv = &s->sv;
	uint64_t off, contig, room, n;
	size_t got = 0;
	int ret;

	pthread_mutex_lock(&s->lock);
	if (!sv->active || !saving(s->state)) {
		ret = -EINVAL;
		goto out;
	}
	if (sv->eof) {
		*seg = (struct vfm_dev_seg){ .stream_pos = sv->pos,
					     .eof = true };
		ret = 0;
		goto out;
	}
	off = sv->head % s->buf_size;
	contig = s->buf_size - off;
	room = s->buf_size - (sv->head - sv->tail);
	n = contig < room ? contig : room;
	if (max && max < n)
		n = max;
	if (!n || sv->seg_n == VFM_SIM_SEGS_MAX) {
		ret = -ENOBUFS;
		goto out;
	}
	ret = vfm_sim_save_gen_locked(s, s->buf + off, n, &got);
	if (ret)
		goto out;
	if (!got) {
		*seg = (struct vfm_dev_seg){ .stream_pos = sv->pos,
					     .eof = true };
		goto out;
	}
	*seg = (struct vfm_dev_seg){
		.off = off,
		.len = got,
		.stream_pos = sv->pos - got - (sv->pend_len - sv->pend_off)
	};
	{
		unsigned int i = (sv->seg_first + sv->seg_n) % VFM_SIM_SEGS_MAX;

		sv->seg_off[i] = off;
		sv->seg_len[i] = got;
		sv->seg_n++;
	}
	sv->head += got;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int vfm_sim_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg)
{
	struct vfm_sim *s = to_sim(d);
	struct vfm_sim_save *sv = &s->sv;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (!sv->seg_n || sv->seg_off[sv->seg_first] != seg->off ||
	    sv->seg_len[sv->seg_first] != seg->len) {
		ret = -EINVAL;
	} else {
		sv->tail += seg->len;
		sv->seg_first = (sv->seg_first + 1) % VFM_SIM_SEGS_MAX;
		sv->seg_n--;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ssize_t vfm_sim_read(struct vfm_dev *d, void *buf, size_t len)
{
	struct vfm_sim *s = to_sim(d);
	size_t got = 0;
	int ret;

	pthread_mutex_lock(&s->lock);
	if (s->no_buf) {
		/* As a driver's read(): the device fills its own buffer, which
		 * is then copied out to the caller (copy_to_user). */
		size_t room = len < s->buf_size ? len : s->buf_size;

		ret = vfm_sim_save_gen_locked(s, s->buf, room, &got);
		if (!ret)
			memcpy(buf, s->buf, got);
	} else {
		ret = vfm_sim_save_gen_locked(s, buf, len, &got);
	}
	pthread_mutex_unlock(&s->lock);
	return ret ? ret : (ssize_t)got;
}
