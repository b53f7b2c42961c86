// SPDX-License-Identifier: MIT
/*
 * The handshake state machine: two sessions in memory. Accept, refuse with
 * every reason, wrong secret, no common protocol version, tampering, the
 * golden transcript, and sealing the agent's later messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_test_util.h"

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other_secret[32] = "0123456789abcdef0123456789abcdeX";
static uint8_t nonce_s[VFM_NONCE_LEN], nonce_d[VFM_NONCE_LEN];
static struct vfm_desc src_desc, dst_desc;

struct pair {
	struct vfm_hs *s, *d;
	/* every frame that crossed, in order, for the golden transcript */
	unsigned int nframes;
	size_t len[8];
	uint8_t frame[8][VFM_WIRE_FRAME_MAX];
};

static void cfg_for(struct vfm_hs_cfg *c, enum vfm_role role)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->secret = secret;
	c->secret_len = sizeof(secret);
	c->features = VFM_PFEAT_TCP | VFM_PFEAT_PRE_COPY | VFM_PFEAT_MMAP;
	if (role == VFM_ROLE_SOURCE) {
		pt_fill(c->migration_id, sizeof(c->migration_id), 0xa0);
		c->desc = &src_desc;
		c->nonce = nonce_s;
		c->transport = "tcp";
		c->streams = 4;
	} else {
		c->desc = &dst_desc;
		c->nonce = nonce_d;
	}
}

static struct pair *new_pair(const struct vfm_hs_cfg *sc,
			     const struct vfm_hs_cfg *dc)
{
	struct pair *p = calloc(1, sizeof(*p));
	struct vfm_err e;

	assert_non_null(p);
	assert_int_equal(vfm_hs_new(&p->s, sc, &e), 0);
	assert_int_equal(vfm_hs_new(&p->d, dc, &e), 0);
	assert_int_equal(vfm_hs_start(p->s), 0);
	assert_int_equal(vfm_hs_start(p->d), 0);
	return p;
}

static void free_pair(struct pair *p)
{
	vfm_hs_free(p->s);
	vfm_hs_free(p->d);
	free(p);
}

/* Move every queued frame from @a to @b; returns frames moved. */
static int shuttle(struct pair *p, struct vfm_hs *a, struct vfm_hs *b)
{
	const uint8_t *out;
	size_t n = vfm_hs_output(a, &out), off = 0, flen;
	int moved = 0;

	while (off < n) {
		assert_int_equal(
			vfm_frame_peek(out + off, n - off, &flen, NULL), 0);
		assert_true(flen <= n - off);
		if (p->nframes < 8) {
			memcpy(p->frame[p->nframes], out + off, flen);
			p->len[p->nframes++] = flen;
		}
		vfm_hs_recv(b, out + off, flen);
		off += flen;
		moved++;
	}
	vfm_hs_consumed(a, n);
	return moved;
}

static void run(struct pair *p)
{
	for (int i = 0; i < 20; i++)
		if (!shuttle(p, p->s, p->d) + !shuttle(p, p->d, p->s) == 2)
			return;
	fail_msg("the handshake did not settle");
}

static int setup(void **state)
{
	pt_fill(nonce_s, sizeof(nonce_s), 0x01);
	pt_fill(nonce_d, sizeof(nonce_d), 0x80);
	pt_desc_edu(&src_desc, "2.0.3");
	pt_desc_edu(&dst_desc, "2.0.4");
	return 0;
}

