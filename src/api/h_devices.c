/* SPDX-License-Identifier: MIT */
/*
 * Device routes (cloud-api.md 1.2): list, get, rename/notes/signal, ping,
 * claim, unclaim, key provisioning, variable reads and function calls.
 * Every device lookup is owner-scoped in SQL: another user's device is
 * simply not found (404) and never listed; administrators see all.
 * Online state is the registry's (this node) or the database's (another
 * node). Device requests are suspended HTTP requests answered by id when
 * the registry's callback runs; a client that leaves cancels its request.
 * Sending a request to the device and answering it is devcall.c's, the
 * row cache of calls and reads devrow.c's; h_devices_int.h holds what
 * the three share.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/h_devices_int.h"
#include "api/rest_int.h"
#include "crypto.h"
#include "describe.h"
#include "err.h"
#include "healer/healer.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "xmalloc.h"

#define DEV_NAME_MAX 63
#define DEV_NOTES_MAX 4096
#define DEV_ARG_MAX 1024

/* Owner scope ($1 caller id, $2 caller is admin) and id-or-name ($3). */
#define DEV_ONE                                                                \
	"SELECT " DEV_COLS "FROM devices d WHERE (d.owner_id = $1::bigint "    \
	"OR $2::bool) AND (d.device_id = lower($3) OR d.name = $3) "           \
	"ORDER BY (d.device_id = lower($3)) DESC, "                            \
	"(d.owner_id = $1::bigint) DESC NULLS LAST LIMIT 1"

void
dreq_unref(struct dreq *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	/* key, name and arg live in d's own block (dreq_for_with()) or in
	   d itself (provision's key): none is freed apart from d */
	if (d->arg != NULL)
		explicit_bzero(d->arg, strlen(d->arg));
	free(d);
}

/* A new dreq with extra bytes after it (for dreq_for_with()). */
static struct dreq *
dreq_new_extra(struct rest *r, struct http_request *req, enum dev_op op,
	       size_t extra)
{
	struct dreq *d = xcalloc(1, sizeof(*d) + extra);
	const struct auth_user *u = auth_user_of(req);

	d->r = r;
	d->http = r->http;
	d->reg = r->reg;
	d->id = http_request_id(req);
	d->op = op;
	d->uid = u ? u->id : 0;
	d->admin = u ? u->is_admin : false;
	d->refs = 1;
	return d;
}

static struct dreq *
dreq_new(struct rest *r, struct http_request *req, enum dev_op op)
{
	return dreq_new_extra(r, req, op, 0);
}

static json_t *
str_or_null(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	return j ? j : json_null();
}

/*
 * functions (name array) and variables (name -> type) of a row, from the
 * columns the daemon fills or, while those are NULL, from the raw
 * describe ("f": [...], "v": {name: code}).
 */
static void
row_app(const struct store_result *res, int row, json_t **fns, json_t **vars)
{
	const char *f = store_result_value(res, row, C_FUNCTIONS);
	const char *v = store_result_value(res, row, C_VARIABLES);
	const char *d = store_result_value(res, row, C_DESCRIBE);
	json_t *desc = NULL, *x, *val;
	const char *k;

	*fns = f ? json_loads(f, 0, NULL) : NULL;
	*vars = v ? json_loads(v, 0, NULL) : NULL;
	if ((*fns == NULL || *vars == NULL) && d != NULL)
		desc = json_loads(d, 0, NULL);
	if (*fns == NULL || !json_is_array(*fns)) {
		json_decref(*fns);
		x = desc ? json_object_get(desc, "f") : NULL;
		*fns = json_is_array(x) ? json_incref(x) : json_array();
	}
	if (*vars == NULL || !json_is_object(*vars)) {
		json_decref(*vars);
		*vars = json_object();
		x = desc ? json_object_get(desc, "v") : NULL;
		if (json_is_object(x)) {
			json_object_foreach(x, k, val)
			{
				const char *t = NULL;

				if (json_is_integer(val))
					t = describe_var_type_str(
						(int)(long)json_integer_value(
							val));
				else if (json_is_string(val))
					t = json_string_value(val);
				if (t != NULL)
					json_object_set_new(*vars, k,
							    json_string(t));
			}
		}
	}
	json_decref(desc);
}

