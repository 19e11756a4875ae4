/* SPDX-License-Identifier: MIT */
/*
 * Health endpoint: GET /v1/ping and its /healthz alias, for load
 * balancers, the integration scripts' wait-for-ready and operators. No
 * authentication, no store access of its own: the daemon's status hook
 * adds what it knows (database up/down, device counts). With ?heap=1 it
 * also reports the allocator's figures, which cost a walk of the whole
 * heap (milliseconds with many sessions), so a poller does not pay them.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "api/handlers.h"
#include "api/http.h"

const struct route h_health_routes[] = {
	{"GET", "/v1/ping", 0, h_health_get},
	{"GET", "/healthz", 0, h_health_get},
};
const size_t h_health_nroutes =
	sizeof(h_health_routes) / sizeof(h_health_routes[0]);

/* The allocator's bytes in use (not RSS, which keeps freed pages) and
   the free bytes it holds: what the benchmarks read for per-item memory
   and fragmentation. */
static void
heap_fill(struct http_request *req, json_t *o)
{
	const char *q = http_request_query(req, "heap");

	if (q == NULL || strcmp(q, "1") != 0)
		return;
#if defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 33)
	{
		struct mallinfo2 mi = mallinfo2();

		json_object_set_new(
			o, "heap_in_use",
			json_integer((json_int_t)(mi.uordblks + mi.hblkhd)));
		json_object_set_new(o, "heap_free",
				    json_integer((json_int_t)mi.fordblks));
	}
#endif
#endif
}

int
h_health_get(struct http_request *req, void *arg)
{
	struct http *h = arg;
	json_t *o = json_object();
	int status;

	json_object_set_new(o, "ok", json_true());
	http_status_fill(h, o);
	heap_fill(req, o);
	status = json_is_false(json_object_get(o, "ok")) ? 503 : 200;
	return http_respond_json(req, status, o);
}
