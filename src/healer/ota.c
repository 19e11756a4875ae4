/* SPDX-License-Identifier: MIT */
/*
 * OTA sender state machine (protocol.md §5). See ota.h for the contract
 * and docs/internals/ota.md for the states, timeouts and limits.
 *
 *   BEGIN --UpdateReady--> SENDING --all sent--> DONE_WAIT --2.04--> done
 *     |  (resend after a timeout,    ^               |
 *     |   4.00/5.03 = refused)       |             4.00
 *     v                              |               v
 *   failed                 ChunkMissed <------- MISSED_WAIT
 *
 * Loop thread only; no I/O, no clock reads.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "healer/crc32.h"
#include "healer/ota.h"
#include "xmalloc.h"

/* Largest validation JSON kept for the report (the device sends <= 255). */
#define OTA_JSON_MAX 512

enum ota_state {
	OTA_IDLE = 0,	 /* created, nothing sent */
	OTA_BEGIN,	 /* UpdateBegin sent, waiting for UpdateReady */
	OTA_SENDING,	 /* chunks going out */
	OTA_DONE_WAIT,	 /* UpdateDone sent, waiting for its ACK */
	OTA_MISSED_WAIT, /* UpdateDone 4.00: waiting for ChunkMissed */
	OTA_FINISHED,	 /* SUCCESS or FAILED reported */
};

struct ota {
	const struct ota_ops *ops; /* callbacks, borrowed */
	void *arg;		   /* their argument */
	struct ota_image *img;	   /* one reference */
	struct ota_params p;	   /* with defaults filled in */
	enum ota_state state;
	bool fast;	    /* fast mode agreed */
	uint16_t cs;	    /* chunk size */
	uint16_t max_msg;   /* device's largest message */
	uint32_t n_chunks;  /* chunks in the image */
	uint64_t deadline;  /* of the current state; 0 = none */
	uint64_t total_end; /* of the whole transfer */
	/* UpdateBegin tries: IDs and tokens, so late answers still match. */
	uint16_t begin_mid[OTA_BEGIN_TRIES];
	uint8_t begin_tok[OTA_BEGIN_TRIES];
	uint32_t n_begin;
	/* First pass, then resends from the want bitmap. */
	uint32_t next_idx;  /* next chunk of the first pass */
	uint8_t *want;	    /* chunks to resend (bitmap) */
	uint32_t n_want;    /* bits set */
	uint32_t want_scan; /* where the bitmap scan resumes */
	/* Normal mode: the one chunk in flight. */
	bool cur_active;
	uint32_t cur_idx;
	uint16_t cur_mid;
	uint8_t cur_tok;
	bool cur_indexed;     /* sent with the index option */
	bool cur_resend;      /* a ChunkMissed resend */
	uint32_t cur_retries; /* 4.00 answers for this chunk */
	/* UpdateDone. */
	uint16_t done_mid;
	uint8_t done_tok;
	bool done_sent;		  /* done_mid/done_tok valid */
	uint32_t done_sends;	  /* UpdateDone messages sent */
	uint32_t chunks_sent;	  /* chunk messages, resends too */
	uint32_t next_progress;	  /* first-pass count of the next report */
	const uint32_t *crcs;	  /* the image's chunk CRCs, or NULL */
	uint8_t *pad;		  /* the zero-padded last chunk, or NULL */
	uint16_t pad_len;	  /* its length */
	uint8_t msg[OTA_MSG_MAX]; /* outgoing message */
};

const char *
ota_fail_str(enum ota_fail f)
{
	switch (f) {
	case OTA_FAIL_NONE:
		return "none";
	case OTA_FAIL_REFUSED:
		return "refused";
	case OTA_FAIL_DISABLED:
		return "updates disabled";
	case OTA_FAIL_TIMEOUT:
		return "timeout";
	case OTA_FAIL_MISSED:
		return "too many missed chunks";
	case OTA_FAIL_REJECTED:
		return "image rejected";
	case OTA_FAIL_DISCONNECTED:
		return "disconnected";
	case OTA_FAIL_PROTO:
		return "protocol error";
	}
	return "unknown";
}

