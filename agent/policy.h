/* SPDX-License-Identifier: MIT */
/* The convergence policy: when pre-copy stops and the source is stopped.
 * A pure function, unit tested. */
#ifndef VFM_POLICY_H
#define VFM_POLICY_H

#include <stdint.h>

struct vfm_policy {
	double downtime_limit_ms; /* estimated downtime must fit this */
	double fixed_ms; /* state changes, round trips, verify */
	unsigned int max_iterations; /* 0: no limit */
	double max_precopy_s; /* 0: no limit */
};

/* What is known after one pre-copy iteration. */
struct vfm_precopy_status {
	unsigned int iteration; /* iterations done, >= 1 */
	double elapsed_s; /* since pre-copy began */
	uint64_t initial_bytes; /* initial image still to send */
	uint64_t dirty_bytes; /* dirtied since sent */
	double bandwidth_bps; /* measured, bytes/s; 0 if unknown */
};

enum vfm_decision {
	VFM_CONTINUE = 0,
	VFM_SWITCH_CONVERGED, /* the estimate fits the limit */
	VFM_SWITCH_ITERATIONS, /* iteration limit reached */
	VFM_SWITCH_TIME, /* pre-copy time limit reached */
};

/* Estimated downtime in ms for the data left (+ fixed costs); a huge value
 * when the bandwidth is unknown. */
double vfm_policy_estimate_ms(const struct vfm_policy *p,
			      const struct vfm_precopy_status *st);
enum vfm_decision vfm_policy_decide(const struct vfm_policy *p,
				    const struct vfm_precopy_status *st);
const char *vfm_decision_name(enum vfm_decision d);

#endif
