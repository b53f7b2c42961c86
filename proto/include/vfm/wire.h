/* SPDX-License-Identifier: MIT */
/*
 * The control-connection wire format: framed messages carrying TLVs.
 * Everything is little endian and encoded byte by byte (never struct casts).
 *
 * Frame (12-byte header, then payload):
 *   off 0  u32  magic   VFM_WIRE_MAGIC, the bytes "VFMH"
 *   off 4  u8   type    enum vfm_msg_type
 *   off 5  u8   flags   none defined yet: must be 0
 *   off 6  u16  reserved, must be 0
 *   off 8  u32  length  payload bytes after the header
 *                       (header + payload <= VFM_WIRE_FRAME_MAX)
 *
 * Payload: a sequence of TLVs, no padding:
 *   u16 type    bit 15 (VFM_TLV_MANDATORY) set: a receiver that does not
 *               know this type must refuse the message; clear: it skips it
 *   u16 length  value bytes
 *   value
 * A TLV's value may itself be a TLV sequence (a nested container, e.g. the
 * descriptor in OFFER). TLV type numbers are scoped to the message type (or
 * to the enclosing TLV for nested ones). Integers are fixed-size LE; strings
 * are UTF-8 without a NUL. A message holds at most VFM_WIRE_TLVS_MAX TLVs
 * (nested ones counted in their container).
 *
 * Message types 0x01..0x3f belong to the handshake (proto/); 0x40..0xff are
 * RESERVED FOR THE AGENT's control messages after the handshake (phases,
 * credits, ...), which are built and parsed with the same generic API.
 *
 * Protocol versions are negotiated as a range [min, max] from each HELLO:
 * the highest version in both ranges wins; no overlap is a refusal.
 * Feature bits: each side advertises a u64; the session uses the AND.
 */
#ifndef VFM_WIRE_H
#define VFM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfm/compat.h"
#include "vfm/desc.h"
#include "vfm/err.h"

#define VFM_WIRE_MAGIC 0x484d4656u /* "VFMH" as bytes on the wire */
#define VFM_WIRE_HDR_LEN 12
#define VFM_WIRE_FRAME_MAX 65536u /* header included */
#define VFM_WIRE_TLVS_MAX 1024u /* per TLV sequence */
#define VFM_TLV_HDR_LEN 4
#define VFM_TLV_MANDATORY 0x8000u
#define VFM_TLV_TYPE_MASK 0x7fffu

/* Handshake protocol versions this build speaks. */
#define VFM_PROTO_MIN 1
#define VFM_PROTO_MAX 1

/* Protocol feature bits (HELLO); bits 32..63 are the agent's to define. */
#define VFM_PFEAT_TCP (1ull << 0) /* io_uring TCP data transport */
#define VFM_PFEAT_RDMA (1ull << 1) /* RDMA data transport */
#define VFM_PFEAT_PRE_COPY (1ull << 2) /* pre-copy iterations */
#define VFM_PFEAT_MMAP (1ull << 3) /* zero-copy from the mapped buffer */

enum vfm_msg_type {
	VFM_MSG_HELLO = 0x01,
	VFM_MSG_AUTH = 0x02,
	VFM_MSG_OFFER = 0x03,
	VFM_MSG_VERDICT = 0x04,
	VFM_MSG_ABORT = 0x05, /* a side gives up; says why */
	VFM_MSG_AGENT_FIRST = 0x40, /* 0x40..0xff: agent control messages */
};

