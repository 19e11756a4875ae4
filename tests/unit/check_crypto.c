/* SPDX-License-Identifier: MIT */
/*
 * Tests for crypto: RSA PKCS#1 v1.5 encrypt/decrypt and raw signatures,
 * HMAC/SHA-256 known answers, passwords, the RNG, the AES channel with IV
 * chaining and strict padding, and both sides of the handshake, including
 * bad sizes, nonces and signatures. Keys and their encodings are tested in
 * check_crypto_key.c; keys come from tests/data/vectors ($top_srcdir, see
 * crypto_test.h).
 */
#include "config.h"

#include <sys/wait.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "crypto_test.h"
#include "err.h"
#include "mutate.h"
#include "xmalloc.h"

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2, i;
	unsigned v;

	ck_assert_uint_le(n, cap);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/*
 * RSA primitives
 */

START_TEST(test_crypto_rsa_roundtrip)
{
	uint8_t msg[100], ct[256], pt[256];
	size_t n = 0, m = 0;

	memset(msg, 0xa5, sizeof(msg));
	ck_assert_int_eq(crypto_rsa_encrypt(server_pub, msg, sizeof(msg), ct,
					    sizeof(ct), &n),
			 0);
	ck_assert_uint_eq(n, 256);
	ck_assert_int_eq(crypto_rsa_decrypt(server, ct, n, pt, sizeof(pt), &m),
			 0);
	ck_assert_uint_eq(m, sizeof(msg));
	ck_assert_mem_eq(pt, msg, sizeof(msg));
	/* Device key: 128-byte blocks. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, msg, 40, ct, sizeof(ct), &n), 0);
	ck_assert_uint_eq(n, 128);
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, 40, &m), 0);
	ck_assert_uint_eq(m, 40);
	ck_assert_mem_eq(pt, msg, 40);
	/* Output buffer exactly too small. */
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, 39, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_uint_eq(m, 0);
	/* Empty plaintext works too. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, NULL, 0, ct, sizeof(ct), &n), 0);
	ck_assert_int_eq(crypto_rsa_decrypt(device, ct, n, pt, sizeof(pt), &m),
			 0);
	ck_assert_uint_eq(m, 0);
}
END_TEST

START_TEST(test_crypto_rsa_bad_input)
{
	uint8_t msg[256], ct[256], pt[256];
	size_t n = 0, m = 0;
	int r;

	memset(msg, 1, sizeof(msg));
	/* 245 is the limit for 2048 bits, 117 for 1024. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(server_pub, msg, 245, ct, sizeof(ct), &n),
		0);
	ck_assert_int_eq(
		crypto_rsa_encrypt(server_pub, msg, 246, ct, sizeof(ct), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, msg, 118, ct, sizeof(ct), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_rsa_encrypt(server_pub, msg, 10, ct, 255, &n),
			 CINDER_ERR_INVAL);
	/* Wrong ciphertext length, public key, NULLs. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(server_pub, msg, 10, ct, sizeof(ct), &n), 0);
	ck_assert_int_eq(
		crypto_rsa_decrypt(server, ct, 255, pt, sizeof(pt), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_decrypt(server_pub, ct, 256, pt, sizeof(pt), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_decrypt(device, ct, 256, pt, sizeof(pt), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_rsa_decrypt(NULL, ct, 256, pt, sizeof(pt), &m),
			 CINDER_ERR_INVAL);
	/* Corrupted ciphertext: an error, or (implicit rejection in newer
	 * OpenSSL) never the original plaintext. */
	ct[100] ^= 0x40;
	r = crypto_rsa_decrypt(server, ct, 256, pt, sizeof(pt), &m);
	ck_assert(r == CINDER_ERR_CRYPTO || m != 10 || memcmp(pt, msg, 10));
	/* All zero and all 0xff (>= modulus) blocks. */
	memset(ct, 0, sizeof(ct));
	ck_assert_int_ne(
		crypto_rsa_decrypt(server, ct, 256, pt, sizeof(pt), &m) == 0 &&
			m == 10 && memcmp(pt, msg, 10) == 0,
		1);
	memset(ct, 0xff, sizeof(ct));
	ck_assert_int_eq(
		crypto_rsa_decrypt(server, ct, 256, pt, sizeof(pt), &m),
		CINDER_ERR_CRYPTO);
}
END_TEST

