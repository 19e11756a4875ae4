/* SPDX-License-Identifier: MIT */
/*
 * Device-protocol cryptography on top of OpenSSL 3 EVP, the primitives:
 * RSA PKCS#1 v1.5 (encrypt, decrypt, raw signatures), HMAC, SHA-256, RNG,
 * wiping, PBKDF2 password hashes, and the per-thread cleanup of all three
 * crypto files. Keys and their encodings are in crypto_key.c, the AES
 * channel and the handshake blocks in crypto_channel.c; what they share is
 * in crypto_int.h. These three are the only files that include OpenSSL
 * headers; the OpenSSL error queue is drained by crypto_drain() and turned
 * into CINDER_ERR_CRYPTO (logged at debug level for peer input, at error
 * level for local key files). No libevent, no global mutable state except
 * what is fetched once (set up once) and per-thread contexts.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Hide every deprecated declaration: using one fails to compile. */
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "crypto.h"
#include "crypto_int.h"
#include "err.h"
#include "log.h"
#include "xmalloc.h"

/*
 * Empty the thread's OpenSSL error queue, logging each entry. Peer input
 * failures log at debug so a noisy device cannot flood the log.
 */
void
crypto_drain(enum log_level level, const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		if (log_enabled(level)) {
			ERR_error_string_n(e, buf, sizeof(buf));
			log_write(level, NULL, "crypto: %s: %s", what, buf);
		}
	}
}

/*
 * RSA primitives
 */

/*
 * The private-key operations (the server key: decrypt the device's
 * block, sign the reply) keep their EVP_PKEY_CTX per thread, made and
 * initialised once per key: OpenSSL 3 fetches the RSA implementation and
 * builds a provider context for every new EVP_PKEY_CTX. The context holds
 * a reference on its key, so a cached pointer never names a freed key.
 */
enum { PK_DECRYPT = 0, PK_SIGN = 1 };
static __thread struct {
	EVP_PKEY *key;
	EVP_PKEY_CTX *ctx;
} pk_tl[2];

static void
crypto_pk_drop(int op)
{
	EVP_PKEY_CTX_free(pk_tl[op].ctx);
	pk_tl[op].ctx = NULL;
	pk_tl[op].key = NULL;
}

