/* SPDX-License-Identifier: MIT */
/*
 * Describe parser (protocol.md §4): turns the JSON a device sends in its
 * Describe reply into a struct the daemon stores: functions, variables
 * with their API type names, platform, modules and their dependencies,
 * plus the safe-mode analysis of §4.4 and the Device OS release of the
 * running system. jansson-based, no I/O, no logging; every count and
 * length from the device is bounded before anything is kept.
 */
#ifndef CINDER_DESCRIBE_H
#define CINDER_DESCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Limits (Device OS itself allows 15-20 functions/variables, 2 deps). */
#define DESCRIBE_JSON_MAX 16384	  /* longest describe text accepted */
#define DESCRIBE_MAX_FUNCTIONS 64 /* entries in "f" */
#define DESCRIBE_MAX_VARIABLES 64 /* entries in "v" */
#define DESCRIBE_NAME_MAX 64	  /* bytes in a function/variable name */
#define DESCRIBE_MAX_MODULES 16	  /* entries in "m" */
#define DESCRIBE_MAX_DEPS 4	  /* entries in a module's "d" */
#define DESCRIBE_MAX_EXTRA 8	  /* other string keys ("imei", "iccid") */
#define DESCRIBE_EXTRA_MAX 64	  /* bytes in one such value */
#define DESCRIBE_ERRLEN 128	  /* size for error text buffers */

/* Module validation bits (§4.2, vc/vv). */
#define DESCRIBE_VALID_INTEGRITY 0x02
#define DESCRIBE_VALID_DEPENDENCIES 0x04
#define DESCRIBE_VALID_RANGE 0x08
#define DESCRIBE_VALID_PLATFORM 0x10

/** A module dependency: function, index, minimum version. */
struct describe_dep {
	char func;	  /* module function letter: 'b', 's', 'u', ... */
	int index;	  /* module index */
	uint32_t version; /* minimum version required */
};

/** One module ("m" entry). Empty slots (older firmware) have func 0. */
struct describe_module {
	char func;	  /* 'b','s','u','m','r','c','a','n','_'; 0 none */
	int index;	  /* "n"; -1 when absent */
	uint32_t version; /* "v"; 0 when absent */
	char location;	  /* "l": 'm' main, 'f' factory, 'b', 't' */
	uint32_t size;	  /* "s": slot size in bytes */
	uint32_t vc;	  /* validation checks performed */
	uint32_t vv;	  /* validation checks passed */
	char hash[65];	  /* "u": app hash (uppercase hex) or "" */
	size_t n_deps;	  /* entries used in deps */
	struct describe_dep deps[DESCRIBE_MAX_DEPS]; /* "d" */
};

/** A parsed describe. Free with describe_free(). */
struct describe {
	bool has_app;	      /* "f" or "v" was present */
	bool has_system;      /* "p" or "m" was present */
	json_t *functions;    /* array of function names; owned, never NULL */
	json_t *variables;    /* object name -> "bool"|"int32"|"string"|
				 "double"; owned, never NULL */
	int platform_id;      /* "p"; -1 when absent */
	json_t *extra;	      /* object of other string keys (imei, iccid);
				 owned, never NULL */
	json_t *modules_json; /* the "m" array as sent; owned, NULL when
				 absent */
	size_t n_modules;     /* entries used in modules */
	struct describe_module modules[DESCRIBE_MAX_MODULES]; /* "m" */
};

/** A dependency that the installed modules do not satisfy (§4.4). */
struct describe_missing {
	char func;	  /* module function letter */
	int index;	  /* module index */
	uint32_t version; /* highest minimum version required */
	bool installed;	  /* a module with this func/index exists */
	uint32_t have;	  /* its version when installed */
};

/**
 * Parse a describe JSON text (app part, system part, or both).
 * @param json the text, not necessarily NUL-terminated; borrowed
 * @param len its length (at most DESCRIBE_JSON_MAX)
 * @param out receives the describe on success (NULL otherwise); the
 *	caller frees it with describe_free()
 * @param err receives a short reason on failure; may be NULL
 * @param errlen size of err
 * @return 0, CINDER_ERR_MALFORMED (not JSON, wrong types or shapes) or
 *	CINDER_ERR_TOO_BIG (over one of the limits above)
 */
