// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration: the VFIO migration v2 state machine and the data fds
 * (read/write, PRE_COPY info, and the mmap-able migration buffer).
 */
#include <linux/anon_inodes.h>
#include <linux/atomic.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "vfmig_stub.h"

#define VFMIG_WRITE_CHUNK	PAGE_SIZE	/* order 0 */
#define VFMIG_SEG_ANY		(1024 * 1024)	/* SAVE_NEXT length 0 */

static bool vfmig_state_runs(enum vfio_device_mig_state s)
{
	return s == VFIO_DEVICE_STATE_RUNNING ||
	       s == VFIO_DEVICE_STATE_RUNNING_P2P ||
	       s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

static void vfmig_set_running_locked(struct vfmig_device *vdev, bool run)
{
	lockdep_assert_held(&vdev->state_mutex);
	mutex_lock(&vdev->mem_lock);
	vdev->running = run && vdev->opened;
	mutex_unlock(&vdev->mem_lock);
}

void vfmig_update_running_locked(struct vfmig_device *vdev)
{
	vfmig_set_running_locked(vdev, vfmig_state_runs(vdev->mig_state));
}

/* ------------------------------------------------------------- data files */

static void vfmig_segs_free_locked(struct vfmig_file *migf)
{
	struct vfmig_seg_ent *seg, *tmp;

	list_for_each_entry_safe(seg, tmp, &migf->segs, node)
		kfree(seg);
	INIT_LIST_HEAD(&migf->segs);
	migf->nsegs = 0;
}

/*
 * A disabled fd keeps nothing of the device: its staged state and its
 * buffer are freed (pages the user still maps stay until munmap, by their
 * own references).
 */
static void vfmig_file_disable(struct vfmig_file *migf)
{
	struct vfmig_device *vdev = migf->vdev;

	mutex_lock(&migf->lock);
	migf->disabled = true;
	if (migf->saving) {
		mutex_lock(&vdev->mem_lock);
		vfmig_dirty_stop_locked(vdev);
		mutex_unlock(&vdev->mem_lock);
	} else {
		vfmig_parser_free(&migf->parser);
	}
	vfmig_segs_free_locked(migf);
	vfree(migf->buf);
	migf->buf = NULL;
	mutex_unlock(&migf->lock);
}

/* The mmap-able buffer, allocated on first use. Caller holds migf->lock. */
static int vfmig_buf_get_locked(struct vfmig_file *migf)
{
	if (migf->disabled)
		return -ENODEV;
	if (!migf->buf)
		migf->buf = __vmalloc(migf->buf_size,
				      GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	return migf->buf ? 0 : -ENOMEM;
}

void vfmig_disable_files_locked(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->state_mutex);
	if (vdev->saving) {
		vfmig_file_disable(vdev->saving);
		fput(vdev->saving->filp);
		vdev->saving = NULL;
	}
	if (vdev->resuming) {
		vfmig_file_disable(vdev->resuming);
		fput(vdev->resuming->filp);
		vdev->resuming = NULL;
	}
}

static int vfmig_release(struct inode *inode, struct file *filp)
{
	struct vfmig_file *migf = filp->private_data;

	/* the device disabled this file before it dropped its reference */
	vfmig_segs_free_locked(migf);
	vfmig_prod_free(&migf->prod);
	vfmig_parser_free(&migf->parser);
	vfree(migf->buf);
	mutex_destroy(&migf->lock);
	mutex_destroy(&migf->io_lock);
	kfree(migf);
	return 0;
}

static int vfmig_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct vfmig_file *migf = filp->private_data;
	unsigned long len = vma->vm_end - vma->vm_start, off;
	int ret;

	if (vma->vm_pgoff || len > migf->buf_size)
		return -EINVAL;
	mutex_lock(&migf->lock);
	ret = vfmig_buf_get_locked(migf);
	/* ordinary pages: pin_user_pages()/ibv_reg_mr() work */
	for (off = 0; !ret && off < len; off += PAGE_SIZE)
		ret = vm_insert_page(vma, vma->vm_start + off,
				     vmalloc_to_page(migf->buf + off));
	mutex_unlock(&migf->lock);
	if (!ret)
		vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return ret;
}

