/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the REST API files (rest.c, the h_*.c handlers,
 * devcall.c and devrow.c): the API object, password work on the crypto
 * pool, token lookup and issue, and small answer helpers. Not for other
 * modules.
 * Loop thread only.
 */
#ifndef CINDER_API_REST_INT_H
#define CINDER_API_REST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/auth.h"
#include "api/http.h"
#include "api/rest.h"

struct event;
struct ratelimit;

struct rest {
	struct event_base *base;
	const struct conf *cfg;
	struct http *http;
	struct store *store;
	struct registry *reg;
	struct cryptopool *pool;
	struct auth_cache *cache;
	struct ratelimit *rl;
	struct hmap *devrows;	    /* devrow.c: call/read row cache */
	struct event *devrow_sweep; /* its sweep timer, while it has rows */
	uint64_t devrows_swept;	    /* rows the sweep dropped */
	uint64_t devrows_registry;  /* calls and reads the registry
				       answered (dreq_live) */
	struct healer *healer;	    /* flashes (rest_set_healer()), or NULL */
	char *dummy_hash; /* a password hash to verify unknown users against */
	unsigned jobs;	  /* pool jobs not yet completed */
	bool dead;	  /* rest_free() ran while jobs were out */
};

/**
 * PUT /v1/devices/:id with a multipart file: flash it (h_flash.c);
 * h_device_put() dispatches here. arg = struct rest.
 */
int h_device_flash(struct http_request *req, void *arg);

/* GET /v1/devices/:id/healer (h_flash.c); arg = struct rest. */
extern const struct route h_flash_routes[];
extern const size_t h_flash_nroutes;

/** @return wall-clock milliseconds since the epoch */
uint64_t rest_now_ms(void);

/**
 * Password check done: client_r / user_r are 0 (match), CINDER_ERR_AUTH
 * (mismatch) or another error; cancelled jobs give CINDER_ERR_UNAVAILABLE.
 */
typedef void (*rest_check_cb)(struct rest *r, int client_r, int user_r,
			      void *arg);

/**
 * Verify up to two secrets on the crypto pool. A NULL client_hash means
 * "no client secret to check" (client_r = 0). A NULL user_hash verifies
 * against a dummy hash (same cost) and gives user_r = CINDER_ERR_AUTH.
 * All strings are copied.
 * @return 0 (cb will run) or CINDER_ERR_BUSY / UNAVAILABLE (it will not)
 */
int rest_check(struct rest *r, const char *client_secret,
	       const char *client_hash, const char *password,
	       const char *user_hash, rest_check_cb cb, void *arg);

/** Hash done: hash is a new string the callee may keep (else free) or NULL. */
typedef void (*rest_hash_cb)(struct rest *r, int err, char *hash, void *arg);

/** Hash a password on the pool. @return as rest_check() */
int rest_hash(struct rest *r, const char *password, rest_hash_cb cb, void *arg);

/** Token lookup done: u borrowed for the call, NULL when err != 0. */
typedef void (*rest_token_cb)(struct rest *r, int err,
			      const struct auth_user *u, void *arg);

/**
 * Find the user of an access token (cache, then database).
 * @return 0 (cb runs later or, for a cache hit, at once) or an error
 */
int rest_token_lookup(struct rest *r, const char *token, rest_token_cb cb,
		      void *arg);

/** Free devrow.c's row cache (rest_free). NULL-safe. */
void h_devices_cache_free(struct rest *r);

/*
 * NOTIFY channel of device-row changes made through the API (rename,
 * notes, forced updates, claim, unclaim, key provisioning) or the CLI:
 * every node sharing the database forgets its kept rows and reads again
 * the owner, product and forced flag of the device if it is connected
 * there. Payload "<device id> <what>" (at most 40 bytes), what one of
 * "name", "notes" (nothing else to read again), "forced", "owner",
 * "key" (key and owner); a bare device id or any other what reads the
 * row again (an operator's change, e.g. a product). A payload that does
 * not start with a device id ("*") reads every connected device's row.
 */
#define REST_DEVICES_CHANNEL "cinder_devices"

/**
 * A notification on REST_DEVICES_CHANNEL arrived (rest.c); payload NULL
 * after a database reconnect (some may have been lost).
 */
void h_devices_notify(struct rest *r, const char *payload);

/** @return the rows in devrow.c's row cache (the status hook) */
size_t h_devices_cache_count(const struct rest *r);

/** Answer the OAuth error shape {error, error_description}. */
int rest_oauth_error(struct http *h, uint64_t id, int status, const char *code,
		     const char *desc);

/** Answer {ok:false, error:desc} with status (by id; suspended requests). */
int rest_fail(struct http *h, uint64_t id, int status, const char *desc);

/** Answer an internal/database error by id, mapping err to a status. */
int rest_fail_err(struct http *h, uint64_t id, int err);

/**
 * A variable value as the device sent it, as JSON: "bool" (1 byte),
 * "int32" (4 bytes big-endian), "double" (8 bytes little-endian; NaN and
 * infinities become null), otherwise (or on a size mismatch) a string,
 * with '?' for bytes of text that is not UTF-8.
 * @param type the describe type name; p, n the bytes (borrowed)
 * @return a new reference, never NULL
 */
json_t *rest_variable_value(const char *type, const uint8_t *p, size_t n);

/**
 * @return true for a valid device name: 1-63 letters, digits, '_' or
 *         '-', and not 24 hex digits (which would read as a device id)
 */
bool rest_device_name_ok(const char *s);

/** Route tables of the files. */
extern const struct route h_oauth_routes[];
extern const size_t h_oauth_nroutes;
extern const struct route h_user_routes[];
extern const size_t h_user_nroutes;
extern const struct route h_devices_routes[];
extern const size_t h_devices_nroutes;
extern const struct route h_firmware_routes[];
extern const size_t h_firmware_nroutes;

#endif
