/* SPDX-License-Identifier: MIT */
/*
 * The device handshake of protocol.md §2.3, for the registry's connection
 * driver: the 256-byte device block decrypted on the crypto pool (STEP2),
 * the device's public key looked up (KEY: a cache of its DER, then
 * PostgreSQL; an unknown device is refused and its key kept as pending),
 * the key parsed and checked, the session key built and signed on the
 * pool (STEP3), then the switch
 * to the framed AES session. Completions carry connection ids, never
 * pointers. Loop thread only, except the *_work functions, which run on
 * a pool thread and touch only their job.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "crypto.h"
#include "cryptopool.h"
#include "err.h"
#include "fmt.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "session.h"
#include "store.h"
#include "tmpmem.h"
#include "xmalloc.h"

static char what_pending[] = "pending device key";

static void conn_start_step3(struct devconn *c);
static void pool_park(struct devconn *c, unsigned what);
static void pool_retry(struct registry *reg);

struct step2_job {
	struct ticket t;		 /* which connection */
	const struct crypto_key *server; /* borrowed, read-only */
	uint8_t nonce[CRYPTO_NONCE_LEN]; /* input */
	uint8_t block[CRYPTO_STEP2_LEN]; /* input */
	struct crypto_step2 out;	 /* output */
	int r;				 /* result */
};

static void
step2_work(void *arg)
{
	struct step2_job *j = arg;

	j->r = crypto_handshake_step2_open(j->server, j->nonce, j->block,
					   sizeof(j->block), &j->out);
}

/*
 * The key lookups of one loop turn go to PostgreSQL as one statement.
 * The store follows every statement in its pipeline with a sync, and
 * libpq (before 17) flushes the connection at each sync: one lookup per
 * handshake was one send() per handshake on the loop thread (strace of
 * B1: 1.2 to PostgreSQL per handshake) and a wake-up of the backend
 * each. The crypto pool hands its completions over several at a time
 * (cryptopool.c), so the step-2 completions of one callback now share a
 * statement, its send and its result.
 */
#define KEY_BATCH_MAX 64

struct key_batch {
	struct registry *reg;		  /* lives longer than any batch */
	size_t n;			  /* entries in conn_ids */
	uint64_t conn_ids[KEY_BATCH_MAX]; /* the connections asking */
};

/*
 * Column 6 names the row's device: rows come in no particular order.
 * The ids are read through a sub-select so that PostgreSQL plans the
 * prepared statement once: seeing the array, it estimated each batch
 * (mostly one id) below the generic plan's ten and planned every
 * execution anew, ~50 us of a ~60 us lookup on a quiet box. The
 * generic plan must stay as good whatever the tables hold, so the
 * product is a sub-select by its key too: a join to products was
 * planned as a scan of them. check_registry_pres counts the plans.
 */
static const char key_lookup_sql[] =
	"SELECT d.public_key, d.owner_id, coalesce(d.product_id, "
	"(SELECT p.id FROM products p WHERE p.id = d.hello_product_id)), "
	"d.product_id IS NOT NULL, d.firmware_updates_forced, "
	"d.hello_product_id, d.device_id "
	"FROM devices d WHERE d.device_id = ANY ((SELECT $1::text[])::text[])";

const char *
registry_key_lookup_statement(void)
{
	return key_lookup_sql;
}

/*
 * Step 3's job, from the key lookup on: the device's registered key and
 * the key it sent travel as DER and are parsed, compared and freed on the
 * pool's worker. Parsed on the loop, each key was ~30 OpenSSL allocations
 * that lived until step 3 ended, between the long-lived objects of the
 * sessions a storm sets up meanwhile: their holes stayed in the heap
 * (B2). The job itself comes from tmpmem for the same reason.
 */
enum step3_result {
	S3_OK = 0,
	S3_BUILD,    /* no session key or signature */
	S3_PARSE,    /* the registered key does not parse */
	S3_MISMATCH, /* the key the device sent is another one */
	S3_BITS,     /* the registered key is not RSA-1024 */
};

