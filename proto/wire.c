// SPDX-License-Identifier: MIT
/* Frames and TLVs: the generic builder and parser (see vfm/wire.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vfm/wire.h"
#include "internal.h"

int vfm_msg_init(struct vfm_msgb *b, void *buf, size_t cap, uint8_t type)
{
	b->buf = buf;
	b->cap = cap < VFM_WIRE_FRAME_MAX ? cap : VFM_WIRE_FRAME_MAX;
	b->len = 0;
	b->err = 0;
	if (b->cap < VFM_WIRE_HDR_LEN)
		return b->err = -ENOSPC;
	vfm_put_le32(b->buf, VFM_WIRE_MAGIC);
	b->buf[4] = type;
	b->buf[5] = 0;
	vfm_put_le16(b->buf + 6, 0);
	vfm_put_le32(b->buf + 8, 0);
	b->len = VFM_WIRE_HDR_LEN;
	return 0;
}

int vfm_msg_put(struct vfm_msgb *b, uint16_t type, const void *val, size_t len)
{
	if (b->err)
		return b->err;
	if (len > UINT16_MAX || b->cap - b->len < VFM_TLV_HDR_LEN + len)
		return b->err = -ENOSPC;
	vfm_put_le16(b->buf + b->len, type);
	vfm_put_le16(b->buf + b->len + 2, (uint16_t)len);
	if (len)
		memcpy(b->buf + b->len + VFM_TLV_HDR_LEN, val, len);
	b->len += VFM_TLV_HDR_LEN + len;
	return 0;
}

int vfm_msg_put_u8(struct vfm_msgb *b, uint16_t type, uint8_t v)
{
	return vfm_msg_put(b, type, &v, 1);
}

int vfm_msg_put_u16(struct vfm_msgb *b, uint16_t type, uint16_t v)
{
	uint8_t x[2];

	vfm_put_le16(x, v);
	return vfm_msg_put(b, type, x, sizeof(x));
}

int vfm_msg_put_u32(struct vfm_msgb *b, uint16_t type, uint32_t v)
{
	uint8_t x[4];

	vfm_put_le32(x, v);
	return vfm_msg_put(b, type, x, sizeof(x));
}

int vfm_msg_put_u64(struct vfm_msgb *b, uint16_t type, uint64_t v)
{
	uint8_t x[8];

	vfm_put_le64(x, v);
	return vfm_msg_put(b, type, x, sizeof(x));
}

int vfm_msg_put_str(struct vfm_msgb *b, uint16_t type, const char *s)
{
	return vfm_msg_put(b, type, s, strlen(s));
}

int vfm_msg_nest_begin(struct vfm_msgb *b, uint16_t type, size_t *mark)
{
	int ret = vfm_msg_put(b, type, NULL, 0);

	*mark = b->len - VFM_TLV_HDR_LEN;
	return ret;
}

int vfm_msg_nest_end(struct vfm_msgb *b, size_t mark)
{
	size_t len;

	if (b->err)
		return b->err;
	if (mark + VFM_TLV_HDR_LEN > b->len)
		return b->err = -EINVAL;
	len = b->len - mark - VFM_TLV_HDR_LEN;
	if (len > UINT16_MAX)
		return b->err = -ENOSPC;
	vfm_put_le16(b->buf + mark + 2, (uint16_t)len);
	return 0;
}

int vfm_msg_finish(struct vfm_msgb *b, size_t *frame_len)
{
	if (b->err)
		return b->err;
	vfm_put_le32(b->buf + 8, (uint32_t)(b->len - VFM_WIRE_HDR_LEN));
	if (frame_len)
		*frame_len = b->len;
	return 0;
}

static int bad(struct vfm_err *err, int ret, size_t off, const char *what)
{
	if (err)
		err->off = off;
	return vfm_err_set(err, ret, "%s", what);
}

int vfm_frame_peek(const void *buf, size_t len, size_t *frame_len,
		   struct vfm_err *err)
{
	const uint8_t *p = buf;
	uint32_t plen;

	if (len < VFM_WIRE_HDR_LEN)
		return -EAGAIN;
	if (vfm_get_le32(p) != VFM_WIRE_MAGIC)
		return bad(err, -EBADMSG, 0,
			   "frame does not start with the vfmig magic");
	if (p[5])
		return bad(err, -EBADMSG, 5, "frame has unknown flag bits set");
	if (vfm_get_le16(p + 6))
		return bad(err, -EBADMSG, 6,
			   "frame has its reserved field set");
	plen = vfm_get_le32(p + 8);
	if (plen > VFM_WIRE_FRAME_MAX - VFM_WIRE_HDR_LEN) {
		if (err)
			err->off = 8;
		return vfm_err_set(
			err, -EMSGSIZE,
			"frame of %u payload bytes is above the %u-byte limit",
			plen, VFM_WIRE_FRAME_MAX);
	}
	*frame_len = VFM_WIRE_HDR_LEN + (size_t)plen;
	return 0;
}

void vfm_tlv_iter_init(struct vfm_tlv_iter *it, const void *buf, size_t len)
{
	it->p = buf;
	it->end = it->p + len;
	it->n = 0;
}

void vfm_tlv_iter_msg(struct vfm_tlv_iter *it, const struct vfm_msg *m)
{
	vfm_tlv_iter_init(it, m->payload, m->len);
}

void vfm_tlv_iter_nested(struct vfm_tlv_iter *it, const struct vfm_tlv *t)
{
	vfm_tlv_iter_init(it, t->val, t->len);
}

int vfm_tlv_next(struct vfm_tlv_iter *it, struct vfm_tlv *t,
		 struct vfm_err *err)
{
	size_t left = (size_t)(it->end - it->p);
	uint16_t type, len;

	if (!left)
		return 0;
	if (it->n >= VFM_WIRE_TLVS_MAX)
		return vfm_err_set(err, -EBADMSG, "more than %u TLVs",
				   VFM_WIRE_TLVS_MAX);
	if (left < VFM_TLV_HDR_LEN)
		return vfm_err_set(err, -EBADMSG,
				   "truncated TLV header (%zu bytes left)",
				   left);
	type = vfm_get_le16(it->p);
	len = vfm_get_le16(it->p + 2);
	if (len > left - VFM_TLV_HDR_LEN)
		return vfm_err_set(
			err, -EBADMSG,
			"TLV 0x%04x says %u value bytes but only %zu remain",
			type, len, left - VFM_TLV_HDR_LEN);
	t->type = type & VFM_TLV_TYPE_MASK;
	t->mandatory = type & VFM_TLV_MANDATORY;
	t->len = len;
	t->val = it->p + VFM_TLV_HDR_LEN;
	it->p += VFM_TLV_HDR_LEN + len;
	it->n++;
	return 1;
}

int vfm_msg_parse(const void *frame, size_t len, struct vfm_msg *m,
		  struct vfm_err *err)
{
	const uint8_t *p = frame;
	struct vfm_tlv_iter it;
	struct vfm_tlv t;
	size_t flen;
	int ret;

	vfm_err_clear(err);
	ret = vfm_frame_peek(frame, len, &flen, err);
	if (ret == -EAGAIN)
		return vfm_err_set(err, -EBADMSG,
				   "truncated frame header (%zu of %d bytes)",
				   len, VFM_WIRE_HDR_LEN);
	if (ret)
		return ret;
	if (flen != len)
		return vfm_err_set(
			err, -EBADMSG,
			"frame length %zu does not match the %zu bytes given",
			flen, len);
	m->type = p[4];
	m->flags = p[5];
	m->frame = p;
	m->payload = p + VFM_WIRE_HDR_LEN;
	m->len = (uint32_t)(len - VFM_WIRE_HDR_LEN);
	vfm_tlv_iter_msg(&it, m);
	while ((ret = vfm_tlv_next(&it, &t, err)) > 0)
		;
	return ret;
}

static int bad_len(const struct vfm_tlv *t, size_t want, struct vfm_err *err)
{
	return vfm_err_set(err, -EBADMSG,
			   "TLV %u has %u value bytes, expected %zu", t->type,
			   t->len, want);
}

int vfm_tlv_get_u8(const struct vfm_tlv *t, uint8_t *v, struct vfm_err *err)
{
	if (t->len != 1)
		return bad_len(t, 1, err);
	*v = t->val[0];
	return 0;
}

int vfm_tlv_get_u16(const struct vfm_tlv *t, uint16_t *v, struct vfm_err *err)
{
	if (t->len != 2)
		return bad_len(t, 2, err);
	*v = vfm_get_le16(t->val);
	return 0;
}

int vfm_tlv_get_u32(const struct vfm_tlv *t, uint32_t *v, struct vfm_err *err)
{
	if (t->len != 4)
		return bad_len(t, 4, err);
	*v = vfm_get_le32(t->val);
	return 0;
}

int vfm_tlv_get_u64(const struct vfm_tlv *t, uint64_t *v, struct vfm_err *err)
{
	if (t->len != 8)
		return bad_len(t, 8, err);
	*v = vfm_get_le64(t->val);
	return 0;
}

int vfm_tlv_get_bytes(const struct vfm_tlv *t, void *buf, size_t len,
		      struct vfm_err *err)
{
	if (t->len != len)
		return bad_len(t, len, err);
	memcpy(buf, t->val, len);
	return 0;
}

int vfm_tlv_get_str(const struct vfm_tlv *t, char *buf, size_t cap,
		    struct vfm_err *err)
{
	if (t->len >= cap)
		return vfm_err_set(
			err, -EBADMSG,
			"TLV %u: string of %u bytes is longer than %zu",
			t->type, t->len, cap ? cap - 1 : 0);
	if (memchr(t->val, '\0', t->len))
		return vfm_err_set(err, -EBADMSG,
				   "TLV %u: string contains a NUL byte",
				   t->type);
	memcpy(buf, t->val, t->len);
	buf[t->len] = '\0';
	return 0;
}

int vfm_tlv_unknown(const struct vfm_tlv *t, const char *where,
		    struct vfm_err *err)
{
	if (!t->mandatory)
		return 0;
	return vfm_err_set(err, -EPROTO,
			   "unknown mandatory TLV 0x%04x (type %u) in %s",
			   t->type | VFM_TLV_MANDATORY, t->type, where);
}

const char *vfm_msg_type_name(uint8_t type)
{
	static const char *const names[] = {
		[VFM_MSG_HELLO] = "HELLO", [VFM_MSG_AUTH] = "AUTH",
		[VFM_MSG_OFFER] = "OFFER", [VFM_MSG_VERDICT] = "VERDICT",
		[VFM_MSG_ABORT] = "ABORT",
	};

	if (type < VFM_ARRAY_SIZE(names) && names[type])
		return names[type];
	return type >= VFM_MSG_AGENT_FIRST ? "AGENT" : "UNKNOWN";
}

const char *vfm_role_name(uint8_t role)
{
	switch (role) {
	case VFM_ROLE_SOURCE:
		return "source";
	case VFM_ROLE_DESTINATION:
		return "destination";
	}
	return "unknown";
}

const char *vfm_abort_reason_name(uint16_t reason)
{
	switch (reason) {
	case VFM_ABORT_PROTOCOL:
		return "protocol";
	case VFM_ABORT_AUTH:
		return "auth";
	case VFM_ABORT_MALFORMED:
		return "malformed";
	case VFM_ABORT_INTERNAL:
		return "internal";
	case VFM_ABORT_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}
