// SPDX-License-Identifier: MIT
/* The agent's control messages: every type round-trips through a sealed
 * frame after a real handshake; a tampered or replayed frame is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctrl.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";

static void shuttle(struct vfm_hs *a, struct vfm_hs *b)
{
	const uint8_t *out;
	size_t n = vfm_hs_output(a, &out), off = 0, flen;

	while (off < n) {
		assert_int_equal(
			vfm_frame_peek(out + off, n - off, &flen, NULL), 0);
		vfm_hs_recv(b, out + off, flen);
		off += flen;
	}
	vfm_hs_consumed(a, n);
}

static void pair(struct vfm_hs **s, struct vfm_hs **d, struct vfm_desc *desc)
{
	struct vfm_hs_cfg sc = {
		.role = VFM_ROLE_SOURCE,
		.secret = secret,
		.secret_len = 32,
		.migration_id = { 1, 2, 3 },
		.features = VFM_PFEAT_TCP,
		.desc = desc,
		.transport = "tcp",
		.streams = 2,
	};
	struct vfm_hs_cfg dc = sc;

	dc.role = VFM_ROLE_DESTINATION;
	memset(dc.migration_id, 0, sizeof(dc.migration_id));
	dc.transport = NULL;
	assert_int_equal(vfm_hs_new(s, &sc, NULL), 0);
	assert_int_equal(vfm_hs_new(d, &dc, NULL), 0);
	assert_int_equal(vfm_hs_start(*s), 0);
	assert_int_equal(vfm_hs_start(*d), 0);
	for (int i = 0; i < 10; i++) {
		shuttle(*s, *d);
		shuttle(*d, *s);
	}
	assert_true(vfm_hs_done(*s));
	assert_true(vfm_hs_done(*d));
	assert_true(vfm_hs_verdict(*s)->accept);
}

static void make_desc(struct vfm_desc *d)
{
	vfm_desc_init(d);
	assert_int_equal(vfm_desc_set_model(d, "vfmig-edu", NULL), 0);
	assert_int_equal(vfm_desc_set_version(d, "2.0.3", NULL), 0);
	assert_int_equal(vfm_desc_set_compatible(d, "2.0.0-2.0.9", NULL), 0);
}

static void test_roundtrip(void **state)
{
	struct vfm_hs *s, *d;
	struct vfm_desc desc;
	static uint8_t buf[VFM_WIRE_FRAME_MAX];
	struct vfm_err err;
	size_t len;

	make_desc(&desc);
	pair(&s, &d, &desc);
	for (uint8_t t = VFM_CTL_GO; t <= VFM_CTL_FAIL; t++) {
		struct vfm_ctl m = { .type = t,
				     .mode = VFM_CTL_MODE_CHECK,
				     .landing = 1u << 25,
				     .streams = 4,
				     .pos = 123456789,
				     .iteration = 7,
				     .total = 987654321,
				     .resume_us = 42,
				     .code = 4 };
		struct vfm_ctl r;
		struct vfm_hs *tx =
			(t == VFM_CTL_XPORT || t == VFM_CTL_CREDIT ||
			 t == VFM_CTL_COMMIT || t == VFM_CTL_DIGEST) ?
				d :
				s;
		struct vfm_hs *rx = tx == s ? d : s;

		strcpy(m.transport, "tcp");
		m.info.len = 3;
		memcpy(m.info.data, "abc", 3);
		strcpy(m.phase, "stop_copy");
		strcpy(m.digest, "00ff");
		strcpy(m.text, "a reason");
		assert_int_equal(vfm_ctl_encode(tx, &m, buf, sizeof(buf), &len),
				 0);
		vfm_err_clear(&err);
		assert_int_equal(vfm_ctl_decode(rx, buf, len, &r, &err), 0);
		assert_int_equal(r.type, t);
		switch (t) {
		case VFM_CTL_GO:
			assert_int_equal(r.mode, VFM_CTL_MODE_CHECK);
			break;
		case VFM_CTL_XPORT:
			assert_string_equal(r.transport, "tcp");
			assert_int_equal(r.info.len, 3);
			assert_memory_equal(r.info.data, "abc", 3);
			assert_int_equal(r.landing, 1u << 25);
			assert_int_equal(r.streams, 4);
			break;
		case VFM_CTL_CREDIT:
			assert_int_equal(r.pos, 123456789);
			break;
		case VFM_CTL_PHASE:
			assert_string_equal(r.phase, "stop_copy");
			assert_int_equal(r.iteration, 7);
			break;
		case VFM_CTL_DONE:
			assert_int_equal(r.total, 987654321);
			break;
		case VFM_CTL_COMMIT:
			assert_int_equal(r.resume_us, 42);
			break;
		case VFM_CTL_DIGEST:
			assert_string_equal(r.digest, "00ff");
			break;
		default:
			assert_int_equal(r.code, 4);
			assert_string_equal(r.text, "a reason");
		}
		assert_string_not_equal(vfm_ctl_name(t), "");
	}
	vfm_hs_free(s);
	vfm_hs_free(d);
}

static void test_tampered(void **state)
{
	struct vfm_hs *s, *d;
	struct vfm_desc desc;
	static uint8_t buf[VFM_WIRE_FRAME_MAX];
	struct vfm_ctl m = { .type = VFM_CTL_DONE, .total = 5 }, r;
	struct vfm_err err;
	size_t len;

	make_desc(&desc);
	pair(&s, &d, &desc);
	assert_int_equal(vfm_ctl_encode(s, &m, buf, sizeof(buf), &len), 0);
	buf[VFM_WIRE_HDR_LEN + 5] ^= 1; /* inside the TOTAL value */
	vfm_err_clear(&err);
	assert_int_equal(vfm_ctl_decode(d, buf, len, &r, &err), -EACCES);
	vfm_hs_free(s);
	vfm_hs_free(d);

	/* a frame sealed for one place in the transcript does not verify at
	 * another: replaying it is refused */
	pair(&s, &d, &desc);
	assert_int_equal(vfm_ctl_encode(s, &m, buf, sizeof(buf), &len), 0);
	assert_int_equal(vfm_ctl_decode(d, buf, len, &r, &err), 0);
	assert_int_not_equal(vfm_ctl_decode(d, buf, len, &r, &err), 0);
	/* garbage is a clean error */
	memset(buf, 0x41, 64);
	assert_int_not_equal(vfm_ctl_decode(d, buf, 64, &r, &err), 0);
	vfm_hs_free(s);
	vfm_hs_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tampered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
