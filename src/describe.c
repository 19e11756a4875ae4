/* SPDX-License-Identifier: MIT */
/*
 * Describe parser (protocol.md §4): JSON from the device -> struct
 * describe, plus the safe-mode analysis (§4.4) and the module version ->
 * Device OS release table. Strict on types, lenient on unknown keys
 * (newer firmware may add some). Pure: no I/O, no logging.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "describe.h"
#include "err.h"
#include "xmalloc.h"

/*
 * System module version -> release (device-os system/system-versions.md).
 * Where one number served two releases the final release is listed;
 * 312 was 0.8.0-rc.14 on the Gen2 (TCP) platforms.
 */
static const struct {
	uint32_t v;
	const char *release;
} describe_releases[] = {
	{0, "0.4.0"},
	{1, "0.4.1"},
	{2, "0.4.2"},
	{3, "0.4.3"},
	{5, "0.4.4"},
	{6, "0.4.5"},
	{7, "0.4.6"},
	{8, "0.4.7"},
	{9, "0.4.8-rc.1"},
	{10, "0.4.8-rc.6"},
	{11, "0.4.9"},
	{12, "0.5.0-rc.1"},
	{13, "0.5.0"},
	{14, "0.5.1-rc.1"},
	{15, "0.5.1"},
	{16, "0.5.2-rc.1"},
	{17, "0.5.2"},
	{18, "0.5.3-rc.1"},
	{19, "0.5.3-rc.2"},
	{20, "0.5.3-rc.3"},
	{21, "0.5.3"},
	{22, "0.5.4"},
	{23, "0.5.5"},
	{100, "0.6.0-rc.1"},
	{101, "0.6.0-rc.2"},
	{102, "0.6.0"},
	{103, "0.6.1-rc.1"},
	{104, "0.6.1-rc.2"},
	{105, "0.6.1"},
	{106, "0.6.2-rc.1"},
	{107, "0.6.2-rc.2"},
	{108, "0.6.2"},
	{109, "0.6.3"},
	{110, "0.6.4"},
	{200, "0.7.0-rc.1"},
	{201, "0.7.0-rc.2"},
	{202, "0.7.0-rc.3"},
	{203, "0.7.0-rc.4"},
	{204, "0.7.0-rc.5"},
	{205, "0.7.0-rc.6"},
	{206, "0.7.0-rc.7"},
	{207, "0.7.0"},
	{300, "0.8.0-rc.1"},
	{301, "0.8.0-rc.2"},
	{302, "0.8.0-rc.3"},
	{303, "0.8.0-rc.4"},
	{304, "0.8.0-rc.5"},
	{305, "0.8.0-rc.6"},
	{306, "0.8.0-rc.7"},
	{307, "0.8.0-rc.8"},
	{308, "0.8.0-rc.9"},
	{309, "0.8.0-rc.10"},
	{310, "0.8.0-rc.11"},
	{311, "0.8.0-rc.12"},
	{312, "0.8.0-rc.14"},
	{314, "0.8.0-rc.15"},
	{315, "0.8.0-rc.16"},
	{316, "0.8.0-rc.17"},
	{317, "0.8.0-rc.18"},
	{318, "0.8.0-rc.19"},
	{319, "0.8.0-rc.20"},
	{320, "0.8.0-rc.21"},
	{321, "0.8.0-rc.22"},
	{322, "0.8.0-rc.23"},
	{323, "0.8.0-rc.24"},
	{324, "0.8.0-rc.25"},
	{325, "0.8.0-rc.26"},
	{326, "0.8.0-rc.27"},
	{400, "0.9.0-rc.1"},
	{401, "0.9.0-rc.2"},
	{402, "0.9.0-rc.3"},
	{403, "0.9.0"},
	{1000, "1.0.0"},
	{1001, "1.0.1-rc.1"},
	{1002, "1.0.1"},
	{1100, "1.1.0-rc.1"},
	{1101, "1.1.0-rc.2"},
	{1102, "1.1.0"},
	{1200, "1.2.0-alpha.1"},
	{1201, "1.2.0-beta.1"},
	{1202, "1.2.0-rc.1"},
	{1210, "1.2.1-rc.1"},
	{1211, "1.2.1-rc.2"},
	{1212, "1.2.1-rc.3"},
	{1213, "1.2.1"},
	{1300, "1.3.0-alpha.1"},
	{1301, "1.3.0-rc.1"},
	{1320, "1.3.1-rc.1"},
	{1321, "1.3.1"},
	{1400, "1.4.0-rc.1"},
	{1401, "1.4.0"},
	{1402, "1.4.1-rc.1"},
	{1403, "1.4.1"},
	{1404, "1.4.2"},
	{1405, "1.4.3"},
	{1406, "1.4.4"},
	{1407, "1.4.5-b5som.1"},
	{1408, "1.4.5-b5som.2"},
	{1500, "1.5.0-rc.1"},
	{1501, "1.5.0-rc.2"},
	{1502, "1.5.0"},
	{1503, "1.5.1-tracker.1"},
	{1504, "1.5.1-tracker.2"},
	{1505, "1.5.1-tracker.3"},
	{1510, "1.5.1-rc.1"},
	{1511, "1.5.1"},
	{1512, "1.5.2"},
	{1513, "1.5.3-tracker.1"},
	{1514, "1.5.4-rc.1"},
	{1515, "1.5.4-rc.2"},
	{2000, "2.0.0-alpha.1"},
	{2001, "2.0.0-alpha.2"},
	{2002, "2.0.0-alpha.3"},
	{2003, "2.0.0-alpha.4"},
	{2004, "2.0.0-rc.1"},
	{2005, "2.0.0-rc.2"},
	{2006, "2.0.0-rc.3"},
	{2007, "2.0.0-rc.4"},
	{2008, "2.0.0"},
	{2009, "2.0.1-alpha.1"},
	{2010, "2.0.1-alpha.2"},
	{2011, "2.0.1"},
	{2100, "2.1.0-rc.1"},
	{2101, "2.1.0"},
	{2200, "2.2.0-rc.1"},
	{2201, "2.2.0-rc.2"},
	{2202, "2.2.0"},
	{2300, "2.3.0-rc.1"},
	{2301, "2.3.0"},
	{3000, "3.0.0-alpha.1"},
	{3001, "3.0.0-alpha.2"},
	{3002, "3.0.0-beta.1"},
	{3003, "3.0.0-rc.1"},
	{3004, "3.0.0-rc.2"},
	{3005, "3.0.0"},
	{3100, "3.1.0-alpha.1"},
	{3101, "3.1.0-alpha.2"},
	{3102, "3.1.0-rc.1"},
	{3103, "3.1.0"},
	{3200, "3.2.0-rc.1"},
	{3201, "3.2.0"},
};

