/* SPDX-License-Identifier: MIT */
/*
 * The Particle-compatible REST API of cinderd (cloud-api.md 1.1, 1.2):
 * OAuth tokens, users, access tokens, devices, claiming, key
 * provisioning, variables and functions. rest_new() registers the route
 * tables on the HTTP server and installs the authenticate hook (bearer
 * tokens, see auth.h) and the admission hook (per-IP rate limits and the
 * failed-login lockout, see ratelimit.h). Loop thread only.
 */
#ifndef CINDER_API_REST_H
#define CINDER_API_REST_H

#include <jansson.h>

struct event_base;
struct conf;
struct http;
struct store;
struct registry;
struct cryptopool;
struct rest;

/** What the REST API needs; every pointer is borrowed and must outlive it. */
struct rest_deps {
	struct event_base *base;
	const struct conf *cfg;
	struct http *http;
	struct store *store;
	struct registry *reg;
	struct cryptopool *pool;
};

/**
 * Register the REST routes and the auth and admission hooks.
 * @param deps copied; the objects it points to are borrowed
 * @param out receives the API object (free with rest_free)
 * @return 0 or CINDER_ERR_INVAL (route registration failed)
 */
int rest_new(const struct rest_deps *deps, struct rest **out);

/**
 * Clear the hooks and free the API object. Call it after http_free() (so
 * that suspended requests have been closed) and before registry_free()
 * and store_free(). Password jobs still on the crypto pool keep a small
 * part alive until they complete. NULL-safe.
 */
void rest_free(struct rest *r);

struct healer;

/**
 * Give the API the healer that sends flashes (PUT /v1/devices/:id with a
 * file); NULL (the default, and before freeing the healer) refuses them.
 */
void rest_set_healer(struct rest *r, struct healer *h);

/**
 * Add the API's figures to a status object (GET /v1/ping):
 * "api": {"device_rows": rows in the call/read row cache,
 * "device_rows_swept": rows its sweep has dropped}.
 */
void rest_status_fill(const struct rest *r, json_t *obj);

#endif
