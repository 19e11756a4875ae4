/* SPDX-License-Identifier: MIT */
/*
 * SSE: exact frame bytes (user and product formats, null data, JSON
 * escaping of quotes, control characters and invalid UTF-8), the
 * visibility rules, and real streams through the HTTP layer on a
 * loopback port: headers and the ":ok" preamble, one formatted frame
 * shared by several streams, the keep-alive after a short interval, the
 * per-IP limit (429), and a slow reader cut off while another stream
 * keeps receiving.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "api/http.h"
#include "bus.h"
#include "err.h"
#include "log.h"
#include "sse.h"

/* 2026-11-25T01:02:03.456Z */
#define T0 1795568523456ULL
#define DEV "0123456789abcdef01234567"

static struct bus_event *
mkev(const char *name, const char *data, size_t len, enum bus_source src,
     int64_t owner, bool priv)
{
	struct bus_event_spec sp = {0};
	struct bus_event *ev;

	sp.name = name;
	sp.data = (const uint8_t *)data;
	sp.data_len = len;
	sp.source = src;
	sp.device_id = DEV;
	sp.owner_id = owner;
	sp.is_private = priv;
	sp.published_ms = T0;
	sp.product_id = 42;
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	return ev;
}

START_TEST(test_sse_format_time)
{
	char buf[25];

	sse_format_time(T0, buf);
	ck_assert_str_eq(buf, "2026-11-25T01:02:03.456Z");
	sse_format_time(0, buf);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(test_sse_format_frame_exact)
{
	struct bus_event *ev = mkev("temp", "21.5", 4, BUS_SRC_DEVICE, 3, true);
	char *out;
	size_t n;

	n = sse_format_frame(ev, false, &out);
	ck_assert_str_eq(out, "event: temp\n"
			      "data: {\"data\":\"21.5\",\"ttl\":60,"
			      "\"published_at\":\"2026-11-25T01:02:03.456Z\","
			      "\"coreid\":\"" DEV "\"}\n\n");
	ck_assert_uint_eq(n, strlen(out));
	free(out);
	n = sse_format_frame(ev, true, &out);
	ck_assert_str_eq(out, "event: temp\n"
			      "data: {\"data\":\"21.5\",\"ttl\":60,"
			      "\"published_at\":\"2026-11-25T01:02:03.456Z\","
			      "\"coreid\":\"" DEV "\",\"userid\":\"3\","
			      "\"public\":false,\"productID\":42}\n\n");
	free(out);
	bus_event_unref(ev);
}
END_TEST

START_TEST(test_sse_format_frame_numbers_and_names)
{
	struct bus_event_spec sp = {0};
	struct bus_event *ev;
	char *out;

	sp.name = "a\x01"
		  "b\x7f";
	sp.source = BUS_SRC_API;
	sp.owner_id = 9007199254740993LL;
	sp.ttl = 4294967295u;
	sp.published_ms = T0;
	sp.product_id = 4294967295u;
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	sse_format_frame(ev, true, &out);
	ck_assert_str_eq(out, "event: a_b_\n"
			      "data: {\"data\":null,\"ttl\":4294967295,"
			      "\"published_at\":\"2026-11-25T01:02:03.456Z\","
			      "\"coreid\":\"api\",\"userid\":"
			      "\"9007199254740993\",\"public\":true,"
			      "\"productID\":4294967295}\n\n");
	free(out);
	bus_event_unref(ev);
	sp.owner_id = -5;
	sp.ttl = 0; /* the default */
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	sse_format_frame(ev, true, &out);
	ck_assert_ptr_nonnull(strstr(out, "\"ttl\":60,"));
	ck_assert_ptr_nonnull(strstr(out, "\"userid\":\"-5\""));
	free(out);
	bus_event_unref(ev);
}
END_TEST

START_TEST(test_sse_format_frame_null_data)
{
	struct bus_event *ev = mkev("x/y", NULL, 0, BUS_SRC_API, 3, false);
	char *out;

	sse_format_frame(ev, false, &out);
	ck_assert_str_eq(out, "event: x/y\n"
			      "data: {\"data\":null,\"ttl\":60,"
			      "\"published_at\":\"2026-11-25T01:02:03.456Z\","
			      "\"coreid\":\"api\"}\n\n");
	free(out);
	bus_event_unref(ev);
	ev = mkev("i", NULL, 0, BUS_SRC_INTERNAL, 0, false);
	sse_format_frame(ev, true, &out);
	ck_assert_ptr_nonnull(strstr(out, "\"coreid\":\"particle-internal\","
					  "\"userid\":\"\",\"public\":true"));
	free(out);
	bus_event_unref(ev);
}
END_TEST

START_TEST(test_sse_format_frame_escaping)
{
	static const char data[] = "a\"b\\c\nd\re\tf\x01g/\xc3\xa9h\xffi"
				   "\xe2\x82\xac\xed\xa0\x80j\x7f";
	struct bus_event *ev =
		mkev("esc", data, sizeof(data) - 1, BUS_SRC_API, 1, false);
	char *out;

	sse_format_frame(ev, false, &out);
	ck_assert_str_eq(out,
			 "event: esc\n"
			 "data: {\"data\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g/"
			 "\xc3\xa9h\\ufffdi\xe2\x82\xac\\ufffd\\ufffd\\ufffdj"
			 "\x7f\",\"ttl\":60,"
			 "\"published_at\":\"2026-11-25T01:02:03.456Z\","
			 "\"coreid\":\"api\"}\n\n");
	free(out);
	bus_event_unref(ev);
}
END_TEST

START_TEST(test_sse_visible_rules)
{
	struct bus_event *pub_other =
		mkev("t", "1", 1, BUS_SRC_DEVICE, 9, false);
	struct bus_event *priv_other =
		mkev("t", "1", 1, BUS_SRC_DEVICE, 9, true);
	struct bus_event *priv_mine =
		mkev("t", "1", 1, BUS_SRC_DEVICE, 5, true);
	struct bus_event *api_mine = mkev("t", "1", 1, BUS_SRC_API, 5, true);
	struct bus_event *unowned = mkev("t", "1", 1, BUS_SRC_DEVICE, 0, true);
	struct sse_filter f = {0};

	f.user_id = 5;
	f.scope = SSE_SCOPE_ALL;
	ck_assert(sse_visible(&f, pub_other));
	ck_assert(!sse_visible(&f, priv_other));
	ck_assert(sse_visible(&f, priv_mine));
	ck_assert(sse_visible(&f, api_mine));
	ck_assert(!sse_visible(&f, unowned));
	f.scope = SSE_SCOPE_MINE;
	ck_assert(!sse_visible(&f, pub_other));
	ck_assert(!sse_visible(&f, priv_other));
	ck_assert(sse_visible(&f, priv_mine));
	ck_assert(sse_visible(&f, api_mine));
	f.scope = SSE_SCOPE_DEVICE;
	strcpy(f.device_id, DEV);
	ck_assert(sse_visible(&f, pub_other));
	ck_assert(!sse_visible(&f, priv_other));
	ck_assert(sse_visible(&f, priv_mine));
	ck_assert(!sse_visible(&f, api_mine)); /* not from the device */
	f.see_private = true;		       /* an admin */
	ck_assert(sse_visible(&f, priv_other));
	strcpy(f.device_id, "ffffffffffffffffffffffff");
	ck_assert(!sse_visible(&f, pub_other));
	f.scope = SSE_SCOPE_PRODUCT;
	f.product_id = 42;
	ck_assert(sse_visible(&f, priv_other));
	f.product_id = 43;
	ck_assert(!sse_visible(&f, priv_other));
	/* hidden events never reach a stream */
	f.scope = SSE_SCOPE_MINE;
	priv_mine->flags = BUS_EV_HIDDEN;
	ck_assert(!sse_visible(&f, priv_mine));
	bus_event_unref(pub_other);
	bus_event_unref(priv_other);
	bus_event_unref(priv_mine);
	bus_event_unref(api_mine);
	bus_event_unref(unowned);
}
END_TEST

/* ---- real streams over loopback ---- */

struct client {
	int fd;
	char *raw;	  /* everything received */
	size_t nraw;	  /* its length */
	size_t parsed;	  /* raw bytes consumed by the dechunker */
	int status;	  /* HTTP status, 0 until the headers are in */
	char *headers;	  /* the header block */
	char body[65536]; /* dechunked body (truncated if longer) */
	size_t nbody;	  /* its length */
	size_t total;	  /* body bytes seen in all */
	bool eof;	  /* the server closed */
	uint64_t ka_at;	  /* ms when the body first grew past mark */
	size_t mark;	  /* body length to watch */
};

static struct {
	struct event_base *base;
	struct http *h;
	struct bus *bus;
	struct sse *sse;
	struct event *tick;
} F;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
h_stream(struct http_request *req, void *arg)
{
	struct sse_filter f = {0};
	const char *scope = http_request_query(req, "scope");
	const char *prefix = http_request_query(req, "prefix");
	const char *user = http_request_query(req, "user");
	const char *device = http_request_query(req, "device");
	const char *product = http_request_query(req, "product");
	int r;

	(void)arg;
	f.scope = scope != NULL ? atoi(scope) : SSE_SCOPE_ALL;
	f.user_id = user != NULL ? atoi(user) : 5;
	snprintf(f.device_id, sizeof(f.device_id), "%s",
		 device != NULL ? device : DEV);
	f.product_id = product != NULL ? (uint32_t)atoi(product) : 0;
	r = sse_open(F.sse, req, &f, prefix != NULL ? prefix : "");
	if (r == CINDER_ERR_BUSY)
		return http_respond_error(req, r, NULL, "too many");
	return r;
}

static const struct route routes[] = {
	{"GET", "/s", 0, h_stream},
};

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
fx_start(unsigned keepalive_ms, unsigned per_ip, size_t max_buffered)
{
	struct http_options ho = {0};
	struct sse_opts so = {0};
	struct timeval tv = {0, 10000};

	signal(SIGPIPE, SIG_IGN);
	log_open(LOG_LEVEL_WARN, NULL);
	F.base = event_base_new();
	ho.stream_max_buffered = max_buffered;
	F.h = http_new(F.base, "127.0.0.1:0", &ho);
	ck_assert_ptr_nonnull(F.h);
	ck_assert_int_eq(http_add_routes(F.h, routes, 1, NULL), 0);
	F.bus = bus_new(F.base);
	so.keepalive_ms = keepalive_ms;
	so.max_per_ip = per_ip;
	F.sse = sse_new(F.base, F.h, F.bus, &so);
	F.tick = event_new(F.base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(F.tick, &tv); /* bounds each loop turn */
}

static void
fx_stop(void)
{
	sse_free(F.sse);
	http_free(F.h);
	bus_free(F.bus);
	event_free(F.tick);
	event_base_free(F.base);
}

static struct client *
client_open(const char *path, int rcvbuf)
{
	struct client *c = calloc(1, sizeof(*c));
	struct sockaddr_in sa = {0};
	char req[256];
	int n;

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(http_port(F.h));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
		     path);
	ck_assert_int_eq(send(c->fd, req, (size_t)n, 0), n);
	return c;
}

static void
client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->raw);
	free(c->headers);
	free(c);
}

