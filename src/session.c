/* SPDX-License-Identifier: MIT */
/*
 * Device session state machine (protocol.md §2.4-§3, §6.1): Hello both
 * ways, the Describe that makes a device READY, message-ID tracking with
 * resynchronisation, ACKs for everything the device sends CON, time
 * replies, events and subscriptions up to the driver, and the API
 * requests (function, variable, signal, describe) with 1-byte tokens,
 * deadlines and a bounded FIFO. No I/O: see session.h for the callbacks.
 * Loop thread only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "healer/ota.h"
#include "log.h"
#include "session.h"
#include "xmalloc.h"

/* Longest function argument a Photon accepts (§3.8). */
#define SESSION_FUNCTION_ARG_MAX 622

/* Inflight slots: the API limit plus the session's own Describe. */
#define SESSION_SLOTS (SESSION_MAX_INFLIGHT + 1)

/*
 * One request to the device. The encoded message is built when the
 * request is made (so that size errors are reported at once); its
 * message ID (bytes 2-3) and 1-byte token (byte 4) are filled in when it
 * is sent.
 */
struct session_req {
	struct session_req *next;   /* FIFO link while queued */
	uint64_t req_id;	    /* the caller's id */
	enum session_req_kind kind; /* what it is */
	bool internal;		    /* the session's own Describe */
	bool acked;		    /* empty ACK seen: result follows */
	uint8_t token;		    /* 1..255 once sent */
	uint16_t mid;		    /* message ID once sent */
	uint64_t deadline;	    /* monotonic ms */
	size_t len;		    /* bytes in msg */
	uint8_t msg[];		    /* the encoded request */
};

struct session {
	/* Ordered so that the small fields share words: 168 bytes, the
	   176-byte malloc chunk per idle session (B2). */
	const struct session_ops *ops; /* callbacks, borrowed */
	void *arg;		       /* their argument */
	enum session_state state : 8;  /* where we are */
	bool settle_armed;	       /* the settle re-describe is due at
					  settle_at */
	struct session_hello hello;    /* the device's Hello */
	int close_status;	       /* status given to ops->close */
	uint16_t hello_len;	       /* its payload length (capped) */
	uint16_t next_mid;	       /* our next message ID */
	uint16_t dev_mid_next;	       /* the device's expected next ID */
	uint8_t next_token;	       /* next token to try, 1..255 */
	uint8_t n_slots_used;	       /* non-NULL entries in slots */
	/* Sent, unanswered: SESSION_SLOTS entries, the first here (a
	   device asked one thing at a time, most of them with many
	   devices, allocates nothing: that was one allocation of every
	   call and read, perf on bench B4), the others in an array
	   allocated only while one of them is used; see SLOT(). */
	struct session_req *slot0;
	struct session_req **slots;
	size_t n_api_inflight;	    /* API requests in slots */
	struct session_req *q_head; /* FIFO of requests not yet sent */
	struct session_req *q_tail; /* its last element */
	size_t n_queued;	    /* its length */
	struct session_stats stats; /* counters */
	const char *log_ctx;	    /* log context, borrowed; may be NULL */
	uint64_t now_ms;	    /* time of the latest input or tick */
	uint64_t settle_at;	    /* when the settle re-describe is due */
	uint64_t settle_cap;	    /* latest settle_at allowed */
	struct session_ota *ota;    /* attached transfer, or NULL */
};

static void session_pump(struct session *s, uint64_t now_ms);
static bool session_ota_input(struct session *s, const struct pcoap_msg *m,
			      int kind, uint64_t now_ms);
static int64_t session_ota_tick(struct session *s, uint64_t now_ms);
static void session_ota_abort(struct session *s, bool report);
static bool session_ota_token_used(const struct session *s, uint8_t tok);

/* Callbacks never see a NULL pointer, even for empty data. */
static const uint8_t session_no_bytes[1];

static const uint8_t *
session_bytes(const struct pcoap_view *v)
{
	return v->p != NULL ? v->p : session_no_bytes;
}

static int
session_err_from_pcoap(int r)
{
	switch (r) {
	case PCOAP_OK:
		return 0;
	case PCOAP_NOSPACE:
	case PCOAP_TOO_BIG:
		return CINDER_ERR_TOO_BIG;
	default:
		return CINDER_ERR_INVAL;
	}
}

/*
 * The largest plaintext this device accepts (§1.5): the Core is smaller;
 * a Device OS 3.0+ device states its own limit, which is used when it is
 * lower than the Photon's (a larger one buys nothing here) and not absurd.
 */
#define SESSION_RX_MAX_FLOOR 128
static size_t
session_rx_max(const struct session *s)
{
	if (s->hello.platform_id == 0 || s->hello_len == 6)
		return PCOAP_DEVICE_RX_MAX_CORE;
	if (s->hello.max_message_size >= SESSION_RX_MAX_FLOOR &&
	    s->hello.max_message_size < PCOAP_DEVICE_RX_MAX)
		return s->hello.max_message_size;
	return PCOAP_DEVICE_RX_MAX;
}

static void
session_close(struct session *s, int status, const char *reason)
{
	if (s->state == SESSION_CLOSED)
		return;
	s->state = SESSION_CLOSED;
	s->close_status = status;
	log_ctx(LOG_LEVEL_INFO, s->log_ctx, "closing device session: %s",
		reason);
	s->ops->close(s->arg, status, reason);
}

