/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd glue, the server half. MHD runs without threads in epoll
 * mode: its epoll fd is a persistent libevent read event, MHD_run() is
 * called on readiness, on MHD's own timeout (a libevent timer re-armed
 * after every run) and on a "kick" after a suspended connection is
 * resumed. Requests live in a table keyed by a 64-bit id so later
 * completions look them up instead of holding pointers. A request's life
 * is in http_req.c, answers and streams in http_resp.c; together the
 * three own every MHD call and turn MHD_Result into CINDER_ERR_* (style
 * E4). Loop thread only; never blocks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "netaddr.h"
#include "xmalloc.h"
#include "api/handlers.h"
#include "api/http_int.h"

static void http_run(struct http *h);

/* ---- id table ---- */

void
http_tab_insert(struct http *h, struct http_request *req)
{
	struct http_request **nt, *r, *next;
	size_t i, ns;

	if (h->tab_n + 1 > h->tab_size) {
		ns = h->tab_size != 0 ? h->tab_size * 2 : 64;
		nt = xcalloc(ns, sizeof(*nt));
		for (i = 0; i < h->tab_size; i++) {
			for (r = h->tab[i]; r != NULL; r = next) {
				next = r->next;
				r->next = nt[r->id & (ns - 1)];
				nt[r->id & (ns - 1)] = r;
			}
		}
		free(h->tab);
		h->tab = nt;
		h->tab_size = ns;
	}
	i = req->id & (h->tab_size - 1);
	req->next = h->tab[i];
	h->tab[i] = req;
	req->in_table = true;
	h->tab_n++;
}

void
http_tab_remove(struct http *h, struct http_request *req)
{
	struct http_request **pp;

	if (!req->in_table)
		return;
	for (pp = &h->tab[req->id & (h->tab_size - 1)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == req) {
			*pp = req->next;
			break;
		}
	}
	req->next = NULL;
	req->in_table = false;
	h->tab_n--;
}

struct http_request *
http_request_lookup(struct http *h, uint64_t id)
{
	struct http_request *r;

	if (h == NULL || h->tab_size == 0 || id == 0)
		return NULL;
	for (r = h->tab[id & (h->tab_size - 1)]; r != NULL; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* ---- running MHD from the loop ---- */

static void
http_rearm(struct http *h)
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

/*
 * After an answer, MHD walks a connection through its sending states
 * one MHD_run at a time and asks to be run again at once (timeout 0):
 * strace of a one-client B4 showed two such rounds per call, each a
 * libevent epoll_wait and MHD's own. Running MHD again here while it
 * says 0 saves the libevent half; bounded, so the loop's other events
 * wait at most that many runs.
 */
#define HTTP_RUN_AGAIN_MAX 3

static void
http_run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	int i;

	if (h->in_run) {
		/* resumed from inside an MHD callback: run again soon */
		event_active(h->ev_kick, EV_TIMEOUT, 0);
		return;
	}
	h->in_run = true;
	for (i = 0; i <= HTTP_RUN_AGAIN_MAX; i++) {
		if (MHD_run(h->mhd) != MHD_YES) {
			log_warn("http: MHD_run failed");
			break;
		}
		if (MHD_get_timeout(h->mhd, &ms) != MHD_YES || ms != 0)
			break;
	}
	h->in_run = false;
	http_rearm(h);
}

static void
http_event_cb(evutil_socket_t fd, short what, void *arg)
{
	http_run(arg);
}

void
http_kick(struct http *h)
{
	event_active(h->ev_kick, EV_TIMEOUT, 0);
}

/* ---- MHD callbacks that are not per request ---- */

/* MHD's own diagnostics (socket errors, TLS failures). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_info("http: libmicrohttpd: %s", buf);
}

/*
 * Keep the path escaped: the router splits on '/' first and decodes each
 * segment, so "%2F" inside an SSE prefix stays in one segment. Query
 * arguments are decoded by us as well (json_url_decode).
 */
static size_t
mhd_unescape_noop(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static void
stopped_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	http_stopped_cb cb = h->stopped_cb;

	h->stopped_cb = NULL;
	if (cb != NULL)
		cb(h->stopped_arg);
}

static void
mhd_notify_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
		      enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	struct http_conn *hc;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		hc = xcalloc(1, sizeof(*hc));
		hc->conn = c;
		hc->next = h->conns;
		if (h->conns != NULL)
			h->conns->prev = hc;
		h->conns = hc;
		*socket_ctx = hc;
		h->nconns++;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if ((hc = *socket_ctx) != NULL) {
			if (hc->req != NULL)
				hc->req->hc = NULL;
			if (hc->prev != NULL)
				hc->prev->next = hc->next;
			else
				h->conns = hc->next;
			if (hc->next != NULL)
				hc->next->prev = hc->prev;
			free(hc);
			*socket_ctx = NULL;
		}
		if (h->nconns > 0)
			h->nconns--;
		if (h->nconns == 0 && h->stopping && h->stopped_cb != NULL)
			event_active(h->ev_stopped, EV_TIMEOUT, 0);
		/* MHD takes its listening socket out of its epoll set when
		   accept() finds no descriptor (or the connection limit is
		   reached), and puts it back only in the MHD_run after a
		   connection has closed. With no connection left, nothing
		   made that run: the API never accepted again. One more run
		   on the next loop turn (several closes share it). */
		event_active(h->ev_kick, EV_TIMEOUT, 0);
	}
}
/* ---- creating and stopping the server ---- */