static void test_accept(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;
	const struct vfm_verdict *v;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	dc.features = VFM_PFEAT_TCP | VFM_PFEAT_RDMA | VFM_PFEAT_PRE_COPY;
	p = new_pair(&sc, &dc);
	run(p);
	assert_true(vfm_hs_done(p->s));
	assert_true(vfm_hs_done(p->d));
	assert_int_equal(p->nframes, 6);
	static const uint8_t order[] = { VFM_MSG_HELLO, VFM_MSG_HELLO,
					 VFM_MSG_AUTH,	VFM_MSG_AUTH,
					 VFM_MSG_OFFER, VFM_MSG_VERDICT };
	for (int i = 0; i < 6; i++)
		assert_int_equal(p->frame[i][4], order[i]);

	assert_int_equal(vfm_hs_version(p->s), 1);
	assert_int_equal(vfm_hs_version(p->d), 1);
	assert_int_equal(vfm_hs_features(p->s),
			 VFM_PFEAT_TCP | VFM_PFEAT_PRE_COPY);
	assert_int_equal(vfm_hs_features(p->d), vfm_hs_features(p->s));
	assert_memory_equal(vfm_hs_peer_hello(p->s)->nonce, nonce_d,
			    VFM_NONCE_LEN);
	assert_memory_equal(vfm_hs_peer_hello(p->d)->nonce, nonce_s,
			    VFM_NONCE_LEN);
	/* the destination adopted the source's migration id */
	assert_memory_equal(vfm_hs_migration_id(p->d), sc.migration_id,
			    VFM_MIGRATION_ID_LEN);
	/* the destination saw the offer, the source the destination */
	assert_string_equal(vfm_hs_offer(p->d)->transport, "tcp");
	assert_int_equal(vfm_hs_offer(p->d)->streams, 4);
	assert_int_equal(vfm_hs_offer(p->d)->nreq, 3);
	assert_memory_equal(vfm_hs_peer_desc(p->d), &src_desc,
			    sizeof(src_desc));
	assert_memory_equal(vfm_hs_peer_desc(p->s), &dst_desc,
			    sizeof(dst_desc));
	v = vfm_hs_verdict(p->s);
	assert_non_null(v);
	assert_true(v->accept);
	assert_int_equal(v->nresults, 6);
	assert_memory_equal(v, vfm_hs_verdict(p->d), sizeof(*v));
	assert_int_equal(vfm_hs_error(p->s), 0);
	assert_string_equal(vfm_hs_reason(p->s), "");
	/* frames after DONE are the caller's mistake, not a failure */
	assert_int_equal(vfm_hs_recv(p->s, p->frame[5], p->len[5]), -EINVAL);
	assert_true(vfm_hs_done(p->s));
	free_pair(p);
}

/* The refused verdict reaches the source with every reason. */
static void test_refused(void **state)
{
	struct vfm_desc s, d;
	struct vfm_hs_cfg sc, dc;
	struct pair *p;
	const struct vfm_verdict *v;
	const char *req[] = { "pre_copy", "dirty_log" };
	struct vfm_err e;

	pt_desc_gfx(&s, false);
	pt_desc_gfx(&d, true);
	assert_int_equal(vfm_desc_set_version(&s, "4.0", &e), 0);
	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	sc.desc = &s;
	sc.req = req;
	sc.nreq = 2;
	dc.desc = &d;
	p = new_pair(&sc, &dc);
	run(p);
	assert_true(vfm_hs_done(p->s));
	assert_true(vfm_hs_done(p->d));
	v = vfm_hs_verdict(p->s);
	assert_false(v->accept);
	assert_int_equal(vfm_verdict_failures(v), 3);
	assert_int_equal(v->r[1].code, VFM_COMPAT_VERSION_INCOMPATIBLE);
	assert_int_equal(v->r[2].code, VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED);
	assert_string_equal(
		v->r[2].sentence,
		"source parameter memory=4096 is not allowed at the destination (allowed: 8192)");
	assert_int_equal(v->r[3].code, VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF);
	assert_int_equal(v->r[5].code, VFM_COMPAT_FEATURE_UNSUPPORTED);
	assert_string_equal(v->r[5].subject, "dirty_log");
	assert_int_equal(v->nnotes, 1);
	assert_memory_equal(v, vfm_hs_verdict(p->d), sizeof(*v));
	free_pair(p);
}

static void test_wrong_secret(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	dc.secret = other_secret;
	p = new_pair(&sc, &dc);
	run(p);
	assert_true(vfm_hs_failed(p->d));
	assert_true(vfm_hs_failed(p->s));
	assert_int_equal(vfm_hs_error(p->d), -EACCES);
	assert_int_equal(vfm_hs_error(p->s), -EACCES);
	assert_non_null(strstr(vfm_hs_reason(p->d), "authentication failed"));
	assert_non_null(strstr(vfm_hs_reason(p->s), "(auth)"));
	assert_non_null(strstr(vfm_hs_reason(p->s), "authentication failed"));
	assert_null(vfm_hs_verdict(p->s));
	/* no OFFER was ever sent: nothing about the device left the source */
	for (unsigned int i = 0; i < p->nframes; i++)
		assert_int_not_equal(p->frame[i][4], VFM_MSG_OFFER);
	free_pair(p);
}