START_TEST(test_crypto_rsa_sign_raw_roundtrip)
{
	uint8_t mac[20], sig[256], sig2[256], tmp[256];
	size_t n = 0, n2 = 0, m = 0;

	memset(mac, 0x3c, sizeof(mac));
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig,
					     sizeof(sig), &n),
			 0);
	ck_assert_uint_eq(n, 256);
	/* Type-1 padding is deterministic. */
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig2,
					     sizeof(sig2), &n2),
			 0);
	ck_assert_mem_eq(sig, sig2, 256);
	ck_assert_int_eq(
		crypto_rsa_verify_raw(server_pub, mac, sizeof(mac), sig, n), 0);
	ck_assert_int_eq(
		crypto_rsa_verify_raw(server, mac, sizeof(mac), sig, n), 0);
	/* A raw signature is not an encryption: decrypting it must fail. */
	ck_assert_int_eq(
		crypto_rsa_decrypt(server, sig, n, tmp, sizeof(tmp), &m) == 0 &&
			m == 20 && memcmp(tmp, mac, 20) == 0,
		0);
}
END_TEST

START_TEST(test_crypto_rsa_verify_raw_tampered)
{
	uint8_t mac[20], sig[256];
	size_t n = 0;

	memset(mac, 0x3c, sizeof(mac));
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, sizeof(mac), sig,
					     sizeof(sig), &n),
			 0);
	sig[255] ^= 1;
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 20, sig, n),
			 CINDER_ERR_CRYPTO);
	sig[255] ^= 1;
	mac[0] ^= 1;
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 20, sig, n),
			 CINDER_ERR_CRYPTO);
	mac[0] ^= 1;
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 19, sig, n),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, mac, 20, sig, 255),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_rsa_verify_raw(device_pub, mac, 20, sig, n),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_rsa_verify_raw(server_pub, NULL, 20, sig, n),
			 CINDER_ERR_INVAL);
	/* Signing needs a private key and a short enough message. */
	ck_assert_int_eq(
		crypto_rsa_sign_raw(server_pub, mac, 20, sig, sizeof(sig), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_rsa_sign_raw(server, mac, 20, sig, 255, &n),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_sign_raw(device, sig, 118, sig, sizeof(sig), &n),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_rsa_sign_raw(server, mac, 0, sig, sizeof(sig), &n),
		CINDER_ERR_INVAL);
}
END_TEST

/*
 * Hashes, MACs, RNG, memory
 */

START_TEST(test_crypto_hmac_sha1_rfc2202)
{
	uint8_t key[80], out[20], want[20], data[50];

	/* RFC 2202 §3 test case 1. */
	memset(key, 0x0b, 20);
	ck_assert_int_eq(crypto_hmac_sha1(key, 20, "Hi There", 8, out), 0);
	unhex("b617318655057264e28bc0b6fb378c8ef146be00", want, 20);
	ck_assert_mem_eq(out, want, 20);
	/* Test case 2: short key. */
	ck_assert_int_eq(crypto_hmac_sha1("Jefe", 4,
					  "what do ya want for nothing?", 28,
					  out),
			 0);
	unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", want, 20);
	ck_assert_mem_eq(out, want, 20);
	/* Test case 3: 50 bytes of 0xdd under 0xaa * 20. */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	ck_assert_int_eq(crypto_hmac_sha1(key, 20, data, 50, out), 0);
	unhex("125d7342b9ac11cd91a39af48aa17b4f63f175d3", want, 20);
	ck_assert_mem_eq(out, want, 20);
	/* Test case 6: key longer than the block. */
	memset(key, 0xaa, 80);
	ck_assert_int_eq(
		crypto_hmac_sha1(key, 80,
				 "Test Using Larger Than Block-Size Key - "
				 "Hash Key First",
				 54, out),
		0);
	unhex("aa4ae5e15272d00e95705637ce8a3b55ed402112", want, 20);
	ck_assert_mem_eq(out, want, 20);
	ck_assert_int_eq(crypto_hmac_sha1(NULL, 0, NULL, 0, out), 0);
	ck_assert_int_eq(crypto_hmac_sha1(NULL, 3, "x", 1, out),
			 CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_hmac_sha256_rfc4231)
{
	uint8_t key[20], out[32], want[32];

	memset(key, 0x0b, 20);
	ck_assert_int_eq(crypto_hmac_sha256(key, 20, "Hi There", 8, out), 0);
	unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff"
	      "7",
	      want, 32);
	ck_assert_mem_eq(out, want, 32);
}
END_TEST

