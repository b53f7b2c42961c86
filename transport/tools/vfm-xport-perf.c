// SPDX-License-Identifier: MIT
/*
 * vfm-xport-perf: throughput of a vfmig transport, as one JSON line.
 *
 *   vfm-xport-perf [--transport tcp] [--size GIB] [--streams S] [--seg B]
 *                  [--depth D] [--buf MIB] [--small-pages]
 *       loopback: a forked destination process on 127.0.0.1
 *   vfm-xport-perf --listen ADDR ...        destination; prints --info HEX
 *   vfm-xport-perf --connect HOST --info HEX ...   source
 *
 * Writes cycle over a buffer of --buf MiB on both sides; the rate is
 * bytes / (last byte landed - first write posted) on the destination's
 * clock (loopback: one monotonic clock for both processes); with --listen,
 * from the connection's acceptance to the last byte. cpu_s is user + system
 * time of every thread over the transfer only (getrusage), both ends summed
 * in loopback: not the set-up (mapping and filling --buf).
 *
 * --buf sets how much memory the data cycles through: the default 256 MiB
 * is cold to the caches, as a device's state is; iperf3 reuses one 128 KiB
 * buffer that stays in the cache, which --buf 2 imitates. The buffers come
 * from vfm_xport_buf_alloc() (2 MiB pages where THP allows), as the
 * agent's do; --small-pages maps them with 4 KiB pages instead, to measure
 * what the page size costs.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vfm/transport.h"

struct opts {
	const char *transport;
	const char *listen;
	const char *connect;
	const char *info_hex;
	const char *addr; /* loopback: listen and connect here */
	double gib;
	unsigned int streams;
	uint32_t seg;
	unsigned int depth;
	size_t buf;
	bool small_pages;
	int timeout_ms;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system seconds of every thread of this process so far. */
static double cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "vfm-xport-perf: %s failed: %s.\n", what,
		strerror(err < 0 ? -err : err));
	exit(1);
}

static void *map_buf(const struct opts *o)
{
	void *p;

	if (o->small_pages) {
		p = mmap(NULL, o->buf, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p != MAP_FAILED)
			(void)madvise(p, o->buf, MADV_NOHUGEPAGE);
		else
			p = NULL;
	} else {
		p = vfm_xport_buf_alloc(o->buf);
	}
	if (!p)
		die("mmap", errno);
	return p;
}

static struct vfm_xport *make(const struct opts *o,
			      const struct vfm_xport_ops **ops)
{
	struct vfm_xport_cfg cfg = {
		.streams = o->streams,
		.max_write = o->seg,
		.depth = o->depth,
		.timeout_ms = o->timeout_ms,
	};
	struct vfm_xport *x;
	int err;

	*ops = vfm_xport_find(o->transport);
	if (!*ops) {
		fprintf(stderr,
			"vfm-xport-perf: transport '%s' is not available in this build.\n",
			o->transport);
		exit(2);
	}
	err = (*ops)->create(&x, &cfg);
	if (err)
		die("create", err);
	return x;
}

/* Destination: receive @total bytes; returns the time the last landed. */
static double run_dst(struct vfm_xport *x, uint64_t total)
{
	struct vfm_cqe c[64];
	uint64_t got = 0;
	int n, i;

	while (got < total) {
		n = vfm_xport_poll(x, c, 64, -1);
		if (n < 0)
			die("destination poll", n);
		for (i = 0; i < n; i++)
			got += c[i].len;
	}
	return now_s();
}

/* Source: send @total bytes; returns the time the first write was posted. */
static double run_src(struct vfm_xport *x, const struct opts *o,
		      struct vfm_mr *mr, uint64_t total)
{
	uint64_t posted = 0, done = 0, off = 0;
	unsigned int s, k;
	struct vfm_cqe c[64];
	double t0 = now_s();
	int n, i, err;

