/* SPDX-License-Identifier: MIT */
/*
 * The daemon: builds the components in dependency order (server key,
 * migrations, store, crypto pool, device registry, HTTP), runs the loop,
 * and takes them down in reverse. A stop (SIGTERM/SIGINT) drains: no new
 * connections, HTTP requests answered, device sessions closed with their
 * offline state written, pending database writes flushed (bounded by
 * STOP_GRACE_S), then the loop exits. A second signal exits at once.
 * Loop thread only.
 */
#include "config.h"

#include <sys/resource.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "api/http.h"
#include "api/rest.h"
#include "conf.h"
#include "crypto.h"
#include "cryptopool.h"
#include "daemon.h"
#include "err.h"
#include "events.h"
#include "evmem.h"
#include "evprio.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "healer/healer.h"
#include "webhook/webhook.h"
#include "xmalloc.h"

#define STOP_GRACE_S 10	  /* longest a clean stop may take */
#define MIGRATE_WAIT_S 30 /* how long start-up waits for PostgreSQL */

struct daemon {
	const struct conf *cfg;	       /* borrowed */
	struct event_base *base;       /* the loop */
	struct event *sig_term;	       /* SIGTERM */
	struct event *sig_int;	       /* SIGINT */
	struct event *sig_hup;	       /* SIGHUP: reopen the log */
	struct event *drain_ev;	       /* polls the store while stopping */
	struct event *deadline_ev;     /* hard stop after STOP_GRACE_S */
	struct crypto_key *server_key; /* server RSA-2048 key */
	struct store *store;	       /* PostgreSQL */
	struct cryptopool *pool;       /* RSA workers */
	struct registry *reg;	       /* device sessions */
	struct http *http;	       /* REST/SSE */
	struct rest *rest;	       /* REST routes and auth */
	struct events *events;	       /* event bus, SSE, subscriptions */
	struct webhook *webhooks;      /* webhook definitions and delivery */
	struct healer *healer;	       /* flashes and the safe-mode healer */
	bool stopping;		       /* a stop is under way */
	bool store_was_up;	       /* for outage log lines */
	int exit_status;	       /* what daemon_run returns */
};

/* daemon_note_start(): when main() began, and the CPU used before it */
static struct timespec start_t;
static double start_cpu_ms = -1;

void
daemon_note_start(void)
{
	struct rusage ru;

	clock_gettime(CLOCK_MONOTONIC, &start_t);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		start_cpu_ms =
			(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
				1e3 +
			(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
				1e3;
}

static void
status_cb(json_t *obj, void *arg)
{
	struct daemon *d = arg;
	struct store_stats ss;
	struct registry_stats rs;
	json_t *dev, *db;

	store_stats_get(d->store, &ss);
	db = json_pack(
		"{s:s, s:I, s:I, s:I, s:I}", "state", ss.up ? "up" : "down",
		"queries_ok", (json_int_t)ss.queries_ok, "queries_failed",
		(json_int_t)ss.queries_failed, "reconnects",
		(json_int_t)ss.reconnects, "queued", (json_int_t)ss.queued);
	json_object_set_new(obj, "database",
			    json_string(ss.up ? "up" : "down"));
	json_object_set_new(obj, "store", db);
	if (!ss.up)
		json_object_set_new(obj, "ok", json_false());
	if (d->reg != NULL) {
		registry_stats_get(d->reg, &rs);
		dev = json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			"s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			"connections", (json_int_t)rs.connections, "online",
			(json_int_t)rs.sessions_ready, "handshakes_active",
			(json_int_t)rs.handshakes_active, "accepted",
			(json_int_t)rs.accepted, "handshakes_ok",
			(json_int_t)rs.handshakes_ok, "handshakes_failed",
			(json_int_t)rs.handshakes_failed, "unknown_devices",
			(json_int_t)rs.unknown_devices, "key_mismatches",
			(json_int_t)rs.key_mismatches, "keepalive_timeouts",
			(json_int_t)rs.keepalive_timeouts, "replaced",
			(json_int_t)rs.replaced, "bytes_in",
			(json_int_t)rs.bytes_in, "bytes_out",
			(json_int_t)rs.bytes_out, "key_cache",
			(json_int_t)rs.key_cache, "key_cache_hits",
			(json_int_t)rs.key_cache_hits, "lingering",
			(json_int_t)rs.lingering, "forgotten",
			(json_int_t)rs.forgotten, "rows_read",
			(json_int_t)rs.rows_read, "accept_errors",
			(json_int_t)rs.accept_errors);
		json_object_set_new(obj, "devices", dev);
		json_object_set_new(obj, "device_port",
				    json_integer(registry_port(d->reg)));
	}
	if (d->rest != NULL)
		rest_status_fill(d->rest, obj);
	if (d->events != NULL)
		events_status_fill(d->events, obj);
	if (d->webhooks != NULL)
		webhook_status_fill(d->webhooks, obj);
	if (d->healer != NULL)
		healer_status_fill(d->healer, obj);
	if (d->stopping)
		json_object_set_new(obj, "stopping", json_true());
}

/* Stop, step 3: wait until the store has flushed its writes. */
static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct store_stats ss;
	struct timeval tv = {0, 50000};

	(void)fd;
	(void)what;
	store_stats_get(d->store, &ss);
	ss.queued += webhook_writes_waiting(d->webhooks);
	/* Stopped right after start: the first connection is still being
	   made; its writes go once it is up (deadline_ev bounds the wait). */
	if (ss.queued == 0 || (!ss.up && !ss.first_pending)) {
		if (ss.queued != 0)
			log_warn("stopping with %zu database writes not done "
				 "(%s)",
				 ss.queued,
				 ss.ever_up ? "database down"
					    : "database not connected yet");
		event_base_loopexit(d->base, NULL);
		return;
	}
	evtimer_add(d->drain_ev, &tv);
}

