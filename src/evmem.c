/* SPDX-License-Identifier: MIT */
/*
 * libevent's allocations, through event_set_mem_functions(): its small
 * ones (at most EVMEM_SLOT bytes) come from one reserved region of fixed
 * slots, the rest from malloc as before. libevent keeps a 16-byte entry
 * per file descriptor ever watched (evmap_io) until the loop is freed;
 * allocated from the heap, one lands between the objects of every
 * session of a connect storm, and once the fleet has gone those entries
 * pin nearly every page the sessions used, so malloc_trim cannot give
 * them back (B2: RSS after the devices left). Here they sit together.
 *
 * The region is reserved once (address space only; a page becomes
 * resident when a slot in it is first used) and never unmapped; a slot
 * freed goes to a free list. When it is full, small allocations go to
 * malloc too. Thread-safe (a mutex around the slots); whether a pointer
 * is a slot is told by its address alone.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <event2/event.h>

#include "evmem.h"

#define EVMEM_SLOT 32			 /* bytes per slot */
#define EVMEM_REGION (64u * 1024 * 1024) /* 2M slots of address space */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *region;	    /* reserved, or NULL (not installed) */
static size_t used;	    /* bytes of region ever handed out */
static void *free_list;	    /* freed slots, linked through their start */
static size_t slots_in_use; /* for evmem_slots() */

static int
is_slot(const void *p)
{
	return region != NULL && (const uint8_t *)p >= region &&
	       (const uint8_t *)p < region + EVMEM_REGION;
}

static void *
slot_get(void)
{
	void *p = NULL;

	pthread_mutex_lock(&lock);
	if (free_list != NULL) {
		p = free_list;
		memcpy(&free_list, p, sizeof(free_list));
	} else if (used + EVMEM_SLOT <= EVMEM_REGION) {
		p = region + used;
		used += EVMEM_SLOT;
	}
	if (p != NULL)
		slots_in_use++;
	pthread_mutex_unlock(&lock);
	return p;
}

static void
slot_put(void *p)
{
	pthread_mutex_lock(&lock);
	memcpy(p, &free_list, sizeof(free_list));
	free_list = p;
	slots_in_use--;
	pthread_mutex_unlock(&lock);
}

static void *
evmem_malloc(size_t n)
{
	void *p;

	if (n <= EVMEM_SLOT && (p = slot_get()) != NULL)
		return p;
	return malloc(n);
}

static void *
evmem_realloc(void *p, size_t n)
{
	void *q;

	if (p == NULL || !is_slot(p))
		return realloc(p, n);
	if (n <= EVMEM_SLOT)
		return p;
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, EVMEM_SLOT);
	slot_put(p);
	return q;
}

static void
evmem_free(void *p)
{
	if (p != NULL && is_slot(p))
		slot_put(p);
	else
		free(p);
}

void
evmem_install(void)
{
	void *r;

	if (region != NULL)
		return;
	r = mmap(NULL, EVMEM_REGION, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return; /* libevent keeps malloc */
	region = r;
	event_set_mem_functions(evmem_malloc, evmem_realloc, evmem_free);
}

size_t
evmem_slots(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = slots_in_use;
	pthread_mutex_unlock(&lock);
	return n;
}
