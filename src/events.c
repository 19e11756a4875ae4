/* SPDX-License-Identifier: MIT */
/*
 * Events glue between the registry, the bus and the SSE streams: device
 * publishes go through the per-device rate limit and the size and name
 * checks onto the bus; device subscriptions are bus subscriptions that
 * send matching events to the device with registry_send_event(); presence
 * changes become spark/status; spark/device/name requests are answered
 * from the devices table.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "api/http.h"
#include "bus.h"
#include "coap/pcoap.h"
#include "conf.h"
#include "err.h"
#include "events.h"
#include "evprio.h"
#include "hmap.h"
#include "log.h"
#include "registry.h"
#include "sse.h"
#include "store.h"
#include "xmalloc.h"

#define SYS_RATE_PER_S 4  /* reserved-name device events per second ... */
#define SYS_RATE_BURST 64 /* ... with bursts (connect-time system events) */

/* What we remember per device seen online, until it has been gone for
   device_cache_linger_s with its buckets full again (events_forget). */
struct evdev {
	char id[25];	     /* lowercase device id */
	bool online;	     /* presence said online */
	uint32_t product_id; /* from the devices table, 0 = none */
	double tokens;	     /* user-event rate bucket */
	double sys_tokens;   /* reserved-name event bucket */
	uint64_t refill_ms;  /* last bucket refill (monotonic) */
	uint64_t dropped;    /* events dropped by the rate limit */
	bool forced;	     /* devices.firmware_updates_forced */
	bool forced_sub;     /* this session subscribed to a prefix of
				EVENTS_UPDATES_FORCED */
	bool forced_sent;    /* "true" sent on this session */
	uint32_t pins;	     /* connections caching this (dev_event_hook) */
};

struct evconn;

/* One device subscription. */
struct devsub {
	struct evconn *c;		  /* the connection */
	struct bus_sub *sub;		  /* on the bus */
	int scope;			  /* enum pcoap_scope */
	char scope_dev[25];		  /* PCOAP_SCOPE_DEVICE: the device */
	char filter[EVENTS_NAME_MAX + 1]; /* prefix */
	LIST_ENTRY(devsub) link;	  /* in c->subs */
};

/* One device connection with subscriptions. */
struct evconn {
	struct events *ev;	  /* owner */
	uint64_t conn_id;	  /* registry connection id */
	char device_id[25];	  /* the subscribing device */
	unsigned nsubs;		  /* entries in subs */
	uint64_t last_seq;	  /* last event sent (no duplicates) */
	LIST_HEAD(, devsub) subs; /* its subscriptions */
};

/* An outstanding store query owned by this module (events_query). */
struct pending_q {
	struct events *ev;	    /* owner */
	uint64_t qid;		    /* store query id */
	store_done_cb cb;	    /* the caller's callback */
	void *arg;		    /* its argument (freed if cancelled) */
	LIST_ENTRY(pending_q) link; /* in ev->queries */
};

/*
 * The device-info reads of one loop pass (devinfo_fetch). Devices whose
 * row does not answer at online (a first connect, another Hello product)
 * were one statement each: 11,000 in a storm of 11,000 first connects.
 * One flat block, so that events_free() frees a batch in flight as any
 * query's argument.
 */
#define DEVINFO_BATCH_MAX 64

struct devinfo_batch {
	struct events *ev; /* owner */
	size_t n;	   /* entries in e */
	struct {
		char id[25];	/* lowercase device id */
		uint32_t hello; /* the Hello's product, 0: none */
	} e[DEVINFO_BATCH_MAX];
};

/* Context of a device lookup (product id, name helper). */
struct devq {
	struct events *ev;		/* owner */
	char device_id[25];		/* the device concerned */
	char name[EVENTS_NAME_MAX + 1]; /* helper event name, or "" */
};

struct events {
	struct events_deps d;		/* borrowed pointers */
	struct bus *bus;		/* owned */
	struct sse *sse;		/* owned */
	struct hmap *devs;		/* device id -> evdev */
	struct hmap *conns;		/* conn id -> evconn */
	LIST_HEAD(, pending_q) queries; /* store queries in flight */
	struct devinfo_batch *dib;	/* device-info reads to send */
	struct event *dib_ev;		/* sends dib at the pass's end */
	struct events_stats stats;	/* counters */
	double rate, burst;		/* device publish limit (conf) */
};

/*
 * The rate-limit clock: the coarse monotonic clock (the kernel's last
 * tick, a few ms; no TSC read) is plenty for buckets refilled at events
 * per second, and never runs ahead of CLOCK_MONOTONIC.
 */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool
