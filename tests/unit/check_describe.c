/* SPDX-License-Identifier: MIT */
/*
 * Tests for describe: the JSON of the recorded sessions, the protocol.md
 * §4.3 safe-mode example, dependency walking, the release table, limits
 * and malformed input (wrong types, huge arrays, truncations, mutants).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "err.h"
#include "mutate.h"

static const char tinker_json[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\"],\"v\":{},\"p\":3,\"m\":[]}";
static const char testapp_json[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\",\"setcounter\",\"echo\"],\"v\":{\"counter\":2,"
	"\"ratio\":9,\"greeting\":4},\"p\":3,\"m\":[]}";

#define HASH "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

/* protocol.md §4.3: system 0.7.0, user part built for 1.5.2. */
static const char safemode_json[] =
	"{\"f\":[],\"v\":{},\"p\":6,\"m\":["
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\","
	"\"v\":101,\"d\":[]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\","
	"\"v\":207,\"d\":[]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\","
	"\"v\":207,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":207,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":\"" HASH "\","
	"\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[{\"f\":\"s\",\"n\":\"2\","
	"\"v\":1512,\"_\":\"\"}]}]}";

/* A healthy Photon on 1.5.2 with an app, Electron-style extra keys and
   an empty factory slot listed the old way. */
static const char healthy_json[] =
	"{\"f\":[\"led\"],\"v\":{\"temp\":9,\"on\":1},\"p\":6,"
	"\"imei\":\"352753090000000\",\"iccid\":\"8901260000000000000\","
	"\"m\":["
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\","
	"\"v\":501,\"d\":[]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\","
	"\"v\":1512,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":207,\"_\":\"\"}]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\","
	"\"v\":1512,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":1512,\"_\":\"\"},"
	"{\"f\":\"b\",\"n\":\"0\",\"v\":501,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"u\":\"" HASH "\","
	"\"f\":\"u\",\"n\":\"1\",\"v\":6,\"d\":[{\"f\":\"s\",\"n\":\"2\","
	"\"v\":1512,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}]}";

static struct describe *
parse_ok(const char *json)
{
	struct describe *d = NULL;
	char err[DESCRIBE_ERRLEN];
	int r = describe_parse(json, strlen(json), &d, err, sizeof(err));

	ck_assert_msg(r == 0, "parse failed: %s", err);
	ck_assert_ptr_nonnull(d);
	return d;
}

static int
parse_err(const char *json, size_t len)
{
	struct describe *d = (struct describe *)1;
	char err[DESCRIBE_ERRLEN];
	int r = describe_parse(json, len, &d, err, sizeof(err));

	ck_assert_int_ne(r, 0);
	ck_assert_ptr_null(d);
	ck_assert_uint_gt(strlen(err), 0);
	return r;
}

START_TEST(test_describe_parse_tinker)
{
	struct describe *d = parse_ok(tinker_json);

	ck_assert(d->has_app);
	ck_assert(d->has_system);
	ck_assert_uint_eq(json_array_size(d->functions), 4);
	ck_assert_str_eq(json_string_value(json_array_get(d->functions, 0)),
			 "digitalread");
	ck_assert_str_eq(json_string_value(json_array_get(d->functions, 3)),
			 "analogwrite");
	ck_assert_uint_eq(json_object_size(d->variables), 0);
	ck_assert_int_eq(d->platform_id, 3);
	ck_assert_uint_eq(d->n_modules, 0);
	ck_assert_ptr_null(describe_system_version(d));
	ck_assert_uint_eq(describe_system_module_version(d), 0);
	ck_assert(!describe_is_safe_mode(d));
	ck_assert_uint_eq(describe_missing_dependencies(d, NULL, 0), 0);
	describe_free(d);
}
END_TEST

