/* SPDX-License-Identifier: MIT */
/* Helpers shared by the proto/ sources; not installed, not for callers. */
#ifndef VFM_PROTO_INTERNAL_H
#define VFM_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vfm/err.h"

#define VFM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Record a sentence in @err (may be NULL); returns @ret for tail calls. */
int vfm_err_set(struct vfm_err *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix the sentence already in @err with "<prefix>: ". */
void vfm_err_prefix(struct vfm_err *err, const char *prefix);

/* Bounded copy that reports truncation: 0 or -ENAMETOOLONG. */
int vfm_strlcpy(char *dst, const char *src, size_t cap);

static inline void vfm_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void vfm_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vfm_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t vfm_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t vfm_get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t vfm_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Blank: space, tab, newline, carriage return. */
static inline int vfm_isblank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline int vfm_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

#endif
