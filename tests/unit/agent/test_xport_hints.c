// SPDX-License-Identifier: MIT
/*
 * The operator's sentence for an RDMA registration that runs out of locked
 * memory: the transport leaves it (vfm_xport_take_hint), the agent's error
 * line carries it to the JSON log and to stderr.
 *
 * The process drops CAP_IPC_LOCK (which lifts the limit for root) and sets
 * RLIMIT_MEMLOCK to 1 MiB, as a unit with a low LimitMEMLOCK= would. The
 * registration check runs before any RDMA device is touched, so this runs
 * on any host.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "vfm/transport.h"

#define MIB (1024UL * 1024UL)

static char dir[] = "/tmp/vfm-test-hints.XXXXXX";

/* Lose CAP_IPC_LOCK and lower the memlock limit to 1 MiB. */
static int setup(void **state)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	struct rlimit rl = { MIB, MIB };

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	if (syscall(SYS_capget, &h, d))
		return -1;
	d[0].effective &= ~(1u << CAP_IPC_LOCK);
	d[0].permitted &= ~(1u << CAP_IPC_LOCK);
	if (syscall(SYS_capset, &h, d))
		return -1;
	return setrlimit(RLIMIT_MEMLOCK, &rl);
}

static int teardown(void **state)
{
	char p[96];

	(void)state;
	snprintf(p, sizeof(p), "%s/log.jsonl", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/stderr", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

/* Register @len bytes with a fresh rdma transport; its return value. */
static int reg(size_t len)
{
	struct vfm_xport_cfg cfg = { .streams = 1 };
	struct vfm_xport *x = NULL;
	struct vfm_mr mr;
	void *buf = malloc(len); /* never touched: no memory used */
	int ret;

	assert_non_null(buf);
	assert_int_equal(vfm_xport_rdma_ops.create(&x, &cfg), 0);
	ret = vfm_xport_reg(x, buf, len, &mr);
	if (!ret)
		vfm_xport_dereg(x, &mr);
	vfm_xport_destroy(x);
	free(buf);
	return ret;
}

static void test_memlock_hint(void **state)
{
	const char *hint;

	(void)state;
	assert_null(vfm_xport_take_hint());
	/* Within the limit: no failure, no hint. */
	assert_int_equal(reg(MIB / 2), 0);
	assert_null(vfm_xport_take_hint());

	assert_int_equal(reg(64 * MIB), -ENOMEM);
	hint = vfm_xport_take_hint();
	assert_non_null(hint);
	assert_non_null(strstr(
		hint,
		"RDMA registration needs 64 MiB of locked memory and the limit is 1 MiB"));
	assert_non_null(strstr(hint, "LimitMEMLOCK="));
	assert_non_null(strstr(hint, "ulimit -l"));
	/* Taken once. */
	assert_null(vfm_xport_take_hint());
}

static void test_hint_in_the_error_line(void **state)
{
	char logp[96], errp[96], *all = NULL, *err = NULL;
	size_t cap = 0;
	int saved = dup(STDERR_FILENO), fd;
	FILE *f;

	(void)state;
	snprintf(logp, sizeof(logp), "%s/log.jsonl", dir);
	snprintf(errp, sizeof(errp), "%s/stderr", dir);
	fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	assert_int_equal(vfm_log_open(logp, "source"), 0);

	assert_int_equal(reg(3 * MIB), -ENOMEM);
	/* What the engine logs for it. */
	vfm_log_msg("migration_failed", "error",
		    "Cannot register the migration buffer: %s.",
		    strerror(ENOMEM));
	/* The next error has no hint left to take. */
	vfm_log_msg("error", "error", "Something else.");
	vfm_log_close();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	f = fopen(logp, "re");
	assert_non_null(f);
	assert_true(getdelim(&all, &cap, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(
		all,
		"\"message\":\"Cannot register the migration buffer: Cannot allocate memory.\",\"hint\":\"RDMA registration needs 3 MiB of locked memory and the limit is 1 MiB"));
	assert_int_equal(strstr(strstr(all, "\"hint\"") + 1, "\"hint\""), NULL);

	cap = 0;
	f = fopen(errp, "re");
	assert_non_null(f);
	assert_true(getdelim(&err, &cap, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(
		err,
		"vfmig send: Cannot register the migration buffer: Cannot allocate memory. RDMA registration needs 3 MiB of locked memory and the limit is 1 MiB: raise LimitMEMLOCK="));
	assert_non_null(strstr(err, "\nvfmig send: Something else.\n"));
	free(all);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memlock_hint),
		cmocka_unit_test(test_hint_in_the_error_line),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
