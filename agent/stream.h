/* SPDX-License-Identifier: MIT */
/* Encoding and checking of the vfmig.h stream header and record headers. */
#ifndef VFM_STREAM_H
#define VFM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uapi/vfmig.h"

#define VFM_STREAM_HDR_LEN 512u
#define VFM_REC_HDR_LEN 24u
#define VFM_REC_END_LEN 16u

_Static_assert(sizeof(struct vfmig_stream_hdr) == VFM_STREAM_HDR_LEN,
	       "stream header is 512 bytes");
_Static_assert(sizeof(struct vfmig_rec_hdr) == VFM_REC_HDR_LEN,
	       "record header is 24 bytes");

/* Host-order views of the wire structures. */
struct vfm_stream_info {
	uint16_t format; /* VFMIG_STREAM_FORMAT*; 0 encodes as 1 */
	uint64_t mem_size;
	uint32_t regs_size;
	char model[VFMIG_MODEL_MAX];
	char version[VFMIG_VERSION_MAX];
	char params[VFMIG_PARAMS_MAX];
};

struct vfm_rec {
	uint32_t type;
	uint32_t len;
	uint64_t offset;
	uint32_t data_crc;
};

/* Fill @out (512 bytes); -ENAMETOOLONG when a string does not fit. */
int vfm_stream_hdr_encode(const struct vfm_stream_info *si, void *out);
/* Check magic, format (1..VFMIG_STREAM_FORMAT_MAX: the caller checks it
 * against the formats it loads), length, page size and CRC; -EINVAL and
 * @why. */
int vfm_stream_hdr_decode(const void *in, struct vfm_stream_info *si, char *why,
			  size_t whylen);

/* Fill 24 bytes at @out, computing hdr_crc. */
void vfm_rec_hdr_encode(const struct vfm_rec *r, void *out);
/* Check hdr_crc and type (1..VFMIG_REC_ZERO; the caller refuses ZERO in
 * a format 1 stream); -EINVAL with @why. */
int vfm_rec_hdr_decode(const void *in, struct vfm_rec *r, char *why,
		       size_t whylen);

#endif