START_TEST(test_crypto_sha256_known)
{
	uint8_t out[32], want[32];

	ck_assert_int_eq(crypto_sha256("abc", 3, out), 0);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
	      "d",
	      want, 32);
	ck_assert_mem_eq(out, want, 32);
	ck_assert_int_eq(crypto_sha256(NULL, 0, out), 0);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
	      "5",
	      want, 32);
	ck_assert_mem_eq(out, want, 32);
	ck_assert_int_eq(crypto_sha256(NULL, 1, out), CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_password_hash_verify)
{
	char *h1 = NULL, *h2 = NULL, *bad;
	size_t len;

	ck_assert_int_eq(crypto_password_hash("correct horse", &h1), 0);
	ck_assert_ptr_nonnull(h1);
	ck_assert_int_eq(strncmp(h1, "$pbkdf2-sha256$", 15), 0);
	ck_assert_int_eq(crypto_password_verify("correct horse", h1), 0);
	ck_assert_int_eq(crypto_password_verify("correct horsE", h1),
			 CINDER_ERR_AUTH);
	ck_assert_int_eq(crypto_password_verify("", h1), CINDER_ERR_AUTH);
	/* Random salt: the same password hashes differently. */
	ck_assert_int_eq(crypto_password_hash("correct horse", &h2), 0);
	ck_assert_str_ne(h1, h2);
	ck_assert_int_eq(crypto_password_verify("correct horse", h2), 0);

	/* A changed hash character: mismatch, not a parse error. */
	len = strlen(h1);
	bad = xstrdup(h1);
	bad[len - 3] = bad[len - 3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(crypto_password_verify("correct horse", bad),
			 CINDER_ERR_AUTH);
	free(bad);
	free(h2);
	free(h1);
}
END_TEST

START_TEST(test_crypto_password_verify_malformed)
{
	static const char *const bad[] = {
		"",
		"plain",
		"$pbkdf2-sha1$1000$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		/* rounds out of bounds, signed, missing */
		"$pbkdf2-sha256$999$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$99999999$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$-1$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$ 1000$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		/* wrong lengths, bad base64 */
		"$pbkdf2-sha256$1000$AAAA$AAAA",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAA*A==$"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(crypto_password_verify("pw", bad[i]) ==
				      CINDER_ERR_INVAL,
			      "accepted %s", bad[i]);
	ck_assert_int_eq(crypto_password_verify(NULL, "x"), CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_password_verify("x", NULL), CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_crypto_random_fills)
{
	uint8_t a[64], b[64], z[64];

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(z, 0, sizeof(z));
	ck_assert_int_eq(crypto_random(a, sizeof(a)), 0);
	ck_assert_int_eq(crypto_random(b, sizeof(b)), 0);
	/* 2^-512 chance of a false failure. */
	ck_assert_mem_ne(a, b, sizeof(a));
	ck_assert_mem_ne(a, z, sizeof(a));
	ck_assert_int_eq(crypto_random(NULL, 0), 0);
	ck_assert_int_eq(crypto_random(NULL, 1), CINDER_ERR_INVAL);
}
END_TEST

/* Values drawn from the buffer across several refills never repeat and
   are never the wiped zeros; large requests and bad arguments. */
START_TEST(test_crypto_random_public)
{
	enum { N = 3 * CRYPTO_RANDBUF / 40 + 5 };
	static uint8_t v[N][40];
	uint8_t z[40], big[CRYPTO_RANDBUF], mid[2];
	size_t i, j;

	memset(z, 0, sizeof(z));
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(crypto_random_public(v[i], sizeof(v[i])), 0);
		ck_assert_mem_ne(v[i], z, sizeof(z));
		for (j = 0; j < i; j++)
			ck_assert_mem_ne(v[i], v[j], sizeof(v[i]));
	}
	ck_assert_int_eq(crypto_random_public(mid, sizeof(mid)), 0);
	memset(big, 0, sizeof(big));
	ck_assert_int_eq(crypto_random_public(big, sizeof(big)), 0);
	ck_assert_mem_ne(big, v[0], sizeof(v[0]));
	ck_assert_int_eq(crypto_random_public(NULL, 0), 0);
	ck_assert_int_eq(crypto_random_public(NULL, 1), CINDER_ERR_INVAL);
	crypto_thread_cleanup();
	ck_assert_int_eq(crypto_random_public(v[0], sizeof(v[0])), 0);
	ck_assert_mem_ne(v[0], z, sizeof(z));
}
END_TEST

/* A forked child does not hand out the bytes its parent will. */
START_TEST(test_crypto_random_public_fork)
{
	uint8_t a[40], b[40];
	int fds[2], st = 0;
	pid_t pid;

	ck_assert_int_eq(crypto_random_public(a, sizeof(a)), 0); /* filled */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (crypto_random_public(b, sizeof(b)) != 0 ||
		    write(fds[1], b, sizeof(b)) != (ssize_t)sizeof(b))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], b, sizeof(b)), (ssize_t)sizeof(b));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(crypto_random_public(a, sizeof(a)), 0);
	ck_assert_mem_ne(a, b, sizeof(a));
}
END_TEST

