/* SPDX-License-Identifier: MIT */
/*
 * Particle message layer on top of the CoAP codec (protocol.md §3-§5):
 * a classifier, the device-constraint check, and a builder and a parser
 * for each message of the catalogue (§3.6), for both directions, since
 * the daemon and firmware-stubs share it. Pure: no I/O or allocation;
 * builders write into caller buffers, parsers return views.
 */
#include "config.h"

#include <string.h>

#include "coap/pcoap.h"

/* The one-letter first Uri-Path (§3.2), or 0 when there is none. */
static int
first_letter(const struct pcoap_msg *m)
{
	if (m->n_opts == 0 || m->opts[0].num != PCOAP_OPT_URI_PATH ||
	    m->opts[0].len != 1 || m->opts[0].val == NULL)
		return 0;
	return m->opts[0].val[0];
}

static int
is_request_code(uint8_t code)
{
	return code >= PCOAP_CODE_GET && code <= PCOAP_CODE_PUT;
}

/* Response classes 2.xx to 5.xx (RFC 7252 §12.1). */
static int
is_response_code(uint8_t code)
{
	return code >= PCOAP_CODE(2, 0) && code < PCOAP_CODE(6, 0);
}

int
pcoap_particle_kind(const struct pcoap_msg *m)
{
	int letter;

	if (m->type == PCOAP_RST)
		return PCOAP_KIND_RST;
	if (m->code == PCOAP_CODE_EMPTY) {
		if (m->type == PCOAP_ACK)
			return PCOAP_KIND_EMPTY_ACK;
		if (m->type == PCOAP_CON && m->token.len == 0 &&
		    m->n_opts == 0 && m->payload.len == 0)
			return PCOAP_KIND_PING;
		return PCOAP_KIND_UNKNOWN;
	}
	if (is_response_code(m->code))
		return m->type == PCOAP_ACK ? PCOAP_KIND_ACK
					    : PCOAP_KIND_RESPONSE;
	if (!is_request_code(m->code) || m->type == PCOAP_ACK)
		return PCOAP_KIND_UNKNOWN;
	letter = first_letter(m);
	switch (m->code) {
	case PCOAP_CODE_GET:
		switch (letter) {
		case 'd':
			return PCOAP_KIND_DESCRIBE;
		case 'v':
			return PCOAP_KIND_VARIABLE;
		case 'e':
			return PCOAP_KIND_SUBSCRIBE;
		case 't':
			return PCOAP_KIND_TIME;
		case 'c':
			return PCOAP_KIND_CHUNK_MISSED;
		}
		break;
	case PCOAP_CODE_POST:
		switch (letter) {
		case 'h':
			return PCOAP_KIND_HELLO;
		case 'd':
			return PCOAP_KIND_DESCRIBE_POST;
		case 'f':
			return PCOAP_KIND_FUNCTION_CALL;
		case 'e':
		case 'E':
			return PCOAP_KIND_EVENT;
		case 'u':
			return PCOAP_KIND_UPDATE_BEGIN;
		case 's':
			return PCOAP_KIND_SAVE_BEGIN;
		case 'c':
			return PCOAP_KIND_CHUNK;
		case 'x':
			return PCOAP_KIND_GOODBYE;
		}
		break;
	case PCOAP_CODE_PUT:
		switch (letter) {
		case 's':
			return PCOAP_KIND_SIGNAL;
		case 'k':
			return PCOAP_KIND_KEY_CHANGE;
		case 'u':
			return PCOAP_KIND_UPDATE_DONE;
		}
		break;
	}
	return PCOAP_KIND_UNKNOWN;
}

const char *
pcoap_kind_str(int kind)
{
	switch (kind) {
	case PCOAP_KIND_PING:
		return "ping";
	case PCOAP_KIND_EMPTY_ACK:
		return "empty_ack";
	case PCOAP_KIND_ACK:
		return "ack";
	case PCOAP_KIND_RESPONSE:
		return "response";
	case PCOAP_KIND_RST:
		return "rst";
	case PCOAP_KIND_HELLO:
		return "hello";
	case PCOAP_KIND_DESCRIBE:
		return "describe";
	case PCOAP_KIND_DESCRIBE_POST:
		return "describe_post";
	case PCOAP_KIND_FUNCTION_CALL:
		return "function_call";
	case PCOAP_KIND_VARIABLE:
		return "variable";
	case PCOAP_KIND_EVENT:
		return "event";
	case PCOAP_KIND_SUBSCRIBE:
		return "subscribe";
	case PCOAP_KIND_TIME:
		return "time";
	case PCOAP_KIND_SIGNAL:
		return "signal";
	case PCOAP_KIND_KEY_CHANGE:
		return "key_change";
	case PCOAP_KIND_UPDATE_BEGIN:
		return "update_begin";
	case PCOAP_KIND_SAVE_BEGIN:
		return "save_begin";
	case PCOAP_KIND_CHUNK:
		return "chunk";
	case PCOAP_KIND_CHUNK_MISSED:
		return "chunk_missed";
	case PCOAP_KIND_UPDATE_DONE:
		return "update_done";
	case PCOAP_KIND_GOODBYE:
		return "goodbye";
	default:
		return "unknown";
	}
}

