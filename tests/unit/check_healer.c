/* SPDX-License-Identifier: MIT */
/*
 * Tests for the healer's decisions (src/healer/healstep.c): a table of
 * (plan, send record, slots, refusal, time) -> action, covering the
 * retry limit, a running back-off, a full concurrency cap, a missing
 * part reported once, a 5.03 refusal, and never a downgrade; then the
 * back-off schedule of healstep_failed().
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healer/healstep.h"
#include "healer/module.h"

#define S MODULE_FUNC_SYSTEM
#define B MODULE_FUNC_BOOTLOADER

static const struct planner_image s2_1512 = {"s2-1512", 6,     S,    2,
					     1512,	{{0}}, false};
static const struct planner_image s1_207 = {"s1-207", 6,     S,	   1,
					    207,      {{0}}, false};

#define MISSING_WHY "no s 2 version >= 1512 for platform 6 in the catalogue"

/* Plans: send s2 1512 over 207; send s1 207 over 1512 (a downgrade the
   planner must never produce); missing; blocked; nothing. */
static struct planner_result plan_send, plan_down, plan_missing, plan_blocked,
	plan_nothing;

static void
plans_init(void)
{
	memset(&plan_send, 0, sizeof(plan_send));
	plan_send.status = PLANNER_SEND;
	plan_send.image = &s2_1512;
	plan_send.need = (struct planner_need){S, 2, 1512, true, 207};

	plan_down = plan_send;
	plan_down.image = &s1_207;
	plan_down.need = (struct planner_need){S, 1, 207, true, 1512};

	memset(&plan_missing, 0, sizeof(plan_missing));
	plan_missing.status = PLANNER_MISSING;
	plan_missing.need = (struct planner_need){S, 2, 1512, true, 207};
	snprintf(plan_missing.reason, sizeof(plan_missing.reason), "%s",
		 MISSING_WHY);

	plan_blocked = plan_missing;
	plan_blocked.status = PLANNER_BLOCKED;
	snprintf(plan_blocked.reason, sizeof(plan_blocked.reason), "%s",
		 "2 modules needed, but each depends on another");

	memset(&plan_nothing, 0, sizeof(plan_nothing));
}

enum plan_kind { P_SEND, P_DOWN, P_MISSING, P_BLOCKED, P_NOTHING };

static const struct planner_result *
plan_of(enum plan_kind k)
{
	switch (k) {
	case P_SEND:
		return &plan_send;
	case P_DOWN:
		return &plan_down;
	case P_MISSING:
		return &plan_missing;
	case P_BLOCKED:
		return &plan_blocked;
	case P_NOTHING:
		break;
	}
	return &plan_nothing;
}

struct hcase {
	const char *what;
	enum plan_kind plan;
	bool has_try;
	unsigned fails;
	uint64_t next_ms;
	bool has_slot;
	unsigned active, cap, retries;
	bool refused;
	const char *reported;
	uint64_t now;
	/* expected */
	enum healstep_action action;
	bool report;
	uint64_t until;
	const char *reason_has; /* substring of out.reason, or NULL */
};

