// SPDX-License-Identifier: MIT
/*
 * vfm_xport_buf_alloc() / vfm_xport_buf_reserve(): memory aligned to 2 MiB,
 * exactly as long as asked (rounded to pages: the slack of the mapping is
 * given back), zeroed, usable, and freed whole. Whether the kernel backs it
 * with huge pages is its choice (THP may be off); the test reads
 * /proc/self/smaps only to check that the mapping has the asked length and
 * carries the huge-page advice ("hg" in VmFlags), and /proc/self/statm
 * that a free leaves the process's mapped size as it found it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "vfm/transport.h"

#define HUGE (2ul << 20)

/* The smaps entry whose range starts at @p: its size and whether it has
 * the huge-page advice. false if there is none. */
static bool vma_at(const void *p, size_t *size, bool *hg)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false, found = false;

	assert_non_null(f);
	*size = 0;
	*hg = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			if (found)
				break;
			in = lo == (uintptr_t)p;
			if (in) {
				found = true;
				*size = hi - lo;
			}
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			*hg = strstr(line, " hg") != NULL;
		}
	}
	fclose(f);
	return found;
}

/* The process's mapped size in pages (/proc/self/statm): nothing may be
 * left behind by an allocation and its free. */
static unsigned long vm_pages(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long n = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu", &n), 1);
	fclose(f);
	return n;
}

static bool mapped(const void *p)
{
	unsigned char v;

	return mincore((void *)((uintptr_t)p & ~4095ul), 4096, &v) == 0 ||
	       errno != ENOMEM;
}

static void check(uint8_t *p, size_t len, size_t want)
{
	size_t size;
	bool hg;

	assert_non_null(p);
	assert_int_equal((uintptr_t)p % HUGE, 0);
	assert_true(vma_at(p, &size, &hg));
	/* Exactly the pages asked for: the mapping's slack was given back
	 * (no neighbour carries the huge-page advice to merge with). */
	assert_int_equal(size, want);
	assert_true(hg);
	for (size_t i = 0; i < len; i += 4096)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[len - 1], 0);
	memset(p, 0xa5, len);
	assert_int_equal(p[len - 1], 0xa5);
}

static void test_alloc(void **state)
{
	unsigned long before = vm_pages();
	size_t len = 3 * HUGE + 5 * 4096;
	uint8_t *p = vfm_xport_buf_alloc(len);

	(void)state;
	check(p, len, len);
	vfm_xport_buf_free(p, len);
	assert_int_equal(vm_pages(), before);
	assert_false(mapped(p));
	assert_false(mapped(p + len - 1));
}

/* A length that is not whole pages: rounded up, nothing left behind. */
static void test_odd_length(void **state)
{
	unsigned long before = vm_pages();
	size_t len = HUGE + 100;
	uint8_t *p = vfm_xport_buf_alloc(len);

	(void)state;
	check(p, len, HUGE + 4096);
	vfm_xport_buf_free(p, len);
	assert_int_equal(vm_pages(), before);
	assert_false(mapped(p));
	assert_false(mapped(p + HUGE));
}

static void test_reserve(void **state)
{
	unsigned long before = vm_pages();
	size_t len = 8 * HUGE;
	uint8_t *p = vfm_xport_buf_reserve(len);

	(void)state;
	check(p, len, len);
	vfm_xport_buf_free(p, len);
	assert_int_equal(vm_pages(), before);
	assert_false(mapped(p));
}

static void test_bad_length(void **state)
{
	(void)state;
	errno = 0;
	assert_null(vfm_xport_buf_alloc(0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(vfm_xport_buf_reserve(SIZE_MAX - 4096));
	assert_int_equal(errno, EINVAL);
	vfm_xport_buf_free(NULL, 123); /* a no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_odd_length),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_bad_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
