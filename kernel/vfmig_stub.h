/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfmig_stub: a vfio-pci variant driver that gives a PCI function (QEMU's
 * edu device) a migratable state: its registers plus a sparse device-memory
 * area dirtied by an in-kernel workload.
 *
 * Lock order: migf->io_lock -> state_mutex -> migf->lock -> mem_lock, and
 * state_mutex -> core.memory_lock (read, BAR access). state_mutex is released
 * only by vfmig_state_mutex_unlock(), which applies a deferred reset. User
 * memory is copied under migf->io_lock only, which no reset path takes.
 */
#ifndef _VFMIG_STUB_H
#define _VFMIG_STUB_H

#include <crypto/sha2.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/ratelimit.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "include/uapi/vfmig.h"

#define VFMIG_DRV_NAME		"vfmig_stub"
#define VFMIG_EDU_VENDOR	0x1234	/* QEMU's edu device */
#define VFMIG_EDU_DEVICE	0x11e8
#define VFMIG_REGS_SIZE		((u32)sizeof(struct vfmig_edu_state))	/* layout 2 */
#define VFMIG_REGS1_SIZE	((u32)sizeof(struct vfmig_edu_regs))	/* layout 1 */
#define VFMIG_HDR_SIZE		((u64)sizeof(struct vfmig_stream_hdr))
#define VFMIG_RHDR_SIZE		((u64)sizeof(struct vfmig_rec_hdr))
#define VFMIG_PAGE_REC		(VFMIG_RHDR_SIZE + VFMIG_PAGE_SIZE)
#define VFMIG_REGS_REC		(VFMIG_RHDR_SIZE + VFMIG_REGS_SIZE)
#define VFMIG_END_REC		(VFMIG_RHDR_SIZE + sizeof(struct vfmig_rec_end))
#define VFMIG_COMPAT_MAX	128
#define VFMIG_MEM_MIB_MAX	SZ_1M	/* MiB: 1 TiB, the largest device memory */
#define VFMIG_BUF_SIZE_MAX	SZ_1G	/* bytes: largest migration buffer */
#define VFMIG_MAX_SEGS		1024	/* outstanding SAVE_NEXT segments */
#define VFMIG_DIGEST_CHUNK	256	/* pages hashed per mem_lock hold */
#define VFMIG_DIGEST_LEN	SHA256_DIGEST_SIZE	/* state_digest bytes */
#define VFMIG_TRACE_LEN		64	/* transitions kept per device */

/* edu BAR0 registers (QEMU's hw/misc/edu.c) */
#define EDU_IDENT		0x00
#define EDU_LIVENESS		0x04
#define EDU_FACT		0x08
#define EDU_STATUS		0x20
#define EDU_IRQ_STATUS		0x24
#define EDU_IRQ_RAISE		0x60
#define EDU_IRQ_ACK		0x64
#define EDU_DMA_SRC		0x80
#define EDU_DMA_DST		0x88
#define EDU_DMA_CNT		0x90
#define EDU_DMA_CMD		0x98
#define EDU_DMA_RUN		0x01
#define EDU_DMA_TO_PCI		0x02	/* buffer -> bus address */
#define EDU_ST_COMPUTING	0x01
#define EDU_ST_IRQFACT		0x80
#define EDU_BUF_ADDR		0x40000	/* the DMA buffer in edu's space */
#define EDU_DMA_MASK		((1ULL << 28) - 1)	/* edu clamps bus addresses */

/* Module parameters (main.c). */
extern unsigned int vfmig_mem_mib;
extern unsigned int vfmig_buf_size;
extern unsigned long vfmig_dirty_rate_default;
extern unsigned int vfmig_max_mem_mib;
extern struct dentry *vfmig_debugfs_root;

/* A sparse page store: index -> struct page *, absent = zero page. */
struct vfmig_mem {
	struct xarray pages;
	u64 size;		/* bytes, a multiple of VFMIG_PAGE_SIZE */
	unsigned long npages;
	unsigned long resident;		/* pages present */
};

/* Incremental parser of a resuming stream (stream.c). */
enum vfmig_parse_state {
	VFMIG_P_HDR,
	VFMIG_P_RHDR,
	VFMIG_P_PAYLOAD,
	VFMIG_P_DONE,
	VFMIG_P_ERR,
};

