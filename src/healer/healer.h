/* SPDX-License-Identifier: MIT */
/*
 * The healer's loop-side glue (docs/healer.md).
 *
 * Flashes: user-requested flashes (PUT /v1/devices/:id with a file,
 * src/api/h_flash.c) go through healer_flash(), which starts the
 * transfer and publishes spark/flash/status (started, success, failed).
 *
 * Safe-mode healing: every Describe (registry describe hook) with unmet
 * dependencies starts or continues a heal of that device: the platform's
 * catalogue (cached; healer_catalogue_changed() after an import) goes
 * through the planner (planner.h), and ONE module is sent per
 * connection; the device reboots and its next Describe drives the next
 * step. Events spark/status/safe-mode (the Describe) and
 * spark/safe-mode-updater/updating (the module index); a catalogue
 * without the needed part is reported once (log, event
 * spark/safe-mode-updater/missing, history). Failed sends are retried
 * healer_retries times per (device, module) with a doubling back-off
 * from healer_backoff seconds; at most healer_max_concurrent devices
 * heal at once, the others wait their turn. Each heal ends with a
 * healer_history row (versions before and after, parts sent, outcome,
 * duration) and a log line. Also publishes spark/device/app-hash when a
 * device's application hash changes between two Describes.
 * Loop thread only.
 */
#ifndef CINDER_HEALER_HEALER_H
#define CINDER_HEALER_HEALER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct conf;
struct store;
struct registry;
struct events;
struct ota_image;
struct ota_cache;
struct healer;

/** What the healer needs from the daemon; all borrowed. */
struct healer_deps {
	struct event_base *base;
	const struct conf *cfg;
	struct store *store;
	struct registry *reg;
	struct events *events;
};

/**
 * Create the healer.
 * @param deps copied; the pointers must outlive the healer
 * @return 0
 */
int healer_new(const struct healer_deps *deps, struct healer **out);

/**
 * Free the healer. Transfers still running go on; their reports no
 * longer publish anything. NULL-safe. Call before events_free()
 * and store_free() (it cancels its application-hash statements).
 */
void healer_free(struct healer *h);

/**
 * Flash an image to an online device and publish spark/flash/status
 * (started when the device accepted UpdateBegin, then success or
 * failed) as a private event of owner_id.
 * @param img shared; the transfer takes its own reference
 * @return as registry_flash(): 0, CINDER_ERR_NOTFOUND (offline),
 *	CINDER_ERR_BUSY (a flash already runs), CINDER_ERR_TOO_BIG
 */
int healer_flash(struct healer *h, const char *device_id, int64_t owner_id,
		 struct ota_image *img);

/**
 * The image cache (otacache.h) shared by flashes and heals: the flash
 * API puts an uploaded binary there and passes the image to
 * healer_flash(), so every device receiving one binary shares one copy.
 * Bounded by the config key ota_image_cache_mb.
 */
struct ota_cache *healer_images(struct healer *h);

/** The platform's catalogue changed (an import): reload it when needed. */
void healer_catalogue_changed(struct healer *h);

/**
 * The heal in progress for a device, as JSON ({"state", "since",
 * "parts", "missing", ...}), or NULL when there is none.
 * @return a new reference or NULL
 */
json_t *healer_state_json(const struct healer *h, const char *device_id);

/**
 * The device's firmware_updates_forced flag changed (REST): tell the
 * device (events_updates_forced_set()) and, when forced, resume a heal
 * the device refused (5.03, updates disabled). NULL-safe.
 */
void healer_updates_forced(struct healer *h, const char *device_id,
			   bool forced);

/** Devices healing now (not counting those waiting). */
unsigned healer_active(const struct healer *h);

/**
 * Add "healer": {"active", "peak", "waiting", "max_concurrent"} to a
 * status object (GET /v1/ping): heals running now, the most that ever
 * ran at once, heals waiting for a slot, and the cap; and "ota":
 * {"transfers", "images", "image_bytes", "image_bytes_max"}: transfers
 * running (flashes and heals), the images in memory and their bytes
 * (one copy per binary being sent), the bound.
 */
void healer_status_fill(struct healer *h, json_t *obj);

#endif
