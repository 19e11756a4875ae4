/* SPDX-License-Identifier: MIT */
/*
 * Tests for the asynchronous store (store_pg.c) through a real libevent
 * loop and a real PostgreSQL: round trips, parameters, error mapping,
 * ordering, cancellation, queue bounds, and reconnecting after the server
 * restarts (on a private cluster from tests/pgcluster.sh, since that test
 * stops PostgreSQL). Waits are for events, with a deadline, never sleeps.
 */
#include "config.h"

#include <sys/wait.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "testdb.h"
#include "xmalloc.h"

static struct event_base *base;
static char *db;
static struct store *st;

/* What a completion callback saw. */
struct rec {
	bool done;	    /* callback ran */
	int calls;	    /* times it ran (must be 1) */
	int r;		    /* its error code */
	int ntuples;	    /* rows */
	char *v0;	    /* first value (NULL: SQL NULL or none) */
	bool v0_null;	    /* store_result_is_null(0, 0) */
	char *sqlstate;	    /* on failure */
	bool has_res;	    /* res was not NULL */
	long long affected; /* store_result_affected */
	int order;	    /* completion sequence number */
	uint8_t *bytes;	    /* store_result_bytes of (0, 0), if asked */
	size_t nbytes;
	bool want_bytes;
};

static int completions;

static void
rec_cb(int r, const struct store_result *res, void *arg)
{
	struct rec *x = arg;
	const char *v;

	x->done = true;
	x->calls++;
	x->r = r;
	x->has_res = res != NULL;
	x->order = completions++;
	x->ntuples = store_result_ntuples(res);
	x->affected = store_result_affected(res);
	x->v0_null = store_result_is_null(res, 0, 0);
	v = store_result_value(res, 0, 0);
	x->v0 = v != NULL ? xstrdup(v) : NULL;
	if (store_result_sqlstate(res) != NULL)
		x->sqlstate = xstrdup(store_result_sqlstate(res));
	if (x->want_bytes && r == 0)
		ck_assert_int_eq(
			store_result_bytes(res, 0, 0, &x->bytes, &x->nbytes),
			0);
}

