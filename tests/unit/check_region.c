/* SPDX-License-Identifier: MIT */
/*
 * The region behind tmpmem and evmem: a block's class follows from its
 * address, each class fills its own slice and then refuses, freed blocks
 * are reused, the region starts over when its last block is freed and
 * gives a large burst's pages back (they read zero again), a failed
 * reservation hands out nothing, and two threads sharing one region
 * leave it empty. Pure.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "region.h"

START_TEST(test_region_classes)
{
	struct region r;
	uint8_t *a, *b, *c;
	int x;

	ck_assert_int_eq(region_init(&r, 1 << 16, 4, 3, 1 << 20), 0);
	a = region_get(&r, 1);
	b = region_get(&r, 17);
	c = region_get(&r, 64);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_null(region_get(&r, 65)); /* above the largest */
	ck_assert_uint_eq(region_block_size(&r, a), 16);
	ck_assert_uint_eq(region_block_size(&r, b), 32);
	ck_assert_uint_eq(region_block_size(&r, c), 64);
	ck_assert_uint_eq((uintptr_t)b % 32, 0);
	ck_assert_uint_eq((uintptr_t)c % 64, 0);
	memset(a, 1, 16);
	memset(b, 2, 32);
	memset(c, 3, 64);
	ck_assert_uint_eq(a[15], 1);
	ck_assert_uint_eq(b[0], 2);
	ck_assert(region_owns(&r, a) && region_owns(&r, c + 63));
	ck_assert(!region_owns(&r, &x));
	region_put(&r, b);
	/* the freed block again, for any size of its class */
	ck_assert_ptr_eq(region_get(&r, 20), b);
	region_put(&r, a);
	region_put(&r, b);
	region_put(&r, c);
	region_free(&r);
}
END_TEST

START_TEST(test_region_full_and_reuse)
{
	struct region r;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0;
	struct region_stats st;
	static void *p[4096];
	void *q;

	/* a slice of one page and a bit: rounded down to one page */
	ck_assert_int_eq(region_init(&r, page + 100, 4, 2, 1 << 30), 0);
	while ((q = region_get(&r, 16)) != NULL) {
		ck_assert_uint_lt(n, 4096);
		p[n++] = q;
	}
	ck_assert_uint_eq(n, page / 16);
	/* the other class has its own slice */
	q = region_get(&r, 32);
	ck_assert_ptr_nonnull(q);
	region_put(&r, q);
	region_put(&r, p[7]);
	ck_assert_ptr_eq(region_get(&r, 16), p[7]);
	region_stats(&r, &st);
	ck_assert_uint_eq(st.live, n);
	ck_assert_uint_eq(st.resident, page + 32);
	while (n > 0)
		region_put(&r, p[--n]);
	region_stats(&r, &st);
	ck_assert_uint_eq(st.live, 0);
	ck_assert_uint_eq(st.resident, 0); /* started over */
	region_free(&r);
}
END_TEST

START_TEST(test_region_release)
{
	enum { N = 600 };
	static uint8_t *p[N];
	struct region r;
	size_t i;
	struct region_stats st;

	ck_assert_int_eq(region_init(&r, 1 << 20, 6, 2, 64 * 1024), 0);
	/* a small burst: starts over, keeps its pages */
	p[0] = region_get(&r, 100);
	memset(p[0], 0x77, 128);
	region_put(&r, p[0]);
	region_stats(&r, &st);
	ck_assert_uint_eq(st.releases, 0);
	ck_assert_uint_eq(st.resident, 0);
	/* a large one: its pages go back and read zero */
	for (i = 0; i < N; i++) {
		p[i] = region_get(&r, 128);
		memset(p[i], 0x5a, 128);
	}
	region_stats(&r, &st);
	ck_assert_uint_eq(st.live, N);
	ck_assert_uint_eq(st.resident, (size_t)N * 128);
	for (i = 0; i < N; i++)
		region_put(&r, p[i]);
	region_stats(&r, &st);
	ck_assert_uint_eq(st.live, 0);
	ck_assert_uint_eq(st.releases, 1);
	p[0] = region_get(&r, 128);
	ck_assert_uint_eq(p[0][0], 0);
	ck_assert_uint_eq(p[0][127], 0);
	region_put(&r, p[0]);
	region_free(&r);
}
END_TEST

START_TEST(test_region_refused)
{
	struct region r;
	int x;

	ck_assert_int_eq(region_init(&r, 1 << 16, 4, 0, 0), -1);
	ck_assert_ptr_null(region_get(&r, 1));
	ck_assert(!region_owns(&r, &x));
	region_free(&r);
	ck_assert_int_eq(region_init(&r, 1 << 16, 4, REGION_MAX_CLASSES + 1, 0),
			 -1);
	region_free(&r);
}
END_TEST

static void *
churn(void *arg)
{
	struct region *r = arg;
	void *p[64];
	int i, j;

	for (i = 0; i < 2000; i++) {
		for (j = 0; j < 64; j++) {
			p[j] = region_get(r, (size_t)(j % 3 + 1) * 16);
			ck_assert_ptr_nonnull(p[j]);
			memset(p[j], j, 16);
		}
		for (j = 0; j < 64; j++) {
			ck_assert_uint_eq(((uint8_t *)p[j])[15], (unsigned)j);
			region_put(r, p[j]);
		}
	}
	return NULL;
}

START_TEST(test_region_threads)
{
	struct region r;
	pthread_t t[2];
	struct region_stats st;

	ck_assert_int_eq(region_init(&r, 1 << 20, 4, 3, 4096), 0);
	ck_assert_int_eq(pthread_create(&t[0], NULL, churn, &r), 0);
	ck_assert_int_eq(pthread_create(&t[1], NULL, churn, &r), 0);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	region_stats(&r, &st);
	ck_assert_uint_eq(st.live, 0);
	region_free(&r);
}
END_TEST

static Suite *
region_suite(void)
{
	Suite *s = suite_create("region");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_region_classes);
	tcase_add_test(tc, test_region_full_and_reuse);
	tcase_add_test(tc, test_region_release);
	tcase_add_test(tc, test_region_refused);
	tcase_add_test(tc, test_region_threads);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(region_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
