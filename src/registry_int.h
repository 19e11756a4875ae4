/* SPDX-License-Identifier: MIT */
/*
 * What the registry's files share (registry.c: listener, connection
 * driver, sessions, store writes, public API; registry_hs.c: the
 * handshake). Nothing outside them includes this.
 */
#ifndef CINDER_REGISTRY_INT_H
#define CINDER_REGISTRY_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <arpa/inet.h>
#include <event2/util.h>

#include "crypto.h"
#include "registry.h"
#include "session.h"

struct evbuffer;
struct store_result;

#define DEVICE_ID_HEX 24
#define KEY_CACHE_MAX 100000	/* cached device keys */
#define OUTPUT_MAX (256 * 1024) /* unsent bytes before we give up */
#define DESCRIBE_MAX 16384	/* largest describe JSON kept */
#define FLUSH_INTERVAL_S 30	/* last_heard write interval */
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

enum dc_state {
	DC_NONCE = 0, /* nonce sent, reading the 256-byte block */
	DC_STEP2,     /* block being decrypted on the pool */
	DC_KEY,	      /* looking up the device's key */
	DC_STEP3,     /* session key being built on the pool */
	DC_FRAMED,    /* encrypted session running */
	DC_CLOSING,   /* closed, waiting to be reaped */
};

struct devconn {
	struct registry *reg;		 /* owner */
	uint64_t id;			 /* connection id (never reused) */
	enum dc_state state;		 /* where in the lifecycle */
	struct bufferevent *bev;	 /* the socket */
	struct event *timer;		 /* handshake deadline / session tick */
	char ip[INET6_ADDRSTRLEN];	 /* peer address */
	char peer[INET6_ADDRSTRLEN + 8]; /* "ip:port" for logs */
	char idhex[DEVICE_ID_HEX + 1];	 /* device id once known */
	char logctx[40];		 /* "dev <id>" or "conn <n> <peer>" */
	uint8_t nonce[CRYPTO_NONCE_LEN]; /* step 1 */
	uint8_t supplied_der[CRYPTO_STEP2_KEY_MAX]; /* device's own key */
	size_t supplied_der_len;		    /* 0: none sent */
	struct crypto_key *dev_key; /* device public key (owned) */
	struct crypto_channel ch;   /* AES state, FRAMED only */
	struct session *session;    /* FRAMED only */
	uint64_t last_rx_ms;	    /* last bytes from the device */
	size_t in_counted;	    /* input bytes already counted */
	uint64_t opened_ms;	    /* accept time */
	bool in_handshake;	    /* counted in handshakes_active */
	bool registered;	    /* reg->devices maps idhex to us */
	bool online;		    /* presence said online */
	bool heard;		    /* bytes since the last flush */
	bool hello_seen;	    /* device authenticated by its Hello */
	struct session_hello hello; /* copied Hello fields */
	char *describe;		    /* last describe JSON (owned) */
	int64_t owner_id;	    /* owning user id, 0 = unowned */
	bool safe_mode;		    /* the describe shows safe mode */
	uint32_t max_binary;	    /* largest OTA image, 0: not said */
	uint16_t chunk_size;	    /* OTA chunk size, 0: not said */
	uint64_t refresh_req;	    /* API describe in flight, 0: none */
	uint64_t refresh_last_ms;   /* when the last one started */
	size_t n_refresh_waiters;   /* requests sharing refresh_req */
	uint64_t refresh_waiters[REFRESH_WAITERS_MAX]; /* their ids */
	TAILQ_ENTRY(devconn) reap;		       /* reap list link */
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
	bool stopping;			     /* no new connections */
	struct hmap *conns;		     /* conn id -> devconn */
	struct hmap *devices;		     /* idhex -> devconn (newest) */
	struct hmap *keys;		     /* idhex -> struct key_entry */
	struct hmap *reqs;		     /* req id -> pending_req */
	uint64_t next_conn_id;		     /* counter */
	uint64_t next_req_id;		     /* counter */
	struct devconn_list reap_list;	     /* closed, not yet freed */
	struct event *reap_ev;		     /* deferred reaper */
	struct event *flush_ev;		     /* last_heard coalescing */
	struct registry_stats stats;	     /* counters */
	registry_presence_cb presence_cb;    /* presence hook */
	void *presence_arg;
	registry_event_cb event_cb; /* device event hook */
	void *event_arg;
	registry_subscribe_cb sub_cb;	   /* device subscription hook */
	registry_conn_closed_cb closed_cb; /* and its cleanup */
	void *sub_arg;
	char node_id[128];		  /* this node's name */
	registry_describe_cb describe_cb; /* describe hook (healer) */
	void *describe_arg;
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
	size_t der_len;			    /* bytes in der */
	uint8_t der[];			    /* the public key, DER */
};

/* A store or pool completion ticket: ids only. */
struct ticket {
	struct registry *reg; /* lives longer than any ticket */
	uint64_t conn_id;     /* the connection it is for */
};

/* Monotonic milliseconds. */
uint64_t registry_now_ms(void);

/** The connection with this id, unless it is gone or closing. */
struct devconn *registry_conn_get(struct registry *reg, uint64_t id);

/**
 * Close a connection: log once, say offline, stop I/O, and hand it to the
 * reaper. Safe from inside any of the connection's callbacks.
 */
void registry_conn_close(struct devconn *c, int status, const char *reason);

/** A handshake ended (ok or not): counters, and the listener's pacing. */
void registry_handshake_end(struct devconn *c, bool ok);

/** Decrypt and dispatch every complete frame in the input buffer. */
void registry_conn_read_frames(struct devconn *c);

/** The connection's timer: keep-alive, session deadlines (fd, what unused). */
void registry_conn_timer_cb(evutil_socket_t fd, short what, void *arg);

/** store_query callback for writes: logs a failure; arg names the write. */
void registry_store_write_done(int r, const struct store_result *res,
			       void *arg);

/** The session callbacks of every device connection. */
extern const struct session_ops registry_sess_ops;

/* registry_hs.c */

/**
 * The 256-byte device block is in: decrypt it on the crypto pool, then
 * look up the key and build the session key (the connection moves
 * through STEP2, KEY, STEP3 to FRAMED, or is closed).
 */
void registry_hs_step2(struct devconn *c, struct evbuffer *in);

/** Free a cached key entry. NULL-safe. */
void registry_hs_key_entry_free(struct key_entry *e);

#endif