static void
rec_clear(struct rec *x)
{
	free(x->v0);
	free(x->sqlstate);
	free(x->bytes);
	memset(x, 0, sizeof(*x));
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Run the loop until *flag (or pred) holds; fail after timeout_s. */
static void
pump_until(bool (*pred)(void *), void *arg, int timeout_s, const char *what)
{
	bool expired = false;
	struct timeval tv = {timeout_s, 0};
	struct event *ev = evtimer_new(base, deadline_cb, &expired);

	evtimer_add(ev, &tv);
	while (!pred(arg) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert_msg(!expired, "timed out waiting for %s", what);
}

static bool
pred_done(void *arg)
{
	return ((struct rec *)arg)->done;
}

static bool
pred_up(void *arg)
{
	return store_is_up(arg);
}

static bool
pred_down(void *arg)
{
	return !store_is_up(arg);
}

static bool
pred_connect_failed(void *arg)
{
	struct store_stats s;

	store_stats_get(arg, &s);
	return s.connect_failures > 0;
}

static void
wait_done(struct rec *x)
{
	pump_until(pred_done, x, 30, "a query");
}

/* Run one query to completion and return its record. */
static void
run(unsigned flags, const char *sql, int n, const char *const *params,
    struct rec *x)
{
	ck_assert_int_eq(
		store_query(st, flags, sql, n, params, rec_cb, x, NULL), 0);
	wait_done(x);
	ck_assert_int_eq(x->calls, 1);
}

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	db = testdb_create_migrated();
	st = store_new(base, db, NULL);
	ck_assert_ptr_nonnull(st);
	completions = 0;
}

static void
teardown(void)
{
	store_free(st);
	st = NULL;
	testdb_drop(db);
	db = NULL;
	event_base_free(base);
	base = NULL;
}

START_TEST(test_store_query_roundtrip)
{
	const char *name = "o'brien \"x\" \\ ; DROP TABLE users; -- \xc3\xa9";
	const char *ins[3] = {name, "$argon2id$h", "true"};
	const char *sel[1] = {name};
	struct rec a = {0}, b = {0};

	run(STORE_Q_WRITE,
	    "INSERT INTO users (username, password_hash, is_admin) "
	    "VALUES ($1, $2, $3) RETURNING id",
	    3, ins, &a);
	ck_assert_int_eq(a.r, 0);
	ck_assert_int_eq(a.ntuples, 1);
	ck_assert_int_eq(a.affected, 1);
	ck_assert_ptr_nonnull(a.v0);
	ck_assert(store_is_up(st));

	run(STORE_Q_READ,
	    "SELECT username, password_hash, is_admin, NULL::text AS nothing "
	    "FROM users WHERE username = $1",
	    1, sel, &b);
	ck_assert_int_eq(b.r, 0);
	ck_assert_int_eq(b.ntuples, 1);
	ck_assert_str_eq(b.v0, name);
	rec_clear(&a);
	rec_clear(&b);
}
END_TEST

/* Column lookups, NULLs and out-of-range access inside a callback. */
static void
accessors_cb(int r, const struct store_result *res, void *arg)
{
	struct rec *x = arg;
	int c = store_result_column(res, "nothing");

	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(store_result_nfields(res), 3);
	ck_assert_int_eq(c, 2);
	ck_assert_int_eq(store_result_column(res, "nope"), -1);
	ck_assert_ptr_null(store_result_value(res, 0, c));
	ck_assert(store_result_is_null(res, 0, c));
	ck_assert_str_eq(store_result_value(res, 0, 0), "");
	ck_assert(!store_result_is_null(res, 0, 0));
	ck_assert_uint_eq(store_result_length(res, 0, 1), 5);
	ck_assert_ptr_null(store_result_value(res, 1, 0));
	ck_assert_ptr_null(store_result_value(res, 0, 9));
	ck_assert_ptr_null(store_result_value(res, -1, 0));
	ck_assert_ptr_null(store_result_sqlstate(res));
	x->done = true;
	x->calls++;
}

START_TEST(test_store_result_accessors)
{
	struct rec x = {0};
	const char *p[2] = {"", "hello"};

	ck_assert_int_eq(store_query(st, STORE_Q_READ,
				     "SELECT $1::text, $2::text, "
				     "NULL::int AS nothing",
				     2, p, accessors_cb, &x, NULL),
			 0);
	wait_done(&x);
	ck_assert_int_eq(x.calls, 1);
	/* SQL NULL parameters. */
	const char *np[1] = {NULL};
	struct rec y = {0};

	run(STORE_Q_READ, "SELECT $1::text IS NULL", 1, np, &y);
	ck_assert_str_eq(y.v0, "t");
	rec_clear(&y);
}
END_TEST

START_TEST(test_store_query_binary)
{
	static const uint8_t blob[] = {0x00, 0xff, '\'', '\\',
				       0x01, 0x00, 'x',	 0x80};
	struct store_param p[2] = {
		{.value = blob, .len = sizeof(blob), .binary = true},
		{.value = "text \"param\"", .binary = false},
	};
	struct rec x = {.want_bytes = true};

	ck_assert_int_eq(store_query_params(st, STORE_Q_READ,
					    "SELECT $1::bytea, $2::text", 2, p,
					    rec_cb, &x, NULL),
			 0);
	wait_done(&x);
	ck_assert_int_eq(x.r, 0);
	ck_assert_uint_eq(x.nbytes, sizeof(blob));
	ck_assert_mem_eq(x.bytes, blob, sizeof(blob));
	rec_clear(&x);
}
END_TEST

START_TEST(test_store_query_conflict)
{
	const char *p[2] = {"dup", "$h"};
	struct rec a = {0}, b = {0}, c = {0};

	run(STORE_Q_WRITE,
	    "INSERT INTO users (username, password_hash) VALUES ($1, $2)", 2, p,
	    &a);
	ck_assert_int_eq(a.r, 0);
	run(STORE_Q_WRITE,
	    "INSERT INTO users (username, password_hash) VALUES ($1, $2)", 2, p,
	    &b);
	ck_assert_int_eq(b.r, CINDER_ERR_CONFLICT);
	ck_assert(b.has_res);
	ck_assert_str_eq(b.sqlstate, "23505");
	/* Other errors are CINDER_ERR_DB, and the connection survives. */
	run(STORE_Q_READ, "SELEC 1", 0, NULL, &c);
	ck_assert_int_eq(c.r, CINDER_ERR_DB);
	ck_assert_str_eq(c.sqlstate, "42601");
	ck_assert(store_is_up(st));
	rec_clear(&a);
	rec_clear(&b);
	rec_clear(&c);
}
END_TEST

/* What the notify callback saw. */
struct note {
	int count;     /* notifications received */
	char *channel; /* last channel */
	char *payload; /* last payload */
};

static void
note_cb(const char *channel, const char *payload, void *arg)
{
	struct note *n = arg;

	n->count++;
	free(n->channel);
	free(n->payload);
	n->channel = xstrdup(channel);
	n->payload = payload != NULL ? xstrdup(payload) : NULL;
}

static bool
pred_note(void *arg)
{
	return ((struct note *)arg)->count > 0;
}

static void
note_clear(struct note *n)
{
	free(n->channel);
	free(n->payload);
	memset(n, 0, sizeof(*n));
}

/* Send a NOTIFY through the store and wait for it to come back. */
static void
notify_roundtrip(const char *channel, const char *payload)
{
	struct note n = {0};
	struct rec x = {0};
	const char *p[2] = {channel, payload};

	store_notify_set(st, note_cb, &n);
	run(STORE_Q_WRITE, "SELECT pg_notify($1, $2)", 2, p, &x);
	ck_assert_int_eq(x.r, 0);
	pump_until(pred_note, &n, 30, "a notification");
	ck_assert_int_eq(n.count, 1);
	ck_assert_str_eq(n.channel, channel);
	ck_assert_str_eq(n.payload, payload);
	store_notify_set(st, NULL, NULL);
	note_clear(&n);
	rec_clear(&x);
}

START_TEST(test_store_listen_notify)
{
	char longname[80];

	/* Before the first connection: renewed when it comes up. */
	ck_assert_int_eq(store_listen(st, "cinder_a"), 0);
	ck_assert_int_eq(store_listen(st, "cinder_a"), 0);
	ck_assert_int_eq(store_listen(st, ""), CINDER_ERR_INVAL);
	ck_assert_int_eq(store_listen(st, "Upper"), CINDER_ERR_INVAL);
	ck_assert_int_eq(store_listen(st, "a-b"), CINDER_ERR_INVAL);
	ck_assert_int_eq(store_listen(st, "a; DROP TABLE users"),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(store_listen(st, "1abc"), CINDER_ERR_INVAL);
	memset(longname, 'a', 64);
	longname[64] = '\0';
	ck_assert_int_eq(store_listen(st, longname), CINDER_ERR_INVAL);
	notify_roundtrip("cinder_a", "hello 'x' \"y\"");
	/* While up: LISTEN goes out at once. */
	ck_assert_int_eq(store_listen(st, "cinder_b"), 0);
	notify_roundtrip("cinder_b", "");
}
END_TEST

/* A statement over the timeout fails with TIMEOUT; the session lives on. */
START_TEST(test_store_statement_timeout)
{
	struct store_opts o = {.statement_timeout_ms = 100};
	struct store *s2 = store_new(base, db, &o);
	struct store *keep = st;
	struct rec a = {0}, b = {0};

	st = s2;
	run(STORE_Q_READ, "SELECT pg_sleep(5)", 0, NULL, &a);
	ck_assert_int_eq(a.r, CINDER_ERR_TIMEOUT);
	ck_assert_str_eq(a.sqlstate, "57014");
	run(STORE_Q_READ, "SHOW statement_timeout", 0, NULL, &b);
	ck_assert_int_eq(b.r, 0);
	ck_assert_str_eq(b.v0, "100ms");
	st = keep;
	store_free(s2);
	rec_clear(&a);
	rec_clear(&b);
}
END_TEST

/* COPY cannot be driven through the store: refused, then a new session. */
START_TEST(test_store_query_copy)
{
	struct rec a = {0}, b = {0};

	run(STORE_Q_READ, "COPY (SELECT 1) TO STDOUT", 0, NULL, &a);
	ck_assert_int_eq(a.r, CINDER_ERR_INVAL);
	pump_until(pred_up, st, 30, "the reconnect");
	run(STORE_Q_READ, "SELECT 'ok'", 0, NULL, &b);
	ck_assert_int_eq(b.r, 0);
	ck_assert_str_eq(b.v0, "ok");
	rec_clear(&a);
	rec_clear(&b);
}
END_TEST

/* Queries travel together in the pipeline; an error aborts only its own. */
START_TEST(test_store_query_error_isolated)
{
	struct rec a = {0}, b = {0}, c = {0}, d = {0};
	const char *p[2] = {"iso", "$h"};

	ck_assert_int_eq(store_query(st, STORE_Q_WRITE,
				     "INSERT INTO users (username, "
				     "password_hash) VALUES ($1, $2)",
				     2, p, rec_cb, &a, NULL),
			 0);
	ck_assert_int_eq(store_query(st, STORE_Q_WRITE,
				     "INSERT INTO users (username, "
				     "password_hash) VALUES ($1, $2)",
				     2, p, rec_cb, &b, NULL),
			 0);
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 1/0", 0, NULL,
				     rec_cb, &c, NULL),
			 0);
	ck_assert_int_eq(store_query(st, STORE_Q_READ,
				     "SELECT count(*) FROM users "
				     "WHERE username = 'iso'",
				     0, NULL, rec_cb, &d, NULL),
			 0);
	wait_done(&d);
	ck_assert_int_eq(a.r, 0);
	ck_assert_int_eq(b.r, CINDER_ERR_CONFLICT);
	ck_assert_int_eq(c.r, CINDER_ERR_DB);
	ck_assert_str_eq(c.sqlstate, "22012");
	ck_assert_int_eq(d.r, 0);
	ck_assert_str_eq(d.v0, "1");
	ck_assert(a.order < b.order && b.order < c.order && c.order < d.order);
	rec_clear(&a);
	rec_clear(&b);
	rec_clear(&c);
	rec_clear(&d);
}
END_TEST

