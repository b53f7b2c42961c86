// SPDX-License-Identifier: MIT
/* agent/verdict_fmt.c: JSON escaping, the table, log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_test_util.h"
#include "verdict_fmt.h"

static char *out;
static size_t outlen;

static FILE *open_out(void)
{
	FILE *f;

	free(out);
	out = NULL;
	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	return f;
}

static void test_json_string(void **state)
{
	FILE *f = open_out();

	vfm_json_string(f, "a\"b\\c\nd\te\x01/ é \xff\xc3(x");
	fclose(f);
	/* json-c's escaping; each byte that is not UTF-8 becomes U+FFFD */
	assert_string_equal(
		out,
		"\"a\\\"b\\\\c\\nd\\te\\u0001/ é \xef\xbf\xbd\xef\xbf\xbd(x\"");
	f = open_out();
	vfm_json_string(f, "");
	fclose(f);
	assert_string_equal(out, "\"\"");
	/* overlong encodings and surrogates are not valid UTF-8 */
	f = open_out();
	vfm_json_string(f, "\xc0\xaf\xed\xa0\x80");
	fclose(f);
	assert_null(strstr(out, "\xc0"));
	assert_null(strstr(out, "\xed"));
}

static void test_table_and_json(void **state)
{
	static struct vfm_verdict_msg v;
	struct vfm_desc src;
	char line[512];
	FILE *f;

	pt_verdict(&v);
	pt_desc_gfx(&src, false);
	f = open_out();
	vfm_verdict_print_table(f, &v.verdict, &src, &v.desc);
	fclose(f);
	assert_non_null(
		strstr(out, "source:      gfx 3.1  params: memory=4096"));
	assert_non_null(strstr(
		out,
		"FAIL   param_value_not_allowed         memory           source parameter memory=4096 is not allowed at the destination (allowed: 8192)"));
	assert_non_null(strstr(out, "PASS   model_match"));
	assert_non_null(strstr(
		out, "NOTE   destination parameter rss will be set to off"));
	assert_non_null(strstr(out, "verdict: REFUSED (1 of 6 rules failed)"));

	f = open_out();
	vfm_verdict_print_json(f, &v.verdict, NULL, &v.desc);
	fclose(f);
	{
		static const char head[] =
			"{\"accept\":false,\"failed\":1,\"source_descriptor\":null,\"destination_descriptor\":{\"model\":\"gfx\"";

		assert_true(!strncmp(out, head, sizeof(head) - 1));
	}
	assert_non_null(strstr(
		out, "\"allowed\":{\"memory\":\"8192\",\"rss\":\"on,off\"}"));
	assert_non_null(strstr(
		out,
		"{\"code\":\"param_value_not_allowed\",\"code_num\":7,\"passed\":false,\"subject\":\"memory\""));
	assert_int_equal(out[outlen - 1], '\n');

	assert_string_equal(
		vfm_rule_line(&v.verdict.r[2], line, sizeof(line)),
		"FAIL param_value_not_allowed memory: source parameter memory=4096 is not allowed at the destination (allowed: 8192)");
	v.verdict.r[0].code = 999;
	assert_string_equal(
		vfm_rule_line(&v.verdict.r[0], line, sizeof(line)),
		"PASS code_999: source and destination are both model gfx");
	free(out);
	out = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_table_and_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
