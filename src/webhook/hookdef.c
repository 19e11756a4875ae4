/* SPDX-License-Identifier: MIT */
/*
 * Webhook definitions: validation into a canonical form, the template
 * context of an event, and the construction of the HTTP request
 * (cloud-api.md §3.1-§3.3). Pure.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "hmap.h"
#include "sse.h"
#include "webhook/hookdef.h"
#include "webhook/template.h"
#include "xmalloc.h"

static int
fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* The first of the names present in in, or NULL. */
static const json_t *
get_any(const json_t *in, const char *const *names)
{
	const json_t *v;

	for (; *names != NULL; names++)
		if ((v = json_object_get(in, *names)) != NULL &&
		    !json_is_null(v))
			return v;
	return NULL;
}

static int
check_tpl(const char *field, const char *s, size_t max, char *err,
	  size_t errlen)
{
	char terr[TEMPLATE_ERRLEN];

	if (strlen(s) > max)
		return fail(err, errlen, CINDER_ERR_TOO_BIG,
			    "%s: longer than %zu bytes", field, max);
	if (template_check(s, terr, sizeof(terr)) != 0)
		return fail(err, errlen, CINDER_ERR_INVAL,
			    "%s: template does not parse: %s", field, terr);
	return 0;
}

/* A boolean, also as the strings "true"/"false". */
static int
get_bool(const json_t *in, const char *field, bool dflt, bool *out, char *err,
	 size_t errlen)
{
	const json_t *v = json_object_get(in, field);

	*out = dflt;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0) {
		*out = true;
		return 0;
	}
	if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0) {
		*out = false;
		return 0;
	}
	return fail(err, errlen, CINDER_ERR_INVAL, "%s: must be true or false",
		    field);
}

/* An optional template string field, copied into out. */
static int
opt_tpl(const json_t *in, json_t *out, const char *field, size_t max, char *err,
	size_t errlen)
{
	const json_t *v = json_object_get(in, field);
	int r;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, CINDER_ERR_INVAL,
			    "%s: must be a string", field);
	if ((r = check_tpl(field, json_string_value(v), max, err, errlen)) != 0)
		return r;
	json_object_set(out, field, (json_t *)v);
	return 0;
}

/* headers, form, query: an object of template strings (numbers and
   booleans are taken as their text). */
static int
opt_map(const json_t *in, json_t *out, const char *field, char *err,
	size_t errlen)
{
	const json_t *v = json_object_get(in, field), *e;
	const char *k;
	json_t *m;
	char sub[96], num[64];
	int r = 0;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return fail(err, errlen, CINDER_ERR_INVAL,
			    "%s: must be an object", field);
	if (json_object_size(v) > HOOKDEF_MAX_ENTRIES)
		return fail(err, errlen, CINDER_ERR_TOO_BIG,
			    "%s: more than %d entries", field,
			    HOOKDEF_MAX_ENTRIES);
	m = json_object();
	json_object_foreach((json_t *)v, k, e)
	{
		const char *s;

		snprintf(sub, sizeof(sub), "%s.%.64s", field, k);
		if (k[0] == '\0') {
			r = fail(err, errlen, CINDER_ERR_INVAL, "%s: empty key",
				 field);
			break;
		}
		if (json_is_string(e))
			s = json_string_value(e);
		else if (json_is_integer(e) || json_is_real(e) ||
			 json_is_boolean(e)) {
			char *d = json_dumps(e, JSON_ENCODE_ANY);

			snprintf(num, sizeof(num), "%s", d ? d : "");
			free(d);
			s = num;
		} else {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "%s: must be a string", sub);
			break;
		}
		if ((r = check_tpl(sub, k, 1024, err, errlen)) != 0 ||
		    (r = check_tpl(sub, s, HOOKDEF_FIELD_MAX, err, errlen)) !=
			    0)
			break;
		if (strcmp(field, "headers") == 0 &&
		    (strpbrk(k, "\r\n:") != NULL || strpbrk(s, "\r\n"))) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "%s: line breaks or ':' in a header", sub);
			break;
		}
		json_object_set_new(m, k, json_string(s));
	}
	if (r == 0)
		json_object_set(out, field, m);
	json_decref(m);
	return r;
}

