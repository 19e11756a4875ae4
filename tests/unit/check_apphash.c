/* SPDX-License-Identifier: MIT */
/*
 * Application hashes (src/healer/apphash.c) on a real PostgreSQL
 * (tests/with-pg, else SKIP): a first Describe ever publishes nothing
 * and stores the hash; a known device publishes a change at once and
 * stores it; a forgotten device is compared with the stored hash;
 * Describes that arrive while the comparison is out publish each change
 * once, in order; 50 devices go out as one statement, sent by the batch
 * timer, and publish their changes in the order of their Describes; an
 * unknown device, malformed input, freeing with a statement out and a
 * database that never answers are harmless.
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healer/apphash.h"
#include "store.h"
#include "testdb.h"
#include "teststore.h"
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

/* Send a's batch, then run the loop until every statement queued so far
   has been answered (the store answers in order). */
static void
settle(struct apphash *a)
{
	if (a != NULL)
		apphash_flush(a);
	teststore_settle(base, st);
}

/* devices.app_hash of ID_A, "none" for NULL; caller frees. */
static char *
stored(void)
{
	return testdb_query_value(db,
				  "SELECT coalesce(app_hash, 'none') "
				  "FROM devices WHERE device_id = '" ID_A "'");
}

/* The transaction that wrote ID_A's row version; caller frees. */
static char *
row_xmin(void)
{
	return testdb_query_value(db, "SELECT xmin FROM devices "
				      "WHERE device_id = '" ID_A "'");
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
	struct apphash *a = apphash_new(base, st, on_publish, &p);
	char *xmin, *xmin2;

	/* First Describe ever: stored, nothing published. */
	apphash_check(a, ID_A, 7, H("A"));
	ck_assert_uint_eq(apphash_count(a), 1);
	settle(a);
	ck_assert_uint_eq(p.n, 0);
	assert_stored(H("A"));
	/* Known, unchanged: nothing. Changed: published at once, stored. */
	apphash_check(a, ID_A, 7, H("A"));
	settle(a);
	ck_assert_uint_eq(p.n, 0);
	apphash_check(a, ID_A, 7, H("B"));
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.last[0], H("B"));
	ck_assert_int_eq(p.owner, 7);
	settle(a);
	assert_stored(H("B"));
	/* Forgotten (the linger), back unchanged: nothing, and the row is
	   not rewritten (the same version: the same xmin). */
	apphash_forget(a, ID_A);
	ck_assert_uint_eq(apphash_count(a), 0);
	xmin = row_xmin();
	apphash_check(a, ID_A, 7, H("B"));
	settle(a);
	ck_assert_uint_eq(p.n, 1);
	xmin2 = row_xmin();
	ck_assert_str_eq(xmin2, xmin);
	free(xmin);
	free(xmin2);
	/* Forgotten, back changed: published once the store answers. */
	apphash_forget(a, ID_A);
	apphash_check(a, ID_A, 8, H("C"));
	ck_assert_uint_eq(p.n, 1);
	settle(a);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.last[1], H("C"));
	ck_assert_int_eq(p.owner, 8);
	assert_stored(H("C"));
	apphash_free(a);

	/* A new process (a restart): compared with the stored hash. */
	p.n = 0;
	a = apphash_new(base, st, on_publish, &p);
	apphash_check(a, ID_A, 8, H("C"));
	settle(a);
	ck_assert_uint_eq(p.n, 0);
	apphash_free(a);
	a = apphash_new(base, st, on_publish, &p);
	apphash_check(a, ID_A, 8, H("D"));
	settle(a);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.last[0], H("D"));
	apphash_free(a);
}
END_TEST

