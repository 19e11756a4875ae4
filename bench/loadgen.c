/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen: the benchmark suite's load generator (bench/run drives
 * it). One process and level-triggered epoll sets; it prints its own CPU
 * (all threads) with the result. The handshake and idle modes split the
 * devices over --threads workers (default: one per online CPU), each with
 * its own epoll set and its own share of the devices, so that a storm's
 * device-side RSA is not one thread's work; the other modes run in one
 * thread, where it is enough.
 *
 * Simulated devices are the firmware library's fw_app (the same code as
 * cinder-sim) with OpenSSL doing the handshake's RSA. Around them:
 *   - a handshake loop (C devices connecting at once, each closing as soon
 *     as the server's Hello arrives and a fresh device taking its place);
 *   - idle sessions (all devices connected, then held);
 *   - a publisher at a fixed aggregate rate (64-byte events carrying their
 *     send time) and SSE readers that time every event they get;
 *   - keep-alive HTTP clients (function calls, variable reads, or any
 *     fixed request, e.g. against bench/mhd_hello);
 *   - B5's webhook pair: an API event publisher (events mode: N events
 *     over keep-alive clients, each carrying its send time) and the
 *     webhook target (sink mode, loadgen_hook.c), which times each
 *     delivery from that send time;
 *   - a small MQTT 3.1.1 client (publishers, subscribers, idle
 *     connections) for the Mosquitto peer;
 *   - OTA (B6): every device is flashed one module image through the
 *     flash API (a multipart PUT per device, what `particle flash`
 *     sends, from a few keep-alive clients) and receives it as the
 *     simulator does (fast OTA, chunk CRCs, validation); the devices
 *     write into one shared flash area (the image is the same for all,
 *     so the area converges to it) and stop once installed instead of
 *     rebooting;
 *   - B7's cold start (cold mode): one device, armed before the server
 *     starts, probes the device port until it accepts, then handshakes;
 *     it prints when each happened (CLOCK_MONOTONIC), so that the
 *     caller, who timed the server's exec on the same clock, reads
 *     exec -> listening and exec -> first handshake served.
 * The server's CPU (utime + stime of --pid from /proc; its main thread's
 * alone as server_main_cpu_s, cinderd's event loop) and RSS are read at
 * the start and the end of the measured phase. Output: one JSON object.
 *
 * This file has main() (the modes' sequence), the loop and the small
 * helpers all use; the parts above have files of their own (loadgen.h
 * lists them).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fw_app.h"

#include "loadgen.h"

volatile sig_atomic_t g_stop;

/* the main thread's word to the workers (loadgen.h) */
atomic_bool w_quit, w_measure, w_ping;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("cinder-loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

uint64_t
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

uint32_t
p_millis(void *ctx)
{
	(void)ctx;
	return (uint32_t)(now_us() / 1000u) + 1;
}

void
lat_add(struct lat *l, uint64_t us)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 65536;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			die("out of memory");
	}
	l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void
lat_sort(struct lat *l)
{
	if (l->n > 0)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
}

double
lat_pct(const struct lat *l, double p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return l->v[i] / 1000.0;
}

/* ---- sockets ---------------------------------------------------------- */

static void
parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *c = strrchr(s, ':');

	if (c == NULL || (size_t)(c - s) >= sizeof(host))
		die("bad address %s (HOST:PORT)", s);
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(c + 1));
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		die("bad address %s", s);
}

