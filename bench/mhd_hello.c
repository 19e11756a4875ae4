/* SPDX-License-Identifier: MIT */
/*
 * The HTTP floors of the benchmark suite, loaded by bench/run with
 * cinder-loadgen, which divides by this process's CPU.
 *
 *   mhd_hello PORT
 *     libmicrohttpd answering every request at once with a small JSON
 *     body from one internal thread (epoll): what the library allows when
 *     nothing is waited for.
 *   mhd_hello --held PORT [DEVICES]
 *     a request held while a "device" answers, driven as cinderd's API
 *     drives it (src/api/http.c): MHD without threads in epoll mode, its
 *     epoll fd a persistent libevent read event, MHD_run() on readiness,
 *     on MHD's timeout and on a kick after a resume. Each request is
 *     suspended, a 64-byte message goes over one of DEVICES (default 1,
 *     taken in turn) loopback TCP connections to an echo peer (a child
 *     process: the devices, whose CPU is not this process's, as
 *     cinderd's devices are the generator's), and when the echo comes
 *     back the request is resumed and answered with the same body.
 *
 * PORT 0 = any free port. Prints "ready PORT" (--held: "ready PORT
 * ECHO_PID") and runs until SIGTERM or SIGINT.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <microhttpd.h>

static const char body[] = "{\"ok\":true,\"return_value\":5}";

/* The fixed answer, 200. */
static enum MHD_Result
send_body(struct MHD_Connection *c)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
					    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size,
       void **state)
{
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	if (*state == NULL) { /* first call: headers only */
		*state = c;
		return MHD_YES;
	}
	if (*upload_size > 0) { /* swallow the body */
		*upload_size = 0;
		return MHD_YES;
	}
	return send_body(c);
}

static int
hello_main(int port)
{
	struct MHD_Daemon *d;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
			     (uint16_t)port, NULL, NULL, answer, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, 10000u,
			     MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "mhd_hello: cannot listen on %d\n", port);
		return 1;
	}
	if (port == 0) {
		const union MHD_DaemonInfo *i =
			MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		port = i != NULL ? i->port : 0;
	}
	printf("ready %d\n", port);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}

/* ---- --held: a request suspended while the echo peer answers ---- */

/*
 * The message to a device and back: the request's address, then padding
 * to the size of a small encrypted CoAP request. The peer is this
 * program's own child and returns the bytes unchanged, so the address
 * comes back as it left.
 */
#define HELD_MSG 64
#define HELD_RBUF (HELD_MSG * 16)
#define HELD_MAX_DEVICES 10000

enum held_phase { HELD_NEW, HELD_ASKED, HELD_ANSWERED };

struct held_req {
	struct MHD_Connection *conn;
	enum held_phase phase;
};

struct held;

/* One device connection, as cinderd has one socket per device. */
struct held_dev {
	struct held *h;
	int fd;
	struct event *ev_in, *ev_out;
	unsigned char rbuf[HELD_RBUF]; /* the echo's bytes not yet whole */
	size_t rlen;
	unsigned char *out; /* bytes the socket did not take yet */
	size_t out_len, out_cap;
};

struct held {
	struct MHD_Daemon *mhd;
	struct event_base *base;
	struct event *ev_epoll, *ev_timer, *ev_kick;
	struct held_dev *devs;
	size_t ndev, next; /* requests go to the devices in turn */
	bool in_run;
};

static void
held_rearm(struct held *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	struct timeval tv;

	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
		if (ms > 24ULL * 3600 * 1000)
			ms = 24ULL * 3600 * 1000;
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
		evtimer_add(h->ev_timer, &tv);
	} else {
		evtimer_del(h->ev_timer);
	}
}

/* As cinderd's http_run(): run again at once while MHD asks for it, at
 * most 3 more times, then re-arm the timer. */
static void
held_run(struct held *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	int i;

	if (h->in_run) {
		event_active(h->ev_kick, EV_TIMEOUT, 0);
		return;
	}
	h->in_run = true;
	for (i = 0; i <= 3; i++) {
		if (MHD_run(h->mhd) != MHD_YES) {
			fputs("mhd_hello: MHD_run failed\n", stderr);
			break;
		}
		if (MHD_get_timeout(h->mhd, &ms) != MHD_YES || ms != 0)
			break;
	}
	h->in_run = false;
	held_rearm(h);
}

static void
held_run_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	held_run(arg);
}

static void
held_die(const char *what)
{
	fprintf(stderr, "mhd_hello: %s\n", what);
	exit(1);
}

static void
held_flush(struct held_dev *d)
{
	ssize_t n;

	while (d->out_len > 0) {
		n = send(d->fd, d->out, d->out_len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			event_add(d->ev_out, NULL);
			return;
		}
		if (n <= 0)
			held_die("echo peer gone");
		memmove(d->out, d->out + n, d->out_len - (size_t)n);
		d->out_len -= (size_t)n;
	}
	event_del(d->ev_out);
}

