/* SPDX-License-Identifier: MIT */
/*
 * The agent's logs: one JSON object per line (schema: docs/log-schema.md),
 * each with v, ts, level, migration_id, role and event, to --log FILE or to
 * stderr when stderr is not a TTY. On a TTY, stderr gets a progress bar and
 * short human lines instead. Lines of level "error" always reach stderr as a
 * sentence too (the journal under systemd).
 *
 * Fields are collected in a struct vfm_json with the helpers below (a plain
 * value: it owns no heap memory, so it may live on the stack and be reused
 * with vfm_json_init()); json-c turns it into text in vfm_log_emit() and
 * vfm_json_end().
 */
#ifndef VFM_LOG_H
#define VFM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

/* The log schema's version: the "v" member of every line. */
#define VFM_LOG_SCHEMA 1

#define VFM_JSON_FIELDS 64
#define VFM_JSON_TEXT 65536

enum vfm_json_type {
	VFM_JSON_STR,
	VFM_JSON_U64,
	VFM_JSON_I64,
	VFM_JSON_F64,
	VFM_JSON_BOOL,
	VFM_JSON_RAW,
};

struct vfm_json_field {
	uint32_t key; /* offset of the key in text[] */
	enum vfm_json_type type;
	union {
		uint32_t str; /* STR, RAW: offset in text[] */
		uint64_t u64;
		int64_t i64;
		double f64;
		bool b;
	} v;
};

struct vfm_json {
	unsigned int n;
	bool overflow; /* a field did not fit and was dropped */
	size_t used; /* bytes of text[] in use */
	struct vfm_json_field f[VFM_JSON_FIELDS];
	char text[VFM_JSON_TEXT];
};

void vfm_json_init(struct vfm_json *j);
void vfm_json_str(struct vfm_json *j, const char *key, const char *val);
void vfm_json_u64(struct vfm_json *j, const char *key, uint64_t val);
void vfm_json_i64(struct vfm_json *j, const char *key, int64_t val);
/* Printed with 3 decimals; NaN and infinities become 0. */
void vfm_json_f64(struct vfm_json *j, const char *key, double val);
void vfm_json_bool(struct vfm_json *j, const char *key, bool val);
/* @raw is already JSON (an object or array); invalid JSON becomes null. */
void vfm_json_raw(struct vfm_json *j, const char *key, const char *raw);
/* Append a JSON string literal (with quotes) of @s to @out, NUL-terminated;
 * a literal that does not fit is not appended. */
void vfm_json_quote(char *out, size_t cap, size_t *len, const char *s);
/* The finished object ("{...}"), valid until the next call in the thread. */
const char *vfm_json_end(struct vfm_json *j);
/* A new json-c object of @j's fields (NULL without memory). */
struct json_object *vfm_json_object(const struct vfm_json *j);
/* The string field @key of @j, or NULL. */
const char *vfm_json_get_str(const struct vfm_json *j, const char *key);
/* The numeric field @key of @j into @out; false if there is none. */
bool vfm_json_get_num(const struct vfm_json *j, const char *key, double *out);

/* A json-c string of @s with every invalid UTF-8 sequence (text from a
 * peer) replaced by U+FFFD, so any JSON reader accepts the output. */
struct json_object *vfm_json_string_new(const char *s);
/* @o as one line of JSON (no newline), valid until @o is released. */
const char *vfm_json_text(struct json_object *o);

/* Set up once per process. @path NULL: stderr unless it is a TTY. */
int vfm_log_open(const char *path, const char *role);
void vfm_log_close(void);
void vfm_log_set_migration_id(const char *uuid);
const char *vfm_log_migration_id(void);
/* Emit one line: v, ts, level, migration_id, role, event, then @fields'
 * members. The level is @fields' "level" member, or the event's own
 * (docs/log-schema.md). */
void vfm_log_emit(const char *event, struct vfm_json *fields);
/* A one-field convenience: {"message": text} with level. */
void vfm_log_msg(const char *event, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "vfmig WHO: MSG" on stderr after an error event for MSG, unless that
 * event already put the sentence there (its echo under --log FILE, or its
 * human line on a TTY): an error reaches the operator once. */
void vfm_log_error_line(const char *who, const char *msg);

/* Whether stderr is a TTY (progress bar and human lines go there). */
bool vfm_log_tty(void);
/* A human line on the TTY (nothing when stderr is not a TTY). */
void vfm_log_human(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The progress bar: done/total bytes, with a label. */
void vfm_log_progress(const char *label, uint64_t done, uint64_t total,
		      double mbps);
void vfm_log_progress_end(void);

/* Seconds since the epoch and a monotonic clock in ms. */
double vfm_now_wall(void);
double vfm_now_ms(void);

#endif
