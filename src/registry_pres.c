/* SPDX-License-Identifier: MIT */
/*
 * Presence writes in batches. A device's online, offline, describe and OTA
 * limits columns used to cost one statement each per connection (four to
 * five per handshake, each its own round trip and sync). They are kept
 * here instead, one record per device holding the last state to write,
 * and written every PRES_BATCH_MS as one UPDATE over
 * jsonb_to_recordset(). A record applies what the separate statements
 * did, in the order they were made: the last online/offline wins; an
 * offline only marks the device offline where no other node took it over
 * (node_id); the describe's columns and the Hello's are written as the
 * statements would have left them. The batch is a store write: during a
 * database outage it waits in the store's queue like any other write, so
 * the final state is not lost. Loop thread only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "crypto.h"
#include "describe.h"
#include "fmt.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "store.h"
#include "xmalloc.h"

/* How long presence changes gather before they are written. */
#define PRES_BATCH_MS 5
/* The parameters of one statement, its records and describe texts: a
 * flush with more (a fleet leaving in one turn of the loop, a storm's
 * describes) writes several. libpq's output buffer grows to the largest
 * statement it was given and never shrinks: one statement for 10,000
 * devices gone left ~1 MiB of it at the top of the heap (B2's RSS after
 * they left). */
#define PRES_BATCH_BYTES 16384
/* A describe's key: a format digit, 's' or 'a' (the system columns
   written or not), and the text's SHA-256 in hex. */
#define PRES_DKEY_LEN (2 + 2 * CRYPTO_SHA256_LEN)
/* Texts a batch remembers, to name again instead of sending again. */
#define PRES_TEXTS_SEEN 4

static char what_presence[] = "device presence";

/* One device's pending writes. */
struct pres_rec {
	bool online;		    /* the state to write */
	bool hs;		    /* Hello columns below to write */
	bool desc;		    /* describe columns below to write */
	bool sys;		    /* the describe's system columns too */
	bool ota;		    /* OTA limits to write */
	char ip[INET6_ADDRSTRLEN];  /* Hello: peer address */
	struct session_hello hello; /* Hello fields */
	uint32_t max_binary;	    /* 0: unchanged */
	uint16_t chunk_size;	    /* 0: unchanged */
	int32_t hello_platform;	    /* -1: none */
	int32_t desc_platform;	    /* -1: none (or the Hello's is later) */
	char *last_describe;	    /* describe: merged text */
	char *functions;	    /* or NULL: unchanged */
	char *variables;	    /* or NULL: unchanged */
	char *modules;		    /* sys: system modules, JSON */
	const char *release;	    /* sys: static string or NULL */
	uint32_t modver;	    /* sys: 0 = NULL */
	bool keyed; /* one describe: dkey names what it writes */
	char dkey[PRES_DKEY_LEN + 1];
};

static void
pres_rec_free(struct pres_rec *r)
{
	if (r == NULL)
		return;
	free(r->last_describe);
	free(r->functions);
	free(r->variables);
	free(r->modules);
	free(r);
}

static void
pres_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	registry_pres_flush(arg);
}

/* The device's record, made (and the flush armed) if there is none. */
static struct pres_rec *
pres_get(struct devconn *c)
{
	struct registry *reg = c->reg;
	struct pres_rec *r;
	struct timeval tv = {0, PRES_BATCH_MS * 1000};

	if (reg->pres == NULL) {
		reg->pres = hmap_new();
		reg->pres_ev = event_new(reg->base, -1, 0, pres_cb, reg);
	}
	r = hmap_get(reg->pres, c->idhex, DEVICE_ID_HEX);
	if (r != NULL)
		return r;
	r = xcalloc(1, sizeof(*r));
	r->online = c->online;
	r->hello_platform = -1;
	r->desc_platform = -1;
	hmap_put(reg->pres, c->idhex, DEVICE_ID_HEX, r, NULL);
	if (!evtimer_pending(reg->pres_ev, NULL))
		evtimer_add(reg->pres_ev, &tv);
	return r;
}