/* Every string (keys and values) of a json template object. */
static int
check_json_tree(const json_t *v, int depth, char *err, size_t errlen)
{
	const char *k;
	const json_t *e;
	size_t i;
	int r;

	if (depth > 32)
		return fail(err, errlen, CINDER_ERR_TOO_BIG,
			    "json: nested deeper than 32");
	if (json_is_string(v))
		return check_tpl("json", json_string_value(v),
				 HOOKDEF_FIELD_MAX, err, errlen);
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
		{
			if ((r = check_tpl("json", k, 1024, err, errlen)) !=
				    0 ||
			    (r = check_json_tree(e, depth + 1, err, errlen)) !=
				    0)
				return r;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i,
				   e) if ((r = check_json_tree(e, depth + 1,
							       err, errlen)) !=
					  0) return r;
	}
	return 0;
}

static bool
url_scheme_ok(const char *u)
{
	size_t n = strncasecmp(u, "http://", 7) == 0	? 7
		   : strncasecmp(u, "https://", 8) == 0 ? 8
							: 0;

	return n > 0 && u[n] != '\0' && u[n] != '/';
}

int
hookdef_validate(const json_t *in, json_t **outp, char *err, size_t errlen)
{
	static const char *const ev_names[] = {"event", "eventName", NULL};
	static const char *const dev_names[] = {"deviceID", "deviceId",
						"deviceid", NULL};
	const json_t *v, *a;
	json_t *out = json_object();
	const char *s;
	char method[8];
	bool b;
	int r = CINDER_ERR_INVAL, nbody = 0;
	size_t i, dumped;

	*outp = NULL;
	if (!json_is_object(in)) {
		r = fail(err, errlen, CINDER_ERR_INVAL,
			 "definition: must be a JSON object");
		goto out;
	}
	dumped = json_dumpb(in, NULL, 0, JSON_COMPACT);
	if (dumped > HOOKDEF_MAX_SIZE) {
		r = fail(err, errlen, CINDER_ERR_TOO_BIG,
			 "definition: larger than %d bytes", HOOKDEF_MAX_SIZE);
		goto out;
	}
	/* event */
	v = get_any(in, ev_names);
	if (v == NULL || !json_is_string(v) || json_string_length(v) == 0) {
		r = fail(err, errlen, CINDER_ERR_INVAL,
			 "event: no event name provided");
		goto out;
	}
	s = json_string_value(v);
	if (json_string_length(v) > HOOKDEF_EVENT_MAX) {
		r = fail(err, errlen, CINDER_ERR_TOO_BIG,
			 "event: longer than %d characters", HOOKDEF_EVENT_MAX);
		goto out;
	}
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "event: control characters");
			goto out;
		}
	json_object_set_new(out, "event", json_string(s));
	/* url */
	v = json_object_get(in, "url");
	if (v == NULL || !json_is_string(v) || json_string_length(v) == 0) {
		r = fail(err, errlen, CINDER_ERR_INVAL, "url: no url provided");
		goto out;
	}
	s = json_string_value(v);
	if ((r = check_tpl("url", s, HOOKDEF_URL_MAX, err, errlen)) != 0)
		goto out;
	if (!url_scheme_ok(s) || strpbrk(s, " \t\r\n") != NULL) {
		r = fail(err, errlen, CINDER_ERR_INVAL,
			 "url: must be an http:// or https:// URL with a "
			 "host and no spaces");
		goto out;
	}
	json_object_set_new(out, "url", json_string(s));
	/* requestType */
	v = json_object_get(in, "requestType");
	snprintf(method, sizeof(method), "POST");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) >= 8) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "requestType: wrong requestType (GET, POST, "
				 "PUT or DELETE)");
			goto out;
		}
		for (i = 0; i <= json_string_length(v); i++)
			method[i] = (char)toupper(
				(unsigned char)json_string_value(v)[i]);
		if (strcmp(method, "GET") && strcmp(method, "POST") &&
		    strcmp(method, "PUT") && strcmp(method, "DELETE")) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "requestType: wrong requestType (GET, POST, "
				 "PUT or DELETE)");
			goto out;
		}
	}
	json_object_set_new(out, "requestType", json_string(method));
	/* deviceID: an id (lower-cased) or a device name (the API looks it
	   up among the owner's devices) */
	v = get_any(in, dev_names);
	if (v != NULL && json_is_string(v) && json_string_length(v) == 24 &&
	    strspn(json_string_value(v), "0123456789abcdefABCDEF") == 24) {
		char id[25];

		for (i = 0; i <= 24; i++)
			id[i] = (char)tolower(
				(unsigned char)json_string_value(v)[i]);
		json_object_set_new(out, "deviceID", json_string(id));
	} else if (v != NULL) {
		s = json_is_string(v) ? json_string_value(v) : NULL;
		if (s == NULL || json_string_length(v) > 63 ||
		    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
			      "VWXYZ0123456789_-") != json_string_length(v)) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "deviceID: must be a device id or name");
			goto out;
		}
		json_object_set_new(out, "deviceID", json_string(s));
	} else {
		json_object_set_new(out, "deviceID", json_string(""));
	}
	/* name */
	v = json_object_get(in, "name");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v) ||
		    json_string_length(v) > HOOKDEF_NAME_MAX) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "name: must be a string of at most %d bytes",
				 HOOKDEF_NAME_MAX);
			goto out;
		}
		json_object_set(out, "name", (json_t *)v);
	}
	/* booleans */
	if ((r = get_bool(in, "disabled", false, &b, err, errlen)) != 0)
		goto out;
	json_object_set_new(out, "disabled", json_boolean(b));
	if ((r = get_bool(in, "noDefaults", false, &b, err, errlen)) != 0)
		goto out;
	json_object_set_new(out, "noDefaults", json_boolean(b));
	if ((r = get_bool(in, "rejectUnauthorized", true, &b, err, errlen)) !=
	    0)
		goto out;
	json_object_set_new(out, "rejectUnauthorized", json_boolean(b));
	/* bodies */
	v = json_object_get(in, "json");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_object(v) && !json_is_string(v) &&
		    !json_is_array(v)) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "json: must be an object or a string");
			goto out;
		}
		if ((r = check_json_tree(v, 0, err, errlen)) != 0)
			goto out;
		json_object_set(out, "json", (json_t *)v);
		nbody++;
	}
	if ((r = opt_map(in, out, "form", err, errlen)) != 0)
		goto out;
	nbody += json_object_get(out, "form") != NULL;
	if ((r = opt_tpl(in, out, "body", HOOKDEF_FIELD_MAX, err, errlen)) != 0)
		goto out;
	nbody += json_object_get(out, "body") != NULL;
	if (nbody > 1) {
		r = fail(err, errlen, CINDER_ERR_INVAL,
			 "json: json, form and body are mutually exclusive");
		goto out;
	}
	if ((r = opt_map(in, out, "query", err, errlen)) != 0 ||
	    (r = opt_map(in, out, "headers", err, errlen)) != 0)
		goto out;
	/* auth */
	a = json_object_get(in, "auth");
	if (a != NULL && !json_is_null(a)) {
		const json_t *u = json_object_get(a, "username");
		const json_t *p = json_object_get(a, "password");

		if (!json_is_object(a) || !json_is_string(u) ||
		    (p != NULL && !json_is_string(p))) {
			r = fail(err, errlen, CINDER_ERR_INVAL,
				 "auth: must be {\"username\": ..., "
				 "\"password\": ...} strings");
			goto out;
		}
		if ((r = check_tpl("auth.username", json_string_value(u), 1024,
				   err, errlen)) != 0 ||
		    (p != NULL &&
		     (r = check_tpl("auth.password", json_string_value(p), 1024,
				    err, errlen)) != 0))
			goto out;
		json_object_set_new(out, "auth",
				    json_pack("{s:O, s:s}", "username", u,
					      "password",
					      p ? json_string_value(p) : ""));
	}
	if ((r = opt_tpl(in, out, "responseTopic", 1024, err, errlen)) != 0 ||
	    (r = opt_tpl(in, out, "errorResponseTopic", 1024, err, errlen)) !=
		    0 ||
	    (r = opt_tpl(in, out, "responseTemplate", HOOKDEF_FIELD_MAX, err,
			 errlen)) != 0)
		goto out;
	*outp = out;
	out = NULL;
	r = 0;
