/* SPDX-License-Identifier: MIT */
/*
 * Memory apart from the heap, for allocations whose lifetimes would
 * otherwise pin the pages of long-gone objects (see tmpmem.c and
 * evmem.c for the two cases B2 found). One reservation holds a slice per
 * size class; a block's class is the slice its address falls in, so a
 * block carries no header. Each class hands out fresh blocks from a bump
 * offset and reuses freed ones from a list linked through their first
 * bytes. When the last block in use is freed every offset and list
 * starts over, and if more than `release` bytes had been handed out the
 * pages go back (madvise) so a burst leaves nothing resident.
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"

int
region_init(struct region *r, size_t slice, unsigned min_shift,
	    unsigned nclasses, size_t release)
{
	size_t top, page = (size_t)sysconf(_SC_PAGESIZE);
	void *m;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	if (nclasses == 0 || nclasses > REGION_MAX_CLASSES ||
	    min_shift + nclasses > 30)
		return -1;
	/* each slice starts on a page (madvise) and a class boundary */
	top = (size_t)1 << (min_shift + nclasses - 1);
	if (top < page)
		top = page;
	slice -= slice % top;
	if (slice == 0)
		return -1;
	m = mmap(NULL, slice * nclasses, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	r->base = m;
	r->slice = slice;
	r->min_shift = min_shift;
	r->nclasses = nclasses;
	r->release = release;
	return 0;
}

void
region_free(struct region *r)
{
	if (r->base != NULL)
		munmap(r->base, r->slice * r->nclasses);
	r->base = NULL;
	pthread_mutex_destroy(&r->lock);
}

bool
region_owns(const struct region *r, const void *p)
{
	const uint8_t *b = p;

	return r->base != NULL && b >= r->base &&
	       b < r->base + r->slice * r->nclasses;
}

static unsigned
class_of(const struct region *r, const void *p)
{
	return (unsigned)(((const uint8_t *)p - r->base) / r->slice);
}

size_t
region_block_size(const struct region *r, const void *p)
{
	return (size_t)1 << (r->min_shift + class_of(r, p));
}

void *
region_get(struct region *r, size_t n)
{
	unsigned k = 0;
	size_t sz;
	uint8_t *b = NULL;

	if (r->base == NULL ||
	    n > (size_t)1 << (r->min_shift + r->nclasses - 1))
		return NULL;
	while (((size_t)1 << (r->min_shift + k)) < n)
		k++;
	sz = (size_t)1 << (r->min_shift + k);
	pthread_mutex_lock(&r->lock);
	if (r->free_list[k] != NULL) {
		b = r->free_list[k];
		memcpy(&r->free_list[k], b, sizeof(void *));
	} else if (r->used[k] + sz <= r->slice) {
		b = r->base + (size_t)k * r->slice + r->used[k];
		r->used[k] += sz;
		if (r->used[k] > r->touched[k])
			r->touched[k] = r->used[k];
	}
	if (b != NULL)
		r->live++;
	pthread_mutex_unlock(&r->lock);
	return b;
}

/* Give back every page touched since the last release (lock held). */
static void
release_pages(struct region *r)
{
	unsigned i;

	for (i = 0; i < r->nclasses; i++)
		if (r->touched[i] > 0)
			(void)madvise(r->base + (size_t)i * r->slice,
				      r->touched[i], MADV_DONTNEED);
	r->releases++;
	memset(r->touched, 0, sizeof(r->touched));
}

static size_t
sum(const size_t *v, unsigned n)
{
	size_t total = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		total += v[i];
	return total;
}

void
region_put(struct region *r, void *p)
{
	unsigned k = class_of(r, p);

	pthread_mutex_lock(&r->lock);
	memcpy(p, &r->free_list[k], sizeof(void *));
	r->free_list[k] = p;
	if (--r->live == 0) {
		/* nothing in use: every class starts over, and a burst's
		   pages go back */
		if (sum(r->used, r->nclasses) >= r->release)
			release_pages(r);
		memset(r->used, 0, sizeof(r->used));
		memset(r->free_list, 0, sizeof(r->free_list));
	}
	pthread_mutex_unlock(&r->lock);
}

void
region_trim(struct region *r)
{
	pthread_mutex_lock(&r->lock);
	if (r->live == 0 && sum(r->touched, r->nclasses) > 0)
		release_pages(r);
	pthread_mutex_unlock(&r->lock);
}

void
region_stats(struct region *r, struct region_stats *out)
{
	pthread_mutex_lock(&r->lock);
	out->live = r->live;
	out->resident = sum(r->used, r->nclasses);
	out->touched = sum(r->touched, r->nclasses);
	out->releases = r->releases;
	pthread_mutex_unlock(&r->lock);
}
