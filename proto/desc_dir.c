// SPDX-License-Identifier: MIT
/*
 * Descriptor directories, laid out like the kernel driver's sysfs tree.
 * The only file I/O in proto/: bounded reads, no printing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vfm/desc.h"
#include "internal.h"

#define PATH_CAP 4096

/* Read at most VFM_DESC_FILE_MAX bytes of a regular file. */
static int read_small(const char *path, char *buf, size_t *len,
		      struct vfm_err *err)
{
	struct stat st;
	size_t n = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			return vfm_err_set(err, ret, "%s: missing", path);
		return vfm_err_set(err, ret, "%s: cannot open: %s", path,
				   strerror(-ret));
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ret = vfm_err_set(err, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, VFM_DESC_FILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			vfm_err_set(err, ret, "%s: cannot read: %s", path,
				    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > VFM_DESC_FILE_MAX) {
			ret = vfm_err_set(err, -EFBIG,
					  "%s: longer than %d bytes", path,
					  VFM_DESC_FILE_MAX);
			goto out;
		}
	}
	*len = n;
out:
	close(fd);
	return ret;
}

static int load_file(const char *dir, const char *rel, struct vfm_desc *d,
		     struct vfm_err *err)
{
	char path[PATH_CAP], buf[VFM_DESC_FILE_MAX + 1];
	size_t len = 0;
	int ret;

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >=
	    (int)sizeof(path))
		return vfm_err_set(err, -ENAMETOOLONG, "%s: path too long",
				   dir);
	ret = read_small(path, buf, &len, err);
	if (ret)
		return ret;
	ret = vfm_desc_apply_file(d, rel, buf, len, err);
	if (ret)
		vfm_err_prefix(err, dir);
	return ret;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Every file of dir/sub (sorted by name), or nothing if it is absent. */
static int load_sub(const char *dir, const char *sub, struct vfm_desc *d,
		    struct vfm_err *err)
{
	char names[VFM_DESC_PARAMS_MAX][VFM_DESC_NAME_MAX + 1];
	char path[PATH_CAP], rel[16 + VFM_DESC_NAME_MAX + 1];
	unsigned int n = 0;
	struct dirent *de;
	DIR *dp;
	int ret = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >=
	    (int)sizeof(path))
		return vfm_err_set(err, -ENAMETOOLONG, "%s: path too long",
				   dir);
	dp = opendir(path);
	if (!dp) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		return vfm_err_set(err, ret, "%s: cannot open: %s", path,
				   strerror(errno));
	}
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == VFM_DESC_PARAMS_MAX) {
			ret = vfm_err_set(err, -E2BIG,
					  "%s: more than %d entries", path,
					  VFM_DESC_PARAMS_MAX);
			goto out;
		}
		if (strlen(de->d_name) > VFM_DESC_NAME_MAX) {
			ret = vfm_err_set(
				err, -ENAMETOOLONG,
				"%s/%.16s...: the name is longer than %d bytes",
				path, de->d_name, VFM_DESC_NAME_MAX);
			goto out;
		}
		memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	}
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (unsigned int i = 0; i < n && !ret; i++) {
		snprintf(rel, sizeof(rel), "%s/%s", sub, names[i]);
		ret = load_file(dir, rel, d, err);
	}
out:
	closedir(dp);
	return ret;
}

int vfm_desc_load_dir(const char *dir, struct vfm_desc *d, struct vfm_err *err)
{
	static const char *const files[] = { "model", "version",
					     "version_compatible", "features" };
	char path[PATH_CAP], rel_path_buf[PATH_CAP + 16];
	size_t n = strlen(dir);
	int ret;

	vfm_err_clear(err);
	vfm_desc_init(d);
	/* "dir/" and "dir" name the same files: keep error paths tidy. */
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n >= sizeof(path))
		return vfm_err_set(err, -ENAMETOOLONG,
				   "%.64s...: path too long", dir);
	memcpy(path, dir, n);
	path[n] = '\0';
	dir = path;
	for (size_t i = 0; i < VFM_ARRAY_SIZE(files); i++) {
		ret = load_file(dir, files[i], d, err);
		if (ret)
			return ret;
	}
	if (snprintf(rel_path_buf, sizeof(rel_path_buf), "%s/stream_formats",
		     dir) < (int)sizeof(rel_path_buf) &&
	    !access(rel_path_buf, F_OK)) {
		ret = load_file(dir, "stream_formats", d, err);
		if (ret)
			return ret;
	}
	ret = load_sub(dir, "params", d, err);
	if (!ret)
		ret = load_sub(dir, "allowed", d, err);
	return ret;
}

