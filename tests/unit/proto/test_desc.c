// SPDX-License-Identifier: MIT
/* Descriptors: in-memory setters, file parsers, directories, wire form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto_test_util.h"

static void test_setters(void **state)
{
	struct vfm_desc d;
	struct vfm_err e;
	char buf[128];

	pt_desc_edu(&d, "2.0.3");
	assert_string_equal(d.model, "vfmig-edu");
	assert_true(d.has_version && d.has_compatible);
	assert_int_equal(d.nfeatures, 3);
	assert_true(vfm_desc_has_feature(&d, "p2p"));
	assert_false(vfm_desc_has_feature(&d, "p2"));
	assert_string_equal(vfm_desc_param(&d, "memory"), "64");
	assert_null(vfm_desc_param(&d, "rss"));
	assert_int_equal(vfm_desc_check(&d, &e), 0);

	/* replace, duplicates ignored */
	assert_int_equal(vfm_desc_set_param(&d, "memory", "128\n", &e), 0);
	assert_string_equal(vfm_desc_param(&d, "memory"), "128");
	assert_int_equal(d.nparams, 1);
	assert_int_equal(vfm_desc_add_features(&d, "mmap,p2p\nnew_one", &e), 0);
	assert_int_equal(d.nfeatures, 4);
	assert_int_equal(vfm_allowed_format(vfm_desc_allowed(&d, "memory"), buf,
					    sizeof(buf)),
			 16);
	assert_string_equal(buf, "16,32,64,128,256");

	vfm_desc_init(&d);
	assert_int_equal(vfm_desc_check(&d, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "model"));
}

