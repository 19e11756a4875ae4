/* SPDX-License-Identifier: MIT */
/*
 * Module binaries: parser and builder (protocol.md §5.8). The checks run
 * in the order that gives the most useful message: size, prefix, length,
 * function, build placeholders, CRC, suffix, SHA-256, platform, slot.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "crypto.h"
#include "err.h"
#include "healer/crc32.h"
#include "healer/module.h"

#define VECTOR_SP 0x20020000u /* initial stack pointer we write */

struct slot {
	uint8_t func, index;
	uint32_t start, size;
};

/* Photon and P1 (Gen2, 256 KB system parts). */
static const struct slot slots_photon[] = {
	{MODULE_FUNC_BOOTLOADER, 0, 0x08000000, 16 * 1024},
	{MODULE_FUNC_SYSTEM, 1, 0x08020000, 256 * 1024},
	{MODULE_FUNC_SYSTEM, 2, 0x08060000, 256 * 1024},
	{MODULE_FUNC_USER, 1, 0x080A0000, 128 * 1024},
};

/* Electron, and the gcc virtual device as cinder-sim lays it out
   (firmware-stubs/lib/fw_modules.c: three 128 KB system parts). */
static const struct slot slots_electron[] = {
	{MODULE_FUNC_BOOTLOADER, 0, 0x08000000, 16 * 1024},
	{MODULE_FUNC_SYSTEM, 1, 0x08020000, 128 * 1024},
	{MODULE_FUNC_SYSTEM, 2, 0x08040000, 128 * 1024},
	{MODULE_FUNC_SYSTEM, 3, 0x08060000, 128 * 1024},
	{MODULE_FUNC_USER, 1, 0x08080000, 128 * 1024},
};

static const struct {
	uint16_t id;
	const char *name;
} platforms[] = {
	{0, "core"},	  {3, "gcc"},	 {6, "photon"}, {8, "p1"},
	{10, "electron"}, {12, "argon"}, {13, "boron"}, {14, "xenon"},
	{22, "asom"},	  {23, "bsom"},	 {25, "b5som"}, {26, "tracker"},
	{28, "trackerm"}, {32, "p2"},	 {34, "msom"},	{35, "electron2"},
};

static const char *const func_names[] = {
	"none",	     "resource", "bootloader",	 "monolithic",	"system_part",
	"user_part", "settings", "ncp_firmware", "radio_stack", "asset",
};

static void
fail(struct module_error *e, enum module_err code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
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

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

char
module_func_char(uint8_t func)
{
	static const char letters[] = "nrbmsu_ca_";

	return func < sizeof(letters) - 1 ? letters[func] : '_';
}

int
module_func_from_char(char c)
{
	switch (c) {
	case 'n':
		return MODULE_FUNC_NONE;
	case 'r':
		return MODULE_FUNC_RESOURCE;
	case 'b':
		return MODULE_FUNC_BOOTLOADER;
	case 'm':
		return MODULE_FUNC_MONO;
	case 's':
		return MODULE_FUNC_SYSTEM;
	case 'u':
		return MODULE_FUNC_USER;
	case 'c':
		return MODULE_FUNC_NCP;
	case 'a':
		return MODULE_FUNC_RADIO;
	default:
		return -1;
	}
}

const char *
module_func_name(uint8_t func)
{
	if (func < sizeof(func_names) / sizeof(func_names[0]))
		return func_names[func];
	return "unknown";
}

int
module_func_parse(const char *s)
{
	size_t i;
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	for (i = 0; i < sizeof(func_names) / sizeof(func_names[0]); i++)
		if (strcmp(s, func_names[i]) == 0)
			return (int)i;
	if (strcmp(s, "system") == 0)
		return MODULE_FUNC_SYSTEM;
	if (strcmp(s, "user") == 0)
		return MODULE_FUNC_USER;
	if (s[1] == '\0' && module_func_from_char(s[0]) >= 0)
		return module_func_from_char(s[0]);
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 0 || v > MODULE_FUNC_ASSET)
		return -1;
	return (int)v;
}

