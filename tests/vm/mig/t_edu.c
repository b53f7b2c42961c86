// SPDX-License-Identifier: GPL-2.0
/*
 * Issue 10 item 5, the edu function itself: a P2P state waits for a DMA
 * in flight, a stopped device holds its interrupts back and delivers them
 * when it runs again, and the DMA buffer, DMA command register and
 * interrupt status move from A to B.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "tests.h"

#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_BUF 0x40000
#define IOVA 0x100000 /* below edu's 28-bit DMA mask */
#define MAP_LEN 0x10000

static int region_rw(struct vfm_vdev *d, unsigned int index, uint64_t off,
		     void *val, size_t n, bool write)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };
	ssize_t r;

	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -errno;
	r = write ? pwrite(d->fd, val, n, (off_t)(ri.offset + off)) :
		    pread(d->fd, val, n, (off_t)(ri.offset + off));
	return r == (ssize_t)n ? 0 : r < 0 ? -errno : -EIO;
}

static uint64_t bar_get(struct vfm_vdev *d, uint64_t reg, int *err)
{
	uint64_t v = 0;
	int ret = region_rw(d, VFIO_PCI_BAR0_REGION_INDEX, reg, &v, 8, false);

	if (ret && !*err)
		*err = ret;
	return v;
}

static void bar_set(struct vfm_vdev *d, uint64_t reg, uint64_t v, int *err)
{
	int ret = region_rw(d, VFIO_PCI_BAR0_REGION_INDEX, reg, &v, 8, true);

	if (ret && !*err)
		*err = ret;
}

static uint32_t irq_status(struct vfm_vdev *d, int *err)
{
	uint32_t v = 0;
	int ret = region_rw(d, VFIO_PCI_BAR0_REGION_INDEX, EDU_IRQ_STATUS, &v,
			    4, false);

	if (ret && !*err)
		*err = ret;
	return v;
}

static void irq_write(struct vfm_vdev *d, uint64_t reg, uint32_t v, int *err)
{
	int ret = region_rw(d, VFIO_PCI_BAR0_REGION_INDEX, reg, &v, 4, true);

	if (ret && !*err)
		*err = ret;
}

/* PCI command register: bus mastering on or off. */
static void bus_master(struct vfm_vdev *d, bool on, int *err)
{
	uint16_t cmd = 0;
	int ret;

	ret = region_rw(d, VFIO_PCI_CONFIG_REGION_INDEX, 4, &cmd, 2, false);
	if (!ret) {
		cmd = on ? cmd | 0x6 : cmd & ~0x4;
		ret = region_rw(d, VFIO_PCI_CONFIG_REGION_INDEX, 4, &cmd, 2,
				true);
	}
	if (ret && !*err)
		*err = ret;
}

/*
 * A DMA of the buffer but its last byte (QEMU 7.2's edu aborts on a DMA
 * that ends at the buffer's end); waits for it to end.
 */
static void edu_dma(struct vfm_vdev *d, uint64_t src, uint64_t dst,
		    uint64_t cmd, int *err)
{
	int i;

	bar_set(d, EDU_DMA_SRC, src, err);
	bar_set(d, EDU_DMA_DST, dst, err);
	bar_set(d, EDU_DMA_CNT, 4095, err);
	bar_set(d, EDU_DMA_CMD, cmd | 1, err);
	for (i = 0; i < 100 && !*err; i++) {
		vfm_sleep_ms(20);
		if (!(bar_get(d, EDU_DMA_CMD, err) & 1))
			return;
	}
	if (!*err)
		*err = -ETIMEDOUT;
}

/* Anonymous memory mapped for the device's DMA at IOVA. */
static void *map_dma(struct vfm_vdev *d, int *err)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.iova = IOVA,
		.size = MAP_LEN,
	};
	void *p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	memset(p, 0, MAP_LEN);
	m.vaddr = (uintptr_t)p;
	if (ioctl(d->container, VFIO_IOMMU_MAP_DMA, &m)) {
		*err = -errno;
		munmap(p, MAP_LEN);
		return NULL;
	}
	return p;
}

