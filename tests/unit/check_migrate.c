/* SPDX-License-Identifier: MIT */
/*
 * Tests for the blocking side of the store (store_sync.c): migrations
 * (fresh database, idempotence, concurrent migrators, broken files) and
 * the CLI helpers (users, devices, pending keys). Each test gets its own
 * database on the tests/with-pg cluster; without it the program SKIPs.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "testdb.h"
#include "xmalloc.h"

static char *db;

static void
setup_db(void)
{
	db = testdb_create();
}

static void
teardown_db(void)
{
	testdb_drop(db);
	db = NULL;
}

/* Value of a one-value query, compared as text. */
static void
assert_value(const char *conninfo, const char *sql, const char *want)
{
	char *v = testdb_query_value(conninfo, sql);

	ck_assert_msg(v != NULL, "%s: NULL", sql);
	ck_assert_msg(strcmp(v, want) == 0, "%s: got '%s', want '%s'", sql, v,
		      want);
	free(v);
}

/* A scratch migrations directory with files written by the test. */
static char *
sqldir_new(void)
{
	char tmpl[] = "/tmp/cinder-sql.XXXXXX";
	char *d = mkdtemp(tmpl);

	ck_assert_ptr_nonnull(d);
	return xstrdup(d);
}

static void
sqldir_write(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	free(path);
}

static void
sqldir_free(char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(dir);
}

/* Read a whole small file (the captured log). */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = xcalloc(1, 65536);
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(test_store_migrate_fresh)
{
	ck_assert_int_eq(store_migrate(db, testdb_sql_dir()), 0);
	assert_value(db,
		     "SELECT string_agg(version, ',' ORDER BY version) "
		     "FROM schema_migrations WHERE version = '0001'",
		     "0001");
	assert_value(db,
		     "SELECT count(*) FROM information_schema.tables "
		     "WHERE table_schema = 'public' AND table_name IN "
		     "('users', 'access_tokens', 'refresh_tokens', "
		     "'oauth_clients', 'products', 'devices', "
		     "'pending_device_keys', 'webhooks', "
		     "'webhook_deliveries', 'firmware_images', "
		     "'product_firmware', 'device_os_versions', "
		     "'healer_history')",
		     "13");
	/* 0005 dropped the unused healer_jobs and its reference. */
	assert_value(db,
		     "SELECT count(*) FROM information_schema.columns "
		     "WHERE table_schema = 'public' AND (table_name = "
		     "'healer_jobs' OR (table_name = 'healer_history' AND "
		     "column_name = 'job_id'))",
		     "0");
	/* 0006 keeps the last application hash seen per device. */
	assert_value(db,
		     "SELECT data_type FROM information_schema.columns "
		     "WHERE table_schema = 'public' AND table_name = "
		     "'devices' AND column_name = 'app_hash'",
		     "text");
	/* 0007: a connect or disconnect (online and last_heard changed, the
	   node the same) is a HOT update, made in place without new index
	   entries; it was not while an index predicate named online. The
	   two statements run as one transaction, whose counter the second
	   reads. */
	free(testdb_query_value(db, "INSERT INTO devices (device_id, "
				    "public_key, node_id) VALUES "
				    "('0a0000000000000000000007', 'k', 'n1') "
				    "RETURNING 1"));
	for (int i = 0; i < 2; i++) {
		char *sql = xasprintf(
			"UPDATE devices SET online = %s, last_heard = now() "
			"WHERE device_id = '0a0000000000000000000007'; "
			"SELECT pg_stat_get_xact_tuples_hot_updated("
			"'devices'::regclass)",
			i == 0 ? "true" : "false");

		assert_value(db, sql, "1");
		free(sql);
	}
	/* the crash clean-up at start still has an index by node */
	assert_value(db,
		     "SELECT count(*) FROM pg_indexes WHERE tablename = "
		     "'devices' AND indexdef LIKE '%(node_id)'",
		     "1");
	/* Constraints hold: a device id must be 24 lowercase hex digits. */
	char *v = testdb_query_value(
		db, "SELECT count(*) FROM pg_constraint "
		    "WHERE conrelid = 'devices'::regclass AND contype = 'c'");
	ck_assert_int_ge(atoi(v), 2);
	free(v);
}
END_TEST

