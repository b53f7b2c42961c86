/* SPDX-License-Identifier: MIT */
/*
 * Telling the service manager (systemd, Type=notify) where the agent is:
 * READY=1 once it listens (recv) or holds an authenticated connection
 * (send, check), STATUS= with the phase and the once-a-second progress,
 * STOPPING=1 when it ends. Driven by the log's events (log.c), so the
 * engines know nothing of it. Without $NOTIFY_SOCKET every call is a no-op.
 */
#ifndef VFM_NOTIFY_H
#define VFM_NOTIFY_H

#include "log.h"

/* Called by vfm_log_emit() with every event and its fields. */
void vfm_notify_event(const char *event, const struct vfm_json *fields);
/* Called when the log closes: the process is about to exit. */
void vfm_notify_stopping(void);

#endif
