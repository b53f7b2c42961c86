// SPDX-License-Identifier: GPL-2.0
/*
 * The migration stream of include/uapi/vfmig.h: a producer that encodes the
 * device state record by record for a saving data fd, and an incremental
 * parser that accepts a resuming stream in any segmentation and stages it
 * away from the live state.
 */
#include <linux/bitmap.h>
#include <linux/crc32c.h>
#include <linux/slab.h>

#include "vfmig_stub.h"

#define VFMIG_REC_BUF	(VFMIG_RHDR_SIZE + max(VFMIG_PAGE_SIZE, VFMIG_REGS_SIZE))

u32 vfmig_crc32c(const void *p, size_t n)
{
	return crc32c(~0u, p, n) ^ ~0u;
}

void vfmig_build_hdr(struct vfmig_device *vdev, struct vfmig_stream_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = cpu_to_le32(VFMIG_STREAM_MAGIC);
	h->format = cpu_to_le16(VFMIG_STREAM_FORMAT);
	h->hdr_len = cpu_to_le16(sizeof(*h));
	h->mem_size = cpu_to_le64(vdev->mem.size);
	h->regs_size = cpu_to_le32(VFMIG_REGS_SIZE);
	h->page_size = cpu_to_le32(VFMIG_PAGE_SIZE);
	strscpy(h->model, vdev->model, sizeof(h->model));
	strscpy(h->version, vdev->version, sizeof(h->version));
	snprintf(h->params, sizeof(h->params), "memory=%llu\n",
		 vdev->mem.size >> 20);
	h->hdr_crc = cpu_to_le32(vfmig_crc32c(h, offsetof(typeof(*h), hdr_crc)));
}

/* ---------------------------------------------------------------- producer */

/* The format vfmig/stream_format selects (0, never written: format 1). */
static u16 vfmig_knob_format(struct vfmig_device *vdev)
{
	u16 f = READ_ONCE(vdev->stream_format);

	return f ? f : VFMIG_STREAM_FORMAT;
}

/*
 * The stream's format, latched on first use (the header or a PRE_COPY
 * size query, whichever comes first) so that the numbers and the records
 * agree. The knob is one-shot: the stream takes it and sets it back to the
 * default, so a client that never writes it (QEMU) gets format 1 even
 * after an agent migrated the device. Caller holds the file's lock.
 */
static u16 vfmig_prod_format(struct vfmig_device *vdev,
			     struct vfmig_producer *prod)
{
	if (!prod->format) {
		prod->format = vfmig_knob_format(vdev);
		WRITE_ONCE(vdev->stream_format, 0);
	}
	return prod->format;
}

int vfmig_prod_init(struct vfmig_producer *prod)
{
	memset(prod, 0, sizeof(*prod));
	prod->rec = kzalloc(max_t(size_t, VFMIG_REC_BUF, VFMIG_HDR_SIZE),
			    GFP_KERNEL_ACCOUNT);
	if (!prod->rec)
		return -ENOMEM;
	prod->zero_crc = vfmig_crc32c(prod->rec, VFMIG_PAGE_SIZE);
	return 0;
}

void vfmig_prod_free(struct vfmig_producer *prod)
{
	kfree(prod->rec);
	prod->rec = NULL;
}

/* Finish the record in prod->rec; @zero: the payload is a page of zeros. */
static void vfmig_prod_rec(struct vfmig_producer *prod, u32 type, u64 offset,
			   u32 len, enum vfmig_rec_kind kind, bool zero)
{
	struct vfmig_rec_hdr *rh = (struct vfmig_rec_hdr *)prod->rec;
	const u8 *payload = prod->rec + sizeof(*rh);

	rh->type = cpu_to_le32(type);
	rh->len = cpu_to_le32(len);
	rh->offset = cpu_to_le64(offset);
	rh->data_crc = cpu_to_le32(zero ? prod->zero_crc :
				   vfmig_crc32c(payload, len));
	rh->hdr_crc = cpu_to_le32(vfmig_crc32c(rh, offsetof(typeof(*rh),
							    hdr_crc)));
	prod->rec_len = sizeof(*rh) + len;
	prod->rec_off = 0;
	prod->kind = kind;
	if (type != VFMIG_REC_END)
		prod->records++;
	prod->gen += prod->rec_len;
}

/* Next record into prod->rec: 0, 1 at the end of the stream, -ENOMSG. */
static int vfmig_prod_next(struct vfmig_device *vdev,
			   struct vfmig_producer *prod)
{
	u8 *payload = prod->rec + VFMIG_RHDR_SIZE;
	bool init = false, present = false;
	long idx = -1;