/* STORE_Q_PREPARE: prepared once per connection, then executed; the
 * results and errors are those of the unprepared statement. */
START_TEST(test_store_query_prepared)
{
	static const char ins[] = "INSERT INTO users (username, "
				  "password_hash) VALUES ($1, $2)";
	static const char sel[] = "SELECT password_hash FROM users "
				  "WHERE username = $1";
	struct rec a = {0}, b = {0}, c = {0}, d = {0}, e = {0}, f = {0};
	struct rec n = {0}, g = {0};
	const char *p1[2] = {"p1", "$h1"}, *p2[2] = {"p2", "$h2"};
	const char *s2[1] = {"p2"};
	struct store_stats s0, s1;

	run(STORE_Q_WRITE | STORE_Q_PREPARE, ins, 2, p1, &a);
	store_stats_get(st, &s0); /* the connection's own setup is done */
	run(STORE_Q_WRITE | STORE_Q_PREPARE, ins, 2, p2, &b);
	run(STORE_Q_WRITE | STORE_Q_PREPARE, ins, 2, p2, &c);
	ck_assert_int_eq(a.r, 0);
	ck_assert_int_eq(b.r, 0);
	ck_assert_int_eq(c.r, CINDER_ERR_CONFLICT);
	ck_assert_str_eq(c.sqlstate, "23505");
	run(STORE_Q_READ | STORE_Q_PREPARE, sel, 1, s2, &d);
	ck_assert_int_eq(d.r, 0);
	ck_assert_str_eq(d.v0, "$h2");
	/* Two statements prepared on the store's one session. */
	run(STORE_Q_READ,
	    "SELECT count(*) FROM pg_prepared_statements "
	    "WHERE name LIKE 'cinder_p%'",
	    0, NULL, &n);
	ck_assert_str_eq(n.v0, "2");
	/* A statement that does not prepare fails as it would unprepared,
	   and keeps failing so; the others go on. */
	run(STORE_Q_READ | STORE_Q_PREPARE, "SELECT nope FROM users", 0, NULL,
	    &e);
	ck_assert_int_eq(e.r, CINDER_ERR_DB);
	run(STORE_Q_READ | STORE_Q_PREPARE, "SELECT nope FROM users", 0, NULL,
	    &f);
	ck_assert_int_eq(f.r, CINDER_ERR_DB);
	ck_assert_str_eq(f.sqlstate, "42703");
	run(STORE_Q_READ | STORE_Q_PREPARE, sel, 1, s2, &g);
	ck_assert_str_eq(g.v0, "$h2");
	/* Only the callers' queries are counted. */
	store_stats_get(st, &s1);
	ck_assert_uint_eq(s1.queries_ok - s0.queries_ok, 4);
	ck_assert_uint_eq(s1.queries_failed - s0.queries_failed, 3);
	ck_assert_uint_eq(s1.queued, 0);
	rec_clear(&a);
	rec_clear(&b);
	rec_clear(&c);
	rec_clear(&d);
	rec_clear(&e);
	rec_clear(&f);
	rec_clear(&g);
	rec_clear(&n);
}
END_TEST

