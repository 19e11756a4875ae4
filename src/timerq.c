/* SPDX-License-Identifier: MIT */
/* Deadline queue: a binary min-heap of embedded nodes (see timerq.h). */
#include "config.h"

#include <stdlib.h>

#include "timerq.h"
#include "xmalloc.h"

#define TIMERQ_MIN_CAP 64 /* slots of the first array, and the least kept */

void
timerq_init(struct timerq *q)
{
	q->v = NULL;
	q->n = q->cap = 0;
}

void
timerq_cleanup(struct timerq *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		q->v[i]->pos = 0;
	free(q->v);
	timerq_init(q);
}

static void
place(struct timerq *q, size_t i, struct timerq_node *node)
{
	q->v[i] = node;
	node->pos = (uint32_t)i + 1;
}

/* Move the node at i towards the root while it is earlier than its
   parent. */
static void
sift_up(struct timerq *q, size_t i)
{
	struct timerq_node *node = q->v[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (q->v[parent]->at <= node->at)
			break;
		place(q, i, q->v[parent]);
		i = parent;
	}
	place(q, i, node);
}

/* Move the node at i towards the leaves while a child is earlier. */
static void
sift_down(struct timerq *q, size_t i)
{
	struct timerq_node *node = q->v[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= q->n)
			break;
		if (child + 1 < q->n && q->v[child + 1]->at < q->v[child]->at)
			child++;
		if (node->at <= q->v[child]->at)
			break;
		place(q, i, q->v[child]);
		i = child;
	}
	place(q, i, node);
}

void
timerq_set(struct timerq *q, struct timerq_node *node, uint64_t at)
{
	size_t i;

	if (node->pos != 0) {
		uint64_t old = node->at;

		i = node->pos - 1;
		node->at = at;
		if (at < old)
			sift_up(q, i);
		else if (at > old)
			sift_down(q, i);
		return;
	}
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : TIMERQ_MIN_CAP;
		q->v = xreallocarray(q->v, q->cap, sizeof(*q->v));
	}
	node->at = at;
	i = q->n++;
	q->v[i] = node;
	sift_up(q, i);
}

void
timerq_del(struct timerq *q, struct timerq_node *node)
{
	size_t i;
	struct timerq_node *last;

	if (node->pos == 0)
		return;
	i = node->pos - 1;
	node->pos = 0;
	last = q->v[--q->n];
	if (i != q->n) {
		/* the last node fills the hole, then goes up or down */
		place(q, i, last);
		if (i > 0 && q->v[(i - 1) / 2]->at > last->at)
			sift_up(q, i);
		else
			sift_down(q, i);
	}
	/* a fleet gone: give the heap's array back, half at a time */
	if (q->cap > TIMERQ_MIN_CAP && q->n < q->cap / 4) {
		q->cap /= 2;
		q->v = xreallocarray(q->v, q->cap, sizeof(*q->v));
	}
}

struct timerq_node *
timerq_first(const struct timerq *q)
{
	return q->n > 0 ? q->v[0] : NULL;
}

struct timerq_node *
timerq_pop_due(struct timerq *q, uint64_t now)
{
	struct timerq_node *node = timerq_first(q);

	if (node == NULL || node->at > now)
		return NULL;
	timerq_del(q, node);
	return node;
}

bool
timerq_queued(const struct timerq_node *node)
{
	return node->pos != 0;
}

size_t
timerq_count(const struct timerq *q)
{
	return q->n;
}
