/* SPDX-License-Identifier: MIT */
/*
 * The device state machine (firmware-stubs/lib/fw_device.c) against a
 * small Particle server written in this test, once with OpenSSL calls
 * and once with the daemon's own server-side crypto (src/crypto.h): the
 * handshake
 * with the recorded Device OS 0.7.0 keys, the AES channel both ways,
 * Hello, time, Describe, ping and keep-alive, and the failure paths
 * (bad signature, missing server Hello, oversize frame, peer close).
 * The network is an in-memory pipe pair; time is a number the test
 * advances. No sockets, no sleeps.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "coap/pcoap.h"
#include "crypto.h"
#include "fw_device.h"
#include "fw_err.h"
#include "fw_keys.h"

#define PIPE_CAP 8192

struct pipe {
	uint8_t buf[PIPE_CAP];
	size_t len;
};

/* ---- the in-memory port ---------------------------------------------- */

struct test_port {
	struct pipe d2s, s2d;
	int connect_calls; /* net_connect calls since the last close */
	int connects;	   /* completed connections */
	bool connected;
	bool peer_closed; /* server hung up: recv/send fail */
	size_t chunk;	  /* max bytes per send/recv call; 0 = any */
	int send_left;	  /* with chunk: sends allowed until next pump */
	int recv_left;	  /* with chunk: receives allowed until next pump */
	uint32_t now;
	uint64_t rng;
};

static int
tp_connect(void *ctx)
{
	struct test_port *t = ctx;

	/* in progress once, then connected */
	if (t->connect_calls++ == 0)
		return FW_ERR_AGAIN;
	t->connected = true;
	t->peer_closed = false;
	t->connects++;
	t->d2s.len = 0;
	t->s2d.len = 0;
	return 0;
}

static int
tp_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct test_port *t = ctx;

	ck_assert(t->connected);
	if (t->peer_closed)
		return FW_ERR_IO;
	if (t->chunk) {
		if (t->send_left == 0)
			return 0;
		t->send_left--;
		if (len > t->chunk)
			len = t->chunk;
	}
	ck_assert_uint_le(t->d2s.len + len, PIPE_CAP);
	memcpy(t->d2s.buf + t->d2s.len, buf, len);
	t->d2s.len += len;
	return (int)len;
}

static int
tp_recv(void *ctx, uint8_t *buf, size_t cap)
{
	struct test_port *t = ctx;
	size_t n = t->s2d.len < cap ? t->s2d.len : cap;

	ck_assert(t->connected);
	if (t->chunk) {
		if (t->recv_left == 0)
			return 0;
		t->recv_left--;
		if (n > t->chunk)
			n = t->chunk;
	}
	if (n == 0)
		return t->peer_closed ? FW_ERR_IO : 0;
	memcpy(buf, t->s2d.buf, n);
	memmove(t->s2d.buf, t->s2d.buf + n, t->s2d.len - n);
	t->s2d.len -= n;
	return (int)n;
}

static void
tp_close(void *ctx)
{
	struct test_port *t = ctx;

	t->connected = false;
	t->connect_calls = 0;
}

static uint32_t
tp_millis(void *ctx)
{
	return ((struct test_port *)ctx)->now;
}

static int
tp_random(void *ctx, uint8_t *buf, size_t len)
{
	struct test_port *t = ctx;
	size_t i;

	for (i = 0; i < len; i++) {
		t->rng ^= t->rng << 13;
		t->rng ^= t->rng >> 7;
		t->rng ^= t->rng << 17;
		buf[i] = (uint8_t)(t->rng >> 32);
	}
	return 0;
}

/* ---- the test server (OpenSSL) ---------------------------------------- */

enum srv_state { SRV_NONE, SRV_KEYBLOCK, SRV_FRAMES };

