// SPDX-License-Identifier: MIT
/* Results out: the human table, results.json, results.csv. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static bool same_cfg(const struct vb_run *a, const struct vb_run *b)
{
	return !strcmp(a->transport, b->transport) &&
	       !strcmp(a->datapath, b->datapath) && a->size == b->size &&
	       a->dirty == b->dirty && a->streams == b->streams &&
	       a->zero_pct == b->zero_pct && a->format == b->format;
}

/* p50 of a field over the good runs of a group; NAN if none. */
#define P50(field, cond)                                                \
	({                                                              \
		int k_ = 0;                                             \
		for (int i_ = 0; i_ < res->nruns; i_++) {               \
			const struct vb_run *r_ = &res->runs[i_];       \
			if (r_->ok && same_cfg(r_, g->first) && (cond)) \
				v[k_++] = (double)r_->field;            \
		}                                                       \
		k_ ? vb_median(v, k_) : NAN;                            \
	})

int vb_groups(const struct vb_results *res, struct vb_group **out)
{
	struct vb_group *gs = calloc((size_t)res->nruns + 1, sizeof(*gs));
	double *v = calloc((size_t)res->nruns + 1, sizeof(*v));
	int n = 0;

	if (!gs || !v) {
		free(gs);
		free(v);
		return -ENOMEM;
	}
	for (int i = 0; i < res->nruns; i++) {
		const struct vb_run *r = &res->runs[i];
		struct vb_group *g = NULL;

		for (int j = 0; j < n && !g; j++)
			if (same_cfg(gs[j].first, r))
				g = &gs[j];
		if (!g) {
			g = &gs[n++];
			g->first = r;
		}
		g->n++;
		g->nok += r->ok;
	}
	for (int j = 0; j < n; j++) {
		struct vb_group *g = &gs[j];
		int dev = 0, tr = 0;

		g->downtime = P50(downtime_ms, 1);
		g->overhead = P50(overhead_ms, 1);
		g->stop = P50(stop_ms, r_->stop_ms >= 0);
		g->final = P50(final_ms, r_->final_ms >= 0);
		g->resume = P50(resume_ms, 1);
		g->commit = P50(commit_ms, r_->stop_ms >= 0);
		g->xfer = P50(xfer_Bps, r_->xfer_Bps > 0);
		g->ratio = P50(peer_ratio, r_->peer_ratio > 0);
		g->cpu_gib = P50(cpu_s_per_gib, r_->cpu_s_per_gib > 0);
		g->cpu_dev = P50(cpu_dev_gib, r_->cpu_dev_gib >= 0);
		g->cpu_xport = P50(cpu_xport_gib, r_->cpu_xport_gib >= 0);
		g->cpu_agent = P50(cpu_agent_gib, r_->cpu_agent_gib >= 0);
		g->floor = P50(floor_ms, r_->floor_ms >= 0);
		g->link_floor = P50(link_floor_ms, 1);
		g->proj = P50(proj_downtime_ms, 1);
		g->iters = P50(iterations, 1);
		g->final_bytes = P50(final_bytes, 1);
		for (int i = 0; i < res->nruns; i++) {
			const struct vb_run *r = &res->runs[i];

			if (r->ok && same_cfg(r, g->first)) {
				dev += !strcmp(r->dominant, "device");
				tr += !strcmp(r->dominant, "transport");
			}
		}
		snprintf(g->dominant, sizeof(g->dominant), "%s",
			 dev + tr == 0 ? "-" :
			 dev >= tr     ? "device" :
					 "transport");
	}
	free(v);
	*out = gs;
	return n;
}

static const char *f1(char *buf, size_t len, double v, int prec)
{
	if (isnan(v) || v < -1e300)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*f", prec, v);
	return buf;
}

