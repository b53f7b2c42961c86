// SPDX-License-Identifier: MIT
/*
 * The destination's loader thread (agent/loader.h): segments are loaded in
 * the order pushed, on a thread that is not the caller's, while the caller
 * goes on; progress is published and signalled; the first error is sticky
 * and nothing queued behind it is loaded; stop drops the queue and joins.
 * No timing: every wait is on the loader's own state.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "loader.h"

#define NSEG 64

struct rec {
	struct vfm_load_seg seen[NSEG * 2];
	_Atomic unsigned int n;
	_Atomic int tid; /* the thread that ran the loads */
	int fail_at; /* load number that fails, -1 none */
	/* gate: the load of segment @hold_at waits until released */
	int hold_at;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool held, released;
};

static int rec_load(void *ctx, const struct vfm_load_seg *s)
{
	struct rec *r = ctx;
	unsigned int k = atomic_load(&r->n);

	atomic_store(&r->tid, (int)gettid());
	if ((int)k == r->hold_at) {
		pthread_mutex_lock(&r->mu);
		r->held = true;
		pthread_cond_broadcast(&r->cv);
		while (!r->released)
			pthread_cond_wait(&r->cv, &r->mu);
		pthread_mutex_unlock(&r->mu);
	}
	if ((int)k == r->fail_at)
		return -EIO;
	r->seen[k] = *s;
	atomic_store(&r->n, k + 1);
	return 0;
}

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->fail_at = -1;
	r->hold_at = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void wait_held(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	while (!r->held)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static void release(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	r->released = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

struct stopper {
	struct rec *r;
	struct vfm_loader *l;
};

/* Release the held load once stop has emptied the queue (the loader is
 * held, so nothing else can). */
static void *release_after_stop(void *arg)
{
	struct stopper *st = arg;

	while (vfm_loader_queued(st->l))
		sched_yield();
	release(st->r);
	return NULL;
}

static struct vfm_load_seg seg(uint64_t pos, uint32_t len)
{
	return (struct vfm_load_seg){ .pos = pos,
				      .roff = pos % 4096,
				      .len = len };
}

static void test_in_order_on_its_thread(void **state)
{
	struct vfm_loader *l;
	struct rec r;
	uint64_t pos = 1000;
	int err = 1;

	(void)state;
	rec_init(&r);
	assert_int_equal(vfm_loader_start(&l, rec_load, &r, pos, NSEG), 0);
	for (int i = 0; i < NSEG; i++) {
		struct vfm_load_seg s = seg(pos, 100 + (uint32_t)i);

		assert_int_equal(vfm_loader_push(l, &s), 0);
		pos += s.len;
	}
	assert_int_equal(vfm_loader_drain(l, 60000), 0);
	assert_int_equal(vfm_loader_loaded(l, &err), pos);
	assert_int_equal(err, 0);
	assert_int_equal(vfm_loader_queued(l), 0);
	assert_int_equal(atomic_load(&r.n), NSEG);
	for (int i = 0, p = 1000; i < NSEG; i++) {
		assert_int_equal(r.seen[i].pos, p);
		assert_int_equal(r.seen[i].len, 100 + i);
		p += 100 + i;
	}
	assert_int_not_equal(atomic_load(&r.tid), (int)gettid());
	assert_int_equal(atomic_load(&r.tid), vfm_loader_tid(l));
	vfm_loader_stop(l);
}

/* The caller goes on while a load is in progress: it can push more and
 * sees loaded stop short of the held segment; the eventfd says when the
 * loader moved on. */
static void test_caller_not_blocked(void **state)
{
	struct vfm_loader *l;
	struct rec r;
	struct pollfd pf;
	uint64_t v;

	(void)state;
	rec_init(&r);
	r.hold_at = 1;
	assert_int_equal(vfm_loader_start(&l, rec_load, &r, 0, 4), 0);
	for (int i = 0; i < 4; i++) {
		struct vfm_load_seg s = seg((uint64_t)i * 10, 10);

		assert_int_equal(vfm_loader_push(l, &s), 0);
	}
	wait_held(&r);
	/* segment 0 loaded, 1 held: 1, 2, 3 still queued */
	assert_int_equal(vfm_loader_loaded(l, NULL), 10);
	assert_int_equal(vfm_loader_queued(l), 3);
	/* the queue holds 4: one more fits, then it is full */
	{
		struct vfm_load_seg s = seg(40, 10), t = seg(50, 10);

		assert_int_equal(vfm_loader_push(l, &s), 0);
		assert_int_equal(vfm_loader_push(l, &t), -EAGAIN);
	}
	assert_int_equal(vfm_loader_drain(l, 0), -ETIMEDOUT);
	/* drain the eventfd, then release: it becomes readable again */
	while (read(vfm_loader_fd(l), &v, sizeof(v)) > 0)
		;
	release(&r);
	pf = (struct pollfd){ .fd = vfm_loader_fd(l), .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 60000), 1);
	assert_int_equal(vfm_loader_drain(l, 60000), 0);
	assert_int_equal(vfm_loader_loaded(l, NULL), 50);
	vfm_loader_stop(l);
}

static void test_out_of_order_refused(void **state)
{
	struct vfm_loader *l;
	struct rec r;
	struct vfm_load_seg a = seg(0, 10), gap = seg(20, 10),
			    zero = seg(10, 0);

	(void)state;
	rec_init(&r);
	assert_int_equal(vfm_loader_start(&l, rec_load, &r, 0, 8), 0);
	assert_int_equal(vfm_loader_push(l, &a), 0);
	assert_int_equal(vfm_loader_push(l, &gap), -EPROTO);
	assert_int_equal(vfm_loader_push(l, &a), -EPROTO);
	assert_int_equal(vfm_loader_push(l, &zero), -EPROTO);
	assert_int_equal(vfm_loader_drain(l, 60000), 0);
	assert_int_equal(atomic_load(&r.n), 1);
	vfm_loader_stop(l);
}

/* A failed load is sticky; what was queued behind it is never loaded. */
static void test_error_sticky(void **state)
{
	struct vfm_loader *l;
	struct rec r;
	int err = 0;

	(void)state;
	rec_init(&r);
	r.fail_at = 2;
	r.hold_at = 2; /* everything is queued before the failing load */
	assert_int_equal(vfm_loader_start(&l, rec_load, &r, 0, 16), 0);
	for (int i = 0; i < 8; i++) {
		struct vfm_load_seg s = seg((uint64_t)i * 10, 10);

		assert_int_equal(vfm_loader_push(l, &s), 0);
	}
	wait_held(&r);
	release(&r);
	assert_int_equal(vfm_loader_drain(l, 60000), -EIO);
	assert_int_equal(vfm_loader_loaded(l, &err), 20);
	assert_int_equal(err, -EIO);
	assert_int_equal(atomic_load(&r.n), 2);
	{
		struct vfm_load_seg s = seg(80, 10);

		assert_int_equal(vfm_loader_push(l, &s), -EIO);
	}
	vfm_loader_stop(l);
	assert_int_equal(atomic_load(&r.n), 2);
}

/* stop with a load in progress and more queued: the one in progress
 * finishes, the rest is dropped, the thread is joined. */
static void test_stop_drops_queue(void **state)
{
	struct vfm_loader *l;
	struct stopper st;
	struct rec r;
	pthread_t t;

	(void)state;
	rec_init(&r);
	r.hold_at = 0;
	assert_int_equal(vfm_loader_start(&l, rec_load, &r, 0, 8), 0);
	for (int i = 0; i < 5; i++) {
		struct vfm_load_seg s = seg((uint64_t)i * 10, 10);

		assert_int_equal(vfm_loader_push(l, &s), 0);
	}
	wait_held(&r);
	/* released from another thread once stop has dropped the queue */
	st = (struct stopper){ .r = &r, .l = l };
	assert_int_equal(pthread_create(&t, NULL, release_after_stop, &st), 0);
	vfm_loader_stop(l);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&r.n), 1);
	vfm_loader_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_on_its_thread),
		cmocka_unit_test(test_caller_not_blocked),
		cmocka_unit_test(test_out_of_order_refused),
		cmocka_unit_test(test_error_sticky),
		cmocka_unit_test(test_stop_drops_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