static bool
row_online(struct rest *r, const struct store_result *res, int row)
{
	const char *id = store_result_value(res, row, C_ID);
	const char *on = store_result_value(res, row, C_ONLINE);

	return registry_is_online(r->reg, id) || (on != NULL && on[0] == 't');
}

static json_t *
int_or_null(const char *s)
{
	return s ? json_integer(strtoll(s, NULL, 10)) : json_null();
}

/* The device object of the list and GET answers. */
static json_t *
device_json(struct rest *r, const struct store_result *res, int row)
{
	json_t *o = json_object(), *fns, *vars, *hs;
	bool online = row_online(r, res, row);
	const char *s;

	json_object_set_new(o, "id",
			    json_string(store_result_value(res, row, C_ID)));
	json_object_set_new(o, "name",
			    str_or_null(store_result_value(res, row, C_NAME)));
	json_object_set_new(o, "last_app", json_null());
	json_object_set_new(o, "last_ip_address",
			    str_or_null(store_result_value(res, row, C_IP)));
	json_object_set_new(o, "last_heard",
			    str_or_null(store_result_value(res, row, C_HEARD)));
	json_object_set_new(
		o, "last_handshake_at",
		str_or_null(store_result_value(res, row, C_HANDSHAKE)));
	json_object_set_new(
		o, "product_id",
		int_or_null(store_result_value(res, row, C_PRODUCT)));
	json_object_set_new(o, "online", json_boolean(online));
	json_object_set_new(o, "connected", json_boolean(online));
	json_object_set_new(
		o, "platform_id",
		int_or_null(store_result_value(res, row, C_PLATFORM)));
	json_object_set_new(o, "cellular", json_false());
	json_object_set_new(o, "notes",
			    str_or_null(store_result_value(res, row, C_NOTES)));
	json_object_set_new(o, "status", json_string("normal"));
	json_object_set_new(o, "serial_number", json_null());
	s = store_result_value(res, row, C_SYSVER);
	json_object_set_new(o, "system_firmware_version", str_or_null(s));
	json_object_set_new(o, "current_build_target", str_or_null(s));
	json_object_set_new(o, "default_build_target", str_or_null(s));
	s = store_result_value(res, row, C_FW_ENABLED);
	json_object_set_new(o, "firmware_updates_enabled",
			    json_boolean(s == NULL || s[0] == 't'));
	s = store_result_value(res, row, C_FW_FORCED);
	json_object_set_new(o, "firmware_updates_forced",
			    json_boolean(s != NULL && s[0] == 't'));
	row_app(res, row, &fns, &vars);
	json_object_set_new(o, "functions", fns);
	json_object_set_new(o, "variables", vars);
	/* A heal in progress (docs/healer.md); absent otherwise. */
	if ((hs = healer_state_json(
		     r->healer, store_result_value(res, row, C_ID))) != NULL)
		json_object_set_new(o, "healer", hs);
	return o;
}

/*
 * GET /v1/devices
 */
static void
list_done(int rc, const struct store_result *res, void *arg)
{
	struct dreq *d = arg;
	json_t *arr;
	int i, n;

	if (rc != 0) {
		rest_fail_err(d->http, d->id, rc);
		goto out;
	}
	arr = json_array();
	n = store_result_ntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, device_json(d->r, res, i));
	http_request_resume_with(d->http, d->id, 200, arr);
out:
	dreq_unref(d);
}

static int
h_devices_list(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	struct dreq *d = dreq_new(r, req, OP_GET);
	char uid[24];
	const char *params[2] = {uid, d->admin ? "t" : "f"};
	int rc;

	snprintf(uid, sizeof(uid), "%lld", (long long)d->uid);
	rc = store_query(r->store, STORE_Q_READ,
			 "SELECT " DEV_COLS "FROM devices d WHERE "
			 "d.owner_id = $1::bigint OR $2::bool "
			 "ORDER BY d.name NULLS LAST, d.device_id",
			 2, params, list_done, d, NULL);
	if (rc != 0) {
		dreq_unref(d);
		return rc;
	}
	return http_request_suspend(req);
}

