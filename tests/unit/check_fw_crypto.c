/* SPDX-License-Identifier: MIT */
/*
 * The firmware's in-house crypto (firmware-stubs/lib) against OpenSSL on
 * the same inputs: SHA-1, HMAC-SHA1, AES-128 and the Particle CBC channel,
 * CRC-32, RSA encrypt/decrypt/verify in both directions, the key formats,
 * and the device side of a recorded Device OS 0.7.0 handshake.
 * Test data: $top_srcdir/tests/data/vectors.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fw_aes.h"
#include "fw_bn.h"
#include "fw_crc32.h"
#include "fw_err.h"
#include "fw_rsa.h"
#include "fw_sha1.h"

/* Deterministic test inputs: xorshift64 with a fixed seed per test. */
static uint64_t rng_state;

static void
rng_seed(uint64_t s)
{
	rng_state = s ? s : 1;
}

static uint8_t
rng_byte(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

static void
rng_fill(uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = rng_byte();
}

/* fw_rsa_random_cb: the test PRNG; it does produce zeros now and then */
static int
test_random(void *ctx, uint8_t *buf, size_t len)
{
	int *calls = ctx;

	if (calls != NULL)
		(*calls)++;
	rng_fill(buf, len);
	return 0;
}

static int
failing_random(void *ctx, uint8_t *buf, size_t len)
{
	return FW_ERR_IO;
}

static char *
data_path(const char *name)
{
	const char *top = getenv("top_srcdir");
	static char path[4096];

	snprintf(path, sizeof(path), "%s/tests/data/vectors/%s",
		 top != NULL ? top : ".", name);
	return path;
}

static uint8_t *
read_file(const char *name, size_t *len)
{
	FILE *f = fopen(data_path(name), "rb");
	uint8_t *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", data_path(name));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static size_t
hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t cap)
{
	size_t i;
	unsigned v;

	ck_assert_uint_eq(hexlen % 2, 0);
	ck_assert_uint_le(hexlen / 2, cap);
	for (i = 0; i < hexlen / 2; i++) {
		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return hexlen / 2;
}

/* Concatenate one direction ("s2d" or "d2s") of a recorded session. */
static size_t
jsonl_stream(const char *name, const char *dir, uint8_t *out, size_t cap)
{
	size_t len, total = 0;
	char *text = (char *)read_file(name, &len);
	char want[32];
	char *line, *save = NULL, *h, *end;

	snprintf(want, sizeof(want), "\"dir\": \"%s\"", dir);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, want) == NULL)
			continue;
		h = strstr(line, "\"hex\": \"");
		ck_assert_ptr_nonnull(h);
		h += 8;
		end = strchr(h, '"');
		ck_assert_ptr_nonnull(end);
		total += hex_decode(h, (size_t)(end - h), out + total,
				    cap - total);
	}
	free(text);
	return total;
}

/* ---- SHA-1 / HMAC ------------------------------------------------------ */

START_TEST(test_fw_sha1_vectors)
{
	/* FIPS 180 examples */
	static const uint8_t abc[20] = {
		0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
		0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
	static const uint8_t empty[20] = {
		0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55,
		0xbf, 0xef, 0x95, 0x60, 0x18, 0x90, 0xaf, 0xd8, 0x07, 0x09};
	uint8_t md[20];

	fw_sha1("abc", 3, md);
	ck_assert_mem_eq(md, abc, 20);
	fw_sha1(NULL, 0, md);
	ck_assert_mem_eq(md, empty, 20);
}
END_TEST

START_TEST(test_fw_sha1_random)
{
	uint8_t buf[300], md[20], ref[20];
	unsigned int mdlen;
	struct fw_sha1 c;
	size_t len, cut;

	rng_seed(0x5a1);
	/* every length around the block and padding boundaries */
	for (len = 0; len < sizeof(buf); len++) {
		rng_fill(buf, len);
		ck_assert(EVP_Digest(buf, len, ref, &mdlen, EVP_sha1(), NULL));
		fw_sha1(buf, len, md);
		ck_assert_mem_eq(md, ref, 20);
		/* and fed in two pieces */
		cut = len ? rng_byte() % len : 0;
		fw_sha1_init(&c);
		fw_sha1_update(&c, buf, cut);
		fw_sha1_update(&c, buf + cut, len - cut);
		fw_sha1_final(&c, md);
		ck_assert_mem_eq(md, ref, 20);
	}
}
END_TEST

START_TEST(test_fw_sha1_hmac_random)
{
	uint8_t key[100], msg[200], md[20], ref[20];
	unsigned int mdlen;
	size_t klen, mlen;
	int i;

	rng_seed(0x4ac);
	for (i = 0; i < 200; i++) {
		klen = rng_byte() % sizeof(key);
		mlen = rng_byte() % sizeof(msg);
		rng_fill(key, klen);
		rng_fill(msg, mlen);
		ck_assert_ptr_nonnull(HMAC(EVP_sha1(), key, (int)klen, msg,
					   mlen, ref, &mdlen));
		fw_sha1_hmac(key, klen, msg, mlen, md);
		ck_assert_mem_eq(md, ref, 20);
	}
}
END_TEST

START_TEST(test_fw_sha1_hmac_rfc2202)
{
	/* RFC 2202 test case 2 */
	static const uint8_t want[20] = {
		0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74,
		0x16, 0xd5, 0xf1, 0x84, 0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79};
	uint8_t md[20];

	fw_sha1_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?",
		     28, md);
	ck_assert_mem_eq(md, want, 20);
}
END_TEST

