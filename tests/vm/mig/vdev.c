// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vdev.h"

static int group_of(const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *slash;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	slash = strrchr(link, '/');
	return atoi(slash ? slash + 1 : link);
}

/* The device-specific region carrying VFMIG_REGION_TYPE/SUBTYPE_MEM. */
static int find_mem_region(struct vfm_vdev *d)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	uint32_t i;

	if (ioctl(d->fd, VFIO_DEVICE_GET_INFO, &info))
		return -errno;
	for (i = VFIO_PCI_NUM_REGIONS; i < info.num_regions; i++) {
		struct vfio_region_info *ri;
		uint32_t sz = 4096, off;

		ri = calloc(1, sz);
		if (!ri)
			return -ENOMEM;
		ri->argsz = sz;
		ri->index = i;
		if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, ri) ||
		    !(ri->flags & VFIO_REGION_INFO_FLAG_CAPS) ||
		    ri->argsz > sz) {
			free(ri);
			continue;
		}
		for (off = ri->cap_offset; off && off + 16 <= sz;) {
			struct vfio_info_cap_header *h =
				(void *)((char *)ri + off);

			if (h->id == VFIO_REGION_INFO_CAP_TYPE) {
				struct vfio_region_info_cap_type *t = (void *)h;

				if (t->type == VFMIG_REGION_TYPE &&
				    t->subtype == VFMIG_REGION_SUBTYPE_MEM) {
					d->mem_off = ri->offset;
					d->mem_size = ri->size;
					free(ri);
					return 0;
				}
			}
			off = h->next;
		}
		free(ri);
	}
	return -ENOENT;
}

int vfm_vdev_open(struct vfm_vdev *d, const char *bdf)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int ret, type;

	memset(d, 0, sizeof(*d));
	d->container = d->group = d->fd = -1;
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
	d->group_id = group_of(bdf);
	if (d->group_id < 0)
		return d->group_id;

	d->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (d->container < 0)
		goto err;
	if (ioctl(d->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		errno = EPROTO;
		goto err;
	}
	type = ioctl(d->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) >
			       0 ?
		       VFIO_TYPE1v2_IOMMU :
		       VFIO_TYPE1_IOMMU;
	snprintf(path, sizeof(path), "/dev/vfio/%d", d->group_id);
	d->group = open(path, O_RDWR | O_CLOEXEC);
	if (d->group < 0)
		goto err;
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &st))
		goto err;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EBUSY;
		goto err;
	}
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container))
		goto err;
	if (ioctl(d->container, VFIO_SET_IOMMU, type))
		goto err;
	d->fd = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, d->bdf);
	if (d->fd < 0)
		goto err;
	find_mem_region(d);
	return 0;
err:
	ret = -errno;
	vfm_vdev_close(d);
	return ret;
}

void vfm_vdev_close(struct vfm_vdev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->group >= 0)
		close(d->group);
	if (d->container >= 0)
		close(d->container);
	d->fd = d->group = d->container = -1;
}

/* VFIO_DEVICE_FEATURE with a payload of n bytes at data. */
static int feature(struct vfm_vdev *d, uint32_t flags, void *data, size_t n)
{
	union {
		struct vfio_device_feature f;
		uint8_t raw[sizeof(struct vfio_device_feature) + 64];
	} u;

	if (n > 64)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	u.f.argsz = sizeof(u.f) + n;
	u.f.flags = flags;
	memcpy(u.f.data, data, n);
	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, &u.f))
		return -errno;
	memcpy(data, u.f.data, n);
	return 0;
}

int vfm_mig_flags(struct vfm_vdev *d, uint64_t *flags)
{
	struct vfio_device_feature_migration m = { 0 };
	int ret;

	ret = feature(d,
		      VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
		      &m, sizeof(m));
	if (!ret)
		*flags = m.flags;
	return ret;
}

int vfm_set_state(struct vfm_vdev *d, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state m = { .device_state = state,
						   .data_fd = -1 };
	int ret;

	ret = feature(d,
		      VFIO_DEVICE_FEATURE_SET |
			      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      &m, sizeof(m));
	if (data_fd)
		*data_fd = ret ? -1 : m.data_fd;
	else if (!ret && m.data_fd >= 0)
		close(m.data_fd);
	return ret;
}

int vfm_get_state(struct vfm_vdev *d, uint32_t *state)
{
	struct vfio_device_feature_mig_state m = { 0 };
	int ret;

	ret = feature(d,
		      VFIO_DEVICE_FEATURE_GET |
			      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      &m, sizeof(m));
	if (!ret)
		*state = m.device_state;
	return ret;
}

int vfm_goto(struct vfm_vdev *d, uint32_t state)
{
	return vfm_set_state(d, state, NULL);
}

int vfm_data_size(struct vfm_vdev *d, uint64_t *len)
{
	struct vfio_device_feature_mig_data_size m = { 0 };
	int ret;

	ret = feature(
		d, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
		&m, sizeof(m));
	if (!ret)
		*len = m.stop_copy_length;
	return ret;
}

int vfm_reset(struct vfm_vdev *d)
{
	return ioctl(d->fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

int vfm_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty)
{
	struct vfio_precopy_info pi = { .argsz = sizeof(pi) };

	if (ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &pi))
		return -errno;
	*initial = pi.initial_bytes;
	*dirty = pi.dirty_bytes;
	return 0;
}

int vfm_mem_write(struct vfm_vdev *d, uint64_t off, const void *p, size_t n)
{
	ssize_t r;

	if (!d->mem_size)
		return -ENOENT;
	r = pwrite(d->fd, p, n, (off_t)(d->mem_off + off));
	if (r < 0)
		return -errno;
	return (size_t)r == n ? 0 : -EIO;
}

int vfm_mem_read(struct vfm_vdev *d, uint64_t off, void *p, size_t n)
{
	ssize_t r;

	if (!d->mem_size)
		return -ENOENT;
	r = pread(d->fd, p, n, (off_t)(d->mem_off + off));
	if (r < 0)
		return -errno;
	return (size_t)r == n ? 0 : -EIO;
}

const char *vfm_state_name(uint32_t state)
{
	static const char *const names[VFM_NUM_STATES] = {
		"ERROR",    "STOP",	   "RUNNING",  "STOP_COPY",
		"RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
	};

	return state < VFM_NUM_STATES ? names[state] : "INVALID";
}
