/* SPDX-License-Identifier: MIT */
/*
 * Tests for module binaries: builder/parser round trips on every layout
 * (prefix at 0, after a Gen2/Gen3/Core vector table), every header and
 * suffix field, each check failing on its own (empty, truncated, length,
 * function, placeholders, CRC, suffix, SHA-256, platform, slot start and
 * size, too big), an image the simulator accepts, and mutants.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "crypto.h"
#include "err.h"
#include "fw_crc32.h"
#include "fw_modules.h"
#include "healer/module.h"
#include "mutate.h"

static uint8_t *
build(const struct module_spec *s, size_t *len)
{
	struct module_error e;
	uint8_t *b = NULL;

	ck_assert_msg(module_build(s, &b, len, &e) == 0, "build: %s", e.msg);
	return b;
}

static struct module_spec
photon_part2(void)
{
	struct module_spec s;

	memset(&s, 0, sizeof(s));
	s.platform_id = MODULE_PLATFORM_PHOTON;
	s.func = MODULE_FUNC_SYSTEM;
	s.index = 2;
	s.version = 1512;
	s.deps[0] = (struct module_dep){MODULE_FUNC_SYSTEM, 1, 1512};
	s.deps[1] = (struct module_dep){MODULE_FUNC_BOOTLOADER, 0, 400};
	s.size = 4096;
	return s;
}

/* Recompute SHA-256 and CRC after editing a built image. */
static void
reseal(uint8_t *b, size_t len)
{
	uint32_t crc;

	ck_assert_int_eq(crypto_sha256(b, len - 38, b + len - 38), 0);
	crc = pcoap_crc32(0, b, len - 4);
	b[len - 4] = (uint8_t)(crc >> 24);
	b[len - 3] = (uint8_t)(crc >> 16);
	b[len - 2] = (uint8_t)(crc >> 8);
	b[len - 1] = (uint8_t)crc;
}

static enum module_err
parse_err(const uint8_t *b, size_t len, const struct module_parse_opts *o)
{
	struct module_info mi;
	struct module_error e;
	int r = module_parse(b, len, o, &mi, &e);

	if (r == 0)
		return MODULE_OK;
	ck_assert(e.code != MODULE_OK);
	ck_assert(e.msg[0] != '\0');
	ck_assert(r == CINDER_ERR_MALFORMED || r == CINDER_ERR_TOO_BIG);
	return e.code;
}

START_TEST(test_crc32_vector)
{
	/* The IEEE check value. */
	ck_assert_uint_eq(pcoap_crc32(0, (const uint8_t *)"123456789", 9),
			  0xCBF43926u);
	ck_assert_uint_eq(
		pcoap_crc32(pcoap_crc32(0, (const uint8_t *)"1234", 4),
			    (const uint8_t *)"56789", 5),
		0xCBF43926u);
}
END_TEST

START_TEST(test_roundtrip_fields)
{
	struct module_spec s = photon_part2();
	struct module_info mi;
	struct module_error e;
	uint8_t sha[32];
	size_t len;
	uint8_t *b = build(&s, &len);

	ck_assert_uint_eq(len, 4096);
	ck_assert_int_eq(module_parse(b, len, NULL, &mi, &e), 0);
	ck_assert_int_eq(e.code, MODULE_OK);
	ck_assert_uint_eq(mi.file_len, 4096);
	ck_assert_uint_eq(mi.prefix_offset, 0);
	ck_assert_uint_eq(mi.start, 0x08060000);
	ck_assert_uint_eq(mi.end, 0x08060000 + 4092);
	ck_assert_uint_eq(mi.flags, 0);
	ck_assert_uint_eq(mi.version, 1512);
	ck_assert_uint_eq(mi.platform_id, 6);
	ck_assert_uint_eq(mi.func, MODULE_FUNC_SYSTEM);
	ck_assert_uint_eq(mi.index, 2);
	ck_assert_uint_eq(mi.deps[0].func, MODULE_FUNC_SYSTEM);
	ck_assert_uint_eq(mi.deps[0].index, 1);
	ck_assert_uint_eq(mi.deps[0].version, 1512);
	ck_assert_uint_eq(mi.deps[1].func, MODULE_FUNC_BOOTLOADER);
	ck_assert_uint_eq(mi.deps[1].index, 0);
	ck_assert_uint_eq(mi.deps[1].version, 400);
	ck_assert_uint_eq(mi.suffix_size, 36);
	ck_assert(!mi.has_product);
	ck_assert_int_eq(crypto_sha256(b, len - 38, sha), 0);
	ck_assert_mem_eq(mi.sha256, sha, 32);
	ck_assert_uint_eq(mi.crc, (uint32_t)b[len - 4] << 24 |
					  (uint32_t)b[len - 3] << 16 |
					  (uint32_t)b[len - 2] << 8 |
					  b[len - 1]);
	free(b);
}
END_TEST

