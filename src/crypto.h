/* SPDX-License-Identifier: MIT */
/*
 * Device-protocol cryptography (protocol.md §1.3, §1.4, §2): RSA keys, the
 * handshake blocks, the AES-128-CBC session channel with Particle's IV
 * chaining, HMAC, hashes, randomness and wiping. crypto.c, crypto_key.c
 * and crypto_channel.c are the only files of the daemon that include
 * OpenSSL; everything here takes and returns plain byte arrays. No I/O
 * except the key-file helpers, no libevent. Thread-safe: a struct
 * crypto_key may be used by many threads at once as long as nobody frees
 * it; a struct crypto_channel belongs to one thread.
 */
#ifndef CINDER_CRYPTO_H
#define CINDER_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_NONCE_LEN 40	      /* step 1: server nonce */
#define CRYPTO_DEVICE_ID_LEN 12	      /* raw device id (24 hex chars) */
#define CRYPTO_SESSION_LEN 40	      /* step 3: key 16 + iv 16 + salt 8 */
#define CRYPTO_STEP2_LEN 256	      /* step 2 block, RSA-2048 ciphertext */
#define CRYPTO_STEP2_MIN_PLAIN 52     /* nonce + device id */
#define CRYPTO_STEP2_MAX_PLAIN 245    /* PKCS#1 v1.5 limit for RSA-2048 */
#define CRYPTO_STEP2_KEY_MAX 193      /* device DER that fits in step 2 */
#define CRYPTO_STEP3_LEN 384	      /* step 3 block: 128 ct + 256 sig */
#define CRYPTO_STEP3_CT_LEN 128	      /* RSA-1024 ciphertext of session */
#define CRYPTO_SERVER_PUB_DER_LEN 294 /* SPKI of the RSA-2048 server key */
#define CRYPTO_DEVICE_PUB_DER_LEN 162 /* SPKI of an RSA-1024 device key */
#define CRYPTO_PUB_DER_MAX 512	      /* any accepted public key, DER */
#define CRYPTO_HMAC_SHA1_LEN 20
#define CRYPTO_SHA256_LEN 32
#define CRYPTO_AES_KEY_LEN 16
#define CRYPTO_AES_BLOCK 16
#define CRYPTO_RSA_MAX_BYTES 256 /* largest modulus handled (2048) */
#define CRYPTO_KEYFILE_MAX 65536 /* largest key file read */

/** An RSA key, private or public only. Opaque; wraps an EVP_PKEY. */
struct crypto_key;

/*
 * Keys
 */

/**
 * Decode an RSA private key from PEM ("RSA PRIVATE KEY" PKCS#1 or
 * "PRIVATE KEY" PKCS#8, unencrypted) or from DER (PKCS#1 or PKCS#8).
 * No size check; see crypto_server_key_check().
 * @param buf, len the encoded key; borrowed until return
 * @param out receives the key; caller frees with crypto_key_free()
 * @return 0, CINDER_ERR_INVAL (bad arguments) or CINDER_ERR_CRYPTO
 */
int crypto_privkey_parse(const void *buf, size_t len, struct crypto_key **out);

/**
 * Read an RSA private key file (PEM or DER, as crypto_privkey_parse()).
 * The file buffer is wiped before it is freed.
 * @param path file name; borrowed
 * @param out receives the key; caller frees with crypto_key_free()
 * @return 0, CINDER_ERR_IO (cannot read), CINDER_ERR_TOO_BIG (over
 *	CRYPTO_KEYFILE_MAX) or CINDER_ERR_CRYPTO (cannot decode)
 */
int crypto_privkey_load(const char *path, struct crypto_key **out);

/**
 * Load the server key and check it with crypto_server_key_check().
 * @param path PEM file (PKCS#1 or PKCS#8); borrowed
 * @param out receives the key; caller frees with crypto_key_free()
 * @return 0, CINDER_ERR_IO, CINDER_ERR_TOO_BIG, CINDER_ERR_CRYPTO (not an
 *	RSA private key) or CINDER_ERR_INVAL (wrong size or exponent)
 */
int crypto_server_key_load(const char *path, struct crypto_key **out);

/**
 * Check that a key can be a server key: RSA, private, exactly 2048 bits,
 * e = 65537, and its SubjectPublicKeyInfo is the 294-byte layout with the
 * modulus at offset 33 that devices read (protocol.md §2.1).
 * @return 0 or CINDER_ERR_INVAL
 */
int crypto_server_key_check(const struct crypto_key *k);

