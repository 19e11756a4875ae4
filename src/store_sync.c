/* SPDX-License-Identifier: MIT */
/*
 * Blocking store helpers for startup and the CLI: schema migrations and
 * user/device administration. Each call opens its own connection, does its
 * work (in one transaction where it changes more than one row) and closes
 * it. Never call these from the event loop: they block until PostgreSQL
 * answers. Parameters only, never formatted SQL.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

/* Largest migration file accepted. */
#define STORE_MIGRATION_MAX (16u * 1024 * 1024)
/* pg_advisory_xact_lock key for migrations: "cinder" + 1. */
#define STORE_MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(109342766309377)"

static void
store_sync_notice_cb(void *arg, const char *message)
{
	log_debug("database notice: %s", message);
}

char *
store_msg_oneline(const char *m)
{
	char *out;
	size_t i, o = 0;

	if (m == NULL || *m == '\0')
		return xstrdup("unknown error");
	out = xmalloc(strlen(m) + 1);
	for (i = 0; m[i] != '\0'; i++) {
		if (m[i] == '\n' || m[i] == '\t' || m[i] == '\r') {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		out[o++] = m[i];
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return out;
}

static int
store_sync_connect(const char *conninfo, PGconn **connp)
{
	PGconn *c;
	char *msg;

	*connp = NULL;
	if (conninfo == NULL)
		return CINDER_ERR_INVAL;
	c = PQconnectdb(conninfo);
	if (c == NULL) {
		log_err("could not connect to database: out of memory");
		return CINDER_ERR_UNAVAILABLE;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		msg = store_msg_oneline(PQerrorMessage(c));
		log_err("could not connect to database: %s", msg);
		free(msg);
		PQfinish(c);
		return CINDER_ERR_UNAVAILABLE;
	}
	PQsetNoticeProcessor(c, store_sync_notice_cb, NULL);
	*connp = c;
	return 0;
}

/*
 * Run one statement with text parameters. On success *resp (if not NULL)
 * receives the result, which the caller PQclear()s. On failure the error
 * is logged with "what" unless it maps to one of the codes in quiet_err.
 */
static int
store_sync_exec(PGconn *c, const char *what, int quiet_err, const char *sql,
		int n, const char *const *params, PGresult **resp)
{
	PGresult *res;
	ExecStatusType st;
	char *msg;
	int r;

	if (resp != NULL)
		*resp = NULL;
	res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (resp != NULL)
			*resp = res;
		else
			PQclear(res);
		return 0;
	}
	r = store_sqlstate_to_err(
		res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
	if (r != quiet_err) {
		msg = store_msg_oneline(res != NULL ? PQresultErrorMessage(res)
						    : PQerrorMessage(c));
		log_err("could not %s: %s", what, msg);
		free(msg);
	}
	PQclear(res);
	return r;
}

static void
store_sync_rollback(PGconn *c)
{
	PGresult *res;

	if (c == NULL || PQtransactionStatus(c) == PQTRANS_IDLE ||
	    PQtransactionStatus(c) == PQTRANS_UNKNOWN)
		return;
	res = PQexec(c, "ROLLBACK");
	PQclear(res);
}

/* Validate a 24-hex-digit device id and return a lowercase copy. */
static char *
store_sync_device_id(const char *id)
{
	char *out;
	size_t i;

	if (id == NULL || strlen(id) != 24)
		return NULL;
	for (i = 0; i < 24; i++)
		if (!isxdigit((unsigned char)id[i]))
			return NULL;
	out = xstrdup(id);
	for (i = 0; i < 24; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return out;
}

/*
 * Migrations
 */

/* A migration file name: four digits, '_', anything, ".sql". */
static bool
store_migration_name_ok(const char *name)
{
	size_t n = strlen(name);
	int i;

	if (n < 9 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
		return false;
	for (i = 0; i < 4; i++)
		if (!isdigit((unsigned char)name[i]))
			return false;
	return true;
}

static int
store_migration_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
store_names_free(char **names, size_t n)
{
	size_t i;

	if (names == NULL)
		return;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* List sql_dir's migration files, sorted; reject duplicate versions. */
static int
store_migration_list(const char *sql_dir, char ***namesp, size_t *np)
{
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int r = CINDER_ERR_INTERNAL;

	*namesp = NULL;
	*np = 0;
	if ((d = opendir(sql_dir)) == NULL) {
		log_err("could not open migration directory %s: %s", sql_dir,
			strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!store_migration_name_ok(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), store_migration_cmp);
	for (i = 1; i < n; i++) {
		if (strncmp(names[i - 1], names[i], 4) == 0) {
			log_err("migrations %s and %s have the same version",
				names[i - 1], names[i]);
			r = CINDER_ERR_INVAL;
			goto out;
		}
	}
	r = 0;
	*namesp = names;
	*np = n;
	names = NULL;
	n = 0;
out:
	store_names_free(names, n);
	if (d != NULL)
		closedir(d);
	return r;
}

/* Read a whole migration file as a NUL-terminated string. */
static int
store_migration_read(const char *path, char **textp)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, got;
	int r = CINDER_ERR_INTERNAL;

	*textp = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		log_err("could not open migration %s: %s", path,
			strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			buf = xreallocarray(buf, cap, 1);
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (len > STORE_MIGRATION_MAX) {
			log_err("migration %s is larger than %u bytes", path,
				STORE_MIGRATION_MAX);
			r = CINDER_ERR_TOO_BIG;
			goto out;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		log_err("could not read migration %s", path);
		r = CINDER_ERR_IO;
		goto out;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		log_err("migration %s contains a NUL byte", path);
		r = CINDER_ERR_INVAL;
		goto out;
	}
	r = 0;
	*textp = buf;
	buf = NULL;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return r;
}

/* 1-based line of a 1-based character position (ASCII approximation). */
static unsigned long
store_migration_line(const char *text, const char *pos)
{
	unsigned long line = 1, off, i;
	char *end;

	if (pos == NULL)
		return 0;
	off = strtoul(pos, &end, 10);
	if (*end != '\0' || off == 0)
		return 0;
	for (i = 0; i + 1 < off && text[i] != '\0'; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

/* Skip a quoted string, identifier or comment starting at s[i]; returns
 * the index after it, or i if s[i] starts none of them. */
static size_t
store_sql_skip(const char *s, size_t i)
{
	size_t j, taglen;
	int depth;

	if (s[i] == '-' && s[i + 1] == '-') {
		while (s[i] != '\0' && s[i] != '\n')
			i++;
		return i;
	}
	if (s[i] == '/' && s[i + 1] == '*') {
		/* PostgreSQL block comments nest. */
		for (depth = 0; s[i] != '\0'; i++) {
			if (s[i] == '/' && s[i + 1] == '*') {
				depth++;
				i++;
			} else if (s[i] == '*' && s[i + 1] == '/') {
				i++;
				if (--depth == 0)
					return i + 1;
			}
		}
		return i;
	}
	if (s[i] == '\'' || s[i] == '"') {
		char q = s[i];
		bool esc = q == '\'' && i > 0 &&
			   (s[i - 1] == 'E' || s[i - 1] == 'e');

		for (i++; s[i] != '\0'; i++) {
			if (esc && s[i] == '\\' && s[i + 1] != '\0')
				i++;
			else if (s[i] == q && s[i + 1] == q)
				i++;
			else if (s[i] == q)
				return i + 1;
		}
		return i;
	}
	if (s[i] == '$') {
		/* Dollar quote: $tag$ ... $tag$ (tag may be empty). */
		for (j = i + 1; isalnum((unsigned char)s[j]) || s[j] == '_';
		     j++)
			;
		if (s[j] != '$' || isdigit((unsigned char)s[i + 1]))
			return i;
		taglen = j - i + 1;
		for (j++; s[j] != '\0'; j++)
			if (strncmp(s + j, s + i, taglen) == 0)
				return j + taglen;
		return j;
	}
	return i;
}

/*
 * Reject transaction control in a migration: its COMMIT would commit the
 * migration transaction half-way. Looks at the first word of every
 * top-level statement, skipping comments and quoted text.
 */
static const char *
store_sql_txn_word(const char *s)
{
	static const char *const words[] = {"BEGIN", "COMMIT", "ROLLBACK",
					    "END",   "ABORT",  "START"};
	size_t i = 0, j, k, n;
	bool at_start = true;

	while (s[i] != '\0') {
		j = store_sql_skip(s, i);
		if (j != i) {
			i = j;
			continue;
		}
		if (s[i] == ';') {
			at_start = true;
			i++;
			continue;
		}
		if (isspace((unsigned char)s[i]) || s[i] == '(') {
			i++;
			continue;
		}
		if (at_start && isalpha((unsigned char)s[i])) {
			for (n = 0; isalnum((unsigned char)s[i + n]) ||
				    s[i + n] == '_';
			     n++)
				;
			for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
				if (strlen(words[k]) == n &&
				    strncasecmp(s + i, words[k], n) == 0)
					return words[k];
			i += n;
		} else {
			i++;
		}
		at_start = false;
	}
	return NULL;
}

/* Apply one migration file's text inside the open transaction. */
static int
store_migration_apply(PGconn *c, const char *name, const char *text)
{
	PGresult *res = NULL;
	ExecStatusType st;
	char *msg = NULL;
	const char *params[1], *word;
	char version[5];
	unsigned long line;
	int r = CINDER_ERR_INTERNAL;

	if ((word = store_sql_txn_word(text)) != NULL) {
		log_err("migration %s failed: it contains %s (no transaction "
			"control in migration files)",
			name, word);
		r = CINDER_ERR_INVAL;
		goto out;
	}
	/* Simple query protocol: the file may hold many statements. */
	res = PQexec(c, text);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
	    st != PGRES_EMPTY_QUERY) {
		msg = store_msg_oneline(
			res != NULL ? PQresultErrorField(
					      res, PG_DIAG_MESSAGE_PRIMARY)
				    : PQerrorMessage(c));
		line = res != NULL
			       ? store_migration_line(
					 text,
					 PQresultErrorField(
						 res,
						 PG_DIAG_STATEMENT_POSITION))
			       : 0;
		if (line > 0)
			log_err("migration %s failed at line %lu: %s", name,
				line, msg);
		else
			log_err("migration %s failed: %s", name, msg);
		r = res != NULL ? CINDER_ERR_DB : CINDER_ERR_UNAVAILABLE;
		goto out;
	}
	if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
		log_err("migration %s failed: it must not end the transaction "
			"(no BEGIN/COMMIT in migration files)",
			name);
		r = CINDER_ERR_DB;
		goto out;
	}
	memcpy(version, name, 4);
	version[4] = '\0';
	params[0] = version;
	r = store_sync_exec(c, "record migration", 0,
			    "INSERT INTO schema_migrations (version) "
			    "VALUES ($1)",
			    1, params, NULL);
	if (r != 0)
		goto out;
	log_notice("applied migration %s", name);
	r = 0;
out:
	free(msg);
	PQclear(res);
	return r;
}

/*
 * Is every one of the n migrations recorded already? One query, outside
 * a transaction; a missing schema_migrations (a fresh database) is "no".
 * @return 0 with *current set, or CINDER_ERR_UNAVAILABLE
 */
static int
store_migrations_current(PGconn *c, char **names, size_t n, bool *current)
{
	PGresult *res = NULL;
	const char *params[1];
	char *list;
	size_t i;
	int r;

	*current = false;
	if (n == 0)
		return 0;
	/* versions are four digits (store_migration_name_ok) */
	list = xmalloc(n * 5 + 2);
	list[0] = '{';
	for (i = 0; i < n; i++) {
		memcpy(list + 1 + i * 5, names[i], 4);
		list[1 + i * 5 + 4] = i + 1 < n ? ',' : '}';
	}
	list[1 + n * 5] = '\0';
	params[0] = list;
	r = store_sync_exec(c, "check schema_migrations", CINDER_ERR_DB,
			    "SELECT count(*) FROM schema_migrations "
			    "WHERE version = ANY($1::text[])",
			    1, params, &res);
	free(list);
	if (r == CINDER_ERR_DB)
		return 0; /* no table yet: the full path creates it */
	if (r != 0)
		return r;
	*current = PQntuples(res) == 1 &&
		   strtoull(PQgetvalue(res, 0, 0), NULL, 10) == n;
	PQclear(res);
	return 0;
}

int
store_migrate(const char *conninfo, const char *sql_dir)
{
	struct store_startup s;
	int r = store_migrate_keep(conninfo, sql_dir, &s);

	store_startup_drop(&s);
	return r;
}

void
store_startup_drop(struct store_startup *s)
{
	if (s != NULL && s->conn != NULL) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
}

int
store_migrate_keep(const char *conninfo, const char *sql_dir,
		   struct store_startup *out)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	char **names = NULL, *path = NULL, *text = NULL;
	const char *params[1];
	char version[5];
	size_t n = 0, i, applied = 0;
	struct timespec t0;
	bool current;
	int r = CINDER_ERR_INTERNAL;

	memset(out, 0, sizeof(*out));
	if (conninfo == NULL || sql_dir == NULL) {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	if ((r = store_migration_list(sql_dir, &names, &n)) != 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = store_sync_connect(conninfo, &c)) != 0)
		goto out;
	out->connect_ms = log_ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = store_migrations_current(c, names, n, &current)) != 0)
		goto out;
	if (current) {
		log_info("database schema is up to date");
		goto done;
	}
	if ((r = store_sync_exec(c, "begin migration", 0, "BEGIN", 0, NULL,
				 NULL)) != 0)
		goto out;
	/* Serialise concurrent migrators before touching any table. */
	if ((r = store_sync_exec(c, "take the migration lock", 0,
				 STORE_MIGRATE_LOCK_SQL, 0, NULL, NULL)) != 0)
		goto out;
	if ((r = store_sync_exec(c, "create schema_migrations", 0,
				 "CREATE TABLE IF NOT EXISTS schema_migrations "
				 "(version text PRIMARY KEY, "
				 "applied_at timestamptz NOT NULL "
				 "DEFAULT now())",
				 0, NULL, NULL)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		memcpy(version, names[i], 4);
		version[4] = '\0';
		params[0] = version;
		if ((r = store_sync_exec(c, "read schema_migrations", 0,
					 "SELECT 1 FROM schema_migrations "
					 "WHERE version = $1",
					 1, params, &res)) != 0)
			goto out;
		if (PQntuples(res) > 0) {
			PQclear(res);
			res = NULL;
			continue;
		}
		PQclear(res);
		res = NULL;
		free(path);
		path = xasprintf("%s/%s", sql_dir, names[i]);
		free(text);
		text = NULL;
		if ((r = store_migration_read(path, &text)) != 0)
			goto out;
		if ((r = store_migration_apply(c, names[i], text)) != 0)
			goto out;
		applied++;
	}
	if ((r = store_sync_exec(c, "commit migrations", 0, "COMMIT", 0, NULL,
				 NULL)) != 0)
		goto out;
	if (applied == 0)
		log_info("database schema is up to date");
	else
		log_notice("applied %zu migration%s", applied,
			   applied == 1 ? "" : "s");
done:
	out->check_ms = log_ms_since(&t0);
	out->conn = c;
	c = NULL;
	r = 0;
out:
	PQclear(res);
	store_sync_rollback(c);
	if (c != NULL)
		PQfinish(c);
	store_names_free(names, n);
	free(path);
	free(text);
	return r;
}

/*
 * Users and devices
 */

int
store_sync_user_add(const char *conninfo, const char *username,
		    const char *password_hash, bool is_admin)
{
	PGconn *c = NULL;
	const char *params[3];
	int r = CINDER_ERR_INTERNAL;

	if (username == NULL || *username == '\0' || password_hash == NULL ||
	    *password_hash == '\0') {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	if ((r = store_sync_connect(conninfo, &c)) != 0)
		goto out;
	params[0] = username;
	params[1] = password_hash;
	params[2] = is_admin ? "true" : "false";
	r = store_sync_exec(c, "add user", CINDER_ERR_CONFLICT,
			    "INSERT INTO users (username, password_hash, "
			    "is_admin) VALUES ($1, $2, $3)",
			    3, params, NULL);
	if (r == CINDER_ERR_CONFLICT)
		log_info("user %s already exists", username);
out:
	if (c != NULL)
		PQfinish(c);
	return r;
}

/*
 * Look up a user's id by username. *idp receives a copy of the id text.
 * Returns CINDER_ERR_NOTFOUND for an unknown user.
 */
static int
store_sync_user_id(PGconn *c, const char *username, char **idp)
{
	PGresult *res = NULL;
	const char *params[1] = {username};
	int r;

	*idp = NULL;
	r = store_sync_exec(c, "look up user", 0,
			    "SELECT id FROM users WHERE username = $1", 1,
			    params, &res);
	if (r != 0)
		return r;
	if (PQntuples(res) != 1) {
		log_info("no such user: %s", username);
		PQclear(res);
		return CINDER_ERR_NOTFOUND;
	}
	*idp = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
store_sync_device_add(const char *conninfo, const char *device_id,
		      const char *public_key_pem, const char *owner,
		      const char *name)
{
	PGconn *c = NULL;
	char *id = NULL, *owner_id = NULL;
	const char *params[4];
	int r = CINDER_ERR_INTERNAL;

	if ((id = store_sync_device_id(device_id)) == NULL ||
	    public_key_pem == NULL || *public_key_pem == '\0' ||
	    (name != NULL && *name == '\0')) {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	if ((r = store_sync_connect(conninfo, &c)) != 0)
		goto out;
	if ((r = store_sync_exec(c, "begin", 0, "BEGIN", 0, NULL, NULL)) != 0)
		goto out;
	if (owner != NULL && (r = store_sync_user_id(c, owner, &owner_id)) != 0)
		goto out;
	params[0] = id;
	params[1] = public_key_pem;
	params[2] = owner_id;
	params[3] = name;
	r = store_sync_exec(c, "add device", CINDER_ERR_CONFLICT,
			    "INSERT INTO devices (device_id, public_key, "
			    "owner_id, name) VALUES ($1, $2, $3, $4)",
			    4, params, NULL);
	if (r == CINDER_ERR_CONFLICT)
		log_info("device %s (or its name for that owner) exists", id);
	if (r != 0)
		goto out;
	if ((r = store_sync_exec(c, "remove pending key", 0,
				 "DELETE FROM pending_device_keys "
				 "WHERE device_id = $1",
				 1, params, NULL)) != 0)
		goto out;
	r = store_sync_exec(c, "commit", 0, "COMMIT", 0, NULL, NULL);
out:
	store_sync_rollback(c);
	if (c != NULL)
		PQfinish(c);
	free(id);
	free(owner_id);
	return r;
}

void
store_pending_keys_free(struct store_pending_key *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].public_key);
		free(v[i].first_seen);
		free(v[i].last_seen);
		free(v[i].last_ip);
	}
	free(v);
}

int
store_sync_pending_list(const char *conninfo, struct store_pending_key **outp,
			size_t *np)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	struct store_pending_key *v = NULL;
	size_t n = 0, i;
	int r = CINDER_ERR_INTERNAL;

	*outp = NULL;
	*np = 0;
	if ((r = store_sync_connect(conninfo, &c)) != 0)
		goto out;
	r = store_sync_exec(c, "list pending devices", 0,
			    "SELECT device_id, public_key, "
			    "to_char(first_seen AT TIME ZONE 'UTC', "
			    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
			    "to_char(last_seen AT TIME ZONE 'UTC', "
			    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
			    "last_ip, attempts FROM pending_device_keys "
			    "ORDER BY first_seen, device_id",
			    0, NULL, &res);
	if (r != 0)
		goto out;
	n = (size_t)PQntuples(res);
	if (n > 0)
		v = xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++) {
		snprintf(v[i].device_id, sizeof(v[i].device_id), "%s",
			 PQgetvalue(res, (int)i, 0));
		v[i].public_key = xstrdup(PQgetvalue(res, (int)i, 1));
		v[i].first_seen = xstrdup(PQgetvalue(res, (int)i, 2));
		v[i].last_seen = xstrdup(PQgetvalue(res, (int)i, 3));
		if (!PQgetisnull(res, (int)i, 4))
			v[i].last_ip = xstrdup(PQgetvalue(res, (int)i, 4));
		v[i].attempts = strtol(PQgetvalue(res, (int)i, 5), NULL, 10);
	}
	r = 0;
	*outp = v;
	*np = n;
	v = NULL;
	n = 0;
out:
	store_pending_keys_free(v, n);
	PQclear(res);
	if (c != NULL)
		PQfinish(c);
	return r;
}

int
store_sync_pending_print(const char *conninfo, FILE *out)
{
	struct store_pending_key *v = NULL;
	size_t n = 0, i;
	int r;

	if ((r = store_sync_pending_list(conninfo, &v, &n)) != 0)
		return r;
	if (n == 0) {
		fprintf(out, "no pending devices\n");
	} else {
		fprintf(out, "%-24s  %8s  %-20s  %-20s  %s\n", "DEVICE ID",
			"ATTEMPTS", "FIRST SEEN", "LAST SEEN", "LAST IP");
		for (i = 0; i < n; i++)
			fprintf(out, "%-24s  %8ld  %-20s  %-20s  %s\n",
				v[i].device_id, v[i].attempts, v[i].first_seen,
				v[i].last_seen,
				v[i].last_ip != NULL ? v[i].last_ip : "-");
	}
	store_pending_keys_free(v, n);
	return 0;
}

int
store_sync_device_accept(const char *conninfo, const char *device_id,
			 const char *owner, const char *name)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	char *id = NULL, *owner_id = NULL, *key = NULL;
	const char *params[4];
	int r = CINDER_ERR_INTERNAL;

	if ((id = store_sync_device_id(device_id)) == NULL ||
	    (name != NULL && *name == '\0')) {
		r = CINDER_ERR_INVAL;
		goto out;
	}
	if ((r = store_sync_connect(conninfo, &c)) != 0)
		goto out;
	if ((r = store_sync_exec(c, "begin", 0, "BEGIN", 0, NULL, NULL)) != 0)
		goto out;
	params[0] = id;
	if ((r = store_sync_exec(c, "read pending key", 0,
				 "SELECT public_key FROM pending_device_keys "
				 "WHERE device_id = $1 FOR UPDATE",
				 1, params, &res)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		log_info("no pending key for device %s", id);
		r = CINDER_ERR_NOTFOUND;
		goto out;
	}
	key = xstrdup(PQgetvalue(res, 0, 0));
	if (owner != NULL && (r = store_sync_user_id(c, owner, &owner_id)) != 0)
		goto out;
	params[1] = key;
	params[2] = owner_id;
	params[3] = name;
	r = store_sync_exec(c, "accept device", CINDER_ERR_CONFLICT,
			    "INSERT INTO devices (device_id, public_key, "
			    "owner_id, name) VALUES ($1, $2, $3, $4) "
			    "ON CONFLICT (device_id) DO UPDATE SET "
			    "public_key = EXCLUDED.public_key, "
			    "owner_id = COALESCE(EXCLUDED.owner_id, "
			    "devices.owner_id), "
			    "name = COALESCE(EXCLUDED.name, devices.name)",
			    4, params, NULL);
	if (r == CINDER_ERR_CONFLICT)
		log_info("device name %s is taken for that owner", name);
	if (r != 0)
		goto out;
	if ((r = store_sync_exec(c, "remove pending key", 0,
				 "DELETE FROM pending_device_keys "
				 "WHERE device_id = $1",
				 1, params, NULL)) != 0)
		goto out;
	/* key, owner and name may have changed: running nodes forget the
	   rows they keep for calls and reads and read the owner again
	   (REST_DEVICES_CHANNEL, "<id> key", sent at the commit) */
	if ((r = store_sync_exec(c, "notify", 0,
				 "SELECT pg_notify('cinder_devices', "
				 "$1 || ' key')",
				 1, params, NULL)) != 0)
		goto out;
	r = store_sync_exec(c, "commit", 0, "COMMIT", 0, NULL, NULL);
out:
	PQclear(res);
	store_sync_rollback(c);
	if (c != NULL)
		PQfinish(c);
	free(id);
	free(owner_id);
	free(key);
	return r;
}

int
store_sync_query_params(const char *conninfo, const char *sql, int nparams,
			const struct store_param *params, char **first,
			char *errbuf, size_t errlen)
{
	const char *values[32];
	int lengths[32], formats[32], i, r = CINDER_ERR_INVAL;
	PGconn *c = NULL;
	PGresult *res = NULL;
	ExecStatusType st;
	char *msg;

	if (first != NULL)
		*first = NULL;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (nparams < 0 || nparams > 32)
		goto out;
	for (i = 0; i < nparams; i++) {
		values[i] = params[i].value;
		lengths[i] = params[i].binary ? (int)params[i].len : 0;
		formats[i] = params[i].binary ? 1 : 0;
	}
	if ((r = store_sync_connect(conninfo, &c)) != 0)
		goto out;
	res = PQexecParams(c, sql, nparams, NULL, values, lengths, formats, 0);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		r = store_sqlstate_to_err(
			res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				    : NULL);
		msg = store_msg_oneline(res != NULL ? PQresultErrorMessage(res)
						    : PQerrorMessage(c));
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "%s", msg);
		free(msg);
		goto out;
	}
	if (first != NULL && PQntuples(res) > 0 && PQnfields(res) > 0 &&
	    !PQgetisnull(res, 0, 0))
		*first = xstrdup(PQgetvalue(res, 0, 0));
	r = 0;
out:
	PQclear(res);
	if (c != NULL)
		PQfinish(c);
	return r;
}
