// SPDX-License-Identifier: GPL-2.0
/*
 * Save throughput of a stopped device whose every page holds data: the mmap
 * path (SAVE_NEXT/RELEASE, no copy to userspace) against read() into a user
 * buffer, same boot, same device. A measurement, not an assertion: the lines
 * are "# measure".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

#define ROUNDS 5

/* Seconds for one whole STOP_COPY save; *bytes: the stream's size. */
static int time_save(struct vfm_vdev *d, enum vfm_path path, double *secs,
		     uint64_t *bytes)
{
	struct vfm_map m = { 0 };
	int ret, fd = -1;
	bool eof = false;
	double t0;

	ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret)
		return ret;
	if (path == VFM_PATH_MMAP)
		ret = vfm_map(fd, &m);
	t0 = vfm_now();
	if (!ret && path == VFM_PATH_MMAP)
		ret = vfm_mmap_save_until(fd, &m, NULL, NULL, 0, &eof, bytes);
	else if (!ret)
		ret = vfm_read_until(fd, NULL, NULL, 0, &eof, bytes);
	*secs = vfm_now() - t0;
	if (!ret && !eof)
		ret = -EPROTO;
	vfm_unmap(&m);
	close(fd);
	if (!ret)
		ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	return ret;
}

/*
 * Every page written with data: a reset device is all zero pages, whose
 * records cost neither a copy from a page nor a CRC, and would measure
 * nothing of the real cost.
 */
static int fill(struct vfm_vdev *d)
{
	static uint8_t buf[1 << 20];
	uint64_t off;
	size_t i;
	int ret = 0;

	for (off = 0; !ret && off < d->mem_size; off += sizeof(buf)) {
		for (i = 0; i < sizeof(buf); i += 8)
			memcpy(buf + i, &(uint64_t){ off + i + 1 }, 8);
		ret = vfm_mem_write(d, off, buf, sizeof(buf));
	}
	return ret;
}

void vfm_t_throughput(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	double best[2] = { 0, 0 };
	uint64_t bytes = 0;
	int ret, r, p;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = fill(d);
	for (r = 0; !ret && r < ROUNDS; r++) {
		for (p = 0; !ret && p < 2; p++) {
			double secs = 0, mbs;

			ret = time_save(d, p ? VFM_PATH_MMAP : VFM_PATH_RW,
					&secs, &bytes);
			mbs = secs > 0 ? (double)bytes / secs / 1e6 : 0;
			if (!ret && mbs > best[p])
				best[p] = mbs;
		}
	}
	vfm_reset(d);
	if (ret || best[0] <= 0) {
		vfm_fail("throughput/save", "timing the save: %s",
			 strerror(-ret));
		return;
	}
	vfm_ok("throughput/save");
	vfm_note(
		"save of %llu stream bytes (%llu MiB of device memory), best of %d",
		(unsigned long long)bytes,
		(unsigned long long)(d->mem_size >> 20), ROUNDS);
	vfm_measure("save_read_MBps", best[0], "MB/s");
	vfm_measure("save_mmap_MBps", best[1], "MB/s");
	vfm_measure("save_mmap_over_read", best[1] / best[0], "ratio");
}
