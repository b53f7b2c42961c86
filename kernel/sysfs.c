// SPDX-License-Identifier: GPL-2.0
/*
 * sysfs: the compatibility identity under <pci dev>/migration/ (the layout
 * `vfmig compat` reads) and the knobs under <pci dev>/vfmig/.
 */
#include <linux/debugfs.h>
#include <linux/kobject.h>
#include <linux/pci.h>
#include <linux/sysfs.h>

#include "vfmig_stub.h"

static struct vfmig_device *vfmig_from_kobj(struct kobject *kobj)
{
	return vfmig_from_pdev(to_pci_dev(kobj_to_dev(kobj->parent)));
}

static const char *const vfmig_state_names[] = {
	[VFIO_DEVICE_STATE_ERROR] = "ERROR",
	[VFIO_DEVICE_STATE_STOP] = "STOP",
	[VFIO_DEVICE_STATE_RUNNING] = "RUNNING",
	[VFIO_DEVICE_STATE_STOP_COPY] = "STOP_COPY",
	[VFIO_DEVICE_STATE_RESUMING] = "RESUMING",
	[VFIO_DEVICE_STATE_RUNNING_P2P] = "RUNNING_P2P",
	[VFIO_DEVICE_STATE_PRE_COPY] = "PRE_COPY",
	[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
};

static const char *vfmig_state_name(unsigned int s)
{
	if (s >= ARRAY_SIZE(vfmig_state_names) || !vfmig_state_names[s])
		return "?";
	return vfmig_state_names[s];
}

/* Copy a one-line value; -EINVAL if empty or too long. */
static int vfmig_take_line(char *dst, size_t size, const char *buf,
			   size_t count)
{
	size_t n = count;

	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	if (!n || n >= size || memchr(buf, '\n', n))
		return -EINVAL;
	memcpy(dst, buf, n);
	dst[n] = '\0';
	return 0;
}

/* A string of the identity, writable while the device is closed. */
struct vfmig_str_attr {
	struct kobj_attribute attr;
	size_t off;			/* offsetof(struct vfmig_device, field) */
	size_t size;
	bool (*valid)(const char *s);
};

static ssize_t vfmig_str_show(struct kobject *kobj, struct kobj_attribute *attr,
			      char *buf)
{
	struct vfmig_str_attr *sa = container_of(attr, struct vfmig_str_attr,
						 attr);
	struct vfmig_device *vdev = vfmig_from_kobj(kobj);
	ssize_t n;

	mutex_lock(&vdev->state_mutex);
	n = sysfs_emit(buf, "%s\n", (char *)vdev + sa->off);
	vfmig_state_mutex_unlock(vdev);
	return n;
}

static ssize_t vfmig_str_store(struct kobject *kobj,
			       struct kobj_attribute *attr, const char *buf,
			       size_t count)
{
	struct vfmig_str_attr *sa = container_of(attr, struct vfmig_str_attr,
						 attr);
	struct vfmig_device *vdev = vfmig_from_kobj(kobj);
	char tmp[VFMIG_COMPAT_MAX];
	int ret;

	ret = vfmig_take_line(tmp, min(sa->size, sizeof(tmp)), buf, count);
	if (!ret && sa->valid && !sa->valid(tmp))
		ret = -EINVAL;
	if (ret)
		return ret;
	mutex_lock(&vdev->state_mutex);
	if (vdev->opened)
		ret = -EBUSY;
	else
		strscpy((char *)vdev + sa->off, tmp, sa->size);
	/* allowed/memory is the only one named "memory" */
	if (!ret && !strcmp(attr->attr.name, "memory"))
		vdev->allowed_memory_set = true;
	vfmig_state_mutex_unlock(vdev);
	return ret ? ret : count;
}

static struct vfmig_str_attr vfmig_attr_model = {
	.attr = __ATTR(model, 0644, vfmig_str_show, vfmig_str_store),
	.off = offsetof(struct vfmig_device, model),
	.size = sizeof_field(struct vfmig_device, model),
};

static struct vfmig_str_attr vfmig_attr_version = {
	.attr = __ATTR(version, 0644, vfmig_str_show, vfmig_str_store),
	.off = offsetof(struct vfmig_device, version),
	.size = sizeof_field(struct vfmig_device, version),
	.valid = vfmig_version_valid,
};

static struct vfmig_str_attr vfmig_attr_version_compatible = {
	.attr = __ATTR(version_compatible, 0644, vfmig_str_show,
		       vfmig_str_store),
	.off = offsetof(struct vfmig_device, version_compatible),
	.size = sizeof_field(struct vfmig_device, version_compatible),
	.valid = vfmig_ranges_valid,
};

static struct vfmig_str_attr vfmig_attr_features = {
	.attr = __ATTR(features, 0644, vfmig_str_show, vfmig_str_store),
	.off = offsetof(struct vfmig_device, features),
	.size = sizeof_field(struct vfmig_device, features),
};

/* migration/allowed/memory */
static struct vfmig_str_attr vfmig_attr_allowed_memory = {
	.attr = __ATTR(memory, 0644, vfmig_str_show, vfmig_str_store),
	.off = offsetof(struct vfmig_device, allowed_memory),
	.size = sizeof_field(struct vfmig_device, allowed_memory),
};

static ssize_t state_digest_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_kobj(kobj);
	u8 digest[VFMIG_DIGEST_LEN];
	int ret;

	mutex_lock(&vdev->state_mutex);
	ret = vfmig_state_digest(vdev, digest, true);	/* releases state_mutex */
	if (ret)
		return ret;
	return sysfs_emit(buf, "%*phN\n", (int)sizeof(digest), digest);
}

