// SPDX-License-Identifier: MIT
/*
 * rdma transport over a real RDMA device (soft-RoCE rxe0 in the test
 * guest). Skips (77) with the reason when this host has no RDMA device
 * or the rdma backend is not in this build.
 *
 * The address is VFM_RDMA_ADDR, else the IPv4 address of the network
 * device under the first RDMA device's port 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <infiniband/verbs.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "rdma_priv.h"
#include "xp_util.h"

static char addr[64];
static const struct vfm_xport_ops *ops;

static int find_addr(const char *dev)
{
	char path[256], ndev[IFNAMSIZ] = "";
	struct ifaddrs *ifa, *i;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/gid_attrs/ndevs/0", dev);
	f = fopen(path, "r");
	if (!f || !fgets(ndev, sizeof(ndev), f)) {
		if (f)
			fclose(f);
		return -ENOENT;
	}
	fclose(f);
	ndev[strcspn(ndev, "\n")] = '\0';
	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !strcmp(i->ifa_name, ndev)) {
			inet_ntop(
				AF_INET,
				&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				addr, sizeof(addr));
			break;
		}
	freeifaddrs(ifa);
	return addr[0] ? 0 : -ENOENT;
}

/* 0 when an RDMA device and its address are there; else prints why. */
static int rdma_present(void)
{
	struct ibv_device **list;
	const char *env = getenv("VFM_RDMA_ADDR");
	char name[64];
	int n = 0;

	ops = vfm_xport_find("rdma");
	if (!ops) {
		printf("SKIP: the rdma transport is not in this build\n");
		return 77;
	}
	list = ibv_get_device_list(&n);
	if (!list || n == 0) {
		printf("SKIP: no RDMA device on this host (ibv_get_device_list is empty); "
		       "the guest tests (tests/vm) run these on soft-RoCE\n");
		if (list)
			ibv_free_device_list(list);
		return 77;
	}
	snprintf(name, sizeof(name), "%s", ibv_get_device_name(list[0]));
	ibv_free_device_list(list);
	if (env && *env) {
		snprintf(addr, sizeof(addr), "%s", env);
		return 0;
	}
	if (find_addr(name)) {
		printf("FAIL: RDMA device %s has no IPv4 address on its network device; "
		       "set VFM_RDMA_ADDR\n",
		       name);
		return 1;
	}
	return 0;
}

#define TOTAL (16u << 20)

static int check_recv(struct xp_dst *d, const struct vfm_cqe *c)
{
	/* every write: imm = roff ^ len, in landing order per stream */
	return c->imm == (c->roff ^ c->len) ? 0 : -EBADMSG;
}

static void transfer(unsigned int streams, unsigned int depth, uint32_t seg)
{
	struct xp_dst d = { .ops = ops,
			    .addr = addr,
			    .cfg = { .streams = streams,
				     .depth = depth,
				     .max_write = seg,
				     .timeout_ms = 20000 } };
	struct vfm_xport *x;
	struct vfm_mr mr;
	uint8_t *src;
	uint64_t off = 0, done = 0, posted = 0;
	unsigned int s = 0, i;
	int err, n;

	src = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	d.land = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(src != MAP_FAILED && d.land != MAP_FAILED);
	xp_fill(src, TOTAL, 0);
	d.land_len = TOTAL;
	d.want = TOTAL;
	d.poll_timeout_ms = 30000;
	d.check = check_recv;
	xp_dst_start(&d);
	assert_int_equal(d.err, 0);
	assert_int_equal(ops->create(&x, &d.cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, TOTAL, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, addr, &d.info, 10000), 0);
	while (done < TOTAL) {
		struct vfm_cqe c[16];

		while (off < TOTAL) {
			/* sizes vary: seg, seg/3, 1 byte now and then */
			uint32_t len = (posted % 7 == 3) ? 1 :
				       (posted % 3 == 1) ? seg / 3 + 1 :
							   seg;

			if (len > TOTAL - off)
				len = (uint32_t)(TOTAL - off);
			err = vfm_xport_write(x, s, &mr, off, off, len,
					      off ^ len, off);
			if (err == -EAGAIN)
				break;
			assert_int_equal(err, 0);
			off += len;
			posted++;
			s = (s + 1) % streams;
		}
		n = vfm_xport_poll(x, c, 16, 20000);
		assert_true(n > 0);
		for (i = 0; i < (unsigned int)n; i++) {
			assert_int_equal(c[i].kind, VFM_CQE_SEND);
			assert_int_equal(c[i].status, 0);
			done += c[i].len;
		}
	}
	xp_dst_finish(&d);
	assert_int_equal(d.err, 0);
	assert_true(d.bytes == TOTAL);
	assert_true(d.recvs == posted);
	assert_memory_equal(d.land, src, TOTAL);
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	munmap(src, TOTAL);
	munmap(d.land, TOTAL);
}

