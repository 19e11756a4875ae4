/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd glue, answers: JSON, raw and error responses, extra
 * headers, and streamed answers (SSE) fed from an evbuffer. Building an
 * answer resumes a suspended request. Loop thread only.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "err.h"
#include "log.h"
#include "xmalloc.h"
#include "api/http_int.h"

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
	http_req_resume(req);
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

/* Answer with serialised JSON; takes text (malloc'd) in every case. */
int
http_respond_json_text(struct http_request *req, int status, char *text,
		       size_t len)
{
	struct MHD_Response *resp;

	if (req->answered) {
		free(text);
		return CINDER_ERR_INVAL;
	}
	resp = MHD_create_response_from_buffer(len, text,
					       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return req_set_response(req, status, NULL);
	}
	MHD_add_response_header(resp, "Content-Type", JSON_CONTENT_TYPE);
	return req_set_response(req, status, resp);
}

int
http_respond_json(struct http_request *req, int status, json_t *body)
{
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
	return http_respond_json_text(req, status, s, len);
}

int
http_respond_error_text(struct http_request *req, int err, const char *code,
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
		return http_respond_error_text(req, err, code, NULL);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return http_respond_error_text(req, err, code, buf);
}

/* Errors of the authenticate step, in the OAuth shape clients expect. */
int
http_respond_auth_error(struct http_request *req, int err)
{
	if (err == CINDER_ERR_AUTH)
		return http_respond_error_text(
			req, err, "invalid_token",
			req->token == NULL
				? "The access token was not found"
				: "The access token provided is invalid.");
	if (err == CINDER_ERR_FORBIDDEN)
		return http_respond_error_text(
			req, err, "access_denied",
			"The access token is not allowed to do this");
	return http_respond_error_text(req, err, NULL, NULL);
}

int
http_respond_options(struct http_request *req)
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
/* ---- streams ---- */

/*
 * Direct streams. Once MHD has sent a stream's headers and first bytes it
 * asks for more and finds none; from then on (plain HTTP only) the
 * connection stays suspended for the stream's life and the loop writes
 * the socket itself: one send per loop iteration for what was queued,
 * instead of a resume, an MHD_run and a suspend per event (B3 in
 * docs/benchmarks-log.md). wbuf holds framed bytes the socket did not take;
 * wev flushes soon after a write and waits for room when the socket is
 * full. Leaving (end of stream, client gone, http_free) gives the socket
 * back to MHD between two chunks, so MHD frames what is left and ends
 * the response as usual.
 */

#define STREAM_IOV_MAX 64

static void stream_flush_cb(evutil_socket_t fd, short what, void *arg);

/* Whether MHD's framing of this stream is known and the loop can write. */
static bool
stream_direct_ok(struct http_request *req)
{
	const char *c;

	if (req->h->tls || req->h->stopping || req->wire == REQ_WIRE_MHD)
		return false;
	if (req->wire == REQ_WIRE_CHUNKED) {
		/* a 1.1 client asking to close may get an unchunked body */
		c = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
						MHD_HTTP_HEADER_CONNECTION);
		if (c != NULL && strcasestr(c, "close") != NULL)
			return false;
	}
	return true;
}

