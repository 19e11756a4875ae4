/* SPDX-License-Identifier: MIT */
/*
 * Device-side protocol state machine (protocol.md §2.3 steps 1-5, §6,
 * §8.2). One fw_device_step() does everything that can be done without
 * waiting: flush queued bytes, read what arrived, advance the handshake,
 * decrypt and dispatch complete frames, run the timers. Failures close
 * the connection and schedule a reconnect with a doubling delay; the
 * cipher state never survives a connection (§1.4: one lost frame kills
 * the stream). Time comparisons are wrap-safe.
 */
#include "config.h"

#include <string.h>

#include "coap/pcoap.h"
#include "fw_device.h"
#include "fw_err.h"
#include "fw_sha1.h"
#include "fw_util.h"

/* Plaintext limit for what we send: buffer - 2 - 16, like Device OS. */
#define TX_PLAIN_MAX (FW_DEVICE_BUF - 2 - 16)

static bool
time_reached(uint32_t now, uint32_t t)
{
	return (int32_t)(now - t) >= 0;
}

static int
pcoap_to_fw(int r, bool tx_empty)
{
	switch (r) {
	case PCOAP_OK:
		return 0;
	case PCOAP_NOSPACE:
		return tx_empty ? FW_ERR_TOO_BIG : FW_ERR_BUSY;
	case PCOAP_TOO_BIG:
		return FW_ERR_TOO_BIG;
	case PCOAP_NEED_MORE:
		return FW_ERR_AGAIN;
	default:
		return FW_ERR_INVAL;
	}
}

static void
enter(struct fw_device *d, enum fw_device_state s, uint32_t now,
      uint32_t timeout)
{
	d->state = s;
	d->deadline = now + timeout;
}

static void
drop(struct fw_device *d, uint32_t now, int err)
{
	d->port->net_close(d->port->ctx);
	fw_aes_chan_cleanup(&d->chan);
	fw_wipe(d->rx, sizeof(d->rx));
	d->rx_len = 0;
	d->tx_len = 0;
	d->tx_off = 0;
	d->ping_pending = false;
	d->ping_sent = false;
	d->last_err = err;
	d->state = FW_DEVICE_IDLE;
	d->retry_at = now + d->retry_delay;
	if (d->retry_delay < FW_DEVICE_RETRY_MAX)
		d->retry_delay *= 2;
}

void
fw_device_init(struct fw_device *d, const struct port *p,
	       const struct fw_device_config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->port = p;
	d->cfg = *cfg;
	d->state = FW_DEVICE_IDLE;
	d->retry_delay = FW_DEVICE_RETRY_MIN;
}

void
fw_device_start(struct fw_device *d, uint32_t now)
{
	d->running = true;
	d->retry_at = now;
}

void
fw_device_stop(struct fw_device *d)
{
	if (d->state != FW_DEVICE_IDLE)
		drop(d, 0, 0);
	d->running = false;
	d->retry_delay = FW_DEVICE_RETRY_MIN;
}

void
fw_device_reconnect(struct fw_device *d, uint32_t now, int why)
{
	if (d->state != FW_DEVICE_IDLE)
		drop(d, now, why);
	d->last_err = why;
	d->retry_delay = FW_DEVICE_RETRY_MIN;
	d->retry_at = now;
}

bool
fw_device_tx_idle(const struct fw_device *d)
{
	return d->tx_len == d->tx_off;
}

bool
fw_device_is_ready(const struct fw_device *d)
{
	return d->state == FW_DEVICE_READY;
}

uint16_t
fw_device_chunk_size(const struct fw_device *d)
{
	return d->cfg.ota_chunk_size != 0 ? d->cfg.ota_chunk_size
					  : PCOAP_CHUNK_SIZE_DEFAULT;
}

uint16_t
fw_device_next_mid(struct fw_device *d)
{
	return ++d->mid;
}

/* ---- send queue ---------------------------------------------------------- */

