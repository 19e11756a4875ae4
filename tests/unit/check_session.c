/* SPDX-License-Identifier: MIT */
/*
 * Tests for session, what the device sends: the recorded Device OS 0.7.0
 * sessions replayed as plaintext through a recording fake ops table
 * (session_fake.h, no sockets), Hello and describe, the device's own
 * messages (events, subscriptions, message IDs), and mutated input. The
 * server's requests and OTA are check_session_req.c's.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "err.h"
#include "mutate.h"
#include "session.h"
#include "session_fake.h"

/* ---------------------------------------------------------------- */
/* Recorded sessions.                                                 */

START_TEST(test_session_input_tinker_recording)
{
	struct session *s = session_new(&fake_ops, NULL, 321, 0);

	F.unix_time = 0x6b04929e;
	/* D->S NON POST h mid 34187 (0x858b) */
	ck_assert_int_eq(feed_hex(s, "5002858bb168ff" HELLO_PAYLOAD, 0), 0);
	ck_assert_int_eq(F.n_hello, 1);
	ck_assert_uint_eq(F.hello.product_id, 3);
	ck_assert_uint_eq(F.hello.product_version, 0xffff);
	ck_assert_uint_eq(F.hello.platform_id, 3);
	ck_assert_uint_eq(session_hello(s)->platform_id, 3);
	/* S->D NON POST h mid 321, then CON GET d mid 322 token 01 */
	ck_assert_uint_eq(F.n_sent, 2);
	assert_sent_hex(0, "50020141b168");
	assert_sent_hex(1, "4101014201b164");
	ck_assert_int_eq(session_state(s), SESSION_DESCRIBING);

	FEED(s, 0, pcoap_build_event, PCOAP_NON, 34188, true,
	     "spark/hardware/max_binary", 25, 60, (const uint8_t *)"102400", 6);
	ck_assert_int_eq(F.n_events, 1);
	ck_assert_str_eq(F.ev_name, "spark/hardware/max_binary");
	ck_assert_uint_eq(F.ev_len, 6);
	ck_assert_mem_eq(F.ev_data, "102400", 6);
	ck_assert_uint_eq(F.ev_ttl, 60);
	ck_assert(F.ev_private);
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 34189, true,
	     "spark/hardware/ota_chunk_size", 29, 60, (const uint8_t *)"512",
	     3);
	ck_assert_int_eq(F.n_events, 2);
	ck_assert_str_eq(F.ev_name, "spark/hardware/ota_chunk_size");
	/* NON events get no ACK. */
	ck_assert_uint_eq(F.n_sent, 2);

	/* CON GET e spark, no query (firehose with a filter) -> empty ACK */
	ck_assert_int_eq(feed_hex(s, "4001858eb16505737061726b", 0), 0);
	ck_assert_int_eq(F.n_subs, 1);
	ck_assert_str_eq(F.sub_filter, "spark");
	ck_assert_int_eq(F.sub_scope, PCOAP_SCOPE_ALL);
	assert_sent_hex(2, "6000858e");

	/* CON GET t token 01 -> ACK 2.05 same mid and token, 4-byte time */
	ck_assert_int_eq(feed_hex(s, "4101858f01b174", 0), 0);
	assert_sent_hex(3, "6145858f01ff6b04929e");

	/* ACK 2.05 mid 322 token 01 + JSON -> READY with that JSON */
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 322, 1, tinker_json,
	     strlen(tinker_json));
	ck_assert_int_eq(session_state(s), SESSION_READY);
	ck_assert_int_eq(F.n_ready, 1);
	ck_assert_int_eq(F.n_describe, 1);
	ck_assert_uint_eq(F.describe_len, 83);
	ck_assert_mem_eq(F.describe, tinker_json, 83);

	/* The recorded call: CON POST f mid 323 token 02 analogread A0 */
	ck_assert_int_eq(
		session_request_function(s, 77, "analogread", "A0", 10, 30000),
		0);
	assert_sent_hex(4, "4102014302b1660a616e616c6f6772656164424130");
	ck_assert_int_eq(feed_hex(s, "60000143", 20), 0);
	ck_assert_uint_eq(F.n_done, 0);
	/* NON 2.04 mid 34192 token 02, int32 0 */
	ck_assert_int_eq(feed_hex(s, "5144859002ff00000000", 30), 0);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_uint_eq(F.done[0].req_id, 77);
	ck_assert_int_eq(F.done[0].kind, SESSION_REQ_FUNCTION);
	ck_assert_int_eq(F.done[0].status, 0);
	ck_assert_int_eq(F.done[0].int_value, 0);
	ck_assert_uint_eq(F.done[0].code, PCOAP_CODE_CHANGED);

	ck_assert_int_eq(F.n_close, 0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 0);
	ck_assert_uint_eq(session_stats(s)->msgs_in, 8);
	ck_assert_uint_eq(session_stats(s)->msgs_out, 5);
	/* Only the settle re-describe is left, due 300 ms after ready. */
	ck_assert_int_eq(session_tick(s, 40), SESSION_SETTLE_QUIET_MS - 40);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_testapp_recording)
{
	struct session *s = session_new(&fake_ops, NULL, 46463, 0);
	uint16_t mid;
	int i;

	F.unix_time = 0x6b04920e;
	/* Hello mid 18120 (0x46c8) */
	ck_assert_int_eq(feed_hex(s, "500246c8b168ff" HELLO_PAYLOAD, 0), 0);
	assert_sent_hex(0, "5002b57fb168");   /* NON POST h mid 46463 */
	assert_sent_hex(1, "4101b58001b164"); /* CON GET d mid 46464 tok 1 */
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 18121, true,
	     "spark/hardware/max_binary", 25, 60, (const uint8_t *)"102400", 6);
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 18122, true,
	     "spark/hardware/ota_chunk_size", 29, 60, (const uint8_t *)"512",
	     3);
	FEED(s, 0, pcoap_build_subscribe, 18123, "spark", 5, PCOAP_SCOPE_ALL,
	     NULL, 0);
	assert_sent_hex(2, "600046cb");
	ck_assert_int_eq(feed_hex(s, "410146cc01b174", 0), 0);
	assert_sent_hex(3, "614546cc01ff6b04920e");
	FEED(s, 0, pcoap_build_subscribe, 18125, "vdev/cmd", 8, PCOAP_SCOPE_ALL,
	     NULL, 0);
	ck_assert_str_eq(F.sub_filter, "vdev/cmd");
	ck_assert_int_eq(F.sub_scope, PCOAP_SCOPE_ALL);
	assert_sent_hex(4, "600046cd");
	/* CON GET e vdev/mine ?u */
	FEED(s, 0, pcoap_build_subscribe, 18126, "vdev/mine", 9,
	     PCOAP_SCOPE_MINE, NULL, 0);
	ck_assert_str_eq(F.sub_filter, "vdev/mine");
	ck_assert_int_eq(F.sub_scope, PCOAP_SCOPE_MINE);
	assert_sent_hex(5, "600046ce");
	ck_assert_int_eq(F.n_subs, 3);

	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 46464, 1,
	     testapp_json, strlen(testapp_json));
	ck_assert_int_eq(session_state(s), SESSION_READY);
	ck_assert_uint_eq(F.describe_len, 137);
	ck_assert_mem_eq(F.describe, testapp_json, 137);

	/* Three variables and a function, all in flight at once. */
	ck_assert_int_eq(session_request_variable(s, 1, "counter", 0, 30000),
			 0);
	ck_assert_int_eq(session_request_variable(s, 2, "ratio", 0, 30000), 0);
	ck_assert_int_eq(session_request_variable(s, 3, "greeting", 0, 30000),
			 0);
	ck_assert_int_eq(session_request_function(s, 4, "digitalwrite",
						  "D7,HIGH", 0, 30000),
			 0);
	assert_sent_hex(6, "4101b58102b17607636f756e746572");
	assert_sent_hex(7, "4101b58203b17605726174696f");
	assert_sent_hex(8, "4101b58304b176086772656574696e67");
	assert_sent_hex(9, "4102b58405b1660c6469676974616c7772697465"
			   "4744372c48494748");

	/* The recorded ≤1.4-style piggy-backed variable replies. */
	ck_assert_int_eq(feed_hex(s, "6145b58102ff00000000", 0), 0);
	ck_assert_int_eq(feed_hex(s, "6145b58203ff000000000000e03f", 0), 0);
	ck_assert_int_eq(
		feed_hex(s, "6145b58304ff68656c6c6f2066726f6d2076646576", 0),
		0);
	ck_assert_uint_eq(F.n_done, 3);
	ck_assert_uint_eq(F.done[0].req_id, 1);
	ck_assert_uint_eq(F.done[0].data_len, 4);
	ck_assert_mem_eq(F.done[0].data, "\0\0\0\0", 4);
	ck_assert_uint_eq(F.done[1].req_id, 2);
	ck_assert_uint_eq(F.done[1].data_len, 8);
	{
		double v;

		ck_assert_int_eq(
			pcoap_value_decode_double(F.done[1].data, 8, &v),
			PCOAP_OK);
		ck_assert(v == 0.5);
	}
	ck_assert_uint_eq(F.done[2].data_len, 15);
	ck_assert_mem_eq(F.done[2].data, "hello from vdev", 15);
	/* Function: empty ACK, then NON 2.04 mid 18127 token 05, 1 */
	ck_assert_int_eq(feed_hex(s, "6000b584", 0), 0);
	ck_assert_uint_eq(F.n_done, 3);
	ck_assert_int_eq(feed_hex(s, "514446cf05ff00000001", 0), 0);
	ck_assert_uint_eq(F.n_done, 4);
	ck_assert_int_eq(F.done[3].status, 0);
	ck_assert_int_eq(F.done[3].int_value, 1);

	/* Server event: NON POST e, ONE Uri-Path, no Max-Age at TTL 60. */
	ck_assert_int_eq(session_send_event(s, "vdev/cmd",
					    (const uint8_t *)"pub3", 4, 60,
					    false),
			 0);
	assert_sent_hex(10, "5002b585b16508766465762f636d64ff70756233");

	/* Device events and pings, in the recorded ID order. */
	mid = 18128;
	for (i = 0; i < 24; i++, mid++) {
		if (i % 3 == 2) {
			uint8_t ping[4] = {0x40, 0, (uint8_t)(mid >> 8),
					   (uint8_t)mid};
			size_t before = F.n_sent;

			ck_assert_int_eq(session_input(s, ping, 4, 0), 0);
			ck_assert_uint_eq(F.n_sent, before + 1);
			ck_assert_uint_eq(F.sent[before][0], 0x60);
			ck_assert_uint_eq(sent_mid(before), mid);
		} else {
			FEED(s, 0, pcoap_build_event, PCOAP_NON, mid, true,
			     "vdev/counter", 12, 60, (const uint8_t *)"7", 1);
			ck_assert_str_eq(F.ev_name, "vdev/counter");
		}
	}
	ck_assert_int_eq(F.n_close, 0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 0);
	ck_assert_uint_eq(session_stats(s)->dropped_unknown, 0);
	session_free(s);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Hello and describe.                                                */

