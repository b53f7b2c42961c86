// SPDX-License-Identifier: MIT
/*
 * The sim device: its FSM, pre-copy numbers, exact dirty tracking, and the
 * stream: sim -> sim round trips through segments and read()/write(), a
 * corrupt byte refused, an incompatible header refused; stream format 2:
 * a sparse state as ZERO records, corrupt ZERO records refused, and the
 * format the handshake picks for old and new destinations.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "crc32c.h"
#include "dev.h"
#include "dev_sim.h"
#include "stream.h"
#include "vfm/compat.h"

#define S(x) VFIO_DEVICE_STATE_##x

static struct vfm_dev *open_sim(const char *spec)
{
	struct vfm_dev *d = NULL;
	char why[256];

	assert_int_equal(vfm_dev_open(spec, &d, why, sizeof(why)), 0);
	return d;
}

static uint32_t state_of(struct vfm_dev *d)
{
	uint32_t s;

	assert_int_equal(vfm_dev_get_state(d, &s), 0);
	return s;
}

static void test_fsm(void **state)
{
	struct vfm_dev *d = open_sim("sim:size=4M,seed=1");
	static const uint32_t all[] = { S(STOP),      S(RUNNING),
					S(STOP_COPY), S(RUNNING_P2P),
					S(PRE_COPY),  S(PRE_COPY_P2P) };

	assert_int_equal(state_of(d), S(RUNNING));
	/* every state reachable from RUNNING and back */
	for (unsigned int i = 0; i < 6; i++) {
		assert_int_equal(vfm_dev_set_state(d, all[i]), 0);
		assert_int_equal(state_of(d), all[i]);
		assert_int_equal(vfm_dev_set_state(d, S(RUNNING)), 0);
	}
	/* RESUMING->STOP without a stream fails, leaves ERROR; reset recovers */
	assert_int_equal(vfm_dev_set_state(d, S(RESUMING)), 0);
	assert_int_equal(vfm_dev_set_state(d, S(STOP)), -EINVAL);
	assert_int_equal(state_of(d), S(ERROR));
	assert_int_equal(vfm_dev_set_state(d, S(RUNNING)), -EINVAL);
	assert_int_equal(vfm_dev_reset(d), 0);
	assert_int_equal(state_of(d), S(RUNNING));
	assert_int_equal(vfm_dev_set_state(d, S(ERROR)), -EINVAL);
	/* precopy info only in PRE_COPY states */
	{
		uint64_t i, dd;

		assert_int_equal(vfm_dev_precopy_info(d, &i, &dd), -EINVAL);
	}
	vfm_dev_close(d);
}

/* Read the whole available pre-copy data with read(). */
static uint64_t drain_read(struct vfm_dev *d, uint8_t *out, size_t cap)
{
	uint64_t total = 0;

	for (;;) {
		ssize_t n = vfm_dev_read(
			d, out ? out + total : (uint8_t[65536]){ 0 },
			out ? cap - total : 65536);

		if (n == -ENOMSG || n == 0)
			return total;
		assert_true(n > 0);
		total += (uint64_t)n;
	}
}

