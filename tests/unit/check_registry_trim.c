/* SPDX-License-Identifier: MIT */
/*
 * When the trim after a connect storm may run: after 256 handshakes and
 * closes (or one per 40 devices connected, if more), in the first second
 * with at most 16 of them (or one per 1,000 devices connected, if more).
 * A fleet's usual reconnections (a handshake and a close each) must read
 * as quiet at any size, a storm as busy, and under those reconnections
 * the trim must come back about as often at any size. Pure.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <check.h>

#include "registry_int.h"

/* handshakes and closes a second when `n` devices reconnect `pct_min`
   percent a minute */
static uint64_t
churn(uint64_t n, unsigned pct_min)
{
	return 2 * n * pct_min / 100 / 60;
}

START_TEST(test_trim_small_fleet)
{
	ck_assert(registry_trim_quiet(0, 0));
	ck_assert(registry_trim_quiet(16, 0));
	ck_assert(!registry_trim_quiet(17, 0));
	/* 05-trim-churn: 300 devices, 5 reconnecting a second */
	ck_assert(registry_trim_quiet(10, 300));
	ck_assert(!registry_trim_quiet(17, 300));
}
END_TEST

START_TEST(test_trim_churn_any_size)
{
	static const uint64_t sizes[] = {1000,	 10000,	 48000,
					 100000, 250000, 1000000};
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t n = sizes[i];

		ck_assert_msg(registry_trim_quiet(churn(n, 1), n),
			      "1%%/min at %llu devices (%llu a second) "
			      "reads as a storm",
			      (unsigned long long)n,
			      (unsigned long long)churn(n, 1));
		ck_assert_msg(registry_trim_quiet(churn(n, 3), n),
			      "3%%/min at %llu devices reads as a storm",
			      (unsigned long long)n);
	}
	/* the old fixed 16 failed here: 100,000 devices at 1%/min */
	ck_assert_uint_eq(churn(100000, 1), 33);
	ck_assert(registry_trim_quiet(33, 100000));
	ck_assert(registry_trim_quiet(100, 100000));
	ck_assert(!registry_trim_quiet(101, 100000));
}
END_TEST

START_TEST(test_trim_storm_busy)
{
	/* a storm of 10,000 paced at 200 a second, as it fills the fleet */
	ck_assert(!registry_trim_quiet(200, 0));
	ck_assert(!registry_trim_quiet(200, 5000));
	ck_assert(!registry_trim_quiet(200, 10000));
	/* one node's RSA ceiling (~1,400 handshakes a second, B1) at
	   100,000 devices, and a mass disconnect of them */
	ck_assert(!registry_trim_quiet(1400, 100000));
	ck_assert(!registry_trim_quiet(5000, 100000));
	/* no overflow at absurd sizes */
	ck_assert(registry_trim_quiet(UINT64_MAX / 1000, UINT64_MAX));
	ck_assert(!registry_trim_quiet(UINT64_MAX, UINT64_MAX));
}
END_TEST

/* the fewest handshakes and closes that make a trim due */
static uint64_t
due_at(uint64_t n)
{
	uint64_t e = 0;

	while (!registry_trim_due(e, n))
		e++;
	return e;
}

START_TEST(test_trim_due)
{
	static const uint64_t sizes[] = {10000, 48000, 100000, 1000000};
	size_t i;

	ck_assert(!registry_trim_due(0, 0));
	ck_assert(!registry_trim_due(255, 0));
	ck_assert(registry_trim_due(256, 0));
	ck_assert_uint_eq(due_at(300), 256);
	ck_assert_uint_eq(due_at(10000), 256);
	/* a fixed 256 ran it every ~8 s at 100,000 devices (1%/min) */
	ck_assert(!registry_trim_due(256, 100000));
	ck_assert(!registry_trim_due(2499, 100000));
	ck_assert(registry_trim_due(2500, 100000));
	/* a storm of the whole fleet is always due */
	ck_assert(registry_trim_due(100000, 100000));
	/* reconnecting 1% a minute (N/3,000 a second), the trim comes
	   back every 60-90 s from 10,000 devices up */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double s = (double)due_at(sizes[i]) * 3000.0 / (double)sizes[i];

		ck_assert_msg(s >= 60.0 && s <= 90.0,
			      "%llu devices: a trim every %.1f s",
			      (unsigned long long)sizes[i], s);
	}
	ck_assert(registry_trim_due(UINT64_MAX, UINT64_MAX));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("registry_trim");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_trim_small_fleet);
	tcase_add_test(tc, test_trim_churn_any_size);
	tcase_add_test(tc, test_trim_storm_busy);
	tcase_add_test(tc, test_trim_due);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
