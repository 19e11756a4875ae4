/* SPDX-License-Identifier: MIT */
/*
 * nRF52840 stub application: load the provisioned keys and device ID from
 * the last flash page, register a tinker-like application (four functions
 * over GPIO-less simulated pins, one variable) with the library's
 * application layer (describe, module table, safe mode, OTA into the
 * flash area), then run the poll loop forever, sleeping between SysTick
 * interrupts. With blank provisioning it idles.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "fw_app.h"
#include "fw_keys.h"
#include "hal.h"

#define PLATFORM_ID 6 /* reports as a Photon-class TCP device */

#define SYSTEM_VERSION 1512 /* Device OS 1.5.2 module versions */

static struct port port;
static struct fw_keys keys;
static struct fw_app app;
static struct fw_modules modules;
static int32_t pins[8];
static int32_t uptime;

/* "D0".."D7" -> 0..7, else -1 */
static int
pin(const char *arg)
{
	if (arg[0] != 'D' || arg[1] < '0' || arg[1] > '7')
		return -1;
	return arg[1] - '0';
}

static int
fn_digitalread(const char *arg, void *ctx)
{
	int p = pin(arg);

	(void)ctx;
	return p < 0 ? -1 : pins[p];
}

static int
fn_digitalwrite(const char *arg, void *ctx)
{
	int p = pin(arg);

	(void)ctx;
	if (p < 0 || arg[2] != ',')
		return -1;
	pins[p] = strcmp(arg + 3, "HIGH") == 0;
	return 1;
}

static int
fn_analogread(const char *arg, void *ctx)
{
	return fn_digitalread(arg, ctx);
}

static int
fn_analogwrite(const char *arg, void *ctx)
{
	return fn_digitalwrite(arg, ctx);
}

static int
keys_random(void *ctx, uint8_t *buf, size_t len)
{
	const struct port *p = ctx;

	return p->random(p->ctx, buf, len);
}

/* Length of a DER SEQUENCE with a two-byte length, or 0. */
static size_t
der_len(const uint8_t *p, size_t cap)
{
	size_t n;

	if (p[0] != 0x30 || p[1] != 0x82)
		return 0;
	n = 4 + ((size_t)p[2] << 8 | p[3]);
	return n <= cap ? n : 0;
}

int
main(void)
{
	const uint8_t *prov;
	struct fw_app_config cfg;
	size_t klen;

	hal_port_init(&port);
	prov = hal_provision();
	klen = der_len(prov + HAL_PROV_DEVICE_KEY, HAL_PROV_DEVICE_KEY_MAX);
	if (klen == 0 ||
	    fw_keys_init(&keys, prov + HAL_PROV_SERVER_KEY,
			 FW_RSA_SERVER_SPKI_LEN, prov + HAL_PROV_DEVICE_KEY,
			 klen, keys_random, &port) != 0) {
		for (;;) /* not provisioned */
			hal_idle();
	}
	port.crypto = &fw_keys_crypto;
	port.crypto_ctx = &keys;

	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.dev.id, prov + HAL_PROV_DEVICE_ID, FW_DEVICE_ID_LEN);
	cfg.dev.product_id = PLATFORM_ID;
	cfg.dev.product_version = 0xffff;
	cfg.dev.platform_id = PLATFORM_ID;
	fw_modules_default(&modules, SYSTEM_VERSION, SYSTEM_VERSION, NULL);
	cfg.modules = &modules;
	cfg.updates_enabled = true;
	cfg.fast_ota = true;
	fw_app_init(&app, &port, &cfg);
	(void)fw_app_function(&app, "digitalread", fn_digitalread, NULL);
	(void)fw_app_function(&app, "digitalwrite", fn_digitalwrite, NULL);
	(void)fw_app_function(&app, "analogread", fn_analogread, NULL);
	(void)fw_app_function(&app, "analogwrite", fn_analogwrite, NULL);
	(void)fw_app_variable(&app, "uptime", FW_VAR_INT, &uptime, NULL, NULL);
	fw_app_start(&app, hal_millis());
	for (;;) {
		uint32_t now = hal_millis();

		uptime = (int32_t)(now / 1000u);
		(void)fw_app_step(&app, now);
		hal_idle();
	}
}
