// SPDX-License-Identifier: MIT
/*
 * The switchover's two state machines as tables (see vfm/switchover.h).
 * Every (state, event) pair has an entry; the unit test checks that and
 * walks every single fault against the invariant.
 */
#include <stdio.h>
#include <string.h>

#include "vfm/switchover.h"

#define S(x) VFM_SW_S_##x
#define D(x) VFM_SW_D_##x
#define A(x) VFM_SW_A_##x
#define T(n, a)                            \
	{                                  \
		.next = (n), .action = (a) \
	}

/* A source event that a state does not act on: stay, and say so. */
#define SKEEP(st) T(S(st), A(IGNORED))
#define DKEEP(st) T(D(st), A(IGNORED))

static const struct vfm_sw_step src_table[VFM_SW_S_NSTATES][VFM_SW_SE_NEVENTS] = {
	/* Running, saving: nothing has left this host yet that can run. */
	[S(PRECOPY)] = {
		[VFM_SW_SE_STOP] = T(S(STOPPED), A(STOP_DEVICE)),
		/* LOADED or COMMIT before the source stopped: a broken peer.
		 * The destination cannot run without RUN: resume. */
		[VFM_SW_SE_LOADED_OK] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_LOADED_BAD] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_COMMITTED] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_ABORTED] = T(S(RESUMED), A(RESUME)),
		[VFM_SW_SE_FAULT] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_CANCEL] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_QUERY_EXPIRED] = SKEEP(PRECOPY),
	},
	/* Stopped, RUN not sent: the destination cannot run, so resuming is
	 * always safe here, whatever happened. */
	[S(STOPPED)] = {
		[VFM_SW_SE_STOP] = SKEEP(STOPPED),
		[VFM_SW_SE_LOADED_OK] = T(S(GO), A(SEND_RUN)),
		[VFM_SW_SE_LOADED_BAD] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		/* A COMMIT without RUN is a destination that broke the
		 * protocol; it may run: never resume on its word. */
		[VFM_SW_SE_COMMITTED] = T(S(UNKNOWN), A(SEND_FAIL)),
		[VFM_SW_SE_ABORTED] = T(S(RESUMED), A(RESUME)),
		[VFM_SW_SE_FAULT] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_CANCEL] = T(S(RESUMED), A(RESUME) | A(SEND_FAIL)),
		[VFM_SW_SE_QUERY_EXPIRED] = SKEEP(STOPPED),
	},
	/* RUN sent: the destination may be running. Only its word decides. */
	[S(GO)] = {
		[VFM_SW_SE_STOP] = SKEEP(GO),
		[VFM_SW_SE_LOADED_OK] = SKEEP(GO),
		[VFM_SW_SE_LOADED_BAD] = SKEEP(GO),
		[VFM_SW_SE_COMMITTED] = T(S(MIGRATED), A(NONE)),
		/* FAIL after RUN: the destination reset and will not run. */
		[VFM_SW_SE_ABORTED] = T(S(RESUMED), A(RESUME)),
		[VFM_SW_SE_FAULT] = T(S(QUERY), A(QUERY)),
		[VFM_SW_SE_CANCEL] = SKEEP(GO),
		[VFM_SW_SE_QUERY_EXPIRED] = T(S(QUERY), A(QUERY)),
	},
	[S(QUERY)] = {
		[VFM_SW_SE_STOP] = SKEEP(QUERY),
		[VFM_SW_SE_LOADED_OK] = SKEEP(QUERY),
		[VFM_SW_SE_LOADED_BAD] = SKEEP(QUERY),
		[VFM_SW_SE_COMMITTED] = T(S(MIGRATED), A(NONE)),
		[VFM_SW_SE_ABORTED] = T(S(RESUMED), A(RESUME)),
		[VFM_SW_SE_FAULT] = T(S(QUERY), A(QUERY)),
		[VFM_SW_SE_CANCEL] = SKEEP(QUERY),
		[VFM_SW_SE_QUERY_EXPIRED] = T(S(UNKNOWN), A(NONE)),
	},
	/* Ends: nothing changes them. */
	[S(MIGRATED)] = { SKEEP(MIGRATED), SKEEP(MIGRATED), SKEEP(MIGRATED),
			  SKEEP(MIGRATED), SKEEP(MIGRATED), SKEEP(MIGRATED),
			  SKEEP(MIGRATED), SKEEP(MIGRATED) },
	[S(RESUMED)] = { SKEEP(RESUMED), SKEEP(RESUMED), SKEEP(RESUMED),
			 SKEEP(RESUMED), SKEEP(RESUMED), SKEEP(RESUMED),
			 SKEEP(RESUMED), SKEEP(RESUMED) },
	[S(UNKNOWN)] = { SKEEP(UNKNOWN), SKEEP(UNKNOWN), SKEEP(UNKNOWN),
			 SKEEP(UNKNOWN), SKEEP(UNKNOWN), SKEEP(UNKNOWN),
			 SKEEP(UNKNOWN), SKEEP(UNKNOWN) },
};

