/* SPDX-License-Identifier: MIT */
/*
 * What the device route files share (h_devices.c: the handlers; devcall.c:
 * a request sent to the device and its answer; devrow.c: the row cache
 * for function calls and variable reads): the columns of a device query,
 * the device request, the kept row. Internal to these files: nothing
 * else includes this.
 */
#ifndef CINDER_API_H_DEVICES_INT_H
#define CINDER_API_H_DEVICES_INT_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "api/rest_int.h"
#include "registry.h"

struct store_result;

#define TS(col)                                                                \
	"to_char(" col " AT TIME ZONE 'UTC', "                                 \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The columns every device query selects, in this order. */
#define DEV_COLS                                                               \
	"d.device_id, d.name, d.last_ip_address, " TS("d.last_heard") ", " TS( \
		"d.last_handshake_at") ", "                                    \
				       "COALESCE(d.product_id, "               \
				       "NULLIF(d.hello_product_id, 65535), "   \
				       "d.platform_id), d.online, "            \
				       "d.platform_id, d.notes, "              \
				       "d.system_version, d.functions::text, " \
				       "d.variables::text, "                   \
				       "d.last_describe::text, "               \
				       "d.firmware_updates_enabled, "          \
				       "d.firmware_updates_forced, "           \
				       "d.owner_id "
enum {
	C_ID,
	C_NAME,
	C_IP,
	C_HEARD,
	C_HANDSHAKE,
	C_PRODUCT,
	C_ONLINE,
	C_PLATFORM,
	C_NOTES,
	C_SYSVER,
	C_FUNCTIONS,
	C_VARIABLES,
	C_DESCRIBE,
	C_FW_ENABLED,
	C_FW_FORCED,
	C_OWNER,
};

enum dev_op {
	OP_GET,
	OP_PING,
	OP_RENAME,
	OP_NOTES,
	OP_FORCED,
	OP_SIGNAL,
	OP_UNCLAIM,
	OP_VARIABLE,
	OP_FUNCTION,
};

/* One device request in flight. refs: the store/registry side and, once
 * a close hook is set, the HTTP side. */
struct dreq {
	struct rest *r;
	struct http *http;
	struct registry *reg;
	uint64_t id;	 /* HTTP request id */
	uint64_t reg_id; /* registry request id */
	enum dev_op op;
	int64_t uid;
	bool admin;
	bool raw;	    /* format=raw */
	char *key;	    /* :id as given (id or name) */
	char *name;	    /* variable/function name, new name */
	char *arg;	    /* function argument, notes, signal "1"/"0" */
	char device_id[25]; /* resolved id */
	char vtype[8];	    /* variable type */
	char core[192];	    /* coreInfo of variable answers, as JSON text */
	int refs;
	bool reg_done;
	bool refreshing; /* a describe refresh is in flight for it */
};

/*
 * Function calls and variable reads need only a little of the device row
 * (id, function and variable lists, product), and a busy client asks
 * for the same devices over and over. A request by the id of a device
 * connected here whose owner the registry is sure of takes what it needs
 * from the registry alone (dreq_live); the others (by name, or while
 * the owner is not sure) read the row, which is kept under the query's
 * own key (caller, admin flag, :id), so a hit answers what the query
 * would have answered; whether the device is connected is always asked
 * of the registry, in the one lookup (registry_device_now()) that also
 * gives the describe's generation, the owner and coreInfo's times. The
 * lists are those of the describe the device's connection holds, and a
 * hit whose device connected anew or sent a describe that changed them
 * since is a miss. A row of a connected device then serves calls and
 * reads for DEVROW_LIVE_MS (a safety net: what it holds changes only
 * with a describe, a new connection, or an API change on this node,
 * which empties the cache; a non-admin hit also checks the registry's
 * owner). coreInfo's last_heard (the last bytes from the device) and
 * last_handshake_at (its session's start) come from the registry, as
 * fresh as they can be; its product_id from PostgreSQL, read on a miss.
 * A row of an offline device lives DEVROW_TTL_MS. Every
 * DEVROW_SWEEP_MS while the cache has rows, a sweep frees those no
 * request can use (expired, or kept for a connection that has ended or
 * re-described), so the cache holds about the rows in use rather than
 * one per device ever asked for (the soak's slow [heap] ramp); a key
 * longer than HMAP_KEY_MAX (a long name) is not kept. perf: the
 * PostgreSQL round trip was a third of a call's latency, and with 10,000
 * devices called in turn (B4) a 2 s row nearly always missed. The lists
 * are packed into the row's own allocation (devrow_new()): with 10,000
 * devices in turn every hit is a cache miss, and the jansson lists cost
 * a few more per request (the array or object, its table, the strings).
 * memory: the row (~70 bytes), its lists' names and types, and its key
 * (~100 bytes in the map) a row, at most DEVROW_MAX rows.
 */
