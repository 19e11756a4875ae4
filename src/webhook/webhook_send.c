/* SPDX-License-Identifier: MIT */
/*
 * Webhook sending (webhook.c has the overview): deliveries in memory, the
 * ready queue per webhook drained under the in-flight caps, the request
 * built from the definition and sent with libcurl's multi interface
 * driven by libevent (socket and timer watchers, the address guard, the
 * failing-host skip), and the outcome: the row deleted, rescheduled or
 * marked failed, and the hook-sent/response/error events to the owner.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "bus.h"
#include "conf.h"
#include "events.h"
#include "fmt.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "webhook/hookdef.h"
#include "webhook/policy.h"
#include "webhook/webhook.h"
#include "webhook/webhook_int.h"
#include "xmalloc.h"

#define RESPONSE_MAX 100000 /* response bytes used (cloud-api.md §3.4) */
#define RESPONSE_MIN 256    /* first response buffer */
#define CHUNK 512	    /* bytes per hook-response event */
#define MAX_HOSTS 4096	    /* failing hosts remembered */

/* ---- deliveries ---- */

struct delivery *
webhook_delivery_new(struct webhook *w, const struct hook *h, const char *name,
		     const char *data, size_t data_len, const char *coreid,
		     uint64_t published_ms, uint32_t product_id)
{
	struct delivery *dl = xcalloc(1, sizeof(*dl));

	dl->w = w;
	fmt_strcpy(dl->hook_id, sizeof(dl->hook_id), h->id);
	dl->owner = h->owner;
	dl->name = xstrdup(name);
	if (data != NULL) {
		dl->data = xmalloc(data_len + 1);
		memcpy(dl->data, data, data_len);
		dl->data[data_len] = '\0';
		dl->data_len = data_len;
	}
	fmt_strcpy(dl->coreid, sizeof(dl->coreid), coreid);
	dl->published_ms = published_ms;
	dl->product_id = product_id;
	TAILQ_INSERT_TAIL(&w->all, dl, alink);
	return dl;
}

#define EASY_BODY 1u /* the request has a body */
#define EASY_AUTH 2u /* and HTTP Basic credentials */

static unsigned
easy_shape(const struct delivery *dl)
{
	return (dl->req.body != NULL ? EASY_BODY : 0) |
	       (dl->req.username != NULL ? EASY_AUTH : 0);
}

/* libcurl handles are reused rather than rebuilt: one last used for a
   request like dl's (same plan, method and shape) keeps its options
   (*warm); any other is reset. */
static CURL *
easy_get(struct webhook *w, const struct delivery *dl, bool *warm)
{
	struct easy_idle *x;
	CURL *e;
	size_t i;

	*warm = false;
	for (i = w->neasy; i-- > 0;) {
		x = &w->easy_pool[i];
		if (x->plan == dl->plan && x->shape == easy_shape(dl) &&
		    strcmp(x->method, dl->req.method) == 0) {
			e = x->e;
			hookplan_unref(x->plan);
			*x = w->easy_pool[--w->neasy];
			*warm = true;
			return e;
		}
	}
	if (w->neasy == 0)
		return curl_easy_init();
	x = &w->easy_pool[--w->neasy];
	if (x->plan != NULL) {
		hookplan_unref(x->plan);
		curl_easy_reset(x->e);
	}
	return x->e;
}

/* dl: the delivery whose request ended normally (the handle keeps its
   options for a request like it), or NULL (reset before reuse). */
static void
easy_put(struct webhook *w, CURL *e, const struct delivery *dl)
{
	struct easy_idle *x;

	curl_multi_remove_handle(w->multi, e);
	if (w->neasy == WEBHOOK_EASY_POOL) {
		curl_easy_cleanup(e);
		return;
	}
	x = &w->easy_pool[w->neasy++];
	x->e = e;
	x->plan = NULL;
	if (dl != NULL && dl->plan != NULL) {
		x->plan = hookplan_ref(dl->plan);
		x->shape = easy_shape(dl);
		fmt_strcpy(x->method, sizeof(x->method), dl->req.method);
	} else {
		curl_easy_reset(e);
	}
}