static void peers_line(FILE *f, const struct vb_opts *o,
		       const struct vb_peers *pe)
{
	if (pe->memcpy_Bps > 0)
		fprintf(f, "peers: memcpy %.2f GB/s", pe->memcpy_Bps / 1e9);
	else
		fprintf(f, "peers: not measured");
	for (int i = 0; i < pe->n; i++) {
		if (pe->iperf_Bps[i] > 0)
			fprintf(f,
				"; iperf3 -P %u %.2f GB/s (before %.2f, after %.2f)",
				pe->streams[i], pe->iperf_Bps[i] / 1e9,
				pe->iperf_before[i] / 1e9,
				pe->iperf_after[i] / 1e9);
		if (pe->xport_Bps[i] > 0)
			fprintf(f,
				"; vfm-xport-perf x%u %.2f GB/s (before %.2f, after %.2f)",
				pe->streams[i], pe->xport_Bps[i] / 1e9,
				pe->xport_before[i] / 1e9,
				pe->xport_after[i] / 1e9);
	}
	if (pe->iperf_why[0])
		fprintf(f, "; iperf3: %s", pe->iperf_why);
	if (pe->ib_Bps > 0)
		fprintf(f, "; ib_write_bw (%s, 1 MiB) %.2f GB/s", pe->rdma_dev,
			pe->ib_Bps / 1e9);
	else
		fprintf(f, "; ib_write_bw skipped: %s", pe->ib_why);
	fprintf(f, "\nlink for projections: %g Gb/s = %.2f GB/s goodput\n",
		o->link_gbps, vb_link_Bps(o->link_gbps) / 1e9);
}

/* Target summary values, shared by the table and JSON. */
struct targets {
	double tcp_ratio[VB_LIST_MAX]; /* p50 over dirty-0 mmap runs */
	double overhead_p50, overhead_p50_d0, overhead_p90;
	double fixed_p50; /* stop + resume + commit: no data moves */
	int n_overhead;
	double mmap_Bps, bounce_Bps, mmap_cpu, bounce_cpu;
	char bounce_why[VB_WHY];
	double rdma_ratio;
	char rdma_why[VB_WHY];
};

static void targets(const struct vb_opts *o, const struct vb_results *res,
		    struct targets *t)
{
	double *v = calloc((size_t)res->nruns + 1, sizeof(double));
	double *w = calloc((size_t)res->nruns + 1, sizeof(double));
	int n, m;

	memset(t, 0, sizeof(*t));
	if (!v || !w)
		goto out;
	for (int s = 0; s < o->nstreams; s++) {
		n = 0;
		for (int i = 0; i < res->nruns; i++) {
			const struct vb_run *r = &res->runs[i];

			if (r->ok && !strcmp(r->transport, "tcp") &&
			    !strcmp(r->datapath, "mmap") && !r->dirty &&
			    r->streams == o->streams[s] && r->peer_ratio > 0)
				v[n++] = r->peer_ratio;
		}
		t->tcp_ratio[s] = n ? vb_median(v, n) : NAN;
	}
	n = m = 0;
	for (int i = 0; i < res->nruns; i++) {
		const struct vb_run *r = &res->runs[i];

		if (r->ok && !strcmp(r->transport, "tcp") &&
		    !strcmp(r->datapath, "mmap") && r->overhead_ms > -1e9) {
			v[n++] = r->overhead_ms;
			if (!r->dirty)
				w[m++] = r->overhead_ms;
		}
	}
	t->n_overhead = n;
	t->overhead_p50 = n ? vb_median(v, n) : NAN;
	t->overhead_p90 = n ? vb_pct(v, n, 90) : NAN;
	t->overhead_p50_d0 = m ? vb_median(w, m) : NAN;
	n = 0;
	for (int i = 0; i < res->nruns; i++) {
		const struct vb_run *r = &res->runs[i];

		if (r->ok && !strcmp(r->transport, "tcp") &&
		    !strcmp(r->datapath, "mmap") && r->final_ms >= 0)
			v[n++] = r->downtime_ms - r->final_ms;
	}
	t->fixed_p50 = n ? vb_median(v, n) : NAN;
	/* mmap vs bounce over the configurations that have both. */
	t->mmap_Bps = t->bounce_Bps = t->mmap_cpu = t->bounce_cpu = NAN;
	for (int dp = 0; dp < 2; dp++) {
		const char *name = dp ? "bounce" : "mmap";

		n = m = 0;
		for (int i = 0; i < res->nruns; i++) {
			const struct vb_run *r = &res->runs[i];

			if (!r->ok || strcmp(r->datapath, name) ||
			    strcmp(r->transport, "tcp"))
				continue;
			if (r->xfer_Bps > 0)
				v[n++] = r->xfer_Bps;
			if (r->cpu_s_per_gib > 0)
				w[m++] = r->cpu_s_per_gib;
		}
		if (dp) {
			t->bounce_Bps = n ? vb_median(v, n) : NAN;
			t->bounce_cpu = m ? vb_median(w, m) : NAN;
		} else {
			t->mmap_Bps = n ? vb_median(v, n) : NAN;
			t->mmap_cpu = m ? vb_median(w, m) : NAN;
		}
	}
	for (int i = 0; i < res->nruns; i++)
		if (!strcmp(res->runs[i].datapath, "bounce") &&
		    !res->runs[i].ok) {
			snprintf(t->bounce_why, sizeof(t->bounce_why), "%s",
				 res->runs[i].why);
			break;
		}
	t->rdma_ratio = NAN;
	n = 0;
	for (int i = 0; i < res->nruns; i++) {
		const struct vb_run *r = &res->runs[i];

		if (!strcmp(r->transport, "rdma") && r->ok && r->peer_ratio > 0)
			v[n++] = r->peer_ratio;
		else if (!strcmp(r->transport, "rdma") && !t->rdma_why[0])
			snprintf(t->rdma_why, sizeof(t->rdma_why), "%s",
				 r->why);
	}
	if (n)
		t->rdma_ratio = vb_median(v, n);
out:
	free(v);
	free(w);
}