START_TEST(test_crypto_mem_eq_and_wipe)
{
	uint8_t a[32], b[32];

	memset(a, 7, sizeof(a));
	memset(b, 7, sizeof(b));
	ck_assert(crypto_mem_eq(a, b, sizeof(a)));
	b[31] = 8;
	ck_assert(!crypto_mem_eq(a, b, sizeof(a)));
	ck_assert(crypto_mem_eq(a, b, 31));
	ck_assert(crypto_mem_eq(a, b, 0));
	crypto_wipe(a, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_mem_eq(a, b, sizeof(a));
	crypto_wipe(NULL, 5);
}
END_TEST

/*
 * Channel
 */

static void
channel_from_hex(struct crypto_channel *ch, const char *key, const char *iv)
{
	uint8_t s[CRYPTO_SESSION_LEN];

	memset(s, 0, sizeof(s));
	unhex(key, s, 16);
	unhex(iv, s + 16, 16);
	crypto_channel_init(ch, s);
}

START_TEST(test_crypto_channel_seal_sp800_38a)
{
	struct crypto_channel ch;
	uint8_t pt[16], ct[32], want[16], back[32];
	size_t n = 0, m = 0;

	/* NIST SP 800-38A F.2.1, first block; PKCS#7 adds a second. */
	channel_from_hex(&ch, "2b7e151628aed2a6abf7158809cf4f3c",
			 "000102030405060708090a0b0c0d0e0f");
	unhex("6bc1bee22e409f96e93d7e117393172a", pt, 16);
	ck_assert_int_eq(crypto_channel_seal(&ch, pt, 16, ct, sizeof(ct), &n),
			 0);
	ck_assert_uint_eq(n, 32);
	unhex("7649abac8119b246cee98e9b12e9197d", want, 16);
	ck_assert_mem_eq(ct, want, 16);
	/* §1.4: the next send IV is the first ciphertext block. */
	ck_assert_mem_eq(ch.send_iv, want, 16);
	ck_assert_mem_ne(ch.send_iv, ct + 16, 16);
	unhex("000102030405060708090a0b0c0d0e0f", want, 16);
	ck_assert_mem_eq(ch.recv_iv, want, 16);
	ck_assert_int_eq(
		crypto_channel_open(&ch, ct, n, back, sizeof(back), &m), 0);
	ck_assert_uint_eq(m, 16);
	ck_assert_mem_eq(back, pt, 16);
	ck_assert_mem_eq(ch.recv_iv, ct, 16);
	crypto_channel_cleanup(&ch);
	memset(want, 0, sizeof(want));
	ck_assert_mem_eq(ch.key, want, 16);
}
END_TEST

START_TEST(test_crypto_channel_chain_roundtrip)
{
	struct crypto_channel a, b;
	uint8_t s[CRYPTO_SESSION_LEN], pt[100], ct[128], back[128];
	size_t len, n = 0, m = 0;

	for (len = 0; len < sizeof(s); len++)
		s[len] = (uint8_t)(len * 7 + 1);
	crypto_channel_init(&a, s);
	crypto_channel_init(&b, s);
	ck_assert_mem_eq(a.salt, s + 32, 8);
	for (len = 0; len <= sizeof(pt); len++) {
		memset(pt, (int)len, sizeof(pt));
		ck_assert_int_eq(
			crypto_channel_seal(&a, pt, len, ct, sizeof(ct), &n),
			0);
		ck_assert_uint_eq(n, crypto_channel_sealed_len(len));
		ck_assert_uint_eq(n % 16, 0);
		ck_assert_uint_gt(n, len);
		ck_assert_int_eq(
			crypto_channel_open(&b, ct, n, back, sizeof(back), &m),
			0);
		ck_assert_uint_eq(m, len);
		ck_assert_mem_eq(back, pt, len);
		ck_assert_mem_eq(a.send_iv, b.recv_iv, 16);
	}
	ck_assert_uint_eq(crypto_channel_sealed_len(0), 16);
	ck_assert_uint_eq(crypto_channel_sealed_len(15), 16);
	ck_assert_uint_eq(crypto_channel_sealed_len(16), 32);
	ck_assert_uint_eq(crypto_channel_sealed_len(767), 768);
}
END_TEST

/*
 * Make a 32-byte ciphertext whose second plaintext block is last16, by
 * sealing 32 bytes and dropping the padding block (CBC truncates freely).
 */
static void
craft(const struct crypto_channel *ch0, const uint8_t last16[16],
      uint8_t ct[48])
{
	struct crypto_channel ch = *ch0;
	uint8_t pt[32];
	size_t n = 0;

	memset(pt, 0x41, 16);
	memcpy(pt + 16, last16, 16);
	ck_assert_int_eq(crypto_channel_seal(&ch, pt, 32, ct, 48, &n), 0);
	ck_assert_uint_eq(n, 48);
}

/* Channels of three sessions opening in turn on one thread (its context
   keyed once per run of one channel's messages): each message is its
   own session's plaintext, and a key that only differs in its last byte
   is a different key. */
START_TEST(test_crypto_channel_interleaved)
{
	enum { NCH = 3 };
	struct crypto_channel tx[NCH], rx[NCH];
	uint8_t s[CRYPTO_SESSION_LEN], pt[40], ct[48], back[48];
	/* which channel sends next: runs of one, two and three */
	static const int order[] = {0, 1, 1, 2, 0, 0, 0, 2, 1, 0, 2, 2};
	size_t i, n = 0, m = 0;
	int c;

	for (c = 0; c < NCH; c++) {
		for (i = 0; i < sizeof(s); i++)
			s[i] = (uint8_t)(i * 11 + 5);
		s[CRYPTO_AES_KEY_LEN - 1] ^=
			(uint8_t)c; /* the key's last byte */
		crypto_channel_init(&tx[c], s);
		crypto_channel_init(&rx[c], s);
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		c = order[i];
		memset(pt, 'a' + c, sizeof(pt));
		pt[0] = (uint8_t)i;
		ck_assert_int_eq(crypto_channel_seal(&tx[c], pt, sizeof(pt), ct,
						     sizeof(ct), &n),
				 0);
		ck_assert_int_eq(crypto_channel_open(&rx[c], ct, n, back,
						     sizeof(back), &m),
				 0);
		ck_assert_uint_eq(m, sizeof(pt));
		ck_assert_mem_eq(back, pt, sizeof(pt));
	}
	/* a message opened by another session's channel is refused (its
	   padding does not check out) or is not the plaintext */
	memset(pt, 'z', sizeof(pt));
	ck_assert_int_eq(
		crypto_channel_seal(&tx[0], pt, sizeof(pt), ct, sizeof(ct), &n),
		0);
	if (crypto_channel_open(&rx[1], ct, n, back, sizeof(back), &m) == 0)
		ck_assert(m != sizeof(pt) || memcmp(back, pt, m) != 0);
	for (c = 0; c < NCH; c++) {
		crypto_channel_cleanup(&tx[c]);
		crypto_channel_cleanup(&rx[c]);
	}
}
END_TEST

/* A busy channel decrypts on its own keyed context: same results. */
START_TEST(test_crypto_channel_busy_cache)
{
	struct crypto_channel a, b;
	uint8_t s[CRYPTO_SESSION_LEN], pt[100], ct[128], back[128], iv[16];
	uint8_t zero16[16] = {0};
	size_t len, n = 0, m = 0, round;

	for (len = 0; len < sizeof(s); len++)
		s[len] = (uint8_t)(len * 5 + 3);
	crypto_channel_init(&a, s);
	crypto_channel_init(&b, s);
	crypto_channel_busy_cache(&b);
	for (round = 0; round < 3; round++)
		for (len = 0; len <= sizeof(pt); len++) {
			memset(pt, (int)(len + round), sizeof(pt));
			ck_assert_int_eq(crypto_channel_seal(&a, pt, len, ct,
							     sizeof(ct), &n),
					 0);
			ck_assert_int_eq(crypto_channel_open(&b, ct, n, back,
							     sizeof(back), &m),
					 0);
			ck_assert_uint_eq(m, len);
			ck_assert_mem_eq(back, pt, len);
			ck_assert_mem_eq(a.send_iv, b.recv_iv, 16);
		}
	/* 303 messages within at most two seconds: it is cached */
	ck_assert_ptr_nonnull(b.rx_ecb);
	/* a bad pad byte (0) is refused, the IV kept, the output wiped */
	craft(&a, zero16, ct);
	memcpy(iv, b.recv_iv, 16);
	ck_assert_int_eq(
		crypto_channel_open(&b, ct, 32, back, sizeof(back), &m),
		CINDER_ERR_CRYPTO);
	ck_assert_mem_eq(b.recv_iv, iv, 16);
	ck_assert_mem_eq(back, zero16, 16);
	crypto_channel_cleanup(&a);
	crypto_channel_cleanup(&b);
}
END_TEST

START_TEST(test_crypto_channel_open_bad_padding)
{
	struct crypto_channel ch;
	uint8_t s[CRYPTO_SESSION_LEN], last[16], ct[48], out[48], iv[16];
	size_t m = 0;
	static const struct {
		uint8_t tail[3]; /* last three plaintext bytes */
		int want;
		size_t len; /* plaintext length when OK */
	} cases[] = {
		{{0x41, 0x41, 0x01}, 0, 31},
		{{0x41, 0x02, 0x02}, 0, 30},
		{{0x03, 0x03, 0x03}, 0, 29},
		{{0x41, 0x41, 0x00}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x41, 0x11}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x41, 0xff}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x41, 0x02}, CINDER_ERR_CRYPTO, 0},
		{{0x41, 0x03, 0x03}, CINDER_ERR_CRYPTO, 0},
		{{0x02, 0x03, 0x03}, CINDER_ERR_CRYPTO, 0},
	};
	size_t i;

	memset(s, 0x5a, sizeof(s));
	crypto_channel_init(&ch, s);
	memcpy(iv, ch.recv_iv, 16);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crypto_channel rx = ch;

		memset(last, 0x41, 16);
		memcpy(last + 13, cases[i].tail, 3);
		craft(&ch, last, ct);
		ck_assert_int_eq(
			crypto_channel_open(&rx, ct, 32, out, sizeof(out), &m),
			cases[i].want);
		if (cases[i].want == 0) {
			ck_assert_uint_eq(m, cases[i].len);
			ck_assert_mem_eq(rx.recv_iv, ct, 16);
		} else {
			/* Failure leaves the IV alone and hides the data. */
			ck_assert_uint_eq(m, 0);
			ck_assert_mem_eq(rx.recv_iv, iv, 16);
			ck_assert_uint_eq(out[0], 0);
		}
	}
	/* A full block of 0x10 is valid: empty plaintext after 16 bytes. */
	memset(last, 0x10, 16);
	craft(&ch, last, ct);
	ck_assert_int_eq(crypto_channel_open(&ch, ct, 32, out, sizeof(out), &m),
			 0);
	ck_assert_uint_eq(m, 16);
}
END_TEST

