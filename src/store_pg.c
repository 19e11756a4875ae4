/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous PostgreSQL store: non-blocking libpq driven by libevent.
 * Queries wait in one FIFO queue and go out through libpq's pipeline mode
 * with PQsendQueryParams (parameters only, never formatted SQL), each with
 * its own sync; results come back in order. When the connection drops,
 * reads fail with CINDER_ERR_UNAVAILABLE, writes stay queued (those in
 * flight are sent again) and the store reconnects with exponential
 * backoff. Loop thread only; no blocking calls.
 */
#include "config.h"

#include <sys/queue.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "tmpmem.h"
#include "xmalloc.h"

#define STORE_DEFAULT_MAX_QUEUE 10000
#define STORE_DEFAULT_BACKOFF_MIN_MS 100
#define STORE_DEFAULT_BACKOFF_MAX_MS 5000
#define STORE_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define STORE_DEFAULT_STATEMENT_TIMEOUT_MS 30000
#define STORE_MAX_PARAMS 65535
/* A write lost in flight this many times is failed, not sent again: it
 * may be what brings the server down. */
#define STORE_MAX_RESENDS 3
/* Queries sent ahead in the pipeline before their results come back. */
#define STORE_MAX_INFLIGHT 256
/* Bytes of queries handed to libpq before they are flushed; while the
 * socket takes no more, the rest waits in the queue. libpq's output
 * buffer grows to the most it ever held unsent and never shrinks: with
 * up to STORE_MAX_INFLIGHT queries handed over at once, a connect storm
 * that outran the database left it at 1-2 MiB at the top of the heap,
 * resident after the devices had gone (B2). */
#define STORE_SEND_BYTES 16384
/* libpq keeps an entry (24 bytes) per command in flight, a query or its
 * sync, and frees none until the connection is closed: done, they wait on
 * a list for reuse. Made during a connect storm, the first time that many
 * were in flight, they landed among the sessions' objects, one here and
 * there, and once the fleet had gone ~190 pages (0.75 MB) were resident
 * for them alone (B2: RSS after the devices left). store_prime() makes as
 * many as can ever be in flight (a query and its sync each, plus a
 * prepare's) when the connection is new: together, and reused from then
 * on. */
#define STORE_PRIME_ENTRIES (2 * (STORE_MAX_INFLIGHT + 1))
#define STORE_PRIME_FLUSH 128 /* empty queries handed to libpq per flush */
/* LISTEN channels: at most this many, names as store_listen() says. */
#define STORE_MAX_CHANNELS 64
#define STORE_CHANNEL_MAX_LEN 63
/* Statements prepared per connection (STORE_Q_PREPARE); more go out
 * unprepared. */
#define STORE_MAX_PREPARED 32

/* One queued query. Parameters live in one allocation (blob). */
struct store_query {
	TAILQ_ENTRY(store_query) entry; /* in queue or failing */
	uint64_t id;			/* handed to the caller */
	unsigned flags;			/* STORE_Q_* */
	bool cancelled;			/* callback must not run */
	int prep;			/* prepare entry: 1 + its slot */
	unsigned resends;		/* times re-queued after a drop */
	store_done_cb cb;		/* may be NULL */
	void *arg;			/* caller's, never dereferenced */
	char *sql;			/* statement text */
	int nparams;			/* entries in the arrays below */
	const char **values;		/* into blob; NULL = SQL NULL */
	int *lengths;			/* binary lengths */
	int *formats;			/* 0 text, 1 binary */
	char *blob;			/* parameter bytes */
};

TAILQ_HEAD(store_queue, store_query);

/* A statement prepared on the current connection as "cinder_p<slot>". */
struct store_prepared {
	char *sql;   /* its text, the lookup key */
	bool failed; /* the prepare failed: send it unprepared */
};

enum store_state {
	STORE_DOWN,	  /* no connection; retry timer may be pending */
	STORE_CONNECTING, /* PQconnectPoll in progress */
	STORE_UP,	  /* connected */
};

struct store_result {
	PGresult *res; /* NULL when there was no server answer */
};

struct store {
	struct event_base *base;   /* borrowed */
	char *conninfo;		   /* may hold a password: never logged */
	struct store_opts opts;	   /* with defaults filled in */
	PGconn *conn;		   /* NULL while down */
	enum store_state state;	   /* see enum */
	bool outage;		   /* a connection failed; reads fail fast */
	bool ever_up;		   /* first connection made */
	bool adopting;		   /* conn is opts.adopt, taken on the loop */
	bool flush_pending;	   /* PQflush returned 1 */
	bool priming;		   /* store_prime()'s results to come */
	struct event *ev_sock;	   /* connect poll, or persistent read */
	struct event *ev_write;	   /* flush when writable */
	struct event *ev_retry;	   /* reconnect backoff timer */
	struct event *ev_ctimeout; /* connect attempt deadline */
	struct event *ev_kick;	   /* deferred send of the next query */
	unsigned backoff_ms;	   /* next reconnect delay */
	unsigned attempts;	   /* failed attempts in this outage */
	struct store_queue queue;  /* waiting to be sent */
	struct store_query *urgent_tail; /* last urgent read in queue */
	struct store_queue failing;	 /* reads being failed after a drop */
	struct store_queue inflight;	 /* sent, oldest first */
	size_t ninflight;		 /* entries in inflight */
	PGresult *head_res;		 /* result of the oldest in flight */
	size_t nqueued;			 /* queue + failing + inflight */
	uint64_t next_id;		 /* last id handed out */
	int cb_depth; /* callbacks running (store_free check) */
	char *channels[STORE_MAX_CHANNELS]; /* LISTENed, renewed on connect */
	size_t nchannels;		    /* entries used in channels */
	struct store_prepared prepared[STORE_MAX_PREPARED]; /* this conn */
	size_t nprepared;				    /* used */
	store_notify_cb notify_cb; /* NOTIFY receiver, may be NULL */
	void *notify_arg;	   /* its argument */
	struct store_stats stats;  /* counters (up/queued filled on read) */
};