static int
listen_open(const char *addr, int *fdp, uint16_t *portp)
{
	struct sockaddr_storage ss, bound;
	socklen_t sslen = 0, blen = sizeof(bound);
	int fd = -1, one = 1, r = CINDER_ERR_INTERNAL;

	*fdp = -1;
	if (netaddr_parse(addr, &ss, &sslen) != 0) {
		log_err("http: invalid listen address %s (expected host:port, "
			"[v6addr]:port or *:port)",
			addr != NULL ? addr : "");
		r = CINDER_ERR_INVAL;
		goto out;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		log_err("http: could not create socket: %s", strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
		log_err("http: could not bind %s: %s", addr, strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	if (listen(fd, 511) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
		log_err("http: could not listen on %s: %s", addr,
			strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	*portp = ntohs(bound.ss_family == AF_INET
			       ? ((struct sockaddr_in *)&bound)->sin_port
			       : ((struct sockaddr_in6 *)&bound)->sin6_port);
	*fdp = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/* Read a small PEM file (startup only, so blocking I/O is fine). */
static char *
read_pem(const char *path, size_t *lenp)
{
	FILE *f;
	char *buf = NULL;
	size_t n;
	struct stat st;

	*lenp = 0;
	if ((f = fopen(path, "r")) == NULL) {
		log_err("http: could not open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 ||
	    st.st_size > HTTP_TLS_FILE_MAX) {
		log_err("http: %s is empty or too large", path);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size) {
		log_err("http: could not read %s", path);
		freezero(buf, (size_t)st.st_size + 1);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*lenp = n + 1;
out:
	fclose(f);
	return buf;
}

static void
opts_fill(struct http_options *o, const struct http_options *in)
{
	if (in != NULL)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (o->max_body == 0)
		o->max_body = HTTP_DEFAULT_MAX_BODY;
	if (o->max_upload == 0)
		o->max_upload = HTTP_DEFAULT_MAX_UPLOAD;
	if (o->max_upload < o->max_body)
		o->max_upload = o->max_body;
	if (o->max_header == 0)
		o->max_header = HTTP_DEFAULT_MAX_HEADER;
	if (o->max_connections == 0)
		o->max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
	if (o->timeout_s == 0)
		o->timeout_s = HTTP_DEFAULT_TIMEOUT_S;
	if (o->stream_max_buffered == 0)
		o->stream_max_buffered = HTTP_DEFAULT_STREAM_MAX;
	/* the strings are only used inside http_new() */
}

struct http *
http_new(struct event_base *base, const char *listen_addr,
	 const struct http_options *opts)
{
	struct http *h = NULL;
	struct MHD_OptionItem mo[16];
	const union MHD_DaemonInfo *di;
	unsigned int flags;
	size_t n = 0, certlen = 0;
	bool tls;

	h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->listen_fd = -1;
	opts_fill(&h->opts, opts);
	clock_gettime(CLOCK_MONOTONIC, &h->started);
	h->router = router_new();
	tls = h->opts.tls_cert_file != NULL || h->opts.tls_key_file != NULL;
	if (tls) {
		if (h->opts.tls_cert_file == NULL ||
		    h->opts.tls_key_file == NULL) {
			log_err("http: HTTPS needs both a certificate and a "
				"key file");
			goto fail;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			log_err("http: this libmicrohttpd was built without "
				"TLS; serve HTTPS through a reverse proxy");
			goto fail;
		}
		h->tls_cert = read_pem(h->opts.tls_cert_file, &certlen);
		h->tls_key = read_pem(h->opts.tls_key_file, &h->tls_key_len);
		if (h->tls_cert == NULL || h->tls_key == NULL)
			goto fail;
	}
	h->tls = tls;
	h->opts.tls_cert_file = h->opts.tls_key_file = NULL;
	if (listen_open(listen_addr, &h->listen_fd, &h->port) != 0)
		goto fail;

	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET,
					  h->listen_fd, NULL};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
					  (intptr_t)http_mhd_completed, h};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
					  (intptr_t)mhd_notify_connection, h};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
					  (intptr_t)h->opts.max_connections,
					  NULL};
	if (h->opts.max_per_ip > 0)
		mo[n++] = (struct MHD_OptionItem){
			MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			(intptr_t)h->opts.max_per_ip, NULL};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
					  (intptr_t)h->opts.timeout_s, NULL};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
					  (intptr_t)h->opts.max_header, NULL};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK,
					  (intptr_t)mhd_unescape_noop, NULL};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER,
					  (intptr_t)mhd_log, h};
	if (tls) {
		mo[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
						  h->tls_cert};
		mo[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
						  h->tls_key};
	}
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	/* external polling (no MHD threads), epoll, suspend/resume */
	flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (tls)
		flags |= MHD_USE_TLS;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_mhd_access, h,
				  MHD_OPTION_ARRAY, mo, MHD_OPTION_END);
	if (h->mhd == NULL) {
		log_err("http: could not start libmicrohttpd on %s%s",
			listen_addr,
			tls ? " (check the certificate and key)" : "");
		goto fail;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		log_err("http: libmicrohttpd has no epoll fd");
		goto fail;
	}
	/* nobody reads it, but libevent (debug mode) wants non-blocking */
	evutil_make_socket_nonblocking(di->epoll_fd);
	h->ev_epoll = event_new(base, di->epoll_fd, EV_READ | EV_PERSIST,
				http_event_cb, h);
	h->ev_timer = evtimer_new(base, http_event_cb, h);
	h->ev_kick = event_new(base, -1, 0, http_event_cb, h);
	h->ev_stopped = event_new(base, -1, 0, stopped_event_cb, h);
	if (h->ev_epoll == NULL || h->ev_timer == NULL || h->ev_kick == NULL ||
	    h->ev_stopped == NULL || event_add(h->ev_epoll, NULL) != 0) {
		log_err("http: could not register events with the loop");
		goto fail;
	}
	if (http_add_routes(h, h_health_routes, h_health_nroutes, h) != 0)
		goto fail;
	http_rearm(h);
	log_notice("http: listening on %s (port %u)%s", listen_addr,
		   (unsigned)h->port, tls ? " with TLS" : "");
	return h;