const char *
module_platform_name(uint16_t platform_id)
{
	size_t i;

	for (i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++)
		if (platforms[i].id == platform_id)
			return platforms[i].name;
	return NULL;
}

static const struct slot *
slot_table(uint16_t platform_id, size_t *n)
{
	switch (platform_id) {
	case MODULE_PLATFORM_PHOTON:
	case MODULE_PLATFORM_P1:
		*n = sizeof(slots_photon) / sizeof(slots_photon[0]);
		return slots_photon;
	case MODULE_PLATFORM_ELECTRON:
	case MODULE_PLATFORM_GCC:
		*n = sizeof(slots_electron) / sizeof(slots_electron[0]);
		return slots_electron;
	default:
		*n = 0;
		return NULL;
	}
}

bool
module_slot(uint16_t platform_id, uint8_t func, uint8_t index, uint32_t *start,
	    uint32_t *size)
{
	const struct slot *t;
	size_t n, i;

	t = slot_table(platform_id, &n);
	for (i = 0; i < n; i++) {
		if (t[i].func == func && t[i].index == index) {
			*start = t[i].start;
			*size = t[i].size;
			return true;
		}
	}
	return false;
}

/* Where the builder puts the prefix: after the interrupt vector table
   for images that boot from it (§5.8), else at 0. */
static uint32_t
build_prefix_offset(uint16_t platform_id, uint8_t func)
{
	if (func != MODULE_FUNC_BOOTLOADER && func != MODULE_FUNC_MONO)
		return 0;
	switch (platform_id) {
	case MODULE_PLATFORM_CORE:
		return 0x10C;
	case MODULE_PLATFORM_PHOTON:
	case MODULE_PLATFORM_P1:
	case MODULE_PLATFORM_ELECTRON:
		return 0x184;
	case 12:
	case 13:
	case 14:
	case 22:
	case 23:
	case 25:
	case 26:
	case 28:
		return 0x200;
	default:
		return 0;
	}
}

const char *
module_err_code(enum module_err code)
{
	switch (code) {
	case MODULE_OK:
		return "ok";
	case MODULE_E_EMPTY:
		return "empty_file";
	case MODULE_E_TOO_SMALL:
		return "too_small";
	case MODULE_E_TOO_BIG:
		return "too_big";
	case MODULE_E_NOT_MODULE:
		return "not_a_module";
	case MODULE_E_LENGTH:
		return "length_mismatch";
	case MODULE_E_FUNCTION:
		return "unknown_function";
	case MODULE_E_DEPENDENCY:
		return "bad_dependency";
	case MODULE_E_UNPROCESSED:
		return "unprocessed_image";
	case MODULE_E_CRC:
		return "crc_mismatch";
	case MODULE_E_SUFFIX:
		return "bad_suffix";
	case MODULE_E_SHA:
		return "sha256_mismatch";
	case MODULE_E_PLATFORM:
		return "wrong_platform";
	case MODULE_E_ADDRESS:
		return "bad_address";
	}
	return "unknown";
}

static void
read_prefix(const uint8_t *p, struct module_info *mi)
{
	int i;

	mi->start = le32(p);
	mi->end = le32(p + 4);
	mi->mcu = p[8];
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
}

/* Does a prefix at off look like the real one? exact: its length
   matches the file's; else known functions and a sane size (then the
   file was truncated or padded: a length message beats "not a
   module"). */
static bool
prefix_plausible(const uint8_t *p, size_t len, uint32_t off, bool exact)
{
	struct module_info mi;

	/* room for the prefix, then at least a bare suffix and the CRC */
	if ((size_t)off + MODULE_FILE_MIN > len)
		return false;
	read_prefix(p + off, &mi);
	if (mi.end <= mi.start)
		return false;
	if (exact)
		return (uint64_t)mi.end - mi.start + MODULE_CRC_LEN == len;
	return mi.func != MODULE_FUNC_NONE && mi.func <= MODULE_FUNC_ASSET &&
	       mi.deps[0].func <= MODULE_FUNC_ASSET &&
	       mi.deps[1].func <= MODULE_FUNC_ASSET &&
	       mi.end - mi.start <= MODULE_FILE_MAX;
}

