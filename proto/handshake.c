// SPDX-License-Identifier: MIT
/* The handshake state machine (see vfm/handshake.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "vfm/handshake.h"
#include "vfm/kdf.h"
#include "internal.h"

#define OUT_CAP (2 * VFM_WIRE_FRAME_MAX)
#define MAC_TLV_LEN (VFM_TLV_HDR_LEN + VFM_MAC_LEN)

struct vfm_hs {
	enum vfm_role role;
	enum vfm_hs_state state;
	int error;
	char reason[VFM_ERR_MSG_MAX];

	uint8_t secret[VFM_HS_SECRET_MAX];
	size_t secret_len;
	uint64_t features_offered;
	uint16_t proto_min, proto_max;
	struct vfm_desc desc; /* this side's device (the set's first) */
	unsigned int nmore; /* a device set: this side's devices 2..n */
	struct vfm_desc *more; /* only for a set */

	struct vfm_hello mine, peer;
	uint16_t version;
	uint64_t features;
	EVP_MD_CTX *transcript; /* SHA-256 of every frame so far */
	uint8_t final_hash[32]; /* transcript at DONE, for vfm_hs_seal */
	/* Keys (vfm/kdf.h): never the secret itself. */
	uint8_t k_auth[VFM_KEY_LEN]; /* handshake AUTH, from both nonces */
	bool k_auth_ok;
	uint8_t k_seal[2][VFM_KEY_LEN]; /* [role - SOURCE], after DONE */
	uint8_t k_stream[VFM_KEY_LEN], iv_stream[VFM_SMAC_IV_LEN];
	uint8_t k_data[VFM_KEY_LEN]; /* the data plane's AEAD (--encrypt) */
	uint64_t seal_seq, verify_seq;

	struct vfm_offer offer;
	struct vfm_verdict_msg verdict;

	size_t out_len;
	uint8_t out[OUT_CAP];
	uint8_t frame[VFM_WIRE_FRAME_MAX]; /* scratch for building */
};

static const uint8_t *nonce_of(const struct vfm_hs *hs, enum vfm_role role)
{
	return hs->role == role ? hs->mine.nonce : hs->peer.nonce;
}

