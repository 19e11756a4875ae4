/* SPDX-License-Identifier: MIT */
/*
 * SSE streams. A stream of every user's public events (scope all)
 * subscribes to the bus with its prefix. The others can only show events
 * of one owner, device or product: they sit in an index under that key,
 * behind one bus subscription of the manager's, so an event costs a
 * lookup per key it has and a check per stream of those keys, not a
 * callback for every stream of every user on the server. The first
 * stream that shows an event formats the frame and caches it (by event
 * seq); streams copy it (up to SSE_COPY_MAX) or queue the same bytes by
 * reference (larger ones). Streams sit
 * in a list ordered by last write, so one timer armed at the oldest
 * stream's deadline finds exactly the streams that need a keep-alive.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "api/http.h"
#include "bus.h"
#include "err.h"
#include "fmt.h"
#include "hmap.h"
#include "log.h"
#include "sse.h"
#include "xmalloc.h"

#define SSE_KEEPALIVE_MS 9000
#define SSE_MAX_PER_IP 100
#define SSE_PREAMBLE ":ok\n\n"
#define SSE_KEEPALIVE "\n"
/* Frames up to this size are copied into each stream's buffer (a chain
   there holds several: no allocation per event); larger ones are shared
   by reference. */
#define SSE_COPY_MAX 2048

/* A large formatted frame shared by every stream that queues it. */
struct sse_frame {
	unsigned refs; /* the cache's plus one per queued write */
	uint64_t seq;  /* event it was made from */
	size_t len;    /* bytes in buf */
	char buf[];    /* the frame */
};

struct sse_stream {
	struct sse *s;		     /* owner */
	uint64_t id;		     /* HTTP request id */
	struct bus_sub *sub;	     /* its bus subscription */
	struct sse_filter f;	     /* visibility */
	uint64_t last_write;	     /* monotonic ms */
	uint8_t ip[16];		     /* client address (v4-mapped) */
	TAILQ_ENTRY(sse_stream) lru; /* by last_write, oldest first */
};

struct ip_count {
	uint8_t ip[16];
	unsigned n;
};

/* Growable output buffer for the formatter. */
struct obuf {
	char *p;
	size_t len, cap;
};

