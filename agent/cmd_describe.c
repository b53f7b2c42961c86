// SPDX-License-Identifier: MIT
/* vfmig describe: a device's descriptor, state and digest. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "dev.h"
#include "verdict_fmt.h"

static void describe_usage(FILE *f)
{
	fprintf(f,
		"usage: vfmig describe SPEC [--out DIR] [--json]\n"
		"\n"
		"Print the compatibility descriptor of the device SPEC (vfio:<PCI\n"
		"address> or sim:k=v,...), its migration state and state digest.\n"
		"\n"
		"  --out DIR   also write the descriptor as a directory, laid out as\n"
		"              `vfmig compat` reads it\n"
		"  --json      one JSON object instead of text\n"
		"  --help      this help\n"
		"\n" VFM_EXIT_CODES_HELP);
}

int vfm_cmd_describe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	struct vfm_dev *d;
	struct vfm_desc desc;
	struct vfm_err err;
	char why[256] = "", hex[VFM_DIGEST_HEX] = "", buf[1100];
	uint32_t st = 0;
	bool json = false;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			describe_usage(stdout);
			return VFM_EXIT_OK;
		default:
			describe_usage(stderr);
			return VFM_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		describe_usage(stderr);
		return VFM_EXIT_USAGE;
	}
	ret = vfm_dev_open(argv[optind], &d, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "vfmig describe: %s\n", why);
		return VFM_EXIT_DEVICE;
	}
	vfm_desc_init(&desc);
	ret = vfm_dev_describe(d, &desc, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "vfmig describe: %s\n", why);
		vfm_dev_close(d);
		return VFM_EXIT_DEVICE;
	}
	vfm_dev_get_state(d, &st);
	vfm_dev_digest(d, hex);
	if (json) {
		printf("{\"device\":");
		vfm_json_string(stdout, argv[optind]);
		printf(",\"state\":\"%s\",\"state_digest\":\"%s\",\"descriptor\":",
		       vfm_dev_state_name(st), hex);
		vfm_desc_print_json(stdout, &desc);
		printf("}\n");
	} else {
		printf("device:             %s\n", argv[optind]);
		printf("state:              %s\n", vfm_dev_state_name(st));
		printf("state_digest:       %s\n", hex);
		printf("model:              %s\n", desc.model);
		vfm_version_format(&desc.version, buf, sizeof(buf));
		printf("version:            %s\n", buf);
		vfm_ranges_format(&desc.compatible, buf, sizeof(buf));
		printf("version_compatible: %s\n", buf);
		printf("features:          ");
		for (unsigned int i = 0; i < desc.nfeatures; i++)
			printf(" %s", desc.features[i]);
		printf("\n");
		for (unsigned int i = 0; i < desc.nparams; i++)
			printf("params/%-12s %s\n", desc.params[i].name,
			       desc.params[i].value);
		for (unsigned int i = 0; i < desc.nallowed; i++) {
			vfm_allowed_format(&desc.allowed[i], buf, sizeof(buf));
			printf("allowed/%-11s %s\n", desc.allowed[i].name, buf);
		}
	}
	ret = VFM_EXIT_OK;
	if (out) {
		vfm_err_clear(&err);
		if (vfm_desc_save_dir(&desc, out, &err)) {
			fprintf(stderr, "vfmig describe: cannot write %s: %s\n",
				out, err.msg);
			ret = VFM_EXIT_ERROR;
		}
	}
	vfm_dev_close(d);
	return ret;
}
