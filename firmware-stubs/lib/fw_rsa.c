/* SPDX-License-Identifier: MIT */
/*
 * RSA PKCS#1 v1.5 and key-format handling for the device firmware. The
 * private-key parser is a strict, bounds-checked DER walk rather than the
 * fixed offsets Device OS uses, so any well-formed key of up to 2048 bits
 * loads. Padding checks after decryption compare without early exits
 * where that is cheap, but this is not hardened against timing attacks.
 */
#include "config.h"

#include <string.h>

#include "fw_err.h"
#include "fw_rsa.h"
#include "fw_util.h"

/* protocol.md §2.1: fixed DER prefixes of the two SubjectPublicKeyInfos. */
static const uint8_t server_spki_hdr[33] = {
	0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
	0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01,
	0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00,
};
static const uint8_t device_spki_hdr[29] = {
	0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
	0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x81,
	0x8d, 0x00, 0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00,
};
static const uint8_t e65537_der[5] = {0x02, 0x03, 0x01, 0x00, 0x01};

static int
pub_check(const struct fw_bn *n, const struct fw_bn *e)
{
	if ((n->v[0] & 1) == 0 || fw_bn_bits(n) < 512)
		return FW_ERR_INVAL;
	if (fw_bn_bits(e) < 2 || (e->v[0] & 1) == 0)
		return FW_ERR_INVAL;
	return 0;
}

int
fw_rsa_pub_init(struct fw_rsa_pub *k, const uint8_t *n, size_t nlen, uint32_t e)
{
	uint8_t eb[4];
	int r;

	memset(k, 0, sizeof(*k));
	if ((r = fw_bn_decode(&k->n, n, nlen)) != 0)
		return r;
	fw_put_be32(eb, e);
	if ((r = fw_bn_decode(&k->e, eb, sizeof(eb))) != 0)
		return r;
	if ((r = pub_check(&k->n, &k->e)) != 0)
		return r;
	k->len = (fw_bn_bits(&k->n) + 7) / 8;
	return 0;
}

int
fw_rsa_pub_decode_server(struct fw_rsa_pub *k, const uint8_t *der, size_t len)
{
	memset(k, 0, sizeof(*k));
	if (len != FW_RSA_SERVER_SPKI_LEN ||
	    memcmp(der, server_spki_hdr, sizeof(server_spki_hdr)) != 0 ||
	    memcmp(der + 33 + FW_RSA_SERVER_LEN, e65537_der,
		   sizeof(e65537_der)) != 0 ||
	    (der[33] & 0x80) == 0)
		return FW_ERR_MALFORMED;
	if (fw_rsa_pub_init(k, der + 33, FW_RSA_SERVER_LEN, 65537) != 0)
		return FW_ERR_MALFORMED;
	return 0;
}

/*
 * Read one DER tag-length header at *pos within [0, end). On success *pos
 * is at the content and *clen is its length, which fits before end.
 */
static int
der_header(const uint8_t *der, size_t end, size_t *pos, uint8_t tag,
	   size_t *clen)
{
	size_t p = *pos, l, nb, i;

	if (p + 2 > end || der[p] != tag)
		return FW_ERR_MALFORMED;
	l = der[p + 1];
	p += 2;
	if (l & 0x80) {
		nb = l & 0x7f;
		if (nb == 0 || nb > 2 || p + nb > end)
			return FW_ERR_MALFORMED;
		l = 0;
		for (i = 0; i < nb; i++)
			l = (l << 8) | der[p + i];
		p += nb;
	}
	if (l > end - p)
		return FW_ERR_MALFORMED;
	*pos = p;
	*clen = l;
	return 0;
}

/* Read an INTEGER; with out == NULL it is only skipped. */
static int
der_integer(const uint8_t *der, size_t end, size_t *pos, struct fw_bn *out)
{
	size_t l;
	int r;

	if ((r = der_header(der, end, pos, 0x02, &l)) != 0)
		return r;
	if (l == 0 || (der[*pos] & 0x80) != 0) /* empty or negative */
		return FW_ERR_MALFORMED;
	if (out != NULL && (r = fw_bn_decode(out, der + *pos, l)) != 0)
		return r;
	*pos += l;
	return 0;
}

int
fw_rsa_priv_decode(struct fw_rsa_priv *k, const uint8_t *der, size_t len)
{
	size_t pos = 0, l, end;
	struct fw_bn version;
	int r = FW_ERR_MALFORMED, i;

	memset(k, 0, sizeof(*k));
	if ((r = der_header(der, len, &pos, 0x30, &l)) != 0)
		goto out;
	end = pos + l;
	if ((r = der_integer(der, end, &pos, &version)) != 0)
		goto out;
	if (fw_bn_bits(&version) != 0) { /* two-prime keys only */
		r = FW_ERR_MALFORMED;
		goto out;
	}
	if ((r = der_integer(der, end, &pos, &k->n)) != 0 ||
	    (r = der_integer(der, end, &pos, &k->e)) != 0 ||
	    (r = der_integer(der, end, &pos, &k->d)) != 0)
		goto out;
	for (i = 0; i < 5; i++) /* p, q, dp, dq, qinv */
		if ((r = der_integer(der, end, &pos, NULL)) != 0)
			goto out;
	if (pos != end || pub_check(&k->n, &k->e) != 0 ||
	    fw_bn_cmp(&k->d, &k->n) >= 0) {
		r = FW_ERR_MALFORMED;
		goto out;
	}
	k->len = (fw_bn_bits(&k->n) + 7) / 8;
	r = 0;
out:
	if (r != 0)
		fw_rsa_priv_cleanup(k);
	return r;
}

