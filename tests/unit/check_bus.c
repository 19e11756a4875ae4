/* SPDX-License-Identifier: MIT */
/*
 * Event bus: prefix matching (also with many subscriptions sharing trie
 * nodes), deferred delivery (never inside bus_publish, events published
 * by a subscriber come on a later turn), unsubscribing during a delivery,
 * subscriptions seeing only later events, event reference counts, and
 * subscriptions bound to one owner, device or product (their routes, ends
 * and owner changes during a delivery).
 * Runs a real libevent loop; no sockets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>

#include "bus.h"
#include "err.h"

struct rec {
	struct bus *b;
	char got[64][BUS_NAME_MAX + 1]; /* names received, in order */
	int n;				/* how many */
	struct bus_sub *self;		/* for self-unsubscribe tests */
	struct bus_sub *other;		/* for cross-unsubscribe tests */
	const struct bus_event *kept;	/* a kept reference */
	int turn;			/* loop turn seen at delivery */
	bool keyed;			/* sub_later_cb: under owner 7 */
};

static struct event_base *base;
static struct bus *bus;

static void
setup(void)
{
	base = event_base_new();
	bus = bus_new(base);
}

static void
teardown(void)
{
	bus_free(bus);
	event_base_free(base);
}

static struct bus_event *
mkev(const char *name, const char *data)
{
	struct bus_event_spec sp = {0};
	struct bus_event *ev;

	sp.name = name;
	sp.data = (const uint8_t *)data;
	sp.data_len = data ? strlen(data) : 0;
	sp.source = BUS_SRC_API;
	sp.owner_id = 7;
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	return ev;
}

static void
pub(const char *name)
{
	bus_publish(bus, mkev(name, NULL));
}

static void
run(void)
{
	/* deliver everything pending, including what callbacks publish */
	for (int i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void
rec_cb(const struct bus_event *ev, void *arg)
{
	struct rec *r = arg;

	ck_assert_int_lt(r->n, 64);
	snprintf(r->got[r->n++], sizeof(r->got[0]), "%s", ev->name);
}

START_TEST(test_bus_subscribe_prefix)
{
	struct rec all = {0}, temp = {0}, exact = {0}, none = {0};

	bus_subscribe(bus, "", rec_cb, &all);
	bus_subscribe(bus, "temp", rec_cb, &temp);
	bus_subscribe(bus, "temp/kitchen", rec_cb, &exact);
	bus_subscribe(bus, "temperature/x", rec_cb, &none);
	pub("temp");
	pub("temp/kitchen");
	pub("temperature");
	pub("tem");
	pub("Temp"); /* case-sensitive */
	run();
	ck_assert_int_eq(all.n, 5);
	ck_assert_int_eq(temp.n, 3);
	ck_assert_str_eq(temp.got[0], "temp");
	ck_assert_str_eq(temp.got[1], "temp/kitchen");
	ck_assert_str_eq(temp.got[2], "temperature");
	ck_assert_int_eq(exact.n, 1);
	ck_assert_str_eq(exact.got[0], "temp/kitchen");
	ck_assert_int_eq(none.n, 0);
}
END_TEST

START_TEST(test_bus_subscribe_many)
{
	enum { N = 2000 };
	static struct rec r[N];
	struct bus_sub *subs[N];
	struct bus_stats st;
	char prefix[32];
	int i;

	memset(r, 0, sizeof(r));
	for (i = 0; i < N; i++) {
		snprintf(prefix, sizeof(prefix), "dev%d/t", i);
		subs[i] = bus_subscribe(bus, prefix, rec_cb, &r[i]);
	}
	pub("dev17/temp");
	pub("dev1999/t");
	pub("dev1/x");
	run();
	for (i = 0; i < N; i++) {
		int want = (i == 17 || i == 1999) ? 1 : 0;

		ck_assert_msg(r[i].n == want, "sub %d got %d", i, r[i].n);
	}
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.subscriptions, N);
	ck_assert_uint_eq(st.delivered, 2);
	for (i = 0; i < N; i++)
		bus_unsubscribe(bus, subs[i]);
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.subscriptions, 0);
	pub("dev17/temp");
	run();
	ck_assert_int_eq(r[17].n, 1);
}
END_TEST

static void
republish_cb(const struct bus_event *ev, void *arg)
{
	struct rec *r = arg;

	rec_cb(ev, arg);
	if (strcmp(ev->name, "a") == 0)
		bus_publish(r->b, mkev("b", NULL));
}