struct server {
	enum srv_state state;
	bool cinder;		    /* use src/crypto.h instead of OpenSSL */
	struct crypto_key *ckey;    /* cinder: server private key */
	struct crypto_key *cdevice; /* cinder: the enrolled device key */
	struct crypto_channel chan; /* cinder: session channel */
	EVP_PKEY *key;		    /* server private key */
	EVP_PKEY *device;	    /* device public key */
	uint8_t nonce[40];
	uint8_t session[40];
	uint8_t send_iv[16], recv_iv[16];
	bool bad_signature; /* corrupt the step-3 signature */
	bool garbage_step3; /* send 384 random bytes in step 3 */
	bool seen_hello;
	uint16_t hello_mid;
	struct pcoap_hello hello;
	uint8_t dev_pubkey[162];
	/* last decoded message from the device, copied */
	uint8_t last[1024];
	size_t last_len;
	struct pcoap_msg last_msg;
	int frames; /* frames received after the handshake */
};

static EVP_PKEY *
load_pem(const char *name, bool private)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	EVP_PKEY *k;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/data/vectors/%s",
		 top != NULL ? top : ".", name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
		    : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(k);
	return k;
}

static size_t
load_file(const char *name, uint8_t *buf, size_t cap)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/data/vectors/%s",
		 top != NULL ? top : ".", name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void
aes_cbc(int enc, const uint8_t *key, uint8_t *iv, const uint8_t *in, size_t len,
	uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;

	ck_assert(EVP_CipherInit_ex(x, EVP_aes_128_cbc(), NULL, key, iv, enc));
	ck_assert(EVP_CipherUpdate(x, out, &n1, in, (int)len));
	ck_assert(EVP_CipherFinal_ex(x, out + n1, &n2));
	*outlen = (size_t)(n1 + n2);
	EVP_CIPHER_CTX_free(x);
}

/* Send one CoAP message, encrypted and framed, chaining the IV (§1.4). */
static void
srv_send(struct server *s, struct test_port *t, const uint8_t *msg, size_t len)
{
	uint8_t ct[1100];
	size_t n;

	if (s->cinder) {
		ck_assert_int_eq(crypto_channel_seal(&s->chan, msg, len, ct,
						     sizeof(ct), &n),
				 0);
	} else {
		aes_cbc(1, s->session, s->send_iv, msg, len, ct, &n);
		memcpy(s->send_iv, ct, 16);
	}
	ck_assert_uint_le(t->s2d.len + 2 + n, PIPE_CAP);
	t->s2d.buf[t->s2d.len++] = (uint8_t)(n >> 8);
	t->s2d.buf[t->s2d.len++] = (uint8_t)n;
	memcpy(t->s2d.buf + t->s2d.len, ct, n);
	t->s2d.len += n;
}

static void
srv_accept(struct server *s, struct test_port *t)
{
	if (s->cinder)
		ck_assert_int_eq(crypto_random(s->nonce, sizeof(s->nonce)), 0);
	else
		ck_assert_int_eq(RAND_bytes(s->nonce, sizeof(s->nonce)), 1);
	memcpy(t->s2d.buf, s->nonce, 40);
	t->s2d.len = 40;
	s->state = SRV_KEYBLOCK;
	s->seen_hello = false;
	s->frames = 0;
}

/* Steps 2 and 3 with the daemon's functions, as cinderd runs them. */
static void
srv_keyblock_cinder(struct server *s, struct test_port *t)
{
	struct crypto_step2 st2;
	struct crypto_key *supplied = NULL;
	uint8_t block[CRYPTO_STEP3_LEN];

	ck_assert_int_eq(crypto_handshake_step2_open(s->ckey, s->nonce,
						     t->d2s.buf, 256, &st2),
			 0);
	ck_assert_mem_eq(st2.device_id,
			 "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67",
			 12);
	ck_assert_uint_eq(st2.key_der_len, CRYPTO_DEVICE_PUB_DER_LEN);
	ck_assert_int_eq(
		crypto_pubkey_parse(st2.key_der, st2.key_der_len, &supplied),
		0);
	ck_assert(crypto_key_public_eq(supplied, s->cdevice));
	crypto_key_free(supplied);
	memmove(t->d2s.buf, t->d2s.buf + 256, t->d2s.len - 256);
	t->d2s.len -= 256;

	ck_assert_int_eq(crypto_random(s->session, sizeof(s->session)), 0);
	ck_assert_int_eq(crypto_handshake_step3_build(s->ckey, s->cdevice,
						      s->session, block),
			 0);
	if (s->bad_signature)
		block[128 + 77] ^= 0x40;
	memcpy(t->s2d.buf + t->s2d.len, block, sizeof(block));
	t->s2d.len += sizeof(block);
	crypto_channel_init(&s->chan, s->session);
	s->state = SRV_FRAMES;
}

