/* SPDX-License-Identifier: MIT */
/*
 * Request body parsing (JSON, urlencoded forms, multipart/form-data) into
 * one jansson object, the CINDER_ERR_* -> HTTP status table and the one
 * error envelope of the REST API. Pure functions: no I/O, no logging.
 * Input is untrusted: every index is checked against the length before it
 * is read, and the body size is bounded before anything is allocated.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "xmalloc.h"
#include "api/form.h"
#include "api/json.h"

_Static_assert(JSON_DEFAULT_MAX_FIELDS == FORM_DEFAULT_MAX_FIELDS,
	       "form_check() and json_form_parse() take as many fields");

/* Longest multipart boundary RFC 2046 section 5.1.1 allows. */
#define MULTIPART_BOUNDARY_MAX 70
/* Headers of one multipart part; real clients send ~150 bytes. */
#define MULTIPART_PART_HEADERS_MAX 4096

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

int
json_url_decode_into(const char *s, size_t len, bool plus_is_space, char *buf,
		     size_t *outlen)
{
	return form_decode(s, len, plus_is_space, buf, outlen);
}

int
json_url_decode(const char *s, size_t len, bool plus_is_space, char **out,
		size_t *outlen)
{
	char *buf = xmalloc(len + 1);
	int r;

	*out = NULL;
	if ((r = json_url_decode_into(s, len, plus_is_space, buf, outlen)) !=
	    0) {
		free(buf);
		return r;
	}
	*out = buf;
	return 0;
}

/*
 * Add key=value to obj. A repeated key turns the value into an array, so
 * "groups[]=a&groups[]=b" keeps both. Values must be UTF-8 without NUL,
 * because handlers read them with json_string_value().
 */
int
json_form_add(json_t *obj, const char *key, const char *val, size_t vlen)
{
	json_t *v, *old, *arr;

	if (memchr(val, '\0', vlen) != NULL)
		return CINDER_ERR_MALFORMED;
	if ((v = json_stringn(val, vlen)) == NULL)
		return CINDER_ERR_MALFORMED; /* not UTF-8 */
	old = json_object_get(obj, key);
	if (old == NULL) {
		/* jansson refuses (and frees v) a key that is not UTF-8 */
		if (json_object_set_new(obj, key, v) != 0)
			return CINDER_ERR_MALFORMED;
	} else if (json_is_array(old)) {
		json_array_append_new(old, v);
	} else {
		arr = json_array();
		json_array_append(arr, old);
		json_array_append_new(arr, v);
		json_object_set_new(obj, key, arr);
	}
	return 0;
}

/* Form bodies up to this size are decoded on the stack. */
#define FORM_STACK_MAX 512

int
json_form_parse(const char *s, size_t len, json_t *obj, size_t max_fields)
{
	struct form_field f;
	char sbuf[FORM_STACK_MAX], *buf = sbuf, *key, *val;
	size_t klen, vlen, pos = 0, nfields = 0;
	int r = CINDER_ERR_INTERNAL;

	if (max_fields == 0)
		max_fields = JSON_DEFAULT_MAX_FIELDS;
	/* one field's key and value, each NUL-terminated, fit in len + 2
	 * (decoding never lengthens): one buffer for the whole body */
	if (len + 2 > sizeof(sbuf))
		buf = xmalloc(len + 2);
	while (form_next(s, len, &pos, &f)) {
		if (++nfields > max_fields) {
			r = CINDER_ERR_TOO_BIG;
			goto out;
		}
		key = buf;
		if ((r = form_decode(f.key, f.klen, true, key, &klen)) != 0)
			goto out;
		val = key + klen + 1;
		if ((r = form_decode(f.val, f.vlen, true, val, &vlen)) != 0)
			goto out;
		if (*key != '\0' &&
		    (r = json_form_add(obj, key, val, vlen)) != 0)
			goto out;
	}
	r = 0;
out:
	if (buf != sbuf)
		free(buf);
	return r;
}