START_TEST(test_crypto_channel_bad_sizes)
{
	struct crypto_channel ch;
	uint8_t s[CRYPTO_SESSION_LEN], buf[64], out[64];
	size_t m = 7;

	memset(s, 1, sizeof(s));
	memset(buf, 2, sizeof(buf));
	crypto_channel_init(&ch, s);
	ck_assert_int_eq(crypto_channel_open(&ch, buf, 0, out, sizeof(out), &m),
			 CINDER_ERR_INVAL);
	ck_assert_uint_eq(m, 0);
	ck_assert_int_eq(
		crypto_channel_open(&ch, buf, 17, out, sizeof(out), &m),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_channel_open(&ch, buf, 32, out, 31, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(crypto_channel_seal(&ch, buf, 16, out, 31, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(crypto_channel_seal(&ch, buf, 15, out, 15, &m),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(crypto_channel_seal(&ch, NULL, 3, out, 64, &m),
			 CINDER_ERR_INVAL);
	/* IVs untouched by all of that. */
	ck_assert_mem_eq(ch.send_iv, s + 16, 16);
	ck_assert_mem_eq(ch.recv_iv, s + 16, 16);
}
END_TEST

/*
 * Handshake
 */

static const uint8_t dev_id[12] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
				   0xcd, 0xef, 0x01, 0x23, 0x45, 0x67};

START_TEST(test_crypto_handshake_step2_roundtrip)
{
	uint8_t nonce[40], block[256], der[CRYPTO_PUB_DER_MAX];
	size_t der_len = 0;
	struct crypto_step2 st;

	ck_assert_int_eq(crypto_random(nonce, sizeof(nonce)), 0);
	ck_assert_int_eq(
		crypto_key_public_der(device, der, sizeof(der), &der_len), 0);
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      der, der_len, block),
			 0);
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block,
						     sizeof(block), &st),
			 0);
	ck_assert_mem_eq(st.device_id, dev_id, 12);
	ck_assert_uint_eq(st.key_der_len, CRYPTO_DEVICE_PUB_DER_LEN);
	ck_assert_mem_eq(st.key_der, der, der_len);
	/* The original Core library sends no key: 52 bytes. */
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      NULL, 0, block),
			 0);
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block,
						     sizeof(block), &st),
			 0);
	ck_assert_uint_eq(st.key_der_len, 0);
	ck_assert_mem_eq(st.device_id, dev_id, 12);
}
END_TEST

