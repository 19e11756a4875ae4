/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers that abort on out-of-memory. Sizes that come from the
 * network must be bounded by the caller before they get here.
 */
#ifndef CINDER_XMALLOC_H
#define CINDER_XMALLOC_H

#include <stddef.h>

/** malloc that aborts on failure; never returns NULL. */
void *xmalloc(size_t n);
/** calloc that aborts on failure or overflow; never returns NULL. */
void *xcalloc(size_t nmemb, size_t size);
/** realloc of nmemb * size with overflow check; aborts on failure. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
/** strdup that aborts on failure; xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
/** strndup that aborts on failure. */
char *xstrndup(const char *s, size_t n);
/** printf into a new string; aborts on failure. Caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Wipe n bytes of p (not optimised away), then free p. NULL-safe. */
void freezero(void *p, size_t n);

#endif
