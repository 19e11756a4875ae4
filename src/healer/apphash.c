/* SPDX-License-Identifier: MIT */
/*
 * Application hashes (see apphash.h). A device not in memory costs one
 * statement, which compares and stores under a row lock, so two cinderd
 * processes or a retried write never report one change twice; a known
 * device costs nothing unless its hash changed (then one UPDATE).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "healer/apphash.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define APPHASH_ID_MAX 24
#define APPHASH_LEN 64

/* Store the new hash and return the one it replaces (NULL: none yet). */
static const char cas_sql[] =
	"UPDATE devices d SET app_hash = $2 FROM (SELECT device_id, "
	"app_hash AS old FROM devices WHERE device_id = $1 FOR UPDATE) o "
	"WHERE d.device_id = o.device_id RETURNING o.old";
static const char set_sql[] =
	"UPDATE devices SET app_hash = $2 WHERE device_id = $1";

/* A compare-and-store out to the store. */
struct apphash_q {
	struct apphash *a;
	struct apphash_q *next, *prev;
	uint64_t id; /* for store_cancel() */
	int64_t owner_id;
	char device_id[APPHASH_ID_MAX + 1];
	char hash[APPHASH_LEN + 1]; /* what it stores */
};

/* What memory holds for a device. */
struct apphash_ent {
	char hash[APPHASH_LEN + 1]; /* the last Describe's */
	struct apphash_q *q;	    /* its compare still out, or NULL */
};

struct apphash {
	struct store *st;
	apphash_publish_cb publish;
	void *arg;
	struct hmap *devs; /* device id -> struct apphash_ent */
	struct apphash_q *qs;
};

struct apphash *
apphash_new(struct store *st, apphash_publish_cb publish, void *arg)
{
	struct apphash *a = xcalloc(1, sizeof(*a));

	a->st = st;
	a->publish = publish;
	a->arg = arg;
	a->devs = hmap_new();
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

void
apphash_free(struct apphash *a)
{
	struct apphash_q *q, *next;

	if (a == NULL)
		return;
	for (q = a->qs; q != NULL; q = next) {
		next = q->next;
		(void)store_cancel(a->st, q->id); /* cas_done() never runs */
		free(q);
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

/* Store a hash known to be new (the compare is already done). */
static void
store_set(struct apphash *a, const char *device_id, const char *hash)
{
	const char *p[2] = {device_id, hash};
	int r;

	if (a->st == NULL)
		return;
	r = store_query(a->st, STORE_Q_WRITE | STORE_Q_PREPARE, set_sql, 2, p,
			NULL, NULL, NULL);
	if (r != 0)
		log_info("device %s: application hash not stored: %s",
			 device_id, err_str(r));
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

static void
cas_done(int r, const struct store_result *res, void *arg)
{
	struct apphash_q *q = arg;
	struct apphash *a = q->a;
	struct apphash_ent *e;
	const char *old = NULL;

	q_unlink(q);
	if (r != 0)
		log_info("device %s: application hash not compared with the "
			 "stored one (%s): no spark/device/app-hash for it",
			 q->device_id, err_str(r));
	else if (store_result_ntuples(res) == 1)
		old = store_result_value(res, 0, 0);
	log_debug("device %s: application hash %s, stored %s", q->device_id,
		  q->hash, old != NULL ? old : "none");
	if (old != NULL && strcmp(old, q->hash) != 0)
		publish(a, q->device_id, q->owner_id, q->hash);
	e = hmap_get(a->devs, q->device_id, strlen(q->device_id));
	if (e != NULL && e->q == q) {
		e->q = NULL;
		/* A Describe with yet another hash came meanwhile. */
		if (strcmp(e->hash, q->hash) != 0) {
			publish(a, q->device_id, q->owner_id, e->hash);
			store_set(a, q->device_id, e->hash);
		}
	}
	free(q);
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

/* First Describe in memory: compare with the stored hash. */
static void
cas_start(struct apphash *a, struct apphash_ent *e, const char *device_id,
	  int64_t owner_id)
{
	struct apphash_q *q;
	const char *p[2];
	int r;

	if (a->st == NULL)
		return;
	q = xcalloc(1, sizeof(*q));
	q->a = a;
	q->owner_id = owner_id;
	memcpy(q->device_id, device_id, strlen(device_id) + 1);
	memcpy(q->hash, e->hash, sizeof(q->hash));
	p[0] = q->device_id;
	p[1] = q->hash;
	r = store_query(a->st, STORE_Q_WRITE | STORE_Q_PREPARE, cas_sql, 2, p,
			cas_done, q, &q->id);
	if (r != 0) {
		/* Forget it: the next Describe tries again. */
		log_info("device %s: application hash not compared with the "
			 "stored one (%s): no spark/device/app-hash for it",
			 device_id, err_str(r));
		free(q);
		free(hmap_remove(a->devs, device_id, strlen(device_id)));
		return;
	}
	q->next = a->qs;
	if (a->qs != NULL)
		a->qs->prev = q;
	a->qs = q;
	e->q = q;
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
		cas_start(a, e, device_id, owner_id);
		return;
	}
	if (strcmp(e->hash, hash) == 0)
		return;
	memcpy(e->hash, hash, sizeof(e->hash));
	if (e->q != NULL)
		return; /* cas_done() compares it with what it stored */
	publish(a, device_id, owner_id, hash);
	store_set(a, device_id, hash);
}

void
apphash_forget(struct apphash *a, const char *device_id)
{
	free(hmap_remove(a->devs, device_id, strlen(device_id)));
}
