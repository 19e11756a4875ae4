/* SPDX-License-Identifier: MIT */
/*
 * Decimal integers written without printf, for hot paths where
 * snprintf's format parsing showed in profiles (a request's log
 * context, a function's return value, webhook rows). Pure, no I/O.
 */
#ifndef CINDER_FMT_H
#define CINDER_FMT_H

#include <stddef.h>
#include <stdint.h>

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

#endif /* CINDER_FMT_H */
