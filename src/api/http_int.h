/* SPDX-License-Identifier: MIT */
/*
 * Internal to the HTTP glue: the server and request structs and the few
 * calls between http.c (the server: MHD in the loop, the request-id table,
 * start and stop), http_req.c (a request's life: reading, dispatching,
 * suspending, accessors) and http_resp.c (building answers and streams).
 * Nothing outside those three files includes it.
 */
#ifndef CINDER_API_HTTP_INT_H
#define CINDER_API_HTTP_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <microhttpd.h>

#include "api/http.h"
#include "api/json.h"
#include "api/router.h"

#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define HTTP_DEFAULT_MAX_UPLOAD (16 * 1024 * 1024)
/*
 * libmicrohttpd's pool per connection, which bounds the request line and
 * headers: 16 KiB, what Node's HTTP server allows by default (an 8 KiB
 * header line fits; past the pool MHD answers 431). MHD zeroes the pool
 * between keep-alive requests: at 32 KiB an idle keep-alive connection
 * held 17.2 KB of RSS, at 16 KiB 9.0 KB (2,000 connections, 2026-12-06),
 * and each request clears half as much.
 */
#define HTTP_DEFAULT_MAX_HEADER (16 * 1024)
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_DEFAULT_TIMEOUT_S 60
#define HTTP_DEFAULT_STREAM_MAX (256 * 1024)
#define HTTP_TLS_FILE_MAX (1024 * 1024)
#define HTTP_STREAM_BLOCK 4096
#define HTTP_BODY_PREALLOC (64 * 1024)
/*
 * Freed request blocks kept for the next requests (LIFO, at most
 * HTTP_REQ_POOL), for the requests whose struct, timer event, method and
 * path fit in HTTP_REQ_BLOCK bytes. The block is above glibc's small
 * sizes (1,008 bytes), and such an allocation first merges all of the
 * arena's fast bins into its unsorted list, which the next small
 * allocations then sort: per request, as every request made one.
 */
#define HTTP_REQ_BLOCK 1536
#define HTTP_REQ_POOL 64
#define HTTP_TOKEN_INLINE 64 /* tokens are 40 hex digits */
#define HTTP_BODY_INLINE 128 /* a function call's form or JSON body */

#define JSON_CONTENT_TYPE "application/json; charset=utf-8"

/* Where a request is in its life. */
enum req_state {
	REQ_BODY = 0, /* headers seen, reading the body */
	REQ_AUTH,     /* suspended, waiting for http_request_auth_done */
	REQ_HANDLED,  /* handler ran: answered, suspended or streaming */
};

/* How a stream's body goes on the wire (what MHD does for the version). */
enum req_wire {
	REQ_WIRE_MHD = 0, /* unknown or TLS: only MHD writes the socket */
	REQ_WIRE_RAW,	  /* HTTP/1.0: bytes as they are, close at the end */
	REQ_WIRE_CHUNKED, /* HTTP/1.1: chunked transfer coding */
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
	struct http *h;		     /* owning server */
	struct MHD_Connection *conn; /* MHD's connection */
	struct http_conn *hc;	     /* its socket context */
	uint64_t id;		     /* table key, never 0 */
	struct http_request *next;   /* hash chain */
	bool in_table;		     /* listed in h->tab */
	bool pooled;		     /* block of HTTP_REQ_BLOCK bytes */
	char ctx[32];		     /* "req <id>" */
	char *method;		     /* copy, in req's block */
	char *path;		     /* copy, not decoded, in req's block */
	char client_ip[INET6_ADDRSTRLEN]; /* text address */
	struct timespec started;	  /* monotonic, for the access log */
	enum req_state state;		  /* see enum */

	struct router_match match; /* route and params */
	json_t *query;		   /* decoded query parameters or NULL */
	json_t *body;		   /* parsed body (object) */
	bool form;		   /* buf is a checked form body, parsed
				      into body only when a handler asks */
	struct json_files *files;  /* multipart files, views into buf */
	uint8_t *buf;		   /* raw body */
	size_t len, cap, limit;	   /* body length, capacity, limit */
	bool too_big;		   /* body went over limit */
	size_t discarded;	   /* bytes dropped since then */
	char *token;		   /* access token found, or NULL */
	/* a short token and a short body live in req itself: each was one
	   allocation of every request (perf, bench/run B4 and B4v) */
	char token_inl[HTTP_TOKEN_INLINE];  /* token, if it fits */
	uint8_t body_inl[HTTP_BODY_INLINE]; /* buf, if the body fits */
	void *user;			    /* authenticated caller */
	void (*user_free)(void *);	    /* frees user */

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
	struct event *later_ev;	   /* its storage, in req's block */
	http_close_cb close_cb;	   /* close hook */
	void *close_arg;	   /* its arg */

	bool stream;	       /* answer is a stream */
	bool stream_end;       /* no more writes; end after drain */
	struct evbuffer *sbuf; /* queued stream bytes */

	/* direct streams (http_resp.c): the loop writes the socket itself */
	enum req_wire wire;    /* body framing MHD chose, from the version */
	bool direct;	       /* stream bytes go straight to the socket */
	bool flush_soon;       /* wev activated for a flush */
	bool wait_write;       /* wev added: the socket was full */
	int fd;		       /* the socket, while direct */
	struct evbuffer *wbuf; /* framed bytes the socket has not taken */
	struct event *wev;     /* flush now / socket writable */
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
	bool tls;		    /* MHD does TLS: no direct streams */
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
	void *req_pool[HTTP_REQ_POOL]; /* free request blocks, last on top */
	unsigned req_pool_n;	       /* blocks in req_pool */
};

/* http.c: the id table and the loop */
void http_tab_insert(struct http *h, struct http_request *req);
void http_tab_remove(struct http *h, struct http_request *req);
void http_kick(struct http *h);

/* http_req.c: a request's life, MHD's per-request callbacks */
void http_req_suspend(struct http_request *req);
void http_req_block_free(void *block);
void http_req_resume(struct http_request *req);
void http_req_notify_close(struct http_request *req, bool answered);
void http_req_gone(struct http_request *req);
void http_conn_shutdown(struct MHD_Connection *c);
enum MHD_Result http_mhd_access(void *cls, struct MHD_Connection *conn,
				const char *url, const char *method,
				const char *version, const char *upload_data,
				size_t *upload_data_size, void **con_cls);
void http_mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			enum MHD_RequestTerminationCode toe);

/* http_resp.c: answers */
int http_respond_error_text(struct http_request *req, int err, const char *code,
			    const char *desc);
int http_respond_json_text(struct http_request *req, int status, char *text,
			   size_t len);
int http_respond_auth_error(struct http_request *req, int err);
int http_respond_options(struct http_request *req);
void http_stream_direct_leave(struct http_request *req);

#endif
