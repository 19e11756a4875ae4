/* SPDX-License-Identifier: MIT */
/*
 * Recorded-session vectors (tests/data/vectors, Device OS 0.7.0): replay
 * both sessions through crypto and the codec. The handshake blocks are
 * opened with the recorded keys, the server signature is re-made
 * byte-for-byte, every frame of both directions is decrypted with the IV
 * chaining of protocol.md §1.4 and re-encrypted to the identical bytes,
 * and every plaintext is decoded and compared, line by line, with the
 * *.decoded.txt files. Ground truth for real-device compatibility.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coap/pcoap.h"
#include "crypto.h"
#include "crypto_test.h"
#include "describe.h"
#include "err.h"
#include "xmalloc.h"

#define STREAM_MAX 65536
#define LINES_MAX 128

struct stream {
	uint8_t buf[STREAM_MAX]; /* one direction, reads concatenated */
	size_t len;
};

/* One recorded session and its decoded listing. */
struct rec {
	struct stream d2s;	    /* device to server */
	struct stream s2d;	    /* server to device */
	char *decoded;		    /* whole *.decoded.txt */
	char *lines_d2s[LINES_MAX]; /* "D->S frame" lines, in order */
	size_t n_d2s;
	char *lines_s2d[LINES_MAX]; /* "S->D frame" lines, in order */
	size_t n_s2d;
};

static char *
slurp(const char *name)
{
	char *path = vec_path(name);
	FILE *f = fopen(path, "rb");
	char *buf = xmalloc(STREAM_MAX + 1);
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(buf, 1, STREAM_MAX, f);
	ck_assert_uint_lt(n, STREAM_MAX);
	buf[n] = '\0';
	fclose(f);
	free(path);
	return buf;
}

static size_t
unhex(const char *hex, size_t hex_len, uint8_t *out, size_t cap)
{
	size_t i;
	unsigned v;

	ck_assert_uint_eq(hex_len % 2, 0);
	ck_assert_uint_le(hex_len / 2, cap);
	for (i = 0; i < hex_len / 2; i++) {
		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return hex_len / 2;
}

static void
tohex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

/* Parse the .jsonl: one TCP read per line, concatenated per direction. */
static void
rec_load(struct rec *r, const char *name)
{
	char *path, *text, *line, *save = NULL, *p;
	json_error_t jerr;
	json_t *j;
	const char *dir, *hex;
	struct stream *s;

	memset(r, 0, sizeof(*r));
	path = xasprintf("%s.jsonl", name);
	text = slurp(path);
	free(path);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		j = json_loads(line, 0, &jerr);
		ck_assert_msg(j != NULL, "bad json: %s", jerr.text);
		dir = json_string_value(json_object_get(j, "dir"));
		hex = json_string_value(json_object_get(j, "hex"));
		ck_assert_ptr_nonnull(dir);
		ck_assert_ptr_nonnull(hex);
		ck_assert_int_eq(json_integer_value(json_object_get(j, "conn")),
				 1);
		s = strcmp(dir, "d2s") == 0 ? &r->d2s : &r->s2d;
		ck_assert(s == &r->d2s || strcmp(dir, "s2d") == 0);
		s->len += unhex(hex, strlen(hex), s->buf + s->len,
				sizeof(s->buf) - s->len);
		json_decref(j);
	}
	free(text);

	path = xasprintf("%s.decoded.txt", name);
	r->decoded = slurp(path);
	free(path);
	text = xstrdup(r->decoded);
	save = NULL;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "D->S frame ", 11) == 0) {
			ck_assert_uint_lt(r->n_d2s, LINES_MAX);
			r->lines_d2s[r->n_d2s++] = xstrdup(line);
		} else if (strncmp(line, "S->D frame ", 11) == 0) {
			ck_assert_uint_lt(r->n_s2d, LINES_MAX);
			r->lines_s2d[r->n_s2d++] = xstrdup(line);
		}
	}
	free(text);
	p = strstr(r->decoded, "device id: ");
	ck_assert_ptr_nonnull(p);
}

static void
rec_free(struct rec *r)
{
	size_t i;

	for (i = 0; i < r->n_d2s; i++)
		free(r->lines_d2s[i]);
	for (i = 0; i < r->n_s2d; i++)
		free(r->lines_s2d[i]);
	free(r->decoded);
}

