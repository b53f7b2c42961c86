// SPDX-License-Identifier: GPL-2.0
/*
 * The migration state machine as Linux 6.12 defines it: every (from, to)
 * pair of the seven states (combination arcs included, which the core
 * walks through RUNNING_P2P / STOP / PRE_COPY_P2P), the refused ones, the
 * data fds each arc hands out, ERROR and VFIO_DEVICE_RESET.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

static const uint32_t all_states[] = {
	VFIO_DEVICE_STATE_STOP,		VFIO_DEVICE_STATE_RUNNING,
	VFIO_DEVICE_STATE_STOP_COPY,	VFIO_DEVICE_STATE_RESUMING,
	VFIO_DEVICE_STATE_RUNNING_P2P,	VFIO_DEVICE_STATE_PRE_COPY,
	VFIO_DEVICE_STATE_PRE_COPY_P2P,
};
#define NSTATES (sizeof(all_states) / sizeof(all_states[0]))

static bool is_precopy(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

/*
 * With STOP_COPY | P2P | PRE_COPY, the only refused requests are to or from
 * ERROR, and STOP_COPY -> PRE_COPY / PRE_COPY_P2P (a stopped device cannot
 * go back to pre-copy).
 */
static bool arc_valid(uint32_t from, uint32_t to)
{
	if (from == VFIO_DEVICE_STATE_ERROR || to == VFIO_DEVICE_STATE_ERROR ||
	    to >= VFM_NUM_STATES)
		return false;
	return !(from == VFIO_DEVICE_STATE_STOP_COPY && is_precopy(to));
}

/* Whether a valid from -> to hands out a new data fd. */
static bool arc_gives_fd(uint32_t from, uint32_t to)
{
	if (from == to)
		return false;
	if (is_precopy(to))
		return !is_precopy(from);
	if (to == VFIO_DEVICE_STATE_STOP_COPY)
		return !is_precopy(from);
	return to == VFIO_DEVICE_STATE_RESUMING;
}

void vfm_t_flags(struct vfm_ctx *c)
{
	const uint64_t want = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
			      VFIO_MIGRATION_PRE_COPY;
	struct vfm_vdev *d = &c->dev[0];
	uint64_t flags = 0, len = 0;
	uint32_t st = 0;
	int ret;

	ret = vfm_mig_flags(d, &flags);
	vfm_expect(
		!ret && flags == want, "flags/migration",
		"VFIO_DEVICE_FEATURE_MIGRATION: %s, flags %#llx (want %#llx)",
		strerror(-ret), (unsigned long long)flags,
		(unsigned long long)want);
	ret = vfm_get_state(d, &st);
	vfm_expect(!ret && st == VFIO_DEVICE_STATE_RUNNING,
		   "flags/opens-running", "state after open: %s (%s)",
		   vfm_state_name(st), strerror(-ret));
	ret = vfm_data_size(d, &len);
	vfm_expect(!ret && len >= d->mem_size, "flags/data-size",
		   "MIG_DATA_SIZE: %s, %llu bytes for %llu bytes of memory",
		   strerror(-ret), (unsigned long long)len,
		   (unsigned long long)d->mem_size);
	vfm_expect(d->mem_size > 0, "flags/memory-region",
		   "no device-memory region (type %#x subtype %u)",
		   VFMIG_REGION_TYPE, VFMIG_REGION_SUBTYPE_MEM);
}

/* Save the whole (small) state of d, for arcs that leave RESUMING. */
static int golden_stream(struct vfm_vdev *d, struct vfm_buf *out)
{
	int ret = vfm_save(d, VFM_PATH_RW, false, NULL, out);

	if (!ret)
		ret = vfm_reset(d);
	return ret;
}

/* One from -> to case; appends a reason to why on failure. */
static bool one_arc(struct vfm_vdev *d, uint32_t from, uint32_t to,
		    const struct vfm_buf *golden, char *why, size_t n)
{
	int fd_from = -1, fd_to = -1, ret;
	uint32_t st = 0;
	bool good = false;

	ret = vfm_reset(d);
	if (!ret)
		ret = vfm_set_state(d, from, &fd_from);
	if (ret) {
		snprintf(why, n, "reaching %s: %s", vfm_state_name(from),
			 strerror(-ret));
		goto out;
	}
	if (from == VFIO_DEVICE_STATE_RESUMING && to != from) {
		ret = vfm_write_all(fd_from, golden->p, golden->len, NULL,
				    NULL);
		if (ret) {
			snprintf(why, n, "writing a good stream: %s",
				 strerror(-ret));
			goto out;
		}
	}
	ret = vfm_set_state(d, to, &fd_to);
	if (vfm_get_state(d, &st)) {
		snprintf(why, n, "cannot read the state back");
		goto out;
	}
	if (!arc_valid(from, to)) {
		if (!ret)
			snprintf(why, n, "accepted (now %s)",
				 vfm_state_name(st));
		else if (st != from)
			snprintf(why, n, "refused, but the state moved to %s",
				 vfm_state_name(st));
		else
			good = true;
		goto out;
	}
	if (ret)
		snprintf(why, n, "refused: %s (state %s)", strerror(-ret),
			 vfm_state_name(st));
	else if (st != to)
		snprintf(why, n, "ended in %s", vfm_state_name(st));
	else if ((fd_to >= 0) != arc_gives_fd(from, to))
		snprintf(why, n, "%s a data fd",
			 fd_to >= 0 ? "returned" : "did not return");
	else
		good = true;
out:
	if (fd_from >= 0)
		close(fd_from);
	if (fd_to >= 0)
		close(fd_to);
	return good;
}

