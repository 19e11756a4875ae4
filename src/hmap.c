/* SPDX-License-Identifier: MIT */
/* Chained hash map with copied byte keys (FNV-1a hash). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hmap.h"
#include "xmalloc.h"

#define HMAP_MIN_BUCKETS 16 /* a new map's table, and the least kept */

/* Sized to its key: the maps hold an entry per device or connection. */
struct hmap_entry {
	struct hmap_entry *next; /* bucket chain */
	uint64_t hash;		 /* full hash of the key */
	void *value;		 /* borrowed */
	uint32_t len;		 /* key length, <= HMAP_KEY_MAX */
	uint8_t key[];		 /* copied key */
};

struct hmap {
	struct hmap_entry **buckets; /* nbuckets chains */
	size_t nbuckets;	     /* power of two */
	size_t count;		     /* entries */
};

static uint64_t
hash_bytes(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 1469598103934665603ULL;

	while (len--) {
		h ^= *p++;
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

struct hmap *
hmap_new(void)
{
	struct hmap *m = xcalloc(1, sizeof(*m));

	m->nbuckets = HMAP_MIN_BUCKETS;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	return m;
}

void
hmap_free(struct hmap *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i], *n;
		for (; e != NULL; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

static struct hmap_entry **
find_slot(const struct hmap *m, const void *key, size_t len, uint64_t h)
{
	struct hmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->hash == h && (*pp)->len == len &&
		    memcmp((*pp)->key, key, len) == 0)
			break;
	}
	return pp;
}

/* Move every entry to a table of n buckets (a power of two). */
static void
rehash(struct hmap *m, size_t n)
{
	struct hmap_entry **b = xcalloc(n, sizeof(*b));
	size_t i;

	for (i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

int
hmap_put(struct hmap *m, const void *key, size_t len, void *value, void **old)
{
	uint64_t h;
	struct hmap_entry **pp, *e;

	if (old != NULL)
		*old = NULL;
	if (len > HMAP_KEY_MAX)
		return CINDER_ERR_INVAL;
	h = hash_bytes(key, len);
	pp = find_slot(m, key, len, h);
	if (*pp != NULL) {
		if (old != NULL)
			*old = (*pp)->value;
		(*pp)->value = value;
		return 0;
	}
	e = xmalloc(sizeof(*e) + len);
	e->next = NULL;
	e->hash = h;
	e->len = (uint32_t)len;
	e->value = value;
	memcpy(e->key, key, len);
	*pp = e;
	if (++m->count > m->nbuckets)
		rehash(m, m->nbuckets * 2);
	return 0;
}

void *
hmap_get(const struct hmap *m, const void *key, size_t len)
{
	struct hmap_entry **pp;

	if (len > HMAP_KEY_MAX)
		return NULL;
	pp = find_slot(m, key, len, hash_bytes(key, len));
	return *pp ? (*pp)->value : NULL;
}

void *
hmap_remove(struct hmap *m, const void *key, size_t len)
{
	struct hmap_entry **pp, *e;
	void *v;

	if (len > HMAP_KEY_MAX)
		return NULL;
	pp = find_slot(m, key, len, hash_bytes(key, len));
	if ((e = *pp) == NULL)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	/* A map that held a crowd (a fleet's sessions) gives its table back
	   once most have gone: below an eighth full, a quarter of the size
	   (at most half full then, so a put does not grow it right back). */
	if (--m->count < m->nbuckets / 8 && m->nbuckets > HMAP_MIN_BUCKETS) {
		size_t n = m->nbuckets / 4;

		rehash(m, n < HMAP_MIN_BUCKETS ? HMAP_MIN_BUCKETS : n);
	}
	return v;
}

size_t
hmap_count(const struct hmap *m)
{
	return m->count;
}

size_t
hmap_nbuckets(const struct hmap *m)
{
	return m->nbuckets;
}

int
hmap_foreach(const struct hmap *m,
	     int (*fn)(const void *key, size_t len, void *value, void *arg),
	     void *arg)
{
	size_t i;
	int r;

	for (i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e;
		for (e = m->buckets[i]; e != NULL; e = e->next) {
			if ((r = fn(e->key, e->len, e->value, arg)) != 0)
				return r;
		}
	}
	return 0;
}

size_t
hmap_remove_if(struct hmap *m,
	       bool (*fn)(const void *key, size_t len, void *value, void *arg),
	       void *arg)
{
	size_t i, n = 0;

	for (i = 0; i < m->nbuckets; i++) {
		struct hmap_entry **pp = &m->buckets[i], *e;

		while ((e = *pp) != NULL) {
			if (fn(e->key, e->len, e->value, arg)) {
				*pp = e->next;
				free(e);
				n++;
			} else {
				pp = &e->next;
			}
		}
	}
	m->count -= n;
	/* as hmap_remove(): a quarter (or less) when below an eighth full */
	if (n > 0 && m->count < m->nbuckets / 8 &&
	    m->nbuckets > HMAP_MIN_BUCKETS) {
		size_t b = m->nbuckets;

		while (b > HMAP_MIN_BUCKETS && m->count < b / 8)
			b /= 4;
		rehash(m, b < HMAP_MIN_BUCKETS ? HMAP_MIN_BUCKETS : b);
	}
	return n;
}
