// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysfs.h"

static void path_of(char *path, size_t n, const char *bdf, const char *rel)
{
	snprintf(path, n, "/sys/bus/pci/devices/%s/%s", bdf, rel);
}

int vfm_sysfs_read(const char *bdf, const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	path_of(path, sizeof(path), bdf, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int vfm_file_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return (size_t)n == len ? 0 : -EIO;
}

int vfm_sysfs_write(const char *bdf, const char *rel, const char *val)
{
	char path[PATH_MAX];

	path_of(path, sizeof(path), bdf, rel);
	return vfm_file_write(path, val);
}

int vfm_sysfs_write_u64(const char *bdf, const char *rel, uint64_t v)
{
	char s[32];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return vfm_sysfs_write(bdf, rel, s);
}

int vfm_digest(const char *bdf, char *buf, size_t len)
{
	return vfm_sysfs_read(bdf, VFM_SYS_DIGEST, buf, len);
}

int vfm_debugfs_write(const char *bdf, const char *name, const char *val)
{
	char path[PATH_MAX];
	struct stat st;

	if (stat("/sys/kernel/debug/vfmig_stub", &st) &&
	    mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) &&
	    errno != EBUSY)
		return -errno;
	snprintf(path, sizeof(path), "/sys/kernel/debug/vfmig_stub/%s/%s", bdf,
		 name);
	return vfm_file_write(path, val);
}