/*
 * read(): the record is produced under migf->lock, but copied to the user
 * with only io_lock held. The user's buffer may be an mmap of this device's
 * BAR, whose fault waits for vfio_pci_core's memory_lock, which a reset
 * holds while it takes migf->lock to disable this fd.
 */
static ssize_t vfmig_save_read(struct file *filp, char __user *buf,
			       size_t len, loff_t *pos)
{
	struct vfmig_file *migf = filp->private_data;
	struct vfmig_producer *prod = &migf->prod;
	size_t done = 0;
	int ret = 0;

	if (pos)
		return -ESPIPE;
	mutex_lock(&migf->io_lock);
	while (done < len) {
		size_t n;

		mutex_lock(&migf->lock);
		ret = migf->disabled ? -ENODEV :
				       vfmig_prod_ready(migf->vdev, prod);
		mutex_unlock(&migf->lock);
		if (ret)
			break;
		/* only an io_lock holder changes prod->rec and rec_off */
		n = min_t(size_t, len - done, prod->rec_len - prod->rec_off);
		if (copy_to_user(buf + done, prod->rec + prod->rec_off, n)) {
			ret = -EFAULT;
			break;
		}
		mutex_lock(&migf->lock);
		vfmig_prod_advance(prod, n);
		mutex_unlock(&migf->lock);
		done += n;
		/* records are not page sized: yield at every record's end */
		if (prod->rec_off == prod->rec_len)
			cond_resched();
	}
	mutex_unlock(&migf->io_lock);
	if (done)
		return done;
	return ret == 1 ? 0 : ret;
}

static __poll_t vfmig_poll(struct file *filp, poll_table *wait)
{
	struct vfmig_file *migf = filp->private_data;
	__poll_t mask;

	/* nothing ever blocks: report readiness, and a disabled fd */
	mutex_lock(&migf->lock);
	if (migf->disabled)
		mask = EPOLLERR | EPOLLHUP;
	else if (migf->saving)
		mask = EPOLLIN | EPOLLRDNORM;
	else
		mask = EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&migf->lock);
	return mask;
}

