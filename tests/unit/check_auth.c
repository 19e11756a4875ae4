/* SPDX-License-Identifier: MIT */
/*
 * Token helpers and the token cache of the REST API: token format and
 * randomness, SHA-256 hashing, well-formedness checks, cache TTL, token
 * expiry, eviction of the oldest entry, revocation of one token and of
 * every token of a user. Pure; no sockets, no database.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "api/auth.h"
#include "err.h"

static void
hash_of(const char *s, uint8_t h[32])
{
	auth_token_hash(s, h);
}

START_TEST(test_auth_token_generate_format)
{
	char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
	size_t i;

	ck_assert_int_eq(auth_token_generate(a), 0);
	ck_assert_int_eq(auth_token_generate(b), 0);
	ck_assert_uint_eq(strlen(a), 40);
	for (i = 0; i < 40; i++)
		ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
	ck_assert_str_ne(a, b);
	ck_assert(auth_token_wellformed(a));
}
END_TEST

START_TEST(test_auth_token_wellformed_rejects)
{
	char longtok[200];

	ck_assert(!auth_token_wellformed(NULL));
	ck_assert(!auth_token_wellformed(""));
	ck_assert(!auth_token_wellformed("abc def"));
	ck_assert(!auth_token_wellformed("abc\x01"));
	ck_assert(!auth_token_wellformed("caf\xc3\xa9"));
	memset(longtok, 'a', sizeof(longtok) - 1);
	longtok[sizeof(longtok) - 1] = '\0';
	ck_assert(!auth_token_wellformed(longtok));
	longtok[128] = '\0';
	ck_assert(auth_token_wellformed(longtok));
	longtok[129 - 1] = 'a';
	longtok[129] = '\0';
	ck_assert(!auth_token_wellformed(longtok));
}
END_TEST

START_TEST(test_auth_token_hash_known)
{
	uint8_t h[32];
	/* SHA-256("abc") */
	static const uint8_t want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

	hash_of("abc", h);
	ck_assert_mem_eq(h, want, 32);
}
END_TEST

static char alice_name[] = "alice@example.com", alice_client[] = "particle";
static char root_name[] = "root@example.com";
static struct auth_user alice = {7, alice_name, false, alice_client, 0};
static struct auth_user root = {1, root_name, true, NULL, 0};

/* A reference outlives the entry: revoked, expired or the cache freed. */
START_TEST(test_auth_cache_ref_outlives)
{
	struct auth_cache *c = auth_cache_new(1000, 10);
	struct auth_user *u, *v;
	uint8_t h[32];

	hash_of("t1", h);
	ck_assert_ptr_null(auth_cache_ref(c, h, 0));
	auth_cache_put(c, h, &alice, 0, 5000);
	u = auth_cache_ref(c, h, 5000);
	v = auth_cache_ref(c, h, 5001);
	ck_assert_ptr_nonnull(u);
	ck_assert_ptr_eq(u, v);
	ck_assert_ptr_eq(auth_cache_get(c, h, 5002), u);
	auth_cache_remove(c, h);
	ck_assert_uint_eq(auth_cache_count(c), 0);
	ck_assert_int_eq(u->id, 7);
	ck_assert_str_eq(u->username, "alice@example.com");
	auth_user_free(v);
	ck_assert_str_eq(u->client_id, "particle");
	auth_user_free(u);
	auth_cache_put(c, h, &alice, 0, 5000);
	u = auth_cache_ref(c, h, 5000);
	ck_assert_ptr_null(auth_cache_ref(c, h, 6000)); /* expired */
	auth_cache_free(c);
	ck_assert_str_eq(u->username, "alice@example.com");
	auth_user_free(u);
}
END_TEST

START_TEST(test_auth_cache_get_ttl)
{
	struct auth_cache *c = auth_cache_new(1000, 10);
	const struct auth_user *u;
	uint8_t h[32];

	hash_of("t1", h);
	ck_assert_ptr_null(auth_cache_get(c, h, 0));
	auth_cache_put(c, h, &alice, 0, 5000);
	u = auth_cache_get(c, h, 5999);
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->id, 7);
	ck_assert_str_eq(u->username, "alice@example.com");
	ck_assert_str_eq(u->client_id, "particle");
	ck_assert(!u->is_admin);
	/* the copy is independent of the caller's struct */
	ck_assert_ptr_ne(u->username, alice.username);
	ck_assert_ptr_null(auth_cache_get(c, h, 6000));
	ck_assert_uint_eq(auth_cache_count(c), 0);
	auth_cache_free(c);
}
END_TEST

