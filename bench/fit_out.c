// SPDX-License-Identifier: MIT
/* vfm-bench-model's outputs: model.json, model.csv and three gnuplot PNGs
 * (the downtime split per cell, downtime against the link's rate, the
 * convergence of a dirtying run). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench.h"
#include "fit.h"

static struct json_object *pred_json(double gbps, const struct vb_mpred *p)
{
	struct json_object *o = json_object_new_object();

	vb_json_put_num(o, "link_gbps", gbps);
	vb_json_put_num(o, "link_goodput_Bps", vb_link_Bps(gbps));
	vb_json_put_num(o, "downtime_ms", p->downtime_ms);
	vb_json_put_num(o, "stop_ms", p->stop_ms);
	vb_json_put_num(o, "final_transfer_ms", p->final_ms);
	vb_json_put_num(o, "resume_ms", p->resume_ms);
	vb_json_put_num(o, "commit_ms", p->commit_ms);
	vb_json_put_num(o, "link_ms", p->link_ms);
	vb_json_put_str(o, "bound_by", p->link_bound ? "link" : "agents");
	return o;
}

static void put_cfg(struct json_object *o, const struct vb_frun *r)
{
	vb_json_put_str(o, "transport", r->transport);
	vb_json_put_str(o, "datapath", r->datapath);
	json_object_object_add(o, "size", json_object_new_uint64(r->size));
	json_object_object_add(o, "dirty_Bps",
			       json_object_new_uint64(r->dirty));
	json_object_object_add(o, "streams", json_object_new_int64(r->streams));
	json_object_object_add(o, "zero_pct",
			       json_object_new_int64(r->zero_pct));
}

int vb_fit_json(const struct vb_fit *f, const char *path)
{
	const struct vb_model *m = &f->model;
	struct json_object *j = json_object_new_object(), *o, *a, *b;
	int ret;

	vb_json_put_str(j, "tool", "vfm-bench-model");
	o = json_object_new_object();
	vb_json_put_str(
		o, "formula",
		"stop + resume + commit + verify * size + final0 + final_bytes * max(1/link, cpu)");
	vb_json_put_num(o, "stop_ms", m->stop_ms);
	vb_json_put_num(o, "resume_ms", m->resume_ms);
	vb_json_put_num(o, "commit_ms", m->commit_ms);
	vb_json_put_num(o, "verify_ns_per_byte", m->verify_ns_per_B);
	vb_json_put_num(o, "final0_ms", m->final0_ms);
	vb_json_put_num(o, "cpu_ns_per_byte",
			m->cpu_known ? m->cpu_ns_per_B : NAN);
	json_object_object_add(o, "runs", json_object_new_int(m->n));
	json_object_object_add(o, "runs_cpu_bound",
			       json_object_new_int(m->n_cpu_bound));
	vb_json_put_num(o, "rms_ms", m->rms_ms);
	json_object_object_add(j, "model", o);
	a = json_object_new_array();
	for (int c = 0; c < f->ncells; c++) {
		const struct vb_fcell *cl = &f->cells[c];
		const struct vb_cell_err *e = &f->err[c];
		const struct vb_frun *r = &f->runs[cl->first];

		o = json_object_new_object();
		vb_json_put_str(o, "link", r->label);
		put_cfg(o, r);
		json_object_object_add(o, "runs", json_object_new_int(e->runs));
		vb_json_put_num(o, "link_goodput_Bps", cl->link_Bps);
		vb_json_put_num(o, "final_bytes_p50", cl->final_bytes);
		vb_json_put_num(o, "floor_ms_p50", cl->floor);
		vb_json_put_num(o, "downtime_ms_p50", e->meas_p50);
		vb_json_put_num(o, "downtime_ms_min", e->meas_min);
		vb_json_put_num(o, "downtime_ms_max", e->meas_max);
		vb_json_put_num(o, "stop_ms_p50", cl->stop);
		vb_json_put_num(o, "final_transfer_ms_p50", cl->final);
		vb_json_put_num(o, "resume_ms_p50", cl->resume);
		vb_json_put_num(o, "commit_ms_p50", cl->commit);
		vb_json_put_num(o, "verify_ms_p50", cl->verify);
		vb_json_put_num(o, "model_ms", e->pred_ms);
		vb_json_put_num(o, "model_error", e->err);
		vb_json_put_num(o, "loo_model_ms", e->loo_pred_ms);
		vb_json_put_num(o, "loo_model_error", e->loo_err);
		json_object_array_add(a, o);
	}
	json_object_object_add(j, "cells", a);
	o = json_object_new_object();
	vb_json_put_str(o, "label", "projection, not measured");
	a = json_object_new_array();
	for (int i = 0; vb_fit_assumptions[i]; i++)
		json_object_array_add(
			a, json_object_new_string(vb_fit_assumptions[i]));
	json_object_object_add(o, "assumptions", a);
	a = json_object_new_array();
	for (int p = 0; p < f->nproj; p++) {
		const struct vb_fcell *cl = &f->cells[f->proj[p].cell];
		struct json_object *c = json_object_new_object();

		put_cfg(c, &f->runs[cl->first]);
		vb_json_put_str(c, "final_bytes_from",
				f->runs[cl->first].label);
		vb_json_put_num(c, "final_bytes", cl->final_bytes);
		b = json_object_new_array();
		for (int g = 0; g < f->ngbps; g++)
			json_object_array_add(b, pred_json(f->gbps[g],
							   &f->proj[p].at[g]));
		json_object_object_add(c, "at", b);
		json_object_array_add(a, c);
	}
	json_object_object_add(o, "cells", a);
	json_object_object_add(j, "projection", o);
	ret = vb_json_save(path, j);
	json_object_put(j);
	return ret;
}

int vb_fit_csv(const struct vb_fit *f, const char *path)
{
	FILE *o = fopen(path, "we");

	if (!o)
		return -errno;
	fprintf(o,
		"kind,link,size,dirty_Bps,streams,datapath,runs,link_goodput_Bps,final_bytes,floor_ms,downtime_ms_p50,downtime_ms_min,downtime_ms_max,stop_ms,final_transfer_ms,resume_ms,commit_ms,verify_ms,model_ms,model_error,loo_model_ms,loo_model_error\n");
	for (int c = 0; c < f->ncells; c++) {
		const struct vb_fcell *cl = &f->cells[c];
		const struct vb_cell_err *e = &f->err[c];
		const struct vb_frun *r = &f->runs[cl->first];

		fprintf(o,
			"measured,%s,%llu,%llu,%u,%s,%d,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.4f,%.3f,%.4f\n",
			r->label, (unsigned long long)r->size,
			(unsigned long long)r->dirty, r->streams, r->datapath,
			e->runs, cl->link_Bps, cl->final_bytes, cl->floor,
			e->meas_p50, e->meas_min, e->meas_max, cl->stop,
			cl->final, cl->resume, cl->commit, cl->verify,
			e->pred_ms, e->err, e->loo_pred_ms, e->loo_err);
	}
	for (int p = 0; p < f->nproj; p++) {
		const struct vb_fcell *cl = &f->cells[f->proj[p].cell];
		const struct vb_frun *r = &f->runs[cl->first];

		for (int g = 0; g < f->ngbps; g++) {
			const struct vb_mpred *q = &f->proj[p].at[g];

			fprintf(o,
				"projection,%ggbit,%llu,%llu,%u,%s,0,%.0f,%.0f,%.3f,,,,%.3f,%.3f,%.3f,%.3f,,%.3f,,,\n",
				f->gbps[g], (unsigned long long)r->size,
				(unsigned long long)r->dirty, r->streams,
				r->datapath, vb_link_Bps(f->gbps[g]),
				cl->final_bytes, q->link_ms, q->stop_ms,
				q->final_ms, q->resume_ms, q->commit_ms,
				q->downtime_ms);
		}
	}
	return fclose(o) ? -errno : 0;
}

static bool same_cfg(const struct vb_frun *a, const struct vb_frun *b)
{
	return !strcmp(a->transport, b->transport) &&
	       !strcmp(a->datapath, b->datapath) && a->size == b->size &&
	       a->dirty == b->dirty && a->streams == b->streams &&
	       a->zero_pct == b->zero_pct && a->format == b->format;
}

/* split.dat: per cell the cumulative p50 parts, the downtime p50/min/max
 * and the model's; one row per cell. */
