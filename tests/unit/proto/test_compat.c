// SPDX-License-Identifier: MIT
/* The compatibility engine: every rule, both outcomes, several at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto_test_util.h"

static struct vfm_verdict v;

/* The result with @code (and @subject if not NULL), or fail. */
static const struct vfm_rule_result *find(uint16_t code, const char *subject)
{
	for (unsigned int i = 0; i < v.nresults; i++)
		if (v.r[i].code == code &&
		    (!subject || !strcmp(v.r[i].subject, subject)))
			return &v.r[i];
	fail_msg("no result %s %s", vfm_compat_code_name(code),
		 subject ? subject : "");
	return NULL;
}

static bool has(uint16_t code)
{
	for (unsigned int i = 0; i < v.nresults; i++)
		if (v.r[i].code == code)
			return true;
	return false;
}

static void eval(const struct vfm_desc *s, const struct vfm_desc *d)
{
	assert_int_equal(vfm_compat_eval(s, d, &v), 0);
	assert_int_equal(v.accept, vfm_verdict_failures(&v) == 0);
}

static void test_codes_are_stable(void **state)
{
	static const struct {
		uint16_t code;
		const char *name;
		bool passes;
	} t[] = {
		{ 1, "model_match", true },
		{ 2, "model_mismatch", false },
		{ 3, "version_compatible", true },
		{ 4, "version_incompatible", false },
		{ 5, "param_allowed", true },
		{ 6, "param_missing_at_destination", false },
		{ 7, "param_value_not_allowed", false },
		{ 8, "param_destination_only_off", true },
		{ 9, "param_destination_only_not_off", false },
		{ 10, "feature_supported", true },
		{ 11, "feature_unsupported", false },
		{ 12, "stream_format_common", true },
		{ 13, "stream_format_none", false },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_string_equal(vfm_compat_code_name(t[i].code), t[i].name);
		assert_int_equal(vfm_compat_code_from_name(t[i].name),
				 t[i].code);
		assert_int_equal(vfm_compat_code_passes(t[i].code),
				 t[i].passes);
	}
	assert_null(vfm_compat_code_name(0));
	assert_null(vfm_compat_code_name(999));
	assert_int_equal(vfm_compat_code_from_name("nope"), 0);
	assert_false(vfm_compat_code_passes(999));
}

static void test_compatible(void **state)
{
	struct vfm_desc s, d;

	pt_desc_edu(&s, "2.0.3");
	pt_desc_edu(&d, "2.0.9");
	eval(&s, &d);
	assert_true(v.accept);
	/* model, version, 1 param, 3 features: every rule is reported */
	assert_int_equal(v.nresults, 6);
	assert_int_equal(v.r[0].code, VFM_COMPAT_MODEL_MATCH);
	assert_int_equal(v.r[1].code, VFM_COMPAT_VERSION_COMPATIBLE);
	assert_int_equal(v.r[2].code, VFM_COMPAT_PARAM_ALLOWED);
	assert_string_equal(v.r[2].subject, "memory");
	assert_int_equal(v.r[5].code, VFM_COMPAT_FEATURE_SUPPORTED);
	assert_int_equal(v.nnotes, 0);
	for (unsigned int i = 0; i < v.nresults; i++)
		assert_true(v.r[i].passed && v.r[i].sentence[0]);
}

static void test_model(void **state)
{
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_edu(&s, "2.0.3");
	pt_desc_edu(&d, "2.0.3");
	assert_int_equal(vfm_desc_set_model(&d, "vfmig-edu2", &e), 0);
	eval(&s, &d);
	assert_false(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_MODEL_MISMATCH, NULL)->sentence,
		"source model vfmig-edu does not match destination model vfmig-edu2");
	assert_false(has(VFM_COMPAT_MODEL_MATCH));
	assert_int_equal(vfm_verdict_failures(&v), 1);
}

static void test_version(void **state)
{
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_edu(&s, "2.0.5");
	pt_desc_edu(&d, "2.1.7");
	assert_int_equal(vfm_desc_set_compatible(&d, "2.0.2-2.0.4,2.1.0-", &e),
			 0);
	eval(&s, &d);
	assert_false(v.accept);
	assert_non_null(strstr(
		find(VFM_COMPAT_VERSION_INCOMPATIBLE, NULL)->sentence,
		"2.0.5 is outside the destination's compatible versions 2.0.2-2.0.4,2.1.0-"));
	const char *ok[] = { "2.0.3", "2.1.7", "2.0.2", "2.0.4", "2.1" };
	const char *bad[] = { "2.0.5", "1.9", "2.0.1", "2.0.4.1" };

	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(vfm_desc_set_version(&s, ok[i], &e), 0);
		eval(&s, &d);
		assert_true(v.accept);
		find(VFM_COMPAT_VERSION_COMPATIBLE, NULL);
	}
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(vfm_desc_set_version(&s, bad[i], &e), 0);
		eval(&s, &d);
		assert_false(v.accept);
		find(VFM_COMPAT_VERSION_INCOMPATIBLE, NULL);
	}
}

