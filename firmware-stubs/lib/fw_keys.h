/* SPDX-License-Identifier: MIT */
/*
 * The in-house implementation of the port's crypto seam (port.h): the
 * device's RSA-1024 private key and the server's RSA-2048 public key,
 * parsed once from their provisioned DER forms, used by fw_rsa.
 */
#ifndef FW_KEYS_H
#define FW_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "fw_rsa.h"
#include "port.h"

struct fw_keys {
	struct fw_rsa_pub server;  /* from the 294-byte SPKI */
	struct fw_rsa_priv device; /* from the PKCS#1 DER (secret) */
	fw_rsa_random_cb rnd;	   /* padding randomness */
	void *rnd_ctx;		   /* its first argument */
};

/** Seam operations; their ctx is a struct fw_keys *. */
extern const struct port_crypto fw_keys_crypto;

/**
 * Parse the provisioned keys.
 * @param k result (caller storage; holds the private key, wipe with
 *          fw_keys_cleanup)
 * @param server_spki 294-byte server public key DER (borrowed)
 * @param device_der device PKCS#1 RSAPrivateKey DER (borrowed)
 * @param rnd random source for encryption padding, e.g. a wrapper of the
 *            port's random; rnd_ctx is passed to it
 * @return 0, FW_ERR_MALFORMED or FW_ERR_TOO_BIG (bad keys), FW_ERR_INVAL
 *         (device key not 1024 bits with e = 65537)
 */
int fw_keys_init(struct fw_keys *k, const uint8_t *server_spki,
		 size_t server_len, const uint8_t *device_der,
		 size_t device_len, fw_rsa_random_cb rnd, void *rnd_ctx);

/**
 * Wipe the keys.
 */
void fw_keys_cleanup(struct fw_keys *k);

#endif