bool
rest_device_name_ok(const char *s)
{
	size_t n = strlen(s), i;
	bool hex24 = n == 24;

	if (n == 0 || n > DEV_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '_' && c != '-')
			return false;
		if (!isxdigit(c))
			hex24 = false;
	}
	return !hex24; /* a name must not look like a device id */
}

/*
 * Handling the device row of a single-device request.
 */
/* The UPDATE of a rename, a note, the forced-updates flag or an
   unclaim; simple_done() answers it. */
static const char *
simple_sql(enum dev_op op)
{
	switch (op) {
	case OP_RENAME:
		return "UPDATE devices SET name = $2 WHERE device_id = $1 "
		       "RETURNING 1";
	case OP_NOTES:
		return "UPDATE devices SET notes = $2 WHERE device_id = $1 "
		       "RETURNING 1";
	case OP_FORCED:
		return "UPDATE devices SET firmware_updates_forced = "
		       "$2::boolean WHERE device_id = $1 RETURNING 1";
	default:
		return "UPDATE devices SET owner_id = NULL WHERE device_id = "
		       "$1 RETURNING 1";
	}
}

/* What simple_sql(op) changes, for the NOTIFY (REST_DEVICES_CHANNEL). */
static const char *
simple_what(enum dev_op op)
{
	switch (op) {
	case OP_RENAME:
		return "name";
	case OP_NOTES:
		return "notes";
	case OP_FORCED:
		return "forced";
	default:
		return "owner";
	}
}

static void
simple_done(int rc, const struct store_result *res, void *arg)
{
	struct dreq *d = arg;
	json_t *body;

	devrow_changed(d->r, d->device_id, simple_what(d->op));
	if (rc == CINDER_ERR_CONFLICT && d->op == OP_RENAME) {
		dev_fail(d, 400,
			 "That name is already used by another of "
			 "your devices");
	} else if (rc != 0) {
		rest_fail_err(d->http, d->id, rc);
	} else if (store_result_ntuples(res) != 1) {
		dev_fail(d, 404, "No device found");
	} else {
		switch (d->op) {
		case OP_RENAME:
			body = json_pack("{s:b, s:s, s:s}", "ok", 1, "id",
					 d->device_id, "name", d->name);
			break;
		case OP_NOTES:
			body = json_pack("{s:b, s:s, s:s}", "ok", 1, "id",
					 d->device_id, "notes", d->arg);
			break;
		case OP_FORCED:
			/* tell the device (online) and resume a refused heal */
			healer_updates_forced(d->r->healer, d->device_id,
					      d->arg[0] == 't');
			body = json_pack(
				"{s:b, s:s, s:b}", "ok", 1, "id", d->device_id,
				"firmware_updates_forced", d->arg[0] == 't');
			break;
		default:
			registry_set_owner(d->reg, d->device_id, 0);
			body = json_pack("{s:b, s:s}", "ok", 1, "id",
					 d->device_id);
			break;
		}
		http_request_resume_with(d->http, d->id, 200, body);
	}
	dreq_unref(d);
}

