/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the CoAP message codec: decode; if that succeeds,
 * encode, require the very same bytes, decode again and require the
 * same fields. Also runs the Particle classifier and parsers over every
 * message that decodes.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "fuzz.h"

static void
views_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen || (alen > 0 && memcmp(a, b, alen) != 0))
		abort();
}

static void
particle_parsers(const struct pcoap_msg *m)
{
	struct pcoap_hello h;
	struct pcoap_call c;
	struct pcoap_event ev;
	struct pcoap_subscribe s;
	struct pcoap_update_begin ub;
	struct pcoap_chunk ch;
	struct pcoap_view v;
	struct pcoap_goodbye gb;
	uint16_t idx[40];
	char name[65];
	uint8_t tok, flags;
	uint32_t t;
	size_t n;
	bool on;

	(void)pcoap_particle_kind(m);
	(void)pcoap_check_to_device(m, PCOAP_DEVICE_RX_MAX);
	(void)pcoap_parse_hello(m, &h);
	(void)pcoap_parse_function_call(m, &c);
	(void)pcoap_parse_variable(m, &c);
	(void)pcoap_parse_describe(m, &tok, &flags);
	(void)pcoap_parse_describe_post(m, &flags, &v);
	if (pcoap_parse_event(m, &ev, name, sizeof(name)) == PCOAP_OK &&
	    (ev.name_len >= sizeof(name) || name[ev.name_len] != '\0'))
		abort();
	(void)pcoap_parse_subscribe(m, &s, name, sizeof(name));
	(void)pcoap_parse_time_reply(m, &t);
	(void)pcoap_parse_signal(m, &tok, &on);
	(void)pcoap_parse_update_begin(m, &tok, &ub);
	(void)pcoap_parse_update_ready(m, &flags);
	(void)pcoap_parse_chunk(m, &ch);
	if (pcoap_parse_chunk_missed(m, idx, 40, &n) == PCOAP_OK && n > 40)
		abort();
	(void)pcoap_parse_update_done(m, &v);
	(void)pcoap_parse_key_change(m, &tok, &flags);
	(void)pcoap_parse_goodbye(m, &gb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcoap_msg m, m2;
	uint8_t *out;
	size_t n = 0, i;

	if (pcoap_msg_decode(data, size, &m) != PCOAP_OK)
		return 0;
	particle_parsers(&m);
	if ((out = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	/* The encoding is unique, so re-encoding gives the input back. */
	if (pcoap_msg_encode(&m, out, size, &n) != PCOAP_OK || n != size ||
	    memcmp(out, data, size) != 0)
		abort();
	if (size > 0 &&
	    pcoap_msg_encode(&m, out, size - 1, &n) != PCOAP_NOSPACE)
		abort();
	if (pcoap_msg_decode(out, size, &m2) != PCOAP_OK)
		abort();
	if (m.type != m2.type || m.code != m2.code || m.mid != m2.mid ||
	    m.n_opts != m2.n_opts)
		abort();
	views_equal(m.token.p, m.token.len, m2.token.p, m2.token.len);
	for (i = 0; i < m.n_opts; i++) {
		if (m.opts[i].num != m2.opts[i].num)
			abort();
		views_equal(m.opts[i].val, m.opts[i].len, m2.opts[i].val,
			    m2.opts[i].len);
	}
	views_equal(m.payload.p, m.payload.len, m2.payload.p, m2.payload.len);
	free(out);
	return 0;
}
