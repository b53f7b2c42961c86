// SPDX-License-Identifier: MIT
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
	/* The initial image goes before the source stops unless a limit
	 * says otherwise: its size says nothing about convergence. */
	if (!st->initial_bytes &&
	    vfm_policy_estimate_ms(p, st) <= p->downtime_limit_ms)
		return VFM_SWITCH_CONVERGED;
	if (p->max_iterations && st->iteration >= p->max_iterations)
		return VFM_SWITCH_ITERATIONS;
	if (p->max_precopy_s > 0 && st->elapsed_s >= p->max_precopy_s)
		return VFM_SWITCH_TIME;
	return VFM_CONTINUE;
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
	default:
		return "continue";
	}
}
