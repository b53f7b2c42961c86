// SPDX-License-Identifier: GPL-2.0
/*
 * vfmig_stub: module init/exit, the PCI driver, its id table and the
 * ids= parameter (like vfio-pci's).
 */
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/version.h>
#include <linux/vfio_pci_core.h>

#include "vfmig_stub.h"

unsigned int vfmig_mem_mib = 64;
module_param_named(mem_mib, vfmig_mem_mib, uint, 0444);
MODULE_PARM_DESC(mem_mib, "Device memory of a newly bound device in MiB (default 64)");

unsigned int vfmig_buf_size = 8 << 20;
module_param_named(buf_size, vfmig_buf_size, uint, 0444);
MODULE_PARM_DESC(buf_size, "Bytes of the mmap-able migration buffer of a data fd (default 8 MiB)");

unsigned long vfmig_dirty_rate_default;
module_param_named(dirty_rate, vfmig_dirty_rate_default, ulong, 0444);
MODULE_PARM_DESC(dirty_rate, "Workload dirty rate of a newly bound device in bytes/s (default 0: off)");

unsigned int vfmig_max_mem_mib = 4096;
module_param_named(max_mem_mib, vfmig_max_mem_mib, uint, 0444);
MODULE_PARM_DESC(max_mem_mib, "Largest device memory in MiB a device may be given or may resume (default 4096)");

struct dentry *vfmig_debugfs_root;

static char ids[1024];
module_param_string(ids, ids, sizeof(ids), 0444);
MODULE_PARM_DESC(ids, "Extra PCI ids to bind: \"vendor:device[:subvendor[:subdevice[:class[:class_mask]]]]\" separated by commas");

struct vfmig_device *vfmig_from_pdev(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = pci_get_drvdata(pdev);

	return container_of(core, struct vfmig_device, core);
}

void vfmig_warn_rl(struct vfmig_device *vdev, enum vfmig_warn_kind kind,
		   const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (!__ratelimit(&vdev->warn_rs[kind]))
		return;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	dev_warn(vfmig_dev(vdev), "%pV", &vaf);
	va_end(args);
}

static int vfmig_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vfmig_device *vdev;
	int ret;

	/* ids= may match anything: only an edu function has this state */
	if (pdev->vendor != VFMIG_EDU_VENDOR || pdev->device != VFMIG_EDU_DEVICE) {
		pci_warn(pdev, "not an edu function (%04x:%04x), refused\n",
			 pdev->vendor, pdev->device);
		return -ENODEV;
	}
	vdev = vfio_alloc_device(vfmig_device, core.vdev, &pdev->dev,
				 &vfmig_vfio_ops);
	if (IS_ERR(vdev))
		return PTR_ERR(vdev);

	dev_set_drvdata(&pdev->dev, &vdev->core);
	ret = vfio_pci_core_register_device(&vdev->core);
	if (ret)
		goto err_put;
	ret = vfmig_sysfs_add(vdev);
	if (ret)
		goto err_unregister;
	vfmig_debugfs_add(vdev);
	return 0;

err_unregister:
	vfio_pci_core_unregister_device(&vdev->core);
err_put:
	vfio_put_device(&vdev->core.vdev);
	return ret;
}

static void vfmig_remove(struct pci_dev *pdev)
{
	struct vfmig_device *vdev = vfmig_from_pdev(pdev);

	vfmig_debugfs_remove(vdev);
	vfmig_sysfs_remove(vdev);
	vfio_pci_core_unregister_device(&vdev->core);
	vfio_put_device(&vdev->core.vdev);
}

/*
 * The PCI core calls this with vfio_pci_core's memory_lock held for writing
 * (VFIO_DEVICE_RESET, hot reset). A data fd's read()/write() may hold
 * migf->lock while it faults on an mmap of this device's BAR, which waits for
 * memory_lock; state_mutex holders wait for migf->lock. So never sleep on
 * state_mutex here: record the reset, and let whoever holds state_mutex (this
 * function, when the trylock succeeds) do it in vfmig_state_mutex_unlock().
 */
