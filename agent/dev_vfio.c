// SPDX-License-Identifier: MIT
/*
 * The "vfio" device: a PCI function through /dev/vfio (group + type1
 * container) and the VFIO migration uAPI v2, with the vfmig_stub.ko
 * migration buffer (mmap + VFMIG_* ioctls) when the data fd offers it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev.h"

struct vfm_vfio {
	struct vfm_dev dev;
	char bdf[32];
	int container, group, fd;
	int data_fd;
	uint64_t mig_flags;
	uint32_t state;
	void *map;
	size_t map_size;
};

static struct vfm_vfio *to_vfio(struct vfm_dev *d)
{
	return (struct vfm_vfio *)d;
}

static int feature(int fd, uint32_t flags, void *data, size_t len)
{
	char buf[sizeof(struct vfio_device_feature) + 64]
		__attribute__((aligned(8)));
	struct vfio_device_feature *f = (void *)buf;

	if (len > 64)
		return -EINVAL;
	memset(buf, 0, sizeof(buf));
	f->argsz = (uint32_t)(sizeof(*f) + len);
	f->flags = flags;
	if (data)
		memcpy(f->data, data, len);
	if (ioctl(fd, VFIO_DEVICE_FEATURE, f) < 0)
		return -errno;
	if (data)
		memcpy(data, f->data, len);
	return 0;
}

static void unmap_buf(struct vfm_vfio *v)
{
	if (v->map)
		munmap(v->map, v->map_size);
	v->map = NULL;
	v->map_size = 0;
}

static void drop_data_fd(struct vfm_vfio *v)
{
	unmap_buf(v);
	if (v->data_fd >= 0)
		close(v->data_fd);
	v->data_fd = -1;
}

/* The driver bound to PCI function @bdf into @drv ("" when none). */
static void bound_driver(const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	drv[0] = '\0';
	if (n > 0) {
		link[n] = '\0';
		snprintf(drv, len, "%s", basename(link));
	}
}

/*
 * Why @bdf cannot be opened through VFIO when its group file is missing:
 * no such function, no driver, or a driver that is not a VFIO one. Each
 * sentence ends with the command that fixes it.
 */
