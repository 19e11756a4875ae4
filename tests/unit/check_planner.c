/* SPDX-License-Identifier: MIT */
/*
 * Tests for the healer's planner: a table of describes -> next module
 * (protocol.md §4.3 example, healthy devices, binary-version-reader's
 * real-device safe-mode describes), whole healing sequences replayed by
 * installing each chosen module into the describe, the lowest fitting
 * version, no downgrade, prereleases, other platforms, missing modules
 * and dependency cycles.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "err.h"
#include "healer/planner.h"

#define B MODULE_FUNC_BOOTLOADER
#define S MODULE_FUNC_SYSTEM

#define IMG(id, plat, f, i, v, df, di, dv, ef, ei, ev, pre)                    \
	{                                                                      \
		id, plat, f, i, v, {{df, di, dv}, {ef, ei, ev}}, pre           \
	}

/* A Photon catalogue: 0.7.0 (207), 1.5.2 (1512), a 2.0.0 prerelease and
   an Electron image that must never be chosen for a Photon. */
static const struct planner_image photon[] = {
	IMG("b101", 6, B, 0, 101, 0, 0, 0, 0, 0, 0, false),
	IMG("b501", 6, B, 0, 501, 0, 0, 0, 0, 0, 0, false),
	IMG("s1-207", 6, S, 1, 207, 0, 0, 0, 0, 0, 0, false),
	IMG("s2-207", 6, S, 2, 207, S, 1, 207, 0, 0, 0, false),
	IMG("s1-1512", 6, S, 1, 1512, S, 2, 207, 0, 0, 0, false),
	IMG("s2-1512", 6, S, 2, 1512, S, 1, 1512, B, 0, 400, false),
	IMG("s1-2000", 6, S, 1, 2000, S, 2, 207, 0, 0, 0, true),
	IMG("s2-2000", 6, S, 2, 2000, S, 1, 2000, B, 0, 400, true),
	IMG("s2-e1512", 10, S, 2, 1512, S, 1, 1512, 0, 0, 0, false),
};
#define NPHOTON (sizeof(photon) / sizeof(photon[0]))

#define HASH "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

/* protocol.md §4.3: system 0.7.0, an app built for 1.5.2. */
static const char safemode_json[] =
	"{\"f\":[],\"v\":{},\"p\":6,\"m\":["
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\","
	"\"v\":101,\"d\":[]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\","
	"\"v\":207,\"d\":[]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\","
	"\"v\":207,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":207,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":\"" HASH "\","
	"\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[{\"f\":\"s\",\"n\":\"2\","
	"\"v\":1512,\"_\":\"\"}]}]}";

/* Healthy 1.5.2 Photon (factory slot lists a stale app: ignored). */
static const char healthy_json[] =
	"{\"f\":[\"led\"],\"v\":{},\"p\":6,\"m\":["
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\","
	"\"v\":501,\"d\":[]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\","
	"\"v\":1512,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":207,\"_\":\"\"}]},"
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\","
	"\"v\":1512,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":1512,\"_\":\"\"},"
	"{\"f\":\"b\",\"n\":\"0\",\"v\":400,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"u\":\"" HASH "\","
	"\"f\":\"u\",\"n\":\"1\",\"v\":6,\"d\":[{\"f\":\"s\",\"n\":\"2\","
	"\"v\":1512,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":30,\"u\":\"" HASH "\","
	"\"f\":\"u\",\"n\":\"1\",\"v\":6,\"d\":[{\"f\":\"s\",\"n\":\"2\","
	"\"v\":3000,\"_\":\"\"}]}]}";

/*
 * Real-device describes from binary-version-reader 3.1.3's
 * specs/describes (safe_mode_1..3, multiple_dependencies,
 * describe_one_systemmodule), as the devices sent them.
 */
static const char bvr_safe_mode_1[] =
	"{\"f\":[],\"v\":{},\"p\":6,\"m\":[{\"s\":16384,\"l\":\"m\",\"vc\":30,"
	"\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":4,\"d\":[]},{\"s\":262144,"
	"\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":6,"
	"\"d\":[]},{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\","
	"\"n\":\"2\",\"v\":7,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":7,\"_\":"
	"\"\"}]},{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\","
	"\"n\":\"1\",\"v\":6,\"d\":[]},{\"s\":131072,\"l\":\"f\",\"vc\":30,"
	"\"vv\":0,\"d\":[]}]}";
static const char bvr_safe_mode_2[] =
	"{\"f\":[],\"v\":{},\"p\":6,\"m\":[{\"s\":16384,\"l\":\"m\",\"vc\":30,"
	"\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":4,\"d\":[]},{\"s\":262144,"
	"\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":7,"
	"\"d\":[]},{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\","
	"\"n\":\"2\",\"v\":7,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":7,\"_\":"
	"\"\"}]},{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"u\","
	"\"n\":\"1\",\"v\":6,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":8,\"_\":"
	"\"\"}]},{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}]}";
