// SPDX-License-Identifier: MIT
/*
 * Wire format: the generic builder/parser, typed round trips, golden byte
 * vectors, unknown TLVs, caps, and every truncation and single-byte
 * corruption of every valid frame.
 *
 * Golden vectors live in golden/ (one .hex file per frame). If an encoding changes on purpose,
 * regenerate them with
 *     VFM_GOLDEN_UPDATE=1 ./test_proto_wire
 * (and ./test_proto_handshake), review `git diff tests/unit/proto/golden`,
 * and say in the commit why the wire format changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_test_util.h"

static uint8_t buf[VFM_WIRE_FRAME_MAX], buf2[VFM_WIRE_FRAME_MAX];

static void test_builder_parser(void **state)
{
	struct vfm_msgb b;
	struct vfm_msg m;
	struct vfm_tlv_iter it, nit;
	struct vfm_tlv t, nt;
	struct vfm_err e;
	size_t len, mark;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	char s[8];

	assert_int_equal(vfm_msg_init(&b, buf, sizeof(buf), 0x41), 0);
	vfm_msg_put_u8(&b, 1, 0xab);
	vfm_msg_put_u16(&b, VFM_TLV_MANDATORY | 2, 0x1234);
	vfm_msg_put_u32(&b, 3, 0xdeadbeef);
	vfm_msg_put_u64(&b, 4, 0x0102030405060708ull);
	vfm_msg_put_str(&b, 5, "hi");
	vfm_msg_nest_begin(&b, 6, &mark);
	vfm_msg_put_u8(&b, 1, 7);
	vfm_msg_nest_end(&b, mark);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(len, 12 + 5 + 6 + 8 + 12 + 6 + 4 + 5);
	/* explicit little endian, byte by byte */
	static const uint8_t head[] = { 'V',  'F', 'M', 'H',  0x41, 0,
					0,    0,   46,	0,    0,    0,
					1,    0,   1,	0,    0xab, 2,
					0x80, 2,   0,	0x34, 0x12 };
	assert_memory_equal(buf, head, sizeof(head));

	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(m.type, 0x41);
	vfm_tlv_iter_msg(&it, &m);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_int_equal(vfm_tlv_get_u8(&t, &u8, &e), 0);
	assert_int_equal(u8, 0xab);
	assert_false(t.mandatory);
	assert_int_equal(vfm_tlv_get_u16(&t, &u16, &e), -EBADMSG);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_true(t.mandatory);
	assert_int_equal(t.type, 2);
	assert_int_equal(vfm_tlv_get_u16(&t, &u16, &e), 0);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_int_equal(vfm_tlv_get_u32(&t, &u32, &e), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_int_equal(vfm_tlv_get_u64(&t, &u64, &e), 0);
	assert_int_equal(u64, 0x0102030405060708ull);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_int_equal(vfm_tlv_get_str(&t, s, sizeof(s), &e), 0);
	assert_string_equal(s, "hi");
	assert_int_equal(vfm_tlv_get_str(&t, s, 2, &e), -EBADMSG);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	vfm_tlv_iter_nested(&nit, &t);
	assert_int_equal(vfm_tlv_next(&nit, &nt, &e), 1);
	assert_int_equal(nt.val[0], 7);
	assert_int_equal(vfm_tlv_next(&nit, &nt, &e), 0);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 0);

	/* unknown-TLV policy */
	t.mandatory = false;
	assert_int_equal(vfm_tlv_unknown(&t, "X", &e), 0);
	t.mandatory = true;
	t.type = 0x63;
	assert_int_equal(vfm_tlv_unknown(&t, "X", &e), -EPROTO);
	assert_string_equal(e.msg,
			    "unknown mandatory TLV 0x8063 (type 99) in X");

	/* strings with a NUL inside are refused */
	vfm_msg_init(&b, buf, sizeof(buf), 0x41);
	vfm_msg_put(&b, 1, "a\0b", 3);
	vfm_msg_finish(&b, &len);
	vfm_msg_parse(buf, len, &m, &e);
	vfm_tlv_iter_msg(&it, &m);
	vfm_tlv_next(&it, &t, &e);
	assert_int_equal(vfm_tlv_get_str(&t, s, sizeof(s), &e), -EBADMSG);
}

