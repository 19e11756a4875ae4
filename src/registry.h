/* SPDX-License-Identifier: MIT */
/*
 * Device registry: accepts device connections, runs their handshakes
 * (RSA on the crypto pool), keeps the live sessions by device id, and
 * records presence in PostgreSQL (online/offline at once; last_heard
 * coalesced into one write per flush interval). It is the way the rest of
 * the daemon reaches a device: function calls, variable reads, signals and
 * events go through registry_* calls keyed by device id, and answers come
 * back through callbacks keyed by request id. Loop thread only.
 */
#ifndef CINDER_REGISTRY_H
#define CINDER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

struct event_base;
struct conf;
struct store;
struct cryptopool;
struct crypto_key;
struct describe;
struct registry;

#define REGISTRY_FORGET_HOOKS 4 /* registry_add_forget_cb() slots */

/** Counters for the health endpoint. */
struct registry_stats {
	uint64_t connections;	     /* TCP connections open now */
	uint64_t handshakes_active;  /* handshakes in progress now */
	uint64_t sessions_ready;     /* devices online now */
	uint64_t accepted;	     /* connections accepted since start */
	uint64_t handshakes_ok;	     /* completed handshakes */
	uint64_t handshakes_failed;  /* failed handshakes (any reason) */
	uint64_t unknown_devices;    /* refused: no key registered */
	uint64_t key_mismatches;     /* refused: key differs from stored */
	uint64_t keepalive_timeouts; /* sessions dropped for silence */
	uint64_t replaced;	     /* sessions replaced by a newer one */
	uint64_t bytes_in;	     /* bytes read from devices */
	uint64_t bytes_out;	     /* bytes written to devices */
	uint64_t key_cache;	     /* device keys cached now */
	uint64_t key_cache_hits;     /* handshakes that found theirs */
	uint64_t lingering;	     /* gone devices whose state is kept */
	uint64_t forgotten;	     /* gone devices whose state was dropped */
	uint64_t rows_read;	     /* device rows read again after a
					change (registry_row_refresh) */
	uint64_t accept_errors;	     /* accepts that failed for want of a
					descriptor or memory (the listener
					then pauses 100 ms at a time) */
};

/** What a presence change says (passed to the presence hook). */
struct registry_presence {
	const char *device_id;	/* 24 lowercase hex chars */
	int64_t owner_id;	/* owning user id, 0 = unowned */
	bool online;		/* true: session READY; false: it ended */
	const char *ip;		/* peer address */
	uint32_t hello_product; /* online: the Hello's product id, 0: none
				   (the database has it only a few ms later,
				   registry_pres.c) */
	/* online: the device row as the handshake's key lookup read it,
	   when it answers for this Hello (its product is the assigned one,
	   or the one its stored Hello names, and this Hello names the
	   same); else info_known is false and a reader asks the database */
	bool info_known;
	bool forced;	     /* firmware_updates_forced */
	uint32_t product_id; /* the device's product, 0: none */
};

/** Called when a device goes online or offline (e.g. spark/status). */
typedef void (*registry_presence_cb)(const struct registry_presence *p,
				     void *arg);

/**
 * Called for every event a device publishes (name NUL-terminated).
 * @param conn_state the connection's slot for the hook: NULL at its
 *	first event; what the hook stores there is handed back at the next
 *	ones (no lookup per event) and to the release hook when the
 *	connection goes (registry_set_event_cb)
 * @return 0, or CINDER_ERR_BUSY to answer a confirmable publish with the
 *	4.00 "slow down" reply (the event was dropped by a rate limit)
 */
typedef int (*registry_event_cb)(void **conn_state, const char *device_id,
				 int64_t owner_id, const char *name,
				 const uint8_t *data, size_t data_len,
				 uint32_t ttl, bool is_private, void *arg);

/** A connection with a non-NULL conn_state (see above) is freed. */
typedef void (*registry_event_release_cb)(void *conn_state, void *arg);