static long vfmig_precopy_info(struct vfmig_file *migf, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	struct vfio_precopy_info info;
	int ret = 0;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	/*
	 * An enabled saving fd is in PRE_COPY* until it turns stop_copy; a
	 * disabled one (its device left PRE_COPY*, or is gone) may outlive
	 * its device, so no state_mutex here. Outside PRE_COPY*: -EINVAL.
	 */
	mutex_lock(&migf->lock);
	if (!migf->saving || migf->disabled || migf->prod.stop_copy)
		ret = -EINVAL;
	else
		vfmig_prod_pending(migf->vdev, &migf->prod,
				   &info.initial_bytes, &info.dirty_bytes);
	mutex_unlock(&migf->lock);
	if (ret)
		return ret;
	info.flags = 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static long vfmig_buf_info(struct vfmig_file *migf, void __user *arg)
{
	struct vfmig_buf_info info;
	int ret;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.argsz < sizeof(info))
		return -EINVAL;
	mutex_lock(&migf->lock);
	ret = vfmig_buf_get_locked(migf);
	mutex_unlock(&migf->lock);
	if (ret)
		return ret;
	info.flags = 0;
	info.size = migf->buf_size;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static int vfmig_seg_get(void __user *arg, struct vfmig_seg *seg)
{
	if (copy_from_user(seg, arg, sizeof(*seg)))
		return -EFAULT;
	return seg->argsz < sizeof(*seg) ? -EINVAL : 0;
}

/* Where the next segment may go: its offset and contiguous room. */
static void vfmig_seg_room_locked(struct vfmig_file *migf, u64 *off, u64 *room)
{
	struct vfmig_seg_ent *first, *last;
	u64 head;

	if (list_empty(&migf->segs)) {
		*off = 0;
		*room = migf->buf_size;
		return;
	}
	first = list_first_entry(&migf->segs, struct vfmig_seg_ent, node);
	last = list_last_entry(&migf->segs, struct vfmig_seg_ent, node);
	head = last->offset + last->length;
	if (last->offset < first->offset) {	/* wrapped */
		*off = head;
		*room = first->offset - head;
	} else if (head < migf->buf_size) {
		*off = head;
		*room = migf->buf_size - head;
	} else {
		*off = 0;
		*room = first->offset;
	}
}

static long vfmig_save_next(struct vfmig_file *migf, void __user *arg)
{
	struct vfmig_seg_ent *ent;
	struct vfmig_seg seg;
	u64 off, room, want;
	ssize_t n;
	int ret;

	ret = vfmig_seg_get(arg, &seg);
	if (ret)
		return ret;
	ent = kmalloc(sizeof(*ent), GFP_KERNEL_ACCOUNT);
	if (!ent)
		return -ENOMEM;

	mutex_lock(&migf->io_lock);
	mutex_lock(&migf->lock);
	ret = vfmig_buf_get_locked(migf);
	if (ret)
		goto err;
	vfmig_seg_room_locked(migf, &off, &room);
	/* each segment costs kernel memory: a bounded number outstanding */
	if (migf->nsegs >= VFMIG_MAX_SEGS)
		room = 0;
	/*
	 * "Any" is 1 MiB: segments that fill a multi-MiB buffer in one go touch
	 * many more pages per call and measured slower than read().
	 */
	want = min(seg.length ?: VFMIG_SEG_ANY, room);
	seg.flags = 0;
	seg.offset = off;
	seg.stream_pos = migf->prod.pos;
	if (!want) {
		/* a finished stream says so even when the buffer is full */
		if (migf->prod.end_done &&
		    migf->prod.rec_off == migf->prod.rec_len) {
			seg.length = 0;
			seg.flags = VFMIG_SEG_EOF;
			kfree(ent);
			goto out;
		}
		ret = -ENOBUFS;
		goto err;
	}
	n = vfmig_prod_copy(migf->vdev, &migf->prod, migf->buf + off, want);
	if (n < 0) {
		ret = n;
		goto err;
	}
	seg.length = n;
	if (!n) {
		seg.flags = VFMIG_SEG_EOF;
		kfree(ent);
		goto out;
	}
	ent->offset = off;
	ent->length = n;
	list_add_tail(&ent->node, &migf->segs);
	migf->nsegs++;
out:
	mutex_unlock(&migf->lock);
	mutex_unlock(&migf->io_lock);
	return copy_to_user(arg, &seg, sizeof(seg)) ? -EFAULT : 0;
err:
	mutex_unlock(&migf->lock);
	mutex_unlock(&migf->io_lock);
	kfree(ent);
	return ret;
}

static long vfmig_save_release(struct vfmig_file *migf, void __user *arg)
{
	struct vfmig_seg_ent *first;
	struct vfmig_seg seg;
	int ret;

	ret = vfmig_seg_get(arg, &seg);
	if (ret)
		return ret;
	mutex_lock(&migf->lock);
	first = list_first_entry_or_null(&migf->segs, struct vfmig_seg_ent,
					 node);
	if (migf->disabled) {
		ret = -ENODEV;
	} else if (!first || first->offset != seg.offset ||
		   first->length != seg.length) {
		ret = -EINVAL;
	} else {
		list_del(&first->node);
		kfree(first);
		migf->nsegs--;
	}
	mutex_unlock(&migf->lock);
	return ret;
}

static long vfmig_save_ioctl(struct file *filp, unsigned int cmd,
			     unsigned long arg)
{
	struct vfmig_file *migf = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_MIG_GET_PRECOPY_INFO:
		return vfmig_precopy_info(migf, uarg);
	case VFMIG_BUF_INFO:
		return vfmig_buf_info(migf, uarg);
	case VFMIG_SAVE_NEXT:
		return vfmig_save_next(migf, uarg);
	case VFMIG_SAVE_RELEASE:
		return vfmig_save_release(migf, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vfmig_save_fops = {
	.owner = THIS_MODULE,
	.read = vfmig_save_read,
	.poll = vfmig_poll,
	.unlocked_ioctl = vfmig_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = vfmig_mmap,
	.release = vfmig_release,
};

static ssize_t vfmig_resume_write(struct file *filp, const char __user *buf,
				  size_t len, loff_t *pos)
{
	struct vfmig_file *migf = filp->private_data;
	size_t done = 0;
	int ret = 0;
	u8 *chunk;

	if (pos)
		return -ESPIPE;
	chunk = kmalloc(VFMIG_WRITE_CHUNK, GFP_KERNEL_ACCOUNT);
	if (!chunk)
		return -ENOMEM;
	/* user memory is copied with io_lock held only, as in read() */
	mutex_lock(&migf->io_lock);
	while (!ret && done < len) {
		size_t n = min_t(size_t, len - done, VFMIG_WRITE_CHUNK);

		if (copy_from_user(chunk, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		mutex_lock(&migf->lock);
		if (migf->disabled)
			ret = -ENODEV;
		else
			ret = vfmig_parser_feed(migf->vdev, &migf->parser,
						chunk, n);
		mutex_unlock(&migf->lock);
		if (!ret)
			done += n;
	}
	mutex_unlock(&migf->io_lock);
	kfree(chunk);
	return ret ? ret : done;
}

static long vfmig_load_commit(struct vfmig_file *migf, void __user *arg)
{
	struct vfmig_seg seg;
	int ret;

	ret = vfmig_seg_get(arg, &seg);
	if (ret)
		return ret;
	if (seg.offset > migf->buf_size ||
	    seg.length > migf->buf_size - seg.offset)
		return -EINVAL;
	mutex_lock(&migf->io_lock);
	mutex_lock(&migf->lock);
	ret = vfmig_buf_get_locked(migf);
	if (!ret)
		ret = vfmig_parser_feed(migf->vdev, &migf->parser,
					migf->buf + seg.offset, seg.length);
	mutex_unlock(&migf->lock);
	mutex_unlock(&migf->io_lock);
	return ret;
}

static long vfmig_resume_ioctl(struct file *filp, unsigned int cmd,
			       unsigned long arg)
{
	struct vfmig_file *migf = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_MIG_GET_PRECOPY_INFO:
		return vfmig_precopy_info(migf, uarg);
	case VFMIG_BUF_INFO:
		return vfmig_buf_info(migf, uarg);
	case VFMIG_LOAD_COMMIT:
		return vfmig_load_commit(migf, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vfmig_resume_fops = {
	.owner = THIS_MODULE,
	.write = vfmig_resume_write,
	.poll = vfmig_poll,
	.unlocked_ioctl = vfmig_resume_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = vfmig_mmap,
	.release = vfmig_release,
};

static struct vfmig_file *vfmig_file_create(struct vfmig_device *vdev,
					    bool saving)
{
	struct vfmig_file *migf;
	int ret;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL_ACCOUNT);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	migf->vdev = vdev;
	migf->saving = saving;
	mutex_init(&migf->io_lock);
	mutex_init(&migf->lock);
	INIT_LIST_HEAD(&migf->segs);
	vfmig_mem_init(&migf->parser.stage, 0);
	/* at most VFMIG_BUF_SIZE_MAX (checked at load): no wrap; lazy */
	migf->buf_size = round_up((size_t)vfmig_buf_size, PAGE_SIZE);
	ret = saving ? vfmig_prod_init(&migf->prod) :
		       vfmig_parser_init(&migf->parser);
	if (ret)
		goto err;

	/* O_RDWR: the buffer can be mapped writable (ibv_reg_mr wants it) */
	migf->filp = anon_inode_getfile("vfmig_mig", saving ? &vfmig_save_fops :
					&vfmig_resume_fops, migf, O_RDWR);
	if (IS_ERR(migf->filp)) {
		ret = PTR_ERR(migf->filp);
		goto err;
	}
	stream_open(migf->filp->f_inode, migf->filp);
	return migf;
err:
	vfmig_prod_free(&migf->prod);
	vfmig_parser_free(&migf->parser);
	kfree(migf);
	return ERR_PTR(ret);
}

/* ------------------------------------------------------ transition trace */

/*
 * One counter for every function the module drives: the stamps of several
 * devices' traces merge into one order (vfmig/mig_trace).
 */
static atomic64_t vfmig_trace_seq = ATOMIC64_INIT(0);

/* The stamp of a state change that begins now. */
u64 vfmig_trace_begin(void)
{
	return atomic64_inc_return(&vfmig_trace_seq);
}

/*
 * Record a state change that began at @seq and is complete now. Callers
 * hold state_mutex, so a device's entries are in the order of its changes.
 */
void vfmig_trace_add(struct vfmig_device *vdev, u64 seq,
		     enum vfio_device_mig_state from,
		     enum vfio_device_mig_state to, enum vfmig_trace_cause cause)
{
	struct vfmig_trace_ent *e;

	lockdep_assert_held(&vdev->state_mutex);
	spin_lock(&vdev->trace_lock);
	e = &vdev->trace[vdev->trace_n % VFMIG_TRACE_LEN];
	e->seq = seq;
	e->done = atomic64_inc_return(&vfmig_trace_seq);
	e->from = from;
	e->to = to;
	e->cause = cause;
	vdev->trace_n++;
	spin_unlock(&vdev->trace_lock);
}

/* ---------------------------------------------------------- state machine */

static struct file *vfmig_save_start_locked(struct vfmig_device *vdev,
					    bool stop_copy)
{
	struct vfmig_file *migf;

	migf = vfmig_file_create(vdev, true);
	if (IS_ERR(migf)) {
		dev_err(vfmig_dev(vdev), "cannot create the saving data fd: %pe\n",
			migf);
		return ERR_CAST(migf);
	}
	if (stop_copy) {
		vfmig_edu_save(vdev);
		mutex_lock(&vdev->mem_lock);
		migf->prod.regs = vdev->regs;
		mutex_unlock(&vdev->mem_lock);
		migf->prod.stop_copy = true;
	}
	mutex_lock(&vdev->mem_lock);
	vfmig_dirty_start_locked(vdev);
	mutex_unlock(&vdev->mem_lock);
	get_file(migf->filp);
	vdev->saving = migf;
	return migf->filp;
}

/*
 * RESUMING->STOP: move the staged state into the device, all of it or
 * nothing (vfmig_state_commit() reserves before it frees).
 */
static int vfmig_resume_commit_locked(struct vfmig_device *vdev)
{
	struct vfmig_file *migf = vdev->resuming;
	struct vfmig_parser *p = &migf->parser;
	bool fail = vdev->fail_reserve;
	int ret;

	lockdep_assert_held(&vdev->state_mutex);
	vdev->fail_reserve = false;
	mutex_lock(&migf->lock);
	ret = vfmig_parser_complete(vdev, p);
	if (!ret)
		ret = vfmig_state_commit(vdev, &p->stage, &p->regs, fail);
	mutex_unlock(&migf->lock);
	if (ret)
		return ret;
	vfmig_state_region_resize(vdev);
	vfmig_regs_apply_to_hw(vdev);
	return 0;
}

static struct file *vfmig_step_locked(struct vfmig_device *vdev,
				      enum vfio_device_mig_state new)
{
	enum vfio_device_mig_state cur = vdev->mig_state;
	struct vfmig_file *migf;
	int ret;

	lockdep_assert_held(&vdev->state_mutex);
	if (vdev->fail_next) {
		vdev->fail_next = false;
		return ERR_PTR(-EIO);
	}

	/*
	 * edu cannot tell a peer-to-peer DMA from another: a P2P state
	 * starts once a DMA in flight has ended.
	 */
	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
		vfmig_edu_dma_quiesce(vdev);
		return NULL;
	}
	if ((cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY))
		return NULL;

	/* stopped: no factorial or DMA under way, interrupts held back */
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    new == VFIO_DEVICE_STATE_STOP) {
		vfmig_set_running_locked(vdev, false);
		vfmig_hw_quiesce(vdev);
		vfmig_edu_irq_hold(vdev);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_RUNNING_P2P) {
		vfmig_edu_irq_release(vdev);
		vfmig_set_running_locked(vdev, true);
		return NULL;
	}

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return vfmig_save_start_locked(vdev, false);

	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_STOP_COPY)
		return vfmig_save_start_locked(vdev, true);

	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	    new == VFIO_DEVICE_STATE_STOP_COPY) {
		migf = vdev->saving;
		if (WARN_ON(!migf))
			return ERR_PTR(-EINVAL);
		vfmig_set_running_locked(vdev, false);
		/* BAR access (memory_lock) never under migf->lock */
		vfmig_hw_quiesce(vdev);
		vfmig_edu_irq_hold(vdev);
		vfmig_edu_save(vdev);
		mutex_lock(&migf->lock);
		mutex_lock(&vdev->mem_lock);
		migf->prod.regs = vdev->regs;
		mutex_unlock(&vdev->mem_lock);
		migf->prod.stop_copy = true;
		mutex_unlock(&migf->lock);
		return NULL;
	}

	if ((cur == VFIO_DEVICE_STATE_STOP_COPY &&
	     new == VFIO_DEVICE_STATE_STOP) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P)) {
		vfmig_disable_files_locked(vdev);
		return NULL;
	}

	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_RESUMING) {
		migf = vfmig_file_create(vdev, false);
		if (IS_ERR(migf)) {
			dev_err(vfmig_dev(vdev), "cannot create the resuming data fd: %pe\n",
				migf);
			return ERR_CAST(migf);
		}
		get_file(migf->filp);
		vdev->resuming = migf;
		return migf->filp;
	}

	if (cur == VFIO_DEVICE_STATE_RESUMING &&
	    new == VFIO_DEVICE_STATE_STOP) {
		ret = vfmig_resume_commit_locked(vdev);
		if (ret)
			return ERR_PTR(ret);
		vfmig_disable_files_locked(vdev);
		return NULL;
	}

	/* vfio_mig_get_next_state() uses no other arc */
	WARN_ON(true);
	return ERR_PTR(-EINVAL);
}

