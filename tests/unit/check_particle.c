/* SPDX-License-Identifier: MIT */
/*
 * Tests for the Particle message layer in src/coap/particle.c: builders
 * produce the exact bytes of protocol.md §3.7 and of the recorded
 * sessions, parsers return the fields, the classifier and the device
 * constraint check agree with the catalogue, and mutated input never
 * crashes any parser.
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
	size_t n = coap_vec_bytes(&v, out, cap);

	ck_assert_uint_gt(n, 0);
	return n;
}

static void
assert_bytes(const uint8_t *got, size_t got_len, const char *want_hex)
{
	uint8_t want[BUF_MAX];
	size_t n = unhex(want_hex, want, sizeof(want));

	ck_assert_uint_eq(got_len, n);
	ck_assert_mem_eq(got, want, n);
}

static void
decode_hex(const char *hex, uint8_t *buf, struct pcoap_msg *m)
{
	size_t n = unhex(hex, buf, BUF_MAX);

	ck_assert_int_eq(pcoap_msg_decode(buf, n, m), PCOAP_OK);
}

/* ---------------------------------------------------------------- */
/* Builders: exact bytes.                                             */

START_TEST(test_pcoap_build_ping_bytes)
{
	uint8_t out[16];
	size_t n;

	ck_assert_int_eq(pcoap_build_ping(out, sizeof(out), &n, 0x1234),
			 PCOAP_OK);
	assert_bytes(out, n, "40001234");
	ck_assert_int_eq(pcoap_build_empty_ack(out, sizeof(out), &n, 0x46d3),
			 PCOAP_OK);
	assert_bytes(out, n, "600046d3");
}
END_TEST

START_TEST(test_pcoap_build_hello_bytes)
{
	uint8_t out[32];
	size_t n;
	struct pcoap_hello h = {.product_id = 3,
				.product_version = 0xffff,
				.flags = 0,
				.platform_id = 3};

	/* Recorded device Hello (tinker session). */
	ck_assert_int_eq(pcoap_build_hello(out, sizeof(out), &n, 0x858b, &h),
			 PCOAP_OK);
	assert_bytes(out, n, "5002858bb168ff0003ffff00000003");
	/* Recorded server Hello: no payload. */
	ck_assert_int_eq(pcoap_build_hello(out, sizeof(out), &n, 0x0141, NULL),
			 PCOAP_OK);
	assert_bytes(out, n, "50020141b168");
}
END_TEST

START_TEST(test_pcoap_build_function_call_bytes)
{
	uint8_t out[64];
	size_t n;

	ck_assert_int_eq(pcoap_build_function_call(out, sizeof(out), &n, 0x1234,
						   0x07, "led", 3, "on", 2),
			 PCOAP_OK);
	assert_bytes(out, n, "4102123407b166036c6564426f6e");
	/* No argument: the empty Uri-Query is still there (§3.2). */
	ck_assert_int_eq(pcoap_build_function_call(out, sizeof(out), &n, 0x1234,
						   0x07, "led", 3, NULL, 0),
			 PCOAP_OK);
	assert_bytes(out, n, "4102123407b166036c656440");
	/* Recorded (testapp). */
	ck_assert_int_eq(pcoap_build_function_call(out, sizeof(out), &n, 0xb584,
						   0x05, "digitalwrite", 12,
						   "D7,HIGH", 7),
			 PCOAP_OK);
	assert_bytes(
		out, n,
		"4102b58405b1660c6469676974616c77726974654744372c48494748");
	ck_assert_int_eq(pcoap_build_function_call(out, sizeof(out), &n, 0x1234,
						   0x07, "", 0, "x", 1),
			 PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_build_function_return(out, sizeof(out), &n,
						     0x1235, 0x07, 1),
			 PCOAP_OK);
	assert_bytes(out, n, "5144123507ff00000001");
	ck_assert_int_eq(pcoap_build_function_return(out, sizeof(out), &n,
						     0x1235, 0x07, -2),
			 PCOAP_OK);
	assert_bytes(out, n, "5144123507fffffffffe");
}
END_TEST