/* ---- images -------------------------------------------------------- */

struct ota_image *
ota_image_new_take(uint8_t *data, size_t len)
{
	struct ota_image *img;

	img = xcalloc(1, sizeof(*img));
	img->refs = 1;
	img->len = len;
	img->data = data;
	return img;
}

struct ota_image *
ota_image_new(const uint8_t *data, size_t len)
{
	uint8_t *copy;

	copy = xmalloc(len > 0 ? len : 1);
	if (len > 0)
		memcpy(copy, data, len);
	return ota_image_new_take(copy, len);
}

struct ota_image *
ota_image_ref(struct ota_image *img)
{
	img->refs++;
	return img;
}

void
ota_image_unref(struct ota_image *img)
{
	if (img == NULL || --img->refs > 0)
		return;
	if (img->on_free != NULL)
		img->on_free(img->on_free_arg, img);
	free((void *)img->data);
	free(img->crcs);
	free(img);
}

/* ---- helpers -------------------------------------------------------- */

static void
ota_defaults(struct ota_params *p)
{
#define OTA_DEF(f, v)                                                          \
	do {                                                                   \
		if (p->f == 0)                                                 \
			p->f = (v);                                            \
	} while (0)
	OTA_DEF(chunk_size, PCOAP_CHUNK_SIZE_DEFAULT);
	OTA_DEF(max_msg, PCOAP_DEVICE_RX_MAX);
	OTA_DEF(begin_timeout_ms, OTA_BEGIN_TIMEOUT_MS);
	OTA_DEF(begin_tries, OTA_BEGIN_TRIES);
	OTA_DEF(begin_last_ms, OTA_BEGIN_LAST_MS);
	OTA_DEF(reply_timeout_ms, OTA_REPLY_TIMEOUT_MS);
	OTA_DEF(missed_wait_ms, OTA_MISSED_WAIT_MS);
	OTA_DEF(total_timeout_ms, OTA_TOTAL_TIMEOUT_MS);
	OTA_DEF(chunk_retries, OTA_CHUNK_RETRIES);
	OTA_DEF(done_rounds, OTA_DONE_ROUNDS);
#undef OTA_DEF
	if (p->begin_tries > OTA_BEGIN_TRIES)
		p->begin_tries = OTA_BEGIN_TRIES;
	if (p->max_msg > OTA_MSG_MAX)
		p->max_msg = OTA_MSG_MAX;
}

static void
ota_report_ev(struct ota *o, enum ota_event ev)
{
	struct ota_report r;

	memset(&r, 0, sizeof(r));
	r.ev = ev;
	r.fast = o->fast;
	r.chunks_sent = o->chunks_sent;
	r.n_chunks = o->n_chunks;
	if (o->ops->report != NULL)
		o->ops->report(o->arg, &r);
}

static void
ota_finish(struct ota *o, enum ota_fail reason, const char *text,
	   const uint8_t *json, size_t json_len)
{
	char jbuf[OTA_JSON_MAX + 1];
	struct ota_report r;

	if (o->state == OTA_FINISHED)
		return;
	o->state = OTA_FINISHED;
	o->cur_active = false;
	memset(&r, 0, sizeof(r));
	r.ev = reason == OTA_FAIL_NONE ? OTA_EV_SUCCESS : OTA_EV_FAILED;
	r.reason = reason;
	r.text = text;
	r.fast = o->fast;
	r.chunks_sent = o->chunks_sent;
	r.n_chunks = o->n_chunks;
	if (json != NULL && json_len > 0) {
		if (json_len > OTA_JSON_MAX)
			json_len = OTA_JSON_MAX;
		memcpy(jbuf, json, json_len);
		jbuf[json_len] = '\0';
		/* The device's bytes: keep the text printable. */
		for (size_t i = 0; i < json_len; i++) {
			if ((unsigned char)jbuf[i] < 0x20)
				jbuf[i] = ' ';
		}
		r.json = jbuf;
	}
	if (o->ops->report != NULL)
		o->ops->report(o->arg, &r);
}