void
webhook_delivery_free(struct delivery *dl)
{
	struct webhook *w = dl->w;
	struct hook *h;

	if (dl->queued && (h = webhook_hook_find(w, dl->hook_id)) != NULL)
		TAILQ_REMOVE(&h->ready, dl, qlink);
	if (dl->inserting)
		TAILQ_REMOVE(&w->ins, dl, ilink);
	if (dl->batch != NULL) {
		size_t i;

		for (i = 0; i < dl->batch->n; i++)
			if (dl->batch->dl[i] == dl)
				dl->batch->dl[i] = NULL;
	}
	if (dl->qid != 0) {
		struct wq *q;

		LIST_FOREACH(q, &w->qs, link)
		if (q->arg == dl) {
			store_cancel(w->d.store, q->qid);
			LIST_REMOVE(q, link);
			w->nqs--;
			free(q);
			break;
		}
	}
	if (dl->easy != NULL)
		easy_put(w, dl->easy, NULL);
	curl_slist_free_all(dl->hdrs);
	hookplan_unref(dl->plan);
	json_decref(dl->ctx);
	hookreq_clear(&dl->req);
	TAILQ_REMOVE(&w->all, dl, alink);
	free(dl->name);
	free(dl->data);
	free(dl->resp);
	free(dl);
}

/* @return the delivery's template context (borrowed) */
static const json_t *
delivery_context(struct delivery *dl)
{
	struct hookdef_event e = {0};

	if (dl->ctx != NULL)
		return dl->ctx;
	e.name = dl->name;
	e.data = dl->data;
	e.data_len = dl->data_len;
	e.coreid = dl->coreid;
	e.published_ms = dl->published_ms;
	e.event_id = (uint64_t)dl->db_id;
	e.product_id = dl->product_id;
	dl->ctx = hookdef_context_some(&e, dl->plan ? hookplan_needs(dl->plan)
						    : HOOKCTX_ALL);
	return dl->ctx;
}

/* Publish data on topic (templated) cut into CHUNK-byte pieces
   "<topic>/<i>"; an empty body is one empty piece. */
static void
publish_chunks(struct webhook *w, const struct delivery *dl, const char *topic,
	       const char *data, size_t len)
{
	char name[BUS_NAME_MAX + 24]; /* a name, '/', 20 digits, NUL */
	size_t off = 0, i = 0, tl = strnlen(topic, BUS_NAME_MAX + 1);

	/* "<topic>/" once, then the piece's number (the name is checked
	   where it is published: a topic too long is refused there) */
	memcpy(name, topic, tl);
	name[tl++] = '/';
	do {
		size_t n = len - off > CHUNK ? CHUNK : len - off;

		fmt_i64(name + tl, (int64_t)i++);
		if (events_publish_internal(w->d.events, NULL, dl->owner, name,
					    (const uint8_t *)data + off, n, 60,
					    true, 0) != 0) {
			log_ctx(LOG_LEVEL_DEBUG, dl->hook_id,
				"event %.80s not published (name too long?)",
				name);
			return;
		}
		off += n;
	} while (off < len);
}

/* The rendered topic field of def, or prefix + the event name when the
   hook has none (what the default "<prefix>{{{PARTICLE_EVENT_NAME}}}"
   renders to, without parsing a template per delivery). */
static char *
topic_render(const struct delivery *dl, const struct hookplan *p,
	     const char *field, const char *prefix, const char *dflt,
	     const json_t *ctx)
{
	if (!json_is_string(json_object_get(hookplan_def(p), field)))
		return xasprintf("%s%s", prefix, dl->name);
	return hookplan_render_field(p, field, dflt, ctx);
}

void
webhook_publish_error(struct webhook *w, struct delivery *dl,
		      const struct hookplan *p, const json_t *ctx,
		      const char *msg)
{
	char *topic = topic_render(dl, p, "errorResponseTopic", "hook-error/",
				   "hook-error/{{{PARTICLE_EVENT_NAME}}}", ctx);

	if (topic != NULL)
		publish_chunks(w, dl, topic, msg, strlen(msg));
	free(topic);
}

