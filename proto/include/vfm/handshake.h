/* SPDX-License-Identifier: MIT */
/*
 * The handshake as a pure state machine, one session per side. The agent
 * only moves bytes: it sends what vfm_hs_output() returns and feeds every
 * complete received frame (see vfm_frame_peek()) to vfm_hs_recv(). Tests
 * run two sessions against each other in memory.
 *
 *   source                                destination
 *   HELLO  ------------------------------>
 *          <------------------------------ HELLO
 *   AUTH   ------------------------------>        (dst verifies)
 *          <------------------------------ AUTH   (src verifies)
 *   OFFER  ------------------------------>        (dst evaluates compat)
 *          <------------------------------ VERDICT
 *
 * AUTH, OFFER and VERDICT are sealed: their last TLV is VFM_TLV_MAC =
 *   HMAC-SHA256(secret, label || nonce_src || nonce_dst ||
 *               SHA-256(every earlier frame || this frame up to the MAC))
 * where label is "vfmig-hs-v1 <sender role> <MSG> 0x<type>" and a NUL (so
 * a MAC never verifies for the other role or another message); the MAC TLV
 * header is covered, the MAC bytes are not. Verification uses
 * CRYPTO_memcmp. A wrong MAC fails the session with -EACCES and queues an
 * ABORT (reason AUTH) for the peer, which then fails with -EACCES too.
 *
 * Any failure leaves the session in VFM_HS_FAILED with a negative errno
 * (vfm_hs_error) and a sentence (vfm_hs_reason); where useful an ABORT
 * frame is queued so the peer learns why:
 *   -EACCES           authentication failed (here or at the peer)
 *   -EPROTONOSUPPORT  no common protocol version
 *   -EPROTO           unexpected message, unknown mandatory TLV, role or
 *                     migration id mismatch, peer aborted
 *   -EBADMSG          malformed frame
 * A refused VERDICT is not a failure: the session is VFM_HS_DONE and
 * vfm_hs_verdict()->accept is false.
 */
#ifndef VFM_HANDSHAKE_H
#define VFM_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfm/compat.h"
#include "vfm/desc.h"
#include "vfm/wire.h"

#define VFM_HS_SECRET_MIN 16
#define VFM_HS_SECRET_MAX 128

enum vfm_hs_state {
	VFM_HS_INIT = 0,
	VFM_HS_WAIT_HELLO,
	VFM_HS_WAIT_AUTH,
	VFM_HS_WAIT_OFFER, /* destination */
	VFM_HS_WAIT_VERDICT, /* source */
	VFM_HS_DONE,
	VFM_HS_FAILED,
};

struct vfm_hs_cfg {
	enum vfm_role role;
	const uint8_t *secret; /* per-migration secret, copied */
	size_t secret_len; /* VFM_HS_SECRET_MIN..VFM_HS_SECRET_MAX */
	/* All zero: accept the peer's (destination) / invalid (source). */
	uint8_t migration_id[VFM_MIGRATION_ID_LEN];
	uint16_t proto_min, proto_max; /* both 0: VFM_PROTO_MIN..MAX */
	uint64_t features; /* VFM_PFEAT_* bits offered */
	/* Source: its device; destination: its own device. Copied. A device
	 * set: @ndesc descriptors in set order (0 means 1). */
	const struct vfm_desc *desc;
	unsigned int ndesc;
	/* Source only: features the destination must support, the transport
	 * and stream count it proposes. */
	const char *const *req;
	unsigned int nreq;
	const char *transport;
	uint32_t streams;
	const char *cipher; /* the data plane's AEAD, NULL = none */
	/* Tests only: a fixed nonce instead of RAND_bytes (NULL normally). */
	const uint8_t *nonce;
};

struct vfm_hs;

int vfm_hs_new(struct vfm_hs **out, const struct vfm_hs_cfg *cfg,
	       struct vfm_err *err);
void vfm_hs_free(struct vfm_hs *hs);

/* Call once on both sides before vfm_hs_recv(). Source: queues HELLO.
 * Destination: only arms the session (returns 0). */
int vfm_hs_start(struct vfm_hs *hs);
/* Feed one complete frame. Returns 0 or the session's error. */
int vfm_hs_recv(struct vfm_hs *hs, const void *frame, size_t len);
/* Bytes queued for the peer (possibly several frames); 0 if none. */
size_t vfm_hs_output(const struct vfm_hs *hs, const uint8_t **buf);
/* Drop @n bytes from the front of the output queue once sent. */
void vfm_hs_consumed(struct vfm_hs *hs, size_t n);

enum vfm_hs_state vfm_hs_state(const struct vfm_hs *hs);
const char *vfm_hs_state_name(enum vfm_hs_state s);
bool vfm_hs_done(const struct vfm_hs *hs); /* VFM_HS_DONE */
bool vfm_hs_failed(const struct vfm_hs *hs); /* VFM_HS_FAILED */
int vfm_hs_error(const struct vfm_hs *hs); /* 0 or negative errno */
const char *vfm_hs_reason(const struct vfm_hs *hs); /* "" if none */

/* Results, valid once the step that produces them is passed. */
uint16_t vfm_hs_version(const struct vfm_hs *hs);
uint64_t vfm_hs_features(const struct vfm_hs *hs);
const struct vfm_hello *vfm_hs_peer_hello(const struct vfm_hs *hs);
const uint8_t *vfm_hs_migration_id(const struct vfm_hs *hs);
/* Destination: the OFFER received. Source: the OFFER sent. */
const struct vfm_offer *vfm_hs_offer(const struct vfm_hs *hs);
/* Both sides once DONE: the verdict and the destination's descriptor. */
const struct vfm_verdict *vfm_hs_verdict(const struct vfm_hs *hs);
const struct vfm_desc *vfm_hs_peer_desc(const struct vfm_hs *hs);
/* This side's number of devices (1 unless a set). */
unsigned int vfm_hs_set_size(const struct vfm_hs *hs);
/* Once DONE: device @i of the set (0 = the first) as the verdict paired
 * it: the source's and the destination's descriptors and its verdict (the
 * first device's carries the set rules). -ENOENT past the paired devices. */
int vfm_hs_member(const struct vfm_hs *hs, unsigned int i,
		  const struct vfm_desc **src, const struct vfm_desc **dst,
		  const struct vfm_verdict **v);

/*
 * For the agent's control messages after the handshake (DONE only): seal a
 * finished frame whose last TLV is a zeroed VFM_TLV_MAC (put it with
 * vfm_msg_put(b, VFM_TLV_MANDATORY | VFM_TLV_MAC, zeros, VFM_MAC_LEN) just
 * before vfm_msg_finish), or check such a frame from the peer. The MAC is
 * HMAC-SHA256(secret, label || nonces || SHA-256(final transcript hash ||
 * frame up to the MAC) || u64 LE counter), with one counter per direction:
 * frames must be verified in the order the peer sealed them, and a replayed
 * or reordered frame fails with -EACCES. A frame without a trailing MAC:
 * -EINVAL (seal) / -EBADMSG (verify).
 */
int vfm_hs_seal(struct vfm_hs *hs, uint8_t *frame, size_t len);
/* After DONE: the stream MAC's key and IV (vfm/kdf.h). */
int vfm_hs_stream_key(const struct vfm_hs *hs, uint8_t *key, uint8_t *iv);
/* After DONE: the data plane's AEAD key (--encrypt; VFM_KEY_LEN bytes). */
int vfm_hs_data_key(const struct vfm_hs *hs, uint8_t *key);
int vfm_hs_verify(struct vfm_hs *hs, const uint8_t *frame, size_t len);

#endif
