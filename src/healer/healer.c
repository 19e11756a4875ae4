/* SPDX-License-Identifier: MIT */
/*
 * The healer's loop-side glue: flashes with their spark/flash/status
 * events, and the safe-mode healer around the pure planner. See
 * healer.h and docs/healer.md.
 */
#include "config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "describe.h"
#include "err.h"
#include "events.h"
#include "healer/apphash.h"
#include "healer/fwstore.h"
#include "healer/healer.h"
#include "healer/healstep.h"
#include "bus.h"
#include "healer/ota.h"
#include "healer/otacache.h"
#include "healer/planner.h"
#include "hmap.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "xmalloc.h"

#define HEALER_DEVICE_ID_MAX 24
#define HEALER_TRIES_MAX 16	    /* modules tracked per heal */
#define HEALER_CAT_TTL_MS 30000	    /* catalogue cache lifetime */
#define HEALER_IDLE_MS (10 * 60000) /* a heal with no news ends */
#define HEALER_SWEEP_MS 5000	    /* timer: retries, idle heals */

/* A user or heal flash in progress; freed by its final report. h is
   NULL once the healer is gone (the registry may report during its own
   shutdown). */
struct healer_flash {
	struct healer *h;
	struct healer_flash *next, *prev; /* h->flashes */
	int64_t owner_id;
	char device_id[HEALER_DEVICE_ID_MAX + 1];
	bool heal;		  /* sent by the healer */
	struct planner_image img; /* heal: what is sent */
};

/* An asynchronous store step of a heal; detached like a flash. */
struct healer_op {
	struct healer *h;
	struct healer_op *next, *prev; /* h->ops */
	char device_id[HEALER_DEVICE_ID_MAX + 1];
	uint16_t platform;
	struct planner_image img; /* fetch: the image */
	/* Heals waiting for the same image (chained by wnext): one fetch
	   per image however many devices need it. */
	struct healer_op *waiters, *wnext;
};

enum heal_state {
	HEAL_WAITING, /* over the concurrency cap */
	HEAL_ACTIVE,  /* planning, sending or waiting for the reboot */
	HEAL_STUCK,   /* missing or blocked: reported, waits for news */
};

struct heal_try {
	char id[PLANNER_ID_MAX];
	struct healstep_try t; /* failures, back-off */
};

struct heal {
	char device_id[HEALER_DEVICE_ID_MAX + 1];
	int64_t owner_id;
	uint16_t platform;
	enum heal_state state;
	bool busy;	     /* a store step or a flash is out */
	bool retry_due;	     /* re-plan when the back-off ends */
	bool plan_due;	     /* plan on the next kick */
	bool refused;	     /* 5.03: updates disabled, not forced */
	bool describe_due;   /* ask for a Describe (safemode, stale one) */
	uint64_t refused_at; /* monotonic ms */
	char *json;	     /* the last Describe */
	uint64_t started;    /* monotonic ms */
	uint64_t last;	     /* last news, monotonic ms */
	uint64_t seq;	     /* arrival order (waiting queue) */
	char before[96];     /* system modules at the start */
	json_t *parts;	     /* modules sent */
	char stuck[PLANNER_REASONLEN]; /* what was reported, "" none */
	char sent_ok[PLANNER_ID_MAX];  /* the image just installed, until a
					  Describe shows it or is skipped */
	size_t n_tries;
	struct heal_try tries[HEALER_TRIES_MAX];
};

struct healer_cat {
	uint16_t platform;
	struct planner_image *v;
	size_t n;
	uint64_t loaded; /* monotonic ms */
};