START_TEST(test_user_part_product)
{
	struct module_spec s;
	struct module_info mi;
	size_t len;
	uint8_t *b;

	memset(&s, 0, sizeof(s));
	s.platform_id = MODULE_PLATFORM_ELECTRON;
	s.func = MODULE_FUNC_USER;
	s.index = 1;
	s.version = 6;
	s.deps[0] = (struct module_dep){MODULE_FUNC_SYSTEM, 2, 1512};
	s.has_product = true;
	s.product_id = 4321;
	s.product_version = 17;
	b = build(&s, &len);
	ck_assert_int_eq(module_parse(b, len, NULL, &mi, NULL), 0);
	ck_assert_uint_eq(mi.start, 0x08080000);
	ck_assert_uint_eq(mi.suffix_size, 40);
	ck_assert(mi.has_product);
	ck_assert_uint_eq(mi.product_id, 4321);
	ck_assert_uint_eq(mi.product_version, 17);
	free(b);

	/* A user part without product fields still has the 40-byte
	   suffix, with 0xffff (no product). */
	s.has_product = false;
	b = build(&s, &len);
	ck_assert_int_eq(module_parse(b, len, NULL, &mi, NULL), 0);
	ck_assert_uint_eq(mi.product_id, 0xffff);
	free(b);
}
END_TEST

START_TEST(test_vector_table_offsets)
{
	static const struct {
		uint16_t platform;
		uint32_t off;
	} cases[] = {{6, 0x184}, {10, 0x184}, {13, 0x200}, {0, 0x10C}};
	struct module_spec s;
	struct module_info mi;
	struct module_error e;
	size_t len, i;
	uint8_t *b;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&s, 0, sizeof(s));
		s.platform_id = cases[i].platform;
		s.func = MODULE_FUNC_BOOTLOADER;
		s.version = 501;
		s.start = cases[i].platform == 13 ? 0xF4000 : 0x08000000;
		s.size = 2048;
		b = build(&s, &len);
		ck_assert_uint_eq(b[3], 0x20); /* a stack pointer first */
		ck_assert_msg(module_parse(b, len, NULL, &mi, &e) == 0,
			      "platform %u: %s", cases[i].platform, e.msg);
		ck_assert_uint_eq(mi.prefix_offset, cases[i].off);
		ck_assert_uint_eq(mi.func, MODULE_FUNC_BOOTLOADER);
		ck_assert_uint_eq(mi.version, 501);
		free(b);
	}
}
END_TEST

/* cinder-sim (platform 3) lays the slots out like an Electron and reads
   the prefix at offset 0 for every function (fw_ota.c). */