START_TEST(test_describe_parse_testapp)
{
	struct describe *d = parse_ok(testapp_json);

	ck_assert_uint_eq(json_array_size(d->functions), 6);
	ck_assert_str_eq(json_string_value(json_array_get(d->functions, 5)),
			 "echo");
	ck_assert_uint_eq(json_object_size(d->variables), 3);
	ck_assert_str_eq(
		json_string_value(json_object_get(d->variables, "counter")),
		"int32");
	ck_assert_str_eq(
		json_string_value(json_object_get(d->variables, "ratio")),
		"double");
	ck_assert_str_eq(
		json_string_value(json_object_get(d->variables, "greeting")),
		"string");
	ck_assert_int_eq(d->platform_id, 3);
	describe_free(d);
}
END_TEST

START_TEST(test_describe_parse_partial)
{
	struct describe *d;

	d = parse_ok("{\"f\":[\"a\"],\"v\":{\"b\":1}}");
	ck_assert(d->has_app);
	ck_assert(!d->has_system);
	ck_assert_int_eq(d->platform_id, -1);
	ck_assert_str_eq(json_string_value(json_object_get(d->variables, "b")),
			 "bool");
	describe_free(d);

	d = parse_ok("{\"p\":6,\"m\":[]}");
	ck_assert(!d->has_app);
	ck_assert(d->has_system);
	ck_assert_uint_eq(json_array_size(d->functions), 0);
	describe_free(d);

	/* Unknown variable type codes are left out; unknown keys ignored. */
	d = parse_ok("{\"f\":[],\"v\":{\"n\":5,\"i\":2},\"x\":{\"y\":1}}");
	ck_assert_uint_eq(json_object_size(d->variables), 1);
	describe_free(d);
}
END_TEST

START_TEST(test_describe_parse_safemode_example)
{
	struct describe *d = parse_ok(safemode_json);
	const struct describe_module *u;
	struct describe_missing miss[4];
	size_t n;

	ck_assert_int_eq(d->platform_id, 6);
	ck_assert_uint_eq(d->n_modules, 4);
	ck_assert_int_eq(d->modules[0].func, 'b');
	ck_assert_int_eq(d->modules[0].index, 0);
	ck_assert_uint_eq(d->modules[0].version, 101);
	ck_assert_uint_eq(d->modules[0].size, 16384);
	ck_assert_int_eq(d->modules[2].location, 'm');
	ck_assert_uint_eq(d->modules[2].n_deps, 1);
	ck_assert_int_eq(d->modules[2].deps[0].func, 's');
	ck_assert_int_eq(d->modules[2].deps[0].index, 1);
	ck_assert_uint_eq(d->modules[2].deps[0].version, 207);
	u = describe_user_module(d);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(u->hash, HASH);
	ck_assert_uint_eq(u->vc, 30);
	ck_assert_uint_eq(u->vv, 26);

	ck_assert_str_eq(describe_system_version(d), "0.7.0");
	ck_assert(describe_is_safe_mode(d));
	n = describe_missing_dependencies(d, miss, 4);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(miss[0].func, 's');
	ck_assert_int_eq(miss[0].index, 2);
	ck_assert_uint_eq(miss[0].version, 1512);
	ck_assert(miss[0].installed);
	ck_assert_uint_eq(miss[0].have, 207);
	describe_free(d);
}
END_TEST

START_TEST(test_describe_parse_healthy)
{
	struct describe *d = parse_ok(healthy_json);

	ck_assert_uint_eq(d->n_modules, 5);
	ck_assert_int_eq(d->modules[4].func, 0); /* empty factory slot */
	ck_assert_int_eq(d->modules[4].index, -1);
	ck_assert_int_eq(d->modules[4].location, 'f');
	ck_assert_str_eq(json_string_value(json_object_get(d->extra, "imei")),
			 "352753090000000");
	ck_assert_str_eq(json_string_value(json_object_get(d->extra, "iccid")),
			 "8901260000000000000");
	ck_assert_uint_eq(json_object_size(d->extra), 2);
	ck_assert_str_eq(describe_system_version(d), "1.5.2");
	ck_assert(!describe_is_safe_mode(d));
	ck_assert_uint_eq(describe_missing_dependencies(d, NULL, 0), 0);
	describe_free(d);
}
END_TEST

