/* SPDX-License-Identifier: MIT */
/*
 * Tests for session, what the server asks of the device: every reply
 * shape of function/variable/signal/describe requests, timeouts with a
 * fake clock, queueing and tokens, the message-ID quirk, and OTA attached
 * to the session; through the recording fake ops table of session_fake.h
 * (no sockets).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "err.h"
#include "healer/ota.h"
#include "session.h"
#include "session_fake.h"

/* ---------------------------------------------------------------- */
/* Requests.                                                          */

START_TEST(test_session_request_function_piggybacked)
{
	struct session *s = ready_session();
	struct pcoap_msg m;

	ck_assert_int_eq(session_request_function(s, 9, "led", "", 0, 1000), 0);
	decode_sent(0, &m);
	ck_assert_uint_eq(m.mid, 502);
	/* The argument query is present even when empty (§3.2). */
	ck_assert_ptr_nonnull(pcoap_msg_opt(&m, PCOAP_OPT_URI_QUERY, 0));
	/* Older firmware: ACK 2.04 + token + 4 bytes. */
	ck_assert_int_eq(feed_hex(s, "614401f602ffffffff9c", 0), 0);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_int_eq(F.done[0].status, 0);
	ck_assert_int_eq(F.done[0].int_value, -100);
	ck_assert_uint_eq(session_pending(s), 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_function_errors)
{
	struct session *s = ready_session();
	char big[700];

	/* ACK 4.00 (argument too long on the device) */
	ck_assert_int_eq(session_request_function(s, 1, "f", "x", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "608001f6", 0), 0);
	ck_assert_int_eq(F.done[0].status, CINDER_ERR_PROTO);
	ck_assert_uint_eq(F.done[0].code, PCOAP_CODE_BAD_REQUEST);
	/* separate 4.04 */
	ck_assert_int_eq(session_request_function(s, 2, "f", "x", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "600001f7", 0), 0);
	ck_assert_int_eq(feed_hex(s, "518403e903", 0), 0);
	ck_assert_int_eq(F.done[1].status, CINDER_ERR_NOTFOUND);
	/* RST */
	ck_assert_int_eq(session_request_function(s, 3, "f", "x", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "700001f8", 0), 0);
	ck_assert_int_eq(F.done[2].status, CINDER_ERR_PROTO);
	/* 2.04 with a short payload */
	ck_assert_int_eq(session_request_function(s, 4, "f", "x", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "514403ea05ff0001", 0), 0);
	ck_assert_int_eq(F.done[3].status, CINDER_ERR_PROTO);
	ck_assert_uint_eq(F.n_done, 4);
	ck_assert_int_eq(F.n_close, 0);

	/* Arguments checked before anything is sent. */
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	F.n_sent = 0;
	ck_assert_int_eq(session_request_function(s, 5, "f", big, 0, 1000),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(session_request_function(s, 5, "", "", 0, 1000),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(session_request_function(s, 5, NULL, "", 0, 1000),
			 CINDER_ERR_INVAL);
	big[622] = '\0';
	ck_assert_int_eq(session_request_function(s, 5, "f", big, 0, 1000), 0);
	ck_assert_uint_eq(F.n_sent, 1);
	ck_assert_uint_le(F.sent_len[0], PCOAP_DEVICE_RX_MAX);
	/* Name + 622 bytes do not fit 767 together. */
	memset(big, 'b', 160);
	big[160] = '\0';
	ck_assert_int_eq(session_request_function(s, 6, big, "", 0, 1000), 0);
	{
		char name[200], arg[623];

		memset(name, 'n', 150);
		name[150] = '\0';
		memset(arg, 'a', 622);
		arg[622] = '\0';
		ck_assert_int_eq(
			session_request_function(s, 7, name, arg, 0, 1000),
			CINDER_ERR_TOO_BIG);
	}
	session_free(s);
}
END_TEST

START_TEST(test_session_request_variable_separate)
{
	struct session *s = ready_session();
	uint8_t tok;

	ck_assert_int_eq(session_request_variable(s, 5, "temp", 0, 1000), 0);
	tok = sent_token(0);
	ck_assert_uint_eq(tok, 2);
	/* ≥1.5: empty ACK then NON 2.05 + token + value */
	ck_assert_int_eq(feed_hex(s, "600001f6", 0), 0);
	ck_assert_uint_eq(F.n_done, 0);
	ck_assert_int_eq(feed_hex(s, "514503e902ff00000017", 0), 0);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_int_eq(F.done[0].status, 0);
	ck_assert_int_eq(F.done[0].kind, SESSION_REQ_VARIABLE);
	ck_assert_uint_eq(F.done[0].data_len, 4);
	ck_assert_uint_eq(F.done[0].data[3], 0x17);
	/* An empty string value is a 2.05 without payload. */
	ck_assert_int_eq(session_request_variable(s, 6, "s", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "614501f703", 0), 0);
	ck_assert_int_eq(F.done[1].status, 0);
	ck_assert_uint_eq(F.done[1].data_len, 0);
	/* Not found: ACK 4.04 + token */
	ck_assert_int_eq(session_request_variable(s, 7, "nope", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "618401f804", 0), 0);
	ck_assert_int_eq(F.done[2].status, CINDER_ERR_NOTFOUND);
	ck_assert_uint_eq(F.done[2].code, PCOAP_CODE_NOT_FOUND);
	/* 5.00 separate */
	ck_assert_int_eq(session_request_variable(s, 8, "bad", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "600001f9", 0), 0);
	ck_assert_int_eq(feed_hex(s, "51a003ea05", 0), 0);
	ck_assert_int_eq(F.done[3].status, CINDER_ERR_PROTO);
	ck_assert_int_eq(F.n_close, 0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_variable_con_response)
{
	struct session *s = ready_session();

	ck_assert_int_eq(session_request_variable(s, 5, "temp", 0, 1000), 0);
	/* A separate response sent CON (DTLS-like) is ACKed. */
	F.n_sent = 0;
	ck_assert_int_eq(feed_hex(s, "414503e902ff31", 0), 0);
	assert_sent_hex(0, "600003e9");
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_uint_eq(F.done[0].data_len, 1);
	/* A duplicate/late response for a finished token: ACKed, dropped. */
	ck_assert_int_eq(feed_hex(s, "414503ea02ff31", 0), 0);
	assert_sent_hex(1, "600003ea");
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_uint_eq(session_stats(s)->dropped_unknown, 1);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_signal_mid_quirk)
{
	struct session *s = ready_session();
	struct pcoap_msg m;

	ck_assert_int_eq(session_request_signal(s, 11, true, 0, 1000), 0);
	decode_sent(0, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_SIGNAL);
	assert_sent_hex(0, "410301f602b1734101");
	/* LightSSL: ACK 2.04 + token but a FRESH device ID (1001). */
	ck_assert_int_eq(feed_hex(s, "614403e902", 0), 0);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_int_eq(F.done[0].status, 0);
	ck_assert_int_eq(F.done[0].kind, SESSION_REQ_SIGNAL);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 1);
	ck_assert_int_eq(F.n_close, 0);
	/* The device's next message uses 1002: no further resync. */
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 1002, false, "a", 1, 60, NULL,
	     0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 1);
	/* A real gap is tolerated, counted, and never closes. */
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 2000, false, "a", 1, 60, NULL,
	     0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 2);
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 2001, false, "a", 1, 60, NULL,
	     0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 2);
	ck_assert_int_eq(F.n_close, 0);

	/* Legacy: signal ACK echoing our ID; signal stop. */
	ck_assert_int_eq(session_request_signal(s, 12, false, 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "614401f703", 0), 0);
	ck_assert_int_eq(F.done[1].status, 0);
	ck_assert_uint_eq(session_stats(s)->mid_resyncs, 2);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_describe_api)
{
	struct session *s = ready_session();

	ck_assert_int_eq(
		session_request_describe(s, 3, PCOAP_DESCRIBE_APP, 0, 1000), 0);
	assert_sent_hex(0, "410101f602b1644102");
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 502, 2, tinker_json,
	     strlen(tinker_json));
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_int_eq(F.done[0].kind, SESSION_REQ_DESCRIBE);
	ck_assert_uint_eq(F.done[0].data_len, strlen(tinker_json));
	ck_assert_mem_eq(F.done[0].data, tinker_json, strlen(tinker_json));
	/* Only the session's own Describe goes to ops->describe. */
	ck_assert_int_eq(F.n_describe, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_not_ready)
{
	struct session *s = session_new(&fake_ops, NULL, 1, 0);

	ck_assert_int_eq(session_request_function(s, 1, "f", "", 0, 10),
			 CINDER_ERR_UNAVAILABLE);
	ck_assert_int_eq(session_request_variable(s, 1, "v", 0, 10),
			 CINDER_ERR_UNAVAILABLE);
	ck_assert_int_eq(session_request_signal(s, 1, true, 0, 10),
			 CINDER_ERR_UNAVAILABLE);
	ck_assert_int_eq(session_send_event(s, "x", NULL, 0, 60, false),
			 CINDER_ERR_UNAVAILABLE);
	ck_assert_int_eq(feed_hex(s, "500203e8b168", 0), 0);
	ck_assert_int_eq(session_request_variable(s, 1, "v", 0, 10),
			 CINDER_ERR_UNAVAILABLE);
	ck_assert_uint_eq(F.n_sent, 2);
	ck_assert_uint_eq(F.n_done, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_tick_request_timeout)
{
	struct session *s = ready_session();

	ck_assert_int_eq(session_request_function(s, 1, "f", "", 100, 1000), 0);
	ck_assert_int_eq(session_request_variable(s, 2, "v", 200, 5000), 0);
	/* The settle re-describe (due at 300) comes first. */
	ck_assert_int_eq(session_tick(s, 100), SESSION_SETTLE_QUIET_MS - 100);
	/* The empty ACK does not stop the clock. */
	ck_assert_int_eq(feed_hex(s, "600001f6", 150), 0);
	ck_assert_int_eq(session_tick(s, 1099), 1);
	ck_assert_uint_eq(F.n_done, 0);
	ck_assert_int_eq(session_tick(s, 1100), 4100);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_uint_eq(F.done[0].req_id, 1);
	ck_assert_int_eq(F.done[0].status, CINDER_ERR_TIMEOUT);
	/* A late answer to the timed-out call is dropped. */
	ck_assert_int_eq(feed_hex(s, "514403e902ff00000001", 1200), 0);
	ck_assert_uint_eq(F.n_done, 1);
	/* Left: the settle describe sent at 1099, never answered. */
	ck_assert_int_eq(session_tick(s, 5200),
			 1099 + SESSION_DESCRIBE_TIMEOUT_MS - 5200);
	ck_assert_uint_eq(F.n_done, 2);
	ck_assert_int_eq(F.done[1].status, CINDER_ERR_TIMEOUT);
	ck_assert_int_eq(F.n_close, 0);
	ck_assert_int_eq(session_state(s), SESSION_READY);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_queue_busy)
{
	struct session *s = ready_session();
	size_t i, total = SESSION_MAX_INFLIGHT + SESSION_MAX_QUEUED;
	uint8_t ack[4] = {0x60, 0, 0, 0};
	char resp[64];
	uint16_t mid;

	for (i = 0; i < total; i++)
		ck_assert_int_eq(session_request_variable(s, i, "v", 0, 60000),
				 0);
	ck_assert_int_eq(session_request_variable(s, 999, "v", 0, 60000),
			 CINDER_ERR_BUSY);
	ck_assert_uint_eq(F.n_sent, SESSION_MAX_INFLIGHT);
	ck_assert_uint_eq(session_pending(s), total);
	/* Answer the first one: exactly one queued request goes out, FIFO. */
	mid = sent_mid(0);
	ack[2] = (uint8_t)(mid >> 8);
	ack[3] = (uint8_t)mid;
	ck_assert_int_eq(session_input(s, ack, 4, 0), 0);
	snprintf(resp, sizeof(resp), "514503e9%02xff01", sent_token(0));
	ck_assert_int_eq(feed_hex(s, resp, 0), 0);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_uint_eq(F.done[0].req_id, 0);
	ck_assert_uint_eq(F.n_sent, SESSION_MAX_INFLIGHT + 1);
	ck_assert_uint_eq(sent_mid(SESSION_MAX_INFLIGHT),
			  (uint16_t)(502 + SESSION_MAX_INFLIGHT));
	ck_assert_int_eq(session_request_variable(s, 1000, "v", 0, 60000), 0);
	ck_assert_int_eq(session_request_variable(s, 1001, "v", 0, 60000),
			 CINDER_ERR_BUSY);
	/* Queued requests time out too, in order; the settle re-describe
	   goes out then, and is not reported to the API. */
	ck_assert_int_eq(session_tick(s, 60000), SESSION_DESCRIBE_TIMEOUT_MS);
	ck_assert_uint_eq(F.n_done, total + 1);
	ck_assert_uint_eq(session_pending(s), 0);
	ck_assert_int_eq(F.n_close, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_token_rotation)
{
	struct session *s = ready_session();
	bool used[256];
	size_t i, j, next = 0;
	char resp[64];
	uint16_t dmid = 1001;

	/* Keep SESSION_MAX_INFLIGHT requests in flight for 2000 rounds. */
	for (i = 0; i < SESSION_MAX_INFLIGHT; i++)
		ck_assert_int_eq(
			session_request_function(s, i, "f", "", 0, 60000), 0);
	for (i = 0; i < 2000; i++) {
		uint8_t tok = sent_token(next);

		memset(used, 0, sizeof(used));
		for (j = next; j < F.n_sent; j++) {
			uint8_t t = sent_token(j);

			ck_assert_uint_ne(t, 0);
			ck_assert(!used[t]); /* never two in flight */
			used[t] = true;
		}
		snprintf(resp, sizeof(resp), "5144%04x%02xff%08x",
			 (unsigned)dmid++, tok, (unsigned)i);
		ck_assert_int_eq(feed_hex(s, resp, 0), 0);
		ck_assert_uint_eq(F.done[F.n_done - 1].req_id, i);
		ck_assert_int_eq(F.done[F.n_done - 1].int_value, (int32_t)i);
		F.n_done = 0;
		ck_assert_int_eq(
			session_request_function(s, SESSION_MAX_INFLIGHT + i,
						 "f", "", 0, 60000),
			0);
		next++;
		ck_assert_uint_lt(F.n_sent, MAX_SENT);
		if (F.n_sent > MAX_SENT - 8) {
			/* Slide the window: keep the last in-flight ones. */
			size_t keep = F.n_sent - next;

			memmove(F.sent, F.sent[next], keep * sizeof(F.sent[0]));
			memmove(F.sent_len, F.sent_len + next,
				keep * sizeof(F.sent_len[0]));
			F.n_sent = keep;
			next = 0;
		}
	}
	ck_assert_int_eq(F.n_close, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_request_reentrant)
{
	struct session *s = ready_session();

	F.requeue_on_done = 1;
	ck_assert_int_eq(session_request_variable(s, 1, "v", 0, 1000), 0);
	ck_assert_int_eq(feed_hex(s, "614501f602ff31", 0), 0);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_uint_eq(F.n_sent, 2);
	ck_assert_uint_eq(session_pending(s), 1);
	session_free(s);
}
END_TEST

START_TEST(test_session_abort_requests_once)
{
	struct session *s = ready_session();
	size_t i, n = SESSION_MAX_INFLIGHT + 10;
	int seen[SESSION_MAX_INFLIGHT + 10];

	for (i = 0; i < n; i++)
		ck_assert_int_eq(
			session_request_function(s, i, "f", "", 0, 1000), 0);
	session_abort_requests(s);
	ck_assert_uint_eq(F.n_done, n);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(F.done[i].status, CINDER_ERR_UNAVAILABLE);
		ck_assert_uint_lt(F.done[i].req_id, n);
		seen[F.done[i].req_id]++;
	}
	for (i = 0; i < n; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_uint_eq(session_pending(s), 0);
	session_abort_requests(s);
	ck_assert_uint_eq(F.n_done, n);
	ck_assert_int_eq(session_tick(s, 5000), SESSION_DESCRIBE_TIMEOUT_MS);
	ck_assert_uint_eq(F.n_done, n);
	session_free(s);
}
END_TEST

START_TEST(test_session_send_failure_closes)
{
	struct session *s = ready_session();

	F.send_fail = 1;
	ck_assert_int_eq(session_request_function(s, 1, "f", "", 0, 1000), 0);
	ck_assert_int_eq(F.n_close, 1);
	ck_assert_int_eq(F.close_status, CINDER_ERR_IO);
	ck_assert_int_eq(session_state(s), SESSION_CLOSED);
	ck_assert_uint_eq(F.n_done, 0);
	session_abort_requests(s);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_int_eq(F.done[0].status, CINDER_ERR_UNAVAILABLE);
	session_free(s);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Firmware over the air attached to the session.                      */

static int ota_success, ota_failed;
static enum ota_fail ota_reason;

static void
fake_ota_report(void *arg, const struct ota_report *r)
{
	ck_assert_ptr_eq(arg, &F);
	if (r->ev == OTA_EV_SUCCESS)
		ota_success++;
	else if (r->ev == OTA_EV_FAILED) {
		ota_failed++;
		ota_reason = r->reason;
	}
}

static struct ota_image *
ota_test_image(size_t len)
{
	uint8_t buf[4096];
	size_t i;

	ck_assert_uint_le(len, sizeof(buf));
	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7);
	return ota_image_new(buf, len);
}

/* How many messages of a kind the session sent. */
static int
count_sent(int kind)
{
	struct pcoap_msg m;
	size_t i;
	int n = 0;

	for (i = 0; i < F.n_sent; i++) {
		decode_sent(i, &m);
		n += pcoap_particle_kind(&m) == kind;
	}
	return n;
}

START_TEST(test_session_ota_routes_and_locks)
{
	struct session *s = ready_session();
	struct ota_params p = {.fast = true};
	struct ota_image *img = ota_test_image(2000);
	struct pcoap_chunk c;
	struct pcoap_msg m;
	uint16_t begin_mid, done_mid, missing = 2;
	uint8_t begin_tok, done_tok, fn_tok;
	size_t i, base;

	ota_success = ota_failed = 0;
	/* a function call in flight before the flash */
	ck_assert_int_eq(session_request_function(s, 1, "led", "on", 0, 60000),
			 0);
	fn_tok = sent_token(0);
	ck_assert_int_eq(
		session_ota_start(s, img, &p, NULL, fake_ota_report, &F, 0), 0);
	ota_image_unref(img); /* the transfer holds its own reference */
	ck_assert(session_ota_active(s));
	ck_assert_int_eq(
		session_ota_start(s, img, &p, NULL, fake_ota_report, &F, 0),
		CINDER_ERR_BUSY);
	ck_assert_uint_eq(F.n_sent, 2);
	decode_sent(1, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_UPDATE_BEGIN);
	begin_mid = m.mid;
	begin_tok = m.token.p[0];
	ck_assert_uint_eq(begin_mid, 503);
	ck_assert_uint_ne(begin_tok, fn_tok);
	/* the link is locked: a new request waits */
	ck_assert_int_eq(session_request_variable(s, 2, "temp", 0, 60000), 0);
	ck_assert_uint_eq(F.n_sent, 2);
	ck_assert_uint_eq(session_pending(s), 2);
	/* UpdateBegin accepted, UpdateReady (fast) */
	FEED(s, 0, pcoap_build_empty_ack, begin_mid);
	FEED(s, 0, pcoap_build_update_ready, 1001, begin_tok, 1);
	ck_assert_uint_eq(F.n_sent, 2 + 4 + 1);
	for (i = 2; i < 6; i++) {
		decode_sent(i, &m);
		ck_assert_int_eq(pcoap_parse_chunk(&m, &c), PCOAP_OK);
		ck_assert_uint_eq(c.index, i - 2);
		ck_assert_uint_ne(c.token, fn_tok);
	}
	decode_sent(6, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_UPDATE_DONE);
	done_mid = m.mid;
	done_tok = m.token.p[0];
	/* the function's answer still reaches its request */
	FEED(s, 0, pcoap_build_function_return, 1002, fn_tok, 1);
	ck_assert_uint_eq(F.n_done, 1);
	ck_assert_int_eq(F.done[0].int_value, 1);
	/* events still go up */
	FEED(s, 0, pcoap_build_event, PCOAP_NON, 1003, true, "t", 1, 60,
	     (const uint8_t *)"1", 1);
	ck_assert_int_eq(F.n_events, 1);
	/* chunk 2 lost: 4.00, a CON ChunkMissed (ACKed), resend, done */
	ck_assert_int_eq(
		session_input(s,
			      (const uint8_t[]){0x61, 0x80,
						(uint8_t)(done_mid >> 8),
						(uint8_t)done_mid, done_tok},
			      5, 0),
		0);
	base = F.n_sent;
	FEED(s, 0, pcoap_build_chunk_missed, PCOAP_CON, 1004, &missing, 1);
	ck_assert_uint_eq(F.n_sent, base + 3);
	assert_sent_hex(base, "600003ec");
	decode_sent(base + 1, &m);
	ck_assert_int_eq(pcoap_parse_chunk(&m, &c), PCOAP_OK);
	ck_assert_uint_eq(c.index, 2);
	decode_sent(base + 2, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_UPDATE_DONE);
	/* complete: success, the transfer detaches, the variable goes out */
	FEED(s, 0, pcoap_build_reply, PCOAP_ACK, PCOAP_CODE_CHANGED, m.mid,
	     m.token.p, 1, (const uint8_t *)"{\"r\":\"ok\"}", 10);
	ck_assert_int_eq(ota_success, 1);
	ck_assert(!session_ota_active(s));
	ck_assert_uint_eq(F.n_sent, base + 4);
	decode_sent(base + 3, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_VARIABLE);
	ck_assert_int_eq(session_stats(s)->dropped_unknown, 0);
	session_free(s);
}
END_TEST

START_TEST(test_session_ota_timeouts_and_abort)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 0);
	struct ota_image *img = ota_test_image(1000);
	int64_t next;

	ota_success = ota_failed = 0;
	ck_assert_int_eq(
		session_ota_start(s, img, NULL, NULL, fake_ota_report, &F, 0),
		CINDER_ERR_UNAVAILABLE);
	session_free(s);
	s = ready_session();
	ck_assert_int_eq(
		session_ota_start(s, img, NULL, NULL, fake_ota_report, &F, 0),
		0);
	/* the session's tick drives UpdateBegin resends (the settle
	   re-describe goes out on its own schedule) */
	next = session_tick(s, 0);
	ck_assert_int_le(next, OTA_BEGIN_TIMEOUT_MS);
	next = session_tick(s, SESSION_SETTLE_MAX_MS);
	ck_assert_int_eq(count_sent(PCOAP_KIND_UPDATE_BEGIN), 1);
	ck_assert_int_le(next, OTA_BEGIN_TIMEOUT_MS - SESSION_SETTLE_MAX_MS);
	ck_assert_int_ge(session_tick(s, OTA_BEGIN_TIMEOUT_MS - 1), 0);
	ck_assert_int_eq(count_sent(PCOAP_KIND_UPDATE_BEGIN), 1);
	ck_assert_int_ge(session_tick(s, OTA_BEGIN_TIMEOUT_MS), 0);
	ck_assert_int_eq(count_sent(PCOAP_KIND_UPDATE_BEGIN), 2);
	ck_assert_int_eq(ota_failed, 0);
	/* the connection ends: failed once, as disconnected */
	session_abort_requests(s);
	ck_assert_int_eq(ota_failed, 1);
	ck_assert_int_eq(ota_reason, OTA_FAIL_DISCONNECTED);
	ck_assert(!session_ota_active(s));
	session_abort_requests(s);
	ck_assert_int_eq(ota_failed, 1);
	session_free(s);

	/* the device refuses: the lock is released at once */
	F.n_sent = 0;
	s = ready_session();
	ck_assert_int_eq(
		session_ota_start(s, img, NULL, NULL, fake_ota_report, &F, 0),
		0);
	ck_assert_int_eq(session_request_variable(s, 3, "x", 0, 60000), 0);
	ck_assert_uint_eq(F.n_sent, 1);
	ck_assert_int_eq(feed_hex(s, "608001f6", 0), 0); /* 4.00, no token */
	ck_assert_int_eq(ota_failed, 2);
	ck_assert_int_eq(ota_reason, OTA_FAIL_REFUSED);
	ck_assert_uint_eq(F.n_sent, 2);
	/* a transfer left attached is freed silently with the session */
	ck_assert_int_eq(
		session_ota_start(s, img, NULL, NULL, fake_ota_report, &F, 0),
		0);
	ota_image_unref(img);
	session_free(s);
	ck_assert_int_eq(ota_failed, 2);
}
END_TEST

static Suite *
session_req_suite(void)
{
	Suite *s = suite_create("session_req");
	TCase *tc;

	tc = tcase_create("requests");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_session_request_function_piggybacked);
	tcase_add_test(tc, test_session_request_function_errors);
	tcase_add_test(tc, test_session_request_variable_separate);
	tcase_add_test(tc, test_session_request_variable_con_response);
	tcase_add_test(tc, test_session_request_signal_mid_quirk);
	tcase_add_test(tc, test_session_request_describe_api);
	tcase_add_test(tc, test_session_request_not_ready);
	tcase_add_test(tc, test_session_tick_request_timeout);
	tcase_add_test(tc, test_session_request_queue_busy);
	tcase_add_test(tc, test_session_request_token_rotation);
	tcase_add_test(tc, test_session_request_reentrant);
	tcase_add_test(tc, test_session_abort_requests_once);
	tcase_add_test(tc, test_session_send_failure_closes);
	suite_add_tcase(s, tc);

	tc = tcase_create("ota");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_session_ota_routes_and_locks);
	tcase_add_test(tc, test_session_ota_timeouts_and_abort);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(session_req_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
