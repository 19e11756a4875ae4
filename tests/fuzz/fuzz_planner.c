/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a device's Describe (untrusted) through describe_parse()
 * and the healer's planner with a fixed Photon catalogue. Properties: the
 * planner never fails on a parsed describe; a module to send is in the
 * catalogue, of the platform, at or above the need, and above what is
 * installed (never a downgrade); "nothing" means no unmet dependency.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "fuzz.h"
#include "healer/planner.h"

#define S MODULE_FUNC_SYSTEM
#define B MODULE_FUNC_BOOTLOADER

static const struct planner_image cat[] = {
	{"b501", 6, B, 0, 501, {{0, 0, 0}, {0, 0, 0}}, false},
	{"s1-207", 6, S, 1, 207, {{0, 0, 0}, {0, 0, 0}}, false},
	{"s2-207", 6, S, 2, 207, {{S, 1, 207}, {0, 0, 0}}, false},
	{"s1-1512", 6, S, 1, 1512, {{S, 2, 207}, {0, 0, 0}}, false},
	{"s2-1512", 6, S, 2, 1512, {{S, 1, 1512}, {B, 0, 400}}, false},
	{"s3-1512", 6, S, 3, 1512, {{S, 2, 1512}, {0, 0, 0}}, true},
	{"s1-9", 6, S, 1, 9, {{S, 2, 9}, {0, 0, 0}}, false},
	{"s2-9", 6, S, 2, 9, {{S, 1, 9}, {0, 0, 0}}, false},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct planner_opts o = {size % 2 == 0};
	struct planner_result r;
	struct describe *d = NULL;
	size_t i, n = sizeof(cat) / sizeof(cat[0]);

	if (size > DESCRIBE_JSON_MAX ||
	    describe_parse((const char *)data, size, &d, NULL, 0) != 0)
		return 0;
	if (planner_next(d, 6, cat, n, &o, &r) != 0 &&
	    r.status != PLANNER_BLOCKED)
		abort();
	if (r.status == PLANNER_SEND) {
		if (r.image < cat || r.image >= cat + n ||
		    r.image->version < r.need.version ||
		    (r.need.installed && r.image->version <= r.need.have) ||
		    (r.image->prerelease && !o.allow_prerelease))
			abort();
	}
	if (r.status == PLANNER_NOTHING &&
	    describe_missing_dependencies(d, NULL, 0) != 0) {
		/* describe.c also lists unmet dependencies on functions the
		   planner cannot name (none, unknown letters): tolerate only
		   those. */
		struct describe_missing m[64];
		size_t k = describe_missing_dependencies(d, m, 64);

		for (i = 0; i < k && i < 64; i++)
			if (module_func_from_char(m[i].func) > 0 &&
			    m[i].index >= 0 && m[i].index <= 255)
				abort();
	}
	describe_free(d);
	return 0;
}
