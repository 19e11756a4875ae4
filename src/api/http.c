/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd glue. MHD runs without threads in epoll mode: its epoll fd
 * is a persistent libevent read event, MHD_run() is called on readiness,
 * on MHD's own timeout (a libevent timer re-armed after every run) and on
 * a "kick" after a suspended connection is resumed. Requests live in a
 * table keyed by a 64-bit id so later completions look them up instead of
 * holding pointers. This file owns every MHD call and turns MHD_Result
 * into CINDER_ERR_* (style E4). Loop thread only; never blocks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <microhttpd.h>

#include "err.h"
#include "log.h"
#include "netaddr.h"
#include "xmalloc.h"
#include "api/handlers.h"
#include "api/http.h"
#include "api/json.h"
#include "api/router.h"

#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define HTTP_DEFAULT_MAX_UPLOAD (16 * 1024 * 1024)
#define HTTP_DEFAULT_MAX_HEADER (32 * 1024)
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_DEFAULT_TIMEOUT_S 60
#define HTTP_DEFAULT_STREAM_MAX (256 * 1024)
#define HTTP_TLS_FILE_MAX (1024 * 1024)
#define HTTP_STREAM_BLOCK 4096
#define HTTP_BODY_PREALLOC (64 * 1024)

#define JSON_CONTENT_TYPE "application/json; charset=utf-8"

/* Where a request is in its life. */
enum req_state {
	REQ_BODY = 0, /* headers seen, reading the body */
	REQ_AUTH,     /* suspended, waiting for http_request_auth_done */
	REQ_HANDLED,  /* handler ran: answered, suspended or streaming */
};

/* One extra response header. */
struct hdr {
	char *name;  /* owned */
	char *value; /* owned */
};

/* One open connection (MHD's socket context), to find idle ones. */
struct http_conn {
	struct MHD_Connection *conn;   /* MHD's connection */
	struct http_request *req;      /* request in progress or NULL */
	struct http_conn *prev, *next; /* h->conns list */
};

struct http_request {
	struct http *h;			  /* owning server */
	struct MHD_Connection *conn;	  /* MHD's connection */
	struct http_conn *hc;		  /* its socket context */
	uint64_t id;			  /* table key, never 0 */
	struct http_request *next;	  /* hash chain */
	bool in_table;			  /* listed in h->tab */
	char ctx[32];			  /* "req <id>" */
	char *method;			  /* owned copy */
	char *path;			  /* owned copy, not decoded */
	char client_ip[INET6_ADDRSTRLEN]; /* text address */
	struct timespec started;	  /* monotonic, for the access log */
	enum req_state state;		  /* see enum */

	struct router_match match; /* route and params */
	json_t *query;		   /* decoded query parameters */
	json_t *body;		   /* parsed body (object) */
	struct json_files *files;  /* multipart files, views into buf */
	uint8_t *buf;		   /* raw body */
	size_t len, cap, limit;	   /* body length, capacity, limit */
	bool too_big;		   /* body went over limit */
	size_t discarded;	   /* bytes dropped since then */
	char *token;		   /* access token found, or NULL */
	void *user;		   /* authenticated caller */
	void (*user_free)(void *); /* frees user */

	struct MHD_Response *resp; /* built answer not yet queued */
	int status;		   /* its status */
	struct hdr *hdrs;	   /* extra answer headers */
	size_t nhdrs;		   /* used entries of hdrs */
	bool answered;		   /* an answer was built (or queued) */
	bool in_handler;	   /* inside the handler call */
	bool want_suspend;	   /* handler asked to answer later */
	bool suspended;		   /* MHD connection is suspended */
	bool gone;		   /* client left; not in the table */
	bool closed_notified;	   /* close hook already ran */
	struct event *watch;	   /* disconnect watch while suspended */
	struct event *watch_later; /* arms the watch of a long suspension */
	http_close_cb close_cb;	   /* close hook */
	void *close_arg;	   /* its arg */

	bool stream;	       /* answer is a stream */
	bool stream_end;       /* no more writes; end after drain */
	struct evbuffer *sbuf; /* queued stream bytes */
};