/* Stop, step 2: HTTP is drained; close device sessions. */
static void
http_stopped(void *arg)
{
	struct daemon *d = arg;

	registry_close_all(d->reg); /* writes offline for every device */
	drain_cb(-1, 0, d);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	log_warn("clean stop took longer than %d s; exiting", STOP_GRACE_S);
	event_base_loopexit(d->base, NULL);
}

void
daemon_stop(struct daemon *d)
{
	struct timeval grace = {STOP_GRACE_S, 0};

	if (d->stopping)
		return;
	d->stopping = true;
	log_notice("stopping: closing sessions and flushing writes");
	evtimer_add(d->deadline_ev, &grace);
	registry_stop_accepting(d->reg);
	cryptopool_stop(d->pool);
	if (d->http == NULL || http_stop(d->http, http_stopped, d) != 0)
		http_stopped(d);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		if (log_reopen() == 0)
			log_notice("log file reopened (SIGHUP)");
		return;
	}
	if (d->stopping) {
		log_warn("second stop signal: exiting now");
		event_base_loopbreak(d->base);
		return;
	}
	log_notice("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	daemon_stop(d);
}

/* Apply migrations, waiting a while for PostgreSQL to come up; *s keeps
   the connection for the store. */
static int
migrate_with_wait(const struct conf *cfg, struct store_startup *s)
{
	unsigned delay_ms = 200, waited_ms = 0;
	int r;

	for (;;) {
		r = store_migrate_keep(cfg->database_url, cfg->sql_dir, s);
		if (r != CINDER_ERR_UNAVAILABLE ||
		    waited_ms >= MIGRATE_WAIT_S * 1000)
			return r;
		if (waited_ms == 0)
			log_warn("database not reachable yet; waiting up to "
				 "%d s",
				 MIGRATE_WAIT_S);
		usleep(delay_ms * 1000);
		waited_ms += delay_ms;
		if (delay_ms < 2000)
			delay_ms *= 2;
	}
}

static void
mark_offline_done(int r, const struct store_result *res, void *arg)
{
	(void)res;
	(void)arg;
	if (r != 0)
		log_warn("could not reset stale online flags: %s", err_str(r));
}
/*
 * The loop with priorities (evprio.h): EVPRIO_BULK callbacks at most
 * EVPRIO_BULK_BATCH in a row before libevent polls again, so that a
 * reconnect storm's accepts and handshakes cannot hold a connected
 * device's frame for long.
 */
static struct event_base *
daemon_base_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base = NULL;

	if (ec == NULL)
		return NULL;
	if (event_config_set_max_dispatch_interval(ec, NULL, EVPRIO_BULK_BATCH,
						   EVPRIO_BULK) == 0)
		base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base != NULL && event_base_priority_init(base, EVPRIO_COUNT) != 0) {
		event_base_free(base);
		base = NULL;
	}
	return base;
}

