/* SPDX-License-Identifier: MIT */
/*
 * The firmware store on a real PostgreSQL (tests/with-pg, else SKIP):
 * asynchronous insert (idempotent, with a release), the planner's
 * catalogue (platform filter, user parts left out, prerelease flag,
 * dependencies), fetching an image's bytes by SHA-256, an unknown
 * SHA-256, and the release-name check.
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "healer/fwstore.h"
#include "healer/module.h"
#include "store.h"
#include "testdb.h"
#include "xmalloc.h"

static struct event_base *base;
static char *db;
static struct store *st;

struct rec {
	bool done;
	int err;
	bool created;
	uint8_t sha[32];
	struct planner_image cat[16];
	size_t n;
	uint8_t *bytes;
	size_t len;
};

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

static void
wait_done(struct rec *x)
{
	bool expired = false;
	struct timeval tv = {30, 0};
	struct event *ev = evtimer_new(base, deadline_cb, &expired);

	evtimer_add(ev, &tv);
	while (!x->done && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert_msg(!expired, "timed out");
}

static void
inserted(int err, bool created, const uint8_t sha256[32], void *arg)
{
	struct rec *x = arg;

	x->done = true;
	x->err = err;
	x->created = created;
	memcpy(x->sha, sha256, 32);
}

static void
catalogued(int err, const struct planner_image *cat, size_t n, void *arg)
{
	struct rec *x = arg;

	x->done = true;
	x->err = err;
	x->n = n;
	ck_assert_uint_le(n, 16);
	if (n > 0)
		memcpy(x->cat, cat, n * sizeof(*cat));
}

static void
fetched(int err, const uint8_t *bytes, size_t len, void *arg)
{
	struct rec *x = arg;

	x->done = true;
	x->err = err;
	if (err == 0) {
		x->bytes = xmalloc(len);
		memcpy(x->bytes, bytes, len);
		x->len = len;
	}
}

static void
setup(void)
{
	testdb_require();
	db = testdb_create_migrated();
	base = event_base_new();
	st = store_new(base, db, NULL);
	ck_assert_ptr_nonnull(st);
}

static void
teardown(void)
{
	store_free(st);
	event_base_free(base);
	testdb_drop(db);
}

/* Build, parse and insert one module; returns the record. */
static void
put(const struct module_spec *s, const char *release, struct rec *x,
    uint8_t **bytes, size_t *len)
{
	struct module_info mi;
	struct module_error e;
	struct fwstore_image img;

	ck_assert_int_eq(module_build(s, bytes, len, &e), 0);
	ck_assert_int_eq(module_parse(*bytes, *len, NULL, &mi, &e), 0);
	memset(&img, 0, sizeof(img));
	img.bytes = *bytes;
	img.len = *len;
	img.mi = &mi;
	img.name = "test.bin";
	img.release = release;
	memset(x, 0, sizeof(*x));
	ck_assert_int_eq(fwstore_image_insert(st, &img, inserted, x), 0);
	wait_done(x);
}

