// SPDX-License-Identifier: MIT
/*
 * tcp data path on loopback: 64 MiB of patterned data in segments of
 * random sizes, posted in shuffled order over 1, 2 and 4 streams, each
 * with its own send/receive mode. Every byte of the landing buffer and
 * every completion (kind, stream, len, imm, wr_id) is checked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "xp_util.h"

#define TOTAL (64u << 20)
#define MAXSEG (1u << 20)

struct seg {
	uint64_t roff;
	uint32_t len;
	unsigned int stream;
	int seen_recv, seen_send;
};

struct plan {
	struct seg *segs; /* sorted by roff */
	unsigned int n;
	unsigned int *order; /* posting order */
};

static uint64_t imm_of(uint64_t roff)
{
	return (roff * 0x100000001b3ull) ^ 0x5a5a5a5a00000000ull;
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static void plan_make(struct plan *p, unsigned int streams, uint32_t seed)
{
	uint64_t off = 0;
	unsigned int i, cap = 1024;

	p->segs = calloc(cap, sizeof(*p->segs));
	p->n = 0;
	while (off < TOTAL) {
		uint32_t len = 1 + lcg(&seed) % MAXSEG;

		/* a few small and odd sizes, mostly large ones */
		if (lcg(&seed) % 4 == 0)
			len = 1 + lcg(&seed) % 4099;
		if (len > TOTAL - off)
			len = (uint32_t)(TOTAL - off);
		if (p->n == cap) {
			cap *= 2;
			p->segs = realloc(p->segs, cap * sizeof(*p->segs));
		}
		p->segs[p->n] = (struct seg){ .roff = off, .len = len };
		off += len;
		p->n++;
	}
	p->order = calloc(p->n, sizeof(*p->order));
	for (i = 0; i < p->n; i++)
		p->order[i] = i;
	for (i = p->n - 1; i > 0; i--) {
		unsigned int j = lcg(&seed) % (i + 1), t = p->order[i];

		p->order[i] = p->order[j];
		p->order[j] = t;
	}
	for (i = 0; i < p->n; i++)
		p->segs[p->order[i]].stream = i % streams;
}

static struct seg *plan_find(struct plan *p, uint64_t roff)
{
	unsigned int lo = 0, hi = p->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (p->segs[mid].roff == roff)
			return &p->segs[mid];
		if (p->segs[mid].roff < roff)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int check_recv(struct xp_dst *d, const struct vfm_cqe *c)
{
	struct seg *s = plan_find(d->priv, c->roff);

	if (!s || s->len != c->len || c->imm != imm_of(c->roff) ||
	    c->stream != s->stream || s->seen_recv++)
		return -EBADMSG;
	return 0;
}

static void run(unsigned int streams, const char *smode, const char *rmode,
		uint32_t seed)
{
	struct xp_dst d = { .cfg = { .streams = streams,
				     .max_write = MAXSEG,
				     .depth = 4,
				     .timeout_ms = 10000 } };
	struct vfm_xport_cfg cfg = d.cfg;
	struct vfm_xport *x;
	struct vfm_mr mr;
	struct plan p;
	uint8_t *src;
	unsigned int *next, i, done = 0, posted = 0;
	int err;

	setenv("VFM_TCP_SEND", smode, 1);
	setenv("VFM_TCP_RECV", rmode, 1);
	plan_make(&p, streams, seed);
	/* The source holds each segment at the mirrored offset: loff != roff. */
	src = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	d.land = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(src != MAP_FAILED && d.land != MAP_FAILED);
	for (i = 0; i < p.n; i++)
		xp_fill(src + TOTAL - p.segs[i].roff - p.segs[i].len,
			p.segs[i].len, p.segs[i].roff);
	d.land_len = TOTAL;
	d.want = TOTAL;
	d.check = check_recv;
	d.priv = &p;
	xp_dst_start(&d);
	assert_int_equal(d.err, 0);

	assert_int_equal(vfm_xport_find("tcp")->create(&x, &cfg), 0);
	assert_int_equal(vfm_xport_reg(x, src, TOTAL, &mr), 0);
	assert_int_equal(vfm_xport_connect(x, "127.0.0.1", &d.info, 5000), 0);

	/* next[s]: index in p.order of the next segment for stream s */
	next = calloc(streams, sizeof(*next));
	for (i = 0; i < streams; i++)
		next[i] = i;
	while (done < p.n) {
		struct vfm_cqe c[16];
		int n, k;

		for (i = 0; i < streams; i++) {
			while (next[i] < p.n) {
				struct seg *s = &p.segs[p.order[next[i]]];

				err = vfm_xport_write(x, i, &mr,
						      TOTAL - s->roff - s->len,
						      s->roff, s->len,
						      imm_of(s->roff),
						      p.order[next[i]]);
				if (err == -EAGAIN)
					break;
				assert_int_equal(err, 0);
				next[i] += streams;
				posted++;
			}
		}
		n = vfm_xport_poll(x, c, 16, 10000);
		assert_true(n > 0);
		for (k = 0; k < n; k++) {
			struct seg *s;

			assert_int_equal(c[k].kind, VFM_CQE_SEND);
			assert_int_equal(c[k].status, 0);
			assert_true(c[k].wr_id < p.n);
			s = &p.segs[c[k].wr_id];
			assert_int_equal(c[k].stream, s->stream);
			assert_int_equal(s->seen_send++, 0);
			done++;
		}
	}
	assert_int_equal(posted, p.n);
	/* The source leaves as soon as its writes have left: every byte
	 * still in flight must land before the destination sees the close. */
	vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	xp_dst_finish(&d);
	assert_int_equal(d.err, 0);
	assert_true(d.bytes == TOTAL);
	assert_true(d.recvs == p.n);
	for (i = 0; i < p.n; i++)
		assert_int_equal(p.segs[i].seen_recv, 1);
	/* every byte */
	for (i = 0; i < TOTAL; i++)
		if (d.land[i] != xp_pattern(i))
			fail_msg("landing byte %u is wrong", i);
	munmap(src, TOTAL);
	munmap(d.land, TOTAL);
	free(next);
	free(p.segs);
	free(p.order);
}

static void test_1_stream(void **state)
{
	(void)state;
	run(1, "send", "recv", 1);
}

static void test_2_streams(void **state)
{
	(void)state;
	run(2, "send", "recv", 2);
}

static void test_4_streams(void **state)
{
	(void)state;
	run(4, "send", "recv", 3);
}

static void test_2_streams_zerocopy(void **state)
{
	(void)state;
	run(2, "zc", "recv", 4);
}

static void test_4_streams_fixed(void **state)
{
	(void)state;
	run(4, "write_fixed", "read_fixed", 5);
}

static void test_1_stream_zc_read_fixed(void **state)
{
	(void)state;
	run(1, "zc", "read_fixed", 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_1_stream),
		cmocka_unit_test(test_2_streams),
		cmocka_unit_test(test_4_streams),
		cmocka_unit_test(test_2_streams_zerocopy),
		cmocka_unit_test(test_4_streams_fixed),
		cmocka_unit_test(test_1_stream_zc_read_fixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