START_TEST(test_session_input_hello_lengths)
{
	static const char *hellos[] = {
		"500203e8b168",			   /* 0 bytes */
		"500203e8b168ff0006000100 10",	   /* 6 bytes (Core lib) */
		"500203e8b168ff000600010020 0006", /* 8 bytes */
		"400203e8b168ff000600010000000a000c0123456789abcdef01234567",
	};
	size_t i;

	for (i = 0; i < 4; i++) {
		struct session *s;

		setup();
		s = session_new(&fake_ops, NULL, 1, 0);
		ck_assert_int_eq(feed_hex(s, hellos[i], 0), 0);
		ck_assert_int_eq(session_state(s), SESSION_DESCRIBING);
		ck_assert_int_eq(F.n_close, 0);
		if (i == 3) {
			/* CON Hello (DTLS shape): ACKed first. */
			assert_sent_hex(0, "600003e8");
			assert_sent_hex(1, "50020001b168");
		} else {
			assert_sent_hex(0, "50020001b168");
		}
		if (i == 0)
			ck_assert_uint_eq(session_hello(s)->platform_id,
					  0xffff);
		if (i == 2) {
			ck_assert_uint_eq(session_hello(s)->platform_id, 6);
			ck_assert_uint_eq(session_hello(s)->flags, 0x20);
		}
		session_free(s);
	}
}
END_TEST

