// SPDX-License-Identifier: GPL-2.0
/*
 * The migratable device state: a sparse device-memory area (a VFIO
 * device-specific region) and the edu function's register block.
 */
#include <crypto/sha2.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vfmig_stub.h"

#define EDU_DMA_WAIT_US		1000000	/* edu's DMA takes 100 ms */
#define EDU_FACT_WAIT_US	200000

int vfmig_mem_init(struct vfmig_mem *mem, u64 size)
{
	xa_init(&mem->pages);
	mem->size = size;
	mem->npages = size / VFMIG_PAGE_SIZE;
	mem->resident = 0;
	return 0;
}

void vfmig_mem_free(struct vfmig_mem *mem)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&mem->pages, idx, page)
		__free_page(page);
	xa_destroy(&mem->pages);
}

/* Copy page @idx to @dst; false when it is an absent (zero) page. */
bool vfmig_mem_read_page(struct vfmig_mem *mem, unsigned long idx, void *dst)
{
	struct page *page = xa_load(&mem->pages, idx);

	if (!page) {
		memset(dst, 0, VFMIG_PAGE_SIZE);
		return false;
	}
	memcpy_from_page(dst, page, 0, VFMIG_PAGE_SIZE);
	return true;
}

static struct page *vfmig_mem_page(struct vfmig_mem *mem, unsigned long idx)
{
	struct page *page = xa_load(&mem->pages, idx);
	void *old;

	if (page)
		return page;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page)
		return NULL;
	old = xa_store(&mem->pages, idx, page, GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old)) {
		__free_page(page);
		return NULL;
	}
	mem->resident++;
	return page;
}

/* A page of zeros is stored as "absent", so a sparse state stays sparse. */
int vfmig_mem_write_page(struct vfmig_mem *mem, unsigned long idx,
			 const void *src)
{
	struct page *page;

	if (!memchr_inv(src, 0, VFMIG_PAGE_SIZE)) {
		page = xa_erase(&mem->pages, idx);
		if (page) {
			__free_page(page);
			mem->resident--;
		}
		return 0;
	}
	page = vfmig_mem_page(mem, idx);
	if (!page)
		return -ENOMEM;
	memcpy_to_page(page, 0, src, VFMIG_PAGE_SIZE);
	return 0;
}

/* Caller holds state_mutex and the device is closed (or resizing on commit). */
int vfmig_state_resize(struct vfmig_device *vdev, u64 size)
{
	unsigned long npages = size / VFMIG_PAGE_SIZE;
	unsigned long *dirty;

	dirty = kvcalloc(BITS_TO_LONGS(npages) ?: 1, sizeof(long),
			 GFP_KERNEL_ACCOUNT);
	if (!dirty)
		return -ENOMEM;
	mutex_lock(&vdev->mem_lock);
	vfmig_mem_free(&vdev->mem);
	vfmig_mem_init(&vdev->mem, size);
	kvfree(vdev->dirty);
	vdev->dirty = dirty;
	vdev->ndirty = 0;
	vdev->cursor = 0;
	vdev->mem_gen++;
	mutex_unlock(&vdev->mem_lock);
	return 0;
}

/*
 * Forget everything a user left in the device: device memory reads as
 * zeros again, the register shadow and the workload counter start over.
 * Close and reset call it, so no data crosses from one user to the next.
 */
void vfmig_state_clear_locked(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->state_mutex);
	mutex_lock(&vdev->mem_lock);
	vfmig_mem_free(&vdev->mem);
	vfmig_mem_init(&vdev->mem, vdev->mem.size);
	bitmap_zero(vdev->dirty, vdev->mem.npages);
	vdev->ndirty = 0;
	vdev->cursor = 0;
	vfmig_regs_init(&vdev->regs);
	vdev->wl_seq = 0;
	vdev->mem_gen++;
	mutex_unlock(&vdev->mem_lock);
}

/* Power-on values of the register block (layout 2). */
void vfmig_regs_init(struct vfmig_edu_state *st)
{
	memset(st, 0, sizeof(*st));
	st->regs.magic = cpu_to_le32(VFMIG_EDU_REGS_MAGIC);
	st->magic = cpu_to_le32(VFMIG_EDU_STATE_MAGIC);
}

/* The register block layouts a stream may carry (regs_size). */
bool vfmig_regs_size_ok(u32 size)
{
	return size == VFMIG_REGS1_SIZE || size == VFMIG_REGS_SIZE;
}