/* The key/iv/salt the decoded listing shows, as 40 session bytes. */
static void
rec_session(const struct rec *r, uint8_t session[CRYPTO_SESSION_LEN])
{
	char key[33], iv[33], salt[17];
	const char *p = strstr(r->decoded, "session credentials (40): key=");

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p,
				"session credentials (40): key=%32s "
				"iv=%32s salt=%16s",
				key, iv, salt),
			 3);
	unhex(key, 32, session, 16);
	unhex(iv, 32, session + 16, 16);
	unhex(salt, 16, session + 32, 8);
}

/*
 * Handshake: open both blocks with the recorded keys. Returns the 40
 * session bytes from the step-3 block.
 */
static void
check_handshake(const struct rec *r, uint8_t session[CRYPTO_SESSION_LEN])
{
	const uint8_t *nonce = r->s2d.buf;
	const uint8_t *block2 = r->d2s.buf;
	const uint8_t *block3 = r->s2d.buf + CRYPTO_NONCE_LEN;
	struct crypto_step2 st;
	struct crypto_key *k = NULL;
	uint8_t der[CRYPTO_PUB_DER_MAX], want[CRYPTO_SESSION_LEN];
	uint8_t mac[CRYPTO_HMAC_SHA1_LEN], sig[256];
	char hex[2 * CRYPTO_NONCE_LEN + 1];
	size_t der_len = 0, n = 0;

	ck_assert_uint_ge(r->s2d.len, CRYPTO_NONCE_LEN + CRYPTO_STEP3_LEN);
	ck_assert_uint_ge(r->d2s.len, CRYPTO_STEP2_LEN);
	tohex(nonce, CRYPTO_NONCE_LEN, hex);
	ck_assert_ptr_nonnull(strstr(r->decoded, hex));

	/* Step 2, server side. */
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block2,
						     CRYPTO_STEP2_LEN, &st),
			 0);
	tohex(st.device_id, CRYPTO_DEVICE_ID_LEN, hex);
	ck_assert_str_eq(hex, "0123456789abcdef01234567");
	ck_assert_uint_eq(st.key_der_len, CRYPTO_DEVICE_PUB_DER_LEN);
	ck_assert_int_eq(
		crypto_key_public_der(device_pub, der, sizeof(der), &der_len),
		0);
	ck_assert_uint_eq(der_len, st.key_der_len);
	ck_assert_mem_eq(st.key_der, der, der_len);
	ck_assert_int_eq(crypto_pubkey_parse(st.key_der, st.key_der_len, &k),
			 0);
	ck_assert(crypto_key_public_eq(k, device_pub));
	crypto_key_free(k);
	/* Any other nonce is refused. */
	memcpy(want, nonce, CRYPTO_NONCE_LEN);
	want[0] ^= 1;
	ck_assert_int_eq(crypto_handshake_step2_open(server, want, block2,
						     CRYPTO_STEP2_LEN, &st),
			 CINDER_ERR_CRYPTO);

	/* Step 3, device side. */
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block3,
						     CRYPTO_STEP3_LEN, session),
			 0);
	rec_session(r, want);
	ck_assert_mem_eq(session, want, CRYPTO_SESSION_LEN);

	/* Type-1 signatures are deterministic: ours equals the recorded. */
	ck_assert_int_eq(crypto_hmac_sha1(session, CRYPTO_SESSION_LEN, block3,
					  CRYPTO_STEP3_CT_LEN, mac),
			 0);
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig,
					     sizeof(sig), &n),
			 0);
	ck_assert_uint_eq(n, 256);
	ck_assert_mem_eq(sig, block3 + CRYPTO_STEP3_CT_LEN, 256);
}