/* Find the prefix (§5.8): after a vector table when the first word is a
   RAM stack pointer (0x2000xxxx), else at 0. */
static int
find_prefix(const uint8_t *p, size_t len, uint32_t *off)
{
	static const uint32_t vt[] = {0x184, 0x200, 0x10C, 0xC0, 0};
	static const uint32_t plain[] = {0, 0x184, 0x200, 0x10C};
	const uint32_t *c;
	size_t n, i;
	int pass;

	if ((le32(p) & 0xFFF00000u) == 0x20000000u) {
		c = vt;
		n = sizeof(vt) / sizeof(vt[0]);
	} else {
		c = plain;
		n = sizeof(plain) / sizeof(plain[0]);
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			if (prefix_plausible(p, len, c[i], pass == 0)) {
				*off = c[i];
				return pass == 0 ? 0 : 1;
			}
		}
	}
	return -1;
}

static bool
placeholder(const uint8_t *p, size_t len)
{
	const uint8_t *sha = p + len - MODULE_CRC_LEN - 2 - MODULE_SHA_LEN;
	int i;

	if (le32(p + len - MODULE_CRC_LEN) != 0x12345678u)
		return false;
	for (i = 0; i < MODULE_SHA_LEN; i++)
		if (sha[i] != i + 1)
			return false;
	return true;
}

static int
check_slot(const struct module_info *mi, struct module_error *e)
{
	const char *pname = module_platform_name(mi->platform_id);
	uint32_t start, size, mlen = mi->end - mi->start;
	size_t n;

	if (slot_table(mi->platform_id, &n) == NULL)
		return 0;
	if (!module_slot(mi->platform_id, mi->func, mi->index, &start, &size)) {
		fail(e, MODULE_E_ADDRESS,
		     "platform %u (%s) has no slot for %s %u", mi->platform_id,
		     pname, module_func_name(mi->func), mi->index);
		return CINDER_ERR_MALFORMED;
	}
	if (mi->start != start) {
		fail(e, MODULE_E_ADDRESS,
		     "%s %u starts at 0x%08x; on %s it must start at 0x%08x",
		     module_func_name(mi->func), mi->index, mi->start, pname,
		     start);
		return CINDER_ERR_MALFORMED;
	}
	if (mlen > size) {
		fail(e, MODULE_E_TOO_BIG,
		     "%s %u is %u bytes; its slot on %s holds %u",
		     module_func_name(mi->func), mi->index, mlen, pname, size);
		return CINDER_ERR_TOO_BIG;
	}
	return 0;
}

int
module_parse(const uint8_t *p, size_t len, const struct module_parse_opts *opts,
	     struct module_info *mi, struct module_error *e)
{
	static const struct module_parse_opts defaults;
	uint8_t sha[CRYPTO_SHA256_LEN];
	uint32_t off, crc, room;
	size_t tail;
	int i, r;