START_TEST(test_describe_missing_dependencies_chain)
{
	/* Half-healed Photon: part 1 at 1.5.2 needs part 2 >= 207 (ok);
	   part 2 at 1.5.2 would need bootloader 501 but part 2 is still
	   207; the user part needs part 2 1512; a missing system part 3 is
	   required by nobody here but a dependency on a module that is
	   absent altogether is listed as not installed. */
	static const char json[] =
		"{\"f\":[],\"v\":{},\"p\":6,\"m\":["
		"{\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\","
		"\"v\":101,\"d\":[]},"
		"{\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\","
		"\"v\":1512,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":207}]},"
		"{\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\",\"n\":\"2\","
		"\"v\":207,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":207},"
		"{\"f\":\"s\",\"n\":\"3\",\"v\":110}]},"
		"{\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\","
		"\"v\":5,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":1512},"
		"{\"f\":\"b\",\"n\":\"0\",\"v\":501}]},"
		"{\"l\":\"f\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\","
		"\"v\":5,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":9999}]}]}";
	struct describe *d = parse_ok(json);
	struct describe_missing miss[8];
	size_t n, i;
	int seen_s2 = 0, seen_s3 = 0, seen_b0 = 0;

	/* Lowest main system part is what runs. */
	ck_assert_uint_eq(describe_system_module_version(d), 207);
	n = describe_missing_dependencies(d, miss, 8);
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		if (miss[i].func == 's' && miss[i].index == 2) {
			seen_s2++;
			/* The factory slot's 9999 is not counted. */
			ck_assert_uint_eq(miss[i].version, 1512);
			ck_assert(miss[i].installed);
		} else if (miss[i].func == 's' && miss[i].index == 3) {
			seen_s3++;
			ck_assert(!miss[i].installed);
			ck_assert_uint_eq(miss[i].version, 110);
		} else if (miss[i].func == 'b') {
			seen_b0++;
			ck_assert_uint_eq(miss[i].have, 101);
			ck_assert_uint_eq(miss[i].version, 501);
		}
	}
	ck_assert_int_eq(seen_s2 + seen_s3 + seen_b0, 3);
	/* cap smaller than the count: count still returned. */
	ck_assert_uint_eq(describe_missing_dependencies(d, miss, 1), 3);
	ck_assert(describe_is_safe_mode(d));
	describe_free(d);
}
END_TEST

START_TEST(test_describe_is_safe_mode_vv_only)
{
	/* Dependencies look met but the device says the user part failed a
	   check and runs no app: safe mode. With an app running: not. */
	static const char empty_app[] =
		"{\"f\":[],\"v\":{},\"p\":6,\"m\":[{\"l\":\"m\",\"vc\":30,"
		"\"vv\":28,\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[]}]}";
	static const char with_app[] =
		"{\"f\":[\"x\"],\"v\":{},\"p\":6,\"m\":[{\"l\":\"m\",\"vc\":30,"
		"\"vv\":28,\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[]}]}";
	static const char sys_only[] =
		"{\"p\":6,\"m\":[{\"l\":\"m\",\"vc\":30,"
		"\"vv\":28,\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[]}]}";
	struct describe *d;

	d = parse_ok(empty_app);
	ck_assert(describe_is_safe_mode(d));
	describe_free(d);
	d = parse_ok(with_app);
	ck_assert(!describe_is_safe_mode(d));
	describe_free(d);
	d = parse_ok(sys_only);
	ck_assert(describe_is_safe_mode(d));
	describe_free(d);
}
END_TEST

