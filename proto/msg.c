// SPDX-License-Identifier: MIT
/* Typed handshake messages: HELLO, AUTH, OFFER, VERDICT, ABORT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfm/wire.h"
#include "internal.h"

#define M VFM_TLV_MANDATORY

/* Shared decoder walk: duplicate and MAC-position checks. */
struct walk {
	struct vfm_tlv_iter it;
	uint32_t seen;
	const char *name;
};

static int walk_start(struct walk *w, const struct vfm_msg *m, uint8_t type,
		      const char *name, struct vfm_err *err)
{
	vfm_err_clear(err);
	w->seen = 0;
	w->name = name;
	if (m->type != type)
		return vfm_err_set(err, -EPROTO, "expected %s, got %s (0x%02x)",
				   name, vfm_msg_type_name(m->type), m->type);
	vfm_tlv_iter_msg(&w->it, m);
	return 0;
}

/* Mark a once-only TLV seen; -EBADMSG if it was already. */
static int once(struct walk *w, const struct vfm_tlv *t, struct vfm_err *err)
{
	if (t->type < 32) {
		if (w->seen & (1u << t->type))
			return vfm_err_set(err, -EBADMSG, "%s has TLV %u twice",
					   w->name, t->type);
		w->seen |= 1u << t->type;
	}
	return 0;
}

static int need(struct walk *w, unsigned int type, const char *what,
		struct vfm_err *err)
{
	if (!(w->seen & (1u << type)))
		return vfm_err_set(err, -EBADMSG, "%s lacks its %s", w->name,
				   what);
	return 0;
}

/* A trailing MAC is the handshake's business: skip it if it is last. */
static int other(struct walk *w, const struct vfm_tlv *t, bool sealed,
		 struct vfm_err *err)
{
	if (sealed && t->type == VFM_TLV_MAC) {
		if (w->it.p != w->it.end || t->len != VFM_MAC_LEN)
			return vfm_err_set(
				err, -EBADMSG,
				"%s has a MAC that is not its last TLV or not %d bytes",
				w->name, VFM_MAC_LEN);
		return 0;
	}
	return vfm_tlv_unknown(t, w->name, err);
}

static int frame(int (*put)(struct vfm_msgb *, const void *), uint8_t type,
		 const void *x, void *buf, size_t cap, size_t *len)
{
	struct vfm_msgb b;

	vfm_msg_init(&b, buf, cap, type);
	put(&b, x);
	return vfm_msg_finish(&b, len);
}

/* ---- HELLO ---- */
int vfm_hello_put(struct vfm_msgb *b, const struct vfm_hello *h)
{
	vfm_msg_put_u8(b, M | VFM_HELLO_ROLE, h->role);
	vfm_msg_put_u16(b, M | VFM_HELLO_PROTO_MIN, h->proto_min);
	vfm_msg_put_u16(b, M | VFM_HELLO_PROTO_MAX, h->proto_max);
	vfm_msg_put_u64(b, M | VFM_HELLO_FEATURES, h->features);
	vfm_msg_put(b, M | VFM_HELLO_NONCE, h->nonce, VFM_NONCE_LEN);
	return vfm_msg_put(b, M | VFM_HELLO_MIGRATION_ID, h->migration_id,
			   VFM_MIGRATION_ID_LEN);
}

static int hello_put(struct vfm_msgb *b, const void *x)
{
	return vfm_hello_put(b, x);
}

int vfm_hello_encode(const struct vfm_hello *h, void *buf, size_t cap,
		     size_t *len)
{
	return frame(hello_put, VFM_MSG_HELLO, h, buf, cap, len);
}

int vfm_hello_decode(const struct vfm_msg *m, struct vfm_hello *h,
		     struct vfm_err *err)
{
	struct walk w;
	struct vfm_tlv t;
	int ret;

