/* SPDX-License-Identifier: MIT */
/*
 * A store (src/store.h) on a test database, driven from a Check test:
 * wait until what was queued has been answered. Built into
 * tests/unit/libtestdb.a with testdb.c.
 */
#ifndef CINDER_TESTSTORE_H
#define CINDER_TESTSTORE_H

#include <check.h>

struct event_base;
struct store;

/*
 * Queue "SELECT 1" on st and run base's loop until it is answered: the
 * store answers in order, so everything queued before it has been
 * answered too (and a store just made has connected). Fails the test
 * after 30 s or if the query fails.
 */
void teststore_settle(struct event_base *base, struct store *st);

/*
 * The main() of a test program on the test cluster: skips (exit 77)
 * without it, runs the suite made by make_suite() after that check, and
 * returns the exit status: EXIT_SUCCESS when no test failed.
 */
int teststore_main(Suite *(*make_suite)(void));

#endif