/**
 * Called when a device subscribes (after the session ACKed it).
 * @param conn_id the connection; subscriptions die with it (see below)
 * @param filter event-name prefix, NUL-terminated ("" = all)
 * @param scope enum pcoap_scope (ALL, MINE, DEVICE)
 * @param scope_device_id for PCOAP_SCOPE_DEVICE: 24 chars + NUL, else NULL
 */
typedef void (*registry_subscribe_cb)(uint64_t conn_id, const char *device_id,
				      int64_t owner_id, const char *filter,
				      int scope, const char *scope_device_id,
				      void *arg);

/**
 * Called when a connection that completed its handshake closes (whether
 * or not it reached READY): drop whatever is keyed by conn_id.
 */
typedef void (*registry_conn_closed_cb)(uint64_t conn_id, const char *device_id,
					void *arg);

/**
 * Called when a device has been gone (no connection) for
 * device_cache_linger_s: drop what is kept for it.
 * @return true when nothing of it is left, false to be asked again a
 *	linger later (state that cannot be rebuilt yet, e.g. a rate-limit
 *	bucket that is not full)
 */
typedef bool (*registry_forget_cb)(const char *device_id, void *arg);

/** Called when an API request to a device finishes. */
typedef void (*registry_done_cb)(uint64_t req_id,
				 const struct session_result *res, void *arg);

/**
 * Create the registry and bind the device listener (cfg->device_listen).
 * @param base, cfg, st, pool, server_key borrowed; must outlive it
 * @param out receives the registry; free with registry_free()
 * @return 0, CINDER_ERR_INVAL (bad address) or CINDER_ERR_IO (bind)
 */
int registry_new(struct event_base *base, const struct conf *cfg,
		 struct store *st, struct cryptopool *pool,
		 const struct crypto_key *server_key, struct registry **out);

/**
 * Close every connection (offline written for each online device) and
 * free the registry. NULL-safe.
 */
void registry_free(struct registry *reg);

/**
 * Close every device connection now (offline written for each online
 * device); the registry stays usable but accepts nothing new.
 */
void registry_close_all(struct registry *reg);

/** Stop accepting new device connections (shutdown, step one). */
void registry_stop_accepting(struct registry *reg);

/** @return the bound device port (useful with port 0) */
uint16_t registry_port(const struct registry *reg);

/** Set the presence hook (NULL to clear). */
void registry_set_presence_cb(struct registry *reg, registry_presence_cb cb,
			      void *arg);

/**
 * Set the device-event hook and the release of what it keeps per
 * connection (NULL to clear: every connection's conn_state is then
 * forgotten without a release).
 */
void registry_set_event_cb(struct registry *reg, registry_event_cb cb,
			   registry_event_release_cb release, void *arg);

/** Set the subscription hooks (NULL to clear). */
void registry_set_subscribe_cb(struct registry *reg, registry_subscribe_cb cb,
			       registry_conn_closed_cb closed, void *arg);

/**
 * Add a hook called when a gone device's state is dropped (at most
 * REGISTRY_FORGET_HOOKS). @return 0 or CINDER_ERR_BUSY (all taken)
 */
int registry_add_forget_cb(struct registry *reg, registry_forget_cb cb,
			   void *arg);

/** Remove a hook added with registry_add_forget_cb(). */
void registry_remove_forget_cb(struct registry *reg, registry_forget_cb cb,
			       void *arg);

/** Fill *out with the current counters. */
void registry_stats_get(const struct registry *reg, struct registry_stats *out);

/** @return true if the device has a READY session on this node */
bool registry_is_online(const struct registry *reg, const char *device_id);

/**
 * The describe an online device's connection holds now, for the API's
 * caches: *gen changes whenever the device connects anew or a describe
 * it sends changes what is kept; *functions and *variables are the kept
 * lists as JSON texts (as stored in PostgreSQL), NULL before the first
 * describe, valid until the next call into the registry.
 * @return false (nothing set) if the device is not online
 */
bool registry_describe_now(const struct registry *reg, const char *device_id,
			   uint64_t *gen, const char **functions,
			   const char **variables);

