// SPDX-License-Identifier: MIT
/* Encoders and checked decoders for the tcp backend's wire formats. */
#include <errno.h>
#include <string.h>

#include "tcp_wire.h"

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
	return get_le16(p) | ((uint32_t)get_le16(p + 2) << 16);
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

/* CRC32C (Castagnoli, reflected 0x82F63B78), bit by bit: headers are short. */
uint32_t vfm_tcp_crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~0u;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* info: magic4 version2 streams2 port2 pad2 landing_len8 cookie16 */
void vfm_tcp_info_encode(uint8_t *out, const struct vfm_tcp_info *in)
{
	memset(out, 0, VFM_TCP_INFO_LEN);
	put_le32(out, VFM_TCP_INFO_MAGIC);
	put_le16(out + 4, in->version);
	put_le16(out + 6, in->streams);
	put_le16(out + 8, in->port);
	put_le64(out + 12, in->landing_len);
	memcpy(out + 20, in->cookie, VFM_TCP_COOKIE_LEN);
}

int vfm_tcp_info_decode(struct vfm_tcp_info *out, const uint8_t *in, size_t len)
{
	if (len < VFM_TCP_INFO_LEN || get_le32(in) != VFM_TCP_INFO_MAGIC)
		return -EINVAL;
	out->version = get_le16(in + 4);
	out->streams = get_le16(in + 6);
	out->port = get_le16(in + 8);
	out->landing_len = get_le64(in + 12);
	memcpy(out->cookie, in + 20, VFM_TCP_COOKIE_LEN);
	if (out->version != VFM_TCP_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (!out->streams || !out->port)
		return -EINVAL;
	return 0;
}

/* greeting: magic4 version2 stream2 streams2 pad6 cookie16 */
void vfm_tcp_greet_encode(uint8_t *out, const struct vfm_tcp_greet *in)
{
	memset(out, 0, VFM_TCP_GREET_LEN);
	put_le32(out, VFM_TCP_GREET_MAGIC);
	put_le16(out + 4, in->version);
	put_le16(out + 6, in->stream);
	put_le16(out + 8, in->streams);
	memcpy(out + 16, in->cookie, VFM_TCP_COOKIE_LEN);
}

int vfm_tcp_greet_decode(struct vfm_tcp_greet *out, const uint8_t *in)
{
	if (get_le32(in) != VFM_TCP_GREET_MAGIC)
		return -EPROTO;
	out->version = get_le16(in + 4);
	out->stream = get_le16(in + 6);
	out->streams = get_le16(in + 8);
	memcpy(out->cookie, in + 16, VFM_TCP_COOKIE_LEN);
	if (out->version != VFM_TCP_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	return 0;
}

/* ack: magic4 status4 (0) */
void vfm_tcp_ack_encode(uint8_t *out)
{
	put_le32(out, VFM_TCP_ACK_MAGIC);
	put_le32(out + 4, 0);
}

bool vfm_tcp_ack_valid(const uint8_t *in)
{
	return get_le32(in) == VFM_TCP_ACK_MAGIC && get_le32(in + 4) == 0;
}

/* header: magic4 len4 roff8 imm8 seq4 crc4 */
void vfm_tcp_hdr_encode(uint8_t *out, const struct vfm_tcp_hdr *in)
{
	put_le32(out, VFM_TCP_HDR_MAGIC);
	put_le32(out + 4, in->len);
	put_le64(out + 8, in->roff);
	put_le64(out + 16, in->imm);
	put_le32(out + 24, in->seq);
	put_le32(out + 28, vfm_tcp_crc32c(out, 28));
}

int vfm_tcp_hdr_decode(struct vfm_tcp_hdr *out, const uint8_t *in)
{
	if (get_le32(in) != VFM_TCP_HDR_MAGIC ||
	    get_le32(in + 28) != vfm_tcp_crc32c(in, 28))
		return -EPROTO;
	out->len = get_le32(in + 4);
	out->roff = get_le64(in + 8);
	out->imm = get_le64(in + 16);
	out->seq = get_le32(in + 24);
	return 0;
}