void
registry_pres_online(struct devconn *c, const struct session_hello *h)
{
	struct pres_rec *r = pres_get(c);

	r->online = true;
	r->hs = true;
	registry_conn_ip(c, r->ip);
	r->hello = *h;
	if (r->hello.platform_id != 0xffff) {
		r->hello_platform = r->hello.platform_id;
		r->desc_platform = -1; /* the later statement wins */
	}
	/* what the row's product_id read falls back to, as written */
	c->hw_hello = h->product_id != 0xffff;
	c->hw_known = c->hw_hello || h->platform_id != 0xffff;
	c->hw_product = c->hw_hello ? h->product_id : h->platform_id;
	if (c->max_binary != 0 || c->chunk_size != 0)
		registry_pres_ota(c);
}

void
registry_pres_offline(struct devconn *c)
{
	pres_get(c)->online = false;
}

void
registry_pres_ota(struct devconn *c)
{
	struct pres_rec *r = pres_get(c);

	r->ota = true;
	if (c->max_binary != 0)
		r->max_binary = c->max_binary;
	if (c->chunk_size != 0)
		r->chunk_size = c->chunk_size;
}

static void
str_set(char **dst, const char *src)
{
	free(*dst);
	*dst = src != NULL ? xstrdup(src) : NULL;
}

/*
 * The key of what a record with one describe writes. The describe
 * columns it writes are made from the text alone (the functions,
 * variables and modules are parsed from it), except that the system
 * columns are written only with sys: the key says which. A change to
 * how the columns are made from a text bumps the format digit, so that
 * rows written by the older code are written again.
 */
static void
pres_key(char out[PRES_DKEY_LEN + 1], const uint8_t *sha, bool sys)
{
	out[0] = '1';
	out[1] = sys ? 's' : 'a';
	fmt_hex(sha, CRYPTO_SHA256_LEN, out + 2);
}

void
registry_pres_describe(struct devconn *c, const char *text, const uint8_t *sha,
		       const char *functions, const char *variables,
		       const char *modules, const char *release,
		       int32_t platform, bool sys, uint32_t modver)
{
	struct pres_rec *r = pres_get(c);

	/* A second describe in the same record leaves columns of both (the
	   functions of one, the text of the other): no key names that, and
	   the row is written whatever it holds. */
	r->keyed = !r->desc && sha != NULL;
	if (r->keyed)
		pres_key(r->dkey, sha, sys);
	r->desc = true;
	str_set(&r->last_describe, text);
	/* coalesce(): a later NULL keeps an earlier text */
	if (functions != NULL)
		str_set(&r->functions, functions);
	if (variables != NULL)
		str_set(&r->variables, variables);
	if (sys) {
		r->sys = true;
		str_set(&r->modules, modules);
		r->release = release;
		r->modver = modver;
	}
	if (platform >= 0) {
		r->desc_platform = platform;
		if (!c->hw_hello) {
			c->hw_known = platform <= 0xffff;
			c->hw_product = (uint16_t)platform;
		}
	}
}

bool
registry_pres_product(const struct devconn *c, int64_t *product)
{
	if (!c->row_known)
		return false;
	if (c->row_assigned)
		*product = c->row_product;
	else if (c->hw_known)
		*product = c->hw_product;
	else
		return false;
	return true;
}

/* The batch's JSON text, built by hand (jansson's dump escaped ~0.6 KB
   per handshake, 2% of B1's CPU). */