static void test_precopy_numbers_and_dirty(void **state)
{
	struct vfm_dev *d = open_sim("sim:size=4M,seed=2");
	uint64_t init, dirty;
	uint8_t page[4096];
	size_t cap = 8u << 20;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	memset(page, 0xab, sizeof(page));
	assert_int_equal(vfm_dev_set_state(d, S(PRE_COPY)), 0);
	assert_int_equal(vfm_dev_precopy_info(d, &init, &dirty), 0);
	assert_int_equal(init, 512 + (4u << 20));
	assert_int_equal(dirty, 0);
	/* writes before a page is sent do not count as dirty */
	assert_int_equal(vfm_sim_poke(d, 0, page, 100), 0);
	assert_int_equal(vfm_dev_precopy_info(d, &init, &dirty), 0);
	assert_int_equal(dirty, 0);
	/* read a little: initial_bytes falls by what was read */
	assert_int_equal(vfm_dev_read(d, buf, 512), 512);
	assert_int_equal(vfm_dev_precopy_info(d, &init, &dirty), 0);
	assert_int_equal(init, 4u << 20);
	assert_true(drain_read(d, buf, cap) > (4u << 20));
	assert_int_equal(vfm_dev_precopy_info(d, &init, &dirty), 0);
	assert_int_equal(init, 0);
	assert_int_equal(dirty, 0);
	assert_int_equal(vfm_dev_read(d, buf, 4096), -ENOMSG);
	/* three distinct pages written, one of them twice, one spanning two */
	assert_int_equal(vfm_sim_poke(d, 4096 * 3, page, 10), 0);
	assert_int_equal(vfm_sim_poke(d, 4096 * 3 + 50, page, 10), 0);
	assert_int_equal(vfm_sim_poke(d, 4096 * 10 - 1, page, 2), 0);
	assert_int_equal(vfm_dev_precopy_info(d, &init, &dirty), 0);
	assert_int_equal(dirty, 3 * 4096);
	/* exactly those pages come again */
	{
		uint64_t n = drain_read(d, buf, cap);

		/* pages 3 and 9,10 -> two records (3) (9..10) */
		assert_int_equal(n, 2 * 24 + 3 * 4096);
	}
	assert_int_equal(vfm_dev_precopy_info(d, &init, &dirty), 0);
	assert_int_equal(dirty, 0);
	/* back to RUNNING: nothing changed in the device's content */
	assert_int_equal(vfm_dev_set_state(d, S(RUNNING)), 0);
	free(buf);
	vfm_dev_close(d);
}

/* Move the whole state from @a to @b: pre-copy through segments while
 * poking @a, then STOP_COPY; the destination consumes with load_commit
 * (segments) or write() in odd pieces. */
static int migrate(struct vfm_dev *a, struct vfm_dev *b, bool use_write,
		   long corrupt_at)
{
	void *sbuf, *dbuf;
	size_t ssize, dsize;
	uint64_t sent = 0;
	uint8_t junk[64];
	int ret, rounds = 0;

	memset(junk, 0x5c, sizeof(junk));
	assert_int_equal(vfm_dev_set_state(a, S(PRE_COPY)), 0);
	assert_int_equal(vfm_dev_set_state(b, S(RESUMING)), 0);
	assert_int_equal(vfm_dev_buf(a, 0, &sbuf, &ssize), 0);
	assert_int_equal(vfm_dev_buf(b, 0, &dbuf, &dsize), 0);
	for (;;) {
		struct vfm_dev_seg seg;

		ret = vfm_dev_save_next(a, 300000 + (uint64_t)rounds * 777,
					&seg);
		if (ret == -ENOMSG) {
			uint32_t st = state_of(a);

			if (st == S(PRE_COPY) && rounds < 3) {
				vfm_sim_poke(a,
					     4096 * (uint64_t)(rounds * 5 + 1),
					     junk, sizeof(junk));
				rounds++;
				continue;
			}
			assert_int_equal(vfm_dev_set_state(a, S(STOP_COPY)), 0);
			continue;
		}
		assert_int_equal(ret, 0);
		if (seg.eof)
			break;
		assert_int_equal(seg.stream_pos, sent);
		if (corrupt_at >= 0 && (uint64_t)corrupt_at >= sent &&
		    (uint64_t)corrupt_at < sent + seg.len)
			((uint8_t *)
				 sbuf)[seg.off + (uint64_t)corrupt_at - sent] ^=
				0x01;
		if (use_write) {
			uint64_t o = 0;

			while (o < seg.len) {
				uint64_t n = seg.len - o < 1000 ? seg.len - o :
								  1000;
				ssize_t w = vfm_dev_write(
					b, (uint8_t *)sbuf + seg.off + o, n);

				if (w < 0)
					return (int)w;
				o += n;
			}
		} else {
			assert_true(seg.len <= dsize);
			memcpy(dbuf, (uint8_t *)sbuf + seg.off, seg.len);
			ret = vfm_dev_load_commit(b, 0, seg.len);
			if (ret)
				return ret;
		}
		sent += seg.len;
		assert_int_equal(vfm_dev_save_release(a, &seg), 0);
	}
	assert_int_equal(vfm_dev_set_state(a, S(STOP)), 0);
	return vfm_dev_set_state(b, S(STOP));
}

