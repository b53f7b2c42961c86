/* SPDX-License-Identifier: MIT */
/*
 * The agent's control messages after the handshake (types 0x40..), built
 * with proto's generic TLV codec and sealed with the handshake's MAC chain
 * (vfm_hs_seal/vfm_hs_verify), so nobody can inject one.
 *
 *   source -> destination      destination -> source
 *   GO {mode}                   XPORT {transport, info, landing, streams}
 *   PHASE {phase, iteration}    CREDIT {pos}: stream bytes loaded
 *   DONE {total, digest}        LOADED {digest}: verified, stopped
 *   RUN: start (no return)      COMMIT {resume_us}: destination running
 *   BYE: outcome known          FAIL {code, text}
 *   FAIL {code, text}
 *
 * The switchover's order and meaning: vfm/switchover.h. An outcome query
 * is a new connection: handshake, GO {mode QUERY}, answered by COMMIT
 * (running) or FAIL (aborted, will not run).
 */
#ifndef VFM_CTRL_H
#define VFM_CTRL_H

#include <stdbool.h>
#include <stdint.h>

#include "vfm/handshake.h"
#include "vfm/transport.h"

enum vfm_ctl_type {
	VFM_CTL_GO = 0x40,
	VFM_CTL_XPORT = 0x41,
	VFM_CTL_CREDIT = 0x42,
	VFM_CTL_PHASE = 0x43,
	VFM_CTL_DONE = 0x44,
	VFM_CTL_COMMIT = 0x45,
	VFM_CTL_DIGEST = 0x46,
	VFM_CTL_FAIL = 0x47,
	VFM_CTL_LOADED = 0x48, /* destination: loaded, verified, stopped */
	VFM_CTL_RUN = 0x49, /* source: the point of no return, start */
	VFM_CTL_BYE = 0x4a, /* source: the outcome is known, exit */
	VFM_CTL_LAST = VFM_CTL_BYE,
};

enum vfm_ctl_mode {
	VFM_CTL_MODE_MIGRATE = 1,
	VFM_CTL_MODE_CHECK = 2, /* handshake only: the destination exits */
	VFM_CTL_MODE_QUERY = 3, /* what became of this migration? */
};

/* TLV types inside the control messages (scoped per message). */
enum vfm_ctl_tlv {
	VFM_CTLV_MODE = 1, /* u8 */
	VFM_CTLV_TRANSPORT = 2, /* str */
	VFM_CTLV_INFO = 3, /* bytes */
	VFM_CTLV_LANDING = 4, /* u64 */
	VFM_CTLV_STREAMS = 5, /* u32 */
	VFM_CTLV_POS = 6, /* u64 */
	VFM_CTLV_PHASE = 7, /* str */
	VFM_CTLV_ITERATION = 8, /* u32 */
	VFM_CTLV_TOTAL = 9, /* u64 */
	VFM_CTLV_RESUME_US = 10, /* u64 */
	VFM_CTLV_DIGEST = 11, /* str */
	VFM_CTLV_CODE = 12, /* u16: a VFM_EXIT_* the sender uses */
	VFM_CTLV_TEXT = 13, /* str */
	VFM_CTLV_MAC = 14, /* bytes: the stream MAC (vfm/kdf.h) */
};

struct vfm_ctl {
	uint8_t type;
	uint8_t mode;
	char transport[VFM_TRANSPORT_NAME_MAX + 1];
	struct vfm_xport_info info;
	uint64_t landing;
	uint32_t streams;
	uint64_t pos;
	char phase[32];
	uint32_t iteration;
	uint64_t total;
	uint64_t resume_us;
	char digest[72];
	uint16_t code;
	char text[VFM_ERR_MSG_MAX];
	uint8_t mac[16];
	bool has_mac;
};

/* Build and seal @m into @buf. */
int vfm_ctl_encode(struct vfm_hs *hs, const struct vfm_ctl *m, uint8_t *buf,
		   size_t cap, size_t *len);
/* Verify and decode one received frame. -EACCES for a bad MAC, -EBADMSG /
 * -EPROTO for a malformed one (@err says why). */
int vfm_ctl_decode(struct vfm_hs *hs, const uint8_t *frame, size_t len,
		   struct vfm_ctl *m, struct vfm_err *err);
const char *vfm_ctl_name(uint8_t type);

#endif
