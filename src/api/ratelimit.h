/* SPDX-License-Identifier: MIT */
/*
 * Per-client-IP request limits for the REST API (cloud-api.md 4.2):
 * sliding-window counters per IP and bucket, and the failed-login lockout
 * (N consecutive failures from one IP block /oauth/token for a while).
 * Pure logic: no I/O, the caller passes the time. Memory is bounded: at
 * most max_ips addresses are tracked; when full, the least recently seen
 * one is evicted (O(1); locked-out ones are passed over). IPv6 clients
 * are counted per /64. Loop thread only.
 */
#ifndef CINDER_API_RATELIMIT_H
#define CINDER_API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What a request counts against (besides RL_ALL, which every one does). */
enum rl_bucket {
	RL_ALL = 0,	 /* every API request: 10000 / 5 min */
	RL_OAUTH_TOKEN,	 /* POST /oauth/token: 100 / 5 min */
	RL_TOKENS_LIST,	 /* GET /v1/access_tokens: 100 / 5 min */
	RL_TOKEN_DELETE, /* DELETE /v1/access_tokens/:token */
	RL_USERS_CREATE, /* POST /v1/users */
	RL_EVENTS,	 /* GET /v1/events... (SSE opens): 100 / 5 min */
	RL_NBUCKETS
};

/** One limit: at most limit requests in any window_ms (0 = unlimited). */
struct rl_rule {
	unsigned limit;
	uint64_t window_ms;
};

struct ratelimit;

/**
 * @param max_ips addresses tracked at once (0: 65536)
 * @return a limiter with the cloud-api.md 4.2 defaults (free with
 *         ratelimit_free); lockout after 10 failures for 30 minutes
 */
struct ratelimit *ratelimit_new(size_t max_ips);
/** Free. NULL-safe. */
void ratelimit_free(struct ratelimit *rl);

/** Replace one bucket's rule (limit 0 disables it). */
void ratelimit_set_rule(struct ratelimit *rl, enum rl_bucket b,
			const struct rl_rule *rule);
/**
 * Set the lockout policy.
 * @param failures consecutive failures that lock (0 disables lockout)
 * @param lock_ms how long the IP stays locked
 */
void ratelimit_set_lockout(struct ratelimit *rl, unsigned failures,
			   uint64_t lock_ms);

/**
 * Count one request of ip against RL_ALL and bucket b (b may be RL_ALL).
 * A refused request is not counted.
 * @param ip the client address as text (borrowed)
 * @return 0 if allowed, CINDER_ERR_BUSY if over a limit
 */
int ratelimit_hit(struct ratelimit *rl, const char *ip, enum rl_bucket b,
		  uint64_t now_ms);

/** @return true while ip is locked out of logging in */
bool ratelimit_locked(struct ratelimit *rl, const char *ip, uint64_t now_ms);
/** Record a failed login from ip (may start a lockout). */
void ratelimit_login_failed(struct ratelimit *rl, const char *ip,
			    uint64_t now_ms);
/** Record a successful login from ip (resets the failure count). */
void ratelimit_login_ok(struct ratelimit *rl, const char *ip);

/** @return addresses tracked now (tests) */
size_t ratelimit_count(const struct ratelimit *rl);

#endif
