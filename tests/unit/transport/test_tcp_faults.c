// SPDX-License-Identifier: MIT
/*
 * tcp faults: hostile and broken peers. Out-of-bounds and forged headers,
 * wrong session cookies, a source killed or silent mid-transfer, a
 * destination that closes or stops reading, a closed port. Every case
 * must end in a clean negative errno within its time bound, never a
 * crash, a hang, or a byte outside the landing buffer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "xp_util.h"

#define LAND (1u << 20)
#define GUARD (1u << 20)

static const struct vfm_xport_ops *tcp(void)
{
	return vfm_xport_find("tcp");
}

/* A destination thread over a landing buffer followed by a guard area. */
static void dst_with_guard(struct xp_dst *d, unsigned int streams,
			   int timeout_ms)
{
	memset(d, 0, sizeof(*d));
	d->cfg = (struct vfm_xport_cfg){ .streams = streams,
					 .max_write = LAND,
					 .depth = 4,
					 .timeout_ms = timeout_ms };
	d->land = mmap(NULL, LAND + GUARD, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(d->land != MAP_FAILED);
	memset(d->land + LAND, 0xee, GUARD);
	d->land_len = LAND;
	d->want = ~0ull;
	d->poll_timeout_ms = 5000;
	xp_dst_start(d);
	assert_int_equal(d->err, 0);
}

/* Ends the destination; with @clean, no landing byte may have changed. */
static void dst_done_check(struct xp_dst *d, bool clean)
{
	unsigned int i;

	xp_dst_finish(d);
	for (i = 0; i < GUARD; i++)
		if (d->land[LAND + i] != 0xee)
			fail_msg("byte %u past the landing buffer changed", i);
	for (i = 0; clean && i < LAND; i++)
		if (d->land[i])
			fail_msg("landing byte %u written by a rejected write",
				 i);
	munmap(d->land, LAND + GUARD);
}

static void dst_done(struct xp_dst *d)
{
	dst_done_check(d, false);
}

/* Greets correctly as stream 0 of 1, then sends @hdr and @n payload bytes. */
static int raw_source(const struct xp_dst *d, const uint8_t *hdr, size_t n)
{
	struct vfm_tcp_info info;
	uint8_t *junk;
	int fd, acked;

	assert_int_equal(xp_info(&d->info, &info), 0);
	fd = xp_raw_greet(info.port, info.cookie, 0, 1, &acked);
	assert_true(fd >= 0);
	assert_true(acked);
	xp_send_all(fd, hdr, VFM_TCP_HDR_LEN);
	junk = malloc(n ? n : 1);
	memset(junk, 0x77, n ? n : 1);
	xp_send_all(fd, junk, n); /* may fail once the peer gave up */
	free(junk);
	return fd;
}

static void forged(uint64_t roff, uint32_t len, uint32_t seq, int corrupt,
		   size_t payload, int want_err)
{
	struct vfm_tcp_hdr h = {
		.len = len, .roff = roff, .imm = 1, .seq = seq
	};
	uint8_t b[VFM_TCP_HDR_LEN];
	struct xp_dst d;
	int fd;

	dst_with_guard(&d, 1, 5000);
	vfm_tcp_hdr_encode(b, &h);
	if (corrupt)
		b[10] ^= 0x40;
	fd = raw_source(&d, b, payload);
	dst_done_check(&d, true);
	assert_int_equal(d.err, want_err);
	assert_true(d.recvs == 0);
	close(fd);
}

static void test_out_of_bounds_write(void **state)
{
	(void)state;
	forged(LAND - 100, 4096, 0, 0, 4096, -EPROTO);
}

static void test_offset_overflow(void **state)
{
	(void)state;
	forged(UINT64_MAX - 10, 100, 0, 0, 100, -EPROTO);
	forged(LAND + 1, 0, 0, 0, 0, -EPROTO);
}

static void test_bad_header_crc(void **state)
{
	(void)state;
	forged(0, 4096, 0, 1, 4096, -EPROTO);
}

static void test_bad_sequence(void **state)
{
	(void)state;
	forged(0, 4096, 5, 0, 4096, -EPROTO);
}

static void test_garbage_stream(void **state)
{
	uint8_t b[VFM_TCP_HDR_LEN];
	struct xp_dst d;
	int fd;

	(void)state;
	memcpy(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n.....", sizeof(b));
	dst_with_guard(&d, 1, 5000);
	fd = raw_source(&d, b, 1000);
	dst_done(&d);
	assert_int_equal(d.err, -EPROTO);
	close(fd);
}

/* The source closes in the middle of a payload. */
static void test_source_closes_mid_payload(void **state)
{
	struct vfm_tcp_hdr h = { .len = 65536, .roff = 0, .seq = 0 };
	uint8_t b[VFM_TCP_HDR_LEN];
	struct xp_dst d;
	int fd;

	(void)state;
	vfm_tcp_hdr_encode(b, &h);
	dst_with_guard(&d, 1, 5000);
	fd = raw_source(&d, b, 1000);
	close(fd);
	dst_done(&d);
	assert_int_equal(d.err, -ECONNRESET);
}

/* The source goes silent in the middle of a payload: stall timeout. */
static void test_source_stalls(void **state)
{
	struct vfm_tcp_hdr h = { .len = 65536, .roff = 0, .seq = 0 };
	uint8_t b[VFM_TCP_HDR_LEN];
	struct xp_dst d;
	int64_t t0;
	int fd;

	(void)state;
	vfm_tcp_hdr_encode(b, &h);
	dst_with_guard(&d, 1, 300);
	t0 = xp_now_ms();
	fd = raw_source(&d, b, 1000);
	dst_done(&d);
	assert_int_equal(d.err, -ETIMEDOUT);
	assert_true(xp_now_ms() - t0 < 4000);
	close(fd);
}

static void test_wrong_cookie(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 2,
				     .depth = 4,
				     .timeout_ms = 5000 };
	struct vfm_xport_info bad;
	struct vfm_tcp_info info;
	uint8_t cookie[VFM_TCP_COOKIE_LEN], c;
	struct vfm_xport *x;
	struct xp_dst d;
	int fd, acked;

	(void)state;
	dst_with_guard(&d, 2, 5000);
	d.want = 0;
	assert_int_equal(xp_info(&d.info, &info), 0);
	/* wrong cookie */
	memcpy(cookie, info.cookie, sizeof(cookie));
	cookie[3] ^= 1;
	fd = xp_raw_greet(info.port, cookie, 0, 2, &acked);
	assert_true(fd >= 0);
	assert_false(acked);
	assert_int_equal(recv(fd, &c, 1, 0), 0); /* closed by the peer */
	close(fd);
	/* right cookie, stream index out of range / wrong stream count */
	fd = xp_raw_greet(info.port, info.cookie, 2, 2, &acked);
	assert_false(acked);
	close(fd);
	fd = xp_raw_greet(info.port, info.cookie, 0, 3, &acked);
	assert_false(acked);
	close(fd);
	/* a real source holding a tampered blob is refused */
	bad = d.info;
	bad.data[25] ^= 0x80; /* inside the cookie */
	assert_int_equal(tcp()->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &bad, 3000),
			 -ECONNREFUSED);
	vfm_xport_destroy(x);
	/* the destination still accepts the real source afterwards */
	assert_int_equal(tcp()->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &d.info, 3000), 0);
	dst_done(&d);
	assert_int_equal(d.err, 0);
	vfm_xport_destroy(x);
}

