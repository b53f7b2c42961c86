// SPDX-License-Identifier: MIT
/*
 * Device sets: the quiesce table (quiesce.h) alone, then the set device
 * (dev_set.h) over sim members wrapped in a recorder that logs every state
 * change in one global order: the P2P order of a stop and of a start, a
 * set -> set round trip with equal digests per member, a corrupt frame and
 * a missing end refused, and a failure part-way recovered.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dev.h"
#include "dev_set.h"
#include "quiesce.h"
#include "vfm/compat.h"

#define S(x) VFIO_DEVICE_STATE_##x

/* ---- the quiesce table ---- */

static void plan_is(uint32_t from, uint32_t to, bool p2p, unsigned int n, ...)
{
	struct vfm_qs_plan p;
	va_list ap;

	vfm_qs_plan(from, to, p2p, &p);
	assert_int_equal(p.nsteps, n);
	va_start(ap, n);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(p.step[i], va_arg(ap, uint32_t));
	va_end(ap);
}

static void test_quiesce_table(void **state)
{
	(void)state;
	plan_is(S(PRE_COPY), S(STOP_COPY), true, 2, S(PRE_COPY_P2P),
		S(STOP_COPY));
	plan_is(S(RUNNING), S(STOP_COPY), true, 2, S(RUNNING_P2P),
		S(STOP_COPY));
	plan_is(S(STOP), S(RUNNING), true, 2, S(RUNNING_P2P), S(RUNNING));
	plan_is(S(STOP_COPY), S(RUNNING), true, 3, S(STOP), S(RUNNING_P2P),
		S(RUNNING));
	/* without P2P the P2P steps are left out */
	plan_is(S(PRE_COPY), S(STOP_COPY), false, 1, S(STOP_COPY));
	plan_is(S(STOP), S(RUNNING), false, 1, S(RUNNING));
	plan_is(S(STOP_COPY), S(RUNNING), false, 2, S(STOP), S(RUNNING));
	/* arcs that start or stop no DMA: one step */
	plan_is(S(RUNNING), S(PRE_COPY), true, 1, S(PRE_COPY));
	plan_is(S(RUNNING), S(RESUMING), true, 1, S(RESUMING));
	plan_is(S(RESUMING), S(STOP), true, 1, S(STOP));
	plan_is(S(PRE_COPY), S(RUNNING), true, 1, S(RUNNING));
	plan_is(S(RUNNING), S(RUNNING), true, 0);
	/* every plan ends at its target */
	for (uint32_t f = S(STOP); f <= S(PRE_COPY_P2P); f++)
		for (uint32_t t = S(STOP); t <= S(PRE_COPY_P2P); t++) {
			struct vfm_qs_plan p;

			vfm_qs_plan(f, t, true, &p);
			if (f != t)
				assert_int_equal(p.step[p.nsteps - 1], t);
		}
}

/* ---- a recorder around a sim ---- */

struct rec {
	unsigned int dev;
	uint32_t state;
};

static struct rec trace[256];
static unsigned int ntrace;

struct proxy {
	struct vfm_dev hdr;
	struct vfm_dev *in;
	unsigned int id;
	uint32_t fail_on; /* refuse this state (0: none) */
};

static struct vfm_dev *in_of(struct vfm_dev *d)
{
	return ((struct proxy *)d)->in;
}

static int p_get_state(struct vfm_dev *d, uint32_t *s)
{
	return vfm_dev_get_state(in_of(d), s);
}

static int p_set_state(struct vfm_dev *d, uint32_t s)
{
	struct proxy *p = (struct proxy *)d;

	if (p->fail_on && s == p->fail_on)
		return -EIO;
	if (ntrace < 256)
		trace[ntrace++] = (struct rec){ p->id, s };
	return vfm_dev_set_state(p->in, s);
}

static int p_precopy_info(struct vfm_dev *d, uint64_t *i, uint64_t *dirty)
{
	return vfm_dev_precopy_info(in_of(d), i, dirty);
}

static int p_data_size(struct vfm_dev *d, uint64_t *b)
{
	return vfm_dev_data_size(in_of(d), b);
}

static int p_buf(struct vfm_dev *d, void **addr, size_t *size)
{
	return vfm_dev_buf(in_of(d), 0, addr, size);
}

static int p_save_next(struct vfm_dev *d, uint64_t max, struct vfm_dev_seg *seg)
{
	return vfm_dev_save_next(in_of(d), max, seg);
}

static int p_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg)
{
	return vfm_dev_save_release(in_of(d), seg);
}

static int p_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len)
{
	return vfm_dev_load_commit(in_of(d), off, len);
}

static int p_describe(struct vfm_dev *d, struct vfm_desc *desc, char *why,
		      size_t whylen)
{
	return vfm_dev_describe(in_of(d), desc, why, whylen);
}

