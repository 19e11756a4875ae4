/* SPDX-License-Identifier: MIT */
/*
 * Tests for session: the recorded Device OS 0.7.0 sessions replayed as
 * plaintext through a recording fake ops table (no sockets), every reply
 * shape of function/variable/signal/describe, timeouts with a fake clock,
 * queueing and tokens, the message-ID quirk, and mutated input.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "err.h"
#include "healer/ota.h"
#include "mutate.h"
#include "session.h"

#define MAX_SENT 1024
#define MAX_DONE 1024

struct done {
	uint64_t req_id;
	enum session_req_kind kind;
	int status;
	uint8_t code;
	int32_t int_value;
	uint8_t data[1024];
	size_t data_len;
};

/* Everything the session asked for, in order. */
static struct fake {
	uint8_t sent[MAX_SENT][PCOAP_DEVICE_RX_MAX];
	size_t sent_len[MAX_SENT];
	size_t n_sent;
	int send_fail;
	int n_close;
	int close_status;
	int n_hello;
	struct session_hello hello;
	int n_describe;
	char describe[1024];
	size_t describe_len;
	int n_ready;
	int n_events;
	char ev_name[128];
	uint8_t ev_data[1100];
	size_t ev_len;
	uint32_t ev_ttl;
	bool ev_private;
	int ev_ret; /* what the event hook answers */
	int n_subs;
	char sub_filter[128];
	int sub_scope;
	char sub_dev[PCOAP_DEVICE_ID_LEN + 1];
	struct done done[MAX_DONE];
	size_t n_done;
	uint32_t unix_time;
	int n_goodbye;
	struct pcoap_goodbye goodbye;
	struct session *s;   /* for re-entrant callbacks */
	int requeue_on_done; /* request_done issues a new request */
} F;

static int
fake_send(void *arg, const uint8_t *msg, size_t len)
{
	(void)arg;
	ck_assert_uint_le(len, PCOAP_DEVICE_RX_MAX);
	if (F.send_fail)
		return CINDER_ERR_IO;
	if (F.n_sent < MAX_SENT) {
		memcpy(F.sent[F.n_sent], msg, len);
		F.sent_len[F.n_sent] = len;
	}
	F.n_sent++;
	return 0;
}

static void
fake_close(void *arg, int status, const char *reason)
{
	(void)arg;
	ck_assert_ptr_nonnull(reason);
	F.n_close++;
	F.close_status = status;
}

static void
fake_hello(void *arg, const struct session_hello *h)
{
	(void)arg;
	F.n_hello++;
	F.hello = *h;
}

static void
fake_describe(void *arg, const char *json, size_t len)
{
	(void)arg;
	F.n_describe++;
	ck_assert_uint_lt(len, sizeof(F.describe));
	memcpy(F.describe, json, len);
	F.describe_len = len;
}

static void
fake_ready(void *arg)
{
	(void)arg;
	F.n_ready++;
}

static int
fake_event(void *arg, const char *name, const uint8_t *data, size_t len,
	   uint32_t ttl, bool is_private)
{
	(void)arg;
	F.n_events++;
	ck_assert_uint_lt(strlen(name), sizeof(F.ev_name));
	strcpy(F.ev_name, name);
	ck_assert_uint_le(len, sizeof(F.ev_data));
	if (len > 0)
		memcpy(F.ev_data, data, len);
	F.ev_len = len;
	F.ev_ttl = ttl;
	F.ev_private = is_private;
	return F.ev_ret;
}

static void
fake_subscribe(void *arg, const char *filter, int scope, const char *device_id)
{
	(void)arg;
	F.n_subs++;
	ck_assert_uint_lt(strlen(filter), sizeof(F.sub_filter));
	strcpy(F.sub_filter, filter);
	F.sub_scope = scope;
	F.sub_dev[0] = '\0';
	if (device_id != NULL) {
		memcpy(F.sub_dev, device_id, PCOAP_DEVICE_ID_LEN);
		F.sub_dev[PCOAP_DEVICE_ID_LEN] = '\0';
	}
}

static void
fake_request_done(void *arg, uint64_t req_id, enum session_req_kind kind,
		  const struct session_result *res)
{
	struct done *d;

	(void)arg;
	ck_assert_uint_lt(F.n_done, MAX_DONE);
	d = &F.done[F.n_done++];
	d->req_id = req_id;
	d->kind = kind;
	d->status = res->status;
	d->code = res->code;
	d->int_value = res->int_value;
	d->data_len = res->data_len;
	if (res->data_len > 0) {
		ck_assert_uint_le(res->data_len, sizeof(d->data));
		memcpy(d->data, res->data, res->data_len);
	}
	if (F.requeue_on_done > 0) {
		F.requeue_on_done--;
		ck_assert_int_eq(session_request_variable(F.s, req_id + 1000,
							  "x", 0, 5000),
				 0);
	}
}

