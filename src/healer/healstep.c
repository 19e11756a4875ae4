/* SPDX-License-Identifier: MIT */
/*
 * The healer's decisions (see healstep.h): pure functions of the plan,
 * the send record, the slots and the time.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "healer/healstep.h"
#include "healer/module.h"

static void
set_reason(struct healstep_out *out, const char *reason)
{
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

static void
stuck(const struct healstep_in *in, struct healstep_out *out,
      const char *reason)
{
	out->action = HEALSTEP_STUCK;
	set_reason(out, reason);
	out->report = in->reported == NULL || strcmp(in->reported, reason) != 0;
}

bool
healstep_may_start(unsigned active, unsigned cap)
{
	return active < cap;
}

void
healstep_decide(const struct healstep_in *in, struct healstep_out *out)
{
	const struct planner_result *p = in->plan;
	const struct planner_image *img;
	char why[PLANNER_REASONLEN];

	memset(out, 0, sizeof(*out));
	if (!in->has_slot && !healstep_may_start(in->active, in->cap)) {
		out->action = HEALSTEP_QUEUE;
		return;
	}
	if (in->updates_refused) {
		stuck(in, out, HEALSTEP_DISABLED_REASON);
		return;
	}
	switch (p->status) {
	case PLANNER_NOTHING:
		out->action = HEALSTEP_DONE;
		return;
	case PLANNER_MISSING:
	case PLANNER_BLOCKED:
		stuck(in, out, p->reason);
		return;
	case PLANNER_SEND:
		break;
	}
	img = p->image;
	if (img == NULL) {
		stuck(in, out, "the plan names no image");
		return;
	}
	if (p->need.installed && p->need.func == img->func &&
	    p->need.index == img->index && img->version <= p->need.have) {
		snprintf(why, sizeof(why),
			 "%s %u version %u would not upgrade version %u",
			 module_func_name(img->func), img->index, img->version,
			 (unsigned)p->need.have);
		stuck(in, out, why);
		return;
	}
	if (in->try != NULL && in->retries > 0 &&
	    in->try->fails >= in->retries) {
		out->action = HEALSTEP_GIVE_UP;
		snprintf(out->reason, sizeof(out->reason),
			 "%s %u version %u failed %u times",
			 module_func_name(img->func), img->index, img->version,
			 in->try->fails);
		return;
	}
	if (in->try != NULL && in->try->next_ms > in->now_ms) {
		out->action = HEALSTEP_WAIT;
		out->until_ms = in->try->next_ms;
		return;
	}
	out->action = HEALSTEP_SEND;
	out->image = img;
}

bool
healstep_failed(struct healstep_try *t, unsigned retries, unsigned backoff_s,
		uint64_t now_ms, bool disconnected)
{
	unsigned shift;

	t->fails++;
	if (t->fails >= retries)
		return true;
	if (disconnected) {
		t->next_ms = 0;
		return false;
	}
	shift = t->fails - 1 < HEALSTEP_SHIFT_MAX ? t->fails - 1
						  : HEALSTEP_SHIFT_MAX;
	t->next_ms = now_ms + ((uint64_t)backoff_s * 1000u << shift);
	return false;
}

const char *
healstep_action_str(enum healstep_action a)
{
	switch (a) {
	case HEALSTEP_DONE:
		return "done";
	case HEALSTEP_SEND:
		return "send";
	case HEALSTEP_WAIT:
		return "wait";
	case HEALSTEP_QUEUE:
		return "queue";
	case HEALSTEP_STUCK:
		return "stuck";
	case HEALSTEP_GIVE_UP:
		return "give up";
	}
	return "?";
}
