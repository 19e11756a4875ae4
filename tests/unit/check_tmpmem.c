/* SPDX-License-Identifier: MIT */
/*
 * tmpmem: blocks of every size class keep their bytes, are reused after
 * a free, large ones come from malloc, and once a burst of more than a
 * megabyte is all freed its pages go back (a release is counted and the
 * region starts over). Pure.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tmpmem.h"

START_TEST(test_tmpmem_sizes)
{
	static const size_t sizes[] = {1,   15,	  64,	65,   100,
				       500, 2000, 4096, 4097, 100000};
	void *p[sizeof(sizes) / sizeof(sizes[0])];
	struct tmpmem_stats st0, st;
	char *s;
	uint8_t *c;
	size_t i, j;

	tmpmem_stats_get(&st0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p[i] = tmpmem_alloc(sizes[i]);
		ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
		memset(p[i], (int)i + 1, sizes[i]);
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (j = 0; j < sizes[i]; j++)
			ck_assert_uint_eq(((uint8_t *)p[i])[j], i + 1);
	tmpmem_stats_get(&st);
	/* the two past the largest class are malloc's */
	ck_assert_uint_eq(st.live, st0.live + 8);
	s = tmpmem_strdup("SELECT 1");
	ck_assert_str_eq(s, "SELECT 1");
	c = tmpmem_calloc(3, 7);
	for (j = 0; j < 21; j++)
		ck_assert_uint_eq(c[j], 0);
	tmpmem_free(c);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		tmpmem_free(p[i]);
	tmpmem_free(s);
	tmpmem_free(NULL);
	tmpmem_stats_get(&st);
	ck_assert_uint_eq(st.live, st0.live);
}
END_TEST

START_TEST(test_tmpmem_calloc_reuse)
{
	uint8_t *a, *b;
	size_t i;

	a = tmpmem_calloc(10, 10);
	for (i = 0; i < 100; i++)
		ck_assert_uint_eq(a[i], 0);
	memset(a, 0xab, 100);
	b = tmpmem_alloc(16); /* keeps one block live */
	tmpmem_free(a);
	/* the same class: the freed block again, zeroed by calloc */
	a = tmpmem_calloc(1, 100);
	for (i = 0; i < 100; i++)
		ck_assert_uint_eq(a[i], 0);
	tmpmem_free(a);
	tmpmem_free(b);
}
END_TEST

START_TEST(test_tmpmem_burst_released)
{
	enum { N = 3000 };
	static void *p[N];
	struct tmpmem_stats st0, st;
	size_t i;

	tmpmem_stats_get(&st0);
	ck_assert_uint_eq(st0.live, 0);
	for (i = 0; i < N; i++) {
		p[i] = tmpmem_alloc(1000); /* the 1 KB class */
		memset(p[i], 0x5a, 1000);
	}
	tmpmem_stats_get(&st);
	ck_assert_uint_eq(st.live, N);
	ck_assert_uint_ge(st.resident, (size_t)N * 1024);
	for (i = 0; i < N; i++)
		tmpmem_free(p[i]);
	tmpmem_stats_get(&st);
	ck_assert_uint_eq(st.live, 0);
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.releases, st0.releases + 1);
	/* usable again, from the region's start, and zero after the
	   pages went back */
	p[0] = tmpmem_alloc(1000);
	ck_assert_uint_eq(((uint8_t *)p[0])[0], 0);
	tmpmem_free(p[0]);
	tmpmem_stats_get(&st);
	ck_assert_uint_eq(st.releases, st0.releases + 1); /* small: kept */
	ck_assert_uint_eq(st.touched, 1024);
	/* the trim gives the small burst's page back */
	tmpmem_trim();
	tmpmem_stats_get(&st);
	ck_assert_uint_eq(st.releases, st0.releases + 2);
	ck_assert_uint_eq(st.touched, 0);
	/* nothing more to give back, and not while a block is in use */
	tmpmem_trim();
	p[0] = tmpmem_alloc(1000);
	tmpmem_trim();
	tmpmem_stats_get(&st);
	ck_assert_uint_eq(st.releases, st0.releases + 2);
	ck_assert_uint_eq(st.touched, 1024);
	tmpmem_free(p[0]);
}
END_TEST

static Suite *
tmpmem_suite(void)
{
	Suite *s = suite_create("tmpmem");
	TCase *tc = tcase_create("core");

	/* in one process: the counters are the process's */
	tcase_add_test(tc, test_tmpmem_burst_released);
	tcase_add_test(tc, test_tmpmem_sizes);
	tcase_add_test(tc, test_tmpmem_calloc_reuse);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tmpmem_suite());
	int failed;

	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
