// SPDX-License-Identifier: MIT
/*
 * vfm-crypto-speed: what the integrity features cost per byte, on one core,
 * in CPU seconds per GiB: the stream MAC (AES-256-GMAC, both sides pay it
 * once per stream byte), --encrypt's AES-256-GCM (the source seals, the
 * destination opens; the same per side), HMAC-SHA256 (the alternative it was chosen over),
 * the sim's state digest (CRC32C per page + SHA-256, once per side at the
 * switch, four threads in the agent), and a memcpy for scale.
 *
 *   vfm-crypto-speed [MiB]   (default 1024)
 */
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "vfm/kdf.h"

static double cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report(const char *what, double s, size_t bytes)
{
	double gib = (double)bytes / (1u << 30);

	printf("%-34s %7.3f CPU s/GiB  %7.2f GiB/s\n", what, s / gib, gib / s);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	size_t n = mib << 20, chunk = 1u << 20;
	uint8_t *buf = malloc(n), *dst = malloc(chunk), key[32] = { 1 };
	uint8_t iv[12] = { 2 }, tag[16], md[32];
	unsigned int mdlen;
	struct vfm_smac m;
	double t;

	if (!buf || !dst)
		return 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	t = cpu_s();
	for (size_t o = 0; o < n; o += chunk)
		memcpy(dst, buf + o, chunk);
	report("memcpy (1 MiB chunks)", cpu_s() - t, n);
	t = cpu_s();
	vfm_smac_init(&m, key, iv);
	for (size_t o = 0; o < n; o += chunk)
		vfm_smac_update(&m, buf + o, chunk);
	vfm_smac_final(&m, tag);
	vfm_smac_free(&m);
	report("stream MAC: AES-256-GMAC", cpu_s() - t, n);
	t = cpu_s();
	{
		/* --encrypt: one seal per 1 MiB write, as transport/tcp.c does
		 * (the 32-byte header as associated data) */
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		uint8_t *ct = malloc(chunk + 16), hdr[32] = { 3 };
		int l;

		EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL);
		for (size_t o = 0; o < n; o += chunk) {
			iv[4] = (uint8_t)(o >> 20);
			EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv);
			EVP_EncryptUpdate(c, NULL, &l, hdr, sizeof(hdr));
			EVP_EncryptUpdate(c, ct, &l, buf + o, (int)chunk);
			EVP_EncryptFinal_ex(c, ct + chunk, &l);
			EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
		}
		EVP_CIPHER_CTX_free(c);
		free(ct);
	}
	report("--encrypt: AES-256-GCM seal", cpu_s() - t, n);
	t = cpu_s();
	{
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
		OSSL_PARAM p[] = { OSSL_PARAM_construct_utf8_string(
					   OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
				   OSSL_PARAM_construct_end() };
		size_t l;

		EVP_MAC_init(h, key, sizeof(key), p);
		for (size_t o = 0; o < n; o += chunk)
			EVP_MAC_update(h, buf + o, chunk);
		EVP_MAC_final(h, md, &l, sizeof(md));
		EVP_MAC_CTX_free(h);
		EVP_MAC_free(mac);
	}
	report("HMAC-SHA256 (not used)", cpu_s() - t, n);
	t = cpu_s();
	{
		uint32_t *crc = malloc((n / 4096) * 4);
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		for (size_t p = 0; p < n / 4096; p++)
			crc[p] = vfm_crc32c(0, buf + p * 4096, 4096);
		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		EVP_DigestUpdate(c, crc, (n / 4096) * 4);
		EVP_DigestFinal_ex(c, md, &mdlen);
		EVP_MD_CTX_free(c);
		free(crc);
	}
	report("sim state digest (one thread)", cpu_s() - t, n);
	t = cpu_s();
	{
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		EVP_DigestUpdate(c, buf, n);
		EVP_DigestFinal_ex(c, md, &mdlen);
		EVP_MD_CTX_free(c);
	}
	report("SHA-256 of the state (the old one)", cpu_s() - t, n);
	free(buf);
	free(dst);
	return 0;
}