	memset(h, 0, sizeof(*h));
	ret = walk_start(&w, m, VFM_MSG_HELLO, "HELLO", err);
	while (!ret && (ret = vfm_tlv_next(&w.it, &t, err)) > 0) {
		ret = once(&w, &t, err);
		if (ret)
			break;
		switch (t.type) {
		case VFM_HELLO_ROLE:
			ret = vfm_tlv_get_u8(&t, &h->role, err);
			break;
		case VFM_HELLO_PROTO_MIN:
			ret = vfm_tlv_get_u16(&t, &h->proto_min, err);
			break;
		case VFM_HELLO_PROTO_MAX:
			ret = vfm_tlv_get_u16(&t, &h->proto_max, err);
			break;
		case VFM_HELLO_FEATURES:
			ret = vfm_tlv_get_u64(&t, &h->features, err);
			break;
		case VFM_HELLO_NONCE:
			ret = vfm_tlv_get_bytes(&t, h->nonce, VFM_NONCE_LEN,
						err);
			break;
		case VFM_HELLO_MIGRATION_ID:
			ret = vfm_tlv_get_bytes(&t, h->migration_id,
						VFM_MIGRATION_ID_LEN, err);
			break;
		default:
			ret = other(&w, &t, false, err);
		}
	}
	if (ret)
		return ret;
	ret = need(&w, VFM_HELLO_ROLE, "role", err);
	if (!ret)
		ret = need(&w, VFM_HELLO_PROTO_MIN, "protocol minimum", err);
	if (!ret)
		ret = need(&w, VFM_HELLO_PROTO_MAX, "protocol maximum", err);
	if (!ret)
		ret = need(&w, VFM_HELLO_FEATURES, "feature bits", err);
	if (!ret)
		ret = need(&w, VFM_HELLO_NONCE, "nonce", err);
	if (!ret)
		ret = need(&w, VFM_HELLO_MIGRATION_ID, "migration id", err);
	if (ret)
		return ret;
	if (h->role != VFM_ROLE_SOURCE && h->role != VFM_ROLE_DESTINATION)
		return vfm_err_set(err, -EPROTO, "HELLO has unknown role %u",
				   h->role);
	if (!h->proto_min || h->proto_min > h->proto_max)
		return vfm_err_set(err, -EPROTO,
				   "HELLO has an empty protocol range %u-%u",
				   h->proto_min, h->proto_max);
	return 0;
}

int vfm_proto_negotiate(const struct vfm_hello *a, const struct vfm_hello *b,
			uint16_t *version, uint64_t *features,
			struct vfm_err *err)
{
	uint16_t lo = a->proto_min > b->proto_min ? a->proto_min : b->proto_min;
	uint16_t hi = a->proto_max < b->proto_max ? a->proto_max : b->proto_max;

	if (lo > hi || !lo)
		return vfm_err_set(
			err, -EPROTONOSUPPORT,
			"no common handshake protocol version: this side speaks %u-%u, the peer %u-%u",
			a->proto_min, a->proto_max, b->proto_min, b->proto_max);
	*version = hi;
	*features = a->features & b->features;
	return 0;
}

/* ---- AUTH ---- */
int vfm_auth_put(struct vfm_msgb *b, const struct vfm_auth *a)
{
	return vfm_msg_put(b, M | VFM_TLV_MAC, a->mac, VFM_MAC_LEN);
}

static int auth_put(struct vfm_msgb *b, const void *x)
{
	return vfm_auth_put(b, x);
}

int vfm_auth_encode(const struct vfm_auth *a, void *buf, size_t cap,
		    size_t *len)
{
	return frame(auth_put, VFM_MSG_AUTH, a, buf, cap, len);
}

int vfm_auth_decode(const struct vfm_msg *m, struct vfm_auth *a,
		    struct vfm_err *err)
{
	struct walk w;
	struct vfm_tlv t;
	int ret;

	bool have = false;

	memset(a, 0, sizeof(*a));
	ret = walk_start(&w, m, VFM_MSG_AUTH, "AUTH", err);
	while (!ret && (ret = vfm_tlv_next(&w.it, &t, err)) > 0) {
		if (t.type == VFM_TLV_MAC) {
			/* Must be last, so it cannot come twice. */
			ret = other(&w, &t, true, err);
			if (!ret) {
				memcpy(a->mac, t.val, VFM_MAC_LEN);
				have = true;
			}
		} else {
			ret = other(&w, &t, false, err);
		}
	}
	if (ret)
		return ret;
	if (!have)
		return vfm_err_set(err, -EBADMSG, "AUTH lacks its MAC");
	return 0;
}

/* ---- OFFER ---- */
void vfm_offer_clear(struct vfm_offer *o)
{
	free(o->more);
	o->more = NULL;
	o->nmore = 0;
}

void vfm_verdict_msg_clear(struct vfm_verdict_msg *v)
{
	free(v->more);
	v->more = NULL;
	v->nmore = 0;
}