/* Kinds the device answers using the request token at a fixed offset. */
static int
kind_needs_token(int kind)
{
	switch (kind) {
	case PCOAP_KIND_DESCRIBE:
	case PCOAP_KIND_FUNCTION_CALL:
	case PCOAP_KIND_VARIABLE:
	case PCOAP_KIND_SIGNAL:
	case PCOAP_KIND_KEY_CHANGE:
	case PCOAP_KIND_UPDATE_BEGIN:
	case PCOAP_KIND_SAVE_BEGIN:
	case PCOAP_KIND_CHUNK:
	case PCOAP_KIND_UPDATE_DONE:
		return 1;
	default:
		return 0;
	}
}

static int
opt_is(const struct pcoap_msg *m, size_t i, uint16_t num)
{
	return i < m->n_opts && m->opts[i].num == num;
}

int
pcoap_check_to_device(const struct pcoap_msg *m, size_t max_len)
{
	size_t size, i;
	int r, kind;

	if ((r = pcoap_msg_encoded_size(m, &size)) != 0)
		return r;
	if (size > max_len)
		return PCOAP_TOO_BIG;
	/* Any 2.05 is taken for the time reply, read at offset 6 (§3.10). */
	if (m->code == PCOAP_CODE_CONTENT &&
	    (m->type != PCOAP_ACK || m->token.len != 1 || m->n_opts != 0 ||
	     m->payload.len != 4))
		return PCOAP_MALFORMED;
	kind = pcoap_particle_kind(m);
	if (is_request_code(m->code) && first_letter(m) == 0)
		return PCOAP_MALFORMED;
	if (kind_needs_token(kind) && m->token.len != 1)
		return PCOAP_MALFORMED;
	switch (kind) {
	case PCOAP_KIND_UNKNOWN:
	case PCOAP_KIND_SUBSCRIBE:
	case PCOAP_KIND_TIME:
	case PCOAP_KIND_CHUNK_MISSED:
	case PCOAP_KIND_DESCRIBE_POST:
	case PCOAP_KIND_GOODBYE:
		/* Not something a server sends; the device would drop it. */
		return PCOAP_MALFORMED;
	case PCOAP_KIND_FUNCTION_CALL:
		/* Name at byte 7, argument query right after it (§3.2). */
		if (!opt_is(m, 1, PCOAP_OPT_URI_PATH) ||
		    !opt_is(m, 2, PCOAP_OPT_URI_QUERY))
			return PCOAP_MALFORMED;
		break;
	case PCOAP_KIND_VARIABLE:
		if (!opt_is(m, 1, PCOAP_OPT_URI_PATH))
			return PCOAP_MALFORMED;
		break;
	case PCOAP_KIND_DESCRIBE:
		/* Flags read at byte 8. */
		if (m->n_opts > 2 ||
		    (m->n_opts == 2 && (!opt_is(m, 1, PCOAP_OPT_URI_QUERY) ||
					m->opts[1].len != 1)))
			return PCOAP_MALFORMED;
		break;
	case PCOAP_KIND_SIGNAL:
		if (m->n_opts != 2 || !opt_is(m, 1, PCOAP_OPT_URI_QUERY) ||
		    m->opts[1].len != 1)
			return PCOAP_MALFORMED;
		break;
	case PCOAP_KIND_UPDATE_BEGIN:
	case PCOAP_KIND_SAVE_BEGIN:
		/* Payload marker at byte 7 and 12 bytes, or defaults (§5.2). */
		if (m->n_opts != 1 || m->payload.len != PCOAP_UPDATE_BEGIN_LEN)
			return PCOAP_MALFORMED;
		break;
	case PCOAP_KIND_CHUNK:
		if (m->n_opts < 2 || m->n_opts > 3 ||
		    !opt_is(m, 1, PCOAP_OPT_URI_QUERY) || m->opts[1].len != 4)
			return PCOAP_MALFORMED;
		if (m->n_opts == 3 &&
		    (!opt_is(m, 2, PCOAP_OPT_URI_QUERY) || m->opts[2].len != 2))
			return PCOAP_MALFORMED;
		break;
	case PCOAP_KIND_EVENT:
		/* Only Uri-Path, then optional Max-Age (§3.2). */
		if (!opt_is(m, 1, PCOAP_OPT_URI_PATH))
			return PCOAP_MALFORMED;
		for (i = 1; i < m->n_opts; i++) {
			if (m->opts[i].num != PCOAP_OPT_URI_PATH &&
			    m->opts[i].num != PCOAP_OPT_MAX_AGE)
				return PCOAP_MALFORMED;
		}
		if (pcoap_msg_opt(m, PCOAP_OPT_MAX_AGE, 1) != NULL)
			return PCOAP_MALFORMED;
		break;
	default:
		break;
	}
	return PCOAP_OK;
}

/* ---------------------------------------------------------------- */
/* Byte helpers.                                                      */

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static const uint8_t letter_h[] = {'h'};
static const uint8_t letter_d[] = {'d'};
static const uint8_t letter_f[] = {'f'};
static const uint8_t letter_v[] = {'v'};
static const uint8_t letter_e[] = {'e'};
static const uint8_t letter_E[] = {'E'};
static const uint8_t letter_t[] = {'t'};
static const uint8_t letter_s[] = {'s'};
static const uint8_t letter_u[] = {'u'};
static const uint8_t letter_c[] = {'c'};
static const uint8_t letter_k[] = {'k'};
static const uint8_t letter_x[] = {'x'};
static const uint8_t query_mine[] = {'u'};

