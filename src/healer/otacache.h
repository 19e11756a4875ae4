/* SPDX-License-Identifier: MIT */
/*
 * The OTA image cache: one copy in memory of each firmware image being
 * sent, shared by every transfer that sends it (the flash API and the
 * healer alike), keyed by the binary's SHA-256.
 *
 * The cache holds no reference of its own: an entry lives while some
 * transfer (or caller) holds a reference to its struct ota_image, and
 * leaves the cache when the last one is dropped (ota_image_unref()). The
 * bytes of the images in it are bounded: adding an image that would pass
 * the bound fails with CINDER_ERR_BUSY and leaves the cache as it was.
 *
 * Loop thread only.
 */
#ifndef CINDER_HEALER_OTACACHE_H
#define CINDER_HEALER_OTACACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ota_image;
struct ota_cache;

/* The default bound (config ota_image_cache_mb), in MB. */
#define OTA_CACHE_MB_DEFAULT 256

/**
 * Create a cache.
 * @param max_bytes bound on the bytes of the images it holds (> 0)
 */
struct ota_cache *ota_cache_new(size_t max_bytes);

/**
 * Free the cache. Images still referenced live on, no longer cached
 * (they are freed at their last reference as usual). NULL-safe.
 */
void ota_cache_free(struct ota_cache *c);

/**
 * Look an image up by its SHA-256.
 * @return a new reference (ota_image_unref() it), or NULL
 */
struct ota_image *ota_cache_get(struct ota_cache *c, const uint8_t sha[32]);

/**
 * The cached image of this SHA-256, or a new one made of data.
 * @param data the binary, whose SHA-256 is sha (the caller checked it)
 * @param take true: data is a malloc()ed buffer the cache takes in every
 *	case (freed when the image already is cached, or on an error);
 *	false: it is copied when needed
 * @param out receives a new reference
 * @return 0, CINDER_ERR_INVAL (empty image), CINDER_ERR_BUSY (the bound
 *	would be passed: the images being sent fill the cache)
 */
int ota_cache_put(struct ota_cache *c, const uint8_t sha[32], uint8_t *data,
		  size_t len, bool take, struct ota_image **out);

/** @return the bytes of the images cached now */
size_t ota_cache_bytes(const struct ota_cache *c);

/** @return the images cached now */
size_t ota_cache_count(const struct ota_cache *c);

/** @return the bound on ota_cache_bytes() */
size_t ota_cache_max(const struct ota_cache *c);

#endif