struct step3_job {
	struct ticket t;		     /* which connection */
	const struct crypto_key *server;     /* borrowed, read-only */
	uint8_t session[CRYPTO_SESSION_LEN]; /* output: key material */
	uint8_t block[CRYPTO_STEP3_LEN];     /* output */
	enum step3_result r;		     /* result */
	uint16_t stored_len;		     /* registered key, der[0..] */
	uint16_t supplied_len; /* the device's own, after it; 0: none sent,
				  or the same bytes */
	uint8_t der[];
};

void
registry_hs_step3_free(struct step3_job *j)
{
	if (j == NULL)
		return;
	crypto_wipe(j, sizeof(*j));
	tmpmem_free(j);
}

static void
conn_have_key(struct devconn *c, const struct key_entry *e)
{
	struct step3_job *j;
	size_t supplied = c->hs->supplied_der_len;

	/* The same bytes are the same key; another encoding is compared as
	   a key on the worker, as before. */
	if (supplied == e->der_len &&
	    memcmp(c->hs->supplied_der, e->der, e->der_len) == 0)
		supplied = 0;
	j = tmpmem_calloc(1, sizeof(*j) + e->der_len + supplied);
	j->t.reg = c->reg;
	j->t.conn_id = c->id;
	j->server = c->reg->server_key;
	j->stored_len = e->der_len;
	j->supplied_len = (uint16_t)supplied;
	memcpy(j->der, e->der, e->der_len);
	memcpy(j->der + e->der_len, c->hs->supplied_der, supplied);
	registry_hs_step3_free(c->step3);
	c->step3 = j; /* until the pool takes it */
	conn_start_step3(c);
}

static void
record_pending_key(struct devconn *c)
{
	char *pem = NULL;
	char ip[INET6_ADDRSTRLEN];
	const char *params[3];

	if (c->hs->supplied_der_len == 0 ||
	    crypto_pubkey_der_to_pem(c->hs->supplied_der,
				     c->hs->supplied_der_len, &pem) != 0)
		return;
	params[0] = c->idhex;
	params[1] = pem;
	params[2] = registry_conn_ip(c, ip);
	store_query(c->reg->store, STORE_Q_WRITE,
		    "INSERT INTO pending_device_keys (device_id, public_key, "
		    "last_ip) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO "
		    "UPDATE SET public_key = EXCLUDED.public_key, last_seen = "
		    "now(), last_ip = EXCLUDED.last_ip, attempts = "
		    "pending_device_keys.attempts + 1 "
		    "WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE "
		    "d.device_id = $1)",
		    3, params, registry_store_write_done, what_pending, NULL);
	free(pem);
}

void
registry_hs_key_entry_free(struct key_entry *e)
{
	free(e);
}

/*
 * The database cannot answer: a device whose key is still cached (online,
 * or gone for less than device_cache_linger_s) gets in with the key and
 * owner of its last lookup, so that an outage does not lock out devices
 * that reconnect. Others wait for the database.
 * @return true if the handshake went on from the cache
 */
static bool
key_from_cache(struct devconn *c)
{
	struct key_entry *e = hmap_get(c->reg->keys, c->idhex, DEVICE_ID_HEX);

	if (e == NULL)
		return false;
	log_ctx(LOG_LEVEL_INFO, c->logctx,
		"database unavailable: using the cached key");
	c->owner_id = e->owner_id;
	c->owner_sure = false;
	c->row_known = false;
	conn_have_key(c, e);
	return true;
}

/* An integer column of a row as 0..0xffff, NULL as 0; false if it is
   out of that range (the presence hook then asks the database). */
static bool
col_u16(const struct store_result *res, int row, int col, uint16_t *out)
{
	const char *v;
	char *end;
	long n;

	*out = 0;
	if (store_result_is_null(res, row, col))
		return true;
	v = store_result_value(res, row, col);
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n < 0 || n > 0xffff)
		return false;
	*out = (uint16_t)n;
	return true;
}

