/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Moving a migration stream through a data fd: read()/write(), or the
 * mmap-able migration buffer with the VFMIG_* ioctls. Functions return 0 or
 * a negative errno.
 */
#ifndef VFM_VM_STREAM_H
#define VFM_VM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdev.h"

struct vfm_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

int vfm_buf_append(struct vfm_buf *b, const void *p, size_t n);
void vfm_buf_free(struct vfm_buf *b);

/* Segment sizes used in turn, ending with 0; NULL: 1 MiB segments. */
extern const size_t vfm_sizes_mixed_a[];
extern const size_t vfm_sizes_mixed_b[];

/*
 * Read until read() says ENOMSG (PRE_COPY caught up: *eof false), returns
 * 0 (STOP_COPY done: *eof true) or limit bytes came (0: no limit). Appends
 * to out when it is not NULL; *bytes: how many came.
 */
int vfm_read_until(int fd, struct vfm_buf *out, const size_t *sizes,
		   uint64_t limit, bool *eof, uint64_t *bytes);
/* write() all of p; *accepted: bytes taken before an error. */
int vfm_write_all(int fd, const uint8_t *p, size_t n, const size_t *sizes,
		  size_t *accepted);

struct vfm_map {
	uint8_t *p;
	size_t size;
};

int vfm_map(int fd, struct vfm_map *m);
void vfm_unmap(struct vfm_map *m);
/* As vfm_read_until, through VFMIG_SAVE_NEXT / VFMIG_SAVE_RELEASE. */
int vfm_mmap_save_until(int fd, struct vfm_map *m, struct vfm_buf *out,
			const size_t *sizes, uint64_t limit, bool *eof,
			uint64_t *bytes);
/* As vfm_write_all, through the buffer and VFMIG_LOAD_COMMIT. */
int vfm_mmap_load(int fd, struct vfm_map *m, const uint8_t *p, size_t n,
		  const size_t *sizes, size_t *accepted);

enum vfm_path { VFM_PATH_RW, VFM_PATH_MMAP };

/*
 * Save d's whole state into out. precopy: RUNNING -> PRE_COPY, one pre-copy
 * pass (what VFIO_MIG_GET_PRECOPY_INFO says is pending), then STOP_COPY;
 * else STOP -> STOP_COPY. Leaves d in STOP.
 */
int vfm_save(struct vfm_vdev *d, enum vfm_path path, bool precopy,
	     const size_t *sizes, struct vfm_buf *out);
/* STOP -> RESUMING, the stream, RESUMING -> STOP. Leaves d in STOP. */
int vfm_restore(struct vfm_vdev *d, enum vfm_path path, const uint8_t *p,
		size_t n, const size_t *sizes);

#endif
