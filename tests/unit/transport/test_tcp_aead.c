// SPDX-License-Identifier: MIT
/*
 * tcp with an AEAD key (--encrypt): a sealed round trip on several streams;
 * the bytes on the wire are AES-256-GCM as specified (checked against this
 * file's own OpenSSL calls, not the transport's); and a destination never
 * delivers a segment that was modified, sealed under another key,
 * replayed, reordered or sent in clear.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcp_conn.h"
#include "xp_util.h"

#define LAND (4u << 20)
#define TAG 16

static const uint8_t key_a[32] = "vfmig test key A, 32 bytes long";
static const uint8_t key_b[32] = "vfmig test key B, 32 bytes long";

static void iv_of(uint8_t iv[12], uint32_t stream, uint64_t n)
{
	for (unsigned int k = 0; k < 4; k++)
		iv[k] = (uint8_t)(stream >> (8 * k));
	for (unsigned int k = 0; k < 8; k++)
		iv[4 + k] = (uint8_t)(n >> (8 * k));
}

/* AES-256-GCM, independent of transport/tcp.c: 0 or -1. */
static int gcm(bool enc, const uint8_t *key, uint32_t stream, uint64_t n,
	       const uint8_t *aad, const uint8_t *in, size_t len, uint8_t *out,
	       uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t iv[12];
	int l, ok;

	iv_of(iv, stream, n);
	ok = c &&
	     EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1;
	ok = ok && EVP_CipherUpdate(c, NULL, &l, aad, VFM_TCP_HDR_LEN) == 1;
	ok = ok && (!len || EVP_CipherUpdate(c, out, &l, in, (int)len) == 1);
	if (!enc)
		ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG,
					       tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + len, &l) == 1;
	if (enc)
		ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG,
					       tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static void dst_sealed(struct xp_dst *d, unsigned int streams,
		       const uint8_t *key)
{
	memset(d, 0, sizeof(*d));
	d->cfg = (struct vfm_xport_cfg){ .streams = streams,
					 .max_write = LAND,
					 .depth = 8,
					 .timeout_ms = 5000,
					 .aead_key = key };
	d->land = calloc(1, LAND);
	assert_non_null(d->land);
	d->land_len = LAND;
	d->want = ~0ull;
	d->poll_timeout_ms = 5000;
	xp_dst_start(d);
	assert_int_equal(d->err, 0);
}

static int check_pattern(struct xp_dst *d, const struct vfm_cqe *c)
{
	for (uint32_t i = 0; i < c->len; i++)
		if (d->land[c->roff + i] != xp_pattern(c->roff + i))
			return -EILSEQ;
	return 0;
}

static void test_sealed_roundtrip(void **state)
{
	const size_t total = 3u << 20, chunk = 192 * 1024 + 7;
	struct vfm_xport_cfg cfg = { .streams = 3,
				     .max_write = LAND,
				     .depth = 32,
				     .timeout_ms = 5000,
				     .aead_key = key_a };
	uint8_t *src = malloc(total);
	struct vfm_xport *x;
	struct vfm_mr mr;
	struct xp_dst d;
	size_t off = 0, done = 0;
	unsigned int k = 0;

	(void)state;
	assert_non_null(src);
	xp_fill(src, total, 0);
	dst_sealed(&d, 3, key_a);
	d.want = total;
	d.check = check_pattern;
	assert_int_equal(vfm_xport_tcp_ops.create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, total, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &d.info, 5000), 0);
	while (done < total) {
		struct vfm_cqe c[16];
		int n;

		if (off < total) {
			uint32_t len = (uint32_t)(total - off < chunk ?
							  total - off :
							  chunk);
			int r = vfm_xport_write(x, k % 3, &mr, off, off, len,
						off, off);

			if (!r) {
				off += len;
				k++;
				continue;
			}
			assert_int_equal(r, -EAGAIN);
		}
		n = vfm_xport_poll(x, c, 16, 1000);
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			assert_int_equal(c[i].status, 0);
			done += c[i].len;
		}
	}
	/* the caller's range is never modified by sealing */
	for (size_t i = 0; i < total; i++)
		if (src[i] != xp_pattern(i))
			fail_msg("source byte %zu changed", i);
	xp_dst_finish(&d);
	assert_int_equal(d.err, 0);
	assert_true(d.bytes == total);
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	free(d.land);
	free(src);
}

