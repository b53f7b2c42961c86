// SPDX-License-Identifier: MIT
/*
 * tcp object lifecycle and API edges: create/destroy cycles leak no fd,
 * argument checks, a full queue says -EAGAIN, zero-length writes carry
 * their tag, several registrations, destroy with writes in flight.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xp_util.h"

static const struct vfm_xport_ops *tcp(void)
{
	return vfm_xport_find("tcp");
}

/* One connected pair: destination thread + source here. */
static void pair(struct xp_dst *d, struct vfm_xport **src, unsigned int streams,
		 uint8_t *land, size_t land_len, uint64_t want)
{
	struct vfm_xport_cfg cfg = { .streams = streams,
				     .depth = 4,
				     .timeout_ms = 5000 };

	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->land = land;
	d->land_len = land_len;
	d->want = want;
	xp_dst_start(d);
	assert_int_equal(d->err, 0);
	assert_int_equal(tcp()->create(src, &cfg), 0);
	assert_int_equal(vfm_xport_connect(*src, "127.0.0.1", &d->info, 3000),
			 0);
}

static void test_create_destroy_no_fd_growth(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 4,
				     .depth = 8,
				     .timeout_ms = 1000 };
	static uint8_t buf[65536], land[65536];
	int before, i;

	(void)state;
	before = xp_fd_count();
	assert_true(before > 0);
	for (i = 0; i < 100; i++) {
		struct vfm_xport_info info;
		struct vfm_xport *x, *s;
		struct vfm_mr mr, smr;
		struct vfm_cqe c;
		struct xp_dst d;

		/* created, registered, listening, never connected */
		assert_int_equal(tcp()->create(&x, &cfg), 0);
		assert_int_equal(vfm_xport_reg(x, buf, sizeof(buf), &mr), 0);
		assert_int_equal(vfm_xport_listen(x, "127.0.0.1", &mr, &info),
				 0);
		vfm_xport_destroy(x);
		if (i % 10)
			continue;
		/* every tenth round: a connected pair with traffic in flight */
		pair(&d, &s, 2, land, sizeof(land), 4096);
		assert_int_equal(vfm_xport_reg(s, buf, sizeof(buf), &smr), 0);
		assert_int_equal(vfm_xport_write(s, 0, &smr, 0, 0, 4096, 1, 1),
				 0);
		assert_int_equal(
			vfm_xport_write(s, 1, &smr, 0, 4096, 60000, 2, 2), 0);
		assert_true(vfm_xport_poll(s, &c, 1, 5000) == 1);
		xp_dst_finish(&d);
		vfm_xport_destroy(s); /* maybe with a write still queued */
	}
	assert_int_equal(xp_fd_count(), before);
}

static void test_argument_checks(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 1,
				     .depth = 2,
				     .timeout_ms = 1000 };
	static uint8_t buf[4096];
	struct vfm_xport_info info;
	struct vfm_xport *x;
	struct vfm_cqe c;
	struct vfm_mr mr;

	(void)state;
	cfg.streams = 0;
	assert_int_equal(tcp()->create(&x, &cfg), -EINVAL);
	cfg.streams = 1000;
	assert_int_equal(tcp()->create(&x, &cfg), -EINVAL);
	cfg.streams = 1;
	assert_int_equal(tcp()->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, buf, sizeof(buf), &mr), 0);
	assert_int_equal(vfm_xport_poll(x, &c, 1, 0), -ENOTCONN);
	assert_int_equal(vfm_xport_write(x, 0, &mr, 0, 0, 1, 0, 0), -ENOTCONN);
	assert_int_equal(vfm_xport_accept(x, 10), -EINVAL);
	assert_int_equal(
		vfm_xport_listen(x, "no.such.host.invalid", &mr, &info) < 0, 1);
	assert_int_equal(vfm_xport_listen(x, "127.0.0.1", &mr, &info), 0);
	assert_true(info.len > 0 && info.len <= VFM_XPORT_INFO_MAX);
	assert_int_equal(vfm_xport_listen(x, "127.0.0.1", &mr, &info),
			 -EALREADY);
	assert_int_equal(vfm_xport_accept(x, 50), -ETIMEDOUT);
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	vfm_xport_destroy(NULL);
}

static int check_tags(struct xp_dst *d, const struct vfm_cqe *c)
{
	/* imm == roff + len + 1000 for every write of this test */
	return c->imm == c->roff + c->len + 1000 ? 0 : -EBADMSG;
}

