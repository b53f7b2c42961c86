/* SPDX-License-Identifier: MIT */
/*
 * The downtime model: fitted on measured parts, used to predict a
 * migration's downtime on another link. Pure code (no I/O), so a unit test
 * can fit it on synthetic measurements with known parameters.
 *
 *   downtime = stop + resume + commit + verify * size
 *            + final0 + final_bytes * max(1 / link, cpu)
 *
 * stop, resume, commit are fixed costs (the source's split of its
 * downtime); verify is the destination's digest of the state it loaded, per
 * byte of state (it waits for it before it commits); final0 the fixed part
 * of the final phase (the PHASE message, the last credit); cpu the per-byte
 * cost of the agents and the devices (produce, send, receive, load) when the
 * link is not the limit, and link the link's goodput.
 */
#ifndef VB_MODEL_H
#define VB_MODEL_H

#include <stdbool.h>

/* One measured migration. Times in ms, sizes in bytes. */
struct vb_mobs {
	double size; /* device state */
	double final_bytes; /* moved while the source was stopped */
	double link_Bps; /* the link's goodput, measured in the same run */
	double downtime_ms; /* the agent's; = stop + final + resume + commit */
	double stop_ms, final_ms, resume_ms, commit_ms;
	double verify_ms; /* the destination's digest; < 0: not known */
	int cell; /* which matrix cell (for the per-cell errors) */
};

struct vb_model {
	double stop_ms, resume_ms; /* medians */
	double commit_ms; /* commit minus the digest */
	double verify_ns_per_B; /* digest, per byte of state */
	double final0_ms;
	double cpu_ns_per_B; /* 0 when no run was CPU-bound: unknown */
	bool cpu_known; /* some fitted run was bound by it, not the link */
	int n; /* runs fitted */
	int n_cpu_bound; /* of them, bound by cpu rather than the link */
	double rms_ms; /* of the fit's downtime residuals */
};

struct vb_mpred {
	double stop_ms, final_ms, resume_ms, commit_ms; /* commit: + digest */
	double link_ms; /* final_bytes / link */
	double downtime_ms;
	bool link_bound; /* the link, not cpu, sets the final phase's rate */
};

/* Fit on @n runs (those with @skip_cell as cell are left out; -1: none).
 * 0, or -EINVAL with no usable run. */
int vb_model_fit(const struct vb_mobs *obs, int n, int skip_cell,
		 struct vb_model *m);
void vb_model_predict(const struct vb_model *m, double size, double final_bytes,
		      double link_Bps, struct vb_mpred *p);

/* A cell's measured downtime against the model's. */
struct vb_cell_err {
	int cell, runs;
	double meas_p50, meas_min, meas_max;
	double pred_ms; /* the model fitted on every run */
	double err; /* pred / meas_p50 - 1 */
	double loo_pred_ms; /* fitted without this cell's runs; NAN if none */
	double loo_err;
};

/* Per cell 0..@ncells-1: p50/min/max of the measured downtimes, the
 * prediction (p50 over the cell's runs) in-sample and leaving the cell out.
 * Cells without runs get runs = 0. 0 or -errno. */
int vb_model_cell_errors(const struct vb_mobs *obs, int n, int ncells,
			 struct vb_cell_err *out);

double vb_model_median(const double *v, int n);

#endif