/* Check a message against the device's parser limits (§3.2), send it. */
static int
session_send(struct session *s, const uint8_t *buf, size_t len)
{
	struct pcoap_msg m;
	int r;

	if (s->state == SESSION_CLOSED)
		return CINDER_ERR_UNAVAILABLE;
	if ((r = pcoap_msg_decode(buf, len, &m)) != PCOAP_OK ||
	    (r = pcoap_check_to_device(&m, session_rx_max(s))) != PCOAP_OK) {
		/* A bug on our side: never let it reach the device. */
		log_ctx(LOG_LEVEL_ERR, s->log_ctx,
			"refusing to send an invalid message: %s",
			pcoap_strerror(r));
		session_close(s, CINDER_ERR_INTERNAL,
			      "invalid outgoing message");
		return CINDER_ERR_INTERNAL;
	}
	if ((r = s->ops->send(s->arg, buf, len)) != 0) {
		session_close(s, r, "send failed");
		return r;
	}
	s->stats.msgs_out++;
	return 0;
}

static int
session_send_empty_ack(struct session *s, uint16_t mid)
{
	uint8_t buf[PCOAP_HDR_LEN];
	size_t len;

	if (pcoap_build_empty_ack(buf, sizeof(buf), &len, mid) != PCOAP_OK)
		return CINDER_ERR_INTERNAL;
	return session_send(s, buf, len);
}

/* ACK 4.00 without token (subscription refused, §3.9). */
static int
session_send_bad_request(struct session *s, uint16_t mid)
{
	uint8_t buf[PCOAP_HDR_LEN];
	size_t len;

	if (pcoap_build_reply(buf, sizeof(buf), &len, PCOAP_ACK,
			      PCOAP_CODE_BAD_REQUEST, mid, NULL, 0, NULL,
			      0) != PCOAP_OK)
		return CINDER_ERR_INTERNAL;
	return session_send(s, buf, len);
}

static uint16_t
session_take_mid(struct session *s)
{
	return s->next_mid++;
}

static struct session_req *
session_req_new(enum session_req_kind kind, uint64_t req_id, const uint8_t *msg,
		size_t len, uint64_t deadline)
{
	struct session_req *req;

	req = xcalloc(1, sizeof(*req) + len);
	req->kind = kind;
	req->req_id = req_id;
	req->deadline = deadline;
	req->len = len;
	memcpy(req->msg, msg, len);
	return req;
}

/* Slot i of s (an lvalue): slot0, then the array. */
#define SLOT(s, i) (*((i) == 0 ? &(s)->slot0 : &(s)->slots[(i)-1]))

/* Slots to look at: slot0, and the array's while it exists. */
static size_t
session_nslots(const struct session *s)
{
	return s->slots != NULL ? SESSION_SLOTS : 1;
}

/* A slot went empty: the array goes when the last one does. */
static void
session_slot_cleared(struct session *s)
{
	if (--s->n_slots_used > 0)
		return;
	free(s->slots); /* every slot is empty, slot0 too */
	s->slots = NULL;
}

static bool
session_token_in_use(const struct session *s, uint8_t tok)
{
	size_t i;

	for (i = 0; i < session_nslots(s); i++) {
		if (SLOT(s, i) != NULL && SLOT(s, i)->token == tok)
			return true;
	}
	return session_ota_token_used(s, tok);
}

/* Next free token, rotating through 1..255 (never 0, §3.4). */
static uint8_t
session_take_token(struct session *s)
{
	unsigned i;
	uint8_t tok;

	for (i = 0; i < 255; i++) {
		tok = s->next_token;
		s->next_token = tok == 255 ? 1 : (uint8_t)(tok + 1);
		if (!session_token_in_use(s, tok))
			return tok;
	}
	/* Unreachable: at most SESSION_SLOTS tokens are in use. */
	return 0;
}

static int
session_free_slot(const struct session *s)
{
	size_t i;

	for (i = 0; i < session_nslots(s); i++) {
		if (SLOT(s, i) == NULL)
			return (int)i;
	}
	return -1;
}

/* Give req a token and a message ID, put it in a slot and send it. */
static int
session_start(struct session *s, struct session_req *req)
{
	int slot;

	if (s->slot0 != NULL && s->slots == NULL)
		s->slots = xcalloc(SESSION_SLOTS - 1, sizeof(*s->slots));
	if ((slot = session_free_slot(s)) < 0) {
		free(req);
		return CINDER_ERR_INTERNAL;
	}
	req->token = session_take_token(s);
	req->mid = session_take_mid(s);
	/* Every request built here has TKL 1: header, then the token. */
	req->msg[2] = (uint8_t)(req->mid >> 8);
	req->msg[3] = (uint8_t)req->mid;
	req->msg[4] = req->token;
	SLOT(s, (size_t)slot) = req;
	s->n_slots_used++;
	if (!req->internal)
		s->n_api_inflight++;
	/* On failure the session is closed; req stays for abort_requests. */
	return session_send(s, req->msg, req->len);
}

static void
session_slot_remove(struct session *s, struct session_req *req)
{
	size_t i;

	for (i = 0; i < session_nslots(s); i++) {
		if (SLOT(s, i) == req) {
			SLOT(s, i) = NULL;
			if (!req->internal)
				s->n_api_inflight--;
			session_slot_cleared(s);
			return;
		}
	}
}

static void
session_queue_remove(struct session *s, struct session_req *req)
{
	struct session_req **pp, *prev = NULL;

	for (pp = &s->q_head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == req) {
			*pp = req->next;
			if (s->q_tail == req)
				s->q_tail = prev;
			req->next = NULL;
			s->n_queued--;
			return;
		}
		prev = *pp;
	}
}