static void test_setter_errors(void **state)
{
	char long_value[VFM_DESC_VALUE_MAX + 2];
	struct vfm_desc d;
	struct vfm_err e;

	vfm_desc_init(&d);
	memset(long_value, '7', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	assert_int_equal(vfm_desc_set_param(&d, "memory", long_value, &e),
			 -ENAMETOOLONG);
	assert_non_null(strstr(e.msg, "params/memory"));
	long_value[VFM_DESC_VALUE_MAX] = '\0';
	assert_int_equal(vfm_desc_set_param(&d, "memory", long_value, &e), 0);

	assert_int_equal(vfm_desc_set_param(&d, "bad name", "1", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_param(&d, "x", "a b", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_param(&d, "x", "", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_param(&d, "x", "a/b", &e), -EINVAL);
	assert_int_equal(
		vfm_desc_set_param(&d, "a_name_that_is_far_too_long_for_vfm",
				   "1", &e),
		-ENAMETOOLONG);
	assert_int_equal(vfm_desc_set_allowed(&d, "x", "16-1", &e), -EINVAL);
	assert_non_null(strstr(e.msg, "allowed/x"));
	assert_int_equal(vfm_desc_set_allowed(&d, "x", "1-99999999999999999999",
					      &e),
			 -ERANGE);
	assert_int_equal(vfm_desc_set_allowed(&d, "x", " \n", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_model(&d, "two words", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_model(&d, "", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_version(&d, "2.0.x", &e), -EINVAL);
	assert_string_equal(
		e.msg,
		"version: column 5: expected a digit after '.', found 'x'");
	assert_int_equal(vfm_desc_set_compatible(&d, "  1.0-0.9", &e), -EINVAL);
	assert_int_equal(e.col, 7); /* counted from the file's first byte */
	assert_non_null(strstr(e.msg, "version_compatible: column 7"));
	assert_int_equal(vfm_desc_add_features(&d, "ok bad-name", &e), -EINVAL);

	/* caps */
	vfm_desc_init(&d);
	for (int i = 0; i < VFM_DESC_PARAMS_MAX; i++) {
		char n[8];

		snprintf(n, sizeof(n), "p%d", i);
		assert_int_equal(vfm_desc_set_param(&d, n, "1", &e), 0);
	}
	assert_int_equal(vfm_desc_set_param(&d, "one_more", "1", &e), -E2BIG);
	{
		char list[2048] = "";

		for (int i = 0; i <= VFM_DESC_ALLOWED_MAX; i++)
			snprintf(list + strlen(list),
				 sizeof(list) - strlen(list), "%d,", i);
		assert_int_equal(vfm_desc_set_allowed(&d, "p1", list, &e),
				 -E2BIG);
	}
}

static void test_allowed_match(void **state)
{
	struct vfm_desc d;
	struct vfm_err e;
	const struct vfm_allowed *a;

	vfm_desc_init(&d);
	assert_int_equal(vfm_desc_set_allowed(&d, "m", "4096,8192", &e), 0);
	assert_int_equal(vfm_desc_set_allowed(&d, "q", "1-16", &e), 0);
	assert_int_equal(vfm_desc_set_allowed(&d, "s", "on,off", &e), 0);
	assert_int_equal(vfm_desc_set_allowed(&d, "r", "off 1-4\n8-8", &e), 0);
	a = vfm_desc_allowed(&d, "m");
	assert_true(vfm_allowed_match(a, "4096"));
	assert_true(vfm_allowed_match(a, "08192"));
	assert_false(vfm_allowed_match(a, "4097"));
	assert_false(vfm_allowed_match(a, "on"));
	a = vfm_desc_allowed(&d, "q");
	assert_true(a->item[0].is_range);
	assert_true(vfm_allowed_match(a, "1"));
	assert_true(vfm_allowed_match(a, "16"));
	assert_false(vfm_allowed_match(a, "0"));
	assert_false(vfm_allowed_match(a, "17"));
	assert_false(vfm_allowed_match(a, "off"));
	a = vfm_desc_allowed(&d, "s");
	assert_true(vfm_allowed_match(a, "off"));
	assert_false(vfm_allowed_match(a, "OFF"));
	a = vfm_desc_allowed(&d, "r");
	assert_int_equal(a->n, 3);
	assert_true(vfm_allowed_match(a, "off"));
	assert_true(vfm_allowed_match(a, "3"));
	assert_true(vfm_allowed_match(a, "8"));
	assert_false(vfm_allowed_match(a, "5"));
	/* a value with a dash that is not a number range is a value */
	assert_int_equal(vfm_desc_set_allowed(&d, "v", "x-1,1-", &e), 0);
	a = vfm_desc_allowed(&d, "v");
	assert_false(a->item[0].is_range);
	assert_true(vfm_allowed_match(a, "1-"));
}

static void test_apply_file(void **state)
{
	static char big[VFM_DESC_FILE_MAX + 1];
	struct vfm_desc d;
	struct vfm_err e;

	vfm_desc_init(&d);
	assert_int_equal(
		vfm_desc_apply_file(&d, "model", "vfmig-edu\n", 10, &e), 0);
	assert_int_equal(vfm_desc_apply_file(&d, "version", "2.0\0", 4, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "NUL"));
	memset(big, ' ', sizeof(big));
	assert_int_equal(vfm_desc_apply_file(&d, "features", big, sizeof(big),
					     &e),
			 -EFBIG);
	assert_int_equal(vfm_desc_apply_file(&d, "features", big,
					     sizeof(big) - 1, &e),
			 0);
	assert_int_equal(vfm_desc_apply_file(&d, "colour", "x", 1, &e),
			 -ENOENT);
	assert_int_equal(vfm_desc_apply_file(&d, "params/../x", "1", 1, &e),
			 -EINVAL);
	/* not NUL-terminated input */
	assert_int_equal(vfm_desc_apply_file(&d, "version", "2.0.39", 5, &e),
			 0);
	assert_int_equal(d.version.part[2], 3);
}

static char tmpdir[64];

static void write_text(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_dir_round_trip(void **state)
{
	struct vfm_desc a, b;
	struct vfm_err e;
	char cmd[128];

	strcpy(tmpdir, "/tmp/vfm-desc-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	pt_desc_gfx(&a, true);
	assert_int_equal(vfm_desc_save_dir(&a, tmpdir, &e), 0);
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), 0);
	assert_memory_equal(&a, &b, sizeof(a));

	/* malformed files: the error names the file */
	write_text("allowed/memory", "8192,16-1\n");
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "allowed/memory"));
	write_text("allowed/memory", "8192\n");
	write_text("version_compatible", "3.0-3.x\n");
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "version_compatible: column 7"));
	write_text("version_compatible", "3.0-3.9\n");
	write_text(
		"params/memory",
		"1234567890123456789012345678901234567890123456789012345678901234\n");
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), -ENAMETOOLONG);
	assert_non_null(strstr(e.msg, "params/memory"));
	write_text("params/memory", "8192\n");
	snprintf(cmd, sizeof(cmd), "%s/features", tmpdir);
	assert_int_equal(unlink(cmd), 0);
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "features: missing"));
	write_text("features", "");
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), 0);
	assert_int_equal(b.nfeatures, 0);
	for (int i = 0; i < VFM_DESC_PARAMS_MAX; i++) {
		char rel[32];

		snprintf(rel, sizeof(rel), "params/p%02d", i);
		write_text(rel, "1");
	}
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), -E2BIG);
	assert_int_equal(vfm_desc_load_dir("/nonexistent/vfm", &b, &e),
			 -ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/vfm/model: missing"));

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

static void test_wire_round_trip(void **state)
{
	static uint8_t buf[VFM_WIRE_FRAME_MAX];
	struct vfm_desc a, b;
	struct vfm_msgb mb;
	struct vfm_msg m;
	struct vfm_tlv_iter it;
	struct vfm_tlv t;
	struct vfm_err e;
	size_t len;

	pt_desc_gfx(&a, true);
	vfm_msg_init(&mb, buf, sizeof(buf), 0x40);
	vfm_desc_put(&mb, VFM_TLV_MANDATORY | 1, &a);
	assert_int_equal(vfm_msg_finish(&mb, &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	vfm_tlv_iter_msg(&it, &m);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_int_equal(vfm_desc_get(&t, &b, &e), 0);
	assert_memory_equal(&a, &b, sizeof(a));

	/* an incomplete descriptor is refused both ways */
	vfm_desc_init(&b);
	vfm_msg_init(&mb, buf, sizeof(buf), 0x40);
	assert_int_equal(vfm_desc_put(&mb, 1, &b), -EINVAL);
	vfm_msg_init(&mb, buf, sizeof(buf), 0x40);
	{
		size_t mark;

		vfm_msg_nest_begin(&mb, 1, &mark);
		vfm_msg_put_str(&mb, VFM_DTLV_MODEL, "x");
		vfm_msg_put_str(&mb, VFM_DTLV_MODEL, "y");
		vfm_msg_nest_end(&mb, mark);
	}
	assert_int_equal(vfm_msg_finish(&mb, &len), 0);
	assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
	vfm_tlv_iter_msg(&it, &m);
	assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
	assert_int_equal(vfm_desc_get(&t, &b, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "twice"));
}

/* stream_formats: the file, the wire (an optional TLV), and the pick. */
static void test_stream_formats(void **state)
{
	static uint8_t buf[VFM_WIRE_FRAME_MAX];
	struct vfm_desc a, b, old;
	struct vfm_msgb mb;
	struct vfm_msg m;
	struct vfm_tlv_iter it;
	struct vfm_tlv t;
	struct vfm_err e;
	char text[32], cmd[128];
	size_t len;

	pt_desc_edu(&a, "2.0.3");
	old = a;
	/* not stated: format 1 alone */
	assert_int_equal(a.stream_formats, 0);
	assert_int_equal(vfm_desc_stream_formats(&a), 1u << 1);
	assert_int_equal(vfm_desc_set_stream_formats(&a, "2 1", &e), 0);
	assert_int_equal(a.stream_formats, 1u << 1 | 1u << 2);
	assert_int_equal(vfm_stream_formats_format(a.stream_formats, text,
						   sizeof(text)),
			 3);
	assert_string_equal(text, "1,2");
	assert_int_equal(vfm_stream_formats_format(a.stream_formats, text, 3),
			 -ENOSPC);
	b = a;
	assert_int_equal(vfm_desc_set_stream_formats(&b, "0", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_stream_formats(&b, "32", &e), -EINVAL);
	assert_int_equal(vfm_desc_set_stream_formats(&b, "two", &e), -EINVAL);
	assert_non_null(strstr(e.msg, "stream_formats"));
	assert_int_equal(vfm_desc_set_stream_formats(&b, " \n", &e), -EINVAL);
	assert_memory_equal(&a, &b, sizeof(a));
	/* the highest common format, 0 without one */
	assert_int_equal(vfm_stream_format_pick(&a, &a), 2);
	assert_int_equal(vfm_stream_format_pick(&a, &old), 1);
	assert_int_equal(vfm_stream_format_pick(&old, &a), 1);
	assert_int_equal(vfm_desc_set_stream_formats(&b, "2,3", &e), 0);
	assert_int_equal(vfm_stream_format_pick(&b, &a), 2);
	assert_int_equal(vfm_stream_format_pick(&b, &old), 0);

	/* the wire: stated or not, the descriptor comes back as it was */
	for (int i = 0; i < 2; i++) {
		const struct vfm_desc *d = i ? &a : &old;

		vfm_msg_init(&mb, buf, sizeof(buf), 0x40);
		vfm_desc_put(&mb, VFM_TLV_MANDATORY | 1, d);
		assert_int_equal(vfm_msg_finish(&mb, &len), 0);
		assert_int_equal(vfm_msg_parse(buf, len, &m, &e), 0);
		vfm_tlv_iter_msg(&it, &m);
		assert_int_equal(vfm_tlv_next(&it, &t, &e), 1);
		assert_int_equal(vfm_desc_get(&t, &b, &e), 0);
		assert_memory_equal(d, &b, sizeof(b));
		/* the TLV is optional: a peer that predates it skips it */
		assert_int_equal(memmem(buf, len, "1,2", 3) != NULL, i);
	}

	/* the directory: an optional file */
	strcpy(tmpdir, "/tmp/vfm-desc-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(vfm_desc_save_dir(&old, tmpdir, &e), 0);
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), 0);
	assert_int_equal(b.stream_formats, 0);
	write_text("stream_formats", "1 2\n");
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	write_text("stream_formats", "1,x\n");
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "stream_formats"));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	strcpy(tmpdir, "/tmp/vfm-desc-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(vfm_desc_save_dir(&a, tmpdir, &e), 0);
	assert_int_equal(vfm_desc_load_dir(tmpdir, &b, &e), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_setter_errors),
		cmocka_unit_test(test_allowed_match),
		cmocka_unit_test(test_apply_file),
		cmocka_unit_test(test_dir_round_trip),
		cmocka_unit_test(test_wire_round_trip),
		cmocka_unit_test(test_stream_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
