/* SPDX-License-Identifier: MIT */
/*
 * SHA-1 (FIPS 180-4) and HMAC-SHA1 (RFC 2104) for the device firmware.
 * Pure, no allocation, no I/O; the context lives wherever the caller puts
 * it (about 100 bytes). Used by the handshake (HMAC over the server's RSA
 * block, protocol.md §2.3); SHA-1 is not used for anything else.
 */
#ifndef FW_SHA1_H
#define FW_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define FW_SHA1_LEN 20	 /* digest size */
#define FW_SHA1_BLOCK 64 /* block size */

struct fw_sha1 {
	uint32_t h[5];		    /* chaining state */
	uint64_t total;		    /* bytes hashed so far */
	uint8_t buf[FW_SHA1_BLOCK]; /* partial block */
	size_t used;		    /* bytes in buf */
};

/**
 * Start a hash.
 * @param c context to initialise (caller storage)
 */
void fw_sha1_init(struct fw_sha1 *c);

/**
 * Hash more data.
 * @param c an initialised context
 * @param data bytes to add (borrowed until return); may be NULL if len is 0
 * @param len number of bytes
 */
void fw_sha1_update(struct fw_sha1 *c, const void *data, size_t len);

/**
 * Finish a hash and write the digest. The context is wiped afterwards.
 * @param c an initialised context
 * @param out 20-byte digest (caller storage)
 */
void fw_sha1_final(struct fw_sha1 *c, uint8_t out[FW_SHA1_LEN]);

/**
 * One-shot SHA-1.
 * @param data bytes to hash (borrowed)
 * @param len number of bytes
 * @param out 20-byte digest (caller storage)
 */
void fw_sha1(const void *data, size_t len, uint8_t out[FW_SHA1_LEN]);

/**
 * One-shot HMAC-SHA1.
 * @param key HMAC key (borrowed); keys longer than 64 bytes are hashed first
 * @param keylen key length
 * @param msg message (borrowed)
 * @param len message length
 * @param out 20-byte MAC (caller storage)
 */
void fw_sha1_hmac(const uint8_t *key, size_t keylen, const void *msg,
		  size_t len, uint8_t out[FW_SHA1_LEN]);

#endif
