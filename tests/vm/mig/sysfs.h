/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sysfs files of a PCI device bound to vfmig_stub: paths relative to
 * /sys/bus/pci/devices/<bdf>/. Values are read without the trailing newline.
 */
#ifndef VFM_VM_SYSFS_H
#define VFM_VM_SYSFS_H

#include <stddef.h>
#include <stdint.h>

#define VFM_SYS_DIGEST "migration/state_digest"
#define VFM_SYS_CLOSED_DIGEST "migration/closed_digest"
#define VFM_SYS_MODEL "migration/model"
#define VFM_SYS_VERSION "migration/version"
#define VFM_SYS_COMPATIBLE "migration/version_compatible"
#define VFM_SYS_ALLOWED_MEMORY "migration/allowed/memory"

int vfm_sysfs_read(const char *bdf, const char *rel, char *buf, size_t len);
int vfm_sysfs_write(const char *bdf, const char *rel, const char *val);
int vfm_sysfs_write_u64(const char *bdf, const char *rel, uint64_t v);
int vfm_file_write(const char *path, const char *val);
int vfm_digest(const char *bdf, char *buf, size_t len);
/* <debugfs>/vfmig_stub/<bdf>/<name> (debugfs mounted when it is not). */
int vfm_debugfs_write(const char *bdf, const char *name, const char *val);

#endif
