/* SPDX-License-Identifier: MIT */
/*
 * Module table, dependency check and the Describe "m" array. The JSON is
 * written the way Device OS 1.5 writes it (every scalar followed by a
 * comma, so a module object ends with "d":[...] and each dependency object
 * with a dummy "_":"" field); servers parse it, and the unit tests compare
 * it byte for byte.
 */
#include "config.h"

#include <string.h>

#include "fw_err.h"
#include "fw_modules.h"
#include "fw_util.h"

void
fw_modules_init(struct fw_modules *t)
{
	memset(t, 0, sizeof(*t));
}

static void
add(struct fw_modules *t, uint32_t addr, uint32_t size, uint8_t func,
    uint8_t index, uint16_t version)
{
	struct fw_module m;

	memset(&m, 0, sizeof(m));
	m.addr = addr;
	m.size = size;
	m.loc = 'm';
	m.func = func;
	m.index = index;
	m.version = version;
	m.vc = FW_MOD_V_DEFAULT;
	(void)fw_modules_set(t, &m);
}

static void
set_dep(struct fw_modules *t, uint8_t func, uint8_t index, int slot,
	uint8_t dfunc, uint8_t dindex, uint16_t dversion)
{
	struct fw_module *m =
		(struct fw_module *)fw_modules_find(t, func, index);

	if (m == NULL)
		return;
	m->deps[slot].func = dfunc;
	m->deps[slot].index = dindex;
	m->deps[slot].version = dversion;
}

void
fw_modules_default(struct fw_modules *t, uint16_t system_version,
		   uint16_t app_requires, const uint8_t *app_hash)
{
	struct fw_module *u;

	fw_modules_init(t);
	/* Electron-like slots: three 128 KB system parts (§5.8). */
	add(t, 0x08000000, 16384, FW_MOD_BOOTLOADER, 0, 501);
	add(t, 0x08020000, 131072, FW_MOD_SYSTEM, 1, system_version);
	add(t, 0x08040000, 131072, FW_MOD_SYSTEM, 2, system_version);
	add(t, 0x08060000, 131072, FW_MOD_SYSTEM, 3, system_version);
	add(t, 0x08080000, 131072, FW_MOD_USER, 1, 5);
	set_dep(t, FW_MOD_SYSTEM, 2, 0, FW_MOD_SYSTEM, 1, system_version);
	set_dep(t, FW_MOD_SYSTEM, 2, 1, FW_MOD_BOOTLOADER, 0, 400);
	set_dep(t, FW_MOD_SYSTEM, 3, 0, FW_MOD_SYSTEM, 2, 110);
	set_dep(t, FW_MOD_USER, 1, 0, FW_MOD_SYSTEM, 2, app_requires);
	u = (struct fw_module *)fw_modules_find(t, FW_MOD_USER, 1);
	if (u != NULL) {
		u->has_hash = true;
		if (app_hash != NULL)
			memcpy(u->hash, app_hash, FW_MOD_HASH_LEN);
	}
}

int
fw_modules_set(struct fw_modules *t, const struct fw_module *m)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->m[i].func == m->func && t->m[i].index == m->index &&
		    t->m[i].loc == m->loc) {
			t->m[i] = *m;
			return 0;
		}
	}
	if (t->n >= FW_MODULES_MAX)
		return FW_ERR_LIMIT;
	t->m[t->n++] = *m;
	return 0;
}

const struct fw_module *
fw_modules_find(const struct fw_modules *t, uint8_t func, uint8_t index)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->m[i].loc == 'm' && t->m[i].func == func &&
		    t->m[i].index == index)
			return &t->m[i];
	return NULL;
}

static bool
valid_func(uint8_t f)
{
	return f >= FW_MOD_RESOURCE && f <= 8;
}

bool
fw_modules_deps_met(const struct fw_modules *t, const struct fw_module *m)
{
	const struct fw_module *have;
	int i;

	for (i = 0; i < 2; i++) {
		if (!valid_func(m->deps[i].func))
			continue;
		have = fw_modules_find(t, m->deps[i].func, m->deps[i].index);
		if (have == NULL || have->version < m->deps[i].version)
			return false;
	}
	return true;
}

bool
fw_modules_safe_mode(const struct fw_modules *t)
{
	const struct fw_module *u = fw_modules_find(t, FW_MOD_USER, 1);

	return u != NULL && !fw_modules_deps_met(t, u);
}

uint16_t
fw_modules_system_version(const struct fw_modules *t)
{
	uint16_t v = 0;
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->m[i].loc == 'm' && t->m[i].func == FW_MOD_SYSTEM &&
		    (v == 0 || t->m[i].version < v))
			v = t->m[i].version;
	}
	return v;
}

uint8_t
fw_modules_vv(const struct fw_modules *t, const struct fw_module *m)
{
	if (!fw_modules_deps_met(t, m))
		return m->vc & (uint8_t)~FW_MOD_V_DEPENDENCIES;
	return m->vc;
}

char
fw_module_func_char(uint8_t func)
{
	static const char letters[] = "nrbmsu_ca";

	return func < sizeof(letters) - 1 ? letters[func] : '_';
}

