// SPDX-License-Identifier: MIT
/* Transport lookup by name: only backends that work in this build; the
 * operator hints the backends leave (hint.h). */
#include <errno.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "hint.h"
#include "vfm/transport.h"

static const struct vfm_xport_ops *const vfm_xports[] = {
	&vfm_xport_tcp_ops,
	&vfm_xport_rdma_ops,
};

const struct vfm_xport_ops *vfm_xport_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(vfm_xports) / sizeof(vfm_xports[0]); i++)
		if (!strcmp(vfm_xports[i]->name, name))
			return vfm_xports[i];
	return NULL;
}

static _Thread_local char vfm_xport_hint[512];
static _Thread_local bool vfm_xport_hint_set;

const char *vfm_xport_take_hint(void)
{
	if (!vfm_xport_hint_set)
		return NULL;
	vfm_xport_hint_set = false;
	return vfm_xport_hint;
}

void vfm_xport_hint_memlock(size_t need, unsigned long long limit)
{
	const unsigned long long mib = 1024 * 1024;

	/* Whole MiB, the need rounded up and the limit down. */
	snprintf(
		vfm_xport_hint, sizeof(vfm_xport_hint),
		"RDMA registration needs %llu MiB of locked memory and the limit is %llu MiB: raise LimitMEMLOCK= in the unit (LimitMEMLOCK=infinity) or 'ulimit -l' in the shell that starts vfmig, or run it with CAP_IPC_LOCK.",
		((unsigned long long)need + mib - 1) / mib, limit / mib);
	vfm_xport_hint_set = true;
}

/* Whether a seccomp filter is on this process (/proc/self/status). */
static bool seccomp_filtered(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	int mode = 0;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode == 2;
}

void vfm_xport_hint_uring(int err)
{
	const char *why = strerror(-err);

	if (seccomp_filtered())
		snprintf(
			vfm_xport_hint, sizeof(vfm_xport_hint),
			"io_uring is refused by a seccomp filter on this process (io_uring_setup: %s), as container runtimes' default profiles and systemd's SystemCallFilter= do: allow io_uring_setup, io_uring_enter and io_uring_register there, or use --transport rdma.",
			why);
	else
		snprintf(
			vfm_xport_hint, sizeof(vfm_xport_hint),
			"io_uring is not available to this process (io_uring_setup: %s): the kernel has it disabled (sysctl kernel.io_uring_disabled) or lacks it, or a container refuses it; enable it, or use --transport rdma.",
			why);
	vfm_xport_hint_set = true;
}

#define VFM_HUGE (2ul << 20)

static void *map_huge(size_t len, int flags)
{
	uint8_t *raw, *p;
	size_t span, head;

	if (!len || len > SIZE_MAX - 2 * VFM_HUGE) {
		errno = EINVAL;
		return NULL;
	}
	/* Whole pages, so that the slack is unmapped exactly; munmap(p, len)
	 * in vfm_xport_buf_free() rounds the same way. */
	len = (len + 4095) & ~(size_t)4095;
	span = len + VFM_HUGE;
	raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	/* Keep the 2 MiB-aligned part, give the slack back. */
	p = (uint8_t *)(((uintptr_t)raw + VFM_HUGE - 1) & ~(VFM_HUGE - 1));
	head = (size_t)(p - raw);
	if (head)
		munmap(raw, head);
	if (span - head > len)
		munmap(p + len, span - head - len);
	/* Advice only: without THP the buffer is still usable. */
	(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
}

void *vfm_xport_buf_alloc(size_t len)
{
	void *p = map_huge(len, 0);

	if (p)
		memset(p, 0, len);
	return p;
}

void *vfm_xport_buf_reserve(size_t len)
{
	return map_huge(len, MAP_NORESERVE);
}

void vfm_xport_buf_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}
