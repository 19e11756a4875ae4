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
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
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
#include "sse.h"
#include "store.h"
#include "webhook/hookdef.h"
#include "webhook/policy.h"
#include "webhook/template.h"
#include "webhook/webhook.h"
#include "webhook/webhook_int.h"
#include "xmalloc.h"

#define RESPONSE_MAX 100000 /* response bytes used (cloud-api.md §3.4) */
#define RESPONSE_MIN 256    /* first response buffer */
#define CHUNK 512	    /* bytes per hook-response event */
#define POLL_MS 1000	    /* retry poll period */
#define LOAD_RETRY_MS 2000  /* reload after a failed start-up read */
#define MAX_HOSTS 4096	    /* failing hosts remembered */
#define DEL_BATCH 2000	    /* rows per batched DELETE */
#define WQ_BUSY_MS 50	    /* retry after the store queue was full */
#define WQ_FAIL_MS 1000	    /* retry after a write failed */
#define WQ_TRIES 5	    /* attempts of a row UPDATE */
#define WQ_LOG_MS 10000	    /* at most one "queue full" line per period */
#define INS_BATCH 500	    /* rows per batched INSERT */
#define INS_OUT 2	    /* batched INSERTs in the store at once */

/* One delivery of one event to one webhook. */
struct delivery {
	struct webhook *w;
	char hook_id[25];
	int64_t owner;
	int64_t db_id;	   /* webhook_deliveries.id, 0 until inserted */
	unsigned attempts; /* attempts made before this one */
	char *name;
	char *data; /* NUL-terminated, may be NULL */
	size_t data_len;
	char coreid[25];
	uint64_t published_ms;
	uint32_t product_id;
	uint64_t qid; /* store query in flight, 0 = none */
	CURL *easy;   /* while sending */
	struct curl_slist *hdrs;
	struct hookreq req;
	struct hookplan *plan; /* the definition it is sent with */
	json_t *ctx; /* template context, built once (delivery_context) */
	char host[256];
	char errbuf[CURL_ERROR_SIZE];
	bool denied; /* the address guard refused the connection */
	char *resp;  /* response body (first RESPONSE_MAX bytes) */
	size_t resp_len, resp_cap;
	TAILQ_ENTRY(delivery) qlink; /* in hook->ready */
	TAILQ_ENTRY(delivery) alink; /* in w->all */
	bool queued;		     /* in hook->ready */
	TAILQ_ENTRY(delivery) ilink; /* in w->ins */
	bool inserting;		     /* in w->ins */
	struct insb *batch;	     /* in this INSERT in the store */
	bool solo; /* its batch failed: inserted alone (a refused row fails
		      only itself) */
};

/* A row UPDATE waiting for room in the store queue or in it. */
struct pw {
	TAILQ_ENTRY(pw) link;
	struct webhook *w;
	const char *sql; /* static */
	int n;
	char *p[4];
	char hook_id[25]; /* final: the hook's queued count drops on commit */
	bool final;
	unsigned tries;
};

/* A batched DELETE in the store. */
struct delb {
	struct webhook *w;
	size_t n;
	struct fin f[];
};

/* A store query owned by the module. */
struct wq {
	struct webhook *w;
	uint64_t qid;
	store_done_cb cb;
	void *arg;
	void (*arg_free)(void *);
	LIST_ENTRY(wq) link;
};

/* A socket libcurl asked us to watch. */
struct sockev {
	struct event *ev;
	LIST_ENTRY(sockev) link;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- store queries ---- */

static void
wq_done(int r, const struct store_result *res, void *arg)
{
	struct wq *q = arg;

	struct webhook *w = q->w;

	LIST_REMOVE(q, link);
	w->nqs--;
	q->cb(r, res, q->arg);
	free(q);
	webhook_wq_drain(w);
}

int
webhook_wq_submit(struct webhook *w, unsigned flags, const char *sql, int n,
		  const char *const *params, store_done_cb cb, void *arg,
		  void (*arg_free)(void *))
{
	struct wq *q = xcalloc(1, sizeof(*q));
	int r;

	q->w = w;
	q->cb = cb;
	q->arg = arg;
	q->arg_free = arg_free;
	r = store_query(w->d.store, flags, sql, n, params, wq_done, q, &q->qid);
	if (r != 0) {
		free(q);
		return r;
	}
	LIST_INSERT_HEAD(&w->qs, q, link);
	w->nqs++;
	return 0;
}

static void
wq_later(struct webhook *w, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!evtimer_pending(w->wq_ev, NULL))
		evtimer_add(w->wq_ev, &tv);
}

/* The store refused a query (its queue is full): wait, and say so at
   most once per WQ_LOG_MS. */
static void
wq_busy(struct webhook *w)
{
	uint64_t now = mono_ms();

	w->wq_busy++;
	if (w->wq_busy_ms == 0 || now - w->wq_busy_ms >= WQ_LOG_MS) {
		log_warn("webhooks: the database queue was full (%llu times "
			 "in %llu s); delivery rows wait for room",
			 (unsigned long long)w->wq_busy,
			 (unsigned long long)(w->wq_busy_ms == 0
						      ? 0
						      : (now - w->wq_busy_ms) /
								1000));
		w->wq_busy = 0;
		w->wq_busy_ms = now;
	}
	wq_later(w, WQ_BUSY_MS);
}

static void
pw_free(void *arg)
{
	struct pw *x = arg;
	int i;

	for (i = 0; i < x->n; i++)
		free(x->p[i]);
	free(x);
}

static void
hook_unqueue(struct webhook *w, const char *hook_id)
{
	struct hook *h = webhook_hook_find(w, hook_id);

	if (h != NULL && h->queued > 0)
		h->queued--;
}

