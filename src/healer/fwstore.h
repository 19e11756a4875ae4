/* SPDX-License-Identifier: MIT */
/*
 * The firmware store (sql/0002_firmware.sql): module binaries in
 * PostgreSQL, one row per distinct file addressed by its SHA-256, the
 * parsed header as columns, and Device OS releases grouping the modules
 * of one version per platform. The asynchronous functions run on the
 * loop thread through the store (store.h); the insert statement is
 * shared with the blocking `cinderd firmware import`.
 */
#ifndef CINDER_HEALER_FWSTORE_H
#define CINDER_HEALER_FWSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healer/module.h"
#include "healer/planner.h"
#include "store.h"

#define FWSTORE_RELEASE_MAX 64 /* longest release version text */
#define FWSTORE_INSERT_NPARAMS 26

/** An image to insert: the file and its parsed header. */
struct fwstore_image {
	const uint8_t *bytes;	      /* the file (borrowed) */
	size_t len;		      /* its length */
	const struct module_info *mi; /* from module_parse() (borrowed) */
	const char *name;	      /* file name or NULL */
	int64_t uploaded_by;	      /* users.id, or 0 */
	const char *release;	      /* Device OS version, or NULL */
};

/** Parameter storage for the insert statement (texts of the numbers). */
struct fwstore_params {
	struct store_param p[FWSTORE_INSERT_NPARAMS];
	uint8_t sha[32];
	char num[FWSTORE_INSERT_NPARAMS][24];
	char *deps_json; /* owned */
};

/** The insert statement: image (idempotent), release, membership. */
extern const char fwstore_insert_sql[];

/**
 * Is v a release version ("1.5.2", "2.0.0-rc.3", at most
 * FWSTORE_RELEASE_MAX bytes)? *prerelease: it has a "-" part.
 */
bool fwstore_release_ok(const char *v, bool *prerelease);

/**
 * Fill the parameters of fwstore_insert_sql for img. Free with
 * fwstore_params_cleanup().
 * @return 0 or CINDER_ERR_CRYPTO
 */
int fwstore_params_fill(struct fwstore_params *fp,
			const struct fwstore_image *img);
void fwstore_params_cleanup(struct fwstore_params *fp);

/** Insert done: created is true when the image was new. */
typedef void (*fwstore_insert_cb)(int err, bool created,
				  const uint8_t sha256[32], void *arg);

/**
 * Store an image (and its release membership when img->release is set).
 * Idempotent: an image already stored keeps its row.
 * @return 0 (cb runs later) or the store's error (cb does not run)
 */
int fwstore_image_insert(struct store *st, const struct fwstore_image *img,
			 fwstore_insert_cb cb, void *arg);

/**
 * Catalogue loaded: cat, n valid only during the call (every image of the
 * platform except user parts; prerelease set for images only found in
 * prereleases).
 */
typedef void (*fwstore_catalogue_cb)(int err, const struct planner_image *cat,
				     size_t n, void *arg);

/** Load the planner's catalogue for a platform. @return as insert */
int fwstore_catalogue_load(struct store *st, uint16_t platform_id,
			   fwstore_catalogue_cb cb, void *arg);

/** Image fetched: bytes valid only during the call; NOTFOUND if absent. */
typedef void (*fwstore_fetch_cb)(int err, const uint8_t *bytes, size_t len,
				 void *arg);

/** Fetch one image's bytes by SHA-256. @return as insert */
int fwstore_image_fetch(struct store *st, const uint8_t sha256[32],
			fwstore_fetch_cb cb, void *arg);

#endif