START_TEST(test_bus_publish_deferred)
{
	struct rec r = {0};
	struct bus_stats st;

	r.b = bus;
	bus_subscribe(bus, "", republish_cb, &r);
	pub("a");
	ck_assert_int_eq(r.n, 0); /* nothing inside bus_publish */
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.pending, 1);
	event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	ck_assert_int_eq(r.n, 1); /* "a" delivered; "b" waits a turn */
	ck_assert_str_eq(r.got[0], "a");
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.pending, 1);
	run();
	ck_assert_int_eq(r.n, 2);
	ck_assert_str_eq(r.got[1], "b");
}
END_TEST

static void
self_unsub_cb(const struct bus_event *ev, void *arg)
{
	struct rec *r = arg;

	rec_cb(ev, arg);
	bus_unsubscribe(r->b, r->self);
	if (r->other != NULL) {
		bus_unsubscribe(r->b, r->other);
		r->other = NULL;
	}
}

START_TEST(test_bus_unsubscribe_during_delivery)
{
	struct rec a = {0}, b = {0};

	a.b = bus;
	/* a runs first and ends itself and b; b must not run for "x" */
	a.self = bus_subscribe(bus, "", self_unsub_cb, &a);
	b.self = bus_subscribe(bus, "", rec_cb, &b);
	a.other = b.self;
	pub("x");
	pub("y");
	run();
	ck_assert_int_eq(a.n, 1);
	ck_assert_int_eq(b.n, 0);
}
END_TEST

static void
sub_later_cb(const struct bus_event *ev, void *arg)
{
	struct rec *r = arg;

	rec_cb(ev, arg);
	if (r->other == NULL)
		r->other = r->keyed ? bus_subscribe_owner(r->b, 7, "", rec_cb,
							  r + 1)
				    : bus_subscribe(r->b, "", rec_cb, r + 1);
}

START_TEST(test_bus_subscribe_sees_later_only)
{
	struct rec r[2];

	memset(r, 0, sizeof(r));
	r[0].b = bus;
	pub("before"); /* published before any subscription */
	bus_subscribe(bus, "", sub_later_cb, &r[0]);
	pub("one");
	pub("two");
	run();
	/* r[0] sees one and two; r[1] subscribed while "one" was delivered,
	   so it sees neither "one" nor "two" (both published earlier) */
	ck_assert_int_eq(r[0].n, 2);
	ck_assert_str_eq(r[0].got[0], "one");
	ck_assert_int_eq(r[1].n, 0);
	pub("three");
	run();
	ck_assert_int_eq(r[1].n, 1);
	ck_assert_str_eq(r[1].got[0], "three");
}
END_TEST

static void
keep_cb(const struct bus_event *ev, void *arg)
{
	struct rec *r = arg;

	r->kept = bus_event_ref(ev);
	r->n++;
}

START_TEST(test_bus_event_refcount)
{
	struct rec a = {0}, b = {0};
	struct bus_event *ev = mkev("r", "payload");

	bus_subscribe(bus, "r", keep_cb, &a);
	bus_subscribe(bus, "", keep_cb, &b);
	bus_event_ref(ev); /* the test's own */
	bus_publish(bus, ev);
	ck_assert_uint_eq(ev->refs, 2);
	run();
	ck_assert_ptr_eq(a.kept, ev);
	ck_assert_ptr_eq(b.kept, ev);
	ck_assert_uint_eq(ev->refs, 3); /* bus dropped its reference */
	ck_assert_int_eq(memcmp(ev->data, "payload", 8), 0);
	bus_event_unref(a.kept);
	bus_event_unref(b.kept);
	ck_assert_uint_eq(ev->refs, 1);
	bus_event_unref(ev); /* freed: ASan checks */
}
END_TEST

START_TEST(test_bus_event_new_limits)
{
	struct bus_event_spec sp = {0};
	struct bus_event *ev;
	char name[BUS_NAME_MAX + 2];

	sp.source = BUS_SRC_DEVICE;
	sp.name = "";
	ck_assert_int_eq(bus_event_new(&sp, &ev), CINDER_ERR_INVAL);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	sp.name = name;
	sp.device_id = "0123456789abcdef01234567";
	ck_assert_int_eq(bus_event_new(&sp, &ev), CINDER_ERR_TOO_BIG);
	name[BUS_NAME_MAX] = '\0';
	sp.device_id = "0123456789abcdef0123456"; /* 23 chars */
	ck_assert_int_eq(bus_event_new(&sp, &ev), CINDER_ERR_INVAL);
	sp.device_id = "0123456789ABCDEF01234567";
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	ck_assert_str_eq(ev->coreid, "0123456789abcdef01234567");
	ck_assert_uint_eq(ev->ttl, 60);
	ck_assert_uint_eq(ev->data_len, 0);
	ck_assert_uint_gt(ev->published_ms, 1700000000000ULL);
	bus_event_unref(ev);
	sp.source = BUS_SRC_INTERNAL;
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	ck_assert_str_eq(ev->coreid, "particle-internal");
	bus_event_unref(ev);
}
END_TEST

