/* SPDX-License-Identifier: MIT */
/*
 * Tests for the RFC 7252 message codec in src/coap/msg.c: the recorded
 * and protocol.md vectors decode and re-encode byte for byte, malformed
 * inputs are rejected with the right code, encoders respect the output
 * capacity, and truncated or mutated inputs never crash.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "coap_vectors.h"
#include "mutate.h"

#define BUF_MAX 2048

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	struct coap_vec v = {"", hex};

	return coap_vec_bytes(&v, out, cap);
}

/* Every view of a decoded message lies inside [buf, buf + len). */
static void
assert_views_inside(const struct pcoap_msg *m, const uint8_t *buf, size_t len)
{
	size_t i;

	ck_assert_uint_le(m->n_opts, PCOAP_MAX_OPTIONS);
	ck_assert_uint_le(m->token.len, PCOAP_MAX_TOKEN);
	if (m->token.len > 0)
		ck_assert(m->token.p >= buf &&
			  m->token.p + m->token.len <= buf + len);
	for (i = 0; i < m->n_opts; i++) {
		if (m->opts[i].len > 0)
			ck_assert(m->opts[i].val >= buf &&
				  m->opts[i].val + m->opts[i].len <= buf + len);
		if (i > 0)
			ck_assert_uint_ge(m->opts[i].num, m->opts[i - 1].num);
	}
	if (m->payload.len > 0)
		ck_assert(m->payload.p >= buf &&
			  m->payload.p + m->payload.len == buf + len);
}

/* Decode OK implies the encoder reproduces exactly the same bytes. */
static void
assert_round_trip(const uint8_t *buf, size_t len)
{
	struct pcoap_msg m;
	uint8_t *out = malloc(len > 0 ? len : 1);
	size_t n = 0, size = 0;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	assert_views_inside(&m, buf, len);
	ck_assert_int_eq(pcoap_msg_encoded_size(&m, &size), PCOAP_OK);
	ck_assert_uint_eq(size, len);
	/* Exact-size output: ASan catches any write past it. */
	ck_assert_int_eq(pcoap_msg_encode(&m, out, len, &n), PCOAP_OK);
	ck_assert_uint_eq(n, len);
	ck_assert_mem_eq(out, buf, len);
	free(out);
}

START_TEST(test_pcoap_msg_decode_vectors)
{
	size_t i, len;
	uint8_t buf[BUF_MAX];

	for (i = 0; i < COAP_N_VECTORS; i++) {
		len = coap_vec_bytes(&coap_vectors[i], buf, sizeof(buf));
		ck_assert_msg(len >= 4, "vector %s", coap_vectors[i].name);
		assert_round_trip(buf, len);
	}
}
END_TEST