	if (!prod->hdr_done) {
		struct vfmig_stream_hdr *h = (struct vfmig_stream_hdr *)prod->rec;

		vfmig_build_hdr(vdev, h);
		h->format = cpu_to_le16(vfmig_prod_format(vdev, prod));
		h->hdr_crc = cpu_to_le32(vfmig_crc32c(h, offsetof(typeof(*h),
								  hdr_crc)));
		prod->rec_len = VFMIG_HDR_SIZE;
		prod->rec_off = 0;
		prod->kind = VFMIG_K_HDR;
		prod->hdr_done = true;
		prod->gen += VFMIG_HDR_SIZE;
		return 0;
	}
	/* nothing follows END, not even a page written after it */
	if (prod->end_done)
		return 1;

	mutex_lock(&vdev->mem_lock);
	if (vdev->cursor < vdev->mem.npages) {
		idx = vdev->cursor++;
		init = true;
	} else {
		idx = vfmig_dirty_next_locked(vdev);
	}
	if (idx >= 0)
		present = vfmig_mem_read_page(&vdev->mem, idx, payload);
	mutex_unlock(&vdev->mem_lock);

	/* format 2: an absent page is a ZERO record, a header alone */
	if (idx >= 0 && !present &&
	    prod->format >= VFMIG_STREAM_FORMAT_ZERO) {
		vfmig_prod_rec(prod, VFMIG_REC_ZERO, (u64)idx * VFMIG_PAGE_SIZE,
			       0, init ? VFMIG_K_INIT : VFMIG_K_DIRTY, false);
		return 0;
	}
	if (idx >= 0) {
		vfmig_prod_rec(prod, VFMIG_REC_DATA, (u64)idx * VFMIG_PAGE_SIZE,
			       VFMIG_PAGE_SIZE,
			       init ? VFMIG_K_INIT : VFMIG_K_DIRTY, !present);
		return 0;
	}
	if (!prod->stop_copy)
		return -ENOMSG;
	if (!prod->regs_done) {
		memcpy(payload, &prod->regs, VFMIG_REGS_SIZE);
		vfmig_prod_rec(prod, VFMIG_REC_REGS, 0, VFMIG_REGS_SIZE,
			       VFMIG_K_REGS, false);
		prod->regs_done = true;
		return 0;
	}
	{
		struct vfmig_rec_end end = {
			.records = cpu_to_le64(prod->records),
			.stream_bytes = cpu_to_le64(prod->gen),
		};

		memcpy(payload, &end, sizeof(end));
		vfmig_prod_rec(prod, VFMIG_REC_END, 0, sizeof(end), VFMIG_K_END,
			       false);
		prod->end_done = true;
		return 0;
	}
}

/*
 * Make sure prod->rec holds unread bytes: 0, 1 at the end of the stream,
 * -ENOMSG when a PRE_COPY stream has nothing to send now. Caller holds the
 * file's io_lock and lock.
 */
int vfmig_prod_ready(struct vfmig_device *vdev, struct vfmig_producer *prod)
{
	if (prod->rec_off < prod->rec_len)
		return 0;
	return vfmig_prod_next(vdev, prod);
}

/* @n bytes of prod->rec were handed out. Caller holds io_lock and lock. */
void vfmig_prod_advance(struct vfmig_producer *prod, size_t n)
{
	prod->rec_off += n;
	prod->pos += n;
}

/*
 * Copy up to @len next stream bytes to @kdst (kernel memory). Returns the
 * bytes copied, 0 at the end of the stream, -ENOMSG when a PRE_COPY stream
 * has nothing to send now. Caller holds the file's io_lock and lock.
 */
ssize_t vfmig_prod_copy(struct vfmig_device *vdev, struct vfmig_producer *prod,
			void *kdst, size_t len)
{
	size_t done = 0;
	int ret = 0;

	while (done < len) {
		size_t n;

		ret = vfmig_prod_ready(vdev, prod);
		if (ret)
			break;
		n = min_t(size_t, len - done, prod->rec_len - prod->rec_off);
		memcpy(kdst + done, prod->rec + prod->rec_off, n);
		vfmig_prod_advance(prod, n);
		done += n;
		/* records are not page sized: yield at every record's end */
		if (prod->rec_off == prod->rec_len)
			cond_resched();
	}
	if (done)
		return done;
	return ret == 1 ? 0 : ret;
}