/* root only: a whole-memory hash costs a user nothing and the host much */
static struct kobj_attribute vfmig_attr_state_digest = __ATTR_RO_MODE(state_digest, 0400);

/*
 * The digest kept when the device was last closed stopped or saving (what a
 * migrated-away source held); an empty line when there is none (never
 * closed so, or last closed in RUNNING, RESUMING or ERROR).
 */
static ssize_t closed_digest_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_kobj(kobj);
	ssize_t n;

	mutex_lock(&vdev->state_mutex);
	if (vdev->closed_digest_valid)
		n = sysfs_emit(buf, "%*phN\n", (int)sizeof(vdev->closed_digest),
			       vdev->closed_digest);
	else
		n = sysfs_emit(buf, "\n");
	vfmig_state_mutex_unlock(vdev);
	return n;
}

/* root only, as state_digest */
static struct kobj_attribute vfmig_attr_closed_digest = __ATTR_RO_MODE(closed_digest, 0400);

/* The stream formats this driver produces and loads (vfmig.h). */
static ssize_t stream_formats_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u,%u\n", VFMIG_STREAM_FORMAT,
			  VFMIG_STREAM_FORMAT_ZERO);
}

static struct kobj_attribute vfmig_attr_stream_formats = __ATTR_RO(stream_formats);

static struct attribute *vfmig_mig_attrs[] = {
	&vfmig_attr_model.attr.attr,
	&vfmig_attr_version.attr.attr,
	&vfmig_attr_version_compatible.attr.attr,
	&vfmig_attr_features.attr.attr,
	&vfmig_attr_state_digest.attr,
	&vfmig_attr_closed_digest.attr,
	&vfmig_attr_stream_formats.attr,
	NULL,
};

static const struct attribute_group vfmig_mig_group = {
	.attrs = vfmig_mig_attrs,
};

/* Set the memory size while the device is closed. */
static int vfmig_set_mem_mib(struct vfmig_device *vdev, u64 mib)
{
	int ret;

	if (!mib || mib > vfmig_max_mem_mib)
		return -EINVAL;
	mutex_lock(&vdev->state_mutex);
	if (vdev->opened)
		ret = -EBUSY;
	else
		ret = vfmig_state_resize(vdev, mib << 20);
	/* allowed/memory follows params/memory until it is written itself */
	if (!ret && !vdev->allowed_memory_set)
		snprintf(vdev->allowed_memory, sizeof(vdev->allowed_memory),
			 "%llu", mib);
	vfmig_state_mutex_unlock(vdev);
	return ret;
}

static ssize_t memory_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	struct vfmig_device *vdev = vfmig_from_kobj(kobj);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(vdev->mem.size) >> 20);
}

static ssize_t memory_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	u64 mib;
	int ret;

	ret = kstrtou64(buf, 10, &mib);
	if (!ret)
		ret = vfmig_set_mem_mib(vfmig_from_kobj(kobj), mib);
	return ret ? ret : count;
}

static struct kobj_attribute vfmig_attr_param_memory = __ATTR_RW(memory);

static struct attribute *vfmig_param_attrs[] = {
	&vfmig_attr_param_memory.attr,
	NULL,
};

static const struct attribute_group vfmig_param_group = {
	.name = "params",
	.attrs = vfmig_param_attrs,
};

static struct attribute *vfmig_allowed_attrs[] = {
	&vfmig_attr_allowed_memory.attr.attr,
	NULL,
};

static const struct attribute_group vfmig_allowed_group = {
	.name = "allowed",
	.attrs = vfmig_allowed_attrs,
};

static const struct attribute_group *vfmig_mig_groups[] = {
	&vfmig_mig_group,
	&vfmig_param_group,
	&vfmig_allowed_group,
	NULL,
};

