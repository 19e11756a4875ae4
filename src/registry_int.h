/* SPDX-License-Identifier: MIT */
/*
 * What the registry's files share (registry.c: listener, connection
 * driver, sessions, store writes, public API; registry_hs.c: the
 * handshake; registry_desc.c: shared describes; registry_api.c: what
 * the API asks of a device's session; and the others, each
 * with its section below). Nothing outside them includes this.
 */
#ifndef CINDER_REGISTRY_INT_H
#define CINDER_REGISTRY_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include "crypto.h"
#include "registry.h"
#include "session.h"
#include "timerq.h"

struct store_result;
struct describe;
struct desc_memo;
struct key_batch;

#define DEVICE_ID_HEX 24
#define KEY_CACHE_MAX 100000	/* cached device keys */
#define OUTPUT_MAX (256 * 1024) /* unsent bytes before we give up */
#define DESCRIBE_MAX 16384	/* largest describe JSON kept */
#define FLUSH_INTERVAL_S 30	/* last_heard write interval */
/* Devices per last_heard UPDATE (~12.5 KB of ids). libpq's output buffer
 * grows to the largest statement it was given and never shrinks: one
 * UPDATE for 10,000 devices left 256 KiB of it resident in the heap
 * after they had gone (B2's RSS after they left). */
#define HEARD_BATCH_IDS 500
/* A describe refresh asked by the API (a function or variable the cached
   describe lacks) runs at most once per interval per connection; requests
   arriving meanwhile share the one in flight, up to this many. */
#define REFRESH_INTERVAL_MS 5000
#define REFRESH_TIMEOUT_MS 5000
#define REFRESH_WAITERS_MAX 64
/* Connections the kernel may queue while the listener is paused at
   max_handshakes (capped by net.core.somaxconn): a reconnect storm waits
   there instead of in SYN retransmits. */
#define LISTEN_BACKLOG 4096
/* One read's scratch: a partial frame carried over plus what the kernel
   has (a frame is at most 2 + PCOAP_SERVER_RX_MAX_CT bytes). */
#define REGISTRY_RBUF (16 * 1024)
/* Answers to one read's frames (the Hello's ack and the server Hello,
   mostly) are sent with one send() up to this many bytes. */
#define REGISTRY_CORK 4096
/* Describe merges remembered (registry_desc.c), each keeping up to two
   describes alive. */
#define DESC_MEMO_SLOTS 64

enum dc_state {
	DC_NONCE = 0, /* nonce sent, reading the 256-byte block */
	DC_STEP2,     /* block being decrypted on the pool */
	DC_KEY,	      /* looking up the device's key */
	DC_STEP3,     /* session key being built on the pool */
	DC_FRAMED,    /* encrypted session running */
	DC_CLOSING,   /* closed, waiting to be reaped */
};

/* What only the handshake needs; freed when the session starts. */
struct step3_job; /* registry_hs.c */

struct devconn_hs {
	uint8_t nonce[CRYPTO_NONCE_LEN];	    /* step 1 */
	uint8_t supplied_der[CRYPTO_STEP2_KEY_MAX]; /* device's own key */
	size_t supplied_der_len;		    /* 0: none sent */
};

/* A connection's describe refreshes asked by the API (rare: allocated at
   the first one and kept for the connection's life). */
struct devconn_refresh {
	uint64_t req;	    /* describe in flight, 0: none */
	uint64_t last_ms;   /* when the last one started */
	uint64_t *waiters;  /* requests sharing req (REFRESH_WAITERS_MAX) */
	uint16_t n_waiters; /* entries in waiters */
};

/*
 * One device connection. Sized for 100,000 idle sessions per node: no
 * bufferevent (its two evbuffers and callbacks cost ~1 KB); the socket is
 * watched by an embedded event and bytes are held only while a partial
 * frame waits for its rest or the kernel refuses output (registry_io.c).
 */
