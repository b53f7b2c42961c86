// SPDX-License-Identifier: GPL-2.0
/*
 * vfmig_smoke: a quick guest check of vfmig_stub.ko through the VFIO uAPI.
 *
 *   vfmig_smoke GROUP_A BDF_A GROUP_B BDF_B
 *
 * Saves device A with PRE_COPY + STOP_COPY through read(), restores it into
 * device B through write() in odd segment sizes, compares state_digest;
 * repeats through the mmap buffer; feeds a corrupted and an incompatible
 * stream and checks that they are refused. Prints "ok"/"not ok" lines and
 * exits 0 when all pass, 1 on a failure, 77 when VFIO is not usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "../include/uapi/vfmig.h"

struct dev {
	const char *bdf;
	int group;
	int fd;
	uint64_t mem_off;	/* file offset of the device-memory region */
	uint64_t mem_size;
	uint64_t bar0_off;
};

static int failures;

__attribute__((format(printf, 2, 3)))
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf(ok ? "ok - " : "not ok - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

static void die(const char *what)
{
	fprintf(stderr, "vfmig_smoke: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int sysfs_read(const char *bdf, const char *name, char *buf, size_t n)
{
	char path[256];
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	if (r && buf[r - 1] == '\n')
		buf[r - 1] = 0;
	return 0;
}

static int sysfs_write(const char *bdf, const char *name, const char *val)
{
	char path[256];
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	r = write(fd, val, strlen(val));
	close(fd);
	return r < 0 ? -errno : 0;
}

static void digest(struct dev *d, char *out)
{
	if (sysfs_read(d->bdf, "migration/state_digest", out, 80))
		die("read state_digest");
}

static int set_state(struct dev *d, uint32_t state, int *data_fd)
{
	uint8_t buf[sizeof(struct vfio_device_feature) +
		    sizeof(struct vfio_device_feature_mig_state)] = {};
	struct vfio_device_feature *f = (void *)buf;
	struct vfio_device_feature_mig_state *ms = (void *)f->data;

	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
	ms->device_state = state;
	ms->data_fd = -1;
	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	if (data_fd)
		*data_fd = ms->data_fd;
	else if (ms->data_fd >= 0)
		close(ms->data_fd);
	return 0;
}

static uint32_t get_state(struct dev *d)
{
	uint8_t buf[sizeof(struct vfio_device_feature) +
		    sizeof(struct vfio_device_feature_mig_state)] = {};
	struct vfio_device_feature *f = (void *)buf;
	struct vfio_device_feature_mig_state *ms = (void *)f->data;

	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, f))
		return 99;
	return ms->device_state;
}

static void find_regions(struct dev *d)
{
	uint32_t i;
	struct vfio_device_info di = { .argsz = sizeof(di) };

	if (ioctl(d->fd, VFIO_DEVICE_GET_INFO, &di))
		die("VFIO_DEVICE_GET_INFO");
	for (i = 0; i < di.num_regions; i++) {
		char buf[4096];
		struct vfio_region_info *ri = (void *)buf;
		struct vfio_info_cap_header *h;

		memset(buf, 0, sizeof(buf));
		ri->argsz = sizeof(buf);
		ri->index = i;
		if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, ri))
			continue;
		if (i == VFIO_PCI_BAR0_REGION_INDEX)
			d->bar0_off = ri->offset;
		if (!(ri->flags & VFIO_REGION_INFO_FLAG_CAPS) || !ri->cap_offset)
			continue;
		for (h = (void *)(buf + ri->cap_offset);;
		     h = (void *)(buf + h->next)) {
			struct vfio_region_info_cap_type *t = (void *)h;

			if (h->id == VFIO_REGION_INFO_CAP_TYPE &&
			    t->type == VFMIG_REGION_TYPE &&
			    t->subtype == VFMIG_REGION_SUBTYPE_MEM) {
				d->mem_off = ri->offset;
				d->mem_size = ri->size;
			}
			if (!h->next)
				break;
		}
	}
}