START_TEST(test_pcoap_msg_decode_fields)
{
	uint8_t buf[64];
	struct pcoap_msg m;
	size_t len;

	/* protocol.md §3.7: function call "led" with argument "on". */
	len = unhex("4102123407b166036c6564426f6e", buf, sizeof(buf));
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	ck_assert_uint_eq(m.type, PCOAP_CON);
	ck_assert_uint_eq(m.code, PCOAP_CODE_POST);
	ck_assert_uint_eq(m.mid, 0x1234);
	ck_assert_uint_eq(m.token.len, 1);
	ck_assert_uint_eq(m.token.p[0], 0x07);
	ck_assert_uint_eq(m.n_opts, 3);
	ck_assert_uint_eq(m.opts[0].num, PCOAP_OPT_URI_PATH);
	ck_assert_mem_eq(m.opts[0].val, "f", 1);
	ck_assert_uint_eq(m.opts[1].num, PCOAP_OPT_URI_PATH);
	ck_assert_uint_eq(m.opts[1].len, 3);
	ck_assert_mem_eq(m.opts[1].val, "led", 3);
	ck_assert_uint_eq(m.opts[2].num, PCOAP_OPT_URI_QUERY);
	ck_assert_mem_eq(m.opts[2].val, "on", 2);
	ck_assert_uint_eq(m.payload.len, 0);

	/* Recorded: server event "vdev"/"cmd", Max-Age 60 in 4 bytes. */
	len = unhex("5002b585b165047664657603636d64340000003cff70756233", buf,
		    sizeof(buf));
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	ck_assert_uint_eq(m.type, PCOAP_NON);
	ck_assert_uint_eq(m.mid, 0xb585);
	ck_assert_uint_eq(m.token.len, 0);
	ck_assert_uint_eq(m.n_opts, 4);
	ck_assert_uint_eq(m.opts[3].num, PCOAP_OPT_MAX_AGE);
	ck_assert_uint_eq(m.opts[3].len, 4);
	ck_assert_uint_eq(m.payload.len, 4);
	ck_assert_mem_eq(m.payload.p, "pub3", 4);

	/* Goodbye: No-Response (258) via a 1-byte delta extension. */
	len = unhex("50021234b178d0eaff0102", buf, sizeof(buf));
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	ck_assert_uint_eq(m.n_opts, 2);
	ck_assert_uint_eq(m.opts[1].num, PCOAP_OPT_NO_RESPONSE);
	ck_assert_uint_eq(m.opts[1].len, 0);

	/* Ping: nothing after the message ID. */
	len = unhex("400046d3", buf, sizeof(buf));
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	ck_assert_uint_eq(m.code, PCOAP_CODE_EMPTY);
	ck_assert_uint_eq(m.n_opts, 0);
	ck_assert_uint_eq(m.payload.len, 0);
}
END_TEST

struct bad_case {
	const char *hex;
	int want;
	const char *why;
};

static const struct bad_case bad_cases[] = {
	{"", PCOAP_MALFORMED, "empty"},
	{"400012", PCOAP_MALFORMED, "short header"},
	{"00001234", PCOAP_MALFORMED, "version 0"},
	{"80001234", PCOAP_MALFORMED, "version 2"},
	{"c0001234", PCOAP_MALFORMED, "version 3"},
	{"49011234010203040506070809", PCOAP_MALFORMED, "TKL 9"},
	{"4f011234", PCOAP_MALFORMED, "TKL 15"},
	{"4101123401", PCOAP_OK, "token only (control)"},
	{"42011234aa", PCOAP_MALFORMED, "token cut"},
	{"40011234ff", PCOAP_MALFORMED, "marker, empty payload"},
	{"40011234b164ff", PCOAP_MALFORMED, "option, marker, no payload"},
	{"40011234f1", PCOAP_MALFORMED, "delta nibble 15"},
	{"40011234bf", PCOAP_MALFORMED, "length nibble 15"},
	{"40011234d1", PCOAP_MALFORMED, "delta ext byte missing"},
	{"40011234e100", PCOAP_MALFORMED, "delta ext2 byte missing"},
	{"40011234bd", PCOAP_MALFORMED, "length ext byte missing"},
	{"40011234be00", PCOAP_MALFORMED, "length ext2 byte missing"},
	{"40011234b3aabb", PCOAP_MALFORMED, "value cut"},
	{"40011234bd05aabb", PCOAP_MALFORMED, "extended value cut"},
	{"40011234e0fef3e0fef3", PCOAP_MALFORMED, "option number > 65535"},
	{"40011234e0fef2", PCOAP_OK, "option number 65535 (control)"},
};

START_TEST(test_pcoap_msg_decode_malformed)
{
	size_t i, len;
	uint8_t buf[64];
	struct pcoap_msg m;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		uint8_t *copy;

		len = unhex(bad_cases[i].hex, buf, sizeof(buf));
		copy = malloc(len > 0 ? len : 1);
		memcpy(copy, buf, len);
		ck_assert_msg(pcoap_msg_decode(copy, len, &m) ==
				      bad_cases[i].want,
			      "%s: got %d", bad_cases[i].why,
			      pcoap_msg_decode(copy, len, &m));
		free(copy);
	}
	ck_assert_int_eq(pcoap_msg_decode(NULL, 4, &m), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_msg_decode(buf, 4, NULL), PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_msg_decode_too_many_options)
{
	uint8_t buf[4 + PCOAP_MAX_OPTIONS + 1] = {0x40, 0x01, 0x12, 0x34};
	struct pcoap_msg m;
	size_t i;

	/* Empty Uri-Path options: b0 then 00 (delta 0, length 0). */
	buf[4] = 0xb0;
	for (i = 5; i < sizeof(buf); i++)
		buf[i] = 0x00;
	ck_assert_int_eq(pcoap_msg_decode(buf, sizeof(buf) - 1, &m), PCOAP_OK);
	ck_assert_uint_eq(m.n_opts, PCOAP_MAX_OPTIONS);
	assert_round_trip(buf, sizeof(buf) - 1);
	ck_assert_int_eq(pcoap_msg_decode(buf, sizeof(buf), &m), PCOAP_TOO_BIG);
}
END_TEST