static int split_data(const struct vb_fit *f, const char *dir)
{
	char path[4200], name[64];
	FILE *o;

	snprintf(path, sizeof(path), "%s/split.dat", dir);
	o = fopen(path, "we");
	if (!o)
		return -errno;
	fprintf(o,
		"# x stop +final +resume +commit_msgs +digest downtime_p50 min max model label\n");
	for (int c = 0; c < f->ncells; c++) {
		const struct vb_fcell *cl = &f->cells[c];
		const struct vb_cell_err *e = &f->err[c];
		double s1 = cl->stop, s2 = s1 + cl->final, s3 = s2 + cl->resume,
		       s4 = s3 + fmax(cl->commit - cl->verify, 0),
		       s5 = s3 + cl->commit;

		vb_fit_cell_name(f, c, true, name, sizeof(name));
		fprintf(o,
			"%d %.4f %.4f %.4f %.4f %.4f %.4f %.4f %.4f %.4f \"%s\"\n",
			c, s1, s2, s3, s4, s5, e->meas_p50, e->meas_min,
			e->meas_max, e->pred_ms, name);
	}
	return fclose(o) ? -errno : 0;
}

/* link.<p>.dat per configuration with >= 1 MiB of final bytes: rate,
 * measured p50/min/max, floor, model; the projected rates after. */