static void unmap_dma(struct vfm_vdev *d, void *p)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = IOVA,
		.size = MAP_LEN,
	};

	if (!p)
		return;
	ioctl(d->container, VFIO_IOMMU_UNMAP_DMA, &u);
	munmap(p, MAP_LEN);
}

/* MSI vector 0 signals efd (efd -1: MSI off). */
static int msi_set(struct vfm_vdev *d, int efd)
{
	size_t sz = sizeof(struct vfio_irq_set) + sizeof(int32_t);
	struct vfio_irq_set *s = calloc(1, sz);
	int ret = 0;

	if (!s)
		return -ENOMEM;
	s->argsz = (uint32_t)sz;
	s->index = VFIO_PCI_MSI_IRQ_INDEX;
	if (efd >= 0) {
		s->flags = VFIO_IRQ_SET_DATA_EVENTFD |
			   VFIO_IRQ_SET_ACTION_TRIGGER;
		s->count = 1;
		memcpy(s->data, &efd, sizeof(int32_t));
	} else {
		s->argsz = sizeof(*s);
		s->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	}
	if (ioctl(d->fd, VFIO_DEVICE_SET_IRQS, s))
		ret = -errno;
	free(s);
	return ret;
}

/* Interrupts signalled within ms (the counter is read and reset). */
static uint64_t efd_wait(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, ms) == 1 && read(efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

/* CRC32C (Castagnoli, reflected), as the stream format defines it. */
static uint32_t crc32c(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t crc = ~0u;
	int k;

	while (n--) {
		crc ^= *b++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void rec_seal(uint8_t *rh, const uint8_t *payload, uint32_t len)
{
	uint32_t crc = crc32c(payload, len);

	memcpy(rh + 4, &len, 4);
	memcpy(rh + 16, &crc, 4);
	crc = crc32c(rh, 20);
	memcpy(rh + 20, &crc, 4);
}

/*
 * The stream @s (layout 2) as an older source sends it: regs_size 64 and
 * the REGS record cut to layout 1, CRCs and the END counts redone.
 */
static int to_layout1(const struct vfm_buf *s, struct vfm_buf *out)
{
	size_t hl = sizeof(struct vfmig_stream_hdr), at = hl;
	struct vfmig_stream_hdr h;
	uint32_t v = 64, crc;
	int ret;

	if (s->len < hl)
		return -EINVAL;
	memcpy(&h, s->p, hl);
	h.regs_size = v; /* little-endian guest */
	crc = crc32c(&h, hl - 4);
	h.hdr_crc = crc;
	ret = vfm_buf_append(out, &h, hl);
	while (!ret && at + 24 <= s->len) {
		uint8_t rh[24], payload[64];
		uint32_t type, len;

		memcpy(rh, s->p + at, 24);
		memcpy(&type, rh, 4);
		memcpy(&len, rh + 4, 4);
		if (at + 24 + len > s->len)
			return -EINVAL;
		if (type == VFMIG_REC_REGS) {
			memcpy(payload, s->p + at + 24, 64);
			rec_seal(rh, payload, 64);
			ret = vfm_buf_append(out, rh, 24);
			if (!ret)
				ret = vfm_buf_append(out, payload, 64);
		} else if (type == VFMIG_REC_END) {
			uint64_t end[2];

			memcpy(end, s->p + at + 24, 16);
			end[1] = out->len;
			rec_seal(rh, (uint8_t *)end, 16);
			ret = vfm_buf_append(out, rh, 24);
			if (!ret)
				ret = vfm_buf_append(out, end, 16);
		} else {
			ret = vfm_buf_append(out, s->p + at, 24 + len);
		}
		at += 24 + len;
	}
	return ret;
}

/* RUNNING -> RUNNING_P2P returns after a DMA in flight ended. */
static void edu_p2p(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	uint64_t cmd = 0;
	int err = vfm_ctx_fresh(c, 0);

	bar_set(d, EDU_DMA_SRC, 0x10000, &err);
	bar_set(d, EDU_DMA_DST, EDU_BUF, &err);
	bar_set(d, EDU_DMA_CNT, 64, &err);
	bar_set(d, EDU_DMA_CMD, 1, &err);
	if (!err)
		err = vfm_goto(d, VFIO_DEVICE_STATE_RUNNING_P2P);
	cmd = bar_get(d, EDU_DMA_CMD, &err);
	vfm_expect(!err && !(cmd & 1), "edu/p2p-dma-done",
		   "DMA started, RUNNING_P2P: command register %#llx (%s)",
		   (unsigned long long)cmd, strerror(-err));
	vfm_reset(d);
}

/*
 * An interrupt raised while the device is stopped reaches the user only
 * when it runs again (MSI, the way a VMM sets it up).
 */
static void edu_irq(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	int err = vfm_ctx_fresh(c, 0), efd = eventfd(0, EFD_NONBLOCK);
	uint64_t n = 0, held = 0, late = 0;
	uint32_t st = 0;

	if (efd < 0 && !err)
		err = -errno;
	if (!err)
		err = msi_set(d, efd);
	bus_master(d, true, &err); /* an MSI is a write on the bus */
	irq_write(d, EDU_IRQ_RAISE, 0x1, &err);
	if (!err)
		n = efd_wait(efd, 2000);
	irq_write(d, EDU_IRQ_ACK, 0x1, &err);
	if (err || !n) {
		vfm_fail("edu/irq-held-while-stopped",
			 "a RUNNING edu's MSI was %s (%s)",
			 n ? "delivered" : "not delivered", strerror(-err));
		goto out;
	}
	efd_wait(efd, 0);
	err = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	irq_write(d, EDU_IRQ_RAISE, 0x2, &err);
	if (!err)
		held = efd_wait(efd, 500);
	st = irq_status(d, &err);
	vfm_expect(
		!err && !held && st == 0x2, "edu/irq-held-while-stopped",
		"interrupt raised in STOP: %llu signalled within 500 ms, status %#x (%s)",
		(unsigned long long)held, st, strerror(-err));
	if (!err)
		err = vfm_goto(d, VFIO_DEVICE_STATE_RUNNING);
	if (!err)
		late = efd_wait(efd, 2000);
	vfm_expect(
		!err && late, "edu/irq-delivered-at-run",
		"the interrupt held in STOP: %llu signalled after RUNNING (%s)",
		(unsigned long long)late, strerror(-err));
	irq_write(d, EDU_IRQ_ACK, 0x2, &err);
out:
	bus_master(d, false, &err);
	msi_set(d, -1);
	if (efd >= 0)
		close(efd);
	vfm_reset(d);
}

/*
 * A's buffer (loaded by DMA from its memory), command register (from PCI,
 * interrupt on completion) and interrupt status (DMA done + one raised by
 * hand) arrive at B; A and both borrowed pages end as they were.
 */
static void edu_migrate(struct vfm_ctx *c)
{
	struct vfm_vdev *a = &c->dev[0], *b = &c->dev[1];
	uint8_t *pa = NULL, *pb = NULL;
	uint64_t a_cmd = 0, b_cmd = 0;
	uint32_t a_irq = 0, b_irq = 0;
	struct vfm_buf s = { 0 };
	bool pages_back = false;
	int err = 0, i;

	err = vfm_ctx_fresh(c, 0);
	if (!err)
		err = vfm_ctx_fresh(c, 1);
	if (!err)
		pa = map_dma(a, &err);
	if (!err)
		pb = map_dma(b, &err);
	if (err) {
		vfm_fail("edu/dma-buffer-migrated", "setup: %s",
			 strerror(-err));
		goto out;
	}
	for (i = 0; i < 4096; i++) {
		pa[i] = (uint8_t)(i * 7 + 3);
		pb[i] = (uint8_t)(i * 13 + 1);
	}
	bus_master(a, true, &err);
	edu_dma(a, IOVA, EDU_BUF, 0x4, &err); /* from PCI, interrupt */
	irq_write(a, EDU_IRQ_RAISE, 0x8, &err);
	bus_master(a, false, &err);
	a_irq = irq_status(a, &err);
	if (!err)
		err = vfm_save(a, VFM_PATH_RW, false, NULL, &s);
	if (!err)
		err = vfm_restore(b, VFM_PATH_RW, s.p, s.len, NULL);
	b_cmd = bar_get(b, EDU_DMA_CMD, &err);
	b_irq = irq_status(b, &err);
	a_cmd = bar_get(a, EDU_DMA_CMD, &err);
	pages_back = pa[5] == (uint8_t)(5 * 7 + 3) &&
		     pb[5] == (uint8_t)(5 * 13 + 1);
	vfm_expect(!err && b_irq == 0x108 && a_irq == 0x108 &&
			   irq_status(a, &err) == 0x108,
		   "edu/irq-status-migrated",
		   "A %#x, B %#x after the restore (%s)", a_irq, b_irq,
		   strerror(-err));
	vfm_expect(!err && a_cmd == 0x4 && b_cmd == 0x4, "edu/dma-cmd-migrated",
		   "command register A %#llx B %#llx (%s)",
		   (unsigned long long)a_cmd, (unsigned long long)b_cmd,
		   strerror(-err));
	vfm_expect(!err && pages_back, "edu/borrowed-pages-returned",
		   "the memory at IOVA %#x of A and B is as the test wrote it",
		   IOVA);
	/* B's buffer, read back into B's memory */
	if (!err)
		err = vfm_goto(b, VFIO_DEVICE_STATE_RUNNING);
	irq_write(b, EDU_IRQ_ACK, 0x108, &err);
	bus_master(b, true, &err);
	edu_dma(b, EDU_BUF, IOVA, 0x2, &err); /* to PCI */
	bus_master(b, false, &err);
	vfm_expect(!err && !memcmp(pa, pb, 4095), "edu/dma-buffer-migrated",
		   "B's DMA buffer %s A's (%s)",
		   !memcmp(pa, pb, 4095) ? "equals" : "differs from",
		   strerror(-err));
	/* an older source's stream (layout 1) still loads */
	if (!err) {
		struct vfm_buf s1 = { 0 };
		uint64_t live = 0;

		err = to_layout1(&s, &s1);
		if (!err)
			err = vfm_reset(b);
		if (!err)
			err = vfm_restore(b, VFM_PATH_RW, s1.p, s1.len, NULL);
		b_irq = irq_status(b, &err);
		live = bar_get(b, 0x04, &err) & 0xffffffffu;
		a_irq = (uint32_t)(bar_get(a, 0x04, &err) & 0xffffffffu);
		vfm_expect(
			!err && b_irq == 0 && live == a_irq,
			"edu/layout1-stream-loads",
			"%zu-byte layout-1 stream: %s, B liveness %#llx (A %#x), interrupt status %#x",
			s1.len, strerror(-err), (unsigned long long)live, a_irq,
			b_irq);
		vfm_buf_free(&s1);
	}
out:
	vfm_buf_free(&s);
	vfm_reset(a);
	vfm_reset(b);
	/* both functions as the suites after this one expect them: command
	 * register 0 (a DMA from the bus, bus mastering off: zeros) */
	err = 0;
	bus_master(a, false, &err);
	bus_master(b, false, &err);
	edu_dma(a, 0, EDU_BUF, 0, &err);
	edu_dma(b, 0, EDU_BUF, 0, &err);
	irq_write(a, EDU_IRQ_ACK, 0xffffffff, &err);
	irq_write(b, EDU_IRQ_ACK, 0xffffffff, &err);
	unmap_dma(a, pa);
	unmap_dma(b, pb);
}

void vfm_t_edu(struct vfm_ctx *c)
{
	edu_p2p(c);
	edu_irq(c);
	edu_migrate(c);
}
