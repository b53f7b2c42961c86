// SPDX-License-Identifier: MIT
#include <string.h>

#include "policy.h"

double vfm_policy_estimate_ms(const struct vfm_policy *p,
			      const struct vfm_precopy_status *st)
{
	uint64_t left = st->initial_bytes + st->dirty_bytes;

	if (!left)
		return p->fixed_ms;
	if (st->bandwidth_bps <= 0)
		return 1e18;
	return (double)left / st->bandwidth_bps * 1e3 + p->fixed_ms;
}

enum vfm_decision vfm_policy_decide(const struct vfm_policy *p,
				    const struct vfm_precopy_status *st)
{
	bool fits = vfm_policy_estimate_ms(p, st) <= p->downtime_limit_ms;

	/* The initial image goes before the source stops unless a limit
	 * says otherwise: its size says nothing about convergence. */
	if (!st->initial_bytes && fits)
		return VFM_SWITCH_CONVERGED;
	if (!st->initial_bytes && !st->dirty_bytes)
		return p->fail_over_limit ? VFM_FAIL_FIXED : VFM_SWITCH_FIXED;
	if (p->max_iterations && st->iteration >= p->max_iterations)
		return p->fail_over_limit && !fits ? VFM_FAIL_ITERATIONS :
						     VFM_SWITCH_ITERATIONS;
	if (p->max_precopy_s > 0 && st->elapsed_s >= p->max_precopy_s)
		return p->fail_over_limit && !fits ? VFM_FAIL_TIME :
						     VFM_SWITCH_TIME;
	return VFM_CONTINUE;
}

bool vfm_decision_over_limit(const struct vfm_policy *p,
			     const struct vfm_precopy_status *st,
			     enum vfm_decision d)
{
	return d != VFM_CONTINUE &&
	       vfm_policy_estimate_ms(p, st) > p->downtime_limit_ms;
}

const char *vfm_decision_name(enum vfm_decision d)
{
	switch (d) {
	case VFM_SWITCH_CONVERGED:
		return "converged";
	case VFM_SWITCH_ITERATIONS:
		return "max_iterations";
	case VFM_SWITCH_TIME:
		return "max_precopy_time";
	case VFM_FAIL_ITERATIONS:
		return "fail_max_iterations";
	case VFM_FAIL_TIME:
		return "fail_max_precopy_time";
	case VFM_SWITCH_FIXED:
		return "fixed_costs_over_limit";
	case VFM_FAIL_FIXED:
		return "fail_fixed_costs_over_limit";
	default:
		return "continue";
	}
}

void vfm_rate_init(struct vfm_rate *r, double window_ms)
{
	memset(r, 0, sizeof(*r));
	r->window_ms = window_ms > 0 ? window_ms : 1000;
	r->last_ms = -1;
}

void vfm_rate_add(struct vfm_rate *r, double now_ms, uint64_t bytes, bool busy)
{
	unsigned int tail;

	if (busy && r->last_ms >= 0 && now_ms > r->last_ms)
		r->busy_ms += now_ms - r->last_ms;
	if (now_ms > r->last_ms)
		r->last_ms = now_ms;
	r->bytes += bytes;
	/* A snapshot every 1/32 of the window keeps the ring's span over
	 * the window at any call rate. */
	if (r->n) {
		tail = (r->head + r->n - 1) % VFM_RATE_SNAPS;
		if (r->busy_ms - r->snap[tail].busy_ms < r->window_ms / 32)
			return;
	}
	if (r->n == VFM_RATE_SNAPS) {
		r->head = (r->head + 1) % VFM_RATE_SNAPS;
		r->n--;
	}
	tail = (r->head + r->n) % VFM_RATE_SNAPS;
	r->snap[tail].busy_ms = r->busy_ms;
	r->snap[tail].bytes = r->bytes;
	r->n++;
}

double vfm_rate_bps(const struct vfm_rate *r)
{
	unsigned int i, k = r->head;
	double span;

	if (!r->n)
		return 0;
	/* the youngest snapshot at least a window back, else the oldest */
	for (i = 0; i < r->n; i++) {
		unsigned int j = (r->head + i) % VFM_RATE_SNAPS;

		if (r->busy_ms - r->snap[j].busy_ms < r->window_ms)
			break;
		k = j;
	}
	span = r->busy_ms - r->snap[k].busy_ms;
	if (span < r->window_ms / 10)
		return 0;
	return (double)(r->bytes - r->snap[k].bytes) / (span / 1e3);
}

double vfm_rate_plan(double iteration_bps, double recent_bps)
{
	if (recent_bps > 0)
		return recent_bps;
	return iteration_bps > 0 ? iteration_bps : 0;
}