START_TEST(test_crypto_handshake_step2_bad)
{
	uint8_t nonce[40], block[256], plain[245];
	struct crypto_step2 st;

	memset(nonce, 0x11, sizeof(nonce));
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      NULL, 0, block),
			 0);
	/* Wrong nonce (last byte differs). */
	nonce[39] ^= 1;
	ck_assert_int_eq(crypto_handshake_step2_open(server, nonce, block,
						     sizeof(block), &st),
			 CINDER_ERR_CRYPTO);
	ck_assert_uint_eq(st.device_id[0], 0);
	nonce[39] ^= 1;
	/* Wrong sizes and keys. */
	ck_assert_int_eq(
		crypto_handshake_step2_open(server, nonce, block, 255, &st),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_handshake_step2_open(device, nonce, block, 256, &st),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(
		crypto_handshake_step2_open(server_pub, nonce, block, 256, &st),
		CINDER_ERR_INVAL);
	/* Corrupted block. */
	block[7] ^= 0x80;
	ck_assert_int_eq(
		crypto_handshake_step2_open(server, nonce, block, 256, &st),
		CINDER_ERR_CRYPTO);
	/* Plaintext checks. */
	memcpy(plain, nonce, 40);
	memcpy(plain + 40, dev_id, 12);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 51, &st),
			 CINDER_ERR_CRYPTO);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 52, &st),
			 0);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 245, &st),
			 0);
	ck_assert_uint_eq(st.key_der_len, CRYPTO_STEP2_KEY_MAX);
	ck_assert_int_eq(crypto_handshake_step2_parse(nonce, plain, 246, &st),
			 CINDER_ERR_CRYPTO);
	/* Build refuses keys that cannot fit. */
	ck_assert_int_eq(crypto_handshake_step2_build(server_pub, nonce, dev_id,
						      plain, 194, block),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step2_build(device_pub, nonce, dev_id,
						      NULL, 0, block),
			 CINDER_ERR_INVAL);
}
END_TEST

