/* SPDX-License-Identifier: MIT */
/*
 * Per-IP sliding-window rate limits and the failed-login lockout. Each
 * tracked address has, per bucket, the count of the current fixed window
 * and of the previous one; the estimate for "the last window_ms" weights
 * the previous count by how much of it still overlaps (the usual sliding
 * window counter). Addresses are keyed by their binary form (IPv6 by
 * /64); an LRU list makes eviction O(1) when the table is full.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "api/ratelimit.h"
#include "err.h"
#include "hmap.h"
#include "xmalloc.h"

#define RL_DEFAULT_MAX_IPS 65536
#define RL_FIVE_MIN_MS (5ULL * 60 * 1000)

struct rl_window {
	uint64_t start; /* start of the current window (ms) */
	unsigned cur;	/* requests in the current window */
	unsigned prev;	/* requests in the previous window */
};

struct rl_entry {
	uint8_t key[17];
	size_t keylen;
	uint64_t last_seen;
	unsigned failures;     /* consecutive failed logins */
	uint64_t locked_until; /* 0: not locked */
	struct rl_window w[RL_NBUCKETS];
	struct rl_entry *prev, *next; /* least recently seen first */
};

struct ratelimit {
	struct hmap *map;	      /* key -> struct rl_entry */
	struct rl_entry *head, *tail; /* LRU order, oldest at head */
	size_t max_ips;
	struct rl_rule rules[RL_NBUCKETS];
	unsigned lock_failures;
	uint64_t lock_ms;
};

struct ratelimit *
ratelimit_new(size_t max_ips)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	int i;

	rl->map = hmap_new();
	rl->max_ips = max_ips ? max_ips : RL_DEFAULT_MAX_IPS;
	rl->rules[RL_ALL].limit = 10000;
	for (i = RL_OAUTH_TOKEN; i < RL_NBUCKETS; i++)
		rl->rules[i].limit = 100;
	for (i = 0; i < RL_NBUCKETS; i++)
		rl->rules[i].window_ms = RL_FIVE_MIN_MS;
	rl->lock_failures = 10;
	rl->lock_ms = 30ULL * 60 * 1000;
	return rl;
}

static void
lru_unlink(struct ratelimit *rl, struct rl_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		rl->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		rl->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_append(struct ratelimit *rl, struct rl_entry *e)
{
	e->prev = rl->tail;
	e->next = NULL;
	if (rl->tail)
		rl->tail->next = e;
	else
		rl->head = e;
	rl->tail = e;
}

static void
remove_entry(struct ratelimit *rl, struct rl_entry *e)
{
	lru_unlink(rl, e);
	hmap_remove(rl->map, e->key, e->keylen);
	free(e);
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	while (rl->head != NULL)
		remove_entry(rl, rl->head);
	hmap_free(rl->map);
	free(rl);
}

void
ratelimit_set_rule(struct ratelimit *rl, enum rl_bucket b,
		   const struct rl_rule *rule)
{
	if ((int)b < 0 || b >= RL_NBUCKETS || rule == NULL)
		return;
	rl->rules[b] = *rule;
	if (rl->rules[b].window_ms == 0)
		rl->rules[b].window_ms = 1;
}

void
ratelimit_set_lockout(struct ratelimit *rl, unsigned failures, uint64_t lock_ms)
{
	rl->lock_failures = failures;
	rl->lock_ms = lock_ms;
}

/*
 * Binary key: the 4 bytes of an IPv4 address (also when written as an
 * IPv4-mapped IPv6 address), the /64 prefix of an IPv6 address, else a
 * bounded prefix of the text.
 */
static size_t
make_key(const char *ip, uint8_t key[17])
{
	size_t n;

	memset(key, 0, 17);
	if (ip == NULL)
		ip = "";
	if (inet_pton(AF_INET, ip, key + 1) == 1) {
		key[0] = 4;
		return 5;
	}
	if (inet_pton(AF_INET6, ip, key + 1) == 1) {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
						   0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(key + 1, mapped, sizeof(mapped)) == 0) {
			memmove(key + 1, key + 13, 4);
			memset(key + 5, 0, 12);
			key[0] = 4;
			return 5;
		}
		/* one client usually holds a whole /64: count it as one */
		key[0] = 6;
		memset(key + 9, 0, 8);
		return 9;
	}
	n = strnlen(ip, 16);
	key[0] = 0;
	memcpy(key + 1, ip, n);
	return n + 1;
}

/*
 * Make room for one more entry in O(1): evict the least recently seen
 * address, passing over (a few) locked ones so that a flood of new
 * addresses cannot lift a lockout cheaply.
 */