static void
describe_seterr(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

const char *
describe_var_type_str(int code)
{
	switch (code) {
	case 1:
		return "bool";
	case 2:
		return "int32";
	case 4:
		return "string";
	case 9:
		return "double";
	default:
		return NULL;
	}
}

int
describe_var_type_code(const char *name)
{
	static const int codes[] = {1, 2, 4, 9};
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if (strcmp(describe_var_type_str(codes[i]), name) == 0)
			return codes[i];
	}
	return -1;
}

/* A JSON integer in [0, max]. */
static bool
describe_get_uint(const json_t *j, uint32_t max, uint32_t *v)
{
	json_int_t n;

	if (!json_is_integer(j))
		return false;
	n = json_integer_value(j);
	if (n < 0 || (uint64_t)n > max)
		return false;
	*v = (uint32_t)n;
	return true;
}

/* A one-character JSON string. */
static bool
describe_get_char(const json_t *j, char *c)
{
	if (!json_is_string(j) || json_string_length(j) != 1)
		return false;
	*c = json_string_value(j)[0];
	return *c > ' ' && *c < 0x7f;
}

/* Module index: a decimal string ("2") as Device OS sends, or a number. */
static bool
describe_get_index(const json_t *j, int *index)
{
	const char *p;
	size_t len, i;
	uint32_t v = 0;

	if (json_is_integer(j)) {
		if (!describe_get_uint(j, 255, &v))
			return false;
		*index = (int)v;
		return true;
	}
	if (!json_is_string(j))
		return false;
	p = json_string_value(j);
	len = json_string_length(j);
	if (len == 0 || len > 3)
		return false;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	if (v > 255)
		return false;
	*index = (int)v;
	return true;
}