START_TEST(test_describe_release_str_table)
{
	ck_assert_str_eq(describe_release_str(11), "0.4.9");
	ck_assert_str_eq(describe_release_str(110), "0.6.4");
	ck_assert_str_eq(describe_release_str(207), "0.7.0");
	ck_assert_str_eq(describe_release_str(1000), "1.0.0");
	ck_assert_str_eq(describe_release_str(1102), "1.1.0");
	ck_assert_str_eq(describe_release_str(1213), "1.2.1");
	ck_assert_str_eq(describe_release_str(1406), "1.4.4");
	ck_assert_str_eq(describe_release_str(1512), "1.5.2");
	ck_assert_str_eq(describe_release_str(2301), "2.3.0");
	ck_assert_ptr_null(describe_release_str(0));
	ck_assert_str_eq(describe_release_str(3201), "3.2.0");
	ck_assert_ptr_null(describe_release_str(4));
	ck_assert_ptr_null(describe_release_str(999));
	ck_assert_ptr_null(describe_release_str(UINT32_MAX));
	ck_assert_str_eq(describe_var_type_str(9), "double");
	ck_assert_ptr_null(describe_var_type_str(5));
	ck_assert_int_eq(describe_var_type_code("int32"), 2);
	ck_assert_int_eq(describe_var_type_code("bool"), 1);
	ck_assert_int_eq(describe_var_type_code("nope"), -1);
	ck_assert_int_eq(describe_var_type_code(NULL), -1);
}
END_TEST

START_TEST(test_describe_system_version_monolithic)
{
	struct describe *d = parse_ok("{\"p\":0,\"m\":[{\"l\":\"m\",\"vc\":0,"
				      "\"vv\":0,\"f\":\"m\",\"n\":\"0\","
				      "\"v\":11,\"d\":[]}]}");

	ck_assert_str_eq(describe_system_version(d), "0.4.9");
	describe_free(d);
	d = parse_ok("{\"p\":6,\"m\":[{\"l\":\"m\",\"f\":\"s\",\"n\":\"1\","
		     "\"v\":4242}]}");
	ck_assert_ptr_null(describe_system_version(d));
	ck_assert_uint_eq(describe_system_module_version(d), 4242);
	describe_free(d);
}
END_TEST

