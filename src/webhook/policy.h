/* SPDX-License-Identifier: MIT */
/*
 * Webhook delivery policy, pure: the retry schedule, which outcomes are
 * retried, per-host skipping after repeated failures, and which network
 * addresses a delivery may connect to (server-side request forgery
 * guard). No I/O, no clock: callers pass the time.
 */
#ifndef CINDER_WEBHOOK_POLICY_H
#define CINDER_WEBHOOK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define POLICY_MAX_RETRIES 16 /* entries of a retry schedule */
#define POLICY_MAX_NETS 32    /* entries of an allow-list */

/** Delays between attempts, in seconds. */
struct policy_retry {
	unsigned delay_s[POLICY_MAX_RETRIES];
	size_t n; /* retries after the first attempt */
};

/**
 * Parse "30,60" (seconds, 1..86400 each, up to POLICY_MAX_RETRIES; "" =
 * no retries).
 * @return 0 or CINDER_ERR_INVAL
 */
int policy_retry_parse(const char *s, struct policy_retry *out);

/**
 * @param attempts attempts made so far (>= 1)
 * @return seconds to wait before the next attempt, or -1 to give up
 */
long policy_retry_delay(const struct policy_retry *p, unsigned attempts);

/**
 * @param status the HTTP status, or 0 for no answer (connection error,
 *     timeout)
 * @return true if the outcome is retried: no answer, 5xx, 429
 */
bool policy_retryable(int status);

/** @return true if status counts as success (2xx, 3xx) */
bool policy_success(int status);

/** Failure memory of one target host. */
struct policy_host {
	unsigned fails;		/* failures since the last success */
	uint64_t skip_until_ms; /* skipping until then (monotonic ms) */
};

/**
 * Record an outcome. After threshold consecutive failures the host is
 * skipped for sleep_ms; after that one trial goes through, and a new
 * failure skips again at once. A success clears everything.
 * threshold 0 never skips.
 */
void policy_host_record(struct policy_host *h, bool ok, uint64_t now_ms,
			unsigned threshold, uint64_t sleep_ms);

/** @return true while deliveries to the host are skipped */
bool policy_host_skipping(const struct policy_host *h, uint64_t now_ms);

/** Networks allowed in spite of the default refusal. */
struct policy_nets {
	struct {
		int family;	  /* AF_INET or AF_INET6 */
		uint8_t addr[16]; /* network address */
		unsigned prefix;  /* prefix length */
	} net[POLICY_MAX_NETS];
	size_t n;
};

/**
 * Parse "127.0.0.0/8,::1/128" (a bare address is a host). "" = none.
 * @return 0 or CINDER_ERR_INVAL
 */
int policy_nets_parse(const char *s, struct policy_nets *out);

/**
 * @return true if a delivery may connect to sa: any address except
 *     loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
 *     link-local (169.254/16, fe80::/10), unspecified, shared
 *     (100.64/10), multicast and broadcast, unless an allow-list
 *     network contains it. IPv4-mapped IPv6 counts as IPv4.
 */
bool policy_addr_allowed(const struct sockaddr *sa,
			 const struct policy_nets *allow);

#endif