struct vfmig_parser {
	enum vfmig_parse_state st;
	int err;
	u64 bytes;			/* stream bytes consumed */
	u64 records;			/* REGS + DATA records applied */
	struct vfmig_stream_hdr hdr;
	struct vfmig_rec_hdr rh;
	u32 have;			/* bytes of hdr/rh/payload gathered */
	u8 *payload;			/* VFMIG_REC_MAX_PAYLOAD bytes */
	u32 zero_crc;			/* CRC32C of a page of zeros */
	u16 format;			/* the header's VFMIG_STREAM_FORMAT* */
	/* staged state, applied to the device only on a good RESUMING->STOP */
	struct vfmig_mem stage;
	unsigned long *recv;		/* pages received */
	unsigned long nrecv;
	bool regs_recv;
	struct vfmig_edu_state regs;	/* layout 1 streams: upgraded */
};

/* Producer of a saving stream (stream.c). */
enum vfmig_rec_kind {
	VFMIG_K_NONE,
	VFMIG_K_HDR,
	VFMIG_K_INIT,
	VFMIG_K_DIRTY,
	VFMIG_K_REGS,
	VFMIG_K_END,
};

struct vfmig_producer {
	u8 *rec;			/* the record being read out */
	u32 rec_len;
	u32 rec_off;
	enum vfmig_rec_kind kind;
	bool hdr_done;
	bool stop_copy;			/* device stopped: finish the stream */
	bool regs_done;
	bool end_done;
	u64 pos;			/* stream bytes handed out */
	u64 gen;			/* stream bytes generated */
	u64 records;			/* REGS + DATA + ZERO records generated */
	u32 zero_crc;			/* CRC32C of a page of zeros */
	u16 format;			/* 0 until latched (stream.c) */
	struct vfmig_edu_state regs;	/* snapshot taken at STOP_COPY */
};

struct vfmig_seg_ent {
	struct list_head node;
	u64 offset;
	u64 length;
};

struct vfmig_device;

/* Kinds of rate-limited warnings (vfmig_warn_rl()). */
enum vfmig_warn_kind {
	VFMIG_WARN_STREAM,		/* a resuming stream refused */
	VFMIG_WARN_HW,			/* the function did not do as told */
	VFMIG_WARN_NR,
};

/* Why a device's migration state changed (vfmig/mig_trace). */
enum vfmig_trace_cause {
	VFMIG_TRACE_ARC,		/* an FSM arc completed */
	VFMIG_TRACE_ERROR,		/* an FSM arc failed: ERROR */
	VFMIG_TRACE_RESET,		/* VFIO_DEVICE_RESET or a PCI reset */
	VFMIG_TRACE_CLOSE,		/* the last user closed the device */
};

/* One state change; seq and done from the module-wide vfmig_trace_seq. */
struct vfmig_trace_ent {
	u64 seq;			/* taken when the change began */
	u64 done;			/* taken when it was complete */
	u8 from;			/* enum vfio_device_mig_state */
	u8 to;
	u8 cause;			/* enum vfmig_trace_cause */
};

/* A data fd: saving (PRE_COPY*, STOP_COPY) or resuming. */
struct vfmig_file {
	struct file *filp;
	struct vfmig_device *vdev;
	/*
	 * Serializes the fd's users (read, write, buffer ioctls) and is held
	 * while they copy user memory; no reset path takes it. Only its
	 * holder advances the producer or feeds the parser.
	 */
	struct mutex io_lock;
	struct mutex lock;		/* protects everything below */
	bool disabled;
	bool saving;
	void *buf;			/* mmap-able buffer, allocated on first use */
	size_t buf_size;
	struct list_head segs;		/* outstanding SAVE_NEXT segments */
	unsigned int nsegs;
	struct vfmig_producer prod;
	struct vfmig_parser parser;
};

struct vfmig_device {
	struct vfio_pci_core_device core;

	struct mutex state_mutex;	/* protects mig_state, files, opened, identity */
	enum vfio_device_mig_state mig_state;
	struct vfmig_file *saving;
	struct vfmig_file *resuming;
	bool opened;
	bool hw_reset;			/* the function has a PCI reset method */
	bool fail_next;			/* fault injection: next FSM step fails */
	bool fail_reserve;		/* fault injection: commit cannot reserve */
	struct dentry *debugfs;		/* <debugfs>/vfmig_stub/<BDF>/ */
	spinlock_t reset_lock;		/* protects deferred_reset */
	bool deferred_reset;		/* a PCI reset to apply at unlock */