/* STORE_Q_URGENT: a read goes before queued writes, after earlier urgent
 * reads; plain queries keep their order. */
START_TEST(test_store_query_urgent)
{
	static const char ins[] = "INSERT INTO users (username, "
				  "password_hash) VALUES ($1, 'h')";
	static const char cnt[] = "SELECT count(*) FROM users "
				  "WHERE username LIKE 'u_'";
	struct rec w1 = {0}, w2 = {0}, u1 = {0}, u2 = {0}, r = {0};
	const char *a[1] = {"u1"}, *b[1] = {"u2"};
	uint64_t id = 0;

	/* Nothing is sent before the loop runs: all of these queue. */
	ck_assert_int_eq(
		store_query(st, STORE_Q_WRITE, ins, 1, a, rec_cb, &w1, NULL),
		0);
	ck_assert_int_eq(
		store_query(st, STORE_Q_WRITE, ins, 1, b, rec_cb, &w2, NULL),
		0);
	ck_assert_int_eq(store_query(st, STORE_Q_READ | STORE_Q_URGENT, cnt, 0,
				     NULL, rec_cb, &u1, NULL),
			 0);
	/* a cancelled urgent read leaves the others in place */
	ck_assert_int_eq(store_query(st, STORE_Q_READ | STORE_Q_URGENT, cnt, 0,
				     NULL, rec_cb, &r, &id),
			 0);
	ck_assert_int_eq(store_cancel(st, id), 0);
	ck_assert_int_eq(
		store_query(st, STORE_Q_READ | STORE_Q_URGENT | STORE_Q_PREPARE,
			    cnt, 0, NULL, rec_cb, &u2, NULL),
		0);
	ck_assert_int_eq(
		store_query(st, STORE_Q_READ, cnt, 0, NULL, rec_cb, &r, NULL),
		0);
	wait_done(&r);
	ck_assert(w1.done && w2.done && u1.done && u2.done);
	ck_assert_int_lt(u1.order, u2.order);
	ck_assert_int_lt(u2.order, w1.order);
	ck_assert_int_lt(w1.order, w2.order);
	ck_assert_int_lt(w2.order, r.order);
	ck_assert_str_eq(u1.v0, "0");
	ck_assert_str_eq(u2.v0, "0");
	ck_assert_str_eq(r.v0, "2");
	rec_clear(&w1);
	rec_clear(&w2);
	rec_clear(&u1);
	rec_clear(&u2);
	rec_clear(&r);
}
END_TEST