static void vfmig_reset_done(struct pci_dev *pdev)
{
	struct vfmig_device *vdev = vfmig_from_pdev(pdev);

	/*
	 * The PCI core restored the function's config space: no interrupt is
	 * held back any more (irq_held is protected by memory_lock, which a
	 * vfio-initiated reset holds for writing here).
	 */
	vdev->irq_held = false;
	vfmig_request_reset(vdev);
}

static const struct pci_error_handlers vfmig_err_handlers = {
	.reset_done = vfmig_reset_done,
	.error_detected = vfio_pci_core_aer_err_detected,
};

static const struct pci_device_id vfmig_pci_table[] = {
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(VFMIG_EDU_VENDOR, VFMIG_EDU_DEVICE) },
	{}
};
MODULE_DEVICE_TABLE(pci, vfmig_pci_table);

static struct pci_driver vfmig_pci_driver = {
	.name = VFMIG_DRV_NAME,
	.id_table = vfmig_pci_table,
	.probe = vfmig_probe,
	.remove = vfmig_remove,
	.err_handler = &vfmig_err_handlers,
	.driver_managed_dma = true,
	.dev_groups = vfmig_dev_groups,
};

/*
 * Parse a copy of ids=: strsep() cuts the string it walks, and the
 * parameter stays readable as given (/sys/module/vfmig_stub/parameters/ids).
 * Every function a dynamic id matches gets its own device in probe.
 */
static void vfmig_add_ids(void)
{
	char *copy, *p, *id;

	if (!ids[0])
		return;
	copy = kstrdup(ids, GFP_KERNEL);
	if (!copy) {
		pr_warn(VFMIG_DRV_NAME ": cannot parse ids=: out of memory\n");
		return;
	}
	p = copy;
	while ((id = strsep(&p, ","))) {
		unsigned int vendor, device, subvendor = PCI_ANY_ID,
			subdevice = PCI_ANY_ID, class = 0, class_mask = 0;
		int fields, ret;

		if (!*id)
			continue;
		fields = sscanf(id, "%x:%x:%x:%x:%x:%x", &vendor, &device,
				&subvendor, &subdevice, &class, &class_mask);
		if (fields < 2) {
			pr_warn(VFMIG_DRV_NAME ": invalid id string \"%s\"\n", id);
			continue;
		}
		ret = pci_add_dynid(&vfmig_pci_driver, vendor, device,
				    subvendor, subdevice, class, class_mask, 0);
		if (ret)
			pr_warn(VFMIG_DRV_NAME ": cannot add id %s: %pe\n", id,
				ERR_PTR(ret));
		else
			pr_info(VFMIG_DRV_NAME ": added id %s\n", id);
	}
	kfree(copy);
}

static int __init vfmig_init(void)
{
	int ret;

	if (!vfmig_max_mem_mib || vfmig_max_mem_mib > VFMIG_MEM_MIB_MAX ||
	    !vfmig_mem_mib || vfmig_mem_mib > vfmig_max_mem_mib ||
	    vfmig_buf_size < PAGE_SIZE || vfmig_buf_size > VFMIG_BUF_SIZE_MAX) {
		pr_err(VFMIG_DRV_NAME ": need 1 <= mem_mib <= max_mem_mib <= 1048576 and 4096 <= buf_size <= 1 GiB\n");
		return -EINVAL;
	}
	vfmig_debugfs_root = debugfs_create_dir(VFMIG_DRV_NAME, NULL);
	ret = pci_register_driver(&vfmig_pci_driver);
	if (ret) {
		debugfs_remove_recursive(vfmig_debugfs_root);
		return ret;
	}
	vfmig_add_ids();
	return 0;
}

static void __exit vfmig_exit(void)
{
	pci_unregister_driver(&vfmig_pci_driver);
	debugfs_remove_recursive(vfmig_debugfs_root);
}

module_init(vfmig_init);
module_exit(vfmig_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfmig: migratable vfio-pci variant driver for QEMU's edu device");
/* 6.13 made the namespace a string literal */
#if KERNEL_VERSION(6, 13, 0) > LINUX_VERSION_CODE
MODULE_IMPORT_NS(IOMMUFD);
#else
MODULE_IMPORT_NS("IOMMUFD");
#endif