/* HMAC over label || nonces || SHA-256(transcript || prefix) [|| seq]. */
static int mac_frame(struct vfm_hs *hs, enum vfm_role sender, uint8_t type,
		     const uint8_t *frame, size_t len, const uint64_t *seq,
		     uint8_t mac[VFM_MAC_LEN])
{
	uint8_t data[96 + 2 * VFM_NONCE_LEN + 32 + 8];
	unsigned int hlen = 0, mlen = 0;
	uint8_t th[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *c;
	size_t n;
	int ok;

	n = (size_t)snprintf((char *)data, 96, "vfmig-hs-v1 %s %s 0x%02x",
			     vfm_role_name(sender), vfm_msg_type_name(type),
			     type);
	if (n >= 96)
		return -EINVAL;
	data[n++] = 0;
	memcpy(data + n, nonce_of(hs, VFM_ROLE_SOURCE), VFM_NONCE_LEN);
	n += VFM_NONCE_LEN;
	memcpy(data + n, nonce_of(hs, VFM_ROLE_DESTINATION), VFM_NONCE_LEN);
	n += VFM_NONCE_LEN;

	c = EVP_MD_CTX_new();
	if (seq) /* after the handshake: the final transcript hash */
		ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		     EVP_DigestUpdate(c, hs->final_hash, 32);
	else /* during it: every frame so far */
		ok = c && EVP_MD_CTX_copy_ex(c, hs->transcript);
	ok = ok && EVP_DigestUpdate(c, frame, len - VFM_MAC_LEN) &&
	     EVP_DigestFinal_ex(c, th, &hlen);
	EVP_MD_CTX_free(c);
	if (!ok || hlen != 32)
		return -EIO;
	memcpy(data + n, th, 32);
	n += 32;
	if (seq) {
		vfm_put_le64(data + n, *seq);
		n += 8;
	}
	if (!seq && !hs->k_auth_ok) {
		uint8_t salt[2 * VFM_NONCE_LEN];
		static const char info[] = "vfmig-v1 handshake auth";

		memcpy(salt, nonce_of(hs, VFM_ROLE_SOURCE), VFM_NONCE_LEN);
		memcpy(salt + VFM_NONCE_LEN, nonce_of(hs, VFM_ROLE_DESTINATION),
		       VFM_NONCE_LEN);
		if (vfm_hkdf_sha256(hs->secret, hs->secret_len, salt,
				    sizeof(salt), info, sizeof(info) - 1,
				    hs->k_auth, sizeof(hs->k_auth)))
			return -EIO;
		hs->k_auth_ok = true;
	}
	if (!HMAC(EVP_sha256(),
		  seq ? hs->k_seal[sender - VFM_ROLE_SOURCE] : hs->k_auth,
		  VFM_KEY_LEN, data, n, mac, &mlen) ||
	    mlen != VFM_MAC_LEN)
		return -EIO;
	return 0;
}

/* The keys after the handshake, bound to its whole transcript. */
static int derive_session_keys(struct vfm_hs *hs)
{
	static const char *const labels[] = { "vfmig-v1 seal source",
					      "vfmig-v1 seal destination",
					      "vfmig-v1 stream mac key",
					      "vfmig-v1 stream mac iv",
					      "vfmig-v1 data aead key" };
	uint8_t *outs[] = { hs->k_seal[0], hs->k_seal[1], hs->k_stream,
			    hs->iv_stream, hs->k_data };
	size_t lens[] = { VFM_KEY_LEN, VFM_KEY_LEN, VFM_KEY_LEN,
			  VFM_SMAC_IV_LEN, VFM_KEY_LEN };
	uint8_t salt[2 * VFM_NONCE_LEN];

	memcpy(salt, nonce_of(hs, VFM_ROLE_SOURCE), VFM_NONCE_LEN);
	memcpy(salt + VFM_NONCE_LEN, nonce_of(hs, VFM_ROLE_DESTINATION),
	       VFM_NONCE_LEN);
	for (unsigned int i = 0; i < 5; i++) {
		uint8_t info[64];
		size_t l = strlen(labels[i]);

		memcpy(info, labels[i], l);
		memcpy(info + l, hs->final_hash, 32);
		if (vfm_hkdf_sha256(hs->secret, hs->secret_len, salt,
				    sizeof(salt), info, l + 32, outs[i],
				    lens[i]))
			return -EIO;
	}
	/* Nothing needs the secret any more. */
	OPENSSL_cleanse(hs->secret, sizeof(hs->secret));
	return 0;
}

int vfm_hs_stream_key(const struct vfm_hs *hs, uint8_t *key, uint8_t *iv)
{
	if (hs->state != VFM_HS_DONE)
		return -EINVAL;
	memcpy(key, hs->k_stream, VFM_KEY_LEN);
	memcpy(iv, hs->iv_stream, VFM_SMAC_IV_LEN);
	return 0;
}

int vfm_hs_data_key(const struct vfm_hs *hs, uint8_t *key)
{
	if (hs->state != VFM_HS_DONE)
		return -EINVAL;
	memcpy(key, hs->k_data, VFM_KEY_LEN);
	return 0;
}

/* The frame's last TLV is a MAC of the right size at its very end. */
static bool mac_is_last(const uint8_t *frame, size_t len)
{
	struct vfm_tlv_iter it;
	struct vfm_tlv t = { 0 };
	bool any = false;

	if (len < VFM_WIRE_HDR_LEN + MAC_TLV_LEN)
		return false;
	vfm_tlv_iter_init(&it, frame + VFM_WIRE_HDR_LEN,
			  len - VFM_WIRE_HDR_LEN);
	while (vfm_tlv_next(&it, &t, NULL) > 0)
		any = true;
	return any && it.p == it.end && t.type == VFM_TLV_MAC && t.mandatory &&
	       t.len == VFM_MAC_LEN && t.val == frame + len - VFM_MAC_LEN;
}

static int fail(struct vfm_hs *hs, int error, uint16_t abort_reason,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Enter FAILED; queue an ABORT for the peer unless @abort_reason is 0. */
static int fail(struct vfm_hs *hs, int error, uint16_t abort_reason,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hs->reason, sizeof(hs->reason), fmt, ap);
	va_end(ap);
	hs->state = VFM_HS_FAILED;
	hs->error = error;
	if (abort_reason) {
		struct vfm_abort a = { .reason = abort_reason };
		size_t len;

		snprintf(a.text, sizeof(a.text), "%s", hs->reason);
		if (!vfm_abort_encode(&a, hs->frame, sizeof(hs->frame), &len) &&
		    hs->out_len + len <= OUT_CAP) {
			memcpy(hs->out + hs->out_len, hs->frame, len);
			hs->out_len += len;
		}
	}
	return error;
}

static int hash_frame(struct vfm_hs *hs, const uint8_t *frame, size_t len)
{
	if (!EVP_DigestUpdate(hs->transcript, frame, len))
		return fail(hs, -EIO, VFM_ABORT_INTERNAL,
			    "hashing the handshake transcript failed");
	return 0;
}

/* Queue the frame built in hs->frame: seal it if @sealed, hash it. */
static int send_frame(struct vfm_hs *hs, struct vfm_msgb *b, bool sealed)
{
	size_t len;
	int ret;

	if (sealed)
		vfm_msg_put(b, VFM_TLV_MANDATORY | VFM_TLV_MAC,
			    (const uint8_t[VFM_MAC_LEN]){ 0 }, VFM_MAC_LEN);
	ret = vfm_msg_finish(b, &len);
	if (ret)
		return fail(hs, ret, VFM_ABORT_INTERNAL,
			    "building the %s message failed: %s",
			    vfm_msg_type_name(hs->frame[4]), strerror(-ret));
	if (sealed) {
		ret = mac_frame(hs, hs->role, hs->frame[4], hs->frame, len,
				NULL, hs->frame + len - VFM_MAC_LEN);
		if (ret)
			return fail(hs, ret, VFM_ABORT_INTERNAL,
				    "computing the MAC failed");
	}
	if (hs->out_len + len > OUT_CAP)
		return fail(hs, -ENOBUFS, VFM_ABORT_INTERNAL,
			    "the output queue is full");
	memcpy(hs->out + hs->out_len, hs->frame, len);
	hs->out_len += len;
	return hash_frame(hs, hs->frame, len);
}

static int verify_frame(struct vfm_hs *hs, const struct vfm_msg *m, size_t len)
{
	enum vfm_role peer = hs->role == VFM_ROLE_SOURCE ?
				     VFM_ROLE_DESTINATION :
				     VFM_ROLE_SOURCE;
	uint8_t mac[VFM_MAC_LEN];
	int ret;

	if (!mac_is_last(m->frame, len))
		return fail(hs, -EBADMSG, VFM_ABORT_MALFORMED,
			    "the peer's %s does not end with a MAC",
			    vfm_msg_type_name(m->type));
	ret = mac_frame(hs, peer, m->type, m->frame, len, NULL, mac);
	if (ret)
		return fail(hs, ret, VFM_ABORT_INTERNAL,
			    "computing the MAC failed");
	if (CRYPTO_memcmp(mac, m->frame + len - VFM_MAC_LEN, VFM_MAC_LEN))
		return fail(
			hs, -EACCES, VFM_ABORT_AUTH,
			"authentication failed: the %s's %s does not carry a valid MAC (the per-migration secrets differ, or the connection was tampered with)",
			vfm_role_name(peer), vfm_msg_type_name(m->type));
	return hash_frame(hs, m->frame, len);
}

static bool zero_id(const uint8_t *id)
{
	for (int i = 0; i < VFM_MIGRATION_ID_LEN; i++)
		if (id[i])
			return false;
	return true;
}

int vfm_hs_new(struct vfm_hs **out, const struct vfm_hs_cfg *cfg,
	       struct vfm_err *err)
{
	struct vfm_hs *hs;

	vfm_err_clear(err);
	*out = NULL;
	if (cfg->role != VFM_ROLE_SOURCE && cfg->role != VFM_ROLE_DESTINATION)
		return vfm_err_set(err, -EINVAL, "unknown handshake role %d",
				   cfg->role);
	if (!cfg->secret || cfg->secret_len < VFM_HS_SECRET_MIN ||
	    cfg->secret_len > VFM_HS_SECRET_MAX)
		return vfm_err_set(
			err, -EINVAL,
			"the per-migration secret must be %d to %d bytes",
			VFM_HS_SECRET_MIN, VFM_HS_SECRET_MAX);
	if (cfg->role == VFM_ROLE_SOURCE && zero_id(cfg->migration_id))
		return vfm_err_set(err, -EINVAL,
				   "the source needs a migration id");
	if (cfg->proto_min > cfg->proto_max ||
	    (!cfg->proto_min && cfg->proto_max))
		return vfm_err_set(err, -EINVAL, "bad protocol range %u-%u",
				   cfg->proto_min, cfg->proto_max);
	if (cfg->ndesc > VFM_SET_MAX)
		return vfm_err_set(err, -E2BIG, "a set of more than %d devices",
				   VFM_SET_MAX);
	for (unsigned int i = 0; i < (cfg->ndesc ? cfg->ndesc : 1); i++)
		if (!cfg->desc || vfm_desc_check(&cfg->desc[i], err))
			return vfm_err_set(
				err, -EINVAL,
				"the handshake needs this side's complete device descriptor");
	if (cfg->nreq > VFM_DESC_FEATURES_MAX)
		return vfm_err_set(err, -E2BIG,
				   "more than %d required features",
				   VFM_DESC_FEATURES_MAX);
	if (cfg->transport && strlen(cfg->transport) > VFM_TRANSPORT_NAME_MAX)
		return vfm_err_set(err, -ENAMETOOLONG,
				   "transport name '%s' is too long",
				   cfg->transport);

	hs = calloc(1, sizeof(*hs));
	if (!hs)
		return vfm_err_set(err, -ENOMEM, "out of memory");
	hs->transcript = EVP_MD_CTX_new();
	if (!hs->transcript ||
	    !EVP_DigestInit_ex(hs->transcript, EVP_sha256(), NULL)) {
		vfm_hs_free(hs);
		return vfm_err_set(err, -EIO, "SHA-256 is not available");
	}
	hs->role = cfg->role;
	hs->state = VFM_HS_INIT;
	memcpy(hs->secret, cfg->secret, cfg->secret_len);
	hs->secret_len = cfg->secret_len;
	hs->proto_min = cfg->proto_min ? cfg->proto_min : VFM_PROTO_MIN;
	hs->proto_max = cfg->proto_max ? cfg->proto_max : VFM_PROTO_MAX;
	hs->features_offered = cfg->features;
	hs->desc = *cfg->desc;
	hs->nmore = cfg->ndesc > 1 ? cfg->ndesc - 1 : 0;
	if (hs->nmore) {
		hs->more = calloc(hs->nmore, sizeof(*hs->more));
		if (!hs->more) {
			vfm_hs_free(hs);
			return vfm_err_set(err, -ENOMEM, "out of memory");
		}
	}
	for (unsigned int i = 0; i < hs->nmore; i++)
		hs->more[i] = cfg->desc[i + 1];

	hs->mine.role = (uint8_t)cfg->role;
	hs->mine.proto_min = hs->proto_min;
	hs->mine.proto_max = hs->proto_max;
	hs->mine.features = cfg->features;
	memcpy(hs->mine.migration_id, cfg->migration_id, VFM_MIGRATION_ID_LEN);
	if (cfg->nonce) {
		memcpy(hs->mine.nonce, cfg->nonce, VFM_NONCE_LEN);
	} else if (RAND_bytes(hs->mine.nonce, VFM_NONCE_LEN) != 1) {
		vfm_hs_free(hs);
		return vfm_err_set(err, -EIO, "no random bytes for the nonce");
	}

	if (cfg->role == VFM_ROLE_SOURCE) {
		struct vfm_offer *o = &hs->offer;

		o->desc = *cfg->desc;
		if (hs->nmore) {
			o->more = calloc(VFM_SET_MAX - 1, sizeof(*o->more));
			if (!o->more) {
				vfm_hs_free(hs);
				return vfm_err_set(err, -ENOMEM,
						   "out of memory");
			}
		}
		o->nmore = hs->nmore;
		for (unsigned int i = 0; i < hs->nmore; i++)
			o->more[i] = hs->more[i];
		if (cfg->req) {
			for (unsigned int i = 0; i < cfg->nreq; i++)
				snprintf(o->req[i], sizeof(o->req[0]), "%s",
					 cfg->req[i]);
			o->nreq = cfg->nreq;
		} else {
			for (unsigned int i = 0; i < cfg->desc->nfeatures; i++)
				memcpy(o->req[i], cfg->desc->features[i],
				       sizeof(o->req[0]));
			o->nreq = cfg->desc->nfeatures;
		}
		snprintf(o->transport, sizeof(o->transport), "%s",
			 cfg->transport ? cfg->transport : "tcp");
		o->streams = cfg->streams ? cfg->streams : 1;
		if (cfg->cipher)
			snprintf(o->cipher, sizeof(o->cipher), "%s",
				 cfg->cipher);
	}
	*out = hs;
	return 0;
}

void vfm_hs_free(struct vfm_hs *hs)
{
	if (!hs)
		return;
	EVP_MD_CTX_free(hs->transcript);
	vfm_offer_clear(&hs->offer);
	vfm_verdict_msg_clear(&hs->verdict);
	free(hs->more);
	OPENSSL_cleanse(hs, sizeof(*hs));
	free(hs);
}

static int send_hello(struct vfm_hs *hs)
{
	struct vfm_msgb b;

	vfm_msg_init(&b, hs->frame, sizeof(hs->frame), VFM_MSG_HELLO);
	vfm_hello_put(&b, &hs->mine);
	return send_frame(hs, &b, false);
}

int vfm_hs_start(struct vfm_hs *hs)
{
	if (hs->state != VFM_HS_INIT)
		return hs->error ? hs->error : -EALREADY;
	hs->state = VFM_HS_WAIT_HELLO;
	if (hs->role == VFM_ROLE_DESTINATION)
		return 0;
	return send_hello(hs);
}

static int on_hello(struct vfm_hs *hs, const struct vfm_msg *m, size_t len)
{
	struct vfm_err err;
	int ret;

	ret = vfm_hello_decode(m, &hs->peer, &err);
	if (ret)
		return fail(hs, ret, VFM_ABORT_MALFORMED,
			    "the peer's HELLO: %s", err.msg);
	if (hs->peer.role == hs->role)
		return fail(hs, -EPROTO, VFM_ABORT_PROTOCOL,
			    "both sides are the %s", vfm_role_name(hs->role));
	if (hash_frame(hs, m->frame, len))
		return hs->error;
	if (hs->role == VFM_ROLE_DESTINATION) {
		if (zero_id(hs->mine.migration_id))
			memcpy(hs->mine.migration_id, hs->peer.migration_id,
			       VFM_MIGRATION_ID_LEN);
		/* Answer even without a common version: the source then
		 * learns this side's range and says why itself. */
		ret = send_hello(hs);
		if (ret)
			return ret;
	}
	if (memcmp(hs->mine.migration_id, hs->peer.migration_id,
		   VFM_MIGRATION_ID_LEN))
		return fail(
			hs, -EPROTO, VFM_ABORT_PROTOCOL,
			"the peer is set up for another migration (migration ids differ)");
	ret = vfm_proto_negotiate(&hs->mine, &hs->peer, &hs->version,
				  &hs->features, &err);
	if (ret)
		return fail(hs, ret, VFM_ABORT_PROTOCOL, "%s", err.msg);
	hs->state = VFM_HS_WAIT_AUTH;
	if (hs->role == VFM_ROLE_SOURCE) {
		struct vfm_msgb b;

		vfm_msg_init(&b, hs->frame, sizeof(hs->frame), VFM_MSG_AUTH);
		return send_frame(hs, &b, true);
	}
	return 0;
}

static int send_offer(struct vfm_hs *hs)
{
	struct vfm_msgb b;

	vfm_msg_init(&b, hs->frame, sizeof(hs->frame), VFM_MSG_OFFER);
	vfm_offer_put(&b, &hs->offer);
	return send_frame(hs, &b, true);
}

static int on_auth(struct vfm_hs *hs, const struct vfm_msg *m, size_t len)
{
	struct vfm_auth a;
	struct vfm_err err;
	struct vfm_msgb b;
	int ret;

	ret = vfm_auth_decode(m, &a, &err);
	if (ret)
		return fail(hs, ret, VFM_ABORT_MALFORMED, "the peer's AUTH: %s",
			    err.msg);
	ret = verify_frame(hs, m, len);
	if (ret)
		return ret;
	if (hs->role == VFM_ROLE_SOURCE) {
		hs->state = VFM_HS_WAIT_VERDICT;
		return send_offer(hs);
	}
	hs->state = VFM_HS_WAIT_OFFER;
	vfm_msg_init(&b, hs->frame, sizeof(hs->frame), VFM_MSG_AUTH);
	return send_frame(hs, &b, true);
}

static int finish(struct vfm_hs *hs)
{
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_MD_CTX_copy_ex(c, hs->transcript) &&
		 EVP_DigestFinal_ex(c, hs->final_hash, &n);

	EVP_MD_CTX_free(c);
	if (!ok || derive_session_keys(hs))
		return fail(hs, -EIO, VFM_ABORT_INTERNAL,
			    "hashing the handshake transcript failed");
	hs->state = VFM_HS_DONE;
	return 0;
}

/* A device set: each further pair's own verdict, then the set's rules in
 * the first device's verdict (vfm_compat_eval_set). */
static int eval_set(struct vfm_hs *hs)
{
	const struct vfm_desc *src[VFM_SET_MAX], *dst[VFM_SET_MAX];
	struct vfm_verdict_msg *vm = &hs->verdict;
	unsigned int nsrc = hs->offer.nmore + 1, ndst = hs->nmore + 1;
	bool members[VFM_SET_MAX - 1];

	src[0] = &hs->offer.desc;
	dst[0] = &hs->desc;
	for (unsigned int i = 1; i < nsrc; i++)
		src[i] = &hs->offer.more[i - 1];
	for (unsigned int i = 1; i < ndst; i++)
		dst[i] = &hs->more[i - 1];
	vm->nmore = (nsrc < ndst ? nsrc : ndst) - 1;
	if (vm->nmore) {
		vm->more = calloc(VFM_SET_MAX - 1, sizeof(*vm->more));
		if (!vm->more) {
			vm->nmore = 0;
			return -ENOMEM;
		}
	}
	for (unsigned int i = 0; i < vm->nmore; i++) {
		int ret = vfm_compat_eval(src[i + 1], dst[i + 1],
					  &vm->more[i].verdict);

		if (ret)
			return ret;
		vm->more[i].desc = *dst[i + 1];
		members[i] = vm->more[i].verdict.accept;
	}
	vfm_compat_eval_set(src, nsrc, dst, ndst, members, vm->nmore,
			    &vm->verdict);
	return 0;
}

static int on_offer(struct vfm_hs *hs, const struct vfm_msg *m, size_t len)
{
	const char *req[VFM_DESC_FEATURES_MAX];
	struct vfm_err err;
	struct vfm_msgb b;
	int ret;

	ret = vfm_offer_decode(m, &hs->offer, &err);
	if (ret)
		return fail(hs, ret, VFM_ABORT_MALFORMED,
			    "the peer's OFFER: %s", err.msg);
	ret = verify_frame(hs, m, len);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < hs->offer.nreq; i++)
		req[i] = hs->offer.req[i];
	ret = vfm_compat_eval_req(&hs->offer.desc, &hs->desc, req,
				  hs->offer.nreq, &hs->verdict.verdict);
	if (!ret)
		ret = eval_set(hs);
	if (ret)
		return fail(hs, ret, VFM_ABORT_INTERNAL,
			    "evaluating compatibility failed");
	hs->verdict.desc = hs->desc;
	vfm_msg_init(&b, hs->frame, sizeof(hs->frame), VFM_MSG_VERDICT);
	vfm_verdict_put(&b, &hs->verdict);
	ret = send_frame(hs, &b, true);
	return ret ? ret : finish(hs);
}