static int
tx_flush(struct fw_device *d)
{
	int n;

	while (d->tx_off < d->tx_len) {
		n = d->port->net_send(d->port->ctx, d->tx + d->tx_off,
				      d->tx_len - d->tx_off);
		if (n < 0)
			return FW_ERR_IO;
		if (n == 0)
			break;
		if ((size_t)n > d->tx_len - d->tx_off)
			return FW_ERR_INTERNAL; /* port broke its contract */
		d->tx_off += (size_t)n;
	}
	if (d->tx_off == d->tx_len) {
		d->tx_off = 0;
		d->tx_len = 0;
	}
	return 0;
}

static bool
tx_empty(const struct fw_device *d)
{
	return d->tx_len == d->tx_off;
}

/*
 * Where the next message's plaintext goes: after a 2-byte frame header at
 * the end of the queue, leaving room for the PKCS#7 block, so the message
 * is sealed in place.
 */
static int
tx_reserve(struct fw_device *d, uint8_t **plain, size_t *cap)
{
	size_t avail;

	if (d->tx_off > 0) {
		memmove(d->tx, d->tx + d->tx_off, d->tx_len - d->tx_off);
		d->tx_len -= d->tx_off;
		d->tx_off = 0;
	}
	avail = sizeof(d->tx) - d->tx_len;
	if (avail < 2 + 16 + PCOAP_HDR_LEN)
		return FW_ERR_BUSY;
	*plain = d->tx + d->tx_len + 2;
	*cap = avail - 2 - 16;
	if (*cap > TX_PLAIN_MAX)
		*cap = TX_PLAIN_MAX;
	return 0;
}

static int
tx_commit(struct fw_device *d, size_t len)
{
	uint8_t *hdr = d->tx + d->tx_len;
	size_t ct;
	int r;

	if ((r = fw_aes_chan_seal(&d->chan, hdr + 2, len, hdr + 2,
				  sizeof(d->tx) - d->tx_len - 2, &ct)) != 0)
		return r;
	if (pcoap_frame_header_encode(ct, hdr, 2) != PCOAP_OK)
		return FW_ERR_INTERNAL;
	d->tx_len += 2 + ct;
	return 0;
}

static bool
channel_up(const struct fw_device *d)
{
	return d->state == FW_DEVICE_HELLO || d->state == FW_DEVICE_READY;
}

int
fw_device_send(struct fw_device *d, const uint8_t *msg, size_t len)
{
	uint8_t *plain;
	size_t cap;
	int r;

	if (!channel_up(d))
		return FW_ERR_INVAL;
	if (len > TX_PLAIN_MAX)
		return FW_ERR_TOO_BIG;
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	if (len > cap)
		return FW_ERR_BUSY;
	memcpy(plain, msg, len);
	return tx_commit(d, len);
}

int
fw_device_publish(struct fw_device *d, const char *name, bool is_private,
		  const uint8_t *data, size_t len)
{
	uint8_t *plain;
	size_t cap, n;
	int r;

	if (d->state != FW_DEVICE_READY)
		return FW_ERR_INVAL;
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	r = pcoap_build_event(plain, cap, &n, PCOAP_NON, fw_device_next_mid(d),
			      is_private, name, strlen(name),
			      PCOAP_EVENT_TTL_DEFAULT, data, len);
	if (r != PCOAP_OK)
		return pcoap_to_fw(r, d->tx_len == 0);
	return tx_commit(d, n);
}

int
fw_device_request_time(struct fw_device *d)
{
	uint8_t *plain;
	size_t cap, n;
	int r;

	if (d->state != FW_DEVICE_READY)
		return FW_ERR_INVAL;
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	d->time_token = ++d->token;
	r = pcoap_build_time(plain, cap, &n, fw_device_next_mid(d),
			     d->time_token);
	if (r != PCOAP_OK)
		return pcoap_to_fw(r, d->tx_len == 0);
	return tx_commit(d, n);
}

/* ---- handshake ----------------------------------------------------------- */

/* Read into rx until it holds want bytes; never reads past want. */
static int
rx_fill(struct fw_device *d, size_t want, uint32_t now)
{
	int n;

	while (d->rx_len < want) {
		n = d->port->net_recv(d->port->ctx, d->rx + d->rx_len,
				      want - d->rx_len);
		if (n < 0)
			return FW_ERR_IO;
		if (n == 0)
			return FW_ERR_AGAIN;
		if ((size_t)n > want - d->rx_len)
			return FW_ERR_INTERNAL;
		d->rx_len += (size_t)n;
		d->last_rx = now;
	}
	return 0;
}

