/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's simulated devices: the firmware library's fw_app over
 * a port of non-blocking sockets in the worker's epoll set, OpenSSL doing
 * the handshake's RSA, the keys read from --dir; and a device's life in
 * the loop (started, stepped, scheduled on the tick, counted ready).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fw_app.h"
#include "fw_err.h"

#include "loadgen.h"

/* A failed system call of d's port: kept for devs_why() */
static int
p_fail(struct dev *d, const char *op, int err)
{
	d->sys_op = op;
	d->sys_errno = err;
	return FW_ERR_IO;
}

static int
p_connect(void *ctx)
{
	struct dev *d = ctx;
	int one = 1, err = 0;
	socklen_t el = sizeof(err);

	if (d->fd < 0) {
		d->fd = socket(AF_INET,
			       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (d->fd < 0)
			return p_fail(d, "socket", errno);
		setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (d->lg->nsrc > 0) {
			/* more than one source address: past 28k connections
			   to one port the ephemeral ports run out */
			struct sockaddr_in src;
			size_t k =
				((size_t)(d - d->lg->devs) + d->lg->dev_base) %
				d->lg->nsrc;

			memset(&src, 0, sizeof(src));
			src.sin_family = AF_INET;
			src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)k);
			if (bind(d->fd, (struct sockaddr *)&src, sizeof(src)) !=
			    0)
				return p_fail(d, "bind", errno);
		}
		d->connected = d->writable = false;
		d->mask = EPOLLIN | EPOLLOUT;
		ep_set(d->lg, d->fd, d->mask, d, EPOLL_CTL_ADD);
		if (connect(d->fd, (struct sockaddr *)&d->lg->dev_addr,
			    sizeof(d->lg->dev_addr)) == 0) {
			d->connected = true;
			return 0;
		}
		return errno == EINPROGRESS ? FW_ERR_AGAIN
					    : p_fail(d, "connect", errno);
	}
	if (d->connected)
		return 0;
	if (!d->writable)
		return FW_ERR_AGAIN;
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		return p_fail(d, "getsockopt", errno);
	if (err != 0)
		return p_fail(d, "connect", err);
	d->connected = true;
	return 0;
}

static int
p_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct dev *d = ctx;
	ssize_t n;

	if (d->fd < 0)
		return FW_ERR_IO;
	if (d->hold_tx)
		return 0; /* ota mode: see ota_note() */
	n = send(d->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR
			       ? 0
			       : p_fail(d, "send", errno);
	return (int)n;
}

static int
p_recv(void *ctx, uint8_t *buf, size_t cap)
{
	struct dev *d = ctx;
	ssize_t n;

	if (d->fd < 0)
		return FW_ERR_IO;
	n = recv(d->fd, buf, cap, 0);
	if (n == 0)
		return p_fail(d, "recv: closed by the server", 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR
			       ? 0
			       : p_fail(d, "recv", errno);
	return (int)n;
}

static void
p_close(void *ctx)
{
	struct dev *d = ctx;

	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	d->connected = d->writable = false;
}

static int
p_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : FW_ERR_CRYPTO;
}

/* An EVP_PKEY_CTX made ready for one kind: 0 encrypt, 1 decrypt, 2
 * verify-recover. */
EVP_PKEY_CTX *
pkey_ctx(EVP_PKEY *k, int kind)
{
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k, NULL);
	int ok;

	if (x == NULL)
		return NULL;
	if (kind == 0)
		ok = EVP_PKEY_encrypt_init(x) == 1;
	else if (kind == 1)
		ok = EVP_PKEY_decrypt_init(x) == 1;
	else
		ok = EVP_PKEY_verify_recover_init(x) == 1;
	if (!ok || EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING) != 1) {
		EVP_PKEY_CTX_free(x);
		return NULL;
	}
	return x;
}

/*
 * One EVP_PKEY operation. The server key's contexts (encrypt, verify) are
 * made once: OpenSSL 3 fetches the implementation for every new context,
 * which was a fifth of the generator's CPU in a storm, and the generator
 * shares the box with the server it measures. They are per thread (an
 * EVP_PKEY_CTX is not to be shared). Device keys have their decrypt
 * context made before the run (devs_prepare).
 */