static void test_builder_caps(void **state)
{
	static uint8_t big[70000];
	struct vfm_msgb b;
	size_t len;

	assert_int_equal(vfm_msg_init(&b, buf, 11, 1), -ENOSPC);
	vfm_msg_init(&b, buf, 21, 1);
	assert_int_equal(vfm_msg_put(&b, 1, "12345", 5), 0);
	assert_int_equal(vfm_msg_put(&b, 1, "", 0), -ENOSPC);
	assert_int_equal(vfm_msg_put_u8(&b, 1, 0), -ENOSPC); /* sticky */
	assert_int_equal(vfm_msg_finish(&b, &len), -ENOSPC);
	/* a builder never makes a frame above VFM_WIRE_FRAME_MAX */
	vfm_msg_init(&b, big, sizeof(big), 1);
	assert_int_equal(vfm_msg_put(&b, 1, buf2, 65536 - 12 - 4 + 1), -ENOSPC);
	vfm_msg_init(&b, big, sizeof(big), 1);
	assert_int_equal(vfm_msg_put(&b, 1, big, 70000), -ENOSPC);
	vfm_msg_init(&b, big, sizeof(big), 1);
	assert_int_equal(vfm_msg_put(&b, 1, buf2, 65536 - 12 - 4), 0);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(len, VFM_WIRE_FRAME_MAX);
}

static void test_parser_caps(void **state)
{
	struct vfm_msgb b;
	struct vfm_msg m;
	struct vfm_err e;
	size_t len, flen;

	/* frame_peek */
	vfm_msg_init(&b, buf, sizeof(buf), 1);
	vfm_msg_finish(&b, &len);
	assert_int_equal(vfm_frame_peek(buf, 11, &flen, &e), -EAGAIN);
	assert_int_equal(vfm_frame_peek(buf, 12, &flen, &e), 0);
	assert_int_equal(flen, 12);
	buf[8] = 0xf5; /* 65525 payload bytes: one too many */
	buf[9] = 0xff;
	assert_int_equal(vfm_frame_peek(buf, 12, &flen, &e), -EMSGSIZE);
	buf[8] = 0xf4;
	assert_int_equal(vfm_frame_peek(buf, 12, &flen, &e), 0);
	assert_int_equal(flen, VFM_WIRE_FRAME_MAX);
	buf[8] = buf[9] = 0;
	buf[0] = 'X';
	assert_int_equal(vfm_frame_peek(buf, 12, &flen, &e), -EBADMSG);
	buf[0] = 'V';
	buf[5] = 1;
	assert_int_equal(vfm_frame_peek(buf, 12, &flen, &e), -EBADMSG);
	buf[5] = 0;
	buf[7] = 1;
	assert_int_equal(vfm_frame_peek(buf, 12, &flen, &e), -EBADMSG);
	buf[7] = 0;
	assert_int_equal(vfm_msg_parse(buf, 12, &m, &e), 0);
	assert_int_equal(vfm_msg_parse(buf, 13, &m, &e), -EBADMSG);
	assert_int_equal(vfm_msg_parse(buf, 5, &m, &e), -EBADMSG);

	/* at most VFM_WIRE_TLVS_MAX TLVs */
	vfm_msg_init(&b, buf, sizeof(buf), 0x40);
	for (unsigned int i = 0; i < VFM_WIRE_TLVS_MAX; i++)
		vfm_msg_put(&b, 1, NULL, 0);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	vfm_msg_put(&b, 1, NULL, 0);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "more than 1024 TLVs"));

	/* a TLV that claims more than is there */
	vfm_msg_init(&b, buf, sizeof(buf), 0x40);
	vfm_msg_put_u32(&b, 1, 0);
	vfm_msg_finish(&b, &len);
	buf[14] = 5;
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "says 5 value bytes but only 4 remain"));
}

