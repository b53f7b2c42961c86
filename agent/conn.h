/* SPDX-License-Identifier: MIT */
/* The control connection: a TCP socket carrying proto's framed messages,
 * with a deadline on every wait. */
#ifndef VFM_CONN_H
#define VFM_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "vfm/wire.h"

struct vfm_conn {
	int fd;
	uint8_t rx[VFM_WIRE_FRAME_MAX * 2];
	size_t rx_len; /* bytes buffered */
	size_t frame_len; /* the frame last returned, dropped on next recv */
	char peer[160]; /* "addr:port" */
	char why[256]; /* the last error, as a sentence */
};

/* "host:port", "[v6]:port" -> host, port. */
int vfm_addr_split(const char *addr, char *host, size_t hostcap, char *port,
		   size_t portcap);

/* Listening socket on @addr ("0.0.0.0:7000"); returns the fd or -errno. */
int vfm_listen_tcp(const char *addr, char *why, size_t whylen);
/* Wait up to @timeout_ms for one connection on @lfd. */
int vfm_conn_accept(struct vfm_conn *c, int lfd, int timeout_ms);
int vfm_conn_connect(struct vfm_conn *c, const char *addr, int timeout_ms);
void vfm_conn_close(struct vfm_conn *c);

int vfm_conn_send(struct vfm_conn *c, const void *buf, size_t len,
		  int timeout_ms);
/*
 * The next whole frame: 1 with *frame and *len (valid until the next call), 0 on
 * timeout (@timeout_ms 0: just check), -ECONNRESET when the peer closed,
 * -EBADMSG/-EMSGSIZE for bytes that are not a vfmig frame, -errno.
 */
int vfm_conn_recv(struct vfm_conn *c, int timeout_ms, const uint8_t **frame,
		  size_t *len);

#endif