fail:
	http_free(h);
	return NULL;
}

uint16_t
http_port(const struct http *h)
{
	return h->port;
}

int
http_add_routes(struct http *h, const struct route *routes, size_t n, void *arg)
{
	int r;

	if ((r = router_add(h->router, routes, n, arg)) != 0)
		log_err("http: invalid routing table (bad pattern or "
			"duplicate row)");
	return r;
}

void
http_set_auth_cb(struct http *h, http_auth_cb cb, void *arg)
{
	h->auth_cb = cb;
	h->auth_arg = arg;
}

void
http_set_admit_cb(struct http *h, http_admit_cb cb, void *arg)
{
	h->admit_cb = cb;
	h->admit_arg = arg;
}

void
http_set_status_cb(struct http *h, http_status_cb cb, void *arg)
{
	h->status_cb = cb;
	h->status_arg = arg;
}

size_t
http_active_count(const struct http *h)
{
	return h->tab_n;
}

void
http_status_fill(struct http *h, json_t *obj)
{
	struct timespec now;
	json_t *st;

	clock_gettime(CLOCK_MONOTONIC, &now);
	json_object_set_new(obj, "version", json_string(PACKAGE_VERSION));
	json_object_set_new(
		obj, "uptime_s",
		json_integer((json_int_t)(now.tv_sec - h->started.tv_sec)));
	st = json_object();
	json_object_set_new(st, "active", json_integer((json_int_t)h->tab_n));
	json_object_set_new(st, "connections",
			    json_integer((json_int_t)h->nconns));
	json_object_set_new(st, "requests",
			    json_integer((json_int_t)h->nrequests));
	json_object_set_new(obj, "http", st);
	if (h->status_cb != NULL)
		h->status_cb(obj, h->status_arg);
}