int vfmig_sysfs_add(struct vfmig_device *vdev)
{
	int ret;

	vdev->mig_kobj = kobject_create_and_add("migration",
						&vfmig_dev(vdev)->kobj);
	if (!vdev->mig_kobj)
		return -ENOMEM;
	ret = sysfs_create_groups(vdev->mig_kobj, vfmig_mig_groups);
	if (ret) {
		dev_err(vfmig_dev(vdev), "cannot create migration/ in sysfs: %pe\n",
			ERR_PTR(ret));
		kobject_put(vdev->mig_kobj);
		vdev->mig_kobj = NULL;
	}
	return ret;
}

void vfmig_sysfs_remove(struct vfmig_device *vdev)
{
	if (!vdev->mig_kobj)
		return;
	sysfs_remove_groups(vdev->mig_kobj, vfmig_mig_groups);
	kobject_put(vdev->mig_kobj);
	vdev->mig_kobj = NULL;
}

/* ------------------------------------------------------ <pci dev>/vfmig/ */

static ssize_t dirty_rate_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));

	return sysfs_emit(buf, "%lu\n", READ_ONCE(vdev->dirty_rate));
}

static ssize_t dirty_rate_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));
	unsigned long rate;
	int ret;

	ret = kstrtoul(buf, 0, &rate);
	if (ret)
		return ret;
	WRITE_ONCE(vdev->dirty_rate, rate);
	return count;
}

static DEVICE_ATTR_RW(dirty_rate);

static ssize_t mem_size_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));

	return sysfs_emit(buf, "%llu\n", READ_ONCE(vdev->mem.size));
}

static ssize_t mem_size_store(struct device *dev,
			      struct device_attribute *attr,
			      const char *buf, size_t count)
{
	u64 size;
	int ret;

	ret = kstrtou64(buf, 0, &size);
	if (ret)
		return ret;
	if (size % (1u << 20))
		return -EINVAL;
	ret = vfmig_set_mem_mib(vfmig_from_pdev(to_pci_dev(dev)), size >> 20);
	return ret ? ret : count;
}

static DEVICE_ATTR_RW(mem_size);

static ssize_t mig_state_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));
	enum vfio_device_mig_state s;

	mutex_lock(&vdev->state_mutex);
	s = vdev->mig_state;
	vfmig_state_mutex_unlock(vdev);
	if (s >= ARRAY_SIZE(vfmig_state_names) || !vfmig_state_names[s])
		return sysfs_emit(buf, "%u\n", s);
	return sysfs_emit(buf, "%s\n", vfmig_state_names[s]);
}

static DEVICE_ATTR_RO(mig_state);

static const char *const vfmig_trace_causes[] = {
	[VFMIG_TRACE_ARC] = "arc",
	[VFMIG_TRACE_ERROR] = "error",
	[VFMIG_TRACE_RESET] = "reset",
	[VFMIG_TRACE_CLOSE] = "close",
};

static int vfmig_trace_line(char *buf, size_t size,
			    const struct vfmig_trace_ent *e)
{
	return snprintf(buf, size, "%llu %s %s %llu %s\n", e->seq,
			vfmig_state_name(e->from), vfmig_state_name(e->to),
			e->done, e->cause < ARRAY_SIZE(vfmig_trace_causes) ?
			vfmig_trace_causes[e->cause] : "?");
}

/*
 * The device's last state changes, oldest first, one a line:
 * "SEQ FROM TO DONE CAUSE" (ABI file). As many of the newest as fit a page.
 */
static ssize_t mig_trace_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));
	const struct vfmig_trace_ent *e;
	u64 first, i;
	size_t len = 0;
	ssize_t n = 0;

	spin_lock(&vdev->trace_lock);
	first = vdev->trace_n;
	while (first > 0 && vdev->trace_n - first < VFMIG_TRACE_LEN) {
		e = &vdev->trace[(first - 1) % VFMIG_TRACE_LEN];
		len += vfmig_trace_line(NULL, 0, e);
		if (len >= PAGE_SIZE)
			break;
		first--;
	}
	for (i = first; i < vdev->trace_n; i++) {
		e = &vdev->trace[i % VFMIG_TRACE_LEN];
		n += vfmig_trace_line(buf + n, PAGE_SIZE - n, e);
	}
	spin_unlock(&vdev->trace_lock);
	return n;
}

static DEVICE_ATTR_RO(mig_trace);