START_TEST(test_store_migrate_idempotent)
{
	char *before, *after, *n;

	ck_assert_int_eq(store_migrate(db, testdb_sql_dir()), 0);
	before = testdb_query_value(db,
				    "SELECT applied_at FROM schema_migrations "
				    "WHERE version = '0001'");
	ck_assert_int_eq(store_migrate(db, testdb_sql_dir()), 0);
	after = testdb_query_value(db,
				   "SELECT applied_at FROM schema_migrations "
				   "WHERE version = '0001'");
	ck_assert_str_eq(before, after);
	n = testdb_query_value(db, "SELECT count(*) FROM schema_migrations");
	ck_assert_int_ge(atoi(n), 1);
	free(before);
	free(after);
	free(n);
	/* The seeded clients were inserted once, not twice. */
	assert_value(db,
		     "SELECT count(*) FROM oauth_clients "
		     "WHERE client_id = 'particle'",
		     "1");
}
END_TEST

START_TEST(test_store_migrate_incremental)
{
	char *dir = sqldir_new();

	sqldir_write(dir, "0001_a.sql", "CREATE TABLE a (x int);\n");
	sqldir_write(dir, "README", "not a migration\n");
	ck_assert_int_eq(store_migrate(db, dir), 0);
	sqldir_write(dir, "0002_b.sql",
		     "CREATE TABLE b (y text);\nINSERT INTO a VALUES (1);\n");
	ck_assert_int_eq(store_migrate(db, dir), 0);
	ck_assert_int_eq(store_migrate(db, dir), 0);
	assert_value(db,
		     "SELECT string_agg(version, ',' ORDER BY version) "
		     "FROM schema_migrations",
		     "0001,0002");
	assert_value(db, "SELECT count(*) FROM a", "1");
	sqldir_free(dir);
}
END_TEST

START_TEST(test_store_migrate_concurrent)
{
	enum { NPROC = 4 };
	pid_t pids[NPROC];
	int i, status;

	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(store_migrate(db, testdb_sql_dir()) == 0 ? 0 : 1);
	}
	for (i = 0; i < NPROC; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status));
		ck_assert_int_eq(WEXITSTATUS(status), 0);
	}
	assert_value(db,
		     "SELECT count(*) FROM schema_migrations "
		     "WHERE version = '0001'",
		     "1");
	assert_value(db, "SELECT count(*) FROM oauth_clients", "4");
}
END_TEST

START_TEST(test_store_migrate_broken)
{
	char *dir = sqldir_new();
	char *logpath = xasprintf("%s/log", dir);
	char *logtext;

	sqldir_write(dir, "0001_ok.sql", "CREATE TABLE good (x int);\n");
	sqldir_write(dir, "0002_broken.sql",
		     "CREATE TABLE other (x int);\n\nSELEC oops;\n");
	ck_assert_int_eq(log_open(LOG_LEVEL_INFO, logpath), 0);
	ck_assert_int_eq(store_migrate(db, dir), CINDER_ERR_DB);
	log_close();
	logtext = slurp(logpath);
	ck_assert_msg(strstr(logtext, "0002_broken.sql") != NULL,
		      "log does not name the file: %s", logtext);
	ck_assert_msg(strstr(logtext, "line 3") != NULL,
		      "log does not give the line: %s", logtext);
	/* One transaction: nothing of 0001 or 0002 is left. */
	assert_value(db, "SELECT to_regclass('good') IS NULL", "t");
	assert_value(db, "SELECT to_regclass('other') IS NULL", "t");
	assert_value(db, "SELECT to_regclass('schema_migrations') IS NULL",
		     "t");
	free(logtext);
	free(logpath);
	sqldir_free(dir);
}
END_TEST

START_TEST(test_store_migrate_commit_in_file)
{
	char *dir = sqldir_new();

	/* Transaction words inside strings, comments, dollar quotes and
	 * identifiers are fine. */
	sqldir_write(dir, "0001_ok.sql",
		     "-- COMMIT;\n/* ROLLBACK; /* nested */ END; */\n"
		     "CREATE TABLE t (x text DEFAULT 'a;COMMIT;''b');\n"
		     "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$\n"
		     "BEGIN\n  RETURN 1;\nEND;\n$f$;\n"
		     "CREATE TABLE \"begin\" (\"end;\" int);\n");
	ck_assert_int_eq(store_migrate(db, dir), 0);
	assert_value(db, "SELECT f()", "1");
	sqldir_write(dir, "0002_commit.sql",
		     "CREATE TABLE u (x int);\n"
		     "  commit ;\n");
	ck_assert_int_eq(store_migrate(db, dir), CINDER_ERR_INVAL);
	assert_value(db, "SELECT to_regclass('u') IS NULL", "t");
	sqldir_write(dir, "0002_commit.sql",
		     "CREATE TABLE u (x int);"
		     "/* x */ BEGIN;\n");
	ck_assert_int_eq(store_migrate(db, dir), CINDER_ERR_INVAL);
	assert_value(db,
		     "SELECT string_agg(version, ',') FROM schema_migrations",
		     "0001");
	sqldir_free(dir);
}
END_TEST

