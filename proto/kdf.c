// SPDX-License-Identifier: MIT
/* HKDF and the stream MAC through OpenSSL (vfm/kdf.h). */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

#include "vfm/kdf.h"

int vfm_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt,
		    size_t saltlen, const void *info, size_t infolen,
		    uint8_t *out, size_t outlen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = outlen;
	int ok;

	ok = c && EVP_PKEY_derive_init(c) > 0 &&
	     EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_salt(c, salt, (int)saltlen) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_key(c, ikm, (int)ikmlen) > 0 &&
	     EVP_PKEY_CTX_add1_hkdf_info(c, info, (int)infolen) > 0 &&
	     EVP_PKEY_derive(c, out, &n) > 0 && n == outlen;
	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -EIO;
}

int vfm_smac_init(struct vfm_smac *m, const uint8_t key[VFM_KEY_LEN],
		  const uint8_t iv[VFM_SMAC_IV_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "GMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
						 "AES-256-GCM", 0),
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_IV, (void *)iv,
						  VFM_SMAC_IV_LEN),
		OSSL_PARAM_construct_end(),
	};

	EVP_MAC_free(mac);
	memset(m, 0, sizeof(*m));
	if (!ctx || !EVP_MAC_init(ctx, key, VFM_KEY_LEN, p)) {
		EVP_MAC_CTX_free(ctx);
		return -EIO;
	}
	m->ctx = ctx;
	return 0;
}

int vfm_smac_update(struct vfm_smac *m, const void *p, size_t n)
{
	if (!m->ctx)
		return -EINVAL;
	if (!EVP_MAC_update(m->ctx, p, n))
		return -EIO;
	m->bytes += n;
	return 0;
}

int vfm_smac_final(struct vfm_smac *m, uint8_t tag[VFM_SMAC_TAG_LEN])
{
	size_t n = 0;

	if (!m->ctx)
		return -EINVAL;
	if (!EVP_MAC_final(m->ctx, tag, &n, VFM_SMAC_TAG_LEN) ||
	    n != VFM_SMAC_TAG_LEN)
		return -EIO;
	return 0;
}

void vfm_smac_free(struct vfm_smac *m)
{
	EVP_MAC_CTX_free(m->ctx);
	m->ctx = NULL;
}

bool vfm_smac_active(const struct vfm_smac *m)
{
	return m->ctx != NULL;
}

bool vfm_tag_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
