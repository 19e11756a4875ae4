/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's soak mode (bench/soak drives it): the devices main()
 * connected stay connected for the whole run while
 *   - they publish --rate events/s in all (publish_due, as the publish
 *     mode) that --streams SSE streams read and time;
 *   - --clients keep-alive HTTP clients make --calls function calls/s in
 *     all (http_send, as the http mode), each to a connected device;
 *   - --churn % of the devices per minute are closed and started again,
 *     one after the other, each a full handshake;
 *   - the devices' own keep-alive pings them after 15 s of silence, at
 *     moments spread evenly over the period before measuring begins
 *     (pings_spread).
 * Every --window seconds of the run gets one JSON line on stdout: what
 * was sent in it and what of that arrived, with p50/p99 of each, and how
 * many keep-alive pings the ~10 ms ticks sent (p50/p99/max), once
 * the window is GRACE past its end (a later arrival counts as lost, and
 * as late in the totals). A last line ("end") has the totals.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fw_app.h"

#include "loadgen.h"

#define GRACE_US 5000000u /* a window's arrivals: up to 5 s after it */
/* Nothing is sent in a window's last GUARD_US: what a loop turn sends
 * then carries a send time in the window it is counted in (the sends
 * due meanwhile go right after the boundary, timed from then). */
#define GUARD_US 20000u
/* connected devices looked at for one with nothing in flight */
#define CHURN_TRIES 64

struct win {
	uint64_t ev_sent, ev_busy, ev_got;
	uint64_t call_sent, call_skip, call_ok, call_err;
	uint64_t churned, handshakes, dropped;
	struct lat ev_lat, call_lat;
	/* per tick, the devices it stepped for their timers: how the
	 * keep-alive pings bunch (each kept as if microseconds) */
	struct lat tick_lat;
	double cpu0, gen0, cpu1, gen1; /* at its start, its end */
	bool done;
};

struct soak {
	const struct soak_opts *o;
	struct win *w;
	size_t nwin;
	uint64_t t_begin, win_us;
	uint64_t late, calls_due_n, churn_n;
	size_t call_rr, churn_rr, client_rr;
	struct dev **call_dev; /* per HTTP client: its call's device */
	char path[128];
};

/* The window of a send time, or nwin when outside the run. */
static size_t
win_of(const struct soak *s, uint64_t t)
{
	size_t k;

	if (t < s->t_begin)
		return s->nwin;
	k = (size_t)((t - s->t_begin) / s->win_us);
	return k < s->nwin ? k : s->nwin;
}

static struct win *
win_open(struct soak *s, uint64_t t)
{
	size_t k = win_of(s, t);

	return k < s->nwin && !s->w[k].done ? &s->w[k] : NULL;
}

static void
on_event(struct lg *g, uint64_t t_sent)
{
	struct soak *s = g->soak;
	struct win *w = win_open(s, t_sent);

	if (w == NULL) {
		s->late++;
		return;
	}
	w->ev_got++;
	lat_add(&w->ev_lat, now_us() - t_sent);
}

static void
on_answer(struct lg *g, const struct hc *c)
{
	struct soak *s = g->soak;
	struct win *w = win_open(s, c->t0);

	if (w == NULL) {
		s->late++;
		return;
	}
	if (strncmp(c->buf + 9, "200", 3) == 0) {
		w->call_ok++;
		lat_add(&w->call_lat, now_us() - c->t0);
	} else if (w->call_err++ < 3) {
		fprintf(stderr, "soak: call answered %.60s\n", c->buf);
	}
}

/* The next connected device from *rr on, or NULL if none is. */
static struct dev *
next_ready(struct lg *g, size_t *rr)
{
	size_t i;

	for (i = 0; i < g->ndev; i++) {
		struct dev *d = &g->devs[(*rr)++ % g->ndev];
		if (d->active && fw_device_is_ready(&d->app.dev))
			return d;
	}
	return NULL;
}

/* The calls due by now, each on a free client to a connected device; a
 * call due while every client waits is skipped (and counted). */