START_TEST(test_describes_while_out)
{
	struct pubs p = {0};
	struct apphash *a = apphash_new(base, st, on_publish, &p);

	free(testdb_query_value(
		db, "UPDATE devices SET app_hash = '" H("A") "' RETURNING 1"));
	/* Three Describes before the answer: B twice, then C. */
	apphash_check(a, ID_A, 7, H("B"));
	apphash_check(a, ID_A, 7, H("B"));
	apphash_check(a, ID_A, 7, H("C"));
	ck_assert_uint_eq(p.n, 0);
	settle(a);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.last[0], H("B"));
	ck_assert_str_eq(p.last[1], H("C"));
	settle(a); /* C's UPDATE went out with the answer */
	assert_stored(H("C"));
	/* Forgotten at C, back at B, then C again before the answer:
	   both changes, in order. */
	p.n = 0;
	apphash_forget(a, ID_A);
	apphash_check(a, ID_A, 7, H("B"));
	apphash_check(a, ID_A, 7, H("C"));
	settle(a);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.last[0], H("B"));
	ck_assert_str_eq(p.last[1], H("C"));
	settle(a);
	assert_stored(H("C"));
	/* Forgotten while out: the answer still publishes, memory is not
	   touched by it. */
	p.n = 0;
	apphash_forget(a, ID_A);
	apphash_check(a, ID_A, 7, H("D"));
	apphash_forget(a, ID_A);
	settle(a);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_uint_eq(apphash_count(a), 0);
	assert_stored(H("D"));
	apphash_free(a);
}
END_TEST

START_TEST(test_harmless)
{
	struct pubs p = {0};
	struct apphash *a = apphash_new(base, st, on_publish, &p);

	/* Malformed: ignored. */
	apphash_check(a, ID_A, 7, "");
	apphash_check(a, ID_A, 7, "ABC");
	apphash_check(a, ID_A, 7, H("G"));
	apphash_check(a, ID_A, 7, H("A") "0");
	apphash_check(a, "0a00000000000000000000010", 7, H("A"));
	apphash_check(a, "", 7, H("A"));
	ck_assert_uint_eq(apphash_count(a), 0);
	/* A device that is not in devices: nothing published. Nor for
	   ids that JSON must escape, in the same batch as ID_A, whose
	   compare still works (stored A, nothing published). */
	apphash_check(a, ID_X, 7, H("A"));
	apphash_check(a, "a\"b\\c\n", 7, H("A"));
	apphash_check(a, ID_A, 7, H("A"));
	settle(a);
	ck_assert_uint_eq(p.n, 0);
	assert_stored(H("A"));
	ck_assert_uint_eq(apphash_count(a), 3);
	apphash_forget(a, ID_A);
	/* Freed with a statement out: cancelled, nothing leaks. */
	apphash_check(a, ID_A, 7, H("B"));
	apphash_flush(a);
	apphash_free(a);
	a = NULL;
	settle(a);
	ck_assert_uint_eq(p.n, 0);
	/* Freed with a batch gathering: dropped. */
	a = apphash_new(base, st, on_publish, &p);
	apphash_check(a, ID_A, 7, H("C"));
	apphash_free(a);
	a = NULL;
	settle(a);
	ck_assert_uint_eq(p.n, 0);
	/* Memory only (no store): a change is still published. */
	a = apphash_new(base, NULL, on_publish, &p);
	apphash_check(a, ID_A, 7, H("A"));
	apphash_check(a, ID_A, 7, H("B"));
	ck_assert_uint_eq(p.n, 1);
	apphash_free(a);
}
END_TEST

/* Many devices in one batch. */
#define NDEV 50

struct order {
	unsigned n;
	char ids[NDEV][25];
	char hashes[NDEV][65];
	int64_t owners[NDEV];
};

static void
on_publish_order(const char *device_id, int64_t owner_id, const char *hash,
		 void *arg)
{
	struct order *o = arg;

	ck_assert_uint_lt(o->n, NDEV);
	ck_assert_uint_eq(strlen(device_id), 24);
	memcpy(o->ids[o->n], device_id, 25);
	memcpy(o->hashes[o->n], hash, 65);
	o->owners[o->n] = owner_id;
	o->n++;
}

/* Device i's id, and a hash with i in front and c after. */
static void
dev_id(char *out, unsigned i)
{
	snprintf(out, 25, "0b00000000000000000000%02x", i);
}

static void
dev_hash(char *out, unsigned i, char c)
{
	snprintf(out, 3, "%02x", i);
	memset(out + 2, c, 62);
	out[64] = '\0';
}

/*
 * 50 devices, stored hash NULL (i % 3 == 0), the same (1) or another
 * (2), and one that is not in devices, Describe at once in reverse id
 * order: one statement, sent by the timer, publishes the 16 changes in
 * the order the Describes came, each with its owner, and stores all.
 */