static void test_no_common_version(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	sc.proto_min = 1, sc.proto_max = 1;
	dc.proto_min = 2, dc.proto_max = 3;
	p = new_pair(&sc, &dc);
	run(p);
	assert_int_equal(vfm_hs_error(p->s), -EPROTONOSUPPORT);
	assert_int_equal(vfm_hs_error(p->d), -EPROTONOSUPPORT);
	assert_string_equal(
		vfm_hs_reason(p->s),
		"no common handshake protocol version: this side speaks 1-1, the peer 2-3");
	free_pair(p);

	/* overlap: the highest common version wins */
	sc.proto_max = 2;
	p = new_pair(&sc, &dc);
	run(p);
	assert_true(vfm_hs_done(p->s));
	assert_int_equal(vfm_hs_version(p->s), 2);
	assert_int_equal(vfm_hs_version(p->d), 2);
	free_pair(p);
}

static void test_migration_id_and_roles(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;
	struct vfm_hs *hs;
	struct vfm_err e;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	pt_fill(dc.migration_id, sizeof(dc.migration_id), 0x11);
	p = new_pair(&sc, &dc);
	run(p);
	assert_int_equal(vfm_hs_error(p->d), -EPROTO);
	assert_non_null(strstr(vfm_hs_reason(p->d), "migration ids differ"));
	assert_true(vfm_hs_failed(p->s));
	free_pair(p);

	/* two sources */
	cfg_for(&dc, VFM_ROLE_SOURCE);
	pt_fill(dc.migration_id, sizeof(dc.migration_id), 0xa0);
	p = new_pair(&sc, &dc);
	shuttle(p, p->s, p->d); /* d (a source too) waits for a HELLO */
	assert_int_equal(vfm_hs_error(p->d), -EPROTO);
	assert_non_null(strstr(vfm_hs_reason(p->d), "both sides"));
	free_pair(p);

	/* configuration errors */
	cfg_for(&sc, VFM_ROLE_SOURCE);
	sc.secret_len = 8;
	assert_int_equal(vfm_hs_new(&hs, &sc, &e), -EINVAL);
	cfg_for(&sc, VFM_ROLE_SOURCE);
	memset(sc.migration_id, 0, sizeof(sc.migration_id));
	assert_int_equal(vfm_hs_new(&hs, &sc, &e), -EINVAL);
	cfg_for(&sc, VFM_ROLE_SOURCE);
	sc.desc = NULL;
	assert_int_equal(vfm_hs_new(&hs, &sc, &e), -EINVAL);
	cfg_for(&sc, VFM_ROLE_SOURCE);
	sc.transport = "a-transport-name-too-long";
	assert_int_equal(vfm_hs_new(&hs, &sc, &e), -ENAMETOOLONG);
	/* a random nonce when none is given */
	cfg_for(&sc, VFM_ROLE_SOURCE);
	sc.nonce = NULL;
	assert_int_equal(vfm_hs_new(&hs, &sc, &e), 0);
	vfm_hs_free(hs);
}

static void test_unexpected_and_malformed(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;
	uint8_t junk[16] = "not a frame....";

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	p = new_pair(&sc, &dc);
	/* garbage instead of a HELLO */
	{
		const uint8_t *out;

		assert_int_equal(vfm_hs_recv(p->d, junk, sizeof(junk)),
				 -EBADMSG);
		assert_non_null(strstr(vfm_hs_reason(p->d), "malformed frame"));
		/* it queued an ABORT for the peer */
		assert_true(vfm_hs_output(p->d, &out) > 0);
		assert_int_equal(out[4], VFM_MSG_ABORT);
	}
	free_pair(p);

	/* an OFFER before AUTH */
	p = new_pair(&sc, &dc);
	run(p);
	{
		uint8_t offer[VFM_WIRE_FRAME_MAX];
		size_t len = p->len[4];
		struct pair *q = new_pair(&sc, &dc);

		memcpy(offer, p->frame[4], len);
		shuttle(q, q->s, q->d);
		assert_int_equal(vfm_hs_recv(q->d, offer, len), -EPROTO);
		assert_non_null(
			strstr(vfm_hs_reason(q->d), "unexpected OFFER"));
		free_pair(q);
	}
	free_pair(p);
}

/* A HELLO from a newer peer: unknown optional TLVs are skipped, an unknown
 * mandatory one refuses the handshake with a reason naming it. */
