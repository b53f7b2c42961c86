/* SPDX-License-Identifier: MIT */
/* Parsing of device spec options and sizes. */
#ifndef VFM_SPEC_H
#define VFM_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* "64M", "1G", "4096", "1.5G" (K/M/G/T powers of 1024, optional "iB"/"B"). */
int vfm_parse_size(const char *s, uint64_t *out);

/*
 * Split "k1=v1,k2=v2,..." in place into key/value pairs. A comma-separated
 * token without '=' continues the previous value ("compatible=2.0.0-2.0.9,
 * 2.1.0-" is one option). Returns the number of pairs or -EINVAL.
 */
struct vfm_kv {
	char *key;
	char *val;
};
int vfm_parse_kv(char *s, struct vfm_kv *kv, int max);

#endif
