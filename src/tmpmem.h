/* SPDX-License-Identifier: MIT */
/*
 * Memory for short-lived objects that pile up in bursts (tmpmem.c): the
 * store's queued queries. Kept apart from the heap so that a connect
 * storm's backlog does not leave holes between the sessions' long-lived
 * objects once it drains; when the last block is freed, every page the
 * burst used goes back to the system.
 */
#ifndef CINDER_TMPMEM_H
#define CINDER_TMPMEM_H

#include <stddef.h>

/** n bytes (n > 0), 16-byte aligned; aborts when memory runs out. */
void *tmpmem_alloc(size_t n);

/** tmpmem_alloc() zeroed; n * size checked for overflow (aborts). */
void *tmpmem_calloc(size_t n, size_t size);

/** A copy of s from tmpmem_alloc(). */
char *tmpmem_strdup(const char *s);

/** Free a tmpmem_alloc() block. NULL-safe. */
void tmpmem_free(void *p);

/**
 * Give back the pages a burst below the release threshold left resident
 * (each burst reuses them, so they stay at the most such a burst used),
 * when nothing is in use. Called when the allocator is trimmed.
 */
void tmpmem_trim(void);

/* Counters, for tests. */
struct tmpmem_stats {
	size_t live;	 /* blocks allocated and not freed */
	size_t resident; /* bytes of the region handed out since the
			    last release */
	size_t touched;	 /* bytes of the region that may be resident */
	size_t releases; /* times the pages went back (a burst's end, or
			    tmpmem_trim) */
};

/** @return the counters */
void tmpmem_stats_get(struct tmpmem_stats *out);

#endif
