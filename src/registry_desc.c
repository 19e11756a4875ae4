/* SPDX-License-Identifier: MIT */
/*
 * Describe texts shared by the connections that sent them (struct
 * desc_blob and struct desc_memo are in registry_int.h), the merges
 * remembered so that a fleet's identical describes are parsed and
 * merged once, and a describe's arrival (the session's own, a device
 * POST d, an API refresh): merged with the previous one, kept and
 * stored. Loop thread only.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "describe.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "registry_int.h"
#include "xmalloc.h"

static void
desc_blob_free(struct desc_blob *b)
{
	describe_free(b->d);
	free(b->functions);
	free(b->variables);
	free(b->modules);
	free(b);
}

/*
 * The shared copy of merged (which is taken), parsed. NULL if the text
 * does not parse (err says why).
 */
static struct desc_blob *
desc_intern(struct registry *reg, char *merged, char *err, size_t errlen)
{
	size_t len = strlen(merged);
	uint8_t sha[CRYPTO_SHA256_LEN];
	struct desc_blob *b = NULL;
	bool share = crypto_sha256(merged, len, sha) == 0;

	if (share) {
		b = hmap_get(reg->descs, sha, sizeof(sha));
		if (b != NULL && strcmp(b->text, merged) == 0) {
			b->refs++;
			free(merged);
			return b;
		}
		share = b == NULL; /* a SHA-256 collision stays private */
	}
	b = xcalloc(1, sizeof(*b) + len + 1);
	memcpy(b->text, merged, len + 1);
	free(merged);
	if (describe_parse(b->text, len, &b->d, err, errlen) != 0) {
		free(b);
		return NULL;
	}
	memcpy(b->sha, sha, sizeof(sha));
	b->refs = 1;
	b->shared = share;
	if (b->d->has_app) {
		b->functions = json_dumps(b->d->functions, JSON_COMPACT);
		b->variables = json_dumps(b->d->variables, JSON_COMPACT);
	}
	if (b->d->has_system && b->d->modules_json != NULL)
		b->modules = json_dumps(b->d->modules_json, JSON_COMPACT);
	if (share)
		hmap_put(reg->descs, b->sha, sizeof(b->sha), b, NULL);
	return b;
}

/* Drop a reference. NULL-safe. */
void
registry_desc_release(struct registry *reg, struct desc_blob *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	if (b->shared)
		hmap_remove(reg->descs, b->sha, sizeof(b->sha));
	desc_blob_free(b);
}

static struct desc_memo *
desc_memo_slot(struct registry *reg, const uint8_t sha[CRYPTO_SHA256_LEN],
	       const struct desc_blob *from)
{
	size_t i = (sha[0] ^ (size_t)((uintptr_t)from >> 4)) % DESC_MEMO_SLOTS;

	return &reg->desc_memo[i];
}

static void
desc_memo_clear(struct registry *reg, struct desc_memo *m)
{
	registry_desc_release(reg, m->from);
	registry_desc_release(reg, m->to);
	memset(m, 0, sizeof(*m));
}

/* Release every remembered merge (registry_free). */
void
registry_desc_memo_clear_all(struct registry *reg)
{
	size_t i;

	for (i = 0; i < DESC_MEMO_SLOTS; i++)
		desc_memo_clear(reg, &reg->desc_memo[i]);
}

/*
 * A describe arrived (the session's own, a device POST d, or an API
 * refresh): merge it with the previous one (a partial describe keeps
 * the other half), keep it and store it. The same text again (the
 * re-describe after the start-up burst, mostly) is not written again.
 */
void
registry_desc_apply(struct devconn *c, const char *json, size_t len)
{
	const struct describe *d;
	struct desc_blob *b,
		*old = c->describe ? registry_desc_of(c->describe) : NULL;
	struct desc_memo *m = NULL;
	char err[DESCRIBE_ERRLEN];
	char *merged = NULL;
	uint8_t sha[CRYPTO_SHA256_LEN];
	uint32_t modver;
	int r;

	if (len > DESCRIBE_MAX) {
		log_ctx(LOG_LEVEL_WARN, c->logctx,
			"describe of %zu bytes not stored (limit %d)", len,
			DESCRIBE_MAX);
		return;
	}
	b = NULL;
	if (crypto_sha256(json, len, sha) == 0) {
		m = desc_memo_slot(c->reg, sha, old);
		if (m->to != NULL && m->from == old && m->len == len &&
		    memcmp(m->sha, sha, sizeof(sha)) == 0) {
			b = m->to;
			b->refs++;
			goto have;
		}
	}
	r = describe_merge(c->describe, c->describe ? strlen(c->describe) : 0,
			   json, len, &merged);
	if (r == 0)
		b = desc_intern(c->reg, merged, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", err_str(r));
	if (b != NULL && m != NULL) {
		desc_memo_clear(c->reg, m);
		memcpy(m->sha, sha, sizeof(sha));
		m->len = len;
		m->from = old;
		m->to = b;
		if (old != NULL)
			old->refs++;
		b->refs++;
	}
have:
	if (b == NULL) {
		log_ctx(LOG_LEVEL_WARN, c->logctx,
			"describe not understood: %s", err);
		return;
	}
	d = b->d;
	c->describe = b->text;
	c->safe_mode = describe_is_safe_mode(d);
	if (b == old) {
		/* the reference c already held */
		registry_desc_release(c->reg, b);
		log_ctx(LOG_LEVEL_DEBUG, c->logctx, "describe unchanged");
		goto report;
	}
	registry_desc_release(c->reg, old);
	c->desc_gen++;
	/* The running system's version: from its modules, else from a
	   Device OS 3.0+ Hello; unknown stays NULL, never a guess. */
	modver = describe_system_module_version(d);
	if (modver == 0 && registry_conn_hello(c)->extended)
		modver = registry_conn_hello(c)->system_version;
	registry_pres_describe(c, c->describe, b->sha, b->functions,
			       b->variables, b->modules,
			       describe_release_str(modver), d->platform_id,
			       d->has_system || modver != 0, modver);
	if (c->safe_mode)
		log_ctx(LOG_LEVEL_NOTICE, c->logctx,
			"in safe mode: the application needs system modules "
			"the device does not have");
	log_ctx(LOG_LEVEL_DEBUG, c->logctx,
		"describe: %zu functions, %zu variables, %zu modules",
		json_array_size(d->functions), json_object_size(d->variables),
		d->n_modules);
report:
	if (c->reg->describe_cb != NULL)
		c->reg->describe_cb(c->idhex, c->owner_id, d, c->describe,
				    c->reg->describe_arg);
}