START_TEST(test_session_input_hello_bad)
{
	struct session *s = session_new(&fake_ops, NULL, 1, 0);

	/* 7-byte payload */
	ck_assert_int_eq(feed_hex(s, "500203e8b168ff00060001002000", 0),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(F.n_close, 1);
	ck_assert_int_eq(session_state(s), SESSION_CLOSED);
	ck_assert_uint_eq(F.n_sent, 0);
	/* Further input is ignored; close is not repeated. */
	ck_assert_int_eq(feed_hex(s, "500203e8b168", 0),
			 CINDER_ERR_UNAVAILABLE);
	ck_assert_int_eq(F.n_close, 1);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_first_not_hello)
{
	struct session *s = session_new(&fake_ops, NULL, 1, 0);

	ck_assert_int_eq(feed_hex(s, "4101858f01b174", 0), CINDER_ERR_PROTO);
	ck_assert_int_eq(F.n_close, 1);
	ck_assert_int_eq(F.close_status, CINDER_ERR_PROTO);
	ck_assert_int_eq(F.n_hello, 0);
	ck_assert_uint_eq(F.n_sent, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_garbage)
{
	struct session *s = session_new(&fake_ops, NULL, 1, 0);

	ck_assert_int_eq(feed_hex(s, "ffffffff", 0), CINDER_ERR_MALFORMED);
	ck_assert_int_eq(F.n_close, 1);
	ck_assert_int_eq(F.close_status, CINDER_ERR_MALFORMED);
	session_free(s);

	setup();
	s = ready_session();
	ck_assert_int_eq(feed_hex(s, "50", 0), CINDER_ERR_MALFORMED);
	ck_assert_int_eq(F.n_close, 1);
	ck_assert_int_eq(session_state(s), SESSION_CLOSED);
	session_free(s);

	setup();
	s = session_new(&fake_ops, NULL, 1, 0);
	ck_assert_int_eq(session_input(s, NULL, 0, 0), CINDER_ERR_MALFORMED);
	ck_assert_int_eq(F.n_close, 1);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_describe_separate)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 0);

	ck_assert_int_eq(feed_hex(s, "500203e8b168ff" HELLO_PAYLOAD, 0), 0);
	/* 2.x: empty ACK, then a separate CON 2.05 with the token. */
	ck_assert_int_eq(feed_hex(s, "600001f5", 0), 0);
	ck_assert_int_eq(session_state(s), SESSION_DESCRIBING);
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_CON, 1001, 1, tinker_json,
	     strlen(tinker_json));
	assert_sent_hex(2, "600003e9"); /* we ACK that CON */
	ck_assert_int_eq(session_state(s), SESSION_READY);
	ck_assert_int_eq(F.n_ready, 1);
	ck_assert_uint_eq(F.describe_len, strlen(tinker_json));
	/* The settle re-describe goes out; unanswered, it does not close a
	   READY session. */
	ck_assert_int_eq(session_tick(s, 20000), SESSION_DESCRIBE_TIMEOUT_MS);
	ck_assert_uint_eq(F.n_sent, 4);
	assert_sent_hex(3, "410101f602b164");
	ck_assert_int_eq(session_tick(s, 35000), -1);
	ck_assert_int_eq(F.n_close, 0);
	ck_assert_int_eq(session_state(s), SESSION_READY);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_describe_post)
{
	static const char sys[] = "{\"p\":6,\"m\":[]}";
	struct session *s = session_new(&fake_ops, NULL, 500, 0);

	ck_assert_int_eq(feed_hex(s, "500203e8b168ff0006ffff00200006", 0), 0);
	FEED(s, 0, pcoap_build_describe_post, 1001, PCOAP_DESCRIBE_SYSTEM, sys,
	     strlen(sys));
	assert_sent_hex(2, "600003e9");
	ck_assert_int_eq(session_state(s), SESSION_READY);
	ck_assert_int_eq(F.n_ready, 1);
	ck_assert_uint_eq(F.describe_len, strlen(sys));
	/* The GET d reply still comes, and is handed on; READY stays. */
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 501, 1, tinker_json,
	     strlen(tinker_json));
	ck_assert_int_eq(F.n_describe, 2);
	ck_assert_int_eq(F.n_ready, 1);
	session_free(s);
}
END_TEST