events_name_valid(const char *name, bool allow_empty)
{
	size_t i;

	if (name == NULL)
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= EVENTS_NAME_MAX)
			return false;
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	}
	return i > 0 || allow_empty;
}

bool
events_system_forwarded(const char *name)
{
	static const char *const fwd[] = {
		"spark/device/app-hash",
		"spark/flash/available",
		"spark/flash/progress",
		"spark/flash/status",
		"spark/device/safemode",
		"spark/status",
		"particle/device/updates/enabled",
		"particle/device/updates/forced",
	};
	size_t i;

	for (i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		if (strcmp(name, fwd[i]) == 0)
			return true;
	return false;
}

static struct evdev *
dev_get(struct events *ev, const char *device_id)
{
	struct evdev *d = hmap_get(ev->devs, device_id, 24);
	size_t i;

	if (d != NULL)
		return d;
	d = xcalloc(1, sizeof(*d));
	for (i = 0; i < 24; i++) {
		char c = device_id[i];
		d->id[i] = (c >= 'A' && c <= 'F') ? c + 32 : c;
	}
	d->tokens = ev->burst;
	d->sys_tokens = SYS_RATE_BURST;
	d->refill_ms = mono_ms();
	hmap_put(ev->devs, device_id, 24, d, NULL);
	return d;
}

/*
 * Registry hook: the device has been gone for the linger. Its state goes
 * when a new one would be the same: buckets full again (a device must
 * not reset its rate limit by reconnecting); the product and the forced
 * flag are read again at its next connect (devinfo_fetch).
 */
static bool
events_forget(const char *device_id, void *arg)
{
	struct events *ev = arg;
	struct evdev *d = hmap_get(ev->devs, device_id, 24);
	double dt;

	if (d == NULL || d->online || d->pins > 0)
		return true; /* online: its offline queues it again; a
				connection caching it: its end does */
	dt = (double)(mono_ms() - d->refill_ms) / 1000.0;
	if (d->tokens + dt * ev->rate < ev->burst ||
	    d->sys_tokens + dt * SYS_RATE_PER_S < SYS_RATE_BURST) {
		log_ctx(LOG_LEVEL_DEBUG, d->id,
			"gone: kept until its publish rate limit refills");
		return false;
	}
	hmap_remove(ev->devs, device_id, 24);
	free(d);
	return true;
}

/* Token buckets: true if the event may pass. */
static bool
rate_take(const struct events *ev, struct evdev *d, bool reserved)
{
	uint64_t now = mono_ms();
	double dt = (double)(now - d->refill_ms) / 1000.0;

	d->refill_ms = now;
	d->tokens += dt * ev->rate;
	if (d->tokens > ev->burst)
		d->tokens = ev->burst;
	d->sys_tokens += dt * SYS_RATE_PER_S;
	if (d->sys_tokens > SYS_RATE_BURST)
		d->sys_tokens = SYS_RATE_BURST;
	if (reserved) {
		if (d->sys_tokens < 1.0)
			return false;
		d->sys_tokens -= 1.0;
		return true;
	}
	if (d->tokens < 1.0)
		return false;
	d->tokens -= 1.0;
	return true;
}

/* ---- store lookups ---- */

static void
pq_done(int r, const struct store_result *res, void *arg)
{
	struct pending_q *q = arg;

	LIST_REMOVE(q, link);
	q->cb(r, res, q->arg);
	free(q);
}

int
events_query(struct events *ev, const char *sql, int nparams,
	     const char *const *params, store_done_cb cb, void *arg)
{
	struct pending_q *q;
	int r;

	if (ev->d.store == NULL)
		return CINDER_ERR_UNAVAILABLE;
	q = xcalloc(1, sizeof(*q));
	q->ev = ev;
	q->cb = cb;
	q->arg = arg;
	/* Every caller's SQL is a constant; the device-info read runs at
	   connects (devinfo_fetch). */
	r = store_query(ev->d.store, STORE_Q_READ | STORE_Q_PREPARE, sql,
			nparams, params, pq_done, q, &q->qid);
	if (r != 0) {
		free(q);
		return r;
	}
	LIST_INSERT_HEAD(&ev->queries, q, link);
	return 0;
}

static struct devq *
devq_new(struct events *ev, const char *device_id, const char *name)
{
	struct devq *q = xcalloc(1, sizeof(*q));

	q->ev = ev;
	snprintf(q->device_id, sizeof(q->device_id), "%s", device_id);
	snprintf(q->name, sizeof(q->name), "%s", name ? name : "");
	return q;
}

/*
 * particle/device/updates/forced to the device (protocol.md §5.3): sent
 * once the device is online and subscribed to it, when forced ("true"
 * once per session) and on every change (force_change).
 */
static void
forced_send(struct events *ev, struct evdev *d, bool force_change)
{
	const char *v = d->forced ? "true" : "false";

	if (!d->online || !d->forced_sub || ev->d.reg == NULL)
		return;
	if (!force_change && (!d->forced || d->forced_sent))
		return;
	if (registry_send_event(ev->d.reg, d->id, EVENTS_UPDATES_FORCED,
				(const uint8_t *)v, strlen(v), 60, true) != 0)
		return;
	d->forced_sent = d->forced;
	ev->stats.sent_to_devices++;
	log_ctx(LOG_LEVEL_INFO, d->id, "sent %s = %s", EVENTS_UPDATES_FORCED,
		v);
}

/*
 * Device info after it came online: its assigned product, else the
 * Hello's if such a product exists; forced updates. The rows come by
 * the devices' key, the products by theirs: the arrays go through
 * sub-selects so that PostgreSQL keeps one generic plan (docs/database.md).
 */
static const char devinfo_sql[] =
	"SELECT d.device_id, d.product_id, d.firmware_updates_forced, "
	"NULL::int FROM devices d "
	"WHERE d.device_id = ANY ((SELECT $1::text[])::text[]) "
	"UNION ALL SELECT NULL, NULL, NULL, p.id FROM products p "
	"WHERE p.id = ANY ((SELECT $2::int[])::int[])";

const char *
events_devinfo_statement(void)
{
	return devinfo_sql;
}

/* true if the result's product rows (column 0 NULL) hold product id */
static bool
devinfo_product_exists(const struct store_result *res, uint32_t id)
{
	int i, n = store_result_ntuples(res);

	for (i = 0; i < n && id != 0; i++)
		if (store_result_is_null(res, i, 0) &&
		    !store_result_is_null(res, i, 3) &&
		    strtoul(store_result_value(res, i, 3), NULL, 10) == id)
			return true;
	return false;
}

/* Apply one device row of the result to every entry of its device. */
static void
devinfo_apply(struct devinfo_batch *b, const struct store_result *res, int row)
{
	const char *id = store_result_value(res, row, 0);
	struct evdev *d;
	size_t k;

	for (k = 0; k < b->n; k++) {
		if (strcmp(b->e[k].id, id) != 0 ||
		    (d = hmap_get(b->ev->devs, b->e[k].id, 24)) == NULL)
			continue;
		if (!store_result_is_null(res, row, 1))
			d->product_id = (uint32_t)strtoul(
				store_result_value(res, row, 1), NULL, 10);
		else if (devinfo_product_exists(res, b->e[k].hello))
			d->product_id = b->e[k].hello;
		else
			d->product_id = 0;
		d->forced = !store_result_is_null(res, row, 2) &&
			    store_result_value(res, row, 2)[0] == 't';
		forced_send(b->ev, d, false);
	}
}

static void
devinfo_done(int r, const struct store_result *res, void *arg)
{
	struct devinfo_batch *b = arg;
	int i, n = r == 0 ? store_result_ntuples(res) : 0;

	for (i = 0; i < n; i++)
		if (!store_result_is_null(res, i, 0))
			devinfo_apply(b, res, i);
	free(b);
}

/* Send the pass's device-info reads as one statement. */
static void
devinfo_flush(struct events *ev)
{
	struct devinfo_batch *b = ev->dib;
	/* "{" + 64 x (24 hex + ",") + "}" and 64 x (10 digits + ",") */
	char ids[2 + DEVINFO_BATCH_MAX * 25],
		products[2 + DEVINFO_BATCH_MAX * 11];
	const char *params[2] = {ids, products};
	size_t k, il = 0, pl = 0;

	if (b == NULL)
		return;
	ev->dib = NULL;
	ids[il++] = '{';
	products[pl++] = '{';
	for (k = 0; k < b->n; k++) {
		if (k > 0)
			ids[il++] = ',';
		memcpy(ids + il, b->e[k].id, 24);
		il += 24;
		if (b->e[k].hello != 0)
			pl += (size_t)snprintf(
				products + pl, sizeof(products) - pl, "%s%u",
				pl > 1 ? "," : "", (unsigned)b->e[k].hello);
	}
	ids[il++] = '}';
	ids[il] = '\0';
	products[pl++] = '}';
	products[pl] = '\0';
	if (events_query(ev, devinfo_sql, 2, params, devinfo_done, b) != 0)
		free(b);
}

static void
devinfo_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	devinfo_flush(arg);
}