/* Resident pages of @mem at or after @first. Caller holds mem_lock. */
static unsigned long vfmig_resident_from(struct vfmig_mem *mem,
					 unsigned long first)
{
	unsigned long idx, n = 0;
	struct page *page;

	if (!first)
		return mem->resident;
	if (first >= mem->npages)
		return 0;
	xa_for_each_range(&mem->pages, idx, page, first, mem->npages - 1)
		n++;
	return n;
}

/* Dirty pages that are resident. Caller holds mem_lock. */
static unsigned long vfmig_resident_dirty(struct vfmig_device *vdev)
{
	unsigned long idx, n = 0;

	if (!vdev->ndirty)
		return 0;
	for_each_set_bit(idx, vdev->dirty, vdev->mem.npages)
		n += !!xa_load(&vdev->mem.pages, idx);
	return n;
}

/*
 * Exact PRE_COPY numbers: a page record for every page still to go, or in
 * format 2 a record header alone for each of them that is absent (zero).
 * Caller holds the file's lock.
 */
void vfmig_prod_pending(struct vfmig_device *vdev, struct vfmig_producer *prod,
			u64 *initial, u64 *dirty)
{
	bool zero = vfmig_prod_format(vdev, prod) >= VFMIG_STREAM_FORMAT_ZERO;
	u64 rem = prod->rec_len - prod->rec_off;

	mutex_lock(&vdev->mem_lock);
	*initial = (u64)(vdev->mem.npages - vdev->cursor) * VFMIG_PAGE_REC;
	*dirty = (u64)vdev->ndirty * VFMIG_PAGE_REC;
	if (zero) {
		unsigned long left = vdev->mem.npages - vdev->cursor;
		unsigned long res = vfmig_resident_from(&vdev->mem,
							 vdev->cursor);

		*initial = (u64)res * VFMIG_PAGE_REC +
			   (u64)(left - res) * VFMIG_RHDR_SIZE;
		res = vfmig_resident_dirty(vdev);
		*dirty = (u64)res * VFMIG_PAGE_REC +
			 (u64)(vdev->ndirty - res) * VFMIG_RHDR_SIZE;
	}
	mutex_unlock(&vdev->mem_lock);
	if (!prod->hdr_done)
		*initial += VFMIG_HDR_SIZE;
	if (prod->kind == VFMIG_K_HDR || prod->kind == VFMIG_K_INIT)
		*initial += rem;
	else if (prod->kind == VFMIG_K_DIRTY)
		*dirty += rem;
}

u64 vfmig_prod_stop_copy_len(struct vfmig_device *vdev,
			     struct vfmig_producer *prod)
{
	u64 initial, dirty, len;

	vfmig_prod_pending(vdev, prod, &initial, &dirty);
	len = initial + dirty;
	if (!prod->regs_done)
		len += VFMIG_REGS_REC;
	if (!prod->end_done)
		len += VFMIG_END_REC;
	if (prod->kind == VFMIG_K_REGS || prod->kind == VFMIG_K_END)
		len += prod->rec_len - prod->rec_off;
	return len;
}

/* ------------------------------------------------------------------ parser */

int vfmig_parser_init(struct vfmig_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->payload = kvzalloc(VFMIG_REC_MAX_PAYLOAD, GFP_KERNEL_ACCOUNT);
	if (!p->payload)
		return -ENOMEM;
	p->zero_crc = vfmig_crc32c(p->payload, VFMIG_PAGE_SIZE);
	vfmig_mem_init(&p->stage, 0);
	return 0;
}

void vfmig_parser_free(struct vfmig_parser *p)
{
	kvfree(p->payload);
	p->payload = NULL;
	vfmig_mem_free(&p->stage);
	vfmig_mem_init(&p->stage, 0);
	kvfree(p->recv);
	p->recv = NULL;
}

static int vfmig_parse_fail(struct vfmig_device *vdev, struct vfmig_parser *p,
			    const char *why)
{
	vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused at byte %llu: %s\n",
		      p->bytes, why);
	p->st = VFMIG_P_ERR;
	p->err = -EINVAL;
	return p->err;
}

