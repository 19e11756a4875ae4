/* SPDX-License-Identifier: MIT */
/*
 * Per-IP rate limits: the sliding window (limit reached, refused requests
 * not counted, recovery as the window slides), bucket independence, the
 * global bucket, IPv4/IPv6 keys (/64, IPv4-mapped), the failed-login
 * lockout and its reset, and the bound on tracked addresses (LRU). Pure; the
 * tests pass the time.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include "api/ratelimit.h"
#include "err.h"

#define MIN5 (5ULL * 60 * 1000)

START_TEST(test_ratelimit_hit_limit)
{
	struct ratelimit *rl = ratelimit_new(0);
	struct rl_rule rule = {5, 1000};
	int i;

	ratelimit_set_rule(rl, RL_OAUTH_TOKEN, &rule);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(
			ratelimit_hit(rl, "10.0.0.1", RL_OAUTH_TOKEN, 100 + i),
			0);
	ck_assert_int_eq(ratelimit_hit(rl, "10.0.0.1", RL_OAUTH_TOKEN, 200),
			 CINDER_ERR_BUSY);
	/* another address and another bucket are not affected */
	ck_assert_int_eq(ratelimit_hit(rl, "10.0.0.2", RL_OAUTH_TOKEN, 200), 0);
	ck_assert_int_eq(ratelimit_hit(rl, "10.0.0.1", RL_ALL, 200), 0);
	ck_assert_int_eq(ratelimit_hit(rl, "10.0.0.1", RL_USERS_CREATE, 200),
			 0);
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_ratelimit_hit_slides)
{
	struct ratelimit *rl = ratelimit_new(0);
	struct rl_rule rule = {10, 1000};
	int i, ok;

	ratelimit_set_rule(rl, RL_TOKENS_LIST, &rule);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(ratelimit_hit(rl, "::1", RL_TOKENS_LIST, 0),
				 0);
	ck_assert_int_eq(ratelimit_hit(rl, "::1", RL_TOKENS_LIST, 500),
			 CINDER_ERR_BUSY);
	/* 1.5 windows later half of the old window still weighs in */
	for (ok = 0, i = 0; i < 10; i++)
		if (ratelimit_hit(rl, "::1", RL_TOKENS_LIST, 1500) == 0)
			ok++;
	ck_assert_int_eq(ok, 5);
	/* two windows of silence: a full budget again */
	for (ok = 0, i = 0; i < 20; i++)
		if (ratelimit_hit(rl, "::1", RL_TOKENS_LIST, 4000) == 0)
			ok++;
	ck_assert_int_eq(ok, 10);
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_ratelimit_hit_global)
{
	struct ratelimit *rl = ratelimit_new(0);
	struct rl_rule rule = {3, MIN5};

	ratelimit_set_rule(rl, RL_ALL, &rule);
	ck_assert_int_eq(ratelimit_hit(rl, "192.0.2.7", RL_ALL, 1), 0);
	ck_assert_int_eq(ratelimit_hit(rl, "192.0.2.7", RL_EVENTS, 2), 0);
	ck_assert_int_eq(ratelimit_hit(rl, "192.0.2.7", RL_OAUTH_TOKEN, 3), 0);
	ck_assert_int_eq(ratelimit_hit(rl, "192.0.2.7", RL_EVENTS, 4),
			 CINDER_ERR_BUSY);
	/* disabled rule */
	rule.limit = 0;
	ratelimit_set_rule(rl, RL_ALL, &rule);
	ck_assert_int_eq(ratelimit_hit(rl, "192.0.2.7", RL_ALL, 5), 0);
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_ratelimit_login_lockout)
{
	struct ratelimit *rl = ratelimit_new(0);
	uint64_t t = 1000000;
	int i;

	for (i = 0; i < 9; i++)
		ratelimit_login_failed(rl, "203.0.113.9", t + i);
	ck_assert(!ratelimit_locked(rl, "203.0.113.9", t + 10));
	/* a success resets the consecutive count */
	ratelimit_login_ok(rl, "203.0.113.9");
	for (i = 0; i < 9; i++)
		ratelimit_login_failed(rl, "203.0.113.9", t + 20 + i);
	ck_assert(!ratelimit_locked(rl, "203.0.113.9", t + 30));
	ratelimit_login_failed(rl, "203.0.113.9", t + 31);
	ck_assert(ratelimit_locked(rl, "203.0.113.9", t + 32));
	ck_assert(!ratelimit_locked(rl, "203.0.113.10", t + 32));
	ck_assert(ratelimit_locked(rl, "203.0.113.9", t + 31 + 30 * 60000 - 1));
	ck_assert(!ratelimit_locked(rl, "203.0.113.9", t + 31 + 30 * 60000));
	/* after the lock the count starts again */
	ratelimit_login_failed(rl, "203.0.113.9", t + 31 + 30 * 60000 + 1);
	ck_assert(
		!ratelimit_locked(rl, "203.0.113.9", t + 31 + 30 * 60000 + 2));
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_ratelimit_set_lockout_disabled)
{
	struct ratelimit *rl = ratelimit_new(0);
	int i;

	ratelimit_set_lockout(rl, 0, 1000);
	for (i = 0; i < 50; i++)
		ratelimit_login_failed(rl, "198.51.100.1", i);
	ck_assert(!ratelimit_locked(rl, "198.51.100.1", 60));
	ratelimit_set_lockout(rl, 2, 1000);
	ratelimit_login_failed(rl, "198.51.100.1", 100);
	ratelimit_login_failed(rl, "198.51.100.1", 101);
	ck_assert(ratelimit_locked(rl, "198.51.100.1", 102));
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_ratelimit_new_bounded)
{
	struct ratelimit *rl = ratelimit_new(8);
	struct rl_rule rule = {0, MIN5};
	char ip[32];
	int i;

	/* one locked address survives eviction; idle ones go first */
	ratelimit_set_lockout(rl, 1, MIN5 * 10);
	ratelimit_login_failed(rl, "10.9.9.9", 0);
	for (i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
		ck_assert_int_eq(ratelimit_hit(rl, ip, RL_ALL, 10 + i), 0);
		ck_assert_uint_le(ratelimit_count(rl), 8);
	}
	ck_assert(ratelimit_locked(rl, "10.9.9.9", 200));
	ratelimit_free(rl);

	/* eviction takes the least recently seen address, not the oldest */
	rl = ratelimit_new(8);
	rule.limit = 3;
	ratelimit_set_rule(rl, RL_EVENTS, &rule);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_hit(rl, "10.7.7.7", RL_EVENTS, i),
				 0);
	for (i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.2.0.%d", i);
		ck_assert_int_eq(ratelimit_hit(rl, ip, RL_ALL, 10 + i), 0);
		ck_assert_int_eq(ratelimit_hit(rl, "10.7.7.7", RL_ALL, 10 + i),
				 0);
	}
	ck_assert_int_eq(ratelimit_hit(rl, "10.7.7.7", RL_EVENTS, 200),
			 CINDER_ERR_BUSY);
	/* unparseable addresses still get a bounded key */
	ck_assert_int_eq(
		ratelimit_hit(rl, "not an address at all, long", RL_ALL, 300),
		0);
	ck_assert_uint_le(ratelimit_count(rl), 8);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}