static void explain_not_vfio(const char *bdf, char *why, size_t whylen)
{
	char path[PATH_MAX], drv[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	if (access(path, F_OK)) {
		snprintf(
			why, whylen,
			"There is no PCI function %s on this host (see ls /sys/bus/pci/devices).",
			bdf);
		return;
	}
	bound_driver(bdf, drv, sizeof(drv));
	if (!drv[0])
		snprintf(
			why, whylen,
			"The PCI function %s has no driver; bind it to a VFIO migration driver: driverctl set-override %s vfmig_stub",
			bdf, bdf);
	else
		snprintf(
			why, whylen,
			"The PCI function %s is bound to %s, not to a VFIO migration driver; rebind it: driverctl set-override %s vfmig_stub",
			bdf, drv, bdf);
}

/* Into @who, the first process other than this one holding @dev open. */
static bool find_holder(const char *dev, char *who, size_t len)
{
	char fddir[64], path[PATH_MAX], link[PATH_MAX], comm[64] = "";
	struct dirent *p, *f;
	DIR *procs, *fds;
	bool found = false;
	FILE *c;

	procs = opendir("/proc");
	if (!procs)
		return false;
	while (!found && (p = readdir(procs))) {
		long pid = strtol(p->d_name, NULL, 10);

		if (pid <= 0 || pid == (long)getpid())
			continue;
		snprintf(fddir, sizeof(fddir), "/proc/%ld/fd", pid);
		fds = opendir(fddir);
		if (!fds)
			continue;
		while ((f = readdir(fds))) {
			ssize_t n;

			snprintf(path, sizeof(path), "%s/%s", fddir, f->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (!strcmp(link, dev)) {
				found = true;
				break;
			}
		}
		closedir(fds);
		if (!found)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		c = fopen(path, "r");
		if (c) {
			if (!fgets(comm, sizeof(comm), c))
				comm[0] = '\0';
			fclose(c);
		}
		comm[strcspn(comm, "\n")] = '\0';
		snprintf(who, len, "PID %ld (%s)", pid, comm[0] ? comm : "?");
	}
	closedir(procs);
	return found;
}

static int vfio_open(const char *args, struct vfm_dev **out, char *why,
		     size_t whylen)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	struct vfm_vfio *v;
	char path[PATH_MAX], link[PATH_MAX];
	uint64_t flags = 0;
	uint32_t st[2];
	ssize_t n;
	int ret;

	if (!*args || strlen(args) >= sizeof(v->bdf) || strchr(args, '/')) {
		snprintf(
			why, whylen,
			"'vfio:%s' does not name a PCI address (e.g. vfio:0000:00:04.0).",
			args);
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->container = v->group = v->fd = v->data_fd = -1;
	snprintf(v->bdf, sizeof(v->bdf), "%s", args);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 v->bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		ret = -errno;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", v->bdf);
		if (access(path, F_OK))
			explain_not_vfio(v->bdf, why, whylen);
		else
			snprintf(
				why, whylen,
				"The PCI function %s has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line) and reboot.",
				v->bdf);
		goto err;
	}
	link[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", basename(link));
	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			snprintf(
				why, whylen,
				"Cannot open /dev/vfio/vfio: the VFIO core is not loaded; load it: modprobe vfio_pci");
		else
			snprintf(why, whylen, "Cannot open /dev/vfio/vfio: %s.",
				 strerror(-ret));
		goto err;
	}
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		ret = -EINVAL;
		snprintf(why, whylen,
			 "The kernel's VFIO API version is not %d.",
			 VFIO_API_VERSION);
		goto err;
	}
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0) {
		char who[128];

		ret = -errno;
		if (ret == -ENOENT)
			explain_not_vfio(v->bdf, why, whylen);
		else if (ret == -EBUSY && find_holder(path, who, sizeof(who)))
			snprintf(
				why, whylen,
				"The IOMMU group %s of %s is held by %s: a VM or another vfmig uses the device; stop it first.",
				path, v->bdf, who);
		else if (ret == -EBUSY)
			snprintf(
				why, whylen,
				"The IOMMU group %s of %s is in use by another process (a VM or another vfmig): stop it first.",
				path, v->bdf);
		else if (ret == -EACCES || ret == -EPERM)
			snprintf(
				why, whylen,
				"Cannot open %s: %s; run as root or give this user the group file (a systemd unit needs DeviceAllow=char-vfio rw).",
				path, strerror(-ret));
		else
			snprintf(why, whylen, "Cannot open %s: %s.", path,
				 strerror(-ret));
		goto err;
	}
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &gs) < 0 ||
	    !(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		ret = -EINVAL;
		snprintf(
			why, whylen,
			"The IOMMU group %s is not viable: every function in it (ls /sys/bus/pci/devices/%s/iommu_group/devices) must be bound to a VFIO driver or to none.",
			path, v->bdf);
		goto err;
	}
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) < 0) {
		ret = -errno;
		snprintf(why, whylen, "Cannot attach %s to a container: %s.",
			 path, strerror(errno));
		goto err;
	}
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 &&
	    ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		ret = -errno;
		snprintf(why, whylen, "Cannot set the type1 IOMMU: %s.",
			 strerror(errno));
		goto err;
	}
	v->fd = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, v->bdf);
	if (v->fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "Cannot open the VFIO device %s: %s.",
			 v->bdf, strerror(errno));
		goto err;
	}
	ret = feature(v->fd,
		      VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
		      &flags, sizeof(flags));
	if (ret || !(flags & VFIO_MIGRATION_STOP_COPY)) {
		char drv[128];

		bound_driver(v->bdf, drv, sizeof(drv));
		snprintf(
			why, whylen,
			"The device %s (driver %s) does not support VFIO migration v2: plain vfio-pci cannot migrate; rebind it: driverctl set-override %s vfmig_stub",
			v->bdf, drv[0] ? drv : "none", v->bdf);
		ret = ret ? ret : -EOPNOTSUPP;
		goto err;
	}
	v->mig_flags = flags;
	memset(st, 0, sizeof(st));
	ret = feature(v->fd,
		      VFIO_DEVICE_FEATURE_GET |
			      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      st, sizeof(st));
	if (ret) {
		snprintf(why, whylen,
			 "Cannot read the migration state of %s: %s.", v->bdf,
			 strerror(-ret));
		goto err;
	}
	v->state = st[0];
	*out = &v->dev;
	return 0;
