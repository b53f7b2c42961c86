// SPDX-License-Identifier: MIT
/*
 * Just enough JSON reading for the agent's flat summaries and log lines and
 * iperf3's report: the value after the first "key": at or after a point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

const char *vb_json_find(const char *s, const char *key)
{
	char pat[128];
	const char *p;
	size_t n;

	if (!s)
		return NULL;
	n = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", key);
	for (p = strstr(s, pat); p; p = strstr(p + 1, pat)) {
		const char *v = p + n;

		while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
			v++;
		if (*v != ':')
			continue;
		v++;
		while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
			v++;
		return v;
	}
	return NULL;
}

bool vb_json_num(const char *s, const char *key, double *out)
{
	const char *v = vb_json_find(s, key);
	char *end;
	double d;

	if (!v)
		return false;
	d = strtod(v, &end);
	if (end == v)
		return false;
	*out = d;
	return true;
}

bool vb_json_str(const char *s, const char *key, char *out, size_t len)
{
	const char *v = vb_json_find(s, key);
	size_t n = 0;

	if (!v || *v != '"' || !len)
		return false;
	for (v++; *v && *v != '"' && n + 1 < len; v++) {
		if (*v == '\\' && v[1])
			v++;
		out[n++] = *v;
	}
	out[n] = '\0';
	return true;
}

bool vb_json_bool(const char *s, const char *key, bool *out)
{
	const char *v = vb_json_find(s, key);

	if (!v)
		return false;
	if (!strncmp(v, "true", 4))
		*out = true;
	else if (!strncmp(v, "false", 5))
		*out = false;
	else
		return false;
	return true;
}

double vb_ts_parse(const char *ts)
{
	struct tm tm = { 0 };
	double sec = 0;

	if (sscanf(ts, "%d-%d-%dT%d:%d:%lf", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) + sec;
}

void vb_json_escape(char *out, size_t len, const char *s)
{
	size_t n = 0;

	for (; s && *s && n + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, len - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}
