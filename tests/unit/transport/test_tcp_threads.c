// SPDX-License-Identifier: MIT
/*
 * The tcp data plane scales with cores: every stream is served by a worker
 * thread of its own, on both ends, sealed or not. Each stream's work is
 * traced to the thread id (gettid) that did it (vfm_tcp_stream_tid); the
 * test asserts that two streams' ids differ, that none is the caller's,
 * and that each is a live thread of this process while the transport
 * exists. VFM_TCP_THREADS=1 puts both streams on one worker. No timing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcp_conn.h"
#include "xp_util.h"

#define LAND (4u << 20)
#define SEG (256u << 10)
#define PER_STREAM 8u
#define STREAMS 2u

static const uint8_t key[32] = "vfmig threads test key, 32 byte";

struct seen {
	int caller; /* the destination's caller thread */
	int tid[STREAMS]; /* worker that delivered the stream's writes */
	bool live[STREAMS]; /* that worker was a thread of this process */
	bool stable[STREAMS]; /* every write of the stream: the same one */
};

static int my_tid(void)
{
	return (int)syscall(SYS_gettid);
}

static bool thread_live(int tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d", tid);
	return tid > 0 && access(path, F_OK) == 0;
}

/* Runs on the destination's caller thread for every RECV completion. */
static int on_recv(struct xp_dst *d, const struct vfm_cqe *c)
{
	struct seen *s = d->priv;
	int tid;

	if (c->stream >= STREAMS)
		return -EPROTO;
	tid = vfm_tcp_stream_tid(d->x, c->stream);
	s->caller = my_tid();
	if (!s->tid[c->stream]) {
		s->tid[c->stream] = tid;
		s->stable[c->stream] = true;
	}
	if (tid != s->tid[c->stream])
		s->stable[c->stream] = false;
	s->live[c->stream] = thread_live(tid);
	return 0;
}

/* Moves PER_STREAM writes on each of two streams; fills the source's
 * worker ids into @src_tid and the destination's into @dst. */
static void transfer(const uint8_t *k, int src_tid[STREAMS], struct seen *dst)
{
	struct vfm_xport_cfg cfg = { .streams = STREAMS,
				     .max_write = SEG,
				     .depth = 4,
				     .timeout_ms = 10000,
				     .aead_key = k };
	const size_t len = (size_t)STREAMS * PER_STREAM * SEG;
	uint8_t *buf = malloc(len);
	unsigned int posted = 0, done = 0;
	struct vfm_xport *x;
	struct vfm_mr mr;
	struct vfm_cqe c[16];
	struct xp_dst d;

	assert_non_null(buf);
	xp_fill(buf, len, 0);
	memset(dst, 0, sizeof(*dst));
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.land = calloc(1, LAND);
	assert_non_null(d.land);
	d.land_len = LAND;
	d.want = len;
	d.poll_timeout_ms = 10000;
	d.check = on_recv;
	d.priv = dst;
	xp_dst_start(&d);
	assert_int_equal(d.err, 0);

	assert_int_equal(vfm_xport_tcp_ops.create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, buf, len, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &d.info, 5000), 0);
	while (done < STREAMS * PER_STREAM) {
		while (posted < STREAMS * PER_STREAM) {
			unsigned int st = posted % STREAMS;
			uint64_t off = (uint64_t)posted * SEG;
			int err = vfm_xport_write(x, st, &mr, off, off % LAND,
						  SEG, off, posted);

			if (err == -EAGAIN)
				break;
			assert_int_equal(err, 0);
			posted++;
		}
		int n = vfm_xport_poll(x, c, 16, 10000);

		assert_true(n > 0);
		done += (unsigned int)n;
	}
	for (unsigned int i = 0; i < STREAMS; i++) {
		src_tid[i] = vfm_tcp_stream_tid(x, i);
		assert_true(thread_live(src_tid[i]));
	}
	vfm_xport_destroy(x);
	xp_dst_finish(&d);
	assert_int_equal(d.err, 0);
	assert_true(d.bytes == len);
	/* gone with the transport */
	for (unsigned int i = 0; i < STREAMS; i++)
		assert_false(thread_live(src_tid[i]));
	free(d.land);
	free(buf);
}

static void check_parallel(const uint8_t *k)
{
	int src[STREAMS];
	struct seen dst;

	unsetenv("VFM_TCP_THREADS");
	transfer(k, src, &dst);
	/* source: one worker per stream, none of them the caller */
	assert_true(src[0] > 0 && src[1] > 0);
	assert_int_not_equal(src[0], src[1]);
	assert_int_not_equal(src[0], my_tid());
	assert_int_not_equal(src[1], my_tid());
	/* destination: the same, seen while the writes were delivered */
	for (unsigned int i = 0; i < STREAMS; i++) {
		assert_true(dst.tid[i] > 0);
		assert_true(dst.live[i]);
		assert_true(dst.stable[i]);
		assert_int_not_equal(dst.tid[i], dst.caller);
	}
	assert_int_not_equal(dst.tid[0], dst.tid[1]);
}

static void test_two_streams_two_threads(void **state)
{
	(void)state;
	check_parallel(NULL);
}

/* Sealing and opening run on the workers too. */
static void test_two_sealed_streams_two_threads(void **state)
{
	(void)state;
	check_parallel(key);
}

static void test_threads_capped(void **state)
{
	int src[STREAMS];
	struct seen dst;

	(void)state;
	setenv("VFM_TCP_THREADS", "1", 1);
	transfer(NULL, src, &dst);
	unsetenv("VFM_TCP_THREADS");
	assert_int_equal(src[0], src[1]);
	assert_int_not_equal(src[0], my_tid());
	assert_int_equal(dst.tid[0], dst.tid[1]);
	assert_int_not_equal(dst.tid[0], dst.caller);
}

static void test_tid_hook_refuses_bad_stream(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 2, .depth = 4 };
	struct vfm_xport *x;

	(void)state;
	assert_int_equal(vfm_xport_tcp_ops.create(&x, &cfg), 0);
	/* not connected yet: no worker */
	assert_int_equal(vfm_tcp_stream_tid(x, 0), 0);
	assert_int_equal(vfm_tcp_stream_tid(x, 2), -EINVAL);
	vfm_xport_destroy(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_streams_two_threads),
		cmocka_unit_test(test_two_sealed_streams_two_threads),
		cmocka_unit_test(test_threads_capped),
		cmocka_unit_test(test_tid_hook_refuses_bad_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