/*
 * Config loop_nice: the loop thread's own nice value; 0 leaves the one
 * cinderd was started with. On Linux the nice value is per thread and
 * who 0 is the calling thread, so the crypto workers (started before
 * this) keep theirs; threads started later (libcurl's resolver) take
 * the loop's. Lowering the value needs CAP_SYS_NICE or RLIMIT_NICE
 * (systemd LimitNICE=); when refused, cinderd says so and runs on.
 *
 * In the B1s storm (2026-12-06) nice -19 cut the connected devices'
 * ping p50 tenfold or more and kept their p99 under 50 ms in each run;
 * nice -10 did not. The price: the loop wakes three times as often, and
 * on a quiet host cinderd spent about a quarter more CPU per handshake
 * (on a loaded one the storm was no slower). A nice
 * value only orders the loop against cinderd's own threads (they share
 * one autogroup or cgroup), not against PostgreSQL or other services.
 * SCHED_RR/SCHED_FIFO for the loop held the p99 at 1-2 ms but is not
 * offered: the loop then woke for nearly every event, and cinderd's CPU
 * per handshake rose by a third; a loop that spun at real-time
 * priority could also starve the host.
 */
static void
loop_set_nice(int nice)
{
	int was;

	if (nice == 0)
		return;
	was = getpriority(PRIO_PROCESS, 0);
	if (setpriority(PRIO_PROCESS, 0, nice) != 0) {
		log_warn("loop_nice %d refused (%s): the loop thread keeps "
			 "nice %d; a nice below the current one needs "
			 "CAP_SYS_NICE or RLIMIT_NICE (systemd LimitNICE=)",
			 nice, strerror(errno), was);
		return;
	}
	log_info("loop thread at nice %d; crypto workers at %d", nice, was);
}

/*
 * Descriptors: one per device session and per API connection, plus a
 * few dozen of cinderd's own (PostgreSQL, webhooks, pipes, the log). The
 * soft open-files limit is often 1,024 (a login shell, systemd's
 * default), so a fleet past ~1,000 devices would find accept() failing.
 * Raise the soft limit towards the hard one (no privilege needed), and
 * say so when even that is short of what the configuration allows.
 */
#define DAEMON_FDS_OWN 256

static void
nofile_raise(const struct conf *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_sessions +
		      (rlim_t)cfg->api_max_connections + DAEMON_FDS_OWN;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
				      ? want
				      : rl.rlim_max;
		if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("open-files limit raised from %llu to %llu",
				 (unsigned long long)old,
				 (unsigned long long)rl.rlim_cur);
		else
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur < want)
		log_warn("open-files limit %llu is below the %llu that "
			 "max_sessions (%d) and api_max_connections (%d) may "
			 "need: raise it (ulimit -n, or LimitNOFILE= for a "
			 "systemd service) or lower them; until then devices "
			 "and clients past it wait",
			 (unsigned long long)rl.rlim_cur,
			 (unsigned long long)want, cfg->max_sessions,
			 cfg->api_max_connections);
}

