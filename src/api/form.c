/* SPDX-License-Identifier: MIT */
/*
 * urlencoded form bodies read in place (see form.h): the checks of
 * json_form_parse() without its object, and one field's value decoded
 * into the caller's buffer. The UTF-8 rule is jansson's (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), which is what
 * json_form_parse()'s json_stringn() and json_object_set_new() apply;
 * tests/fuzz/fuzz_form.c compares the two on every input.
 * Pure: no allocation, no I/O. Every read is bounded by the length.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "err.h"
#include "api/form.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
form_decode(const char *s, size_t len, bool plus_is_space, char *out,
	    size_t *outlen)
{
	size_t i, n = 0;
	int hi, lo;

	if (outlen != NULL)
		*outlen = 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (len - i < 3)
				return CINDER_ERR_MALFORMED;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return CINDER_ERR_MALFORMED;
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '\0') {
			return CINDER_ERR_MALFORMED;
		} else if (s[i] == '+' && plus_is_space) {
			out[n++] = ' ';
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return 0;
}

/* The decoded bytes of an encoded form key or value, one at a time. */
struct dec {
	const char *s;
	size_t len, i;
};

#define DEC_END (-1) /* no more bytes */
#define DEC_BAD (-2) /* a bad escape or a NUL byte: form_decode() fails */

/* @return the next decoded byte (0-255), DEC_END or DEC_BAD */
static int
dec_next(struct dec *d)
{
	char c;
	int hi, lo;

	if (d->i >= d->len)
		return DEC_END;
	c = d->s[d->i];
	if (c == '%') {
		if (d->len - d->i < 3)
			return DEC_BAD;
		hi = hexval(d->s[d->i + 1]);
		lo = hexval(d->s[d->i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return DEC_BAD;
		d->i += 3;
		return hi << 4 | lo;
	}
	if (c == '\0')
		return DEC_BAD;
	d->i++;
	return c == '+' ? ' ' : (unsigned char)c;
}

/*
 * s[0..len) decodes, and if utf8, what it decodes to is UTF-8: a lead
 * byte C2-DF, E0-EF or F0-F4 followed by 1, 2 or 3 continuation bytes
 * (80-BF) whose code point is not overlong, not a surrogate and at most
 * U+10FFFF; no other byte above 7F.
 */
static bool
dec_valid(const char *s, size_t len, bool utf8)
{
	static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
	struct dec d = {s, len, 0};
	uint32_t cp = 0;
	unsigned need = 0, size = 0;
	int c;

	while ((c = dec_next(&d)) != DEC_END) {
		if (c == DEC_BAD)
			return false;
		if (!utf8)
			continue;
		if (need == 0) {
			if (c < 0x80)
				continue;
			if (c >= 0xc2 && c <= 0xdf) {
				size = 1;
				cp = (uint32_t)c & 0x1f;
			} else if (c >= 0xe0 && c <= 0xef) {
				size = 2;
				cp = (uint32_t)c & 0x0f;
			} else if (c >= 0xf0 && c <= 0xf4) {
				size = 3;
				cp = (uint32_t)c & 0x07;
			} else {
				return false;
			}
			need = size;
			continue;
		}
		if (c < 0x80 || c > 0xbf)
			return false;
		cp = cp << 6 | ((uint32_t)c & 0x3f);
		if (--need == 0 && (cp < min_cp[size] || cp > 0x10ffff ||
				    (cp >= 0xd800 && cp <= 0xdfff)))
			return false;
	}
	return need == 0;
}

/* The encoded key s[0..len) decodes to exactly name. */
static bool
key_is(const char *s, size_t len, const char *name)
{
	struct dec d = {s, len, 0};
	size_t i = 0;
	int c;

	while ((c = dec_next(&d)) != DEC_END) {
		if (c == DEC_BAD || name[i] == '\0' ||
		    (unsigned char)name[i] != c)
			return false;
		i++;
	}
	return name[i] == '\0';
}

bool
form_next(const char *s, size_t len, size_t *pos, struct form_field *f)
{
	const char *p = s + *pos, *end = s + len, *amp, *eq;

	while (p < end && *p == '&')
		p++;
	if (p >= end) {
		*pos = len;
		return false;
	}
	amp = memchr(p, '&', (size_t)(end - p));
	if (amp == NULL)
		amp = end;
	eq = memchr(p, '=', (size_t)(amp - p));
	f->key = p;
	f->klen = (size_t)((eq != NULL ? eq : amp) - p);
	f->has_eq = eq != NULL;
	f->val = eq != NULL ? eq + 1 : amp;
	f->vlen = eq != NULL ? (size_t)(amp - eq - 1) : 0;
	*pos = (size_t)(amp - s) + (amp < end);
	return true;
}

int
form_check(const char *s, size_t len, size_t max_fields)
{
	struct form_field f;
	size_t pos = 0, n = 0;

	if (max_fields == 0)
		max_fields = FORM_DEFAULT_MAX_FIELDS;
	while (form_next(s, len, &pos, &f)) {
		if (++n > max_fields)
			return CINDER_ERR_TOO_BIG;
		/* an empty key is ignored, its value only decoded; a key
		 * that is not empty decodes to at least one byte */
		if (!dec_valid(f.key, f.klen, true) ||
		    (f.has_eq && !dec_valid(f.val, f.vlen, f.klen > 0)))
			return CINDER_ERR_MALFORMED;
	}
	return 0;
}

int
form_find(const char *s, size_t len, const char *name, const char **val,
	  size_t *vlen)
{
	struct form_field f;
	size_t pos = 0;
	int n = 0;

	if (val != NULL)
		*val = NULL;
	if (vlen != NULL)
		*vlen = 0;
	if (*name == '\0')
		return 0;
	while (n < FORM_MANY && form_next(s, len, &pos, &f)) {
		if (!key_is(f.key, f.klen, name))
			continue;
		if (n++ > 0)
			continue;
		if (val != NULL)
			*val = f.val;
		if (vlen != NULL)
			*vlen = f.vlen;
	}
	return n;
}

int
form_get(const char *s, size_t len, const char *name, char *buf, size_t cap,
	 size_t *outlen)
{
	const char *v;
	size_t vlen;
	int n, r;

	if (outlen != NULL)
		*outlen = 0;
	n = form_find(s, len, name, &v, &vlen);
	if (n != 1)
		return n;
	if (vlen >= cap)
		return CINDER_ERR_TOO_BIG;
	if ((r = form_decode(v, vlen, true, buf, outlen)) != 0)
		return r;
	return 1;
}
