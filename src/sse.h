/* SPDX-License-Identifier: MIT */
/*
 * Server-Sent Event streams (cloud-api.md §2): each open stream is a bus
 * subscriber with a visibility filter. An event is formatted into an SSE
 * frame once and the same refcounted bytes are queued on every stream
 * that shows it. Streams get the ":ok" preamble, a keep-alive line after
 * keepalive_ms without a write, a bounded queue (a stream that falls
 * behind is ended with one log line) and a per-client-IP limit.
 * Loop thread only. See docs/events.md and docs/internals/bus.md.
 */
#ifndef CINDER_SSE_H
#define CINDER_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http;
struct http_request;
struct bus;
struct bus_event;
struct sse;

/** Which events a stream shows (cloud-api.md §2.6). */
enum sse_scope {
	SSE_SCOPE_ALL = 0, /* /v1/events/:prefix: public events of anyone
			      plus the caller's private ones */
	SSE_SCOPE_MINE,	   /* /v1/devices/events: the caller's events
			      (their devices and their API publishes) */
	SSE_SCOPE_DEVICE,  /* /v1/devices/:id/events: one device; private
			      ones only to the event's owner or with
			      see_private */
	SSE_SCOPE_PRODUCT, /* /v1/products/:p/events: every event of the
			      product's devices (access checked at open) */
};

/** A stream's visibility filter. */
struct sse_filter {
	enum sse_scope scope;
	int64_t user_id;     /* the caller (users.id) */
	bool see_private;    /* DEVICE: caller is an admin (the owner sees
				private events as the owner of each one,
				so that an unclaim ends it at once) */
	char device_id[25];  /* DEVICE: lowercase id */
	uint32_t product_id; /* PRODUCT: the product */
};

/** Tunables; zero fields take the defaults shown. */
struct sse_opts {
	unsigned keepalive_ms; /* write "\n" after this much silence; 9000 */
	unsigned max_per_ip;   /* simultaneous streams per client IP; 100 */
	size_t max_buffered;   /* bytes queued per stream before it is cut
				  off; 0 = the HTTP layer's limit */
};

/** Counters (sse_stats_get()). */
struct sse_stats {
	size_t streams;	     /* open now */
	uint64_t opened;     /* since start */
	uint64_t refused_ip; /* refused by the per-IP limit */
	uint64_t cut_slow;   /* ended because they fell behind */
	uint64_t frames;     /* frames formatted (once per event/format) */
	uint64_t writes;     /* frames queued on streams */
	uint64_t keepalives; /* keep-alive lines written */
};

/**
 * Visibility: may a stream with filter f show ev? Pure. Hidden events
 * (BUS_EV_HIDDEN) are never shown; a private event only reaches streams
 * of its owner (and device streams with see_private).
 */
bool sse_visible(const struct sse_filter *f, const struct bus_event *ev);

/**
 * Format one SSE frame:
 *   event: <name>\ndata: {"data":...,"ttl":N,"published_at":"...Z",
 *   "coreid":"..."}\n\n
 * data is a JSON string (invalid UTF-8 replaced by U+FFFD) or null when
 * empty. With product, "userid", "public" and "productID" follow.
 * @param out set to a new NUL-terminated buffer (caller frees)
 * @return the frame length
 */
size_t sse_format_frame(const struct bus_event *ev, bool product, char **out);

/**
 * Format ms (Unix milliseconds) as "2026-11-25T01:02:03.456Z".
 * @param buf at least 25 bytes
 */
void sse_format_time(uint64_t ms, char buf[25]);

/**
 * Create the stream manager.
 * @param base, h, b borrowed; must outlive it
 * @param opts copied; NULL for defaults
 * @return the manager (free with sse_free())
 */
struct sse *sse_new(struct event_base *base, struct http *h, struct bus *b,
		    const struct sse_opts *opts);

/** End every stream and free the manager. NULL-safe. */
void sse_free(struct sse *s);

/**
 * Start an SSE stream as the answer of req (inside its handler, or on a
 * suspended request looked up again): headers (Content-Type
 * text/event-stream, Cache-Control no-cache, Connection keep-alive,
 * X-Accel-Buffering no), then ":ok\n\n", then matching events.
 * @param f copied
 * @param prefix event-name prefix ("" = all); copied
 * @return 0, CINDER_ERR_BUSY (per-IP limit: nothing sent, answer 429) or
 *         CINDER_ERR_INVAL (request already answered)
 */
int sse_open(struct sse *s, struct http_request *req,
	     const struct sse_filter *f, const char *prefix);

/** Fill *out with the counters. */
void sse_stats_get(const struct sse *s, struct sse_stats *out);

#endif