/*
 * A device in Device OS's AUTOMATIC mode answers the first Describe
 * before setup() registered its functions; the session asks again once
 * the start-up burst has been quiet for SESSION_SETTLE_QUIET_MS.
 */
START_TEST(test_session_settle_redescribe)
{
	static const char empty_app[] = "{\"f\":[],\"v\":{},\"p\":3,\"m\":[]}";
	struct session *s = session_new(&fake_ops, NULL, 500, 1000);
	struct pcoap_msg m;

	ck_assert_int_eq(feed_hex(s, "500203e8b168ff" HELLO_PAYLOAD, 1000), 0);
	FEED(s, 1000, pcoap_build_describe_reply, PCOAP_ACK, 501, 1, empty_app,
	     strlen(empty_app));
	ck_assert_int_eq(session_state(s), SESSION_READY);
	ck_assert_int_eq(F.n_describe, 1);
	ck_assert_uint_eq(F.n_sent, 2);
	/* The burst: an event, a subscription, the time request. */
	FEED(s, 1100, pcoap_build_event, PCOAP_NON, 1001, true,
	     "spark/hardware/ota_chunk_size", 29, 60, (const uint8_t *)"512",
	     3);
	FEED(s, 1200, pcoap_build_subscribe, 1002, "spark", 5, PCOAP_SCOPE_MINE,
	     NULL, 0);
	ck_assert_int_eq(feed_hex(s, "410103eb07b174", 1250), 0);
	ck_assert_uint_eq(F.n_sent, 4); /* subscribe ACK, time reply */
	ck_assert_int_eq(session_tick(s, 1250), SESSION_SETTLE_QUIET_MS);
	ck_assert_int_eq(session_tick(s, 1549), 1);
	ck_assert_uint_eq(F.n_sent, 4);
	ck_assert_int_eq(session_tick(s, 1550), SESSION_DESCRIBE_TIMEOUT_MS);
	ck_assert_uint_eq(F.n_sent, 5);
	decode_sent(4, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_DESCRIBE);
	/* setup() has run by now: the answer has the functions. */
	FEED(s, 1560, pcoap_build_describe_reply, PCOAP_ACK, m.mid,
	     m.token.p[0], testapp_json, strlen(testapp_json));
	ck_assert_int_eq(F.n_describe, 2);
	ck_assert_uint_eq(F.describe_len, strlen(testapp_json));
	ck_assert_mem_eq(F.describe, testapp_json, F.describe_len);
	ck_assert_int_eq(F.n_ready, 1);
	/* Only once per session. */
	ck_assert_int_eq(session_tick(s, 60000), -1);
	ck_assert_uint_eq(F.n_sent, 5);
	session_free(s);

	/* A device that never stops talking is asked at the latest
	   SESSION_SETTLE_MAX_MS after ready. */
	setup();
	s = session_new(&fake_ops, NULL, 500, 0);
	ck_assert_int_eq(feed_hex(s, "500203e8b168ff" HELLO_PAYLOAD, 0), 0);
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 501, 1, empty_app,
	     strlen(empty_app));
	for (uint64_t t = 100; t < SESSION_SETTLE_MAX_MS; t += 100) {
		FEED(s, t, pcoap_build_event, PCOAP_NON,
		     (uint16_t)(1000 + t / 100), true, "x", 1, 60, NULL, 0);
		ck_assert_int_gt(session_tick(s, t), 0);
		ck_assert_uint_eq(F.n_sent, 2);
	}
	ck_assert_int_eq(session_tick(s, SESSION_SETTLE_MAX_MS),
			 SESSION_DESCRIBE_TIMEOUT_MS);
	ck_assert_uint_eq(F.n_sent, 3);
	session_free(s);
}
END_TEST

