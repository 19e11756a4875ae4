/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the REST device routes: decoding variable values the
 * device sends (bool, int32 big-endian, double little-endian, strings,
 * invalid UTF-8, size mismatches) and the device-name rule. No sockets,
 * no database.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "api/rest_int.h"

START_TEST(test_rest_variable_value_int32)
{
	static const uint8_t neg[4] = {0xff, 0xff, 0xff, 0xfe};
	static const uint8_t big[4] = {0x00, 0x00, 0x01, 0x00};
	json_t *v = rest_variable_value("int32", neg, 4);

	ck_assert(json_is_integer(v));
	ck_assert_int_eq(json_integer_value(v), -2);
	json_decref(v);
	v = rest_variable_value("int32", big, 4);
	ck_assert_int_eq(json_integer_value(v), 256);
	json_decref(v);
	/* wrong size: not a number */
	v = rest_variable_value("int32", big, 3);
	ck_assert(json_is_string(v));
	json_decref(v);
}
END_TEST

START_TEST(test_rest_variable_value_double)
{
	uint8_t b[8];
	double x = 1.25, y;
	uint64_t bits;
	json_t *v;
	int i;

	memcpy(&bits, &x, sizeof(bits));
	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(bits >> (8 * i)); /* little-endian */
	v = rest_variable_value("double", b, 8);
	ck_assert(json_is_real(v));
	y = json_real_value(v);
	ck_assert(y == 1.25);
	json_decref(v);
	memset(b, 0xff, sizeof(b)); /* a NaN */
	v = rest_variable_value("double", b, 8);
	ck_assert(json_is_null(v));
	json_decref(v);
}
END_TEST

START_TEST(test_rest_variable_value_bool_string)
{
	static const uint8_t one = 1, zero = 0;
	static const uint8_t bad[] = {'h', 'i', 0xff, 0x00, 'x'};
	json_t *v;

	v = rest_variable_value("bool", &one, 1);
	ck_assert(json_is_true(v));
	json_decref(v);
	v = rest_variable_value("bool", &zero, 1);
	ck_assert(json_is_false(v));
	json_decref(v);
	v = rest_variable_value("string", (const uint8_t *)"hello", 5);
	ck_assert_str_eq(json_string_value(v), "hello");
	json_decref(v);
	v = rest_variable_value("string", NULL, 0);
	ck_assert_str_eq(json_string_value(v), "");
	json_decref(v);
	v = rest_variable_value("string", bad, sizeof(bad));
	ck_assert_str_eq(json_string_value(v), "hi??x");
	json_decref(v);
	v = rest_variable_value("unknown", (const uint8_t *)"7", 1);
	ck_assert_str_eq(json_string_value(v), "7");
	json_decref(v);
}
END_TEST

START_TEST(test_rest_device_name_ok_rules)
{
	char longname[80];

	ck_assert(rest_device_name_ok("kitchen"));
	ck_assert(rest_device_name_ok("a_b-c9"));
	ck_assert(!rest_device_name_ok(""));
	ck_assert(!rest_device_name_ok("two words"));
	ck_assert(!rest_device_name_ok("slash/name"));
	ck_assert(!rest_device_name_ok("caf\xc3\xa9"));
	ck_assert(!rest_device_name_ok("0123456789abcdef01234567"));
	ck_assert(rest_device_name_ok("0123456789abcdef0123456g"));
	memset(longname, 'n', sizeof(longname));
	longname[63] = '\0';
	ck_assert(rest_device_name_ok(longname));
	longname[63] = 'n';
	longname[64] = '\0';
	ck_assert(!rest_device_name_ok(longname));
}
END_TEST

static Suite *
rest_suite(void)
{
	Suite *s = suite_create("rest");
	struct {
		const char *name;
		const TTest *fn;
	} t[] = {
		{"variable_int32", test_rest_variable_value_int32},
		{"variable_double", test_rest_variable_value_double},
		{"variable_bool_string", test_rest_variable_value_bool_string},
		{"device_name", test_rest_device_name_ok_rules},
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
	SRunner *sr = srunner_create(rest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
