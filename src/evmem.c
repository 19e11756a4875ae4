/* SPDX-License-Identifier: MIT */
/*
 * libevent's allocations, through event_set_mem_functions(): its small
 * ones (at most EVMEM_SLOT bytes) come from a region of their own
 * (region.c, one class), the rest from malloc as before. libevent keeps
 * a 16-byte entry per file descriptor ever watched (evmap_io) until the
 * loop is freed; allocated from the heap, one lands between the objects
 * of every session of a connect storm, and once the fleet has gone those
 * entries pin nearly every page the sessions used, so malloc_trim cannot
 * give them back (B2: RSS after the devices left). Here they sit
 * together. When the slice is full, small allocations go to malloc too.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "evmem.h"
#include "region.h"

#define EVMEM_SHIFT 5 /* one class: 32-byte slots */
#define EVMEM_SLOT (1u << EVMEM_SHIFT)
#define EVMEM_SLICE (64u * 1024 * 1024) /* 2M slots of address space */
#define EVMEM_RELEASE (1024u * 1024)	/* bytes worth a madvise */

static struct region reg;
static bool installed;

static void *
evmem_malloc(size_t n)
{
	void *p;

	if (n <= EVMEM_SLOT && (p = region_get(&reg, n > 0 ? n : 1)) != NULL)
		return p;
	return malloc(n);
}

static void *
evmem_realloc(void *p, size_t n)
{
	void *q;

	if (p == NULL || !region_owns(&reg, p))
		return realloc(p, n);
	if (n <= EVMEM_SLOT)
		return p;
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, EVMEM_SLOT);
	region_put(&reg, p);
	return q;
}

static void
evmem_free(void *p)
{
	if (p != NULL && region_owns(&reg, p))
		region_put(&reg, p);
	else
		free(p);
}

void
evmem_install(void)
{
	if (installed)
		return;
	installed = true;
	if (region_init(&reg, EVMEM_SLICE, EVMEM_SHIFT, 1, EVMEM_RELEASE) != 0)
		return; /* libevent keeps malloc */
	event_set_mem_functions(evmem_malloc, evmem_realloc, evmem_free);
}

size_t
evmem_slots(void)
{
	struct region_stats st = {0};

	if (installed)
		region_stats(&reg, &st);
	return st.live;
}