/* The Hello's product id comes from the session: the device row gets it
   in the next presence batch, after this read may have run. The reads
   of one loop pass go as one statement, at the pass's end. */
static void
devinfo_fetch(struct events *ev, const char *device_id, uint32_t hello_product)
{
	struct devinfo_batch *b = ev->dib;

	if (b == NULL) {
		b = ev->dib = xcalloc(1, sizeof(*b));
		b->ev = ev;
		if (ev->dib_ev != NULL)
			event_active(ev->dib_ev, EV_TIMEOUT, 1);
	}
	snprintf(b->e[b->n].id, sizeof(b->e[b->n].id), "%s", device_id);
	b->e[b->n].hello = hello_product;
	if (++b->n == DEVINFO_BATCH_MAX || ev->dib_ev == NULL)
		devinfo_flush(ev);
}

/* spark/device/name: answer the asking device with its name. */
static void
devname_done(int r, const struct store_result *res, void *arg)
{
	struct devq *q = arg;
	struct events *ev = q->ev;
	const char *name = NULL;

	if (r == 0 && store_result_ntuples(res) == 1)
		name = store_result_value(res, 0, 0);
	if (r != 0)
		log_ctx(LOG_LEVEL_INFO, q->device_id,
			"could not read the device name: %s", err_str(r));
	else if (registry_send_event(ev->d.reg, q->device_id, q->name,
				     (const uint8_t *)(name ? name : ""),
				     name ? strlen(name) : 0, 60, true) == 0)
		ev->stats.sent_to_devices++;
	free(q);
}