/* Collect live requests first: answering one may change the table. */
static size_t
tab_ids(struct http *h, uint64_t **idsp)
{
	struct http_request *r;
	uint64_t *ids;
	size_t i, n = 0;

	ids = xcalloc(h->tab_n + 1, sizeof(*ids));
	for (i = 0; i < h->tab_size; i++)
		for (r = h->tab[i]; r != NULL; r = r->next)
			ids[n++] = r->id;
	*idsp = ids;
	return n;
}

int
http_stop(struct http *h, http_stopped_cb cb, void *arg)
{
	struct http_request *req;
	uint64_t *ids;
	size_t i, n;
	MHD_socket fd;
	struct http_conn *hc;

	if (h->stopping)
		return CINDER_ERR_INVAL;
	h->stopping = true;
	h->stopped_cb = cb;
	h->stopped_arg = arg;
	fd = MHD_quiesce_daemon(h->mhd);
	if (fd != MHD_INVALID_SOCKET && h->listen_fd >= 0) {
		close(h->listen_fd);
		h->listen_fd = -1;
	}
	n = tab_ids(h, &ids);
	for (i = 0; i < n; i++) {
		if ((req = http_request_lookup(h, ids[i])) == NULL)
			continue;
		if (req->stream)
			http_stream_end(h, req->id);
		else if (!req->answered &&
			 (req->suspended || req->want_suspend))
			http_respond_error_text(req, CINDER_ERR_UNAVAILABLE,
						NULL,
						"server is shutting down");
	}
	free(ids);
	/* idle keep-alive connections: close them now */
	for (hc = h->conns; hc != NULL; hc = hc->next)
		if (hc->req == NULL)
			http_conn_shutdown(hc->conn);
	log_notice("http: stopping, %u connection(s) open", h->nconns);
	if (h->nconns == 0 && cb != NULL)
		event_active(h->ev_stopped, EV_TIMEOUT, 0);
	http_kick(h);
	return 0;
}

void
http_free(struct http *h)
{
	struct http_request *req;
	uint64_t *ids;
	size_t i, n;

	if (h == NULL)
		return;
	h->freeing = true;
	if (h->mhd != NULL) {
		if (!h->stopping &&
		    MHD_quiesce_daemon(h->mhd) != MHD_INVALID_SOCKET &&
		    h->listen_fd >= 0) {
			close(h->listen_fd);
			h->listen_fd = -1;
		}
		/* MHD must not be stopped with suspended connections */
		n = tab_ids(h, &ids);
		for (i = 0; i < n; i++) {
			if ((req = http_request_lookup(h, ids[i])) == NULL)
				continue;
			if (req->suspended) {
				http_tab_remove(h, req);
				req->gone = true;
				http_req_notify_close(req, false);
				http_req_resume(req);
			}
		}
		free(ids);
		/* let MHD take the resumed connections back, then stop */
		h->in_run = true;
		MHD_run(h->mhd);
		h->in_run = false;
		MHD_stop_daemon(h->mhd);
		h->mhd = NULL;
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->ev_epoll != NULL)
		event_free(h->ev_epoll);
	if (h->ev_timer != NULL)
		event_free(h->ev_timer);
	if (h->ev_kick != NULL)
		event_free(h->ev_kick);
	if (h->ev_stopped != NULL)
		event_free(h->ev_stopped);
	router_free(h->router);
	while (h->req_pool_n > 0)
		http_req_block_free(h->req_pool[--h->req_pool_n]);
	free(h->tab);
	free(h->tls_cert);
	if (h->tls_key != NULL)
		freezero(h->tls_key, h->tls_key_len);
	free(h);
}