static void
ota_fail(struct ota *o, enum ota_fail reason, const char *text)
{
	ota_finish(o, reason, text, NULL, 0);
}

/* Send a built message; a send error fails the transfer. A socket
   that refuses a write (CINDER_ERR_IO: reset, broken pipe) means the
   device went, as a close seen on the read side does. */
static int
ota_send(struct ota *o, const uint8_t *msg, size_t len)
{
	int r;

	if ((r = o->ops->send(o->arg, msg, len)) != 0) {
		if (r == CINDER_ERR_IO)
			ota_fail(o, OTA_FAIL_DISCONNECTED,
				 "the device disconnected");
		else
			ota_fail(o, OTA_FAIL_PROTO,
				 "could not send to the device");
		return r;
	}
	return 0;
}

static bool
ota_want_get(const struct ota *o, uint32_t i)
{
	return (o->want[i / 8] >> (i % 8)) & 1;
}

static void
ota_want_set(struct ota *o, uint32_t i, bool on)
{
	uint8_t bit = (uint8_t)(1u << (i % 8));

	if (on == ota_want_get(o, i))
		return;
	if (on) {
		o->want[i / 8] |= bit;
		o->n_want++;
	} else {
		o->want[i / 8] &= (uint8_t)~bit;
		o->n_want--;
	}
}

/* Bytes of chunk i as sent (the padded copy for a short last chunk). */
static const uint8_t *
ota_chunk_data(const struct ota *o, uint32_t i, size_t *len)
{
	size_t off = (size_t)i * o->cs;

	if (i == o->n_chunks - 1 && o->pad != NULL) {
		*len = o->pad_len;
		return o->pad;
	}
	*len = o->img->len - off < o->cs ? o->img->len - off : o->cs;
	return o->img->data + off;
}

/*
 * Build chunk i into o->msg and send it if the output budget allows.
 * @return 1 sent, 0 no room now, or an error (the transfer failed)
 */
static int
ota_send_chunk(struct ota *o, uint32_t i, bool indexed, uint64_t now_ms)
{
	const uint8_t *data;
	size_t len, n;
	int r;

	data = ota_chunk_data(o, i, &len);
	r = pcoap_build_chunk(o->msg, sizeof(o->msg), &n, 0, 0,
			      o->crcs != NULL ? o->crcs[i]
					      : crc32_fast(0, data, len),
			      indexed ? (int32_t)i : -1, data, len);
	if (r != PCOAP_OK || n > o->max_msg) {
		ota_fail(o, OTA_FAIL_PROTO, "could not build a chunk");
		return CINDER_ERR_INTERNAL;
	}
	if (o->ops->writable != NULL && o->ops->writable(o->arg) < n)
		return 0;
	/* Stamp the ID and the 1-byte token (TKL 1: byte 4). */
	o->cur_mid = o->ops->take_mid(o->arg);
	o->cur_tok = o->ops->take_token(o->arg);
	o->msg[2] = (uint8_t)(o->cur_mid >> 8);
	o->msg[3] = (uint8_t)o->cur_mid;
	o->msg[4] = o->cur_tok;
	if ((r = ota_send(o, o->msg, n)) != 0)
		return r;
	o->chunks_sent++;
	if (!o->fast) {
		o->cur_active = true;
		o->cur_idx = i;
		o->cur_indexed = indexed;
		o->deadline = now_ms + o->p.reply_timeout_ms;
	}
	return 1;
}

static int
ota_send_done(struct ota *o, uint64_t now_ms)
{
	size_t n;
	int r;

	if (o->done_sends > o->p.done_rounds) {
		ota_fail(o, OTA_FAIL_MISSED,
			 "the device still misses chunks after the last "
			 "resend round");
		return CINDER_ERR_PROTO;
	}
	o->done_mid = o->ops->take_mid(o->arg);
	o->done_tok = o->ops->take_token(o->arg);
	if (pcoap_build_update_done(o->msg, sizeof(o->msg), &n, PCOAP_CON,
				    o->done_mid, &o->done_tok, 1, NULL,
				    0) != PCOAP_OK) {
		ota_fail(o, OTA_FAIL_PROTO, "could not build UpdateDone");
		return CINDER_ERR_INTERNAL;
	}
	if ((r = ota_send(o, o->msg, n)) != 0)
		return r;
	o->done_sent = true;
	o->done_sends++;
	o->state = OTA_DONE_WAIT;
	o->deadline = now_ms + o->p.reply_timeout_ms;
	return 0;
}