void
fw_rsa_priv_cleanup(struct fw_rsa_priv *k)
{
	fw_wipe(k, sizeof(*k));
}

int
fw_rsa_priv_encode_pub(const struct fw_rsa_priv *k,
		       uint8_t out[FW_RSA_DEVICE_SPKI_LEN])
{
	if (fw_bn_bits(&k->n) != 8 * FW_RSA_DEVICE_LEN ||
	    fw_bn_bits(&k->e) != 17 || k->e.v[0] != 65537)
		return FW_ERR_INVAL;
	memcpy(out, device_spki_hdr, sizeof(device_spki_hdr));
	if (fw_bn_encode(&k->n, out + 29, FW_RSA_DEVICE_LEN) != 0)
		return FW_ERR_INTERNAL;
	memcpy(out + 29 + FW_RSA_DEVICE_LEN, e65537_der, sizeof(e65537_der));
	return 0;
}

int
fw_rsa_encrypt(const struct fw_rsa_pub *k, const uint8_t *msg, size_t mlen,
	       uint8_t *out, size_t outlen, fw_rsa_random_cb rnd, void *rctx)
{
	uint8_t em[FW_BN_MAX_BITS / 8];
	struct fw_bn m;
	size_t ps, i;
	int r = FW_ERR_INTERNAL;

	if (k->len == 0 || outlen != k->len) {
		r = FW_ERR_INVAL;
		goto out;
	}
	if (mlen + 11 > k->len) {
		r = FW_ERR_TOO_BIG;
		goto out;
	}
	/* EM = 00 02 PS 00 M, PS = k - 3 - mlen non-zero random bytes */
	ps = k->len - 3 - mlen;
	em[0] = 0x00;
	em[1] = 0x02;
	if ((r = rnd(rctx, em + 2, ps)) != 0)
		goto out;
	for (i = 0; i < ps; i++) {
		while (em[2 + i] == 0) {
			if ((r = rnd(rctx, em + 2 + i, 1)) != 0)
				goto out;
		}
	}
	em[2 + ps] = 0x00;
	memcpy(em + 3 + ps, msg, mlen);

	if ((r = fw_bn_decode(&m, em, k->len)) != 0 ||
	    (r = fw_bn_modexp(&m, &m, &k->e, &k->n)) != 0 ||
	    (r = fw_bn_encode(&m, out, outlen)) != 0)
		goto out;
	r = 0;
out:
	fw_wipe(em, sizeof(em));
	fw_wipe(&m, sizeof(m));
	return r;
}

int
fw_rsa_decrypt(const struct fw_rsa_priv *k, const uint8_t *in, size_t inlen,
	       uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t em[FW_BN_MAX_BITS / 8];
	struct fw_bn c;
	size_t i, sep = 0;
	int r = FW_ERR_INTERNAL;

	*outlen = 0;
	if (k->len == 0 || inlen != k->len) {
		r = FW_ERR_INVAL;
		goto out;
	}
	if ((r = fw_bn_decode(&c, in, inlen)) != 0)
		goto out;
	if (fw_bn_cmp(&c, &k->n) >= 0) {
		r = FW_ERR_CRYPTO;
		goto out;
	}
	if ((r = fw_bn_modexp(&c, &c, &k->d, &k->n)) != 0 ||
	    (r = fw_bn_encode(&c, em, k->len)) != 0)
		goto out;
	/* EM = 00 02 PS(>= 8 non-zero) 00 M */
	for (i = 2; i < k->len; i++) {
		if (em[i] == 0) {
			sep = i;
			break;
		}
	}
	if (em[0] != 0x00 || em[1] != 0x02 || sep < 10) {
		r = FW_ERR_CRYPTO;
		goto out;
	}
	if (k->len - sep - 1 > cap) {
		r = FW_ERR_TOO_BIG;
		goto out;
	}
	memcpy(out, em + sep + 1, k->len - sep - 1);
	*outlen = k->len - sep - 1;
	r = 0;
out:
	fw_wipe(em, sizeof(em));
	fw_wipe(&c, sizeof(c));
	return r;
}

int
fw_rsa_verify(const struct fw_rsa_pub *k, const uint8_t *sig, size_t siglen,
	      const uint8_t *msg, size_t mlen)
{
	uint8_t em[FW_BN_MAX_BITS / 8];
	struct fw_bn s;
	size_t i, ps;
	uint8_t bad = 0;
	int r;

	if (k->len == 0 || siglen != k->len)
		return FW_ERR_INVAL;
	if (mlen + 11 > k->len)
		return FW_ERR_CRYPTO;
	if ((r = fw_bn_decode(&s, sig, siglen)) != 0)
		return r;
	if (fw_bn_cmp(&s, &k->n) >= 0)
		return FW_ERR_CRYPTO;
	if ((r = fw_bn_modexp(&s, &s, &k->e, &k->n)) != 0 ||
	    (r = fw_bn_encode(&s, em, k->len)) != 0)
		return r;
	/* EM = 00 01 FF..FF 00 M, with the FF run filling the rest exactly */
	ps = k->len - 3 - mlen;
	bad |= em[0] ^ 0x00;
	bad |= em[1] ^ 0x01;
	for (i = 0; i < ps; i++)
		bad |= em[2 + i] ^ 0xff;
	bad |= em[2 + ps];
	if (bad != 0 || fw_ct_cmp(em + 3 + ps, msg, mlen) != 0)
		return FW_ERR_CRYPTO;
	return 0;
}