/* TLV types per message. MAC (in AUTH, OFFER, VERDICT) is always last. */
enum vfm_hello_tlv {
	VFM_HELLO_ROLE = 1, /* u8 enum vfm_role */
	VFM_HELLO_PROTO_MIN = 2, /* u16 */
	VFM_HELLO_PROTO_MAX = 3, /* u16 */
	VFM_HELLO_FEATURES = 4, /* u64 */
	VFM_HELLO_NONCE = 5, /* 32 bytes */
	VFM_HELLO_MIGRATION_ID = 6, /* 16 bytes (UUID) */
};
enum vfm_offer_tlv {
	VFM_OFFER_DESC = 1, /* nested descriptor (vfm/desc.h) */
	VFM_OFFER_REQ_FEATURE = 2, /* str, 0..n */
	VFM_OFFER_TRANSPORT = 3, /* str, e.g. "tcp", "rdma" */
	VFM_OFFER_STREAMS = 4, /* u32 */
	/* str, only with --encrypt: the data plane's AEAD ("aes-256-gcm").
	 * Mandatory, so a destination that cannot decrypt refuses the OFFER. */
	VFM_OFFER_CIPHER = 5,
	/* nested descriptor, 0..VFM_SET_MAX-1: the set's devices 2..n in set
	 * order. Mandatory, so a destination that knows only single devices
	 * refuses a set in the handshake. */
	VFM_OFFER_MEMBER = 6,
};
enum vfm_verdict_tlv {
	VFM_VERDICT_ACCEPT = 1, /* u8 0/1 */
	VFM_VERDICT_RULE = 2, /* nested, 0..n, in rule order */
	VFM_VERDICT_NOTE = 3, /* str, 0..n */
	VFM_VERDICT_DESC = 4, /* nested: the destination's descriptor */
	/* nested, 0..VFM_SET_MAX-1: the verdict of the set's device 2..n, in
	 * order, with the types above (ACCEPT, RULE, NOTE, DESC) */
	VFM_VERDICT_MEMBER = 5,
};
enum vfm_rule_tlv {
	VFM_RULE_CODE = 1, /* u16 enum vfm_compat_code */
	VFM_RULE_PASSED = 2, /* u8 0/1 */
	VFM_RULE_SUBJECT = 3, /* str */
	VFM_RULE_SENTENCE = 4, /* str */
};
enum vfm_abort_tlv {
	VFM_ABORT_REASON = 1, /* u16 enum vfm_abort_reason */
	VFM_ABORT_TEXT = 2, /* str */
};
#define VFM_TLV_MAC 0x7f /* 32 bytes HMAC-SHA256, last TLV of a sealed msg */
#define VFM_MAC_LEN 32
#define VFM_NONCE_LEN 32
#define VFM_MIGRATION_ID_LEN 16
#define VFM_TRANSPORT_NAME_MAX 15

enum vfm_role {
	VFM_ROLE_SOURCE = 1,
	VFM_ROLE_DESTINATION = 2,
};

enum vfm_abort_reason {
	VFM_ABORT_PROTOCOL = 1, /* no common protocol version / bad sequence */
	VFM_ABORT_AUTH = 2, /* authentication failed */
	VFM_ABORT_MALFORMED = 3, /* a frame could not be decoded */
	VFM_ABORT_INTERNAL = 4, /* local error */
	VFM_ABORT_CANCELLED = 5, /* operator or orchestrator stopped it */
};

/* ---- generic frame builder ---------------------------------------------
 * Errors are sticky: after the first failing put every later put and
 * vfm_msg_finish() return it, so a caller may check only finish.
 */
struct vfm_msgb {
	uint8_t *buf;
	size_t cap, len;
	int err;
};

int vfm_msg_init(struct vfm_msgb *b, void *buf, size_t cap, uint8_t type);
/* @type includes VFM_TLV_MANDATORY when wanted. */
int vfm_msg_put(struct vfm_msgb *b, uint16_t type, const void *val, size_t len);
int vfm_msg_put_u8(struct vfm_msgb *b, uint16_t type, uint8_t v);
int vfm_msg_put_u16(struct vfm_msgb *b, uint16_t type, uint16_t v);
int vfm_msg_put_u32(struct vfm_msgb *b, uint16_t type, uint32_t v);
int vfm_msg_put_u64(struct vfm_msgb *b, uint16_t type, uint64_t v);
int vfm_msg_put_str(struct vfm_msgb *b, uint16_t type, const char *s);
/* A nested container: begin, put its TLVs, end with the returned mark. */
int vfm_msg_nest_begin(struct vfm_msgb *b, uint16_t type, size_t *mark);
int vfm_msg_nest_end(struct vfm_msgb *b, size_t mark);
/* Fill in the length; the frame is buf[0 .. *frame_len). */
int vfm_msg_finish(struct vfm_msgb *b, size_t *frame_len);