/* Python's repr() of bytes, as the decoded listings print payloads. */
static void
pyrepr(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;
	bool sq = n > 0 && memchr(p, '\'', n) != NULL;
	bool dq = n > 0 && memchr(p, '"', n) != NULL;
	char quote = (sq && !dq) ? '"' : '\'';

	o += (size_t)snprintf(out + o, cap - o, "b%c", quote);
	for (i = 0; i < n && o + 8 < cap; i++) {
		uint8_t c = p[i];

		if (c == quote || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
		else if (c == '\t')
			o += (size_t)snprintf(out + o, cap - o, "\\t");
		else if (c == '\n')
			o += (size_t)snprintf(out + o, cap - o, "\\n");
		else if (c == '\r')
			o += (size_t)snprintf(out + o, cap - o, "\\r");
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	ck_assert_uint_lt(o + 2, cap);
	out[o++] = quote;
	out[o] = '\0';
}

/* Format a decoded message the way the *.decoded.txt lines do. */
static void
format_line(const char *dir, size_t ct_len, const struct pcoap_msg *m,
	    char *out, size_t cap)
{
	static const char *const types[] = {"CON", "NON", "ACK", "RST"};
	char tok[2 * PCOAP_MAX_TOKEN + 1], opts[1024], pay[2048];
	size_t i, o = 0;
	uint32_t v;

	tohex(m->token.p, m->token.len, tok);
	opts[0] = '\0';
	for (i = 0; i < m->n_opts; i++) {
		const struct pcoap_opt *op = &m->opts[i];
		const char *sep = i ? " " : "";

		if (op->num == PCOAP_OPT_URI_PATH)
			o += (size_t)snprintf(
				opts + o, sizeof(opts) - o, "%sUri-Path=%.*s",
				sep, (int)op->len, (const char *)op->val);
		else if (op->num == PCOAP_OPT_URI_QUERY)
			o += (size_t)snprintf(
				opts + o, sizeof(opts) - o, "%sUri-Query=%.*s",
				sep, (int)op->len, (const char *)op->val);
		else if (op->num == PCOAP_OPT_MAX_AGE) {
			ck_assert_int_eq(pcoap_opt_uint(op, &v), 0);
			o += (size_t)snprintf(opts + o, sizeof(opts) - o,
					      "%sMax-Age=%08x", sep,
					      (unsigned)v);
		} else
			o += (size_t)snprintf(opts + o, sizeof(opts) - o,
					      "%sopt%u", sep,
					      (unsigned)op->num);
		ck_assert_uint_lt(o, sizeof(opts));
	}
	pyrepr(m->payload.p, m->payload.len, pay, sizeof(pay));
	snprintf(out, cap,
		 "%s frame %zu : %s %u.%02u mid=%u tok=%s %s "
		 "payload(%zu)=%s",
		 dir, ct_len, types[m->type & 3], (unsigned)(m->code >> 5),
		 (unsigned)(m->code & 31), (unsigned)m->mid, tok, opts,
		 m->payload.len, pay);
}

/* A decoded frame kept for the field checks. */
struct frame {
	uint8_t plain[PCOAP_FRAME_MAX_CT]; /* decrypted CoAP message */
	size_t len;
	struct pcoap_msg m; /* views into plain */
};

/*
 * Decrypt every frame of one direction, re-encrypt each plaintext with a
 * second channel (the sender's) to the same bytes, decode it and compare
 * with the listing. Fills frames[] (at most max); returns the count.
 */
static size_t
check_direction(const struct stream *s, size_t off,
		const uint8_t session[CRYPTO_SESSION_LEN], const char *dir,
		char *const *lines, size_t n_lines, struct frame *frames,
		size_t max)
{
	struct crypto_channel rx, tx;
	uint8_t ct[PCOAP_FRAME_MAX_CT], enc[PCOAP_FRAME_MAX_CT];
	char line[4096];
	size_t flen = 0, n = 0, ct_len, m = 0, elen = 0;
	struct frame *f;

	crypto_channel_init(&rx, session);
	crypto_channel_init(&tx, session);
	while (off < s->len) {
		ck_assert_uint_lt(n, max);
		ck_assert_int_eq(pcoap_frame_peek(s->buf + off, s->len - off,
						  PCOAP_FRAME_MAX_CT, &flen),
				 PCOAP_OK);
		ct_len = flen - PCOAP_FRAME_HDR_LEN;
		memcpy(ct, s->buf + off + PCOAP_FRAME_HDR_LEN, ct_len);
		f = &frames[n];
		ck_assert_int_eq(crypto_channel_open(&rx, ct, ct_len, f->plain,
						     sizeof(f->plain), &f->len),
				 0);
		ck_assert_mem_eq(rx.recv_iv, ct, CRYPTO_AES_BLOCK);
		/* AES-CBC is deterministic given key and IV. */
		ck_assert_int_eq(crypto_channel_seal(&tx, f->plain, f->len, enc,
						     sizeof(enc), &elen),
				 0);
		ck_assert_uint_eq(elen, ct_len);
		ck_assert_mem_eq(enc, ct, ct_len);
		ck_assert_mem_eq(tx.send_iv, rx.recv_iv, CRYPTO_AES_BLOCK);

		ck_assert_int_eq(pcoap_msg_decode(f->plain, f->len, &f->m),
				 PCOAP_OK);
		/* The codec re-encodes every recorded message exactly. */
		ck_assert_int_eq(pcoap_msg_encode(&f->m, enc, sizeof(enc), &m),
				 PCOAP_OK);
		ck_assert_uint_eq(m, f->len);
		ck_assert_mem_eq(enc, f->plain, m);

		ck_assert_uint_lt(n, n_lines);
		format_line(dir, ct_len, &f->m, line, sizeof(line));
		ck_assert_str_eq(line, lines[n]);
		off += flen;
		n++;
	}
	/* The stream ends on a frame boundary and every line was matched. */
	ck_assert_uint_eq(off, s->len);
	ck_assert_uint_eq(n, n_lines);
	crypto_channel_cleanup(&rx);
	crypto_channel_cleanup(&tx);
	return n;
}

static struct frame *
find(struct frame *fr, size_t n, int kind, size_t nth)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (pcoap_particle_kind(&fr[i].m) == kind && nth-- == 0)
			return &fr[i];
	}
	ck_abort_msg("no message of kind %s", pcoap_kind_str(kind));
	return NULL;
}

