/* SPDX-License-Identifier: MIT */
/*
 * The OTA sender (src/healer/ota.c) against a scripted device: the test
 * answers each message by hand (refusals, lost chunks, duplicate and late
 * ACKs, ChunkMissed rounds, a legacy device-sent PUT u, timeouts,
 * disconnects, hostile lists); the shared image and its cache, the CRCs,
 * the validation JSON. The recording ops are ota_script.[ch]; the real
 * device library's side is check_ota_device.c.
 * Time is a number the test advances; no sockets, no sleeps.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "coap/pcoap.h"
#include "err.h"
#include "healer/crc32.h"
#include "healer/ota.h"
#include "healer/otacache.h"
#include "ota_script.h"

/* ==== the scripted device ============================================ */

static void
decode_sent(size_t i, struct pcoap_msg *m)
{
	ck_assert_uint_lt(i, n_sent);
	ck_assert_int_eq(pcoap_msg_decode(sent[i].b, sent[i].len, m), PCOAP_OK);
}

static int
sent_kind(size_t i)
{
	struct pcoap_msg m;

	decode_sent(i, &m);
	return pcoap_particle_kind(&m);
}

/* Feed a device message; returns whether the machine took it. */
static bool
feed(const uint8_t *buf, size_t len)
{
	struct pcoap_msg m;

	ck_assert_int_eq(pcoap_msg_decode(buf, len, &m), PCOAP_OK);
	return ota_input(o, &m, pcoap_particle_kind(&m), now_ms);
}

static bool
dev_ack(uint16_t mid, uint8_t code, int tok, const char *payload)
{
	uint8_t b[700], t = (uint8_t)tok;
	size_t n;

	if (code == PCOAP_CODE_EMPTY) {
		ck_assert_int_eq(pcoap_build_empty_ack(b, sizeof(b), &n, mid),
				 PCOAP_OK);
		return feed(b, n);
	}
	ck_assert_int_eq(pcoap_build_reply(b, sizeof(b), &n, PCOAP_ACK, code,
					   mid, tok >= 0 ? &t : NULL,
					   tok >= 0 ? 1 : 0,
					   (const uint8_t *)payload,
					   payload ? strlen(payload) : 0),
			 PCOAP_OK);
	return feed(b, n);
}

static bool
dev_rst(uint16_t mid)
{
	uint8_t b[4] = {0x70, 0x00, (uint8_t)(mid >> 8), (uint8_t)mid};

	return feed(b, sizeof(b));
}

static bool
dev_sep(uint8_t code, uint8_t tok, const uint8_t *payload, size_t len)
{
	uint8_t b[64];
	size_t n;

	ck_assert_int_eq(pcoap_build_reply(b, sizeof(b), &n, PCOAP_NON, code,
					   7000, &tok, 1, payload, len),
			 PCOAP_OK);
	return feed(b, n);
}

static bool
dev_missed(uint8_t type, const uint16_t *idx, size_t n_idx)
{
	uint8_t b[4096];
	size_t n;

	ck_assert_int_eq(pcoap_build_chunk_missed(b, sizeof(b), &n, type, 7100,
						  idx, n_idx),
			 PCOAP_OK);
	return feed(b, n);
}

/* The UpdateBegin at sent[i]: its mid, token and payload. */
static void
get_begin(size_t i, uint16_t *mid, uint8_t *tok, struct pcoap_update_begin *ub)
{
	struct pcoap_msg m;

	decode_sent(i, &m);
	ck_assert_int_eq(m.type, PCOAP_CON);
	ck_assert_int_eq(pcoap_parse_update_begin(&m, tok, ub), PCOAP_OK);
	*mid = m.mid;
}

static void
get_chunk(size_t i, struct pcoap_msg *m, struct pcoap_chunk *c)
{
	decode_sent(i, m);
	ck_assert_int_eq(pcoap_parse_chunk(m, c), PCOAP_OK);
	ck_assert_uint_eq(pcoap_crc32(0, c->data.p, c->data.len), c->crc);
}