static void
row_done(int rc, const struct store_result *res, void *arg)
{
	struct dreq *d = arg;
	struct rest *r = d->r;
	const char *params[3];
	json_t *fns = NULL, *vars = NULL;
	struct registry_device_now now;
	struct devrow *e;
	bool online, live, kept;

	if (rc != 0) {
		rest_fail_err(d->http, d->id, rc);
		goto out;
	}
	if (store_result_ntuples(res) != 1) {
		dev_fail(d, 404, "No device found");
		goto out;
	}
	snprintf(d->device_id, sizeof(d->device_id), "%s",
		 store_result_value(res, 0, C_ID));
	online = row_online(r, res, 0);
	params[0] = d->device_id;
	switch (d->op) {
	case OP_GET:
		http_request_resume_with(d->http, d->id, 200,
					 device_json(r, res, 0));
		goto out;
	case OP_PING:
		http_request_resume_with(
			d->http, d->id, 200,
			json_pack("{s:b, s:b, s:o}", "online", online,
				  "connected", online, "lastHeard",
				  str_or_null(store_result_value(res, 0,
								 C_HEARD))));
		goto out;
	case OP_RENAME:
	case OP_NOTES:
	case OP_FORCED:
	case OP_UNCLAIM:
		params[1] = d->op == OP_RENAME ? d->name : d->arg;
		rc = store_query(r->store, STORE_Q_WRITE, simple_sql(d->op),
				 d->op == OP_UNCLAIM ? 1 : 2, params,
				 simple_done, d, NULL);
		if (rc != 0) {
			rest_fail_err(d->http, d->id, rc);
			goto out;
		}
		return;
	case OP_SIGNAL:
		dreq_send(d, SESSION_REQ_SIGNAL, NULL, d->arg);
		return;
	case OP_VARIABLE:
	case OP_FUNCTION:
		break;
	}
	row_app(res, 0, &fns, &vars);
	live = registry_device_now(r->reg, d->device_id, &now);
	if (live)
		devrow_live_lists(&now, &fns, &vars);
	e = devrow_put(r, d, res, fns, vars, &kept);
	if (live) {
		e->gen = now.gen;
		e->expires_ms = rest_now_ms() + DEVROW_LIVE_MS;
	}
	dreq_app_request(d, e, live ? &now : NULL);
	if (!kept)
		devrow_free(e);
	return;
out:
	json_decref(fns);
	json_decref(vars);
	dreq_unref(d);
}

/* Look the device up for d (key set), then row_done. */
static int
dreq_start(struct http_request *req, struct dreq *d)
{
	char uid[24];
	const char *params[3];
	int rc;

	if (d->op == OP_FUNCTION || d->op == OP_VARIABLE) {
		struct registry_device_now now;
		bool online = false, found;
		const char *vtype;
		struct devrow *e;

		if (dreq_live(d, &now, &found, &vtype)) {
			/* answered later by the device, or now on an error */
			d->r->devrows_registry++;
			rc = http_request_suspend(req);
			if (d->op == OP_VARIABLE)
				dreq_core_text(d, true, now.product_id, &now);
			dreq_app_send(d, found, vtype);
			return rc;
		}
		if ((e = devrow_get(d->r, d, &now, &online)) != NULL) {
			/* answered later by the device, or now on an error */
			rc = http_request_suspend(req);
			dreq_app_request(d, e, online ? &now : NULL);
			return rc;
		}
	}
	/* the row from PostgreSQL (formatted here, not for the requests
	   answered above) */
	snprintf(uid, sizeof(uid), "%lld", (long long)d->uid);
	params[0] = uid;
	params[1] = d->admin ? "t" : "f";
	params[2] = d->key;
	rc = store_query(d->r->store, STORE_Q_READ, DEV_ONE, 3, params,
			 row_done, d, NULL);
	if (rc != 0) {
		dreq_unref(d);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * A dreq for the :id of req, with name and arg (either may be NULL)
 * set; the three strings are copied into d's own block (a function
 * call made four allocations of d and them; perf, bench/run B4). All
 * three are bounded by the request's path and body limits.
 */
static struct dreq *
dreq_for_with(struct rest *r, struct http_request *req, enum dev_op op,
	      const char *name, const char *arg)
{
	const char *k = http_request_param(req, "id");
	size_t kl, nl, al;
	struct dreq *d;
	char *p;

	if (k == NULL)
		k = "";
	kl = strlen(k) + 1;
	nl = name != NULL ? strlen(name) + 1 : 0;
	al = arg != NULL ? strlen(arg) + 1 : 0;
	d = dreq_new_extra(r, req, op, kl + nl + al);
	p = (char *)(d + 1);
	d->key = memcpy(p, k, kl);
	p += kl;
	if (name != NULL) {
		d->name = memcpy(p, name, nl);
		p += nl;
	}
	if (arg != NULL)
		d->arg = memcpy(p, arg, al);
	return d;
}

static struct dreq *
dreq_for(struct rest *r, struct http_request *req, enum dev_op op)
{
	return dreq_for_with(r, req, op, NULL, NULL);
}

static int
h_device_get(struct http_request *req, void *arg)
{
	return dreq_start(req, dreq_for(arg, req, OP_GET));
}

static int
h_device_ping(struct http_request *req, void *arg)
{
	return dreq_start(req, dreq_for(arg, req, OP_PING));
}

static int
h_device_delete(struct http_request *req, void *arg)
{
	return dreq_start(req, dreq_for(arg, req, OP_UNCLAIM));
}

static int
bad_request(struct http_request *req, const char *desc)
{
	return http_respond_json(
		req, 400, json_pack("{s:b, s:s}", "ok", 0, "error", desc));
}

/*
 * A body field as text: strings as they are, JSON numbers and booleans
 * converted (JSON clients send {"arg": 5} or {"signal": true}). A form
 * body's field is decoded into buf without parsing the body.
 * @param buf receives converted values and form fields
 * @return the text (borrowed from the request or buf) or NULL
 */
static const char *
field_text(struct http_request *req, const char *name, char *buf, size_t len)
{
	const char *v = http_request_arg_into(req, name, buf, len);
	json_t *j;

	if (v != NULL)
		return v;
	/* only a JSON body has numbers and booleans: a form is not parsed */
	j = json_object_get(http_request_body_peek(req), name);
	if (json_is_integer(j))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(j));
	else if (json_is_real(j))
		snprintf(buf, len, "%.17g", json_real_value(j));
	else if (json_is_boolean(j))
		snprintf(buf, len, "%d", json_is_true(j) ? 1 : 0);
	else
		return NULL;
	return buf;
}

