/* SPDX-License-Identifier: MIT */
/*
 * Short-lived blocks from a region of their own (region.c). A connect
 * storm queues thousands of store writes (each a copy of its SQL and
 * parameters) and frees them only as the database catches up, long after
 * the sessions of the same moments allocated their long-lived objects:
 * from the heap, the two interleave, and once the backlog drains its
 * space is left as holes below a page between the sessions, which
 * malloc_trim cannot give back (B2: ~0.6 KB per idle session). Here they
 * come from power-of-two classes of 64 to 4096 bytes; when the last one
 * is freed the region starts over and a burst of more than TMPMEM_RELEASE
 * bytes gives its pages back. Larger blocks, or any once a class's slice
 * is full, come from malloc.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "region.h"
#include "tmpmem.h"
#include "xmalloc.h"

#define TMPMEM_SLICE (64u * 1024 * 1024) /* address space per class */
#define TMPMEM_MIN_SHIFT 6		 /* smallest class: 64 bytes */
#define TMPMEM_CLASSES 7		 /* 64 .. 4096 bytes */
#define TMPMEM_RELEASE (1024u * 1024)	 /* bytes worth a madvise */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct region reg;

static void
region_setup(void)
{
	/* on failure the region hands out nothing: malloc only */
	(void)region_init(&reg, TMPMEM_SLICE, TMPMEM_MIN_SHIFT, TMPMEM_CLASSES,
			  TMPMEM_RELEASE);
}

void *
tmpmem_alloc(size_t n)
{
	void *p;

	pthread_once(&once, region_setup);
	if (n == 0)
		n = 1;
	if ((p = region_get(&reg, n)) != NULL)
		return p;
	return xmalloc(n);
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
	if (p == NULL)
		return;
	if (region_owns(&reg, p))
		region_put(&reg, p);
	else
		free(p);
}

void
tmpmem_trim(void)
{
	pthread_once(&once, region_setup);
	region_trim(&reg);
}

void
tmpmem_stats_get(struct tmpmem_stats *out)
{
	struct region_stats st;

	pthread_once(&once, region_setup);
	region_stats(&reg, &st);
	out->live = st.live;
	out->resident = st.resident;
	out->touched = st.touched;
	out->releases = st.releases;
}