static int on_verdict(struct vfm_hs *hs, const struct vfm_msg *m, size_t len)
{
	struct vfm_err err;
	int ret;

	ret = vfm_verdict_decode(m, &hs->verdict, &err);
	if (ret)
		return fail(hs, ret, VFM_ABORT_MALFORMED,
			    "the peer's VERDICT: %s", err.msg);
	ret = verify_frame(hs, m, len);
	return ret ? ret : finish(hs);
}

static int on_abort(struct vfm_hs *hs, const struct vfm_msg *m)
{
	struct vfm_abort a;
	struct vfm_err err;
	int error;

	if (vfm_abort_decode(m, &a, &err))
		return fail(
			hs, -EPROTO, 0,
			"the peer aborted the handshake (its reason could not be read: %s)",
			err.msg);
	switch (a.reason) {
	case VFM_ABORT_AUTH:
		error = -EACCES;
		break;
	case VFM_ABORT_PROTOCOL:
		error = -EPROTO;
		break;
	case VFM_ABORT_CANCELLED:
		error = -ECANCELED;
		break;
	default:
		error = -EPROTO;
	}
	return fail(hs, error, 0, "the %s aborted the handshake (%s): %s",
		    vfm_role_name(hs->peer.role ? hs->peer.role :
				  hs->role == VFM_ROLE_SOURCE ?
						  VFM_ROLE_DESTINATION :
						  VFM_ROLE_SOURCE),
		    vfm_abort_reason_name(a.reason), a.text);
}