	if (opts == NULL)
		opts = &defaults;
	memset(mi, 0, sizeof(*mi));
	if (e != NULL) {
		e->code = MODULE_OK;
		e->msg[0] = '\0';
	}
	mi->file_len = len;
	if (len == 0) {
		fail(e, MODULE_E_EMPTY, "the file is empty");
		return CINDER_ERR_MALFORMED;
	}
	if (len > MODULE_FILE_MAX) {
		fail(e, MODULE_E_TOO_BIG,
		     "the file is %zu bytes, more than the %u accepted", len,
		     MODULE_FILE_MAX);
		return CINDER_ERR_TOO_BIG;
	}
	if (len < MODULE_FILE_MIN) {
		fail(e, MODULE_E_TOO_SMALL,
		     "not a module file: %zu bytes is shorter than a module "
		     "prefix, suffix and CRC (%u)",
		     len, (unsigned)MODULE_FILE_MIN);
		return CINDER_ERR_MALFORMED;
	}
	r = find_prefix(p, len, &off);
	if (r < 0) {
		fail(e, MODULE_E_NOT_MODULE,
		     "not a module file: no module header at offset 0, 0x184, "
		     "0x200 or 0x10C");
		return CINDER_ERR_MALFORMED;
	}
	mi->prefix_offset = off;
	read_prefix(p + off, mi);
	if (r > 0) {
		fail(e, MODULE_E_LENGTH,
		     "length mismatch: the header says %llu bytes (end - start "
		     "+ 4), the file has %zu",
		     (unsigned long long)mi->end - mi->start + MODULE_CRC_LEN,
		     len);
		return CINDER_ERR_MALFORMED;
	}
	if (mi->func == MODULE_FUNC_NONE || mi->func > MODULE_FUNC_ASSET) {
		fail(e, MODULE_E_FUNCTION, "unknown module function %u",
		     mi->func);
		return CINDER_ERR_MALFORMED;
	}
	for (i = 0; i < 2; i++) {
		if (mi->deps[i].func > MODULE_FUNC_ASSET) {
			fail(e, MODULE_E_DEPENDENCY,
			     "dependency %d has an unknown module function %u",
			     i + 1, mi->deps[i].func);
			return CINDER_ERR_MALFORMED;
		}
	}
	if (placeholder(p, len)) {
		fail(e, MODULE_E_UNPROCESSED,
		     "unprocessed image: the SHA-256 and CRC are the build's "
		     "placeholders");
		return CINDER_ERR_MALFORMED;
	}
	tail = len - MODULE_CRC_LEN;
	mi->crc = (uint32_t)p[tail] << 24 | (uint32_t)p[tail + 1] << 16 |
		  (uint32_t)p[tail + 2] << 8 | p[tail + 3];
	crc = crc32_fast(0, p, tail);
	if (crc != mi->crc) {
		fail(e, MODULE_E_CRC,
		     "CRC mismatch: the file says %08x, its contents give %08x",
		     mi->crc, crc);
		return CINDER_ERR_MALFORMED;
	}
	mi->suffix_size = le16(p + tail - 2);
	room = (uint32_t)(tail - off - MODULE_PREFIX_LEN);
	if (mi->suffix_size < MODULE_SUFFIX_MIN || mi->suffix_size > room) {
		fail(e, MODULE_E_SUFFIX,
		     "bad module suffix: size %u (expected %u..%u)",
		     mi->suffix_size, MODULE_SUFFIX_MIN, room);
		return CINDER_ERR_MALFORMED;
	}
	memcpy(mi->sha256, p + tail - 2 - MODULE_SHA_LEN, MODULE_SHA_LEN);
	if (mi->suffix_size >= MODULE_SUFFIX_PRODUCT) {
		mi->has_product = true;
		mi->product_version = le16(p + tail - MODULE_SUFFIX_MIN - 2);
		mi->product_id = le16(p + tail - MODULE_SUFFIX_PRODUCT);
	}
	if (!opts->skip_sha) {
		if (crypto_sha256(p, tail - 2 - MODULE_SHA_LEN, sha) != 0)
			return CINDER_ERR_CRYPTO;
		if (memcmp(sha, mi->sha256, MODULE_SHA_LEN) != 0) {
			fail(e, MODULE_E_SHA,
			     "SHA-256 mismatch: the suffix hash does not match "
			     "the file's contents");
			return CINDER_ERR_MALFORMED;
		}
	}
	if (opts->want_platform && mi->platform_id != opts->platform_id) {
		const char *have = module_platform_name(mi->platform_id);
		const char *want = module_platform_name(opts->platform_id);

		fail(e, MODULE_E_PLATFORM,
		     "wrong platform: the module is for platform %u (%s), not "
		     "%u (%s)",
		     mi->platform_id, have ? have : "unknown",
		     opts->platform_id, want ? want : "unknown");
		return CINDER_ERR_MALFORMED;
	}
	return check_slot(mi, e);
}