struct sse {
	struct event_base *base;      /* borrowed */
	struct http *http;	      /* borrowed */
	struct bus *bus;	      /* borrowed */
	struct sse_opts opts;	      /* tunables */
	struct hmap *streams;	      /* request id -> sse_stream */
	struct hmap *ips;	      /* ip -> ip_count */
	TAILQ_HEAD(, sse_stream) lru; /* oldest write first */
	struct event *timer;	      /* keep-alive timer */
	struct obuf fmt[2];	      /* last frame: [0] user, [1] product */
	uint64_t fmt_seq[2];	      /* the event of fmt[i] (len > 0) */
	struct sse_frame *cache[2];   /* fmt[i] shared, if > SSE_COPY_MAX */
	struct sse_stats stats;	      /* counters */
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	/* keep-alive bookkeeping in seconds: the coarse clock (the last
	   tick, no TSC read) is enough, and one is read per event */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- pure parts ---- */

bool
sse_visible(const struct sse_filter *f, const struct bus_event *ev)
{
	bool own = ev->owner_id != 0 && ev->owner_id == f->user_id;

	if (ev->flags & BUS_EV_HIDDEN)
		return false;
	switch (f->scope) {
	case SSE_SCOPE_ALL:
		return !ev->is_private || own;
	case SSE_SCOPE_MINE:
		return own;
	case SSE_SCOPE_DEVICE:
		if (ev->source != BUS_SRC_DEVICE ||
		    strcmp(ev->coreid, f->device_id) != 0)
			return false;
		return !ev->is_private || own || f->see_private;
	case SSE_SCOPE_PRODUCT:
		return f->product_id != 0 && ev->product_id == f->product_id;
	}
	return false;
}

/*
 * Every event is stamped by fmt_time_ms(), no gmtime_r or snprintf per
 * event (they showed in perf on bench/run B3). A year past 9999 is
 * written modulo 10000.
 */
void
sse_format_time(uint64_t ms, char buf[25])
{
	fmt_time_ms(ms, buf);
}

static void
ob_add(struct obuf *o, const void *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		while (o->len + n + 1 > o->cap)
			o->cap = o->cap ? o->cap * 2 : 256;
		o->p = realloc(o->p, o->cap);
		if (o->p == NULL) {
			log_err("sse: out of memory");
			abort();
		}
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void
ob_str(struct obuf *o, const char *s)
{
	ob_add(o, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* Append s[0..n) as a JSON string literal. */
static void
ob_json_str(struct obuf *o, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run = 0, k;
	char esc[7];

	ob_add(o, "\"", 1);
	while (i < n) {
		uint8_t c = s[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			run++;
			i++;
			continue;
		}
		ob_add(o, s + i - run, run);
		run = 0;
		if (c >= 0x80) {
			if ((k = utf8_seq(s + i, n - i)) == 0) {
				ob_add(o, "\\ufffd", 6);
				i++;
			} else {
				ob_add(o, s + i, k);
				i += k;
			}
			continue;
		}
		switch (c) {
		case '"':
			ob_add(o, "\\\"", 2);
			break;
		case '\\':
			ob_add(o, "\\\\", 2);
			break;
		case '\n':
			ob_add(o, "\\n", 2);
			break;
		case '\r':
			ob_add(o, "\\r", 2);
			break;
		case '\t':
			ob_add(o, "\\t", 2);
			break;
		case '\b':
			ob_add(o, "\\b", 2);
			break;
		case '\f':
			ob_add(o, "\\f", 2);
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			ob_add(o, esc, 6);
			break;
		}
		i++;
	}
	ob_add(o, s + i - run, run);
	ob_add(o, "\"", 1);
}

/* Format ev's frame into o (emptied first). */
static void
frame_format(struct obuf *o, const struct bus_event *ev, bool product)
{
	char num[48], when[25];
	const char *p;
	size_t want;

	/* one allocation for the usual frame: the fixed text is < 160 bytes */
	want = 192 + strlen(ev->name) + ev->data_len + ev->data_len / 8;
	if (o->cap < want) {
		free(o->p);
		o->cap = want;
		o->p = xmalloc(o->cap);
	}
	o->len = 0;
	ob_str(o, "event: ");
	/* names are checked where events enter; never let one break a line */
	for (p = ev->name; *p != '\0';) {
		size_t run = 0;

		while (p[run] != '\0' && (uint8_t)p[run] >= 0x20 &&
		       p[run] != 0x7f)
			run++;
		ob_add(o, p, run); /* in runs: no call per byte */
		p += run;
		if (*p != '\0') {
			ob_add(o, "_", 1);
			p++;
		}
	}
	ob_str(o, "\ndata: {\"data\":");
	if (ev->data_len == 0)
		ob_str(o, "null");
	else
		ob_json_str(o, ev->data, ev->data_len);
	/* no printf per event: it showed in perf on bench/run B3 */
	ob_str(o, ",\"ttl\":");
	ob_add(o, num, fmt_u64(num, ev->ttl));
	ob_str(o, ",\"published_at\":\"");
	sse_format_time(ev->published_ms, when);
	ob_str(o, when);
	ob_str(o, "\",\"coreid\":");
	ob_json_str(o, (const uint8_t *)ev->coreid, strlen(ev->coreid));
	if (product) {
		ob_str(o, ",\"userid\":\"");
		if (ev->owner_id != 0)
			ob_add(o, num, fmt_i64(num, ev->owner_id));
		ob_str(o, ev->is_private ? "\",\"public\":false"
					 : "\",\"public\":true");
		ob_str(o, ",\"productID\":");
		ob_add(o, num, fmt_u64(num, ev->product_id));
	}
	ob_str(o, "}\n\n");
}

size_t
sse_format_frame(const struct bus_event *ev, bool product, char **out)
{
	struct obuf o = {NULL, 0, 0};

	frame_format(&o, ev, product);
	*out = o.p;
	return o.len;
}

/* ---- frames ---- */

static void
frame_unref(struct sse_frame *fr)
{
	if (fr != NULL && --fr->refs == 0)
		free(fr);
}

static void
frame_unref_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	frame_unref(arg);
}

/* The frame for ev in the wanted format, formatted once per event. */
static const struct obuf *
frame_text(struct sse *s, const struct bus_event *ev, bool product)
{
	int i = product ? 1 : 0;

	if (s->fmt[i].len == 0 || s->fmt_seq[i] != ev->seq) {
		frame_format(&s->fmt[i], ev, product);
		s->fmt_seq[i] = ev->seq;
		s->stats.frames++;
	}
	return &s->fmt[i];
}

/* frame_text()'s frame as a shared copy (one allocation per event). */
static struct sse_frame *
frame_shared(struct sse *s, const struct bus_event *ev, bool product)
{
	int i = product ? 1 : 0;
	struct sse_frame *fr = s->cache[i];
	const struct obuf *o = &s->fmt[i];

	if (fr != NULL && fr->seq == ev->seq)
		return fr;
	frame_unref(fr);
	fr = xmalloc(sizeof(*fr) + o->len);
	fr->refs = 1; /* the cache's */
	fr->seq = ev->seq;
	fr->len = o->len;
	memcpy(fr->buf, o->p, fr->len);
	s->cache[i] = fr;
	return fr;
}

/* ---- streams ---- */

static void
ip_key(const char *text, uint8_t out[16])
{
	struct in_addr a4;

	memset(out, 0, 16);
	if (text == NULL)
		return;
	if (inet_pton(AF_INET6, text, out) == 1)
		return;
	if (inet_pton(AF_INET, text, &a4) == 1) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
	}
}

static void
timer_arm(struct sse *s)
{
	struct sse_stream *st = TAILQ_FIRST(&s->lru);
	uint64_t now, due;
	struct timeval tv;

	if (st == NULL) {
		evtimer_del(s->timer);
		return;
	}
	now = mono_ms();
	due = st->last_write + s->opts.keepalive_ms;
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)((due % 1000) * 1000);
	evtimer_add(s->timer, &tv);
}

static void
touch(struct sse *s, struct sse_stream *st)
{
	st->last_write = mono_ms();
	TAILQ_REMOVE(&s->lru, st, lru);
	TAILQ_INSERT_TAIL(&s->lru, st, lru);
}

/* Forget a stream (the HTTP request is ending or has ended). */
static void
stream_drop(struct sse *s, struct sse_stream *st)
{
	struct ip_count *ic;

	hmap_remove(s->streams, &st->id, sizeof(st->id));
	TAILQ_REMOVE(&s->lru, st, lru);
	bus_unsubscribe(s->bus, st->sub);
	if ((ic = hmap_get(s->ips, st->ip, sizeof(st->ip))) != NULL &&
	    --ic->n == 0) {
		hmap_remove(s->ips, st->ip, sizeof(st->ip));
		free(ic);
	}
	free(st);
	s->stats.streams--;
}

/* End a stream from our side (slow reader, shutdown). */
static void
stream_end(struct sse *s, struct sse_stream *st)
{
	uint64_t id = st->id;
	struct http_request *req = http_request_lookup(s->http, id);

	stream_drop(s, st);
	if (req != NULL)
		http_request_on_close(req, NULL, NULL);
	http_stream_end(s->http, id);
}

static void
stream_cut(struct sse *s, struct sse_stream *st, size_t queued)
{
	log_notice("sse: req %llu fell behind (%zu bytes queued); closing "
		   "the stream",
		   (unsigned long long)st->id, queued);
	s->stats.cut_slow++;
	stream_end(s, st);
}

static void
on_event(const struct bus_event *ev, void *arg)
{
	struct sse_stream *st = arg;
	struct sse *s = st->s;
	const struct obuf *o;
	struct sse_frame *fr;
	size_t queued;
	bool product;
	int r;

	if (!sse_visible(&st->f, ev))
		return;
	product = st->f.scope == SSE_SCOPE_PRODUCT;
	o = frame_text(s, ev, product);
	if (s->opts.max_buffered != 0) {
		queued = http_stream_buffered(s->http, st->id);
		if (queued + o->len > s->opts.max_buffered) {
			stream_cut(s, st, queued);
			return;
		}
	}
	if (o->len <= SSE_COPY_MAX) {
		r = http_stream_write(s->http, st->id, o->p, o->len);
	} else {
		fr = frame_shared(s, ev, product);
		fr->refs++;
		r = http_stream_write_ref(s->http, st->id, fr->buf, fr->len,
					  frame_unref_cb, fr);
		if (r != 0)
			fr->refs--;
	}
	if (r != 0) {
		if (r == CINDER_ERR_BUSY)
			stream_cut(s, st,
				   http_stream_buffered(s->http, st->id));
		else
			stream_drop(s, st); /* gone: the close hook follows */
		return;
	}
	s->stats.writes++;
	touch(s, st);
}

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sse *s = arg;
	struct sse_stream *st;
	uint64_t now = mono_ms();
	int r;

