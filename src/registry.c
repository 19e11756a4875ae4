/* SPDX-License-Identifier: MIT */
/*
 * Device registry and connection driver.
 *
 * One struct devconn per TCP connection walks through the handshake of
 * protocol.md §2.3:
 *   NONCE    40 random bytes written; wait for the 256-byte block
 *   STEP2    RSA decrypt of the block on the crypto pool
 *   KEY      device public key looked up (cache, then PostgreSQL)
 *   STEP3    RSA encrypt + sign on the crypto pool; 384 bytes written
 *   FRAMED   2-byte length + AES frames, decrypted and fed to a session
 * Anything a device does wrong closes that connection only. Completions of
 * pool jobs and store queries carry the connection id, never a pointer:
 * a completion for a connection that has gone finds nothing (style O4).
 * A connection is never freed inside its own call stack; it is marked
 * closing and reaped from a deferred event (style O5).
 * Loop thread only, except the work functions of pool jobs, which touch
 * only their job.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#include "conf.h"
#include "crypto.h"
#include "cryptopool.h"
#include "err.h"
#include "evprio.h"
#include "fmt.h"
#include "hmap.h"
#include "log.h"
#include "netaddr.h"
#include "registry.h"
#include "registry_int.h"
#include "session.h"
#include "store.h"
#include "tmpmem.h"
#include "xmalloc.h"

uint64_t
registry_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct devconn *
registry_conn_get(struct registry *reg, uint64_t id)
{
	struct devconn *c = hmap_get_u64(reg->conns, id);

	return (c != NULL && c->state != DC_CLOSING) ? c : NULL;
}

/* ------------------------------------------------------------------ */
/* Listener pacing: at most max_handshakes in progress.                */

/*
 * Listen again unless something still holds the listener off: the
 * handshake cap (paused), a stop, a batch's hold (accept_held) or a
 * shortage of descriptors (the retry timer is pending, accept_error_cb).
 */
static void
accept_enable(struct registry *reg)
{
	if (!reg->paused && !reg->stopping && !reg->accept_held &&
	    !evtimer_pending(reg->accept_retry_ev, NULL))
		evconnlistener_enable(reg->listener);
}

void
registry_handshake_end(struct devconn *c, bool ok)
{
	struct registry *reg = c->reg;

	if (!c->in_handshake)
		return;
	c->in_handshake = false;
	reg->stats.handshakes_active--;
	if (ok)
		reg->stats.handshakes_ok++;
	else
		reg->stats.handshakes_failed++;
	if (ok)
		registry_io_settle(c);
	if (reg->paused && !reg->stopping &&
	    reg->stats.handshakes_active < (uint64_t)reg->cfg->max_handshakes) {
		reg->paused = false;
		accept_enable(reg);
	}
	registry_trim_note_handshake(reg);
}

/* ------------------------------------------------------------------ */
/* Presence and store writes.                                         */

/* Labels for registry_store_write_done's log line (mutable: store args are void
 * *). */
static char what_heard[] = "last_heard";
static char what_goodbye[] = "device goodbye";

void
registry_store_write_done(int r, const struct store_result *res, void *arg)
{
	const char *what = arg;

	if (r != 0)
		log_warn("could not record %s: %s%s%s", what, err_str(r),
			 res ? ": " : "", res ? store_result_message(res) : "");
}

static void
presence_online(struct devconn *c)
{
	struct registry *reg = c->reg;
	const struct session_hello *h = registry_conn_hello(c);
	char ip[INET6_ADDRSTRLEN];
	struct registry_presence p = {
		.device_id = c->idhex,
		.owner_id = c->owner_id,
		.online = true,
		.ip = registry_conn_ip(c, ip),
		.hello_product = h->product_id != 0xffff ? h->product_id : 0};

	/* the key lookup read the row: it answers if the product is
	   assigned, or comes from the same Hello product as stored */
	if (c->info_known &&
	    (c->info_assigned || c->info_hello == p.hello_product)) {
		p.info_known = true;
		p.forced = c->info_forced;
		p.product_id = c->info_product;
	}

	/* online, node, the Hello's columns and OTA limits: batched */
	registry_pres_online(c, h);
	c->online = true;
	reg->stats.sessions_ready++;
	if (reg->presence_cb != NULL)
		reg->presence_cb(&p, reg->presence_arg);
}

