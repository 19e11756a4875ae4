/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd glue, a request's life: MHD's access and completion
 * callbacks, reading and bounding the body, finding the token,
 * authenticating, running the handler, suspending and resuming the
 * connection while an answer is pending, and the accessors handlers use.
 * Loop thread only.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "err.h"
#include "fmt.h"
#include "log.h"
#include "xmalloc.h"
#include "api/form.h"
#include "api/http_int.h"

/* A pooled request block is poisoned while it waits for reuse, so that
   AddressSanitizer still catches a use after the request's end (GCC
   says so with __SANITIZE_ADDRESS__, clang with __has_feature). */
#if !defined(CINDER_ASAN) && defined(__SANITIZE_ADDRESS__)
#define CINDER_ASAN 1
#endif
#if !defined(CINDER_ASAN) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CINDER_ASAN 1
#endif
#endif
#ifdef CINDER_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

/* ---- request objects ---- */

static void
client_ip_set(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const char *xff, *last;
	char tmp[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n;

	memcpy(req->client_ip, "unknown", sizeof("unknown"));
	ci = MHD_get_connection_info(req->conn,
				     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci != NULL ? ci->client_addr : NULL;
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		fmt_ipv4(req->client_ip, (const unsigned char *)&in->sin_addr);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			/* a dual-stack listener: show (and rate-limit) the
			 * IPv4 address, not ::ffff:a.b.c.d */
			fmt_ipv4(req->client_ip, &in6->sin6_addr.s6_addr[12]);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, req->client_ip,
				  sizeof(req->client_ip));
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

/* "req <id>" into ctx (32 bytes): snprintf's parsing was a tenth of a
   microsecond per request (perf of bench/run B4) */
static void
ctx_set(char *ctx, uint64_t id)
{
	memcpy(ctx, "req ", 4);
	fmt_u64(ctx + 4, id);
}

static struct http_request *
req_new(struct http *h, struct MHD_Connection *conn, const char *url,
	const char *method)
{
	size_t mlen = strlen(method) + 1, ulen = strlen(url) + 1;
	/* the event, rounded up to 16 bytes */
	size_t evlen = (event_get_struct_event_size() + 15) & ~(size_t)15;
	struct http_request *req;
	const union MHD_ConnectionInfo *ci;

	/*
	 * One block: the struct, the suspension timer's event (assigned on
	 * the first suspension: an event_new and event_free per held
	 * request was one allocation of B4's calls), the method and the
	 * path. sizeof(*req) is a multiple of its pointer alignment.
	 */
	if (sizeof(*req) + evlen + mlen + ulen <= HTTP_REQ_BLOCK) {
		req = h->req_pool_n > 0 ? h->req_pool[--h->req_pool_n]
					: xmalloc(HTTP_REQ_BLOCK);
		ASAN_UNPOISON_MEMORY_REGION(req, HTTP_REQ_BLOCK);
		memset(req, 0, sizeof(*req) + evlen);
		req->pooled = true;
	} else {
		req = xcalloc(1, sizeof(*req) + evlen + mlen + ulen);
	}
	req->later_ev = (struct event *)(void *)(req + 1);
	req->method = (char *)(req + 1) + evlen;
	memcpy(req->method, method, mlen);
	req->path = req->method + mlen;
	memcpy(req->path, url, ulen);
	req->h = h;
	req->conn = conn;
	req->id = ++h->next_id;
	ctx_set(req->ctx, req->id);
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	req->limit = h->opts.max_body;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL && (req->hc = ci->socket_context) != NULL)
		req->hc->req = req;
	client_ip_set(req);
	http_tab_insert(h, req);
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

void
http_req_notify_close(struct http_request *req, bool answered)
{
	http_close_cb cb = req->close_cb;

	if (req->closed_notified)
		return;
	req->closed_notified = true;
	req->close_cb = NULL;
	if (cb != NULL)
		cb(req->id, answered, req->close_arg);
}

/* Free a block of h->req_pool (http_free()). */
void
http_req_block_free(void *block)
{
	ASAN_UNPOISON_MEMORY_REGION(block, HTTP_REQ_BLOCK);
	free(block);
}

/* Called from MHD when the request is over; the only place req is freed. */
static void
req_free(struct http_request *req)
{
	size_t i;

	http_tab_remove(req->h, req);
	req_watch_stop(req);
	if (req->watch_later != NULL) {
		event_del(req->watch_later);
		/* its storage goes with req: forget it (debug mode) */
		event_debug_unassign(req->watch_later);
	}
	http_stream_direct_leave(req);
	if (req->wev != NULL)
		event_free(req->wev);
	if (req->wbuf != NULL)
		evbuffer_free(req->wbuf);
	if (req->hc != NULL)
		req->hc->req = NULL;
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	router_match_cleanup(&req->match);
	json_decref(req->query);
	json_decref(req->body);
	json_files_free(req->files);
	if (req->buf != req->body_inl)
		free(req->buf);
	else /* it may hold a form's access_token; the block may be pooled */
		explicit_bzero(req->body_inl, sizeof(req->body_inl));
	if (req->token == req->token_inl)
		explicit_bzero(req->token_inl, sizeof(req->token_inl));
	else if (req->token != NULL)
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
	if (req->pooled && req->h->req_pool_n < HTTP_REQ_POOL) {
		req->h->req_pool[req->h->req_pool_n++] = req;
		ASAN_POISON_MEMORY_REGION(req, HTTP_REQ_BLOCK);
	} else {
		free(req);
	}
}

/*
 * Make MHD close a connection by itself: after shutdown() its socket reads
 * EOF, which MHD handles as a normal client close. (Changing MHD's
 * per-connection timeout instead would touch its timeout lists, which is
 * only safe in states we can't query.)
 */
void
http_conn_shutdown(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

void
http_mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode toe)
{
	struct http_request *req = *con_cls;

	if (req == NULL)
		return;
	*con_cls = NULL;
	log_ctx(LOG_LEVEL_INFO, req->ctx, "%s %.200s %d %.1fms %s%s",
		req->method, req->path, req->status,
		log_ms_since(&req->started), req->client_ip,
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	http_tab_remove(req->h, req);
	http_req_notify_close(
		req, !req->gone && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	/*
	 * Stopping: the answer is out and the connection would stay open
	 * for keep-alive; it must not hold up the drain for an idle timeout.
	 */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && req->h->stopping &&
	    !req->h->freeing)
		http_conn_shutdown(conn);
	req_free(req);
}

/* The client of a suspended request went away. */
void
http_req_gone(struct http_request *req)
{
	log_ctx(LOG_LEVEL_DEBUG, req->ctx, "client went away while waiting");
	req->gone = true;
	http_tab_remove(req->h, req);
	http_req_notify_close(req, false);
	/* MHD closes it when it runs the connection again */
	http_req_resume(req);
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
		http_req_gone(req);
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

void
http_req_suspend(struct http_request *req)
{
	static const struct timeval later = {0, HTTP_WATCH_AFTER_MS * 1000};

	MHD_suspend_connection(req->conn);
	req->suspended = true;
	if (req->stream || req->watch != NULL) {
		req_watch_start(req);
		return;
	}
	if (req->watch_later == NULL &&
	    evtimer_assign(req->later_ev, req->h->base, req_watch_later_cb,
			   req) == 0)
		req->watch_later = req->later_ev;
	if (req->watch_later == NULL)
		req_watch_start(req);
	else
		evtimer_add(req->watch_later, &later);
}

void
http_req_resume(struct http_request *req)
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
	/* MHD owns the socket again */
	http_stream_direct_leave(req);
	req->suspended = false;
	MHD_resume_connection(req->conn);
	http_kick(req->h);
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
http_request_resume_json_text(struct http *h, uint64_t id, int status,
			      char *text, size_t len)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL) {
		free(text);
		return CINDER_ERR_NOTFOUND;
	}
	return http_respond_json_text(req, status, text, len);
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
	return http_respond_error_text(req, err, NULL, desc);
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
		http_respond_error_text(req, r, NULL, NULL);
	} else if (!req->want_suspend) {
		log_ctx(LOG_LEVEL_ERR, req->ctx,
			"handler for %s %s gave no answer", req->method,
			req->match.route->pattern);
		http_respond_error_text(req, CINDER_ERR_INTERNAL, NULL, NULL);
	}
}

/* req->token = the n bytes at s: in req if they fit, else a copy. */
static void
req_token_set(struct http_request *req, const char *s, size_t n)
{
	if (n < sizeof(req->token_inl)) {
		memcpy(req->token_inl, s, n);
		req->token_inl[n] = '\0';
		req->token = req->token_inl;
	} else {
		req->token = xstrndup(s, n);
	}
}

/*
 * req->token = the access_token field of a form body, if given once and
 * not empty (what json_field_str() gave on the parsed body), decoded
 * straight into req.
 */
static void
req_token_from_form(struct http_request *req)
{
	const char *v;
	size_t vlen;
	char *t;

	if (form_find((const char *)req->buf, req->len, "access_token", &v,
		      &vlen) != 1 ||
	    vlen == 0)
		return;
	t = vlen < sizeof(req->token_inl) ? req->token_inl : xmalloc(vlen + 1);
	if (form_decode(v, vlen, true, t, NULL) == 0) {
		req->token = t;
		return;
	}
	/* not after json_form_check() accepted the body */
	if (t == req->token_inl)
		explicit_bzero(t, sizeof(req->token_inl));
	else
		freezero(t, vlen + 1);
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
	/*
	 * No body: no object until a handler asks (http_request_body());
	 * most GETs never do, and an empty object is two allocations. A
	 * form body is only checked (the same answers as parsing it): a
	 * function call reads its argument and token from the bytes, and
	 * the object (five allocations for "arg=x") is built if a handler
	 * asks for it.
	 */
	if (req->len == 0) {
		r = 0;
	} else if (json_body_is_form(ct, req->buf, req->len)) {
		r = json_form_check(req->buf, req->len, &lim, errbuf,
				    sizeof(errbuf));
		req->form = r == 0;
	} else {
		r = json_body_parse(ct, req->buf, req->len, &lim, &req->body,
				    (req->match.route->flags & ROUTE_UPLOAD)
					    ? &req->files
					    : NULL,
				    errbuf, sizeof(errbuf));
	}
	if (r != 0) {
		http_respond_error_text(req, r, NULL, errbuf);
		return;
	}
	/* the token: header, then body field, then query (cloud-api 1.0) */
	auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_AUTHORIZATION);
	qtok = json_field_str(req->query, "access_token");
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		n = strcspn(auth, " \t");
		if (n > 0)
			req_token_set(req, auth, n);
	}
	if (req->token == NULL && req->form) {
		req_token_from_form(req);
	} else if (req->token == NULL) {
		btok = json_field_str(req->body, "access_token");
		if (btok != NULL && *btok != '\0')
			req_token_set(req, btok, strlen(btok));
	}
	if (req->token == NULL && qtok != NULL && *qtok != '\0')
		req_token_set(req, qtok, strlen(qtok));
	/* S and B strip it so function arguments never see it (a form's
	   object is built without it, http_request_body()) */
	json_object_del(req->body, "access_token");

	if (req->match.route->flags & ROUTE_AUTH_REQUIRED) {
		if (req->token == NULL) {
			http_respond_auth_error(req, CINDER_ERR_AUTH);
			return;
		}
		if (h->auth_cb == NULL) {
			log_ctx(LOG_LEVEL_ERR, req->ctx,
				"route %s needs authentication but no "
				"authenticate hook is set",
				req->match.route->pattern);
			http_respond_error_text(req, CINDER_ERR_INTERNAL, NULL,
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
			http_respond_auth_error(req, r);
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
		http_respond_auth_error(req, r);
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
		http_respond_options(req);
		return queue_answer(req);
	}
	if (h->stopping) {
		http_respond_error_text(req, CINDER_ERR_UNAVAILABLE, NULL,
					"server is shutting down");
		return queue_answer(req);
	}
	n = MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, NULL,
				      NULL);
	if (n > 0) /* most requests have none: no object then */
		req->query = json_object();
	if (n > JSON_DEFAULT_MAX_FIELDS ||
	    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
				      query_iter, req) != n) {
		http_respond_error_text(req, CINDER_ERR_MALFORMED, NULL,
					"malformed query string");
		return queue_answer(req);
	}
	switch (router_match(h->router, req->method, req->path, &req->match)) {
	case ROUTER_FOUND:
		break;
	case ROUTER_NO_PATH:
		http_respond_error_text(req, CINDER_ERR_NOTFOUND, NULL, NULL);
		return queue_answer(req);
	case ROUTER_NO_METHOD:
		http_response_header_add(req, "Allow", req->match.allow);
		http_respond_json(req, 405,
				  json_error_body(CINDER_ERR_INVAL, NULL,
						  "Method Not Allowed"));
		return queue_answer(req);
	case ROUTER_BAD_PATH:
		http_respond_error_text(req, CINDER_ERR_MALFORMED, NULL,
					"malformed percent-escape in path");
		return queue_answer(req);
	}
	if (req->match.route->flags & ROUTE_UPLOAD)
		req->limit = h->opts.max_upload;
	/* the per-IP rate limiter plugs in here (REST issue) */
	if (h->admit_cb != NULL && (r = h->admit_cb(req, h->admit_arg)) < 0) {
		http_respond_error_text(req, r, NULL, NULL);
		return queue_answer(req);
	}
	cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		errno = 0;
		clen = strtoull(cl, &end, 10);
		if (errno != 0 || clen > req->limit) {
			http_respond_error_text(req, CINDER_ERR_TOO_BIG, NULL,
						NULL);
			return queue_answer(req);
		}
		/*
		 * A declared, bounded size; still grow with the bytes that
		 * actually arrive, so that idle connections declaring big
		 * bodies cost nothing.
		 */
		if (clen > 0 && clen <= sizeof(req->body_inl)) {
			req->cap = sizeof(req->body_inl);
			req->buf = req->body_inl;
		} else if (clen > 0) {
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
		if (req->buf == req->body_inl) {
			/* the body is longer than its Content-Length said */
			req->buf = xmalloc(ncap);
			memcpy(req->buf, req->body_inl, req->len);
		} else {
			req->buf = xreallocarray(req->buf, ncap, 1);
		}
		req->cap = ncap;
	}
	memcpy(req->buf + req->len, data, n);
	req->len += n;
	return 0;
}

