/* SPDX-License-Identifier: MIT */
/*
 * Webhook engine: definitions in memory (mirrored in the webhooks table),
 * a bus subscription that accepts matching events as durable deliveries,
 * a ready queue per webhook drained under the in-flight caps, libcurl's
 * multi interface driven by libevent (socket and timer callbacks), and
 * the outcome: a row deleted (success), rescheduled (retry) or marked
 * failed, plus the hook-* events back to the owner.
 *
 * A delivery row is inserted as 'in_flight' locked by this node and sent
 * when the insert has committed. Retries are rows 'pending' with a later
 * next_attempt_at, picked up by a poll (FOR UPDATE SKIP LOCKED). At start
 * rows left 'in_flight' by this node are made 'pending' again, so a
 * crash or restart re-sends them: delivery is at least once.
 *
 * This file holds the definitions in memory, the bus subscription that
 * matches events and accepts them, and the module's life cycle;
 * webhook_queue.c the delivery rows and the start-up load, webhook_send.c
 * the sending (webhook_int.h is what they share).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "api/http.h"
#include "bus.h"
#include "conf.h"
#include "err.h"
#include "events.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "webhook/hookdef.h"
#include "webhook/policy.h"
#include "webhook/webhook.h"
#include "webhook/webhook_int.h"
#include "xmalloc.h"

uint64_t
webhook_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- hooks ---- */

struct user_count *
webhook_user_get(struct webhook *w, int64_t owner)
{
	struct user_count *u = hmap_get(w->users, &owner, sizeof(owner));

	if (u == NULL) {
		u = xcalloc(1, sizeof(*u));
		TAILQ_INIT(&u->all);
		TAILQ_INIT(&u->waiting);
		hmap_put(w->users, &owner, sizeof(owner), u, NULL);
	}
	return u;
}

struct hook *
webhook_hook_add(struct webhook *w, const char *id, int64_t owner, json_t *def,
		 const char *created_at)
{
	struct hook *h = xcalloc(1, sizeof(*h));

	snprintf(h->id, sizeof(h->id), "%s", id);
	h->owner = owner;
	h->def = def;
	snprintf(h->event, sizeof(h->event), "%s",
		 json_string_value(json_object_get(def, "event")));
	snprintf(h->device_id, sizeof(h->device_id), "%s",
		 json_string_value(json_object_get(def, "deviceID")));
	h->disabled = json_is_true(json_object_get(def, "disabled"));
	snprintf(h->created_at, sizeof(h->created_at), "%s",
		 created_at ? created_at : "");
	TAILQ_INIT(&h->ready);
	hmap_put(w->hooks, h->id, strlen(h->id), h, NULL);
	TAILQ_INSERT_TAIL(&w->hlist, h, link);
	h->user = webhook_user_get(w, owner);
	TAILQ_INSERT_TAIL(&h->user->all, h, ulink);
	h->user->hooks++;
	return h;
}

void
webhook_hook_remove(struct webhook *w, struct hook *h)
{
	struct delivery *dl;

	while ((dl = TAILQ_FIRST(&h->ready)) != NULL)
		webhook_delivery_free(dl);
	hmap_remove(w->hooks, h->id, strlen(h->id));
	TAILQ_REMOVE(&w->hlist, h, link);
	TAILQ_REMOVE(&h->user->all, h, ulink);
	if (h->waiting)
		TAILQ_REMOVE(&h->user->waiting, h, wlink);
	h->user->hooks--;
	hookplan_unref(h->plan);
	json_decref(h->def);
	free(h);
}

struct hookplan *
webhook_hook_plan(struct hook *h)
{
	if (h->plan == NULL || hookplan_def(h->plan) != h->def) {
		hookplan_unref(h->plan);
		h->plan = hookplan_new(h->def);
	}
	return h->plan;
}

struct hook *
webhook_hook_find(struct webhook *w, const char *id)
{
	return hmap_get(w->hooks, id, strlen(id));
}

/* ---- accepting events ---- */

/* The delivery's row is stored (id) or not (r). */
void
webhook_insert_one(struct delivery *dl, int r, const char *v)
{
	struct webhook *w = dl->w;
	struct hook *h = webhook_hook_find(w, dl->hook_id);

	if (h == NULL) {
		webhook_delivery_free(dl);
		return;
	}
	if (r != 0 || v == NULL) {
		w->stats.db_errors++;
		h->c.failed++;
		if (h->queued > 0)
			h->queued--;
		snprintf(h->last_error, sizeof(h->last_error),
			 "could not store the delivery: %s", err_str(r));
		log_warn("webhook %s: could not store a delivery: %s", h->id,
			 err_str(r));
		webhook_delivery_free(dl);
		return;
	}
	dl->db_id = strtoll(v, NULL, 10);
	webhook_enqueue(w, h, dl);
}

