/* SPDX-License-Identifier: MIT */
/*
 * The simulator's event loop: N devices, one thread, one epoll set.
 * Sockets are non-blocking and edge-triggered; a device is stepped when
 * its socket reports something, when its tick comes round (two FIFO
 * queues with a fixed delay each, so arming and expiring are O(1)), or
 * again right away when its last read filled the buffer. stdin carries
 * control commands (EOF is ignored), a signalfd SIGTERM/SIGINT. The
 * port's RSA operations use OpenSSL; flash is allocated only while an
 * update is running.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fw_err.h"
#include "sim.h"

#define TICK_MS 500	      /* every device is stepped at least this often */
#define SETUP_WAIT_MS 1000    /* setup() at the latest this long after ready */
#define FLASH_SIZE 262144     /* OTA area, spark/hardware/max_binary */
#define MAX_EVENTS 256	      /* epoll batch */
#define CTL_LINE_MAX 2048     /* one control command */
#define TAG_STDIN ((void *)1) /* epoll data for stdin */
#define TAG_SIGNAL ((void *)2)

struct fifo_link {
	struct sim_dev *next;
	uint32_t at; /* when it is due */
	bool queued;
};

struct sim_dev {
	struct fw_app app; /* first: the device library's state */
	struct port port;
	struct sim *sim;
	char id[25];
	EVP_PKEY *key;	   /* device private key */
	uint8_t pub[162];  /* its SPKI DER */
	int fd;		   /* -1 when closed */
	bool writable;	   /* connect finished (EPOLLOUT seen) */
	bool rx_more;	   /* the last read filled the buffer */
	bool connected;	   /* net_connect succeeded */
	bool was_ready;	   /* printed "ready" for this connection */
	bool silent;	   /* --behaviour silent engaged */
	bool garbage_due;  /* --behaviour garbage: send once idle */
	bool stopped;	   /* stop command or --no-reconnect */
	bool in_again;	   /* on the again list */
	bool setup_done;   /* the app's setup() ran since the last boot */
	bool held;	   /* hold: neither read nor written until go */
	bool held_input;   /* said "input" for this hold */
	bool rst_armed;	   /* describe-reset: RST after the next Describe */
	uint32_t ready_at; /* when the session became ready */
	unsigned describes_at_ready; /* Describes answered by then */
	unsigned describes_said;     /* Describes reported on stdout */
	uint8_t *flash;		     /* OTA area, allocated on first use */
	uint32_t ota_chunks;	     /* chunks stored since UpdateBegin */
	uint32_t ota_drops;	     /* --ota-drop-after faults done */
	unsigned rst_from;	     /* Describes answered when armed */
	struct fifo_link tick, pub_tick;
	struct sim_dev *again_next;
	struct sim_appstate st;
};

struct fifo {
	struct sim_dev *head, *tail;
	uint32_t delay;
};

struct sim {
	const struct sim_opts *o;
	struct sim_dev *devs;
	size_t n;
	int ep;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	EVP_PKEY *server_key;
	struct port_crypto crypto;
	struct fw_modules modules;
	struct fifo ticks, pubs;
	struct sim_dev *again;
	bool quit;
	char ctl[CTL_LINE_MAX];
	size_t ctl_len;
	bool ctl_skip; /* discarding an over-long line */
	struct timespec t0;
};

void
sim_out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static uint32_t
now_ms(struct sim *s)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint32_t)((t.tv_sec - s->t0.tv_sec) * 1000 +
			  (t.tv_nsec - s->t0.tv_nsec) / 1000000) +
	       1;
}

/* ---- FIFO timers ------------------------------------------------------- */

static void
fifo_push(struct fifo *f, struct sim_dev *d, struct fifo_link *l, uint32_t now)
{
	if (l->queued)
		return;
	l->queued = true;
	l->at = now + f->delay;
	l->next = NULL;
	if (f->tail != NULL) {
		struct fifo_link *tl = f == &d->sim->ticks ? &f->tail->tick
							   : &f->tail->pub_tick;
		tl->next = d;
	} else {
		f->head = d;
	}
	f->tail = d;
}

static struct fifo_link *
link_of(struct sim *s, struct fifo *f, struct sim_dev *d)
{
	return f == &s->ticks ? &d->tick : &d->pub_tick;
}