static void
presence_offline(struct devconn *c)
{
	struct registry *reg = c->reg;
	char ip[INET6_ADDRSTRLEN];
	struct registry_presence p = {.device_id = c->idhex,
				      .owner_id = c->owner_id,
				      .online = false,
				      .ip = registry_conn_ip(c, ip)};

	if (!c->online)
		return;
	c->online = false;
	reg->stats.sessions_ready--;
	/* Batched; only marks offline where no newer session (maybe on
	   another node) took the device over in the meantime. */
	registry_pres_offline(c);
	if (reg->presence_cb != NULL)
		reg->presence_cb(&p, reg->presence_arg);
}

struct flush_ctx {
	struct registry *reg;
	char buf[1 + HEARD_BATCH_IDS * (DEVICE_ID_HEX + 1) + 1]; /* "{id,..}" */
	size_t len;	   /* bytes used */
	size_t n;	   /* ids in buf */
	size_t statements; /* UPDATEs queued */
};

static void
flush_send(struct flush_ctx *f)
{
	const char *params[1] = {f->buf};

	if (f->n == 0)
		return;
	f->buf[f->len++] = '}';
	f->buf[f->len] = '\0';
	store_query(f->reg->store, STORE_Q_WRITE,
		    "UPDATE devices SET last_heard = now() "
		    "WHERE device_id = ANY($1::text[])",
		    1, params, registry_store_write_done, what_heard, NULL);
	f->statements++;
	f->len = 0;
	f->n = 0;
}

static int
flush_collect(const void *key, size_t len, void *value, void *arg)
{
	struct devconn *c = value;
	struct flush_ctx *f = arg;

	(void)key;
	(void)len;
	if (!c->heard || c->state != DC_FRAMED)
		return 0;
	c->heard = false;
	f->buf[f->len++] = f->n ? ',' : '{';
	memcpy(f->buf + f->len, c->idhex, DEVICE_ID_HEX);
	f->len += DEVICE_ID_HEX;
	if (++f->n == HEARD_BATCH_IDS)
		flush_send(f);
	return 0;
}

size_t
registry_heard_flush(struct registry *reg)
{
	struct flush_ctx *f = xmalloc(sizeof(*f));
	size_t n;

	f->reg = reg;
	f->len = 0;
	f->n = 0;
	f->statements = 0;
	hmap_foreach(reg->devices, flush_collect, f);
	flush_send(f);
	n = f->statements;
	free(f);
	return n;
}

/* UPDATEs of last_heard for the devices heard from since the last flush. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)registry_heard_flush(arg);
}

/* ------------------------------------------------------------------ */
/* Session callbacks.                                                 */

/* Send what gathered in the cork; false when the connection closed. */
static bool
cork_flush(struct registry *reg)
{
	struct devconn *c = reg->cork_c;
	size_t len = reg->cork_len;

	reg->cork_len = 0;
	if (c == NULL || len == 0)
		return true;
	if (registry_io_write(c, reg->cork, len) != 0) {
		reg->cork_c = NULL;
		registry_conn_close(c, CINDER_ERR_IO, "send failed");
		return false;
	}
	reg->stats.bytes_out += len;
	return true;
}

static int
sess_send(void *arg, const uint8_t *msg, size_t len)
{
	struct devconn *c = arg;
	struct registry *reg = c->reg;
	uint8_t frame[2 + PCOAP_FRAME_MAX_CT], *out = frame;
	size_t ct_len = 0, room = sizeof(frame) - 2;
	bool corked = false;
	int r;

	if (c->state != DC_FRAMED)
		return CINDER_ERR_UNAVAILABLE;
	if (crypto_channel_sealed_len(len) > PCOAP_FRAME_MAX_CT)
		return CINDER_ERR_TOO_BIG;
	if (c->out_len > OUTPUT_MAX)
		return CINDER_ERR_BUSY;
	/* While c's input is being read, its answers gather in the cork. */
	if (reg->cork_c == c) {
		if (reg->cork_len + 2 + crypto_channel_sealed_len(len) >
		    REGISTRY_CORK) {
			if (!cork_flush(reg))
				return CINDER_ERR_IO;
			reg->cork_c = c;
		}
		if (2 + crypto_channel_sealed_len(len) <= REGISTRY_CORK) {
			out = reg->cork + reg->cork_len;
			room = REGISTRY_CORK - reg->cork_len - 2;
			corked = true;
		}
	}
	r = crypto_channel_seal(&c->ch, msg, len, out + 2, room, &ct_len);
	if (r != 0)
		return r;
	if (pcoap_frame_header_encode(ct_len, out, 2) != PCOAP_OK)
		return CINDER_ERR_INTERNAL;
	if (corked) {
		reg->cork_len += ct_len + 2;
		return 0;
	}
	if (registry_io_write(c, frame, ct_len + 2) != 0)
		return CINDER_ERR_IO;
	reg->stats.bytes_out += ct_len + 2;
	return 0;
}

