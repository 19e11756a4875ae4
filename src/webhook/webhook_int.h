/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the webhook engine (webhook.c, webhook_queue.c,
 * webhook_send.c) and its API operations (webhook_api.c): the module,
 * definition and delivery structs and the calls between those files.
 * Not for other modules. Loop thread only.
 */
#ifndef CINDER_WEBHOOK_WEBHOOK_INT_H
#define CINDER_WEBHOOK_WEBHOOK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/util.h>
#include <jansson.h>

#include "fmt.h"
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

/* An idle libcurl handle. With plan set it still holds the options of a
   request of that plan with that method and shape (EASY_BODY,
   EASY_AUTH), so a request like it sets only what differs per delivery;
   with plan NULL it is set up from scratch (curl_easy_reset). */
struct easy_idle {
	CURL *e;
	struct hookplan *plan; /* a reference, or NULL */
	char method[8];
	unsigned shape;
};
struct insb;
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
	bool waiting; /* on its owner's waiting list */
	struct dlist ready;
	struct user_count *user; /* its owner's entry in w->users */
	TAILQ_ENTRY(hook) link;	 /* w->hlist */
	TAILQ_ENTRY(hook) ulink; /* its owner's hooks */
	TAILQ_ENTRY(hook) wlink; /* its owner's waiting list */
};
TAILQ_HEAD(hlist, hook);

/*
 * One per owner that has or had a webhook. An event and a finished
 * request touch only their owner's hooks: walking every hook of every
 * user cost each event and each delivery a pass over all tenants' hooks.
 */
struct user_count {
	unsigned inflight;
	size_t hooks;
	struct hlist all;     /* the owner's hooks, in creation order (ulink) */
	struct hlist waiting; /* those with ready deliveries a cap held back
				 (wlink), in the order they first waited */
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
	struct hlist hlist; /* every hook (each owner's: user_count) */
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
	bool del_out;			/* a batched DELETE is in the store */
	unsigned nins;			/* batched INSERTs in the store */
	struct event *wq_ev;		/* retry after the store refused */
	uint64_t wq_busy;		/* refusals since the last log line */
	uint64_t wq_busy_ms;		/* when that line was written */
	LIST_HEAD(, sockev) socks;	/* watchers added (or parked) */
	LIST_HEAD(, sockev) socks_idle; /* watchers kept for reuse */
	struct hmap *fds;  /* open connection sockets -> parked watcher */
	size_t nsock_idle; /* entries in socks_idle */
	struct easy_idle easy_pool[WEBHOOK_EASY_POOL]; /* for reuse */
	size_t neasy;	 /* entries in easy_pool */
	bool reset_sent; /* the start-up in_flight reset is queued */
	bool loaded;	 /* definitions loaded */
	bool polling;	 /* a poll query is out */
	struct {
		uint64_t accepted, sent, ok, failed, skipped, overflow, denied,
			db_errors;
	} stats;
};

/* One delivery of one event to one webhook. */
struct delivery {
	struct webhook *w;
	char hook_id[25];
	int64_t owner;
	int64_t db_id;	   /* webhook_deliveries.id, 0 until inserted */
	unsigned attempts; /* attempts made before this one */
	char *name;
	char *data; /* NUL-terminated, may be NULL */
	size_t data_len;
	char coreid[25];
	uint64_t published_ms;
	uint32_t product_id;
	uint64_t qid; /* store query in flight, 0 = none */
	CURL *easy;   /* while sending */
	struct curl_slist *hdrs;
	struct hookreq req;
	struct hookplan *plan; /* the definition it is sent with */
	json_t *ctx; /* template context, built once (delivery_context) */
	char host[256];
	char errbuf[CURL_ERROR_SIZE];
	bool denied; /* the address guard refused the connection */
	char *resp;  /* response body (first RESPONSE_MAX bytes) */
	size_t resp_len, resp_cap;
	TAILQ_ENTRY(delivery) qlink; /* in hook->ready */
	TAILQ_ENTRY(delivery) alink; /* in w->all */
	bool queued;		     /* in hook->ready */
	TAILQ_ENTRY(delivery) ilink; /* in w->ins */
	bool inserting;		     /* in w->ins */
	struct insb *batch;	     /* in this INSERT in the store */
	bool solo; /* its batch failed: inserted alone (a refused row fails
		      only itself) */
};

