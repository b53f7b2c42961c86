// SPDX-License-Identifier: MIT
/* CRC32C: the standard vectors, both code paths, chaining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crc32c.h"

static void test_vectors(void **state)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	assert_int_equal(vfm_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(vfm_crc32c_sw(0, "123456789", 9), 0xe3069283);
	/* RFC 3720 B.4 */
	assert_int_equal(vfm_crc32c(0, zeros, 32), 0x8a9136aa);
	assert_int_equal(vfm_crc32c(0, ones, 32), 0x62a8ab43);
	assert_int_equal(vfm_crc32c(0, inc, 32), 0x46dd794e);
	assert_int_equal(vfm_crc32c(0, "", 0), 0);
}

static void test_paths_agree_and_chain(void **state)
{
	size_t n = 1 << 16;
	uint8_t *b = malloc(n + 8);

	assert_non_null(b);
	for (size_t i = 0; i < n + 8; i++)
		b[i] = (uint8_t)(i * 7 + (i >> 8));
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len < 100; len++)
			assert_int_equal(vfm_crc32c(0, b + off, len),
					 vfm_crc32c_sw(0, b + off, len));
	}
	assert_int_equal(vfm_crc32c(vfm_crc32c(0, b, 1000), b + 1000, n - 1000),
			 vfm_crc32c(0, b, n));
	free(b);
}

static void test_copy(void **state)
{
	uint8_t src[1000], dst[1000];

	for (int i = 0; i < 1000; i++)
		src[i] = (uint8_t)(i * 13);
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len < 200; len += 7) {
			memset(dst, 0, sizeof(dst));
			assert_int_equal(vfm_crc32c_copy(5, dst + off,
							 src + off, len),
					 vfm_crc32c_sw(5, src + off, len));
			assert_memory_equal(dst + off, src + off, len);
		}
	}
	assert_int_equal(vfm_crc32c_copy(0, dst, "123456789", 9), 0xe3069283);
}

/* Lengths around the three-lane chunk (3 x 192 bytes) and many chunks,
 * at every alignment: the joined lanes equal the table version. */
static void test_lanes(void **state)
{
	static const size_t lens[] = { 575,  576,  577,	 1151, 1152,
				       1153, 4080, 4096, 4104, 65536 + 3 };
	size_t n = 70000;
	uint8_t *src = malloc(n + 8), *dst = malloc(n + 8);

	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < n + 8; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 9) + 7);
	for (size_t off = 0; off < 8; off++) {
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			size_t len = lens[k];
			uint32_t want = vfm_crc32c_sw(0x1234, src + off, len);

			assert_int_equal(vfm_crc32c(0x1234, src + off, len),
					 want);
			memset(dst, 0, n + 8);
			assert_int_equal(vfm_crc32c_copy(0x1234, dst + off,
							 src + off, len),
					 want);
			assert_memory_equal(dst + off, src + off, len);
		}
	}
	free(src);
	free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_paths_agree_and_chain),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_lanes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