START_TEST(test_sim_layout)
{
	struct module_spec s;
	struct module_info mi;
	size_t len;
	uint8_t *b;
	uint32_t start, size;

	memset(&s, 0, sizeof(s));
	s.platform_id = MODULE_PLATFORM_GCC;
	s.func = MODULE_FUNC_BOOTLOADER;
	s.version = 1200;
	b = build(&s, &len);
	ck_assert_int_eq(module_parse(b, len, NULL, &mi, NULL), 0);
	ck_assert_uint_eq(mi.prefix_offset, 0);
	ck_assert_uint_eq(mi.start, 0x08000000);
	free(b);
	ck_assert(module_slot(3, MODULE_FUNC_SYSTEM, 3, &start, &size));
	ck_assert_uint_eq(start, 0x08060000);
	ck_assert_uint_eq(size, 131072);
	ck_assert(!module_slot(3, MODULE_FUNC_SYSTEM, 4, &start, &size));
	ck_assert(!module_slot(13, MODULE_FUNC_SYSTEM, 1, &start, &size));
}
END_TEST

/* What cinder-sim's OTA check (firmware-stubs/lib/fw_ota.c) reads of an
   image the builder makes for every module of its default table: the
   prefix at 0, start == the slot address, a module that fits the slot,
   the CRC, and the header fields. */
START_TEST(test_sim_agrees)
{
	struct fw_modules t;
	struct fw_module_info fi;
	struct module_spec s;
	size_t len, i;
	uint32_t crc;
	uint8_t *b;

	fw_modules_default(&t, 1512, 1512, NULL);
	ck_assert_uint_gt(t.n, 3);
	for (i = 0; i < t.n; i++) {
		memset(&s, 0, sizeof(s));
		s.platform_id = MODULE_PLATFORM_GCC;
		s.func = t.m[i].func;
		s.index = t.m[i].index;
		s.version = 1600;
		s.deps[0] = (struct module_dep){MODULE_FUNC_SYSTEM, 1, 1512};
		s.size = 3000;
		b = build(&s, &len);
		ck_assert_int_eq(fw_module_parse_prefix(b, &fi), 0);
		ck_assert_uint_eq(fi.start, t.m[i].addr);
		ck_assert_uint_eq(fi.end - fi.start, len - 4);
		ck_assert_uint_le(fi.end - fi.start, t.m[i].size);
		ck_assert_uint_eq(fi.platform_id, 3);
		ck_assert_uint_eq(fi.func, t.m[i].func);
		ck_assert_uint_eq(fi.index, t.m[i].index);
		ck_assert_uint_eq(fi.version, 1600);
		ck_assert_uint_eq(fi.deps[0].version, 1512);
		crc = fw_crc32(0, b, len - 4);
		ck_assert_uint_eq(crc, (uint32_t)b[len - 4] << 24 |
					       (uint32_t)b[len - 3] << 16 |
					       (uint32_t)b[len - 2] << 8 |
					       b[len - 1]);
		free(b);
	}
}
END_TEST

START_TEST(test_errors_size)
{
	struct module_spec s = photon_part2();
	size_t len;
	uint8_t *b = build(&s, &len);
	uint8_t small[8] = {0};

	ck_assert_int_eq(parse_err(b, 0, NULL), MODULE_E_EMPTY);
	ck_assert_int_eq(parse_err(small, sizeof(small), NULL),
			 MODULE_E_TOO_SMALL);
	/* Truncated anywhere: the header's length no longer matches. */
	ck_assert_int_eq(parse_err(b, len - 1, NULL), MODULE_E_LENGTH);
	ck_assert_int_eq(parse_err(b, len / 2, NULL), MODULE_E_LENGTH);
	ck_assert_int_eq(parse_err(b, MODULE_FILE_MAX + 1, NULL),
			 MODULE_E_TOO_BIG);
	free(b);
}
END_TEST

