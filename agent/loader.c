// SPDX-License-Identifier: MIT
/*
 * The destination's loader thread (loader.h): a bounded FIFO of segments
 * in stream order, one consumer that loads them, an eventfd that says it
 * moved on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"

struct vfm_loader {
	vfm_load_fn load;
	void *ctx;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the loader waits for work, drain for idle */
	struct vfm_load_seg *q;
	unsigned int depth, head, count; /* under mu */
	bool stop; /* under mu */
	uint64_t next; /* where the next push must start (producer only) */
	_Atomic uint64_t loaded;
	_Atomic int err;
	_Atomic int tid;
	int efd;
};

static void signal_progress(struct vfm_loader *l)
{
	uint64_t one = 1;

	if (write(l->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the fd readable anyway */
	}
}

static void *loader_main(void *arg)
{
	struct vfm_loader *l = arg;

	atomic_store(&l->tid, (int)gettid());
	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct vfm_load_seg s;
		int ret;

		while (!l->stop && !l->count)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->stop)
			break;
		s = l->q[l->head];
		pthread_mutex_unlock(&l->mu);

		ret = l->load(l->ctx, &s);
		if (ret)
			atomic_store(&l->err, ret);
		else
			atomic_store_explicit(&l->loaded, s.pos + s.len,
					      memory_order_release);

		pthread_mutex_lock(&l->mu);
		if (!l->stop) { /* stop emptied the queue already */
			l->head = (l->head + 1) % l->depth;
			l->count--;
		}
		if (ret)
			l->count = 0; /* nothing behind a failed load */
		pthread_cond_broadcast(&l->cv);
		signal_progress(l);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int vfm_loader_start(struct vfm_loader **lp, vfm_load_fn load, void *ctx,
		     uint64_t start, unsigned int depth)
{
	struct vfm_loader *l;
	pthread_condattr_t ca;
	int ret;

	*lp = NULL;
	if (!load || !depth)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->q = calloc(depth, sizeof(*l->q));
	l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!l->q || l->efd < 0) {
		ret = l->q ? -errno : -ENOMEM;
		goto fail;
	}
	l->load = load;
	l->ctx = ctx;
	l->depth = depth;
	l->next = start;
	atomic_init(&l->loaded, start);
	atomic_init(&l->err, 0);
	atomic_init(&l->tid, 0);
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&l->thr, NULL, loader_main, l);
	if (ret) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		goto fail;
	}
	*lp = l;
	return 0;
fail:
	if (l->efd >= 0)
		close(l->efd);
	free(l->q);
	free(l);
	return ret;
}

int vfm_loader_push(struct vfm_loader *l, const struct vfm_load_seg *s)
{
	int ret = atomic_load(&l->err);

	if (ret)
		return ret;
	if (s->pos != l->next || !s->len)
		return -EPROTO;
	pthread_mutex_lock(&l->mu);
	if (l->count == l->depth) {
		pthread_mutex_unlock(&l->mu);
		return -EAGAIN;
	}
	l->q[(l->head + l->count) % l->depth] = *s;
	l->count++;
	l->next = s->pos + s->len;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

uint64_t vfm_loader_loaded(struct vfm_loader *l, int *err)
{
	if (err)
		*err = atomic_load(&l->err);
	return atomic_load_explicit(&l->loaded, memory_order_acquire);
}

unsigned int vfm_loader_queued(struct vfm_loader *l)
{
	unsigned int n;

	pthread_mutex_lock(&l->mu);
	n = l->count;
	pthread_mutex_unlock(&l->mu);
	return n;
}

int vfm_loader_fd(const struct vfm_loader *l)
{
	return l->efd;
}

int vfm_loader_drain(struct vfm_loader *l, int timeout_ms)
{
	struct timespec end;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	while (l->count && !atomic_load(&l->err) && !ret)
		ret = pthread_cond_timedwait(&l->cv, &l->mu, &end);
	pthread_mutex_unlock(&l->mu);
	if (atomic_load(&l->err))
		return atomic_load(&l->err);
	return ret ? -ETIMEDOUT : 0;
}

void vfm_loader_stop(struct vfm_loader *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	l->count = 0;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thr, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	close(l->efd);
	free(l->q);
	free(l);
}

int vfm_loader_tid(const struct vfm_loader *l)
{
	return atomic_load(&((struct vfm_loader *)l)->tid);
}

double vfm_loader_cpu_s(const struct vfm_loader *l)
{
	struct timespec ts;
	clockid_t cid;

	if (pthread_getcpuclockid(l->thr, &cid) || clock_gettime(cid, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