/* Start, accept, UpdateReady with the given flags. */
static void
start_accept(uint8_t ready_flags)
{
	struct pcoap_update_begin ub;
	uint16_t mid;
	uint8_t tok, f = ready_flags;

	ck_assert_int_eq(ota_start(o, now_ms), 0);
	ck_assert_uint_eq(n_sent, 1);
	get_begin(0, &mid, &tok, &ub);
	ck_assert(dev_ack(mid, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert_int_eq(n_started, 0);
	ck_assert(dev_sep(PCOAP_CODE_CHANGED, tok, &f, 1));
	ck_assert_int_eq(n_started, 1);
}

/* The last sent message must be UpdateDone; return its mid and token. */
static void
expect_done(uint16_t *mid, uint8_t *tok)
{
	struct pcoap_msg m;

	decode_sent(n_sent - 1, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_UPDATE_DONE);
	ck_assert_int_eq(m.type, PCOAP_CON);
	ck_assert_uint_eq(m.token.len, 1);
	*mid = m.mid;
	*tok = m.token.p[0];
}

static const char ok_json[] =
	"{\"r\":\"ok\",\"u\":{\"s\":2000,\"l\":\"t\",\"vc\":30,\"vv\":30,"
	"\"f\":\"u\",\"n\":\"1\",\"v\":7,\"p\":3,\"d\":[]}}";

START_TEST(test_ota_begin_payload_exact)
{
	struct ota_params p = {.fast = true};
	struct pcoap_update_begin ub;
	struct pcoap_msg m;
	uint16_t mid;
	uint8_t tok;

	setup_ota(20000, &p);
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	get_begin(0, &mid, &tok, &ub);
	decode_sent(0, &m);
	/* §3.7: exactly 20 bytes, payload marker at byte 7 */
	ck_assert_uint_eq(sent[0].len, 20);
	ck_assert_uint_eq(sent[0].b[7], 0xff);
	ck_assert_uint_eq(m.payload.len, PCOAP_UPDATE_BEGIN_LEN);
	ck_assert_uint_eq(ub.flags, PCOAP_UPDATE_F_FAST);
	ck_assert_uint_eq(ub.chunk_size, 512);
	ck_assert_uint_eq(ub.file_size, 20000);
	ck_assert_uint_eq(ub.store, 0);
	ck_assert_uint_eq(ub.address, 0);
	ck_assert_uint_eq(mid, 100);
	ck_assert_uint_ne(tok, 0);
	ck_assert(ota_token_in_use(o, tok));
	ck_assert_uint_eq(ota_chunk_count(o), 40);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_fast_happy)
{
	struct ota_params p = {.fast = true};
	struct pcoap_chunk c;
	struct pcoap_msg m;
	uint16_t mid;
	uint8_t tok, pad[512];
	size_t i;

	setup_ota(2000, &p); /* 4 chunks, the last 464 bytes + padding */
	start_accept(1);
	ck_assert_uint_eq(n_sent, 1 + 4 + 1);
	for (i = 0; i < 4; i++) {
		get_chunk(1 + i, &m, &c);
		ck_assert_int_eq(m.type, PCOAP_CON);
		ck_assert(c.has_index);
		ck_assert_uint_eq(c.index, i);
		ck_assert_uint_eq(c.data.len, 512);
		if (i < 3)
			ck_assert_mem_eq(c.data.p, img_buf + i * 512, 512);
	}
	/* the last chunk is zero-padded, its CRC over the padded bytes */
	get_chunk(4, &m, &c);
	memset(pad, 0, sizeof(pad));
	memcpy(pad, img_buf + 1536, 464);
	ck_assert_mem_eq(c.data.p, pad, 512);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok, ok_json));
	ck_assert_int_eq(n_success, 1);
	ck_assert_int_eq(n_failed, 0);
	ck_assert_str_eq(last_json, ok_json);
	ck_assert(ota_finished(o));
	/* a duplicate of the final ACK is not the machine's any more */
	ck_assert(!dev_ack(mid, PCOAP_CODE_CHANGED, tok, ok_json));
	ck_assert_int_eq(n_success, 1);
	ck_assert_int_eq(ota_tick(o, now_ms + 999999), -1);
	teardown_ota();
}
END_TEST

/* Refusals of UpdateBegin, per device generation (§5.3). */
static const struct {
	const char *what;
	uint8_t code;
	int tok; /* -1: none */
	enum ota_fail want;
} refusals[] = {
	{"<=1.1.x: 4.00 without token", PCOAP_CODE_BAD_REQUEST, -1,
	 OTA_FAIL_REFUSED},
	{">=1.2: 5.03 with token", PCOAP_CODE_UNAVAILABLE, 1,
	 OTA_FAIL_DISABLED},
	{"5.00 with token", PCOAP_CODE_INTERNAL, 1, OTA_FAIL_REFUSED},
};

START_TEST(test_ota_refused)
{
	struct pcoap_update_begin ub;
	uint16_t mid;
	uint8_t tok;

	setup_ota(1000, NULL);
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	get_begin(0, &mid, &tok, &ub);
	ck_assert_uint_eq(ub.flags, 0); /* fast not offered */
	ck_assert(dev_ack(mid, refusals[_i].code,
			  refusals[_i].tok >= 0 ? tok : -1, NULL));
	ck_assert_msg(n_failed == 1, "%s", refusals[_i].what);
	ck_assert_int_eq(last_reason, refusals[_i].want);
	ck_assert_int_eq(n_started, 0);
	ck_assert_uint_eq(n_sent, 1); /* nothing else went out */
	ck_assert_int_eq(ota_tick(o, now_ms + 100000), -1);
	ck_assert_int_eq(n_failed, 1);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_ready_never_comes)
{
	struct pcoap_update_begin ub;
	uint16_t mid;
	uint8_t tok;
	int64_t next;
	size_t i;

	setup_ota(1000, NULL);
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	get_begin(0, &mid, &tok, &ub);
	ck_assert(dev_ack(mid, PCOAP_CODE_EMPTY, -1, NULL)); /* accepted */
	for (i = 1; i < OTA_BEGIN_TRIES; i++) {
		next = ota_tick(o, now_ms);
		ck_assert_int_eq(next, OTA_BEGIN_TIMEOUT_MS);
		now_ms += (uint64_t)next - 1;
		ck_assert_int_ge(ota_tick(o, now_ms), 0);
		ck_assert_uint_eq(n_sent, i); /* not yet */
		now_ms += 1;
		ck_assert_int_ge(ota_tick(o, now_ms), 0);
		ck_assert_uint_eq(n_sent, i + 1);
		ck_assert_int_eq(sent_kind(i), PCOAP_KIND_UPDATE_BEGIN);
	}
	/* the last try waits longer, then the transfer fails */
	ck_assert_int_eq(ota_tick(o, now_ms), OTA_BEGIN_LAST_MS);
	now_ms += OTA_BEGIN_LAST_MS;
	ck_assert_int_eq(ota_tick(o, now_ms), -1);
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(last_reason, OTA_FAIL_TIMEOUT);
	ck_assert_uint_eq(n_sent, OTA_BEGIN_TRIES);
	teardown_ota();
}
END_TEST

