// SPDX-License-Identifier: MIT
/*
 * vfm-bench-model: the downtime model (model.c) fitted on vfmig-bench
 * results measured over one or more links (e.g. netns-link.sh's 1gbit and
 * 10gbit runs), its error per cell against those measurements, and its
 * projection onto faster links, labelled as a projection with its
 * assumptions. Writes model.json, model.csv and the plots.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "fit.h"
#include "model.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vfm-bench-model [--out DIR] [--project-gbps 25,100] RESULTS.json...\n"
		"\n"
		"Fits the downtime model on the runs of vfmig-bench's results.json files\n"
		"(each one link; its folder's name labels it: 1gbit/results.json), prints\n"
		"its error per cell, in-sample and with the cell left out of the fit, and\n"
		"projects every cell onto the --project-gbps links. The link of a file is\n"
		"its own iperf3 goodput, measured in the same run. Writes model.json,\n"
		"model.csv, downtime_split.png, downtime_vs_link.png and convergence.png\n"
		"into --out (.).\n");
}

/* The rate in Gbit/s from a label like 10gbit or 500mbit; 0 if none. */
static double label_gbps(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s)
		return 0;
	if (!strcmp(end, "gbit"))
		return v;
	if (!strcmp(end, "mbit"))
		return v / 1e3;
	return 0;
}

/* The run's folder, as vfmig-bench names it (main.c, run_cell()). */
static void run_dir(const char *base, struct vb_frun *r)
{
	char sz[16], dr[16], d[sizeof(r->dir)];

	vb_fmt_size(r->size, sz, sizeof(sz));
	vb_fmt_size(r->dirty, dr, sizeof(dr));
	snprintf(d, sizeof(d), "%s/runs/%s-%s-%s-d%s-s%u-r%d", base,
		 r->transport, r->datapath, sz, dr, r->streams, r->rep);
	if (access(d, F_OK))
		snprintf(d + strlen(d), sizeof(d) - strlen(d), "-z%u-f%u",
			 r->zero_pct, r->format);
	memcpy(r->dir, d, sizeof(d));
}

/* verify_ms from the destination's log, the iterations from the source's. */
static void read_logs(struct vb_frun *r)
{
	char path[4400];
	struct json_object *log, *it;
	size_t i = 0;

	r->o.verify_ms = -1;
	snprintf(path, sizeof(path), "%s/dst.log", r->dir);
	log = vb_log_load(path);
	if (log && vb_log_last(log, "loaded"))
		vb_json_num(vb_log_last(log, "loaded"), "verify_ms",
			    &r->o.verify_ms);
	json_object_put(log);
	snprintf(path, sizeof(path), "%s/src.log", r->dir);
	log = vb_log_load(path);
	while (log && (it = vb_log_next(log, "iteration", &i)) &&
	       r->niter < VB_FIT_ITERS) {
		double v = 0;

		vb_json_num(it, "dirty_bytes", &v);
		r->iter_dirty[r->niter] = v;
		v = 0;
		vb_json_num(it, "bytes", &v);
		r->iter_bytes[r->niter] = v;
		r->niter++;
	}
	json_object_put(log);
}