static void
held_out_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	held_flush(arg);
}

/* One message to the next device: sent at once, as cinderd sends a
 * call; what the socket does not take waits for it to be writable. */
static void
held_ask(struct held *h, struct held_req *req)
{
	struct held_dev *d = &h->devs[h->next++ % h->ndev];
	unsigned char msg[HELD_MSG];
	size_t left;
	ssize_t n = 0;

	memset(msg, 0, sizeof(msg));
	memcpy(msg, &req, sizeof(req));
	if (d->out_len == 0) {
		n = send(d->fd, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			held_die("echo peer gone");
		if (n < 0)
			n = 0;
		if ((size_t)n == sizeof(msg))
			return;
	}
	left = sizeof(msg) - (size_t)n;
	if (d->out_len + left > d->out_cap) {
		size_t cap = d->out_cap != 0 ? d->out_cap * 2 : 1024;
		unsigned char *p;

		while (cap < d->out_len + left)
			cap *= 2;
		if ((p = realloc(d->out, cap)) == NULL)
			held_die("out of memory");
		d->out = p;
		d->out_cap = cap;
	}
	memcpy(d->out + d->out_len, msg + n, left);
	d->out_len += left;
	event_add(d->ev_out, NULL);
}

/* A device answered: one read per readiness, as cinderd reads a device
 * socket; every whole message resumes its request, then one kick. */
static void
held_echo_cb(evutil_socket_t fd, short what, void *arg)
{
	struct held_dev *d = arg;
	struct held_req *req;
	ssize_t n;
	size_t off = 0;

	(void)what;
	n = recv(fd, d->rbuf + d->rlen, sizeof(d->rbuf) - d->rlen,
		 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		held_die("echo peer gone");
	d->rlen += (size_t)n;
	while (d->rlen - off >= HELD_MSG) {
		memcpy(&req, d->rbuf + off, sizeof(req));
		off += HELD_MSG;
		req->phase = HELD_ANSWERED;
		MHD_resume_connection(req->conn);
	}
	memmove(d->rbuf, d->rbuf + off, d->rlen - off);
	d->rlen -= off;
	if (off > 0)
		event_active(d->h->ev_kick, EV_TIMEOUT, 0);
}

static enum MHD_Result
held_answer(void *cls, struct MHD_Connection *c, const char *url,
	    const char *method, const char *version, const char *upload,
	    size_t *upload_size, void **state)
{
	struct held *h = cls;
	struct held_req *req = *state;

	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	if (req == NULL) { /* first call: headers only */
		if ((req = calloc(1, sizeof(*req))) == NULL)
			return MHD_NO;
		req->conn = c;
		*state = req;
		return MHD_YES;
	}
	if (*upload_size > 0) { /* swallow the body */
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->phase == HELD_NEW) {
		req->phase = HELD_ASKED;
		MHD_suspend_connection(c);
		held_ask(h, req);
		return MHD_YES;
	}
	if (req->phase != HELD_ANSWERED)
		return MHD_YES;
	return send_body(c);
}

static void
held_completed(void *cls, struct MHD_Connection *c, void **state,
	       enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*state);
	*state = NULL;
}

/* The devices: n connections, each echoing every byte back, until one
 * closes (blocking writes: a device's answer is a few messages). */
static void
echo_peer(uint16_t port, size_t n)
{
	struct sockaddr_in sa;
	struct epoll_event ev, evs[64];
	unsigned char buf[HELD_RBUF];
	int ep, fd, one = 1, k, m;
	ssize_t r, w, off;
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ep = epoll_create1(0)) < 0)
		_exit(1);
	for (i = 0; i < n; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			perror("mhd_hello: echo peer");
			_exit(1);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			_exit(1);
	}
	for (;;) {
		m = epoll_wait(ep, evs, 64, -1);
		if (m < 0 && errno != EINTR)
			_exit(1);
		for (k = 0; k < m; k++) {
			fd = evs[k].data.fd;
			r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				_exit(0);
			for (off = 0; off < r; off += w) {
				w = write(fd, buf + off, (size_t)(r - off));
				if (w < 0 && errno == EINTR)
					w = 0;
				else if (w <= 0)
					_exit(0);
			}
		}
	}
}

/*
 * Room for n echo connections in each process, plus MHD's clients and
 * listener: the soft descriptor limit raised up to the hard one where it
 * is lower (bench/run raises it before it starts this program; a shell's
 * usual 1,024 is too few for --held 0 10000).
 */
static void
fd_room(size_t n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want
			      ? rl.rlim_max
			      : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		perror("mhd_hello: setrlimit");
}