static int write_file(const char *dir, const char *rel, const char *text,
		      struct vfm_err *err)
{
	char path[PATH_CAP];
	size_t len = strlen(text), off = 0;
	int fd, ret = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >=
	    (int)sizeof(path))
		return vfm_err_set(err, -ENAMETOOLONG, "%s: path too long",
				   dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		return vfm_err_set(err, ret, "%s: cannot create: %s", path,
				   strerror(errno));
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ret = -errno;
			vfm_err_set(err, ret, "%s: cannot write: %s", path,
				    strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (close(fd) && !ret) {
		ret = -errno;
		vfm_err_set(err, ret, "%s: cannot write: %s", path,
			    strerror(errno));
	}
	return ret;
}

static int make_dir(const char *dir, const char *sub, struct vfm_err *err)
{
	char path[PATH_CAP];

	if (snprintf(path, sizeof(path), "%s%s%s", dir, sub ? "/" : "",
		     sub ? sub : "") >= (int)sizeof(path))
		return vfm_err_set(err, -ENAMETOOLONG, "%s: path too long",
				   dir);
	if (mkdir(path, 0755) && errno != EEXIST)
		return vfm_err_set(err, -errno, "%s: cannot create: %s", path,
				   strerror(errno));
	return 0;
}

int vfm_desc_save_dir(const struct vfm_desc *d, const char *dir,
		      struct vfm_err *err)
{
	char text[VFM_DESC_FILE_MAX + 2], rel[16 + VFM_DESC_NAME_MAX + 1];
	size_t n = 0;
	int ret, len;

	vfm_err_clear(err);
	ret = vfm_desc_check(d, err);
	if (ret)
		return ret;
	ret = make_dir(dir, NULL, err);
	if (!ret)
		ret = make_dir(dir, "params", err);
	if (!ret)
		ret = make_dir(dir, "allowed", err);
	if (ret)
		return ret;

	snprintf(text, sizeof(text), "%s\n", d->model);
	ret = write_file(dir, "model", text, err);
	if (ret)
		return ret;
	len = vfm_version_format(&d->version, text, sizeof(text) - 1);
	if (len < 0)
		return vfm_err_set(err, len, "version: cannot format");
	strcpy(text + len, "\n");
	ret = write_file(dir, "version", text, err);
	if (ret)
		return ret;
	len = vfm_ranges_format(&d->compatible, text, sizeof(text) - 1);
	if (len < 0)
		return vfm_err_set(err, len,
				   "version_compatible: cannot format");
	strcpy(text + len, "\n");
	ret = write_file(dir, "version_compatible", text, err);
	if (ret)
		return ret;
	text[0] = '\0';
	for (unsigned int i = 0; i < d->nfeatures; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s",
				      i ? " " : "", d->features[i]);
	strcpy(text + n, "\n");
	ret = write_file(dir, "features", text, err);
	if (!ret && d->stream_formats) {
		len = vfm_stream_formats_format(d->stream_formats, text,
						sizeof(text) - 1);
		if (len < 0)
			return vfm_err_set(err, len,
					   "stream_formats: cannot format");
		strcpy(text + len, "\n");
		ret = write_file(dir, "stream_formats", text, err);
	}
	for (unsigned int i = 0; i < d->nparams && !ret; i++) {
		snprintf(rel, sizeof(rel), "params/%s", d->params[i].name);
		snprintf(text, sizeof(text), "%s\n", d->params[i].value);
		ret = write_file(dir, rel, text, err);
	}
	for (unsigned int i = 0; i < d->nallowed && !ret; i++) {
		snprintf(rel, sizeof(rel), "allowed/%s", d->allowed[i].name);
		len = vfm_allowed_format(&d->allowed[i], text,
					 sizeof(text) - 1);
		if (len < 0)
			return vfm_err_set(err, len, "%s: cannot format", rel);
		strcpy(text + len, "\n");
		ret = write_file(dir, rel, text, err);
	}
	return ret;
}
