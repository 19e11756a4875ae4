/* SPDX-License-Identifier: MIT */
/*
 * Application hashes (src/healer/apphash.c) on a real PostgreSQL
 * (tests/with-pg, else SKIP): a first Describe ever publishes nothing
 * and stores the hash; a known device publishes a change at once and
 * stores it; a forgotten device is compared with the stored hash;
 * Describes that arrive while the comparison is out publish each change
 * once, in order; an unknown device, malformed input, freeing with a
 * statement out and a database that never answers are harmless.
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "healer/apphash.h"
#include "store.h"
#include "testdb.h"
#include "xmalloc.h"

#define ID_A "0a0000000000000000000001"
#define ID_X "0a00000000000000000000ff" /* not in devices */
#define H(c)                                                                   \
	c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
		c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static struct event_base *base;
static char *db;
static struct store *st;

struct pubs {
	unsigned n;
	char last[2][65];
	int64_t owner;
};

static void
on_publish(const char *device_id, int64_t owner_id, const char *hash, void *arg)
{
	struct pubs *p = arg;

	ck_assert_str_eq(device_id, ID_A);
	ck_assert_uint_eq(strlen(hash), 64);
	if (p->n < 2)
		memcpy(p->last[p->n], hash, 65);
	p->owner = owner_id;
	p->n++;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

static void
done_cb(int r, const struct store_result *res, void *arg)
{
	(void)res;
	ck_assert_int_eq(r, 0);
	*(bool *)arg = true;
}

/* Run the loop until every statement queued so far has been answered
   (the store answers in order). */
static void
settle(void)
{
	bool done = false, expired = false;
	struct timeval tv = {30, 0};
	struct event *ev = evtimer_new(base, deadline_cb, &expired);

	ck_assert_int_eq(store_query(st, STORE_Q_WRITE, "SELECT 1", 0, NULL,
				     done_cb, &done, NULL),
			 0);
	evtimer_add(ev, &tv);
	while (!done && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert_msg(!expired, "timed out");
}

/* devices.app_hash of ID_A, "none" for NULL; caller frees. */
static char *
stored(void)
{
	return testdb_query_value(db,
				  "SELECT coalesce(app_hash, 'none') "
				  "FROM devices WHERE device_id = '" ID_A "'");
}

static void
assert_stored(const char *want)
{
	char *v = stored();

	ck_assert_str_eq(v, want);
	free(v);
}

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	db = testdb_create_migrated();
	st = store_new(base, db, NULL);
	ck_assert_ptr_nonnull(st);
	free(testdb_query_value(db, "INSERT INTO devices (device_id, "
				    "public_key) VALUES ('" ID_A "', 'k') "
				    "RETURNING 1"));
}

static void
teardown(void)
{
	store_free(st);
	st = NULL;
	event_base_free(base);
	testdb_drop(db);
	db = NULL;
}

START_TEST(test_first_known_forgotten)
{
	struct pubs p = {0};
	struct apphash *a = apphash_new(st, on_publish, &p);

	/* First Describe ever: stored, nothing published. */
	apphash_check(a, ID_A, 7, H("A"));
	ck_assert_uint_eq(apphash_count(a), 1);
	settle();
	ck_assert_uint_eq(p.n, 0);
	assert_stored(H("A"));
	/* Known, unchanged: nothing. Changed: published at once, stored. */
	apphash_check(a, ID_A, 7, H("A"));
	settle();
	ck_assert_uint_eq(p.n, 0);
	apphash_check(a, ID_A, 7, H("B"));
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.last[0], H("B"));
	ck_assert_int_eq(p.owner, 7);
	settle();
	assert_stored(H("B"));
	/* Forgotten (the linger), back unchanged: nothing. */
	apphash_forget(a, ID_A);
	ck_assert_uint_eq(apphash_count(a), 0);
	apphash_check(a, ID_A, 7, H("B"));
	settle();
	ck_assert_uint_eq(p.n, 1);
	/* Forgotten, back changed: published once the store answers. */
	apphash_forget(a, ID_A);
	apphash_check(a, ID_A, 8, H("C"));
	ck_assert_uint_eq(p.n, 1);
	settle();
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.last[1], H("C"));
	ck_assert_int_eq(p.owner, 8);
	assert_stored(H("C"));
	apphash_free(a);

	/* A new process (a restart): compared with the stored hash. */
	p.n = 0;
	a = apphash_new(st, on_publish, &p);
	apphash_check(a, ID_A, 8, H("C"));
	settle();
	ck_assert_uint_eq(p.n, 0);
	apphash_free(a);
	a = apphash_new(st, on_publish, &p);
	apphash_check(a, ID_A, 8, H("D"));
	settle();
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.last[0], H("D"));
	apphash_free(a);
}
END_TEST