struct http {
	struct event_base *base;    /* borrowed loop */
	struct MHD_Daemon *mhd;	    /* the daemon */
	struct event *ev_epoll;	    /* MHD's epoll fd is readable */
	struct event *ev_timer;	    /* MHD_get_timeout expired */
	struct event *ev_kick;	    /* run MHD soon (after a resume) */
	struct event *ev_stopped;   /* deferred stopped callback */
	int listen_fd;		    /* our listening socket or -1 */
	uint16_t port;		    /* bound port */
	struct http_options opts;   /* copied, defaults filled in */
	char *tls_cert, *tls_key;   /* PEM text kept for MHD */
	size_t tls_key_len;	    /* for freezero */
	struct router *router;	    /* routing table */
	bool in_run;		    /* inside MHD_run */
	bool stopping;		    /* http_stop() called */
	bool freeing;		    /* inside http_free() */
	http_stopped_cb stopped_cb; /* drain done */
	void *stopped_arg;
	struct http_conn *conns;   /* open connections */
	unsigned nconns;	   /* open connections */
	uint64_t next_id;	   /* last id handed out */
	uint64_t nrequests;	   /* requests seen */
	struct http_request **tab; /* id hash table */
	size_t tab_size, tab_n;	   /* buckets (power of 2), entries */
	struct timespec started;   /* for uptime_s */
	http_auth_cb auth_cb;
	void *auth_arg;
	http_admit_cb admit_cb;
	void *admit_arg;
	http_status_cb status_cb;
	void *status_arg;
};

static void http_run(struct http *h);
static void req_resume(struct http_request *req);

/* ---- id table ---- */

static void
tab_insert(struct http *h, struct http_request *req)
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

static void
tab_remove(struct http *h, struct http_request *req)
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

static void
http_run(struct http *h)
{
	if (h->in_run) {
		/* resumed from inside an MHD callback: run again soon */
		event_active(h->ev_kick, EV_TIMEOUT, 0);
		return;
	}
	h->in_run = true;
	if (MHD_run(h->mhd) != MHD_YES)
		log_warn("http: MHD_run failed");
	h->in_run = false;
	http_rearm(h);
}

static void
http_event_cb(evutil_socket_t fd, short what, void *arg)
{
	http_run(arg);
}

static void
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
	}
}

/* ---- request objects ---- */

static double
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
client_ip_set(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const char *xff, *last;
	char tmp[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n;

	snprintf(req->client_ip, sizeof(req->client_ip), "unknown");
	ci = MHD_get_connection_info(req->conn,
				     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && (sa = ci->client_addr) != NULL) {
		if (sa->sa_family == AF_INET)
			inet_ntop(
				AF_INET,
				&((const struct sockaddr_in *)(const void *)sa)
					 ->sin_addr,
				req->client_ip, sizeof(req->client_ip));
		else if (sa->sa_family == AF_INET6 &&
			 IN6_IS_ADDR_V4MAPPED(
				 &((const struct sockaddr_in6 *)(const void *)
					   sa)
					  ->sin6_addr))
			/* a dual-stack listener: show (and rate-limit) the
			 * IPv4 address, not ::ffff:a.b.c.d */
			inet_ntop(
				AF_INET,
				&((const struct sockaddr_in6 *)(const void *)sa)
					 ->sin6_addr.s6_addr[12],
				req->client_ip, sizeof(req->client_ip));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(
				AF_INET6,
				&((const struct sockaddr_in6 *)(const void *)sa)
					 ->sin6_addr,
				req->client_ip, sizeof(req->client_ip));
	}
	if (!req->h->opts.trust_forwarded_for)
		return;
	/* the trusted proxy appends the address it saw: take the last one */
	xff = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					  "X-Forwarded-For");
	if (xff == NULL)
		return;
	last = strrchr(xff, ',');
	last = last != NULL ? last + 1 : xff;
	while (*last == ' ' || *last == '\t')
		last++;
	n = strcspn(last, " \t");
	if (n == 0 || n >= sizeof(tmp))
		return;
	memcpy(tmp, last, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1 ||
	    inet_pton(AF_INET6, tmp, bin) == 1)
		snprintf(req->client_ip, sizeof(req->client_ip), "%s", tmp);
}

static struct http_request *
req_new(struct http *h, struct MHD_Connection *conn, const char *url,
	const char *method)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	const union MHD_ConnectionInfo *ci;

	req->h = h;
	req->conn = conn;
	req->id = ++h->next_id;
	snprintf(req->ctx, sizeof(req->ctx), "req %llu",
		 (unsigned long long)req->id);
	req->method = xstrdup(method);
	req->path = xstrdup(url);
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	req->query = json_object();
	req->limit = h->opts.max_body;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL && (req->hc = ci->socket_context) != NULL)
		req->hc->req = req;
	client_ip_set(req);
	tab_insert(h, req);
	h->nrequests++;
	return req;
}

