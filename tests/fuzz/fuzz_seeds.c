// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpus of fuzz_proto: every golden wire vector as a raw
 * frame, and every file of one example descriptor prefixed with the byte
 * that selects its parser.
 * Usage: fuzz_seeds GOLDEN_DIR EXAMPLE_DESC_DIR CORPUS_DIR
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "proto_test_util.h"

static int put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) {
		perror(path);
		return -1;
	}
	return fclose(f);
}

int main(int argc, char **argv)
{
	static const char *const files[] = {
		"model",    "version",	     "version_compatible",
		"features", "params/memory", "allowed/memory"
	};
	static uint8_t buf[VFM_WIRE_FRAME_MAX + 1];
	struct dirent *de;
	int count = 0;
	DIR *dp;

	if (argc != 4) {
		fprintf(stderr,
			"usage: fuzz_seeds GOLDEN_DIR DESC_DIR CORPUS_DIR\n");
		return 2;
	}
	dp = opendir(argv[1]);
	if (!dp) {
		perror(argv[1]);
		return 1;
	}
	while ((de = readdir(dp))) {
		char path[4096];
		long n;

		if (!strstr(de->d_name, ".hex"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		n = pt_hex_read(path, buf, sizeof(buf));
		if (n < 0 || put(argv[3], de->d_name, buf, (size_t)n))
			return 1;
		count++;
	}
	closedir(dp);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096], name[64];
		size_t n;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", argv[2], files[i]);
		f = fopen(path, "rb");
		if (!f) {
			perror(path);
			return 1;
		}
		buf[0] = (uint8_t)i;
		n = fread(buf + 1, 1, sizeof(buf) - 1, f);
		fclose(f);
		snprintf(name, sizeof(name), "desc-%zu", i);
		if (put(argv[3], name, buf, n + 1))
			return 1;
		count++;
	}
	printf("fuzz_seeds: %d seeds in %s\n", count, argv[3]);
	return count ? 0 : 1;
}