struct devconn {
	struct registry *reg;		/* owner */
	uint64_t id;			/* connection id (never reused) */
	enum dc_state state : 8;	/* where in the lifecycle */
	uint16_t chunk_size;		/* OTA chunk size, 0: not said */
	evutil_socket_t fd;		/* the socket (owned) */
	struct event io;		/* EV_READ, + EV_WRITE while out */
	struct timerq_node timer;	/* handshake deadline / session tick,
					   in reg->timers */
	uint8_t *in;			/* partial input kept, or NULL */
	uint32_t in_len;		/* bytes in in */
	uint32_t out_len;		/* unsent bytes at out + out_off */
	uint32_t out_off;		/* sent bytes at the start of out */
	uint32_t out_cap;		/* bytes allocated at out */
	uint8_t *out;			/* output the kernel refused, or NULL */
	struct devconn_hs *hs;		/* handshake state, or NULL */
	uint8_t addr[16];		/* peer address (IPv4: first 4
					   bytes), registry_conn_ip() */
	uint16_t port;			/* peer port */
	char idhex[DEVICE_ID_HEX + 1];	/* device id once known */
	char logctx[DEVICE_ID_HEX + 5]; /* "dev <id>" or "conn <n>" */
	struct step3_job *step3;	/* step 3 waiting for a pool place
					   (owned), registry_hs_step3_free() */
	struct crypto_channel ch;	/* AES state, FRAMED only */
	struct session *session;	/* FRAMED only */
	uint64_t last_rx_ms;		/* last bytes from the device */
	uint64_t opened_ms;		/* accept time */
	uint64_t ready_ms;		/* session start (its Hello), 0:
					   not yet */
	bool in_handshake : 1;		/* counted in handshakes_active */
	bool registered : 1;		/* reg->devices maps idhex to us */
	bool online : 1;		/* presence said online */
	bool heard : 1;			/* bytes since the last flush */
	bool hello_seen : 1;		/* device authenticated by its Hello */
	bool safe_mode : 1;		/* the describe shows safe mode */
	bool want_write : 1;		/* io also watches EV_WRITE */
	bool flashing : 1;		/* an OTA transfer paces on drains */
	bool addr_v6 : 1;		/* addr is IPv6 */
	bool timer_startup : 1;		/* timer may still be queued for a
					   start-up deadline (handshake,
					   describe), registry_conn_tick */
	unsigned pool_wait : 2;		/* POOL_WAIT_*: in reg->pool_waitq */
	uint16_t desc_gen;		/* bumped when describe changes
					   (registry_describe_now) */
	/* the device row's product facts from the key lookup, for the
	   presence hook (registry_presence): info_product is the product
	   if the row has one assigned (info_assigned) or else for the
	   Hello product info_hello (0: none) */
	bool info_known : 1;
	bool info_assigned : 1;
	bool info_forced : 1;
	/* owner_id is PostgreSQL's as the key lookup, a claim on this
	   node or the last row read (registry_row.c) left it, and no
	   device-row notification asks for another read */
	bool owner_sure : 1;
	/* the row's assigned product (product_id) as the key lookup or
	   the last row read left it: row_assigned, row_product (row_known;
	   sure while owner_sure is) */
	bool row_known : 1;
	bool row_assigned : 1;
	/* hw_product is what this connection's presence writes made of
	   NULLIF(hello_product_id, 65535) and platform_id: the Hello's
	   product (hw_hello), else the last platform written
	   (registry_pres.c, registry_pres_product()) */
	bool hw_known : 1;
	bool hw_hello : 1;
	uint16_t hw_product;		 /* see hw_known */
	uint32_t owner_seq;		 /* reg->owner_seq at the key lookup */
	uint32_t max_binary;		 /* largest OTA image, 0: not said */
	uint16_t info_product;		 /* see info_known */
	uint16_t info_hello;		 /* see info_known */
	int32_t row_product;		 /* see row_known */
	const char *describe;		 /* last describe JSON (a reference
					    to a shared copy, registry_desc.c) */
	int64_t owner_id;		 /* owning user id, 0 = unowned */
	struct devconn_refresh *refresh; /* API describe refreshes, NULL
					    until the first one */
	void *event_state;		 /* the event hook's, or NULL */
	TAILQ_ENTRY(devconn) reap;	 /* reap list or pool_waitq link */
};

TAILQ_HEAD(devconn_list, devconn);

/* An API request waiting for a device. */
struct pending_req {
	uint64_t req_id;     /* the id the caller holds */
	uint64_t conn_id;    /* the connection it went to */
	registry_done_cb cb; /* caller's callback */
	void *arg;	     /* caller's argument */
};