out:
	json_decref(out);
	return r;
}

/* ---- the context of an event ---- */

static char *
base64(const uint8_t *p, size_t n)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
		"tuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = tbl[p[i] >> 2];
		*o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tbl[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = tbl[p[i + 2] & 63];
	}
	if (i < n) {
		*o++ = tbl[p[i] >> 2];
		if (i + 1 < n) {
			*o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*o++ = tbl[(p[i + 1] & 15) << 2];
		} else {
			*o++ = tbl[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* The default fields as an object (data is a string or null). */
static json_t *
default_fields(const json_t *ctx)
{
	const json_t *d = json_object_get(ctx, "PARTICLE_EVENT_VALUE");

	return json_pack("{s:O, s:O, s:O, s:O}", "event",
			 json_object_get(ctx, "PARTICLE_EVENT_NAME"), "data",
			 d ? d : json_null(), "published_at",
			 json_object_get(ctx, "PARTICLE_PUBLISHED_AT"),
			 "coreid", json_object_get(ctx, "PARTICLE_DEVICE_ID"));
}

json_t *
hookdef_context(const struct hookdef_event *e)
{
	return hookdef_context_some(e, HOOKCTX_ALL);
}

json_t *
hookdef_context_some(const struct hookdef_event *e, unsigned needs)
{
	json_t *ctx = NULL, *data, *def;
	char when[25], num[32];
	char *s;

	if (needs & HOOKCTX_JSON)
		needs |= HOOKCTX_DEFAULTS;
	if ((needs & HOOKCTX_DATA) && e->data != NULL && e->data_len > 0) {
		ctx = json_loadb(e->data, e->data_len, 0, NULL);
		if (!json_is_object(ctx)) {
			json_decref(ctx);
			ctx = NULL;
		}
	}
	if (ctx == NULL)
		ctx = json_object();
	if (needs & (HOOKCTX_PUBLISHED_AT | HOOKCTX_SPARK))
		sse_format_time(e->published_ms, when);
	data = e->data != NULL ? json_stringn_nocheck(e->data, e->data_len)
			       : json_null();
	if (data == NULL) /* NUL in data: take the text before it */
		data = json_string_nocheck(e->data);
	if (needs & HOOKCTX_DEVICE_ID)
		json_object_set_new(ctx, "PARTICLE_DEVICE_ID",
				    json_string(e->coreid));
	if (needs & HOOKCTX_EVENT_NAME)
		json_object_set_new(ctx, "PARTICLE_EVENT_NAME",
				    json_string(e->name));
	if (needs & HOOKCTX_EVENT_VALUE)
		json_object_set(ctx, "PARTICLE_EVENT_VALUE", data);
	if (needs & HOOKCTX_PUBLISHED_AT)
		json_object_set_new(ctx, "PARTICLE_PUBLISHED_AT",
				    json_string(when));
	if (needs & HOOKCTX_EVENT_ID) {
		snprintf(num, sizeof(num), "%llu",
			 (unsigned long long)e->event_id);
		json_object_set_new(ctx, "PARTICLE_EVENT_ID", json_string(num));
	}
	if ((needs & HOOKCTX_PRODUCT_ID) && e->product_id != 0)
		json_object_set_new(ctx, "PRODUCT_ID",
				    json_integer(e->product_id));
	if (needs & HOOKCTX_SPARK) {
		json_object_set_new(ctx, "SPARK_CORE_ID",
				    json_string(e->coreid));
		json_object_set_new(ctx, "SPARK_EVENT_NAME",
				    json_string(e->name));
		json_object_set(ctx, "SPARK_EVENT_VALUE", data);
		json_object_set_new(ctx, "SPARK_PUBLISHED_AT",
				    json_string(when));
	}
	if (needs & HOOKCTX_JSON) {
		def = default_fields(ctx);
		s = json_dumps(def, JSON_COMPACT);
		json_object_set_new(ctx, "PARTICLE_EVENT_JSON", json_string(s));
		free(s);
		json_decref(def);
	}
	if (needs & HOOKCTX_BASE64) {
		s = base64((const uint8_t *)(e->data ? e->data : ""),
			   e->data ? e->data_len : 0);
		json_object_set_new(ctx, "PARTICLE_EVENT_BASE64",
				    json_string(s));
		free(s);
	}
	json_decref(data);
	return ctx;
}

/* ---- plans: a definition's templates parsed once ---- */

struct hookplan {
	unsigned refs;
	json_t *def;	   /* a reference */
	struct hmap *tpls; /* template text address -> struct template */
	unsigned needs;	   /* HOOKCTX_* */
	size_t ntags;	   /* tag names in the templates parsed so far */
	bool hdr_static;   /* no header template has a tag */
	void *user;
	void (*user_free)(void *);
};

/* The names of the context and their HOOKCTX_* bits. */
static const struct {
	const char *name;
	unsigned bit;
} ctx_names[] = {
	{"PARTICLE_DEVICE_ID", HOOKCTX_DEVICE_ID},
	{"PARTICLE_EVENT_NAME", HOOKCTX_EVENT_NAME},
	{"PARTICLE_EVENT_VALUE", HOOKCTX_EVENT_VALUE},
	{"PARTICLE_PUBLISHED_AT", HOOKCTX_PUBLISHED_AT},
	{"PARTICLE_EVENT_ID", HOOKCTX_EVENT_ID},
	{"PRODUCT_ID", HOOKCTX_PRODUCT_ID},
	{"SPARK_CORE_ID", HOOKCTX_SPARK},
	{"SPARK_EVENT_NAME", HOOKCTX_SPARK},
	{"SPARK_EVENT_VALUE", HOOKCTX_SPARK},
	{"SPARK_PUBLISHED_AT", HOOKCTX_SPARK},
	{"PARTICLE_EVENT_JSON", HOOKCTX_JSON},
	{"PARTICLE_EVENT_BASE64", HOOKCTX_BASE64},
};

/* What a tag name needs: its first path segment decides; any other name
   may be a key of the data (also inside a section). */
static void
name_needs(const char *name, size_t len, void *arg)
{
	struct hookplan *p = arg;
	unsigned *needs = &p->needs;
	const char *dot = memchr(name, '.', len);
	size_t n = dot ? (size_t)(dot - name) : len, i;

	p->ntags++;
	if (n == 0) { /* "." : the whole context */
		*needs |= HOOKCTX_ALL;
		return;
	}
	for (i = 0; i < sizeof(ctx_names) / sizeof(ctx_names[0]); i++)
		if (strlen(ctx_names[i].name) == n &&
		    memcmp(ctx_names[i].name, name, n) == 0) {
			*needs |= ctx_names[i].bit;
			return;
		}
	*needs |= HOOKCTX_DATA;
}

static void
plan_add(struct hookplan *p, const char *text)
{
	struct template *t;

	if (text == NULL || hmap_get(p->tpls, &text, sizeof(text)) != NULL)
		return;
	if (template_parse(text, strlen(text), &t, NULL, 0) != 0) {
		/* rendered (and refused) per request, as without a plan */
		p->needs |= HOOKCTX_ALL;
		p->ntags++;
		return;
	}
	template_foreach_name(t, name_needs, p);
	hmap_put(p->tpls, &text, sizeof(text), t, NULL);
}

/* Every string and object key of v. */
static void
plan_walk(struct hookplan *p, const json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	if (json_is_string(v)) {
		plan_add(p, json_string_value(v));
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
		{
			plan_add(p, k);
			plan_walk(p, e);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) plan_walk(p, e);
	}
}

struct hookplan *
hookplan_new(json_t *def)
{
	static const char *const fields[] = {
		"url",
		"body",
		"json",
		"form",
		"query",
		"headers",
		"auth",
		"responseTopic",
		"errorResponseTopic",
		"responseTemplate",
	};
	struct hookplan *p = xcalloc(1, sizeof(*p));
	size_t i;

	p->refs = 1;
	p->def = json_incref(def);
	p->tpls = hmap_new();
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t before = p->ntags;

		plan_walk(p, json_object_get(def, fields[i]));
		if (strcmp(fields[i], "headers") == 0)
			p->hdr_static = p->ntags == before;
	}
	if (!json_is_true(json_object_get(def, "noDefaults")))
		p->needs |= HOOKCTX_DEFAULTS;
	return p;
}

struct hookplan *
hookplan_ref(struct hookplan *p)
{
	p->refs++;
	return p;
}

static int
tpl_free(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	template_free(value);
	return 0;
}

void
hookplan_unref(struct hookplan *p)
{
	if (p == NULL || --p->refs > 0)
		return;
	if (p->user_free != NULL)
		p->user_free(p->user);
	hmap_foreach(p->tpls, tpl_free, NULL);
	hmap_free(p->tpls);
	json_decref(p->def);
	free(p);
}

const json_t *
hookplan_def(const struct hookplan *p)
{
	return p->def;
}

unsigned
hookplan_needs(const struct hookplan *p)
{
	return p->needs;
}

bool
hookplan_headers_static(const struct hookplan *p)
{
	return p->hdr_static;
}

void
hookplan_set_user(struct hookplan *p, void *user, void (*fn)(void *))
{
	if (p->user_free != NULL)
		p->user_free(p->user);
	p->user = user;
	p->user_free = fn;
}

void *
hookplan_user(const struct hookplan *p)
{
	return p->user;
}

char *
hookplan_render(const struct hookplan *p, const char *tpl, const json_t *ctx)
{
	const struct template *t =
		p != NULL ? hmap_get(p->tpls, &tpl, sizeof(tpl)) : NULL;
	char *out = NULL;

	if (t == NULL)
		return template_expand(tpl, ctx, &out, NULL, 0) == 0 ? out
								     : NULL;
	return template_render(t, ctx, &out, NULL) == 0 ? out : NULL;
}

/* ---- request construction ---- */

char *
hookdef_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), i;
	char *out = xmalloc(n * 3 + 1), *o = out;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

/* Append k=v (both rendered templates, then encoded) to a form string. */
static int
form_add(const struct hookplan *p, char **acc, const char *k, const char *v,
	 bool render_it, const json_t *ctx)
{
	char *rk = render_it ? hookplan_render(p, k, ctx) : xstrdup(k);
	char *rv = render_it ? hookplan_render(p, v, ctx) : xstrdup(v);
	char *ek, *evl, *n;
	int r = 0;

	if (rk == NULL || rv == NULL) {
		r = CINDER_ERR_TOO_BIG;
		goto out;
	}
	ek = hookdef_urlencode(rk);
	evl = hookdef_urlencode(rv);
	n = xasprintf("%s%s%s=%s", *acc ? *acc : "", *acc ? "&" : "", ek, evl);
	free(ek);
	free(evl);
	free(*acc);
	*acc = n;
out:
	free(rk);
	free(rv);
	return r;
}

static int
form_map(const struct hookplan *p, char **acc, const json_t *m,
	 const json_t *ctx)
{
	const char *k;
	json_t *v;
	int r;

	json_object_foreach((json_t *)m, k, v)
	{
		if ((r = form_add(p, acc, k, json_string_value(v), true,
				  ctx)) != 0)
			return r;
	}
	return 0;
}

/* Defaults (not rendered) into a form string; data null gives "". */
static void
form_defaults(char **acc, const json_t *ctx)
{
	json_t *d = default_fields(ctx), *v;
	const char *k;

	json_object_foreach(d, k, v) form_add(
		NULL, acc, k, json_is_string(v) ? json_string_value(v) : "",
		false, ctx);
	json_decref(d);
}

/* Render every string (and key) of a json template tree. */
static json_t *
render_tree(const struct hookplan *p, const json_t *v, const json_t *ctx)
{
	json_t *out, *e;
	const char *k;
	size_t i;
	char *s, *rk;

	if (json_is_string(v)) {
		if ((s = hookplan_render(p, json_string_value(v), ctx)) == NULL)
			return NULL;
		out = json_string(s);
		if (out == NULL) /* not UTF-8 */
			out = json_string("");
		free(s);
		return out;
	}
	if (json_is_object(v)) {
		out = json_object();
		json_object_foreach((json_t *)v, k, e)
		{
			json_t *r = render_tree(p, e, ctx);

			rk = hookplan_render(p, k, ctx);
			if (r == NULL || rk == NULL) {
				json_decref(r);
				free(rk);
				json_decref(out);
				return NULL;
			}
			json_object_set_new(out, rk, r);
			free(rk);
		}
		return out;
	}
	if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, e)
		{
			json_t *r = render_tree(p, e, ctx);

			if (r == NULL) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, r);
		}
		return out;
	}
	return json_deep_copy(v);
}

