// SPDX-License-Identifier: GPL-2.0
/*
 * Streams the destination must refuse: one corrupted byte (the resume must
 * fail and B must never run with that state), a truncated stream, and a
 * header from an incompatible device (other model, version outside
 * version_compatible), refused on the first write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

/* Feed a damaged stream into B; expect no way to STOP or RUNNING. */
static void refuse_case(struct vfm_ctx *c, const char *name,
			const struct vfm_buf *good, size_t flip_at, size_t cut,
			const char *da)
{
	char db0[VFM_DIGEST_MAX], db[VFM_DIGEST_MAX];
	struct vfm_vdev *b = &c->dev[1];
	uint8_t *p;
	size_t len = good->len - cut, accepted = 0;
	int ret, wret, sret, rret, fd = -1;
	uint32_t st = 0;

	p = malloc(good->len);
	if (!p) {
		vfm_fail(name, "out of memory");
		return;
	}
	memcpy(p, good->p, good->len);
	if (flip_at < len)
		p[flip_at] ^= 0x10;

	ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_digest(c->bdf[1], db0, sizeof(db0));
	if (!ret)
		ret = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret || fd < 0) {
		vfm_fail(name, "B to RESUMING: %s", strerror(-ret));
		goto out;
	}
	wret = vfm_write_all(fd, p, len, NULL, &accepted);
	sret = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	vfm_get_state(b, &st);
	if (!sret) {
		vfm_fail(name, "RESUMING->STOP accepted the stream (write: %s)",
			 strerror(-wret));
		goto out;
	}
	if (st == VFIO_DEVICE_STATE_STOP || st == VFIO_DEVICE_STATE_RUNNING) {
		vfm_fail(name, "RESUMING->STOP failed but B is in %s",
			 vfm_state_name(st));
		goto out;
	}
	rret = vfm_goto(b, VFIO_DEVICE_STATE_RUNNING);
	vfm_get_state(b, &st);
	if (!rret || st == VFIO_DEVICE_STATE_RUNNING) {
		vfm_fail(name, "B reached RUNNING after a refused stream");
		goto out;
	}
	ret = vfm_digest(c->bdf[1], db, sizeof(db));
	if (ret || strcmp(db, db0) || !strcmp(db, da)) {
		vfm_fail(
			name,
			"B's state changed (%s): before %.16s..., after %.16s..., A %.16s...",
			strerror(-ret), db0, db, da);
		goto out;
	}
	vfm_ok(name);
	vfm_note(
		"%s: write %s after %zu of %zu bytes; RESUMING->STOP %s; B stays in %s",
		name, wret ? strerror(-wret) : "ok", accepted, len,
		strerror(-sret), vfm_state_name(st));
out:
	if (fd >= 0)
		close(fd);
	vfm_reset(b);
	free(p);
}

void vfm_t_corrupt(struct vfm_ctx *c)
{
	const size_t hdr = sizeof(struct vfmig_stream_hdr);
	const size_t rh = sizeof(struct vfmig_rec_hdr);
	char da[VFM_DIGEST_MAX];
	struct vfm_buf s = { 0 };
	int ret;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 5);
	if (!ret)
		ret = vfm_save(&c->dev[0], VFM_PATH_RW, false, NULL, &s);
	if (!ret)
		ret = vfm_digest(c->bdf[0], da, sizeof(da));
	if (ret || s.len < hdr + 3 * rh) {
		vfm_fail("corrupt/setup", "saving A: %s", strerror(-ret));
		goto out;
	}
	refuse_case(c, "corrupt/payload-byte", &s, s.len / 2 + 1, 0, da);
	refuse_case(c, "corrupt/record-header-byte", &s, hdr + 9, 0, da);
	refuse_case(c, "corrupt/header-byte", &s, 40, 0, da);
	refuse_case(c, "corrupt/end-record-byte", &s, s.len - 3, 0, da);
	refuse_case(c, "corrupt/truncated", &s, (size_t)-1, 100, da);
	refuse_case(c, "corrupt/end-record-missing", &s, (size_t)-1,
		    rh + sizeof(struct vfmig_rec_end), da);
out:
	vfm_buf_free(&s);
	vfm_reset(&c->dev[0]);
}

/*
 * Set an identity file of device i while it is closed (the driver refuses
 * while open); old receives the previous value when not NULL.
 */
