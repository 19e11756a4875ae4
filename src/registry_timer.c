/* SPDX-License-Identifier: MIT */
/*
 * Connection deadlines (handshake timeout, keep-alive, session ticks):
 * every connection's next deadline sits in one heap (timerq.c) under one
 * libevent timer, where a struct event per connection cost 128 bytes of
 * each idle session (B2). Also the allocator trim once a connect storm
 * has settled. Loop thread only.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bus.h"
#include "conf.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "session.h"
#include "store.h"
#include "tmpmem.h"

/* Arm the shared timer for the earliest deadline, if it is not already
   armed for it or earlier. */
static void
timers_arm(struct registry *reg)
{
	struct timerq_node *first = timerq_first(&reg->timers);
	uint64_t now, ms;
	struct timeval tv;

	if (first == NULL)
		return; /* firing early for nothing is harmless */
	if (reg->timer_armed_at != 0 && reg->timer_armed_at <= first->at)
		return;
	now = registry_now_ms();
	ms = first->at > now ? first->at - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(reg->timer_ev, &tv);
	reg->timer_armed_at = first->at;
}

static void
timers_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct timerq_node *node;
	uint64_t now = registry_now_ms();

	(void)fd;
	(void)what;
	reg->timer_armed_at = 0;
	/* A callback may queue its connection again, always for later than
	   now (registry_timer_set), so this ends. If libevent's coarser clock
	   fired early, nothing is due yet and the timer is armed again. */
	while ((node = timerq_pop_due(&reg->timers, now)) != NULL) {
		struct devconn *c =
			(struct devconn *)(void *)((char *)node -
						   offsetof(struct devconn,
							    timer));

		registry_conn_timer_cb(-1, 0, c);
	}
	timers_arm(reg);
}

/* registry_timer_set() from a clock reading the caller has. */
static void
timer_set_from(struct devconn *c, uint64_t now, int64_t ms)
{
	uint64_t at;

	if (ms < 1)
		ms = 1; /* the next pass of timers_cb, not the current one */
	at = now + (uint64_t)ms;
	/* Already due earlier: leave it there. The callback, run early,
	   finds the real deadline and queues the connection for it; a
	   device sending frames thus costs no heap move per frame (B3). */
	if (timerq_queued(&c->timer) && c->timer.at <= at)
		return;
	timerq_set(&c->reg->timers, &c->timer, at);
	timers_arm(c->reg);
}

void
registry_timer_set(struct devconn *c, int64_t ms)
{
	timer_set_from(c, registry_now_ms(), ms);
}

void
registry_timer_request(struct devconn *c, uint64_t now, uint32_t ms)
{
	/* a failed send may have closed the connection (its timer is
	   stopped for good then) */
	if (c->state != DC_FRAMED || c->session == NULL)
		return;
	timer_set_from(c, now, (int64_t)ms);
}

void
registry_timer_stop(struct devconn *c)
{
	timerq_del(&c->reg->timers, &c->timer);
}

void
registry_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	registry_conn_tick(arg, registry_now_ms());
}

void
registry_conn_tick(struct devconn *c, uint64_t now)
{
	int64_t next, idle_ms, limit_ms;

	if (c->state == DC_CLOSING)
		return;
	if (c->state != DC_FRAMED || c->session == NULL) {
		registry_conn_close(c, CINDER_ERR_TIMEOUT,
				    "handshake timed out");
		return;
	}
	limit_ms = (int64_t)c->reg->cfg->keepalive_timeout * 1000;
	idle_ms = (int64_t)(now - c->last_rx_ms);
	if (idle_ms >= limit_ms) {
		c->reg->stats.keepalive_timeouts++;
		registry_conn_close(c, CINDER_ERR_TIMEOUT,
				    "keep-alive timeout: device silent");
		return;
	}
	next = session_tick(c->session, now);
	if (c->state == DC_CLOSING)
		return;
	if (next < 0 || next > limit_ms - idle_ms) {
		next = limit_ms - idle_ms;
		/*
		 * Start-up is over (handshake, Hello, the describes): nothing
		 * of the session is due before the keep-alive deadline. Move
		 * the timer to it once, later, instead of letting it fire at
		 * the last start-up deadline (the settle re-describe's, 15 s
		 * on): a pop, a tick and a push per connection in the first
		 * seconds after a connect storm, one heap move here (B2's
		 * idle phase). Later requests keep the lazy rule below.
		 */
		if (c->timer_startup &&
		    session_state(c->session) == SESSION_READY) {
			c->timer_startup = false;
			timerq_set(&c->reg->timers, &c->timer,
				   now + (uint64_t)next);
			timers_arm(c->reg);
			return;
		}
	}
	timer_set_from(c, now, next);
}

