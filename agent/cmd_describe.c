// SPDX-License-Identifier: MIT
/* vfmig describe: a device's descriptor, state and digest. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dev.h"
#include "verdict_fmt.h"

/* The namespace of vfmig's element in a libvirt domain's <metadata>. */
#define VFM_LIBVIRT_NS "urn:vfmig:libvirt:1"

static void describe_usage(FILE *f)
{
	fprintf(f,
		"usage: vfmig describe SPEC [--out DIR] [--json]\n"
		"       vfmig describe --libvirt-metadata SPEC [SPEC...]\n"
		"\n"
		"Print the compatibility descriptor of the device SPEC (vfio:<PCI\n"
		"address> or sim:k=v,...), its migration state and state digest.\n"
		"\n"
		"  --out DIR   also write the descriptor as a directory, laid out as\n"
		"              `vfmig compat` reads it\n"
		"  --json      one JSON object instead of text\n"
		"  --libvirt-metadata\n"
		"              the descriptors of the source devices SPEC..., in the\n"
		"              order of the domain's <hostdev> elements, as the XML\n"
		"              element virsh puts in the domain's <metadata>:\n"
		"                virsh metadata DOMAIN --uri " VFM_LIBVIRT_NS
		"\n"
		"                  --key vfmig --live --config --set \"$(vfmig describe\n"
		"                  --libvirt-metadata vfio:BDF...)\"\n"
		"              the destination's libvirt hook checks them before the\n"
		"              migration starts. A vfio: device is read from sysfs\n"
		"              (its migration/ folder), not opened: the domain may\n"
		"              run; a SPEC with a / is a descriptor directory\n"
		"  --help      this help\n"
		"\n" VFM_EXIT_CODES_HELP);
}

/* @s as XML attribute text. */
static void xml_attr(FILE *f, const char *name, const char *s)
{
	fprintf(f, " %s=\"", name);
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			if ((unsigned char)*s < 0x20)
				fprintf(f, "&#%d;", *s);
			else
				fputc(*s, f);
		}
	}
	fputc('"', f);
}

/* One <device> element: everything `vfmig compat` reads from a directory. */
static void print_device_xml(FILE *f, const char *spec,
			     const struct vfm_desc *d)
{
	char buf[1100] = "",
	     feats[VFM_DESC_FEATURES_MAX * (VFM_DESC_NAME_MAX + 1) + 1] = "";

	fputs("  <device", f);
	xml_attr(f, "spec", spec);
	xml_attr(f, "model", d->model);
	vfm_version_format(&d->version, buf, sizeof(buf));
	xml_attr(f, "version", buf);
	vfm_ranges_format(&d->compatible, buf, sizeof(buf));
	xml_attr(f, "version_compatible", buf);
	for (unsigned int i = 0; i < d->nfeatures; i++) {
		if (i)
			strcat(feats, " ");
		strcat(feats, d->features[i]);
	}
	xml_attr(f, "features", feats);
	fputs(">\n", f);
	for (unsigned int i = 0; i < d->nparams; i++) {
		fputs("    <param", f);
		xml_attr(f, "name", d->params[i].name);
		xml_attr(f, "value", d->params[i].value);
		fputs("/>\n", f);
	}
	for (unsigned int i = 0; i < d->nallowed; i++) {
		if (vfm_allowed_format(&d->allowed[i], buf, sizeof(buf)) < 0)
			continue;
		fputs("    <allowed", f);
		xml_attr(f, "name", d->allowed[i].name);
		xml_attr(f, "values", buf);
		fputs("/>\n", f);
	}
	fputs("  </device>\n", f);
}

/*
 * One source device for --libvirt-metadata. The domain runs: QEMU holds
 * the VFIO group, so a vfio: device is read from its driver's sysfs
 * migration/ folder, never opened. A directory is read as `vfmig compat`
 * reads one; sim: devices are opened (they live in this process).
 */
static int describe_source(const char *spec, struct vfm_desc *desc)
{
	char path[PATH_MAX], why[256] = "";
	struct vfm_err err = { .msg = "" };
	struct vfm_dev *d;
	int ret;

	if (!strncmp(spec, "vfio:", 5) || strchr(spec, '/')) {
		if (spec[0] == 'v')
			snprintf(path, sizeof(path),
				 "/sys/bus/pci/devices/%s/migration", spec + 5);
		else
			snprintf(path, sizeof(path), "%s", spec);
		if (vfm_desc_load_dir(path, desc, &err)) {
			fprintf(stderr,
				"vfmig describe: %s has no readable vfmig descriptor (%s): is it bound to a VFIO migration driver such as vfmig_stub?\n",
				spec, err.msg);
			return VFM_EXIT_DEVICE;
		}
		return VFM_EXIT_OK;
	}
	ret = vfm_dev_open(spec, &d, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "vfmig describe: %s\n", why);
		return VFM_EXIT_DEVICE;
	}
	ret = vfm_dev_describe(d, desc, why, sizeof(why));
	vfm_dev_close(d);
	if (ret) {
		fprintf(stderr, "vfmig describe: %s\n", why);
		return VFM_EXIT_DEVICE;
	}
	return VFM_EXIT_OK;
}

/*
 * --libvirt-metadata: describe every SPEC first, print only when all
 * succeeded, so a half-written element never reaches a domain.
 */
static int describe_libvirt(int n, char **specs)
{
	struct vfm_desc *descs = calloc((size_t)n, sizeof(*descs));
	int i, ret;

	if (!descs)
		return VFM_EXIT_ERROR;
	for (i = 0; i < n; i++) {
		vfm_desc_init(&descs[i]);
		ret = describe_source(specs[i], &descs[i]);
		if (ret) {
			free(descs);
			return ret;
		}
	}
	/*
	 * No namespace here: `virsh metadata --set` puts the element in the
	 * --uri namespace itself and refuses one that already declares it.
	 */
	printf("<devices>\n");
	for (i = 0; i < n; i++)
		print_device_xml(stdout, specs[i], &descs[i]);
	printf("</devices>\n");
	free(descs);
	return fflush(stdout) ? VFM_EXIT_ERROR : VFM_EXIT_OK;
}

int vfm_cmd_describe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "libvirt-metadata", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	struct vfm_dev *d;
	struct vfm_desc desc;
	struct vfm_err err;
	char why[256] = "", hex[VFM_DIGEST_HEX] = "", buf[1100];
	uint32_t st = 0;
	bool json = false, libvirt = false;
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
		case 'l':
			libvirt = true;
			break;
		case 'h':
			describe_usage(stdout);
			return VFM_EXIT_OK;
		default:
			describe_usage(stderr);
			return VFM_EXIT_USAGE;
		}
	}
	if (libvirt) {
		if (optind == argc || out || json) {
			describe_usage(stderr);
			return VFM_EXIT_USAGE;
		}
		return describe_libvirt(argc - optind, argv + optind);
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
