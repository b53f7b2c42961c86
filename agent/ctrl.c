// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctrl.h"

#define M VFM_TLV_MANDATORY

int vfm_ctl_encode(struct vfm_hs *hs, const struct vfm_ctl *m, uint8_t *buf,
		   size_t cap, size_t *len)
{
	static const uint8_t zero_mac[VFM_MAC_LEN];
	struct vfm_msgb b;
	int ret;

	vfm_msg_init(&b, buf, cap, m->type);
	switch (m->type) {
	case VFM_CTL_GO:
		vfm_msg_put_u8(&b, M | VFM_CTLV_MODE, m->mode);
		break;
	case VFM_CTL_XPORT:
		vfm_msg_put_str(&b, M | VFM_CTLV_TRANSPORT, m->transport);
		vfm_msg_put(&b, M | VFM_CTLV_INFO, m->info.data, m->info.len);
		vfm_msg_put_u64(&b, M | VFM_CTLV_LANDING, m->landing);
		vfm_msg_put_u32(&b, M | VFM_CTLV_STREAMS, m->streams);
		break;
	case VFM_CTL_CREDIT:
		vfm_msg_put_u64(&b, M | VFM_CTLV_POS, m->pos);
		break;
	case VFM_CTL_PHASE:
		vfm_msg_put_str(&b, VFM_CTLV_PHASE, m->phase);
		vfm_msg_put_u32(&b, VFM_CTLV_ITERATION, m->iteration);
		break;
	case VFM_CTL_DONE:
		vfm_msg_put_u64(&b, M | VFM_CTLV_TOTAL, m->total);
		if (m->digest[0])
			vfm_msg_put_str(&b, VFM_CTLV_DIGEST, m->digest);
		if (m->has_mac)
			vfm_msg_put(&b, VFM_CTLV_MAC, m->mac, sizeof(m->mac));
		break;
	case VFM_CTL_LOADED:
		vfm_msg_put_str(&b, VFM_CTLV_DIGEST, m->digest);
		vfm_msg_put_u64(&b, VFM_CTLV_RESUME_US, m->resume_us);
		break;
	case VFM_CTL_RUN:
	case VFM_CTL_BYE:
		break;
	case VFM_CTL_COMMIT:
		vfm_msg_put_u64(&b, VFM_CTLV_RESUME_US, m->resume_us);
		break;
	case VFM_CTL_DIGEST:
		vfm_msg_put_str(&b, VFM_CTLV_DIGEST, m->digest);
		break;
	case VFM_CTL_FAIL:
		vfm_msg_put_u16(&b, VFM_CTLV_CODE, m->code);
		vfm_msg_put_str(&b, VFM_CTLV_TEXT, m->text);
		break;
	default:
		return -EINVAL;
	}
	vfm_msg_put(&b, M | VFM_TLV_MAC, zero_mac, sizeof(zero_mac));
	ret = vfm_msg_finish(&b, len);
	if (ret)
		return ret;
	return vfm_hs_seal(hs, buf, *len);
}

int vfm_ctl_decode(struct vfm_hs *hs, const uint8_t *frame, size_t len,
		   struct vfm_ctl *m, struct vfm_err *err)
{
	struct vfm_tlv_iter it;
	struct vfm_msg msg;
	struct vfm_tlv t;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = vfm_msg_parse(frame, len, &msg, err);
	if (ret)
		return ret;
	if (msg.type < VFM_CTL_GO || msg.type > VFM_CTL_LAST) {
		/* After the handshake only sealed messages count: an ABORT
		 * (which carries no MAC) is a broken connection, never a
		 * decision of the peer. */
		snprintf(err->msg, sizeof(err->msg),
			 "unexpected message %s on the control connection",
			 vfm_msg_type_name(msg.type));
		return -EPROTO;
	}
	ret = vfm_hs_verify(hs, frame, len);
	if (ret) {
		snprintf(err->msg, sizeof(err->msg),
			 "control message %s failed authentication",
			 vfm_ctl_name(msg.type));
		return ret;
	}
	m->type = msg.type;
	vfm_tlv_iter_msg(&it, &msg);
	while ((ret = vfm_tlv_next(&it, &t, err)) == 1) {
		switch (t.type) {
		case VFM_TLV_MAC:
			ret = 0;
			break;
		case VFM_CTLV_MODE:
			ret = vfm_tlv_get_u8(&t, &m->mode, err);
			break;
		case VFM_CTLV_TRANSPORT:
			ret = vfm_tlv_get_str(&t, m->transport,
					      sizeof(m->transport), err);
			break;
		case VFM_CTLV_INFO:
			if (t.len > sizeof(m->info.data)) {
				snprintf(err->msg, sizeof(err->msg),
					 "transport info too long");
				return -EBADMSG;
			}
			memcpy(m->info.data, t.val, t.len);
			m->info.len = t.len;
			ret = 0;
			break;
		case VFM_CTLV_LANDING:
			ret = vfm_tlv_get_u64(&t, &m->landing, err);
			break;
		case VFM_CTLV_STREAMS:
			ret = vfm_tlv_get_u32(&t, &m->streams, err);
			break;
		case VFM_CTLV_POS:
			ret = vfm_tlv_get_u64(&t, &m->pos, err);
			break;
		case VFM_CTLV_PHASE:
			ret = vfm_tlv_get_str(&t, m->phase, sizeof(m->phase),
					      err);
			break;
		case VFM_CTLV_ITERATION:
			ret = vfm_tlv_get_u32(&t, &m->iteration, err);
			break;
		case VFM_CTLV_TOTAL:
			ret = vfm_tlv_get_u64(&t, &m->total, err);
			break;
		case VFM_CTLV_RESUME_US:
			ret = vfm_tlv_get_u64(&t, &m->resume_us, err);
			break;
		case VFM_CTLV_DIGEST:
			ret = vfm_tlv_get_str(&t, m->digest, sizeof(m->digest),
					      err);
			break;
		case VFM_CTLV_MAC:
			if (t.len != sizeof(m->mac)) {
				snprintf(err->msg, sizeof(err->msg),
					 "the stream MAC has the wrong length");
				return -EBADMSG;
			}
			memcpy(m->mac, t.val, sizeof(m->mac));
			m->has_mac = true;
			ret = 0;
			break;
		case VFM_CTLV_CODE:
			ret = vfm_tlv_get_u16(&t, &m->code, err);
			break;
		case VFM_CTLV_TEXT:
			ret = vfm_tlv_get_str(&t, m->text, sizeof(m->text),
					      err);
			break;
		default:
			ret = vfm_tlv_unknown(&t, vfm_ctl_name(msg.type), err);
			break;
		}
		if (ret)
			return ret;
	}
	return ret;
}

const char *vfm_ctl_name(uint8_t type)
{
	static const char *const names[] = { "GO",     "XPORT", "CREDIT",
					     "PHASE",  "DONE",	"COMMIT",
					     "DIGEST", "FAIL",	"LOADED",
					     "RUN",    "BYE" };

	if (type >= VFM_CTL_GO && type <= VFM_CTL_LAST)
		return names[type - VFM_CTL_GO];
	return vfm_msg_type_name(type);
}