static void test_accept_times_out(void **state)
{
	struct xp_dst d;
	int64_t t0 = xp_now_ms();

	(void)state;
	memset(&d, 0, sizeof(d));
	d.cfg = (struct vfm_xport_cfg){ .streams = 1,
					.depth = 1,
					.timeout_ms = 1000 };
	d.land = malloc(4096);
	d.land_len = 4096;
	d.accept_timeout_ms = 300;
	xp_dst_start(&d);
	xp_dst_finish(&d);
	assert_int_equal(d.err, -ETIMEDOUT);
	assert_true(xp_now_ms() - t0 < 3000);
	free(d.land);
}

static void test_connect_closed_port(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 1,
				     .depth = 4,
				     .timeout_ms = 2000 };
	struct vfm_tcp_info ti = { .version = VFM_TCP_WIRE_VERSION,
				   .streams = 1,
				   .landing_len = 4096 };
	struct vfm_xport_info info = { .len = VFM_TCP_INFO_LEN };
	struct vfm_xport *x;
	int port = xp_closed_port();

	(void)state;
	assert_true(port > 0);
	ti.port = (uint16_t)port;
	vfm_tcp_info_encode(info.data, &ti);
	assert_int_equal(tcp()->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &info, 2000),
			 -ECONNREFUSED);
	/* a blob that is not ours */
	info.data[0] ^= 1;
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &info, 2000),
			 -EINVAL);
	vfm_xport_destroy(x);
}

/* Post 1 MiB writes round-robin until poll fails; returns its errno. */
static int pump_until_error(struct vfm_xport *x, struct vfm_mr *mr,
			    unsigned int streams, int64_t limit_ms)
{
	int64_t end = xp_now_ms() + limit_ms;
	uint64_t id = 0;
	unsigned int s;
	int n;

	while (xp_now_ms() < end) {
		struct vfm_cqe c[16];

		for (s = 0; s < streams; s++) {
			n = vfm_xport_write(x, s, mr, 0, 0, (uint32_t)mr->len,
					    0, id++);
			if (n < 0 && n != -EAGAIN)
				return n;
		}
		n = vfm_xport_poll(x, c, 16, 100);
		if (n < 0)
			return n;
	}
	return 0;
}

