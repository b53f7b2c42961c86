// SPDX-License-Identifier: MIT
/* vfmig compat: compare two device descriptor directories offline. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "verdict_fmt.h"
#include "vfm/compat.h"
#include "vfm/desc.h"

static void compat_usage(FILE *f)
{
	fprintf(f,
		"usage: vfmig compat [--json] [--require FEAT[,FEAT...]] SRC_DIR DST_DIR\n"
		"\n"
		"Decide, as the destination would, whether the device described by\n"
		"SRC_DIR can migrate its state into the device described by DST_DIR.\n"
		"Each directory is laid out like the driver's sysfs migration/ folder:\n"
		"model, version, version_compatible, features, params/<name>,\n"
		"allowed/<name>, one value per file.\n"
		"\n"
		"Every rule is printed with its outcome (PASS/FAIL), a stable code and\n"
		"a reason; notes say what the destination will change.\n"
		"\n"
		"  --json             print the verdict as one JSON object\n"
		"  --require LIST     features the destination must support (comma\n"
		"                     separated; default: every source feature)\n"
		"  -h, --help         this help\n"
		"\n"
		"Exit codes: 0 compatible, 3 refused, 2 usage or malformed input,\n"
		"1 internal error.\n");
}

/* Split @list in place into @req; returns the count or -1. */
static int split_required(char *list, const char **req, unsigned int max)
{
	unsigned int n = 0;

	for (char *save = NULL, *t = strtok_r(list, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save)) {
		if (n == max || strlen(t) > VFM_DESC_NAME_MAX ||
		    strspn(t,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
			    strlen(t))
			return -1;
		req[n++] = t;
	}
	return (int)n;
}

int vfm_cmd_compat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "require", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *req[VFM_DESC_FEATURES_MAX];
	struct vfm_desc *src = NULL, *dst = NULL;
	struct vfm_verdict *v = NULL;
	char *require = NULL;
	struct vfm_err err;
	int c, nreq = -1, ret = VFM_EXIT_USAGE;
	bool json = false;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r':
			free(require);
			require = strdup(optarg);
			if (!require)
				return VFM_EXIT_ERROR;
			break;
		case 'h':
			compat_usage(stdout);
			free(require);
			return VFM_EXIT_OK;
		default:
			compat_usage(stderr);
			free(require);
			return VFM_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr,
			"vfmig compat: expected two directories, SRC_DIR and DST_DIR (see --help)\n");
		free(require);
		return VFM_EXIT_USAGE;
	}
	if (require) {
		nreq = split_required(require, req, VFM_DESC_FEATURES_MAX);
		if (nreq < 0) {
			fprintf(stderr,
				"vfmig compat: --require takes up to %d feature names of A-Z a-z 0-9 _, comma separated\n",
				VFM_DESC_FEATURES_MAX);
			goto out;
		}
	}

	src = malloc(sizeof(*src));
	dst = malloc(sizeof(*dst));
	v = malloc(sizeof(*v));
	if (!src || !dst || !v) {
		ret = VFM_EXIT_ERROR;
		goto out;
	}
	if (vfm_desc_load_dir(argv[optind], src, &err) ||
	    vfm_desc_load_dir(argv[optind + 1], dst, &err)) {
		fprintf(stderr, "vfmig compat: %s\n", err.msg);
		goto out;
	}
	if (nreq >= 0)
		c = vfm_compat_eval_req(src, dst, req, (unsigned int)nreq, v);
	else
		c = vfm_compat_eval(src, dst, v);
	if (c) {
		fprintf(stderr, "vfmig compat: evaluation failed: %s\n",
			strerror(-c));
		ret = VFM_EXIT_ERROR;
		goto out;
	}
	if (json)
		vfm_verdict_print_json(stdout, v, src, dst);
	else
		vfm_verdict_print_table(stdout, v, src, dst);
	ret = v->accept ? VFM_EXIT_OK : VFM_EXIT_REFUSED;
out:
	free(require);
	free(src);
	free(dst);
	free(v);
	return ret;
}
