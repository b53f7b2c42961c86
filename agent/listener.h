/* SPDX-License-Identifier: MIT */
/*
 * The destination's listening port, safe against whoever can reach it.
 * Before a peer has authenticated, nothing it sends can end `recv` or keep
 * a real source out: up to VFM_LSN_SLOTS handshakes run side by side, each
 * bounded by a pre-auth deadline, each failure (garbage, a forged ABORT, a
 * bad AUTH, silence, a trickle) drops that connection only, and the drops
 * are logged at most once a second with a count.
 */
#ifndef VFM_LISTENER_H
#define VFM_LISTENER_H

#include <stdbool.h>

#include "conn.h"
#include "vfm/handshake.h"

#define VFM_LSN_SLOTS 32

struct vfm_lsn_slot {
	struct vfm_conn conn;
	struct vfm_hs *hs;
	double deadline; /* ms, monotonic */
	bool used;
};

struct vfm_lsn {
	int lfd;
	struct vfm_hs_cfg cfg; /* the destination's handshake */
	double preauth_ms;
	struct vfm_lsn_slot *slots; /* VFM_LSN_SLOTS, allocated once */
	unsigned long dropped, auth_failed; /* counts, for the report */
	unsigned long unlogged; /* drops since the last log line */
	double last_log;
};

/* Own @lfd from now on; @cfg is copied (its pointers must outlive @l). */
int vfm_lsn_init(struct vfm_lsn *l, int lfd, const struct vfm_hs_cfg *cfg,
		 double preauth_s);
void vfm_lsn_fini(struct vfm_lsn *l);
/* Accept and advance handshakes for up to @timeout_ms. 1: a peer finished
 * the handshake, its connection moved to @out and its session to @hs; 0:
 * nobody did in time; negative errno: the listener itself failed. */
int vfm_lsn_poll(struct vfm_lsn *l, int timeout_ms, struct vfm_conn *out,
		 struct vfm_hs **hs);

#endif