static void
req_watch_stop(struct http_request *req)
{
	if (req->watch != NULL) {
		event_free(req->watch);
		req->watch = NULL;
	}
}

static void
req_notify_close(struct http_request *req, bool answered)
{
	http_close_cb cb = req->close_cb;

	if (req->closed_notified)
		return;
	req->closed_notified = true;
	req->close_cb = NULL;
	if (cb != NULL)
		cb(req->id, answered, req->close_arg);
}

/* Called from MHD when the request is over; the only place req is freed. */
static void
req_free(struct http_request *req)
{
	size_t i;

	tab_remove(req->h, req);
	req_watch_stop(req);
	if (req->watch_later != NULL)
		event_free(req->watch_later);
	if (req->hc != NULL)
		req->hc->req = NULL;
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	router_match_cleanup(&req->match);
	json_decref(req->query);
	json_decref(req->body);
	json_files_free(req->files);
	free(req->buf);
	if (req->token != NULL)
		freezero(req->token, strlen(req->token));
	if (req->user_free != NULL)
		req->user_free(req->user);
	for (i = 0; i < req->nhdrs; i++) {
		free(req->hdrs[i].name);
		free(req->hdrs[i].value);
	}
	free(req->hdrs);
	if (req->sbuf != NULL)
		evbuffer_free(req->sbuf);
	free(req->method);
	free(req->path);
	free(req);
}

/*
 * Make MHD close a connection by itself: after shutdown() its socket reads
 * EOF, which MHD handles as a normal client close. (Changing MHD's
 * per-connection timeout instead would touch its timeout lists, which is
 * only safe in states we can't query.)
 */
static void
conn_shutdown(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

static void
mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	      enum MHD_RequestTerminationCode toe)
{
	struct http_request *req = *con_cls;

	if (req == NULL)
		return;
	*con_cls = NULL;
	log_ctx(LOG_LEVEL_INFO, req->ctx, "%s %.200s %d %.1fms %s%s",
		req->method, req->path, req->status, ms_since(&req->started),
		req->client_ip,
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	tab_remove(req->h, req);
	req_notify_close(
		req, !req->gone && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	/*
	 * Stopping: the answer is out and the connection would stay open
	 * for keep-alive; it must not hold up the drain for an idle timeout.
	 */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && req->h->stopping &&
	    !req->h->freeing)
		conn_shutdown(conn);
	req_free(req);
}

/* The client of a suspended request went away. */
static void
req_gone(struct http_request *req)
{
	log_ctx(LOG_LEVEL_DEBUG, req->ctx, "client went away while waiting");
	req->gone = true;
	tab_remove(req->h, req);
	req_notify_close(req, false);
	/* MHD closes it when it runs the connection again */
	req_resume(req);
}

/*
 * MHD does not watch suspended connections, so we do: a suspended
 * request's socket turning readable with EOF or an error means the
 * client left. Pipelined bytes (or TLS records) can't be told apart from
 * a hang-up without consuming them, so then the watch just stops and the
 * hang-up is found when the answer is written.
 */
static void
req_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request *req = arg;
	char c;
	ssize_t n;

	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		       errno != EINTR)) {
		req_watch_stop(req);
		req_gone(req);
	} else if (n > 0) {
		req_watch_stop(req);
	}
}

static void
req_watch_start(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(req->conn,
				     MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL && req->watch == NULL) {
		req->watch = event_new(req->h->base, ci->connect_fd,
				       EV_READ | EV_PERSIST, req_watch_cb, req);
		if (req->watch != NULL)
			event_add(req->watch, NULL);
	}
}

static void
req_watch_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request *req = arg;

	if (req->suspended)
		req_watch_start(req);
}

/*
 * Most suspensions are short (a function call answers in well under a
 * millisecond): watching the socket from the start cost an epoll_ctl
 * pair per call (perf on bench/run B4). A request's watch starts after
 * HTTP_WATCH_AFTER_MS of suspension instead; a client that leaves is
 * noticed that much later. A stream is watched at once (it is suspended
 * for its whole life).
 */
#define HTTP_WATCH_AFTER_MS 100