/**
 * Create a new RSA-2048 (e = 65537) server key and write it out. Used by
 * `cinderd keygen`. The private key is written as PKCS#1 PEM with mode
 * 0600. No existing file is ever overwritten: if any of the paths exists,
 * nothing is written and CINDER_ERR_CONFLICT is returned.
 * @param key_pem_path private key PEM (required)
 * @param pub_der_path public key as 294-byte DER SPKI, or NULL for none
 * @param pub_pem_path public key as "PUBLIC KEY" PEM, or NULL for none
 * @return 0, CINDER_ERR_INVAL, CINDER_ERR_CONFLICT, CINDER_ERR_IO or
 *	CINDER_ERR_CRYPTO; on failure the files this call created are removed
 */
int crypto_server_key_generate(const char *key_pem_path,
			       const char *pub_der_path,
			       const char *pub_pem_path);

/**
 * Generate an RSA key in memory (tests, the simulator).
 * @param bits 1024..4096
 * @param out receives the key; caller frees with crypto_key_free()
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_CRYPTO
 */
int crypto_key_generate(unsigned bits, struct crypto_key **out);

/**
 * Decode an RSA public key: PEM "PUBLIC KEY" (SPKI) or "RSA PUBLIC KEY"
 * (PKCS#1), or the same as DER. This is the parser for device-supplied
 * keys, so it is safe on arbitrary input. Accepts 1024..2048-bit keys
 * with e = 65537 (devices hard-code that exponent).
 * @param buf, len encoded key; borrowed until return
 * @param out receives a public-only key; caller frees with crypto_key_free()
 * @return 0, CINDER_ERR_INVAL (bad arguments, wrong size or exponent),
 *	CINDER_ERR_TOO_BIG (len over CRYPTO_KEYFILE_MAX) or CINDER_ERR_CRYPTO
 */
int crypto_pubkey_parse(const void *buf, size_t len, struct crypto_key **out);

/**
 * Read a public key file (PEM or DER, as crypto_pubkey_parse()).
 * @return as crypto_pubkey_parse(), plus CINDER_ERR_IO
 */
int crypto_pubkey_load(const char *path, struct crypto_key **out);

/**
 * Another handle on the same key (reference counted, thread-safe): hand
 * one to a worker job so that the loop may free its own meanwhile.
 * @return a new handle for crypto_key_free(), or NULL when k is NULL
 */
struct crypto_key *crypto_key_dup(const struct crypto_key *k);

/** Free a key; the private parts are wiped by OpenSSL. NULL is a no-op. */
void crypto_key_free(struct crypto_key *k);

/** @return the modulus size in bits, or 0 for NULL */
unsigned crypto_key_bits(const struct crypto_key *k);

/** @return true if k holds a private key */
bool crypto_key_is_private(const struct crypto_key *k);

/**
 * Compare the public halves of two keys (a private key compares equal to
 * its own public key).
 * @return true when both are non-NULL and have the same public key
 */
bool crypto_key_public_eq(const struct crypto_key *a,
			  const struct crypto_key *b);

/**
 * Encode the public half as DER SubjectPublicKeyInfo (294 bytes for the
 * server key, 162 for a device key).
 * @param der, cap caller's buffer (CRYPTO_PUB_DER_MAX is always enough)
 * @param len receives the length written
 * @return 0, CINDER_ERR_TOO_BIG (cap too small) or CINDER_ERR_CRYPTO
 */
int crypto_key_public_der(const struct crypto_key *k, uint8_t *der, size_t cap,
			  size_t *len);

/**
 * Encode the public half as PEM "PUBLIC KEY".
 * @param pem receives a NUL-terminated string; caller frees with free()
 * @return 0 or CINDER_ERR_CRYPTO
 */
int crypto_key_public_pem(const struct crypto_key *k, char **pem);

/**
 * Convert a public key from DER (SPKI or PKCS#1) to PEM "PUBLIC KEY",
 * with the same checks as crypto_pubkey_parse(). Used to store the key an
 * unknown device supplied in step 2.
 * @param pem receives a NUL-terminated string; caller frees with free()
 * @return as crypto_pubkey_parse()
 */
int crypto_pubkey_der_to_pem(const uint8_t *der, size_t len, char **pem);

/**
 * Convert a public key from PEM (or DER) to DER SPKI, with the same checks
 * as crypto_pubkey_parse().
 * @param der, cap, len as crypto_key_public_der()
 * @return as crypto_pubkey_parse(), plus CINDER_ERR_TOO_BIG
 */
