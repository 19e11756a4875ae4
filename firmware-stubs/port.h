/* SPDX-License-Identifier: MIT */
/*
 * The seam between the portable device library (lib/) and a platform.
 * A port fills one struct port per device: network (non-blocking TCP to
 * the cloud), a monotonic millisecond clock, random bytes, a flash area
 * for OTA, and the handshake's RSA operations. Everything is reached
 * through the struct (no global functions), so one process can run
 * thousands of devices (the posix simulator) while the nRF52840 port has
 * exactly one. Calls never block; the library polls.
 */
#ifndef FW_PORT_H
#define FW_PORT_H

#include <stddef.h>
#include <stdint.h>

/*
 * The RSA half of the handshake (protocol.md §2.3). The nRF52840 port uses
 * the in-house code (lib/fw_keys.h: fw_keys_crypto); the posix port can
 * use OpenSSL so that thousands of handshakes stay cheap. AES, SHA-1 and
 * HMAC are always the library's own: they are cheap and portable.
 * Every function returns 0 or a negative FW_ERR_* code.
 */
struct port_crypto {
	/* Step 2: RSAES-PKCS1-v1_5 encrypt in (214 bytes) to the server's
	 * 2048-bit key; out gets exactly outlen (256) bytes. */
	int (*server_encrypt)(void *ctx, const uint8_t *in, size_t len,
			      uint8_t *out, size_t outlen);
	/* Step 3: RSAES-PKCS1-v1_5 decrypt the 128-byte block with the
	 * device key; *outlen = plaintext length (40 expected). */
	int (*device_decrypt)(void *ctx, const uint8_t *in, size_t len,
			      uint8_t *out, size_t cap, size_t *outlen);
	/* Step 3: check a raw PKCS#1 type-1 signature (no DigestInfo) over
	 * msg with the server key; 0 only if it verifies. */
	int (*server_verify)(void *ctx, const uint8_t *sig, size_t siglen,
			     const uint8_t *msg, size_t mlen);
	/* Step 2: the device's 162-byte DER SubjectPublicKeyInfo. */
	int (*device_pubkey)(void *ctx, uint8_t *out, size_t cap,
			     size_t *outlen);
};

/* Reset kinds (spark/device/reset data, §3.8; OTA completion §5.7). */
enum port_reset {
	PORT_RESET_REBOOT = 0,	  /* "reboot" */
	PORT_RESET_SAFE_MODE = 1, /* "safe mode": reboot without the app */
	PORT_RESET_DFU = 2,	  /* "dfu" */
	PORT_RESET_NETWORK = 3,	  /* "network": reset the link only */
	PORT_RESET_OTA = 4,	  /* an update was installed */
};

struct port {
	void *ctx; /* passed to every function below; owned by the port */

	/* Start or continue connecting to the cloud: 0 once connected,
	 * FW_ERR_AGAIN while in progress, another negative code on
	 * failure. Called again after net_close to reconnect. */
	int (*net_connect)(void *ctx);
	/* Queue bytes: returns how many were taken (0 = would block), or a
	 * negative code when the connection is gone. */
	int (*net_send)(void *ctx, const uint8_t *buf, size_t len);
	/* Read up to cap bytes: > 0 bytes read, 0 = nothing yet, negative
	 * when the connection is closed or failed. Never reads past cap. */
	int (*net_recv)(void *ctx, uint8_t *buf, size_t cap);
	/* Drop the connection (no-op when not connected). */
	void (*net_close)(void *ctx);

	/* Monotonic milliseconds; wraps at 2^32. */
	uint32_t (*millis)(void *ctx);
	/* Fill buf with unpredictable bytes: 0 or a negative code. */
	int (*random)(void *ctx, uint8_t *buf, size_t len);

	/* OTA scratch area, offsets from its start: 0 or a negative code. */
	int (*flash_read)(void *ctx, uint32_t off, uint8_t *buf, size_t len);
	int (*flash_write)(void *ctx, uint32_t off, const uint8_t *buf,
			   size_t len);
	int (*flash_erase)(void *ctx, uint32_t off, size_t len);
	uint32_t flash_size; /* bytes in the OTA area */

	/* Optional: reset the system (PORT_RESET_*). A microcontroller port
	 * does not return; when NULL, or when it returns, the library closes
	 * the connection and reconnects, which is a reset for a simulator. */
	void (*system_reset)(void *ctx, int mode);

	const struct port_crypto *crypto; /* handshake RSA operations */
	void *crypto_ctx;		  /* their first argument */
};

#endif
