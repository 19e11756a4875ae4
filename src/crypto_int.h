/* SPDX-License-Identifier: MIT */
/*
 * Internal to the crypto module: what crypto.c (OpenSSL errors, RSA, HMAC,
 * SHA-256, RNG, wiping, passwords, per-thread cleanup), crypto_key.c (keys
 * and their encodings) and crypto_channel.c (the AES channel and the
 * handshake blocks) share. Include it after the OPENSSL_API_COMPAT block
 * of those files. Nothing outside those three files includes it.
 */
#ifndef CINDER_CRYPTO_INT_H
#define CINDER_CRYPTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "log.h"

struct crypto_key {
	EVP_PKEY *pkey; /* owned; RSA, private or public only */
	bool priv;	/* has the private half (found once, at wrap) */
	size_t size;	/* modulus bytes */
};

/*
 * Empty the thread's OpenSSL error queue, logging each entry (crypto.c).
 * Peer input failures log at debug so a noisy device cannot flood the log.
 */
void crypto_drain(enum log_level level, const char *what);

/** @return k's modulus size in bytes (crypto.c) */
size_t crypto_key_size(const struct crypto_key *k);

/* Per-thread contexts, freed by crypto_thread_cleanup() (crypto.c). */
enum {			/* crypto_channel.c's AES contexts */
       AES_TL_SEAL,	/* ECB encryption, keyed per key, CBC by hand */
       AES_TL_OPEN,	/* CBC decryption (in place), keyed per message */
       AES_TL_OPEN_ECB, /* ECB decryption, keyed per message, CBC by hand */
};
void crypto_aes_ctx_drop(int which);
void crypto_rsa_import_drop(void); /* crypto_key.c: SPKI import context */

/** The DER of a "PUBLIC KEY" PEM in the form OpenSSL writes (crypto_key.c).
 * @return its length in out (at most cap), or 0: not that form */
size_t crypto_spki_pem_body(const char *pem, size_t len, uint8_t *out,
			    size_t cap);

#endif /* CINDER_CRYPTO_INT_H */
