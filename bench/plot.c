// SPDX-License-Identifier: MIT
/* PNG plots through gnuplot: data files and a script in the output folder. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench.h"

static const struct vb_group *find(const struct vb_group *gs, int n,
				   const char *dp, uint64_t size,
				   uint64_t dirty, unsigned int streams)
{
	for (int j = 0; j < n; j++) {
		const struct vb_run *r = gs[j].first;

		if (!strcmp(r->transport, "tcp") && !strcmp(r->datapath, dp) &&
		    r->size == size && r->dirty == dirty &&
		    r->streams == streams && gs[j].nok)
			return &gs[j];
	}
	return NULL;
}

static void num(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, " NaN");
	else
		fprintf(f, " %.6g", v);
}

int vb_report_plots(const struct vb_opts *o, const struct vb_results *res,
		    const char *dir)
{
	char path[4200], cmd[4400];
	struct vb_group *gs = NULL;
	unsigned int smax = 0;
	FILE *f;
	int n = vb_groups(res, &gs), ret;

	if (n < 0)
		return n;
	for (int s = 0; s < o->nstreams; s++)
		if (o->streams[s] > smax)
			smax = o->streams[s];
	/* downtime.dat: dirty MB/s, then per size downtime p50 and link floor. */
	snprintf(path, sizeof(path), "%s/downtime.dat", dir);
	f = fopen(path, "we");
	if (!f)
		goto fail;
	fprintf(f, "# dirty_MBps");
	for (int z = 0; z < o->nsizes; z++)
		fprintf(f, " downtime_%llu", (unsigned long long)o->sizes[z]);
	fprintf(f, "\n");
	for (int d = 0; d < o->ndirty; d++) {
		fprintf(f, "%.3f", (double)o->dirty[d] / 1e6);
		for (int z = 0; z < o->nsizes; z++) {
			const struct vb_group *g = find(
				gs, n, "mmap", o->sizes[z], o->dirty[d], smax);

			num(f, g ? g->downtime : NAN);
		}
		for (int z = 0; z < o->nsizes; z++) {
			const struct vb_group *g = find(
				gs, n, "mmap", o->sizes[z], o->dirty[d], smax);

			num(f, g ? g->proj : NAN);
		}
		fprintf(f, "\n");
	}
	fclose(f);
	/* streams.dat: streams, iperf3, xport-perf, memcpy, then per size. */
	snprintf(path, sizeof(path), "%s/streams.dat", dir);
	f = fopen(path, "we");
	if (!f)
		goto fail;
	fprintf(f,
		"# streams iperf3_GBps xport_GBps memcpy_GBps vfmig_GBps_per_size...\n");
	for (int s = 0; s < o->nstreams; s++) {
		fprintf(f, "%u", o->streams[s]);
		num(f, res->peers.iperf_Bps[s] > 0 ?
			       res->peers.iperf_Bps[s] / 1e9 :
			       NAN);
		num(f, res->peers.xport_Bps[s] > 0 ?
			       res->peers.xport_Bps[s] / 1e9 :
			       NAN);
		num(f, res->peers.memcpy_Bps / 1e9);
		for (int z = 0; z < o->nsizes; z++) {
			const struct vb_group *g = find(
				gs, n, "mmap", o->sizes[z], 0, o->streams[s]);

			num(f, g ? g->xfer / 1e9 : NAN);
		}
		for (int z = 0; z < o->nsizes; z++) {
			const struct vb_group *g = find(
				gs, n, "bounce", o->sizes[z], 0, o->streams[s]);

			num(f, g ? g->xfer / 1e9 : NAN);
		}
		fprintf(f, "\n");
	}
	fclose(f);
	/* split.dat: per cell the cumulative p50 parts of the downtime, its
	 * p50, min and max over the reps, the projection, and a label. */
	snprintf(path, sizeof(path), "%s/split.dat", dir);
	f = fopen(path, "we");
	if (!f)
		goto fail;
	fprintf(f,
		"# x stop +final +resume +commit downtime_p50 min max proj label\n");
	for (int j = 0, x = 0; j < n; j++) {
		const struct vb_group *g = &gs[j];
		const struct vb_run *r = g->first;
		double lo = INFINITY, hi = -INFINITY;
		char sz[16], dr[16];

		if (!g->nok || isnan(g->final))
			continue;
		for (int i = 0; i < res->nruns; i++) {
			const struct vb_run *q = &res->runs[i];

			if (q->ok && !strcmp(q->transport, r->transport) &&
			    !strcmp(q->datapath, r->datapath) &&
			    q->size == r->size && q->dirty == r->dirty &&
			    q->streams == r->streams &&
			    q->zero_pct == r->zero_pct &&
			    q->format == r->format) {
				lo = fmin(lo, q->downtime_ms);
				hi = fmax(hi, q->downtime_ms);
			}
		}
		vb_fmt_size(r->size, sz, sizeof(sz));
		vb_fmt_size(r->dirty, dr, sizeof(dr));
		fprintf(f, "%d", x++);
		num(f, g->stop);
		num(f, g->stop + g->final);
		num(f, g->stop + g->final + g->resume);
		num(f, g->stop + g->final + g->resume + g->commit);
		num(f, g->downtime);
		num(f, lo);
		num(f, hi);
		num(f, g->proj);
		fprintf(f, " \"%s %s %s d%s x%u\"\n", r->transport, r->datapath,
			sz, dr, r->streams);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/plots.gp", dir);
	f = fopen(path, "we");
	if (!f)
		goto fail;
	fprintf(f,
		"set terminal pngcairo size 1000,650 font 'sans,11'\nset grid\nset key outside right top\n"
		"set datafile missing 'NaN'\n");
	fprintf(f,
		"set output '%s/downtime_vs_dirty.png'\n"
		"set title 'vfmig downtime vs dirty rate (tcp, %u stream%s, mmap path, p50; dashed: projected on %g Gb/s)'\n"
		"set xlabel 'dirty rate (MB/s)'\nset ylabel 'downtime (ms)'\nset yrange [0:*]\n",
		dir, smax, smax == 1 ? "" : "s", o->link_gbps);
	fprintf(f, "plot ");
	for (int z = 0; z < o->nsizes; z++) {
		char sz[16];

		vb_fmt_size(o->sizes[z], sz, sizeof(sz));
		fprintf(f,
			"%s'%s/downtime.dat' using 1:%d with linespoints lw 2 lc %d pt 7 title '%s', "
			"'%s/downtime.dat' using 1:%d with linespoints dt 2 lc %d pt 6 title '%s on %gG'",
			z ? ", " : "", dir, 2 + z, z + 1, sz, dir,
			2 + o->nsizes + z, z + 1, sz, o->link_gbps);
	}
	fprintf(f, "\n");
	fprintf(f,
		"set output '%s/throughput_vs_streams.png'\n"
		"set title 'pre-copy throughput vs TCP streams (dirty 0) and peers'\n"
		"set xlabel 'streams'\nset ylabel 'GB/s'\nset xtics 1\nset yrange [0:*]\n",
		dir);
	fprintf(f,
		"plot '%s/streams.dat' using 1:2 with linespoints lw 3 lc rgb 'black' pt 5 title 'iperf3 (same streams)', "
		"'%s/streams.dat' using 1:3 with linespoints lw 2 dt 3 lc rgb 'gray40' pt 4 title 'vfm-xport-perf (transport only)'",
		dir, dir);
	for (int z = 0; z < o->nsizes; z++) {
		char sz[16];

		vb_fmt_size(o->sizes[z], sz, sizeof(sz));
		fprintf(f,
			", '%s/streams.dat' using 1:%d with linespoints lw 2 lc %d pt 7 title 'vfmig %s mmap'",
			dir, 5 + z, z + 1, sz);
		for (int d = 0; d < o->ndatapaths; d++)
			if (!strcmp(o->datapaths[d], "bounce"))
				fprintf(f,
					", '%s/streams.dat' using 1:%d with linespoints lw 1 dt 2 lc %d pt 6 title 'vfmig %s bounce'",
					dir, 5 + o->nsizes + z, z + 1, sz);
	}
	fprintf(f, "\n");
	fprintf(f,
		"set output '%s/downtime_split.png'\n"
		"set title \"Where the downtime goes, per cell (p50 of each part over the reps)\\nwhisker: min-max over the reps; x: projection on %g Gb/s (not measured)\"\n"
		"set xlabel ''\nset ylabel 'downtime (ms)'\nset yrange [0:*]\nset autoscale x\nset offsets 0.6, 0.6, 0, 0\n"
		"set style fill solid 0.85 border -1\nset boxwidth 0.7\nset xtics rotate by -30 left\n"
		"plot '%s/split.dat' using 1:5:xtic(10) with boxes lc rgb '#c0504d' title 'commit (incl. the destination digest)', "
		"'' using 1:4 with boxes lc rgb '#f79646' title 'resume', "
		"'' using 1:3 with boxes lc rgb '#4f81bd' title 'final transfer', "
		"'' using 1:2 with boxes lc rgb '#9bbb59' title 'stop', "
		"'' using 1:6:7:8 with yerrorbars lc rgb 'black' pt 7 ps 0.6 lw 1.5 title 'downtime p50, min-max', "
		"'' using 1:9 with points lc rgb 'black' pt 2 ps 1.5 lw 2 title 'projection'\n",
		dir, o->link_gbps, dir);
	fclose(f);
	free(gs);
	gs = NULL;
	snprintf(cmd, sizeof(cmd),
		 "gnuplot '%s/plots.gp' > '%s/gnuplot.out' 2>&1", dir, dir);
	ret = system(cmd);
	if (ret == -1 || !WIFEXITED(ret) || WEXITSTATUS(ret)) {
		fprintf(stderr,
			"vfmig-bench: gnuplot failed; see %s/gnuplot.out.\n",
			dir);
		return -EIO;
	}
	return 0;
fail:
	ret = -errno;
	free(gs);
	return ret;
}
