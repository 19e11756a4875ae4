/* SPDX-License-Identifier: MIT */
/*
 * The fake shared by the session tests (check_session.c,
 * check_session_req.c): an ops table (fake_ops) that records everything
 * the session asks for into F, the recordings' describes and Hello, hex
 * feeding and checks of what the session sent, and ready_session(). Each
 * test starts from setup() (the tcases' fixture).
 */
#ifndef CINDER_TESTS_SESSION_FAKE_H
#define CINDER_TESTS_SESSION_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "coap/pcoap.h"
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
struct fake {
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
};
extern struct fake F;

/* what the session is given as its ops: each call recorded into F */
extern const struct session_ops fake_ops;

/* hex (spaces skipped) into out, at most cap bytes; the bytes written */
size_t unhex(const char *hex, uint8_t *out, size_t cap);
/* session_input() of the bytes a hex string gives */
int feed_hex(struct session *s, const char *hex, uint64_t now);
/* Assert that sent message i is exactly the given bytes. */
void assert_sent_hex(size_t i, const char *hex);
/* sent message i decoded into m; asserts that the device would take it */
void decode_sent(size_t i, struct pcoap_msg *m);
/* sent message i's one-byte token */
uint8_t sent_token(size_t i);
/* sent message i's message ID */
uint16_t sent_mid(size_t i);

/* Build and feed a device message made with a pcoap builder. */
#define FEED(s, now, builder, ...)                                             \
	do {                                                                   \
		uint8_t b_[2048];                                              \
		size_t l_;                                                     \
		ck_assert_int_eq(builder(b_, sizeof(b_), &l_, __VA_ARGS__),    \
				 PCOAP_OK);                                    \
		ck_assert_int_eq(session_input((s), b_, l_, (now)), 0);        \
	} while (0)

/* the describes of the recordings' apps: tinker, and the test app */
extern const char tinker_json[];
extern const char testapp_json[];

/* Device Hello of the recordings: product 3, version 0xffff, platform 3. */
#define HELLO_PAYLOAD "0003ffff00000003"

/* F cleared, its clock at the recordings' time */
void setup(void);
/*
 * A session that exchanged Hellos (device Hello mid 1000, server mids
 * from 500) and got the tinker describe piggy-backed: READY. The device's
 * next message ID is 1001; the server's next is 502; next token 2.
 */
struct session *ready_session(void);

#endif