static void
devname_answer(struct events *ev, const char *device_id, const char *name)
{
	struct devq *q = devq_new(ev, device_id, name);
	const char *params[1] = {q->device_id};

	if (events_query(ev, "SELECT name FROM devices WHERE device_id = $1", 1,
			 params, devname_done, q) != 0)
		free(q);
}

static void
enabled_done(int r, const struct store_result *res, void *arg)
{
	(void)res;
	(void)arg;
	if (r != 0)
		log_info("could not store firmware_updates_enabled: %s",
			 err_str(r));
}

/* particle/device/updates/enabled from the device (Device OS 1.2+): its
   application enabled or disabled updates; the REST device shows it. */
static void
updates_enabled_store(struct events *ev, const char *device_id,
		      const uint8_t *data, size_t len)
{
	const char *params[2];

	if (ev->d.store == NULL)
		return;
	if (len == 4 && memcmp(data, "true", 4) == 0)
		params[1] = "t";
	else if (len == 5 && memcmp(data, "false", 5) == 0)
		params[1] = "f";
	else
		return;
	params[0] = device_id;
	if (store_query(ev->d.store, STORE_Q_WRITE,
			"UPDATE devices SET firmware_updates_enabled = "
			"$2::boolean WHERE device_id = $1",
			2, params, enabled_done, NULL, NULL) != 0)
		log_ctx(LOG_LEVEL_INFO, device_id,
			"could not store firmware_updates_enabled");
}

/* ---- publishing ---- */

static int
publish(struct events *ev, const struct bus_event_spec *sp)
{
	struct bus_event_spec with_time;
	struct bus_event *be;
	struct timeval tv;
	int r;

	/* published_at: the time the loop woke up for this event (libevent
	   reads it once per pass), not a clock read per event */
	if (sp->published_ms == 0 && ev->d.base != NULL &&
	    event_base_gettimeofday_cached(ev->d.base, &tv) == 0) {
		with_time = *sp;
		with_time.published_ms = (uint64_t)tv.tv_sec * 1000 +
					 (uint64_t)tv.tv_usec / 1000;
		sp = &with_time;
	}
	if ((r = bus_event_new(sp, &be)) != 0)
		return r;
	bus_publish(ev->bus, be);
	return 0;
}

int
events_publish_api(struct events *ev, int64_t user_id, const char *name,
		   const uint8_t *data, size_t len, uint32_t ttl,
		   bool is_private, uint32_t product_id)
{
	struct bus_event_spec sp = {0};

	if (!events_name_valid(name, false))
		return CINDER_ERR_INVAL;
	if (len > EVENTS_API_DATA_MAX)
		return CINDER_ERR_TOO_BIG;
	sp.name = name;
	sp.data = data;
	sp.data_len = len;
	sp.ttl = ttl;
	sp.source = BUS_SRC_API;
	sp.owner_id = user_id;
	sp.is_private = is_private;
	sp.product_id = product_id;
	ev->stats.api_events++;
	return publish(ev, &sp);
}