static void store_connect_start(struct store *st);
static void store_send_more(struct store *st);

/* Take q out of the queue, keeping urgent_tail on a queued query. */
static void
store_queue_remove(struct store *st, struct store_query *q)
{
	struct store_query *prev;

	if (q == st->urgent_tail) {
		prev = TAILQ_PREV(q, store_queue, entry);
		st->urgent_tail = prev != NULL && (prev->flags & STORE_Q_URGENT)
					  ? prev
					  : NULL;
	}
	TAILQ_REMOVE(&st->queue, q, entry);
}

static void
store_query_free(struct store_query *q)
{
	if (q == NULL)
		return;
	tmpmem_free(q->sql);
	tmpmem_free(q->values);
	tmpmem_free(q->lengths);
	tmpmem_free(q->formats);
	tmpmem_free(q->blob);
	tmpmem_free(q);
}

/*
 * A libpq message on one log line: runs of newlines and tabs become one
 * space, trailing blanks go.
 */
static char *
store_conn_message(const PGconn *conn)
{
	return store_msg_oneline(conn != NULL ? PQerrorMessage(conn) : NULL);
}

int
store_sqlstate_to_err(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return CINDER_ERR_UNAVAILABLE;
	if (strcmp(sqlstate, "23505") == 0)
		return CINDER_ERR_CONFLICT;
	if (strcmp(sqlstate, "57014") == 0)
		return CINDER_ERR_TIMEOUT;
	if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
	    strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0 ||
	    strcmp(sqlstate, "53300") == 0)
		return CINDER_ERR_UNAVAILABLE;
	return CINDER_ERR_DB;
}

static void
store_notice_cb(void *arg, const char *message)
{
	log_debug("database notice: %s", message);
}

/* Run a query's callback (unless cancelled), count it, and free it. */
static void
store_query_finish(struct store *st, struct store_query *q, int r,
		   PGresult *res)
{
	struct store_result wrap = {.res = res};

	st->nqueued--;
	/* The store's own prepares are not a caller's queries. */
	if (q->prep == 0 && r == 0)
		st->stats.queries_ok++;
	else if (q->prep == 0)
		st->stats.queries_failed++;
	if (!q->cancelled && q->cb != NULL) {
		st->cb_depth++;
		q->cb(r, res != NULL ? &wrap : NULL, q->arg);
		st->cb_depth--;
	}
	store_query_free(q);
}

/* Fail the reads moved to st->failing; callbacks may queue more work. */
static void
store_fail_reads(struct store *st)
{
	struct store_query *q;

	while ((q = TAILQ_FIRST(&st->failing)) != NULL) {
		TAILQ_REMOVE(&st->failing, q, entry);
		store_query_finish(st, q, CINDER_ERR_UNAVAILABLE, NULL);
	}
}

static void
store_events_close(struct store *st)
{
	if (st->ev_sock != NULL) {
		event_free(st->ev_sock);
		st->ev_sock = NULL;
	}
	if (st->ev_write != NULL) {
		event_free(st->ev_write);
		st->ev_write = NULL;
	}
	evtimer_del(st->ev_ctimeout);
	st->flush_pending = false;
}

/* Prepared statements live and die with their connection. */
static void
store_prepared_clear(struct store *st)
{
	size_t i;

	for (i = 0; i < st->nprepared; i++)
		free(st->prepared[i].sql);
	st->nprepared = 0;
}

static void
store_conn_close(struct store *st)
{
	store_events_close(st);
	store_prepared_clear(st);
	st->priming = false;
	if (st->head_res != NULL) {
		PQclear(st->head_res);
		st->head_res = NULL;
	}
	if (st->conn != NULL) {
		PQfinish(st->conn);
		st->conn = NULL;
	}
	st->state = STORE_DOWN;
}

static void
store_schedule_retry(struct store *st)
{
	struct timeval tv;

	tv.tv_sec = st->backoff_ms / 1000;
	tv.tv_usec = (st->backoff_ms % 1000) * 1000;
	evtimer_add(st->ev_retry, &tv);
	st->backoff_ms *= 2;
	if (st->backoff_ms > st->opts.backoff_max_ms)
		st->backoff_ms = st->opts.backoff_max_ms;
}

/*
 * Enter (or stay in) an outage: move every queued read to the failing
 * list; writes stay queued. The caller runs store_fail_reads() last, once
 * the store is in a consistent state.
 */
static void
store_outage_begin(struct store *st)
{
	struct store_query *q, *next;

	st->outage = true;
	for (q = TAILQ_FIRST(&st->queue); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->flags & STORE_Q_WRITE)
			continue;
		store_queue_remove(st, q);
		TAILQ_INSERT_TAIL(&st->failing, q, entry);
	}
	st->urgent_tail = NULL; /* every read has left the queue */
}

