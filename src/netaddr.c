/* SPDX-License-Identifier: MIT */
/* Listen address parsing, shared by the device and HTTP listeners and conf. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "netaddr.h"

int
netaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *ps;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	unsigned long port;
	char *end;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s == NULL)
		return CINDER_ERR_INVAL;
	if (*s == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL)
			return CINDER_ERR_INVAL;
		hl = (size_t)(colon - s - 1);
		ps = colon + 2;
		if (hl == 0 || hl >= sizeof(host))
			return CINDER_ERR_INVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return CINDER_ERR_INVAL;
		hl = (size_t)(colon - s);
		ps = colon + 1;
		if (hl >= sizeof(host))
			return CINDER_ERR_INVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	errno = 0;
	port = strtoul(ps, &end, 10);
	if (*ps == '\0' || *end != '\0' || errno != 0 || port > 65535)
		return CINDER_ERR_INVAL;
	if (*host == '\0' || strcmp(host, "*") == 0)
		snprintf(host, sizeof(host), "0.0.0.0");
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	return CINDER_ERR_INVAL;
}