void vfm_t_fsm(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	struct vfm_buf golden = { 0 };
	char name[96], why[160], fails[1024], allowed[128] = "";
	size_t i, j;
	int ret;

	/* A small device keeps the 49 cases quick; it must accept its own
	 * stream (params memory=4). */
	vfm_ctx_close(c, 0);
	vfm_sysfs_read(c->bdf[0], VFM_SYS_ALLOWED_MEMORY, allowed,
		       sizeof(allowed));
	vfm_sysfs_write_u64(c->bdf[0], VFM_KNOB_MEM_SIZE, 4u << 20);
	vfm_sysfs_write(c->bdf[0], VFM_SYS_ALLOWED_MEMORY, "4,64");
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = golden_stream(d, &golden);
	if (ret) {
		vfm_fail("fsm/setup", "opening %s and saving its state: %s",
			 c->bdf[0], strerror(-ret));
		goto out;
	}
	for (i = 0; i < NSTATES; i++) {
		uint32_t from = all_states[i];

		fails[0] = '\0';
		for (j = 0; j < NSTATES; j++) {
			uint32_t to = all_states[j];

			why[0] = '\0';
			if (one_arc(d, from, to, &golden, why, sizeof(why)))
				continue;
			snprintf(fails + strlen(fails),
				 sizeof(fails) - strlen(fails), "%s%s: %s",
				 fails[0] ? "; " : "", vfm_state_name(to), why);
		}
		snprintf(name, sizeof(name), "fsm/from-%s",
			 vfm_state_name(from));
		vfm_expect(!fails[0], name, "%s", fails);
	}

	/* Requests that are refused whatever the current state. */
	fails[0] = '\0';
	for (i = 0; i < NSTATES; i++) {
		uint32_t from = all_states[i];
		uint32_t bad[] = { VFIO_DEVICE_STATE_ERROR, VFM_NUM_STATES,
				   99 };

		for (j = 0; j < 3; j++) {
			why[0] = '\0';
			if (one_arc(d, from, bad[j], &golden, why, sizeof(why)))
				continue;
			snprintf(fails + strlen(fails),
				 sizeof(fails) - strlen(fails), "%s%s->%u: %s",
				 fails[0] ? "; " : "", vfm_state_name(from),
				 bad[j], why);
		}
	}
	vfm_expect(!fails[0], "fsm/invalid-targets-refused", "%s", fails);
	vfm_reset(d);
out:
	vfm_buf_free(&golden);
	vfm_ctx_close(c, 0);
	vfm_sysfs_write_u64(c->bdf[0], VFM_KNOB_MEM_SIZE, 64u << 20);
	if (allowed[0])
		vfm_sysfs_write(c->bdf[0], VFM_SYS_ALLOWED_MEMORY, allowed);
	vfm_ctx_open(c, 0);
}

/* An arc forced to fail puts the device in ERROR; only a reset leaves it. */
void vfm_t_error(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	struct vfm_buf s = { 0 };
	char why[512] = "";
	uint32_t st = 0;
	size_t i;
	int ret, fd = -1;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_debugfs_write(c->bdf[0], VFM_DBG_FAIL_NEXT, "1");
	if (ret) {
		vfm_fail("error/enter", "arming %s: %s", VFM_DBG_FAIL_NEXT,
			 strerror(-ret));
		return;
	}
	ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	vfm_get_state(d, &st);
	if (!vfm_expect(ret && st == VFIO_DEVICE_STATE_ERROR, "error/enter",
			"failed arc: %s, state %s", strerror(-ret),
			vfm_state_name(st)))
		return;

	for (i = 0; i < NSTATES; i++) {
		ret = vfm_set_state(d, all_states[i], &fd);
		if (fd >= 0)
			close(fd);
		vfm_get_state(d, &st);
		if (!ret || st != VFIO_DEVICE_STATE_ERROR)
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
				 "%s->%s %s (state %s); ", "ERROR",
				 vfm_state_name(all_states[i]),
				 ret ? "refused" : "accepted",
				 vfm_state_name(st));
	}
	vfm_expect(!why[0], "error/every-arc-refused", "%s", why);

	ret = vfm_reset(d);
	vfm_get_state(d, &st);
	vfm_expect(!ret && st == VFIO_DEVICE_STATE_RUNNING,
		   "error/reset-to-running", "VFIO_DEVICE_RESET: %s, state %s",
		   strerror(-ret), vfm_state_name(st));
	ret = vfm_save(d, VFM_PATH_RW, true, NULL, &s);
	if (!ret)
		ret = vfm_goto(d, VFIO_DEVICE_STATE_RUNNING);
	vfm_expect(!ret && s.len > 0, "error/usable-after-reset",
		   "save after reset: %s", strerror(-ret));
	vfm_buf_free(&s);

	/* A reset also ends a saving session: its data fd is dead. */
	ret = vfm_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	if (ret || fd < 0) {
		vfm_fail("error/reset-disables-data-fd", "PRE_COPY: %s",
			 strerror(-ret));
		return;
	}
	ret = vfm_reset(d);
	{
		uint8_t b[64];
		ssize_t n = read(fd, b, sizeof(b));
		int err = n < 0 ? errno : 0;

		vfm_get_state(d, &st);
		vfm_expect(!ret && n < 0 && st == VFIO_DEVICE_STATE_RUNNING,
			   "error/reset-disables-data-fd",
			   "read after reset returned %zd (%s), state %s", n,
			   strerror(err), vfm_state_name(st));
	}
	close(fd);
}