START_TEST(test_pcoap_msg_decode_extended)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	size_t len = 0, i;

	/* Option numbers and lengths across the 12/13/268/269 edges. */
	static const uint16_t nums[] = {1,   12,  13,	14,   268,
					269, 270, 1000, 65535};
	static const size_t lens[] = {0, 12, 13, 14, 268, 269, 270, 0, 1};
	static uint8_t val[300];

	memset(val, 'x', sizeof(val));
	pcoap_msg_init(&m, PCOAP_NON, PCOAP_CODE_POST, 0xbeef);
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		ck_assert_int_eq(pcoap_msg_add_opt(&m, nums[i], val, lens[i]),
				 PCOAP_OK);
	ck_assert_int_eq(pcoap_msg_encode(&m, buf, sizeof(buf), &len),
			 PCOAP_OK);
	assert_round_trip(buf, len);
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		ck_assert_uint_eq(m.opts[i].num, nums[i]);
		ck_assert_uint_eq(m.opts[i].len, lens[i]);
	}
}
END_TEST

/*
 * Every truncation of every vector: no crash, and either rejected or a
 * shorter message that is itself valid (cutting at an option or payload
 * boundary leaves a well-formed message) and round-trips exactly.
 */
START_TEST(test_pcoap_msg_decode_truncations)
{
	uint8_t buf[BUF_MAX];
	size_t i, len, n;
	struct pcoap_msg m;

	for (i = 0; i < COAP_N_VECTORS; i++) {
		len = coap_vec_bytes(&coap_vectors[i], buf, sizeof(buf));
		for (n = 0; n < len; n++) {
			uint8_t *copy = malloc(n > 0 ? n : 1);
			int r;

			memcpy(copy, buf, n);
			r = pcoap_msg_decode(copy, n, &m);
			ck_assert_msg(r == PCOAP_OK || r == PCOAP_NEED_MORE ||
					      r == PCOAP_MALFORMED,
				      "%s cut at %zu: %d", coap_vectors[i].name,
				      n, r);
			if (n < PCOAP_HDR_LEN)
				ck_assert_int_eq(r, PCOAP_MALFORMED);
			if (r == PCOAP_OK)
				assert_round_trip(copy, n);
			free(copy);
		}
	}
}
END_TEST

/*
 * Every 1- and 2-byte tail behind a CON GET header with a token, and
 * every 3-byte tail whose first byte needs extension bytes.
 */
START_TEST(test_pcoap_msg_decode_exhaustive_tail)
{
	static const uint8_t ext[] = {0x0d, 0x0e, 0xd0, 0xdd, 0xde, 0xe0,
				      0xed, 0xee, 0xdf, 0xfd, 0xff};
	uint8_t buf[4 + 1 + 3] = {0x41, 0x01, 0x12, 0x34, 0x07};
	struct pcoap_msg m;
	unsigned ok = 0;
	uint32_t v;
	size_t i;

	for (v = 0; v < 0x100; v++) {
		buf[5] = (uint8_t)v;
		if (pcoap_msg_decode(buf, 6, &m) == PCOAP_OK) {
			assert_views_inside(&m, buf, 6);
			ok++;
		}
	}
	for (v = 0; v < 0x10000; v++) {
		buf[5] = (uint8_t)v;
		buf[6] = (uint8_t)(v >> 8);
		if (pcoap_msg_decode(buf, 7, &m) == PCOAP_OK) {
			assert_views_inside(&m, buf, 7);
			ok++;
		}
	}
	for (i = 0; i < sizeof(ext); i++) {
		buf[5] = ext[i];
		for (v = 0; v < 0x10000; v++) {
			buf[6] = (uint8_t)v;
			buf[7] = (uint8_t)(v >> 8);
			if (pcoap_msg_decode(buf, 8, &m) == PCOAP_OK) {
				assert_views_inside(&m, buf, 8);
				ok++;
			}
		}
	}
	ck_assert_uint_gt(ok, 1000);
}
END_TEST

