/* SPDX-License-Identifier: MIT */
/*
 * Reset handler and vector table for the nRF52840 (Cortex-M4F): copy
 * .data from flash, zero .bss, enable the FPU (the image is built with
 * -mfloat-abi=hard), then call main(). Every interrupt that the stubs do
 * not use points at a handler that parks the CPU, so a stray interrupt is
 * visible in a debugger rather than silently returning.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "hal.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);

void
Default_Handler(void)
{
	for (;;)
		;
}

#define WEAK_HANDLER(name)                                                     \
	void name(void) __attribute__((weak, alias("Default_Handler")))

WEAK_HANDLER(NMI_Handler);
WEAK_HANDLER(HardFault_Handler);
WEAK_HANDLER(MemManage_Handler);
WEAK_HANDLER(BusFault_Handler);
WEAK_HANDLER(UsageFault_Handler);
WEAK_HANDLER(SVC_Handler);
WEAK_HANDLER(DebugMon_Handler);
WEAK_HANDLER(PendSV_Handler);
WEAK_HANDLER(SysTick_Handler);
WEAK_HANDLER(UARTE0_UART0_IRQHandler);
WEAK_HANDLER(RNG_IRQHandler);

/*
 * nRF52840 product specification: 16 system exceptions, then 48
 * peripheral interrupts (2 = UARTE0, 13 = RNG). Unused peripheral slots
 * park in Default_Handler; reserved system slots are 0.
 */
#define D Default_Handler

typedef void (*vector_fn)(void);

__attribute__((section(".isr_vector"), used)) const vector_fn nrf_vectors[] = {
	(vector_fn)(uintptr_t)&_estack,
	Reset_Handler,
	NMI_Handler,
	HardFault_Handler,
	MemManage_Handler,
	BusFault_Handler,
	UsageFault_Handler,
	0,
	0,
	0,
	0,
	SVC_Handler,
	DebugMon_Handler,
	0,
	PendSV_Handler,
	SysTick_Handler,
	D,
	D,
	UARTE0_UART0_IRQHandler,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	RNG_IRQHandler,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
	D,
};

#undef D

void
Reset_Handler(void)
{
	uint32_t *src = &_sidata, *dst = &_sdata;

	while (dst < &_edata)
		*dst++ = *src++;
	for (dst = &_sbss; dst < &_ebss; dst++)
		*dst = 0;
	/* CPACR: full access to CP10 and CP11 (the FPU) */
	HAL_REG(0xe000ed88) |= 0xfu << 20;
	__asm__ volatile("dsb\n\tisb" ::: "memory");
	main();
	for (;;)
		;
}
