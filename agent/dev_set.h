/* SPDX-License-Identifier: MIT */
/*
 * A device set as one device: several devices of one VM migrated in one
 * switchover. The engine sees a single vfm_dev whose state changes walk
 * every member in the P2P-quiesced order of quiesce.h, and whose migration
 * stream carries the members' streams in frames:
 *
 *   frame = header (16 bytes, little endian) + payload
 *     u32 magic "VFMS" | u16 member index | u16 flags (1: member's end)
 *     u32 payload length | u32 CRC32C of the 12 bytes before it
 *
 * The source takes segments from the members in turn (so the devices share
 * the transport's streams and bandwidth) and copies each behind its header
 * into the set's own ring; the destination routes each payload into its
 * member's buffer and loads it there. Every member's stream ends with an
 * end frame, and RESUMING -> STOP refuses a set in which one is missing.
 * One set of one device is never built: a single device goes alone.
 */
#ifndef VFM_DEV_SET_H
#define VFM_DEV_SET_H

#include "dev.h"
#include "log.h"

#define VFM_SET_FRAME_HDR 16u
#define VFM_SET_MAGIC 0x534d4656u /* "VFMS" */
#define VFM_SET_FRAME_END 1u

/* Takes the @n (2..VFM_SET_MAX) opened members: the set closes them. @p2p:
 * every member offers the P2P states (the handshake refuses a set where
 * one does not). */
int vfm_dev_set_new(struct vfm_dev **members, unsigned int n, bool p2p,
		    struct vfm_dev **out);
bool vfm_dev_is_set(const struct vfm_dev *d);
unsigned int vfm_dev_set_count(const struct vfm_dev *d);
struct vfm_dev *vfm_dev_set_member(struct vfm_dev *d, unsigned int i);
/* The member's state digest from the last vfm_dev_digest() of the set. */
const char *vfm_dev_set_member_digest(const struct vfm_dev *d, unsigned int i);
/* "devices": [{index, spec, model, bytes, state_change_ms, state,
 * state_digest}, ...] into @j. */
void vfm_dev_set_json(struct vfm_dev *d, struct vfm_json *j);

#endif