/** What the API's row cache asks of an online device (one lookup). */
struct registry_device_now {
	uint64_t gen;	       /* as registry_describe_now() */
	const char *functions; /* as registry_describe_now() */
	const char *variables; /* as registry_describe_now() */
	int64_t owner_id;      /* 0 = unowned */
	bool owner_sure;       /* owner_id is PostgreSQL's: read at the key
				  lookup or set by a claim here, and no
				  registry_row_refresh() read pending */
	uint64_t heard_ms;     /* wall clock (ms since the epoch) of the
				  last bytes from the device */
	uint64_t handshake_ms; /* wall clock of its session's start (the
				  Hello after the handshake) */
	bool product_sure;     /* product_id is what the device row's
				  COALESCE(product_id, NULLIF(hello_product_id,
				  65535), platform_id) reads once this
				  connection's presence is written, and the
				  assigned product is sure as owner_sure */
	int64_t product_id;    /* if product_sure */

	/* the describe parsed, or NULL: shared by the connections that
	   sent the same text (so mostly in cache), borrowed until the
	   loop runs again */
	const struct describe *describe;
};

/**
 * registry_describe_now(), registry_owner() and the times the device's
 * coreInfo gives (last_heard, last_handshake_at), in one lookup.
 * @return false (nothing set) if the device is not online
 */
bool registry_device_now(const struct registry *reg, const char *device_id,
			 struct registry_device_now *out);

/**
 * Send a request to an online device.
 * @param kind SESSION_REQ_FUNCTION (name, arg), SESSION_REQ_VARIABLE (name),
 *	SESSION_REQ_SIGNAL (arg "1" on, "0" off) or SESSION_REQ_DESCRIBE
 *	(refresh the device's describe; the JSON comes back in res->data
 *	and is also kept and stored. Concurrent refreshes share one
 *	request to the device, and a new one starts at most every 5 s:
 *	otherwise CINDER_ERR_BUSY. timeout_ms is ignored: 5 s.)
 * @param timeout_ms deadline
 * @param cb called exactly once with the result, later, on the loop
 *	(never from inside this call) — unless registry_request_cancel()
 * @param req_id receives the id the callback will carry
 * @return 0, CINDER_ERR_NOTFOUND (device not online here), or the
 *	session's CINDER_ERR_TOO_BIG / CINDER_ERR_BUSY
 */
int registry_request(struct registry *reg, const char *device_id,
		     enum session_req_kind kind, const char *name,
		     const char *arg, uint32_t timeout_ms, registry_done_cb cb,
		     void *cbarg, uint64_t *req_id);

/** Forget a request: its callback will not run. NULL-safe on unknown id. */
void registry_request_cancel(struct registry *reg, uint64_t req_id);

/**
 * Send an event to one online device (subscription delivery).
 * @return 0, CINDER_ERR_NOTFOUND or the session's error
 */
int registry_send_event(struct registry *reg, const char *device_id,
			const char *name, const uint8_t *data, size_t len,
			uint32_t ttl, bool is_private);

/**
 * Tell the registry a device's owner changed (claim, unclaim), so that
 * events of a live session carry the new owner. 0 = unowned.
 */
void registry_set_owner(struct registry *reg, const char *device_id,
			int64_t owner_id);

/** What a device row says now (registry_row_refresh()). */
struct registry_row {
	const char *device_id; /* 24 lowercase hex chars */
	int64_t owner_id;      /* 0 = unowned (or no row any more) */
	uint32_t product_id;   /* assigned, else the Hello's if it is a
				  product; 0: none */
	bool forced;	       /* firmware_updates_forced */
};

/** Called for an online device after its row was read again. */
typedef void (*registry_row_cb)(const struct registry_row *row, void *arg);

/** Set the device-row hook (NULL to clear). */
void registry_set_row_cb(struct registry *reg, registry_row_cb cb, void *arg);

/**
 * Called when the owner of a device's connection here changes: a claim
 * or unclaim through this node's API (registry_set_owner()), or a row
 * read again (registry_row_refresh()).
 * @param conn_id the connection (as the subscription hooks name it)
 * @param owner_id the new owner, 0 = unowned
 */
