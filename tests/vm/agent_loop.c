// SPDX-License-Identifier: MIT
/*
 * agent_loop: N sim -> sim migrations in one process, the destination
 * engine (vfm_engine_recv) on a thread and the source (vfm_engine_send) on
 * the main thread, over the transport named (rdma in the guest suite). Each
 * must end 0/0 with the destination's digest equal to the source's; the
 * open fds and VmRSS after migration --warm and after the last must not
 * grow by more than the tolerance.
 *
 * The agent's JSON log is process-wide (one role, one file, static line
 * buffers), so it stays closed here; only the destination writes its
 * --stats-json (the summary buffer is static too), and the source's digest
 * is the one of a fresh sim with the same spec (dirty=0: it never moves).
 *
 * Prints "ok NAME" / "not ok NAME - why" / "# measure NAME VALUE UNIT"
 * lines; exits 0 when all passed, 1 otherwise, 77 when there is no RDMA
 * device and the transport is rdma.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <infiniband/verbs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cmd.h"
#include "dev.h"
#include "engine.h"

struct loop_cfg {
	const char *addr;
	const char *transport;
	const char *spec;
	const char *dir;
	unsigned int count, warm, port, streams;
	long fd_tol, rss_tol_kib;
};

struct dst_run {
	struct vfm_mig_opts o;
	int rc;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void *dst_main(void *arg)
{
	struct dst_run *r = arg;

	r->rc = vfm_engine_recv(&r->o);
	return NULL;
}

/* The "state_digest" of the JSON object in @path into @hex. */
static int stats_digest(const char *path, char hex[VFM_DIGEST_HEX])
{
	static const char key[] = "\"state_digest\":\"";
	char buf[65536];
	FILE *f = fopen(path, "re");
	size_t n;
	char *p;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p || strlen(p + sizeof(key) - 1) < VFM_DIGEST_HEX - 1)
		return -ENOENT;
	memcpy(hex, p + sizeof(key) - 1, VFM_DIGEST_HEX - 1);
	hex[VFM_DIGEST_HEX - 1] = '\0';
	return 0;
}

static void opts_init(struct vfm_mig_opts *o, const struct loop_cfg *c)
{
	static const char secret[] = "agent-loop-secret-0123456789abcdef";

	vfm_mig_opts_defaults(o);
	o->device = c->spec;
	o->transport = c->transport;
	o->streams = c->streams;
	o->wait_s = 60;
	o->linger_s = o->outcome_s = o->timeout_s;
	memcpy(o->secret, secret, sizeof(secret) - 1);
	o->secret_len = sizeof(secret) - 1;
}

/* One migration; 0 when both ends returned 0 with equal digests. */
static int migrate_once(const struct loop_cfg *c, unsigned int i,
			const char *want, char *why, size_t whylen)
{
	struct dst_run dr;
	struct vfm_mig_opts so;
	char addr[300], stats[512], got[VFM_DIGEST_HEX];
	pthread_t th;
	uuid_t u;
	int src_rc, ret;

	snprintf(addr, sizeof(addr), "%s:%u", c->addr, c->port + i % 100);
	snprintf(stats, sizeof(stats), "%s/agent-loop-dst.json", c->dir);
	unlink(stats);
	opts_init(&dr.o, c);
	dr.o.addr = addr;
	dr.o.stats_path = stats;
	dr.rc = -1;
	opts_init(&so, c);
	so.addr = addr;
	uuid_generate(u);
	uuid_unparse_lower(u, so.migration_id);
	ret = pthread_create(&th, NULL, dst_main, &dr);
	if (ret) {
		snprintf(why, whylen, "pthread_create: %s", strerror(ret));
		return -ret;
	}
	src_rc = vfm_engine_send(&so);
	pthread_join(th, NULL);
	if (src_rc != VFM_EXIT_OK || dr.rc != VFM_EXIT_OK) {
		snprintf(why, whylen, "migration %u: send %d recv %d", i,
			 src_rc, dr.rc);
		return -EIO;
	}
	if (stats_digest(stats, got)) {
		snprintf(why, whylen, "migration %u: no digest in the stats",
			 i);
		return -EIO;
	}
	if (strcmp(got, want)) {
		snprintf(why, whylen, "migration %u: digest %s, want %s", i,
			 got, want);
		return -EIO;
	}
	return 0;
}

static int have_rdma(void)
{
	int n = 0;
	struct ibv_device **l = ibv_get_device_list(&n);

	if (l)
		ibv_free_device_list(l);
	return l && n > 0;
}

