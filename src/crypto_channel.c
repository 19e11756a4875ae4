/* SPDX-License-Identifier: MIT */
/*
 * The device session on top of crypto.c's primitives: the AES-128-CBC
 * channel with Particle's IV chaining (protocol.md §1.3, §1.4; contexts
 * per thread, a busy channel's own ECB context) and both
 * sides of the handshake blocks (§2.3: step 2 opened and built, step 3
 * built and opened).
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* Hide every deprecated declaration: using one fails to compile. */
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "crypto_int.h"
#include "err.h"
#include "log.h"

/*
 * Session channel
 */

static pthread_once_t aes_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *aes_fetched; /* set once, never freed */

static void
crypto_aes_fetch(void)
{
	aes_fetched = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
	ERR_clear_error();
}

/* The explicitly fetched cipher avoids a provider lookup per message. */
static const EVP_CIPHER *
crypto_aes(void)
{
	pthread_once(&aes_once, crypto_aes_fetch);
	return aes_fetched != NULL ? aes_fetched : EVP_aes_128_cbc();
}

static pthread_once_t ecb_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *ecb_fetched; /* set once, never freed */

static void
crypto_ecb_fetch(void)
{
	ecb_fetched = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
	ERR_clear_error();
}

/* A new ECB context without padding, to encrypt (enc 1) or decrypt,
   keyed with key (or not yet, if NULL); NULL if it cannot be made
   (OpenSSL's errors left for the caller). Every ECB context below is
   made here. */
