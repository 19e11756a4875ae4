/* SPDX-License-Identifier: MIT */
/*
 * Event bus: refcounted immutable events, a byte trie of subscription
 * prefixes, lists of subscriptions bound to one owner, device or product
 * under that key, and deferred delivery through one zero-timeout libevent
 * timer armed by bus_publish(). Subscriptions ended during a delivery are
 * only marked dead and unlinked after it, so iteration never sees freed
 * memory.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "bus.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "xmalloc.h"

/* a batch array above this many entries is freed, not kept */
#define BUS_SPARE_MAX 1024

/* One trie node: the subscriptions whose prefix ends here. */
struct bus_node {
	struct bus_node *parent;    /* NULL for the root */
	struct bus_node **kids;	    /* children sorted by byte */
	size_t nkids;		    /* used entries of kids */
	size_t cap;		    /* allocated entries of kids */
	uint8_t byte;		    /* the byte leading here from parent */
	TAILQ_HEAD(, bus_sub) subs; /* subscriptions at this node */
};

/* The longest key: a kind byte and a device id. */
#define BUS_KEY_MAX 25

/* The subscriptions bound to one key ('u' owner, 'd' device, 'p'
   product, then its bytes), in the order they were made. */
struct bus_klist {
	TAILQ_HEAD(, bus_sub) subs;
	size_t klen;		  /* bytes of key */
	uint8_t key[BUS_KEY_MAX]; /* the map's key */
};

struct bus_sub {
	TAILQ_ENTRY(bus_sub) link; /* in node->subs or klist->subs */
	struct bus_node *node;	   /* by prefix: where the prefix ends */
	struct bus_klist *klist;   /* by key: its key's list */
	bus_cb cb;		   /* callback */
	void *arg;		   /* its argument */
	uint64_t min_seq;	   /* first event seq it may see */
	bool dead;		   /* unsubscribed during a delivery */
	struct bus_sub *next_dead; /* in bus->dead */
	size_t plen;		   /* by key: bytes of prefix */
	char prefix[];		   /* by key: the prefix, NUL-terminated */
};

struct bus {
	struct event_base *base;    /* borrowed */
	struct event *ev;	    /* deferred delivery */
	struct bus_node root;	    /* prefix "" */
	struct hmap *klists;	    /* key -> bus_klist */
	struct bus_event **pending; /* events waiting for delivery */
	size_t npending;	    /* used entries */
	size_t cap;		    /* allocated entries */
	struct bus_event **spare;   /* a delivered batch's array, reused */
	size_t spare_cap;	    /* its allocated entries */
	uint64_t next_seq;	    /* seq of the next published event */
	unsigned dispatching;	    /* > 0 while delivering */
	struct bus_sub *dead;	    /* ended during a delivery */
	struct bus_stats stats;	    /* counters */
};

uint64_t
bus_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool
is_hex24(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < 24; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[24] == '\0';
}

/* Copy n characters of a device id with A-F in lowercase, as events
   carry it. */
static void
id_lower(char *out, const char *in, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'F') ? (char)(in[i] + 32)
							: in[i];
}

/*
 * Events that fit BUS_EVENT_BLOCK bytes (a name and data of a few hundred
 * bytes, the usual device event) are recycled through a free list: no
 * malloc and free per event. Loop thread only, like the bus.
 */
#define BUS_EVENT_BLOCK 512
#define BUS_EVENT_POOL_MAX 256 /* blocks kept: 128 KiB */

static void *ev_pool;	   /* free blocks, linked through their start */
static unsigned ev_pool_n; /* blocks in ev_pool */

static struct bus_event *
event_alloc(size_t size)
{
	struct bus_event *ev;

	if (size > BUS_EVENT_BLOCK)
		return xcalloc(1, size);
	if (ev_pool != NULL) {
		ev = ev_pool;
		memcpy(&ev_pool, ev, sizeof(ev_pool));
		ev_pool_n--;
	} else {
		ev = xmalloc(BUS_EVENT_BLOCK);
	}
	/* the header only: bus_event_new writes every byte after it */
	memset(ev, 0, sizeof(*ev));
	ev->pooled = true;
	return ev;
}

