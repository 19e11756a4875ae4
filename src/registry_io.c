/* SPDX-License-Identifier: MIT */
/*
 * Socket I/O of a device connection, without a bufferevent: one embedded
 * event watches the socket for reading, and for writing only while output
 * is queued. Reads go to the registry's scratch buffer, complete units
 * are handed to registry_conn_input() straight from it, and only a
 * partial frame is copied to the connection until its rest arrives.
 * Writes go straight to the socket when nothing is queued; what the
 * kernel refuses is kept until the socket is writable. An idle session
 * thus holds no buffer at all. Loop thread only.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "err.h"
#include "evprio.h"
#include "log.h"
#include "registry_int.h"
#include "xmalloc.h"

static void io_cb(evutil_socket_t fd, short what, void *arg);

/* Watch for writes too, or no longer. */
static void
io_watch(struct devconn *c, bool want_write)
{
	short what = EV_READ | EV_PERSIST | (want_write ? EV_WRITE : 0);
	int prio;

	if (c->want_write == want_write)
		return;
	prio = event_get_priority(&c->io);
	c->want_write = want_write;
	event_del(&c->io);
	event_assign(&c->io, c->reg->base, c->fd, what, io_cb, c);
	(void)event_priority_set(&c->io, prio);
	event_add(&c->io, NULL);
}

static bool
io_again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

void
registry_io_start(struct devconn *c, evutil_socket_t fd)
{
	/* Already non-blocking: the listener accepts with SOCK_NONBLOCK
	   (no LEV_OPT_LEAVE_SOCKETS_BLOCKING). */
	c->fd = fd;
	event_assign(&c->io, c->reg->base, fd, EV_READ | EV_PERSIST, io_cb, c);
	/* A handshake is a storm's bulk work (evprio.h) until
	   registry_io_settle(). */
	(void)event_priority_set(&c->io, EVPRIO_BULK);
	event_add(&c->io, NULL);
}

void
registry_io_settle(struct devconn *c)
{
	bool added;

	if (c->fd < 0 || c->state == DC_CLOSING ||
	    event_get_priority(&c->io) == EVPRIO_NORMAL)
		return;
	/* The priority of an event that is not active changes in place: no
	   epoll_ctl (two per handshake before). */
	if (event_priority_set(&c->io, EVPRIO_NORMAL) == 0)
		return;
	added = event_pending(&c->io, EV_READ | EV_WRITE, NULL) != 0;

	/* The priority of an active event cannot change: take it out (the
	   socket stays ready, the next poll reports it again). */
	event_del(&c->io);
	(void)event_priority_set(&c->io, EVPRIO_NORMAL);
	if (added)
		event_add(&c->io, NULL);
}

void
registry_io_stop(struct devconn *c)
{
	if (c->fd >= 0)
		event_del(&c->io);
}

void
registry_io_restart(struct devconn *c)
{
	if (c->fd >= 0 && c->state != DC_CLOSING)
		event_add(&c->io, NULL);
}

void
registry_io_free(struct devconn *c)
{
	registry_io_stop(c);
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	c->fd = -1;
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
}

int
registry_io_write(struct devconn *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	ssize_t n;
	size_t need;

	if (c->fd < 0)
		return CINDER_ERR_IO;
	if (c->out_len == 0 && len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (!io_again(errno))
				return CINDER_ERR_IO;
			n = 0;
		}
		p += n;
		len -= (size_t)n;
		if (len == 0)
			return 0;
	}
	if (len == 0)
		return 0;
	need = (size_t)c->out_len + len;
	if (need > UINT32_MAX / 2)
		return CINDER_ERR_IO;
	if ((size_t)c->out_off + need > c->out_cap) {
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len);
			c->out_off = 0;
		}
		if (need > c->out_cap) {
			size_t cap = c->out_cap ? (size_t)c->out_cap * 2 : 1024;

			while (cap < need)
				cap *= 2;
			c->out = xreallocarray(c->out, cap, 1);
			c->out_cap = (uint32_t)cap;
		}
	}
	memcpy(c->out + c->out_off + c->out_len, p, len);
	c->out_len += (uint32_t)len;
	io_watch(c, true);
	return 0;
}

/* The socket takes output again. */
static void
io_flush(struct devconn *c)
{
	ssize_t n;

	while (c->out_len > 0) {
		n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (io_again(errno))
				break;
			registry_conn_close(c, CINDER_ERR_IO,
					    evutil_socket_error_to_string(
						    EVUTIL_SOCKET_ERROR()));
			return;
		}
		c->out_off += (uint32_t)n;
		c->out_len -= (uint32_t)n;
	}
	if (c->out_len == 0) {
		free(c->out);
		c->out = NULL;
		c->out_off = c->out_cap = 0;
		io_watch(c, false);
	}
	registry_conn_drained(c);
}

/* Hand buf[0..have) to the connection; keep what it did not consume. */
static void
io_process(struct devconn *c, const uint8_t *buf, size_t have)
{
	size_t used = registry_conn_input(c, buf, have);
	size_t rest = have - used;

	if (c->state == DC_CLOSING)
		rest = 0;
	if (rest == 0) {
		free(c->in);
		c->in = NULL;
		c->in_len = 0;
		return;
	}
	if (rest != c->in_len) {
		free(c->in);
		c->in = xmalloc(rest);
	}
	memmove(c->in, buf + used, rest);
	c->in_len = (uint32_t)rest;
}

static void
io_read(struct devconn *c)
{
	uint8_t *buf = c->reg->rbuf;
	size_t have = c->in_len;
	ssize_t n;

	if (have > 0)
		memcpy(buf, c->in, have);
	n = recv(c->fd, buf + have, REGISTRY_RBUF - have, 0);
	if (n == 0) {
		registry_conn_close(c, 0, "device closed the connection");
		return;
	}
	if (n < 0) {
		if (!io_again(errno))
			registry_conn_close(c, CINDER_ERR_IO,
					    evutil_socket_error_to_string(
						    EVUTIL_SOCKET_ERROR()));
		return;
	}
	c->reg->stats.bytes_in += (uint64_t)n;
	io_process(c, buf, have + (size_t)n);
}

void
registry_io_resume(struct devconn *c)
{
	if (c->in_len == 0 || c->state == DC_CLOSING)
		return;
	memcpy(c->reg->rbuf, c->in, c->in_len);
	io_process(c, c->reg->rbuf, c->in_len);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct devconn *c = arg;

	(void)fd;
	if (c->state == DC_CLOSING)
		return;
	if (what & EV_WRITE) {
		io_flush(c);
		if (c->state == DC_CLOSING)
			return;
	}
	if (what & EV_READ)
		io_read(c);
}
