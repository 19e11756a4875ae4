/* SPDX-License-Identifier: MIT */
/*
 * The OTA image cache (otacache.h): a map from SHA-256 to the live
 * struct ota_image, with no reference of its own. Each cached image
 * carries an on_free hook that removes it from the map at its last
 * reference; ota_cache_free() clears the hooks of the images that
 * outlive the cache.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "healer/ota.h"
#include "healer/otacache.h"
#include "hmap.h"
#include "xmalloc.h"

struct ota_cache {
	struct hmap *map; /* sha256 (32 bytes) -> struct ota_entry */
	size_t bytes;	  /* of the images in map */
	size_t max;	  /* bound on bytes */
};

/* What the image's on_free hook gets: the cache and the key. */
struct ota_entry {
	struct ota_cache *c;
	struct ota_image *img;
	uint8_t sha[32];
};

static void
entry_gone(void *arg, struct ota_image *img)
{
	struct ota_entry *e = arg;

	(void)img;
	if (e->c != NULL) {
		hmap_remove(e->c->map, e->sha, sizeof(e->sha));
		e->c->bytes -= e->img->len;
	}
	free(e);
}

struct ota_cache *
ota_cache_new(size_t max_bytes)
{
	struct ota_cache *c = xcalloc(1, sizeof(*c));

	c->map = hmap_new();
	c->max = max_bytes;
	return c;
}

static int
detach(const void *k, size_t len, void *v, void *arg)
{
	struct ota_entry *e = v;

	(void)k;
	(void)len;
	(void)arg;
	e->c = NULL; /* the image lives on; its hook only frees e */
	return 0;
}

void
ota_cache_free(struct ota_cache *c)
{
	if (c == NULL)
		return;
	hmap_foreach(c->map, detach, NULL);
	hmap_free(c->map);
	free(c);
}

struct ota_image *
ota_cache_get(struct ota_cache *c, const uint8_t sha[32])
{
	struct ota_entry *e = hmap_get(c->map, sha, 32);

	return e != NULL ? ota_image_ref(e->img) : NULL;
}

int
ota_cache_put(struct ota_cache *c, const uint8_t sha[32], uint8_t *data,
	      size_t len, bool take, struct ota_image **out)
{
	struct ota_entry *e;
	struct ota_image *img;

	*out = NULL;
	if ((*out = ota_cache_get(c, sha)) != NULL) {
		if (take)
			free(data);
		return 0;
	}
	if (len == 0 || len > c->max || c->bytes > c->max - len) {
		if (take)
			free(data);
		return len == 0 ? CINDER_ERR_INVAL : CINDER_ERR_BUSY;
	}
	img = take ? ota_image_new_take(data, len) : ota_image_new(data, len);
	e = xcalloc(1, sizeof(*e));
	e->c = c;
	e->img = img;
	memcpy(e->sha, sha, sizeof(e->sha));
	if (hmap_put(c->map, e->sha, sizeof(e->sha), e, NULL) != 0) {
		free(e);
		ota_image_unref(img);
		return CINDER_ERR_INTERNAL;
	}
	img->on_free = entry_gone;
	img->on_free_arg = e;
	c->bytes += len;
	*out = img;
	return 0;
}

size_t
ota_cache_bytes(const struct ota_cache *c)
{
	return c->bytes;
}

size_t
ota_cache_count(const struct ota_cache *c)
{
	return hmap_count(c->map);
}

size_t
ota_cache_max(const struct ota_cache *c)
{
	return c->max;
}
