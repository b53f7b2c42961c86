/* SPDX-License-Identifier: MIT */
/*
 * tcp backend wire formats, all little-endian:
 *
 *   info blob (destination -> source, inside the agent's handshake)
 *   greeting  (source -> destination, first bytes of every data stream)
 *   ack       (destination -> source, answer to a good greeting)
 *   segment header (before every write's payload)
 */
#ifndef VFM_TCP_WIRE_H
#define VFM_TCP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VFM_TCP_COOKIE_LEN 16

#define VFM_TCP_INFO_MAGIC 0x49544676u /* "vFTI" */
#define VFM_TCP_GREET_MAGIC 0x47544676u /* "vFTG" */
#define VFM_TCP_ACK_MAGIC 0x41544676u /* "vFTA" */
#define VFM_TCP_HDR_MAGIC 0x48544676u /* "vFTH" */
#define VFM_TCP_WIRE_VERSION 1

struct vfm_tcp_info {
	uint16_t version;
	uint16_t streams;
	uint16_t port; /* host order here, LE on the wire */
	uint64_t landing_len;
	uint8_t cookie[VFM_TCP_COOKIE_LEN];
};

#define VFM_TCP_INFO_LEN 36

struct vfm_tcp_greet {
	uint16_t version;
	uint16_t stream;
	uint16_t streams;
	uint8_t cookie[VFM_TCP_COOKIE_LEN];
};

#define VFM_TCP_GREET_LEN 32
#define VFM_TCP_ACK_LEN 8

/*
 * Segment header: magic, len, roff, imm, seq (per stream, from 0) and a
 * CRC32C of the 28 bytes before it. The payload follows directly.
 */
struct vfm_tcp_hdr {
	uint32_t len;
	uint64_t roff;
	uint64_t imm;
	uint32_t seq;
};

#define VFM_TCP_HDR_LEN 32

uint32_t vfm_tcp_crc32c(const void *buf, size_t len);

void vfm_tcp_info_encode(uint8_t *out, const struct vfm_tcp_info *in);
int vfm_tcp_info_decode(struct vfm_tcp_info *out, const uint8_t *in,
			size_t len);
void vfm_tcp_greet_encode(uint8_t *out, const struct vfm_tcp_greet *in);
int vfm_tcp_greet_decode(struct vfm_tcp_greet *out, const uint8_t *in);
void vfm_tcp_ack_encode(uint8_t *out);
bool vfm_tcp_ack_valid(const uint8_t *in);
void vfm_tcp_hdr_encode(uint8_t *out, const struct vfm_tcp_hdr *in);
int vfm_tcp_hdr_decode(struct vfm_tcp_hdr *out, const uint8_t *in);

#endif /* VFM_TCP_WIRE_H */