/* Called when MHD has sent everything so far and wants more. */
static void
stream_direct_enter(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(req->conn,
				     MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	if (req->wbuf == NULL && (req->wbuf = evbuffer_new()) == NULL)
		return;
	if (req->wev == NULL) {
		req->wev = event_new(req->h->base, ci->connect_fd, EV_WRITE,
				     stream_flush_cb, req);
		if (req->wev == NULL)
			return;
	}
	req->fd = ci->connect_fd;
	req->direct = true;
}

void
http_stream_direct_leave(struct http_request *req)
{
	if (!req->direct)
		return;
	req->direct = false;
	req->flush_soon = false;
	req->wait_write = false;
	if (req->wev != NULL)
		event_del(req->wev);
	/* framed bytes MHD can't take over: only left on a broken stream */
	if (req->wbuf != NULL)
		evbuffer_drain(req->wbuf, evbuffer_get_length(req->wbuf));
}

/* Frame what was queued since the last flush into wbuf. */
static int
stream_frame(struct http_request *req)
{
	size_t n = evbuffer_get_length(req->sbuf), v;
	char hex[2 * sizeof(size_t) + 2];
	int i = (int)sizeof(hex);

	if (n == 0)
		return 0;
	/* the chunk size line, without a printf per flush */
	hex[--i] = '\n';
	hex[--i] = '\r';
	v = n;
	do {
		hex[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v != 0);
	if (req->wire == REQ_WIRE_CHUNKED &&
	    evbuffer_add(req->wbuf, hex + i, sizeof(hex) - (size_t)i) != 0)
		return CINDER_ERR_NOMEM;
	if (evbuffer_add_buffer(req->wbuf, req->sbuf) != 0)
		return CINDER_ERR_NOMEM;
	if (req->wire == REQ_WIRE_CHUNKED &&
	    evbuffer_add(req->wbuf, "\r\n", 2) != 0)
		return CINDER_ERR_NOMEM;
	return 0;
}

/* Write wbuf: 0 when all taken, 1 when the socket is full, or an error. */
static int
stream_send(struct http_request *req)
{
	struct iovec iov[STREAM_IOV_MAX];
	struct msghdr msg;
	ssize_t r;
	int n;

	while (evbuffer_get_length(req->wbuf) > 0) {
		n = evbuffer_peek(req->wbuf, -1, NULL, iov, STREAM_IOV_MAX);
		if (n > STREAM_IOV_MAX)
			n = STREAM_IOV_MAX;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		r = sendmsg(req->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return CINDER_ERR_IO;
		}
		evbuffer_drain(req->wbuf, (size_t)r);
	}
	return 0;
}

static void
stream_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request *req = arg;
	struct timeval tv;
	int r;

	(void)fd;
	req->flush_soon = false;
	req->wait_write = false;
	if (!req->direct)
		return;
	if (what & EV_TIMEOUT && !(what & EV_WRITE)) {
		log_ctx(LOG_LEVEL_INFO, req->ctx,
			"stream: client read nothing for %us; closing",
			req->h->opts.timeout_s);
		http_stream_direct_leave(req);
		http_req_gone(req);
		return;
	}
	if ((r = stream_frame(req)) == 0)
		r = stream_send(req);
	if (r == 1) {
		/* full: wait for room, as long as MHD would for a reader */
		tv.tv_sec = (time_t)req->h->opts.timeout_s;
		tv.tv_usec = 0;
		req->wait_write = true;
		event_add(req->wev, &tv);
		return;
	}
	if (r != 0) {
		log_ctx(LOG_LEVEL_DEBUG, req->ctx, "stream: could not send: %s",
			strerror(errno));
		http_stream_direct_leave(req);
		http_req_gone(req);
		return;
	}
	if (req->stream_end)
		http_req_resume(req); /* MHD ends the response */
}

/* Bytes were queued on a direct stream: send them this loop iteration. */
static void
stream_direct_kick(struct http_request *req)
{
	if (req->flush_soon || req->wait_write)
		return;
	req->flush_soon = true;
	event_active(req->wev, EV_WRITE, 0);
}

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
	/*
	 * MHD asks again only once what it had is on the wire, so after the
	 * first bytes (pos > 0) the headers are out and the socket is ours.
	 */
	if (pos > 0 && stream_direct_ok(req))
		stream_direct_enter(req);
	/* nothing to send: park the connection until a write resumes it */
	http_req_suspend(req);
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

static size_t
stream_queued(const struct http_request *req)
{
	return evbuffer_get_length(req->sbuf) +
	       (req->wbuf != NULL ? evbuffer_get_length(req->wbuf) : 0);
}

/* The open stream of request id that has room for len more bytes. */
static int
stream_room(struct http *h, uint64_t id, size_t len, struct http_request **out)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (!req->stream || req->stream_end)
		return CINDER_ERR_INVAL;
	if (stream_queued(req) + len > h->opts.stream_max_buffered)
		return CINDER_ERR_BUSY;
	*out = req;
	return 0;
}

/* Bytes were queued: get them moving. */
static void
stream_wake(struct http_request *req)
{
	if (req->direct)
		stream_direct_kick(req);
	else
		http_req_resume(req);
}

int
http_stream_write(struct http *h, uint64_t id, const void *data, size_t len)
{
	struct http_request *req;
	int rc;

	if ((rc = stream_room(h, id, len, &req)) != 0)
		return rc;
	if (evbuffer_add(req->sbuf, data, len) != 0)
		return CINDER_ERR_NOMEM;
	stream_wake(req);
	return 0;
}

int
http_stream_write_ref(struct http *h, uint64_t id, const void *data, size_t len,
		      http_stream_unref_cb unref, void *arg)
{
	struct http_request *req;
	int rc;

	if ((rc = stream_room(h, id, len, &req)) != 0)
		return rc;
	/* libevent calls unref once the bytes are drained or dropped */
	if (evbuffer_add_reference(req->sbuf, data, len, unref, arg) != 0)
		return CINDER_ERR_NOMEM;
	stream_wake(req);
	return 0;
}

size_t
http_stream_buffered(struct http *h, uint64_t id)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL || req->sbuf == NULL)
		return 0;
	return stream_queued(req);
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
	/* a direct stream hands over once its framed bytes are out */
	if (req->direct && evbuffer_get_length(req->wbuf) > 0)
		return 0;
	http_req_resume(req);
	return 0;
}
