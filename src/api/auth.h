/* SPDX-License-Identifier: MIT */
/*
 * Access-token authentication for the REST API: the authenticate hook
 * given to http_set_auth_cb(), an in-memory cache of token hash -> user
 * with a short TTL, token generation and hashing, and the caller record
 * that every ROUTE_AUTH_REQUIRED handler reads with auth_user_of().
 * Tokens are 40 lowercase hex characters; only their SHA-256 is stored.
 * Loop thread only.
 */
#ifndef CINDER_API_AUTH_H
#define CINDER_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_request;
struct store;

/** The authenticated caller, attached with http_request_set_user(). */
struct auth_user {
	int64_t id;	 /* users.id */
	char *username;	 /* in a copy: part of its block */
	bool is_admin;	 /* users.is_admin */
	char *client_id; /* OAuth client the token was issued to, or NULL */
	int refs;	 /* in a copy: its holders (cache, requests) */
};

/**
 * @return the caller of an authenticated request (borrowed, valid while
 *         the request lives) or NULL if the request carries no user
 */
const struct auth_user *auth_user_of(const struct http_request *req);

/** Drop a reference to a copy made by auth_user_dup or given by
 * auth_cache_ref, freeing it with the last (NULL-safe); usable as
 * http_request_set_user free_fn. */
void auth_user_free(void *u);

/** @return a new copy of u (caller frees with auth_user_free) */
struct auth_user *auth_user_dup(const struct auth_user *u);

#define AUTH_TOKEN_LEN 40 /* hex characters in an access/refresh token */

/**
 * Generate a new token: AUTH_TOKEN_LEN lowercase hex characters from
 * crypto_random, NUL-terminated.
 * @param out at least AUTH_TOKEN_LEN + 1 bytes
 * @return 0 or CINDER_ERR_INTERNAL
 */
int auth_token_generate(char out[AUTH_TOKEN_LEN + 1]);

/**
 * @return true if s looks like a token (1..128 printable ASCII chars,
 *         no spaces); malformed tokens are refused before any lookup
 */
bool auth_token_wellformed(const char *s);

/**
 * SHA-256 of a token's text, as stored in access_tokens.token_sha256.
 * @param out 32 bytes
 */
void auth_token_hash(const char *token, uint8_t out[32]);

/** Token hash -> user cache with a TTL; bounded size. */
struct auth_cache;

/**
 * @param ttl_ms how long an entry stays valid
 * @param max_entries the cache never holds more (oldest evicted)
 * @return a new cache (free with auth_cache_free)
 */
struct auth_cache *auth_cache_new(uint64_t ttl_ms, size_t max_entries);
/** Free the cache and its entries. NULL-safe. */
void auth_cache_free(struct auth_cache *c);

/**
 * Remember hash -> user until now_ms + ttl (or expires_ms if earlier and
 * not 0).
 * @param u copied
 */
void auth_cache_put(struct auth_cache *c, const uint8_t hash[32],
		    const struct auth_user *u, uint64_t expires_ms,
		    uint64_t now_ms);

/**
 * @return the cached user (borrowed, valid until the next cache call) or
 *         NULL if absent or expired (expired entries are dropped)
 */
const struct auth_user *auth_cache_get(struct auth_cache *c,
				       const uint8_t hash[32], uint64_t now_ms);

/**
 * auth_cache_get(), as a reference of the caller's own: the copy stays
 * valid after the entry is dropped, until the caller's auth_user_free.
 * Every authenticated request took a copy of the cached user, one
 * allocation (perf, bench/run B4); copies are never modified.
 * @return the cached user (the caller frees with auth_user_free) or NULL
 */
struct auth_user *auth_cache_ref(struct auth_cache *c, const uint8_t hash[32],
				 uint64_t now_ms);

/** Drop one token (revocation). */
void auth_cache_remove(struct auth_cache *c, const uint8_t hash[32]);

/** Drop every token of a user (revoke all, password change). */
void auth_cache_remove_user(struct auth_cache *c, int64_t user_id);

/** @return number of entries (tests) */
size_t auth_cache_count(const struct auth_cache *c);

#endif