/* Step 2: RSA(nonce || id || device public key DER) into tx. */
static int
hs_keyblock(struct fw_device *d)
{
	const struct port *p = d->port;
	uint8_t plain[FW_DEVICE_NONCE_LEN + FW_DEVICE_ID_LEN + 162];
	size_t klen;
	int r;

	memcpy(plain, d->rx, FW_DEVICE_NONCE_LEN);
	memcpy(plain + FW_DEVICE_NONCE_LEN, d->cfg.id, FW_DEVICE_ID_LEN);
	if ((r = p->crypto->device_pubkey(p->crypto_ctx, plain + 52,
					  sizeof(plain) - 52, &klen)) != 0)
		return r;
	if (klen != 162)
		return FW_ERR_INTERNAL;
	if ((r = p->crypto->server_encrypt(p->crypto_ctx, plain, sizeof(plain),
					   d->tx, FW_DEVICE_KEYBLOCK_LEN)) != 0)
		return r;
	d->tx_len = FW_DEVICE_KEYBLOCK_LEN;
	d->tx_off = 0;
	d->rx_len = 0;
	return 0;
}

/* Step 3: decrypt the session block, check its signature, open the channel. */
static int
hs_session(struct fw_device *d)
{
	const struct port *p = d->port;
	uint8_t session[128], mac[FW_SHA1_LEN];
	size_t n;
	int r = FW_ERR_INTERNAL;

	if ((r = p->crypto->device_decrypt(p->crypto_ctx, d->rx, 128, session,
					   sizeof(session), &n)) != 0) {
		r = FW_ERR_CRYPTO;
		goto out;
	}
	if (n != 40) {
		r = FW_ERR_CRYPTO;
		goto out;
	}
	fw_sha1_hmac(session, 40, d->rx, 128, mac);
	if ((r = p->crypto->server_verify(p->crypto_ctx, d->rx + 128, 256, mac,
					  sizeof(mac))) != 0) {
		r = FW_ERR_CRYPTO;
		goto out;
	}
	/* §1.3: key, IV for both directions, then the salt; LightSSL loads
	 * salt bytes 0-1 as a little-endian message-ID counter. */
	fw_aes_chan_init(&d->chan, session, session + 16);
	d->mid = (uint16_t)(session[32] | session[33] << 8);
	d->rx_len = 0;
	r = 0;
out:
	fw_wipe(session, sizeof(session));
	fw_wipe(mac, sizeof(mac));
	return r;
}

/* Step 4: our Hello (NON POST h; 8-byte payload, or 20 when extended). */
static int
send_hello(struct fw_device *d)
{
	struct pcoap_hello h;
	uint8_t *plain;
	size_t cap, n;
	int r;

	memset(&h, 0, sizeof(h));
	h.product_id = d->cfg.product_id;
	h.product_version = d->cfg.product_version;
	h.flags = d->cfg.hello_flags;
	h.platform_id = d->cfg.platform_id;
	if (d->cfg.extended_hello) {
		h.extended = true;
		h.system_version = d->cfg.system_version;
		h.max_message_size = PCOAP_DEVICE_RX_MAX;
		h.max_binary_size = d->cfg.max_binary;
		h.ota_chunk_size = fw_device_chunk_size(d);
	}
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	r = pcoap_build_hello(plain, cap, &n, fw_device_next_mid(d), &h);
	if (r != PCOAP_OK)
		return pcoap_to_fw(r, true);
	return tx_commit(d, n);
}

/* ---- session ------------------------------------------------------------- */

static int
reply_empty_ack(struct fw_device *d, uint16_t mid)
{
	uint8_t *plain;
	size_t cap, n;
	int r;

	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	if ((r = pcoap_build_empty_ack(plain, cap, &n, mid)) != PCOAP_OK)
		return pcoap_to_fw(r, true);
	return tx_commit(d, n);
}

