/* SPDX-License-Identifier: MIT */
/*
 * Webhook routes (cloud-api.md §1.4): /v1/webhooks (list, create, get,
 * delete) and /v1/integrations (list, create, get, replace, delete; only
 * integration_type Webhook). Definitions are checked by
 * hookdef_validate(); a refused one is a 400 naming the field. The
 * handler arg is the struct webhook.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api/auth.h"
#include "api/http.h"
#include "err.h"
#include "webhook/hookdef.h"
#include "webhook/webhook.h"

/* Validate the body; answer 400 and return NULL when it is refused. */
static json_t *
definition(struct http_request *req, enum webhook_style style)
{
	json_t *body = http_request_body(req), *canon = NULL;
	const json_t *it = json_object_get(body, "integration_type");
	char err[HOOKDEF_ERRLEN];
	int r;

	if (style == WEBHOOK_STYLE_INTEGRATION && it != NULL &&
	    (!json_is_string(it) ||
	     strcasecmp(json_string_value(it), "Webhook") != 0)) {
		http_respond_error(req, CINDER_ERR_INVAL, NULL,
				   "integration_type: only Webhook is "
				   "supported");
		return NULL;
	}
	if (body == NULL) {
		http_respond_error(req, CINDER_ERR_INVAL, NULL,
				   "event: no event name provided");
		return NULL;
	}
	r = hookdef_validate(body, &canon, err, sizeof(err));
	if (r != 0) {
		http_respond_error(req, CINDER_ERR_INVAL, NULL, "%s", err);
		return NULL;
	}
	return canon;
}

static int
suspend_or(struct http_request *req, int r, const char *what)
{
	if (r == 0)
		return http_request_suspend(req);
	if (r == CINDER_ERR_NOTFOUND)
		return http_respond_error(req, r, NULL, "no webhook found");
	if (r == CINDER_ERR_BUSY)
		return http_respond_error(req, r, NULL,
					  "at most %d webhooks per user",
					  WEBHOOK_MAX_PER_USER);
	(void)what;
	return r;
}

static int
create(struct http_request *req, void *arg, enum webhook_style style)
{
	const struct auth_user *u = auth_user_of(req);
	json_t *canon;

	if (u == NULL)
		return CINDER_ERR_AUTH;
	if ((canon = definition(req, style)) == NULL)
		return 0;
	return suspend_or(
		req,
		webhook_create(arg, u->id, canon, http_request_id(req), style),
		"create");
}

static int
list(struct http_request *req, void *arg, enum webhook_style style)
{
	const struct auth_user *u = auth_user_of(req);

	if (u == NULL)
		return CINDER_ERR_AUTH;
	return http_respond_json(req, 200,
				 webhook_list_json(arg, u->id, style));
}

static int
get(struct http_request *req, void *arg, enum webhook_style style)
{
	const struct auth_user *u = auth_user_of(req);
	json_t *o;

	if (u == NULL)
		return CINDER_ERR_AUTH;
	o = webhook_get_json(arg, u->id, u->is_admin,
			     http_request_param(req, "id"), style);
	if (o == NULL)
		return http_respond_error(req, CINDER_ERR_NOTFOUND, NULL,
					  "no webhook found");
	return http_respond_json(req, 200, o);
}

static int
del(struct http_request *req, void *arg)
{
	const struct auth_user *u = auth_user_of(req);

	if (u == NULL)
		return CINDER_ERR_AUTH;
	return suspend_or(req,
			  webhook_delete(arg, u->id, u->is_admin,
					 http_request_param(req, "id"),
					 http_request_id(req)),
			  "delete");
}

static int
h_hooks_create(struct http_request *req, void *arg)
{
	return create(req, arg, WEBHOOK_STYLE_HOOK);
}

static int
h_hooks_list(struct http_request *req, void *arg)
{
	return list(req, arg, WEBHOOK_STYLE_HOOK);
}

static int
h_hooks_get(struct http_request *req, void *arg)
{
	return get(req, arg, WEBHOOK_STYLE_HOOK);
}

static int
h_integ_create(struct http_request *req, void *arg)
{
	return create(req, arg, WEBHOOK_STYLE_INTEGRATION);
}

static int
h_integ_list(struct http_request *req, void *arg)
{
	return list(req, arg, WEBHOOK_STYLE_INTEGRATION);
}

static int
h_integ_get(struct http_request *req, void *arg)
{
	return get(req, arg, WEBHOOK_STYLE_INTEGRATION);
}

static int
h_integ_put(struct http_request *req, void *arg)
{
	const struct auth_user *u = auth_user_of(req);
	json_t *canon;

	if (u == NULL)
		return CINDER_ERR_AUTH;
	if ((canon = definition(req, WEBHOOK_STYLE_INTEGRATION)) == NULL)
		return 0;
	return suspend_or(req,
			  webhook_replace(arg, u->id, u->is_admin,
					  http_request_param(req, "id"), canon,
					  http_request_id(req),
					  WEBHOOK_STYLE_INTEGRATION),
			  "replace");
}

const struct route h_webhooks_routes[] = {
	{"GET", "/v1/webhooks", ROUTE_AUTH_REQUIRED, h_hooks_list},
	{"POST", "/v1/webhooks", ROUTE_AUTH_REQUIRED, h_hooks_create},
	{"GET", "/v1/webhooks/:id", ROUTE_AUTH_REQUIRED, h_hooks_get},
	{"DELETE", "/v1/webhooks/:id", ROUTE_AUTH_REQUIRED, del},
	{"GET", "/v1/integrations", ROUTE_AUTH_REQUIRED, h_integ_list},
	{"POST", "/v1/integrations", ROUTE_AUTH_REQUIRED, h_integ_create},
	{"GET", "/v1/integrations/:id", ROUTE_AUTH_REQUIRED, h_integ_get},
	{"PUT", "/v1/integrations/:id", ROUTE_AUTH_REQUIRED, h_integ_put},
	{"DELETE", "/v1/integrations/:id", ROUTE_AUTH_REQUIRED, del},
};

const size_t h_webhooks_nroutes =
	sizeof(h_webhooks_routes) / sizeof(h_webhooks_routes[0]);
