/* SPDX-License-Identifier: MIT */
/*
 * Particle module binaries (protocol.md §5.8): the parser that turns a
 * firmware file into its header fields (prefix, suffix, CRC) after every
 * check a device would apply, each failure named precisely for the REST
 * API and the CLI; and the builder that writes a valid module for given
 * header fields (tests, cinder-sim images, the quickstart demo).
 * Pure: no I/O, no logging, no allocation except module_build()'s output.
 * SHA-256 comes from crypto.h (a computation, not I/O), the CRC-32 from
 * the codec (pcoap_crc32, the one the OTA chunks use).
 */
#ifndef CINDER_HEALER_MODULE_H
#define CINDER_HEALER_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODULE_PREFIX_LEN 24	   /* module_info_t */
#define MODULE_SUFFIX_MIN 36	   /* size + reserved + SHA-256 */
#define MODULE_SUFFIX_PRODUCT 40   /* with product id and version */
#define MODULE_SHA_LEN 32	   /* SHA-256 in the suffix */
#define MODULE_CRC_LEN 4	   /* CRC-32 after the module, BE */
#define MODULE_FILE_MAX (8u << 20) /* largest file accepted: 8 MiB */
#define MODULE_FILE_MIN (MODULE_PREFIX_LEN + MODULE_SUFFIX_MIN + MODULE_CRC_LEN)
#define MODULE_ERRLEN 160 /* size of module_error.msg */

/* Module functions (module_function_t). */
enum module_func {
	MODULE_FUNC_NONE = 0,
	MODULE_FUNC_RESOURCE = 1,
	MODULE_FUNC_BOOTLOADER = 2,
	MODULE_FUNC_MONO = 3,
	MODULE_FUNC_SYSTEM = 4,
	MODULE_FUNC_USER = 5,
	MODULE_FUNC_SETTINGS = 6,
	MODULE_FUNC_NCP = 7,
	MODULE_FUNC_RADIO = 8,
	MODULE_FUNC_ASSET = 9,
};

/* Prefix flags (module_info_flags_t). */
#define MODULE_FLAG_DROP_INFO 0x01
#define MODULE_FLAG_COMPRESSED 0x02
#define MODULE_FLAG_COMBINED 0x04
#define MODULE_FLAG_ENCRYPTED 0x08
#define MODULE_FLAG_EXTENSIONS 0x10

/* Platforms with a slot table (and the simulator's). */
#define MODULE_PLATFORM_CORE 0
#define MODULE_PLATFORM_GCC 3 /* virtual device: cinder-sim */
#define MODULE_PLATFORM_PHOTON 6
#define MODULE_PLATFORM_P1 8
#define MODULE_PLATFORM_ELECTRON 10

/** Which check failed; module_err_code() names it for the API. */
enum module_err {
	MODULE_OK = 0,
	MODULE_E_EMPTY,	      /* no bytes */
	MODULE_E_TOO_SMALL,   /* shorter than prefix + suffix + CRC */
	MODULE_E_TOO_BIG,     /* over MODULE_FILE_MAX or its slot */
	MODULE_E_NOT_MODULE,  /* no plausible prefix anywhere */
	MODULE_E_LENGTH,      /* file length != end - start + 4 */
	MODULE_E_FUNCTION,    /* unknown or "none" module function */
	MODULE_E_DEPENDENCY,  /* a dependency with an unknown function */
	MODULE_E_UNPROCESSED, /* placeholder SHA-256 and CRC of the build */
	MODULE_E_CRC,	      /* CRC-32 mismatch */
	MODULE_E_SUFFIX,      /* suffix size out of range */
	MODULE_E_SHA,	      /* SHA-256 in the suffix does not match */
	MODULE_E_PLATFORM,    /* not the expected platform */
	MODULE_E_ADDRESS,     /* start/end outside the slot for f/index */
};

/** A failure: which check, and a sentence for a human. */
struct module_error {
	enum module_err code;
	char msg[MODULE_ERRLEN];
};

/** One dependency; func MODULE_FUNC_NONE = unused. */
struct module_dep {
	uint8_t func;
	uint8_t index;
	uint16_t version; /* minimum version */
};