/* n loopback TCP connections to a forked echo peer: this side's. */
static int
echo_start(struct held *h, size_t n, pid_t *pidp)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd, fd, one = 1;
	size_t i;
	pid_t pid;

	fd_room(n);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lfd, 511) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
		perror("mhd_hello: echo socket");
		return -1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("mhd_hello: fork");
		return -1;
	}
	if (pid == 0) {
		close(lfd);
		echo_peer(ntohs(sa.sin_port), n);
	}
	*pidp = pid;
	if ((h->devs = calloc(n, sizeof(*h->devs))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((fd = accept(lfd, NULL, NULL)) < 0) {
			perror("mhd_hello: accept");
			return -1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		h->devs[i].h = h;
		h->devs[i].fd = fd;
		h->ndev++;
	}
	close(lfd);
	return 0;
}

static void
held_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static int
held_main(int port, size_t ndev)
{
	static struct held h;
	const union MHD_DaemonInfo *di;
	struct event *ev_term, *ev_int;
	pid_t pid = 0;
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	if ((h.base = event_base_new()) == NULL ||
	    echo_start(&h, ndev, &pid) != 0)
		return 1;
	h.mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
				 (uint16_t)port, NULL, NULL, held_answer, &h,
				 MHD_OPTION_CONNECTION_LIMIT, 10000u,
				 MHD_OPTION_NOTIFY_COMPLETED, held_completed,
				 NULL, MHD_OPTION_END);
	if (h.mhd == NULL) {
		fprintf(stderr, "mhd_hello: cannot listen on %d\n", port);
		return 1;
	}
	if ((di = MHD_get_daemon_info(h.mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
		held_die("no epoll fd");
	h.ev_epoll = event_new(h.base, di->epoll_fd, EV_READ | EV_PERSIST,
			       held_run_cb, &h);
	h.ev_timer = evtimer_new(h.base, held_run_cb, &h);
	h.ev_kick = event_new(h.base, -1, 0, held_run_cb, &h);
	ev_term = evsignal_new(h.base, SIGTERM, held_stop_cb, h.base);
	ev_int = evsignal_new(h.base, SIGINT, held_stop_cb, h.base);
	if (h.ev_epoll == NULL || h.ev_timer == NULL || h.ev_kick == NULL ||
	    ev_term == NULL || ev_int == NULL ||
	    event_add(h.ev_epoll, NULL) != 0 || event_add(ev_term, NULL) != 0 ||
	    event_add(ev_int, NULL) != 0)
		held_die("cannot register events");
	for (i = 0; i < h.ndev; i++) {
		struct held_dev *d = &h.devs[i];

		d->ev_in = event_new(h.base, d->fd, EV_READ | EV_PERSIST,
				     held_echo_cb, d);
		d->ev_out = event_new(h.base, d->fd, EV_WRITE, held_out_cb, d);
		if (d->ev_in == NULL || d->ev_out == NULL ||
		    event_add(d->ev_in, NULL) != 0)
			held_die("cannot register events");
	}
	if (port == 0) {
		const union MHD_DaemonInfo *b =
			MHD_get_daemon_info(h.mhd, MHD_DAEMON_INFO_BIND_PORT);
		port = b != NULL ? b->port : 0;
	}
	held_rearm(&h);
	printf("ready %d %d\n", port, (int)pid);
	fflush(stdout);
	event_base_dispatch(h.base);
	MHD_stop_daemon(h.mhd);
	for (i = 0; i < h.ndev; i++) { /* the peer reads EOF and exits */
		event_free(h.devs[i].ev_in);
		event_free(h.devs[i].ev_out);
		close(h.devs[i].fd);
		free(h.devs[i].out);
	}
	waitpid(pid, NULL, 0);
	free(h.devs);
	event_free(ev_term);
	event_free(ev_int);
	event_free(h.ev_epoll);
	event_free(h.ev_timer);
	event_free(h.ev_kick);
	event_base_free(h.base);
	return 0;
}

/* A whole decimal number in [lo, hi], else -1. */
static long
arg_num(const char *s, long lo, long hi)
{
	char *end = NULL;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno != 0 || *end != '\0' || v < lo || v > hi ? -1 : v;
}

int
main(int argc, char **argv)
{
	bool held = argc > 1 && strcmp(argv[1], "--held") == 0;
	long port = arg_num(argc > 1 + held ? argv[1 + held] : NULL, 0, 65535);
	long ndev =
		held && argc > 3 ? arg_num(argv[3], 1, HELD_MAX_DEVICES) : 1;

	if (port < 0 || ndev < 0 || argc > 2 + 2 * held) {
		fputs("usage: mhd_hello PORT | mhd_hello --held PORT "
		      "[DEVICES]\n",
		      stderr);
		return 2;
	}
	return held ? held_main((int)port, (size_t)ndev)
		    : hello_main((int)port);
}
