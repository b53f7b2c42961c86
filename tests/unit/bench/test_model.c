// SPDX-License-Identifier: MIT
/* The downtime model: fitted on synthetic runs made from known parameters,
 * it gives them back; its predictions and per-cell errors are what the
 * formula says. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "model.h"

#define MIB (1024.0 * 1024.0)
#define NEAR(a, b, rel)                                \
	assert_true(fabs((double)(a) - (double)(b)) <= \
		    (rel)*fabs((double)(b)) + 1e-9)

/* The truth the synthetic runs are made from. */
static const struct vb_model truth = {
	.stop_ms = 0.02,
	.resume_ms = 0.5,
	.commit_ms = 1.0,
	.verify_ns_per_B = 0.25, /* 4 GB/s digest */
	.final0_ms = 1.5,
	.cpu_ns_per_B = 2.0, /* 500 MB/s: above 1 Gbit/s, below 10 */
};

/* One run from @m, each part scaled by @scale, times perturbed by @noise
 * (a fraction, + or -). */
static struct vb_mobs run(const struct vb_model *m, double size, double fb,
			  double link, int cell, double scale, double noise,
			  bool verify_known)
{
	struct vb_mpred p;
	struct vb_mobs o = {
		.size = size, .final_bytes = fb, .link_Bps = link, .cell = cell
	};

	vb_model_predict(m, size, fb, link, &p);
	o.stop_ms = p.stop_ms * scale * (1 + noise);
	o.final_ms = p.final_ms * scale * (1 - noise);
	o.resume_ms = p.resume_ms * scale * (1 + noise);
	o.commit_ms = p.commit_ms * scale * (1 - noise);
	o.verify_ms = verify_known ? m->verify_ns_per_B / 1e6 * size * scale *
					     (1 - noise) :
				     -1;
	o.downtime_ms = o.stop_ms + o.final_ms + o.resume_ms + o.commit_ms;
	return o;
}

/* A shaped-link matrix: 1 and 10 Gbit/s goodputs, sizes 64M..1G, dirty 0
 * (320 bytes final) and three amounts of final bytes; two reps per cell. */
static int matrix(struct vb_mobs *o, const struct vb_model *m, double noise,
		  bool verify_known, const double *links, int nlinks)
{
	static const double sizes[] = { 64 * MIB, 256 * MIB, 1024 * MIB };
	static const double fbs[] = { 320, 4 * MIB, 24 * MIB, 96 * MIB };
	int n = 0, cell = 0;

	for (int l = 0; l < nlinks; l++)
		for (int s = 0; s < 3; s++)
			for (int f = 0; f < 4; f++, cell++)
				for (int rep = 0; rep < 2; rep++)
					o[n++] = run(m, sizes[s], fbs[f],
						     links[l], cell, 1,
						     (rep ? -noise : noise),
						     verify_known);
	return n;
}

static const double shaped[] = { 121e6, 1195e6 };

static void test_fit_recovers_parameters(void **state)
{
	struct vb_mobs o[64];
	struct vb_model m;
	int n = matrix(o, &truth, 0.03, true, shaped, 2);

	(void)state;
	assert_int_equal(vb_model_fit(o, n, -1, &m), 0);
	assert_int_equal(m.n, n);
	NEAR(m.stop_ms, truth.stop_ms, 0.05);
	NEAR(m.resume_ms, truth.resume_ms, 0.05);
	NEAR(m.commit_ms, truth.commit_ms, 0.05);
	NEAR(m.verify_ns_per_B, truth.verify_ns_per_B, 0.05);
	NEAR(m.final0_ms, truth.final0_ms, 0.1);
	assert_true(m.cpu_known);
	NEAR(m.cpu_ns_per_B, truth.cpu_ns_per_B, 0.05);
	/* The 10 Gbit/s runs are the cpu-bound ones: 3 sizes x 4 amounts of
	 * final bytes x 2 reps. */
	assert_int_equal(m.n_cpu_bound, 3 * 4 * 2);
}

static void test_fit_exact_without_noise(void **state)
{
	struct vb_mobs o[64];
	struct vb_model m;
	int n = matrix(o, &truth, 0, true, shaped, 2);

	(void)state;
	assert_int_equal(vb_model_fit(o, n, -1, &m), 0);
	NEAR(m.final0_ms, truth.final0_ms, 1e-9);
	NEAR(m.cpu_ns_per_B, truth.cpu_ns_per_B, 1e-9);
	NEAR(m.verify_ns_per_B, truth.verify_ns_per_B, 1e-9);
	assert_true(m.rms_ms < 1e-9);
}

/* Every run link-bound: the cpu cost cannot be seen, and the model says so
 * instead of inventing one. */