static void
accept_event(struct webhook *w, struct hook *h, const struct bus_event *be)
{
	struct delivery *dl;

	if (h->queued >= (size_t)w->d.cfg->webhook_queue_max) {
		h->c.overflow++;
		w->stats.overflow++;
		if (!h->overflowing) {
			struct delivery tmp = {0};

			h->overflowing = true;
			log_warn("webhook %s: queue full (%d deliveries); "
				 "refusing events until it drains",
				 h->id, w->d.cfg->webhook_queue_max);
			tmp.owner = h->owner;
			tmp.name = (char *)be->name;
			snprintf(h->last_error, sizeof(h->last_error),
				 "queue full: events refused");
			{
				json_t *ctx;
				struct hookdef_event e = {0};

				e.name = be->name;
				e.coreid = be->coreid;
				e.published_ms = be->published_ms;
				ctx = hookdef_context(&e);
				webhook_publish_error(
					w, &tmp, webhook_hook_plan(h), ctx,
					"queue full: events are refused "
					"until deliveries drain");
				json_decref(ctx);
			}
		}
		return;
	}
	h->overflowing = false;
	h->queued++;
	w->stats.accepted++;
	dl = webhook_delivery_new(
		w, h, be->name, be->data_len ? (const char *)be->data : NULL,
		be->data_len, be->coreid, be->published_ms, be->product_id);
	/* the row is inserted when the store queue has room */
	TAILQ_INSERT_TAIL(&w->ins, dl, ilink);
	dl->inserting = true;
	webhook_wq_drain(w);
}

static void
on_bus(const struct bus_event *be, void *arg)
{
	struct webhook *w = arg;
	struct user_count *u;
	struct hook *h, *next;
	size_t n;

	/* cloud-generated events (hook-* among them) never trigger hooks */
	if ((be->flags & BUS_EV_HIDDEN) || be->source == BUS_SRC_INTERNAL ||
	    be->owner_id <= 0 || !w->loaded)
		return;
	u = hmap_get(w->users, &be->owner_id, sizeof(be->owner_id));
	if (u == NULL)
		return; /* an owner with no webhook */
	for (h = TAILQ_FIRST(&u->all); h != NULL; h = next) {
		next = TAILQ_NEXT(h, ulink);
		if (h->disabled)
			continue;
		n = strlen(h->event);
		if (strncmp(be->name, h->event, n) != 0)
			continue;
		if (h->device_id[0] != '\0' &&
		    (be->source != BUS_SRC_DEVICE ||
		     strcmp(be->coreid, h->device_id) != 0))
			continue;
		accept_event(w, h, be);
	}
}

/* ---- lifecycle ---- */

int
webhook_new(const struct webhook_deps *deps, struct webhook **out)
{
	struct webhook *w = xcalloc(1, sizeof(*w));
	const struct conf *cfg = deps->cfg;
	int r = CINDER_ERR_INVAL;

	*out = NULL;
	w->d = *deps;
	w->hooks = hmap_new();
	w->users = hmap_new();
	w->hosts = hmap_new();
	w->fds = hmap_new();
	TAILQ_INIT(&w->hlist);
	TAILQ_INIT(&w->all);
	LIST_INIT(&w->qs);
	LIST_INIT(&w->socks);
	LIST_INIT(&w->socks_idle);
	TAILQ_INIT(&w->ins);
	TAILQ_INIT(&w->writes);
	if (policy_retry_parse(cfg->webhook_retry, &w->retry) != 0) {
		log_err("webhook_retry: expected seconds like 30,60 (1-86400 "
			"each, at most %d)",
			POLICY_MAX_RETRIES);
		goto out;
	}
	if (policy_nets_parse(cfg->webhook_allow_nets, &w->allow) != 0) {
		log_err("webhook_allow_nets: expected addresses or networks "
			"like 127.0.0.0/8,::1 (at most %d)",
			POLICY_MAX_NETS);
		goto out;
	}
	conf_node_name(cfg, w->node, sizeof(w->node));
	r = CINDER_ERR_INTERNAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (w->multi = curl_multi_init()) == NULL) {
		log_err("webhooks: could not start libcurl");
		goto out;
	}
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION,
			  webhook_curl_sock_cb);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION,
			  webhook_curl_timer_cb);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 256L);
	w->curl_timer = evtimer_new(deps->base, webhook_curl_timer_event, w);
	w->poll_ev = evtimer_new(deps->base, webhook_poll_cb, w);
	w->load_ev = evtimer_new(deps->base, webhook_load_cb, w);
	w->wq_ev = evtimer_new(deps->base, webhook_wq_ev_cb, w);
	if (deps->http != NULL && http_add_routes(deps->http, h_webhooks_routes,
						  h_webhooks_nroutes, w) != 0) {
		log_err("webhooks: could not add the routes");
		r = CINDER_ERR_INVAL;
		goto out;
	}
	w->sub = bus_subscribe(events_bus(deps->events), "", on_bus, w);
	webhook_load_cb(-1, 0, w);
	*out = w;
	w = NULL;
	r = 0;