/*
 * A received register block of @len bytes (a size vfmig_regs_size_ok()
 * accepted) as layout 2. A layout-1 block keeps magic 0: the restore then
 * leaves the command register and the buffer alone (no interrupt pending).
 */
void vfmig_regs_load(struct vfmig_edu_state *st, const void *src, u32 len)
{
	vfmig_regs_init(st);
	if (len < sizeof(*st))
		st->magic = 0;
	memcpy(st, src, min_t(u32, len, sizeof(*st)));
	/* a stopped source never sends a running DMA */
	st->dma_cmd &= ~cpu_to_le64(EDU_DMA_RUN);
}

/*
 * RESUMING->STOP: replace device memory with @stage (whose pages move, the
 * stage is left empty) and the register shadow with @regs. Every slot the
 * staged pages need is reserved first, so this either applies the whole
 * staged state or fails with -ENOMEM leaving the old one. @fail: fault
 * injection, the reservation fails. Caller holds state_mutex.
 */
int vfmig_state_commit(struct vfmig_device *vdev, struct vfmig_mem *stage,
		       const struct vfmig_edu_state *regs, bool fail)
{
	unsigned long *dirty = NULL, idx;
	struct vfmig_mem *mem = &vdev->mem;
	struct page *page;
	int ret = 0;

	lockdep_assert_held(&vdev->state_mutex);
	if (stage->npages != mem->npages) {
		dirty = kvcalloc(BITS_TO_LONGS(stage->npages) ?: 1,
				 sizeof(long), GFP_KERNEL_ACCOUNT);
		if (!dirty)
			return -ENOMEM;
	}
	mutex_lock(&vdev->mem_lock);
	xa_for_each(&stage->pages, idx, page) {
		ret = fail ? -ENOMEM : xa_reserve(&mem->pages, idx,
						  GFP_KERNEL_ACCOUNT);
		if (ret)
			break;
	}
	if (ret) {
		/* only the reserved (still empty) slots go away */
		xa_for_each(&stage->pages, idx, page)
			xa_release(&mem->pages, idx);
		mutex_unlock(&vdev->mem_lock);
		kvfree(dirty);
		return ret;
	}
	/* cannot fail from here: pages absent from the stage go ... */
	xa_for_each(&mem->pages, idx, page) {
		if (!xa_load(&stage->pages, idx)) {
			xa_erase(&mem->pages, idx);
			__free_page(page);
		}
	}
	/* ... and the staged ones move into reserved slots */
	xa_for_each(&stage->pages, idx, page) {
		page = xa_store(&mem->pages, idx, page, GFP_NOWAIT);
		if (page && !xa_is_err(page))
			__free_page(page);
	}
	xa_destroy(&stage->pages);
	mem->size = stage->size;
	mem->npages = stage->npages;
	mem->resident = stage->resident;
	vfmig_mem_init(stage, 0);
	if (dirty) {
		kvfree(vdev->dirty);
		vdev->dirty = dirty;
	}
	vdev->ndirty = 0;
	vdev->cursor = 0;
	vdev->regs = *regs;
	vdev->mem_gen++;
	mutex_unlock(&vdev->mem_lock);
	return 0;
}

/*
 * pread/pwrite of the device-memory region. User memory is copied with
 * mem_lock dropped, so a user buffer that faults (even on a vfio mapping)
 * never waits while this device's memory is locked.
 */