static int link_data(const struct vb_fit *f, const char *dir, int p, bool *any)
{
	const struct vb_frun *r = &f->runs[f->cells[f->proj[p].cell].first];
	char path[4200];
	FILE *o;

	*any = f->cells[f->proj[p].cell].final_bytes >= 1048576;
	if (!*any)
		return 0;
	snprintf(path, sizeof(path), "%s/link.%d.dat", dir, p);
	o = fopen(path, "we");
	if (!o)
		return -errno;
	fprintf(o,
		"# gbps meas_p50 min max floor model (measured links, then projected)\n");
	for (int c = 0; c < f->ncells; c++) {
		const struct vb_fcell *cl = &f->cells[c];
		const struct vb_frun *q = &f->runs[cl->first];
		const struct vb_cell_err *e = &f->err[c];

		if (!same_cfg(q, r) || q->gbps <= 0)
			continue;
		fprintf(o, "%g %.4f %.4f %.4f %.4f %.4f\n", q->gbps,
			e->meas_p50, e->meas_min, e->meas_max, cl->floor,
			e->pred_ms);
	}
	fprintf(o, "\n\n");
	/* Index 1: the model from the fastest measured link on. */
	fprintf(o, "%g NaN NaN NaN %.4f %.4f\n", r->gbps,
		f->cells[f->proj[p].cell].floor,
		f->err[f->proj[p].cell].pred_ms);
	for (int g = 0; g < f->ngbps; g++)
		fprintf(o, "%g NaN NaN NaN %.4f %.4f\n", f->gbps[g],
			f->proj[p].at[g].link_ms, f->proj[p].at[g].downtime_ms);
	return fclose(o) ? -errno : 0;
}

/* conv.dat: the dirtying configuration with the most iterations; one block
 * per run: iteration, bytes sent, dirty bytes left. */
