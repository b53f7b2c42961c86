// SPDX-License-Identifier: GPL-2.0
/*
 * The vfio_device_ops of vfmig_stub on top of vfio_pci_core.
 */
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "vfmig_stub.h"

static const struct vfio_migration_ops vfmig_mig_ops = {
	.migration_set_state = vfmig_set_state,
	.migration_get_state = vfmig_get_state,
	.migration_get_data_size = vfmig_get_data_size,
};

static int vfmig_init_dev(struct vfio_device *core_vdev)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);
	int ret, i;

	ret = vfio_pci_core_init_dev(core_vdev);
	if (ret)
		return ret;

	mutex_init(&vdev->state_mutex);
	spin_lock_init(&vdev->reset_lock);
	spin_lock_init(&vdev->trace_lock);
	mutex_init(&vdev->mem_lock);
	/* the rate of dev_warn_ratelimited(), but this function's own */
	for (i = 0; i < VFMIG_WARN_NR; i++)
		ratelimit_state_init(&vdev->warn_rs[i],
				     DEFAULT_RATELIMIT_INTERVAL,
				     DEFAULT_RATELIMIT_BURST);
	vdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	strscpy(vdev->model, "vfmig-edu", sizeof(vdev->model));
	strscpy(vdev->version, "2.0.3", sizeof(vdev->version));
	strscpy(vdev->version_compatible, "2.0.0-2.0.9",
		sizeof(vdev->version_compatible));
	strscpy(vdev->features, "pre_copy p2p mmap", sizeof(vdev->features));
	snprintf(vdev->allowed_memory, sizeof(vdev->allowed_memory), "%u",
		 vfmig_mem_mib);
	vfmig_regs_init(&vdev->regs);
	vdev->dirty_rate = vfmig_dirty_rate_default;
	vfmig_mem_init(&vdev->mem, 0);
	mutex_lock(&vdev->state_mutex);
	ret = vfmig_state_resize(vdev, (u64)vfmig_mem_mib << 20);
	vfmig_state_mutex_unlock(vdev);
	if (ret)
		goto err;

	core_vdev->migration_flags = VFIO_MIGRATION_STOP_COPY |
				     VFIO_MIGRATION_P2P |
				     VFIO_MIGRATION_PRE_COPY;
	core_vdev->mig_ops = &vfmig_mig_ops;
	vfmig_workload_init(vdev);
	return 0;
err:
	mutex_destroy(&vdev->mem_lock);
	mutex_destroy(&vdev->state_mutex);
	vfio_pci_core_release_dev(core_vdev);
	return ret;
}

static void vfmig_release_dev(struct vfio_device *core_vdev)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);

	vfmig_workload_stop(vdev);
	vfmig_mem_free(&vdev->mem);
	kvfree(vdev->dirty);
	mutex_destroy(&vdev->mem_lock);
	mutex_destroy(&vdev->state_mutex);
	vfio_pci_core_release_dev(core_vdev);
}

static int vfmig_open_device(struct vfio_device *core_vdev)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);
	int ret;

	ret = vfio_pci_core_enable(&vdev->core);
	if (ret)
		return ret;
	/* the region's size is mem.size: no sysfs resize until opened is set */
	mutex_lock(&vdev->state_mutex);
	ret = vfmig_state_region_add(vdev);
	if (ret) {
		vfmig_state_mutex_unlock(vdev);
		dev_err(vfmig_dev(vdev), "cannot add the device memory region: %pe\n",
			ERR_PTR(ret));
		vfio_pci_core_disable(&vdev->core);
		return ret;
	}
	/*
	 * A function without a PCI reset method still gets VFIO_DEVICE_RESET:
	 * it resets the migration state (see vfmig_ioctl()).
	 */
	vdev->hw_reset = vdev->core.reset_works;
	vdev->core.reset_works = true;

	vdev->opened = true;
	vdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	/* nothing of the last user's function registers stays either */
	vfmig_regs_reset_hw(vdev, false);
	vfmig_update_running_locked(vdev);
	vfmig_state_mutex_unlock(vdev);

	vfio_pci_core_finish_enable(&vdev->core);
	return 0;
}

