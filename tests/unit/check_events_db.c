/* SPDX-License-Identifier: MIT */
/*
 * The events module's device-info read on a real database (tests/with-pg):
 * when a device comes online and the handshake's key lookup could not
 * answer for its Hello (a first connect, another Hello product), the
 * module reads the device's product (the assigned one, else the Hello's
 * when such a product exists) and its forced-updates flag. The reads of
 * one loop pass go as one statement of at most 64 devices, and
 * PostgreSQL keeps that statement's generic plan. The product is
 * observed on the bus, in the events the devices then publish.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>

#include "bus.h"
#include "events.h"
#include "registry.h"
#include "store.h"
#include "testdb.h"
#include "teststore.h"

#define NMANY 70 /* more than one statement's 64 */

static struct event_base *base;
static char *db;
static struct store *st;
static struct events *ev;
static uint32_t product_seen[NMANY + 4]; /* by device index */
static int nseen;

static void
dev_id(char out[25], unsigned i)
{
	snprintf(out, 25, "00000000000000000000%04x", i & 0xffffu);
}

static void
on_bus(const struct bus_event *be, void *arg)
{
	unsigned i;

	(void)arg;
	if (be->source != BUS_SRC_DEVICE || strcmp(be->name, "t/x") != 0)
		return;
	i = (unsigned)strtoul(be->coreid + 20, NULL, 16);
	ck_assert_uint_lt(i, NMANY + 4);
	product_seen[i] = be->product_id;
	nseen++;
}

static void
sql(const char *q)
{
	free(testdb_query_value(db, q));
}

static void
setup(void)
{
	struct events_deps d = {0};

	base = event_base_new();
	db = testdb_create_migrated();
	st = store_new(base, db, NULL);
	ck_assert_ptr_nonnull(st);
	d.base = base;
	d.store = st;
	ck_assert_int_eq(events_new(&d, &ev), 0);
	bus_subscribe(events_bus(ev), "", on_bus, NULL);
	memset(product_seen, 0xff, sizeof(product_seen));
	nseen = 0;
	sql("INSERT INTO users (id, username, password_hash) "
	    "VALUES (7, 'u@example.com', 'x') RETURNING 1");
	sql("INSERT INTO products (id, name, slug, platform_id, owner_id) "
	    "VALUES (4242, 'a', 'a', 6, 7), (77, 'b', 'b', 6, 7) "
	    "RETURNING 1");
	teststore_settle(base, st);
}

static void
teardown(void)
{
	events_free(ev);
	store_free(st);
	event_base_free(base);
	testdb_drop(db);
}

/* Let the module send what it queued, then run the loop until the store
   has answered everything queued before a marker query (the store
   answers in order): the module's statements since base_ok must be want. */
static void
wait_answers(uint64_t base_ok, uint64_t want)
{
	struct store_stats s;

	for (int i = 0; i < 4; i++) /* the pass's end sends the batch */
		event_base_loop(base, EVLOOP_NONBLOCK);
	teststore_settle(base, st);
	store_stats_get(st, &s);
	ck_assert_uint_eq(s.queries_failed, 0);
	ck_assert_uint_eq(s.queries_ok, base_ok + want + 1);
}

static void
online(unsigned i, uint32_t hello_product)
{
	char id[25];
	struct registry_presence p = {.device_id = id,
				      .owner_id = 7,
				      .online = true,
				      .ip = "127.0.0.1",
				      .hello_product = hello_product};

	dev_id(id, i);
	events_on_presence(&p, ev);
}

/* Each device publishes one event; the bus shows its product. */
static void
publish_all(unsigned n)
{
	char id[25];
	unsigned i;

	for (i = 0; i < n; i++) {
		dev_id(id, i);
		ck_assert_int_eq(events_on_device_event(id, 7, "t/x",
							(const uint8_t *)"d", 1,
							60, false, ev),
				 0);
	}
	for (i = 0; i < 8 && nseen < (int)n; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_int_eq(nseen, (int)n);
}

/* Four devices online in one pass: one statement answers all four. */
START_TEST(test_devinfo_cases)
{
	struct store_stats s;
	char id[25];

	/* 0: assigned 4242, its Hello says 77; 1: unassigned, Hello 77
	   (exists); 2: unassigned, Hello 78 (no such product), forced;
	   3: unassigned, no Hello product */
	sql("INSERT INTO devices (device_id, public_key, owner_id, "
	    "product_id, firmware_updates_forced) VALUES "
	    "('000000000000000000000000', 'k', 7, 4242, false), "
	    "('000000000000000000000001', 'k', 7, NULL, false), "
	    "('000000000000000000000002', 'k', 7, NULL, true), "
	    "('000000000000000000000003', 'k', 7, NULL, false) "
	    "RETURNING 1");
	store_stats_get(st, &s);
	online(0, 77);
	online(1, 77);
	online(2, 78);
	online(3, 0);
	wait_answers(s.queries_ok, 1);
	publish_all(4);
	ck_assert_uint_eq(product_seen[0], 4242);
	ck_assert_uint_eq(product_seen[1], 77);
	ck_assert_uint_eq(product_seen[2], 0);
	ck_assert_uint_eq(product_seen[3], 0);
	for (unsigned i = 0; i < 4; i++) {
		dev_id(id, i);
		ck_assert_msg(events_updates_forced(ev, id) == (i == 2),
			      "device %u: forced flag", i);
	}
}
END_TEST

/* 70 devices in one pass: two statements (64 + 6), every device read. */
START_TEST(test_devinfo_many)
{
	struct store_stats s;
	char q[128];
	unsigned i;

	for (i = 0; i < NMANY; i++) {
		char id[25];

		dev_id(id, i);
		snprintf(
			q, sizeof(q),
			"INSERT INTO devices (device_id, public_key, owner_id) "
			"VALUES ('%s', 'k', 7) RETURNING 1",
			id);
		sql(q);
	}
	store_stats_get(st, &s);
	for (i = 0; i < NMANY; i++)
		online(i, i % 2 ? 77 : 0);
	wait_answers(s.queries_ok, 2);
	publish_all(NMANY);
	for (i = 0; i < NMANY; i++)
		ck_assert_msg(product_seen[i] == (i % 2 ? 77u : 0u),
			      "device %u: product %u", i,
			      (unsigned)product_seen[i]);
}
END_TEST

/* PostgreSQL keeps the generic plan (planned once per connection) in a
   fleet of thousands: shown an array of one id, it would find a plan
   for those parameters cheaper than the generic one every time. */
START_TEST(test_devinfo_plan)
{
	long n;

	testdb_add_fleet(db);
	n = testdb_generic_plans(db, events_devinfo_statement(),
				 "'{000000000000000000000001}', '{77}'");

	ck_assert_msg(n == 5, "device info: %ld generic plans of 10", n);
}
END_TEST

static Suite *
events_db_suite(void)
{
	Suite *s = suite_create("events_db");
	TCase *tc = tcase_create("devinfo");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_devinfo_cases);
	tcase_add_test(tc, test_devinfo_many);
	tcase_add_test(tc, test_devinfo_plan);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return teststore_main(events_db_suite);
}