	(void)fd;
	(void)what;
	while ((st = TAILQ_FIRST(&s->lru)) != NULL &&
	       st->last_write + s->opts.keepalive_ms <= now) {
		r = http_stream_write(s->http, st->id, SSE_KEEPALIVE,
				      sizeof(SSE_KEEPALIVE) - 1);
		if (r == CINDER_ERR_BUSY) {
			stream_cut(s, st,
				   http_stream_buffered(s->http, st->id));
			continue;
		}
		if (r != 0) {
			stream_drop(s, st);
			continue;
		}
		s->stats.keepalives++;
		touch(s, st);
		st->last_write = now;
	}
	timer_arm(s);
}

static void
on_close(uint64_t id, bool answered, void *arg)
{
	struct sse *s = arg;
	struct sse_stream *st = hmap_get(s->streams, &id, sizeof(id));

	(void)answered;
	if (st != NULL) {
		log_debug("sse: req %llu closed", (unsigned long long)id);
		stream_drop(s, st);
		timer_arm(s);
	}
}

/*
 * A stream of one owner, device or product can only show that key's
 * events, so it is bound to the key on the bus: an event of another user
 * costs it nothing (a stream with no prefix at the bus's root ran for
 * every event of every user). Public streams go by prefix alone.
 */
static struct bus_sub *
stream_subscribe(struct sse *s, struct sse_stream *st, const char *prefix)
{
	switch (st->f.scope) {
	case SSE_SCOPE_MINE:
		return bus_subscribe_owner(s->bus, st->f.user_id, prefix,
					   on_event, st);
	case SSE_SCOPE_DEVICE:
		return bus_subscribe_device(s->bus, st->f.device_id, prefix,
					    on_event, st);
	case SSE_SCOPE_PRODUCT:
		return bus_subscribe_product(s->bus, st->f.product_id, prefix,
					     on_event, st);
	case SSE_SCOPE_ALL:
		break;
	}
	return bus_subscribe(s->bus, prefix, on_event, st);
}