/* A listener of this test's own that reads the raw bytes of stream 0. */
struct raw_dst {
	int lfd, fd;
	struct vfm_tcp_info info;
	struct vfm_xport_info blob;
	pthread_t thr;
	int err;
};

static void *raw_accept(void *arg)
{
	struct raw_dst *r = arg;

	r->err = vfm_tcp_accept_streams(r->lfd, &r->info, &r->fd, 5000);
	return NULL;
}

static int recv_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t got = recv(fd, p, n, 0);

		if (got <= 0)
			return -1;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

static void test_wire_is_aes_gcm(void **state)
{
	const uint32_t len = 64 * 1024;
	struct vfm_xport_cfg cfg = { .streams = 1,
				     .max_write = LAND,
				     .depth = 4,
				     .timeout_ms = 5000,
				     .aead_key = key_a };
	uint8_t *src = malloc(len), *wire = malloc(len + TAG),
		*plain = malloc(len + TAG);
	uint8_t hdr[VFM_TCP_HDR_LEN];
	struct vfm_tcp_hdr h;
	struct raw_dst r = { .fd = -1 };
	struct vfm_xport *x;
	struct vfm_mr mr;
	size_t same = 0;

	(void)state;
	xp_fill(src, len, 77);
	assert_int_equal(vfm_tcp_listen_fd("127.0.0.1", &r.lfd, &r.info.port),
			 0);
	r.info.version = VFM_TCP_WIRE_VERSION;
	r.info.streams = 1;
	r.info.landing_len = LAND;
	memset(r.info.cookie, 0x5a, sizeof(r.info.cookie));
	vfm_tcp_info_encode(r.blob.data, &r.info);
	r.blob.len = VFM_TCP_INFO_LEN;
	pthread_create(&r.thr, NULL, raw_accept, &r);
	assert_int_equal(vfm_xport_tcp_ops.create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, len, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &r.blob, 5000), 0);
	pthread_join(r.thr, NULL);
	assert_int_equal(r.err, 0);
	assert_int_equal(vfm_xport_write(x, 0, &mr, 0, 4096, len, 123, 1), 0);
	for (int i = 0; i < 50; i++) {
		struct vfm_cqe c;

		if (vfm_xport_poll(x, &c, 1, 100) == 1)
			break;
	}
	assert_int_equal(recv_all(r.fd, hdr, sizeof(hdr)), 0);
	assert_int_equal(vfm_tcp_hdr_decode(&h, hdr), 0);
	assert_int_equal(h.len, len); /* the header stays readable */
	assert_true(h.roff == 4096 && h.imm == 123 && h.seq == 0);
	assert_int_equal(recv_all(r.fd, wire, len + TAG), 0);
	for (uint32_t i = 0; i < len; i++)
		same += wire[i] == src[i];
	assert_true(same < len / 64); /* not the plaintext */
	assert_int_equal(
		gcm(false, key_a, 0, 0, hdr, wire, len, plain, wire + len), 0);
	assert_memory_equal(plain, src, len);
	/* the same bytes under another key do not open */
	assert_int_equal(
		gcm(false, key_b, 0, 0, hdr, wire, len, plain, wire + len), -1);
	close(r.fd);
	close(r.lfd);
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	free(src);
	free(wire);
	free(plain);
}

/* One sealed segment as a source would send it: header, ciphertext, tag. */
static size_t seal_seg(uint8_t *out, const uint8_t *key, uint32_t seq,
		       uint64_t nonce_n, uint64_t roff, const uint8_t *p,
		       uint32_t len)
{
	struct vfm_tcp_hdr h = {
		.len = len, .roff = roff, .imm = roff, .seq = seq
	};

	vfm_tcp_hdr_encode(out, &h);
	assert_int_equal(gcm(true, key, 0, nonce_n, out, p, len,
			     out + VFM_TCP_HDR_LEN,
			     out + VFM_TCP_HDR_LEN + len),
			 0);
	return VFM_TCP_HDR_LEN + len + TAG;
}

enum tamper {
	T_NONE,
	T_FLIP_PAYLOAD,
	T_FLIP_TAG,
	T_OTHER_KEY,
	T_REPLAY, /* segment 0's ciphertext again, header says seq 1 */
	T_REORDER, /* segment 1 sealed with nonce 0, segment 0 with 1 */
	T_CLEAR, /* a payload sent in clear with a made-up tag */
};

