/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the firmware's OTA image check (fw_ota_validate, with the
 * module prefix parser under it) on arbitrary image bytes, as a device
 * would hold them in its OTA area after a transfer. Each input is checked
 * twice: as given, and with its trailing CRC-32 made right, so that the
 * checks after the CRC (platform, slot, range, suffix, dependencies) are
 * reached too. It must only ever accept or refuse.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "fw_app.h"
#include "fw_crc32.h"
#include "fw_err.h"
#include "fw_modules.h"

#define FLASH_SIZE (128 * 1024)

static uint8_t flash[FLASH_SIZE];

static int
f_read(void *ctx, uint32_t off, uint8_t *buf, size_t len)
{
	(void)ctx;
	if (off > FLASH_SIZE || len > FLASH_SIZE - off)
		return FW_ERR_IO;
	memcpy(buf, flash + off, len);
	return 0;
}

static int
f_write(void *ctx, uint32_t off, const uint8_t *buf, size_t len)
{
	(void)ctx;
	if (off > FLASH_SIZE || len > FLASH_SIZE - off)
		return FW_ERR_IO;
	memcpy(flash + off, buf, len);
	return 0;
}

static int
f_erase(void *ctx, uint32_t off, size_t len)
{
	(void)ctx;
	if (off > FLASH_SIZE || len > FLASH_SIZE - off)
		return FW_ERR_IO;
	memset(flash + off, 0xff, len);
	return 0;
}

static uint32_t
f_millis(void *ctx)
{
	(void)ctx;
	return 0;
}

static void
check(const uint8_t *data, size_t size)
{
	static struct fw_app app;
	static struct fw_modules mods;
	struct fw_app_config cfg;
	struct port port;
	struct fw_module out;
	uint8_t hash[32] = {0};

	memset(&port, 0, sizeof(port));
	port.flash_read = f_read;
	port.flash_write = f_write;
	port.flash_erase = f_erase;
	port.millis = f_millis;
	port.flash_size = FLASH_SIZE;
	memset(&cfg, 0, sizeof(cfg));
	cfg.dev.platform_id = 3;
	fw_modules_default(&mods, 1512, 1512, hash);
	cfg.modules = &mods;
	fw_app_init(&app, &port, &cfg);
	memset(flash, 0xff, sizeof(flash));
	memcpy(flash, data, size < FLASH_SIZE ? size : FLASH_SIZE);
	(void)fw_ota_validate(&app, (uint32_t)size, &out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t copy[FLASH_SIZE];
	uint32_t crc;
	size_t mlen;

	if (size > FLASH_SIZE)
		size = FLASH_SIZE;
	check(data, size);
	if (size < 8)
		return 0;
	memcpy(copy, data, size);
	mlen = size - 4;
	crc = fw_crc32(0, copy, mlen);
	copy[mlen] = (uint8_t)(crc >> 24);
	copy[mlen + 1] = (uint8_t)(crc >> 16);
	copy[mlen + 2] = (uint8_t)(crc >> 8);
	copy[mlen + 3] = (uint8_t)crc;
	check(copy, size);
	return 0;
}
