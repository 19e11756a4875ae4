/* SPDX-License-Identifier: MIT */
/*
 * Test databases on the throwaway cluster started by tests/with-pg.
 * Each test gets its own freshly created database (tests run in parallel),
 * named cinder_t_<pid>_<n>_<nanoseconds>. Built into tests/unit/libtestdb.a;
 * link it before $(TEST_LIBS). Test code only: blocking libpq.
 */
#ifndef CINDER_TESTDB_H
#define CINDER_TESTDB_H

#include <stdbool.h>

/** @return true when CINDER_TEST_CONNINFO is set (running under with-pg) */
bool testdb_available(void);

/**
 * Skip the whole test program unless running under tests/with-pg: prints
 * a message and exits 77 (automake's SKIP). Call from main() before
 * srunner_run_all(); an exit(77) inside a forked Check test is a failure.
 */
void testdb_require(void);

/**
 * Create a new empty database on the harness cluster.
 * @return its conninfo (keyword/value form); caller frees with testdb_drop()
 *     or free(). Exits 77 if the harness is absent; aborts on other errors.
 */
char *testdb_create(void);

/**
 * Like testdb_create(), then apply the project's migrations (sql/).
 * Aborts if they fail.
 */
char *testdb_create_migrated(void);

/** Drop a database made by testdb_create() and free conninfo. NULL-safe. */
void testdb_drop(char *conninfo);

/** @return the source tree's top directory ($top_srcdir, else the build's) */
const char *testdb_srcdir(void);

/** @return the migrations directory, testdb_srcdir()/sql; static storage */
const char *testdb_sql_dir(void);

/**
 * Run one SQL statement (no parameters) on conninfo and return the first
 * column of the first row as a new string ("" for no row, NULL for SQL
 * NULL). Aborts on error. Test convenience only: never pass data in sql.
 */
char *testdb_query_value(const char *conninfo, const char *sql);

/*
 * A fleet for plan checks: adds 12,000 devices (no owner, key 'k'; ids
 * 000...100000 to 000...102edf in hex) and ANALYZEs the table. Aborts on
 * error.
 */
void testdb_add_fleet(const char *conninfo);

/**
 * Whether a batch statement over the devices table reads it by its
 * primary key in a fleet: adds the fleet (testdb_add_fleet()) and reads
 * PostgreSQL's plan for sql, a statement whose first parameter ($1) is a
 * JSON array of records, given 9 records made from record_fmt (its one "%s" is
 * a device's id; no quote in it), and whose other parameters are the SQL
 * literals in more
 * ("''" for $2, say; NULL: none); the plan of a sixth execution, after
 * five, is the one PostgreSQL keeps. True if it uses devices_pkey and
 * scans no table whole; a plan that does not is written to stderr.
 * Aborts on error.
 */
bool testdb_batch_indexed(const char *conninfo, const char *sql,
			  const char *record_fmt, const char *more);

/*
 * How many of 10 executions of sql, prepared and given the parameters
 * in args (SQL literals: "'{}'"), ran PostgreSQL's generic plan, in a
 * transaction that is not committed. PostgreSQL plans the first 5 for
 * their parameters and then keeps the generic plan unless those looked
 * cheaper: a statement whose plans for its parameters always look
 * cheaper is planned at every execution (0 here). Aborts on error.
 */
long testdb_generic_plans(const char *conninfo, const char *sql,
			  const char *args);

#endif
