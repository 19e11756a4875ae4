/* SPDX-License-Identifier: MIT */
/*
 * Direct streams (src/api/http_resp.c): once libmicrohttpd has sent a
 * plain-HTTP stream's headers and first bytes, the loop writes the socket
 * itself. A raw client in the test's own thread checks the bytes on the
 * wire (HTTP/1.0 as is, HTTP/1.1 chunked), order, the queue bound for a
 * slow reader, the hand-back to MHD on end, stop and hang-up, and the
 * drop of a reader that stalls.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "err.h"
#include "log.h"
#include "xmalloc.h"
#include "api/http.h"
#include "http_test.h"
#include "api/http_int.h" /* req->direct, wait_write, wbuf */

/* Per-test state (each test runs in its own forked child). */
struct fx {
	struct event_base *base;
	struct http *h;
	uint64_t held_id;     /* last stream opened */
	int raw_fd;	      /* raw client socket, -1 if none */
	bool closed;	      /* close hook ran */
	bool closed_answered; /* ... with answered */
	bool stopped;	      /* http_stop drained */
};

static struct fx F;

static int
h_stream_hold(struct http_request *req, void *arg)
{
	F.held_id = http_request_id(req);
	return http_stream_start(req, 200, "text/event-stream");
}

static const struct route test_routes[] = {
	{"GET", "/t/stream-hold", 0, h_stream_hold},
};

static void
on_close(uint64_t id, bool answered, void *arg)
{
	F.closed = true;
	F.closed_answered = answered;
	ck_assert_ptr_null(http_request_lookup(F.h, id));
	event_base_loopbreak(F.base);
}

static void
stopped_cb(void *arg)
{
	F.stopped = true;
	event_base_loopbreak(F.base);
}

static void
server_new(const struct http_options *o)
{
	F.h = http_new(F.base, "127.0.0.1:0", o);
	ck_assert_ptr_nonnull(F.h);
	ck_assert_int_eq(
		http_add_routes(F.h, test_routes,
				sizeof(test_routes) / sizeof(test_routes[0]),
				NULL),
		0);
}

static void
setup(void)
{
	static bool debug_mode;

	if (!debug_mode) {
		event_enable_debug_mode();
		debug_mode = true;
	}
	log_current_level = LOG_LEVEL_WARN;
	memset(&F, 0, sizeof(F));
	F.raw_fd = -1;
	frame_refs = 0;
	F.base = event_base_new();
	ck_assert_ptr_nonnull(F.base);
	server_new(NULL);
}

static void
teardown(void)
{
	http_free(F.h);
	if (F.raw_fd >= 0)
		close(F.raw_fd);
	event_base_free(F.base);
}

static void
raw_send(const char *text)
{
	F.raw_fd = http_test_raw_send(F.h, text);
}

/* Stop the server and wait until every connection has closed. */
static void
drain(void)
{
	http_test_drain(F.base, F.h, stopped_cb, &F.stopped);
}

/* Wait for the stream's close hook (not answered), check the stream is
   gone, then drain. */
static void
closed_then_drain(void)
{
	while (!F.closed)
		ck_assert_int_eq(event_base_dispatch(F.base), 0);
	ck_assert(!F.closed_answered);
	ck_assert_int_eq(http_stream_write(F.h, F.held_id, "x", 1),
			 CINDER_ERR_NOTFOUND);
	drain();
}

/* ---- the raw client ---- */

/* What the raw client has read so far. */
struct rbuf {
	char *p;
	size_t len, cap;
	bool eof;
};

/* Run the loop once without blocking and read what the raw client has. */
static void
raw_pump(struct rbuf *b)
{
	ssize_t n;

	ck_assert_int_eq(event_base_loop(F.base, EVLOOP_NONBLOCK), 0);
	for (;;) {
		if (b->cap - b->len < 4096) {
			b->cap = b->cap ? b->cap * 2 : 65536;
			b->p = xreallocarray(b->p, b->cap, 1);
		}
		n = recv(F.raw_fd, b->p + b->len, b->cap - b->len - 1,
			 MSG_DONTWAIT);
		if (n == 0)
			b->eof = true;
		if (n <= 0)
			break;
		b->len += (size_t)n;
		b->p[b->len] = '\0';
	}
}

/*
 * Until the reply holds at least want or ends. The client is in this
 * thread, so the loop must not block on a socket only it would drain:
 * run the loop without blocking, read, and wait on the client's socket.
 */
static void
raw_wait(struct rbuf *b, size_t want)
{
	struct pollfd pfd;
	size_t before;

	while (b->len < want && !b->eof) {
		before = b->len;
		raw_pump(b);
		if (b->len == before && !b->eof) {
			pfd.fd = F.raw_fd;
			pfd.events = POLLIN;
			ck_assert_int_ge(poll(&pfd, 1, 10), 0);
		}
	}
}