static int
h_device_put(struct http_request *req, void *arg)
{
	const char *name = http_request_arg(req, "name");
	const char *notes = http_request_arg(req, "notes");
	char sbuf[32];
	const char *sig = field_text(req, "signal", sbuf, sizeof(sbuf));
	char fbuf[32];
	const char *forced =
		field_text(req, "firmware_updates_forced", fbuf, sizeof(fbuf));
	const struct json_files *files = http_request_files(req);
	struct dreq *d;

	if (files != NULL && files->n > 0)
		return h_device_flash(req, arg);
	if (name != NULL) {
		if (!rest_device_name_ok(name))
			return bad_request(
				req, "Device names are 1 to 63 letters, "
				     "digits, '_' or '-' (not a device id)");
		d = dreq_for_with(arg, req, OP_RENAME, name, NULL);
	} else if (notes != NULL) {
		if (strlen(notes) > DEV_NOTES_MAX)
			return bad_request(req, "notes are too long");
		d = dreq_for_with(arg, req, OP_NOTES, NULL, notes);
	} else if (forced != NULL) {
		if (strcmp(forced, "true") == 0 || strcmp(forced, "1") == 0)
			forced = "t";
		else if (strcmp(forced, "false") == 0 ||
			 strcmp(forced, "0") == 0)
			forced = "f";
		else
			return bad_request(req, "firmware_updates_forced must "
						"be true or false");
		d = dreq_for_with(arg, req, OP_FORCED, NULL, forced);
	} else if (sig != NULL) {
		if (strcmp(sig, "1") != 0 && strcmp(sig, "0") != 0)
			return bad_request(req, "signal must be 1 or 0");
		d = dreq_for_with(arg, req, OP_SIGNAL, NULL, sig);
	} else {
		return bad_request(req, "Nothing to do: give name, notes, "
					"signal or firmware_updates_forced");
	}
	return dreq_start(req, d);
}

static int
h_device_variable(struct http_request *req, void *arg)
{
	const char *name = http_request_param(req, "name");
	const char *fmt = http_request_query(req, "format");
	struct dreq *d;

	if (name == NULL || *name == '\0' || strlen(name) > 64)
		return bad_request(req, "bad variable name");
	d = dreq_for_with(arg, req, OP_VARIABLE, name, NULL);
	d->raw = fmt != NULL && strcmp(fmt, "raw") == 0;
	return dreq_start(req, d);
}