static void
event_release(struct bus_event *ev)
{
	if (!ev->pooled || ev_pool_n >= BUS_EVENT_POOL_MAX) {
		free(ev);
		return;
	}
	memcpy(ev, &ev_pool, sizeof(ev_pool));
	ev_pool = ev;
	ev_pool_n++;
}

void
bus_event_pool_drain(void)
{
	void *ev;

	while ((ev = ev_pool) != NULL) {
		memcpy(&ev_pool, ev, sizeof(ev_pool));
		free(ev);
	}
	ev_pool_n = 0;
}

int
bus_event_new(const struct bus_event_spec *spec, struct bus_event **out)
{
	struct bus_event *ev;
	size_t nlen;
	char *p;

	*out = NULL;
	if (spec->name == NULL || spec->name[0] == '\0')
		return CINDER_ERR_INVAL;
	nlen = strnlen(spec->name, BUS_NAME_MAX + 1);
	if (nlen > BUS_NAME_MAX || spec->data_len > BUS_DATA_MAX)
		return CINDER_ERR_TOO_BIG;
	if (spec->data_len > 0 && spec->data == NULL)
		return CINDER_ERR_INVAL;
	if (spec->source == BUS_SRC_DEVICE && !is_hex24(spec->device_id))
		return CINDER_ERR_INVAL;
	ev = event_alloc(sizeof(*ev) + nlen + 1 + spec->data_len + 1);
	p = (char *)(ev + 1);
	memcpy(p, spec->name, nlen);
	p[nlen] = '\0';
	ev->name = p;
	p += nlen + 1;
	if (spec->data_len > 0)
		memcpy(p, spec->data, spec->data_len);
	p[spec->data_len] = '\0';
	ev->data = (const uint8_t *)p;
	ev->data_len = spec->data_len;
	ev->ttl = spec->ttl == 0 ? 60 : spec->ttl;
	ev->published_ms =
		spec->published_ms == 0 ? bus_now_ms() : spec->published_ms;
	ev->source = spec->source;
	switch (spec->source) {
	case BUS_SRC_DEVICE:
		id_lower(ev->coreid, spec->device_id, 24);
		ev->coreid[24] = '\0';
		break;
	case BUS_SRC_API:
		strcpy(ev->coreid, "api");
		break;
	default:
		ev->source = BUS_SRC_INTERNAL;
		strcpy(ev->coreid, "particle-internal");
		break;
	}
	ev->owner_id = spec->owner_id;
	ev->is_private = spec->is_private;
	ev->product_id = spec->product_id;
	ev->flags = spec->flags;
	ev->refs = 1;
	*out = ev;
	return 0;
}

struct bus_event *
bus_event_ref(const struct bus_event *cev)
{
	struct bus_event *ev = (struct bus_event *)(uintptr_t)cev;

	ev->refs++;
	return ev;
}

void
bus_event_unref(const struct bus_event *cev)
{
	struct bus_event *ev = (struct bus_event *)(uintptr_t)cev;

	if (ev == NULL)
		return;
	if (--ev->refs == 0)
		event_release(ev);
}

bool
bus_name_reserved(const char *name)
{
	return strncasecmp(name, "spark", 5) == 0 ||
	       strncasecmp(name, "particle", 8) == 0;
}

/* ---- trie ---- */

/* Binary search for byte among n's children; *pos gets the insert spot. */
static struct bus_node *
node_child(const struct bus_node *n, uint8_t byte, size_t *pos)
{
	size_t lo = 0, hi = n->nkids, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (n->kids[mid]->byte == byte) {
			if (pos != NULL)
				*pos = mid;
			return n->kids[mid];
		}
		if (n->kids[mid]->byte < byte)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos != NULL)
		*pos = lo;
	return NULL;
}

