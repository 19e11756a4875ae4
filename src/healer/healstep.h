/* SPDX-License-Identifier: MIT */
/*
 * The healer's decisions, apart from its I/O (docs/healer.md): given
 * what the planner chose for a device and what the healer remembers
 * about earlier sends (failures, back-off, a 5.03 refusal), the
 * concurrency slots and the time, say what to do next: send a module,
 * wait, queue for a slot, report a problem once, or give up. And after
 * a failed send: retry later or give up.
 * Pure: no I/O, no clock reads (time is passed in, monotonic ms), no
 * allocation, no logging. See tests/unit/check_healer.c.
 */
#ifndef CINDER_HEALER_HEALSTEP_H
#define CINDER_HEALER_HEALSTEP_H

#include <stdbool.h>
#include <stdint.h>

#include "healer/planner.h"

#define HEALSTEP_SHIFT_MAX 10 /* back-off doubles at most this often */

enum healstep_action {
	HEALSTEP_DONE = 0, /* nothing to send (the Describe ends the heal) */
	HEALSTEP_SEND,	   /* send out->image now */
	HEALSTEP_WAIT,	   /* back-off: plan again at out->until_ms */
	HEALSTEP_QUEUE,	   /* every slot is taken: wait for one */
	HEALSTEP_STUCK,	   /* cannot go on (missing or blocked part,
			      updates disabled, a downgrade): wait for
			      news; out->report says whether to tell */
	HEALSTEP_GIVE_UP,  /* the image's sends are used up: record one
			      "failed" and stop sending (out->reason) */
};

/** What the healer remembers about sending one image. */
struct healstep_try {
	unsigned fails;	  /* failed sends so far */
	uint64_t next_ms; /* not before (monotonic ms), 0 = now */
};

struct healstep_in {
	const struct planner_result *plan; /* the planner's choice */
	const struct healstep_try *try;	   /* for plan->image, or NULL */
	bool has_slot;			   /* the heal holds a slot */
	unsigned active;		   /* slots taken */
	unsigned cap;			   /* healer_max_concurrent */
	unsigned retries;		   /* healer_retries: sends per image */
	bool updates_refused;		   /* 5.03 and not forced */
	const char *reported;		   /* problem reported, "" none */
	uint64_t now_ms;
};

struct healstep_out {
	enum healstep_action action;
	const struct planner_image *image; /* SEND: into the catalogue */
	uint64_t until_ms;		   /* WAIT: plan again then */
	bool report; /* STUCK: a problem not reported yet: log it, publish
			it, write history */
	char reason[PLANNER_REASONLEN]; /* STUCK, GIVE_UP: a sentence */
};

/** The reason a heal is stuck on a device with updates disabled. */
#define HEALSTEP_DISABLED_REASON                                               \
	"the device refused the update (5.03): its application disabled "      \
	"updates; set firmware_updates_forced to heal it"

/**
 * Decide the next step of a heal. In this order: no slot and none
 * free -> QUEUE; updates refused -> STUCK; the plan's MISSING/BLOCKED
 * -> STUCK; NOTHING -> DONE; an image at or below the installed
 * version -> STUCK (never a downgrade); the image's sends used up ->
 * GIVE_UP; its back-off running -> WAIT; else SEND.
 */
void healstep_decide(const struct healstep_in *in, struct healstep_out *out);

/** @return true when a heal without a slot may take one now */
bool healstep_may_start(unsigned active, unsigned cap);

/**
 * Record a failed send of an image in t (fails counted, next_ms set to
 * now + backoff_s seconds doubled per earlier failure, at most
 * 2^HEALSTEP_SHIFT_MAX times). A transfer cut by a disconnect counts as
 * a failure but has no back-off: the image goes again as soon as the
 * device is back (next_ms = 0).
 * @return true when that was the last allowed send: give up
 */
bool healstep_failed(struct healstep_try *t, unsigned retries,
		     unsigned backoff_s, uint64_t now_ms, bool disconnected);

/** "done", "send", "wait", "queue", "stuck", "give up" */
const char *healstep_action_str(enum healstep_action a);

#endif