/* A function or variable name: non-empty, bounded, no NUL. */
static bool
describe_name_ok(const char *name, size_t len)
{
	return len > 0 && len <= DESCRIBE_NAME_MAX &&
	       memchr(name, '\0', len) == NULL;
}

static int
describe_parse_functions(struct describe *d, const json_t *f, char *err,
			 size_t errlen)
{
	const json_t *name;
	size_t i;

	if (!json_is_array(f)) {
		describe_seterr(err, errlen, "\"f\" is not an array");
		return CINDER_ERR_MALFORMED;
	}
	if (json_array_size(f) > DESCRIBE_MAX_FUNCTIONS) {
		describe_seterr(err, errlen, "too many functions");
		return CINDER_ERR_TOO_BIG;
	}
	json_array_foreach(f, i, name)
	{
		if (!json_is_string(name) ||
		    !describe_name_ok(json_string_value(name),
				      json_string_length(name))) {
			describe_seterr(err, errlen, "invalid function name");
			return CINDER_ERR_MALFORMED;
		}
		json_array_append(d->functions, (json_t *)name);
	}
	return 0;
}

static int
describe_parse_variables(struct describe *d, const json_t *v, char *err,
			 size_t errlen)
{
	const char *key;
	const json_t *type;
	const char *tname;
	uint32_t code;

	if (!json_is_object(v)) {
		describe_seterr(err, errlen, "\"v\" is not an object");
		return CINDER_ERR_MALFORMED;
	}
	if (json_object_size(v) > DESCRIBE_MAX_VARIABLES) {
		describe_seterr(err, errlen, "too many variables");
		return CINDER_ERR_TOO_BIG;
	}
	json_object_foreach((json_t *)v, key, type)
	{
		/* Keys are NUL-terminated by jansson; reject embedded NULs
		   by comparing with the length jansson stored. */
		if (!describe_name_ok(key, strlen(key)) ||
		    !describe_get_uint(type, 255, &code)) {
			describe_seterr(err, errlen, "invalid variable");
			return CINDER_ERR_MALFORMED;
		}
		/* An unknown type cannot be decoded: leave it out. */
		if ((tname = describe_var_type_str((int)code)) == NULL)
			continue;
		json_object_set_new(d->variables, key, json_string(tname));
	}
	return 0;
}

static int
describe_parse_module(struct describe_module *mod, const json_t *m, char *err,
		      size_t errlen)
{
	const json_t *j, *dep;
	size_t i;

	memset(mod, 0, sizeof(*mod));
	mod->index = -1;
	if (!json_is_object(m))
		goto bad;
	if ((j = json_object_get(m, "s")) != NULL &&
	    !describe_get_uint(j, UINT32_MAX, &mod->size))
		goto bad;
	if ((j = json_object_get(m, "l")) == NULL ||
	    !describe_get_char(j, &mod->location))
		goto bad;
	if ((j = json_object_get(m, "vc")) != NULL &&
	    !describe_get_uint(j, UINT32_MAX, &mod->vc))
		goto bad;
	if ((j = json_object_get(m, "vv")) != NULL &&
	    !describe_get_uint(j, UINT32_MAX, &mod->vv))
		goto bad;
	if ((j = json_object_get(m, "u")) != NULL) {
		if (!json_is_string(j) ||
		    json_string_length(j) >= sizeof(mod->hash) ||
		    memchr(json_string_value(j), '\0', json_string_length(j)))
			goto bad;
		memcpy(mod->hash, json_string_value(j), json_string_length(j));
	}
	if ((j = json_object_get(m, "f")) != NULL &&
	    !describe_get_char(j, &mod->func))
		goto bad;
	if ((j = json_object_get(m, "n")) != NULL &&
	    !describe_get_index(j, &mod->index))
		goto bad;
	if ((j = json_object_get(m, "v")) != NULL &&
	    !describe_get_uint(j, UINT32_MAX, &mod->version))
		goto bad;
	if ((j = json_object_get(m, "d")) != NULL) {
		if (!json_is_array(j))
			goto bad;
		if (json_array_size(j) > DESCRIBE_MAX_DEPS) {
			describe_seterr(err, errlen,
					"too many module dependencies");
			return CINDER_ERR_TOO_BIG;
		}
		json_array_foreach(j, i, dep)
		{
			struct describe_dep *dd = &mod->deps[mod->n_deps];

			if (!json_is_object(dep) ||
			    !describe_get_char(json_object_get(dep, "f"),
					       &dd->func) ||
			    !describe_get_index(json_object_get(dep, "n"),
						&dd->index) ||
			    !describe_get_uint(json_object_get(dep, "v"),
					       UINT32_MAX, &dd->version))
				goto bad;
			mod->n_deps++;
		}
	}
	return 0;
bad:
	describe_seterr(err, errlen, "invalid module");
	return CINDER_ERR_MALFORMED;
}