START_TEST(test_pcoap_build_variable_bytes)
{
	uint8_t out[64], val[8];
	size_t n, vn;

	ck_assert_int_eq(pcoap_build_variable(out, sizeof(out), &n, 0x1234,
					      0x07, "temp", 4),
			 PCOAP_OK);
	assert_bytes(out, n, "4101123407b1760474656d70");
	ck_assert_int_eq(pcoap_build_variable(out, sizeof(out), &n, 0xb581,
					      0x02, "counter", 7),
			 PCOAP_OK);
	assert_bytes(out, n, "4101b58102b17607636f756e746572");
	/* Recorded ≤1.4-style piggy-backed double reply (0.5, LE). */
	ck_assert_int_eq(pcoap_value_encode_double(0.5, val, sizeof(val), &vn),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_variable_reply(out, sizeof(out), &n,
						    PCOAP_ACK, 0xb582, 0x03,
						    val, vn),
			 PCOAP_OK);
	assert_bytes(out, n, "6145b58203ff000000000000e03f");
	ck_assert_int_eq(pcoap_value_encode_int32(0x17, val, sizeof(val), &vn),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_variable_reply(out, sizeof(out), &n,
						    PCOAP_NON, 0x1235, 0x07,
						    val, vn),
			 PCOAP_OK);
	assert_bytes(out, n, "5145123507ff00000017");
	ck_assert_int_eq(pcoap_build_variable_reply(out, sizeof(out), &n,
						    PCOAP_CON, 0x1235, 0x07,
						    val, vn),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_build_describe_bytes)
{
	static const char json[] = "{\"f\":[],\"v\":{}}";
	uint8_t out[64];
	size_t n;

	ck_assert_int_eq(pcoap_build_describe(out, sizeof(out), &n, 0x1234,
					      0x07, PCOAP_DESCRIBE_APP),
			 PCOAP_OK);
	assert_bytes(out, n, "4101123407b1644102");
	ck_assert_int_eq(
		pcoap_build_describe(out, sizeof(out), &n, 0x0142, 0x01, 0),
		PCOAP_OK);
	assert_bytes(out, n, "4101014201b164");
	ck_assert_int_eq(pcoap_build_describe_reply(out, sizeof(out), &n,
						    PCOAP_ACK, 0x0142, 0x01,
						    json, strlen(json)),
			 PCOAP_OK);
	assert_bytes(out, n, "6145014201ff7b2266223a5b5d2c2276223a7b7d7d");
	ck_assert_int_eq(pcoap_build_describe_reply(out, sizeof(out), &n,
						    PCOAP_CON, 0x0142, 0x01,
						    json, strlen(json)),
			 PCOAP_OK);
	assert_bytes(out, n, "4145014201ff7b2266223a5b5d2c2276223a7b7d7d");
	ck_assert_int_eq(pcoap_build_describe_post(out, sizeof(out), &n, 0x1234,
						   3, json, strlen(json)),
			 PCOAP_OK);
	assert_bytes(out, n,
		     "40021234b1644103ff7b2266223a5b5d2c2276223a7b7d7d");
}
END_TEST

START_TEST(test_pcoap_build_event_bytes)
{
	static const char name[] = "spark/hardware/max_binary";
	uint8_t out[64];
	size_t n;

	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_NON,
					   0x1234, true, "temp", 4, 60,
					   (const uint8_t *)"23", 2),
			 PCOAP_OK);
	assert_bytes(out, n, "50021234b1450474656d70ff3233");
	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_NON,
					   0x1234, true, "temp", 4, 120,
					   (const uint8_t *)"23", 2),
			 PCOAP_OK);
	assert_bytes(out, n, "50021234b1450474656d7033000078ff3233");
	/* Recorded: the name with slashes is ONE Uri-Path option. */
	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_NON,
					   0x858c, true, name, strlen(name), 60,
					   (const uint8_t *)"102400", 6),
			 PCOAP_OK);
	assert_bytes(out, n,
		     "5002858cb1450d0c737061726b2f68617264776172652f"
		     "6d61785f62696e617279ff313032343030");
	/* Public, CON, no data. */
	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_CON,
					   0x1234, false, "a", 1, 60, NULL, 0),
			 PCOAP_OK);
	assert_bytes(out, n,
		     "40021234b16501"
		     "61");
	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_NON,
					   0x1234, false, "a", 1, 0x1000000,
					   NULL, 0),
			 PCOAP_TOO_BIG);
	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_NON,
					   0x1234, false, "", 0, 60, NULL, 0),
			 PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_build_event(out, sizeof(out), &n, PCOAP_ACK,
					   0x1234, false, "a", 1, 60, NULL, 0),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_build_subscribe_bytes)
{
	uint8_t out[64];
	size_t n;

	ck_assert_int_eq(pcoap_build_subscribe(out, sizeof(out), &n, 0x1234,
					       "spark", 5, PCOAP_SCOPE_MINE,
					       NULL, 0),
			 PCOAP_OK);
	assert_bytes(out, n, "40011234b16505737061726b4175");
	ck_assert_int_eq(pcoap_build_subscribe(out, sizeof(out), &n, 0x46cd,
					       "vdev/cmd", 8, PCOAP_SCOPE_ALL,
					       NULL, 0),
			 PCOAP_OK);
	assert_bytes(out, n, "400146cdb16508766465762f636d64");
	ck_assert_int_eq(pcoap_build_subscribe(out, sizeof(out), &n, 0x1234,
					       "x", 1, PCOAP_SCOPE_DEVICE,
					       "0123456789abcdef01234567", 24),
			 PCOAP_OK);
	assert_bytes(out, n,
		     "40011234b1650178ff"
		     "303132333435363738396162636465663031323334353637");
	ck_assert_int_eq(pcoap_build_subscribe(out, sizeof(out), &n, 0x1234,
					       "x", 1, PCOAP_SCOPE_DEVICE, NULL,
					       0),
			 PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_build_subscribe(out, sizeof(out), &n, 0x1234,
					       "x", 1, 7, NULL, 0),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_build_time_bytes)
{
	uint8_t out[32];
	size_t n;

	ck_assert_int_eq(pcoap_build_time(out, sizeof(out), &n, 0x1234, 0x07),
			 PCOAP_OK);
	assert_bytes(out, n, "4101123407b174");
	/* Recorded time reply. */
	ck_assert_int_eq(pcoap_build_time_reply(out, sizeof(out), &n, 0x858f,
						0x01, 0x6b04929e),
			 PCOAP_OK);
	assert_bytes(out, n, "6145858f01ff6b04929e");
}
END_TEST

START_TEST(test_pcoap_build_signal_bytes)
{
	uint8_t out[32];
	size_t n;

	ck_assert_int_eq(
		pcoap_build_signal(out, sizeof(out), &n, 0x1234, 0x07, true),
		PCOAP_OK);
	assert_bytes(out, n, "4103123407b1734101");
	ck_assert_int_eq(
		pcoap_build_signal(out, sizeof(out), &n, 0x1234, 0x07, false),
		PCOAP_OK);
	assert_bytes(out, n, "4103123407b1734100");
	ck_assert_int_eq(pcoap_build_reply(out, sizeof(out), &n, PCOAP_ACK,
					   PCOAP_CODE_CHANGED, 0x1234,
					   (const uint8_t *)"\x07", 1, NULL, 0),
			 PCOAP_OK);
	assert_bytes(out, n, "6144123407");
}
END_TEST

START_TEST(test_pcoap_build_ota_bytes)
{
	struct pcoap_update_begin ub = {.flags = PCOAP_UPDATE_F_FAST,
					.chunk_size = 512,
					.file_size = 20000,
					.store = 0,
					.address = 0};
	static const uint16_t missed[] = {3, 7};
	uint8_t out[700], data[512];
	size_t n;

	ck_assert_int_eq(pcoap_build_update_begin(out, sizeof(out), &n, 0x1234,
						  0x07, &ub),
			 PCOAP_OK);
	ck_assert_uint_eq(n, 20);
	assert_bytes(out, n, "4102123407b175ff01020000004e200000000000");
	ck_assert_int_eq(
		pcoap_build_update_ready(out, sizeof(out), &n, 0x1235, 0x07, 1),
		PCOAP_OK);
	assert_bytes(out, n, "5144123507ff01");

	memset(data, 0xa5, sizeof(data));
	ck_assert_int_eq(pcoap_build_chunk(out, sizeof(out), &n, 0x1234, 0x07,
					   0xc3c2c1c0, 3, data, sizeof(data)),
			 PCOAP_OK);
	ck_assert_uint_eq(n, 16 + 512);
	assert_bytes(out, 16, "4102123407b16344c3c2c1c0020003ff");
	ck_assert_mem_eq(out + 16, data, 512);
	ck_assert_uint_le(n, PCOAP_DEVICE_RX_MAX);
	/* Normal mode: no index option. */
	ck_assert_int_eq(pcoap_build_chunk(out, sizeof(out), &n, 0x1234, 0x07,
					   0xc3c2c1c0, -1, data, 2),
			 PCOAP_OK);
	assert_bytes(out, n, "4102123407b16344c3c2c1c0ffa5a5");
	ck_assert_int_eq(pcoap_build_chunk(out, sizeof(out), &n, 0x1234, 0x07,
					   0, 65536, data, 2),
			 PCOAP_TOO_BIG);
	ck_assert_int_eq(pcoap_build_chunk_received(out, sizeof(out), &n,
						    0x1235, 0x07, true),
			 PCOAP_OK);
	assert_bytes(out, n, "5144123507");
	ck_assert_int_eq(pcoap_build_chunk_received(out, sizeof(out), &n,
						    0x1235, 0x07, false),
			 PCOAP_OK);
	assert_bytes(out, n, "5180123507");

	ck_assert_int_eq(pcoap_build_chunk_missed(out, sizeof(out), &n,
						  PCOAP_CON, 0x1234, missed, 2),
			 PCOAP_OK);
	assert_bytes(out, n, "40011234b163ff00030007");
	ck_assert_int_eq(pcoap_build_chunk_missed(out, sizeof(out), &n,
						  PCOAP_CON, 0x1234, missed, 0),
			 PCOAP_MALFORMED);

	ck_assert_int_eq(
		pcoap_build_update_done(out, sizeof(out), &n, PCOAP_CON, 0x1234,
					(const uint8_t *)"\x07", 1, NULL, 0),
		PCOAP_OK);
	assert_bytes(out, n, "4103123407b175");
	ck_assert_int_eq(pcoap_build_update_done(out, sizeof(out), &n,
						 PCOAP_NON, 0x1234, NULL, 0,
						 (const uint8_t *)"{}", 2),
			 PCOAP_OK);
	assert_bytes(out, n, "50031234b175ff7b7d");
}
END_TEST

START_TEST(test_pcoap_build_reply_invalid)
{
	uint8_t out[32], tok[9] = {0};
	size_t n = 5;

	ck_assert_int_eq(pcoap_build_reply(out, sizeof(out), &n, PCOAP_ACK,
					   PCOAP_CODE_GET, 1, NULL, 0, NULL, 0),
			 PCOAP_MALFORMED);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(pcoap_build_reply(out, sizeof(out), &n, PCOAP_RST,
					   PCOAP_CODE_CHANGED, 1, NULL, 0, NULL,
					   0),
			 PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_build_reply(out, sizeof(out), &n, PCOAP_ACK,
					   PCOAP_CODE_CHANGED, 1, tok, 9, NULL,
					   0),
			 PCOAP_TOO_BIG);
	ck_assert_int_eq(pcoap_build_reply(out, sizeof(out), &n, PCOAP_ACK,
					   PCOAP_CODE_UNAVAILABLE, 0x1234, tok,
					   1, NULL, 0),
			 PCOAP_OK);
	assert_bytes(out, n, "61a3123400");
}
END_TEST

/* Every builder returns NOSPACE for each capacity below its size. */
START_TEST(test_pcoap_build_nospace)
{
	struct pcoap_update_begin ub = {1, 512, 20000, 0, 0};
	struct pcoap_hello h = {.product_id = 6,
				.product_version = 1,
				.flags = 2,
				.platform_id = 6};
	static const uint16_t missed[] = {1, 2, 3};
	uint8_t *out;
	size_t need, cap, n, k;
	int r;

	for (k = 0; k < 12; k++) {
		for (cap = 0;; cap++) {
			out = malloc(cap > 0 ? cap : 1);
			switch (k) {
			case 0:
				r = pcoap_build_hello(out, cap, &n, 1, &h);
				break;
			case 1:
				r = pcoap_build_function_call(
					out, cap, &n, 1, 2, "fn", 2, "arg", 3);
				break;
			case 2:
				r = pcoap_build_event(out, cap, &n, PCOAP_NON,
						      1, true, "ev", 2, 120,
						      (const uint8_t *)"d", 1);
				break;
			case 3:
				r = pcoap_build_update_begin(out, cap, &n, 1, 2,
							     &ub);
				break;
			case 4:
				r = pcoap_build_chunk(out, cap, &n, 1, 2, 3, 4,
						      (const uint8_t *)"abc",
						      3);
				break;
			case 5:
				r = pcoap_build_chunk_missed(
					out, cap, &n, PCOAP_NON, 1, missed, 3);
				break;
			case 6:
				r = pcoap_build_time_reply(out, cap, &n, 1, 2,
							   3);
				break;
			case 7:
				r = pcoap_build_subscribe(
					out, cap, &n, 1, "spark", 5,
					PCOAP_SCOPE_MINE, NULL, 0);
				break;
			case 8:
				r = pcoap_build_describe_post(out, cap, &n, 1,
							      3, "{}", 2);
				break;
			case 9:
				r = pcoap_build_signal(out, cap, &n, 1, 2,
						       true);
				break;
			case 10:
				r = pcoap_build_update_done(
					out, cap, &n, PCOAP_CON, 1,
					(const uint8_t *)"t", 1, NULL, 0);
				break;
			default:
				r = pcoap_build_ping(out, cap, &n, 1);
				break;
			}
			free(out);
			if (r == PCOAP_OK)
				break;
			ck_assert_msg(r == PCOAP_NOSPACE, "builder %zu: %d", k,
				      r);
			ck_assert_uint_eq(n, 0);
		}
		need = cap;
		ck_assert_uint_eq(n, need);
	}
}
END_TEST

/* ---------------------------------------------------------------- */
/* Values and CRC.                                                    */

START_TEST(test_pcoap_value_codecs)
{
	uint8_t b[8];
	size_t n;
	int32_t i;
	double d;
	bool v;

	ck_assert_int_eq(pcoap_value_encode_bool(true, b, 1, &n), PCOAP_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(b[0], 1);
	ck_assert_int_eq(pcoap_value_decode_bool(b, 1, &v), PCOAP_OK);
	ck_assert(v);
	ck_assert_int_eq(pcoap_value_decode_bool(b, 2, &v), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_value_encode_bool(true, b, 0, &n),
			 PCOAP_NOSPACE);

	ck_assert_int_eq(pcoap_value_encode_int32(-5, b, 4, &n), PCOAP_OK);
	ck_assert_mem_eq(b, "\xff\xff\xff\xfb", 4);
	ck_assert_int_eq(pcoap_value_decode_int32(b, 4, &i), PCOAP_OK);
	ck_assert_int_eq(i, -5);
	ck_assert_int_eq(pcoap_value_decode_int32(b, 3, &i), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_value_encode_int32(1, b, 3, &n), PCOAP_NOSPACE);

	/* Recorded: ratio = 0.5 as 00 00 00 00 00 00 e0 3f. */
	ck_assert_int_eq(
		pcoap_value_decode_double(
			(const uint8_t *)"\0\0\0\0\0\0\xe0\x3f", 8, &d),
		PCOAP_OK);
	ck_assert_double_eq(d, 0.5);
	ck_assert_int_eq(pcoap_value_encode_double(-1234.5, b, 8, &n),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_value_decode_double(b, 8, &d), PCOAP_OK);
	ck_assert_double_eq(d, -1234.5);
	ck_assert_int_eq(pcoap_value_decode_double(b, 4, &d), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_value_encode_double(1, b, 7, &n), PCOAP_NOSPACE);
}
END_TEST

START_TEST(test_pcoap_crc32_known)
{
	const uint8_t *s = (const uint8_t *)"123456789";

	ck_assert_uint_eq(pcoap_crc32(0, s, 9), 0xcbf43926);
	ck_assert_uint_eq(pcoap_crc32(pcoap_crc32(0, s, 4), s + 4, 5),
			  0xcbf43926);
	ck_assert_uint_eq(pcoap_crc32(0, NULL, 0), 0);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Parsers and the classifier.                                        */

START_TEST(test_pcoap_particle_kind_vectors)
{
	static const struct {
		const char *hex;
		int kind;
	} t[] = {
		{"40001234", PCOAP_KIND_PING},
		{"60001234", PCOAP_KIND_EMPTY_ACK},
		{"70001234", PCOAP_KIND_RST},
		{"6145858f01ff6b04929e", PCOAP_KIND_ACK},
		{"5144859002ff00000000", PCOAP_KIND_RESPONSE},
		{"5002858bb168ff0003ffff00000003", PCOAP_KIND_HELLO},
		{"50020141b168", PCOAP_KIND_HELLO},
		{"4101014201b164", PCOAP_KIND_DESCRIBE},
		{"40021234b1644103ff7b7d", PCOAP_KIND_DESCRIBE_POST},
		{"4102014302b1660a616e616c6f6772656164424130",
		 PCOAP_KIND_FUNCTION_CALL},
		{"4101b58102b17607636f756e746572", PCOAP_KIND_VARIABLE},
		{"500246d1b1450c766465762f636f756e746572ff31",
		 PCOAP_KIND_EVENT},
		{"50021234b1450474656d70ff3233", PCOAP_KIND_EVENT},
		{"400146ceb16509766465762f6d696e654175", PCOAP_KIND_SUBSCRIBE},
		{"410146cc01b174", PCOAP_KIND_TIME},
		{"4103123407b1734101", PCOAP_KIND_SIGNAL},
		{"4103123407b16b", PCOAP_KIND_KEY_CHANGE},
		{"4102123407b175ff01020000004e200000000000",
		 PCOAP_KIND_UPDATE_BEGIN},
		{"4102123407b173ff01020000004e200000000000",
		 PCOAP_KIND_SAVE_BEGIN},
		{"4102123407b16344c3c2c1c0020003ffaa", PCOAP_KIND_CHUNK},
		{"40011234b163ff00030007", PCOAP_KIND_CHUNK_MISSED},
		{"4103123407b175", PCOAP_KIND_UPDATE_DONE},
		{"50021234b178d0eaff0102", PCOAP_KIND_GOODBYE},
		/* Not one-letter first Uri-Path, or no Uri-Path at all. */
		{"4101123407b2666f", PCOAP_KIND_UNKNOWN},
		{"4101123407", PCOAP_KIND_UNKNOWN},
		{"41011234073174b174", PCOAP_KIND_UNKNOWN},
		{"4101123407b17a", PCOAP_KIND_UNKNOWN},
		{"5100123407", PCOAP_KIND_UNKNOWN},
		{"4100123401", PCOAP_KIND_UNKNOWN},
		{"6101123407b174", PCOAP_KIND_UNKNOWN},
		{"40041234b174", PCOAP_KIND_UNKNOWN},
		{"40201234", PCOAP_KIND_UNKNOWN},
	};
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		decode_hex(t[i].hex, buf, &m);
		ck_assert_msg(pcoap_particle_kind(&m) == t[i].kind,
			      "%s: got %s want %s", t[i].hex,
			      pcoap_kind_str(pcoap_particle_kind(&m)),
			      pcoap_kind_str(t[i].kind));
	}
	ck_assert_str_eq(pcoap_kind_str(PCOAP_KIND_FUNCTION_CALL),
			 "function_call");
	ck_assert_str_eq(pcoap_kind_str(-1), "unknown");
}
END_TEST

START_TEST(test_pcoap_parse_hello_lengths)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	struct pcoap_hello h;

	decode_hex("5002858bb168ff0003ffff00000003", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 8);
	ck_assert_uint_eq(h.product_id, 3);
	ck_assert_uint_eq(h.product_version, 0xffff);
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_uint_eq(h.platform_id, 3);

	decode_hex("50020141b168", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 0);
	ck_assert_uint_eq(h.product_id, 0xffff);
	ck_assert_uint_eq(h.platform_id, 0xffff);

	decode_hex("50021234b168ff000500070001", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 6);
	ck_assert_uint_eq(h.product_id, 5);
	ck_assert_uint_eq(h.product_version, 7);
	ck_assert_uint_eq(h.flags, 1);
	ck_assert_uint_eq(h.platform_id, 0xffff);

	decode_hex("40021234b168ff000c0001000300"
		   "0c000c"
		   "0123456789abcdef01234567",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 22);
	ck_assert_uint_eq(h.platform_id, 12);
	ck_assert_uint_eq(h.flags, 3);
	ck_assert_uint_eq(h.device_id.len, 12);
	ck_assert_uint_eq(h.device_id.p[0], 0x01);

	decode_hex("50021234b168ff00030004000000", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);
	decode_hex("50021234b164", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);
}
END_TEST

/*
 * Every Hello generation of protocol.md §2.4: 20 bytes (Device OS 3.0+
 * over TCP), 32 (over DTLS), an extended Hello with bytes we do not know
 * yet after it; and cut or oversized ones.
 */
START_TEST(test_pcoap_parse_hello_extended)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	struct pcoap_hello h, b;
	size_t n;

	/* A 5.1.0 device over TCP: flags 0x36, platform 3, no ID, system
	   5100, messages up to 1024, binaries up to 0x000e0000, chunks 512. */
	decode_hex("50021234b168ff"
		   "0003ffff00360003"
		   "0000"
		   "13ec0400000e00000200",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 20);
	ck_assert(h.extended);
	ck_assert_uint_eq(h.flags, 0x36);
	ck_assert_uint_eq(h.platform_id, 3);
	ck_assert_uint_eq(h.device_id.len, 0);
	ck_assert_uint_eq(h.system_version, 5100);
	ck_assert_uint_eq(h.max_message_size, 1024);
	ck_assert_uint_eq(h.max_binary_size, 0xe0000);
	ck_assert_uint_eq(h.ota_chunk_size, 512);

	/* The same over DTLS: a 12-byte ID first (32 bytes). */
	decode_hex("40021234b168ff"
		   "0003ffff00360003"
		   "000c0123456789abcdef01234567"
		   "13ec0400000e00000200",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 32);
	ck_assert(h.extended);
	ck_assert_uint_eq(h.device_id.len, 12);
	ck_assert_uint_eq(h.device_id.p[11], 0x67);
	ck_assert_uint_eq(h.system_version, 5100);
	ck_assert_uint_eq(h.ota_chunk_size, 512);

	/* A later Device OS with 4 more bytes: they are ignored. */
	decode_hex("50021234b168ff"
		   "0003ffff00360003"
		   "0000"
		   "13ec0400000e00000200deadbeef",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 24);
	ck_assert_uint_eq(h.system_version, 5100);
	ck_assert_uint_eq(h.ota_chunk_size, 512);

	/* Cut: the extended fields incomplete (19 bytes), the ID longer
	   than what follows (12 claimed, 25 bytes), an ID of another
	   length, a 9-byte and a 3-byte payload. */
	decode_hex("50021234b168ff0003ffff003600030000"
		   "13ec0400000e000002",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);
	decode_hex("50021234b168ff0003ffff00360003000c"
		   "0123456789abcdef0123456713ec040000",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);
	decode_hex("50021234b168ff0003ffff00360003000a"
		   "0123456789abcdef012313ec0400000e00000200",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);
	decode_hex("50021234b168ff0003ffff0036000300", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);
	decode_hex("50021234b168ff000300", buf, &m);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);

	/* Oversized: over PCOAP_HELLO_LEN_MAX. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "\x50\x02\x12\x34\xb1\x68\xff", 7);
	n = 7 + PCOAP_HELLO_LEN_MAX + 1;
	ck_assert_int_eq(pcoap_msg_decode(buf, n, &m), PCOAP_OK);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_MALFORMED);

	/* The builder writes what the parser reads. */
	memset(&b, 0, sizeof(b));
	b.product_id = 3;
	b.product_version = 0xffff;
	b.flags = PCOAP_HELLO_F_GOODBYE | PCOAP_HELLO_F_DEVICE_DESCRIBE;
	b.platform_id = 3;
	b.extended = true;
	b.system_version = 3005;
	b.max_message_size = 767;
	b.max_binary_size = 262144;
	b.ota_chunk_size = 512;
	ck_assert_int_eq(pcoap_build_hello(buf, sizeof(buf), &n, 7, &b),
			 PCOAP_OK);
	ck_assert_uint_eq(n, 7 + 20);
	ck_assert_int_eq(pcoap_msg_decode(buf, n, &m), PCOAP_OK);
	ck_assert_int_eq(pcoap_parse_hello(&m, &h), PCOAP_OK);
	ck_assert(h.extended);
	ck_assert_uint_eq(h.flags, 0x30);
	ck_assert_uint_eq(h.system_version, 3005);
	ck_assert_uint_eq(h.max_message_size, 767);
	ck_assert_uint_eq(h.max_binary_size, 262144);
	ck_assert_uint_eq(h.ota_chunk_size, 512);
}
END_TEST