int vfm_hs_recv(struct vfm_hs *hs, const void *frame, size_t len)
{
	struct vfm_msg m;
	struct vfm_err err;
	int ret;

	if (hs->state == VFM_HS_FAILED)
		return hs->error;
	if (hs->state == VFM_HS_DONE || hs->state == VFM_HS_INIT)
		return -EINVAL; /* not a protocol event: the caller's mistake */
	ret = vfm_msg_parse(frame, len, &m, &err);
	if (ret)
		return fail(hs, ret, VFM_ABORT_MALFORMED,
			    "malformed frame from the peer: %s", err.msg);
	if (m.type == VFM_MSG_ABORT)
		return on_abort(hs, &m);
	switch (hs->state) {
	case VFM_HS_WAIT_HELLO:
		if (m.type == VFM_MSG_HELLO)
			return on_hello(hs, &m, len);
		break;
	case VFM_HS_WAIT_AUTH:
		if (m.type == VFM_MSG_AUTH)
			return on_auth(hs, &m, len);
		break;
	case VFM_HS_WAIT_OFFER:
		if (m.type == VFM_MSG_OFFER)
			return on_offer(hs, &m, len);
		break;
	case VFM_HS_WAIT_VERDICT:
		if (m.type == VFM_MSG_VERDICT)
			return on_verdict(hs, &m, len);
		break;
	default:
		break;
	}
	return fail(hs, -EPROTO, VFM_ABORT_PROTOCOL,
		    "unexpected %s (0x%02x) from the peer while waiting for %s",
		    vfm_msg_type_name(m.type), m.type,
		    vfm_hs_state_name(hs->state));
}