static void test_1_stream(void **state)
{
	(void)state;
	transfer(1, 16, 1 << 20);
}

static void test_2_streams(void **state)
{
	(void)state;
	transfer(2, 8, 256 << 10);
}

static void test_4_streams(void **state)
{
	(void)state;
	transfer(4, 4, 512 << 10);
}

static void test_wrong_cookie_refused(void **state)
{
	struct xp_dst d = {
		.ops = ops,
		.addr = addr,
		.cfg = { .streams = 1, .depth = 4, .timeout_ms = 5000 }
	};
	struct vfm_xport_info bad;
	struct vfm_xport *x;

	(void)state;
	d.land = calloc(1, 65536);
	d.land_len = 65536;
	d.accept_timeout_ms = 3000;
	xp_dst_start(&d);
	assert_int_equal(d.err, 0);
	bad = d.info;
	bad.data[25] ^= 0x80; /* inside the cookie */
	assert_int_equal(ops->create(&x, &d.cfg), 0);
	assert_int_equal(vfm_xport_connect(x, addr, &bad, 5000), -ECONNREFUSED);
	vfm_xport_destroy(x);
	xp_dst_finish(&d);
	assert_int_equal(d.err, -ETIMEDOUT);
	free(d.land);
}

static void test_peer_goes_away(void **state)
{
	struct xp_dst d = {
		.ops = ops,
		.addr = addr,
		.cfg = { .streams = 2, .depth = 4, .timeout_ms = 5000 }
	};
	uint8_t *src = calloc(1, 1 << 20);
	struct vfm_xport *x;
	struct vfm_cqe c[8];
	struct vfm_mr mr;
	int64_t end;
	int n = 0;

	(void)state;
	d.land = calloc(1, 1 << 20);
	d.land_len = 1 << 20;
	d.want = 0; /* the destination thread returns after accept */
	xp_dst_start(&d);
	assert_int_equal(ops->create(&x, &d.cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, 1 << 20, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, addr, &d.info, 10000), 0);
	xp_dst_finish(&d); /* destination destroyed */
	end = xp_now_ms() + 15000;
	while (xp_now_ms() < end) {
		n = vfm_xport_write(x, 0, &mr, 0, 0, 4096, 0, 0);
		if (n < 0 && n != -EAGAIN)
			break;
		n = vfm_xport_poll(x, c, 8, 500);
		if (n < 0)
			break;
	}
	assert_true(n < 0);
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	free(d.land);
	free(src);
}

static void test_connect_nobody_listening(void **state)
{
	struct vfm_xport_cfg cfg = { .streams = 1,
				     .depth = 4,
				     .timeout_ms = 3000 };
	struct vfm_tcp_info ti = { .version = VFM_TCP_WIRE_VERSION,
				   .streams = 1,
				   .port = 1,
				   .landing_len = 4096 };
	struct vfm_xport_info info = { .len = VFM_TCP_INFO_LEN };
	struct vfm_xport *x;
	int err;

	(void)state;
	vfm_tcp_info_encode(info.data, &ti);
	assert_int_equal(ops->create(&x, &cfg), 0);
	err = vfm_xport_connect(x, addr, &info, 5000);
	assert_true(err == -ECONNREFUSED || err == -ETIMEDOUT ||
		    err == -EHOSTUNREACH);
	vfm_xport_destroy(x);
}

/*
 * A source that ignores the announced landing size (here: ours, with its
 * bound widened behind its back) is stopped by the NIC: the write fails
 * with a remote access error, and not a byte lands past the buffer.
 */