/* Pop the head if due. */
static struct sim_dev *
fifo_pop_due(struct sim *s, struct fifo *f, uint32_t now)
{
	struct sim_dev *d = f->head;
	struct fifo_link *l;

	if (d == NULL)
		return NULL;
	l = link_of(s, f, d);
	if ((int32_t)(now - l->at) < 0)
		return NULL;
	f->head = l->next;
	if (f->head == NULL)
		f->tail = NULL;
	l->queued = false;
	l->next = NULL;
	return d;
}

/* ---- port: network ------------------------------------------------------ */

static int
p_connect(void *ctx)
{
	struct sim_dev *d = ctx;
	struct sim *s = d->sim;
	struct epoll_event ev;
	socklen_t elen = sizeof(int);
	int err = 0;

	if (d->fd < 0) {
		d->fd = socket(s->addr.ss_family,
			       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (d->fd < 0)
			return FW_ERR_IO;
		d->writable = false;
		d->connected = false;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = d;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, d->fd, &ev) != 0) {
			close(d->fd);
			d->fd = -1;
			return FW_ERR_IO;
		}
		if (connect(d->fd, (struct sockaddr *)&s->addr, s->addrlen) ==
		    0) {
			d->connected = true;
			return 0;
		}
		if (errno != EINPROGRESS)
			return FW_ERR_IO;
		return FW_ERR_AGAIN;
	}
	if (d->connected)
		return 0;
	if (!d->writable)
		return FW_ERR_AGAIN;
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
	    err != 0)
		return FW_ERR_IO;
	d->connected = true;
	return 0;
}

static int
p_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct sim_dev *d = ctx;
	ssize_t n;

	if (d->fd < 0)
		return FW_ERR_IO;
	n = send(d->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
			       ? 0
			       : FW_ERR_IO;
	return (int)n;
}

static int
p_recv(void *ctx, uint8_t *buf, size_t cap)
{
	struct sim_dev *d = ctx;
	ssize_t n;

	if (d->fd < 0)
		return FW_ERR_IO;
	n = recv(d->fd, buf, cap, 0);
	if (n == 0)
		return FW_ERR_IO; /* peer closed */
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			d->rx_more = false;
			return 0;
		}
		return FW_ERR_IO;
	}
	/* A short read drained the socket: edge-triggered epoll reports
	 * the next arrival; a full one may have left bytes behind. */
	d->rx_more = (size_t)n == cap;
	return (int)n;
}

static void
p_close(void *ctx)
{
	struct sim_dev *d = ctx;

	if (d->fd >= 0) {
		close(d->fd); /* also leaves the epoll set */
		d->fd = -1;
	}
	d->connected = false;
	d->writable = false;
	d->rx_more = false;
}

static uint32_t
p_millis(void *ctx)
{
	return now_ms(((struct sim_dev *)ctx)->sim);
}

static int
p_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : FW_ERR_CRYPTO;
}

/* ---- port: flash (allocated while an update runs) ----------------------- */

static int
p_flash_erase(void *ctx, uint32_t off, size_t len)
{
	struct sim_dev *d = ctx;

	if (off > FLASH_SIZE || len > FLASH_SIZE - off)
		return FW_ERR_INVAL;
	if (d->flash == NULL && (d->flash = malloc(FLASH_SIZE)) == NULL)
		return FW_ERR_IO;
	memset(d->flash + off, 0xff, len);
	d->ota_chunks = 0; /* UpdateBegin: a new transfer */
	return 0;
}

static int
p_flash_write(void *ctx, uint32_t off, const uint8_t *buf, size_t len)
{
	struct sim_dev *d = ctx;

	if (d->flash == NULL || off > FLASH_SIZE || len > FLASH_SIZE - off)
		return FW_ERR_INVAL;
	memcpy(d->flash + off, buf, len);
	d->ota_chunks++;
	return 0;
}

static int
p_flash_read(void *ctx, uint32_t off, uint8_t *buf, size_t len)
{
	struct sim_dev *d = ctx;

	if (d->flash == NULL || off > FLASH_SIZE || len > FLASH_SIZE - off)
		return FW_ERR_INVAL;
	memcpy(buf, d->flash + off, len);
	return 0;
}

static void
flash_free(struct sim_dev *d)
{
	free(d->flash);
	d->flash = NULL;
}