static void vfmig_close_device(struct vfio_device *core_vdev)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);
	u64 seq = vfmig_trace_begin();

	mutex_lock(&vdev->state_mutex);
	vfmig_disable_files_locked(vdev);
	/* left stopped or saving: keep the digest of what it held */
	vfmig_closed_digest_locked(vdev);
	/* no data crosses from one user of the device to the next */
	vfmig_state_clear_locked(vdev);
	/*
	 * The function back at power-on values, and the shadow as the function
	 * reads then: a closed device's digest is that of a freshly opened one.
	 */
	vfmig_regs_reset_hw(vdev, false);
	vfmig_regs_sync_from_hw(vdev, NULL);
	vdev->opened = false;
	if (vdev->mig_state != VFIO_DEVICE_STATE_RUNNING)
		vfmig_trace_add(vdev, seq, vdev->mig_state,
				VFIO_DEVICE_STATE_RUNNING, VFMIG_TRACE_CLOSE);
	vdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vfmig_update_running_locked(vdev);
	vfmig_state_mutex_unlock(vdev);
	vdev->core.reset_works = vdev->hw_reset;
	vfio_pci_core_close_device(core_vdev);
}

/* Drop every user mapping of the BARs: the next access faults. */
static void vfmig_zap_bars(struct vfmig_device *vdev)
{
	loff_t start = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_BAR0_REGION_INDEX);
	loff_t end = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_ROM_REGION_INDEX);

	unmap_mapping_range(vdev->core.vdev.inode->i_mapping, start,
			    end - start, true);
}

/*
 * VFIO_DEVICE_RESET of a function without a PCI reset method (edu): the
 * same shape as vfio_pci_core's reset. With memory_lock held for writing
 * and the BAR mappings zapped, the function's registers go back to their
 * power-on values, then the migration state is reset as reset_done() does
 * it. Once memory_lock is dropped, taking state_mutex waits for a holder
 * that had to apply the reset itself.
 */
static int vfmig_edu_reset(struct vfmig_device *vdev)
{
	down_write(&vdev->core.memory_lock);
	vfmig_zap_bars(vdev);
	vfmig_regs_reset_hw(vdev, true);
	vfmig_request_reset(vdev);
	up_write(&vdev->core.memory_lock);

	mutex_lock(&vdev->state_mutex);
	vfmig_state_mutex_unlock(vdev);
	return 0;
}

static long vfmig_ioctl(struct vfio_device *core_vdev, unsigned int cmd,
			unsigned long arg)
{
	struct vfmig_device *vdev = vfmig_from_vfio(core_vdev);
	long ret;

	if (cmd != VFIO_DEVICE_RESET)
		return vfio_pci_core_ioctl(core_vdev, cmd, arg);
	if (!vdev->hw_reset)
		return vfmig_edu_reset(vdev);
	ret = vfio_pci_core_ioctl(core_vdev, cmd, arg);
	/* a reset_done() deferred to a state_mutex holder is applied now */
	mutex_lock(&vdev->state_mutex);
	vfmig_state_mutex_unlock(vdev);
	return ret;
}

const struct vfio_device_ops vfmig_vfio_ops = {
	.name = "vfmig-stub",
	.init = vfmig_init_dev,
	.release = vfmig_release_dev,
	.open_device = vfmig_open_device,
	.close_device = vfmig_close_device,
	.ioctl = vfmig_ioctl,
	.device_feature = vfio_pci_core_ioctl_feature,
	.read = vfio_pci_core_read,
	.write = vfio_pci_core_write,
	.mmap = vfio_pci_core_mmap,
	.request = vfio_pci_core_request,
	.match = vfio_pci_core_match,
	.bind_iommufd = vfio_iommufd_physical_bind,
	.unbind_iommufd = vfio_iommufd_physical_unbind,
	.attach_ioas = vfio_iommufd_physical_attach_ioas,
	.detach_ioas = vfio_iommufd_physical_detach_ioas,
};
