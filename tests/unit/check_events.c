/* SPDX-License-Identifier: MIT */
/*
 * The events glue without a registry, HTTP server or database: the
 * device-event hook's policy (name and data limits, the per-device rate
 * limit with its burst, reserved names forced private, the stream
 * whitelist and hidden events) and the presence hook's spark/status
 * events (with the offline emitted before an online when one was missed),
 * observed through a bus subscription. API publish checks as well.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>

#include "bus.h"
#include "err.h"
#include "events.h"
#include "registry.h"

#define DEV "0123456789abcdef01234567"

struct seen {
	char name[BUS_NAME_MAX + 1];
	char data[64];
	bool is_private;
	unsigned flags;
	int64_t owner;
	char coreid[25];
};

static struct event_base *base;
static struct events *ev;
static struct seen seen[64];
static int nseen;

static void
rec_cb(const struct bus_event *be, void *arg)
{
	struct seen *s;

	(void)arg;
	ck_assert_int_lt(nseen, 64);
	s = &seen[nseen++];
	snprintf(s->name, sizeof(s->name), "%s", be->name);
	snprintf(s->data, sizeof(s->data), "%s", (const char *)be->data);
	s->is_private = be->is_private;
	s->flags = be->flags;
	s->owner = be->owner_id;
	snprintf(s->coreid, sizeof(s->coreid), "%s", be->coreid);
}

static void
setup(void)
{
	struct events_deps d = {0};

	base = event_base_new();
	d.base = base;
	ck_assert_int_eq(events_new(&d, &ev), 0);
	bus_subscribe(events_bus(ev), "", rec_cb, NULL);
	nseen = 0;
}

static void
teardown(void)
{
	events_free(ev);
	event_base_free(base);
}

static void
run(void)
{
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static int
dev_pub(const char *name, const char *data, bool priv)
{
	return events_on_device_event(DEV, 7, name, (const uint8_t *)data,
				      data ? strlen(data) : 0, 60, priv, ev);
}

START_TEST(test_events_device_limits)
{
	char name[70], data[700];
	struct events_stats st;

	memset(name, 'n', 65);
	name[65] = '\0';
	dev_pub(name, "x", true); /* 65-byte name */
	name[64] = '\0';
	memset(data, 'd', 623);
	data[623] = '\0';
	dev_pub("ok", data, true); /* 623 data bytes */
	dev_pub("bad\nname", "x", true);
	dev_pub("", "x", true);
	data[622] = '\0';
	dev_pub(name, data, false); /* exactly at both limits */
	run();
	events_stats_get(ev, &st);
	ck_assert_uint_eq(st.dropped_size, 2);
	ck_assert_uint_eq(st.dropped_invalid, 2);
	ck_assert_uint_eq(st.device_events, 1);
	ck_assert_int_eq(nseen, 1);
	ck_assert_str_eq(seen[0].name, name);
	ck_assert(!seen[0].is_private);
	ck_assert_int_eq(seen[0].owner, 7);
	ck_assert_str_eq(seen[0].coreid, DEV);
}
END_TEST

START_TEST(test_events_device_rate_limit)
{
	struct events_stats st;
	int i;

	/* A burst of 4 passes; beyond it the hook answers BUSY, which the
	   session turns into the 4.00 "slow down" ACK. */
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(dev_pub("burst", "x", true),
				 i < 4 ? 0 : CINDER_ERR_BUSY);
	/* a system event has its own bucket */
	dev_pub("spark/device/last_reset", "pin_reset", false);
	/* another device is not affected */
	events_on_device_event("ffffffffffffffffffffffff", 7, "other", NULL, 0,
			       60, true, ev);
	run();
	events_stats_get(ev, &st);
	ck_assert_uint_eq(st.dropped_rate, 2);
	ck_assert_int_eq(nseen, 6);
	ck_assert_str_eq(seen[3].name, "burst");
	ck_assert_str_eq(seen[4].name, "spark/device/last_reset");
	ck_assert_str_eq(seen[5].name, "other");
}
END_TEST

