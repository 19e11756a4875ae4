/* SPDX-License-Identifier: MIT */
/*
 * Webhook API operations for src/api/h_webhooks.c: create, replace and
 * delete definitions (written through the store, then mirrored in
 * memory; the suspended request is answered by id), list and read them
 * from memory with their counters.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/http.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "webhook/webhook.h"
#include "webhook/webhook_int.h"
#include "xmalloc.h"

struct api_op {
	struct webhook *w;
	uint64_t req_id;
	enum webhook_style style;
	int64_t owner;
	json_t *canon;
	char id[25];
	bool replace; /* PUT: update id instead of inserting */
};

static struct api_op *
api_op_new(struct webhook *w, uint64_t req_id, enum webhook_style style,
	   int64_t owner, json_t *canon, const char *id)
{
	struct api_op *op = xcalloc(1, sizeof(*op));

	op->w = w;
	op->req_id = req_id;
	op->style = style;
	op->owner = owner;
	op->canon = canon;
	snprintf(op->id, sizeof(op->id), "%s", id ? id : "");
	return op;
}

static void
api_op_free(void *arg)
{
	struct api_op *op = arg;

	json_decref(op->canon);
	free(op);
}

static json_t *
hook_json(const struct hook *h, enum webhook_style style, bool full)
{
	json_t *o =
		json_pack("{s:s, s:O, s:O, s:O, s:s, s:b}", "id", h->id,
			  "event", json_object_get(h->def, "event"), "url",
			  json_object_get(h->def, "url"), "requestType",
			  json_object_get(h->def, "requestType"), "created_at",
			  h->created_at, "disabled", h->disabled);
	const char *k;
	json_t *v;

	if (h->device_id[0] != '\0')
		json_object_set_new(o, "deviceID", json_string(h->device_id));
	if ((v = json_object_get(h->def, "name")) != NULL)
		json_object_set(o, "name", v);
	if (style == WEBHOOK_STYLE_INTEGRATION)
		json_object_set_new(o, "integration_type",
				    json_string("Webhook"));
	if (full) {
		json_object_foreach(h->def, k,
				    v) if (json_object_get(o, k) == NULL &&
					   strcmp(k, "deviceID") != 0)
			json_object_set(o, k, v);
	}
	json_object_set_new(
		o, "counters",
		json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
			"sent", (json_int_t)h->c.sent, "ok",
			(json_int_t)h->c.ok, "failed", (json_int_t)h->c.failed,
			"skipped", (json_int_t)h->c.skipped, "overflow",
			(json_int_t)h->c.overflow, "retried",
			(json_int_t)h->c.retried, "given_up",
			(json_int_t)h->c.given_up, "queued",
			(json_int_t)h->queued, "in_flight",
			(json_int_t)h->inflight, "last_error", h->last_error));
	return o;
}

static int
api_fail(struct webhook *w, uint64_t req_id, int r)
{
	return http_request_resume_error(
		w->d.http, req_id,
		r == CINDER_ERR_TIMEOUT || r == CINDER_ERR_UNAVAILABLE
			? CINDER_ERR_UNAVAILABLE
			: CINDER_ERR_INTERNAL,
		NULL);
}

static void
create_done(int r, const struct store_result *res, void *arg)
{
	struct api_op *op = arg;
	struct webhook *w = op->w;
	struct hook *h;
	json_t *body;

	if (r != 0 || store_result_ntuples(res) != 1) {
		log_warn("webhooks: could not store a definition: %s",
			 err_str(r));
		api_fail(w, op->req_id, r);
		api_op_free(op);
		return;
	}
	h = webhook_hook_add(w, store_result_value(res, 0, 0), op->owner,
			     op->canon, store_result_value(res, 0, 1));
	op->canon = NULL;
	log_ctx(LOG_LEVEL_INFO, h->id, "webhook created for user %lld: %s",
		(long long)h->owner, h->event);
	body = hook_json(h, op->style, false);
	json_object_set_new(body, "ok", json_true());
	if (op->style == WEBHOOK_STYLE_HOOK) {
		char *url = xasprintf("/v1/webhooks/%s", h->id);

		json_object_set_new(body, "hookUrl", json_string(url));
		free(url);
	}
	http_request_resume_with(w->d.http, op->req_id, 200, body);
	api_op_free(op);
}