int crypto_pubkey_pem_to_der(const char *pem, size_t pem_len, uint8_t *der,
			     size_t cap, size_t *len);

/*
 * RSA primitives (PKCS#1 v1.5)
 */

/**
 * RSAES-PKCS1-v1_5 decrypt with a private key.
 * @param in, in_len ciphertext; in_len must equal the modulus size
 * @param out, cap output buffer; cap ≥ modulus size - 11 is always enough
 * @param out_len receives the plaintext length
 * @return 0, CINDER_ERR_INVAL (wrong sizes, not a private key) or
 *	CINDER_ERR_CRYPTO (bad padding). The output is wiped on failure.
 */
int crypto_rsa_decrypt(const struct crypto_key *priv, const uint8_t *in,
		       size_t in_len, uint8_t *out, size_t cap,
		       size_t *out_len);

/**
 * RSAES-PKCS1-v1_5 encrypt to a public key (random type-2 padding).
 * @param in, in_len plaintext; at most modulus size - 11 bytes
 * @param out, cap output buffer; must hold the modulus size
 * @param out_len receives the ciphertext length (= modulus size)
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_CRYPTO
 */
int crypto_rsa_encrypt(const struct crypto_key *pub, const uint8_t *in,
		       size_t in_len, uint8_t *out, size_t cap,
		       size_t *out_len);

/**
 * Raw PKCS#1 v1.5 type-1 signature of msg without a DigestInfo wrapper
 * (the equivalent of RSA_private_encrypt with RSA_PKCS1_PADDING).
 * @param msg, msg_len data to sign, at most modulus size - 11 bytes
 * @param sig, cap output; must hold the modulus size
 * @param sig_len receives the signature length (= modulus size)
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_CRYPTO
 */
int crypto_rsa_sign_raw(const struct crypto_key *priv, const uint8_t *msg,
			size_t msg_len, uint8_t *sig, size_t cap,
			size_t *sig_len);

/**
 * Verify a signature made by crypto_rsa_sign_raw().
 * @return 0 if sig is a valid signature of exactly msg, CINDER_ERR_CRYPTO
 *	if not, CINDER_ERR_INVAL on bad arguments
 */
int crypto_rsa_verify_raw(const struct crypto_key *pub, const uint8_t *msg,
			  size_t msg_len, const uint8_t *sig, size_t sig_len);

/*
 * Hashes, MACs, randomness, memory
 */

/**
 * HMAC-SHA1.
 * @param out receives 20 bytes
 * @return 0 or CINDER_ERR_CRYPTO
 */
int crypto_hmac_sha1(const void *key, size_t key_len, const void *msg,
		     size_t msg_len, uint8_t out[CRYPTO_HMAC_SHA1_LEN]);

/**
 * HMAC-SHA256 (webhook signatures).
 * @param out receives 32 bytes
 * @return 0 or CINDER_ERR_CRYPTO
 */
int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg,
		       size_t msg_len, uint8_t out[CRYPTO_SHA256_LEN]);

/**
 * SHA-256 (token storage, firmware image checks).
 * @param out receives 32 bytes
 * @return 0 or CINDER_ERR_CRYPTO
 */
int crypto_sha256(const void *msg, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);

/**
 * Fill buf with cryptographically strong random bytes.
 * @return 0 or CINDER_ERR_CRYPTO (the RNG could not be seeded)
 */
int crypto_random(void *buf, size_t len);

/** Bytes crypto_random_public() draws from OpenSSL at a time. */
#define CRYPTO_RANDBUF 1024

/**
 * Random bytes for values that go out in the clear (the handshake's
 * nonce, a session's first message id), not for secrets: served from a
 * per-thread buffer that one RAND_bytes call refills CRYPTO_RANDBUF bytes
 * at a time (OpenSSL 3.0 makes a getpid() fork check per RAND_bytes
 * call, a syscall that was two per handshake on the loop). Every byte is
 * handed out once and wiped from the buffer. A child of fork() starts
 * with an empty buffer in the forking thread (a pthread_atfork handler),
 * so parent and child never hand out the same bytes; cinderd does not
 * fork after start-up anyway. Requests over CRYPTO_RANDBUF / 4 bytes go
 * to crypto_random() directly.
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_CRYPTO
 */
int crypto_random_public(void *buf, size_t len);

/**
 * Compare two buffers in time independent of their contents.
 * @return true if the n bytes are equal
 */
bool crypto_mem_eq(const void *a, const void *b, size_t n);