static void test_unknown_tlvs(void **state)
{
	struct vfm_hs_cfg dc;
	struct vfm_hello h;
	struct vfm_hs *d;
	struct vfm_msgb b;
	struct vfm_err e;
	uint8_t f[256];
	const uint8_t *out;
	size_t len;

	pt_hello(&h);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	assert_int_equal(vfm_hs_new(&d, &dc, &e), 0);
	vfm_hs_start(d);
	vfm_msg_init(&b, f, sizeof(f), VFM_MSG_HELLO);
	vfm_msg_put_str(&b, 0x70, "optional extension");
	vfm_hello_put(&b, &h);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(vfm_hs_recv(d, f, len), 0);
	assert_int_equal(vfm_hs_state(d), VFM_HS_WAIT_AUTH);
	assert_true(vfm_hs_output(d, &out) > 0);
	assert_int_equal(out[4], VFM_MSG_HELLO);
	vfm_hs_free(d);

	assert_int_equal(vfm_hs_new(&d, &dc, &e), 0);
	vfm_hs_start(d);
	vfm_msg_put_str(&b, VFM_TLV_MANDATORY | 0x70, "must understand");
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(vfm_hs_recv(d, f, len), -EPROTO);
	assert_string_equal(
		vfm_hs_reason(d),
		"the peer's HELLO: unknown mandatory TLV 0x8070 (type 112) in HELLO");
	assert_true(vfm_hs_output(d, &out) > 0);
	assert_int_equal(out[4], VFM_MSG_ABORT);
	vfm_hs_free(d);
}

/* Any single-byte change to a sealed frame from the destination makes the
 * source fail: nothing forged is ever accepted. */
static void test_tampering(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *ref;
	unsigned long refused = 0;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	ref = new_pair(&sc, &dc);
	run(ref);
	assert_true(vfm_hs_done(ref->s));
	/* frame 3 is the destination's AUTH, 5 its VERDICT */
	for (int which = 3; which <= 5; which += 2) {
		for (size_t pos = 0; pos < ref->len[which]; pos++) {
			static uint8_t bad[VFM_WIRE_FRAME_MAX];
			struct vfm_hs *s;
			struct vfm_err e;

			assert_int_equal(vfm_hs_new(&s, &sc, &e), 0);
			vfm_hs_start(s);
			for (int i = 1; i < which; i += 2)
				vfm_hs_recv(s, ref->frame[i], ref->len[i]);
			memcpy(bad, ref->frame[which], ref->len[which]);
			bad[pos] ^= 0x20;
			assert_true(vfm_hs_recv(s, bad, ref->len[which]) < 0);
			assert_true(vfm_hs_failed(s));
			assert_null(vfm_hs_verdict(s));
			refused++;
			vfm_hs_free(s);
		}
	}
	print_message("tampered frames refused: %lu\n", refused);
	free_pair(ref);
}

/* The stream format through a whole handshake: an old destination (its
 * descriptor states no formats) gets format 1, a new one format 2. */
static void test_stream_format(void **state)
{
	struct vfm_desc s = src_desc, d = dst_desc;
	struct vfm_hs_cfg sc, dc;
	struct pair *p;

	pt_must(vfm_desc_set_stream_formats(&s, "1,2", NULL), NULL);
	for (int i = 0; i < 2; i++) {
		const struct vfm_verdict *v;

		if (i)
			pt_must(vfm_desc_set_stream_formats(&d, "1,2", NULL),
				NULL);
		cfg_for(&sc, VFM_ROLE_SOURCE);
		cfg_for(&dc, VFM_ROLE_DESTINATION);
		sc.desc = &s;
		dc.desc = &d;
		p = new_pair(&sc, &dc);
		run(p);
		assert_true(vfm_hs_done(p->s));
		v = vfm_hs_verdict(p->s);
		assert_true(v->accept);
		assert_int_equal(v->r[v->nresults - 1].code,
				 VFM_COMPAT_STREAM_FORMAT_COMMON);
		/* both sides know the formats of the other */
		assert_int_equal(vfm_hs_peer_desc(p->d)->stream_formats,
				 s.stream_formats);
		assert_int_equal(vfm_hs_peer_desc(p->s)->stream_formats,
				 d.stream_formats);
		assert_int_equal(vfm_stream_format_pick(&s,
							vfm_hs_peer_desc(p->s)),
				 i ? 2 : 1);
		free_pair(p);
	}
}