static void
sess_close(void *arg, int status, const char *reason)
{
	registry_conn_close(arg, status, reason);
}

static void
sess_hello(void *arg, const struct session_hello *h)
{
	struct devconn *c = arg;
	struct registry *reg = c->reg;
	struct devconn *old = NULL;

	c->hello_seen = true;
	if (h->extended) {
		c->max_binary = h->max_binary_size;
		c->chunk_size = h->ota_chunk_size;
	}
	/* The Hello proves the device holds its key: now it may replace an
	   older connection of the same device. */
	hmap_put(reg->devices, c->idhex, DEVICE_ID_HEX, c, (void **)&old);
	c->registered = true;
	if (c->owner_seq != reg->owner_seq) {
		/* a row changed since the key lookup read this one: read it
		   again (registry_row.c; the owner is unsure until then, and
		   calls ask the database) */
		registry_row_reread(reg, c);
	}
	if (old != NULL && old != c) {
		old->registered = false;
		reg->stats.replaced++;
		registry_conn_close(old, CINDER_ERR_CONFLICT,
				    "replaced by a newer connection");
	}
	if (h->extended)
		log_ctx(LOG_LEVEL_INFO, c->logctx,
			"hello: platform %u product %u version %u flags 0x%02x "
			"system %u max message %u max binary %u chunk %u",
			h->platform_id, h->product_id, h->product_version,
			h->flags, h->system_version, h->max_message_size,
			(unsigned)h->max_binary_size, h->ota_chunk_size);
	else
		log_ctx(LOG_LEVEL_INFO, c->logctx,
			"hello: platform %u product %u version %u flags 0x%02x",
			h->platform_id, h->product_id, h->product_version,
			h->flags);
}

static void
sess_describe(void *arg, const char *json, size_t len)
{
	registry_desc_apply(arg, json, len);
}

/* Goodbye reasons, as Device OS numbers them, are kept as numbers. */
static void
sess_goodbye(void *arg, const struct pcoap_goodbye *g)
{
	struct devconn *c = arg;
	const char *params[2];
	char *txt;
	json_t *o;

	o = json_object();
	json_object_set_new(o, "flags", json_integer(g->flags));
	if (g->flags & PCOAP_GOODBYE_F_CLOUD)
		json_object_set_new(o, "cloud_reason",
				    json_integer(g->cloud_reason));
	if (g->flags & PCOAP_GOODBYE_F_RESET)
		json_object_set_new(o, "reset_reason",
				    json_integer(g->reset_reason));
	if (g->flags & PCOAP_GOODBYE_F_SLEEP)
		json_object_set_new(o, "sleep_duration",
				    json_integer(g->sleep_duration));
	if (g->flags & PCOAP_GOODBYE_F_NETWORK)
		json_object_set_new(o, "network_reason",
				    json_integer(g->network_reason));
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (txt == NULL)
		return;
	log_ctx(LOG_LEVEL_NOTICE, c->logctx, "goodbye: %s", txt);
	params[0] = c->idhex;
	params[1] = txt;
	store_query(c->reg->store, STORE_Q_WRITE,
		    "UPDATE devices SET last_goodbye = $2::jsonb, "
		    "last_goodbye_at = now() WHERE device_id = $1",
		    2, params, registry_store_write_done, what_goodbye, NULL);
	free(txt);
}

/* spark/hardware/max_binary and ota_chunk_size (devices before 3.0). */
static void
conn_hardware_event(struct devconn *c, const char *name, const uint8_t *data,
		    size_t len)
{
	char buf[12];
	unsigned long v;
	char *end;

	if (strncmp(name, "spark/hardware/", 15) != 0 || len == 0 ||
	    len >= sizeof(buf))
		return;
	memcpy(buf, data, len);
	buf[len] = '\0';
	v = strtoul(buf, &end, 10);
	if (*end != '\0' || v == 0)
		return;
	if (strcmp(name + 15, "max_binary") == 0 && v <= UINT32_MAX)
		c->max_binary = (uint32_t)v;
	else if (strcmp(name + 15, "ota_chunk_size") == 0 && v <= UINT16_MAX)
		c->chunk_size = (uint16_t)v;
	else
		return;
	if (c->online)
		registry_pres_ota(c);
}

