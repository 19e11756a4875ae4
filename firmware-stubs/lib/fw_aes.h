/* SPDX-License-Identifier: MIT */
/*
 * AES-128 (FIPS 197), CBC with PKCS#7, and the Particle session channel
 * (protocol.md §1.3-1.4): one key for both directions, one IV per
 * direction, and after each message the IV becomes the FIRST 16 bytes of
 * that message's ciphertext. Byte-oriented and table-light (two 256-byte
 * S-boxes in flash); pure, no allocation.
 */
#ifndef FW_AES_H
#define FW_AES_H

#include <stddef.h>
#include <stdint.h>

#define FW_AES_BLOCK 16 /* block and IV size */
#define FW_AES_KEY 16	/* AES-128 key size */

struct fw_aes128 {
	uint8_t rk[176]; /* expanded key: 11 round keys */
};

struct fw_aes_chan {
	struct fw_aes128 key;	       /* session key schedule */
	uint8_t send_iv[FW_AES_BLOCK]; /* IV for the next message we send */
	uint8_t recv_iv[FW_AES_BLOCK]; /* IV for the next message we receive */
};

/**
 * Expand an AES-128 key.
 * @param a key schedule (caller storage; holds key material, wipe after use)
 * @param key 16-byte key (borrowed)
 */
void fw_aes128_init(struct fw_aes128 *a, const uint8_t key[FW_AES_KEY]);

/**
 * Encrypt one block; in and out may be the same buffer.
 */
void fw_aes128_encrypt(const struct fw_aes128 *a, const uint8_t in[16],
		       uint8_t out[16]);

/**
 * Decrypt one block; in and out may be the same buffer.
 */
void fw_aes128_decrypt(const struct fw_aes128 *a, const uint8_t in[16],
		       uint8_t out[16]);

/**
 * CBC-encrypt whole blocks (no padding), in place allowed.
 * @param iv 16-byte IV, updated to the last ciphertext block (standard CBC)
 * @param len multiple of 16
 * @return 0, or FW_ERR_INVAL if len is not a multiple of 16
 */
int fw_aes128_cbc_encrypt(const struct fw_aes128 *a, uint8_t iv[16],
			  const uint8_t *in, uint8_t *out, size_t len);

/**
 * CBC-decrypt whole blocks (no padding), in place allowed.
 * @param iv 16-byte IV, updated to the last ciphertext block (standard CBC)
 * @param len multiple of 16
 * @return 0, or FW_ERR_INVAL if len is not a multiple of 16
 */
int fw_aes128_cbc_decrypt(const struct fw_aes128 *a, uint8_t iv[16],
			  const uint8_t *in, uint8_t *out, size_t len);

/**
 * Set up the session channel from the handshake's key and IV (both
 * directions start from the same IV).
 * @param c channel (caller storage; holds secrets, wipe with
 *          fw_aes_chan_cleanup)
 */
void fw_aes_chan_init(struct fw_aes_chan *c, const uint8_t key[16],
		      const uint8_t iv[16]);

/**
 * Wipe the channel's key and IVs.
 */
void fw_aes_chan_cleanup(struct fw_aes_chan *c);

/**
 * Size of the ciphertext of a len-byte message: PKCS#7 always adds 1..16.
 */
size_t fw_aes_chan_sealed_len(size_t len);

/**
 * Encrypt one message with PKCS#7 padding and chain the send IV.
 * @param in plaintext (borrowed); may overlap out only if in == out
 * @param len plaintext length
 * @param out ciphertext (caller storage of at least
 *            fw_aes_chan_sealed_len(len) bytes)
 * @param cap size of out
 * @param outlen set to the ciphertext length
 * @return 0, or FW_ERR_TOO_BIG if out is too small
 */
int fw_aes_chan_seal(struct fw_aes_chan *c, const uint8_t *in, size_t len,
		     uint8_t *out, size_t cap, size_t *outlen);

/**
 * Decrypt one message in place, strip PKCS#7 padding and chain the receive
 * IV. Like Device OS it trusts only the last pad byte's value, but it also
 * checks that the value is 1..16.
 * @param buf ciphertext, replaced by plaintext (borrowed)
 * @param len ciphertext length (a non-zero multiple of 16)
 * @param plainlen set to the plaintext length
 * @return 0, FW_ERR_MALFORMED for a bad length or padding
 */
int fw_aes_chan_open(struct fw_aes_chan *c, uint8_t *buf, size_t len,
		     size_t *plainlen);

#endif
