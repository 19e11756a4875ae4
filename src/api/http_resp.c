/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd glue, answers: JSON, raw and error responses, extra
 * headers, and streamed answers (SSE) fed from an evbuffer. Building an
 * answer resumes a suspended request. Loop thread only.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The open stream of request id that has room for len more bytes. */
static int
stream_room(struct http *h, uint64_t id, size_t len, struct http_request **out)
{
	struct http_request *req = http_request_lookup(h, id);

	if (req == NULL)
		return CINDER_ERR_NOTFOUND;
	if (!req->stream || req->stream_end)
		return CINDER_ERR_INVAL;
	if (evbuffer_get_length(req->sbuf) + len > h->opts.stream_max_buffered)
		return CINDER_ERR_BUSY;
	*out = req;
	return 0;
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
	http_req_resume(req);
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
	http_req_resume(req);
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
	http_req_resume(req);
	return 0;
}