static void
publish_response(struct webhook *w, struct delivery *dl,
		 const struct hookplan *p, const json_t *ctx)
{
	const json_t *rt = json_object_get(hookplan_def(p), "responseTemplate");
	char *topic, *body = NULL;
	const char *out = dl->resp ? dl->resp : "";
	size_t len = dl->resp_len;

	topic = topic_render(dl, p, "responseTopic", "hook-response/",
			     "hook-response/{{{PARTICLE_EVENT_NAME}}}", ctx);
	if (topic == NULL)
		return;
	if (json_is_string(rt)) {
		json_t *rctx = json_loadb(out, len, 0, NULL);

		if (json_is_object(rctx)) {
			json_object_update_missing(rctx, (json_t *)ctx);
			body = hookplan_render(p, json_string_value(rt), rctx);
			if (body != NULL) {
				out = body;
				len = strlen(body);
			}
		}
		json_decref(rctx);
	}
	publish_chunks(w, dl, topic, out, len);
	free(body);
	free(topic);
}

static void
hook_sent_event(struct webhook *w, const struct delivery *dl)
{
	char name[BUS_NAME_MAX + 16];

	memcpy(name, "hook-sent/", 10);
	fmt_strcpy(name + 10, sizeof(name) - 10, dl->name);
	(void)events_publish_internal(w->d.events, NULL, dl->owner, name, NULL,
				      0, 60, true, 0);
}

static void pump(struct webhook *w, struct hook *h);
static void pump_owner(struct webhook *w, struct user_count *u);

/* The delivery ends here: the row is deleted or marked failed. The
   hook's queued count drops when that write has committed. */
static void
finish_final(struct webhook *w, struct hook *h, struct delivery *dl, bool ok,
	     int status, const char *err)
{
	char id[24], st[16];
	const char *p[3];

	if (ok) {
		webhook_delete_q(w, h, dl->db_id);
	} else {
		snprintf(id, sizeof(id), "%lld", (long long)dl->db_id);
		snprintf(st, sizeof(st), "%d", status);
		p[0] = id;
		p[1] = st;
		p[2] = err;
		webhook_write_q(
			w, h, true,
			"UPDATE webhook_deliveries SET state = 'failed', "
			"attempts = attempts + 1, last_status = "
			"nullif($2, '0')::int, last_error = $3, locked_by = "
			"NULL, updated_at = now() WHERE id = $1",
			3, p);
		if (h != NULL)
			h->c.given_up++;
	}
}

/* Put the delivery back for a later attempt, or give up. */
static void
finish_retry(struct webhook *w, struct hook *h, struct delivery *dl,
	     bool retryable, int status, const char *err)
{
	long delay =
		retryable ? policy_retry_delay(&w->retry, dl->attempts) : -1;
	char id[24], st[16], ds[24];
	const char *p[4];

	if (delay < 0) {
		finish_final(w, h, dl, false, status, err);
		return;
	}
	snprintf(id, sizeof(id), "%lld", (long long)dl->db_id);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(ds, sizeof(ds), "%ld", delay);
	p[0] = id;
	p[1] = st;
	p[2] = err;
	p[3] = ds;
	webhook_write_q(
		w, h, false,
		"UPDATE webhook_deliveries SET state = 'pending', attempts = "
		"attempts + 1, last_status = nullif($2, '0')::int, "
		"last_error = $3, locked_by = NULL, next_attempt_at = now() + "
		"make_interval(secs => $4::int), updated_at = now() "
		"WHERE id = $1",
		4, p);
	if (h != NULL)
		h->c.retried++;
}

static void
host_record(struct webhook *w, const char *host, bool ok)
{
	struct policy_host *ph = hmap_get(w->hosts, host, strlen(host));

	if (ok) {
		if (ph != NULL) {
			hmap_remove(w->hosts, host, strlen(host));
			free(ph);
		}
		return;
	}
	if (ph == NULL) {
		if (hmap_count(w->hosts) >= MAX_HOSTS)
			return;
		ph = xcalloc(1, sizeof(*ph));
		hmap_put(w->hosts, host, strlen(host), ph, NULL);
	}
	policy_host_record(ph, false, webhook_mono_ms(),
			   (unsigned)w->d.cfg->webhook_host_errors,
			   (uint64_t)w->d.cfg->webhook_host_sleep * 1000);
}

