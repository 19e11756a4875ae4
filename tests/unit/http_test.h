/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the HTTP unit tests (check_http, check_http_stream):
 * a raw client socket that sends one request, a drain that stops the
 * server and runs the loop until every connection has closed, and a
 * frame whose references are counted.
 */
#ifndef CINDER_TEST_HTTP_TEST_H
#define CINDER_TEST_HTTP_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "api/http.h"

/* Connect to the server on loopback and send text; returns the socket. */
static inline int
http_test_raw_send(struct http *h, const char *text)
{
	struct sockaddr_in sin;
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(http_port(h));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

/*
 * Stop the server (stopped_cb sets *stopped and breaks the loop) and run
 * the loop until it has drained: no connection left.
 */
static inline void
http_test_drain(struct event_base *base, struct http *h,
		void (*stopped_cb)(void *), const bool *stopped)
{
	ck_assert_int_eq(http_stop(h, stopped_cb, NULL), 0);
	while (!*stopped)
		ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(http_active_count(h), 0);
}

/* A shared frame: counts its references like a bus event would. */
static int frame_refs;
static const char frame[] = "event: shared\ndata: {}\n\n";

static inline void
frame_unref(const void *data, size_t len, void *arg)
{
	ck_assert_ptr_eq(data, frame);
	frame_refs--;
}

#endif
