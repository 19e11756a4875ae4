/* SPDX-License-Identifier: MIT */
/*
 * Event routes (cloud-api.md §1.3, §2): the SSE streams /v1/events/:prefix,
 * /v1/devices/events[/:prefix], /v1/devices/:idOrName/events[/:prefix],
 * /v1/products/:p/events[/:prefix] and POST /v1/devices/events. Handlers
 * check the caller and the prefix, look devices and products up in the
 * store when needed (the request waits suspended), then hand the request
 * to sse_open() or publish through events_publish_api(). The handler arg
 * is the struct events.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/auth.h"
#include "api/http.h"
#include "api/json.h"
#include "err.h"
#include "events.h"
#include "log.h"
#include "sse.h"
#include "store.h"
#include "xmalloc.h"

#define TTL_MAX 16777215 /* what Max-Age carries in 3 bytes */

/* an id, or a name among the caller's devices */
#define SQL_DEVICE                                                             \
	"SELECT device_id, owner_id FROM devices "                             \
	"WHERE device_id = lower($1) "                                         \
	"OR (owner_id = $2::bigint AND name = $1) "                            \
	"ORDER BY device_id = lower($1) DESC LIMIT 1"
/* a product id or slug */
#define SQL_PRODUCT                                                            \
	"SELECT id, owner_id FROM products "                                   \
	"WHERE id::text = $1 OR slug = $1 "                                    \
	"ORDER BY id::text = $1 DESC LIMIT 1"

/* A parsed publish request. */
struct pubreq {
	char name[EVENTS_NAME_MAX + 1];
	char data[EVENTS_API_DATA_MAX + 1]; /* NUL-terminated */
	bool has_data;			    /* data was given */
	uint32_t ttl;
	bool is_private;
};

/* A stream (or product publish) waiting for a device or product lookup. */
struct lookup {
	struct events *ev;
	uint64_t req_id;
	int64_t user_id;
	bool is_admin;
	struct sse_filter f;
	char prefix[EVENTS_NAME_MAX + 1];
	bool publish;	   /* POST: publish instead of opening a stream */
	struct pubreq pub; /* what to publish */
};

static const char *
prefix_param(struct http_request *req)
{
	const char *p = http_request_param(req, "prefix");

	return p != NULL ? p : "";
}

/* Check the prefix; answer 400 when it is unusable. */
static bool
prefix_ok(struct http_request *req, const char *prefix)
{
	if (events_name_valid(prefix, true))
		return true;
	http_respond_error(req, CINDER_ERR_INVAL, NULL,
			   "event prefix must be at most %d characters "
			   "without control characters",
			   EVENTS_NAME_MAX);
	return false;
}

static int
open_stream(struct events *ev, struct http_request *req,
	    const struct sse_filter *f, const char *prefix)
{
	int r = sse_open(events_sse(ev), req, f, prefix);

	if (r == CINDER_ERR_BUSY)
		return http_respond_error(req, CINDER_ERR_BUSY, NULL,
					  "Too many open event streams from "
					  "this address");
	return r;
}

static int
h_events_bare(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_error(req, CINDER_ERR_INVAL, NULL,
				  "An event name prefix is required: "
				  "/v1/events/:prefix");
}

static int
h_events_public(struct http_request *req, void *arg)
{
	struct events *ev = arg;
	const struct auth_user *u = auth_user_of(req);
	struct sse_filter f = {0};
	const char *prefix = prefix_param(req);

	if (u == NULL)
		return CINDER_ERR_AUTH;
	if (prefix[0] == '\0')
		return h_events_bare(req, arg);
	if (!prefix_ok(req, prefix))
		return 0;
	f.scope = SSE_SCOPE_ALL;
	f.user_id = u->id;
	return open_stream(ev, req, &f, prefix);
}

static int
h_events_mine(struct http_request *req, void *arg)
{
	struct events *ev = arg;
	const struct auth_user *u = auth_user_of(req);
	struct sse_filter f = {0};
	const char *prefix = prefix_param(req);

	if (u == NULL)
		return CINDER_ERR_AUTH;
	if (!prefix_ok(req, prefix))
		return 0;
	f.scope = SSE_SCOPE_MINE;
	f.user_id = u->id;
	return open_stream(ev, req, &f, prefix);
}

static int
pubreq_publish(struct events *ev, int64_t user_id, const struct pubreq *p,
	       uint32_t product_id)
{
	return events_publish_api(ev, user_id, p->name,
				  (const uint8_t *)p->data,
				  p->has_data ? strlen(p->data) : 0, p->ttl,
				  p->is_private, product_id);
}

