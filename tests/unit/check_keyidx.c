/* SPDX-License-Identifier: MIT */
/*
 * keyidx: entries under byte keys, in insertion order per key; a key's
 * list goes with its last entry; removal of an entry in no index is a
 * no-op.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "keyidx.h"

struct item {
	int v;
	struct keyidx_entry ix;
};

static int
val(struct keyidx_entry *e)
{
	return ((struct item *)(void *)((char *)e - offsetof(struct item, ix)))
		->v;
}

/* The values under key, in order, as "1,2,3". */
static const char *
walk(const struct keyidx *ix, const char *key, char *buf, size_t cap)
{
	struct keyidx_entry *e;
	size_t n = 0;

	buf[0] = '\0';
	for (e = keyidx_first(ix, key, strlen(key)); e != NULL;
	     e = keyidx_next(e))
		n += (size_t)snprintf(buf + n, cap - n, "%s%d", n ? "," : "",
				      val(e));
	return buf;
}

START_TEST(test_keyidx_lists)
{
	struct keyidx *ix = keyidx_new();
	struct item it[5];
	char buf[64];
	int i;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 5; i++)
		it[i].v = i + 1;
	keyidx_add(ix, &it[0].ix, "a", 1);
	keyidx_add(ix, &it[1].ix, "b", 1);
	keyidx_add(ix, &it[2].ix, "a", 1);
	keyidx_add(ix, &it[3].ix, "a", 1);
	ck_assert_uint_eq(keyidx_count(ix), 4);
	ck_assert_str_eq(walk(ix, "a", buf, sizeof(buf)), "1,3,4");
	ck_assert_str_eq(walk(ix, "b", buf, sizeof(buf)), "2");
	ck_assert_str_eq(walk(ix, "c", buf, sizeof(buf)), "");
	/* a key is its bytes: "ab" is not under "a" */
	ck_assert_ptr_null(keyidx_first(ix, "ab", 2));

	keyidx_remove(ix, &it[2].ix); /* from the middle */
	ck_assert_ptr_null(it[2].ix.list);
	ck_assert_str_eq(walk(ix, "a", buf, sizeof(buf)), "1,4");
	keyidx_remove(ix, &it[2].ix); /* in none: nothing */
	keyidx_remove(ix, &it[4].ix); /* never added: nothing */
	ck_assert_uint_eq(keyidx_count(ix), 3);

	/* moved to another key, as an owner change does */
	keyidx_remove(ix, &it[1].ix);
	ck_assert_ptr_null(keyidx_first(ix, "b", 1));
	keyidx_add(ix, &it[1].ix, "a", 1);
	ck_assert_str_eq(walk(ix, "a", buf, sizeof(buf)), "1,4,2");

	keyidx_remove(ix, &it[0].ix);
	keyidx_remove(ix, &it[3].ix);
	keyidx_remove(ix, &it[1].ix);
	ck_assert_uint_eq(keyidx_count(ix), 0);
	ck_assert_ptr_null(keyidx_first(ix, "a", 1));
	keyidx_free(ix); /* ASan: every list went with its last entry */
	keyidx_free(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("keyidx");
	TCase *tc = tcase_create("lists");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_keyidx_lists);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