static int
h_device_function(struct http_request *req, void *arg)
{
	const char *name = http_request_param(req, "name");
	/* a form's argument of up to DEV_ARG_MAX + 1 encoded bytes (one over
	   the limit) is decoded here without parsing the body */
	char abuf[DEV_ARG_MAX + 2];
	const char *fa = field_text(req, "arg", abuf, sizeof(abuf));
	struct dreq *d;

	if (fa == NULL)
		fa = field_text(req, "args", abuf, sizeof(abuf));
	if (name == NULL || *name == '\0' || strlen(name) > 64)
		return bad_request(req, "bad function name");
	if (fa != NULL && strlen(fa) > DEV_ARG_MAX)
		return bad_request(req, "Argument too long");
	d = dreq_for_with(arg, req, OP_FUNCTION, name, fa ? fa : "");
	return dreq_start(req, d);
}

/*
 * POST /v1/devices: claim
 */
static void
claim_done(int rc, const struct store_result *res, void *arg)
{
	struct dreq *d = arg;
	const char *owner;

	devrow_changed(d->r, d->device_id, "owner"); /* it may have changed */
	if (rc != 0) {
		rest_fail_err(d->http, d->id, rc);
		goto out;
	}
	if (store_result_ntuples(res) != 1 ||
	    strcmp(store_result_value(res, 0, 0), "0") == 0) {
		dev_fail(d, 404, "No device found");
		goto out;
	}
	owner = store_result_value(res, 0, 1);
	if (strcmp(store_result_value(res, 0, 2), "0") != 0) {
		registry_set_owner(d->reg, d->device_id, d->uid);
	} else if (owner == NULL || strtoll(owner, NULL, 10) != d->uid) {
		dev_fail(d, 403, "The device belongs to someone else.");
		goto out;
	}
	http_request_resume_with(d->http, d->id, 200,
				 json_pack("{s:b, s:s, s:s, s:b}", "ok", 1,
					   "id", d->device_id, "deviceID",
					   d->device_id, "claimed", 1));
out:
	dreq_unref(d);
}