static const struct vfm_sw_step dst_table[VFM_SW_D_NSTATES][VFM_SW_DE_NEVENTS] = {
	[D(RECEIVING)] = {
		[VFM_SW_DE_LOAD_OK] = T(D(LOADED), A(SEND_LOADED)),
		[VFM_SW_DE_LOAD_BAD] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		/* RUN before LOADED: a broken source; never run unverified. */
		[VFM_SW_DE_RUN] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_START_FAILED] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_SRC_FAIL] = T(D(ABORTED), A(RESET)),
		[VFM_SW_DE_FAULT] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_CANCEL] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_QUERY] = T(D(ABORTED), A(RESET) | A(ANSWER)),
	},
	/* Loaded and stopped: only RUN starts it. Anything else decides
	 * "aborted" for good, so a source that asks later learns it can
	 * resume. */
	[D(LOADED)] = {
		[VFM_SW_DE_LOAD_OK] = DKEEP(LOADED),
		[VFM_SW_DE_LOAD_BAD] = DKEEP(LOADED),
		[VFM_SW_DE_RUN] = T(D(RUNNING), A(START)),
		[VFM_SW_DE_START_FAILED] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_SRC_FAIL] = T(D(ABORTED), A(RESET)),
		[VFM_SW_DE_FAULT] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_CANCEL] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_QUERY] = T(D(ABORTED), A(RESET) | A(ANSWER)),
	},
	/* Running: a start that failed undoes it; the rest only asks. */
	[D(RUNNING)] = {
		[VFM_SW_DE_LOAD_OK] = DKEEP(RUNNING),
		[VFM_SW_DE_LOAD_BAD] = DKEEP(RUNNING),
		[VFM_SW_DE_RUN] = DKEEP(RUNNING),
		[VFM_SW_DE_START_FAILED] = T(D(ABORTED), A(RESET) | A(SEND_FAIL)),
		[VFM_SW_DE_SRC_FAIL] = DKEEP(RUNNING),
		[VFM_SW_DE_FAULT] = DKEEP(RUNNING),
		[VFM_SW_DE_CANCEL] = DKEEP(RUNNING),
		[VFM_SW_DE_QUERY] = T(D(RUNNING), A(ANSWER)),
	},
	[D(ABORTED)] = {
		[VFM_SW_DE_LOAD_OK] = DKEEP(ABORTED),
		[VFM_SW_DE_LOAD_BAD] = DKEEP(ABORTED),
		/* A RUN that arrives after the decision: say FAIL again. */
		[VFM_SW_DE_RUN] = T(D(ABORTED), A(SEND_FAIL)),
		[VFM_SW_DE_START_FAILED] = DKEEP(ABORTED),
		[VFM_SW_DE_SRC_FAIL] = DKEEP(ABORTED),
		[VFM_SW_DE_FAULT] = DKEEP(ABORTED),
		[VFM_SW_DE_CANCEL] = DKEEP(ABORTED),
		[VFM_SW_DE_QUERY] = T(D(ABORTED), A(ANSWER)),
	},
};

struct vfm_sw_step vfm_sw_src_step(enum vfm_sw_src_state s,
				   enum vfm_sw_src_event e)
{
	if ((unsigned int)s >= VFM_SW_S_NSTATES ||
	    (unsigned int)e >= VFM_SW_SE_NEVENTS)
		return (struct vfm_sw_step)T((int)s, A(IGNORED));
	return src_table[s][e];
}

struct vfm_sw_step vfm_sw_dst_step(enum vfm_sw_dst_state s,
				   enum vfm_sw_dst_event e)
{
	if ((unsigned int)s >= VFM_SW_D_NSTATES ||
	    (unsigned int)e >= VFM_SW_DE_NEVENTS)
		return (struct vfm_sw_step)T((int)s, A(IGNORED));
	return dst_table[s][e];
}

bool vfm_sw_src_final(enum vfm_sw_src_state s)
{
	return s == S(MIGRATED) || s == S(RESUMED) || s == S(UNKNOWN);
}

bool vfm_sw_dst_final(enum vfm_sw_dst_state s)
{
	return s == D(RUNNING) || s == D(ABORTED);
}

bool vfm_sw_src_committed(enum vfm_sw_src_state s)
{
	return s == S(GO) || s == S(QUERY) || s == S(MIGRATED) ||
	       s == S(UNKNOWN);
}

static const char *const src_states[] = { "precopy", "stopped",	 "go",
					  "query",   "migrated", "resumed",
					  "unknown" };
static const char *const src_events[] = { "stop",	"loaded_ok",
					  "loaded_bad", "committed",
					  "aborted",	"fault",
					  "cancel",	"query_expired" };
static const char *const dst_states[] = { "receiving", "loaded", "running",
					  "aborted" };
static const char *const dst_events[] = { "load_ok",	 "load_bad",
					  "run",	 "start_failed",
					  "source_fail", "fault",
					  "cancel",	 "query" };
static const char *const actions[] = { "stop_device", "send_run", "resume",
				       "send_fail",   "query",	  "send_loaded",
				       "start",	      "reset",	  "answer",
				       "ignored" };

#define NAME(tab, i) \
	((unsigned int)(i) < sizeof(tab) / sizeof(tab[0]) ? tab[i] : "invalid")

const char *vfm_sw_src_state_name(enum vfm_sw_src_state s)
{
	return NAME(src_states, s);
}

const char *vfm_sw_src_event_name(enum vfm_sw_src_event e)
{
	return NAME(src_events, e);
}

const char *vfm_sw_dst_state_name(enum vfm_sw_dst_state s)
{
	return NAME(dst_states, s);
}

const char *vfm_sw_dst_event_name(enum vfm_sw_dst_event e)
{
	return NAME(dst_events, e);
}

const char *vfm_sw_action_names(unsigned int action, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (unsigned int i = 0; i < sizeof(actions) / sizeof(actions[0]);
	     i++) {
		int n;

		if (!(action & (1u << i)))
			continue;
		n = snprintf(buf + off, len - off, "%s%s", off ? "|" : "",
			     actions[i]);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (!off)
		snprintf(buf, len, "none");
	return buf;
}