static int
pkey_op(struct lg *g, EVP_PKEY *k, bool shared, int kind, const uint8_t *in,
	size_t len, uint8_t *out, size_t *outlen)
{
	EVP_PKEY_CTX **cache = g->pk_ctx, *x;
	EVP_PKEY **cache_key = g->pk_key;
	int ok;

	if (shared && cache_key[kind] == k && cache[kind] != NULL) {
		x = cache[kind];
	} else if ((x = pkey_ctx(k, kind)) == NULL) {
		return FW_ERR_CRYPTO;
	} else if (shared) {
		EVP_PKEY_CTX_free(cache[kind]);
		cache[kind] = x;
		cache_key[kind] = k; /* the run's server key, never freed */
	}
	if (kind == 0)
		ok = EVP_PKEY_encrypt(x, out, outlen, in, len) == 1;
	else if (kind == 1)
		ok = EVP_PKEY_decrypt(x, out, outlen, in, len) == 1;
	else
		ok = EVP_PKEY_verify_recover(x, out, outlen, in, len) == 1;
	if (!shared)
		EVP_PKEY_CTX_free(x);
	return ok ? 0 : FW_ERR_CRYPTO;
}

static int
c_enc(void *ctx, const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
	struct dev *d = ctx;
	size_t n = outlen;
	int r = pkey_op(d->lg, d->lg->server_key, true, 0, in, len, out, &n);

	return r == 0 && n == outlen ? 0 : FW_ERR_CRYPTO;
}

static int
c_dec(void *ctx, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
      size_t *outlen)
{
	struct dev *d = ctx;

	*outlen = cap;
	if (d->dec != NULL)
		return EVP_PKEY_decrypt(d->dec, out, outlen, in, len) == 1
			       ? 0
			       : FW_ERR_CRYPTO;
	return pkey_op(d->lg, d->key, false, 1, in, len, out, outlen);
}

static int
c_verify(void *ctx, const uint8_t *sig, size_t siglen, const uint8_t *msg,
	 size_t mlen)
{
	struct dev *d = ctx;
	uint8_t rec[256];
	size_t n = sizeof(rec);

	if (pkey_op(d->lg, d->lg->server_key, true, 2, sig, siglen, rec, &n) !=
	    0)
		return FW_ERR_CRYPTO;
	return n == mlen && memcmp(rec, msg, mlen) == 0 ? 0 : FW_ERR_CRYPTO;
}

static int
c_pub(void *ctx, uint8_t *out, size_t cap, size_t *outlen)
{
	struct dev *d = ctx;

	if (cap < d->pub_len)
		return FW_ERR_TOO_BIG;
	memcpy(out, d->pub, d->pub_len);
	*outlen = d->pub_len;
	return 0;
}

static int
fn_bench(const char *arg, void *ctx)
{
	(void)ctx;
	return (int)strlen(arg);
}

EVP_PKEY *
read_key(const char *path, bool pub_der)
{
	FILE *f = fopen(path, "rb");
	EVP_PKEY *k;

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	k = pub_der ? d2i_PUBKEY_fp(f, NULL)
		    : PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL)
		die("%s: not a key", path);
	return k;
}

/* Keys shared by several device ids (symlinks, bench/run's 100k run) are
 * parsed once: the last one read, by resolved path. */
/* read_key_shared's cache: the last key read and its resolved path. */
static char last_key_path[4096];
EVP_PKEY *last_key;

static EVP_PKEY *
read_key_shared(const char *path)
{
	char *last = last_key_path;
	char real[4096];

	if (realpath(path, real) == NULL)
		die("%s: %s", path, strerror(errno));
	if (last_key != NULL && strcmp(real, last) == 0 &&
	    EVP_PKEY_up_ref(last_key) == 1)
		return last_key;
	EVP_PKEY_free(last_key); /* the cache's reference to the one before */
	last_key = read_key(real, false);
	snprintf(last, sizeof(last_key_path), "%s", real);
	EVP_PKEY_up_ref(last_key); /* the cache's own reference */
	return last_key;
}