/* UpdateReady for the first try arrives after the resend: accepted once. */
START_TEST(test_ota_late_ready_and_duplicates)
{
	struct ota_params p = {.fast = true};
	struct pcoap_update_begin ub;
	uint16_t mid0, mid1;
	uint8_t tok0, tok1, f = 1;
	size_t before;

	setup_ota(1024, &p);
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	now_ms += OTA_BEGIN_TIMEOUT_MS;
	ota_tick(o, now_ms);
	ck_assert_uint_eq(n_sent, 2);
	get_begin(0, &mid0, &tok0, &ub);
	get_begin(1, &mid1, &tok1, &ub);
	ck_assert_uint_ne(tok0, tok1);
	ck_assert(dev_ack(mid0, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert(dev_sep(PCOAP_CODE_CHANGED, tok0, &f, 1));
	ck_assert_int_eq(n_started, 1);
	before = n_sent;
	ck_assert_uint_eq(before, 2 + 2 + 1); /* 2 chunks + UpdateDone */
	/* the second try's ACK and a duplicate ACK: eaten, nothing happens;
	   its UpdateReady is no longer the machine's (tokens get reused) */
	ck_assert(dev_ack(mid1, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert(!dev_sep(PCOAP_CODE_CHANGED, tok1, &f, 1));
	ck_assert(!ota_token_in_use(o, tok1));
	ck_assert(dev_ack(mid0, PCOAP_CODE_EMPTY, -1, NULL));
	/* a late refusal can no longer fail it */
	ck_assert(dev_ack(mid1, PCOAP_CODE_UNAVAILABLE, tok1, NULL));
	ck_assert_int_eq(n_started, 1);
	ck_assert_int_eq(n_failed, 0);
	ck_assert_uint_eq(n_sent, before);
	/* unrelated messages are the session's */
	ck_assert(!dev_ack(4242, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert(!dev_sep(PCOAP_CODE_CHANGED, 0xee, NULL, 0));
	teardown_ota();
}
END_TEST

START_TEST(test_ota_disconnect_mid_transfer)
{
	struct ota_params p = {.fast = true};
	uint16_t mid;
	uint8_t tok;

	setup_ota(8000, &p);
	budget_on = true;
	budget = 20 + 3 * 528; /* UpdateBegin and three chunks fit */
	start_accept(1);
	ck_assert_uint_eq(n_sent, 1 + 3);
	ota_abort(o, OTA_FAIL_DISCONNECTED, "the device disconnected");
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(last_reason, OTA_FAIL_DISCONNECTED);
	ck_assert_str_eq(last_text, "the device disconnected");
	/* nothing more: not on pump, tick, input or a second abort */
	budget = 100000;
	ota_pump(o, now_ms);
	ck_assert_int_eq(ota_tick(o, now_ms + 1), -1);
	ota_abort(o, OTA_FAIL_TIMEOUT, NULL);
	ck_assert_uint_eq(n_sent, 4);
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(n_success, 0);
	(void)mid;
	(void)tok;
	teardown_ota();
}
END_TEST

/* Fast mode: ACKs of chunks, duplicated, and late ones after the end,
   change nothing: no resend, no failure, one success. */
START_TEST(test_ota_fast_chunk_acks_duplicated_and_late)
{
	struct pcoap_chunk c;
	struct pcoap_msg m;
	uint16_t mids[4], mid;
	uint8_t tok;
	size_t i, before;

	setup_ota(2048, &(struct ota_params){.fast = true});
	start_accept(1);
	ck_assert_uint_eq(n_sent, 1 + 4 + 1);
	for (i = 0; i < 4; i++) {
		get_chunk(1 + i, &m, &c);
		mids[i] = m.mid;
	}
	before = n_sent;
	for (i = 0; i < 4; i++) {
		(void)dev_ack(mids[i], PCOAP_CODE_EMPTY, -1, NULL);
		(void)dev_ack(mids[i], PCOAP_CODE_EMPTY, -1, NULL);
	}
	ck_assert_uint_eq(n_sent, before);
	ck_assert_int_eq(n_failed, 0);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok, ok_json));
	ck_assert_int_eq(n_success, 1);
	/* late: after the end nothing is the machine's */
	ck_assert(!dev_ack(mids[3], PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert(!dev_ack(mid, PCOAP_CODE_CHANGED, tok, ok_json));
	ck_assert_uint_eq(n_sent, before);
	ck_assert_int_eq(n_success, 1);
	ck_assert_int_eq(n_failed, 0);
	teardown_ota();
}
END_TEST

/* A slow socket: never more than the budget queued; pump resumes. */
START_TEST(test_ota_output_budget)
{
	struct ota_params p = {.fast = true};
	struct pcoap_chunk c;
	struct pcoap_msg m;
	size_t i, rounds = 0;
	uint16_t mid;
	uint8_t tok;

	setup_ota(16 * 512, &p);
	budget_on = true;
	budget = 600; /* 1 chunk message (528 bytes) at a time */
	start_accept(1);
	while (n_sent < 1 + 16) {
		ck_assert_uint_eq(n_sent, 2 + rounds);
		ota_pump(o, now_ms); /* no room: nothing */
		ck_assert_uint_eq(n_sent, 2 + rounds);
		budget = 600;
		ota_pump(o, now_ms);
		rounds++;
	}
	/* UpdateDone needs room too? it is small and not budgeted */
	ck_assert_uint_eq(rounds, 15);
	for (i = 0; i < 16; i++) {
		get_chunk(1 + i, &m, &c);
		ck_assert_uint_eq(c.index, i);
	}
	budget = 600;
	ota_pump(o, now_ms);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok, NULL));
	ck_assert_int_eq(n_success, 1);
	ck_assert_int_ge(n_progress, 5);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_normal_crc_resend)
{
	struct pcoap_chunk c;
	struct pcoap_msg m;
	uint16_t mid;
	uint8_t tok;

	setup_ota(1500, NULL); /* 3 chunks */
	start_accept(0);
	ck_assert_uint_eq(n_sent, 2); /* one chunk at a time */
	get_chunk(1, &m, &c);
	ck_assert(!c.has_index);
	ck_assert(ota_token_in_use(o, c.token));
	/* empty ACK, then 4.00: the same chunk again */
	ck_assert(dev_ack(m.mid, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert_uint_eq(n_sent, 2);
	ck_assert(dev_sep(PCOAP_CODE_BAD_REQUEST, c.token, NULL, 0));
	ck_assert_uint_eq(n_sent, 3);
	get_chunk(2, &m, &c);
	ck_assert_mem_eq(c.data.p, img_buf, 512);
	/* a late duplicate of the old reply is not taken */
	ck_assert(!dev_sep(PCOAP_CODE_BAD_REQUEST, c.token - 1, NULL, 0));
	ck_assert(dev_ack(m.mid, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert(dev_sep(PCOAP_CODE_CHANGED, c.token, NULL, 0));
	ck_assert_uint_eq(n_sent, 4);
	get_chunk(3, &m, &c);
	ck_assert_mem_eq(c.data.p, img_buf + 512, 512);
	/* piggy-backed 2.04 works too */
	ck_assert(dev_ack(m.mid, PCOAP_CODE_CHANGED, c.token, NULL));
	get_chunk(4, &m, &c);
	ck_assert(dev_ack(m.mid, PCOAP_CODE_EMPTY, -1, NULL));
	ck_assert(dev_sep(PCOAP_CODE_CHANGED, c.token, NULL, 0));
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok, ok_json));
	ck_assert_int_eq(n_success, 1);
	ck_assert_uint_eq(n_sent, 6);
	teardown_ota();
}
END_TEST

/* Normal mode over more chunks than tokens: every reply still matches. */
START_TEST(test_ota_normal_token_wrap)
{
	struct pcoap_chunk c;
	struct pcoap_msg m;
	uint16_t mid;
	uint8_t tok;
	size_t i;

	setup_ota(300 * 64, &(struct ota_params){.chunk_size = 64});
	start_accept(0);
	for (i = 0; i < 300; i++) {
		ck_assert_uint_eq(n_sent, 2 + i);
		get_chunk(n_sent - 1, &m, &c);
		ck_assert(dev_ack(m.mid, PCOAP_CODE_EMPTY, -1, NULL));
		ck_assert(dev_sep(PCOAP_CODE_CHANGED, c.token, NULL, 0));
	}
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok, NULL));
	ck_assert_int_eq(n_success, 1);
	ck_assert(!ota_token_in_use(o, tok));
	teardown_ota();
}
END_TEST

START_TEST(test_ota_normal_crc_limit_and_silence)
{
	struct pcoap_chunk c;
	struct pcoap_msg m;
	int i;

	setup_ota(1500, NULL);
	start_accept(0);
	for (i = 0; i <= OTA_CHUNK_RETRIES; i++) {
		get_chunk(n_sent - 1, &m, &c);
		ck_assert(dev_sep(PCOAP_CODE_BAD_REQUEST, c.token, NULL, 0));
	}
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(last_reason, OTA_FAIL_MISSED);
	ck_assert_uint_eq(n_sent, 2 + OTA_CHUNK_RETRIES);
	teardown_ota();

	/* a device that stops answering a chunk */
	setup_ota(1500, NULL);
	start_accept(0);
	ck_assert_int_eq(ota_tick(o, now_ms), OTA_REPLY_TIMEOUT_MS);
	now_ms += OTA_REPLY_TIMEOUT_MS;
	ck_assert_int_eq(ota_tick(o, now_ms), -1);
	ck_assert_int_eq(last_reason, OTA_FAIL_TIMEOUT);
	teardown_ota();
}
END_TEST

/* Lost chunks: 4.00 + ChunkMissed (CON, ACKed) + resends + done again. */
START_TEST(test_ota_missed_rounds)
{
	struct ota_params p = {.fast = true};
	static const uint16_t lost[] = {1, 7};
	struct pcoap_chunk c;
	struct pcoap_msg m;
	uint16_t mid;
	uint8_t tok;
	size_t base;

	setup_ota(10 * 256,
		  &(struct ota_params){.fast = true, .chunk_size = 256});
	(void)p;
	start_accept(1);
	ck_assert_uint_eq(n_sent, 1 + 10 + 1);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_BAD_REQUEST, tok, NULL));
	ck_assert_uint_eq(n_sent, 12); /* waits for the list */
	ck_assert(dev_missed(PCOAP_CON, lost, 2));
	/* empty ACK of the CON ChunkMissed, 2 resends, UpdateDone */
	ck_assert_uint_eq(n_sent, 12 + 1 + 2 + 1);
	decode_sent(12, &m);
	ck_assert_int_eq(pcoap_particle_kind(&m), PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(m.mid, 7100);
	get_chunk(13, &m, &c);
	ck_assert(c.has_index);
	ck_assert_uint_eq(c.index, 1);
	ck_assert_mem_eq(c.data.p, img_buf + 256, 256);
	get_chunk(14, &m, &c);
	ck_assert_uint_eq(c.index, 7);
	expect_done(&mid, &tok);
	/* 2.x: NON ChunkMissed before the 4.00 ACK, no ACK from us */
	base = n_sent;
	ck_assert(dev_missed(PCOAP_NON, lost + 1, 1));
	ck_assert_uint_eq(n_sent, base);
	ck_assert(dev_ack(mid, PCOAP_CODE_BAD_REQUEST, tok, NULL));
	ck_assert_uint_eq(n_sent, base + 2);
	get_chunk(base, &m, &c);
	ck_assert_uint_eq(c.index, 7);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok, ok_json));
	ck_assert_int_eq(n_success, 1);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_missed_rounds_bounded)
{
	static const uint16_t lost[] = {0};
	uint16_t mid;
	uint8_t tok;
	int i;

	setup_ota(2048, &(struct ota_params){.fast = true, .done_rounds = 3});
	start_accept(1);
	for (i = 0; i < 10 && n_failed == 0; i++) {
		expect_done(&mid, &tok);
		ck_assert(dev_ack(mid, PCOAP_CODE_BAD_REQUEST, tok, NULL));
		ck_assert(dev_missed(PCOAP_NON, lost, 1));
	}
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(last_reason, OTA_FAIL_MISSED);
	ck_assert_int_eq(i, 4); /* 1 + 3 rounds of UpdateDone */
	teardown_ota();
}
END_TEST

/* A list longer than any device sends, out-of-range and odd ones. */
START_TEST(test_ota_missed_hostile)
{
	static uint16_t many[1000];
	uint8_t b[64];
	uint16_t mid;
	uint8_t tok;
	size_t i, n, base;

	setup_ota(100 * 256,
		  &(struct ota_params){.fast = true, .chunk_size = 256});
	start_accept(1);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_BAD_REQUEST, tok, NULL));
	/* odd payload: taken and ignored */
	ck_assert_int_eq(pcoap_build_chunk_missed(b, sizeof(b), &n, PCOAP_NON,
						  1, many, 1),
			 PCOAP_OK);
	b[n++] = 0x01;
	base = n_sent;
	ck_assert(feed(b, n));
	ck_assert_uint_eq(n_sent, base);
	/* 1000 indexes, every other one out of range: only the first
	   OTA_MISSED_PER_MSG read, the valid ones of those resent */
	for (i = 0; i < 1000; i++)
		many[i] = (uint16_t)(i % 2 ? 60000 : i / 2);
	ck_assert(dev_missed(PCOAP_NON, many, 1000));
	ck_assert_uint_eq(n_sent, base + OTA_MISSED_PER_MSG / 2 + 1);
	ck_assert_int_eq(sent_kind(n_sent - 1), PCOAP_KIND_UPDATE_DONE);
	ck_assert_int_eq(n_failed, 0);
	teardown_ota();
}
END_TEST