static const char bvr_safe_mode_3[] =
	"{\"f\":[],\"v\":{},\"p\":6,\"m\":[{\"s\":16384,\"l\":\"m\",\"vc\":30,"
	"\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":4,\"d\":[]},{\"s\":262144,"
	"\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":7,"
	"\"d\":[]},{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\","
	"\"n\":\"2\",\"v\":7,\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":8,\"_\":"
	"\"\"}]},{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"u\","
	"\"n\":\"1\",\"v\":6,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":8,\"_\":"
	"\"\"}]},{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}]}";
static const char bvr_multiple_dependencies[] =
	"{\"p\":10,\"imei\":\"XXXXXXXXXXX\",\"iccid\":\"YYYYYYYYYYYYYYY\","
	"\"m\":[{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":"
	"\"0\",\"v\":12,\"d\":[]},{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":"
	"30,\"f\":\"s\",\"n\":\"1\",\"v\":107,\"d\":[{\"f\":\"s\",\"n\":\"3\","
	"\"v\":107,\"_\":\"\"}]},{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":"
	"26,\"f\":\"s\",\"n\":\"2\",\"v\":107,\"d\":[{\"f\":\"s\",\"n\":\"1\","
	"\"v\":107,\"_\":\"\"},{\"f\":\"b\",\"n\":\"0\",\"v\":13,\"_\":\"\"}]},"
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":"
	"\"3\",\"v\":107,\"d\":[]},{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":"
	"30,\"u\":\"3FE3D246AB659DC01C4CFE030B89EE23FFBF54EDBAA402957CBC47078E"
	"631341\",\"f\":\"u\",\"n\":\"1\",\"v\":4,\"d\":[{\"f\":\"s\",\"n\":"
	"\"2\",\"v\":107,\"_\":\"\"}]},{\"s\":131072,\"l\":\"f\",\"vc\":30,"
	"\"vv\":0,\"d\":[]}]}";
static const char bvr_one_systemmodule[] =
	"{\"m\":[{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\","
	"\"n\":"
	"\"0\",\"v\":3,\"d\":[]},{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":"
	"30,\"f\":\"s\",\"n\":\"2\",\"v\":2,\"d\":[{\"f\":\"s\",\"n\":\"1\","
	"\"v\":2,\"_\":\"\"}]},{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,"
	"\"d\":[]}]}";

/* A catalogue for the small version numbers of those describes. */
static const struct planner_image bvr_cat[] = {
	IMG("p-s1-2", 6, S, 1, 2, 0, 0, 0, 0, 0, 0, false),
	IMG("p-s1-7", 6, S, 1, 7, 0, 0, 0, 0, 0, 0, false),
	IMG("p-s1-8", 6, S, 1, 8, 0, 0, 0, 0, 0, 0, false),
	IMG("p-s2-8", 6, S, 2, 8, S, 1, 8, 0, 0, 0, false),
	IMG("e-b13", 10, B, 0, 13, 0, 0, 0, 0, 0, 0, false),
	IMG("e-b14", 10, B, 0, 14, 0, 0, 0, 0, 0, 0, false),
};
#define NBVR (sizeof(bvr_cat) / sizeof(bvr_cat[0]))

static struct describe *
parse(const char *json)
{
	struct describe *d = NULL;
	char err[DESCRIBE_ERRLEN];

	ck_assert_msg(
		describe_parse(json, strlen(json), &d, err, sizeof(err)) == 0,
		"describe: %s", err);
	return d;
}

static struct planner_result
next(const char *json, uint16_t platform, const struct planner_image *cat,
     size_t n, bool pre)
{
	struct describe *d = parse(json);
	struct planner_opts o = {pre};
	struct planner_result r;

	ck_assert_int_eq(planner_next(d, platform, cat, n, &o, &r), 0);
	ck_assert(r.reason[0] != '\0');
	describe_free(d);
	return r;
}

static void
expect_send(const char *json, uint16_t platform,
	    const struct planner_image *cat, size_t n, bool pre, const char *id)
{
	struct planner_result r = next(json, platform, cat, n, pre);

	ck_assert_msg(r.status == PLANNER_SEND, "%s: %s (%s)", id,
		      planner_status_str(r.status), r.reason);
	ck_assert_str_eq(r.image->id, id);
}