size_t vfm_hs_output(const struct vfm_hs *hs, const uint8_t **buf)
{
	*buf = hs->out;
	return hs->out_len;
}

void vfm_hs_consumed(struct vfm_hs *hs, size_t n)
{
	if (n >= hs->out_len) {
		hs->out_len = 0;
		return;
	}
	memmove(hs->out, hs->out + n, hs->out_len - n);
	hs->out_len -= n;
}

enum vfm_hs_state vfm_hs_state(const struct vfm_hs *hs)
{
	return hs->state;
}

const char *vfm_hs_state_name(enum vfm_hs_state s)
{
	switch (s) {
	case VFM_HS_INIT:
		return "start";
	case VFM_HS_WAIT_HELLO:
		return "HELLO";
	case VFM_HS_WAIT_AUTH:
		return "AUTH";
	case VFM_HS_WAIT_OFFER:
		return "OFFER";
	case VFM_HS_WAIT_VERDICT:
		return "VERDICT";
	case VFM_HS_DONE:
		return "done";
	case VFM_HS_FAILED:
		return "failed";
	}
	return "unknown";
}

bool vfm_hs_done(const struct vfm_hs *hs)
{
	return hs->state == VFM_HS_DONE;
}

bool vfm_hs_failed(const struct vfm_hs *hs)
{
	return hs->state == VFM_HS_FAILED;
}

