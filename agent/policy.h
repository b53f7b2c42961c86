/* SPDX-License-Identifier: MIT */
/*
 * The convergence policy: when pre-copy stops and the source is stopped.
 * Pure functions, unit tested (tests/unit/agent/test_policy.c, on rate
 * traces).
 *
 * The downtime limit is a promise, so the estimate uses the rate the link
 * gives now, not an average over the past: vfm_rate measures the bytes the
 * destination acknowledged over the last half second of busy transfer, and
 * the decision plans with that. When
 * the limits on iterations or time are reached and the rest still does not
 * fit, the decision says so, with the downtime it expects, and with
 * fail_over_limit it gives up (the source keeps running) instead of
 * overshooting.
 */
#ifndef VFM_POLICY_H
#define VFM_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct vfm_policy {
	double downtime_limit_ms; /* estimated downtime must fit this */
	double fixed_ms; /* state changes, round trips, verify */
	unsigned int max_iterations; /* 0: no limit */
	double max_precopy_s; /* 0: no limit */
	bool fail_over_limit; /* at a limit, fail rather than overshoot */
};

/* What is known after one pre-copy iteration. */
struct vfm_precopy_status {
	unsigned int iteration; /* iterations done, >= 1 */
	double elapsed_s; /* since pre-copy began */
	uint64_t initial_bytes; /* initial image still to send */
	uint64_t dirty_bytes; /* dirtied since sent */
	double bandwidth_bps; /* the rate to plan with, bytes/s; 0: unknown */
};

enum vfm_decision {
	VFM_CONTINUE = 0,
	VFM_SWITCH_CONVERGED, /* the estimate fits the limit */
	VFM_SWITCH_ITERATIONS, /* iteration limit reached */
	VFM_SWITCH_TIME, /* pre-copy time limit reached */
	VFM_FAIL_ITERATIONS, /* iteration limit, over the limit: give up */
	VFM_FAIL_TIME, /* time limit, over the limit: give up */
	/* Nothing left to send, and the fixed costs alone (state changes,
	 * the digest check) are over the limit: iterating cannot help. */
	VFM_SWITCH_FIXED,
	VFM_FAIL_FIXED,
};

/* Estimated downtime in ms for the data left (+ fixed costs); a huge value
 * when the bandwidth is unknown. */
double vfm_policy_estimate_ms(const struct vfm_policy *p,
			      const struct vfm_precopy_status *st);
enum vfm_decision vfm_policy_decide(const struct vfm_policy *p,
				    const struct vfm_precopy_status *st);
const char *vfm_decision_name(enum vfm_decision d);
/* A switch whose estimate is over the limit (the limits forced it). */
bool vfm_decision_over_limit(const struct vfm_policy *p,
			     const struct vfm_precopy_status *st,
			     enum vfm_decision d);

/*
 * The rate the link gives now: bytes acknowledged over the last
 * @window_ms of busy time (time with data in flight; idle gaps, when the
 * source had nothing to send, do not count).
 */
#define VFM_RATE_SNAPS 64

struct vfm_rate {
	double window_ms;
	double last_ms; /* time of the last call, -1 before the first */
	double busy_ms; /* busy time so far */
	uint64_t bytes; /* bytes acknowledged so far */
	unsigned int head, n; /* ring of snapshots, oldest at head */
	struct {
		double busy_ms;
		uint64_t bytes;
	} snap[VFM_RATE_SNAPS];
};

void vfm_rate_init(struct vfm_rate *r, double window_ms);
/* At @now_ms, @bytes more were acknowledged; @busy: data was in flight
 * since the previous call (false closes an idle gap). */
void vfm_rate_add(struct vfm_rate *r, double now_ms, uint64_t bytes, bool busy);
/* Bytes/s over the last window of busy time; 0 while less than a tenth
 * of the window was observed. */
double vfm_rate_bps(const struct vfm_rate *r);
/* The rate to plan with: @recent_bps once known, else @iteration_bps
 * (either may be 0 = unknown). The recent rate is the link's while it was
 * busy, which is what the final transfer gets: an iteration's average also
 * holds the past (a rate that has since dropped), the time the device had
 * nothing to send and the pre-copy's --rate-limit, none of which the
 * final transfer sees. */
double vfm_rate_plan(double iteration_bps, double recent_bps);

#endif