int
events_publish_internal(struct events *ev, const char *device_id,
			int64_t owner_id, const char *name, const uint8_t *data,
			size_t len, uint32_t ttl, bool is_private,
			unsigned flags)
{
	struct bus_event_spec sp = {0};
	struct evdev *d;

	if (!events_name_valid(name, false))
		return CINDER_ERR_INVAL;
	if (len > BUS_DATA_MAX)
		return CINDER_ERR_TOO_BIG;
	sp.name = name;
	sp.data = data;
	sp.data_len = len;
	sp.ttl = ttl;
	sp.source = device_id != NULL ? BUS_SRC_DEVICE : BUS_SRC_INTERNAL;
	sp.device_id = device_id;
	sp.owner_id = owner_id;
	sp.is_private = is_private;
	sp.flags = flags;
	if (device_id != NULL && strlen(device_id) == 24 &&
	    (d = hmap_get(ev->devs, device_id, 24)) != NULL)
		sp.product_id = d->product_id;
	return publish(ev, &sp);
}

static void
status_event(struct events *ev, const char *device_id, int64_t owner_id,
	     const char *what)
{
	events_publish_internal(ev, device_id, owner_id, "spark/status",
				(const uint8_t *)what, strlen(what), 60, true,
				0);
}

/*
 * Registry hook: a device published an event. Returns CINDER_ERR_BUSY when
 * the rate limit dropped it, so that a confirmable publish is answered
 * with the 4.00 "slow down" reply; other drops are acknowledged.
 */
static int
device_event(struct events *ev, struct evdev *d, int64_t owner_id,
	     const char *name, const uint8_t *data, size_t data_len,
	     uint32_t ttl, bool is_private)
{
	struct bus_event_spec sp = {0};
	bool reserved;

	if (strnlen(name, EVENTS_NAME_MAX + 1) > EVENTS_NAME_MAX ||
	    data_len > EVENTS_DEVICE_DATA_MAX) {
		ev->stats.dropped_size++;
		log_ctx(LOG_LEVEL_DEBUG, d->id,
			"event %.64s dropped: %zu data bytes (limit %d)", name,
			data_len, EVENTS_DEVICE_DATA_MAX);
		return 0;
	}
	if (!events_name_valid(name, false)) {
		ev->stats.dropped_invalid++;
		log_ctx(LOG_LEVEL_DEBUG, d->id,
			"event dropped: empty name or control characters");
		return 0;
	}
	reserved = bus_name_reserved(name);
	if (!rate_take(ev, d, reserved)) {
		ev->stats.dropped_rate++;
		if (d->dropped++ % 100 == 0)
			log_ctx(LOG_LEVEL_DEBUG, d->id,
				"event %s dropped: publish rate limit "
				"(%llu dropped so far)",
				name, (unsigned long long)d->dropped);
		return CINDER_ERR_BUSY;
	}
	ev->stats.device_events++;
	if (reserved) {
		is_private = true;
		if (strcmp(name, "spark/device/name") == 0 ||
		    strcmp(name, "particle/device/name") == 0)
			devname_answer(ev, d->id, name);
		else if (strcmp(name, "particle/device/updates/enabled") == 0)
			updates_enabled_store(ev, d->id, data, data_len);
		if (!events_system_forwarded(name))
			sp.flags |= BUS_EV_HIDDEN;
	}
	sp.name = name;
	sp.data = data;
	sp.data_len = data_len;
	sp.ttl = ttl;
	sp.source = BUS_SRC_DEVICE;
	sp.device_id = d->id;
	sp.owner_id = owner_id;
	sp.is_private = is_private;
	sp.product_id = d->product_id;
	publish(ev, &sp);
	return 0;
}

int
events_on_device_event(const char *device_id, int64_t owner_id,
		       const char *name, const uint8_t *data, size_t data_len,
		       uint32_t ttl, bool is_private, void *arg)
{
	struct events *ev = arg;

	return device_event(ev, dev_get(ev, device_id), owner_id, name, data,
			    data_len, ttl, is_private);
}

/* The registry's hook: the device's state is found once per connection
   and kept on it (pinned: events_forget leaves it while a connection
   holds it), so an event costs no hash lookup. */
static int
dev_event_hook(void **conn_state, const char *device_id, int64_t owner_id,
	       const char *name, const uint8_t *data, size_t data_len,
	       uint32_t ttl, bool is_private, void *arg)
{
	struct events *ev = arg;
	struct evdev *d = *conn_state;

	if (d == NULL) {
		d = dev_get(ev, device_id);
		d->pins++;
		*conn_state = d;
	}
	return device_event(ev, d, owner_id, name, data, data_len, ttl,
			    is_private);
}

static void
dev_event_release(void *conn_state, void *arg)
{
	struct evdev *d = conn_state;

	(void)arg;
	d->pins--;
}

