// SPDX-License-Identifier: GPL-2.0
/*
 * The mmap'd migration buffers are registrable memory: ibv_reg_mr() on the
 * source's (saving) and the destination's (resuming) buffer, on rxe0.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "report.h"
#include "stream.h"
#include "tests.h"

static struct ibv_context *open_rdma(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n = 0;

	list = ibv_get_device_list(&n);
	if (!list)
		return NULL;
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	return ctx;
}

static void reg_one(struct ibv_pd *pd, const char *name, int fd)
{
	const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			   IBV_ACCESS_REMOTE_READ;
	struct vfm_map m = { 0 };
	struct ibv_mr *mr;
	int ret;

	ret = vfm_map(fd, &m);
	if (ret) {
		vfm_fail(name, "mmap of the data fd: %s", strerror(-ret));
		return;
	}
	mr = ibv_reg_mr(pd, m.p, m.size, access);
	if (!mr) {
		vfm_fail(name, "ibv_reg_mr of %zu bytes: %s", m.size,
			 strerror(errno));
	} else {
		vfm_ok(name);
		vfm_note("%s: %zu bytes, lkey %#x rkey %#x", name, m.size,
			 mr->lkey, mr->rkey);
		ibv_dereg_mr(mr);
	}
	vfm_unmap(&m);
}

void vfm_t_rdma(struct vfm_ctx *c)
{
	struct ibv_context *ctx;
	struct ibv_pd *pd = NULL;
	int ret, fa = -1, fb = -1;

	ctx = open_rdma(c->rxe);
	if (!ctx) {
		vfm_skip("rdma/reg-mr-source", "no RDMA device %s", c->rxe);
		vfm_skip("rdma/reg-mr-destination", "no RDMA device %s",
			 c->rxe);
		return;
	}
	pd = ibv_alloc_pd(ctx);
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_set_state(&c->dev[0], VFIO_DEVICE_STATE_PRE_COPY,
				    &fa);
	if (!ret)
		ret = vfm_goto(&c->dev[1], VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(&c->dev[1], VFIO_DEVICE_STATE_RESUMING,
				    &fb);
	if (ret || !pd) {
		vfm_fail("rdma/setup", "%s",
			 pd ? strerror(-ret) : "ibv_alloc_pd failed");
		goto out;
	}
	reg_one(pd, "rdma/reg-mr-source", fa);
	reg_one(pd, "rdma/reg-mr-destination", fb);
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	vfm_reset(&c->dev[0]);
	vfm_reset(&c->dev[1]);
	if (pd)
		ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
}
