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

/**
 * Whether PostgreSQL's plan for sql, a statement with one text parameter
 * ($1) given arg (a literal: no quote in it), reads through index and
 * scans no table whole. A plan that does not is written to stderr.
 * Aborts on error.
 */
bool testdb_plan_indexed(const char *conninfo, const char *sql, const char *arg,
			 const char *index);

/** Add n devices (no owner, key 'k') and ANALYZE the table, so that
    plans are made as for a fleet. */
void testdb_fill_devices(const char *conninfo, unsigned n);

/** The id of the i-th device testdb_fill_devices() added, into out. */
void testdb_fill_device_id(char out[25], unsigned i);

#endif