/* A request ended: status 0 means no answer (errtext says why). */
static void
finish(struct delivery *dl, int status, const char *errtext)
{
	struct webhook *w = dl->w;
	struct hook *h = webhook_hook_find(w, dl->hook_id);
	struct user_count *u = webhook_user_get(w, dl->owner);
	bool ok = policy_success(status);
	char msg[512];
	const json_t *ctx;

	if (u->inflight > 0)
		u->inflight--;
	if (h != NULL && h->inflight > 0)
		h->inflight--;
	dl->attempts++;
	host_record(w, dl->host, ok);
	if (h == NULL) { /* deleted meanwhile; its rows went with it */
		webhook_delivery_free(dl);
		pump_owner(w, u);
		return;
	}
	if (dl->plan == NULL)
		dl->plan = hookplan_ref(webhook_hook_plan(h));
	ctx = delivery_context(dl);
	if (ok) {
		h->c.ok++;
		w->stats.ok++;
		publish_response(w, dl, dl->plan, ctx);
		finish_final(w, h, dl, true, status, "");
	} else {
		if (status != 0)
			snprintf(msg, sizeof(msg), "error status %d from %s",
				 status, dl->host);
		else
			snprintf(msg, sizeof(msg), "%.250s (%.255s)",
				 errtext[0] ? errtext : "request failed",
				 dl->host);
		h->c.failed++;
		w->stats.failed++;
		snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
		log_ctx(LOG_LEVEL_INFO, h->id, "delivery %lld attempt %u: %s",
			(long long)dl->db_id, dl->attempts, msg);
		webhook_publish_error(w, dl, dl->plan, ctx, msg);
		finish_retry(w, h, dl, policy_retryable(status), status, msg);
	}
	webhook_delivery_free(dl);
	pump_owner(w, u);
}

/* ---- libcurl on the loop ---- */

static void check_done(struct webhook *w);

/*
 * Socket watchers. libcurl stops watching a kept-alive connection when a
 * request ends (CURL_POLL_REMOVE) and watches it again for the next
 * request on it: deleting and adding the event each time would be two
 * epoll_ctl calls per delivery. The watcher of a connection socket stays
 * added instead ("parked") until libcurl watches that socket again (no
 * call when the flags are the same), until it fires (the peer closed or
 * sent something unasked: it is deleted then, so it cannot spin), or
 * until libcurl closes the socket (webhook_curl_close_cb, before the
 * close, so that the descriptor never names another socket while its
 * watcher is added). Only sockets opened by opensocket_cb, whose close
 * goes through that callback, are parked (w->fds); any other is deleted
 * as libcurl asks.
 */

static char fd_open; /* w->fds value: open, no parked watcher */

/* A watcher leaves the added list for the idle one (or is freed). */
static void
sockev_idle(struct webhook *w, struct sockev *se)
{
	event_del(se->ev);
	LIST_REMOVE(se, link);
	if (w->nsock_idle < WEBHOOK_EASY_POOL) {
		LIST_INSERT_HEAD(&w->socks_idle, se, link);
		w->nsock_idle++;
	} else {
		event_free(se->ev);
		free(se);
	}
}

static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sockev *se = arg;
	struct webhook *w = se->w;
	int running, action = 0;

	if (se->parked) { /* the peer spoke between requests */
		curl_socket_t s = (curl_socket_t)fd;

		hmap_put(w->fds, &s, sizeof(s), &fd_open, NULL);
		sockev_idle(w, se);
		return;
	}
	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(w->multi, fd, action, &running);
	check_done(w);
}

int
webhook_curl_close_cb(void *clientp, curl_socket_t s)
{
	struct webhook *w = clientp;
	struct sockev *se = hmap_remove(w->fds, &s, sizeof(s));

	if (se != NULL && se != (void *)&fd_open)
		sockev_idle(w, se);
	return close(s);
}