/*
 * The product facts of the device row, read with its key: the events
 * module's device-info read at online used to be a second statement
 * per handshake (registry_presence.info_known).
 */
static void
key_lookup_info(struct devconn *c, const struct store_result *res, int row)
{
	uint16_t product, hello;
	const char *v;

	c->info_known = false;
	/* when assigned, column 2 is the assigned product */
	v = store_result_value(res, row, 3);
	registry_row_product_set(c, store_result_nfields(res) >= 6,
				 v != NULL && v[0] == 't'
					 ? store_result_value(res, row, 2)
					 : NULL);
	if (store_result_nfields(res) < 6 || !col_u16(res, row, 2, &product) ||
	    !col_u16(res, row, 5, &hello))
		return;
	v = store_result_value(res, row, 3);
	c->info_assigned = v != NULL && v[0] == 't';
	v = store_result_value(res, row, 4);
	c->info_forced = v != NULL && v[0] == 't';
	c->info_product = product;
	c->info_hello = hello;
	c->info_known = true;
}

/* The key lookup failed with r (before or after it was sent). */
static void
key_lookup_failed(struct devconn *c, int r, const char *reason)
{
	if (r == CINDER_ERR_UNAVAILABLE && key_from_cache(c))
		return;
	registry_conn_close(c, r, reason);
}

/* The batch's row of c's device, or -1 if it has none. */
static int
key_lookup_row(const struct store_result *res, const struct devconn *c)
{
	int i, n = store_result_ntuples(res);
	const char *id;

	if (store_result_nfields(res) < 7)
		return -1;
	for (i = 0; i < n; i++) {
		id = store_result_value(res, i, 6);
		if (id != NULL && strcmp(id, c->idhex) == 0)
			return i;
	}
	return -1;
}

/* c's device row (row of res, -1: none) is in. */
static void
key_lookup_conn(struct devconn *c, const struct store_result *res, int row)
{
	struct registry *reg = c->reg;
	struct key_entry *e, *old = NULL;
	const char *pem, *owner;
	uint8_t sha[CRYPTO_SHA256_LEN];

	if (row < 0 || store_result_is_null(res, row, 0)) {
		reg->stats.unknown_devices++;
		record_pending_key(c);
		registry_conn_close(
			c, CINDER_ERR_AUTH,
			"refused: unknown device (its key is kept for "
			"`cinderd device accept`)");
		return;
	}
	pem = store_result_value(res, row, 0);
	owner = store_result_is_null(res, row, 1)
			? NULL
			: store_result_value(res, row, 1);
	c->owner_id = owner ? strtoll(owner, NULL, 10) : 0;
	c->owner_sure = true;
	key_lookup_info(c, res, row);
	/* PEM parsing is not free: keep the DER while the stored PEM is
	   unchanged. */
	if (crypto_sha256(pem, strlen(pem), sha) != 0) {
		registry_conn_close(c, CINDER_ERR_CRYPTO,
				    "could not hash the key");
		return;
	}
	e = hmap_get(reg->keys, c->idhex, DEVICE_ID_HEX);
	if (e != NULL && memcmp(e->pem_sha, sha, sizeof(sha)) == 0)
		reg->stats.key_cache_hits++;
	if (e == NULL || memcmp(e->pem_sha, sha, sizeof(sha)) != 0) {
		uint8_t der[CRYPTO_PUB_DER_MAX];
		size_t dlen = 0;

		/* conn_have_key parses the DER: here only PEM to DER. */
		if (crypto_pubkey_pem_to_der(pem, strlen(pem), der, sizeof(der),
					     &dlen) != 0) {
			registry_conn_close(
				c, CINDER_ERR_CRYPTO,
				"refused: registered key does not parse");
			return;
		}
		e = xmalloc(sizeof(*e) + dlen);
		memcpy(e->pem_sha, sha, sizeof(sha));
		e->owner_id = c->owner_id;
		e->left_ms = 0;
		e->der_len = (uint16_t)dlen;
		memcpy(e->der, der, dlen);
		if (hmap_count(reg->keys) >= KEY_CACHE_MAX) {
			conn_have_key(c, e);
			registry_hs_key_entry_free(e);
			return;
		}
		hmap_put(reg->keys, c->idhex, DEVICE_ID_HEX, e, (void **)&old);
		registry_hs_key_entry_free(old);
	}
	e->owner_id = c->owner_id;
	conn_have_key(c, e);
}

