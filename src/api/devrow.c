/* SPDX-License-Identifier: MIT */
/*
 * The row cache of function calls and variable reads (see
 * h_devices_int.h): rows packed with their lists, their sweep timer, and
 * forgetting them on a change through the API or a NOTIFY from another
 * node (h_devices_notify()).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api/h_devices_int.h"
#include "hmap.h"
#include "registry.h"
#include "store.h"
#include "xmalloc.h"

/*
 * A row holding the function names of fns (a JSON array, NULL: none)
 * and the variables of vars (an object name -> type string, NULL:
 * none), as devrow_fn() and devrow_var() find them: what
 * json_array_get() and json_object_get() of the lists answered, bar
 * names with a NUL (no request can name them). Takes fns and vars.
 */
static struct devrow *
devrow_new(json_t *fns, json_t *vars)
{
	size_t n = 2, i, kl, at = 0;
	const char *k;
	json_t *v;
	struct devrow *e;

	for (i = 0; i < json_array_size(fns); i++) {
		v = json_array_get(fns, i);
		if (fn_kept(v))
			n += json_string_length(v) + 1;
	}
	json_object_keylen_foreach(vars, k, kl, v)
	{
		if (var_kept(k, kl, v))
			n += kl + json_string_length(v) + 2;
	}
	e = xcalloc(1, sizeof(*e) + n);
	for (i = 0; i < json_array_size(fns); i++) {
		v = json_array_get(fns, i);
		if (fn_kept(v)) {
			memcpy(e->lists + at, json_string_value(v),
			       json_string_length(v) + 1);
			at += json_string_length(v) + 1;
		}
	}
	e->vars_at = ++at; /* after the empty string (calloc's) */
	json_object_keylen_foreach(vars, k, kl, v)
	{
		if (var_kept(k, kl, v)) {
			memcpy(e->lists + at, k, kl + 1);
			at += kl + 1;
			memcpy(e->lists + at, json_string_value(v),
			       json_string_length(v) + 1);
			at += json_string_length(v) + 1;
		}
	}
	json_decref(fns);
	json_decref(vars);
	return e;
}

/* Whether the row's functions include name. */
bool
devrow_fn(const struct devrow *e, const char *name)
{
	const char *p;

	for (p = e->lists; *p != '\0'; p += strlen(p) + 1)
		if (strcmp(p, name) == 0)
			return true;
	return false;
}

/* The type of the row's variable name, or NULL. */
const char *
devrow_var(const struct devrow *e, const char *name)
{
	const char *p = e->lists + e->vars_at;

	for (; *p != '\0'; p += strlen(p) + 1) {
		const char *type = p + strlen(p) + 1;

		if (strcmp(p, name) == 0)
			return type;
		p = type;
	}
	return NULL;
}

void
devrow_free(struct devrow *e)
{
	free(e);
}

static int
devrow_free_cb(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	devrow_free(value);
	return 0;
}

static void
devrow_clear(struct rest *r)
{
	if (r->devrow_sweep != NULL) {
		event_free(r->devrow_sweep);
		r->devrow_sweep = NULL;
	}
	if (r->devrows == NULL)
		return;
	hmap_foreach(r->devrows, devrow_free_cb, NULL);
	hmap_free(r->devrows);
	r->devrows = NULL;
}

struct sweep {
	const struct rest *r;
	uint64_t now;
};

/* Whether no request can use e any more (then freed): it expired, or the
   connection it was kept for has ended or holds another describe. */
static bool
devrow_stale_cb(const void *key, size_t len, void *value, void *arg)
{
	const struct sweep *s = arg;
	struct devrow *e = value;
	const char *f, *v;
	uint64_t gen;

	(void)key;
	(void)len;
	if (e->expires_ms > s->now &&
	    (e->gen == 0 ||
	     (registry_describe_now(s->r->reg, e->device_id, &gen, &f, &v) &&
	      gen == e->gen)))
		return false;
	devrow_free(e);
	return true;
}

static void
devrow_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rest *r = arg;
	struct sweep s = {r, rest_now_ms()};

	(void)fd;
	(void)what;
	if (r->devrows == NULL)
		return;
	r->devrows_swept += hmap_remove_if(r->devrows, devrow_stale_cb, &s);
	if (hmap_count(r->devrows) == 0)
		devrow_clear(r); /* the timer too, until the next row */
}

/*
 * A device row changed through this node's API: forget every kept row
 * here, and tell the other nodes sharing the database to do the same
 * and to read again what their registry keeps of the device
 * (h_devices_notify(), a NOTIFY on REST_DEVICES_CHANNEL, payload "<device
 * id> <what>", what one of REST_DEVICES_WHAT; it comes back here too,
 * harmlessly: the registry reads the row it has just changed). Sent
 * after the change committed, so that a node reading the row on it sees
 * the change (or a later one).
 */
void
devrow_changed(struct rest *r, const char *device_id, const char *what)
{
	char payload[24 + 16];
	const char *params[1] = {payload};

	devrow_clear(r);
	snprintf(payload, sizeof(payload), "%s %s", device_id, what);
	store_query(r->store, STORE_Q_WRITE,
		    "SELECT pg_notify('" REST_DEVICES_CHANNEL "', $1)", 1,
		    params, NULL, NULL, NULL);
}

