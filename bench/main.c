// SPDX-License-Identifier: MIT
/* vfmig-bench: options, the matrix, the memory runs, the outputs. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define VB_SIM_BUF (32ull << 20) /* the sim device's migration buffer */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vfmig-bench [OPTIONS]\n"
		"\n"
		"Real migrations between `vfmig recv` and `vfmig send` (sim devices) over a\n"
		"matrix, with peers measured in the same run: iperf3 at the same stream\n"
		"count (tcp), ib_write_bw with 1 MiB messages (rdma), vfm-xport-perf (the\n"
		"transport alone) and memcpy (this machine's limit). Writes a table on\n"
		"stdout and results.json, results.csv and PNG plots into --out.\n"
		"\n"
		"Matrix (comma-separated lists):\n"
		"  --sizes LIST          device state sizes (64M,256M,1G)\n"
		"  --dirty LIST          bytes/s the workload dirties while running (0,100M)\n"
		"  --transport LIST      tcp and/or rdma (tcp)\n"
		"  --streams LIST        parallel data streams (1,2)\n"
		"  --datapath LIST       mmap (the device buffer's segments) and/or bounce\n"
		"                        (read()/write() through a 1 MiB bounce buffer) (mmap,bounce)\n"
		"  --reps N              repetitions of each cell, interleaved (2)\n"
		"  --rss-sizes LIST      sizes for the peak-memory runs, or none (256M,4G)\n"
		"  --zero PCT            a sparse source state: PCT%% of its pages zero (0)\n"
		"  --formats LIST        2 (the stream format the agents negotiate) and/or\n"
		"                        1 (a destination that loads format 1 only: the old\n"
		"                        stream, every zero page as data) (2)\n"
		"  --no-precopy          devices without PRE_COPY: the whole state moves\n"
		"                        while stopped (stop and copy)\n"
		"\n"
		"Analysis:\n"
		"  --link-gbps G         project each result onto a G Gb/s link (100 =\n"
		"                        12.25 GB/s RoCEv2 goodput at MTU 4096)\n"
		"  --downtime-limit-ms MS  the agents' downtime limit (300)\n"
		"\n"
		"Where:\n"
		"  --out DIR             output folder (<build>/bench-results)\n"
		"  --vfmig PATH          the vfmig program (next to this one)\n"
		"  --xport-perf PATH     vfm-xport-perf (next to this one; none: skip)\n"
		"  --peer HOST           two hosts: send to HOST. The receiver is started\n"
		"                        for each run by --peer-cmd, or must already listen\n"
		"                        on HOST:--port (then one size only)\n"
		"  --peer-cmd CMD        shell command that runs vfmig on the peer; {ARGS}\n"
		"                        is replaced by the recv arguments, e.g.\n"
		"                        'ssh HOST /usr/local/bin/vfmig {ARGS}'\n"
		"  --secret-file F       the per-migration secret (same file on the peer);\n"
		"                        loopback: written into --out\n"
		"  --iperf-server H:P    a running `iperf3 -s` on the peer (HOST:5201)\n"
		"  --port P              migration port (loopback: a free one)\n"
		"  --peer-seconds S      seconds each peer tool runs (3)\n"
		"  --timeout-s S         the agents' stall limit (30)\n"
		"  --no-peers            skip iperf3, ib_write_bw, vfm-xport-perf\n"
		"  --no-plots            skip gnuplot\n"
		"  --quick               a tiny matrix: 64M, dirty 0 and 50M, 1-2 streams, 1 rep\n"
		"\n"
		"Exit: 0 when every run that was not skipped migrated; 1 otherwise; 2 usage.\n");
}

static int parse_sizes(const char *arg, uint64_t *out, int max,
		       const char *name)
{
	char *copy = strdup(arg), *save = NULL;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	if (!strcmp(arg, "none")) {
		free(copy);
		return 0;
	}
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (n == max || vb_parse_size(t, &out[n])) {
			fprintf(stderr,
				"vfmig-bench: --%s wants sizes like 64M,1G (at most %d), not '%s'.\n",
				name, max, t);
			free(copy);
			return -EINVAL;
		}
		n++;
	}
	free(copy);
	return n;
}

