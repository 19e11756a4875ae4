/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's clients of the HTTP API: keep-alive clients (function
 * calls, variable reads, any fixed request, the events mode's API events)
 * that time each answer, the store's queue read from GET /v1/ping, and
 * SSE streams that time every event they get.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

/* conc keep-alive clients of the HTTP API, watched for input. */
void
http_clients_open(struct lg *g, size_t conc)
{
	size_t j;

	g->http = calloc(conc, sizeof(*g->http));
	if (g->http == NULL)
		die("out of memory");
	g->nhttp = conc;
	for (j = 0; j < conc; j++) {
		g->http[j].kind = K_HTTP;
		g->http[j].lg = g;
		g->http[j].fd = tcp_open(&g->api_addr);
		ep_set(g, g->http[j].fd, EPOLLIN, &g->http[j], EPOLL_CTL_ADD);
	}
}

/* The store's queued statements from GET /v1/ping ("store":{...,
   "queued":N}), on a connection of its own, blocking (a few ms: the
   devices wait that long); -1 when the answer has no such figure. */
static long
store_queued(struct lg *g)
{
	static const char req[] = "GET /v1/ping HTTP/1.0\r\n"
				  "Host: 127.0.0.1\r\n\r\n";
	char buf[8192];
	size_t have = 0;
	ssize_t n;
	const char *p;
	int fd = tcp_open(&g->api_addr);

	write_all(fd, req, sizeof(req) - 1);
	while (have < sizeof(buf) - 1 &&
	       ((n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			have += (size_t)n;
	close(fd);
	buf[have] = '\0';
	if ((p = strstr(buf, "\"store\"")) == NULL ||
	    (p = strstr(p, "\"queued\":")) == NULL)
		return -1;
	return strtol(p + 9, NULL, 10);
}

/* The devices online, wait (serving them) until the store has written
   what their connecting queued (presence and describes, batched every
   few ms), at most limit_us: the measured phase is then the steady
   state, not PostgreSQL catching up beside it. Empty at two polls 250 ms
   apart, so that a gap between two batches does not count. Returns the
   microseconds waited, or UINT64_MAX when it did not drain. */
uint64_t
store_settle(struct lg *g, uint64_t limit_us)
{
	uint64_t t0 = now_us();
	int empty = 0;

	for (;;) {
		long q = store_queued(g);

		empty = q == 0 ? empty + 1 : 0;
		if (empty == 2)
			return now_us() - t0;
		if (q < 0 || now_us() - t0 >= limit_us)
			return UINT64_MAX;
		run_until(g, now_us() + 250000, 0, 0, NULL);
	}
}

/* 1 and *total: a whole message (head and Content-Length body); a
 * Content-Length over what cap leaves after the head, or a head filling
 * cap, is -1. */
int
http_framed(const char *buf, size_t len, size_t cap, size_t *hlen,
	    size_t *total)
{
	const char *end = strstr(buf, "\r\n\r\n"), *cl;
	unsigned long blen = 0;
	size_t hl;

	if (end == NULL)
		return len >= cap ? -1 : 0;
	hl = (size_t)(end + 4 - buf);
	cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl != NULL && cl < end) {
		errno = 0;
		blen = strtoul(cl + 17, NULL, 10);
		if (errno != 0 || hl > cap || blen > cap - hl)
			return -1;
	}
	if (len < hl + blen)
		return 0;
	*hlen = hl;
	*total = hl + blen;
	return 1;
}

void
http_send(struct lg *g, struct hc *c)
{
	char req[2048], path[512], ev[256];
	const char *tpl = g->path, *at = strstr(tpl, "{id}"), *body = g->body;
	int n;

	if (g->ev_name != NULL) { /* events mode: data = the send time */
		if (g->req_sent >= g->req_limit) {
			c->busy = false;
			return;
		}
		g->req_sent++;
		snprintf(ev, sizeof(ev), "name=%s&private=true&data=%" PRIu64,
			 g->ev_name, now_us());
		body = ev;
	}
	if (at != NULL && g->ndev > 0) {
		size_t nt = g->targets > 0 && g->targets < g->ndev ? g->targets
								   : g->ndev;
		struct dev *d = &g->devs[g->rr++ % nt];
		snprintf(path, sizeof(path), "%.*s%s%s", (int)(at - tpl), tpl,
			 d->id, at + 4);
	} else {
		snprintf(path, sizeof(path), "%s", tpl);
	}
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Authorization: Bearer %s\r\n"
		     "Content-Type: application/x-www-form-urlencoded\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     g->method, path, g->token ? g->token : "-",
		     body ? strlen(body) : 0, body ? body : "");
	c->t0 = now_us();
	c->busy = true;
	c->len = 0;
	write_all(c->fd, req, (size_t)n);
}

void
http_read(struct lg *g, struct hc *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len,
				 sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
		size_t hl, tot;
		int f;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			die("HTTP connection closed by the server");
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		f = http_framed(c->buf, c->len, sizeof(c->buf) - 1, &hl, &tot);
		if (f < 0)
			die("HTTP: an answer over %zu bytes",
			    sizeof(c->buf) - 1);
		if (f == 0)
			continue;
		if (g->on_answer != NULL) {
			g->on_answer(g, c);
		} else if (g->measuring) {
			if (strncmp(c->buf + 9, "200", 3) == 0) {
				g->http_ok++;
				if (g->image == NULL)
					lat_add(&g->lat, now_us() - c->t0);
			} else {
				if (g->http_err++ < 3)
					fprintf(stderr, "HTTP: %.60s\n",
						c->buf);
			}
		}
		c->busy = false;
		if (g_stop || g->paced)
			return;
		if (g->image != NULL)
			ota_put_send(g, c);
		else
			http_send(g, c);
		return;
	}
}

void
sse_open(struct lg *g, struct hc *c, const char *path)
{
	char req[1024];
	int n;

	c->kind = K_SSE;
	c->lg = g;
	c->fd = tcp_open(&g->api_addr);
	/* HTTP/1.0: no chunked framing inside the stream */
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
		     "Authorization: Bearer %s\r\n\r\n",
		     path, g->token ? g->token : "-");
	write_all(c->fd, req, (size_t)n);
	ep_set(g, c->fd, EPOLLIN, c, EPOLL_CTL_ADD);
}

static void
sse_line(struct lg *g, struct hc *c, const char *line)
{
	const char *p;

	if (strncmp(line, "data: ", 6) != 0 ||
	    (p = strstr(line, "{\"data\":\"T")) == NULL)
		return;
	c->got++;
	if (g->on_event != NULL) {
		g->on_event(g, strtoull(p + 10, NULL, 10));
	} else if (g->measuring) {
		uint64_t t = strtoull(p + 10, NULL, 10);
		g->sse_got++;
		lat_add(&g->lat, now_us() - t);
	}
}

void
sse_read(struct lg *g, struct hc *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len,
			 MSG_DONTWAIT);
	char *s, *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		die("SSE stream closed by the server");
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	s = c->buf;
	if (!c->hdr_done) {
		char *end = strstr(s, "\r\n\r\n");
		if (end == NULL)
			return;
		if (strncmp(s + 9, "200", 3) != 0)
			die("SSE: %.60s", s);
		c->hdr_done = true;
		s = end + 4;
	}
	while ((nl = strchr(s, '\n')) != NULL) {
		*nl = '\0';
		sse_line(g, c, s);
		s = nl + 1;
	}
	c->len = strlen(s);
	memmove(c->buf, s, c->len + 1);
}
