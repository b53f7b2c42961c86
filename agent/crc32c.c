// SPDX-License-Identifier: MIT
/*
 * CRC32C with the SSE4.2 crc32 instruction when the CPU has it, else a
 * slicing-by-1 table built on first use.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define VFM_CRC32C_POLY 0x82f63b78u /* reflected Castagnoli */

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? VFM_CRC32C_POLY : 0);
		crc_table[i] = c;
	}
}

uint32_t vfm_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_table_once, crc_table_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_copy_hw(uint32_t crc, uint8_t *d, const uint8_t *p, size_t len)
{
	uint64_t c = ~crc;

	while (len >= 32) {
		uint64_t v0, v1, v2, v3;

		memcpy(&v0, p, 8);
		memcpy(&v1, p + 8, 8);
		memcpy(&v2, p + 16, 8);
		memcpy(&v3, p + 24, 8);
		c = __builtin_ia32_crc32di(c, v0);
		memcpy(d, &v0, 8);
		c = __builtin_ia32_crc32di(c, v1);
		memcpy(d + 8, &v1, 8);
		c = __builtin_ia32_crc32di(c, v2);
		memcpy(d + 16, &v2, 8);
		c = __builtin_ia32_crc32di(c, v3);
		memcpy(d + 24, &v3, 8);
		p += 32;
		d += 32;
		len -= 32;
	}
	while (len--) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
		*d++ = *p++;
	}
	return ~(uint32_t)c;
}

static bool have_sse42(void)
{
	static int have = -1;

	if (have < 0) {
		__builtin_cpu_init();
		have = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	}
	return have;
}

uint32_t vfm_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (have_sse42())
		return crc32c_hw(crc, buf, len);
	return vfm_crc32c_sw(crc, buf, len);
}

uint32_t vfm_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	if (have_sse42())
		return crc32c_copy_hw(crc, dst, src, len);
	memcpy(dst, src, len);
	return vfm_crc32c_sw(crc, dst, len);
}
#else
uint32_t vfm_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return vfm_crc32c_sw(crc, buf, len);
}

uint32_t vfm_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	return vfm_crc32c_sw(crc, dst, len);
}
#endif