static void
pw_done(int r, const struct store_result *res, void *arg)
{
	struct pw *x = arg;
	struct webhook *w = x->w;

	(void)res;
	if (r != 0) {
		w->stats.db_errors++;
		if (++x->tries < WQ_TRIES) {
			log_warn("webhooks: could not update a delivery: %s; "
				 "retrying",
				 err_str(r));
			TAILQ_INSERT_TAIL(&w->writes, x, link);
			wq_later(w, WQ_FAIL_MS);
			return;
		}
		log_err("webhooks: could not update a delivery: %s; the row "
			"is reset at the next start",
			err_str(r));
	}
	if (x->final)
		hook_unqueue(w, x->hook_id);
	pw_free(x);
}

/* Queue a row UPDATE; final: the delivery ends with it. */
static void
write_q(struct webhook *w, struct hook *h, bool final, const char *sql, int n,
	const char *const *p)
{
	struct pw *x = xcalloc(1, sizeof(*x));
	int i;

	x->w = w;
	x->sql = sql;
	x->n = n;
	for (i = 0; i < n; i++)
		x->p[i] = p[i] ? xstrdup(p[i]) : NULL;
	x->final = final && h != NULL;
	if (h != NULL)
		snprintf(x->hook_id, sizeof(x->hook_id), "%s", h->id);
	TAILQ_INSERT_TAIL(&w->writes, x, link);
	webhook_wq_drain(w);
}

/* Queue the delete of a delivered row (batched). */
static void
delete_q(struct webhook *w, struct hook *h, int64_t id)
{
	struct fin *f;

	if (w->ndel == w->del_cap) {
		w->del_cap = w->del_cap ? w->del_cap * 2 : 256;
		w->del = xreallocarray(w->del, w->del_cap, sizeof(*w->del));
	}
	f = &w->del[w->ndel++];
	f->id = id;
	snprintf(f->hook_id, sizeof(f->hook_id), "%s", h->id);
	webhook_wq_drain(w);
}

static void
del_done(int r, const struct store_result *res, void *arg)
{
	struct delb *b = arg;
	struct webhook *w = b->w;
	size_t i;

	(void)res;
	w->del_out = false;
	if (r != 0) { /* idempotent: put back and try again */
		w->stats.db_errors++;
		log_warn("webhooks: could not delete %zu delivered rows: %s; "
			 "retrying",
			 b->n, err_str(r));
		if (w->ndel + b->n > w->del_cap) {
			w->del_cap = w->ndel + b->n;
			w->del = xreallocarray(w->del, w->del_cap,
					       sizeof(*w->del));
		}
		memcpy(w->del + w->ndel, b->f, b->n * sizeof(*b->f));
		w->ndel += b->n;
		wq_later(w, WQ_FAIL_MS);
	} else {
		for (i = 0; i < b->n; i++)
			hook_unqueue(w, b->f[i].hook_id);
	}
	free(b);
}

static int
del_submit(struct webhook *w)
{
	size_t n = w->ndel > DEL_BATCH ? DEL_BATCH : w->ndel, i, off = 0;
	char *ids = xmalloc(n * 21 + 3);
	struct delb *b;
	const char *p[1];
	int r;

	ids[off++] = '{';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(ids + off, 22, "%s%lld", i ? "," : "",
					(long long)w->del[i].id);
	ids[off++] = '}';
	ids[off] = '\0';
	b = xmalloc(sizeof(*b) + n * sizeof(b->f[0]));
	b->w = w;
	b->n = n;
	memcpy(b->f, w->del, n * sizeof(b->f[0]));
	p[0] = ids;
	r = webhook_wq_submit(w, STORE_Q_WRITE,
			      "DELETE FROM webhook_deliveries WHERE id = "
			      "ANY($1::bigint[])",
			      1, p, del_done, b, free);
	free(ids);
	if (r != 0) {
		free(b);
		return r;
	}
	w->ndel -= n;
	memmove(w->del, w->del + n, w->ndel * sizeof(*w->del));
	w->del_out = true;
	return 0;
}

static void insert_one(struct delivery *dl, int r, const char *id);

/* A growing string. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sbuf_init(struct sbuf *b)
{
	b->cap = 1024;
	b->p = xmalloc(b->cap);
	b->len = 0;
}

static void
sbuf_putc(struct sbuf *b, char c)
{
	if (b->len + 2 > b->cap) {
		b->cap *= 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	b->p[b->len++] = c;
}

static void
sbuf_puts(struct sbuf *b, const char *s)
{
	for (; *s != '\0'; s++)
		sbuf_putc(b, *s);
}

static const char *
sbuf_str(struct sbuf *b)
{
	b->p[b->len] = '\0';
	return b->p;
}

static void
sbuf_free(struct sbuf *b)
{
	free(b->p);
}

/* Append s as an element of a PostgreSQL array literal ("..." with \ and
   " escaped; NULL for NULL). */
static void
arr_add(struct sbuf *b, bool first, const char *s)
{
	if (!first)
		sbuf_putc(b, ',');
	if (s == NULL) {
		sbuf_puts(b, "NULL");
		return;
	}
	sbuf_putc(b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_putc(b, '\\');
		sbuf_putc(b, *s);
	}
	sbuf_putc(b, '"');
}

/* A batched INSERT in the store. */
struct insb {
	struct webhook *w;
	size_t n;
	struct delivery *dl[];
};

static void
insb_free(void *arg)
{
	struct insb *b = arg;
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->dl[i] != NULL)
			b->dl[i]->batch = NULL;
	free(b);
}

