/* SPDX-License-Identifier: MIT */
/*
 * Keys and the stream MAC, all through OpenSSL.
 *
 * Key schedule (proto/handshake.c): the per-migration secret is only ever
 * input keying material. HKDF-SHA256 (RFC 5869) with both nonces as salt
 * gives the handshake's AUTH key; once the handshake is done, HKDF with the
 * transcript hash in the info gives one sealing key per direction for the
 * control messages and the key and IV of the stream MAC, so every key is
 * bound to this migration, these nonces and this transcript.
 *
 * The stream MAC: AES-256-GMAC over the migration stream's bytes in stream
 * order, one tag per migration. The source sends its tag in the sealed DONE
 * message; the destination compares it (in constant time) with its own,
 * computed over what it loaded, before the device leaves RESUMING. A
 * modified, replayed, reordered, dropped or other migration's segment
 * changes the tag.
 */
#ifndef VFM_KDF_H
#define VFM_KDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VFM_KEY_LEN 32
#define VFM_SMAC_IV_LEN 12
#define VFM_SMAC_TAG_LEN 16

/* HKDF-SHA256: extract with @salt, expand with @info into @out. */
int vfm_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt,
		    size_t saltlen, const void *info, size_t infolen,
		    uint8_t *out, size_t outlen);

struct vfm_smac {
	void *ctx; /* EVP_MAC_CTX */
	uint64_t bytes;
};

int vfm_smac_init(struct vfm_smac *m, const uint8_t key[VFM_KEY_LEN],
		  const uint8_t iv[VFM_SMAC_IV_LEN]);
int vfm_smac_update(struct vfm_smac *m, const void *p, size_t n);
/* The tag; the context is finished (free it after). */
int vfm_smac_final(struct vfm_smac *m, uint8_t tag[VFM_SMAC_TAG_LEN]);
void vfm_smac_free(struct vfm_smac *m);
bool vfm_smac_active(const struct vfm_smac *m);
/* Constant-time equality of two tags. */
bool vfm_tag_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
