/* SPDX-License-Identifier: MIT */
/*
 * RFC 7252 §3 message codec: 4-byte header, token, delta-encoded options
 * and payload. Decoding fills a struct pcoap_msg with views into the
 * input and checks every length before reading; encoding is the exact
 * inverse into a caller buffer. Pure: no allocation, I/O or state.
 */
#include "config.h"

#include <string.h>

#include "coap/pcoap.h"

#define PAYLOAD_MARKER 0xff
#define NIBBLE_EXT1 13 /* one extra byte, value - 13 (RFC 7252 §3.1) */
#define NIBBLE_EXT2 14 /* two extra bytes BE, value - 269 */
#define NIBBLE_RESERVED 15
#define EXT1_BASE 13
#define EXT2_BASE 269
#define OPT_NUM_MAX 65535 /* option numbers are 16-bit (RFC 7252 §12.2) */

/*
 * Decode the extended delta or length field for one nibble. *pos is the
 * read position, advanced past the extension bytes.
 */
static int
opt_ext_decode(unsigned nibble, const uint8_t *buf, size_t len, size_t *pos,
	       size_t *val)
{
	if (nibble < NIBBLE_EXT1) {
		*val = nibble;
		return PCOAP_OK;
	}
	if (nibble == NIBBLE_EXT1) {
		if (len - *pos < 1)
			return PCOAP_MALFORMED;
		*val = (size_t)buf[*pos] + EXT1_BASE;
		*pos += 1;
		return PCOAP_OK;
	}
	if (nibble == NIBBLE_EXT2) {
		if (len - *pos < 2)
			return PCOAP_MALFORMED;
		*val = (((size_t)buf[*pos] << 8) | buf[*pos + 1]) + EXT2_BASE;
		*pos += 2;
		return PCOAP_OK;
	}
	/* Nibble 15 is reserved outside the 0xff payload marker. */
	return PCOAP_MALFORMED;
}

int
pcoap_msg_decode(const uint8_t *buf, size_t len, struct pcoap_msg *m)
{
	size_t pos, tkl, num = 0;

	if (m == NULL)
		return PCOAP_MALFORMED;
	memset(m, 0, sizeof(*m));
	if (buf == NULL || len < PCOAP_HDR_LEN)
		return PCOAP_MALFORMED;
	if ((buf[0] >> 6) != 1)
		return PCOAP_MALFORMED;
	tkl = buf[0] & 0x0f;
	if (tkl > PCOAP_MAX_TOKEN)
		return PCOAP_MALFORMED;
	m->type = (buf[0] >> 4) & 0x03;
	m->code = buf[1];
	m->mid = (uint16_t)((buf[2] << 8) | buf[3]);
	pos = PCOAP_HDR_LEN;
	if (len - pos < tkl)
		return PCOAP_MALFORMED;
	m->token.p = buf + pos;
	m->token.len = tkl;
	pos += tkl;

	while (pos < len) {
		unsigned hdr = buf[pos];
		size_t delta, olen;
		int r;

		if (hdr == PAYLOAD_MARKER) {
			pos++;
			/* RFC 7252 §3: a marker with no payload is an error. */
			if (pos == len)
				return PCOAP_MALFORMED;
			m->payload.p = buf + pos;
			m->payload.len = len - pos;
			return PCOAP_OK;
		}
		pos++;
		if ((r = opt_ext_decode(hdr >> 4, buf, len, &pos, &delta)) != 0)
			return r;
		if ((r = opt_ext_decode(hdr & 0x0f, buf, len, &pos, &olen)) !=
		    0)
			return r;
		if (delta > OPT_NUM_MAX - num)
			return PCOAP_MALFORMED;
		num += delta;
		if (len - pos < olen)
			return PCOAP_MALFORMED;
		if (m->n_opts == PCOAP_MAX_OPTIONS)
			return PCOAP_TOO_BIG;
		m->opts[m->n_opts].num = (uint16_t)num;
		m->opts[m->n_opts].val = buf + pos;
		m->opts[m->n_opts].len = olen;
		m->n_opts++;
		pos += olen;
	}
	return PCOAP_OK;
}

/* Size of the extension bytes needed for a delta or length value. */
static size_t
opt_ext_size(size_t v)
{
	if (v < EXT1_BASE)
		return 0;
	if (v < EXT2_BASE)
		return 1;
	return 2;
}

static unsigned
opt_nibble(size_t v)
{
	if (v < EXT1_BASE)
		return (unsigned)v;
	if (v < EXT2_BASE)
		return NIBBLE_EXT1;
	return NIBBLE_EXT2;
}

static uint8_t *
opt_ext_write(uint8_t *p, size_t v)
{
	if (v >= EXT2_BASE) {
		*p++ = (uint8_t)((v - EXT2_BASE) >> 8);
		*p++ = (uint8_t)(v - EXT2_BASE);
	} else if (v >= EXT1_BASE) {
		*p++ = (uint8_t)(v - EXT1_BASE);
	}
	return p;
}