static void
key_lookup_done(int r, const struct store_result *res, void *arg)
{
	struct key_batch *b = arg;
	struct devconn *c;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if ((c = registry_conn_get(b->reg, b->conn_ids[i])) == NULL)
			continue;
		if (r != 0)
			key_lookup_failed(c, r,
					  "could not look up the device key");
		else
			key_lookup_conn(c, res, key_lookup_row(res, c));
	}
	tmpmem_free(b);
}

/* Send the key lookups gathered so far as one statement. */
static void
key_batch_send(struct registry *reg)
{
	struct key_batch *b = reg->key_batch;
	char ids[2 + KEY_BATCH_MAX * (DEVICE_ID_HEX + 1)], *p = ids;
	const char *params[1];
	struct devconn *c;
	size_t i;

	if (b == NULL)
		return;
	reg->key_batch = NULL;
	*p++ = '{';
	for (i = 0; i < b->n; i++) {
		if ((c = registry_conn_get(reg, b->conn_ids[i])) == NULL)
			continue;
		if (p > ids + 1)
			*p++ = ',';
		memcpy(p, c->idhex, DEVICE_ID_HEX); /* hex: no quoting */
		p += DEVICE_ID_HEX;
		c->owner_seq = reg->owner_seq;
	}
	if (p == ids + 1) {
		tmpmem_free(b); /* every one of them closed meanwhile */
		return;
	}
	*p++ = '}';
	*p = '\0';
	params[0] = ids;
	if (store_query(
		    reg->store, STORE_Q_READ | STORE_Q_PREPARE | STORE_Q_URGENT,
		    key_lookup_sql, 1, params, key_lookup_done, b, NULL) == 0)
		return;
	for (i = 0; i < b->n; i++) {
		if ((c = registry_conn_get(reg, b->conn_ids[i])) != NULL)
			key_lookup_failed(
				c, CINDER_ERR_UNAVAILABLE,
				"database unavailable for the key lookup");
	}
	tmpmem_free(b);
}

static void
key_batch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	key_batch_send(arg);
}

/* Look c's key up with the others of this loop turn. */
static void
key_batch_add(struct devconn *c)
{
	struct registry *reg = c->reg;
	struct key_batch *b = reg->key_batch;

	if (b != NULL && b->n == KEY_BATCH_MAX) {
		key_batch_send(reg);
		b = NULL;
	}
	if (b == NULL) {
		b = reg->key_batch = tmpmem_calloc(1, sizeof(*b));
		b->reg = reg;
	}
	b->conn_ids[b->n++] = c->id;
	if (reg->key_ev == NULL)
		reg->key_ev = event_new(reg->base, -1, 0, key_batch_cb, reg);
	if (reg->key_ev != NULL)
		event_active(reg->key_ev, EV_TIMEOUT, 1);
	else
		key_batch_send(reg);
}

void
registry_hs_cleanup(struct registry *reg)
{
	if (reg->key_ev != NULL)
		event_free(reg->key_ev);
	reg->key_ev = NULL;
	tmpmem_free(reg->key_batch);
	reg->key_batch = NULL;
}