/* The next chunk to send: a requested resend first, then the first pass. */
static bool
ota_next_chunk(struct ota *o, uint32_t *idx, bool *resend)
{
	uint32_t i, k;

	if (o->n_want > 0) {
		for (k = 0; k < o->n_chunks; k++) {
			i = (o->want_scan + k) % o->n_chunks;
			if (ota_want_get(o, i)) {
				*idx = i;
				*resend = true;
				return true;
			}
		}
	}
	if (o->next_idx < o->n_chunks) {
		*idx = o->next_idx;
		*resend = false;
		return true;
	}
	return false;
}

/* One chunk of the first pass or a resend went out. */
static void
ota_chunk_sent(struct ota *o, uint32_t idx, bool resend)
{
	if (resend) {
		ota_want_set(o, idx, false);
		o->want_scan = idx + 1;
		return;
	}
	o->next_idx++;
	if (o->next_idx >= o->next_progress && o->next_idx < o->n_chunks) {
		o->next_progress += o->n_chunks / 10 > 0 ? o->n_chunks / 10 : 1;
		ota_report_ev(o, OTA_EV_PROGRESS);
	}
}

/* Send what the state and the output budget allow. */
static void
ota_run(struct ota *o, uint64_t now_ms)
{
	uint32_t idx;
	bool resend;
	int r;

	while (o->state == OTA_SENDING) {
		if (o->cur_active)
			return; /* normal mode: waiting for the reply */
		if (!ota_next_chunk(o, &idx, &resend)) {
			(void)ota_send_done(o, now_ms);
			return;
		}
		/* Fast mode carries the index; normal mode only on resends
		   (the device's running counter covers the first pass). */
		o->cur_resend = resend;
		r = ota_send_chunk(o, idx, o->fast || resend, now_ms);
		if (r <= 0)
			return; /* no room now, or failed */
		if (o->fast)
			ota_chunk_sent(o, idx, resend);
	}
}

/* ---- input ---------------------------------------------------------- */

/* The message is ours: ACK it when the device sent it CON (§3.5). */
static bool
ota_claim(struct ota *o, const struct pcoap_msg *m)
{
	uint8_t buf[PCOAP_HDR_LEN];
	size_t n;

	if (m->type == PCOAP_CON &&
	    pcoap_build_empty_ack(buf, sizeof(buf), &n, m->mid) == PCOAP_OK)
		(void)ota_send(o, buf, n);
	return true;
}

static int
ota_begin_match(const struct ota *o, const struct pcoap_msg *m, bool by_mid)
{
	uint32_t i;

	for (i = 0; i < o->n_begin; i++) {
		if (by_mid ? m->mid == o->begin_mid[i]
			   : (m->token.len == 1 &&
			      m->token.p[0] == o->begin_tok[i]))
			return (int)i;
	}
	return -1;
}

/* UpdateBegin answered with an error code: refused (§5.3). */
static void
ota_begin_refused(struct ota *o, uint8_t code)
{
	char text[96];

	if (code == PCOAP_CODE_UNAVAILABLE) {
		ota_fail(o, OTA_FAIL_DISABLED,
			 "the device refused the update: updates are disabled "
			 "(5.03)");
		return;
	}
	snprintf(text, sizeof(text), "the device refused the update (%u.%02u)",
		 code >> 5, code & 0x1f);
	ota_fail(o, OTA_FAIL_REFUSED, text);
}