static void
msg_mutant(const uint8_t *buf, size_t len, void *arg)
{
	struct pcoap_msg m;
	int r = pcoap_msg_decode(buf, len, &m);
	unsigned *ok = arg;

	ck_assert(r == PCOAP_OK || r == PCOAP_MALFORMED || r == PCOAP_TOO_BIG);
	if (r == PCOAP_OK) {
		assert_round_trip(buf, len);
		(*ok)++;
	}
}

START_TEST(test_pcoap_msg_decode_mutate)
{
	uint8_t buf[BUF_MAX];
	size_t i, len;
	unsigned ok = 0;

	for (i = 0; i < COAP_N_VECTORS; i++) {
		len = coap_vec_bytes(&coap_vectors[i], buf, sizeof(buf));
		mutate_run(buf, len, 1000 + i, 2000, msg_mutant, &ok);
	}
	/* The mutants must also reach the success path, not only errors. */
	ck_assert_uint_gt(ok, 1000);
}
END_TEST

START_TEST(test_pcoap_msg_encode_nospace)
{
	uint8_t buf[BUF_MAX];
	size_t i, len, cap, n;
	struct pcoap_msg m;

	for (i = 0; i < COAP_N_VECTORS; i++) {
		len = coap_vec_bytes(&coap_vectors[i], buf, sizeof(buf));
		ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
		for (cap = 0; cap < len; cap++) {
			uint8_t *out = malloc(cap > 0 ? cap : 1);

			n = 99;
			ck_assert_int_eq(pcoap_msg_encode(&m, out, cap, &n),
					 PCOAP_NOSPACE);
			ck_assert_uint_eq(n, 0);
			free(out);
		}
	}
}
END_TEST