static void
step2_done(void *arg, bool cancelled)
{
	struct step2_job *j = arg;
	struct registry *reg = j->t.reg;
	struct devconn *c =
		cancelled ? NULL : registry_conn_get(reg, j->t.conn_id);

	if (c == NULL)
		goto out;
	if (j->r != 0) {
		registry_conn_close(
			c, CINDER_ERR_CRYPTO,
			"handshake: device block did not decrypt or did "
			"not echo the nonce");
		goto out;
	}
	fmt_hex(j->out.device_id, sizeof(j->out.device_id), c->idhex);
	snprintf(c->logctx, sizeof(c->logctx), "dev %s", c->idhex);
	memcpy(c->hs->supplied_der, j->out.key_der, j->out.key_der_len);
	c->hs->supplied_der_len = j->out.key_der_len;
	c->state = DC_KEY;
	key_batch_add(c);
out:
	crypto_wipe(j, sizeof(*j));
	tmpmem_free(j);
	if (!cancelled)
		pool_retry(reg); /* the job's place in the queue is free */
}

static void
step3_work(void *arg)
{
	struct step3_job *j = arg;
	struct crypto_key *stored = NULL, *supplied = NULL;

	j->r = S3_PARSE;
	if (crypto_pubkey_parse(j->der, j->stored_len, &stored) != 0)
		goto out;
	/* a key the device sent that does not parse is not held against it */
	if (j->supplied_len > 0 &&
	    crypto_pubkey_parse(j->der + j->stored_len, j->supplied_len,
				&supplied) == 0 &&
	    !crypto_key_public_eq(supplied, stored)) {
		j->r = S3_MISMATCH;
		goto out;
	}
	if (crypto_key_bits(stored) != 1024) {
		j->r = S3_BITS;
		goto out;
	}
	j->r = S3_BUILD;
	if (crypto_random(j->session, sizeof(j->session)) == 0 &&
	    crypto_handshake_step3_build(j->server, stored, j->session,
					 j->block) == 0)
		j->r = S3_OK;
out:
	crypto_key_free(supplied);
	crypto_key_free(stored);
}

static void
step3_done(void *arg, bool cancelled)
{
	struct step3_job *j = arg;
	struct registry *reg = j->t.reg;
	struct devconn *c =
		cancelled ? NULL : registry_conn_get(reg, j->t.conn_id);
	uint16_t mid;

	if (c == NULL)
		goto out;
	switch (j->r) {
	case S3_OK:
		break;
	case S3_PARSE:
		registry_conn_close(c, CINDER_ERR_CRYPTO,
				    "refused: registered key does not parse");
		goto out;
	case S3_MISMATCH:
		reg->stats.key_mismatches++;
		registry_conn_close(
			c, CINDER_ERR_AUTH,
			"refused: the key the device sent differs from its "
			"registered key");
		goto out;
	case S3_BITS:
		registry_conn_close(c, CINDER_ERR_CRYPTO,
				    "refused: registered key is not RSA-1024");
		goto out;
	default:
		registry_conn_close(
			c, CINDER_ERR_CRYPTO,
			"handshake: could not build the session key");
		goto out;
	}
	if (registry_io_write(c, j->block, sizeof(j->block)) != 0) {
		registry_conn_close(c, CINDER_ERR_IO, "write failed");
		goto out;
	}
	reg->stats.bytes_out += sizeof(j->block);
	crypto_channel_init(&c->ch, j->session);
	crypto_channel_busy_cache(&c->ch); /* cleaned up in conn_free */
	registry_conn_hs_free(c);
	mid = 0; /* a failed draw leaves 0: any id is valid */
	(void)crypto_random_public(&mid, sizeof(mid));
	c->state = DC_FRAMED;
	c->last_rx_ms = registry_now_ms();
	c->session = session_new(&registry_sess_ops, c, mid, c->last_rx_ms);
	session_set_log_ctx(c->session, c->logctx);
	registry_handshake_end(c, true);
	/* The device has 4 s to send its Hello after this; keep the
	   handshake deadline running until the session ticks. */
	registry_io_resume(c);
	/* Arm the keep-alive and the session's own deadlines. */
	if (c->state == DC_FRAMED)
		registry_conn_timer_cb(-1, 0, c);
out:
	registry_hs_step3_free(j);
	if (!cancelled)
		pool_retry(reg);
}