/* ---- AES ---------------------------------------------------------------- */

static void
ossl_cbc(int enc, int pad, const uint8_t key[16], const uint8_t iv[16],
	 const uint8_t *in, size_t len, uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;

	ck_assert_ptr_nonnull(x);
	ck_assert(EVP_CipherInit_ex(x, EVP_aes_128_cbc(), NULL, key, iv, enc));
	ck_assert(EVP_CIPHER_CTX_set_padding(x, pad));
	ck_assert(EVP_CipherUpdate(x, out, &n1, in, (int)len));
	ck_assert(EVP_CipherFinal_ex(x, out + n1, &n2));
	*outlen = (size_t)(n1 + n2);
	EVP_CIPHER_CTX_free(x);
}

START_TEST(test_fw_aes128_fips197)
{
	/* FIPS 197 appendix C.1 */
	static const uint8_t key[16] = {0, 1, 2,  3,  4,  5,  6,  7,
					8, 9, 10, 11, 12, 13, 14, 15};
	static const uint8_t pt[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
				       0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
				       0xcc, 0xdd, 0xee, 0xff};
	static const uint8_t ct[16] = {0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b,
				       0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80,
				       0x70, 0xb4, 0xc5, 0x5a};
	struct fw_aes128 a;
	uint8_t buf[16];

	fw_aes128_init(&a, key);
	fw_aes128_encrypt(&a, pt, buf);
	ck_assert_mem_eq(buf, ct, 16);
	fw_aes128_decrypt(&a, buf, buf);
	ck_assert_mem_eq(buf, pt, 16);
}
END_TEST

START_TEST(test_fw_aes128_cbc_random)
{
	uint8_t key[16], iv[16], iv2[16], pt[256], ct[272], ref[272];
	struct fw_aes128 a;
	size_t len, rlen;
	int i;

	rng_seed(0xae5);
	for (i = 0; i < 100; i++) {
		rng_fill(key, 16);
		rng_fill(iv, 16);
		len = 16 * (size_t)(1 + rng_byte() % 16);
		rng_fill(pt, len);
		ossl_cbc(1, 0, key, iv, pt, len, ref, &rlen);
		ck_assert_uint_eq(rlen, len);
		fw_aes128_init(&a, key);
		memcpy(iv2, iv, 16);
		ck_assert_int_eq(fw_aes128_cbc_encrypt(&a, iv2, pt, ct, len),
				 0);
		ck_assert_mem_eq(ct, ref, len);
		ck_assert_mem_eq(iv2, ref + len - 16, 16);
		memcpy(iv2, iv, 16);
		ck_assert_int_eq(fw_aes128_cbc_decrypt(&a, iv2, ct, ct, len),
				 0);
		ck_assert_mem_eq(ct, pt, len);
	}
	ck_assert_int_eq(fw_aes128_cbc_encrypt(&a, iv2, pt, ct, 15),
			 FW_ERR_INVAL);
}
END_TEST

