/* SPDX-License-Identifier: MIT */
/*
 * A memory region kept apart from the heap (region.c): reserved address
 * space cut into power-of-two size classes, one slice each, a bump
 * pointer and a free list per class, under one mutex. When its last
 * block is freed the region starts over, and the pages of a large burst
 * go back to the system. tmpmem (the store's queued queries) and evmem
 * (libevent's small allocations) are the two users.
 */
#ifndef CINDER_REGION_H
#define CINDER_REGION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGION_MAX_CLASSES 8

struct region {
	pthread_mutex_t lock;
	uint8_t *base;	    /* reserved, or NULL (every get fails) */
	size_t slice;	    /* address space per class */
	unsigned min_shift; /* the smallest class is 1 << min_shift bytes */
	unsigned nclasses;  /* 1 .. REGION_MAX_CLASSES */
	size_t release;	    /* bytes in use worth a madvise when empty */
	size_t used[REGION_MAX_CLASSES];     /* bump offset in each slice */
	size_t touched[REGION_MAX_CLASSES];  /* most used since a release */
	void *free_list[REGION_MAX_CLASSES]; /* freed blocks, linked */
	size_t live;			     /* blocks handed out */
	size_t releases;		     /* times the pages went back */
};

/**
 * Reserve nclasses slices of slice bytes each (address space only: a
 * page becomes resident when first used). Classes are 1 << min_shift,
 * twice that, and so on; slice is rounded down to a multiple of the
 * largest class and of a page. When the last block is freed and more
 * than release bytes had been handed out, the pages are given back.
 * @return 0, or -1 when the reservation failed (the region then hands
 *	   out nothing; region_free is still safe)
 */
int region_init(struct region *r, size_t slice, unsigned min_shift,
		unsigned nclasses, size_t release);

/** Unmap the region (tests; the daemon's regions live as long as it). */
void region_free(struct region *r);

/**
 * A block of at least n bytes (n > 0), aligned to its class size up to
 * a page, or NULL when n is above the largest class or its slice is full
 * (the caller then uses malloc).
 */
void *region_get(struct region *r, size_t n);

/** Give back a block of this region. */
void region_put(struct region *r, void *p);

/** Whether p lies in the region (its blocks are told by address). */
bool region_owns(const struct region *r, const void *p);

/** The size of the class of a block of this region. */
size_t region_block_size(const struct region *r, const void *p);

/**
 * When no block is in use, give back the pages that bursts under the
 * release threshold left resident (each reuses them, so they stay at the
 * most such a burst used in each class).
 */
void region_trim(struct region *r);

/** What region_stats() reads, under one lock. */
struct region_stats {
	size_t live;	 /* blocks in use */
	size_t resident; /* bytes handed out since the last restart */
	size_t touched;	 /* bytes that may be resident (handed out since
			    the pages last went back) */
	size_t releases; /* times the pages went back */
};

/** Read the region's counters. */
void region_stats(struct region *r, struct region_stats *out);

#endif