START_TEST(test_describes_while_out)
{
	struct pubs p = {0};
	struct apphash *a = apphash_new(st, on_publish, &p);

	free(testdb_query_value(
		db, "UPDATE devices SET app_hash = '" H("A") "' RETURNING 1"));
	/* Three Describes before the answer: B twice, then C. */
	apphash_check(a, ID_A, 7, H("B"));
	apphash_check(a, ID_A, 7, H("B"));
	apphash_check(a, ID_A, 7, H("C"));
	ck_assert_uint_eq(p.n, 0);
	settle();
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.last[0], H("B"));
	ck_assert_str_eq(p.last[1], H("C"));
	settle(); /* C's UPDATE went out with the answer */
	assert_stored(H("C"));
	/* Forgotten at C, back at B, then C again before the answer:
	   both changes, in order. */
	p.n = 0;
	apphash_forget(a, ID_A);
	apphash_check(a, ID_A, 7, H("B"));
	apphash_check(a, ID_A, 7, H("C"));
	settle();
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.last[0], H("B"));
	ck_assert_str_eq(p.last[1], H("C"));
	settle();
	assert_stored(H("C"));
	/* Forgotten while out: the answer still publishes, memory is not
	   touched by it. */
	p.n = 0;
	apphash_forget(a, ID_A);
	apphash_check(a, ID_A, 7, H("D"));
	apphash_forget(a, ID_A);
	settle();
	ck_assert_uint_eq(p.n, 1);
	ck_assert_uint_eq(apphash_count(a), 0);
	assert_stored(H("D"));
	apphash_free(a);
}
END_TEST

START_TEST(test_harmless)
{
	struct pubs p = {0};
	struct apphash *a = apphash_new(st, on_publish, &p);

	/* Malformed: ignored. */
	apphash_check(a, ID_A, 7, "");
	apphash_check(a, ID_A, 7, "ABC");
	apphash_check(a, ID_A, 7, H("G"));
	apphash_check(a, ID_A, 7, H("A") "0");
	apphash_check(a, "0a00000000000000000000010", 7, H("A"));
	apphash_check(a, "", 7, H("A"));
	ck_assert_uint_eq(apphash_count(a), 0);
	/* A device that is not in devices: nothing published. */
	apphash_check(a, ID_X, 7, H("A"));
	settle();
	ck_assert_uint_eq(p.n, 0);
	/* Freed with a statement out: cancelled, nothing leaks. */
	apphash_check(a, ID_A, 7, H("B"));
	apphash_free(a);
	settle();
	ck_assert_uint_eq(p.n, 0);
	/* Memory only (no store): a change is still published. */
	a = apphash_new(NULL, on_publish, &p);
	apphash_check(a, ID_A, 7, H("A"));
	apphash_check(a, ID_A, 7, H("B"));
	ck_assert_uint_eq(p.n, 1);
	apphash_free(a);
}
END_TEST

/* A database that never answers: the statement waits in the write
   queue; Describes go on; freeing cancels it. */
START_TEST(test_outage)
{
	struct pubs p = {0};
	struct store *down = store_new(
		base, "host=127.0.0.1 port=1 connect_timeout=1", NULL);
	struct apphash *a;

	ck_assert_ptr_nonnull(down);
	a = apphash_new(down, on_publish, &p);
	apphash_check(a, ID_A, 7, H("A"));
	apphash_check(a, ID_A, 7, H("B"));
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_uint_eq(apphash_count(a), 1);
	apphash_free(a);
	store_free(down);
}
END_TEST

static Suite *
apphash_suite(void)
{
	Suite *s = suite_create("apphash");
	TCase *tc = tcase_create("pg");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_first_known_forgotten);
	tcase_add_test(tc, test_describes_while_out);
	tcase_add_test(tc, test_harmless);
	tcase_add_test(tc, test_outage);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(apphash_suite());
	int failed;

	testdb_require();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