struct file *vfmig_set_state(struct vfio_device *core_vdev,
			     enum vfio_device_mig_state new_state)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	u64 seq;
	int ret;

	mutex_lock(&vdev->state_mutex);
	while (new_state != vdev->mig_state) {
		if (vdev->mig_state == VFIO_DEVICE_STATE_ERROR) {
			res = ERR_PTR(-EIO);
			break;
		}
		ret = vfio_mig_get_next_state(core_vdev, vdev->mig_state,
					      new_state, &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		seq = vfmig_trace_begin();
		res = vfmig_step_locked(vdev, next);
		if (IS_ERR(res)) {
			if (PTR_ERR(res) == -EIO) {
				dev_err(vfmig_dev(vdev), "migration step failed, device in ERROR: %pe\n",
					res);
				vfmig_disable_files_locked(vdev);
				vfmig_trace_add(vdev, seq, vdev->mig_state,
						VFIO_DEVICE_STATE_ERROR,
						VFMIG_TRACE_ERROR);
				vdev->mig_state = VFIO_DEVICE_STATE_ERROR;
				vfmig_set_running_locked(vdev, false);
			}
			break;
		}
		vfmig_trace_add(vdev, seq, vdev->mig_state, next,
				VFMIG_TRACE_ARC);
		vdev->mig_state = next;
		if (WARN_ON(res && new_state != vdev->mig_state)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	vfmig_state_mutex_unlock(vdev);
	return res;
}

int vfmig_get_state(struct vfio_device *core_vdev,
		    enum vfio_device_mig_state *state)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);

	mutex_lock(&vdev->state_mutex);
	*state = vdev->mig_state;
	vfmig_state_mutex_unlock(vdev);
	return 0;
}

