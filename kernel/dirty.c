// SPDX-License-Identifier: GPL-2.0
/*
 * Per-4KiB-page dirty tracking and the in-kernel workload that dirties
 * device memory at a configurable rate.
 *
 * While a saving stream is active, pages below the cursor have been read
 * into the stream once; a write to such a page sets its dirty bit so the
 * page is sent again. Pages at or above the cursor are still to be sent by
 * the initial pass, which reads their newest content anyway.
 */
#include <linux/bitmap.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "vfmig_stub.h"

#define VFMIG_WL_PERIOD		msecs_to_jiffies(20)
#define VFMIG_WL_MAX_PAGES	4096	/* per tick, bounds mem_lock hold time */

void vfmig_dirty_mark_locked(struct vfmig_device *vdev, unsigned long idx)
{
	lockdep_assert_held(&vdev->mem_lock);
	if (!vdev->tracking || idx >= vdev->cursor)
		return;
	if (!__test_and_set_bit(idx, vdev->dirty))
		vdev->ndirty++;
}

/* A saving stream starts: nothing has been sent yet. */
void vfmig_dirty_start_locked(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->mem_lock);
	bitmap_zero(vdev->dirty, vdev->mem.npages);
	vdev->ndirty = 0;
	vdev->cursor = 0;
	vdev->tracking = true;
}

void vfmig_dirty_stop_locked(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->mem_lock);
	vdev->tracking = false;
	vdev->ndirty = 0;
	vdev->cursor = 0;
}

/* Take the next dirty page (its bit cleared), or -1 when none. */
long vfmig_dirty_next_locked(struct vfmig_device *vdev)
{
	unsigned long idx;

	lockdep_assert_held(&vdev->mem_lock);
	if (!vdev->ndirty)
		return -1;
	idx = find_first_bit(vdev->dirty, vdev->mem.npages);
	if (WARN_ON(idx >= vdev->mem.npages))
		return -1;
	__clear_bit(idx, vdev->dirty);
	vdev->ndirty--;
	return idx;
}

static u64 vfmig_rng(u64 *s)
{
	u64 x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Overwrite one page with a pattern that differs on every write. */
static int vfmig_workload_page_locked(struct vfmig_device *vdev, u64 *page)
{
	unsigned long idx = vfmig_rng(&vdev->wl_rng) % vdev->mem.npages;
	u64 v = ++vdev->wl_seq * 0x9e3779b97f4a7c15ull ^ idx;
	unsigned int i;
	int ret;

	for (i = 0; i < VFMIG_PAGE_SIZE / sizeof(u64); i++)
		page[i] = v + i;
	ret = vfmig_mem_write_page(&vdev->mem, idx, page);
	if (!ret)
		vfmig_dirty_mark_locked(vdev, idx);
	return ret;
}

static void vfmig_workload_fn(struct work_struct *work)
{
	struct vfmig_device *vdev = container_of(to_delayed_work(work),
						 struct vfmig_device, wl_work);
	unsigned long rate = READ_ONCE(vdev->dirty_rate);
	u64 now = ktime_get_ns(), pages, i;
	u64 *page;

	if (!rate) {
		vdev->wl_carry = 0;
		goto out;
	}
	vdev->wl_carry += mul_u64_u64_div_u64(min_t(u64, now - vdev->wl_last_ns,
						    NSEC_PER_SEC),
					      rate, NSEC_PER_SEC);
	pages = min_t(u64, vdev->wl_carry / VFMIG_PAGE_SIZE,
		      VFMIG_WL_MAX_PAGES);
	if (!pages)
		goto out;
	page = kmalloc(VFMIG_PAGE_SIZE, GFP_KERNEL);
	if (!page)
		goto out;
	mutex_lock(&vdev->mem_lock);
	if (vdev->running && vdev->mem.npages) {
		for (i = 0; i < pages; i++)
			if (vfmig_workload_page_locked(vdev, page))
				break;
		vdev->wl_carry -= pages * VFMIG_PAGE_SIZE;
	} else {
		vdev->wl_carry = 0;
	}
	mutex_unlock(&vdev->mem_lock);
	kfree(page);
	/* a rate above what a tick can do is capped, not accumulated */
	if (vdev->wl_carry > VFMIG_WL_MAX_PAGES * VFMIG_PAGE_SIZE)
		vdev->wl_carry = 0;
out:
	vdev->wl_last_ns = now;
	schedule_delayed_work(&vdev->wl_work, VFMIG_WL_PERIOD);
}

void vfmig_workload_init(struct vfmig_device *vdev)
{
	vdev->wl_rng = get_random_u64() | 1;
	vdev->wl_last_ns = ktime_get_ns();
	INIT_DELAYED_WORK(&vdev->wl_work, vfmig_workload_fn);
	schedule_delayed_work(&vdev->wl_work, VFMIG_WL_PERIOD);
}

void vfmig_workload_stop(struct vfmig_device *vdev)
{
	cancel_delayed_work_sync(&vdev->wl_work);
}