struct healer {
	struct healer_deps d;
	struct healer_flash *flashes; /* live transfers */
	size_t n_flashes;	      /* ... how many */
	struct healer_op *ops;	      /* store steps out */
	struct hmap *heals;	      /* device id -> struct heal */
	struct apphash *apphash;      /* last application hashes */
	struct ota_cache *images;     /* shared with the flash API */
	struct hmap *fetching;	      /* sha256 -> the op fetching it */
	struct hmap *cats;	      /* platform -> struct healer_cat */
	struct event *sweep;
	struct event *kick;	  /* plans outside the registry's callbacks */
	struct bus_sub *safemode; /* spark/device/safemode from devices */
	unsigned active;
	unsigned peak; /* most heals active at once */
	uint64_t seq;
	uint64_t cat_gen_ms; /* catalogue changed at (monotonic) */
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void heal_plan(struct healer *h, struct heal *hl);
static void sweep_cb(evutil_socket_t fd, short what, void *arg);
static void kick_cb(evutil_socket_t fd, short what, void *arg);
static void publish(struct healer *h, const char *device_id, int64_t owner_id,
		    const char *name, const char *data);
static void healer_on_describe(const char *device_id, int64_t owner_id,
			       const struct describe *d, const char *json,
			       void *arg);
static void on_safemode(const struct bus_event *ev, void *arg);

/*
 * Registry hook: the device has been gone for device_cache_linger_s. Its
 * application hash leaves memory; devices.app_hash keeps it, and the
 * device's next Describe is compared with that (apphash.h), so a change
 * while it was away still publishes spark/device/app-hash. A heal in
 * progress stays (it ends by itself after HEALER_IDLE_MS of silence).
 */
static bool
healer_forget(const char *device_id, void *arg)
{
	struct healer *h = arg;

	apphash_forget(h->apphash, device_id);
	return true;
}

static void
publish_app_hash(const char *device_id, int64_t owner_id, const char *hash,
		 void *arg)
{
	publish(arg, device_id, owner_id, "spark/device/app-hash", hash);
}

int
healer_new(const struct healer_deps *deps, struct healer **out)
{
	struct healer *h = xcalloc(1, sizeof(*h));
	struct timeval tv = {HEALER_SWEEP_MS / 1000, 0};

	h->d = *deps;
	h->heals = hmap_new();
	h->apphash = apphash_new(h->d.base, h->d.store, publish_app_hash, h);
	h->fetching = hmap_new();
	h->images = ota_cache_new(
		(size_t)(h->d.cfg != NULL ? h->d.cfg->ota_image_cache_mb
					  : OTA_CACHE_MB_DEFAULT)
		<< 20);
	h->cats = hmap_new();
	if (h->d.base != NULL) {
		h->sweep = event_new(h->d.base, -1, EV_PERSIST, sweep_cb, h);
		event_add(h->sweep, &tv);
		h->kick = event_new(h->d.base, -1, 0, kick_cb, h);
	}
	if (h->d.reg != NULL) {
		registry_set_describe_cb(h->d.reg, healer_on_describe, h);
		registry_add_forget_cb(h->d.reg, healer_forget, h);
	}
	if (h->d.events != NULL && h->d.reg != NULL)
		h->safemode =
			bus_subscribe(events_bus(h->d.events),
				      "spark/device/safemode", on_safemode, h);
	*out = h;
	return 0;
}

static int
free_heal(const void *k, size_t len, void *v, void *arg)
{
	struct heal *hl = v;

	(void)k;
	(void)len;
	(void)arg;
	free(hl->json);
	json_decref(hl->parts);
	free(hl);
	return 0;
}

static int
free_cat(const void *k, size_t len, void *v, void *arg)
{
	struct healer_cat *c = v;

	(void)k;
	(void)len;
	(void)arg;
	free(c->v);
	free(c);
	return 0;
}

void
healer_free(struct healer *h)
{
	struct healer_flash *f;
	struct healer_op *op;

	if (h == NULL)
		return;
	if (h->d.reg != NULL) {
		registry_set_describe_cb(h->d.reg, NULL, NULL);
		registry_remove_forget_cb(h->d.reg, healer_forget, h);
	}
	if (h->safemode != NULL)
		bus_unsubscribe(events_bus(h->d.events), h->safemode);
	for (f = h->flashes; f != NULL; f = f->next)
		f->h = NULL;
	for (op = h->ops; op != NULL; op = op->next)
		op->h = NULL;
	if (h->sweep != NULL)
		event_free(h->sweep);
	if (h->kick != NULL)
		event_free(h->kick);
	hmap_foreach(h->heals, free_heal, NULL);
	hmap_foreach(h->cats, free_cat, NULL);
	hmap_free(h->heals);
	apphash_free(h->apphash);
	ota_cache_free(h->images);
	hmap_free(h->fetching);
	hmap_free(h->cats);
	free(h);
}

void
healer_catalogue_changed(struct healer *h)
{
	if (h != NULL)
		h->cat_gen_ms = mono_ms() + 1;
}

unsigned
healer_active(const struct healer *h)
{
	return h->active;
}

static int
count_waiting(const void *k, size_t len, void *v, void *arg)
{
	const struct heal *hl = v;

	(void)k;
	(void)len;
	if (hl->state == HEAL_WAITING)
		++*(unsigned *)arg;
	return 0;
}

void
healer_status_fill(struct healer *h, json_t *obj)
{
	unsigned waiting = 0;

	hmap_foreach(h->heals, count_waiting, &waiting);
	json_object_set_new(
		obj, "healer",
		json_pack("{s:I, s:I, s:I, s:I, s:I}", "active",
			  (json_int_t)h->active, "peak", (json_int_t)h->peak,
			  "waiting", (json_int_t)waiting, "max_concurrent",
			  (json_int_t)h->d.cfg->healer_max_concurrent,
			  "app_hashes", (json_int_t)apphash_count(h->apphash)));
	json_object_set_new(obj, "ota",
			    json_pack("{s:I, s:I, s:I, s:I}", "transfers",
				      (json_int_t)h->n_flashes, "images",
				      (json_int_t)ota_cache_count(h->images),
				      "image_bytes",
				      (json_int_t)ota_cache_bytes(h->images),
				      "image_bytes_max",
				      (json_int_t)ota_cache_max(h->images)));
}

/* A heal takes a slot under healer_max_concurrent. */
static void
heal_activate(struct healer *h, struct heal *hl)
{
	hl->state = HEAL_ACTIVE;
	if (++h->active > h->peak)
		h->peak = h->active;
}

static void
publish(struct healer *h, const char *device_id, int64_t owner_id,
	const char *name, const char *data)
{
	if (h->d.events == NULL)
		return;
	events_publish_internal(h->d.events, device_id, owner_id, name,
				(const uint8_t *)data, strlen(data), 60, true,
				0);
}

/* ---------------------------------------------------------------- */
/* Flashes.                                                          */

static void
flash_unlink(struct healer_flash *f)
{
	if (f->h == NULL)
		return;
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		f->h->flashes = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->h->n_flashes--;
}

static void heal_sent(struct healer *h, const struct healer_flash *f,
		      const struct ota_report *r);

static void
enabled_done(int r, const struct store_result *res, void *arg)
{
	(void)res;
	(void)arg;
	if (r != 0)
		log_warn("healer: firmware_updates_enabled not stored: %s",
			 err_str(r));
}

/* The device refused an update with 5.03 (protocol.md §5.3): its
   application disabled updates. Record that (firmware_updates_enabled
   false until the device says otherwise) and mark the update pending
   (the owner's stream and the device), as the Particle cloud does. */
static void
flash_refused(struct healer *h, const char *device_id, int64_t owner_id)
{
	const char *params[1] = {device_id};

	log_notice("device %s: updates are disabled by its application; "
		   "PUT firmware_updates_forced=true to flash it anyway",
		   device_id);
	publish(h, device_id, owner_id, "particle/device/updates/pending",
		"true");
	/* and to the device: System.updatesPending() becomes true */
	if (h->d.reg != NULL)
		(void)registry_send_event(h->d.reg, device_id,
					  "particle/device/updates/pending",
					  (const uint8_t *)"true", 4, 60, true);
	if (h->d.store != NULL &&
	    store_query(h->d.store, STORE_Q_WRITE,
			"UPDATE devices SET firmware_updates_enabled = false "
			"WHERE device_id = $1",
			1, params, enabled_done, NULL, NULL) != 0)
		log_warn("device %s: firmware_updates_enabled not stored",
			 device_id);
}

static void
flash_report(uint64_t flash_id, const char *device_id,
	     const struct ota_report *r, void *arg)
{
	struct healer_flash *f = arg;

	switch (r->ev) {
	case OTA_EV_STARTED:
		if (f->h != NULL)
			publish(f->h, f->device_id, f->owner_id,
				"spark/flash/status", "started");
		return;
	case OTA_EV_PROGRESS:
		return;
	case OTA_EV_SUCCESS:
		log_notice("device %s: flash %llu: success (%u chunks, %s)",
			   device_id, (unsigned long long)flash_id, r->n_chunks,
			   r->fast ? "fast" : "normal");
		break;
	case OTA_EV_FAILED:
		log_notice("device %s: flash %llu: failed: %s%s%s", device_id,
			   (unsigned long long)flash_id,
			   ota_fail_str(r->reason), r->text ? ": " : "",
			   r->text ? r->text : "");
		if (r->reason == OTA_FAIL_DISABLED && f->h != NULL)
			flash_refused(f->h, f->device_id, f->owner_id);
		break;
	}
	if (f->h != NULL) {
		publish(f->h, f->device_id, f->owner_id, "spark/flash/status",
			r->ev == OTA_EV_SUCCESS ? "success" : "failed");
		if (f->heal)
			heal_sent(f->h, f, r);
	}
	flash_unlink(f);
	free(f);
}

static int
flash_start(struct healer *h, const char *device_id, int64_t owner_id,
	    struct ota_image *img, const struct planner_image *heal)
{
	struct healer_flash *f;
	uint64_t id;
	int rc;