struct registry {
	struct event_base *base;	     /* the loop */
	const struct conf *cfg;		     /* borrowed */
	struct store *store;		     /* borrowed */
	struct cryptopool *pool;	     /* borrowed */
	const struct crypto_key *server_key; /* borrowed */
	struct evconnlistener *listener;     /* device port */
	uint16_t port;			     /* bound port */
	bool paused;			     /* listener disabled by the cap */
	bool accept_held;		     /* disabled for the pass, see
						accept_ev */
	unsigned accept_batch;		     /* accepts since accept_ev */
	uint8_t sockopts;		     /* SOCKOPTS_*, see accept_cb */
	struct event *accept_ev;	     /* re-enables after a batch */
	struct event *accept_retry_ev;	  /* pending: accept found no descriptor
					   or memory; tries again when it fires */
	uint64_t starved_fails;		  /* such failed accepts in a row */
	uint64_t starved_since;		  /* registry_now_ms() of the first */
	bool stopping;			  /* no new connections */
	struct hmap *conns;		  /* conn id -> devconn */
	struct hmap *devices;		  /* idhex -> devconn (newest) */
	struct hmap *keys;		  /* idhex -> struct key_entry */
	struct hmap *reqs;		  /* req id -> pending_req */
	struct hmap *descs;		  /* SHA-256 -> shared describe */
	struct desc_memo *desc_memo;	  /* DESC_MEMO_SLOTS merges */
	uint64_t next_conn_id;		  /* counter */
	uint64_t next_req_id;		  /* counter */
	struct devconn_list reap_list;	  /* closed, not yet freed */
	struct devconn_list pool_waitq;	  /* waiting for the pool */
	bool pool_retrying;		  /* pool_retry() running */
	struct event *reap_ev;		  /* deferred reaper */
	struct event *flush_ev;		  /* last_heard coalescing */
	struct hmap *pres;		  /* idhex -> presence to write */
	struct event *pres_ev;		  /* writes pres (registry_pres.c) */
	struct timerq timers;		  /* every connection's deadline */
	struct event *timer_ev;		  /* fires at the earliest one */
	uint64_t timer_armed_at;	  /* timer_ev's deadline, 0: none */
	struct event *trim_ev;		  /* allocator trim after a storm */
	uint32_t hs_since_trim;		  /* handshakes ended since */
	uint32_t trim_waits;		  /* trim_ev waits for the store */
	uint32_t hs_recent;		  /* handshakes and closes since the
					     last trim check */
	struct registry_stats stats;	  /* counters */
	uint32_t owner_seq;		  /* registry_row_refresh() calls */
	uint8_t *rbuf;			  /* read scratch, REGISTRY_RBUF */
	struct devconn *cork_c;		  /* frames of its input's answers
					     gather in cork (registry.c) */
	uint8_t *cork;			  /* REGISTRY_CORK bytes, or NULL */
	size_t cork_len;		  /* bytes gathered */
	registry_presence_cb presence_cb; /* presence hook */
	void *presence_arg;
	registry_event_cb event_cb;		 /* device event hook */
	registry_event_release_cb event_release; /* its conn_state's end */
	void *event_arg;
	registry_subscribe_cb sub_cb;	   /* device subscription hook */
	registry_conn_closed_cb closed_cb; /* and its cleanup */
	void *sub_arg;
	char node_id[128];		  /* this node's name */
	registry_describe_cb describe_cb; /* describe hook (healer) */
	void *describe_arg;
	struct registry_left *left;	    /* ring of devices gone, oldest
					       first (registry_linger.c) */
	size_t left_head, left_n, left_cap; /* its start, length, size */
	struct event *linger_ev;	    /* the one sweep of the ring */
	uint64_t last_sweep_ms;		    /* when it last ran */
	uint32_t forgot_since_trim;	    /* devices dropped since */
	struct {
		registry_forget_cb cb;
		void *arg;
	} forget[REGISTRY_FORGET_HOOKS]; /* what to tell when one goes */
	registry_row_cb row_cb;		 /* device-row hook (events) */
	void *row_arg;
	registry_owner_cb owner_cb; /* owner-change hook (events) */
	void *owner_arg;
	struct hmap *row_due; /* idhex -> reg: rows to read again, or NULL
				 (registry_row.c) */
	bool row_all;	      /* every device's row to read again */
	struct event *row_ev; /* reads them, or NULL */
	uint64_t row_q;	      /* the read in flight, 0: none */
	struct key_batch *key_batch; /* key lookups not yet sent, or NULL
					(registry_hs.c) */
	struct event *key_ev;	     /* sends them, or NULL */
};