static void
ota_ready(struct ota *o, const struct pcoap_msg *m, uint64_t now_ms)
{
	o->fast = o->p.fast && m->payload.len >= 1 && (m->payload.p[0] & 1);
	o->state = OTA_SENDING;
	o->deadline = 0;
	o->next_progress = o->n_chunks / 10 > 0 ? o->n_chunks / 10 : 1;
	ota_report_ev(o, OTA_EV_STARTED);
	ota_run(o, now_ms);
}

/*
 * UpdateBegin answers: ACKs by message ID (also late ones, eaten), the
 * separate UpdateReady by token while still waiting for it (tokens are
 * reused once they wrap, so an old token means nothing later).
 */
static bool
ota_input_begin(struct ota *o, const struct pcoap_msg *m, int kind,
		uint64_t now_ms)
{
	bool ack = kind == PCOAP_KIND_EMPTY_ACK || kind == PCOAP_KIND_ACK ||
		   kind == PCOAP_KIND_RST;

	if (ack ? ota_begin_match(o, m, true) < 0
		: (o->state != OTA_BEGIN || ota_begin_match(o, m, false) < 0))
		return false;
	ota_claim(o, m);
	if (o->state != OTA_BEGIN)
		return true; /* late or duplicate: the transfer moved on */
	if (kind == PCOAP_KIND_RST) {
		ota_fail(o, OTA_FAIL_PROTO, "the device reset UpdateBegin");
	} else if (kind == PCOAP_KIND_EMPTY_ACK) {
		/* Accepted: UpdateReady follows (§5.3). */
	} else if ((m->code >> 5) >= 4) {
		ota_begin_refused(o, m->code);
	} else if (m->code == PCOAP_CODE_CHANGED && m->token.len == 1) {
		/* UpdateReady (separate), or piggy-backed by some builds. */
		ota_ready(o, m, now_ms);
	}
	return true;
}

static void
ota_input_chunk_reply(struct ota *o, const struct pcoap_msg *m, int kind,
		      uint64_t now_ms)
{
	char text[96];

	if (kind == PCOAP_KIND_EMPTY_ACK)
		return; /* the reply follows */
	if (kind == PCOAP_KIND_RST) {
		ota_fail(o, OTA_FAIL_PROTO, "the device reset a chunk");
		return;
	}
	o->cur_active = false;
	o->deadline = 0;
	if (m->code == PCOAP_CODE_CHANGED) {
		o->cur_retries = 0;
		ota_chunk_sent(o, o->cur_idx, o->cur_resend);
		ota_run(o, now_ms);
		return;
	}
	if (++o->cur_retries > o->p.chunk_retries) {
		snprintf(text, sizeof(text),
			 "chunk %u refused %u times (bad CRC)",
			 (unsigned)o->cur_idx, (unsigned)o->cur_retries);
		ota_fail(o, OTA_FAIL_MISSED, text);
		return;
	}
	/* 4.00: bad CRC on the device; the same chunk is next again. */
	ota_run(o, now_ms);
}

/* Validation JSON from UpdateDone's 2.04 or a device PUT u. */
static void
ota_done_ok(struct ota *o, const struct pcoap_view *json)
{
	const char *why = NULL;
	char text[128];

	if (json->len > 0 && ota_parse_result((const char *)json->p, json->len,
					      &why) == CINDER_ERR_INVAL) {
		snprintf(text, sizeof(text),
			 "the device will not install the image: %s", why);
		ota_finish(o, OTA_FAIL_REJECTED, text, json->p, json->len);
		return;
	}
	ota_finish(o, OTA_FAIL_NONE, NULL, json->p, json->len);
}