/* Case-insensitive compare of the media type (before ';') with want. */
static bool
media_type_is(const char *ct, const char *want)
{
	size_t n, wl = strlen(want);

	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	return n == wl && strncasecmp(ct, want, wl) == 0;
}

static bool
media_type_is_json(const char *ct)
{
	size_t n;

	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/*
 * Find parameter name (e.g. "boundary") in a header value of the shape
 * `type; a=b; name="value"`. Quoted strings may contain backslash escapes.
 * Returns a new string or NULL.
 */
static char *
header_param(const char *v, size_t vlen, const char *name)
{
	const char *p = v, *end = v + vlen, *k;
	size_t klen, nl = strlen(name);
	char *buf;
	size_t n;

	/* skip the leading token (media type or disposition type) */
	while (p < end && *p != ';')
		p++;
	while (p < end) {
		p++; /* ';' */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		k = p;
		while (p < end && *p != '=' && *p != ';')
			p++;
		klen = (size_t)(p - k);
		while (klen > 0 && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
			klen--;
		if (p >= end || *p == ';')
			continue; /* parameter without value */
		p++;		  /* '=' */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		buf = xmalloc((size_t)(end - p) + 1);
		n = 0;
		if (p < end && *p == '"') {
			p++;
			while (p < end && *p != '"') {
				if (*p == '\\' && p + 1 < end)
					p++;
				buf[n++] = *p++;
			}
			if (p < end)
				p++; /* closing quote */
			while (p < end && *p != ';')
				p++;
		} else {
			while (p < end && *p != ';' && *p != ' ' && *p != '\t')
				buf[n++] = *p++;
			while (p < end && *p != ';')
				p++;
		}
		buf[n] = '\0';
		if (klen == nl && strncasecmp(k, name, nl) == 0)
			return buf;
		free(buf);
	}
	return NULL;
}

void
json_files_free(struct json_files *files)
{
	size_t i;

	if (files == NULL)
		return;
	for (i = 0; i < files->n; i++) {
		free(files->v[i].name);
		free(files->v[i].filename);
		free(files->v[i].content_type);
	}
	free(files->v);
	free(files);
}

const struct json_file *
json_files_find(const struct json_files *files, const char *name)
{
	size_t i;

	if (files == NULL)
		return NULL;
	for (i = 0; i < files->n; i++)
		if (strcmp(files->v[i].name, name) == 0)
			return &files->v[i];
	return NULL;
}

/* Parsed headers of one multipart part. */
struct part_hdr {
	char *name;	    /* Content-Disposition name */
	char *filename;	    /* Content-Disposition filename or NULL */
	char *content_type; /* Content-Type value or NULL */
};

static void
part_hdr_cleanup(struct part_hdr *h)
{
	free(h->name);
	free(h->filename);
	free(h->content_type);
	memset(h, 0, sizeof(*h));
}

/* Parse the header block [p, end) of one part (CRLF-separated lines). */
static int
part_headers_parse(const char *p, const char *end, struct part_hdr *h)
{
	const char *eol, *colon, *v;
	size_t nlen, vlen;

	while (p < end) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL) {
			p = eol + 2;
			continue;
		}
		nlen = (size_t)(colon - p);
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		vlen = (size_t)(eol - v);
		if (nlen == 19 &&
		    strncasecmp(p, "content-disposition", 19) == 0) {
			if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0)
				return CINDER_ERR_MALFORMED;
			free(h->name);
			free(h->filename);
			h->name = header_param(v, vlen, "name");
			h->filename = header_param(v, vlen, "filename");
		} else if (nlen == 12 &&
			   strncasecmp(p, "content-type", 12) == 0) {
			free(h->content_type);
			h->content_type = xstrndup(v, vlen);
		}
		p = eol + 2;
	}
	if (h->name == NULL)
		return CINDER_ERR_MALFORMED;
	return 0;
}