static void test_hello(void **state)
{
	struct vfm_hello h, d;
	struct vfm_msgb b;
	struct vfm_msg m;
	struct vfm_err e;
	size_t len;

	pt_hello(&h);
	assert_int_equal(vfm_hello_encode(&h, buf, sizeof(buf), &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), 0);
	assert_memory_equal(&h, &d, sizeof(h));

	/* an unknown optional TLV is skipped */
	vfm_msg_init(&b, buf, sizeof(buf), VFM_MSG_HELLO);
	vfm_msg_put_str(&b, 0x63, "from the future");
	vfm_hello_put(&b, &h);
	vfm_msg_put_u64(&b, 0x7ffe, 1);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), 0);
	assert_memory_equal(&h, &d, sizeof(h));
	/* an unknown mandatory one refuses, naming the TLV */
	vfm_msg_put_u8(&b, VFM_TLV_MANDATORY | 0x63, 1);
	vfm_msg_finish(&b, &len);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), -EPROTO);
	assert_string_equal(e.msg,
			    "unknown mandatory TLV 0x8063 (type 99) in HELLO");

	/* duplicates, missing fields, bad values */
	vfm_msg_init(&b, buf, sizeof(buf), VFM_MSG_HELLO);
	vfm_hello_put(&b, &h);
	vfm_msg_put_u8(&b, VFM_HELLO_ROLE, 1);
	vfm_msg_finish(&b, &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "twice"));
	vfm_msg_init(&b, buf, sizeof(buf), VFM_MSG_HELLO);
	vfm_msg_put_u8(&b, VFM_HELLO_ROLE, 1);
	vfm_msg_finish(&b, &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "lacks its protocol minimum"));
	h.role = 3;
	vfm_hello_encode(&h, buf, sizeof(buf), &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), -EPROTO);
	pt_hello(&h);
	h.proto_min = 4;
	vfm_hello_encode(&h, buf, sizeof(buf), &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_hello_decode(&m, &d, &e), -EPROTO);
	/* wrong type */
	pt_hello(&h);
	vfm_hello_encode(&h, buf, sizeof(buf), &len);
	vfm_msg_parse(buf, len, &m, &e);
	{
		struct vfm_auth a;

		assert_int_equal(vfm_auth_decode(&m, &a, &e), -EPROTO);
	}
}

static void test_negotiate(void **state)
{
	struct vfm_hello a, b;
	struct vfm_err e;
	uint16_t v;
	uint64_t f;

	pt_hello(&a);
	pt_hello(&b);
	a.proto_min = 1, a.proto_max = 3, a.features = 0xf0f;
	b.proto_min = 2, b.proto_max = 5, b.features = 0x0ff;
	assert_int_equal(vfm_proto_negotiate(&a, &b, &v, &f, &e), 0);
	assert_int_equal(v, 3);
	assert_int_equal(f, 0x00f);
	b.proto_min = 3;
	assert_int_equal(vfm_proto_negotiate(&a, &b, &v, &f, &e), 0);
	assert_int_equal(v, 3);
	b.proto_min = 4;
	assert_int_equal(vfm_proto_negotiate(&a, &b, &v, &f, &e),
			 -EPROTONOSUPPORT);
	assert_string_equal(
		e.msg,
		"no common handshake protocol version: this side speaks 1-3, the peer 4-5");
}