static void
srv_keyblock(struct server *s, struct test_port *t)
{
	uint8_t plain[256], ct[128], mac[20], sig[256];
	unsigned char *der = NULL;
	unsigned int maclen;
	size_t plen = sizeof(plain), clen = sizeof(ct), slen = sizeof(sig);
	EVP_PKEY_CTX *x;
	int dlen;

	/* step 2: decrypt and check the device block */
	x = EVP_PKEY_CTX_new(s->key, NULL);
	ck_assert_int_eq(EVP_PKEY_decrypt_init(x), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_decrypt(x, plain, &plen, t->d2s.buf, 256), 1);
	EVP_PKEY_CTX_free(x);
	ck_assert_uint_eq(plen, 214);
	ck_assert_mem_eq(plain, s->nonce, 40);
	ck_assert_mem_eq(plain + 40,
			 "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67",
			 12);
	dlen = i2d_PUBKEY(s->device, &der);
	ck_assert_int_eq(dlen, 162);
	ck_assert_mem_eq(plain + 52, der, 162);
	OPENSSL_free(der);
	memmove(t->d2s.buf, t->d2s.buf + 256, t->d2s.len - 256);
	t->d2s.len -= 256;

	/* step 3: session material, RSA to the device, HMAC, raw signature */
	ck_assert_int_eq(RAND_bytes(s->session, 40), 1);
	x = EVP_PKEY_CTX_new(s->device, NULL);
	ck_assert_int_eq(EVP_PKEY_encrypt_init(x), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_encrypt(x, ct, &clen, s->session, 40), 1);
	EVP_PKEY_CTX_free(x);
	ck_assert_ptr_nonnull(
		HMAC(EVP_sha1(), s->session, 40, ct, clen, mac, &maclen));
	x = EVP_PKEY_CTX_new(s->key, NULL);
	ck_assert_int_eq(EVP_PKEY_sign_init(x), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_sign(x, sig, &slen, mac, maclen), 1);
	EVP_PKEY_CTX_free(x);
	if (s->bad_signature)
		sig[77] ^= 0x40;
	memcpy(t->s2d.buf + t->s2d.len, ct, 128);
	memcpy(t->s2d.buf + t->s2d.len + 128, sig, 256);
	if (s->garbage_step3)
		ck_assert_int_eq(RAND_bytes(t->s2d.buf + t->s2d.len, 384), 1);
	t->s2d.len += 384;
	memcpy(s->send_iv, s->session + 16, 16);
	memcpy(s->recv_iv, s->session + 16, 16);
	s->state = SRV_FRAMES;
}

/* Take one frame from the device, if complete; returns true if one came. */
static bool
srv_frame(struct server *s, struct test_port *t)
{
	uint8_t ct[1100], first[16];
	size_t len, n;

	if (t->d2s.len < 2)
		return false;
	len = (size_t)t->d2s.buf[0] << 8 | t->d2s.buf[1];
	ck_assert_uint_gt(len, 0);
	ck_assert_uint_eq(len % 16, 0);
	ck_assert_uint_le(len, 784);
	if (t->d2s.len < 2 + len)
		return false;
	memcpy(ct, t->d2s.buf + 2, len);
	if (s->cinder) {
		ck_assert_int_eq(crypto_channel_open(&s->chan, ct, len, s->last,
						     sizeof(s->last), &n),
				 0);
	} else {
		memcpy(first, ct, 16);
		aes_cbc(0, s->session, s->recv_iv, ct, len, s->last, &n);
		memcpy(s->recv_iv, first, 16);
	}
	s->last_len = n;
	memmove(t->d2s.buf, t->d2s.buf + 2 + len, t->d2s.len - 2 - len);
	t->d2s.len -= 2 + len;
	ck_assert_int_eq(pcoap_msg_decode(s->last, n, &s->last_msg), PCOAP_OK);
	s->frames++;
	return true;
}

static void
srv_poll(struct server *s, struct test_port *t)
{
	if (!t->connected)
		return;
	if (s->state == SRV_NONE) {
		srv_accept(s, t);
		return;
	}
	if (s->state == SRV_KEYBLOCK && t->d2s.len >= 256) {
		if (s->cinder)
			srv_keyblock_cinder(s, t);
		else
			srv_keyblock(s, t);
	}
}

