/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the pre-authentication input the server handles: the
 * first input byte picks a mode, the rest is the input.
 *   0  step-2 plaintext checks (nonce = the fixed fuzz_nonce below), then
 *      the device-supplied DER key, with a DER/PEM round-trip property
 *   1  40-byte nonce + 256-byte step-2 block: the full server step 2
 *   2  384-byte step-3 block opened as a device (simulator code path)
 *   3  16-byte key + 16-byte IV + ciphertext: channel open; if it opens,
 *      sealing the plaintext again must give the same ciphertext
 *   4  any public key text (PEM or DER)
 * Keys are the recorded-session keys from $top_srcdir/tests/data/vectors
 * when found (so the seeds reach deep), else freshly generated ones.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "fuzz.h"
#include "log.h"
#include "../unit/ossl_oracle.h"

/* Mode 0 compares against this nonce; seeds start with it. */
static const uint8_t fuzz_nonce[CRYPTO_NONCE_LEN] =
	"cinder-fuzz-nonce-0123456789abcdefghijkl";

static struct crypto_key *server, *device;

static struct crypto_key *
load(const char *name, bool is_server)
{
	const char *top = getenv("top_srcdir");
	struct crypto_key *k = NULL;
	char path[4096];

	if (top != NULL) {
		snprintf(path, sizeof(path), "%s/tests/data/vectors/%s", top,
			 name);
		if (crypto_privkey_load(path, &k) == 0)
			return k;
	}
	if (crypto_key_generate(is_server ? 2048 : 1024, &k) != 0)
		abort();
	return k;
}

static void
init(void)
{
	if (server != NULL)
		return;
	/* Bad input is the point here: keep the debug chatter off. */
	log_current_level = LOG_LEVEL_ERR;
	server = load("server_key.pem", true);
	device = load("device_key.pem", false);
}

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* A key that parsed must survive DER -> PEM -> DER unchanged, the stored
   key's PEM to DER (its base64-only way for the usual form) must answer
   as the parse does, and what the parse takes OpenSSL's generic
   decoders must take too, as the same key (the two share the hand-written
   decoders, the oracle does not). */
static void
key_roundtrip(const uint8_t *buf, size_t len)
{
	struct crypto_key *k = NULL, *k2 = NULL;
	uint8_t der[CRYPTO_PUB_DER_MAX], der2[CRYPTO_PUB_DER_MAX],
		der3[CRYPTO_PUB_DER_MAX];
	size_t n = 0, n2 = 0, n3 = 0;
	char *pem = NULL;
	int r = crypto_pubkey_pem_to_der((const char *)buf, len, der2,
					 sizeof(der2), &n2);

	if (crypto_pubkey_parse(buf, len, &k) != 0) {
		check(k == NULL);
		check(r != 0 && n2 == 0);
		return;
	}
	check(crypto_key_bits(k) >= 1024 && crypto_key_bits(k) <= 2048);
	check(!crypto_key_is_private(k));
	check(crypto_key_public_der(k, der, sizeof(der), &n) == 0);
	check(r == 0 && n2 == n && memcmp(der, der2, n) == 0);
	check(ossl_oracle_pub_der(buf, len, der3, sizeof(der3), &n3) == 0);
	check(n3 == n && memcmp(der, der3, n) == 0);
	check(crypto_pubkey_der_to_pem(der, n, &pem) == 0);
	check(crypto_pubkey_pem_to_der(pem, strlen(pem), der2, sizeof(der2),
				       &n2) == 0);
	check(n == n2 && memcmp(der, der2, n) == 0);
	check(crypto_pubkey_parse(der2, n2, &k2) == 0);
	check(crypto_key_public_eq(k, k2));
	free(pem);
	crypto_key_free(k);
	crypto_key_free(k2);
}

static void
mode_step2_parse(const uint8_t *data, size_t size)
{
	struct crypto_step2 st;

	if (crypto_handshake_step2_parse(fuzz_nonce, data, size, &st) != 0)
		return;
	check(size >= CRYPTO_STEP2_MIN_PLAIN);
	check(st.key_der_len == size - CRYPTO_STEP2_MIN_PLAIN);
	check(memcmp(st.device_id, data + CRYPTO_NONCE_LEN,
		     CRYPTO_DEVICE_ID_LEN) == 0);
	if (st.key_der_len > 0)
		key_roundtrip(st.key_der, st.key_der_len);
}

static void
mode_step2_open(const uint8_t *data, size_t size)
{
	struct crypto_step2 st;
	int r;

	if (size < CRYPTO_NONCE_LEN)
		return;
	r = crypto_handshake_step2_open(server, data, data + CRYPTO_NONCE_LEN,
					size - CRYPTO_NONCE_LEN, &st);
	check(r == 0 || r == CINDER_ERR_CRYPTO || r == CINDER_ERR_INVAL);
	if (r == 0 && st.key_der_len > 0)
		key_roundtrip(st.key_der, st.key_der_len);
}

static void
mode_step3_open(const uint8_t *data, size_t size)
{
	uint8_t session[CRYPTO_SESSION_LEN];
	int r = crypto_handshake_step3_open(device, server, data, size,
					    session);

	check(r == 0 || r == CINDER_ERR_CRYPTO || r == CINDER_ERR_INVAL);
}

static void
mode_channel(const uint8_t *data, size_t size)
{
	uint8_t session[CRYPTO_SESSION_LEN], *pt, *ct;
	struct crypto_channel rx, tx;
	size_t n = 0, m = 0, len;

	if (size < 32)
		return;
	memset(session, 0, sizeof(session));
	memcpy(session, data, 32);
	crypto_channel_init(&rx, session);
	crypto_channel_init(&tx, session);
	data += 32;
	len = size - 32;
	if (len > 65536)
		return;
	pt = malloc(len + 1);
	ct = malloc(len + 16);
	check(pt != NULL && ct != NULL);
	if (crypto_channel_open(&rx, data, len, pt, len, &n) == 0) {
		check(n < len && len - n <= CRYPTO_AES_BLOCK);
		check(crypto_channel_seal(&tx, pt, n, ct, len + 16, &m) == 0);
		check(m == len && memcmp(ct, data, len) == 0);
		check(memcmp(rx.recv_iv, tx.send_iv, CRYPTO_AES_BLOCK) == 0);
	}
	free(pt);
	free(ct);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init();
	if (size < 1)
		return 0;
	switch (data[0]) {
	case 0:
		mode_step2_parse(data + 1, size - 1);
		break;
	case 1:
		mode_step2_open(data + 1, size - 1);
		break;
	case 2:
		mode_step3_open(data + 1, size - 1);
		break;
	case 3:
		mode_channel(data + 1, size - 1);
		break;
	case 4:
		key_roundtrip(data + 1, size - 1);
		break;
	default:
		break;
	}
	return 0;
}