/* Built Describe JSON; a thread builds one at a time (FW_SCRATCH). */
FW_SCRATCH char describe_buf[TX_PLAIN_MAX];

static int
reply_describe(struct fw_device *d, const struct pcoap_msg *m)
{
	const char *json = d->cfg.describe ? d->cfg.describe : "{}";
	uint8_t tok, flags, *plain;
	size_t cap, n, jlen;
	int r;

	if (pcoap_parse_describe(m, &tok, &flags) != PCOAP_OK)
		return 0; /* not for us: ignore like Device OS */
	d->describes++;
	jlen = strlen(json);
	if (d->cfg.describe_cb != NULL) {
		if (d->cfg.describe_cb(d, flags, describe_buf,
				       sizeof(describe_buf), &jlen,
				       d->cfg.cb_arg) != 0) {
			if ((r = tx_reserve(d, &plain, &cap)) != 0)
				return r;
			r = pcoap_build_reply(plain, cap, &n, PCOAP_ACK,
					      PCOAP_CODE_INTERNAL, m->mid, &tok,
					      1, NULL, 0);
			if (r != PCOAP_OK)
				return pcoap_to_fw(r, true);
			return tx_commit(d, n);
		}
		json = describe_buf;
	}
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	r = pcoap_build_describe_reply(plain, cap, &n, PCOAP_ACK, m->mid, tok,
				       json, jlen);
	if (r != PCOAP_OK)
		return pcoap_to_fw(r, true);
	return tx_commit(d, n);
}

int
fw_device_post_describe(struct fw_device *d, uint8_t flags)
{
	const char *json = d->cfg.describe ? d->cfg.describe : "{}";
	uint8_t *plain;
	size_t cap, n, jlen;
	int r;

	if (d->state != FW_DEVICE_READY)
		return FW_ERR_INVAL;
	jlen = strlen(json);
	if (d->cfg.describe_cb != NULL) {
		if ((r = d->cfg.describe_cb(d, flags, describe_buf,
					    sizeof(describe_buf), &jlen,
					    d->cfg.cb_arg)) != 0)
			return r;
		json = describe_buf;
	}
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	r = pcoap_build_describe_post(plain, cap, &n, fw_device_next_mid(d),
				      flags, json, jlen);
	if (r != PCOAP_OK)
		return pcoap_to_fw(r, d->tx_len == 0);
	return tx_commit(d, n);
}

int
fw_device_goodbye(struct fw_device *d, uint32_t reset_reason)
{
	struct pcoap_goodbye g;
	uint8_t *plain;
	size_t cap, n;
	int r;

	if (d->state != FW_DEVICE_READY)
		return FW_ERR_INVAL;
	memset(&g, 0, sizeof(g));
	g.flags = PCOAP_GOODBYE_F_RESET;
	g.reset_reason = reset_reason;
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	r = pcoap_build_goodbye(plain, cap, &n, fw_device_next_mid(d), &g);
	if (r != PCOAP_OK)
		return pcoap_to_fw(r, d->tx_len == 0);
	return tx_commit(d, n);
}

/* After the server Hello (§2.5, §8.2 step 4): chunk size, then time. */
static int
session_ready(struct fw_device *d, uint32_t now)
{
	char chunk[8];
	size_t len = 0;
	int r;

	d->state = FW_DEVICE_READY;
	d->retry_delay = FW_DEVICE_RETRY_MIN;
	d->connects++;
	if (d->cfg.on_ready != NULL) {
		d->cfg.on_ready(d, d->cfg.cb_arg);
		return 0;
	}
	(void)fw_buf_putu(chunk, sizeof(chunk), &len, fw_device_chunk_size(d));
	if ((r = fw_device_publish(d, "spark/hardware/ota_chunk_size", true,
				   (const uint8_t *)chunk, len)) != 0)
		return r;
	return fw_device_request_time(d);
}