/* A connect attempt failed (or timed out): back off and try again. */
static void
store_connect_failed(struct store *st, const char *why)
{
	char *msg = why != NULL ? xstrdup(why) : store_conn_message(st->conn);

	st->stats.connect_failures++;
	st->attempts++;
	store_conn_close(st);
	if (!st->outage)
		log_warn("could not connect to database: %s", msg);
	else
		log_debug("could not connect to database (attempt %u): %s",
			  st->attempts, msg);
	free(msg);
	store_outage_begin(st);
	store_schedule_retry(st);
	store_fail_reads(st);
}

/*
 * An established connection went away. Queries in flight are sent again,
 * in order, after reconnecting if they are writes, failed if reads.
 */
static void
store_connection_lost_why(struct store *st, const char *why)
{
	char *msg = why != NULL ? xstrdup(why) : store_conn_message(st->conn);
	struct store_query *q;

	store_conn_close(st);
	/* Newest first, so that inserting at the heads keeps the order. */
	while ((q = TAILQ_LAST(&st->inflight, store_queue)) != NULL) {
		TAILQ_REMOVE(&st->inflight, q, entry);
		st->ninflight--;
		if (q->cancelled || q->prep != 0) {
			/* a prepare is made again on the next connection */
			st->nqueued--;
			store_query_free(q);
		} else if ((q->flags & STORE_Q_WRITE) &&
			   q->resends < STORE_MAX_RESENDS) {
			q->resends++;
			TAILQ_INSERT_HEAD(&st->queue, q, entry);
		} else {
			TAILQ_INSERT_HEAD(&st->failing, q, entry);
		}
	}
	if (!st->outage)
		log_warn("database connection lost: %s", msg);
	free(msg);
	st->attempts = 0;
	st->backoff_ms = st->opts.backoff_min_ms;
	store_outage_begin(st);
	store_schedule_retry(st);
	store_fail_reads(st);
}

static void
store_connection_lost(struct store *st)
{
	store_connection_lost_why(st, NULL);
}

static void
store_flush(struct store *st)
{
	int r = PQflush(st->conn);

	if (r < 0) {
		store_connection_lost(st);
		return;
	}
	st->flush_pending = r == 1;
	if (st->flush_pending)
		event_add(st->ev_write, NULL);
}

/* Fail the oldest query in flight with r (no result). */
static void
store_fail_head(struct store *st, int r)
{
	struct store_query *q = TAILQ_FIRST(&st->inflight);

	if (st->head_res != NULL) {
		PQclear(st->head_res);
		st->head_res = NULL;
	}
	if (q == NULL)
		return;
	TAILQ_REMOVE(&st->inflight, q, entry);
	st->ninflight--;
	store_query_finish(st, q, r, NULL);
}

/* The oldest query in flight has all its results: deliver them. */
static void
store_complete_head(struct store *st)
{
	struct store_query *q = TAILQ_FIRST(&st->inflight);
	PGresult *res = st->head_res;
	ExecStatusType status;
	const char *sqlstate = NULL;
	int r = 0;

	status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK &&
	    status != PGRES_EMPTY_QUERY) {
		if (res != NULL)
			sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		/* No SQLSTATE on a healthy connection: a client-side error. */
		r = sqlstate == NULL ? CINDER_ERR_DB
				     : store_sqlstate_to_err(sqlstate);
	}
	if (r == CINDER_ERR_UNAVAILABLE ||
	    PQstatus(st->conn) == CONNECTION_BAD) {
		/* Connection trouble, not the query's fault. */
		store_connection_lost(st);
		return;
	}
	TAILQ_REMOVE(&st->inflight, q, entry);
	st->ninflight--;
	st->head_res = NULL;
	if (r != 0 && q->prep != 0 && (size_t)q->prep <= st->nprepared) {
		st->prepared[q->prep - 1].failed = true;
		log_warn("could not prepare a statement, sending it "
			 "unprepared: %s",
			 PQresultErrorMessage(res));
	}
	if (r != 0)
		log_debug("query %llu failed: %s", (unsigned long long)q->id,
			  PQresultErrorMessage(res));
	store_query_finish(st, q, r, res);
	PQclear(res);
}

/*
 * Collect results while libpq has them. In pipeline mode each query
 * gives its result(s), then NULL, then PGRES_PIPELINE_SYNC for the sync
 * sent after it; the sync marks the query complete.
 */