/* Fields both sessions share: Hello, events, subscriptions, time. */
static void
check_common(struct frame *d, size_t nd, struct frame *s, size_t ns,
	     uint32_t want_time)
{
	struct pcoap_hello h;
	struct pcoap_event ev;
	struct pcoap_subscribe sub;
	struct frame *f;
	char name[128];
	uint32_t t = 0;

	/* Device Hello first: product 3, version 0xffff, platform 3. */
	ck_assert_int_eq(pcoap_particle_kind(&d[0].m), PCOAP_KIND_HELLO);
	ck_assert_int_eq(pcoap_parse_hello(&d[0].m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 8);
	ck_assert_uint_eq(h.product_id, 3);
	ck_assert_uint_eq(h.product_version, 0xffff);
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_uint_eq(h.platform_id, 3);
	/* Server Hello first: NON, empty payload. */
	ck_assert_int_eq(pcoap_particle_kind(&s[0].m), PCOAP_KIND_HELLO);
	ck_assert_int_eq(pcoap_parse_hello(&s[0].m, &h), PCOAP_OK);
	ck_assert_uint_eq(h.payload_len, 0);
	ck_assert_uint_eq(s[0].m.type, PCOAP_NON);

	/* The event name is ONE Uri-Path option containing '/'. */
	f = find(d, nd, PCOAP_KIND_EVENT, 0);
	ck_assert_int_eq(pcoap_parse_event(&f->m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert(ev.is_private);
	ck_assert_uint_eq(ev.name_len, strlen("spark/hardware/max_binary"));
	ck_assert_mem_eq(name, "spark/hardware/max_binary", ev.name_len);
	ck_assert_uint_eq(f->m.payload.len, 6);
	ck_assert_mem_eq(f->m.payload.p, "102400", 6);

	f = find(d, nd, PCOAP_KIND_SUBSCRIBE, 0);
	ck_assert_int_eq(pcoap_parse_subscribe(&f->m, &sub, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert_uint_eq(sub.filter_len, 5);
	ck_assert_mem_eq(name, "spark", 5);

	/* Time request (token 01) and the server's 2.05 reply. */
	f = find(d, nd, PCOAP_KIND_TIME, 0);
	ck_assert_uint_eq(f->m.token.len, 1);
	f = find(s, ns, PCOAP_KIND_ACK, 0);
	ck_assert_int_eq(pcoap_parse_time_reply(&f->m, &t), PCOAP_OK);
	ck_assert_uint_eq(t, want_time);

	/* The server's Describe request. */
	f = find(s, ns, PCOAP_KIND_DESCRIBE, 0);
	ck_assert_uint_eq(f->m.token.len, 1);
}

/* The describe reply is the device's 2.05 ACK carrying JSON. */
static json_t *
describe_json(struct frame *d, size_t nd)
{
	json_error_t jerr;
	json_t *j;
	size_t i;

	for (i = 0; i < nd; i++) {
		if (d[i].m.type == PCOAP_ACK &&
		    d[i].m.code == PCOAP_CODE_CONTENT &&
		    d[i].m.payload.len > 0 && d[i].m.payload.p[0] == '{') {
			j = json_loadb((const char *)d[i].m.payload.p,
				       d[i].m.payload.len, 0, &jerr);
			ck_assert_msg(j != NULL, "describe: %s", jerr.text);
			return j;
		}
	}
	ck_abort_msg("no describe reply");
	return NULL;
}

/* The recorded describe through the daemon's parser: what the device
   JSON's system_firmware_version and module list come from. Device OS
   0.7.0 on the virtual platform lists no modules ("m":[]), so the
   version is unknown (null), never a guess. */
static void
check_describe_parsed(struct frame *d, size_t nd, size_t n_functions)
{
	char err[DESCRIBE_ERRLEN];
	struct describe *ds = NULL;
	size_t i;

	for (i = 0; i < nd; i++)
		if (d[i].m.type == PCOAP_ACK &&
		    d[i].m.code == PCOAP_CODE_CONTENT &&
		    d[i].m.payload.len > 0 && d[i].m.payload.p[0] == '{')
			break;
	ck_assert_uint_lt(i, nd);
	ck_assert_msg(describe_parse((const char *)d[i].m.payload.p,
				     d[i].m.payload.len, &ds, err,
				     sizeof(err)) == 0,
		      "describe_parse: %s", err);
	ck_assert(ds->has_app);
	ck_assert(ds->has_system);
	ck_assert_int_eq(ds->platform_id, 3);
	ck_assert_uint_eq(json_array_size(ds->functions), n_functions);
	ck_assert_uint_eq(ds->n_modules, 0);
	ck_assert_ptr_null(describe_system_version(ds));
	ck_assert_uint_eq(describe_system_module_version(ds), 0);
	ck_assert(!describe_is_safe_mode(ds));
	describe_free(ds);
}

static bool
json_array_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

static struct frame dframes[LINES_MAX], sframes[LINES_MAX];
static struct rec rec;

START_TEST(test_vectors_tinker)
{
	uint8_t session[CRYPTO_SESSION_LEN];
	struct pcoap_call call;
	struct frame *f;
	size_t nd, ns;
	int32_t v = -1;
	json_t *j;

	rec_load(&rec, "tinker");
	check_handshake(&rec, session);
	nd = check_direction(&rec.d2s, CRYPTO_STEP2_LEN, session, "D->S",
			     rec.lines_d2s, rec.n_d2s, dframes, LINES_MAX);
	ns = check_direction(&rec.s2d, CRYPTO_NONCE_LEN + CRYPTO_STEP3_LEN,
			     session, "S->D", rec.lines_s2d, rec.n_s2d, sframes,
			     LINES_MAX);
	ck_assert_uint_eq(nd, 8);
	ck_assert_uint_eq(ns, 7);
	check_common(dframes, nd, sframes, ns, 0x6b04929e);

	j = describe_json(dframes, nd);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "f")), 4);
	ck_assert(json_array_has(json_object_get(j, "f"), "analogread"));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "p")), 3);
	ck_assert_uint_eq(json_object_size(json_object_get(j, "v")), 0);
	json_decref(j);
	check_describe_parsed(dframes, nd, 4);

	/* analogread(A0): CON POST f, token 02; result NON 2.04 = 0. */
	f = find(sframes, ns, PCOAP_KIND_FUNCTION_CALL, 0);
	ck_assert_int_eq(pcoap_parse_function_call(&f->m, &call), PCOAP_OK);
	ck_assert_uint_eq(call.token, 2);
	ck_assert_uint_eq(call.name.len, 10);
	ck_assert_mem_eq(call.name.p, "analogread", 10);
	ck_assert_uint_eq(call.arg.len, 2);
	ck_assert_mem_eq(call.arg.p, "A0", 2);
	f = find(dframes, nd, PCOAP_KIND_RESPONSE, 0);
	ck_assert_uint_eq(f->m.code, PCOAP_CODE_CHANGED);
	ck_assert_uint_eq(f->m.token.p[0], 2);
	ck_assert_int_eq(
		pcoap_value_decode_int32(f->m.payload.p, f->m.payload.len, &v),
		PCOAP_OK);
	ck_assert_int_eq(v, 0);
	rec_free(&rec);
}
END_TEST