int
module_build(const struct module_spec *s, uint8_t **out, size_t *lenp,
	     struct module_error *e)
{
	uint32_t off, start, slot_size, x;
	size_t size, min, suffix, tail, i;
	uint8_t *b, *pre, *suf;
	int r, k;

	*out = NULL;
	*lenp = 0;
	if (s->func == MODULE_FUNC_NONE || s->func > MODULE_FUNC_ASSET) {
		fail(e, MODULE_E_FUNCTION, "unknown module function %u",
		     s->func);
		return CINDER_ERR_INVAL;
	}
	start = s->start;
	if (start == 0 && !module_slot(s->platform_id, s->func, s->index,
				       &start, &slot_size)) {
		fail(e, MODULE_E_ADDRESS,
		     "no slot known for %s %u on platform %u: give a start "
		     "address",
		     module_func_name(s->func), s->index, s->platform_id);
		return CINDER_ERR_INVAL;
	}
	off = build_prefix_offset(s->platform_id, s->func);
	suffix = (s->has_product || s->func == MODULE_FUNC_USER)
			 ? MODULE_SUFFIX_PRODUCT
			 : MODULE_SUFFIX_MIN;
	min = off + MODULE_PREFIX_LEN + suffix + MODULE_CRC_LEN;
	size = s->size ? s->size : 1024;
	if (size < min)
		size = min;
	if (size > MODULE_FILE_MAX || (uint64_t)start + size > 0xFFFFFFFFu) {
		fail(e, MODULE_E_TOO_BIG, "%zu bytes is over the %u accepted",
		     size, MODULE_FILE_MAX);
		return CINDER_ERR_INVAL;
	}
	b = malloc(size);
	if (b == NULL)
		return CINDER_ERR_NOMEM;
	/* Filler: xorshift32 from the seed and the header fields. */
	x = 0x9E3779B9u ^ s->seed ^ (uint32_t)s->func << 24 ^
	    (uint32_t)s->index << 16 ^ s->version ^
	    (uint32_t)s->platform_id << 8;
	if (x == 0)
		x = 1;
	for (i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
	if (off != 0) {
		put_le32(b, VECTOR_SP);
		put_le32(b + 4, start + off + MODULE_PREFIX_LEN + 1);
	}
	tail = size - MODULE_CRC_LEN;
	pre = b + off;
	put_le32(pre, start);
	put_le32(pre + 4, start + (uint32_t)tail);
	pre[8] = 0;
	pre[9] = s->flags;
	put_le16(pre + 10, s->version);
	put_le16(pre + 12, s->platform_id);
	pre[14] = s->func;
	pre[15] = s->index;
	for (k = 0; k < 2; k++) {
		pre[16 + 4 * k] = s->deps[k].func;
		pre[17 + 4 * k] = s->deps[k].index;
		put_le16(pre + 18 + 4 * k, s->deps[k].version);
	}
	suf = b + tail - suffix;
	if (suffix == MODULE_SUFFIX_PRODUCT) {
		put_le16(suf, s->has_product ? s->product_id : 0xffff);
		put_le16(suf + 2, s->has_product ? s->product_version : 0xffff);
		suf += 4;
	}
	put_le16(suf, 0); /* reserved */
	put_le16(b + tail - 2, (uint16_t)suffix);
	r = crypto_sha256(b, tail - 2 - MODULE_SHA_LEN,
			  b + tail - 2 - MODULE_SHA_LEN);
	if (r != 0) {
		free(b);
		return CINDER_ERR_CRYPTO;
	}
	x = crc32_fast(0, b, tail);
	b[tail] = (uint8_t)(x >> 24);
	b[tail + 1] = (uint8_t)(x >> 16);
	b[tail + 2] = (uint8_t)(x >> 8);
	b[tail + 3] = (uint8_t)x;
	*out = b;
	*lenp = size;
	return 0;
}