static int
multipart_parse(const char *ct, const uint8_t *body, size_t len,
		size_t max_fields, size_t max_files, json_t *obj,
		struct json_files **filesp, char *errbuf, size_t errlen)
{
	const char *b = (const char *)body, *end = b + len, *p, *q, *hend;
	const char *cend;
	char *boundary = NULL, *delim = NULL;
	size_t dlen, nfields = 0;
	struct part_hdr h = {NULL, NULL, NULL};
	struct json_files *files = NULL;
	struct json_file *f;
	int r = CINDER_ERR_INTERNAL;

	boundary = header_param(ct, strlen(ct), "boundary");
	if (boundary == NULL || *boundary == '\0' ||
	    strlen(boundary) > MULTIPART_BOUNDARY_MAX) {
		set_err(errbuf, errlen,
			"multipart body without a valid boundary");
		r = CINDER_ERR_MALFORMED;
		goto out;
	}
	/* delim is CRLF "--" boundary; the first one may lack the CRLF */
	delim = xasprintf("\r\n--%s", boundary);
	dlen = strlen(delim);
	if (len >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0) {
		p = b + dlen - 2;
	} else {
		q = memmem(b, len, delim, dlen);
		if (q == NULL)
			goto malformed;
		p = q + dlen;
	}
	for (;;) {
		/* p is just past a delimiter */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break; /* close delimiter; the epilogue is ignored */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			goto malformed;
		p += 2;
		if (++nfields > max_fields) {
			set_err(errbuf, errlen, "too many multipart parts");
			r = CINDER_ERR_TOO_BIG;
			goto out;
		}
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			hend = p; /* part without headers */
		} else {
			hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
			if (hend == NULL ||
			    hend - p > MULTIPART_PART_HEADERS_MAX)
				goto malformed;
		}
		if ((r = part_headers_parse(p, hend, &h)) != 0)
			goto malformed;
		p = hend + (hend == p ? 2 : 4);
		cend = memmem(p, (size_t)(end - p), delim, dlen);
		if (cend == NULL)
			goto malformed;
		if (h.filename != NULL || strncmp(h.name, "file", 4) == 0) {
			if (filesp == NULL) {
				set_err(errbuf, errlen,
					"file uploads are not accepted here");
				r = CINDER_ERR_INVAL;
				goto out;
			}
			if (files == NULL)
				files = xcalloc(1, sizeof(*files));
			if (files->n >= max_files) {
				set_err(errbuf, errlen, "too many files");
				r = CINDER_ERR_TOO_BIG;
				goto out;
			}
			files->v = xreallocarray(files->v, files->n + 1,
						 sizeof(*files->v));
			f = &files->v[files->n++];
			f->name = h.name;
			f->filename =
				h.filename != NULL ? h.filename : xstrdup("");
			f->content_type =
				h.content_type != NULL
					? h.content_type
					: xstrdup("application/octet-stream");
			f->data = (const uint8_t *)p;
			f->len = (size_t)(cend - p);
			memset(&h, 0, sizeof(h)); /* ownership moved */
		} else {
			if ((r = json_form_add(obj, h.name, p,
					       (size_t)(cend - p))) != 0) {
				set_err(errbuf, errlen,
					"multipart field is not valid UTF-8 "
					"text");
				goto out;
			}
			part_hdr_cleanup(&h);
		}
		p = cend + dlen;
	}
	r = 0;
	if (filesp != NULL) {
		*filesp = files;
		files = NULL;
	}
	goto out;
malformed:
	set_err(errbuf, errlen, "malformed multipart body");
	r = CINDER_ERR_MALFORMED;
out:
	part_hdr_cleanup(&h);
	json_files_free(files);
	free(boundary);
	free(delim);
	return r;
}

/* How json_body_parse() reads a body, from its Content-Type. */
enum body_kind {
	BODY_FORM,
	BODY_JSON,
	BODY_MULTIPART,
	BODY_UNSUPPORTED,
};