static void test_roundtrip(void **state)
{
	for (int w = 0; w < 2; w++) {
		struct vfm_dev *a = open_sim("sim:size=8M,seed=3");
		struct vfm_dev *b = open_sim("sim:size=8M,seed=4");
		char da[VFM_DIGEST_HEX], db[VFM_DIGEST_HEX];

		assert_int_equal(migrate(a, b, w, -1), 0);
		assert_int_equal(vfm_dev_digest(a, da), 0);
		assert_int_equal(vfm_dev_digest(b, db), 0);
		assert_string_equal(da, db);
		assert_int_equal(state_of(b), S(STOP));
		assert_int_equal(vfm_dev_set_state(b, S(RUNNING)), 0);
		vfm_dev_close(a);
		vfm_dev_close(b);
	}
}

static void test_fallback_roundtrip(void **state)
{
	/* Without the migration buffer (mmap=off) the segment interface is
	 * built on read()/write() with a caller-side ring. */
	struct vfm_dev *a = open_sim("sim:size=8M,seed=13,mmap=off");
	struct vfm_dev *b = open_sim("sim:size=8M,seed=14,mmap=off");
	char da[VFM_DIGEST_HEX], db[VFM_DIGEST_HEX];

	assert_int_equal(migrate(a, b, false, -1), 0);
	assert_non_null(a->fb_buf);
	assert_int_equal(vfm_dev_digest(a, da), 0);
	assert_int_equal(vfm_dev_digest(b, db), 0);
	assert_string_equal(da, db);
	vfm_dev_close(a);
	vfm_dev_close(b);
}

static void test_bounce_path(void **state)
{
	/* mmap=off: every read() is at most 1 MiB (QEMU's bounce buffer),
	 * and a landed range larger than that is written in 1 MiB pieces. */
	struct vfm_dev *a = open_sim("sim:size=8M,seed=15,mmap=off");
	struct vfm_dev *b = open_sim("sim:size=8M,seed=16,mmap=off");
	char da[VFM_DIGEST_HEX], db[VFM_DIGEST_HEX];
	uint64_t pend = 0, most = 0, sent = 0;
	void *sbuf, *dbuf;
	size_t ssize, dsize;

	assert_int_equal(vfm_dev_set_state(a, S(PRE_COPY)), 0);
	assert_int_equal(vfm_dev_set_state(b, S(RESUMING)), 0);
	assert_int_equal(vfm_dev_buf(a, 0, &sbuf, &ssize), 0);
	assert_int_equal(vfm_dev_buf(b, 0, &dbuf, &dsize), 0);
	assert_non_null(a->fb_bounce);
	for (;;) {
		struct vfm_dev_seg seg;
		int ret = vfm_dev_save_next(a, 0, &seg);

		if (ret == -ENOMSG) {
			assert_int_equal(state_of(a), S(PRE_COPY));
			assert_int_equal(vfm_dev_set_state(a, S(STOP_COPY)), 0);
			continue;
		}
		assert_int_equal(ret, 0);
		if (seg.eof)
			break;
		assert_int_equal(seg.stream_pos, sent);
		assert_true(seg.len > 0 && seg.len <= VFM_DEV_BOUNCE);
		most = seg.len > most ? seg.len : most;
		assert_true(pend + seg.len <= dsize);
		memcpy((uint8_t *)dbuf + pend, (uint8_t *)sbuf + seg.off,
		       seg.len);
		pend += seg.len;
		sent += seg.len;
		assert_int_equal(vfm_dev_save_release(a, &seg), 0);
		if (pend >= (3u << 20) + 12345) {
			assert_int_equal(vfm_dev_load_commit(b, 0, pend), 0);
			pend = 0;
		}
	}
	if (pend)
		assert_int_equal(vfm_dev_load_commit(b, 0, pend), 0);
	/* whole records: a read() may stop short of the 1 MiB */
	assert_true(most > VFM_DEV_BOUNCE - (64u << 10));
	assert_true(sent > (8u << 20));
	assert_int_equal(vfm_dev_set_state(a, S(STOP)), 0);
	assert_int_equal(vfm_dev_set_state(b, S(STOP)), 0);
	assert_int_equal(vfm_dev_digest(a, da), 0);
	assert_int_equal(vfm_dev_digest(b, db), 0);
	assert_string_equal(da, db);
	vfm_dev_close(a);
	vfm_dev_close(b);
}

