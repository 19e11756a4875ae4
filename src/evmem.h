/* SPDX-License-Identifier: MIT */
/*
 * libevent's small allocations kept apart from the heap (evmem.c), so
 * that the per-descriptor entries it never frees do not pin the pages a
 * fleet's sessions used once it has gone.
 */
#ifndef CINDER_EVMEM_H
#define CINDER_EVMEM_H

#include <stddef.h>

/**
 * Route libevent's allocations through evmem (once per process; later
 * calls do nothing). Call before the first libevent call that allocates;
 * what libevent allocated before is still freed correctly.
 */
void evmem_install(void);

/** @return the small libevent allocations held now */
size_t evmem_slots(void);

#endif