static void
session_report(struct session *s, const struct session_req *req,
	       const struct session_result *res)
{
	if (s->ops->request_done != NULL)
		s->ops->request_done(s->arg, req->req_id, req->kind, res);
}

static void
session_fail(struct session *s, struct session_req *req, int status,
	     uint8_t code)
{
	struct session_result res;

	memset(&res, 0, sizeof(res));
	res.status = status;
	res.code = code;
	session_report(s, req, &res);
}

/* Start-up traffic from the device pushes the settle re-describe back. */
static void
session_settle_push(struct session *s)
{
	uint64_t at;

	if (!s->settle_armed)
		return;
	at = s->now_ms + SESSION_SETTLE_QUIET_MS;
	s->settle_at = at < s->settle_cap ? at : s->settle_cap;
}

/* The session's own Describe answered: hand on the JSON, become READY. */
static void
session_describe_done(struct session *s, const struct pcoap_view *json)
{
	if (s->ops->describe != NULL)
		s->ops->describe(s->arg, (const char *)session_bytes(json),
				 json->len);
	if (s->state == SESSION_DESCRIBING) {
		s->state = SESSION_READY;
		s->settle_armed = true;
		s->settle_cap = s->now_ms + SESSION_SETTLE_MAX_MS;
		session_settle_push(s);
		log_ctx(LOG_LEVEL_INFO, s->log_ctx, "device session ready");
		if (s->ops->ready != NULL)
			s->ops->ready(s->arg);
	}
}

/*
 * A final answer (piggy-backed ACK with a code, or a separate response)
 * for req, which is already out of its slot. Frees req.
 */
static void
session_complete(struct session *s, struct session_req *req,
		 const struct pcoap_msg *m, uint64_t now_ms)
{
	struct session_result res;
	uint8_t cls = m->code >> 5;
	int32_t v;

	memset(&res, 0, sizeof(res));
	res.code = m->code;
	if (cls != 2 && m->code != PCOAP_CODE_EMPTY) {
		/* 4.xx/5.xx (§3.12); only a signal gets here with 0.00. */
		if (req->internal) {
			if (s->state == SESSION_DESCRIBING)
				session_close(s, CINDER_ERR_PROTO,
					      "describe refused");
			goto out;
		}
		session_fail(s, req,
			     m->code == PCOAP_CODE_NOT_FOUND
				     ? CINDER_ERR_NOTFOUND
				     : CINDER_ERR_PROTO,
			     m->code);
		goto out;
	}
	switch (req->kind) {
	case SESSION_REQ_FUNCTION:
		if (pcoap_value_decode_int32(m->payload.p, m->payload.len,
					     &v) != PCOAP_OK) {
			res.status = CINDER_ERR_PROTO;
			break;
		}
		res.int_value = v;
		break;
	case SESSION_REQ_VARIABLE:
		res.data = session_bytes(&m->payload);
		res.data_len = m->payload.len;
		break;
	case SESSION_REQ_SIGNAL:
		break;
	case SESSION_REQ_DESCRIBE:
		if (req->internal) {
			session_describe_done(s, &m->payload);
			goto out;
		}
		res.data = session_bytes(&m->payload);
		res.data_len = m->payload.len;
		break;
	}
	session_report(s, req, &res);
out:
	free(req);
	session_pump(s, now_ms);
}

/* The request waiting for this token, or NULL. */
static struct session_req *
session_find_token(const struct session *s, const struct pcoap_view *tok)
{
	size_t i;

	if (tok->len != 1)
		return NULL;
	for (i = 0; i < session_nslots(s); i++) {
		if (SLOT(s, i) != NULL && SLOT(s, i)->token == tok->p[0])
			return SLOT(s, i);
	}
	return NULL;
}

/*
 * Match an ACK or RST: by message ID first (§3.4); then, for the ID quirk
 * of LightSSL builds (§3.3), by token. *by_token tells which.
 */
static struct session_req *
session_match_ack(const struct session *s, const struct pcoap_msg *m,
		  bool *by_token)
{
	struct session_req *req;
	size_t i;

	*by_token = false;
	for (i = 0; i < session_nslots(s); i++) {
		req = SLOT(s, i);
		if (req == NULL || req->mid != m->mid)
			continue;
		if (m->token.len == 1 && m->token.p[0] != req->token)
			break; /* same ID by chance: try the token */
		return req;
	}
	if ((req = session_find_token(s, &m->token)) != NULL)
		*by_token = true;
	return req;
}

static int
session_input_ack(struct session *s, const struct pcoap_msg *m, int kind,
		  uint64_t now_ms)
{
	struct session_req *req;
	bool by_token;

	req = session_match_ack(s, m, &by_token);
	if ((req == NULL || by_token) && m->mid == s->dev_mid_next) {
		/*
		 * The device stamped its ACK with a fresh ID from its own
		 * counter (§3.3): that ID is consumed. Never disconnect.
		 */
		s->dev_mid_next++;
		s->stats.mid_resyncs++;
	}
	if (req == NULL) {
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx,
			"dropping unmatched %s id %u", pcoap_kind_str(kind),
			m->mid);
		s->stats.dropped_unknown++;
		return 0;
	}
	if (kind == PCOAP_KIND_EMPTY_ACK && req->kind != SESSION_REQ_SIGNAL) {
		/* Accepted; the result follows as a separate response. */
		req->acked = true;
		return 0;
	}
	session_slot_remove(s, req);
	if (kind == PCOAP_KIND_RST) {
		if (req->internal) {
			if (s->state == SESSION_DESCRIBING)
				session_close(s, CINDER_ERR_PROTO,
					      "describe reset by the device");
		} else {
			session_fail(s, req, CINDER_ERR_PROTO, 0);
		}
		free(req);
		session_pump(s, now_ms);
		return 0;
	}
	/* A signal's empty ACK means done, like its ACK 2.04. */
	session_complete(s, req, m, now_ms);
	return 0;
}