static enum body_kind
body_kind(const char *content_type, const uint8_t *body, size_t len)
{
	size_t i;

	if (content_type != NULL &&
	    media_type_is(content_type, "multipart/form-data"))
		return BODY_MULTIPART;
	if (content_type != NULL && media_type_is_json(content_type))
		return BODY_JSON;
	if (content_type == NULL || *content_type == '\0' ||
	    media_type_is(content_type, "text/plain")) {
		/* sniff: some clients post JSON as text/plain to skip CORS
		 * preflight, curl -d without -H sends forms */
		for (i = 0; i < len && isspace((unsigned char)body[i]); i++)
			;
		return i < len && body[i] == '{' ? BODY_JSON : BODY_FORM;
	}
	if (media_type_is(content_type, "application/x-www-form-urlencoded"))
		return BODY_FORM;
	return BODY_UNSUPPORTED;
}

bool
json_body_is_form(const char *content_type, const uint8_t *body, size_t len)
{
	return len > 0 && body_kind(content_type, body, len) == BODY_FORM;
}

/* The message of a form body json_form_parse() or form_check() refused. */
static void
form_err(int r, char *errbuf, size_t errlen)
{
	if (r == CINDER_ERR_TOO_BIG)
		set_err(errbuf, errlen, "too many form fields");
	else
		set_err(errbuf, errlen,
			"malformed form body: bad percent-escape, NUL byte or "
			"invalid UTF-8");
}

static void
limits_get(const struct json_limits *lim, size_t *max_body, size_t *max_fields,
	   size_t *max_files)
{
	*max_body = JSON_DEFAULT_MAX_BODY;
	*max_fields = JSON_DEFAULT_MAX_FIELDS;
	*max_files = JSON_DEFAULT_MAX_FILES;
	if (lim == NULL)
		return;
	if (lim->max_body != 0)
		*max_body = lim->max_body;
	if (lim->max_fields != 0)
		*max_fields = lim->max_fields;
	if (lim->max_files != 0)
		*max_files = lim->max_files;
}

/* A body within the route's limit, else CINDER_ERR_TOO_BIG and why. */
static int
body_fits(size_t len, size_t max_body, char *errbuf, size_t errlen)
{
	if (len <= max_body)
		return 0;
	set_err(errbuf, errlen, "request body is too large (limit %zu bytes)",
		max_body);
	return CINDER_ERR_TOO_BIG;
}

int
json_form_check(const uint8_t *body, size_t len, const struct json_limits *lim,
		char *errbuf, size_t errlen)
{
	size_t max_body, max_fields, max_files;
	int r;

	if (errbuf != NULL && errlen > 0)
		*errbuf = '\0';
	limits_get(lim, &max_body, &max_fields, &max_files);
	if ((r = body_fits(len, max_body, errbuf, errlen)) != 0)
		return r;
	if ((r = form_check((const char *)body, len, max_fields)) != 0)
		form_err(r, errbuf, errlen);
	return r;
}

int
json_body_parse(const char *content_type, const uint8_t *body, size_t len,
		const struct json_limits *lim, json_t **out,
		struct json_files **files, char *errbuf, size_t errlen)
{
	json_t *obj = NULL;
	json_error_t jerr;
	size_t max_body, max_fields, max_files;
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	if (files != NULL)
		*files = NULL;
	if (errbuf != NULL && errlen > 0)
		*errbuf = '\0';
	limits_get(lim, &max_body, &max_fields, &max_files);
	if ((r = body_fits(len, max_body, errbuf, errlen)) != 0)
		goto out;
	if (len == 0) {
		obj = json_object();
		goto done;
	}
	switch (body_kind(content_type, body, len)) {
	case BODY_MULTIPART:
		obj = json_object();
		r = multipart_parse(content_type, body, len, max_fields,
				    max_files, obj, files, errbuf, errlen);
		if (r != 0)
			goto out;
		break;
	case BODY_JSON:
		obj = json_loadb((const char *)body, len, 0, &jerr);
		if (obj == NULL) {
			set_err(errbuf, errlen,
				"malformed JSON body: %s (line %d, column %d)",
				jerr.text, jerr.line, jerr.column);
			r = CINDER_ERR_MALFORMED;
			goto out;
		}
		if (!json_is_object(obj)) {
			set_err(errbuf, errlen, "JSON body must be an object");
			r = CINDER_ERR_MALFORMED;
			goto out;
		}
		break;
	case BODY_FORM:
		obj = json_object();
		r = json_form_parse((const char *)body, len, obj, max_fields);
		if (r != 0) {
			form_err(r, errbuf, errlen);
			goto out;
		}
		break;
	case BODY_UNSUPPORTED:
		set_err(errbuf, errlen, "unsupported content type %.64s",
			content_type);
		r = CINDER_ERR_INVAL;
		goto out;
	}
done:
	r = 0;
	*out = obj;
	obj = NULL;
out:
	json_decref(obj);
	return r;
}

