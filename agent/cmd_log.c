// SPDX-License-Identifier: MIT
/* vfmig log: an agent's JSON-lines log (docs/log-schema.md) for people. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"

static void log_usage(FILE *f)
{
	fprintf(f,
		"usage: vfmig log [--follow [--pid PID]] [--all] [FILE|-]\n"
		"\n"
		"Print an agent's log (vfmig send/recv --log FILE, JSON lines) as\n"
		"readable lines: the handshake with both devices and every rule,\n"
		"the verdict, each pre-copy iteration and its decision, the phases,\n"
		"the summary with the downtime and the state digests, warnings and\n"
		"errors. FILE - or no FILE reads stdin.\n"
		"\n"
		"  --follow        keep reading as FILE grows, until its \"exit\" line\n"
		"  --pid PID       with --follow: also stop when process PID is gone\n"
		"                  and FILE has nothing more\n"
		"  --all           also the once-a-second progress and the switchover\n"
		"                  steps, and events this version does not know\n"
		"  -h, --help      this help\n"
		"\n"
		"Exit codes: 0 printed, 2 usage or unreadable FILE, 1 a line was not\n"
		"a JSON object (it is printed raw, after '?', and reading goes on).\n");
}

/* The string member @key of @o, or @dflt. */
static const char *str(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return dflt;
	return json_object_get_string(v);
}

/* The numeric member @key of @o, or @dflt. */
static double num(struct json_object *o, const char *key, double dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, json_type_int) ||
	      json_object_is_type(v, json_type_double)))
		return dflt;
	return json_object_get_double(v);
}

static bool has(struct json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

static bool flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	       json_object_get_boolean(v);
}

static double mib(double bytes)
{
	return bytes / 1048576.0;
}

/* Output with every control character of the text made visible: the log
 * holds text from the peer (its descriptor, its FAIL sentence). */
