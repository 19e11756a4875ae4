/* SPDX-License-Identifier: MIT */
/*
 * A small hash map from byte-string keys (copied, at most HMAP_KEY_MAX
 * bytes) to borrowed pointers. Chained buckets, power-of-two table that
 * doubles when the load passes 1 and shrinks to a quarter when it falls
 * below 1/8 (a map that held a fleet gives its table back). Not
 * thread-safe; loop thread only.
 */
#ifndef CINDER_HMAP_H
#define CINDER_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HMAP_KEY_MAX 32

struct hmap;

/** @return a new empty map; free with hmap_free() */
struct hmap *hmap_new(void);

/** Free the map (not the values). NULL-safe. */
void hmap_free(struct hmap *m);

/**
 * Insert or replace key -> value.
 * @param old if not NULL, receives the replaced value (or NULL)
 * @return 0 or CINDER_ERR_INVAL (key longer than HMAP_KEY_MAX)
 */
int hmap_put(struct hmap *m, const void *key, size_t len, void *value,
	     void **old);

/** @return the value for key, or NULL */
void *hmap_get(const struct hmap *m, const void *key, size_t len);

/** Remove key. @return the removed value, or NULL if absent */
void *hmap_remove(struct hmap *m, const void *key, size_t len);

/** @return the number of entries */
size_t hmap_count(const struct hmap *m);

/** @return the size of the bucket table (tests, memory figures) */
size_t hmap_nbuckets(const struct hmap *m);

/**
 * Call fn for every entry; fn must not change the map. Stops early when fn
 * returns non-zero, and returns that value.
 */
int hmap_foreach(const struct hmap *m,
		 int (*fn)(const void *key, size_t len, void *value, void *arg),
		 void *arg);

/**
 * Remove every entry for which fn returns true; fn may free the value but
 * must not change the map. The table shrinks at the end, as with
 * hmap_remove(). @return the number of entries removed
 */
size_t hmap_remove_if(struct hmap *m,
		      bool (*fn)(const void *key, size_t len, void *value,
				 void *arg),
		      void *arg);

/* Convenience for 64-bit integer keys. */
static inline void *
hmap_get_u64(const struct hmap *m, uint64_t k)
{
	return hmap_get(m, &k, sizeof(k));
}

#endif