static int parse_words(const char *arg, char (*out)[8], int max, const char *a,
		       const char *b, const char *name)
{
	char *copy = strdup(arg), *save = NULL;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (n == max || (strcmp(t, a) && strcmp(t, b))) {
			fprintf(stderr,
				"vfmig-bench: --%s takes %s and/or %s, not '%s'.\n",
				name, a, b, t);
			free(copy);
			return -EINVAL;
		}
		snprintf(out[n++], 8, "%s", t);
	}
	free(copy);
	return n;
}

static int parse_streams(const char *arg, struct vb_opts *o)
{
	char *copy = strdup(arg), *save = NULL;

	o->nstreams = 0;
	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char *end;
		long v = strtol(t, &end, 10);

		if (*end || v < 1 || v > 64 || o->nstreams == VB_LIST_MAX) {
			fprintf(stderr,
				"vfmig-bench: --streams wants counts from 1 to 64, not '%s'.\n",
				t);
			free(copy);
			return -EINVAL;
		}
		o->streams[o->nstreams++] = (unsigned int)v;
	}
	free(copy);
	return o->nstreams ? 0 : -EINVAL;
}

static double num_arg(const char *name, const char *v, double lo, double hi,
		      bool *bad)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end || d < lo || d > hi) {
		fprintf(stderr,
			"vfmig-bench: --%s wants a number from %g to %g, not '%s'.\n",
			name, lo, hi, v);
		*bad = true;
	}
	return d;
}

/* A sibling of this program in its bin folder. */
static char *sibling(const char *name)
{
	char self[PATH_MAX], *dir, *out;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	dir = dirname(self);
	if (asprintf(&out, "%s/%s", dir, name) < 0)
		return NULL;
	return out;
}

enum {
	O_SIZES = 256,
	O_DIRTY,
	O_TRANSPORT,
	O_STREAMS,
	O_DATAPATH,
	O_REPS,
	O_RSS,
	O_ZERO,
	O_FORMATS,
	O_NOPRECOPY,
	O_LINK,
	O_LIMIT,
	O_OUT,
	O_VFMIG,
	O_XPERF,
	O_PEER,
	O_PEERCMD,
	O_SECRET,
	O_IPERF,
	O_PORT,
	O_PEERS_S,
	O_TIMEOUT,
	O_NOPEERS,
	O_NOPLOTS,
	O_QUICK,
	O_HELP,
};