START_TEST(test_pcoap_msg_encode_invalid)
{
	uint8_t out[64], tok[9] = {0};
	struct pcoap_msg m;
	size_t n;

	pcoap_msg_init(&m, 4, PCOAP_CODE_GET, 1);
	ck_assert_int_eq(pcoap_msg_encode(&m, out, sizeof(out), &n),
			 PCOAP_MALFORMED);
	pcoap_msg_init(&m, PCOAP_CON, PCOAP_CODE_GET, 1);
	m.token.p = tok;
	m.token.len = 9;
	ck_assert_int_eq(pcoap_msg_encode(&m, out, sizeof(out), &n),
			 PCOAP_MALFORMED);
	pcoap_msg_init(&m, PCOAP_CON, PCOAP_CODE_GET, 1);
	m.opts[0].num = 15;
	m.opts[1].num = 11;
	m.n_opts = 2;
	ck_assert_int_eq(pcoap_msg_encode(&m, out, sizeof(out), &n),
			 PCOAP_MALFORMED);
	pcoap_msg_init(&m, PCOAP_CON, PCOAP_CODE_GET, 1);
	m.payload.len = 3;
	ck_assert_int_eq(pcoap_msg_encode(&m, out, sizeof(out), &n),
			 PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_msg_encode(NULL, out, sizeof(out), &n),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_msg_add_opt_limits)
{
	struct pcoap_msg m;
	size_t i;
	uint8_t tok[9] = {0};

	pcoap_msg_init(&m, PCOAP_CON, PCOAP_CODE_GET, 1);
	ck_assert_int_eq(pcoap_msg_add_opt(&m, 15, "a", 1), PCOAP_OK);
	ck_assert_int_eq(pcoap_msg_add_opt(&m, 11, "b", 1), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_msg_add_opt(&m, 15, NULL, 1), PCOAP_MALFORMED);
	for (i = 1; i < PCOAP_MAX_OPTIONS; i++)
		ck_assert_int_eq(pcoap_msg_add_opt(&m, 15, NULL, 0), PCOAP_OK);
	ck_assert_int_eq(pcoap_msg_add_opt(&m, 15, NULL, 0), PCOAP_TOO_BIG);
	ck_assert_int_eq(pcoap_msg_set_token(&m, tok, 8), PCOAP_OK);
	ck_assert_int_eq(pcoap_msg_set_token(&m, tok, 9), PCOAP_TOO_BIG);
}
END_TEST

START_TEST(test_pcoap_msg_opt_nth)
{
	uint8_t buf[64];
	struct pcoap_msg m;
	const struct pcoap_opt *o;
	size_t len;

	len = unhex("5002b585b165047664657603636d64340000003cff70756233", buf,
		    sizeof(buf));
	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	o = pcoap_msg_opt(&m, PCOAP_OPT_URI_PATH, 2);
	ck_assert_ptr_nonnull(o);
	ck_assert_mem_eq(o->val, "cmd", 3);
	ck_assert_ptr_null(pcoap_msg_opt(&m, PCOAP_OPT_URI_PATH, 3));
	ck_assert_ptr_null(pcoap_msg_opt(&m, PCOAP_OPT_URI_QUERY, 0));
}
END_TEST

START_TEST(test_pcoap_opt_uint_values)
{
	static const uint8_t v[] = {0x00, 0x00, 0x00, 0x3c, 0x01};
	struct pcoap_opt o = {14, v, 0};
	uint32_t x = 7;

	ck_assert_int_eq(pcoap_opt_uint(&o, &x), PCOAP_OK);
	ck_assert_uint_eq(x, 0);
	o.len = 4;
	ck_assert_int_eq(pcoap_opt_uint(&o, &x), PCOAP_OK);
	ck_assert_uint_eq(x, 60);
	o.val = v + 3;
	o.len = 2;
	ck_assert_int_eq(pcoap_opt_uint(&o, &x), PCOAP_OK);
	ck_assert_uint_eq(x, 0x3c01);
	o.val = v;
	o.len = 5;
	ck_assert_int_eq(pcoap_opt_uint(&o, &x), PCOAP_TOO_BIG);
}
END_TEST

START_TEST(test_pcoap_strerror_all)
{
	ck_assert_str_eq(pcoap_strerror(PCOAP_OK), "ok");
	ck_assert_str_ne(pcoap_strerror(PCOAP_NEED_MORE), "");
	ck_assert_str_ne(pcoap_strerror(PCOAP_MALFORMED),
			 pcoap_strerror(PCOAP_TOO_BIG));
	ck_assert_str_ne(pcoap_strerror(PCOAP_NOSPACE), pcoap_strerror(-100));
	ck_assert_ptr_nonnull(pcoap_strerror(12345));
}
END_TEST

static Suite *
msg_suite(void)
{
	Suite *s = suite_create("coap_msg");
	TCase *tc;

	tc = tcase_create("decode");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_pcoap_msg_decode_vectors);
	tcase_add_test(tc, test_pcoap_msg_decode_fields);
	tcase_add_test(tc, test_pcoap_msg_decode_malformed);
	tcase_add_test(tc, test_pcoap_msg_decode_too_many_options);
	tcase_add_test(tc, test_pcoap_msg_decode_extended);
	tcase_add_test(tc, test_pcoap_msg_decode_truncations);
	tcase_add_test(tc, test_pcoap_msg_decode_mutate);
	tcase_add_test(tc, test_pcoap_msg_decode_exhaustive_tail);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_test(tc, test_pcoap_msg_encode_nospace);
	tcase_add_test(tc, test_pcoap_msg_encode_invalid);
	tcase_add_test(tc, test_pcoap_msg_add_opt_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_test(tc, test_pcoap_msg_opt_nth);
	tcase_add_test(tc, test_pcoap_opt_uint_values);
	tcase_add_test(tc, test_pcoap_strerror_all);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(msg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