START_TEST(test_store_query_order)
{
	enum { N = 300 };
	static struct rec x[N];
	char val[N][16];
	const char *p[1];
	int i;

	for (i = 0; i < N; i++) {
		snprintf(val[i], sizeof(val[i]), "%d", i * 7);
		p[0] = val[i];
		ck_assert_int_eq(
			store_query(st, i % 2 ? STORE_Q_WRITE : STORE_Q_READ,
				    "SELECT $1::int + 1", 1, p, rec_cb, &x[i],
				    NULL),
			0);
	}
	pump_until(pred_done, &x[N - 1], 30, "the last query");
	for (i = 0; i < N; i++) {
		char want[16];

		ck_assert_int_eq(x[i].calls, 1);
		ck_assert_int_eq(x[i].r, 0);
		ck_assert_int_eq(x[i].order, i);
		snprintf(want, sizeof(want), "%d", i * 7 + 1);
		ck_assert_str_eq(x[i].v0, want);
		rec_clear(&x[i]);
	}
	struct store_stats s;

	store_stats_get(st, &s);
	ck_assert(s.up);
	ck_assert_uint_ge(s.queries_ok, N);
	ck_assert_uint_eq(s.queued, 0);
}
END_TEST

static void
count_cb(int r, const struct store_result *res, void *arg)
{
	(void)res;
	if (r == 0)
		(*(int *)arg)++;
}

static bool
pred_count(void *arg)
{
	return *(int *)arg >= 300;
}

/*
 * libpq keeps an entry per command in flight (a query, its sync) for
 * reuse until the connection closes. The store makes as many as it can
 * ever have in flight when it connects (store_prime()), so a burst of
 * queries later allocates none: the heap in use is the same after it
 * (without that, 2 x 256 entries: 16 KB). The prime is not a query of
 * the caller's: the counters see only the burst.
 */
START_TEST(test_store_prime_entries)
{
	enum { N = 300 }; /* more than STORE_MAX_INFLIGHT */
	struct rec x = {0};
	struct store_stats s0, s1;
	int i, ok = 0;
#if defined(__GLIBC__)
	struct mallinfo2 m0, m1;
#endif

	run(STORE_Q_READ, "SELECT 1", 0, NULL, &x); /* waits for the prime */
	ck_assert_int_eq(x.r, 0);
	rec_clear(&x);
	store_stats_get(st, &s0);
#if defined(__GLIBC__)
	m0 = mallinfo2();
#endif
	for (i = 0; i < N; i++)
		ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 1", 0,
					     NULL, count_cb, &ok, NULL),
				 0);
	pump_until(pred_count, &ok, 30, "the burst");
#if defined(__GLIBC__)
	m1 = mallinfo2();
	ck_assert_msg(m1.uordblks < m0.uordblks + 4096,
		      "heap in use grew by %zu bytes in the burst",
		      m1.uordblks - m0.uordblks);
#endif
	store_stats_get(st, &s1);
	ck_assert_uint_eq(s1.queries_ok - s0.queries_ok, N);
	ck_assert_uint_eq(s1.queued, 0);
}
END_TEST