/* 4.00 to UpdateDone and no list: the device refuses the image. */
START_TEST(test_ota_done_refused_no_list)
{
	uint16_t mid;
	uint8_t tok;

	setup_ota(1024, &(struct ota_params){.fast = true});
	start_accept(1);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_BAD_REQUEST, tok, NULL));
	ck_assert_int_eq(ota_tick(o, now_ms), OTA_MISSED_WAIT_MS);
	now_ms += OTA_MISSED_WAIT_MS;
	ck_assert_int_eq(ota_tick(o, now_ms), -1);
	ck_assert_int_eq(last_reason, OTA_FAIL_REJECTED);
	teardown_ota();

	/* no answer at all to UpdateDone */
	setup_ota(1024, &(struct ota_params){.fast = true});
	start_accept(1);
	now_ms += OTA_REPLY_TIMEOUT_MS;
	ck_assert_int_eq(ota_tick(o, now_ms), -1);
	ck_assert_int_eq(last_reason, OTA_FAIL_TIMEOUT);
	teardown_ota();

	/* RST of UpdateDone */
	setup_ota(1024, &(struct ota_params){.fast = true});
	start_accept(1);
	expect_done(&mid, &tok);
	ck_assert(dev_rst(mid));
	ck_assert_int_eq(last_reason, OTA_FAIL_PROTO);
	teardown_ota();
}
END_TEST

