/* SPDX-License-Identifier: MIT */
/*
 * Fixed-size unsigned big integers for the firmware's RSA: up to 2048 bits
 * in 32-bit limbs on the stack, and modular exponentiation by Montgomery
 * multiplication (CIOS). Simple and correct over fast: no windowing, no
 * CRT; the exponent is scanned one bit at a time with a multiply on every
 * bit and a masked select, so the operation sequence does not depend on
 * the exponent's bits. Pure, no allocation.
 */
#ifndef FW_BN_H
#define FW_BN_H

#include <stddef.h>
#include <stdint.h>

#define FW_BN_MAX_BITS 2048
#define FW_BN_LIMBS (FW_BN_MAX_BITS / 32)

struct fw_bn {
	size_t n;		 /* limbs in use (1..FW_BN_LIMBS) */
	uint32_t v[FW_BN_LIMBS]; /* little-endian limbs; unused ones are 0 */
};

/**
 * Load a big-endian unsigned byte string. Leading zero bytes are ignored.
 * @param a result (caller storage)
 * @param buf bytes (borrowed)
 * @param len number of bytes
 * @return 0, or FW_ERR_TOO_BIG if the value needs more than 2048 bits
 */
int fw_bn_decode(struct fw_bn *a, const uint8_t *buf, size_t len);

/**
 * Store as a big-endian byte string of exactly len bytes (zero-padded).
 * @return 0, or FW_ERR_TOO_BIG if the value does not fit in len bytes
 */
int fw_bn_encode(const struct fw_bn *a, uint8_t *buf, size_t len);

/**
 * Number of significant bits (0 for zero).
 */
size_t fw_bn_bits(const struct fw_bn *a);

/**
 * Compare two values.
 * @return -1, 0 or 1
 */
int fw_bn_cmp(const struct fw_bn *a, const struct fw_bn *b);

/**
 * res = base^exp mod m.
 * @param res result (caller storage; may alias base)
 * @param base must be < m
 * @param exp any exponent
 * @param m odd modulus greater than 1
 * @return 0, or FW_ERR_INVAL if m is even or 1, or base >= m
 */
int fw_bn_modexp(struct fw_bn *res, const struct fw_bn *base,
		 const struct fw_bn *exp, const struct fw_bn *m);

#endif
