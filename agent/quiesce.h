/* SPDX-License-Identifier: MIT */
/*
 * The order in which a device set changes state: one table, pure, unit
 * tested alone (tests/unit/agent/test_quiesce.c).
 *
 * VFIO's P2P states exist for sets: a device in RUNNING_P2P or
 * PRE_COPY_P2P still answers its peers' DMA but starts none of its own.
 * So a set moves in steps, and every device completes a step before any
 * device begins the next:
 *
 *   stop  (source)       PRE_COPY -> PRE_COPY_P2P (all) -> STOP_COPY (all)
 *                        RUNNING  -> RUNNING_P2P  (all) -> STOP_COPY (all)
 *   start (destination)  STOP -> RUNNING_P2P (all) -> RUNNING (all)
 *   resume (source)      STOP_COPY -> STOP -> RUNNING_P2P -> RUNNING
 *
 * so no device is stopped and saved while a peer can still write into it,
 * and no device runs while a peer cannot yet answer it. Arcs between the
 * steps (e.g. PRE_COPY_P2P -> STOP_COPY) are the kernel FSM's to walk.
 * Without P2P (a single device) the P2P steps are left out.
 */
#ifndef VFM_QUIESCE_H
#define VFM_QUIESCE_H

#include <stdbool.h>
#include <stdint.h>

#define VFM_QS_STEPS_MAX 4

struct vfm_qs_plan {
	unsigned int nsteps;
	uint32_t step[VFM_QS_STEPS_MAX]; /* enum vfio_device_mig_state */
};

/* The steps from @from to @to; @p2p: the devices offer the P2P states.
 * nsteps 0 when @from == @to. */
void vfm_qs_plan(uint32_t from, uint32_t to, bool p2p, struct vfm_qs_plan *p);

#endif