static void
req_suspend(struct http_request *req)
{
	static const struct timeval later = {0, HTTP_WATCH_AFTER_MS * 1000};

	MHD_suspend_connection(req->conn);
	req->suspended = true;
	if (req->stream || req->watch != NULL) {
		req_watch_start(req);
		return;
	}
	if (req->watch_later == NULL)
		req->watch_later =
			evtimer_new(req->h->base, req_watch_later_cb, req);
	if (req->watch_later == NULL)
		req_watch_start(req);
	else
		evtimer_add(req->watch_later, &later);
}

static void
req_resume(struct http_request *req)
{
	if (!req->suspended)
		return;
	/* A stream is suspended and resumed once per event: its watch stays
	 * (a stream's client sends nothing more, so readable means gone),
	 * which saves an epoll_ctl pair per event and stream. */
	if (!req->stream)
		req_watch_stop(req);
	if (req->watch_later != NULL)
		evtimer_del(req->watch_later);
	req->suspended = false;
	MHD_resume_connection(req->conn);
	http_kick(req->h);
}

/* ---- building answers ---- */

static void
resp_add_headers(struct http_request *req, struct MHD_Response *resp)
{
	size_t i;

	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	if (req->h->stopping)
		MHD_add_response_header(resp, "Connection", "close");
	for (i = 0; i < req->nhdrs; i++)
		MHD_add_response_header(resp, req->hdrs[i].name,
					req->hdrs[i].value);
}

/* Take resp as the answer; resumes a suspended request. */
static int
req_set_response(struct http_request *req, int status,
		 struct MHD_Response *resp)
{
	if (resp == NULL) {
		log_ctx(LOG_LEVEL_ERR, req->ctx,
			"could not create response: out of memory");
		return CINDER_ERR_NOMEM;
	}
	if (req->answered || req->gone) {
		log_ctx(LOG_LEVEL_ERR, req->ctx,
			"request answered twice (status %d)", status);
		MHD_destroy_response(resp);
		return req->gone ? CINDER_ERR_NOTFOUND : CINDER_ERR_INVAL;
	}
	resp_add_headers(req, resp);
	req->resp = resp;
	req->status = status;
	req->answered = true;
	req_resume(req);
	return 0;
}

int
http_response_header_add(struct http_request *req, const char *name,
			 const char *value)
{
	if (req->answered || strpbrk(name, "\r\n:") != NULL ||
	    strpbrk(value, "\r\n") != NULL)
		return CINDER_ERR_INVAL;
	req->hdrs =
		xreallocarray(req->hdrs, req->nhdrs + 1, sizeof(*req->hdrs));
	req->hdrs[req->nhdrs].name = xstrdup(name);
	req->hdrs[req->nhdrs].value = xstrdup(value);
	req->nhdrs++;
	return 0;
}

int
http_respond_raw(struct http_request *req, int status, const char *content_type,
		 const void *data, size_t len)
{
	struct MHD_Response *resp;
	int r;

	if (req->answered)
		return CINDER_ERR_INVAL;
	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)data,
					       MHD_RESPMEM_MUST_COPY);
	if (resp != NULL && content_type != NULL)
		MHD_add_response_header(resp, "Content-Type", content_type);
	r = req_set_response(req, status, resp);
	return r;
}

int
http_respond_json(struct http_request *req, int status, json_t *body)
{
	struct MHD_Response *resp;
	char *s;
	size_t len;

	if (req->answered) {
		json_decref(body);
		return CINDER_ERR_INVAL;
	}
	s = json_dump_compact(body, &len);
	json_decref(body);
	if (s == NULL) {
		log_ctx(LOG_LEVEL_ERR, req->ctx, "could not serialise answer");
		s = xstrdup(
			"{\"ok\":false,\"error\":\"Internal Server Error\"}");
		len = strlen(s);
		status = 500;
	}
	resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(s);
		return req_set_response(req, status, NULL);
	}
	MHD_add_response_header(resp, "Content-Type", JSON_CONTENT_TYPE);
	return req_set_response(req, status, resp);
}

static int
respond_error_text(struct http_request *req, int err, const char *code,
		   const char *desc)
{
	int status = json_err_status(err);

	if (status >= 500)
		log_ctx(LOG_LEVEL_WARN, req->ctx, "%s %.200s: %s: %s",
			req->method, req->path, err_str(err),
			desc != NULL ? desc : json_err_text(err));
	else
		log_ctx(LOG_LEVEL_DEBUG, req->ctx, "%s %.200s: %d %s",
			req->method, req->path, status,
			desc != NULL ? desc : json_err_text(err));
	return http_respond_json(req, status, json_error_body(err, code, desc));
}