int vfm_hs_error(const struct vfm_hs *hs)
{
	return hs->error;
}

const char *vfm_hs_reason(const struct vfm_hs *hs)
{
	return hs->reason;
}

uint16_t vfm_hs_version(const struct vfm_hs *hs)
{
	return hs->version;
}

uint64_t vfm_hs_features(const struct vfm_hs *hs)
{
	return hs->features;
}

const struct vfm_hello *vfm_hs_peer_hello(const struct vfm_hs *hs)
{
	return &hs->peer;
}

const uint8_t *vfm_hs_migration_id(const struct vfm_hs *hs)
{
	return hs->mine.migration_id;
}

const struct vfm_offer *vfm_hs_offer(const struct vfm_hs *hs)
{
	return &hs->offer;
}

const struct vfm_verdict *vfm_hs_verdict(const struct vfm_hs *hs)
{
	return hs->state == VFM_HS_DONE ? &hs->verdict.verdict : NULL;
}

unsigned int vfm_hs_set_size(const struct vfm_hs *hs)
{
	return hs->nmore + 1;
}

int vfm_hs_member(const struct vfm_hs *hs, unsigned int i,
		  const struct vfm_desc **src, const struct vfm_desc **dst,
		  const struct vfm_verdict **v)
{
	const struct vfm_verdict_msg *vm = &hs->verdict;
	bool source = hs->role == VFM_ROLE_SOURCE;

	if (hs->state != VFM_HS_DONE || i > vm->nmore)
		return -ENOENT;
	if (!i) {
		*src = source ? &hs->desc : &hs->offer.desc;
		*dst = &vm->desc;
		*v = &vm->verdict;
		return 0;
	}
	if (i > (source ? hs->nmore : hs->offer.nmore))
		return -ENOENT;
	*src = source ? &hs->more[i - 1] : &hs->offer.more[i - 1];
	*dst = &vm->more[i - 1].desc;
	*v = &vm->more[i - 1].verdict;
	return 0;
}

