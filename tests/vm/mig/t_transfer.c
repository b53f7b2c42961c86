// SPDX-License-Identifier: GPL-2.0
/*
 * Save device A, restore into device B: through read()/write(), through the
 * mmap-able buffer, with mixed segment sizes, across paths; the two paths
 * give the same bytes. state_digest of A and B must match.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

struct case_def {
	const char *name;
	enum vfm_path save, load;
	const size_t *save_sizes, *load_sizes;
};

static const struct case_def cases[] = {
	{ "transfer/rw", VFM_PATH_RW, VFM_PATH_RW, NULL, NULL },
	{ "transfer/mmap", VFM_PATH_MMAP, VFM_PATH_MMAP, NULL, NULL },
	{ "transfer/mixed-segments-rw", VFM_PATH_RW, VFM_PATH_RW,
	  vfm_sizes_mixed_a, vfm_sizes_mixed_b },
	{ "transfer/mixed-segments-mmap", VFM_PATH_MMAP, VFM_PATH_MMAP,
	  vfm_sizes_mixed_b, vfm_sizes_mixed_a },
	{ "transfer/mmap-to-rw", VFM_PATH_MMAP, VFM_PATH_RW, NULL,
	  vfm_sizes_mixed_a },
	{ "transfer/rw-to-mmap", VFM_PATH_RW, VFM_PATH_MMAP, vfm_sizes_mixed_b,
	  NULL },
};

/* One migration A -> B with the workload on during pre-copy. */
static void one_case(struct vfm_ctx *c, const struct case_def *k,
		     unsigned int seed)
{
	char da[VFM_DIGEST_MAX], db0[VFM_DIGEST_MAX], db[VFM_DIGEST_MAX];
	struct vfm_buf s = { 0 };
	uint32_t st = 0;
	int ret;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, seed);
	if (!ret)
		ret = vfm_ctx_scribble(c, 1, seed + 1000);
	if (!ret)
		ret = vfm_digest(c->bdf[1], db0, sizeof(db0));
	if (!ret)
		ret = vfm_ctx_rate(c, 0, c->rate);
	if (ret) {
		vfm_fail(k->name, "setup: %s", strerror(-ret));
		return;
	}
	vfm_sleep_ms(300); /* let the workload write */
	ret = vfm_save(&c->dev[0], k->save, true, k->save_sizes, &s);
	vfm_ctx_rate(c, 0, 0);
	if (ret) {
		vfm_fail(k->name, "saving A: %s", strerror(-ret));
		goto out;
	}
	ret = vfm_restore(&c->dev[1], k->load, s.p, s.len, k->load_sizes);
	if (ret) {
		vfm_fail(k->name, "restoring B (%zu stream bytes): %s", s.len,
			 strerror(-ret));
		goto out;
	}
	ret = vfm_digest(c->bdf[0], da, sizeof(da));
	if (!ret)
		ret = vfm_digest(c->bdf[1], db, sizeof(db));
	if (ret) {
		vfm_fail(k->name, "reading state_digest: %s", strerror(-ret));
		goto out;
	}
	if (!strcmp(da, db0)) {
		vfm_fail(k->name,
			 "B already had A's state before the migration");
		goto out;
	}
	if (!vfm_expect(!strcmp(da, db), k->name,
			"state_digest A %.16s... B %.16s... (%zu stream bytes)",
			da, db, s.len))
		goto out;
	ret = vfm_goto(&c->dev[1], VFIO_DEVICE_STATE_RUNNING);
	vfm_get_state(&c->dev[1], &st);
	if (ret || st != VFIO_DEVICE_STATE_RUNNING)
		vfm_fail(k->name, "B did not run after the restore: %s",
			 strerror(-ret));
out:
	vfm_buf_free(&s);
	vfm_reset(&c->dev[0]);
	vfm_reset(&c->dev[1]);
}

/* A stopped device saved twice: read() and the mmap path, same bytes. */
static void same_bytes(struct vfm_ctx *c)
{
	struct vfm_buf r = { 0 }, m = { 0 };
	size_t at = 0;
	int ret;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 77);
	if (!ret)
		ret = vfm_save(&c->dev[0], VFM_PATH_RW, false,
			       vfm_sizes_mixed_a, &r);
	if (!ret)
		ret = vfm_save(&c->dev[0], VFM_PATH_MMAP, false,
			       vfm_sizes_mixed_b, &m);
	if (ret) {
		vfm_fail("transfer/rw-mmap-same-stream", "saving: %s",
			 strerror(-ret));
		goto out;
	}
	while (at < r.len && at < m.len && r.p[at] == m.p[at])
		at++;
	vfm_expect(
		r.len == m.len && at == r.len, "transfer/rw-mmap-same-stream",
		"read(): %zu bytes, mmap: %zu bytes, first difference at %zu",
		r.len, m.len, at);
out:
	vfm_buf_free(&r);
	vfm_buf_free(&m);
	vfm_reset(&c->dev[0]);
}

void vfm_t_transfer(struct vfm_ctx *c)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		one_case(c, &cases[i], 11 + (unsigned int)i);
	same_bytes(c);
}
