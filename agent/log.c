// SPDX-License-Identifier: MIT
/* The agent's JSON-lines log (docs/log-schema.md), written with json-c. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "vfm/transport.h"

/* One log per process (one agent per migration); the scratch buffers
 * below are per thread, so two engines in one process do not race. */
static struct {
	FILE *f; /* JSON lines; NULL: none */
	bool own; /* f was opened by us */
	bool tty; /* stderr is a terminal */
	bool bar; /* a progress bar is on screen */
	char role[16];
	char mid[40];
} vfm_log = { 0 };

/* Serialized as compact JSON, '/' left alone. */
#define VFM_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

double vfm_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double vfm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Length of the valid UTF-8 sequence at @s, or 0 if it is not one
 * (overlong forms and surrogates are not valid). */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

struct json_object *vfm_json_string_new(const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t len = strlen((const char *)s), i, n = 0, k;
	struct json_object *o;
	char *clean;

	for (i = 0; i < len; i += k) {
		k = utf8_len(s + i);
		if (!k)
			break;
	}
	if (i >= len)
		return json_object_new_string((const char *)s);
	/* Some byte is not UTF-8: each such byte becomes U+FFFD (3 bytes). */
	clean = malloc(3 * len + 1);
	if (!clean)
		return NULL;
	for (i = 0; i < len; i += k ? k : 1) {
		k = utf8_len(s + i);
		if (k) {
			memcpy(clean + n, s + i, k);
			n += k;
		} else {
			memcpy(clean + n, "\xef\xbf\xbd", 3);
			n += 3;
		}
	}
	clean[n] = '\0';
	o = json_object_new_string_len(clean, (int)n);
	free(clean);
	return o;
}

const char *vfm_json_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, VFM_JSON_FLAGS);
}

void vfm_json_quote(char *out, size_t cap, size_t *len, const char *s)
{
	struct json_object *o = vfm_json_string_new(s);
	const char *t = o ? vfm_json_text(o) : NULL;
	size_t n = t ? strlen(t) : 0;

	if (t && *len + n < cap) {
		memcpy(out + *len, t, n + 1);
		*len += n;
	}
	json_object_put(o);
}

void vfm_json_init(struct vfm_json *j)
{
	j->n = 0;
	j->used = 0;
	j->overflow = false;
}

/* Copy @s into @j's text; its offset, or -1 when it does not fit. */
static long text_add(struct vfm_json *j, const char *s)
{
	size_t n = strlen(s ? s : "") + 1;
	long at = (long)j->used;

	if (j->used + n > sizeof(j->text))
		return -1;
	memcpy(j->text + j->used, s ? s : "", n);
	j->used += n;
	return at;
}

/* A new field named @key; NULL (and overflow set) when it does not fit. */
static struct vfm_json_field *field(struct vfm_json *j, const char *key,
				    enum vfm_json_type type)
{
	struct vfm_json_field *f;
	long k;

	if (j->n == VFM_JSON_FIELDS)
		goto full;
	k = text_add(j, key);
	if (k < 0)
		goto full;
	f = &j->f[j->n++];
	f->key = (uint32_t)k;
	f->type = type;
	return f;
full:
	j->overflow = true;
	return NULL;
}

static void add_text(struct vfm_json *j, const char *key,
		     enum vfm_json_type type, const char *val)
{
	size_t used = j->used;
	struct vfm_json_field *f = field(j, key, type);
	long at;

	if (!f)
		return;
	at = text_add(j, val);
	if (at < 0) {
		/* Drop the field whole, key included. */
		j->n--;
		j->used = used;
		j->overflow = true;
		return;
	}
	f->v.str = (uint32_t)at;
}

void vfm_json_str(struct vfm_json *j, const char *key, const char *val)
{
	add_text(j, key, VFM_JSON_STR, val);
}

void vfm_json_raw(struct vfm_json *j, const char *key, const char *raw)
{
	add_text(j, key, VFM_JSON_RAW, raw);
}

void vfm_json_u64(struct vfm_json *j, const char *key, uint64_t val)
{
	struct vfm_json_field *f = field(j, key, VFM_JSON_U64);

	if (f)
		f->v.u64 = val;
}

void vfm_json_i64(struct vfm_json *j, const char *key, int64_t val)
{
	struct vfm_json_field *f = field(j, key, VFM_JSON_I64);

	if (f)
		f->v.i64 = val;
}

void vfm_json_f64(struct vfm_json *j, const char *key, double val)
{
	struct vfm_json_field *f = field(j, key, VFM_JSON_F64);

	if (f)
		f->v.f64 = isfinite(val) ? val : 0;
}

void vfm_json_bool(struct vfm_json *j, const char *key, bool val)
{
	struct vfm_json_field *f = field(j, key, VFM_JSON_BOOL);

	if (f)
		f->v.b = val;
}