static EVP_PKEY_CTX *
crypto_pk_ctx(const struct crypto_key *k, int op)
{
	EVP_PKEY_CTX *ctx;

	if (pk_tl[op].key == k->pkey && pk_tl[op].ctx != NULL)
		return pk_tl[op].ctx;
	crypto_pk_drop(op);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (ctx == NULL ||
	    (op == PK_DECRYPT ? EVP_PKEY_decrypt_init(ctx)
			      : EVP_PKEY_sign_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	pk_tl[op].ctx = ctx;
	pk_tl[op].key = k->pkey;
	return ctx;
}

size_t
crypto_key_size(const struct crypto_key *k)
{
	return k->size;
}

static EVP_PKEY_CTX *
crypto_pkey_ctx(const struct crypto_key *k)
{
	return EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
}

int
crypto_rsa_decrypt(const struct crypto_key *priv, const uint8_t *in,
		   size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t tmp[CRYPTO_RSA_MAX_BYTES];
	size_t n = sizeof(tmp), size;
	int r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (priv == NULL || in == NULL || out == NULL || out_len == NULL)
		return CINDER_ERR_INVAL;
	size = crypto_key_size(priv);
	if (size == 0 || size > sizeof(tmp) || in_len != size ||
	    !crypto_key_is_private(priv))
		return CINDER_ERR_INVAL;
	/* OpenSSL wants room for a whole modulus; decrypt into tmp first. */
	if ((ctx = crypto_pk_ctx(priv, PK_DECRYPT)) == NULL ||
	    EVP_PKEY_decrypt(ctx, tmp, &n, in, in_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not decrypt RSA block");
		crypto_pk_drop(PK_DECRYPT);
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if (n > cap) {
		r = CINDER_ERR_TOO_BIG;
		goto out;
	}
	memcpy(out, tmp, n);
	*out_len = n;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, cap);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return r;
}

int
crypto_rsa_encrypt(const struct crypto_key *pub, const uint8_t *in,
		   size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = cap, size;
	int r = CINDER_ERR_INTERNAL;

	if (out_len != NULL)
		*out_len = 0;
	if (pub == NULL || (in == NULL && in_len != 0) || out == NULL ||
	    out_len == NULL)
		return CINDER_ERR_INVAL;
	size = crypto_key_size(pub);
	if (size < 11 || in_len > size - 11 || cap < size)
		return CINDER_ERR_INVAL;
	if ((ctx = crypto_pkey_ctx(pub)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, out, &n, in_len ? in : out, in_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not encrypt RSA block");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	*out_len = n;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
crypto_rsa_sign_raw(const struct crypto_key *priv, const uint8_t *msg,
		    size_t msg_len, uint8_t *sig, size_t cap, size_t *sig_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = cap, size;

	if (sig_len != NULL)
		*sig_len = 0;
	if (priv == NULL || msg == NULL || sig == NULL || sig_len == NULL)
		return CINDER_ERR_INVAL;
	size = crypto_key_size(priv);
	if (size < 11 || msg_len == 0 || msg_len > size - 11 || cap < size ||
	    !crypto_key_is_private(priv))
		return CINDER_ERR_INVAL;
	/* No signature digest set: OpenSSL pads msg as-is (type 1). */
	if ((ctx = crypto_pk_ctx(priv, PK_SIGN)) == NULL ||
	    EVP_PKEY_sign(ctx, sig, &n, msg, msg_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not sign");
		crypto_pk_drop(PK_SIGN);
		return CINDER_ERR_CRYPTO;
	}
	*sig_len = n;
	return 0;
}

int
crypto_rsa_verify_raw(const struct crypto_key *pub, const uint8_t *msg,
		      size_t msg_len, const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	int r = CINDER_ERR_INTERNAL;

	if (pub == NULL || msg == NULL || msg_len == 0 || sig == NULL)
		return CINDER_ERR_INVAL;
	if (sig_len != crypto_key_size(pub))
		return CINDER_ERR_CRYPTO;
	if ((ctx = crypto_pkey_ctx(pub)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "could not set up verify");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	if (EVP_PKEY_verify(ctx, sig, sig_len, msg, msg_len) != 1) {
		crypto_drain(LOG_LEVEL_DEBUG, "bad signature");
		r = CINDER_ERR_CRYPTO;
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/*
 * Hashes, MACs, randomness, memory
 */

/* HMAC contexts per thread and digest ("SHA1", "SHA256"). */
static __thread struct {
	const char *md; /* the caller's digest name (a literal) */
	EVP_MAC_CTX *ctx;
} hmac_tl[2];

static void
crypto_hmac_drop(const char *md)
{
	size_t i;

	for (i = 0; i < sizeof(hmac_tl) / sizeof(hmac_tl[0]); i++) {
		if (md == NULL ||
		    (hmac_tl[i].md != NULL && strcmp(hmac_tl[i].md, md) == 0)) {
			EVP_MAC_CTX_free(hmac_tl[i].ctx);
			hmac_tl[i].ctx = NULL;
			hmac_tl[i].md = NULL;
		}
	}
}

static EVP_MAC_CTX *
crypto_hmac_ctx(const char *md)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	size_t i, slot = SIZE_MAX;

	for (i = 0; i < sizeof(hmac_tl) / sizeof(hmac_tl[0]); i++) {
		if (hmac_tl[i].md != NULL && strcmp(hmac_tl[i].md, md) == 0)
			return hmac_tl[i].ctx;
		if (hmac_tl[i].md == NULL && slot == SIZE_MAX)
			slot = i;
	}
	if (slot == SIZE_MAX ||
	    (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context keeps its own reference */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)md, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	hmac_tl[slot].md = md;
	hmac_tl[slot].ctx = ctx;
	return ctx;
}

static int
crypto_hmac(const char *md, const void *key, size_t key_len, const void *msg,
	    size_t msg_len, uint8_t *out, size_t out_size)
{
	static const uint8_t empty[1];
	EVP_MAC_CTX *ctx;
	size_t n = 0;

	if (out == NULL || (msg == NULL && msg_len != 0) ||
	    (key == NULL && key_len != 0))
		return CINDER_ERR_INVAL;
	/* The handshake's HMAC-SHA1 (and webhook signatures) reuse the
	   thread's context: EVP_Q_mac fetches HMAC and the digest per
	   call. An empty key keeps the one-shot way. */
	if (key_len > 0 && (ctx = crypto_hmac_ctx(md)) != NULL) {
		if (EVP_MAC_init(ctx, key, key_len, NULL) == 1 &&
		    EVP_MAC_update(ctx, msg ? msg : empty, msg_len) == 1 &&
		    EVP_MAC_final(ctx, out, &n, out_size) == 1 && n == out_size)
			return 0;
		crypto_hmac_drop(md);
		OPENSSL_cleanse(out, out_size);
		crypto_drain(LOG_LEVEL_ERR, "could not compute HMAC");
		return CINDER_ERR_CRYPTO;
	}
	if (EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, key ? key : empty, key_len,
		      msg ? msg : empty, msg_len, out, out_size, &n) == NULL ||
	    n != out_size) {
		crypto_drain(LOG_LEVEL_ERR, "could not compute HMAC");
		return CINDER_ERR_CRYPTO;
	}
	return 0;
}

int
crypto_hmac_sha1(const void *key, size_t key_len, const void *msg,
		 size_t msg_len, uint8_t out[CRYPTO_HMAC_SHA1_LEN])
{
	return crypto_hmac("SHA1", key, key_len, msg, msg_len, out,
			   CRYPTO_HMAC_SHA1_LEN);
}

int
crypto_hmac_sha256(const void *key, size_t key_len, const void *msg,
		   size_t msg_len, uint8_t out[CRYPTO_SHA256_LEN])
{
	return crypto_hmac("SHA256", key, key_len, msg, msg_len, out,
			   CRYPTO_SHA256_LEN);
}

/*
 * SHA-256 hashes every REST request's token: the digest is fetched once
 * and each thread keeps one context, instead of EVP_Digest's implicit
 * fetch and context allocation per call (perf on bench/run B4).
 */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched; /* set once, never freed */
static __thread EVP_MD_CTX *sha256_tl_ctx;

static void
crypto_sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

static void
crypto_sha256_ctx_drop(void)
{
	EVP_MD_CTX_free(sha256_tl_ctx);
	sha256_tl_ctx = NULL;
}

int
crypto_sha256(const void *msg, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	static const uint8_t empty[1];
	const EVP_MD *md;
	unsigned int n = 0;

	if (out == NULL || (msg == NULL && len != 0))
		return CINDER_ERR_INVAL;
	pthread_once(&sha256_once, crypto_sha256_fetch);
	md = sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
	if (sha256_tl_ctx == NULL)
		sha256_tl_ctx = EVP_MD_CTX_new();
	if (sha256_tl_ctx == NULL ||
	    EVP_DigestInit_ex2(sha256_tl_ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(sha256_tl_ctx, msg ? msg : empty, len) != 1 ||
	    EVP_DigestFinal_ex(sha256_tl_ctx, out, &n) != 1 ||
	    n != CRYPTO_SHA256_LEN) {
		crypto_drain(LOG_LEVEL_ERR, "could not compute SHA-256");
		crypto_sha256_ctx_drop();
		return CINDER_ERR_CRYPTO;
	}
	return 0;
}

int
crypto_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t n;

	if (buf == NULL && len != 0)
		return CINDER_ERR_INVAL;
	while (len > 0) {
		n = len > INT_MAX ? INT_MAX : len;
		if (RAND_bytes(p, (int)n) != 1) {
			crypto_drain(LOG_LEVEL_ERR,
				     "could not get random bytes");
			return CINDER_ERR_CRYPTO;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* crypto_random_public()'s bytes: buf[off..CRYPTO_RANDBUF) not yet
   handed out (off == CRYPTO_RANDBUF: empty, as before the first fill) */
static __thread struct {
	uint8_t buf[CRYPTO_RANDBUF];
	size_t off;
} randbuf_tl = {.off = CRYPTO_RANDBUF};
static pthread_once_t randbuf_once = PTHREAD_ONCE_INIT;

static void
randbuf_drop(void)
{
	crypto_wipe(randbuf_tl.buf, sizeof(randbuf_tl.buf));
	randbuf_tl.off = CRYPTO_RANDBUF;
}

/* In the child of fork(), only the forking thread lives on, with a copy
   of its buffer: empty it, or the child would repeat the parent's bytes. */
static void
randbuf_atfork_child(void)
{
	randbuf_drop();
}

static void
randbuf_register(void)
{
	(void)pthread_atfork(NULL, NULL, randbuf_atfork_child);
}

int
crypto_random_public(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t n;

	if (buf == NULL && len != 0)
		return CINDER_ERR_INVAL;
	if (len > CRYPTO_RANDBUF / 4)
		return crypto_random(buf, len);
	while (len > 0) {
		if (randbuf_tl.off == CRYPTO_RANDBUF) {
			(void)pthread_once(&randbuf_once, randbuf_register);
			if (crypto_random(randbuf_tl.buf,
					  sizeof(randbuf_tl.buf)) != 0)
				return CINDER_ERR_CRYPTO;
			randbuf_tl.off = 0;
		}
		n = CRYPTO_RANDBUF - randbuf_tl.off;
		if (n > len)
			n = len;
		memcpy(p, randbuf_tl.buf + randbuf_tl.off, n);
		crypto_wipe(randbuf_tl.buf + randbuf_tl.off, n);
		randbuf_tl.off += n;
		p += n;
		len -= n;
	}
	return 0;
}

bool
crypto_mem_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void
crypto_wipe(void *p, size_t n)
{
	if (p != NULL)
		OPENSSL_cleanse(p, n);
}

/* The per-thread contexts of all three crypto files (crypto_int.h). */
void
crypto_thread_cleanup(void)
{
	crypto_aes_ctx_drop(AES_TL_SEAL);
	crypto_aes_ctx_drop(AES_TL_OPEN);
	crypto_aes_ctx_drop(AES_TL_OPEN_ECB);
	crypto_sha256_ctx_drop();
	crypto_pk_drop(PK_DECRYPT);
	crypto_pk_drop(PK_SIGN);
	crypto_rsa_import_drop();
	crypto_hmac_drop(NULL);
	randbuf_drop();
}

/*
 * Passwords
 */

#define PW_SALT_LEN 16
#define PW_HASH_LEN 32
#define PW_PREFIX "$pbkdf2-sha256$"

static int
pbkdf2(const char *pw, const uint8_t *salt, size_t salt_len, unsigned iter,
       uint8_t out[PW_HASH_LEN])
{
	if (PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len,
			      (int)iter, EVP_sha256(), PW_HASH_LEN, out) != 1) {
		crypto_drain(LOG_LEVEL_ERR, "pbkdf2");
		return CINDER_ERR_CRYPTO;
	}
	return 0;
}

int
crypto_password_hash(const char *password, char **out)
{
	uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
	char salt64[4 * ((PW_SALT_LEN + 2) / 3) + 1];
	char hash64[4 * ((PW_HASH_LEN + 2) / 3) + 1];
	int r;

	*out = NULL;
	if (password == NULL || strlen(password) > CRYPTO_PASSWORD_MAX)
		return CINDER_ERR_INVAL;
	if ((r = crypto_random(salt, sizeof(salt))) != 0)
		return r;
	if ((r = pbkdf2(password, salt, sizeof(salt), CRYPTO_PBKDF2_ITER,
			hash)) != 0)
		return r;
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash));
	crypto_wipe(hash, sizeof(hash));
	*out = xasprintf(PW_PREFIX "%u$%s$%s", CRYPTO_PBKDF2_ITER, salt64,
			 hash64);
	return 0;
}

int
crypto_password_verify(const char *password, const char *stored)
{
	uint8_t salt[64], want[64], got[PW_HASH_LEN];
	const char *p, *d1, *d2;
	char *end;
	unsigned long iter;
	int n, r;

	if (password == NULL || stored == NULL ||
	    strlen(password) > CRYPTO_PASSWORD_MAX ||
	    strncmp(stored, PW_PREFIX, strlen(PW_PREFIX)) != 0)
		return CINDER_ERR_INVAL;
	p = stored + strlen(PW_PREFIX);
	/* strtoul would accept spaces, signs and "-1" (as ULONG_MAX). */
	if (*p < '1' || *p > '9')
		return CINDER_ERR_INVAL;
	iter = strtoul(p, &end, 10);
	if (end == p || *end != '$' || iter < 1000 || iter > 10000000)
		return CINDER_ERR_INVAL;
	d1 = end + 1;
	if ((d2 = strchr(d1, '$')) == NULL || d2 - d1 != 24 ||
	    strlen(d2 + 1) != 44)
		return CINDER_ERR_INVAL;
	/* 24 base64 chars = 18 bytes with 2 of padding; 44 = 33 with 1. */
	n = EVP_DecodeBlock(salt, (const unsigned char *)d1, 24);
	if (n != 18)
		return CINDER_ERR_INVAL;
	n = EVP_DecodeBlock(want, (const unsigned char *)(d2 + 1), 44);
	if (n != 33)
		return CINDER_ERR_INVAL;
	if ((r = pbkdf2(password, salt, PW_SALT_LEN, (unsigned)iter, got)) != 0)
		return r;
	r = CRYPTO_memcmp(got, want, PW_HASH_LEN) == 0 ? 0 : CINDER_ERR_AUTH;
	crypto_wipe(got, sizeof(got));
	return r;
}
