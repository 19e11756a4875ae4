/* SPDX-License-Identifier: MIT */
/*
 * Short-lived blocks from a region of their own. A connect storm queues
 * thousands of store writes (each a copy of its SQL and parameters) and
 * frees them only as the database catches up, long after the sessions of
 * the same moments allocated their long-lived objects: from the heap,
 * the two interleave, and once the backlog drains its space is left as
 * holes below a page between the sessions, which malloc_trim cannot give
 * back (B2: ~0.6 KB per idle session). Here the blocks come from one
 * reserved region (address space only; pages become resident when first
 * used) in power-of-two size classes with a free list each; when the
 * last live block is freed the region starts over, and if a burst made
 * more than TMPMEM_RELEASE bytes resident, its pages go back at once
 * (madvise). Blocks larger than the largest class, or any once the region
 * is full, come from malloc. Thread-safe (one mutex); whether a pointer
 * is the region's is told by its address.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tmpmem.h"
#include "xmalloc.h"

#define TMPMEM_REGION (256u * 1024 * 1024) /* address space reserved */
#define TMPMEM_HDR 16			   /* class index, keeps alignment */
#define TMPMEM_MIN_SHIFT 6		   /* smallest class: 64 bytes */
#define TMPMEM_CLASSES 7		   /* 64 .. 4096 bytes */
#define TMPMEM_RELEASE (1024u * 1024)	   /* resident bytes worth a madvise */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static uint8_t *region; /* reserved, or NULL (malloc only) */
static size_t used;	/* bytes handed out since the last restart */
static size_t live;	/* blocks in use */
static size_t releases; /* times the pages went back */
static void *free_list[TMPMEM_CLASSES];

static void
region_init(void)
{
	void *r = mmap(NULL, TMPMEM_REGION, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	region = r == MAP_FAILED ? NULL : r;
}

static int
in_region(const void *p)
{
	return region != NULL && (const uint8_t *)p >= region &&
	       (const uint8_t *)p < region + TMPMEM_REGION;
}

void *
tmpmem_alloc(size_t n)
{
	unsigned k = 0;
	uint8_t *b = NULL;
	size_t sz;

	pthread_once(&once, region_init);
	if (n == 0)
		n = 1;
	if (region == NULL ||
	    n > ((size_t)1 << (TMPMEM_MIN_SHIFT + TMPMEM_CLASSES - 1)) -
			    TMPMEM_HDR)
		return xmalloc(n);
	while (((size_t)1 << (TMPMEM_MIN_SHIFT + k)) - TMPMEM_HDR < n)
		k++;
	sz = (size_t)1 << (TMPMEM_MIN_SHIFT + k);
	pthread_mutex_lock(&lock);
	if (free_list[k] != NULL) {
		b = free_list[k];
		memcpy(&free_list[k], b + TMPMEM_HDR, sizeof(void *));
	} else if (used + sz <= TMPMEM_REGION) {
		b = region + used;
		used += sz;
	}
	if (b != NULL)
		live++;
	pthread_mutex_unlock(&lock);
	if (b == NULL)
		return xmalloc(n); /* the region is full */
	memcpy(b, &k, sizeof(k));
	return b + TMPMEM_HDR;
}

void *
tmpmem_calloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		abort();
	p = tmpmem_alloc(n * size);
	memset(p, 0, n * size > 0 ? n * size : 1);
	return p;
}

char *
tmpmem_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = tmpmem_alloc(n);

	memcpy(p, s, n);
	return p;
}

void
tmpmem_free(void *p)
{
	uint8_t *b;
	unsigned k;

	if (p == NULL)
		return;
	if (!in_region(p)) {
		free(p);
		return;
	}
	b = (uint8_t *)p - TMPMEM_HDR;
	memcpy(&k, b, sizeof(k));
	pthread_mutex_lock(&lock);
	memcpy(b + TMPMEM_HDR, &free_list[k], sizeof(void *));
	free_list[k] = b;
	if (--live == 0) {
		/* nothing in use: start over at the region's beginning, and
		   give a burst's pages back */
		if (used >= TMPMEM_RELEASE &&
		    madvise(region, used, MADV_DONTNEED) == 0)
			releases++;
		used = 0;
		memset(free_list, 0, sizeof(free_list));
	}
	pthread_mutex_unlock(&lock);
}

void
tmpmem_stats_get(struct tmpmem_stats *out)
{
	pthread_mutex_lock(&lock);
	out->live = live;
	out->resident = used;
	out->releases = releases;
	pthread_mutex_unlock(&lock);
}
