// SPDX-License-Identifier: MIT
/* The destination's listening port: handshakes side by side, each with a
 * deadline, none able to end the agent (listener.h). */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

int vfm_lsn_init(struct vfm_lsn *l, int lfd, const struct vfm_hs_cfg *cfg,
		 double preauth_s)
{
	memset(l, 0, sizeof(*l));
	/* Every pre-auth handshake session is larger than 64 KiB: with a
	 * fixed threshold (no dynamic raise) glibc maps each one and gives
	 * it back when the connection is dropped, so a flood of peers leaves
	 * no heap behind. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	l->slots = calloc(VFM_LSN_SLOTS, sizeof(*l->slots));
	if (!l->slots)
		return -ENOMEM;
	l->lfd = lfd;
	l->cfg = *cfg;
	l->preauth_ms = preauth_s * 1000;
	for (unsigned int i = 0; i < VFM_LSN_SLOTS; i++)
		l->slots[i].conn.fd = -1;
	return 0;
}

static void slot_close(struct vfm_lsn_slot *s)
{
	vfm_hs_free(s->hs);
	s->hs = NULL;
	vfm_conn_close(&s->conn);
	s->used = false;
}

void vfm_lsn_fini(struct vfm_lsn *l)
{
	if (!l->slots)
		return;
	for (unsigned int i = 0; i < VFM_LSN_SLOTS; i++)
		if (l->slots[i].used)
			slot_close(&l->slots[i]);
	free(l->slots);
	l->slots = NULL;
	if (l->lfd >= 0)
		close(l->lfd);
	l->lfd = -1;
}

/* One line a second at most; the rest are counted into the next one. */
static void drop(struct vfm_lsn *l, struct vfm_lsn_slot *s, const char *why)
{
	double now = vfm_now_ms();

	l->dropped++;
	l->unlogged++;
	if (now - l->last_log >= 1000) {
		vfm_log_msg(
			"connection_dropped", "warning",
			"Dropped a connection from %s before it authenticated: %s (%lu dropped since the last report, %lu in all).",
			s->conn.peer, why, l->unlogged, l->dropped);
		l->unlogged = 0;
		l->last_log = now;
	}
	slot_close(s);
}

static void accept_new(struct vfm_lsn *l)
{
	for (int n = 0; n < 64; n++) {
		struct vfm_lsn_slot *free_slot = NULL;
		struct pollfd pf = { .fd = l->lfd, .events = POLLIN };
		struct vfm_err err;
		int ret;

		if (poll(&pf, 1, 0) <= 0)
			return;
		for (unsigned int i = 0; i < VFM_LSN_SLOTS; i++)
			if (!l->slots[i].used) {
				free_slot = &l->slots[i];
				break;
			}
		if (!free_slot) {
			/* Full: the oldest pending handshake makes room, so a
			 * flood cannot hold every slot until its deadline. */
			struct vfm_lsn_slot *old = &l->slots[0];

			for (unsigned int i = 1; i < VFM_LSN_SLOTS; i++)
				if (l->slots[i].deadline < old->deadline)
					old = &l->slots[i];
			drop(l, old, "too many connections waiting");
			free_slot = old;
		}
		ret = vfm_conn_accept(&free_slot->conn, l->lfd, 0);
		if (ret)
			return;
		vfm_err_clear(&err);
		ret = vfm_hs_new(&free_slot->hs, &l->cfg, &err);
		if (!ret)
			ret = vfm_hs_start(free_slot->hs);
		free_slot->used = true;
		free_slot->deadline = vfm_now_ms() + l->preauth_ms;
		if (ret)
			drop(l, free_slot, "no handshake session");
	}
}

static int flush(struct vfm_lsn_slot *s)
{
	const uint8_t *out;
	size_t n = vfm_hs_output(s->hs, &out);
	int ret;

	if (!n)
		return 0;
	ret = vfm_conn_send(&s->conn, out, n, 1000);
	if (!ret)
		vfm_hs_consumed(s->hs, n);
	return ret;
}

/* Advance one handshake with what has arrived. 1 when it is done. */
static int advance(struct vfm_lsn *l, struct vfm_lsn_slot *s)
{
	for (;;) {
		const uint8_t *frame;
		size_t len;
		int ret = vfm_conn_recv(&s->conn, 0, &frame, &len);

		if (ret == 0)
			return 0;
		if (ret < 0) {
			drop(l, s,
			     ret == -ECONNRESET ?
				     "it closed the connection" :
			     (ret == -EBADMSG || ret == -EMSGSIZE) ?
				     "it does not speak the vfmig protocol" :
				     strerror(-ret));
			return 0;
		}
		vfm_hs_recv(s->hs, frame, len);
		if (flush(s) && !vfm_hs_failed(s->hs)) {
			drop(l, s, "it did not take the answer");
			return 0;
		}
		if (vfm_hs_done(s->hs))
			return 1;
		if (vfm_hs_failed(s->hs)) {
			char why[300];

			if (vfm_hs_error(s->hs) == -EACCES)
				l->auth_failed++;
			snprintf(why, sizeof(why), "%s", vfm_hs_reason(s->hs));
			drop(l, s, why);
			return 0;
		}
	}
}

int vfm_lsn_poll(struct vfm_lsn *l, int timeout_ms, struct vfm_conn *out,
		 struct vfm_hs **hs)
{
	double until = vfm_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pf[VFM_LSN_SLOTS + 1];
		struct vfm_lsn_slot *who[VFM_LSN_SLOTS + 1];
		double now = vfm_now_ms(), next = until;
		unsigned int n = 0;
		int r;

		pf[n] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
		who[n++] = NULL;
		for (unsigned int i = 0; i < VFM_LSN_SLOTS; i++) {
			struct vfm_lsn_slot *s = &l->slots[i];

			if (!s->used)
				continue;
			if (s->deadline <= now) {
				drop(l, s,
				     "it did not authenticate in time (pre-auth deadline)");
				continue;
			}
			if (s->deadline < next)
				next = s->deadline;
			pf[n] = (struct pollfd){ .fd = s->conn.fd,
						 .events = POLLIN };
			who[n++] = s;
		}
		r = poll(pf, n, next > now ? (int)(next - now) + 1 : 0);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r < 0)
			return 0; /* a signal: let the caller look */
		for (unsigned int i = 1; i < n && r > 0; i++) {
			struct vfm_lsn_slot *s = who[i];

			if (!pf[i].revents || !s->used)
				continue;
			if (advance(l, s) == 1) {
				*out = s->conn;
				*hs = s->hs;
				s->hs = NULL;
				s->conn.fd = -1;
				s->used = false;
				return 1;
			}
		}
		if (pf[0].revents)
			accept_new(l);
		if (vfm_now_ms() >= until)
			return 0;
	}
}