START_TEST(test_table)
{
	struct planner_result r;

	/* §4.3: the bootloader first (part 2 of 1.5.2 needs >= 400). */
	expect_send(safemode_json, 6, photon, NPHOTON, false, "b501");
	r = next(healthy_json, 6, photon, NPHOTON, false);
	ck_assert_int_eq(r.status, PLANNER_NOTHING);
	ck_assert_uint_eq(r.n_needs, 0);
	/* binary-version-reader's real safe-mode describes. */
	expect_send(bvr_safe_mode_1, 6, bvr_cat, NBVR, false, "p-s1-7");
	expect_send(bvr_safe_mode_2, 6, bvr_cat, NBVR, false, "p-s1-8");
	expect_send(bvr_safe_mode_3, 6, bvr_cat, NBVR, false, "p-s1-8");
	expect_send(bvr_multiple_dependencies, 10, bvr_cat, NBVR, false,
		    "e-b13");
	expect_send(bvr_one_systemmodule, 6, bvr_cat, NBVR, false, "p-s1-2");
}
END_TEST

/* Install the image into the describe, as the device would after the
   OTA and its reboot. */
static void
install(struct describe *d, const struct planner_image *img)
{
	struct describe_module *m = NULL;
	size_t i, k;

	for (i = 0; i < d->n_modules; i++) {
		if (d->modules[i].location == 'm' &&
		    module_func_from_char(d->modules[i].func) == img->func &&
		    d->modules[i].index == img->index) {
			m = &d->modules[i];
			break;
		}
	}
	if (m == NULL) {
		ck_assert_uint_lt(d->n_modules, DESCRIBE_MAX_MODULES);
		m = &d->modules[d->n_modules++];
		memset(m, 0, sizeof(*m));
		m->func = module_func_char(img->func);
		m->index = img->index;
		m->location = 'm';
	}
	m->version = img->version;
	m->n_deps = 0;
	for (k = 0; k < 2; k++) {
		if (img->deps[k].func == MODULE_FUNC_NONE)
			continue;
		m->deps[m->n_deps].func = module_func_char(img->deps[k].func);
		m->deps[m->n_deps].index = img->deps[k].index;
		m->deps[m->n_deps].version = img->deps[k].version;
		m->n_deps++;
	}
}

/* Heal until nothing is needed; the ids sent, comma separated. */
static void
heal(const char *json, uint16_t platform, const struct planner_image *cat,
     size_t n, bool pre, char *out, size_t cap)
{
	struct describe *d = parse(json);
	struct planner_opts o = {pre};
	struct planner_result r;
	int steps;

	out[0] = '\0';
	for (steps = 0; steps < 10; steps++) {
		ck_assert_int_eq(planner_next(d, platform, cat, n, &o, &r), 0);
		if (r.status != PLANNER_SEND)
			break;
		if (out[0] != '\0')
			strncat(out, ",", cap - strlen(out) - 1);
		strncat(out, r.image->id, cap - strlen(out) - 1);
		install(d, r.image);
	}
	ck_assert_msg(r.status == PLANNER_NOTHING, "ended with %s: %s",
		      planner_status_str(r.status), r.reason);
	describe_free(d);
}

START_TEST(test_sequences)
{
	char seq[256];

	/* 0.7.0 -> 1.5.2: bootloader, part 1, part 2 (each one's header
	   dependencies met when it is sent), lowest versions >= needed. */
	heal(safemode_json, 6, photon, NPHOTON, false, seq, sizeof(seq));
	ck_assert_str_eq(seq, "b501,s1-1512,s2-1512");
	heal(bvr_safe_mode_3, 6, bvr_cat, NBVR, false, seq, sizeof(seq));
	ck_assert_str_eq(seq, "p-s1-8,p-s2-8");
	heal(bvr_multiple_dependencies, 10, bvr_cat, NBVR, false, seq,
	     sizeof(seq));
	ck_assert_str_eq(seq, "e-b13");
	heal(healthy_json, 6, photon, NPHOTON, false, seq, sizeof(seq));
	ck_assert_str_eq(seq, "");
}
END_TEST

START_TEST(test_missing)
{
	struct planner_result r;

	/* Without any part 2 >= 1512 in the catalogue. */
	r = next(safemode_json, 6, photon, 4, false);
	ck_assert_int_eq(r.status, PLANNER_MISSING);
	ck_assert_uint_eq(r.need.func, MODULE_FUNC_SYSTEM);
	ck_assert_uint_eq(r.need.index, 2);
	ck_assert_uint_eq(r.need.version, 1512);
	ck_assert(r.need.installed);
	ck_assert_uint_eq(r.need.have, 207);
	ck_assert_ptr_null(r.image);
	/* An empty catalogue. */
	r = next(bvr_safe_mode_1, 6, NULL, 0, false);
	ck_assert_int_eq(r.status, PLANNER_MISSING);
	ck_assert_uint_eq(r.need.version, 7);
	/* A catalogue holding only the Electron's part 2 of 1.5.2: nothing
	   for a Photon. */
	r = next(safemode_json, 6, photon + 8, 1, false);
	ck_assert_int_eq(r.status, PLANNER_MISSING);
}
END_TEST

