/* SPDX-License-Identifier: MIT */
/*
 * Decimal integers and timestamps written without printf, gmtime_r or
 * strftime, for hot paths where those showed in profiles (a request's
 * log context, a function's return value, webhook rows, SSE frames,
 * coreInfo's times, a client's address), a bounded string copy, and
 * bytes as hex (digests, keys, device ids).
 * Pure, no I/O.
 */
#ifndef CINDER_FMT_H
#define CINDER_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Room fmt_u64() and fmt_i64() need: "-9223372036854775808" and NUL. */
#define FMT_INT_MAX 21

/* Write u in decimal at p (FMT_INT_MAX bytes), NUL-terminated.
   @return the number of digits written */
static inline size_t
fmt_u64(char *p, uint64_t u)
{
	char tmp[20];
	size_t n = 0, i = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	while (n > 0)
		p[i++] = tmp[--n];
	p[i] = '\0';
	return i;
}

/* Write v in decimal at p (FMT_INT_MAX bytes) as "%lld" would,
   NUL-terminated. @return the number of characters written */
static inline size_t
fmt_i64(char *p, int64_t v)
{
	if (v >= 0)
		return fmt_u64(p, (uint64_t)v);
	p[0] = '-';
	return 1 + fmt_u64(p + 1, (uint64_t)0 - (uint64_t)v);
}

/* The width low decimal digits of v, zero-padded, at p (no NUL). */
static inline void
fmt_digits(char *p, unsigned v, int width)
{
	while (width-- > 0) {
		p[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Copy src into dst of size n (n > 0), cut to fit and NUL-terminated:
   snprintf(dst, n, "%s", src) without the format engine, for copies
   made per request or delivery. @return dst */
static inline char *
fmt_strcpy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
	return dst;
}

/* Room fmt_ipv4() needs: "255.255.255.255" and NUL. */
#define FMT_IPV4_LEN 16

/* An IPv4 address (4 bytes, network order) in dotted decimal at p
   (FMT_IPV4_LEN bytes), NUL-terminated, as inet_ntop() writes it;
   inet_ntop()'s sprintf was 1,700 instructions of each API request
   (callgrind of bench B4). @return the number of characters written */
static inline size_t
fmt_ipv4(char *p, const unsigned char a[4])
{
	size_t n = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned v = a[i];

		if (i > 0)
			p[n++] = '.';
		if (v >= 100)
			p[n++] = (char)('0' + v / 100);
		if (v >= 10)
			p[n++] = (char)('0' + v / 10 % 10);
		p[n++] = (char)('0' + v % 10);
	}
	p[n] = '\0';
	return n;
}

/* Write the n bytes at in as 2n lowercase hex digits at out, then a NUL
   (out holds 2n + 1 bytes). */
void fmt_hex(const uint8_t *in, size_t n, char *out);

/* Room fmt_json_str() needs for a string of len bytes: every byte
   escaped, and the quotes. */
#define FMT_JSON_STR_MAX(len) (6 * (size_t)(len) + 2)

/* s as a JSON string at p: quoted, with '"', '\\' and the control
   bytes as \u00XX and every other byte as it is (no NUL written).
   @return the bytes written, at most FMT_JSON_STR_MAX(strlen(s)) */
size_t fmt_json_str(char *p, const char *s);

/* Length of fmt_time_ms()'s text, "YYYY-MM-DDTHH:MM:SS.mmmZ", and NUL. */
#define FMT_TIME_LEN 25

/**
 * A wall-clock time in ms since the epoch, UTC, as
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (FMT_TIME_LEN bytes, NUL-
 * terminated). A year past 9999 is written modulo 10000.
 * @return false if the year is past 9999 (the text is then not the date)
 */
bool fmt_time_ms(uint64_t ms, char buf[FMT_TIME_LEN]);

#endif /* CINDER_FMT_H */