static int
dispatch(struct fw_device *d, const struct pcoap_msg *m, uint32_t now)
{
	uint8_t *plain;
	size_t cap, n;
	uint32_t t;
	int kind = pcoap_particle_kind(m), r;

	if (d->state == FW_DEVICE_HELLO) {
		/* Only the server Hello opens the session (§2.3 step 5). */
		if (kind != PCOAP_KIND_HELLO)
			return 0;
		if (m->type == PCOAP_CON &&
		    (r = reply_empty_ack(d, m->mid)) != 0)
			return r;
		return session_ready(d, now);
	}

	switch (kind) {
	case PCOAP_KIND_PING:
		return reply_empty_ack(d, m->mid);
	case PCOAP_KIND_HELLO:
		if (m->type == PCOAP_CON)
			return reply_empty_ack(d, m->mid);
		return 0;
	case PCOAP_KIND_DESCRIBE:
		return reply_describe(d, m);
	case PCOAP_KIND_EMPTY_ACK:
		if (d->ping_sent && m->mid == d->ping_mid) {
			d->ping_sent = false;
			d->pongs++;
		}
		return 0;
	case PCOAP_KIND_RST:
		return 0;
	case PCOAP_KIND_ACK:
		/* The device takes every 2.05 with 4 bytes as the time. */
		if (pcoap_parse_time_reply(m, &t) == PCOAP_OK) {
			d->unix_time = t;
			d->unix_time_at = now ? now : 1;
			return 0;
		}
		break;
	default:
		break;
	}
	if (d->cfg.on_message != NULL) {
		d->cfg.on_message(d, m, d->cfg.cb_arg);
		return 0;
	}
	/* A request nobody handles: answer 4.04 so the cloud does not wait. */
	if (m->type == PCOAP_CON && m->code != PCOAP_CODE_EMPTY &&
	    m->code < PCOAP_CODE(2, 0)) {
		if ((r = tx_reserve(d, &plain, &cap)) != 0)
			return r;
		r = pcoap_build_reply(plain, cap, &n, PCOAP_ACK,
				      PCOAP_CODE_NOT_FOUND, m->mid, m->token.p,
				      m->token.len, NULL, 0);
		if (r != PCOAP_OK)
			return pcoap_to_fw(r, true);
		return tx_commit(d, n);
	}
	return 0;
}

/*
 * Read and handle complete frames. A frame is only handled when the send
 * queue is empty, so that any reply fits; otherwise it waits in rx.
 */
static int
session_rx(struct fw_device *d, uint32_t now)
{
	struct pcoap_msg m;
	size_t flen, plen;
	int n, r;

	while (d->rx_len < sizeof(d->rx)) {
		n = d->port->net_recv(d->port->ctx, d->rx + d->rx_len,
				      sizeof(d->rx) - d->rx_len);
		if (n < 0)
			return FW_ERR_IO;
		if (n == 0)
			break;
		if ((size_t)n > sizeof(d->rx) - d->rx_len)
			return FW_ERR_INTERNAL;
		d->rx_len += (size_t)n;
		d->last_rx = now;
		d->ping_pending = false;
	}
	while (d->rx_len > 0 && tx_empty(d)) {
		r = pcoap_frame_peek(d->rx, d->rx_len, FW_DEVICE_RX_MAX_CT,
				     &flen);
		if (r == PCOAP_NEED_MORE)
			break;
		if (r != PCOAP_OK)
			return FW_ERR_PROTO;
		if ((r = fw_aes_chan_open(&d->chan, d->rx + 2, flen - 2,
					  &plen)) != 0)
			return r;
		if (pcoap_msg_decode(d->rx + 2, plen, &m) != PCOAP_OK)
			return FW_ERR_PROTO;
		if ((r = dispatch(d, &m, now)) != 0)
			return r;
		memmove(d->rx, d->rx + flen, d->rx_len - flen);
		d->rx_len -= flen;
		if ((r = tx_flush(d)) != 0)
			return r;
	}
	return 0;
}

/* A CoAP ping into the reserved send space; its empty ACK counts in
 * pongs. */
