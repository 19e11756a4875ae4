/* SPDX-License-Identifier: MIT */
/*
 * What a connection keeps of its device row (owner, and for the events
 * module product and forced flag) is read at the handshake's key lookup.
 * A change made elsewhere (another node's API, the CLI, an operator)
 * arrives as a NOTIFY on cinder_devices (src/api/devrow.c), and a
 * database reconnect may have lost some: registry_row_refresh() reads
 * the rows again, gathered per loop turn into one query over unnest()
 * (at most REGISTRY_ROW_READ_MAX devices, one query in flight), and
 * applies them. A stale owner would route the device's private events
 * to its former owner (SSE, webhooks, device subscriptions). Loop thread
 * only.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "err.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "store.h"
#include "xmalloc.h"

/* The product for the Hello's product id only if it is a product, as
   the events module's read at connect (events.c devinfo_fetch). */
static const char row_sql[] =
	"SELECT v.id, d.owner_id, coalesce(d.product_id, p.id), "
	"coalesce(d.firmware_updates_forced, false), d.product_id, "
	"d.device_id IS NOT NULL "
	"FROM unnest($1::text[], $2::int[]) AS v(id, hello) "
	"LEFT JOIN devices d ON d.device_id = v.id "
	"LEFT JOIN products p ON p.id = v.hello";

/* Two array literals being built: ids and Hello products. */
struct row_batch {
	struct registry *reg;
	char *ids, *hellos; /* "{...}" */
	size_t ids_len, hellos_len, cap_ids, cap_hellos;
	size_t n;
};