/** Overwrite n bytes of p with zeros in a way the compiler keeps. */
void crypto_wipe(void *p, size_t n);

/*
 * Session channel: AES-128-CBC, PKCS#7, per-direction IV chaining (§1.4)
 */

/** Session cipher state of one side of a connection. Embedded object. */
struct crypto_channel {
	uint8_t key[CRYPTO_AES_KEY_LEN];   /* AES-128 key, session bytes 0-15 */
	uint8_t send_iv[CRYPTO_AES_BLOCK]; /* IV for the next seal */
	uint8_t recv_iv[CRYPTO_AES_BLOCK]; /* IV for the next open */
	uint8_t salt[8];		   /* session bytes 32-39, unused */
	/* crypto_channel_busy_cache(): a decryption context keyed once,
	   made when the channel opens many messages a second */
	bool may_cache;	 /* allowed for this channel */
	uint16_t rx_n;	 /* messages opened in second rx_sec */
	uint32_t rx_sec; /* coarse monotonic second of rx_n */
	void *rx_ecb;	 /* AES-128-ECB context with key, or NULL */
};

/**
 * Set up a channel from the 40 session bytes: key = 0..15, both IVs =
 * 16..31, salt = 32..39.
 * @param session borrowed; the caller should wipe its copy afterwards
 */
void crypto_channel_init(struct crypto_channel *ch,
			 const uint8_t session[CRYPTO_SESSION_LEN]);

/**
 * Let a channel that opens many messages a second (CRYPTO_BUSY_PER_S)
 * keep a decryption context keyed once (about 0.7 KB, freed by
 * crypto_channel_cleanup()) instead of keying the thread's per message:
 * OpenSSL's per-message setup cost more than the decryption on bench/run
 * B3. A channel with a cache must not be copied; cleanup is then required.
 */
void crypto_channel_busy_cache(struct crypto_channel *ch);

/** Messages a second from which a busy_cache channel keeps a context. */
#define CRYPTO_BUSY_PER_S 16

/** Wipe a channel (and free its cached context). */
void crypto_channel_cleanup(struct crypto_channel *ch);

/**
 * Free the calling thread's cipher contexts (crypto_channel_seal/open
 * keep one per thread and direction). Call before a thread that used a
 * channel exits; they are made again on next use.
 */
void crypto_thread_cleanup(void);

/** @return the ciphertext size for a plaintext of len bytes (len/16*16+16) */
size_t crypto_channel_sealed_len(size_t len);

/**
 * Encrypt one message with the send IV, then set the send IV to the first
 * 16 bytes of the ciphertext. in and out must not overlap.
 * @param in, len plaintext (may be empty)
 * @param out, cap output; cap ≥ crypto_channel_sealed_len(len)
 * @param out_len receives the ciphertext length
 * @return 0, CINDER_ERR_TOO_BIG (cap too small) or CINDER_ERR_CRYPTO; on
 *	failure the IV is unchanged
 */
int crypto_channel_seal(struct crypto_channel *ch, const uint8_t *in,
			size_t len, uint8_t *out, size_t cap, size_t *out_len);

/**
 * Decrypt one message with the receive IV, check the PKCS#7 padding
 * strictly (every pad byte), then set the receive IV to the first 16 bytes
 * of the ciphertext. in and out must not overlap.
 * @param in, len ciphertext; len must be a positive multiple of 16
 * @param out, cap output; cap ≥ len is always enough (plaintext < len)
 * @param out_len receives the plaintext length
 * @return 0, CINDER_ERR_INVAL (len not a multiple of 16 or 0),
 *	CINDER_ERR_TOO_BIG (cap < len) or CINDER_ERR_CRYPTO (bad padding).
 *	On failure the IV is unchanged and out is wiped; the caller must
 *	close the connection, the stream cannot recover.
 */