/* ------------------------------------------------------------------ */
/* Giving the storm's memory back.                                     */

/* Handshakes and closes that make a burst worth a trim: 256, or one per
   40 devices connected if that is more. Under a fleet's steady
   reconnections the trim comes again after that many, and gives back
   little that the churn does not take again (~250 KB at 10,000 devices,
   every ~78 s at 1% a minute), while the loop thread stops for it
   (1.6-2.9 ms at 10,000, growing with the heap): a fixed 256 would run
   it every ~8 s at 100,000 devices; one per 40 keeps it ~75 s apart at
   any size. A storm is the whole fleet or a large part of it. */
#define TRIM_AFTER_MIN 256
#define TRIM_AFTER_PER 40
/* Seconds between checks for a drained store, and how many checks
   before trimming anyway (the database may be down). */
#define TRIM_CHECK_S 1
#define TRIM_WAITS_MAX 30
/* Handshakes and closes in one check's second under which the burst
   counts as over: 16, or one for every 1,000 devices connected if that
   is more. A storm runs hundreds a second; a fleet's usual reconnections,
   a handshake and a close each, make N/3,000 a second at 1% a minute, at
   most a third of the allowance at any fleet size (10,000 devices: ~3
   against 16; 100,000: ~33 against 100). It was zero, which such churn almost
   never leaves: the trim then never ran and the storm's free heap stayed
   (~6 MB at 10,000, bench/soak). A fixed 16 alone would have done the
   same above ~48,000 devices. */
#define TRIM_QUIET_MIN 16
#define TRIM_QUIET_PER 1000

/* One per `per` connections, or `least` if that is more: both counts
   above grow with the fleet this way. */
static uint64_t
per_fleet(uint64_t connections, uint64_t per, uint64_t least)
{
	return connections / per > least ? connections / per : least;
}

bool
registry_trim_due(uint64_t events, uint64_t connections)
{
	return events >= per_fleet(connections, TRIM_AFTER_PER, TRIM_AFTER_MIN);
}

bool
registry_trim_quiet(uint64_t events, uint64_t connections)
{
	return events <= per_fleet(connections, TRIM_QUIET_PER, TRIM_QUIET_MIN);
}

/* Resident KB (/proc/self/statm), -1 if unknown: for the log line. */
static long
rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size, res = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct store_stats ss;
	struct timeval tv = {TRIM_CHECK_S, 0};
	bool busy;

	(void)fd;
	(void)what;
	if (reg->stats.handshakes_active > 0)
		return; /* the next handshake to end schedules it again */
	store_stats_get(reg->store, &ss);
	/* wait for a quiet second (a paced storm has gaps with no
	   handshake in progress; a fleet's own reconnections go on), then
	   for the store's backlog, for a while (the database may be down) */
	busy = !registry_trim_quiet(reg->hs_recent, reg->stats.connections);
	reg->hs_recent = 0; /* each check counts its own second */
	if (busy) {
		reg->trim_waits = 0;
		evtimer_add(reg->trim_ev, &tv);
		return;
	}
	if (ss.queued > 0 && ++reg->trim_waits < TRIM_WAITS_MAX) {
		evtimer_add(reg->trim_ev, &tv);
		return;
	}
	reg->hs_since_trim = 0;
	reg->trim_waits = 0;
	registry_trim_now(reg, "connect burst settled",
			  (unsigned long)hmap_count(reg->conns), "connections");
}

