/* SPDX-License-Identifier: MIT */
/*
 * Routing tables of the REST resources, one per h_*.c file. Each file
 * exports a static table of struct route rows and its length; the daemon
 * (or http_new() for the health rows) adds them with http_add_routes().
 * Handlers follow http_handler_cb (router.h). Loop thread only.
 */
#ifndef CINDER_API_HANDLERS_H
#define CINDER_API_HANDLERS_H

#include <stddef.h>

#include "api/router.h"

/*
 * Health: GET /v1/ping and GET /healthz, no authentication. Answers
 * {"ok":true,"version":...,"uptime_s":...,"http":{...}} plus the fields
 * of the http_set_status_cb() hook; 503 with the same shape when the hook
 * sets "ok" to false. The handler arg must be the struct http; http_new()
 * registers these rows itself.
 */
extern const struct route h_health_routes[];
extern const size_t h_health_nroutes;

/**
 * The health handler (exported for tests and for other aliases).
 * @param arg the struct http *
 * @return 0 (it always answers)
 */
int h_health_get(struct http_request *req, void *arg);

#endif