static int
send_ping(struct fw_device *d, uint8_t *plain, size_t cap, uint32_t now)
{
	size_t n;
	uint16_t mid = fw_device_next_mid(d);
	int r;

	if ((r = pcoap_build_ping(plain, cap, &n, mid)) != PCOAP_OK)
		return pcoap_to_fw(r, true);
	if ((r = tx_commit(d, n)) != 0)
		return r;
	d->ping_pending = true;
	d->ping_at = now;
	d->ping_sent = true;
	d->ping_mid = mid;
	return 0;
}

int
fw_device_ping(struct fw_device *d, uint32_t now)
{
	uint8_t *plain;
	size_t cap;
	int r;

	if (d->state != FW_DEVICE_READY)
		return FW_ERR_INVAL;
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r;
	return send_ping(d, plain, cap, now);
}

static int
keepalive(struct fw_device *d, uint32_t now)
{
	uint8_t *plain;
	size_t cap;
	int r;

	if (d->ping_pending) {
		if (time_reached(now, d->ping_at + FW_DEVICE_PING_TIMEOUT))
			return FW_ERR_TIMEOUT;
		return 0;
	}
	if (!time_reached(now, d->last_rx + FW_DEVICE_PING_AFTER))
		return 0;
	if ((r = tx_reserve(d, &plain, &cap)) != 0)
		return r == FW_ERR_BUSY ? 0 : r;
	return send_ping(d, plain, cap, now);
}

static int
step(struct fw_device *d, uint32_t now)
{
	const struct port *p = d->port;
	int r;

	switch (d->state) {
	case FW_DEVICE_IDLE:
		if (!d->running || !time_reached(now, d->retry_at))
			return 0;
		d->rx_len = 0;
		d->tx_len = 0;
		d->tx_off = 0;
		enter(d, FW_DEVICE_CONNECTING, now, FW_DEVICE_STEP_TIMEOUT);
		/* fall through */
	case FW_DEVICE_CONNECTING:
		r = p->net_connect(p->ctx);
		if (r == FW_ERR_AGAIN)
			break;
		if (r != 0)
			return FW_ERR_IO;
		enter(d, FW_DEVICE_NONCE, now, FW_DEVICE_STEP_TIMEOUT);
		/* fall through */
	case FW_DEVICE_NONCE:
		r = rx_fill(d, FW_DEVICE_NONCE_LEN, now);
		if (r == FW_ERR_AGAIN)
			break;
		if (r != 0)
			return r;
		if ((r = hs_keyblock(d)) != 0)
			return r;
		enter(d, FW_DEVICE_KEYBLOCK, now, FW_DEVICE_STEP_TIMEOUT);
		/* fall through */
	case FW_DEVICE_KEYBLOCK:
		if ((r = tx_flush(d)) != 0)
			return r;
		if (!tx_empty(d))
			break;
		enter(d, FW_DEVICE_SESSION, now, FW_DEVICE_STEP_TIMEOUT);
		/* fall through */
	case FW_DEVICE_SESSION:
		r = rx_fill(d, FW_DEVICE_SESSION_LEN, now);
		if (r == FW_ERR_AGAIN)
			break;
		if (r != 0)
			return r;
		if ((r = hs_session(d)) != 0)
			return r;
		enter(d, FW_DEVICE_HELLO, now, FW_DEVICE_HELLO_TIMEOUT);
		if ((r = send_hello(d)) != 0)
			return r;
		/* fall through */
	case FW_DEVICE_HELLO:
	case FW_DEVICE_READY:
		if ((r = tx_flush(d)) != 0 || (r = session_rx(d, now)) != 0)
			return r;
		if (d->state == FW_DEVICE_READY && (r = keepalive(d, now)) != 0)
			return r;
		if ((r = tx_flush(d)) != 0)
			return r;
		return 0;
	}
	if (time_reached(now, d->deadline))
		return FW_ERR_TIMEOUT;
	return 0;
}

int
fw_device_step(struct fw_device *d, uint32_t now)
{
	int r;

	if (d->state == FW_DEVICE_HELLO && time_reached(now, d->deadline)) {
		drop(d, now, FW_ERR_TIMEOUT);
		return FW_ERR_TIMEOUT;
	}
	r = step(d, now);
	if (r != 0 && r != FW_ERR_AGAIN) {
		drop(d, now, r);
		return r;
	}
	return 0;
}
