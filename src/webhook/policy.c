/* SPDX-License-Identifier: MIT */
/* Webhook delivery policy (see policy.h). Pure. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "webhook/policy.h"

int
policy_retry_parse(const char *s, struct policy_retry *out)
{
	const char *p = s;

	memset(out, 0, sizeof(*out));
	while (*p != '\0') {
		char *end;
		unsigned long v;

		if (*p < '0' || *p > '9')
			return CINDER_ERR_INVAL;
		v = strtoul(p, &end, 10);
		if (v < 1 || v > 86400 || out->n == POLICY_MAX_RETRIES)
			return CINDER_ERR_INVAL;
		out->delay_s[out->n++] = (unsigned)v;
		p = end;
		if (*p == ',') {
			p++;
			if (*p == '\0')
				return CINDER_ERR_INVAL;
		} else if (*p != '\0') {
			return CINDER_ERR_INVAL;
		}
	}
	return 0;
}

long
policy_retry_delay(const struct policy_retry *p, unsigned attempts)
{
	if (attempts == 0 || attempts > p->n)
		return -1;
	return (long)p->delay_s[attempts - 1];
}

bool
policy_retryable(int status)
{
	return status == 0 || status == 429 || (status >= 500 && status < 600);
}

bool
policy_success(int status)
{
	return status >= 200 && status < 400;
}

void
policy_host_record(struct policy_host *h, bool ok, uint64_t now_ms,
		   unsigned threshold, uint64_t sleep_ms)
{
	if (ok) {
		h->fails = 0;
		h->skip_until_ms = 0;
		return;
	}
	if (h->fails < 1000000)
		h->fails++;
	if (threshold > 0 && h->fails >= threshold)
		h->skip_until_ms = now_ms + sleep_ms;
}

bool
policy_host_skipping(const struct policy_host *h, uint64_t now_ms)
{
	return h->skip_until_ms != 0 && now_ms < h->skip_until_ms;
}

int
policy_nets_parse(const char *s, struct policy_nets *out)
{
	char item[80];
	const char *p = s;

	memset(out, 0, sizeof(*out));
	while (*p != '\0') {
		size_t n = strcspn(p, ", ");
		char *slash;
		unsigned long prefix;
		int fam;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(item) || out->n == POLICY_MAX_NETS)
			return CINDER_ERR_INVAL;
		memcpy(item, p, n);
		item[n] = '\0';
		p += n;
		fam = strchr(item, ':') ? AF_INET6 : AF_INET;
		prefix = fam == AF_INET ? 32 : 128;
		if ((slash = strchr(item, '/')) != NULL) {
			char *end;

			*slash = '\0';
			prefix = strtoul(slash + 1, &end, 10);
			if (slash[1] == '\0' || *end != '\0' ||
			    prefix > (fam == AF_INET ? 32u : 128u))
				return CINDER_ERR_INVAL;
		}
		if (inet_pton(fam, item, out->net[out->n].addr) != 1)
			return CINDER_ERR_INVAL;
		out->net[out->n].family = fam;
		out->net[out->n].prefix = (unsigned)prefix;
		out->n++;
	}
	return 0;
}

static bool
prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static bool
v4_refused(const uint8_t *a)
{
	return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
	       (a[0] == 169 && a[1] == 254) ||
	       (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	       (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224;
}

static bool
v6_refused(const uint8_t *a)
{
	static const uint8_t zero[16];

	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return true;				  /* :: and ::1 */
	return (a[0] & 0xfe) == 0xfc ||			  /* fc00::/7 */
	       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || /* fe80::/10 */
	       a[0] == 0xff;				  /* multicast */
}

bool
policy_addr_allowed(const struct sockaddr *sa, const struct policy_nets *allow)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};
	uint8_t a[16];
	int fam;
	size_t i;

	if (sa->sa_family == AF_INET) {
		memcpy(a,
		       &((const struct sockaddr_in *)(const void *)sa)
				->sin_addr,
		       4);
		fam = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a,
		       &((const struct sockaddr_in6 *)(const void *)sa)
				->sin6_addr,
		       16);
		fam = AF_INET6;
		if (memcmp(a, mapped, 12) == 0) {
			memmove(a, a + 12, 4);
			fam = AF_INET;
		}
	} else {
		return false;
	}
	for (i = 0; allow != NULL && i < allow->n; i++)
		if (allow->net[i].family == fam &&
		    prefix_match(a, allow->net[i].addr, allow->net[i].prefix))
			return true;
	return fam == AF_INET ? !v4_refused(a) : !v6_refused(a);
}
