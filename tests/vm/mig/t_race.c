// SPDX-License-Identifier: GPL-2.0
/*
 * read() of a saving data fd into an mmap of the device's own BAR0 while
 * another thread issues VFIO_DEVICE_RESET. The reset holds vfio_pci_core's
 * memory_lock for writing (BAR mappings zapped) while it disables the data
 * fd; the read's copy faults on the zapped BAR and waits for memory_lock. A
 * driver that copies user memory under a lock its reset path takes
 * deadlocks here; the test gives up after a time limit and says so.
 *
 * The bytes land at BAR0 + 0x1000: edu ignores writes above its registers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "tests.h"

#define RACE_ROUNDS 40
#define RACE_LIMIT_S 30
#define BAR_SINK 0x1000

struct reader {
	int fd;
	uint8_t *sink;
	atomic_int done;
	uint64_t bytes;
	int err;
};

static void *reader_fn(void *arg)
{
	struct reader *r = arg;

	for (;;) {
		ssize_t n = read(r->fd, r->sink, 4096);

		if (n <= 0) {
			r->err = n < 0 ? errno : 0;
			break;
		}
		r->bytes += (uint64_t)n;
	}
	atomic_store(&r->done, 1);
	return NULL;
}

static int map_bar0(struct vfm_vdev *d, uint8_t **p, size_t *len)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri),
				       .index = VFIO_PCI_BAR0_REGION_INDEX };
	void *m;

	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -errno;
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || ri.size < 2 * BAR_SINK)
		return -ENOTSUP;
	*len = 2 * BAR_SINK;
	m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
		 (off_t)ri.offset);
	if (m == MAP_FAILED)
		return -errno;
	*p = m;
	return 0;
}

struct resetter {
	struct vfm_vdev *d;
	atomic_int done;
	int ret;
};

static void *resetter_fn(void *arg)
{
	struct resetter *x = arg;

	x->ret = vfm_reset(x->d);
	atomic_store(&x->done, 1);
	return NULL;
}

/* Wait up to limit_s for both threads to finish. */
static bool both_finished(struct reader *r, struct resetter *x, double limit_s)
{
	double t0 = vfm_now();

	while (!atomic_load(&r->done) || !atomic_load(&x->done)) {
		if (vfm_now() - t0 > limit_s)
			return false;
		vfm_sleep_ms(5);
	}
	return true;
}

void vfm_t_reset_race(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	uint64_t total = 0;
	uint8_t *bar = NULL;
	size_t bar_len = 0;
	int ret, round, faults = 0;
	uint32_t st = 0;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 11);
	if (!ret)
		ret = map_bar0(d, &bar, &bar_len);
	if (ret) {
		vfm_fail("reset-race", "setup (BAR0 mmap): %s", strerror(-ret));
		return;
	}
	for (round = 0; round < RACE_ROUNDS; round++) {
		struct reader r = { .fd = -1, .sink = bar + BAR_SINK };
		struct resetter x = { .d = d };
		pthread_t th, tx;

		ret = vfm_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &r.fd);
		if (ret || r.fd < 0) {
			vfm_fail("reset-race", "round %d: PRE_COPY: %s", round,
				 strerror(-ret));
			goto out;
		}
		if (pthread_create(&th, NULL, reader_fn, &r)) {
			vfm_fail("reset-race", "pthread_create failed");
			close(r.fd);
			goto out;
		}
		/* let the reader run a little, at a different point each time */
		vfm_sleep_ms(1 + (unsigned int)(round * 7) % 23);
		if (pthread_create(&tx, NULL, resetter_fn, &x)) {
			vfm_fail("reset-race", "pthread_create failed");
			return;
		}
		if (!both_finished(&r, &x, RACE_LIMIT_S)) {
			vfm_fail(
				"reset-race",
				"round %d: read() into the BAR mmap %s, VFIO_DEVICE_RESET %s, %d s after the reset: deadlock",
				round,
				atomic_load(&r.done) ? "returned" : "blocked",
				atomic_load(&x.done) ? "returned" : "blocked",
				RACE_LIMIT_S);
			/*
			 * Threads stuck in the kernel: nothing else can use
			 * the device. Say so and stop (the process may not
			 * finish exiting until the guest's time limit).
			 */
			fflush(stdout);
			_exit(1);
		}
		pthread_join(th, NULL);
		pthread_join(tx, NULL);
		ret = x.ret;
		close(r.fd);
		if (ret) {
			vfm_fail("reset-race",
				 "round %d: VFIO_DEVICE_RESET: %s", round,
				 strerror(-ret));
			goto out;
		}
		if (r.err != ENODEV)
			faults++;
		total += r.bytes;
	}
	vfm_get_state(d, &st);
	if (vfm_expect(st == VFIO_DEVICE_STATE_RUNNING && total > 0,
		       "reset-race",
		       "state %s after the rounds, %llu bytes read",
		       vfm_state_name(st), (unsigned long long)total))
		vfm_note(
			"reset-race: %d rounds, %llu bytes read into BAR0, %d reads ended other than ENODEV",
			RACE_ROUNDS, (unsigned long long)total, faults);
out:
	munmap(bar, bar_len);
	vfm_reset(d);
}