START_TEST(test_fw_aes_chan_chaining)
{
	/*
	 * Three messages each way. Each must equal OpenSSL's padded CBC with
	 * the IV being the first ciphertext block of the previous message.
	 */
	uint8_t key[16], iv[16], exp_iv[16], pt[100], buf[128], ref[128];
	struct fw_aes_chan tx, rx;
	size_t len, clen, rlen, plen;
	int i;

	rng_seed(0xc4a);
	rng_fill(key, 16);
	rng_fill(iv, 16);
	fw_aes_chan_init(&tx, key, iv);
	fw_aes_chan_init(&rx, key, iv);
	memcpy(exp_iv, iv, 16);
	for (i = 0; i < 40; i++) {
		len = rng_byte() % sizeof(pt);
		if (i == 0)
			len = 16; /* a full block gets a full pad block */
		rng_fill(pt, len);
		ck_assert_int_eq(
			fw_aes_chan_seal(&tx, pt, len, buf, sizeof(buf), &clen),
			0);
		ck_assert_uint_eq(clen, fw_aes_chan_sealed_len(len));
		ossl_cbc(1, 1, key, exp_iv, pt, len, ref, &rlen);
		ck_assert_uint_eq(clen, rlen);
		ck_assert_mem_eq(buf, ref, clen);
		memcpy(exp_iv, ref, 16);

		ck_assert_int_eq(fw_aes_chan_open(&rx, buf, clen, &plen), 0);
		ck_assert_uint_eq(plen, len);
		ck_assert_mem_eq(buf, pt, len);
	}
	/* in place */
	memcpy(buf, pt, 20);
	ck_assert_int_eq(
		fw_aes_chan_seal(&tx, buf, 20, buf, sizeof(buf), &clen), 0);
	ck_assert_int_eq(fw_aes_chan_open(&rx, buf, clen, &plen), 0);
	ck_assert_uint_eq(plen, 20);
	ck_assert_mem_eq(buf, pt, 20);
	fw_aes_chan_cleanup(&tx);
	fw_aes_chan_cleanup(&rx);
}
END_TEST

START_TEST(test_fw_aes_chan_errors)
{
	uint8_t key[16] = {1}, iv[16] = {2}, buf[64] = {0};
	struct fw_aes_chan c;
	struct fw_aes128 a;
	size_t n;

	fw_aes_chan_init(&c, key, iv);
	ck_assert_int_eq(fw_aes_chan_seal(&c, buf, 16, buf, 31, &n),
			 FW_ERR_TOO_BIG);
	ck_assert_int_eq(fw_aes_chan_open(&c, buf, 0, &n), FW_ERR_MALFORMED);
	ck_assert_int_eq(fw_aes_chan_open(&c, buf, 17, &n), FW_ERR_MALFORMED);
	/* a block whose last plaintext byte is 0 is bad padding */
	fw_aes128_init(&a, key);
	memset(buf, 0, 16);
	memcpy(c.recv_iv, iv, 16);
	fw_aes128_cbc_encrypt(&a, iv, buf, buf, 16);
	ck_assert_int_eq(fw_aes_chan_open(&c, buf, 16, &n), FW_ERR_MALFORMED);
}
END_TEST

/* ---- CRC-32 ------------------------------------------------------------- */

static uint32_t
crc32_bitwise(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffffu;
	int k;

	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

START_TEST(test_fw_crc32_vectors)
{
	uint8_t buf[600];
	uint32_t c;
	int i;

	ck_assert_uint_eq(fw_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(fw_crc32(0, NULL, 0), 0);
	ck_assert_uint_eq(fw_crc32(0, "a", 1), 0xe8b7be43u);
	rng_seed(0xc3c);
	for (i = 0; i < 50; i++) {
		size_t len = (size_t)rng_byte() * 2, cut = len / 3;

		rng_fill(buf, len);
		c = fw_crc32(0, buf, cut);
		c = fw_crc32(c, buf + cut, len - cut);
		ck_assert_uint_eq(c, crc32_bitwise(buf, len));
	}
}
END_TEST

/* ---- RSA ---------------------------------------------------------------- */

static EVP_PKEY *
gen_rsa(unsigned bits)
{
	EVP_PKEY *k = EVP_RSA_gen(bits);

	ck_assert_ptr_nonnull(k);
	return k;
}

/* PKCS#1 RSAPrivateKey DER of an OpenSSL key */
static size_t
priv_der(EVP_PKEY *k, uint8_t *out, size_t cap)
{
	unsigned char *der = NULL;
	int n = i2d_PrivateKey(k, &der);

	ck_assert_int_gt(n, 0);
	ck_assert_uint_le((size_t)n, cap);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	return (size_t)n;
}

static size_t
spki_der(EVP_PKEY *k, uint8_t *out, size_t cap)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	ck_assert_int_gt(n, 0);
	ck_assert_uint_le((size_t)n, cap);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	return (size_t)n;
}

static void
pub_from_ossl(EVP_PKEY *k, struct fw_rsa_pub *pub)
{
	BIGNUM *n = NULL;
	uint8_t nb[256];
	int len;

	ck_assert(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n));
	len = BN_bn2bin(n, nb);
	ck_assert_int_eq(fw_rsa_pub_init(pub, nb, (size_t)len, 65537), 0);
	BN_free(n);
}