START_TEST(test_store_cancel_queued)
{
	struct rec a = {0}, b = {0}, c = {0};
	uint64_t ia, ib, ic;

	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 1", 0, NULL,
				     rec_cb, &a, &ia),
			 0);
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 2", 0, NULL,
				     rec_cb, &b, &ib),
			 0);
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 3", 0, NULL,
				     rec_cb, &c, &ic),
			 0);
	ck_assert(ia != 0 && ib != 0 && ic != 0 && ia != ib && ib != ic);
	ck_assert_int_eq(store_cancel(st, ib), 0);
	ck_assert_int_eq(store_cancel(st, ib), CINDER_ERR_NOTFOUND);
	ck_assert_int_eq(store_cancel(st, 999999), CINDER_ERR_NOTFOUND);
	wait_done(&c);
	ck_assert(a.done);
	ck_assert_str_eq(a.v0, "1");
	ck_assert(!b.done);
	ck_assert_str_eq(c.v0, "3");
	ck_assert_int_eq(store_cancel(st, ia), CINDER_ERR_NOTFOUND);
	rec_clear(&a);
	rec_clear(&c);
}
END_TEST

START_TEST(test_store_cancel_inflight)
{
	struct rec a = {0}, b = {0};
	uint64_t ia;

	pump_until(pred_up, st, 30, "the connection");
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT pg_sleep(0.2)",
				     0, NULL, rec_cb, &a, &ia),
			 0);
	/* One turn of the loop sends it; the server is now sleeping. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert(!a.done);
	ck_assert_int_eq(store_cancel(st, ia), 0);
	ck_assert_int_eq(store_cancel(st, ia), CINDER_ERR_NOTFOUND);
	run(STORE_Q_READ, "SELECT 'after'", 0, NULL, &b);
	ck_assert_int_eq(b.r, 0);
	ck_assert_str_eq(b.v0, "after");
	ck_assert(!a.done);
	rec_clear(&b);
}
END_TEST

/* A callback that queues another query from inside the store. */
static struct rec chained;

static void
chain_cb(int r, const struct store_result *res, void *arg)
{
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 'second'", 0,
				     NULL, rec_cb, &chained, NULL),
			 0);
	*(bool *)arg = true;
}

static bool
pred_bool(void *arg)
{
	return *(bool *)arg;
}

START_TEST(test_store_query_from_callback)
{
	bool first = false;

	memset(&chained, 0, sizeof(chained));
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 'first'", 0,
				     NULL, chain_cb, &first, NULL),
			 0);
	pump_until(pred_bool, &first, 30, "the first query");
	wait_done(&chained);
	ck_assert_str_eq(chained.v0, "second");
	rec_clear(&chained);
}
END_TEST

START_TEST(test_store_query_inval)
{
	const char *p[1] = {"x"};

	ck_assert_int_eq(store_query(st, STORE_Q_READ, NULL, 0, NULL, rec_cb,
				     NULL, NULL),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 1", -1, p,
				     rec_cb, NULL, NULL),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 1", 1, NULL,
				     rec_cb, NULL, NULL),
			 CINDER_ERR_INVAL);
	ck_assert_ptr_null(store_new(base, "not a = valid = string", NULL));
	ck_assert_ptr_null(store_new(base, NULL, NULL));
}
END_TEST

START_TEST(test_store_free_pending)
{
	struct rec a = {0};
	struct store *s2 = store_new(base, db, NULL);

	ck_assert_int_eq(store_query(s2, STORE_Q_WRITE, "SELECT 1", 0, NULL,
				     rec_cb, &a, NULL),
			 0);
	store_free(s2);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert(!a.done);
	store_free(NULL);
}
END_TEST

/* No server: reads fail fast, writes queue up to the bound. */
START_TEST(test_store_down_read_write)
{
	struct store_opts o = {
		.max_queue = 3, .backoff_min_ms = 10, .backoff_max_ms = 40};
	struct store *s2 =
		store_new(base, "host=/nonexistent-cinder port=1", &o);
	struct rec w[3] = {{0}}, early = {0};
	struct store_stats s;
	int i;

	ck_assert_ptr_nonnull(s2);
	/* Queued before the first attempt failed: failed with it. */
	ck_assert_int_eq(store_query(s2, STORE_Q_READ, "SELECT 1", 0, NULL,
				     rec_cb, &early, NULL),
			 0);
	pump_until(pred_connect_failed, s2, 30, "a failed connect");
	ck_assert(early.done);
	ck_assert_int_eq(early.r, CINDER_ERR_UNAVAILABLE);
	ck_assert(!early.has_res);
	ck_assert(!store_is_up(s2));
	ck_assert_int_eq(store_query(s2, STORE_Q_READ, "SELECT 1", 0, NULL,
				     rec_cb, NULL, NULL),
			 CINDER_ERR_UNAVAILABLE);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(store_query(s2, STORE_Q_WRITE, "SELECT 1", 0,
					     NULL, rec_cb, &w[i], NULL),
				 0);
	ck_assert_int_eq(store_query(s2, STORE_Q_WRITE, "SELECT 1", 0, NULL,
				     rec_cb, NULL, NULL),
			 CINDER_ERR_BUSY);
	store_stats_get(s2, &s);
	ck_assert(!s.up);
	ck_assert_uint_eq(s.queued, 3);
	ck_assert_uint_eq(s.queries_failed, 1);
	store_free(s2);
	for (i = 0; i < 3; i++)
		ck_assert(!w[i].done);
	rec_clear(&early);
}
END_TEST

