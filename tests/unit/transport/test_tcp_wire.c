// SPDX-License-Identifier: MIT
/* tcp wire formats: round trips, CRC, and rejection of damaged input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tcp_wire.h"
#include "vfm/transport.h"

static void test_crc32c_vector(void **state)
{
	(void)state;
	/* The standard check value of CRC-32C. */
	assert_int_equal(vfm_tcp_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(vfm_tcp_crc32c("", 0), 0);
}

static void test_hdr_roundtrip_and_damage(void **state)
{
	struct vfm_tcp_hdr h = { .len = 0x12345,
				 .roff = 0x1122334455667788ull,
				 .imm = 0xdeadbeefcafef00dull,
				 .seq = 7 };
	struct vfm_tcp_hdr g;
	uint8_t b[VFM_TCP_HDR_LEN];
	unsigned int i;

	(void)state;
	vfm_tcp_hdr_encode(b, &h);
	assert_int_equal(vfm_tcp_hdr_decode(&g, b), 0);
	assert_int_equal(g.len, h.len);
	assert_true(g.roff == h.roff);
	assert_true(g.imm == h.imm);
	assert_int_equal(g.seq, h.seq);
	/* Any single flipped bit is caught (magic or CRC). */
	for (i = 0; i < VFM_TCP_HDR_LEN * 8; i++) {
		b[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(vfm_tcp_hdr_decode(&g, b), -EPROTO);
		b[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
}

static void test_info_roundtrip(void **state)
{
	struct vfm_tcp_info in = { .version = VFM_TCP_WIRE_VERSION,
				   .streams = 4,
				   .port = 40000,
				   .landing_len = 1ull << 33 };
	struct vfm_tcp_info out;
	uint8_t b[VFM_TCP_INFO_LEN];

	(void)state;
	memset(in.cookie, 0xa5, sizeof(in.cookie));
	assert_true(VFM_TCP_INFO_LEN <= VFM_XPORT_INFO_MAX);
	vfm_tcp_info_encode(b, &in);
	assert_int_equal(vfm_tcp_info_decode(&out, b, sizeof(b)), 0);
	assert_int_equal(out.streams, 4);
	assert_int_equal(out.port, 40000);
	assert_true(out.landing_len == in.landing_len);
	assert_memory_equal(out.cookie, in.cookie, VFM_TCP_COOKIE_LEN);
	assert_int_equal(vfm_tcp_info_decode(&out, b, sizeof(b) - 1), -EINVAL);
	b[0] ^= 1;
	assert_int_equal(vfm_tcp_info_decode(&out, b, sizeof(b)), -EINVAL);
	b[0] ^= 1;
	b[4] = 9; /* version */
	assert_int_equal(vfm_tcp_info_decode(&out, b, sizeof(b)),
			 -EPROTONOSUPPORT);
}

static void test_greet_ack(void **state)
{
	struct vfm_tcp_greet in = { .version = VFM_TCP_WIRE_VERSION,
				    .stream = 3,
				    .streams = 4 };
	struct vfm_tcp_greet out;
	uint8_t b[VFM_TCP_GREET_LEN], a[VFM_TCP_ACK_LEN];

	(void)state;
	memset(in.cookie, 0x3c, sizeof(in.cookie));
	vfm_tcp_greet_encode(b, &in);
	assert_int_equal(vfm_tcp_greet_decode(&out, b), 0);
	assert_int_equal(out.stream, 3);
	assert_int_equal(out.streams, 4);
	assert_memory_equal(out.cookie, in.cookie, VFM_TCP_COOKIE_LEN);
	b[1] ^= 0xff;
	assert_int_equal(vfm_tcp_greet_decode(&out, b), -EPROTO);
	vfm_tcp_ack_encode(a);
	assert_true(vfm_tcp_ack_valid(a));
	a[4] = 1;
	assert_false(vfm_tcp_ack_valid(a));
}

static void test_find(void **state)
{
	(void)state;
	assert_non_null(vfm_xport_find("tcp"));
	assert_string_equal(vfm_xport_find("tcp")->name, "tcp");
	assert_null(vfm_xport_find("nope"));
	assert_null(vfm_xport_find(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vector),
		cmocka_unit_test(test_hdr_roundtrip_and_damage),
		cmocka_unit_test(test_info_roundtrip),
		cmocka_unit_test(test_greet_ack),
		cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
