// SPDX-License-Identifier: GPL-2.0
/*
 * The edu function beyond its registers: a DMA in flight ends before a P2P
 * state, its interrupts are held back while it is stopped, and its DMA
 * buffer, command register and interrupt status are saved and restored.
 *
 * The buffer (4 KiB at edu address 0x40000) is reachable only by DMA. The
 * driver borrows one page of the user's own IOMMU mappings below edu's
 * 28-bit DMA mask: it keeps the page's contents, lets edu DMA the buffer
 * into it (or out of it), and puts the contents back. The device is
 * stopped meanwhile; the user's memory is changed only inside the one
 * ioctl that stops, saves or loads the device.
 */
#include <linux/delay.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/vfio.h>

#include "vfmig_stub.h"

#define EDU_SCAN_STRIDE	SZ_64K	/* IOVAs tried for a page to borrow */
#define EDU_DMA_LEN	(VFMIG_EDU_DMA_BUF_SIZE - 1)

/* -------------------------------------------------------- P2P quiesce */

/*
 * edu cannot tell a peer-to-peer DMA from any other, so a P2P state lets a
 * DMA in flight run to its end first. Caller holds state_mutex.
 */
void vfmig_edu_dma_quiesce(struct vfmig_device *vdev)
{
	void __iomem *bar;

	lockdep_assert_held(&vdev->state_mutex);
	down_read(&vdev->core.memory_lock);
	bar = vfmig_bar0(vdev);
	if (bar && !vfmig_edu_dma_wait(bar))
		vfmig_warn_rl(vdev, VFMIG_WARN_HW, "DMA still running when entering a P2P state\n");
	up_read(&vdev->core.memory_lock);
}

/* ------------------------------------------------ interrupts held back */

static void vfmig_cfg_update16(struct pci_dev *pdev, int where, u16 clear,
			       u16 set)
{
	u16 v;

	if (pci_read_config_word(pdev, where, &v))
		return;
	pci_write_config_word(pdev, where, (v & ~clear) | set);
}

/*
 * The device stopped: from now on nothing the function raises reaches the
 * user. INTx is disabled at the function and MSI switched off (edu has no
 * per-vector mask; with MSI off, edu signals on its INTx pin, disabled
 * too); the interrupt status at this moment is what was already delivered.
 * Caller holds state_mutex.
 */
void vfmig_edu_irq_hold(struct vfmig_device *vdev)
{
	struct pci_dev *pdev = vdev->core.pdev;
	void __iomem *bar;
	u16 cmd, flags;

	lockdep_assert_held(&vdev->state_mutex);
	down_write(&vdev->core.memory_lock);
	if (vdev->irq_held || !vdev->opened ||
	    pci_read_config_word(pdev, PCI_COMMAND, &cmd))
		goto out;
	vdev->held_intx = !(cmd & PCI_COMMAND_INTX_DISABLE);
	if (vdev->held_intx)
		vfmig_cfg_update16(pdev, PCI_COMMAND, 0,
				   PCI_COMMAND_INTX_DISABLE);
	vdev->held_msi = false;
	if (pdev->msi_cap && pdev->msi_enabled &&
	    !pci_read_config_word(pdev, pdev->msi_cap + PCI_MSI_FLAGS, &flags) &&
	    (flags & PCI_MSI_FLAGS_ENABLE)) {
		vfmig_cfg_update16(pdev, pdev->msi_cap + PCI_MSI_FLAGS,
				   PCI_MSI_FLAGS_ENABLE, 0);
		vdev->held_msi = true;
	}
	bar = vfmig_bar0(vdev);
	vdev->held_irq_status = bar ? ioread32(bar + EDU_IRQ_STATUS) : 0;
	vdev->irq_held = true;
out:
	up_write(&vdev->core.memory_lock);
}

/*
 * The device runs again (or is reset): MSI back on, then INTx enabled, so
 * a pending level interrupt reaches the user now. @redeliver: interrupts
 * raised while held are sent as MSI again (MSI is an edge; enabling it
 * again does not send what was raised meanwhile). Caller holds
 * core.memory_lock for writing.
 */
