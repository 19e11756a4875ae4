/* SPDX-License-Identifier: MIT */
/*
 * Storage: PostgreSQL behind one opaque struct store. store_pg.c is the
 * asynchronous store used on the loop thread (non-blocking libpq watched by
 * libevent, a FIFO queue sent through pipeline mode, reconnect with backoff).
 * store_sync.c holds the blocking helpers for startup and the CLI
 * (migrations, user and device administration); never call those on the
 * loop. Only store_pg.c and store_sync.c include libpq-fe.h.
 */
#ifndef CINDER_STORE_H
#define CINDER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct pg_conn; /* libpq's PGconn */
struct store;
struct store_result;

/*
 * Asynchronous store (loop thread only)
 */

/** Query flags for store_query(). */
enum store_query_flags {
	STORE_Q_READ = 0,	/* fails fast with UNAVAILABLE while down */
	STORE_Q_WRITE = 1 << 0, /* kept queued while down, sent on reconnect */
	/* A hot statement: prepared once per connection (its text is the
	   key), then only executed, so PostgreSQL parses and plans it once.
	   For fixed, known-good SQL only: if the prepare fails, that first
	   execution fails with it and later ones go unprepared. */
	STORE_Q_PREPARE = 1 << 1,
	/* A read that may go before queued (not yet sent) queries, after
	   earlier urgent ones: it may not see writes queued before it. For
	   lookups that must not wait behind a backlog of writes (the
	   handshake's key lookup in a reconnect storm). Ignored on writes. */
	STORE_Q_URGENT = 1 << 2,
};

/** Tunables for store_new(); a zeroed struct (or NULL) means defaults. */
struct store_opts {
	size_t max_queue;	       /* queued + in flight; 0 = 10000 */
	unsigned backoff_min_ms;       /* first reconnect delay; 0 = 100 */
	unsigned backoff_max_ms;       /* delay cap; 0 = 5000 */
	unsigned connect_timeout_ms;   /* one connect attempt; 0 = 10000 */
	unsigned statement_timeout_ms; /* per statement; 0 = 30000 */
	/* A connected, idle connection to take over (store_migrate_keep()'s)
	   instead of connecting; the store owns it from store_new() on, even
	   when that fails. NULL: connect. */
	struct pg_conn *adopt;
};

/** Counters for the health endpoint (store_stats_get()). */
struct store_stats {
	bool up;		   /* connected right now */
	uint64_t queries_ok;	   /* callbacks run with r == 0 */
	uint64_t queries_failed;   /* callbacks run with r < 0 */
	uint64_t reconnects;	   /* successful connects after an outage */
	uint64_t connect_failures; /* failed connect attempts */
	size_t queued;		   /* queries waiting or in flight */
	bool ever_up;		   /* the first connection was made */
	bool first_pending;	   /* the first attempt has not ended yet */
};

/**
 * One query parameter for store_query_params(). value NULL is SQL NULL.
 * A text value is a NUL-terminated string (len ignored); a binary value
 * (bytea) is len raw bytes.
 */
struct store_param {
	const void *value; /* borrowed until store_query_params returns */
	size_t len;	   /* byte length, binary values only */
	bool binary;	   /* send as binary (bytea) */
};

/**
 * Completion callback, run on the loop thread.
 * @param r 0 on success or a CINDER_ERR_* code: CONFLICT (unique
 *     violation), TIMEOUT (statement_timeout_ms passed), UNAVAILABLE (no
 *     connection), DB (any other error)
 * @param res the result; valid only during the call. On failure it may be
 *     NULL (connection trouble) or carry the server's error
 *     (store_result_sqlstate(), store_result_message()).
 * @param arg the caller's argument, as given to store_query()
 * The callback may call store_query() and store_cancel(), but must not call
 * store_free().
 */
typedef void (*store_done_cb)(int r, const struct store_result *res, void *arg);

/**
 * Create a store; it starts connecting on the next loop turn and never
 * blocks. Queries may be submitted at once: reads wait for the outcome of
 * the first connection attempt (and fail if it fails), writes wait for a
 * connection.
 * @param base the loop; borrowed, must outlive the store
 * @param conninfo libpq connection string or URI; copied
 * @param opts tunables, or NULL for defaults; copied
 * @return the store (caller frees with store_free()), or NULL if conninfo
 *     is NULL or malformed (logged)
 */
struct store *store_new(struct event_base *base, const char *conninfo,
			const struct store_opts *opts);

/**
 * Free the store: close the connection and drop every queued query without
 * running its callback (as if each were cancelled). NULL-safe. Must not be
 * called from a store callback.
 */
void store_free(struct store *st);