static void test_queue_full_and_zero_length(void **state)
{
	static uint8_t land[1 << 20], a[1 << 16], b[1 << 16];
	struct vfm_xport *s;
	struct vfm_mr ma, mb;
	struct vfm_cqe c[8];
	struct xp_dst d;
	unsigned int k, sent = 0;
	int n, i;

	(void)state;
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	pair(&d, &s, 1, land, sizeof(land), 4 * sizeof(a) + 2 * sizeof(b));
	d.check = check_tags; /* read by the thread only after a RECV */
	assert_int_equal(vfm_xport_reg(s, a, sizeof(a), &ma), 0);
	assert_int_equal(vfm_xport_reg(s, b, sizeof(b), &mb), 0);
	/* local and remote bounds are checked before anything is sent */
	assert_int_equal(vfm_xport_write(s, 0, &ma, 1, 0, sizeof(a), 0, 0),
			 -EINVAL);
	assert_int_equal(vfm_xport_write(s, 0, &ma, 0, sizeof(land) - 10, 11, 0,
					 0),
			 -EINVAL);
	assert_int_equal(vfm_xport_write(s, 1, &ma, 0, 0, 1, 0, 0), -EINVAL);
	/* depth 4: the fifth write waits */
	for (k = 0; k < 4; k++)
		assert_int_equal(
			vfm_xport_write(s, 0, &ma, 0, k * sizeof(a), sizeof(a),
					k * sizeof(a) + sizeof(a) + 1000, k),
			0);
	assert_int_equal(vfm_xport_write(s, 0, &ma, 0, 0, 1, 0, 9), -EAGAIN);
	while (sent < 4) {
		n = vfm_xport_poll(s, c, 8, 5000);
		assert_true(n > 0);
		for (i = 0; i < n; i++) {
			assert_int_equal(c[i].kind, VFM_CQE_SEND);
			assert_true(c[i].wr_id ==
				    sent); /* in order per stream */
			sent++;
		}
	}
	/* zero-length write: only the tag travels */
	assert_int_equal(vfm_xport_write(s, 0, &mb, 0, 77, 0, 77 + 1000, 50),
			 0);
	assert_int_equal(vfm_xport_write(s, 0, &mb, 0, 4 * sizeof(a), sizeof(b),
					 4 * sizeof(a) + sizeof(b) + 1000, 51),
			 0);
	assert_int_equal(vfm_xport_write(s, 0, &mb, 0,
					 4 * sizeof(a) + sizeof(b), sizeof(b),
					 4 * sizeof(a) + 2 * sizeof(b) + 1000,
					 52),
			 0);
	while (sent < 7) {
		n = vfm_xport_poll(s, c, 8, 5000);
		assert_true(n > 0);
		sent += (unsigned int)n;
	}
	/* nothing queued: an infinite poll must not hang */
	assert_int_equal(vfm_xport_poll(s, c, 8, -1), 0);
	xp_dst_finish(&d);
	assert_int_equal(d.err, 0);
	assert_true(d.recvs == 7);
	for (k = 0; k < 4 * sizeof(a); k++)
		assert_int_equal(land[k], 0xaa);
	for (; k < 4 * sizeof(a) + 2 * sizeof(b); k++)
		assert_int_equal(land[k], 0xbb);
	vfm_xport_dereg(s, &ma);
	vfm_xport_dereg(s, &mb);
	vfm_xport_destroy(s);
}

/* A caller that only ever polls with timeout 0 still makes progress. */
static void test_poll_without_waiting(void **state)
{
	static uint8_t land[4 << 20], src[4 << 20];
	struct vfm_xport *s;
	struct vfm_cqe c[8];
	struct vfm_mr mr;
	struct xp_dst d;
	unsigned int k, posted = 0, done = 0;
	int64_t end = xp_now_ms() + 20000;
	int n;

	(void)state;
	xp_fill(src, sizeof(src), 0);
	memset(&d, 0, sizeof(d));
	d.cfg = (struct vfm_xport_cfg){ .streams = 2,
					.depth = 4,
					.timeout_ms = 5000 };
	d.land = land;
	d.land_len = sizeof(land);
	d.want = sizeof(land);
	d.spin = 1;
	xp_dst_start(&d);
	assert_int_equal(d.err, 0);
	assert_int_equal(tcp()->create(&s, &d.cfg), 0);
	assert_int_equal(vfm_xport_reg(s, src, sizeof(src), &mr), 0);
	assert_int_equal(vfm_xport_connect(s, "127.0.0.1", &d.info, 3000), 0);
	while (done < 64 && xp_now_ms() < end) {
		while (posted < 64) {
			n = vfm_xport_write(s, posted % 2, &mr,
					    posted * 65536ul, posted * 65536ul,
					    65536, posted, posted);
			if (n == -EAGAIN)
				break;
			assert_int_equal(n, 0);
			posted++;
		}
		n = vfm_xport_poll(s, c, 8, 0);
		assert_true(n >= 0);
		done += (unsigned int)n;
	}
	assert_int_equal(done, 64);
	xp_dst_finish(&d);
	assert_int_equal(d.err, 0);
	for (k = 0; k < sizeof(land); k++)
		assert_int_equal(land[k], src[k]);
	vfm_xport_dereg(s, &mr);
	vfm_xport_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_destroy_no_fd_growth),
		cmocka_unit_test(test_argument_checks),
		cmocka_unit_test(test_queue_full_and_zero_length),
		cmocka_unit_test(test_poll_without_waiting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