out:
	webhook_free(w);
	return r;
}

static int
free_value(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	free(value);
	return 0;
}

void
webhook_free(struct webhook *w)
{
	struct delivery *dl;
	struct hook *h;
	struct wq *q;
	struct sockev *se;
	struct pw *x;

	if (w == NULL)
		return;
	if (w->sub != NULL)
		bus_unsubscribe(events_bus(w->d.events), w->sub);
	while ((dl = TAILQ_FIRST(&w->all)) != NULL)
		webhook_delivery_free(dl);
	while ((q = LIST_FIRST(&w->qs)) != NULL) {
		store_cancel(w->d.store, q->qid);
		LIST_REMOVE(q, link);
		if (q->arg_free != NULL)
			q->arg_free(q->arg);
		free(q);
	}
	w->nqs = 0;
	while ((x = TAILQ_FIRST(&w->writes)) != NULL) {
		TAILQ_REMOVE(&w->writes, x, link);
		webhook_pw_free(x);
	}
	free(w->del);
	while ((h = TAILQ_FIRST(&w->hlist)) != NULL)
		webhook_hook_remove(w, h);
	while (w->neasy > 0) {
		w->neasy--;
		curl_easy_cleanup(w->easy_pool[w->neasy].e);
		hookplan_unref(w->easy_pool[w->neasy].plan);
	}
	if (w->multi != NULL)
		curl_multi_cleanup(w->multi);
	while ((se = LIST_FIRST(&w->socks)) != NULL ||
	       (se = LIST_FIRST(&w->socks_idle)) != NULL) {
		LIST_REMOVE(se, link);
		event_free(se->ev);
		free(se);
	}
	if (w->curl_timer != NULL)
		event_free(w->curl_timer);
	if (w->poll_ev != NULL)
		event_free(w->poll_ev);
	if (w->load_ev != NULL)
		event_free(w->load_ev);
	if (w->wq_ev != NULL)
		event_free(w->wq_ev);
	hmap_foreach(w->users, free_value, NULL);
	hmap_free(w->users);
	hmap_foreach(w->hosts, free_value, NULL);
	hmap_free(w->hosts);
	hmap_free(w->hooks);
	hmap_free(w->fds);
	free(w);
}

void
webhook_status_fill(const struct webhook *w, json_t *obj)
{
	json_object_set_new(
		obj, "webhooks",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
			  "definitions", (json_int_t)hmap_count(w->hooks),
			  "accepted", (json_int_t)w->stats.accepted, "sent",
			  (json_int_t)w->stats.sent, "ok",
			  (json_int_t)w->stats.ok, "failed",
			  (json_int_t)w->stats.failed, "skipped",
			  (json_int_t)w->stats.skipped, "overflow",
			  (json_int_t)w->stats.overflow, "denied",
			  (json_int_t)w->stats.denied, "db_errors",
			  (json_int_t)w->stats.db_errors, "loaded", w->loaded));
}

size_t
webhook_writes_waiting(const struct webhook *w)
{
	const struct delivery *dl;
	const struct pw *x;
	size_t n;

	if (w == NULL)
		return 0;
	n = w->ndel;
	TAILQ_FOREACH(x, &w->writes, link)
	n++;
	TAILQ_FOREACH(dl, &w->ins, ilink)
	n++;
	return n;
}
