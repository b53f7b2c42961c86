// SPDX-License-Identifier: GPL-2.0
/*
 * mig_uapi_test: drives vfmig_stub.ko through the VFIO migration uAPI v2
 * and the vfmig.h migration-buffer ioctls, on two devices bound to it
 * (A: source, B: destination). Prints one result line per check (see
 * tests/vm/README.md); exits 1 when any check failed.
 *
 *   mig_uapi_test --a BDF --b BDF [--driver NAME] [--module NAME]
 *                 [--ko FILE] [--ko-params S] [--rxe DEV] [--rate B/s]
 *                 [--large-mib N] [--only NAME[,NAME...]]
 *   mig_uapi_test --list
 *   mig_uapi_test --skip-all REASON      (every test: skip with REASON)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mig/report.h"
#include "mig/tests.h"

struct test_def {
	const char *name;
	void (*fn)(struct vfm_ctx *c);
};

/* In order: "unbind" unloads and reloads the module, so it comes last. */
/* clang-format off */
static const struct test_def tests[] = {
	{ "flags", vfm_t_flags },
	{ "fsm", vfm_t_fsm },
	{ "error", vfm_t_error },
	{ "p2p", vfm_t_p2p },
	{ "precopy", vfm_t_precopy },
	{ "transfer", vfm_t_transfer },
	{ "corrupt", vfm_t_corrupt },
	{ "incompat", vfm_t_incompat },
	{ "rdma", vfm_t_rdma },
	{ "throughput", vfm_t_throughput },
	{ "large", vfm_t_large },
	{ "clear", vfm_t_clear },
	{ "closed", vfm_t_closed },
	{ "reset-race", vfm_t_reset_race },
	{ "knobs", vfm_t_knobs },
	{ "details", vfm_t_details },
	{ "memory", vfm_t_memory },
	{ "quiesce", vfm_t_quiesce },
	{ "edu", vfm_t_edu },
	{ "unbind", vfm_t_unbind },
};
/* clang-format on */
#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static bool wanted(const char *only, const char *name)
{
	size_t n = strlen(name);
	const char *p = only;

	if (!only)
		return true;
	while ((p = strstr(p, name))) {
		if ((p == only || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static void usage(FILE *f)
{
	fputs("usage: mig_uapi_test --a BDF --b BDF [--driver NAME] [--module NAME]\n"
	      "                     [--ko FILE] [--ko-params S] [--rxe DEV] [--rate B/s]\n"
	      "                     [--large-mib N] [--only NAME[,NAME...]]\n"
	      "       mig_uapi_test --list | --skip-all REASON\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "a", required_argument, NULL, 'a' },
		{ "b", required_argument, NULL, 'b' },
		{ "driver", required_argument, NULL, 'd' },
		{ "module", required_argument, NULL, 'm' },
		{ "ko", required_argument, NULL, 'k' },
		{ "ko-params", required_argument, NULL, 'p' },
		{ "rxe", required_argument, NULL, 'r' },
		{ "rate", required_argument, NULL, 'R' },
		{ "only", required_argument, NULL, 'o' },
		{ "large-mib", required_argument, NULL, 'L' },
		{ "list", no_argument, NULL, 'l' },
		{ "skip-all", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vfm_ctx c = {
		.driver = "vfmig_stub",
		.module = "vfmig_stub",
		.rxe = "rxe0",
		.rate = 4u << 20,
		.large_mib = 1024,
	};
	const char *only = NULL, *skip_all = NULL;
	bool list = false;
	size_t i;
	int o, ret;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			c.bdf[0] = optarg;
			break;
		case 'b':
			c.bdf[1] = optarg;
			break;
		case 'd':
			c.driver = optarg;
			break;
		case 'm':
			c.module = optarg;
			break;
		case 'k':
			c.ko = optarg;
			break;
		case 'p':
			c.ko_params = optarg;
			break;
		case 'r':
			c.rxe = optarg;
			break;
		case 'R':
			c.rate = strtoull(optarg, NULL, 0);
			break;
		case 'o':
			only = optarg;
			break;
		case 'L':
			c.large_mib = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			list = true;
			break;
		case 's':
			skip_all = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (list || skip_all) {
		for (i = 0; i < NTESTS; i++) {
			if (list)
				printf("%s\n", tests[i].name);
			else if (wanted(only, tests[i].name))
				vfm_skip(tests[i].name, "%s", skip_all);
		}
		return skip_all ? 77 : 0;
	}
	if (!c.bdf[0] || !c.bdf[1]) {
		usage(stderr);
		return 2;
	}

	for (i = 0; i < 2; i++) {
		ret = vfm_ctx_open(&c, (int)i);
		if (ret) {
			fprintf(stderr,
				"mig_uapi_test: cannot open %s through VFIO: %s\n",
				c.bdf[i], strerror(-ret));
			vfm_fail("open", "%s: %s", c.bdf[i], strerror(-ret));
			return 1;
		}
	}
	for (i = 0; i < NTESTS; i++) {
		double t0;

		if (!wanted(only, tests[i].name))
			continue;
		t0 = vfm_now();
		tests[i].fn(&c);
		vfm_note("%s took %.1f s", tests[i].name, vfm_now() - t0);
	}
	vfm_ctx_close(&c, 0);
	vfm_ctx_close(&c, 1);
	return vfm_failures() ? 1 : 0;
}