/* The whole transcript is deterministic with fixed nonces: golden. */
static void test_golden_transcript(void **state)
{
	static const char *const names[] = {
		"hs-1-hello-src", "hs-2-hello-dst", "hs-3-auth-src",
		"hs-4-auth-dst",  "hs-5-offer-src", "hs-6-verdict-dst"
	};
	static uint8_t gold[VFM_WIRE_FRAME_MAX];
	bool update = getenv("VFM_GOLDEN_UPDATE") != NULL;
	struct vfm_hs_cfg sc, dc;
	struct pair *p;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	p = new_pair(&sc, &dc);
	run(p);
	assert_int_equal(p->nframes, 6);
	for (int i = 0; i < 6; i++) {
		char path[512];
		long n;

		snprintf(path, sizeof(path), "%s/%s.hex", VFM_GOLDEN_DIR,
			 names[i]);
		if (update) {
			assert_int_equal(
				pt_hex_write(path, p->frame[i], p->len[i]), 0);
			continue;
		}
		n = pt_hex_read(path, gold, sizeof(gold));
		if (n < 0)
			fail_msg("%s: cannot read (%ld)", path, n);
		if ((size_t)n != p->len[i] ||
		    memcmp(gold, p->frame[i], p->len[i]))
			fail_msg(
				"%s: the handshake encoding differs from the golden "
				"vector. If that is on purpose, run "
				"VFM_GOLDEN_UPDATE=1 test_proto_handshake",
				path);
	}
	free_pair(p);
}

/* The agent's messages after the handshake, sealed per direction. */
static void test_seal_after_handshake(void **state)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;
	uint8_t f[128];
	struct vfm_msgb b;
	size_t len;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	p = new_pair(&sc, &dc);
	assert_int_equal(vfm_hs_seal(p->s, f, sizeof(f)), -EINVAL);
	run(p);
	vfm_msg_init(&b, f, sizeof(f), 0x41);
	vfm_msg_put_u32(&b, 1, 7);
	vfm_msg_put(&b, VFM_TLV_MANDATORY | VFM_TLV_MAC,
		    (const uint8_t[VFM_MAC_LEN]){ 0 }, VFM_MAC_LEN);
	assert_int_equal(vfm_msg_finish(&b, &len), 0);
	assert_int_equal(vfm_hs_seal(p->s, f, len), 0);
	assert_int_equal(vfm_hs_verify(p->d, f, len), 0);
	/* a replay does not verify: the counter moved on */
	assert_int_equal(vfm_hs_verify(p->d, f, len), -EACCES);
	/* a frame without a trailing MAC cannot be sealed */
	assert_int_equal(vfm_hs_seal(p->s, f,
				     len - VFM_TLV_HDR_LEN - VFM_MAC_LEN),
			 -EINVAL);
	free_pair(p);

	/* both directions at once, in any interleaving */
	p = new_pair(&sc, &dc);
	run(p);
	{
		uint8_t a[128], c[128];
		size_t la, lc;

		vfm_msg_init(&b, a, sizeof(a), 0x41);
		vfm_msg_put(&b, VFM_TLV_MANDATORY | VFM_TLV_MAC,
			    (const uint8_t[VFM_MAC_LEN]){ 0 }, VFM_MAC_LEN);
		vfm_msg_finish(&b, &la);
		vfm_msg_init(&b, c, sizeof(c), 0x41);
		vfm_msg_put(&b, VFM_TLV_MANDATORY | VFM_TLV_MAC,
			    (const uint8_t[VFM_MAC_LEN]){ 0 }, VFM_MAC_LEN);
		vfm_msg_finish(&b, &lc);
		assert_int_equal(vfm_hs_seal(p->s, a, la), 0);
		assert_int_equal(vfm_hs_seal(p->d, c, lc), 0);
		/* same bytes, other sender: different MACs */
		assert_memory_not_equal(a, c, la);
		assert_int_equal(vfm_hs_verify(p->s, c, lc), 0);
		assert_int_equal(vfm_hs_verify(p->d, a, la), 0);
		a[la - 1] ^= 1;
		assert_int_equal(vfm_hs_verify(p->d, a, la), -EACCES);
		assert_int_equal(vfm_hs_verify(p->d, a, 20), -EBADMSG);
	}
	free_pair(p);
}