END_TEST

START_TEST(test_ratelimit_hit_keys)
{
	struct ratelimit *rl = ratelimit_new(0);
	struct rl_rule rule = {2, MIN5};

	ratelimit_set_rule(rl, RL_USERS_CREATE, &rule);
	/* one IPv6 /64 is one client */
	ck_assert_int_eq(
		ratelimit_hit(rl, "2001:db8:1:2::1", RL_USERS_CREATE, 1), 0);
	ck_assert_int_eq(
		ratelimit_hit(rl, "2001:db8:1:2::ffff", RL_USERS_CREATE, 2), 0);
	ck_assert_int_eq(
		ratelimit_hit(rl, "2001:db8:1:2:abcd::9", RL_USERS_CREATE, 3),
		CINDER_ERR_BUSY);
	ck_assert_int_eq(
		ratelimit_hit(rl, "2001:db8:1:3::1", RL_USERS_CREATE, 4), 0);
	/* an IPv4-mapped address is the IPv4 address, and mapped addresses
	 * are not lumped together */
	ck_assert_int_eq(ratelimit_hit(rl, "192.0.2.1", RL_USERS_CREATE, 5), 0);
	ck_assert_int_eq(
		ratelimit_hit(rl, "::ffff:192.0.2.1", RL_USERS_CREATE, 6), 0);
	ck_assert_int_eq(
		ratelimit_hit(rl, "::ffff:192.0.2.1", RL_USERS_CREATE, 7),
		CINDER_ERR_BUSY);
	ck_assert_int_eq(
		ratelimit_hit(rl, "::ffff:192.0.2.2", RL_USERS_CREATE, 8), 0);
	ratelimit_free(rl);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	struct {
		const char *name;
		const TTest *fn;
	} t[] = {
		{"hit_limit", test_ratelimit_hit_limit},
		{"hit_slides", test_ratelimit_hit_slides},
		{"hit_global", test_ratelimit_hit_global},
		{"login_lockout", test_ratelimit_login_lockout},
		{"lockout_disabled", test_ratelimit_set_lockout_disabled},
		{"bounded", test_ratelimit_new_bounded},
		{"keys", test_ratelimit_hit_keys},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		TCase *tc = tcase_create(t[i].name);

		tcase_add_test(tc, t[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ratelimit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
