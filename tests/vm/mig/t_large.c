// SPDX-License-Identifier: GPL-2.0
/*
 * A large device (default 4 GiB of device memory, sparse): A -> B streamed
 * from A's data fd straight into B's (no copy of the whole stream kept),
 * with pre-copy and the workload on; state_digest equal.
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

#define CHUNK (1u << 20)

/* Copy from the saving fd into the resuming fd until ENOMSG/EOF/limit. */
static int pump(int from, int to, uint8_t *buf, uint64_t limit, bool *eof,
		uint64_t *moved)
{
	uint64_t got = 0;

	*eof = false;
	while (!limit || got < limit) {
		size_t want = CHUNK;
		ssize_t n;
		int ret;

		if (limit && want > limit - got)
			want = limit - got;
		n = read(from, buf, want);
		if (n < 0)
			return errno == ENOMSG ? 0 : -errno;
		if (n == 0) {
			*eof = true;
			break;
		}
		ret = vfm_write_all(to, buf, (size_t)n, NULL, NULL);
		if (ret)
			return ret;
		got += (uint64_t)n;
		*moved += (uint64_t)n;
	}
	return 0;
}

static int resize(struct vfm_ctx *c, int i, uint64_t mib, const char *allowed)
{
	int ret;

	vfm_ctx_close(c, i);
	ret = vfm_sysfs_write_u64(c->bdf[i], VFM_KNOB_MEM_SIZE, mib << 20);
	if (!ret && allowed)
		ret = vfm_sysfs_write(c->bdf[i], VFM_SYS_ALLOWED_MEMORY,
				      allowed);
	if (!ret)
		ret = vfm_ctx_open(c, i);
	return ret;
}

static int migrate(struct vfm_ctx *c, uint64_t *moved, double *secs)
{
	struct vfm_vdev *a = &c->dev[0], *b = &c->dev[1];
	uint64_t initial = 0, dirty = 0;
	int ret, fa = -1, fb = -1, f2 = -1;
	uint8_t *buf;
	bool eof;
	double t0;

	buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	ret = vfm_ctx_rate(c, 0, c->rate);
	if (!ret)
		ret = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fb);
	if (!ret)
		ret = vfm_set_state(a, VFIO_DEVICE_STATE_PRE_COPY, &fa);
	t0 = vfm_now();
	if (!ret)
		ret = vfm_precopy_info(fa, &initial, &dirty);
	if (!ret)
		ret = pump(fa, fb, buf, initial + dirty, &eof, moved);
	if (!ret)
		ret = vfm_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &f2);
	if (!ret)
		ret = pump(fa, fb, buf, 0, &eof, moved);
	if (!ret && !eof)
		ret = -EPROTO;
	if (!ret)
		ret = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	*secs = vfm_now() - t0;
	vfm_ctx_rate(c, 0, 0);
	if (f2 >= 0)
		close(f2);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(buf);
	return ret;
}

void vfm_t_large(struct vfm_ctx *c)
{
	char da[VFM_DIGEST_MAX], db[VFM_DIGEST_MAX], allowed[128] = "";
	char name[64], want[160];
	uint64_t moved = 0;
	double secs = 0, t0;
	int ret;

	snprintf(name, sizeof(name), "large/%llu-mib",
		 (unsigned long long)c->large_mib);
	if (!c->large_mib) {
		vfm_skip("large", "disabled (--large-mib 0)");
		return;
	}
	vfm_ctx_close(c, 1);
	vfm_sysfs_read(c->bdf[1], VFM_SYS_ALLOWED_MEMORY, allowed,
		       sizeof(allowed));
	snprintf(want, sizeof(want), "%s%s%llu", allowed, allowed[0] ? "," : "",
		 (unsigned long long)c->large_mib);
	ret = resize(c, 0, c->large_mib, NULL);
	if (!ret)
		ret = resize(c, 1, c->large_mib, want);
	if (!ret)
		ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 4242);
	if (ret) {
		vfm_fail(name, "setting up two %llu MiB devices: %s",
			 (unsigned long long)c->large_mib, strerror(-ret));
		goto out;
	}
	ret = migrate(c, &moved, &secs);
	t0 = vfm_now();
	if (!ret)
		ret = vfm_digest(c->bdf[0], da, sizeof(da));
	if (!ret)
		ret = vfm_digest(c->bdf[1], db, sizeof(db));
	if (vfm_expect(!ret && !strcmp(da, db), name,
		       "%s; digests A %.16s... B %.16s...", strerror(-ret), da,
		       db)) {
		vfm_note("%s: %llu stream bytes in %.1f s, digests in %.1f s",
			 name, (unsigned long long)moved, secs, vfm_now() - t0);
		vfm_measure("large_migrate_MBps", (double)moved / secs / 1e6,
			    "MB/s");
	}
out:
	vfm_reset(&c->dev[0]);
	vfm_reset(&c->dev[1]);
	resize(c, 0, 64, NULL);
	resize(c, 1, 64, allowed[0] ? allowed : NULL);
}