static void
step2_mutant(const uint8_t *buf, size_t len, void *arg)
{
	const uint8_t *nonce = arg;
	struct crypto_step2 st;
	int r = crypto_handshake_step2_parse(nonce, buf, len, &st);

	if (r == 0) {
		ck_assert_uint_ge(len, 52);
		ck_assert_uint_eq(st.key_der_len, len - 52);
		ck_assert_mem_eq(buf, nonce, 40);
	}
}

START_TEST(test_crypto_handshake_step2_parse_mutants)
{
	uint8_t nonce[40], plain[214];
	size_t der_len = 0;

	memset(nonce, 0x22, sizeof(nonce));
	memcpy(plain, nonce, 40);
	memcpy(plain + 40, dev_id, 12);
	ck_assert_int_eq(
		crypto_key_public_der(device, plain + 52, 162, &der_len), 0);
	mutate_run(plain, sizeof(plain), 42, 3000, step2_mutant, nonce);
}
END_TEST

START_TEST(test_crypto_handshake_step3_roundtrip)
{
	uint8_t session[40], got[40], block[384], block2[384];

	ck_assert_int_eq(crypto_random(session, sizeof(session)), 0);
	ck_assert_int_eq(crypto_handshake_step3_build(server, device_pub,
						      session, block),
			 0);
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     sizeof(block), got),
			 0);
	ck_assert_mem_eq(got, session, 40);
	/* Random RSA padding: two blocks for the same session differ. */
	ck_assert_int_eq(crypto_handshake_step3_build(server, device_pub,
						      session, block2),
			 0);
	ck_assert_mem_ne(block, block2, 128);
	ck_assert_int_eq(crypto_handshake_step3_open(device, server, block2,
						     sizeof(block2), got),
			 0);
	ck_assert_mem_eq(got, session, 40);
}
END_TEST