/* Goodbye (POST x): reasons handed on, no reply over TCP, ACK if CON. */
START_TEST(test_session_input_goodbye)
{
	struct session *s = ready_session();
	struct pcoap_goodbye g;
	uint8_t b[64];
	size_t n;

	memset(&g, 0, sizeof(g));
	g.flags = PCOAP_GOODBYE_F_RESET | PCOAP_GOODBYE_F_SLEEP;
	g.reset_reason = 70;
	g.sleep_duration = 300;
	ck_assert_int_eq(pcoap_build_goodbye(b, sizeof(b), &n, 1001, &g),
			 PCOAP_OK);
	ck_assert_int_eq(session_input(s, b, n, 0), 0);
	ck_assert_int_eq(F.n_goodbye, 1);
	ck_assert_uint_eq(F.goodbye.flags, g.flags);
	ck_assert_uint_eq(F.goodbye.reset_reason, 70);
	ck_assert_uint_eq(F.goodbye.sleep_duration, 300);
	ck_assert_uint_eq(F.n_sent, 0);
	/* As CON (DTLS shape) it is ACKed. */
	ck_assert_int_eq(pcoap_build_goodbye(b, sizeof(b), &n, 1002, &g),
			 PCOAP_OK);
	b[0] = (uint8_t)((b[0] & 0xcf) | (PCOAP_CON << 4));
	ck_assert_int_eq(session_input(s, b, n, 0), 0);
	ck_assert_int_eq(F.n_goodbye, 2);
	assert_sent_hex(0, "600003ea");
	/* A cut varint: noted, the session goes on. */
	ck_assert_int_eq(feed_hex(s, "500203ebb178ff82", 0), 0);
	ck_assert_int_eq(F.n_goodbye, 3);
	ck_assert_uint_eq(F.goodbye.flags, 0);
	ck_assert_int_eq(F.n_close, 0);
	ck_assert_int_eq(session_state(s), SESSION_READY);
	session_free(s);
}
END_TEST

/* A Device OS 3.0+ Hello: its fields reach the driver, and its message
   limit bounds what the session sends. */