static ssize_t stats_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));
	ssize_t n;

	mutex_lock(&vdev->mem_lock);
	n = sysfs_emit(buf,
		       "pages %lu\nresident_pages %lu\nworkload_pages %llu\n"
		       "dirty_pages %lu\ncursor %lu\ntracking %d\nrunning %d\n",
		       vdev->mem.npages, vdev->mem.resident,
		       vdev->wl_seq, vdev->ndirty, vdev->cursor,
		       vdev->tracking, vdev->running);
	mutex_unlock(&vdev->mem_lock);
	return n;
}

static DEVICE_ATTR_ADMIN_RO(stats);

/*
 * The format the next saving stream produces, once: that stream takes it
 * and it reads 1 again. The agent writes the format its handshake
 * negotiated before PRE_COPY (or STOP_COPY).
 */
static ssize_t stream_format_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));
	u16 f = READ_ONCE(vdev->stream_format);

	return sysfs_emit(buf, "%u\n", f ? f : VFMIG_STREAM_FORMAT);
}

static ssize_t stream_format_store(struct device *dev,
				   struct device_attribute *attr,
				   const char *buf, size_t count)
{
	struct vfmig_device *vdev = vfmig_from_pdev(to_pci_dev(dev));
	u16 f;
	int ret;

	ret = kstrtou16(buf, 0, &f);
	if (ret)
		return ret;
	if (f < VFMIG_STREAM_FORMAT || f > VFMIG_STREAM_FORMAT_MAX)
		return -EINVAL;
	WRITE_ONCE(vdev->stream_format, f);
	return count;
}

static DEVICE_ATTR_RW(stream_format);

static struct attribute *vfmig_knob_attrs[] = {
	&dev_attr_dirty_rate.attr,
	&dev_attr_stream_format.attr,
	&dev_attr_mem_size.attr,
	&dev_attr_mig_state.attr,
	&dev_attr_mig_trace.attr,
	&dev_attr_stats.attr,
	NULL,
};

static const struct attribute_group vfmig_knob_group = {
	.name = "vfmig",
	.attrs = vfmig_knob_attrs,
};

const struct attribute_group *vfmig_dev_groups[] = {
	&vfmig_knob_group,
	NULL,
};

/* -------------------------------------------- <debugfs>/vfmig_stub/<BDF>/ */

/*
 * Fault injection for tests, root only (debugfs):
 *   fail_next     1 = the next migration step fails with EIO (device ERROR)
 *   fail_reserve  1 = RESUMING->STOP cannot reserve memory (ENOMEM, the old
 *                 state stays); cleared by that step
 */
static int vfmig_dbg_get(struct vfmig_device *vdev, bool *flag, u64 *val)
{
	mutex_lock(&vdev->state_mutex);
	*val = *flag;
	vfmig_state_mutex_unlock(vdev);
	return 0;
}

static int vfmig_dbg_set(struct vfmig_device *vdev, bool *flag, u64 val)
{
	if (val > 1)
		return -EINVAL;
	mutex_lock(&vdev->state_mutex);
	*flag = val;
	vfmig_state_mutex_unlock(vdev);
	return 0;
}

static int fail_next_get(void *data, u64 *val)
{
	struct vfmig_device *vdev = data;

	return vfmig_dbg_get(vdev, &vdev->fail_next, val);
}

static int fail_next_set(void *data, u64 val)
{
	struct vfmig_device *vdev = data;

	return vfmig_dbg_set(vdev, &vdev->fail_next, val);
}

DEFINE_DEBUGFS_ATTRIBUTE(vfmig_fail_next_fops, fail_next_get, fail_next_set,
			 "%llu\n");

static int fail_reserve_get(void *data, u64 *val)
{
	struct vfmig_device *vdev = data;

	return vfmig_dbg_get(vdev, &vdev->fail_reserve, val);
}

static int fail_reserve_set(void *data, u64 val)
{
	struct vfmig_device *vdev = data;

	return vfmig_dbg_set(vdev, &vdev->fail_reserve, val);
}

DEFINE_DEBUGFS_ATTRIBUTE(vfmig_fail_reserve_fops, fail_reserve_get,
			 fail_reserve_set, "%llu\n");

void vfmig_debugfs_add(struct vfmig_device *vdev)
{
	if (IS_ERR_OR_NULL(vfmig_debugfs_root))
		return;
	vdev->debugfs = debugfs_create_dir(pci_name(vdev->core.pdev),
					   vfmig_debugfs_root);
	debugfs_create_file_unsafe("fail_next", 0600, vdev->debugfs, vdev,
				   &vfmig_fail_next_fops);
	debugfs_create_file_unsafe("fail_reserve", 0600, vdev->debugfs, vdev,
				   &vfmig_fail_reserve_fops);
}

void vfmig_debugfs_remove(struct vfmig_device *vdev)
{
	debugfs_remove_recursive(vdev->debugfs);
	vdev->debugfs = NULL;
}