static void test_link_bound_only_leaves_cpu_unknown(void **state)
{
	static const double slow[] = { 121e6 };
	struct vb_mobs o[64];
	struct vb_model m;
	int n = matrix(o, &truth, 0, true, slow, 1);

	(void)state;
	assert_int_equal(vb_model_fit(o, n, -1, &m), 0);
	assert_false(m.cpu_known);
	assert_int_equal(m.n_cpu_bound, 0);
	NEAR(m.final0_ms, truth.final0_ms, 1e-9);
}

/* Without the destination's digest time, commit = c0 + k * size. */
static void test_commit_line_without_verify(void **state)
{
	struct vb_mobs o[64];
	struct vb_model m;
	int n = matrix(o, &truth, 0, false, shaped, 2);

	(void)state;
	assert_int_equal(vb_model_fit(o, n, -1, &m), 0);
	NEAR(m.commit_ms, truth.commit_ms, 1e-6);
	NEAR(m.verify_ns_per_B, truth.verify_ns_per_B, 1e-6);
}

static void test_predict_is_the_formula(void **state)
{
	struct vb_mpred p;
	double size = 256 * MIB, fb = 100e6, link = 12.25e9;

	(void)state;
	/* 100 Gb/s: 100 MB at 12.25 GB/s is 8.16 ms of link, but the agents
	 * move 500 MB/s: 200 ms. */
	vb_model_predict(&truth, size, fb, link, &p);
	assert_false(p.link_bound);
	NEAR(p.link_ms, 100e6 / 12.25e9 * 1e3, 1e-12);
	NEAR(p.final_ms, 1.5 + 200, 1e-12);
	NEAR(p.commit_ms, 1.0 + 0.25e-6 * size, 1e-12);
	NEAR(p.downtime_ms, 0.02 + 0.5 + p.commit_ms + p.final_ms, 1e-12);
	/* 1 Gb/s goodput 121 MB/s: the link sets the rate. */
	vb_model_predict(&truth, size, fb, 121e6, &p);
	assert_true(p.link_bound);
	NEAR(p.final_ms, 1.5 + 100e6 / 121e6 * 1e3, 1e-12);
}

static void test_no_usable_run(void **state)
{
	struct vb_mobs o = { .size = 1, .link_Bps = 0 };
	struct vb_model m;

	(void)state;
	assert_int_equal(vb_model_fit(&o, 1, -1, &m), -EINVAL);
	assert_int_equal(vb_model_fit(&o, 0, -1, &m), -EINVAL);
}

/* The per-cell errors: p50/min/max of the measurements, the prediction's
 * relative error, and leaving the cell out of the fit. */
static void test_cell_errors(void **state)
{
	struct vb_mobs o[70];
	struct vb_cell_err e[26];
	struct vb_mpred p;
	int n = matrix(o, &truth, 0, true, shaped, 2), off = 24;

	(void)state;
	/* Cell 24: every part 1.25x what the model says; two reps. */
	o[n++] = run(&truth, 512 * MIB, 48 * MIB, 1195e6, off, 1.25, 0, true);
	o[n++] = run(&truth, 512 * MIB, 48 * MIB, 1195e6, off, 1.25, 0, true);
	/* Cell 25 has no runs. */
	assert_int_equal(vb_model_cell_errors(o, n, 26, e), 0);
	vb_model_predict(&truth, 512 * MIB, 48 * MIB, 1195e6, &p);
	assert_int_equal(e[off].runs, 2);
	NEAR(e[off].meas_p50, 1.25 * p.downtime_ms, 1e-9);
	/* Left out, the fit is the truth again: pred / meas - 1 = 1/1.25 - 1. */
	NEAR(e[off].loo_pred_ms, p.downtime_ms, 1e-9);
	NEAR(e[off].loo_err, 1 / 1.25 - 1, 1e-9);
	/* In-sample the bad cell pulls the fit: its error is smaller. */
	assert_true(e[off].err < 0 && e[off].err > e[off].loo_err);
	assert_int_equal(e[25].runs, 0);
	/* A cell whose two reps differ: p50 is their mean, min and max. */
	o[0].downtime_ms = 10;
	o[1].downtime_ms = 30;
	assert_int_equal(vb_model_cell_errors(o, n, 26, e), 0);
	assert_int_equal(e[0].runs, 2);
	NEAR(e[0].meas_p50, 20, 1e-12);
	NEAR(e[0].meas_min, 10, 1e-12);
	NEAR(e[0].meas_max, 30, 1e-12);
	NEAR(e[0].err, e[0].pred_ms / 20 - 1, 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_recovers_parameters),
		cmocka_unit_test(test_fit_exact_without_noise),
		cmocka_unit_test(test_link_bound_only_leaves_cpu_unknown),
		cmocka_unit_test(test_commit_line_without_verify),
		cmocka_unit_test(test_predict_is_the_formula),
		cmocka_unit_test(test_no_usable_run),
		cmocka_unit_test(test_cell_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