/* Where the CPU went, both ends, next to iperf3's at the same stream
 * count (tcp). */
static void cpu_split_table(const struct vb_results *res,
			    const struct vb_group *gs, int n)
{
	char b[5][32];

	printf("\nCPU s/GiB by part, both ends (p50; device = produce + load calls, transport = its own threads, agent = the engine's threads less the device's share):\n");
	printf("%-5s %-6s %5s %5s %2s %8s %9s %8s %8s %8s\n", "xport", "path",
	       "size", "dirty", "S", "device", "transport", "agent", "total",
	       "iperf3");
	for (int j = 0; j < n; j++) {
		const struct vb_group *g = &gs[j];
		const struct vb_run *r = g->first;
		double ip = 0;
		char sz[16], dr[16];

		if (!g->nok || isnan(g->cpu_dev))
			continue;
		for (int i = 0; i < res->peers.n; i++)
			if (res->peers.streams[i] == r->streams &&
			    !strcmp(r->transport, "tcp"))
				ip = res->peers.iperf_cpu_gib[i];
		vb_fmt_size(r->size, sz, sizeof(sz));
		vb_fmt_size(r->dirty, dr, sizeof(dr));
		printf("%-5s %-6s %5s %5s %2u %8s %9s %8s %8s %8s\n",
		       r->transport, r->datapath, sz, dr, r->streams,
		       f1(b[0], 32, g->cpu_dev, 3),
		       f1(b[1], 32, g->cpu_xport, 3),
		       f1(b[2], 32, g->cpu_agent, 3),
		       f1(b[3], 32, g->cpu_dev + g->cpu_xport + g->cpu_agent,
			  3),
		       f1(b[4], 32, ip > 0 ? ip : NAN, 3));
	}
}

