/* SPDX-License-Identifier: MIT */
/*
 * The healer's loop-side glue (docs/healer.md). Today: user-requested
 * flashes (PUT /v1/devices/:id with a file, src/api/h_flash.c) go through
 * healer_flash(), which starts the transfer on the device's session and
 * publishes spark/flash/status (started, success, failed) to the owner.
 * Loop thread only.
 */
#ifndef CINDER_HEALER_HEALER_H
#define CINDER_HEALER_HEALER_H

#include <stdint.h>

struct event_base;
struct conf;
struct store;
struct registry;
struct events;
struct ota_image;
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
 * longer publish anything. NULL-safe. Call before events_free().
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

#endif