static void
header_add(struct hookreq *r, const char *k, const char *v)
{
	r->headers =
		xreallocarray(r->headers, r->nheaders + 1, sizeof(*r->headers));
	r->headers[r->nheaders++] = xasprintf("%s: %s", k, v);
}

static bool
has_header(const struct hookreq *r, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < r->nheaders; i++)
		if (strncasecmp(r->headers[i], name, n) == 0 &&
		    r->headers[i][n] == ':')
			return true;
	return false;
}

static int
build_body(const struct hookplan *p, const json_t *def, const json_t *ctx,
	   struct hookreq *out, bool defaults, const char **ctype)
{
	const json_t *j = json_object_get(def, "json");
	const json_t *f = json_object_get(def, "form");
	const json_t *b = json_object_get(def, "body");
	char *acc = NULL;
	json_t *rj;
	int r;

	if (j != NULL) {
		rj = render_tree(p, j, ctx);
		if (rj == NULL)
			return CINDER_ERR_TOO_BIG;
		if (json_is_string(rj)) {
			/* a string template: the JSON text itself */
			json_t *parsed = json_loads(json_string_value(rj),
						    JSON_DECODE_ANY, NULL);

			if (json_is_object(parsed) && defaults) {
				json_t *d = default_fields(ctx);

				json_object_update_missing(parsed, d);
				json_decref(d);
				out->body = json_dumps(parsed, JSON_COMPACT);
			} else {
				out->body = xstrdup(json_string_value(rj));
			}
			json_decref(parsed);
		} else {
			if (json_is_object(rj) && defaults) {
				json_t *d = default_fields(ctx);

				json_object_update_missing(rj, d);
				json_decref(d);
			}
			out->body = json_dumps(rj, JSON_COMPACT);
		}
		json_decref(rj);
		*ctype = "application/json";
	} else if (b != NULL) {
		if ((out->body = hookplan_render(p, json_string_value(b),
						 ctx)) == NULL)
			return CINDER_ERR_TOO_BIG;
	} else if (strcmp(out->method, "GET") != 0 && (f != NULL || defaults)) {
		if (f != NULL && (r = form_map(p, &acc, f, ctx)) != 0) {
			free(acc);
			return r;
		}
		if (defaults) {
			/* the defaults do not override the form's fields */
			json_t *d = default_fields(ctx), *v;
			const char *k;

			json_object_foreach(
				d, k, v) if (f == NULL ||
					     json_object_get(f, k) == NULL)
				form_add(NULL, &acc, k,
					 json_is_string(v)
						 ? json_string_value(v)
						 : "",
					 false, ctx);
			json_decref(d);
		}
		out->body = acc ? acc : xstrdup("");
		*ctype = "application/x-www-form-urlencoded";
	}
	if (out->body != NULL)
		out->body_len = strlen(out->body);
	return 0;
}

