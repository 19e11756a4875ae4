/* SPDX-License-Identifier: MIT */
/*
 * The HTTP layer of cinderd: libmicrohttpd in external-loop epoll mode,
 * driven by the daemon's libevent loop (no MHD threads), the routing
 * table, request objects for handlers, CORS, the JSON error envelope,
 * suspend/resume by request id for answers that come later (device
 * replies, store results, SSE) and a streaming response for SSE.
 * Loop thread only: every function here must be called from the thread
 * running the event_base given to http_new(). See docs/internals/http.md.
 */
#ifndef CINDER_API_HTTP_H
#define CINDER_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/json.h"
#include "api/router.h"

struct event_base;
struct http;
struct http_request;

/** Limits and TLS settings. Zero/NULL fields take the defaults shown. */
struct http_options {
	size_t max_body;	  /* JSON/form body bytes; 1 MiB */
	size_t max_upload;	  /* body bytes on ROUTE_UPLOAD rows; 16 MiB */
	size_t max_header;	  /* request line + headers per connection
				     (MHD memory pool); 16 KiB */
	unsigned max_connections; /* open connections; 1024 */
	unsigned max_per_ip;	  /* connections per client IP; unlimited */
	unsigned timeout_s;	  /* idle connection timeout; 60 s */
	size_t stream_max_buffered; /* bytes queued per stream; 256 KiB */
	const char *tls_cert_file;  /* PEM certificate chain: enables HTTPS */
	const char *tls_key_file;   /* PEM private key (with tls_cert_file) */
	bool trust_forwarded_for;   /* take the client IP from the last
				       X-Forwarded-For entry (behind a proxy) */
};

/** Returned by an authenticate hook that will answer later. */
#define HTTP_AUTH_PENDING 1

/**
 * Authenticate hook for ROUTE_AUTH_REQUIRED rows, supplied by the daemon.
 * Called after the body is read, with the token found in the
 * Authorization: Bearer header, else the access_token body field, else
 * the access_token query parameter (the body field is removed from the
 * body first). Return 0 to run the handler (after attaching the caller
 * with http_request_set_user()), a negative CINDER_ERR_* (AUTH gives 401
 * invalid_token, FORBIDDEN 403, others per the error table) to refuse, or
 * HTTP_AUTH_PENDING after starting an asynchronous check that will call
 * http_request_auth_done() with the request id (it may even call it
 * before returning HTTP_AUTH_PENDING, e.g. when its lookup completes at
 * once).
 * @param token borrowed for the duration of the call
 */
typedef int (*http_auth_cb)(struct http_request *req, const char *token,
			    void *arg);

/**
 * Admission hook (the per-IP rate limiter), called when a request's
 * headers have arrived and its route is known, before the body is read.
 * @return 0 to continue or a negative CINDER_ERR_* (BUSY gives 429)
 */
typedef int (*http_admit_cb)(struct http_request *req, void *arg);

/**
 * Health status hook: add fields to the GET /v1/ping object (e.g.
 * "database":"up"). Setting "ok" to false makes the answer 503.
 * @param obj borrowed; already holds ok, version, uptime_s and http
 */
typedef void (*http_status_cb)(json_t *obj, void *arg);

/**
 * Called once when a request ends for any reason (answer sent, client
 * gone, server stopping). After it returns the id finds nothing.
 * @param answered true if the whole answer was sent to the client
 */
typedef void (*http_close_cb)(uint64_t id, bool answered, void *arg);

/** Called once when http_stop() has drained every connection. */
typedef void (*http_stopped_cb)(void *arg);

/**
 * Create the HTTP server and start listening. The health routes
 * (GET /v1/ping, GET /healthz) are registered already.
 * @param base the loop; borrowed, must outlive the server
 * @param listen_addr "0.0.0.0:8080", "127.0.0.1:0", "[::1]:8080",
 *        "[::]:8080", "*:8080" or ":8080" (all addresses)
 * @param opts limits and TLS, or NULL for defaults; copied
 * @return a new server (free with http_free()), or NULL after logging why
 *         (bad address, port in use, unreadable TLS files, HTTPS not
 *         supported by this libmicrohttpd)
 */
struct http *http_new(struct event_base *base, const char *listen_addr,
		      const struct http_options *opts);

/** @return the bound TCP port (useful after listening on port 0) */
uint16_t http_port(const struct http *h);

/**
 * Stop and free the server. Suspended requests are closed without an
 * answer (their close hooks run with answered=false). NULL-safe.
 * Not from inside a handler or hook of this server.
 */
void http_free(struct http *h);

/**
 * Graceful stop: stop accepting connections, answer suspended requests
 * 503 and end streams; call cb once every connection has closed.
 * @param cb may be NULL
 * @return 0, or CINDER_ERR_INVAL if already stopping
 */
int http_stop(struct http *h, http_stopped_cb cb, void *arg);

/**
 * Add routing table rows (see router.h).
 * @param routes borrowed, must outlive the server (use static tables)
 * @param arg passed to the rows' handlers
 * @return 0 or CINDER_ERR_INVAL (bad pattern or duplicate row)
 */