START_TEST(test_events_device_reserved)
{
	dev_pub("spark/flash/status", "success", false);
	dev_pub("spark/device/last_reset", "panic", false);
	dev_pub("Particle/anything", "x", false);
	dev_pub("particle/device/updates/forced", "true", false);
	run();
	ck_assert_int_eq(nseen, 4);
	/* all forced private; only whitelisted names are not hidden */
	ck_assert(seen[0].is_private);
	ck_assert_uint_eq(seen[0].flags & BUS_EV_HIDDEN, 0);
	ck_assert(seen[1].is_private);
	ck_assert_uint_ne(seen[1].flags & BUS_EV_HIDDEN, 0);
	ck_assert(seen[2].is_private);
	ck_assert_uint_ne(seen[2].flags & BUS_EV_HIDDEN, 0);
	ck_assert(seen[3].is_private);
	ck_assert_uint_eq(seen[3].flags & BUS_EV_HIDDEN, 0);
	ck_assert(events_system_forwarded("spark/device/safemode"));
	ck_assert(!events_system_forwarded("spark/device/name"));
}
END_TEST

START_TEST(test_events_presence_status)
{
	struct registry_presence on = {.device_id = DEV,
				       .owner_id = 7,
				       .online = true,
				       .ip = "127.0.0.1"};
	struct registry_presence off = {.device_id = DEV,
					.owner_id = 7,
					.online = false,
					.ip = "127.0.0.1"};

	events_on_presence(&on, ev);
	events_on_presence(&on, ev); /* the offline was missed */
	events_on_presence(&off, ev);
	events_on_presence(&off, ev); /* a repeat: nothing */
	run();
	ck_assert_int_eq(nseen, 4);
	ck_assert_str_eq(seen[0].data, "online");
	ck_assert_str_eq(seen[1].data, "offline");
	ck_assert_str_eq(seen[2].data, "online");
	ck_assert_str_eq(seen[3].data, "offline");
	for (int i = 0; i < 4; i++) {
		ck_assert_str_eq(seen[i].name, "spark/status");
		ck_assert_str_eq(seen[i].coreid, DEV);
		ck_assert(seen[i].is_private);
		ck_assert_int_eq(seen[i].owner, 7);
		ck_assert_uint_eq(seen[i].flags, 0);
	}
}
END_TEST

START_TEST(test_events_publish_api)
{
	char big[EVENTS_API_DATA_MAX + 2];

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(events_publish_api(ev, 3, "a", NULL, 0, 0, true, 0),
			 0);
	ck_assert_int_eq(events_publish_api(ev, 3, "a\r", NULL, 0, 0, true, 0),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(events_publish_api(ev, 3, "a", (uint8_t *)big,
					    strlen(big), 0, true, 0),
			 CINDER_ERR_TOO_BIG);
	run();
	ck_assert_int_eq(nseen, 1);
	ck_assert_str_eq(seen[0].coreid, "api");
	ck_assert_int_eq(seen[0].owner, 3);
	ck_assert(events_name_valid("", true));
	ck_assert(!events_name_valid("", false));
}
END_TEST

START_TEST(test_events_status_fill)
{
	json_t *o = json_object();

	dev_pub("s", "x", true);
	run();
	events_status_fill(ev, o);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(o, "events"),
						   "device_events")),
		1);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(json_object_get(o, "events"),
						 "streams"),
				 "open")),
			 0);
	json_decref(o);
}
END_TEST

static Suite *
events_suite(void)
{
	Suite *s = suite_create("events");
	struct {
		const char *name;
		const TTest *t;
	} tests[] = {
		{"test_events_device_limits", test_events_device_limits},
		{"test_events_device_rate_limit",
		 test_events_device_rate_limit},
		{"test_events_device_reserved", test_events_device_reserved},
		{"test_events_presence_status", test_events_presence_status},
		{"test_events_publish_api", test_events_publish_api},
		{"test_events_status_fill", test_events_status_fill},
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
	SRunner *sr = srunner_create(events_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