/* Validation results (§5.6) in the UpdateDone ACK. */
static const struct {
	const char *json;
	bool ok;
} results[] = {
	{"{\"r\":\"ok\",\"u\":{\"vc\":30,\"vv\":30}}", true},
	{"{\"r\":\"ok\",\"u\":{\"vc\":30,\"vv\":22}}", false},
	{"{\"r\":\"error\"}", false},
	{"{\"r\":\"ok\"}", true},
	{"{\"r\":\"ok\",\"u\":{\"s\":2621", true}, /* truncated at 255 */
	{"", true},				   /* older devices: none */
};

START_TEST(test_ota_validation_result)
{
	uint16_t mid;
	uint8_t tok;

	setup_ota(1024, &(struct ota_params){.fast = true});
	start_accept(1);
	expect_done(&mid, &tok);
	ck_assert(dev_ack(mid, PCOAP_CODE_CHANGED, tok,
			  results[_i].json[0] ? results[_i].json : NULL));
	if (results[_i].ok) {
		ck_assert_int_eq(n_success, 1);
	} else {
		ck_assert_int_eq(n_failed, 1);
		ck_assert_int_eq(last_reason, OTA_FAIL_REJECTED);
		ck_assert_str_eq(last_json, results[_i].json);
	}
	teardown_ota();
}
END_TEST