/* ---- port: RSA with OpenSSL --------------------------------------------- */

static int
c_server_encrypt(void *ctx, const uint8_t *in, size_t len, uint8_t *out,
		 size_t outlen)
{
	struct sim_dev *d = ctx;
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(d->sim->server_key, NULL);
	size_t n = outlen;
	int r = FW_ERR_CRYPTO;

	if (x != NULL && EVP_PKEY_encrypt_init(x) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_encrypt(x, out, &n, in, len) == 1 && n == outlen)
		r = 0;
	EVP_PKEY_CTX_free(x);
	return r;
}

static int
c_device_decrypt(void *ctx, const uint8_t *in, size_t len, uint8_t *out,
		 size_t cap, size_t *outlen)
{
	struct sim_dev *d = ctx;
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(d->key, NULL);
	int r = FW_ERR_CRYPTO;

	*outlen = cap;
	if (x != NULL && EVP_PKEY_decrypt_init(x) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_decrypt(x, out, outlen, in, len) == 1)
		r = 0;
	EVP_PKEY_CTX_free(x);
	return r;
}

static int
c_server_verify(void *ctx, const uint8_t *sig, size_t siglen,
		const uint8_t *msg, size_t mlen)
{
	struct sim_dev *d = ctx;
	EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(d->sim->server_key, NULL);
	uint8_t rec[256];
	size_t n = sizeof(rec);
	int r = FW_ERR_CRYPTO;

	if (x != NULL && EVP_PKEY_verify_recover_init(x) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_verify_recover(x, rec, &n, sig, siglen) == 1 &&
	    n == mlen && memcmp(rec, msg, mlen) == 0)
		r = 0;
	EVP_PKEY_CTX_free(x);
	return r;
}

static int
c_device_pubkey(void *ctx, uint8_t *out, size_t cap, size_t *outlen)
{
	struct sim_dev *d = ctx;

	if (cap < sizeof(d->pub))
		return FW_ERR_TOO_BIG;
	memcpy(out, d->pub, sizeof(d->pub));
	*outlen = sizeof(d->pub);
	return 0;
}

/* ---- notifications -> output lines -------------------------------------- */

static const char *
close_reason(int err)
{
	switch (err) {
	case 0:
		return "stopped";
	case FW_ERR_TIMEOUT:
		return "timeout";
	case FW_ERR_PROTO:
	case FW_ERR_MALFORMED:
	case FW_ERR_TOO_BIG:
		return "protocol";
	case FW_ERR_CRYPTO:
		return "crypto";
	case FW_ERR_RESET:
		return "reset";
	default:
		return "io";
	}
}

/* Output lines stay one line: control bytes in names/data become '?'. */
static const char *
clean(const char *in, char *out, size_t cap)
{
	size_t i;

	for (i = 0; in != NULL && in[i] != '\0' && i + 1 < cap; i++)
		out[i] = (unsigned char)in[i] < 0x20 ? '?' : in[i];
	out[i] = '\0';
	return out;
}

static void
on_note(struct fw_app *a, enum fw_app_note what, const char *x, const char *y,
	void *arg)
{
	static char cx[FW_APP_NAME_MAX + 2], cy[FW_APP_ARG_MAX + 2];
	struct sim_dev *d = arg;

	(void)a;
	x = clean(x, cx, sizeof(cx));
	y = clean(y, cy, sizeof(cy));
	switch (what) {
	case FW_NOTE_READY:
		d->was_ready = true;
		d->ready_at = d->app.now;
		d->describes_at_ready = d->app.dev.describes;
		sim_out("ready %s", d->id);
		if (d->sim->o->behaviour == SIM_GARBAGE)
			d->garbage_due = true;
		break;
	case FW_NOTE_EVENT:
		sim_out("event %s %s %s", d->id, x, y);
		break;
	case FW_NOTE_CALL:
		sim_out("call %s %s %s", d->id, x, y);
		break;
	case FW_NOTE_SAFEMODE:
		sim_out("safemode %s", d->id);
		break;
	case FW_NOTE_OTA_BEGIN:
		sim_out("ota %s begin %s %s", d->id, x, y);
		break;
	case FW_NOTE_OTA_DONE:
		sim_out("ota %s done %s", d->id, x);
		break;
	case FW_NOTE_OTA_INSTALLED:
		sim_out("ota %s installed %s %s", d->id, x, y);
		flash_free(d);
		break;
	case FW_NOTE_OTA_REJECTED:
		sim_out("ota %s rejected %s", d->id, x);
		flash_free(d);
		break;
	case FW_NOTE_RESET:
		/* A reboot forgets what setup() registered; it runs again
		   once the cloud is back. The close line follows. */
		if (!d->sim->o->setup_early && strcmp(x, "network") != 0) {
			fw_app_clear(&d->app);
			d->setup_done = false;
		}
		break;
	}
}

