// SPDX-License-Identifier: MIT
/* Helpers shared by the transport unit tests. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xp_util.h"

int64_t xp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint8_t xp_pattern(uint64_t off)
{
	uint64_t v = off * 0x9E3779B97F4A7C15ull;

	return (uint8_t)(v >> 56) ^ (uint8_t)off;
}

void xp_fill(uint8_t *p, size_t len, uint64_t base)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = xp_pattern(base + i);
}

int xp_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void *dst_main(void *arg)
{
	struct xp_dst *d = arg;
	struct vfm_cqe c[32];
	int err, n, i;
	const struct vfm_xport_ops *ops = d->ops ? d->ops :
						   vfm_xport_find("tcp");

	err = ops->create(&d->x, &d->cfg);
	if (!err)
		err = vfm_xport_reg(d->x, d->land, d->land_len, &d->mr);
	if (!err)
		err = vfm_xport_listen(d->x, d->addr ? d->addr : "127.0.0.1",
				       &d->mr, &d->info);
	d->err = err;
	sem_post(&d->ready);
	if (err)
		return NULL;
	err = vfm_xport_accept(d->x, d->accept_timeout_ms);
	while (!err && d->bytes < d->want) {
		int64_t end = xp_now_ms() + d->poll_timeout_ms;

		do {
			n = vfm_xport_poll(d->x, c, 32,
					   d->spin ? 0 : d->poll_timeout_ms);
		} while (d->spin && !n && xp_now_ms() < end);
		if (n <= 0) {
			err = n ? n : -ETIMEDOUT;
			break;
		}
		for (i = 0; i < n; i++) {
			if (c[i].kind != VFM_CQE_RECV || c[i].status)
				err = -EBADMSG;
			if (!err && d->check)
				err = d->check(d, &c[i]);
			d->bytes += c[i].len;
			d->recvs++;
		}
	}
	d->err = err;
	return NULL;
}

void xp_dst_start(struct xp_dst *d)
{
	if (!d->accept_timeout_ms)
		d->accept_timeout_ms = 10000;
	if (!d->poll_timeout_ms)
		d->poll_timeout_ms = 10000;
	sem_init(&d->ready, 0, 0);
	pthread_create(&d->thr, NULL, dst_main, d);
	sem_wait(&d->ready);
}

void xp_dst_finish(struct xp_dst *d)
{
	pthread_join(d->thr, NULL);
	sem_destroy(&d->ready);
	if (d->x) {
		if (d->mr.priv)
			vfm_xport_dereg(d->x, &d->mr);
		vfm_xport_destroy(d->x);
		d->x = NULL;
	}
}

int xp_info(const struct vfm_xport_info *info, struct vfm_tcp_info *out)
{
	return vfm_tcp_info_decode(out, info->data, info->len);
}

int xp_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = send(fd, p, len, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int raw_connect(uint16_t port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int xp_raw_greet(uint16_t port, const uint8_t *cookie, uint16_t stream,
		 uint16_t streams, int *acked)
{
	struct vfm_tcp_greet g = { .version = VFM_TCP_WIRE_VERSION,
				   .stream = stream,
				   .streams = streams };
	uint8_t buf[VFM_TCP_GREET_LEN];
	struct pollfd p;
	size_t got = 0;
	int fd, err;

	*acked = 0;
	fd = raw_connect(port);
	if (fd < 0)
		return fd;
	memcpy(g.cookie, cookie, VFM_TCP_COOKIE_LEN);
	vfm_tcp_greet_encode(buf, &g);
	err = xp_send_all(fd, buf, sizeof(buf));
	if (err) {
		close(fd);
		return err;
	}
	while (got < VFM_TCP_ACK_LEN) {
		ssize_t r;

		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			break;
		r = recv(fd, buf + got, VFM_TCP_ACK_LEN - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	*acked = got == VFM_TCP_ACK_LEN && vfm_tcp_ack_valid(buf);
	return fd;
}

int xp_closed_port(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		close(fd);
		return -errno;
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}