static void
insb_done(int r, const struct store_result *res, void *arg)
{
	struct insb *b = arg;
	size_t i;
	bool ok = r == 0 && store_result_ntuples(res) == (int)b->n;

	b->w->nins--;
	if (r == 0 && !ok)
		r = CINDER_ERR_INTERNAL;
	if (r != 0 && b->n > 1) { /* again one by one, in order */
		for (i = b->n; i-- > 0;) {
			struct delivery *dl = b->dl[i];

			if (dl == NULL)
				continue;
			dl->batch = NULL;
			dl->solo = true;
			dl->inserting = true;
			TAILQ_INSERT_HEAD(&b->w->ins, dl, ilink);
		}
		free(b);
		return;
	}
	for (i = 0; i < b->n; i++) {
		if (b->dl[i] == NULL) /* freed meanwhile */
			continue;
		b->dl[i]->batch = NULL;
		insert_one(b->dl[i], r,
			   ok ? store_result_value(res, (int)i, 0) : NULL);
	}
	free(b);
}

/* Insert up to INS_BATCH waiting deliveries in one statement; the ids
   come back in the deliveries' order. */
static int
ins_submit(struct webhook *w)
{
	struct sbuf a[5];
	struct insb *b;
	struct delivery *dl;
	const char *p[6];
	size_t n = 0, i;
	char when[25];
	int r;

	for (i = 0; i < 5; i++) {
		sbuf_init(&a[i]);
		sbuf_putc(&a[i], '{');
	}
	b = xmalloc(sizeof(*b) + INS_BATCH * sizeof(b->dl[0]));
	b->w = w;
	TAILQ_FOREACH(dl, &w->ins, ilink)
	{
		if (n == INS_BATCH || (n > 0 && dl->solo))
			break;
		sse_format_time(dl->published_ms, when);
		arr_add(&a[0], n == 0, dl->hook_id);
		arr_add(&a[1], n == 0, dl->name);
		arr_add(&a[2], n == 0, dl->data);
		arr_add(&a[3], n == 0, dl->coreid);
		arr_add(&a[4], n == 0, when);
		b->dl[n++] = dl;
		if (dl->solo)
			break;
	}
	b->n = n;
	for (i = 0; i < 5; i++) {
		sbuf_putc(&a[i], '}');
		p[i] = sbuf_str(&a[i]);
	}
	p[5] = w->node;
	r = webhook_wq_submit(
		w, STORE_Q_WRITE,
		"WITH v AS (SELECT nextval(pg_get_serial_sequence("
		"'webhook_deliveries', 'id')) AS id, u.* FROM unnest("
		"$1::text[], $2::text[], $3::text[], $4::text[], "
		"$5::timestamptz[]) WITH "
		"ORDINALITY AS u(h, n, d, c, t, o)), i AS (INSERT INTO "
		"webhook_deliveries (id, webhook_id, event_name, event_data, "
		"device_id, published_at, state, locked_by) OVERRIDING SYSTEM "
		"VALUE SELECT id, h, n, d, c, t, 'in_flight', $6 FROM v) "
		"SELECT id FROM v ORDER BY o",
		6, p, insb_done, b, insb_free);
	for (i = 0; i < 5; i++)
		sbuf_free(&a[i]);
	if (r != 0) {
		free(b);
		return r;
	}
	for (i = 0; i < n; i++) {
		TAILQ_REMOVE(&w->ins, b->dl[i], ilink);
		b->dl[i]->inserting = false;
		b->dl[i]->batch = b;
	}
	w->nins++;
	return 0;
}

void
webhook_wq_drain(struct webhook *w)
{
	struct pw *x;
	struct delivery *dl;
	int r = 0;

	/* a quarter of the store queue at most (4 to WEBHOOK_WQ_MAX):
	   other users' queries keep room */
	size_t max = (size_t)w->d.cfg->db_queue_max / 4;

	if (max > WEBHOOK_WQ_MAX || max < 4)
		max = max < 4 ? 4 : WEBHOOK_WQ_MAX;
	while (w->nqs < max) {
		if (w->ndel > 0 && !w->del_out) {
			if ((r = del_submit(w)) != 0)
				goto refused;
		} else if ((x = TAILQ_FIRST(&w->writes)) != NULL) {
			r = webhook_wq_submit(w, STORE_Q_WRITE, x->sql, x->n,
					      (const char *const *)x->p,
					      pw_done, x, pw_free);
			if (r == CINDER_ERR_BUSY)
				goto refused;
			TAILQ_REMOVE(&w->writes, x, link);
			if (r != 0) {
				pw_done(r, NULL, x);
				x = NULL;
			}
		} else if ((dl = TAILQ_FIRST(&w->ins)) != NULL &&
			   w->nins < INS_OUT) {
			r = ins_submit(w);
			if (r == CINDER_ERR_BUSY)
				goto refused;
			if (r !=
			    0) { /* not storable: refused like a full queue */
				TAILQ_REMOVE(&w->ins, dl, ilink);
				dl->inserting = false;
				insert_one(dl, r, NULL);
			}
		} else {
			return;
		}
	}
	return;
refused:
	if (r == CINDER_ERR_BUSY)
		wq_busy(w);
	else
		wq_later(w, WQ_FAIL_MS);
}

static void
wq_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	webhook_wq_drain(arg);
}

/* ---- hooks ---- */

