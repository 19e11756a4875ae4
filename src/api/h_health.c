/* SPDX-License-Identifier: MIT */
/*
 * Health endpoint: GET /v1/ping and its /healthz alias, for load
 * balancers, the integration scripts' wait-for-ready and operators. No
 * authentication, no store access of its own: the daemon's status hook
 * adds what it knows (database up/down, device counts).
 */
#include "config.h"

#include <jansson.h>

#include "api/handlers.h"
#include "api/http.h"

const struct route h_health_routes[] = {
	{"GET", "/v1/ping", 0, h_health_get},
	{"GET", "/healthz", 0, h_health_get},
};
const size_t h_health_nroutes =
	sizeof(h_health_routes) / sizeof(h_health_routes[0]);

int
h_health_get(struct http_request *req, void *arg)
{
	struct http *h = arg;
	json_t *o = json_object();
	int status;

	json_object_set_new(o, "ok", json_true());
	http_status_fill(h, o);
	status = json_is_false(json_object_get(o, "ok")) ? 503 : 200;
	return http_respond_json(req, status, o);
}
