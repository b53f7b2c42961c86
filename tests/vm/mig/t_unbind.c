// SPDX-License-Identifier: GPL-2.0
/*
 * Teardown with a data fd open: closing the device, unbinding the PCI
 * function and unloading the module must neither crash nor leave the
 * device unusable; and everything works again after a rebind or reload.
 * Runs last: it unloads and reloads the module.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

#define UNBIND_WAIT_S 30

struct unbind_job {
	char path[PATH_MAX];
	char bdf[32];
	int ret;
	pthread_t thread;
};

static void *unbind_thread(void *arg)
{
	struct unbind_job *j = arg;

	j->ret = vfm_file_write(j->path, j->bdf);
	return NULL;
}

static int unbind_start(struct vfm_ctx *c, int i, struct unbind_job *j)
{
	snprintf(j->path, sizeof(j->path), "/sys/bus/pci/drivers/%s/unbind",
		 c->driver);
	snprintf(j->bdf, sizeof(j->bdf), "%s", c->bdf[i]);
	j->ret = -EINPROGRESS;
	return -pthread_create(&j->thread, NULL, unbind_thread, j);
}

/* 0: finished (j->ret holds the write's result); -ETIMEDOUT: still blocked. */
static int unbind_wait(struct unbind_job *j, double secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return -pthread_timedjoin_np(j->thread, NULL, &ts);
}

static bool bound(struct vfm_ctx *c, int i)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver",
		 c->bdf[i]);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return !strcmp(strrchr(link, '/') + 1, c->driver);
}

static int rebind(struct vfm_ctx *c, int i)
{
	if (bound(c, i))
		return 0;
	vfm_sysfs_write(c->bdf[i], "driver_override", c->driver);
	vfm_file_write("/sys/bus/pci/drivers_probe", c->bdf[i]);
	return bound(c, i) ? 0 : -ENODEV;
}

static bool module_loaded(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return !stat(path, &st);
}

static int rmmod(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static int insmod(const char *ko, const char *params)
{
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params ? params : "", 0) ? -errno :
								       0;
	close(fd);
	return ret;
}

/* read() and PRECOPY_INFO on a data fd whose device is gone: errors. */
static bool fd_dead(int fd, char *why, size_t n)
{
	uint64_t initial, dirty;
	uint8_t b[64];
	ssize_t r;
	int ret;

	r = read(fd, b, sizeof(b));
	if (r >= 0) {
		snprintf(why, n, "read returned %zd", r);
		return false;
	}
	ret = vfm_precopy_info(fd, &initial, &dirty);
	if (!ret) {
		snprintf(why, n, "PRECOPY_INFO succeeded");
		return false;
	}
	return true;
}

static bool migrate_ok(struct vfm_ctx *c, char *why, size_t n)
{
	char da[VFM_DIGEST_MAX], db[VFM_DIGEST_MAX];
	struct vfm_buf s = { 0 };
	int ret;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 99);
	if (!ret)
		ret = vfm_save(&c->dev[0], VFM_PATH_MMAP, true, NULL, &s);
	if (!ret)
		ret = vfm_restore(&c->dev[1], VFM_PATH_RW, s.p, s.len, NULL);
	if (!ret)
		ret = vfm_digest(c->bdf[0], da, sizeof(da));
	if (!ret)
		ret = vfm_digest(c->bdf[1], db, sizeof(db));
	vfm_buf_free(&s);
	vfm_reset(&c->dev[0]);
	vfm_reset(&c->dev[1]);
	if (ret)
		snprintf(why, n, "migration A -> B: %s", strerror(-ret));
	else if (strcmp(da, db))
		snprintf(why, n, "digests differ after A -> B");
	return !ret && !strcmp(da, db);
}