/* ---- generic parser -----------------------------------------------------*/
struct vfm_msg {
	uint8_t type, flags;
	const uint8_t *frame; /* header start */
	const uint8_t *payload;
	uint32_t len; /* payload bytes */
};

struct vfm_tlv {
	uint16_t type; /* without VFM_TLV_MANDATORY */
	bool mandatory;
	uint16_t len;
	const uint8_t *val;
};

struct vfm_tlv_iter {
	const uint8_t *p, *end;
	unsigned int n;
};

/*
 * Stream reassembly: with @len bytes received so far, returns -EAGAIN
 * until the 12-byte header is there, then 0 with *frame_len (header
 * included), or an error for a bad header (-EBADMSG) or an oversized frame
 * (-EMSGSIZE).
 */
int vfm_frame_peek(const void *buf, size_t len, size_t *frame_len,
		   struct vfm_err *err);
/*
 * Parse exactly one frame of @len bytes and check its TLV structure (every
 * length inside the buffer, the count capped). @m points into @frame.
 */
int vfm_msg_parse(const void *frame, size_t len, struct vfm_msg *m,
		  struct vfm_err *err);

void vfm_tlv_iter_init(struct vfm_tlv_iter *it, const void *buf, size_t len);
void vfm_tlv_iter_msg(struct vfm_tlv_iter *it, const struct vfm_msg *m);
void vfm_tlv_iter_nested(struct vfm_tlv_iter *it, const struct vfm_tlv *t);
/* 1 and *t filled, 0 at the end, or -EBADMSG (truncated, too many). */
int vfm_tlv_next(struct vfm_tlv_iter *it, struct vfm_tlv *t,
		 struct vfm_err *err);

/* Typed getters: the length must be exact (-EBADMSG otherwise). */
int vfm_tlv_get_u8(const struct vfm_tlv *t, uint8_t *v, struct vfm_err *err);
int vfm_tlv_get_u16(const struct vfm_tlv *t, uint16_t *v, struct vfm_err *err);
int vfm_tlv_get_u32(const struct vfm_tlv *t, uint32_t *v, struct vfm_err *err);
int vfm_tlv_get_u64(const struct vfm_tlv *t, uint64_t *v, struct vfm_err *err);
int vfm_tlv_get_bytes(const struct vfm_tlv *t, void *buf, size_t len,
		      struct vfm_err *err);
/* NUL-terminated copy; no NUL byte inside, len < cap (-EBADMSG). */
int vfm_tlv_get_str(const struct vfm_tlv *t, char *buf, size_t cap,
		    struct vfm_err *err);
/*
 * Policy for a TLV the caller does not know: 0 (skip it) if optional,
 * -EPROTO with "unknown mandatory TLV 0x... in <where>" if mandatory.
 */
int vfm_tlv_unknown(const struct vfm_tlv *t, const char *where,
		    struct vfm_err *err);

/* "HELLO", "AUTH", ...; "AGENT" for 0x40..0xff, "UNKNOWN" otherwise. */
const char *vfm_msg_type_name(uint8_t type);
const char *vfm_role_name(uint8_t role);
const char *vfm_abort_reason_name(uint16_t reason);

/* ---- typed handshake messages --------------------------------------------
 * vfm_X_encode() builds a whole frame; vfm_X_put() appends X's TLVs to a
 * builder already initialised with the right type; vfm_X_decode() takes a
 * parsed message of that type, refuses unknown mandatory TLVs, skips
 * unknown optional ones, refuses duplicates and missing mandatory fields,
 * and ignores a trailing VFM_TLV_MAC (the handshake checks it).
 * vfm_auth_put() writes the MAC TLV itself; the OFFER and VERDICT encoders
 * write no MAC (the handshake session appends and fills it).
 */
