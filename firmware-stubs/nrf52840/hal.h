/* SPDX-License-Identifier: MIT */
/*
 * nRF52840 hardware layer for the device library: SysTick millisecond
 * clock, the RNG peripheral, the NVMC flash controller and a stubbed
 * modem link over UARTE0. hal_port_init() fills the library's struct
 * port. Register addresses are from the nRF52840 product specification;
 * the code is cross-built and size-checked in CI but not run on hardware.
 */
#ifndef FW_NRF_HAL_H
#define FW_NRF_HAL_H

#include <stdint.h>

#include "port.h"

#define HAL_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define HAL_CPU_HZ 64000000u /* HFCLK */

/* The OTA scratch area: the 256 KB below the provisioning page. */
#define HAL_OTA_SIZE (256u * 1024u)
#define HAL_FLASH_PAGE 4096u

/* Provisioning page layout (written by the factory tool, not by us). */
#define HAL_PROV_SERVER_KEY 0	/* 294-byte server SPKI DER */
#define HAL_PROV_DEVICE_ID 384	/* 12-byte device ID */
#define HAL_PROV_DEVICE_KEY 512 /* device RSAPrivateKey DER, <= 1024 */
#define HAL_PROV_DEVICE_KEY_MAX 1024

/**
 * Start the SysTick clock and fill the port with the nRF52840 functions.
 * @param p port to fill (caller storage); crypto is left to the caller
 */
void hal_port_init(struct port *p);

/**
 * The provisioning page (read-only flash).
 * @return a pointer to its first byte
 */
const uint8_t *hal_provision(void);

/**
 * Milliseconds since hal_port_init (SysTick, 1 kHz).
 */
uint32_t hal_millis(void);

/**
 * Wait for an interrupt (the main loop's idle).
 */
void hal_idle(void);

#endif
