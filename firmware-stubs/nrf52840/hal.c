/* SPDX-License-Identifier: MIT */
/*
 * nRF52840 implementation of the port seam. Clock and RNG use the real
 * registers. The modem link is a stub: a real board talks AT commands (or
 * a vendor socket protocol) to a cellular or Wi-Fi module over UARTE0;
 * here connect never completes and send/recv move nothing, so the image
 * links every protocol path without pretending to have a network.
 * Flash writes use the NVMC word-write and page-erase sequence.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "fw_err.h"
#include "hal.h"

/* Cortex-M4 SysTick (ARMv7-M ARM B3.3) */
#define SYST_CSR 0xe000e010u
#define SYST_RVR 0xe000e014u
#define SYST_CVR 0xe000e018u

/* RNG peripheral */
#define RNG_BASE 0x4000d000u
#define RNG_TASKS_START (RNG_BASE + 0x000)
#define RNG_TASKS_STOP (RNG_BASE + 0x004)
#define RNG_EVENTS_VALRDY (RNG_BASE + 0x100)
#define RNG_CONFIG (RNG_BASE + 0x504)
#define RNG_VALUE (RNG_BASE + 0x508)

/* NVMC flash controller */
#define NVMC_BASE 0x4001e000u
#define NVMC_READY (NVMC_BASE + 0x400)
#define NVMC_CONFIG (NVMC_BASE + 0x504)
#define NVMC_ERASEPAGE (NVMC_BASE + 0x508)
#define NVMC_CONFIG_REN 0u
#define NVMC_CONFIG_WEN 1u
#define NVMC_CONFIG_EEN 2u

extern const uint8_t __provision_start[];

static volatile uint32_t ticks;

void SysTick_Handler(void);

void
SysTick_Handler(void)
{
	ticks++;
}

uint32_t
hal_millis(void)
{
	return ticks;
}

void
hal_idle(void)
{
	__asm__ volatile("wfi");
}

const uint8_t *
hal_provision(void)
{
	return __provision_start;
}

static uint32_t
port_millis(void *ctx)
{
	return hal_millis();
}

static int
port_random(void *ctx, uint8_t *buf, size_t len)
{
	uint32_t spin;
	size_t i;

	HAL_REG(RNG_CONFIG) = 1; /* bias correction */
	HAL_REG(RNG_TASKS_START) = 1;
	for (i = 0; i < len; i++) {
		for (spin = 0; HAL_REG(RNG_EVENTS_VALRDY) == 0; spin++) {
			if (spin > 100000u) {
				HAL_REG(RNG_TASKS_STOP) = 1;
				return FW_ERR_IO;
			}
		}
		HAL_REG(RNG_EVENTS_VALRDY) = 0;
		buf[i] = (uint8_t)HAL_REG(RNG_VALUE);
	}
	HAL_REG(RNG_TASKS_STOP) = 1;
	return 0;
}

/* ---- modem link (stub) --------------------------------------------------- */

static int
modem_connect(void *ctx)
{
	/* A real port sends the module's socket-open commands here and
	 * returns FW_ERR_AGAIN until it reports the TCP link up. */
	return FW_ERR_AGAIN;
}

static int
modem_send(void *ctx, const uint8_t *buf, size_t len)
{
	return 0; /* would queue into the UARTE0 TX DMA buffer */
}

static int
modem_recv(void *ctx, uint8_t *buf, size_t cap)
{
	return 0; /* would drain the RX ring the UARTE0 interrupt fills */
}

static void
modem_close(void *ctx)
{
}

/* ---- flash ----------------------------------------------------------- */

static uint32_t
ota_base(void)
{
	return (uint32_t)(uintptr_t)__provision_start - HAL_OTA_SIZE;
}

static bool
ota_range_ok(uint32_t off, size_t len)
{
	return off <= HAL_OTA_SIZE && len <= HAL_OTA_SIZE - off;
}

static void
nvmc_wait(void)
{
	while (HAL_REG(NVMC_READY) == 0)
		;
}

static int
port_flash_read(void *ctx, uint32_t off, uint8_t *buf, size_t len)
{
	if (!ota_range_ok(off, len))
		return FW_ERR_INVAL;
	memcpy(buf, (const void *)(uintptr_t)(ota_base() + off), len);
	return 0;
}

static int
port_flash_write(void *ctx, uint32_t off, const uint8_t *buf, size_t len)
{
	uint32_t word;
	size_t i;

	/* whole words only: OTA chunks are multiples of 4 bytes */
	if (!ota_range_ok(off, len) || off % 4 != 0 || len % 4 != 0)
		return FW_ERR_INVAL;
	HAL_REG(NVMC_CONFIG) = NVMC_CONFIG_WEN;
	nvmc_wait();
	for (i = 0; i < len; i += 4) {
		memcpy(&word, buf + i, 4);
		HAL_REG(ota_base() + off + i) = word;
		nvmc_wait();
	}
	HAL_REG(NVMC_CONFIG) = NVMC_CONFIG_REN;
	nvmc_wait();
	return 0;
}

static int
port_flash_erase(void *ctx, uint32_t off, size_t len)
{
	uint32_t page;

	if (!ota_range_ok(off, len) || off % HAL_FLASH_PAGE != 0)
		return FW_ERR_INVAL;
	HAL_REG(NVMC_CONFIG) = NVMC_CONFIG_EEN;
	nvmc_wait();
	for (page = off; page < off + len; page += HAL_FLASH_PAGE) {
		HAL_REG(NVMC_ERASEPAGE) = ota_base() + page;
		nvmc_wait();
	}
	HAL_REG(NVMC_CONFIG) = NVMC_CONFIG_REN;
	nvmc_wait();
	return 0;
}

/*
 * A reboot or DFU request resets the core through the SCB (AIRCR
 * SYSRESETREQ). Safe mode, network and OTA resets return: the library
 * then reconnects, keeping the flags in RAM (a real product would hand
 * them to its bootloader through retained memory).
 */
static void
port_system_reset(void *ctx, int mode)
{
	(void)ctx;
	if (mode == PORT_RESET_REBOOT || mode == PORT_RESET_DFU) {
		HAL_REG(0xE000ED0Cu) = 0x05FA0004u;
		for (;;)
			;
	}
}

void
hal_port_init(struct port *p)
{
	/* 1 kHz SysTick from the CPU clock */
	HAL_REG(SYST_RVR) = HAL_CPU_HZ / 1000u - 1u;
	HAL_REG(SYST_CVR) = 0;
	HAL_REG(SYST_CSR) = 7; /* enable, interrupt, processor clock */

	memset(p, 0, sizeof(*p));
	p->net_connect = modem_connect;
	p->net_send = modem_send;
	p->net_recv = modem_recv;
	p->net_close = modem_close;
	p->millis = port_millis;
	p->random = port_random;
	p->flash_read = port_flash_read;
	p->flash_write = port_flash_write;
	p->flash_erase = port_flash_erase;
	p->flash_size = HAL_OTA_SIZE;
	p->system_reset = port_system_reset;
}
