/* SPDX-License-Identifier: MIT */
/*
 * Backends leave a sentence for the operator when they know more than the
 * errno they return (vfm_xport_take_hint() in vfm/transport.h hands it to
 * the agent, which logs it). Per thread; the last one set wins.
 */
#ifndef VFM_TRANSPORT_HINT_H
#define VFM_TRANSPORT_HINT_H

#include <stddef.h>

/* An RDMA registration of @need bytes (all the process's registrations)
 * failed for lack of locked memory; @limit is RLIMIT_MEMLOCK's soft
 * value in bytes. */
void vfm_xport_hint_memlock(size_t need, unsigned long long limit);
/* io_uring_queue_init() returned @err (-EPERM or -ENOSYS). */
void vfm_xport_hint_uring(int err);

#endif