/* A device set: one handshake pairs every device in order. */
static struct pair *set_pair(struct vfm_desc *s, unsigned int ns,
			     struct vfm_desc *d, unsigned int nd)
{
	struct vfm_hs_cfg sc, dc;
	struct pair *p;

	cfg_for(&sc, VFM_ROLE_SOURCE);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	sc.desc = s;
	sc.ndesc = ns;
	dc.desc = d;
	dc.ndesc = nd;
	p = new_pair(&sc, &dc);
	run(p);
	assert_true(vfm_hs_done(p->s));
	assert_true(vfm_hs_done(p->d));
	return p;
}

/* The code of the last rule of @v with code >= @from, 0 if none. */
static bool has_rule(const struct vfm_verdict *v, uint16_t code)
{
	for (unsigned int i = 0; i < v->nresults; i++)
		if (v->r[i].code == code)
			return true;
	return false;
}

static void test_set_accept(void **state)
{
	static struct vfm_desc s[3], d[3];
	struct pair *p;
	struct vfm_err e;

	for (int i = 0; i < 3; i++) {
		pt_desc_edu(&s[i], "2.0.3");
		pt_desc_edu(&d[i], "2.0.4");
		pt_must(vfm_desc_set_param(&s[i], "memory", i ? "16" : "32",
					   &e),
			&e);
	}
	p = set_pair(s, 3, d, 3);
	assert_int_equal(vfm_hs_set_size(p->s), 3);
	assert_int_equal(vfm_hs_set_size(p->d), 3);
	assert_int_equal(vfm_hs_offer(p->d)->nmore, 2);
	for (unsigned int i = 0; i < 3; i++) {
		const struct vfm_desc *a, *b, *a2, *b2;
		const struct vfm_verdict *v, *v2;

		assert_int_equal(vfm_hs_member(p->s, i, &a, &b, &v), 0);
		assert_int_equal(vfm_hs_member(p->d, i, &a2, &b2, &v2), 0);
		/* both sides see the same pairs and verdicts, in order */
		assert_memory_equal(a, &s[i], sizeof(*a));
		assert_memory_equal(a2, &s[i], sizeof(*a));
		assert_memory_equal(b, &d[i], sizeof(*b));
		assert_memory_equal(b2, &d[i], sizeof(*b));
		assert_memory_equal(v, v2, sizeof(*v));
		assert_true(v->accept);
		assert_int_equal(has_rule(v, VFM_COMPAT_SET_P2P), i == 0);
	}
	{
		const struct vfm_desc *a, *b;
		const struct vfm_verdict *v;

		assert_int_equal(vfm_hs_member(p->s, 3, &a, &b, &v), -ENOENT);
		v = vfm_hs_verdict(p->s);
		assert_true(has_rule(v, VFM_COMPAT_SET_SIZE_MATCH));
		assert_true(has_rule(v, VFM_COMPAT_SET_MEMBERS_ACCEPTED));
	}
	free_pair(p);
}

/* One bad pair refuses the set: verdicts for every pair, the reason in
 * the first device's verdict too. */