typedef void (*registry_owner_cb)(uint64_t conn_id, const char *device_id,
				  int64_t owner_id, void *arg);

/** Set the owner hook (NULL to clear). */
void registry_set_owner_cb(struct registry *reg, registry_owner_cb cb,
			   void *arg);

/**
 * A device row changed elsewhere (another node, the CLI, an operator's
 * SQL; a NOTIFY on cinder_devices) or notifications may have been lost
 * (a database reconnect): read again what the registry keeps of it.
 * The owner of the device's connection here changes when the read comes
 * back (events, calls and subscriptions follow it), and the row hook
 * gets the product and forced flag of an online device. Requests
 * gather: the next loop turn reads them in one query (at most
 * REGISTRY_ROW_READ_MAX devices a query, one query in flight). A device
 * not connected here has its cached key dropped (it kept the owner for
 * a handshake during an outage).
 * @param device_id the device (any case), or NULL: every device
 *	connected here
 */
void registry_row_refresh(struct registry *reg, const char *device_id);

#define REGISTRY_ROW_READ_MAX 4096

/** @return the owner of an online device, 0 if unowned, -1 if offline */
int64_t registry_owner(const struct registry *reg, const char *device_id);

/**
 * OTA limits an online device stated: its Device OS 3.0+ Hello, or the
 * spark/hardware/max_binary and ota_chunk_size events of older ones.
 * @param max_binary receives the largest image, 0 when not said
 * @param chunk_size receives the chunk size, 0 when not said
 * @return 0, or CINDER_ERR_NOTFOUND when the device is not online here
 */
int registry_ota_limits(const struct registry *reg, const char *device_id,
			uint32_t *max_binary, uint16_t *chunk_size);

/**
 * Drop the cached public key of a device (after its key changed).
 */
void registry_forget_key(struct registry *reg, const char *device_id);

/*
 * Firmware over the air (src/healer/ota.h). Additions by the OTA
 * engineer.
 */
struct ota_image;
struct ota_params;
struct ota_report;

/* Progress and the one final report (ev SUCCESS or FAILED) of a flash;
   r and its strings are borrowed for the call. */
typedef void (*registry_flash_cb)(uint64_t flash_id, const char *device_id,
				  const struct ota_report *r, void *arg);

/**
 * Send a firmware image to an online device (protocol.md §5). The image
 * is shared, not copied: the transfer holds a reference until it ends.
 * The transfer keeps at most a small output budget queued on the
 * device's socket and sends more as it drains. A disconnect fails it
 * (OTA_FAIL_DISCONNECTED); retrying is the caller's business.
 * @param p parameters (chunk size, max binary, fast, ...); NULL = the
 *	defaults with fast OTA offered. A chunk size or max binary of 0
 *	takes what the device announced (the extended Hello of 3.0+, or
 *	spark/hardware/ota_chunk_size and max_binary), then the defaults.
 * @param cb called for progress and exactly once with the result, maybe
 *	before this returns
 * @param flash_id out: the id passed to cb
 * @return 0, CINDER_ERR_NOTFOUND (not online), CINDER_ERR_BUSY (a flash
 *	is already running on it), CINDER_ERR_TOO_BIG (image over
 *	p->max_binary or too many chunks), CINDER_ERR_INVAL (empty image)
 */
int registry_flash(struct registry *reg, const char *device_id,
		   struct ota_image *img, const struct ota_params *p,
		   registry_flash_cb cb, void *arg, uint64_t *flash_id);

/*
 * Describe hook (the healer, src/healer/healer.h).
 */
struct describe;

/* Called after each Describe of a device was merged and parsed: d is
   the merged Describe and json its text; both borrowed for the call.
   Called from inside the session's input handling: start nothing on the
   session from here (defer it). */
typedef void (*registry_describe_cb)(const char *device_id, int64_t owner_id,
				     const struct describe *d, const char *json,
				     void *arg);

/** Set the describe hook (NULL to clear). */
void registry_set_describe_cb(struct registry *reg, registry_describe_cb cb,
			      void *arg);

#endif