START_TEST(test_insert_catalogue_fetch)
{
	struct module_spec s;
	struct rec x;
	uint8_t *b1, *b2, *b3, *b4, sha[32];
	size_t l1, l2, l3, l4;
	char *v;

	memset(&s, 0, sizeof(s));
	s.platform_id = 6;
	s.func = MODULE_FUNC_SYSTEM;
	s.index = 2;
	s.version = 1512;
	s.deps[0] = (struct module_dep){MODULE_FUNC_SYSTEM, 1, 1512};
	s.deps[1] = (struct module_dep){MODULE_FUNC_BOOTLOADER, 0, 400};
	put(&s, "1.5.2", &x, &b1, &l1);
	ck_assert_int_eq(x.err, 0);
	ck_assert(x.created);
	ck_assert_int_eq(crypto_sha256(b1, l1, sha), 0);
	ck_assert_mem_eq(x.sha, sha, 32);
	/* Again: idempotent. */
	free(b1);
	put(&s, "1.5.2", &x, &b1, &l1);
	ck_assert_int_eq(x.err, 0);
	ck_assert(!x.created);
	/* A prerelease, a user part, another platform. */
	s.version = 2000;
	s.deps[0].version = 2000;
	put(&s, "2.0.0-rc.1", &x, &b2, &l2);
	ck_assert(x.created);
	memset(&s, 0, sizeof(s));
	s.platform_id = 6;
	s.func = MODULE_FUNC_USER;
	s.index = 1;
	s.version = 3;
	put(&s, NULL, &x, &b3, &l3);
	ck_assert(x.created);
	s.platform_id = 10;
	s.func = MODULE_FUNC_SYSTEM;
	put(&s, NULL, &x, &b4, &l4);
	ck_assert(x.created);

	v = testdb_query_value(db, "SELECT count(*) FROM firmware_images");
	ck_assert_str_eq(v, "4");
	free(v);
	v = testdb_query_value(db, "SELECT string_agg(version || ':' || "
				   "prerelease, ',' ORDER BY version) FROM "
				   "device_os_releases");
	ck_assert_str_eq(v, "1.5.2:false,2.0.0-rc.1:true");
	free(v);

	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(fwstore_catalogue_load(st, 6, catalogued, &x), 0);
	wait_done(&x);
	ck_assert_int_eq(x.err, 0);
	ck_assert_uint_eq(x.n, 2); /* no user part, no Electron image */
	ck_assert_uint_eq(x.cat[0].version, 1512);
	ck_assert(!x.cat[0].prerelease);
	ck_assert_uint_eq(x.cat[0].platform_id, 6);
	ck_assert_uint_eq(x.cat[0].func, MODULE_FUNC_SYSTEM);
	ck_assert_uint_eq(x.cat[0].index, 2);
	ck_assert_uint_eq(x.cat[0].deps[0].func, MODULE_FUNC_SYSTEM);
	ck_assert_uint_eq(x.cat[0].deps[0].index, 1);
	ck_assert_uint_eq(x.cat[0].deps[0].version, 1512);
	ck_assert_uint_eq(x.cat[0].deps[1].func, MODULE_FUNC_BOOTLOADER);
	ck_assert_uint_eq(x.cat[0].deps[1].version, 400);
	ck_assert_uint_eq(x.cat[1].version, 2000);
	ck_assert(x.cat[1].prerelease);
	ck_assert_uint_eq(strlen(x.cat[0].id), 64);

	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(fwstore_image_fetch(st, sha, fetched, &x), 0);
	wait_done(&x);
	ck_assert_int_eq(x.err, 0);
	ck_assert_uint_eq(x.len, l1);
	ck_assert_mem_eq(x.bytes, b1, l1);
	free(x.bytes);

	memset(&x, 0, sizeof(x));
	sha[0] ^= 1;
	ck_assert_int_eq(fwstore_image_fetch(st, sha, fetched, &x), 0);
	wait_done(&x);
	ck_assert_int_eq(x.err, CINDER_ERR_NOTFOUND);

	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(fwstore_catalogue_load(st, 99, catalogued, &x), 0);
	wait_done(&x);
	ck_assert_int_eq(x.err, 0);
	ck_assert_uint_eq(x.n, 0);
	free(b1);
	free(b2);
	free(b3);
	free(b4);
}
END_TEST

START_TEST(test_release_ok)
{
	bool pre;

	ck_assert(fwstore_release_ok("1.5.2", &pre) && !pre);
	ck_assert(fwstore_release_ok("10.0.12", &pre) && !pre);
	ck_assert(fwstore_release_ok("2.0.0-rc.3", &pre) && pre);
	ck_assert(fwstore_release_ok("5.4.1+build.7", &pre) && !pre);
	ck_assert(!fwstore_release_ok("1.5", &pre));
	ck_assert(!fwstore_release_ok("1..5", &pre));
	ck_assert(!fwstore_release_ok("1.5.2.", &pre));
	ck_assert(!fwstore_release_ok("1.5.2-", &pre));
	ck_assert(!fwstore_release_ok("v1.5.2", &pre));
	ck_assert(!fwstore_release_ok("1.5.2-rc 1", &pre));
	ck_assert(!fwstore_release_ok("", &pre));
	ck_assert(!fwstore_release_ok(NULL, &pre));
	ck_assert(!fwstore_release_ok(
		"1.2.3-"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaa",
		&pre));
}
END_TEST

static Suite *
fwstore_suite(void)
{
	Suite *s = suite_create("fwstore");
	TCase *tc = tcase_create("pg");
	TCase *pure = tcase_create("pure");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_insert_catalogue_fetch);
	tcase_add_test(pure, test_release_ok);
	suite_add_tcase(s, pure);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fwstore_suite());
	int failed;

	testdb_require();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
