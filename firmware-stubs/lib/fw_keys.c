/* SPDX-License-Identifier: MIT */
/*
 * Handshake RSA operations over fw_rsa, packaged as a struct port_crypto.
 * The keys are parsed once at start-up; each handshake costs one 2048-bit
 * public operation, one 1024-bit private operation and one 2048-bit
 * verification.
 */
#include "config.h"

#include <string.h>

#include "fw_err.h"
#include "fw_keys.h"

static int
keys_server_encrypt(void *ctx, const uint8_t *in, size_t len, uint8_t *out,
		    size_t outlen)
{
	struct fw_keys *k = ctx;

	return fw_rsa_encrypt(&k->server, in, len, out, outlen, k->rnd,
			      k->rnd_ctx);
}

static int
keys_device_decrypt(void *ctx, const uint8_t *in, size_t len, uint8_t *out,
		    size_t cap, size_t *outlen)
{
	struct fw_keys *k = ctx;

	return fw_rsa_decrypt(&k->device, in, len, out, cap, outlen);
}

static int
keys_server_verify(void *ctx, const uint8_t *sig, size_t siglen,
		   const uint8_t *msg, size_t mlen)
{
	struct fw_keys *k = ctx;

	return fw_rsa_verify(&k->server, sig, siglen, msg, mlen);
}

static int
keys_device_pubkey(void *ctx, uint8_t *out, size_t cap, size_t *outlen)
{
	struct fw_keys *k = ctx;
	int r;

	*outlen = 0;
	if (cap < FW_RSA_DEVICE_SPKI_LEN)
		return FW_ERR_TOO_BIG;
	if ((r = fw_rsa_priv_encode_pub(&k->device, out)) != 0)
		return r;
	*outlen = FW_RSA_DEVICE_SPKI_LEN;
	return 0;
}

const struct port_crypto fw_keys_crypto = {
	.server_encrypt = keys_server_encrypt,
	.device_decrypt = keys_device_decrypt,
	.server_verify = keys_server_verify,
	.device_pubkey = keys_device_pubkey,
};

int
fw_keys_init(struct fw_keys *k, const uint8_t *server_spki, size_t server_len,
	     const uint8_t *device_der, size_t device_len, fw_rsa_random_cb rnd,
	     void *rnd_ctx)
{
	uint8_t spki[FW_RSA_DEVICE_SPKI_LEN];
	int r = FW_ERR_INTERNAL;

	memset(k, 0, sizeof(*k));
	if (rnd == NULL) {
		r = FW_ERR_INVAL;
		goto out;
	}
	if ((r = fw_rsa_pub_decode_server(&k->server, server_spki,
					  server_len)) != 0 ||
	    (r = fw_rsa_priv_decode(&k->device, device_der, device_len)) != 0)
		goto out;
	/* The handshake needs the fixed 162-byte public key form. */
	if ((r = fw_rsa_priv_encode_pub(&k->device, spki)) != 0)
		goto out;
	k->rnd = rnd;
	k->rnd_ctx = rnd_ctx;
	r = 0;
out:
	if (r != 0)
		fw_keys_cleanup(k);
	return r;
}

void
fw_keys_cleanup(struct fw_keys *k)
{
	fw_rsa_priv_cleanup(&k->device);
	memset(k, 0, sizeof(*k));
}