static struct bus_node *
node_get(struct bus_node *root, const char *prefix)
{
	struct bus_node *n = root, *k;
	size_t pos, i;

	for (i = 0; prefix[i] != '\0' && i < BUS_NAME_MAX; i++) {
		uint8_t byte = (uint8_t)prefix[i];

		if ((k = node_child(n, byte, &pos)) == NULL) {
			k = xcalloc(1, sizeof(*k));
			k->parent = n;
			k->byte = byte;
			TAILQ_INIT(&k->subs);
			if (n->nkids == n->cap) {
				n->cap = n->cap ? n->cap * 2 : 2;
				n->kids = xreallocarray(n->kids, n->cap,
							sizeof(*n->kids));
			}
			memmove(&n->kids[pos + 1], &n->kids[pos],
				(n->nkids - pos) * sizeof(*n->kids));
			n->kids[pos] = k;
			n->nkids++;
		}
		n = k;
	}
	return n;
}

/* Free empty nodes from n up towards the root. */
static void
node_prune(struct bus_node *n)
{
	struct bus_node *p;
	size_t pos;

	while (n->parent != NULL && n->nkids == 0 && TAILQ_EMPTY(&n->subs)) {
		p = n->parent;
		if (node_child(p, n->byte, &pos) == n) {
			memmove(&p->kids[pos], &p->kids[pos + 1],
				(p->nkids - pos - 1) * sizeof(*p->kids));
			p->nkids--;
		}
		free(n->kids);
		free(n);
		n = p;
	}
}