/* Open a held stream with version, wait until it is direct. */
static struct http_request *
direct_open(const char *version, struct rbuf *b)
{
	char req[128];
	struct http_request *r;

	snprintf(req, sizeof(req), "GET /t/stream-hold %s\r\nHost: x\r\n\r\n",
		 version);
	raw_send(req);
	while (strstr(b->p != NULL ? b->p : "", "\r\n\r\n") == NULL) {
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_ONCE), 0);
		raw_pump(b);
	}
	r = http_request_lookup(F.h, F.held_id);
	ck_assert_ptr_nonnull(r);
	ck_assert(!r->direct);
	/* the first bytes go through MHD; when it asks for more, ours */
	ck_assert_int_eq(http_stream_write(F.h, F.held_id, ":ok\n\n", 5), 0);
	while (!r->direct)
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_ONCE), 0);
	return r;
}

/* The body after the headers, chunks decoded when chunked. */
static char *
body_of(const struct rbuf *b, bool chunked, bool *last_chunk)
{
	const char *p = strstr(b->p, "\r\n\r\n") + 4;
	char *out = xmalloc(b->len + 1), *end;
	size_t n = 0, k;

	*last_chunk = false;
	if (!chunked) {
		memcpy(out, p, (size_t)(b->p + b->len - p));
		out[b->p + b->len - p] = '\0';
		return out;
	}
	while (p < b->p + b->len) {
		k = strtoul(p, &end, 16);
		ck_assert_msg(end[0] == '\r' && end[1] == '\n', "bad chunk");
		p = end + 2;
		if (k == 0) {
			*last_chunk = true;
			break;
		}
		memcpy(out + n, p, k);
		n += k;
		p += k;
		ck_assert_msg(p[0] == '\r' && p[1] == '\n', "bad chunk end");
		p += 2;
	}
	out[n] = '\0';
	return out;
}

/* Frames with a sequence number: order and loss show in the text. */
static void
direct_frame(char *buf, size_t len, int i)
{
	snprintf(buf, len, "event: e\ndata: %06d %s\n\n", i,
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static void
direct_check(const char *version, bool chunked)
{
	struct rbuf b = {0};
	struct http_request *r;
	char frame_buf[128], *want, *got;
	size_t wlen = 0;
	bool last;
	int i;

	r = direct_open(version, &b);
	want = xmalloc(2000 * sizeof(frame_buf) + 8);
	memcpy(want, ":ok\n\n", 6);
	wlen = 5;
	for (i = 0; i < 2000; i++) {
		direct_frame(frame_buf, sizeof(frame_buf), i);
		ck_assert_int_eq(http_stream_write(F.h, F.held_id, frame_buf,
						   strlen(frame_buf)),
				 0);
		memcpy(want + wlen, frame_buf, strlen(frame_buf) + 1);
		wlen += strlen(frame_buf);
		if (i % 50 == 0)
			raw_pump(&b);
		ck_assert(r->direct);
	}
	frame_refs++;
	ck_assert_int_eq(http_stream_write_ref(F.h, F.held_id, frame,
					       sizeof(frame) - 1, frame_unref,
					       NULL),
			 0);
	memcpy(want + wlen, frame, sizeof(frame));
	wlen += sizeof(frame) - 1;
	/* ending hands the socket back to MHD, which ends the body */
	ck_assert_int_eq(http_stream_end(F.h, F.held_id), 0);
	if (chunked) {
		while (strstr(b.p, "\r\n0\r\n\r\n") == NULL) {
			ck_assert_int_eq(event_base_loop(F.base, EVLOOP_ONCE),
					 0);
			raw_pump(&b);
		}
	} else {
		raw_wait(&b, SIZE_MAX); /* HTTP/1.0: closed at the end */
	}
	got = body_of(&b, chunked, &last);
	ck_assert(last == chunked);
	ck_assert_uint_eq(strlen(got), wlen);
	ck_assert(strcmp(got, want) == 0);
	ck_assert_int_eq(frame_refs, 0);
	free(got);
	free(want);
	free(b.p);
}

START_TEST(test_http_stream_direct_http10)
{
	direct_check("HTTP/1.0", false);
}
END_TEST

START_TEST(test_http_stream_direct_chunked)
{
	direct_check("HTTP/1.1", true);
}
END_TEST

/* A reader that stops reading: the queue stays bounded, nothing is lost
 * or reordered up to the refusal, and an end after it still drains. */
START_TEST(test_http_stream_direct_slow_reader)
{
	struct rbuf b = {0};
	struct http_request *r;
	char frame_buf[128], *got, *want;
	size_t wlen = 5, cap = 64 * HTTP_DEFAULT_STREAM_MAX;
	int i = 0, rc;
	bool last;

	r = direct_open("HTTP/1.0", &b);
	want = xmalloc(cap);
	memcpy(want, ":ok\n\n", 6);
	for (;;) {
		direct_frame(frame_buf, sizeof(frame_buf), i++);
		rc = http_stream_write(F.h, F.held_id, frame_buf,
				       strlen(frame_buf));
		if (rc == CINDER_ERR_BUSY)
			break;
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_lt(wlen + strlen(frame_buf), cap);
		memcpy(want + wlen, frame_buf, strlen(frame_buf) + 1);
		wlen += strlen(frame_buf);
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_NONBLOCK), 0);
		ck_assert_uint_le(http_stream_buffered(F.h, F.held_id),
				  HTTP_DEFAULT_STREAM_MAX);
	}
	ck_assert(r->direct);
	ck_assert(r->wait_write);
	ck_assert_uint_gt(evbuffer_get_length(r->wbuf), 0);
	/* ends after what is queued: the reader catches up and sees it all */
	ck_assert_int_eq(http_stream_end(F.h, F.held_id), 0);
	raw_wait(&b, SIZE_MAX);
	got = body_of(&b, false, &last);
	ck_assert_uint_eq(strlen(got), wlen);
	ck_assert(strcmp(got, want) == 0);
	free(got);
	free(want);
	free(b.p);
}
END_TEST

