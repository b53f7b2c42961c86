// SPDX-License-Identifier: MIT
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

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

static void put(struct vfm_json *j, const char *s, size_t n)
{
	if (j->len + n + 2 > sizeof(j->buf)) {
		j->overflow = true;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

void vfm_json_quote(char *out, size_t cap, size_t *len, const char *s)
{
	size_t l = *len;

#define OUT(c)                          \
	do {                            \
		if (l + 2 < cap)        \
			out[l++] = (c); \
	} while (0)
	OUT('"');
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
	     p++) {
		if (*p == '"' || *p == '\\') {
			OUT('\\');
			OUT((char)*p);
		} else if (*p == '\n') {
			OUT('\\');
			OUT('n');
		} else if (*p < 0x20 || *p == 0x7f) {
			char e[8];

			snprintf(e, sizeof(e), "\\u%04x", *p);
			for (char *q = e; *q; q++)
				OUT(*q);
		} else {
			OUT((char)*p);
		}
	}
	OUT('"');
#undef OUT
	out[l] = '\0';
	*len = l;
}

void vfm_json_init(struct vfm_json *j)
{
	j->len = 0;
	j->first = true;
	j->overflow = false;
	put(j, "{", 1);
}

static void key(struct vfm_json *j, const char *k)
{
	char tmp[256];
	size_t n = 0;

	if (!j->first)
		put(j, ",", 1);
	j->first = false;
	vfm_json_quote(tmp, sizeof(tmp), &n, k);
	put(j, tmp, n);
	put(j, ":", 1);
}

void vfm_json_str(struct vfm_json *j, const char *k, const char *val)
{
	char tmp[4096];
	size_t n = 0;

	key(j, k);
	vfm_json_quote(tmp, sizeof(tmp), &n, val);
	put(j, tmp, n);
}

void vfm_json_u64(struct vfm_json *j, const char *k, uint64_t val)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)val);

	key(j, k);
	put(j, tmp, (size_t)n);
}

void vfm_json_i64(struct vfm_json *j, const char *k, int64_t val)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)val);

	key(j, k);
	put(j, tmp, (size_t)n);
}

void vfm_json_f64(struct vfm_json *j, const char *k, double val)
{
	char tmp[64];
	int n;

	if (!isfinite(val))
		val = 0;
	n = snprintf(tmp, sizeof(tmp), "%.3f", val);
	key(j, k);
	put(j, tmp, (size_t)n);
}

void vfm_json_bool(struct vfm_json *j, const char *k, bool val)
{
	key(j, k);
	put(j, val ? "true" : "false", val ? 4 : 5);
}

void vfm_json_raw(struct vfm_json *j, const char *k, const char *raw)
{
	key(j, k);
	put(j, raw, strlen(raw));
}

const char *vfm_json_end(struct vfm_json *j)
{
	static _Thread_local char closed[VFM_JSON_MAX + 2];

	snprintf(closed, sizeof(closed), "%s}", j->buf);
	return closed;
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

void vfm_log_emit(const char *event, struct vfm_json *fields)
{
	static _Thread_local char line[VFM_JSON_MAX + 512];
	size_t n = 0;
	double now = vfm_now_wall();
	time_t sec = (time_t)now;
	struct tm tm;
	char ts[64];

	if (!vfm_log.f)
		return;
	gmtime_r(&sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%06dZ",
		 (int)((now - (double)sec) * 1e6));
	n = (size_t)snprintf(line, sizeof(line),
			     "{\"ts\":\"%s\",\"migration_id\":", ts);
	vfm_json_quote(line, sizeof(line), &n, vfm_log.mid);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"role\":");
	vfm_json_quote(line, sizeof(line), &n, vfm_log.role);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"event\":");
	vfm_json_quote(line, sizeof(line), &n, event);
	if (fields && fields->len > 1)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",%s",
				      fields->buf + 1);
	if (n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	line[n++] = '}';
	line[n++] = '\n';
	line[n] = '\0';
	if (vfm_log.bar && vfm_log.f == stderr)
		vfm_log_progress_end();
	fputs(line, vfm_log.f);
	fflush(vfm_log.f);
}

void vfm_log_msg(const char *event, const char *level, const char *fmt, ...)
{
	static _Thread_local struct vfm_json j;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vfm_json_init(&j);
	vfm_json_str(&j, "level", level);
	vfm_json_str(&j, "message", msg);
	vfm_log_emit(event, &j);
	if (vfm_log.tty && strcmp(level, "info"))
		vfm_log_human("%s: %s", level, msg);
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