START_TEST(test_describe_value_decode_types)
{
	static const uint8_t i32[] = {0xff, 0xff, 0xff, 0x9c};
	static const uint8_t half[] = {0, 0, 0, 0, 0, 0, 0xe0, 0x3f};
	static const uint8_t nan[] = {0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
	static const uint8_t bad_utf8[] = {'h', 0xff, 'i', 0xc3, 0xa9};
	static const uint8_t one = 1;
	json_t *j;

	ck_assert_int_eq(describe_value_decode("int32", i32, 4, &j), 0);
	ck_assert(json_is_integer(j));
	ck_assert_int_eq(json_integer_value(j), -100);
	json_decref(j);
	ck_assert_int_eq(describe_value_decode("double", half, 8, &j), 0);
	ck_assert(json_real_value(j) == 0.5);
	json_decref(j);
	ck_assert_int_eq(describe_value_decode("double", nan, 8, &j), 0);
	ck_assert(json_is_null(j));
	json_decref(j);
	ck_assert_int_eq(describe_value_decode("bool", &one, 1, &j), 0);
	ck_assert(json_is_true(j));
	json_decref(j);
	ck_assert_int_eq(
		describe_value_decode(
			"string", (const uint8_t *)"hello from vdev", 15, &j),
		0);
	ck_assert_str_eq(json_string_value(j), "hello from vdev");
	json_decref(j);
	ck_assert_int_eq(describe_value_decode("string", NULL, 0, &j), 0);
	ck_assert_str_eq(json_string_value(j), "");
	json_decref(j);
	/* Invalid UTF-8 bytes become '?', valid sequences stay. */
	ck_assert_int_eq(describe_value_decode("string", bad_utf8, 5, &j), 0);
	ck_assert_str_eq(json_string_value(j), "h?i\xc3\xa9");
	json_decref(j);
	/* Wrong lengths and types. */
	ck_assert_int_eq(describe_value_decode("int32", i32, 3, &j),
			 CINDER_ERR_MALFORMED);
	ck_assert_ptr_null(j);
	ck_assert_int_eq(describe_value_decode("double", half, 4, &j),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(describe_value_decode("bool", i32, 4, &j),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(describe_value_decode("bool", NULL, 0, &j),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(describe_value_decode("int64", i32, 4, &j),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(describe_value_decode(NULL, i32, 4, &j),
			 CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_describe_parse_malformed)
{
	static const char *bad[] = {
		"",
		"[]",
		"42",
		"{}",
		"{\"x\":1}",
		"{\"f\":{}}",
		"{\"f\":[1]}",
		"{\"f\":[\"\"]}",
		"{\"f\":[\"a\"],\"v\":[]}",
		"{\"v\":{\"a\":\"int\"}}",
		"{\"v\":{\"a\":-1}}",
		"{\"v\":{\"a\":2.5}}",
		"{\"p\":\"6\"}",
		"{\"p\":-1}",
		"{\"p\":70000}",
		"{\"m\":{}}",
		"{\"m\":[1]}",
		"{\"m\":[{}]}",
		"{\"m\":[{\"l\":\"mm\"}]}",
		"{\"m\":[{\"l\":\"m\",\"n\":\"x\"}]}",
		"{\"m\":[{\"l\":\"m\",\"n\":\"1000\"}]}",
		"{\"m\":[{\"l\":\"m\",\"v\":-5}]}",
		"{\"m\":[{\"l\":\"m\",\"v\":4294967296}]}",
		"{\"m\":[{\"l\":\"m\",\"d\":{}}]}",
		"{\"m\":[{\"l\":\"m\",\"d\":[{\"f\":\"s\",\"n\":\"1\"}]}]}",
		"{\"m\":[{\"l\":\"m\",\"d\":[1]}]}",
		"{\"m\":[{\"l\":\"m\",\"u\":7}]}",
		"{\"m\":[{\"l\":\"m\",\"u\":\"" HASH "0\"}]}",
		"{\"f\":[\"a\"],\"f\":[\"b\"]}",
		"{\"f\":[\"a\\u0000b\"]}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_err(bad[i], strlen(bad[i])) ==
				      CINDER_ERR_MALFORMED,
			      "input %zu: %s", i, bad[i]);
	}
	ck_assert_int_eq(parse_err(NULL, 0), CINDER_ERR_MALFORMED);
}
END_TEST

/*
 * The version mapping: a module version of 0 (an empty "m", or a module
 * without "v") is not release 0.4.0 but unknown.
 */
START_TEST(test_describe_version_unknown)
{
	struct describe *d;

	d = parse_ok("{\"p\":6,\"m\":[]}");
	ck_assert_uint_eq(describe_system_module_version(d), 0);
	ck_assert_ptr_null(describe_system_version(d));
	describe_free(d);
	d = parse_ok("{\"p\":6,\"m\":[{\"s\":262144,\"l\":\"m\",\"vc\":30,"
		     "\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":0,\"d\":[]}]}");
	ck_assert_uint_eq(describe_system_module_version(d), 0);
	ck_assert_ptr_null(describe_system_version(d));
	describe_free(d);
	ck_assert_ptr_null(describe_release_str(0));
	ck_assert_ptr_null(describe_release_str(65535));
}
END_TEST

/* A partial describe keeps the other half of the previous one. */
START_TEST(test_describe_merge_halves)
{
	static const char app[] = "{\"f\":[\"echo\"],\"v\":{\"counter\":2}}";
	static const char sys[] = "{\"p\":3,\"m\":[]}";
	static const char both[] = "{\"f\":[],\"v\":{},\"p\":6,\"m\":[]}";
	char *out;

	/* No previous one: unchanged. */
	ck_assert_int_eq(describe_merge(NULL, 0, sys, strlen(sys), &out), 0);
	ck_assert_str_eq(out, sys);
	free(out);
	/* System only after a full one: the functions stay. */
	ck_assert_int_eq(
		describe_merge(app, strlen(app), sys, strlen(sys), &out), 0);
	ck_assert_str_eq(out, "{\"p\":3,\"m\":[],\"f\":[\"echo\"],"
			      "\"v\":{\"counter\":2}}");
	free(out);
	/* App only after a system one: platform and modules stay. */
	ck_assert_int_eq(
		describe_merge(sys, strlen(sys), app, strlen(app), &out), 0);
	ck_assert_str_eq(out, "{\"f\":[\"echo\"],\"v\":{\"counter\":2},"
			      "\"p\":3,\"m\":[]}");
	free(out);
	/* A complete one replaces everything, even an empty app part. */
	ck_assert_int_eq(
		describe_merge(app, strlen(app), both, strlen(both), &out), 0);
	ck_assert_str_eq(out, both);
	free(out);
	/* Not an object; a broken previous one is ignored. */
	ck_assert_int_eq(describe_merge(app, strlen(app), "[1]", 3, &out),
			 CINDER_ERR_MALFORMED);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(describe_merge("{", 1, app, strlen(app), &out), 0);
	ck_assert_str_eq(out, app);
	free(out);
}
END_TEST

START_TEST(test_describe_parse_truncated)
{
	size_t i, len = strlen(safemode_json);

	/* Every proper prefix is invalid JSON: an error, never a crash. */
	for (i = 0; i < len; i++)
		ck_assert_int_eq(parse_err(safemode_json, i),
				 CINDER_ERR_MALFORMED);
}
END_TEST

/* Build {"f":[...n names...]} or similar big inputs. */
static char *
big_functions(size_t n)
{
	size_t cap = 16 + n * 12, i, off;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	off = (size_t)snprintf(s, cap, "{\"f\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s\"f%u\"",
					i ? "," : "", (unsigned)i);
	snprintf(s + off, cap - off, "]}");
	return s;
}

START_TEST(test_describe_parse_limits)
{
	struct describe *d;
	char *s, buf[4096];
	size_t i, off;
	char name[DESCRIBE_NAME_MAX + 2];

	s = big_functions(DESCRIBE_MAX_FUNCTIONS);
	d = parse_ok(s);
	ck_assert_uint_eq(json_array_size(d->functions),
			  DESCRIBE_MAX_FUNCTIONS);
	describe_free(d);
	free(s);
	s = big_functions(DESCRIBE_MAX_FUNCTIONS + 1);
	ck_assert_int_eq(parse_err(s, strlen(s)), CINDER_ERR_TOO_BIG);
	free(s);
	s = big_functions(1000);
	ck_assert_int_eq(parse_err(s, strlen(s)), CINDER_ERR_TOO_BIG);
	free(s);

	/* Too many variables */
	off = (size_t)snprintf(buf, sizeof(buf), "{\"v\":{");
	for (i = 0; i <= DESCRIBE_MAX_VARIABLES; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"%s\"v%u\":2", i ? "," : "",
					(unsigned)i);
	snprintf(buf + off, sizeof(buf) - off, "}}");
	ck_assert_int_eq(parse_err(buf, strlen(buf)), CINDER_ERR_TOO_BIG);

	/* Too many modules */
	off = (size_t)snprintf(buf, sizeof(buf), "{\"m\":[");
	for (i = 0; i <= DESCRIBE_MAX_MODULES; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"%s{\"l\":\"m\"}", i ? "," : "");
	snprintf(buf + off, sizeof(buf) - off, "]}");
	ck_assert_int_eq(parse_err(buf, strlen(buf)), CINDER_ERR_TOO_BIG);

	/* Too many dependencies */
	snprintf(buf, sizeof(buf),
		 "{\"m\":[{\"l\":\"m\",\"d\":[{},{},{},{},{}]}]}");
	ck_assert_int_eq(parse_err(buf, strlen(buf)), CINDER_ERR_TOO_BIG);

	/* Name length */
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(buf, sizeof(buf), "{\"f\":[\"%s\"]}", name);
	ck_assert_int_eq(parse_err(buf, strlen(buf)), CINDER_ERR_MALFORMED);
	name[DESCRIBE_NAME_MAX] = '\0';
	snprintf(buf, sizeof(buf), "{\"f\":[\"%s\"]}", name);
	d = parse_ok(buf);
	describe_free(d);

	/* Whole text */
	s = malloc(DESCRIBE_JSON_MAX + 2);
	ck_assert_ptr_nonnull(s);
	memset(s, ' ', DESCRIBE_JSON_MAX + 1);
	s[0] = '{';
	s[DESCRIBE_JSON_MAX] = '}';
	ck_assert_int_eq(parse_err(s, DESCRIBE_JSON_MAX + 1),
			 CINDER_ERR_TOO_BIG);
	free(s);
	/* Deep nesting inside an ignored key: jansson's depth limit. */
	s = malloc(200000);
	ck_assert_ptr_nonnull(s);
	memset(s, '[', 199999);
	s[199999] = '\0';
	ck_assert_int_ne(parse_err(s, DESCRIBE_JSON_MAX), 0);
	free(s);
}
END_TEST

static void
mutate_parse(const uint8_t *buf, size_t len, void *arg)
{
	struct describe *d = NULL;
	char err[DESCRIBE_ERRLEN];
	struct describe_missing miss[DESCRIBE_MAX_MODULES * DESCRIBE_MAX_DEPS];

	(void)arg;
	if (describe_parse((const char *)buf, len, &d, err, sizeof(err)) != 0) {
		ck_assert_ptr_null(d);
		return;
	}
	(void)describe_system_version(d);
	(void)describe_is_safe_mode(d);
	ck_assert_uint_le(describe_missing_dependencies(d, miss, 64),
			  DESCRIBE_MAX_MODULES * DESCRIBE_MAX_DEPS);
	describe_free(d);
}

START_TEST(test_describe_parse_mutated)
{
	mutate_run((const uint8_t *)safemode_json, strlen(safemode_json), 7,
		   3000, mutate_parse, NULL);
	mutate_run((const uint8_t *)healthy_json, strlen(healthy_json), 8, 3000,
		   mutate_parse, NULL);
	mutate_run((const uint8_t *)testapp_json, strlen(testapp_json), 9, 3000,
		   mutate_parse, NULL);
}
END_TEST

static Suite *
describe_suite(void)
{
	Suite *s = suite_create("describe");
	TCase *tc;

	tc = tcase_create("parse_valid");
	tcase_add_test(tc, test_describe_parse_tinker);
	tcase_add_test(tc, test_describe_parse_testapp);
	tcase_add_test(tc, test_describe_parse_partial);
	tcase_add_test(tc, test_describe_parse_safemode_example);
	tcase_add_test(tc, test_describe_parse_healthy);
	suite_add_tcase(s, tc);

	tc = tcase_create("analysis");
	tcase_add_test(tc, test_describe_missing_dependencies_chain);
	tcase_add_test(tc, test_describe_is_safe_mode_vv_only);
	tcase_add_test(tc, test_describe_release_str_table);
	tcase_add_test(tc, test_describe_system_version_monolithic);
	tcase_add_test(tc, test_describe_value_decode_types);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_invalid");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_describe_parse_malformed);
	tcase_add_test(tc, test_describe_parse_truncated);
	tcase_add_test(tc, test_describe_version_unknown);
	tcase_add_test(tc, test_describe_merge_halves);
	tcase_add_test(tc, test_describe_parse_limits);
	tcase_add_test(tc, test_describe_parse_mutated);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(describe_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