static int
session_input_response(struct session *s, const struct pcoap_msg *m,
		       uint64_t now_ms)
{
	struct session_req *req;
	int r;

	if (m->type == PCOAP_CON && (r = session_send_empty_ack(s, m->mid)))
		return r;
	if ((req = session_find_token(s, &m->token)) == NULL) {
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx,
			"dropping response id %u without a pending request",
			m->mid);
		s->stats.dropped_unknown++;
		return 0;
	}
	session_slot_remove(s, req);
	session_complete(s, req, m, now_ms);
	return 0;
}

static int
session_start_describe(struct session *s, uint64_t now_ms)
{
	struct session_req *req;
	uint8_t buf[16];
	size_t len;

	if (pcoap_build_describe(buf, sizeof(buf), &len, 0, 1, 0) != PCOAP_OK)
		return CINDER_ERR_INTERNAL;
	req = session_req_new(SESSION_REQ_DESCRIBE, 0, buf, len,
			      now_ms + SESSION_DESCRIBE_TIMEOUT_MS);
	req->internal = true;
	return session_start(s, req);
}

static int
session_input_hello(struct session *s, const struct pcoap_msg *m, int kind,
		    uint64_t now_ms)
{
	struct pcoap_hello h;
	uint8_t buf[16];
	size_t len;
	int r;

	if (kind != PCOAP_KIND_HELLO) {
		session_close(s, CINDER_ERR_PROTO,
			      "first message is not a hello");
		return CINDER_ERR_PROTO;
	}
	if (pcoap_parse_hello(m, &h) != PCOAP_OK) {
		session_close(s, CINDER_ERR_MALFORMED, "malformed hello");
		return CINDER_ERR_MALFORMED;
	}
	s->hello.product_id = h.product_id;
	s->hello.product_version = h.product_version;
	s->hello.flags = h.flags;
	s->hello.platform_id = h.platform_id;
	s->hello.extended = h.extended;
	s->hello.system_version = h.system_version;
	s->hello.max_message_size = h.max_message_size;
	s->hello.max_binary_size = h.max_binary_size;
	s->hello.ota_chunk_size = h.ota_chunk_size;
	s->hello_len = (uint16_t)(h.payload_len < UINT16_MAX ? h.payload_len
							     : UINT16_MAX);
	/* The Hello sets the baseline of the device's counter (§2.3). */
	s->dev_mid_next = (uint16_t)(m->mid + 1);
	log_ctx(LOG_LEVEL_DEBUG, s->log_ctx,
		"hello: %zu bytes, product %u version %u platform %u flags "
		"0x%02x",
		h.payload_len, h.product_id, h.product_version, h.platform_id,
		h.flags);
	if (m->type == PCOAP_CON && (r = session_send_empty_ack(s, m->mid)))
		return r;
	if (s->ops->hello != NULL)
		s->ops->hello(s->arg, &s->hello);
	if (s->state == SESSION_CLOSED)
		return s->close_status;
	if (pcoap_build_hello(buf, sizeof(buf), &len, session_take_mid(s),
			      NULL) != PCOAP_OK)
		return CINDER_ERR_INTERNAL;
	if ((r = session_send(s, buf, len)) != 0)
		return r;
	s->state = SESSION_DESCRIBING;
	return session_start_describe(s, now_ms);
}

static bool
session_is_hex(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f') ||
		      (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	}
	return true;
}

static int
session_input_event(struct session *s, const struct pcoap_msg *m)
{
	char name[SESSION_EVENT_NAME_MAX + 1];
	struct pcoap_event ev;
	int r;

	r = pcoap_parse_event(m, &ev, name, sizeof(name));
	if (r != PCOAP_OK && r != PCOAP_NOSPACE) {
		session_close(s, CINDER_ERR_MALFORMED, "malformed event");
		return CINDER_ERR_MALFORMED;
	}
	if (r == PCOAP_NOSPACE || memchr(name, '\0', ev.name_len) != NULL ||
	    ev.data.len > SESSION_EVENT_DATA_MAX) {
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx,
			"dropping event with an over-long or invalid name or "
			"data");
		s->stats.dropped_unknown++;
	} else if (s->ops->event != NULL) {
		/* The hook decides first: a CON publish over the rate limit
		   gets the 4.00 "slow down" ACK instead of the empty one. */
		r = s->ops->event(s->arg, name, session_bytes(&ev.data),
				  ev.data.len, ev.ttl, ev.is_private);
		if (r == CINDER_ERR_BUSY && m->type == PCOAP_CON)
			return session_send_bad_request(s, m->mid);
	}
	if (m->type == PCOAP_CON)
		return session_send_empty_ack(s, m->mid);
	return 0;
}