static void
ota_input_done_reply(struct ota *o, const struct pcoap_msg *m, int kind,
		     uint64_t now_ms)
{
	if (o->state != OTA_DONE_WAIT)
		return; /* duplicate */
	if (kind == PCOAP_KIND_EMPTY_ACK)
		return; /* a separate answer follows */
	if (kind == PCOAP_KIND_RST) {
		ota_fail(o, OTA_FAIL_PROTO, "the device reset UpdateDone");
		return;
	}
	if ((m->code >> 5) == 2) {
		ota_done_ok(o, &m->payload);
		return;
	}
	if (m->code != PCOAP_CODE_BAD_REQUEST) {
		ota_fail(o, OTA_FAIL_REJECTED,
			 "the device refused UpdateDone with an error code");
		return;
	}
	/* 4.00: chunks missing (a ChunkMissed follows or came first), or
	   an image the device refuses (then no list comes). */
	if (o->n_want > 0) {
		o->state = OTA_SENDING;
		o->deadline = 0;
		ota_run(o, now_ms);
		return;
	}
	o->state = OTA_MISSED_WAIT;
	o->deadline = now_ms + o->p.missed_wait_ms;
}

static void
ota_input_missed(struct ota *o, const struct pcoap_msg *m, uint64_t now_ms)
{
	uint16_t idx[OTA_MISSED_PER_MSG];
	struct pcoap_msg cut;
	size_t n = 0, i;
	int r;

	r = pcoap_parse_chunk_missed(m, idx, OTA_MISSED_PER_MSG, &n);
	if (r == PCOAP_NOSPACE) {
		/* More than any device lists (40, legacy 50): read a prefix;
		   the next UpdateDone asks again for the rest. */
		cut = *m;
		cut.payload.len = 2 * OTA_MISSED_PER_MSG;
		r = pcoap_parse_chunk_missed(&cut, idx, OTA_MISSED_PER_MSG, &n);
	}
	if (r != PCOAP_OK)
		return; /* empty or odd list: the next UpdateDone retries */
	for (i = 0; i < n; i++) {
		if (idx[i] < o->n_chunks &&
		    !(o->cur_active && o->cur_idx == idx[i]))
			ota_want_set(o, idx[i], true);
	}
	if (o->state == OTA_MISSED_WAIT && o->n_want > 0) {
		o->state = OTA_SENDING;
		o->deadline = 0;
		ota_run(o, now_ms);
	}
}

bool
ota_input(struct ota *o, const struct pcoap_msg *m, int kind, uint64_t now_ms)
{
	bool ack = kind == PCOAP_KIND_EMPTY_ACK || kind == PCOAP_KIND_ACK ||
		   kind == PCOAP_KIND_RST;
	bool tok1 = m->token.len == 1;

	if (o->state == OTA_IDLE || o->state == OTA_FINISHED)
		return false;
	if (ack || kind == PCOAP_KIND_RESPONSE) {
		if (o->cur_active &&
		    (ack ? m->mid == o->cur_mid
			 : (tok1 && m->token.p[0] == o->cur_tok))) {
			ota_claim(o, m);
			ota_input_chunk_reply(o, m, kind, now_ms);
			return true;
		}
		if (o->done_sent &&
		    (ack ? m->mid == o->done_mid
			 : (tok1 && m->token.p[0] == o->done_tok))) {
			ota_claim(o, m);
			ota_input_done_reply(o, m, kind, now_ms);
			return true;
		}
		return ota_input_begin(o, m, kind, now_ms);
	}
	if (o->state == OTA_BEGIN)
		return false;
	if (kind == PCOAP_KIND_CHUNK_MISSED) {
		ota_claim(o, m);
		if (o->state != OTA_FINISHED)
			ota_input_missed(o, m, now_ms);
		return true;
	}
	if (kind == PCOAP_KIND_UPDATE_DONE && m->type != PCOAP_ACK &&
	    m->token.len == 0) {
		/* Legacy (0.7.x) devices finish by themselves (§5.5). */
		ota_claim(o, m);
		if (o->state != OTA_FINISHED)
			ota_done_ok(o, &m->payload);
		return true;
	}
	return false;
}

/* ---- time and control ---------------------------------------------- */