void vb_report_table(const struct vb_opts *o, const struct vb_results *res)
{
	struct vb_group *gs = NULL;
	struct targets t;
	char b[16][32];
	int n = vb_groups(res, &gs);

	printf("\nvfmig-bench: %d migrations in %.0f s (%s)\n", res->nruns,
	       res->wall_s, res->started);
	peers_line(stdout, o, &res->peers);
	printf("\n%-5s %-6s %5s %5s %2s %3s %9s %7s %8s %7s %7s %5s %-10s %9s %8s %8s %8s %6s %6s %7s %9s %-9s\n",
	       "xport", "path", "size", "dirty", "S", "ok", "downtime", "stop",
	       "final", "resume", "commit", "iters", "decision", "final_MiB",
	       "floor", "meas/fl", "overhead", "GB/s", "x_peer", "CPUs/GiB",
	       "proj_ms", "dominant");
	for (int j = 0; j < n; j++) {
		const struct vb_group *g = &gs[j];
		const struct vb_run *r = g->first;
		char sz[16], dr[16], ok[16], path[24];

		vb_fmt_size(r->size, sz, sizeof(sz));
		vb_fmt_size(r->dirty, dr, sizeof(dr));
		/* --zero/--formats: "mmap/z90f1" (zero pages %, stream format) */
		if (r->zero_pct || o->nformats > 1)
			snprintf(path, sizeof(path), "%s/z%uf%u", r->datapath,
				 r->zero_pct, r->format);
		else
			snprintf(path, sizeof(path), "%s", r->datapath);
		snprintf(ok, sizeof(ok), "%d/%d", g->nok, g->n);
		if (!g->nok) {
			printf("%-5s %-6s %5s %5s %2u %3s  %s: %s\n",
			       r->transport, path, sz, dr, r->streams, ok,
			       r->skipped ? "skipped" : "failed", r->why);
			continue;
		}
		printf("%-5s %-6s %5s %5s %2u %3s %9s %7s %8s %7s %7s %5s %-10s %9s %8s %8s %8s %6s %6s %7s %9s %-9s\n",
		       r->transport, path, sz, dr, r->streams, ok,
		       f1(b[0], 32, g->downtime, 2), f1(b[1], 32, g->stop, 2),
		       f1(b[2], 32, g->final, 2), f1(b[3], 32, g->resume, 3),
		       f1(b[4], 32, g->commit, 2), f1(b[5], 32, g->iters, 0),
		       r->decision, f1(b[6], 32, g->final_bytes / 1048576.0, 2),
		       f1(b[7], 32, g->floor, 2),
		       /* With a few KiB left the floor is ~0: no ratio. */
		       f1(b[8], 32,
			  g->floor > 0 && g->final_bytes >= 1048576 ?
				  g->downtime / g->floor :
				  NAN,
			  1),
		       f1(b[9], 32, g->overhead, 2),
		       f1(b[10], 32, g->xfer / 1e9, 2),
		       f1(b[11], 32, g->ratio, 2), f1(b[12], 32, g->cpu_gib, 2),
		       f1(b[13], 32, g->proj, 2), g->dominant);
	}
	printf("(times in ms, p50 over reps; downtime = stop + final + resume + commit; floor = final bytes / peer goodput; overhead = downtime - final bytes / the agent's bandwidth; GB/s = pre-copy throughput, x_peer its ratio to iperf3 (tcp) or ib_write_bw (rdma) at the same stream count; proj_ms = the downtime model's projection onto a %g Gb/s link (below; not measured), dominant = which would dominate it: the link's time for the final bytes (transport) or the rest (device))\n",
	       o->link_gbps);
	vb_model_line(stdout, res);
	cpu_split_table(res, gs, n);
	if (res->nmem) {
		printf("\nmemory (peak RSS from wait4; device state = sim memory + 32 MiB migration buffer, destination: + its shadow copy):\n");
		for (int i = 0; i < res->nmem; i++) {
			const struct vb_mem *m = &res->mem[i];
			char sz[16];

			vb_fmt_size(m->size, sz, sizeof(sz));
			if (!m->ok) {
				printf("  %5s: skipped: %s\n", sz, m->why);
				continue;
			}
			printf("  %5s: source %7.1f MiB (state %7.1f, agent overhead %6.1f MiB); destination %7.1f MiB (state %7.1f, agent overhead %6.1f MiB)\n",
			       sz, m->src_rss_kb / 1024.0,
			       m->src_expect_kb / 1024.0,
			       m->src_over_kb / 1024.0, m->dst_rss_kb / 1024.0,
			       m->dst_expect_kb / 1024.0,
			       m->dst_over_kb / 1024.0);
		}
	}
	targets(o, res, &t);
	printf("\ntargets:\n");
	for (int s = 0; s < o->nstreams; s++) {
		if (isnan(t.tcp_ratio[s]))
			snprintf(b[0], 32, "not measured");
		else
			snprintf(b[0], 32, "%.2fx", t.tcp_ratio[s]);
		printf("  tcp throughput / iperf3 at %u stream%s: %s (target >= 0.9x)\n",
		       o->streams[s], o->streams[s] == 1 ? "" : "s", b[0]);
	}
	printf("  downtime overhead p50 %s: %s ms over %d tcp/mmap runs (p90 %s; dirty 0 only: %s) (target <= 1 ms)\n"
	       "    its non-transfer part (stop + resume + commit) p50: %s ms\n",
	       o->peer ? "to --peer" : "on loopback",
	       f1(b[0], 32, t.overhead_p50, 2), t.n_overhead,
	       f1(b[1], 32, t.overhead_p90, 2),
	       f1(b[2], 32, t.overhead_p50_d0, 2),
	       f1(b[3], 32, t.fixed_p50, 2));
	if (!isnan(t.bounce_Bps))
		printf("  mmap vs bounce: %.2fx throughput (%.2f vs %.2f GB/s), CPU %s vs %s s/GiB (target >= 1.3x, fewer CPU s/GiB)\n",
		       t.mmap_Bps / t.bounce_Bps, t.mmap_Bps / 1e9,
		       t.bounce_Bps / 1e9, f1(b[0], 32, t.mmap_cpu, 2),
		       f1(b[1], 32, t.bounce_cpu, 2));
	else
		printf("  mmap vs bounce: not measured%s%s\n",
		       t.bounce_why[0] ? ": " : "",
		       t.bounce_why[0] ? t.bounce_why :
					 " (bounce not in --datapath)");
	if (!isnan(t.rdma_ratio))
		printf("  rdma / ib_write_bw: %.2fx (target >= 0.9)\n",
		       t.rdma_ratio);
	else
		printf("  rdma / ib_write_bw: not measured: %s\n",
		       t.rdma_why[0] ? t.rdma_why : res->peers.ib_why);
	free(gs);
}