static void
calls_due(struct lg *g, struct soak *s, struct win *w)
{
	uint64_t due =
		(uint64_t)((double)(now_us() - s->t_begin) * s->o->calls / 1e6);

	while (s->calls_due_n < due) {
		struct hc *c = NULL;
		struct dev *d;
		size_t j;

		s->calls_due_n++;
		/* the clients in turn: none idles into the server's keep-alive
		 * timeout (60 s), which would close it under a request */
		for (j = 0; j < g->nhttp && c == NULL; j++) {
			struct hc *h = &g->http[s->client_rr++ % g->nhttp];
			if (!h->busy)
				c = h;
		}
		if (c == NULL || (d = next_ready(g, &s->call_rr)) == NULL) {
			w->call_skip++;
			continue;
		}
		snprintf(s->path, sizeof(s->path), "/v1/devices/%s/bench",
			 d->id);
		s->call_dev[c - g->http] = d;
		http_send(g, c);
		w->call_sent++;
	}
}

/* A call waits for d's answer. */
static bool
call_waits(struct lg *g, const struct soak *s, const struct dev *d)
{
	size_t j;

	for (j = 0; j < g->nhttp; j++)
		if (g->http[j].busy && s->call_dev[j] == d)
			return true;
	return false;
}

/* The devices due to be churned by now: closed and started again, a
 * full handshake. A device leaves with nothing of its own in flight, no
 * call waiting for it and its input read, so that the close is a FIN
 * after what it sent (a close with unread input is a reset, which can
 * drop its last event) and no call is cut short. */