struct vfm_hello {
	uint8_t role; /* enum vfm_role */
	uint16_t proto_min, proto_max;
	uint64_t features;
	uint8_t nonce[VFM_NONCE_LEN];
	uint8_t migration_id[VFM_MIGRATION_ID_LEN];
};

struct vfm_auth {
	uint8_t mac[VFM_MAC_LEN];
};

struct vfm_offer {
	struct vfm_desc desc;
	unsigned int nreq;
	char req[VFM_DESC_FEATURES_MAX][VFM_DESC_NAME_MAX + 1];
	char transport[VFM_TRANSPORT_NAME_MAX + 1];
	uint32_t streams;
	char cipher[VFM_TRANSPORT_NAME_MAX + 1]; /* "" = none */
	/* A device set: devices 2..nmore+1, in an array of VFM_SET_MAX - 1
	 * allocated only for a set; vfm_offer_clear() frees it. */
	unsigned int nmore;
	struct vfm_desc *more;
};

struct vfm_verdict_member {
	struct vfm_verdict verdict;
	struct vfm_desc desc; /* the destination's */
};

struct vfm_verdict_msg {
	struct vfm_verdict verdict; /* the first device's, with the set rules */
	struct vfm_desc desc; /* the destination's */
	/* A device set: devices 2..nmore+1, as in struct vfm_offer;
	 * vfm_verdict_msg_clear() frees it. */
	unsigned int nmore;
	struct vfm_verdict_member *more;
};

struct vfm_abort {
	uint16_t reason; /* enum vfm_abort_reason */
	char text[VFM_ERR_MSG_MAX];
};

int vfm_hello_put(struct vfm_msgb *b, const struct vfm_hello *h);
int vfm_hello_encode(const struct vfm_hello *h, void *buf, size_t cap,
		     size_t *len);
int vfm_hello_decode(const struct vfm_msg *m, struct vfm_hello *h,
		     struct vfm_err *err);

int vfm_auth_put(struct vfm_msgb *b, const struct vfm_auth *a);
int vfm_auth_encode(const struct vfm_auth *a, void *buf, size_t cap,
		    size_t *len);
int vfm_auth_decode(const struct vfm_msg *m, struct vfm_auth *a,
		    struct vfm_err *err);

/* Decoding fills a struct that is zeroed or holds an earlier decode (whose
 * set arrays it frees first). */
void vfm_offer_clear(struct vfm_offer *o);
void vfm_verdict_msg_clear(struct vfm_verdict_msg *v);
int vfm_offer_put(struct vfm_msgb *b, const struct vfm_offer *o);
int vfm_offer_encode(const struct vfm_offer *o, void *buf, size_t cap,
		     size_t *len);
int vfm_offer_decode(const struct vfm_msg *m, struct vfm_offer *o,
		     struct vfm_err *err);

int vfm_verdict_put(struct vfm_msgb *b, const struct vfm_verdict_msg *v);
int vfm_verdict_encode(const struct vfm_verdict_msg *v, void *buf, size_t cap,
		       size_t *len);
int vfm_verdict_decode(const struct vfm_msg *m, struct vfm_verdict_msg *v,
		       struct vfm_err *err);

int vfm_abort_put(struct vfm_msgb *b, const struct vfm_abort *a);
int vfm_abort_encode(const struct vfm_abort *a, void *buf, size_t cap,
		     size_t *len);
int vfm_abort_decode(const struct vfm_msg *m, struct vfm_abort *a,
		     struct vfm_err *err);

/*
 * Negotiate from two HELLOs: the highest common version and the AND of the
 * feature bits. -EPROTONOSUPPORT with a sentence when the ranges do not
 * overlap.
 */
int vfm_proto_negotiate(const struct vfm_hello *a, const struct vfm_hello *b,
			uint16_t *version, uint64_t *features,
			struct vfm_err *err);

#endif