static ssize_t vfmig_region_rw(struct vfio_pci_core_device *core,
			       char __user *buf, size_t count, loff_t *ppos,
			       bool iswrite)
{
	struct vfmig_device *vdev = container_of(core, struct vfmig_device,
						 core);
	u64 pos = *ppos & VFIO_PCI_OFFSET_MASK;
	size_t done = 0;
	u8 *user, *bounce;
	int ret = 0;

	bounce = kmalloc(2 * VFMIG_PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (!bounce)
		return -ENOMEM;
	user = bounce + VFMIG_PAGE_SIZE;

	while (done < count) {
		u64 at = pos + done;
		unsigned long idx = at / VFMIG_PAGE_SIZE;
		size_t off = at % VFMIG_PAGE_SIZE;
		size_t n = min_t(size_t, count - done, VFMIG_PAGE_SIZE - off);

		if (iswrite && copy_from_user(user, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		mutex_lock(&vdev->mem_lock);
		if (at >= vdev->mem.size) {
			mutex_unlock(&vdev->mem_lock);
			ret = done ? 0 : -EINVAL;
			break;
		}
		n = min_t(u64, n, vdev->mem.size - at);
		vfmig_mem_read_page(&vdev->mem, idx, bounce);
		if (iswrite) {
			memcpy(bounce + off, user, n);
			ret = vfmig_mem_write_page(&vdev->mem, idx, bounce);
			if (!ret)
				vfmig_dirty_mark_locked(vdev, idx);
		}
		mutex_unlock(&vdev->mem_lock);
		if (ret)
			break;
		if (!iswrite && copy_to_user(buf + done, bounce + off, n)) {
			ret = -EFAULT;
			break;
		}
		done += n;
	}
	kfree(bounce);
	if (done) {
		*ppos += done;
		return done;
	}
	return ret;
}

static void vfmig_region_release(struct vfio_pci_core_device *core,
				 struct vfio_pci_region *region)
{
}

static const struct vfio_pci_regops vfmig_region_ops = {
	.rw = vfmig_region_rw,
	.release = vfmig_region_release,
};

int vfmig_state_region_add(struct vfmig_device *vdev)
{
	return vfio_pci_core_register_dev_region(&vdev->core,
						 VFMIG_REGION_TYPE,
						 VFMIG_REGION_SUBTYPE_MEM,
						 &vfmig_region_ops,
						 vdev->mem.size,
						 VFIO_REGION_INFO_FLAG_READ |
						 VFIO_REGION_INFO_FLAG_WRITE,
						 vdev);
}

/* After a RESUMING->STOP that changed the memory size. */
void vfmig_state_region_resize(struct vfmig_device *vdev)
{
	int i;

	for (i = 0; i < vdev->core.num_regions; i++) {
		struct vfio_pci_region *r = &vdev->core.region[i];

		if (r->ops == &vfmig_region_ops)
			r->size = vdev->mem.size;
	}
}

/*
 * BAR0 of the function, or NULL when it cannot be touched now. Like
 * vfio_pci_core's own BAR accesses, the caller holds core.memory_lock (read
 * or write) from here until its last access, so the user cannot turn memory
 * decode off or reset the function in between.
 */
void __iomem *vfmig_bar0(struct vfmig_device *vdev)
{
	struct pci_dev *pdev = vdev->core.pdev;
	u16 cmd;

	lockdep_assert_held(&vdev->core.memory_lock);
	if (!vdev->opened || pdev->current_state != PCI_D0)
		return NULL;
	if (pci_read_config_word(pdev, PCI_COMMAND, &cmd) ||
	    !(cmd & PCI_COMMAND_MEMORY))
		return NULL;
	if (pci_resource_len(pdev, 0) < 0x100 ||
	    vfio_pci_core_setup_barmap(&vdev->core, 0))
		return NULL;
	return vdev->core.barmap[0];
}

static bool vfmig_fact_wait(void __iomem *bar)
{
	int waited;

	for (waited = 0; waited < EDU_FACT_WAIT_US; waited += 100) {
		if (!(ioread32(bar + EDU_STATUS) & EDU_ST_COMPUTING))
			return true;
		usleep_range(100, 200);
	}
	return false;
}

/*
 * Let the function finish what it was doing: a factorial being computed and
 * a DMA in flight (edu completes it, and raises its interrupt if asked to,
 * 100 ms after the start). Afterwards it changes nothing by itself.
 */
bool vfmig_edu_dma_wait(void __iomem *bar)
{
	int waited;

	for (waited = 0; waited < EDU_DMA_WAIT_US; waited += 1000) {
		if (!(readq(bar + EDU_DMA_CMD) & EDU_DMA_RUN))
			return true;
		usleep_range(1000, 2000);
	}
	return false;
}

static void vfmig_edu_wait_idle(struct vfmig_device *vdev, void __iomem *bar)
{
	if (!vfmig_fact_wait(bar))
		vfmig_warn_rl(vdev, VFMIG_WARN_HW, "factorial still computing when stopped\n");
	if (!vfmig_edu_dma_wait(bar))
		vfmig_warn_rl(vdev, VFMIG_WARN_HW, "DMA still running when stopped\n");
}

/* The device stops: quiesce the function itself. Caller holds state_mutex. */
void vfmig_hw_quiesce(struct vfmig_device *vdev)
{
	void __iomem *bar;

	lockdep_assert_held(&vdev->state_mutex);
	down_read(&vdev->core.memory_lock);
	bar = vfmig_bar0(vdev);
	if (bar)
		vfmig_edu_wait_idle(vdev, bar);
	up_read(&vdev->core.memory_lock);
}

/*
 * Refresh the register shadow from the function (when it is open and
 * decodes memory; after it finished a factorial and a DMA) and copy it to
 * @out. Caller holds state_mutex.
 */
void vfmig_regs_sync_from_hw(struct vfmig_device *vdev,
			     struct vfmig_edu_state *out)
{
	struct vfmig_edu_regs r = {};
	u32 irq_status = 0;
	void __iomem *bar;
	u64 cmd = 0;

	lockdep_assert_held(&vdev->state_mutex);
	down_read(&vdev->core.memory_lock);
	bar = vfmig_bar0(vdev);
	if (bar) {
		vfmig_edu_wait_idle(vdev, bar);
		r.magic = cpu_to_le32(VFMIG_EDU_REGS_MAGIC);
		r.ident = cpu_to_le32(ioread32(bar + EDU_IDENT));
		r.liveness = cpu_to_le32(ioread32(bar + EDU_LIVENESS));
		r.fact = cpu_to_le32(ioread32(bar + EDU_FACT));
		r.status = cpu_to_le32(ioread32(bar + EDU_STATUS) &
				       EDU_ST_IRQFACT);
		r.dma_src = cpu_to_le64(readq(bar + EDU_DMA_SRC));
		r.dma_dst = cpu_to_le64(readq(bar + EDU_DMA_DST));
		r.dma_cnt = cpu_to_le64(readq(bar + EDU_DMA_CNT));
		irq_status = ioread32(bar + EDU_IRQ_STATUS);
		cmd = readq(bar + EDU_DMA_CMD) & ~(u64)EDU_DMA_RUN;
	}
	up_read(&vdev->core.memory_lock);
	mutex_lock(&vdev->mem_lock);
	if (bar) {
		r.workload_seq = cpu_to_le64(vdev->wl_seq);
		vdev->regs.regs = r;
		vdev->regs.magic = cpu_to_le32(VFMIG_EDU_STATE_MAGIC);
		vdev->regs.irq_status = cpu_to_le32(irq_status);
		vdev->regs.dma_cmd = cpu_to_le64(cmd);
	} else {
		vdev->regs.regs.workload_seq = cpu_to_le64(vdev->wl_seq);
	}
	if (out)
		*out = vdev->regs;
	mutex_unlock(&vdev->mem_lock);
}

/* n such that n! mod 2^32 == v, as the edu device computes it. */
static int vfmig_fact_input(u32 v, u32 *n)
{
	u32 i, f = 1;

	for (i = 0; i <= 34; i++) {
		if (i)
			f *= i;
		if (f == v) {
			*n = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Write @r to the function. Caller holds core.memory_lock. */
static void vfmig_regs_write_hw(struct vfmig_device *vdev,
				const struct vfmig_edu_regs *regs)
{
	void __iomem *bar = vfmig_bar0(vdev);
	struct vfmig_edu_regs r = *regs;
	u32 n;

	if (!bar)
		return;

	iowrite32(~le32_to_cpu(r.liveness), bar + EDU_LIVENESS);
	writeq(le64_to_cpu(r.dma_src), bar + EDU_DMA_SRC);
	writeq(le64_to_cpu(r.dma_dst), bar + EDU_DMA_DST);
	writeq(le64_to_cpu(r.dma_cnt), bar + EDU_DMA_CNT);
	/* no factorial interrupt while the register is being restored */
	iowrite32(0, bar + EDU_STATUS);
	if (!vfmig_fact_input(le32_to_cpu(r.fact), &n) && vfmig_fact_wait(bar)) {
		iowrite32(n, bar + EDU_FACT);
		if (!vfmig_fact_wait(bar))
			dev_warn(vfmig_dev(vdev), "factorial register restore timed out\n");
	} else {
		dev_warn(vfmig_dev(vdev), "factorial register value %#x cannot be restored\n",
			 le32_to_cpu(r.fact));
	}
	iowrite32(le32_to_cpu(r.status) & EDU_ST_IRQFACT, bar + EDU_STATUS);
}

/*
 * Write the register shadow to the function: the registers, then (edu.c)
 * its DMA buffer, command register and interrupt status. Caller holds
 * state_mutex; the device is stopped, its interrupts held back.
 */
void vfmig_regs_apply_to_hw(struct vfmig_device *vdev)
{
	struct vfmig_edu_state *st;
	struct vfmig_edu_regs r;

	lockdep_assert_held(&vdev->state_mutex);
	st = kmalloc(sizeof(*st), GFP_KERNEL_ACCOUNT);
	mutex_lock(&vdev->mem_lock);
	r = vdev->regs.regs;
	if (st)
		*st = vdev->regs;
	vdev->wl_seq = le64_to_cpu(r.workload_seq);
	mutex_unlock(&vdev->mem_lock);
	down_read(&vdev->core.memory_lock);
	vfmig_regs_write_hw(vdev, &r);
	up_read(&vdev->core.memory_lock);
	if (st)
		vfmig_edu_restore(vdev, st);
	else
		dev_warn(vfmig_dev(vdev), "no memory to restore the DMA buffer and interrupt status\n");
	kfree(st);
}

/*
 * Put the function's registers back to their power-on values (liveness,
 * factorial, status, DMA registers 0; a pending interrupt acknowledged) and
 * stop holding its interrupts back.
 * @memory_locked: the caller holds core.memory_lock for writing.
 */
void vfmig_regs_reset_hw(struct vfmig_device *vdev, bool memory_locked)
{
	struct vfmig_edu_regs zero = {};
	void __iomem *bar;

	if (!memory_locked)
		down_write(&vdev->core.memory_lock);
	vfmig_regs_write_hw(vdev, &zero);
	bar = vfmig_bar0(vdev);
	if (bar)
		iowrite32(ioread32(bar + EDU_IRQ_STATUS), bar + EDU_IRQ_ACK);
	vfmig_edu_irq_release_locked(vdev, false);
	if (!memory_locked)
		up_write(&vdev->core.memory_lock);
}

/*
 * SHA-256 of the register block || device memory. Caller holds state_mutex
 * (released here, before the memory is hashed): the registers are read
 * under it, then memory is hashed VFMIG_DIGEST_CHUNK pages per mem_lock
 * hold, yielding between chunks and, when @killable, giving up with -EINTR
 * on a fatal signal (close hashes unkillable: its task may be an exiting
 * one with SIGKILL pending). A device that is running or written meanwhile gives a digest of
 * no single moment; -EAGAIN when its memory was replaced or resized.
 */
int vfmig_state_digest(struct vfmig_device *vdev, u8 out[VFMIG_DIGEST_LEN],
		       bool killable)
{
	struct vfmig_edu_state *regs;
	struct sha256_state sha;
	unsigned long idx = 0, npages;
	int ret = 0;
	u64 gen;
	u8 *buf;

	lockdep_assert_held(&vdev->state_mutex);
	regs = kmalloc(sizeof(*regs), GFP_KERNEL);
	buf = kmalloc(VFMIG_PAGE_SIZE, GFP_KERNEL);
	if (!regs || !buf) {
		vfmig_state_mutex_unlock(vdev);
		ret = -ENOMEM;
		goto out;
	}
	vfmig_regs_sync_from_hw(vdev, regs);
	vfmig_state_mutex_unlock(vdev);

	sha256_init(&sha);
	sha256_update(&sha, (const u8 *)regs, sizeof(*regs));
	mutex_lock(&vdev->mem_lock);
	gen = vdev->mem_gen;
	npages = vdev->mem.npages;
	mutex_unlock(&vdev->mem_lock);
	while (idx < npages) {
		unsigned long end = min(idx + VFMIG_DIGEST_CHUNK, npages);

		if (killable && fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		mutex_lock(&vdev->mem_lock);
		if (vdev->mem_gen != gen) {
			mutex_unlock(&vdev->mem_lock);
			ret = -EAGAIN;
			break;
		}
		for (; idx < end; idx++) {
			vfmig_mem_read_page(&vdev->mem, idx, buf);
			sha256_update(&sha, buf, VFMIG_PAGE_SIZE);
		}
		mutex_unlock(&vdev->mem_lock);
		cond_resched();
	}
	if (!ret)
		sha256_final(&sha, out);
out:
	kfree(buf);
	kfree(regs);
	return ret;
}