int vfmig_get_data_size(struct vfio_device *core_vdev, unsigned long *len)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);
	struct vfmig_file *migf;

	mutex_lock(&vdev->state_mutex);
	migf = vdev->saving;
	if (migf) {
		mutex_lock(&migf->lock);
		*len = vfmig_prod_stop_copy_len(vdev, &migf->prod);
		mutex_unlock(&migf->lock);
	} else {
		*len = VFMIG_HDR_SIZE + vdev->mem.npages * VFMIG_PAGE_REC +
		       VFMIG_REGS_REC + VFMIG_END_REC;
	}
	vfmig_state_mutex_unlock(vdev);
	return 0;
}

/*
 * Reset (VFIO_DEVICE_RESET, FLR): back to RUNNING, data fds disabled, the
 * device state cleared. May run with core.memory_lock held for writing (a
 * PCI reset's reset_done): so no BAR access here, and no lock that is held
 * while user memory is copied.
 */
void vfmig_reset_locked(struct vfmig_device *vdev)
{
	u64 seq = vfmig_trace_begin();

	lockdep_assert_held(&vdev->state_mutex);
	vfmig_disable_files_locked(vdev);
	vdev->fail_next = false;
	vdev->fail_reserve = false;
	vfmig_state_clear_locked(vdev);
	if (vdev->mig_state != VFIO_DEVICE_STATE_RUNNING)
		vfmig_trace_add(vdev, seq, vdev->mig_state,
				VFIO_DEVICE_STATE_RUNNING, VFMIG_TRACE_RESET);
	vdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vfmig_update_running_locked(vdev);
}

