/* SPDX-License-Identifier: MIT */
/*
 * The device's module table (protocol.md §4.2-4.4, §5.8): which firmware
 * modules are installed (bootloader, system parts, user part), their
 * versions and dependencies, the validation flags Device OS reports, the
 * non-transitive user-part dependency check that decides safe mode, the
 * "m" array of the system Describe in Device OS's exact byte shape, and
 * the parser of a module binary's 24-byte prefix. Pure: no port, no I/O.
 */
#ifndef FW_MODULES_H
#define FW_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FW_MODULES_MAX 6 /* slots in the table */

/* Module functions as in the binary header (§5.8). */
#define FW_MOD_NONE 0
#define FW_MOD_RESOURCE 1
#define FW_MOD_BOOTLOADER 2
#define FW_MOD_MONO 3
#define FW_MOD_SYSTEM 4
#define FW_MOD_USER 5

/* Validation flag bits (module_validation_flags_t, §4.2). */
#define FW_MOD_V_INTEGRITY 0x02
#define FW_MOD_V_DEPENDENCIES 0x04
#define FW_MOD_V_RANGE 0x08
#define FW_MOD_V_PLATFORM 0x10
#define FW_MOD_V_DEFAULT 0x1e /* what a Photon reports: 30 */

#define FW_MOD_PREFIX_LEN 24 /* module_info_t */
#define FW_MOD_HASH_LEN 32   /* SHA-256 app hash in the suffix */

/** A dependency: function 0 = unused. */
struct fw_module_dep {
	uint8_t func;	  /* FW_MOD_* */
	uint8_t index;	  /* module index */
	uint16_t version; /* minimum version */
};

/** One installed module. */
struct fw_module {
	uint32_t addr;		       /* slot start address */
	uint32_t size;		       /* slot size in bytes ("s") */
	char loc;		       /* 'm' main, 'f' factory, 't' staging */
	uint8_t func;		       /* FW_MOD_* */
	uint8_t index;		       /* module index ("n") */
	uint16_t version;	       /* module version ("v") */
	uint8_t vc;		       /* validation checks performed */
	bool has_hash;		       /* user part: hash present */
	uint8_t hash[FW_MOD_HASH_LEN]; /* the "u" app hash */
	struct fw_module_dep deps[2];  /* dependency, dependency2 */
};

/** The table. */
struct fw_modules {
	struct fw_module m[FW_MODULES_MAX];
	size_t n; /* entries used */
};

/** A parsed module prefix (module_info_t, little-endian fields). */
struct fw_module_info {
	uint32_t start;		      /* module start address */
	uint32_t end;		      /* end address (exclusive), CRC after */
	uint8_t flags;		      /* 0x02 compressed, ... */
	uint16_t version;	      /* module version */
	uint16_t platform_id;	      /* platform the module is built for */
	uint8_t func;		      /* FW_MOD_* */
	uint8_t index;		      /* module index */
	struct fw_module_dep deps[2]; /* dependencies */
};

/**
 * Empty the table.
 */
void fw_modules_init(struct fw_modules *t);

/**
 * Fill the table the way a Gen2 device looks with Device OS system_version
 * installed: bootloader b/0 (v 501), system parts s/1..3 (each v =
 * system_version; s/2 depends on s/1 and the bootloader) and the user
 * part u/1 depending on s/2 at app_requires, with app_hash.
 * @param app_hash 32 bytes (borrowed) or NULL (all zero)
 */
void fw_modules_default(struct fw_modules *t, uint16_t system_version,
			uint16_t app_requires, const uint8_t *app_hash);

/**
 * Add a module, or replace the one with the same function and index.
 * @param m copied
 * @return 0, FW_ERR_LIMIT when the table is full
 */
int fw_modules_set(struct fw_modules *t, const struct fw_module *m);

/**
 * The installed main-location module with this function and index.
 * @return a pointer into the table, or NULL
 */
const struct fw_module *fw_modules_find(const struct fw_modules *t,
					uint8_t func, uint8_t index);

/**
 * Whether every dependency of m is installed at a version >= the required
 * one (one level only, like HAL_Verify_User_Dependencies).
 */
bool fw_modules_deps_met(const struct fw_modules *t, const struct fw_module *m);

/**
 * Whether the device must run in safe mode: a user part is installed and
 * its dependencies are not met (§4.4).
 */
bool fw_modules_safe_mode(const struct fw_modules *t);

/**
 * The running system's module version: the lowest among the main system
 * parts (a half-updated device runs the older one); 0 when there is none.
 */
uint16_t fw_modules_system_version(const struct fw_modules *t);

/**
 * Validation checks passed for m: vc, without FW_MOD_V_DEPENDENCIES when
 * its dependencies are unmet.
 */
uint8_t fw_modules_vv(const struct fw_modules *t, const struct fw_module *m);

/**
 * Append the JSON of one module in Device OS field order (s, l, vc, vv,
 * [u], f, n, v, [p], d; every scalar followed by a comma, dependency
 * objects closed with "_":"") to buf at *len.
 * @param platform_id written as "p" when non-zero (OTA validation result)
 * @return 0, FW_ERR_TOO_BIG when it does not fit (buf stays terminated)
 */
int fw_modules_json_one(const struct fw_module *m, uint8_t vv,
			uint16_t platform_id, char *buf, size_t cap,
			size_t *len);

/**
 * Append "m":[...] (all modules) to buf at *len.
 * @return 0 or FW_ERR_TOO_BIG
 */
int fw_modules_json(const struct fw_modules *t, char *buf, size_t cap,
		    size_t *len);

/**
 * Parse a module prefix.
 * @param p FW_MOD_PREFIX_LEN bytes (borrowed)
 * @return 0, FW_ERR_MALFORMED when end <= start
 */
int fw_module_parse_prefix(const uint8_t *p, struct fw_module_info *mi);

/**
 * The Describe letter of a module function ('b', 's', 'u', ..., '_').
 */
char fw_module_func_char(uint8_t func);

#endif