static void
node_free_all(struct bus_node *n)
{
	struct bus_sub *s;
	size_t i;

	for (i = 0; i < n->nkids; i++) {
		node_free_all(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	n->kids = NULL;
	n->nkids = n->cap = 0;
	while ((s = TAILQ_FIRST(&n->subs)) != NULL) {
		TAILQ_REMOVE(&n->subs, s, link);
		free(s);
	}
}

/* ---- delivery ---- */

static void
deliver_node(struct bus *b, struct bus_node *n, const struct bus_event *ev)
{
	struct bus_sub *s;

	TAILQ_FOREACH(s, &n->subs, link)
	{
		if (s->dead || ev->seq < s->min_seq)
			continue;
		b->stats.delivered++;
		s->cb(ev, s->arg);
	}
}

/* The keys of the lists ('u' owner, 'd' device, 'p' product, then its
   bytes): built the same way for a subscription and for an event. */
static size_t
key_owner(uint8_t key[BUS_KEY_MAX], int64_t owner_id)
{
	key[0] = 'u';
	memcpy(key + 1, &owner_id, sizeof(owner_id));
	return 1 + sizeof(owner_id);
}

/* id: 24 lowercase hex characters, as an event's coreid */
static size_t
key_device(uint8_t key[BUS_KEY_MAX], const char *id)
{
	key[0] = 'd';
	memcpy(key + 1, id, 24);
	return 1 + 24;
}

static size_t
key_product(uint8_t key[BUS_KEY_MAX], uint32_t product_id)
{
	key[0] = 'p';
	memcpy(key + 1, &product_id, sizeof(product_id));
	return 1 + sizeof(product_id);
}

/* The subscriptions under one key whose prefix the event's name has. */
static void
deliver_key(struct bus *b, const uint8_t *key, size_t klen,
	    const struct bus_event *ev)
{
	struct bus_klist *l = hmap_get(b->klists, key, klen);
	struct bus_sub *s;

	if (l == NULL)
		return;
	TAILQ_FOREACH(s, &l->subs, link)
	{
		if (s->dead || ev->seq < s->min_seq ||
		    strncmp(ev->name, s->prefix, s->plen) != 0)
			continue;
		b->stats.delivered++;
		s->cb(ev, s->arg);
	}
}

static void
deliver(struct bus *b, const struct bus_event *ev)
{
	struct bus_node *n = &b->root;
	uint8_t key[BUS_KEY_MAX];
	const char *p;

	deliver_node(b, n, ev);
	for (p = ev->name; *p != '\0'; p++) {
		if ((n = node_child(n, (uint8_t)*p, NULL)) == NULL)
			break;
		deliver_node(b, n, ev);
	}
	if (hmap_count(b->klists) == 0)
		return;
	if (ev->owner_id != 0)
		deliver_key(b, key, key_owner(key, ev->owner_id), ev);
	if (ev->source == BUS_SRC_DEVICE)
		deliver_key(b, key, key_device(key, ev->coreid), ev);
	if (ev->product_id != 0)
		deliver_key(b, key, key_product(key, ev->product_id), ev);
}

/* Unlink and free s, and its node or key list if it was the last. */
static void
sub_free(struct bus *b, struct bus_sub *s)
{
	struct bus_klist *l = s->klist;
	struct bus_node *n = s->node;

	if (l != NULL) {
		TAILQ_REMOVE(&l->subs, s, link);
		if (TAILQ_EMPTY(&l->subs)) {
			hmap_remove(b->klists, l->key, l->klen);
			free(l);
		}
		free(s);
		return;
	}
	TAILQ_REMOVE(&n->subs, s, link);
	free(s);
	node_prune(n);
}

static void
reap_dead(struct bus *b)
{
	struct bus_sub *s;

	while ((s = b->dead) != NULL) {
		b->dead = s->next_dead;
		sub_free(b, s);
	}
}

static void
dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bus *b = arg;
	struct bus_event **batch;
	size_t n, i, cap;

	(void)fd;
	(void)what;
	batch = b->pending;
	n = b->npending;
	cap = b->cap;
	/* the next batch fills the spare array: no allocation per batch */
	b->pending = b->spare;
	b->cap = b->spare_cap;
	b->spare = NULL;
	b->spare_cap = 0;
	b->npending = 0;
	b->dispatching++;
	for (i = 0; i < n; i++) {
		deliver(b, batch[i]);
		bus_event_unref(batch[i]);
	}
	b->dispatching--;
	if (b->spare == NULL && cap <= BUS_SPARE_MAX) {
		b->spare = batch;
		b->spare_cap = cap;
	} else {
		free(batch);
	}
	if (b->dispatching == 0)
		reap_dead(b);
}

struct bus *
bus_new(struct event_base *base)
{
	struct bus *b = xcalloc(1, sizeof(*b));

	b->base = base;
	TAILQ_INIT(&b->root.subs);
	b->klists = hmap_new();
	b->next_seq = 1;
	b->ev = evtimer_new(base, dispatch_cb, b);
	if (b->ev == NULL) {
		log_err("bus: could not create the delivery event");
		abort();
	}
	return b;
}

static int
klist_free(const void *key, size_t len, void *value, void *arg)
{
	struct bus_klist *l = value;
	struct bus_sub *s;

	(void)key;
	(void)len;
	(void)arg;
	while ((s = TAILQ_FIRST(&l->subs)) != NULL) {
		TAILQ_REMOVE(&l->subs, s, link);
		free(s);
	}
	free(l);
	return 0;
}

void
bus_free(struct bus *b)
{
	size_t i;

	if (b == NULL)
		return;
	event_free(b->ev);
	for (i = 0; i < b->npending; i++)
		bus_event_unref(b->pending[i]);
	free(b->pending);
	free(b->spare);
	b->dead = NULL; /* the subs are still linked in their nodes */
	node_free_all(&b->root);
	hmap_foreach(b->klists, klist_free, NULL);
	hmap_free(b->klists);
	free(b);
}

void
bus_publish(struct bus *b, struct bus_event *ev)
{
	ev->seq = b->next_seq++;
	if (b->npending == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->pending =
			xreallocarray(b->pending, b->cap, sizeof(*b->pending));
	}
	b->pending[b->npending++] = ev;
	b->stats.published++;
	if (b->npending == 1) {
		/* Outside a delivery, event_active(): the batch goes out in
		   this loop pass, after the reads already queued in it (a
		   zero timer costs another epoll_wait per wake-up, B3 in
		   docs/benchmarks-log.md). During one, a zero timeout: libevent
		   runs events activated during a callback in the same pass,
		   so a subscriber that publishes could starve the loop;
		   timers become active once per loop iteration. */
		struct timeval zero = {0, 0};

		if (b->dispatching > 0)
			evtimer_add(b->ev, &zero);
		else
			event_active(b->ev, EV_TIMEOUT, 0);
	}
}

struct bus_sub *
bus_subscribe(struct bus *b, const char *prefix, bus_cb cb, void *arg)
{
	struct bus_sub *s = xcalloc(1, sizeof(*s));

	s->node = node_get(&b->root, prefix != NULL ? prefix : "");
	s->cb = cb;
	s->arg = arg;
	s->min_seq = b->next_seq;
	TAILQ_INSERT_TAIL(&s->node->subs, s, link);
	b->stats.subscriptions++;
	return s;
}

/* A subscription under key, seeing events from min_seq on. */
static struct bus_sub *
sub_keyed(struct bus *b, const uint8_t *key, size_t klen, const char *prefix,
	  bus_cb cb, void *arg, uint64_t min_seq)
{
	struct bus_klist *l = hmap_get(b->klists, key, klen);
	struct bus_sub *s;
	size_t plen;

	if (prefix == NULL)
		prefix = "";
	plen = strnlen(prefix, BUS_NAME_MAX);
	s = xcalloc(1, sizeof(*s) + plen + 1);

	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		TAILQ_INIT(&l->subs);
		memcpy(l->key, key, klen);
		l->klen = klen;
		hmap_put(b->klists, l->key, l->klen, l, NULL);
	}
	s->klist = l;
	s->cb = cb;
	s->arg = arg;
	s->min_seq = min_seq;
	s->plen = plen;
	memcpy(s->prefix, prefix, plen);
	s->prefix[plen] = '\0';
	TAILQ_INSERT_TAIL(&l->subs, s, link);
	b->stats.subscriptions++;
	return s;
}