	for (k = 0; k < o->depth; k++)
		for (s = 0; s < o->streams && posted < total; s++) {
			uint32_t len = (uint32_t)(total - posted < o->seg ?
							  total - posted :
							  o->seg);

			err = vfm_xport_write(x, s, mr, off, off, len, posted,
					      posted);
			if (err)
				die("write", err);
			posted += len;
			off = (off + o->seg + o->seg > o->buf) ? 0 :
								 off + o->seg;
		}
	while (done < total) {
		n = vfm_xport_poll(x, c, 64, -1);
		if (n < 0)
			die("source poll", n);
		for (i = 0; i < n; i++) {
			uint32_t len;

			done += c[i].len;
			if (posted >= total)
				continue;
			len = (uint32_t)(total - posted < o->seg ?
						 total - posted :
						 o->seg);
			err = vfm_xport_write(x, c[i].stream, mr, off, off, len,
					      posted, posted);
			if (err)
				die("write", err);
			posted += len;
			off = (off + o->seg + o->seg > o->buf) ? 0 :
								 off + o->seg;
		}
	}
	return t0;
}

static void print_json(const struct opts *o, const char *role, uint64_t total,
		       double secs, double cpu)
{
	const char *sm = getenv("VFM_TCP_SEND");
	const char *rm = getenv("VFM_TCP_RECV");

	printf("{\"tool\":\"vfm-xport-perf\",\"role\":\"%s\",\"transport\":\"%s\","
	       "\"streams\":%u,\"seg\":%u,\"depth\":%u,\"bytes\":%" PRIu64
	       ",\"seconds\":%.4f,\"GBps\":%.3f,\"Gbps\":%.3f,"
	       "\"buf_mib\":%zu,\"cpu_s\":%.3f,\"cpu_s_per_gib\":%.3f,"
	       "\"send\":\"%s\",\"recv\":\"%s\",\"pages\":\"%s\"}\n",
	       role, o->transport, o->streams, o->seg, o->depth, total, secs,
	       (double)total / secs / 1e9, (double)total * 8 / secs / 1e9,
	       o->buf >> 20, cpu, cpu / ((double)total / (1ull << 30)),
	       sm ? sm : "default", rm ? rm : "default",
	       o->small_pages ? "4k" : "huge");
	fflush(stdout);
}

static void hex_out(const struct vfm_xport_info *info)
{
	uint32_t i;

	printf("--info ");
	for (i = 0; i < info->len; i++)
		printf("%02x", info->data[i]);
	printf("\n");
	fflush(stdout);
}

static int hex_in(const char *s, struct vfm_xport_info *info)
{
	size_t n = strlen(s), i;

	if (n % 2 || n / 2 > VFM_XPORT_INFO_MAX)
		return -EINVAL;
	for (i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		info->data[i] = (uint8_t)b;
	}
	info->len = (uint32_t)(n / 2);
	return 0;
}

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: vfm-xport-perf [--transport tcp] [--size GIB] [--streams S]\n"
		"         [--seg BYTES] [--depth D] [--buf MIB] [--small-pages]\n"
		"         [--timeout-ms MS]\n"
		"         [--listen ADDR | --connect HOST --info HEX] [--addr ADDR]\n"
		"Without --listen/--connect: loopback through a forked destination\n"
		"on --addr (default 127.0.0.1; rdma needs the RDMA netdev's address).\n"
		"Environment: VFM_TCP_SEND=send|zc|write_fixed VFM_TCP_RECV=recv|read_fixed\n");
	exit(rc);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "transport", 1, 0, 't' },   { "size", 1, 0, 'n' },
		{ "streams", 1, 0, 's' },     { "seg", 1, 0, 'b' },
		{ "depth", 1, 0, 'd' },	      { "buf", 1, 0, 'm' },
		{ "small-pages", 0, 0, 'P' }, { "listen", 1, 0, 'l' },
		{ "connect", 1, 0, 'c' },     { "info", 1, 0, 'i' },
		{ "timeout-ms", 1, 0, 'T' },  { "addr", 1, 0, 'a' },
		{ "help", 0, 0, 'h' },	      { 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .transport = "tcp",
			    .gib = 4,
			    .streams = 1,
			    .seg = 1 << 20,
			    .depth = 8,
			    .buf = 256u << 20,
			    .timeout_ms = 10000,
			    .addr = "127.0.0.1" };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			o->transport = optarg;
			break;
		case 'n':
			o->gib = atof(optarg);
			break;
		case 's':
			o->streams = (unsigned int)atoi(optarg);
			break;
		case 'b':
			o->seg = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			o->depth = (unsigned int)atoi(optarg);
			break;
		case 'm':
			o->buf = (size_t)atol(optarg) << 20;
			break;
		case 'P':
			o->small_pages = true;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'c':
			o->connect = optarg;
			break;
		case 'i':
			o->info_hex = optarg;
			break;
		case 'T':
			o->timeout_ms = atoi(optarg);
			break;
		case 'a':
			o->addr = optarg;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (!o->streams || !o->seg || !o->depth || o->gib <= 0 ||
	    o->buf < 2ull * o->seg || (o->connect && !o->info_hex))
		usage(2);
}