void vfmig_edu_irq_release_locked(struct vfmig_device *vdev, bool redeliver)
{
	struct pci_dev *pdev = vdev->core.pdev;
	void __iomem *bar;
	u32 raised;

	lockdep_assert_held_write(&vdev->core.memory_lock);
	if (!vdev->irq_held)
		return;
	vdev->irq_held = false;
	/* the kernel may have switched MSI off meanwhile: then leave it */
	if (vdev->held_msi && pdev->msi_enabled) {
		vfmig_cfg_update16(pdev, pdev->msi_cap + PCI_MSI_FLAGS, 0,
				   PCI_MSI_FLAGS_ENABLE);
		bar = vfmig_bar0(vdev);
		if (redeliver && bar) {
			raised = ioread32(bar + EDU_IRQ_STATUS) &
				 ~vdev->held_irq_status;
			if (raised)
				iowrite32(raised, bar + EDU_IRQ_RAISE);
		}
	}
	if (vdev->held_intx)
		vfmig_cfg_update16(pdev, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE,
				   0);
}

void vfmig_edu_irq_release(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->state_mutex);
	down_write(&vdev->core.memory_lock);
	vfmig_edu_irq_release_locked(vdev, true);
	up_write(&vdev->core.memory_lock);
}

/* ------------------------------------------- DMA buffer and command */

struct vfmig_borrow {
	dma_addr_t iova;
	u8 *saved;		/* the page's own contents */
};

static bool vfmig_borrow_try(struct vfmig_device *vdev, dma_addr_t iova,
			     u8 *saved)
{
	/* readable, and writable (the same bytes written back) */
	return !vfio_dma_rw(&vdev->core.vdev, iova, saved, PAGE_SIZE, false) &&
	       !vfio_dma_rw(&vdev->core.vdev, iova, saved, PAGE_SIZE, true);
}

/*
 * A page of the user's IOMMU mappings edu can reach: the page of @hint
 * (the bus address of the function's last DMA) or the first one found at a
 * EDU_SCAN_STRIDE step below the DMA mask. vfio_dma_rw() copies user
 * memory: no memory_lock or mem_lock is held here.
 */
static int vfmig_borrow(struct vfmig_device *vdev, u64 hint,
			struct vfmig_borrow *b)
{
	dma_addr_t iova;