const struct vfm_desc *vfm_hs_peer_desc(const struct vfm_hs *hs)
{
	if (hs->state != VFM_HS_DONE)
		return NULL;
	return hs->role == VFM_ROLE_SOURCE ? &hs->verdict.desc :
					     &hs->offer.desc;
}

int vfm_hs_seal(struct vfm_hs *hs, uint8_t *frame, size_t len)
{
	int ret;

	if (hs->state != VFM_HS_DONE)
		return -EINVAL;
	if (!mac_is_last(frame, len))
		return -EINVAL;
	ret = mac_frame(hs, hs->role, frame[4], frame, len, &hs->seal_seq,
			frame + len - VFM_MAC_LEN);
	if (!ret)
		hs->seal_seq++;
	return ret;
}

int vfm_hs_verify(struct vfm_hs *hs, const uint8_t *frame, size_t len)
{
	enum vfm_role peer = hs->role == VFM_ROLE_SOURCE ?
				     VFM_ROLE_DESTINATION :
				     VFM_ROLE_SOURCE;
	uint8_t mac[VFM_MAC_LEN];
	int ret;

	if (hs->state != VFM_HS_DONE)
		return -EINVAL;
	if (!mac_is_last(frame, len))
		return -EBADMSG;
	ret = mac_frame(hs, peer, frame[4], frame, len, &hs->verify_seq, mac);
	if (ret)
		return ret;
	if (CRYPTO_memcmp(mac, frame + len - VFM_MAC_LEN, VFM_MAC_LEN))
		return -EACCES;
	hs->verify_seq++;
	return 0;
}