static void
sess_ready(void *arg)
{
	struct devconn *c = arg;
	char ip[INET6_ADDRSTRLEN];

	c->ready_ms = registry_now_ms();
	if (log_enabled(LOG_LEVEL_NOTICE))
		log_ctx(LOG_LEVEL_NOTICE, c->logctx, "online from %s:%u",
			registry_conn_ip(c, ip), (unsigned)c->port);
	presence_online(c);
}

static int
sess_event(void *arg, const char *name, const uint8_t *data, size_t data_len,
	   uint32_t ttl, bool is_private)
{
	struct devconn *c = arg;

	log_ctx(LOG_LEVEL_DEBUG, c->logctx, "event %s (%zu bytes, %s)", name,
		data_len, is_private ? "private" : "public");
	conn_hardware_event(c, name, data, data_len);
	if (c->reg->event_cb == NULL)
		return 0;
	return c->reg->event_cb(&c->event_state, c->idhex, c->owner_id, name,
				data, data_len, ttl, is_private,
				c->reg->event_arg);
}

static void
sess_subscribe(void *arg, const char *filter, int scope, const char *device_id)
{
	struct devconn *c = arg;
	char scoped[DEVICE_ID_HEX + 1];

	log_ctx(LOG_LEVEL_DEBUG, c->logctx, "subscribe \"%s\" scope %d", filter,
		scope);
	if (c->reg->sub_cb == NULL)
		return;
	if (device_id != NULL) {
		memcpy(scoped, device_id, DEVICE_ID_HEX);
		scoped[DEVICE_ID_HEX] = '\0';
	}
	c->reg->sub_cb(c->id, c->idhex, c->owner_id, filter, scope,
		       device_id ? scoped : NULL, c->reg->sub_arg);
}

static void
sess_request_done(void *arg, uint64_t req_id, enum session_req_kind kind,
		  const struct session_result *res)
{
	struct devconn *c = arg;
	uint64_t *waiters;
	size_t i, n;

	if (kind != SESSION_REQ_DESCRIBE || c->refresh == NULL ||
	    req_id != c->refresh->req) {
		registry_req_finish(c->reg, req_id, res);
		return;
	}
	/* A describe refresh: keep it, then answer everyone waiting. */
	c->refresh->req = 0;
	if (res->status == 0)
		registry_desc_apply(c, (const char *)res->data, res->data_len);
	/* Detached first: a callback may start the next refresh. */
	n = c->refresh->n_waiters;
	waiters = c->refresh->waiters;
	c->refresh->n_waiters = 0;
	c->refresh->waiters = NULL;
	registry_req_finish(c->reg, req_id, res);
	for (i = 0; i < n; i++)
		registry_req_finish(c->reg, waiters[i], res);
	free(waiters);
}

const struct session_ops registry_sess_ops = {
	.send = sess_send,
	.close = sess_close,
	.hello = sess_hello,
	.describe = sess_describe,
	.ready = sess_ready,
	.event = sess_event,
	.subscribe = sess_subscribe,
	.request_done = sess_request_done,
	.goodbye = sess_goodbye,
};

/* ------------------------------------------------------------------ */
/* Connection lifecycle.                                              */

void
registry_conn_hs_free(struct devconn *c)
{
	if (c->hs == NULL)
		return;
	crypto_wipe(c->hs, sizeof(*c->hs));
	tmpmem_free(c->hs);
	c->hs = NULL;
}

static void
conn_free(struct devconn *c)
{
	if (c->session != NULL) {
		session_abort_requests(c->session);
		session_free(c->session);
	}
	registry_io_free(c);
	registry_timer_stop(c);
	crypto_channel_cleanup(&c->ch);
	registry_conn_hs_free(c);
	registry_hs_step3_free(c->step3);
	if (c->event_state != NULL && c->reg->event_release != NULL)
		c->reg->event_release(c->event_state, c->reg->event_arg);
	if (c->describe != NULL)
		registry_desc_release(c->reg, registry_desc_of(c->describe));
	if (c->refresh != NULL) {
		free(c->refresh->waiters);
		free(c->refresh);
	}
	hmap_remove(c->reg->conns, &c->id, sizeof(c->id));
	registry_linger_note(c);
	c->reg->stats.connections--;
	registry_trim_note_close(c->reg);
	free(c);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct devconn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&reg->reap_list)) != NULL) {
		TAILQ_REMOVE(&reg->reap_list, c, reap);
		conn_free(c);
	}
}