/* Finish a looked-up stream: answer an error or start the stream. */
static void
lookup_finish(struct lookup *lk, int err, const char *desc)
{
	struct http *h = events_http(lk->ev);
	struct http_request *req = http_request_lookup(h, lk->req_id);

	if (req == NULL)
		return; /* the client left */
	if (err != 0) {
		http_request_resume_error(h, lk->req_id, err, desc);
		return;
	}
	if (lk->publish) {
		err = pubreq_publish(lk->ev, lk->user_id, &lk->pub,
				     lk->f.product_id);
		if (err != 0)
			http_request_resume_error(h, lk->req_id, err, NULL);
		else
			http_request_resume_with(h, lk->req_id, 200,
						 json_pack("{s:b}", "ok", 1));
		return;
	}
	if (open_stream(lk->ev, req, &lk->f, lk->prefix) < 0)
		http_request_resume_error(h, lk->req_id, CINDER_ERR_INTERNAL,
					  NULL);
}

static int
lookup_err(int r)
{
	return r == CINDER_ERR_TIMEOUT || r == CINDER_ERR_UNAVAILABLE
		       ? CINDER_ERR_UNAVAILABLE
		       : CINDER_ERR_INTERNAL;
}

static void
device_found(int r, const struct store_result *res, void *arg)
{
	struct lookup *lk = arg;
	const char *id;

	if (r != 0) {
		lookup_finish(lk, lookup_err(r), NULL);
	} else if (store_result_ntuples(res) != 1 ||
		   (id = store_result_value(res, 0, 0)) == NULL) {
		lookup_finish(lk, CINDER_ERR_NOTFOUND, "device not found");
	} else {
		snprintf(lk->f.device_id, sizeof(lk->f.device_id), "%s", id);
		/* the owner sees private events as their owner, event by
		   event: an unclaim ends it at once */
		lk->f.see_private = lk->is_admin;
		lookup_finish(lk, 0, NULL);
	}
	free(lk);
}

static void
product_found(int r, const struct store_result *res, void *arg)
{
	struct lookup *lk = arg;
	const char *id, *owner;

	if (r != 0) {
		lookup_finish(lk, lookup_err(r), NULL);
	} else if (store_result_ntuples(res) != 1 ||
		   (id = store_result_value(res, 0, 0)) == NULL) {
		lookup_finish(lk, CINDER_ERR_NOTFOUND, "product not found");
	} else {
		owner = store_result_value(res, 0, 1);
		if (!lk->is_admin &&
		    (owner == NULL || strtoll(owner, NULL, 10) != lk->user_id))
			lookup_finish(lk, CINDER_ERR_FORBIDDEN,
				      "not allowed to see this product");
		else {
			lk->f.product_id = (uint32_t)strtoul(id, NULL, 10);
			lookup_finish(lk, 0, NULL);
		}
	}
	free(lk);
}

/*
 * Look a device or product up, then open the stream (or publish). lk, if
 * given, is a prepared context (a product publish); it is consumed.
 */
static int
lookup_start(struct http_request *req, struct events *ev, enum sse_scope scope,
	     const char *sql, const char *key, struct lookup *lk)
{
	const struct auth_user *u = auth_user_of(req);
	const char *prefix = prefix_param(req);
	char uid[24];
	const char *params[2];
	int r;

	if (u == NULL || (lk == NULL && !prefix_ok(req, prefix)) ||
	    key == NULL || key[0] == '\0' || strlen(key) > 256) {
		if (lk != NULL)
			free(lk);
		if (u == NULL)
			return CINDER_ERR_AUTH;
		if (key == NULL || key[0] == '\0' || strlen(key) > 256)
			return http_respond_error(req, CINDER_ERR_NOTFOUND,
						  NULL, "not found");
		return 0; /* prefix_ok answered */
	}
	if (lk == NULL)
		lk = xcalloc(1, sizeof(*lk));
	lk->ev = ev;
	lk->req_id = http_request_id(req);
	lk->user_id = u->id;
	lk->is_admin = u->is_admin;
	lk->f.scope = scope;
	lk->f.user_id = u->id;
	snprintf(lk->prefix, sizeof(lk->prefix), "%s", prefix);
	snprintf(uid, sizeof(uid), "%lld", (long long)u->id);
	params[0] = key;
	params[1] = uid;
	r = events_query(
		ev, sql, scope == SSE_SCOPE_DEVICE ? 2 : 1, params,
		scope == SSE_SCOPE_DEVICE ? device_found : product_found, lk);
	if (r != 0) {
		free(lk);
		return lookup_err(r);
	}
	return http_request_suspend(req);
}

static int
h_events_device(struct http_request *req, void *arg)
{
	return lookup_start(req, arg, SSE_SCOPE_DEVICE, SQL_DEVICE,
			    http_request_param(req, "id"), NULL);
}

static int
h_events_product(struct http_request *req, void *arg)
{
	return lookup_start(req, arg, SSE_SCOPE_PRODUCT, SQL_PRODUCT,
			    http_request_param(req, "product"), NULL);
}

/* A boolean from the body (JSON or form) or the query string. */
static bool
arg_bool(struct http_request *req, const char *key, bool *out)
{
	if (json_field_bool(http_request_body(req), key, out))
		return true;
	return json_field_bool(http_request_query_all(req), key, out);
}

