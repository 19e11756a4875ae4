/* SPDX-License-Identifier: MIT */
/*
 * REST body and error helpers on top of jansson. Request bodies of every
 * accepted content type (JSON, application/x-www-form-urlencoded,
 * multipart/form-data) become one json_t object, so handlers never care
 * how a client encoded its fields. One table maps CINDER_ERR_* to HTTP
 * status codes and one function builds the error envelope.
 * Pure: no I/O, no libevent, no MHD. Every size is bounded by the caller's
 * limits before anything is allocated.
 * Naming: jansson owns json_object_*, json_array_*, json_string*, json_dump*
 * and json_load*; the functions here avoid those prefixes.
 */
#ifndef CINDER_API_JSON_H
#define CINDER_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/** Limits applied while parsing one body. Zero fields mean "default". */
struct json_limits {
	size_t max_body;   /* bytes; default JSON_DEFAULT_MAX_BODY */
	size_t max_fields; /* form/multipart fields; default 256 */
	size_t max_files;  /* multipart file parts; default 16 */
};

#define JSON_DEFAULT_MAX_BODY (1024 * 1024)
#define JSON_DEFAULT_MAX_FIELDS 256
#define JSON_DEFAULT_MAX_FILES 16

/**
 * One multipart file part. A view: name, filename and content_type are
 * NUL-terminated copies owned by the json_files list; data points into the
 * body buffer given to json_body_parse() and is valid only while that
 * buffer is (style O3).
 */
struct json_file {
	char *name;	/* form field name, e.g. "file", "file2", "binary" */
	char *filename; /* client's filename or "" */
	char *content_type;  /* part Content-Type or "application/octet-stream"
			      */
	const uint8_t *data; /* part content, borrowed from the body buffer */
	size_t len;	     /* content length in bytes */
};

/** The file parts of one multipart body. */
struct json_files {
	struct json_file *v; /* array of n entries */
	size_t n;	     /* number of file parts */
};

/**
 * Parse a request body into one JSON object.
 * - application/json: must be an object (arrays and scalars are refused);
 * - application/x-www-form-urlencoded: fields become strings; a repeated
 *   key becomes an array of strings;
 * - multipart/form-data: plain fields as for forms; parts with a filename,
 *   or named file*, go to *files (views into body);
 * - no Content-Type: sniffed (a body starting with '{' is JSON, else form);
 * - empty body: an empty object.
 * @param content_type the Content-Type header value, or NULL
 * @param body the body bytes (need not be NUL-terminated); borrowed, and
 *        must outlive *files
 * @param len body length
 * @param lim limits, or NULL for defaults
 * @param out set to a new object (caller json_decref()s) on success, NULL
 *        on failure
 * @param files if not NULL, set to a new list (caller json_files_free()s)
 *        or NULL when there are no file parts; if NULL, file parts are an
 *        error
 * @param errbuf if not NULL, receives a client-presentable message
 * @param errlen size of errbuf
 * @return 0, CINDER_ERR_TOO_BIG (over a limit), CINDER_ERR_MALFORMED
 *         (undecodable) or CINDER_ERR_INVAL (unsupported content type)
 */
int json_body_parse(const char *content_type, const uint8_t *body, size_t len,
		    const struct json_limits *lim, json_t **out,
		    struct json_files **files, char *errbuf, size_t errlen);

/**
 * @return true if json_body_parse() would read this body (not empty) as
 *         an application/x-www-form-urlencoded form (by its Content-Type,
 *         or sniffed)
 */
bool json_body_is_form(const char *content_type, const uint8_t *body,
		       size_t len);

/**
 * json_body_parse()'s verdict and message on a form body, without the
 * object (form_check()): a body it accepts, json_body_parse() parses.
 * Read its fields with form_get() (api/form.h), or parse it later.
 * @return 0, CINDER_ERR_TOO_BIG (over max_body or max_fields) or
 *         CINDER_ERR_MALFORMED, with the same text in errbuf
 */
int json_form_check(const uint8_t *body, size_t len,
		    const struct json_limits *lim, char *errbuf, size_t errlen);

