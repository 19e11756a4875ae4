/* SPDX-License-Identifier: MIT */
/*
 * The RSA floor of benchmark B1: the two RSA-2048 private operations a
 * crypto worker does per handshake, made the way src/crypto.c makes them
 * (one EVP_PKEY_CTX per operation, initialised once and reused; PKCS#1
 * v1.5, blinding on), timed in thread CPU beside a raw private operation
 * (no padding), which is what `openssl speed rsa2048` signs per op.
 *   rsa_ops KEY.pem [N]   (N operations of each kind, 3 rounds)
 * Run two at once to see what a busy sibling vCPU costs.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static double
cpu_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void
die(const char *what)
{
	fprintf(stderr, "rsa_ops: %s failed\n", what);
	exit(1);
}

static EVP_PKEY_CTX *
op_ctx(EVP_PKEY *k, int sign, int pad)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);

	if (c == NULL ||
	    (sign ? EVP_PKEY_sign_init(c) : EVP_PKEY_decrypt_init(c)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, pad) != 1) {
		fprintf(stderr, "rsa_ops: context set-up failed\n");
		exit(1);
	}
	return c;
}

int
main(int argc, char **argv)
{
	unsigned char ct[256], pt[256], sig[256], mac[20], b[32];
	EVP_PKEY_CTX *enc, *dec, *sgn, *raw;
	EVP_PKEY *k;
	FILE *f;
	long n_ops;
	size_t n;
	double t0, dec_us, sgn_us, raw_us, rnd_us;

	if (argc < 2 || (f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "usage: rsa_ops KEY.pem [N]\n");
		return 2;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	n_ops = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	if (k == NULL || EVP_PKEY_get_size(k) != (int)sizeof(ct) ||
	    n_ops <= 0) {
		fprintf(stderr, "rsa_ops: need an RSA-2048 key, N > 0\n");
		return 2;
	}
	enc = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	memset(pt, 7, 200);
	n = sizeof(ct);
	if (enc == NULL || EVP_PKEY_encrypt_init(enc) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(enc, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(enc, ct, &n, pt, 200) != 1)
		die("encrypting the test message");
	dec = op_ctx(k, 0, RSA_PKCS1_PADDING);
	sgn = op_ctx(k, 1, RSA_PKCS1_PADDING);
	raw = op_ctx(k, 0, RSA_NO_PADDING);
	memset(mac, 3, sizeof(mac));
	for (int round = 0; round < 3; round++) {
		t0 = cpu_us();
		for (long i = 0; i < n_ops; i++) {
			n = sizeof(pt);
			if (EVP_PKEY_decrypt(dec, pt, &n, ct, sizeof(ct)) != 1)
				die("decrypt");
		}
		dec_us = (cpu_us() - t0) / (double)n_ops;
		t0 = cpu_us();
		for (long i = 0; i < n_ops; i++) {
			n = sizeof(sig);
			if (EVP_PKEY_sign(sgn, sig, &n, mac, sizeof(mac)) != 1)
				die("sign");
		}
		sgn_us = (cpu_us() - t0) / (double)n_ops;
		t0 = cpu_us();
		for (long i = 0; i < n_ops; i++) {
			n = sizeof(pt);
			if (EVP_PKEY_decrypt(raw, pt, &n, ct, sizeof(ct)) != 1)
				die("raw private operation");
		}
		raw_us = (cpu_us() - t0) / (double)n_ops;
		t0 = cpu_us();
		for (long i = 0; i < n_ops; i++)
			if (RAND_bytes(b, sizeof(b)) != 1)
				die("RAND_bytes");
		rnd_us = (cpu_us() - t0) / (double)n_ops;
		printf("decrypt %.1f us, sign %.1f us (handshake pair %.1f), "
		       "raw private op %.1f us, RAND_bytes(32) %.2f us\n",
		       dec_us, sgn_us, dec_us + sgn_us, raw_us, rnd_us);
	}
	EVP_PKEY_CTX_free(enc);
	EVP_PKEY_CTX_free(dec);
	EVP_PKEY_CTX_free(sgn);
	EVP_PKEY_CTX_free(raw);
	EVP_PKEY_free(k);
	return 0;
}
