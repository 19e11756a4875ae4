/* SPDX-License-Identifier: MIT */
/*
 * Body parsing (JSON, urlencoded, multipart) into one object, size and
 * field limits, malformed bodies with their messages, percent-decoding,
 * the error table and the error envelope. Pure; no sockets.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "err.h"
#include "api/json.h"

static json_t *
parse_ok(const char *ct, const char *body)
{
	json_t *o = NULL;
	char err[256];
	int r;

	r = json_body_parse(ct, (const uint8_t *)body, strlen(body), NULL, &o,
			    NULL, err, sizeof(err));
	ck_assert_msg(r == 0, "parse failed: %d %s", r, err);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_object(o));
	return o;
}

static int
parse_err(const char *ct, const char *body, char *err, size_t errlen)
{
	json_t *o = (json_t *)1;
	int r;

	r = json_body_parse(ct, (const uint8_t *)body, strlen(body), NULL, &o,
			    NULL, err, errlen);
	ck_assert_ptr_null(o);
	ck_assert_int_ne(r, 0);
	return r;
}

START_TEST(test_json_body_parse_json)
{
	json_t *o = parse_ok("application/json; charset=utf-8",
			     "{\"arg\":\"on\",\"n\":3,\"private\":true}");

	ck_assert_str_eq(json_field_str(o, "arg"), "on");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "n")), 3);
	json_decref(o);
	/* vendor +json types and sniffing without a type */
	o = parse_ok("application/vnd.x+json", "{\"a\":\"b\"}");
	ck_assert_str_eq(json_field_str(o, "a"), "b");
	json_decref(o);
	o = parse_ok(NULL, "  {\"a\":\"b\"}");
	ck_assert_str_eq(json_field_str(o, "a"), "b");
	json_decref(o);
	o = parse_ok("text/plain", "{\"a\":\"b\"}");
	ck_assert_str_eq(json_field_str(o, "a"), "b");
	json_decref(o);
}
END_TEST

START_TEST(test_json_body_parse_form)
{
	json_t *o = parse_ok(
		"application/x-www-form-urlencoded",
		"arg=hello+world%21&access_token=abc&empty=&flag&&x=%E2%82%AC");

	ck_assert_str_eq(json_field_str(o, "arg"), "hello world!");
	ck_assert_str_eq(json_field_str(o, "access_token"), "abc");
	ck_assert_str_eq(json_field_str(o, "empty"), "");
	ck_assert_str_eq(json_field_str(o, "flag"), "");
	ck_assert_str_eq(json_field_str(o, "x"), "\xe2\x82\xac");
	ck_assert_uint_eq(json_object_size(o), 5);
	json_decref(o);
	/* repeated keys keep every value */
	o = parse_ok("application/x-www-form-urlencoded",
		     "groups[]=a&groups[]=b&groups[]=c");
	ck_assert(json_is_array(json_object_get(o, "groups[]")));
	ck_assert_uint_eq(json_array_size(json_object_get(o, "groups[]")), 3);
	json_decref(o);
	/* curl -d without a type */
	o = parse_ok(NULL, "name=led&private=true");
	ck_assert_str_eq(json_field_str(o, "name"), "led");
	json_decref(o);
}
END_TEST

/* Keys and values are decoded into one buffer: on the stack for small
 * bodies, on the heap past that; a key that is not UTF-8 is refused. */
START_TEST(test_json_body_parse_form_sizes)
{
	char body[2100], err[256];
	json_t *o;
	size_t i;

	memcpy(body, "a=", 2);
	for (i = 2; i < 2000; i++)
		body[i] = (char)('a' + i % 26);
	memcpy(body + 2000, "&k%41y=%2Bv", 12);
	o = parse_ok("application/x-www-form-urlencoded", body);
	ck_assert_uint_eq(strlen(json_field_str(o, "a")), 1998);
	ck_assert_str_eq(json_field_str(o, "kAy"), "+v");
	json_decref(o);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded",
				   "ok=1&%FF=x", err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded",
				   "%FF=x&%FF=y", err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded", "x=%FF",
				   err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
}
END_TEST

