/* SPDX-License-Identifier: MIT */
/*
 * Device versions and version range lists.
 *
 * A version is 1 to 4 dot-separated decimal components ("2", "2.0.3",
 * "1.2.3.4"), each 0..4294967295. Comparison is numeric per component and a
 * missing component counts as 0, so 1.9 == 1.9.0 and 1.10 > 1.9.
 *
 * A range list is comma-separated items, each one of
 *   a-b   closed range, a <= v <= b (a <= b required)
 *   a-    open above, v >= a
 *   -b    open below, v <= b
 *   a     exactly a
 * e.g. "2.0.2-2.0.4,2.1.0-". Blanks around items are ignored. Parse errors
 * give the 1-based column and what was expected there.
 */
#ifndef VFM_VERSION_H
#define VFM_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfm/err.h"

#define VFM_VERSION_PARTS_MAX 4
#define VFM_VERSION_STR_MAX 48 /* longest text form, without the NUL */
#define VFM_RANGES_MAX 16 /* items in one range list */
#define VFM_RANGES_STR_MAX 1024 /* longest range list text, without NUL */

struct vfm_version {
	uint8_t nparts; /* 1..VFM_VERSION_PARTS_MAX */
	uint32_t part[VFM_VERSION_PARTS_MAX]; /* unused parts are 0 */
};

struct vfm_range {
	bool has_lo, has_hi; /* at least one is true */
	struct vfm_version lo, hi;
};

struct vfm_range_list {
	unsigned int n;
	struct vfm_range r[VFM_RANGES_MAX];
};

/* Parse exactly @len bytes of @s (no NUL needed, blanks not allowed). */
int vfm_version_parse(const char *s, size_t len, struct vfm_version *v,
		      struct vfm_err *err);
/* <0, 0, >0 like strcmp. */
int vfm_version_cmp(const struct vfm_version *a, const struct vfm_version *b);
/* Text form into @buf; returns the length or -ENOSPC. */
int vfm_version_format(const struct vfm_version *v, char *buf, size_t cap);

int vfm_ranges_parse(const char *s, size_t len, struct vfm_range_list *rl,
		     struct vfm_err *err);
bool vfm_ranges_contain(const struct vfm_range_list *rl,
			const struct vfm_version *v);
/* Canonical text form ("2.0.2-2.0.4,2.1.0-"); length or -ENOSPC. */
int vfm_ranges_format(const struct vfm_range_list *rl, char *buf, size_t cap);

#endif