START_TEST(test_pcoap_parse_function_call_fields)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	struct pcoap_call c;

	decode_hex("4102014302b1660a616e616c6f6772656164424130", buf, &m);
	ck_assert_int_eq(pcoap_parse_function_call(&m, &c), PCOAP_OK);
	ck_assert_uint_eq(c.token, 0x02);
	ck_assert_uint_eq(c.name.len, 10);
	ck_assert_mem_eq(c.name.p, "analogread", 10);
	ck_assert_uint_eq(c.arg.len, 2);
	ck_assert_mem_eq(c.arg.p, "A0", 2);

	decode_hex("4102123407b166036c656440", buf, &m);
	ck_assert_int_eq(pcoap_parse_function_call(&m, &c), PCOAP_OK);
	ck_assert_uint_eq(c.arg.len, 0);

	/* Token length other than 1, no name, wrong kind. */
	decode_hex("40021234b166036c656440", buf, &m);
	ck_assert_int_eq(pcoap_parse_function_call(&m, &c), PCOAP_MALFORMED);
	decode_hex("420212340707b166036c656440", buf, &m);
	ck_assert_int_eq(pcoap_parse_function_call(&m, &c), PCOAP_MALFORMED);
	decode_hex("4102123407b16640", buf, &m);
	ck_assert_int_eq(pcoap_parse_function_call(&m, &c), PCOAP_MALFORMED);
	decode_hex("4101b58102b17607636f756e746572", buf, &m);
	ck_assert_int_eq(pcoap_parse_function_call(&m, &c), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_parse_variable(&m, &c), PCOAP_OK);
	ck_assert_uint_eq(c.token, 0x02);
	ck_assert_mem_eq(c.name.p, "counter", 7);
	ck_assert_uint_eq(c.arg.len, 0);
}
END_TEST