struct bus_sub *
bus_subscribe_owner(struct bus *b, int64_t owner_id, const char *prefix,
		    bus_cb cb, void *arg)
{
	uint8_t key[BUS_KEY_MAX];

	return sub_keyed(b, key, key_owner(key, owner_id), prefix, cb, arg,
			 b->next_seq);
}

struct bus_sub *
bus_subscribe_device(struct bus *b, const char *device_id, const char *prefix,
		     bus_cb cb, void *arg)
{
	uint8_t key[BUS_KEY_MAX];
	char id[24] = {0};

	/* as events carry it; a shorter one is zero-padded and never
	   matches */
	id_lower(id, device_id, strnlen(device_id, 24));
	return sub_keyed(b, key, key_device(key, id), prefix, cb, arg,
			 b->next_seq);
}

struct bus_sub *
bus_subscribe_product(struct bus *b, uint32_t product_id, const char *prefix,
		      bus_cb cb, void *arg)
{
	uint8_t key[BUS_KEY_MAX];

	return sub_keyed(b, key, key_product(key, product_id), prefix, cb, arg,
			 b->next_seq);
}

struct bus_sub *
bus_resubscribe_owner(struct bus *b, struct bus_sub *old, int64_t owner_id)
{
	uint8_t key[BUS_KEY_MAX];
	struct bus_sub *s;

	/* a subscription by prefix alone has no key (and no prefix copy) */
	if (old == NULL || old->klist == NULL || old->dead)
		return old;
	s = sub_keyed(b, key, key_owner(key, owner_id), old->prefix, old->cb,
		      old->arg, old->min_seq);
	bus_unsubscribe(b, old);
	return s;
}

void
bus_unsubscribe(struct bus *b, struct bus_sub *s)
{
	if (s == NULL || s->dead)
		return;
	b->stats.subscriptions--;
	if (b->dispatching > 0) {
		s->dead = true;
		s->next_dead = b->dead;
		b->dead = s;
		return;
	}
	sub_free(b, s);
}

void
bus_stats_get(const struct bus *b, struct bus_stats *out)
{
	*out = b->stats;
	out->pending = b->npending;
}
