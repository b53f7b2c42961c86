/* SPDX-License-Identifier: MIT */
/* vfm-bench-model: runs read back from results.json, cells, projection. */
#ifndef VB_FIT_H
#define VB_FIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define VB_FIT_RUNS 512
#define VB_FIT_ITERS 64
#define VB_FIT_GBPS 8

struct vb_frun {
	char label[24]; /* the results folder's name: the link (1gbit) */
	double gbps; /* from the label; 0 if it names no rate */
	char transport[8], datapath[8];
	uint64_t size, dirty;
	unsigned int streams, zero_pct, format;
	int rep;
	double floor_ms; /* final bytes / the link's goodput */
	struct vb_mobs o;
	char dir[4300]; /* its logs */
	int niter; /* pre-copy iterations from the source's log */
	double iter_bytes[VB_FIT_ITERS], iter_dirty[VB_FIT_ITERS];
};

struct vb_fcell {
	int first; /* index of its first run */
	double stop, final, resume, commit, verify; /* p50s, ms */
	double final_bytes, floor, link_Bps; /* p50s */
};

struct vb_fproj {
	int cell; /* whose final bytes (the fastest measured link's) */
	struct vb_mpred at[VB_FIT_GBPS];
};

struct vb_fit {
	struct vb_frun runs[VB_FIT_RUNS];
	int nruns;
	struct vb_fcell cells[VB_FIT_RUNS];
	struct vb_cell_err err[VB_FIT_RUNS];
	int ncells;
	struct vb_model model;
	double gbps[VB_FIT_GBPS];
	int ngbps;
	struct vb_fproj proj[VB_FIT_RUNS];
	int nproj;
};

extern const char *const vb_fit_assumptions[];

void vb_fit_cell_name(const struct vb_fit *f, int c, bool with_label, char *out,
		      size_t len);
/* fit_out.c: model.json, model.csv, the plots (0 or -errno). */
int vb_fit_json(const struct vb_fit *f, const char *path);
int vb_fit_csv(const struct vb_fit *f, const char *path);
int vb_fit_plots(const struct vb_fit *f, const char *dir);

#endif