START_TEST(test_pcoap_parse_event_fields)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	struct pcoap_event ev;
	char name[65];

	/* Recorded server event: name split, Max-Age 60 as 4 bytes. */
	decode_hex("5002b585b165047664657603636d64340000003cff70756233", buf,
		   &m);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert(!ev.is_private);
	ck_assert_str_eq(name, "vdev/cmd");
	ck_assert_uint_eq(ev.name_len, 8);
	ck_assert_uint_eq(ev.ttl, 60);
	ck_assert_uint_eq(ev.data.len, 4);
	ck_assert_mem_eq(ev.data.p, "pub3", 4);
	/* Exactly one byte too small for the NUL. */
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, 8), PCOAP_NOSPACE);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, 9), PCOAP_OK);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, NULL, 0), PCOAP_NOSPACE);

	decode_hex("500246d0b1450a766465762f7265706c79ff676f7420766465762f636d"
		   "643d70756233",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert(ev.is_private);
	ck_assert_str_eq(name, "vdev/reply");
	ck_assert_uint_eq(ev.data.len, 17);

	decode_hex("50021234b1450474656d7033000078ff3233", buf, &m);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert_uint_eq(ev.ttl, 120);
	/* Max-Age 0 means 60; empty Max-Age too; 5 bytes is malformed. */
	decode_hex("50021234b1450474656d7030", buf, &m);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert_uint_eq(ev.ttl, 60);
	ck_assert_uint_eq(ev.data.len, 0);
	decode_hex("50021234b1450474656d70350000000001", buf, &m);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, sizeof(name)),
			 PCOAP_MALFORMED);
	/* No name. */
	decode_hex("50021234b145ff3233", buf, &m);
	ck_assert_int_eq(pcoap_parse_event(&m, &ev, name, sizeof(name)),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_parse_subscribe_fields)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	struct pcoap_subscribe s;
	char f[64];

	decode_hex("400146ceb16509766465762f6d696e654175", buf, &m);
	ck_assert_int_eq(pcoap_parse_subscribe(&m, &s, f, sizeof(f)), PCOAP_OK);
	ck_assert_str_eq(f, "vdev/mine");
	ck_assert_int_eq(s.scope, PCOAP_SCOPE_MINE);
	decode_hex("400146cdb16508766465762f636d64", buf, &m);
	ck_assert_int_eq(pcoap_parse_subscribe(&m, &s, f, sizeof(f)), PCOAP_OK);
	ck_assert_str_eq(f, "vdev/cmd");
	ck_assert_int_eq(s.scope, PCOAP_SCOPE_ALL);
	decode_hex("40011234b1650178ff"
		   "303132333435363738396162636465663031323334353637",
		   buf, &m);
	ck_assert_int_eq(pcoap_parse_subscribe(&m, &s, f, sizeof(f)), PCOAP_OK);
	ck_assert_int_eq(s.scope, PCOAP_SCOPE_DEVICE);
	ck_assert_uint_eq(s.device_id.len, 24);
	decode_hex("40011234b165", buf, &m);
	ck_assert_int_eq(pcoap_parse_subscribe(&m, &s, f, sizeof(f)), PCOAP_OK);
	ck_assert_str_eq(f, "");
	decode_hex("40011234b165417a", buf, &m);
	ck_assert_int_eq(pcoap_parse_subscribe(&m, &s, f, sizeof(f)),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_parse_misc_fields)
{
	uint8_t buf[BUF_MAX], tok, flags;
	struct pcoap_msg m;
	struct pcoap_view v;
	uint32_t t;
	bool on;

	decode_hex("4101123407b1644102", buf, &m);
	ck_assert_int_eq(pcoap_parse_describe(&m, &tok, &flags), PCOAP_OK);
	ck_assert_uint_eq(tok, 7);
	ck_assert_uint_eq(flags, PCOAP_DESCRIBE_APP);
	decode_hex("4101014201b164", buf, &m);
	ck_assert_int_eq(pcoap_parse_describe(&m, &tok, &flags), PCOAP_OK);
	ck_assert_uint_eq(flags, 0);
	decode_hex("4101123407b164420102", buf, &m);
	ck_assert_int_eq(pcoap_parse_describe(&m, &tok, &flags),
			 PCOAP_MALFORMED);

	decode_hex("40021234b1644103ff7b7d", buf, &m);
	ck_assert_int_eq(pcoap_parse_describe_post(&m, &flags, &v), PCOAP_OK);
	ck_assert_uint_eq(flags, 3);
	ck_assert_uint_eq(v.len, 2);

	decode_hex("614546cc01ff6b04920e", buf, &m);
	ck_assert_int_eq(pcoap_parse_time_reply(&m, &t), PCOAP_OK);
	ck_assert_uint_eq(t, 0x6b04920e);
	decode_hex("614546cc01ff6b0492", buf, &m);
	ck_assert_int_eq(pcoap_parse_time_reply(&m, &t), PCOAP_MALFORMED);

	decode_hex("4103123407b1734101", buf, &m);
	ck_assert_int_eq(pcoap_parse_signal(&m, &tok, &on), PCOAP_OK);
	ck_assert(on);
	decode_hex("4103123407b173", buf, &m);
	ck_assert_int_eq(pcoap_parse_signal(&m, &tok, &on), PCOAP_MALFORMED);

	decode_hex("5144123507ff01", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_ready(&m, &flags), PCOAP_OK);
	ck_assert_uint_eq(flags, 1);
	decode_hex("5145123507ff01", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_ready(&m, &flags), PCOAP_MALFORMED);

	decode_hex("4103123407b175", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_done(&m, &v), PCOAP_OK);
	ck_assert_uint_eq(v.len, 0);
	decode_hex("50031234b175ff7b7d", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_done(&m, &v), PCOAP_OK);
	ck_assert_uint_eq(v.len, 2);
	decode_hex("40031234b175", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_done(&m, &v), PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_parse_ota_fields)
{
	uint8_t buf[BUF_MAX], tok;
	struct pcoap_msg m;
	struct pcoap_update_begin ub;
	struct pcoap_chunk c;
	uint16_t idx[4];
	size_t n;

	decode_hex("4102123407b175ff01020000004e200000000000", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_begin(&m, &tok, &ub), PCOAP_OK);
	ck_assert_uint_eq(tok, 7);
	ck_assert_uint_eq(ub.flags, 1);
	ck_assert_uint_eq(ub.chunk_size, 512);
	ck_assert_uint_eq(ub.file_size, 20000);
	ck_assert_uint_eq(ub.store, 0);
	ck_assert_uint_eq(ub.address, 0);
	decode_hex("4102123407b175", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_begin(&m, &tok, &ub), PCOAP_OK);
	ck_assert_uint_eq(ub.chunk_size, PCOAP_CHUNK_SIZE_DEFAULT);
	decode_hex("4102123407b173ff0101000000100080000000ff", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_begin(&m, &tok, &ub), PCOAP_OK);
	ck_assert_uint_eq(ub.chunk_size, 256);
	ck_assert_uint_eq(ub.file_size, 4096);
	ck_assert_uint_eq(ub.store, 128);
	ck_assert_uint_eq(ub.address, 255);
	decode_hex("4102123407b175ff0102", buf, &m);
	ck_assert_int_eq(pcoap_parse_update_begin(&m, &tok, &ub),
			 PCOAP_MALFORMED);

	decode_hex("4102123407b16344c3c2c1c0020003ffdeadbeef", buf, &m);
	ck_assert_int_eq(pcoap_parse_chunk(&m, &c), PCOAP_OK);
	ck_assert_uint_eq(c.token, 7);
	ck_assert_uint_eq(c.crc, 0xc3c2c1c0);
	ck_assert(c.has_index);
	ck_assert_uint_eq(c.index, 3);
	ck_assert_uint_eq(c.data.len, 4);
	decode_hex("4102123407b16344c3c2c1c0ffdeadbeef", buf, &m);
	ck_assert_int_eq(pcoap_parse_chunk(&m, &c), PCOAP_OK);
	ck_assert(!c.has_index);
	decode_hex("4102123407b16343c3c2c1ffdeadbeef", buf, &m);
	ck_assert_int_eq(pcoap_parse_chunk(&m, &c), PCOAP_MALFORMED);
	decode_hex("4102123407b16344c3c2c1c00101ffdeadbeef", buf, &m);
	ck_assert_int_eq(pcoap_parse_chunk(&m, &c), PCOAP_MALFORMED);

	decode_hex("40011234b163ff00030007", buf, &m);
	ck_assert_int_eq(pcoap_parse_chunk_missed(&m, idx, 4, &n), PCOAP_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(idx[0], 3);
	ck_assert_uint_eq(idx[1], 7);
	ck_assert_int_eq(pcoap_parse_chunk_missed(&m, idx, 1, &n),
			 PCOAP_NOSPACE);
	decode_hex("40011234b163ff000300", buf, &m);
	ck_assert_int_eq(pcoap_parse_chunk_missed(&m, idx, 4, &n),
			 PCOAP_MALFORMED);
}
END_TEST

START_TEST(test_pcoap_goodbye_and_key_change)
{
	struct pcoap_goodbye g = {.flags = PCOAP_GOODBYE_F_CLOUD,
				  .cloud_reason = 2};
	uint8_t out[64], buf[BUF_MAX], tok, flags;
	struct pcoap_msg m;
	size_t n;

	ck_assert_int_eq(pcoap_build_goodbye(out, sizeof(out), &n, 0x1234, &g),
			 PCOAP_OK);
	assert_bytes(out, n, "50021234b178d0eaff0102");
	g.flags = PCOAP_GOODBYE_F_SLEEP | PCOAP_GOODBYE_F_NETWORK;
	g.sleep_duration = 300;
	g.network_reason = 0xffffffff;
	ck_assert_int_eq(pcoap_build_goodbye(out, sizeof(out), &n, 0x1234, &g),
			 PCOAP_OK);
	assert_bytes(out, n, "50021234b178d0eaff0cac02ffffffff0f");
	ck_assert_int_eq(pcoap_msg_decode(out, n, &m), PCOAP_OK);
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(pcoap_parse_goodbye(&m, &g), PCOAP_OK);
	ck_assert_uint_eq(g.flags, 0x0c);
	ck_assert_uint_eq(g.sleep_duration, 300);
	ck_assert_uint_eq(g.network_reason, 0xffffffff);
	ck_assert_uint_eq(g.cloud_reason, 0);
	g.flags = 0x10;
	ck_assert_int_eq(pcoap_build_goodbye(out, sizeof(out), &n, 1, &g),
			 PCOAP_MALFORMED);

	decode_hex("50021234b178d0ea", buf, &m);
	ck_assert_int_eq(pcoap_parse_goodbye(&m, &g), PCOAP_OK);
	ck_assert_uint_eq(g.flags, 0);
	/* Cut varint, missing field, trailing byte, 33-bit value. */
	decode_hex("50021234b178d0eaff0c80", buf, &m);
	ck_assert_int_eq(pcoap_parse_goodbye(&m, &g), PCOAP_MALFORMED);
	decode_hex("50021234b178d0eaff01", buf, &m);
	ck_assert_int_eq(pcoap_parse_goodbye(&m, &g), PCOAP_MALFORMED);
	decode_hex("50021234b178d0eaff010203", buf, &m);
	ck_assert_int_eq(pcoap_parse_goodbye(&m, &g), PCOAP_MALFORMED);
	decode_hex("50021234b178d0eaff0cffffffff1f00", buf, &m);
	ck_assert_int_eq(pcoap_parse_goodbye(&m, &g), PCOAP_MALFORMED);

	ck_assert_int_eq(
		pcoap_build_key_change(out, sizeof(out), &n, 0x1234, 0x07, 0),
		PCOAP_OK);
	assert_bytes(out, n, "4103123407b16b");
	ck_assert_int_eq(
		pcoap_build_key_change(out, sizeof(out), &n, 0x1234, 0x07, 1),
		PCOAP_OK);
	assert_bytes(out, n, "4103123407b16b4101");
	ck_assert_int_eq(pcoap_msg_decode(out, n, &m), PCOAP_OK);
	ck_assert_int_eq(pcoap_parse_key_change(&m, &tok, &flags), PCOAP_OK);
	ck_assert_uint_eq(tok, 7);
	ck_assert_uint_eq(flags, 1);
	ck_assert_int_eq(pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX),
			 PCOAP_OK);
	decode_hex("40031234b16b", buf, &m);
	ck_assert_int_eq(pcoap_parse_key_change(&m, &tok, &flags),
			 PCOAP_MALFORMED);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Device constraints.                                                */

START_TEST(test_pcoap_check_to_device_recorded)
{
	uint8_t buf[BUF_MAX];
	struct pcoap_msg m;
	size_t i, n;

	/* Every server->device message of the recordings passes. */
	for (i = 0; i < COAP_N_VECTORS; i++) {
		if (strstr(coap_vectors[i].name, " s2d ") == NULL)
			continue;
		n = coap_vec_bytes(&coap_vectors[i], buf, sizeof(buf));
		ck_assert_int_eq(pcoap_msg_decode(buf, n, &m), PCOAP_OK);
		ck_assert_msg(pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX) ==
				      PCOAP_OK,
			      "%s", coap_vectors[i].name);
	}
}
END_TEST

START_TEST(test_pcoap_check_to_device_violations)
{
	static const struct {
		const char *hex;
		int want;
	} t[] = {
		/* Good ones built by the builders. */
		{"4102123407b166036c656440", PCOAP_OK},
		{"4101123407b1760474656d70", PCOAP_OK},
		{"4101123407b1644102", PCOAP_OK},
		{"4103123407b1734101", PCOAP_OK},
		{"4102123407b175ff01020000004e200000000000", PCOAP_OK},
		{"4102123407b16344c3c2c1c0020003ffaa", PCOAP_OK},
		{"4103123407b175", PCOAP_OK},
		{"6145858f01ff6b04929e", PCOAP_OK},
		{"50021234b1450474656d7033000078ff3233", PCOAP_OK},
		{"40001234", PCOAP_OK},
		{"60001234", PCOAP_OK},
		/* Function call without the argument query. */
		{"4102123407b166036c6564", PCOAP_MALFORMED},
		/* Token length 0 and 2 on requests the device answers. */
		{"40011234b1760474656d70", PCOAP_MALFORMED},
		{"420112340707b1760474656d70", PCOAP_MALFORMED},
		/* 2.05 that is not the time reply. */
		{"5145123507ff00000017", PCOAP_MALFORMED},
		{"6145123407ff0000", PCOAP_MALFORMED},
		/* Event with a Uri-Query / two Max-Age options. */
		{"50021234b1450474656d704161ff3233", PCOAP_MALFORMED},
		{"50021234b1450474656d70310a0100ff3233", PCOAP_MALFORMED},
		/* First option not the one-letter Uri-Path. */
		{"4101123407b2666f", PCOAP_MALFORMED},
		/* Device->server kinds. */
		{"410146cc01b174", PCOAP_MALFORMED},
		{"40011234b16505737061726b4175", PCOAP_MALFORMED},
		/* UpdateBegin without the payload; signal without value. */
		{"4102123407b175", PCOAP_MALFORMED},
		{"4103123407b173", PCOAP_MALFORMED},
		/* Chunk with a 3-byte CRC. */
		{"4102123407b16343c3c2c1ffaa", PCOAP_MALFORMED},
	};
	uint8_t buf[BUF_MAX], big[PCOAP_DEVICE_RX_MAX + 1], data[800];
	struct pcoap_msg m;
	size_t i, n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		decode_hex(t[i].hex, buf, &m);
		ck_assert_msg(pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX) ==
				      t[i].want,
			      "%s", t[i].hex);
	}
	/* Largest chunk message that fits, and one byte more. */
	memset(data, 0, sizeof(data));
	ck_assert_int_eq(pcoap_build_chunk(big, sizeof(big), &n, 1, 2, 3, 4,
					   data, PCOAP_DEVICE_RX_MAX - 16),
			 PCOAP_OK);
	ck_assert_uint_eq(n, PCOAP_DEVICE_RX_MAX);
	ck_assert_int_eq(pcoap_msg_decode(big, n, &m), PCOAP_OK);
	ck_assert_int_eq(pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_chunk(big, sizeof(big), &n, 1, 2, 3, 4,
					   data, PCOAP_DEVICE_RX_MAX - 15),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_msg_decode(big, n, &m), PCOAP_OK);
	ck_assert_int_eq(pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX),
			 PCOAP_TOO_BIG);
}
END_TEST