static void out(FILE *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void out(FILE *f, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (unsigned char *p = (unsigned char *)buf; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(f, "%s\n", buf);
}

/* "memory=1024 queues=8" from a params object. */
static void params_text(struct json_object *d, char *buf, size_t cap)
{
	struct json_object *p;
	size_t n = 0;

	buf[0] = '\0';
	if (!json_object_object_get_ex(d, "params", &p) ||
	    !json_object_is_type(p, json_type_object))
		return;
	json_object_object_foreach(p, k, v)
	{
		int w = snprintf(buf + n, cap - n, "%s%s=%s", n ? " " : "", k,
				 json_object_get_string(v));

		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
}

static void descriptor(FILE *f, const char *pre, const char *who,
		       struct json_object *o, const char *key)
{
	struct json_object *d;
	char params[1024];

	if (!json_object_object_get_ex(o, key, &d) ||
	    !json_object_is_type(d, json_type_object))
		return;
	params_text(d, params, sizeof(params));
	out(f, "%s   %-11s %s %s (compatible %s)%s%s", pre, who,
	    str(d, "model", "?"), str(d, "version", "?"),
	    str(d, "version_compatible", "?"), params[0] ? " params " : "",
	    params);
}

static size_t set_size(struct json_object *o)
{
	struct json_object *a;

	if (!json_object_object_get_ex(o, "devices", &a) ||
	    !json_object_is_type(a, json_type_array))
		return 1;
	return json_object_array_length(a);
}

static void summary_devices(FILE *f, const char *pre, struct json_object *o)
{
	struct json_object *a;

	if (!json_object_object_get_ex(o, "devices", &a) ||
	    !json_object_is_type(a, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *d = json_object_array_get_idx(a, i);

		const char *dg = str(d, "state_digest", "");
		double b = num(d, "bytes", 0);
		char bytes[32] = "";

		if (b > 0)
			snprintf(bytes, sizeof(bytes), "%.1f MiB, ", mib(b));
		out(f, "%s   device %.0f %s: %s%s%s%s", pre, num(d, "index", 0),
		    str(d, "spec", "?"), bytes, str(d, "state", "?"),
		    dg[0] ? ", digest " : "", dg);
	}
}

static void summary(FILE *f, const char *pre, struct json_object *o)
{
	const char *res = str(o, "result", "?");
	double it = num(o, "iterations", 0);

	if (!strcmp(res, "migrated") && has(o, "downtime_ms")) {
		out(f,
		    "%s SUMMARY downtime %.1f ms (limit %.0f), total %.0f ms, %.0f MiB, %.0f iteration%s, %.0f %s stream%s",
		    pre, num(o, "downtime_ms", 0),
		    num(o, "downtime_limit_ms", 0), num(o, "total_ms", 0),
		    mib(num(o, "bytes", 0)), it, it == 1 ? "" : "s",
		    num(o, "streams", 0), str(o, "transport", "?"),
		    num(o, "streams", 0) == 1 ? "" : "s");
		out(f, "%s   source digest      %s", pre,
		    str(o, "state_digest", "?"));
		out(f, "%s   destination digest %s (%s)", pre,
		    str(o, "destination_state_digest", "?"),
		    flag(o, "digest_match") ? "match" : "MISMATCH");
	} else if (!strcmp(res, "migrated")) {
		out(f,
		    "%s SUMMARY migrated: total %.0f ms, stopped to running %.1f ms, %.0f MiB, %.0f iteration%s; digest %s",
		    pre, num(o, "total_ms", 0), num(o, "stop_to_running_ms", 0),
		    mib(num(o, "bytes", 0)), it, it == 1 ? "" : "s",
		    str(o, "state_digest", "?"));
	} else {
		out(f, "%s SUMMARY %s%s%s: device %s%s%s", pre, res,
		    has(o, "reason") ? ": " : "", str(o, "reason", ""),
		    str(o, "state", "?"),
		    has(o, "state_digest") ? ", digest " : "",
		    str(o, "state_digest", ""));
	}
	summary_devices(f, pre, o);
}

/* Print one log line's human form; false if the event has none (and
 * --all is not set). */
static bool view(FILE *f, struct json_object *o, bool all)
{
	const char *e = str(o, "event", "?"), *role = str(o, "role", "?");
	const char *ts = str(o, "ts", ""), *level = str(o, "level", "info");
	char pre[64];

	snprintf(pre, sizeof(pre), "%.12s %s",
		 strlen(ts) >= 23 ? ts + 11 : "--:--:--.---",
		 !strcmp(role, "source")      ? "src" :
		 !strcmp(role, "destination") ? "dst" :
						role);
	if (!strcmp(e, "handshake")) {
		out(f,
		    "%s handshake with %s: protocol %.0f, transport %s x%.0f",
		    pre, str(o, "peer", "?"), num(o, "protocol", 0),
		    str(o, "transport", "?"), num(o, "streams", 0));
		if (has(o, "devices"))
			out(f, "%s   a set of %.0f devices, paired in order",
			    pre, num(o, "devices", 0));
		descriptor(f, pre, "source", o, "source_descriptor");
		descriptor(f, pre, "destination", o, "destination_descriptor");
	} else if (!strcmp(e, "handshake_rule")) {
		const char *subj = str(o, "subject", "");

		char dev[24] = "";

		if (has(o, "device_index"))
			snprintf(dev, sizeof(dev), "[device %.0f] ",
				 num(o, "device_index", 0));
		out(f, "%s   %s%s %s%s%s: %s", pre, dev,
		    flag(o, "passed") ? "PASS" : "FAIL", str(o, "code", "?"),
		    subj[0] ? " " : "", subj, str(o, "sentence", ""));
	} else if (!strcmp(e, "set_step")) {
		out(f,
		    "%s set: all %.0f devices in %s (step %.0f of %.0f, %.1f ms)",
		    pre, num(o, "devices", 0), str(o, "state", "?"),
		    num(o, "step", 0), num(o, "steps", 0),
		    num(o, "step_ms", 0));
	} else if (!strcmp(e, "verdict")) {
		out(f, "%s verdict: %s (%.0f failed)", pre,
		    flag(o, "accept") ? "ACCEPT" : "REFUSE",
		    num(o, "failed", 0));
	} else if (!strcmp(e, "start") && set_size(o) > 1 && has(o, "listen")) {
		out(f, "%s listening on %s for a set of %zu devices", pre,
		    str(o, "listen", "?"), set_size(o));
		summary_devices(f, pre, o);
	} else if (!strcmp(e, "start") && set_size(o) > 1) {
		out(f, "%s %s a set of %zu devices to %s, %s x%.0f", pre,
		    flag(o, "check_only") ? "checking" : "migrating",
		    set_size(o), str(o, "to", "?"), str(o, "transport", "?"),
		    num(o, "streams", 0));
		summary_devices(f, pre, o);
	} else if (!strcmp(e, "start") && has(o, "listen")) {
		out(f, "%s listening on %s for %s (%s)", pre,
		    str(o, "listen", "?"), str(o, "device", "?"),
		    str(o, "state", "?"));
	} else if (!strcmp(e, "start")) {
		out(f, "%s %s %s (%s) to %s, %s x%.0f", pre,
		    flag(o, "check_only") ? "checking" : "migrating",
		    str(o, "device", "?"), str(o, "state", "?"),
		    str(o, "to", "?"), str(o, "transport", "?"),
		    num(o, "streams", 0));
	} else if (!strcmp(e, "iteration")) {
		double est = num(o, "estimated_downtime_ms", -1);
		char e_txt[32];

		if (est < 0)
			snprintf(e_txt, sizeof(e_txt), "?");
		else
			snprintf(e_txt, sizeof(e_txt), "%.0f ms", est);
		out(f,
		    "%s pre-copy iteration %.0f: %7.1f MiB in %6.0f ms (%6.0f MB/s), dirty now %6.1f MiB, est. downtime %s -> %s",
		    pre, num(o, "iteration", 0), mib(num(o, "bytes", 0)),
		    num(o, "ms", 0), num(o, "bandwidth_mbps", 0),
		    mib(num(o, "dirty_bytes", 0)), e_txt,
		    str(o, "decision", "?"));
	} else if (!strcmp(e, "phase_stop_copy") && has(o, "precopy_ms")) {
		out(f,
		    "%s source stopped (STOP_COPY) after %.0f ms of pre-copy",
		    pre, num(o, "precopy_ms", 0));
	} else if (!strcmp(e, "phase_stop_copy")) {
		out(f,
		    "%s source stopped after %.0f iterations; %.1f MiB loaded",
		    pre, num(o, "iterations", 0),
		    mib(num(o, "loaded_bytes", 0)));
	} else if (!strcmp(e, "phase_final_sent")) {
		out(f, "%s final data sent: %.1f MiB in %.1f ms", pre,
		    mib(num(o, "final_bytes", 0)), num(o, "ms", 0));
	} else if (!strcmp(e, "loaded")) {
		out(f, "%s loaded and verified, still stopped: digest %s%s",
		    pre, str(o, "state_digest", "?"),
		    !has(o, "match") ? "" :
		    flag(o, "match") ? " (match)" :
				       " (MISMATCH)");
	} else if (!strcmp(e, "summary")) {
		summary(f, pre, o);
	} else if (!strcmp(e, "source_resumed")) {
		out(f, "%s source %s from %s: %s", pre,
		    flag(o, "ok") ? "resumed (RUNNING)" : "NOT resumed",
		    str(o, "from_state", "?"), str(o, "reason", ""));
	} else if (!strcmp(e, "destination_reset")) {
		out(f, "%s destination device reset%s", pre,
		    flag(o, "ok") ? "" : " FAILED");
	} else if (!strcmp(e, "exit")) {
		out(f, "%s exit code %.0f", pre, num(o, "exit_code", -1));
	} else if (has(o, "message")) {
		out(f, "%s %s%s%s: %s", pre, strcmp(level, "info") ? level : "",
		    strcmp(level, "info") ? " " : "", e, str(o, "message", ""));
	} else if (all && !strcmp(e, "progress")) {
		out(f,
		    "%s   %s: %.1f MiB sent, %.1f MiB left, %.0f MB/s, est. downtime %.0f ms",
		    pre, str(o, "phase", "?"), mib(num(o, "bytes_sent", 0)),
		    mib(num(o, "remaining_bytes", 0)), num(o, "rate_mbps", 0),
		    num(o, "expected_downtime_ms", 0));
	} else if (all) {
		/* Anything else: its members as they are. */
		char rest[2048];
		size_t n = 0;

		rest[0] = '\0';
		json_object_object_foreach(o, k, v)
		{
			int w;

			if (!strcmp(k, "v") || !strcmp(k, "ts") ||
			    !strcmp(k, "level") || !strcmp(k, "migration_id") ||
			    !strcmp(k, "role") || !strcmp(k, "event"))
				continue;
			w = snprintf(rest + n, sizeof(rest) - n, " %s=%s", k,
				     json_object_get_string(v));
			if (w < 0 || (size_t)w >= sizeof(rest) - n)
				break;
			n += (size_t)w;
		}
		out(f, "%s %s%s", pre, e, rest);
	} else {
		return false;
	}
	return true;
}

struct reader {
	FILE *in;
	bool follow, all;
	pid_t pid;
	bool bad; /* a line was not a JSON object */
	bool done; /* the "exit" line was read */
};

/* Print every complete line available now. */
static void drain(struct reader *r, char **line, size_t *cap)
{
	ssize_t n;

	while (!r->done && (n = getline(line, cap, r->in)) > 0) {
		struct json_object *o;

		if ((*line)[n - 1] != '\n' && r->follow) {
			/* A line still being written: read it again whole. */
			fseeko(r->in, -(off_t)n, SEEK_CUR);
			break;
		}
		while (n && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
			(*line)[--n] = '\0';
		if (!n)
			continue;
		o = json_tokener_parse(*line);
		if (!o || !json_object_is_type(o, json_type_object)) {
			out(stdout, "? %s", *line);
			r->bad = true;
		} else {
			view(stdout, o, r->all);
			r->done = r->follow &&
				  !strcmp(str(o, "event", ""), "exit");
		}
		json_object_put(o);
	}
	fflush(stdout);
	clearerr(r->in);
}

static bool gone(pid_t pid)
{
	return pid > 0 && kill(pid, 0) && errno == ESRCH;
}

int vfm_cmd_log(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "pid", required_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct reader r = { 0 };
	const char *path = NULL;
	char *line = NULL, *end;
	size_t cap = 0;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "fah", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			r.follow = true;
			break;
		case 'p':
			r.pid = (pid_t)strtol(optarg, &end, 10);
			if (*end || r.pid <= 0) {
				fprintf(stderr,
					"vfmig log: --pid takes a process id, not '%s'.\n",
					optarg);
				return VFM_EXIT_USAGE;
			}
			break;
		case 'a':
			r.all = true;
			break;
		case 'h':
			log_usage(stdout);
			return VFM_EXIT_OK;
		default:
			log_usage(stderr);
			return VFM_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "vfmig log: one FILE at most (see --help).\n");
		return VFM_EXIT_USAGE;
	}
	if (argc - optind == 1 && strcmp(argv[optind], "-"))
		path = argv[optind];
	if (r.follow && !path) {
		fprintf(stderr,
			"vfmig log: --follow needs a FILE (stdin ends by itself).\n");
		return VFM_EXIT_USAGE;
	}
	/* With --follow the agent may not have created its log yet. */
	while (path && !(r.in = fopen(path, "re"))) {
		if (!r.follow || errno != ENOENT || gone(r.pid)) {
			fprintf(stderr, "vfmig log: cannot read %s: %s.\n",
				path, strerror(errno));
			return VFM_EXIT_USAGE;
		}
		usleep(100 * 1000);
	}
	if (!path)
		r.in = stdin;
	for (;;) {
		bool was_gone = gone(r.pid);

		drain(&r, &line, &cap);
		/* Gone before that last read: nothing more will come. */
		if (!r.follow || r.done || was_gone)
			break;
		usleep(100 * 1000);
	}
	free(line);
	if (r.in != stdin)
		fclose(r.in);
	return r.bad ? VFM_EXIT_ERROR : VFM_EXIT_OK;
}
