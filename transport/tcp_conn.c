// SPDX-License-Identifier: MIT
/*
 * tcp backend connection set-up. This part is short-lived and latency
 * bound, so it uses non-blocking sockets and poll(2) with one deadline;
 * the data path (tcp.c) runs on io_uring with blocking sockets.
 *
 * Each data connection opens with a greeting {stream index, session
 * cookie}; the destination answers a good one with an ack and closes any
 * other (wrong cookie, duplicate or out-of-range index, garbage, silence
 * past the deadline) while it keeps waiting for the real streams.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcp_conn.h"

#define VFM_TCP_PENDING_MAX 16 /* greetings read in parallel */

int64_t vfm_tcp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - vfm_tcp_now_ms();
	return left > 0 ? (int)(left > 1000000 ? 1000000 : left) : 0;
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : vfm_tcp_now_ms() + timeout_ms;
}

static int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/*
 * Socket options for a data stream. Buffer sizes are left to the kernel's
 * autotuning unless VFM_TCP_SOCKBUF (bytes) asks otherwise: a fixed
 * SO_SNDBUF/SO_RCVBUF turns autotuning off, and on loopback and LANs the
 * tuned buffers (tcp_wmem/tcp_rmem max) measured faster than any fixed
 * size that net.core.[rw]mem_max allows.
 */
static int tune_stream(int fd)
{
	const char *env = getenv("VFM_TCP_SOCKBUF");
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return -errno;
	if (env && *env) {
		int sz = atoi(env);

		if (sz > 0) {
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		}
	}
	return 0;
}

/* "host", "host:port", "[v6]", "[v6]:port"; NULL or "" is any address. */
static int split_addr(const char *in, char *host, size_t hlen, char *port,
		      size_t plen)
{
	const char *colon;
	size_t n;

	snprintf(port, plen, "0");
	if (!in || !*in) {
		host[0] = '\0';
		return 0;
	}
	if (in[0] == '[') {
		const char *end = strchr(in, ']');

		if (!end)
			return -EINVAL;
		n = (size_t)(end - in - 1);
		if (n >= hlen)
			return -ENAMETOOLONG;
		memcpy(host, in + 1, n);
		host[n] = '\0';
		if (end[1] == ':')
			snprintf(port, plen, "%s", end + 2);
		else if (end[1])
			return -EINVAL;
		return 0;
	}
	colon = strchr(in, ':');
	if (colon && strchr(colon + 1, ':'))
		colon = NULL; /* bare IPv6 address */
	n = colon ? (size_t)(colon - in) : strlen(in);
	if (n >= hlen)
		return -ENAMETOOLONG;
	memcpy(host, in, n);
	host[n] = '\0';
	if (colon)
		snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static int gai_errno(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		return -EHOSTUNREACH;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return -errno;
	default:
		return -EINVAL;
	}
}

int vfm_tcp_listen_fd(const char *bind_addr, int *fd_out, uint16_t *port_out)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *res, *ai;
	char host[256], port[16];
	int fd = -1, err, one = 1;

	err = split_addr(bind_addr, host, sizeof(host), port, sizeof(port));
	if (err)
		return err;
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (err)
		return gai_errno(err);
	err = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 64))
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (ss.ss_family == AF_INET6)
		*port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

struct pending {
	int fd;
	unsigned int got;
	int64_t deadline;
	uint8_t buf[VFM_TCP_GREET_LEN];
};

/* Returns the stream index a complete greeting names, or -1 to refuse. */
static int greet_check(const struct pending *p, const struct vfm_tcp_info *info,
		       const int *fds)
{
	struct vfm_tcp_greet g;

	if (vfm_tcp_greet_decode(&g, p->buf))
		return -1;
	if (CRYPTO_memcmp(g.cookie, info->cookie, VFM_TCP_COOKIE_LEN))
		return -1;
	if (g.streams != info->streams || g.stream >= info->streams ||
	    fds[g.stream] >= 0)
		return -1;
	return g.stream;
}

static void drop(struct pending *pend, unsigned int *n, unsigned int i)
{
	if (pend[i].fd >= 0)
		close(pend[i].fd);
	pend[i] = pend[--*n];
}

/* Read more of pending greeting @i; 1 when it became a stream, 0 else. */
static int greet_read(struct pending *pend, unsigned int *n, unsigned int i,
		      const struct vfm_tcp_info *info, int *fds)
{
	struct pending *p = &pend[i];
	uint8_t ack[VFM_TCP_ACK_LEN];
	ssize_t r;
	int idx;

	r = recv(p->fd, p->buf + p->got, VFM_TCP_GREET_LEN - p->got,
		 MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		drop(pend, n, i);
		return 0;
	}
	p->got += (unsigned int)r;
	if (p->got < VFM_TCP_GREET_LEN)
		return 0;
	idx = greet_check(p, info, fds);
	vfm_tcp_ack_encode(ack);
	/* 8 bytes into an empty socket buffer: never short. */
	if (idx < 0 ||
	    send(p->fd, ack, sizeof(ack), MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)sizeof(ack)) {
		drop(pend, n, i);
		return 0;
	}
	fds[idx] = p->fd;
	p->fd = -1;
	drop(pend, n, i);
	return 1;
}