	b->saved = kmalloc(PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (!b->saved)
		return -ENOMEM;
	hint &= PAGE_MASK;
	if (hint <= EDU_DMA_MASK && vfmig_borrow_try(vdev, hint, b->saved)) {
		b->iova = hint;
		return 0;
	}
	for (iova = 0; iova <= EDU_DMA_MASK; iova += EDU_SCAN_STRIDE) {
		if (vfmig_borrow_try(vdev, iova, b->saved)) {
			b->iova = iova;
			return 0;
		}
		if (fatal_signal_pending(current))
			break;
	}
	kfree(b->saved);
	b->saved = NULL;
	return -ENOENT;
}

static void vfmig_borrow_return(struct vfmig_device *vdev,
				struct vfmig_borrow *b)
{
	if (vfio_dma_rw(&vdev->core.vdev, b->iova, b->saved, PAGE_SIZE, true))
		dev_warn(vfmig_dev(vdev), "could not put back the borrowed page at IOVA %pad\n",
			 &b->iova);
	kfree(b->saved);
}

/*
 * One buffer DMA, @cmd without RUN; false if it did not end. It moves all
 * but the last byte: QEMU's edu before 8.0 stops the whole VM (hw_error)
 * on a DMA that ends at the buffer's end, so no DMA reaches that byte there.
 */
static bool vfmig_edu_dma(void __iomem *bar, u64 src, u64 dst, u64 cmd)
{
	writeq(src, bar + EDU_DMA_SRC);
	writeq(dst, bar + EDU_DMA_DST);
	writeq(EDU_DMA_LEN, bar + EDU_DMA_CNT);
	writeq(cmd | EDU_DMA_RUN, bar + EDU_DMA_CMD);
	return vfmig_edu_dma_wait(bar);
}

/*
 * A DMA with bus mastering off: it sets the command register to @cmd and
 * moves nothing over the bus (from the bus it reads zeros).
 */
static void vfmig_edu_dma_nomaster(struct vfmig_device *vdev,
				   void __iomem *bar, u64 cmd)
{
	struct pci_dev *pdev = vdev->core.pdev;
	u16 pcmd;

	if (pci_read_config_word(pdev, PCI_COMMAND, &pcmd))
		return;
	if (pcmd & PCI_COMMAND_MASTER)
		pci_write_config_word(pdev, PCI_COMMAND,
				      pcmd & ~PCI_COMMAND_MASTER);
	if (cmd & EDU_DMA_TO_PCI)
		vfmig_edu_dma(bar, EDU_BUF_ADDR, 0, cmd);
	else
		vfmig_edu_dma(bar, 0, EDU_BUF_ADDR, cmd);
	if (pcmd & PCI_COMMAND_MASTER)
		vfmig_cfg_update16(pdev, PCI_COMMAND, 0, PCI_COMMAND_MASTER);
}

/*
 * With the borrowed page at @iova: @load: buffer := page; in any case the
 * command register ends as @cmd (only a DMA sets it: the last one runs with
 * @cmd's direction and flags). !@load keeps the buffer and leaves a copy of
 * it in the page.
 */
static bool vfmig_edu_replay(void __iomem *bar, dma_addr_t iova, bool load,
			     u64 cmd)
{
	bool to_pci = cmd & EDU_DMA_TO_PCI;

	if (!load && !to_pci &&
	    !vfmig_edu_dma(bar, EDU_BUF_ADDR, iova, EDU_DMA_TO_PCI))
		return false;
	if ((load || !to_pci) &&
	    !vfmig_edu_dma(bar, iova, EDU_BUF_ADDR, to_pci ? 0 : cmd))
		return false;
	if (to_pci && !vfmig_edu_dma(bar, EDU_BUF_ADDR, iova, cmd))
		return false;
	return true;
}

/* The interrupt status back to @want (a replayed DMA may have raised). */
static void vfmig_edu_irq_set(void __iomem *bar, u32 want)
{
	u32 now = ioread32(bar + EDU_IRQ_STATUS);

	if (want & ~now)
		iowrite32(want & ~now, bar + EDU_IRQ_RAISE);
	if (now & ~want)
		iowrite32(now & ~want, bar + EDU_IRQ_ACK);
}

/*
 * Run @load/@cmd's DMAs (bus mastering on for them), then put the
 * interrupt status and the DMA registers back as @st has them. Caller
 * holds core.memory_lock for writing; interrupts are held back.
 */
static bool vfmig_edu_dma_locked(struct vfmig_device *vdev,
				 void __iomem *bar, dma_addr_t iova, bool load,
				 const struct vfmig_edu_state *st)
{
	struct pci_dev *pdev = vdev->core.pdev;
	u64 cmd = le64_to_cpu(st->dma_cmd) & ~(u64)EDU_DMA_RUN;
	bool ok, master;
	u16 pcmd;

	if (pci_read_config_word(pdev, PCI_COMMAND, &pcmd))
		return false;
	master = pcmd & PCI_COMMAND_MASTER;
	if (!master)
		vfmig_cfg_update16(pdev, PCI_COMMAND, 0, PCI_COMMAND_MASTER);
	ok = vfmig_edu_replay(bar, iova, load, cmd);
	if (!master)
		vfmig_cfg_update16(pdev, PCI_COMMAND, PCI_COMMAND_MASTER, 0);
	vfmig_edu_irq_set(bar, le32_to_cpu(st->irq_status));
	writeq(le64_to_cpu(st->regs.dma_src), bar + EDU_DMA_SRC);
	writeq(le64_to_cpu(st->regs.dma_dst), bar + EDU_DMA_DST);
	writeq(le64_to_cpu(st->regs.dma_cnt), bar + EDU_DMA_CNT);
	return ok;
}

/* The bus address of the function's last DMA that is not its buffer. */
static u64 vfmig_edu_hint(const struct vfmig_edu_state *st)
{
	u64 src = le64_to_cpu(st->regs.dma_src);

	if (src >= EDU_BUF_ADDR && src < EDU_BUF_ADDR + VFMIG_EDU_DMA_BUF_SIZE)
		return le64_to_cpu(st->regs.dma_dst);
	return src;
}

/*
 * STOP_COPY: refresh the register shadow from the stopped function and add
 * its interrupt status, command register and, when a page can be
 * borrowed, its DMA buffer. The function ends as it was. Caller holds
 * state_mutex; interrupts are held back.
 */
void vfmig_edu_save(struct vfmig_device *vdev)
{
	struct vfmig_edu_state *st;
	struct vfmig_borrow b;
	void __iomem *bar;
	bool ok = false;

	lockdep_assert_held(&vdev->state_mutex);
	vfmig_regs_sync_from_hw(vdev, NULL);
	st = kmalloc(sizeof(*st), GFP_KERNEL_ACCOUNT);
	if (!st)
		goto out;
	mutex_lock(&vdev->mem_lock);
	*st = vdev->regs;
	mutex_unlock(&vdev->mem_lock);
	if (vfmig_borrow(vdev, vfmig_edu_hint(st), &b))
		goto out;
	down_write(&vdev->core.memory_lock);
	bar = vfmig_bar0(vdev);
	if (bar)
		ok = vfmig_edu_dma_locked(vdev, bar, b.iova, false, st);
	up_write(&vdev->core.memory_lock);
	if (ok)
		ok = !vfio_dma_rw(&vdev->core.vdev, b.iova, st->dma_buf,
				  EDU_DMA_LEN, false);
	vfmig_borrow_return(vdev, &b);
	if (!ok)
		vfmig_warn_rl(vdev, VFMIG_WARN_HW, "the DMA buffer could not be read\n");
out:
	mutex_lock(&vdev->mem_lock);
	if (ok) {
		st->dma_buf[EDU_DMA_LEN] = 0;
		memcpy(vdev->regs.dma_buf, st->dma_buf, VFMIG_EDU_DMA_BUF_SIZE);
		vdev->regs.flags |= cpu_to_le32(VFMIG_EDU_F_DMA_BUF);
	} else {
		memset(vdev->regs.dma_buf, 0, VFMIG_EDU_DMA_BUF_SIZE);
		vdev->regs.flags &= ~cpu_to_le32(VFMIG_EDU_F_DMA_BUF);
	}
	mutex_unlock(&vdev->mem_lock);
	kfree(st);
}

/*
 * RESUMING->STOP, after the registers: the DMA buffer (when @st has it),
 * the command register and the interrupt status, which counts as already
 * delivered (the source delivered it). Caller holds state_mutex;
 * interrupts are held back until the device runs.
 */
void vfmig_edu_restore(struct vfmig_device *vdev,
		       const struct vfmig_edu_state *st)
{
	bool load = le32_to_cpu(st->flags) & VFMIG_EDU_F_DMA_BUF;
	u64 want = le64_to_cpu(st->dma_cmd) & ~(u64)EDU_DMA_RUN;
	struct vfmig_borrow b = {};
	void __iomem *bar;
	bool have, ok = true;
	u64 cmd = want;

	lockdep_assert_held(&vdev->state_mutex);
	down_read(&vdev->core.memory_lock);
	bar = vfmig_bar0(vdev);
	if (bar)
		cmd = readq(bar + EDU_DMA_CMD) & ~(u64)EDU_DMA_RUN;
	up_read(&vdev->core.memory_lock);
	if (!bar)
		return;
	/* a layout-1 stream: command register and buffer stay as they are */
	if (st->magic != cpu_to_le32(VFMIG_EDU_STATE_MAGIC)) {
		load = false;
		want = cmd;
	}

	have = (load || cmd != want) &&
	       !vfmig_borrow(vdev, vfmig_edu_hint(st), &b);
	if (have && load &&
	    vfio_dma_rw(&vdev->core.vdev, b.iova, (void *)st->dma_buf,
			EDU_DMA_LEN, true))
		ok = false;

	down_write(&vdev->core.memory_lock);
	bar = vfmig_bar0(vdev);
	if (!bar) {
		ok = false;
	} else if (have && ok) {
		ok = vfmig_edu_dma_locked(vdev, bar, b.iova, load, st);
	} else {
		/*
		 * No page: the command is replayed with bus mastering off.
		 * Nothing leaves the function; a DMA from the bus reads
		 * zeros into the buffer, which the stream did not carry.
		 */
		if (cmd != want)
			vfmig_edu_dma_nomaster(vdev, bar, want);
		ok = !load;
		vfmig_edu_irq_set(bar, le32_to_cpu(st->irq_status));
		writeq(le64_to_cpu(st->regs.dma_src), bar + EDU_DMA_SRC);
		writeq(le64_to_cpu(st->regs.dma_dst), bar + EDU_DMA_DST);
		writeq(le64_to_cpu(st->regs.dma_cnt), bar + EDU_DMA_CNT);
	}
	/* what the source raised was delivered there */
	vdev->held_irq_status = le32_to_cpu(st->irq_status);
	up_write(&vdev->core.memory_lock);
	if (have)
		vfmig_borrow_return(vdev, &b);
	if (!ok)
		vfmig_warn_rl(vdev, VFMIG_WARN_HW, "the DMA buffer or command register could not be restored (no IOMMU mapping below 256 MiB to borrow)\n");
}