int
http_respond_error(struct http_request *req, int err, const char *code,
		   const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (fmt == NULL)
		return respond_error_text(req, err, code, NULL);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return respond_error_text(req, err, code, buf);
}

/* Errors of the authenticate step, in the OAuth shape clients expect. */
static int
respond_auth_error(struct http_request *req, int err)
{
	if (err == CINDER_ERR_AUTH)
		return respond_error_text(
			req, err, "invalid_token",
			req->token == NULL
				? "The access token was not found"
				: "The access token provided is invalid.");
	if (err == CINDER_ERR_FORBIDDEN)
		return respond_error_text(
			req, err, "access_denied",
			"The access token is not allowed to do this");
	return respond_error_text(req, err, NULL, NULL);
}

static int
respond_options(struct http_request *req)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
					       MHD_RESPMEM_PERSISTENT);
	if (resp != NULL) {
		MHD_add_response_header(resp, "Access-Control-Allow-Methods",
					"GET, POST, PUT, DELETE, OPTIONS");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
					"X-Requested-With, Content-Type, "
					"Accept, Authorization");
		MHD_add_response_header(resp, "Access-Control-Max-Age", "300");
	}
	return req_set_response(req, 204, resp);
}

/* ---- answering later ---- */

int
http_request_suspend(struct http_request *req)
{
	if (!req->in_handler || req->answered)
		return CINDER_ERR_INVAL;
	req->want_suspend = true;
	return 0;
}

int
http_request_resume_with(struct http *h, uint64_t id, int status, json_t *body)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL) {
		json_decref(body);
		return CINDER_ERR_NOTFOUND;
	}
	return http_respond_json(req, status, body);
}

int
http_request_resume_error(struct http *h, uint64_t id, int err,
			  const char *desc)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (req->answered)
		return CINDER_ERR_INVAL;
	return respond_error_text(req, err, NULL, desc);
}

/* Run the handler and make sure the request ends up with an answer. */
static void
req_run_handler(struct http_request *req)
{
	int r;

	req->in_handler = true;
	r = req->match.route->handler(req, req->match.arg);
	req->in_handler = false;
	if (req->answered || req->gone)
		return;
	if (r < 0) {
		req->want_suspend = false;
		respond_error_text(req, r, NULL, NULL);
	} else if (!req->want_suspend) {
		log_ctx(LOG_LEVEL_ERR, req->ctx,
			"handler for %s %s gave no answer", req->method,
			req->match.route->pattern);
		respond_error_text(req, CINDER_ERR_INTERNAL, NULL, NULL);
	}
}

/* Parse query and body, find the token, authenticate, run the handler. */
static void
req_dispatch(struct http_request *req)
{
	struct http *h = req->h;
	const char *ct, *auth, *qtok;
	const char *btok;
	struct json_limits lim = {req->limit, 0, 0};
	char errbuf[256];
	size_t n;
	int r;

	ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_TYPE);
	r = json_body_parse(
		ct, req->buf, req->len, &lim, &req->body,
		(req->match.route->flags & ROUTE_UPLOAD) ? &req->files : NULL,
		errbuf, sizeof(errbuf));
	if (r != 0) {
		respond_error_text(req, r, NULL, errbuf);
		return;
	}
	/* the token: header, then body field, then query (cloud-api 1.0) */
	auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_AUTHORIZATION);
	btok = json_field_str(req->body, "access_token");
	qtok = json_field_str(req->query, "access_token");
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		n = strcspn(auth, " \t");
		if (n > 0)
			req->token = xstrndup(auth, n);
	}
	if (req->token == NULL && btok != NULL && *btok != '\0')
		req->token = xstrdup(btok);
	if (req->token == NULL && qtok != NULL && *qtok != '\0')
		req->token = xstrdup(qtok);
	/* S and B strip it so function arguments never see it */
	json_object_del(req->body, "access_token");

	if (req->match.route->flags & ROUTE_AUTH_REQUIRED) {
		if (req->token == NULL) {
			respond_auth_error(req, CINDER_ERR_AUTH);
			return;
		}
		if (h->auth_cb == NULL) {
			log_ctx(LOG_LEVEL_ERR, req->ctx,
				"route %s needs authentication but no "
				"authenticate hook is set",
				req->match.route->pattern);
			respond_error_text(req, CINDER_ERR_INTERNAL, NULL,
					   NULL);
			return;
		}
		/*
		 * REQ_AUTH before the call: a hook whose lookup completes
		 * at once may call http_request_auth_done() before it
		 * returns HTTP_AUTH_PENDING, and that must work.
		 */
		req->state = REQ_AUTH;
		r = h->auth_cb(req, req->token, h->auth_arg);
		if (req->state != REQ_AUTH)
			return; /* auth_done already ran the handler */
		if (r == HTTP_AUTH_PENDING) {
			req->want_suspend = true;
			return;
		}
		req->state = REQ_HANDLED;
		if (r < 0) {
			respond_auth_error(req, r);
			return;
		}
	}
	req->state = REQ_HANDLED;
	req_run_handler(req);
}

