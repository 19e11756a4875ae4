/* SPDX-License-Identifier: MIT */
/* Abort-on-OOM allocation helpers. */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static void
oom(size_t n)
{
	fprintf(stderr, "cinderd: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

/*
 * Up to this many bytes, xcalloc is malloc + memset. glibc's calloc
 * (2.36, Debian 12's) never takes a block from the thread's cache (tcache,
 * blocks of up to 1032 bytes) although free puts blocks there: each calloc
 * went to the arena's bins, and after a large allocation had merged the
 * fast bins, sorted its unsorted list first (perf of bench/run B4 at
 * 10,000 devices: the 32-byte calloc of a device request 0.7 us). Above
 * it calloc stays, for its fresh zero pages.
 */
#define XCALLOC_SMALL 1024

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if (nmemb <= XCALLOC_SMALL / size) {
		if ((p = malloc(nmemb * size)) == NULL)
			oom(nmemb * size);
		return memset(p, 0, nmemb * size);
	}
	p = calloc(nmemb, size);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
	void *np;

	if (size != 0 && nmemb > SIZE_MAX / size)
		oom(SIZE_MAX);
	np = realloc(p, (nmemb != 0 && size != 0) ? nmemb * size : 1);
	if (np == NULL)
		oom(nmemb * size);
	return np;
}

char *
xstrdup(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	p = strdup(s);
	if (p == NULL)
		oom(strlen(s));
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		oom(n);
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return p;
}

void
freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	/* A volatile pointer keeps the compiler from dropping the wipe. */
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
	free(p);
}
