// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for everything in proto/ that reads untrusted bytes:
 *
 *   input starting with the frame magic "VFMH": the frame parser, every
 *   typed decoder, a recursive walk of nested TLVs, and handshake sessions
 *   (a destination waiting for HELLO, a source waiting for the peer's HELLO)
 *   fed the frame;
 *   any other input: byte 0 picks a descriptor file (model, version,
 *   version_compatible, features, params/x, allowed/x), the rest is its
 *   text; the version and range parsers also get the text directly.
 *
 * Seeds: the golden wire vectors and the example descriptor files
 * (fuzz_seeds writes them into the corpus folder).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto_test_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {
	"model",    "version",	"version_compatible",
	"features", "params/x", "allowed/x"
};

static void walk(const uint8_t *p, size_t n, int depth)
{
	struct vfm_tlv_iter it;
	struct vfm_tlv t;
	char s[64];
	uint64_t u;

	vfm_tlv_iter_init(&it, p, n);
	while (vfm_tlv_next(&it, &t, NULL) > 0) {
		vfm_tlv_get_u64(&t, &u, NULL);
		vfm_tlv_get_str(&t, s, sizeof(s), NULL);
		vfm_tlv_unknown(&t, "fuzz", NULL);
		if (depth < 4)
			walk(t.val, t.len, depth + 1);
	}
}

static void sessions(const uint8_t *data, size_t size)
{
	static const uint8_t secret[16] = "fuzz-secret-0123";
	static struct vfm_desc d;
	static bool ready;
	struct vfm_hs_cfg c = { 0 };
	struct vfm_hs *hs;
	const uint8_t *out;

	if (!ready) {
		pt_desc_edu(&d, "2.0.3");
		ready = true;
	}
	c.secret = secret;
	c.secret_len = sizeof(secret);
	c.desc = &d;
	for (int role = VFM_ROLE_SOURCE; role <= VFM_ROLE_DESTINATION; role++) {
		uint8_t nonce[VFM_NONCE_LEN] = { 1 };

		c.role = role;
		c.nonce = nonce;
		memset(c.migration_id, role == VFM_ROLE_SOURCE ? 0xa0 : 0,
		       sizeof(c.migration_id));
		if (vfm_hs_new(&hs, &c, NULL))
			continue;
		vfm_hs_start(hs);
		vfm_hs_consumed(hs, vfm_hs_output(hs, &out));
		vfm_hs_recv(hs, data, size);
		vfm_hs_output(hs, &out);
		vfm_hs_free(hs);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vfm_desc d;
	struct vfm_range_list rl;
	struct vfm_version v;
	struct vfm_msg m;
	struct vfm_err e;
	size_t flen;

	if (size >= 4 && !memcmp(data, "VFMH", 4)) {
		vfm_frame_peek(data, size, &flen, &e);
		pt_decode_any(data, size, &e);
		if (!vfm_msg_parse(data, size, &m, &e))
			walk(m.payload, m.len, 0);
		sessions(data, size);
		return 0;
	}
	if (!size)
		return 0;
	vfm_desc_init(&d);
	vfm_desc_apply_file(&d, files[data[0] % 6], (const char *)data + 1,
			    size - 1, &e);
	vfm_version_parse((const char *)data + 1, size - 1, &v, &e);
	vfm_ranges_parse((const char *)data + 1, size - 1, &rl, &e);
	return 0;
}