/* The peer's address as text, into buf (INET6_ADDRSTRLEN bytes). */
const char *
registry_conn_ip(const struct devconn *c, char *buf)
{
	/* kept as bytes: the text is wanted only for logs and presence,
	   three times a handshake (inet_ntop's sprintf: ~1,700
	   instructions each) */
	if (!c->addr_v6)
		fmt_ipv4(buf, c->addr);
	else if (inet_ntop(AF_INET6, c->addr, buf, INET6_ADDRSTRLEN) == NULL)
		buf[0] = '\0';
	return buf;
}

/*
 * Close a connection: log once, say offline, stop I/O, and hand it to the
 * reaper. Safe from inside any of the connection's callbacks.
 */
void
registry_conn_close(struct devconn *c, int status, const char *reason)
{
	struct registry *reg = c->reg;
	enum log_level lvl = LOG_LEVEL_NOTICE;
	char ip[INET6_ADDRSTRLEN];

	if (c->state == DC_CLOSING)
		return;
	if (reg->cork_c == c) {
		/* answers gathered before the close go out first, as they
		   did when each was sent at once */
		if (!cork_flush(reg))
			return; /* closed by the failed send */
		reg->cork_c = NULL;
	}
	if (!c->hello_seen && status != 0)
		lvl = LOG_LEVEL_WARN; /* a failed handshake */
	if (log_enabled(lvl))
		log_ctx(lvl, c->logctx, "closed: %s (peer %s:%u%s%s, %.1f s)",
			reason, registry_conn_ip(c, ip), (unsigned)c->port,
			status ? ", " : "", status ? err_str(status) : "",
			(double)(registry_now_ms() - c->opened_ms) / 1000.0);
	registry_handshake_end(c, false);
	c->state = DC_CLOSING;
	if (c->registered) {
		hmap_remove(reg->devices, c->idhex, DEVICE_ID_HEX);
		c->registered = false;
	}
	presence_offline(c);
	if (c->hello_seen && reg->closed_cb != NULL)
		reg->closed_cb(c->id, c->idhex, reg->sub_arg);
	registry_io_stop(c);
	registry_timer_stop(c);
	registry_conn_pool_unpark(c);
	TAILQ_INSERT_TAIL(&reg->reap_list, c, reap);
	event_active(reg->reap_ev, EV_TIMEOUT, 0);
}

/* Decrypt and dispatch every complete frame in buf; @return bytes used. */
static size_t
conn_read_frames(struct devconn *c, const uint8_t *buf, size_t len)
{
	struct registry *reg = c->reg;
	uint8_t plain[PCOAP_SERVER_RX_MAX_CT];
	size_t used = 0, flen, plen;
	bool cork = reg->cork_c == NULL; /* not inside another's input */
	int r;

	if (cork) {
		if (reg->cork == NULL)
			reg->cork = xmalloc(REGISTRY_CORK);
		reg->cork_c = c;
		reg->cork_len = 0;
	}
	while (c->state == DC_FRAMED) {
		if (len - used < PCOAP_FRAME_HDR_LEN)
			break;
		r = pcoap_frame_peek(buf + used, PCOAP_FRAME_HDR_LEN,
				     PCOAP_SERVER_RX_MAX_CT, &flen);
		if (r == PCOAP_NEED_MORE)
			r = PCOAP_OK; /* the header told us flen */
		if (r != PCOAP_OK) {
			registry_conn_close(c, CINDER_ERR_PROTO,
					    r == PCOAP_TOO_BIG
						    ? "frame too large"
						    : "bad frame length");
			break;
		}
		if (len - used < flen)
			break;
		r = crypto_channel_open(&c->ch, buf + used + 2, flen - 2, plain,
					sizeof(plain), &plen);
		used += flen;
		if (r != 0) {
			registry_conn_close(c, CINDER_ERR_CRYPTO,
					    "frame did not decrypt");
			break;
		}
		session_input(c->session, plain, plen, c->last_rx_ms);
		crypto_wipe(plain, plen);
	}
	if (cork) {
		if (reg->cork_c == c)
			(void)cork_flush(reg);
		reg->cork_c = NULL;
	}
	return used;
}