static int
session_input_subscribe(struct session *s, const struct pcoap_msg *m)
{
	char filter[SESSION_EVENT_NAME_MAX + 1];
	struct pcoap_subscribe sub;
	bool ok;
	int r;

	r = pcoap_parse_subscribe(m, &sub, filter, sizeof(filter));
	if (r != PCOAP_OK && r != PCOAP_NOSPACE) {
		session_close(s, CINDER_ERR_MALFORMED,
			      "malformed subscription");
		return CINDER_ERR_MALFORMED;
	}
	ok = r == PCOAP_OK && memchr(filter, '\0', sub.filter_len) == NULL;
	if (ok && sub.scope == PCOAP_SCOPE_DEVICE)
		ok = sub.device_id.len == PCOAP_DEVICE_ID_LEN &&
		     session_is_hex(sub.device_id.p, sub.device_id.len);
	else if (ok)
		ok = sub.filter_len > 0; /* no firehose without a filter */
	if (m->type == PCOAP_CON) {
		r = ok ? session_send_empty_ack(s, m->mid)
		       : session_send_bad_request(s, m->mid);
		if (r != 0)
			return r;
	}
	if (!ok) {
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx, "refusing subscription");
		return 0;
	}
	if (s->ops->subscribe != NULL)
		s->ops->subscribe(s->arg, filter, sub.scope,
				  sub.scope == PCOAP_SCOPE_DEVICE
					  ? (const char *)sub.device_id.p
					  : NULL);
	return 0;
}

static int
session_input_time(struct session *s, const struct pcoap_msg *m)
{
	uint8_t buf[16];
	size_t len;
	uint32_t t;

	if (m->token.len != 1) {
		session_close(s, CINDER_ERR_MALFORMED,
			      "time request without a 1-byte token");
		return CINDER_ERR_MALFORMED;
	}
	if (s->ops->unix_time != NULL)
		t = s->ops->unix_time(s->arg);
	else
		t = (uint32_t)time(NULL);
	if (pcoap_build_time_reply(buf, sizeof(buf), &len, m->mid,
				   m->token.p[0], t) != PCOAP_OK)
		return CINDER_ERR_INTERNAL;
	return session_send(s, buf, len);
}

static int
session_input_describe_post(struct session *s, const struct pcoap_msg *m)
{
	struct pcoap_view json;
	uint8_t flags;
	int r;

	if (pcoap_parse_describe_post(m, &flags, &json) != PCOAP_OK) {
		session_close(s, CINDER_ERR_MALFORMED,
			      "malformed describe post");
		return CINDER_ERR_MALFORMED;
	}
	if (m->type == PCOAP_CON && (r = session_send_empty_ack(s, m->mid)))
		return r;
	session_describe_done(s, &json);
	session_settle_push(s);
	return 0;
}

/* Goodbye (POST x): the device is about to reset, sleep or go away. */
static int
session_input_goodbye(struct session *s, const struct pcoap_msg *m)
{
	struct pcoap_goodbye g;

	if (pcoap_parse_goodbye(m, &g) != PCOAP_OK) {
		/* Nothing depends on it: note it, and do not cut a device
		   that is leaving anyway. */
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx, "malformed goodbye");
		memset(&g, 0, sizeof(g));
	}
	log_ctx(LOG_LEVEL_INFO, s->log_ctx,
		"device said goodbye (flags 0x%x, reset reason %u)",
		(unsigned)g.flags, (unsigned)g.reset_reason);
	if (s->ops->goodbye != NULL)
		s->ops->goodbye(s->arg, &g);
	/* NON with No-Response over TCP; CON over DTLS wants its ACK. */
	if (m->type == PCOAP_CON)
		return session_send_empty_ack(s, m->mid);
	return 0;
}

/* Follow the device's counter; a gap is tolerated and counted (§3.3). */
static void
session_track_mid(struct session *s, const struct pcoap_msg *m)
{
	if (m->type != PCOAP_CON && m->type != PCOAP_NON)
		return; /* ACK/RST: see session_input_ack() */
	if (m->mid != s->dev_mid_next) {
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx,
			"device message id %u, expected %u: resynchronising",
			m->mid, s->dev_mid_next);
		s->stats.mid_resyncs++;
	}
	s->dev_mid_next = (uint16_t)(m->mid + 1);
}

int
session_input(struct session *s, const uint8_t *msg, size_t len,
	      uint64_t now_ms)
{
	struct pcoap_msg m;
	int kind, r = 0;

	if (s->state == SESSION_CLOSED)
		return CINDER_ERR_UNAVAILABLE;
	s->stats.msgs_in++;
	s->now_ms = now_ms;
	if (pcoap_msg_decode(msg, len, &m) != PCOAP_OK) {
		session_close(s, CINDER_ERR_MALFORMED, "undecodable message");
		return CINDER_ERR_MALFORMED;
	}
	kind = pcoap_particle_kind(&m);
	if (s->state == SESSION_HELLO_WAIT) {
		r = session_input_hello(s, &m, kind, now_ms);
		goto out;
	}
	session_track_mid(s, &m);
	/* A firmware transfer takes its own messages first (§5). */
	if (s->ota != NULL && session_ota_input(s, &m, kind, now_ms))
		goto out;
	switch (kind) {
	case PCOAP_KIND_PING:
		r = session_send_empty_ack(s, m.mid);
		break;
	case PCOAP_KIND_EMPTY_ACK:
	case PCOAP_KIND_ACK:
	case PCOAP_KIND_RST:
		r = session_input_ack(s, &m, kind, now_ms);
		break;
	case PCOAP_KIND_RESPONSE:
		r = session_input_response(s, &m, now_ms);
		break;
	case PCOAP_KIND_EVENT:
		r = session_input_event(s, &m);
		session_settle_push(s);
		break;
	case PCOAP_KIND_SUBSCRIBE:
		r = session_input_subscribe(s, &m);
		session_settle_push(s);
		break;
	case PCOAP_KIND_TIME:
		r = session_input_time(s, &m);
		session_settle_push(s);
		break;
	case PCOAP_KIND_DESCRIBE_POST:
		r = session_input_describe_post(s, &m);
		break;
	case PCOAP_KIND_GOODBYE:
		r = session_input_goodbye(s, &m);
		break;
	default:
		/* Unknown here (also OTA messages, a second Hello): drop,
		   but never leave a CON unanswered (§3.5). */
		log_ctx(LOG_LEVEL_DEBUG, s->log_ctx, "dropping %s id %u",
			pcoap_kind_str(kind), m.mid);
		s->stats.dropped_unknown++;
		if (m.type == PCOAP_CON)
			r = session_send_empty_ack(s, m.mid);
		break;
	}
out:
	if (s->state == SESSION_CLOSED)
		return s->close_status != 0 ? s->close_status
					    : CINDER_ERR_UNAVAILABLE;
	return r;
}