struct user_count *
webhook_user_get(struct webhook *w, int64_t owner)
{
	struct user_count *u = hmap_get(w->users, &owner, sizeof(owner));

	if (u == NULL) {
		u = xcalloc(1, sizeof(*u));
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
	webhook_user_get(w, owner)->hooks++;
	return h;
}

static void delivery_free(struct delivery *dl);

void
webhook_hook_remove(struct webhook *w, struct hook *h)
{
	struct delivery *dl;

	while ((dl = TAILQ_FIRST(&h->ready)) != NULL)
		delivery_free(dl);
	hmap_remove(w->hooks, h->id, strlen(h->id));
	TAILQ_REMOVE(&w->hlist, h, link);
	webhook_user_get(w, h->owner)->hooks--;
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

/* ---- deliveries ---- */

static struct delivery *
delivery_new(struct webhook *w, const struct hook *h, const char *name,
	     const char *data, size_t data_len, const char *coreid,
	     uint64_t published_ms, uint32_t product_id)
{
	struct delivery *dl = xcalloc(1, sizeof(*dl));

	dl->w = w;
	snprintf(dl->hook_id, sizeof(dl->hook_id), "%s", h->id);
	dl->owner = h->owner;
	dl->name = xstrdup(name);
	if (data != NULL) {
		dl->data = xmalloc(data_len + 1);
		memcpy(dl->data, data, data_len);
		dl->data[data_len] = '\0';
		dl->data_len = data_len;
	}
	snprintf(dl->coreid, sizeof(dl->coreid), "%s", coreid);
	dl->published_ms = published_ms;
	dl->product_id = product_id;
	TAILQ_INSERT_TAIL(&w->all, dl, alink);
	return dl;
}

/* libcurl handles are reused (curl_easy_reset) rather than rebuilt. */
static CURL *
easy_get(struct webhook *w)
{
	if (w->neasy > 0)
		return w->easy_pool[--w->neasy];
	return curl_easy_init();
}

static void
easy_put(struct webhook *w, CURL *e)
{
	curl_multi_remove_handle(w->multi, e);
	if (w->neasy < WEBHOOK_EASY_POOL) {
		curl_easy_reset(e);
		w->easy_pool[w->neasy++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

static void
delivery_free(struct delivery *dl)
{
	struct webhook *w = dl->w;
	struct hook *h;

	if (dl->queued && (h = webhook_hook_find(w, dl->hook_id)) != NULL)
		TAILQ_REMOVE(&h->ready, dl, qlink);
	if (dl->inserting)
		TAILQ_REMOVE(&w->ins, dl, ilink);
	if (dl->batch != NULL) {
		size_t i;

		for (i = 0; i < dl->batch->n; i++)
			if (dl->batch->dl[i] == dl)
				dl->batch->dl[i] = NULL;
	}
	if (dl->qid != 0) {
		struct wq *q;

		LIST_FOREACH(q, &w->qs, link)
		if (q->arg == dl) {
			store_cancel(w->d.store, q->qid);
			LIST_REMOVE(q, link);
			w->nqs--;
			free(q);
			break;
		}
	}
	if (dl->easy != NULL)
		easy_put(w, dl->easy);
	curl_slist_free_all(dl->hdrs);
	hookplan_unref(dl->plan);
	json_decref(dl->ctx);
	hookreq_clear(&dl->req);
	TAILQ_REMOVE(&w->all, dl, alink);
	free(dl->name);
	free(dl->data);
	free(dl->resp);
	free(dl);
}

/* @return the delivery's template context (borrowed) */
static const json_t *
delivery_context(struct delivery *dl)
{
	struct hookdef_event e = {0};

	if (dl->ctx != NULL)
		return dl->ctx;
	e.name = dl->name;
	e.data = dl->data;
	e.data_len = dl->data_len;
	e.coreid = dl->coreid;
	e.published_ms = dl->published_ms;
	e.event_id = (uint64_t)dl->db_id;
	e.product_id = dl->product_id;
	dl->ctx = hookdef_context_some(&e, dl->plan ? hookplan_needs(dl->plan)
						    : HOOKCTX_ALL);
	return dl->ctx;
}

/* Publish data on topic (templated) cut into CHUNK-byte pieces
   "<topic>/<i>"; an empty body is one empty piece. */
static void
publish_chunks(struct webhook *w, const struct delivery *dl, const char *topic,
	       const char *data, size_t len)
{
	char name[BUS_NAME_MAX + 16];
	size_t off = 0, i = 0;

	do {
		size_t n = len - off > CHUNK ? CHUNK : len - off;

		snprintf(name, sizeof(name), "%s/%zu", topic, i++);
		if (events_publish_internal(w->d.events, NULL, dl->owner, name,
					    (const uint8_t *)data + off, n, 60,
					    true, 0) != 0) {
			log_ctx(LOG_LEVEL_DEBUG, dl->hook_id,
				"event %.80s not published (name too long?)",
				name);
			return;
		}
		off += n;
	} while (off < len);
}

/* The rendered topic field of def, or prefix + the event name when the
   hook has none (what the default "<prefix>{{{PARTICLE_EVENT_NAME}}}"
   renders to, without parsing a template per delivery). */
static char *
topic_render(const struct delivery *dl, const struct hookplan *p,
	     const char *field, const char *prefix, const char *dflt,
	     const json_t *ctx)
{
	if (!json_is_string(json_object_get(hookplan_def(p), field)))
		return xasprintf("%s%s", prefix, dl->name);
	return hookplan_render_field(p, field, dflt, ctx);
}

static void
publish_error(struct webhook *w, struct delivery *dl, const struct hookplan *p,
	      const json_t *ctx, const char *msg)
{
	char *topic = topic_render(dl, p, "errorResponseTopic", "hook-error/",
				   "hook-error/{{{PARTICLE_EVENT_NAME}}}", ctx);

	if (topic != NULL)
		publish_chunks(w, dl, topic, msg, strlen(msg));
	free(topic);
}

static void
publish_response(struct webhook *w, struct delivery *dl,
		 const struct hookplan *p, const json_t *ctx)
{
	const json_t *rt = json_object_get(hookplan_def(p), "responseTemplate");
	char *topic, *body = NULL;
	const char *out = dl->resp ? dl->resp : "";
	size_t len = dl->resp_len;

	topic = topic_render(dl, p, "responseTopic", "hook-response/",
			     "hook-response/{{{PARTICLE_EVENT_NAME}}}", ctx);
	if (topic == NULL)
		return;
	if (json_is_string(rt)) {
		json_t *rctx = json_loadb(out, len, 0, NULL);

		if (json_is_object(rctx)) {
			json_object_update_missing(rctx, (json_t *)ctx);
			body = hookplan_render(p, json_string_value(rt), rctx);
			if (body != NULL) {
				out = body;
				len = strlen(body);
			}
		}
		json_decref(rctx);
	}
	publish_chunks(w, dl, topic, out, len);
	free(body);
	free(topic);
}

static void
hook_sent_event(struct webhook *w, const struct delivery *dl)
{
	char name[BUS_NAME_MAX + 16];

	snprintf(name, sizeof(name), "hook-sent/%s", dl->name);
	(void)events_publish_internal(w->d.events, NULL, dl->owner, name, NULL,
				      0, 60, true, 0);
}

static void pump(struct webhook *w, struct hook *h);
static void pump_owner(struct webhook *w, int64_t owner);

/* The delivery ends here: the row is deleted or marked failed. The
   hook's queued count drops when that write has committed. */
static void
finish_final(struct webhook *w, struct hook *h, struct delivery *dl, bool ok,
	     int status, const char *err)
{
	char id[24], st[16];
	const char *p[3];

	snprintf(id, sizeof(id), "%lld", (long long)dl->db_id);
	snprintf(st, sizeof(st), "%d", status);
	p[0] = id;
	if (ok) {
		delete_q(w, h, dl->db_id);
	} else {
		p[1] = st;
		p[2] = err;
		write_q(w, h, true,
			"UPDATE webhook_deliveries SET state = 'failed', "
			"attempts = attempts + 1, last_status = "
			"nullif($2, '0')::int, last_error = $3, locked_by = "
			"NULL, updated_at = now() WHERE id = $1",
			3, p);
		if (h != NULL)
			h->c.given_up++;
	}
}

/* Put the delivery back for a later attempt, or give up. */
static void
finish_retry(struct webhook *w, struct hook *h, struct delivery *dl,
	     bool retryable, int status, const char *err)
{
	long delay =
		retryable ? policy_retry_delay(&w->retry, dl->attempts) : -1;
	char id[24], st[16], ds[24];
	const char *p[4];

	if (delay < 0) {
		finish_final(w, h, dl, false, status, err);
		return;
	}
	snprintf(id, sizeof(id), "%lld", (long long)dl->db_id);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(ds, sizeof(ds), "%ld", delay);
	p[0] = id;
	p[1] = st;
	p[2] = err;
	p[3] = ds;
	write_q(w, h, false,
		"UPDATE webhook_deliveries SET state = 'pending', attempts = "
		"attempts + 1, last_status = nullif($2, '0')::int, "
		"last_error = $3, locked_by = NULL, next_attempt_at = now() + "
		"make_interval(secs => $4::int), updated_at = now() "
		"WHERE id = $1",
		4, p);
	if (h != NULL)
		h->c.retried++;
}

static void
host_record(struct webhook *w, const char *host, bool ok)
{
	struct policy_host *ph = hmap_get(w->hosts, host, strlen(host));

	if (ok) {
		if (ph != NULL) {
			hmap_remove(w->hosts, host, strlen(host));
			free(ph);
		}
		return;
	}
	if (ph == NULL) {
		if (hmap_count(w->hosts) >= MAX_HOSTS)
			return;
		ph = xcalloc(1, sizeof(*ph));
		hmap_put(w->hosts, host, strlen(host), ph, NULL);
	}
	policy_host_record(ph, false, mono_ms(),
			   (unsigned)w->d.cfg->webhook_host_errors,
			   (uint64_t)w->d.cfg->webhook_host_sleep * 1000);
}

/* A request ended: status 0 means no answer (errtext says why). */
static void
finish(struct delivery *dl, int status, const char *errtext)
{
	struct webhook *w = dl->w;
	struct hook *h = webhook_hook_find(w, dl->hook_id);
	struct user_count *u = webhook_user_get(w, dl->owner);
	int64_t owner = dl->owner;
	bool ok = policy_success(status);
	char msg[512];
	const json_t *ctx;

	if (u->inflight > 0)
		u->inflight--;
	if (h != NULL && h->inflight > 0)
		h->inflight--;
	dl->attempts++;
	host_record(w, dl->host, ok);
	if (h == NULL) { /* deleted meanwhile; its rows went with it */
		delivery_free(dl);
		pump_owner(w, owner);
		return;
	}
	if (dl->plan == NULL)
		dl->plan = hookplan_ref(webhook_hook_plan(h));
	ctx = delivery_context(dl);
	if (ok) {
		h->c.ok++;
		w->stats.ok++;
		publish_response(w, dl, dl->plan, ctx);
		finish_final(w, h, dl, true, status, "");
	} else {
		if (status != 0)
			snprintf(msg, sizeof(msg), "error status %d from %s",
				 status, dl->host);
		else
			snprintf(msg, sizeof(msg), "%.250s (%.255s)",
				 errtext[0] ? errtext : "request failed",
				 dl->host);
		h->c.failed++;
		w->stats.failed++;
		snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
		log_ctx(LOG_LEVEL_INFO, h->id, "delivery %lld attempt %u: %s",
			(long long)dl->db_id, dl->attempts, msg);
		publish_error(w, dl, dl->plan, ctx, msg);
		finish_retry(w, h, dl, policy_retryable(status), status, msg);
	}
	delivery_free(dl);
	pump_owner(w, owner);
}

/* ---- libcurl on the loop ---- */

static void check_done(struct webhook *w);

static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	int running, action = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(w->multi, fd, action, &running);
	check_done(w);
}

static int
curl_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct webhook *w = userp;
	struct sockev *se = socketp;
	short kind = EV_PERSIST;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (se != NULL) {
			/* kept for the next socket: a reused connection is
			   removed after each request and added for the next */
			event_del(se->ev);
			LIST_REMOVE(se, link);
			if (w->nsock_idle < WEBHOOK_EASY_POOL) {
				LIST_INSERT_HEAD(&w->socks_idle, se, link);
				w->nsock_idle++;
			} else {
				event_free(se->ev);
				free(se);
			}
			curl_multi_assign(w->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (se == NULL && (se = LIST_FIRST(&w->socks_idle)) != NULL) {
		LIST_REMOVE(se, link);
		w->nsock_idle--;
		event_assign(se->ev, w->d.base, s, kind, sock_event_cb, w);
		LIST_INSERT_HEAD(&w->socks, se, link);
		curl_multi_assign(w->multi, s, se);
	} else if (se == NULL) {
		se = xcalloc(1, sizeof(*se));
		se->ev = event_new(w->d.base, s, kind, sock_event_cb, w);
		LIST_INSERT_HEAD(&w->socks, se, link);
		curl_multi_assign(w->multi, s, se);
	} else {
		event_del(se->ev);
		event_assign(se->ev, w->d.base, s, kind, sock_event_cb, w);
	}
	event_add(se->ev, NULL);
	return 0;
}

static void
curl_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(w);
}

static int
curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct webhook *w = userp;
	struct timeval tv;

	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(w->curl_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(w->curl_timer, &tv);
	return 0;
}

static void
check_done(struct webhook *w)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
		struct delivery *dl = NULL;
		long code = 0;
		char err[CURL_ERROR_SIZE + 64];

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &dl);
		if (dl == NULL)
			continue;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE,
					  &code);
		else if (dl->denied)
			snprintf(err, sizeof(err),
				 "address not allowed for webhooks");
		else
			snprintf(err, sizeof(err), "%s",
				 dl->errbuf[0]
					 ? dl->errbuf
					 : curl_easy_strerror(m->data.result));
		if (code == 0 && m->data.result == CURLE_OK)
			snprintf(err, sizeof(err), "no HTTP status");
		if (dl->denied)
			w->stats.denied++;
		easy_put(w, dl->easy);
		dl->easy = NULL;
		finish(dl, (int)code, code != 0 ? "" : err);
	}
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct delivery *dl = arg;
	size_t n = size * nmemb, take;

	if (dl->resp_len >= RESPONSE_MAX)
		return n;
	take = n > RESPONSE_MAX - dl->resp_len ? RESPONSE_MAX - dl->resp_len
					       : n;
	if (dl->resp_len + take + 1 > dl->resp_cap) {
		/* grown as the body arrives: most answers are a few bytes,
		   and a 100 KB buffer per delivery costs more than the
		   request */
		size_t cap = dl->resp_cap ? dl->resp_cap : RESPONSE_MIN;

		while (cap < dl->resp_len + take + 1)
			cap *= 2;
		if (cap > RESPONSE_MAX + 1)
			cap = RESPONSE_MAX + 1;
		dl->resp = xreallocarray(dl->resp, cap, 1);
		dl->resp_cap = cap;
	}
	memcpy(dl->resp + dl->resp_len, ptr, take);
	dl->resp_len += take;
	dl->resp[dl->resp_len] = '\0';
	return n;
}