/*
 * Restart test on a private cluster. The helpers in tests/pgcluster.sh are
 * run through bash: bash -c '. pgcluster.sh; "$@"' _ FUNC DIR.
 */
static char pgdir[64];

static int
pgcluster(const char *func)
{
	char *script = xasprintf("%s/tests/pgcluster.sh", testdb_srcdir());
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execlp("bash", "bash", "-c", ". \"$0\" && \"$@\"", script, func,
		       pgdir, (char *)NULL);
		_exit(127);
	}
	free(script);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
setup_private(void)
{
	char tmpl[] = "/tmp/cinder-rc.XXXXXX";

	base = event_base_new();
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(pgdir, sizeof(pgdir), "%s", tmpl);
	ck_assert_int_eq(pgcluster("pgcluster_start"), 0);
	completions = 0;
}

static void
teardown_private(void)
{
	store_free(st);
	st = NULL;
	pgcluster("pgcluster_destroy");
	free(db);
	db = NULL;
	event_base_free(base);
	base = NULL;
}

START_TEST(test_store_reconnect)
{
	struct store_opts o = {.backoff_min_ms = 20, .backoff_max_ms = 200};
	struct rec a = {0}, b = {0}, w = {0}, inflight = {0}, c = {0};
	struct rec inflight2 = {0};
	struct note lost = {0};
	const char *p[1];
	struct store_stats s;
	char *path = xasprintf("%s/conninfo", pgdir);
	FILE *f = fopen(path, "r");
	char line[512];

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	fclose(f);
	free(path);
	line[strcspn(line, "\n")] = '\0';
	db = xstrdup(line);
	ck_assert_int_eq(store_migrate(db, testdb_sql_dir()), 0);

	st = store_new(base, db, &o);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(store_listen(st, "cinder_rc"), 0);
	p[0] = "before";
	run(STORE_Q_WRITE | STORE_Q_PREPARE,
	    "INSERT INTO healer_history (device_id, event) "
	    "VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', $1)",
	    1, p, &a);
	ck_assert_int_eq(a.r, 0);

	/* A write in flight when the server goes: it must be sent again. */
	ck_assert_int_eq(store_query(st, STORE_Q_WRITE,
				     "INSERT INTO healer_history (device_id, "
				     "event) SELECT "
				     "'aaaaaaaaaaaaaaaaaaaaaaaa', 'inflight' "
				     "FROM pg_sleep(1)",
				     0, NULL, rec_cb, &inflight, NULL),
			 0);
	p[0] = "inflight2";
	ck_assert_int_eq(store_query(st, STORE_Q_WRITE,
				     "INSERT INTO healer_history (device_id, "
				     "event) VALUES "
				     "('aaaaaaaaaaaaaaaaaaaaaaaa', $1)",
				     1, p, rec_cb, &inflight2, NULL),
			 0);
	/* One turn sends both into the pipeline. */
	event_base_loop(base, EVLOOP_NONBLOCK);

	ck_assert_int_eq(pgcluster("pgcluster_stop"), 0);
	pump_until(pred_down, st, 30, "the store to notice the outage");
	ck_assert(!inflight.done);
	ck_assert(!inflight2.done);

	/* Down: reads fail fast, writes queue. */
	ck_assert_int_eq(store_query(st, STORE_Q_READ, "SELECT 1", 0, NULL,
				     rec_cb, &b, NULL),
			 CINDER_ERR_UNAVAILABLE);
	p[0] = "queued";
	/* prepared again on the new connection */
	ck_assert_int_eq(store_query(st, STORE_Q_WRITE | STORE_Q_PREPARE,
				     "INSERT INTO healer_history (device_id, "
				     "event) VALUES "
				     "('aaaaaaaaaaaaaaaaaaaaaaaa', $1)",
				     1, p, rec_cb, &w, NULL),
			 0);
	store_stats_get(st, &s);
	ck_assert_uint_eq(s.queued, 3);
	ck_assert(!s.up);

	/* The reconnect tells the receiver that notifications were lost. */
	store_notify_set(st, note_cb, &lost);
	ck_assert_int_eq(pgcluster("pgcluster_start"), 0);
	pump_until(pred_note, &lost, 60, "the lost-notifications call");
	ck_assert_int_eq(lost.count, 1);
	ck_assert_str_eq(lost.channel, "cinder_rc");
	ck_assert_ptr_null(lost.payload);
	store_notify_set(st, NULL, NULL);
	note_clear(&lost);
	pump_until(pred_done, &w, 60, "the queued write after restart");
	ck_assert(store_is_up(st));
	ck_assert(inflight.done);
	ck_assert_int_eq(inflight.r, 0);
	ck_assert_int_eq(w.r, 0);
	ck_assert_int_eq(inflight2.r, 0);
	ck_assert_int_lt(inflight.order, inflight2.order);
	ck_assert_int_lt(inflight2.order, w.order);
	ck_assert(!b.done);

	run(STORE_Q_READ,
	    "SELECT string_agg(event, ',' ORDER BY id) FROM healer_history", 0,
	    NULL, &c);
	ck_assert_int_eq(c.r, 0);
	ck_assert_str_eq(c.v0, "before,inflight,inflight2,queued");
	store_stats_get(st, &s);
	ck_assert_uint_eq(s.reconnects, 1);
	ck_assert_uint_eq(s.queued, 0);
	/* The new session listens again. */
	notify_roundtrip("cinder_rc", "after restart");
	rec_clear(&a);
	rec_clear(&w);
	rec_clear(&inflight);
	rec_clear(&inflight2);
	rec_clear(&c);
}
END_TEST

