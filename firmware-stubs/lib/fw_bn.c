/* SPDX-License-Identifier: MIT */
/*
 * Big-integer arithmetic for RSA on a microcontroller. Every value has
 * FW_BN_LIMBS limbs of storage; operations under a modulus work on the
 * modulus' limb count k. Montgomery form uses R = 2^(32k); R^2 mod m is
 * made by doubling 1 modulo m 64k times, which avoids a general division
 * routine at the cost of a few thousand cheap shifts per exponentiation.
 */
#include "config.h"

#include <string.h>

#include "fw_bn.h"
#include "fw_err.h"
#include "fw_util.h"

int
fw_bn_decode(struct fw_bn *a, const uint8_t *buf, size_t len)
{
	size_t i, limb;

	memset(a, 0, sizeof(*a));
	while (len > 0 && buf[0] == 0) {
		buf++;
		len--;
	}
	if (len > FW_BN_MAX_BITS / 8)
		return FW_ERR_TOO_BIG;
	for (i = 0; i < len; i++) {
		limb = i / 4;
		a->v[limb] |= (uint32_t)buf[len - 1 - i] << (8 * (i % 4));
	}
	a->n = len == 0 ? 1 : (len + 3) / 4;
	return 0;
}

size_t
fw_bn_bits(const struct fw_bn *a)
{
	size_t i = FW_BN_LIMBS;
	uint32_t top;
	size_t bits;

	while (i > 0 && a->v[i - 1] == 0)
		i--;
	if (i == 0)
		return 0;
	top = a->v[i - 1];
	bits = 32 * (i - 1);
	while (top) {
		bits++;
		top >>= 1;
	}
	return bits;
}

int
fw_bn_encode(const struct fw_bn *a, uint8_t *buf, size_t len)
{
	size_t i;

	if ((fw_bn_bits(a) + 7) / 8 > len)
		return FW_ERR_TOO_BIG;
	for (i = 0; i < len; i++) {
		if (i / 4 < FW_BN_LIMBS)
			buf[len - 1 - i] =
				(uint8_t)(a->v[i / 4] >> (8 * (i % 4)));
		else
			buf[len - 1 - i] = 0;
	}
	return 0;
}

int
fw_bn_cmp(const struct fw_bn *a, const struct fw_bn *b)
{
	size_t i;

	for (i = FW_BN_LIMBS; i > 0; i--) {
		if (a->v[i - 1] > b->v[i - 1])
			return 1;
		if (a->v[i - 1] < b->v[i - 1])
			return -1;
	}
	return 0;
}

/* a -= m over k limbs; returns the borrow. */
static uint32_t
sub_k(uint32_t *a, const uint32_t *m, size_t k)
{
	uint64_t borrow = 0, d;
	size_t i;

	for (i = 0; i < k; i++) {
		d = (uint64_t)a[i] - m[i] - borrow;
		a[i] = (uint32_t)d;
		borrow = (d >> 32) & 1;
	}
	return (uint32_t)borrow;
}

/* a >= m over k limbs */
static int
ge_k(const uint32_t *a, const uint32_t *m, size_t k)
{
	size_t i;

	for (i = k; i > 0; i--) {
		if (a[i - 1] != m[i - 1])
			return a[i - 1] > m[i - 1];
	}
	return 1;
}

/* -m^-1 mod 2^32 for odd m0, by Newton's iteration (5 steps give 32 bits) */
static uint32_t
mont_minv(uint32_t m0)
{
	uint32_t inv = 1;
	int i;

	for (i = 0; i < 5; i++)
		inv *= 2 - m0 * inv;
	return (uint32_t)0 - inv;
}

/* r = a * b * R^-1 mod m over k limbs (CIOS); r may alias a or b */
static void
mont_mul(uint32_t *r, const uint32_t *a, const uint32_t *b, const uint32_t *m,
	 uint32_t minv, size_t k)
{
	uint32_t t[FW_BN_LIMBS + 2];
	uint64_t c;
	uint32_t q;
	size_t i, j;

	memset(t, 0, sizeof(t));
	for (i = 0; i < k; i++) {
		c = 0;
		for (j = 0; j < k; j++) {
			c += (uint64_t)t[j] + (uint64_t)a[j] * b[i];
			t[j] = (uint32_t)c;
			c >>= 32;
		}
		c += t[k];
		t[k] = (uint32_t)c;
		t[k + 1] = (uint32_t)(c >> 32);

		q = t[0] * minv;
		c = (uint64_t)t[0] + (uint64_t)q * m[0];
		c >>= 32;
		for (j = 1; j < k; j++) {
			c += (uint64_t)t[j] + (uint64_t)q * m[j];
			t[j - 1] = (uint32_t)c;
			c >>= 32;
		}
		c += t[k];
		t[k - 1] = (uint32_t)c;
		t[k] = t[k + 1] + (uint32_t)(c >> 32);
	}
	if (t[k] != 0 || ge_k(t, m, k))
		sub_k(t, m, k);
	memcpy(r, t, k * sizeof(uint32_t));
	fw_wipe(t, sizeof(t));
}

int
fw_bn_modexp(struct fw_bn *res, const struct fw_bn *base,
	     const struct fw_bn *exp, const struct fw_bn *m)
{
	uint32_t r2[FW_BN_LIMBS], x[FW_BN_LIMBS], acc[FW_BN_LIMBS];
	uint32_t tmp[FW_BN_LIMBS], one[FW_BN_LIMBS];
	uint32_t carry, mask, minv;
	size_t k = m->n, i, j, bits;
	int r = FW_ERR_INVAL;

	if (k == 0 || k > FW_BN_LIMBS || (m->v[0] & 1) == 0 ||
	    fw_bn_bits(m) <= 1 || fw_bn_cmp(base, m) >= 0)
		goto out;
	/* The limb count must match the modulus' significant limbs. */
	if (m->v[k - 1] == 0)
		goto out;
	minv = mont_minv(m->v[0]);

	/* r2 = R^2 mod m: double 1 modulo m 64k times */
	memset(r2, 0, sizeof(r2));
	r2[0] = 1;
	for (i = 0; i < 64 * k; i++) {
		carry = 0;
		for (j = 0; j < k; j++) {
			uint32_t v = r2[j];

			r2[j] = (v << 1) | carry;
			carry = v >> 31;
		}
		if (carry || ge_k(r2, m->v, k))
			sub_k(r2, m->v, k);
	}

	memset(one, 0, sizeof(one));
	one[0] = 1;
	mont_mul(x, base->v, r2, m->v, minv, k); /* base in Montgomery form */
	mont_mul(acc, r2, one, m->v, minv, k);	 /* 1 in Montgomery form */

	bits = fw_bn_bits(exp);
	for (i = bits; i > 0; i--) {
		mont_mul(acc, acc, acc, m->v, minv, k);
		mont_mul(tmp, acc, x, m->v, minv, k);
		mask = (uint32_t)0 -
		       ((exp->v[(i - 1) / 32] >> ((i - 1) % 32)) & 1);
		for (j = 0; j < k; j++)
			acc[j] = (tmp[j] & mask) | (acc[j] & ~mask);
	}
	mont_mul(acc, acc, one, m->v, minv, k);

	memset(res, 0, sizeof(*res));
	memcpy(res->v, acc, k * sizeof(uint32_t));
	res->n = k;
	r = 0;
out:
	fw_wipe(x, sizeof(x));
	fw_wipe(acc, sizeof(acc));
	fw_wipe(tmp, sizeof(tmp));
	return r;
}