void
ep_set(struct lg *g, int fd, uint32_t mask, void *ptr, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = mask;
	ev.data.ptr = ptr;
	if (epoll_ctl(g->ep, op, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* A blocking connect (clients of the HTTP API and MQTT), then
 * non-blocking with Nagle off. */
int
tcp_open(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0)
		die("connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* ---- the loop ----------------------------------------------------------- */

static void
make_event(char *out)
{
	int n = snprintf(out, EVENT_SIZE + 1, "T%" PRIu64 "-", now_us());

	memset(out + n, 'x', (size_t)(EVENT_SIZE - n));
	out[EVENT_SIZE] = '\0';
}

/* Publish what is due at the aggregate rate: devices round-robin, or the
 * MQTT publishers. */
void
publish_due(struct lg *g, double rate, uint64_t t_begin)
{
	uint64_t due = (uint64_t)((double)(now_us() - t_begin) * rate / 1e6);
	size_t npub = 0, i;
	char ev[EVENT_SIZE + 1];

	for (i = 0; i < g->nmq; i++)
		npub += g->mqs[i].role == MQ_PUB;
	while (g->sent + g->busy < due) {
		make_event(ev);
		if (npub > 0) {
			struct mq *m = &g->mqs[g->rr++ % npub];
			if (mq_publish(g, m, ev, EVENT_SIZE))
				g->sent++;
			else
				g->busy++;
			continue;
		}
		{
			struct dev *d = &g->devs[g->rr++ % g->ndev];
			if (fw_device_publish(&d->app.dev, EVENT_NAME, true,
					      (const uint8_t *)ev,
					      EVENT_SIZE) == 0) {
				g->sent++;
				(void)fw_device_step(&d->app.dev,
						     p_millis(NULL));
				dev_rearm(d);
				dev_sched(g, d);
			} else {
				g->busy++;
			}
		}
	}
}

static void
dispatch(struct lg *g, struct epoll_event *e)
{
	enum kind k = *(enum kind *)e->data.ptr;

	if (k == K_DEV) {
		struct dev *d = e->data.ptr;
		if (e->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			d->writable = true;
		dev_step(g, d);
	} else if (k == K_HTTP) {
		http_read(g, e->data.ptr);
	} else if (k == K_SSE) {
		sse_read(g, e->data.ptr);
	} else if (k == K_SINK) {
		sink_read(g, e->data.ptr);
	} else if (k == K_LISTEN) {
		sink_accept(g, e->data.ptr);
	} else {
		mq_read(g, e->data.ptr);
	}
}

/* The devices whose timers are due by now (dev_sched), stepped. */
static void
devs_due(struct lg *g, uint64_t now)
{
	size_t j, timed = 0;

	g->ticks++;
	g->tick_timed = 0;
	if (now < g->due_min)
		return;
	g->due_min = UINT64_MAX; /* the steps and the others lower it */
	for (j = 0; j < g->ndev; j++) {
		if (g->due[j] > now) {
			if (g->due[j] < g->due_min)
				g->due_min = g->due[j];
		} else if (g->devs[j].active) {
			timed += g->due[j] != 0;
			dev_step(g, &g->devs[j]);
		}
	}
	g->tick_timed = timed;
}

/*
 * One turn of the loop: wait up to timeout ms, handle what came, run the
 * device timers that are due every g->tick_us (TICK_US unless set; the
 * soak's is SOAK_TICK_US). The ticks keep to a grid from the first
 * *last_tick, and a tick steps the devices due by its grid time, not by
 * when the loop came to it, so their period is exact and does not
 * depend on the load. A period of a whole number of ms keeps a tick on
 * the same sends of a paced rate (exactly 200 ms against the soak's
 * events, one each 10 ms, put one in 20 behind the tick's pings and
 * doubled their p99): hence the periods' odd lengths.
 */
void
loop_turn(struct lg *g, int timeout, uint64_t *last_tick)
{
	struct epoll_event evs[256];
	uint64_t now, period = g->tick_us > 0 ? g->tick_us : TICK_US;
	int n, i;

	n = epoll_wait(g->ep, evs, 256, timeout);
	for (i = 0; i < n; i++)
		dispatch(g, &evs[i]);
	now = now_us();
	if (now - *last_tick >= period) { /* device timers */
		long rss;
		*last_tick += (now - *last_tick) / period * period;
		if (g->image != NULL && g->measuring &&
		    (rss = proc_rss_kb(g->pid)) > g->rss_peak)
			g->rss_peak = rss;
		if (g->ndev > 0)
			devs_due(g, *last_tick);
		if (g->mq_ping_us > 0 && g->measuring)
			mq_ping_due(g);
	}
}

/* Run the loop until cond() or the deadline; publish at rate when > 0. */
bool
run_until(struct lg *g, uint64_t until, double rate, uint64_t t_begin,
	  bool (*cond)(struct lg *))
{
	uint64_t last_tick = now_us();

	while (!g_stop && now_us() < until) {
		if (cond != NULL && cond(g))
			return true;
		loop_turn(g, rate > 0 ? 1 : 50, &last_tick);
		if (rate > 0)
			publish_due(g, rate, t_begin);
	}
	return cond != NULL && cond(g);
}

static bool
all_flashed(struct lg *g)
{
	return g->flashed + g->ota_failed + g->http_err >=
	       g->puts_limit - g->puts_base;
}

static bool
all_ready(struct lg *g)
{
	return g->ready >= g->active;
}

/* Why want devices are not all ready: the reason (a signal, the
 * server's exit, the deadline) and devs_why() of n devices; exits. */
static void __attribute__((noreturn))
die_not_ready(const char *what, const struct dev *devs, size_t n, size_t ready,
	      size_t want, int pid, double waited_s)
{
	char why[512];

	devs_why(devs, n, why, sizeof(why));
	if (g_stop)
		die("stopped by a signal while connecting: %zu of %zu %s "
		    "ready (%s)",
		    ready, want, what, why);
	if (server_gone(pid))
		die("the server (pid %d) exited while connecting: %zu of %zu "
		    "%s ready (%s)",
		    pid, ready, want, what, why);
	die("only %zu of %zu %s ready after %.0f s (%s)", ready, want, what,
	    waited_s, why);
}

/* The loop until every started device is ready; it dies (saying why)
 * on a signal, when the server exits or after secs seconds. */
static void
wait_all_ready(struct lg *g, double secs)
{
	uint64_t t0 = now_us(), tick = t0, check = t0 + 1000000u;

	while (!all_ready(g)) {
		uint64_t now = now_us();
		if (g_stop || now >= t0 + (uint64_t)(secs * 1e6))
			break;
		if (now >= check) {
			check = now + 1000000u;
			if (server_gone(g->pid))
				break;
		}
		loop_turn(g, 50, &tick);
	}
	if (!all_ready(g))
		die_not_ready("devices", g->devs, g->ndev, g->ready, g->active,
			      g->pid, (double)(now_us() - t0) / 1e6);
}

static size_t want_sse_events;

static bool
streams_caught_up(struct lg *g)
{
	size_t i;

	for (i = 0; i < g->nsse; i++)
		if (g->sse[i].got < want_sse_events)
			return false;
	for (i = 0; i < g->nmq; i++)
		if (g->mqs[i].role == MQ_SUB && g->mqs[i].got < want_sse_events)
			return false;
	return true;
}

bool
streams_up(struct lg *g)
{
	size_t i;

	for (i = 0; i < g->nsse; i++)
		if (!g->sse[i].hdr_done)
			return false;
	for (i = 0; i < g->nmq; i++)
		if (!g->mqs[i].connacked)
			return false;
	return true;
}

static bool
events_done(struct lg *g)
{
	return g->http_ok + g->http_err >= g->req_limit;
}

/* events mode: req_limit API events over the keep-alive clients, each
 * client sending its next as its last is answered, or at rate events/s
 * in all on whichever clients are free. */
static bool
events_run(struct lg *g, double rate, uint64_t until)
{
	uint64_t t0 = now_us(), tick = t0;
	size_t j;

	if (rate <= 0) {
		for (j = 0; j < g->nhttp; j++)
			http_send(g, &g->http[j]);
		return run_until(g, until, 0, 0, events_done);
	}
	while (!g_stop && now_us() < until && !events_done(g)) {
		uint64_t due =
			(uint64_t)((double)(now_us() - t0) * rate / 1e6) + 1;
		for (j = 0; j < g->nhttp && g->req_sent < due; j++)
			if (!g->http[j].busy)
				http_send(g, &g->http[j]);
		loop_turn(g, 1, &tick);
	}
	return events_done(g);
}

static void
usage(void)
{
	fputs("usage: cinder-loadgen MODE [options]\n"
	      "modes: handshake | idle | publish | http | mqtt | ota |\n"
	      "       events | sink | cold | soak\n"
	      "  --dir DIR --server H:P --server-key FILE --count N\n"
	      "  --concurrency C   (handshake: devices connecting at once;\n"
	      "                     http: clients)\n"
	      "  --seconds S       measured phase\n"
	      "  --pid PID         the server whose CPU and RSS are measured\n"
	      "  --pg-pid PID      its database server's postmaster: the CPU\n"
	      "                    of it and its backends is measured too\n"
	      "  --api H:P --token T --path P (\"{id}\" = a device id)\n"
	      "  --method M --body B\n"
	      "  --targets N       http: calls go to the first N of the\n"
	      "                    --count devices only (default: all)\n"
	      "  --rate R --streams N --sse-path P   (publish)\n"
	      "  --mqtt H:P --qos 0|1 --subs N --pubs N --idle N (mqtt)\n"
	      "  --mqtt-ping MS    (mqtt) each idle client sends a PINGREQ\n"
	      "                    every MS, the clients staggered over it,\n"
	      "                    in the whole periods that end 0.5 s\n"
	      "                    before the measured phase does\n"
	      "  --src-addrs N     devices connect from 127.0.0.2..N+1\n"
	      "  --threads N       handshake, idle: worker threads, each\n"
	      "                    with its share of the devices (default:\n"
	      "                    online CPUs); other modes: 1\n"
	      "  --ping-dir DIR --ping-count N --ping-period MS   (idle)\n"
	      "                    N more devices connected before the\n"
	      "                    others, each pinging every MS (1000)\n"
	      "                    while those connect (ping_* figures)\n"
	      "  --image FILE      (ota) the module every device is flashed;\n"
	      "                    --concurrency: PUTs in flight;\n"
	      "                    --warmup K: the first K unmeasured\n"
	      "  --name E --events N   (events) N API events named E from\n"
	      "                    --concurrency keep-alive clients, at\n"
	      "                    --rate R in all (0: at once), within\n"
	      "                    --seconds; data = the send time (us)\n"
	      "  --port-file F --stats-file F --stall 0|1   (sink) a\n"
	      "                    webhook target on 127.0.0.1 (its port\n"
	      "                    in F); SIGUSR1 or SIGTERM writes\n"
	      "                    \"count p50_ms p99_ms cpu_s\" of the send\n"
	      "                    time -> request delays; --stall 1:\n"
	      "                    accept, never answer\n"
	      "  cold: --count 1; prints \"# armed\", probes --server\n"
	      "                    until it accepts (within --seconds),\n"
	      "                    then handshakes: listen_us, ready_us\n"
	      "                    (CLOCK_MONOTONIC)\n"
	      "  --window S --calls R --churn P   (soak) the devices stay\n"
	      "                    connected for --seconds, publishing\n"
	      "                    --rate events/s to --streams SSE\n"
	      "                    streams, answering R calls/s from\n"
	      "                    --concurrency clients, P% of them\n"
	      "                    reconnected a minute; a JSON line per\n"
	      "                    window of S seconds (bench/soak)\n",
	      stderr);
	exit(2);
}

/* What one struct lg owns alone: its server-key contexts, latencies and
 * epoll set (workers are copies of the main one, which owns the rest). */
static void
lg_free_own(struct lg *w)
{
	size_t k;

	for (k = 0; k < 3; k++)
		EVP_PKEY_CTX_free(w->pk_ctx[k]);
	free(w->lat.v);
	free(w->ping_when.v);
	if (w->ep >= 0)
		close(w->ep);
}

/* The devices a devs_load() read, their keys and decrypt contexts. */
static void
devs_free(struct lg *g)
{
	size_t j;

	for (j = 0; j < g->ndev; j++) {
		/* devs_prepare() shares a context along a run of one key */
		if (j == 0 || g->devs[j].dec != g->devs[j - 1].dec)
			EVP_PKEY_CTX_free(g->devs[j].dec);
		EVP_PKEY_free(g->devs[j].key);
		if (g->devs[j].fd >= 0)
			close(g->devs[j].fd);
	}
	free(g->devs);
	free(g->due);
}

/* Everything main() made, so that LeakSanitizer finds nothing at exit
 * (the tests run the generator in their ASan build). */
static void
lg_release(struct lg *g, struct lg *ws, size_t nws, struct lg *pws,
	   struct lg *pg)
{
	size_t i;

	for (i = 0; ws != NULL && i < nws; i++)
		lg_free_own(&ws[i]);
	free(ws);
	if (pws != NULL) {
		lg_free_own(pws);
		free(pws);
	}
	devs_free(pg);
	devs_free(g);
	lg_free_own(g);
	free(g->http);
	free(g->sse);
	free(g->mqs);
	free(g->image);
	EVP_PKEY_free(g->server_key);
	EVP_PKEY_free(last_key);
	last_key = NULL;
}

/* cold mode: see the top comment. The probe is a blocking connect on
 * loopback, refused at once until the server listens. */
static int
cold_main(struct lg *g, double seconds)
{
	uint64_t deadline = now_us() + (uint64_t)(seconds * 1e6), t_listen;
	unsigned probes = 0;
	int fd;

	printf("# armed\n");
	fflush(stdout);
	for (;;) {
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			die("socket: %s", strerror(errno));
		probes++;
		if (connect(fd, (struct sockaddr *)&g->dev_addr,
			    sizeof(g->dev_addr)) == 0)
			break;
		close(fd);
		if (errno != ECONNREFUSED)
			die("probe: %s", strerror(errno));
		if (g_stop || now_us() >= deadline)
			die("the server did not listen within %.0f s", seconds);
		sleep_until(now_us() + 200);
	}
	t_listen = now_us();
	close(fd);
	dev_start(g, &g->devs[0]);
	if (!run_until(g, deadline, 0, 0, all_ready))
		die("no handshake within %.0f s", seconds);
	printf("{\"mode\":\"cold\",\"listen_us\":%" PRIu64
	       ",\"ready_us\":%" PRIu64 ",\"probes\":%u}\n",
	       t_listen, now_us(), probes);
	return 0;
}

int
main(int argc, char **argv)
{
	struct lg g;
	const char *mode, *dir = NULL, *sse_path = "/v1/devices/events/bench";
	size_t count = 0, conc = 1, streams = 0, subs = 1, pubs = 1, idle = 0;
	double seconds = 5, rate = 0, server_cpu, me0, me1, main0, main1;
	long rss0, rss1, rss_before = 0, rss_ready = 0;
	double conn_s = 0, conn_cpu = 0, conn_gen = 0, conn_ping = 0;
	double pg0 = -1, pg_cpu = -1, conn_pg = -1;
	struct cpu_mark cm0;
	int pid = 0, pg_pid = 0, i;
	uint64_t t_begin, t_end, t_end_flash = 0;
	uint64_t settle_us = 0; /* http mode: waited for the store */
	bool settled = false;
	bool ok = true;
	const char *image = NULL, *ping_dir = NULL;
	const char *port_file = NULL, *stats_file = NULL;
	size_t warm = 0, nthreads = 0, ping_count = 0, ping_ms = 1000;
	uint64_t mq_ping_ms = 0;
	bool threaded, ping_rt = false;
	char *ping_by_s = NULL;
	struct lg *ws = NULL, *pws = NULL, pg;
	struct soak_opts so;

	memset(&g, 0, sizeof(g));
	memset(&so, 0, sizeof(so));
	if (argc < 2)
		usage();
	mode = argv[1];
	g.method = "GET";
	for (i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			usage();
		i++;
		if (!strcmp(k, "--dir"))
			dir = v;
		else if (!strcmp(k, "--server"))
			parse_addr(v, &g.dev_addr);
		else if (!strcmp(k, "--server-key"))
			g.server_key = read_key(v, true);
		else if (!strcmp(k, "--count"))
			count = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--concurrency"))
			conc = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(k, "--pid"))
			pid = atoi(v);
		else if (!strcmp(k, "--pg-pid"))
			pg_pid = atoi(v);
		else if (!strcmp(k, "--api"))
			parse_addr(v, &g.api_addr);
		else if (!strcmp(k, "--token"))
			g.token = v;
		else if (!strcmp(k, "--path"))
			g.path = v;
		else if (!strcmp(k, "--method"))
			g.method = v;
		else if (!strcmp(k, "--body"))
			g.body = v;
		else if (!strcmp(k, "--targets"))
			g.targets = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--rate"))
			rate = atof(v);
		else if (!strcmp(k, "--streams"))
			streams = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--sse-path"))
			sse_path = v;
		else if (!strcmp(k, "--mqtt"))
			parse_addr(v, &g.mq_addr);
		else if (!strcmp(k, "--qos"))
			g.qos = atoi(v);
		else if (!strcmp(k, "--subs"))
			subs = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--pubs"))
			pubs = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--idle"))
			idle = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--src-addrs"))
			g.nsrc = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--image"))
			image = v;
		else if (!strcmp(k, "--warmup"))
			warm = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--threads"))
			nthreads = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--ping-dir"))
			ping_dir = v;
		else if (!strcmp(k, "--ping-count"))
			ping_count = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--ping-period"))
			ping_ms = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--mqtt-ping"))
			mq_ping_ms = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--name"))
			g.ev_name = v;
		else if (!strcmp(k, "--events"))
			g.req_limit = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--port-file"))
			port_file = v;
		else if (!strcmp(k, "--stats-file"))
			stats_file = v;
		else if (!strcmp(k, "--stall"))
			g.stall = atoi(v) != 0;
		else if (!strcmp(k, "--window"))
			so.window_s = atof(v);
		else if (!strcmp(k, "--calls"))
			so.calls = atof(v);
		else if (!strcmp(k, "--churn"))
			so.churn = atof(v);
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((g.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll: %s", strerror(errno));
	fw_modules_default(&g.modules, 1512, 1512, NULL);
	g.pid = pid;
	if (!strcmp(mode, "sink")) {
		if (port_file == NULL || stats_file == NULL)
			die("sink needs --port-file and --stats-file");
		return sink_main(&g, port_file, stats_file);
	}
	if (!strcmp(mode, "events")) {
		if (g.ev_name == NULL || g.req_limit == 0 || g.token == NULL ||
		    strlen(g.ev_name) > 64 ||
		    strspn(g.ev_name, "abcdefghijklmnopqrstuvwxyz"
				      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789/_-.") != strlen(g.ev_name))
			die("events needs --token, --events N and --name (up "
			    "to 64 of [A-Za-z0-9/_.-])");
		g.path = "/v1/devices/events";
		g.method = "POST";
		g.paced = rate > 0;
	} else {
		g.ev_name = NULL;
	}
	if (!strcmp(mode, "ota")) {
		FILE *f;
		long sz;

		if (image == NULL)
			die("ota needs --image");
		if ((f = fopen(image, "rb")) == NULL)
			die("%s: %s", image, strerror(errno));
		if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) <= 0 ||
		    sz > (long)OTA_FLASH || fseek(f, 0, SEEK_SET) != 0)
			die("%s: empty or over %u bytes", image, OTA_FLASH);
		g.image_len = (size_t)sz;
		if ((g.image = malloc(g.image_len)) == NULL ||
		    fread(g.image, 1, g.image_len, f) != g.image_len)
			die("%s: cannot read", image);
		fclose(f);
	}
	threaded = count > 0 &&
		   (!strcmp(mode, "handshake") || !strcmp(mode, "idle"));
	if (nthreads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = threaded && cpus > 0 ? (size_t)cpus : 1;
	}
	if (nthreads > 1 && !threaded)
		die("--threads: only the handshake and idle modes use threads");
	if (nthreads > count && count > 0)
		nthreads = count;
	if (ping_count > 0 &&
	    (strcmp(mode, "idle") != 0 || ping_dir == NULL || ping_ms == 0))
		die("--ping-count needs the idle mode, --ping-dir and a "
		    "--ping-period above 0");
	memset(&pg, 0, sizeof(pg));
	if (count > 0) {
		if (dir == NULL || g.server_key == NULL)
			die("devices need --dir, --server and --server-key");
		pg = g; /* the pinger's settings, before g has devices */
		devs_load(&g, dir, count);
		if (!threaded)
			devs_prepare(&g);
	}
	if (ping_count > 0) {
		devs_load(&pg, ping_dir, ping_count);
		pg.pinger = true;
		pg.ping_us = (uint64_t)ping_ms * 1000u;
		pws = workers_make(&pg, 1, 0);
	}

	if (!strcmp(mode, "cold")) {
		if (count != 1)
			die("cold needs --count 1");
		i = cold_main(&g, seconds);
		lg_release(&g, ws, nthreads, pws, &pg);
		return i;
	}
	if (!strcmp(mode, "handshake")) {
		/* C devices at once; each ready one is replaced by the next */
		hs_loop = true;
		if (conc > count)
			conc = count;
		ws = workers_make(&g, nthreads, conc);
		workers_run(ws, nthreads);
		workers_go(ws, nthreads);
		sleep_until(now_us() + 1000000); /* warm-up */
	} else if (threaded) {
		/* every device connected and ready first: the storm. The
		 * ping devices connect before it and ping throughout. */
		uint64_t t, tp;
		ws = workers_make(&g, nthreads, 0);
		workers_run(ws, nthreads); /* they warm their keys and wait */
		if (pws != NULL) {
			workers_run(pws, 1);
			workers_go(pws, 1);
			ping_rt = ping_realtime(pws->thread);
			tp = now_us();
			if (!workers_wait_ready(pws, 1, ping_count,
						now_us() + 300000000ull)) {
				size_t ready = workers_ready(pws, 1);
				atomic_store(&w_quit, true);
				pthread_join(pws->thread, NULL);
				die_not_ready("ping devices", pws->devs,
					      ping_count, ready, ping_count,
					      pid,
					      (double)(now_us() - tp) / 1e6);
			}
			/* their post-connect sequence (Describe, time) */
			sleep_until(now_us() + 1000000);
		}
		workers_wait_warm(ws, nthreads);
		if (pws != NULL) {
			atomic_store(&w_ping, true);
			conn_ping = -thread_cpu(pws->thread);
		}
		cm0 = cpu_mark(pid);
		me0 = self_cpu();
		pg0 = tree_cpu(pg_pid);
		rss0 = proc_rss_kb(pid);
		t = now_us();
		workers_go(ws, nthreads);
		if (!workers_wait_ready(ws, nthreads, count,
					now_us() + 600000000ull)) {
			size_t ready = workers_ready(ws, nthreads);
			atomic_store(&w_quit, true);
			workers_join(&g, ws, nthreads);
			die_not_ready("devices", g.devs, count, ready, count,
				      pid, (double)(now_us() - t) / 1e6);
		}
		conn_s = (double)(now_us() - t) / 1e6;
		conn_cpu = cpu_since(pid, &cm0);
		conn_gen = self_cpu() - me0;
		conn_pg = cpu_diff(pg0, tree_cpu(pg_pid));
		atomic_store(&w_ping, false);
		if (pws != NULL)
			conn_ping += thread_cpu(pws->thread);
		rss_before = rss0;
		rss_ready = proc_rss_kb(pid);
	} else if (count > 0) {
		/* every device connected and ready first (this is also the
		 * reconnect storm when they all start at once) */
		size_t j;
		uint64_t t = now_us();
		cm0 = cpu_mark(pid);
		me0 = self_cpu();
		pg0 = tree_cpu(pg_pid);
		rss0 = proc_rss_kb(pid);
		for (j = 0; j < count; j++)
			dev_start(&g, &g.devs[j]);
		wait_all_ready(&g, 600);
		conn_s = (double)(now_us() - t) / 1e6;
		conn_cpu = cpu_since(pid, &cm0);
		conn_gen = self_cpu() - me0;
		conn_pg = cpu_diff(pg0, tree_cpu(pg_pid));
		rss_before = rss0;
		rss_ready = proc_rss_kb(pid);
	}

	if (!strcmp(mode, "soak")) {
		int rc;

		if (count == 0)
			die("soak needs devices (--count)");
		so.seconds = seconds;
		so.rate = rate;
		so.streams = streams;
		so.clients = conc;
		so.sse_path = sse_path;
		so.pid = pid;
		rc = soak_main(&g, &so);
		lg_release(&g, ws, nthreads, pws, &pg);
		return rc;
	}
	if (!strcmp(mode, "publish") || !strcmp(mode, "mqtt")) {
		size_t j;
		g.sse = calloc(streams ? streams : 1, sizeof(*g.sse));
		for (j = 0; j < streams; j++)
			sse_open(&g, &g.sse[j], sse_path);
		g.nsse = streams;
		if (!strcmp(mode, "mqtt")) {
			size_t n = pubs + subs + idle;
			rss_before = proc_rss_kb(pid);
			g.mqs = calloc(n, sizeof(*g.mqs));
			for (j = 0; j < n; j++)
				mq_open(&g, &g.mqs[j],
					j < pubs	  ? MQ_PUB
					: j < pubs + subs ? MQ_SUB
							  : MQ_IDLE,
					j);
			g.nmq = n;
			g.mq_idle0 = pubs + subs;
		}
		if (!run_until(&g, now_us() + 60000000ull, 0, 0, streams_up))
			die("streams did not open");
		run_until(&g, now_us() + 300000, 0, 0, NULL);
		if (!strcmp(mode, "mqtt"))
			rss_ready = proc_rss_kb(pid);
	}
	if (!strcmp(mode, "ota")) {
		size_t j;
		http_clients_open(&g, conc);
		/* settle: the post-connect events of the storm */
		run_until(&g, now_us() + 1000000, 0, 0, NULL);
		/* warm-up: the first devices are flashed unmeasured, so the
		 * upload path's buffers (HTTP, PostgreSQL, the allocator's
		 * high-water marks) are not counted as transfer state */
		if (warm > 0) {
			if (warm >= count)
				die("--warmup must be below --count");
			g.puts_limit = warm;
			for (j = 0; j < conc; j++)
				ota_put_send(&g, &g.http[j]);
			if (!run_until(&g, now_us() + 300000000ull, 0, 0,
				       all_flashed) ||
			    g.flashed != warm)
				die("warm-up: %" PRIu64 " of %zu flashed",
				    g.flashed, warm);
			run_until(&g, now_us() + 500000, 0, 0, NULL);
		}
		g.flashed = g.ota_failed = g.http_ok = g.http_err = 0;
		g.lat.n = 0;
		g.ota_inflight_max = g.ota_inflight;
		g.puts_base = warm;
		g.puts_limit = count;
	}
	if (g.ev_name != NULL)
		http_clients_open(&g, conc);
	if (!strcmp(mode, "http")) {
		size_t j;
		if (g.path == NULL)
			die("http needs --path");
		/* settle: the devices' post-connect sequence (Describe, and
		 * cinderd's second one 0.3-1 s after ready). A call before
		 * cinderd has a device's function list is a 404, and its 2 s
		 * row cache keeps that answer */
		if (count > 0) {
			run_until(&g, now_us() + 1000000, 0, 0, NULL);
			settle_us = store_settle(&g, 60000000ull);
			settled = true;
		}
		http_clients_open(&g, conc);
		g.measuring = false; /* warm-up: 0.3 s */
		for (j = 0; j < conc; j++)
			http_send(&g, &g.http[j]);
		run_until(&g, now_us() + 300000, 0, 0, NULL);
	}

	/* the measured phase (bench/run --perf starts perf on this line) */
	printf("# measuring\n");
	fflush(stdout);
	if (g.image != NULL) /* bench/run reads cinderd's state first */
		run_until(&g, now_us() + 300000, 0, 0, NULL);
	g.measuring = true;
	atomic_store(&w_measure, true);
	cm0 = cpu_mark(pid);
	main0 = proc_cpu_of(pid, pid);
	pg0 = tree_cpu(pg_pid);
	me0 = self_cpu();
	rss0 = proc_rss_kb(pid);
	t_begin = now_us();
	g.sent = g.busy = 0;
	if (mq_ping_ms > 0 && seconds > 0.5) {
		/* whole periods only, the last ending 0.5 s before the phase
		 * does (its answers in it too); none in a shorter phase */
		uint64_t span = (uint64_t)((seconds - 0.5) * 1e6);
		uint64_t per = mq_ping_ms * 1000u;
		if (span >= per) {
			g.mq_ping_us = per;
			g.mq_ping_t0 = t_begin + span % per;
			g.mq_ping_max = (g.nmq - g.mq_idle0) * (span / per);
		}
	}
	if (g.image != NULL) {
		size_t j;
		g.rss_peak = rss0;
		for (j = 0; j < g.nhttp; j++)
			ota_put_send(&g, &g.http[j]);
		ok = run_until(&g, t_begin + (uint64_t)(seconds * 1e6), 0, 0,
			       all_flashed) &&
		     g.flashed == g.ndev - warm;
		if (g.t_last_flashed > t_begin)
			t_end_flash = g.t_last_flashed;
	} else if (g.ev_name != NULL) {
		ok = events_run(&g, rate, t_begin + (uint64_t)(seconds * 1e6));
	} else if (rate > 0) {
		size_t j;
		for (j = 0; j < g.nsse; j++)
			g.sse[j].got = 0;
		for (j = 0; j < g.nmq; j++)
			g.mqs[j].got = 0;
		run_until(&g, t_begin + (uint64_t)(seconds * 1e6), rate,
			  t_begin, NULL);
		/* drain: up to 5 s for the last events */
		want_sse_events = g.sent;
		ok = run_until(&g, now_us() + 5000000, 0, 0, streams_caught_up);
	} else if (ws != NULL) {
		sleep_until(t_begin + (uint64_t)(seconds * 1e6));
	} else {
		run_until(&g, t_begin + (uint64_t)(seconds * 1e6), 0, 0, NULL);
	}
	t_end = now_us();
	server_cpu = cpu_since(pid, &cm0);
	main1 = proc_cpu_of(pid, pid);
	pg_cpu = cpu_diff(pg0, tree_cpu(pg_pid));
	me1 = self_cpu();
	rss1 = proc_rss_kb(pid);
	atomic_store(&w_measure, false);
	atomic_store(&w_quit, true);
	if (ws != NULL)
		workers_join(&g, ws, nthreads);
	if (pws != NULL) {
		size_t j;
		pthread_join(pws->thread, NULL);
		for (j = 0; j < pws->ndev; j++)
			pws->ping_lost += pws->devs[j].ping_out;
		ping_by_s = ping_seconds_json(pws); /* before the sort */
		lat_sort(&pws->lat);
	}
	lat_sort(&g.lat);
	{
		double el = (double)(t_end - t_begin) / 1e6;
		uint64_t recv = g.sse_got + g.mq_got;
		size_t nsub = g.nsse;
		for (size_t j = 0; j < g.nmq; j++)
			nsub += g.mqs[j].role == MQ_SUB;
		putchar('{');
		if (g.image != NULL)
			printf("\"image_bytes\":%zu,\"flashed\":%" PRIu64
			       ",\"ota_failed\":%" PRIu64
			       ",\"flash_s\":%.3f,\"inflight_max\":%" PRIu64
			       ",\"rss_peak_kb\":%ld,",
			       g.image_len, g.flashed, g.ota_failed,
			       t_end_flash > t_begin
				       ? (double)(t_end_flash - t_begin) / 1e6
				       : 0.0,
			       g.ota_inflight_max, g.rss_peak);
		printf("\"threads\":%zu,", ws != NULL ? nthreads : 1);
		if (settled)
			printf("\"store_settle_s\":%.2f,",
			       settle_us == UINT64_MAX
				       ? -1.0
				       : (double)settle_us / 1e6);
		if (pws != NULL)
			printf("\"ping_devices\":%zu,\"pings\":%" PRIu64
			       ",\"ping_answered\":%zu,\"ping_lost\":%" PRIu64
			       ",\"ping_busy\":%" PRIu64
			       ",\"ping_dropped\":%" PRIu64
			       ",\"ping_p50_ms\":%.3f,\"ping_p99_ms\":%.3f,"
			       "\"ping_max_ms\":%.3f,\"connect_ping_cpu_s\":%."
			       "3f,"
			       "\"ping_rt\":%s,",
			       pws->ndev, pws->pings, pws->lat.n,
			       pws->ping_lost, pws->ping_busy, pws->hs_failed,
			       lat_pct(&pws->lat, 0.5),
			       lat_pct(&pws->lat, 0.99),
			       lat_pct(&pws->lat, 1.0), conn_ping,
			       ping_rt ? "true" : "false");
		if (ping_by_s != NULL)
			fputs(ping_by_s, stdout);
		printf("\"connect_s\":%.3f,\"connect_cpu_s\":%.3f,"
		       "\"connect_gen_cpu_s\":%.3f,"
		       "\"rss_before_kb\":%ld,\"rss_ready_kb\":%ld,",
		       conn_s, conn_cpu, conn_gen, rss_before, rss_ready);
		printf("\"server_main_cpu_s\":%.3f,", main1 - main0);
		if (pg_pid > 0) /* -1: not readable */
			printf("\"pg_cpu_s\":%.2f,\"connect_pg_cpu_s\":%.2f,",
			       pg_cpu, conn_pg);
		/* keep-alive pings answered in the measured phase: the
		 * devices' own (idle), the idle clients' PINGREQs (mqtt) */
		printf("\"idle_pings\":%" PRIu64 ",", g.pongs + g.mq_pongs);
		if (mq_ping_ms > 0)
			printf("\"mqtt_pings_sent\":%" PRIu64 ",", g.mq_pings);
		printf("\"mode\":\"%s\",\"elapsed_s\":%.3f,\"server_cpu_s\":%."
		       "3f,"
		       "\"gen_cpu_s\":%.3f,\"rss_start_kb\":%ld,"
		       "\"rss_end_kb\":%ld,\"devices\":%zu,\"ready\":%zu,"
		       "\"handshakes\":%" PRIu64
		       ",\"dropped_sessions\":%" PRIu64 ",\"http_ok\":%" PRIu64
		       ",\"http_err\":%" PRIu64 ",\"sent\":%" PRIu64
		       ",\"gen_busy\":%" PRIu64 ",\"received\":%" PRIu64
		       ",\"expected\":%" PRIu64
		       ",\"complete\":%s,\"lat_n\":%zu,\"p50_ms\":%.3f,"
		       "\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
		       mode, el, server_cpu, me1 - me0, rss0, rss1, g.ndev,
		       g.ready, g.handshakes, g.hs_failed, g.http_ok,
		       g.http_err, g.sent, g.busy, recv, g.sent * nsub,
		       ok ? "true" : "false", g.lat.n, lat_pct(&g.lat, 0.5),
		       lat_pct(&g.lat, 0.99), lat_pct(&g.lat, 1.0));
		fflush(stdout);
	}
	free(ping_by_s);
	lg_release(&g, ws, nthreads, pws, &pg);
	if (g.ev_name != NULL && (!ok || g.http_err > 0)) {
		fprintf(stderr,
			"events: %" PRIu64 " of %" PRIu64 " answered 200\n",
			g.http_ok, g.req_limit);
		return 1;
	}
	return 0;
}
