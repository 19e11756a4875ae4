/* SPDX-License-Identifier: MIT */
/*
 * urlencoded form bodies read in place (src/api/form.c): decoding,
 * finding a field, and the one property that matters: form_check(),
 * form_find() and form_get() say what json_form_parse()'s object says
 * (its verdict, each key's string or array), on vectors, on every UTF-8
 * boundary jansson checks, on every truncation and on mutants. Pure; no
 * sockets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "err.h"
#include "api/form.h"
#include "api/json.h"
#include "mutate.h"

/* Names looked up in every body besides its own keys. */
static const char *const probe[] = {
	"arg", "args", "access_token", "a", "b", "x", "arg ", "\xc3\xa9",
};

/*
 * form_check() gives json_form_parse()'s verdict; on a body both accept,
 * form_find()/form_get() give each key's string (1 and its bytes) or
 * array (FORM_MANY), and 0 for a name the object lacks.
 */
static void
agree(const char *s, size_t len, size_t max_fields)
{
	json_t *o = json_object(), *v;
	const char *k, *raw;
	char *buf = malloc(len + 1);
	size_t i, n, rawlen;
	int want, got;

	want = json_form_parse(s, len, o, max_fields);
	got = form_check(s, len, max_fields);
	ck_assert_msg(got == want, "form_check %d, json_form_parse %d on %.*s",
		      got, want, (int)len, s);
	if (want != 0)
		goto out;
	json_object_foreach(o, k, v)
	{
		got = form_find(s, len, k, &raw, &rawlen);
		if (json_is_string(v)) {
			ck_assert_msg(got == 1, "%s: %d on %.*s", k, got,
				      (int)len, s);
			ck_assert_ptr_nonnull(raw);
			ck_assert(raw >= s && raw + rawlen <= s + len);
			ck_assert_int_eq(form_get(s, len, k, buf, len + 1, &n),
					 1);
			ck_assert_uint_eq(n, json_string_length(v));
			ck_assert(memcmp(buf, json_string_value(v), n) == 0);
			ck_assert_int_eq(buf[n], '\0');
		} else {
			ck_assert(json_is_array(v));
			ck_assert_msg(got == FORM_MANY, "%s: %d on %.*s", k,
				      got, (int)len, s);
			ck_assert_int_eq(form_get(s, len, k, buf, len + 1, &n),
					 FORM_MANY);
			ck_assert_uint_eq(n, 0);
		}
	}
	for (i = 0; i < sizeof(probe) / sizeof(probe[0]); i++)
		if (json_object_get(o, probe[i]) == NULL)
			ck_assert_int_eq(
				form_find(s, len, probe[i], NULL, NULL), 0);
out:
	free(buf);
	json_decref(o);
}

static void
agree_str(const char *s)
{
	agree(s, strlen(s), 0);
}

START_TEST(test_form_decode)
{
	char buf[64];
	size_t n = 9;

	ck_assert_int_eq(form_decode("a+b%20c%2b%C3%A9", 16, true, buf, &n), 0);
	ck_assert_str_eq(buf, "a b c+\xc3\xa9");
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(form_decode("a+b", 3, false, buf, &n), 0);
	ck_assert_str_eq(buf, "a+b");
	ck_assert_int_eq(form_decode("", 0, true, buf, &n), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_uint_eq(n, 0);
	/* only len bytes are read: the escape cut by it is truncated */
	ck_assert_int_eq(form_decode("%41%42", 5, true, buf, &n),
			 CINDER_ERR_MALFORMED);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(form_decode("%4", 2, true, buf, NULL),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_decode("%", 1, true, buf, NULL),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_decode("%zz", 3, true, buf, NULL),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_decode("%00", 3, true, buf, NULL),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_decode("a\0b", 3, true, buf, NULL),
			 CINDER_ERR_MALFORMED);
}
END_TEST

/* form_next() splits a body the one way every walk over it uses */
START_TEST(test_form_next)
{
	static const char body[] = "&a=1&&b&=c&d=e=f&";
	static const struct {
		const char *key, *val;
		bool has_eq;
	} want[] = {
		{"a", "1", true},
		{"b", "", false},
		{"", "c", true},
		{"d", "e=f", true},
	};
	struct form_field f;
	size_t pos = 0, i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ck_assert_msg(form_next(body, strlen(body), &pos, &f),
			      "field %zu missing", i);
		ck_assert_uint_eq(f.klen, strlen(want[i].key));
		ck_assert(memcmp(f.key, want[i].key, f.klen) == 0);
		ck_assert_uint_eq(f.vlen, strlen(want[i].val));
		ck_assert(memcmp(f.val, want[i].val, f.vlen) == 0);
		ck_assert(f.has_eq == want[i].has_eq);
	}
	ck_assert(!form_next(body, strlen(body), &pos, &f));
	ck_assert_uint_eq(pos, strlen(body));
	/* bounded by len, not by a NUL: "x=1" of "x=1&y=2" */
	pos = 0;
	ck_assert(form_next("x=1&y=2", 3, &pos, &f));
	ck_assert_uint_eq(f.vlen, 1);
	ck_assert(!form_next("x=1&y=2", 3, &pos, &f));
	pos = 0;
	ck_assert(!form_next("", 0, &pos, &f));
	ck_assert(!form_next("&&&", 3, &pos, &f));
}
END_TEST