static const struct option opts[] = {
	{ "sizes", required_argument, NULL, O_SIZES },
	{ "dirty", required_argument, NULL, O_DIRTY },
	{ "transport", required_argument, NULL, O_TRANSPORT },
	{ "streams", required_argument, NULL, O_STREAMS },
	{ "datapath", required_argument, NULL, O_DATAPATH },
	{ "reps", required_argument, NULL, O_REPS },
	{ "rss-sizes", required_argument, NULL, O_RSS },
	{ "zero", required_argument, NULL, O_ZERO },
	{ "formats", required_argument, NULL, O_FORMATS },
	{ "no-precopy", no_argument, NULL, O_NOPRECOPY },
	{ "link-gbps", required_argument, NULL, O_LINK },
	{ "downtime-limit-ms", required_argument, NULL, O_LIMIT },
	{ "out", required_argument, NULL, O_OUT },
	{ "vfmig", required_argument, NULL, O_VFMIG },
	{ "xport-perf", required_argument, NULL, O_XPERF },
	{ "peer", required_argument, NULL, O_PEER },
	{ "peer-cmd", required_argument, NULL, O_PEERCMD },
	{ "secret-file", required_argument, NULL, O_SECRET },
	{ "iperf-server", required_argument, NULL, O_IPERF },
	{ "port", required_argument, NULL, O_PORT },
	{ "peer-seconds", required_argument, NULL, O_PEERS_S },
	{ "timeout-s", required_argument, NULL, O_TIMEOUT },
	{ "no-peers", no_argument, NULL, O_NOPEERS },
	{ "no-plots", no_argument, NULL, O_NOPLOTS },
	{ "quick", no_argument, NULL, O_QUICK },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse(int argc, char **argv, struct vb_opts *o)
{
	bool bad = false;
	int c, n;

	memset(o, 0, sizeof(*o));
	o->nsizes = parse_sizes("64M,256M,1G", o->sizes, VB_LIST_MAX, "sizes");
	o->ndirty = parse_sizes("0,100M", o->dirty, VB_LIST_MAX, "dirty");
	o->ntransports = parse_words("tcp", o->transports, 2, "tcp", "rdma",
				     "transport");
	parse_streams("1,2", o);
	o->ndatapaths = parse_words("mmap,bounce", o->datapaths, 2, "mmap",
				    "bounce", "datapath");
	o->nrss = parse_sizes("256M,4G", o->rss_sizes, 4, "rss-sizes");
	o->nformats = parse_words("2", o->formats, 2, "1", "2", "formats");
	o->reps = 2;
	o->link_gbps = 100;
	o->downtime_limit_ms = 300;
	o->peer_s = 3;
	o->timeout_s = 30;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_SIZES:
			n = parse_sizes(optarg, o->sizes, VB_LIST_MAX, "sizes");
			bad |= n <= 0;
			o->nsizes = n;
			break;
		case O_DIRTY:
			n = parse_sizes(optarg, o->dirty, VB_LIST_MAX, "dirty");
			bad |= n <= 0;
			o->ndirty = n;
			break;
		case O_RSS:
			n = parse_sizes(optarg, o->rss_sizes, 4, "rss-sizes");
			bad |= n < 0;
			o->nrss = n;
			break;
		case O_ZERO:
			o->zero_pct = (unsigned int)num_arg("zero", optarg, 0,
							    100, &bad);
			break;
		case O_NOPRECOPY:
			o->no_precopy = true;
			break;
		case O_FORMATS:
			n = parse_words(optarg, o->formats, 2, "1", "2",
					"formats");
			bad |= n <= 0;
			o->nformats = n;
			break;
		case O_TRANSPORT:
			n = parse_words(optarg, o->transports, 2, "tcp", "rdma",
					"transport");
			bad |= n <= 0;
			o->ntransports = n;
			break;
		case O_DATAPATH:
			n = parse_words(optarg, o->datapaths, 2, "mmap",
					"bounce", "datapath");
			bad |= n <= 0;
			o->ndatapaths = n;
			break;
		case O_STREAMS:
			bad |= parse_streams(optarg, o) != 0;
			break;
		case O_REPS:
			o->reps = (int)num_arg("reps", optarg, 1, 1000, &bad);
			break;
		case O_LINK:
			o->link_gbps =
				num_arg("link-gbps", optarg, 0.001, 1e5, &bad);
			break;
		case O_LIMIT:
			o->downtime_limit_ms = num_arg("downtime-limit-ms",
						       optarg, 1, 1e7, &bad);
			break;
		case O_PORT:
			o->port = (int)num_arg("port", optarg, 1, 65535, &bad);
			break;
		case O_PEERS_S:
			o->peer_s =
				num_arg("peer-seconds", optarg, 1, 600, &bad);
			break;
		case O_TIMEOUT:
			o->timeout_s =
				num_arg("timeout-s", optarg, 1, 3600, &bad);
			break;
		case O_OUT:
			o->out = optarg;
			break;
		case O_VFMIG:
			o->vfmig = optarg;
			break;
		case O_XPERF:
			o->xport_perf = strcmp(optarg, "none") ? optarg : "";
			break;
		case O_PEER:
			o->peer = optarg;
			break;
		case O_PEERCMD:
			o->peer_cmd = optarg;
			break;
		case O_SECRET:
			o->secret_file = optarg;
			break;
		case O_IPERF:
			o->iperf_server = optarg;
			break;
		case O_NOPEERS:
			o->no_peers = true;
			break;
		case O_NOPLOTS:
			o->no_plots = true;
			break;
		case O_QUICK:
			o->nsizes = parse_sizes("64M", o->sizes, VB_LIST_MAX,
						"sizes");
			o->ndirty = parse_sizes("0,50M", o->dirty, VB_LIST_MAX,
						"dirty");
			parse_streams("1,2", o);
			o->ndatapaths = parse_words("mmap", o->datapaths, 2,
						    "mmap", "bounce",
						    "datapath");
			o->nrss = 0;
			o->reps = 1;
			o->peer_s = 1;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"vfmig-bench: unexpected argument '%s' (see --help).\n",
			argv[optind]);
		return -EINVAL;
	}
	if (o->peer && !o->secret_file) {
		fprintf(stderr,
			"vfmig-bench: --peer needs --secret-file (the same file on both hosts).\n");
		return -EINVAL;
	}
	if (o->peer && !o->peer_cmd && (o->nsizes != 1 || !o->port)) {
		fprintf(stderr,
			"vfmig-bench: --peer without --peer-cmd needs one size and --port (a receiver you keep running for that size).\n");
		return -EINVAL;
	}
	if (o->peer)
		o->nrss = 0; /* the destination's RSS is remote */
	return bad ? -EINVAL : 0;
}

