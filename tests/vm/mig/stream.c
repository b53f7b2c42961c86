// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stream.h"

#define SEG_DEFAULT (1u << 20)

const size_t vfm_sizes_mixed_a[] = { 1,	   7,	 24,	511,
				     4096, 4120, 65537, (1u << 20) + 3,
				     333,  0 };
const size_t vfm_sizes_mixed_b[] = { 512, 3,	    4119, 100000, 1,
				     24,  2u << 20, 8191, 0 };

int vfm_buf_append(struct vfm_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : (1u << 20);
		uint8_t *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void vfm_buf_free(struct vfm_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static size_t next_size(const size_t *sizes, size_t *i)
{
	size_t s;

	if (!sizes)
		return SEG_DEFAULT;
	if (!sizes[*i])
		*i = 0;
	s = sizes[*i];
	(*i)++;
	return s;
}

int vfm_read_until(int fd, struct vfm_buf *out, const size_t *sizes,
		   uint64_t limit, bool *eof, uint64_t *bytes)
{
	size_t i = 0, cap = 4u << 20;
	uint64_t got = 0;
	uint8_t *tmp;
	int ret = 0;

	*eof = false;
	tmp = malloc(cap);
	if (!tmp)
		return -ENOMEM;
	while (!limit || got < limit) {
		size_t want = next_size(sizes, &i);
		ssize_t n;

		if (want > cap)
			want = cap;
		if (limit && want > limit - got)
			want = limit - got;
		n = read(fd, tmp, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = errno == ENOMSG ? 0 : -errno;
			break;
		}
		if (n == 0) {
			*eof = true;
			break;
		}
		got += (uint64_t)n;
		if (out) {
			ret = vfm_buf_append(out, tmp, (size_t)n);
			if (ret)
				break;
		}
	}
	free(tmp);
	if (bytes)
		*bytes = got;
	return ret;
}

int vfm_write_all(int fd, const uint8_t *p, size_t n, const size_t *sizes,
		  size_t *accepted)
{
	size_t i = 0, done = 0;
	int ret = 0;

	while (done < n) {
		size_t want = next_size(sizes, &i);
		ssize_t w;

		if (want > n - done)
			want = n - done;
		w = write(fd, p + done, want);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (w == 0) {
			ret = -EIO;
			break;
		}
		done += (size_t)w;
	}
	if (accepted)
		*accepted = done;
	return ret;
}

int vfm_map(int fd, struct vfm_map *m)
{
	struct vfmig_buf_info bi = { .argsz = sizeof(bi) };
	void *p;

	m->p = NULL;
	m->size = 0;
	if (ioctl(fd, VFMIG_BUF_INFO, &bi))
		return -errno;
	if (!bi.size)
		return -EINVAL;
	p = mmap(NULL, bi.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->p = p;
	m->size = bi.size;
	return 0;
}

void vfm_unmap(struct vfm_map *m)
{
	if (m->p)
		munmap(m->p, m->size);
	m->p = NULL;
	m->size = 0;
}

int vfm_mmap_save_until(int fd, struct vfm_map *m, struct vfm_buf *out,
			const size_t *sizes, uint64_t limit, bool *eof,
			uint64_t *bytes)
{
	uint64_t got = 0;
	size_t i = 0;
	int ret = 0;

	*eof = false;
	while (!limit || got < limit) {
		struct vfmig_seg s = { .argsz = sizeof(s) };

		s.length = sizes ? next_size(sizes, &i) : 0;
		if (limit && (!s.length || s.length > limit - got))
			s.length = limit - got;
		if (ioctl(fd, VFMIG_SAVE_NEXT, &s)) {
			ret = errno == ENOMSG ? 0 : -errno;
			break;
		}
		if (!s.length) {
			if (s.flags & VFMIG_SEG_EOF)
				*eof = true;
			else
				ret = -EPROTO; /* empty segment, not EOF */
			break;
		}
		if (s.offset > m->size || s.length > m->size - s.offset) {
			ret = -ERANGE;
			break;
		}
		if (out) {
			ret = vfm_buf_append(out, m->p + s.offset, s.length);
			if (ret)
				break;
		}
		got += s.length;
		if (ioctl(fd, VFMIG_SAVE_RELEASE, &s)) {
			ret = -errno;
			break;
		}
		if (s.flags & VFMIG_SEG_EOF) {
			*eof = true;
			break;
		}
	}
	if (bytes)
		*bytes = got;
	return ret;
}

int vfm_mmap_load(int fd, struct vfm_map *m, const uint8_t *p, size_t n,
		  const size_t *sizes, size_t *accepted)
{
	size_t i = 0, done = 0, at = 0;
	int ret = 0;

	while (done < n) {
		struct vfmig_seg s = { .argsz = sizeof(s) };
		size_t want = sizes ? next_size(sizes, &i) : m->size;

		if (want > m->size)
			want = m->size;
		if (want > n - done)
			want = n - done;
		/* vary where in the buffer segments land */
		if (at + want > m->size)
			at = 0;
		memcpy(m->p + at, p + done, want);
		s.offset = at;
		s.length = want;
		if (ioctl(fd, VFMIG_LOAD_COMMIT, &s)) {
			ret = -errno;
			break;
		}
		done += want;
		at += want;
	}
	if (accepted)
		*accepted = done;
	return ret;
}

static int drain(int fd, enum vfm_path path, struct vfm_map *m,
		 const size_t *sizes, uint64_t limit, struct vfm_buf *out,
		 bool *eof)
{
	if (path == VFM_PATH_MMAP)
		return vfm_mmap_save_until(fd, m, out, sizes, limit, eof, NULL);
	return vfm_read_until(fd, out, sizes, limit, eof, NULL);
}

int vfm_save(struct vfm_vdev *d, enum vfm_path path, bool precopy,
	     const size_t *sizes, struct vfm_buf *out)
{
	struct vfm_map m = { 0 };
	int fd = -1, fd2 = -1, ret;
	bool eof = false;

	if (precopy) {
		ret = vfm_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &fd);
		if (ret)
			return ret;
	} else {
		ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
		if (!ret)
			ret = vfm_set_state(d, VFIO_DEVICE_STATE_STOP_COPY,
					    &fd);
		if (ret)
			return ret;
	}
	if (fd < 0)
		return -EBADF;
	if (path == VFM_PATH_MMAP) {
		ret = vfm_map(fd, &m);
		if (ret)
			goto out;
	}
	if (precopy) {
		uint64_t initial, dirty;

		ret = vfm_precopy_info(fd, &initial, &dirty);
		if (!ret && initial + dirty)
			ret = drain(fd, path, &m, sizes, initial + dirty, out,
				    &eof);
		if (ret)
			goto out;
		if (eof) {
			ret = -EPROTO; /* EOF in PRE_COPY */
			goto out;
		}
		ret = vfm_set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &fd2);
		if (ret)
			goto out;
		if (fd2 >= 0) {
			close(fd2); /* PRE_COPY_P2P -> STOP_COPY keeps the fd */
			ret = -EPROTO;
			goto out;
		}
	}
	ret = drain(fd, path, &m, sizes, 0, out, &eof);
	if (!ret && !eof)
		ret = -EPROTO; /* STOP_COPY must end in EOF */
	if (!ret)
		ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
out:
	vfm_unmap(&m);
	close(fd);
	return ret;
}

int vfm_restore(struct vfm_vdev *d, enum vfm_path path, const uint8_t *p,
		size_t n, const size_t *sizes)
{
	struct vfm_map m = { 0 };
	int fd = -1, ret;

	ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = vfm_set_state(d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (path == VFM_PATH_MMAP) {
		ret = vfm_map(fd, &m);
		if (!ret)
			ret = vfm_mmap_load(fd, &m, p, n, sizes, NULL);
	} else {
		ret = vfm_write_all(fd, p, n, sizes, NULL);
	}
	if (!ret)
		ret = vfm_goto(d, VFIO_DEVICE_STATE_STOP);
	vfm_unmap(&m);
	close(fd);
	return ret;
}