static int
definition_params(const json_t *canon, const char **p, char **cfg)
{
	const char *dev = json_string_value(json_object_get(canon, "deviceID"));

	*cfg = json_dumps(canon, JSON_COMPACT);
	p[0] = json_string_value(json_object_get(canon, "event"));
	p[1] = json_string_value(json_object_get(canon, "url"));
	p[2] = json_string_value(json_object_get(canon, "requestType"));
	p[3] = dev && dev[0] ? dev : NULL;
	p[4] = json_string_value(json_object_get(canon, "name"));
	p[5] = *cfg;
	p[6] = json_is_true(json_object_get(canon, "disabled")) ? "true"
								: "false";
	return 7;
}

static int
create_store(struct api_op *op)
{
	const char *p[8];
	char own[24], *cfg;
	int r;

	definition_params(op->canon, p, &cfg);
	snprintf(own, sizeof(own), "%lld", (long long)op->owner);
	p[7] = own;
	r = webhook_wq_submit(
		op->w, STORE_Q_READ,
		"INSERT INTO webhooks (event, url, request_type, "
		"device_id, name, config, disabled, owner_id) VALUES "
		"($1, $2, $3, $4, $5, $6::jsonb, $7::boolean, "
		"$8::bigint) RETURNING id, " SQL_TIME("created_at"),
		8, p, create_done, op, api_op_free);
	free(cfg);
	return r;
}

static void replace_done(int r, const struct store_result *res, void *arg);

static int
replace_store(struct api_op *op)
{
	const char *p[8];
	char *cfg;
	int r;

	definition_params(op->canon, p, &cfg);
	p[7] = op->id;
	r = webhook_wq_submit(
		op->w, STORE_Q_READ,
		"UPDATE webhooks SET event = $1, url = $2, request_type "
		"= $3, device_id = $4, name = $5, config = $6::jsonb, "
		"disabled = $7::boolean WHERE id = $8",
		8, p, replace_done, op, api_op_free);
	free(cfg);
	return r;
}

/* deviceID given as one of the owner's device names: now the id */
static void
name_done(int r, const struct store_result *res, void *arg)
{
	struct api_op *op = arg;
	struct webhook *w = op->w;
	const char *id;

	if (r != 0) {
		api_fail(w, op->req_id, r);
	} else if (store_result_ntuples(res) != 1 ||
		   (id = store_result_value(res, 0, 0)) == NULL) {
		http_request_resume_error(w->d.http, op->req_id,
					  CINDER_ERR_INVAL,
					  "deviceID: no device of yours has "
					  "that id or name");
	} else {
		json_object_set_new(op->canon, "deviceID", json_string(id));
		if ((op->replace ? replace_store(op) : create_store(op)) == 0)
			return; /* op goes on */
		api_fail(w, op->req_id, CINDER_ERR_UNAVAILABLE);
	}
	api_op_free(op);
}

/* Store the definition, after resolving a device name if there is one. */
static int
store_definition(struct api_op *op)
{
	const char *dev =
		json_string_value(json_object_get(op->canon, "deviceID"));
	const char *p[2];
	char own[24];

	if (dev == NULL || dev[0] == '\0' ||
	    (strlen(dev) == 24 && strspn(dev, "0123456789abcdef") == 24))
		return op->replace ? replace_store(op) : create_store(op);
	snprintf(own, sizeof(own), "%lld", (long long)op->owner);
	p[0] = own;
	p[1] = dev;
	return webhook_wq_submit(op->w, STORE_Q_READ,
				 "SELECT device_id FROM devices WHERE "
				 "owner_id = $1::bigint AND name = $2",
				 2, p, name_done, op, api_op_free);
}

int
webhook_create(struct webhook *w, int64_t owner, json_t *canon, uint64_t req_id,
	       enum webhook_style style)
{
	struct api_op *op;

	if (!w->loaded) {
		json_decref(canon);
		return CINDER_ERR_UNAVAILABLE;
	}
	if (webhook_user_get(w, owner)->hooks >= WEBHOOK_MAX_PER_USER) {
		json_decref(canon);
		return CINDER_ERR_BUSY;
	}
	op = api_op_new(w, req_id, style, owner, canon, NULL);
	if (store_definition(op) != 0) {
		api_op_free(op);
		return CINDER_ERR_UNAVAILABLE;
	}
	return 0;
}