static void
store_process_results(struct store *st)
{
	PGresult *res;
	ExecStatusType status;
	int nulls = 0;

	while (st->state == STORE_UP &&
	       (st->priming || !TAILQ_EMPTY(&st->inflight)) &&
	       !PQisBusy(st->conn)) {
		res = PQgetResult(st->conn);
		if (st->priming) {
			/* store_prime()'s come first, up to its sync */
			if (res == NULL) {
				if (++nulls > 1)
					break;
				continue;
			}
			nulls = 0;
			if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
				st->priming = false;
			PQclear(res);
			continue;
		}
		if (res == NULL) {
			/* End of the head's results; its sync follows. Two
			 * NULLs in a row: libpq has nothing more yet. */
			if (st->head_res == NULL || ++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		status = PQresultStatus(res);
		if (status == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			if (st->head_res == NULL) {
				store_connection_lost_why(
					st, "unexpected pipeline sync");
				return;
			}
			store_complete_head(st);
			continue;
		}
		if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT ||
		    status == PGRES_COPY_BOTH) {
			/* COPY is not supported here; the only way out of
			 * the copy state is a new connection. */
			PQclear(res);
			store_fail_head(st, CINDER_ERR_INVAL);
			store_connection_lost_why(
				st, "COPY is not supported by the store, "
				    "reconnecting");
			return;
		}
		/* One statement gives one result; keep the first error. */
		if (st->head_res == NULL) {
			st->head_res = res;
		} else if (status == PGRES_FATAL_ERROR &&
			   PQresultStatus(st->head_res) != PGRES_FATAL_ERROR) {
			PQclear(st->head_res);
			st->head_res = res;
		} else {
			PQclear(res);
		}
	}
	store_send_more(st);
}

/* Hand NOTIFY messages libpq has parsed to the notify callback. */
static void
store_drain_notifies(struct store *st)
{
	PGnotify *n;

	while (st->state == STORE_UP && (n = PQnotifies(st->conn)) != NULL) {
		if (st->notify_cb != NULL) {
			st->cb_depth++;
			st->notify_cb(n->relname, n->extra, st->notify_arg);
			st->cb_depth--;
		}
		PQfreemem(n);
	}
}

static void
store_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;

	if (!PQconsumeInput(st->conn)) {
		store_connection_lost(st);
		return;
	}
	store_drain_notifies(st);
	if (st->state == STORE_UP && st->flush_pending)
		store_flush(st);
	if (st->state != STORE_UP)
		return;
	store_process_results(st);
	store_drain_notifies(st);
	if (st->state == STORE_UP && PQstatus(st->conn) == CONNECTION_BAD)
		store_connection_lost(st);
}

static void
store_sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;

	if (st->state == STORE_UP && st->flush_pending)
		store_flush(st);
	if (st->state == STORE_UP && !st->flush_pending)
		store_send_more(st);
}

/*
 * The slot of q's statement prepared on this connection, sending the
 * prepare (its own pipeline entry, with its own sync) the first time.
 * @return the slot, -1 to send q unprepared, -2 if the connection was
 *     lost (q is back at the head of the queue)
 */
static int
store_prepare(struct store *st, struct store_query *q)
{
	struct store_query *p;
	char name[24];
	size_t i;
	int ok;

	for (i = 0; i < st->nprepared; i++) {
		if (strcmp(st->prepared[i].sql, q->sql) == 0)
			return st->prepared[i].failed ? -1 : (int)i;
	}
	if (st->nprepared >= STORE_MAX_PREPARED)
		return -1;
	snprintf(name, sizeof(name), "cinder_p%zu", i);
	ok = PQsendPrepare(st->conn, name, q->sql, q->nparams, NULL);
	if (ok && !PQpipelineSync(st->conn))
		ok = -1;
	if (ok <= 0 && (ok < 0 || PQstatus(st->conn) == CONNECTION_BAD)) {
		TAILQ_INSERT_HEAD(&st->queue, q, entry);
		store_connection_lost(st);
		return -2;
	}
	if (ok == 0)
		return -1;
	st->prepared[i].sql = xstrdup(q->sql);
	st->prepared[i].failed = false;
	st->nprepared++;
	p = tmpmem_calloc(1, sizeof(*p));
	p->prep = (int)i + 1;
	p->id = ++st->next_id;
	TAILQ_INSERT_TAIL(&st->inflight, p, entry);
	st->ninflight++;
	st->nqueued++;
	return (int)i;
}

/* About what q puts into libpq's output buffer (its parameters, and its
 * text unless prepared). */
static size_t
store_query_bytes(const struct store_query *q, bool prepared)
{
	size_t n = prepared ? 0 : strlen(q->sql);
	int i;

	for (i = 0; i < q->nparams; i++)
		if (q->values[i] != NULL)
			n += (size_t)q->lengths[i];
	return n;
}

/*
 * Send queued queries into the pipeline, each followed by a sync so that
 * it runs in its own implicit transaction and an error aborts only it.
 * They are flushed every STORE_SEND_BYTES; once the socket takes no more
 * (flush_pending), the rest waits until it does (store_sock_write_cb).
 */
static void
store_send_more(struct store *st)
{
	struct store_query *q;
	bool sent = false;
	size_t bytes = 0;
	char name[24];
	int ok, slot;

	while (st->state == STORE_UP && !st->flush_pending &&
	       st->ninflight < STORE_MAX_INFLIGHT &&
	       (q = TAILQ_FIRST(&st->queue)) != NULL) {
		store_queue_remove(st, q);
		slot = (q->flags & STORE_Q_PREPARE) ? store_prepare(st, q) : -1;
		if (slot == -2)
			return; /* the connection is gone */
		if (slot >= 0) {
			snprintf(name, sizeof(name), "cinder_p%d", slot);
			ok = PQsendQueryPrepared(st->conn, name, q->nparams,
						 q->values, q->lengths,
						 q->formats, 0);
		} else {
			ok = PQsendQueryParams(st->conn, q->sql, q->nparams,
					       NULL, q->values, q->lengths,
					       q->formats, 0);
		}
		if (ok && !PQpipelineSync(st->conn))
			ok = -1;
		if (ok <= 0 &&
		    (ok < 0 || PQstatus(st->conn) == CONNECTION_BAD)) {
			TAILQ_INSERT_TAIL(&st->inflight, q, entry);
			st->ninflight++;
			store_connection_lost(st);
			return;
		}
		if (ok == 0) {
			/* Refused by libpq itself: the query's fault. */
			log_debug("could not send query %llu: %s",
				  (unsigned long long)q->id,
				  PQerrorMessage(st->conn));
			store_query_finish(st, q, CINDER_ERR_DB, NULL);
			continue;
		}
		TAILQ_INSERT_TAIL(&st->inflight, q, entry);
		st->ninflight++;
		sent = true;
		bytes += store_query_bytes(q, slot >= 0);
		if (bytes >= STORE_SEND_BYTES) {
			store_flush(st);
			sent = false;
			bytes = 0;
		}
	}
	if (sent && st->state == STORE_UP)
		store_flush(st);
}

