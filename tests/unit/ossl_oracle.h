/* SPDX-License-Identifier: MIT */
/*
 * An independent answer to "which public key is this text?" for tests
 * and fuzz targets that check src/crypto_key.c's hand-written decoders
 * (the PEM body and the SPKI DER fast paths). It uses only OpenSSL's
 * generic decoders, none of cinderd's code, so a fast path that took
 * what OpenSSL refuses, or read other bytes, cannot agree with it.
 */
#ifndef CINDER_TEST_OSSL_ORACLE_H
#define CINDER_TEST_OSSL_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

static int
ossl_oracle_no_pass(char *pass, size_t size, size_t *len,
		    const OSSL_PARAM params[], void *arg)
{
	(void)pass;
	(void)size;
	(void)params;
	(void)arg;
	*len = 0;
	return 0; /* never prompt: encrypted keys are refused */
}

/*
 * The RSA key in buf (PEM or DER; a public key, or the public half of a
 * private one), as the SPKI DER i2d_PUBKEY writes, when OpenSSL decodes
 * it and it is what crypto_pubkey_parse() accepts: 1024..2048 bits,
 * e = 65537.
 * @return 0 with *n bytes in der; 1: OpenSSL does not decode it as RSA;
 *     2: RSA of another size or exponent; 3: der too small
 */
static inline int
ossl_oracle_pub_der(const void *buf, size_t len, uint8_t *der, size_t cap,
		    size_t *n)
{
	static const int sel[] = {EVP_PKEY_PUBLIC_KEY, EVP_PKEY_KEYPAIR};
	EVP_PKEY *pk = NULL;
	BIGNUM *e = NULL;
	unsigned char *p;
	int bits, dl, r = 1;
	size_t i;

	*n = 0;
	for (i = 0; i < 2 && pk == NULL; i++) {
		const unsigned char *in = buf;
		size_t left = len;
		OSSL_DECODER_CTX *d = OSSL_DECODER_CTX_new_for_pkey(
			&pk, NULL, NULL, "RSA", sel[i], NULL, NULL);

		if (d != NULL && OSSL_DECODER_CTX_set_passphrase_cb(
					 d, ossl_oracle_no_pass, NULL) == 1)
			(void)OSSL_DECODER_from_data(d, &in, &left);
		OSSL_DECODER_CTX_free(d);
	}
	if (pk == NULL)
		goto out;
	r = 2;
	bits = EVP_PKEY_get_bits(pk);
	if (bits < 1024 || bits > 2048 ||
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
	    !BN_is_word(e, 65537))
		goto out;
	r = 3;
	if ((dl = i2d_PUBKEY(pk, NULL)) <= 0 || (size_t)dl > cap)
		goto out;
	p = der;
	if (i2d_PUBKEY(pk, &p) != dl)
		goto out;
	*n = (size_t)dl;
	r = 0;
out:
	BN_free(e);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return r;
}

#endif
