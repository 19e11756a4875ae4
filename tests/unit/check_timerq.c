/* SPDX-License-Identifier: MIT */
/*
 * The deadline queue: pops in deadline order, moving a node earlier or
 * later, deleting from the middle and the end, deleting what is not
 * queued, a randomised run checked against a plain array, and the array
 * shrinking once most deadlines are gone. Pure.
 */
#include "config.h"

#include <stdlib.h>

#include <check.h>

#include "timerq.h"

START_TEST(test_timerq_order)
{
	struct timerq q;
	struct timerq_node n[5] = {{0}};
	uint64_t at[5] = {50, 10, 40, 10, 30};
	uint64_t prev = 0;
	int i;

	timerq_init(&q);
	ck_assert_ptr_null(timerq_first(&q));
	for (i = 0; i < 5; i++)
		timerq_set(&q, &n[i], at[i]);
	ck_assert_uint_eq(timerq_count(&q), 5);
	ck_assert_ptr_null(timerq_pop_due(&q, 9));
	for (i = 0; i < 5; i++) {
		struct timerq_node *x = timerq_pop_due(&q, 100);

		ck_assert_ptr_nonnull(x);
		ck_assert(!timerq_queued(x));
		ck_assert_uint_ge(x->at, prev);
		prev = x->at;
	}
	ck_assert_ptr_null(timerq_pop_due(&q, 100));
	ck_assert_uint_eq(timerq_count(&q), 0);
	timerq_cleanup(&q);
}
END_TEST

START_TEST(test_timerq_move_and_del)
{
	struct timerq q;
	struct timerq_node a = {0}, b = {0}, c = {0};

	timerq_init(&q);
	timerq_set(&q, &a, 10);
	timerq_set(&q, &b, 20);
	timerq_set(&q, &c, 30);
	timerq_set(&q, &c, 5); /* earlier */
	ck_assert_ptr_eq(timerq_first(&q), &c);
	timerq_set(&q, &c, 25); /* later */
	ck_assert_ptr_eq(timerq_first(&q), &a);
	timerq_del(&q, &a);
	timerq_del(&q, &a); /* not queued: nothing */
	ck_assert_uint_eq(timerq_count(&q), 2);
	ck_assert_ptr_eq(timerq_pop_due(&q, 100), &b);
	timerq_del(&q, &c); /* the last one */
	ck_assert_uint_eq(timerq_count(&q), 0);
	timerq_set(&q, &a, 7);
	timerq_cleanup(&q);
	ck_assert(!timerq_queued(&a));
}
END_TEST

START_TEST(test_timerq_random)
{
	enum { N = 500 };
	static struct timerq_node n[N];
	static bool in[N];
	struct timerq q;
	unsigned seed = 12345;
	int step, i;

	timerq_init(&q);
	for (step = 0; step < 20000; step++) {
		i = (int)(rand_r(&seed) % N);
		if (rand_r(&seed) % 3 == 0) {
			timerq_del(&q, &n[i]);
			in[i] = false;
		} else {
			timerq_set(&q, &n[i], (uint64_t)(rand_r(&seed) % 1000));
			in[i] = true;
		}
		if (step % 97 == 0) {
			/* the first is the earliest of those queued */
			struct timerq_node *f = timerq_first(&q);
			size_t cnt = 0;
			int j;

			for (j = 0; j < N; j++) {
				ck_assert(in[j] == timerq_queued(&n[j]));
				if (!in[j])
					continue;
				cnt++;
				ck_assert_ptr_nonnull(f);
				ck_assert_uint_le(f->at, n[j].at);
			}
			ck_assert_uint_eq(cnt, timerq_count(&q));
		}
	}
	timerq_cleanup(&q);
}
END_TEST

/* A fleet's deadlines gone: the heap's array shrinks with them. */
START_TEST(test_timerq_shrink)
{
	struct timerq q;
	struct timerq_node *n = calloc(10000, sizeof(*n));
	size_t i;

	ck_assert_ptr_nonnull(n);
	timerq_init(&q);
	for (i = 0; i < 10000; i++)
		timerq_set(&q, &n[i], 10000 - i);
	ck_assert_uint_ge(q.cap, 10000);
	for (i = 0; i < 9990; i++) {
		struct timerq_node *x = timerq_pop_due(&q, 100000);

		ck_assert_ptr_nonnull(x);
		ck_assert_uint_ge(q.cap, q.n);
	}
	ck_assert_uint_eq(timerq_count(&q), 10);
	ck_assert_uint_le(q.cap, 64);
	for (i = 0; i < 10; i++)
		ck_assert_ptr_nonnull(timerq_pop_due(&q, 100000));
	ck_assert_ptr_null(timerq_first(&q));
	timerq_cleanup(&q);
	free(n);
}
END_TEST

static Suite *
timerq_suite(void)
{
	Suite *s = suite_create("timerq");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_timerq_order);
	tcase_add_test(tc, test_timerq_move_and_del);
	tcase_add_test(tc, test_timerq_random);
	tcase_add_test(tc, test_timerq_shrink);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(timerq_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