static void
add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*cap - *len < n + 2) {
		*cap = (*cap + n + 2) * 2;
		*buf = xreallocarray(*buf, *cap, 1);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* Take up to REGISTRY_ROW_READ_MAX due devices still connected. */
static bool
take_due(const void *key, size_t len, void *value, void *arg)
{
	struct row_batch *b = arg;
	struct devconn *c = hmap_get(b->reg->devices, key, len);
	char hello[12];
	const struct session_hello *h;

	(void)value;
	if (b->n >= REGISTRY_ROW_READ_MAX)
		return false;
	if (c == NULL)
		return true; /* gone: its next handshake reads the row */
	add(&b->ids, &b->ids_len, &b->cap_ids, b->n ? "," : "{", 1);
	add(&b->ids, &b->ids_len, &b->cap_ids, c->idhex, DEVICE_ID_HEX);
	h = c->online ? registry_conn_hello(c) : NULL;
	if (h != NULL && h->product_id != 0xffff)
		snprintf(hello, sizeof(hello), "%u", (unsigned)h->product_id);
	else
		snprintf(hello, sizeof(hello), "NULL");
	add(&b->hellos, &b->hellos_len, &b->cap_hellos, b->n ? "," : "{", 1);
	add(&b->hellos, &b->hellos_len, &b->cap_hellos, hello, strlen(hello));
	b->n++;
	return true;
}

static int
put_all(const void *key, size_t len, void *value, void *arg)
{
	struct registry *reg = arg;

	(void)value;
	hmap_put(reg->row_due, key, len, reg, NULL);
	return 0;
}

static void row_read(evutil_socket_t fd, short what, void *arg);

static int
unsure(const void *key, size_t len, void *value, void *arg)
{
	struct devconn *c = value;

	(void)key;
	(void)len;
	(void)arg;
	c->owner_sure = false;
	return 0;
}

static void
apply(struct registry *reg, const struct store_result *res, int i)
{
	const char *id = store_result_value(res, i, 0);
	const char *v;
	struct devconn *c;
	struct key_entry *e;
	struct registry_row row;

	if (id == NULL || strlen(id) != DEVICE_ID_HEX ||
	    (c = hmap_get(reg->devices, id, DEVICE_ID_HEX)) == NULL)
		return;
	v = store_result_value(res, i, 1);
	row.device_id = c->idhex;
	row.owner_id = v != NULL ? strtoll(v, NULL, 10) : 0;
	v = store_result_value(res, i, 2);
	row.product_id = v != NULL ? (uint32_t)strtoul(v, NULL, 10) : 0;
	v = store_result_value(res, i, 3);
	row.forced = v != NULL && v[0] == 't';
	if (c->owner_id != row.owner_id) {
		log_ctx(LOG_LEVEL_INFO, c->logctx,
			"owner changed elsewhere: %lld -> %lld",
			(long long)c->owner_id, (long long)row.owner_id);
		c->owner_id = row.owner_id;
		if (reg->owner_cb != NULL)
			reg->owner_cb(c->id, c->idhex, row.owner_id,
				      reg->owner_arg);
	}
	/* sure unless a change came after this read left */
	c->owner_sure = !reg->row_all &&
			hmap_get(reg->row_due, id, DEVICE_ID_HEX) == NULL;
	v = store_result_value(res, i, 5);
	registry_row_product_set(c, v != NULL && v[0] == 't',
				 store_result_value(res, i, 4));
	reg->stats.rows_read++;
	if ((e = hmap_get(reg->keys, id, DEVICE_ID_HEX)) != NULL)
		e->owner_id = row.owner_id;
	if (!c->online) {
		/* not yet online: the presence hook asks the database */
		c->info_known = false;
		return;
	}
	if (reg->row_cb != NULL)
		reg->row_cb(&row, reg->row_arg);
}

static void
row_done(int r, const struct store_result *res, void *arg)
{
	struct registry *reg = arg;
	int i, n;

	reg->row_q = 0;
	if (r != 0) {
		/* the reconnect that follows an outage reads every row */
		log_info("could not read device rows again: %s", err_str(r));
	} else {
		n = store_result_ntuples(res);
		for (i = 0; i < n; i++)
			apply(reg, res, i);
	}
	if (reg->row_all || hmap_count(reg->row_due) > 0)
		event_active(reg->row_ev, EV_TIMEOUT, 1);
}

static void
row_read(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct row_batch b = {reg, NULL, NULL, 0, 0, 0, 0, 0};
	const char *params[2];

	(void)fd;
	(void)what;
	if (reg->row_q != 0)
		return; /* its completion comes back here */
	if (reg->row_all) {
		reg->row_all = false;
		hmap_foreach(reg->devices, put_all, reg);
	}
	hmap_remove_if(reg->row_due, take_due, &b);
	if (b.n > 0) {
		add(&b.ids, &b.ids_len, &b.cap_ids, "}", 1);
		add(&b.hellos, &b.hellos_len, &b.cap_hellos, "}", 1);
		params[0] = b.ids;
		params[1] = b.hellos;
		if (store_query(reg->store, STORE_Q_READ | STORE_Q_PREPARE,
				row_sql, 2, params, row_done, reg,
				&reg->row_q) != 0) {
			reg->row_q = 0;
			log_info("could not read %zu device rows again "
				 "(database unavailable)",
				 b.n);
		}
	}
	free(b.ids);
	free(b.hellos);
	if (reg->row_q == 0 && hmap_count(reg->row_due) > 0)
		event_active(reg->row_ev, EV_TIMEOUT, 1);
}

void
registry_row_product_set(struct devconn *c, bool known, const char *product)
{
	char *end;
	long long n;

	c->row_known = false;
	if (!known)
		return;
	c->row_assigned = product != NULL;
	c->row_product = 0;
	if (product != NULL) {
		n = strtoll(product, &end, 10);
		if (end == product || *end != '\0' || n < INT32_MIN ||
		    n > INT32_MAX)
			return;
		c->row_product = (int32_t)n;
	}
	c->row_known = true;
}

void
registry_set_row_cb(struct registry *reg, registry_row_cb cb, void *arg)
{
	reg->row_cb = cb;
	reg->row_arg = arg;
}

void
registry_set_owner_cb(struct registry *reg, registry_owner_cb cb, void *arg)
{
	reg->owner_cb = cb;
	reg->owner_arg = arg;
}

/* Queue c's row (NULL: every connection's) for the next read. */
static void
row_queue(struct registry *reg, struct devconn *c)
{
	if (reg->row_ev == NULL) {
		reg->row_due = hmap_new();
		reg->row_ev = event_new(reg->base, -1, 0, row_read, reg);
		if (reg->row_ev == NULL) {
			log_err("registry: cannot create the row read event");
			hmap_free(reg->row_due);
			reg->row_due = NULL;
			return;
		}
	}
	if (c == NULL) {
		reg->row_all = true;
		hmap_foreach(reg->devices, unsure, NULL);
	} else {
		c->owner_sure = false; /* calls ask the database until read */
		hmap_put(reg->row_due, c->idhex, DEVICE_ID_HEX, reg, NULL);
	}
	if (reg->row_q == 0)
		event_active(reg->row_ev, EV_TIMEOUT, 1);
}

void
registry_row_refresh(struct registry *reg, const char *device_id)
{
	char id[DEVICE_ID_HEX];
	struct devconn *c = NULL;
	size_t i;

	if (reg == NULL)
		return;
	reg->owner_seq++; /* a key lookup in flight may read the old row */
	if (device_id != NULL) {
		if (strlen(device_id) != DEVICE_ID_HEX)
			return;
		for (i = 0; i < DEVICE_ID_HEX; i++) {
			if (!isxdigit((unsigned char)device_id[i]))
				return;
			id[i] = (char)tolower((unsigned char)device_id[i]);
		}
		if ((c = hmap_get(reg->devices, id, DEVICE_ID_HEX)) == NULL) {
			/* not here: only its cached key (and owner) */
			registry_hs_key_entry_free(
				hmap_remove(reg->keys, id, DEVICE_ID_HEX));
			return;
		}
	}
	row_queue(reg, c);
}

void
registry_row_reread(struct registry *reg, struct devconn *c)
{
	/* no owner_seq step: it would send every handshake in flight to a
	   read of its own, and in a storm each of those to the next */
	row_queue(reg, c);
}

void
registry_row_cleanup(struct registry *reg)
{
	if (reg->row_q != 0)
		store_cancel(reg->store, reg->row_q);
	reg->row_q = 0;
	if (reg->row_ev != NULL)
		event_free(reg->row_ev);
	reg->row_ev = NULL;
	hmap_free(reg->row_due);
	reg->row_due = NULL;
}
