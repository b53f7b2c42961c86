// SPDX-License-Identifier: MIT
/*
 * JSON in and out with json-c: the agent's --stats-json and JSON-lines
 * logs, iperf3's and vfm-xport-perf's reports, and results.json.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

struct json_object *vb_json_load(const char *path)
{
	struct json_object *o = json_object_from_file(path);

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *vb_json_get(struct json_object *o, const char *key)
{
	char part[128];

	while (o && *key) {
		size_t n = strcspn(key, ".");

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, key, n);
		part[n] = '\0';
		if (!json_object_object_get_ex(o, part, &o))
			return NULL;
		key += n + (key[n] == '.');
	}
	return o;
}

bool vb_json_num(struct json_object *o, const char *key, double *out)
{
	struct json_object *v = vb_json_get(o, key);

	if (!v || !(json_object_is_type(v, json_type_int) ||
		    json_object_is_type(v, json_type_double)))
		return false;
	*out = json_object_get_double(v);
	return true;
}

bool vb_json_str(struct json_object *o, const char *key, char *out, size_t len)
{
	struct json_object *v = vb_json_get(o, key);

	if (!v || !json_object_is_type(v, json_type_string) || !len)
		return false;
	snprintf(out, len, "%s", json_object_get_string(v));
	return true;
}

bool vb_json_bool(struct json_object *o, const char *key, bool *out)
{
	struct json_object *v = vb_json_get(o, key);

	if (!v || !json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

struct json_object *vb_log_load(const char *path)
{
	FILE *f = fopen(path, "re");
	struct json_object *lines;
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	lines = json_object_new_array();
	while (lines && getline(&line, &cap, f) > 0) {
		struct json_object *o = json_tokener_parse(line);

		/* A line still being written does not parse: skip it. */
		if (o && json_object_is_type(o, json_type_object))
			json_object_array_add(lines, o);
		else
			json_object_put(o);
	}
	free(line);
	fclose(f);
	return lines;
}

static bool is_event(struct json_object *o, const char *event)
{
	struct json_object *v;

	return json_object_object_get_ex(o, "event", &v) &&
	       !strcmp(json_object_get_string(v), event);
}

struct json_object *vb_log_last(struct json_object *log, const char *event)
{
	for (size_t i = log ? json_object_array_length(log) : 0; i > 0; i--) {
		struct json_object *o = json_object_array_get_idx(log, i - 1);

		if (is_event(o, event))
			return o;
	}
	return NULL;
}

struct json_object *vb_log_next(struct json_object *log, const char *event,
				size_t *i)
{
	for (; log && *i < json_object_array_length(log); (*i)++) {
		struct json_object *o = json_object_array_get_idx(log, *i);

		if (is_event(o, event)) {
			(*i)++;
			return o;
		}
	}
	return NULL;
}

bool vb_log_has(const char *path, const char *event)
{
	struct json_object *log = vb_log_load(path);
	bool yes = vb_log_last(log, event) != NULL;

	json_object_put(log);
	return yes;
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

struct json_object *vb_json_double(double v)
{
	char buf[64];

	if (isnan(v) || isinf(v))
		return NULL; /* JSON has no NaN: null */
	snprintf(buf, sizeof(buf), "%.6g", v);
	return json_object_new_double_s(v, buf);
}

void vb_json_put_num(struct json_object *o, const char *key, double v)
{
	json_object_object_add(o, key, vb_json_double(v));
}

void vb_json_put_str(struct json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, json_object_new_string(s ? s : ""));
}

int vb_json_save(const char *path, struct json_object *o)
{
	int ret = json_object_to_file_ext(
		path, o,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

	return ret ? -EIO : 0;
}
