/* SPDX-License-Identifier: MIT */
/*
 * Keyed lists (keyidx.h): a hash map from each key to its list, the
 * list freed with its last entry.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "keyidx.h"
#include "xmalloc.h"

struct keyidx_list {
	TAILQ_HEAD(, keyidx_entry) entries; /* in insertion order */
	size_t klen;			    /* bytes of key */
	uint8_t key[KEYIDX_KEY_MAX];	    /* the map's key */
};

struct keyidx {
	struct hmap *lists; /* key -> keyidx_list */
	size_t n;	    /* entries */
};

struct keyidx *
keyidx_new(void)
{
	struct keyidx *ix = xcalloc(1, sizeof(*ix));

	ix->lists = hmap_new();
	return ix;
}

void
keyidx_free(struct keyidx *ix)
{
	if (ix == NULL)
		return;
	hmap_free(ix->lists); /* empty: every entry was removed */
	free(ix);
}

void
keyidx_add(struct keyidx *ix, struct keyidx_entry *e, const void *key,
	   size_t klen)
{
	struct keyidx_list *l = hmap_get(ix->lists, key, klen);

	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		TAILQ_INIT(&l->entries);
		memcpy(l->key, key, klen);
		l->klen = klen;
		hmap_put(ix->lists, l->key, l->klen, l, NULL);
	}
	e->list = l;
	TAILQ_INSERT_TAIL(&l->entries, e, link);
	ix->n++;
}

void
keyidx_remove(struct keyidx *ix, struct keyidx_entry *e)
{
	struct keyidx_list *l = e->list;

	if (l == NULL)
		return;
	TAILQ_REMOVE(&l->entries, e, link);
	e->list = NULL;
	ix->n--;
	if (TAILQ_EMPTY(&l->entries)) {
		hmap_remove(ix->lists, l->key, l->klen);
		free(l);
	}
}

struct keyidx_entry *
keyidx_first(const struct keyidx *ix, const void *key, size_t klen)
{
	struct keyidx_list *l = hmap_get(ix->lists, key, klen);

	return l != NULL ? TAILQ_FIRST(&l->entries) : NULL;
}

struct keyidx_entry *
keyidx_next(const struct keyidx_entry *e)
{
	return TAILQ_NEXT(e, link);
}

size_t
keyidx_count(const struct keyidx *ix)
{
	return ix->n;
}