/* Start a request: type, code, optional 1-byte token, letter. */
static void
request_init(struct pcoap_msg *m, uint8_t type, uint8_t code, uint16_t mid,
	     const uint8_t *tok, const uint8_t *letter)
{
	pcoap_msg_init(m, type, code, mid);
	if (tok != NULL) {
		m->token.p = tok;
		m->token.len = 1;
	}
	m->opts[0].num = PCOAP_OPT_URI_PATH;
	m->opts[0].val = letter;
	m->opts[0].len = 1;
	m->n_opts = 1;
}

static void
set_payload(struct pcoap_msg *m, const void *p, size_t len)
{
	m->payload.p = len > 0 ? p : NULL;
	m->payload.len = len;
}

/* ---------------------------------------------------------------- */
/* Builders.                                                          */

int
pcoap_build_hello(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		  const struct pcoap_hello *h)
{
	struct pcoap_msg m;
	uint8_t pl[PCOAP_HELLO_LEN_EXT_TCP];

	request_init(&m, PCOAP_NON, PCOAP_CODE_POST, mid, NULL, letter_h);
	if (h != NULL) {
		put_be16(pl, h->product_id);
		put_be16(pl + 2, h->product_version);
		pl[4] = 0;
		pl[5] = h->flags;
		put_be16(pl + 6, h->platform_id);
		if (h->extended) {
			pl[8] = 0; /* reserved */
			pl[9] = 0; /* no device ID over TCP */
			put_be16(pl + 10, h->system_version);
			put_be16(pl + 12, h->max_message_size);
			put_be32(pl + 14, h->max_binary_size);
			put_be16(pl + 18, h->ota_chunk_size);
		}
		set_payload(&m, pl,
			    h->extended ? PCOAP_HELLO_LEN_EXT_TCP
					: PCOAP_HELLO_LEN_TCP);
	}
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_ping(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid)
{
	struct pcoap_msg m;

	pcoap_msg_init(&m, PCOAP_CON, PCOAP_CODE_EMPTY, mid);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_empty_ack(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid)
{
	struct pcoap_msg m;

	pcoap_msg_init(&m, PCOAP_ACK, PCOAP_CODE_EMPTY, mid);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_reply(uint8_t *out, size_t cap, size_t *out_len, uint8_t type,
		  uint8_t code, uint16_t mid, const uint8_t *token,
		  size_t token_len, const uint8_t *payload, size_t payload_len)
{
	struct pcoap_msg m;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if (type == PCOAP_RST || !is_response_code(code))
		return PCOAP_MALFORMED;
	pcoap_msg_init(&m, type, code, mid);
	if ((r = pcoap_msg_set_token(&m, token, token_len)) != 0)
		return r;
	set_payload(&m, payload, payload_len);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_describe(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		     uint8_t tok, uint8_t flags)
{
	struct pcoap_msg m;

	request_init(&m, PCOAP_CON, PCOAP_CODE_GET, mid, &tok, letter_d);
	if (flags != 0)
		pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, &flags, 1);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_describe_reply(uint8_t *out, size_t cap, size_t *out_len,
			   uint8_t type, uint16_t mid, uint8_t tok,
			   const char *json, size_t json_len)
{
	if (type != PCOAP_ACK && type != PCOAP_CON) {
		if (out_len != NULL)
			*out_len = 0;
		return PCOAP_MALFORMED;
	}
	return pcoap_build_reply(out, cap, out_len, type, PCOAP_CODE_CONTENT,
				 mid, &tok, 1, (const uint8_t *)json, json_len);
}

int
pcoap_build_describe_post(uint8_t *out, size_t cap, size_t *out_len,
			  uint16_t mid, uint8_t flags, const char *json,
			  size_t json_len)
{
	struct pcoap_msg m;

	request_init(&m, PCOAP_CON, PCOAP_CODE_POST, mid, NULL, letter_d);
	pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, &flags, 1);
	set_payload(&m, json, json_len);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_function_call(uint8_t *out, size_t cap, size_t *out_len,
			  uint16_t mid, uint8_t tok, const char *name,
			  size_t name_len, const char *arg, size_t arg_len)
{
	struct pcoap_msg m;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if (name_len == 0)
		return PCOAP_MALFORMED;
	request_init(&m, PCOAP_CON, PCOAP_CODE_POST, mid, &tok, letter_f);
	if ((r = pcoap_msg_add_opt(&m, PCOAP_OPT_URI_PATH, name, name_len)) !=
	    0)
		return r;
	/* Always present, even when empty: the device reads it blindly. */
	if ((r = pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, arg, arg_len)) != 0)
		return r;
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_function_return(uint8_t *out, size_t cap, size_t *out_len,
			    uint16_t mid, uint8_t tok, int32_t value)
{
	uint8_t pl[4];

	put_be32(pl, (uint32_t)value);
	return pcoap_build_reply(out, cap, out_len, PCOAP_NON,
				 PCOAP_CODE_CHANGED, mid, &tok, 1, pl,
				 sizeof(pl));
}

int
pcoap_build_variable(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		     uint8_t tok, const char *name, size_t name_len)
{
	struct pcoap_msg m;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if (name_len == 0)
		return PCOAP_MALFORMED;
	request_init(&m, PCOAP_CON, PCOAP_CODE_GET, mid, &tok, letter_v);
	if ((r = pcoap_msg_add_opt(&m, PCOAP_OPT_URI_PATH, name, name_len)) !=
	    0)
		return r;
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_variable_reply(uint8_t *out, size_t cap, size_t *out_len,
			   uint8_t type, uint16_t mid, uint8_t tok,
			   const uint8_t *value, size_t value_len)
{
	if (type != PCOAP_ACK && type != PCOAP_NON) {
		if (out_len != NULL)
			*out_len = 0;
		return PCOAP_MALFORMED;
	}
	return pcoap_build_reply(out, cap, out_len, type, PCOAP_CODE_CONTENT,
				 mid, &tok, 1, value, value_len);
}

int
pcoap_value_encode_bool(bool v, uint8_t *out, size_t cap, size_t *out_len)
{
	if (out_len != NULL)
		*out_len = 0;
	if (out == NULL || cap < 1)
		return PCOAP_NOSPACE;
	out[0] = v ? 1 : 0;
	if (out_len != NULL)
		*out_len = 1;
	return PCOAP_OK;
}

int
pcoap_value_encode_int32(int32_t v, uint8_t *out, size_t cap, size_t *out_len)
{
	if (out_len != NULL)
		*out_len = 0;
	if (out == NULL || cap < 4)
		return PCOAP_NOSPACE;
	put_be32(out, (uint32_t)v);
	if (out_len != NULL)
		*out_len = 4;
	return PCOAP_OK;
}

int
pcoap_value_encode_double(double v, uint8_t *out, size_t cap, size_t *out_len)
{
	uint64_t bits;
	size_t i;

	if (out_len != NULL)
		*out_len = 0;
	if (out == NULL || cap < 8)
		return PCOAP_NOSPACE;
	/* IEEE-754 bits, written LE as the device's memory holds them. */
	memcpy(&bits, &v, sizeof(bits));
	for (i = 0; i < 8; i++)
		out[i] = (uint8_t)(bits >> (8 * i));
	if (out_len != NULL)
		*out_len = 8;
	return PCOAP_OK;
}

int
pcoap_value_decode_bool(const uint8_t *p, size_t len, bool *v)
{
	*v = false;
	if (p == NULL || len != 1)
		return PCOAP_MALFORMED;
	*v = p[0] != 0;
	return PCOAP_OK;
}

int
pcoap_value_decode_int32(const uint8_t *p, size_t len, int32_t *v)
{
	*v = 0;
	if (p == NULL || len != 4)
		return PCOAP_MALFORMED;
	*v = (int32_t)get_be32(p);
	return PCOAP_OK;
}

int
pcoap_value_decode_double(const uint8_t *p, size_t len, double *v)
{
	uint64_t bits = 0;
	size_t i;

	*v = 0;
	if (p == NULL || len != 8)
		return PCOAP_MALFORMED;
	for (i = 0; i < 8; i++)
		bits |= (uint64_t)p[i] << (8 * i);
	memcpy(v, &bits, sizeof(*v));
	return PCOAP_OK;
}

int
pcoap_build_event(uint8_t *out, size_t cap, size_t *out_len, uint8_t type,
		  uint16_t mid, bool is_private, const char *name,
		  size_t name_len, uint32_t ttl, const uint8_t *data,
		  size_t data_len)
{
	struct pcoap_msg m;
	uint8_t age[3];
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if (type != PCOAP_NON && type != PCOAP_CON)
		return PCOAP_MALFORMED;
	if (name_len == 0)
		return PCOAP_MALFORMED;
	if (ttl > PCOAP_EVENT_TTL_MAX)
		return PCOAP_TOO_BIG;
	request_init(&m, type, PCOAP_CODE_POST, mid, NULL,
		     is_private ? letter_E : letter_e);
	if ((r = pcoap_msg_add_opt(&m, PCOAP_OPT_URI_PATH, name, name_len)) !=
	    0)
		return r;
	if (ttl != PCOAP_EVENT_TTL_DEFAULT) {
		/* The device always writes 3 bytes (§3.8). */
		age[0] = (uint8_t)(ttl >> 16);
		age[1] = (uint8_t)(ttl >> 8);
		age[2] = (uint8_t)ttl;
		pcoap_msg_add_opt(&m, PCOAP_OPT_MAX_AGE, age, sizeof(age));
	}
	set_payload(&m, data, data_len);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_subscribe(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		      const char *filter, size_t filter_len, int scope,
		      const char *device_id, size_t device_id_len)
{
	struct pcoap_msg m;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	request_init(&m, PCOAP_CON, PCOAP_CODE_GET, mid, NULL, letter_e);
	if (filter_len > 0 && (r = pcoap_msg_add_opt(&m, PCOAP_OPT_URI_PATH,
						     filter, filter_len)) != 0)
		return r;
	switch (scope) {
	case PCOAP_SCOPE_ALL:
		break;
	case PCOAP_SCOPE_MINE:
		pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, query_mine, 1);
		break;
	case PCOAP_SCOPE_DEVICE:
		if (device_id_len == 0 || device_id == NULL)
			return PCOAP_MALFORMED;
		set_payload(&m, device_id, device_id_len);
		break;
	default:
		return PCOAP_MALFORMED;
	}
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_time(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		 uint8_t tok)
{
	struct pcoap_msg m;

	request_init(&m, PCOAP_CON, PCOAP_CODE_GET, mid, &tok, letter_t);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_time_reply(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		       uint8_t tok, uint32_t unix_time)
{
	uint8_t pl[4];

	put_be32(pl, unix_time);
	return pcoap_build_reply(out, cap, out_len, PCOAP_ACK,
				 PCOAP_CODE_CONTENT, mid, &tok, 1, pl,
				 sizeof(pl));
}

int
pcoap_build_signal(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		   uint8_t tok, bool on)
{
	struct pcoap_msg m;
	uint8_t v = on ? 1 : 0;

	request_init(&m, PCOAP_CON, PCOAP_CODE_PUT, mid, &tok, letter_s);
	pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, &v, 1);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_update_begin(uint8_t *out, size_t cap, size_t *out_len,
			 uint16_t mid, uint8_t tok,
			 const struct pcoap_update_begin *ub)
{
	struct pcoap_msg m;
	uint8_t pl[PCOAP_UPDATE_BEGIN_LEN];

	if (ub == NULL) {
		if (out_len != NULL)
			*out_len = 0;
		return PCOAP_MALFORMED;
	}
	pl[0] = ub->flags;
	put_be16(pl + 1, ub->chunk_size);
	put_be32(pl + 3, ub->file_size);
	pl[7] = ub->store;
	put_be32(pl + 8, ub->address);
	request_init(&m, PCOAP_CON, PCOAP_CODE_POST, mid, &tok, letter_u);
	set_payload(&m, pl, sizeof(pl));
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_update_ready(uint8_t *out, size_t cap, size_t *out_len,
			 uint16_t mid, uint8_t tok, uint8_t flags)
{
	return pcoap_build_reply(out, cap, out_len, PCOAP_NON,
				 PCOAP_CODE_CHANGED, mid, &tok, 1, &flags, 1);
}

int
pcoap_build_chunk(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		  uint8_t tok, uint32_t crc, int32_t index, const uint8_t *data,
		  size_t data_len)
{
	struct pcoap_msg m;
	uint8_t crc_be[4], idx_be[2];

	if (out_len != NULL)
		*out_len = 0;
	if (index > 0xffff)
		return PCOAP_TOO_BIG;
	request_init(&m, PCOAP_CON, PCOAP_CODE_POST, mid, &tok, letter_c);
	put_be32(crc_be, crc);
	pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, crc_be, sizeof(crc_be));
	if (index >= 0) {
		put_be16(idx_be, (uint16_t)index);
		pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, idx_be,
				  sizeof(idx_be));
	}
	set_payload(&m, data, data_len);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_build_chunk_received(uint8_t *out, size_t cap, size_t *out_len,
			   uint16_t mid, uint8_t tok, bool ok)
{
	return pcoap_build_reply(out, cap, out_len, PCOAP_NON,
				 ok ? PCOAP_CODE_CHANGED
				    : PCOAP_CODE_BAD_REQUEST,
				 mid, &tok, 1, NULL, 0);
}

int
pcoap_build_chunk_missed(uint8_t *out, size_t cap, size_t *out_len,
			 uint8_t type, uint16_t mid, const uint16_t *idx,
			 size_t n)
{
	struct pcoap_msg m;
	size_t i, need;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if ((type != PCOAP_CON && type != PCOAP_NON) || n == 0 || idx == NULL)
		return PCOAP_MALFORMED;
	if (n > 0xffff)
		return PCOAP_TOO_BIG;
	/* The indexes go straight into out after the encoded header. */
	request_init(&m, type, PCOAP_CODE_GET, mid, NULL, letter_c);
	if ((r = pcoap_msg_encoded_size(&m, &need)) != 0)
		return r;
	if (out == NULL || cap < need || cap - need < 1 + 2 * n)
		return PCOAP_NOSPACE;
	if ((r = pcoap_msg_encode(&m, out, cap, NULL)) != 0)
		return r;
	out[need] = 0xff;
	for (i = 0; i < n; i++)
		put_be16(out + need + 1 + 2 * i, idx[i]);
	if (out_len != NULL)
		*out_len = need + 1 + 2 * n;
	return PCOAP_OK;
}

int
pcoap_build_update_done(uint8_t *out, size_t cap, size_t *out_len, uint8_t type,
			uint16_t mid, const uint8_t *token, size_t token_len,
			const uint8_t *payload, size_t payload_len)
{
	struct pcoap_msg m;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if (type != PCOAP_CON && type != PCOAP_NON)
		return PCOAP_MALFORMED;
	request_init(&m, type, PCOAP_CODE_PUT, mid, NULL, letter_u);
	if ((r = pcoap_msg_set_token(&m, token, token_len)) != 0)
		return r;
	set_payload(&m, payload, payload_len);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

/* ---------------------------------------------------------------- */
/* Parsers.                                                           */

/* A request of the given kind with exactly a 1-byte token. */
static int
want_tok_request(const struct pcoap_msg *m, int kind, uint8_t *tok)
{
	if (tok != NULL)
		*tok = 0;
	if (pcoap_particle_kind(m) != kind || m->token.len != 1)
		return PCOAP_MALFORMED;
	if (tok != NULL)
		*tok = m->token.p[0];
	return PCOAP_OK;
}

/*
 * Join the Uri-Path segments after the letter with '/' into buf and
 * NUL-terminate. *len gets the length without the NUL.
 */
static int
join_path(const struct pcoap_msg *m, char *buf, size_t cap, size_t *len)
{
	const struct pcoap_opt *o;
	size_t n = 0, i;

	*len = 0;
	if (buf == NULL || cap == 0)
		return PCOAP_NOSPACE;
	buf[0] = '\0';
	for (i = 1; (o = pcoap_msg_opt(m, PCOAP_OPT_URI_PATH, i)) != NULL;
	     i++) {
		size_t sep = i > 1 ? 1 : 0;

		if (cap - n <= sep + o->len)
			return PCOAP_NOSPACE;
		if (sep)
			buf[n++] = '/';
		if (o->len > 0)
			memcpy(buf + n, o->val, o->len);
		n += o->len;
	}
	buf[n] = '\0';
	*len = n;
	return PCOAP_OK;
}

int
pcoap_parse_hello(const struct pcoap_msg *m, struct pcoap_hello *h)
{
	const uint8_t *p = m->payload.p;
	size_t len = m->payload.len, idlen = 0, ext;

	memset(h, 0, sizeof(*h));
	h->product_id = 0xffff;
	h->product_version = 0xffff;
	h->platform_id = 0xffff;
	if (pcoap_particle_kind(m) != PCOAP_KIND_HELLO)
		return PCOAP_MALFORMED;
	/*
	 * The layouts: 0, 6, 8, 22 (old DTLS: 00 0c and the ID) and the
	 * extended one, at least 20 bytes: byte 8 reserved, byte 9 the ID
	 * length n (0 or 12), the ID, then 10 bytes of fields; anything
	 * after them is newer than us and ignored. Other lengths are cut.
	 */
	if (len >= 10)
		idlen = p[9];
	if (len == 22 && idlen == PCOAP_DEVICE_ID_BYTES)
		ext = 0; /* the old DTLS Hello */
	else if (len >= PCOAP_HELLO_LEN_EXT_TCP &&
		 (idlen == 0 || idlen == PCOAP_DEVICE_ID_BYTES) &&
		 len >= PCOAP_HELLO_LEN_EXT_TCP + idlen)
		ext = 10 + idlen;
	else if (len == 0 || len == 6 || len == 8)
		ext = 0;
	else
		return PCOAP_MALFORMED;
	if (len > PCOAP_HELLO_LEN_MAX)
		return PCOAP_MALFORMED;
	h->payload_len = len;
	if (len >= 6) {
		h->product_id = get_be16(p);
		h->product_version = get_be16(p + 2);
		h->flags = p[5];
	}
	if (len >= 8)
		h->platform_id = get_be16(p + 6);
	if (idlen > 0) {
		h->device_id.p = p + 10;
		h->device_id.len = idlen;
	}
	if (ext > 0) {
		h->extended = true;
		h->system_version = get_be16(p + ext);
		h->max_message_size = get_be16(p + ext + 2);
		h->max_binary_size = get_be32(p + ext + 4);
		h->ota_chunk_size = get_be16(p + ext + 8);
	}
	return PCOAP_OK;
}

int
pcoap_parse_describe(const struct pcoap_msg *m, uint8_t *tok, uint8_t *flags)
{
	const struct pcoap_opt *q;
	int r;

	*flags = 0;
	if ((r = want_tok_request(m, PCOAP_KIND_DESCRIBE, tok)) != 0)
		return r;
	q = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0);
	if (q != NULL) {
		if (q->len != 1)
			return PCOAP_MALFORMED;
		*flags = q->val[0];
	}
	return PCOAP_OK;
}

int
pcoap_parse_describe_post(const struct pcoap_msg *m, uint8_t *flags,
			  struct pcoap_view *json)
{
	const struct pcoap_opt *q;

	*flags = 0;
	json->p = NULL;
	json->len = 0;
	if (pcoap_particle_kind(m) != PCOAP_KIND_DESCRIBE_POST)
		return PCOAP_MALFORMED;
	q = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0);
	if (q != NULL) {
		if (q->len != 1)
			return PCOAP_MALFORMED;
		*flags = q->val[0];
	}
	*json = m->payload;
	return PCOAP_OK;
}

/* Name (second Uri-Path) of a function call or variable request. */
static int
parse_call(const struct pcoap_msg *m, int kind, struct pcoap_call *c)
{
	const struct pcoap_opt *name, *arg;
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = want_tok_request(m, kind, &c->token)) != 0)
		return r;
	name = pcoap_msg_opt(m, PCOAP_OPT_URI_PATH, 1);
	if (name == NULL || name->len == 0)
		return PCOAP_MALFORMED;
	c->name.p = name->val;
	c->name.len = name->len;
	if (kind == PCOAP_KIND_FUNCTION_CALL &&
	    (arg = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0)) != NULL) {
		c->arg.p = arg->val;
		c->arg.len = arg->len;
	}
	return PCOAP_OK;
}

int
pcoap_parse_function_call(const struct pcoap_msg *m, struct pcoap_call *c)
{
	return parse_call(m, PCOAP_KIND_FUNCTION_CALL, c);
}

int
pcoap_parse_variable(const struct pcoap_msg *m, struct pcoap_call *c)
{
	return parse_call(m, PCOAP_KIND_VARIABLE, c);
}

int
pcoap_parse_event(const struct pcoap_msg *m, struct pcoap_event *ev, char *name,
		  size_t name_cap)
{
	const struct pcoap_opt *age;
	uint32_t ttl;
	int r;

	memset(ev, 0, sizeof(*ev));
	ev->ttl = PCOAP_EVENT_TTL_DEFAULT;
	if (name != NULL && name_cap > 0)
		name[0] = '\0';
	if (pcoap_particle_kind(m) != PCOAP_KIND_EVENT)
		return PCOAP_MALFORMED;
	ev->is_private = m->opts[0].val[0] == 'E';
	if (pcoap_msg_opt(m, PCOAP_OPT_URI_PATH, 1) == NULL)
		return PCOAP_MALFORMED;
	if ((age = pcoap_msg_opt(m, PCOAP_OPT_MAX_AGE, 0)) != NULL) {
		if (pcoap_opt_uint(age, &ttl) != 0)
			return PCOAP_MALFORMED;
		if (ttl != 0)
			ev->ttl = ttl;
	}
	if ((r = join_path(m, name, name_cap, &ev->name_len)) != 0)
		return r;
	if (ev->name_len == 0)
		return PCOAP_MALFORMED;
	ev->data = m->payload;
	return PCOAP_OK;
}

int
pcoap_parse_subscribe(const struct pcoap_msg *m, struct pcoap_subscribe *s,
		      char *filter, size_t filter_cap)
{
	const struct pcoap_opt *q;
	int r;

	memset(s, 0, sizeof(*s));
	if (filter != NULL && filter_cap > 0)
		filter[0] = '\0';
	if (pcoap_particle_kind(m) != PCOAP_KIND_SUBSCRIBE)
		return PCOAP_MALFORMED;
	if ((r = join_path(m, filter, filter_cap, &s->filter_len)) != 0)
		return r;
	q = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0);
	if (m->payload.len > 0) {
		s->scope = PCOAP_SCOPE_DEVICE;
		s->device_id = m->payload;
	} else if (q != NULL && q->len == 1 && q->val[0] == 'u') {
		s->scope = PCOAP_SCOPE_MINE;
	} else if (q != NULL) {
		return PCOAP_MALFORMED;
	} else {
		s->scope = PCOAP_SCOPE_ALL;
	}
	return PCOAP_OK;
}

int
pcoap_parse_time_reply(const struct pcoap_msg *m, uint32_t *unix_time)
{
	*unix_time = 0;
	if (m->code != PCOAP_CODE_CONTENT || m->type == PCOAP_RST ||
	    m->token.len != 1 || m->payload.len != 4)
		return PCOAP_MALFORMED;
	*unix_time = get_be32(m->payload.p);
	return PCOAP_OK;
}

int
pcoap_parse_signal(const struct pcoap_msg *m, uint8_t *tok, bool *on)
{
	const struct pcoap_opt *q;
	int r;

	*on = false;
	if ((r = want_tok_request(m, PCOAP_KIND_SIGNAL, tok)) != 0)
		return r;
	q = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0);
	if (q == NULL || q->len != 1)
		return PCOAP_MALFORMED;
	*on = q->val[0] != 0;
	return PCOAP_OK;
}

int
pcoap_parse_update_begin(const struct pcoap_msg *m, uint8_t *tok,
			 struct pcoap_update_begin *ub)
{
	const uint8_t *p = m->payload.p;

	memset(ub, 0, sizeof(*ub));
	ub->chunk_size = PCOAP_CHUNK_SIZE_DEFAULT;
	if (tok != NULL)
		*tok = 0;
	if (pcoap_particle_kind(m) == PCOAP_KIND_SAVE_BEGIN) {
		if (want_tok_request(m, PCOAP_KIND_SAVE_BEGIN, tok) != 0)
			return PCOAP_MALFORMED;
	} else if (want_tok_request(m, PCOAP_KIND_UPDATE_BEGIN, tok) != 0) {
		return PCOAP_MALFORMED;
	}
	if (m->payload.len == 0)
		return PCOAP_OK;
	if (m->payload.len < PCOAP_UPDATE_BEGIN_LEN)
		return PCOAP_MALFORMED;
	ub->flags = p[0];
	ub->chunk_size = get_be16(p + 1);
	ub->file_size = get_be32(p + 3);
	ub->store = p[7];
	ub->address = get_be32(p + 8);
	return PCOAP_OK;
}

int
pcoap_parse_update_ready(const struct pcoap_msg *m, uint8_t *flags)
{
	*flags = 0;
	if (m->code != PCOAP_CODE_CHANGED || m->type == PCOAP_RST)
		return PCOAP_MALFORMED;
	if (m->payload.len > 0)
		*flags = m->payload.p[0];
	return PCOAP_OK;
}

int
pcoap_parse_chunk(const struct pcoap_msg *m, struct pcoap_chunk *c)
{
	const struct pcoap_opt *crc, *idx;
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = want_tok_request(m, PCOAP_KIND_CHUNK, &c->token)) != 0)
		return r;
	crc = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0);
	if (crc == NULL || crc->len != 4)
		return PCOAP_MALFORMED;
	c->crc = get_be32(crc->val);
	if ((idx = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 1)) != NULL) {
		if (idx->len != 2)
			return PCOAP_MALFORMED;
		c->has_index = true;
		c->index = get_be16(idx->val);
	}
	c->data = m->payload;
	return PCOAP_OK;
}