int describe_parse(const char *json, size_t len, struct describe **out,
		   char *err, size_t errlen);

/** Free a describe and everything it owns. NULL-safe. */
void describe_free(struct describe *d);

/**
 * API type name of a describe variable type code (§3.11).
 * @return "bool", "int32", "string", "double", or NULL when unknown
 */
const char *describe_var_type_str(int code);

/**
 * Type code of an API variable type name; inverse of
 * describe_var_type_str(). @return the code, or -1
 */
int describe_var_type_code(const char *name);

/**
 * Module version of the running system: the lowest version among the
 * main-location system parts (a half-updated device runs the older
 * one), or of a monolithic module when there are no system parts.
 * @return the version, or 0 when the describe has no system module
 */
uint32_t describe_system_module_version(const struct describe *d);

/**
 * Device OS release of a system module version (e.g. 207 -> "0.7.0",
 * 1512 -> "1.5.2"), from device-os system/system-versions.md.
 * @return a static string, or NULL when the number is unknown or 0 (a
 *	module without a version: not a release)
 */
const char *describe_release_str(uint32_t module_version);

/**
 * Merge a partial describe into the previous one: a system-only describe
 * (Device OS 2.2+ posts one by itself) keeps the previous application
 * part ("f", "v"), an application-only one keeps the previous system
 * keys. A complete one replaces the previous one.
 * @param prev the previous describe JSON, or NULL; borrowed
 * @param json the new describe JSON (not NUL-terminated); borrowed
 * @param out receives the merged JSON text (compact, NUL-terminated);
 *	the caller frees it with free()
 * @return 0, CINDER_ERR_MALFORMED (json is not a JSON object),
 *	CINDER_ERR_TOO_BIG or CINDER_ERR_NOMEM
 */
int describe_merge(const char *prev, size_t prev_len, const char *json,
		   size_t len, char **out);

/**
 * Device OS release of the running system (the two functions above).
 * @return a static string, or NULL (no system part, or an unknown
 *	number: show describe_system_module_version() instead)
 */
const char *describe_system_version(const struct describe *d);

/**
 * Dependencies of main-location modules that no installed main module
 * satisfies (same function and index, version >= required), §4.4. Every
 * main module is checked, which walks every chain; each (function,
 * index) is listed once with the highest version required.
 * @param out array for the results, owned by the caller; may be NULL
 *	when cap is 0
 * @param cap its capacity
 * @return the number of unmet dependencies (may exceed cap: only cap
 *	are written)
 */
size_t describe_missing_dependencies(const struct describe *d,
				     struct describe_missing *out, size_t cap);

/**
 * Does the describe show a device in safe mode? True when a main user
 * part has an unmet dependency, or when a main user part failed a
 * validation check (vv != vc) while the app part is empty or absent.
 */
bool describe_is_safe_mode(const struct describe *d);

/**
 * The main-location user part (app hash, version), or NULL.
 * @return a pointer into d
 */
const struct describe_module *describe_user_module(const struct describe *d);

/**
 * Decode a variable value from the device (§3.11) into JSON for the API:
 * "bool" -> true/false (1 byte), "int32" -> integer (4 bytes BE),
 * "double" -> real (8 bytes LE; NaN/infinity -> null), "string" -> the
 * bytes as a string (invalid UTF-8 bytes replaced by '?').
 * @param type an API type name (describe_var_type_str())
 * @param p, len the value bytes (p may be NULL when len is 0); borrowed
 * @param out receives a new reference on success (NULL otherwise); the
 *	caller owns it (json_decref)
 * @return 0, CINDER_ERR_INVAL (unknown type) or CINDER_ERR_MALFORMED
 *	(wrong length for the type)
 */
int describe_value_decode(const char *type, const uint8_t *p, size_t len,
			  json_t **out);

#endif