size_t
registry_conn_input(struct devconn *c, const uint8_t *buf, size_t len)
{
	uint64_t now;
	size_t used;

	switch (c->state) {
	case DC_NONCE:
		if (len < CRYPTO_STEP2_LEN || c->pool_wait != 0)
			return 0;
		if (!registry_hs_step2(c, buf))
			return 0; /* waiting for the pool: the block stays */
		return CRYPTO_STEP2_LEN;
	case DC_STEP2:
	case DC_KEY:
	case DC_STEP3:
		/* The device speaks before its turn: it must wait for our
		   384 bytes, so anything now is a protocol violation. */
		registry_conn_close(c, CINDER_ERR_PROTO,
				    "device sent data during the handshake");
		return len;
	case DC_FRAMED:
		now = registry_now_ms(); /* one reading for the read */
		c->last_rx_ms = now;
		c->heard = true;
		used = conn_read_frames(c, buf, len);
		/* Input may have started requests with earlier deadlines
		   (the describe after Hello); re-arm the timer. */
		if (c->state == DC_FRAMED)
			registry_conn_tick(c, now);
		return used;
	case DC_CLOSING:
		break;
	}
	return len;
}

/*
 * libevent's listener accepts until the backlog is empty, all in one
 * callback: at a storm's start thousands of connections, each with its
 * nonce to make and send, ahead of the connected devices' frames. So it
 * is held after EVPRIO_BULK_BATCH accepts and let go by this bulk
 * priority event (evprio.h), once the loop has polled and served the
 * frames that were ready.
 */
static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;

	(void)fd;
	(void)what;
	reg->accept_batch = 0;
	if (!reg->accept_held)
		return;
	reg->accept_held = false;
	accept_enable(reg);
}

static void
accept_hold(struct registry *reg)
{
	if (++reg->accept_batch < EVPRIO_BULK_BATCH || reg->accept_held)
		return;
	reg->accept_held = true;
	evconnlistener_disable(reg->listener);
	event_active(reg->accept_ev, EV_TIMEOUT, 0);
}

/*
 * TCP_NODELAY and SO_KEEPALIVE of a device socket. Linux copies both
 * from the listening socket to the sockets it accepts, so they are set
 * once on the listener (registry_new) instead of two setsockopt calls
 * per connection; the first accepted socket is checked, and where the
 * options did not come along every later one gets them by hand.
 */
enum {
	SOCKOPTS_UNKNOWN = 0, /* no connection checked yet */
	SOCKOPTS_INHERITED,   /* accepted sockets have them */
	SOCKOPTS_PER_CONN     /* set on each accepted socket */
};

static void
sockopts_set(evutil_socket_t fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

static bool
sockopt_on(evutil_socket_t fd, int level, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) == 0 && v != 0;
}

static void
accept_sockopts(struct registry *reg, evutil_socket_t fd)
{
	if (reg->sockopts == SOCKOPTS_INHERITED)
		return;
	if (reg->sockopts == SOCKOPTS_UNKNOWN) {
		reg->sockopts =
			sockopt_on(fd, IPPROTO_TCP, TCP_NODELAY) &&
					sockopt_on(fd, SOL_SOCKET, SO_KEEPALIVE)
				? SOCKOPTS_INHERITED
				: SOCKOPTS_PER_CONN;
		if (reg->sockopts == SOCKOPTS_INHERITED)
			return;
	}
	sockopts_set(fd);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct registry *reg = arg;
	struct devconn *c;

	(void)l;
	(void)salen;
	if (reg->starved_fails > 0) {
		log_notice("device listener: accepting again, after %llu "
			   "failed accepts in %llu ms",
			   (unsigned long long)reg->starved_fails,
			   (unsigned long long)(registry_now_ms() -
						reg->starved_since));
		reg->starved_fails = 0;
	}
	if (reg->stopping ||
	    hmap_count(reg->conns) >= (size_t)reg->cfg->max_sessions) {
		evutil_closesocket(fd);
		log_warn("device connection refused: %s",
			 reg->stopping ? "shutting down"
				       : "max_sessions reached");
		return;
	}
	accept_sockopts(reg, fd);
	c = xcalloc(1, sizeof(*c));
	c->reg = reg;
	c->id = ++reg->next_conn_id;
	c->opened_ms = registry_now_ms();
	c->fd = -1;
	/* Handshake state lives only through a storm: kept apart from the
	   sessions' long-lived objects (src/tmpmem.c). */
	c->hs = tmpmem_calloc(1, sizeof(*c->hs));
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)sa;
		memcpy(c->addr, &s4->sin_addr, sizeof(s4->sin_addr));
		c->port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)sa;
		memcpy(c->addr, &s6->sin6_addr, sizeof(c->addr));
		c->addr_v6 = true;
		c->port = ntohs(s6->sin6_port);
	}
	snprintf(c->logctx, sizeof(c->logctx), "conn %llu",
		 (unsigned long long)c->id);
	registry_io_start(c, fd);
	hmap_put(reg->conns, &c->id, sizeof(c->id), c, NULL);
	reg->stats.connections++;
	reg->stats.accepted++;
	reg->stats.handshakes_active++;
	c->in_handshake = true;
	if (reg->stats.handshakes_active >=
		    (uint64_t)reg->cfg->max_handshakes &&
	    !reg->paused) {
		evconnlistener_disable(reg->listener);
		reg->paused = true;
	}
	accept_hold(reg);
	registry_timer_set(c, (int64_t)reg->cfg->handshake_timeout * 1000);
	c->timer_startup = true;
	if (crypto_random_public(c->hs->nonce, sizeof(c->hs->nonce)) != 0 ||
	    registry_io_write(c, c->hs->nonce, sizeof(c->hs->nonce)) != 0) {
		registry_conn_close(c, CINDER_ERR_CRYPTO,
				    "could not send the nonce");
		return;
	}
	reg->stats.bytes_out += sizeof(c->hs->nonce);
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char ip[INET6_ADDRSTRLEN];

		log_ctx(LOG_LEVEL_DEBUG, c->logctx, "accepted from %s:%u",
			registry_conn_ip(c, ip), (unsigned)c->port);
	}
}

