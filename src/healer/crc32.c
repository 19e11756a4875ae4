/* SPDX-License-Identifier: MIT */
/*
 * CRC-32 by 8-byte slices (crc32.h). Table k maps a byte to its CRC
 * contribution k bytes further on, so one step folds eight input bytes
 * with eight lookups; bytes before and after the 8-byte steps go one at
 * a time through table 0.
 */
#include "config.h"

#include <pthread.h>

#include "healer/crc32.h"

static uint32_t tab[8][256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void
tab_build(void)
{
	uint32_t c;
	unsigned i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
		tab[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		c = tab[0][i];
		for (k = 1; k < 8; k++) {
			c = (c >> 8) ^ tab[0][c & 0xff];
			tab[k][i] = c;
		}
	}
}

uint32_t
crc32_fast(uint32_t crc, const uint8_t *p, size_t len)
{
	uint32_t lo, hi;

	(void)pthread_once(&tab_once, tab_build);
	crc = ~crc;
	for (; len >= 8; len -= 8, p += 8) {
		lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
		     (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		crc = tab[7][lo & 0xff] ^ tab[6][(lo >> 8) & 0xff] ^
		      tab[5][(lo >> 16) & 0xff] ^ tab[4][lo >> 24] ^
		      tab[3][hi & 0xff] ^ tab[2][(hi >> 8) & 0xff] ^
		      tab[1][(hi >> 16) & 0xff] ^ tab[0][hi >> 24];
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ tab[0][(crc ^ *p++) & 0xff];
	return ~crc;
}