/* The client of a direct stream hangs up: the close hook runs, writes
 * are refused and every queued reference is released. */
START_TEST(test_http_stream_direct_client_gone)
{
	struct rbuf b = {0};
	struct http_request *r;

	r = direct_open("HTTP/1.1", &b);
	http_request_on_close(r, on_close, NULL);
	frame_refs++;
	ck_assert_int_eq(http_stream_write_ref(F.h, F.held_id, frame,
					       sizeof(frame) - 1, frame_unref,
					       NULL),
			 0);
	close(F.raw_fd);
	F.raw_fd = -1;
	closed_then_drain();
	ck_assert_int_eq(frame_refs, 0);
	free(b.p);
}
END_TEST

/* Stopping the server ends a direct stream cleanly: what was queued,
 * then the last chunk, then the close. */
START_TEST(test_http_stream_direct_stop)
{
	struct rbuf b = {0};
	char *got;
	bool last;

	direct_open("HTTP/1.1", &b);
	ck_assert_int_eq(http_stream_write(F.h, F.held_id, "event: a\n\n", 10),
			 0);
	ck_assert_int_eq(http_stop(F.h, stopped_cb, NULL), 0);
	while (!F.stopped || !b.eof) {
		if (!F.stopped)
			ck_assert_int_eq(
				event_base_loop(F.base, EVLOOP_NONBLOCK), 0);
		raw_wait(&b, b.len + 1);
	}
	got = body_of(&b, true, &last);
	ck_assert(last);
	ck_assert_str_eq(got, ":ok\n\nevent: a\n\n");
	ck_assert_uint_eq(http_active_count(F.h), 0);
	free(got);
	free(b.p);
}
END_TEST

/* A reader that never reads again is dropped after the connection
 * timeout, like libmicrohttpd drops one, and its queue is freed. */
START_TEST(test_http_stream_direct_stalled_reader)
{
	struct http_options o;
	struct rbuf b = {0};
	struct http_request *r;
	char frame_buf[128];
	int i = 0;

	http_free(F.h);
	memset(&o, 0, sizeof(o));
	o.timeout_s = 1;
	o.stream_max_buffered = 16 * 1024;
	server_new(&o);
	r = direct_open("HTTP/1.0", &b);
	http_request_on_close(r, on_close, NULL);
	for (;;) {
		direct_frame(frame_buf, sizeof(frame_buf), i++);
		if (http_stream_write(F.h, F.held_id, frame_buf,
				      strlen(frame_buf)) == CINDER_ERR_BUSY)
			break;
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_NONBLOCK), 0);
	}
	ck_assert(r->wait_write);
	closed_then_drain();
	free(b.p);
}
END_TEST

static Suite *
http_stream_suite(void)
{
	Suite *s = suite_create("http_stream");
	TCase *tc;

	tc = tcase_create("direct");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_http_stream_direct_http10);
	tcase_add_test(tc, test_http_stream_direct_chunked);
	tcase_add_test(tc, test_http_stream_direct_slow_reader);
	tcase_add_test(tc, test_http_stream_direct_client_gone);
	tcase_add_test(tc, test_http_stream_direct_stop);
	tcase_add_test(tc, test_http_stream_direct_stalled_reader);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(http_stream_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