/**
 * Queue one SQL statement with text parameters ($1, $2, ...). SQL text is
 * never built from data: values go in params.
 * @param flags STORE_Q_READ or STORE_Q_WRITE. A write survives an outage
 *     (at-least-once: a write in flight when the connection dropped is sent
 *     again, so writes should be idempotent); a read fails with
 *     CINDER_ERR_UNAVAILABLE.
 * @param sql one statement; copied
 * @param nparams number of entries in params (0..65535)
 * @param params NUL-terminated values, NULL entries are SQL NULL; copied
 * @param cb completion callback (may be NULL: fire and forget)
 * @param arg passed to cb; the store never dereferences it
 * @param idp if not NULL, receives the query id for store_cancel()
 * @return 0 when queued (cb will run exactly once unless cancelled), or
 *     CINDER_ERR_UNAVAILABLE (read while the database is down),
 *     CINDER_ERR_BUSY (queue full), CINDER_ERR_INVAL; cb is not run then
 */
int store_query(struct store *st, unsigned flags, const char *sql, int nparams,
		const char *const *params, store_done_cb cb, void *arg,
		uint64_t *idp);

/**
 * Like store_query() with typed parameters (binary bytea values).
 * Parameter values are copied before return.
 */
int store_query_params(struct store *st, unsigned flags, const char *sql,
		       int nparams, const struct store_param *params,
		       store_done_cb cb, void *arg, uint64_t *idp);

/**
 * NOTIFY receiver, run on the loop thread for each notification on a
 * channel given to store_listen(). channel and payload are borrowed for
 * the call. Must not call store_free(). After a reconnect it runs once
 * per channel with payload NULL: notifications sent while the store was
 * down are lost, and a query queued from the call sees every change
 * made up to the LISTEN renewed before it.
 */
typedef void (*store_notify_cb)(const char *channel, const char *payload,
				void *arg);

/** Set (or clear, with cb NULL) the notification receiver. */
void store_notify_set(struct store *st, store_notify_cb cb, void *arg);

/**
 * LISTEN on a channel, now and again after every reconnect. Notifications
 * sent while the store is down are lost: the receiver gets a NULL payload
 * after the reconnect, the time to resynchronise. Send with store_query(...,
 * "SELECT pg_notify($1, $2)", ...).
 * @param channel 1..63 characters [a-z0-9_], starting with a letter;
 *     copied
 * @return 0 (also if already listening), CINDER_ERR_INVAL (bad name) or
 *     CINDER_ERR_TOO_BIG (more than 64 channels)
 */
int store_listen(struct store *st, const char *channel);

/**
 * Cancel a queued or in-flight query: its callback will not run. A query
 * already sent to the server may still take effect there.
 * @return 0, or CINDER_ERR_NOTFOUND if id is unknown or already completed
 */
int store_cancel(struct store *st, uint64_t id);

/** @return true while connected to PostgreSQL */
bool store_is_up(const struct store *st);

/** Fill *out with current counters. */
void store_stats_get(const struct store *st, struct store_stats *out);

/*
 * Result accessors (valid only inside the callback)
 */

/** @return number of rows (0 for commands and errors) */
int store_result_ntuples(const struct store_result *res);
/** @return number of columns */
int store_result_nfields(const struct store_result *res);
/** @return the column index of name, or -1 */
int store_result_column(const struct store_result *res, const char *name);
/**
 * @return the text value at (row, col); NULL for SQL NULL or out of range.
 *     Borrowed from res.
 */
const char *store_result_value(const struct store_result *res, int row,
			       int col);
/** @return the byte length of the value at (row, col); 0 if NULL/out of range
 */
size_t store_result_length(const struct store_result *res, int row, int col);
/** @return true if (row, col) is SQL NULL or out of range */
bool store_result_is_null(const struct store_result *res, int row, int col);
/**
 * Decode a bytea column (text format "\x...") into new memory.
 * @param outp receives the bytes (caller frees with free()); NULL on error
 * @param lenp receives the length
 * @return 0, CINDER_ERR_NOTFOUND (NULL value) or CINDER_ERR_MALFORMED
 */
int store_result_bytes(const struct store_result *res, int row, int col,
		       uint8_t **outp, size_t *lenp);
/** @return rows affected by INSERT/UPDATE/DELETE (or SELECT count), or 0 */
long long store_result_affected(const struct store_result *res);
/** @return the five-character SQLSTATE of a failed query, or NULL */
const char *store_result_sqlstate(const struct store_result *res);
/** @return the server's primary error message, or NULL */
const char *store_result_message(const struct store_result *res);

/**
 * Map a SQLSTATE to a CINDER_ERR_* code: 23505 → CONFLICT, 57014
 * (statement timeout or cancel) → TIMEOUT, class 08 and shutdown/startup
 * states (57P01-57P03, 53300) → UNAVAILABLE, others → DB.
 * NULL gives UNAVAILABLE (no server answer).
 */
int store_sqlstate_to_err(const char *sqlstate);

/*
 * Blocking helpers (store_sync.c): startup and CLI only, never on the loop
 */