/* The gfx-4GB case. */
static void test_gfx_4gb(void **state)
{
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_gfx(&s, false);
	pt_desc_gfx(&d, true);
	eval(&s, &d);
	assert_false(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED, "memory")->sentence,
		"source parameter memory=4096 is not allowed at the destination (allowed: 8192)");
	/* the source at 8192 passes */
	assert_int_equal(vfm_desc_set_param(&s, "memory", "8192", &e), 0);
	eval(&s, &d);
	assert_true(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_PARAM_ALLOWED, "memory")->sentence,
		"source parameter memory=8192 is allowed at the destination (allowed: 8192)");
}

static void test_param_missing_and_implicit_allowed(void **state)
{
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_edu(&s, "2.0.3");
	pt_desc_edu(&d, "2.0.3");
	assert_int_equal(vfm_desc_set_param(&s, "tiling", "on", &e), 0);
	eval(&s, &d);
	assert_false(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_PARAM_MISSING_AT_DESTINATION, "tiling")
			->sentence,
		"source parameter tiling=on does not exist at the destination");

	/* known only through allowed/ counts as known */
	assert_int_equal(vfm_desc_set_allowed(&d, "tiling", "on,off", &e), 0);
	eval(&s, &d);
	assert_true(v.accept);
	find(VFM_COMPAT_PARAM_ALLOWED, "tiling");

	/* without allowed/, only the destination's own value is allowed */
	pt_desc_edu(&d, "2.0.3");
	assert_int_equal(vfm_desc_set_param(&d, "tiling", "on", &e), 0);
	eval(&s, &d);
	assert_true(v.accept);
	assert_int_equal(vfm_desc_set_param(&d, "tiling", "off", &e), 0);
	eval(&s, &d);
	assert_false(v.accept);
	assert_non_null(strstr(
		find(VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED, "tiling")->sentence,
		"(allowed: off)"));
}

/* rss only at the destination: accepted with a note when off is allowed. */
static void test_rss(void **state)
{
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_edu(&s, "2.0.3");
	pt_desc_edu(&d, "2.0.3");
	assert_int_equal(vfm_desc_set_param(&d, "rss", "on", &e), 0);
	assert_int_equal(vfm_desc_set_allowed(&d, "rss", "on,off", &e), 0);
	eval(&s, &d);
	assert_true(v.accept);
	find(VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF, "rss");
	assert_int_equal(v.nnotes, 1);
	assert_string_equal(
		v.notes[0],
		"destination parameter rss will be set to off: the source does not have it");

	assert_int_equal(vfm_desc_set_allowed(&d, "rss", "1-16", &e), 0);
	eval(&s, &d);
	assert_false(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_PARAM_DESTINATION_ONLY_NOT_OFF, "rss")->sentence,
		"parameter rss exists only at the destination, which does not allow it off (allowed: 1-16)");
	assert_int_equal(v.nnotes, 0);

	/* no allowed/rss: off only if the destination's value is off */
	pt_desc_edu(&d, "2.0.3");
	assert_int_equal(vfm_desc_set_param(&d, "rss", "off", &e), 0);
	eval(&s, &d);
	assert_true(v.accept);
	assert_int_equal(vfm_desc_set_param(&d, "rss", "4", &e), 0);
	eval(&s, &d);
	assert_false(v.accept);

	/* both sides have it: the ordinary param rule applies */
	assert_int_equal(vfm_desc_set_param(&s, "rss", "4", &e), 0);
	eval(&s, &d);
	assert_true(v.accept);
	assert_false(has(VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF));
}

static void test_features(void **state)
{
	const char *req[] = { "pre_copy", "dirty_log" };
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_edu(&s, "2.0.3");
	vfm_desc_init(&d);
	pt_desc_edu(&d, "2.0.3");
	d.nfeatures = 0;
	assert_int_equal(vfm_desc_add_features(&d, "pre_copy p2p", &e), 0);
	eval(&s, &d); /* default: every source feature is required */
	assert_false(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_FEATURE_UNSUPPORTED, "mmap")->sentence,
		"required feature mmap is not supported by the destination (it has: pre_copy p2p)");
	find(VFM_COMPAT_FEATURE_SUPPORTED, "p2p");

	/* an explicit required set */
	assert_int_equal(vfm_compat_eval_req(&s, &d, req, 1, &v), 0);
	assert_true(v.accept);
	assert_int_equal(vfm_compat_eval_req(&s, &d, req, 2, &v), 0);
	assert_false(v.accept);
	find(VFM_COMPAT_FEATURE_UNSUPPORTED, "dirty_log");
	assert_int_equal(vfm_compat_eval_req(&s, &d, NULL, 0, &v), 0);
	assert_true(v.accept);
	assert_false(has(VFM_COMPAT_FEATURE_SUPPORTED));
	assert_int_equal(vfm_compat_eval_req(&s, &d, req,
					     VFM_DESC_FEATURES_MAX + 1, &v),
			 -E2BIG);
	assert_false(v.accept);

	d.nfeatures = 0;
	eval(&s, &d);
	assert_non_null(
		strstr(find(VFM_COMPAT_FEATURE_UNSUPPORTED, "mmap")->sentence,
		       "(it has: none)"));
}