int vfm_tcp_accept_streams(int lfd, const struct vfm_tcp_info *info, int *fds,
			   int timeout_ms)
{
	struct pending pend[VFM_TCP_PENDING_MAX];
	struct pollfd pfd[VFM_TCP_PENDING_MAX + 1];
	int64_t deadline = deadline_of(timeout_ms);
	unsigned int n = 0, have = 0, i;
	int err = 0, r;

	for (i = 0; i < info->streams; i++)
		fds[i] = -1;
	while (have < info->streams) {
		int64_t now = vfm_tcp_now_ms();

		/* A silent connection may hold a slot for at most 2 s. */
		for (i = 0; i < n;)
			if (now >= pend[i].deadline)
				drop(pend, &n, i);
			else
				i++;
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < n; i++)
			pfd[i + 1] = (struct pollfd){ .fd = pend[i].fd,
						      .events = POLLIN };
		r = poll(pfd, n + 1, n ? 100 : remaining_ms(deadline));
		if (r < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		for (i = n; i > 0; i--)
			if (r > 0 && pfd[i].revents)
				have += (unsigned int)greet_read(
					pend, &n, i - 1, info, fds);
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			int fd = accept4(lfd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd >= 0 && n == VFM_TCP_PENDING_MAX)
				drop(pend, &n, 0);
			if (fd >= 0) {
				pend[n].fd = fd;
				pend[n].got = 0;
				pend[n].deadline = vfm_tcp_now_ms() + 2000;
				n++;
			}
		}
		if (have < info->streams && deadline >= 0 &&
		    vfm_tcp_now_ms() >= deadline) {
			err = -ETIMEDOUT;
			break;
		}
	}
	while (n)
		drop(pend, &n, 0);
	for (i = 0; i < info->streams && !err; i++) {
		err = tune_stream(fds[i]);
		if (!err)
			err = set_nonblock(fds[i], false);
	}
	if (err)
		for (i = 0; i < info->streams; i++) {
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = -1;
		}
	return err;
}

/* Wait for @ev on @fd until @deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do {
		r = poll(&p, 1, remaining_ms(deadline));
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fd_out)
{
	socklen_t sl = sizeof(int);
	int fd, err, soerr = 0;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	err = tune_stream(fd);
	if (!err && connect(fd, ai->ai_addr, ai->ai_addrlen) &&
	    errno != EINPROGRESS)
		err = -errno;
	if (!err)
		err = wait_fd(fd, POLLOUT, deadline);
	if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
		err = -errno;
	if (!err && soerr)
		err = -soerr;
	if (err) {
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

static int greet_exchange(int fd, const struct vfm_tcp_info *info,
			  uint16_t stream, int64_t deadline)
{
	struct vfm_tcp_greet g = {
		.version = VFM_TCP_WIRE_VERSION,
		.stream = stream,
		.streams = info->streams,
	};
	uint8_t buf[VFM_TCP_GREET_LEN];
	size_t got = 0;
	ssize_t r;
	int err;

	memcpy(g.cookie, info->cookie, VFM_TCP_COOKIE_LEN);
	vfm_tcp_greet_encode(buf, &g);
	/* 32 bytes into a fresh connection's empty buffer: never short. */
	r = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
	if (r != (ssize_t)sizeof(buf))
		return r < 0 ? -errno : -EIO;
	while (got < VFM_TCP_ACK_LEN) {
		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			return err;
		r = recv(fd, buf + got, VFM_TCP_ACK_LEN - got, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0)
			return errno == ECONNRESET ? -ECONNREFUSED : -errno;
		if (r == 0)
			return -ECONNREFUSED; /* refused: wrong session */
		got += (size_t)r;
	}
	return vfm_tcp_ack_valid(buf) ? 0 : -EPROTO;
}

int vfm_tcp_connect_stream(const char *peer, const struct vfm_tcp_info *info,
			   uint16_t stream, int timeout_ms, int *fd_out)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	int64_t deadline = deadline_of(timeout_ms);
	char host[256], port[16];
	struct addrinfo *res, *ai;
	int fd = -1, err;

	err = split_addr(peer, host, sizeof(host), port, sizeof(port));
	if (err)
		return err;
	if (!host[0])
		return -EDESTADDRREQ;
	snprintf(port, sizeof(port), "%u", info->port);
	err = getaddrinfo(host, port, &hints, &res);
	if (err)
		return gai_errno(err);
	err = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		err = connect_one(ai, deadline, &fd);
		if (!err)
			break;
	}
	freeaddrinfo(res);
	if (err)
		return err;
	err = greet_exchange(fd, info, stream, deadline);
	if (!err)
		err = set_nonblock(fd, false);
	if (err) {
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}
