/* SPDX-License-Identifier: MIT */
/*
 * The switchover: a commit protocol between the source and the destination
 * agent with one invariant. Under any single fault, at most one of the two
 * devices ever runs the migrated state, and the source runs again whenever
 * the destination provably did not and will not run.
 *
 *   source                                   destination
 *   PRE_COPY ... STOP_COPY, final data  -->  RESUMING, loads
 *   DONE {total, stream MAC}            -->  RESUMING->STOP, verifies
 *                                       <--  LOADED {digest}  (STOP)
 *   digests equal: point of no return
 *   RUN                                 -->  STOP->RUNNING
 *                                       <--  COMMIT
 *   BYE                                 -->  exits at once (else lingers)
 *
 * The destination runs only on RUN, and the source sends RUN only after
 * LOADED proved the destination holds the right state. So before RUN every
 * fault resumes the source. After RUN the source never resumes on silence:
 * it asks the destination for the outcome (a new authenticated connection
 * to the lingering destination) for a bounded time; "aborted" resumes it,
 * "running" ends it, no answer ends with both stopped and exit "unknown".
 * A destination that loses its source before RUN resets its device and,
 * from then on, answers every query with "aborted".
 *
 * This file is pure: no I/O, no clock. The engines feed it events and do
 * what the returned action says; a unit test walks every fault at every
 * step (tests/unit/proto/test_switchover.c).
 */
#ifndef VFM_SWITCHOVER_H
#define VFM_SWITCHOVER_H

#include <stdbool.h>
#include <stddef.h>

enum vfm_sw_src_state {
	VFM_SW_S_PRECOPY, /* device running, saving */
	VFM_SW_S_STOPPED, /* device stopped: final data, waiting LOADED */
	VFM_SW_S_GO, /* RUN sent (point of no return), waiting COMMIT */
	VFM_SW_S_QUERY, /* asking the destination for the outcome */
	VFM_SW_S_MIGRATED, /* end: the destination runs, the source stopped */
	VFM_SW_S_RESUMED, /* end: the source runs again */
	VFM_SW_S_UNKNOWN, /* end: both stopped as far as known; fence */
	VFM_SW_S_NSTATES
};

enum vfm_sw_src_event {
	VFM_SW_SE_STOP, /* the policy converged: stop the device */
	VFM_SW_SE_LOADED_OK, /* LOADED, the state verified equal */
	VFM_SW_SE_LOADED_BAD, /* LOADED, the state differs */
	VFM_SW_SE_COMMITTED, /* COMMIT, or a query answered "running" */
	VFM_SW_SE_ABORTED, /* FAIL, or a query answered "aborted" */
	VFM_SW_SE_FAULT, /* connection lost, timeout, local error */
	VFM_SW_SE_CANCEL, /* SIGTERM / SIGINT / SIGHUP */
	VFM_SW_SE_QUERY_EXPIRED, /* the outcome window is over */
	VFM_SW_SE_NEVENTS
};

enum vfm_sw_dst_state {
	VFM_SW_D_RECEIVING, /* RESUMING, loading */
	VFM_SW_D_LOADED, /* STOP with the verified state, waiting RUN */
	VFM_SW_D_RUNNING, /* end: running the migrated state */
	VFM_SW_D_ABORTED, /* end: reset, will never run this state */
	VFM_SW_D_NSTATES
};

enum vfm_sw_dst_event {
	VFM_SW_DE_LOAD_OK, /* every byte loaded, RESUMING->STOP verified */
	VFM_SW_DE_LOAD_BAD, /* corrupt, incomplete or refused stream */
	VFM_SW_DE_RUN, /* RUN from the source */
	VFM_SW_DE_START_FAILED, /* STOP->RUNNING failed */
	VFM_SW_DE_SRC_FAIL, /* FAIL from the source */
	VFM_SW_DE_FAULT, /* connection lost, timeout, local error */
	VFM_SW_DE_CANCEL, /* SIGTERM / SIGINT / SIGHUP */
	VFM_SW_DE_QUERY, /* an authenticated outcome query */
	VFM_SW_DE_NEVENTS
};

/* What the engine must do, in this order, on a transition. */
enum vfm_sw_action {
	VFM_SW_A_NONE = 0,
	VFM_SW_A_STOP_DEVICE = 1 << 0, /* source: STOP_COPY */
	VFM_SW_A_SEND_RUN = 1 << 1, /* source: the point of no return */
	VFM_SW_A_RESUME = 1 << 2, /* source: back to RUNNING */
	VFM_SW_A_SEND_FAIL = 1 << 3, /* tell the peer, best effort */
	VFM_SW_A_QUERY = 1 << 4, /* source: ask the outcome (again) */
	VFM_SW_A_SEND_LOADED = 1 << 5, /* destination: report LOADED */
	VFM_SW_A_START = 1 << 6, /* destination: STOP->RUNNING, COMMIT */
	VFM_SW_A_RESET = 1 << 7, /* destination: reset the device */
	VFM_SW_A_ANSWER = 1 << 8, /* destination: answer the query */
	VFM_SW_A_IGNORED = 1 << 9, /* an event this state does not act on */
};

struct vfm_sw_step {
	int next; /* state */
	unsigned int action; /* VFM_SW_A_* bits */
};

struct vfm_sw_step vfm_sw_src_step(enum vfm_sw_src_state s,
				   enum vfm_sw_src_event e);
struct vfm_sw_step vfm_sw_dst_step(enum vfm_sw_dst_state s,
				   enum vfm_sw_dst_event e);

bool vfm_sw_src_final(enum vfm_sw_src_state s);
bool vfm_sw_dst_final(enum vfm_sw_dst_state s);
/* Past the point of no return: a fault must not resume the source. */
bool vfm_sw_src_committed(enum vfm_sw_src_state s);

const char *vfm_sw_src_state_name(enum vfm_sw_src_state s);
const char *vfm_sw_src_event_name(enum vfm_sw_src_event e);
const char *vfm_sw_dst_state_name(enum vfm_sw_dst_state s);
const char *vfm_sw_dst_event_name(enum vfm_sw_dst_event e);
/* "resume|send_fail", for logs; @buf of at least 128 bytes. */
const char *vfm_sw_action_names(unsigned int action, char *buf, size_t len);

#endif
