/* SPDX-License-Identifier: MIT */
/*
 * Byte-order, compare and wipe helpers for the firmware library. The wipe
 * writes through a volatile pointer so that it survives dead-store
 * elimination at -Os, which an ordinary memset before return does not.
 */
#include "config.h"

#include <string.h>

#include "fw_err.h"
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

int
fw_buf_put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len >= cap || n >= cap - *len)
		return FW_ERR_TOO_BIG;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

int
fw_buf_puts(char *buf, size_t cap, size_t *len, const char *s)
{
	return fw_buf_put(buf, cap, len, s, strlen(s));
}

int
fw_buf_putu(char *buf, size_t cap, size_t *len, uint32_t v)
{
	char tmp[10];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return fw_buf_put(buf, cap, len, tmp + i, sizeof(tmp) - i);
}

int
fw_buf_put_json(char *buf, size_t cap, size_t *len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6];
	int r;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			r = fw_buf_put(buf, cap, len, esc, 2);
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			r = fw_buf_put(buf, cap, len, esc, 6);
		} else {
			r = fw_buf_put(buf, cap, len, (const char *)&c, 1);
		}
		if (r != 0)
			return r;
	}
	return 0;
}