START_TEST(test_crypto_handshake_step3_bad)
{
	uint8_t session[40], got[40], block[384], zero[40];
	struct crypto_key *other = NULL;
	size_t n = 0;

	memset(zero, 0, sizeof(zero));
	memset(session, 0x77, sizeof(session));
	ck_assert_int_eq(crypto_handshake_step3_build(server, device_pub,
						      session, block),
			 0);
	/* Tampered signature. */
	block[300] ^= 4;
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     384, got),
			 CINDER_ERR_CRYPTO);
	ck_assert_mem_eq(got, zero, 40);
	block[300] ^= 4;
	/* Tampered ciphertext: decryption or the HMAC check fails. */
	block[5] ^= 4;
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     384, got),
			 CINDER_ERR_CRYPTO);
	block[5] ^= 4;
	/* Signed by another server. */
	ck_assert_int_eq(crypto_privkey_parse(pkcs8_2048_pem,
					      strlen(pkcs8_2048_pem), &other),
			 0);
	ck_assert_int_eq(
		crypto_handshake_step3_open(device, other, block, 384, got),
		CINDER_ERR_CRYPTO);
	/* Wrong block length, wrong key roles. */
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     383, got),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_open(device_pub, server_pub,
						     block, 384, got),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_open(server, device_pub, block,
						     384, got),
			 CINDER_ERR_INVAL);
	/* A 2048-bit device key does not fit the 384-byte layout. */
	ck_assert_int_eq(
		crypto_handshake_step3_build(server, other, session, block),
		CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_build(device, device_pub,
						      session, block),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(crypto_handshake_step3_build(server_pub, device_pub,
						      session, block),
			 CINDER_ERR_INVAL);
	/* A validly signed block whose ciphertext holds 39 bytes. */
	ck_assert_int_eq(
		crypto_rsa_encrypt(device_pub, session, 39, block, 128, &n), 0);
	ck_assert_int_eq(crypto_handshake_step3_open(device, server_pub, block,
						     384, got),
			 CINDER_ERR_CRYPTO);
	crypto_key_free(other);
}
END_TEST

static Suite *
crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc;

	tc = tcase_create("rsa");
	tcase_add_checked_fixture(tc, load_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_rsa_roundtrip);
	tcase_add_test(tc, test_crypto_rsa_bad_input);
	tcase_add_test(tc, test_crypto_rsa_sign_raw_roundtrip);
	tcase_add_test(tc, test_crypto_rsa_verify_raw_tampered);
	suite_add_tcase(s, tc);

	tc = tcase_create("hash");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_hmac_sha1_rfc2202);
	tcase_add_test(tc, test_crypto_hmac_sha256_rfc4231);
	tcase_add_test(tc, test_crypto_sha256_known);
	tcase_add_test(tc, test_crypto_password_hash_verify);
	tcase_add_test(tc, test_crypto_password_verify_malformed);
	tcase_add_test(tc, test_crypto_random_fills);
	tcase_add_test(tc, test_crypto_random_public);
	tcase_add_test(tc, test_crypto_random_public_fork);
	tcase_add_test(tc, test_crypto_mem_eq_and_wipe);
	suite_add_tcase(s, tc);

	tc = tcase_create("channel");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_channel_seal_sp800_38a);
	tcase_add_test(tc, test_crypto_channel_chain_roundtrip);
	tcase_add_test(tc, test_crypto_channel_open_bad_padding);
	tcase_add_test(tc, test_crypto_channel_busy_cache);
	tcase_add_test(tc, test_crypto_channel_interleaved);
	tcase_add_test(tc, test_crypto_channel_bad_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("handshake");
	tcase_add_checked_fixture(tc, load_keys, free_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crypto_handshake_step2_roundtrip);
	tcase_add_test(tc, test_crypto_handshake_step2_bad);
	tcase_add_test(tc, test_crypto_handshake_step2_parse_mutants);
	tcase_add_test(tc, test_crypto_handshake_step3_roundtrip);
	tcase_add_test(tc, test_crypto_handshake_step3_bad);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(crypto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