/* A device whose last connection closed at `at` (registry_linger.c). */
struct registry_left {
	char id[DEVICE_ID_HEX]; /* its idhex, not NUL-terminated */
	uint64_t at;		/* registry_now_ms() then */
};

/*
 * A device's registered key, cached by device id as DER, valid while the
 * stored PEM's SHA-256 matches. A parsed OpenSSL key costs about 1.3 KB
 * and the PEM text 0.3 KB per device (heaptrack, bench/run B2); the DER
 * of an RSA-1024 key is 162 bytes and parses in microseconds
 * (crypto_pubkey_parse's DER path) at each handshake.
 */
struct key_entry {
	uint8_t pem_sha[CRYPTO_SHA256_LEN]; /* of the PEM it came from */
	int64_t owner_id;		    /* owner at the last lookup */
	uint64_t left_ms;		    /* when its device's last
					       connection closed; 0: not
					       in reg->left (registry_linger.c) */
	uint16_t der_len;		    /* bytes in der */
	uint8_t der[];			    /* the public key, DER */
};

/* A store or pool completion ticket: ids only. */
struct ticket {
	struct registry *reg; /* lives longer than any ticket */
	uint64_t conn_id;     /* the connection it is for */
};

/* Monotonic milliseconds. */
uint64_t registry_now_ms(void);

/** The peer address as text in buf (INET6_ADDRSTRLEN bytes); @return buf */
const char *registry_conn_ip(const struct devconn *c, char *buf);

/** The device's Hello (FRAMED connections only: from the session). */
static inline const struct session_hello *
registry_conn_hello(const struct devconn *c)
{
	return session_hello(c->session);
}

/** The connection with this id, unless it is gone or closing. */
struct devconn *registry_conn_get(struct registry *reg, uint64_t id);

/**
 * Close a connection: log once, say offline, stop I/O, and hand it to the
 * reaper. Safe from inside any of the connection's callbacks.
 */
void registry_conn_close(struct devconn *c, int status, const char *reason);

/** Free the handshake state (wiped). NULL-safe. */
void registry_conn_hs_free(struct devconn *c);

/** A handshake ended (ok or not): counters, and the listener's pacing. */
void registry_handshake_end(struct devconn *c, bool ok);

/* registry_timer.c */

/** Create the shared deadline timer and the trim event (registry_new). */
void registry_timers_init(struct registry *reg);

/** Free them (registry_free, after every connection is gone). */
void registry_timers_cleanup(struct registry *reg);

/**
 * Run the connection's timer callback in ms milliseconds (at least 1), or
 * earlier if it is already due earlier (the callback re-arms itself).
 */
void registry_timer_set(struct devconn *c, int64_t ms);

/**
 * A request was given to c's session at now with a deadline ms later:
 * make the timer fire by then. Only that deadline is new, so this costs
 * no tick (a pass over the session's slots and queue: ~1,000
 * instructions of each API call, callgrind of bench B4). Nothing if c
 * is closing.
 */
void registry_timer_request(struct devconn *c, uint64_t now, uint32_t ms);

/** No deadline for the connection any more. */
void registry_timer_stop(struct devconn *c);

/**
 * A handshake ended. After a burst of them (a connect storm), once no
 * handshake is in progress and the store's write backlog has drained,
 * the allocator gives its free pages back (malloc_trim): the storm's
 * crypto jobs and queued queries were freed but kept RSS up.
 */
void registry_trim_note_handshake(struct registry *reg);
/* The same after a connection is freed (a mass disconnect). */
void registry_trim_note_close(struct registry *reg);

/**
 * Whether `events` handshakes and closes since the last trim make a
 * burst worth one, at `connections` connected: at least 256, or one
 * per 40 connections if that is more. Pure.
 */
bool registry_trim_due(uint64_t events, uint64_t connections);

/**
 * Whether a second with `events` handshakes and closes, at `connections`
 * connected, is quiet enough for the trim (the storm is over): at most
 * 16, or one per 1,000 connections if that is more. Pure.
 */
bool registry_trim_quiet(uint64_t events, uint64_t connections);

/* registry_row.c */

/**
 * The device row's product_id as read (text, NULL: none assigned) for
 * c's row_known facts; known false (or a value out of range) leaves
 * them unknown.
 */