err:
	if (v->fd >= 0)
		close(v->fd);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	free(v);
	return ret;
}

static void vfio_close(struct vfm_dev *d)
{
	struct vfm_vfio *v = to_vfio(d);

	drop_data_fd(v);
	close(v->fd);
	close(v->group);
	close(v->container);
	free(v);
}

static int vfio_get_state(struct vfm_dev *d, uint32_t *state)
{
	struct vfm_vfio *v = to_vfio(d);
	uint32_t st[2] = { 0, 0 };
	int ret = feature(v->fd,
			  VFIO_DEVICE_FEATURE_GET |
				  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  st, sizeof(st));

	if (ret)
		return ret;
	v->state = *state = st[0];
	return 0;
}

static int vfio_set_state(struct vfm_dev *d, uint32_t state)
{
	struct vfm_vfio *v = to_vfio(d);
	/* struct vfio_device_feature_mig_state: u32 state, s32 data_fd */
	int32_t st[2] = { (int32_t)state, -1 };
	int ret = feature(v->fd,
			  VFIO_DEVICE_FEATURE_SET |
				  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  st, sizeof(st));

	if (ret) {
		uint32_t now;

		vfio_get_state(d, &now);
		return ret;
	}
	if (st[1] >= 0) {
		drop_data_fd(v);
		v->data_fd = st[1];
		fcntl(v->data_fd, F_SETFD, FD_CLOEXEC);
	} else if (state == VFIO_DEVICE_STATE_RUNNING ||
		   state == VFIO_DEVICE_STATE_STOP ||
		   state == VFIO_DEVICE_STATE_RUNNING_P2P) {
		drop_data_fd(v);
	}
	v->state = state;
	return 0;
}

static int vfio_precopy_info(struct vfm_dev *d, uint64_t *initial,
			     uint64_t *dirty)
{
	struct vfm_vfio *v = to_vfio(d);
	struct vfio_precopy_info pi = { .argsz = sizeof(pi) };

	if (v->data_fd < 0)
		return -EINVAL;
	if (ioctl(v->data_fd, VFIO_MIG_GET_PRECOPY_INFO, &pi) < 0)
		return -errno;
	*initial = pi.initial_bytes;
	*dirty = pi.dirty_bytes;
	return 0;
}

static int vfio_data_size(struct vfm_dev *d, uint64_t *bytes)
{
	struct vfio_device_feature_mig_data_size ds = { 0 };
	int ret = feature(to_vfio(d)->fd,
			  VFIO_DEVICE_FEATURE_GET |
				  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
			  &ds, sizeof(ds));

	if (!ret)
		*bytes = ds.stop_copy_length;
	return ret;
}

static int vfio_buf(struct vfm_dev *d, void **addr, size_t *size)
{
	struct vfm_vfio *v = to_vfio(d);
	struct vfmig_buf_info bi = { .argsz = sizeof(bi) };
	void *p;

	if (v->data_fd < 0)
		return -EINVAL;
	if (!v->map) {
		if (ioctl(v->data_fd, VFMIG_BUF_INFO, &bi) < 0 || !bi.size)
			return -EOPNOTSUPP;
		p = mmap(NULL, bi.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 v->data_fd, 0);
		if (p == MAP_FAILED)
			return -EOPNOTSUPP;
		v->map = p;
		v->map_size = bi.size;
	}
	*addr = v->map;
	*size = v->map_size;
	return 0;
}