/** The parsed header of a module file. */
struct module_info {
	size_t file_len;		/* bytes in the file (module + CRC) */
	uint32_t prefix_offset;		/* where module_info_t was found */
	uint32_t start;			/* module start address */
	uint32_t end;			/* end address (exclusive) */
	uint8_t mcu;			/* reserved byte (MCU target on Gen3) */
	uint8_t flags;			/* MODULE_FLAG_* */
	uint16_t version;		/* module version */
	uint16_t platform_id;		/* platform id */
	uint8_t func;			/* enum module_func */
	uint8_t index;			/* module index */
	struct module_dep deps[2];	/* dependency, dependency2 */
	uint16_t suffix_size;		/* 36, 40 or more */
	bool has_product;		/* suffix_size >= 40 */
	uint16_t product_id;		/* when has_product (0xffff: none) */
	uint16_t product_version;	/* when has_product */
	uint8_t sha256[MODULE_SHA_LEN]; /* the suffix's SHA-256 ("u") */
	uint32_t crc;			/* the stored CRC-32 */
};

/** Parser options; a zeroed struct (or NULL) accepts any platform. */
struct module_parse_opts {
	bool want_platform;   /* refuse other platforms than platform_id */
	uint16_t platform_id; /* the expected one */
	bool skip_sha;	      /* do not verify the suffix SHA-256 */
};

/**
 * Parse and check a module file: size bounds, prefix location (offset 0,
 * or after an interrupt vector table: 0x184 STM32F2, 0x200 Gen3, 0x10C
 * Core), length == end - start + 4, known function and dependency
 * functions, CRC-32 (big-endian, over everything before it), suffix size,
 * suffix SHA-256, platform, and the slot table of the platform when it
 * has one (Photon, P1, Electron, the gcc virtual device).
 * @param p, len the file (borrowed)
 * @param opts NULL for defaults
 * @param mi receives the fields (also filled as far as parsed on failure)
 * @param e receives the failed check and a message; may be NULL
 * @return 0, CINDER_ERR_TOO_BIG (MODULE_E_TOO_BIG) or CINDER_ERR_MALFORMED
 *	(every other check, including the platform)
 */
int module_parse(const uint8_t *p, size_t len,
		 const struct module_parse_opts *opts, struct module_info *mi,
		 struct module_error *e);

/** Short machine name of a check ("crc_mismatch", "wrong_platform"...). */
const char *module_err_code(enum module_err code);

/** What to build; unset fields (zero) take the defaults shown. */
struct module_spec {
	uint16_t platform_id;
	uint8_t func;		   /* enum module_func */
	uint8_t index;		   /* module index */
	uint16_t version;	   /* module version */
	struct module_dep deps[2]; /* header dependencies */
	uint32_t start;		   /* 0: the slot start of the platform */
	size_t size;		   /* whole file; 0: 1024; grown to fit */
	bool has_product;	   /* write product id/version (user parts) */
	uint16_t product_id;
	uint16_t product_version;
	uint8_t flags; /* prefix flags */
	uint32_t seed; /* varies the filler bytes (distinct images) */
};

/**
 * Build a valid module file: vector table and prefix where the platform
 * puts them, deterministic filler, suffix (with product fields when asked
 * or for user parts), SHA-256 and CRC-32.
 * @param out receives malloc'd bytes (caller frees); @param lenp its size
 * @param e receives the reason on failure; may be NULL
 * @return 0, CINDER_ERR_INVAL (function none, size over MODULE_FILE_MAX,
 *	no start address known for a platform without a slot table) or
 *	CINDER_ERR_CRYPTO
 */
int module_build(const struct module_spec *s, uint8_t **out, size_t *lenp,
		 struct module_error *e);

/** The describe letter of a function ('b', 's', 'u', ...; '_' unknown). */
char module_func_char(uint8_t func);

/** The function of a describe letter, or -1. */
int module_func_from_char(char c);

/** A lowercase name: "bootloader", "system_part", "user_part", ... */
const char *module_func_name(uint8_t func);

/**
 * The function for a name as module_func_name() gives it, or a few
 * aliases ("system", "user", "b", "s", "u"), or a number.
 * @return the function, or -1
 */
int module_func_parse(const char *s);

/** A platform's name ("photon", "electron", "gcc", ...) or NULL. */
const char *module_platform_name(uint16_t platform_id);

/**
 * The slot of (func, index) on a platform with a slot table.
 * @return true and start/size set, false when unknown
 */
bool module_slot(uint16_t platform_id, uint8_t func, uint8_t index,
		 uint32_t *start, uint32_t *size);

#endif