START_TEST(test_vectors_testapp)
{
	uint8_t session[CRYPTO_SESSION_LEN];
	struct pcoap_call call;
	struct pcoap_event ev;
	struct frame *f;
	char name[128];
	size_t nd, ns, i, pings = 0, counters = 0;
	int32_t v = -1;
	double dv = 0;
	json_t *j, *vars;

	rec_load(&rec, "testapp");
	check_handshake(&rec, session);
	nd = check_direction(&rec.d2s, CRYPTO_STEP2_LEN, session, "D->S",
			     rec.lines_d2s, rec.n_d2s, dframes, LINES_MAX);
	ns = check_direction(&rec.s2d, CRYPTO_NONCE_LEN + CRYPTO_STEP3_LEN,
			     session, "S->D", rec.lines_s2d, rec.n_s2d, sframes,
			     LINES_MAX);
	ck_assert_uint_eq(nd, 37);
	ck_assert_uint_eq(ns, 22);
	check_common(dframes, nd, sframes, ns, 0x6b04920e);

	j = describe_json(dframes, nd);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "f")), 6);
	ck_assert(json_array_has(json_object_get(j, "f"), "echo"));
	vars = json_object_get(j, "v");
	ck_assert_int_eq(json_integer_value(json_object_get(vars, "counter")),
			 2);
	ck_assert_int_eq(json_integer_value(json_object_get(vars, "ratio")), 9);
	ck_assert_int_eq(json_integer_value(json_object_get(vars, "greeting")),
			 4);
	json_decref(j);
	check_describe_parsed(dframes, nd, 6);

	/* Variable reads: int BE, double LE, string raw. */
	f = find(sframes, ns, PCOAP_KIND_VARIABLE, 1);
	ck_assert_int_eq(pcoap_parse_variable(&f->m, &call), PCOAP_OK);
	ck_assert_mem_eq(call.name.p, "ratio", 5);
	f = find(dframes, nd, PCOAP_KIND_ACK, 2);
	ck_assert_uint_eq(f->m.token.p[0], 3);
	ck_assert_int_eq(pcoap_value_decode_double(f->m.payload.p,
						   f->m.payload.len, &dv),
			 PCOAP_OK);
	ck_assert(dv == 0.5);
	f = find(dframes, nd, PCOAP_KIND_ACK, 3);
	ck_assert_uint_eq(f->m.payload.len, 15);
	ck_assert_mem_eq(f->m.payload.p, "hello from vdev", 15);

	/* digitalwrite(D7,HIGH) and its separate NON 2.04 result 1. */
	f = find(sframes, ns, PCOAP_KIND_FUNCTION_CALL, 0);
	ck_assert_int_eq(pcoap_parse_function_call(&f->m, &call), PCOAP_OK);
	ck_assert_uint_eq(call.token, 5);
	ck_assert_mem_eq(call.name.p, "digitalwrite", 12);
	ck_assert_uint_eq(call.arg.len, 7);
	ck_assert_mem_eq(call.arg.p, "D7,HIGH", 7);
	f = find(dframes, nd, PCOAP_KIND_RESPONSE, 0);
	ck_assert_uint_eq(f->m.type, PCOAP_NON);
	ck_assert_uint_eq(f->m.token.p[0], 5);
	ck_assert_int_eq(
		pcoap_value_decode_int32(f->m.payload.p, f->m.payload.len, &v),
		PCOAP_OK);
	ck_assert_int_eq(v, 1);

	/* Server event with Max-Age 60 and the device's reply event. */
	f = find(sframes, ns, PCOAP_KIND_EVENT, 0);
	ck_assert_int_eq(pcoap_parse_event(&f->m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert_uint_eq(ev.ttl, 60);
	ck_assert_mem_eq(name, "vdev/cmd", ev.name_len);
	for (i = 0; i < nd; i++) {
		int kind = pcoap_particle_kind(&dframes[i].m);

		if (kind == PCOAP_KIND_PING)
			pings++;
		if (kind == PCOAP_KIND_EVENT &&
		    pcoap_parse_event(&dframes[i].m, &ev, name, sizeof(name)) ==
			    PCOAP_OK &&
		    ev.name_len == 12 && memcmp(name, "vdev/counter", 12) == 0)
			counters++;
	}
	ck_assert_uint_eq(pings, 9);
	ck_assert_uint_eq(counters, 14);
	f = find(dframes, nd, PCOAP_KIND_EVENT, 2);
	ck_assert_int_eq(pcoap_parse_event(&f->m, &ev, name, sizeof(name)),
			 PCOAP_OK);
	ck_assert_mem_eq(name, "vdev/reply", ev.name_len);
	ck_assert_uint_eq(f->m.payload.len, 17);
	ck_assert_mem_eq(f->m.payload.p, "got vdev/cmd=pub3", 17);
	rec_free(&rec);
}
END_TEST

/*
 * §1.4: the next IV is the FIRST block of the previous ciphertext. With
 * ordinary CBC continuation (its LAST block) the third device frame
 * decrypts to garbage in its first block only.
 */
START_TEST(test_vectors_iv_is_first_block)
{
	uint8_t session[CRYPTO_SESSION_LEN], good[PCOAP_FRAME_MAX_CT];
	uint8_t wrong[PCOAP_FRAME_MAX_CT];
	const uint8_t *f[3];
	size_t l[3];
	struct crypto_channel rx, cont;
	size_t off = CRYPTO_STEP2_LEN, n = 0, m = 0, i;

	rec_load(&rec, "tinker");
	check_handshake(&rec, session);
	/* Frames: Hello (16), max_binary (48), ota_chunk_size (48). */
	for (i = 0; i < 3; i++) {
		f[i] = rec.d2s.buf + off;
		ck_assert_int_eq(pcoap_frame_peek(f[i], rec.d2s.len - off,
						  PCOAP_FRAME_MAX_CT, &l[i]),
				 PCOAP_OK);
		off += l[i];
	}
	ck_assert_uint_eq(l[1] - 2, 48);
	crypto_channel_init(&rx, session);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(crypto_channel_open(&rx, f[i] + 2, l[i] - 2,
						     good, sizeof(good), &n),
				 0);
	cont = rx;
	ck_assert_mem_eq(rx.recv_iv, f[1] + 2, CRYPTO_AES_BLOCK);
	memcpy(cont.recv_iv, f[1] + l[1] - CRYPTO_AES_BLOCK, CRYPTO_AES_BLOCK);
	ck_assert_int_eq(crypto_channel_open(&rx, f[2] + 2, l[2] - 2, good,
					     sizeof(good), &n),
			 0);
	/* header, "E", 29-char name with a length byte, marker, "512" */
	ck_assert_uint_eq(n, 4 + 2 + 31 + 1 + 3);
	ck_assert_mem_eq(good + n - 3, "512", 3);
	/* The padding is in the last block, so this "works"... */
	ck_assert_int_eq(crypto_channel_open(&cont, f[2] + 2, l[2] - 2, wrong,
					     sizeof(wrong), &m),
			 0);
	ck_assert_uint_eq(m, n);
	/* ...but the first block, header included, is garbage. */
	ck_assert_mem_ne(wrong, good, CRYPTO_AES_BLOCK);
	ck_assert_mem_eq(wrong + CRYPTO_AES_BLOCK, good + CRYPTO_AES_BLOCK,
			 n - CRYPTO_AES_BLOCK);
	rec_free(&rec);
}
END_TEST

static Suite *
vectors_suite(void)
{
	Suite *s = suite_create("vectors");
	TCase *tc = tcase_create("sessions");

	tcase_add_checked_fixture(tc, load_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_vectors_tinker);
	tcase_add_test(tc, test_vectors_testapp);
	tcase_add_test(tc, test_vectors_iv_is_first_block);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(vectors_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