int
webhook_curl_sock_cb(CURL *e, curl_socket_t s, int what, void *userp,
		     void *socketp)
{
	struct webhook *w = userp;
	struct sockev *se = socketp;
	short kind = EV_PERSIST;
	void *v;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (se != NULL) {
			curl_multi_assign(w->multi, s, NULL);
			if (hmap_get(w->fds, &s, sizeof(s)) == &fd_open) {
				se->parked = true;
				hmap_put(w->fds, &s, sizeof(s), se, NULL);
			} else {
				sockev_idle(w, se);
			}
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (se == NULL && (v = hmap_get(w->fds, &s, sizeof(s))) != NULL &&
	    v != (void *)&fd_open) {
		se = v; /* parked: added with its last flags */
		se->parked = false;
		hmap_put(w->fds, &s, sizeof(s), &fd_open, NULL);
		curl_multi_assign(w->multi, s, se);
		if (se->kind == kind)
			return 0;
		event_del(se->ev);
	} else if (se == NULL) {
		if ((se = LIST_FIRST(&w->socks_idle)) != NULL) {
			LIST_REMOVE(se, link);
			w->nsock_idle--;
		} else {
			se = xcalloc(1, sizeof(*se));
			se->ev = event_new(w->d.base, -1, 0, sock_event_cb, se);
		}
		se->w = w;
		se->parked = false;
		LIST_INSERT_HEAD(&w->socks, se, link);
		curl_multi_assign(w->multi, s, se);
	} else {
		if (se->kind == kind)
			return 0;
		event_del(se->ev);
	}
	se->fd = s;
	se->kind = kind;
	event_assign(se->ev, w->d.base, s, kind, sock_event_cb, se);
	event_add(se->ev, NULL);
	return 0;
}

void
webhook_curl_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *w = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(w);
}

int
webhook_curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct webhook *w = userp;
	struct timeval tv;

	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(w->curl_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(w->curl_timer, &tv);
	return 0;
}

static void
check_done(struct webhook *w)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
		struct delivery *dl = NULL;
		long code = 0;
		char err[CURL_ERROR_SIZE + 64];

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &dl);
		if (dl == NULL)
			continue;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE,
					  &code);
		else if (dl->denied)
			snprintf(err, sizeof(err),
				 "address not allowed for webhooks");
		else
			snprintf(err, sizeof(err), "%s",
				 dl->errbuf[0]
					 ? dl->errbuf
					 : curl_easy_strerror(m->data.result));
		if (code == 0 && m->data.result == CURLE_OK)
			snprintf(err, sizeof(err), "no HTTP status");
		if (dl->denied)
			w->stats.denied++;
		easy_put(w, dl->easy, dl);
		dl->easy = NULL;
		finish(dl, (int)code, code != 0 ? "" : err);
	}
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct delivery *dl = arg;
	size_t n = size * nmemb, take;

	if (dl->resp_len >= RESPONSE_MAX)
		return n;
	take = n > RESPONSE_MAX - dl->resp_len ? RESPONSE_MAX - dl->resp_len
					       : n;
	if (dl->resp_len + take + 1 > dl->resp_cap) {
		/* grown as the body arrives: most answers are a few bytes,
		   and a 100 KB buffer per delivery costs more than the
		   request */
		size_t cap = dl->resp_cap ? dl->resp_cap : RESPONSE_MIN;

		while (cap < dl->resp_len + take + 1)
			cap *= 2;
		if (cap > RESPONSE_MAX + 1)
			cap = RESPONSE_MAX + 1;
		dl->resp = xreallocarray(dl->resp, cap, 1);
		dl->resp_cap = cap;
	}
	memcpy(dl->resp + dl->resp_len, ptr, take);
	dl->resp_len += take;
	dl->resp[dl->resp_len] = '\0';
	return n;
}

/* The address guard: every connection goes through here. */
static curl_socket_t
opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct delivery *dl = arg;

	(void)purpose;
	curl_socket_t s;

	if (!policy_addr_allowed(&a->addr, &dl->w->allow)) {
		dl->denied = true;
		return CURL_SOCKET_BAD;
	}
	s = socket(a->family, a->socktype, a->protocol);
	if (s != CURL_SOCKET_BAD &&
	    hmap_put(dl->w->fds, &s, sizeof(s), &fd_open, NULL) != 0) {
		close(s);
		return CURL_SOCKET_BAD;
	}
	return s;
}