/**
 * Apply pending migrations: every sql_dir/NNNN_*.sql whose NNNN is not in
 * schema_migrations, in order, in one transaction under
 * pg_advisory_xact_lock, recording each version. Idempotent; safe to run
 * concurrently from several processes. A failure rolls back everything and
 * logs the failing file name.
 * Migration files must not contain transaction control (BEGIN, COMMIT,
 * ROLLBACK, ...); such a file is refused before anything runs.
 * @return 0, CINDER_ERR_UNAVAILABLE (cannot connect), CINDER_ERR_IO (sql_dir
 *     unreadable), CINDER_ERR_INVAL (duplicate version numbers, transaction
 *     control in a file) or CINDER_ERR_DB (a migration failed)
 */
int store_migrate(const char *conninfo, const char *sql_dir);

/** What store_migrate_keep() took, for the start-up log line. */
struct store_startup {
	double connect_ms;    /* connecting and authenticating */
	double check_ms;      /* the migration check, migrations included */
	struct pg_conn *conn; /* the connection, idle; hand it to store_new()
				 (store_opts.adopt) or store_startup_drop() */
};

/**
 * store_migrate(), timed, keeping its connection for the asynchronous
 * store so that start-up connects once. When every migration is recorded
 * already, the check is one query (no transaction, no lock).
 * @param out filled on success (zeroed on failure)
 * @return as store_migrate()
 */
int store_migrate_keep(const char *conninfo, const char *sql_dir,
		       struct store_startup *out);

/** Close a store_startup's connection if nobody took it. NULL-safe. */
void store_startup_drop(struct store_startup *s);

/**
 * Add a user. password_hash is the KDF string (hashing is the caller's).
 * @return 0, CINDER_ERR_CONFLICT (username taken), CINDER_ERR_INVAL,
 *     CINDER_ERR_UNAVAILABLE or CINDER_ERR_DB
 */
int store_sync_user_add(const char *conninfo, const char *username,
			const char *password_hash, bool is_admin);

/**
 * Register a device with its public key (PEM text). device_id is 24 hex
 * characters (stored lowercase). A pending key for the id is removed.
 * @param owner username of the owner, or NULL for unowned
 * @param name device name (unique per owner), or NULL
 * @return 0, CINDER_ERR_NOTFOUND (unknown owner), CINDER_ERR_CONFLICT
 *     (device id, or name for that owner, exists), CINDER_ERR_INVAL,
 *     CINDER_ERR_UNAVAILABLE or CINDER_ERR_DB
 */
int store_sync_device_add(const char *conninfo, const char *device_id,
			  const char *public_key_pem, const char *owner,
			  const char *name);

/** One pending device key (store_sync_pending_list()). */
struct store_pending_key {
	char device_id[25]; /* lowercase hex, NUL-terminated */
	char *public_key;   /* PEM text */
	char *first_seen;   /* timestamps as PostgreSQL text */
	char *last_seen;
	char *last_ip; /* may be NULL */
	long attempts; /* connection attempts seen */
};

/**
 * List keys of unregistered devices, oldest first.
 * @param outp receives an array (free with store_pending_keys_free())
 * @param np receives its length
 * @return 0, CINDER_ERR_UNAVAILABLE or CINDER_ERR_DB
 */
int store_sync_pending_list(const char *conninfo,
			    struct store_pending_key **outp, size_t *np);

/** Free an array from store_sync_pending_list(). NULL-safe. */
void store_pending_keys_free(struct store_pending_key *v, size_t n);

/**
 * Print pending keys as a table (device id, attempts, last seen, last IP)
 * to out, or "no pending devices".
 * @return as store_sync_pending_list()
 */
int store_sync_pending_print(const char *conninfo, FILE *out);

/**
 * Accept a pending key: register (or re-key) the device with it and
 * remove it from the pending list, in one transaction. When the device
 * exists, its key is replaced and owner/name are only changed if given.
 * @param owner username or NULL; @param name device name or NULL
 * @return 0, CINDER_ERR_NOTFOUND (no pending key, or unknown owner),
 *     CINDER_ERR_CONFLICT (name taken), CINDER_ERR_INVAL,
 *     CINDER_ERR_UNAVAILABLE or CINDER_ERR_DB
 */
int store_sync_device_accept(const char *conninfo, const char *device_id,
			     const char *owner, const char *name);

/**
 * Run one statement with typed parameters on a new connection, for CLI
 * subcommands whose SQL lives with their module (cinderd firmware
 * import shares its INSERT with the asynchronous path).
 * @param first if not NULL, receives a copy of the first column of the
 *     first row (caller frees), or NULL when there is no row or it is NULL
 * @param errbuf if not NULL, receives the server's message on failure
 * @return 0, CINDER_ERR_CONFLICT, CINDER_ERR_UNAVAILABLE or CINDER_ERR_DB
 */
int store_sync_query_params(const char *conninfo, const char *sql, int nparams,
			    const struct store_param *params, char **first,
			    char *errbuf, size_t errlen);

#endif