int
daemon_new(const struct conf *cfg, struct daemon **out)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	struct http_options hopts;
	struct store_startup sst;
	struct timespec t_db;
	double db_ms, listen_ms;
	const char *params[1];
	char host[128];
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	if (start_cpu_ms < 0)
		daemon_note_start();
	d->cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	nofile_raise(cfg);
	evmem_install();
	if ((d->base = daemon_base_new()) == NULL) {
		log_err("could not create the event loop");
		goto out;
	}
	d->sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
	d->drain_ev = evtimer_new(d->base, drain_cb, d);
	d->deadline_ev = evtimer_new(d->base, deadline_cb, d);
	event_add(d->sig_term, NULL);
	event_add(d->sig_int, NULL);
	event_add(d->sig_hup, NULL);

	if ((r = crypto_server_key_load(cfg->server_key, &d->server_key)) !=
	    0) {
		log_err("could not load the server key %s: %s (create one "
			"with `cinderd keygen`)",
			cfg->server_key, err_str(r));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t_db);
	if ((r = migrate_with_wait(cfg, &sst)) != 0) {
		log_err("could not apply database migrations: %s", err_str(r));
		goto out;
	}
	/* connecting: with any waiting for PostgreSQL to come up */
	db_ms = log_ms_since(&t_db) - sst.check_ms;
	{
		struct store_opts so = {0};

		so.max_queue = (size_t)cfg->db_queue_max;
		so.adopt = sst.conn; /* the store's, even if store_new fails */
		sst.conn = NULL;
		d->store = store_new(d->base, cfg->database_url, &so);
	}
	if (d->store == NULL) {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	/* Sessions this node held before a crash are gone. */
	conf_node_name(cfg, host, sizeof(host));
	params[0] = host;
	store_query(d->store, STORE_Q_WRITE,
		    "UPDATE devices SET online = false "
		    "WHERE online AND node_id = $1",
		    1, params, mark_offline_done, NULL, NULL);
	r = cryptopool_new(d->base, (unsigned)cfg->crypto_threads, 0, &d->pool);
	if (r != 0) {
		log_err("could not start the crypto workers: %s", err_str(r));
		goto out;
	}
	/* after the workers: a new thread takes its creator's nice value */
	loop_set_nice(cfg->loop_nice);
	r = registry_new(d->base, cfg, d->store, d->pool, d->server_key,
			 &d->reg);
	if (r != 0)
		goto out;
	memset(&hopts, 0, sizeof(hopts));
	if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
		log_err("tls_cert and tls_key go together: set both or "
			"neither");
		r = CINDER_ERR_INVAL;
		goto out;
	}
	hopts.tls_cert_file = cfg->tls_cert[0] ? cfg->tls_cert : NULL;
	hopts.tls_key_file = cfg->tls_key[0] ? cfg->tls_key : NULL;
	hopts.trust_forwarded_for = cfg->trust_proxy != 0;
	hopts.max_connections = (unsigned)cfg->api_max_connections;
	if ((d->http = http_new(d->base, cfg->api_listen, &hopts)) == NULL) {
		r = CINDER_ERR_IO;
		goto out;
	}
	listen_ms = log_ms_since(&start_t);
	http_set_status_cb(d->http, status_cb, d);
	{
		struct rest_deps rd = {d->base,	 cfg,	 d->http,
				       d->store, d->reg, d->pool};
		struct events_deps ed = {d->base, cfg, d->http, d->store,
					 d->reg};
		struct webhook_deps wd;
		struct healer_deps hd;

		if ((r = rest_new(&rd, &d->rest)) != 0) {
			log_err("could not set up the REST API: %s",
				err_str(r));
			goto out;
		}
		if ((r = events_new(&ed, &d->events)) != 0) {
			log_err("could not set up events: %s", err_str(r));
			goto out;
		}
		wd.base = d->base;
		wd.cfg = cfg;
		wd.http = d->http;
		wd.store = d->store;
		wd.events = d->events;
		if ((r = webhook_new(&wd, &d->webhooks)) != 0) {
			log_err("could not set up webhooks: %s", err_str(r));
			goto out;
		}
		hd.base = d->base;
		hd.cfg = cfg;
		hd.store = d->store;
		hd.reg = d->reg;
		hd.events = d->events;
		if ((r = healer_new(&hd, &d->healer)) != 0) {
			log_err("could not set up the healer: %s", err_str(r));
			goto out;
		}
		rest_set_healer(d->rest, d->healer);
	}
	log_notice("cinderd %s ready: devices on port %u, API on port %u, "
		   "%u crypto threads",
		   PACKAGE_VERSION, registry_port(d->reg), http_port(d->http),
		   cryptopool_threads(d->pool));
	/* bench/run's B7 reads this line */
	log_notice("start-up: listening %.1f ms after main() (database "
		   "connect %.1f ms, migration check %.1f ms), ready %.1f ms; "
		   "%.1f ms of CPU before main() (loading libraries)",
		   listen_ms, db_ms, sst.check_ms, log_ms_since(&start_t),
		   start_cpu_ms);
	r = 0;
	*out = d;
	d = NULL;
out:
	daemon_free(d);
	return r;
}

int
daemon_run(struct daemon *d)
{
	if (event_base_dispatch(d->base) < 0) {
		log_err("event loop failed");
		return CINDER_ERR_INTERNAL;
	}
	log_notice("stopped");
	return d->exit_status;
}

void
daemon_free(struct daemon *d)
{
	if (d == NULL)
		return;
	/* Order: events and HTTP hold registry and store hooks; REST is
	   freed after HTTP has closed its suspended requests. */
	if (d->rest != NULL)
		rest_set_healer(d->rest, NULL);
	healer_free(d->healer);
	webhook_free(d->webhooks);
	events_free(d->events);
	http_free(d->http);
	rest_free(d->rest);
	registry_free(d->reg);
	cryptopool_free(d->pool);
	store_free(d->store);
	crypto_key_free(d->server_key);
	crypto_thread_cleanup();
	if (d->sig_term != NULL)
		event_free(d->sig_term);
	if (d->sig_int != NULL)
		event_free(d->sig_int);
	if (d->sig_hup != NULL)
		event_free(d->sig_hup);
	if (d->drain_ev != NULL)
		event_free(d->drain_ev);
	if (d->deadline_ev != NULL)
		event_free(d->deadline_ev);
	if (d->base != NULL)
		event_base_free(d->base);
	free(d);
}