	if (strlen(device_id) > HEALER_DEVICE_ID_MAX)
		return CINDER_ERR_INVAL;
	f = xcalloc(1, sizeof(*f));
	f->h = h;
	f->owner_id = owner_id;
	strcpy(f->device_id, device_id);
	if (heal != NULL) {
		f->heal = true;
		f->img = *heal;
	}
	f->next = h->flashes;
	if (h->flashes != NULL)
		h->flashes->prev = f;
	h->flashes = f;
	h->n_flashes++;
	rc = registry_flash(h->d.reg, device_id, img, NULL, flash_report, f,
			    &id);
	if (rc != 0) {
		flash_unlink(f);
		free(f);
	}
	/* On success f may be gone already (a final report). */
	return rc;
}

struct ota_cache *
healer_images(struct healer *h)
{
	return h->images;
}

int
healer_flash(struct healer *h, const char *device_id, int64_t owner_id,
	     struct ota_image *img)
{
	return flash_start(h, device_id, owner_id, img, NULL);
}

/* ---------------------------------------------------------------- */
/* Heals.                                                            */

static struct healer_op *
op_new(struct healer *h, const struct heal *hl)
{
	struct healer_op *op = xcalloc(1, sizeof(*op));

	op->h = h;
	memcpy(op->device_id, hl->device_id, sizeof(op->device_id));
	op->platform = hl->platform;
	op->next = h->ops;
	if (h->ops != NULL)
		h->ops->prev = op;
	h->ops = op;
	return op;
}

/* Unlink and free; @return the healer (NULL when it is gone). */
static struct healer *
op_end(struct healer_op *op)
{
	struct healer *h = op->h;

	if (h != NULL) {
		if (op->prev != NULL)
			op->prev->next = op->next;
		else
			h->ops = op->next;
		if (op->next != NULL)
			op->next->prev = op->prev;
	}
	free(op);
	return h;
}

static struct heal *
heal_get(const struct healer *h, const char *device_id)
{
	return hmap_get(h->heals, device_id, strlen(device_id));
}

struct oldest {
	struct heal *hl;
};

static int
find_oldest(const void *k, size_t len, void *v, void *arg)
{
	struct heal *hl = v;
	struct oldest *o = arg;

	(void)k;
	(void)len;
	if (hl->state == HEAL_WAITING && !hl->busy &&
	    (o->hl == NULL || hl->seq < o->hl->seq))
		o->hl = hl;
	return 0;
}

/* A slot freed: start the device that waited longest. */
static void
heal_promote(struct healer *h)
{
	struct oldest o = {NULL};

	if (h->active >= (unsigned)h->d.cfg->healer_max_concurrent)
		return;
	hmap_foreach(h->heals, find_oldest, &o);
	if (o.hl == NULL)
		return;
	heal_activate(h, o.hl);
	o.hl->plan_due = true;
	if (h->kick != NULL)
		event_active(h->kick, EV_TIMEOUT, 0);
	else
		heal_plan(h, o.hl);
}

static void
history_done(int r, const struct store_result *res, void *arg)
{
	(void)res;
	(void)arg;
	if (r != 0)
		log_warn("healer: history row not stored: %s", err_str(r));
}

/* Write the history row and the log line. */
static void
heal_record(struct healer *h, struct heal *hl, const char *outcome,
	    const char *after, const char *reason)
{
	json_t *o;
	char *detail;
	const char *params[3];
	uint64_t ms = mono_ms() - hl->started;

	o = json_pack("{s:s, s:s, s:s, s:O, s:I}", "outcome", outcome, "before",
		      hl->before, "after", after ? after : "", "parts",
		      hl->parts, "duration_ms", (json_int_t)ms);
	if (reason != NULL && *reason)
		json_object_set_new(o, "reason", json_string(reason));
	detail = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	log_notice("device %s: heal %s after %llu ms: system %s -> %s, %zu "
		   "part(s) sent%s%s",
		   hl->device_id, outcome, (unsigned long long)ms, hl->before,
		   after && *after ? after : "?", json_array_size(hl->parts),
		   reason && *reason ? ": " : "", reason ? reason : "");
	params[0] = hl->device_id;
	params[1] = outcome;
	params[2] = detail;
	if (detail != NULL &&
	    store_query(h->d.store, STORE_Q_WRITE,
			"INSERT INTO healer_history (device_id, event, detail) "
			"VALUES ($1, $2, $3::jsonb)",
			3, params, history_done, NULL, NULL) != 0)
		log_warn("device %s: heal history not stored", hl->device_id);
	free(detail);
}

/* End a heal (outcome recorded) and free its slot. */
static void
heal_end(struct healer *h, struct heal *hl, const char *outcome,
	 const char *after, const char *reason)
{
	bool was_active = hl->state == HEAL_ACTIVE;

	heal_record(h, hl, outcome, after, reason);
	hmap_remove(h->heals, hl->device_id, strlen(hl->device_id));
	free_heal(NULL, 0, hl, NULL);
	if (was_active) {
		h->active--;
		heal_promote(h);
	}
}

/* The heal waits for news as stuck; its slot, if it held one, goes to
   the next waiting heal. */
static void
heal_park(struct healer *h, struct heal *hl)
{
	if (hl->state == HEAL_ACTIVE) {
		h->active--;
		hl->state = HEAL_STUCK;
		heal_promote(h);
	}
	hl->state = HEAL_STUCK;
}

/* Missing, blocked or refused: say so once (report), keep no loop.
   need: what is missing (published), or NULL. */
static void
heal_stuck(struct healer *h, struct heal *hl, const char *why, bool report,
	   const struct planner_need *need)
{
	char data[256];

	if (report) {
		snprintf(hl->stuck, sizeof(hl->stuck), "%s", why);
		log_warn("device %s: cannot heal: %s", hl->device_id, why);
		if (need != NULL) {
			snprintf(data, sizeof(data),
				 "{\"function\":\"%s\",\"index\":%u,"
				 "\"version\":%u}",
				 module_func_name(need->func), need->index,
				 (unsigned)need->version);
			publish(h, hl->device_id, hl->owner_id,
				"spark/safe-mode-updater/missing", data);
		}
		heal_record(h, hl, need != NULL ? "missing" : "stuck",
			    hl->before, why);
	}
	heal_park(h, hl);
}

static struct heal_try *
heal_try_for(struct heal *hl, const char *id)
{
	size_t i;

	for (i = 0; i < hl->n_tries; i++)
		if (strcmp(hl->tries[i].id, id) == 0)
			return &hl->tries[i];
	if (hl->n_tries == HEALER_TRIES_MAX)
		return &hl->tries[HEALER_TRIES_MAX - 1];
	snprintf(hl->tries[hl->n_tries].id, PLANNER_ID_MAX, "%s", id);
	return &hl->tries[hl->n_tries++];
}

static void heal_send_img(struct healer *h, struct heal *hl,
			  const struct planner_image *pi,
			  struct ota_image *img);
static void heal_send(struct healer *h, struct heal *hl,
		      const struct planner_image *img);

/*
 * A module failed healer_retries times: record the failure once and
 * hold the device as stuck (its slot freed) instead of ending the heal,
 * so that its next Describe (a reconnect) does not start the count
 * again. A heal with no news for HEALER_IDLE_MS ends, and the next one
 * starts afresh.
 */
static void
heal_give_up(struct healer *h, struct heal *hl, const struct planner_image *pi,
	     const struct heal_try *t, const char *reason)
{
	char why[80]; /* "system_part 2 version 1512 failed 3 times" */
	int n;

	/* "... failed N times" is what was reported; the reason after it
	   is the last failure's. */
	n = snprintf(why, sizeof(why), "%s %u version %u failed %u times",
		     module_func_name(pi->func), pi->index, pi->version,
		     t->t.fails);
	if (n < 0 || (size_t)n >= sizeof(why) ||
	    strncmp(hl->stuck, why, (size_t)n) != 0) {
		snprintf(hl->stuck, sizeof(hl->stuck), "%s: %s", why, reason);
		heal_record(h, hl, "failed", hl->before, hl->stuck);
	} else {
		log_info("device %s: heal: not sending %s %u version %u "
			 "again (%u tries failed)",
			 hl->device_id, module_func_name(pi->func), pi->index,
			 pi->version, t->t.fails);
	}
	heal_park(h, hl);
}

static int
hex_to_sha(const char *hex, uint8_t out[32])
{
	unsigned v;
	size_t i;

	if (strlen(hex) != 64)
		return CINDER_ERR_INVAL;
	for (i = 0; i < 32; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return CINDER_ERR_INVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* One heal's wait for an image ended: send it, or retry later (err). */
static void
fetch_done_one(struct healer_op *op, int err, struct ota_image *img)
{
	struct planner_image pi = op->img;
	char dev[HEALER_DEVICE_ID_MAX + 1];
	struct healer *h;
	struct heal *hl;

	memcpy(dev, op->device_id, sizeof(dev));
	if ((h = op_end(op)) == NULL || (hl = heal_get(h, dev)) == NULL)
		return;
	hl->busy = false;
	if (err != 0 || img == NULL) {
		log_warn("device %s: heal: image %s not sent: %s", dev, pi.id,
			 err_str(err != 0 ? err : CINDER_ERR_INTERNAL));
		hl->retry_due = true;
		return;
	}
	heal_send_img(h, hl, &pi, img);
}

/* The image's bytes arrived: cache them once, send to every waiter. */
static void
image_fetched(int err, const uint8_t *bytes, size_t len, void *arg)
{
	struct healer_op *op = arg, *w, *next;
	struct healer *h = op->h;
	struct ota_image *img = NULL;
	uint8_t sha[32];

	w = op->waiters;
	op->waiters = NULL;
	if (hex_to_sha(op->img.id, sha) != 0)
		err = CINDER_ERR_INTERNAL;
	else if (h != NULL)
		hmap_remove(h->fetching, sha, sizeof(sha));
	if (err == 0 && h != NULL &&
	    (err = ota_cache_put(h->images, sha, (uint8_t *)bytes, len, false,
				 &img)) != 0)
		log_warn("heal: image %s not cached: %s (%zu of %zu bytes of "
			 "images being sent; ota_image_cache_mb)",
			 op->img.id, err_str(err), ota_cache_bytes(h->images),
			 ota_cache_max(h->images));
	else if (err != 0)
		log_warn("heal: image %s not read: %s", op->img.id,
			 err_str(err));
	fetch_done_one(op, err, img);
	for (; w != NULL; w = next) {
		next = w->wnext;
		fetch_done_one(w, err, img);
	}
	ota_image_unref(img);
}

/* Send img (fetching its bytes first when not cached, once however
   many heals need it). */
static void
heal_send(struct healer *h, struct heal *hl, const struct planner_image *pi)
{
	struct ota_image *img;
	struct healer_op *op, *lead;
	uint8_t sha[32];
	int rc;

	if (hex_to_sha(pi->id, sha) != 0)
		return;
	img = ota_cache_get(h->images, sha);
	if (img == NULL) {
		op = op_new(h, hl);
		op->img = *pi;
		if ((lead = hmap_get(h->fetching, sha, sizeof(sha))) != NULL) {
			op->wnext = lead->waiters;
			lead->waiters = op;
		} else if ((rc = hmap_put(h->fetching, sha, sizeof(sha), op,
					  NULL)) != 0 ||
			   (rc = fwstore_image_fetch(h->d.store, sha,
						     image_fetched, op)) != 0) {
			log_info("device %s: heal: image %s not read: %s",
				 hl->device_id, pi->id, err_str(rc));
			hmap_remove(h->fetching, sha, sizeof(sha));
			op_end(op);
			hl->retry_due = true;
			return;
		}
		hl->busy = true; /* the store never calls back before */
		return;
	}
	heal_send_img(h, hl, pi, img);
	ota_image_unref(img);
}

/* Send a cached image (the transfer takes its own reference). */
static void
heal_send_img(struct healer *h, struct heal *hl, const struct planner_image *pi,
	      struct ota_image *img)
{
	char idx[8];
	int rc;

	snprintf(idx, sizeof(idx), "%u", pi->index);
	publish(h, hl->device_id, hl->owner_id,
		"spark/safe-mode-updater/updating", idx);
	log_notice("device %s: heal: sending %s %u version %u (%s)",
		   hl->device_id, module_func_name(pi->func), pi->index,
		   pi->version, pi->id);
	/* Busy until the final report, which may come before flash_start()
	   returns (a write to a socket the device has just reset fails
	   there): marked after, the heal would stay busy with nothing out
	   and stall. After a 0, hl may be gone (heal_sent() gave up). */
	hl->busy = true;
	rc = flash_start(h, hl->device_id, hl->owner_id, img, pi);
	if (rc == 0)
		return;
	hl->busy = false;
	if (rc == CINDER_ERR_BUSY) {
		hl->retry_due = true;
		return;
	}
	/* Offline: the next Describe continues. */
	log_info("device %s: heal: cannot send now: %s", hl->device_id,
		 err_str(rc));
}

static void
heal_sent(struct healer *h, const struct healer_flash *f,
	  const struct ota_report *r)
{
	struct heal *hl = heal_get(h, f->device_id);
	struct heal_try *t;

	if (hl == NULL)
		return;
	hl->busy = false;
	hl->last = mono_ms();
	if (r->ev == OTA_EV_SUCCESS) {
		hl->stuck[0] = '\0';
		/* A Describe that came during the transfer shows the device
		   before it: only the one after the reboot counts. */
		hl->plan_due = false;
		hl->retry_due = false;
		snprintf(hl->sent_ok, sizeof(hl->sent_ok), "%s", f->img.id);
		json_array_append_new(
			hl->parts,
			json_pack("{s:s, s:i, s:i, s:s}", "function",
				  module_func_name(f->img.func), "index",
				  f->img.index, "version", f->img.version,
				  "sha256", f->img.id));
		return; /* the reboot's Describe continues */
	}
	if (r->reason == OTA_FAIL_DISABLED &&
	    !events_updates_forced(h->d.events, hl->device_id)) {
		/* Not a failure of the image: the device says no until its
		   application enables updates or the owner forces them.
		   Wait for news (a Describe, healer_updates_forced()). */
		hl->refused = true;
		hl->refused_at = hl->last;
		hl->plan_due = true; /* the kick reports it */
		if (h->kick != NULL)
			event_active(h->kick, EV_TIMEOUT, 0);
		else
			heal_plan(h, hl);
		return;
	}
	t = heal_try_for(hl, f->img.id);
	if (healstep_failed(&t->t, (unsigned)h->d.cfg->healer_retries,
			    (unsigned)h->d.cfg->healer_backoff, mono_ms(),
			    r->reason == OTA_FAIL_DISCONNECTED)) {
		heal_give_up(h, hl, &f->img, t, ota_fail_str(r->reason));
		return;
	}
	if (r->reason == OTA_FAIL_DISCONNECTED) {
		/* The link went, not the transfer: send again as soon as
		   the device is back (its next Describe, or now if it is
		   already), without the back-off. */
		if (h->d.reg != NULL &&
		    registry_is_online(h->d.reg, hl->device_id)) {
			hl->plan_due = true;
			if (h->kick != NULL)
				event_active(h->kick, EV_TIMEOUT, 0);
		}
		log_info("device %s: heal: transfer cut by a disconnect, try "
			 "%u of %d when the device is back",
			 hl->device_id, t->t.fails + 1,
			 h->d.cfg->healer_retries);
		return;
	}
	hl->retry_due = true;
	log_info("device %s: heal: send failed (%s), try %u of %d later",
		 hl->device_id, ota_fail_str(r->reason), t->t.fails + 1,
		 h->d.cfg->healer_retries);
}

/* Plan from the stored Describe with the catalogue. */
static void
heal_decide(struct healer *h, struct heal *hl, const struct planner_image *cat,
	    size_t n)
{
	struct describe *d = NULL;
	struct planner_opts opts = {.allow_prerelease =
					    h->d.cfg->healer_prerelease != 0};
	struct planner_result res;
	struct healstep_in in;
	struct healstep_out out;
	struct heal_try *t = NULL;
	char err[DESCRIBE_ERRLEN];

	if (describe_parse(hl->json, strlen(hl->json), &d, err, sizeof(err)) !=
	    0) {
		log_warn("device %s: heal: describe not understood: %s",
			 hl->device_id, err);
		return;
	}
	planner_next(d, hl->platform, cat, n, &opts, &res);
	describe_free(d);
	log_info("device %s: heal plan (%zu catalogue images): %s: %s",
		 hl->device_id, n, planner_status_str(res.status), res.reason);
	if (res.status == PLANNER_SEND && res.image != NULL)
		t = heal_try_for(hl, res.image->id);
	memset(&in, 0, sizeof(in));
	in.plan = &res;
	in.try = t != NULL ? &t->t : NULL;
	in.has_slot = hl->state == HEAL_ACTIVE;
	in.active = h->active;
	in.cap = (unsigned)h->d.cfg->healer_max_concurrent;
	in.retries = (unsigned)h->d.cfg->healer_retries;
	in.updates_refused = hl->refused;
	in.reported = hl->stuck;
	in.now_ms = mono_ms();
	healstep_decide(&in, &out);
	switch (out.action) {
	case HEALSTEP_DONE: /* the Describe hook ends it */
	case HEALSTEP_QUEUE:
		return;
	case HEALSTEP_STUCK:
		heal_stuck(h, hl, out.reason, out.report,
			   res.status == PLANNER_MISSING ||
					   res.status == PLANNER_BLOCKED
				   ? &res.need
				   : NULL);
		return;
	case HEALSTEP_GIVE_UP:
		heal_give_up(h, hl, res.image, t, "gave up");
		return;
	case HEALSTEP_WAIT:
		hl->retry_due = true;
		return;
	case HEALSTEP_SEND:
		break;
	}
	if (strcmp(out.image->id, hl->sent_ok) == 0) {
		/* A Describe sent between the install and the reboot: skip
		   it once; if the next one still lacks the module, the
		   install did not take and the image goes again. The next
		   sweep asks for that Describe, in case none comes. */
		hl->sent_ok[0] = '\0';
		hl->describe_due = true;
		log_info("device %s: heal: its describe predates the install "
			 "of %s %u version %u: waiting for the restart",
			 hl->device_id, module_func_name(out.image->func),
			 out.image->index, out.image->version);
		return;
	}
	hl->sent_ok[0] = '\0';
	if (strcmp(hl->stuck, HEALSTEP_DISABLED_REASON) != 0)
		hl->stuck[0] = '\0'; /* that one: until a send succeeds */
	heal_send(h, hl, out.image);
}

static void
catalogue_loaded(int err, const struct planner_image *cat, size_t n, void *arg)
{
	struct healer_op *op = arg;
	char dev[HEALER_DEVICE_ID_MAX + 1];
	uint16_t platform = op->platform;
	struct healer_cat *c;
	struct healer *h;
	struct heal *hl;
	uint64_t key = platform;

	memcpy(dev, op->device_id, sizeof(dev));
	if ((h = op_end(op)) == NULL)
		return;
	if (err == 0) {
		c = hmap_get(h->cats, &key, sizeof(key));
		if (c == NULL) {
			c = xcalloc(1, sizeof(*c));
			c->platform = platform;
			hmap_put(h->cats, &key, sizeof(key), c, NULL);
		}
		free(c->v);
		c->v = n ? xmalloc(n * sizeof(*cat)) : NULL;
		if (n)
			memcpy(c->v, cat, n * sizeof(*cat));
		c->n = n;
		c->loaded = mono_ms();
	}
	if ((hl = heal_get(h, dev)) == NULL)
		return;
	hl->busy = false;
	if (err != 0) {
		log_warn("device %s: heal: catalogue not loaded: %s", dev,
			 err_str(err));
		hl->retry_due = true;
		return;
	}
	heal_decide(h, hl, cat, n);
}

static void
heal_plan(struct healer *h, struct heal *hl)
{
	uint64_t key = hl->platform;
	struct healer_cat *c = hmap_get(h->cats, &key, sizeof(key));
	struct healer_op *op;

	hl->retry_due = false;
	if (hl->busy)
		return;
	if (c != NULL && c->loaded + HEALER_CAT_TTL_MS > mono_ms() &&
	    c->loaded > h->cat_gen_ms) {
		heal_decide(h, hl, c->v, c->n);
		return;
	}
	op = op_new(h, hl);
	if (fwstore_catalogue_load(h->d.store, hl->platform, catalogue_loaded,
				   op) != 0) {
		op_end(op);
		hl->retry_due = true;
		return;
	}
	hl->busy = true;
}

/* The installed system modules, e.g. "b0:501 s1:1000 s2:1000". */
static const char *
system_version_of(const struct describe *d, char *buf, size_t cap)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < d->n_modules && o + 16 < cap; i++) {
		const struct describe_module *m = &d->modules[i];

		if ((m->location != 0 && m->location != 'm') ||
		    (m->func != 's' && m->func != 'b'))
			continue;
		o += (size_t)snprintf(
			buf + o, cap - o, "%s%c%d:%u", o ? " " : "", m->func,
			m->index < 0 ? 0 : m->index, (unsigned)m->version);
	}
	return buf;
}

static void
check_app_hash(struct healer *h, const char *device_id, int64_t owner_id,
	       const struct describe *d)
{
	const struct describe_module *u = describe_user_module(d);

	if (u != NULL && u->hash[0] != '\0')
		apphash_check(h->apphash, device_id, owner_id, u->hash);
}

static void
healer_on_describe(const char *device_id, int64_t owner_id,
		   const struct describe *d, const char *json, void *arg)
{
	struct healer *h = arg;
	struct heal *hl = heal_get(h, device_id);
	struct describe_missing miss[4];
	char vbuf[96];
	size_t n;

	check_app_hash(h, device_id, owner_id, d);
	if (!d->has_system || d->n_modules == 0)
		return;
	n = describe_missing_dependencies(d, miss, 4);
	if (n == 0) {
		if (hl != NULL) {
			if (hl->state == HEAL_STUCK)
				hl->state = HEAL_WAITING; /* not counted */
			heal_end(h, hl,
				 json_array_size(hl->parts) ? "healed"
							    : "resolved",
				 system_version_of(d, vbuf, sizeof(vbuf)),
				 NULL);
		}
		return;
	}
	if (d->platform_id < 0 || strlen(device_id) > HEALER_DEVICE_ID_MAX)
		return;
	if (hl == NULL) {
		hl = xcalloc(1, sizeof(*hl));
		snprintf(hl->device_id, sizeof(hl->device_id), "%s", device_id);
		hl->started = mono_ms();
		hl->seq = ++h->seq;
		hl->state = HEAL_WAITING;
		hl->parts = json_array();
		snprintf(hl->before, sizeof(hl->before), "%s",
			 system_version_of(d, vbuf, sizeof(vbuf)));
		hmap_put(h->heals, hl->device_id, strlen(hl->device_id), hl,
			 NULL);
		log_notice("device %s: needs %zu module(s) it does not have "
			   "(system %s): healing",
			   device_id, n, hl->before);
	}
	if (describe_is_safe_mode(d))
		publish(h, device_id, owner_id, "spark/status/safe-mode", json);
	free(hl->json);
	hl->json = xstrdup(json);
	hl->owner_id = owner_id;
	hl->platform = (uint16_t)d->platform_id;
	hl->last = mono_ms();
	/* Its application may have enabled updates since a refusal: try
	   again, once per back-off period at most. */
	if (hl->refused &&
	    hl->refused_at + (uint64_t)h->d.cfg->healer_backoff * 1000u <=
		    mono_ms())
		hl->refused = false;
	if (hl->state == HEAL_STUCK) {
		/* Re-plan quietly: a new catalogue may have the part. */
		hl->state = HEAL_WAITING;
	}
	if (hl->state == HEAL_WAITING) {
		if (!healstep_may_start(
			    h->active,
			    (unsigned)h->d.cfg->healer_max_concurrent)) {
			log_info("device %s: heal waits: %u devices are "
				 "healing",
				 device_id, h->active);
			return;
		}
		heal_activate(h, hl);
	}
	/* Not from inside the session's input handling: on the next turn
	   of the loop. */
	hl->plan_due = true;
	if (h->kick != NULL)
		event_active(h->kick, EV_TIMEOUT, 0);
	else
		heal_plan(h, hl);
}

#define HEALER_BATCH 64 /* heals planned per timer or kick turn */

static void
describe_asked(uint64_t req_id, const struct session_result *res, void *arg)
{
	(void)req_id;
	(void)res;
	(void)arg; /* the Describe reaches healer_on_describe() */
}

/*
 * Ask a device for a fresh Describe; the healer plans from it like from
 * any other. The registry shares concurrent refreshes and starts one at
 * most every 5 s: BUSY means one was asked just now (at connect,
 * usually), and that one serves, except for a stuck heal, which may
 * have planned from it before the catalogue changed: the sweep asks
 * again.
 */
static void
describe_ask(struct healer *h, const char *device_id)
{
	struct heal *hl = heal_get(h, device_id);
	uint64_t id;
	int rc;

	rc = registry_request(h->d.reg, device_id, SESSION_REQ_DESCRIBE, NULL,
			      NULL, 5000, describe_asked, NULL, &id);
	if (hl != NULL)
		hl->describe_due =
			rc == CINDER_ERR_BUSY && hl->state == HEAL_STUCK;
	if (rc != 0 && rc != CINDER_ERR_BUSY)
		log_debug("device %s: heal: no describe asked: %s", device_id,
			  err_str(rc));
}

/* §4.4, §4.5: a device says it booted into safe mode (after every
   handshake while it is). Plan from a fresh Describe. */
static void
on_safemode(const struct bus_event *ev, void *arg)
{
	struct healer *h = arg;

	if (ev->source != BUS_SRC_DEVICE ||
	    strcmp(ev->name, "spark/device/safemode") != 0 ||
	    strlen(ev->coreid) != 24)
		return;
	log_info("device %s: reports safe mode: asking for its describe",
		 ev->coreid);
	describe_ask(h, ev->coreid);
}

struct sweep_ctx {
	struct healer *h;
	uint64_t now;
	bool kick;			     /* plan_due ones, not retries */
	char idle[HEALER_DEVICE_ID_MAX + 1]; /* one idle heal to end */
	char due[HEALER_BATCH][HEALER_DEVICE_ID_MAX + 1];
	size_t n_due;
	bool more; /* the batch was full */
};

static int
sweep_one(const void *k, size_t len, void *v, void *arg)
{
	struct heal *hl = v;
	struct sweep_ctx *s = arg;
	bool due;

	(void)k;
	(void)len;
	if (!s->kick && hl->describe_due)
		describe_ask(s->h, hl->device_id);
	if (hl->busy)
		return 0;
	if (!s->kick && hl->last + HEALER_IDLE_MS < s->now &&
	    s->idle[0] == '\0') {
		memcpy(s->idle, hl->device_id, sizeof(s->idle));
		return 0;
	}
	due = s->kick ? hl->plan_due
		      : hl->retry_due ||
				(hl->plan_due && hl->state == HEAL_ACTIVE);
	if (!due || hl->state != HEAL_ACTIVE)
		return 0;
	if (s->n_due == HEALER_BATCH) {
		s->more = true;
		return 1;
	}
	memcpy(s->due[s->n_due++], hl->device_id, sizeof(s->due[0]));
	return 0;
}

/* Plan the heals due; ids, not pointers: a plan may end other heals. */
static void
sweep_run(struct healer *h, bool kick)
{
	struct sweep_ctx *s = xcalloc(1, sizeof(*s));
	struct heal *hl;
	size_t i;

	s->h = h;
	s->now = mono_ms();
	s->kick = kick;
	hmap_foreach(h->heals, sweep_one, s);
	for (i = 0; i < s->n_due; i++) {
		if ((hl = heal_get(h, s->due[i])) == NULL)
			continue;
		hl->plan_due = false;
		heal_plan(h, hl);
	}
	if (s->idle[0] != '\0' && (hl = heal_get(h, s->idle)) != NULL &&
	    !hl->busy)
		heal_end(h, hl, "abandoned", hl->before,
			 "no news from the device for 10 minutes");
	if (s->more && h->kick != NULL)
		event_active(h->kick, EV_TIMEOUT, 0);
	free(s);
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sweep_run(arg, false);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sweep_run(arg, true);
}

void
healer_updates_forced(struct healer *h, const char *device_id, bool forced)
{
	struct heal *hl;

	if (h == NULL)
		return;
	events_updates_forced_set(h->d.events, device_id, forced);
	if (!forced || (hl = heal_get(h, device_id)) == NULL || !hl->refused)
		return;
	/* Refused before: go on now that the device is told. */
	log_info("device %s: updates forced: the heal goes on", device_id);
	hl->refused = false;
	hl->last = mono_ms();
	if (hl->state == HEAL_STUCK)
		hl->state = HEAL_WAITING;
	if (hl->state == HEAL_WAITING) {
		if (!healstep_may_start(
			    h->active,
			    (unsigned)h->d.cfg->healer_max_concurrent))
			return; /* heal_promote() starts it */
		hl->state = HEAL_ACTIVE;
		h->active++;
	}
	hl->plan_due = true;
	if (h->kick != NULL)
		event_active(h->kick, EV_TIMEOUT, 0);
	else
		heal_plan(h, hl);
}

json_t *
healer_state_json(const struct healer *h, const char *device_id)
{
	const struct heal *hl;
	static const char *const names[] = {"waiting", "healing", "stuck"};

	if (h == NULL || (hl = heal_get(h, device_id)) == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:O, s:s?, s:I}", "state",
			 names[hl->state], "before", hl->before, "parts",
			 hl->parts, "problem", hl->stuck[0] ? hl->stuck : NULL,
			 "running_ms", (json_int_t)(mono_ms() - hl->started));
}