/* {"streams":N,"Bps":..,"before_Bps":..,"after_Bps":..} of one peer. */
static struct json_object *peer_point(unsigned int streams, double bps,
				      double before, double after)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "streams", json_object_new_int64(streams));
	vb_json_put_num(o, "Bps", bps);
	vb_json_put_num(o, "before_Bps", before);
	vb_json_put_num(o, "after_Bps", after);
	return o;
}

static struct json_object *peers_json(const struct vb_results *res)
{
	const struct vb_peers *p = &res->peers;
	struct json_object *o = json_object_new_object(), *a;

	vb_json_put_num(o, "memcpy_Bps", p->memcpy_Bps);
	a = json_object_new_array();
	for (int i = 0; i < p->n; i++)
		json_object_array_add(
			a, peer_point(p->streams[i], p->iperf_Bps[i],
				      p->iperf_before[i], p->iperf_after[i]));
	json_object_object_add(o, "iperf3", a);
	a = json_object_new_array();
	for (int i = 0; i < p->n; i++)
		json_object_array_add(
			a, peer_point(p->streams[i], p->xport_Bps[i],
				      p->xport_before[i], p->xport_after[i]));
	json_object_object_add(o, "vfm_xport_perf", a);
	vb_json_put_str(o, "iperf3_skipped", p->iperf_why);
	vb_json_put_num(o, "ib_write_bw_Bps", p->ib_Bps);
	vb_json_put_str(o, "ib_write_bw_skipped",
			p->ib_Bps > 0 ? "" : p->ib_why);
	vb_json_put_str(o, "rdma_device", p->rdma_dev);
	return o;
}