/* Dechunk what has arrived after the headers. */
static void
client_parse(struct client *c)
{
	char *hdr_end, *p, *end;
	unsigned long sz;

	if (c->raw == NULL)
		return;
	if (c->status == 0) {
		hdr_end = memmem(c->raw, c->nraw, "\r\n\r\n", 4);
		if (hdr_end == NULL)
			return;
		c->headers = strndup(c->raw, (size_t)(hdr_end - c->raw) + 2);
		c->status = atoi(c->raw + 9);
		c->parsed = (size_t)(hdr_end - c->raw) + 4;
		if (strstr(c->headers, "chunked") == NULL) {
			/* an error answer with a length: keep it whole */
			size_t n = c->nraw - c->parsed;

			memcpy(c->body, c->raw + c->parsed, n);
			c->nbody = n;
			c->parsed = c->nraw;
			return;
		}
	}
	for (;;) {
		p = c->raw + c->parsed;
		end = memmem(p, c->nraw - c->parsed, "\r\n", 2);
		if (end == NULL)
			return;
		sz = strtoul(p, NULL, 16);
		if ((size_t)(end - c->raw) + 2 + sz + 2 > c->nraw)
			return;
		if (c->nbody + sz < sizeof(c->body)) {
			memcpy(c->body + c->nbody, end + 2, sz);
			c->nbody += sz;
		}
		c->total += sz;
		c->parsed = (size_t)(end - c->raw) + 2 + sz + 2;
		if (sz == 0)
			c->eof = true;
	}
}

