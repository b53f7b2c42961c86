// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for what crosses the wire after the handshake:
 *
 *   byte 0 even: the agent's control messages. A real handshake has run
 *   (fixed nonces); the rest of the input is a message type and TLV body
 *   that the source frames and seals, and the destination verifies and
 *   decodes: every control decoder past the MAC. The raw input is also
 *   offered unsealed, which must be refused.
 *   byte 0 odd: the tcp transport's decoders (segment header, greeting,
 *   connection info) on the rest.
 *
 * The corpus in tests/fuzz/corpus/fuzz_ctl is kept in the repository.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ctrl.h"
#include "proto_test_util.h"
#include "tcp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vfm_hs *src, *dst;

static void pump(struct vfm_hs *from, struct vfm_hs *to)
{
	const uint8_t *out;
	size_t n = vfm_hs_output(from, &out);

	while (n) {
		size_t flen;

		if (vfm_frame_peek(out, n, &flen, NULL) || flen > n)
			break;
		vfm_hs_recv(to, out, flen);
		vfm_hs_consumed(from, flen);
		n = vfm_hs_output(from, &out);
	}
}

static void handshake(void)
{
	static const uint8_t secret[16] = "fuzz-secret-0123";
	static uint8_t ns[VFM_NONCE_LEN] = { 1 }, nd[VFM_NONCE_LEN] = { 2 };
	static struct vfm_desc d;
	static const char *req[] = { "pre_copy" };
	struct vfm_hs_cfg c = { 0 };

	pt_desc_edu(&d, "2.0.3");
	c.secret = secret;
	c.secret_len = sizeof(secret);
	c.desc = &d;
	c.role = VFM_ROLE_SOURCE;
	c.nonce = ns;
	c.req = req;
	c.nreq = 1;
	c.transport = "tcp";
	c.streams = 1;
	memset(c.migration_id, 0xa0, sizeof(c.migration_id));
	vfm_hs_new(&src, &c, NULL);
	memset(&c, 0, sizeof(c));
	c.secret = secret;
	c.secret_len = sizeof(secret);
	c.desc = &d;
	c.role = VFM_ROLE_DESTINATION;
	c.nonce = nd;
	vfm_hs_new(&dst, &c, NULL);
	vfm_hs_start(dst);
	vfm_hs_start(src);
	for (int i = 0; i < 8 && !(vfm_hs_done(src) && vfm_hs_done(dst)); i++) {
		pump(src, dst);
		pump(dst, src);
	}
}

static void control(const uint8_t *data, size_t size)
{
	static uint8_t frame[VFM_WIRE_FRAME_MAX];
	static const uint8_t zero_mac[VFM_MAC_LEN];
	struct vfm_msgb b;
	struct vfm_ctl m;
	struct vfm_err e;
	size_t len;

	if (!src) {
		handshake();
		if (!vfm_hs_done(src) || !vfm_hs_done(dst)) {
			fprintf(stderr, "handshake: %s / %s: %s %s\n",
				vfm_hs_state_name(vfm_hs_state(src)),
				vfm_hs_state_name(vfm_hs_state(dst)),
				vfm_hs_reason(src), vfm_hs_reason(dst));
			__builtin_trap();
		}
	}
	/* Unsealed bytes are never a message. */
	if (!vfm_ctl_decode(dst, data, size, &m, &e))
		__builtin_trap();
	if (!size)
		return;
	/* Sealed: the type, then TLVs as (u16 type, u8 length, value)
	 * triples taken from the input, then the MAC. */
	vfm_msg_init(&b, frame, sizeof(frame), data[0]);
	for (size_t i = 1; i + 3 <= size;) {
		uint16_t t = (uint16_t)(data[i] | data[i + 1] << 8);
		size_t l = data[i + 2];

		i += 3;
		if (l > size - i)
			l = size - i;
		if (t == (VFM_TLV_MANDATORY | VFM_TLV_MAC))
			t = 0x7ff0;
		vfm_msg_put(&b, t, data + i, l);
		i += l;
	}
	vfm_msg_put(&b, VFM_TLV_MANDATORY | VFM_TLV_MAC, zero_mac,
		    sizeof(zero_mac));
	if (vfm_msg_finish(&b, &len) || vfm_hs_seal(src, frame, len))
		return;
	vfm_ctl_decode(dst, frame, len, &m, &e);
}

static void tcp(const uint8_t *data, size_t size)
{
	struct vfm_tcp_hdr h;
	struct vfm_tcp_greet g;
	struct vfm_tcp_info info;
	uint8_t buf[256] = { 0 };

	memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));
	vfm_tcp_hdr_decode(&h, buf);
	vfm_tcp_greet_decode(&g, buf);
	vfm_tcp_info_decode(&info, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		tcp(data + 1, size - 1);
	else
		control(data + 1, size - 1);
	return 0;
}