static const struct hcase cases[] = {
	{"first send", P_SEND, false, 0, 0, true, 1, 4, 3, false, "", 1000,
	 HEALSTEP_SEND, false, 0, NULL},
	{"retry after the back-off", P_SEND, true, 1, 5000, true, 1, 4, 3,
	 false, "", 5000, HEALSTEP_SEND, false, 0, NULL},
	{"back-off not elapsed", P_SEND, true, 1, 5000, true, 1, 4, 3, false,
	 "", 4999, HEALSTEP_WAIT, false, 5000, NULL},
	{"retry limit reached", P_SEND, true, 3, 0, true, 1, 4, 3, false, "",
	 9000, HEALSTEP_GIVE_UP, false, 0,
	 "system_part 2 version 1512 failed 3 times"},
	{"retry limit beats the back-off", P_SEND, true, 3, 99999, true, 1, 4,
	 3, false, "", 1, HEALSTEP_GIVE_UP, false, 0, "failed 3 times"},
	{"cap full, no slot", P_SEND, false, 0, 0, false, 4, 4, 3, false, "", 1,
	 HEALSTEP_QUEUE, false, 0, NULL},
	{"cap full but holds a slot", P_SEND, false, 0, 0, true, 4, 4, 3, false,
	 "", 1, HEALSTEP_SEND, false, 0, NULL},
	{"a slot is free", P_SEND, false, 0, 0, false, 3, 4, 3, false, "", 1,
	 HEALSTEP_SEND, false, 0, NULL},
	{"cap full, missing part: queue first", P_MISSING, false, 0, 0, false,
	 2, 2, 3, false, "", 1, HEALSTEP_QUEUE, false, 0, NULL},
	{"missing part, first time: report", P_MISSING, false, 0, 0, true, 1, 4,
	 3, false, "", 1, HEALSTEP_STUCK, true, 0, MISSING_WHY},
	{"missing part, said already: quiet", P_MISSING, false, 0, 0, true, 1,
	 4, 3, false, MISSING_WHY, 1, HEALSTEP_STUCK, false, 0, MISSING_WHY},
	{"missing part, other problem said before", P_MISSING, false, 0, 0,
	 true, 1, 4, 3, false, "something else", 1, HEALSTEP_STUCK, true, 0,
	 MISSING_WHY},
	{"blocked: report", P_BLOCKED, false, 0, 0, true, 1, 4, 3, false, "", 1,
	 HEALSTEP_STUCK, true, 0, "depends on another"},
	{"never downgrade", P_DOWN, false, 0, 0, true, 1, 4, 3, false, "", 1,
	 HEALSTEP_STUCK, true, 0, "would not upgrade version 1512"},
	{"nothing to do", P_NOTHING, false, 0, 0, true, 1, 4, 3, false, "", 1,
	 HEALSTEP_DONE, false, 0, NULL},
	{"updates disabled: report", P_SEND, false, 0, 0, true, 1, 4, 3, true,
	 "", 1, HEALSTEP_STUCK, true, 0, "firmware_updates_forced"},
	{"updates disabled, said already", P_SEND, true, 0, 0, true, 1, 4, 3,
	 true, HEALSTEP_DISABLED_REASON, 1, HEALSTEP_STUCK, false, 0, "(5.03)"},
	{"updates disabled: no give-up count", P_SEND, true, 2, 0, true, 1, 4,
	 3, true, "", 1, HEALSTEP_STUCK, true, 0, NULL},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_table)
{
	const struct hcase *c = &cases[_i];
	struct healstep_try t = {c->fails, c->next_ms};
	struct healstep_in in;
	struct healstep_out out;

	plans_init();
	memset(&in, 0, sizeof(in));
	in.plan = plan_of(c->plan);
	in.try = c->has_try ? &t : NULL;
	in.has_slot = c->has_slot;
	in.active = c->active;
	in.cap = c->cap;
	in.retries = c->retries;
	in.updates_refused = c->refused;
	in.reported = c->reported;
	in.now_ms = c->now;
	healstep_decide(&in, &out);
	ck_assert_msg(out.action == c->action, "%s: %s, expected %s", c->what,
		      healstep_action_str(out.action),
		      healstep_action_str(c->action));
	ck_assert_msg(out.report == c->report, "%s: report %d", c->what,
		      out.report);
	if (c->action == HEALSTEP_SEND)
		ck_assert_ptr_eq(out.image, in.plan->image);
	else
		ck_assert_ptr_null(out.image);
	if (c->action == HEALSTEP_WAIT)
		ck_assert_uint_eq(out.until_ms, c->until);
	if (c->reason_has != NULL)
		ck_assert_msg(strstr(out.reason, c->reason_has) != NULL,
			      "%s: reason \"%s\"", c->what, out.reason);
}
END_TEST

