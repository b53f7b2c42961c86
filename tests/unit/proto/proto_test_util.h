/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the proto/ unit tests and the fuzz target: decode any
 * frame with the right typed decoder, build the fixed sample messages the
 * golden vectors hold, and read/write golden hex files.
 */
#ifndef VFM_PROTO_TEST_UTIL_H
#define VFM_PROTO_TEST_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfm/compat.h"
#include "vfm/desc.h"
#include "vfm/handshake.h"
#include "vfm/wire.h"

/* Parse a frame and run the typed decoder for its type. 0 or -errno. */
static inline int pt_decode_any(const void *buf, size_t len,
				struct vfm_err *err)
{
	static union {
		struct vfm_hello h;
		struct vfm_auth a;
		struct vfm_offer o;
		struct vfm_verdict_msg v;
		struct vfm_abort ab;
	} u;
	struct vfm_msg m;
	int ret = vfm_msg_parse(buf, len, &m, err);

	if (ret)
		return ret;
	switch (m.type) {
	case VFM_MSG_HELLO:
		return vfm_hello_decode(&m, &u.h, err);
	case VFM_MSG_AUTH:
		return vfm_auth_decode(&m, &u.a, err);
	case VFM_MSG_OFFER:
		memset(&u.o, 0, sizeof(u.o)); /* the union held another type */
		ret = vfm_offer_decode(&m, &u.o, err);
		vfm_offer_clear(&u.o);
		return ret;
	case VFM_MSG_VERDICT:
		memset(&u.v, 0, sizeof(u.v));
		ret = vfm_verdict_decode(&m, &u.v, err);
		vfm_verdict_msg_clear(&u.v);
		return ret;
	case VFM_MSG_ABORT:
		return vfm_abort_decode(&m, &u.ab, err);
	}
	return 0; /* agent types: structure checked by vfm_msg_parse */
}

static inline void pt_must(int ret, struct vfm_err *err)
{
	if (ret) {
		fprintf(stderr, "setup failed: %d %s\n", ret,
			err ? err->msg : "");
		abort();
	}
}

/* The kernel stub's device: vfmig-edu 2.0.3. */
static inline void pt_desc_edu(struct vfm_desc *d, const char *version)
{
	struct vfm_err e;

	vfm_desc_init(d);
	pt_must(vfm_desc_set_model(d, "vfmig-edu", &e), &e);
	pt_must(vfm_desc_set_version(d, version, &e), &e);
	pt_must(vfm_desc_set_compatible(d, "2.0.0-2.0.9", &e), &e);
	pt_must(vfm_desc_add_features(d, "pre_copy p2p mmap", &e), &e);
	pt_must(vfm_desc_set_param(d, "memory", "64", &e), &e);
	pt_must(vfm_desc_set_allowed(d, "memory", "16,32,64,128,256", &e), &e);
}

/* The gfx-4GB pair: source memory=4096, destination allows only 8192. */
static inline void pt_desc_gfx(struct vfm_desc *d, bool dst)
{
	struct vfm_err e;

	vfm_desc_init(d);
	pt_must(vfm_desc_set_model(d, "gfx", &e), &e);
	pt_must(vfm_desc_set_version(d, dst ? "3.2" : "3.1", &e), &e);
	pt_must(vfm_desc_set_compatible(d, "3.0-3.9", &e), &e);
	pt_must(vfm_desc_add_features(d, "pre_copy p2p", &e), &e);
	pt_must(vfm_desc_set_param(d, "memory", dst ? "8192" : "4096", &e), &e);
	pt_must(vfm_desc_set_allowed(d, "memory", dst ? "8192" : "4096,8192",
				     &e),
		&e);
	if (dst) {
		pt_must(vfm_desc_set_param(d, "rss", "on", &e), &e);
		pt_must(vfm_desc_set_allowed(d, "rss", "on,off", &e), &e);
	}
}

static inline void pt_fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static inline void pt_hello(struct vfm_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->role = VFM_ROLE_SOURCE;
	h->proto_min = 1;
	h->proto_max = 3;
	h->features = VFM_PFEAT_TCP | VFM_PFEAT_PRE_COPY | (1ull << 40);
	pt_fill(h->nonce, sizeof(h->nonce), 0x10);
	pt_fill(h->migration_id, sizeof(h->migration_id), 0xa0);
}

static inline void pt_offer(struct vfm_offer *o)
{
	memset(o, 0, sizeof(*o));
	pt_desc_edu(&o->desc, "2.0.3");
	strcpy(o->req[0], "pre_copy");
	strcpy(o->req[1], "mmap");
	o->nreq = 2;
	strcpy(o->transport, "rdma");
	o->streams = 4;
}

static inline void pt_verdict(struct vfm_verdict_msg *v)
{
	struct vfm_desc src;

	memset(v, 0, sizeof(*v));
	pt_desc_gfx(&src, false);
	pt_desc_gfx(&v->desc, true);
	vfm_compat_eval(&src, &v->desc, &v->verdict);
}

/* ---- hex files: lowercase, 32 bytes a line ---- */
static inline int pt_hex_write(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x%s", p[i],
			(i % 32 == 31 || i == n - 1) ? "\n" : "");
	return fclose(f) ? -errno : 0;
}

/* Read a hex file into @p (cap bytes); returns the length or -errno. */
static inline long pt_hex_read(const char *path, uint8_t *p, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c, hi = -1;

	if (!f)
		return -errno;
	while ((c = fgetc(f)) != EOF) {
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap) {
			fclose(f);
			return -EFBIG;
		}
		p[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	fclose(f);
	return (long)n;
}

#endif