/* Legacy 0.7.x: the device finishes by itself with NON PUT u + JSON. */
START_TEST(test_ota_legacy_device_done)
{
	static const uint16_t lost[] = {2};
	uint8_t b[256];
	uint16_t mid;
	uint8_t tok;
	size_t n;

	setup_ota(2048, &(struct ota_params){.fast = true});
	start_accept(1);
	expect_done(&mid, &tok);
	/* legacy: no 4.00 first, the list repeats */
	ck_assert(dev_missed(PCOAP_CON, lost, 1));
	ck_assert(dev_missed(PCOAP_CON, lost, 1));
	ck_assert(dev_ack(mid, PCOAP_CODE_BAD_REQUEST, tok, NULL));
	ck_assert_int_eq(pcoap_build_update_done(
				 b, sizeof(b), &n, PCOAP_NON, 9, NULL, 0,
				 (const uint8_t *)ok_json, strlen(ok_json)),
			 PCOAP_OK);
	ck_assert(feed(b, n));
	ck_assert_int_eq(n_success, 1);
	ck_assert_str_eq(last_json, ok_json);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_sizes)
{
	struct ota_params p;
	struct ota *x;
	struct ota_image *im;
	struct pcoap_chunk c;
	struct pcoap_msg m;
	size_t i;

	/* a chunk size over the message limit is clamped to 767 - 16 */
	setup_ota(3000, &(struct ota_params){.fast = true, .chunk_size = 1024});
	ck_assert_uint_eq(ota_chunk_size(o), 751);
	start_accept(1);
	for (i = 1; i < n_sent - 1; i++)
		ck_assert_uint_le(sent[i].len, PCOAP_DEVICE_RX_MAX);
	teardown_ota();

	/* a 3.0+ device with a larger limit */
	setup_ota(3000,
		  &(struct ota_params){.chunk_size = 1024, .max_msg = 1100});
	ck_assert_uint_eq(ota_chunk_size(o), 1024);
	teardown_ota();

	/* no padding past the device's largest binary */
	setup_ota(1000, &(struct ota_params){.fast = true, .max_binary = 1000});
	start_accept(1);
	get_chunk(2, &m, &c);
	ck_assert_uint_eq(c.data.len, 1000 - 512);
	teardown_ota();

	/* refused at creation: too big, too many chunks, empty */
	im = ota_image_new(img_buf, 2000);
	memset(&p, 0, sizeof(p));
	p.max_binary = 1999;
	ck_assert_int_eq(ota_new(&t_ops, NULL, im, &p, &x), CINDER_ERR_TOO_BIG);
	ck_assert_ptr_null(x);
	ota_image_unref(im);
	im = ota_image_new_take(calloc(1, 70000), 70000);
	p.max_binary = 0;
	p.chunk_size = 1;
	ck_assert_int_eq(ota_new(&t_ops, NULL, im, &p, &x), CINDER_ERR_TOO_BIG);
	ota_image_unref(im);
	im = ota_image_new(img_buf, 0);
	ck_assert_int_eq(ota_new(&t_ops, NULL, im, NULL, &x), CINDER_ERR_INVAL);
	ota_image_unref(im);
}
END_TEST