static void
conn_start_step3(struct devconn *c)
{
	struct registry *reg = c->reg;
	struct step3_job *j = c->step3;
	int r;

	if (j == NULL) {
		registry_conn_close(c, CINDER_ERR_CRYPTO, "no device key");
		return;
	}
	c->state = DC_STEP3;
	if ((r = cryptopool_submit(reg->pool, step3_work, step3_done, j)) ==
	    CINDER_ERR_BUSY) {
		/* Queue full (a reconnect storm): wait for a place. */
		c->state = DC_KEY;
		pool_park(c, POOL_WAIT_STEP3);
	} else if (r != 0) {
		registry_conn_close(c, r, "crypto pool refused the job");
	} else {
		c->step3 = NULL; /* the pool's now */
	}
}

/*
 * A connection whose job the crypto pool's full queue refused waits, in
 * order, for a place instead of being closed: in a reconnect storm a
 * refused device would come back only after its own back-off. It stops
 * reading meanwhile (the step-2 block stays in its input); the handshake
 * deadline still runs.
 */
static void
pool_park(struct devconn *c, unsigned what)
{
	struct registry *reg = c->reg;

	/* Waiting with its block read: no more input until it is sent on
	   (for step 3, input is a protocol error anyway and stays seen). */
	if (what == POOL_WAIT_STEP2)
		registry_io_stop(c);
	c->pool_wait = what & 3;
	if (reg->pool_retrying)
		TAILQ_INSERT_HEAD(&reg->pool_waitq, c, reap);
	else
		TAILQ_INSERT_TAIL(&reg->pool_waitq, c, reap);
}

/* A pool job finished: start waiting handshakes while the queue takes them. */
static void
pool_retry(struct registry *reg)
{
	struct devconn *c;
	unsigned what;

	if (reg->pool_retrying)
		return;
	reg->pool_retrying = true;
	while ((c = TAILQ_FIRST(&reg->pool_waitq)) != NULL) {
		TAILQ_REMOVE(&reg->pool_waitq, c, reap);
		what = c->pool_wait;
		c->pool_wait = 0;
		if (what == POOL_WAIT_STEP3) {
			conn_start_step3(c);
		} else {
			registry_io_restart(c);
			registry_io_resume(c);
		}
		if (c->pool_wait != 0)
			break; /* parked again, at the head: still full */
	}
	reg->pool_retrying = false;
}

void
registry_conn_pool_unpark(struct devconn *c)
{
	if (c->pool_wait == 0)
		return;
	TAILQ_REMOVE(&c->reg->pool_waitq, c, reap);
	c->pool_wait = 0;
}

bool
registry_hs_step2(struct devconn *c, const uint8_t block[CRYPTO_STEP2_LEN])
{
	struct step2_job *j = tmpmem_calloc(1, sizeof(*j));
	int r;

	j->t.reg = c->reg;
	j->t.conn_id = c->id;
	j->server = c->reg->server_key;
	memcpy(j->nonce, c->hs->nonce, sizeof(j->nonce));
	memcpy(j->block, block, sizeof(j->block));
	c->state = DC_STEP2;
	r = cryptopool_submit(c->reg->pool, step2_work, step2_done, j);
	if (r == CINDER_ERR_BUSY) {
		crypto_wipe(j, sizeof(*j));
		tmpmem_free(j);
		c->state = DC_NONCE;
		pool_park(c, POOL_WAIT_STEP2);
		return false;
	}
	if (r != 0) {
		tmpmem_free(j);
		registry_conn_close(c, r, "crypto pool refused the job");
	}
	return true;
}