START_TEST(test_json_body_parse_same_object)
{
	/* the same fields via JSON and form give equal objects */
	json_t *a = parse_ok("application/json",
			     "{\"name\":\"my event\",\"data\":\"25\"}");
	json_t *b = parse_ok("application/x-www-form-urlencoded",
			     "name=my%20event&data=25");

	ck_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(test_json_body_parse_empty)
{
	json_t *o = parse_ok("application/json", "");

	ck_assert_uint_eq(json_object_size(o), 0);
	json_decref(o);
	o = parse_ok(NULL, "");
	json_decref(o);
}
END_TEST

START_TEST(test_json_body_parse_malformed)
{
	char err[256];

	ck_assert_int_eq(
		parse_err("application/json", "{\"a\":", err, sizeof(err)),
		CINDER_ERR_MALFORMED);
	ck_assert_msg(strstr(err, "malformed JSON body") != NULL, "%s", err);
	ck_assert_int_eq(
		parse_err("application/json", "[1,2]", err, sizeof(err)),
		CINDER_ERR_MALFORMED);
	ck_assert_str_eq(err, "JSON body must be an object");
	ck_assert_int_eq(
		parse_err("application/json", "\"x\"", err, sizeof(err)),
		CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("application/json", "{\"a\":\"\\u0000\"}",
				   err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded", "a=%zz",
				   err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_msg(strstr(err, "malformed form body") != NULL, "%s", err);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded", "a=%00",
				   err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded",
				   "a=%ff%fe", err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("application/x-www-form-urlencoded", "a=%4",
				   err, sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(parse_err("image/png", "xx", err, sizeof(err)),
			 CINDER_ERR_INVAL);
	ck_assert_str_eq(err, "unsupported content type image/png");
}
END_TEST

START_TEST(test_json_body_parse_limits)
{
	struct json_limits lim = {16, 3, 1};
	const char *big = "{\"aaaaaaaaaa\":\"bbbbbbbbbbbbbbbbbbbbbb\"}";
	json_t *o = (json_t *)1;
	char err[256];

	ck_assert_int_eq(json_body_parse("application/json",
					 (const uint8_t *)big, strlen(big),
					 &lim, &o, NULL, err, sizeof(err)),
			 CINDER_ERR_TOO_BIG);
	ck_assert_ptr_null(o);
	ck_assert_str_eq(err, "request body is too large (limit 16 bytes)");
	ck_assert_int_eq(json_body_parse(NULL, (const uint8_t *)"a&b&c&d", 7,
					 &lim, &o, NULL, err, sizeof(err)),
			 CINDER_ERR_TOO_BIG);
	ck_assert_str_eq(err, "too many form fields");
	ck_assert_int_eq(json_body_parse(NULL, (const uint8_t *)"a&b&c", 5,
					 &lim, &o, NULL, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(json_object_size(o), 3);
	json_decref(o);
	/* the default is 1 MiB */
	ck_assert_int_eq(json_body_parse(NULL, (const uint8_t *)big,
					 JSON_DEFAULT_MAX_BODY + 1, NULL, &o,
					 NULL, NULL, 0),
			 CINDER_ERR_TOO_BIG);
}
END_TEST

static const char mp_body[] =
	"preamble\r\n"
	"--XyZ\r\n"
	"Content-Disposition: form-data; name=\"name\"\r\n"
	"\r\n"
	"my app\r\n"
	"--XyZ\r\n"
	"Content-Disposition: form-data; name=\"file\"; "
	"filename=\"app.bin\"\r\n"
	"Content-Type: application/octet-stream\r\n"
	"\r\n"
	"\x00\x01\r\n\x02--Xy\r\n"
	"--XyZ\r\n"
	"content-disposition: form-data; name=\"file2\"; "
	"filename=\"dir/\\\"q\\\".txt\"\r\n"
	"\r\n"
	"text\r\n"
	"--XyZ--\r\n"
	"epilogue";

START_TEST(test_json_body_parse_multipart)
{
	const char *ct = "multipart/form-data; boundary=\"XyZ\"";
	struct json_files *files = NULL;
	const struct json_file *f;
	json_t *o = NULL;
	char err[256];
	int r;

	r = json_body_parse(ct, (const uint8_t *)mp_body, sizeof(mp_body) - 1,
			    NULL, &o, &files, err, sizeof(err));
	ck_assert_msg(r == 0, "%d %s", r, err);
	ck_assert_str_eq(json_field_str(o, "name"), "my app");
	ck_assert_uint_eq(json_object_size(o), 1);
	ck_assert_ptr_nonnull(files);
	ck_assert_uint_eq(files->n, 2);
	f = json_files_find(files, "file");
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f->filename, "app.bin");
	ck_assert_str_eq(f->content_type, "application/octet-stream");
	ck_assert_uint_eq(f->len, 9);
	ck_assert_mem_eq(f->data, "\x00\x01\r\n\x02--Xy", 9);
	f = json_files_find(files, "file2");
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f->filename, "dir/\"q\".txt");
	ck_assert_uint_eq(f->len, 4);
	ck_assert_ptr_null(json_files_find(files, "file3"));
	json_files_free(files);
	json_decref(o);

	/* without a files list, uploads are refused */
	r = json_body_parse(ct, (const uint8_t *)mp_body, sizeof(mp_body) - 1,
			    NULL, &o, NULL, err, sizeof(err));
	ck_assert_int_eq(r, CINDER_ERR_INVAL);
	ck_assert_ptr_null(o);
}
END_TEST

START_TEST(test_json_body_parse_multipart_malformed)
{
	static const char *bad[] = {
		"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx",
		"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",
		"--B\r\nContent-Disposition: attachment; "
		"name=a\r\n\r\nx\r\n--B--",
		"--B\r\nContent-Disposition: form-data; name=a",
		"--Bx",
		"nothing here",
	};
	struct json_files *files = NULL;
	json_t *o = NULL;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(json_body_parse("multipart/form-data; "
						 "boundary=B",
						 (const uint8_t *)bad[i],
						 strlen(bad[i]), NULL, &o,
						 &files, err, sizeof(err)),
				 CINDER_ERR_MALFORMED);
		ck_assert_ptr_null(o);
		ck_assert_ptr_null(files);
		ck_assert_str_eq(err, "malformed multipart body");
	}
	ck_assert_int_eq(json_body_parse("multipart/form-data",
					 (const uint8_t *)bad[0],
					 strlen(bad[0]), NULL, &o, &files, err,
					 sizeof(err)),
			 CINDER_ERR_MALFORMED);
	ck_assert_str_eq(err, "multipart body without a valid boundary");
	/* every truncation of a good body fails cleanly or parses */
	for (i = 0; i < sizeof(mp_body) - 1; i++) {
		int r = json_body_parse("multipart/form-data; boundary=XyZ",
					(const uint8_t *)mp_body, i, NULL, &o,
					&files, err, sizeof(err));
		if (r == 0) {
			json_decref(o);
			json_files_free(files);
		}
	}
}
END_TEST

START_TEST(test_json_url_decode)
{
	char *s = NULL;
	size_t n = 0;

	ck_assert_int_eq(json_url_decode("a%2Fb+c%41", 10, false, &s, &n), 0);
	ck_assert_str_eq(s, "a/b+cA");
	ck_assert_uint_eq(n, 6);
	free(s);
	ck_assert_int_eq(json_url_decode("a+b", 3, true, &s, NULL), 0);
	ck_assert_str_eq(s, "a b");
	free(s);
	ck_assert_int_eq(json_url_decode("%", 1, false, &s, NULL),
			 CINDER_ERR_MALFORMED);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(json_url_decode("%g0", 3, false, &s, NULL),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(json_url_decode("%00", 3, false, &s, NULL),
			 CINDER_ERR_MALFORMED);
}
END_TEST

START_TEST(test_json_url_decode_into)
{
	char buf[16];
	size_t n = 99;

	ck_assert_int_eq(json_url_decode_into("x%2F+y", 6, true, buf, &n), 0);
	ck_assert_str_eq(buf, "x/ y");
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(json_url_decode_into("", 0, false, buf, &n), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(json_url_decode_into("a%0", 3, false, buf, &n),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(json_url_decode_into("%00", 3, false, buf, NULL),
			 CINDER_ERR_MALFORMED);
}
END_TEST

START_TEST(test_json_err_status_table)
{
	ck_assert_int_eq(json_err_status(0), 200);
	ck_assert_int_eq(json_err_status(CINDER_ERR_INVAL), 400);
	ck_assert_int_eq(json_err_status(CINDER_ERR_MALFORMED), 400);
	ck_assert_int_eq(json_err_status(CINDER_ERR_AUTH), 401);
	ck_assert_int_eq(json_err_status(CINDER_ERR_FORBIDDEN), 403);
	ck_assert_int_eq(json_err_status(CINDER_ERR_NOTFOUND), 404);
	ck_assert_int_eq(json_err_status(CINDER_ERR_TIMEOUT), 408);
	ck_assert_int_eq(json_err_status(CINDER_ERR_CONFLICT), 409);
	ck_assert_int_eq(json_err_status(CINDER_ERR_TOO_BIG), 413);
	ck_assert_int_eq(json_err_status(CINDER_ERR_BUSY), 429);
	ck_assert_int_eq(json_err_status(CINDER_ERR_UNAVAILABLE), 503);
	ck_assert_int_eq(json_err_status(CINDER_ERR_DB), 500);
	ck_assert_int_eq(json_err_status(CINDER_ERR_INTERNAL), 500);
	ck_assert_int_eq(json_err_status(CINDER_ERR_NOMEM), 500);
	ck_assert_int_eq(json_err_status(-999), 500);
	ck_assert_str_eq(json_err_text(CINDER_ERR_TIMEOUT), "Timed out.");
	ck_assert_str_eq(json_err_text(-999), "Internal Server Error");
}
END_TEST

START_TEST(test_json_error_body_shape)
{
	json_t *e = json_error_body(CINDER_ERR_NOTFOUND, NULL,
				    "Variable not found");
	char *s = json_dump_compact(e, NULL);

	ck_assert_str_eq(s, "{\"ok\":false,\"error\":\"Variable not found\","
			    "\"error_description\":\"Variable not found\"}");
	free(s);
	json_decref(e);
	e = json_error_body(CINDER_ERR_AUTH, "invalid_token", NULL);
	ck_assert_str_eq(json_field_str(e, "error"), "invalid_token");
	ck_assert_str_eq(json_field_str(e, "error_description"),
			 "The access token provided is invalid.");
	json_decref(e);
	/* invalid UTF-8 in a description never yields a broken envelope */
	e = json_error_body(CINDER_ERR_INVAL, NULL, "bad \xff");
	ck_assert_str_eq(json_field_str(e, "error"), "Bad Request");
	json_decref(e);
}
END_TEST

START_TEST(test_json_fields)
{
	json_t *o = parse_ok(NULL, "{\"a\":true,\"b\":\"false\",\"c\":\"1\","
				   "\"d\":\"x\",\"n\":\"-42\",\"m\":7,"
				   "\"bad\":\"12x\",\"sp\":\" 3\"}");
	bool b = false;
	long long n = 0;

	ck_assert(json_field_bool(o, "a", &b) && b);
	ck_assert(json_field_bool(o, "b", &b) && !b);
	ck_assert(json_field_bool(o, "c", &b) && b);
	ck_assert(!json_field_bool(o, "d", &b));
	ck_assert(!json_field_bool(o, "zz", &b));
	ck_assert(json_field_int(o, "n", &n) && n == -42);
	ck_assert(json_field_int(o, "m", &n) && n == 7);
	ck_assert(!json_field_int(o, "bad", &n));
	ck_assert(!json_field_int(o, "sp", &n));
	ck_assert(!json_field_int(o, "a", &n));
	ck_assert_ptr_null(json_field_str(o, "m"));
	json_decref(o);
}
END_TEST

START_TEST(test_json_dump_compact)
{
	json_t *o = json_pack("{s:i,s:[s,b]}", "a", 1, "b", "x", 1);
	size_t n;
	char *s = json_dump_compact(o, &n);

	ck_assert_str_eq(s, "{\"a\":1,\"b\":[\"x\",true]}");
	ck_assert_uint_eq(n, strlen(s));
	free(s);
	json_decref(o);
}
END_TEST

/* Answers past the stack buffer (2 KiB) are dumped straight into the
 * result; NULL is refused. */
START_TEST(test_json_dump_compact_large)
{
	char big[5001], *s;
	json_t *o;
	size_t n;

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	o = json_pack("{s:s}", "k", big);
	s = json_dump_compact(o, &n);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(n, strlen(big) + 8); /* {"k":"..."} */
	ck_assert_uint_eq(n, strlen(s));
	ck_assert(strncmp(s, "{\"k\":\"zzz", 9) == 0);
	ck_assert_str_eq(s + n - 3, "z\"}");
	free(s);
	json_decref(o);
	n = 7;
	ck_assert_ptr_null(json_dump_compact(NULL, &n));
	ck_assert_uint_eq(n, 0);
}
END_TEST

/*
 * json_body_is_form() picks the bodies json_body_parse() reads as forms,
 * and json_form_check() gives their verdict and message without the
 * object.
 */
START_TEST(test_json_form_check_same)
{
	static const char *const cts[] = {
		NULL,
		"",
		"application/x-www-form-urlencoded",
		"Application/X-WWW-Form-Urlencoded; charset=utf-8",
		" text/plain",
		"application/json",
		"application/vnd.x+json",
		"multipart/form-data; boundary=B",
		"application/zip",
	};
	static const char *const bodies[] = {
		"arg=hello", "access_token=t&arg=%E2%82%AC",
		"arg=%zz",   "x=%FF",
		"=%FF",	     " {\"arg\":1}",
		"{",	     "arg=a&arg=b",
		"\t\n",	     "a&&&b",
		"--B\r\n",
	};
	struct json_limits lim = {0, 3, 0};
	char e1[256], e2[256];
	json_t *o;
	size_t i, j;
	int r1, r2;
	bool form;

	for (i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		for (j = 0; j < sizeof(bodies) / sizeof(bodies[0]); j++) {
			const uint8_t *b = (const uint8_t *)bodies[j];
			size_t n = strlen(bodies[j]);

			/* types 2 and 3 are forms; 0, 1 and 4 are sniffed */
			form = json_body_is_form(cts[i], b, n);
			ck_assert(form ==
				  (i == 2 || i == 3 ||
				   ((i == 0 || i == 1 || i == 4) &&
				    bodies[j][strspn(bodies[j], " \t\n")] !=
					    '{')));
			if (!form)
				continue;
			r1 = json_body_parse(cts[i], b, n, &lim, &o, NULL, e1,
					     sizeof(e1));
			json_decref(o);
			r2 = json_form_check(b, n, &lim, e2, sizeof(e2));
			ck_assert_int_eq(r1, r2);
			ck_assert_str_eq(e1, e2);
		}
	}
	/* JSON, multipart, other types and empty bodies are not forms */
	ck_assert(!json_body_is_form(NULL, (const uint8_t *)"\n {}", 4));
	ck_assert(!json_body_is_form("application/json", (const uint8_t *)"a=1",
				     3));
	ck_assert(!json_body_is_form("application/zip", (const uint8_t *)"a=1",
				     3));
	ck_assert(!json_body_is_form("multipart/form-data; boundary=B",
				     (const uint8_t *)"a=1", 3));
	ck_assert(!json_body_is_form(NULL, (const uint8_t *)"", 0));
	ck_assert(json_body_is_form("text/plain", (const uint8_t *)"a=1", 3));
	/* the size limit, as json_body_parse() */
	lim.max_body = 4;
	ck_assert_int_eq(json_form_check((const uint8_t *)"arg=1", 5, &lim, e2,
					 sizeof(e2)),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(json_body_parse(NULL, (const uint8_t *)"arg=1", 5,
					 &lim, &o, NULL, e1, sizeof(e1)),
			 CINDER_ERR_TOO_BIG);
	ck_assert_str_eq(e1, e2);
	ck_assert_int_eq(json_form_check((const uint8_t *)"a=%z", 4, &lim, e2,
					 sizeof(e2)),
			 CINDER_ERR_MALFORMED);
	ck_assert_str_eq(e2, "malformed form body: bad percent-escape, NUL "
			     "byte or invalid UTF-8");
	ck_assert_int_eq(json_form_check((const uint8_t *)"a=1", 3, NULL, e2,
					 sizeof(e2)),
			 0);
	ck_assert_str_eq(e2, "");
}
END_TEST

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("body_parse");
	tcase_add_test(tc, test_json_body_parse_json);
	tcase_add_test(tc, test_json_body_parse_form);
	tcase_add_test(tc, test_json_body_parse_form_sizes);
	tcase_add_test(tc, test_json_body_parse_same_object);
	tcase_add_test(tc, test_json_body_parse_empty);
	tcase_add_test(tc, test_json_body_parse_malformed);
	tcase_add_test(tc, test_json_body_parse_limits);
	tcase_add_test(tc, test_json_body_parse_multipart);
	tcase_add_test(tc, test_json_body_parse_multipart_malformed);
	tcase_add_test(tc, test_json_url_decode);
	tcase_add_test(tc, test_json_url_decode_into);
	tcase_add_test(tc, test_json_form_check_same);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, test_json_err_status_table);
	tcase_add_test(tc, test_json_error_body_shape);
	suite_add_tcase(s, tc);
	tc = tcase_create("helpers");
	tcase_add_test(tc, test_json_fields);
	tcase_add_test(tc, test_json_dump_compact);
	tcase_add_test(tc, test_json_dump_compact_large);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