START_TEST(test_form_find_get)
{
	const char *s = "arg=a+b%26c&access_token=tok&dup=1&dup=2&a%72gs=x&"
			"&=e&novalue&last=";
	size_t len = strlen(s), n;
	const char *v;
	char buf[16];

	ck_assert_int_eq(form_find(s, len, "arg", &v, &n), 1);
	ck_assert_uint_eq(n, 7);
	ck_assert(strncmp(v, "a+b%26c", 7) == 0);
	ck_assert_int_eq(form_get(s, len, "arg", buf, sizeof(buf), &n), 1);
	ck_assert_str_eq(buf, "a b&c");
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(form_get(s, len, "args", buf, sizeof(buf), &n), 1);
	ck_assert_str_eq(buf, "x");
	ck_assert_int_eq(form_get(s, len, "access_token", buf, 3, &n),
			 CINDER_ERR_TOO_BIG);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(form_get(s, len, "access_token", buf, 4, &n), 1);
	ck_assert_str_eq(buf, "tok");
	ck_assert_int_eq(form_find(s, len, "dup", &v, &n), FORM_MANY);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(*v, '1');
	ck_assert_int_eq(form_find(s, len, "novalue", &v, &n), 1);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(form_get(s, len, "novalue", buf, 1, &n), 1);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(form_get(s, len, "last", buf, 0, &n),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(form_get(s, len, "last", buf, 1, &n), 1);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(form_find(s, len, "", &v, &n), 0);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(form_find(s, len, "ar", NULL, NULL), 0);
	ck_assert_int_eq(form_find(s, len, "argx", NULL, NULL), 0);
	ck_assert_int_eq(form_find(s, len, "e", NULL, NULL), 0);
	ck_assert_int_eq(form_find(s, 0, "arg", NULL, NULL), 0);
	/* only len bytes count */
	ck_assert_int_eq(form_find("arg=1&arg=2", 5, "arg", NULL, NULL), 1);
	/* a key that does not decode never matches */
	ck_assert_int_eq(form_find("ar%g=1", 6, "ar%g", NULL, NULL), 0);
	/* undecodable value, found: form_get says so */
	ck_assert_int_eq(form_get("arg=%zz", 7, "arg", buf, sizeof(buf), &n),
			 CINDER_ERR_MALFORMED);
	ck_assert_uint_eq(n, 0);
	agree(s, len, 0);
}
END_TEST

START_TEST(test_form_check_vectors)
{
	static const char *const v[] = {
		"",
		"arg=hello",
		"access_token=0123456789abcdef0123456789abcdef01234567&arg=on",
		"arg=a&arg=b",
		"arg=a&arg=b&arg=c&args=d",
		"&&&",
		"&arg=1&",
		"=",
		"==",
		"a==b",
		"=x&arg=1",
		"=%FF&arg=1",
		"=%zz",
		"%zz",
		"%zz=1",
		"arg=%zz",
		"arg=%4",
		"arg=%",
		"arg=%00",
		"arg=%0",
		"arg=a%2",
		"x=%FF",
		"%FF=1",
		"%FF",
		"%FF=",
		"arg=%C3%A9",
		"%C3%A9=%E2%82%AC",
		"arg=%C0%80",
		"arg=%C1%BF",
		"arg=%C2%80",
		"arg=%E0%9F%BF",
		"arg=%E0%A0%80",
		"arg=%ED%9F%BF",
		"arg=%ED%A0%80",
		"arg=%EF%BF%BF",
		"arg=%F0%8F%BF%BF",
		"arg=%F0%90%80%80",
		"arg=%F4%8F%BF%BF",
		"arg=%F4%90%80%80",
		"arg=%F5%80%80%80",
		"arg=%E2%82",
		"arg=%E2%82x",
		"arg=%80",
		"arg=%BF%BF",
		"arg=\xc3\xa9",
		"arg=\xc3",
		"arg=\xff",
		"a+b=c+d&a%20b=e",
		"arg+=1&arg=2",
		"a%72g=1&arg=2",
		"novalue",
		"novalue&novalue",
		"k=v=w",
		"k=%3D&k2=%26",
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		agree_str(v[i]);
	/* a NUL byte in the body */
	agree("arg=a\0b", 7, 0);
	agree("a\0=1", 4, 0);
	agree("=\0", 2, 0);
	ck_assert_int_eq(form_check("arg=a\0b", 7, 0), CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_check("=%FF", 4, 0), 0);
	ck_assert_int_eq(form_check("=%zz", 4, 0), CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_check("arg=%ED%A0%80", 13, 0),
			 CINDER_ERR_MALFORMED);
}
END_TEST

START_TEST(test_form_check_fields)
{
	char *s = malloc(8 * 300);
	size_t n = 0, i;

	/* 256 fields by default; empty fields do not count */
	for (i = 0; i < 256; i++)
		n += (size_t)sprintf(s + n, "f=1&&");
	ck_assert_int_eq(form_check(s, n, 0), 0);
	agree(s, n, 0);
	n += (size_t)sprintf(s + n, "g");
	ck_assert_int_eq(form_check(s, n, 0), CINDER_ERR_TOO_BIG);
	agree(s, n, 0);
	/* the first refusal decides: too many before a bad field */
	n += (size_t)sprintf(s + n, "&a=%%zz");
	ck_assert_int_eq(form_check(s, n, 0), CINDER_ERR_TOO_BIG);
	agree(s, n, 0);
	ck_assert_int_eq(form_check("a=1&b=%zz&c=1", 13, 2),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(form_check("a=1&b=1&c=%zz", 13, 2),
			 CINDER_ERR_TOO_BIG);
	agree("a=1&b=%zz&c=1", 13, 2);
	agree("a=1&b=1&c=%zz", 13, 2);
	agree("a=1&b=1&c=1", 11, 3);
	agree("a=1&b=1&c=1", 11, 2);
	free(s);
}
END_TEST

/* Every 1- and 2-byte value, and 3- and 4-byte ones around each bound
 * jansson's UTF-8 check has, as a value and as a key. */
START_TEST(test_form_check_utf8)
{
	static const int edge[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90,
				   0x9f, 0xa0, 0xbf, 0xc0, 0xff};
	char s[64];
	int a, b, c, d;
	size_t ai, bi;

	for (a = 1; a < 256; a++) {
		snprintf(s, sizeof(s), "x=%%%02X", a);
		agree_str(s);
		snprintf(s, sizeof(s), "%%%02X=1", a);
		agree_str(s);
		for (b = 1; b < 256; b++) {
			snprintf(s, sizeof(s), "x=%%%02X%%%02X", a, b);
			agree_str(s);
		}
	}
	for (a = 0xe0; a <= 0xff; a++)
		for (b = 0x01; b < 256; b++)
			for (ai = 0; ai < sizeof(edge) / sizeof(edge[0]);
			     ai++) {
				c = edge[ai] != 0 ? edge[ai] : 0x41;
				snprintf(s, sizeof(s), "x=%%%02X%%%02X%%%02X",
					 a, b, c);
				agree_str(s);
				snprintf(s, sizeof(s), "%%%02X%%%02X%%%02X=1",
					 a, b, c);
				agree_str(s);
				if (a < 0xf0)
					continue;
				for (bi = 0;
				     bi < sizeof(edge) / sizeof(edge[0]);
				     bi++) {
					d = edge[bi] != 0 ? edge[bi] : 0x41;
					snprintf(s, sizeof(s),
						 "x=%%%02X%%%02X%%%02X%%%02X",
						 a, b, c, d);
					agree_str(s);
				}
			}
}
END_TEST

static void
agree_cb(const uint8_t *buf, size_t len, void *arg)
{
	agree((const char *)buf, len, *(const size_t *)arg);
}

/* Every truncation and 3,000 mutants of each seed agree. */
START_TEST(test_form_check_mutants)
{
	static const char *const seeds[] = {
		"arg=hello",
		"access_token=0123456789abcdef&arg=on+off%21&arg=x",
		"a%72g=%E2%82%AC&=%FF&&k&k=v=w",
		"x=%F0%90%80%80&y=%ED%9F%BF&z=%C2%80",
	};
	size_t i, maxf[] = {0, 2};

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		mutate_run((const uint8_t *)seeds[i], strlen(seeds[i]),
			   0xf0 + i, 3000, agree_cb, &maxf[0]);
		mutate_run((const uint8_t *)seeds[i], strlen(seeds[i]),
			   0x1f0 + i, 300, agree_cb, &maxf[1]);
	}
}
END_TEST

static Suite *
form_suite(void)
{
	Suite *s = suite_create("form");
	TCase *tc;

	tc = tcase_create("decode_find");
	tcase_add_test(tc, test_form_decode);
	tcase_add_test(tc, test_form_next);
	tcase_add_test(tc, test_form_find_get);
	suite_add_tcase(s, tc);
	tc = tcase_create("same_as_json_form_parse");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_form_check_vectors);
	tcase_add_test(tc, test_form_check_fields);
	tcase_add_test(tc, test_form_check_utf8);
	tcase_add_test(tc, test_form_check_mutants);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(form_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
