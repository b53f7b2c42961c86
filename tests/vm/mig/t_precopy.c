// SPDX-License-Identifier: GPL-2.0
/*
 * PRE_COPY with the in-kernel workload: initial_bytes falls to 0 as it is
 * read, dirty_bytes is exact for pages written through the region and grows
 * with the workload, read() says ENOMSG once caught up. And the P2P states:
 * the workload runs in RUNNING_P2P / PRE_COPY_P2P and a stopped device
 * never changes.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

#define WAIT_MS 8000 /* how long to wait for the workload to show */

/* Read n bytes exactly (fewer only at ENOMSG/EOF); returns bytes read. */
static int64_t read_n(int fd, uint64_t n)
{
	uint64_t got = 0;
	bool eof;
	int ret = vfm_read_until(fd, NULL, NULL, n, &eof, &got);

	return ret ? ret : (int64_t)got;
}

/* Whether the digest of bdf changes within ms milliseconds. */
static bool digest_changes(const char *bdf, unsigned int ms)
{
	char d0[VFM_DIGEST_MAX], d1[VFM_DIGEST_MAX];
	double end = vfm_now() + ms / 1000.0;

	if (vfm_digest(bdf, d0, sizeof(d0)))
		return false;
	while (vfm_now() < end) {
		vfm_sleep_ms(100);
		if (vfm_digest(bdf, d1, sizeof(d1)))
			return false;
		if (strcmp(d0, d1))
			return true;
	}
	return false;
}

void vfm_t_p2p(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	const char *bdf = c->bdf[0];
	uint64_t initial = 0, dirty = 0;
	int ret, fd = -1;
	double end;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_rate(c, 0, c->rate);
	if (ret) {
		vfm_fail("p2p/setup", "%s: %s", bdf, strerror(-ret));
		return;
	}
	vfm_expect(
		digest_changes(bdf, WAIT_MS), "p2p/running-changes",
		"the workload (%llu B/s) did not change the state in RUNNING",
		(unsigned long long)c->rate);

	ret = vfm_goto(d, VFIO_DEVICE_STATE_RUNNING_P2P);
	vfm_expect(!ret && digest_changes(bdf, WAIT_MS),
		   "p2p/running-p2p-changes",
		   "RUNNING_P2P (%s): the workload did not run",
		   strerror(-ret));

	ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	vfm_expect(!ret && !digest_changes(bdf, 1500), "p2p/stop-frozen",
		   "STOP (%s): the state changed while stopped",
		   strerror(-ret));

	/* STOP -> RUNNING_P2P -> PRE_COPY_P2P: dirty pages accumulate */
	ret = vfm_set_state(d, VFIO_DEVICE_STATE_PRE_COPY_P2P, &fd);
	if (ret || fd < 0) {
		vfm_fail("p2p/pre-copy-p2p-dirties", "PRE_COPY_P2P: %s",
			 strerror(-ret));
		vfm_reset(d);
		return;
	}
	ret = vfm_precopy_info(fd, &initial, &dirty);
	if (!ret && read_n(fd, initial) < 0)
		ret = -EIO;
	end = vfm_now() + WAIT_MS / 1000.0;
	while (!ret && vfm_now() < end) {
		ret = vfm_precopy_info(fd, &initial, &dirty);
		if (dirty)
			break;
		vfm_sleep_ms(100);
	}
	vfm_expect(!ret && dirty > 0, "p2p/pre-copy-p2p-dirties",
		   "PRE_COPY_P2P: %s, dirty_bytes %llu", strerror(-ret),
		   (unsigned long long)dirty);

	ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP_COPY);
	vfm_expect(!ret && !digest_changes(bdf, 1500), "p2p/stop-copy-frozen",
		   "STOP_COPY (%s): the state changed while stopped",
		   strerror(-ret));
	close(fd);
	vfm_ctx_rate(c, 0, 0);
	vfm_reset(d);
}