/* The address guard: every connection goes through here. */
static curl_socket_t
opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct delivery *dl = arg;

	(void)purpose;
	if (!policy_addr_allowed(&a->addr, &dl->w->allow)) {
		dl->denied = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

/* host[:port] of a URL, lower case. */
static void
url_host(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://"), *at, *end;
	size_t n, i;

	p = p ? p + 3 : url;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (at != NULL)
		p = at + 1;
	n = (size_t)(end - p);
	if (n >= outlen)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] =
			(char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
	out[n] = '\0';
}

static void
start_skipped(struct webhook *w, struct hook *h, struct delivery *dl,
	      const json_t *ctx)
{
	char msg[400];

	snprintf(msg, sizeof(msg),
		 "Sleeping: too many errors from %s; the delivery will be "
		 "retried",
		 dl->host);
	h->c.skipped++;
	w->stats.skipped++;
	snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
	publish_error(w, dl, dl->plan, ctx, msg);
	dl->attempts++;
	finish_retry(w, h, dl, true, 0, msg);
	delivery_free(dl);
}

static void
slist_free(void *l)
{
	curl_slist_free_all(l);
}

/* Send one delivery (it has left the ready queue). */
static void
start(struct webhook *w, struct hook *h, struct delivery *dl)
{
	const struct conf *cfg = w->d.cfg;
	char err[HOOKDEF_ERRLEN];
	const json_t *ctx;
	struct curl_slist *hdrs;
	bool verify;
	size_t i;
	int r;

	if (dl->plan == NULL)
		dl->plan = hookplan_ref(webhook_hook_plan(h));
	ctx = delivery_context(dl);
	r = hookreq_build_plan(dl->plan, ctx, &dl->req, err, sizeof(err));
	if (r != 0) {
		h->c.failed++;
		w->stats.failed++;
		snprintf(h->last_error, sizeof(h->last_error), "%s", err);
		publish_error(w, dl, dl->plan, ctx, err);
		finish_final(w, h, dl, false, 0, err);
		delivery_free(dl);
		goto out;
	}
	url_host(dl->req.url, dl->host, sizeof(dl->host));
	{
		struct policy_host *ph =
			hmap_get(w->hosts, dl->host, strlen(dl->host));

		if (ph != NULL && policy_host_skipping(ph, mono_ms())) {
			start_skipped(w, h, dl, ctx);
			goto out;
		}
	}
	verify = !json_is_false(
		json_object_get(hookplan_def(dl->plan), "rejectUnauthorized"));
	dl->easy = easy_get(w);
	if (dl->easy == NULL) {
		finish_retry(w, h, dl, true, 0, "could not start a request");
		delivery_free(dl);
		goto out;
	}
	/* the same header lines for every request of a plan without header
	   tags: its list is built once and kept with the plan (a delivery
	   holds the plan until its transfer is removed) */
	hdrs = hookplan_headers_static(dl->plan) ? hookplan_user(dl->plan)
						 : NULL;
	if (hdrs == NULL) {
		for (i = 0; i < dl->req.nheaders; i++)
			hdrs = curl_slist_append(hdrs, dl->req.headers[i]);
		/* no Expect: 100-continue round trip, no default Accept */
		hdrs = curl_slist_append(hdrs, "Expect:");
		if (hookplan_headers_static(dl->plan))
			hookplan_set_user(dl->plan, hdrs, slist_free);
		else
			dl->hdrs = hdrs;
	}
	curl_easy_setopt(dl->easy, CURLOPT_URL, dl->req.url);
	curl_easy_setopt(dl->easy, CURLOPT_PRIVATE, dl);
	curl_easy_setopt(dl->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(dl->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(dl->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(dl->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(dl->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(dl->easy, CURLOPT_TIMEOUT_MS,
			 (long)cfg->webhook_timeout * 1000);
	curl_easy_setopt(dl->easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)cfg->webhook_timeout * 1000);
	curl_easy_setopt(dl->easy, CURLOPT_ERRORBUFFER, dl->errbuf);
	curl_easy_setopt(dl->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(dl->easy, CURLOPT_WRITEDATA, dl);
	curl_easy_setopt(dl->easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(dl->easy, CURLOPT_OPENSOCKETDATA, dl);
	curl_easy_setopt(dl->easy, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(dl->easy, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (cfg->webhook_ca_file[0] != '\0')
		curl_easy_setopt(dl->easy, CURLOPT_CAINFO,
				 cfg->webhook_ca_file);
	curl_easy_setopt(dl->easy, CURLOPT_CUSTOMREQUEST, dl->req.method);
	if (strcmp(dl->req.method, "GET") == 0)
		curl_easy_setopt(dl->easy, CURLOPT_HTTPGET, 1L);
	if (dl->req.body != NULL) {
		curl_easy_setopt(dl->easy, CURLOPT_POSTFIELDS, dl->req.body);
		curl_easy_setopt(dl->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)dl->req.body_len);
	}
	if (dl->req.username != NULL) {
		curl_easy_setopt(dl->easy, CURLOPT_HTTPAUTH,
				 (long)CURLAUTH_BASIC);
		curl_easy_setopt(dl->easy, CURLOPT_USERNAME, dl->req.username);
		curl_easy_setopt(dl->easy, CURLOPT_PASSWORD, dl->req.password);
	}
	if (curl_multi_add_handle(w->multi, dl->easy) != CURLM_OK) {
		finish_retry(w, h, dl, true, 0, "could not start a request");
		delivery_free(dl);
		goto out;
	}
	h->inflight++;
	webhook_user_get(w, h->owner)->inflight++;
	h->c.sent++;
	w->stats.sent++;
	hook_sent_event(w, dl);
out:
	return;
}

/* Send what the caps allow. */
static void
pump(struct webhook *w, struct hook *h)
{
	struct user_count *u = webhook_user_get(w, h->owner);
	struct delivery *dl;

	while ((dl = TAILQ_FIRST(&h->ready)) != NULL &&
	       h->inflight < (size_t)w->d.cfg->webhook_max_inflight &&
	       u->inflight < (unsigned)w->d.cfg->webhook_user_inflight) {
		TAILQ_REMOVE(&h->ready, dl, qlink);
		dl->queued = false;
		start(w, h, dl);
	}
}

static void
pump_owner(struct webhook *w, int64_t owner)
{
	struct hook *h, *next;

	for (h = TAILQ_FIRST(&w->hlist); h != NULL; h = next) {
		next = TAILQ_NEXT(h, link);
		if (h->owner == owner && !TAILQ_EMPTY(&h->ready))
			pump(w, h);
	}
}

static void
enqueue(struct webhook *w, struct hook *h, struct delivery *dl)
{
	TAILQ_INSERT_TAIL(&h->ready, dl, qlink);
	dl->queued = true;
	pump(w, h);
}

/* ---- accepting events ---- */

/* The delivery's row is stored (id) or not (r). */
static void
insert_one(struct delivery *dl, int r, const char *v)
{
	struct webhook *w = dl->w;
	struct hook *h = webhook_hook_find(w, dl->hook_id);

	if (h == NULL) {
		delivery_free(dl);
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
		delivery_free(dl);
		return;
	}
	dl->db_id = strtoll(v, NULL, 10);
	enqueue(w, h, dl);
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
				publish_error(w, &tmp, webhook_hook_plan(h),
					      ctx,
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
	dl = delivery_new(
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
	struct hook *h, *next;
	size_t n;

	/* cloud-generated events (hook-* among them) never trigger hooks */
	if ((be->flags & BUS_EV_HIDDEN) || be->source == BUS_SRC_INTERNAL ||
	    be->owner_id <= 0 || !w->loaded)
		return;
	for (h = TAILQ_FIRST(&w->hlist); h != NULL; h = next) {
		next = TAILQ_NEXT(h, link);
		if (h->disabled || h->owner != be->owner_id)
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

/* ---- retries: the poll ---- */

static void
poll_done(int r, const struct store_result *res, void *arg)
{
	struct webhook *w = arg;
	int i, n;
	struct timeval tv = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};

	w->polling = false;
	n = r == 0 ? store_result_ntuples(res) : 0;
	for (i = 0; i < n; i++) {
		const char *hid = store_result_value(res, i, 1);
		struct hook *h = hid ? webhook_hook_find(w, hid) : NULL;
		struct delivery *dl;
		const char *data = store_result_value(res, i, 3);

		if (h == NULL)
			continue;
		dl = delivery_new(
			w, h, store_result_value(res, i, 2), data,
			data ? store_result_length(res, i, 3) : 0,
			store_result_value(res, i, 4)
				? store_result_value(res, i, 4)
				: "particle-internal",
			strtoull(store_result_value(res, i, 5), NULL, 10), 0);
		dl->db_id = strtoll(store_result_value(res, i, 0), NULL, 10);
		dl->attempts = (unsigned)strtoul(store_result_value(res, i, 6),
						 NULL, 10);
		enqueue(w, h, dl);
	}
	evtimer_add(w->poll_ev, &tv);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	const char *p[2] = {w->node, NULL};
	struct timeval tv = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};

	(void)fd;
	(void)what;
	if (w->polling)
		return;
	if (!store_is_up(w->d.store)) {
		evtimer_add(w->poll_ev, &tv);
		return;
	}
	w->polling = true;
	if (webhook_wq_submit(
		    w, STORE_Q_READ,
		    "UPDATE webhook_deliveries SET state = 'in_flight', "
		    "locked_by = $1, updated_at = now() WHERE id IN ("
		    "SELECT id FROM webhook_deliveries WHERE state = "
		    "'pending' AND next_attempt_at <= now() ORDER BY "
		    "next_attempt_at LIMIT 200 FOR UPDATE SKIP "
		    "LOCKED) RETURNING id, webhook_id, event_name, "
		    "event_data, device_id, (extract(epoch FROM "
		    "published_at) * 1000)::bigint, attempts",
		    1, p, poll_done, w, NULL) != 0) {
		w->polling = false;
		evtimer_add(w->poll_ev, &tv);
	}
}

/* ---- start-up load ---- */

static void
counts_done(int r, const struct store_result *res, void *arg)
{
	struct webhook *w = arg;
	int i, n = r == 0 ? store_result_ntuples(res) : 0;

	for (i = 0; i < n; i++) {
		struct hook *h =
			webhook_hook_find(w, store_result_value(res, i, 0));

		if (h != NULL)
			h->queued = strtoul(store_result_value(res, i, 1), NULL,
					    10);
	}
	w->loaded = true;
	log_notice("webhooks: %zu definitions loaded",
		   (size_t)hmap_count(w->hooks));
	poll_cb(-1, 0, w);
}

static void
hooks_done(int r, const struct store_result *res, void *arg)
{
	struct webhook *w = arg;
	struct timeval tv = {LOAD_RETRY_MS / 1000, 0};
	int i, n;

	if (r != 0) {
		log_warn("webhooks: could not load definitions: %s; retrying",
			 err_str(r));
		evtimer_add(w->load_ev, &tv);
		return;
	}
	n = store_result_ntuples(res);
	for (i = 0; i < n; i++) {
		const char *id = store_result_value(res, i, 0);
		json_t *def =
			json_loads(store_result_value(res, i, 2), 0, NULL);

		if (!json_is_object(def) ||
		    !json_is_string(json_object_get(def, "url")) ||
		    !json_is_string(json_object_get(def, "event")) ||
		    webhook_hook_find(w, id) != NULL) {
			log_warn("webhook %s: stored definition unusable", id);
			json_decref(def);
			continue;
		}
		webhook_hook_add(
			w, id, strtoll(store_result_value(res, i, 1), NULL, 10),
			def, store_result_value(res, i, 3));
	}
	if (webhook_wq_submit(
		    w, STORE_Q_READ,
		    "SELECT webhook_id, count(*) FROM webhook_deliveries "
		    "WHERE state IN ('pending', 'in_flight') GROUP BY 1",
		    0, NULL, counts_done, w, NULL) != 0)
		counts_done(CINDER_ERR_UNAVAILABLE, NULL, w);
}

static void
load_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	const char *p[1] = {w->node};
	struct timeval tv = {LOAD_RETRY_MS / 1000, 0};

	(void)fd;
	(void)what;
	/* what this node had on the wire when it stopped goes again (once:
	   a write waits out an outage) */
	if (!w->reset_sent)
		write_q(w, NULL, false,
			"UPDATE webhook_deliveries SET state = 'pending', "
			"locked_by = NULL WHERE state = 'in_flight' AND "
			"(locked_by = $1 OR locked_by IS NULL)",
			1, p);
	w->reset_sent = true;
	if (webhook_wq_submit(
		    w, STORE_Q_READ,
		    "SELECT id, owner_id, config::text, " SQL_TIME(
			    "created_at") " FROM webhooks WHERE product_id "
					  "IS NULL ORDER BY created_at",
		    0, NULL, hooks_done, w, NULL) != 0)
		evtimer_add(w->load_ev, &tv);
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
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 256L);
	w->curl_timer = evtimer_new(deps->base, curl_timer_event, w);
	w->poll_ev = evtimer_new(deps->base, poll_cb, w);
	w->load_ev = evtimer_new(deps->base, load_cb, w);
	w->wq_ev = evtimer_new(deps->base, wq_ev_cb, w);
	if (deps->http != NULL && http_add_routes(deps->http, h_webhooks_routes,
						  h_webhooks_nroutes, w) != 0) {
		log_err("webhooks: could not add the routes");
		r = CINDER_ERR_INVAL;
		goto out;
	}
	w->sub = bus_subscribe(events_bus(deps->events), "", on_bus, w);
	load_cb(-1, 0, w);
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
		delivery_free(dl);
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
		pw_free(x);
	}
	free(w->del);
	while ((h = TAILQ_FIRST(&w->hlist)) != NULL)
		webhook_hook_remove(w, h);
	while (w->neasy > 0)
		curl_easy_cleanup(w->easy_pool[--w->neasy]);
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
