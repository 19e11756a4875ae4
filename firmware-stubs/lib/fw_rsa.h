/* SPDX-License-Identifier: MIT */
/*
 * RSA for the device side of the Particle handshake (protocol.md §2):
 *  - PKCS#1 v1.5 type-2 encryption to the server's 2048-bit key (step 2),
 *  - PKCS#1 v1.5 type-2 decryption with the device's 1024-bit key (step 3),
 *  - raw PKCS#1 v1.5 type-1 signature check, no DigestInfo (step 3),
 *  - the key formats: PKCS#1 RSAPrivateKey DER, the server's 294-byte
 *    SubjectPublicKeyInfo (modulus at offset 33), the device's 162-byte
 *    SubjectPublicKeyInfo.
 * Pure; randomness comes from the caller's callback. Keys up to 2048 bits.
 */
#ifndef FW_RSA_H
#define FW_RSA_H

#include <stddef.h>
#include <stdint.h>

#include "fw_bn.h"

#define FW_RSA_SERVER_SPKI_LEN 294 /* DER SubjectPublicKeyInfo, RSA-2048 */
#define FW_RSA_DEVICE_SPKI_LEN 162 /* DER SubjectPublicKeyInfo, RSA-1024 */
#define FW_RSA_SERVER_LEN 256	   /* server modulus, bytes */
#define FW_RSA_DEVICE_LEN 128	   /* device modulus, bytes */

/**
 * Fill buf with len random bytes.
 * @return 0, or a negative FW_ERR_* code
 */
typedef int (*fw_rsa_random_cb)(void *ctx, uint8_t *buf, size_t len);

struct fw_rsa_pub {
	struct fw_bn n; /* modulus */
	struct fw_bn e; /* public exponent */
	size_t len;	/* modulus size in bytes */
};

struct fw_rsa_priv {
	struct fw_bn n; /* modulus */
	struct fw_bn e; /* public exponent */
	struct fw_bn d; /* private exponent (secret) */
	size_t len;	/* modulus size in bytes */
};

/**
 * Make a public key from a big-endian modulus and an exponent.
 * @return 0, FW_ERR_TOO_BIG (> 2048 bits) or FW_ERR_INVAL (even or tiny n)
 */
int fw_rsa_pub_init(struct fw_rsa_pub *k, const uint8_t *n, size_t nlen,
		    uint32_t e);

/**
 * Load the server key from its 294-byte DER SubjectPublicKeyInfo the way a
 * device does (modulus at offset 33, e = 65537), but strictly: the 33-byte
 * header and the 5-byte exponent trailer must be the standard encoding.
 * @param der the DER bytes (borrowed)
 * @param len must be 294
 * @return 0, or FW_ERR_MALFORMED
 */
int fw_rsa_pub_decode_server(struct fw_rsa_pub *k, const uint8_t *der,
			     size_t len);

/**
 * Parse a DER PKCS#1 RSAPrivateKey (version 0, n, e, d, p, q, dp, dq,
 * qinv). Only n, e and d are kept; the rest is checked for shape.
 * @param k result (caller storage; holds the secret exponent, wipe with
 *          fw_rsa_priv_cleanup)
 * @param der the DER bytes (borrowed)
 * @param len number of bytes
 * @return 0, FW_ERR_MALFORMED, or FW_ERR_TOO_BIG for keys over 2048 bits
 */
int fw_rsa_priv_decode(struct fw_rsa_priv *k, const uint8_t *der, size_t len);

/**
 * Wipe a private key.
 */
void fw_rsa_priv_cleanup(struct fw_rsa_priv *k);

/**
 * Build the device's 162-byte DER SubjectPublicKeyInfo from its private
 * key (29-byte header, the 128-byte modulus, 02 03 01 00 01).
 * @param out 162 bytes (caller storage)
 * @return 0, or FW_ERR_INVAL unless the key is 1024 bits with e = 65537
 */
int fw_rsa_priv_encode_pub(const struct fw_rsa_priv *k,
			   uint8_t out[FW_RSA_DEVICE_SPKI_LEN]);

/**
 * RSAES-PKCS1-v1_5 encryption (type-2 padding with non-zero random bytes).
 * @param msg plaintext (borrowed), at most k->len - 11 bytes
 * @param out ciphertext (caller storage)
 * @param outlen must be k->len
 * @param rnd random source; called until every padding byte is non-zero
 * @return 0, FW_ERR_TOO_BIG, FW_ERR_INVAL, or the random source's error
 */
int fw_rsa_encrypt(const struct fw_rsa_pub *k, const uint8_t *msg, size_t mlen,
		   uint8_t *out, size_t outlen, fw_rsa_random_cb rnd,
		   void *rctx);

/**
 * RSAES-PKCS1-v1_5 decryption.
 * @param in ciphertext (borrowed), exactly k->len bytes
 * @param out plaintext (caller storage)
 * @param cap size of out
 * @param outlen set to the plaintext length
 * @return 0, FW_ERR_CRYPTO for a bad ciphertext or padding,
 *         FW_ERR_TOO_BIG if out is too small, FW_ERR_INVAL
 */
int fw_rsa_decrypt(const struct fw_rsa_priv *k, const uint8_t *in, size_t inlen,
		   uint8_t *out, size_t cap, size_t *outlen);

/**
 * Check a raw PKCS#1 v1.5 type-1 signature over msg (no DigestInfo: the
 * padded block ends in msg itself, as OpenSSL RSA_private_encrypt with
 * RSA_PKCS1_PADDING makes it).
 * @param sig signature (borrowed), exactly k->len bytes
 * @param msg expected payload (borrowed)
 * @return 0 if it verifies, FW_ERR_CRYPTO otherwise, FW_ERR_INVAL
 */
int fw_rsa_verify(const struct fw_rsa_pub *k, const uint8_t *sig, size_t siglen,
		  const uint8_t *msg, size_t mlen);

#endif