/* A row UPDATE waiting for room in the store queue or in it. */
struct pw {
	TAILQ_ENTRY(pw) link;
	struct webhook *w;
	const char *sql; /* static */
	int n;
	char *p[4];
	char hook_id[25]; /* final: the hook's queued count drops on commit */
	bool final;
	unsigned tries;
};

/* A store query owned by the module. */
struct wq {
	struct webhook *w;
	uint64_t qid;
	store_done_cb cb;
	void *arg;
	void (*arg_free)(void *);
	LIST_ENTRY(wq) link;
};

/* A batched INSERT in the store. */
struct insb {
	struct webhook *w;
	size_t n;
	struct delivery *dl[];
};

/* A socket libcurl asked us to watch. */
struct sockev {
	struct event *ev;
	struct webhook *w;
	curl_socket_t fd;
	short kind;  /* the event's flags while added */
	bool parked; /* libcurl stopped watching it; still added */
	LIST_ENTRY(sockev) link;
};

/* ---- webhook_queue.c: delivery rows, retry poll, start-up load ---- */

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

/** Free a row UPDATE (struct pw) that was not sent. */
void webhook_pw_free(void *arg);

/**
 * Queue a row UPDATE (sql with n parameters, copied).
 * @param h the delivery's definition, or NULL
 * @param final the delivery ends with it: h's queued count drops when it
 *     has committed
 */
void webhook_write_q(struct webhook *w, struct hook *h, bool final,
		     const char *sql, int n, const char *const *p);

/** Queue the delete of delivered row id of h (batched). */
void webhook_delete_q(struct webhook *w, struct hook *h, int64_t id);

/** Timer (wq_ev): send the row writes that wait for room. */
void webhook_wq_ev_cb(evutil_socket_t fd, short what, void *arg);

/** Timer (poll_ev): pick up the retries that are due. */
void webhook_poll_cb(evutil_socket_t fd, short what, void *arg);

/** Timer (load_ev): reset this node's in-flight rows, load definitions. */
void webhook_load_cb(evutil_socket_t fd, short what, void *arg);

/* ---- webhook_send.c: deliveries, libcurl on the loop, outcome ---- */

/**
 * @return a new delivery of an event to h, in w->all
 * @param data data_len bytes (copied), or NULL
 */
struct delivery *webhook_delivery_new(struct webhook *w, const struct hook *h,
				      const char *name, const char *data,
				      size_t data_len, const char *coreid,
				      uint64_t published_ms,
				      uint32_t product_id);

/** Free a delivery, taking it out of every list and query it is in. */
void webhook_delivery_free(struct delivery *dl);

/** Publish msg on the definition's error topic (hook-error/<event>). */
void webhook_publish_error(struct webhook *w, struct delivery *dl,
			   const struct hookplan *p, const json_t *ctx,
			   const char *msg);

/** Put a stored delivery on h's ready queue and send what the caps allow. */
void webhook_enqueue(struct webhook *w, struct hook *h, struct delivery *dl);

/** libcurl's CURLMOPT_SOCKETFUNCTION: watch s on the loop. */
int webhook_curl_sock_cb(CURL *e, curl_socket_t s, int what, void *userp,
			 void *socketp);

/** libcurl's CURLMOPT_TIMERFUNCTION: arm or stop curl_timer. */
int webhook_curl_timer_cb(CURLM *m, long timeout_ms, void *userp);

/** libcurl's CURLOPT_CLOSESOCKETFUNCTION (clientp w): drop the socket's
    parked watcher, then close it. */
int webhook_curl_close_cb(void *clientp, curl_socket_t s);

/** Timer (curl_timer): let libcurl handle its timeouts. */
void webhook_curl_timer_event(evutil_socket_t fd, short what, void *arg);

/* ---- webhook.c ---- */

/** @return the monotonic clock in milliseconds */
uint64_t webhook_mono_ms(void);

/**
 * The delivery's row is stored (v: its id) or could not be (r != 0 or v
 * NULL): queue it for sending, or count the failure and free it.
 */
void webhook_insert_one(struct delivery *dl, int r, const char *v);

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