int
sse_open(struct sse *s, struct http_request *req, const struct sse_filter *f,
	 const char *prefix)
{
	struct sse_stream *st;
	struct ip_count *ic;
	uint8_t ip[16];
	int r;

	ip_key(http_request_client_ip(req), ip);
	ic = hmap_get(s->ips, ip, sizeof(ip));
	if (ic != NULL && ic->n >= s->opts.max_per_ip) {
		s->stats.refused_ip++;
		log_ctx(LOG_LEVEL_INFO, http_request_log_ctx(req),
			"sse: %s has %u streams open; refused",
			http_request_client_ip(req), ic->n);
		return CINDER_ERR_BUSY;
	}
	http_response_header_add(req, "Connection", "keep-alive");
	if ((r = http_stream_start(req, 200, "text/event-stream")) != 0)
		return r;
	st = xcalloc(1, sizeof(*st));
	st->s = s;
	st->id = http_request_id(req);
	st->f = *f;
	memcpy(st->ip, ip, sizeof(ip));
	if (ic == NULL) {
		ic = xcalloc(1, sizeof(*ic));
		memcpy(ic->ip, ip, sizeof(ip));
		hmap_put(s->ips, ic->ip, sizeof(ic->ip), ic, NULL);
	}
	ic->n++;
	hmap_put(s->streams, &st->id, sizeof(st->id), st, NULL);
	TAILQ_INSERT_TAIL(&s->lru, st, lru);
	st->last_write = mono_ms();
	s->stats.streams++;
	s->stats.opened++;
	http_request_on_close(req, on_close, s);
	st->sub = stream_subscribe(s, st, prefix != NULL ? prefix : "");
	http_stream_write(s->http, st->id, SSE_PREAMBLE,
			  sizeof(SSE_PREAMBLE) - 1);
	if (TAILQ_FIRST(&s->lru) == st)
		timer_arm(s);
	log_ctx(LOG_LEVEL_DEBUG, http_request_log_ctx(req),
		"sse: stream open (scope %d, prefix \"%s\")", (int)f->scope,
		prefix != NULL ? prefix : "");
	return 0;
}

struct sse *
sse_new(struct event_base *base, struct http *h, struct bus *b,
	const struct sse_opts *opts)
{
	struct sse *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->http = h;
	s->bus = b;
	if (opts != NULL)
		s->opts = *opts;
	if (s->opts.keepalive_ms == 0)
		s->opts.keepalive_ms = SSE_KEEPALIVE_MS;
	if (s->opts.max_per_ip == 0)
		s->opts.max_per_ip = SSE_MAX_PER_IP;
	s->streams = hmap_new();
	s->ips = hmap_new();
	TAILQ_INIT(&s->lru);
	s->timer = evtimer_new(base, keepalive_cb, s);
	if (s->timer == NULL) {
		log_err("sse: could not create the keep-alive timer");
		abort();
	}
	return s;
}

void
sse_free(struct sse *s)
{
	struct sse_stream *st;

	if (s == NULL)
		return;
	while ((st = TAILQ_FIRST(&s->lru)) != NULL)
		stream_end(s, st);
	event_free(s->timer);
	frame_unref(s->cache[0]);
	frame_unref(s->cache[1]);
	free(s->fmt[0].p);
	free(s->fmt[1].p);
	hmap_free(s->streams);
	hmap_free(s->ips); /* empty: every stream gave its count back */
	free(s);
}

void
sse_stats_get(const struct sse *s, struct sse_stats *out)
{
	*out = s->stats;
}