int
pcoap_parse_chunk_missed(const struct pcoap_msg *m, uint16_t *idx, size_t cap,
			 size_t *n)
{
	size_t i, count;

	*n = 0;
	if (pcoap_particle_kind(m) != PCOAP_KIND_CHUNK_MISSED)
		return PCOAP_MALFORMED;
	if (m->payload.len == 0 || m->payload.len % 2 != 0)
		return PCOAP_MALFORMED;
	count = m->payload.len / 2;
	if (count > cap || idx == NULL)
		return PCOAP_NOSPACE;
	for (i = 0; i < count; i++)
		idx[i] = get_be16(m->payload.p + 2 * i);
	*n = count;
	return PCOAP_OK;
}

int
pcoap_parse_update_done(const struct pcoap_msg *m, struct pcoap_view *payload)
{
	payload->p = NULL;
	payload->len = 0;
	if (pcoap_particle_kind(m) != PCOAP_KIND_UPDATE_DONE)
		return PCOAP_MALFORMED;
	/* From the server: CON with the 1-byte token the device echoes. */
	if (m->type == PCOAP_CON && m->token.len != 1)
		return PCOAP_MALFORMED;
	*payload = m->payload;
	return PCOAP_OK;
}

int
pcoap_build_key_change(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		       uint8_t tok, uint8_t flags)
{
	struct pcoap_msg m;

	request_init(&m, PCOAP_CON, PCOAP_CODE_PUT, mid, &tok, letter_k);
	if (flags != 0)
		pcoap_msg_add_opt(&m, PCOAP_OPT_URI_QUERY, &flags, 1);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_parse_key_change(const struct pcoap_msg *m, uint8_t *tok, uint8_t *flags)
{
	const struct pcoap_opt *q;
	int r;

	*flags = 0;
	if ((r = want_tok_request(m, PCOAP_KIND_KEY_CHANGE, tok)) != 0)
		return r;
	q = pcoap_msg_opt(m, PCOAP_OPT_URI_QUERY, 0);
	if (q != NULL) {
		if (q->len != 1)
			return PCOAP_MALFORMED;
		*flags = q->val[0];
	}
	return PCOAP_OK;
}

/* Unsigned LEB128: 7 bits per byte, low group first, high bit = more. */
static size_t
leb128_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	do {
		uint8_t b = v & 0x7f;

		v >>= 7;
		p[n++] = (uint8_t)(v != 0 ? b | 0x80 : b);
	} while (v != 0);
	return n;
}