START_TEST(test_ota_send_failure)
{
	setup_ota(1024, NULL);
	send_fails = true;
	ck_assert_int_ne(ota_start(o, now_ms), 0);
	ck_assert_int_eq(n_failed, 1);
	/* the socket refused the write: the device is gone */
	ck_assert_int_eq(last_reason, OTA_FAIL_DISCONNECTED);
	ck_assert_int_eq(ota_tick(o, now_ms), -1);
	teardown_ota();

	/* any other send error is ours */
	setup_ota(1024, NULL);
	send_fails = true;
	send_fail_rc = CINDER_ERR_INTERNAL;
	ck_assert_int_ne(ota_start(o, now_ms), 0);
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(last_reason, OTA_FAIL_PROTO);
	send_fail_rc = CINDER_ERR_IO;
	teardown_ota();

	/* the whole-transfer limit */
	setup_ota(1024, &(struct ota_params){.total_timeout_ms = 5000,
					     .begin_timeout_ms = 60000});
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	ck_assert_int_eq(ota_tick(o, now_ms), 5000);
	now_ms += 5000;
	ck_assert_int_eq(ota_tick(o, now_ms), -1);
	ck_assert_int_eq(last_reason, OTA_FAIL_TIMEOUT);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_image_shared)
{
	struct ota *a, *b;
	struct ota_image *im;

	reset_script();
	im = ota_image_new(img_buf, 5000);
	ck_assert_int_eq(ota_new(&t_ops, NULL, im, NULL, &a), 0);
	ck_assert_int_eq(ota_new(&t_ops, NULL, im, NULL, &b), 0);
	ck_assert_uint_eq(im->refs, 3);
	ota_free(a);
	ck_assert_uint_eq(im->refs, 2);
	ota_image_unref(im);
	ck_assert_uint_eq(im->refs, 1); /* still alive for b */
	ota_free(b);
}
END_TEST

static uint8_t *
dup_img(size_t len)
{
	uint8_t *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	memcpy(p, img_buf, len);
	return p;
}

/* Two transfers of one binary share one cached image; it leaves the
   cache when the last transfer ends. */
START_TEST(test_ota_cache_shared)
{
	struct ota_cache *c = ota_cache_new(1 << 20);
	struct ota_image *i1, *i2;
	struct ota *a, *b;
	uint8_t sha[32];

	reset_script();
	memset(sha, 0xa5, sizeof(sha));
	ck_assert_ptr_null(ota_cache_get(c, sha));
	/* the first upload makes the image, the second finds it (and its
	   own copy of the bytes is dropped) */
	ck_assert_int_eq(ota_cache_put(c, sha, dup_img(5000), 5000, true, &i1),
			 0);
	ck_assert_int_eq(ota_cache_put(c, sha, dup_img(5000), 5000, true, &i2),
			 0);
	ck_assert_ptr_eq(i1, i2);
	ck_assert_uint_eq(ota_cache_count(c), 1);
	ck_assert_uint_eq(ota_cache_bytes(c), 5000);
	ck_assert_int_eq(ota_new(&t_ops, NULL, i1, NULL, &a), 0);
	ck_assert_int_eq(ota_new(&t_ops, NULL, i2, NULL, &b), 0);
	ck_assert_uint_eq(i1->refs, 4);
	/* the callers drop theirs: the transfers keep it alive */
	ota_image_unref(i1);
	ota_image_unref(i2);
	ck_assert_ptr_eq(ota_cache_get(c, sha), i1);
	ota_image_unref(i1);
	ck_assert_uint_eq(i1->refs, 2);
	ota_free(a);
	ck_assert_uint_eq(ota_cache_count(c), 1);
	ck_assert_uint_eq(i1->refs, 1);
	ota_free(b); /* the last reference: freed and forgotten */
	ck_assert_uint_eq(ota_cache_count(c), 0);
	ck_assert_uint_eq(ota_cache_bytes(c), 0);
	ck_assert_ptr_null(ota_cache_get(c, sha));
	/* copied (not taken) bytes make a fresh entry again */
	ck_assert_int_eq(ota_cache_put(c, sha, img_buf, 100, false, &i1), 0);
	ck_assert_uint_eq(ota_cache_bytes(c), 100);
	ota_image_unref(i1);
	ck_assert_uint_eq(ota_cache_count(c), 0);
	ota_cache_free(c);
}
END_TEST

/* The bound: a new image that would pass it is refused, nothing
   changes; room comes back when an image is freed. */
START_TEST(test_ota_cache_bound)
{
	struct ota_cache *c = ota_cache_new(8000);
	struct ota_image *ia, *ib, *ia2;
	uint8_t sa[32], sb[32];

	memset(sa, 1, sizeof(sa));
	memset(sb, 2, sizeof(sb));
	ck_assert_uint_eq(ota_cache_max(c), 8000);
	ck_assert_int_eq(ota_cache_put(c, sa, dup_img(5000), 5000, true, &ia),
			 0);
	ck_assert_int_eq(ota_cache_put(c, sb, dup_img(5000), 5000, true, &ib),
			 CINDER_ERR_BUSY);
	ck_assert_ptr_null(ib);
	ck_assert_int_eq(ota_cache_put(c, sb, img_buf, 9000, false, &ib),
			 CINDER_ERR_BUSY);
	ck_assert_int_eq(ota_cache_put(c, sb, img_buf, 0, false, &ib),
			 CINDER_ERR_INVAL);
	/* the cached one is still served at the bound */
	ck_assert_int_eq(ota_cache_put(c, sa, dup_img(5000), 5000, true, &ia2),
			 0);
	ck_assert_ptr_eq(ia, ia2);
	ck_assert_uint_eq(ota_cache_count(c), 1);
	ck_assert_uint_eq(ota_cache_bytes(c), 5000);
	ota_image_unref(ia2);
	ota_image_unref(ia);
	ck_assert_int_eq(ota_cache_put(c, sb, dup_img(3000), 3000, true, &ib),
			 0);
	ck_assert_int_eq(ota_cache_put(c, sa, dup_img(5000), 5000, true, &ia),
			 0);
	ck_assert_uint_eq(ota_cache_bytes(c), 8000);
	ota_image_unref(ib);
	/* an image outliving its cache is freed by its last reference */
	ota_cache_free(c);
	ck_assert_uint_eq(ia->refs, 1);
	ota_image_unref(ia);
}
END_TEST