static size_t
ossl_encrypt(EVP_PKEY *k, const uint8_t *in, size_t len, uint8_t *out,
	     size_t cap)
{
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k, NULL);
	size_t outlen = cap;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(EVP_PKEY_encrypt_init(x), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_encrypt(x, out, &outlen, in, len), 1);
	EVP_PKEY_CTX_free(x);
	return outlen;
}

static int
ossl_decrypt(EVP_PKEY *k, const uint8_t *in, size_t len, uint8_t *out,
	     size_t *outlen)
{
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k, NULL);
	int r;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(EVP_PKEY_decrypt_init(x), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING), 1);
	r = EVP_PKEY_decrypt(x, out, outlen, in, len);
	EVP_PKEY_CTX_free(x);
	return r;
}

/* Raw PKCS#1 type-1 signature, no DigestInfo, as a Particle server makes */
static size_t
ossl_sign_raw(EVP_PKEY *k, const uint8_t *in, size_t len, uint8_t *out,
	      size_t cap)
{
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k, NULL);
	size_t outlen = cap;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(EVP_PKEY_sign_init(x), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_sign(x, out, &outlen, in, len), 1);
	EVP_PKEY_CTX_free(x);
	return outlen;
}

START_TEST(test_fw_bn_roundtrip)
{
	static const uint8_t v[5] = {0x00, 0x00, 0x01, 0x02, 0x03};
	uint8_t out[8], big[257];
	struct fw_bn a;

	ck_assert_int_eq(fw_bn_decode(&a, v, sizeof(v)), 0);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_uint_eq(a.v[0], 0x010203);
	ck_assert_uint_eq(fw_bn_bits(&a), 17);
	ck_assert_int_eq(fw_bn_encode(&a, out, 3), 0);
	ck_assert_mem_eq(out, v + 2, 3);
	ck_assert_int_eq(fw_bn_encode(&a, out, 2), FW_ERR_TOO_BIG);
	memset(big, 0xff, sizeof(big));
	ck_assert_int_eq(fw_bn_decode(&a, big, sizeof(big)), FW_ERR_TOO_BIG);
	big[0] = 0;
	ck_assert_int_eq(fw_bn_decode(&a, big, sizeof(big)), 0);
	ck_assert_uint_eq(fw_bn_bits(&a), 2048);
}
END_TEST

START_TEST(test_fw_bn_modexp_small)
{
	/* 4^13 mod 497 = 445; 3^0 mod 7 = 1; even modulus rejected */
	uint8_t b = 4, e = 13, m[2] = {0x01, 0xf1}, out[2];
	struct fw_bn bb, eb, mb, r;

	fw_bn_decode(&bb, &b, 1);
	fw_bn_decode(&eb, &e, 1);
	fw_bn_decode(&mb, m, 2);
	ck_assert_int_eq(fw_bn_modexp(&r, &bb, &eb, &mb), 0);
	fw_bn_encode(&r, out, 2);
	ck_assert_uint_eq(out[0] * 256 + out[1], 445);
	e = 0;
	fw_bn_decode(&eb, &e, 1);
	ck_assert_int_eq(fw_bn_modexp(&r, &bb, &eb, &mb), 0);
	fw_bn_encode(&r, out, 2);
	ck_assert_uint_eq(out[0] * 256 + out[1], 1);
	m[1] = 0xf0;
	fw_bn_decode(&mb, m, 2);
	ck_assert_int_eq(fw_bn_modexp(&r, &bb, &eb, &mb), FW_ERR_INVAL);
	/* base >= modulus */
	m[0] = 0;
	m[1] = 3;
	fw_bn_decode(&mb, m, 2);
	ck_assert_int_eq(fw_bn_modexp(&r, &bb, &eb, &mb), FW_ERR_INVAL);
}
END_TEST