	/* compatibility identity, writable only while the device is closed */
	char model[VFMIG_MODEL_MAX];
	char version[VFMIG_VERSION_MAX];
	char version_compatible[VFMIG_COMPAT_MAX];
	char features[VFMIG_COMPAT_MAX];
	char allowed_memory[VFMIG_COMPAT_MAX];
	bool allowed_memory_set;	/* written: no longer follows params/memory */
	u16 stream_format;		/* vfmig/stream_format, READ_ONCE; 0: 1 */

	/*
	 * Interrupts of the function held back while it is stopped (edu.c).
	 * Protected by core.memory_lock held for writing.
	 */
	bool irq_held;
	bool held_intx;			/* we set PCI_COMMAND_INTX_DISABLE */
	bool held_msi;			/* we cleared the MSI enable bit */
	u32 held_irq_status;		/* irq status already delivered */

	struct mutex mem_lock;		/* protects mem, regs, dirty tracking, running */
	struct vfmig_mem mem;
	struct vfmig_edu_state regs;	/* shadow of the register block */
	unsigned long *dirty;		/* pages written after they were sent */
	unsigned long ndirty;
	unsigned long cursor;		/* pages below it were sent once */
	bool tracking;			/* a saving stream is active */
	bool running;			/* the workload may write */
	u64 wl_seq;			/* workload: pages written */
	u64 mem_gen;			/* bumped when mem is replaced or resized */

	/*
	 * migration/closed_digest: state_digest as the device was when its
	 * last user closed it stopped or saving; state_mutex protects both.
	 */
	u8 closed_digest[VFMIG_DIGEST_LEN];
	bool closed_digest_valid;

	/* workload */
	unsigned long dirty_rate;	/* bytes/s, READ_ONCE/WRITE_ONCE */
	struct delayed_work wl_work;
	u64 wl_last_ns;
	u64 wl_carry;
	u64 wl_rng;

	struct kobject *mig_kobj;	/* <pci dev>/migration */

	/* this function's own limits of the driver's warnings, per kind */
	struct ratelimit_state warn_rs[VFMIG_WARN_NR];

	/* the last VFMIG_TRACE_LEN state changes, a ring (vfmig/mig_trace) */
	spinlock_t trace_lock;		/* protects trace, trace_n */
	struct vfmig_trace_ent trace[VFMIG_TRACE_LEN];
	u64 trace_n;			/* entries ever recorded */
};

static inline struct vfmig_device *vfmig_from_vfio(struct vfio_device *vdev)
{
	return container_of(vdev, struct vfmig_device, core.vdev);
}

static inline struct device *vfmig_dev(struct vfmig_device *vdev)
{
	return &vdev->core.pdev->dev;
}

struct vfmig_device *vfmig_from_pdev(struct pci_dev *pdev);

/*
 * A warning about one function, rate-limited per function and kind: a
 * flood of refused streams on one function never hides another function's
 * warnings, nor the same function's warnings about its hardware (main.c).
 */
__printf(3, 4)
void vfmig_warn_rl(struct vfmig_device *vdev, enum vfmig_warn_kind kind,
		   const char *fmt, ...);

/* vfio_dev.c */
extern const struct vfio_device_ops vfmig_vfio_ops;

/* lm.c */
struct file *vfmig_set_state(struct vfio_device *vdev,
			     enum vfio_device_mig_state new_state);
int vfmig_get_state(struct vfio_device *vdev,
		    enum vfio_device_mig_state *state);
int vfmig_get_data_size(struct vfio_device *vdev, unsigned long *len);
void vfmig_reset_locked(struct vfmig_device *vdev);
void vfmig_state_mutex_unlock(struct vfmig_device *vdev);
void vfmig_disable_files_locked(struct vfmig_device *vdev);
void vfmig_update_running_locked(struct vfmig_device *vdev);
void vfmig_request_reset(struct vfmig_device *vdev);
void vfmig_closed_digest_locked(struct vfmig_device *vdev);
u64 vfmig_trace_begin(void);
void vfmig_trace_add(struct vfmig_device *vdev, u64 seq,
		     enum vfio_device_mig_state from,
		     enum vfio_device_mig_state to, enum vfmig_trace_cause cause);

