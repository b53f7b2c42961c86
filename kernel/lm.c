// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration: the VFIO migration v2 state machine and the data fds
 * (read/write, PRE_COPY info, and the mmap-able migration buffer).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "vfmig_stub.h"

#define VFMIG_WRITE_CHUNK	(64 * 1024)
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
	mutex_unlock(&migf->lock);
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
	struct vfmig_seg_ent *seg, *tmp;

	/* the device disabled this file before it dropped its reference */
	list_for_each_entry_safe(seg, tmp, &migf->segs, node)
		kfree(seg);
	vfmig_prod_free(&migf->prod);
	vfmig_parser_free(&migf->parser);
	vfree(migf->buf);
	mutex_destroy(&migf->lock);
	kfree(migf);
	return 0;
}

static int vfmig_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct vfmig_file *migf = filp->private_data;

	if (vma->vm_pgoff ||
	    vma->vm_end - vma->vm_start > PAGE_ALIGN(migf->buf_size))
		return -EINVAL;
	/* ordinary vmalloc pages: pin_user_pages()/ibv_reg_mr() work */
	return remap_vmalloc_range(vma, migf->buf, 0);
}

static ssize_t vfmig_save_read(struct file *filp, char __user *buf,
			       size_t len, loff_t *pos)
{
	struct vfmig_file *migf = filp->private_data;
	ssize_t ret;

	if (pos)
		return -ESPIPE;
	mutex_lock(&migf->lock);
	if (migf->disabled)
		ret = -ENODEV;
	else
		ret = vfmig_prod_copy(migf->vdev, &migf->prod, NULL, buf, len);
	mutex_unlock(&migf->lock);
	return ret;
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
	 * disabled one may outlive its device, so no state_mutex here.
	 */
	mutex_lock(&migf->lock);
	if (migf->disabled)
		ret = -ENODEV;
	else if (migf->prod.stop_copy)
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

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.argsz < sizeof(info))
		return -EINVAL;
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
	ent = kmalloc(sizeof(*ent), GFP_KERNEL);
	if (!ent)
		return -ENOMEM;

	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
		goto err;
	}
	vfmig_seg_room_locked(migf, &off, &room);
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
	n = vfmig_prod_copy(migf->vdev, &migf->prod, migf->buf + off, NULL,
			    want);
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
out:
	mutex_unlock(&migf->lock);
	return copy_to_user(arg, &seg, sizeof(seg)) ? -EFAULT : 0;
err:
	mutex_unlock(&migf->lock);
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
	chunk = kmalloc(VFMIG_WRITE_CHUNK, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	mutex_lock(&migf->lock);
	if (migf->disabled)
		ret = -ENODEV;
	while (!ret && done < len) {
		size_t n = min_t(size_t, len - done, VFMIG_WRITE_CHUNK);

		if (copy_from_user(chunk, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		ret = vfmig_parser_feed(migf->vdev, &migf->parser, chunk, n);
		if (!ret)
			done += n;
	}
	mutex_unlock(&migf->lock);
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
	mutex_lock(&migf->lock);
	if (migf->disabled)
		ret = -ENODEV;
	else
		ret = vfmig_parser_feed(migf->vdev, &migf->parser,
					migf->buf + seg.offset, seg.length);
	mutex_unlock(&migf->lock);
	return ret;
}

static long vfmig_resume_ioctl(struct file *filp, unsigned int cmd,
			       unsigned long arg)
{
	struct vfmig_file *migf = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
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

	migf = kzalloc(sizeof(*migf), GFP_KERNEL);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	migf->vdev = vdev;
	migf->saving = saving;
	mutex_init(&migf->lock);
	INIT_LIST_HEAD(&migf->segs);
	vfmig_mem_init(&migf->parser.stage, 0);
	migf->buf_size = PAGE_ALIGN(vfmig_buf_size);
	migf->buf = vmalloc_user(migf->buf_size);
	ret = migf->buf ? 0 : -ENOMEM;
	if (!ret)
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
	vfree(migf->buf);
	kfree(migf);
	return ERR_PTR(ret);
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
		vfmig_regs_sync_from_hw(vdev, &migf->prod.regs);
		migf->prod.stop_copy = true;
	}
	mutex_lock(&vdev->mem_lock);
	vfmig_dirty_start_locked(vdev);
	mutex_unlock(&vdev->mem_lock);
	get_file(migf->filp);
	vdev->saving = migf;
	return migf->filp;
}

/* RESUMING->STOP: move the staged state into the device. */
static int vfmig_resume_commit_locked(struct vfmig_device *vdev)
{
	struct vfmig_file *migf = vdev->resuming;
	struct vfmig_parser *p = &migf->parser;
	unsigned long *dirty = NULL;
	struct page *page;
	unsigned long idx;
	int ret;

	lockdep_assert_held(&vdev->state_mutex);
	mutex_lock(&migf->lock);
	ret = vfmig_parser_complete(vdev, p);
	if (ret)
		goto out;
	if (p->stage.size != vdev->mem.size) {
		dirty = kvcalloc(BITS_TO_LONGS(p->stage.npages), sizeof(long),
				 GFP_KERNEL);
		if (!dirty) {
			ret = -ENOMEM;
			goto out;
		}
	}
	mutex_lock(&vdev->mem_lock);
	vfmig_mem_free(&vdev->mem);
	vfmig_mem_init(&vdev->mem, p->stage.size);
	xa_for_each(&p->stage.pages, idx, page) {
		if (xa_is_err(xa_store(&vdev->mem.pages, idx, page,
				       GFP_KERNEL))) {
			__free_page(page);
			ret = -ENOMEM;
		}
	}
	xa_destroy(&p->stage.pages);
	vfmig_mem_init(&p->stage, 0);
	if (dirty) {
		kvfree(vdev->dirty);
		vdev->dirty = dirty;
	}
	vdev->regs = p->regs;
	mutex_unlock(&vdev->mem_lock);
	vfmig_state_region_resize(vdev);
	vfmig_regs_apply_to_hw(vdev);
	if (ret) {
		dev_err(vfmig_dev(vdev), "device memory partly restored: %pe\n",
			ERR_PTR(ret));
		/* the staged state is gone: no retry, the device is in ERROR */
		ret = -EIO;
	}
out:
	mutex_unlock(&migf->lock);
	return ret;
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

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY))
		return NULL;	/* the function does no peer-to-peer DMA */

	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    new == VFIO_DEVICE_STATE_STOP) {
		vfmig_set_running_locked(vdev, false);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP &&
	    new == VFIO_DEVICE_STATE_RUNNING_P2P) {
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
		mutex_lock(&migf->lock);
		vfmig_regs_sync_from_hw(vdev, &migf->prod.regs);
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
		res = vfmig_step_locked(vdev, next);
		if (IS_ERR(res)) {
			if (PTR_ERR(res) == -EIO) {
				dev_err(vfmig_dev(vdev), "migration step failed, device in ERROR: %pe\n",
					res);
				vfmig_disable_files_locked(vdev);
				vdev->mig_state = VFIO_DEVICE_STATE_ERROR;
				vfmig_set_running_locked(vdev, false);
			}
			break;
		}
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

/* Reset (VFIO_DEVICE_RESET, FLR): back to RUNNING, data fds disabled. */
void vfmig_reset_locked(struct vfmig_device *vdev)
{
	lockdep_assert_held(&vdev->state_mutex);
	vfmig_disable_files_locked(vdev);
	vdev->fail_next = false;
	vdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vfmig_update_running_locked(vdev);
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