struct jbuf {
	char *p;    /* text, NUL-terminated */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

/* Room for n more bytes and the NUL. */
static void
jb_reserve(struct jbuf *b, size_t n)
{
	if (b->cap - b->len <= n) {
		while (b->cap - b->len <= n)
			b->cap = b->cap ? b->cap * 2 : 4096;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
}

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	jb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
jb_key(struct jbuf *b, const char *k)
{
	jb_put(b, ",\"", 2);
	jb_put(b, k, strlen(k));
	jb_put(b, "\":", 2);
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void
jb_str(struct jbuf *b, const char *k, const char *v)
{
	jb_key(b, k);
	if (v == NULL) {
		jb_put(b, "null", 4);
		return;
	}
	jb_reserve(b, FMT_JSON_STR_MAX(strlen(v)));
	b->len += fmt_json_str(b->p + b->len, v);
	b->p[b->len] = '\0';
}

/* A JSON value of ours (a number, true or false), or null. */
static void
jb_raw(struct jbuf *b, const char *k, const char *json)
{
	jb_key(b, k);
	if (json == NULL)
		jb_put(b, "null", 4);
	else
		jb_put(b, json, strlen(json));
}

/* snprintf's "%lld" was ~700 instructions a number, 14 numbers a
   handshake's record (callgrind of B1's loop thread) */
static void
jb_int(struct jbuf *b, const char *k, long long v, bool null)
{
	char num[FMT_INT_MAX];

	jb_key(b, k);
	if (null)
		jb_put(b, "null", 4);
	else
		jb_put(b, num, fmt_i64(num, v));
}

static void
jb_bool(struct jbuf *b, const char *k, bool v)
{
	jb_raw(b, k, v ? "true" : "false");
}

struct pres_build {
	struct registry *reg;
	struct jbuf b; /* $1: the records, a JSON array */
	struct jbuf t; /* $2: the describe texts they name, back to back */
	struct {
		size_t at, len;
	} seen[PRES_TEXTS_SEEN]; /* texts in t, to name again */
	unsigned nsent;		 /* texts put in t; seen holds the last */
};

static void pres_emit(struct pres_build *pb);

/*
 * A describe part: its bytes go into the texts ($2), where the record
 * names them by "<k>_at" (1-based, as substring() counts) and "<k>_len";
 * both are null for NULL. The texts are a bytea, which PostgreSQL takes
 * as it is: inside the records' JSON, each was parsed into jsonb whether
 * or not the row needed it, more than half of the statement's time. A
 * fleet's devices send the same texts, so one of the last few a batch
 * sent is named again instead of sent again.
 */
static void
pres_text(struct pres_build *pb, const char *k_at, const char *k_len,
	  const char *text)
{
	size_t len = 0, at = 0;
	unsigned i;

	if (text != NULL) {
		len = strlen(text);
		for (i = 0; i < pb->nsent && i < PRES_TEXTS_SEEN && at == 0;
		     i++)
			if (pb->seen[i].len == len &&
			    memcmp(pb->t.p + pb->seen[i].at, text, len) == 0)
				at = pb->seen[i].at + 1;
		if (at == 0) {
			i = pb->nsent++ % PRES_TEXTS_SEEN;
			pb->seen[i].at = pb->t.len;
			pb->seen[i].len = len;
			at = pb->t.len + 1;
			jb_put(&pb->t, text, len);
		}
	}
	jb_int(&pb->b, k_at, (long long)at, text == NULL);
	jb_int(&pb->b, k_len, (long long)len, text == NULL);
}

static int
pres_row(const void *key, size_t len, void *value, void *arg)
{
	struct pres_build *pb = arg;
	struct jbuf *b = &pb->b;
	struct pres_rec *r = value;
	const struct session_hello *h = &r->hello;

	(void)len;
	if (b->len + pb->t.len >= PRES_BATCH_BYTES)
		pres_emit(pb);
	if (b->len > 1)
		jb_put(b, ",", 1);
	jb_put(b, "{\"id\":\"", 7);
	jb_put(b, key, DEVICE_ID_HEX); /* hex digits */
	jb_put(b, "\"", 1);
	jb_bool(b, "online", r->online);
	jb_bool(b, "hs", r->hs);
	jb_bool(b, "dsc", r->desc);
	jb_bool(b, "sys", r->sys);
	jb_bool(b, "ota", r->ota);
	jb_str(b, "node", pb->reg->node_id);
	if (r->hs) {
		jb_str(b, "ip", r->ip);
		jb_int(b, "product", h->product_id, h->product_id == 0xffff);
		jb_int(b, "version", h->product_version,
		       h->product_version == 0xffff);
		jb_int(b, "flags", h->flags, false);
		jb_int(b, "sysver", h->system_version, h->system_version == 0);
	}
	jb_int(b, "platform",
	       r->desc_platform >= 0 ? r->desc_platform : r->hello_platform,
	       r->desc_platform < 0 && r->hello_platform < 0);
	jb_int(b, "max_binary", r->max_binary, r->max_binary == 0);
	jb_int(b, "chunk", r->chunk_size, r->chunk_size == 0);
	if (r->desc) {
		jb_str(b, "dkey", r->keyed ? r->dkey : NULL);
		pres_text(pb, "ld_at", "ld_len", r->last_describe);
		pres_text(pb, "fn_at", "fn_len", r->functions);
		pres_text(pb, "var_at", "var_len", r->variables);
	}
	if (r->sys) {
		pres_text(pb, "mod_at", "mod_len", r->modules);
		jb_str(b, "release", r->release);
		jb_int(b, "modver", r->modver, r->modver == 0);
	}
	jb_put(b, "}", 1);
	pres_rec_free(r);
	return 0;
}

/*
 * One statement for the batch. Each CASE keeps a column as it is unless
 * the record has what the old per-event statement would have written.
 * The rows are found by the primary key through "= ANY (ids)":
 * PostgreSQL estimates jsonb_to_recordset() at 100 rows whatever the
 * batch holds, and with the join alone it read the whole table in fleets
 * of a few thousand to a few tens of thousands of devices (the plan is
 * checked by check_registry_pres). A describe's texts are read from $2
 * and parsed only where the row does not hold the record's key already
 * (NULL keys never match): a fleet reconnecting says again what its rows
 * hold. DESC_NEW is that test. A text some row needs is parsed once for
 * the batch, in t: the records of a fleet name the same slices, and
 * PostgreSQL evaluates t only when a row first reads it (parsed for each
 * row, the texts made a batch of first connects 5-12% slower than when
 * they went inside the records).
 */
#define DESC_NEW "v.dsc AND (v.dkey = d.describe_key) IS NOT TRUE"
static const char pres_sql[] =
	"WITH t AS MATERIALIZED (SELECT s.at, s.len, "
	"convert_from(substring($2::bytea FROM s.at FOR s.len), "
	"'UTF8')::jsonb AS j FROM (SELECT DISTINCT x.at, x.len "
	"FROM jsonb_to_recordset($1::jsonb) AS r(ld_at int, ld_len int, "
	"fn_at int, fn_len int, var_at int, var_len int, mod_at int, "
	"mod_len int) CROSS JOIN LATERAL (VALUES (r.ld_at, r.ld_len), "
	"(r.fn_at, r.fn_len), (r.var_at, r.var_len), (r.mod_at, r.mod_len)) "
	"AS x(at, len) WHERE x.at IS NOT NULL) s) "
	"UPDATE devices d SET "
	"online = CASE WHEN v.hs OR d.node_id = v.node THEN v.online "
	"ELSE d.online END, "
	"last_heard = CASE WHEN v.hs OR d.node_id = v.node THEN now() "
	"ELSE d.last_heard END, "
	"last_handshake_at = CASE WHEN v.hs THEN now() "
	"ELSE d.last_handshake_at END, "
	"last_ip_address = CASE WHEN v.hs THEN v.ip "
	"ELSE d.last_ip_address END, "
	"hello_product_id = CASE WHEN v.hs THEN v.product "
	"ELSE d.hello_product_id END, "
	"product_firmware_version = CASE WHEN v.hs THEN v.version "
	"ELSE d.product_firmware_version END, "
	"hello_flags = CASE WHEN v.hs THEN v.flags ELSE d.hello_flags END, "
	"node_id = CASE WHEN v.hs THEN v.node ELSE d.node_id END, "
	"hello_system_version = CASE WHEN v.hs THEN v.sysver "
	"ELSE d.hello_system_version END, "
	"platform_id = coalesce(v.platform, d.platform_id), "
	"max_binary_size = coalesce(v.max_binary, d.max_binary_size), "
	"ota_chunk_size = coalesce(v.chunk, d.ota_chunk_size), "
	"describe_key = CASE WHEN v.dsc THEN v.dkey "
	"ELSE d.describe_key END, "
	"last_describe = CASE WHEN " DESC_NEW " THEN "
	"(SELECT t.j FROM t WHERE t.at = v.ld_at AND t.len = v.ld_len) "
	"ELSE d.last_describe END, "
	"functions = CASE WHEN " DESC_NEW " THEN coalesce((SELECT t.j "
	"FROM t WHERE t.at = v.fn_at AND t.len = v.fn_len), d.functions) "
	"ELSE d.functions END, "
	"variables = CASE WHEN " DESC_NEW " THEN coalesce((SELECT t.j "
	"FROM t WHERE t.at = v.var_at AND t.len = v.var_len), d.variables) "
	"ELSE d.variables END, "
	"system_modules = CASE WHEN v.sys AND " DESC_NEW " THEN "
	"(SELECT t.j FROM t WHERE t.at = v.mod_at AND t.len = v.mod_len) "
	"ELSE d.system_modules END, "
	"system_version = CASE WHEN v.sys THEN v.release "
	"ELSE d.system_version END, "
	"system_module_version = CASE WHEN v.sys THEN v.modver "
	"ELSE d.system_module_version END "
	"FROM jsonb_to_recordset($1::jsonb) AS v(id text, online bool, "
	"hs bool, dsc bool, sys bool, ota bool, node text, ip text, "
	"product int, version int, flags int, sysver int, platform int, "
	"max_binary bigint, chunk int, dkey text, ld_at int, ld_len int, "
	"fn_at int, fn_len int, var_at int, var_len int, mod_at int, "
	"mod_len int, release text, modver int) "
	"WHERE d.device_id = v.id "
	"AND d.device_id = ANY (ARRAY(SELECT x->>'id' "
	"FROM jsonb_array_elements($1::jsonb) x)) "
	"AND (v.hs OR v.dsc OR v.ota OR d.node_id = v.node)";
#undef DESC_NEW

const char *
registry_pres_statement(void)
{
	return pres_sql;
}

/* Write the records in pb's text as one statement; the text restarts. */
static void
pres_emit(struct pres_build *pb)
{
	struct store_param params[2] = {{NULL, 0, false}, {"", 0, true}};

	jb_put(&pb->b, "]", 1);
	params[0].value = pb->b.p;
	if (pb->t.len > 0) {
		params[1].value = pb->t.p;
		params[1].len = pb->t.len;
	}
	store_query_params(pb->reg->store, STORE_Q_WRITE | STORE_Q_PREPARE,
			   pres_sql, 2, params, registry_store_write_done,
			   what_presence, NULL);
	pb->b.len = 0;
	jb_put(&pb->b, "[", 1);
	pb->t.len = 0;
	pb->nsent = 0;
}

void
registry_pres_flush(struct registry *reg)
{
	struct pres_build pb = {0};

	if (reg->pres == NULL || hmap_count(reg->pres) == 0)
		return;
	pb.reg = reg;
	evtimer_del(reg->pres_ev);
	jb_put(&pb.b, "[", 1);
	hmap_foreach(reg->pres, pres_row, &pb);
	pres_emit(&pb);
	hmap_free(reg->pres); /* the records went with pres_row */
	reg->pres = hmap_new();
	free(pb.b.p);
	free(pb.t.p);
}

void
registry_pres_cleanup(struct registry *reg)
{
	registry_pres_flush(reg);
	hmap_free(reg->pres);
	reg->pres = NULL;
	if (reg->pres_ev != NULL)
		event_free(reg->pres_ev);
	reg->pres_ev = NULL;
}