static int do_listen(const struct opts *o, int info_fd, double *t_acc,
		     double *t_end, double *cpu)
{
	const struct vfm_xport_ops *ops;
	struct vfm_xport *x = make(o, &ops);
	uint64_t total = (uint64_t)(o->gib * (1ull << 30));
	struct vfm_xport_info info;
	void *land = map_buf(o);
	struct vfm_mr mr;
	int err;

	err = vfm_xport_reg(x, land, o->buf, &mr);
	if (err)
		die("register", err);
	err = vfm_xport_listen(x, o->listen ? o->listen : o->addr, &mr, &info);
	if (err)
		die("listen", err);
	if (info_fd >= 0) {
		if (write(info_fd, &info, sizeof(info)) !=
		    (ssize_t)sizeof(info))
			die("info pipe", errno);
	} else {
		hex_out(&info);
	}
	err = vfm_xport_accept(x, -1);
	if (err)
		die("accept", err);
	/* The source writes as soon as it is connected: time from here. */
	if (t_acc)
		*t_acc = now_s();
	*cpu = cpu_s();
	*t_end = run_dst(x, total);
	*cpu = cpu_s() - *cpu;
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	vfm_xport_buf_free(land, o->buf);
	return 0;
}

static double do_connect(const struct opts *o, const char *peer,
			 const struct vfm_xport_info *info, double *cpu)
{
	const struct vfm_xport_ops *ops;
	struct vfm_xport *x = make(o, &ops);
	uint64_t total = (uint64_t)(o->gib * (1ull << 30));
	void *src = map_buf(o);
	struct vfm_mr mr;
	double t0;
	int err;

	memset(src, 0x5a, o->buf);
	err = vfm_xport_reg(x, src, o->buf, &mr);
	if (err)
		die("register", err);
	err = vfm_xport_connect(x, peer, info, o->timeout_ms);
	if (err)
		die("connect", err);
	*cpu = cpu_s();
	t0 = run_src(x, o, &mr, total);
	*cpu = cpu_s() - *cpu;
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	vfm_xport_buf_free(src, o->buf);
	return t0;
}

int main(int argc, char **argv)
{
	struct vfm_xport_info info;
	struct opts o;
	int pinfo[2], pdone[2], st;
	double t0, t_end, cpu, done[2];
	pid_t pid;

	parse(argc, argv, &o);
	if (o.listen) {
		double a;

		do_listen(&o, -1, &a, &t_end, &cpu);
		print_json(&o, "destination", (uint64_t)(o.gib * (1ull << 30)),
			   t_end - a, cpu);
		return 0;
	}
	if (o.connect) {
		if (hex_in(o.info_hex, &info))
			usage(2);
		t0 = do_connect(&o, o.connect, &info, &cpu);
		print_json(&o, "source", (uint64_t)(o.gib * (1ull << 30)),
			   now_s() - t0, cpu);
		return 0;
	}
	if (pipe(pinfo) || pipe(pdone))
		die("pipe", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		close(pinfo[0]);
		close(pdone[0]);
		do_listen(&o, pinfo[1], NULL, &done[0], &done[1]);
		if (write(pdone[1], done, sizeof(done)) != sizeof(done))
			_exit(1);
		_exit(0);
	}
	close(pinfo[1]);
	close(pdone[1]);
	if (read(pinfo[0], &info, sizeof(info)) != sizeof(info))
		die("destination start", EPIPE);
	t0 = do_connect(&o, o.addr, &info, &cpu);
	if (read(pdone[0], done, sizeof(done)) != sizeof(done))
		die("destination end", EPIPE);
	waitpid(pid, &st, 0);
	print_json(&o, "loopback", (uint64_t)(o.gib * (1ull << 30)),
		   done[0] - t0, cpu + done[1]);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
