// SPDX-License-Identifier: MIT
/*
 * The "sim" device: an in-process model of vfmig_stub.ko. Registers plus
 * device memory, a workload thread that dirties memory while the device
 * runs, the VFIO v2 state machine, and the vfmig.h stream (dev_sim_save.c,
 * dev_sim_load.c). It lets the host run real migrations without the module.
 */
#include <endian.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "dev_sim.h"
#include "spec.h"
#include "vfm/transport.h"

#define VFM_SIM_DEFAULT_SIZE (64ull << 20)
#define VFM_SIM_DEFAULT_BUF (32ull << 20)
#define VFM_SIM_TICK_NS 5000000L /* workload period: 5 ms */

bool vfm_sim_running(uint32_t state)
{
	return state == VFIO_DEVICE_STATE_RUNNING ||
	       state == VFIO_DEVICE_STATE_RUNNING_P2P ||
	       state == VFIO_DEVICE_STATE_PRE_COPY ||
	       state == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = xorshift(&x);

		memcpy(p + i, &v, 8);
	}
}

static void mark_dirty_locked(struct vfm_sim *s, uint64_t page);

/* zero=N: page p stays zero when a hash of (seed, p) falls below N%; the
 * others get their own pattern. A zero page is written too (a zeroed page
 * of its own, as a dense fill gives every page): reading memory that was
 * never written maps the shared zero page, and a first read of it inside
 * the downtime (the digest) costs a fault per page. */
static void fill_sparse(struct vfm_sim *s)
{
	for (uint64_t p = 0; p < s->pages; p++) {
		uint64_t h = (s->seed ^ p) * 0x9e3779b97f4a7c15ull;

		h ^= h >> 31;
		h *= 0xbf58476d1ce4e5b9ull;
		h ^= h >> 29;
		if (h % 100 < s->zero_pct) {
			vfm_bit_set(s->zmap, p);
			s->mem[p * VFMIG_PAGE_SIZE] = 0;
		} else {
			fill(s->mem + p * VFMIG_PAGE_SIZE, VFMIG_PAGE_SIZE,
			     s->seed ^ (p + 1) * 0x2545f4914f6cdd1dull);
		}
	}
}

bool vfm_sim_is_zero(const uint8_t *p, size_t len)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 64 <= len; i += 64) {
		for (size_t j = 0; j < 64; j += 8) {
			memcpy(&w, p + i + j, 8);
			acc |= w;
		}
		if (acc)
			return false;
	}
	for (; i < len; i++)
		acc |= p[i];
	return !acc;
}

/* Page @page now holds zeros (@zero) or not: keep the map and the saving
 * stream's exact counts of pending zero pages. */
static void set_zero_locked(struct vfm_sim *s, uint64_t page, bool zero)
{
	struct vfm_sim_save *sv = &s->sv;
	uint64_t *cnt = NULL;

	if (vfm_bit_test(s->zmap, page) == zero)
		return;
	if (zero)
		vfm_bit_set(s->zmap, page);
	else
		vfm_bit_clear(s->zmap, page);
	if (sv->active && vfm_bit_test(sv->unsent, page))
		cnt = &sv->unsent_zero;
	else if (sv->active && vfm_bit_test(sv->dirty, page))
		cnt = &sv->dirty_zero;
	if (cnt)
		*cnt = zero ? *cnt + 1 : *cnt - 1;
}

/* Write one page as the workload does: a new counter-derived pattern at the
 * start of the page and the register block's write counter. */
static void dirty_page_locked(struct vfm_sim *s, uint64_t page)
{
	uint64_t cnt, v;
	uint8_t *p = s->mem + page * VFMIG_PAGE_SIZE;

	memcpy(&cnt, s->regs, 8);
	cnt++;
	memcpy(s->regs, &cnt, 8);
	v = cnt * 0x9e3779b97f4a7c15ull ^ page;
	for (int i = 0; i < 8; i++)
		memcpy(p + i * 8, &v, 8);
	set_zero_locked(s, page, false);
	mark_dirty_locked(s, page);
}