static const struct option loop_opts[] = {
	{ "addr", required_argument, NULL, 'a' },
	{ "transport", required_argument, NULL, 't' },
	{ "spec", required_argument, NULL, 's' },
	{ "dir", required_argument, NULL, 'd' },
	{ "count", required_argument, NULL, 'n' },
	{ "warm", required_argument, NULL, 'w' },
	{ "port", required_argument, NULL, 'p' },
	{ "streams", required_argument, NULL, 'q' },
	{ "fd-tolerance", required_argument, NULL, 'f' },
	{ "rss-tolerance-kib", required_argument, NULL, 'r' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct loop_cfg c = {
		.addr = "127.0.0.1",
		.transport = "rdma",
		.spec = "sim:size=8M,seed=11,dirty=0",
		.dir = "/tmp",
		.count = 50,
		.warm = 5,
		.port = 7800,
		.streams = 2,
		.fd_tol = 0,
		.rss_tol_kib = 4096,
	};
	char why[512], want[VFM_DIGEST_HEX];
	struct vfm_dev *d;
	int fds_warm = -1, fds_end = -1, opt;
	long rss_warm = -1, rss_end = -1;
	unsigned int i, done = 0;
	int failed = 0;

	while ((opt = getopt_long(argc, argv, "", loop_opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			c.addr = optarg;
			break;
		case 't':
			c.transport = optarg;
			break;
		case 's':
			c.spec = optarg;
			break;
		case 'd':
			c.dir = optarg;
			break;
		case 'n':
			c.count = (unsigned int)atoi(optarg);
			break;
		case 'w':
			c.warm = (unsigned int)atoi(optarg);
			break;
		case 'p':
			c.port = (unsigned int)atoi(optarg);
			break;
		case 'q':
			c.streams = (unsigned int)atoi(optarg);
			break;
		case 'f':
			c.fd_tol = atol(optarg);
			break;
		case 'r':
			c.rss_tol_kib = atol(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: agent_loop [--addr IP] [--transport rdma|tcp] [--spec SIM] [--dir DIR]\n"
				"       [--count N] [--warm N] [--port P] [--streams N]\n"
				"       [--fd-tolerance N] [--rss-tolerance-kib KIB]\n");
			return 2;
		}
	}
	if (c.warm < 1 || c.count <= c.warm) {
		fprintf(stderr, "agent_loop: need 1 <= --warm < --count.\n");
		return 2;
	}
	if (!strcmp(c.transport, "rdma") && !have_rdma()) {
		printf("agent_loop: no RDMA device (ibv_get_device_list is empty)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	if (vfm_dev_open(c.spec, &d, why, sizeof(why))) {
		printf("not ok loop/open - %s\n", why);
		return 1;
	}
	if (vfm_dev_digest(d, want)) {
		vfm_dev_close(d);
		printf("not ok loop/open - no digest of %s\n", c.spec);
		return 1;
	}
	vfm_dev_close(d);

	for (i = 1; i <= c.count; i++) {
		if (migrate_once(&c, i, want, why, sizeof(why))) {
			printf("not ok loop/migrations - %s\n", why);
			failed = 1;
			break;
		}
		done = i;
		if (i == c.warm) {
			fds_warm = count_fds();
			rss_warm = rss_kib();
		}
	}
	fds_end = count_fds();
	rss_end = rss_kib();
	if (!failed)
		printf("ok loop/migrations\n");
	printf("# migrations %u of %u, digest %s\n", done, c.count, want);
	printf("# measure loop/fds-after-%u %d fds\n", c.warm, fds_warm);
	printf("# measure loop/fds-after-%u %d fds\n", done, fds_end);
	printf("# measure loop/rss-after-%u %ld KiB\n", c.warm, rss_warm);
	printf("# measure loop/rss-after-%u %ld KiB\n", done, rss_end);
	if (failed || fds_warm < 0)
		return 1;
	if (fds_end - fds_warm <= c.fd_tol) {
		printf("ok loop/no-fd-growth\n");
	} else {
		printf("not ok loop/no-fd-growth - %d fds after %u, %d after %u (tolerance %ld)\n",
		       fds_warm, c.warm, fds_end, done, c.fd_tol);
		failed = 1;
	}
	if (rss_end - rss_warm <= c.rss_tol_kib) {
		printf("ok loop/no-rss-growth\n");
	} else {
		printf("not ok loop/no-rss-growth - VmRSS %ld KiB after %u, %ld KiB after %u (tolerance %ld KiB)\n",
		       rss_warm, c.warm, rss_end, done, c.rss_tol_kib);
		failed = 1;
	}
	return failed;
}
