/* SPDX-License-Identifier: MIT */
/*
 * The safe-mode healer's planner (protocol.md §4.4, §4.6 "Recommended for
 * a C server"): from a device's parsed Describe, its platform and a
 * catalogue of available modules, choose the ONE module to send next.
 *
 * 1. Needs: every dependency of every main-location module, merged per
 *    (function, index) at the highest minimum version, that the installed
 *    main modules do not meet.
 * 2. Each need resolves to the LOWEST catalogue version >= the need for
 *    that platform (prereleases only when allowed); never one at or below
 *    the installed version (no downgrade).
 * 3. The header dependencies of the chosen images become needs too (the
 *    chain walk), until nothing new appears.
 * 4. The next module is the first chosen image (bootloader before system
 *    parts, lower index first) whose own header dependencies are met by
 *    what is installed now; the device reboots after it and the next
 *    Describe drives the following step.
 * Pure: no I/O, no allocation, no logging.
 */
#ifndef CINDER_HEALER_PLANNER_H
#define CINDER_HEALER_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healer/module.h"

struct describe;

#define PLANNER_MAX_NEEDS 16 /* distinct (function, index) tracked */
#define PLANNER_ID_MAX 65    /* catalogue id: hex SHA-256 + NUL */
#define PLANNER_REASONLEN 160

/** One catalogue entry: a module binary the server can send. */
struct planner_image {
	char id[PLANNER_ID_MAX];   /* e.g. the image's SHA-256 in hex */
	uint16_t platform_id;	   /* from the header */
	uint8_t func;		   /* enum module_func */
	uint8_t index;		   /* module index */
	uint16_t version;	   /* module version */
	struct module_dep deps[2]; /* header dependencies */
	bool prerelease;	   /* only in -rc releases */
};

/** What the device needs: (function, index) at >= version. */
struct planner_need {
	uint8_t func;
	uint8_t index;
	uint32_t version;
	bool installed; /* a main module with this function/index */
	uint32_t have;	/* its version when installed */
};

enum planner_status {
	PLANNER_NOTHING = 0, /* every dependency is met */
	PLANNER_SEND,	     /* send image next */
	PLANNER_MISSING,     /* a needed module is not in the catalogue */
	PLANNER_BLOCKED,     /* needs exist but no image can go first */
};

struct planner_result {
	enum planner_status status;
	const struct planner_image
		*image;		  /* PLANNER_SEND: into the catalogue */
	struct planner_need need; /* SEND: what it fixes; MISSING: what
				     has no image */
	size_t n_needs;		  /* needs found (SEND, MISSING, BLOCKED) */
	char reason[PLANNER_REASONLEN]; /* a sentence for logs and the API */
};

struct planner_opts {
	bool allow_prerelease; /* consider images only in -rc releases */
};

/**
 * Choose the next module for a device.
 * @param d the parsed Describe (borrowed); its modules are what is
 *	installed
 * @param platform_id the device's platform (catalogue entries of other
 *	platforms are ignored)
 * @param cat, n the catalogue (borrowed; the result points into it)
 * @param opts NULL for defaults
 * @param out the decision
 * @return 0, or CINDER_ERR_TOO_BIG (more than PLANNER_MAX_NEEDS distinct
 *	needs: status is PLANNER_BLOCKED)
 */
int planner_next(const struct describe *d, uint16_t platform_id,
		 const struct planner_image *cat, size_t n,
		 const struct planner_opts *opts, struct planner_result *out);

/** "nothing", "send", "missing", "blocked". */
const char *planner_status_str(enum planner_status s);

#endif