/*
 * An accept that fails for want of a descriptor or memory leaves the
 * connection in the kernel's queue, so the listener would be ready again
 * at once: the loop spun at full CPU and logged a line per try (39 MB in
 * 3 s with the descriptors used up). The listener pauses instead and
 * tries again every ACCEPT_RETRY_MS; the first failure is logged, and
 * the first accept after it says how long it lasted. Meanwhile devices
 * wait in the queue, and connected ones go on as before.
 */
#define ACCEPT_RETRY_MS 100

static void
accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;

	(void)fd;
	(void)what;
	accept_enable(reg); /* this timer is no longer pending */
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct registry *reg = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};

	(void)l;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		/* one connection's failure: the next one is tried as usual */
		log_err("device listener: accept failed: %s",
			evutil_socket_error_to_string(e));
		return;
	}
	reg->stats.accept_errors++;
	if (reg->starved_fails++ == 0) {
		reg->starved_since = registry_now_ms();
		log_err("device listener: accept failed: %s, with %llu device "
			"connections open; new devices wait until a "
			"descriptor is free (raise the open-files limit, "
			"ulimit -n, or lower max_sessions)",
			evutil_socket_error_to_string(e),
			(unsigned long long)reg->stats.connections);
	} else {
		log_debug("device listener: accept failed again (%llu in a "
			  "row)",
			  (unsigned long long)reg->starved_fails);
	}
	evconnlistener_disable(reg->listener);
	evtimer_add(reg->accept_retry_ev, &tv);
}

/* ------------------------------------------------------------------ */
/* Public API.                                                        */