static void open_dev(int container, struct dev *d, const char *group)
{
	char path[64];
	struct vfio_group_status st = { .argsz = sizeof(st) };

	snprintf(path, sizeof(path), "/dev/vfio/%s", group);
	d->group = open(path, O_RDWR);
	if (d->group < 0)
		die(path);
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &st) ||
	    !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		die("group not viable");
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &container))
		die("VFIO_GROUP_SET_CONTAINER");
}

static void get_dev(struct dev *d)
{
	d->fd = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, d->bdf);
	if (d->fd < 0)
		die("VFIO_GROUP_GET_DEVICE_FD");
	find_regions(d);
}

static int precopy_info(int fd, uint64_t *init, uint64_t *dirty)
{
	struct vfio_precopy_info pi = { .argsz = sizeof(pi) };

	if (ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &pi))
		return -errno;
	*init = pi.initial_bytes;
	*dirty = pi.dirty_bytes;
	return 0;
}

struct sbuf {
	uint8_t *p;
	size_t len, cap;
};

static void sbuf_add(struct sbuf *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		if (!s->p)
			die("realloc");
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

/* read() until ENOMSG (PRE_COPY) or EOF. Returns 0 / -ENOMSG. */
static int drain(int fd, struct sbuf *s, size_t chunk)
{
	uint8_t *b = malloc(chunk);

	for (;;) {
		ssize_t r = read(fd, b, chunk);

		if (r < 0) {
			int e = -errno;

			free(b);
			return e;
		}
		if (!r)
			break;
		sbuf_add(s, b, r);
	}
	free(b);
	return 0;
}

static uint32_t bar_rd32(struct dev *d, uint64_t off)
{
	uint32_t v = 0;

	if (pread(d->fd, &v, 4, d->bar0_off + off) != 4)
		die("BAR0 read");
	return v;
}

static void bar_wr32(struct dev *d, uint64_t off, uint32_t v)
{
	if (pwrite(d->fd, &v, 4, d->bar0_off + off) != 4)
		die("BAR0 write");
}

static int resume(struct dev *d, const uint8_t *p, size_t len, bool odd)
{
	size_t off = 0, seg[] = { 1, 7, 511, 24, 4095, 4121, 65536, 100003 };
	int fd, i = 0, ret;

	ret = set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = set_state(d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	while (off < len) {
		size_t n = odd ? seg[i++ % 8] : len - off;
		ssize_t w;

		if (n > len - off)
			n = len - off;
		w = write(fd, p + off, n);
		if (w < 0) {
			ret = -errno;
			break;
		}
		off += w;
	}
	if (!ret)
		ret = set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
	close(fd);
	return ret;
}

/* STOP_COPY through the mmap buffer: SAVE_NEXT/RELEASE until EOF. */
static int save_mmap(struct dev *d, struct sbuf *s)
{
	struct vfmig_buf_info bi = { .argsz = sizeof(bi) };
	int fd, ret;
	uint8_t *buf;

	ret = set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret)
		return ret;
	if (ioctl(fd, VFMIG_BUF_INFO, &bi))
		die("VFMIG_BUF_INFO");
	buf = mmap(NULL, bi.size, PROT_READ, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	for (;;) {
		struct vfmig_seg sg = { .argsz = sizeof(sg), .length = 300000 };

		if (ioctl(fd, VFMIG_SAVE_NEXT, &sg)) {
			ret = -errno;
			break;
		}
		if (sg.flags & VFMIG_SEG_EOF)
			break;
		if (sg.stream_pos != s->len) {
			ret = -EPROTO;
			break;
		}
		sbuf_add(s, buf + sg.offset, sg.length);
		if (ioctl(fd, VFMIG_SAVE_RELEASE, &sg)) {
			ret = -errno;
			break;
		}
	}
	munmap(buf, bi.size);
	close(fd);
	return ret;
}

static int resume_mmap(struct dev *d, const uint8_t *p, size_t len)
{
	struct vfmig_buf_info bi = { .argsz = sizeof(bi) };
	size_t off = 0;
	int fd, ret;
	uint8_t *buf;

	ret = set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = set_state(d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	if (ioctl(fd, VFMIG_BUF_INFO, &bi))
		die("VFMIG_BUF_INFO");
	buf = mmap(NULL, bi.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	while (off < len && !ret) {
		size_t n = len - off < 777777 ? len - off : 777777;
		struct vfmig_seg sg = { .argsz = sizeof(sg), .offset = 4096,
					.length = n };

		memcpy(buf + 4096, p + off, n);
		if (ioctl(fd, VFMIG_LOAD_COMMIT, &sg))
			ret = -errno;
		off += n;
	}
	munmap(buf, bi.size);
	if (!ret)
		ret = set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
	close(fd);
	return ret;
}


static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t stat_val(struct dev *d, const char *key)
{
	char buf[512], *p;

	if (sysfs_read(d->bdf, "vfmig/stats", buf, sizeof(buf)))
		return 0;
	p = strstr(buf, key);
	return p ? strtoull(p + strlen(key) + 1, NULL, 10) : 0;
}

static int data_size(struct dev *d, uint64_t *len)
{
	uint8_t buf[sizeof(struct vfio_device_feature) +
		    sizeof(struct vfio_device_feature_mig_data_size)] = {};
	struct vfio_device_feature *f = (void *)buf;
	struct vfio_device_feature_mig_data_size *ds = (void *)f->data;

	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE;
	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	*len = ds->stop_copy_length;
	return 0;
}

/* Workload on: PRE_COPY iterations, then STOP_COPY; restore into B. */
static void test_workload(struct dev *a, struct dev *b)
{
	struct sbuf s = {};
	uint64_t init = 0, dirty = 0, w0, w1, len = 0;
	char da[80], db[80];
	int fd, ret, iter;

	ioctl(a->fd, VFIO_DEVICE_RESET);
	sysfs_write(a->bdf, "vfmig/dirty_rate", "2097152");
	ret = set_state(a, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	check(!ret, "workload on: RUNNING -> PRE_COPY");
	if (ret)
		return;
	for (iter = 0; iter < 4; iter++) {
		ret = drain(fd, &s, 1 << 20);
		precopy_info(fd, &init, &dirty);
		usleep(300000);
		precopy_info(fd, &init, &dirty);
		check(ret == -ENOMSG && !init && dirty && !(dirty % 4120),
		      "iteration %d: caught up, then dirty_bytes %llu from the workload",
		      iter, (unsigned long long)dirty);
	}
	ret = data_size(a, &len);
	check(!ret && len >= dirty + 88,
	      "MIG_DATA_SIZE %llu covers dirty + regs + end",
	      (unsigned long long)len);
	ret = set_state(a, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL);
	ret = ret ?: set_state(a, VFIO_DEVICE_STATE_STOP_COPY, NULL);
	check(!ret, "PRE_COPY -> PRE_COPY_P2P -> STOP_COPY");
	w0 = stat_val(a, "workload_pages");
	usleep(300000);
	w1 = stat_val(a, "workload_pages");
	check(w0 && w0 == w1, "stopped device does not change (workload pages %llu)",
	      (unsigned long long)w1);
	ret = drain(fd, &s, 1 << 20);
	check(!ret, "STOP_COPY to EOF (%zu bytes in all)", s.len);
	close(fd);
	set_state(a, VFIO_DEVICE_STATE_STOP, NULL);
	sysfs_write(a->bdf, "vfmig/dirty_rate", "0");
	digest(a, da);
	ioctl(b->fd, VFIO_DEVICE_RESET);
	ret = resume(b, s.p, s.len, true);
	digest(b, db);
	check(!ret && !strcmp(da, db), "workload stream restored, digest equal (%d)",
	      ret);
	free(s.p);
}

/* A close of the device fd disables its data fd; unbind then works. */
static void test_teardown(struct dev *a)
{
	char buf[8];
	int fd, ret;
	ssize_t r;

	ioctl(a->fd, VFIO_DEVICE_RESET);
	ret = set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	check(!ret, "RUNNING -> STOP_COPY for teardown");
	if (ret)
		return;
	close(a->fd);
	r = read(fd, buf, sizeof(buf));
	check(r < 0 && errno == ENODEV, "data fd after the device closed: ENODEV");
	ret = sysfs_write(a->bdf, "driver/unbind", a->bdf);
	check(!ret, "unbind with a data fd open (%d)", ret);
	{
		uint64_t i0, d0;

		r = read(fd, buf, sizeof(buf));
		ret = precopy_info(fd, &i0, &d0);
		check(r < 0 && errno == ENODEV && ret == -ENODEV,
		      "data fd after unbind: ENODEV");
	}
	close(fd);
	ret = sysfs_write("", "../drivers_probe", a->bdf);
	check(!ret, "rebind (%d)", ret);
}

/* A large memory area: STOP_COPY of A piped into B, mmap vs read(). */
static void test_big(struct dev *a, struct dev *b, const char *mib)
{
	uint64_t t0, t1, t2, total = 0, n = 0;
	struct vfmig_buf_info bi = { .argsz = sizeof(bi) };
	char da[80], db[80];
	uint8_t *chunk, *buf, page[4096];
	int fa, fb, ret;

	close(a->fd);
	close(b->fd);
	ret = sysfs_write(a->bdf, "migration/params/memory", mib);
	ret = ret ?: sysfs_write(b->bdf, "migration/params/memory", mib);
	ret = ret ?: sysfs_write(b->bdf, "migration/allowed/memory", mib);
	check(!ret, "params/memory = %s MiB while closed (%d)", mib, ret);
	get_dev(a);
	get_dev(b);
	check(a->mem_size == strtoull(mib, NULL, 10) << 20,
	      "region size %llu", (unsigned long long)a->mem_size);
	memset(page, 0x5c, sizeof(page));
	pwrite(a->fd, page, 4096, a->mem_off + a->mem_size - 4096);
	pwrite(a->fd, page, 4096, a->mem_off + a->mem_size / 2);
	ret = set_state(a, VFIO_DEVICE_STATE_STOP, NULL);
	ret = ret ?: set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fa);
	ret = ret ?: set_state(b, VFIO_DEVICE_STATE_STOP, NULL);
	ret = ret ?: set_state(b, VFIO_DEVICE_STATE_RESUMING, &fb);
	check(!ret, "big: A STOP_COPY, B RESUMING");
	if (ret)
		return;
	chunk = malloc(1 << 20);
	t0 = now_ns();
	for (;;) {
		ssize_t r = read(fa, chunk, 1 << 20);

		if (r <= 0) {
			ret = r ? -errno : 0;
			break;
		}
		if (write(fb, chunk, r) != r) {
			ret = -errno;
			break;
		}
		total += r;
	}
	t1 = now_ns();
	close(fa);
	ret = ret ?: set_state(b, VFIO_DEVICE_STATE_STOP, NULL);
	close(fb);
	set_state(a, VFIO_DEVICE_STATE_STOP, NULL);
	digest(a, da);
	digest(b, db);
	check(!ret && !strcmp(da, db),
	      "big: %llu bytes A -> B through read/write in %.1f s, digest equal",
	      (unsigned long long)total, (t1 - t0) / 1e9);

	/* save throughput only: read() vs the mmap buffer */
	set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fa);
	t0 = now_ns();
	while (read(fa, chunk, 1 << 20) > 0)
		;
	t1 = now_ns() - t0;
	close(fa);
	set_state(a, VFIO_DEVICE_STATE_STOP, NULL);
	set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fa);
	ioctl(fa, VFMIG_BUF_INFO, &bi);
	buf = mmap(NULL, bi.size, PROT_READ, MAP_SHARED, fa, 0);
	t0 = now_ns();
	for (;;) {
		struct vfmig_seg sg = { .argsz = sizeof(sg), .length = 1 << 20 };

		if (ioctl(fa, VFMIG_SAVE_NEXT, &sg) || (sg.flags & VFMIG_SEG_EOF))
			break;
		n += sg.length;
		ioctl(fa, VFMIG_SAVE_RELEASE, &sg);
	}
	t2 = now_ns() - t0;
	check(n == total, "mmap path: %llu bytes", (unsigned long long)n);
	printf("# save of %llu bytes: read() %.1f MB/s, mmap SAVE_NEXT %.1f MB/s, ratio %.2f\n",
	       (unsigned long long)total, total * 1e3 / t1, n * 1e3 / t2,
	       (double)t1 / t2);
	munmap(buf, bi.size);
	close(fa);
	free(chunk);
}

/* B with another identity refuses A's stream on the first write. */
static void refuse_with(struct dev *b, const char *file, const char *val,
			const char *orig, const uint8_t *p, size_t len)
{
	int fd, ret;
	ssize_t w;

	close(b->fd);
	ret = sysfs_write(b->bdf, file, val);
	get_dev(b);
	check(!ret, "B %s = %s while closed", file, val);
	ret = set_state(b, VFIO_DEVICE_STATE_STOP, NULL);
	ret = ret ?: set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (!ret) {
		w = write(fd, p, len);
		check(w < 0 && errno == EINVAL, "%s %s: stream refused on the first write",
		      file, val);
		close(fd);
	}
	close(b->fd);
	ret = sysfs_write(b->bdf, file, orig);
	get_dev(b);
	check(!ret, "B %s back to %s", file, orig);
}

static uint32_t crc32c(const void *buf, size_t n)
{
	const uint8_t *q = buf;
	uint32_t c = ~0u;
	int k;

	while (n--) {
		c ^= *q++;
		for (k = 0; k < 8; k++)
			c = c >> 1 ^ (0x82f63b78u & -(c & 1));
	}
	return ~c;
}

/*
 * A's stream with another memory= param and mem_size, the header CRC
 * recomputed: even with allowed/memory "1-", a param whose MiB << 20
 * wraps around to the real size and a size beyond the largest device
 * memory are refused.
 */
static void test_hostile_size(struct dev *b, const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len);
	struct vfmig_stream_hdr *h = (struct vfmig_stream_hdr *)q;
	uint64_t size;

	if (!q)
		die("malloc");
	memcpy(q, p, len);
	size = h->mem_size;
	snprintf(h->params, sizeof(h->params), "memory=%llu\n",
		 (unsigned long long)((size >> 20) + (1ull << 44)));
	h->hdr_crc = crc32c(h, offsetof(struct vfmig_stream_hdr, hdr_crc));
	refuse_with(b, "migration/allowed/memory", "1-", "64", q, len);

	memcpy(q, p, len);
	h->mem_size = 1ull << 60;
	snprintf(h->params, sizeof(h->params), "memory=%llu\n", 1ull << 40);
	h->hdr_crc = crc32c(h, offsetof(struct vfmig_stream_hdr, hdr_crc));
	refuse_with(b, "migration/allowed/memory", "1-", "64", q, len);
	free(q);
}

static void test_incompat(struct dev *a, struct dev *b, const uint8_t *p,
			  size_t len)
{
	refuse_with(b, "migration/model", "vfmig-other", "vfmig-edu", p, len);
	refuse_with(b, "migration/version_compatible", "2.1.0-,1.0", "2.0.0-2.0.9",
		    p, len);
	refuse_with(b, "migration/allowed/memory", "128,256-1024", "64", p, len);
	close(b->fd);
	check(sysfs_write(b->bdf, "migration/version", "x.y") == -EINVAL,
	      "malformed version refused by sysfs");
	check(sysfs_write(b->bdf, "migration/version_compatible", "1.0-2.0-3") == -EINVAL,
	      "malformed range refused by sysfs");
	get_dev(b);
	check(sysfs_write(b->bdf, "migration/model", "busy") == -EBUSY,
	      "identity not writable while open (EBUSY)");
	(void)a;
}

int main(int argc, char **argv)
{
	struct dev a = {}, b = {};
	struct sbuf s1 = {}, s2 = {};
	char da[80], db[80], db0[80], tmp[512];
	uint64_t init, dirty, init0, npages;
	uint8_t page[4096];
	int container, fd, ret;
	uint32_t st;

	if (argc != 5) {
		fprintf(stderr, "usage: %s GROUP_A BDF_A GROUP_B BDF_B\n",
			argv[0]);
		return 2;
	}
	a.bdf = argv[2];
	b.bdf = argv[4];
	container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0) {
		printf("SKIP: /dev/vfio/vfio: %s\n", strerror(errno));
		return 77;
	}
	open_dev(container, &a, argv[1]);
	open_dev(container, &b, argv[3]);
	if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("VFIO_SET_IOMMU");
	get_dev(&a);
	get_dev(&b);

	{
		uint8_t fb[sizeof(struct vfio_device_feature) +
			   sizeof(struct vfio_device_feature_migration)] = {};
		struct vfio_device_feature *f = (void *)fb;
		struct vfio_device_feature_migration *m = (void *)f->data;

		f->argsz = sizeof(fb);
		f->flags = VFIO_DEVICE_FEATURE_GET |
			   VFIO_DEVICE_FEATURE_MIGRATION;
		ret = ioctl(a.fd, VFIO_DEVICE_FEATURE, f);
		check(!ret && m->flags == (VFIO_MIGRATION_STOP_COPY |
					   VFIO_MIGRATION_P2P |
					   VFIO_MIGRATION_PRE_COPY),
		      "migration flags STOP_COPY|P2P|PRE_COPY (%llx)",
		      (unsigned long long)m->flags);
	}
	check(a.mem_size && a.mem_size == b.mem_size,
	      "device memory region found (%llu bytes)",
	      (unsigned long long)a.mem_size);
	npages = a.mem_size / 4096;

	/* give A some state: registers and memory */
	bar_wr32(&a, 0x04, 0x12345678);
	bar_wr32(&a, 0x08, 6);
	usleep(100000);
	check(bar_rd32(&a, 0x04) == ~0x12345678u && bar_rd32(&a, 0x08) == 720,
	      "edu registers of A respond");
	memset(page, 0xa5, sizeof(page));
	for (uint64_t i = 0; i < npages; i += 97)
		if (pwrite(a.fd, page, sizeof(page), a.mem_off + i * 4096) != 4096)
			die("pwrite region");
	digest(&b, db0);

	/* PRE_COPY numbers */
	ret = set_state(&a, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	check(!ret && get_state(&a) == VFIO_DEVICE_STATE_PRE_COPY,
	      "RUNNING -> PRE_COPY");
	ret = precopy_info(fd, &init0, &dirty);
	check(!ret && init0 == 512 + npages * 4120 && !dirty,
	      "initial_bytes %llu = header + %llu page records, dirty 0",
	      (unsigned long long)init0, (unsigned long long)npages);
	{
		uint8_t hb[512 + 4120 * 2 + 100];
		ssize_t r = read(fd, hb, sizeof(hb));

		sbuf_add(&s1, hb, r > 0 ? r : 0);
		precopy_info(fd, &init, &dirty);
		check(r == (ssize_t)sizeof(hb) && init == init0 - sizeof(hb),
		      "initial_bytes falls as it is read (%llu)",
		      (unsigned long long)init);
	}
	/* page 0 was sent: a write dirties it; the last page was not */
	if (pwrite(a.fd, page, 100, a.mem_off) != 100 ||
	    pwrite(a.fd, page, 100, a.mem_off + a.mem_size - 4096) != 100)
		die("pwrite");
	precopy_info(fd, &init, &dirty);
	check(dirty == 4120, "a write to a sent page: dirty_bytes %llu",
	      (unsigned long long)dirty);
	ret = drain(fd, &s1, 65536);
	precopy_info(fd, &init, &dirty);
	check(ret == -ENOMSG && !init && !dirty,
	      "read() -> ENOMSG when caught up (%d)", ret);
	ret = set_state(&a, VFIO_DEVICE_STATE_STOP_COPY, NULL);
	check(!ret, "PRE_COPY -> STOP_COPY");
	ret = drain(fd, &s1, 100000);
	check(!ret, "STOP_COPY read to EOF: %zu bytes", s1.len);
	close(fd);
	ret = set_state(&a, VFIO_DEVICE_STATE_STOP, NULL);
	check(!ret, "STOP_COPY -> STOP");
	digest(&a, da);

	/* restore into B via write() in odd segments */
	ret = resume(&b, s1.p, s1.len, true);
	check(!ret, "B RESUMING -> STOP with the stream (%d)", ret);
	digest(&b, db);
	check(!strcmp(da, db), "state_digest equal: %s", db);
	check(bar_rd32(&b, 0x04) == ~0x12345678u && bar_rd32(&b, 0x08) == 720,
	      "edu registers of B restored");

	/* the mmap path: A again (stopped, nothing changed), B again */
	ret = save_mmap(&a, &s2);
	check(!ret && s2.len == s1.len - 4120 &&
	      !memcmp(s2.p, s1.p, 512 + 2 * 4120),
	      "STOP_COPY through the mmap buffer (%d, %zu bytes)", ret, s2.len);
	set_state(&a, VFIO_DEVICE_STATE_STOP, NULL);
	ioctl(b.fd, VFIO_DEVICE_RESET);
	check(get_state(&b) == VFIO_DEVICE_STATE_RUNNING,
	      "VFIO_DEVICE_RESET -> RUNNING");
	ret = resume_mmap(&b, s2.p, s2.len);
	digest(&b, db);
	check(!ret && !strcmp(da, db), "restore through LOAD_COMMIT, digest equal (%d)",
	      ret);

	/* a corrupted byte: refused, B keeps its state */
	ioctl(b.fd, VFIO_DEVICE_RESET);
	memset(page, 0x11, sizeof(page));
	if (pwrite(b.fd, page, sizeof(page), b.mem_off) != 4096)
		die("pwrite");
	digest(&b, db0);
	s1.p[s1.len / 2] ^= 0x40;
	ret = resume(&b, s1.p, s1.len, true);
	check(ret == -EINVAL, "corrupted stream refused (%d)", ret);
	st = get_state(&b);
	ioctl(b.fd, VFIO_DEVICE_RESET);
	digest(&b, db);
	check(st == VFIO_DEVICE_STATE_RESUMING && !strcmp(db, db0),
	      "B state untouched by the corrupted stream");
	s1.p[s1.len / 2] ^= 0x40;

	/* truncated stream: RESUMING -> STOP fails */
	ret = resume(&b, s1.p, s1.len - 1, false);
	check(ret == -EINVAL, "truncated stream: RESUMING -> STOP fails (%d)",
	      ret);
	ioctl(b.fd, VFIO_DEVICE_RESET);

	/* incompatible model: refused on the header */
	memcpy(s2.p + 16, "other-model", 12);
	ret = set_state(&b, VFIO_DEVICE_STATE_STOP, NULL);
	ret = ret ?: set_state(&b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (!ret) {
		ssize_t w = write(fd, s2.p, 512);

		check(w < 0 && errno == EINVAL, "modified header refused on the first write");
		close(fd);
	}
	ioctl(b.fd, VFIO_DEVICE_RESET);

	/* fault injection -> ERROR, reset -> RUNNING */
	ret = sysfs_write(b.bdf, "vfmig/fail_next", "1");
	check(!ret, "vfmig/fail_next written (%d)", ret);
	ret = set_state(&b, VFIO_DEVICE_STATE_STOP, NULL);
	check(ret && get_state(&b) == VFIO_DEVICE_STATE_ERROR,
	      "injected failure -> ERROR");
	check(!ioctl(b.fd, VFIO_DEVICE_RESET) &&
	      get_state(&b) == VFIO_DEVICE_STATE_RUNNING, "reset from ERROR");

	test_incompat(&a, &b, s1.p, 4096 + 512);
	test_hostile_size(&b, s1.p, 4096 + 512);
	test_workload(&a, &b);
	if (getenv("VFMIG_BIG_MIB"))
		test_big(&a, &b, getenv("VFMIG_BIG_MIB"));
	test_teardown(&a);
	if (!sysfs_read(a.bdf, "vfmig/stats", tmp, sizeof(tmp)))
		printf("A stats:\n%s\n", tmp);
	close(b.fd);
	printf("%s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
