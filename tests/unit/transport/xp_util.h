/* SPDX-License-Identifier: MIT */
/* Helpers shared by the transport unit tests. */
#ifndef VFM_XP_UTIL_H
#define VFM_XP_UTIL_H

#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

#include "vfm/transport.h"
#include "tcp_wire.h"

/* A destination endpoint run on its own thread. */
struct xp_dst {
	const struct vfm_xport_ops *ops; /* NULL: tcp */
	const char *addr; /* NULL: 127.0.0.1 */
	struct vfm_xport_cfg cfg;
	struct vfm_xport *x;
	struct vfm_mr mr;
	uint8_t *land;
	size_t land_len;
	struct vfm_xport_info info;
	sem_t ready; /* info is valid (or err is set) */
	pthread_t thr;
	int accept_timeout_ms;
	/* filled by the thread: */
	int err; /* first error: listen, accept or poll */
	uint64_t bytes; /* RECV bytes seen */
	uint64_t recvs; /* RECV completions seen */
	uint64_t want; /* stop after this many bytes */
	int poll_timeout_ms; /* per poll call; stop on 0 completions */
	int spin; /* poll with timeout 0 until poll_timeout_ms */
	/* optional check of every RECV completion, returns 0 when good */
	int (*check)(struct xp_dst *d, const struct vfm_cqe *c);
	void *priv;
};

/* Starts the thread; returns after listen (d->info valid unless d->err). */
void xp_dst_start(struct xp_dst *d);
/* Joins the thread and destroys the endpoint. */
void xp_dst_finish(struct xp_dst *d);

int xp_fd_count(void);
int64_t xp_now_ms(void);
uint8_t xp_pattern(uint64_t off);
void xp_fill(uint8_t *p, size_t len, uint64_t base);

/* The peer's port and cookie, decoded from an info blob. */
int xp_info(const struct vfm_xport_info *info, struct vfm_tcp_info *out);
/* A raw TCP connection that greets as stream @stream with @cookie;
 * returns the fd, or -errno; *acked tells whether the peer accepted. */
int xp_raw_greet(uint16_t port, const uint8_t *cookie, uint16_t stream,
		 uint16_t streams, int *acked);
/* Blocking helpers on raw sockets. */
int xp_send_all(int fd, const void *buf, size_t len);
int xp_closed_port(void);

#endif /* VFM_XP_UTIL_H */
