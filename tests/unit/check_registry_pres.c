/* SPDX-License-Identifier: MIT */
/*
 * Tests for the batched presence writes (registry_pres.c) against a real
 * PostgreSQL: what several changes of one device in the same batch leave
 * in its row must be what the separate statements, in their order, left
 * (the last online/offline wins, an offline spares a device another node
 * took over, a later describe keeps an earlier one's functions when it
 * has none). A bare registry and connections are built by hand; the
 * batch is flushed explicitly and a read queued behind it waits for it.
 * Also the plans of the statements every handshake runs (this batch and
 * the key lookup, registry_hs.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <check.h>
#include <event2/event.h>

#include "crypto.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "store.h"
#include "testdb.h"
#include "xmalloc.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbb"

static struct event_base *base;
static char *db;
static struct store *st;
static struct registry reg;

struct rec {
	bool done;
	int r;
	char *v; /* first row, first column, or NULL */
};

static void
rec_cb(int r, const struct store_result *res, void *arg)
{
	struct rec *x = arg;
	const char *v = store_result_value(res, 0, 0);

	x->done = true;
	x->r = r;
	x->v = v != NULL ? xstrdup(v) : NULL;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run one query behind everything queued; its first value (owned). */
static char *
query(const char *sql, const char *id)
{
	struct rec x = {0};
	bool expired = false;
	struct timeval tv = {30, 0};
	struct event *ev = evtimer_new(base, deadline_cb, &expired);
	const char *params[1] = {id};

	ck_assert_int_eq(store_query(st, STORE_Q_WRITE, sql, id ? 1 : 0,
				     id ? params : NULL, rec_cb, &x, NULL),
			 0);
	evtimer_add(ev, &tv);
	while (!x.done && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert_msg(!expired, "timed out waiting for %s", sql);
	ck_assert_int_eq(x.r, 0);
	return x.v;
}

static void
assert_col(const char *id, const char *expr, const char *want)
{
	char sql[256], *v;

	snprintf(sql, sizeof(sql),
		 "SELECT (%s)::text FROM devices "
		 "WHERE device_id = $1",
		 expr);
	v = query(sql, id);
	if (want == NULL)
		ck_assert_msg(v == NULL, "%s: %s, want NULL", expr, v);
	else
		ck_assert_msg(v != NULL && strcmp(v, want) == 0,
			      "%s: %s, want %s", expr, v ? v : "NULL", want);
	free(v);
}

static void
conn_init(struct devconn *c, const char *id, const char *ip)
{
	memset(c, 0, sizeof(*c));
	c->reg = &reg;
	snprintf(c->idhex, sizeof(c->idhex), "%s", id);
	ck_assert_int_eq(inet_pton(AF_INET, ip, c->addr), 1);
}

/* The Hello every test connection sent. */
static const struct session_hello hello = {
	.platform_id = 6,
	.product_id = 0xffff,
	.product_version = 3,
	.flags = 1,
};

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	db = testdb_create_migrated();
	st = store_new(base, db, NULL);
	ck_assert_ptr_nonnull(st);
	memset(&reg, 0, sizeof(reg));
	reg.base = base;
	reg.store = st;
	snprintf(reg.node_id, sizeof(reg.node_id), "node-1");
	free(query("INSERT INTO devices (device_id, public_key) VALUES "
		   "('" ID_A "', 'k'), ('" ID_B "', 'k')",
		   NULL));
}

static void
teardown(void)
{
	registry_pres_cleanup(&reg);
	store_free(st);
	st = NULL;
	testdb_drop(db);
	db = NULL;
	event_base_free(base);
	base = NULL;
}

/* A takeover in one batch: the old connection's offline, then the new
   one's online: online, with the new connection's address. */
START_TEST(test_pres_offline_then_online)
{
	struct devconn old, new;

	conn_init(&old, ID_A, "10.0.0.1");
	conn_init(&new, ID_A, "10.0.0.2");
	registry_pres_online(&old, &hello);
	old.online = true;
	registry_pres_flush(&reg);
	registry_pres_offline(&old);
	registry_pres_online(&new, &hello);
	registry_pres_flush(&reg);
	assert_col(ID_A, "online", "true");
	assert_col(ID_A, "last_ip_address", "10.0.0.2");
	assert_col(ID_A, "node_id", "node-1");
	assert_col(ID_A, "platform_id", "6");
	assert_col(ID_A, "hello_product_id", NULL);
	assert_col(ID_A, "product_firmware_version", "3");
	assert_col(ID_B, "online", "false"); /* untouched */
	assert_col(ID_B, "last_heard IS NULL", "true");
}
END_TEST

/* Online then offline in one batch (a short session): offline, its
   Hello columns written, last_heard not before the handshake. */
START_TEST(test_pres_online_then_offline)
{
	struct devconn c;

	conn_init(&c, ID_A, "10.0.0.3");
	c.max_binary = 1048576;
	registry_pres_online(&c, &hello);
	registry_pres_offline(&c);
	registry_pres_flush(&reg);
	assert_col(ID_A, "online", "false");
	assert_col(ID_A, "last_ip_address", "10.0.0.3");
	assert_col(ID_A, "last_heard >= last_handshake_at", "true");
	assert_col(ID_A, "max_binary_size", "1048576");
	assert_col(ID_A, "ota_chunk_size", NULL);
}
END_TEST

/* An offline spares a device another node holds now. */
START_TEST(test_pres_offline_other_node)
{
	struct devconn c;

	free(query("UPDATE devices SET online = true, node_id = 'node-2' "
		   "WHERE device_id = $1",
		   ID_A));
	conn_init(&c, ID_A, "10.0.0.4");
	registry_pres_offline(&c);
	registry_pres_flush(&reg);
	assert_col(ID_A, "online", "true");
	assert_col(ID_A, "node_id", "node-2");
	assert_col(ID_A, "last_heard IS NULL", "true");
}
END_TEST

/* Two describes in one batch: the later text, the earlier functions
   and system columns where the later has none. */
START_TEST(test_pres_describes_merge)
{
	struct devconn c;

	conn_init(&c, ID_B, "10.0.0.5");
	registry_pres_online(&c, &hello);
	registry_pres_describe(&c, "{\"f\":[\"a\"],\"m\":[]}", NULL, "[\"a\"]",
			       "{\"v\":\"int32\"}", "[{\"n\":\"1\"}]", "4.0.0",
			       12, true, 4000);
	registry_pres_describe(&c, "{\"f\":[\"a\"],\"v\":{\"w\":1}}", NULL,
			       NULL, "{\"w\":\"int32\"}", NULL, NULL, -1, false,
			       0);
	registry_pres_flush(&reg);
	assert_col(ID_B, "online", "true");
	assert_col(ID_B, "last_describe->'v'->>'w'", "1");
	assert_col(ID_B, "functions->>0", "a");
	assert_col(ID_B, "variables->>'w'", "int32");
	assert_col(ID_B, "system_modules->0->>'n'", "1");
	assert_col(ID_B, "system_version", "4.0.0");
	assert_col(ID_B, "system_module_version", "4000");
	assert_col(ID_B, "platform_id", "12"); /* the describe's, later */
}
END_TEST

static const char key_t1[] = "{\"f\":[\"a\"],\"m\":[{\"n\":\"1\"}]}",
		  key_t2[] = "{\"f\":[\"b\"]}";

/* key_t1 (functions "a") or key_t2 ("b") as c's describe; sys: with
   the system columns, as t1's. */
static void
describe_t(struct devconn *c, const char *t, bool sys)
{
	uint8_t sha[CRYPTO_SHA256_LEN];
	bool one = t == key_t1;

	ck_assert_int_eq(crypto_sha256(t, strlen(t), sha), 0);
	registry_pres_describe(c, t, sha, one ? "[\"a\"]" : "[\"b\"]", NULL,
			       sys ? "[{\"n\":\"1\"}]" : NULL,
			       sys ? "4.0.0" : NULL, sys ? 12 : -1, sys,
			       sys ? 4000 : 0);
}

/* ID_A's describe columns: the text's and the list's first function,
   and the key's first two characters (NULL: no key). */
static void
assert_describe(const char *text_f, const char *f, const char *key)
{
	assert_col(ID_A,
		   "coalesce(last_describe->'f'->>0, "
		   "last_describe->>'mark')",
		   text_f);
	assert_col(ID_A, "functions->>0", f);
	assert_col(ID_A, "left(describe_key, 2)", key);
}

/* The row holds a describe's key: the same describe at the next connect
   leaves its columns alone (a fleet reconnecting says what its rows
   hold); another key, the system columns asked for, or a record of two
   describes writes them. The row is marked by hand between batches, so
   that a write shows. */
START_TEST(test_pres_describe_key)
{
	static const char mark[] =
		"UPDATE devices SET last_describe = '{\"mark\":\"m\"}', "
		"functions = '[\"m\"]', system_modules = '[]' "
		"WHERE device_id = $1";
	struct devconn c;

	conn_init(&c, ID_A, "10.0.0.1");
	registry_pres_online(&c, &hello);
	describe_t(&c, key_t1, true);
	registry_pres_flush(&reg);
	assert_describe("a", "a", "1s");
	assert_col(ID_A, "system_modules->0->>'n'", "1");

	/* the same describe again: the Hello's columns only */
	free(query(mark, ID_A));
	registry_pres_offline(&c);
	registry_pres_flush(&reg);
	registry_pres_online(&c, &hello);
	describe_t(&c, key_t1, true);
	registry_pres_flush(&reg);
	assert_col(ID_A, "online", "true");
	assert_describe("m", "m", "1s");
	assert_col(ID_A, "system_modules::text", "[]");
	assert_col(ID_A, "system_version", "4.0.0");

	/* the same text without the system columns is another key */
	describe_t(&c, key_t1, false);
	registry_pres_flush(&reg);
	assert_describe("a", "a", "1a");
	assert_col(ID_A, "system_modules::text", "[]"); /* not written */

	/* two describes in one record, the last the row's key: no key,
	   written */
	free(query(mark, ID_A));
	describe_t(&c, key_t2, false);
	describe_t(&c, key_t1, false);
	registry_pres_flush(&reg);
	assert_describe("a", "a", NULL);

	/* a row without a key takes the next describe */
	free(query(mark, ID_A));
	describe_t(&c, key_t1, false);
	registry_pres_flush(&reg);
	assert_describe("a", "a", "1a");
}
END_TEST

/* Devices of one batch share texts: a text sent for one record is named
   again by the next (the functions and variables below), and the batch
   remembers only its last few texts (the second record's new ones push
   out the first's). Each row gets its own describe. */
START_TEST(test_pres_texts_shared)
{
	static const char ta[] = "{\"f\":[\"x\"],\"m\":[{\"n\":\"a\"}]}",
			  tb[] = "{\"f\":[\"x\"],\"m\":[{\"n\":\"b\"}]}";
	static const struct {
		const char *id, *text, *modules, *n;
	} dev[] = {
		{ID_A, ta, "[{\"n\":\"a\"}]", "a"},
		{ID_B, tb, "[{\"n\":\"b\"}]", "b"},
	};
	struct devconn c[2];
	size_t i;

	for (i = 0; i < 2; i++) {
		conn_init(&c[i], dev[i].id, "10.0.0.1");
		registry_pres_describe(&c[i], dev[i].text, NULL, "[\"x\"]",
				       "{\"v\":\"int32\"}", dev[i].modules,
				       "4.0.0", 12, true, 4000);
	}
	registry_pres_flush(&reg);
	for (i = 0; i < 2; i++) {
		assert_col(dev[i].id, "last_describe->'m'->0->>'n'", dev[i].n);
		assert_col(dev[i].id, "system_modules->0->>'n'", dev[i].n);
		assert_col(dev[i].id, "functions->>0", "x");
		assert_col(dev[i].id, "variables->>'v'", "int32");
	}
}
END_TEST

/* What registry_pres_product() says of c must be what a read of the
   row gives as coreInfo's product_id (h_devices_int.h DEV_COLS) once the
   batch is in; NULL: it does not know. */
static void
assert_product(const struct devconn *c, const char *want)
{
	char got[24];
	int64_t n = -1;
	char *v;

	registry_pres_flush(&reg);
	if (registry_pres_product(c, &n))
		snprintf(got, sizeof(got), "%lld", (long long)n);
	v = query("SELECT COALESCE(product_id, NULLIF(hello_product_id, "
		  "65535), platform_id)::text FROM devices "
		  "WHERE device_id = $1",
		  c->idhex);
	if (want == NULL) {
		ck_assert_msg(n == -1, "product %lld, want unknown",
			      (long long)n);
	} else {
		ck_assert_msg(n != -1, "product unknown, want %s", want);
		ck_assert_str_eq(got, want);
		ck_assert_msg(v != NULL && strcmp(v, got) == 0,
			      "the row reads %s, the registry %s",
			      v ? v : "NULL", got);
	}
	free(v);
}

/* The product a read gives: the assigned one, else the Hello's, else
   the platform the Hello or a later describe stated. */
START_TEST(test_pres_product)
{
	struct devconn c, c2, c3;
	struct session_hello h = hello; /* product 0xffff, platform 6 */
	char *p;

	conn_init(&c, ID_A, "10.0.1.1");
	registry_pres_online(&c, &h);
	assert_product(&c, NULL); /* the row's product not read */
	registry_row_product_set(&c, true, NULL);
	assert_product(&c, "6");
	registry_pres_describe(&c, "{\"p\":12}", NULL, NULL, NULL, NULL, NULL,
			       12, false, 0);
	assert_product(&c, "12");
	registry_pres_describe(&c, "{\"f\":[]}", NULL, "[]", NULL, NULL, NULL,
			       -1, false, 0);
	assert_product(&c, "12"); /* no platform: kept */

	/* a Hello product wins over the platform, a describe's too */
	conn_init(&c2, ID_A, "10.0.1.2");
	registry_row_product_set(&c2, true, NULL);
	h.product_id = 7;
	registry_pres_online(&c2, &h);
	assert_product(&c2, "7");
	registry_pres_describe(&c2, "{\"p\":13}", NULL, NULL, NULL, NULL, NULL,
			       13, false, 0);
	assert_product(&c2, "7");

	/* an assigned product wins over both */
	p = query("INSERT INTO products (name, slug, platform_id) "
		  "VALUES ('p', 'p', 6) RETURNING id::text",
		  NULL);
	free(query("UPDATE devices SET product_id = $1::int "
		   "WHERE device_id = '" ID_A "'",
		   p));
	registry_row_product_set(&c2, true, p);
	assert_product(&c2, p);
	registry_row_product_set(&c2, true, "x");
	ck_assert(!c2.row_known); /* not a number: unknown */
	free(p);

	/* neither a Hello product nor a platform: the row's old platform,
	   which only PostgreSQL knows */
	conn_init(&c3, ID_B, "10.0.1.3");
	registry_row_product_set(&c3, true, NULL);
	h.product_id = 0xffff;
	h.platform_id = 0xffff;
	registry_pres_online(&c3, &h);
	assert_product(&c3, NULL);
	registry_pres_describe(&c3, "{\"p\":10}", NULL, NULL, NULL, NULL, NULL,
			       10, false, 0);
	assert_product(&c3, "10");
}
END_TEST

/* In a fleet of thousands the batch finds its rows by the primary key:
   jsonb_to_recordset() is estimated at 100 rows, and a join on it alone
   read the whole table (a sequential scan of 12,000 rows for 9 records,
   10 times the statement's time). */
START_TEST(test_pres_plan)
{
	ck_assert_msg(testdb_batch_indexed(db, registry_pres_statement(),
					   "{\"id\":\"%s\",\"online\":true,"
					   "\"hs\":true,\"node\":\"node-1\"}",
					   "''"),
		      "the batch reads the whole table (its plan on stderr)");
}
END_TEST

/* The key lookup's product: the assigned one, else the Hello's where
   such a product exists. */
START_TEST(test_key_lookup_product)
{
	char *q, *v;

	free(query("INSERT INTO products (id, name, slug, platform_id) "
		   "VALUES (77, 'p', 'p', 6)",
		   NULL));
	free(query("UPDATE devices SET hello_product_id = 77 "
		   "WHERE device_id = '" ID_A "'",
		   NULL));
	free(query("UPDATE devices SET hello_product_id = 78 "
		   "WHERE device_id = '" ID_B "'",
		   NULL));
	q = xasprintf("PREPARE kl AS %s; CREATE TEMP TABLE kl_rows AS "
		      "EXECUTE kl('{" ID_A "," ID_B "}'); "
		      "SELECT string_agg(device_id || '=' || "
		      "coalesce(\"coalesce\"::text, 'none'), ',' "
		      "ORDER BY device_id) FROM kl_rows",
		      registry_key_lookup_statement());
	v = testdb_query_value(db, q);
	ck_assert_str_eq(v, ID_A "=77," ID_B "=none");
	free(v);
	free(query("UPDATE devices SET product_id = 77 "
		   "WHERE device_id = '" ID_B "'",
		   NULL));
	v = testdb_query_value(db, q);
	ck_assert_str_eq(v, ID_A "=77," ID_B "=77");
	free(v);
	free(q);
}
END_TEST

/* The statements of every handshake are planned once per connection:
   PostgreSQL takes their generic plan from the sixth execution on. The
   key lookup was planned anew at each one (0 of 10). */
START_TEST(test_plans_generic)
{
	long n;

	n = testdb_generic_plans(db, registry_key_lookup_statement(),
				 "'{" ID_A "," ID_B "}'");
	ck_assert_msg(n == 5, "key lookup: %ld generic plans of 10", n);
	n = testdb_generic_plans(db, registry_pres_statement(),
				 "'[{\"id\":\"" ID_A "\",\"online\":true,"
				 "\"hs\":true,\"node\":\"node-1\"}]', ''");
	ck_assert_msg(n == 5, "presence: %ld generic plans of 10", n);
}
END_TEST

/* Without an explicit flush the batch goes out by itself. */
START_TEST(test_pres_timer)
{
	struct devconn c;
	char *v = NULL;
	bool expired = false;
	struct timeval tv = {30, 0};
	struct event *ev = evtimer_new(base, deadline_cb, &expired);

	conn_init(&c, ID_A, "10.0.0.6");
	registry_pres_online(&c, &hello);
	evtimer_add(ev, &tv);
	while (!expired && hmap_count(reg.pres) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert(!expired);
	v = query("SELECT online::text FROM devices WHERE device_id = $1",
		  ID_A);
	ck_assert_str_eq(v, "true");
	free(v);
}
END_TEST

/* The last_heard flush of 1,007 devices: statements of at most 16 KB of
   ids (libpq's output buffer grows to the largest one and never
   shrinks), and every device heard gets its last_heard. */
START_TEST(test_heard_split)
{
	size_t i, n = 1007;
	struct devconn *c = xcalloc(n, sizeof(*c));
	char id[DEVICE_ID_HEX + 1], *v;

	reg.devices = hmap_new();
	free(query("INSERT INTO devices (device_id, public_key) "
		   "SELECT repeat('c', 21) || lpad(to_hex(g), 3, '0'), 'k' "
		   "FROM generate_series(1, $1::int) g",
		   "1100"));
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s", "cccccccccccccccccccccccc");
		snprintf(id + DEVICE_ID_HEX - 3, 4, "%03zx", i + 1);
		conn_init(&c[i], id, "10.0.0.7");
		c[i].state = DC_FRAMED;
		c[i].heard = true;
		hmap_put(reg.devices, c[i].idhex, DEVICE_ID_HEX, &c[i], NULL);
	}
	/* 25 KB of ids: at least two statements */
	ck_assert_uint_ge(registry_heard_flush(&reg),
			  (n * (DEVICE_ID_HEX + 1) + 16383) / 16384);
	ck_assert_uint_eq(registry_heard_flush(&reg), 0); /* none heard */
	v = query("SELECT count(*)::text FROM devices "
		  "WHERE last_heard IS NOT NULL",
		  NULL);
	ck_assert_str_eq(v, "1007");
	free(v);
	hmap_free(reg.devices);
	reg.devices = NULL;
	free(c);
}
END_TEST

static Suite *
pres_suite(void)
{
	Suite *s = suite_create("registry_pres");
	TCase *tc = tcase_create("batch");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pres_offline_then_online);
	tcase_add_test(tc, test_pres_online_then_offline);
	tcase_add_test(tc, test_pres_offline_other_node);
	tcase_add_test(tc, test_pres_describes_merge);
	tcase_add_test(tc, test_pres_describe_key);
	tcase_add_test(tc, test_pres_texts_shared);
	tcase_add_test(tc, test_pres_product);
	tcase_add_test(tc, test_pres_timer);
	tcase_add_test(tc, test_pres_plan);
	tcase_add_test(tc, test_key_lookup_product);
	tcase_add_test(tc, test_plans_generic);
	tcase_add_test(tc, test_heard_split);
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
	sr = srunner_create(pres_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