/** Free a file list and the strings it owns (not the data). NULL-safe. */
void json_files_free(struct json_files *files);

/**
 * Find a file part by exact field name.
 * @return a pointer into files (valid until json_files_free) or NULL
 */
const struct json_file *json_files_find(const struct json_files *files,
					const char *name);

/**
 * Add the fields of an application/x-www-form-urlencoded string to obj
 * (also used for query strings). Keys and values are percent-decoded and
 * '+' is a space; a key seen twice becomes an array.
 * @param s the encoded text (need not be NUL-terminated)
 * @param len its length
 * @param obj the object to add to (borrowed)
 * @param max_fields refuse more fields than this (0: default)
 * @return 0, CINDER_ERR_MALFORMED (bad escape, NUL byte, invalid UTF-8)
 *         or CINDER_ERR_TOO_BIG (too many fields)
 */
int json_form_parse(const char *s, size_t len, json_t *obj, size_t max_fields);

/**
 * Add one decoded field to obj as a string; a key already present becomes
 * an array of its values.
 * @param key NUL-terminated field name (copied)
 * @param val value bytes (copied), vlen long
 * @return 0 or CINDER_ERR_MALFORMED (NUL byte or invalid UTF-8)
 */
int json_form_add(json_t *obj, const char *key, const char *val, size_t vlen);

/**
 * Percent-decode s[0..len). %00, a truncated or non-hex escape are
 * errors. plus_is_space turns '+' into ' ' (forms, not paths).
 * @param out set to a new NUL-terminated string (caller frees) or NULL
 * @param outlen if not NULL, set to the decoded length
 * @return 0 or CINDER_ERR_MALFORMED
 */
int json_url_decode(const char *s, size_t len, bool plus_is_space, char **out,
		    size_t *outlen);

/**
 * json_url_decode() into the caller's buffer, without an allocation.
 * @param out at least len + 1 bytes; NUL-terminated on success
 * @param outlen if not NULL, set to the decoded length
 * @return 0 or CINDER_ERR_MALFORMED
 */
int json_url_decode_into(const char *s, size_t len, bool plus_is_space,
			 char *out, size_t *outlen);

/**
 * The HTTP status for an error code: INVAL/MALFORMED 400, AUTH 401,
 * FORBIDDEN 403, NOTFOUND 404, TIMEOUT 408, CONFLICT 409, TOO_BIG 413,
 * BUSY 429, UNAVAILABLE 503, 0 gives 200, anything else 500.
 */
int json_err_status(int err);

/**
 * The default client-facing text for an error code ("Not Found",
 * "Timed out.", ...); never NULL, static.
 */
const char *json_err_text(int err);

/**
 * Build the error envelope every REST error uses:
 *   {"ok":false,"error":<code or description>,"error_description":<desc>}
 * S/B-style clients and the legacy CLI read "error", particle-api-js
 * surfaces "error_description"; OAuth-style codes ("invalid_token") go
 * in "error" when code is given.
 * @param err a CINDER_ERR_* value (used for desc when desc is NULL)
 * @param code short machine code or NULL
 * @param desc human text or NULL
 * @return a new object (caller json_decref()s); never NULL
 */
json_t *json_error_body(int err, const char *code, const char *desc);

/**
 * Serialise compactly (no spaces) as the API sends it.
 * @param v any JSON value (borrowed)
 * @param lenp if not NULL, set to the length without the NUL
 * @return a new NUL-terminated string (caller frees with free()) or NULL
 *         on failure
 */
char *json_dump_compact(const json_t *v, size_t *lenp);

/** @return the string value of obj[key], or NULL if absent or not a string */
const char *json_field_str(const json_t *obj, const char *key);

/**
 * Read a boolean field that may be sent as JSON true/false or, from forms,
 * as "true"/"false"/"1"/"0".
 * @return true and *out set if present and recognised, else false
 */
bool json_field_bool(const json_t *obj, const char *key, bool *out);

/**
 * Read an integer field sent as a JSON integer or a decimal string.
 * @return true and *out set if present and a valid integer, else false
 */
bool json_field_int(const json_t *obj, const char *key, long long *out);

#endif