/* The matrix cell of a run or a group: transport ... streams. */
static void put_cell(struct json_object *o, const struct vb_run *r)
{
	vb_json_put_str(o, "transport", r->transport);
	vb_json_put_str(o, "datapath", r->datapath);
	json_object_object_add(o, "size", json_object_new_uint64(r->size));
	json_object_object_add(o, "dirty_Bps",
			       json_object_new_uint64(r->dirty));
	json_object_object_add(o, "streams", json_object_new_int64(r->streams));
	json_object_object_add(o, "zero_pct",
			       json_object_new_int64(r->zero_pct));
	json_object_object_add(o, "stream_format",
			       json_object_new_int64(r->format));
}

static struct json_object *run_json(const struct vb_run *r)
{
	struct json_object *o = json_object_new_object();

	put_cell(o, r);
	json_object_object_add(o, "rep", json_object_new_int(r->rep));
	json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
	json_object_object_add(o, "skipped",
			       json_object_new_boolean(r->skipped));
	vb_json_put_str(o, "why", r->why);
	json_object_object_add(o, "send_rc", json_object_new_int(r->send_rc));
	json_object_object_add(o, "recv_rc", json_object_new_int(r->recv_rc));
	json_object_object_add(o, "digest_match",
			       json_object_new_boolean(r->digest_match));
	vb_json_put_num(o, "downtime_ms", r->downtime_ms);
	vb_json_put_num(o, "stop_ms", r->stop_ms);
	vb_json_put_num(o, "final_transfer_ms", r->final_ms);
	vb_json_put_num(o, "resume_ms", r->resume_ms);
	vb_json_put_num(o, "commit_ms", r->commit_ms);
	vb_json_put_str(o, "split_source",
			r->split_from_stats ? "stats" : "logs");
	vb_json_put_num(o, "total_ms", r->total_ms);
	vb_json_put_num(o, "precopy_ms", r->precopy_ms);
	json_object_object_add(o, "bytes", json_object_new_uint64(r->bytes));
	json_object_object_add(o, "precopy_bytes",
			       json_object_new_uint64(r->precopy_bytes));
	json_object_object_add(o, "final_bytes",
			       json_object_new_uint64(r->final_bytes));
	json_object_object_add(o, "iterations",
			       json_object_new_int64(r->iterations));
	vb_json_put_str(o, "decision", r->decision);
	vb_json_put_num(o, "estimated_downtime_ms", r->est_downtime_ms);
	vb_json_put_num(o, "agent_bandwidth_Bps", r->bw_Bps);
	vb_json_put_num(o, "precopy_Bps", r->xfer_Bps);
	vb_json_put_num(o, "peer_Bps", r->peer_Bps);
	vb_json_put_num(o, "peer_ratio", r->peer_ratio);
	vb_json_put_num(o, "overhead_ms", r->overhead_ms);
	vb_json_put_num(o, "floor_ms", r->floor_ms);
	vb_json_put_num(o, "measured_over_floor",
			r->floor_ms > 0 ? r->downtime_ms / r->floor_ms : NAN);
	vb_json_put_num(o, "link_floor_ms", r->link_floor_ms);
	vb_json_put_num(o, "projected_downtime_ms", r->proj_downtime_ms);
	vb_json_put_str(o, "dominant", r->dominant);
	vb_json_put_num(o, "src_peak_rss_kb", (double)r->src_rss_kb);
	vb_json_put_num(o, "dst_peak_rss_kb", (double)r->dst_rss_kb);
	vb_json_put_num(o, "src_cpu_s", r->src_cpu_s);
	vb_json_put_num(o, "dst_cpu_s", r->dst_cpu_s);
	vb_json_put_num(o, "transfer_cpu_s", r->xfer_cpu_s);
	vb_json_put_num(o, "cpu_s_per_gib", r->cpu_s_per_gib);
	vb_json_put_num(o, "cpu_device_s_per_gib", r->cpu_dev_gib);
	vb_json_put_num(o, "cpu_transport_s_per_gib", r->cpu_xport_gib);
	vb_json_put_num(o, "cpu_agent_s_per_gib", r->cpu_agent_gib);
	return o;
}

