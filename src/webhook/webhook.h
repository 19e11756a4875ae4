/* SPDX-License-Identifier: MIT */
/*
 * Webhooks (docs/webhooks.md): the definitions of every user, kept in
 * memory and in the webhooks table; a bus subscription that turns each
 * matching device or API event into a durable delivery (a row of
 * webhook_deliveries, written through the async store before it is
 * sent); libcurl's multi interface on the libevent loop to send them;
 * retries, per-host skipping and in-flight caps (policy.h); and the
 * hook-sent / hook-response / hook-error events back to the owner.
 * Loop thread only.
 */
#ifndef CINDER_WEBHOOK_WEBHOOK_H
#define CINDER_WEBHOOK_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "api/router.h"

struct event_base;
struct conf;
struct http;
struct store;
struct events;
struct webhook;

/** What the module needs; every pointer is borrowed and must outlive it. */
struct webhook_deps {
	struct event_base *base;
	const struct conf *cfg;
	struct http *http;
	struct store *store;
	struct events *events;
};

#define WEBHOOK_MAX_PER_USER 100 /* definitions per user */

/** Response shapes: /v1/webhooks or /v1/integrations. */
enum webhook_style {
	WEBHOOK_STYLE_HOOK = 0,
	WEBHOOK_STYLE_INTEGRATION,
};

/**
 * Create the module: parse the webhook_* config keys, register the
 * routes, subscribe to the bus, and start loading definitions and
 * unfinished deliveries from the database.
 * @return 0, CINDER_ERR_INVAL (bad config value, logged) or
 *     CINDER_ERR_INTERNAL (libcurl could not start)
 */
int webhook_new(const struct webhook_deps *deps, struct webhook **out);

/**
 * Stop: in-flight requests are abandoned (their rows stay in the
 * database and are sent again after the next start). NULL-safe. Call
 * before events_free() and store_free().
 */
void webhook_free(struct webhook *w);

/** Add a "webhooks" object (counters) to the /v1/ping health object. */
void webhook_status_fill(const struct webhook *w, json_t *obj);

/**
 * @return delivery row writes waiting in the module for room in the store
 *     queue (a stop waits for them as for the store's). NULL-safe (0).
 */
size_t webhook_writes_waiting(const struct webhook *w);

/* ---- for the routes (src/api/h_webhooks.c) ---- */

/** @return the HTTP server (borrowed) */
struct http *webhook_http(struct webhook *w);

/**
 * Store a validated definition and answer the suspended request req_id
 * with the new webhook.
 * @param canon from hookdef_validate(); consumed
 * @return 0 (the request will be answered), CINDER_ERR_BUSY (too many
 *     webhooks) or CINDER_ERR_UNAVAILABLE (not loaded yet, database
 *     down); the request is not answered then
 */
int webhook_create(struct webhook *w, int64_t owner, json_t *canon,
		   uint64_t req_id, enum webhook_style style);

/**
 * Replace the definition of webhook id (PUT /v1/integrations/:id).
 * @return as webhook_create(), or CINDER_ERR_NOTFOUND
 */
int webhook_replace(struct webhook *w, int64_t owner, bool admin,
		    const char *id, json_t *canon, uint64_t req_id,
		    enum webhook_style style);

/**
 * Delete webhook id and its queued deliveries; answers req_id.
 * @return 0, CINDER_ERR_NOTFOUND or CINDER_ERR_UNAVAILABLE
 */
int webhook_delete(struct webhook *w, int64_t owner, bool admin, const char *id,
		   uint64_t req_id);

/** @return a new array of the owner's webhooks */
json_t *webhook_list_json(struct webhook *w, int64_t owner,
			  enum webhook_style style);

/** @return a new object for webhook id, or NULL if the caller has none */
json_t *webhook_get_json(struct webhook *w, int64_t owner, bool admin,
			 const char *id, enum webhook_style style);

/* Routes of src/api/h_webhooks.c; arg = struct webhook. */
extern const struct route h_webhooks_routes[];
extern const size_t h_webhooks_nroutes;

#endif