static struct json_object *field_value(const struct vfm_json *j,
				       const struct vfm_json_field *f)
{
	char num[64];

	switch (f->type) {
	case VFM_JSON_STR:
		return vfm_json_string_new(j->text + f->v.str);
	case VFM_JSON_RAW:
		/* NULL (JSON null) when it does not parse */
		return json_tokener_parse(j->text + f->v.str);
	case VFM_JSON_U64:
		return json_object_new_uint64(f->v.u64);
	case VFM_JSON_I64:
		return json_object_new_int64(f->v.i64);
	case VFM_JSON_F64:
		/* Milliseconds and MB/s to the microsecond: 3 decimals. */
		snprintf(num, sizeof(num), "%.3f", f->v.f64);
		return json_object_new_double_s(f->v.f64, num);
	case VFM_JSON_BOOL:
		return json_object_new_boolean(f->v.b);
	}
	return NULL;
}

/* Add @j's fields to @o, in order; "level" is left out when @skip_level. */
static void add_fields(struct json_object *o, const struct vfm_json *j,
		       bool skip_level)
{
	for (unsigned int i = 0; j && i < j->n; i++) {
		const char *k = j->text + j->f[i].key;

		if (skip_level && !strcmp(k, "level"))
			continue;
		json_object_object_add(o, k, field_value(j, &j->f[i]));
	}
}

struct json_object *vfm_json_object(const struct vfm_json *j)
{
	struct json_object *o = json_object_new_object();

	if (o)
		add_fields(o, j, false);
	return o;
}

const char *vfm_json_end(struct vfm_json *j)
{
	static _Thread_local char *closed;
	struct json_object *o = vfm_json_object(j);

	free(closed);
	closed = strdup(o ? vfm_json_text(o) : "{}");
	json_object_put(o);
	return closed ? closed : "{}";
}

int vfm_log_open(const char *path, const char *role)
{
	vfm_log.tty = isatty(STDERR_FILENO);
	snprintf(vfm_log.role, sizeof(vfm_log.role), "%s", role);
	if (path) {
		vfm_log.f = fopen(path, "ae");
		if (!vfm_log.f)
			return -1;
		vfm_log.own = true;
		setvbuf(vfm_log.f, NULL, _IOLBF, 0);
	} else if (!vfm_log.tty) {
		vfm_log.f = stderr;
	}
	return 0;
}

void vfm_log_close(void)
{
	vfm_log_progress_end();
	vfm_notify_stopping();
	if (vfm_log.own && vfm_log.f)
		fclose(vfm_log.f);
	vfm_log.f = NULL;
	vfm_log.own = false;
}

void vfm_log_set_migration_id(const char *uuid)
{
	snprintf(vfm_log.mid, sizeof(vfm_log.mid), "%s", uuid);
}

const char *vfm_log_migration_id(void)
{
	return vfm_log.mid;
}

bool vfm_log_tty(void)
{
	return vfm_log.tty;
}

static const struct vfm_json_field *field_find(const struct vfm_json *j,
					       const char *key)
{
	for (unsigned int i = 0; j && i < j->n; i++)
		if (!strcmp(j->text + j->f[i].key, key))
			return &j->f[i];
	return NULL;
}

const char *vfm_json_get_str(const struct vfm_json *j, const char *key)
{
	const struct vfm_json_field *f = field_find(j, key);

	return f && f->type == VFM_JSON_STR ? j->text + f->v.str : NULL;
}

bool vfm_json_get_num(const struct vfm_json *j, const char *key, double *out)
{
	const struct vfm_json_field *f = field_find(j, key);

	if (!f)
		return false;
	switch (f->type) {
	case VFM_JSON_U64:
		*out = (double)f->v.u64;
		return true;
	case VFM_JSON_I64:
		*out = (double)f->v.i64;
		return true;
	case VFM_JSON_F64:
		*out = f->v.f64;
		return true;
	default:
		return false;
	}
}

/* The level of a line without its own (docs/log-schema.md, "level"). */
static const char *event_level(const char *event, const struct vfm_json *j)
{
	const struct vfm_json_field *f;
	const char *s = vfm_json_get_str(j, "level");

	if (s)
		return s;
	if (!strcmp(event, "summary")) {
		s = vfm_json_get_str(j, "result");
		if (!s || !strcmp(s, "migrated") || !strcmp(s, "compatible"))
			return "info";
		return strcmp(s, "refused") ? "error" : "warning";
	}
	if (!strcmp(event, "verdict")) {
		f = field_find(j, "accept");
		return f && f->type == VFM_JSON_BOOL && !f->v.b ? "warning" :
								  "info";
	}
	if (!strcmp(event, "exit")) {
		f = field_find(j, "exit_code");
		if (!f || f->type != VFM_JSON_I64 || f->v.i64 == 0)
			return "info";
		return f->v.i64 == 3 ? "warning" : "error";
	}
	if (!strcmp(event, "source_resumed") ||
	    !strcmp(event, "destination_reset"))
		return "warning";
	return "info";
}

