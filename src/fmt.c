/* SPDX-License-Identifier: MIT */
/*
 * Timestamps without gmtime_r and strftime (fmt.h). The civil date of
 * a day count is computed in 400-year eras of 146,097 days, counted
 * from 0000-03-01 so that a leap day ends its year (H. Hinnant's
 * days-to-civil method).
 */
#include "config.h"

#include "fmt.h"

void
fmt_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

size_t
fmt_json_str(char *p, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	p[n++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\' || ch < 0x20) {
			memcpy(p + n, "\\u00", 4);
			p[n + 4] = hex[ch >> 4];
			p[n + 5] = hex[ch & 15];
			n += 6;
		} else {
			p[n++] = (char)ch;
		}
	}
	p[n++] = '"';
	return n;
}

bool
fmt_time_ms(uint64_t ms, char buf[FMT_TIME_LEN])
{
	uint64_t sec = ms / 1000, z = sec / 86400 + 719468, y;
	unsigned sod = (unsigned)(sec % 86400), era, doe, yoe, doy, mp, d, m;

	era = (unsigned)(z / 146097);
	doe = (unsigned)(z - (uint64_t)era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (uint64_t)yoe + (uint64_t)era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	fmt_digits(buf, (unsigned)(y % 10000), 4);
	buf[4] = '-';
	fmt_digits(buf + 5, m, 2);
	buf[7] = '-';
	fmt_digits(buf + 8, d, 2);
	buf[10] = 'T';
	fmt_digits(buf + 11, sod / 3600, 2);
	buf[13] = ':';
	fmt_digits(buf + 14, sod / 60 % 60, 2);
	buf[16] = ':';
	fmt_digits(buf + 17, sod % 60, 2);
	buf[19] = '.';
	fmt_digits(buf + 20, (unsigned)(ms % 1000), 3);
	buf[23] = 'Z';
	buf[24] = '\0';
	return y <= 9999;
}