static int
ota_send_begin(struct ota *o, uint64_t now_ms)
{
	struct pcoap_update_begin ub;
	uint16_t mid;
	uint8_t tok;
	size_t n;

	memset(&ub, 0, sizeof(ub));
	ub.flags = o->p.fast ? PCOAP_UPDATE_F_FAST : 0;
	ub.chunk_size = o->cs;
	ub.file_size = (uint32_t)o->img->len;
	ub.store = o->p.store;
	ub.address = o->p.address;
	mid = o->ops->take_mid(o->arg);
	tok = o->ops->take_token(o->arg);
	if (pcoap_build_update_begin(o->msg, sizeof(o->msg), &n, mid, tok,
				     &ub) != PCOAP_OK) {
		ota_fail(o, OTA_FAIL_PROTO, "could not build UpdateBegin");
		return CINDER_ERR_INTERNAL;
	}
	o->begin_mid[o->n_begin] = mid;
	o->begin_tok[o->n_begin] = tok;
	o->n_begin++;
	o->state = OTA_BEGIN;
	o->deadline = now_ms + (o->n_begin >= o->p.begin_tries
					? o->p.begin_last_ms
					: o->p.begin_timeout_ms);
	return ota_send(o, o->msg, n);
}

int
ota_start(struct ota *o, uint64_t now_ms)
{
	if (o->state != OTA_IDLE)
		return CINDER_ERR_CONFLICT;
	o->total_end = now_ms + o->p.total_timeout_ms;
	return ota_send_begin(o, now_ms);
}

void
ota_pump(struct ota *o, uint64_t now_ms)
{
	ota_run(o, now_ms);
}

int64_t
ota_tick(struct ota *o, uint64_t now_ms)
{
	uint64_t next;

	if (o->state == OTA_IDLE || o->state == OTA_FINISHED)
		return -1;
	if (now_ms >= o->total_end) {
		ota_fail(o, OTA_FAIL_TIMEOUT,
			 "the transfer took longer than its time limit");
		return -1;
	}
	if (o->deadline != 0 && now_ms >= o->deadline) {
		switch (o->state) {
		case OTA_BEGIN:
			if (o->n_begin >= o->p.begin_tries)
				ota_fail(o, OTA_FAIL_TIMEOUT,
					 "no UpdateReady from the device");
			else
				(void)ota_send_begin(o, now_ms);
			break;
		case OTA_SENDING:
			ota_fail(o, OTA_FAIL_TIMEOUT,
				 "no reply to a chunk from the device");
			break;
		case OTA_DONE_WAIT:
			ota_fail(o, OTA_FAIL_TIMEOUT,
				 "no answer to UpdateDone from the device");
			break;
		case OTA_MISSED_WAIT:
			ota_fail(o, OTA_FAIL_REJECTED,
				 "the device refused UpdateDone (4.00) and "
				 "listed no missing chunk");
			break;
		default:
			break;
		}
	}
	ota_run(o, now_ms);
	if (o->state == OTA_FINISHED)
		return -1;
	next = o->total_end;
	if (o->deadline != 0 && o->deadline < next)
		next = o->deadline;
	return next > now_ms ? (int64_t)(next - now_ms) : 0;
}

void
ota_abort(struct ota *o, enum ota_fail reason, const char *text)
{
	if (o->state == OTA_FINISHED)
		return;
	ota_fail(o, reason, text != NULL ? text : ota_fail_str(reason));
}

bool
ota_finished(const struct ota *o)
{
	return o->state == OTA_FINISHED;
}

bool
ota_token_in_use(const struct ota *o, uint8_t tok)
{
	uint32_t i;

	if (o->state == OTA_IDLE || o->state == OTA_FINISHED)
		return false;
	if (o->state != OTA_BEGIN)
		return (o->cur_active && o->cur_tok == tok) ||
		       (o->done_sent && o->done_tok == tok);
	for (i = 0; i < o->n_begin; i++) {
		if (o->begin_tok[i] == tok)
			return true;
	}
	return false;
}

uint16_t
ota_chunk_size(const struct ota *o)
{
	return o->cs;
}

uint32_t
ota_chunk_count(const struct ota *o)
{
	return o->n_chunks;
}

/*
 * Chunk CRCs are the same for every device that gets the same chunking:
 * the first transfer computes them into the image, the others reuse them
 * (1,000 devices, one pass over the image instead of 1,000).
 */