START_TEST(test_session_input_hello_extended)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 0);
	char arg[600];

	/* system 3005, messages up to 512 bytes, binaries 256 KB, 512. */
	ck_assert_int_eq(feed_hex(s,
				  "500203e8b168ff0003ffff00300003"
				  "00000bbd020000040000"
				  "0200",
				  0),
			 0);
	ck_assert_int_eq(F.n_hello, 1);
	ck_assert(F.hello.extended);
	ck_assert_uint_eq(F.hello.flags, 0x30);
	ck_assert_uint_eq(F.hello.system_version, 3005);
	ck_assert_uint_eq(F.hello.max_message_size, 512);
	ck_assert_uint_eq(F.hello.max_binary_size, 0x40000);
	ck_assert_uint_eq(F.hello.ota_chunk_size, 512);
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 501, 1, tinker_json,
	     strlen(tinker_json));
	ck_assert_int_eq(session_state(s), SESSION_READY);
	memset(arg, 'a', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	ck_assert_int_eq(
		session_request_function(s, 1, "digitalread", arg, 0, 1000),
		CINDER_ERR_TOO_BIG);
	arg[400] = '\0';
	ck_assert_int_eq(
		session_request_function(s, 2, "digitalread", arg, 0, 1000), 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_tick_describe_timeout)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 1000);

	ck_assert_int_eq(session_tick(s, 1000), -1);
	ck_assert_int_eq(feed_hex(s, "500203e8b168ff" HELLO_PAYLOAD, 1000), 0);
	ck_assert_int_eq(session_tick(s, 1000), SESSION_DESCRIBE_TIMEOUT_MS);
	ck_assert_int_eq(session_tick(s, 15999), 1);
	ck_assert_int_eq(F.n_close, 0);
	ck_assert_int_eq(session_tick(s, 16000), -1);
	ck_assert_int_eq(F.n_close, 1);
	ck_assert_int_eq(F.close_status, CINDER_ERR_TIMEOUT);
	ck_assert_int_eq(session_state(s), SESSION_CLOSED);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_describe_refused)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 0);

	ck_assert_int_eq(feed_hex(s, "500203e8b168ff" HELLO_PAYLOAD, 0), 0);
	ck_assert_int_eq(feed_hex(s, "618401f501", 0), CINDER_ERR_PROTO);
	ck_assert_int_eq(F.n_close, 1);
	session_free(s);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Device messages.                                                   */

/* The event hook refuses (rate limit): a CON publish gets ACK 4.00 with
   the publish's message ID, a NON one nothing; accepted ones the empty ACK. */