static void
store_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	store_send_more(arg);
}

/* A query the store makes for itself: no parameters, no callback. */
static struct store_query *
store_query_internal(struct store *st, const char *sql)
{
	struct store_query *q = tmpmem_calloc(1, sizeof(*q));

	q->flags = STORE_Q_WRITE;
	q->sql = tmpmem_strdup(sql);
	q->id = ++st->next_id;
	return q;
}

/*
 * Every session gets the statement timeout first: with one query in
 * flight, a query stuck on a lock would otherwise stall all the others.
 */
static void
store_session_setup(struct store *st)
{
	struct store_query *q;
	char ms[32];
	size_t len;

	snprintf(ms, sizeof(ms), "%u", st->opts.statement_timeout_ms);
	len = strlen(ms) + 1;
	q = store_query_internal(
		st, "SELECT set_config('statement_timeout', $1, false)");
	q->nparams = 1;
	q->values = tmpmem_calloc(1, sizeof(*q->values));
	q->lengths = tmpmem_calloc(1, sizeof(*q->lengths));
	q->formats = tmpmem_calloc(1, sizeof(*q->formats));
	q->blob = tmpmem_alloc(len);
	memcpy(q->blob, ms, len);
	q->values[0] = q->blob;
	TAILQ_INSERT_HEAD(&st->queue, q, entry);
	st->nqueued++;
}

/* A new session listens to nothing: LISTEN again, before anything else. */
static void
store_listen_renew(struct store *st)
{
	struct store_query *q;
	char *sql;
	size_t i;

	for (i = st->nchannels; i > 0; i--) {
		sql = xasprintf("LISTEN %s", st->channels[i - 1]);
		q = store_query_internal(st, sql);
		free(sql);
		TAILQ_INSERT_HEAD(&st->queue, q, entry);
		st->nqueued++;
	}
}

/*
 * Have libpq make STORE_PRIME_ENTRIES command entries now (see there):
 * as many empty queries and one sync, in flight together. Empty queries
 * cost the server next to nothing, and unlike syncs libpq does not write
 * each to the socket on its own (514 syncs took 5-8 ms, these 1-7 ms, on
 * a loaded box). Queries sent meanwhile follow them in the pipeline.
 */
static void
store_prime(struct store *st)
{
	unsigned i;

	for (i = 0; i + 1 < STORE_PRIME_ENTRIES; i++) {
		if (!PQsendQueryParams(st->conn, "", 0, NULL, NULL, NULL, NULL,
				       0))
			break;
		if (i % STORE_PRIME_FLUSH == STORE_PRIME_FLUSH - 1 &&
		    PQflush(st->conn) < 0)
			break;
	}
	if (i == 0)
		return; /* nothing sent: the read callback finds out why */
	if (!PQpipelineSync(st->conn)) {
		store_connection_lost(st);
		return;
	}
	st->priming = true;
	store_flush(st);
}

static void
store_connected(struct store *st)
{
	int fd = PQsocket(st->conn);
	bool lost;
	size_t i;

	store_events_close(st);
	if (PQsetnonblocking(st->conn, 1) != 0) {
		store_connect_failed(st, "could not set non-blocking mode");
		return;
	}
	if (PQenterPipelineMode(st->conn) != 1) {
		store_connect_failed(st, "could not enter pipeline mode");
		return;
	}
	PQsetNoticeProcessor(st->conn, store_notice_cb, st);
	st->ev_sock = event_new(st->base, fd, EV_READ | EV_PERSIST,
				store_sock_read_cb, st);
	st->ev_write =
		event_new(st->base, fd, EV_WRITE, store_sock_write_cb, st);
	if (st->ev_sock == NULL || st->ev_write == NULL ||
	    event_add(st->ev_sock, NULL) != 0) {
		store_connect_failed(st, "could not watch the socket");
		return;
	}
	st->state = STORE_UP;
	st->backoff_ms = st->opts.backoff_min_ms;
	if (st->outage) {
		st->stats.reconnects++;
		log_notice("database connection restored after %u failed "
			   "attempt%s",
			   st->attempts, st->attempts == 1 ? "" : "s");
	} else {
		log_info("connected to database");
	}
	lost = st->outage && st->ever_up;
	st->outage = false;
	st->ever_up = true;
	st->attempts = 0;
	store_prime(st);
	if (st->state != STORE_UP)
		return; /* lost in store_flush(): it reconnects */
	store_listen_renew(st);
	store_session_setup(st);
	store_send_more(st);
	/* What a subscriber queues now goes after the LISTENs: it sees
	   every change that a lost notification told of. */
	for (i = 0; lost && i < st->nchannels && st->notify_cb != NULL; i++) {
		st->cb_depth++;
		st->notify_cb(st->channels[i], NULL, st->notify_arg);
		st->cb_depth--;
	}
}