void
h_devices_notify(struct rest *r, const char *payload)
{
	char id[24 + 1];
	const char *what;
	size_t n;

	/* any change may rename or move any row: forget them all */
	devrow_clear(r);
	if (payload == NULL) { /* reconnected: some may have been lost */
		registry_row_refresh(r->reg, NULL);
		return;
	}
	n = strcspn(payload, " ");
	if (n != 24) { /* "*" or unknown: every device */
		registry_row_refresh(r->reg, NULL);
		return;
	}
	memcpy(id, payload, n);
	id[n] = '\0';
	what = payload[n] == ' ' ? payload + n + 1 : "";
	/* a name or notes: nothing the registry keeps */
	if (strcmp(what, "name") == 0 || strcmp(what, "notes") == 0)
		return;
	if (strcmp(what, "key") == 0)
		registry_forget_key(r->reg, id);
	registry_row_refresh(r->reg, id);
}

size_t
h_devices_cache_count(const struct rest *r)
{
	return r->devrows != NULL ? hmap_count(r->devrows) : 0;
}

void
h_devices_cache_free(struct rest *r)
{
	if (r != NULL)
		devrow_clear(r);
}

static size_t
devrow_key(const struct dreq *d, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%lld/%d/%s", (long long)d->uid,
			 d->admin ? 1 : 0, d->key);

	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/*
 * The row kept for d's key if a request may use it: not expired and, if
 * the device is online (*now filled, *online set), kept for the
 * describe its connection holds and, unless d is an admin's, still
 * owned by the caller. An offline device is answered "not connected"
 * whatever the row says; it comes back on a new connection, another gen.
 */
struct devrow *
devrow_get(struct rest *r, const struct dreq *d,
	   struct registry_device_now *now, bool *online)
{
	char key[128];
	size_t len = devrow_key(d, key, sizeof(key));
	struct devrow *e;

	if (len == 0 || len > HMAP_KEY_MAX || r->devrows == NULL ||
	    (e = hmap_get(r->devrows, key, len)) == NULL)
		return NULL;
	*online = registry_device_now(r->reg, e->device_id, now);
	if (e->expires_ms > rest_now_ms() &&
	    (!*online ||
	     (now->gen == e->gen && (d->admin || now->owner_id == d->uid))))
		return e;
	devrow_free(hmap_remove(r->devrows, key, len));
	return NULL;
}

/*
 * Keep e under key in place of any row there: the map and its sweep
 * timer made for the first row, every row forgotten when the map is
 * full. @return false if it could not be kept (the caller frees e)
 */
static bool
devrow_keep(struct rest *r, const char *key, size_t len, struct devrow *e)
{
	struct timeval tv = {DEVROW_SWEEP_MS / 1000,
			     DEVROW_SWEEP_MS % 1000 * 1000};

	if (r->devrows != NULL && hmap_count(r->devrows) >= DEVROW_MAX)
		devrow_clear(r);
	if (r->devrows == NULL) {
		r->devrows = hmap_new();
		if (r->base != NULL &&
		    (r->devrow_sweep = event_new(r->base, -1, EV_PERSIST,
						 devrow_sweep_cb, r)) != NULL)
			event_add(r->devrow_sweep, &tv);
	}
	devrow_free(hmap_remove(r->devrows, key, len));
	return hmap_put(r->devrows, key, len, e, NULL) == 0;
}

/* Keep what row_app found for d's key; takes fns and vars. */
struct devrow *
devrow_put(struct rest *r, const struct dreq *d, const struct store_result *res,
	   json_t *fns, json_t *vars, bool *kept)
{
	struct devrow *e = devrow_new(fns, vars);
	char key[128];
	size_t len = devrow_key(d, key, sizeof(key));
	const char *p;

	snprintf(e->device_id, sizeof(e->device_id), "%s", d->device_id);
	p = store_result_value(res, 0, C_PRODUCT);
	e->has_product = p != NULL;
	e->product = p != NULL ? strtoll(p, NULL, 10) : 0;
	e->expires_ms = rest_now_ms() + DEVROW_TTL_MS;
	*kept = false; /* then the caller frees it */
	if (len == 0 || len > HMAP_KEY_MAX)
		return e; /* a long name: not kept */
	*kept = devrow_keep(r, key, len, e);
	return e;
}

/*
 * For an online device, the lists of the describe its connection holds
 * replace the row's: PostgreSQL gets a describe in the presence batch a
 * little later, and a row read in between would cache the old lists.
 */
void
devrow_live_lists(const struct registry_device_now *now, json_t **fns,
		  json_t **vars)
{
	const char *f = now->functions, *v = now->variables;
	json_t *j;

	if (f != NULL && (j = json_loads(f, 0, NULL)) != NULL) {
		if (json_is_array(j)) {
			json_decref(*fns);
			*fns = j;
		} else {
			json_decref(j);
		}
	}
	if (v != NULL && (j = json_loads(v, 0, NULL)) != NULL) {
		if (json_is_object(j)) {
			json_decref(*vars);
			*vars = j;
		} else {
			json_decref(j);
		}
	}
}
