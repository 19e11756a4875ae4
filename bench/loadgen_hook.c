/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's sink mode: B5's webhook target. A keep-alive HTTP/1.1
 * server on 127.0.0.1 (any port, written to --port-file) in the loop of
 * the other modes (loop_turn): each request is answered 200 at once and
 * its body, the events mode's send time (microseconds, CLOCK_MONOTONIC,
 * the hook's template being {{{PARTICLE_EVENT_VALUE}}}), gives the delay
 * from the publish to the request's arrival. SIGUSR1 (and SIGTERM, before
 * exiting) writes "count p50_ms p99_ms cpu_s" to --stats-file, cpu_s
 * being the sink's own CPU. With --stall 1 it accepts connections, reads
 * what comes and never answers (B5's hanging target).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
			    "Content-Type: text/plain\r\n\r\nok";

static volatile sig_atomic_t want_stats;

static void
on_usr1(int sig)
{
	(void)sig;
	want_stats = 1;
}

/* The peers connected now, so that the sink frees them when it stops. */
static struct hc **peers;
static size_t npeers, peers_cap;

static void
sink_close(struct hc *c)
{
	close(c->fd); /* leaves the epoll set with its only descriptor */
	peers[c->slot] = peers[--npeers];
	peers[c->slot]->slot = c->slot;
	free(c);
}

void
sink_accept(struct lg *g, struct listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC), one = 1;
		struct hc *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or out of descriptors for now */
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (npeers == peers_cap) {
			size_t cap = peers_cap ? 2 * peers_cap : 64;
			struct hc **p = realloc(peers, cap * sizeof(*p));
			if (p == NULL)
				die("out of memory");
			peers = p;
			peers_cap = cap;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL)
			die("out of memory");
		c->slot = npeers;
		peers[npeers++] = c;
		c->kind = K_SINK;
		c->lg = g;
		c->fd = fd;
		ep_set(g, fd, EPOLLIN, c, EPOLL_CTL_ADD);
	}
}

/* A request's body: the send time; the delay to now is kept. */
static void
sink_time(struct lg *g, const char *body, size_t len)
{
	char num[24], *end;
	uint64_t t, now = now_us();

	if (len == 0 || len >= sizeof(num)) {
		g->sink_bad++;
		return;
	}
	memcpy(num, body, len);
	num[len] = '\0';
	errno = 0;
	t = strtoull(num, &end, 10);
	if (errno != 0 || *end != '\0' || num[0] < '0' || num[0] > '9' ||
	    t > now) {
		g->sink_bad++;
		return;
	}
	lat_add(&g->lat, now - t);
}

/* Whole requests in the buffer are timed and answered, in order; a
 * request that cannot fit (or a peer that closes) ends the connection. */
void
sink_read(struct lg *g, struct hc *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len,
			 MSG_DONTWAIT);
	size_t off = 0, hl, tot;
	int f;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sink_close(c);
		return;
	}
	if (g->stall) /* read and forget: never an answer */
		return;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	while ((f = http_framed(c->buf + off, c->len - off, sizeof(c->buf) - 1,
				&hl, &tot)) == 1) {
		sink_time(g, c->buf + off + hl, tot - hl);
		if (send(c->fd, reply, sizeof(reply) - 1,
			 MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)(sizeof(reply) - 1)) {
			sink_close(c);
			return;
		}
		off += tot;
	}
	if (f < 0) {
		sink_close(c);
		return;
	}
	c->len -= off;
	memmove(c->buf, c->buf + off, c->len + 1);
}

static void
stats_write(struct lg *g, const char *path)
{
	struct lat s = g->lat;
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	s.v = NULL;
	if (s.n > 0) { /* a sorted copy: the sink keeps recording */
		if ((s.v = malloc(s.n * sizeof(*s.v))) == NULL)
			die("out of memory");
		memcpy(s.v, g->lat.v, s.n * sizeof(*s.v));
		lat_sort(&s);
	}
	if ((f = fopen(tmp, "w")) == NULL)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "%zu %.3f %.3f %.3f\n", s.n, lat_pct(&s, 0.5),
		lat_pct(&s, 0.99), self_cpu());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die("%s: %s", path, strerror(errno));
	free(s.v);
	if (g->sink_bad > 0)
		fprintf(stderr, "sink: %" PRIu64 " bodies were no send time\n",
			g->sink_bad);
}

int
sink_main(struct lg *g, const char *port_file, const char *stats_file)
{
	struct listener l = {.kind = K_LISTEN};
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	uint64_t tick = now_us();
	char tmp[4096];
	FILE *f;

	signal(SIGUSR1, on_usr1);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l.fd < 0 || bind(l.fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(l.fd, 1024) != 0 ||
	    getsockname(l.fd, (struct sockaddr *)&a, &al) != 0)
		die("sink: listen: %s", strerror(errno));
	ep_set(g, l.fd, EPOLLIN, &l, EPOLL_CTL_ADD);
	/* the port appears whole: written aside, then renamed */
	snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
	if ((f = fopen(tmp, "w")) == NULL)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "%u\n", (unsigned)ntohs(a.sin_port));
	if (fclose(f) != 0 || rename(tmp, port_file) != 0)
		die("%s: %s", port_file, strerror(errno));
	while (!g_stop) {
		loop_turn(g, 200, &tick);
		if (want_stats) {
			want_stats = 0;
			stats_write(g, stats_file);
		}
	}
	stats_write(g, stats_file);
	while (npeers > 0)
		sink_close(peers[npeers - 1]);
	free(peers);
	free(g->lat.v);
	close(l.fd);
	close(g->ep);
	return 0;
}