/* host[:port] of a URL, lower case. */
static void
url_host(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://"), *at, *end;
	size_t n, i;

	p = p ? p + 3 : url;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (at != NULL)
		p = at + 1;
	n = (size_t)(end - p);
	if (n >= outlen)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] =
			(char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
	out[n] = '\0';
}

static void
start_skipped(struct webhook *w, struct hook *h, struct delivery *dl,
	      const json_t *ctx)
{
	char msg[400];

	snprintf(msg, sizeof(msg),
		 "Sleeping: too many errors from %s; the delivery will be "
		 "retried",
		 dl->host);
	h->c.skipped++;
	w->stats.skipped++;
	snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
	webhook_publish_error(w, dl, dl->plan, ctx, msg);
	dl->attempts++;
	finish_retry(w, h, dl, true, 0, msg);
	webhook_delivery_free(dl);
}

static void
slist_free(void *l)
{
	curl_slist_free_all(l);
}

/* Send one delivery (it has left the ready queue). */
static void
start(struct webhook *w, struct hook *h, struct delivery *dl)
{
	const struct conf *cfg = w->d.cfg;
	char err[HOOKDEF_ERRLEN];
	const json_t *ctx;
	struct curl_slist *hdrs;
	bool verify, warm;
	size_t i;
	int r;

	if (dl->plan == NULL)
		dl->plan = hookplan_ref(webhook_hook_plan(h));
	ctx = delivery_context(dl);
	r = hookreq_build_plan(dl->plan, ctx, &dl->req, err, sizeof(err));
	if (r != 0) {
		h->c.failed++;
		w->stats.failed++;
		snprintf(h->last_error, sizeof(h->last_error), "%s", err);
		webhook_publish_error(w, dl, dl->plan, ctx, err);
		finish_final(w, h, dl, false, 0, err);
		webhook_delivery_free(dl);
		goto out;
	}
	url_host(dl->req.url, dl->host, sizeof(dl->host));
	{
		struct policy_host *ph =
			hmap_get(w->hosts, dl->host, strlen(dl->host));

		if (ph != NULL && policy_host_skipping(ph, webhook_mono_ms())) {
			start_skipped(w, h, dl, ctx);
			goto out;
		}
	}
	dl->easy = easy_get(w, dl, &warm);
	if (dl->easy == NULL) {
		finish_retry(w, h, dl, true, 0, "could not start a request");
		webhook_delivery_free(dl);
		goto out;
	}
	/* the same header lines for every request of a plan without header
	   tags: its list is built once and kept with the plan (a delivery
	   holds the plan until its transfer is removed) */
	hdrs = hookplan_headers_static(dl->plan) ? hookplan_user(dl->plan)
						 : NULL;
	if (hdrs == NULL) {
		for (i = 0; i < dl->req.nheaders; i++)
			hdrs = curl_slist_append(hdrs, dl->req.headers[i]);
		/* no Expect: 100-continue round trip, no default Accept */
		hdrs = curl_slist_append(hdrs, "Expect:");
		if (hookplan_headers_static(dl->plan))
			hookplan_set_user(dl->plan, hdrs, slist_free);
		else
			dl->hdrs = hdrs;
	}
	if (!warm) { /* what a handle keeps for requests like this one */
		verify = !json_is_false(json_object_get(hookplan_def(dl->plan),
							"rejectUnauthorized"));
		curl_easy_setopt(dl->easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(dl->easy, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(dl->easy, CURLOPT_PROXY, "");
		curl_easy_setopt(dl->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(dl->easy, CURLOPT_TIMEOUT_MS,
				 (long)cfg->webhook_timeout * 1000);
		curl_easy_setopt(dl->easy, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)cfg->webhook_timeout * 1000);
		curl_easy_setopt(dl->easy, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(dl->easy, CURLOPT_OPENSOCKETFUNCTION,
				 opensocket_cb);
		curl_easy_setopt(dl->easy, CURLOPT_CLOSESOCKETFUNCTION,
				 webhook_curl_close_cb);
		curl_easy_setopt(dl->easy, CURLOPT_CLOSESOCKETDATA, w);
		curl_easy_setopt(dl->easy, CURLOPT_SSL_VERIFYPEER,
				 verify ? 1L : 0L);
		curl_easy_setopt(dl->easy, CURLOPT_SSL_VERIFYHOST,
				 verify ? 2L : 0L);
		if (cfg->webhook_ca_file[0] != '\0')
			curl_easy_setopt(dl->easy, CURLOPT_CAINFO,
					 cfg->webhook_ca_file);
		curl_easy_setopt(dl->easy, CURLOPT_CUSTOMREQUEST,
				 dl->req.method);
		if (strcmp(dl->req.method, "GET") == 0)
			curl_easy_setopt(dl->easy, CURLOPT_HTTPGET, 1L);
		if (dl->req.username != NULL)
			curl_easy_setopt(dl->easy, CURLOPT_HTTPAUTH,
					 (long)CURLAUTH_BASIC);
	}
	curl_easy_setopt(dl->easy, CURLOPT_URL, dl->req.url);
	curl_easy_setopt(dl->easy, CURLOPT_PRIVATE, dl);
	curl_easy_setopt(dl->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(dl->easy, CURLOPT_ERRORBUFFER, dl->errbuf);
	curl_easy_setopt(dl->easy, CURLOPT_WRITEDATA, dl);
	curl_easy_setopt(dl->easy, CURLOPT_OPENSOCKETDATA, dl);
	if (dl->req.body != NULL) {
		curl_easy_setopt(dl->easy, CURLOPT_POSTFIELDS, dl->req.body);
		curl_easy_setopt(dl->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)dl->req.body_len);
	}
	if (dl->req.username != NULL) {
		curl_easy_setopt(dl->easy, CURLOPT_USERNAME, dl->req.username);
		curl_easy_setopt(dl->easy, CURLOPT_PASSWORD, dl->req.password);
	}
	if (curl_multi_add_handle(w->multi, dl->easy) != CURLM_OK) {
		finish_retry(w, h, dl, true, 0, "could not start a request");
		webhook_delivery_free(dl);
		goto out;
	}
	h->inflight++;
	h->user->inflight++;
	h->c.sent++;
	w->stats.sent++;
	hook_sent_event(w, dl);
out:
	return;
}

/* Send what the caps allow. A hook left with ready deliveries waits on
   its owner's list for a request of that owner to end. */
static void
pump(struct webhook *w, struct hook *h)
{
	struct user_count *u = h->user;
	struct delivery *dl;

	while ((dl = TAILQ_FIRST(&h->ready)) != NULL &&
	       h->inflight < (size_t)w->d.cfg->webhook_max_inflight &&
	       u->inflight < (unsigned)w->d.cfg->webhook_user_inflight) {
		TAILQ_REMOVE(&h->ready, dl, qlink);
		dl->queued = false;
		start(w, h, dl);
	}
	if (!TAILQ_EMPTY(&h->ready) && !h->waiting) {
		TAILQ_INSERT_TAIL(&u->waiting, h, wlink);
		h->waiting = true;
	} else if (TAILQ_EMPTY(&h->ready) && h->waiting) {
		TAILQ_REMOVE(&u->waiting, h, wlink);
		h->waiting = false;
	}
}

/* A request of u's owner ended: its waiting hooks, first come first,
   until the owner's cap is reached again (one hook, most often). */
static void
pump_owner(struct webhook *w, struct user_count *u)
{
	struct hook *h, *next;

	for (h = TAILQ_FIRST(&u->waiting);
	     h != NULL &&
	     u->inflight < (unsigned)w->d.cfg->webhook_user_inflight;
	     h = next) {
		next = TAILQ_NEXT(h, wlink);
		pump(w, h);
	}
}

void
webhook_enqueue(struct webhook *w, struct hook *h, struct delivery *dl)
{
	TAILQ_INSERT_TAIL(&h->ready, dl, qlink);
	dl->queued = true;
	pump(w, h);
}
