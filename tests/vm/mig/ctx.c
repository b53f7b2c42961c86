// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sysfs.h"
#include "tests.h"

int vfm_ctx_open(struct vfm_ctx *c, int i)
{
	int ret;

	if (c->open[i])
		return 0;
	ret = vfm_vdev_open(&c->dev[i], c->bdf[i]);
	c->open[i] = !ret;
	return ret;
}

void vfm_ctx_close(struct vfm_ctx *c, int i)
{
	if (!c->open[i])
		return;
	vfm_vdev_close(&c->dev[i]);
	c->open[i] = false;
}

int vfm_ctx_rate(struct vfm_ctx *c, int i, uint64_t rate)
{
	return vfm_sysfs_write_u64(c->bdf[i], VFM_KNOB_DIRTY_RATE, rate);
}

int vfm_ctx_fresh(struct vfm_ctx *c, int i)
{
	int ret = vfm_ctx_open(c, i);

	if (!ret)
		ret = vfm_ctx_rate(c, i, 0);
	if (!ret)
		ret = vfm_reset(&c->dev[i]);
	return ret;
}

int vfm_ctx_scribble(struct vfm_ctx *c, int i, unsigned int seed)
{
	struct vfm_vdev *d = &c->dev[i];
	uint8_t page[4096];
	unsigned int k, j;
	int ret;

	if (!d->mem_size)
		return -ENOENT;
	for (k = 0; k < 8; k++) {
		uint64_t npages = d->mem_size / sizeof(page);
		uint64_t idx = (seed * 2654435761u + k * 40503u) % npages;

		for (j = 0; j < sizeof(page); j++)
			page[j] = (uint8_t)(seed + k * 31 + j * 7 + (j >> 8));
		ret = vfm_mem_write(d, idx * sizeof(page), page, sizeof(page));
		if (ret)
			return ret;
	}
	return 0;
}

double vfm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vfm_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}