void
devs_load(struct lg *g, const char *dir, size_t count)
{
	char path[4096], line[64];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/devices.txt", dir);
	if ((f = fopen(path, "r")) == NULL)
		die("%s: %s", path, strerror(errno));
	g->devs = calloc(count, sizeof(*g->devs));
	g->due = calloc(count, sizeof(*g->due));
	if (g->devs == NULL || g->due == NULL)
		die("out of memory");
	g->crypto = (struct port_crypto){c_enc, c_dec, c_verify, c_pub};
	for (i = 0; i < count && fgets(line, sizeof(line), f) != NULL; i++) {
		struct dev *d = &g->devs[i];
		struct fw_app_config cfg;
		uint8_t *p;
		int n;
		size_t j;

		line[strcspn(line, "\r\n")] = '\0';
		if (strlen(line) != 24)
			die("devices.txt: bad id %s", line);
		memcpy(d->id, line, 25);
		snprintf(path, sizeof(path), "%s/%s.pem", dir, line);
		d->kind = K_DEV;
		d->lg = g;
		d->fd = -1;
		g->due[i] = UINT64_MAX; /* not started */
		d->key = read_key_shared(path);
		p = d->pub;
		if ((n = i2d_PUBKEY(d->key, NULL)) <= 0 ||
		    (size_t)n > sizeof(d->pub))
			die("%s: key too big", path);
		d->pub_len = (size_t)i2d_PUBKEY(d->key, &p);
		d->port = (struct port){
			.ctx = d,
			.net_connect = p_connect,
			.net_send = p_send,
			.net_recv = p_recv,
			.net_close = p_close,
			.millis = p_millis,
			.random = p_random,
			.flash_read = p_flash_rd,
			.flash_write = p_flash_wr,
			.flash_erase = p_flash,
			.flash_size = 0,
			.crypto = &g->crypto,
			.crypto_ctx = d,
		};
		memset(&cfg, 0, sizeof(cfg));
		for (j = 0; j < 12; j++) {
			unsigned b;
			sscanf(line + 2 * j, "%2x", &b);
			cfg.dev.id[j] = (uint8_t)b;
		}
		cfg.dev.product_id = 3;
		cfg.dev.product_version = 0xffff;
		cfg.dev.platform_id = 3;
		cfg.modules = &g->modules;
		if (g->image != NULL) {
			d->port.flash_size = OTA_FLASH;
			cfg.updates_enabled = true;
			cfg.fast_ota = true;
			cfg.notify = ota_note;
			cfg.notify_arg = d;
		}
		fw_app_init(&d->app, &d->port, &cfg);
		fw_app_function(&d->app, "bench", fn_bench, d);
		fw_app_variable(&d->app, "v", FW_VAR_INT, &d->var, NULL, NULL);
	}
	fclose(f);
	if (i < count)
		die("only %zu devices in %s", i, dir);
	g->ndev = count;
}

void
dev_rearm(struct dev *d)
{
	uint32_t want;

	if (d->fd < 0)
		return;
	want = EPOLLIN;
	if (!d->connected || !fw_device_tx_idle(&d->app.dev))
		want |= EPOLLOUT;
	if (want != d->mask) {
		d->mask = want;
		ep_set(d->lg, d->fd, want, d, EPOLL_CTL_MOD);
	}
}

/* d's port and app have nothing under way: no handshake or reconnect
 * wait, no input or output queued, the post-connect sequence and its
 * subscriptions done, no OTA, no reset pending. Only its input and its
 * keep-alive timer can change it then. */
static bool
dev_quiet(const struct dev *d)
{
	const struct fw_app *a = &d->app;
	const struct fw_device *fd = &a->dev;
	size_t i;

	if (fd->state != FW_DEVICE_READY || fd->rx_len > 0 ||
	    !fw_device_tx_idle(fd) ||
	    (a->seq != FW_SEQ_IDLE && a->seq != FW_SEQ_DONE) ||
	    a->reset_pending || a->ota.active || d->hold_tx || d->stop_now)
		return false;
	for (i = 0; i < a->n_subs; i++)
		if (!a->subs[i].sent && !(a->safe_mode && !a->subs[i].system))
			return false;
	return true;
}

/*
 * When the 200 ms tick steps d next. The tick used to step every device,
 * a recv each: 10,000 idle devices cost ~30 ms a tick, during which
 * answers to the HTTP clients waited. Now a device is stepped by its
 * input (epoll) and by the tick only when its timers need it: at every
 * tick while anything is under way (dev_quiet), as before; when quiet,
 * at the first tick at or after its keep-alive ping falls due (15 s of
 * silence) or the ping's answer times out, the moment fw_device_step()
 * would act on it. The library compares millis (p_millis: now_us() /
 * 1000 + 1) with time_reached(), so its time `at` comes at
 * now_us() >= (at - 1) * 1000.
 */
void
dev_sched(struct lg *g, struct dev *d)
{
	const struct fw_device *fd = &d->app.dev;
	uint64_t *due = &g->due[d - g->devs], now;
	uint32_t at, ms;
	int32_t left;

	if (!d->active) {
		*due = UINT64_MAX;
		return;
	}
	if (!dev_quiet(d)) {
		*due = 0;
	} else {
		at = fd->ping_pending ? fd->ping_at + FW_DEVICE_PING_TIMEOUT
				      : fd->last_rx + FW_DEVICE_PING_AFTER;
		now = now_us();
		ms = (uint32_t)(now / 1000u) + 1;
		left = (int32_t)(at - ms);
		*due = left <= 0 ? 0
				 : now - now % 1000u + (uint64_t)left * 1000u;
	}
	if (*due < g->due_min)
		g->due_min = *due;
}