/* Builders' output satisfies the device constraints by construction. */
START_TEST(test_pcoap_check_to_device_builders)
{
	struct pcoap_update_begin ub = {1, 512, 20000, 0, 0};
	uint8_t out[BUF_MAX], data[512] = {0};
	struct pcoap_msg m;
	size_t n, k;
	int r;

	for (k = 0; k < 11; k++) {
		switch (k) {
		case 0:
			r = pcoap_build_hello(out, sizeof(out), &n, 1, NULL);
			break;
		case 1:
			r = pcoap_build_function_call(out, sizeof(out), &n, 1,
						      2, "f", 1, NULL, 0);
			break;
		case 2:
			r = pcoap_build_variable(out, sizeof(out), &n, 1, 2,
						 "v", 1);
			break;
		case 3:
			r = pcoap_build_describe(out, sizeof(out), &n, 1, 2, 3);
			break;
		case 4:
			r = pcoap_build_event(out, sizeof(out), &n, PCOAP_NON,
					      1, false, "spark/device/reset",
					      18, 5, (const uint8_t *)"dfu", 3);
			break;
		case 5:
			r = pcoap_build_time_reply(out, sizeof(out), &n, 1, 2,
						   1700000000);
			break;
		case 6:
			r = pcoap_build_signal(out, sizeof(out), &n, 1, 2,
					       true);
			break;
		case 7:
			r = pcoap_build_update_begin(out, sizeof(out), &n, 1, 2,
						     &ub);
			break;
		case 8:
			r = pcoap_build_chunk(out, sizeof(out), &n, 1, 2, 3, 4,
					      data, sizeof(data));
			break;
		case 9:
			r = pcoap_build_update_done(
				out, sizeof(out), &n, PCOAP_CON, 1,
				(const uint8_t *)"\x02", 1, NULL, 0);
			break;
		default:
			r = pcoap_build_empty_ack(out, sizeof(out), &n, 1);
			break;
		}
		ck_assert_int_eq(r, PCOAP_OK);
		ck_assert_int_eq(pcoap_msg_decode(out, n, &m), PCOAP_OK);
		ck_assert_msg(pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX) ==
				      PCOAP_OK,
			      "builder %zu", k);
	}
}
END_TEST

