/* SPDX-License-Identifier: MIT */
/*
 * Application hashes (see apphash.h). Devices not in memory are compared
 * in batches: their Describes gather for APPHASH_BATCH_MS (or up to
 * APPHASH_BATCH_MAX devices) and go out as one statement over
 * jsonb_to_recordset(), which locks the rows, returns each stored hash
 * and stores the new one, so two cinderd processes or a retried write
 * never report one change twice, and a reconnect storm costs one
 * statement per batch rather than one per device. A known device costs
 * nothing unless its hash changed; then its new hash joins the next
 * batch (the event is published at once).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "err.h"
#include "fmt.h"
#include "healer/apphash.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define APPHASH_ID_MAX 24
#define APPHASH_LEN 64
/* How long compares gather, and how many devices a statement holds:
 * ~110 bytes of JSON each, so ~14 KB a statement. libpq's output buffer
 * grows to the largest it was given and never shrinks (1,000 devices,
 * ~110 KB, left it at 256 KiB after a connect storm, B2). */
#define APPHASH_BATCH_MS 5
#define APPHASH_BATCH_MAX 128

/*
 * Store each record's hash; return the one it replaced (NULL: none yet)
 * with the record's number. The rows are locked in device id order, so
 * two processes' batches cannot deadlock on each other. A row whose hash
 * is the same (a device back with the application it had, the usual
 * case) is only locked, not rewritten: an update would be a new version
 * of the whole row per reconnect. The rows are found by the primary key
 * through "= ANY (ids)", as in registry_pres.c: a join on
 * jsonb_to_recordset() alone read the whole table.
 */
static const char batch_sql[] =
	"WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) "
	"AS v(n int, id text, h text)), "
	"o AS (SELECT d.device_id, d.app_hash AS old FROM devices d "
	"JOIN v ON d.device_id = v.id "
	"WHERE d.device_id = ANY (ARRAY(SELECT id FROM v)) "
	"ORDER BY d.device_id FOR UPDATE OF d), "
	"u AS (UPDATE devices d SET app_hash = v.h FROM v, o "
	"WHERE d.device_id = v.id AND o.device_id = v.id "
	"AND d.device_id = ANY (ARRAY(SELECT device_id FROM o)) "
	"AND o.old IS DISTINCT FROM v.h) "
	"SELECT v.n, o.old FROM v JOIN o ON o.device_id = v.id";

const char *
apphash_batch_statement(void)
{
	return batch_sql;
}

/* One device in a batch. */
struct apphash_item {
	int64_t owner_id;
	const char *old; /* the answer's, while it is read */
	bool cmp;	 /* a compare (else only a store) */
	char device_id[APPHASH_ID_MAX + 1];
	char hash[APPHASH_LEN + 1]; /* what it stores */
};

/* A batch, gathering or out to the store. A device is in it once. */
struct apphash_q {
	struct apphash *a;
	struct apphash_q *next, *prev; /* out */
	uint64_t seq;		       /* its number, from 1 */
	uint64_t id;		       /* for store_cancel() */
	size_t n, cap;
	struct apphash_item *items; /* in the order they came */
};

/* What memory holds for a device. */
struct apphash_ent {
	char hash[APPHASH_LEN + 1]; /* the last Describe's */
	uint64_t cseq;		    /* batch with its compare, 0: none out */
	uint64_t sseq;		    /* batch with its last store */
	size_t si;		    /* that store's item, while it gathers */
};

struct apphash {
	struct store *st;
	apphash_publish_cb publish;
	void *arg;
	struct hmap *devs;	/* device id -> struct apphash_ent */
	struct event *ev;	/* flushes pend; NULL: flush at once */
	struct apphash_q *pend; /* gathering, or NULL */
	struct apphash_q *qs;	/* out */
	uint64_t seq;		/* the last batch's number */
};

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	apphash_flush(arg);
}

struct apphash *
apphash_new(struct event_base *base, struct store *st,
	    apphash_publish_cb publish, void *arg)
{
	struct apphash *a = xcalloc(1, sizeof(*a));

	a->st = st;
	a->publish = publish;
	a->arg = arg;
	a->devs = hmap_new();
	if (base != NULL && st != NULL)
		a->ev = event_new(base, -1, 0, flush_cb, a);
	return a;
}

static int
free_ent(const void *k, size_t len, void *v, void *arg)
{
	(void)k;
	(void)len;
	(void)arg;
	free(v);
	return 0;
}

static void
q_free(struct apphash_q *q)
{
	if (q == NULL)
		return;
	free(q->items);
	free(q);
}