/* Send queued requests while slots are free (FIFO order). */
static void
session_pump(struct session *s, uint64_t now_ms)
{
	struct session_req *req;

	(void)now_ms;
	while (s->state == SESSION_READY && s->q_head != NULL &&
	       s->n_api_inflight < SESSION_MAX_INFLIGHT && s->ota == NULL) {
		req = s->q_head;
		session_queue_remove(s, req);
		(void)session_start(s, req);
	}
}

/* Queue or send an API request whose message is already checked. */
static int
session_submit(struct session *s, enum session_req_kind kind, uint64_t req_id,
	       const uint8_t *msg, size_t len, uint64_t now_ms,
	       uint32_t timeout_ms)
{
	struct session_req *req;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	if (s->q_head == NULL && s->n_api_inflight < SESSION_MAX_INFLIGHT &&
	    s->ota == NULL) {
		req = session_req_new(kind, req_id, msg, len,
				      now_ms + timeout_ms);
		(void)session_start(s, req);
		return 0;
	}
	if (s->n_queued >= SESSION_MAX_QUEUED)
		return CINDER_ERR_BUSY;
	req = session_req_new(kind, req_id, msg, len, now_ms + timeout_ms);
	if (s->q_tail != NULL)
		s->q_tail->next = req;
	else
		s->q_head = req;
	s->q_tail = req;
	s->n_queued++;
	return 0;
}

/* Verify a freshly built request against the device's limits. */
static int
session_check_built(const struct session *s, int br, const uint8_t *buf,
		    size_t len)
{
	struct pcoap_msg m;
	int r;

	if (br != PCOAP_OK)
		return session_err_from_pcoap(br);
	if ((r = pcoap_msg_decode(buf, len, &m)) != PCOAP_OK ||
	    (r = pcoap_check_to_device(&m, session_rx_max(s))) != PCOAP_OK)
		return session_err_from_pcoap(r);
	return 0;
}

int
session_request_function(struct session *s, uint64_t req_id, const char *name,
			 const char *arg, uint64_t now_ms, uint32_t timeout_ms)
{
	uint8_t buf[PCOAP_DEVICE_RX_MAX];
	size_t len = 0, name_len, arg_len;
	int r;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	if (name == NULL || (name_len = strlen(name)) == 0)
		return CINDER_ERR_INVAL;
	if (arg == NULL)
		arg = "";
	if ((arg_len = strlen(arg)) > SESSION_FUNCTION_ARG_MAX)
		return CINDER_ERR_TOO_BIG;
	r = pcoap_build_function_call(buf, sizeof(buf), &len, 0, 1, name,
				      name_len, arg, arg_len);
	if ((r = session_check_built(s, r, buf, len)) != 0)
		return r;
	return session_submit(s, SESSION_REQ_FUNCTION, req_id, buf, len, now_ms,
			      timeout_ms);
}

int
session_request_variable(struct session *s, uint64_t req_id, const char *name,
			 uint64_t now_ms, uint32_t timeout_ms)
{
	uint8_t buf[PCOAP_DEVICE_RX_MAX];
	size_t len = 0, name_len;
	int r;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	if (name == NULL || (name_len = strlen(name)) == 0)
		return CINDER_ERR_INVAL;
	r = pcoap_build_variable(buf, sizeof(buf), &len, 0, 1, name, name_len);
	if ((r = session_check_built(s, r, buf, len)) != 0)
		return r;
	return session_submit(s, SESSION_REQ_VARIABLE, req_id, buf, len, now_ms,
			      timeout_ms);
}

int
session_request_signal(struct session *s, uint64_t req_id, bool on,
		       uint64_t now_ms, uint32_t timeout_ms)
{
	uint8_t buf[16];
	size_t len = 0;
	int r;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	r = pcoap_build_signal(buf, sizeof(buf), &len, 0, 1, on);
	if ((r = session_check_built(s, r, buf, len)) != 0)
		return r;
	return session_submit(s, SESSION_REQ_SIGNAL, req_id, buf, len, now_ms,
			      timeout_ms);
}

int
session_request_describe(struct session *s, uint64_t req_id, uint8_t flags,
			 uint64_t now_ms, uint32_t timeout_ms)
{
	uint8_t buf[16];
	size_t len = 0;
	int r;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	r = pcoap_build_describe(buf, sizeof(buf), &len, 0, 1, flags);
	if ((r = session_check_built(s, r, buf, len)) != 0)
		return r;
	return session_submit(s, SESSION_REQ_DESCRIBE, req_id, buf, len, now_ms,
			      timeout_ms);
}