static void mark_dirty_locked(struct vfm_sim *s, uint64_t page)
{
	if (s->sv.active && !vfm_bit_test(s->sv.unsent, page) &&
	    !vfm_bit_test(s->sv.dirty, page)) {
		vfm_bit_set(s->sv.dirty, page);
		s->sv.dirty_count++;
		if (vfm_bit_test(s->zmap, page))
			s->sv.dirty_zero++;
	}
}

int vfm_sim_poke(struct vfm_dev *d, uint64_t off, const void *buf, size_t len)
{
	struct vfm_sim *s = to_sim(d);

	if (d->ops != &vfm_dev_sim_ops || off > s->size || len > s->size - off)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	memcpy(s->mem + off, buf, len);
	for (uint64_t p = off / VFMIG_PAGE_SIZE;
	     len && p <= (off + len - 1) / VFMIG_PAGE_SIZE; p++) {
		set_zero_locked(s, p,
				vfm_sim_is_zero(s->mem + p * VFMIG_PAGE_SIZE,
						VFMIG_PAGE_SIZE));
		mark_dirty_locked(s, p);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void *workload(void *arg)
{
	struct vfm_sim *s = arg;
	struct timespec next;
	double carry = 0;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&s->lock);
	while (!s->stop_thread) {
		next.tv_nsec += VFM_SIM_TICK_NS;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		/* cond is bound to CLOCK_MONOTONIC at init. */
		while (!s->stop_thread &&
		       pthread_cond_timedwait(&s->cond, &s->lock, &next) !=
			       ETIMEDOUT)
			;
		if (s->stop_thread || !vfm_sim_running(s->state))
			continue;
		carry += (double)s->dirty_rate * VFM_SIM_TICK_NS / 1e9 /
			 VFMIG_PAGE_SIZE;
		while (carry >= 1) {
			dirty_page_locked(s, xorshift(&s->rng) % s->pages);
			carry -= 1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int sim_config(struct vfm_sim *s, char *args, char *why, size_t whylen)
{
	struct vfm_kv kv[64];
	struct vfm_err err;
	char mib[32];
	bool have_allowed_mem = false, have_param_mem = false;
	int n = vfm_parse_kv(args, kv, 64);
	int ret = 0;

	if (n < 0) {
		snprintf(why, whylen,
			 "The sim options '%s' are not key=value pairs.", args);
		return -EINVAL;
	}
	s->size = VFM_SIM_DEFAULT_SIZE;
	s->buf_size = VFM_SIM_DEFAULT_BUF;
	s->formats = 1u << VFMIG_STREAM_FORMAT | 1u << VFMIG_STREAM_FORMAT_ZERO;
	vfm_desc_init(&s->desc);
	vfm_desc_set_model(&s->desc, "vfmig-edu", NULL);
	vfm_desc_set_version(&s->desc, "2.0.3", NULL);
	vfm_desc_set_compatible(&s->desc, "2.0.0-2.0.9", NULL);
	vfm_desc_add_features(&s->desc, "pre_copy p2p mmap", NULL);
	vfm_err_clear(&err);
	for (int i = 0; i < n && !ret; i++) {
		char *k = kv[i].key, *v = kv[i].val;

		if (!strcmp(k, "size") || !strcmp(k, "dirty") ||
		    !strcmp(k, "buf")) {
			uint64_t x;

			if (vfm_parse_size(v, &x)) {
				snprintf(
					why, whylen,
					"The sim option %s=%s is not a size (e.g. 64M, 1G).",
					k, v);
				return -EINVAL;
			}
			if (!strcmp(k, "size"))
				s->size = x;
			else if (!strcmp(k, "dirty"))
				s->dirty_rate = x;
			else
				s->buf_size = x;
		} else if (!strcmp(k, "precopy")) {
			s->no_precopy = !strcmp(v, "off") || !strcmp(v, "0");
		} else if (!strcmp(k, "mmap")) {
			s->no_buf = !strcmp(v, "off") || !strcmp(v, "0");
		} else if (!strcmp(k, "zero")) {
			char *end;
			unsigned long pct = strtoul(v, &end, 10);

			if (!*v || *end || pct > 100) {
				snprintf(
					why, whylen,
					"The sim option zero=%s is not a percentage of zero pages (0-100).",
					v);
				return -EINVAL;
			}
			s->zero_pct = (unsigned int)pct;
		} else if (!strcmp(k, "formats")) {
			for (char *c = v; *c; c++)
				if (*c == '/')
					*c = ',';
			ret = vfm_desc_set_stream_formats(&s->desc, v, &err);
			if (!ret && (s->desc.stream_formats &
					     ~(uint32_t)(s->formats | 1u) ||
				     !(s->desc.stream_formats &
				       1u << VFMIG_STREAM_FORMAT))) {
				snprintf(
					why, whylen,
					"The sim option formats=%s names a stream format it does not have (it has 1 and 2; 1 is always there).",
					v);
				return -EINVAL;
			}
			if (!ret)
				s->formats = s->desc.stream_formats;
		} else if (!strcmp(k, "seed")) {
			s->seed = strtoull(v, NULL, 0);
		} else if (!strcmp(k, "model")) {
			ret = vfm_desc_set_model(&s->desc, v, &err);
		} else if (!strcmp(k, "version")) {
			ret = vfm_desc_set_version(&s->desc, v, &err);
		} else if (!strcmp(k, "compatible")) {
			ret = vfm_desc_set_compatible(&s->desc, v, &err);
		} else if (!strcmp(k, "features")) {
			for (char *c = v; *c; c++)
				if (*c == '/')
					*c = ' ';
			s->desc.nfeatures = 0;
			ret = vfm_desc_add_features(&s->desc, v, &err);
		} else if (!strncmp(k, "param.", 6)) {
			have_param_mem |= !strcmp(k + 6, "memory");
			ret = vfm_desc_set_param(&s->desc, k + 6, v, &err);
		} else if (!strncmp(k, "allowed.", 8)) {
			for (char *c = v; *c; c++)
				if (*c == '/')
					*c = ',';
			have_allowed_mem |= !strcmp(k + 8, "memory");
			ret = vfm_desc_set_allowed(&s->desc, k + 8, v, &err);
		} else {
			snprintf(
				why, whylen,
				"The sim option '%s' is unknown (size, dirty, buf, zero, formats, mmap, precopy, seed, model, version, compatible, features, param.NAME, allowed.NAME).",
				k);
			return -EINVAL;
		}
	}
	if (ret) {
		snprintf(why, whylen, "The sim options are invalid: %s",
			 err.msg);
		return -EINVAL;
	}
	if (s->size < VFMIG_PAGE_SIZE || s->size % VFMIG_PAGE_SIZE) {
		snprintf(why, whylen,
			 "The sim size must be a non-zero multiple of 4 KiB.");
		return -EINVAL;
	}
	if (s->buf_size < (2u << 20) || s->buf_size % VFMIG_PAGE_SIZE) {
		snprintf(
			why, whylen,
			"The sim buffer must be at least 2 MiB, in 4 KiB pages.");
		return -EINVAL;
	}
	s->desc.stream_formats = s->formats;
	snprintf(mib, sizeof(mib), "%llu", (unsigned long long)(s->size >> 20));
	if (!have_param_mem)
		vfm_desc_set_param(&s->desc, "memory", mib, NULL);
	if (!have_allowed_mem)
		vfm_desc_set_allowed(&s->desc, "memory", mib, NULL);
	return 0;
}

static void params_text(struct vfm_sim *s)
{
	size_t off = 0;

	s->params_text[0] = '\0';
	for (unsigned int i = 0; i < s->desc.nparams; i++) {
		int n = snprintf(s->params_text + off,
				 sizeof(s->params_text) - off, "%s=%s\n",
				 s->desc.params[i].name,
				 s->desc.params[i].value);

		if (n < 0 || (size_t)n >= sizeof(s->params_text) - off)
			break;
		off += (size_t)n;
	}
}

static int sim_open(const char *args, struct vfm_dev **out, char *why,
		    size_t whylen)
{
	struct vfm_sim *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	char *copy = strdup(args);
	int ret;

	if (!s || !copy) {
		free(s);
		free(copy);
		return -ENOMEM;
	}
	s->seed = (uint64_t)getpid() * 0x2545f4914f6cdd1dull ^
		  (uint64_t)time(NULL);
	ret = sim_config(s, copy, why, whylen);
	free(copy);
	if (ret) {
		free(s);
		return ret;
	}
	params_text(s);
	s->pages = s->size / VFMIG_PAGE_SIZE;
	/* Huge pages, as the buffers (vfm/transport.h says why). */
	s->mem = vfm_xport_buf_reserve(s->size);
	s->buf = vfm_xport_buf_alloc(s->buf_size);
	s->zmap = calloc((s->pages + 63) / 64, 8);
	if (!s->mem || !s->buf || !s->zmap) {
		snprintf(why, whylen,
			 "The sim device could not allocate %llu bytes.",
			 (unsigned long long)s->size);
		vfm_xport_buf_free(s->mem, s->size);
		vfm_xport_buf_free(s->buf, s->buf_size);
		free(s->zmap);
		free(s);
		return -ENOMEM;
	}
	s->format = VFMIG_STREAM_FORMAT;
	if (s->zero_pct)
		fill_sparse(s);
	else
		fill(s->mem, s->size, s->seed);
	fill(s->regs, sizeof(s->regs), s->seed ^ 0x5a5a5a5a);
	memset(s->regs, 0, 8); /* the write counter */
	s->rng = s->seed | 1;
	s->state = VFIO_DEVICE_STATE_RUNNING;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (s->dirty_rate) {
		if (pthread_create(&s->thread, NULL, workload, s) == 0)
			s->thread_started = true;
	}
	*out = &s->dev;
	return 0;
}

static void sim_close(struct vfm_dev *d)
{
	struct vfm_sim *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	s->stop_thread = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	pthread_mutex_lock(&s->lock);
	vfm_sim_save_end_locked(s);
	vfm_sim_load_end_locked(s);
	pthread_mutex_unlock(&s->lock);
	munmap(s->mem, s->size);
	if (s->spare)
		munmap(s->spare, s->size);
	vfm_xport_buf_free(s->buf, s->buf_size);
	free(s->zmap);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static int sim_get_state(struct vfm_dev *d, uint32_t *state)
{
	struct vfm_sim *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	*state = s->state;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The arcs of the VFIO v2 FSM (with P2P and PRE_COPY). */
static bool arc(uint32_t from, uint32_t to)
{
	switch (from) {
	case VFIO_DEVICE_STATE_RUNNING:
		return to == VFIO_DEVICE_STATE_RUNNING_P2P ||
		       to == VFIO_DEVICE_STATE_PRE_COPY;
	case VFIO_DEVICE_STATE_RUNNING_P2P:
		return to == VFIO_DEVICE_STATE_RUNNING ||
		       to == VFIO_DEVICE_STATE_STOP ||
		       to == VFIO_DEVICE_STATE_PRE_COPY_P2P;
	case VFIO_DEVICE_STATE_STOP:
		return to == VFIO_DEVICE_STATE_RUNNING_P2P ||
		       to == VFIO_DEVICE_STATE_STOP_COPY ||
		       to == VFIO_DEVICE_STATE_RESUMING;
	case VFIO_DEVICE_STATE_STOP_COPY:
	case VFIO_DEVICE_STATE_RESUMING:
		return to == VFIO_DEVICE_STATE_STOP;
	case VFIO_DEVICE_STATE_PRE_COPY:
		return to == VFIO_DEVICE_STATE_RUNNING ||
		       to == VFIO_DEVICE_STATE_PRE_COPY_P2P;
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
		return to == VFIO_DEVICE_STATE_PRE_COPY ||
		       to == VFIO_DEVICE_STATE_RUNNING_P2P ||
		       to == VFIO_DEVICE_STATE_STOP_COPY;
	default:
		return false;
	}
}

/* Resuming and STOP_COPY are never passed through, only reached; the
 * PRE_COPY states only on the way out of a PRE_COPY state (as the kernel's
 * vfio_mig_get_next_state() walks PRE_COPY -> PRE_COPY_P2P -> STOP_COPY). */
static bool transit_ok(uint32_t from, uint32_t s)
{
	bool pre = from == VFIO_DEVICE_STATE_PRE_COPY ||
		   from == VFIO_DEVICE_STATE_PRE_COPY_P2P;

	return s == VFIO_DEVICE_STATE_RUNNING ||
	       s == VFIO_DEVICE_STATE_RUNNING_P2P ||
	       s == VFIO_DEVICE_STATE_STOP ||
	       (pre && (s == VFIO_DEVICE_STATE_PRE_COPY ||
			s == VFIO_DEVICE_STATE_PRE_COPY_P2P));
}

/* One arc and its effect on the sessions. */
static int step_locked(struct vfm_sim *s, uint32_t to)
{
	uint32_t from = s->state;
	int ret = 0;

	if ((from == VFIO_DEVICE_STATE_RUNNING &&
	     to == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (from == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     to == VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
	    (from == VFIO_DEVICE_STATE_STOP &&
	     to == VFIO_DEVICE_STATE_STOP_COPY))
		ret = vfm_sim_save_start_locked(s);
	else if ((from == VFIO_DEVICE_STATE_PRE_COPY &&
		  to == VFIO_DEVICE_STATE_RUNNING) ||
		 (from == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
		  to == VFIO_DEVICE_STATE_RUNNING_P2P) ||
		 (from == VFIO_DEVICE_STATE_STOP_COPY &&
		  to == VFIO_DEVICE_STATE_STOP))
		vfm_sim_save_end_locked(s);
	else if (from == VFIO_DEVICE_STATE_STOP &&
		 to == VFIO_DEVICE_STATE_RESUMING)
		ret = vfm_sim_load_start_locked(s);
	else if (from == VFIO_DEVICE_STATE_RESUMING &&
		 to == VFIO_DEVICE_STATE_STOP)
		ret = vfm_sim_load_finish_locked(s);
	if (ret) {
		if (from == VFIO_DEVICE_STATE_RESUMING) {
			vfm_sim_load_end_locked(s);
			s->state = VFIO_DEVICE_STATE_ERROR;
		}
		return ret;
	}
	s->state = to;
	return 0;
}

static int sim_set_state(struct vfm_dev *d, uint32_t target)
{
	struct vfm_sim *s = to_sim(d);
	int prev[8];
	uint32_t queue[8], path[8];
	unsigned int qh = 0, qt = 0, n = 0;
	int ret = 0;

	if (target > VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	    target == VFIO_DEVICE_STATE_ERROR)
		return -EINVAL;
	if (s->no_precopy && (target == VFIO_DEVICE_STATE_PRE_COPY ||
			      target == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->state == target)
		goto out;
	if (s->state == VFIO_DEVICE_STATE_ERROR) {
		ret = -EINVAL;
		goto out;
	}
	/* Breadth-first: the shortest path through transit states. */
	for (int i = 0; i < 8; i++)
		prev[i] = -2;
	prev[s->state] = -1;
	queue[qt++] = s->state;
	while (qh < qt) {
		uint32_t u = queue[qh++];

		if (u == target)
			break;
		if (u != s->state && !transit_ok(s->state, u))
			continue;
		for (uint32_t v = 1; v < 8; v++) {
			if (prev[v] == -2 && arc(u, v)) {
				prev[v] = (int)u;
				queue[qt++] = v;
			}
		}
	}
	if (prev[target] == -2) {
		ret = -EINVAL;
		goto out;
	}
	for (uint32_t v = target; prev[v] != -1; v = (uint32_t)prev[v])
		path[n++] = v;
	while (n && !ret)
		ret = step_locked(s, path[--n]);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int sim_buf(struct vfm_dev *d, void **addr, size_t *size)
{
	struct vfm_sim *s = to_sim(d);

	if (s->no_buf)
		return -EOPNOTSUPP;
	*addr = s->buf;
	*size = s->buf_size;
	return 0;
}

static int sim_describe(struct vfm_dev *d, struct vfm_desc *desc, char *why,
			size_t whylen)
{
	*desc = to_sim(d)->desc;
	return 0;
}

/*
 * The state digest: SHA-256 over the registers and the CRC32C of every
 * 4 KiB page of memory, the pages' CRCs computed by up to four threads. A
 * whole pass over the real memory every time (never a table kept while
 * saving or loading, which would hide the very bugs it must catch), at
 * the speed of the CRC instruction rather than of SHA-256, because the
 * destination computes it inside the downtime.
 */
struct digest_part {
	const uint8_t *mem;
	uint32_t *crc;
	uint64_t first, n;
};

static void *digest_pages(void *arg)
{
	struct digest_part *p = arg;

	for (uint64_t i = 0; i < p->n; i++)
		p->crc[i] = htole32(
			vfm_crc32c(0, p->mem + (p->first + i) * VFMIG_PAGE_SIZE,
				   VFMIG_PAGE_SIZE));
	return NULL;
}

static int sim_digest(struct vfm_dev *d, char hex[VFM_DIGEST_HEX])
{
	struct vfm_sim *s = to_sim(d);
	struct digest_part part[4];
	pthread_t th[4];
	bool started[4] = { false };
	unsigned char md[32];
	unsigned int mdlen = 0, nth;
	uint32_t *crc = malloc(s->pages * sizeof(*crc));
	uint8_t regs[VFM_SIM_REGS_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool stopped;
	int ok;

	if (!ctx || !crc) {
		EVP_MD_CTX_free(ctx);
		free(crc);
		return -ENOMEM;
	}
	/* A running device changes under the pass: hold the lock. A stopped
	 * one does not (its memory is only read, by saving), so the pass runs
	 * unlocked and saving goes on meanwhile. */
	pthread_mutex_lock(&s->lock);
	stopped = !vfm_sim_running(s->state);
	memcpy(regs, s->regs, sizeof(regs));
	if (stopped)
		pthread_mutex_unlock(&s->lock);
	nth = s->pages >= 4096 ? 4 : 1;
	for (unsigned int t = 0; t < nth; t++) {
		uint64_t per = (s->pages + nth - 1) / nth;
		uint64_t first = t * per;

		part[t] = (struct digest_part){
			.mem = s->mem,
			.crc = crc + first,
			.first = first,
			.n = first >= s->pages	    ? 0 :
			     s->pages - first < per ? s->pages - first :
						      per,
		};
		if (t)
			started[t] = pthread_create(&th[t], NULL, digest_pages,
						    &part[t]) == 0;
		if (t && !started[t])
			digest_pages(&part[t]);
	}
	digest_pages(&part[0]);
	for (unsigned int t = 1; t < nth; t++)
		if (started[t])
			pthread_join(th[t], NULL);
	if (!stopped)
		pthread_mutex_unlock(&s->lock);
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, regs, sizeof(regs)) &&
	     EVP_DigestUpdate(ctx, crc, s->pages * sizeof(*crc)) &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	free(crc);
	if (!ok || mdlen != 32)
		return -EIO;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int sim_reset(struct vfm_dev *d)
{
	struct vfm_sim *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	vfm_sim_save_end_locked(s);
	vfm_sim_load_end_locked(s);
	s->state = VFIO_DEVICE_STATE_RUNNING;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_prepare_resume(struct vfm_dev *d)
{
	struct vfm_sim *s = to_sim(d);
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (!s->spare) {
		/* Touched now, not while the state arrives: a VM's host
		 * may fault each page on its first touch (measured: 256 MiB
		 * with 4 KiB pages, 1.0 s). */
		void *p = vfm_xport_buf_alloc(s->size);

		if (!p)
			ret = -ENOMEM;
		else
			s->spare = p;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int sim_set_stream_format(struct vfm_dev *d, unsigned int format)
{
	struct vfm_sim *s = to_sim(d);
	int ret = 0;

	if (format > VFM_DESC_STREAM_FORMAT_MAX || !(s->formats >> format & 1))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->sv.active)
		ret = -EBUSY; /* the stream has its format already */
	else
		s->format = (uint16_t)format;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

const struct vfm_dev_ops vfm_dev_sim_ops = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.get_state = sim_get_state,
	.set_state = sim_set_state,
	.precopy_info = vfm_sim_precopy_info,
	.data_size = vfm_sim_data_size,
	.buf = sim_buf,
	.save_next = vfm_sim_save_next,
	.save_release = vfm_sim_save_release,
	.load_commit = vfm_sim_load_commit,
	.read = vfm_sim_read,
	.write = vfm_sim_write,
	.describe = sim_describe,
	.digest = sim_digest,
	.reset = sim_reset,
	.prepare_resume = sim_prepare_resume,
	.set_stream_format = sim_set_stream_format,
};