START_TEST(test_errors_each_check)
{
	struct module_spec s = photon_part2();
	struct module_parse_opts o = {0};
	size_t len;
	uint8_t *b = build(&s, &len), *c = malloc(len);
	int i;

	/* Garbage: no prefix anywhere. */
	memset(c, 0xA5, len);
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_NOT_MODULE);

	/* CRC. */
	memcpy(c, b, len);
	c[100] ^= 1;
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_CRC);
	memcpy(c, b, len);
	c[len - 1] ^= 0x80;
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_CRC);

	/* SHA-256 (CRC fixed up afterwards). */
	memcpy(c, b, len);
	c[200] ^= 1;
	{
		uint32_t crc = pcoap_crc32(0, c, len - 4);

		c[len - 4] = (uint8_t)(crc >> 24);
		c[len - 3] = (uint8_t)(crc >> 16);
		c[len - 2] = (uint8_t)(crc >> 8);
		c[len - 1] = (uint8_t)crc;
	}
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_SHA);
	o.skip_sha = true;
	ck_assert_int_eq(parse_err(c, len, &o), MODULE_OK);
	o.skip_sha = false;

	/* Unknown function. */
	memcpy(c, b, len);
	c[14] = 42;
	reseal(c, len);
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_FUNCTION);
	c[14] = 0;
	reseal(c, len);
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_FUNCTION);
	/* A dependency with an unknown function. */
	memcpy(c, b, len);
	c[20] = 77;
	reseal(c, len);
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_DEPENDENCY);

	/* Suffix size out of range. */
	memcpy(c, b, len);
	c[len - 6] = 10;
	c[len - 5] = 0;
	reseal(c, len);
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_SUFFIX);
	c[len - 6] = 0xff;
	c[len - 5] = 0xff;
	reseal(c, len);
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_SUFFIX);

	/* The build's placeholders. */
	memcpy(c, b, len);
	for (i = 0; i < 32; i++)
		c[len - 38 + i] = (uint8_t)(i + 1);
	c[len - 4] = 0x78;
	c[len - 3] = 0x56;
	c[len - 2] = 0x34;
	c[len - 1] = 0x12;
	ck_assert_int_eq(parse_err(c, len, NULL), MODULE_E_UNPROCESSED);

	/* Platform. */
	o.want_platform = true;
	o.platform_id = 10;
	ck_assert_int_eq(parse_err(b, len, &o), MODULE_E_PLATFORM);
	o.platform_id = 6;
	ck_assert_int_eq(parse_err(b, len, &o), MODULE_OK);
	free(b);
	free(c);
}
END_TEST

/* A vector-table image so short that its suffix would overlap the
   prefix at 0x200: no module header there. */
START_TEST(test_prefix_needs_room)
{
	uint8_t b[0x200 + 40];
	uint32_t crc;

	memset(b, 0, sizeof(b));
	b[3] = 0x20; /* stack pointer 0x20000000 */
	/* prefix at 0x200: start 0x1000, end so that the length matches */
	b[0x200 + 1] = 0x10;
	b[0x200 + 4] = (uint8_t)((0x1000 + sizeof(b) - 4) & 0xff);
	b[0x200 + 5] = (uint8_t)((0x1000 + sizeof(b) - 4) >> 8);
	b[0x200 + 14] = MODULE_FUNC_BOOTLOADER;
	crc = pcoap_crc32(0, b, sizeof(b) - 4);
	b[sizeof(b) - 4] = (uint8_t)(crc >> 24);
	b[sizeof(b) - 3] = (uint8_t)(crc >> 16);
	b[sizeof(b) - 2] = (uint8_t)(crc >> 8);
	b[sizeof(b) - 1] = (uint8_t)crc;
	ck_assert_int_eq(parse_err(b, sizeof(b), NULL), MODULE_E_NOT_MODULE);
}
END_TEST