static void store_connect_poll_cb(evutil_socket_t fd, short what, void *arg);

/* Wait for the socket as PQconnectPoll asked; it may change per call. */
static void
store_connect_wait(struct store *st, PostgresPollingStatusType ps)
{
	int fd = PQsocket(st->conn);

	if (st->ev_sock != NULL) {
		event_free(st->ev_sock);
		st->ev_sock = NULL;
	}
	if (fd < 0) {
		store_connect_failed(st, NULL);
		return;
	}
	st->ev_sock = event_new(
		st->base, fd, ps == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
		store_connect_poll_cb, st);
	if (st->ev_sock == NULL || event_add(st->ev_sock, NULL) != 0)
		store_connect_failed(st, "could not watch the socket");
}

static void
store_connect_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	PostgresPollingStatusType ps = PQconnectPoll(st->conn);

	switch (ps) {
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		store_connect_wait(st, ps);
		break;
	case PGRES_POLLING_OK:
		store_connected(st);
		break;
	case PGRES_POLLING_FAILED:
	case PGRES_POLLING_ACTIVE:
	default:
		store_connect_failed(st, NULL);
		break;
	}
}

static void
store_connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	store_connect_failed(arg, "timed out");
}

static void
store_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;

	if (st->adopting) {
		/* start-up's connection, idle after the migration check */
		st->adopting = false;
		if (PQstatus(st->conn) == CONNECTION_OK &&
		    PQtransactionStatus(st->conn) == PQTRANS_IDLE) {
			store_connected(st);
			return;
		}
		store_conn_close(st);
	}
	store_connect_start(st);
}

static void
store_connect_start(struct store *st)
{
	struct timeval tv;

	st->conn = PQconnectStart(st->conninfo);
	if (st->conn == NULL) {
		store_connect_failed(st, "out of memory");
		return;
	}
	if (PQstatus(st->conn) == CONNECTION_BAD) {
		store_connect_failed(st, NULL);
		return;
	}
	st->state = STORE_CONNECTING;
	tv.tv_sec = st->opts.connect_timeout_ms / 1000;
	tv.tv_usec = (st->opts.connect_timeout_ms % 1000) * 1000;
	evtimer_add(st->ev_ctimeout, &tv);
	/* libpq: after PQconnectStart, behave as if polling asked to write. */
	store_connect_wait(st, PGRES_POLLING_WRITING);
}

struct store *
store_new(struct event_base *base, const char *conninfo,
	  const struct store_opts *opts)
{
	struct store *st;
	PQconninfoOption *parsed;
	char *perr = NULL;

	if (base == NULL || conninfo == NULL) {
		if (opts != NULL && opts->adopt != NULL)
			PQfinish(opts->adopt);
		return NULL;
	}
	/* Details are not logged: they may quote part of a password. */
	parsed = PQconninfoParse(conninfo, &perr);
	if (parsed == NULL) {
		log_err("invalid database connection string");
		PQfreemem(perr);
		if (opts != NULL && opts->adopt != NULL)
			PQfinish(opts->adopt);
		return NULL;
	}
	PQconninfoFree(parsed);
	st = xcalloc(1, sizeof(*st));
	st->base = base;
	st->conninfo = xstrdup(conninfo);
	if (opts != NULL)
		st->opts = *opts;
	if (st->opts.adopt != NULL) {
		/* store_free() closes it if the events below fail */
		st->conn = st->opts.adopt;
		st->opts.adopt = NULL;
		st->state = STORE_CONNECTING;
		st->adopting = true;
	}
	if (st->opts.max_queue == 0)
		st->opts.max_queue = STORE_DEFAULT_MAX_QUEUE;
	if (st->opts.backoff_min_ms == 0)
		st->opts.backoff_min_ms = STORE_DEFAULT_BACKOFF_MIN_MS;
	if (st->opts.backoff_max_ms == 0)
		st->opts.backoff_max_ms = STORE_DEFAULT_BACKOFF_MAX_MS;
	if (st->opts.backoff_max_ms < st->opts.backoff_min_ms)
		st->opts.backoff_max_ms = st->opts.backoff_min_ms;
	if (st->opts.connect_timeout_ms == 0)
		st->opts.connect_timeout_ms = STORE_DEFAULT_CONNECT_TIMEOUT_MS;
	if (st->opts.statement_timeout_ms == 0)
		st->opts.statement_timeout_ms =
			STORE_DEFAULT_STATEMENT_TIMEOUT_MS;
	st->backoff_ms = st->opts.backoff_min_ms;
	TAILQ_INIT(&st->queue);
	TAILQ_INIT(&st->failing);
	TAILQ_INIT(&st->inflight);
	st->ev_retry = evtimer_new(base, store_retry_cb, st);
	st->ev_ctimeout = evtimer_new(base, store_connect_timeout_cb, st);
	st->ev_kick = event_new(base, -1, 0, store_kick_cb, st);
	if (st->ev_retry == NULL || st->ev_ctimeout == NULL ||
	    st->ev_kick == NULL) {
		log_err("could not create database events");
		store_free(st);
		return NULL;
	}
	/* First attempt (or the adopted connection taken) on the loop, so
	   store_new() never runs callbacks. */
	event_active(st->ev_retry, EV_TIMEOUT, 1);
	return st;
}

