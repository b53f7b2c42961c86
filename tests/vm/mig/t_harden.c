// SPDX-License-Identifier: GPL-2.0
/*
 * What makes the driver safe on a shared host: no data from one user of
 * the device to the next (clear) but the digest a stopped device's close
 * keeps (closed), root-only and interruptible sysfs (knobs), the uAPI
 * details (details) and bounded, accounted kernel memory (memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"
#include "stream.h"
#include "sysfs.h"
#include "tests.h"

#define PAGE 4096u

/* CRC32C (Castagnoli, reflected), as the stream format defines it. */
static uint32_t crc32c(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t crc = ~0u;
	int k;

	while (n--) {
		crc ^= *b++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void hdr_reseal(struct vfmig_stream_hdr *h)
{
	h->hdr_crc = crc32c(h, offsetof(struct vfmig_stream_hdr, hdr_crc));
}

/* Is device i's memory all zeros (read back through the region)? */
static int mem_is_zero(struct vfm_ctx *c, int i, bool *zero)
{
	struct vfm_vdev *d = &c->dev[i];
	static uint8_t buf[1 << 20];
	uint64_t off;
	size_t k;
	int ret;

	*zero = true;
	for (off = 0; off < d->mem_size; off += sizeof(buf)) {
		ret = vfm_mem_read(d, off, buf, sizeof(buf));
		if (ret)
			return ret;
		for (k = 0; k < sizeof(buf); k++)
			if (buf[k]) {
				*zero = false;
				return 0;
			}
	}
	return 0;
}

static long stat_of(const char *bdf, const char *key)
{
	char buf[512], *p;

	if (vfm_sysfs_read(bdf, "vfmig/stats", buf, sizeof(buf)))
		return -1;
	p = strstr(buf, key);
	return p ? strtol(p + strlen(key) + 1, NULL, 10) : -1;
}

/* Item 2: reset and close leave nothing of the last user. */
void vfm_t_clear(struct vfm_ctx *c)
{
	char da[VFM_DIGEST_MAX], db[VFM_DIGEST_MAX];
	bool zero = false;
	int ret;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 21);
	if (!ret)
		ret = vfm_reset(&c->dev[0]);
	if (!ret)
		ret = mem_is_zero(c, 0, &zero);
	vfm_expect(!ret && zero && stat_of(c->bdf[0], "resident_pages") == 0,
		   "clear/reset",
		   "after VFIO_DEVICE_RESET: %s, memory %s, %ld pages resident",
		   strerror(-ret), zero ? "zero" : "NOT zero",
		   stat_of(c->bdf[0], "resident_pages"));

	ret = vfm_ctx_scribble(c, 0, 22);
	vfm_ctx_close(c, 0);
	if (!ret)
		ret = stat_of(c->bdf[0], "resident_pages") == 0 ? 0 : -EEXIST;
	if (!ret)
		ret = vfm_digest(c->bdf[0], da, sizeof(da));
	if (!ret)
		ret = vfm_ctx_open(c, 0);
	if (!ret)
		ret = mem_is_zero(c, 0, &zero);
	if (!ret)
		ret = vfm_digest(c->bdf[0], db, sizeof(db));
	vfm_expect(!ret && zero, "clear/close",
		   "after close and reopen: %s, memory %s", strerror(-ret),
		   zero ? "zero" : "NOT zero");
	/* what a closed device reports is what the next user finds */
	vfm_expect(!ret && !strcmp(da, db), "clear/closed-digest",
		   "digest closed %.16s, reopened %.16s", da, db);

	/* register block too: two reset devices have the same state */
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_digest(c->bdf[0], da, sizeof(da));
	if (!ret)
		ret = vfm_digest(c->bdf[1], db, sizeof(db));
	vfm_expect(!ret && !strcmp(da, db), "clear/registers",
		   "digests of two reset devices: %s, A %.16s B %.16s",
		   strerror(-ret), da, db);
}

static int closed_digest(const char *bdf, char *buf, size_t len)
{
	return vfm_sysfs_read(bdf, VFM_SYS_CLOSED_DIGEST, buf, len);
}

/*
 * migration/closed_digest: closing a device its user left stopped (STOP,
 * STOP_COPY) keeps the digest of what it held, which is also what its
 * state_digest read while stopped; a reopen keeps it; closing in RUNNING
 * forgets it (an empty line).
 */
void vfm_t_closed(struct vfm_ctx *c)
{
	char fresh[VFM_DIGEST_MAX] = "", held[VFM_DIGEST_MAX] = "";
	char held2[VFM_DIGEST_MAX] = "", kept[VFM_DIGEST_MAX] = "";
	int ret, fd = -1;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_digest(c->bdf[0], fresh, sizeof(fresh));
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 31);
	if (!ret)
		ret = vfm_goto(&c->dev[0], VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_digest(c->bdf[0], held, sizeof(held));
	vfm_ctx_close(c, 0);
	if (!ret)
		ret = closed_digest(c->bdf[0], kept, sizeof(kept));
	vfm_expect(!ret && kept[0] && !strcmp(kept, held) &&
			   strcmp(held, fresh),
		   "closed/stop",
		   "%s; closed_digest '%.16s', in STOP %.16s, fresh %.16s",
		   strerror(-ret), kept, held, fresh);

	ret = vfm_ctx_open(c, 0);
	if (!ret)
		ret = closed_digest(c->bdf[0], kept, sizeof(kept));
	vfm_expect(!ret && !strcmp(kept, held), "closed/kept-while-open",
		   "%s; closed_digest '%.16s' after reopen, was %.16s",
		   strerror(-ret), kept, held);

	/* closed in STOP_COPY with its data fd still open */
	if (!ret)
		ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 32);
	if (!ret)
		ret = vfm_set_state(&c->dev[0], VFIO_DEVICE_STATE_STOP_COPY,
				    &fd);
	if (!ret)
		ret = vfm_digest(c->bdf[0], held2, sizeof(held2));
	vfm_ctx_close(c, 0);
	if (fd >= 0)
		close(fd);
	if (!ret)
		ret = closed_digest(c->bdf[0], kept, sizeof(kept));
	vfm_expect(!ret && kept[0] && !strcmp(kept, held2) &&
			   strcmp(held2, held) && strcmp(held2, fresh),
		   "closed/stop-copy",
		   "%s; closed_digest '%.16s', in STOP_COPY %.16s, "
		   "first %.16s, fresh %.16s",
		   strerror(-ret), kept, held2, held, fresh);

	/* closed RUNNING: that state went nowhere, nothing is kept */
	ret = vfm_ctx_open(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 33);
	vfm_ctx_close(c, 0);
	if (!ret)
		ret = closed_digest(c->bdf[0], kept, sizeof(kept));
	vfm_expect(!ret && !kept[0], "closed/running-clears",
		   "%s; closed_digest '%.16s' after a close in RUNNING",
		   strerror(-ret), kept);
	ret = vfm_ctx_open(c, 0);
	if (ret)
		vfm_fail("closed/reopen", "%s", strerror(-ret));
}