void registry_row_product_set(struct devconn *c, bool known,
			      const char *product);

/** Read c's row again (registry_row_refresh() for a connection here
    whose key lookup may have read an old row), with no owner_seq step. */
void registry_row_reread(struct registry *reg, struct devconn *c);

/** Free what registry_row_refresh() keeps (registry_free). */
void registry_row_cleanup(struct registry *reg);

/* registry_linger.c */

/** The ring of gone devices and its sweep (registry_timers_init). */
void registry_linger_init(struct registry *reg);

/** Free them (registry_timers_cleanup). */
void registry_linger_cleanup(struct registry *reg);

/**
 * A connection whose device id is known is being freed: unless the device
 * has another session, what is kept for it (its key here, the hooks'
 * state) is dropped device_cache_linger_s later, if it has not come back.
 */
void registry_linger_note(struct devconn *c);

/**
 * Give the allocator's free pages back (glibc malloc_trim) now, logged at
 * info as "what (n of): RSS before -> after KB in T ms".
 */
void registry_trim_now(struct registry *reg, const char *what, unsigned long n,
		       const char *of);

/* registry_io.c */

/** Watch the accepted socket fd (owned from now on) and start reading. */
void registry_io_start(struct devconn *c, evutil_socket_t fd);
/* The handshake is over: the connection's I/O leaves the bulk priority
   (evprio.h). */
void registry_io_settle(struct devconn *c);

/**
 * Send bytes: written now when nothing is queued, the rest kept and sent
 * when the socket takes it.
 * @return 0 or CINDER_ERR_IO (the socket failed; the caller closes)
 */
int registry_io_write(struct devconn *c, const void *data, size_t len);

/** Stop watching the socket (closing, or waiting for the crypto pool). */
void registry_io_stop(struct devconn *c);

/** Watch it again after registry_io_stop() (not when closing). */
void registry_io_restart(struct devconn *c);

/** Stop, close the socket and free the buffers (conn_free). */
void registry_io_free(struct devconn *c);

/** Feed input kept over from the handshake (after step 3). */
void registry_io_resume(struct devconn *c);

/* registry.c, called by registry_io.c */

/**
 * Bytes arrived: act on the complete units (the step-2 block, frames).
 * @return the bytes consumed; the rest is kept for the next read
 */
size_t registry_conn_input(struct devconn *c, const uint8_t *buf, size_t len);

/* registry_timer.c, called by registry_io.c and the shared timer */

/**
 * The connection's deadline came (called from the shared timer, or
 * directly to re-arm): keep-alive, session deadlines (fd, what unused).
 */
void registry_conn_timer_cb(evutil_socket_t fd, short what, void *arg);

/** registry_conn_timer_cb() with the caller's registry_now_ms() reading. */
void registry_conn_tick(struct devconn *c, uint64_t now);

/** store_query callback for writes: logs a failure; arg names the write. */
void registry_store_write_done(int r, const struct store_result *res,
			       void *arg);

/** The session callbacks of every device connection. */
extern const struct session_ops registry_sess_ops;

/* registry_pres.c: presence, describe and OTA limits columns, written
   in batches (one statement per few milliseconds) */

/** The device is online: its Hello columns (h), online, node. */
void registry_pres_online(struct devconn *c, const struct session_hello *h);

/** The device went offline (written where no other node holds it). */
void registry_pres_offline(struct devconn *c);

/** The OTA limits the device stated (c->max_binary, c->chunk_size). */
void registry_pres_ota(struct devconn *c);

/**
 * A changed describe's columns (strings copied; NULL: unchanged). sha is
 * text's SHA-256 (struct desc_blob's), or NULL when not known: the row
 * is then written whatever it holds.
 */
void registry_pres_describe(struct devconn *c, const char *text,
			    const uint8_t *sha, const char *functions,
			    const char *variables, const char *modules,
			    const char *release, int32_t platform, bool sys,
			    uint32_t modver);

/**
 * What a read of the device row gives as coreInfo's product_id
 * (COALESCE(product_id, NULLIF(hello_product_id, 65535), platform_id))
 * once this connection's presence writes are in: the assigned product
 * as the connection last read it (row_known), else the Hello's product,
 * else the platform the Hello or a describe stated last.
 * @return false if that is not known here (the row read answers)
 */
bool registry_pres_product(const struct devconn *c, int64_t *product);

