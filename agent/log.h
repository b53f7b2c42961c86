/* SPDX-License-Identifier: MIT */
/*
 * The agent's logs: one JSON object per line, each with ts, migration_id,
 * role and event, to --log FILE or to stderr when stderr is not a TTY. On a
 * TTY, stderr gets a progress bar and short human lines instead.
 *
 * Fields are added to a struct vfm_json with the helpers below, then the
 * object is emitted with vfm_log_emit().
 */
#ifndef VFM_LOG_H
#define VFM_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VFM_JSON_MAX 65536

struct vfm_json {
	char buf[VFM_JSON_MAX];
	size_t len;
	bool first;
	bool overflow;
};

void vfm_json_init(struct vfm_json *j);
void vfm_json_str(struct vfm_json *j, const char *key, const char *val);
void vfm_json_u64(struct vfm_json *j, const char *key, uint64_t val);
void vfm_json_i64(struct vfm_json *j, const char *key, int64_t val);
void vfm_json_f64(struct vfm_json *j, const char *key, double val);
void vfm_json_bool(struct vfm_json *j, const char *key, bool val);
/* @raw is already JSON (an object or array). */
void vfm_json_raw(struct vfm_json *j, const char *key, const char *raw);
/* Append a JSON string literal (with quotes) of @s to @out. */
void vfm_json_quote(char *out, size_t cap, size_t *len, const char *s);
/* The finished object ("{...}"), valid until the next change. */
const char *vfm_json_end(struct vfm_json *j);

/* Set up once per process. @path NULL: stderr unless it is a TTY. */
int vfm_log_open(const char *path, const char *role);
void vfm_log_close(void);
void vfm_log_set_migration_id(const char *uuid);
const char *vfm_log_migration_id(void);
/* Emit one line: ts, migration_id, role, event, then @fields' members. */
void vfm_log_emit(const char *event, struct vfm_json *fields);
/* A one-field convenience: {"message": text} with level. */
void vfm_log_msg(const char *event, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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
