/* SPDX-License-Identifier: MIT */
/*
 * A queue of deadlines (a binary min-heap) for many objects that share one
 * libevent timer: each object embeds a struct timerq_node (16 bytes)
 * instead of a struct event (128 bytes). The owner arms its one timer for
 * timerq_first() and pops the due nodes when it fires. Pure: no clock, no
 * libevent; times are whatever unit the caller uses (milliseconds in the
 * registry). Not thread-safe; loop thread only.
 */
#ifndef CINDER_TIMERQ_H
#define CINDER_TIMERQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded in the object that has a deadline; zeroed = not queued. */
struct timerq_node {
	uint64_t at;  /* the deadline */
	uint32_t pos; /* 1 + index in the heap, 0: not queued */
};

struct timerq {
	struct timerq_node **v; /* the heap, v[0] earliest */
	size_t n;		/* nodes queued */
	size_t cap;		/* slots allocated at v */
};

/** Initialise an empty queue (embedded). */
void timerq_init(struct timerq *q);

/** Free the heap array; the nodes are the caller's. */
void timerq_cleanup(struct timerq *q);

/**
 * Queue node for deadline at, or move it there if already queued.
 * The queue borrows node until timerq_del() or timerq_pop().
 */
void timerq_set(struct timerq *q, struct timerq_node *node, uint64_t at);

/** Take node out of the queue. Not queued: nothing. */
void timerq_del(struct timerq *q, struct timerq_node *node);

/** @return the node with the earliest deadline, or NULL when empty */
struct timerq_node *timerq_first(const struct timerq *q);

/** Take out and @return the earliest node if its deadline is <= now, else
 * NULL. */
struct timerq_node *timerq_pop_due(struct timerq *q, uint64_t now);

/** @return whether node is queued */
bool timerq_queued(const struct timerq_node *node);

/** @return the number of nodes queued */
size_t timerq_count(const struct timerq *q);

#endif