static int
build(const struct hookplan *p, const json_t *def, const json_t *ctx,
      struct hookreq *out, char *err, size_t errlen)
{
	const json_t *q = json_object_get(def, "query");
	const json_t *h = json_object_get(def, "headers");
	const json_t *a = json_object_get(def, "auth");
	bool defaults = !json_is_true(json_object_get(def, "noDefaults"));
	bool is_get;
	const char *ctype = NULL, *k;
	char *url, *qs = NULL;
	json_t *v;
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(out->method, sizeof(out->method), "%s",
		 json_string_value(json_object_get(def, "requestType")));
	is_get = strcmp(out->method, "GET") == 0;
	url = hookplan_render(p, json_string_value(json_object_get(def, "url")),
			      ctx);
	if (url == NULL)
		return fail(err, errlen, CINDER_ERR_TOO_BIG,
			    "url: rendering too long");
	if (!url_scheme_ok(url) || strpbrk(url, " \t\r\n") != NULL) {
		free(url);
		return fail(err, errlen, CINDER_ERR_INVAL,
			    "url: rendered URL is not an http(s) URL");
	}
	if (q != NULL && (r = form_map(p, &qs, q, ctx)) != 0)
		goto toobig;
	if (is_get) {
		const json_t *f = json_object_get(def, "form");

		if (f != NULL && (r = form_map(p, &qs, f, ctx)) != 0)
			goto toobig;
		if (defaults && json_object_get(def, "json") == NULL &&
		    json_object_get(def, "body") == NULL)
			form_defaults(&qs, ctx);
	}
	if (qs != NULL) {
		out->url = xasprintf("%s%s%s", url,
				     strchr(url, '?') ? "&" : "?", qs);
		free(url);
		free(qs);
		qs = NULL;
	} else {
		out->url = url;
	}
	url = NULL;
	if ((r = build_body(p, def, ctx, out, defaults, &ctype)) != 0)
		goto toobig;
	json_object_foreach((json_t *)h, k, v)
	{
		char *rk = hookplan_render(p, k, ctx),
		     *rv = hookplan_render(p, json_string_value(v), ctx);

		if (rk == NULL || rv == NULL || strpbrk(rk, "\r\n:") ||
		    strpbrk(rv, "\r\n") || rk[0] == '\0') {
			free(rk);
			free(rv);
			return fail(err, errlen, CINDER_ERR_INVAL,
				    "headers: a rendered header is empty or "
				    "has a line break");
		}
		header_add(out, rk, rv);
		free(rk);
		free(rv);
	}
	if (!has_header(out, "User-Agent"))
		header_add(out, "User-Agent", HOOKDEF_USER_AGENT);
	if (ctype != NULL && !has_header(out, "Content-Type"))
		header_add(out, "Content-Type", ctype);
	if (a != NULL) {
		out->username = hookplan_render(
			p, json_string_value(json_object_get(a, "username")),
			ctx);
		out->password = hookplan_render(
			p, json_string_value(json_object_get(a, "password")),
			ctx);
		if (out->username == NULL || out->password == NULL)
			return fail(err, errlen, CINDER_ERR_TOO_BIG,
				    "auth: rendering too long");
	}
	return 0;
toobig:
	free(url);
	free(qs);
	return fail(err, errlen, CINDER_ERR_TOO_BIG,
		    "a rendered field is too long");
}

