/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's worker threads (handshake and idle modes) and B1s's
 * pinger: each worker is a struct lg of its own (loadgen.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <sched.h>

#include <openssl/evp.h>

#include "fw_err.h"
#include "loadgen.h"

/*
 * Before the run, so that a storm measures handshakes rather than key
 * handling: each device's RSA decrypt context (OpenSSL 3 fetches the
 * implementation for every new context). Ids sharing a key (consecutive,
 * see read_key_shared) share one context within a thread, never across.
 */
void
devs_prepare(struct lg *g)
{
	size_t i;

	for (i = 0; i < g->ndev; i++) {
		struct dev *d = &g->devs[i];
		if (i > 0 && d->key == d[-1].key) {
			d->dec = d[-1].dec;
			continue;
		}
		if ((d->dec = pkey_ctx(d->key, 1)) == NULL)
			die("%s: no RSA decrypt context", d->id);
	}
}

/* The pinger: the pings due now, one device after the other, each every
 * ping_us. A device whose last ping is still out skips its turn. */
static void
ping_due(struct lg *g)
{
	uint64_t now = now_us(), step = g->ping_us / g->ndev;

	if (g->ping_next_t == 0 || g->ping_next_t + g->ping_us < now)
		g->ping_next_t = now; /* first, or late by a round: no burst */
	while (g->ping_next_t <= now) {
		struct dev *d = &g->devs[g->ping_next++ % g->ndev];
		g->ping_next_t += step ? step : 1;
		if (d->ping_out || !fw_device_is_ready(&d->app.dev))
			continue;
		d->ping_pongs = d->app.dev.pongs;
		if (fw_device_ping(&d->app.dev, p_millis(NULL)) != 0) {
			g->ping_busy++;
			continue;
		}
		d->ping_out = true;
		d->ping_t0 = now_us();
		if (g->ping_t_first == 0)
			g->ping_t_first = d->ping_t0;
		g->pings++;
		dev_step(g, d);
	}
}

/*
 * Each worker is a struct lg of its own: an epoll set, a slice of the
 * devices, its counters and latencies, the server key's contexts. The
 * main thread starts them, watches pub_ready, flips w_measure and w_ping,
 * and merges the counters once they are joined. The library's scratch
 * buffers are per thread (FW_SCRATCH in firmware-stubs/lib/fw_util.h).
 */

/*
 * A device key's first RSA private operation costs about twice a later
 * one (OpenSSL sets up the key's Montgomery contexts and its blinding
 * then), and the blinding belongs to the thread that made it. So each
 * worker decrypts once with each of its keys before the storm: the storm
 * then costs the generator what a handshake costs, not key setup.
 */
static void
keys_warm(struct lg *w)
{
	static const uint8_t msg[40] = "cinder-loadgen key warm-up";
	uint8_t ct[512], pt[512];
	size_t i, n, m;

	for (i = 0; i < w->ndev; i++) {
		struct dev *d = &w->devs[i];
		EVP_PKEY_CTX *x;
		if (i > 0 && d->dec == d[-1].dec)
			continue;
		if ((x = pkey_ctx(d->key, 0)) == NULL)
			die("%s: no RSA encrypt context", d->id);
		n = sizeof(ct);
		m = sizeof(pt);
		if (EVP_PKEY_encrypt(x, ct, &n, msg, sizeof(msg)) != 1 ||
		    EVP_PKEY_decrypt(d->dec, pt, &m, ct, n) != 1 ||
		    m != sizeof(msg))
			die("%s: RSA warm-up failed", d->id);
		EVP_PKEY_CTX_free(x);
	}
}

/* Keep-alive pings of w's devices answered so far. */
static uint64_t
devs_pongs(const struct lg *w)
{
	uint64_t n = 0;
	size_t j;

	for (j = 0; j < w->ndev; j++)
		n += w->devs[j].app.dev.pongs;
	return n;
}

/* The main thread flipped w_measure (or the worker quits while
 * measuring): count the pings answered in the measured phase. */
static void
measure_flip(struct lg *w, bool on)
{
	uint64_t n = devs_pongs(w);

	if (on)
		w->pongs_at = n;
	else
		w->pongs += n - w->pongs_at;
	w->measuring = on;
}

static void *
worker_main(void *arg)
{
	struct lg *w = arg;
	struct timespec ms = {0, 1000000};
	uint64_t last_tick;
	size_t j;

	keys_warm(w);
	__atomic_store_n(&w->pub_warm, true, __ATOMIC_RELEASE);
	while (!g_stop && !__atomic_load_n(&w->go, __ATOMIC_ACQUIRE))
		nanosleep(&ms, NULL);
	last_tick = now_us();
	if (hs_loop && !w->pinger) {
		for (w->next_dev = 0; w->next_dev < w->conc; w->next_dev++)
			dev_start(w, &w->devs[w->next_dev]);
	} else {
		for (j = 0; j < w->ndev; j++)
			dev_start(w, &w->devs[j]);
	}
	while (!g_stop && !atomic_load(&w_quit)) {
		bool ping = w->pinger && atomic_load(&w_ping);
		int timeout = 50;

		if (atomic_load(&w_measure) != w->measuring)
			measure_flip(w, !w->measuring);
		if (ping) {
			/* the next ping, rounded up to a millisecond: pings
			 * go out in small batches, none waits for a spin */
			uint64_t now = now_us();
			timeout = w->ping_next_t > now
					  ? (int)((w->ping_next_t - now + 999) /
						  1000)
					  : 1;
			if (timeout > 50)
				timeout = 50;
		}
		loop_turn(w, timeout, &last_tick);
		if (ping)
			ping_due(w);
		else
			w->ping_next_t = 0;
		__atomic_store_n(&w->pub_ready, w->ready, __ATOMIC_RELAXED);
	}
	if (w->measuring)
		measure_flip(w, false);
	return NULL;
}

/* Split g's devices over n workers (conc devices connecting at once in
 * the handshake mode) and prepare them; workers_run() starts them. */
struct lg *
workers_make(struct lg *g, size_t n, size_t conc)
{
	struct lg *ws = calloc(n, sizeof(*ws));
	size_t i, j, base = 0;

	if (ws == NULL)
		die("out of memory");
	for (i = 0; i < n; i++) {
		struct lg *w = &ws[i];
		size_t share = g->ndev / n + (i < g->ndev % n);

		*w = *g;
		memset(&w->lat, 0, sizeof(w->lat));
		memset(w->pk_ctx, 0, sizeof(w->pk_ctx));
		memset(w->pk_key, 0, sizeof(w->pk_key));
		w->ready = w->active = w->pub_ready = 0;
		w->handshakes = w->hs_failed = 0;
		w->devs = g->devs + base;
		w->due = g->due + base;
		w->due_min = 0;
		w->dev_base = g->dev_base + base;
		w->ndev = share;
		w->conc = conc / n + (i < conc % n);
		if (w->conc > share)
			w->conc = share;
		base += share;
		if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
			die("epoll: %s", strerror(errno));
		for (j = 0; j < w->ndev; j++)
			w->devs[j].lg = w;
		devs_prepare(w);
	}
	return ws;
}

void
workers_run(struct lg *ws, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) !=
		    0)
			die("pthread_create failed");
}