int http_add_routes(struct http *h, const struct route *routes, size_t n,
		    void *arg);

/** Set (or clear with NULL) the authenticate hook. */
void http_set_auth_cb(struct http *h, http_auth_cb cb, void *arg);
/** Set (or clear with NULL) the admission / rate-limit hook. */
void http_set_admit_cb(struct http *h, http_admit_cb cb, void *arg);
/** Set (or clear with NULL) the health status hook. */
void http_set_status_cb(struct http *h, http_status_cb cb, void *arg);

/**
 * Fill a health object: version, uptime_s, http {active, requests}, then
 * the status hook's fields. Used by the health handler.
 * @param obj borrowed
 */
void http_status_fill(struct http *h, json_t *obj);

/** @return number of requests currently in flight (incl. suspended) */
size_t http_active_count(const struct http *h);

/*
 * Requests. A struct http_request is valid from its handler call until
 * its close hook has run; code that answers later keeps the id and looks
 * the request up again (style O4).
 */

/**
 * Find a live request by id.
 * @return the request (borrowed) or NULL if it has ended or its client
 *         went away
 */
struct http_request *http_request_lookup(struct http *h, uint64_t id);

/** @return the request id (never 0); log lines start with "req <id>" */
uint64_t http_request_id(const struct http_request *req);
/** @return "req <id>", the log context string (borrowed) */
const char *http_request_log_ctx(const struct http_request *req);
/** @return the server the request belongs to */
struct http *http_request_http(const struct http_request *req);
/** @return the method, e.g. "GET" (borrowed) */
const char *http_request_method(const struct http_request *req);
/** @return the path as received, without query string (borrowed) */
const char *http_request_path(const struct http_request *req);
/** @return the matched route pattern, e.g. "/v1/devices/:id", or NULL */
const char *http_request_pattern(const struct http_request *req);
/** @return a percent-decoded path parameter (borrowed) or NULL */
const char *http_request_param(const struct http_request *req,
			       const char *name);
/**
 * @return a decoded query parameter (borrowed; the first one if it is
 *         repeated) or NULL
 */
const char *http_request_query(const struct http_request *req,
			       const char *name);
/** @return all query parameters as an object (borrowed), NULL when the
 *  request has none (jansson's getters take NULL) */
json_t *http_request_query_all(const struct http_request *req);
/** @return a request header value (borrowed; case-insensitive) or NULL */
const char *http_request_header(const struct http_request *req,
				const char *name);
/**
 * @return the parsed body: always an object, empty when there was no
 *         body (borrowed; the handler may modify it). A form body is
 *         parsed on the first call (it was checked before the handler).
 */
json_t *http_request_body(struct http_request *req);
/**
 * @return the body's object if it exists already (a JSON or multipart
 *         body, or one http_request_body() built), else NULL: a form
 *         body is not parsed for it (borrowed; jansson's getters take
 *         NULL). For values only JSON carries (numbers, booleans).
 */
json_t *http_request_body_peek(const struct http_request *req);
/** @return the multipart file parts, or NULL (borrowed) */
const struct json_files *http_request_files(const struct http_request *req);
/**
 * A field from the body (string values only), else the query string:
 * what S and B clients send as form, JSON or ?name=. A form body is
 * parsed into its object first (see http_request_arg_into()).
 * @return the value (borrowed) or NULL
 */
const char *http_request_arg(struct http_request *req, const char *name);
/**
 * http_request_arg(), but a form body's field is decoded into buf
 * without parsing the body into an object (a function call's hot path:
 * five allocations fewer). The same answer in every case: a field given
 * twice is no string (the query's is taken), access_token is never one.
 * The object is still parsed when the value's encoded text does not fit
 * in buf.
 * @param buf receives a form field's value (NUL-terminated)
 * @return buf, a borrowed value (JSON or multipart body, query) or NULL
 */
const char *http_request_arg_into(struct http_request *req, const char *name,
				  char *buf, size_t cap);
/**
 * HTTP Basic credentials (OAuth client id/secret on /oauth/token, legacy
 * username:password on /v1/access_tokens).
 * @param user set to a new string (caller frees) or NULL
 * @param pass set to a new string (caller wipes with freezero and frees)
 *        or NULL
 * @return 0, or CINDER_ERR_NOTFOUND without (valid) Basic credentials
 */
int http_request_basic_auth(const struct http_request *req, char **user,
			    char **pass);
/** @return the client IP address as text (borrowed) */
const char *http_request_client_ip(const struct http_request *req);
/** @return the access token found in the request, or NULL (borrowed) */
const char *http_request_token(const struct http_request *req);
/**
 * Attach the authenticated caller (set by the authenticate hook).
 * @param user owned by the request from now on; free_fn (may be NULL) is
 *        called on it when the request ends
 */
void http_request_set_user(struct http_request *req, void *user,
			   void (*free_fn)(void *));
/** @return the attached caller or NULL (borrowed) */
void *http_request_user(const struct http_request *req);

/**
 * Register the close hook (one per request; a second call replaces it).
 */
