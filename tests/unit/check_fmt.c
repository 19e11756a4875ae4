/* SPDX-License-Identifier: MIT */
/*
 * fmt: fmt_u64() and fmt_i64() write what printf's "%llu" and "%lld"
 * write, with the length, at the edges of their ranges and on a sweep
 * of values; fmt_time_ms() writes what gmtime_r and strftime make of a
 * time, every day of 1970-2200 and a stride of days to 9999, and says
 * when a year is past 9999; fmt_ipv4() writes what inet_ntop() writes
 * for every byte value in every position. Pure.
 */
#include "config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "fmt.h"

/* v written by fmt_i64 (sign) or fmt_u64 is what printf writes, and
   the room's last byte is untouched */
static void
check_value(uint64_t v, bool sign)
{
	char got[FMT_INT_MAX + 1], want[32];
	size_t n;

	memset(got, 'x', sizeof(got));
	if (sign) {
		snprintf(want, sizeof(want), "%" PRId64, (int64_t)v);
		n = fmt_i64(got, (int64_t)v);
	} else {
		snprintf(want, sizeof(want), "%" PRIu64, v);
		n = fmt_u64(got, v);
	}
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_int_eq(got[FMT_INT_MAX], 'x');
}

#define check_i64(v) check_value((uint64_t)(int64_t)(v), true)
#define check_u64(v) check_value((uint64_t)(v), false)

START_TEST(test_fmt_edges)
{
	static const int64_t iv[] = {
		0,	   1,	      -1,	    9,	       10,
		-10,	   99,	      100,	    INT32_MAX, INT32_MIN,
		INT64_MAX, INT64_MIN, INT64_MIN + 1};
	static const uint64_t uv[] = {0,
				      1,
				      9,
				      10,
				      UINT32_MAX,
				      INT64_MAX,
				      (uint64_t)INT64_MAX + 1,
				      UINT64_MAX};
	size_t i;

	for (i = 0; i < sizeof(iv) / sizeof(iv[0]); i++)
		check_i64(iv[i]);
	for (i = 0; i < sizeof(uv) / sizeof(uv[0]); i++)
		check_u64(uv[i]);
}
END_TEST

START_TEST(test_fmt_sweep)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	int64_t v;
	int i, shift;

	/* every power of ten and its neighbours, both signs */
	for (v = 1; v <= INT64_MAX / 10; v *= 10) {
		check_i64(v - 1);
		check_i64(v);
		check_i64(v + 1);
		check_i64(-v);
		check_i64(-v - 1);
		check_u64((uint64_t)v * 10 - 1);
	}
	/* pseudo-random values of every magnitude */
	for (i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		shift = i % 64;
		check_u64(x >> shift);
		check_i64((int64_t)(x >> shift));
		check_i64((int64_t)x);
	}
}
END_TEST

/* fmt_time_ms(ms) is gmtime_r + strftime's text (years up to 9999) */
static void
check_time(uint64_t ms)
{
	char got[FMT_TIME_LEN + 1], want[64];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	memset(got, 'x', sizeof(got));
	ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
	strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(want + 19, sizeof(want) - 19, ".%03uZ", (unsigned)(ms % 1000));
	ck_assert(fmt_time_ms(ms, got));
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(got[FMT_TIME_LEN], 'x');
}

START_TEST(test_fmt_time)
{
	const uint64_t day = 86400000;
	uint64_t ms, x = 0x2545f4914f6cdd1du;
	char buf[FMT_TIME_LEN];
	int i;

	check_time(0);
	check_time(1764982800123u);   /* 2025-12-06T01:00:00.123Z */
	check_time(253402300799999u); /* 9999-12-31T23:59:59.999Z */
	/* every day to 2200 at a moving time of day, then a stride */
	for (ms = 0, i = 0; ms < 7258118400000u; ms += day, i++)
		check_time(ms + (uint64_t)i * 997 % day);
	for (; ms < 253402300800000u; ms += 53 * day + 4321)
		check_time(ms);
	for (i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_time(x % 253402300800000u);
	}
	/* past 9999: refused, the year modulo 10000 */
	ck_assert(!fmt_time_ms(253402300800000u, buf));
	ck_assert_str_eq(buf, "0000-01-01T00:00:00.000Z");
}
END_TEST