/* Registry hook: online / offline. */
void
events_on_presence(const struct registry_presence *p, void *arg)
{
	struct events *ev = arg;
	struct evdev *d = dev_get(ev, p->device_id);

	if (p->online) {
		if (d->online) /* an offline was missed */
			status_event(ev, d->id, p->owner_id, "offline");
		/* forced_sub stays: a device may subscribe to "particle"
		   while its session is still being described, before this
		   online; the offline of its previous session reset it */
		d->online = true;
		status_event(ev, d->id, p->owner_id, "online");
		if (p->info_known) { /* read with the device's key */
			d->product_id = p->product_id;
			d->forced = p->forced;
			forced_send(ev, d, false);
		} else {
			devinfo_fetch(ev, d->id, p->hello_product);
		}
	} else if (d->online) {
		d->online = false;
		d->forced_sub = false;
		d->forced_sent = false;
		status_event(ev, d->id, p->owner_id, "offline");
	}
}

/*
 * Registry hook: an online device's row was read again after a change
 * elsewhere (registry_row_refresh()): product streams follow a product
 * change at once, and the device hears of a forced-updates change.
 */
static void
on_row(const struct registry_row *row, void *arg)
{
	struct events *ev = arg;
	struct evdev *d = hmap_get(ev->devs, row->device_id, 24);

	if (d == NULL || !d->online)
		return;
	if (d->product_id != row->product_id)
		log_ctx(LOG_LEVEL_INFO, d->id,
			"product changed elsewhere: %u -> %u",
			(unsigned)d->product_id, (unsigned)row->product_id);
	d->product_id = row->product_id;
	if (d->forced != row->forced) {
		d->forced = row->forced;
		forced_send(ev, d, true);
	}
}

void
events_updates_forced_set(struct events *ev, const char *device_id, bool forced)
{
	struct evdev *d;

	if (ev == NULL || strlen(device_id) != 24)
		return;
	d = dev_get(ev, device_id);
	d->forced = forced;
	forced_send(ev, d, true);
}

bool
events_updates_forced(const struct events *ev, const char *device_id)
{
	const struct evdev *d;

	if (ev == NULL || strlen(device_id) != 24)
		return false;
	d = hmap_get(ev->devs, device_id, 24);
	return d != NULL && d->forced;
}

/* ---- device subscriptions ---- */

static bool
devsub_visible(const struct devsub *s, const struct bus_event *be,
	       int64_t owner)
{
	bool own = owner > 0 && be->owner_id == owner;

	switch (s->scope) {
	case PCOAP_SCOPE_MINE:
		return own;
	case PCOAP_SCOPE_DEVICE:
		if (be->source != BUS_SRC_DEVICE ||
		    strcmp(be->coreid, s->scope_dev) != 0)
			return false;
		return !be->is_private || own;
	default:
		return !be->is_private || own;
	}
}

static void
devsub_cb(const struct bus_event *be, void *arg)
{
	struct devsub *s = arg;
	struct evconn *c = s->c;
	struct events *ev = c->ev;
	int64_t owner;
	int r;

	/* reserved names are the cloud's own traffic with one device; they
	   are never routed between devices */
	if ((be->flags & BUS_EV_HIDDEN) || bus_name_reserved(be->name))
		return;
	if (c->last_seq == be->seq)
		return; /* already sent through another subscription */
	owner = registry_owner(ev->d.reg, c->device_id);
	if (owner < 0 || !devsub_visible(s, be, owner))
		return;
	c->last_seq = be->seq;
	r = registry_send_event(ev->d.reg, c->device_id, be->name, be->data,
				be->data_len, be->ttl, be->is_private);
	if (r == 0)
		ev->stats.sent_to_devices++;
	else
		log_ctx(LOG_LEVEL_DEBUG, c->device_id,
			"event %s not sent to the device: %s", be->name,
			err_str(r));
}

/* Registry hook: the device's owner changed; its MINE subscriptions
   move to the new owner's key. */
static void
on_owner(uint64_t conn_id, const char *device_id, int64_t owner_id, void *arg)
{
	struct events *ev = arg;
	struct evconn *c = hmap_get(ev->conns, &conn_id, sizeof(conn_id));
	struct devsub *s;

	(void)device_id;
	if (c == NULL)
		return;
	LIST_FOREACH(s, &c->subs, link)
	{
		if (s->scope == PCOAP_SCOPE_MINE)
			s->sub = bus_resubscribe_owner(ev->bus, s->sub,
						       owner_id);
	}
}

static void
conn_free(struct events *ev, struct evconn *c)
{
	struct devsub *s;

	while ((s = LIST_FIRST(&c->subs)) != NULL) {
		LIST_REMOVE(s, link);
		bus_unsubscribe(ev->bus, s->sub);
		ev->stats.device_subs--;
		free(s);
	}
	hmap_remove(ev->conns, &c->conn_id, sizeof(c->conn_id));
	free(c);
}