START_TEST(test_prerelease)
{
	static const struct planner_image only_rc[] = {
		IMG("b501", 6, B, 0, 501, 0, 0, 0, 0, 0, 0, false),
		IMG("s1-2000", 6, S, 1, 2000, S, 2, 207, 0, 0, 0, true),
		IMG("s2-2000", 6, S, 2, 2000, S, 1, 2000, B, 0, 400, true),
	};
	struct planner_result r;
	char seq[256];

	r = next(safemode_json, 6, only_rc, 3, false);
	ck_assert_int_eq(r.status, PLANNER_MISSING);
	heal(safemode_json, 6, only_rc, 3, true, seq, sizeof(seq));
	ck_assert_str_eq(seq, "b501,s1-2000,s2-2000");
	/* With both, the lowest fitting version wins even when allowed. */
	heal(safemode_json, 6, photon, NPHOTON, true, seq, sizeof(seq));
	ck_assert_str_eq(seq, "b501,s1-1512,s2-1512");
}
END_TEST

START_TEST(test_no_downgrade)
{
	/* Part 1 at 2000 installed, part 2 at 207, the app needs part 2
	   >= 1512: part 2 1512 needs part 1 >= 1512 (met) and the
	   bootloader. Part 1 must not be "updated" to 1512. */
	static const char json[] =
		"{\"p\":6,\"m\":["
		"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\","
		"\"n\":\"0\",\"v\":501,\"d\":[]},"
		"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\","
		"\"n\":\"1\",\"v\":2000,\"d\":[]},"
		"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\","
		"\"n\":\"2\",\"v\":207,\"d\":[]},"
		"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\","
		"\"n\":\"1\",\"v\":5,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":"
		"1512,"
		"\"_\":\"\"}]}]}";
	/* A catalogue whose only part 2 is at the installed version. */
	static const struct planner_image same[] = {
		IMG("s2-207", 6, S, 2, 207, 0, 0, 0, 0, 0, 0, false),
	};
	char seq[256];
	struct planner_result r;

	heal(json, 6, photon, NPHOTON, false, seq, sizeof(seq));
	ck_assert_str_eq(seq, "s2-1512");
	r = next(json, 6, same, 1, false);
	ck_assert_int_eq(r.status, PLANNER_MISSING);
}
END_TEST

START_TEST(test_blocked_cycle)
{
	static const struct planner_image cyc[] = {
		IMG("s1-9", 6, S, 1, 9, S, 2, 9, 0, 0, 0, false),
		IMG("s2-9", 6, S, 2, 9, S, 1, 9, 0, 0, 0, false),
	};
	struct planner_result r;

	r = next(bvr_safe_mode_3, 6, cyc, 2, false);
	ck_assert_int_eq(r.status, PLANNER_BLOCKED);
	ck_assert_uint_eq(r.n_needs, 2);
	ck_assert_ptr_null(r.image);
	ck_assert_str_eq(planner_status_str(r.status), "blocked");
}
END_TEST

/* More distinct needs than the planner tracks: refused, not truncated. */
START_TEST(test_too_many_needs)
{
	char json[4096];
	size_t len = 0;
	struct describe *d;
	struct planner_result r;
	int m, k;

	len += (size_t)snprintf(json + len, sizeof(json) - len,
				"{\"p\":6,\"m\":[");
	for (m = 0; m < 5; m++) {
		len += (size_t)snprintf(json + len, sizeof(json) - len,
					"%s{\"s\":1,\"l\":\"m\",\"vc\":30,"
					"\"vv\":26,\"f\":\"u\",\"n\":\"%d\","
					"\"v\":1,\"d\":[",
					m ? "," : "", m + 1);
		for (k = 0; k < 4; k++)
			len += (size_t)snprintf(
				json + len, sizeof(json) - len,
				"%s{\"f\":\"s\",\"n\":\"%d\",\"v\":9}",
				k ? "," : "", 10 + m * 4 + k);
		len += (size_t)snprintf(json + len, sizeof(json) - len, "]}");
	}
	snprintf(json + len, sizeof(json) - len, "]}");
	d = parse(json);
	ck_assert_int_eq(planner_next(d, 6, photon, NPHOTON, NULL, &r),
			 CINDER_ERR_TOO_BIG);
	ck_assert_int_eq(r.status, PLANNER_BLOCKED);
	ck_assert_ptr_null(r.image);
	describe_free(d);
}
END_TEST

static Suite *
planner_suite(void)
{
	Suite *s = suite_create("planner");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_sequences);
	tcase_add_test(tc, test_missing);
	tcase_add_test(tc, test_prerelease);
	tcase_add_test(tc, test_no_downgrade);
	tcase_add_test(tc, test_blocked_cycle);
	tcase_add_test(tc, test_too_many_needs);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(planner_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