static int
describe_parse_system(struct describe *d, const json_t *root, char *err,
		      size_t errlen)
{
	const json_t *p, *m, *val, *mod;
	const char *key;
	uint32_t pid;
	size_t i;
	int r;

	if ((p = json_object_get(root, "p")) != NULL) {
		if (!describe_get_uint(p, 0xffff, &pid)) {
			describe_seterr(err, errlen, "invalid platform id");
			return CINDER_ERR_MALFORMED;
		}
		d->platform_id = (int)pid;
	}
	if ((m = json_object_get(root, "m")) != NULL) {
		if (!json_is_array(m)) {
			describe_seterr(err, errlen, "\"m\" is not an array");
			return CINDER_ERR_MALFORMED;
		}
		if (json_array_size(m) > DESCRIBE_MAX_MODULES) {
			describe_seterr(err, errlen, "too many modules");
			return CINDER_ERR_TOO_BIG;
		}
		json_array_foreach(m, i, mod)
		{
			r = describe_parse_module(&d->modules[d->n_modules],
						  mod, err, errlen);
			if (r != 0)
				return r;
			d->n_modules++;
		}
		d->modules_json = json_incref((json_t *)m);
	}
	/* Other string keys of the system part (Electron: imei, iccid). */
	json_object_foreach((json_t *)root, key, val)
	{
		if (strlen(key) == 1 || !json_is_string(val))
			continue;
		if (json_object_size(d->extra) >= DESCRIBE_MAX_EXTRA) {
			describe_seterr(err, errlen, "too many system keys");
			return CINDER_ERR_TOO_BIG;
		}
		if (strlen(key) > DESCRIBE_NAME_MAX ||
		    json_string_length(val) > DESCRIBE_EXTRA_MAX) {
			describe_seterr(err, errlen, "over-long system key");
			return CINDER_ERR_TOO_BIG;
		}
		json_object_set(d->extra, key, (json_t *)val);
	}
	return 0;
}

int
describe_parse(const char *json, size_t len, struct describe **out, char *err,
	       size_t errlen)
{
	struct describe *d = NULL;
	json_t *root = NULL;
	const json_t *f, *v;
	json_error_t jerr;
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > DESCRIBE_JSON_MAX) {
		describe_seterr(err, errlen, "describe too long");
		r = CINDER_ERR_TOO_BIG;
		goto out;
	}
	if (json == NULL || len == 0 ||
	    (root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) ==
		    NULL) {
		describe_seterr(err, errlen, "describe is not valid JSON");
		r = CINDER_ERR_MALFORMED;
		goto out;
	}
	if (!json_is_object(root)) {
		describe_seterr(err, errlen, "describe is not an object");
		r = CINDER_ERR_MALFORMED;
		goto out;
	}
	d = xcalloc(1, sizeof(*d));
	d->functions = json_array();
	d->variables = json_object();
	d->extra = json_object();
	d->platform_id = -1;
	if (d->functions == NULL || d->variables == NULL || d->extra == NULL) {
		r = CINDER_ERR_NOMEM;
		goto out;
	}
	f = json_object_get(root, "f");
	v = json_object_get(root, "v");
	d->has_app = f != NULL || v != NULL;
	d->has_system = json_object_get(root, "p") != NULL ||
			json_object_get(root, "m") != NULL;
	if (!d->has_app && !d->has_system) {
		describe_seterr(err, errlen,
				"describe has no application or system part");
		r = CINDER_ERR_MALFORMED;
		goto out;
	}
	if (f != NULL && (r = describe_parse_functions(d, f, err, errlen)) != 0)
		goto out;
	if (v != NULL && (r = describe_parse_variables(d, v, err, errlen)) != 0)
		goto out;
	if ((r = describe_parse_system(d, root, err, errlen)) != 0)
		goto out;
	r = 0;
	*out = d;
	d = NULL;