int
http_request_auth_done(struct http *h, uint64_t id, int r)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (req->state != REQ_AUTH || req->answered)
		return CINDER_ERR_INVAL;
	req->state = REQ_HANDLED;
	if (r < 0) {
		respond_auth_error(req, r);
		return 0;
	}
	/*
	 * Outside MHD's callbacks now: the connection stays suspended while
	 * the handler runs; an answer resumes it, http_request_suspend
	 * keeps it suspended.
	 */
	req->want_suspend = false;
	req_run_handler(req);
	return 0;
}

/* ---- streams ---- */

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_request *req = cls;
	size_t n;

	if (req->gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = evbuffer_get_length(req->sbuf);
	if (n > 0) {
		if (n > max)
			n = max;
		if (evbuffer_remove(req->sbuf, buf, n) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		return (ssize_t)n;
	}
	if (req->stream_end)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* nothing to send: park the connection until a write resumes it */
	req_suspend(req);
	return 0;
}

int
http_stream_start(struct http_request *req, int status,
		  const char *content_type)
{
	struct MHD_Response *resp;

	if (req->answered)
		return CINDER_ERR_INVAL;
	req->sbuf = evbuffer_new();
	if (req->sbuf == NULL)
		return CINDER_ERR_NOMEM;
	resp = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, stream_read, req, NULL);
	if (resp != NULL) {
		MHD_add_response_header(resp, "Content-Type", content_type);
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	}
	req->stream = true;
	return req_set_response(req, status, resp);
}

int
http_stream_write(struct http *h, uint64_t id, const void *data, size_t len)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (!req->stream || req->stream_end)
		return CINDER_ERR_INVAL;
	if (evbuffer_get_length(req->sbuf) + len > h->opts.stream_max_buffered)
		return CINDER_ERR_BUSY;
	if (evbuffer_add(req->sbuf, data, len) != 0)
		return CINDER_ERR_NOMEM;
	req_resume(req);
	return 0;
}

int
http_stream_write_ref(struct http *h, uint64_t id, const void *data, size_t len,
		      http_stream_unref_cb unref, void *arg)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (!req->stream || req->stream_end)
		return CINDER_ERR_INVAL;
	if (evbuffer_get_length(req->sbuf) + len > h->opts.stream_max_buffered)
		return CINDER_ERR_BUSY;
	/* libevent calls unref once the bytes are drained or dropped */
	if (evbuffer_add_reference(req->sbuf, data, len, unref, arg) != 0)
		return CINDER_ERR_NOMEM;
	req_resume(req);
	return 0;
}

size_t
http_stream_buffered(struct http *h, uint64_t id)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL || req->sbuf == NULL)
		return 0;
	return evbuffer_get_length(req->sbuf);
}

int
http_stream_end(struct http *h, uint64_t id)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (!req->stream)
		return CINDER_ERR_INVAL;
	req->stream_end = true;
	req_resume(req);
	return 0;
}

/* ---- the access handler ---- */

static enum MHD_Result
queue_answer(struct http_request *req)
{
	enum MHD_Result ret;

	if (req->resp == NULL)
		return MHD_NO; /* building the answer failed: close */
	ret = MHD_queue_response(req->conn, (unsigned)req->status, req->resp);
	MHD_destroy_response(req->resp);
	req->resp = NULL;
	if (ret != MHD_YES)
		log_ctx(LOG_LEVEL_INFO, req->ctx, "could not queue answer");
	return ret;
}

static enum MHD_Result
query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
	   const char *value)
{
	struct http_request *req = cls;
	char *k = NULL, *v = NULL;
	size_t vlen = 0;
	enum MHD_Result ret = MHD_NO;

	if (json_object_size(req->query) >= JSON_DEFAULT_MAX_FIELDS)
		goto out;
	if (json_url_decode(key, strlen(key), true, &k, NULL) != 0)
		goto out;
	if (value == NULL)
		value = "";
	if (json_url_decode(value, strlen(value), true, &v, &vlen) != 0)
		goto out;
	if (*k != '\0' && json_form_add(req->query, k, v, vlen) != 0)
		goto out;
	ret = MHD_YES;
out:
	free(k);
	free(v);
	return ret;
}