START_TEST(test_store_migrate_duplicate_version)
{
	char *dir = sqldir_new();

	sqldir_write(dir, "0001_a.sql", "SELECT 1;\n");
	sqldir_write(dir, "0001_b.sql", "SELECT 2;\n");
	ck_assert_int_eq(store_migrate(db, dir), CINDER_ERR_INVAL);
	sqldir_free(dir);
}
END_TEST

START_TEST(test_store_migrate_errors)
{
	ck_assert_int_eq(store_migrate(db, "/nonexistent/sql"), CINDER_ERR_IO);
	ck_assert_int_eq(store_migrate(NULL, testdb_sql_dir()),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(store_migrate("host=/nonexistent port=1 "
				       "connect_timeout=2",
				       testdb_sql_dir()),
			 CINDER_ERR_UNAVAILABLE);
}
END_TEST

static const char *pem = "-----BEGIN PUBLIC KEY-----\n"
			 "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
			 "-----END PUBLIC KEY-----\n";

START_TEST(test_store_sync_user_add)
{
	char *m = testdb_create_migrated();

	ck_assert_int_eq(store_sync_user_add(m, "a@example.com",
					     "$argon2id$v=19$x", true),
			 0);
	ck_assert_int_eq(store_sync_user_add(m, "a@example.com", "$x", false),
			 CINDER_ERR_CONFLICT);
	ck_assert_int_eq(store_sync_user_add(m, "", "$x", false),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(store_sync_user_add(m, "b", NULL, false),
			 CINDER_ERR_INVAL);
	assert_value(m,
		     "SELECT password_hash || ' ' || is_admin FROM users "
		     "WHERE username = 'a@example.com'",
		     "$argon2id$v=19$x true");
	testdb_drop(m);
}
END_TEST

START_TEST(test_store_sync_device_add)
{
	char *m = testdb_create_migrated();

	ck_assert_int_eq(store_sync_user_add(m, "o", "$x", false), 0);
	ck_assert_int_eq(store_sync_device_add(m, "0123456789ABCDEF01234567",
					       pem, "o", "kitchen"),
			 0);
	assert_value(m,
		     "SELECT d.device_id || ' ' || d.name || ' ' || u.username "
		     "FROM devices d JOIN users u ON u.id = d.owner_id",
		     "0123456789abcdef01234567 kitchen o");
	/* Same id again, and the same name for the same owner. */
	ck_assert_int_eq(store_sync_device_add(m, "0123456789abcdef01234567",
					       pem, NULL, NULL),
			 CINDER_ERR_CONFLICT);
	ck_assert_int_eq(store_sync_device_add(m, "aaaaaaaaaaaaaaaaaaaaaaaa",
					       pem, "o", "kitchen"),
			 CINDER_ERR_CONFLICT);
	ck_assert_int_eq(store_sync_device_add(m, "bbbbbbbbbbbbbbbbbbbbbbbb",
					       pem, "nobody", NULL),
			 CINDER_ERR_NOTFOUND);
	ck_assert_int_eq(store_sync_device_add(m, "xyz", pem, NULL, NULL),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(store_sync_device_add(m, "bbbbbbbbbbbbbbbbbbbbbbbz",
					       pem, NULL, NULL),
			 CINDER_ERR_INVAL);
	/* Unowned device without a name. */
	ck_assert_int_eq(store_sync_device_add(m, "cccccccccccccccccccccccc",
					       pem, NULL, NULL),
			 0);
	assert_value(m, "SELECT count(*) FROM devices", "2");
	testdb_drop(m);
}
END_TEST

START_TEST(test_store_sync_device_accept)
{
	char *m = testdb_create_migrated();
	struct store_pending_key *v = NULL;
	size_t n = 99;
	char *v2;
	FILE *out;
	char buf[1024];
	size_t len;

	ck_assert_int_eq(store_sync_pending_list(m, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(v);
	v2 = testdb_query_value(
		m, "INSERT INTO pending_device_keys (device_id, public_key, "
		   "last_ip, attempts) VALUES ('dddddddddddddddddddddddd', "
		   "'PEMTEXT', '192.0.2.7', 3), "
		   "('eeeeeeeeeeeeeeeeeeeeeeee', 'PEM2', NULL, 1)");
	free(v2);
	ck_assert_int_eq(store_sync_pending_list(m, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].device_id, "dddddddddddddddddddddddd");
	ck_assert_str_eq(v[0].public_key, "PEMTEXT");
	ck_assert_str_eq(v[0].last_ip, "192.0.2.7");
	ck_assert_int_eq(v[0].attempts, 3);
	ck_assert_ptr_null(v[1].last_ip);
	store_pending_keys_free(v, n);

	out = tmpfile();
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(store_sync_pending_print(m, out), 0);
	rewind(out);
	len = fread(buf, 1, sizeof(buf) - 1, out);
	buf[len] = '\0';
	fclose(out);
	ck_assert_msg(strstr(buf, "dddddddddddddddddddddddd") != NULL, "%s",
		      buf);
	ck_assert_msg(strstr(buf, "192.0.2.7") != NULL, "%s", buf);

	ck_assert_int_eq(store_sync_user_add(m, "o", "$x", false), 0);
	ck_assert_int_eq(store_sync_device_accept(m, "DDDDDDDDDDDDDDDDDDDDDDDD",
						  "nobody", NULL),
			 CINDER_ERR_NOTFOUND);
	ck_assert_int_eq(store_sync_device_accept(m, "ffffffffffffffffffffffff",
						  NULL, NULL),
			 CINDER_ERR_NOTFOUND);
	ck_assert_int_eq(store_sync_device_accept(m, "DDDDDDDDDDDDDDDDDDDDDDDD",
						  "o", "desk"),
			 0);
	assert_value(
		m,
		"SELECT d.public_key || ' ' || d.name || ' ' || u.username "
		"FROM devices d JOIN users u ON u.id = d.owner_id "
		"WHERE device_id = 'dddddddddddddddddddddddd'",
		"PEMTEXT desk o");
	assert_value(m, "SELECT count(*) FROM pending_device_keys", "1");

	/* A new key for a known device replaces the old one, keeps owner. */
	v2 = testdb_query_value(
		m, "INSERT INTO pending_device_keys (device_id, public_key) "
		   "VALUES ('dddddddddddddddddddddddd', 'NEWPEM')");
	free(v2);
	ck_assert_int_eq(store_sync_device_accept(m, "dddddddddddddddddddddddd",
						  NULL, NULL),
			 0);
	assert_value(
		m,
		"SELECT d.public_key || ' ' || d.name || ' ' || u.username "
		"FROM devices d JOIN users u ON u.id = d.owner_id "
		"WHERE device_id = 'dddddddddddddddddddddddd'",
		"NEWPEM desk o");
	/* Name clash for the same owner. */
	ck_assert_int_eq(store_sync_device_accept(m, "eeeeeeeeeeeeeeeeeeeeeeee",
						  "o", "desk"),
			 CINDER_ERR_CONFLICT);
	assert_value(m, "SELECT count(*) FROM pending_device_keys", "1");
	testdb_drop(m);
}
END_TEST

static Suite *
migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc;

	tc = tcase_create("migrate");
	tcase_add_checked_fixture(tc, setup_db, teardown_db);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_store_migrate_fresh);
	tcase_add_test(tc, test_store_migrate_idempotent);
	tcase_add_test(tc, test_store_migrate_incremental);
	tcase_add_test(tc, test_store_migrate_concurrent);
	tcase_add_test(tc, test_store_migrate_broken);
	tcase_add_test(tc, test_store_migrate_commit_in_file);
	tcase_add_test(tc, test_store_migrate_duplicate_version);
	tcase_add_test(tc, test_store_migrate_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("sync");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_store_sync_user_add);
	tcase_add_test(tc, test_store_sync_device_add);
	tcase_add_test(tc, test_store_sync_device_accept);
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
	sr = srunner_create(migrate_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