/* ---- fixture ----------------------------------------------------------- */

static struct test_port tp;
static struct server srv;
static struct port port;
static struct fw_keys keys;
static struct fw_device dev;
static const char describe_json[] =
	"{\"f\":[\"digitalread\"],\"v\":{},\"p\":3,\"m\":[]}";

static int
keys_random(void *ctx, uint8_t *buf, size_t len)
{
	return tp_random(ctx, buf, len);
}

static void
setup(void)
{
	uint8_t spki[400], der[1300];
	unsigned char *p = NULL;
	size_t slen;
	int dlen;
	EVP_PKEY *dk;
	struct fw_device_config cfg;

	memset(&tp, 0, sizeof(tp));
	memset(&srv, 0, sizeof(srv));
	tp.rng = 0x1234567;
	tp.now = 1000;
	srv.key = load_pem("server_key.pem", true);
	dk = load_pem("device_key.pem", true);
	srv.device = dk;

	slen = load_file("server_pub.der", spki, sizeof(spki));
	dlen = i2d_PrivateKey(dk, &p);
	ck_assert_int_gt(dlen, 0);
	memcpy(der, p, (size_t)dlen);
	OPENSSL_free(p);
	ck_assert_int_eq(fw_keys_init(&keys, spki, slen, der, (size_t)dlen,
				      keys_random, &tp),
			 0);

	memset(&port, 0, sizeof(port));
	port.ctx = &tp;
	port.net_connect = tp_connect;
	port.net_send = tp_send;
	port.net_recv = tp_recv;
	port.net_close = tp_close;
	port.millis = tp_millis;
	port.random = tp_random;
	port.crypto = &fw_keys_crypto;
	port.crypto_ctx = &keys;

	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.id, "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67", 12);
	cfg.product_id = 3;
	cfg.product_version = 0xffff;
	cfg.platform_id = 3;
	cfg.describe = describe_json;
	fw_device_init(&dev, &port, &cfg);
}

static void
setup_cinder(void)
{
	const char *top = getenv("top_srcdir");
	char path[4096];

	setup();
	srv.cinder = true;
	snprintf(path, sizeof(path), "%s/tests/data/vectors/%s",
		 top != NULL ? top : ".", "server_key.pem");
	ck_assert_int_eq(crypto_server_key_load(path, &srv.ckey), 0);
	snprintf(path, sizeof(path), "%s/tests/data/vectors/%s",
		 top != NULL ? top : ".", "device_key.pem");
	ck_assert_int_eq(crypto_privkey_load(path, &srv.cdevice), 0);
}

static void
teardown(void)
{
	fw_keys_cleanup(&keys);
	EVP_PKEY_free(srv.key);
	EVP_PKEY_free(srv.device);
	crypto_key_free(srv.ckey);
	crypto_key_free(srv.cdevice);
	crypto_channel_cleanup(&srv.chan);
}

/* One round: device step, then the server reacts. */
static int
pump(void)
{
	int r;

	tp.send_left = 1;
	tp.recv_left = 1;
	r = fw_device_step(&dev, tp.now);

	srv_poll(&srv, &tp);
	return r;
}

/* Run until the device has sent its Hello and the server decoded it. */
static void
run_to_hello(void)
{
	int i;

	srv.frames = 0;
	fw_device_start(&dev, tp.now);
	for (i = 0; i < 1000 && srv.frames == 0; i++) {
		ck_assert_int_eq(pump(), 0);
		if (srv.state == SRV_FRAMES)
			srv_frame(&srv, &tp);
	}
	ck_assert_int_eq(srv.frames, 1);
	ck_assert_int_eq(dev.state, FW_DEVICE_HELLO);
}

static void
server_hello(uint8_t type)
{
	uint8_t msg[32];
	size_t n;

	ck_assert_int_eq(pcoap_build_hello(msg, sizeof(msg), &n, 321, NULL),
			 PCOAP_OK);
	msg[0] = (uint8_t)((msg[0] & 0xcf) | (type << 4));
	srv_send(&srv, &tp, msg, n);
}