static int vfmig_parse_hdr(struct vfmig_device *vdev, struct vfmig_parser *p)
{
	const struct vfmig_stream_hdr *h = &p->hdr;
	u64 mem_size = le64_to_cpu(h->mem_size);
	int ret;

	if (le32_to_cpu(h->magic) != VFMIG_STREAM_MAGIC)
		return vfmig_parse_fail(vdev, p, "bad magic, not a vfmig stream");
	if (le32_to_cpu(h->hdr_crc) !=
	    vfmig_crc32c(h, offsetof(typeof(*h), hdr_crc)))
		return vfmig_parse_fail(vdev, p, "stream header CRC mismatch");
	if (le16_to_cpu(h->format) < VFMIG_STREAM_FORMAT ||
	    le16_to_cpu(h->format) > VFMIG_STREAM_FORMAT_MAX ||
	    le16_to_cpu(h->hdr_len) != sizeof(*h))
		return vfmig_parse_fail(vdev, p, "unsupported stream format");
	p->format = le16_to_cpu(h->format);
	if (le32_to_cpu(h->page_size) != VFMIG_PAGE_SIZE ||
	    !vfmig_regs_size_ok(le32_to_cpu(h->regs_size)) ||
	    !mem_size || mem_size % VFMIG_PAGE_SIZE)
		return vfmig_parse_fail(vdev, p, "page size, register block or memory size differs from this device's layout");
	if (mem_size > (u64)VFMIG_MEM_MIB_MAX << 20)
		return vfmig_parse_fail(vdev, p, "memory size larger than this device supports");
	ret = vfmig_check_hdr(vdev, h);
	if (ret) {
		p->st = VFMIG_P_ERR;
		p->err = ret;
		return ret;
	}
	vfmig_mem_init(&p->stage, mem_size);
	p->recv = kvcalloc(BITS_TO_LONGS(p->stage.npages), sizeof(long),
			   GFP_KERNEL_ACCOUNT);
	if (!p->recv) {
		p->st = VFMIG_P_ERR;
		p->err = -ENOMEM;
		return p->err;
	}
	p->st = VFMIG_P_RHDR;
	return 0;
}

static int vfmig_parse_rhdr(struct vfmig_device *vdev, struct vfmig_parser *p)
{
	const struct vfmig_rec_hdr *rh = &p->rh;
	u32 type = le32_to_cpu(rh->type), len = le32_to_cpu(rh->len);
	u64 off = le64_to_cpu(rh->offset);

	if (le32_to_cpu(rh->hdr_crc) !=
	    vfmig_crc32c(rh, offsetof(typeof(*rh), hdr_crc)))
		return vfmig_parse_fail(vdev, p, "record header CRC mismatch");
	if (len > VFMIG_REC_MAX_PAYLOAD)
		return vfmig_parse_fail(vdev, p, "record longer than the format allows");
	switch (type) {
	case VFMIG_REC_DATA:
		if (!len || off % VFMIG_PAGE_SIZE || len % VFMIG_PAGE_SIZE ||
		    off > p->stage.size || len > p->stage.size - off)
			return vfmig_parse_fail(vdev, p, "data record outside device memory or not page aligned");
		break;
	case VFMIG_REC_REGS:
		if (off || len != le32_to_cpu(p->hdr.regs_size))
			return vfmig_parse_fail(vdev, p, "register record of the wrong size");
		break;
	case VFMIG_REC_END:
		if (off || len != sizeof(struct vfmig_rec_end))
			return vfmig_parse_fail(vdev, p, "malformed end record");
		break;
	case VFMIG_REC_ZERO:
		if (p->format < VFMIG_STREAM_FORMAT_ZERO)
			return vfmig_parse_fail(vdev, p, "zero record in a format 1 stream");
		if (len || le32_to_cpu(rh->data_crc) || off % VFMIG_PAGE_SIZE ||
		    off >= p->stage.size)
			return vfmig_parse_fail(vdev, p, "malformed zero record or outside device memory");
		break;
	default:
		return vfmig_parse_fail(vdev, p, "unknown record type");
	}
	p->st = VFMIG_P_PAYLOAD;
	return 0;
}

static int vfmig_parse_payload(struct vfmig_device *vdev,
			       struct vfmig_parser *p, u64 rec_start)
{
	const struct vfmig_rec_hdr *rh = &p->rh;
	u32 len = le32_to_cpu(rh->len), i;
	u64 off = le64_to_cpu(rh->offset);
	struct vfmig_rec_end end;
	bool zero;
	int ret;

	zero = len == VFMIG_PAGE_SIZE && !memchr_inv(p->payload, 0, len);
	if (le32_to_cpu(rh->data_crc) !=
	    (zero ? p->zero_crc : vfmig_crc32c(p->payload, len)))
		return vfmig_parse_fail(vdev, p, "record payload CRC mismatch");