/* First call: headers are in. Decide everything that needs no body. */
static enum MHD_Result
req_begin(struct http_request *req)
{
	struct http *h = req->h;
	const char *cl;
	unsigned long long clen;
	char *end;
	int n, r;

	if (strcmp(req->method, "OPTIONS") == 0) {
		respond_options(req);
		return queue_answer(req);
	}
	if (h->stopping) {
		respond_error_text(req, CINDER_ERR_UNAVAILABLE, NULL,
				   "server is shutting down");
		return queue_answer(req);
	}
	n = MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, NULL,
				      NULL);
	if (n > JSON_DEFAULT_MAX_FIELDS ||
	    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
				      query_iter, req) != n) {
		respond_error_text(req, CINDER_ERR_MALFORMED, NULL,
				   "malformed query string");
		return queue_answer(req);
	}
	switch (router_match(h->router, req->method, req->path, &req->match)) {
	case ROUTER_FOUND:
		break;
	case ROUTER_NO_PATH:
		respond_error_text(req, CINDER_ERR_NOTFOUND, NULL, NULL);
		return queue_answer(req);
	case ROUTER_NO_METHOD:
		http_response_header_add(req, "Allow", req->match.allow);
		http_respond_json(req, 405,
				  json_error_body(CINDER_ERR_INVAL, NULL,
						  "Method Not Allowed"));
		return queue_answer(req);
	case ROUTER_BAD_PATH:
		respond_error_text(req, CINDER_ERR_MALFORMED, NULL,
				   "malformed percent-escape in path");
		return queue_answer(req);
	}
	if (req->match.route->flags & ROUTE_UPLOAD)
		req->limit = h->opts.max_upload;
	/* the per-IP rate limiter plugs in here (REST issue) */
	if (h->admit_cb != NULL && (r = h->admit_cb(req, h->admit_arg)) < 0) {
		respond_error_text(req, r, NULL, NULL);
		return queue_answer(req);
	}
	cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		errno = 0;
		clen = strtoull(cl, &end, 10);
		if (errno != 0 || clen > req->limit) {
			respond_error_text(req, CINDER_ERR_TOO_BIG, NULL, NULL);
			return queue_answer(req);
		}
		/*
		 * A declared, bounded size; still grow with the bytes that
		 * actually arrive, so that idle connections declaring big
		 * bodies cost nothing.
		 */
		if (clen > 0) {
			req->cap = clen < HTTP_BODY_PREALLOC
					   ? (size_t)clen
					   : HTTP_BODY_PREALLOC;
			req->buf = xmalloc(req->cap);
		}
	}
	return MHD_YES;
}

/* Append body bytes, bounded by the route's limit. */
static int
req_body_append(struct http_request *req, const char *data, size_t n)
{
	size_t ncap;

	if (n > req->limit - req->len)
		return CINDER_ERR_TOO_BIG;
	if (req->len + n > req->cap) {
		ncap = req->cap != 0 ? req->cap : 4096;
		while (ncap < req->len + n)
			ncap *= 2;
		if (ncap > req->limit)
			ncap = req->limit;
		req->buf = xreallocarray(req->buf, ncap, 1);
		req->cap = ncap;
	}
	memcpy(req->buf + req->len, data, n);
	req->len += n;
	return 0;
}