static EVP_CIPHER_CTX *
ecb_new(const uint8_t *key, int enc)
{
	EVP_CIPHER_CTX *ctx;

	pthread_once(&ecb_once, crypto_ecb_fetch);
	if (ecb_fetched == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (EVP_CipherInit_ex2(ctx, ecb_fetched, key, NULL, enc, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
crypto_channel_init(struct crypto_channel *ch,
		    const uint8_t session[CRYPTO_SESSION_LEN])
{
	ch->may_cache = false;
	ch->rx_n = 0;
	ch->rx_sec = 0;
	ch->rx_ecb = NULL;
	memcpy(ch->key, session, CRYPTO_AES_KEY_LEN);
	memcpy(ch->send_iv, session + 16, CRYPTO_AES_BLOCK);
	memcpy(ch->recv_iv, session + 16, CRYPTO_AES_BLOCK);
	memcpy(ch->salt, session + 32, sizeof(ch->salt));
}

void
crypto_channel_busy_cache(struct crypto_channel *ch)
{
	ch->may_cache = true;
}

void
crypto_channel_cleanup(struct crypto_channel *ch)
{
	if (ch == NULL)
		return;
	EVP_CIPHER_CTX_free(ch->rx_ecb);
	OPENSSL_cleanse(ch, sizeof(*ch));
}

/*
 * The channel's own ECB context once it is busy (NULL otherwise, or if it
 * cannot be made: the per-thread CBC path then serves). The rate is
 * counted on the coarse clock (the last tick, no TSC read).
 */
static EVP_CIPHER_CTX *
channel_ecb(struct crypto_channel *ch)
{
	struct timespec ts;
	EVP_CIPHER_CTX *ctx;

	if (ch->rx_ecb != NULL || !ch->may_cache)
		return ch->rx_ecb;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if ((uint32_t)ts.tv_sec != ch->rx_sec) {
		ch->rx_sec = (uint32_t)ts.tv_sec;
		ch->rx_n = 0;
	}
	if (++ch->rx_n < CRYPTO_BUSY_PER_S)
		return NULL;
	if ((ctx = ecb_new(ch->key, 0)) == NULL) {
		crypto_drain(LOG_LEVEL_ERR, "could not key a channel context");
		ch->may_cache = false; /* do not retry per message */
		return NULL;
	}
	ch->rx_ecb = ctx;
	return ctx;
}

size_t
crypto_channel_sealed_len(size_t len)
{
	return (len & ~(size_t)(CRYPTO_AES_BLOCK - 1)) + CRYPTO_AES_BLOCK;
}

/*
 * Cipher contexts per thread (one to seal, two to open), made once and
 * keyed per message where the key changes (EVP_*Init_ex2 with a NULL
 * cipher keeps the provider context):
 * no allocation, no provider lookup and no locks on the message path
 * (perf showed the per-message context setup as a third of cinderd's CPU
 * on publish -> SSE). Every call keys a context for its own session (an
 * ECB one only when it holds another session's key) and uses its own
 * session's IV, so nothing carries over from one session to the next; a
 * context that failed is dropped and made again.
 */
static __thread EVP_CIPHER_CTX *aes_tl_ctx[3]; /* AES_TL_SEAL... */

/* The thread's CBC decryption context (no padding: the caller checks
   it), for a message decrypted in place; keyed by the caller. */
static EVP_CIPHER_CTX *
cbc_open_ctx(void)
{
	EVP_CIPHER_CTX *ctx = aes_tl_ctx[AES_TL_OPEN];

	if (ctx != NULL)
		return ctx;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (EVP_CipherInit_ex2(ctx, crypto_aes(), NULL, NULL, 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	aes_tl_ctx[AES_TL_OPEN] = ctx;
	return ctx;
}

/* The key each of the thread's contexts holds, if ecb_tl_keyed (the
   ECB ones only: AES_TL_SEAL and AES_TL_OPEN_ECB). */
static __thread uint8_t ecb_tl_key[3][CRYPTO_AES_KEY_LEN];
static __thread bool ecb_tl_keyed[3];

/*
 * The thread's ECB context to encrypt (which: AES_TL_SEAL) or decrypt
 * (AES_TL_OPEN_ECB), keyed for this message; CBC is then done by hand,
 * as on a busy channel's own context. Keying it takes the key alone: an
 * IV given to EVP_*Init_ex2 makes OpenSSL 3.0 ask the provider for the
 * IV's length on every call, a parameter walk of ~550 instructions, a
 * third of the keying (callgrind of bench/run's B4 calls to 1,000
 * devices that are not busy). A context that already holds the key is
 * not keyed again (~1,400 instructions): a device's messages often come
 * in one read, as a call's ACK and answer do, and the answers to one
 * read go out together (a handshake's post-Hello burst).
 */
static EVP_CIPHER_CTX *
thread_ecb(const uint8_t key[CRYPTO_AES_KEY_LEN], int which)
{
	EVP_CIPHER_CTX *ctx = aes_tl_ctx[which];
	int enc = which == AES_TL_SEAL;

	if (ctx == NULL) {
		if ((ctx = ecb_new(NULL, enc)) == NULL) {
			ERR_clear_error();
			return NULL;
		}
		aes_tl_ctx[which] = ctx;
	}
	if (ecb_tl_keyed[which] &&
	    CRYPTO_memcmp(ecb_tl_key[which], key, CRYPTO_AES_KEY_LEN) == 0)
		return ctx;
	ecb_tl_keyed[which] = false;
	if (EVP_CipherInit_ex2(ctx, NULL, key, NULL, enc, NULL) != 1) {
		crypto_drain(LOG_LEVEL_ERR,
			     enc ? "could not key an encryption context"
				 : "could not key a decryption context");
		crypto_aes_ctx_drop(which);
		return NULL;
	}
	memcpy(ecb_tl_key[which], key, CRYPTO_AES_KEY_LEN);
	ecb_tl_keyed[which] = true;
	return ctx;
}

void
crypto_aes_ctx_drop(int which)
{
	EVP_CIPHER_CTX_free(aes_tl_ctx[which]);
	aes_tl_ctx[which] = NULL;
	OPENSSL_cleanse(ecb_tl_key[which], sizeof(ecb_tl_key[which]));
	ecb_tl_keyed[which] = false;
}

/* dst ^= src, one AES block, a word at a time (the byte loop was half
   of crypto_channel_open()'s own instructions) */
static inline void
xor_block(uint8_t *dst, const uint8_t *src)
{
	uint64_t d[2], s[2];

	memcpy(d, dst, sizeof(d));
	memcpy(s, src, sizeof(s));
	d[0] ^= s[0];
	d[1] ^= s[1];
	memcpy(dst, d, sizeof(d));
}

int
crypto_channel_seal(struct crypto_channel *ch, const uint8_t *in, size_t len,
		    uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx;
	const uint8_t *prev;
	size_t need, b;
	int n = 0;

	if (out_len != NULL)
		*out_len = 0;
	if (ch == NULL || (in == NULL && len != 0) || out == NULL ||
	    out_len == NULL)
		return CINDER_ERR_INVAL;
	if (len > INT_MAX - CRYPTO_AES_BLOCK)
		return CINDER_ERR_TOO_BIG;
	need = crypto_channel_sealed_len(len);
	if (cap < need)
		return CINDER_ERR_TOO_BIG;
	/* CBC by hand on the thread's ECB context, a block at a time in
	   place: C[i] = E(P[i] xor C[i-1]), the IV before C[0], PKCS#7
	   padding. Keying with the IV was ~2,500 instructions a message
	   (callgrind of B1's loop thread, five messages a handshake). */
	if (len > 0)
		memmove(out, in, len);
	memset(out + len, (int)(need - len), need - len);
	if ((ctx = thread_ecb(ch->key, AES_TL_SEAL)) == NULL)
		goto fail;
	for (b = 0, prev = ch->send_iv; b < need; b += CRYPTO_AES_BLOCK) {
		xor_block(out + b, prev);
		if (EVP_EncryptUpdate(ctx, out + b, &n, out + b,
				      CRYPTO_AES_BLOCK) != 1 ||
		    n != CRYPTO_AES_BLOCK) {
			crypto_aes_ctx_drop(AES_TL_SEAL);
			goto fail;
		}
		prev = out + b;
	}
	/* §1.4: the next IV is the FIRST ciphertext block, not the last. */
	memcpy(ch->send_iv, out, CRYPTO_AES_BLOCK);
	*out_len = need;
	return 0;
fail:
	crypto_drain(LOG_LEVEL_ERR, "could not encrypt message");
	OPENSSL_cleanse(out, cap);
	return CINDER_ERR_CRYPTO;
}

int
crypto_channel_open(struct crypto_channel *ch, const uint8_t *in, size_t len,
		    uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned pad, bad, i, v, in_pad;
	int n1 = 0, n2 = 0, r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (ch == NULL || in == NULL || out == NULL || out_len == NULL)
		return CINDER_ERR_INVAL;
	if (len == 0 || len % CRYPTO_AES_BLOCK != 0)
		return CINDER_ERR_INVAL;
	if (len > INT_MAX)
		return CINDER_ERR_TOO_BIG;
	if (cap < len)
		return CINDER_ERR_TOO_BIG;
	/* Padding is checked below so that every pad byte is verified. */
	if ((out + len <= in || in + len <= out) &&
	    ((ctx = channel_ecb(ch)) != NULL ||
	     (ctx = thread_ecb(ch->key, AES_TL_OPEN_ECB)) != NULL)) {
		/* CBC by hand on the keyed ECB context: P[i] = D(C[i]) xor
		   C[i-1], with the IV before C[0]; on a busy channel's own
		   context, no setup per message */
		const uint8_t *prev = ch->recv_iv;
		size_t b;

		if (EVP_DecryptUpdate(ctx, out, &n1, in, (int)len) != 1 ||
		    (size_t)n1 != len) {
			crypto_drain(LOG_LEVEL_ERR,
				     "could not decrypt message");
			if (ctx == aes_tl_ctx[AES_TL_OPEN_ECB])
				crypto_aes_ctx_drop(AES_TL_OPEN_ECB);
			r = CINDER_ERR_CRYPTO;
			goto out;
		}
		for (b = 0; b < len; b += CRYPTO_AES_BLOCK) {
			xor_block(out + b, prev);
			prev = in + b;
		}
	} else if ((ctx = cbc_open_ctx()) == NULL ||
		   EVP_DecryptInit_ex2(ctx, NULL, ch->key, ch->recv_iv, NULL) !=
			   1 ||
		   EVP_DecryptUpdate(ctx, out, &n1, in, (int)len) != 1 ||
		   EVP_DecryptFinal_ex(ctx, out + n1, &n2) != 1 ||
		   (size_t)n1 + (size_t)n2 != len) {
		crypto_drain(LOG_LEVEL_ERR, "could not decrypt message");
		crypto_aes_ctx_drop(AES_TL_OPEN);
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	/* PKCS#7, checked without data-dependent branches. */
	pad = out[len - 1];
	bad = (unsigned)(pad == 0) | (unsigned)(pad > CRYPTO_AES_BLOCK);
	for (i = 0; i < CRYPTO_AES_BLOCK; i++) {
		v = out[len - 1 - i];
		in_pad = (unsigned)(i < pad);
		bad |= in_pad & (unsigned)(v != pad);
	}
	if (bad) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	memcpy(ch->recv_iv, in, CRYPTO_AES_BLOCK);
	*out_len = len - pad;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, cap < len ? cap : len);
	return r;
}

/*
 * Handshake
 */

int
crypto_handshake_step2_parse(const uint8_t nonce[CRYPTO_NONCE_LEN],
			     const uint8_t *plain, size_t len,
			     struct crypto_step2 *out)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (nonce == NULL || plain == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if (len < CRYPTO_STEP2_MIN_PLAIN || len > CRYPTO_STEP2_MAX_PLAIN)
		return CINDER_ERR_CRYPTO;
	if (CRYPTO_memcmp(plain, nonce, CRYPTO_NONCE_LEN) != 0)
		return CINDER_ERR_CRYPTO;
	memcpy(out->device_id, plain + CRYPTO_NONCE_LEN, CRYPTO_DEVICE_ID_LEN);
	out->key_der_len = len - CRYPTO_STEP2_MIN_PLAIN;
	memcpy(out->key_der, plain + CRYPTO_STEP2_MIN_PLAIN, out->key_der_len);
	return 0;
}

int
crypto_handshake_step2_open(const struct crypto_key *server,
			    const uint8_t nonce[CRYPTO_NONCE_LEN],
			    const uint8_t *block, size_t block_len,
			    struct crypto_step2 *out)
{
	uint8_t plain[CRYPTO_STEP2_LEN];
	size_t n = 0;
	int r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (server == NULL || nonce == NULL || block == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if (block_len != CRYPTO_STEP2_LEN ||
	    crypto_key_size(server) != CRYPTO_STEP2_LEN)
		return CINDER_ERR_INVAL;
	if ((r = crypto_rsa_decrypt(server, block, block_len, plain,
				    sizeof(plain), &n)) != 0)
		goto out;
	r = crypto_handshake_step2_parse(nonce, plain, n, out);
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

int
crypto_handshake_step3_build(const struct crypto_key *server,
			     const struct crypto_key *device,
			     const uint8_t session[CRYPTO_SESSION_LEN],
			     uint8_t out[CRYPTO_STEP3_LEN])
{
	uint8_t mac[CRYPTO_HMAC_SHA1_LEN];
	size_t n = 0;
	int r = CINDER_ERR_INTERNAL;

	if (server == NULL || device == NULL || session == NULL || out == NULL)
		return CINDER_ERR_INVAL;
	if (crypto_key_size(device) != CRYPTO_STEP3_CT_LEN ||
	    crypto_key_size(server) != CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN)
		return CINDER_ERR_INVAL;
	if ((r = crypto_rsa_encrypt(device, session, CRYPTO_SESSION_LEN, out,
				    CRYPTO_STEP3_CT_LEN, &n)) != 0)
		goto out;
	if ((r = crypto_hmac_sha1(session, CRYPTO_SESSION_LEN, out,
				  CRYPTO_STEP3_CT_LEN, mac)) != 0)
		goto out;
	if ((r = crypto_rsa_sign_raw(
		     server, mac, sizeof(mac), out + CRYPTO_STEP3_CT_LEN,
		     CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN, &n)) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, CRYPTO_STEP3_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

int
crypto_handshake_step2_build(const struct crypto_key *server_pub,
			     const uint8_t nonce[CRYPTO_NONCE_LEN],
			     const uint8_t device_id[CRYPTO_DEVICE_ID_LEN],
			     const uint8_t *der, size_t der_len,
			     uint8_t out[CRYPTO_STEP2_LEN])
{
	uint8_t plain[CRYPTO_STEP2_MAX_PLAIN];
	size_t n = 0;
	int r;

	if (server_pub == NULL || nonce == NULL || device_id == NULL ||
	    out == NULL || (der == NULL && der_len != 0) ||
	    der_len > CRYPTO_STEP2_KEY_MAX)
		return CINDER_ERR_INVAL;
	if (crypto_key_size(server_pub) != CRYPTO_STEP2_LEN)
		return CINDER_ERR_INVAL;
	memcpy(plain, nonce, CRYPTO_NONCE_LEN);
	memcpy(plain + CRYPTO_NONCE_LEN, device_id, CRYPTO_DEVICE_ID_LEN);
	if (der_len != 0)
		memcpy(plain + CRYPTO_STEP2_MIN_PLAIN, der, der_len);
	r = crypto_rsa_encrypt(server_pub, plain,
			       CRYPTO_STEP2_MIN_PLAIN + der_len, out,
			       CRYPTO_STEP2_LEN, &n);
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

int
crypto_handshake_step3_open(const struct crypto_key *device,
			    const struct crypto_key *server_pub,
			    const uint8_t *block, size_t block_len,
			    uint8_t session[CRYPTO_SESSION_LEN])
{
	uint8_t plain[CRYPTO_STEP3_CT_LEN];
	uint8_t mac[CRYPTO_HMAC_SHA1_LEN];
	size_t n = 0;
	int r = CINDER_ERR_INTERNAL;

	if (session != NULL)
		memset(session, 0, CRYPTO_SESSION_LEN);
	if (device == NULL || server_pub == NULL || block == NULL ||
	    session == NULL)
		return CINDER_ERR_INVAL;
	if (block_len != CRYPTO_STEP3_LEN ||
	    crypto_key_size(device) != CRYPTO_STEP3_CT_LEN ||
	    crypto_key_size(server_pub) !=
		    CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN)
		return CINDER_ERR_INVAL;
	if ((r = crypto_rsa_decrypt(device, block, CRYPTO_STEP3_CT_LEN, plain,
				    sizeof(plain), &n)) != 0)
		goto out;
	if (n != CRYPTO_SESSION_LEN) {
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if ((r = crypto_hmac_sha1(plain, CRYPTO_SESSION_LEN, block,
				  CRYPTO_STEP3_CT_LEN, mac)) != 0)
		goto out;
	if ((r = crypto_rsa_verify_raw(
		     server_pub, mac, sizeof(mac), block + CRYPTO_STEP3_CT_LEN,
		     CRYPTO_STEP3_LEN - CRYPTO_STEP3_CT_LEN)) != 0)
		goto out;
	memcpy(session, plain, CRYPTO_SESSION_LEN);
	r = 0;
out:
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}