static int
leb128_get(const uint8_t *p, size_t len, size_t *pos, uint32_t *v)
{
	uint32_t x = 0;
	unsigned shift = 0;

	for (;;) {
		uint8_t b;

		if (*pos >= len)
			return PCOAP_MALFORMED;
		b = p[(*pos)++];
		/* The 5th byte may carry only the top 4 bits of 32. */
		if (shift == 28 && (b & 0xf0) != 0)
			return PCOAP_MALFORMED;
		x |= (uint32_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			break;
		shift += 7;
	}
	*v = x;
	return PCOAP_OK;
}

int
pcoap_build_goodbye(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		    const struct pcoap_goodbye *g)
{
	struct pcoap_msg m;
	uint8_t pl[5 * 5];
	size_t n = 0;

	if (out_len != NULL)
		*out_len = 0;
	if (g == NULL || (g->flags & ~0x0fu) != 0)
		return PCOAP_MALFORMED;
	request_init(&m, PCOAP_NON, PCOAP_CODE_POST, mid, NULL, letter_x);
	pcoap_msg_add_opt(&m, PCOAP_OPT_NO_RESPONSE, NULL, 0);
	n += leb128_put(pl + n, g->flags);
	if (g->flags & PCOAP_GOODBYE_F_CLOUD)
		n += leb128_put(pl + n, g->cloud_reason);
	if (g->flags & PCOAP_GOODBYE_F_RESET)
		n += leb128_put(pl + n, g->reset_reason);
	if (g->flags & PCOAP_GOODBYE_F_SLEEP)
		n += leb128_put(pl + n, g->sleep_duration);
	if (g->flags & PCOAP_GOODBYE_F_NETWORK)
		n += leb128_put(pl + n, g->network_reason);
	set_payload(&m, pl, n);
	return pcoap_msg_encode(&m, out, cap, out_len);
}

int
pcoap_parse_goodbye(const struct pcoap_msg *m, struct pcoap_goodbye *g)
{
	const uint8_t *p = m->payload.p;
	size_t len = m->payload.len, pos = 0;
	uint32_t *field[4];
	size_t i;

	memset(g, 0, sizeof(*g));
	if (pcoap_particle_kind(m) != PCOAP_KIND_GOODBYE)
		return PCOAP_MALFORMED;
	if (len == 0)
		return PCOAP_OK;
	if (leb128_get(p, len, &pos, &g->flags) != 0)
		return PCOAP_MALFORMED;
	field[0] = &g->cloud_reason;
	field[1] = &g->reset_reason;
	field[2] = &g->sleep_duration;
	field[3] = &g->network_reason;
	for (i = 0; i < 4; i++) {
		if ((g->flags & (1u << i)) != 0 &&
		    leb128_get(p, len, &pos, field[i]) != 0)
			return PCOAP_MALFORMED;
	}
	if (pos != len)
		return PCOAP_MALFORMED;
	return PCOAP_OK;
}

uint32_t
pcoap_crc32(uint32_t crc, const uint8_t *p, size_t len)
{
	/* Nibble table for the reflected polynomial 0xEDB88320. */
	static const uint32_t tab[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
		0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
		0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	size_t i;

	crc = ~crc;
	for (i = 0; i < len; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ tab[crc & 0x0f];
		crc = (crc >> 4) ^ tab[crc & 0x0f];
	}
	return ~crc;
}
