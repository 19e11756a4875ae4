/* SPDX-License-Identifier: MIT */
/*
 * The session tests' fake (session_fake.h): an ops table that records
 * everything the session asks for into F, hex feeding and checks of what
 * was sent, and a session brought to READY.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "coap/pcoap.h"
#include "err.h"
#include "session.h"
#include "session_fake.h"

struct fake F;

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

const struct session_ops fake_ops = {
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

size_t
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

int
feed_hex(struct session *s, const char *hex, uint64_t now)
{
	uint8_t buf[1024];
	size_t len = unhex(hex, buf, sizeof(buf));

	return session_input(s, buf, len, now);
}

/* Assert that sent message i is exactly the given bytes. */
void
assert_sent_hex(size_t i, const char *hex)
{
	uint8_t buf[1024];
	size_t len = unhex(hex, buf, sizeof(buf));

	ck_assert_uint_lt(i, F.n_sent);
	ck_assert_uint_eq(F.sent_len[i], len);
	ck_assert_mem_eq(F.sent[i], buf, len);
}

void
decode_sent(size_t i, struct pcoap_msg *m)
{
	ck_assert_uint_lt(i, F.n_sent);
	ck_assert_int_eq(pcoap_msg_decode(F.sent[i], F.sent_len[i], m),
			 PCOAP_OK);
	/* Everything the session sends obeys the device's parser. */
	ck_assert_int_eq(pcoap_check_to_device(m, PCOAP_DEVICE_RX_MAX),
			 PCOAP_OK);
}

uint8_t
sent_token(size_t i)
{
	struct pcoap_msg m;

	decode_sent(i, &m);
	ck_assert_uint_eq(m.token.len, 1);
	return m.token.p[0];
}

uint16_t
sent_mid(size_t i)
{
	struct pcoap_msg m;

	decode_sent(i, &m);
	return m.mid;
}

const char tinker_json[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\"],\"v\":{},\"p\":3,\"m\":[]}";
const char testapp_json[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\",\"setcounter\",\"echo\"],\"v\":{\"counter\":2,"
	"\"ratio\":9,\"greeting\":4},\"p\":3,\"m\":[]}";

void
setup(void)
{
	memset(&F, 0, sizeof(F));
	F.unix_time = 0x6b04929e;
}

/* See session_fake.h. */
struct session *
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