void
apphash_free(struct apphash *a)
{
	struct apphash_q *q, *next;

	if (a == NULL)
		return;
	if (a->ev != NULL)
		event_free(a->ev);
	/* Not sent: the next start compares these devices again. */
	q_free(a->pend);
	for (q = a->qs; q != NULL; q = next) {
		next = q->next;
		(void)store_cancel(a->st, q->id); /* batch_done() never runs */
		q_free(q);
	}
	hmap_foreach(a->devs, free_ent, NULL);
	hmap_free(a->devs);
	free(a);
}

size_t
apphash_count(const struct apphash *a)
{
	return hmap_count(a->devs);
}

static void
publish(struct apphash *a, const char *device_id, int64_t owner_id,
	const char *hash)
{
	log_info("device %s: application hash %s", device_id, hash);
	a->publish(device_id, owner_id, hash, a->arg);
}

/* Add to the gathering batch (made, and its flush armed, if none). */
static struct apphash_item *
item_add(struct apphash *a, const char *device_id, const char *hash,
	 int64_t owner_id, bool cmp)
{
	struct apphash_q *q = a->pend;
	struct apphash_item *it;
	struct timeval tv = {0, APPHASH_BATCH_MS * 1000};

	if (q == NULL) {
		q = a->pend = xcalloc(1, sizeof(*q));
		q->a = a;
		q->seq = ++a->seq;
		if (a->ev != NULL)
			evtimer_add(a->ev, &tv);
	}
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 16;
		q->items = xreallocarray(q->items, q->cap, sizeof(*q->items));
	}
	it = &q->items[q->n++];
	memset(it, 0, sizeof(*it));
	it->owner_id = owner_id;
	it->cmp = cmp;
	memcpy(it->device_id, device_id, strlen(device_id) + 1);
	memcpy(it->hash, hash, APPHASH_LEN + 1);
	return it;
}

/* Send the batch now if it is full or there is no timer to wait for. */
static void
maybe_flush(struct apphash *a)
{
	if (a->pend != NULL &&
	    (a->ev == NULL || a->pend->n >= APPHASH_BATCH_MAX))
		apphash_flush(a);
}

/* Store a hash known to be new (the compare is already done). */
static void
store_set(struct apphash *a, struct apphash_ent *e, const char *device_id,
	  const char *hash)
{
	if (a->st == NULL)
		return;
	if (a->pend != NULL && e->sseq == a->pend->seq) {
		/* Still gathering: the later hash replaces it. */
		memcpy(a->pend->items[e->si].hash, hash, APPHASH_LEN + 1);
		return;
	}
	item_add(a, device_id, hash, 0, false);
	e->sseq = a->pend->seq;
	e->si = a->pend->n - 1;
	maybe_flush(a);
}

static void
q_unlink(struct apphash_q *q)
{
	struct apphash *a = q->a;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		a->qs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
}

/* The compares of q failed: memory forgets those devices, so that their
   next Describe compares again. */
static void
q_failed(struct apphash_q *q, int r)
{
	struct apphash *a = q->a;
	struct apphash_ent *e;
	size_t i, n = 0;

	for (i = 0; i < q->n; i++) {
		const char *id = q->items[i].device_id;

		if (!q->items[i].cmp)
			continue;
		n++;
		e = hmap_get(a->devs, id, strlen(id));
		if (e != NULL && e->cseq == q->seq)
			free(hmap_remove(a->devs, id, strlen(id)));
	}
	if (n > 0)
		log_info("application hash of %zu devices not compared with "
			 "the stored one (%s): no spark/device/app-hash for "
			 "them",
			 n, err_str(r));
	if (n < q->n)
		log_info("application hash of %zu devices not stored: %s",
			 q->n - n, err_str(r));
}

/* One compare's answer: old is the stored hash it replaced. */
static void
item_done(struct apphash_q *q, const struct apphash_item *it)
{
	struct apphash *a = q->a;
	struct apphash_ent *e;
	const char *old = it->old;

	log_debug("device %s: application hash %s, stored %s", it->device_id,
		  it->hash, old != NULL ? old : "none");
	if (old != NULL && strcmp(old, it->hash) != 0)
		publish(a, it->device_id, it->owner_id, it->hash);
	e = hmap_get(a->devs, it->device_id, strlen(it->device_id));
	if (e != NULL && e->cseq == q->seq) {
		e->cseq = 0;
		/* A Describe with yet another hash came meanwhile. */
		if (strcmp(e->hash, it->hash) != 0) {
			publish(a, it->device_id, it->owner_id, e->hash);
			store_set(a, e, it->device_id, e->hash);
		}
	}
}