static void
ota_crc_cache(struct ota *o)
{
	struct ota_image *img = o->img;
	const uint8_t *data;
	size_t len;
	uint32_t i;

	if (img->crcs == NULL) {
		img->crcs = xmalloc(o->n_chunks * sizeof(*img->crcs));
		img->crc_cs = o->cs;
		img->crc_padded = o->pad != NULL;
		for (i = 0; i < o->n_chunks; i++) {
			data = ota_chunk_data(o, i, &len);
			img->crcs[i] = crc32_fast(0, data, len);
		}
	}
	if (img->crc_cs == o->cs && img->crc_padded == (o->pad != NULL))
		o->crcs = img->crcs;
}

int
ota_new(const struct ota_ops *ops, void *arg, struct ota_image *img,
	const struct ota_params *p, struct ota **out)
{
	struct ota_params par;
	struct ota *o;
	size_t n_chunks, last;
	uint16_t cs;

	*out = NULL;
	if (p != NULL)
		par = *p;
	else
		memset(&par, 0, sizeof(par));
	ota_defaults(&par);
	if (img == NULL || img->len == 0 || par.max_msg <= OTA_CHUNK_OVERHEAD)
		return CINDER_ERR_INVAL;
	if (img->len > UINT32_MAX ||
	    (par.max_binary != 0 && img->len > par.max_binary))
		return CINDER_ERR_TOO_BIG;
	/* A chunk message must fit the device's buffer (§1.5, §5.2). */
	cs = par.chunk_size;
	if (cs > par.max_msg - OTA_CHUNK_OVERHEAD)
		cs = (uint16_t)(par.max_msg - OTA_CHUNK_OVERHEAD);
	n_chunks = (img->len + cs - 1) / cs;
	if (n_chunks > OTA_MAX_CHUNKS)
		return CINDER_ERR_TOO_BIG;
	o = xcalloc(1, sizeof(*o));
	o->ops = ops;
	o->arg = arg;
	o->img = ota_image_ref(img);
	o->p = par;
	o->cs = cs;
	o->max_msg = par.max_msg;
	o->n_chunks = (uint32_t)n_chunks;
	o->want = xcalloc((n_chunks + 7) / 8, 1);
	/* Pad the last chunk with zeros (§5.4), unless the padded image
	   would pass the device's largest binary. */
	last = img->len - (n_chunks - 1) * cs;
	if (last < cs &&
	    (par.max_binary == 0 || n_chunks * cs <= par.max_binary)) {
		o->pad = xcalloc(cs, 1);
		memcpy(o->pad, img->data + (n_chunks - 1) * cs, last);
		o->pad_len = cs;
	}
	ota_crc_cache(o);
	*out = o;
	return 0;
}

void
ota_free(struct ota *o)
{
	if (o == NULL)
		return;
	ota_image_unref(o->img);
	free(o->want);
	free(o->pad);
	free(o);
}

/* ---- the validation JSON ------------------------------------------- */

int
ota_parse_result(const char *json, size_t len, const char **why)
{
	json_t *root, *r, *u, *vc, *vv;
	const char *rs;
	int ret = CINDER_ERR_MALFORMED;

	*why = "not a validation result";
	if (json == NULL || len == 0 || len > OTA_JSON_MAX)
		return CINDER_ERR_MALFORMED;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL || !json_is_object(root))
		goto out;
	r = json_object_get(root, "r");
	if ((rs = json_string_value(r)) == NULL)
		goto out;
	if (strcmp(rs, "ok") != 0) {
		*why = "the device could not locate the staged image";
		ret = CINDER_ERR_INVAL;
		goto out;
	}
	u = json_object_get(root, "u");
	vc = json_object_get(u, "vc");
	vv = json_object_get(u, "vv");
	if (json_is_integer(vc) && json_is_integer(vv) &&
	    json_integer_value(vc) != json_integer_value(vv)) {
		*why = "the image failed validation on the device (vv != vc)";
		ret = CINDER_ERR_INVAL;
		goto out;
	}
	*why = NULL;
	ret = 0;
out:
	json_decref(root);
	return ret;
}
