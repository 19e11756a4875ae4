/* SPDX-License-Identifier: MIT */
/*
 * What is kept per device outlives its session by device_cache_linger_s,
 * then goes: the registry's parsed-key cache entry, and through the
 * forget hooks the events module's rate-limit buckets and the healer's
 * application hash. A device that reconnects within the linger finds
 * them; one that does not costs nothing once the linger is over (B2:
 * RSS back to its baseline after a fleet has left).
 *
 * Devices gone are queued in a ring, oldest first (the linger is the
 * same for all), under one timer: no timer or list link per device.
 * A device's cached key carries when its last connection closed
 * (left_ms), so that a device that came back and left again is kept a
 * full linger after its last departure, and queued once. Loop thread
 * only.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "xmalloc.h"

/* At most one sweep a second: a fleet leaving over a while is swept in
   a few passes, not one per device. */
#define SWEEP_MIN_MS 1000
/* Devices dropped per turn of the loop (a pass goes on in the next). */
#define SWEEP_BATCH 8192
/* Devices dropped that make it worth giving pages back (malloc_trim):
   when the ring has emptied, or at every this many times 64 on the way. */
#define TRIM_AFTER_FORGOTTEN 64
#define RING_MIN 64 /* slots of the first ring, and the least kept */

static void linger_cb(evutil_socket_t fd, short what, void *arg);

static uint64_t
linger_ms(const struct registry *reg)
{
	return (uint64_t)reg->cfg->device_cache_linger_s * 1000u;
}

void
registry_linger_init(struct registry *reg)
{
	reg->linger_ev = evtimer_new(reg->base, linger_cb, reg);
}

void
registry_linger_cleanup(struct registry *reg)
{
	if (reg->linger_ev != NULL)
		event_free(reg->linger_ev);
	reg->linger_ev = NULL;
	free(reg->left);
	reg->left = NULL;
	reg->left_head = reg->left_n = reg->left_cap = 0;
}

/* Resize the ring to cap slots (>= left_n), oldest first at 0. */
static void
ring_resize(struct registry *reg, size_t cap)
{
	struct registry_left *v = xreallocarray(NULL, cap, sizeof(*v));
	size_t i;

	for (i = 0; i < reg->left_n; i++)
		v[i] = reg->left[(reg->left_head + i) % reg->left_cap];
	free(reg->left);
	reg->left = v;
	reg->left_cap = cap;
	reg->left_head = 0;
}

static void
ring_push(struct registry *reg, const char *id, uint64_t at)
{
	struct registry_left *l;

	if (reg->left_n == reg->left_cap)
		ring_resize(reg, reg->left_cap ? reg->left_cap * 2 : RING_MIN);
	l = &reg->left[(reg->left_head + reg->left_n++) % reg->left_cap];
	memcpy(l->id, id, DEVICE_ID_HEX);
	l->at = at;
}

static struct registry_left *
ring_front(struct registry *reg)
{
	return reg->left_n > 0 ? &reg->left[reg->left_head] : NULL;
}

static void
ring_pop(struct registry *reg)
{
	reg->left_head = (reg->left_head + 1) % reg->left_cap;
	if (--reg->left_n == 0) {
		reg->left_head = 0;
		if (reg->left_cap > RING_MIN) {
			free(reg->left);
			reg->left = NULL;
			reg->left_cap = 0;
		}
	} else if (reg->left_cap > RING_MIN &&
		   reg->left_n < reg->left_cap / 4) {
		ring_resize(reg, reg->left_cap / 2);
	}
}

/* Arm the sweep for the oldest device's end of linger, not sooner than
   SWEEP_MIN_MS after the last sweep. */
static void
linger_arm(struct registry *reg, uint64_t now)
{
	const struct registry_left *l = ring_front(reg);
	uint64_t due, ms;
	struct timeval tv;

	if (l == NULL || reg->linger_ev == NULL ||
	    evtimer_pending(reg->linger_ev, NULL))
		return;
	due = l->at + linger_ms(reg);
	if (due < reg->last_sweep_ms + SWEEP_MIN_MS)
		due = reg->last_sweep_ms + SWEEP_MIN_MS;
	ms = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(reg->linger_ev, &tv);
}

void
registry_linger_note(struct devconn *c)
{
	struct registry *reg = c->reg;
	struct key_entry *e;
	uint64_t now;

	if (c->idhex[0] == '\0' || reg->linger_ev == NULL ||
	    hmap_get(reg->devices, c->idhex, DEVICE_ID_HEX) != NULL)
		return; /* no device, or it has a newer session */
	now = registry_now_ms();
	e = hmap_get(reg->keys, c->idhex, DEVICE_ID_HEX);
	if (e != NULL) {
		if (e->left_ms == 0)
			ring_push(reg, c->idhex, now);
		e->left_ms = now; /* queued: the sweep finds the latest */
	} else if (c->hello_seen) {
		/* a device past its handshake whose key was not cached (the
		   cache was full): queued at every departure */
		ring_push(reg, c->idhex, now);
	} else {
		return; /* an unknown device: nothing was kept for it */
	}
	linger_arm(reg, now);
}