/* 0 when a uid-65534 process gets EACCES opening every path. */
static int unprivileged_denied(const char *bdf, const char *const *rel,
			       char *why, size_t n)
{
	pid_t pid;
	int st, i;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(100);
		for (i = 0; rel[i]; i++) {
			char path[512];
			int fd;

			snprintf(path, sizeof(path),
				 "/sys/bus/pci/devices/%s/%s", bdf, rel[i]);
			fd = open(path, O_RDONLY);
			if (fd >= 0 || errno != EACCES)
				_exit(1 + i);
		}
		_exit(0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 0;
	snprintf(why, n, "%s readable by uid 65534 (status %d)",
		 WIFEXITED(st) && WEXITSTATUS(st) < 100 ?
			 rel[WEXITSTATUS(st) - 1] :
			 "setuid",
		 st);
	return -EPERM;
}

/* A child reading state_digest; returns its pid. */
static pid_t digest_reader(const char *bdf)
{
	pid_t pid = fork();

	if (!pid) {
		char buf[VFM_DIGEST_MAX];

		_exit(vfm_digest(bdf, buf, sizeof(buf)) ? 1 : 0);
	}
	return pid;
}

static int set_mem_closed(struct vfm_ctx *c, int i, uint64_t mib)
{
	int ret;

	vfm_ctx_close(c, i);
	ret = vfm_sysfs_write_u64(c->bdf[i], VFM_KNOB_MEM_SIZE, mib << 20);
	if (!ret)
		ret = vfm_ctx_open(c, i);
	return ret;
}

/* Item 4: root-only files, fault injection in debugfs, a digest that yields. */
void vfm_t_knobs(struct vfm_ctx *c)
{
	static const char *const priv[] = { VFM_SYS_DIGEST,
					    VFM_SYS_CLOSED_DIGEST,
					    "vfmig/stats", NULL };
	char why[256] = "", path[512];
	double t0, kill_s = -1, state_s = -1;
	struct stat st;
	uint32_t state;
	pid_t pid;
	int ret, status;

	ret = unprivileged_denied(c->bdf[0], priv, why, sizeof(why));
	vfm_expect(!ret, "knobs/root-only", "%s",
		   why[0] ? why : strerror(-ret));

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfmig/fail_next",
		 c->bdf[0]);
	ret = vfm_debugfs_write(c->bdf[0], VFM_DBG_FAIL_NEXT, "0");
	vfm_expect(stat(path, &st) && !ret, "knobs/fail-next-in-debugfs",
		   "sysfs fail_next %s, debugfs write: %s",
		   stat(path, &st) ? "absent" : "present", strerror(-ret));

	/* 1 GiB of (absent) memory: a whole hash takes many seconds */
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = set_mem_closed(c, 0, 1024);
	if (ret) {
		vfm_fail("knobs/digest-killable", "resize A to 1 GiB: %s",
			 strerror(-ret));
		return;
	}
	/* a reader killed mid-hash goes at once */
	pid = digest_reader(c->bdf[0]);
	if (pid > 0) {
		vfm_sleep_ms(500);
		t0 = vfm_now();
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		kill_s = vfm_now() - t0;
	}
	vfm_expect(pid > 0 && kill_s >= 0 && kill_s < 3.0,
		   "knobs/digest-killable",
		   "a reader killed during a 1 GiB digest exited after %.2f s",
		   kill_s);
	/* and while one hashes, state_mutex is free */
	pid = digest_reader(c->bdf[0]);
	if (pid > 0) {
		vfm_sleep_ms(500);
		t0 = vfm_now();
		ret = vfm_get_state(&c->dev[0], &state);
		state_s = vfm_now() - t0;
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	vfm_expect(pid > 0 && !ret && state_s < 2.0,
		   "knobs/digest-no-state-mutex",
		   "GET_STATE during a digest took %.2f s (%s)", state_s,
		   strerror(-ret));
	vfm_measure("knobs/digest-kill-latency", kill_s, "s");
	vfm_measure("knobs/get-state-during-digest", state_s, "s");
	ret = set_mem_closed(c, 0, 64);
	if (ret)
		vfm_fail("knobs/restore", "resize A to 64 MiB: %s",
			 strerror(-ret));
}

/* The first bytes of device i's stream (its header); i left in RUNNING. */
static int stream_header(struct vfm_ctx *c, int i, struct vfmig_stream_hdr *h)
{
	int ret, fd = -1;
	ssize_t n;

	ret = vfm_ctx_fresh(c, i);
	if (!ret)
		ret = vfm_set_state(&c->dev[i], VFIO_DEVICE_STATE_PRE_COPY,
				    &fd);
	if (ret)
		return ret;
	n = read(fd, h, sizeof(*h));
	ret = n == (ssize_t)sizeof(*h) ? 0 : n < 0 ? -errno : -EIO;
	close(fd);
	vfm_goto(&c->dev[i], VFIO_DEVICE_STATE_RUNNING);
	return ret;
}

/* B: STOP -> RESUMING; the data fd. */
static int resuming(struct vfm_ctx *c, int *fd)
{
	int ret = vfm_ctx_fresh(c, 1);

	if (!ret)
		ret = vfm_goto(&c->dev[1], VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(&c->dev[1], VFIO_DEVICE_STATE_RESUMING, fd);
	return ret;
}

/* Lines of the kernel log after the marker holding needle. */
static int klog_count(const char *marker, const char *needle, int *count)
{
	int size = klogctl(10, NULL, 0), n;
	char *buf, *p;

	if (size < 4096)
		size = 1 << 20;
	buf = malloc((size_t)size + 1);
	if (!buf)
		return -ENOMEM;
	n = klogctl(3, buf, size);
	if (n < 0) {
		free(buf);
		return -errno;
	}
	buf[n] = '\0';
	p = strstr(buf, marker);
	*count = 0;
	while (p && (p = strstr(p, needle))) {
		(*count)++;
		p += strlen(needle);
	}
	free(buf);
	return 0;
}

static void details_warnings(struct vfm_ctx *c)
{
	struct vfmig_stream_hdr h;
	char marker[64];
	int ret, i, fd, refused = 0, lines = -1, taint = -1;

	ret = stream_header(c, 0, &h);
	if (ret) {
		vfm_fail("details/warnings", "header of A: %s", strerror(-ret));
		return;
	}
	snprintf(h.model, sizeof(h.model), "VFMTAINT\x1b[2J");
	hdr_reseal(&h);
	snprintf(marker, sizeof(marker), "vfm-warn-mark-%d", (int)getpid());
	vfm_file_write("/dev/kmsg", marker);
	for (i = 0; i < 40; i++) {
		ret = resuming(c, &fd);
		if (ret)
			break;
		if (write(fd, &h, sizeof(h)) < 0 && errno == EINVAL)
			refused++;
		close(fd);
	}
	vfm_reset(&c->dev[1]);
	if (!ret)
		ret = klog_count(marker, "is not this device's model", &lines);
	if (!ret)
		ret = klog_count(marker, "VFMTAINT", &taint);
	vfm_expect(
		!ret && refused == 40 && lines >= 1 && lines <= 30 && !taint,
		"details/warnings",
		"%d of 40 headers refused, %d warning lines, %d with stream bytes (%s)",
		refused, lines, taint, strerror(-ret));
}

/* Item 6. */
void vfm_t_details(struct vfm_ctx *c)
{
	struct vfm_vdev *a = &c->dev[0], *b = &c->dev[1];
	char da[VFM_DIGEST_MAX], db0[VFM_DIGEST_MAX], db[VFM_DIGEST_MAX];
	struct vfio_precopy_info pi = { .argsz = sizeof(pi) };
	struct vfm_buf s = { 0 };
	uint8_t page[PAGE], tail[64];
	struct pollfd pfd;
	uint64_t got = 0;
	uint32_t st = 0;
	bool eof = false;
	int ret, fd = -1, r1, e1 = 0;
	ssize_t n;

	/* no DATA record after END, whatever is written after it */
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_goto(a, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (!ret)
		ret = vfm_read_until(fd, NULL, NULL, 0, &eof, &got);
	memset(page, 0x5a, sizeof(page));
	if (!ret)
		ret = vfm_mem_write(a, 0, page, sizeof(page));
	n = fd >= 0 ? read(fd, tail, sizeof(tail)) : -1;
	vfm_expect(
		!ret && eof && n == 0, "details/nothing-after-end",
		"stream %llu bytes, eof %d, then a page written: read %zd (%s)",
		(unsigned long long)got, eof, n, strerror(-ret));
	if (fd >= 0)
		close(fd);
	fd = -1;

	/* PRECOPY_INFO outside PRE_COPY*: EINVAL, on every data fd */
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_set_state(a, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	r1 = poll(&pfd, 1, 0);
	vfm_expect(!ret && r1 == 1 && (pfd.revents & POLLIN) &&
			   !(pfd.revents & (POLLOUT | POLLERR)),
		   "details/poll-saving", "poll: %d, revents %#x", r1,
		   pfd.revents);
	if (!ret)
		ret = vfm_goto(a, VFIO_DEVICE_STATE_RUNNING);
	r1 = ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &pi);
	e1 = errno;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	poll(&pfd, 1, 0);
	vfm_expect(!ret && r1 < 0 && e1 == EINVAL,
		   "details/precopy-info-after-precopy",
		   "PRE_COPY -> RUNNING, then PRECOPY_INFO: %d (%s)", r1,
		   strerror(e1));
	vfm_expect((pfd.revents & (POLLERR | POLLHUP)) &&
			   !(pfd.revents & POLLIN),
		   "details/poll-disabled", "revents %#x", pfd.revents);
	if (fd >= 0)
		close(fd);
	fd = -1;
	ret = resuming(c, &fd);
	r1 = ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &pi);
	e1 = errno;
	vfm_expect(!ret && r1 < 0 && e1 == EINVAL,
		   "details/precopy-info-resuming", "PRECOPY_INFO: %d (%s)", r1,
		   strerror(e1));
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	r1 = poll(&pfd, 1, 0);
	vfm_expect(r1 == 1 && (pfd.revents & POLLOUT) &&
			   !(pfd.revents & POLLIN),
		   "details/poll-resuming", "poll: %d, revents %#x", r1,
		   pfd.revents);
	if (fd >= 0)
		close(fd);
	fd = -1;

	/* RESUMING -> STOP that cannot reserve memory leaves the old state */
	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_ctx_scribble(c, 0, 31);
	if (!ret)
		ret = vfm_save(a, VFM_PATH_RW, false, NULL, &s);
	if (!ret)
		ret = vfm_digest(c->bdf[0], da, sizeof(da));
	/* B's old state: its own pages, written before RESUMING */
	if (!ret)
		ret = vfm_ctx_fresh(c, 1);
	if (!ret)
		ret = vfm_ctx_scribble(c, 1, 32);
	if (!ret)
		ret = vfm_digest(c->bdf[1], db0, sizeof(db0));
	if (!ret)
		ret = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (!ret)
		ret = vfm_write_all(fd, s.p, s.len, NULL, NULL);
	if (!ret)
		ret = vfm_debugfs_write(c->bdf[1], VFM_DBG_FAIL_RESERVE, "1");
	if (ret) {
		vfm_fail("details/commit-all-or-nothing", "setup: %s",
			 strerror(-ret));
		goto out;
	}
	r1 = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	vfm_get_state(b, &st);
	ret = vfm_digest(c->bdf[1], db, sizeof(db));
	vfm_expect(
		r1 == -ENOMEM && st == VFIO_DEVICE_STATE_RESUMING && !ret &&
			!strcmp(db, db0),
		"details/commit-all-or-nothing",
		"failed reservation: RESUMING->STOP %s, state %s, B's state %s",
		strerror(-r1), vfm_state_name(st),
		strcmp(db, db0) ? "CHANGED" : "kept");
	r1 = vfm_goto(b, VFIO_DEVICE_STATE_STOP);
	ret = vfm_digest(c->bdf[1], db, sizeof(db));
	vfm_expect(!r1 && !ret && !strcmp(db, da), "details/commit-retry",
		   "RESUMING->STOP again: %s, B %s A", strerror(-r1),
		   strcmp(db, da) ? "!=" : "==");
out:
	if (fd >= 0)
		close(fd);
	vfm_buf_free(&s);
	vfm_reset(a);
	vfm_reset(b);
	details_warnings(c);
}

static long meminfo_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

static void memory_lazy_buffer(struct vfm_ctx *c)
{
	struct vfmig_buf_info bi = { .argsz = sizeof(bi) };
	long v0, v1, v2, v3;
	int ret, fd = -1;

	ret = vfm_ctx_fresh(c, 0);
	v0 = meminfo_kb("VmallocUsed:");
	if (!ret)
		ret = vfm_set_state(&c->dev[0], VFIO_DEVICE_STATE_PRE_COPY,
				    &fd);
	v1 = meminfo_kb("VmallocUsed:");
	if (!ret && ioctl(fd, VFMIG_BUF_INFO, &bi))
		ret = -errno;
	v2 = meminfo_kb("VmallocUsed:");
	if (!ret)
		ret = vfm_goto(&c->dev[0], VFIO_DEVICE_STATE_RUNNING);
	v3 = meminfo_kb("VmallocUsed:");
	vfm_expect(
		!ret && v1 - v0 < (long)(bi.size / 2048) &&
			v2 - v1 >= (long)(bi.size / 1024) * 7 / 8 &&
			v2 - v3 >= (long)(bi.size / 1024) * 7 / 8,
		"memory/lazy-buffer",
		"VmallocUsed kB: +%ld at PRE_COPY, +%ld at BUF_INFO (%llu B), -%ld when disabled (%s)",
		v1 - v0, v2 - v1, (unsigned long long)bi.size, v2 - v3,
		strerror(-ret));
	if (fd >= 0)
		close(fd);
}

static void memory_seg_cap(struct vfm_ctx *c)
{
	struct vfmig_seg sg;
	int ret, fd = -1, i, err = 0;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = vfm_set_state(&c->dev[0], VFIO_DEVICE_STATE_PRE_COPY,
				    &fd);
	for (i = 0; !ret && i < 4096; i++) {
		sg = (struct vfmig_seg){ .argsz = sizeof(sg), .length = 1 };
		if (ioctl(fd, VFMIG_SAVE_NEXT, &sg)) {
			err = errno;
			break;
		}
	}
	vfm_expect(!ret && err == ENOBUFS && i == 1024, "memory/segment-cap",
		   "SAVE_NEXT of 1 byte: %d segments, then %s", i,
		   strerror(err));
	if (fd >= 0)
		close(fd);
	vfm_reset(&c->dev[0]);
}

static void memory_resume_cap(struct vfm_ctx *c)
{
	struct vfmig_stream_hdr h;
	char old[128] = "";
	int ret, fd = -1;
	ssize_t n = 0;
	int err = 0;

	ret = stream_header(c, 0, &h);
	vfm_ctx_close(c, 1);
	if (!ret)
		ret = vfm_sysfs_read(c->bdf[1], VFM_SYS_ALLOWED_MEMORY, old,
				     sizeof(old));
	if (!ret)
		ret = vfm_sysfs_write(c->bdf[1], VFM_SYS_ALLOWED_MEMORY, "1-");
	if (!ret)
		ret = vfm_ctx_open(c, 1);
	h.mem_size = (uint64_t)8192 << 20;
	memset(h.params, 0, sizeof(h.params));
	snprintf(h.params, sizeof(h.params), "memory=8192\n");
	hdr_reseal(&h);
	if (!ret)
		ret = resuming(c, &fd);
	if (!ret) {
		n = write(fd, &h, sizeof(h));
		err = n < 0 ? errno : 0;
	}
	vfm_expect(!ret && n < 0 && err == EINVAL, "memory/resume-cap",
		   "allowed/memory 1-, an 8 GiB stream header: write %zd (%s)",
		   n, strerror(err ? err : -ret));
	if (fd >= 0)
		close(fd);
	vfm_ctx_close(c, 1);
	if (old[0])
		vfm_sysfs_write(c->bdf[1], VFM_SYS_ALLOWED_MEMORY, old);
	/* nor can a device be given more than max_mem_mib */
	ret = vfm_sysfs_write(c->bdf[1], "migration/params/memory", "8192");
	if (!ret)
		vfm_sysfs_write(c->bdf[1], "migration/params/memory", "64");
	vfm_expect(ret == -EINVAL, "memory/size-cap",
		   "params/memory 8192 (max_mem_mib 4096): %s",
		   ret ? strerror(-ret) : "accepted");
	vfm_ctx_open(c, 1);
}

/* cgroup v2 at /sys/fs/cgroup with the memory controller, or an error. */
static int memcg_dir(char *dir, size_t n)
{
	struct stat st;

	if (stat("/sys/fs/cgroup/cgroup.controllers", &st) &&
	    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL))
		return -errno;
	vfm_file_write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	snprintf(dir, n, "/sys/fs/cgroup/vfm-acct-%d", (int)getpid());
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static long file_long(const char *dir, const char *name)
{
	char path[512], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtol(buf, NULL, 10);
}

/* Pages written through the region are charged to the writer's cgroup. */
static void memory_accounted(struct vfm_ctx *c)
{
	const unsigned int pages = 4096; /* 16 MiB */
	char dir[256], path[300];
	long before, after;
	int ret, status;
	pid_t pid;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = memcg_dir(dir, sizeof(dir));
	if (ret) {
		vfm_fail("memory/accounted", "memory cgroup: %s",
			 strerror(-ret));
		return;
	}
	before = file_long(dir, "memory.current");
	pid = fork();
	if (!pid) {
		uint8_t page[PAGE];
		char me[32];
		unsigned int i;

		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		snprintf(me, sizeof(me), "%d", (int)getpid());
		if (vfm_file_write(path, me))
			_exit(2);
		memset(page, 0xa5, sizeof(page));
		for (i = 0; i < pages; i++)
			if (vfm_mem_write(&c->dev[0], (uint64_t)i * PAGE, page,
					  PAGE))
				_exit(3);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	after = file_long(dir, "memory.current");
	vfm_expect(
		WIFEXITED(status) && !WEXITSTATUS(status) &&
			after - before >= (long)pages * PAGE * 7 / 8,
		"memory/accounted",
		"16 MiB written from a cgroup: memory.current %ld -> %ld (writer status %d)",
		before, after, status);
	vfm_reset(&c->dev[0]);
	rmdir(dir);
}

/* Item 1. */
void vfm_t_memory(struct vfm_ctx *c)
{
	memory_lazy_buffer(c);
	memory_seg_cap(c);
	memory_resume_cap(c);
	memory_accounted(c);
}

/* BAR0 register access through the device fd (VFIO region 0). */
static int bar0_rw(struct vfm_vdev *d, uint64_t reg, uint64_t *val, bool write)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri),
				       .index = VFIO_PCI_BAR0_REGION_INDEX };
	ssize_t n;

	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -errno;
	n = write ? pwrite(d->fd, val, 8, (off_t)(ri.offset + reg)) :
		    pread(d->fd, val, 8, (off_t)(ri.offset + reg));
	return n == 8 ? 0 : n < 0 ? -errno : -EIO;
}