static enum MHD_Result
mhd_access(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *upload_data,
	   size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct http_request *req = *con_cls;

	if (h->freeing)
		return MHD_NO; /* http_free(): close everything */
	if (req == NULL) {
		req = req_new(h, conn, url, method);
		*con_cls = req;
		return req_begin(req);
	}
	if (req->gone)
		return MHD_NO; /* close the connection */
	if (*upload_data_size > 0) {
		if (req->answered) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (req->too_big ||
		    req_body_append(req, upload_data, *upload_data_size) != 0) {
			/*
			 * Over the limit without a Content-Length (chunked):
			 * answering now would close the socket under unread
			 * data and the client would see a reset instead of
			 * the 413. Discard up to another limit's worth, then
			 * answer at the end; beyond that, answer and close.
			 */
			req->too_big = true;
			req->discarded += *upload_data_size;
			*upload_data_size = 0;
			if (req->discarded > req->limit) {
				respond_error_text(req, CINDER_ERR_TOO_BIG,
						   NULL, NULL);
				return queue_answer(req);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole body is in, or a suspended request was resumed */
	if (req->resp != NULL)
		return queue_answer(req);
	if (req->answered)
		return MHD_NO;
	if (req->state != REQ_BODY)
		return MHD_NO; /* resumed without an answer: only on stop */
	if (req->too_big) {
		respond_error_text(req, CINDER_ERR_TOO_BIG, NULL, NULL);
		return queue_answer(req);
	}
	req_dispatch(req);
	if (req->resp != NULL)
		return queue_answer(req);
	if (req->want_suspend) {
		req->want_suspend = false;
		req_suspend(req);
		return MHD_YES;
	}
	return MHD_NO;
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
	h->opts.tls_cert_file = h->opts.tls_key_file = NULL;
	if (listen_open(listen_addr, &h->listen_fd, &h->port) != 0)
		goto fail;

	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET,
					  h->listen_fd, NULL};
	mo[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
					  (intptr_t)mhd_completed, h};
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
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, mhd_access, h,
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
			respond_error_text(req, CINDER_ERR_UNAVAILABLE, NULL,
					   "server is shutting down");
	}
	free(ids);
	/* idle keep-alive connections: close them now */
	for (hc = h->conns; hc != NULL; hc = hc->next)
		if (hc->req == NULL)
			conn_shutdown(hc->conn);
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
				tab_remove(h, req);
				req->gone = true;
				req_notify_close(req, false);
				req_resume(req);
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
	free(h->tab);
	free(h->tls_cert);
	if (h->tls_key != NULL)
		freezero(h->tls_key, h->tls_key_len);
	free(h);
}

/* ---- request accessors ---- */

uint64_t
http_request_id(const struct http_request *req)
{
	return req->id;
}

const char *
http_request_log_ctx(const struct http_request *req)
{
	return req->ctx;
}

struct http *
http_request_http(const struct http_request *req)
{
	return req->h;
}

const char *
http_request_method(const struct http_request *req)
{
	return req->method;
}

const char *
http_request_path(const struct http_request *req)
{
	return req->path;
}

const char *
http_request_pattern(const struct http_request *req)
{
	return req->match.route != NULL ? req->match.route->pattern : NULL;
}

const char *
http_request_param(const struct http_request *req, const char *name)
{
	return router_match_param(&req->match, name);
}

const char *
http_request_query(const struct http_request *req, const char *name)
{
	json_t *v = json_object_get(req->query, name);

	if (json_is_array(v))
		v = json_array_get(v, 0);
	return json_string_value(v);
}

json_t *
http_request_query_all(const struct http_request *req)
{
	return req->query;
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

json_t *
http_request_body(const struct http_request *req)
{
	return req->body;
}

const struct json_files *
http_request_files(const struct http_request *req)
{
	return req->files;
}

const char *
http_request_arg(const struct http_request *req, const char *name)
{
	const char *v = json_field_str(req->body, name);

	return v != NULL ? v : http_request_query(req, name);
}

int
http_request_basic_auth(const struct http_request *req, char **user,
			char **pass)
{
	char *u, *p = NULL;

	*user = *pass = NULL;
	u = MHD_basic_auth_get_username_password(req->conn, &p);
	if (u == NULL || p == NULL) {
		if (u != NULL)
			MHD_free(u);
		if (p != NULL) {
			explicit_bzero(p, strlen(p));
			MHD_free(p);
		}
		return CINDER_ERR_NOTFOUND;
	}
	*user = xstrdup(u);
	*pass = xstrdup(p);
	MHD_free(u);
	explicit_bzero(p, strlen(p));
	MHD_free(p);
	return 0;
}

const char *
http_request_client_ip(const struct http_request *req)
{
	return req->client_ip;
}

const char *
http_request_token(const struct http_request *req)
{
	return req->token;
}

void
http_request_set_user(struct http_request *req, void *user,
		      void (*free_fn)(void *))
{
	if (req->user_free != NULL)
		req->user_free(req->user);
	req->user = user;
	req->user_free = free_fn;
}

void *
http_request_user(const struct http_request *req)
{
	return req->user;
}

void
http_request_on_close(struct http_request *req, http_close_cb cb, void *arg)
{
	req->close_cb = cb;
	req->close_arg = arg;
}