static int vfio_save_next(struct vfm_dev *d, uint64_t max,
			  struct vfm_dev_seg *seg)
{
	struct vfm_vfio *v = to_vfio(d);
	struct vfmig_seg s = { .argsz = sizeof(s), .length = max };

	if (ioctl(v->data_fd, VFMIG_SAVE_NEXT, &s) < 0)
		return -errno;
	*seg = (struct vfm_dev_seg){ .off = s.offset,
				     .len = s.length,
				     .stream_pos = s.stream_pos,
				     .eof = (s.flags & VFMIG_SEG_EOF) &&
					    !s.length };
	return 0;
}

static int vfio_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg)
{
	struct vfmig_seg s = { .argsz = sizeof(s),
			       .offset = seg->off,
			       .length = seg->len };

	if (ioctl(to_vfio(d)->data_fd, VFMIG_SAVE_RELEASE, &s) < 0)
		return -errno;
	return 0;
}

static int vfio_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len)
{
	struct vfmig_seg s = { .argsz = sizeof(s),
			       .offset = off,
			       .length = len };

	if (ioctl(to_vfio(d)->data_fd, VFMIG_LOAD_COMMIT, &s) < 0)
		return -errno;
	return 0;
}

static ssize_t vfio_read(struct vfm_dev *d, void *buf, size_t len)
{
	ssize_t n = read(to_vfio(d)->data_fd, buf, len);

	return n < 0 ? -errno : n;
}

static ssize_t vfio_write(struct vfm_dev *d, const void *buf, size_t len)
{
	ssize_t n = write(to_vfio(d)->data_fd, buf, len);

	return n < 0 ? -errno : n;
}

static int vfio_describe(struct vfm_dev *d, struct vfm_desc *desc, char *why,
			 size_t whylen)
{
	struct vfm_err err;
	char dir[PATH_MAX];
	int ret;

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/migration",
		 to_vfio(d)->bdf);
	vfm_err_clear(&err);
	ret = vfm_desc_load_dir(dir, desc, &err);
	if (ret)
		snprintf(why, whylen, "%s", err.msg);
	return ret;
}

static int vfio_digest(struct vfm_dev *d, char hex[VFM_DIGEST_HEX])
{
	char path[PATH_MAX], buf[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/migration/state_digest",
		 to_vfio(d)->bdf);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, " \n")] = '\0';
	buf[VFM_DIGEST_HEX - 1] = '\0';
	memcpy(hex, buf, VFM_DIGEST_HEX);
	return 0;
}

/*
 * vfmig_stub.ko's vfmig/stream_format: the format its next saving stream
 * produces. A driver without the file produces format 1 only (and states
 * no migration/stream_formats, so the handshake never asks for more).
 */
static int vfio_set_stream_format(struct vfm_dev *d, unsigned int format)
{
	char path[PATH_MAX], text[16];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfmig/stream_format",
		 to_vfio(d)->bdf);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && format == VFMIG_STREAM_FORMAT ?
			       0 :
			       -errno;
	len = snprintf(text, sizeof(text), "%u\n", format);
	if (write(fd, text, (size_t)len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

static int vfio_reset(struct vfm_dev *d)
{
	struct vfm_vfio *v = to_vfio(d);
	uint32_t st;

	drop_data_fd(v);
	if (ioctl(v->fd, VFIO_DEVICE_RESET) < 0)
		return -errno;
	return vfio_get_state(d, &st);
}

const struct vfm_dev_ops vfm_dev_vfio_ops = {
	.name = "vfio",
	.open = vfio_open,
	.close = vfio_close,
	.get_state = vfio_get_state,
	.set_state = vfio_set_state,
	.precopy_info = vfio_precopy_info,
	.data_size = vfio_data_size,
	.buf = vfio_buf,
	.save_next = vfio_save_next,
	.save_release = vfio_save_release,
	.load_commit = vfio_load_commit,
	.read = vfio_read,
	.write = vfio_write,
	.describe = vfio_describe,
	.digest = vfio_digest,
	.reset = vfio_reset,
	.set_stream_format = vfio_set_stream_format,
};