/* ---------------------------------------------------------------- */
/* Robustness: every parser on mutated vectors.                       */

static void
particle_mutant(const uint8_t *buf, size_t len, void *arg)
{
	struct pcoap_msg m;
	struct pcoap_hello h;
	struct pcoap_call c;
	struct pcoap_event ev;
	struct pcoap_subscribe s;
	struct pcoap_update_begin ub;
	struct pcoap_chunk ch;
	struct pcoap_view v;
	struct pcoap_goodbye gb;
	uint16_t idx[8];
	char name[16];
	uint8_t tok, flags;
	uint32_t t;
	bool on;
	size_t n;
	unsigned *parsed = arg;
	int k, r;

	if (pcoap_msg_decode(buf, len, &m) != PCOAP_OK)
		return;
	k = pcoap_particle_kind(&m);
	ck_assert(k >= PCOAP_KIND_UNKNOWN && k <= PCOAP_KIND_GOODBYE);
	(void)pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX);
	r = pcoap_parse_hello(&m, &h);
	r &= pcoap_parse_function_call(&m, &c);
	r &= pcoap_parse_variable(&m, &c);
	r &= pcoap_parse_describe(&m, &tok, &flags);
	r &= pcoap_parse_describe_post(&m, &flags, &v);
	r &= pcoap_parse_event(&m, &ev, name, sizeof(name));
	if (r == PCOAP_OK && k == PCOAP_KIND_EVENT)
		ck_assert_uint_lt(ev.name_len, sizeof(name));
	r &= pcoap_parse_subscribe(&m, &s, name, sizeof(name));
	r &= pcoap_parse_time_reply(&m, &t);
	r &= pcoap_parse_signal(&m, &tok, &on);
	r &= pcoap_parse_update_begin(&m, &tok, &ub);
	r &= pcoap_parse_update_ready(&m, &flags);
	r &= pcoap_parse_chunk(&m, &ch);
	if (pcoap_parse_chunk(&m, &ch) == PCOAP_OK && ch.data.len > 0)
		ck_assert(ch.data.p + ch.data.len == buf + len);
	r &= pcoap_parse_chunk_missed(&m, idx, 8, &n);
	r &= pcoap_parse_update_done(&m, &v);
	r &= pcoap_parse_key_change(&m, &tok, &flags);
	r &= pcoap_parse_goodbye(&m, &gb);
	if (k != PCOAP_KIND_UNKNOWN)
		(*parsed)++;
	(void)r;
}