/* The server's sliced CRC-32 equals the shared codec's, at every
   length and alignment, and continues a running value. */
START_TEST(test_ota_crc32_fast)
{
	static uint8_t b[4200];
	size_t off, len, i;
	uint32_t x = 1;

	for (i = 0; i < sizeof(b); i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (uint8_t)(x >> 16);
	}
	ck_assert_uint_eq(crc32_fast(0, (const uint8_t *)"123456789", 9),
			  0xcbf43926u);
	ck_assert_uint_eq(crc32_fast(0, b, 0), 0);
	for (off = 0; off < 9; off++)
		for (len = 0; len < 70; len++)
			ck_assert_uint_eq(crc32_fast(0, b + off, len),
					  pcoap_crc32(0, b + off, len));
	ck_assert_uint_eq(crc32_fast(0, b, 4096), pcoap_crc32(0, b, 4096));
	ck_assert_uint_eq(crc32_fast(crc32_fast(0, b, 1001), b + 1001, 3000),
			  pcoap_crc32(0, b, 4001));
}
END_TEST

/* The CRC cache of a shared image serves only the same chunking. */
START_TEST(test_ota_image_crc_cache)
{
	static const struct ota_params ps[] = {
		{.fast = true},
		{.fast = true, .chunk_size = 256},
		{.fast = true, .max_binary = 2000}, /* 512, not padded */
		{.fast = true},
	};
	struct ota_image *im;
	struct pcoap_chunk c;
	struct pcoap_msg m;
	size_t k, i;

	reset_script();
	for (i = 0; i < 2000; i++)
		img_buf[i] = (uint8_t)(i * 13 + 5);
	im = ota_image_new(img_buf, 2000);
	for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		reset_script();
		ck_assert_int_eq(ota_new(&t_ops, NULL, im, &ps[k], &o), 0);
		start_accept(1);
		ck_assert_uint_eq(n_sent, 1 + ota_chunk_count(o) + 1);
		for (i = 0; i < ota_chunk_count(o); i++)
			get_chunk(1 + i, &m, &c); /* checks data vs CRC */
		ck_assert_ptr_nonnull(im->crcs);
		ck_assert_uint_eq(im->crc_cs, 512);
		teardown_ota();
	}
	ota_image_unref(im);
}
END_TEST

START_TEST(test_ota_parse_result)
{
	const char *why;

	ck_assert_int_eq(ota_parse_result(ok_json, strlen(ok_json), &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(ota_parse_result("{\"r\":\"error\"}", 13, &why),
			 CINDER_ERR_INVAL);
	ck_assert_ptr_nonnull(why);
	ck_assert_int_eq(ota_parse_result("[1]", 3, &why),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(ota_parse_result("{\"r\":1}", 7, &why),
			 CINDER_ERR_MALFORMED);
	ck_assert_int_eq(ota_parse_result("", 0, &why), CINDER_ERR_MALFORMED);
}
END_TEST

static Suite *
ota_suite(void)
{
	Suite *s = suite_create("ota");
	TCase *tc = tcase_create("scripted");

	tcase_add_test(tc, test_ota_begin_payload_exact);
	tcase_add_test(tc, test_ota_fast_happy);
	tcase_add_loop_test(tc, test_ota_refused, 0,
			    sizeof(refusals) / sizeof(refusals[0]));
	tcase_add_test(tc, test_ota_ready_never_comes);
	tcase_add_test(tc, test_ota_late_ready_and_duplicates);
	tcase_add_test(tc, test_ota_disconnect_mid_transfer);
	tcase_add_test(tc, test_ota_fast_chunk_acks_duplicated_and_late);
	tcase_add_test(tc, test_ota_output_budget);
	tcase_add_test(tc, test_ota_normal_crc_resend);
	tcase_add_test(tc, test_ota_normal_token_wrap);
	tcase_add_test(tc, test_ota_normal_crc_limit_and_silence);
	tcase_add_test(tc, test_ota_missed_rounds);
	tcase_add_test(tc, test_ota_missed_rounds_bounded);
	tcase_add_test(tc, test_ota_missed_hostile);
	tcase_add_test(tc, test_ota_done_refused_no_list);
	tcase_add_loop_test(tc, test_ota_validation_result, 0,
			    sizeof(results) / sizeof(results[0]));
	tcase_add_test(tc, test_ota_legacy_device_done);
	tcase_add_test(tc, test_ota_sizes);
	tcase_add_test(tc, test_ota_send_failure);
	tcase_add_test(tc, test_ota_image_shared);
	tcase_add_test(tc, test_ota_cache_shared);
	tcase_add_test(tc, test_ota_cache_bound);
	tcase_add_test(tc, test_ota_crc32_fast);
	tcase_add_test(tc, test_ota_image_crc_cache);
	tcase_add_test(tc, test_ota_parse_result);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ota_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