static void
store_queue_drop(struct store_queue *qh)
{
	struct store_query *q;

	while ((q = TAILQ_FIRST(qh)) != NULL) {
		TAILQ_REMOVE(qh, q, entry);
		store_query_free(q);
	}
}

void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	assert(st->cb_depth == 0);
	store_conn_close(st);
	if (st->ev_retry != NULL)
		event_free(st->ev_retry);
	if (st->ev_ctimeout != NULL)
		event_free(st->ev_ctimeout);
	if (st->ev_kick != NULL)
		event_free(st->ev_kick);
	store_queue_drop(&st->inflight);
	store_queue_drop(&st->queue);
	store_queue_drop(&st->failing);
	for (size_t i = 0; i < st->nchannels; i++)
		free(st->channels[i]);
	freezero(st->conninfo, strlen(st->conninfo));
	free(st);
}

int
store_query_params(struct store *st, unsigned flags, const char *sql,
		   int nparams, const struct store_param *params,
		   store_done_cb cb, void *arg, uint64_t *idp)
{
	struct store_query *q = NULL;
	size_t total = 0, len, off = 0;
	int i, r = CINDER_ERR_INTERNAL;

	if (idp != NULL)
		*idp = 0;
	if (st == NULL || sql == NULL || nparams < 0 ||
	    nparams > STORE_MAX_PARAMS || (nparams > 0 && params == NULL)) {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	if (st->outage && !(flags & STORE_Q_WRITE)) {
		r = CINDER_ERR_UNAVAILABLE;
		goto out;
	}
	if (st->nqueued >= st->opts.max_queue) {
		r = CINDER_ERR_BUSY;
		goto out;
	}
	for (i = 0; i < nparams; i++) {
		if (params[i].value == NULL)
			continue;
		len = params[i].binary ? params[i].len
				       : strlen(params[i].value) + 1;
		if (len > (size_t)INT32_MAX || total > SIZE_MAX - len) {
			r = CINDER_ERR_TOO_BIG;
			goto out;
		}
		total += len;
	}
	/* queued queries pile up in a storm: apart from the heap */
	q = tmpmem_calloc(1, sizeof(*q));
	q->flags = flags;
	q->cb = cb;
	q->arg = arg;
	q->sql = tmpmem_strdup(sql);
	q->nparams = nparams;
	if (nparams > 0) {
		q->values = tmpmem_calloc(nparams, sizeof(*q->values));
		q->lengths = tmpmem_calloc(nparams, sizeof(*q->lengths));
		q->formats = tmpmem_calloc(nparams, sizeof(*q->formats));
		q->blob = tmpmem_alloc(total > 0 ? total : 1);
	}
	for (i = 0; i < nparams; i++) {
		if (params[i].value == NULL)
			continue;
		len = params[i].binary ? params[i].len
				       : strlen(params[i].value) + 1;
		if (len > 0)
			memcpy(q->blob + off, params[i].value, len);
		q->values[i] = q->blob + off;
		q->lengths[i] = (int)len;
		q->formats[i] = params[i].binary ? 1 : 0;
		off += len;
	}
	q->id = ++st->next_id;
	if ((flags & STORE_Q_URGENT) && !(flags & STORE_Q_WRITE)) {
		if (st->urgent_tail != NULL)
			TAILQ_INSERT_AFTER(&st->queue, st->urgent_tail, q,
					   entry);
		else
			TAILQ_INSERT_HEAD(&st->queue, q, entry);
		st->urgent_tail = q;
	} else {
		TAILQ_INSERT_TAIL(&st->queue, q, entry);
	}
	st->nqueued++;
	if (idp != NULL)
		*idp = q->id;
	q = NULL;
	/* Send on the next loop turn, so cb never runs before we return. */
	if (st->state == STORE_UP)
		event_active(st->ev_kick, EV_TIMEOUT, 1);
	r = 0;
out:
	store_query_free(q);
	return r;
}

int
store_query(struct store *st, unsigned flags, const char *sql, int nparams,
	    const char *const *params, store_done_cb cb, void *arg,
	    uint64_t *idp)
{
	struct store_param stack[16] = {{0}}, *p = stack;
	int i, r;

	if (nparams < 0 || nparams > STORE_MAX_PARAMS ||
	    (nparams > 0 && params == NULL)) {
		if (idp != NULL)
			*idp = 0;
		return CINDER_ERR_INVAL;
	}
	if ((size_t)nparams > sizeof(stack) / sizeof(stack[0]))
		p = xcalloc(nparams, sizeof(*p));
	for (i = 0; i < nparams; i++) {
		p[i].value = params[i];
		p[i].len = 0;
		p[i].binary = false;
	}
	r = store_query_params(st, flags, sql, nparams, p, cb, arg, idp);
	if (p != stack)
		free(p);
	return r;
}

static bool
store_queue_cancel(struct store *st, struct store_queue *qh, uint64_t id)
{
	struct store_query *q;

	for (q = TAILQ_FIRST(qh); q != NULL; q = TAILQ_NEXT(q, entry)) {
		if (q->id != id || q->cancelled)
			continue;
		if (qh == &st->queue)
			store_queue_remove(st, q);
		else
			TAILQ_REMOVE(qh, q, entry);
		st->nqueued--;
		store_query_free(q);
		return true;
	}
	return false;
}

void
store_notify_set(struct store *st, store_notify_cb cb, void *arg)
{
	st->notify_cb = cb;
	st->notify_arg = arg;
}

int
store_listen(struct store *st, const char *channel)
{
	struct store_query *q;
	char *sql;
	size_t i, n;

	if (st == NULL || channel == NULL)
		return CINDER_ERR_INVAL;
	/* The name goes into SQL text (LISTEN takes no parameter), so only
	 * plain lowercase identifiers are accepted. */
	n = strlen(channel);
	if (n == 0 || n > STORE_CHANNEL_MAX_LEN ||
	    !(channel[0] >= 'a' && channel[0] <= 'z') ||
	    strspn(channel, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return CINDER_ERR_INVAL;
	for (i = 0; i < st->nchannels; i++)
		if (strcmp(st->channels[i], channel) == 0)
			return 0;
	if (st->nchannels == STORE_MAX_CHANNELS)
		return CINDER_ERR_TOO_BIG;
	st->channels[st->nchannels++] = xstrdup(channel);
	/* While down, the renewal at reconnect does it. */
	if (st->state != STORE_UP)
		return 0;
	sql = xasprintf("LISTEN %s", channel);
	q = store_query_internal(st, sql);
	free(sql);
	TAILQ_INSERT_TAIL(&st->queue, q, entry);
	st->nqueued++;
	event_active(st->ev_kick, EV_TIMEOUT, 1);
	return 0;
}

int
store_cancel(struct store *st, uint64_t id)
{
	struct store_query *q;

	if (st == NULL || id == 0)
		return CINDER_ERR_INVAL;
	for (q = TAILQ_FIRST(&st->inflight); q != NULL;
	     q = TAILQ_NEXT(q, entry)) {
		if (q->id != id)
			continue;
		if (q->cancelled)
			return CINDER_ERR_NOTFOUND;
		/* The server has it; drop the answer when it comes. */
		q->cancelled = true;
		return 0;
	}
	if (store_queue_cancel(st, &st->queue, id) ||
	    store_queue_cancel(st, &st->failing, id))
		return 0;
	return CINDER_ERR_NOTFOUND;
}

bool
store_is_up(const struct store *st)
{
	return st != NULL && st->state == STORE_UP;
}

void
store_stats_get(const struct store *st, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return;
	*out = st->stats;
	out->up = st->state == STORE_UP;
	out->queued = st->nqueued;
	out->ever_up = st->ever_up;
	out->first_pending = !st->ever_up && !st->outage;
}

int
store_result_ntuples(const struct store_result *res)
{
	return res != NULL && res->res != NULL ? PQntuples(res->res) : 0;
}

int
store_result_nfields(const struct store_result *res)
{
	return res != NULL && res->res != NULL ? PQnfields(res->res) : 0;
}

int
store_result_column(const struct store_result *res, const char *name)
{
	if (res == NULL || res->res == NULL || name == NULL)
		return -1;
	return PQfnumber(res->res, name);
}

static bool
store_result_in_range(const struct store_result *res, int row, int col)
{
	return res != NULL && res->res != NULL && row >= 0 && col >= 0 &&
	       row < PQntuples(res->res) && col < PQnfields(res->res);
}

bool
store_result_is_null(const struct store_result *res, int row, int col)
{
	if (!store_result_in_range(res, row, col))
		return true;
	return PQgetisnull(res->res, row, col) != 0;
}

const char *
store_result_value(const struct store_result *res, int row, int col)
{
	if (store_result_is_null(res, row, col))
		return NULL;
	return PQgetvalue(res->res, row, col);
}

size_t
store_result_length(const struct store_result *res, int row, int col)
{
	if (store_result_is_null(res, row, col))
		return 0;
	return (size_t)PQgetlength(res->res, row, col);
}

int
store_result_bytes(const struct store_result *res, int row, int col,
		   uint8_t **outp, size_t *lenp)
{
	const char *v = store_result_value(res, row, col);
	unsigned char *raw = NULL;
	size_t len = 0;
	uint8_t *out;

	*outp = NULL;
	*lenp = 0;
	if (v == NULL)
		return CINDER_ERR_NOTFOUND;
	raw = PQunescapeBytea((const unsigned char *)v, &len);
	if (raw == NULL)
		return CINDER_ERR_MALFORMED;
	out = xmalloc(len > 0 ? len : 1);
	if (len > 0)
		memcpy(out, raw, len);
	PQfreemem(raw);
	*outp = out;
	*lenp = len;
	return 0;
}

long long
store_result_affected(const struct store_result *res)
{
	const char *s;

	if (res == NULL || res->res == NULL)
		return 0;
	s = PQcmdTuples(res->res);
	if (s == NULL || *s == '\0')
		return 0;
	return strtoll(s, NULL, 10);
}

const char *
store_result_sqlstate(const struct store_result *res)
{
	if (res == NULL || res->res == NULL)
		return NULL;
	return PQresultErrorField(res->res, PG_DIAG_SQLSTATE);
}

const char *
store_result_message(const struct store_result *res)
{
	if (res == NULL || res->res == NULL)
		return NULL;
	return PQresultErrorField(res->res, PG_DIAG_MESSAGE_PRIMARY);
}
