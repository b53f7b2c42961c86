// SPDX-License-Identifier: MIT
/* Versions and range lists: every form, boundaries, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <cmocka.h>

#include "vfm/version.h"

static struct vfm_version ver(const char *s)
{
	struct vfm_version v;
	struct vfm_err e;

	assert_int_equal(vfm_version_parse(s, strlen(s), &v, &e), 0);
	return v;
}

static int cmp(const char *a, const char *b)
{
	struct vfm_version x = ver(a), y = ver(b);

	return vfm_version_cmp(&x, &y);
}

static bool in(const char *ranges, const char *v)
{
	struct vfm_range_list rl;
	struct vfm_version x = ver(v);
	struct vfm_err e;

	assert_int_equal(vfm_ranges_parse(ranges, strlen(ranges), &rl, &e), 0);
	return vfm_ranges_contain(&rl, &x);
}

static void test_version_forms(void **state)
{
	struct vfm_version v = ver("1.2.3.4");
	char buf[64];

	assert_int_equal(v.nparts, 4);
	assert_int_equal(v.part[3], 4);
	v = ver("4294967295");
	assert_int_equal(v.part[0], 4294967295u);
	v = ver("007.1");
	assert_int_equal(vfm_version_format(&v, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "7.1");
	assert_int_equal(vfm_version_format(&v, buf, 3), -ENOSPC);
}

static void test_version_compare(void **state)
{
	assert_int_equal(cmp("1.9", "1.9.0"), 0);
	assert_int_equal(cmp("1.9", "1.9.0.0"), 0);
	assert_true(cmp("1.10", "1.9") > 0);
	assert_true(cmp("1.9", "1.10") < 0);
	assert_true(cmp("2", "1.99.99.99") > 0);
	assert_true(cmp("2.0.0.1", "2") > 0);
	assert_true(cmp("0", "0.0.0.1") < 0);
	assert_true(cmp("4294967295", "4294967294.9") > 0);
}

static void expect_bad_version(const char *s, int ret, unsigned int col)
{
	struct vfm_version v;
	struct vfm_err e;

	vfm_err_clear(&e);
	assert_int_equal(vfm_version_parse(s, strlen(s), &v, &e), ret);
	assert_int_equal(e.col, col);
	assert_true(strstr(e.msg, "column") != NULL);
}

static void test_version_malformed(void **state)
{
	expect_bad_version("", -EINVAL, 1);
	expect_bad_version(".", -EINVAL, 1);
	expect_bad_version("1.", -EINVAL, 3);
	expect_bad_version(".1", -EINVAL, 1);
	expect_bad_version("1..2", -EINVAL, 3);
	expect_bad_version("1.a", -EINVAL, 3);
	expect_bad_version("a", -EINVAL, 1);
	expect_bad_version(" 1", -EINVAL, 1);
	expect_bad_version("1 ", -EINVAL, 2);
	expect_bad_version("1-2", -EINVAL, 2);
	expect_bad_version("1.2.3.4.5", -EINVAL, 8);
	expect_bad_version("4294967296", -ERANGE, 1);
	expect_bad_version("1.99999999999999999999", -ERANGE, 3);
}

/* The example. */
static void test_ranges_example(void **state)
{
	const char *r = "2.0.2-2.0.4,2.1.0-";

	assert_true(in(r, "2.0.3"));
	assert_true(in(r, "2.1.7"));
	assert_false(in(r, "2.0.5"));
	assert_false(in(r, "1.9"));
	/* boundaries */
	assert_true(in(r, "2.0.2"));
	assert_true(in(r, "2.0.4"));
	assert_true(in(r, "2.0.4.0"));
	assert_false(in(r, "2.0.4.1"));
	assert_false(in(r, "2.0.1.9"));
	assert_true(in(r, "2.1"));
	assert_true(in(r, "2.1.0"));
	assert_false(in(r, "2.0.99"));
	assert_true(in(r, "99"));
}