/* a written by fmt_ipv4 is inet_ntop's text, and the room's last byte
   is untouched */
static void
check_ipv4(const unsigned char a[4])
{
	char got[FMT_IPV4_LEN + 1], want[INET_ADDRSTRLEN];
	size_t n;

	memset(got, 'x', sizeof(got));
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, a, want, sizeof(want)));
	n = fmt_ipv4(got, a);
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_int_eq(got[FMT_IPV4_LEN], 'x');
}

START_TEST(test_fmt_ipv4)
{
	unsigned char a[4];
	unsigned v, pos, i;

	/* every byte value in each position, the others at 0 and 255 */
	for (pos = 0; pos < 4; pos++)
		for (v = 0; v < 256; v++) {
			memset(a, 0, sizeof(a));
			a[pos] = (unsigned char)v;
			check_ipv4(a);
			memset(a, 255, sizeof(a));
			a[pos] = (unsigned char)v;
			check_ipv4(a);
		}
	/* and addresses with every byte different */
	for (i = 0; i < 256; i++) {
		a[0] = (unsigned char)i;
		a[1] = (unsigned char)(i * 7 + 3);
		a[2] = (unsigned char)(i * 13 + 99);
		a[3] = (unsigned char)(255 - i);
		check_ipv4(a);
	}
}
END_TEST

/* Every byte value as two lowercase digits, as printf's "%02x" writes
   it, and the NUL after the last; nothing written past it. */
START_TEST(test_fmt_hex)
{
	uint8_t in[256];
	char got[2 * sizeof(in) + 2], want[3];
	unsigned i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	memset(got, 'x', sizeof(got));
	fmt_hex(in, sizeof(in), got);
	for (i = 0; i < sizeof(in); i++) {
		snprintf(want, sizeof(want), "%02x", i);
		ck_assert_int_eq(got[2 * i], want[0]);
		ck_assert_int_eq(got[2 * i + 1], want[1]);
	}
	ck_assert_int_eq(got[2 * sizeof(in)], '\0');
	ck_assert_int_eq(got[2 * sizeof(in) + 1], 'x');
	fmt_hex(in, 0, got);
	ck_assert_str_eq(got, "");
}
END_TEST

START_TEST(test_fmt_json_str)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"", "\"\""},
		{"0a1b", "\"0a1b\""},
		{"a\"b\\c", "\"a\\u0022b\\u005cc\""},
		{"\x01\n\x1f ~", "\"\\u0001\\u000a\\u001f ~\""},
		{"\xc3\xa9\x7f",
		 "\"\xc3\xa9\x7f\""}, /* UTF-8 and DEL as they are */
	};
	char got[64], all[11];
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(got, 'x', sizeof(got));
		n = fmt_json_str(got, cases[i].in);
		ck_assert_uint_eq(n, strlen(cases[i].want));
		ck_assert_mem_eq(got, cases[i].want, n);
		ck_assert_int_eq(got[n], 'x'); /* no NUL */
	}
	/* every byte escaped: exactly the room FMT_JSON_STR_MAX says */
	memset(all, '\x02', 10);
	all[10] = '\0';
	ck_assert_uint_le(FMT_JSON_STR_MAX(10), sizeof(got));
	ck_assert_uint_eq(fmt_json_str(got, all), FMT_JSON_STR_MAX(10));
}
END_TEST

static Suite *
fmt_suite(void)
{
	Suite *s = suite_create("fmt");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_fmt_edges);
	tcase_add_test(tc, test_fmt_sweep);
	tcase_add_test(tc, test_fmt_time);
	tcase_add_test(tc, test_fmt_ipv4);
	tcase_add_test(tc, test_fmt_hex);
	tcase_add_test(tc, test_fmt_json_str);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fmt_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
