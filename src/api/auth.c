/* SPDX-License-Identifier: MIT */
/*
 * Token helpers and the token cache of the REST API. A token is 20
 * random bytes as 40 lowercase hex characters; the database keeps only
 * its SHA-256. The cache maps that hash to the caller for a short TTL so
 * that most requests need no database round trip; revocation on this node
 * drops entries at once, other nodes see it when the TTL runs out.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/http.h"
#include "crypto.h"
#include "err.h"
#include "fmt.h"
#include "hmap.h"
#include "xmalloc.h"

const struct auth_user *
auth_user_of(const struct http_request *req)
{
	return req != NULL ? http_request_user(req) : NULL;
}

/* A copy is one block (struct, then its strings): every authenticated
 * request makes one, so it costs one malloc instead of three. */
void
auth_user_free(void *p)
{
	struct auth_user *u = p;

	if (u == NULL || --u->refs > 0)
		return;
	free(u);
}

struct auth_user *
auth_user_dup(const struct auth_user *u)
{
	const char *name = u->username != NULL ? u->username : "";
	size_t nlen = strlen(name) + 1;
	size_t clen = u->client_id != NULL ? strlen(u->client_id) + 1 : 0;
	struct auth_user *n = xcalloc(1, sizeof(*n) + nlen + clen);
	char *p = (char *)(n + 1);

	n->id = u->id;
	n->is_admin = u->is_admin;
	n->refs = 1;
	memcpy(p, name, nlen);
	n->username = p;
	if (clen > 0) {
		memcpy(p + nlen, u->client_id, clen);
		n->client_id = p + nlen;
	}
	return n;
}

int
auth_token_generate(char out[AUTH_TOKEN_LEN + 1])
{
	uint8_t raw[AUTH_TOKEN_LEN / 2];

	if (crypto_random(raw, sizeof(raw)) != 0)
		return CINDER_ERR_INTERNAL;
	fmt_hex(raw, sizeof(raw), out);
	crypto_wipe(raw, sizeof(raw));
	return 0;
}

bool
auth_token_wellformed(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 128 || s[i] <= ' ' || s[i] > '~')
			return false;
	}
	return true;
}

void
auth_token_hash(const char *token, uint8_t out[32])
{
	if (crypto_sha256(token, strlen(token), out) != 0)
		memset(out, 0, 32);
}

/*
 * Cache: hmap keyed by the 32-byte hash; entries also sit on a FIFO list
 * (insertion order) so that the oldest is evicted when full.
 */
struct auth_centry {
	uint8_t hash[32];
	struct auth_user *user;
	uint64_t expires_ms;
	struct auth_centry *prev, *next; /* insertion order */
};

struct auth_cache {
	struct hmap *map;
	struct auth_centry *head, *tail; /* oldest at head */
	uint64_t ttl_ms;
	size_t max;
};

struct auth_cache *
auth_cache_new(uint64_t ttl_ms, size_t max_entries)
{
	struct auth_cache *c = xcalloc(1, sizeof(*c));

	c->map = hmap_new();
	c->ttl_ms = ttl_ms;
	c->max = max_entries ? max_entries : 1;
	return c;
}

static void
centry_drop(struct auth_cache *c, struct auth_centry *e)
{
	hmap_remove(c->map, e->hash, sizeof(e->hash));
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	auth_user_free(e->user);
	free(e);
}

void
auth_cache_free(struct auth_cache *c)
{
	if (c == NULL)
		return;
	while (c->head != NULL)
		centry_drop(c, c->head);
	hmap_free(c->map);
	free(c);
}

void
auth_cache_put(struct auth_cache *c, const uint8_t hash[32],
	       const struct auth_user *u, uint64_t expires_ms, uint64_t now_ms)
{
	struct auth_centry *e = hmap_get(c->map, hash, 32);
	uint64_t exp = now_ms + c->ttl_ms;

	if (expires_ms != 0 && expires_ms < exp)
		exp = expires_ms;
	if (e != NULL)
		centry_drop(c, e);
	while (hmap_count(c->map) >= c->max && c->head != NULL)
		centry_drop(c, c->head);
	e = xcalloc(1, sizeof(*e));
	memcpy(e->hash, hash, 32);
	e->user = auth_user_dup(u);
	e->expires_ms = exp;
	e->prev = c->tail;
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	hmap_put(c->map, e->hash, sizeof(e->hash), e, NULL);
}

/* The live entry of hash, or NULL (an expired one is dropped). */
static struct auth_centry *
centry_live(struct auth_cache *c, const uint8_t hash[32], uint64_t now_ms)
{
	struct auth_centry *e = hmap_get(c->map, hash, 32);

	if (e == NULL)
		return NULL;
	if (now_ms >= e->expires_ms) {
		centry_drop(c, e);
		return NULL;
	}
	return e;
}

const struct auth_user *
auth_cache_get(struct auth_cache *c, const uint8_t hash[32], uint64_t now_ms)
{
	struct auth_centry *e = centry_live(c, hash, now_ms);

	return e != NULL ? e->user : NULL;
}

struct auth_user *
auth_cache_ref(struct auth_cache *c, const uint8_t hash[32], uint64_t now_ms)
{
	struct auth_centry *e = centry_live(c, hash, now_ms);

	if (e == NULL)
		return NULL;
	e->user->refs++;
	return e->user;
}

void
auth_cache_remove(struct auth_cache *c, const uint8_t hash[32])
{
	struct auth_centry *e = hmap_get(c->map, hash, 32);

	if (e != NULL)
		centry_drop(c, e);
}

void
auth_cache_remove_user(struct auth_cache *c, int64_t user_id)
{
	struct auth_centry *e = c->head, *next;

	for (; e != NULL; e = next) {
		next = e->next;
		if (e->user->id == user_id)
			centry_drop(c, e);
	}
}

size_t
auth_cache_count(const struct auth_cache *c)
{
	return hmap_count(c->map);
}