static void
make_room(struct ratelimit *rl, uint64_t now)
{
	struct rl_entry *e;
	int tries;

	for (tries = 0; tries < 8 && rl->head != NULL; tries++) {
		e = rl->head;
		if (e->locked_until > now && e != rl->tail) {
			lru_unlink(rl, e);
			lru_append(rl, e);
			continue;
		}
		remove_entry(rl, e);
		return;
	}
	if (rl->head != NULL)
		remove_entry(rl, rl->head);
}

/* Mark e as just seen. */
static void
touch(struct ratelimit *rl, struct rl_entry *e, uint64_t now)
{
	e->last_seen = now;
	if (e != rl->tail) {
		lru_unlink(rl, e);
		lru_append(rl, e);
	}
}

static struct rl_entry *
entry_get(struct ratelimit *rl, const char *ip, uint64_t now, bool create)
{
	uint8_t key[17];
	size_t klen = make_key(ip, key);
	struct rl_entry *e = hmap_get(rl->map, key, klen);

	if (e != NULL || !create)
		return e;
	if (hmap_count(rl->map) >= rl->max_ips)
		make_room(rl, now);
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, key, sizeof(key));
	e->keylen = klen;
	e->last_seen = now;
	hmap_put(rl->map, e->key, e->keylen, e, NULL);
	lru_append(rl, e);
	return e;
}

/* Roll a window forward to now. */
static void
window_roll(struct rl_window *w, uint64_t win, uint64_t now)
{
	uint64_t elapsed;

	if (w->start == 0 && w->cur == 0 && w->prev == 0) {
		w->start = now;
		return;
	}
	if (now < w->start) /* clock went back: restart */
		w->start = now;
	elapsed = now - w->start;
	if (elapsed < win)
		return;
	if (elapsed < 2 * win) {
		w->prev = w->cur;
		w->start += win;
	} else {
		w->prev = 0;
		w->start = now;
	}
	w->cur = 0;
}

/* Estimated requests in the last win ms, counting one more. */
static bool
window_over(const struct rl_window *w, const struct rl_rule *rule, uint64_t now)
{
	uint64_t into = now - w->start, weight_prev;
	uint64_t est;

	if (rule->limit == 0)
		return false;
	weight_prev = into < rule->window_ms ? rule->window_ms - into : 0;
	/* est = cur + prev * weight_prev / window, in integer arithmetic */
	est = (uint64_t)w->cur + 1 +
	      ((uint64_t)w->prev * weight_prev) / rule->window_ms;
	return est > rule->limit;
}

int
ratelimit_hit(struct ratelimit *rl, const char *ip, enum rl_bucket b,
	      uint64_t now_ms)
{
	struct rl_entry *e;

	if ((int)b < 0 || b >= RL_NBUCKETS)
		b = RL_ALL;
	e = entry_get(rl, ip, now_ms, true);
	touch(rl, e, now_ms);
	window_roll(&e->w[RL_ALL], rl->rules[RL_ALL].window_ms, now_ms);
	window_roll(&e->w[b], rl->rules[b].window_ms, now_ms);
	if (window_over(&e->w[RL_ALL], &rl->rules[RL_ALL], now_ms))
		return CINDER_ERR_BUSY;
	if (b != RL_ALL && window_over(&e->w[b], &rl->rules[b], now_ms))
		return CINDER_ERR_BUSY;
	e->w[RL_ALL].cur++;
	if (b != RL_ALL)
		e->w[b].cur++;
	return 0;
}

bool
ratelimit_locked(struct ratelimit *rl, const char *ip, uint64_t now_ms)
{
	struct rl_entry *e = entry_get(rl, ip, now_ms, false);

	if (e == NULL || e->locked_until == 0)
		return false;
	if (now_ms < e->locked_until)
		return true;
	e->locked_until = 0;
	e->failures = 0;
	return false;
}

void
ratelimit_login_failed(struct ratelimit *rl, const char *ip, uint64_t now_ms)
{
	struct rl_entry *e;

	if (rl->lock_failures == 0)
		return;
	e = entry_get(rl, ip, now_ms, true);
	touch(rl, e, now_ms);
	if (++e->failures >= rl->lock_failures)
		e->locked_until = now_ms + (rl->lock_ms ? rl->lock_ms : 1);
}

void
ratelimit_login_ok(struct ratelimit *rl, const char *ip)
{
	struct rl_entry *e = entry_get(rl, ip, 0, false);

	if (e != NULL)
		e->failures = 0;
}

size_t
ratelimit_count(const struct ratelimit *rl)
{
	return hmap_count(rl->map);
}