START_TEST(test_fw_bn_modexp_random)
{
	/* against BN_mod_exp for odd moduli of every size up to 2048 bits */
	uint8_t mb[256], bb[256], eb[64], out[256], ref[256];
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *m = BN_new(), *b = BN_new(), *e = BN_new(), *r = BN_new();
	struct fw_bn fm, fb, fe, fr;
	size_t mlen, elen;
	int i;

	ck_assert_ptr_nonnull(ctx);
	rng_seed(0xb16);
	for (i = 0; i < 120; i++) {
		mlen = 1 + (size_t)i * 255 / 119;
		elen = 1 + rng_byte() % sizeof(eb);
		rng_fill(mb, mlen);
		mb[0] |= 0x80;
		mb[mlen - 1] |= 1;
		if (mlen == 1)
			mb[0] |= 0x03; /* m > 1 */
		rng_fill(bb, mlen);
		rng_fill(eb, elen);
		ck_assert_ptr_nonnull(BN_bin2bn(mb, (int)mlen, m));
		ck_assert_ptr_nonnull(BN_bin2bn(bb, (int)mlen, b));
		ck_assert_ptr_nonnull(BN_bin2bn(eb, (int)elen, e));
		ck_assert(BN_mod(b, b, m, ctx));
		ck_assert(BN_mod_exp(r, b, e, m, ctx));
		ck_assert_int_ge(BN_bn2binpad(r, ref, (int)mlen), 0);
		ck_assert_int_ge(BN_bn2binpad(b, bb, (int)mlen), 0);

		ck_assert_int_eq(fw_bn_decode(&fm, mb, mlen), 0);
		ck_assert_int_eq(fw_bn_decode(&fb, bb, mlen), 0);
		ck_assert_int_eq(fw_bn_decode(&fe, eb, elen), 0);
		ck_assert_int_eq(fw_bn_modexp(&fr, &fb, &fe, &fm), 0);
		ck_assert_int_eq(fw_bn_encode(&fr, out, mlen), 0);
		ck_assert_mem_eq(out, ref, mlen);
	}
	BN_free(m);
	BN_free(b);
	BN_free(e);
	BN_free(r);
	BN_CTX_free(ctx);
}
END_TEST