START_TEST(test_session_input_event_slowdown)
{
	struct session *s = ready_session();

	F.ev_ret = CINDER_ERR_BUSY;
	FEED(s, 0, pcoap_build_event, PCOAP_CON, 2001, true, "t", 1, 60,
	     (const uint8_t *)"1", 1);
	assert_sent_hex(0, "608007d1");
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 2002, true, "t", 1, 60,
	     (const uint8_t *)"2", 1);
	ck_assert_uint_eq(F.n_sent, 1);
	F.ev_ret = 0;
	FEED(s, 0, pcoap_build_event, PCOAP_CON, 2003, true, "t", 1, 60,
	     (const uint8_t *)"3", 1);
	assert_sent_hex(1, "600007d3");
	ck_assert_int_eq(F.n_events, 3);
	ck_assert_int_eq(F.n_close, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_event_shapes)
{
	struct session *s = ready_session();
	uint8_t data[SESSION_EVENT_DATA_MAX + 1];
	char name[SESSION_EVENT_NAME_MAX + 2];

	/* CON (WITH_ACK), TTL 120, public */
	FEED(s, 0, pcoap_build_event, PCOAP_CON, 1001, false, "temp", 4, 120,
	     (const uint8_t *)"23", 2);
	assert_sent_hex(0, "600003e9");
	ck_assert_int_eq(F.n_events, 1);
	ck_assert_uint_eq(F.ev_ttl, 120);
	ck_assert(!F.ev_private);
	/* No data */
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 1002, true,
	     "spark/device/safemode", 21, 60, NULL, 0);
	ck_assert_int_eq(F.n_events, 2);
	ck_assert_uint_eq(F.ev_len, 0);
	/* Name over SESSION_EVENT_NAME_MAX and data over the limit: dropped
	   but still ACKed. */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	FEED(s, 0, pcoap_build_event, PCOAP_CON, 1003, true, name, strlen(name),
	     60, NULL, 0);
	assert_sent_hex(1, "600003eb");
	memset(data, 'd', sizeof(data));
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 1004, true, "big", 3, 60, data,
	     sizeof(data));
	ck_assert_int_eq(F.n_events, 2);
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 1005, true, "ok", 2, 60, data,
	     SESSION_EVENT_DATA_MAX);
	ck_assert_int_eq(F.n_events, 3);
	ck_assert_uint_eq(F.ev_len, SESSION_EVENT_DATA_MAX);
	/* Name split over two Uri-Path options is joined. */
	ck_assert_int_eq(feed_hex(s, "500203eeb16504766465760363 6d64", 0), 0);
	ck_assert_str_eq(F.ev_name, "vdev/cmd");
	ck_assert_int_eq(F.n_close, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_subscribe_shapes)
{
	struct session *s = ready_session();
	static const char dev[] = "0123456789abcdef01234567";

	/* Empty filter, no device: ACK 4.00, not handed on. */
	FEED(s, 0, pcoap_build_subscribe, 1001, "", 0, PCOAP_SCOPE_MINE, NULL,
	     0);
	assert_sent_hex(0, "608003e9");
	ck_assert_int_eq(F.n_subs, 0);
	FEED(s, 0, pcoap_build_subscribe, 1002, "", 0, PCOAP_SCOPE_ALL, NULL,
	     0);
	assert_sent_hex(1, "608003ea");
	/* Device scope with an empty filter is fine. */
	FEED(s, 0, pcoap_build_subscribe, 1003, "", 0, PCOAP_SCOPE_DEVICE, dev,
	     24);
	assert_sent_hex(2, "600003eb");
	ck_assert_int_eq(F.n_subs, 1);
	ck_assert_int_eq(F.sub_scope, PCOAP_SCOPE_DEVICE);
	ck_assert_str_eq(F.sub_dev, dev);
	ck_assert_str_eq(F.sub_filter, "");
	/* A device ID that is not 24 hex chars: refused. */
	FEED(s, 0, pcoap_build_subscribe, 1004, "x", 1, PCOAP_SCOPE_DEVICE,
	     "xyz", 3);
	assert_sent_hex(3, "608003ec");
	ck_assert_int_eq(F.n_subs, 1);
	ck_assert_int_eq(F.n_close, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_mid_wrap)
{
	struct session *s = session_new(&fake_ops, NULL, 0xffff, 0);

	/* Both counters wrap 65535 -> 0 without a resync. */
	ck_assert_int_eq(feed_hex(s, "5002ffffb168ff" HELLO_PAYLOAD, 0), 0);
	assert_sent_hex(0, "5002ffffb168");
	assert_sent_hex(1, "4101000001b164");
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 0, false, "a", 1, 60, NULL, 0);
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 0, 1, tinker_json,
	     strlen(tinker_json));
	ck_assert_int_eq(session_state(s), SESSION_READY);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_input_misc)
{
	struct session *s = ready_session();

	/* Ping -> empty ACK, same ID. */
	ck_assert_int_eq(feed_hex(s, "400003e9", 0), 0);
	assert_sent_hex(0, "600003e9");
	/* A second Hello is dropped. */
	ck_assert_int_eq(feed_hex(s, "500203eab168ff" HELLO_PAYLOAD, 0), 0);
	ck_assert_uint_eq(session_stats(s)->dropped_unknown, 1);
	/* Unknown CON request (GET z): dropped but ACKed. */
	ck_assert_int_eq(feed_hex(s, "400103ebb17a", 0), 0);
	assert_sent_hex(1, "600003eb");
	ck_assert_uint_eq(session_stats(s)->dropped_unknown, 2);
	/* ChunkMissed CON (1.x) is ACKed as well. */
	ck_assert_int_eq(feed_hex(s, "400103ecb163ff00030007", 0), 0);
	assert_sent_hex(2, "600003ec");
	/* Unmatched empty ACK: dropped. */
	ck_assert_int_eq(feed_hex(s, "60001234", 0), 0);
	/* Time request without a 1-byte token: a protocol breach. */
	ck_assert_int_eq(feed_hex(s, "400103edb174", 0), CINDER_ERR_MALFORMED);
	ck_assert_int_eq(F.n_close, 1);
	session_free(s);
}
END_TEST