void vfm_t_precopy(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	uint64_t initial = 0, dirty = 0, init0, d1 = 0, len = 0;
	uint8_t page[4096], b[16];
	bool monotonic = true, exact = true;
	int ret, fd = -1;
	int64_t n;
	double end;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	if (!ret && fd < 0)
		ret = -EBADF;
	if (!ret)
		ret = vfm_precopy_info(fd, &initial, &dirty);
	if (ret) {
		vfm_fail("precopy/setup", "PRE_COPY on %s: %s", c->bdf[0],
			 strerror(-ret));
		goto out;
	}
	init0 = initial;
	vfm_expect(
		initial >= d->mem_size && dirty == 0,
		"precopy/initial-covers-memory",
		"initial_bytes %llu, dirty_bytes %llu for %llu bytes of memory",
		(unsigned long long)initial, (unsigned long long)dirty,
		(unsigned long long)d->mem_size);
	ret = vfm_data_size(d, &len);
	vfm_expect(!ret && len > 0, "precopy/data-size",
		   "MIG_DATA_SIZE in PRE_COPY: %s", strerror(-ret));

	/* initial_bytes falls by exactly what is read, down to 0. */
	while (initial > 0) {
		uint64_t before = initial,
			 want = before < 777777 ? before : 777777;

		n = read_n(fd, want);
		if (n <= 0 || vfm_precopy_info(fd, &initial, &dirty)) {
			monotonic = false;
			break;
		}
		if (initial != before - (uint64_t)n)
			exact = false;
	}
	vfm_expect(monotonic && exact && initial == 0,
		   "precopy/initial-falls-to-zero", "from %llu: %s%s, now %llu",
		   (unsigned long long)init0,
		   monotonic ? "" : "read or info failed",
		   exact ? "" : "did not fall by the bytes read",
		   (unsigned long long)initial);

	errno = 0;
	n = read(fd, b, sizeof(b));
	vfm_expect(n < 0 && errno == ENOMSG, "precopy/enomsg-when-caught-up",
		   "read with nothing pending returned %zd (%s)", (ssize_t)n,
		   strerror(errno));

	/* Pages written through the region: dirty_bytes counts each once. */
	memset(page, 0x5a, sizeof(page));
	memset(b, 0xa5, sizeof(b));
	ret = vfm_mem_write(d, 0, page, sizeof(page));
	if (!ret)
		ret = vfm_precopy_info(fd, &initial, &d1);
	if (!ret)
		ret = vfm_mem_write(d, 0, page, 100);
	if (!ret)
		ret = vfm_precopy_info(fd, &initial, &dirty);
	exact = !ret && d1 >= sizeof(page) && dirty == d1;
	for (int k = 1; !ret && k <= 3; k++)
		ret = vfm_mem_write(d, (uint64_t)k * 7 * sizeof(page) + 10, b,
				    1);
	if (!ret)
		ret = vfm_precopy_info(fd, &initial, &dirty);
	vfm_expect(!ret && exact && dirty == 4 * d1, "precopy/dirty-exact",
		   "one page -> %llu dirty bytes, four pages -> %llu (%s)",
		   (unsigned long long)d1, (unsigned long long)dirty,
		   strerror(-ret));
	n = read_n(fd, dirty);
	ret = vfm_precopy_info(fd, &initial, &dirty);
	vfm_expect(n > 0 && !ret && initial == 0 && dirty == 0,
		   "precopy/dirty-read-back",
		   "after reading the dirty pages: initial %llu dirty %llu",
		   (unsigned long long)initial, (unsigned long long)dirty);

	/* The workload dirties pages; dirty_bytes follows. */
	ret = vfm_ctx_rate(c, 0, c->rate);
	d1 = 0;
	end = vfm_now() + WAIT_MS / 1000.0;
	while (!ret && vfm_now() < end) {
		ret = vfm_precopy_info(fd, &initial, &dirty);
		if (d1 && dirty > d1)
			break;
		if (!d1)
			d1 = dirty;
		vfm_sleep_ms(200);
	}
	vfm_expect(!ret && d1 > 0 && dirty > d1,
		   "precopy/dirty-tracks-workload",
		   "workload at %llu B/s: dirty_bytes %llu then %llu (%s)",
		   (unsigned long long)c->rate, (unsigned long long)d1,
		   (unsigned long long)dirty, strerror(-ret));

	/* Workload off: read what is pending, then ENOMSG again. */
	ret = vfm_ctx_rate(c, 0, 0);
	vfm_sleep_ms(300);
	for (int round = 0; !ret && round < 16; round++) {
		ret = vfm_precopy_info(fd, &initial, &dirty);
		if (ret || !(initial + dirty))
			break;
		n = read_n(fd, initial + dirty);
		if (n < 0)
			ret = (int)n;
	}
	errno = 0;
	n = read(fd, b, sizeof(b));
	vfm_expect(!ret && !initial && !dirty && n < 0 && errno == ENOMSG,
		   "precopy/caught-up-after-workload",
		   "initial %llu dirty %llu, read %zd (%s)",
		   (unsigned long long)initial, (unsigned long long)dirty,
		   (ssize_t)n, strerror(errno));

	/* STOP_COPY sends the rest and ends in EOF. */
	ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP_COPY);
	{
		uint64_t got = 0;
		bool eof = false;

		if (!ret)
			ret = vfm_read_until(fd, NULL, NULL, 0, &eof, &got);
		vfm_expect(!ret && eof && got > 0, "precopy/stop-copy-eof",
			   "STOP_COPY after pre-copy: %s, %llu bytes, eof %d",
			   strerror(-ret), (unsigned long long)got, eof);
	}
	ret = vfm_precopy_info(fd, &initial, &dirty);
	vfm_expect(ret == -EINVAL, "precopy/info-refused-in-stop-copy",
		   "VFIO_MIG_GET_PRECOPY_INFO in STOP_COPY: %s (want EINVAL)",
		   strerror(-ret));
out:
	if (fd >= 0)
		close(fd);
	vfm_ctx_rate(c, 0, 0);
	vfm_reset(d);
}