static int conv_data(const struct vb_fit *f, const char *dir, int *pick,
		     char *title, size_t len)
{
	char path[4200], name[64];
	int best = -1, most = 0, n = 0, empty = 0;
	FILE *o;

	for (int i = 0; i < f->nruns; i++)
		if (f->runs[i].dirty && f->runs[i].niter > most) {
			most = f->runs[i].niter;
			best = i;
		}
	*pick = 0;
	if (best < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/conv.dat", dir);
	o = fopen(path, "we");
	if (!o)
		return -errno;
	vb_fit_cell_name(f, f->runs[best].o.cell, false, name, sizeof(name));
	snprintf(title, len, "%s", name);
	for (int i = 0; i < f->nruns; i++) {
		const struct vb_frun *r = &f->runs[i];
		int last = r->niter;

		if (!same_cfg(r, &f->runs[best]) || !r->niter)
			continue;
		/* Iterations that moved nothing (the policy waiting) are
		 * counted in the title, not drawn: a log scale has no 0. */
		while (last > 0 && !r->iter_bytes[last - 1] &&
		       !r->iter_dirty[last - 1]) {
			last--;
			empty++;
		}
		fprintf(o, "# %s rep %d\n", r->label, r->rep);
		for (int k = 0; k < last; k++)
			fprintf(o, "%d %.4f %.4f\n", k + 1,
				r->iter_bytes[k] / 1048576,
				r->iter_dirty[k] / 1048576);
		/* The final phase: what was left went while stopped. */
		fprintf(o, "%d %.4f NaN\n\n\n", last + 1,
			r->o.final_bytes / 1048576);
		n++;
	}
	if (empty)
		snprintf(title + strlen(title), len - strlen(title),
			 "; %d empty iteration%s not drawn", empty,
			 empty == 1 ? "" : "s");
	*pick = best + 1;
	fclose(o);
	return n;
}

int vb_fit_plots(const struct vb_fit *f, const char *dir)
{
	char path[4200], cmd[4400], title[64];
	int ret, pick = 0, nconv;
	bool first = true;
	FILE *o;

	ret = split_data(f, dir);
	if (ret)
		return ret;
	nconv = conv_data(f, dir, &pick, title, sizeof(title));
	if (nconv < 0)
		return nconv;
	snprintf(path, sizeof(path), "%s/model.gp", dir);
	o = fopen(path, "we");
	if (!o)
		return -errno;
	fprintf(o,
		"set terminal pngcairo size 1200,700 font 'sans,11'\nset grid ytics\nset datafile missing 'NaN'\n"
		"set key outside right top\n");
	/* 1. The downtime split, stacked, per cell. */
	fprintf(o,
		"set output '%s/downtime_split.png'\n"
		"set title \"Where the downtime goes, per cell (p50 of each part over the reps)\\nwhisker: min-max of the downtime over the reps; x: the model\"\n"
		"set ylabel 'downtime (ms)'\nset yrange [0:*]\nset xrange [-0.6:%d.6]\n"
		"set style fill solid 0.85 border -1\nset boxwidth 0.7\nset xtics rotate by -30 left\n"
		"plot '%s/split.dat' using 1:6:xtic(11) with boxes lc rgb '#8064a2' title 'commit: destination digest', "
		"'' using 1:5 with boxes lc rgb '#c0504d' title 'commit: the rest (messages, waiting for a CPU)', "
		"'' using 1:4 with boxes lc rgb '#f79646' title 'resume', "
		"'' using 1:3 with boxes lc rgb '#4f81bd' title 'final transfer', "
		"'' using 1:2 with boxes lc rgb '#9bbb59' title 'stop', "
		"'' using 1:7:8:9 with yerrorbars lc rgb 'black' pt 7 ps 0.6 lw 1.5 title 'downtime p50, min-max', "
		"'' using 1:10 with points lc rgb 'black' pt 2 ps 1.5 lw 2 title 'model (fitted)'\n",
		dir, f->ncells - 1, dir);
	fprintf(o,
		"unset xtics\nset xtics\nunset xrange\nset style fill empty\n");
	/* 2. Measured vs floor vs the model against the link's rate. */
	fprintf(o,
		"set output '%s/downtime_vs_link.png'\n"
		"set title \"Downtime against the link rate: measured (p50, min-max), wire floor, model\\nbeyond the measured links: PROJECTION (dashed), not measured\"\n"
		"set logscale xy\nset xlabel 'link rate (Gbit/s)'\nset ylabel 'downtime (ms)'\nset yrange [*:*]\n"
		"set xrange [0.7:150]\nset xtics (1, 10, 25, 100)\n",
		dir);
	for (int p = 0, col = 1; p < f->nproj; p++) {
		char name[64];
		bool any;

		ret = link_data(f, dir, p, &any);
		if (ret) {
			fclose(o);
			return ret;
		}
		if (!any)
			continue;
		vb_fit_cell_name(f, f->proj[p].cell, false, name, sizeof(name));
		fprintf(o,
			"%s'%s/link.%d.dat' index 0 using 1:2:3:4 with yerrorbars lc %d pt 7 ps 1.2 lw 2 title '%s measured', "
			"'' index 0 using 1:5 with linespoints lc %d dt 3 pt 4 title '%s floor (final bytes / link)', "
			"'' index 0 using 1:6 with linespoints lc %d lw 2 pt 2 title '%s model', "
			"'' index 1 using 1:6 with linespoints lc %d lw 2 dt 2 pt 6 title '%s projection', "
			"'' index 1 using 1:5 with lines lc %d dt 3 notitle",
			first ? "plot " : ", ", dir, p, col, name, col, name,
			col, name, col, name, col);
		first = false;
		col++;
	}
	fprintf(o, "%s\n",
		first ? "plot 1/0 title 'no cell with >= 1 MiB of final bytes'" :
			"");
	fprintf(o, "unset logscale\nunset xrange\nset xtics autofreq\n");
	/* 3. Convergence of the dirtying run with the most iterations. */
	fprintf(o,
		"set output '%s/convergence.png'\nset logscale y\n"
		"set title \"Pre-copy convergence: %s (every run of it)\\nsolid: dirty bytes left after the iteration; dashed: bytes the iteration sent; last point: the final phase\"\n"
		"set xlabel 'pre-copy iteration (the last point: the final phase, sent while stopped)'\nset ylabel 'MiB'\nset xtics 1\n",
		dir, title);
	if (!nconv) {
		fprintf(o, "plot 1/0 title 'no dirtying run'\n");
	} else {
		fprintf(o, "plot ");
		for (int b = 0, i = 0; i < f->nruns && b < nconv; i++) {
			const struct vb_frun *r = &f->runs[i];

			if (!same_cfg(r, &f->runs[pick - 1]) || !r->niter)
				continue;
			fprintf(o,
				"%s'%s/conv.dat' index %d using 1:3 with linespoints lw 2 lc %d pt 7 title '%s rep %d: dirty left', "
				"'' index %d using 1:2 with linespoints lw 1 dt 2 lc %d pt 6 title '%s rep %d: sent'",
				b ? ", " : "", dir, b, b + 1, r->label, r->rep,
				b, b + 1, r->label, r->rep);
			b++;
		}
		fprintf(o, "\n");
	}
	fclose(o);
	snprintf(cmd, sizeof(cmd),
		 "gnuplot '%s/model.gp' > '%s/gnuplot.out' 2>&1", dir, dir);
	ret = system(cmd);
	if (ret == -1 || !WIFEXITED(ret) || WEXITSTATUS(ret)) {
		fprintf(stderr,
			"vfm-bench-model: gnuplot failed; see %s/gnuplot.out.\n",
			dir);
		return -EIO;
	}
	return 0;
}
