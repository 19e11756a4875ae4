/* SPDX-License-Identifier: MIT */
/*
 * Router table: pattern compilation, parameter extraction and decoding,
 * precedence of literals over parameters, 404/405/400 outcomes, trailing
 * slashes. Pure; no sockets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "err.h"
#include "api/router.h"

static int
h_a(struct http_request *req, void *arg)
{
	return 0;
}

static int
h_b(struct http_request *req, void *arg)
{
	return 1;
}

static const struct route table[] = {
	{"GET", "/v1/devices", ROUTE_AUTH_REQUIRED, h_a},
	{"POST", "/v1/devices", ROUTE_AUTH_REQUIRED, h_a},
	{"GET", "/v1/devices/events", 0, h_b},
	{"POST", "/v1/devices/events", 0, h_b},
	{"GET", "/v1/devices/events/:prefix", 0, h_b},
	{"GET", "/v1/devices/:id", 0, h_a},
	{"PUT", "/v1/devices/:id", 0, h_a},
	{"DELETE", "/v1/devices/:id", 0, h_a},
	{"GET", "/v1/devices/:id/:var", 0, h_a},
	{"POST", "/v1/devices/:id/:fn", 0, h_a},
	{"GET", "/v1/events/:prefix", 0, h_b},
	{"GET", "/console/*file", 0, h_b},
	{"GET", "/", 0, h_b},
};

static struct router *
mk(void)
{
	struct router *r = router_new();

	ck_assert_int_eq(router_add(r, table, sizeof(table) / sizeof(table[0]),
				    (void *)table),
			 0);
	return r;
}

START_TEST(test_router_match_literal)
{
	struct router *r = mk();
	struct router_match m;

	ck_assert_int_eq(router_match(r, "GET", "/v1/devices", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[0]);
	ck_assert_ptr_eq(m.arg, table);
	ck_assert_uint_eq(m.nparams, 0);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "POST", "/v1/devices", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[1]);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/", &m), ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[12]);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_params)
{
	struct router *r = mk();
	struct router_match m;

	ck_assert_int_eq(
		router_match(r, "GET",
			     "/v1/devices/0123456789abcdef01234567/temp", &m),
		ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[8]);
	ck_assert_uint_eq(m.nparams, 2);
	ck_assert_str_eq(router_match_param(&m, "id"),
			 "0123456789abcdef01234567");
	ck_assert_str_eq(router_match_param(&m, "var"), "temp");
	ck_assert_ptr_null(router_match_param(&m, "fn"));
	router_match_cleanup(&m);

	ck_assert_int_eq(router_match(r, "POST", "/v1/devices/x/led", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[9]);
	ck_assert_str_eq(router_match_param(&m, "fn"), "led");
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_precedence)
{
	struct router *r = mk();
	struct router_match m;

	/* the literal row wins over /v1/devices/:id */
	ck_assert_int_eq(router_match(r, "GET", "/v1/devices/events", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[2]);
	router_match_cleanup(&m);
	/* ... and over /v1/devices/:id/:var */
	ck_assert_int_eq(router_match(r, "GET", "/v1/devices/events/temp", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[4]);
	ck_assert_str_eq(router_match_param(&m, "prefix"), "temp");
	router_match_cleanup(&m);
	/* PUT has no literal row: the param row takes it */
	ck_assert_int_eq(router_match(r, "PUT", "/v1/devices/events", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[6]);
	ck_assert_str_eq(router_match_param(&m, "id"), "events");
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_trailing_slash)
{
	struct router *r = mk();
	struct router_match m;

	ck_assert_int_eq(router_match(r, "GET", "/v1/devices/", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[0]);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/v1/devices/abc/", &m),
			 ROUTER_FOUND);
	ck_assert_str_eq(router_match_param(&m, "id"), "abc");
	router_match_cleanup(&m);
	/* only one slash is forgiven; empty segments never match */
	ck_assert_int_eq(router_match(r, "GET", "/v1/devices//", &m),
			 ROUTER_NO_PATH);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/v1//devices", &m),
			 ROUTER_NO_PATH);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_decode)
{
	struct router *r = mk();
	struct router_match m;

	/* an SSE prefix with an encoded slash stays one segment */
	ck_assert_int_eq(router_match(r, "GET", "/v1/events/a%2Fb%20c", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[10]);
	ck_assert_str_eq(router_match_param(&m, "prefix"), "a/b c");
	router_match_cleanup(&m);
	/* '+' is not a space in paths */
	ck_assert_int_eq(router_match(r, "GET", "/v1/events/a+b", &m),
			 ROUTER_FOUND);
	ck_assert_str_eq(router_match_param(&m, "prefix"), "a+b");
	router_match_cleanup(&m);
	/* literal segments match after decoding too */
	ck_assert_int_eq(router_match(r, "GET", "/v1/dev%69ces", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[0]);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/v1/events/%zz", &m),
			 ROUTER_BAD_PATH);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/v1/events/%2", &m),
			 ROUTER_BAD_PATH);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/v1/events/a%00", &m),
			 ROUTER_BAD_PATH);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_wildcard)
{
	struct router *r = mk();
	struct router_match m;

	ck_assert_int_eq(router_match(r, "GET", "/console/js/app%20x.js", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[11]);
	ck_assert_str_eq(router_match_param(&m, "file"), "js/app x.js");
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/console", &m),
			 ROUTER_NO_PATH);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

/* method path is found in r and matched to want; its param name (if
   not NULL) is value. */
static void
expect_route(struct router *r, const char *method, const char *path,
	     const struct route *want, const char *name, const char *value)
{
	struct router_match m;

	ck_assert_int_eq(router_match(r, method, path, &m), ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, want);
	if (name != NULL)
		ck_assert_str_eq(router_match_param(&m, name), value);
	router_match_cleanup(&m);
}

/* method path is a 405 in r with this Allow list (NULL: a 404). */
static void
expect_refused(struct router *r, const char *method, const char *path,
	       const char *allow)
{
	struct router_match m;

	ck_assert_int_eq(router_match(r, method, path, &m),
			 allow != NULL ? ROUTER_NO_METHOD : ROUTER_NO_PATH);
	if (allow != NULL)
		ck_assert_str_eq(m.allow, allow);
	router_match_cleanup(&m);
}

/* Rows of a second router_add() are matched with the first's, by the
   same rules: a path of each length finds its rows, a "*rest" row
   serves every longer path, and a 405's Allow list names the methods of
   both tables. */
START_TEST(test_router_add_twice)
{
	static const struct route more[] = {
		{"PUT", "/v1/devices", 0, h_b},
		{"GET", "/v1/files/*path", 0, h_b},
		{"DELETE", "/v1/devices/:id/:var", 0, h_b},
		{"GET", "/v1/a/b/c/d/e/f", 0, h_b},
	};
	struct router *r = mk();
	const char *deep[] = {"/v1/files/x", "/v1/files/x/y",
			      "/v1/files/x/y/z/w/v/u/t/s/r/q/p/o/n/m"};
	size_t i;

	ck_assert_int_eq(router_add(r, more, 4, NULL), 0);
	expect_route(r, "PUT", "/v1/devices", &more[0], NULL, NULL);
	expect_route(r, "GET", "/v1/devices", &table[0], NULL, NULL);
	for (i = 0; i < sizeof(deep) / sizeof(deep[0]); i++)
		expect_route(r, "GET", deep[i], &more[1], "path",
			     deep[i] + strlen("/v1/files/"));
	expect_refused(r, "GET", "/v1/files", NULL);
	expect_route(r, "GET", "/v1/a/b/c/d/e/f", &more[3], NULL, NULL);
	expect_route(r, "DELETE", "/v1/devices/x/y", &more[2], "var", "y");
	expect_refused(r, "PATCH", "/v1/devices/x/y",
		       "GET, POST, DELETE, OPTIONS");
	expect_refused(r, "PATCH", "/v1/devices", "GET, POST, PUT, OPTIONS");
	expect_route(r, "GET", "/", &table[12], NULL, NULL);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_not_found)
{
	struct router *r = mk();
	struct router_match m;

	ck_assert_int_eq(router_match(r, "GET", "/v2/devices", &m),
			 ROUTER_NO_PATH);
	ck_assert_ptr_null(m.route);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "/v1/devices/a/b/c", &m),
			 ROUTER_NO_PATH);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "v1/devices", &m),
			 ROUTER_NO_PATH);
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "GET", "", &m), ROUTER_NO_PATH);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_match_method)
{
	struct router *r = mk();
	struct router_match m;

	ck_assert_int_eq(router_match(r, "DELETE", "/v1/devices", &m),
			 ROUTER_NO_METHOD);
	ck_assert_ptr_null(m.route);
	ck_assert_str_eq(m.allow, "GET, POST, OPTIONS");
	router_match_cleanup(&m);
	ck_assert_int_eq(router_match(r, "PATCH", "/v1/events/x", &m),
			 ROUTER_NO_METHOD);
	ck_assert_str_eq(m.allow, "GET, OPTIONS");
	router_match_cleanup(&m);
	/* a path longer than the match's buffer (its segments allocated) */
	{
		char path[200];

		memcpy(path, "/v1/devices/", 12);
		memset(path + 12, 'a', 150);
		path[162] = '\0';
		ck_assert_int_eq(router_match(r, "PATCH", path, &m),
				 ROUTER_NO_METHOD);
		ck_assert_str_eq(m.allow, "GET, PUT, DELETE, OPTIONS");
		router_match_cleanup(&m);
	}
	/* a match has no Allow list, though a GET row has its path too */
	ck_assert_int_eq(router_match(r, "POST", "/v1/devices", &m),
			 ROUTER_FOUND);
	ck_assert_str_eq(m.allow, "");
	router_match_cleanup(&m);
	/* HEAD is served by GET rows */
	ck_assert_int_eq(router_match(r, "HEAD", "/v1/devices", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[0]);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

START_TEST(test_router_add_invalid)
{
	static const struct route bad[][1] = {
		{{"GET", "v1/x", 0, h_a}},
		{{"GET", "/v1//x", 0, h_a}},
		{{"GET", "/v1/:", 0, h_a}},
		{{"GET", "/v1/*rest/x", 0, h_a}},
		{{"GET", "/a/:b/:c/:d/:e/:f/:g/:h/:i/:j", 0, h_a}},
		{{"GET", "/v1/x", 0, NULL}},
		{{NULL, "/v1/x", 0, h_a}},
	};
	static const struct route dup[] = {
		{"GET", "/v1/x", 0, h_a},
		{"GET", "/v1/x", 0, h_b},
	};
	struct router *r = mk();
	struct router_match m;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(router_add(r, bad[i], 1, NULL),
				 CINDER_ERR_INVAL);
	ck_assert_int_eq(router_add(r, dup, 2, NULL), CINDER_ERR_INVAL);
	/* a duplicate of an existing row is refused as well */
	ck_assert_int_eq(router_add(r, table, 1, NULL), CINDER_ERR_INVAL);
	/* nothing of the failed tables was added */
	ck_assert_int_eq(router_match(r, "GET", "/v1/x", &m), ROUTER_NO_PATH);
	router_match_cleanup(&m);
	router_free(r);
	router_free(NULL);
}
END_TEST

START_TEST(test_router_match_limits)
{
	struct router *r = mk();
	struct router_match m;
	char path[512];
	size_t i;

	path[0] = '\0';
	for (i = 0; i < ROUTER_MAX_SEGMENTS + 1; i++)
		strcat(path, "/x");
	ck_assert_int_eq(router_match(r, "GET", path, &m), ROUTER_NO_PATH);
	router_match_cleanup(&m);
	router_free(r);
}
END_TEST

/* A path that fits is decoded into the match itself, a longer one into
 * an allocation; both give the same parameters. */
START_TEST(test_router_match_long_path)
{
	struct router *r = mk();
	struct router_match m;
	char name[ROUTER_INLINE + 1], path[2 * ROUTER_INLINE];

	ck_assert_int_eq(router_match(r, "POST", "/v1/devices/x/led", &m),
			 ROUTER_FOUND);
	ck_assert_ptr_null(m.buf);
	ck_assert_ptr_eq(router_match_param(&m, "fn"),
			 m.inl + 13); /* "v1", "devices", "x" */
	router_match_cleanup(&m);

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(path, sizeof(path), "/v1/devices/x/%s", name);
	ck_assert_int_eq(router_match(r, "POST", path, &m), ROUTER_FOUND);
	ck_assert_ptr_eq(m.route, &table[9]);
	ck_assert_ptr_nonnull(m.buf);
	ck_assert_str_eq(router_match_param(&m, "id"), "x");
	ck_assert_str_eq(router_match_param(&m, "fn"), name);
	router_match_cleanup(&m);
	ck_assert_ptr_null(m.buf);
	router_free(r);
}
END_TEST

static Suite *
router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc;

	tc = tcase_create("match");
	tcase_add_test(tc, test_router_match_literal);
	tcase_add_test(tc, test_router_match_params);
	tcase_add_test(tc, test_router_match_precedence);
	tcase_add_test(tc, test_router_match_trailing_slash);
	tcase_add_test(tc, test_router_match_decode);
	tcase_add_test(tc, test_router_match_wildcard);
	tcase_add_test(tc, test_router_add_twice);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, test_router_match_not_found);
	tcase_add_test(tc, test_router_match_method);
	tcase_add_test(tc, test_router_add_invalid);
	tcase_add_test(tc, test_router_match_limits);
	tcase_add_test(tc, test_router_match_long_path);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(router_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