static bool
may_see(const struct hook *h, int64_t owner, bool admin)
{
	return h != NULL && (h->owner == owner || admin);
}

static void
replace_done(int r, const struct store_result *res, void *arg)
{
	struct api_op *op = arg;
	struct webhook *w = op->w;
	struct hook *h = webhook_hook_find(w, op->id);

	if (r != 0 || h == NULL || store_result_affected(res) != 1) {
		if (r == 0)
			http_request_resume_error(w->d.http, op->req_id,
						  CINDER_ERR_NOTFOUND,
						  "no webhook found");
		else
			api_fail(w, op->req_id, r);
		api_op_free(op);
		return;
	}
	json_decref(h->def);
	h->def = op->canon;
	op->canon = NULL;
	snprintf(h->event, sizeof(h->event), "%s",
		 json_string_value(json_object_get(h->def, "event")));
	snprintf(h->device_id, sizeof(h->device_id), "%s",
		 json_string_value(json_object_get(h->def, "deviceID")));
	h->disabled = json_is_true(json_object_get(h->def, "disabled"));
	http_request_resume_with(w->d.http, op->req_id, 200,
				 hook_json(h, op->style, true));
	api_op_free(op);
}

int
webhook_replace(struct webhook *w, int64_t owner, bool admin, const char *id,
		json_t *canon, uint64_t req_id, enum webhook_style style)
{
	struct hook *h = webhook_hook_find(w, id);
	struct api_op *op;

	if (!may_see(h, owner, admin)) {
		json_decref(canon);
		return CINDER_ERR_NOTFOUND;
	}
	op = api_op_new(w, req_id, style, h->owner, canon, id);
	op->replace = true;
	if (store_definition(op) != 0) {
		api_op_free(op);
		return CINDER_ERR_UNAVAILABLE;
	}
	return 0;
}

static void
delete_done(int r, const struct store_result *res, void *arg)
{
	struct api_op *op = arg;
	struct webhook *w = op->w;
	struct hook *h = webhook_hook_find(w, op->id);

	(void)res;
	if (r != 0) {
		api_fail(w, op->req_id, r);
	} else {
		if (h != NULL) {
			log_ctx(LOG_LEVEL_INFO, h->id, "webhook deleted");
			webhook_hook_remove(w, h);
		}
		http_request_resume_with(w->d.http, op->req_id, 200,
					 json_pack("{s:b}", "ok", 1));
	}
	api_op_free(op);
}

int
webhook_delete(struct webhook *w, int64_t owner, bool admin, const char *id,
	       uint64_t req_id)
{
	struct hook *h = webhook_hook_find(w, id);
	struct api_op *op;
	const char *p[1];

	if (!may_see(h, owner, admin))
		return CINDER_ERR_NOTFOUND;
	op = api_op_new(w, req_id, WEBHOOK_STYLE_HOOK, owner, NULL, id);
	p[0] = op->id;
	if (webhook_wq_submit(w, STORE_Q_READ,
			      "DELETE FROM webhooks WHERE id = $1", 1, p,
			      delete_done, op, api_op_free) != 0) {
		api_op_free(op);
		return CINDER_ERR_UNAVAILABLE;
	}
	return 0;
}

json_t *
webhook_list_json(struct webhook *w, int64_t owner, enum webhook_style style)
{
	json_t *a = json_array();
	struct user_count *u = hmap_get(w->users, &owner, sizeof(owner));
	struct hook *h;

	if (u == NULL)
		return a;
	TAILQ_FOREACH(h, &u->all, ulink)
	json_array_append_new(a, hook_json(h, style, false));
	return a;
}

json_t *
webhook_get_json(struct webhook *w, int64_t owner, bool admin, const char *id,
		 enum webhook_style style)
{
	struct hook *h = webhook_hook_find(w, id);

	return may_see(h, owner, admin) ? hook_json(h, style, true) : NULL;
}

struct http *
webhook_http(struct webhook *w)
{
	return w->d.http;
}