static void
churn_due(struct lg *g, struct soak *s, struct win *w)
{
	uint64_t due = (uint64_t)((double)(now_us() - s->t_begin) *
				  s->o->churn / 100.0 * (double)g->ndev / 60e6);
	char buf[4096];

	while (s->churn_n < due) {
		struct dev *d = NULL;
		size_t i;

		for (i = 0; i < CHURN_TRIES && d == NULL; i++) {
			d = next_ready(g, &s->churn_rr);
			if (d != NULL && (!fw_device_tx_idle(&d->app.dev) ||
					  call_waits(g, s, d)))
				d = NULL;
		}
		s->churn_n++;
		if (d == NULL)
			continue;
		while (recv(d->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		dev_leave(g, d);
		dev_start(g, d);
		w->churned++;
	}
}

/* A count kept in a struct lat: its p quantile (lat_pct gives ms). */
static unsigned
count_pct(const struct lat *l, double p)
{
	return (unsigned)(lat_pct(l, p) * 1000.0 + 0.5);
}

static void
win_print(struct lg *g, struct soak *s, size_t k)
{
	struct win *w = &s->w[k];
	uint64_t ev_exp = w->ev_sent * g->nsse;

	lat_sort(&w->ev_lat);
	lat_sort(&w->call_lat);
	lat_sort(&w->tick_lat);
	printf("{\"window\":%zu,\"start_s\":%.0f,\"events_sent\":%" PRIu64
	       ",\"events_busy\":%" PRIu64 ",\"events_received\":%" PRIu64
	       ",\"events_lost\":%" PRIu64
	       ",\"events_p50_ms\":%.3f,\"events_p99_ms\":%.3f,"
	       "\"calls_sent\":%" PRIu64 ",\"calls_skipped\":%" PRIu64
	       ",\"calls_ok\":%" PRIu64 ",\"calls_err\":%" PRIu64
	       ",\"calls_lost\":%" PRIu64
	       ",\"calls_p50_ms\":%.3f,\"calls_p99_ms\":%.3f,"
	       "\"churned\":%" PRIu64 ",\"handshakes\":%" PRIu64
	       ",\"dropped\":%" PRIu64 ",\"ready\":%zu,"
	       "\"server_cpu_s\":%.3f,\"gen_cpu_s\":%.3f,"
	       "\"tick_pings_p50\":%u,\"tick_pings_p99\":%u,"
	       "\"tick_pings_max\":%u}\n",
	       k, (double)k * (double)s->win_us / 1e6, w->ev_sent, w->ev_busy,
	       w->ev_got, ev_exp > w->ev_got ? ev_exp - w->ev_got : 0,
	       lat_pct(&w->ev_lat, 0.5), lat_pct(&w->ev_lat, 0.99),
	       w->call_sent, w->call_skip, w->call_ok, w->call_err,
	       w->call_sent - w->call_ok - w->call_err,
	       lat_pct(&w->call_lat, 0.5), lat_pct(&w->call_lat, 0.99),
	       w->churned, w->handshakes, w->dropped, g->ready,
	       w->cpu1 - w->cpu0, w->gen1 - w->gen0,
	       count_pct(&w->tick_lat, 0.5), count_pct(&w->tick_lat, 0.99),
	       count_pct(&w->tick_lat, 1.0));
	fflush(stdout);
	free(w->ev_lat.v);
	free(w->call_lat.v);
	free(w->tick_lat.v);
	memset(&w->ev_lat, 0, sizeof(w->ev_lat));
	memset(&w->call_lat, 0, sizeof(w->call_lat));
	memset(&w->tick_lat, 0, sizeof(w->tick_lat));
	w->done = true;
}

/* The windows GRACE past their end (all of them: at the end of the
 * run, after the drain). */
static void
wins_close(struct lg *g, struct soak *s, bool all)
{
	size_t k;
	uint64_t now = now_us();

	for (k = 0; k < s->nwin; k++)
		if (!s->w[k].done &&
		    (all || now >= s->t_begin + (k + 1) * s->win_us + GRACE_US))
			win_print(g, s, k);
}

static bool
calls_idle(struct lg *g)
{
	size_t j;

	for (j = 0; j < g->nhttp; j++)
		if (g->http[j].busy)
			return false;
	return true;
}

/* Greatest common divisor, for spread_stride(). */
static size_t
gcd(size_t a, size_t b)
{
	while (b != 0) {
		size_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* A step through n devices, prime to n, near n times the golden ratio's
 * fraction: devices 0, 1, 2, ... at moments 0, k, 2k, ... (mod n) land
 * far apart from one another whatever their number. */
static size_t
spread_stride(size_t n)
{
	size_t k = (size_t)((double)n * 0.6180339887);

	while (k > 1 && gcd(k, n) != 1)
		k--;
	return k > 0 ? k : 1;
}

/*
 * Devices that connected in one storm have heard from the server last at
 * about the same moment, so their keep-alive pings fall due together
 * every 15 s: a few ticks a period with thousands of pings each. A
 * fleet's devices ping at moments of their own, and the windows must be
 * alike to be compared: so before measuring, each connected device
 * sends one ping at its own moment, evenly over one keep-alive period;
 * its answer sets when its next falls due.
 *
 * The moments do not follow the devices' order. The calls go round the
 * devices in that order (10 a second: each device once in 1,000 s), and
 * a call moves its device's pings to the moment of the call. Spread in
 * order, the first devices called were those whose pings came first in
 * the period: the calls emptied one stretch of the period after another
 * while the ticks elsewhere kept their spread devices and gained called
 * ones, and the busiest ticks grew from ~165 to ~260 pings until every
 * device had been called (with the 200 ms tick of then;
 * docs/benchmarks-log.md). With moment (j * k) mod n for device j, the
 * devices called in any stretch of time are spread over the whole
 * period, and the ticks stay even.
 *
 * The ticks of the spread go on into the measured run (*tick is the
 * soak's): a grid started afresh there would step, at its first tick,
 * every device due since the spread's last, up to two ticks' worth, and
 * those would ping together from then on.
 */
static void
pings_spread(struct lg *g, uint64_t *tick)
{
	const uint64_t span = FW_DEVICE_PING_AFTER * 1000ull;
	uint64_t t0 = now_us(), now;
	size_t *order, k = spread_stride(g->ndev), j;

	*tick = t0;
	if (g->ndev == 0)
		return;
	if ((order = malloc(g->ndev * sizeof(*order))) == NULL)
		die("out of memory");
	for (j = 0; j < g->ndev; j++)
		order[j * k % g->ndev] = j;
	j = 0;
	while (!g_stop && j < g->ndev) {
		loop_turn(g, 1, tick);
		now = now_us();
		while (j < g->ndev && now >= t0 + span * j / g->ndev) {
			struct dev *d = &g->devs[order[j++]];
			if (d->active && fw_device_is_ready(&d->app.dev) &&
			    fw_device_ping(&d->app.dev, p_millis(NULL)) == 0)
				dev_step(g, d);
		}
	}
	free(order);
	while (!g_stop && now_us() < t0 + span + 1000000u) /* answers */
		loop_turn(g, 1, tick);
}

int
soak_main(struct lg *g, const struct soak_opts *o)
{
	struct soak s;
	uint64_t t_end, tick, sent = 0, busy = 0, hs = 0, drops = 0, ticks;
	uint64_t tot[4] = {0};
	size_t j, cur = 0;

	if (o->window_s <= 0 || o->seconds < o->window_s || o->clients == 0 ||
	    o->streams == 0)
		die("soak needs --seconds >= --window > 0, --concurrency "
		    "and --streams above 0");
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.win_us = (uint64_t)(o->window_s * 1e6);
	s.nwin = (size_t)((o->seconds * 1e6 + (double)s.win_us - 1) /
			  (double)s.win_us);
	if ((s.w = calloc(s.nwin, sizeof(*s.w))) == NULL)
		die("out of memory");
	g->soak = &s;
	g->path = s.path;
	g->method = "POST";
	g->body = "arg=soak";
	g->paced = true;
	g->tick_us = SOAK_TICK_US;
	g->measuring = true; /* handshakes and drops are counted */

	if ((g->sse = calloc(o->streams, sizeof(*g->sse))) == NULL)
		die("out of memory");
	for (j = 0; j < o->streams; j++)
		sse_open(g, &g->sse[j], o->sse_path);
	g->nsse = o->streams;
	if (!run_until(g, now_us() + 60000000ull, 0, 0, streams_up))
		die("SSE streams did not open");
	http_clients_open(g, o->clients);
	if ((s.call_dev = calloc(o->clients, sizeof(*s.call_dev))) == NULL)
		die("out of memory");
	g->on_event = on_event;
	g->on_answer = on_answer;

	pings_spread(g, &tick);
	printf("# measuring\n");
	fflush(stdout);
	s.t_begin = now_us();
	ticks = g->ticks;
	t_end = s.t_begin + (uint64_t)(o->seconds * 1e6);
	g->sent = g->busy = g->handshakes = g->hs_failed = 0;
	s.w[0].cpu0 = proc_cpu(o->pid);
	s.w[0].gen0 = self_cpu();
	while (!g_stop && now_us() < t_end) {
		uint64_t now;
		size_t k;
		struct win *w;

		loop_turn(g, 1, &tick);
		now = now_us();
		k = win_of(&s, now);
		if (k >= s.nwin)
			break;
		if (k != cur) { /* a new window: the CPU from here on */
			s.w[cur].cpu1 = s.w[k].cpu0 = proc_cpu(o->pid);
			s.w[cur].gen1 = s.w[k].gen0 = self_cpu();
			cur = k;
		}
		w = &s.w[cur];
		if (g->ticks != ticks) {
			ticks = g->ticks;
			lat_add(&w->tick_lat, g->tick_timed);
		}
		if (now + GUARD_US < s.t_begin + (k + 1) * s.win_us) {
			publish_due(g, o->rate, s.t_begin);
			calls_due(g, &s, w);
			churn_due(g, &s, w);
		}
		/* what the shared counters gained, to this window */
		w->ev_sent += g->sent - sent;
		w->ev_busy += g->busy - busy;
		w->handshakes += g->handshakes - hs;
		w->dropped += g->hs_failed - drops;
		sent = g->sent;
		busy = g->busy;
		hs = g->handshakes;
		drops = g->hs_failed;
		wins_close(g, &s, false);
	}
	s.w[cur].cpu1 = proc_cpu(o->pid);
	s.w[cur].gen1 = self_cpu();
	/* the drain: the last window's arrivals, the calls in flight */
	run_until(g, now_us() + GRACE_US, 0, 0, calls_idle);
	run_until(g, now_us() + 1000000, 0, 0, NULL);
	wins_close(g, &s, true);
	for (j = 0; j < s.nwin; j++) {
		uint64_t want = s.w[j].ev_sent * g->nsse;

		tot[0] += want > s.w[j].ev_got ? want - s.w[j].ev_got : 0;
		tot[1] += s.w[j].call_sent - s.w[j].call_ok - s.w[j].call_err;
		tot[2] += s.w[j].call_err;
		tot[3] += s.w[j].churned;
	}
	printf("{\"end\":true,\"windows\":%zu,\"devices\":%zu,\"ready\":%zu,"
	       "\"streams\":%zu,\"events_sent\":%" PRIu64
	       ",\"events_lost\":%" PRIu64 ",\"calls_lost\":%" PRIu64
	       ",\"calls_err\":%" PRIu64 ",\"churned\":%" PRIu64
	       ",\"late\":%" PRIu64 "}\n",
	       s.nwin, g->ndev, g->ready, g->nsse, g->sent, tot[0], tot[1],
	       tot[2], tot[3], s.late);
	fflush(stdout);
	free(s.w);
	free(s.call_dev);
	g->soak = NULL;
	g->on_event = NULL;
	g->on_answer = NULL;
	g->path = NULL;
	if (g_stop) {
		fputs("cinder-loadgen: soak: stopped by a signal before its "
		      "end\n",
		      stderr);
		return 1;
	}
	return 0;
}