/*
 * At close, before the state is cleared: keep the digest of a device its
 * user left stopped or saving (STOP, STOP_COPY, RUNNING_P2P, PRE_COPY,
 * PRE_COPY_P2P), the state a migrated-away source handed to its
 * destination (migration/closed_digest). A device closed in RUNNING,
 * RESUMING or ERROR handed nothing: the last digest is forgotten. The
 * workload stops first, so the digest is of the moment of close. Hashing
 * drops state_mutex, which is held again on return; a reset applied
 * meanwhile (the device back in RUNNING) leaves no digest.
 */
void vfmig_closed_digest_locked(struct vfmig_device *vdev)
{
	enum vfio_device_mig_state st = vdev->mig_state;
	u8 digest[VFMIG_DIGEST_LEN];
	int ret;

	lockdep_assert_held(&vdev->state_mutex);
	vdev->closed_digest_valid = false;
	if (st == VFIO_DEVICE_STATE_RUNNING ||
	    st == VFIO_DEVICE_STATE_RESUMING ||
	    st == VFIO_DEVICE_STATE_ERROR)
		return;
	vfmig_set_running_locked(vdev, false);
	ret = vfmig_state_digest(vdev, digest, false);	/* releases state_mutex */
	mutex_lock(&vdev->state_mutex);
	if (!ret && vdev->mig_state != st)
		ret = -EAGAIN;
	if (ret) {
		dev_warn(vfmig_dev(vdev), "closed in state %u, no closed_digest: %pe\n",
			 st, ERR_PTR(ret));
		return;
	}
	memcpy(vdev->closed_digest, digest, sizeof(digest));
	vdev->closed_digest_valid = true;
}

