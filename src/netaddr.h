/* SPDX-License-Identifier: MIT */
/*
 * Listen addresses as written in cinder.conf: "host:port", "[v6]:port",
 * "*:port" or ":port" (all IPv4 addresses). Hosts are numeric addresses:
 * a daemon binds before it could resolve names without blocking. Port 0
 * means any free port. Pure: no I/O, no logging.
 */
#ifndef CINDER_NETADDR_H
#define CINDER_NETADDR_H

#include <sys/socket.h>

/**
 * Parse a listen address.
 * @param s the text; borrowed
 * @param ss receives the address (zeroed first)
 * @param len receives its length (sizeof the sockaddr_in/_in6 filled)
 * @return 0 or CINDER_ERR_INVAL
 */
int netaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