static void
batch_done(int r, const struct store_result *res, void *arg)
{
	struct apphash_q *q = arg;
	int row, nrows;
	size_t i;

	q_unlink(q);
	if (r != 0) {
		q_failed(q, r);
		q_free(q);
		return;
	}
	nrows = store_result_ntuples(res);
	for (row = 0; row < nrows; row++) {
		long n = strtol(store_result_value(res, row, 0), NULL, 10);

		if (n >= 0 && (size_t)n < q->n &&
		    !store_result_is_null(res, row, 1))
			q->items[n].old = store_result_value(res, row, 1);
	}
	/* In the order the Describes came. A device whose row is missing
	   has no old hash: nothing is published. */
	for (i = 0; i < q->n; i++)
		if (q->items[i].cmp)
			item_done(q, &q->items[i]);
	q_free(q);
}

void
apphash_flush(struct apphash *a)
{
	struct apphash_q *q = a->pend;
	const char *p[1];
	char *json;
	size_t len = 2, i;
	int r;

	if (q == NULL)
		return;
	a->pend = NULL;
	if (a->ev != NULL)
		evtimer_del(a->ev);
	/* by hand: open_memstream and fprintf were ~6k instructions a
	   device (callgrind of B1's loop thread) */
	for (i = 0; i < q->n; i++)
		len += sizeof(",{\"n\":,\"id\":,\"h\":\"\"}") + FMT_INT_MAX +
		       FMT_JSON_STR_MAX(strlen(q->items[i].device_id)) +
		       strlen(q->items[i].hash);
	json = xmalloc(len + 1);
	len = 0;
	json[len++] = '[';
	for (i = 0; i < q->n; i++) {
		if (i > 0)
			json[len++] = ',';
		memcpy(json + len, "{\"n\":", 5);
		len += 5;
		len += fmt_u64(json + len, i);
		memcpy(json + len, ",\"id\":", 6);
		len += 6;
		/* ids are hex, but not checked here */
		len += fmt_json_str(json + len, q->items[i].device_id);
		memcpy(json + len, ",\"h\":\"", 6);
		len += 6;
		memcpy(json + len, q->items[i].hash, strlen(q->items[i].hash));
		len += strlen(q->items[i].hash); /* hex */
		memcpy(json + len, "\"}", 2);
		len += 2;
	}
	json[len++] = ']';
	json[len] = '\0';
	p[0] = json;
	log_debug("application hash: %zu devices in one statement", q->n);
	r = store_query(a->st, STORE_Q_WRITE | STORE_Q_PREPARE, batch_sql, 1, p,
			batch_done, q, &q->id);
	free(json);
	if (r != 0) {
		/* The queue is full: the next Describe tries again. */
		q_failed(q, r);
		q_free(q);
		return;
	}
	q->next = a->qs;
	if (a->qs != NULL)
		a->qs->prev = q;
	a->qs = q;
}

static bool
hash_ok(const char *hash)
{
	size_t i;

	for (i = 0; i < APPHASH_LEN; i++)
		if (!((hash[i] >= '0' && hash[i] <= '9') ||
		      (hash[i] >= 'A' && hash[i] <= 'F') ||
		      (hash[i] >= 'a' && hash[i] <= 'f')))
			return false;
	return hash[APPHASH_LEN] == '\0';
}

void
apphash_check(struct apphash *a, const char *device_id, int64_t owner_id,
	      const char *hash)
{
	size_t idlen = strlen(device_id);
	struct apphash_ent *e;

	if (idlen == 0 || idlen > APPHASH_ID_MAX || !hash_ok(hash))
		return;
	e = hmap_get(a->devs, device_id, idlen);
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->hash, hash, sizeof(e->hash));
		if (hmap_put(a->devs, device_id, idlen, e, NULL) != 0) {
			free(e);
			return;
		}
		if (a->st == NULL)
			return;
		/* First Describe in memory: compare with the stored hash. */
		item_add(a, device_id, hash, owner_id, true);
		e->cseq = a->pend->seq;
		maybe_flush(a);
		return;
	}
	if (strcmp(e->hash, hash) == 0)
		return;
	memcpy(e->hash, hash, sizeof(e->hash));
	if (e->cseq != 0)
		return; /* item_done() compares it with what it stored */
	publish(a, device_id, owner_id, hash);
	store_set(a, e, device_id, hash);
}

void
apphash_forget(struct apphash *a, const char *device_id)
{
	struct apphash_ent *e =
		hmap_remove(a->devs, device_id, strlen(device_id));

	if (e == NULL)
		return;
	/* A device is in a batch once: send the one it is in, so that its
	   next Describe starts another. */
	if (a->pend != NULL &&
	    (e->cseq == a->pend->seq || e->sseq == a->pend->seq))
		apphash_flush(a);
	free(e);
}
