/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfmig: the migration stream format and the migration-buffer ioctls of
 * vfmig_stub.ko. This header is the one definition of both: the kernel
 * driver, the agent's in-process "sim" device and the tests include it.
 *
 * All multi-byte fields of the stream are little endian.
 */
#ifndef _UAPI_VFMIG_H
#define _UAPI_VFMIG_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* ------------------------------------------------------------------------
 * Stream format
 *
 *   stream  := header record* end
 *   header  := struct vfmig_stream_hdr (fixed size, self-checked by hdr_crc)
 *   record  := struct vfmig_rec_hdr + payload[len]
 *   end     := struct vfmig_rec_hdr (type END) + struct vfmig_rec_end
 *
 * A source sends the register block and every page of device memory at
 * least once, then pages dirtied since they were sent, in any order and as
 * often as needed; the last copy of a byte wins. The destination applies a
 * record only when both CRCs match, and accepts END only when the register
 * block and every page have arrived and the record count matches.
 *
 * Formats (the header's .format):
 *   1  REGS, DATA and END records only; a zero page travels as DATA.
 *   2  format 1 plus ZERO records: a page of zeros may travel as a ZERO
 *      record (a record header alone, 24 bytes instead of 4120). A source
 *      produces format 2 only when the destination said it loads it (the
 *      agents' handshake: descriptor "stream_formats"); a loader that knows
 *      format 2 loads format 1 streams unchanged.
 * ----------------------------------------------------------------------
 */

#define VFMIG_STREAM_MAGIC	0x534d4656u	/* "VFMS" as bytes on the wire */
#define VFMIG_STREAM_FORMAT	1	/* the format every loader accepts */
#define VFMIG_STREAM_FORMAT_ZERO 2	/* adds VFMIG_REC_ZERO */
#define VFMIG_STREAM_FORMAT_MAX	VFMIG_STREAM_FORMAT_ZERO
#define VFMIG_PAGE_SIZE		4096u

#define VFMIG_MODEL_MAX		64	/* including the NUL */
#define VFMIG_VERSION_MAX	32	/* including the NUL */
#define VFMIG_PARAMS_MAX	380	/* "name=value\n"..., NUL-terminated */

struct vfmig_stream_hdr {
	__le32 magic;			/* VFMIG_STREAM_MAGIC */
	__le16 format;			/* VFMIG_STREAM_FORMAT */
	__le16 hdr_len;			/* sizeof(struct vfmig_stream_hdr) */
	__le64 mem_size;		/* bytes of device memory in the state */
	__le32 regs_size;		/* bytes of the register block */
	__le32 page_size;		/* VFMIG_PAGE_SIZE */
	char model[VFMIG_MODEL_MAX];	/* e.g. "vfmig-edu" */
	char version[VFMIG_VERSION_MAX];/* e.g. "2.0.3" */
	char params[VFMIG_PARAMS_MAX];	/* "memory=64\nrss=off\n" */
	__u8 reserved[8];		/* zero */
	__le32 hdr_crc;			/* CRC32C of every byte before it */
};					/* 512 bytes */

enum vfmig_rec_type {
	VFMIG_REC_REGS = 1,	/* payload: register block bytes at .offset */
	VFMIG_REC_DATA = 2,	/* payload: device memory bytes at .offset */
	VFMIG_REC_END = 3,	/* payload: struct vfmig_rec_end */
	VFMIG_REC_ZERO = 4,	/* format 2: no payload (.len 0, .data_crc 0,
				 * the CRC32C of no bytes); the page at .offset
				 * (a multiple of page_size) is all zeros
				 */
};

/* Largest payload of one record: a record never exceeds this. */
#define VFMIG_REC_MAX_PAYLOAD	(1u << 20)

struct vfmig_rec_hdr {
	__le32 type;		/* enum vfmig_rec_type */
	__le32 len;		/* payload bytes that follow */
	__le64 offset;		/* REGS/DATA: byte offset; END: 0 */
	__le32 data_crc;	/* CRC32C of the payload */
	__le32 hdr_crc;		/* CRC32C of the 20 bytes before it */
};				/* 24 bytes */

struct vfmig_rec_end {
	__le64 records;		/* REGS + DATA + ZERO records before this one */
	__le64 stream_bytes;	/* bytes of the stream before this record */
};

/*
 * CRC32C (Castagnoli, reflected 0x82F63B78), seed ~0, final xor ~0: the
 * kernel's crc32c(~0, p, n) ^ ~0. "123456789" -> 0xe3069283.
 */

/* ------------------------------------------------------------------------
 * vfmig_stub.ko specifics (additions; the layouts above are unchanged).
 *
 * DATA records of vfmig_stub.ko cover whole pages: .offset is a multiple of
 * page_size and .len a non-zero multiple of it; a source built from this
 * header sends one page per DATA record. The register block of model
 * "vfmig-edu" is sent as one REGS record at offset 0 during STOP_COPY; its
 * layout is named by regs_size (see "edu function state" below).
 *
 * VFMIG_SAVE_NEXT with length 0 hands out at most 1 MiB.
 *
 * Device memory is a VFIO device-specific region: look for a region with
 * VFIO_REGION_INFO_CAP_TYPE {VFMIG_REGION_TYPE, VFMIG_REGION_SUBTYPE_MEM};
 * pread/pwrite on the device fd at that region's offset read and write
 * device memory (writes dirty the pages they touch).
 * ----------------------------------------------------------------------
 */

/* VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI vendor 0x1234 (QEMU's edu). */
#define VFMIG_REGION_TYPE		(0x80000000u | 0x1234u)
#define VFMIG_REGION_SUBTYPE_MEM	1u

#define VFMIG_EDU_REGS_MAGIC	0x52554445u	/* "EDUR" */

struct vfmig_edu_regs {
	__le32 magic;		/* VFMIG_EDU_REGS_MAGIC */
	__le32 ident;		/* BAR0 0x00: identification (read only) */
	__le32 liveness;	/* BAR0 0x04: value read back (~last write) */
	__le32 fact;		/* BAR0 0x08: factorial register */
	__le32 status;		/* BAR0 0x20: bit 7 (irq on factorial) */
	__le32 reserved0;	/* zero */
	__le64 dma_src;		/* BAR0 0x80 */
	__le64 dma_dst;		/* BAR0 0x88 */
	__le64 dma_cnt;		/* BAR0 0x90 */
	__le64 workload_seq;	/* in-kernel workload: pages written so far */
	__u8 reserved1[8];	/* zero */
};				/* 64 bytes */

/* ---- begin: edu function state (register block layouts) ---------------
 *
 * The stream header's regs_size names the layout of the register block:
 *
 *   64    layout 1: struct vfmig_edu_regs.
 *   4224  layout 2: struct vfmig_edu_state: layout 1, then what the edu
 *         function holds beyond its registers: the DMA command register,
 *         the interrupt status, and its 4 KiB DMA buffer (edu address
 *         0x40000, reachable only by DMA).
 *
 * vfmig_stub.ko saves layout 2 and loads both; a layout-1 stream (an older
 * source) leaves what it lacks at the destination's power-on values: no
 * interrupt pending, the command register and the buffer untouched. A
 * driver that knows only layout 1 refuses a layout-2 stream at its header,
 * before the source has stopped.
 *
 * A DMA in flight when the device stops runs to its end first, so
 * dma_cmd never has the RUN bit (0x1). VFMIG_EDU_F_DMA_BUF says dma_buf
 * holds the function's buffer: the driver reads it by DMA through a page
 * of the user's own IOMMU mappings below edu's 28-bit DMA mask, so it is
 * clear when the user has mapped none. The buffer's last byte is not
 * moved (zero in the stream): QEMU's edu before 8.0 stops the VM on a DMA
 * that ends at the buffer's end, so no DMA can reach that byte there.
 */
#define VFMIG_EDU_STATE_MAGIC	0x32554445u	/* "EDU2" */
#define VFMIG_EDU_DMA_BUF_SIZE	4096u
#define VFMIG_EDU_F_DMA_BUF	(1u << 0)

struct vfmig_edu_state {
	struct vfmig_edu_regs regs;	/* layout 1 */
	__le32 magic;			/* VFMIG_EDU_STATE_MAGIC */
	__le32 flags;			/* VFMIG_EDU_F_* */
	__le32 irq_status;		/* BAR0 0x24: raised, not acknowledged */
	__le32 reserved0;		/* zero */
	__le64 dma_cmd;			/* BAR0 0x98 */
	__u8 reserved1[40];		/* zero */
	__u8 dma_buf[VFMIG_EDU_DMA_BUF_SIZE];	/* valid with F_DMA_BUF */
};					/* 4224 bytes */
/* ---- end: edu function state ------------------------------------------ */

/* ------------------------------------------------------------------------
 * The migration buffer: the data fd of a saving or resuming session can be
 * mmap'd (MAP_SHARED, offset 0, VFMIG_BUF_INFO.size bytes). Its pages are
 * ordinary kernel pages, so ibv_reg_mr() can register the mapping.
 *
 * Source (PRE_COPY*, STOP_COPY): VFMIG_SAVE_NEXT writes the next bytes of the
 * very stream read() returns into the buffer and says where. read() and
 * SAVE_NEXT share one stream position. Segments are handed out in order,
 * never wrap around the end of the buffer, and stay valid until released;
 * several may be outstanding. VFMIG_SAVE_RELEASE frees the oldest ones.
 *
 * Destination (RESUMING): userspace fills any range of the buffer with the
 * next stream bytes and VFMIG_LOAD_COMMIT consumes them exactly as write()
 * would. The range is free again when the ioctl returns.
 * ----------------------------------------------------------------------
 */

#define VFMIG_IOC_TYPE	0xF7

struct vfmig_buf_info {
	__u32 argsz;		/* in: sizeof(struct vfmig_buf_info) */
	__u32 flags;		/* out: 0 */
	__u64 size;		/* out: bytes to mmap at offset 0 */
};

#define VFMIG_SEG_EOF	(1u << 0)	/* SAVE_NEXT out: stream complete */

struct vfmig_seg {
	__u32 argsz;		/* in: sizeof(struct vfmig_seg) */
	__u32 flags;		/* out: VFMIG_SEG_* */
	__u64 offset;		/* SAVE_NEXT out / RELEASE, LOAD_COMMIT in */
	__u64 length;		/* SAVE_NEXT in: most bytes wanted (0: any),
				 * out: bytes handed out; RELEASE, COMMIT in
				 */
	__u64 stream_pos;	/* SAVE_NEXT out: stream offset of byte 0 */
};

/*
 * VFMIG_BUF_INFO: size of the mmap-able buffer.
 * VFMIG_SAVE_NEXT: 0 and length > 0: a segment; 0, length 0 and
 *   VFMIG_SEG_EOF: STOP_COPY stream complete. -ENOMSG: PRE_COPY and nothing
 *   to send now (as read()). -ENOBUFS: no free room; release first.
 * VFMIG_SAVE_RELEASE: frees the oldest outstanding segment, which must be
 *   {offset, length} as handed out; -EINVAL otherwise.
 * VFMIG_LOAD_COMMIT: consumes [offset, offset + length) of the buffer;
 *   errors as write() (e.g. -EINVAL for a corrupt or incompatible stream).
 */
#define VFMIG_BUF_INFO		_IOWR(VFMIG_IOC_TYPE, 0, struct vfmig_buf_info)
#define VFMIG_SAVE_NEXT		_IOWR(VFMIG_IOC_TYPE, 1, struct vfmig_seg)
#define VFMIG_SAVE_RELEASE	_IOW(VFMIG_IOC_TYPE, 2, struct vfmig_seg)
#define VFMIG_LOAD_COMMIT	_IOW(VFMIG_IOC_TYPE, 3, struct vfmig_seg)

/* ------------------------------------------------------------------------
 * Userspace on hosts whose <linux/vfio.h> predates PRE_COPY (Debian 12's
 * linux-libc-dev is 6.1): the 6.2+ uAPI constants, as Linux defines them.
 * ----------------------------------------------------------------------
 */
#ifndef __KERNEL__
#include <linux/vfio.h>
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY 6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P 7
#endif
#ifndef VFIO_MIG_GET_PRECOPY_INFO
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};

#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};

#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif
#endif /* !__KERNEL__ */

#endif /* _UAPI_VFMIG_H */
