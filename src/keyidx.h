/* SPDX-License-Identifier: MIT */
/*
 * Lists of entries under short byte keys: the index by which sse.c
 * (streams of one owner, device or product) and events.c (device
 * subscriptions by owner or device) route bus events themselves instead
 * of holding a bus subscription per entry. An entry is embedded in its
 * owner's struct; a key's list exists while it has entries. Loop thread
 * only.
 */
#ifndef CINDER_KEYIDX_H
#define CINDER_KEYIDX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#define KEYIDX_KEY_MAX 32

struct keyidx;
struct keyidx_list;

/** Embed one in each struct that goes in an index; zeroed = in none. */
struct keyidx_entry {
	TAILQ_ENTRY(keyidx_entry) link; /* in list */
	struct keyidx_list *list;	/* its key's list, NULL: in none */
};

/** @return a new empty index; free with keyidx_free() */
struct keyidx *keyidx_new(void);

/** Free an index that has no entries left. NULL-safe. */
void keyidx_free(struct keyidx *ix);

/**
 * Put e at the end of key's list (made if it is the first).
 * @param e not in any index
 * @param klen 1..KEYIDX_KEY_MAX
 */
void keyidx_add(struct keyidx *ix, struct keyidx_entry *e, const void *key,
		size_t klen);

/** Take e out of its list (freed if e was its last). No-op if in none. */
void keyidx_remove(struct keyidx *ix, struct keyidx_entry *e);

/** @return the first entry under key, or NULL */
struct keyidx_entry *keyidx_first(const struct keyidx *ix, const void *key,
				  size_t klen);

/** @return the entry after e in its list, or NULL */
struct keyidx_entry *keyidx_next(const struct keyidx_entry *e);

/** @return the entries in the index */
size_t keyidx_count(const struct keyidx *ix);

#endif