void
workers_wait_warm(struct lg *ws, size_t n)
{
	struct timespec ms = {0, 1000000};
	size_t i;

	for (i = 0; i < n; i++)
		while (!g_stop &&
		       !__atomic_load_n(&ws[i].pub_warm, __ATOMIC_ACQUIRE))
			nanosleep(&ms, NULL);
}

/* Wait until the workers' keys are warm, then let them start. */
void
workers_go(struct lg *ws, size_t n)
{
	size_t i;

	workers_wait_warm(ws, n);
	for (i = 0; i < n; i++)
		__atomic_store_n(&ws[i].go, true, __ATOMIC_RELEASE);
}

size_t
workers_ready(struct lg *ws, size_t n)
{
	size_t i, r = 0;

	for (i = 0; i < n; i++)
		r += __atomic_load_n(&ws[i].pub_ready, __ATOMIC_RELAXED);
	return r;
}

/* Wait (polling every millisecond) until want devices are ready. */
bool
workers_wait_ready(struct lg *ws, size_t n, size_t want, uint64_t until)
{
	struct timespec ms = {0, 1000000};
	uint64_t check = now_us() + 1000000u;

	while (!g_stop && now_us() < until) {
		if (workers_ready(ws, n) >= want)
			return true;
		if (now_us() >= check) { /* the server exited: no point */
			check = now_us() + 1000000u;
			if (server_gone(ws->pid))
				break;
		}
		nanosleep(&ms, NULL);
	}
	return workers_ready(ws, n) >= want;
}

/*
 * The pinger measures the server's answer time, not how long the
 * scheduler keeps the generator's own pinger from running while the
 * storm's workers and the server fill the cores: it runs SCHED_FIFO when
 * allowed (it needs a few percent of a core). Whether it could is in
 * the result (ping_rt).
 */
bool
ping_realtime(pthread_t t)
{
	struct sched_param sp;

	memset(&sp, 0, sizeof(sp));
	sp.sched_priority = 1;
	return pthread_setschedparam(t, SCHED_FIFO, &sp) == 0;
}

/* The answered pings' p99 for each second of the storm (sent in it),
 * as a JSON array: where in the storm the slow answers were. */
char *
ping_seconds_json(const struct lg *p)
{
	size_t k, i, nsec = 0, len = 0;
	struct lat sec;
	char *out = NULL;
	FILE *f = open_memstream(&out, &len);

	memset(&sec, 0, sizeof(sec));
	for (i = 0; i < p->ping_when.n; i++)
		if (p->ping_when.v[i] / 1000u + 1 > nsec)
			nsec = p->ping_when.v[i] / 1000u + 1;
	if (f == NULL)
		die("out of memory");
	fprintf(f, "\"ping_p99_ms_by_s\":[");
	for (k = 0; k < nsec; k++) {
		sec.n = 0;
		for (i = 0; i < p->ping_when.n; i++)
			if (p->ping_when.v[i] / 1000u == k)
				lat_add(&sec, p->lat.v[i]);
		lat_sort(&sec);
		fprintf(f, "%s%.1f", k ? "," : "", lat_pct(&sec, 0.99));
	}
	fprintf(f, "],");
	fclose(f);
	free(sec.v);
	return out;
}

/* CPU seconds of one thread so far (the pinger's share of the storm) */
double
thread_cpu(pthread_t t)
{
	clockid_t c;
	struct timespec ts;

	if (pthread_getcpuclockid(t, &c) != 0 || clock_gettime(c, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
sleep_until(uint64_t until)
{
	struct timespec ms = {0, 10000000};

	while (!g_stop && now_us() < until)
		nanosleep(&ms, NULL);
}

/* Join the workers (w_quit set) and add their counters into g. */
void
workers_join(struct lg *g, struct lg *ws, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct lg *w = &ws[i];
		size_t k;
		pthread_join(w->thread, NULL);
		g->ready += w->ready;
		g->handshakes += w->handshakes;
		g->hs_failed += w->hs_failed;
		g->pongs += w->pongs;
		for (k = 0; k < w->lat.n; k++)
			lat_add(&g->lat, w->lat.v[k]);
	}
}
