/* SPDX-License-Identifier: MIT */
/*
 * REST routing table: {method, path pattern, flags, handler} rows, as in
 * tmux's or Redis's command tables, matched segment by segment. Patterns
 * use ":name" for one path segment and a final "*name" for the rest of the
 * path. Segments are percent-decoded before matching, so "a%2Fb" is one
 * segment "a/b". One trailing slash is ignored. When several rows match,
 * the most specific wins (a literal beats ":param" beats "*rest", earlier
 * segments first). Pure: no I/O, no MHD; loop thread only.
 */
#ifndef CINDER_API_ROUTER_H
#define CINDER_API_ROUTER_H

#include <stddef.h>

struct http_request;

/**
 * A request handler. Before returning it must have done one of:
 * answered (http_respond_*), suspended (http_request_suspend), or
 * returned a negative CINDER_ERR_* which the HTTP layer turns into the
 * error envelope with the default text. Returning 0 without doing either
 * is a programming error answered with 500.
 * @param req the request, valid until answered (see http.h)
 * @param arg the arg given to router_add()/http_add_routes()
 */
typedef int (*http_handler_cb)(struct http_request *req, void *arg);

/** Route flags. */
#define ROUTE_AUTH_REQUIRED 0x01 /* run the authenticate hook first */
#define ROUTE_UPLOAD 0x02	 /* body may be up to max_upload bytes */

/** One row of a routing table; tables are usually static const arrays. */
struct route {
	const char *method;	 /* "GET", "POST", "PUT", "DELETE", ... */
	const char *pattern;	 /* "/v1/devices/:id/:name" */
	unsigned flags;		 /* ROUTE_* bits */
	http_handler_cb handler; /* called for a match */
};

#define ROUTER_MAX_SEGMENTS 16 /* longest pattern or path, in segments */
#define ROUTER_MAX_PARAMS 8    /* ":params" per pattern */
#define ROUTER_INLINE 128      /* path bytes a match holds without malloc */

/** One extracted path parameter. */
struct router_param {
	const char *name; /* pattern's name without ':' or '*' (borrowed) */
	char *value;	  /* percent-decoded value (in the match's buf) */
};

/** The outcome of router_match(). */
struct router_match {
	const struct route *route; /* the row that matched, or NULL */
	void *arg;		   /* its handler arg */
	size_t nparams;		   /* used entries of params */
	struct router_param params[ROUTER_MAX_PARAMS]; /* path parameters */
	char *buf; /* decoded segments of a long path (owned), else NULL */
	char inl[ROUTER_INLINE]; /* decoded segments of a path that fits */
	char *rest;		 /* a "*rest" value (owned) or NULL */
	char allow[64]; /* for ROUTER_NO_METHOD: "GET, POST, OPTIONS" */
};

enum router_result {
	ROUTER_FOUND = 0, /* route set */
	ROUTER_NO_PATH,	  /* no pattern matches the path: 404 */
	ROUTER_NO_METHOD, /* path matches, method doesn't: 405 (allow set) */
	ROUTER_BAD_PATH,  /* undecodable percent-escape: 400 */
};

struct router;

/** @return a new empty router; caller frees with router_free() */
struct router *router_new(void);

/** Free a router and its compiled patterns. NULL-safe. */
void router_free(struct router *r);

/**
 * Add rows to the table. The rows are borrowed and must outlive the
 * router (use static const tables).
 * @param routes array of n rows
 * @param arg passed to every handler of these rows
 * @return 0, or CINDER_ERR_INVAL for a bad pattern (not starting with
 *         '/', empty segment, too many segments or params, '*' not last)
 *         or a duplicate {method, pattern}; nothing is added on error
 */
int router_add(struct router *r, const struct route *routes, size_t n,
	       void *arg);

/**
 * Match a request.
 * @param method the request method; HEAD also matches GET rows
 * @param path the path without query string, not decoded
 * @param m filled in; always call router_match_cleanup() afterwards
 * @return a router_result
 */
enum router_result router_match(const struct router *r, const char *method,
				const char *path, struct router_match *m);

/** Release the parameter values of a match. Safe on a zeroed match. */
void router_match_cleanup(struct router_match *m);

/** @return the decoded value of a path parameter (borrowed) or NULL */
const char *router_match_param(const struct router_match *m, const char *name);

#endif
