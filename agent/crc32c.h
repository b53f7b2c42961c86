/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli), as the stream format of vfmig.h uses it. */
#ifndef VFM_CRC32C_H
#define VFM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC: vfm_crc32c(0, p, n) is the CRC of p[0..n) (seed ~0 and
 * final xor ~0 are applied inside, so calls chain: crc(crc(0,a),b) = crc(ab)).
 */
uint32_t vfm_crc32c(uint32_t crc, const void *buf, size_t len);

/* Copy @len bytes from @src to @dst and continue @crc over them, in one
 * pass over the data. */
uint32_t vfm_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

/* The portable table version, for tests that compare both paths. */
uint32_t vfm_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