/* Registry hook: a device subscribed. */
static void
on_subscribe(uint64_t conn_id, const char *device_id, int64_t owner_id,
	     const char *filter, int scope, const char *scope_device_id,
	     void *arg)
{
	struct events *ev = arg;
	struct evconn *c = hmap_get(ev->conns, &conn_id, sizeof(conn_id));
	struct devsub *s;
	size_t i;

	/* a MINE subscription is bound to the owner on the bus (an event
	   of another user costs it nothing); devsub_cb() still reads the
	   owner at delivery, and on_owner() follows a change */
	if (!events_name_valid(filter, true) ||
	    (filter[0] == '\0' && scope == PCOAP_SCOPE_ALL) ||
	    (scope == PCOAP_SCOPE_DEVICE &&
	     (scope_device_id == NULL || strlen(scope_device_id) != 24))) {
		log_ctx(LOG_LEVEL_DEBUG, device_id,
			"subscription to \"%.64s\" (scope %d) ignored", filter,
			scope);
		return;
	}
	if (bus_name_reserved(filter)) {
		/* every device subscribes to "spark" and "particle"; those
		   names are never routed between devices (the cloud answers
		   the device directly), so no bus subscription is needed and
		   system events do not walk every device's subscriptions */
		log_ctx(LOG_LEVEL_DEBUG, device_id,
			"subscribed to \"%s\" (cloud events only)", filter);
		if (strlen(device_id) == 24 &&
		    strncmp(filter, EVENTS_UPDATES_FORCED, strlen(filter)) ==
			    0) {
			struct evdev *d = dev_get(ev, device_id);

			d->forced_sub = true;
			forced_send(ev, d, false);
		}
		return;
	}
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->ev = ev;
		c->conn_id = conn_id;
		snprintf(c->device_id, sizeof(c->device_id), "%s", device_id);
		LIST_INIT(&c->subs);
		hmap_put(ev->conns, &c->conn_id, sizeof(c->conn_id), c, NULL);
	}
	LIST_FOREACH(s, &c->subs, link)
	{
		if (s->scope == scope && strcmp(s->filter, filter) == 0 &&
		    (scope != PCOAP_SCOPE_DEVICE ||
		     strcasecmp(s->scope_dev, scope_device_id) == 0))
			return; /* a repeat */
	}
	if (c->nsubs >= EVENTS_MAX_DEVICE_SUBS) {
		log_ctx(LOG_LEVEL_INFO, device_id,
			"subscription to \"%s\" ignored: %d already", filter,
			EVENTS_MAX_DEVICE_SUBS);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->scope = scope;
	snprintf(s->filter, sizeof(s->filter), "%s", filter);
	if (scope == PCOAP_SCOPE_DEVICE)
		for (i = 0; i < 24; i++) {
			char ch = scope_device_id[i];
			s->scope_dev[i] =
				(ch >= 'A' && ch <= 'F') ? ch + 32 : ch;
		}
	if (scope == PCOAP_SCOPE_MINE)
		s->sub = bus_subscribe_owner(ev->bus, owner_id, s->filter,
					     devsub_cb, s);
	else if (scope == PCOAP_SCOPE_DEVICE)
		s->sub = bus_subscribe_device(ev->bus, s->scope_dev, s->filter,
					      devsub_cb, s);
	else
		s->sub = bus_subscribe(ev->bus, s->filter, devsub_cb, s);
	LIST_INSERT_HEAD(&c->subs, s, link);
	c->nsubs++;
	ev->stats.device_subs++;
	log_ctx(LOG_LEVEL_DEBUG, device_id, "subscribed to \"%s\" (scope %d)",
		filter, scope);
}

/* Registry hook: the connection closed; its subscriptions die with it. */
static void
on_conn_closed(uint64_t conn_id, const char *device_id, void *arg)
{
	struct events *ev = arg;
	struct evconn *c = hmap_get(ev->conns, &conn_id, sizeof(conn_id));

	(void)device_id;
	if (c != NULL)
		conn_free(ev, c);
}

/* ---- lifecycle ---- */