/** Queue what is pending as one store write now. */
void registry_pres_flush(struct registry *reg);

/** The batch's statement (its parameters: the records' JSON array and
    the describe texts, a bytea), for the test that reads its plan. */
const char *registry_pres_statement(void);

/** The handshake's key lookup (its parameter: a text[] of device ids),
    for the test that counts its plans. */
const char *registry_key_lookup_statement(void);

/** Flush, then free the batch state (registry_free). */
void registry_pres_cleanup(struct registry *reg);

/* registry.c */

/** Queue last_heard = now() for the devices heard from since the last
 * flush, HEARD_BATCH_IDS per UPDATE; returns the UPDATEs queued. */
size_t registry_heard_flush(struct registry *reg);

/* registry_api.c */

/** An API request is answered: its callback runs, unless it was
    cancelled (registry_request_cancel). */
void registry_req_finish(struct registry *reg, uint64_t req_id,
			 const struct session_result *res);

/** Queued output went out (an OTA transfer may send more; called by
    registry_io.c). */
void registry_conn_drained(struct devconn *c);

/* registry_desc.c */

/*
 * Describe texts are kept once per distinct text, shared by every
 * connection that reported it, with what is derived from the text (the
 * parsed describe, the columns written to PostgreSQL): a fleet runs a few
 * firmware builds, and a describe is ~0.6 KB of the ~2 KB an idle session
 * may cost and a jansson parse per handshake.
 */
struct desc_blob {
	uint8_t sha[CRYPTO_SHA256_LEN]; /* of text, the reg->descs key */
	uint32_t refs;			/* connections holding it */
	bool shared;			/* in reg->descs */
	struct describe *d;		/* text parsed */
	char *functions;		/* d's functions, JSON, or NULL */
	char *variables;		/* d's variables, JSON, or NULL */
	char *modules;			/* the text's "m", JSON, or NULL */
	char text[];			/* NUL-terminated JSON */
};

/*
 * Merges remembered: (the connection's describe before, the bytes the
 * device sent) -> the shared result, so that a fleet's identical
 * describes are parsed and merged once, not at every handshake. Direct
 * mapped; an entry holds a reference to both blobs (the "before" one too,
 * so that its address is never a different blob's while remembered).
 */
struct desc_memo {
	uint8_t sha[CRYPTO_SHA256_LEN]; /* of the device's bytes */
	size_t len;			/* their length */
	struct desc_blob *from;		/* describe before, or NULL */
	struct desc_blob *to;		/* the merge's result, or NULL */
};

/** The shared copy whose text is text (a devconn's describe). */
static inline struct desc_blob *
registry_desc_of(const char *text)
{
	return (struct desc_blob *)(void *)(text -
					    offsetof(struct desc_blob, text));
}

/** Drop a reference. NULL-safe. */
void registry_desc_release(struct registry *reg, struct desc_blob *b);

/** Release every remembered merge (registry_free). */
void registry_desc_memo_clear_all(struct registry *reg);

/**
 * A describe arrived (the session's own, a device POST d, or an API
 * refresh): merge it with the previous one (a partial describe keeps
 * the other half), keep it and store it. The same text again (the
 * re-describe after the start-up burst, mostly) is not written again.
 */
void registry_desc_apply(struct devconn *c, const char *json, size_t len);

/* registry_hs.c */

/**
 * The 256-byte device block is in: decrypt it on the crypto pool, then
 * look up the key and build the session key (the connection moves
 * through STEP2, KEY, STEP3 to FRAMED, or is closed).
 */
bool registry_hs_step2(struct devconn *c,
		       const uint8_t block[CRYPTO_STEP2_LEN]);

/* What a connection in reg->pool_waitq waits to submit. */
#define POOL_WAIT_STEP2 1 /* the step-2 block (kept in its input) */
#define POOL_WAIT_STEP3 2 /* the session key */

/** Take a closing connection out of the pool's wait queue. */
void registry_conn_pool_unpark(struct devconn *c);

/** Free a cached key entry. NULL-safe. */
void registry_hs_key_entry_free(struct key_entry *e);

/** Free a step-3 job that never reached the pool. NULL is a no-op. */
void registry_hs_step3_free(struct step3_job *j);

/** Free the key lookups not yet sent and their event (registry_free). */
void registry_hs_cleanup(struct registry *reg);

#endif
