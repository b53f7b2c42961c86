// SPDX-License-Identifier: MIT
/*
 * The sim device's resuming side: parses the vfmig.h stream in any
 * segmentation into a shadow copy, checks the header on its first bytes and
 * every CRC, and applies the state only when RESUMING->STOP finds the stream
 * complete and intact.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "crc32c.h"
#include "dev_sim.h"
#include "vfm/transport.h"

int vfm_sim_load_start_locked(struct vfm_sim *s)
{
	struct vfm_sim_load *ld = &s->ld;

	vfm_sim_load_end_locked(s);
	/* Faulting pages in while data arrives would slow the transfer. */
	if (s->spare) {
		ld->mem = s->spare;
		s->spare = NULL;
	} else {
		ld->mem = vfm_xport_buf_alloc(s->size);
	}
	ld->got = calloc((s->pages + 63) / 64, 8);
	ld->zmap = calloc((s->pages + 63) / 64, 8);
	if (!ld->mem || !ld->got || !ld->zmap) {
		vfm_sim_load_end_locked(s);
		return -ENOMEM;
	}
	ld->active = true;
	return 0;
}

void vfm_sim_load_end_locked(struct vfm_sim *s)
{
	struct vfm_sim_load *ld = &s->ld;
	char why[sizeof(ld->why)];

	memcpy(why, ld->why, sizeof(why));
	if (ld->mem)
		munmap(ld->mem, s->size);
	free(ld->got);
	free(ld->zmap);
	memset(ld, 0, sizeof(*ld));
	memcpy(ld->why, why, sizeof(why)); /* kept for the report */
}

static int fail(struct vfm_sim *s, const char *why)
{
	snprintf(s->ld.why, sizeof(s->ld.why), "%s", why);
	s->ld.failed = true;
	return -EINVAL;
}

static int check_header(struct vfm_sim *s)
{
	struct vfm_stream_info si;
	struct vfm_version v;
	char why[200], msg[256];

	if (vfm_stream_hdr_decode(s->ld.hbuf, &si, why, sizeof(why)))
		return fail(s, why);
	if (!(s->formats >> si.format & 1)) {
		snprintf(
			msg, sizeof(msg),
			"The stream has format %u, which this device does not load.",
			si.format);
		return fail(s, msg);
	}
	s->ld.format = si.format;
	if (strcmp(si.model, s->desc.model)) {
		snprintf(msg, sizeof(msg),
			 "The stream is for model '%s', this device is '%s'.",
			 si.model, s->desc.model);
		return fail(s, msg);
	}
	if (vfm_version_parse(si.version, strlen(si.version), &v, NULL) ||
	    !vfm_ranges_contain(&s->desc.compatible, &v)) {
		snprintf(
			msg, sizeof(msg),
			"The stream's device version %s is outside this device's compatible versions.",
			si.version);
		return fail(s, msg);
	}
	if (si.mem_size != s->size || si.regs_size != VFM_SIM_REGS_SIZE) {
		snprintf(
			msg, sizeof(msg),
			"The stream holds %llu bytes of memory, this device has %llu.",
			(unsigned long long)si.mem_size,
			(unsigned long long)s->size);
		return fail(s, msg);
	}
	s->ld.hdr_ok = true;
	return 0;
}

static int check_record(struct vfm_sim *s)
{
	struct vfm_rec *r = &s->ld.rec;

	switch (r->type) {
	case VFMIG_REC_DATA:
		if (r->offset % VFMIG_PAGE_SIZE || r->len % VFMIG_PAGE_SIZE ||
		    !r->len || r->offset > s->size ||
		    r->len > s->size - r->offset)
			return fail(
				s, "A data record lies outside device memory.");
		return 0;
	case VFMIG_REC_ZERO:
		if (s->ld.format < VFMIG_STREAM_FORMAT_ZERO)
			return fail(
				s,
				"A zero record in a format 1 stream, which has none.");
		if (r->len || r->data_crc)
			return fail(
				s,
				"A zero record carries a payload or a payload CRC.");
		if (r->offset % VFMIG_PAGE_SIZE || r->offset >= s->size)
			return fail(
				s, "A zero record lies outside device memory.");
		return 0;
	case VFMIG_REC_REGS:
		if (r->offset > VFM_SIM_REGS_SIZE ||
		    r->len > VFM_SIM_REGS_SIZE - r->offset)
			return fail(
				s,
				"A register record lies outside the register block.");
		return 0;
	default:
		if (r->len != VFM_REC_END_LEN)
			return fail(s, "The end record has the wrong length.");
		return 0;
	}
}

static int finish_record(struct vfm_sim *s)
{
	struct vfm_sim_load *ld = &s->ld;
	struct vfm_rec *r = &ld->rec;

	if (ld->crc != r->data_crc)
		return fail(s, "A record's payload is corrupt (CRC mismatch).");
	if (r->type == VFMIG_REC_DATA || r->type == VFMIG_REC_ZERO) {
		uint64_t first = r->offset / VFMIG_PAGE_SIZE;
		uint64_t n = r->len ? r->len / VFMIG_PAGE_SIZE : 1;

		if (r->type == VFMIG_REC_ZERO)
			memset(ld->mem + r->offset, 0, VFMIG_PAGE_SIZE);
		for (uint64_t p = first; p < first + n; p++) {
			if (!vfm_bit_test(ld->got, p)) {
				vfm_bit_set(ld->got, p);
				ld->got_count++;
			}
			/* The next migration out sends it as a ZERO. */
			if (r->type == VFMIG_REC_ZERO ||
			    vfm_sim_is_zero(ld->mem + p * VFMIG_PAGE_SIZE,
					    VFMIG_PAGE_SIZE))
				vfm_bit_set(ld->zmap, p);
			else
				vfm_bit_clear(ld->zmap, p);
		}
		ld->records++;
	} else if (r->type == VFMIG_REC_REGS) {
		if (r->offset == 0 && r->len == VFM_SIM_REGS_SIZE)
			ld->got_regs = true;
		ld->records++;
	} else {
		uint64_t e[2];

		memcpy(e, ld->endbuf, sizeof(e));
		if (le64toh(e[0]) != ld->records ||
		    le64toh(e[1]) != ld->rec_start)
			return fail(
				s,
				"The end record does not match the records received.");
		ld->end_ok = true;
	}
	return 0;
}