START_TEST(test_bus_name_reserved)
{
	ck_assert(bus_name_reserved("spark/status"));
	ck_assert(bus_name_reserved("SPARKle"));
	ck_assert(bus_name_reserved("Particle/device/name"));
	ck_assert(!bus_name_reserved("spar"));
	ck_assert(!bus_name_reserved("my/particle"));
}
END_TEST

/* Publish name as owner's event, from device dev (NULL: the API) of
   product. */
static void
pubk(const char *name, int64_t owner, const char *dev, uint32_t product)
{
	struct bus_event_spec sp = {0};
	struct bus_event *ev;

	sp.name = name;
	sp.source = dev != NULL ? BUS_SRC_DEVICE : BUS_SRC_API;
	sp.device_id = dev;
	sp.owner_id = owner;
	sp.product_id = product;
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	bus_publish(bus, ev);
}

/* "a,b,c" of what r got. */
static const char *
got(const struct rec *r)
{
	static char buf[512];
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < r->n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
					i ? "," : "", r->got[i]);
	return buf;
}

#define DEV_A "0123456789abcdef01234567"
#define DEV_B "0123456789abcdef0123456b"

START_TEST(test_bus_keyed_routes)
{
	struct rec o7 = {0}, o7t = {0}, o8 = {0}, o0 = {0}, da = {0}, p5 = {0},
		   all = {0};

	bus_subscribe_owner(bus, 7, "", rec_cb, &o7);
	bus_subscribe_owner(bus, 7, "t/", rec_cb, &o7t);
	bus_subscribe_owner(bus, 8, "", rec_cb, &o8);
	bus_subscribe_owner(bus, 0, "", rec_cb, &o0);
	/* the id in capitals: events carry it in lowercase */
	bus_subscribe_device(bus, "0123456789ABCDEF01234567", "", rec_cb, &da);
	bus_subscribe_product(bus, 5, "", rec_cb, &p5);
	bus_subscribe(bus, "", rec_cb, &all);
	pubk("t/1", 7, NULL, 0);
	pubk("x/2", 7, DEV_A, 5);
	pubk("t/3", 8, DEV_B, 5);
	pubk("t/4", 0, DEV_A, 0); /* no owner */
	pubk("x/5", 9, DEV_B, 6);
	run();
	ck_assert_str_eq(got(&o7), "t/1,x/2");
	ck_assert_str_eq(got(&o7t), "t/1");
	ck_assert_str_eq(got(&o8), "t/3");
	ck_assert_str_eq(got(&o0), "");
	ck_assert_str_eq(got(&da), "x/2,t/4");
	ck_assert_str_eq(got(&p5), "x/2,t/3");
	ck_assert_str_eq(got(&all), "t/1,x/2,t/3,t/4,x/5");
}
END_TEST

START_TEST(test_bus_keyed_unsubscribe_during_delivery)
{
	struct rec a = {0}, b = {0}, c = {0};
	struct bus_stats st;

	a.b = bus;
	/* a ends itself and b, the only other one of its key: the key's
	   list is freed after the delivery, not during it (ASan) */
	a.self = bus_subscribe_owner(bus, 7, "", self_unsub_cb, &a);
	b.self = bus_subscribe_owner(bus, 7, "", rec_cb, &b);
	a.other = b.self;
	pubk("x", 7, NULL, 0);
	pubk("y", 7, NULL, 0);
	run();
	ck_assert_int_eq(a.n, 1);
	ck_assert_int_eq(b.n, 0);
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.subscriptions, 0);
	/* the key works again */
	bus_subscribe_owner(bus, 7, "", rec_cb, &c);
	pubk("z", 7, NULL, 0);
	run();
	ck_assert_str_eq(got(&c), "z");
}
END_TEST

