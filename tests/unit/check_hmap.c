/* SPDX-License-Identifier: MIT */
/*
 * The hash map: put, replace, get, remove, keys too long, iteration, and
 * its table growing with a crowd and shrinking once the crowd has gone
 * (every entry still found on the way down), and removing the entries
 * a predicate picks in one pass. Pure.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "err.h"
#include "hmap.h"

START_TEST(test_hmap_basic)
{
	struct hmap *m = hmap_new();
	char big[HMAP_KEY_MAX + 1] = {0};
	int a = 1, b = 2;
	void *old = &a;

	ck_assert_int_eq(hmap_put(m, "k", 1, &a, &old), 0);
	ck_assert_ptr_null(old);
	ck_assert_int_eq(hmap_put(m, "k", 1, &b, &old), 0);
	ck_assert_ptr_eq(old, &a);
	ck_assert_ptr_eq(hmap_get(m, "k", 1), &b);
	ck_assert_ptr_null(hmap_get(m, "k2", 2));
	ck_assert_uint_eq(hmap_count(m), 1);
	ck_assert_int_eq(hmap_put(m, big, sizeof(big), &a, NULL),
			 CINDER_ERR_INVAL);
	ck_assert_ptr_null(hmap_get(m, big, sizeof(big)));
	ck_assert_ptr_eq(hmap_remove(m, "k", 1), &b);
	ck_assert_ptr_null(hmap_remove(m, "k", 1));
	ck_assert_uint_eq(hmap_count(m), 0);
	hmap_free(m);
	hmap_free(NULL);
}
END_TEST

static int
count_cb(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)value;
	(*(size_t *)arg)++;
	return 0;
}

/* 10,000 entries in, then out again: the table follows. */
START_TEST(test_hmap_grow_shrink)
{
	struct hmap *m = hmap_new();
	size_t small = hmap_nbuckets(m), seen = 0, i, j;
	char key[16];
	uint64_t k;

	for (i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "dev%zu", i);
		ck_assert_int_eq(
			hmap_put(m, key, strlen(key), (void *)(i + 1), NULL),
			0);
	}
	ck_assert_uint_eq(hmap_count(m), 10000);
	ck_assert_uint_ge(hmap_nbuckets(m), 10000);
	hmap_foreach(m, count_cb, &seen);
	ck_assert_uint_eq(seen, 10000);
	for (i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "dev%zu", i);
		ck_assert_ptr_eq(hmap_remove(m, key, strlen(key)),
				 (void *)(i + 1));
		/* never below an eighth full for long, never over full */
		ck_assert_uint_le(hmap_count(m), hmap_nbuckets(m));
		if (hmap_nbuckets(m) > small)
			ck_assert_uint_ge(hmap_count(m) * 8 + 1,
					  hmap_nbuckets(m) / 4);
		if (i % 997 == 0)
			for (j = i + 1; j < 10000; j += 101) {
				snprintf(key, sizeof(key), "dev%zu", j);
				ck_assert_ptr_eq(hmap_get(m, key, strlen(key)),
						 (void *)(j + 1));
			}
	}
	ck_assert_uint_eq(hmap_count(m), 0);
	ck_assert_uint_eq(hmap_nbuckets(m), small);
	/* integer keys, and the table grows again */
	for (k = 0; k < 100; k++)
		hmap_put(m, &k, sizeof(k), (void *)(uintptr_t)(k + 1), NULL);
	for (k = 0; k < 100; k++)
		ck_assert_ptr_eq(hmap_get_u64(m, k),
				 (void *)(uintptr_t)(k + 1));
	ck_assert_uint_gt(hmap_nbuckets(m), small);
	hmap_free(m);
}
END_TEST

/* Odd values out: the devrow.c row cache's sweep of expired rows. */
static bool
odd_cb(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(*(size_t *)arg)++;
	return (uintptr_t)value % 2 == 1;
}

static bool
even_cb(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	return (uintptr_t)value % 2 == 0;
}

static bool
all_cb(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)value;
	(void)arg;
	return true;
}

START_TEST(test_hmap_remove_if)
{
	struct hmap *m = hmap_new();
	size_t small = hmap_nbuckets(m), seen = 0, i;
	char key[16];

	ck_assert_uint_eq(hmap_remove_if(m, all_cb, NULL), 0);
	for (i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "dev%zu", i);
		hmap_put(m, key, strlen(key), (void *)(i + 1), NULL);
	}
	ck_assert_uint_eq(hmap_remove_if(m, odd_cb, &seen), 5000);
	ck_assert_uint_eq(seen, 10000);
	ck_assert_uint_eq(hmap_count(m), 5000);
	for (i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "dev%zu", i);
		if (i % 2 == 0)
			ck_assert_ptr_null(hmap_get(m, key, strlen(key)));
		else
			ck_assert_ptr_eq(hmap_get(m, key, strlen(key)),
					 (void *)(i + 1));
	}
	/* all but one: the table gives its room back in one go */
	snprintf(key, sizeof(key), "dev%d", 3);
	hmap_put(m, key, strlen(key), (void *)3, NULL);
	ck_assert_uint_eq(hmap_remove_if(m, even_cb, NULL), 4999);
	ck_assert_uint_eq(hmap_count(m), 1);
	ck_assert_uint_eq(hmap_nbuckets(m), small);
	ck_assert_ptr_eq(hmap_get(m, key, strlen(key)), (void *)3);
	ck_assert_uint_eq(hmap_remove_if(m, all_cb, NULL), 1);
	ck_assert_uint_eq(hmap_count(m), 0);
	hmap_free(m);
}
END_TEST

static Suite *
hmap_suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_hmap_basic);
	tcase_add_test(tc, test_hmap_grow_shrink);
	tcase_add_test(tc, test_hmap_remove_if);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(hmap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