static int write_secret(const char *dir, char *path, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[24];
	char txt[49];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	for (size_t i = 0; i < sizeof(raw); i++) {
		txt[2 * i] = hex[raw[i] >> 4];
		txt[2 * i + 1] = hex[raw[i] & 15];
	}
	txt[48] = '\n';
	snprintf(path, len, "%s/secret", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, txt, sizeof(txt)) != (ssize_t)sizeof(txt)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static long mem_available_kb(void)
{
	char *s = vb_read_file("/proc/meminfo", NULL);
	const char *p = s ? strstr(s, "MemAvailable:") : NULL;
	long kb = p ? strtol(p + 13, NULL, 10) : -1;

	free(s);
	return kb;
}

static struct vb_run *add_run(struct vb_results *res)
{
	if (res->nruns == res->cap) {
		int cap = res->cap ? 2 * res->cap : 64;
		struct vb_run *n = realloc(res->runs, (size_t)cap * sizeof(*n));

		if (!n)
			return NULL;
		res->runs = n;
		res->cap = cap;
	}
	memset(&res->runs[res->nruns], 0, sizeof(res->runs[0]));
	return &res->runs[res->nruns++];
}

static void progress(int i, int total, const struct vb_run *r)
{
	char sz[16], dr[16], what[160];

	vb_fmt_size(r->size, sz, sizeof(sz));
	vb_fmt_size(r->dirty, dr, sizeof(dr));
	if (r->ok)
		snprintf(what, sizeof(what),
			 "downtime %.1f ms, %u it, %.2f GB/s", r->downtime_ms,
			 r->iterations, r->xfer_Bps / 1e9);
	else
		snprintf(what, sizeof(what), "%s: %.90s",
			 r->skipped ? "skipped" : "FAILED", r->why);
	fprintf(stderr, "%s[%3d/%d] %s %s %s dirty %s/s x%u rep %d: %s%s",
		isatty(2) ? "\r\033[K" : "", i, total, r->transport,
		r->datapath, sz, dr, r->streams, r->rep, what,
		isatty(2) ? "" : "\n");
}

/* Why a whole kind of run cannot happen here, learned once. */
struct skips {
	char bounce[VB_WHY];
	char rdma[VB_WHY];
};

static void run_cell(const struct vb_opts *o, const char *secret,
		     const char *out, struct skips *sk, struct vb_run *r,
		     const struct vb_peers *pe)
{
	char dir[4200], sz[16], dr[16];

	if (!strcmp(r->transport, "rdma") && sk->rdma[0]) {
		r->skipped = true;
		snprintf(r->why, sizeof(r->why), "%s", sk->rdma);
		return;
	}
	if (!strcmp(r->datapath, "bounce") && sk->bounce[0]) {
		r->skipped = true;
		snprintf(r->why, sizeof(r->why), "%s", sk->bounce);
		return;
	}
	vb_fmt_size(r->size, sz, sizeof(sz));
	vb_fmt_size(r->dirty, dr, sizeof(dr));
	snprintf(dir, sizeof(dir), "%s/runs/%s-%s-%s-d%s-s%u-r%d", out,
		 r->transport, r->datapath, sz, dr, r->streams, r->rep);
	if (r->zero_pct || o->nformats > 1) /* --zero/--formats cells */
		snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir),
			 "-z%u-f%u", r->zero_pct, r->format);
	vb_mkdir_p(dir);
	vb_run_one(o, secret, dir, r);
	if (!strcmp(r->datapath, "bounce") && r->ok &&
	    strcmp(r->path_seen, "bounce")) {
		/* The agent ignored the missing "mmap" feature: what ran was
		 * the mapped-buffer path, so it is not a bounce result. */
		snprintf(
			sk->bounce, sizeof(sk->bounce),
			"This vfmig moved sim data through the device's mapped buffer despite mmap=off (its log says '%s'); it predates the agent's read()/write() fallback through a 1 MiB bounce buffer.",
			r->path_seen[0] ? r->path_seen : "nothing");
		snprintf(r->why, sizeof(r->why), "%s", sk->bounce);
		r->ok = false;
		r->skipped = true;
	}
	vb_derive(o, pe, r);
}