int
session_send_event(struct session *s, const char *name, const uint8_t *data,
		   size_t data_len, uint32_t ttl, bool is_private)
{
	uint8_t buf[PCOAP_DEVICE_RX_MAX];
	size_t len = 0, name_len;
	int r;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	if (name == NULL || (name_len = strlen(name)) == 0 ||
	    (data == NULL && data_len > 0))
		return CINDER_ERR_INVAL;
	/* Built with the next ID, which is consumed only when it is sent. */
	r = pcoap_build_event(buf, sizeof(buf), &len, PCOAP_NON, s->next_mid,
			      is_private, name, name_len, ttl, data, data_len);
	if ((r = session_check_built(s, r, buf, len)) != 0)
		return r;
	s->next_mid++;
	return session_send(s, buf, len);
}

/* The session's own Describe in flight, if any. */
static bool
session_internal_pending(const struct session *s)
{
	size_t i;

	for (i = 0; i < session_nslots(s); i++) {
		if (SLOT(s, i) != NULL && SLOT(s, i)->internal)
			return true;
	}
	return false;
}

/* The start-up burst is over: ask for the Describe once more. */
static void
session_settle(struct session *s, uint64_t now_ms)
{
	if (!s->settle_armed || now_ms < s->settle_at ||
	    s->state != SESSION_READY)
		return;
	s->settle_armed = false;
	if (session_internal_pending(s))
		return; /* a fresh answer is on its way anyway */
	log_ctx(LOG_LEVEL_DEBUG, s->log_ctx,
		"start-up burst over: asking for the describe again");
	(void)session_start_describe(s, now_ms);
}

int64_t
session_tick(struct session *s, uint64_t now_ms)
{
	struct session_req *req, *expired;
	uint64_t next = UINT64_MAX;
	int64_t ota_next;
	size_t i;

	s->now_ms = now_ms;
	session_settle(s, now_ms);
	for (;;) {
		if (s->state == SESSION_CLOSED)
			return -1;
		expired = NULL;
		for (i = 0; i < session_nslots(s) && expired == NULL; i++) {
			if (SLOT(s, i) != NULL &&
			    SLOT(s, i)->deadline <= now_ms)
				expired = SLOT(s, i);
		}
		if (expired != NULL) {
			session_slot_remove(s, expired);
		} else {
			for (req = s->q_head; req != NULL; req = req->next) {
				if (req->deadline <= now_ms) {
					expired = req;
					break;
				}
			}
			if (expired == NULL)
				break;
			session_queue_remove(s, expired);
		}
		if (expired->internal) {
			if (s->state == SESSION_DESCRIBING)
				session_close(s, CINDER_ERR_TIMEOUT,
					      "describe timed out");
		} else {
			session_fail(s, expired, CINDER_ERR_TIMEOUT, 0);
		}
		free(expired);
	}
	session_pump(s, now_ms);
	if (s->state == SESSION_CLOSED)
		return -1;
	if (s->ota != NULL && (ota_next = session_ota_tick(s, now_ms)) >= 0)
		next = now_ms + (uint64_t)ota_next;
	for (i = 0; i < session_nslots(s); i++) {
		if (SLOT(s, i) != NULL && SLOT(s, i)->deadline < next)
			next = SLOT(s, i)->deadline;
	}
	for (req = s->q_head; req != NULL; req = req->next) {
		if (req->deadline < next)
			next = req->deadline;
	}
	if (s->settle_armed && s->settle_at < next)
		next = s->settle_at;
	if (next == UINT64_MAX)
		return -1;
	return next > now_ms ? (int64_t)(next - now_ms) : 0;
}

struct session *
session_new(const struct session_ops *ops, void *arg, uint16_t server_mid,
	    uint64_t now_ms)
{
	struct session *s;

	s = xcalloc(1, sizeof(*s));
	s->now_ms = now_ms;
	s->ops = ops;
	s->arg = arg;
	s->state = SESSION_HELLO_WAIT;
	s->next_mid = server_mid;
	s->next_token = 1;
	return s;
}

void
session_set_log_ctx(struct session *s, const char *ctx)
{
	s->log_ctx = ctx;
}

void
session_free(struct session *s)
{
	struct session_req *req, *next;
	size_t i;

	if (s == NULL)
		return;
	session_ota_abort(s, false);
	for (i = 0; i < session_nslots(s); i++)
		free(SLOT(s, i));
	free(s->slots);
	for (req = s->q_head; req != NULL; req = next) {
		next = req->next;
		free(req);
	}
	free(s);
}

void
session_abort_requests(struct session *s)
{
	struct session_req *list = NULL, **tail = &list, *req, *next;
	size_t i;

	session_ota_abort(s, true);
	/* Detach everything first: callbacks may add new requests. */
	for (i = 0; i < session_nslots(s); i++) {
		req = SLOT(s, i);
		if (req == NULL)
			continue;
		SLOT(s, i) = NULL;
		if (req->internal) {
			free(req);
			continue;
		}
		req->next = NULL;
		*tail = req;
		tail = &req->next;
	}
	s->n_api_inflight = 0;
	free(s->slots);
	s->slots = NULL;
	s->n_slots_used = 0;
	*tail = s->q_head;
	s->q_head = s->q_tail = NULL;
	s->n_queued = 0;
	for (req = list; req != NULL; req = next) {
		next = req->next;
		session_fail(s, req, CINDER_ERR_UNAVAILABLE, 0);
		free(req);
	}
}