START_TEST(test_fw_rsa_decrypt_openssl_1024)
{
	EVP_PKEY *k = gen_rsa(1024);
	uint8_t der[1300], msg[117], ct[128], out[128];
	struct fw_rsa_priv priv;
	size_t dlen, clen, olen, mlen;
	int i;

	dlen = priv_der(k, der, sizeof(der));
	ck_assert_int_eq(fw_rsa_priv_decode(&priv, der, dlen), 0);
	ck_assert_uint_eq(priv.len, 128);
	rng_seed(0xdec);
	for (i = 0; i < 8; i++) {
		mlen = i == 0 ? 117 : (i == 1 ? 0 : 40);
		rng_fill(msg, mlen);
		clen = ossl_encrypt(k, msg, mlen, ct, sizeof(ct));
		ck_assert_uint_eq(clen, 128);
		ck_assert_int_eq(fw_rsa_decrypt(&priv, ct, clen, out,
						sizeof(out), &olen),
				 0);
		ck_assert_uint_eq(olen, mlen);
		ck_assert_mem_eq(out, msg, mlen);
	}
	/* too small an output buffer, a wrong length, a corrupt block */
	ck_assert_int_eq(fw_rsa_decrypt(&priv, ct, clen, out, 39, &olen),
			 FW_ERR_TOO_BIG);
	ck_assert_int_eq(
		fw_rsa_decrypt(&priv, ct, 127, out, sizeof(out), &olen),
		FW_ERR_INVAL);
	ct[5] ^= 0x10;
	ck_assert_int_eq(
		fw_rsa_decrypt(&priv, ct, clen, out, sizeof(out), &olen),
		FW_ERR_CRYPTO);
	memset(ct, 0xff, sizeof(ct)); /* >= n */
	ck_assert_int_eq(
		fw_rsa_decrypt(&priv, ct, clen, out, sizeof(out), &olen),
		FW_ERR_CRYPTO);
	fw_rsa_priv_cleanup(&priv);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_fw_rsa_encrypt_openssl_2048)
{
	EVP_PKEY *k = gen_rsa(2048);
	uint8_t spki[400], msg[245], ct[256], out[256];
	struct fw_rsa_pub pub, pub2;
	size_t slen, olen, mlen;
	int i, calls = 0;

	slen = spki_der(k, spki, sizeof(spki));
	ck_assert_uint_eq(slen, FW_RSA_SERVER_SPKI_LEN);
	ck_assert_int_eq(fw_rsa_pub_decode_server(&pub, spki, slen), 0);
	ck_assert_uint_eq(pub.len, 256);
	pub_from_ossl(k, &pub2);
	ck_assert_int_eq(fw_bn_cmp(&pub.n, &pub2.n), 0);

	rng_seed(0xe2c);
	for (i = 0; i < 6; i++) {
		mlen = i == 0 ? 245 : (i == 1 ? 214 : rng_byte());
		rng_fill(msg, mlen);
		ck_assert_int_eq(fw_rsa_encrypt(&pub, msg, mlen, ct, 256,
						test_random, &calls),
				 0);
		olen = sizeof(out);
		ck_assert_int_eq(ossl_decrypt(k, ct, 256, out, &olen), 1);
		ck_assert_uint_eq(olen, mlen);
		ck_assert_mem_eq(out, msg, mlen);
	}
	ck_assert_int_gt(calls, 6);
	ck_assert_int_eq(
		fw_rsa_encrypt(&pub, msg, 246, ct, 256, test_random, NULL),
		FW_ERR_TOO_BIG);
	ck_assert_int_eq(
		fw_rsa_encrypt(&pub, msg, 10, ct, 255, test_random, NULL),
		FW_ERR_INVAL);
	ck_assert_int_eq(
		fw_rsa_encrypt(&pub, msg, 10, ct, 256, failing_random, NULL),
		FW_ERR_IO);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_fw_rsa_verify_openssl_2048)
{
	EVP_PKEY *k = gen_rsa(2048);
	uint8_t msg[20], sig[256];
	struct fw_rsa_pub pub;
	size_t slen;

	pub_from_ossl(k, &pub);
	rng_seed(0x519);
	rng_fill(msg, sizeof(msg));
	slen = ossl_sign_raw(k, msg, sizeof(msg), sig, sizeof(sig));
	ck_assert_uint_eq(slen, 256);
	ck_assert_int_eq(fw_rsa_verify(&pub, sig, slen, msg, sizeof(msg)), 0);
	/* another message, a shorter message, a tampered signature */
	msg[19] ^= 1;
	ck_assert_int_eq(fw_rsa_verify(&pub, sig, slen, msg, sizeof(msg)),
			 FW_ERR_CRYPTO);
	msg[19] ^= 1;
	ck_assert_int_eq(fw_rsa_verify(&pub, sig, slen, msg + 1, 19),
			 FW_ERR_CRYPTO);
	sig[100] ^= 0x01;
	ck_assert_int_eq(fw_rsa_verify(&pub, sig, slen, msg, sizeof(msg)),
			 FW_ERR_CRYPTO);
	ck_assert_int_eq(fw_rsa_verify(&pub, sig, 255, msg, sizeof(msg)),
			 FW_ERR_INVAL);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_fw_rsa_priv_decode_malformed)
{
	EVP_PKEY *k = gen_rsa(1024);
	uint8_t der[1300], bad[1300];
	struct fw_rsa_priv priv;
	size_t dlen, i;

	dlen = priv_der(k, der, sizeof(der));
	/* every truncation fails cleanly */
	for (i = 0; i < dlen; i++)
		ck_assert_int_ne(fw_rsa_priv_decode(&priv, der, i), 0);
	/* wrong outer tag, wrong version, trailing garbage */
	memcpy(bad, der, dlen);
	bad[0] = 0x31;
	ck_assert_int_eq(fw_rsa_priv_decode(&priv, bad, dlen),
			 FW_ERR_MALFORMED);
	memcpy(bad, der, dlen);
	bad[6] = 1;
	ck_assert_int_eq(fw_rsa_priv_decode(&priv, bad, dlen),
			 FW_ERR_MALFORMED);
	/* every single-byte flip either parses or fails, never crashes */
	for (i = 0; i < dlen; i++) {
		memcpy(bad, der, dlen);
		bad[i] ^= 0xa5;
		(void)fw_rsa_priv_decode(&priv, bad, dlen);
	}
	ck_assert_int_eq(fw_rsa_priv_decode(&priv, der, dlen), 0);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_fw_rsa_pub_decode_server_malformed)
{
	size_t len;
	uint8_t *der = read_file("server_pub.der", &len);
	struct fw_rsa_pub pub;

	ck_assert_uint_eq(len, 294);
	ck_assert_int_eq(fw_rsa_pub_decode_server(&pub, der, len), 0);
	ck_assert_int_eq(fw_rsa_pub_decode_server(&pub, der, len - 1),
			 FW_ERR_MALFORMED);
	der[2] ^= 1;
	ck_assert_int_eq(fw_rsa_pub_decode_server(&pub, der, len),
			 FW_ERR_MALFORMED);
	der[2] ^= 1;
	der[291] = 0x03; /* e = 3 instead of 65537 */
	ck_assert_int_eq(fw_rsa_pub_decode_server(&pub, der, len),
			 FW_ERR_MALFORMED);
	free(der);
}
END_TEST