static void
client_read(struct client *c)
{
	char buf[16384];
	ssize_t n;

	while (c->fd >= 0 && !c->eof) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->eof = true;
			break;
		}
		c->raw = realloc(c->raw, c->nraw + (size_t)n + 1);
		memcpy(c->raw + c->nraw, buf, (size_t)n);
		c->nraw += (size_t)n;
		c->raw[c->nraw] = '\0';
	}
	client_parse(c);
	if (c->ka_at == 0 && c->nbody > c->mark)
		c->ka_at = now_ms();
}

/* Run the loop until cond holds for c (or fail after 5 s). */
#define RUN_UNTIL(c, cond)                                                     \
	do {                                                                   \
		uint64_t dl_ = now_ms() + 5000;                                \
		for (;;) {                                                     \
			client_read(c);                                        \
			if (cond)                                              \
				break;                                         \
			ck_assert_msg(now_ms() < dl_, "timeout: %s", #cond);   \
			event_base_loop(F.base, EVLOOP_ONCE);                  \
		}                                                              \
	} while (0)

static void
publish_from(const char *name, const char *data, int64_t owner, bool priv,
	     const char *device, uint32_t product)
{
	struct bus_event_spec sp = {0};
	struct bus_event *ev;

	sp.name = name;
	sp.data = (const uint8_t *)data;
	sp.data_len = data ? strlen(data) : 0;
	sp.source = device != NULL ? BUS_SRC_DEVICE : BUS_SRC_API;
	sp.device_id = device;
	sp.owner_id = owner;
	sp.is_private = priv;
	sp.product_id = product;
	sp.published_ms = T0;
	ck_assert_int_eq(bus_event_new(&sp, &ev), 0);
	bus_publish(F.bus, ev);
}

static void
publish(const char *name, const char *data, int64_t owner, bool priv)
{
	publish_from(name, data, owner, priv, DEV, 0);
}

/* Run the loop until n streams are left (the close hooks have run). */
static void
wait_streams(size_t n)
{
	struct sse_stats st;

	for (int i = 0; i < 200; i++) {
		sse_stats_get(F.sse, &st);
		if (st.streams == n)
			break;
		event_base_loop(F.base, EVLOOP_ONCE);
	}
	ck_assert_uint_eq(st.streams, n);
}

/* The event names in c's body so far, comma-separated, into buf. */
static const char *
names_of(struct client *c, char *buf, size_t cap)
{
	const char *p = c->body;
	size_t n = 0, k;

	buf[0] = '\0';
	while ((p = strstr(p, "event: ")) != NULL) {
		p += 7;
		k = strcspn(p, "\n");
		if (n + k + 2 > cap)
			break;
		if (n > 0)
			buf[n++] = ',';
		memcpy(buf + n, p, k);
		n += k;
		buf[n] = '\0';
	}
	return buf;
}

#define FRAME_T                                                                \
	"event: t/1\ndata: {\"data\":\"x\",\"ttl\":60,"                        \
	"\"published_at\":\"2026-11-25T01:02:03.456Z\",\"coreid\":\"" DEV      \
	"\"}\n\n"

START_TEST(test_sse_open_stream)
{
	struct client *a, *b, *mine;
	struct sse_stats st;

	fx_start(60000, 0, 0);
	a = client_open("/s?prefix=t", 0);
	b = client_open("/s?prefix=t/", 0);
	mine = client_open("/s?scope=1", 0); /* MINE, no prefix */
	RUN_UNTIL(a, a->nbody >= 5);
	RUN_UNTIL(b, b->nbody >= 5);
	RUN_UNTIL(mine, mine->nbody >= 5);
	ck_assert_int_eq(a->status, 200);
	ck_assert_ptr_nonnull(
		strstr(a->headers, "Content-Type: text/event-stream\r\n"));
	ck_assert_ptr_nonnull(
		strstr(a->headers, "Cache-Control: no-cache\r\n"));
	ck_assert_ptr_nonnull(strstr(a->headers, "X-Accel-Buffering: no\r\n"));
	/* MHD drops "Connection: keep-alive" (the HTTP/1.1 default) */
	ck_assert_ptr_null(strstr(a->headers, "Connection: close"));
	ck_assert_str_eq(a->body, ":ok\n\n");
	publish("other", "x", 7, false); /* no prefix match for a and b */
	publish("t/1", "x", 9, true);	 /* someone else's private event */
	publish("t/1", "x", 9, false);	 /* public: a and b */
	RUN_UNTIL(b, b->nbody > 5);
	RUN_UNTIL(a, a->nbody > 5);
	ck_assert_str_eq(a->body, ":ok\n\n" FRAME_T);
	ck_assert_str_eq(b->body, ":ok\n\n" FRAME_T);
	client_read(mine);
	ck_assert_str_eq(mine->body, ":ok\n\n"); /* none of them is hers */
	publish("mine", NULL, 5, true);
	RUN_UNTIL(mine, mine->nbody > 5);
	ck_assert_ptr_nonnull(strstr(mine->body, "event: mine\ndata: "
						 "{\"data\":null,"));
	sse_stats_get(F.sse, &st);
	ck_assert_uint_eq(st.streams, 3);
	ck_assert_uint_eq(st.frames, 2); /* t/1 formatted once for two */
	ck_assert_uint_eq(st.writes, 3);
	client_free(a);
	client_free(b);
	client_free(mine);
	/* the close hooks drop the streams */
	wait_streams(0);
	fx_stop();
}
END_TEST

/*
 * Streams of one owner, device or product are bus subscriptions bound to
 * that key (sse.c, bus.c); each must get exactly what sse_visible() and
 * its prefix let through, whoever else has streams open.
 */
#define OTHER "ffffffffffffffffffffffff"

START_TEST(test_sse_index_routes)
{
	struct client *m5, *m6, *d5, *d6, *p42, *all6, *m5b;
	char buf[256];

	fx_start(60000, 0, 0);
	m5 = client_open("/s?scope=1&user=5", 0);
	m6 = client_open("/s?scope=1&user=6&prefix=t", 0);
	d5 = client_open("/s?scope=2&user=5", 0);
	d6 = client_open("/s?scope=2&user=6", 0);
	p42 = client_open("/s?scope=3&user=6&product=42", 0);
	all6 = client_open("/s?user=6", 0);
	m5b = client_open("/s?scope=1&user=5&prefix=t/", 0);
	RUN_UNTIL(m5, m5->nbody >= 5);
	RUN_UNTIL(m6, m6->nbody >= 5);
	RUN_UNTIL(d5, d5->nbody >= 5);
	RUN_UNTIL(d6, d6->nbody >= 5);
	RUN_UNTIL(p42, p42->nbody >= 5);
	RUN_UNTIL(all6, all6->nbody >= 5);
	RUN_UNTIL(m5b, m5b->nbody >= 5);

	/* 5's private event from DEV in product 42 */
	publish_from("t/a", "x", 5, true, DEV, 42);
	/* 6's public event from another device */
	publish_from("t/b", "x", 6, false, OTHER, 0);
	/* 6's private API event (no device), outside m6's prefix */
	publish_from("x", "x", 6, true, NULL, 0);
	/* 5's public event from DEV, no product; "t" alone is not "t/" */
	publish_from("t", "x", 5, false, DEV, 0);
	/* unowned public event from DEV in product 42 */
	publish_from("u", "x", 0, false, DEV, 42);
	/* last: one each stream sees, so everything before it is in */
	publish_from("t/end5", "x", 5, true, DEV, 42);
	publish_from("t/end6", "x", 6, false, OTHER, 0);
	RUN_UNTIL(m5, strstr(m5->body, "t/end5") != NULL);
	RUN_UNTIL(m5b, strstr(m5b->body, "t/end5") != NULL);
	RUN_UNTIL(d5, strstr(d5->body, "t/end5") != NULL);
	RUN_UNTIL(p42, strstr(p42->body, "t/end5") != NULL);
	RUN_UNTIL(m6, strstr(m6->body, "t/end6") != NULL);
	RUN_UNTIL(all6, strstr(all6->body, "t/end6") != NULL);
	/* d6 sees DEV's public events only: t/end5 is private, so wait for
	   the public one after it */
	publish_from("t/end-d", "x", 0, false, DEV, 0);
	RUN_UNTIL(d6, strstr(d6->body, "t/end-d") != NULL);
	RUN_UNTIL(all6, strstr(all6->body, "t/end-d") != NULL);

	ck_assert_str_eq(names_of(m5, buf, sizeof(buf)), "t/a,t,t/end5");
	ck_assert_str_eq(names_of(m5b, buf, sizeof(buf)), "t/a,t/end5");
	ck_assert_str_eq(names_of(m6, buf, sizeof(buf)), "t/b,t/end6");
	ck_assert_str_eq(names_of(d5, buf, sizeof(buf)), "t/a,t,u,t/end5");
	ck_assert_str_eq(names_of(d6, buf, sizeof(buf)), "t,u,t/end-d");
	ck_assert_str_eq(names_of(p42, buf, sizeof(buf)), "t/a,u,t/end5");
	ck_assert_str_eq(names_of(all6, buf, sizeof(buf)),
			 "t/b,x,t,u,t/end6,t/end-d");

	/* closing streams empties their keys' lists; a new stream still
	   works */
	client_free(m5);
	client_free(m5b);
	client_free(d5);
	client_free(d6);
	client_free(p42);
	client_free(m6);
	wait_streams(1);
	m5 = client_open("/s?scope=1&user=5", 0);
	RUN_UNTIL(m5, m5->nbody >= 5);
	publish_from("again", "x", 5, true, NULL, 0);
	RUN_UNTIL(m5, strstr(m5->body, "again") != NULL);
	ck_assert_str_eq(names_of(m5, buf, sizeof(buf)), "again");
	client_free(m5);
	client_free(all6);
	fx_stop();
}
END_TEST

START_TEST(test_sse_keepalive)
{
	struct client *a;
	uint64_t t0;
	struct sse_stats st;

	fx_start(200, 0, 0);
	a = client_open("/s?prefix=t", 0);
	RUN_UNTIL(a, a->nbody >= 5);
	t0 = now_ms();
	a->mark = 5;
	a->ka_at = 0;
	RUN_UNTIL(a, a->nbody > 5);
	ck_assert_str_eq(a->body, ":ok\n\n\n");
	/* not before the interval, and not much after it */
	ck_assert_uint_ge(a->ka_at - t0, 150);
	ck_assert_uint_lt(a->ka_at - t0, 1000);
	/* a frame resets the silence: nothing for another interval */
	publish("t/1", "x", 0, false);
	RUN_UNTIL(a, a->nbody > 6);
	t0 = now_ms();
	a->mark = a->nbody;
	a->ka_at = 0;
	RUN_UNTIL(a, a->nbody > a->mark);
	ck_assert_uint_ge(a->ka_at - t0, 150);
	ck_assert_str_eq(a->body + a->mark, "\n");
	sse_stats_get(F.sse, &st);
	ck_assert_uint_ge(st.keepalives, 2);
	client_free(a);
	fx_stop();
}
END_TEST

START_TEST(test_sse_per_ip_limit)
{
	struct client *a, *b, *c;
	struct sse_stats st;

	fx_start(60000, 2, 0);
	a = client_open("/s?prefix=t", 0);
	b = client_open("/s?prefix=t", 0);
	RUN_UNTIL(a, a->nbody >= 5);
	RUN_UNTIL(b, b->nbody >= 5);
	c = client_open("/s?prefix=t", 0);
	RUN_UNTIL(c, c->status != 0 && c->nbody > 0);
	ck_assert_int_eq(c->status, 429);
	sse_stats_get(F.sse, &st);
	ck_assert_uint_eq(st.refused_ip, 1);
	ck_assert_uint_eq(st.streams, 2);
	client_free(a);
	client_free(b);
	client_free(c);
	fx_stop();
}
END_TEST

/*
 * _i 0: two streams of every user's events (by prefix). _i 1: a stream of
 * user 7's events and one of DEV's (bound to those keys): the slow one is
 * the only stream of its key, so the cut ends that key's list while the
 * event is still going to the other stream (ASan checks the rest).
 */
START_TEST(test_sse_slow_reader_cut)
{
	static const char *const paths[2][2] = {
		{"/s?prefix=big", "/s?prefix=big"},
		{"/s?scope=1&user=7&prefix=big",
		 "/s?scope=2&user=7&prefix=big"},
	};
	struct client *slow, *fast;
	struct sse_stats st;
	char data[601];
	int i;

	fx_start(60000, 0, 32 * 1024);
	memset(data, 'd', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	slow = client_open(paths[_i][0], 2048);
	fast = client_open(paths[_i][1], 0);
	RUN_UNTIL(slow, slow->nbody >= 5);
	RUN_UNTIL(fast, fast->nbody >= 5);
	/* from now on the slow client never reads */
	for (i = 0; i < 5000; i++) {
		publish("big", data, 7, false);
		if (i % 20 == 0) {
			event_base_loop(F.base, EVLOOP_NONBLOCK);
			client_read(fast);
			sse_stats_get(F.sse, &st);
			if (st.cut_slow > 0)
				break;
		}
	}
	sse_stats_get(F.sse, &st);
	ck_assert_uint_eq(st.cut_slow, 1);
	ck_assert_uint_eq(st.streams, 1);
	/* the fast reader still gets events after the cut */
	publish("big", "after", 7, false);
	RUN_UNTIL(fast, fast->total > 0 &&
				memmem(fast->raw, fast->nraw, "\"after\"", 7));
	client_free(slow);
	client_free(fast);
	fx_stop();
}
END_TEST

static Suite *
sse_suite(void)
{
	Suite *s = suite_create("sse");
	struct {
		const char *name;
		const TTest *t;
	} tests[] = {
		{"test_sse_format_time", test_sse_format_time},
		{"test_sse_format_frame_exact", test_sse_format_frame_exact},
		{"test_sse_format_frame_null_data",
		 test_sse_format_frame_null_data},
		{"test_sse_format_frame_numbers_and_names",
		 test_sse_format_frame_numbers_and_names},
		{"test_sse_format_frame_escaping",
		 test_sse_format_frame_escaping},
		{"test_sse_visible_rules", test_sse_visible_rules},
		{"test_sse_open_stream", test_sse_open_stream},
		{"test_sse_index_routes", test_sse_index_routes},
		{"test_sse_keepalive", test_sse_keepalive},
		{"test_sse_per_ip_limit", test_sse_per_ip_limit},
		{"test_sse_slow_reader_cut", test_sse_slow_reader_cut},
	};
	size_t i;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		TCase *tc = tcase_create(tests[i].name);

		if (tests[i].t == test_sse_slow_reader_cut)
			tcase_add_loop_test(tc, tests[i].t, 0, 2);
		else
			tcase_add_test(tc, tests[i].t);
		tcase_set_timeout(tc, 30);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
