// SPDX-License-Identifier: MIT
/*
 * The key schedule and the stream MAC: known-answer vectors (RFC 5869 for
 * HKDF-SHA256, the GCM specification's test case 13 for AES-256-GMAC), and
 * the stream MAC refusing a tampered, replayed, reordered, dropped or other
 * migration's segment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vfm/kdf.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sscanf(h + 2 * i, "%2hhx", &out[i]), 1);
}

static void test_hkdf_rfc5869_case1(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	      "34007208d5b887185865",
	      want, sizeof(want));
	assert_int_equal(vfm_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt),
					 info, sizeof(info), okm, sizeof(okm)),
			 0);
	assert_memory_equal(okm, want, sizeof(want));
}

static void test_hkdf_rfc5869_case3(void **state)
{
	/* no salt (that is, HashLen zero bytes), no info */
	uint8_t ikm[22], okm[42], want[42], zero[32] = { 0 };

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	      "9d201395faa4b61a96c8",
	      want, sizeof(want));
	assert_int_equal(vfm_hkdf_sha256(ikm, sizeof(ikm), zero, sizeof(zero),
					 "", 0, okm, sizeof(okm)),
			 0);
	assert_memory_equal(okm, want, sizeof(want));
}

static void test_gmac_kat(void **state)
{
	/* GCM test case 13: K = 0^256, IV = 0^96, nothing authenticated. */
	uint8_t key[VFM_KEY_LEN] = { 0 }, iv[VFM_SMAC_IV_LEN] = { 0 };
	uint8_t tag[VFM_SMAC_TAG_LEN], want[VFM_SMAC_TAG_LEN];
	struct vfm_smac m;

	(void)state;
	unhex("530f8afbc74536b9a963b4f1c4cb738b", want, sizeof(want));
	assert_int_equal(vfm_smac_init(&m, key, iv), 0);
	assert_true(vfm_smac_active(&m));
	assert_int_equal(vfm_smac_final(&m, tag), 0);
	vfm_smac_free(&m);
	assert_memory_equal(tag, want, sizeof(want));
	assert_false(vfm_smac_active(&m));
}

/* The tag of segments @order (indices into 4 segments of 1000 bytes). */
static void tag_of(const uint8_t *key, const uint8_t seg[4][1000],
		   const int *order, int n, uint8_t *tag)
{
	uint8_t iv[VFM_SMAC_IV_LEN] = { 1, 2, 3 };
	struct vfm_smac m;

	assert_int_equal(vfm_smac_init(&m, key, iv), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(vfm_smac_update(&m, seg[order[i]], 1000), 0);
	assert_int_equal(vfm_smac_final(&m, tag), 0);
	vfm_smac_free(&m);
}

static void test_stream_mac_refuses(void **state)
{
	static uint8_t seg[4][1000];
	uint8_t key[VFM_KEY_LEN], other[VFM_KEY_LEN];
	uint8_t good[16], t[16];
	static const int in_order[] = { 0, 1, 2, 3 };
	static const int replayed[] = { 0, 1, 1, 3 };
	static const int reordered[] = { 0, 2, 1, 3 };

	(void)state;
	for (int i = 0; i < 4; i++)
		memset(seg[i], 'a' + i, sizeof(seg[i]));
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	tag_of(key, (const uint8_t(*)[1000])seg, in_order, 4, good);
	tag_of(key, (const uint8_t(*)[1000])seg, in_order, 4, t);
	assert_true(vfm_tag_equal(good, t, 16));
	/* one flipped bit */
	seg[2][500] ^= 1;
	tag_of(key, (const uint8_t(*)[1000])seg, in_order, 4, t);
	assert_false(vfm_tag_equal(good, t, 16));
	seg[2][500] ^= 1;
	/* a segment replayed in place of another */
	tag_of(key, (const uint8_t(*)[1000])seg, replayed, 4, t);
	assert_false(vfm_tag_equal(good, t, 16));
	/* two segments swapped */
	tag_of(key, (const uint8_t(*)[1000])seg, reordered, 4, t);
	assert_false(vfm_tag_equal(good, t, 16));
	/* one dropped */
	tag_of(key, (const uint8_t(*)[1000])seg, in_order, 3, t);
	assert_false(vfm_tag_equal(good, t, 16));
	/* the same stream under another migration's key */
	tag_of(other, (const uint8_t(*)[1000])seg, in_order, 4, t);
	assert_false(vfm_tag_equal(good, t, 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_rfc5869_case1),
		cmocka_unit_test(test_hkdf_rfc5869_case3),
		cmocka_unit_test(test_gmac_kat),
		cmocka_unit_test(test_stream_mac_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