/* state.c */
int vfmig_mem_init(struct vfmig_mem *mem, u64 size);
void vfmig_mem_free(struct vfmig_mem *mem);
bool vfmig_mem_read_page(struct vfmig_mem *mem, unsigned long idx, void *dst);
int vfmig_mem_write_page(struct vfmig_mem *mem, unsigned long idx,
			 const void *src);
int vfmig_state_resize(struct vfmig_device *vdev, u64 size);
int vfmig_state_region_add(struct vfmig_device *vdev);
void vfmig_state_region_resize(struct vfmig_device *vdev);
void vfmig_regs_sync_from_hw(struct vfmig_device *vdev,
			     struct vfmig_edu_state *out);
void vfmig_regs_apply_to_hw(struct vfmig_device *vdev);
void vfmig_hw_quiesce(struct vfmig_device *vdev);
void vfmig_regs_reset_hw(struct vfmig_device *vdev, bool memory_locked);
void vfmig_state_clear_locked(struct vfmig_device *vdev);
int vfmig_state_commit(struct vfmig_device *vdev, struct vfmig_mem *stage,
		       const struct vfmig_edu_state *regs, bool fail);
void vfmig_regs_init(struct vfmig_edu_state *st);
bool vfmig_regs_size_ok(u32 size);
void vfmig_regs_load(struct vfmig_edu_state *st, const void *src, u32 len);
void __iomem *vfmig_bar0(struct vfmig_device *vdev);
bool vfmig_edu_dma_wait(void __iomem *bar);
int vfmig_state_digest(struct vfmig_device *vdev, u8 out[VFMIG_DIGEST_LEN],
		       bool killable);

/* edu.c */
void vfmig_edu_dma_quiesce(struct vfmig_device *vdev);
void vfmig_edu_irq_hold(struct vfmig_device *vdev);
void vfmig_edu_irq_release(struct vfmig_device *vdev);
void vfmig_edu_irq_release_locked(struct vfmig_device *vdev, bool redeliver);
void vfmig_edu_save(struct vfmig_device *vdev);
void vfmig_edu_restore(struct vfmig_device *vdev,
		       const struct vfmig_edu_state *st);

/* dirty.c */
void vfmig_dirty_mark_locked(struct vfmig_device *vdev, unsigned long idx);
void vfmig_dirty_start_locked(struct vfmig_device *vdev);
void vfmig_dirty_stop_locked(struct vfmig_device *vdev);
long vfmig_dirty_next_locked(struct vfmig_device *vdev);
void vfmig_workload_init(struct vfmig_device *vdev);
void vfmig_workload_stop(struct vfmig_device *vdev);

/* stream.c */
u32 vfmig_crc32c(const void *p, size_t n);
int vfmig_prod_init(struct vfmig_producer *prod);
void vfmig_prod_free(struct vfmig_producer *prod);
int vfmig_prod_ready(struct vfmig_device *vdev, struct vfmig_producer *prod);
void vfmig_prod_advance(struct vfmig_producer *prod, size_t n);
ssize_t vfmig_prod_copy(struct vfmig_device *vdev, struct vfmig_producer *prod,
			void *kdst, size_t len);
void vfmig_prod_pending(struct vfmig_device *vdev, struct vfmig_producer *prod,
			u64 *initial, u64 *dirty);
u64 vfmig_prod_stop_copy_len(struct vfmig_device *vdev,
			     struct vfmig_producer *prod);
int vfmig_parser_init(struct vfmig_parser *p);
void vfmig_parser_free(struct vfmig_parser *p);
int vfmig_parser_feed(struct vfmig_device *vdev, struct vfmig_parser *p,
		      const u8 *src, size_t len);
int vfmig_parser_complete(struct vfmig_device *vdev, struct vfmig_parser *p);
void vfmig_build_hdr(struct vfmig_device *vdev, struct vfmig_stream_hdr *h);

/* compat.c */
int vfmig_check_hdr(struct vfmig_device *vdev,
		    const struct vfmig_stream_hdr *h);
bool vfmig_version_valid(const char *s);
bool vfmig_ranges_valid(const char *s);

/* sysfs.c */
extern const struct attribute_group *vfmig_dev_groups[];
int vfmig_sysfs_add(struct vfmig_device *vdev);
void vfmig_sysfs_remove(struct vfmig_device *vdev);
void vfmig_debugfs_add(struct vfmig_device *vdev);
void vfmig_debugfs_remove(struct vfmig_device *vdev);

#endif /* _VFMIG_STUB_H */