/* Doubling from the base, capped at 2^HEALSTEP_SHIFT_MAX; give up at the
   retry count. */
START_TEST(test_failed_backoff)
{
	struct healstep_try t = {0, 0};
	unsigned i;

	ck_assert(!healstep_failed(&t, 4, 10, 1000, false));
	ck_assert_uint_eq(t.fails, 1);
	ck_assert_uint_eq(t.next_ms, 1000 + 10000);
	ck_assert(!healstep_failed(&t, 4, 10, 2000, false));
	ck_assert_uint_eq(t.next_ms, 2000 + 20000);
	ck_assert(!healstep_failed(&t, 4, 10, 3000, false));
	ck_assert_uint_eq(t.next_ms, 3000 + 40000);
	ck_assert(healstep_failed(&t, 4, 10, 4000, false));
	ck_assert_uint_eq(t.fails, 4);

	memset(&t, 0, sizeof(t));
	for (i = 0; i < 30; i++)
		ck_assert(!healstep_failed(&t, 100, 1, 0, false));
	ck_assert_uint_eq(t.next_ms, 1000u << HEALSTEP_SHIFT_MAX);

	/* one allowed send: the first failure ends it */
	memset(&t, 0, sizeof(t));
	ck_assert(healstep_failed(&t, 1, 10, 0, false));
}
END_TEST

/* A transfer cut by a disconnect counts against the retries but has no
   back-off, even after a failure that had one. */
START_TEST(test_failed_disconnected)
{
	struct healstep_try t = {0, 0};

	ck_assert(!healstep_failed(&t, 3, 10, 1000, false));
	ck_assert_uint_eq(t.next_ms, 11000);
	ck_assert(!healstep_failed(&t, 3, 10, 2000, true));
	ck_assert_uint_eq(t.fails, 2);
	ck_assert_uint_eq(t.next_ms, 0);
	ck_assert(healstep_failed(&t, 3, 10, 3000, true));
	ck_assert_uint_eq(t.fails, 3);
}
END_TEST

/* A failure recorded by healstep_failed() drives healstep_decide(): wait,
   then send, then give up. */
START_TEST(test_failed_then_decide)
{
	struct healstep_try t = {0, 0};
	struct healstep_in in;
	struct healstep_out out;

	plans_init();
	memset(&in, 0, sizeof(in));
	in.plan = &plan_send;
	in.try = &t;
	in.has_slot = true;
	in.active = 1;
	in.cap = 1;
	in.retries = 2;
	in.reported = "";
	ck_assert(!healstep_failed(&t, 2, 5, 100, false));
	in.now_ms = 200;
	healstep_decide(&in, &out);
	ck_assert_int_eq(out.action, HEALSTEP_WAIT);
	ck_assert_uint_eq(out.until_ms, 5100);
	in.now_ms = 5100;
	healstep_decide(&in, &out);
	ck_assert_int_eq(out.action, HEALSTEP_SEND);
	ck_assert(healstep_failed(&t, 2, 5, 6000, false));
	healstep_decide(&in, &out);
	ck_assert_int_eq(out.action, HEALSTEP_GIVE_UP);
}
END_TEST

START_TEST(test_may_start)
{
	ck_assert(healstep_may_start(0, 1));
	ck_assert(!healstep_may_start(1, 1));
	ck_assert(!healstep_may_start(5, 1));
	ck_assert(!healstep_may_start(0, 0));
}
END_TEST

static Suite *
healer_suite(void)
{
	Suite *s = suite_create("healer");
	TCase *tc = tcase_create("decide");

	tcase_add_loop_test(tc, test_table, 0, (int)NCASES);
	tcase_add_test(tc, test_failed_backoff);
	tcase_add_test(tc, test_failed_disconnected);
	tcase_add_test(tc, test_failed_then_decide);
	tcase_add_test(tc, test_may_start);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(healer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