static void
run_to_ready(void)
{
	int i;

	run_to_hello();
	server_hello(PCOAP_NON);
	for (i = 0; i < 100 && !fw_device_is_ready(&dev); i++)
		ck_assert_int_eq(pump(), 0);
	ck_assert(fw_device_is_ready(&dev));
}

static uint8_t
tp_random_byte(void)
{
	uint8_t b;

	tp_random(&tp, &b, 1);
	return b;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_fw_device_step_handshake)
{
	uint16_t salt_mid;

	run_to_hello();
	/* §2.4: NON POST h, no token, 8-byte payload */
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_HELLO);
	ck_assert_uint_eq(srv.last_msg.type, PCOAP_NON);
	ck_assert_uint_eq(srv.last_msg.token.len, 0);
	ck_assert_int_eq(pcoap_parse_hello(&srv.last_msg, &srv.hello),
			 PCOAP_OK);
	ck_assert_uint_eq(srv.hello.payload_len, 8);
	ck_assert_uint_eq(srv.hello.product_id, 3);
	ck_assert_uint_eq(srv.hello.product_version, 0xffff);
	ck_assert_uint_eq(srv.hello.platform_id, 3);
	/* §1.3: the first message ID is the salt's first two bytes (LE) + 1 */
	salt_mid = (uint16_t)(srv.session[32] | srv.session[33] << 8);
	ck_assert_uint_eq(srv.last_msg.mid, (uint16_t)(salt_mid + 1));
	ck_assert(!fw_device_is_ready(&dev));
	/* the session material does not linger in the receive buffer */
	ck_assert_uint_eq(dev.rx_len, 0);
}
END_TEST

START_TEST(test_fw_device_step_ready_then_time)
{
	uint8_t msg[64];
	size_t n;
	struct pcoap_event ev;
	char name[64];
	uint8_t tok;

	run_to_ready();
	ck_assert_uint_eq(dev.connects, 1);
	/* §2.5: chunk size event, then the time request */
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_EVENT);
	ck_assert_int_eq(
		pcoap_parse_event(&srv.last_msg, &ev, name, sizeof(name)),
		PCOAP_OK);
	ck_assert_str_eq(name, "spark/hardware/ota_chunk_size");
	ck_assert_uint_eq(ev.data.len, 3);
	ck_assert_mem_eq(ev.data.p, "512", 3);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_TIME);
	ck_assert_uint_eq(srv.last_msg.type, PCOAP_CON);
	ck_assert_uint_eq(srv.last_msg.token.len, 1);
	tok = srv.last_msg.token.p[0];

	ck_assert_int_eq(pcoap_build_time_reply(msg, sizeof(msg), &n,
						srv.last_msg.mid, tok,
						1795461790u),
			 PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	ck_assert_int_eq(pump(), 0);
	ck_assert_uint_eq(dev.unix_time, 1795461790u);
	ck_assert_uint_ne(dev.unix_time_at, 0);
}
END_TEST

START_TEST(test_fw_device_step_describe_and_ping)
{
	uint8_t msg[64];
	size_t n;

	run_to_ready();
	while (srv_frame(&srv, &tp))
		;
	/* CON GET d with a token: ACK 2.05, same mid and token, the JSON */
	ck_assert_int_eq(
		pcoap_build_describe(msg, sizeof(msg), &n, 322, 0x01, 0),
		PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	/* a ping in the same read: both are answered in order */
	ck_assert_int_eq(pcoap_build_ping(msg, sizeof(msg), &n, 323), PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	ck_assert_int_eq(pump(), 0);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_uint_eq(srv.last_msg.type, PCOAP_ACK);
	ck_assert_uint_eq(srv.last_msg.code, PCOAP_CODE_CONTENT);
	ck_assert_uint_eq(srv.last_msg.mid, 322);
	ck_assert_uint_eq(srv.last_msg.token.len, 1);
	ck_assert_uint_eq(srv.last_msg.token.p[0], 0x01);
	ck_assert_uint_eq(srv.last_msg.payload.len, strlen(describe_json));
	ck_assert_mem_eq(srv.last_msg.payload.p, describe_json,
			 strlen(describe_json));
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg),
			 PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(srv.last_msg.mid, 323);
}
END_TEST

START_TEST(test_fw_device_step_con_hello_acked)
{
	run_to_hello();
	server_hello(PCOAP_CON);
	ck_assert_int_eq(pump(), 0);
	ck_assert(fw_device_is_ready(&dev));
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg),
			 PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(srv.last_msg.mid, 321);
}
END_TEST