static int
h_device_claim(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	struct dreq *d;
	char uid[24];
	const char *params[2];
	int rc;

	d = dreq_new(r, req, OP_GET);
	if (!device_id_ok(http_request_arg(req, "id"), d->device_id)) {
		dreq_unref(d);
		return bad_request(req, "id must be a 24-character device id");
	}
	snprintf(uid, sizeof(uid), "%lld", (long long)d->uid);
	params[0] = uid;
	params[1] = d->device_id;
	rc = store_query(
		r->store, STORE_Q_WRITE,
		"WITH cur AS (SELECT owner_id FROM devices WHERE device_id = "
		"$2), upd AS (UPDATE devices SET owner_id = $1::bigint, "
		"name = CASE WHEN EXISTS (SELECT 1 FROM devices o WHERE "
		"o.owner_id = $1::bigint AND o.name = devices.name) THEN NULL "
		"ELSE name END WHERE device_id = $2 AND owner_id IS NULL "
		"RETURNING 1) SELECT (SELECT count(*) FROM cur), (SELECT "
		"owner_id FROM cur), (SELECT count(*) FROM upd)",
		2, params, claim_done, d, NULL);
	if (rc != 0) {
		dreq_unref(d);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * POST /v1/provisioning/:deviceId
 */
static void
provision_done(int rc, const struct store_result *res, void *arg)
{
	struct dreq *d = arg;
	const char *owner;
	const char *params[1] = {d->device_id};

	devrow_changed(d->r, d->device_id, "key"); /* key and owner changed */
	if (rc != 0) {
		rest_fail_err(d->http, d->id, rc);
		goto fail;
	}
	if (store_result_ntuples(res) != 1) {
		dev_fail(d, 403, "The device belongs to someone else.");
		goto fail;
	}
	owner = store_result_value(res, 0, 0);
	registry_forget_key(d->reg, d->device_id);
	registry_set_owner(d->reg, d->device_id,
			   owner ? strtoll(owner, NULL, 10) : 0);
	store_query(d->r->store, STORE_Q_WRITE,
		    "DELETE FROM pending_device_keys WHERE device_id = $1", 1,
		    params, NULL, NULL, NULL);
	log_notice("device %s: public key provisioned by user %lld",
		   d->device_id, (long long)d->uid);
	/* answer with the device info, as Brewskey's server does */
	d->op = OP_GET;
	d->key = d->device_id;
	{
		char uid[24];
		const char *p3[3];

		snprintf(uid, sizeof(uid), "%lld", (long long)d->uid);
		p3[0] = uid;
		p3[1] = "t"; /* the caller just became (or is) the owner */
		p3[2] = d->key;
		rc = store_query(d->r->store, STORE_Q_READ, DEV_ONE, 3, p3,
				 row_done, d, NULL);
	}
	if (rc != 0) {
		rest_fail_err(d->http, d->id, rc);
		goto fail;
	}
	return;
fail:
	dreq_unref(d);
}

static int
h_provision(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const char *pem = http_request_arg(req, "publicKey");
	struct crypto_key *k = NULL;
	char *norm = NULL, uid[24];
	const char *params[4];
	struct dreq *d;
	int rc;

	d = dreq_new(r, req, OP_GET);
	if (!device_id_ok(http_request_param(req, "deviceId"), d->device_id)) {
		dreq_unref(d);
		return bad_request(req, "deviceId must be a 24-character "
					"device id");
	}
	if (pem == NULL || *pem == '\0') {
		dreq_unref(d);
		return http_respond_json(req, 400,
					 json_pack("{s:b, s:s}", "ok", 0,
						   "error", "No key provided"));
	}
	rc = crypto_pubkey_parse(pem, strlen(pem), &k);
	if (rc == 0)
		rc = crypto_key_public_pem(k, &norm);
	crypto_key_free(k);
	if (rc != 0) {
		dreq_unref(d);
		free(norm);
		return http_respond_json(
			req, 400,
			json_pack("{s:b, s:s}", "ok", 0, "error",
				  "Key error: not a valid device public key "
				  "(PEM, RSA 1024 bits)"));
	}
	snprintf(uid, sizeof(uid), "%lld", (long long)d->uid);
	params[0] = d->device_id;
	params[1] = norm;
	params[2] = uid;
	params[3] = d->admin ? "t" : "f";
	rc = store_query(
		r->store, STORE_Q_WRITE,
		"INSERT INTO devices (device_id, public_key, owner_id) VALUES "
		"($1, $2, $3::bigint) ON CONFLICT (device_id) DO UPDATE SET "
		"public_key = EXCLUDED.public_key, owner_id = "
		"COALESCE(devices.owner_id, EXCLUDED.owner_id) WHERE "
		"devices.owner_id IS NULL OR devices.owner_id = $3::bigint OR "
		"$4::bool RETURNING owner_id",
		4, params, provision_done, d, NULL);
	free(norm);
	if (rc != 0) {
		dreq_unref(d);
		return rc;
	}
	return http_request_suspend(req);
}

const struct route h_devices_routes[] = {
	{"GET", "/v1/devices", ROUTE_AUTH_REQUIRED, h_devices_list},
	{"POST", "/v1/devices", ROUTE_AUTH_REQUIRED, h_device_claim},
	{"GET", "/v1/devices/:id", ROUTE_AUTH_REQUIRED, h_device_get},
	{"PUT", "/v1/devices/:id", ROUTE_AUTH_REQUIRED | ROUTE_UPLOAD,
	 h_device_put},
	{"DELETE", "/v1/devices/:id", ROUTE_AUTH_REQUIRED, h_device_delete},
	{"PUT", "/v1/devices/:id/ping", ROUTE_AUTH_REQUIRED, h_device_ping},
	{"GET", "/v1/devices/:id/:name", ROUTE_AUTH_REQUIRED,
	 h_device_variable},
	{"POST", "/v1/devices/:id/:name", ROUTE_AUTH_REQUIRED,
	 h_device_function},
	{"POST", "/v1/provisioning/:deviceId", ROUTE_AUTH_REQUIRED,
	 h_provision},
};
const size_t h_devices_nroutes =
	sizeof(h_devices_routes) / sizeof(h_devices_routes[0]);