out:
	describe_free(d);
	json_decref(root);
	return r;
}

void
describe_free(struct describe *d)
{
	if (d == NULL)
		return;
	json_decref(d->functions);
	json_decref(d->variables);
	json_decref(d->extra);
	json_decref(d->modules_json);
	free(d);
}

uint32_t
describe_system_module_version(const struct describe *d)
{
	uint32_t best = 0, mono = 0;
	bool found = false;
	size_t i;

	for (i = 0; i < d->n_modules; i++) {
		const struct describe_module *m = &d->modules[i];

		if (m->location != 'm')
			continue;
		if (m->func == 's' && (!found || m->version < best)) {
			best = m->version;
			found = true;
		} else if (m->func == 'm' && m->version > mono) {
			mono = m->version;
		}
	}
	return found ? best : mono;
}

const char *
describe_release_str(uint32_t module_version)
{
	size_t lo = 0,
	       hi = sizeof(describe_releases) / sizeof(describe_releases[0]);

	/* 0 is what a module without a version reports, not 0.4.0. */
	if (module_version == 0)
		return NULL;

	/* The table is sorted by number. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (describe_releases[mid].v == module_version)
			return describe_releases[mid].release;
		if (describe_releases[mid].v < module_version)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
describe_system_version(const struct describe *d)
{
	uint32_t v = describe_system_module_version(d);

	if (v == 0)
		return NULL;
	return describe_release_str(v);
}

static const struct describe_module *
describe_find_main(const struct describe *d, char func, int index)
{
	size_t i;

	for (i = 0; i < d->n_modules; i++) {
		if (d->modules[i].location == 'm' &&
		    d->modules[i].func == func && d->modules[i].index == index)
			return &d->modules[i];
	}
	return NULL;
}

size_t
describe_missing_dependencies(const struct describe *d,
			      struct describe_missing *out, size_t cap)
{
	struct describe_missing found[DESCRIBE_MAX_MODULES * DESCRIBE_MAX_DEPS];
	const struct describe_module *have;
	size_t n = 0, i, k, j;

	for (i = 0; i < d->n_modules; i++) {
		const struct describe_module *m = &d->modules[i];

		/* Main slots only (§4.4); factory/backup/OTA staging are
		   not running. Empty slots have no function. */
		if (m->location != 'm' || m->func == 0)
			continue;
		for (k = 0; k < m->n_deps; k++) {
			const struct describe_dep *dep = &m->deps[k];

			have = describe_find_main(d, dep->func, dep->index);
			if (have != NULL && have->version >= dep->version)
				continue;
			for (j = 0; j < n; j++) {
				if (found[j].func == dep->func &&
				    found[j].index == dep->index)
					break;
			}
			if (j == n) {
				found[n].func = dep->func;
				found[n].index = dep->index;
				found[n].version = dep->version;
				found[n].installed = have != NULL;
				found[n].have =
					have != NULL ? have->version : 0;
				n++;
			} else if (dep->version > found[j].version) {
				found[j].version = dep->version;
			}
		}
	}
	for (i = 0; i < n && i < cap; i++)
		out[i] = found[i];
	return n;
}

const struct describe_module *
describe_user_module(const struct describe *d)
{
	size_t i;

	for (i = 0; i < d->n_modules; i++) {
		if (d->modules[i].location == 'm' && d->modules[i].func == 'u')
			return &d->modules[i];
	}
	return NULL;
}