static int load(const char *path, struct vb_fit *f)
{
	struct json_object *j = vb_json_load(path), *runs;
	char *copy = strdup(path), *base, *label;
	int ret = 0;

	if (!j || !copy) {
		fprintf(stderr, "vfm-bench-model: cannot read %s.\n", path);
		ret = -EIO;
		goto out;
	}
	base = dirname(copy);
	label = strrchr(base, '/') ? strrchr(base, '/') + 1 : base;
	runs = vb_json_get(j, "runs");
	for (size_t i = 0; runs && i < json_object_array_length(runs); i++) {
		struct json_object *o = json_object_array_get_idx(runs, i);
		struct vb_frun *r;
		bool ok = false;
		double v;

		vb_json_bool(o, "ok", &ok);
		if (!ok || f->nruns == VB_FIT_RUNS)
			continue;
		r = &f->runs[f->nruns++];
		memset(r, 0, sizeof(*r));
		snprintf(r->label, sizeof(r->label), "%s", label);
		r->gbps = label_gbps(label);
		vb_json_str(o, "transport", r->transport, sizeof(r->transport));
		vb_json_str(o, "datapath", r->datapath, sizeof(r->datapath));
#define NUM(key, field, type)            \
	do {                             \
		v = 0;                   \
		vb_json_num(o, key, &v); \
		r->field = (type)v;      \
	} while (0)
		NUM("size", size, uint64_t);
		NUM("dirty_Bps", dirty, uint64_t);
		NUM("streams", streams, unsigned int);
		NUM("zero_pct", zero_pct, unsigned int);
		NUM("stream_format", format, unsigned int);
		NUM("rep", rep, int);
		NUM("peer_Bps", o.link_Bps, double);
		NUM("floor_ms", floor_ms, double);
		NUM("downtime_ms", o.downtime_ms, double);
		NUM("stop_ms", o.stop_ms, double);
		NUM("final_transfer_ms", o.final_ms, double);
		NUM("resume_ms", o.resume_ms, double);
		NUM("commit_ms", o.commit_ms, double);
		NUM("final_bytes", o.final_bytes, double);
#undef NUM
		r->o.size = (double)r->size;
		run_dir(base, r);
		read_logs(r);
	}
out:
	json_object_put(j);
	free(copy);
	return ret;
}

static bool same_cell(const struct vb_frun *a, const struct vb_frun *b,
		      bool with_label)
{
	return (!with_label || !strcmp(a->label, b->label)) &&
	       !strcmp(a->transport, b->transport) &&
	       !strcmp(a->datapath, b->datapath) && a->size == b->size &&
	       a->dirty == b->dirty && a->streams == b->streams &&
	       a->zero_pct == b->zero_pct && a->format == b->format;
}

/* Cells: one per link and configuration; p50s of their parts. */
static void make_cells(struct vb_fit *f)
{
	double v[VB_FIT_RUNS];

	for (int i = 0; i < f->nruns; i++) {
		struct vb_frun *r = &f->runs[i];
		int c;

		for (c = 0; c < f->ncells; c++)
			if (same_cell(&f->runs[f->cells[c].first], r, true))
				break;
		if (c == f->ncells) {
			memset(&f->cells[c], 0, sizeof(f->cells[c]));
			f->cells[c].first = i;
			f->ncells++;
		}
		r->o.cell = c;
	}
	for (int c = 0; c < f->ncells; c++) {
		struct vb_fcell *cl = &f->cells[c];
#define P50(expr)                                          \
	({                                                 \
		int k_ = 0;                                \
		for (int i_ = 0; i_ < f->nruns; i_++) {    \
			struct vb_frun *r_ = &f->runs[i_]; \
			if (r_->o.cell == c)               \
				v[k_++] = (expr);          \
		}                                          \
		vb_model_median(v, k_);                    \
	})
		cl->stop = P50(r_->o.stop_ms);
		cl->final = P50(r_->o.final_ms);
		cl->resume = P50(r_->o.resume_ms);
		cl->verify = P50(r_->o.verify_ms >= 0 ? r_->o.verify_ms : 0);
		cl->commit = P50(r_->o.commit_ms);
		cl->final_bytes = P50(r_->o.final_bytes);
		cl->floor = P50(r_->floor_ms);
		cl->link_Bps = P50(r_->o.link_Bps);
#undef P50
	}
}

void vb_fit_cell_name(const struct vb_fit *f, int c, bool with_label, char *out,
		      size_t len)
{
	const struct vb_frun *r = &f->runs[f->cells[c].first];
	char sz[16], dr[16];

	vb_fmt_size(r->size, sz, sizeof(sz));
	vb_fmt_size(r->dirty, dr, sizeof(dr));
	snprintf(out, len, "%s%s%s d%s", with_label ? r->label : "",
		 with_label ? " " : "", sz, dr);
	if (r->streams > 1 || strcmp(r->datapath, "mmap"))
		snprintf(out + strlen(out), len - strlen(out), " x%u %s",
			 r->streams, r->datapath);
	if (r->zero_pct)
		snprintf(out + strlen(out), len - strlen(out), " z%u",
			 r->zero_pct);
}

static const char *fmt(char *b, size_t len, double v, int prec)
{
	if (isnan(v))
		snprintf(b, len, "-");
	else
		snprintf(b, len, "%.*f", prec, v);
	return b;
}

