/* SPDX-License-Identifier: MIT */
/*
 * application/x-www-form-urlencoded bodies read in place: check a whole
 * body the way json_form_parse() would, find one field and decode its
 * value into the caller's buffer. Nothing is allocated, so a function
 * call's `arg` and a body `access_token` cost no jansson object (five
 * allocations per call, bench/run B4).
 * Pure: no I/O, no allocation, no logging, no jansson. Input is untrusted
 * and need not be NUL-terminated.
 * Fields are separated by '&'; empty fields ("&&") are skipped; a field
 * without '=' has an empty value; keys and values are percent-decoded
 * with '+' as a space. A field whose key decodes to "" is ignored (its
 * value is not checked as UTF-8), as json_form_parse() ignores it.
 */
#ifndef CINDER_API_FORM_H
#define CINDER_API_FORM_H

#include <stdbool.h>
#include <stddef.h>

/** form_find()'s answer for a name given two or more times. */
#define FORM_MANY 2
/** Fields form_check() takes when given 0 (JSON_DEFAULT_MAX_FIELDS). */
#define FORM_DEFAULT_MAX_FIELDS 256

/** One field of a form body, still encoded: pointers into the body. */
struct form_field {
	const char *key; /* klen bytes before '=' (or the whole field) */
	const char *val; /* vlen bytes after '='; vlen 0 without one */
	size_t klen, vlen;
	bool has_eq; /* the field has a '=' */
};

/**
 * The next field of s[*pos..len) that is not empty ("&&" is skipped).
 * Every walk over a body's fields (form_check(), form_find(),
 * json_form_parse()) splits it here, so they cannot split it apart.
 * @param pos where to start (0 for the first); moved past the field
 * @return true with *f set, false at the end
 */
bool form_next(const char *s, size_t len, size_t *pos, struct form_field *f);

/**
 * Percent-decode s[0..len): %XX (either case) becomes its byte, '+'
 * becomes ' ' if plus_is_space. %00, a truncated or non-hex escape and
 * a NUL byte are errors. Decoding never lengthens.
 * @param out at least len + 1 bytes; NUL-terminated on success
 * @param outlen if not NULL, set to the decoded length (0 on error)
 * @return 0 or CINDER_ERR_MALFORMED
 */
int form_decode(const char *s, size_t len, bool plus_is_space, char *out,
		size_t *outlen);

/**
 * Check a whole form body as json_form_parse() does, building nothing:
 * the same verdict for every input. Fields are taken in order; the
 * first one over max_fields, or the first that does not decode (bad
 * escape, NUL byte, or a key or value that is not UTF-8 as jansson
 * defines it), decides.
 * @param max_fields 0 for FORM_DEFAULT_MAX_FIELDS
 * @return 0, CINDER_ERR_TOO_BIG (too many fields) or CINDER_ERR_MALFORMED
 */
int form_check(const char *s, size_t len, size_t max_fields);

/**
 * How many fields are named name (after decoding their keys). On a body
 * form_check() accepted, this is what json_form_parse()'s object holds:
 * 0 absent, 1 a string, FORM_MANY an array. A field whose key does not
 * decode never matches.
 * @param name NUL-terminated; "" is never found
 * @param val if not NULL, set to the first match's value as it is in s
 *        (still encoded) or NULL
 * @param vlen if not NULL, set to that value's length or 0
 * @return 0, 1 or FORM_MANY (two or more)
 */
int form_find(const char *s, size_t len, const char *name, const char **val,
	      size_t *vlen);

/**
 * form_find() and, if the name is given once, its value decoded into buf.
 * @param buf receives the NUL-terminated value; at least the encoded
 *        value's length + 1 bytes are needed (a decoded value is never
 *        longer)
 * @param outlen if not NULL, set to the decoded length (0 unless 1 is
 *        returned)
 * @return 0, 1 (buf holds the value), FORM_MANY (buf untouched),
 *         CINDER_ERR_TOO_BIG (buf is too small for the encoded value) or
 *         CINDER_ERR_MALFORMED (it does not decode; not after
 *         form_check() accepted the body)
 */
int form_get(const char *s, size_t len, const char *name, char *buf, size_t cap,
	     size_t *outlen);

#endif