static int p_digest(struct vfm_dev *d, char hex[VFM_DIGEST_HEX])
{
	return vfm_dev_digest(in_of(d), hex);
}

static int p_reset(struct vfm_dev *d)
{
	return vfm_dev_reset(in_of(d));
}

static void p_close(struct vfm_dev *d)
{
	vfm_dev_close(in_of(d));
	free(d);
}

static const struct vfm_dev_ops proxy_ops = {
	.name = "proxy",
	.close = p_close,
	.get_state = p_get_state,
	.set_state = p_set_state,
	.precopy_info = p_precopy_info,
	.data_size = p_data_size,
	.buf = p_buf,
	.save_next = p_save_next,
	.save_release = p_save_release,
	.load_commit = p_load_commit,
	.describe = p_describe,
	.digest = p_digest,
	.reset = p_reset,
};

static struct vfm_dev *proxy(const char *spec, unsigned int id)
{
	struct proxy *p = calloc(1, sizeof(*p));
	char why[256];

	assert_non_null(p);
	assert_int_equal(vfm_dev_open(spec, &p->in, why, sizeof(why)), 0);
	p->hdr.ops = &proxy_ops;
	p->id = id;
	snprintf(p->hdr.spec, sizeof(p->hdr.spec), "%s", spec);
	return &p->hdr;
}

static struct vfm_dev *new_set(const char *const *specs, unsigned int n,
			       unsigned int id0)
{
	struct vfm_dev *m[VFM_SET_MAX], *set = NULL;

	for (unsigned int i = 0; i < n; i++)
		m[i] = proxy(specs[i], id0 + i);
	assert_int_equal(vfm_dev_set_new(m, n, true, &set), 0);
	assert_true(vfm_dev_is_set(set));
	assert_int_equal(vfm_dev_set_count(set), n);
	return set;
}

/* In trace[from..], the position of the first entry in @state (for @dev,
 * or any device with dev == ~0u), ntrace if none; @last: the last one. */
static unsigned int find(unsigned int from, unsigned int dev, uint32_t state,
			 bool last)
{
	unsigned int at = ntrace;

	for (unsigned int i = from; i < ntrace; i++)
		if (trace[i].state == state &&
		    (dev == ~0u || trace[i].dev == dev)) {
			at = i;
			if (!last)
				break;
		}
	return at;
}

/* Move the source set's stream into the destination set until @stop
 * bytes (0: to the end); returns the bytes moved. */
static uint64_t pump(struct vfm_dev *src, struct vfm_dev *dst, uint64_t stop,
		     uint8_t flip_at)
{
	void *sb, *db;
	size_t ss, ds;
	uint64_t moved = 0;

	assert_int_equal(vfm_dev_buf(src, 0, &sb, &ss), 0);
	assert_int_equal(vfm_dev_buf(dst, 0, &db, &ds), 0);
	for (;;) {
		struct vfm_dev_seg seg;
		int ret = vfm_dev_save_next(src, 1u << 20, &seg);

		if (ret == -ENOMSG || seg.eof)
			return moved;
		assert_int_equal(ret, 0);
		assert_true(seg.len <= ds);
		for (uint64_t done = 0; done < seg.len;) {
			uint64_t off = (seg.stream_pos + done) % ds;
			uint64_t c = ds - off < seg.len - done ? ds - off :
								 seg.len - done;

			memcpy((uint8_t *)db + off,
			       (uint8_t *)sb + seg.off + done, c);
			if (flip_at && seg.stream_pos + done == 0)
				((uint8_t *)db)[off + flip_at] ^= 1;
			ret = vfm_dev_load_commit(dst, off, c);
			if (ret)
				return ~0ull;
			done += c;
		}
		assert_int_equal(vfm_dev_save_release(src, &seg), 0);
		moved += seg.len;
		if (stop && moved >= stop)
			return moved;
	}
}

static const char *const src_specs[] = { "sim:size=4M,seed=11,dirty=2M",
					 "sim:size=2M,seed=13",
					 "sim:size=1M,seed=15,zero=50" };
static const char *const dst_specs[] = { "sim:size=4M,seed=21",
					 "sim:size=2M,seed=23",
					 "sim:size=1M,seed=25" };

/* Pre-copy, stop, final data, load, start: the P2P order holds on both
 * sides and every member arrives with its own digest. */