enum MHD_Result
http_mhd_access(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version,
		const char *upload_data, size_t *upload_data_size,
		void **con_cls)
{
	struct http *h = cls;
	struct http_request *req = *con_cls;

	if (h->freeing)
		return MHD_NO; /* http_free(): close everything */
	if (req == NULL) {
		req = req_new(h, conn, url, method);
		if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
			req->wire = REQ_WIRE_CHUNKED;
		else if (strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
			req->wire = REQ_WIRE_RAW;
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
				http_respond_error_text(req, CINDER_ERR_TOO_BIG,
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
		http_respond_error_text(req, CINDER_ERR_TOO_BIG, NULL, NULL);
		return queue_answer(req);
	}
	req_dispatch(req);
	if (req->resp != NULL)
		return queue_answer(req);
	if (req->want_suspend) {
		req->want_suspend = false;
		http_req_suspend(req);
		return MHD_YES;
	}
	return MHD_NO;
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
http_request_body(struct http_request *req)
{
	if (req->body != NULL)
		return req->body;
	req->body = json_object();
	if (!req->form)
		return req->body;
	/* json_form_check() accepted it at dispatch: this cannot fail */
	if (json_form_parse((const char *)req->buf, req->len, req->body, 0) !=
	    0)
		log_ctx(LOG_LEVEL_ERR, req->ctx,
			"form body refused after it was checked");
	json_object_del(req->body, "access_token");
	return req->body;
}

json_t *
http_request_body_peek(const struct http_request *req)
{
	return req->body;
}

const struct json_files *
http_request_files(const struct http_request *req)
{
	return req->files;
}

const char *
http_request_arg(struct http_request *req, const char *name)
{
	const char *v;

	if (req->form && req->body == NULL)
		http_request_body(req);
	v = json_field_str(req->body, name);
	return v != NULL ? v : http_request_query(req, name);
}

const char *
http_request_arg_into(struct http_request *req, const char *name, char *buf,
		      size_t cap)
{
	int n = 0;

	if (!req->form || req->body != NULL)
		return http_request_arg(req, name);
	/* the object never holds access_token */
	if (strcmp(name, "access_token") != 0)
		n = form_get((const char *)req->buf, req->len, name, buf, cap,
			     NULL);
	if (n == 1)
		return buf;
	if (n < 0) /* longer than buf (or, never, undecodable) */
		return http_request_arg(req, name);
	/* absent, or given twice (an array in the object): the query's */
	return http_request_query(req, name);
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