int
registry_new(struct event_base *base, const struct conf *cfg, struct store *st,
	     struct cryptopool *pool, const struct crypto_key *server_key,
	     struct registry **out)
{
	struct registry *reg = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss), alen = 0;
	struct timeval flush = {FLUSH_INTERVAL_S, 0};
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	if (netaddr_parse(cfg->device_listen, &ss, &alen) != 0) {
		log_err("device_listen: cannot parse \"%s\"",
			cfg->device_listen);
		return CINDER_ERR_INVAL;
	}
	reg = xcalloc(1, sizeof(*reg));
	reg->rbuf = xmalloc(REGISTRY_RBUF);
	reg->base = base;
	reg->cfg = cfg;
	reg->store = st;
	reg->pool = pool;
	reg->server_key = server_key;
	reg->conns = hmap_new();
	reg->devices = hmap_new();
	reg->keys = hmap_new();
	reg->reqs = hmap_new();
	reg->descs = hmap_new();
	reg->desc_memo = xcalloc(DESC_MEMO_SLOTS, sizeof(*reg->desc_memo));
	TAILQ_INIT(&reg->reap_list);
	TAILQ_INIT(&reg->pool_waitq);
	reg->reap_ev = event_new(base, -1, 0, reap_cb, reg);
	reg->flush_ev = event_new(base, -1, EV_PERSIST, flush_cb, reg);
	event_add(reg->flush_ev, &flush);
	reg->accept_retry_ev = evtimer_new(base, accept_retry_cb, reg);
	reg->accept_ev = event_new(base, -1, 0, accept_resume_cb, reg);
	(void)event_priority_set(reg->accept_ev, EVPRIO_BULK);
	registry_timers_init(reg);
	conf_node_name(cfg, reg->node_id, sizeof(reg->node_id));
	reg->listener = evconnlistener_new_bind(
		base, accept_cb, reg,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
			LEV_OPT_CLOSE_ON_EXEC,
		LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)alen);
	if (reg->listener == NULL) {
		log_err("could not listen for devices on %s: %s",
			cfg->device_listen, strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	evconnlistener_set_error_cb(reg->listener, accept_error_cb);
	sockopts_set(evconnlistener_get_fd(reg->listener)); /* accept_cb */
	if (getsockname(evconnlistener_get_fd(reg->listener),
			(struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			reg->port = ntohs(
				((struct sockaddr_in *)(void *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			reg->port = ntohs(((struct sockaddr_in6 *)(void *)&ss)
						  ->sin6_port);
	}
	log_notice("listening for devices on %s (port %u)", cfg->device_listen,
		   reg->port);
	r = 0;
	*out = reg;
	reg = NULL;
out:
	registry_free(reg);
	return r;
}

static int
close_each(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	registry_conn_close(value, 0, "server shutting down");
	return 0;
}

static int
free_key(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	registry_hs_key_entry_free(value);
	return 0;
}

static int
free_req(const void *key, size_t len, void *value, void *arg)
{
	(void)key;
	(void)len;
	(void)arg;
	free(value);
	return 0;
}

void
registry_stop_accepting(struct registry *reg)
{
	if (reg == NULL || reg->stopping)
		return;
	reg->stopping = true;
	if (reg->listener != NULL)
		evconnlistener_disable(reg->listener);
}

void
registry_close_all(struct registry *reg)
{
	if (reg == NULL)
		return;
	registry_stop_accepting(reg);
	hmap_foreach(reg->conns, close_each, NULL);
	reap_cb(-1, 0, reg);
	registry_pres_flush(reg); /* every device's offline, now */
}

void
registry_free(struct registry *reg)
{
	if (reg == NULL)
		return;
	if (reg->conns != NULL)
		registry_close_all(reg);
	if (reg->listener != NULL)
		evconnlistener_free(reg->listener);
	if (reg->reap_ev != NULL)
		event_free(reg->reap_ev);
	if (reg->flush_ev != NULL)
		event_free(reg->flush_ev);
	if (reg->accept_ev != NULL)
		event_free(reg->accept_ev);
	if (reg->accept_retry_ev != NULL)
		event_free(reg->accept_retry_ev);
	registry_pres_cleanup(reg);
	registry_row_cleanup(reg);
	registry_hs_cleanup(reg);
	registry_timers_cleanup(reg);
	if (reg->keys != NULL)
		hmap_foreach(reg->keys, free_key, NULL);
	if (reg->reqs != NULL)
		hmap_foreach(reg->reqs, free_req, NULL);
	hmap_free(reg->keys);
	hmap_free(reg->reqs);
	if (reg->desc_memo != NULL)
		registry_desc_memo_clear_all(reg);
	free(reg->desc_memo);
	hmap_free(reg->descs); /* empty: every connection is gone */
	hmap_free(reg->devices);
	hmap_free(reg->conns);
	free(reg->rbuf);
	free(reg->cork);
	free(reg);
}

uint16_t
registry_port(const struct registry *reg)
{
	return reg->port;
}

void
registry_set_presence_cb(struct registry *reg, registry_presence_cb cb,
			 void *arg)
{
	reg->presence_cb = cb;
	reg->presence_arg = arg;
}

static int
event_state_clear(const void *key, size_t len, void *value, void *arg)
{
	struct devconn *c = value;

	(void)key;
	(void)len;
	(void)arg;
	c->event_state = NULL;
	return 0;
}

void
registry_set_event_cb(struct registry *reg, registry_event_cb cb,
		      registry_event_release_cb release, void *arg)
{
	if (reg->event_cb != NULL && reg->conns != NULL)
		hmap_foreach(reg->conns, event_state_clear, NULL);
	reg->event_cb = cb;
	reg->event_release = release;
	reg->event_arg = arg;
}

void
registry_set_subscribe_cb(struct registry *reg, registry_subscribe_cb cb,
			  registry_conn_closed_cb closed, void *arg)
{
	reg->sub_cb = cb;
	reg->closed_cb = closed;
	reg->sub_arg = arg;
}

void
registry_stats_get(const struct registry *reg, struct registry_stats *out)
{
	*out = reg->stats;
	out->key_cache = hmap_count(reg->keys);
	out->lingering = reg->left_n;
}

void
registry_set_describe_cb(struct registry *reg, registry_describe_cb cb,
			 void *arg)
{
	reg->describe_cb = cb;
	reg->describe_arg = arg;
}