/* Consume @len stream bytes. */
static int parse_locked(struct vfm_sim *s, const uint8_t *p, size_t len)
{
	struct vfm_sim_load *ld = &s->ld;
	char why[200];

	while (len) {
		size_t n;

		if (ld->failed)
			return -EINVAL;
		if (ld->end_ok)
			return fail(s, "Bytes follow the end record.");
		if (!ld->hdr_ok) {
			n = VFM_STREAM_HDR_LEN - ld->hlen;
			n = n < len ? n : len;
			memcpy(ld->hbuf + ld->hlen, p, n);
			ld->hlen += (uint32_t)n;
			if (ld->hlen == VFM_STREAM_HDR_LEN) {
				if (check_header(s))
					return -EINVAL;
				ld->hlen = 0;
			} else if (ld->hlen >= 4) {
				uint32_t magic;

				memcpy(&magic, ld->hbuf, 4);
				if (le32toh(magic) != VFMIG_STREAM_MAGIC)
					return fail(
						s,
						"The stream does not start with the vfmig magic.");
			}
		} else if (!ld->in_payload) {
			if (!ld->hlen)
				ld->rec_start = ld->pos;
			n = VFM_REC_HDR_LEN - ld->hlen;
			n = n < len ? n : len;
			memcpy(ld->hbuf + ld->hlen, p, n);
			ld->hlen += (uint32_t)n;
			if (ld->hlen == VFM_REC_HDR_LEN) {
				ld->hlen = 0;
				if (vfm_rec_hdr_decode(ld->hbuf, &ld->rec, why,
						       sizeof(why)))
					return fail(s, why);
				if (check_record(s))
					return -EINVAL;
				ld->in_payload = true;
				ld->paid = 0;
				ld->crc = 0;
			}
		} else {
			struct vfm_rec *r = &ld->rec;
			uint8_t *dst;

			n = r->len - ld->paid;
			n = n < len ? n : len;
			if (r->type == VFMIG_REC_DATA)
				dst = ld->mem + r->offset + ld->paid;
			else if (r->type == VFMIG_REC_REGS)
				dst = ld->regs + r->offset + ld->paid;
			else
				dst = ld->endbuf + ld->paid;
			ld->crc = vfm_crc32c_copy(ld->crc, dst, p, n);
			ld->paid += (uint32_t)n;
		}
		p += n;
		len -= n;
		ld->pos += n;
		if (ld->in_payload && ld->paid == ld->rec.len) {
			ld->in_payload = false;
			if (finish_record(s))
				return -EINVAL;
		}
	}
	return 0;
}

int vfm_sim_load_finish_locked(struct vfm_sim *s)
{
	struct vfm_sim_load *ld = &s->ld;
	uint8_t *old;

	if (!ld->active)
		return -EINVAL;
	if (ld->failed)
		return -EINVAL;
	if (!ld->end_ok || ld->got_count != s->pages || !ld->got_regs) {
		fail(s, "The stream is incomplete: RESUMING->STOP refused.");
		return -EINVAL;
	}
	old = s->mem;
	s->mem = ld->mem;
	ld->mem = NULL;
	if (s->spare)
		munmap(s->spare, s->size);
	s->spare = old; /* freed at close, not in the downtime */
	memcpy(s->regs, ld->regs, sizeof(s->regs));
	{
		uint64_t *z = s->zmap;

		s->zmap = ld->zmap;
		ld->zmap = z; /* freed with the session */
	}
	ld->why[0] = '\0';
	vfm_sim_load_end_locked(s);
	return 0;
}

static int load(struct vfm_sim *s, const uint8_t *p, size_t len)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	if (s->state != VFIO_DEVICE_STATE_RESUMING || !s->ld.active)
		ret = -EINVAL;
	else
		ret = parse_locked(s, p, len);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int vfm_sim_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len)
{
	struct vfm_sim *s = to_sim(d);

	if (off > s->buf_size || len > s->buf_size - off)
		return -EINVAL;
	return load(s, s->buf + off, len);
}

ssize_t vfm_sim_write(struct vfm_dev *d, const void *buf, size_t len)
{
	struct vfm_sim *s = to_sim(d);
	const uint8_t *p = buf;
	size_t done = 0;
	int ret = 0;

	if (!s->no_buf) {
		ret = load(s, buf, len);
		return ret ? ret : (ssize_t)len;
	}
	/* As a driver's write(): the caller's bytes are copied into the
	 * device's own buffer (copy_from_user) and consumed from there. The
	 * buffer is the device's alone without mmap, so no lock is needed
	 * for the copy; load() takes it for the parse. */
	while (done < len) {
		size_t n = len - done < s->buf_size ? len - done : s->buf_size;

		memcpy(s->buf, p + done, n);
		ret = load(s, s->buf, n);
		if (ret)
			return ret;
		done += n;
	}
	return (ssize_t)len;
}

const char *vfm_sim_load_error(struct vfm_dev *d)
{
	if (d->ops != &vfm_dev_sim_ops)
		return "";
	return to_sim(d)->ld.why;
}