int
events_new(const struct events_deps *deps, struct events **out)
{
	struct events *ev = xcalloc(1, sizeof(*ev));
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	ev->d = *deps;
	/* Particle's limit unless the configuration raises it */
	ev->rate = deps->cfg != NULL ? deps->cfg->publish_rate : 1;
	ev->burst = deps->cfg != NULL ? deps->cfg->publish_burst : 4;
	ev->bus = bus_new(deps->base);
	ev->sse = sse_new(deps->base, deps->http, ev->bus, NULL);
	ev->devs = hmap_new();
	ev->conns = hmap_new();
	LIST_INIT(&ev->queries);
	if (deps->base != NULL) {
		ev->dib_ev = event_new(deps->base, -1, 0, devinfo_flush_cb, ev);
		/* after the pass's Hellos, which come at EVPRIO_BULK */
		(void)event_priority_set(ev->dib_ev, EVPRIO_BULK);
	}
	if (deps->http != NULL &&
	    (r = http_add_routes(deps->http, h_events_routes, h_events_nroutes,
				 ev)) != 0) {
		log_err("events: could not add the event routes");
		goto out;
	}
	if (deps->reg != NULL) {
		registry_set_event_cb(deps->reg, dev_event_hook,
				      dev_event_release, ev);
		registry_set_presence_cb(deps->reg, events_on_presence, ev);
		registry_set_subscribe_cb(deps->reg, on_subscribe,
					  on_conn_closed, ev);
		registry_add_forget_cb(deps->reg, events_forget, ev);
		registry_set_row_cb(deps->reg, on_row, ev);
		registry_set_owner_cb(deps->reg, on_owner, ev);
	}
	*out = ev;
	ev = NULL;
	r = 0;
out:
	events_free(ev);
	return r;
}

static int
free_dev(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	free(value);
	return 0;
}

struct conn_list {
	struct evconn **v;
	size_t n;
};

static int
collect_conn(const void *key, size_t len, void *value, void *arg)
{
	struct conn_list *l = arg;

	(void)key;
	(void)len;
	l->v[l->n++] = value;
	return 0;
}

void
events_free(struct events *ev)
{
	struct pending_q *q;
	struct conn_list cl;
	size_t i;

	if (ev == NULL)
		return;
	if (ev->d.reg != NULL) {
		registry_set_event_cb(ev->d.reg, NULL, NULL, NULL);
		registry_set_presence_cb(ev->d.reg, NULL, NULL);
		registry_set_subscribe_cb(ev->d.reg, NULL, NULL, NULL);
		registry_remove_forget_cb(ev->d.reg, events_forget, ev);
		registry_set_row_cb(ev->d.reg, NULL, NULL);
		registry_set_owner_cb(ev->d.reg, NULL, NULL);
	}
	if (ev->dib_ev != NULL)
		event_free(ev->dib_ev);
	free(ev->dib);
	while ((q = LIST_FIRST(&ev->queries)) != NULL) {
		store_cancel(ev->d.store, q->qid);
		LIST_REMOVE(q, link);
		free(q->arg);
		free(q);
	}
	cl.v = xcalloc(hmap_count(ev->conns) + 1, sizeof(*cl.v));
	cl.n = 0;
	hmap_foreach(ev->conns, collect_conn, &cl);
	for (i = 0; i < cl.n; i++)
		conn_free(ev, cl.v[i]);
	free(cl.v);
	sse_free(ev->sse);
	bus_free(ev->bus);
	hmap_foreach(ev->devs, free_dev, NULL);
	hmap_free(ev->devs);
	hmap_free(ev->conns);
	free(ev);
}

struct bus *
events_bus(struct events *ev)
{
	return ev->bus;
}

struct sse *
events_sse(struct events *ev)
{
	return ev->sse;
}

struct store *
events_store(struct events *ev)
{
	return ev->d.store;
}

struct http *
events_http(struct events *ev)
{
	return ev->d.http;
}

void
events_stats_get(const struct events *ev, struct events_stats *out)
{
	*out = ev->stats;
}

void
events_status_fill(const struct events *ev, json_t *obj)
{
	struct bus_stats bs;
	struct sse_stats ss;
	const struct events_stats *es = &ev->stats;

	bus_stats_get(ev->bus, &bs);
	sse_stats_get(ev->sse, &ss);
	json_object_set_new(
		obj, "events",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			  "s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
			  "published", (json_int_t)bs.published, "pending",
			  (json_int_t)bs.pending, "device_events",
			  (json_int_t)es->device_events, "api_events",
			  (json_int_t)es->api_events, "dropped_rate",
			  (json_int_t)es->dropped_rate, "dropped_size",
			  (json_int_t)es->dropped_size, "dropped_invalid",
			  (json_int_t)es->dropped_invalid, "sent_to_devices",
			  (json_int_t)es->sent_to_devices,
			  "device_subscriptions", (json_int_t)es->device_subs,
			  "bus_subscriptions", (json_int_t)bs.subscriptions,
			  "devices_kept", (json_int_t)hmap_count(ev->devs),
			  "streams", "open", (json_int_t)ss.streams, "opened",
			  (json_int_t)ss.opened, "refused_per_ip",
			  (json_int_t)ss.refused_ip, "cut_slow",
			  (json_int_t)ss.cut_slow, "frames",
			  (json_int_t)ss.frames, "keepalives",
			  (json_int_t)ss.keepalives));
}
