/* SPDX-License-Identifier: MIT */
/*
 * The destination's loader: a thread that loads the stream into the device
 * in stream order, off the receive path. The agent's thread keeps the
 * transport's completions and the control connection moving (credits,
 * PHASE, DONE) while a segment is being loaded; the transport's own
 * threads receive. Three stages, each on its own thread:
 *
 *   transport workers -> agent thread (order, credits) -> loader (load)
 *
 * The caller pushes segments in stream order (it keeps the reordering);
 * the loader calls @load for each, in that order, on its thread, and
 * publishes how far it got. The first error stops it and is kept (sticky);
 * segments queued behind it are dropped, never loaded. One producer (the
 * agent's thread), one consumer (the loader).
 */
#ifndef VFM_LOADER_H
#define VFM_LOADER_H

#include <stdint.h>

struct vfm_load_seg {
	uint64_t pos; /* offset in the stream */
	uint64_t roff; /* offset in the landing ring */
	uint32_t len;
};

/* Load @s into the device; 0 or a negative errno. Runs on the loader. */
typedef int (*vfm_load_fn)(void *ctx, const struct vfm_load_seg *s);

struct vfm_loader;

/* Start the thread; @start is the stream position of the first segment.
 * At most @depth segments wait at once (push then says -EAGAIN). */
int vfm_loader_start(struct vfm_loader **lp, vfm_load_fn load, void *ctx,
		     uint64_t start, unsigned int depth);
/* Queue the next segment: it must start where the last one ended.
 * -EAGAIN when full, -EPROTO when out of order, the sticky error once
 * a load failed. */
int vfm_loader_push(struct vfm_loader *l, const struct vfm_load_seg *s);
/* The stream position loaded so far (every byte before it is in the
 * device); *err (if not NULL) is the sticky error, 0 if none. */
uint64_t vfm_loader_loaded(struct vfm_loader *l, int *err);
/* Segments queued and not yet loaded (the one being loaded included). */
unsigned int vfm_loader_queued(struct vfm_loader *l);
/* An eventfd that becomes readable when the loader made progress or
 * failed; read() it to re-arm (vfm_loader_loaded does not). */
int vfm_loader_fd(const struct vfm_loader *l);
/* Wait up to @timeout_ms until the loader has nothing queued or failed;
 * 0, -ETIMEDOUT, or the sticky error. */
int vfm_loader_drain(struct vfm_loader *l, int timeout_ms);
/* Drop what is queued, let the segment being loaded finish, join the
 * thread and free. NULL is fine. */
void vfm_loader_stop(struct vfm_loader *l);
/* Test hook: the loader thread's id (gettid). */
int vfm_loader_tid(const struct vfm_loader *l);
/* CPU seconds the loader thread used so far (its own clock). */
double vfm_loader_cpu_s(const struct vfm_loader *l);

#endif