bool
describe_is_safe_mode(const struct describe *d)
{
	const struct describe_module *u, *have;
	bool app_empty;
	size_t k;

	if ((u = describe_user_module(d)) == NULL)
		return false;
	/* The device checks the user part's own dependencies (§4.4). */
	for (k = 0; k < u->n_deps; k++) {
		have = describe_find_main(d, u->deps[k].func, u->deps[k].index);
		if (have == NULL || have->version < u->deps[k].version)
			return true;
	}
	app_empty = !d->has_app || (json_array_size(d->functions) == 0 &&
				    json_object_size(d->variables) == 0);
	return app_empty && u->vv != u->vc;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
describe_utf8_seq(const uint8_t *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	cp = p[0] & (0xff >> (len + 1));
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong, surrogates, beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

static json_t *
describe_string_value(const uint8_t *p, size_t len)
{
	char *buf;
	json_t *j;
	size_t i = 0, k;

	buf = xmalloc(len + 1);
	while (i < len) {
		k = describe_utf8_seq(p + i, len - i);
		if (k == 0) {
			buf[i++] = '?';
			continue;
		}
		memcpy(buf + i, p + i, k);
		i += k;
	}
	buf[len] = '\0';
	j = json_stringn(buf, len);
	free(buf);
	return j;
}

int
describe_value_decode(const char *type, const uint8_t *p, size_t len,
		      json_t **out)
{
	int code = describe_var_type_code(type);
	int32_t iv;
	double dv;
	bool bv;

	*out = NULL;
	switch (code) {
	case PCOAP_VAR_BOOL:
		if (pcoap_value_decode_bool(p, len, &bv) != PCOAP_OK)
			return CINDER_ERR_MALFORMED;
		*out = json_boolean(bv);
		break;
	case PCOAP_VAR_INT:
		if (pcoap_value_decode_int32(p, len, &iv) != PCOAP_OK)
			return CINDER_ERR_MALFORMED;
		*out = json_integer(iv);
		break;
	case PCOAP_VAR_DOUBLE:
		if (pcoap_value_decode_double(p, len, &dv) != PCOAP_OK)
			return CINDER_ERR_MALFORMED;
		/* jansson refuses NaN and infinities. */
		if ((*out = json_real(dv)) == NULL)
			*out = json_null();
		break;
	case PCOAP_VAR_STRING:
		*out = describe_string_value(p, len);
		break;
	default:
		return CINDER_ERR_INVAL;
	}
	if (*out == NULL)
		return CINDER_ERR_NOMEM;
	return 0;
}

int
describe_merge(const char *prev, size_t prev_len, const char *json, size_t len,
	       char **out)
{
	static const char *const app_keys[] = {"f", "v"};
	json_t *old = NULL, *cur = NULL, *v;
	const char *key;
	bool cur_app, cur_sys;
	size_t i;
	int r = CINDER_ERR_MALFORMED;

	*out = NULL;
	if (len > DESCRIBE_JSON_MAX)
		return CINDER_ERR_TOO_BIG;
	cur = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(cur))
		goto out;
	if (prev != NULL && prev_len <= DESCRIBE_JSON_MAX)
		old = json_loadb(prev, prev_len, 0, NULL);
	if (json_is_object(old)) {
		cur_app = json_object_get(cur, "f") != NULL ||
			  json_object_get(cur, "v") != NULL;
		cur_sys = json_object_get(cur, "p") != NULL ||
			  json_object_get(cur, "m") != NULL;
		if (!cur_app) {
			for (i = 0; i < 2; i++) {
				v = json_object_get(old, app_keys[i]);
				if (v != NULL)
					json_object_set(cur, app_keys[i], v);
			}
		}
		if (!cur_sys) {
			/* Everything but the app part is system part. */
			json_object_foreach(old, key, v)
			{
				if (strcmp(key, "f") != 0 &&
				    strcmp(key, "v") != 0)
					json_object_set(cur, key, v);
			}
		}
	}
	*out = json_dumps(cur, JSON_COMPACT | JSON_PRESERVE_ORDER);
	r = *out != NULL ? 0 : CINDER_ERR_NOMEM;
out:
	json_decref(old);
	json_decref(cur);
	return r;
}