/* The projection: every configuration, with the final bytes of its fastest
 * measured link. */
static void project(struct vb_fit *f)
{
	f->nproj = 0;
	for (int c = 0; c < f->ncells; c++) {
		const struct vb_frun *r = &f->runs[f->cells[c].first];
		int best = c, p;

		for (p = 0; p < f->nproj; p++)
			if (same_cell(&f->runs[f->cells[f->proj[p].cell].first],
				      r, false))
				break;
		if (p < f->nproj)
			continue;
		for (int d = 0; d < f->ncells; d++)
			if (same_cell(&f->runs[f->cells[d].first], r, false) &&
			    f->cells[d].link_Bps > f->cells[best].link_Bps)
				best = d;
		f->proj[f->nproj].cell = best;
		for (int g = 0; g < f->ngbps; g++)
			vb_model_predict(&f->model, (double)r->size,
					 f->cells[best].final_bytes,
					 vb_link_Bps(f->gbps[g]),
					 &f->proj[f->nproj].at[g]);
		f->nproj++;
	}
}

static void print(const struct vb_fit *f)
{
	const struct vb_model *m = &f->model;
	char b[12][32], name[64];

	printf("downtime model, fitted on %d runs in %d cells (%s):\n"
	       "  stop %.3f ms + resume %.3f ms + commit %.3f ms + digest %.3f ns/B x state\n"
	       "  + final %.3f ms + final bytes x max(1/link, %s)\n"
	       "  rms error of the fit %.2f ms; %d of the runs bound by the agents/devices, not the link\n",
	       m->n, f->ncells, "every part a median or a least-squares fit",
	       m->stop_ms, m->resume_ms, m->commit_ms, m->verify_ns_per_B,
	       m->final0_ms,
	       m->cpu_known ? (snprintf(b[0], 32, "%.3f ns/B = %.0f MB/s",
					m->cpu_ns_per_B, 1e3 / m->cpu_ns_per_B),
			       b[0]) :
			      "cpu: unknown, no run was bound by it",
	       m->rms_ms, m->n_cpu_bound);
	printf("\n%-22s %4s %7s %9s %8s %9s %12s %8s %8s %7s %8s %7s\n", "cell",
	       "runs", "link", "final_MiB", "floor", "measured", "(min-max)",
	       "meas/fl", "model", "err", "loo", "loo_err");
	for (int c = 0; c < f->ncells; c++) {
		const struct vb_fcell *cl = &f->cells[c];
		const struct vb_cell_err *e = &f->err[c];
		char mm[40];

		vb_fit_cell_name(f, c, true, name, sizeof(name));
		snprintf(mm, sizeof(mm), "(%.1f-%.1f)", e->meas_min,
			 e->meas_max);
		printf("%-22s %4d %7.1f %9s %8s %9.1f %12s %8s %8.1f %+6.0f%% %8s %7s\n",
		       name, e->runs, cl->link_Bps / 1e6,
		       fmt(b[0], 32, cl->final_bytes / 1048576, 2),
		       fmt(b[1], 32, cl->floor, 1), e->meas_p50, mm,
		       fmt(b[2], 32,
			   cl->final_bytes >= 1048576 && cl->floor > 0 ?
				   e->meas_p50 / cl->floor :
				   NAN,
			   2),
		       e->pred_ms, e->err * 100,
		       fmt(b[3], 32, e->loo_pred_ms, 1),
		       isnan(e->loo_err) ?
			       "-" :
			       (snprintf(b[4], 32, "%+.0f%%", e->loo_err * 100),
				b[4]));
	}
	printf("(link = iperf3 goodput in MB/s, measured in the same run; times in ms; measured = p50 of the downtime over the reps; floor = final bytes / link; model = the fit on every run; loo = fitted without this cell's runs, the honest prediction error)\n");
	printf("\nPROJECTION (not measured):");
	for (int g = 0; g < f->ngbps; g++)
		printf(" %g Gb/s = %.2f GB/s goodput%s", f->gbps[g],
		       vb_link_Bps(f->gbps[g]) / 1e9,
		       g + 1 < f->ngbps ? "," : "");
	printf("\n%-16s %9s", "cell", "final_MiB");
	for (int g = 0; g < f->ngbps; g++)
		printf(" %9s%-3g %9s %-9s", "downtime@", f->gbps[g], "link_ms",
		       "bound_by");
	printf("\n");
	for (int p = 0; p < f->nproj; p++) {
		vb_fit_cell_name(f, f->proj[p].cell, false, name, sizeof(name));
		printf("%-16s %9.2f", name,
		       f->cells[f->proj[p].cell].final_bytes / 1048576);
		for (int g = 0; g < f->ngbps; g++) {
			const struct vb_mpred *q = &f->proj[p].at[g];

			printf(" %12.1f %9.2f %-9s", q->downtime_ms, q->link_ms,
			       q->link_bound ? "link" : "agents");
		}
		printf("\n");
	}
	printf("assumptions:\n");
	for (int a = 0; vb_fit_assumptions[a]; a++)
		printf("  - %s\n", vb_fit_assumptions[a]);
}

