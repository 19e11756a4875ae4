/* SPDX-License-Identifier: MIT */
/*
 * Webhook delivery rows (webhook.c has the overview): the module's own
 * store queries, kept to a share of the store queue; row writes waiting
 * for room (UPDATEs retried, DELETEs of delivered rows and INSERTs of
 * accepted deliveries batched into one statement each); the poll that
 * picks up retries due; and the start-up load of the definitions and
 * their queued counts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"
#include "err.h"
#include "fmt.h"
#include "hmap.h"
#include "log.h"
#include "sse.h"
#include "store.h"
#include "webhook/webhook.h"
#include "webhook/webhook_int.h"
#include "xmalloc.h"

#define POLL_MS 1000	   /* retry poll period */
#define LOAD_RETRY_MS 2000 /* reload after a failed start-up read */
#define DEL_BATCH 2000	   /* rows per batched DELETE */
#define WQ_BUSY_MS 50	   /* retry after the store queue was full */
#define WQ_FAIL_MS 1000	   /* retry after a write failed */
#define WQ_TRIES 5	   /* attempts of a row UPDATE */
#define WQ_LOG_MS 10000	   /* at most one "queue full" line per period */
#define INS_BATCH 500	   /* rows per batched INSERT */
#define INS_OUT 2	   /* batched INSERTs in the store at once */

/* A batched DELETE in the store. */
struct delb {
	struct webhook *w;
	size_t n;
	struct fin f[];
};

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
	uint64_t now = webhook_mono_ms();

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

void
webhook_pw_free(void *arg)
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
	webhook_pw_free(x);
}

/* Queue a row UPDATE; final: the delivery ends with it. */
void
webhook_write_q(struct webhook *w, struct hook *h, bool final, const char *sql,
		int n, const char *const *p)
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
void
webhook_delete_q(struct webhook *w, struct hook *h, int64_t id)
{
	struct fin *f;

	if (w->ndel == w->del_cap) {
		w->del_cap = w->del_cap ? w->del_cap * 2 : 256;
		w->del = xreallocarray(w->del, w->del_cap, sizeof(*w->del));
	}
	f = &w->del[w->ndel++];
	f->id = id;
	fmt_strcpy(f->hook_id, sizeof(f->hook_id), h->id);
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
	for (i = 0; i < n; i++) {
		if (i > 0)
			ids[off++] = ',';
		off += fmt_i64(ids + off, w->del[i].id);
	}
	ids[off++] = '}';
	ids[off] = '\0';
	b = xmalloc(sizeof(*b) + n * sizeof(b->f[0]));
	b->w = w;
	b->n = n;
	memcpy(b->f, w->del, n * sizeof(b->f[0]));
	p[0] = ids;
	r = webhook_wq_submit(w, STORE_Q_WRITE | STORE_Q_PREPARE,
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

/* Room for n more bytes and the NUL. */
static void
sbuf_room(struct sbuf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap *= 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
}

static void
sbuf_putc(struct sbuf *b, char c)
{
	sbuf_room(b, 1);
	b->p[b->len++] = c;
}

static void
sbuf_putn(struct sbuf *b, const char *s, size_t n)
{
	sbuf_room(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_putn(b, s, strlen(s));
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
	while (*s != '\0') { /* runs without " or \ copied at once */
		size_t n = strcspn(s, "\"\\");

		sbuf_putn(b, s, n);
		s += n;
		if (*s != '\0') {
			sbuf_putc(b, '\\');
			sbuf_putc(b, *s++);
		}
	}
	sbuf_putc(b, '"');
}

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
		webhook_insert_one(b->dl[i], r,
				   ok ? store_result_value(res, (int)i, 0)
				      : NULL);
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
		w, STORE_Q_WRITE | STORE_Q_PREPARE,
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
					      pw_done, x, webhook_pw_free);
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
				webhook_insert_one(dl, r, NULL);
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

void
webhook_wq_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	webhook_wq_drain(arg);
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
		dl = webhook_delivery_new(
			w, h, store_result_value(res, i, 2), data,
			data ? store_result_length(res, i, 3) : 0,
			store_result_value(res, i, 4)
				? store_result_value(res, i, 4)
				: "particle-internal",
			strtoull(store_result_value(res, i, 5), NULL, 10), 0);
		dl->db_id = strtoll(store_result_value(res, i, 0), NULL, 10);
		dl->attempts = (unsigned)strtoul(store_result_value(res, i, 6),
						 NULL, 10);
		webhook_enqueue(w, h, dl);
	}
	evtimer_add(w->poll_ev, &tv);
}

void
webhook_poll_cb(evutil_socket_t fd, short what, void *arg)
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
	webhook_poll_cb(-1, 0, w);
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

void
webhook_load_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	const char *p[1] = {w->node};
	struct timeval tv = {LOAD_RETRY_MS / 1000, 0};

	(void)fd;
	(void)what;
	/* what this node had on the wire when it stopped goes again (once:
	   a write waits out an outage) */
	if (!w->reset_sent)
		webhook_write_q(
			w, NULL, false,
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