/*
 * Item 5: STOP quiesces the function. edu runs a DMA for 100 ms; stopped
 * right after the start, the DMA must be over when STOP returns. (Bus
 * mastering is off: edu's DMA moves nothing, but runs its course.)
 */
void vfm_t_quiesce(struct vfm_ctx *c)
{
	struct vfm_vdev *d = &c->dev[0];
	uint64_t src = 0x10000, dst = 0x40000, cnt = 64, cmd = 1, now = 0;
	double t0, dt = -1;
	int ret;

	ret = vfm_ctx_fresh(c, 0);
	if (!ret)
		ret = bar0_rw(d, 0x80, &src, true);
	if (!ret)
		ret = bar0_rw(d, 0x88, &dst, true);
	if (!ret)
		ret = bar0_rw(d, 0x90, &cnt, true);
	t0 = vfm_now();
	if (!ret)
		ret = bar0_rw(d, 0x98, &cmd, true);
	if (!ret)
		ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	dt = vfm_now() - t0;
	if (!ret)
		ret = bar0_rw(d, 0x98, &now, false);
	vfm_expect(
		!ret && !(now & 1), "quiesce/dma-done-at-stop",
		"DMA started, STOP %.0f ms later: command register %#llx (%s)",
		dt * 1e3, (unsigned long long)now, strerror(-ret));
	vfm_reset(d);
}