/*
 * Start-up connects once: store_migrate_keep() hands its connection (the
 * check done in one query, the schema being current) to store_new(),
 * which takes it on its first loop turn and sets it up like its own.
 */
START_TEST(test_store_adopt_migrate_conn)
{
	struct store_startup sst;
	struct store_opts so = {0};
	struct store_stats ss;
	struct store *st2;
	struct rec a = {0}, b = {0};
	char pid[32];

	ck_assert_int_eq(store_migrate_keep(db, testdb_sql_dir(), &sst), 0);
	ck_assert_ptr_nonnull(sst.conn);
	ck_assert(sst.connect_ms > 0 && sst.check_ms > 0);
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(sst.conn));
	so.adopt = sst.conn;
	so.statement_timeout_ms = 12345;
	st2 = store_new(base, db, &so);
	ck_assert_ptr_nonnull(st2);
	store_stats_get(st2, &ss);
	ck_assert(!ss.up && !ss.ever_up && ss.first_pending);
	ck_assert_int_eq(store_query(st2, STORE_Q_READ,
				     "SELECT pg_backend_pid()::text", 0, NULL,
				     rec_cb, &a, NULL),
			 0);
	wait_done(&a);
	ck_assert_int_eq(a.r, 0);
	ck_assert_str_eq(a.v0, pid);
	ck_assert_int_eq(store_query(st2, STORE_Q_READ,
				     "SHOW statement_timeout", 0, NULL, rec_cb,
				     &b, NULL),
			 0);
	wait_done(&b);
	ck_assert_str_eq(b.v0, "12345ms");
	store_stats_get(st2, &ss);
	ck_assert(ss.up && ss.ever_up && !ss.first_pending);
	ck_assert_uint_eq(ss.connect_failures, 0);
	store_free(st2);
	rec_clear(&a);
	rec_clear(&b);
	/* a connection nobody took is closed */
	ck_assert_int_eq(store_migrate_keep(db, testdb_sql_dir(), &sst), 0);
	store_startup_drop(&sst);
	ck_assert_ptr_null(sst.conn);
	store_startup_drop(NULL);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("query");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_store_query_roundtrip);
	tcase_add_test(tc, test_store_result_accessors);
	tcase_add_test(tc, test_store_query_binary);
	tcase_add_test(tc, test_store_query_conflict);
	tcase_add_test(tc, test_store_query_order);
	tcase_add_test(tc, test_store_prime_entries);
	tcase_add_test(tc, test_store_query_prepared);
	tcase_add_test(tc, test_store_query_urgent);
	tcase_add_test(tc, test_store_query_error_isolated);
	tcase_add_test(tc, test_store_query_copy);
	tcase_add_test(tc, test_store_listen_notify);
	tcase_add_test(tc, test_store_statement_timeout);
	tcase_add_test(tc, test_store_query_from_callback);
	tcase_add_test(tc, test_store_query_inval);
	tcase_add_test(tc, test_store_adopt_migrate_conn);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_store_cancel_queued);
	tcase_add_test(tc, test_store_cancel_inflight);
	tcase_add_test(tc, test_store_free_pending);
	suite_add_tcase(s, tc);

	tc = tcase_create("down");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_store_down_read_write);
	suite_add_tcase(s, tc);

	tc = tcase_create("reconnect");
	tcase_add_checked_fixture(tc, setup_private, teardown_private);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_store_reconnect);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	testdb_require();
	log_open(LOG_LEVEL_WARN, NULL);
	sr = srunner_create(store_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