int vfm_offer_put(struct vfm_msgb *b, const struct vfm_offer *o)
{
	vfm_desc_put(b, M | VFM_OFFER_DESC, &o->desc);
	for (unsigned int i = 0; i < o->nreq && i < VFM_DESC_FEATURES_MAX; i++)
		vfm_msg_put_str(b, M | VFM_OFFER_REQ_FEATURE, o->req[i]);
	vfm_msg_put_str(b, M | VFM_OFFER_TRANSPORT, o->transport);
	if (o->cipher[0])
		vfm_msg_put_str(b, M | VFM_OFFER_CIPHER, o->cipher);
	for (unsigned int i = 0; i < o->nmore && i < VFM_SET_MAX - 1; i++)
		vfm_desc_put(b, M | VFM_OFFER_MEMBER, &o->more[i]);
	return vfm_msg_put_u32(b, M | VFM_OFFER_STREAMS, o->streams);
}

static int offer_put(struct vfm_msgb *b, const void *x)
{
	return vfm_offer_put(b, x);
}

int vfm_offer_encode(const struct vfm_offer *o, void *buf, size_t cap,
		     size_t *len)
{
	return frame(offer_put, VFM_MSG_OFFER, o, buf, cap, len);
}

static bool one_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      vfm_isdigit(*s) || *s == '_'))
			return false;
	return true;
}

int vfm_offer_decode(const struct vfm_msg *m, struct vfm_offer *o,
		     struct vfm_err *err)
{
	struct walk w;
	struct vfm_tlv t;
	int ret;

	vfm_offer_clear(o);
	memset(o, 0, sizeof(*o));
	ret = walk_start(&w, m, VFM_MSG_OFFER, "OFFER", err);
	while (!ret && (ret = vfm_tlv_next(&w.it, &t, err)) > 0) {
		switch (t.type) {
		case VFM_OFFER_DESC:
			ret = once(&w, &t, err);
			if (!ret)
				ret = vfm_desc_get(&t, &o->desc, err);
			break;
		case VFM_OFFER_REQ_FEATURE:
			if (o->nreq == VFM_DESC_FEATURES_MAX) {
				ret = vfm_err_set(
					err, -EBADMSG,
					"OFFER requires more than %d features",
					VFM_DESC_FEATURES_MAX);
				break;
			}
			ret = vfm_tlv_get_str(&t, o->req[o->nreq],
					      sizeof(o->req[0]), err);
			if (!ret && !one_name(o->req[o->nreq]))
				ret = vfm_err_set(
					err, -EBADMSG,
					"OFFER requires a feature with a bad name");
			o->nreq += !ret;
			break;
		case VFM_OFFER_TRANSPORT:
			ret = once(&w, &t, err);
			if (!ret)
				ret = vfm_tlv_get_str(&t, o->transport,
						      sizeof(o->transport),
						      err);
			break;
		case VFM_OFFER_STREAMS:
			ret = once(&w, &t, err);
			if (!ret)
				ret = vfm_tlv_get_u32(&t, &o->streams, err);
			break;
		case VFM_OFFER_CIPHER:
			ret = once(&w, &t, err);
			if (!ret)
				ret = vfm_tlv_get_str(&t, o->cipher,
						      sizeof(o->cipher), err);
			if (!ret && !o->cipher[0])
				ret = vfm_err_set(
					err, -EBADMSG,
					"OFFER names an empty cipher");
			break;
		case VFM_OFFER_MEMBER:
			if (!o->more)
				o->more = calloc(VFM_SET_MAX - 1,
						 sizeof(*o->more));
			if (!o->more) {
				ret = vfm_err_set(err, -ENOMEM,
						  "out of memory");
				break;
			}
			if (o->nmore == VFM_SET_MAX - 1) {
				ret = vfm_err_set(
					err, -EBADMSG,
					"OFFER names more than %d devices",
					VFM_SET_MAX);
				break;
			}
			ret = vfm_desc_get(&t, &o->more[o->nmore], err);
			o->nmore += !ret;
			break;
		default:
			ret = other(&w, &t, true, err);
		}
	}
	if (!ret)
		ret = need(&w, VFM_OFFER_DESC, "descriptor", err);
	if (!ret)
		ret = need(&w, VFM_OFFER_TRANSPORT, "transport", err);
	if (!ret)
		ret = need(&w, VFM_OFFER_STREAMS, "stream count", err);
	return ret;
}