static int set_identity(struct vfm_ctx *c, int i, const char *rel,
			const char *val, char *old, size_t n)
{
	int ret;

	vfm_ctx_close(c, i);
	ret = old ? vfm_sysfs_read(c->bdf[i], rel, old, n) : 0;
	if (!ret)
		ret = vfm_sysfs_write(c->bdf[i], rel, val);
	if (!ret || old) {
		int r2 = vfm_ctx_open(c, i);

		ret = ret ? ret : r2;
	}
	return ret;
}

/* Write A's stream header into B (RESUMING); returns the write's result. */
static int first_write(struct vfm_ctx *c, const struct vfm_buf *hdr)
{
	int ret, fd = -1;
	ssize_t n;

	ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_goto(&c->dev[1], VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(&c->dev[1], VFIO_DEVICE_STATE_RESUMING,
				    &fd);
	if (ret)
		return -ENOTRECOVERABLE; /* never mistaken for a refusal */
	n = write(fd, hdr->p, hdr->len);
	ret = n < 0 ? -errno : (size_t)n == hdr->len ? 0 : -EIO;
	close(fd);
	vfm_reset(&c->dev[1]);
	return ret;
}

/* The first bytes of A's stream: its header. */
static int header_of_a(struct vfm_ctx *c, struct vfm_buf *out)
{
	const size_t hdr = sizeof(struct vfmig_stream_hdr);
	uint64_t got = 0;
	bool eof;
	int ret, fd = -1;

	out->len = 0;
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_set_state(&c->dev[0], VFIO_DEVICE_STATE_PRE_COPY,
				    &fd);
	if (!ret)
		ret = vfm_read_until(fd, out, NULL, hdr, &eof, &got);
	if (!ret && got != hdr)
		ret = -EIO;
	if (fd >= 0)
		close(fd);
	vfm_reset(&c->dev[0]);
	return ret;
}

static void incompat_case(struct vfm_ctx *c, const char *name, int dev,
			  const char *rel, const char *val)
{
	char old[256] = "";
	struct vfm_buf h = { 0 };
	int ret;

	ret = set_identity(c, dev, rel, val, old, sizeof(old));
	if (ret) {
		vfm_fail(name, "setting %s of %s to '%s' while closed: %s", rel,
			 c->bdf[dev], val, strerror(-ret));
		goto out;
	}
	ret = header_of_a(c, &h);
	if (ret) {
		vfm_fail(name, "reading A's header: %s", strerror(-ret));
		goto out;
	}
	ret = first_write(c, &h);
	vfm_expect(ret && ret != -ENOTRECOVERABLE && ret != -EIO, name,
		   "first write of the header: %s",
		   ret ? strerror(-ret) : "accepted");
	if (ret && ret != -ENOTRECOVERABLE)
		vfm_note("%s: refused with %s", name, strerror(-ret));
out:
	if (old[0])
		set_identity(c, dev, rel, old, NULL, 0);
	vfm_buf_free(&h);
}

void vfm_t_incompat(struct vfm_ctx *c)
{
	struct vfm_buf h = { 0 };
	char ver[64] = "";
	int ret;

	char model[VFMIG_MODEL_MAX] = "";

	/* The identity files refuse writes while the device is open. */
	ret = vfm_ctx_open(c, 1);
	if (!ret)
		ret = vfm_sysfs_read(c->bdf[1], VFM_SYS_MODEL, model,
				     sizeof(model));
	if (!ret)
		ret = vfm_sysfs_write(c->bdf[1], VFM_SYS_MODEL, "vfmig-other");
	vfm_expect(ret == -EBUSY, "incompat/identity-locked-while-open",
		   "writing %s while open: %s (want EBUSY)", VFM_SYS_MODEL,
		   ret ? strerror(-ret) : "accepted");
	if (!ret) /* undo */
		set_identity(c, 1, VFM_SYS_MODEL, model, NULL, 0);

	ret = header_of_a(c, &h);
	if (!ret)
		ret = first_write(c, &h);
	vfm_expect(!ret, "incompat/compatible-header-accepted",
		   "A's header into B: %s", strerror(-ret));
	vfm_buf_free(&h);

	incompat_case(c, "incompat/other-model", 1, VFM_SYS_MODEL,
		      "vfmig-other");
	/* B takes 0.0.1 only; A stays at its own version. */
	incompat_case(c, "incompat/version-below-range", 1, VFM_SYS_COMPATIBLE,
		      "0.0.1-0.0.1");
	/* A claims a version far above B's range. */
	vfm_sysfs_read(c->bdf[0], VFM_SYS_VERSION, ver, sizeof(ver));
	incompat_case(c, "incompat/version-above-range", 0, VFM_SYS_VERSION,
		      "99.0.0");
	vfm_note("A's version is %s", ver);
}