int
hookreq_build(const json_t *def, const json_t *ctx, struct hookreq *out,
	      char *err, size_t errlen)
{
	return build(NULL, def, ctx, out, err, errlen);
}

int
hookreq_build_plan(const struct hookplan *p, const json_t *ctx,
		   struct hookreq *out, char *err, size_t errlen)
{
	return build(p, p->def, ctx, out, err, errlen);
}

void
hookreq_clear(struct hookreq *r)
{
	size_t i;

	free(r->url);
	for (i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
	free(r->body);
	if (r->password != NULL)
		explicit_bzero(r->password, strlen(r->password));
	free(r->username);
	free(r->password);
	memset(r, 0, sizeof(*r));
}

char *
hookdef_render_field(const json_t *def, const char *field, const char *dflt,
		     const json_t *ctx)
{
	const json_t *v = json_object_get(def, field);
	const char *tpl = json_is_string(v) ? json_string_value(v) : dflt;

	return hookplan_render(NULL, tpl, ctx);
}

char *
hookplan_render_field(const struct hookplan *p, const char *field,
		      const char *dflt, const json_t *ctx)
{
	const json_t *v = json_object_get(p->def, field);
	const char *tpl = json_is_string(v) ? json_string_value(v) : dflt;

	return hookplan_render(p, tpl, ctx);
}