static void test_workload_roundtrip(void **state)
{
	/* With the workload on during pre-copy: the state at stop arrives. */
	struct vfm_dev *a = open_sim("sim:size=16M,dirty=64M,seed=5");
	struct vfm_dev *b = open_sim("sim:size=16M,seed=6");
	char da[VFM_DIGEST_HEX], db[VFM_DIGEST_HEX], da2[VFM_DIGEST_HEX];

	assert_int_equal(migrate(a, b, false, -1), 0);
	assert_int_equal(vfm_dev_digest(a, da), 0);
	assert_int_equal(vfm_dev_digest(b, db), 0);
	assert_string_equal(da, db);
	/* a stopped device never changes */
	assert_int_equal(vfm_dev_digest(a, da2), 0);
	assert_string_equal(da, da2);
	vfm_dev_close(a);
	vfm_dev_close(b);
}

/*
 * The cause of the "silent corruption" report: a destination whose own
 * workload is on changes its state as soon as it runs, so a digest taken
 * after RUNNING is not the migrated state. Taken while the destination is
 * stopped (RESUMING->STOP), it equals the source's; a few workload ticks
 * after RUNNING it does not. The engine compares the stopped digests,
 * before the destination runs.
 */
static void test_destination_digest_moment(void **state)
{
	struct vfm_dev *a = open_sim("sim:size=8M,dirty=200M,seed=7");
	struct vfm_dev *b = open_sim("sim:size=8M,dirty=200M,seed=8");
	char da[VFM_DIGEST_HEX], db[VFM_DIGEST_HEX], later[VFM_DIGEST_HEX];
	struct timespec ts = { .tv_nsec = 30 * 1000 * 1000 };

	assert_int_equal(migrate(a, b, false, -1), 0);
	assert_int_equal(state_of(b), S(STOP));
	assert_int_equal(vfm_dev_digest(a, da), 0);
	assert_int_equal(vfm_dev_digest(b, db), 0);
	assert_string_equal(da, db);
	/* a stopped destination does not change either */
	nanosleep(&ts, NULL);
	assert_int_equal(vfm_dev_digest(b, later), 0);
	assert_string_equal(db, later);
	/* running, its workload writes within one 5 ms tick */
	assert_int_equal(vfm_dev_set_state(b, S(RUNNING)), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(vfm_dev_digest(b, later), 0);
	assert_string_not_equal(db, later);
	vfm_dev_close(a);
	vfm_dev_close(b);
}

static void test_corrupt_refused(void **state)
{
	long spots[] = { 3, 600, 512 + 24 + 4096 * 3 + 7 };

	for (unsigned int i = 0; i < 3; i++) {
		struct vfm_dev *a = open_sim("sim:size=4M,seed=7");
		struct vfm_dev *b = open_sim("sim:size=4M,seed=8");
		char before[VFM_DIGEST_HEX], after[VFM_DIGEST_HEX];

		assert_int_equal(vfm_dev_digest(b, before), 0);
		assert_int_equal(migrate(a, b, i == 1, spots[i]), -EINVAL);
		assert_int_not_equal(state_of(b), S(RUNNING));
		assert_int_equal(vfm_dev_reset(b), 0);
		assert_int_equal(vfm_dev_digest(b, after), 0);
		assert_string_equal(before,
				    after); /* never ran with that state */
		vfm_dev_close(a);
		vfm_dev_close(b);
	}
}

static void test_incompatible_header(void **state)
{
	const char *dst[] = { "sim:size=4M,model=other",
			      "sim:size=4M,compatible=2.1.0-", "sim:size=8M" };

	for (unsigned int i = 0; i < 3; i++) {
		struct vfm_dev *a = open_sim("sim:size=4M");
		struct vfm_dev *b = open_sim(dst[i]);
		uint8_t hdr[512];

		assert_int_equal(vfm_dev_set_state(a, S(PRE_COPY)), 0);
		assert_int_equal(vfm_dev_read(a, hdr, sizeof(hdr)), 512);
		assert_int_equal(vfm_dev_set_state(b, S(RESUMING)), 0);
		/* refused on the header itself */
		assert_int_equal(vfm_dev_write(b, hdr, sizeof(hdr)), -EINVAL);
		assert_true(strlen(vfm_sim_load_error(b)) > 0);
		assert_int_equal(vfm_dev_set_state(b, S(STOP)), -EINVAL);
		vfm_dev_close(a);
		vfm_dev_close(b);
	}
}

static void test_data_size_and_eof(void **state)
{
	struct vfm_dev *a = open_sim("sim:size=4M,seed=9");
	uint64_t est, total = 0;
	uint8_t *buf = malloc(8u << 20);

	assert_int_equal(vfm_dev_data_size(a, &est), 0);
	assert_int_equal(vfm_dev_set_state(a, S(STOP_COPY)), 0);
	for (;;) {
		ssize_t n = vfm_dev_read(a, buf + total, (8u << 20) - total);

		assert_true(n >= 0);
		if (!n)
			break;
		total += (uint64_t)n;
	}
	assert_int_equal(est, total);
	assert_int_equal(vfm_dev_read(a, buf, 10), 0);
	free(buf);
	vfm_dev_close(a);
}

/* Pages of @d's memory that are all zero. */
static uint64_t zero_pages(struct vfm_dev *d)
{
	struct vfm_sim *s = to_sim(d);
	uint64_t n = 0;

	for (uint64_t p = 0; p < s->pages; p++)
		n += vfm_sim_is_zero(s->mem + p * 4096, 4096);
	return n;
}

/* The whole STOP_COPY stream of @d (format @format) with read(). */
static uint64_t stop_copy_stream(struct vfm_dev *d, unsigned int format,
				 uint8_t *buf, size_t cap)
{
	uint64_t total = 0;

	assert_int_equal(vfm_dev_set_stream_format(d, format), 0);
	assert_int_equal(vfm_dev_set_state(d, S(STOP_COPY)), 0);
	for (;;) {
		ssize_t n = vfm_dev_read(d, buf + total, cap - total);

		assert_true(n >= 0);
		if (!n)
			break;
		total += (uint64_t)n;
	}
	return total;
}

/* Offset of the first record of @type in a stream, or 0. */
static uint64_t find_record(const uint8_t *buf, uint64_t len, uint32_t type)
{
	uint64_t o = 512;

	while (o + 24 <= len) {
		struct vfm_rec r;
		char why[128];

		assert_int_equal(
			vfm_rec_hdr_decode(buf + o, &r, why, sizeof(why)), 0);
		if (r.type == type)
			return o;
		o += 24 + r.len;
	}
	return 0;
}

static void test_sparse_roundtrip(void **state)
{
	for (int w = 0; w < 2; w++) {
		struct vfm_dev *a = open_sim("sim:size=8M,seed=21,zero=90");
		struct vfm_dev *b = open_sim("sim:size=8M,seed=22");
		char da[VFM_DIGEST_HEX], db[VFM_DIGEST_HEX];
		uint64_t z = zero_pages(a), nz = 2048 - z, init, dirty;
		uint8_t page[4096], *buf = malloc(16u << 20);
		uint64_t got;

		assert_non_null(buf);
		/* about 90% zero pages, every one of them known as such */
		assert_true(z > 2048 * 85 / 100 && z < 2048 * 95 / 100);
		assert_int_equal(vfm_dev_set_stream_format(a, 2), 0);
		assert_int_equal(vfm_dev_set_state(a, S(PRE_COPY)), 0);
		/* exact: payload of the data pages, a record per zero page */
		assert_int_equal(vfm_dev_precopy_info(a, &init, &dirty), 0);
		assert_int_equal(init, 512 + nz * 4096 + z * 24);
		assert_int_equal(vfm_dev_set_stream_format(a, 1), -EBUSY);
		got = drain_read(a, buf, 16u << 20);
		assert_int_equal(vfm_dev_precopy_info(a, &init, &dirty), 0);
		assert_int_equal(init, 0);
		/* the wire: the data pages plus record headers, no more */
		assert_true(got <= 512 + nz * 4096 + 2048 * 24);
		assert_true(got < (8u << 20) / 9);
		assert_int_equal(((const struct vfmig_stream_hdr *)buf)->format,
				 2);
		/* a data page zeroed: dirty as one ZERO record; a zero page
		 * written: dirty as a page of data */
		memset(page, 0, sizeof(page));
		for (uint64_t p = 0; p < 2048; p++) {
			bool zp = vfm_sim_is_zero(to_sim(a)->mem + p * 4096,
						  4096);

			if (!zp && !(dirty & 1)) {
				assert_int_equal(vfm_sim_poke(a, p * 4096, page,
							      4096),
						 0);
				dirty |= 1;
			} else if (zp && !(dirty & 2)) {
				page[7] = 1;
				assert_int_equal(
					vfm_sim_poke(a, p * 4096, page, 8), 0);
				page[7] = 0;
				dirty |= 2;
			}
		}
		assert_int_equal(vfm_dev_precopy_info(a, &init, &dirty), 0);
		assert_int_equal(dirty, 24 + 4096);
		assert_int_equal(drain_read(a, buf, 16u << 20), 24 + 24 + 4096);
		assert_int_equal(vfm_dev_set_state(a, S(RUNNING)), 0);
		/* a whole migration, pokes and all, through both load paths */
		assert_int_equal(vfm_dev_set_stream_format(a, 2), 0);
		assert_int_equal(migrate(a, b, w, -1), 0);
		assert_int_equal(vfm_dev_digest(a, da), 0);
		assert_int_equal(vfm_dev_digest(b, db), 0);
		assert_string_equal(da, db);
		/* the destination knows its zero pages: it sends them small */
		assert_int_equal(vfm_dev_set_state(b, S(RUNNING)), 0);
		assert_int_equal(vfm_dev_set_stream_format(b, 2), 0);
		assert_int_equal(vfm_dev_set_state(b, S(PRE_COPY)), 0);
		assert_int_equal(vfm_dev_precopy_info(b, &init, &dirty), 0);
		assert_int_equal(init, 512 + (2048 - zero_pages(b)) * 4096 +
					       zero_pages(b) * 24);
		free(buf);
		vfm_dev_close(a);
		vfm_dev_close(b);
	}
}

/* Feed @len bytes of @buf to a fresh destination: its write() result. */
static int load_stream(const char *spec, const uint8_t *buf, uint64_t len)
{
	struct vfm_dev *b = open_sim(spec);
	ssize_t w;
	int ret;

	assert_int_equal(vfm_dev_set_state(b, S(RESUMING)), 0);
	w = vfm_dev_write(b, buf, len);
	ret = w < 0 ? (int)w : vfm_dev_set_state(b, S(STOP));
	if (ret)
		assert_true(strlen(vfm_sim_load_error(b)) > 0);
	vfm_dev_close(b);
	return ret;
}

static void test_zero_record_corrupt(void **state)
{
	struct vfm_dev *a = open_sim("sim:size=4M,seed=23,zero=90");
	size_t cap = 8u << 20;
	uint8_t *buf = malloc(cap), *bad = malloc(cap);
	uint64_t len, zo;
	struct vfm_rec r = { .type = VFMIG_REC_ZERO };

	assert_non_null(buf);
	assert_non_null(bad);
	len = stop_copy_stream(a, 2, buf, cap);
	zo = find_record(buf, len, VFMIG_REC_ZERO);
	assert_true(zo > 0);
	/* intact: loads */
	assert_int_equal(load_stream("sim:size=4M", buf, len), 0);
	/* a flipped offset bit: the record header's CRC */
	memcpy(bad, buf, len);
	bad[zo + 9] ^= 0x10;
	assert_int_equal(load_stream("sim:size=4M", bad, len), -EINVAL);
	/* well-formed headers that lie: outside memory, unaligned, with a
	 * payload CRC */
	for (int i = 0; i < 3; i++) {
		memcpy(bad, buf, len);
		r.offset = i == 0 ? 4u << 20 : i == 1 ? 4096 + 512 : 0;
		r.data_crc = i == 2 ? 1 : 0;
		vfm_rec_hdr_encode(&r, bad + zo);
		assert_int_equal(load_stream("sim:size=4M", bad, len), -EINVAL);
	}
	/* a ZERO record in a stream whose header says format 1 */
	memcpy(bad, buf, len);
	{
		struct vfmig_stream_hdr *h = (struct vfmig_stream_hdr *)bad;

		h->format = 1;
		h->hdr_crc = vfm_crc32c(0, h, offsetof(typeof(*h), hdr_crc));
	}
	assert_int_equal(load_stream("sim:size=4M", bad, len), -EINVAL);
	/* a destination that loads format 1 only refuses the header */
	assert_int_equal(load_stream("sim:size=4M,formats=1", buf, 512),
			 -EINVAL);
	free(buf);
	free(bad);
	vfm_dev_close(a);
}

static void test_format_negotiation(void **state)
{
	struct vfm_dev *src = open_sim("sim:size=4M,seed=24,zero=50");
	struct vfm_dev *old = open_sim("sim:size=4M,formats=1");
	struct vfm_dev *cur = open_sim("sim:size=4M");
	struct vfm_desc ds, dold, dcur, legacy;
	struct vfm_verdict v;
	char why[64];
	size_t cap = 8u << 20;
	uint8_t *buf = malloc(cap);
	uint64_t len;

	assert_non_null(buf);
	assert_int_equal(vfm_dev_describe(src, &ds, why, sizeof(why)), 0);
	assert_int_equal(vfm_dev_describe(old, &dold, why, sizeof(why)), 0);
	assert_int_equal(vfm_dev_describe(cur, &dcur, why, sizeof(why)), 0);
	/* a driver that predates the field states nothing: format 1 */
	legacy = dcur;
	legacy.stream_formats = 0;
	assert_int_equal(vfm_stream_format_pick(&ds, &dcur), 2);
	assert_int_equal(vfm_stream_format_pick(&ds, &dold), 1);
	assert_int_equal(vfm_stream_format_pick(&ds, &legacy), 1);
	assert_int_equal(vfm_stream_format_pick(&legacy, &dcur), 1);
	/* the destination's verdict says which one, and accepts both */
	assert_int_equal(vfm_compat_eval(&ds, &dold, &v), 0);
	assert_true(v.accept);
	assert_int_equal(v.r[v.nresults - 1].code,
			 VFM_COMPAT_STREAM_FORMAT_COMMON);
	assert_non_null(
		strstr(v.r[v.nresults - 1].sentence, "stream format 1"));
	assert_int_equal(vfm_compat_eval(&ds, &dcur, &v), 0);
	assert_true(v.accept);
	assert_non_null(
		strstr(v.r[v.nresults - 1].sentence, "stream format 2"));
	/* an old destination gets format 1 and loads it */
	assert_int_equal(vfm_dev_set_stream_format(old, 2), -EINVAL);
	len = stop_copy_stream(src, vfm_stream_format_pick(&ds, &dold), buf,
			       cap);
	assert_int_equal(((const struct vfmig_stream_hdr *)buf)->format, 1);
	assert_int_equal(find_record(buf, len, VFMIG_REC_ZERO), 0);
	assert_true(len > 4u << 20);
	assert_int_equal(load_stream("sim:size=4M,formats=1", buf, len), 0);
	/* a new destination loads an old-format stream too */
	assert_int_equal(load_stream("sim:size=4M", buf, len), 0);
	free(buf);
	vfm_dev_close(src);
	vfm_dev_close(old);
	vfm_dev_close(cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fsm),
		cmocka_unit_test(test_precopy_numbers_and_dirty),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_fallback_roundtrip),
		cmocka_unit_test(test_bounce_path),
		cmocka_unit_test(test_workload_roundtrip),
		cmocka_unit_test(test_destination_digest_moment),
		cmocka_unit_test(test_corrupt_refused),
		cmocka_unit_test(test_incompatible_header),
		cmocka_unit_test(test_data_size_and_eof),
		cmocka_unit_test(test_sparse_roundtrip),
		cmocka_unit_test(test_zero_record_corrupt),
		cmocka_unit_test(test_format_negotiation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