START_TEST(test_errors_slot)
{
	struct module_spec s = photon_part2();
	struct module_info mi;
	struct module_error e;
	size_t len;
	uint8_t *b;

	/* Wrong start address for system part 2 on a Photon. */
	s.start = 0x08040000;
	b = build(&s, &len);
	ck_assert_int_eq(parse_err(b, len, NULL), MODULE_E_ADDRESS);
	free(b);
	/* No system part 3 on a Photon. */
	s = photon_part2();
	s.index = 3;
	s.start = 0x08060000;
	b = build(&s, &len);
	ck_assert_int_eq(parse_err(b, len, NULL), MODULE_E_ADDRESS);
	free(b);
	/* Bigger than the 128 KB Electron system part slot. */
	s = photon_part2();
	s.platform_id = 10;
	s.size = 128 * 1024 + 4 + 1;
	b = build(&s, &len);
	ck_assert_int_eq(module_parse(b, len, NULL, &mi, &e),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(e.code, MODULE_E_TOO_BIG);
	ck_assert_str_eq(module_err_code(e.code), "too_big");
	free(b);
	/* Exactly the slot size fits. */
	s.size = 128 * 1024 + 4;
	b = build(&s, &len);
	ck_assert_int_eq(parse_err(b, len, NULL), MODULE_OK);
	free(b);
	/* A platform without a slot table needs a start address. */
	s = photon_part2();
	s.platform_id = 13;
	ck_assert_int_eq(module_build(&s, &b, &len, &e), CINDER_ERR_INVAL);
	ck_assert_int_eq(e.code, MODULE_E_ADDRESS);
	s.start = 0x30000;
	b = build(&s, &len);
	ck_assert_int_eq(parse_err(b, len, NULL), MODULE_OK);
	free(b);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_int_eq(module_func_parse("system_part"), MODULE_FUNC_SYSTEM);
	ck_assert_int_eq(module_func_parse("system"), MODULE_FUNC_SYSTEM);
	ck_assert_int_eq(module_func_parse("b"), MODULE_FUNC_BOOTLOADER);
	ck_assert_int_eq(module_func_parse("5"), MODULE_FUNC_USER);
	ck_assert_int_eq(module_func_parse("10"), -1);
	ck_assert_int_eq(module_func_parse("frob"), -1);
	ck_assert_int_eq(module_func_char(MODULE_FUNC_SYSTEM), 's');
	ck_assert_int_eq(module_func_char(MODULE_FUNC_RADIO), 'a');
	ck_assert_int_eq(module_func_from_char('u'), MODULE_FUNC_USER);
	ck_assert_int_eq(module_func_from_char('x'), -1);
	ck_assert_str_eq(module_platform_name(6), "photon");
	ck_assert_ptr_null(module_platform_name(999));
	ck_assert_str_eq(module_err_code(MODULE_E_CRC), "crc_mismatch");
	ck_assert_str_eq(module_err_code(MODULE_E_PLATFORM), "wrong_platform");
	ck_assert_str_eq(module_err_code(MODULE_E_NOT_MODULE), "not_a_module");
}
END_TEST

START_TEST(test_distinct_seeds)
{
	struct module_spec s = photon_part2();
	size_t l1, l2;
	uint8_t *a = build(&s, &l1), *b;

	s.seed = 7;
	b = build(&s, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert(memcmp(a, b, l1) != 0);
	free(a);
	free(b);
}
END_TEST

static void
mutant(const uint8_t *buf, size_t len, void *arg)
{
	struct module_info mi;
	struct module_error e;
	int *ok = arg;

	if (module_parse(buf, len, NULL, &mi, &e) == 0)
		(*ok)++;
	else
		ck_assert(e.code != MODULE_OK && e.msg[0] != '\0');
}

START_TEST(test_mutants)
{
	struct module_spec s = photon_part2();
	size_t len;
	uint8_t *b;
	int ok = 0;

	s.size = 256;
	b = build(&s, &len);
	mutate_run(b, len, 42, 3000, mutant, &ok);
	/* CRC + SHA: almost no mutant survives. */
	ck_assert_int_lt(ok, 30);
	free(b);
}
END_TEST

static Suite *
module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_crc32_vector);
	tcase_add_test(tc, test_roundtrip_fields);
	tcase_add_test(tc, test_user_part_product);
	tcase_add_test(tc, test_vector_table_offsets);
	tcase_add_test(tc, test_sim_layout);
	tcase_add_test(tc, test_sim_agrees);
	tcase_add_test(tc, test_errors_size);
	tcase_add_test(tc, test_errors_each_check);
	tcase_add_test(tc, test_errors_slot);
	tcase_add_test(tc, test_prefix_needs_room);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_distinct_seeds);
	tcase_add_test(tc, test_mutants);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(module_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