static void
fake_goodbye(void *arg, const struct pcoap_goodbye *g)
{
	(void)arg;
	F.n_goodbye++;
	F.goodbye = *g;
}

static uint32_t
fake_time(void *arg)
{
	(void)arg;
	return F.unix_time;
}

static const struct session_ops fake_ops = {
	.send = fake_send,
	.close = fake_close,
	.hello = fake_hello,
	.describe = fake_describe,
	.ready = fake_ready,
	.event = fake_event,
	.subscribe = fake_subscribe,
	.request_done = fake_request_done,
	.unix_time = fake_time,
	.goodbye = fake_goodbye,
};

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (hex[0] != '\0' && hex[1] != '\0') {
		if (hex[0] == ' ') {
			hex++;
			continue;
		}
		ck_assert_uint_lt(n, cap);
		ck_assert_int_eq(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static int
feed_hex(struct session *s, const char *hex, uint64_t now)
{
	uint8_t buf[1024];
	size_t len = unhex(hex, buf, sizeof(buf));

	return session_input(s, buf, len, now);
}

/* Assert that sent message i is exactly the given bytes. */
static void
assert_sent_hex(size_t i, const char *hex)
{
	uint8_t buf[1024];
	size_t len = unhex(hex, buf, sizeof(buf));

	ck_assert_uint_lt(i, F.n_sent);
	ck_assert_uint_eq(F.sent_len[i], len);
	ck_assert_mem_eq(F.sent[i], buf, len);
}

static void
decode_sent(size_t i, struct pcoap_msg *m)
{
	ck_assert_uint_lt(i, F.n_sent);
	ck_assert_int_eq(pcoap_msg_decode(F.sent[i], F.sent_len[i], m),
			 PCOAP_OK);
	/* Everything the session sends obeys the device's parser. */
	ck_assert_int_eq(pcoap_check_to_device(m, PCOAP_DEVICE_RX_MAX),
			 PCOAP_OK);
}

static uint8_t
sent_token(size_t i)
{
	struct pcoap_msg m;

	decode_sent(i, &m);
	ck_assert_uint_eq(m.token.len, 1);
	return m.token.p[0];
}

static uint16_t
sent_mid(size_t i)
{
	struct pcoap_msg m;

	decode_sent(i, &m);
	return m.mid;
}

/* Build and feed a device message made with a pcoap builder. */
#define FEED(s, now, builder, ...)                                             \
	do {                                                                   \
		uint8_t b_[2048];                                              \
		size_t l_;                                                     \
		ck_assert_int_eq(builder(b_, sizeof(b_), &l_, __VA_ARGS__),    \
				 PCOAP_OK);                                    \
		ck_assert_int_eq(session_input((s), b_, l_, (now)), 0);        \
	} while (0)

static const char tinker_json[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\"],\"v\":{},\"p\":3,\"m\":[]}";
static const char testapp_json[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\",\"setcounter\",\"echo\"],\"v\":{\"counter\":2,"
	"\"ratio\":9,\"greeting\":4},\"p\":3,\"m\":[]}";

/* Device Hello of the recordings: product 3, version 0xffff, platform 3. */
#define HELLO_PAYLOAD "0003ffff00000003"

static void
setup(void)
{
	memset(&F, 0, sizeof(F));
	F.unix_time = 0x6b04929e;
}

/*
 * A session that exchanged Hellos (device Hello mid 1000, server mids
 * from 500) and got the tinker describe piggy-backed: READY. The device's
 * next message ID is 1001; the server's next is 502; next token 2.
 */
static struct session *
ready_session(void)
{
	struct session *s = session_new(&fake_ops, NULL, 500, 0);

	F.s = s;
	ck_assert_int_eq(feed_hex(s, "500203e8b168ff" HELLO_PAYLOAD, 0), 0);
	ck_assert_int_eq(session_state(s), SESSION_DESCRIBING);
	ck_assert_uint_eq(F.n_sent, 2);
	FEED(s, 0, pcoap_build_describe_reply, PCOAP_ACK, 501, 1, tinker_json,
	     strlen(tinker_json));
	ck_assert_int_eq(session_state(s), SESSION_READY);
	F.n_sent = 0;
	F.n_describe = 0;
	return s;
}

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
