// SPDX-License-Identifier: MIT
/* Device registry, state names, and the read()/write() fallback that gives
 * every backend the segment interface. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dev.h"
#include "vfm/transport.h"

static const struct vfm_dev_ops *const vfm_dev_backends[] = {
	&vfm_dev_sim_ops,
	&vfm_dev_vfio_ops,
};

#define VFM_FB_DEFAULT (64u << 20)

int vfm_dev_open(const char *spec, struct vfm_dev **out, char *why,
		 size_t whylen)
{
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	for (size_t i = 0;
	     i < sizeof(vfm_dev_backends) / sizeof(vfm_dev_backends[0]); i++) {
		const struct vfm_dev_ops *ops = vfm_dev_backends[i];
		int ret;

		if (strlen(ops->name) != n || strncmp(ops->name, spec, n))
			continue;
		ret = ops->open(colon ? colon + 1 : "", out, why, whylen);
		if (ret)
			return ret;
		(*out)->ops = ops;
		snprintf((*out)->spec, sizeof((*out)->spec), "%s", spec);
		return 0;
	}
	snprintf(
		why, whylen,
		"The device '%s' is neither 'vfio:<PCI address>' nor 'sim:<options>'.",
		spec);
	return -EINVAL;
}

void vfm_dev_close(struct vfm_dev *d)
{
	if (!d)
		return;
	vfm_xport_buf_free(d->fb_buf, d->fb_size);
	d->fb_buf = NULL;
	free(d->fb_bounce);
	d->fb_bounce = NULL;
	d->ops->close(d);
}

static const char *const state_names[] = {
	[VFIO_DEVICE_STATE_ERROR] = "ERROR",
	[VFIO_DEVICE_STATE_STOP] = "STOP",
	[VFIO_DEVICE_STATE_RUNNING] = "RUNNING",
	[VFIO_DEVICE_STATE_STOP_COPY] = "STOP_COPY",
	[VFIO_DEVICE_STATE_RESUMING] = "RESUMING",
	[VFIO_DEVICE_STATE_RUNNING_P2P] = "RUNNING_P2P",
	[VFIO_DEVICE_STATE_PRE_COPY] = "PRE_COPY",
	[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
};

const char *vfm_dev_state_name(uint32_t state)
{
	if (state < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[state];
	return "UNKNOWN";
}

int vfm_dev_state_parse(const char *s, uint32_t *state)
{
	for (uint32_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]);
	     i++) {
		if (!strcasecmp(s, state_names[i])) {
			*state = i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool saving(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       s == VFIO_DEVICE_STATE_STOP_COPY;
}

void vfm_dev_session_end(struct vfm_dev *d)
{
	d->fb_head = d->fb_tail = d->fb_pos = 0;
	d->fb_eof = false;
}

int vfm_dev_set_state(struct vfm_dev *d, uint32_t s)
{
	uint32_t old = VFIO_DEVICE_STATE_ERROR;
	int ret;

	d->ops->get_state(d, &old);
	ret = d->ops->set_state(d, s);
	if (ret)
		return ret;
	if ((saving(s) && !saving(old)) || s == VFIO_DEVICE_STATE_RESUMING ||
	    (!saving(s) && saving(old)))
		vfm_dev_session_end(d);
	return 0;
}

int vfm_dev_set_stream_format(struct vfm_dev *d, unsigned int format)
{
	if (d->ops->set_stream_format)
		return d->ops->set_stream_format(d, format);
	return format == VFMIG_STREAM_FORMAT ? 0 : -EOPNOTSUPP;
}

int vfm_dev_reset(struct vfm_dev *d)
{
	vfm_dev_session_end(d);
	return d->ops->reset(d);
}

int vfm_dev_buf(struct vfm_dev *d, size_t fallback_size, void **addr,
		size_t *size)
{
	int ret = d->ops->buf ? d->ops->buf(d, addr, size) : -EOPNOTSUPP;

	if (ret != -EOPNOTSUPP)
		return ret;
	if (!fallback_size)
		fallback_size = VFM_FB_DEFAULT;
	if (!d->fb_bounce) {
		d->fb_bounce = aligned_alloc(4096, VFM_DEV_BOUNCE);
		if (!d->fb_bounce)
			return -ENOMEM;
	}
	if (!d->fb_buf || d->fb_size != fallback_size) {
		vfm_xport_buf_free(d->fb_buf, d->fb_size);
		d->fb_size = 0;
		d->fb_buf = vfm_xport_buf_alloc(fallback_size);
		if (!d->fb_buf)
			return -ENOMEM;
		d->fb_size = fallback_size;
	}
	vfm_dev_session_end(d);
	*addr = d->fb_buf;
	*size = d->fb_size;
	return 0;
}

int vfm_dev_save_next(struct vfm_dev *d, uint64_t max, struct vfm_dev_seg *seg)
{
	uint64_t off, contig, room, n;
	ssize_t r;

	if (!d->fb_buf)
		return d->ops->save_next(d, max, seg);
	if (d->fb_eof) {
		*seg = (struct vfm_dev_seg){ .stream_pos = d->fb_pos,
					     .eof = true };
		return 0;
	}
	off = d->fb_head % d->fb_size;
	contig = d->fb_size - off;
	room = d->fb_size - (d->fb_head - d->fb_tail);
	n = contig < room ? contig : room;
	if (max && max < n)
		n = max;
	if (n > VFM_DEV_BOUNCE)
		n = VFM_DEV_BOUNCE;
	if (!n)
		return -ENOBUFS;
	/* read() into the bounce buffer, then into the ring the transport
	 * sends from: the copy QEMU makes into its migration stream. */
	r = d->ops->read(d, d->fb_bounce, n);
	if (r < 0)
		return (int)r;
	if ((uint64_t)r > n)
		return -EIO;
	memcpy(d->fb_buf + off, d->fb_bounce, (size_t)r);
	if (r == 0) {
		d->fb_eof = true;
		*seg = (struct vfm_dev_seg){ .stream_pos = d->fb_pos,
					     .eof = true };
		return 0;
	}
	*seg = (struct vfm_dev_seg){ .off = off,
				     .len = (uint64_t)r,
				     .stream_pos = d->fb_pos };
	d->fb_head += (uint64_t)r;
	d->fb_pos += (uint64_t)r;
	return 0;
}

int vfm_dev_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg)
{
	if (!d->fb_buf)
		return d->ops->save_release(d, seg);
	if (seg->off != d->fb_tail % d->fb_size ||
	    seg->len > d->fb_head - d->fb_tail)
		return -EINVAL;
	d->fb_tail += seg->len;
	return 0;
}

int vfm_dev_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len)
{
	if (!d->fb_buf)
		return d->ops->load_commit(d, off, len);
	if (off > d->fb_size || len > d->fb_size - off)
		return -EINVAL;
	/* From the landing ring into the bounce buffer, then write() from
	 * there, at most VFM_DEV_BOUNCE at a time, as QEMU loads VFIO state
	 * from its migration stream. */
	while (len) {
		size_t n = len < VFM_DEV_BOUNCE ? (size_t)len : VFM_DEV_BOUNCE;
		size_t done = 0;

		memcpy(d->fb_bounce, d->fb_buf + off, n);
		while (done < n) {
			ssize_t w =
				d->ops->write(d, d->fb_bounce + done, n - done);

			if (w < 0)
				return (int)w;
			if (w == 0 || (size_t)w > n - done)
				return -EIO;
			done += (size_t)w;
		}
		off += n;
		len -= n;
	}
	return 0;
}