/* ---- stepping ----------------------------------------------------------- */

static void
again_push(struct sim *s, struct sim_dev *d)
{
	if (d->in_again)
		return;
	d->in_again = true;
	d->again_next = s->again;
	s->again = d;
}

static void
after_close(struct sim_dev *d)
{
	if (d->was_ready) {
		sim_out("closed %s %s", d->id,
			close_reason(d->app.dev.last_err));
		d->was_ready = false;
	}
	d->silent = false;
	d->garbage_due = false;
	if (!d->sim->o->reconnect && !d->stopped) {
		d->stopped = true;
		fw_device_stop(&d->app.dev);
	}
}

static void
send_garbage(struct sim_dev *d)
{
	uint8_t frame[2 + 48];

	d->garbage_due = false;
	frame[0] = 0;
	frame[1] = 48;
	(void)RAND_bytes(frame + 2, 48);
	(void)p_send(d, frame, sizeof(frame));
}

/*
 * Device OS (AUTOMATIC mode) runs setup() once the cloud connection is
 * up, which in practice means right after it has answered the cloud's
 * first Describe: that Describe lacks the app. (Waiting for the whole
 * connect sequence here would let a slow step push setup() past the
 * cloud's second Describe, which no real device does.)
 */
static bool
setup_due(const struct sim_dev *d, uint32_t now)
{
	if (!fw_device_is_ready(&d->app.dev))
		return false;
	return d->app.dev.describes > d->describes_at_ready ||
	       (int32_t)(now - d->ready_at) >= SETUP_WAIT_MS;
}

/* --ota-drop-after: the link goes down mid-transfer (the library drops
   the partial image when the next session is up). */
static bool
ota_drop_due(const struct sim_dev *d)
{
	const struct sim_opts *o = d->sim->o;

	return o->ota_drop_after != 0 && d->ota_drops < o->ota_drop_times &&
	       d->app.ota.active && d->ota_chunks >= o->ota_drop_after;
}

/* describe-reset: the Describe answered and out of the device, the
   link goes at once with an RST (SO_LINGER 0), as when the device loses
   power or resets right after answering; it reconnects. */
static bool
describe_rst_due(const struct sim_dev *d)
{
	return d->rst_armed && d->fd >= 0 &&
	       d->app.dev.describes > d->rst_from &&
	       fw_device_tx_idle(&d->app.dev);
}