const char *const vb_fit_assumptions[] = {
	"the final bytes are those measured on the fastest link here (a faster link shortens the last pre-copy iteration, so fewer pages would be dirty: an upper bound on them)",
	"the agents and devices move the final bytes at the rate fitted here (this host's CPUs, sim devices whose produce/load is a copy with CRC32C, both agents sharing the cores); with the link faster than that rate, it sets the final phase",
	"stop, resume and the commit's messages cost what they cost here; the destination's digest of the loaded state costs the fitted ns per byte of state",
	"the link's goodput is 98% of its rate (RoCEv2 at MTU 4096), with no loss and no competing traffic",
	NULL,
};

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "project-gbps", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vb_fit *f = calloc(1, sizeof(*f));
	const char *out = ".", *proj = "25,100";
	char path[4200];
	int c, ret = 1;

	if (!f)
		return 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'p':
			proj = optarg;
			break;
		case 'h':
			usage(stdout);
			free(f);
			return 0;
		default:
			usage(stderr);
			free(f);
			return 2;
		}
	}
	if (optind == argc) {
		usage(stderr);
		free(f);
		return 2;
	}
	for (char *s = (char *)proj, *end; *s && f->ngbps < VB_FIT_GBPS;
	     s = *end ? end + 1 : end) {
		f->gbps[f->ngbps] = strtod(s, &end);
		if (end == s || f->gbps[f->ngbps] <= 0) {
			fprintf(stderr,
				"vfm-bench-model: --project-gbps wants rates like 25,100.\n");
			free(f);
			return 2;
		}
		f->ngbps++;
	}
	for (int i = optind; i < argc; i++)
		if (load(argv[i], f))
			goto out;
	make_cells(f);
	{
		struct vb_mobs *obs =
			calloc((size_t)f->nruns + 1, sizeof(*obs));

		if (!obs)
			goto out;
		for (int i = 0; i < f->nruns; i++)
			obs[i] = f->runs[i].o;
		if (vb_model_fit(obs, f->nruns, -1, &f->model) ||
		    vb_model_cell_errors(obs, f->nruns, f->ncells, f->err)) {
			fprintf(stderr,
				"vfm-bench-model: no run to fit (none migrated with its downtime split).\n");
			free(obs);
			goto out;
		}
		free(obs);
	}
	project(f);
	print(f);
	if (vb_mkdir_p(out))
		goto out;
	snprintf(path, sizeof(path), "%s/model.json", out);
	if (vb_fit_json(f, path))
		fprintf(stderr, "vfm-bench-model: cannot write %s.\n", path);
	snprintf(path, sizeof(path), "%s/model.csv", out);
	if (vb_fit_csv(f, path))
		fprintf(stderr, "vfm-bench-model: cannot write %s.\n", path);
	if (!vb_have_prog("gnuplot"))
		fprintf(stderr,
			"vfm-bench-model: gnuplot is not installed (apt-get install gnuplot-nox); no plots.\n");
	else if (vb_fit_plots(f, out))
		goto out;
	printf("\noutputs: %s/{model.json,model.csv,downtime_split.png,downtime_vs_link.png,convergence.png}\n",
	       out);
	ret = 0;
out:
	free(f);
	return ret;
}