static void test_write_past_landing_refused_by_nic(void **state)
{
	struct xp_dst d = {
		.ops = ops,
		.addr = addr,
		.cfg = { .streams = 1, .depth = 4, .timeout_ms = 5000 }
	};
	uint8_t *src = malloc(1 << 16);
	struct vfm_xport *x;
	struct vfm_cqe c[4];
	struct vfm_mr mr;
	unsigned int i;
	int n;

	(void)state;
	memset(src, 0x42, 1 << 16);
	d.land = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(d.land + (1 << 20), 0xee, 1 << 20);
	d.land_len = 1 << 20;
	d.want = 1;
	d.poll_timeout_ms = 3000;
	xp_dst_start(&d);
	assert_int_equal(d.err, 0);
	assert_int_equal(ops->create(&x, &d.cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, 1 << 16, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, addr, &d.info, 10000), 0);
	assert_int_equal(vfm_xport_write(x, 0, &mr, 0, (1 << 20) - 4096, 8192,
					 0, 0),
			 -EINVAL);
	((struct vfm_rdma *)x)->rlen += 1 << 20;
	assert_int_equal(
		vfm_xport_write(x, 0, &mr, 0, (1 << 20) - 4096, 8192, 0, 0), 0);
	n = vfm_xport_poll(x, c, 4, 10000);
	assert_int_equal(n, -EACCES);
	xp_dst_finish(&d);
	assert_true(d.err < 0);
	for (i = 0; i < (1u << 20); i++)
		if (d.land[(1 << 20) + i] != 0xee)
			fail_msg("byte %u past the landing buffer changed", i);
	vfm_xport_destroy(x);
	munmap(d.land, 2 << 20);
	free(src);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/*
 * Connect, move 1 MiB, tear down, 50 times in one process: no fd growth,
 * and resident memory after the 50th no more than 8 MiB above the 5th.
 */
static void test_cycles_no_fd_growth(void **state)
{
	static uint8_t land[1 << 20], src[1 << 20];
	int before = xp_fd_count(), k;
	long rss5 = 0;

	(void)state;
	for (k = 0; k < 50; k++) {
		if (k == 5)
			rss5 = rss_kib();
		struct xp_dst d = {
			.ops = ops,
			.addr = addr,
			.cfg = { .streams = 2, .depth = 4, .timeout_ms = 5000 },
			.land = land,
			.land_len = sizeof(land),
			.want = sizeof(land)
		};
		struct vfm_xport *x;
		struct vfm_cqe c[8];
		struct vfm_mr mr;
		int done = 0, n;

		xp_dst_start(&d);
		assert_int_equal(d.err, 0);
		assert_int_equal(ops->create(&x, &d.cfg), 0);
		assert_int_equal(vfm_xport_reg(x, src, sizeof(src), &mr), 0);
		assert_int_equal(vfm_xport_connect(x, addr, &d.info, 10000), 0);
		assert_int_equal(
			vfm_xport_write(x, 0, &mr, 0, 0, 1 << 19, 0, 0), 0);
		assert_int_equal(vfm_xport_write(x, 1, &mr, 1 << 19, 1 << 19,
						 1 << 19, 0, 1),
				 0);
		while (done < 2) {
			n = vfm_xport_poll(x, c, 8, 10000);
			assert_true(n > 0);
			done += n;
		}
		xp_dst_finish(&d);
		vfm_xport_dereg(x, &mr);
		vfm_xport_destroy(x);
	}
	assert_int_equal(xp_fd_count(), before);
	printf("# rss after cycle 5: %ld KiB, after 50: %ld KiB\n", rss5,
	       rss_kib());
	assert_true(rss_kib() - rss5 < 8192);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_1_stream),
		cmocka_unit_test(test_2_streams),
		cmocka_unit_test(test_4_streams),
		cmocka_unit_test(test_wrong_cookie_refused),
		cmocka_unit_test(test_peer_goes_away),
		cmocka_unit_test(test_connect_nobody_listening),
		cmocka_unit_test(test_write_past_landing_refused_by_nic),
		cmocka_unit_test(test_cycles_no_fd_growth),
	};
	int rc = rdma_present();

	if (rc)
		return rc;
	printf("# rdma tests on %s\n", addr);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