/* Largest option value the 2-byte extension can express. */
#define OPT_LEN_MAX (0xffff + EXT2_BASE)

int
pcoap_msg_encoded_size(const struct pcoap_msg *m, size_t *size)
{
	size_t i, n, prev = 0;

	if (size != NULL)
		*size = 0;
	if (m == NULL || m->type > PCOAP_RST ||
	    m->token.len > PCOAP_MAX_TOKEN || m->n_opts > PCOAP_MAX_OPTIONS)
		return PCOAP_MALFORMED;
	if (m->token.len > 0 && m->token.p == NULL)
		return PCOAP_MALFORMED;
	n = PCOAP_HDR_LEN + m->token.len;
	for (i = 0; i < m->n_opts; i++) {
		const struct pcoap_opt *o = &m->opts[i];

		if (o->num < prev)
			return PCOAP_MALFORMED;
		if (o->len > 0 && o->val == NULL)
			return PCOAP_MALFORMED;
		if (o->len > OPT_LEN_MAX)
			return PCOAP_TOO_BIG;
		n += 1 + opt_ext_size(o->num - prev) + opt_ext_size(o->len) +
		     o->len;
		prev = o->num;
	}
	if (m->payload.len > 0) {
		if (m->payload.p == NULL)
			return PCOAP_MALFORMED;
		n += 1 + m->payload.len;
	}
	if (size != NULL)
		*size = n;
	return PCOAP_OK;
}

int
pcoap_msg_encode(const struct pcoap_msg *m, uint8_t *out, size_t cap,
		 size_t *out_len)
{
	size_t i, need, prev = 0;
	uint8_t *p;
	int r;

	if (out_len != NULL)
		*out_len = 0;
	if ((r = pcoap_msg_encoded_size(m, &need)) != 0)
		return r;
	if (out == NULL || cap < need)
		return PCOAP_NOSPACE;
	p = out;
	*p++ = (uint8_t)(0x40 | (m->type << 4) | m->token.len);
	*p++ = m->code;
	*p++ = (uint8_t)(m->mid >> 8);
	*p++ = (uint8_t)m->mid;
	if (m->token.len > 0) {
		memcpy(p, m->token.p, m->token.len);
		p += m->token.len;
	}
	for (i = 0; i < m->n_opts; i++) {
		const struct pcoap_opt *o = &m->opts[i];
		size_t delta = o->num - prev;

		*p++ = (uint8_t)((opt_nibble(delta) << 4) | opt_nibble(o->len));
		p = opt_ext_write(p, delta);
		p = opt_ext_write(p, o->len);
		if (o->len > 0) {
			memcpy(p, o->val, o->len);
			p += o->len;
		}
		prev = o->num;
	}
	if (m->payload.len > 0) {
		*p++ = PAYLOAD_MARKER;
		memcpy(p, m->payload.p, m->payload.len);
		p += m->payload.len;
	}
	if (out_len != NULL)
		*out_len = (size_t)(p - out);
	return PCOAP_OK;
}

void
pcoap_msg_init(struct pcoap_msg *m, uint8_t type, uint8_t code, uint16_t mid)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->code = code;
	m->mid = mid;
}

int
pcoap_msg_set_token(struct pcoap_msg *m, const uint8_t *tok, size_t len)
{
	if (len > PCOAP_MAX_TOKEN)
		return PCOAP_TOO_BIG;
	if (len > 0 && tok == NULL)
		return PCOAP_MALFORMED;
	m->token.p = tok;
	m->token.len = len;
	return PCOAP_OK;
}

int
pcoap_msg_add_opt(struct pcoap_msg *m, uint16_t num, const void *val,
		  size_t len)
{
	if (m->n_opts == PCOAP_MAX_OPTIONS)
		return PCOAP_TOO_BIG;
	if (m->n_opts > 0 && num < m->opts[m->n_opts - 1].num)
		return PCOAP_MALFORMED;
	if (len > 0 && val == NULL)
		return PCOAP_MALFORMED;
	if (len > OPT_LEN_MAX)
		return PCOAP_TOO_BIG;
	m->opts[m->n_opts].num = num;
	m->opts[m->n_opts].val = val;
	m->opts[m->n_opts].len = len;
	m->n_opts++;
	return PCOAP_OK;
}

const struct pcoap_opt *
pcoap_msg_opt(const struct pcoap_msg *m, uint16_t num, size_t nth)
{
	size_t i;

	for (i = 0; i < m->n_opts && i < PCOAP_MAX_OPTIONS; i++) {
		if (m->opts[i].num != num)
			continue;
		if (nth == 0)
			return &m->opts[i];
		nth--;
	}
	return NULL;
}

int
pcoap_opt_uint(const struct pcoap_opt *o, uint32_t *v)
{
	size_t i;
	uint32_t x = 0;

	*v = 0;
	if (o->len > 4)
		return PCOAP_TOO_BIG;
	for (i = 0; i < o->len; i++)
		x = (x << 8) | o->val[i];
	*v = x;
	return PCOAP_OK;
}