void http_request_on_close(struct http_request *req, http_close_cb cb,
			   void *arg);

/*
 * Answers. Each request gets exactly one. Inside the handler the answer
 * is sent when the handler returns; for a suspended request it resumes
 * the connection. Every answer carries the CORS headers.
 */

/**
 * Add a header to the coming answer (before http_respond_*).
 * @return 0 or CINDER_ERR_INVAL (already answered, or CR/LF in it)
 */
int http_response_header_add(struct http_request *req, const char *name,
			     const char *value);

/**
 * Answer with a JSON body, serialised compactly, Content-Type
 * application/json.
 * @param body consumed (its reference is taken) in every case
 * @return 0, or CINDER_ERR_INVAL if the request was already answered
 */
int http_respond_json(struct http_request *req, int status, json_t *body);

/**
 * Answer with the error envelope (see json_error_body()); the status
 * comes from the error table.
 * @param code OAuth-style code for "error", or NULL to use the text
 * @param fmt description (printf format), or NULL for the default text
 * @return as http_respond_json()
 */
int http_respond_error(struct http_request *req, int err, const char *code,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/**
 * Answer with raw bytes (copied), e.g. format=raw or a binary download.
 * @return as http_respond_json()
 */
int http_respond_raw(struct http_request *req, int status,
		     const char *content_type, const void *data, size_t len);

/**
 * From a handler: answer later. The connection is suspended when the
 * handler returns; answer it with http_request_resume_with() or any
 * http_respond_* on a looked-up request. While suspended, a client that
 * disconnects is noticed: the request ends (close hook with
 * answered=false) and later lookups by id find nothing.
 * @return 0, or CINDER_ERR_INVAL outside a handler
 */
int http_request_suspend(struct http_request *req);

/**
 * Answer a suspended request by id (JSON body).
 * @param body consumed in every case
 * @return 0, CINDER_ERR_NOTFOUND if the request has gone, or
 *         CINDER_ERR_INVAL if it was already answered
 */
int http_request_resume_with(struct http *h, uint64_t id, int status,
			     json_t *body);

/**
 * Answer a suspended request by id with JSON text the caller already
 * serialised compactly (a hot path's answer built without a json_t).
 * @param text malloc'd, consumed in every case
 * @return as http_request_resume_with()
 */
int http_request_resume_json_text(struct http *h, uint64_t id, int status,
				  char *text, size_t len);

/**
 * Answer a suspended request by id with the error envelope.
 * @param desc description or NULL for the default text
 * @return as http_request_resume_with()
 */
int http_request_resume_error(struct http *h, uint64_t id, int err,
			      const char *desc);

/**
 * Finish an HTTP_AUTH_PENDING authentication: r == 0 runs the handler,
 * a negative CINDER_ERR_* answers with the matching error.
 * @return 0 or CINDER_ERR_NOTFOUND if the request has gone
 */
int http_request_auth_done(struct http *h, uint64_t id, int r);

/*
 * Streams (SSE). A handler calls http_stream_start(); the headers go out
 * when it returns and the body is whatever http_stream_write() queues,
 * sent as it comes (chunked) until http_stream_end() or the client leaves
 * (close hook). When nothing is queued the connection is suspended, so an
 * idle stream costs no CPU. Over plain HTTP, once MHD has sent the headers
 * and the first bytes, the loop writes the socket itself (http_resp.c).
 */

/**
 * Turn the request's answer into an open-ended stream.
 * @param content_type e.g. "text/event-stream"
 * @return 0, or CINDER_ERR_INVAL if already answered
 */
int http_stream_start(struct http_request *req, int status,
		      const char *content_type);

/**
 * Queue bytes (copied) on a stream.
 * @return 0, CINDER_ERR_NOTFOUND (gone), CINDER_ERR_INVAL (not a stream
 *         or ended) or CINDER_ERR_BUSY (more than stream_max_buffered
 *         would be queued: the client is too slow; drop it with
 *         http_stream_end())
 */
int http_stream_write(struct http *h, uint64_t id, const void *data,
		      size_t len);

/**
 * Releases one reference taken by http_stream_write_ref() (the signature
 * of libevent's evbuffer_ref_cleanup_cb).
 */
typedef void (*http_stream_unref_cb)(const void *data, size_t len, void *arg);

/**
 * Queue bytes on a stream without copying them: one formatted SSE frame
 * can be shared by every stream that wants it (style O6).
 * @param data borrowed until unref(data, len, arg) is called, which
 *        happens once when the bytes have been handed to MHD or the
 *        socket, or the stream ends; on a non-zero return unref is not
 *        called
 * @return as http_stream_write()
 */
int http_stream_write_ref(struct http *h, uint64_t id, const void *data,
			  size_t len, http_stream_unref_cb unref, void *arg);

/** @return bytes queued and not yet sent, 0 if gone */
size_t http_stream_buffered(struct http *h, uint64_t id);

/**
 * End a stream after what is queued has been sent.
 * @return 0 or CINDER_ERR_NOTFOUND
 */
int http_stream_end(struct http *h, uint64_t id);

#endif