void vfm_t_unbind(struct vfm_ctx *c)
{
	struct unbind_job job;
	char why[256] = "";
	int ret, fa = -1;

	/* 1. rmmod while a device and its data fd are open: refused. */
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_set_state(&c->dev[0], VFIO_DEVICE_STATE_PRE_COPY,
				    &fa);
	if (ret || fa < 0) {
		vfm_fail("unbind/setup", "PRE_COPY on A: %s", strerror(-ret));
		return;
	}
	ret = rmmod(c->module);
	vfm_expect(ret && module_loaded(c->module),
		   "unbind/rmmod-refused-while-open", "rmmod %s: %s", c->module,
		   ret ? strerror(-ret) : "succeeded");

	/* 2. The device closes under its data fd: the fd is dead, not broken. */
	vfm_ctx_close(c, 0);
	vfm_expect(fd_dead(fa, why, sizeof(why)),
		   "unbind/data-fd-dead-after-device-close", "%s", why);

	/* 3. The data fd alone still pins the module. */
	ret = rmmod(c->module);
	vfm_expect(ret && module_loaded(c->module),
		   "unbind/rmmod-refused-with-data-fd", "rmmod %s: %s",
		   c->module, ret ? strerror(-ret) : "succeeded");

	/* 4. Unbind with the data fd open: completes, the fd stays dead. */
	ret = unbind_start(c, 0, &job);
	if (!ret)
		ret = unbind_wait(&job, UNBIND_WAIT_S);
	if (ret) {
		vfm_fail("unbind/unbind-with-data-fd",
			 "unbind of %s did not finish in %d s: %s", c->bdf[0],
			 UNBIND_WAIT_S, strerror(-ret));
		return; /* the driver is stuck: nothing below can work */
	}
	why[0] = '\0';
	vfm_expect(!job.ret && !bound(c, 0) && fd_dead(fa, why, sizeof(why)),
		   "unbind/unbind-with-data-fd", "unbind: %s; %s",
		   strerror(-job.ret), why);
	close(fa);
	fa = -1;

	/* 5. Rebind and reopen. */
	why[0] = '\0';
	ret = rebind(c, 0);
	vfm_expect(!ret && migrate_ok(c, why, sizeof(why)),
		   "unbind/rebind-and-migrate", "rebind: %s; %s",
		   strerror(-ret), why);

	/* 6. Unbind while the device itself is open: waits for the close. */
	ret = vfm_ctx_open(c, 0);
	if (!ret)
		ret = unbind_start(c, 0, &job);
	if (ret) {
		vfm_fail("unbind/unbind-waits-for-close", "setup: %s",
			 strerror(-ret));
	} else {
		int early = unbind_wait(&job, 2);

		vfm_ctx_close(c, 0);
		ret = early ? unbind_wait(&job, UNBIND_WAIT_S) : 0;
		if (ret) {
			vfm_fail("unbind/unbind-waits-for-close",
				 "unbind did not finish %d s after the close",
				 UNBIND_WAIT_S);
			return;
		}
		vfm_expect(early == -ETIMEDOUT && !job.ret && !bound(c, 0),
			   "unbind/unbind-waits-for-close",
			   "unbind %s while the device was open (%s)",
			   early ? "waited" : "did not wait",
			   strerror(-job.ret));
	}
	ret = rebind(c, 0);
	if (ret) {
		vfm_fail("unbind/rebind", "%s does not bind again", c->bdf[0]);
		return;
	}

	/* 7. rmmod once everything is closed, reload, migrate again. */
	vfm_ctx_close(c, 0);
	vfm_ctx_close(c, 1);
	ret = rmmod(c->module);
	vfm_expect(!ret && !module_loaded(c->module), "unbind/rmmod-when-idle",
		   "rmmod %s: %s", c->module, strerror(-ret));
	if (!c->ko) {
		vfm_skip("unbind/reload-and-migrate",
			 "no module file given (--ko)");
		return;
	}
	/* a buf_size whose page rounding would wrap a u32: refused at load */
	if (!module_loaded(c->module)) {
		ret = insmod(c->ko, "buf_size=4294963201");
		if (!ret)
			rmmod(c->module);
		vfm_expect(ret == -EINVAL, "unbind/bad-buf-size-refused",
			   "insmod buf_size=4294963201: %s",
			   ret ? strerror(-ret) : "loaded");
	}
	ret = module_loaded(c->module) ? 0 : insmod(c->ko, c->ko_params);
	if (!ret)
		ret = rebind(c, 0);
	if (!ret)
		ret = rebind(c, 1);
	why[0] = '\0';
	vfm_expect(!ret && migrate_ok(c, why, sizeof(why)),
		   "unbind/reload-and-migrate", "insmod %s and rebind: %s; %s",
		   c->ko, strerror(-ret), why);
}