void
devs_why(const struct dev *devs, size_t n, char *buf, size_t cap)
{
	size_t st[FW_DEVICE_READY + 1] = {0}, off = 0, j, same = 0;
	size_t stopped = 0;
	const struct dev *e = NULL, *f = NULL;
	int k;

	for (j = 0; j < n; j++) {
		const struct dev *d = &devs[j];
		if (!d->active || !d->app.dev.running) {
			stopped++;
			continue;
		}
		if ((unsigned)d->app.dev.state <= FW_DEVICE_READY)
			st[d->app.dev.state]++;
		if (d->app.dev.state == FW_DEVICE_READY)
			continue;
		if (f == NULL)
			f = d;
		if (d->sys_op == NULL)
			continue;
		if (e == NULL)
			e = d; /* the first failing one names the error */
		if (d->sys_op == e->sys_op && d->sys_errno == e->sys_errno)
			same++;
	}
	k = snprintf(buf, cap,
		     "%zu ready, %zu handshaking, %zu connecting, %zu waiting "
		     "to reconnect, %zu not started",
		     st[FW_DEVICE_READY],
		     st[FW_DEVICE_NONCE] + st[FW_DEVICE_KEYBLOCK] +
			     st[FW_DEVICE_SESSION] + st[FW_DEVICE_HELLO],
		     st[FW_DEVICE_CONNECTING], st[FW_DEVICE_IDLE], stopped);
	if (k > 0 && (size_t)k < cap)
		off = (size_t)k;
	if (e != NULL)
		snprintf(buf + off, cap - off,
			 "; last failure of %zu not ready: %s%s%s", same,
			 e->sys_op, e->sys_errno ? ": " : "",
			 e->sys_errno ? strerror(e->sys_errno) : "");
	else if (f != NULL && off < cap)
		snprintf(buf + off, cap - off,
			 "; no socket error; device %s's last error: FW_ERR %d",
			 f->id, f->app.dev.last_err);
}

void
dev_start(struct lg *g, struct dev *d)
{
	d->active = true;
	d->counted = false;
	d->t_start = now_us();
	g->active++;
	fw_app_start(&d->app, p_millis(NULL));
	(void)fw_app_step(&d->app, p_millis(NULL));
	dev_rearm(d);
	dev_sched(g, d);
}

/* handshake loop: a ready device is counted, closed and replaced */
bool hs_loop;

void
dev_leave(struct lg *g, struct dev *d)
{
	fw_device_stop(&d->app.dev);
	d->active = false;
	g->active--;
	if (d->counted)
		g->ready--;
	d->counted = false;
	dev_sched(g, d);
}

void
dev_step(struct lg *g, struct dev *d)
{
	if (!d->active)
		return;
	(void)fw_app_step(&d->app, p_millis(NULL));
	if (d->hold_tx) {
		d->app.reset_pending = false;
		d->hold_tx = false;
	}
	if (d->stop_now) {
		/* flashed: leave (the reset's reconnect is cut short) */
		dev_leave(g, d);
		return;
	}
	if (!d->counted && fw_device_is_ready(&d->app.dev)) {
		d->counted = true;
		g->ready++;
		if (g->measuring) {
			g->handshakes++;
			if (hs_loop)
				lat_add(&g->lat, now_us() - d->t_start);
		}
		if (hs_loop) {
			fw_device_stop(&d->app.dev);
			d->active = false;
			g->active--;
			g->ready--;
			dev_sched(g, d);
			dev_start(g, &g->devs[g->next_dev++ % g->ndev]);
			return;
		}
	} else if (d->counted && !fw_device_is_ready(&d->app.dev)) {
		d->counted = false; /* dropped: it reconnects by itself */
		g->ready--;
		g->hs_failed++;
	}
	if (d->ping_out) {
		if (d->app.dev.pongs != d->ping_pongs) {
			d->ping_out = false;
			lat_add(&g->lat, now_us() - d->ping_t0);
			/* when it was sent, in ms from the first ping */
			lat_add(&g->ping_when,
				(d->ping_t0 - g->ping_t_first) / 1000u);
		} else if (!fw_device_is_ready(&d->app.dev)) {
			d->ping_out = false; /* the session is gone */
			g->ping_lost++;
		}
	}
	dev_rearm(d);
	dev_sched(g, d);
}