START_TEST(test_session_send_event_shapes)
{
	struct session *s = ready_session();
	struct pcoap_msg m;
	uint8_t data[800];
	uint32_t ttl;

	ck_assert_int_eq(session_send_event(s, "a/b/c", (const uint8_t *)"x", 1,
					    60, true),
			 0);
	decode_sent(0, &m);
	ck_assert_uint_eq(m.type, PCOAP_NON);
	ck_assert_uint_eq(m.mid, 502);
	ck_assert_uint_eq(m.n_opts, 2);
	ck_assert_uint_eq(m.opts[0].val[0], 'E');
	ck_assert_uint_eq(m.opts[1].len, 5); /* ONE Uri-Path: "a/b/c" */
	ck_assert_ptr_null(pcoap_msg_opt(&m, PCOAP_OPT_MAX_AGE, 0));
	ck_assert_int_eq(session_send_event(s, "a", NULL, 0, 120, false), 0);
	decode_sent(1, &m);
	ck_assert_uint_eq(m.mid, 503);
	ck_assert_uint_eq(m.opts[0].val[0], 'e');
	ck_assert_ptr_nonnull(pcoap_msg_opt(&m, PCOAP_OPT_MAX_AGE, 0));
	ck_assert_int_eq(
		pcoap_opt_uint(pcoap_msg_opt(&m, PCOAP_OPT_MAX_AGE, 0), &ttl),
		PCOAP_OK);
	ck_assert_uint_eq(ttl, 120);
	ck_assert_uint_eq(m.payload.len, 0);
	/* Too big for 767 bytes. */
	memset(data, 'x', sizeof(data));
	ck_assert_int_eq(session_send_event(s, "a", data, 760, 60, false),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(session_send_event(s, "a", data, 700, 60, false), 0);
	ck_assert_int_eq(session_send_event(s, "", data, 1, 60, false),
			 CINDER_ERR_INVAL);
	ck_assert_uint_eq(F.n_sent, 3);
	/* The failed ones did not consume a message ID. */
	decode_sent(2, &m);
	ck_assert_uint_eq(m.mid, 504);
	session_free(s);
}
END_TEST

START_TEST(test_session_send_event_core_limit)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 0);
	uint8_t data[700];

	/* Core (platform 0): 607-byte limit. */
	ck_assert_int_eq(feed_hex(s, "500203e8b168ff0000ffff00000000", 0), 0);
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 501, 1, tinker_json,
	     strlen(tinker_json));
	memset(data, 'x', sizeof(data));
	ck_assert_int_eq(session_send_event(s, "a", data, 650, 60, false),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(session_send_event(s, "a", data, 590, 60, false), 0);
	session_free(s);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Robustness.                                                        */

/* Valid device messages to mutate, each fed to a fresh READY session. */
static const char *mutate_seeds[] = {
	"400003e9",
	"600001f6",
	"614501f602ff00000017",
	"514403e902ff00000001",
	"500203e9b145047465 6d7033000078ff3233",
	"400103e9b16505737061726b4175",
	"410103e907b174",
	"400203e9b1644101ff7b7d",
	"618401f602",
	"700001f6",
	"410103e9b1660361626340",
};

static void
mutate_feed(const uint8_t *buf, size_t len, void *arg)
{
	struct session *s;
	int r;

	(void)arg;
	setup();
	s = ready_session();
	ck_assert_int_eq(session_request_variable(s, 1, "v", 0, 1000), 0);
	r = session_input(s, buf, len, 0);
	/* Either handled (session alive) or closed with ops->close once. */
	if (r != 0) {
		ck_assert_int_eq(F.n_close, 1);
		ck_assert_int_eq(session_state(s), SESSION_CLOSED);
	} else {
		ck_assert_int_le(F.n_close, 1);
	}
	(void)session_tick(s, 2000);
	session_abort_requests(s);
	ck_assert_uint_eq(F.n_done, 1);
	session_free(s);
}

START_TEST(test_session_input_mutated)
{
	size_t i;

	for (i = 0; i < sizeof(mutate_seeds) / sizeof(mutate_seeds[0]); i++) {
		uint8_t buf[256];
		size_t len = unhex(mutate_seeds[i], buf, sizeof(buf));

		mutate_run(buf, len, 0x5e55 + i, 1500, mutate_feed, NULL);
	}
}
END_TEST

static Suite *
session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc;

	tc = tcase_create("recordings");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_session_input_tinker_recording);
	tcase_add_test(tc, test_session_input_testapp_recording);
	suite_add_tcase(s, tc);

	tc = tcase_create("hello_describe");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_session_input_hello_lengths);
	tcase_add_test(tc, test_session_input_hello_bad);
	tcase_add_test(tc, test_session_input_first_not_hello);
	tcase_add_test(tc, test_session_input_garbage);
	tcase_add_test(tc, test_session_input_describe_separate);
	tcase_add_test(tc, test_session_input_describe_post);
	tcase_add_test(tc, test_session_tick_describe_timeout);
	tcase_add_test(tc, test_session_settle_redescribe);
	tcase_add_test(tc, test_session_input_goodbye);
	tcase_add_test(tc, test_session_input_hello_extended);
	tcase_add_test(tc, test_session_input_describe_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("device_messages");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_session_input_event_shapes);
	tcase_add_test(tc, test_session_input_event_slowdown);
	tcase_add_test(tc, test_session_input_subscribe_shapes);
	tcase_add_test(tc, test_session_input_misc);
	tcase_add_test(tc, test_session_input_mid_wrap);
	tcase_add_test(tc, test_session_send_event_shapes);
	tcase_add_test(tc, test_session_send_event_core_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_session_input_mutated);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(session_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
