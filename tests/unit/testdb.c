/* SPDX-License-Identifier: MIT */
/*
 * Test databases on the tests/with-pg cluster: create a uniquely named
 * database per test, optionally migrate it, drop it afterwards. Blocking
 * libpq; test code only, never linked into the daemon.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store.h"
#include "testdb.h"
#include "xmalloc.h"

#ifndef CINDER_TEST_SRCDIR
#define CINDER_TEST_SRCDIR "."
#endif

#define TESTDB_SKIP_MSG                                                        \
	"skipped: CINDER_TEST_CONNINFO is not set; run under tests/with-pg "   \
	"(e.g. tests/with-pg make check)\n"

static const char *
testdb_base(void)
{
	const char *c = getenv("CINDER_TEST_CONNINFO");

	return c != NULL && *c != '\0' ? c : NULL;
}

bool
testdb_available(void)
{
	return testdb_base() != NULL;
}

void
testdb_require(void)
{
	if (testdb_available())
		return;
	fputs(TESTDB_SKIP_MSG, stderr);
	exit(77);
}

const char *
testdb_srcdir(void)
{
	const char *s = getenv("top_srcdir");

	return s != NULL && *s != '\0' ? s : CINDER_TEST_SRCDIR;
}

const char *
testdb_sql_dir(void)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/sql", testdb_srcdir());
	return buf;
}

static PGconn *
testdb_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "testdb: could not connect: %s",
			c != NULL ? PQerrorMessage(c) : "out of memory\n");
		abort();
	}
	return c;
}

static void
testdb_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "testdb: %s: %s", sql, PQerrorMessage(c));
		abort();
	}
	PQclear(res);
}

char *
testdb_create(void)
{
	static unsigned counter;
	const char *base = testdb_base();
	struct timespec ts;
	char name[64], *sql, *quoted;
	PGconn *c;

	if (base == NULL) {
		fputs(TESTDB_SKIP_MSG, stderr);
		exit(77);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "cinder_t_%ld_%u_%ld", (long)getpid(),
		 counter++, (long)ts.tv_nsec);
	c = testdb_connect(base);
	quoted = PQescapeIdentifier(c, name, strlen(name));
	/* template0: concurrent creations from template1 would conflict. */
	sql = xasprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING "
			"'UTF8'",
			quoted);
	testdb_exec(c, sql);
	free(sql);
	PQfreemem(quoted);
	PQfinish(c);
	/* In keyword/value conninfo the last dbname wins. */
	return xasprintf("%s dbname=%s", base, name);
}

char *
testdb_create_migrated(void)
{
	char *conninfo = testdb_create();
	int r = store_migrate(conninfo, testdb_sql_dir());

	if (r != 0) {
		fprintf(stderr, "testdb: migrations in %s failed (%d)\n",
			testdb_sql_dir(), r);
		abort();
	}
	return conninfo;
}

void
testdb_drop(char *conninfo)
{
	const char *p, *base = testdb_base();
	char *sql, *quoted;
	PGconn *c;

	if (conninfo == NULL)
		return;
	p = strstr(conninfo, " dbname=cinder_t_");
	if (base != NULL && p != NULL) {
		p += strlen(" dbname=");
		c = testdb_connect(base);
		quoted = PQescapeIdentifier(c, p, strlen(p));
		sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)",
				quoted);
		testdb_exec(c, sql);
		free(sql);
		PQfreemem(quoted);
		PQfinish(c);
	}
	free(conninfo);
}

/*
 * The text of one simple query that opens a transaction, prepares sql as
 * testdb_p (its parameters' types are its own casts) and executes it n
 * times with args, SQL literals. The caller appends what reads the
 * result; closing the connection rolls the executions' writes back.
 */
static char *
prepared_runs(const char *sql, const char *args, int n)
{
	char *q = xasprintf("BEGIN; PREPARE testdb_p AS %s", sql), *t;

	while (n-- > 0) {
		t = xasprintf("%s; EXECUTE testdb_p(%s)", q, args);
		free(q);
		q = t;
	}
	return q;
}

void
testdb_add_fleet(const char *conninfo)
{
	free(testdb_query_value(
		conninfo, "INSERT INTO devices (device_id, public_key) "
			  "SELECT lpad(to_hex(1048576 + g), 24, '0'), 'k' "
			  "FROM generate_series(0, 11999) g; ANALYZE devices"));
}

bool
testdb_batch_indexed(const char *conninfo, const char *sql,
		     const char *record_fmt, const char *more)
{
	char json[4096] = "[", id[25], *q, *v, *args, *runs;
	const char *mark;
	size_t len = 1, n;
	bool ok;

	if (strchr(record_fmt, '\'') != NULL) {
		fprintf(stderr, "testdb: a quote in a batch's record\n");
		abort();
	}
	testdb_add_fleet(conninfo);
	/* the id goes where "%s" is (the record is not a printf format) */
	if ((mark = strstr(record_fmt, "%s")) == NULL) {
		fprintf(stderr, "testdb: no %%s in a batch's record\n");
		abort();
	}
	for (unsigned i = 0; i < 9; i++) {
		snprintf(id, sizeof(id), "%024x", 1048576u + i * 997);
		n = (size_t)snprintf(json + len, sizeof(json) - len,
				     "%s%.*s%s%s", i > 0 ? "," : "",
				     (int)(mark - record_fmt), record_fmt, id,
				     mark + 2);
		if (n >= sizeof(json) - len - 1) {
			fprintf(stderr, "testdb: a batch's records are too "
					"long\n");
			abort();
		}
		len += n;
	}
	memcpy(json + len, "]", 2);
	/* Five executions first, so that the plan read is the one
	   PostgreSQL keeps for a prepared statement (the generic one, if
	   it took it); the last statement's result comes back. */
	args = xasprintf("'%s'%s%s", json, more != NULL ? ", " : "",
			 more != NULL ? more : "");
	runs = prepared_runs(sql, args, 5);
	q = xasprintf("%s; EXPLAIN (FORMAT JSON) EXECUTE testdb_p(%s)", runs,
		      args);
	free(runs);
	free(args);
	v = testdb_query_value(conninfo, q);
	free(q);
	ok = v != NULL && strstr(v, "Seq Scan") == NULL &&
	     strstr(v, "devices_pkey") != NULL;
	if (!ok)
		fprintf(stderr, "testdb: the plan of %s:\n%s\n", sql,
			v != NULL ? v : "(null)");
	free(v);
	return ok;
}

long
testdb_generic_plans(const char *conninfo, const char *sql, const char *args)
{
	char *q = prepared_runs(sql, args, 10), *t, *v;
	long n;

	/* the last result is the count */
	t = xasprintf("%s; SELECT generic_plans FROM pg_prepared_statements "
		      "WHERE name = 'testdb_p'",
		      q);
	free(q);
	v = testdb_query_value(conninfo, t);
	free(t);
	n = v != NULL && *v != '\0' ? atol(v) : -1;
	free(v);
	return n;
}

char *
testdb_query_value(const char *conninfo, const char *sql)
{
	PGconn *c = testdb_connect(conninfo);
	PGresult *res = PQexec(c, sql);
	char *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "testdb: %s: %s", sql, PQerrorMessage(c));
		abort();
	}
	if (PQntuples(res) == 0 || PQnfields(res) == 0)
		v = xstrdup("");
	else if (PQgetisnull(res, 0, 0))
		v = NULL;
	else
		v = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(c);
	return v;
}