int crypto_channel_open(struct crypto_channel *ch, const uint8_t *in,
			size_t len, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Handshake (protocol.md §2.3), server side
 */

/** What the server learns from the device's step-2 block. */
struct crypto_step2 {
	uint8_t device_id[CRYPTO_DEVICE_ID_LEN]; /* raw 12-byte id */
	uint8_t key_der[CRYPTO_STEP2_KEY_MAX];	 /* device-supplied key */
	size_t key_der_len;			 /* 0: device sent none */
};

/**
 * Decrypt the device's 256-byte step-2 block with the server key and
 * check it: plaintext ≥ 52 bytes and bytes 0..39 equal the nonce
 * (compared in constant time). Bytes 52.. are returned as the device's
 * DER key, unparsed (see crypto_pubkey_parse()).
 * @param server private server key; borrowed
 * @param nonce the 40 bytes sent in step 1
 * @param block, block_len what the device sent; block_len must be 256
 * @param out receives the result; zeroed on failure
 * @return 0, CINDER_ERR_INVAL (bad arguments) or CINDER_ERR_CRYPTO (the
 *	block does not decrypt, is short, or does not echo the nonce)
 */
int crypto_handshake_step2_open(const struct crypto_key *server,
				const uint8_t nonce[CRYPTO_NONCE_LEN],
				const uint8_t *block, size_t block_len,
				struct crypto_step2 *out);

/**
 * The plaintext checks of crypto_handshake_step2_open(), on the already
 * decrypted bytes (split out for the fuzz target and tests).
 * @return 0 or CINDER_ERR_CRYPTO
 */
int crypto_handshake_step2_parse(const uint8_t nonce[CRYPTO_NONCE_LEN],
				 const uint8_t *plain, size_t len,
				 struct crypto_step2 *out);

/**
 * Build the server's 384-byte step-3 block: RSA-encrypt the 40 session
 * bytes to the device key (128 bytes), HMAC-SHA1 them with the session
 * bytes as the key, sign the HMAC raw with the server key (256 bytes).
 * @param server private server key (2048 bits); borrowed
 * @param device device public key; must be exactly 1024 bits, since the
 *	block layout has room for a 128-byte ciphertext only; borrowed
 * @param session 40 random bytes (crypto_random()); borrowed
 * @param out receives 384 bytes
 * @return 0, CINDER_ERR_INVAL (wrong key sizes) or CINDER_ERR_CRYPTO
 */
int crypto_handshake_step3_build(const struct crypto_key *server,
				 const struct crypto_key *device,
				 const uint8_t session[CRYPTO_SESSION_LEN],
				 uint8_t out[CRYPTO_STEP3_LEN]);

/*
 * Handshake, device side (tests and the posix simulator)
 */

/**
 * Build the device's 256-byte step-2 block: nonce ‖ device id ‖ DER key,
 * RSA-encrypted to the server public key.
 * @param server_pub server key (public half suffices); borrowed
 * @param der, der_len the device's public key DER, 0..193 bytes (162 for
 *	an RSA-1024 key); der may be NULL when der_len is 0
 * @param out receives 256 bytes
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_CRYPTO
 */
int crypto_handshake_step2_build(const struct crypto_key *server_pub,
				 const uint8_t nonce[CRYPTO_NONCE_LEN],
				 const uint8_t device_id[CRYPTO_DEVICE_ID_LEN],
				 const uint8_t *der, size_t der_len,
				 uint8_t out[CRYPTO_STEP2_LEN]);

/**
 * Open the server's 384-byte step-3 block as a device does: decrypt the
 * first 128 bytes with the device private key (must give 40 bytes),
 * recompute the HMAC and verify the signature with the server key.
 * @param device private device key (1024 bits); borrowed
 * @param server_pub server key (public half suffices); borrowed
 * @param block, block_len the block; block_len must be 384
 * @param session receives the 40 session bytes; wiped on failure
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_CRYPTO (decryption or
 *	signature failure)
 */
int crypto_handshake_step3_open(const struct crypto_key *device,
				const struct crypto_key *server_pub,
				const uint8_t *block, size_t block_len,
				uint8_t session[CRYPTO_SESSION_LEN]);

/*
 * Passwords and tokens
 */

/** PBKDF2-HMAC-SHA256 iterations for new password hashes. */
#define CRYPTO_PBKDF2_ITER 210000
/** Longest password accepted (bytes). */
#define CRYPTO_PASSWORD_MAX 1024

/**
 * Hash a password for storage: PBKDF2-HMAC-SHA256 with a random 16-byte
 * salt, as "$pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>". CPU-heavy
 * (tens of milliseconds): never call it on the loop thread.
 * @param out receives the string; caller frees with free()
 * @return 0, CINDER_ERR_INVAL (NULL or over CRYPTO_PASSWORD_MAX) or
 *	CINDER_ERR_CRYPTO
 */
int crypto_password_hash(const char *password, char **out);

/**
 * Check a password against a stored hash, in constant time. CPU-heavy, as
 * crypto_password_hash().
 * @return 0 on a match, CINDER_ERR_AUTH on a mismatch, CINDER_ERR_INVAL
 *	for a stored string that is not a hash this function made
 */
int crypto_password_verify(const char *password, const char *stored);

#endif
