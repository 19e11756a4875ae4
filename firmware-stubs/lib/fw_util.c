/* SPDX-License-Identifier: MIT */
/*
 * Byte-order, compare and wipe helpers for the firmware library. The wipe
 * writes through a volatile pointer so that it survives dead-store
 * elimination at -Os, which an ordinary memset before return does not.
 */
#include "config.h"

#include "fw_util.h"

uint32_t
fw_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void
fw_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
fw_ct_cmp(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d;
}

void
fw_wipe(void *p, size_t len)
{
	volatile uint8_t *v = p;

	while (len-- > 0)
		*v++ = 0;
}