#if defined(__GLIBC__)
/* glibc keeps up to 7 freed chunks of each of its 64 smallest sizes (up
   to 1,032 bytes) in a cache of the thread that freed them (tcache),
   where malloc_trim does not look. After a connect storm the loop
   thread's are scattered through the heap, each keeping its page
   resident (B2, a walk of the heap once the devices left: ~200 such
   chunks on ~155 pages nothing else held, ~0.6 MB). They are taken out
   here and freed by a thread that then ends: its cache goes back to the
   arenas when it exits, where the trim can give their pages back. */
#define TCACHE_SIZES 64
#define TCACHE_DEPTH 7

static void *
tcache_free_all(void *arg)
{
	void **v = arg;
	size_t i;

	for (i = 0; i < TCACHE_SIZES * TCACHE_DEPTH; i++)
		free(v[i]);
	return NULL;
}

static void
tcache_flush(void)
{
	void *v[TCACHE_SIZES * TCACHE_DEPTH];
	pthread_t t;
	size_t i, n = 0;

	/* chunk sizes 32, 48, ... 1040: a request of size - 8 fills one */
	for (i = 0; i < TCACHE_SIZES; i++) {
		size_t k;

		for (k = 0; k < TCACHE_DEPTH; k++)
			v[n++] = malloc(32 + 16 * i - 8);
	}
	if (pthread_create(&t, NULL, tcache_free_all, v) != 0) {
		tcache_free_all(v);
		return;
	}
	pthread_join(t, NULL);
}
#endif

void
registry_trim_now(struct registry *reg, const char *what, unsigned long n,
		  const char *of)
{
#if defined(__GLIBC__)
	long before = rss_kb();
	struct tmpmem_stats tm;
	struct timespec t0, t1;

	(void)reg;
	/* the loop thread stops for it: timed, so the log shows the cost */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bus_event_pool_drain();
	tcache_flush();
	malloc_trim(0);
	tmpmem_trim();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tmpmem_stats_get(&tm);
	log_info("%s (%lu %s): RSS %ld -> %ld KB in %.1f ms; tmpmem %zu "
		 "blocks, %zu KB",
		 what, n, of, before, rss_kb(),
		 (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			 (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		 tm.live, tm.resident / 1024);
#else
	(void)reg;
	(void)what;
	(void)n;
	(void)of;
#endif
}

void
registry_trim_note_handshake(struct registry *reg)
{
	struct timeval tv = {TRIM_CHECK_S, 0};

	if (reg->hs_since_trim < UINT32_MAX)
		reg->hs_since_trim++;
	if (reg->hs_recent < UINT32_MAX)
		reg->hs_recent++;
	if (reg->stats.handshakes_active > 0 ||
	    !registry_trim_due(reg->hs_since_trim, reg->stats.connections) ||
	    reg->trim_ev == NULL || evtimer_pending(reg->trim_ev, NULL))
		return;
	reg->trim_waits = 0;
	reg->hs_recent = 0;
	evtimer_add(reg->trim_ev, &tv);
}

void
registry_trim_note_close(struct registry *reg)
{
	/* a fleet leaving frees what its sessions held: the same burst
	   rule, counted in the same way, so RSS returns to its baseline */
	registry_trim_note_handshake(reg);
}

void
registry_timers_init(struct registry *reg)
{
	timerq_init(&reg->timers);
	reg->timer_ev = evtimer_new(reg->base, timers_cb, reg);
	reg->trim_ev = evtimer_new(reg->base, trim_cb, reg);
	registry_linger_init(reg);
}

void
registry_timers_cleanup(struct registry *reg)
{
	if (reg->timer_ev != NULL)
		event_free(reg->timer_ev);
	reg->timer_ev = NULL;
	if (reg->trim_ev != NULL)
		event_free(reg->trim_ev);
	reg->trim_ev = NULL;
	registry_linger_cleanup(reg);
	timerq_cleanup(&reg->timers);
}
