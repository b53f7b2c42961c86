/* SPDX-License-Identifier: MIT */
/* tcp backend: connection set-up (listen, accept with greeting, connect). */
#ifndef VFM_TCP_CONN_H
#define VFM_TCP_CONN_H

#include <stdint.h>

#include "tcp_wire.h"

struct vfm_xport;

int64_t vfm_tcp_now_ms(void);
int vfm_tcp_listen_fd(const char *bind_addr, int *fd, uint16_t *port);
int vfm_tcp_accept_streams(int lfd, const struct vfm_tcp_info *info, int *fds,
			   int timeout_ms);
int vfm_tcp_connect_stream(const char *peer, const struct vfm_tcp_info *info,
			   uint16_t stream, int timeout_ms, int *fd);

/* Test hook: the thread id (gettid) of the worker that last did stream
 * @stream's work (sends, receives, sealing, opening); 0 before it has
 * started, -EINVAL for a bad stream or a transport other than tcp. */
int vfm_tcp_stream_tid(struct vfm_xport *x, unsigned int stream);

#endif /* VFM_TCP_CONN_H */
