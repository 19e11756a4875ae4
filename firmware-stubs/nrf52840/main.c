/* SPDX-License-Identifier: MIT */
/*
 * nRF52840 stub application: load the provisioned keys and device ID from
 * the last flash page, then run the device library's poll loop forever,
 * sleeping between SysTick interrupts. With blank provisioning it idles.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "fw_device.h"
#include "fw_keys.h"
#include "hal.h"

#define PLATFORM_ID 6 /* reports as a Photon-class TCP device */

static struct port port;
static struct fw_keys keys;
static struct fw_device dev;

static const char describe[] = "{\"f\":[],\"v\":{},\"p\":6,\"m\":[]}";

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
	struct fw_device_config cfg;
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
	memcpy(cfg.id, prov + HAL_PROV_DEVICE_ID, FW_DEVICE_ID_LEN);
	cfg.product_id = PLATFORM_ID;
	cfg.product_version = 0xffff;
	cfg.platform_id = PLATFORM_ID;
	cfg.describe = describe;
	fw_device_init(&dev, &port, &cfg);
	fw_device_start(&dev, hal_millis());
	for (;;) {
		(void)fw_device_step(&dev, hal_millis());
		hal_idle();
	}
}