/* Ask every hook to drop the device. @return false if one keeps some. */
static bool
forget_hooks(struct registry *reg, const char *id)
{
	bool all = true;
	size_t i;

	for (i = 0; i < REGISTRY_FORGET_HOOKS; i++)
		if (reg->forget[i].cb != NULL &&
		    !reg->forget[i].cb(id, reg->forget[i].arg))
			all = false;
	return all;
}

/*
 * The oldest device gone is due: drop what is kept for it, unless it
 * came back (or left again later: queued again for then), or a hook
 * keeps some of it (asked again a linger later).
 * @return true if it was dropped
 */
static bool
sweep_one(struct registry *reg, const struct registry_left *l, uint64_t now)
{
	char id[DEVICE_ID_HEX + 1];
	struct key_entry *e;

	memcpy(id, l->id, DEVICE_ID_HEX);
	id[DEVICE_ID_HEX] = '\0';
	e = hmap_get(reg->keys, id, DEVICE_ID_HEX);
	if (hmap_get(reg->devices, id, DEVICE_ID_HEX) != NULL) {
		if (e != NULL)
			e->left_ms = 0; /* its session's end queues it */
		return false;
	}
	if (e != NULL && e->left_ms == 0)
		return false; /* a newer entry: its connection queues it */
	if (e != NULL && e->left_ms > l->at) {
		ring_push(reg, id, e->left_ms); /* it left again since */
		return false;
	}
	if (!forget_hooks(reg, id)) {
		ring_push(reg, id, now);
		if (e != NULL)
			e->left_ms = now;
		return false;
	}
	if (e != NULL)
		registry_hs_key_entry_free(
			hmap_remove(reg->keys, id, DEVICE_ID_HEX));
	reg->stats.forgotten++;
	return true;
}

static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	uint64_t now = registry_now_ms(), lms = linger_ms(reg);
	size_t budget = reg->left_n < SWEEP_BATCH ? reg->left_n : SWEEP_BATCH;
	bool more = reg->left_n > SWEEP_BATCH;
	unsigned long dropped = 0;
	const struct registry_left *l;
	struct registry_left cur;
	struct timeval tv = {0, 0};

	(void)fd;
	(void)what;
	reg->last_sweep_ms = now;
	/* at most the entries there at the start: one queued again now is
	   not due again in this pass, even with a linger of 0 */
	while (budget > 0 && (l = ring_front(reg)) != NULL &&
	       l->at + lms <= now) {
		cur = *l;
		ring_pop(reg);
		budget--;
		if (sweep_one(reg, &cur, now))
			dropped++;
	}
	if (dropped > 0)
		log_debug("%lu devices gone for %d s: their state dropped "
			  "(%zu still lingering)",
			  dropped, reg->cfg->device_cache_linger_s,
			  reg->left_n);
	reg->forgot_since_trim += (uint32_t)dropped;
	if (more && budget == 0 && (l = ring_front(reg)) != NULL &&
	    l->at + lms <= now) {
		evtimer_add(reg->linger_ev, &tv); /* the rest, next turn */
		return;
	}
	if (reg->forgot_since_trim >= TRIM_AFTER_FORGOTTEN &&
	    (reg->left_n == 0 ||
	     reg->forgot_since_trim >= 64 * TRIM_AFTER_FORGOTTEN)) {
		registry_trim_now(reg, "devices gone",
				  (unsigned long)reg->forgot_since_trim,
				  "dropped after their linger");
		reg->forgot_since_trim = 0;
	}
	linger_arm(reg, now);
}

int
registry_add_forget_cb(struct registry *reg, registry_forget_cb cb, void *arg)
{
	size_t i;

	for (i = 0; i < REGISTRY_FORGET_HOOKS; i++)
		if (reg->forget[i].cb == NULL) {
			reg->forget[i].cb = cb;
			reg->forget[i].arg = arg;
			return 0;
		}
	return CINDER_ERR_BUSY;
}

void
registry_remove_forget_cb(struct registry *reg, registry_forget_cb cb,
			  void *arg)
{
	size_t i;

	for (i = 0; i < REGISTRY_FORGET_HOOKS; i++)
		if (reg->forget[i].cb == cb && reg->forget[i].arg == arg) {
			reg->forget[i].cb = NULL;
			reg->forget[i].arg = NULL;
		}
}