static void
describe_rst(struct sim_dev *d, uint32_t now)
{
	struct linger l = {1, 0};

	d->rst_armed = false;
	(void)setsockopt(d->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	sim_out("drop %s describe", d->id);
	fw_device_reconnect(&d->app.dev, now, FW_ERR_IO);
	after_close(d);
}

static void
step_dev(struct sim_dev *d, uint32_t now)
{
	struct sim *s = d->sim;
	bool was_conn = d->app.dev.state != FW_DEVICE_IDLE;

	if (d->silent || d->stopped || d->held)
		return;
	d->rx_more = false;
	(void)fw_app_step(&d->app, now);
	if (ota_drop_due(d)) {
		d->ota_drops++;
		sim_out("drop %s ota %u", d->id, (unsigned)d->ota_chunks);
		d->ota_chunks = 0; /* this transfer is over */
		fw_device_reconnect(&d->app.dev, now, FW_ERR_IO);
	}
	if (was_conn && d->app.dev.state == FW_DEVICE_IDLE)
		after_close(d);
	if (d->app.dev.describes != d->describes_said) {
		d->describes_said = d->app.dev.describes;
		sim_out("describe %s %u", d->id, d->describes_said);
	}
	if (describe_rst_due(d))
		describe_rst(d, now);
	if (!d->setup_done && setup_due(d, now)) {
		sim_app_setup(s->o->app, &d->app, &d->st, d->id);
		d->setup_done = true;
		sim_out("setup %s", d->id);
		(void)fw_app_step(&d->app, now); /* its subscriptions */
	}
	if (fw_device_is_ready(&d->app.dev) && d->app.seq == FW_SEQ_DONE &&
	    d->setup_done && fw_device_tx_idle(&d->app.dev)) {
		/* Frozen (no reads, no pings) once the session is up on
		   both sides: the server's Describe answered, else the
		   server closes it for that, not for the silence. */
		if (s->o->behaviour == SIM_SILENT && d->app.dev.describes > 0)
			d->silent = true;
		else if (d->garbage_due)
			send_garbage(d);
	}
	if (d->rx_more && !d->silent)
		again_push(s, d);
}

static void
on_socket(struct sim_dev *d, uint32_t events, uint32_t now)
{
	if (events & EPOLLOUT)
		d->writable = true;
	if (d->held) {
		/* say once that the server wrote; it waits for go */
		if ((events & EPOLLIN) && !d->held_input) {
			d->held_input = true;
			sim_out("input %s", d->id);
		}
		return;
	}
	if (d->silent) {
		/* frozen, but notice when the server gives up on us */
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			d->silent = false;
			fw_device_reconnect(&d->app.dev, now, FW_ERR_IO);
			after_close(d);
		}
		return;
	}
	step_dev(d, now);
}

static void
publish_tick(struct sim_dev *d)
{
	const struct sim_opts *o = d->sim->o;
	char data[16];

	if (!fw_device_is_ready(&d->app.dev) || d->silent)
		return;
	snprintf(data, sizeof(data), "%u", ++d->st.published);
	(void)fw_app_publish(&d->app, o->publish_name, data, 60,
			     o->publish_public ? FW_PUBLISH_PUBLIC
					       : FW_PUBLISH_PRIVATE);
}

/* ---- control commands --------------------------------------------------- */

static struct sim_dev *
find_dev(struct sim *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->devs[i].id, id) == 0)
			return &s->devs[i];
	return NULL;
}

static void
cmd_publish(struct sim *s, struct sim_dev *d, char **argv, int argc)
{
	const char *data = argc > 3 ? argv[3] : "";
	unsigned flags = FW_PUBLISH_PRIVATE;
	unsigned long ttl = 60;
	int r;

	if (argc > 4 && strcmp(argv[4], "public") == 0)
		flags = FW_PUBLISH_PUBLIC;
	if (argc > 5)
		ttl = strtoul(argv[5], NULL, 10);
	r = fw_app_publish(&d->app, argv[2], data, (uint32_t)ttl, flags);
	if (r != 0)
		sim_out("error %s publish %s", d->id,
			r == FW_ERR_LIMIT  ? "rate-limited"
			: r == FW_ERR_BUSY ? "busy"
					   : "not-ready");
	step_dev(d, now_ms(s));
}

static void
cmd_subscribe(struct sim *s, struct sim_dev *d, char **argv, int argc)
{
	enum fw_sub_scope scope = FW_SUB_ALL;
	const char *dev = NULL;

	if (argc > 3) {
		if (strcmp(argv[3], "mine") == 0) {
			scope = FW_SUB_MINE;
		} else if (strcmp(argv[3], "all") != 0) {
			scope = FW_SUB_DEVICE;
			dev = argv[3];
		}
	}
	if (fw_app_subscribe(&d->app, argv[2], scope, dev, NULL, NULL) != 0)
		sim_out("error %s subscribe", d->id);
	step_dev(d, now_ms(s));
}

