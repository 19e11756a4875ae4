/* SPDX-License-Identifier: MIT */
/*
 * SHA-1 and HMAC-SHA1, written for size rather than speed: one compression
 * function with a 16-word rolling schedule, no unrolling. Pure C99, no
 * allocation; suitable for a Cortex-M4. Checked against OpenSSL by
 * tests/unit/check_fw_crypto.c.
 */
#include "config.h"

#include <string.h>

#include "fw_sha1.h"
#include "fw_util.h"

static uint32_t
rol32(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static void
sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[16];
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	uint32_t f, k, t;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = fw_get_be32(p + 4 * i);
	for (i = 0; i < 80; i++) {
		if (i >= 16) {
			t = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^
			    w[(i + 2) & 15] ^ w[i & 15];
			w[i & 15] = rol32(t, 1);
		}
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999u;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1u;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdcu;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6u;
		}
		t = rol32(a, 5) + f + e + k + w[i & 15];
		e = d;
		d = c;
		c = rol32(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	fw_wipe(w, sizeof(w));
}

void
fw_sha1_init(struct fw_sha1 *c)
{
	c->h[0] = 0x67452301u;
	c->h[1] = 0xefcdab89u;
	c->h[2] = 0x98badcfeu;
	c->h[3] = 0x10325476u;
	c->h[4] = 0xc3d2e1f0u;
	c->total = 0;
	c->used = 0;
}

void
fw_sha1_update(struct fw_sha1 *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t n;

	c->total += len;
	while (len > 0) {
		if (c->used == 0 && len >= FW_SHA1_BLOCK) {
			sha1_block(c->h, p);
			p += FW_SHA1_BLOCK;
			len -= FW_SHA1_BLOCK;
			continue;
		}
		n = FW_SHA1_BLOCK - c->used;
		if (n > len)
			n = len;
		memcpy(c->buf + c->used, p, n);
		c->used += n;
		p += n;
		len -= n;
		if (c->used == FW_SHA1_BLOCK) {
			sha1_block(c->h, c->buf);
			c->used = 0;
		}
	}
}

void
fw_sha1_final(struct fw_sha1 *c, uint8_t out[FW_SHA1_LEN])
{
	uint64_t bits = c->total * 8;
	int i;

	c->buf[c->used++] = 0x80;
	if (c->used > FW_SHA1_BLOCK - 8) {
		memset(c->buf + c->used, 0, FW_SHA1_BLOCK - c->used);
		sha1_block(c->h, c->buf);
		c->used = 0;
	}
	memset(c->buf + c->used, 0, FW_SHA1_BLOCK - 8 - c->used);
	fw_put_be32(c->buf + 56, (uint32_t)(bits >> 32));
	fw_put_be32(c->buf + 60, (uint32_t)bits);
	sha1_block(c->h, c->buf);
	for (i = 0; i < 5; i++)
		fw_put_be32(out + 4 * i, c->h[i]);
	fw_wipe(c, sizeof(*c));
}

void
fw_sha1(const void *data, size_t len, uint8_t out[FW_SHA1_LEN])
{
	struct fw_sha1 c;

	fw_sha1_init(&c);
	fw_sha1_update(&c, data, len);
	fw_sha1_final(&c, out);
}

void
fw_sha1_hmac(const uint8_t *key, size_t keylen, const void *msg, size_t len,
	     uint8_t out[FW_SHA1_LEN])
{
	uint8_t k[FW_SHA1_BLOCK];
	uint8_t inner[FW_SHA1_LEN];
	struct fw_sha1 c;
	size_t i;

	memset(k, 0, sizeof(k));
	if (keylen > FW_SHA1_BLOCK)
		fw_sha1(key, keylen, k);
	else if (keylen > 0)
		memcpy(k, key, keylen);

	for (i = 0; i < sizeof(k); i++)
		k[i] ^= 0x36;
	fw_sha1_init(&c);
	fw_sha1_update(&c, k, sizeof(k));
	fw_sha1_update(&c, msg, len);
	fw_sha1_final(&c, inner);

	for (i = 0; i < sizeof(k); i++)
		k[i] ^= 0x36 ^ 0x5c;
	fw_sha1_init(&c);
	fw_sha1_update(&c, k, sizeof(k));
	fw_sha1_update(&c, inner, sizeof(inner));
	fw_sha1_final(&c, out);

	fw_wipe(k, sizeof(k));
	fw_wipe(inner, sizeof(inner));
}
