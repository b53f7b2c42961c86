// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

int vfm_addr_split(const char *addr, char *host, size_t hostcap, char *port,
		   size_t portcap)
{
	const char *colon;
	size_t hl;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - addr - 1);
		addr++;
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - addr);
	}
	if (hl >= hostcap || strlen(colon + 1) >= portcap || !colon[1])
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	snprintf(port, portcap, "%s", colon + 1);
	return 0;
}

static int resolve(const char *addr, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	char host[256], port[32];

	if (vfm_addr_split(addr, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	hints.ai_flags |= AI_NUMERICSERV;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, res))
		return -EHOSTUNREACH;
	return 0;
}

int vfm_listen_tcp(const char *addr, char *why, size_t whylen)
{
	struct addrinfo *res;
	int one = 1, fd, ret = resolve(addr, true, &res);

	if (ret) {
		snprintf(why, whylen,
			 "'%s' is not an ADDRESS:PORT to listen on.", addr);
		return ret;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 128)) {
		ret = -errno;
		snprintf(why, whylen, "Cannot listen on %s: %s.", addr,
			 strerror(errno));
		close(fd);
		goto out;
	}
	ret = fd;
out:
	freeaddrinfo(res);
	return ret;
}

static void tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void name_peer(struct vfm_conn *c, const struct sockaddr *sa,
		      socklen_t len)
{
	char h[128], p[16];

	if (getnameinfo(sa, len, h, sizeof(h), p, sizeof(p),
			NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(c->peer, sizeof(c->peer), "?");
	else
		snprintf(c->peer, sizeof(c->peer), "%s:%s", h, p);
}

int vfm_conn_accept(struct vfm_conn *c, int lfd, int timeout_ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r = poll(&p, 1, timeout_ms);

	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	c->fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	name_peer(c, (struct sockaddr *)&ss, sl);
	c->rx_len = c->frame_len = 0;
	tune(c->fd);
	return 0;
}

/* One connection attempt within @timeout_ms: the socket, or -errno. */
static int connect_once(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd p;
	int fd, r, err = 0;
	socklen_t el = sizeof(err);

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r <= 0) {
		err = r ? errno : ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err)
		goto fail;
	return fd;
fail:
	close(fd);
	return -err;
}

/*
 * Connect within @timeout_ms. A refused connection is tried again until
 * then: an orchestrator starts both agents at about the same time, and the
 * destination may not listen yet.
 */
int vfm_conn_connect(struct vfm_conn *c, const char *addr, int timeout_ms)
{
	struct addrinfo *res;
	double deadline = vfm_now_ms() + timeout_ms;
	int ret = resolve(addr, false, &res), pause_ms = 50;

	c->fd = -1;
	c->rx_len = c->frame_len = 0;
	if (ret) {
		snprintf(c->why, sizeof(c->why),
			 "'%s' is not a HOST:PORT to connect to.", addr);
		return ret;
	}
	name_peer(c, res->ai_addr, res->ai_addrlen);
	for (;;) {
		int left = (int)(deadline - vfm_now_ms());

		ret = connect_once(res, left > 0 ? left : 0);
		if (ret >= 0 || ret != -ECONNREFUSED || left <= pause_ms)
			break;
		usleep(pause_ms * 1000);
		if (pause_ms < 500)
			pause_ms *= 2;
	}
	if (ret < 0) {
		snprintf(c->why, sizeof(c->why), "Cannot connect to %s: %s.",
			 addr, strerror(-ret));
	} else {
		c->fd = ret;
		tune(c->fd);
		ret = 0;
	}
	freeaddrinfo(res);
	return ret;
}

void vfm_conn_close(struct vfm_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int vfm_conn_send(struct vfm_conn *c, const void *buf, size_t len,
		  int timeout_ms)
{
	const uint8_t *p = buf;
	double deadline = vfm_now_ms() + timeout_ms;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return errno == EPIPE ? -ECONNRESET : -errno;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
			int left = (int)(deadline - vfm_now_ms());

			if (left <= 0)
				return -ETIMEDOUT;
			poll(&pf, 1, left);
		}
	}
	return 0;
}

int vfm_conn_recv(struct vfm_conn *c, int timeout_ms, const uint8_t **frame,
		  size_t *len)
{
	double deadline = vfm_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct vfm_err err;

	if (c->frame_len) {
		memmove(c->rx, c->rx + c->frame_len, c->rx_len - c->frame_len);
		c->rx_len -= c->frame_len;
		c->frame_len = 0;
	}
	for (;;) {
		size_t flen;
		ssize_t n;
		int ret;

		vfm_err_clear(&err);
		ret = vfm_frame_peek(c->rx, c->rx_len, &flen, &err);
		if (ret && ret != -EAGAIN) {
			snprintf(c->why, sizeof(c->why), "%s", err.msg);
			return ret;
		}
		if (!ret && c->rx_len >= flen) {
			c->frame_len = flen;
			*frame = c->rx;
			*len = flen;
			return 1;
		}
		n = recv(c->fd, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len,
			 0);
		if (n > 0) {
			c->rx_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			snprintf(c->why, sizeof(c->why),
				 "The peer %s closed the control connection.",
				 c->peer);
			return -ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			int e = errno;

			snprintf(c->why, sizeof(c->why),
				 "The control connection to %s failed: %s.",
				 c->peer, strerror(e));
			return -e;
		}
		{
			struct pollfd pf = { .fd = c->fd, .events = POLLIN };
			int left = (int)(deadline - vfm_now_ms());

			if (left <= 0)
				return 0;
			if (poll(&pf, 1, left) == 0)
				return 0;
		}
	}
}