/* The one table from error code to HTTP status and default text (E8). */
static const struct {
	int err;
	int status;
	const char *text;
} err_table[] = {
	{0, 200, "OK"},
	{CINDER_ERR_INVAL, 400, "Bad Request"},
	{CINDER_ERR_MALFORMED, 400, "Bad Request"},
	{CINDER_ERR_AUTH, 401, "The access token provided is invalid."},
	{CINDER_ERR_FORBIDDEN, 403, "Forbidden"},
	{CINDER_ERR_NOTFOUND, 404, "Not Found"},
	{CINDER_ERR_TIMEOUT, 408, "Timed out."},
	{CINDER_ERR_CONFLICT, 409, "Conflict"},
	{CINDER_ERR_TOO_BIG, 413, "Request Entity Too Large"},
	{CINDER_ERR_BUSY, 429, "Too Many Requests"},
	{CINDER_ERR_UNAVAILABLE, 503, "Service Unavailable"},
};

int
json_err_status(int err)
{
	size_t i;

	for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].err == err)
			return err_table[i].status;
	return 500;
}

const char *
json_err_text(int err)
{
	size_t i;

	for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].err == err)
			return err_table[i].text;
	return "Internal Server Error";
}

json_t *
json_error_body(int err, const char *code, const char *desc)
{
	json_t *o;

	if (desc == NULL)
		desc = json_err_text(err);
	o = json_object();
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "error",
			    json_string(code != NULL ? code : desc));
	json_object_set_new(o, "error_description", json_string(desc));
	/* json_string() refuses invalid UTF-8; keep the envelope complete */
	if (json_object_get(o, "error") == NULL)
		json_object_set_new(o, "error",
				    json_string(json_err_text(err)));
	if (json_object_get(o, "error_description") == NULL)
		json_object_set_new(o, "error_description",
				    json_string(json_err_text(err)));
	return o;
}

char *
json_dump_compact(const json_t *v, size_t *lenp)
{
	/*
	 * Every REST answer goes through here: json_dumps grows a buffer from
	 * 16 bytes and copies the result once more; dumping into the stack
	 * first makes one allocation of the exact size for usual answers.
	 */
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	char tmp[2048];
	size_t n;
	char *s;

	if (lenp != NULL)
		*lenp = 0;
	if (v == NULL || (n = json_dumpb(v, tmp, sizeof(tmp), flags)) == 0)
		return NULL;
	s = xmalloc(n + 1);
	if (n <= sizeof(tmp))
		memcpy(s, tmp, n);
	else if (json_dumpb(v, s, n, flags) != n) {
		free(s);
		return NULL;
	}
	s[n] = '\0';
	if (lenp != NULL)
		*lenp = n;
	return s;
}

const char *
json_field_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

bool
json_field_bool(const json_t *obj, const char *key, bool *out)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;

	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return true;
	}
	if ((s = json_string_value(v)) == NULL)
		return false;
	if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) {
		*out = true;
		return true;
	}
	if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0) {
		*out = false;
		return true;
	}
	return false;
}

bool
json_field_int(const json_t *obj, const char *key, long long *out)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;
	char *end;
	long long n;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if ((s = json_string_value(v)) == NULL || *s == '\0')
		return false;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || isspace((unsigned char)*s))
		return false;
	*out = n;
	return true;
}