enum session_state
session_state(const struct session *s)
{
	return s->state;
}

const struct session_hello *
session_hello(const struct session *s)
{
	return &s->hello;
}

const struct session_stats *
session_stats(const struct session *s)
{
	return &s->stats;
}

size_t
session_pending(const struct session *s)
{
	return s->n_api_inflight + s->n_queued;
}

/*
 * Firmware over the air (protocol.md §5): one transfer attached to a
 * READY session. The session gives it message IDs and tokens, routes its
 * messages to it, holds API requests back while it runs (the link is
 * locked during a flash, §5.1) and aborts it when the session ends.
 */
struct session_ota {
	struct session *s;	      /* owner */
	struct ota *ota;	      /* the machine */
	session_ota_space_cb space;   /* output budget; may be NULL */
	session_ota_report_cb report; /* the caller's report hook */
	void *arg;		      /* their argument */
};

static int
session_ota_send(void *arg, const uint8_t *msg, size_t len)
{
	struct session_ota *so = arg;

	return session_send(so->s, msg, len);
}

static uint16_t
session_ota_mid(void *arg)
{
	struct session_ota *so = arg;

	return session_take_mid(so->s);
}

static uint8_t
session_ota_token(void *arg)
{
	struct session_ota *so = arg;

	return session_take_token(so->s);
}

static size_t
session_ota_space(void *arg)
{
	struct session_ota *so = arg;

	return so->space != NULL ? so->space(so->arg) : SIZE_MAX;
}

static void
session_ota_report(void *arg, const struct ota_report *r)
{
	struct session_ota *so = arg;

	if (r->ev == OTA_EV_SUCCESS)
		log_ctx(LOG_LEVEL_INFO, so->s->log_ctx,
			"firmware transfer done (%u chunks, %s mode)",
			(unsigned)r->n_chunks, r->fast ? "fast" : "normal");
	else if (r->ev == OTA_EV_FAILED)
		log_ctx(LOG_LEVEL_INFO, so->s->log_ctx,
			"firmware transfer failed: %s", r->text);
	if (so->report != NULL)
		so->report(so->arg, r);
}

static const struct ota_ops session_ota_ops = {
	.send = session_ota_send,
	.take_mid = session_ota_mid,
	.take_token = session_ota_token,
	.writable = session_ota_space,
	.report = session_ota_report,
};

static bool
session_ota_token_used(const struct session *s, uint8_t tok)
{
	return s->ota != NULL && ota_token_in_use(s->ota->ota, tok);
}

/* Free a finished transfer and let the held-back requests go. */
static void
session_ota_reap(struct session *s, uint64_t now_ms)
{
	if (s->ota == NULL || !ota_finished(s->ota->ota))
		return;
	ota_free(s->ota->ota);
	free(s->ota);
	s->ota = NULL;
	session_pump(s, now_ms);
}

static bool
session_ota_input(struct session *s, const struct pcoap_msg *m, int kind,
		  uint64_t now_ms)
{
	bool taken = ota_input(s->ota->ota, m, kind, now_ms);

	session_ota_reap(s, now_ms);
	return taken;
}

static int64_t
session_ota_tick(struct session *s, uint64_t now_ms)
{
	int64_t next = ota_tick(s->ota->ota, now_ms);

	session_ota_reap(s, now_ms);
	return s->ota != NULL ? next : -1;
}

/* The session ends: fail the transfer (reported) or just drop it. */
static void
session_ota_abort(struct session *s, bool report)
{
	struct session_ota *so = s->ota;

	if (so == NULL)
		return;
	s->ota = NULL;
	if (report)
		ota_abort(so->ota, OTA_FAIL_DISCONNECTED,
			  "the device disconnected");
	ota_free(so->ota);
	free(so);
}

int
session_ota_start(struct session *s, struct ota_image *img,
		  const struct ota_params *p, session_ota_space_cb space,
		  session_ota_report_cb report, void *arg, uint64_t now_ms)
{
	struct session_ota *so;
	struct ota_params par;
	int r;

	if (s->state != SESSION_READY)
		return CINDER_ERR_UNAVAILABLE;
	if (s->ota != NULL)
		return CINDER_ERR_BUSY;
	if (p != NULL)
		par = *p;
	else
		memset(&par, 0, sizeof(par));
	/* Every message must pass session_send()'s device limit. */
	if (par.max_msg == 0 || par.max_msg > session_rx_max(s))
		par.max_msg = (uint16_t)session_rx_max(s);
	so = xcalloc(1, sizeof(*so));
	so->s = s;
	so->space = space;
	so->report = report;
	so->arg = arg;
	if ((r = ota_new(&session_ota_ops, so, img, &par, &so->ota)) != 0) {
		free(so);
		return r;
	}
	s->ota = so;
	log_ctx(LOG_LEVEL_INFO, s->log_ctx,
		"firmware transfer: %zu bytes, %u chunks of %u", img->len,
		(unsigned)ota_chunk_count(so->ota),
		(unsigned)ota_chunk_size(so->ota));
	(void)ota_start(so->ota, now_ms); /* a failure is reported */
	session_ota_reap(s, now_ms);
	return 0;
}

void
session_ota_pump(struct session *s, uint64_t now_ms)
{
	if (s->ota == NULL || s->state == SESSION_CLOSED)
		return;
	ota_pump(s->ota->ota, now_ms);
	session_ota_reap(s, now_ms);
}

bool
session_ota_active(const struct session *s)
{
	return s->ota != NULL;
}