/* ---- VERDICT ---- */
static int verdict_body_put(struct vfm_msgb *b, const struct vfm_verdict *v,
			    const struct vfm_desc *desc)
{
	size_t mark;

	vfm_msg_put_u8(b, M | VFM_VERDICT_ACCEPT, v->accept);
	for (unsigned int i = 0; i < v->nresults && i < VFM_VERDICT_RESULTS_MAX;
	     i++) {
		const struct vfm_rule_result *r = &v->r[i];

		vfm_msg_nest_begin(b, M | VFM_VERDICT_RULE, &mark);
		vfm_msg_put_u16(b, M | VFM_RULE_CODE, r->code);
		vfm_msg_put_u8(b, M | VFM_RULE_PASSED, r->passed);
		if (r->subject[0])
			vfm_msg_put_str(b, M | VFM_RULE_SUBJECT, r->subject);
		vfm_msg_put_str(b, M | VFM_RULE_SENTENCE, r->sentence);
		vfm_msg_nest_end(b, mark);
	}
	for (unsigned int i = 0; i < v->nnotes && i < VFM_VERDICT_NOTES_MAX;
	     i++)
		vfm_msg_put_str(b, M | VFM_VERDICT_NOTE, v->notes[i]);
	return vfm_desc_put(b, M | VFM_VERDICT_DESC, desc);
}

int vfm_verdict_put(struct vfm_msgb *b, const struct vfm_verdict_msg *vm)
{
	size_t mark;
	int ret = verdict_body_put(b, &vm->verdict, &vm->desc);

	for (unsigned int i = 0; i < vm->nmore && i < VFM_SET_MAX - 1; i++) {
		vfm_msg_nest_begin(b, M | VFM_VERDICT_MEMBER, &mark);
		verdict_body_put(b, &vm->more[i].verdict, &vm->more[i].desc);
		ret = vfm_msg_nest_end(b, mark);
	}
	return ret;
}

static int verdict_put(struct vfm_msgb *b, const void *x)
{
	return vfm_verdict_put(b, x);
}

int vfm_verdict_encode(const struct vfm_verdict_msg *v, void *buf, size_t cap,
		       size_t *len)
{
	return frame(verdict_put, VFM_MSG_VERDICT, v, buf, cap, len);
}

static int rule_get(const struct vfm_tlv *nt, struct vfm_rule_result *r,
		    struct vfm_err *err)
{
	struct walk w = { .name = "VERDICT rule" };
	struct vfm_tlv t;
	uint8_t passed = 0;
	int ret;

	vfm_tlv_iter_nested(&w.it, nt);
	while ((ret = vfm_tlv_next(&w.it, &t, err)) > 0) {
		ret = once(&w, &t, err);
		if (ret)
			return ret;
		switch (t.type) {
		case VFM_RULE_CODE:
			ret = vfm_tlv_get_u16(&t, &r->code, err);
			break;
		case VFM_RULE_PASSED:
			ret = vfm_tlv_get_u8(&t, &passed, err);
			if (!ret && passed > 1)
				ret = vfm_err_set(
					err, -EBADMSG,
					"VERDICT rule outcome %u is not 0 or 1",
					passed);
			break;
		case VFM_RULE_SUBJECT:
			ret = vfm_tlv_get_str(&t, r->subject,
					      sizeof(r->subject), err);
			break;
		case VFM_RULE_SENTENCE:
			ret = vfm_tlv_get_str(&t, r->sentence,
					      sizeof(r->sentence), err);
			break;
		default:
			ret = other(&w, &t, false, err);
		}
		if (ret)
			return ret;
	}
	if (!ret)
		ret = need(&w, VFM_RULE_CODE, "code", err);
	if (!ret)
		ret = need(&w, VFM_RULE_PASSED, "outcome", err);
	if (!ret)
		ret = need(&w, VFM_RULE_SENTENCE, "sentence", err);
	r->passed = passed;
	return ret;
}

/* The TLVs of one verdict (the message's, or a member's nested one). */
static int verdict_body_get(struct walk *w, struct vfm_verdict *v,
			    struct vfm_desc *desc, struct vfm_verdict_msg *vm,
			    struct vfm_err *err)
{
	struct vfm_tlv t;
	uint8_t accept = 0;
	int ret;

