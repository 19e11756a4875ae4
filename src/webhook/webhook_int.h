/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the webhook engine (webhook.c) and its API
 * operations (webhook_api.c): the module and definition structs and the
 * few helpers both use. Not for other modules. Loop thread only.
 */
#ifndef CINDER_WEBHOOK_WEBHOOK_INT_H
#define CINDER_WEBHOOK_WEBHOOK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <jansson.h>

#include "store.h"
#include "webhook/hookdef.h"
#include "webhook/policy.h"
#include "webhook/webhook.h"

#define SQL_TIME(col)                                                          \
	"to_char(" col " AT TIME ZONE 'UTC', "                                 \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define WEBHOOK_EASY_POOL 64 /* idle libcurl handles kept */

#define WEBHOOK_WQ_MAX 64 /* module queries in the store at once */

struct delivery;
TAILQ_HEAD(dlist, delivery);
struct wq;
struct sockev;
struct pw;
TAILQ_HEAD(pwlist, pw);

/* A finished delivery whose row is still to be deleted. */
struct fin {
	int64_t id;
	char hook_id[25];
};

struct hook_counters {
	uint64_t sent, ok, failed, skipped, overflow, retried, given_up;
};

struct hook {
	char id[25];
	int64_t owner;
	json_t *def;	       /* canonical definition */
	struct hookplan *plan; /* def prepared (webhook_hook_plan) */
	char event[HOOKDEF_EVENT_MAX + 1];
	char device_id[25];
	bool disabled;
	char created_at[32];
	struct hook_counters c;
	char last_error[512];
	size_t queued;	 /* unfinished deliveries (rows) */
	size_t inflight; /* requests on the wire */
	bool overflowing;
	struct dlist ready;
	TAILQ_ENTRY(hook) link;
};
TAILQ_HEAD(hlist, hook);

struct user_count {
	unsigned inflight;
	size_t hooks;
};

struct webhook {
	struct webhook_deps d;
	char node[128];
	struct policy_retry retry;
	struct policy_nets allow;
	CURLM *multi;
	struct event *curl_timer;
	struct event *poll_ev;
	struct event *load_ev;
	struct bus_sub *sub;
	struct hmap *hooks; /* id -> hook */
	struct hlist hlist; /* every hook, for matching */
	struct hmap *users; /* owner id -> user_count */
	struct hmap *hosts; /* host -> policy_host */
	struct dlist all;   /* every delivery */
	LIST_HEAD(, wq) qs; /* store queries */
	size_t nqs;	    /* entries in qs */
	/* Row writes wait here for room (at most WEBHOOK_WQ_MAX queries of
	   the module in the store); none is dropped. Deletes coalesce into
	   one statement per batch. */
	struct dlist ins;     /* deliveries waiting for their INSERT */
	struct pwlist writes; /* UPDATEs waiting */
	struct fin *del;      /* rows to delete, oldest first */
	size_t ndel, del_cap;
	bool del_out;	     /* a batched DELETE is in the store */
	unsigned nins;	     /* batched INSERTs in the store */
	struct event *wq_ev; /* retry after the store refused */
	uint64_t wq_busy;    /* refusals since the last log line */
	uint64_t wq_busy_ms; /* when that line was written */
	LIST_HEAD(, sockev) socks;
	LIST_HEAD(, sockev) socks_idle;	    /* watchers kept for reuse */
	size_t nsock_idle;		    /* entries in socks_idle */
	CURL *easy_pool[WEBHOOK_EASY_POOL]; /* idle handles for reuse */
	size_t neasy;			    /* entries in easy_pool */
	bool reset_sent; /* the start-up in_flight reset is queued */
	bool loaded;	 /* definitions loaded */
	bool polling;	 /* a poll query is out */
	struct {
		uint64_t accepted, sent, ok, failed, skipped, overflow, denied,
			db_errors;
	} stats;
};

/**
 * Queue a store query owned by the module: if the module is freed first,
 * the query is cancelled and arg_free (if not NULL) is called on arg.
 * @return 0 or store_query()'s error (cb not run, arg not freed)
 */
int webhook_wq_submit(struct webhook *w, unsigned flags, const char *sql, int n,
		      const char *const *params, store_done_cb cb, void *arg,
		      void (*arg_free)(void *));

/** Send the waiting row writes the module's share of the store allows. */
void webhook_wq_drain(struct webhook *w);

/** @return the counters of owner (created on first use) */
struct user_count *webhook_user_get(struct webhook *w, int64_t owner);

/**
 * Add a definition to memory.
 * @param def canonical definition; taken
 */
struct hook *webhook_hook_add(struct webhook *w, const char *id, int64_t owner,
			      json_t *def, const char *created_at);

/** @return the definition with that id, or NULL */
struct hook *webhook_hook_find(struct webhook *w, const char *id);

/**
 * @return the plan of h's current definition (borrowed), made again when
 *     the definition was replaced
 */
struct hookplan *webhook_hook_plan(struct hook *h);

/** Drop a definition and its waiting deliveries from memory. */
void webhook_hook_remove(struct webhook *w, struct hook *h);

#endif