START_TEST(test_bus_keyed_sees_later_only)
{
	struct rec r[2];

	memset(r, 0, sizeof(r));
	r[0].b = bus;
	r[0].keyed = true;
	pubk("before", 7, NULL, 0);
	bus_subscribe_owner(bus, 7, "", sub_later_cb, &r[0]);
	pubk("one", 7, NULL, 0);
	pubk("two", 7, NULL, 0);
	run();
	/* r[1] was made under the same key while "one" was delivered: it
	   is at the end of the list being walked, and must skip both */
	ck_assert_str_eq(got(&r[0]), "one,two");
	ck_assert_str_eq(got(&r[1]), "");
	pubk("three", 7, NULL, 0);
	run();
	ck_assert_str_eq(got(&r[1]), "three");
}
END_TEST

/* Moves its own subscription to owner 8 at the first event. */
static void
move_cb(const struct bus_event *ev, void *arg)
{
	struct rec *r = arg;

	rec_cb(ev, arg);
	if (r->turn++ == 0)
		r->self = bus_resubscribe_owner(r->b, r->self, 8);
}

START_TEST(test_bus_resubscribe_owner)
{
	struct rec r = {0}, q = {0};
	struct bus_stats st;

	/* events published before the move but not yet delivered go by
	   the new owner: the subscription keeps its place in the stream */
	q.self = bus_subscribe_owner(bus, 7, "a/", rec_cb, &q);
	pubk("a/7", 7, NULL, 0);
	pubk("a/8", 8, NULL, 0);
	pubk("b/8", 8, NULL, 0); /* not its prefix */
	q.self = bus_resubscribe_owner(bus, q.self, 8);
	run();
	ck_assert_str_eq(got(&q), "a/8");
	/* moved from its own callback: the old one gets nothing more */
	r.b = bus;
	r.self = bus_subscribe_owner(bus, 7, "", move_cb, &r);
	pubk("x/7", 7, NULL, 0);
	pubk("y/8", 8, NULL, 0);
	pubk("z/7", 7, NULL, 0);
	run();
	ck_assert_str_eq(got(&r), "x/7,y/8");
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.subscriptions, 2);
	/* not a keyed subscription: left as it is */
	ck_assert_ptr_null(bus_resubscribe_owner(bus, NULL, 8));
	r.other = bus_subscribe(bus, "", rec_cb, &r);
	ck_assert_ptr_eq(bus_resubscribe_owner(bus, r.other, 8), r.other);
	bus_unsubscribe(bus, r.other);
	bus_unsubscribe(bus, q.self);
	bus_unsubscribe(bus, r.self);
	bus_stats_get(bus, &st);
	ck_assert_uint_eq(st.subscriptions, 0);
}
END_TEST

START_TEST(test_bus_free_pending)
{
	struct rec r = {0};

	bus_subscribe(bus, "", rec_cb, &r);
	bus_subscribe_owner(bus, 7, "", rec_cb, &r);
	bus_subscribe_device(bus, DEV_A, "n", rec_cb, &r);
	pub("never");
	/* teardown frees the bus with the event still pending and keyed
	   subscriptions live (ASan) */
	ck_assert_int_eq(r.n, 0);
}
END_TEST

static Suite *
bus_suite(void)
{
	Suite *s = suite_create("bus");
	struct {
		const char *name;
		const TTest *t;
	} tests[] = {
		{"test_bus_subscribe_prefix", test_bus_subscribe_prefix},
		{"test_bus_subscribe_many", test_bus_subscribe_many},
		{"test_bus_publish_deferred", test_bus_publish_deferred},
		{"test_bus_unsubscribe_during_delivery",
		 test_bus_unsubscribe_during_delivery},
		{"test_bus_subscribe_sees_later_only",
		 test_bus_subscribe_sees_later_only},
		{"test_bus_event_refcount", test_bus_event_refcount},
		{"test_bus_event_new_limits", test_bus_event_new_limits},
		{"test_bus_name_reserved", test_bus_name_reserved},
		{"test_bus_keyed_routes", test_bus_keyed_routes},
		{"test_bus_keyed_unsubscribe_during_delivery",
		 test_bus_keyed_unsubscribe_during_delivery},
		{"test_bus_keyed_sees_later_only",
		 test_bus_keyed_sees_later_only},
		{"test_bus_resubscribe_owner", test_bus_resubscribe_owner},
		{"test_bus_free_pending", test_bus_free_pending},
	};
	size_t i;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		TCase *tc = tcase_create(tests[i].name);

		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, tests[i].t);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bus_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
