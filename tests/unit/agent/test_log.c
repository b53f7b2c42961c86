// SPDX-License-Identifier: MIT
/* agent/log.c: the JSON-lines writer (json-c), levels, the stderr echo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static char dir[] = "/tmp/vfm-test-log.XXXXXX";
static char path[64];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/log.jsonl", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[96];

	(void)state;
	unlink(path);
	snprintf(p, sizeof(p), "%s/stderr", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

static char *slurp(const char *p)
{
	FILE *f = fopen(p, "re");
	char *s = NULL;
	size_t cap = 0;
	ssize_t n;

	assert_non_null(f);
	n = getdelim(&s, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(s);
		return strdup("");
	}
	return s;
}

/* True when @s is valid UTF-8 (the whole line must be, for any reader). */
static bool utf8_ok(const unsigned char *s)
{
	while (*s) {
		int n = *s < 0x80			  ? 0 :
			(*s & 0xe0) == 0xc0 && *s >= 0xc2 ? 1 :
			(*s & 0xf0) == 0xe0		  ? 2 :
			(*s & 0xf8) == 0xf0 && *s <= 0xf4 ? 3 :
							    -1;

		if (n < 0)
			return false;
		for (s++; n; n--, s++)
			if ((*s & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* Parse one line strictly (UTF-8 checked by json-c too). */
static struct json_object *parse(const char *line)
{
	struct json_tokener *t = json_tokener_new();
	struct json_object *o;

	assert_non_null(t);
	json_tokener_set_flags(t, JSON_TOKENER_STRICT |
					  JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(t, line, (int)strlen(line));
	assert_int_equal(json_tokener_get_error(t), json_tokener_success);
	json_tokener_free(t);
	assert_non_null(o);
	return o;
}

static const char *get_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	return json_object_get_string(v);
}

/* The @n-th line (from 0) of the log, parsed. */
static struct json_object *line_of(const char *all, int n)
{
	const char *p = all, *e;
	char *one;
	struct json_object *o;

	while (n--) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	e = strchr(p, '\n');
	assert_non_null(e);
	one = strndup(p, (size_t)(e - p));
	for (const char *c = one; *c; c++)
		assert_true((unsigned char)*c >= 0x20);
	assert_true(utf8_ok((const unsigned char *)one));
	o = parse(one);
	free(one);
	return o;
}

static void test_escaping(void **state)
{
	static struct vfm_json j;
	struct json_object *o, *v;
	char *all;

	(void)state;
	unlink(path);
	assert_int_equal(vfm_log_open(path, "destination"), 0);
	vfm_log_set_migration_id("0c4e1c1a-4c7e-4d4f-9a55-3c1e6f1f2b10");
	vfm_json_init(&j);
	/* What a hostile peer could put in its descriptor or FAIL text:
	 * quotes, backslashes, newlines, an escape sequence, bytes that are
	 * not UTF-8 (a lone continuation, an overlong '/', a surrogate). */
	vfm_json_str(
		&j, "peer_text",
		"a\"b\\c\nd\re\tf\x01g\x1b[31mred/\x7f é\xff\x80\xc0\xaf\xed\xa0\x80z");
	vfm_json_str(&j, "key\"with\nnewline", "v");
	vfm_json_u64(&j, "big_bytes", UINT64_MAX);
	vfm_json_i64(&j, "neg", -42);
	vfm_json_f64(&j, "rate_mbps", 1.5);
	vfm_json_f64(&j, "nan_ms", 0.0 / 0.0);
	vfm_json_bool(&j, "ok", true);
	vfm_json_raw(&j, "desc", "{\"model\":\"x\",\"n\":[1,2]}");
	vfm_json_raw(&j, "broken", "{\"model\":");
	vfm_log_emit("test_event", &j);
	vfm_log_close();

	all = slurp(path);
	o = line_of(all, 0);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "v")),
			 VFM_LOG_SCHEMA);
	assert_string_equal(get_str(o, "level"), "info");
	assert_string_equal(get_str(o, "role"), "destination");
	assert_string_equal(get_str(o, "event"), "test_event");
	assert_string_equal(get_str(o, "migration_id"),
			    "0c4e1c1a-4c7e-4d4f-9a55-3c1e6f1f2b10");
	/* Every byte that is not UTF-8 became U+FFFD; the rest is intact. */
	assert_string_equal(
		get_str(o, "peer_text"),
		"a\"b\\c\nd\re\tf\x01g\x1b[31mred/\x7f é\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
	assert_string_equal(get_str(o, "key\"with\nnewline"), "v");
	assert_true(json_object_get_uint64(json_object_object_get(
			    o, "big_bytes")) == UINT64_MAX);
	assert_int_equal(
		json_object_get_int64(json_object_object_get(o, "neg")), -42);
	assert_non_null(strstr(all, "\"rate_mbps\":1.500,"));
	assert_non_null(strstr(all, "\"nan_ms\":0.000,"));
	assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
	assert_true(json_object_object_get_ex(o, "desc", &v));
	assert_string_equal(get_str(v, "model"), "x");
	assert_true(json_object_object_get_ex(o, "broken", &v));
	assert_null(v);
	/* Members in the order they were added, after the header. */
	assert_non_null(strstr(all, "{\"v\":1,\"ts\":\""));
	assert_true(strstr(all, "\"event\":\"test_event\",\"peer_text\"") !=
		    NULL);
	json_object_put(o);
	free(all);
}

static void test_levels_and_echo(void **state)
{
	static struct vfm_json j;
	struct json_object *o;
	char errp[96], *all, *err;
	int saved = dup(STDERR_FILENO), fd;
	const char *want[] = { "error", "warning", "info",
			       "error", "warning", "warning" };

	(void)state;
	unlink(path);
	snprintf(errp, sizeof(errp), "%s/stderr", dir);
	fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);

	assert_int_equal(vfm_log_open(path, "source"), 0);
	vfm_log_msg("error", "error", "Cannot connect to %s:\n%s.", "dst",
		    "refused");
	vfm_log_msg("no_precopy", "warning", "No PRE_COPY.");
	vfm_json_init(&j);
	vfm_json_str(&j, "result", "migrated");
	vfm_log_emit("summary", &j);
	vfm_json_init(&j);
	vfm_json_str(&j, "result", "failed");
	vfm_log_emit("summary", &j);
	vfm_json_init(&j);
	vfm_json_bool(&j, "accept", false);
	vfm_log_emit("verdict", &j);
	vfm_json_init(&j);
	vfm_json_i64(&j, "exit_code", 3);
	vfm_log_emit("exit", &j);
	vfm_log_close();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	all = slurp(path);
	for (int i = 0; i < 6; i++) {
		o = line_of(all, i);
		assert_string_equal(get_str(o, "level"), want[i]);
		json_object_put(o);
	}
	/* An explicit level is in the header, not repeated after it. */
	{
		const char *second =
			strstr(strstr(all, "\"level\"") + 1, "\"level\"");

		assert_true(second > strchr(all, '\n'));
	}
	free(all);
	/* Only the error message reached stderr, as one line. */
	err = slurp(errp);
	assert_string_equal(err,
			    "vfmig send: Cannot connect to dst:?refused.\n");
	free(err);
}

static void test_overflow_quote_end(void **state)
{
	static struct vfm_json j;
	struct json_object *o;
	char big[VFM_JSON_TEXT], q[16];
	size_t n = 0;

	(void)state;
	vfm_json_init(&j);
	for (int i = 0; i < VFM_JSON_FIELDS + 5; i++) {
		char k[16];

		snprintf(k, sizeof(k), "f%d", i);
		vfm_json_u64(&j, k, (uint64_t)i);
	}
	assert_true(j.overflow);
	o = parse(vfm_json_end(&j));
	assert_int_equal(json_object_object_length(o), VFM_JSON_FIELDS);
	json_object_put(o);

	/* A string that does not fit is dropped whole, key and all. */
	vfm_json_init(&j);
	vfm_json_str(&j, "a", "x");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vfm_json_str(&j, "too_big", big);
	assert_true(j.overflow);
	assert_string_equal(vfm_json_end(&j), "{\"a\":\"x\"}");

	vfm_json_quote(q, sizeof(q), &n, "a\"b\n");
	assert_string_equal(q, "\"a\\\"b\\n\"");
	assert_int_equal(n, strlen(q));
	/* A literal that does not fit leaves the buffer as it was. */
	vfm_json_quote(q, sizeof(q), &n, "0123456789");
	assert_string_equal(q, "\"a\\\"b\\n\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_levels_and_echo),
		cmocka_unit_test(test_overflow_quote_end),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