static void test_set_refused(void **state)
{
	static struct vfm_desc s[3], d[3];
	const struct vfm_desc *a, *b;
	const struct vfm_verdict *v, *m;
	struct pair *p;
	struct vfm_err e;

	for (int i = 0; i < 3; i++) {
		pt_desc_edu(&s[i], "2.0.3");
		pt_desc_edu(&d[i], "2.0.4");
	}
	pt_must(vfm_desc_set_compatible(&d[2], "2.1.0-2.1.9", &e), &e);
	p = set_pair(s, 3, d, 3);
	v = vfm_hs_verdict(p->s);
	assert_false(v->accept);
	assert_int_equal(vfm_verdict_failures(v), 1);
	assert_int_equal(v->r[v->nresults - 1].code,
			 VFM_COMPAT_SET_MEMBER_REFUSED);
	assert_non_null(strstr(v->r[v->nresults - 1].sentence, "device 3"));
	assert_int_equal(vfm_hs_member(p->s, 1, &a, &b, &m), 0);
	assert_true(m->accept);
	assert_int_equal(vfm_hs_member(p->s, 2, &a, &b, &m), 0);
	assert_false(m->accept);
	assert_int_equal(m->r[1].code, VFM_COMPAT_VERSION_INCOMPATIBLE);
	free_pair(p);

	/* Sizes differ: 2 source devices, 3 at the destination. */
	pt_must(vfm_desc_set_compatible(&d[2], "2.0.0-2.0.9", &e), &e);
	p = set_pair(s, 2, d, 3);
	v = vfm_hs_verdict(p->s);
	assert_false(v->accept);
	assert_true(has_rule(v, VFM_COMPAT_SET_SIZE_MISMATCH));
	assert_int_equal(vfm_hs_member(p->s, 2, &a, &b, &m), -ENOENT);
	free_pair(p);
	/* ... and a single device against a set. */
	p = set_pair(s, 1, d, 2);
	assert_false(vfm_hs_verdict(p->s)->accept);
	assert_true(
		has_rule(vfm_hs_verdict(p->s), VFM_COMPAT_SET_SIZE_MISMATCH));
	free_pair(p);

	/* A device without the P2P states cannot be part of a set. */
	pt_desc_edu(&d[1], "2.0.4");
	vfm_desc_init(&d[1]);
	pt_must(vfm_desc_set_model(&d[1], "vfmig-edu", &e), &e);
	pt_must(vfm_desc_set_version(&d[1], "2.0.4", &e), &e);
	pt_must(vfm_desc_set_compatible(&d[1], "2.0.0-2.0.9", &e), &e);
	pt_must(vfm_desc_add_features(&d[1], "pre_copy p2p mmap", &e), &e);
	pt_must(vfm_desc_set_param(&d[1], "memory", "64", &e), &e);
	pt_must(vfm_desc_set_allowed(&d[1], "memory", "16,32,64,128,256", &e),
		&e);
	vfm_desc_init(&s[1]);
	pt_must(vfm_desc_set_model(&s[1], "vfmig-edu", &e), &e);
	pt_must(vfm_desc_set_version(&s[1], "2.0.3", &e), &e);
	pt_must(vfm_desc_set_compatible(&s[1], "2.0.0-2.0.9", &e), &e);
	pt_must(vfm_desc_add_features(&s[1], "pre_copy mmap", &e), &e);
	pt_must(vfm_desc_set_param(&s[1], "memory", "64", &e), &e);
	p = set_pair(s, 2, d, 2);
	v = vfm_hs_verdict(p->s);
	assert_false(v->accept);
	assert_true(has_rule(v, VFM_COMPAT_SET_P2P_MISSING));
	free_pair(p);
}

/* The set's size, order and every member are in the authenticated
 * transcript: any changed byte of a set's OFFER fails the handshake. */
static void test_set_tampering(void **state)
{
	static struct vfm_desc s[2], d[2];
	struct vfm_hs_cfg dc;
	struct pair *ref;
	unsigned long refused = 0;

	for (int i = 0; i < 2; i++) {
		pt_desc_edu(&s[i], i ? "2.0.5" : "2.0.3");
		pt_desc_edu(&d[i], "2.0.4");
	}
	ref = set_pair(s, 2, d, 2);
	cfg_for(&dc, VFM_ROLE_DESTINATION);
	dc.desc = d;
	dc.ndesc = 2;
	/* frame 4 is the source's OFFER */
	assert_int_equal(ref->frame[4][4], VFM_MSG_OFFER);
	for (size_t pos = 0; pos < ref->len[4]; pos++) {
		static uint8_t bad[VFM_WIRE_FRAME_MAX];
		struct vfm_hs *h;
		struct vfm_err e;

		assert_int_equal(vfm_hs_new(&h, &dc, &e), 0);
		vfm_hs_start(h);
		for (int i = 0; i < 4; i += 2)
			vfm_hs_recv(h, ref->frame[i], ref->len[i]);
		memcpy(bad, ref->frame[4], ref->len[4]);
		bad[pos] ^= 0x20;
		assert_true(vfm_hs_recv(h, bad, ref->len[4]) < 0);
		assert_true(vfm_hs_failed(h));
		refused++;
		vfm_hs_free(h);
	}
	print_message("tampered set OFFERs refused: %lu\n", refused);
	free_pair(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_no_common_version),
		cmocka_unit_test(test_migration_id_and_roles),
		cmocka_unit_test(test_unexpected_and_malformed),
		cmocka_unit_test(test_unknown_tlvs),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_golden_transcript),
		cmocka_unit_test(test_stream_format),
		cmocka_unit_test(test_seal_after_handshake),
		cmocka_unit_test(test_set_accept),
		cmocka_unit_test(test_set_refused),
		cmocka_unit_test(test_set_tampering),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