static void test_destination_closes(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 2,
				     .depth = 4,
				     .timeout_ms = 3000 };
	struct vfm_xport *x;
	struct vfm_mr mr;
	struct xp_dst d;
	uint8_t *src = calloc(1, LAND);
	int64_t t0;
	int err;

	(void)state;
	dst_with_guard(&d, 2, 5000);
	d.want = 0; /* the thread returns right after accept */
	assert_int_equal(tcp()->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, LAND, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &d.info, 3000), 0);
	dst_done(&d); /* destroys the destination */
	t0 = xp_now_ms();
	err = pump_until_error(x, &mr, 2, 10000);
	assert_true(err == -ECONNRESET || err == -EPIPE);
	assert_true(xp_now_ms() - t0 < 3000);
	vfm_xport_destroy(x);
	free(src);
}

/* A destination that accepts the streams and then never reads. */
struct mute_dst {
	int lfd, fd;
	struct vfm_xport_info info;
	uint8_t cookie[VFM_TCP_COOKIE_LEN];
	pthread_t thr;
};

static void *mute_main(void *arg)
{
	struct mute_dst *m = arg;
	uint8_t b[VFM_TCP_GREET_LEN];
	size_t got = 0;

	m->fd = accept(m->lfd, NULL, NULL);
	while (m->fd >= 0 && got < sizeof(b)) {
		ssize_t r = recv(m->fd, b + got, sizeof(b) - got, 0);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	vfm_tcp_ack_encode(b);
	xp_send_all(m->fd, b, VFM_TCP_ACK_LEN);
	return NULL;
}

static void test_destination_stalls(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 1,
				     .depth = 8,
				     .timeout_ms = 500 };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct vfm_tcp_info ti = { .version = VFM_TCP_WIRE_VERSION,
				   .streams = 1,
				   .landing_len = LAND };
	socklen_t sl = sizeof(sa);
	struct mute_dst m = { .fd = -1 };
	uint8_t *src = calloc(1, LAND);
	struct vfm_xport *x;
	struct vfm_mr mr;
	int64_t t0;
	int err;

	(void)state;
	m.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(m.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(m.lfd, 4), 0);
	assert_int_equal(getsockname(m.lfd, (struct sockaddr *)&sa, &sl), 0);
	ti.port = ntohs(sa.sin_port);
	m.info.len = VFM_TCP_INFO_LEN;
	vfm_tcp_info_encode(m.info.data, &ti);
	pthread_create(&m.thr, NULL, mute_main, &m);
	assert_int_equal(tcp()->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, LAND, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &m.info, 3000), 0);
	pthread_join(m.thr, NULL);
	t0 = xp_now_ms();
	err = pump_until_error(x, &mr, 1, 20000);
	assert_int_equal(err, -ETIMEDOUT);
	/* socket buffers fill first (a few MiB), then 500 ms of nothing */
	assert_true(xp_now_ms() - t0 < 10000);
	vfm_xport_destroy(x);
	close(m.fd);
	close(m.lfd);
	free(src);
}

/* A real source process killed with SIGKILL in the middle of a transfer. */
static void test_source_killed(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 2,
				     .depth = 4,
				     .timeout_ms = 5000 };
	int pinfo[2];
	struct xp_dst d;
	int64_t t0;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(pinfo), 0);
	pid = fork(); /* before any thread exists */
	assert_true(pid >= 0);
	if (!pid) {
		struct vfm_xport_info info;
		struct vfm_xport *x;
		struct vfm_mr mr;
		uint8_t *src = calloc(1, LAND);

		if (read(pinfo[0], &info, sizeof(info)) != sizeof(info))
			_exit(1);
		if (tcp()->create(&x, &cfg) ||
		    vfm_xport_reg(x, src, LAND, &mr) ||
		    vfm_xport_connect(x, "127.0.0.1", &info, 3000))
			_exit(1);
		pump_until_error(x, &mr, 2, 60000);
		_exit(0);
	}
	close(pinfo[0]);
	dst_with_guard(&d, 2, 5000);
	assert_int_equal(write(pinfo[1], &d.info, sizeof(d.info)),
			 (ssize_t)sizeof(d.info));
	close(pinfo[1]);
	while (__atomic_load_n(&d.bytes, __ATOMIC_RELAXED) < (8u << 20) &&
	       !__atomic_load_n(&d.err, __ATOMIC_RELAXED))
		usleep(1000);
	t0 = xp_now_ms();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	dst_done(&d);
	assert_int_equal(d.err, -ECONNRESET);
	assert_true(xp_now_ms() - t0 < 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_out_of_bounds_write),
		cmocka_unit_test(test_offset_overflow),
		cmocka_unit_test(test_bad_header_crc),
		cmocka_unit_test(test_bad_sequence),
		cmocka_unit_test(test_garbage_stream),
		cmocka_unit_test(test_source_closes_mid_payload),
		cmocka_unit_test(test_source_stalls),
		cmocka_unit_test(test_wrong_cookie),
		cmocka_unit_test(test_accept_times_out),
		cmocka_unit_test(test_connect_closed_port),
		cmocka_unit_test(test_destination_closes),
		cmocka_unit_test(test_destination_stalls),
		cmocka_unit_test(test_source_killed),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