static void test_ranges_forms(void **state)
{
	/* closed */
	assert_true(in("1.0-2.0", "1.0"));
	assert_true(in("1.0-2.0", "2.0"));
	assert_false(in("1.0-2.0", "2.0.1"));
	assert_false(in("1.0-2.0", "0.9"));
	/* open above */
	assert_true(in("1.5-", "1.5"));
	assert_true(in("1.5-", "4000000000"));
	assert_false(in("1.5-", "1.4.9"));
	/* open below */
	assert_true(in("-1.5", "0"));
	assert_true(in("-1.5", "1.5.0"));
	assert_false(in("-1.5", "1.5.0.1"));
	/* single */
	assert_true(in("3", "3.0.0"));
	assert_false(in("3", "3.0.1"));
	/* equal ends */
	assert_true(in("3.1-3.1", "3.1"));
	/* lists and blanks */
	assert_true(in(" 1 , 3-4 ,\t-0.5", "3.5"));
	assert_true(in(" 1 , 3-4 ,\t-0.5", "0.1"));
	assert_false(in(" 1 , 3-4 ,\t-0.5", "2"));
}

static void expect_bad_ranges(const char *s, int ret, unsigned int col)
{
	struct vfm_range_list rl;
	struct vfm_err e;

	vfm_err_clear(&e);
	assert_int_equal(vfm_ranges_parse(s, strlen(s), &rl, &e), ret);
	if (col != e.col)
		fail_msg("'%s': column %u, expected %u (%s)", s, e.col, col,
			 e.msg);
	assert_true(strstr(e.msg, "column") != NULL);
}

static void test_ranges_malformed(void **state)
{
	expect_bad_ranges("", -EINVAL, 1);
	expect_bad_ranges("-", -EINVAL, 2);
	expect_bad_ranges(",", -EINVAL, 1);
	expect_bad_ranges("1,", -EINVAL, 3);
	expect_bad_ranges("1,,2", -EINVAL, 3);
	expect_bad_ranges("2.0.4-2.0.2", -EINVAL, 7);
	expect_bad_ranges("1-2-3", -EINVAL, 4);
	expect_bad_ranges("1--2", -EINVAL, 3);
	expect_bad_ranges("2.0.2 - 2.0.4", -EINVAL, 7);
	expect_bad_ranges("2.0.0-2.0.x", -EINVAL, 11);
	expect_bad_ranges("x", -EINVAL, 1);
	expect_bad_ranges("1;2", -EINVAL, 2);
	expect_bad_ranges("1.2.3.4.5-6", -EINVAL, 8);
	expect_bad_ranges("9999999999", -ERANGE, 1);
}

static void test_ranges_cap_and_format(void **state)
{
	char text[512] = "", out[512];
	struct vfm_range_list rl;
	struct vfm_err e;

	for (int i = 0; i < VFM_RANGES_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "%s%d", i ? "," : "", i);
	assert_int_equal(vfm_ranges_parse(text, strlen(text), &rl, &e), 0);
	strcat(text, ",99");
	assert_int_equal(vfm_ranges_parse(text, strlen(text), &rl, &e), -E2BIG);

	assert_int_equal(
		vfm_ranges_parse("-1.0, 2.0.2-2.0.4 ,3,4.1-", 25, &rl, &e), 0);
	assert_true(vfm_ranges_format(&rl, out, sizeof(out)) > 0);
	assert_string_equal(out, "-1.0,2.0.2-2.0.4,3,4.1-");
	assert_int_equal(vfm_ranges_format(&rl, out, 5), -ENOSPC);
	assert_int_equal(vfm_ranges_format(&rl, out, 0), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_forms),
		cmocka_unit_test(test_version_compare),
		cmocka_unit_test(test_version_malformed),
		cmocka_unit_test(test_ranges_example),
		cmocka_unit_test(test_ranges_forms),
		cmocka_unit_test(test_ranges_malformed),
		cmocka_unit_test(test_ranges_cap_and_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