static void test_offer_verdict_abort(void **state)
{
	static struct vfm_offer o, od;
	static struct vfm_verdict_msg v, vd;
	struct vfm_abort a = { .reason = VFM_ABORT_AUTH }, ad;
	struct vfm_auth au, aud;
	struct vfm_msgb b;
	struct vfm_msg m;
	struct vfm_err e;
	size_t len;

	pt_offer(&o);
	assert_int_equal(vfm_offer_encode(&o, buf, sizeof(buf), &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_offer_decode(&m, &od, &e), 0);
	assert_memory_equal(&o, &od, sizeof(o));

	pt_verdict(&v);
	assert_false(v.verdict.accept);
	assert_int_equal(v.verdict.nnotes, 1);
	assert_int_equal(vfm_verdict_encode(&v, buf, sizeof(buf), &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_verdict_decode(&m, &vd, &e), 0);
	assert_memory_equal(&v, &vd, sizeof(v));

	/* a verdict whose decision contradicts its rules is malformed */
	v.verdict.accept = true;
	vfm_verdict_encode(&v, buf, sizeof(buf), &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_verdict_decode(&m, &vd, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "says accept but lists 1 failed"));

	strcpy(a.text, "authentication failed");
	assert_int_equal(vfm_abort_encode(&a, buf, sizeof(buf), &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_abort_decode(&m, &ad, &e), 0);
	assert_memory_equal(&a, &ad, sizeof(a));

	pt_fill(au.mac, sizeof(au.mac), 0x33);
	assert_int_equal(vfm_auth_encode(&au, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 12 + 4 + 32);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	assert_int_equal(vfm_auth_decode(&m, &aud, &e), 0);
	assert_memory_equal(&au, &aud, sizeof(au));
	/* a MAC that is not last is refused */
	vfm_msg_init(&b, buf, sizeof(buf), VFM_MSG_AUTH);
	vfm_auth_put(&b, &au);
	vfm_msg_put_u8(&b, 9, 0);
	vfm_msg_finish(&b, &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_auth_decode(&m, &aud, &e), -EBADMSG);
	vfm_msg_init(&b, buf, sizeof(buf), VFM_MSG_AUTH);
	vfm_msg_finish(&b, &len);
	vfm_msg_parse(buf, len, &m, &e);
	assert_int_equal(vfm_auth_decode(&m, &aud, &e), -EBADMSG);

	/* OFFER: an unknown mandatory TLV inside the descriptor refuses */
	{
		size_t mark;

		vfm_msg_init(&b, buf, sizeof(buf), VFM_MSG_OFFER);
		vfm_msg_nest_begin(&b, VFM_TLV_MANDATORY | VFM_OFFER_DESC,
				   &mark);
		vfm_msg_put_str(&b, VFM_DTLV_MODEL, "m");
		vfm_msg_put_str(&b, VFM_DTLV_VERSION, "1");
		vfm_msg_put_str(&b, VFM_DTLV_COMPATIBLE, "1");
		vfm_msg_put_str(&b, 0x20, "optional, skipped");
		vfm_msg_put_str(&b, VFM_TLV_MANDATORY | 0x21, "refused");
		vfm_msg_nest_end(&b, mark);
		vfm_msg_put_str(&b, VFM_OFFER_TRANSPORT, "tcp");
		vfm_msg_put_u32(&b, VFM_OFFER_STREAMS, 1);
		vfm_msg_finish(&b, &len);
		vfm_msg_parse(buf, len, &m, &e);
		assert_int_equal(vfm_offer_decode(&m, &od, &e), -EPROTO);
		assert_non_null(strstr(e.msg, "0x8021"));
	}
}

/* ---- golden vectors ---------------------------------------------------*/
struct sample {
	const char *name;
	size_t len;
	uint8_t *frame;
};

static struct sample samples[6];

static void build_samples(void)
{
	static struct vfm_offer o;
	static struct vfm_verdict_msg v;
	static uint8_t store[6][VFM_WIRE_FRAME_MAX];
	struct vfm_hello h;
	struct vfm_auth a;
	struct vfm_abort ab = { .reason = VFM_ABORT_PROTOCOL };
	struct vfm_msgb b;
	size_t mark;
	int i = 0;

	pt_hello(&h);
	samples[i] = (struct sample){ "hello", 0, store[i] };
	pt_must(vfm_hello_encode(&h, store[i], VFM_WIRE_FRAME_MAX,
				 &samples[i].len),
		NULL);
	i++;
	pt_fill(a.mac, sizeof(a.mac), 0x55);
	samples[i] = (struct sample){ "auth", 0, store[i] };
	pt_must(vfm_auth_encode(&a, store[i], VFM_WIRE_FRAME_MAX,
				&samples[i].len),
		NULL);
	i++;
	pt_offer(&o);
	samples[i] = (struct sample){ "offer", 0, store[i] };
	pt_must(vfm_offer_encode(&o, store[i], VFM_WIRE_FRAME_MAX,
				 &samples[i].len),
		NULL);
	i++;
	pt_verdict(&v);
	samples[i] = (struct sample){ "verdict", 0, store[i] };
	pt_must(vfm_verdict_encode(&v, store[i], VFM_WIRE_FRAME_MAX,
				   &samples[i].len),
		NULL);
	i++;
	strcpy(ab.text, "no common handshake protocol version");
	samples[i] = (struct sample){ "abort", 0, store[i] };
	pt_must(vfm_abort_encode(&ab, store[i], VFM_WIRE_FRAME_MAX,
				 &samples[i].len),
		NULL);
	i++;
	/* an agent control message built with the generic API */
	samples[i] = (struct sample){ "agent", 0, store[i] };
	vfm_msg_init(&b, store[i], VFM_WIRE_FRAME_MAX, 0x42);
	vfm_msg_put_u64(&b, VFM_TLV_MANDATORY | 1, 0x1122334455667788ull);
	vfm_msg_nest_begin(&b, 2, &mark);
	vfm_msg_put_u32(&b, 1, 7);
	vfm_msg_put_str(&b, 2, "stream");
	vfm_msg_nest_end(&b, mark);
	pt_must(vfm_msg_finish(&b, &samples[i].len), NULL);
}

static void test_golden(void **state)
{
	bool update = getenv("VFM_GOLDEN_UPDATE") != NULL;

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		char path[512];
		long n;

		snprintf(path, sizeof(path), "%s/%s.hex", VFM_GOLDEN_DIR,
			 samples[i].name);
		if (update) {
			assert_int_equal(pt_hex_write(path, samples[i].frame,
						      samples[i].len),
					 0);
			continue;
		}
		n = pt_hex_read(path, buf, sizeof(buf));
		if (n < 0)
			fail_msg("%s: cannot read (%ld)", path, n);
		if ((size_t)n != samples[i].len ||
		    memcmp(buf, samples[i].frame, (size_t)n))
			fail_msg(
				"%s: the encoding differs from the golden vector "
				"(%ld bytes there, %zu now). If the wire format "
				"changed on purpose, run VFM_GOLDEN_UPDATE=1 %s",
				path, n, samples[i].len, "test_proto_wire");
		/* and the golden bytes decode */
		assert_int_equal(pt_decode_any(buf, (size_t)n, NULL), 0);
	}
}

/* Every truncation fails cleanly; every single-byte corruption either
 * fails cleanly or decodes to a (different) valid message. ASan/UBSan in
 * CI turn any out-of-bounds access into a failure. */
static void test_truncation_and_corruption(void **state)
{
	static const uint8_t flips[] = { 0x01, 0x02, 0x04, 0x08, 0x10,
					 0x20, 0x40, 0x80, 0xff };
	unsigned long ok = 0, refused = 0;

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];

		for (size_t n = 0; n < s->len; n++) {
			struct vfm_err e;

			memcpy(buf2, s->frame, n);
			vfm_err_clear(&e);
			assert_true(pt_decode_any(buf2, n, &e) < 0);
			assert_true(e.msg[0] != '\0');
		}
		for (size_t p = 0; p < s->len; p++) {
			for (size_t f = 0; f < sizeof(flips); f++) {
				struct vfm_err e;
				int ret;

				memcpy(buf2, s->frame, s->len);
				buf2[p] ^= flips[f];
				vfm_err_clear(&e);
				ret = pt_decode_any(buf2, s->len, &e);
				if (ret) {
					assert_true(ret == -EBADMSG ||
						    ret == -EPROTO ||
						    ret == -EMSGSIZE);
					assert_true(e.msg[0] != '\0');
					refused++;
				} else {
					ok++;
				}
			}
		}
	}
	print_message(
		"corruptions: %lu refused, %lu decoded to another valid message\n",
		refused, ok);
	assert_true(refused > 0);
}

static int setup(void **state)
{
	build_samples();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_parser),
		cmocka_unit_test(test_builder_caps),
		cmocka_unit_test(test_parser_caps),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_offer_verdict_abort),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_truncation_and_corruption),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