static void
control(struct sim *s, char *line)
{
	char *argv[8], *save = NULL, *t;
	int argc = 0;
	size_t i, ready = 0, conn = 0;

	for (t = strtok_r(line, " \t\r", &save); t != NULL && argc < 8;
	     t = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = t;
	if (argc == 0)
		return;
	if (strcmp(argv[0], "quit") == 0) {
		s->quit = true;
	} else if (strcmp(argv[0], "stats") == 0) {
		for (i = 0; i < s->n; i++) {
			enum fw_device_state st = s->devs[i].app.dev.state;

			conn += st >= FW_DEVICE_NONCE;
			ready += st == FW_DEVICE_READY;
		}
		sim_out("stats connected=%zu ready=%zu", conn, ready);
	} else if ((strcmp(argv[0], "publish") == 0 ||
		    strcmp(argv[0], "subscribe") == 0) &&
		   argc >= 3) {
		for (i = 0; i < s->n; i++) {
			struct sim_dev *d = &s->devs[i];

			if (strcmp(argv[1], "all") != 0 &&
			    strcmp(argv[1], d->id) != 0)
				continue;
			if (argv[0][0] == 'p')
				cmd_publish(s, d, argv, argc);
			else
				cmd_subscribe(s, d, argv, argc);
		}
	} else if (strcmp(argv[0], "reset") == 0 && argc >= 2) {
		/* the app calls System.reset() */
		for (i = 0; i < s->n; i++) {
			struct sim_dev *d = &s->devs[i];

			if (strcmp(argv[1], "all") != 0 &&
			    strcmp(argv[1], d->id) != 0)
				continue;
			fw_app_request_reset(&d->app, PORT_RESET_REBOOT,
					     "reboot");
			step_dev(d, now_ms(s));
		}
	} else if (strcmp(argv[0], "stop") == 0 && argc >= 2) {
		struct sim_dev *d = find_dev(s, argv[1]);

		if (d == NULL)
			return;
		d->stopped = true;
		fw_device_stop(&d->app.dev);
		d->app.dev.last_err = 0;
		after_close(d);
	} else if (strcmp(argv[0], "hold") == 0 && argc >= 2) {
		/* frozen with its connection open: nothing read or written
		   (what arrives is read at go) */
		struct sim_dev *d = find_dev(s, argv[1]);

		if (d == NULL || d->held)
			return;
		d->held = true;
		d->held_input = false;
		sim_out("held %s", d->id);
	} else if (strcmp(argv[0], "go") == 0 && argc >= 2) {
		struct sim_dev *d = find_dev(s, argv[1]);

		if (d == NULL || !d->held)
			return;
		d->held = false;
		step_dev(d, now_ms(s));
	} else if (strcmp(argv[0], "describe-reset") == 0 && argc >= 2) {
		struct sim_dev *d = find_dev(s, argv[1]);

		if (d == NULL)
			return;
		d->rst_armed = true;
		d->rst_from = d->app.dev.describes;
	} else if (strcmp(argv[0], "start") == 0 && argc >= 2) {
		/* a stopped device (stop, --no-reconnect) connects again */
		struct sim_dev *d = find_dev(s, argv[1]);

		if (d == NULL || !d->stopped)
			return;
		d->stopped = false;
		fw_device_start(&d->app.dev, now_ms(s));
		step_dev(d, now_ms(s));
	} else {
		sim_out("error - unknown command %s", argv[0]);
	}
}

static void
read_stdin(struct sim *s)
{
	char buf[4096];
	ssize_t n, i;

	for (;;) {
		n = read(0, buf, sizeof(buf));
		if (n == 0) {
			/* EOF: keep running (the quickstart closes stdin) */
			(void)epoll_ctl(s->ep, EPOLL_CTL_DEL, 0, NULL);
			return;
		}
		if (n < 0)
			return;
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (s->ctl_len + 1 < sizeof(s->ctl))
					s->ctl[s->ctl_len++] = buf[i];
				else
					s->ctl_skip = true;
				continue;
			}
			s->ctl[s->ctl_len] = '\0';
			if (!s->ctl_skip)
				control(s, s->ctl);
			s->ctl_len = 0;
			s->ctl_skip = false;
		}
	}
}

/* ---- setup -------------------------------------------------------------- */

