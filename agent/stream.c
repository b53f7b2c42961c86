// SPDX-License-Identifier: MIT
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "stream.h"

static int put_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap);

	if (n >= cap)
		return -ENAMETOOLONG;
	memset(dst, 0, cap);
	memcpy(dst, src, n);
	return 0;
}

int vfm_stream_hdr_encode(const struct vfm_stream_info *si, void *out)
{
	struct vfmig_stream_hdr h;
	int ret;

	memset(&h, 0, sizeof(h));
	h.magic = htole32(VFMIG_STREAM_MAGIC);
	h.format = htole16(si->format ? si->format : VFMIG_STREAM_FORMAT);
	h.hdr_len = htole16(sizeof(h));
	h.mem_size = htole64(si->mem_size);
	h.regs_size = htole32(si->regs_size);
	h.page_size = htole32(VFMIG_PAGE_SIZE);
	ret = put_str(h.model, sizeof(h.model), si->model);
	if (!ret)
		ret = put_str(h.version, sizeof(h.version), si->version);
	if (!ret)
		ret = put_str(h.params, sizeof(h.params), si->params);
	if (ret)
		return ret;
	h.hdr_crc = htole32(
		vfm_crc32c(0, &h, offsetof(struct vfmig_stream_hdr, hdr_crc)));
	memcpy(out, &h, sizeof(h));
	return 0;
}

static int get_str(char *dst, const char *src, size_t cap)
{
	if (strnlen(src, cap) >= cap)
		return -EINVAL;
	memcpy(dst, src, cap);
	return 0;
}

int vfm_stream_hdr_decode(const void *in, struct vfm_stream_info *si, char *why,
			  size_t whylen)
{
	struct vfmig_stream_hdr h;

	memcpy(&h, in, sizeof(h));
	if (le32toh(h.magic) != VFMIG_STREAM_MAGIC) {
		snprintf(why, whylen,
			 "The stream does not start with the vfmig magic.");
		return -EINVAL;
	}
	if (le32toh(h.hdr_crc) !=
	    vfm_crc32c(0, &h, offsetof(struct vfmig_stream_hdr, hdr_crc))) {
		snprintf(why, whylen,
			 "The stream header is corrupt (CRC mismatch).");
		return -EINVAL;
	}
	if (le16toh(h.format) < VFMIG_STREAM_FORMAT ||
	    le16toh(h.format) > VFMIG_STREAM_FORMAT_MAX ||
	    le16toh(h.hdr_len) != sizeof(h)) {
		snprintf(why, whylen,
			 "The stream format %u is not supported (want %u-%u).",
			 le16toh(h.format), VFMIG_STREAM_FORMAT,
			 VFMIG_STREAM_FORMAT_MAX);
		return -EINVAL;
	}
	si->format = le16toh(h.format);
	if (le32toh(h.page_size) != VFMIG_PAGE_SIZE) {
		snprintf(why, whylen, "The stream page size %u is not %u.",
			 le32toh(h.page_size), VFMIG_PAGE_SIZE);
		return -EINVAL;
	}
	si->mem_size = le64toh(h.mem_size);
	si->regs_size = le32toh(h.regs_size);
	if (get_str(si->model, h.model, sizeof(h.model)) ||
	    get_str(si->version, h.version, sizeof(h.version)) ||
	    get_str(si->params, h.params, sizeof(h.params))) {
		snprintf(why, whylen,
			 "A string in the stream header is not terminated.");
		return -EINVAL;
	}
	return 0;
}

void vfm_rec_hdr_encode(const struct vfm_rec *r, void *out)
{
	struct vfmig_rec_hdr h = {
		.type = htole32(r->type),
		.len = htole32(r->len),
		.offset = htole64(r->offset),
		.data_crc = htole32(r->data_crc),
	};

	h.hdr_crc = htole32(
		vfm_crc32c(0, &h, offsetof(struct vfmig_rec_hdr, hdr_crc)));
	memcpy(out, &h, sizeof(h));
}

int vfm_rec_hdr_decode(const void *in, struct vfm_rec *r, char *why,
		       size_t whylen)
{
	struct vfmig_rec_hdr h;

	memcpy(&h, in, sizeof(h));
	if (le32toh(h.hdr_crc) !=
	    vfm_crc32c(0, &h, offsetof(struct vfmig_rec_hdr, hdr_crc))) {
		snprintf(why, whylen,
			 "A record header is corrupt (CRC mismatch).");
		return -EINVAL;
	}
	r->type = le32toh(h.type);
	r->len = le32toh(h.len);
	r->offset = le64toh(h.offset);
	r->data_crc = le32toh(h.data_crc);
	if (r->type < VFMIG_REC_REGS || r->type > VFMIG_REC_ZERO) {
		snprintf(why, whylen, "A record has the unknown type %u.",
			 r->type);
		return -EINVAL;
	}
	if (r->len > VFMIG_REC_MAX_PAYLOAD) {
		snprintf(why, whylen,
			 "A record of %u bytes exceeds the %u-byte limit.",
			 r->len, VFMIG_REC_MAX_PAYLOAD);
		return -EINVAL;
	}
	return 0;
}