static struct json_object *group_json(const struct vb_group *g)
{
	struct json_object *o = json_object_new_object();

	put_cell(o, g->first);
	json_object_object_add(o, "runs", json_object_new_int(g->n));
	json_object_object_add(o, "ok", json_object_new_int(g->nok));
	vb_json_put_num(o, "downtime_ms_p50", g->downtime);
	vb_json_put_num(o, "stop_ms_p50", g->stop);
	vb_json_put_num(o, "final_transfer_ms_p50", g->final);
	vb_json_put_num(o, "resume_ms_p50", g->resume);
	vb_json_put_num(o, "commit_ms_p50", g->commit);
	vb_json_put_num(o, "overhead_ms_p50", g->overhead);
	vb_json_put_num(o, "iterations_p50", g->iters);
	vb_json_put_num(o, "final_bytes_p50", g->final_bytes);
	vb_json_put_num(o, "floor_ms_p50", g->floor);
	vb_json_put_num(o, "precopy_Bps_p50", g->xfer);
	vb_json_put_num(o, "peer_ratio_p50", g->ratio);
	vb_json_put_num(o, "cpu_s_per_gib_p50", g->cpu_gib);
	vb_json_put_num(o, "cpu_device_s_per_gib_p50", g->cpu_dev);
	vb_json_put_num(o, "cpu_transport_s_per_gib_p50", g->cpu_xport);
	vb_json_put_num(o, "cpu_agent_s_per_gib_p50", g->cpu_agent);
	vb_json_put_num(o, "projected_downtime_ms_p50", g->proj);
	vb_json_put_str(o, "dominant", g->dominant);
	return o;
}

static struct json_object *mem_json(const struct vb_mem *m)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "size", json_object_new_uint64(m->size));
	json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
	vb_json_put_str(o, "why", m->why);
	json_object_object_add(o, "src_peak_rss_kb",
			       json_object_new_int64(m->src_rss_kb));
	json_object_object_add(o, "dst_peak_rss_kb",
			       json_object_new_int64(m->dst_rss_kb));
	vb_json_put_num(o, "src_state_kb", m->src_expect_kb);
	vb_json_put_num(o, "dst_state_kb", m->dst_expect_kb);
	vb_json_put_num(o, "src_overhead_kb", m->src_over_kb);
	vb_json_put_num(o, "dst_overhead_kb", m->dst_over_kb);
	return o;
}

static struct json_object *targets_json(const struct vb_opts *o,
					const struct vb_results *res,
					const struct targets *t)
{
	struct json_object *j = json_object_new_object(), *a, *p;

	a = json_object_new_array();
	for (int s = 0; s < o->nstreams; s++) {
		p = json_object_new_object();
		json_object_object_add(p, "streams",
				       json_object_new_int64(o->streams[s]));
		vb_json_put_num(p, "ratio_p50", t->tcp_ratio[s]);
		json_object_array_add(a, p);
	}
	json_object_object_add(j, "tcp_over_iperf3", a);
	vb_json_put_num(j, "overhead_ms_p50", t->overhead_p50);
	vb_json_put_num(j, "overhead_ms_p90", t->overhead_p90);
	vb_json_put_num(j, "overhead_ms_p50_dirty0", t->overhead_p50_d0);
	vb_json_put_num(j, "stop_resume_commit_ms_p50", t->fixed_p50);
	vb_json_put_num(j, "mmap_Bps", t->mmap_Bps);
	vb_json_put_num(j, "bounce_Bps", t->bounce_Bps);
	vb_json_put_num(j, "mmap_over_bounce", t->mmap_Bps / t->bounce_Bps);
	vb_json_put_num(j, "mmap_cpu_s_per_gib", t->mmap_cpu);
	vb_json_put_num(j, "bounce_cpu_s_per_gib", t->bounce_cpu);
	vb_json_put_str(j, "bounce_why", t->bounce_why);
	vb_json_put_num(j, "rdma_over_ib_write_bw", t->rdma_ratio);
	vb_json_put_str(j, "rdma_why",
			t->rdma_why[0] ? t->rdma_why : res->peers.ib_why);
	return j;
}

