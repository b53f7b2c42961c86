/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VFIO device opened the legacy way (group + type1 container) and the
 * migration uAPI v2 calls the guest tests make on it. Every function
 * returns 0 or a negative errno.
 */
#ifndef VFM_VM_VDEV_H
#define VFM_VM_VDEV_H

#include <stddef.h>
#include <stdint.h>

#include <uapi/vfmig.h>

#define VFM_NUM_STATES 8 /* ERROR .. PRE_COPY_P2P */

struct vfm_vdev {
	char bdf[32];
	int group_id;
	int container;
	int group;
	int fd;
	uint64_t mem_off; /* device-memory region: offset on fd */
	uint64_t mem_size; /* 0: no such region */
};

int vfm_vdev_open(struct vfm_vdev *d, const char *bdf);
void vfm_vdev_close(struct vfm_vdev *d);

int vfm_mig_flags(struct vfm_vdev *d, uint64_t *flags);
/* *data_fd: the new data fd, or -1 when the arc returns none. */
int vfm_set_state(struct vfm_vdev *d, uint32_t state, int *data_fd);
int vfm_get_state(struct vfm_vdev *d, uint32_t *state);
/* Set a state that returns no data fd we care about (closed if any). */
int vfm_goto(struct vfm_vdev *d, uint32_t state);
int vfm_data_size(struct vfm_vdev *d, uint64_t *len);
int vfm_reset(struct vfm_vdev *d);
int vfm_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty);

int vfm_mem_write(struct vfm_vdev *d, uint64_t off, const void *p, size_t n);
int vfm_mem_read(struct vfm_vdev *d, uint64_t off, void *p, size_t n);

const char *vfm_state_name(uint32_t state);

#endif