static int
resolve(struct sim *s, const char *hostport)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon = strrchr(hostport, ':');
	size_t hl;

	if (colon == NULL || (hl = (size_t)(colon - hostport)) == 0 ||
	    hl >= sizeof(host))
		return -1;
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	if (host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
	s->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static EVP_PKEY *
load_server_key(const char *path)
{
	uint8_t der[1024];
	const uint8_t *p = der;
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return NULL;
	n = fread(der, 1, sizeof(der), f);
	fclose(f);
	return d2i_PUBKEY(NULL, &p, (long)n);
}

static int
load_device(struct sim *s, struct sim_dev *d, const char *id)
{
	char path[4096];
	uint8_t *p;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/%s.pem", s->o->dir, id);
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "cinder-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	d->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (d->key == NULL) {
		fprintf(stderr, "cinder-sim: %s: not a private key\n", path);
		return -1;
	}
	p = d->pub;
	if (EVP_PKEY_get_bits(d->key) != 1024 ||
	    (n = i2d_PUBKEY(d->key, NULL)) != (int)sizeof(d->pub) ||
	    i2d_PUBKEY(d->key, &p) != n) {
		fprintf(stderr, "cinder-sim: %s: not an RSA-1024 key\n", path);
		return -1;
	}
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
init_dev(struct sim *s, struct sim_dev *d, const char *id)
{
	const struct sim_opts *o = s->o;
	struct fw_app_config cfg;
	int i, hi, lo;

	memset(d, 0, sizeof(*d));
	d->sim = s;
	d->fd = -1;
	snprintf(d->id, sizeof(d->id), "%s", id);
	if (strlen(id) != 24 || load_device(s, d, id) != 0)
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < FW_DEVICE_ID_LEN; i++) {
		if ((hi = hexval(id[2 * i])) < 0 ||
		    (lo = hexval(id[2 * i + 1])) < 0)
			return -1;
		cfg.dev.id[i] = (uint8_t)(hi << 4 | lo);
	}
	cfg.dev.product_id = 3;
	cfg.dev.product_version = 0xffff;
	cfg.dev.platform_id = 3;
	cfg.modules = &s->modules;
	cfg.updates_enabled = !o->updates_disabled;
	cfg.fast_ota = true;
	cfg.devos3 = o->devos3;
	cfg.dev.ota_chunk_size = o->ota_chunk_size;
	cfg.notify = on_note;
	cfg.notify_arg = d;

	d->port.ctx = d;
	d->port.net_connect = p_connect;
	d->port.net_send = p_send;
	d->port.net_recv = p_recv;
	d->port.net_close = p_close;
	d->port.millis = p_millis;
	d->port.random = p_random;
	d->port.flash_read = p_flash_read;
	d->port.flash_write = p_flash_write;
	d->port.flash_erase = p_flash_erase;
	d->port.flash_size = o->max_binary != 0 ? o->max_binary : FLASH_SIZE;
	d->port.crypto = &s->crypto;
	d->port.crypto_ctx = d;
	fw_app_init(&d->app, &d->port, &cfg);
	if (o->setup_early) {
		sim_app_setup(o->app, &d->app, &d->st, d->id);
		d->setup_done = true;
	}
	return 0;
}

static int
load_ids(struct sim *s)
{
	char path[4096], line[128], *ids = NULL, *nids;
	size_t cap = 0, n = 0, len, k;
	FILE *f;
	int r = -1;

	snprintf(path, sizeof(path), "%s/devices.txt", s->o->dir);
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "cinder-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		len = strcspn(line, "\r\n \t");
		line[len] = '\0';
		if (len == 0)
			continue;
		if (len != 24) {
			fprintf(stderr, "cinder-sim: %s: bad id %s\n", path,
				line);
			goto out;
		}
		if (s->o->count != 0 && n >= s->o->count)
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if (cap > SIZE_MAX / 25 ||
			    (nids = realloc(ids, cap * 25)) == NULL)
				goto out;
			ids = nids;
		}
		memcpy(ids + 25 * n++, line, 25);
	}
	if (s->o->count != 0 && n < s->o->count) {
		fprintf(stderr, "cinder-sim: only %zu devices in %s\n", n,
			path);
		goto out;
	}
	/* one allocation: devices never move (ports point into them) */
	if (n > 0 && (s->devs = calloc(n, sizeof(*s->devs))) == NULL)
		goto out;
	for (k = 0; k < n; k++) {
		if (init_dev(s, &s->devs[k], ids + 25 * k) != 0)
			goto out;
		s->n++;
	}
	r = 0;
out:
	free(ids);
	fclose(f);
	return r;
}