	while ((ret = vfm_tlv_next(&w->it, &t, err)) > 0) {
		switch (t.type) {
		case VFM_VERDICT_ACCEPT:
			ret = once(w, &t, err);
			if (!ret)
				ret = vfm_tlv_get_u8(&t, &accept, err);
			if (!ret && accept > 1)
				ret = vfm_err_set(err, -EBADMSG,
						  "%s accept %u is not 0 or 1",
						  w->name, accept);
			break;
		case VFM_VERDICT_RULE:
			if (v->nresults == VFM_VERDICT_RESULTS_MAX) {
				ret = vfm_err_set(err, -EBADMSG,
						  "%s has more than %d rules",
						  w->name,
						  VFM_VERDICT_RESULTS_MAX);
				break;
			}
			ret = rule_get(&t, &v->r[v->nresults], err);
			v->nresults += !ret;
			break;
		case VFM_VERDICT_NOTE:
			if (v->nnotes == VFM_VERDICT_NOTES_MAX) {
				ret = vfm_err_set(err, -EBADMSG,
						  "%s has more than %d notes",
						  w->name,
						  VFM_VERDICT_NOTES_MAX);
				break;
			}
			ret = vfm_tlv_get_str(&t, v->notes[v->nnotes],
					      sizeof(v->notes[0]), err);
			v->nnotes += !ret;
			break;
		case VFM_VERDICT_DESC:
			ret = once(w, &t, err);
			if (!ret)
				ret = vfm_desc_get(&t, desc, err);
			break;
		case VFM_VERDICT_MEMBER:
			if (!vm) {
				ret = vfm_err_set(err, -EBADMSG,
						  "%s nests a device set",
						  w->name);
				break;
			}
			if (!vm->more)
				vm->more = calloc(VFM_SET_MAX - 1,
						  sizeof(*vm->more));
			if (!vm->more) {
				ret = vfm_err_set(err, -ENOMEM,
						  "out of memory");
				break;
			}
			if (vm->nmore == VFM_SET_MAX - 1) {
				ret = vfm_err_set(
					err, -EBADMSG,
					"VERDICT names more than %d devices",
					VFM_SET_MAX);
				break;
			}
			{
				struct vfm_verdict_member *mb =
					&vm->more[vm->nmore];
				struct walk mw = { .name = "VERDICT member" };

				vfm_tlv_iter_nested(&mw.it, &t);
				ret = verdict_body_get(&mw, &mb->verdict,
						       &mb->desc, NULL, err);
				vm->nmore += !ret;
			}
			break;
		default:
			ret = other(w, &t, vm != NULL, err);
		}
		if (ret)
			return ret;
	}
	if (!ret)
		ret = need(w, VFM_VERDICT_ACCEPT, "decision", err);
	if (!ret)
		ret = need(w, VFM_VERDICT_DESC, "destination descriptor", err);
	if (ret)
		return ret;
	v->accept = accept;
	if (v->accept != !vfm_verdict_failures(v))
		return vfm_err_set(err, -EBADMSG,
				   "%s says %s but lists %u failed rules",
				   w->name, v->accept ? "accept" : "refuse",
				   vfm_verdict_failures(v));
	return 0;
}

int vfm_verdict_decode(const struct vfm_msg *m, struct vfm_verdict_msg *vm,
		       struct vfm_err *err)
{
	struct walk w;
	int ret;

	vfm_verdict_msg_clear(vm);
	memset(vm, 0, sizeof(*vm));
	ret = walk_start(&w, m, VFM_MSG_VERDICT, "VERDICT", err);
	if (ret)
		return ret;
	return verdict_body_get(&w, &vm->verdict, &vm->desc, vm, err);
}

/* ---- ABORT ---- */
int vfm_abort_put(struct vfm_msgb *b, const struct vfm_abort *a)
{
	vfm_msg_put_u16(b, M | VFM_ABORT_REASON, a->reason);
	return vfm_msg_put_str(b, VFM_ABORT_TEXT, a->text);
}

static int abort_put(struct vfm_msgb *b, const void *x)
{
	return vfm_abort_put(b, x);
}

int vfm_abort_encode(const struct vfm_abort *a, void *buf, size_t cap,
		     size_t *len)
{
	return frame(abort_put, VFM_MSG_ABORT, a, buf, cap, len);
}

int vfm_abort_decode(const struct vfm_msg *m, struct vfm_abort *a,
		     struct vfm_err *err)
{
	struct walk w;
	struct vfm_tlv t;
	int ret;

	memset(a, 0, sizeof(*a));
	ret = walk_start(&w, m, VFM_MSG_ABORT, "ABORT", err);
	while (!ret && (ret = vfm_tlv_next(&w.it, &t, err)) > 0) {
		ret = once(&w, &t, err);
		if (ret)
			break;
		switch (t.type) {
		case VFM_ABORT_REASON:
			ret = vfm_tlv_get_u16(&t, &a->reason, err);
			break;
		case VFM_ABORT_TEXT:
			ret = vfm_tlv_get_str(&t, a->text, sizeof(a->text),
					      err);
			break;
		default:
			ret = other(&w, &t, false, err);
		}
	}
	if (!ret)
		ret = need(&w, VFM_ABORT_REASON, "reason", err);
	return ret;
}