START_TEST(test_pcoap_parse_mutate)
{
	uint8_t buf[BUF_MAX];
	size_t i, len;
	unsigned parsed = 0;

	for (i = 0; i < COAP_N_VECTORS; i++) {
		len = coap_vec_bytes(&coap_vectors[i], buf, sizeof(buf));
		mutate_run(buf, len, 5000 + i, 2000, particle_mutant, &parsed);
	}
	ck_assert_uint_gt(parsed, 10000);
}
END_TEST

static Suite *
particle_suite(void)
{
	Suite *s = suite_create("particle");
	TCase *tc;

	tc = tcase_create("build");
	tcase_add_test(tc, test_pcoap_build_ping_bytes);
	tcase_add_test(tc, test_pcoap_build_hello_bytes);
	tcase_add_test(tc, test_pcoap_build_function_call_bytes);
	tcase_add_test(tc, test_pcoap_build_variable_bytes);
	tcase_add_test(tc, test_pcoap_build_describe_bytes);
	tcase_add_test(tc, test_pcoap_build_event_bytes);
	tcase_add_test(tc, test_pcoap_build_subscribe_bytes);
	tcase_add_test(tc, test_pcoap_build_time_bytes);
	tcase_add_test(tc, test_pcoap_build_signal_bytes);
	tcase_add_test(tc, test_pcoap_build_ota_bytes);
	tcase_add_test(tc, test_pcoap_build_reply_invalid);
	tcase_add_test(tc, test_pcoap_build_nospace);
	tcase_add_test(tc, test_pcoap_value_codecs);
	tcase_add_test(tc, test_pcoap_crc32_known);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_pcoap_particle_kind_vectors);
	tcase_add_test(tc, test_pcoap_parse_hello_lengths);
	tcase_add_test(tc, test_pcoap_parse_hello_extended);
	tcase_add_test(tc, test_pcoap_parse_function_call_fields);
	tcase_add_test(tc, test_pcoap_parse_event_fields);
	tcase_add_test(tc, test_pcoap_parse_subscribe_fields);
	tcase_add_test(tc, test_pcoap_parse_misc_fields);
	tcase_add_test(tc, test_pcoap_parse_ota_fields);
	tcase_add_test(tc, test_pcoap_goodbye_and_key_change);
	tcase_add_test(tc, test_pcoap_parse_mutate);
	suite_add_tcase(s, tc);

	tc = tcase_create("constraints");
	tcase_add_test(tc, test_pcoap_check_to_device_recorded);
	tcase_add_test(tc, test_pcoap_check_to_device_violations);
	tcase_add_test(tc, test_pcoap_check_to_device_builders);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(particle_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