/* ---- the recorded Device OS 0.7.0 handshake, device side ----------------- */

static void
load_device_key(struct fw_rsa_priv *priv, uint8_t *spki_out, size_t *spki_len)
{
	char *path = data_path("device_key.pem");
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;
	uint8_t der[1300];
	size_t dlen;

	ck_assert_ptr_nonnull(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(k);
	dlen = priv_der(k, der, sizeof(der));
	ck_assert_int_eq(fw_rsa_priv_decode(priv, der, dlen), 0);
	if (spki_out != NULL)
		*spki_len = spki_der(k, spki_out, 400);
	EVP_PKEY_free(k);
}

START_TEST(test_fw_rsa_recorded_handshake)
{
	static const uint8_t want_key[16] = {0x7a, 0x23, 0xd8, 0x64, 0xfd, 0xec,
					     0xb6, 0x56, 0xdb, 0x05, 0x93, 0x98,
					     0x70, 0xf2, 0xf2, 0x17};
	static const uint8_t want_iv[16] = {0x72, 0xb9, 0xad, 0xe2, 0x1e, 0x6a,
					    0x07, 0x12, 0x67, 0x71, 0x11, 0x16,
					    0x0f, 0xa9, 0x4a, 0x09};
	static const uint8_t want_salt[8] = {0x8a, 0x85, 0x0e, 0x85,
					     0x71, 0xcf, 0x4f, 0x65};
	static uint8_t s2d[8192];
	uint8_t session[128], hmac[20], spki[400], pubder[162];
	struct fw_rsa_priv priv;
	struct fw_rsa_pub server;
	uint8_t *sder;
	size_t n, slen, olen, spki_len;

	n = jsonl_stream("tinker.jsonl", "s2d", s2d, sizeof(s2d));
	ck_assert_uint_ge(n, 40 + 384);
	load_device_key(&priv, spki, &spki_len);
	sder = read_file("server_pub.der", &slen);
	ck_assert_int_eq(fw_rsa_pub_decode_server(&server, sder, slen), 0);

	/* the device's own public key as it sends it in step 2 */
	ck_assert_int_eq(fw_rsa_priv_encode_pub(&priv, pubder), 0);
	ck_assert_uint_eq(spki_len, 162);
	ck_assert_mem_eq(pubder, spki, 162);

	/* step 3: 128-byte RSA block, then 256-byte signature */
	ck_assert_int_eq(fw_rsa_decrypt(&priv, s2d + 40, 128, session,
					sizeof(session), &olen),
			 0);
	ck_assert_uint_eq(olen, 40);
	ck_assert_mem_eq(session, want_key, 16);
	ck_assert_mem_eq(session + 16, want_iv, 16);
	ck_assert_mem_eq(session + 32, want_salt, 8);
	fw_sha1_hmac(session, 40, s2d + 40, 128, hmac);
	ck_assert_int_eq(fw_rsa_verify(&server, s2d + 40 + 128, 256, hmac, 20),
			 0);
	hmac[0] ^= 1;
	ck_assert_int_eq(fw_rsa_verify(&server, s2d + 40 + 128, 256, hmac, 20),
			 FW_ERR_CRYPTO);
	fw_rsa_priv_cleanup(&priv);
	free(sder);
}
END_TEST

START_TEST(test_fw_aes_chan_recorded_frames)
{
	/* The first server frame after the handshake is its Hello: NON POST
	 * "h", mid 321 (tinker.decoded.txt). Decrypt it and the next one. */
	static const uint8_t key[16] = {0x7a, 0x23, 0xd8, 0x64, 0xfd, 0xec,
					0xb6, 0x56, 0xdb, 0x05, 0x93, 0x98,
					0x70, 0xf2, 0xf2, 0x17};
	static const uint8_t iv[16] = {0x72, 0xb9, 0xad, 0xe2, 0x1e, 0x6a,
				       0x07, 0x12, 0x67, 0x71, 0x11, 0x16,
				       0x0f, 0xa9, 0x4a, 0x09};
	static uint8_t s2d[8192], d2s[8192];
	struct fw_aes_chan rx, dev;
	size_t n, off, len, plen;

	n = jsonl_stream("tinker.jsonl", "s2d", s2d, sizeof(s2d));
	fw_aes_chan_init(&rx, key, iv);
	off = 40 + 384;
	ck_assert_uint_ge(n, off + 2);
	len = (size_t)s2d[off] << 8 | s2d[off + 1];
	ck_assert_uint_eq(len, 16);
	ck_assert_int_eq(fw_aes_chan_open(&rx, s2d + off + 2, len, &plen), 0);
	/* 50 02 01 41 b1 68: NON POST, mid 0x0141 = 321, Uri-Path "h" */
	ck_assert_uint_eq(plen, 6);
	ck_assert_uint_eq(s2d[off + 2], 0x50);
	ck_assert_uint_eq(s2d[off + 3], 0x02);
	ck_assert_uint_eq(s2d[off + 4] << 8 | s2d[off + 5], 321);
	off += 2 + len;
	len = (size_t)s2d[off] << 8 | s2d[off + 1];
	ck_assert_int_eq(fw_aes_chan_open(&rx, s2d + off + 2, len, &plen), 0);
	ck_assert_uint_eq(s2d[off + 2], 0x61); /* ACK, token length 1 */

	/* device direction: its Hello, mid 34187 = salt LE + 1 */
	n = jsonl_stream("tinker.jsonl", "d2s", d2s, sizeof(d2s));
	fw_aes_chan_init(&dev, key, iv);
	off = 256;
	len = (size_t)d2s[off] << 8 | d2s[off + 1];
	ck_assert_int_eq(fw_aes_chan_open(&dev, d2s + off + 2, len, &plen), 0);
	ck_assert_uint_eq(plen, 15);
	ck_assert_uint_eq(d2s[off + 4] << 8 | d2s[off + 5], 34187);
}
END_TEST

static Suite *
fw_crypto_suite(void)
{
	Suite *s = suite_create("fw_crypto");
	TCase *tc;

	tc = tcase_create("sha1");
	tcase_add_test(tc, test_fw_sha1_vectors);
	tcase_add_test(tc, test_fw_sha1_random);
	tcase_add_test(tc, test_fw_sha1_hmac_random);
	tcase_add_test(tc, test_fw_sha1_hmac_rfc2202);
	suite_add_tcase(s, tc);

	tc = tcase_create("aes");
	tcase_add_test(tc, test_fw_aes128_fips197);
	tcase_add_test(tc, test_fw_aes128_cbc_random);
	tcase_add_test(tc, test_fw_aes_chan_chaining);
	tcase_add_test(tc, test_fw_aes_chan_errors);
	tcase_add_test(tc, test_fw_aes_chan_recorded_frames);
	suite_add_tcase(s, tc);

	tc = tcase_create("crc32");
	tcase_add_test(tc, test_fw_crc32_vectors);
	suite_add_tcase(s, tc);

	tc = tcase_create("bn");
	tcase_add_test(tc, test_fw_bn_roundtrip);
	tcase_add_test(tc, test_fw_bn_modexp_small);
	tcase_add_test(tc, test_fw_bn_modexp_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("rsa");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fw_rsa_decrypt_openssl_1024);
	tcase_add_test(tc, test_fw_rsa_encrypt_openssl_2048);
	tcase_add_test(tc, test_fw_rsa_verify_openssl_2048);
	tcase_add_test(tc, test_fw_rsa_priv_decode_malformed);
	tcase_add_test(tc, test_fw_rsa_pub_decode_server_malformed);
	tcase_add_test(tc, test_fw_rsa_recorded_handshake);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fw_crypto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