START_TEST(test_fw_device_step_one_byte_io)
{
	/* one byte each way per step: the state machine must resume at
	 * any point of the handshake and of a frame */
	int steps;

	tp.chunk = 1;
	run_to_ready();
	ck_assert_int_eq(srv.frames, 1);
	/* the queued event and time request trickle out one byte a step */
	for (steps = 0; srv.frames < 3; steps++) {
		ck_assert_int_lt(steps, 1000);
		ck_assert_int_eq(pump(), 0);
		srv_frame(&srv, &tp);
	}
	ck_assert_int_gt(steps, 48);
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_TIME);
}
END_TEST

START_TEST(test_fw_device_step_publish)
{
	static const uint8_t data[] = "21.5";

	ck_assert_int_eq(fw_device_publish(&dev, "temp", false, data, 4),
			 FW_ERR_INVAL);
	run_to_ready();
	while (srv_frame(&srv, &tp))
		;
	ck_assert_int_eq(fw_device_publish(&dev, "temp", false, data, 4), 0);
	ck_assert_int_eq(pump(), 0);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_uint_eq(srv.last_msg.type, PCOAP_NON);
	ck_assert_uint_eq(srv.last_msg.opts[0].len, 1);
	ck_assert_uint_eq(srv.last_msg.opts[0].val[0], 'e');
	ck_assert_uint_eq(srv.last_msg.payload.len, 4);
}
END_TEST

START_TEST(test_fw_device_step_bad_signature)
{
	int i, r = 0;

	srv.bad_signature = true;
	fw_device_start(&dev, tp.now);
	for (i = 0; i < 100 && r == 0; i++)
		r = pump();
	ck_assert_int_eq(r, FW_ERR_CRYPTO);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
	ck_assert(!tp.connected);
	ck_assert_int_eq(dev.last_err, FW_ERR_CRYPTO);
	/* it reconnects by itself after the retry delay, not before */
	srv.state = SRV_NONE;
	srv.bad_signature = false;
	ck_assert_int_eq(pump(), 0);
	ck_assert(!tp.connected);
	tp.now += FW_DEVICE_RETRY_MIN;
	for (i = 0; i < 100 && srv.state != SRV_FRAMES; i++)
		ck_assert_int_eq(pump(), 0);
	ck_assert_int_eq(tp.connects, 2);
}
END_TEST

START_TEST(test_fw_device_step_hello_timeout)
{
	run_to_hello();
	tp.now += FW_DEVICE_HELLO_TIMEOUT - 1;
	ck_assert_int_eq(pump(), 0);
	tp.now += 1;
	ck_assert_int_eq(pump(), FW_ERR_TIMEOUT);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
}
END_TEST

START_TEST(test_fw_device_step_nonce_timeout)
{
	int i;

	/* the server accepts but never sends the nonce */
	fw_device_start(&dev, tp.now);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(fw_device_step(&dev, tp.now), 0);
	ck_assert_int_eq(dev.state, FW_DEVICE_NONCE);
	tp.now += FW_DEVICE_STEP_TIMEOUT;
	ck_assert_int_eq(fw_device_step(&dev, tp.now), FW_ERR_TIMEOUT);
}
END_TEST

START_TEST(test_fw_device_step_keepalive)
{
	uint8_t msg[16];
	size_t n;
	uint16_t ping_mid;

	run_to_ready();
	while (srv_frame(&srv, &tp))
		;
	tp.now += FW_DEVICE_PING_AFTER - 1;
	ck_assert_int_eq(pump(), 0);
	ck_assert(!srv_frame(&srv, &tp));
	tp.now += 1;
	ck_assert_int_eq(pump(), 0);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_PING);
	ping_mid = srv.last_msg.mid;

	/* answered: the connection lives on */
	ck_assert_int_eq(pcoap_build_empty_ack(msg, sizeof(msg), &n, ping_mid),
			 PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	tp.now += FW_DEVICE_PING_TIMEOUT;
	ck_assert_int_eq(pump(), 0);
	ck_assert(fw_device_is_ready(&dev));

	/* unanswered: 15 s of silence, a ping, 10 s more, then give up */
	tp.now += FW_DEVICE_PING_AFTER;
	ck_assert_int_eq(pump(), 0);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_PING);
	tp.now += FW_DEVICE_PING_TIMEOUT;
	ck_assert_int_eq(pump(), FW_ERR_TIMEOUT);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
}
END_TEST

