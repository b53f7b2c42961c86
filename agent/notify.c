// SPDX-License-Identifier: MIT
/* sd_notify(3) from the log's events: READY=1, STATUS=, STOPPING=1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "notify.h"

static bool vfm_notify_ready;

/* Send @state plus "STATUS=@status" (one line: newlines would end it). */
static void notify(const char *state, const char *status)
{
	char msg[600];
	int n = snprintf(msg, sizeof(msg), "%s%sSTATUS=", state,
			 state[0] ? "\n" : "");

	for (const char *p = status; *p && n + 1 < (int)sizeof(msg); p++)
		msg[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
	msg[n] = '\0';
	/* Nothing to do about a failure: the service manager is gone. */
	(void)sd_notify(0, msg);
}

static const char *str_or(const struct vfm_json *j, const char *key,
			  const char *dflt)
{
	const char *s = vfm_json_get_str(j, key);

	return s ? s : dflt;
}

static void progress(const struct vfm_json *j)
{
	double sent = 0, left = 0, mbps = 0, it = 0;
	char st[256];

	vfm_json_get_num(j, "bytes_sent", &sent);
	vfm_json_get_num(j, "remaining_bytes", &left);
	vfm_json_get_num(j, "rate_mbps", &mbps);
	vfm_json_get_num(j, "iteration", &it);
	snprintf(
		st, sizeof(st),
		"%s, iteration %.0f: %.0f%% (%.1f MiB sent, %.1f MiB left), %.0f MB/s",
		str_or(j, "phase", "transfer"), it,
		sent + left > 0 ? sent * 100 / (sent + left) : 0,
		sent / 1048576.0, left / 1048576.0, mbps);
	notify("", st);
}

void vfm_notify_event(const char *event, const struct vfm_json *j)
{
	const char *s;
	char st[512];

	if (!getenv("NOTIFY_SOCKET"))
		return;
	if (!strcmp(event, "progress")) {
		progress(j);
	} else if (!strcmp(event, "start") &&
		   (s = vfm_json_get_str(j, "listen"))) {
		/* recv: its socket is bound and listening */
		snprintf(st, sizeof(st), "listening on %s for one migration",
			 s);
		notify("READY=1", st);
		vfm_notify_ready = true;
	} else if (!strcmp(event, "start")) {
		snprintf(st, sizeof(st), "connecting to %s",
			 str_or(j, "to", "the destination"));
		notify("", st);
	} else if (!strcmp(event, "handshake")) {
		snprintf(st, sizeof(st),
			 "authenticated with %s, checking compatibility",
			 str_or(j, "peer", "the peer"));
		notify(vfm_notify_ready ? "" : "READY=1", st);
		vfm_notify_ready = true;
	} else if (!strcmp(event, "summary")) {
		snprintf(st, sizeof(st), "%s%s%s", str_or(j, "result", "done"),
			 vfm_json_get_str(j, "reason") ? ": " : "",
			 str_or(j, "reason", ""));
		notify("", st);
	} else if ((s = vfm_json_get_str(j, "message"))) {
		notify("", s);
	}
}

void vfm_notify_stopping(void)
{
	if (getenv("NOTIFY_SOCKET"))
		(void)sd_notify(0, "STOPPING=1");
}
