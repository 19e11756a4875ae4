/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the session state machine: the input is a script of
 * device messages, API requests, server events and clock steps, run
 * against one session with fake ops. Properties: no crash; every
 * message sent passes pcoap_check_to_device(); ops->close at most once;
 * every accepted request is reported exactly once (after abort).
 *
 * Script, one op after another until the input ends:
 *   0x00 len_hi len_lo bytes  device message (length capped by input)
 *   0x01 kind timeout         API request (kind % 4: function, variable,
 *                             signal, describe; timeout * 100 ms)
 *   0x02 step                 advance the clock by step * 100 ms, tick
 *   0x03 len bytes            server event with that name/data split
 *   other                     ignored
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "fuzz.h"
#include "err.h"
#include "session.h"

/* The first server message ID: the describe request goes out as 0x0101
   with token 1, which the seed corpus answers. */
#define FUZZ_SERVER_MID 0x0100

static struct {
	int n_close;
	uint64_t accepted;
	uint64_t done;
} st;

/* Reading borrowed views lets ASan check them. */
static volatile uint8_t sink;

static void
touch(const void *p, size_t len)
{
	const uint8_t *b = p;

	if (len > 0)
		sink ^= b[0] ^ b[len - 1];
}

static int
fz_send(void *arg, const uint8_t *msg, size_t len)
{
	struct pcoap_msg m;

	(void)arg;
	if (pcoap_msg_decode(msg, len, &m) != PCOAP_OK ||
	    pcoap_check_to_device(&m, PCOAP_DEVICE_RX_MAX) != PCOAP_OK)
		abort();
	return 0;
}

static void
fz_close(void *arg, int status, const char *reason)
{
	(void)arg;
	(void)status;
	if (reason == NULL || ++st.n_close > 1)
		abort();
}

static void
fz_describe(void *arg, const char *json, size_t len)
{
	(void)arg;
	if (json == NULL)
		abort();
	touch(json, len);
}

static int
fz_event(void *arg, const char *name, const uint8_t *data, size_t len,
	 uint32_t ttl, bool is_private)
{
	(void)arg;
	(void)ttl;
	(void)is_private;
	if (strlen(name) > SESSION_EVENT_NAME_MAX ||
	    len > SESSION_EVENT_DATA_MAX || data == NULL)
		abort();
	touch(data, len);
	return len % 7 == 0 ? CINDER_ERR_BUSY : 0; /* sometimes refuse */
}

static void
fz_subscribe(void *arg, const char *filter, int scope, const char *dev)
{
	(void)arg;
	if (strlen(filter) > SESSION_EVENT_NAME_MAX ||
	    (scope == PCOAP_SCOPE_DEVICE) != (dev != NULL))
		abort();
	if (dev != NULL)
		touch(dev, PCOAP_DEVICE_ID_LEN);
}

static void
fz_done(void *arg, uint64_t req_id, enum session_req_kind kind,
	const struct session_result *res)
{
	(void)arg;
	(void)req_id;
	(void)kind;
	if (res->data_len > 0 && res->data == NULL)
		abort();
	touch(res->data, res->data_len);
	st.done++;
}

static uint32_t
fz_time(void *arg)
{
	(void)arg;
	return 0x6b04929e;
}

static const struct session_ops fz_ops = {
	.send = fz_send,
	.close = fz_close,
	.describe = fz_describe,
	.event = fz_event,
	.subscribe = fz_subscribe,
	.request_done = fz_done,
	.unix_time = fz_time,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session *s;
	uint64_t now = 0, id = 0;
	size_t i = 0, len;
	uint8_t *msg;
	char text[256];
	int r = 0;

	memset(&st, 0, sizeof(st));
	s = session_new(&fz_ops, NULL, FUZZ_SERVER_MID, now);
	while (i < size) {
		uint8_t op = data[i++];

		switch (op) {
		case 0x00:
			if (size - i < 2)
				goto out;
			len = (size_t)data[i] << 8 | data[i + 1];
			i += 2;
			if (len > size - i)
				len = size - i;
			/* Exact-size copy so ASan sees over-reads. */
			if ((msg = malloc(len > 0 ? len : 1)) == NULL)
				abort();
			if (len > 0)
				memcpy(msg, data + i, len);
			(void)session_input(s, msg, len, now);
			free(msg);
			i += len;
			break;
		case 0x01:
			if (size - i < 2)
				goto out;
			switch (data[i] % 4) {
			case 0:
				r = session_request_function(
					s, id, "f", "arg", now,
					data[i + 1] * 100u);
				break;
			case 1:
				r = session_request_variable(
					s, id, "v", now, data[i + 1] * 100u);
				break;
			case 2:
				r = session_request_signal(s, id, data[i] & 4,
							   now,
							   data[i + 1] * 100u);
				break;
			default:
				r = session_request_describe(
					s, id, data[i] >> 4, now,
					data[i + 1] * 100u);
				break;
			}
			if (r == 0)
				st.accepted++;
			id++;
			i += 2;
			break;
		case 0x02:
			if (size - i < 1)
				goto out;
			now += data[i++] * 100u;
			(void)session_tick(s, now);
			break;
		case 0x03:
			if (size - i < 1)
				goto out;
			len = data[i++];
			if (len > size - i)
				len = size - i;
			memcpy(text, data + i, len);
			text[len] = '\0';
			i += len;
			(void)session_send_event(s, text, (const uint8_t *)text,
						 len, len * 7u, len & 1);
			break;
		default:
			break;
		}
	}
out:
	session_abort_requests(s);
	if (st.done != st.accepted || session_pending(s) != 0)
		abort();
	session_free(s);
	return 0;
}