int vb_report_json(const struct vb_opts *o, const struct vb_results *res,
		   const char *path)
{
	struct json_object *j = json_object_new_object(), *a;
	struct vb_group *gs = NULL;
	struct targets t;
	int n, ret;

	if (!j)
		return -ENOMEM;
	targets(o, res, &t);
	vb_json_put_str(j, "tool", "vfmig-bench");
	vb_json_put_str(j, "started", res->started);
	vb_json_put_num(j, "wall_s", res->wall_s);
	vb_json_put_str(j, "mode", o->peer ? "two-hosts" : "loopback");
	vb_json_put_num(j, "link_gbps", o->link_gbps);
	vb_json_put_num(j, "link_goodput_Bps", vb_link_Bps(o->link_gbps));
	json_object_object_add(j, "peers", peers_json(res));
	a = json_object_new_array();
	for (int i = 0; i < res->nruns; i++)
		json_object_array_add(a, run_json(&res->runs[i]));
	json_object_object_add(j, "runs", a);
	a = json_object_new_array();
	n = vb_groups(res, &gs);
	for (int i = 0; i < n; i++)
		json_object_array_add(a, group_json(&gs[i]));
	free(gs);
	json_object_object_add(j, "groups", a);
	a = json_object_new_array();
	for (int i = 0; i < res->nmem; i++)
		json_object_array_add(a, mem_json(&res->mem[i]));
	json_object_object_add(j, "memory", a);
	json_object_object_add(j, "targets", targets_json(o, res, &t));
	json_object_object_add(j, "model", vb_model_json(res));
	ret = vb_json_save(path, j);
	json_object_put(j);
	return ret;
}

int vb_report_csv(const struct vb_results *res, const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fprintf(f,
		"transport,datapath,size,dirty_Bps,streams,rep,ok,downtime_ms,stop_ms,final_transfer_ms,resume_ms,commit_ms,iterations,decision,final_bytes,bytes,precopy_Bps,peer_Bps,peer_ratio,overhead_ms,floor_ms,link_floor_ms,projected_downtime_ms,dominant,src_peak_rss_kb,dst_peak_rss_kb,transfer_cpu_s,cpu_s_per_gib,cpu_device_s_per_gib,cpu_transport_s_per_gib,cpu_agent_s_per_gib,why\n");
	for (int i = 0; i < res->nruns; i++) {
		const struct vb_run *r = &res->runs[i];
		char why[VB_WHY];
		size_t k = 0;

		for (const char *c = r->why; *c && k + 1 < sizeof(why); c++)
			why[k++] = (*c == ',' || *c == '"' || *c == '\n') ?
					   ';' :
					   *c;
		why[k] = '\0';
		fprintf(f,
			"%s,%s,%llu,%llu,%u,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%u,%s,%llu,%llu,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f,%.3f,%s,%ld,%ld,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n",
			r->transport, r->datapath, (unsigned long long)r->size,
			(unsigned long long)r->dirty, r->streams, r->rep, r->ok,
			r->downtime_ms, r->stop_ms, r->final_ms, r->resume_ms,
			r->commit_ms, r->iterations, r->decision,
			(unsigned long long)r->final_bytes,
			(unsigned long long)r->bytes, r->xfer_Bps, r->peer_Bps,
			r->peer_ratio, r->overhead_ms, r->floor_ms,
			r->link_floor_ms, r->proj_downtime_ms, r->dominant,
			r->src_rss_kb, r->dst_rss_kb, r->xfer_cpu_s,
			r->cpu_s_per_gib, r->cpu_dev_gib, r->cpu_xport_gib,
			r->cpu_agent_gib, why);
	}
	return fclose(f) ? -errno : 0;
}
