/* SPDX-License-Identifier: MIT */
/*
 * Migratable devices behind one ops table. A backend ("vfio", "sim") fills
 * a static const struct vfm_dev_ops; callers use the vfm_dev_* wrappers.
 *
 * The data interface mirrors the kernel driver's migration buffer
 * (vfmig.h): a saving device hands out segments of its stream inside a
 * buffer the caller can register with a transport (save_next), and frees
 * them oldest first (save_release); a resuming device consumes a filled
 * range of its buffer (load_commit). A backend without such a buffer
 * offers read()/write() only; vfm_dev.c then supplies a buffer and does the
 * segmenting itself, so the engine always sees the segment interface.
 *
 * States are the VFIO migration v2 states (enum vfio_device_mig_state).
 * Every function returns 0 (or a count) or a negative errno.
 */
#ifndef VFM_DEV_H
#define VFM_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "uapi/vfmig.h"
#include "vfm/desc.h"

#define VFM_DIGEST_HEX 65 /* 64 hex digits + NUL */
/* Largest read()/write() on a device without a migration buffer: QEMU's
 * VFIO migration moves the data fd's bytes through a 1 MiB buffer. */
#define VFM_DEV_BOUNCE (1u << 20)

struct vfm_dev;

struct vfm_dev_seg {
	uint64_t off; /* in the device buffer */
	uint64_t len; /* bytes; 0 with eof */
	uint64_t stream_pos; /* stream offset of byte 0 */
	bool eof; /* STOP_COPY stream complete */
};

struct vfm_dev_ops {
	const char *name; /* spec prefix: "vfio", "sim" */
	/* @args: the spec after "name:". */
	int (*open)(const char *args, struct vfm_dev **out, char *why,
		    size_t whylen);
	void (*close)(struct vfm_dev *d);
	int (*get_state)(struct vfm_dev *d, uint32_t *state);
	/* Any reachable state; multi-arc paths as the kernel's FSM walks. */
	int (*set_state)(struct vfm_dev *d, uint32_t state);
	int (*precopy_info)(struct vfm_dev *d, uint64_t *initial,
			    uint64_t *dirty);
	int (*data_size)(struct vfm_dev *d, uint64_t *bytes);
	/* The migration buffer of the current session; -EOPNOTSUPP if none. */
	int (*buf)(struct vfm_dev *d, void **addr, size_t *size);
	/* @max 0: any length. -ENOMSG: PRE_COPY, nothing now. -ENOBUFS. */
	int (*save_next)(struct vfm_dev *d, uint64_t max,
			 struct vfm_dev_seg *seg);
	int (*save_release)(struct vfm_dev *d, const struct vfm_dev_seg *seg);
	int (*load_commit)(struct vfm_dev *d, uint64_t off, uint64_t len);
	/* Plain data-fd I/O (read: 0 at EOF, -ENOMSG when caught up). */
	ssize_t (*read)(struct vfm_dev *d, void *buf, size_t len);
	ssize_t (*write)(struct vfm_dev *d, const void *buf, size_t len);
	int (*describe)(struct vfm_dev *d, struct vfm_desc *desc, char *why,
			size_t whylen);
	int (*digest)(struct vfm_dev *d, char hex[VFM_DIGEST_HEX]);
	/* Back to RUNNING, any session dropped. */
	int (*reset)(struct vfm_dev *d);
	/* Optional: this device will be a destination; set up now what
	 * resuming needs, so that it costs nothing while data arrives. */
	int (*prepare_resume)(struct vfm_dev *d);
	/* Optional: the stream format (uapi/vfmig.h) the next saving stream
	 * produces; one of the device's descriptor's stream_formats. A
	 * backend without it produces format 1. */
	int (*set_stream_format)(struct vfm_dev *d, unsigned int format);
};

extern const struct vfm_dev_ops vfm_dev_sim_ops;
extern const struct vfm_dev_ops vfm_dev_vfio_ops;

/* Every device object begins with this header. */
struct vfm_dev {
	const struct vfm_dev_ops *ops;
	char spec[128];
	/* Fallback buffer for backends without one (vfm_dev.c): the ring
	 * the transport sends from / lands in, and the bounce buffer every
	 * read()/write() goes through, as QEMU moves VFIO state. */
	uint8_t *fb_buf;
	size_t fb_size;
	uint8_t *fb_bounce; /* VFM_DEV_BOUNCE bytes */
	uint64_t fb_head, fb_tail; /* ring positions (monotonic) */
	uint64_t fb_pos; /* stream position of the next byte */
	bool fb_eof;
};

/* "vfio:0000:00:04.0", "sim:size=64M,...". On failure @why says why. */
int vfm_dev_open(const char *spec, struct vfm_dev **out, char *why,
		 size_t whylen);
void vfm_dev_close(struct vfm_dev *d);

const char *vfm_dev_state_name(uint32_t state);
/* "running" / "RUNNING" / "2" -> state; -EINVAL. */
int vfm_dev_state_parse(const char *s, uint32_t *state);

/* The buffer the engine registers with a transport: the device's own, or
 * a fallback of @fallback_size bytes. */
int vfm_dev_buf(struct vfm_dev *d, size_t fallback_size, void **addr,
		size_t *size);
int vfm_dev_save_next(struct vfm_dev *d, uint64_t max, struct vfm_dev_seg *seg);
int vfm_dev_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg);
int vfm_dev_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len);
/* Drop a fallback session (after a state change that ends one). */
void vfm_dev_session_end(struct vfm_dev *d);

static inline int vfm_dev_get_state(struct vfm_dev *d, uint32_t *s)
{
	return d->ops->get_state(d, s);
}

int vfm_dev_set_state(struct vfm_dev *d, uint32_t s);

static inline int vfm_dev_precopy_info(struct vfm_dev *d, uint64_t *i,
				       uint64_t *dirty)
{
	return d->ops->precopy_info(d, i, dirty);
}

static inline int vfm_dev_data_size(struct vfm_dev *d, uint64_t *b)
{
	return d->ops->data_size(d, b);
}

static inline ssize_t vfm_dev_read(struct vfm_dev *d, void *buf, size_t len)
{
	return d->ops->read(d, buf, len);
}

static inline ssize_t vfm_dev_write(struct vfm_dev *d, const void *buf,
				    size_t len)
{
	return d->ops->write(d, buf, len);
}

static inline int vfm_dev_describe(struct vfm_dev *d, struct vfm_desc *desc,
				   char *why, size_t whylen)
{
	return d->ops->describe(d, desc, why, whylen);
}

static inline int vfm_dev_digest(struct vfm_dev *d, char hex[VFM_DIGEST_HEX])
{
	return d->ops->digest(d, hex);
}

int vfm_dev_reset(struct vfm_dev *d);

static inline int vfm_dev_prepare_resume(struct vfm_dev *d)
{
	return d->ops->prepare_resume ? d->ops->prepare_resume(d) : 0;
}

/* Before the saving session starts: produce @format (the one the
 * handshake negotiated). -EOPNOTSUPP: the backend produces format 1 only. */
int vfm_dev_set_stream_format(struct vfm_dev *d, unsigned int format);

#endif