/*
 * A reset happened (reset_done(), with memory_lock held for writing, or the
 * driver's own reset): apply it to the migration state now if state_mutex
 * is free, else let its holder apply it in vfmig_state_mutex_unlock(). Never
 * sleeps on state_mutex: its holders may wait for memory_lock.
 */
void vfmig_request_reset(struct vfmig_device *vdev)
{
	spin_lock(&vdev->reset_lock);
	vdev->deferred_reset = true;
	if (!mutex_trylock(&vdev->state_mutex)) {
		/* the holder sees the flag before it releases state_mutex */
		spin_unlock(&vdev->reset_lock);
		return;
	}
	spin_unlock(&vdev->reset_lock);
	vfmig_state_mutex_unlock(vdev);
}

/*
 * Release state_mutex, first applying a PCI reset that vfmig_reset_done()
 * could not apply itself because state_mutex was held. The flag is tested
 * and state_mutex released under reset_lock, so a reset_done() whose
 * trylock failed cannot be missed.
 */
void vfmig_state_mutex_unlock(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->state_mutex);
	for (;;) {
		spin_lock(&vdev->reset_lock);
		if (!vdev->deferred_reset)
			break;
		vdev->deferred_reset = false;
		spin_unlock(&vdev->reset_lock);
		if (vdev->opened)
			vfmig_reset_locked(vdev);
	}
	mutex_unlock(&vdev->state_mutex);
	spin_unlock(&vdev->reset_lock);
}