/* "key":<number>, */
static int
put_num(char *buf, size_t cap, size_t *len, const char *key, uint32_t v)
{
	int r;

	if ((r = fw_buf_puts(buf, cap, len, key)) != 0 ||
	    (r = fw_buf_putu(buf, cap, len, v)) != 0)
		return r;
	return fw_buf_put(buf, cap, len, ",", 1);
}

/* "key":"c", */
static int
put_chr(char *buf, size_t cap, size_t *len, const char *key, char c)
{
	char v[3] = {c, '"', ','};
	int r;

	if ((r = fw_buf_puts(buf, cap, len, key)) != 0)
		return r;
	return fw_buf_put(buf, cap, len, v, 3);
}

int
fw_modules_json_one(const struct fw_module *m, uint8_t vv, uint16_t platform_id,
		    char *buf, size_t cap, size_t *len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = *len;
	char h[2];
	int i, r = FW_ERR_TOO_BIG;
	bool first = true;

	if (fw_buf_put(buf, cap, len, "{", 1) != 0 ||
	    put_num(buf, cap, len, "\"s\":", m->size) != 0 ||
	    put_chr(buf, cap, len, "\"l\":\"", m->loc) != 0 ||
	    put_num(buf, cap, len, "\"vc\":", m->vc) != 0 ||
	    put_num(buf, cap, len, "\"vv\":", vv) != 0)
		goto out;
	if (m->has_hash) {
		if (fw_buf_puts(buf, cap, len, "\"u\":\"") != 0)
			goto out;
		for (i = 0; i < FW_MOD_HASH_LEN; i++) {
			h[0] = hex[m->hash[i] >> 4];
			h[1] = hex[m->hash[i] & 15];
			if (fw_buf_put(buf, cap, len, h, 2) != 0)
				goto out;
		}
		if (fw_buf_put(buf, cap, len, "\",", 2) != 0)
			goto out;
	}
	if (put_chr(buf, cap, len, "\"f\":\"", fw_module_func_char(m->func)) !=
		    0 ||
	    fw_buf_puts(buf, cap, len, "\"n\":\"") != 0 ||
	    fw_buf_putu(buf, cap, len, m->index) != 0 ||
	    fw_buf_put(buf, cap, len, "\",", 2) != 0 ||
	    put_num(buf, cap, len, "\"v\":", m->version) != 0)
		goto out;
	if (platform_id != 0 &&
	    put_num(buf, cap, len, "\"p\":", platform_id) != 0)
		goto out;
	if (fw_buf_puts(buf, cap, len, "\"d\":[") != 0)
		goto out;
	for (i = 0; i < 2; i++) {
		const struct fw_module_dep *d = &m->deps[i];

		if (!valid_func(d->func))
			continue;
		if ((!first && fw_buf_put(buf, cap, len, ",", 1) != 0) ||
		    fw_buf_put(buf, cap, len, "{", 1) != 0 ||
		    put_chr(buf, cap, len, "\"f\":\"",
			    fw_module_func_char(d->func)) != 0 ||
		    fw_buf_puts(buf, cap, len, "\"n\":\"") != 0 ||
		    fw_buf_putu(buf, cap, len, d->index) != 0 ||
		    fw_buf_put(buf, cap, len, "\",", 2) != 0 ||
		    put_num(buf, cap, len, "\"v\":", d->version) != 0 ||
		    fw_buf_puts(buf, cap, len, "\"_\":\"\"}") != 0)
			goto out;
		first = false;
	}
	if (fw_buf_puts(buf, cap, len, "]}") != 0)
		goto out;
	r = 0;
out:
	if (r != 0 && start < cap) {
		*len = start;
		buf[start] = '\0';
	}
	return r;
}

int
fw_modules_json(const struct fw_modules *t, char *buf, size_t cap, size_t *len)
{
	size_t i;
	int r;

	if ((r = fw_buf_puts(buf, cap, len, "\"m\":[")) != 0)
		return r;
	for (i = 0; i < t->n; i++) {
		if (i > 0 && (r = fw_buf_put(buf, cap, len, ",", 1)) != 0)
			return r;
		if ((r = fw_modules_json_one(&t->m[i],
					     fw_modules_vv(t, &t->m[i]), 0, buf,
					     cap, len)) != 0)
			return r;
	}
	return fw_buf_put(buf, cap, len, "]", 1);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int
fw_module_parse_prefix(const uint8_t *p, struct fw_module_info *mi)
{
	int i;

	memset(mi, 0, sizeof(*mi));
	mi->start = le32(p);
	mi->end = le32(p + 4);
	mi->flags = p[9];
	mi->version = le16(p + 10);
	mi->platform_id = le16(p + 12);
	mi->func = p[14];
	mi->index = p[15];
	for (i = 0; i < 2; i++) {
		mi->deps[i].func = p[16 + 4 * i];
		mi->deps[i].index = p[17 + 4 * i];
		mi->deps[i].version = le16(p + 18 + 4 * i);
	}
	if (mi->end <= mi->start)
		return FW_ERR_MALFORMED;
	return 0;
}