/* fw_device_ping: a ping now; only its own empty ACK counts as a pong */
START_TEST(test_fw_device_ping_pong)
{
	uint8_t msg[16];
	size_t n;
	uint16_t mid;

	ck_assert_int_eq(fw_device_ping(&dev, tp.now), FW_ERR_INVAL);
	run_to_ready();
	while (srv_frame(&srv, &tp))
		;
	ck_assert_uint_eq(dev.pongs, 0);
	ck_assert_int_eq(fw_device_ping(&dev, tp.now), 0);
	ck_assert_int_eq(pump(), 0);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_PING);
	ck_assert_uint_eq(srv.last_msg.type, PCOAP_CON);
	mid = srv.last_msg.mid;

	/* an empty ACK with another message ID is not the answer */
	ck_assert_int_eq(pcoap_build_empty_ack(msg, sizeof(msg), &n,
					       (uint16_t)(mid + 1)),
			 PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	ck_assert_int_eq(pump(), 0);
	ck_assert_uint_eq(dev.pongs, 0);
	ck_assert_int_eq(pcoap_build_empty_ack(msg, sizeof(msg), &n, mid),
			 PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	ck_assert_int_eq(pump(), 0);
	ck_assert_uint_eq(dev.pongs, 1);
	/* a repeated ACK counts once */
	srv_send(&srv, &tp, msg, n);
	ck_assert_int_eq(pump(), 0);
	ck_assert_uint_eq(dev.pongs, 1);

	/* the keep-alive's ping is answered the same way */
	tp.now += FW_DEVICE_PING_AFTER;
	ck_assert_int_eq(pump(), 0);
	ck_assert(srv_frame(&srv, &tp));
	ck_assert_int_eq(pcoap_particle_kind(&srv.last_msg), PCOAP_KIND_PING);
	ck_assert_int_eq(
		pcoap_build_empty_ack(msg, sizeof(msg), &n, srv.last_msg.mid),
		PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	ck_assert_int_eq(pump(), 0);
	ck_assert_uint_eq(dev.pongs, 2);
	ck_assert(fw_device_is_ready(&dev));
}
END_TEST

START_TEST(test_fw_device_step_oversize_frame)
{
	run_to_ready();
	/* 784 bytes of ciphertext is more than an 800-byte buffer takes */
	tp.s2d.buf[0] = 784 >> 8;
	tp.s2d.buf[1] = 784 & 0xff;
	tp.s2d.len = 2;
	ck_assert_int_eq(pump(), FW_ERR_PROTO);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
}
END_TEST

START_TEST(test_fw_device_step_corrupt_frame)
{
	uint8_t msg[16];
	size_t n;

	run_to_ready();
	ck_assert_int_eq(pcoap_build_ping(msg, sizeof(msg), &n, 9), PCOAP_OK);
	srv_send(&srv, &tp, msg, n);
	tp.s2d.buf[tp.s2d.len - 1] ^= 0x55; /* breaks the padding */
	ck_assert_int_ne(pump(), 0);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
}
END_TEST

START_TEST(test_fw_device_step_peer_close)
{
	run_to_ready();
	tp.peer_closed = true;
	ck_assert_int_eq(pump(), FW_ERR_IO);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
	fw_device_stop(&dev);
	tp.now += FW_DEVICE_RETRY_MAX;
	ck_assert_int_eq(pump(), 0);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
}
END_TEST

START_TEST(test_fw_device_step_garbage_session_block)
{
	int i, r = 0;

	srv.garbage_step3 = true;
	fw_device_start(&dev, tp.now);
	for (i = 0; i < 100 && r == 0; i++)
		r = pump();
	ck_assert_int_eq(r, FW_ERR_CRYPTO);
	ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
}
END_TEST

/*
 * Mutated but correctly encrypted messages from the server: the device
 * answers, ignores or drops the connection, and reconnects; it never
 * reads or writes out of bounds (run under ASan in CI).
 */
START_TEST(test_fw_device_step_mutated_messages)
{
	uint8_t seeds[6][64], msg[128];
	size_t seed_len[6], n;
	int i, k, drops = 0, r;

	ck_assert_int_eq(pcoap_build_describe(seeds[0], 64, &seed_len[0], 5, 1,
					      PCOAP_DESCRIBE_APP),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_ping(seeds[1], 64, &seed_len[1], 6),
			 PCOAP_OK);
	ck_assert_int_eq(
		pcoap_build_time_reply(seeds[2], 64, &seed_len[2], 7, 1, 12345),
		PCOAP_OK);
	ck_assert_int_eq(pcoap_build_event(seeds[3], 64, &seed_len[3],
					   PCOAP_NON, 8, false, "a/b", 3, 60,
					   (const uint8_t *)"xyz", 3),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_hello(seeds[4], 64, &seed_len[4], 9, NULL),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_function_call(seeds[5], 64, &seed_len[5],
						   10, 2, "fn", 2, "arg", 3),
			 PCOAP_OK);

	run_to_ready();
	for (i = 0; i < 150; i++) {
		k = (int)(tp_random_byte() % 6);
		n = seed_len[k];
		memcpy(msg, seeds[k], n);
		switch (tp_random_byte() % 3) {
		case 0: /* flip a byte */
			msg[tp_random_byte() % n] ^=
				(uint8_t)(1 + tp_random_byte() % 255);
			break;
		case 1: /* truncate */
			n = tp_random_byte() % n;
			break;
		default: /* append junk */
			msg[n++] = tp_random_byte();
			msg[n++] = tp_random_byte();
			break;
		}
		srv_send(&srv, &tp, msg, n);
		r = pump();
		while (srv.state == SRV_FRAMES && srv_frame(&srv, &tp))
			;
		if (r != 0) {
			drops++;
			ck_assert_int_eq(dev.state, FW_DEVICE_IDLE);
			srv.state = SRV_NONE;
			tp.now = dev.retry_at;
			run_to_ready();
		}
	}
	ck_assert(fw_device_is_ready(&dev));
	ck_assert_int_gt(drops, 0);
	ck_assert_int_lt(drops, 150);
}
END_TEST

static Suite *
fw_device_suite(void)
{
	Suite *s = suite_create("fw_device");
	TCase *tc;

	tc = tcase_create("handshake");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fw_device_step_handshake);
	tcase_add_test(tc, test_fw_device_step_con_hello_acked);
	tcase_add_test(tc, test_fw_device_step_one_byte_io);
	tcase_add_test(tc, test_fw_device_step_bad_signature);
	tcase_add_test(tc, test_fw_device_step_hello_timeout);
	tcase_add_test(tc, test_fw_device_step_nonce_timeout);
	tcase_add_test(tc, test_fw_device_step_garbage_session_block);
	suite_add_tcase(s, tc);

	tc = tcase_create("session");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fw_device_step_ready_then_time);
	tcase_add_test(tc, test_fw_device_step_describe_and_ping);
	tcase_add_test(tc, test_fw_device_step_publish);
	tcase_add_test(tc, test_fw_device_step_keepalive);
	tcase_add_test(tc, test_fw_device_ping_pong);
	tcase_add_test(tc, test_fw_device_step_oversize_frame);
	tcase_add_test(tc, test_fw_device_step_corrupt_frame);
	tcase_add_test(tc, test_fw_device_step_peer_close);
	tcase_add_test(tc, test_fw_device_step_mutated_messages);
	suite_add_tcase(s, tc);

	/* the same device against cinderd's server-side crypto */
	tc = tcase_create("cinder_server");
	tcase_add_checked_fixture(tc, setup_cinder, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fw_device_step_handshake);
	tcase_add_test(tc, test_fw_device_step_ready_then_time);
	tcase_add_test(tc, test_fw_device_step_describe_and_ping);
	tcase_add_test(tc, test_fw_device_step_one_byte_io);
	tcase_add_test(tc, test_fw_device_step_bad_signature);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fw_device_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