START_TEST(test_auth_cache_put_token_expiry)
{
	struct auth_cache *c = auth_cache_new(30000, 10);
	uint8_t h[32];

	hash_of("t2", h);
	/* a token that expires before the TTL is cached until it expires */
	auth_cache_put(c, h, &root, 1500, 1000);
	ck_assert_ptr_nonnull(auth_cache_get(c, h, 1499));
	ck_assert_ptr_null(auth_cache_get(c, h, 1500));
	auth_cache_free(c);
}
END_TEST

START_TEST(test_auth_cache_put_evicts_oldest)
{
	struct auth_cache *c = auth_cache_new(30000, 3);
	uint8_t h[4][32];
	char name[16];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "tok%d", i);
		hash_of(name, h[i]);
		auth_cache_put(c, h[i], &alice, 0, 0);
	}
	ck_assert_uint_eq(auth_cache_count(c), 3);
	ck_assert_ptr_null(auth_cache_get(c, h[0], 1));
	for (i = 1; i < 4; i++)
		ck_assert_ptr_nonnull(auth_cache_get(c, h[i], 1));
	/* replacing an entry does not grow the cache */
	auth_cache_put(c, h[3], &root, 0, 2);
	ck_assert_uint_eq(auth_cache_count(c), 3);
	ck_assert_int_eq(auth_cache_get(c, h[3], 3)->id, 1);
	auth_cache_free(c);
}
END_TEST

START_TEST(test_auth_cache_remove_revokes)
{
	struct auth_cache *c = auth_cache_new(30000, 10);
	uint8_t a1[32], a2[32], r1[32];

	hash_of("a1", a1);
	hash_of("a2", a2);
	hash_of("r1", r1);
	auth_cache_put(c, a1, &alice, 0, 0);
	auth_cache_put(c, a2, &alice, 0, 0);
	auth_cache_put(c, r1, &root, 0, 0);
	auth_cache_remove(c, a1);
	ck_assert_ptr_null(auth_cache_get(c, a1, 1));
	ck_assert_ptr_nonnull(auth_cache_get(c, a2, 1));
	auth_cache_put(c, a1, &alice, 0, 0);
	auth_cache_remove_user(c, 7);
	ck_assert_ptr_null(auth_cache_get(c, a1, 1));
	ck_assert_ptr_null(auth_cache_get(c, a2, 1));
	ck_assert_ptr_nonnull(auth_cache_get(c, r1, 1));
	ck_assert_uint_eq(auth_cache_count(c), 1);
	auth_cache_remove(c, a1); /* absent: no-op */
	auth_cache_free(c);
	auth_cache_free(NULL);
}
END_TEST

START_TEST(test_auth_user_dup_copies)
{
	struct auth_user *d = auth_user_dup(&root);

	ck_assert_int_eq(d->id, 1);
	ck_assert(d->is_admin);
	ck_assert_ptr_null(d->client_id);
	ck_assert_str_eq(d->username, "root@example.com");
	auth_user_free(d);
	auth_user_free(NULL);
	ck_assert_ptr_null(auth_user_of(NULL));
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	struct {
		const char *name;
		const TTest *fn;
	} t[] = {
		{"token_generate", test_auth_token_generate_format},
		{"token_wellformed", test_auth_token_wellformed_rejects},
		{"token_hash", test_auth_token_hash_known},
		{"cache_ttl", test_auth_cache_get_ttl},
		{"cache_ref", test_auth_cache_ref_outlives},
		{"cache_expiry", test_auth_cache_put_token_expiry},
		{"cache_evict", test_auth_cache_put_evicts_oldest},
		{"cache_revoke", test_auth_cache_remove_revokes},
		{"user_dup", test_auth_user_dup_copies},
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
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
