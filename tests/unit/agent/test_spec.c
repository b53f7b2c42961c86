// SPDX-License-Identifier: MIT
/* Size and key=value parsing, and sim device spec handling. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dev.h"
#include "spec.h"

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(vfm_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(vfm_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(vfm_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(vfm_parse_size("200MiB", &v), 0);
	assert_int_equal(v, 200ull << 20);
	assert_int_equal(vfm_parse_size("1.5k", &v), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(vfm_parse_size("", &v), -EINVAL);
	assert_int_equal(vfm_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(vfm_parse_size("-1", &v), -EINVAL);
	assert_int_equal(vfm_parse_size("M", &v), -EINVAL);
}

static void test_kv(void **state)
{
	char s[] = "size=1G,compatible=2.0.0-2.0.9,2.1.0-,model=x";
	struct vfm_kv kv[8];

	assert_int_equal(vfm_parse_kv(s, kv, 8), 3);
	assert_string_equal(kv[0].key, "size");
	assert_string_equal(kv[0].val, "1G");
	assert_string_equal(kv[1].key, "compatible");
	assert_string_equal(kv[1].val, "2.0.0-2.0.9,2.1.0-");
	assert_string_equal(kv[2].val, "x");
	{
		char bad[] = "nokey,a=b";

		assert_int_equal(vfm_parse_kv(bad, kv, 8), -EINVAL);
	}
	{
		char bad[] = "=v";

		assert_int_equal(vfm_parse_kv(bad, kv, 8), -EINVAL);
	}
}

static void test_sim_spec(void **state)
{
	struct vfm_dev *d;
	struct vfm_desc desc;
	char why[256];
	char ver[64];

	assert_int_equal(
		vfm_dev_open(
			"sim:size=8M,version=2.0.5,param.rss=off,allowed.rss=on/off,features=pre_copy/p2p",
			&d, why, sizeof(why)),
		0);
	assert_int_equal(vfm_dev_describe(d, &desc, why, sizeof(why)), 0);
	assert_string_equal(desc.model, "vfmig-edu");
	vfm_version_format(&desc.version, ver, sizeof(ver));
	assert_string_equal(ver, "2.0.5");
	assert_string_equal(vfm_desc_param(&desc, "memory"), "8");
	assert_string_equal(vfm_desc_param(&desc, "rss"), "off");
	assert_true(vfm_desc_has_feature(&desc, "p2p"));
	assert_false(vfm_desc_has_feature(&desc, "mmap"));
	assert_true(vfm_allowed_match(vfm_desc_allowed(&desc, "rss"), "on"));
	vfm_dev_close(d);

	assert_int_equal(vfm_dev_open("sim:size=1000", &d, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(vfm_dev_open("sim:bogus=1", &d, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "bogus"));
	assert_int_equal(vfm_dev_open("sim:version=x.y", &d, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(vfm_dev_open("nodev:1", &d, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(vfm_dev_open("vfio:", &d, why, sizeof(why)), -EINVAL);
	/* an absent PCI function: a clear error, no crash */
	assert_true(vfm_dev_open("vfio:0000:ff:1f.7", &d, why, sizeof(why)) <
		    0);
	assert_non_null(strstr(why, "0000:ff:1f.7"));
}

static void test_state_names(void **state)
{
	uint32_t s;

	assert_string_equal(vfm_dev_state_name(VFIO_DEVICE_STATE_PRE_COPY_P2P),
			    "PRE_COPY_P2P");
	assert_int_equal(vfm_dev_state_parse("running", &s), 0);
	assert_int_equal(s, VFIO_DEVICE_STATE_RUNNING);
	assert_int_equal(vfm_dev_state_parse("nope", &s), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_sim_spec),
		cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