START_TEST(test_batch)
{
	struct order o = {0};
	struct apphash *a = apphash_new(base, st, on_publish_order, &o);
	struct store_stats s0, s1;
	struct timeval tv = {30, 0};
	bool expired = false;
	struct event *ev = evtimer_new(base, deadline_cb, &expired);
	char id[25], h[65], sql[256], *v;
	unsigned i, want = 0;

	for (i = 0; i < NDEV; i++) {
		dev_id(id, i);
		dev_hash(h, i, i % 3 == 1 ? 'A' : 'B');
		snprintf(sql, sizeof(sql),
			 "INSERT INTO devices (device_id, public_key, "
			 "app_hash) VALUES ('%s', 'k', %s%s%s) RETURNING 1",
			 id, i % 3 ? "'" : "", i % 3 ? h : "NULL",
			 i % 3 ? "'" : "");
		free(testdb_query_value(db, sql));
	}
	settle(NULL);
	store_stats_get(st, &s0);
	for (i = NDEV; i-- > 0;) {
		dev_id(id, i);
		dev_hash(h, i, 'A');
		apphash_check(a, id, 100 + i, h);
		if (i == NDEV / 2)
			apphash_check(a, ID_X, 7, h);
	}
	ck_assert_uint_eq(apphash_count(a), NDEV + 1);
	ck_assert_uint_eq(o.n, 0);
	evtimer_add(ev, &tv);
	while (o.n < 16 && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert_msg(!expired, "timed out");
	store_stats_get(st, &s1);
	ck_assert_uint_eq(s1.queries_ok, s0.queries_ok + 1);
	for (i = NDEV; i-- > 0;) {
		if (i % 3 != 2)
			continue;
		dev_id(id, i);
		dev_hash(h, i, 'A');
		ck_assert_str_eq(o.ids[want], id);
		ck_assert_str_eq(o.hashes[want], h);
		ck_assert_int_eq(o.owners[want], 100 + i);
		want++;
	}
	ck_assert_uint_eq(o.n, want);
	v = testdb_query_value(db, "SELECT count(*) FROM devices WHERE "
				   "app_hash LIKE '%AAAAAAAAAAAAAAAAAAAAAAAAAAA"
				   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'");
	ck_assert_str_eq(v, "50");
	free(v);

	/* Known devices: each change is published at once; the stores
	   gather, the later hash of a device replacing its earlier one. */
	o.n = 0;
	dev_id(id, 3);
	dev_hash(h, 3, 'C');
	apphash_check(a, id, 103, h);
	dev_hash(h, 3, 'D');
	apphash_check(a, id, 103, h);
	dev_id(id, 4);
	dev_hash(h, 4, 'E');
	apphash_check(a, id, 104, h);
	ck_assert_uint_eq(o.n, 3);
	store_stats_get(st, &s0);
	settle(a);
	store_stats_get(st, &s1);
	ck_assert_uint_eq(s1.queries_ok, s0.queries_ok + 2); /* + SELECT 1 */
	v = testdb_query_value(db, "SELECT string_agg(substr(app_hash, 1, 3), "
				   "',' ORDER BY device_id) FROM devices "
				   "WHERE device_id IN ("
				   "'0b00000000000000000000' || '03', "
				   "'0b00000000000000000000' || '04')");
	ck_assert_str_eq(v, "03D,04E");
	free(v);
	apphash_free(a);
}
END_TEST

/* The batch locks and reads its rows by the primary key in a fleet of
   thousands (a join on jsonb_to_recordset(), estimated at 100 rows,
   read the whole table twice). */
START_TEST(test_batch_plan)
{
	ck_assert_msg(testdb_batch_indexed(db, apphash_batch_statement(),
					   "{\"n\":0,\"id\":\"%s\","
					   "\"h\":\"" H("e") "\"}",
					   NULL),
		      "the batch reads the whole table (its plan on stderr)");
}
END_TEST

/* Planned once per connection: PostgreSQL takes the generic plan from
   the sixth execution on. */
START_TEST(test_batch_generic)
{
	long n = testdb_generic_plans(
		db, apphash_batch_statement(),
		"'[{\"n\":0,\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaa\","
		"\"h\":\"" H("e") "\"}]'");

	ck_assert_msg(n == 5, "%ld generic plans of 10", n);
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
	a = apphash_new(base, down, on_publish, &p);
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
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_batch_plan);
	tcase_add_test(tc, test_batch_generic);
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