	switch (le32_to_cpu(rh->type)) {
	case VFMIG_REC_DATA:
		for (i = 0; i < len / VFMIG_PAGE_SIZE; i++) {
			unsigned long idx = off / VFMIG_PAGE_SIZE + i;

			ret = vfmig_mem_write_page(&p->stage, idx,
						   p->payload + i * VFMIG_PAGE_SIZE);
			if (ret) {
				p->st = VFMIG_P_ERR;
				p->err = ret;
				return ret;
			}
			if (!__test_and_set_bit(idx, p->recv))
				p->nrecv++;
		}
		p->records++;
		break;
	case VFMIG_REC_ZERO:
		ret = vfmig_mem_write_page(&p->stage, off / VFMIG_PAGE_SIZE,
					   page_address(ZERO_PAGE(0)));
		if (ret) {
			p->st = VFMIG_P_ERR;
			p->err = ret;
			return ret;
		}
		if (!__test_and_set_bit(off / VFMIG_PAGE_SIZE, p->recv))
			p->nrecv++;
		p->records++;
		break;
	case VFMIG_REC_REGS:
		vfmig_regs_load(&p->regs, p->payload, len);
		p->regs_recv = true;
		p->records++;
		break;
	case VFMIG_REC_END:
		memcpy(&end, p->payload, sizeof(end));
		if (!p->regs_recv)
			return vfmig_parse_fail(vdev, p, "end record before the register block");
		if (p->nrecv != p->stage.npages)
			return vfmig_parse_fail(vdev, p, "end record before every page of device memory");
		if (le64_to_cpu(end.records) != p->records ||
		    le64_to_cpu(end.stream_bytes) != rec_start)
			return vfmig_parse_fail(vdev, p, "end record counts do not match the stream");
		p->st = VFMIG_P_DONE;
		return 0;
	}
	p->st = VFMIG_P_RHDR;
	return 0;
}

static size_t vfmig_gather(void *dst, u32 *have, u32 want, const u8 *src,
			   size_t len)
{
	size_t n = min_t(size_t, want - *have, len);

	memcpy(dst + *have, src, n);
	*have += n;
	return n;
}

/* Feed resuming stream bytes. Caller holds the file's lock. */
int vfmig_parser_feed(struct vfmig_device *vdev, struct vfmig_parser *p,
		      const u8 *src, size_t len)
{
	while (len) {
		size_t n;
		u32 want;
		int ret = 0;

		switch (p->st) {
		case VFMIG_P_HDR:
			n = vfmig_gather(&p->hdr, &p->have, sizeof(p->hdr),
					 src, len);
			if (p->have == sizeof(p->hdr)) {
				p->have = 0;
				p->bytes += n;
				src += n;
				len -= n;
				ret = vfmig_parse_hdr(vdev, p);
				if (ret)
					return ret;
				continue;
			}
			break;
		case VFMIG_P_RHDR:
			n = vfmig_gather(&p->rh, &p->have, sizeof(p->rh), src,
					 len);
			if (p->have == sizeof(p->rh)) {
				p->have = 0;
				ret = vfmig_parse_rhdr(vdev, p);
				/* no payload (ZERO): the record is whole */
				if (!ret && !le32_to_cpu(p->rh.len))
					ret = vfmig_parse_payload(vdev, p, 0);
			}
			break;
		case VFMIG_P_PAYLOAD:
			want = le32_to_cpu(p->rh.len);
			n = vfmig_gather(p->payload, &p->have, want, src, len);
			if (p->have == want) {
				u64 rec_start = p->bytes + n - want -
						VFMIG_RHDR_SIZE;

				p->have = 0;
				ret = vfmig_parse_payload(vdev, p, rec_start);
			}
			break;
		case VFMIG_P_DONE:
			return vfmig_parse_fail(vdev, p, "bytes after the end record");
		default:
			return p->err;
		}
		if (ret)
			return ret;
		p->bytes += n;
		src += n;
		len -= n;
	}
	return 0;
}

/* RESUMING->STOP: 0 only for a complete, intact stream. */
int vfmig_parser_complete(struct vfmig_device *vdev, struct vfmig_parser *p)
{
	switch (p->st) {
	case VFMIG_P_DONE:
		return 0;
	case VFMIG_P_ERR:
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "cannot leave RESUMING: the stream was refused (%pe)\n",
			      ERR_PTR(p->err));
		return p->err == -ENOMEM ? -ENOMEM : -EINVAL;
	default:
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "cannot leave RESUMING: the stream is incomplete after %llu bytes\n",
			      p->bytes);
		return -EINVAL;
	}
}
