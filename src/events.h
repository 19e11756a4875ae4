/* SPDX-License-Identifier: MIT */
/*
 * The events glue: device publishes (registry hook) are policed (size,
 * rate, reserved names) and put on the bus; device subscriptions
 * (registry hook) become bus subscriptions that forward matching events
 * to the device; presence becomes spark/status; the device-requested
 * helper spark/device/name is answered; the SSE and publish routes are
 * registered on the HTTP server. Loop thread only. See docs/events.md.
 */
#ifndef CINDER_EVENTS_H
#define CINDER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/router.h"

struct event_base;
struct conf;
struct http;
struct store;
struct store_result;
struct registry;
struct bus;
struct sse;
struct events;

/** What the events module needs from the daemon; all borrowed. */
struct events_deps {
	struct event_base *base;
	const struct conf *cfg;
	struct http *http;
	struct store *store;
	struct registry *reg;
};

/** Device-side limits (protocol.md §3.8). */
#define EVENTS_NAME_MAX 64	   /* longest event name */
#define EVENTS_DEVICE_DATA_MAX 622 /* longest data from a device */
#define EVENTS_API_DATA_MAX 1024   /* longest data from the API */
#define EVENTS_MAX_DEVICE_SUBS 16  /* subscriptions per device connection */

/** Counters (events_stats_get()). */
struct events_stats {
	uint64_t device_events;	  /* accepted from devices */
	uint64_t dropped_rate;	  /* over the publish rate limit */
	uint64_t dropped_size;	  /* name or data too long */
	uint64_t dropped_invalid; /* empty name or control characters */
	uint64_t api_events;	  /* published through the API */
	uint64_t sent_to_devices; /* deliveries to subscribed devices */
	uint64_t device_subs;	  /* live device subscriptions */
};

/**
 * Create the events module: sets the registry's event, presence and
 * subscription hooks and registers the SSE and publish routes.
 * @param deps copied; the pointers in it are borrowed and must outlive it
 * @param out receives the module (free with events_free())
 * @return 0 or CINDER_ERR_INVAL (routes could not be added)
 */
int events_new(const struct events_deps *deps, struct events **out);

/**
 * Clear the registry hooks, end every stream, cancel pending lookups and
 * free the module. NULL-safe. Call before freeing the registry, the HTTP
 * server and the store.
 */
void events_free(struct events *ev);

/** @return the bus (borrowed): the healer and webhooks subscribe here */
struct bus *events_bus(struct events *ev);

/** @return the SSE stream manager (borrowed) */
struct sse *events_sse(struct events *ev);

/** @return the store given in the deps (borrowed) */
struct store *events_store(struct events *ev);

/** @return the HTTP server given in the deps (borrowed) */
struct http *events_http(struct events *ev);

/**
 * A read query owned by the events module (used by its handlers): if the
 * module is freed first, the query is cancelled and arg is free()d
 * without cb running.
 * @param arg one malloc'd block (or NULL), owned by cb once it runs
 * @return 0 or store_query()'s error (cb not run, arg not freed)
 */
int events_query(struct events *ev, const char *sql, int nparams,
		 const char *const *params,
		 void (*cb)(int r, const struct store_result *res, void *arg),
		 void *arg);

/** The device-info read's SQL (for its plan check in the unit tests). */
const char *events_devinfo_statement(void);

/** Fill *out with the counters. */
void events_stats_get(const struct events *ev, struct events_stats *out);

/**
 * Add an "events" object (bus, device event and stream counters) to the
 * health object of GET /v1/ping (for the daemon's status hook).
 * @param obj borrowed
 */
void events_status_fill(const struct events *ev, json_t *obj);

/**
 * Publish an event on behalf of an API caller (coreid "api").
 * @param name 1..EVENTS_NAME_MAX bytes, no control characters
 * @param data may be NULL when len is 0; at most EVENTS_API_DATA_MAX
 * @param ttl seconds; 0 means 60
 * @return 0, CINDER_ERR_INVAL (bad name) or CINDER_ERR_TOO_BIG
 */
int events_publish_api(struct events *ev, int64_t user_id, const char *name,
		       const uint8_t *data, size_t len, uint32_t ttl,
		       bool is_private, uint32_t product_id);

/**
 * Publish a cloud-generated event (coreid "particle-internal", or the
 * device's id when device_id is given), e.g. for the healer or webhooks.
 * @param flags BUS_EV_* (BUS_EV_HIDDEN: internal subscribers only)
 * @return as events_publish_api()
 */
int events_publish_internal(struct events *ev, const char *device_id,
			    int64_t owner_id, const char *name,
			    const uint8_t *data, size_t len, uint32_t ttl,
			    bool is_private, unsigned flags);

/**
 * @return true if name is a valid event name or prefix: at most
 *         EVENTS_NAME_MAX bytes, no control characters (empty allowed
 *         only when allow_empty)
 */
bool events_name_valid(const char *name, bool allow_empty);

/**
 * @return true if a device-published reserved event (spark*, particle*)
 *         is forwarded to streams (cloud-api.md §2.6 whitelist)
 */
bool events_system_forwarded(const char *name);

/**
 * The registry's device-event hook (exported for unit tests): checks the
 * name and size, applies the device's rate limit and the reserved-name
 * policy, answers spark/device/name, and publishes on the bus.
 * @param arg the struct events
 * @return 0, or CINDER_ERR_BUSY when the rate limit dropped the event
 */
int events_on_device_event(const char *device_id, int64_t owner_id,
			   const char *name, const uint8_t *data,
			   size_t data_len, uint32_t ttl, bool is_private,
			   void *arg);

struct registry_presence;

/* The cloud's forced-update signal to a device (protocol.md §5.3). */
#define EVENTS_UPDATES_FORCED "particle/device/updates/forced"

/**
 * The device's firmware_updates_forced flag changed (REST): remember it
 * and, when the device is online and subscribed, send it
 * particle/device/updates/forced ("true"/"false"). At connect the flag
 * is read with the device's product and "true" is sent once the device
 * subscribed to "particle". NULL-safe.
 */
void events_updates_forced_set(struct events *ev, const char *device_id,
			       bool forced);

/** @return the device's forced-update flag as last read or set */
bool events_updates_forced(const struct events *ev, const char *device_id);

/**
 * The registry's presence hook (exported for unit tests): spark/status
 * online/offline, with an offline first when one was missed.
 * @param arg the struct events
 */
void events_on_presence(const struct registry_presence *p, void *arg);

/* The SSE and publish routes (src/api/h_events.c); arg = struct events. */
extern const struct route h_events_routes[];
extern const size_t h_events_nroutes;

#endif