static void memory_runs(const struct vb_opts *o, const char *secret,
			const char *out, struct vb_results *res)
{
	unsigned int smax = 1;

	for (int s = 0; s < o->nstreams; s++)
		if (o->streams[s] > smax)
			smax = o->streams[s];
	for (int i = 0; i < o->nrss; i++) {
		struct vb_mem *m = &res->mem[res->nmem++];
		struct vb_run r = { .size = o->rss_sizes[i],
				    .streams = smax,
				    .rep = 1 };
		double pages = (double)m->size / 4096.0;
		long need =
			(long)((3 * o->rss_sizes[i] + 2 * VB_SIM_BUF) / 1024) +
			(1l << 20);
		long avail = mem_available_kb();
		char dir[4200], sz[16];

		m->size = o->rss_sizes[i];
		pages = (double)m->size / 4096.0;
		vb_fmt_size(m->size, sz, sizeof(sz));
		if (avail >= 0 && avail < need) {
			snprintf(
				m->why, sizeof(m->why),
				"needs %ld MiB free (source + destination with its shadow), %ld MiB available",
				need / 1024, avail / 1024);
			continue;
		}
		fprintf(stderr, "vfmig-bench: memory run, %s sim device\n", sz);
		snprintf(r.transport, sizeof(r.transport), "tcp");
		snprintf(r.datapath, sizeof(r.datapath), "mmap");
		snprintf(dir, sizeof(dir), "%s/runs/mem-%s", out, sz);
		vb_mkdir_p(dir);
		vb_run_one(o, secret, dir, &r);
		if (!r.ok) {
			snprintf(m->why, sizeof(m->why),
				 "the migration failed: %.200s", r.why);
			continue;
		}
		m->ok = true;
		m->src_rss_kb = r.src_rss_kb;
		m->dst_rss_kb = r.dst_rss_kb;
		/* Source: memory + buffer + two page bitmaps; destination:
		 * memory + its shadow + buffer + one bitmap. */
		m->src_expect_kb =
			((double)m->size + VB_SIM_BUF + 2 * pages / 8) / 1024;
		m->dst_expect_kb =
			(2.0 * (double)m->size + VB_SIM_BUF + pages / 8) / 1024;
		m->src_over_kb = m->src_rss_kb - m->src_expect_kb;
		m->dst_over_kb = m->dst_rss_kb - m->dst_expect_kb;
	}
}