static void timestamp(char *ts, size_t cap)
{
	double now = vfm_now_wall();
	time_t sec = (time_t)now;
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(ts, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, cap - n, ".%06dZ", (int)((now - (double)sec) * 1e6));
}

/* @msg and @hint on stderr, one line, no control characters (the message
 * may quote the peer). */
static void echo_error(const char *msg, const char *hint)
{
	char line[2048];

	snprintf(line, sizeof(line), "%s%s%s", msg, hint ? " " : "",
		 hint ? hint : "");
	for (size_t n = 0; line[n]; n++)
		if ((unsigned char)line[n] < 0x20 || line[n] == 0x7f)
			line[n] = '?';
	fprintf(stderr, "vfmig %s: %s\n",
		!strcmp(vfm_log.role, "destination") ? "recv" : "send", line);
}

void vfm_log_emit(const char *event, struct vfm_json *fields)
{
	const char *level = event_level(event, fields), *message;
	struct json_object *o;
	char ts[64];

	vfm_notify_event(event, fields);
	if (!vfm_log.f && vfm_log.tty)
		return;
	o = json_object_new_object();
	if (!o)
		return;
	timestamp(ts, sizeof(ts));
	json_object_object_add(o, "v", json_object_new_int(VFM_LOG_SCHEMA));
	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "level", vfm_json_string_new(level));
	json_object_object_add(o, "migration_id",
			       vfm_json_string_new(vfm_log.mid));
	json_object_object_add(o, "role", vfm_json_string_new(vfm_log.role));
	json_object_object_add(o, "event", vfm_json_string_new(event));
	add_fields(o, fields, true);
	if (vfm_log.f) {
		if (vfm_log.bar && vfm_log.f == stderr)
			vfm_log_progress_end();
		fprintf(vfm_log.f, "%s\n", vfm_json_text(o));
		fflush(vfm_log.f);
	}
	/* An error only in a file would never reach the journal or the
	 * operator's terminal: say it on stderr too (on a TTY, the human
	 * line of vfm_log_msg() does). */
	message = vfm_json_get_str(fields, "message");
	if (vfm_log.own && !vfm_log.tty && message &&
	    vfm_json_get_str(fields, "level") && !strcmp(level, "error"))
		echo_error(message, vfm_json_get_str(fields, "hint"));
	json_object_put(o);
}

void vfm_log_msg(const char *event, const char *level, const char *fmt, ...)
{
	static _Thread_local struct vfm_json j;
	const char *hint = NULL;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A failure the transport could explain (memlock, seccomp): its
	 * sentence goes with the error, wherever the error goes. */
	if (strcmp(level, "info"))
		hint = vfm_xport_take_hint();
	vfm_json_init(&j);
	vfm_json_str(&j, "level", level);
	vfm_json_str(&j, "message", msg);
	if (hint)
		vfm_json_str(&j, "hint", hint);
	vfm_log_emit(event, &j);
	if (vfm_log.tty && strcmp(level, "info"))
		vfm_log_human("%s: %s%s%s", level, msg, hint ? " " : "",
			      hint ? hint : "");
}

void vfm_log_error_line(const char *who, const char *msg)
{
	if (vfm_log.tty || vfm_log.own)
		return;
	fprintf(stderr, "vfmig %s: %s\n", who, msg);
}

void vfm_log_human(const char *fmt, ...)
{
	char msg[2048];
	size_t n;
	va_list ap;

	if (!vfm_log.tty)
		return;
	vfm_log_progress_end();
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* Text may come from the peer (its descriptor, a FAIL): no escape
	 * sequence or control character reaches the terminal raw. */
	for (unsigned char *p = (unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "%s\n", msg);
}

void vfm_log_progress(const char *label, uint64_t done, uint64_t total,
		      double mbps)
{
	static double last_ms;
	char bar[41];
	double frac = total ? (double)done / (double)total : 0;
	int fill;

	if (!vfm_log.tty)
		return;
	if (vfm_now_ms() - last_ms < 100 && done < total)
		return;
	last_ms = vfm_now_ms();
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * 40);
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = '\0';
	fprintf(stderr, "\r%-12s [%s] %5.1f%% %8.1f MiB %7.0f MB/s ", label,
		bar, frac * 100, (double)done / 1048576.0, mbps);
	fflush(stderr);
	vfm_log.bar = true;
}

void vfm_log_progress_end(void)
{
	if (vfm_log.bar) {
		fputc('\n', stderr);
		vfm_log.bar = false;
	}
}