int
sim_run(const struct sim_opts *o)
{
	struct epoll_event evs[MAX_EVENTS], ev;
	struct sim s;
	sigset_t mask;
	int sfd = -1, n, i, timeout, rc = 1;
	uint32_t now;
	size_t k;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.ep = -1;
	/* fd 0 closed (a background start): keep it taken, so that no
	 * socket or signalfd lands on it and is read as commands */
	if (fcntl(0, F_GETFD) < 0 && open("/dev/null", O_RDONLY) != 0)
		return 1;
	/* one descriptor per device: allow as many as the hard limit */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &s.t0);
	s.crypto.server_encrypt = c_server_encrypt;
	s.crypto.device_decrypt = c_device_decrypt;
	s.crypto.server_verify = c_server_verify;
	s.crypto.device_pubkey = c_device_pubkey;
	s.ticks.delay = TICK_MS;
	s.pubs.delay = o->publish_period;
	fw_modules_default(&s.modules, o->system_version, o->app_requires,
			   o->have_app_hash ? o->app_hash : NULL);
	if (resolve(&s, o->server) != 0) {
		fprintf(stderr, "cinder-sim: cannot resolve %s\n", o->server);
		return 2;
	}
	if ((s.server_key = load_server_key(o->server_key)) == NULL) {
		fprintf(stderr, "cinder-sim: %s: not a public key (DER)\n",
			o->server_key);
		return 2;
	}
	if ((s.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		goto out;
	if (load_ids(&s) != 0)
		goto out;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		goto out;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = TAG_SIGNAL;
	if (epoll_ctl(s.ep, EPOLL_CTL_ADD, sfd, &ev) != 0)
		goto out;
	/* stdin: commands; a regular file or /dev/null cannot be polled */
	(void)fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	ev.events = EPOLLIN | EPOLLET;
	ev.data.ptr = TAG_STDIN;
	if (epoll_ctl(s.ep, EPOLL_CTL_ADD, 0, &ev) == 0)
		read_stdin(&s);

	now = now_ms(&s);
	for (k = 0; k < s.n; k++) {
		struct sim_dev *d = &s.devs[k];

		fw_app_start(&d->app, now);
		step_dev(d, now);
		fifo_push(&s.ticks, d, &d->tick, now);
		if (o->publish_name != NULL)
			fifo_push(&s.pubs, d, &d->pub_tick, now);
	}

	while (!s.quit) {
		struct sim_dev *d;
		uint32_t due = 0;
		bool have_due = false;

		now = now_ms(&s);
		timeout = -1;
		if (s.ticks.head != NULL) {
			due = s.ticks.head->tick.at;
			have_due = true;
		}
		if (s.pubs.head != NULL &&
		    (!have_due ||
		     (int32_t)(s.pubs.head->pub_tick.at - due) < 0)) {
			due = s.pubs.head->pub_tick.at;
			have_due = true;
		}
		if (have_due)
			timeout =
				(int32_t)(due - now) > 0 ? (int)(due - now) : 0;
		if (s.again != NULL)
			timeout = 0;
		n = epoll_wait(s.ep, evs, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR)
			goto out;
		now = now_ms(&s);
		for (i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;

			if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) > 0)
					s.quit = true;
			} else if (tag == TAG_STDIN) {
				read_stdin(&s);
			} else {
				on_socket(tag, evs[i].events, now);
			}
		}
		/* devices whose last read filled the buffer */
		while ((d = s.again) != NULL) {
			s.again = NULL;
			for (; d != NULL;) {
				struct sim_dev *next = d->again_next;

				d->in_again = false;
				d->again_next = NULL;
				step_dev(d, now);
				d = next;
			}
			break; /* one round per loop, then poll again */
		}
		while ((d = fifo_pop_due(&s, &s.ticks, now)) != NULL) {
			step_dev(d, now);
			fifo_push(&s.ticks, d, &d->tick, now);
		}
		while ((d = fifo_pop_due(&s, &s.pubs, now)) != NULL) {
			publish_tick(d);
			step_dev(d, now);
			fifo_push(&s.pubs, d, &d->pub_tick, now);
		}
	}
	rc = 0;
out:
	for (k = 0; k < s.n; k++) {
		struct sim_dev *d = &s.devs[k];

		if (d->app.dev.state != FW_DEVICE_IDLE) {
			fw_device_stop(&d->app.dev);
			d->app.dev.last_err = 0;
			after_close(d);
		}
		flash_free(d);
		EVP_PKEY_free(d->key);
	}
	free(s.devs);
	EVP_PKEY_free(s.server_key);
	if (sfd >= 0)
		close(sfd);
	if (s.ep >= 0)
		close(s.ep);
	return rc;
}