#define DEVROW_TTL_MS 2000
#define DEVROW_LIVE_MS (10 * 60 * 1000)
#define DEVROW_MAX 16384
#define DEVROW_SWEEP_MS 10000

struct devrow {
	char device_id[25];
	bool has_product;    /* product is coreInfo's product_id, else null */
	int64_t product;     /* from PostgreSQL */
	uint64_t expires_ms; /* wall clock */
	uint64_t gen;	     /* registry_device_now()'s, 0: offline when kept */
	size_t vars_at;	     /* where the variables start in lists */
	/* lists from the describe: each function's name, then each
	   variable's name and type, NUL-terminated strings, each list ended
	   by an empty string (names are never empty: a request's is not,
	   and an empty one would only never match) */
	char lists[];
};

/* Whether a string of n bytes is one C string (no NUL in it). */
static inline bool
cstr_whole(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL;
}

/* A JSON string as a list name: not empty, one C string. */
static inline bool
name_ok(const char *s, size_t n)
{
	return n > 0 && cstr_whole(s, n);
}

/* Whether a function list's entry v goes into a row. */
static inline bool
fn_kept(const json_t *v)
{
	return json_is_string(v) &&
	       name_ok(json_string_value(v), json_string_length(v));
}

/* Whether a variable list's entry (name k of kl bytes, type v) goes into
   a row. */
static inline bool
var_kept(const char *k, size_t kl, const json_t *v)
{
	return json_is_string(v) && name_ok(k, kl) &&
	       cstr_whole(json_string_value(v), json_string_length(v));
}

static inline int
dev_fail(struct dreq *d, int status, const char *desc)
{
	return rest_fail(d->http, d->id, status, desc);
}

static inline bool
device_id_ok(const char *s, char out[25])
{
	size_t i;

	if (s == NULL || strlen(s) != 24)
		return false;
	for (i = 0; i < 24; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[24] = '\0';
	return true;
}

/* h_devices.c */

/** Drop a reference to d; the last frees it. NULL-safe. */
void dreq_unref(struct dreq *d);

/* devcall.c */

/** Send the request to the device if it is online, else 404. */
void dreq_send(struct dreq *d, enum session_req_kind kind, const char *name,
	       const char *arg);

/** Set d->core, a variable answer's coreInfo (see devcall.c). */
void dreq_core_text(struct dreq *d, bool has_product, int64_t product,
		    const struct registry_device_now *now);

/**
 * Send a function call or variable read to the online device; consumes
 * d's ref (see devcall.c).
 */
void dreq_app_send(struct dreq *d, bool found, const char *vtype);

/**
 * A function call or variable read on a known row; consumes d's ref.
 * now: what the registry holds of the device, NULL if it is offline.
 */
void dreq_app_request(struct dreq *d, const struct devrow *e,
		      const struct registry_device_now *now);

/**
 * A function call's or variable read's row from the registry alone
 * (see devcall.c). @return false (d untouched) if it cannot answer.
 */
bool dreq_live(struct dreq *d, struct registry_device_now *now, bool *found,
	       const char **vtype);

/* devrow.c */

/** Whether the row's functions include name. */
bool devrow_fn(const struct devrow *e, const char *name);

/** The type of the row's variable name, or NULL. */
const char *devrow_var(const struct devrow *e, const char *name);

void devrow_free(struct devrow *e);

/**
 * A device row changed through this node's API: forget every kept row
 * here and tell the other nodes (a NOTIFY on REST_DEVICES_CHANNEL).
 */
void devrow_changed(struct rest *r, const char *device_id, const char *what);

/** The row kept for d's key if a request may use it (see devrow.c). */
struct devrow *devrow_get(struct rest *r, const struct dreq *d,
			  struct registry_device_now *now, bool *online);

/** Keep what row_app found for d's key; takes fns and vars. */
struct devrow *devrow_put(struct rest *r, const struct dreq *d,
			  const struct store_result *res, json_t *fns,
			  json_t *vars, bool *kept);

/**
 * For an online device, the lists of the describe its connection holds
 * replace the row's *fns and *vars.
 */
void devrow_live_lists(const struct registry_device_now *now, json_t **fns,
		       json_t **vars);

#endif