/* Every failure is listed, not only the first; passes are listed too. */
static void test_several_failures(void **state)
{
	struct vfm_desc s, d;
	struct vfm_err e;

	pt_desc_gfx(&s, false);
	assert_int_equal(vfm_desc_set_version(&s, "4.0", &e), 0);
	assert_int_equal(vfm_desc_set_param(&s, "tiling", "on", &e), 0);
	assert_int_equal(vfm_desc_add_features(&s, "mmap", &e), 0);
	pt_desc_gfx(&d, true);
	assert_int_equal(vfm_desc_set_model(&d, "gfx2", &e), 0);
	assert_int_equal(vfm_desc_set_allowed(&d, "rss", "on", &e), 0);
	eval(&s, &d);
	assert_false(v.accept);
	find(VFM_COMPAT_MODEL_MISMATCH, NULL);
	find(VFM_COMPAT_VERSION_INCOMPATIBLE, NULL);
	find(VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED, "memory");
	find(VFM_COMPAT_PARAM_MISSING_AT_DESTINATION, "tiling");
	find(VFM_COMPAT_PARAM_DESTINATION_ONLY_NOT_OFF, "rss");
	find(VFM_COMPAT_FEATURE_UNSUPPORTED, "mmap");
	find(VFM_COMPAT_FEATURE_SUPPORTED, "pre_copy");
	assert_int_equal(vfm_verdict_failures(&v), 6);
	assert_int_equal(v.nresults, 8);
}

static void test_long_allowed_list_sentence(void **state)
{
	char list[1200] = "";
	struct vfm_desc s, d;
	struct vfm_err e;

	for (int i = 0; i < VFM_DESC_ALLOWED_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%sv%061d", i ? "," : "", i);
	pt_desc_edu(&s, "2.0.3");
	pt_desc_edu(&d, "2.0.3");
	assert_int_equal(vfm_desc_set_allowed(&d, "memory", list, &e), 0);
	eval(&s, &d);
	assert_false(v.accept);
	assert_non_null(strstr(
		find(VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED, "memory")->sentence,
		"..."));
}

/* The stream rule: only when the source states its formats. */
static void test_stream_formats(void **state)
{
	struct vfm_desc s, d;
	unsigned int n;

	pt_desc_edu(&s, "2.0.3");
	pt_desc_edu(&d, "2.0.4");
	eval(&s, &d);
	n = v.nresults;
	assert_false(has(VFM_COMPAT_STREAM_FORMAT_COMMON));
	/* a new source, an old destination: format 1, accepted */
	pt_must(vfm_desc_set_stream_formats(&s, "1,2", NULL), NULL);
	eval(&s, &d);
	assert_true(v.accept);
	assert_int_equal(v.nresults, n + 1);
	assert_string_equal(
		find(VFM_COMPAT_STREAM_FORMAT_COMMON, "")->sentence,
		"stream format 1: the source produces formats 1,2, the destination loads 1");
	/* both new: format 2 */
	pt_must(vfm_desc_set_stream_formats(&d, "1,2", NULL), NULL);
	eval(&s, &d);
	assert_true(v.accept);
	assert_non_null(
		strstr(find(VFM_COMPAT_STREAM_FORMAT_COMMON, "")->sentence,
		       "stream format 2:"));
	/* nothing in common: refused before anything moves */
	pt_must(vfm_desc_set_stream_formats(&s, "3", NULL), NULL);
	eval(&s, &d);
	assert_false(v.accept);
	assert_string_equal(
		find(VFM_COMPAT_STREAM_FORMAT_NONE, "")->sentence,
		"no common stream format: the source produces formats 3, the destination loads 1,2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_are_stable),
		cmocka_unit_test(test_compatible),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_gfx_4gb),
		cmocka_unit_test(test_param_missing_and_implicit_allowed),
		cmocka_unit_test(test_rss),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_several_failures),
		cmocka_unit_test(test_long_allowed_list_sentence),
		cmocka_unit_test(test_stream_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
