/* SPDX-License-Identifier: MIT */
/*
 * The application hash of each device (the user module's "u" in its
 * Describe), to publish spark/device/app-hash when it changes, as
 * Particle's cloud does. The last hash seen is kept in memory for
 * devices cinderd knows and in devices.app_hash (sql/0006_app_hash.sql)
 * for the others: a device seen for the first time since the start, or
 * back after device_cache_linger_s, is compared with the stored hash by a
 * statement that also stores the new one, so a change survives a
 * restart and the linger; such compares gather for a few ms and go out
 * together as one statement. A device's first Describe ever publishes
 * nothing. Loop thread only.
 */
#ifndef CINDER_HEALER_APPHASH_H
#define CINDER_HEALER_APPHASH_H

#include <stddef.h>
#include <stdint.h>

struct apphash;
struct event_base;
struct store;

/** Publish spark/device/app-hash with hash as data (owner_id's event). */
typedef void (*apphash_publish_cb)(const char *device_id, int64_t owner_id,
				   const char *hash, void *arg);

/**
 * @param base the loop, for the batch timer; NULL: each compare is sent
 *     at once, as a batch of one
 * @param st the store for devices.app_hash, or NULL (memory only);
 *     borrowed, must outlive the apphash
 * @param publish called for each change, with arg
 */
struct apphash *apphash_new(struct event_base *base, struct store *st,
			    apphash_publish_cb publish, void *arg);

/**
 * Send the compares and stores gathered so far now, rather than when
 * the batch timer fires (a few ms) or the batch is full.
 */
void apphash_flush(struct apphash *a);

/** Free; a batch not sent is dropped (those devices are compared again
    on their next Describe after a restart); statements still out are
    cancelled. NULL-safe. */
void apphash_free(struct apphash *a);

/**
 * A Describe of device_id showed hash (64 hex digits): publish
 * spark/device/app-hash as a private event of owner_id if it differs
 * from the last one, now (known device) or when the store answers.
 * An empty or malformed hash, or a device id over 24 characters, is
 * ignored.
 */
void apphash_check(struct apphash *a, const char *device_id, int64_t owner_id,
		   const char *hash);

/** Drop what memory holds for device_id (the store keeps its hash). */
void apphash_forget(struct apphash *a, const char *device_id);

/** @return how many devices memory holds a hash for */
size_t apphash_count(const struct apphash *a);

/** The batch's statement (its one parameter: the records' JSON array),
    for the test that reads its plan. */
const char *apphash_batch_statement(void);

#endif