int main(int argc, char **argv)
{
	struct vb_opts o;
	struct vb_results res = { 0 };
	struct skips sk = { 0 };
	char secret[4200], path[4200], *def_out = NULL, *own_vfmig = NULL,
				       *own_xperf = NULL;
	double t0 = vb_now();
	time_t now = time(NULL);
	int total, done = 0, failed = 0;

	if (parse(argc, argv, &o))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (!o.vfmig)
		o.vfmig = own_vfmig = sibling("vfmig");
	if (!o.xport_perf) {
		o.xport_perf = own_xperf = sibling("vfm-xport-perf");
		if (o.xport_perf && access(o.xport_perf, X_OK))
			o.xport_perf = NULL;
	} else if (!o.xport_perf[0]) {
		o.xport_perf = NULL;
	}
	if (!o.vfmig || access(o.vfmig, X_OK)) {
		fprintf(stderr,
			"vfmig-bench: cannot find the vfmig program (%s); give --vfmig PATH.\n",
			o.vfmig ? o.vfmig : "?");
		return 2;
	}
	if (!o.out) {
		def_out = sibling("../bench-results");
		o.out = def_out;
	}
	if (!o.out || vb_mkdir_p(o.out)) {
		fprintf(stderr,
			"vfmig-bench: cannot create the output folder %s.\n",
			o.out);
		return 2;
	}
	strftime(res.started, sizeof(res.started), "%Y-%m-%dT%H:%M:%SZ",
		 gmtime(&now));
	if (o.secret_file) {
		snprintf(secret, sizeof(secret), "%s", o.secret_file);
	} else if (write_secret(o.out, secret, sizeof(secret))) {
		fprintf(stderr,
			"vfmig-bench: cannot write a secret file into %s.\n",
			o.out);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/peers", o.out);
	vb_mkdir_p(path);
	if (!o.no_peers)
		vb_peers_measure(&o, &res.peers, path);
	else
		snprintf(res.peers.ib_why, sizeof(res.peers.ib_why),
			 "--no-peers");
	res.peers.n = o.nstreams;
	for (int i = 0; i < o.nstreams; i++)
		res.peers.streams[i] = o.streams[i];
	if (!res.peers.rdma_dev[0])
		snprintf(
			sk.rdma, sizeof(sk.rdma),
			"No RDMA device here (/sys/class/infiniband is empty); run in the tests/vm guest (rxe0) or on RDMA hosts.");
	total = o.reps * o.ntransports * o.ndatapaths * o.nsizes * o.ndirty *
		o.nstreams * o.nformats;
	/* Repetitions outermost: slow drifts of a shared machine spread over
	 * every cell instead of landing on one. */
	for (int rep = 1; rep <= o.reps; rep++)
		for (int t = 0; t < o.ntransports; t++)
			for (int d = 0; d < o.ndatapaths; d++)
				for (int z = 0; z < o.nsizes; z++)
					for (int y = 0; y < o.ndirty; y++)
						/* --formats innermost, next to the
						 * streams: side by side in time */
						for (int s = 0;
						     s <
						     o.nstreams * o.nformats;
						     s++) {
							struct vb_run *r =
								add_run(&res);

							if (!r)
								return 1;
							snprintf(
								r->transport,
								sizeof(r->transport),
								"%s",
								o.transports[t]);
							snprintf(
								r->datapath,
								sizeof(r->datapath),
								"%s",
								o.datapaths[d]);
							r->size = o.sizes[z];
							r->dirty = o.dirty[y];
							r->streams =
								o.streams[s /
									  o.nformats];
							r->zero_pct =
								o.zero_pct;
							r->format = (unsigned int)atoi(
								o.formats[s %
									  o.nformats]);
							r->rep = rep;
							run_cell(&o, secret,
								 o.out, &sk, r,
								 &res.peers);
							failed += !r->ok &&
								  !r->skipped;
							progress(++done, total,
								 r);
						}
	if (isatty(2))
		fprintf(stderr, "\n");
	/* The machine's load drifts: the peers once more, their mean is what
	 * each run is compared with. */
	if (!o.no_peers) {
		snprintf(path, sizeof(path), "%s/peers", o.out);
		vb_peers_again(&o, &res.peers, path);
		for (int i = 0; i < res.nruns; i++)
			if (!res.runs[i].skipped)
				vb_derive(&o, &res.peers, &res.runs[i]);
	}
	vb_project(&o, &res);
	memory_runs(&o, secret, o.out, &res);
	res.wall_s = vb_now() - t0;
	vb_report_table(&o, &res);
	snprintf(path, sizeof(path), "%s/results.json", o.out);
	if (vb_report_json(&o, &res, path))
		fprintf(stderr, "vfmig-bench: cannot write %s.\n", path),
			failed++;
	snprintf(path, sizeof(path), "%s/results.csv", o.out);
	if (vb_report_csv(&res, path))
		fprintf(stderr, "vfmig-bench: cannot write %s.\n", path),
			failed++;
	if (!o.no_plots) {
		if (!vb_have_prog("gnuplot"))
			fprintf(stderr,
				"vfmig-bench: gnuplot is not installed (apt-get install gnuplot-nox); no plots.\n");
		else if (vb_report_plots(&o, &res, o.out))
			failed++;
	}
	printf("\noutputs: %s/{results.json,results.csv,downtime_vs_dirty.png,throughput_vs_streams.png,downtime_split.png}, per-run logs in %s/runs/\n",
	       o.out, o.out);
	free(res.runs);
	free(def_out);
	free(own_vfmig);
	free(own_xperf);
	return failed ? 1 : 0;
}
