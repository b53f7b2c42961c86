// SPDX-License-Identifier: MIT
/* The convergence decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy.h"

static const struct vfm_policy pol = {
	.downtime_limit_ms = 300,
	.fixed_ms = 20,
	.max_iterations = 10,
	.max_precopy_s = 60,
};

static void test_converges_when_fits(void **state)
{
	/* 100 MB at 1 GB/s = 100 ms + 20 ms fixed <= 300 ms */
	struct vfm_precopy_status st = { .iteration = 2,
					 .elapsed_s = 2,
					 .dirty_bytes = 100000000,
					 .bandwidth_bps = 1e9 };

	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_SWITCH_CONVERGED);
	assert_true(vfm_policy_estimate_ms(&pol, &st) > 119.9 &&
		    vfm_policy_estimate_ms(&pol, &st) < 120.1);
}

static void test_continues_when_too_big(void **state)
{
	/* 500 MB at 1 GB/s = 500 ms: too long */
	struct vfm_precopy_status st = { .iteration = 2,
					 .elapsed_s = 2,
					 .dirty_bytes = 500000000,
					 .bandwidth_bps = 1e9 };

	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_CONTINUE);
	/* the boundary: exactly the limit fits */
	st.dirty_bytes = 280000000;
	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_SWITCH_CONVERGED);
	st.dirty_bytes = 280000001;
	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_CONTINUE);
}

static void test_initial_image_first(void **state)
{
	/* Tiny but the initial image is not sent yet: keep going. */
	struct vfm_precopy_status st = { .iteration = 1,
					 .initial_bytes = 4096,
					 .bandwidth_bps = 1e9 };

	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_CONTINUE);
}

static void test_unknown_bandwidth(void **state)
{
	struct vfm_precopy_status st = { .iteration = 1, .dirty_bytes = 4096 };

	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_CONTINUE);
	st.dirty_bytes = 0;
	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_SWITCH_CONVERGED);
}

static void test_limits(void **state)
{
	struct vfm_precopy_status st = { .iteration = 10,
					 .elapsed_s = 1,
					 .dirty_bytes = 1ull << 40,
					 .bandwidth_bps = 1e9 };

	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_SWITCH_ITERATIONS);
	st.iteration = 3;
	st.elapsed_s = 60;
	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_SWITCH_TIME);
	st.elapsed_s = 59.9;
	assert_int_equal(vfm_policy_decide(&pol, &st), VFM_CONTINUE);
	{
		struct vfm_policy nolim = pol;

		nolim.max_iterations = 0;
		nolim.max_precopy_s = 0;
		st.iteration = 1000;
		st.elapsed_s = 1e6;
		assert_int_equal(vfm_policy_decide(&nolim, &st), VFM_CONTINUE);
	}
	assert_string_equal(vfm_decision_name(VFM_SWITCH_TIME),
			    "max_precopy_time");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converges_when_fits),
		cmocka_unit_test(test_continues_when_too_big),
		cmocka_unit_test(test_initial_image_first),
		cmocka_unit_test(test_unknown_bandwidth),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