/*
 * Read name, data, private and ttl. @return 0, or 1 after answering the
 * request with 400.
 */
static int
publish_parse(struct http_request *req, struct pubreq *p)
{
	json_t *body = http_request_body(req), *dv;
	const char *name = http_request_arg(req, "name");
	const char *data = http_request_arg(req, "data");
	char *dumped = NULL;
	long long ttl = 60;

	memset(p, 0, sizeof(*p));
	p->is_private = true;
	if (name == NULL || name[0] == '\0') {
		http_respond_error(req, CINDER_ERR_INVAL, NULL,
				   "name parameter is required");
		return 1;
	}
	if (!events_name_valid(name, false)) {
		http_respond_error(req, CINDER_ERR_INVAL, NULL,
				   "event name must be 1-%d characters "
				   "without control characters",
				   EVENTS_NAME_MAX);
		return 1;
	}
	if (json_object_get(body, "private") != NULL ||
	    http_request_query(req, "private") != NULL) {
		if (!arg_bool(req, "private", &p->is_private)) {
			http_respond_error(req, CINDER_ERR_INVAL, NULL,
					   "private must be true or false");
			return 1;
		}
	}
	if ((json_object_get(body, "ttl") != NULL ||
	     http_request_query(req, "ttl") != NULL) &&
	    !json_field_int(body, "ttl", &ttl) &&
	    !json_field_int(http_request_query_all(req), "ttl", &ttl))
		ttl = -1;
	if (ttl < 0 || ttl > TTL_MAX) {
		http_respond_error(req, CINDER_ERR_INVAL, NULL,
				   "ttl must be 0-%d seconds", TTL_MAX);
		return 1;
	}
	if ((dv = json_object_get(body, "data")) != NULL &&
	    !json_is_string(dv) && !json_is_null(dv))
		/* a JSON body may carry data as a number or an object */
		data = dumped = json_dump_compact(dv, NULL);
	if (data != NULL && strlen(data) > EVENTS_API_DATA_MAX) {
		free(dumped);
		http_respond_error(req, CINDER_ERR_TOO_BIG, NULL,
				   "event data is limited to %d bytes",
				   EVENTS_API_DATA_MAX);
		return 1;
	}
	if (data != NULL) {
		snprintf(p->data, sizeof(p->data), "%s", data);
		p->has_data = true;
	}
	free(dumped);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->ttl = (uint32_t)ttl;
	return 0;
}

static int
h_events_publish(struct http_request *req, void *arg)
{
	struct events *ev = arg;
	const struct auth_user *u = auth_user_of(req);
	struct pubreq p;
	int r;

	if (u == NULL)
		return CINDER_ERR_AUTH;
	if (publish_parse(req, &p) != 0)
		return 0;
	r = pubreq_publish(ev, u->id, &p, 0);
	if (r != 0)
		return r;
	return http_respond_json(req, 200, json_pack("{s:b}", "ok", 1));
}

/*
 * POST /v1/products/:product/events: like /v1/devices/events, with the
 * product id on the event, so product streams show it. Product owner or
 * admin only.
 */
static int
h_events_product_publish(struct http_request *req, void *arg)
{
	struct lookup *lk;
	int r;

	if (auth_user_of(req) == NULL)
		return CINDER_ERR_AUTH;
	lk = xcalloc(1, sizeof(*lk));
	if (publish_parse(req, &lk->pub) != 0) {
		free(lk);
		return 0;
	}
	lk->publish = true;
	r = lookup_start(req, arg, SSE_SCOPE_PRODUCT, SQL_PRODUCT,
			 http_request_param(req, "product"), lk);
	return r;
}

const struct route h_events_routes[] = {
	{"GET", "/v1/events", ROUTE_AUTH_REQUIRED, h_events_bare},
	{"GET", "/v1/events/*prefix", ROUTE_AUTH_REQUIRED, h_events_public},
	{"GET", "/v1/devices/events", ROUTE_AUTH_REQUIRED, h_events_mine},
	{"GET", "/v1/devices/events/*prefix", ROUTE_AUTH_REQUIRED,
	 h_events_mine},
	{"POST", "/v1/devices/events", ROUTE_AUTH_REQUIRED, h_events_publish},
	{"GET", "/v1/devices/:id/events", ROUTE_AUTH_REQUIRED, h_events_device},
	{"GET", "/v1/devices/:id/events/*prefix", ROUTE_AUTH_REQUIRED,
	 h_events_device},
	{"GET", "/v1/products/:product/events", ROUTE_AUTH_REQUIRED,
	 h_events_product},
	{"POST", "/v1/products/:product/events", ROUTE_AUTH_REQUIRED,
	 h_events_product_publish},
	{"GET", "/v1/products/:product/events/*prefix", ROUTE_AUTH_REQUIRED,
	 h_events_product},
};

const size_t h_events_nroutes =
	sizeof(h_events_routes) / sizeof(h_events_routes[0]);