/*
 * A raw source greets, sends one good sealed segment (page 0) unless the
 * case itself is about the first one, then the case's segment. Returns
 * the destination's error; *recvs is how many segments it delivered.
 */
static int tampered(enum tamper how, uint64_t *recvs)
{
	const uint32_t len = 4096;
	uint8_t page[4096], seg[2][VFM_TCP_HDR_LEN + 4096 + TAG];
	struct vfm_tcp_info info;
	struct xp_dst d;
	size_t n0, n1;
	int fd, acked, err;

	xp_fill(page, len, 0);
	dst_sealed(&d, 1, key_a);
	d.poll_timeout_ms = 3000;
	n0 = seal_seg(seg[0], key_a, 0, 0, 0, page, len);
	n1 = seal_seg(seg[1], key_a, 1, 1, len, page, len);
	switch (how) {
	case T_NONE:
		break;
	case T_FLIP_PAYLOAD:
		seg[1][VFM_TCP_HDR_LEN + 100] ^= 1;
		break;
	case T_FLIP_TAG:
		seg[1][n1 - 1] ^= 0x80;
		break;
	case T_OTHER_KEY:
		n1 = seal_seg(seg[1], key_b, 1, 1, len, page, len);
		break;
	case T_REPLAY: {
		struct vfm_tcp_hdr h = {
			.len = len, .roff = len, .imm = len, .seq = 1
		};

		memcpy(seg[1], seg[0], n0);
		vfm_tcp_hdr_encode(seg[1], &h);
		break;
	}
	case T_REORDER:
		n1 = seal_seg(seg[1], key_a, 1, 0, len, page, len);
		break;
	case T_CLEAR:
		memcpy(seg[1] + VFM_TCP_HDR_LEN, page, len);
		memset(seg[1] + VFM_TCP_HDR_LEN + len, 0, TAG);
		break;
	}
	assert_int_equal(xp_info(&d.info, &info), 0);
	fd = xp_raw_greet(info.port, info.cookie, 0, 1, &acked);
	assert_true(fd >= 0 && acked);
	assert_int_equal(xp_send_all(fd, seg[0], n0), 0);
	xp_send_all(fd, seg[1], n1);
	if (how == T_NONE)
		shutdown(fd, SHUT_WR);
	xp_dst_finish(&d);
	err = d.err;
	*recvs = d.recvs;
	/* nothing of a refused segment stays in the landing buffer */
	if (err == -EBADMSG)
		for (uint32_t i = 0; i < len; i++)
			if (d.land[len + i] == page[i] && page[i])
				fail_msg("refused plaintext byte %u landed", i);
	close(fd);
	free(d.land);
	return err;
}

static void test_tampered_segments_refused(void **state)
{
	static const struct {
		enum tamper how;
		const char *name;
	} cases[] = {
		{ T_FLIP_PAYLOAD, "flipped ciphertext bit" },
		{ T_FLIP_TAG, "flipped tag bit" },
		{ T_OTHER_KEY, "sealed under another migration's key" },
		{ T_REPLAY, "replayed segment" },
		{ T_REORDER, "reordered segment" },
		{ T_CLEAR, "payload in clear" },
	};
	uint64_t recvs;

	(void)state;
	/* the control: both segments good, both delivered */
	assert_int_equal(tampered(T_NONE, &recvs), -ECONNRESET);
	assert_true(recvs == 2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = tampered(cases[i].how, &recvs);

		if (err != -EBADMSG || recvs != 1)
			fail_msg(
				"%s: error %d, %llu delivered (want -EBADMSG, 1)",
				cases[i].name, err, (unsigned long long)recvs);
	}
}

static void test_rdma_refuses_a_key(void **state)
{
	const struct vfm_xport_ops *rdma = vfm_xport_find("rdma");
	struct vfm_xport_cfg cfg = { .streams = 1,
				     .max_write = 4096,
				     .depth = 4,
				     .timeout_ms = 1000,
				     .aead_key = key_a };
	struct vfm_xport *x = NULL;

	(void)state;
	if (!rdma)
		skip();
	assert_int_equal(rdma->create(&x, &cfg), -EOPNOTSUPP);
	assert_null(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sealed_roundtrip),
		cmocka_unit_test(test_wire_is_aes_gcm),
		cmocka_unit_test(test_tampered_segments_refused),
		cmocka_unit_test(test_rdma_refuses_a_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