static void test_set_roundtrip_order(void **state)
{
	struct vfm_dev *src = new_set(src_specs, 3, 0);
	struct vfm_dev *dst = new_set(dst_specs, 3, 10);
	char sh[VFM_DIGEST_HEX], dh[VFM_DIGEST_HEX];
	unsigned int mark;

	(void)state;
	ntrace = 0;
	assert_int_equal(vfm_dev_set_state(dst, S(RESUMING)), 0);
	assert_int_equal(vfm_dev_set_state(src, S(PRE_COPY)), 0);
	assert_true(pump(src, dst, 0, 0) > 7u << 20);
	mark = ntrace;
	assert_int_equal(vfm_dev_set_state(src, S(STOP_COPY)), 0);
	/* every source in PRE_COPY_P2P before any in STOP_COPY */
	for (unsigned int i = 0; i < 3; i++)
		assert_true(find(mark, i, S(PRE_COPY_P2P), false) <
			    find(mark, ~0u, S(STOP_COPY), false));
	assert_true(find(mark, ~0u, S(PRE_COPY_P2P), true) <
		    find(mark, ~0u, S(STOP_COPY), false));
	pump(src, dst, 0, 0);
	assert_int_equal(vfm_dev_digest(src, sh), 0);
	assert_int_equal(vfm_dev_set_state(dst, S(STOP)), 0);
	assert_int_equal(vfm_dev_digest(dst, dh), 0);
	assert_string_equal(sh, dh);
	for (unsigned int i = 0; i < 3; i++) {
		assert_string_equal(vfm_dev_set_member_digest(src, i),
				    vfm_dev_set_member_digest(dst, i));
		for (unsigned int k = 0; k < i; k++)
			assert_string_not_equal(
				vfm_dev_set_member_digest(src, i),
				vfm_dev_set_member_digest(src, k));
	}
	mark = ntrace;
	assert_int_equal(vfm_dev_set_state(dst, S(RUNNING)), 0);
	/* every destination in RUNNING_P2P before any RUNNING */
	for (unsigned int i = 10; i < 13; i++)
		assert_true(find(mark, i, S(RUNNING_P2P), false) <
			    find(mark, ~0u, S(RUNNING), false));
	assert_true(find(mark, ~0u, S(RUNNING_P2P), true) <
		    find(mark, ~0u, S(RUNNING), false));
	for (unsigned int i = 0; i < 3; i++) {
		uint32_t st;

		assert_int_equal(
			vfm_dev_get_state(vfm_dev_set_member(dst, i), &st), 0);
		assert_int_equal(st, S(RUNNING));
	}
	vfm_dev_close(src);
	vfm_dev_close(dst);
}

/* A corrupt frame header, and a stream that ends before a member's end
 * frame: both refused. */
static void test_set_refuses_bad_streams(void **state)
{
	struct vfm_dev *src, *dst;

	(void)state;
	src = new_set(src_specs, 2, 0);
	dst = new_set(dst_specs, 2, 10);
	assert_int_equal(vfm_dev_set_state(dst, S(RESUMING)), 0);
	assert_int_equal(vfm_dev_set_state(src, S(STOP_COPY)), 0);
	/* byte 5: the member index of the first frame */
	assert_int_equal(pump(src, dst, 0, 5), ~0ull);
	vfm_dev_close(src);
	vfm_dev_close(dst);

	src = new_set(src_specs, 2, 0);
	dst = new_set(dst_specs, 2, 10);
	assert_int_equal(vfm_dev_set_state(dst, S(RESUMING)), 0);
	assert_int_equal(vfm_dev_set_state(src, S(STOP_COPY)), 0);
	assert_true(pump(src, dst, 3u << 20, 0) >= 3u << 20);
	assert_int_equal(vfm_dev_set_state(dst, S(STOP)), -EIO);
	assert_int_equal(vfm_dev_reset(dst), 0);
	vfm_dev_close(src);
	vfm_dev_close(dst);
}

/* A member that refuses STOP_COPY: the set fails, and going back to
 * RUNNING brings every member back. */
static void test_set_failure_recovers(void **state)
{
	struct vfm_dev *src = new_set(src_specs, 3, 0);

	(void)state;
	((struct proxy *)vfm_dev_set_member(src, 2))->fail_on = S(STOP_COPY);
	assert_int_equal(vfm_dev_set_state(src, S(PRE_COPY)), 0);
	assert_int_equal(vfm_dev_set_state(src, S(STOP_COPY)), -EIO);
	assert_int_equal(vfm_dev_set_state(src, S(RUNNING)), 0);
	for (unsigned int i = 0; i < 3; i++) {
		uint32_t st;

		assert_int_equal(
			vfm_dev_get_state(vfm_dev_set_member(src, i), &st), 0);
		assert_int_equal(st, S(RUNNING));
	}
	vfm_dev_close(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quiesce_table),
		cmocka_unit_test(test_set_roundtrip_order),
		cmocka_unit_test(test_set_refuses_bad_streams),
		cmocka_unit_test(test_set_failure_recovers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
