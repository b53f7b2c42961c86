/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The sub-tests of mig_uapi_test. Each one prints its own result lines
 * (report.h); none returns a value.
 */
#ifndef VFM_VM_TESTS_H
#define VFM_VM_TESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "vdev.h"

/* Knobs of vfmig_stub under /sys/bus/pci/devices/<bdf>/ (kernel/sysfs.c). */
#define VFM_KNOB_DIRTY_RATE "vfmig/dirty_rate"
#define VFM_KNOB_MEM_SIZE "vfmig/mem_size"
#define VFM_DBG_FAIL_NEXT "fail_next" /* debugfs, per device */
#define VFM_DBG_FAIL_RESERVE "fail_reserve"
#define VFM_KNOB_MIG_STATE "vfmig/mig_state"

#define VFM_DIGEST_MAX 128

struct vfm_ctx {
	const char *bdf[2]; /* device A (source) and B (destination) */
	struct vfm_vdev dev[2];
	bool open[2];
	const char *ko; /* module file, for the reload test */
	const char *ko_params;
	const char *module; /* module name */
	const char *driver; /* PCI driver name */
	const char *rxe; /* RDMA device for ibv_reg_mr */
	uint64_t rate; /* workload bytes/s while tests want one */
	uint64_t large_mib; /* device memory of the "large" test */
};

int vfm_ctx_open(struct vfm_ctx *c, int i);
void vfm_ctx_close(struct vfm_ctx *c, int i);
/* Reset the device and turn its workload off: RUNNING, no data fd. */
int vfm_ctx_fresh(struct vfm_ctx *c, int i);
int vfm_ctx_rate(struct vfm_ctx *c, int i, uint64_t rate);
/* Write a few pages of pseudo-random data into device i's memory. */
int vfm_ctx_scribble(struct vfm_ctx *c, int i, unsigned int seed);
double vfm_now(void);
void vfm_sleep_ms(unsigned int ms);

void vfm_t_flags(struct vfm_ctx *c);
void vfm_t_fsm(struct vfm_ctx *c);
void vfm_t_error(struct vfm_ctx *c);
void vfm_t_p2p(struct vfm_ctx *c);
void vfm_t_precopy(struct vfm_ctx *c);
void vfm_t_transfer(struct vfm_ctx *c);
void vfm_t_corrupt(struct vfm_ctx *c);
void vfm_t_incompat(struct vfm_ctx *c);
void vfm_t_rdma(struct vfm_ctx *c);
void vfm_t_throughput(struct vfm_ctx *c);
void vfm_t_large(struct vfm_ctx *c);
void vfm_t_unbind(struct vfm_ctx *c);
void vfm_t_clear(struct vfm_ctx *c);
void vfm_t_closed(struct vfm_ctx *c);
void vfm_t_reset_race(struct vfm_ctx *c);
void vfm_t_knobs(struct vfm_ctx *c);
void vfm_t_details(struct vfm_ctx *c);
void vfm_t_memory(struct vfm_ctx *c);
void vfm_t_quiesce(struct vfm_ctx *c);
void vfm_t_edu(struct vfm_ctx *c);

#endif
