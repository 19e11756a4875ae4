/* SPDX-License-Identifier: MIT */
/*
 * The device-call path: a device request (signal, variable read, function
 * call) sent to the device's session through the registry, a describe
 * refresh when the stored describe lacks the name, and the answer,
 * written as JSON text. A variable value decoded (rest_variable_value()).
 * The request comes from h_devices.c, with its row from PostgreSQL, the
 * row cache (devrow.c) or the registry alone (dreq_live()).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/h_devices_int.h"
#include "conf.h"
#include "describe.h"
#include "err.h"
#include "fmt.h"
#include "registry.h"
#include "xmalloc.h"

/*
 * Device requests through the registry.
 */
static void
dreq_closed(uint64_t id, bool answered, void *arg)
{
	struct dreq *d = arg;

	(void)id;
	(void)answered;
	if (!d->reg_done) {
		/* the client left before the device answered */
		registry_request_cancel(d->reg, d->reg_id);
		d->reg_done = true;
		dreq_unref(d); /* the registry's reference */
	}
	dreq_unref(d);
}

json_t *
rest_variable_value(const char *type, const uint8_t *p, size_t n)
{
	size_t i;
	json_t *v;
	char *s;

	if (strcmp(type, "bool") == 0 && n >= 1)
		return json_boolean(p[0] != 0);
	if (strcmp(type, "int32") == 0 && n == 4)
		return json_integer((int32_t)((uint32_t)p[0] << 24 |
					      (uint32_t)p[1] << 16 |
					      (uint32_t)p[2] << 8 | p[3]));
	if (strcmp(type, "double") == 0 && n == 8) {
		uint64_t bits = 0;
		double x;

		for (i = 0; i < 8; i++)
			bits |= (uint64_t)p[i] << (8 * i);
		memcpy(&x, &bits, sizeof(x));
		return isfinite(x) ? json_real(x) : json_null();
	}
	if ((v = json_stringn(n ? (const char *)p : "", n)) != NULL)
		return v;
	/* not UTF-8 (or a NUL inside): keep the printable ASCII */
	s = xmalloc(n + 1);
	for (i = 0; i < n; i++)
		s[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	s[n] = '\0';
	v = json_string(s);
	free(s);
	return v;
}

static void
dreq_answer_error(struct dreq *d, int status)
{
	switch (status) {
	case CINDER_ERR_TIMEOUT:
		http_request_resume_with(d->http, d->id, 408,
					 json_pack("{s:b, s:s}", "ok", 0,
						   "error", "Timed out."));
		break;
	case CINDER_ERR_NOTFOUND:
		dev_fail(d, 404,
			 d->op == OP_VARIABLE ? "Variable not found"
					      : "Function not found");
		break;
	case CINDER_ERR_UNAVAILABLE:
		dev_fail(d, 404, "Device is not connected");
		break;
	case CINDER_ERR_BUSY:
		dev_fail(d, 429, "Too many requests queued for this device");
		break;
	case CINDER_ERR_TOO_BIG:
		dev_fail(d, 400, "Argument too long");
		break;
	default:
		dev_fail(d, 400, "The device could not complete the request");
		break;
	}
}

static void dreq_device_done(uint64_t req_id, const struct session_result *res,
			     void *arg);

static void
dreq_not_found(struct dreq *d)
{
	dev_fail(d, 404,
		 d->op == OP_VARIABLE ? "Variable not found"
				      : "Function not found");
}

/*
 * Does the describe JSON of a refresh have the function or variable d
 * names? For a variable, also note its type.
 */
static bool
dreq_describe_has(struct dreq *d, const struct session_result *res)
{
	struct describe *desc = NULL;
	const json_t *t;
	bool found = false;
	size_t i;

	if (res->status != 0 ||
	    describe_parse((const char *)res->data, res->data_len, &desc, NULL,
			   0) != 0)
		return false;
	if (d->op == OP_VARIABLE) {
		t = json_object_get(desc->variables, d->name);
		if (json_is_string(t)) {
			fmt_strcpy(d->vtype, sizeof(d->vtype),
				   json_string_value(t));
			found = true;
		}
	} else {
		for (i = 0; i < json_array_size(desc->functions) && !found;
		     i++) {
			t = json_array_get(desc->functions, i);
			found = json_is_string(t) &&
				strcmp(json_string_value(t), d->name) == 0;
		}
	}
	describe_free(desc);
	return found;
}

/*
 * The describe refresh asked because the stored describe lacked the
 * name came back: send the real request, or answer 404. The registry's
 * reference stays with d while the real request runs.
 */
static void
dreq_refresh_done(struct dreq *d, const struct session_result *res)
{
	uint32_t tmo = (uint32_t)(d->r->cfg ? d->r->cfg->request_timeout : 30);
	int rc;

	d->refreshing = false;
	if (dreq_describe_has(d, res)) {
		rc = registry_request(
			d->reg, d->device_id,
			d->op == OP_VARIABLE ? SESSION_REQ_VARIABLE
					     : SESSION_REQ_FUNCTION,
			d->name, d->op == OP_VARIABLE ? NULL : d->arg,
			tmo * 1000, dreq_device_done, d, &d->reg_id);
		if (rc == 0)
			return;
	}
	d->reg_done = true;
	d->refs++; /* hold while answering: the close hook may run inside */
	dreq_not_found(d);
	dreq_unref(d); /* the hold above */
	dreq_unref(d); /* the registry's reference */
}

/*
 * The answers of function calls and variable reads, written as text:
 * building a json_t per answer (and for a variable the coreInfo object,
 * now kept as text in the device row) and dumping it was most of what a
 * variable read cost more than a function call (perf, bench/run B4v).
 * The bytes are those json_pack and json_dump_compact made (keys in the
 * same order); anything unexpected answers 500, as a failed pack did.
 */
struct jtext {
	char *p;	 /* malloc'd, NUL-terminated */
	size_t len, cap; /* used, allocated */
	bool bad;	 /* a piece could not be written */
};

static void
jt_add(struct jtext *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = t->cap != 0 ? t->cap : 256;
		while (t->len + n + 1 > t->cap)
			t->cap *= 2;
		t->p = xreallocarray(t->p, t->cap, 1);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

#define JT_LIT(t, s) jt_add((t), (s), sizeof(s) - 1)

/* A short string (a name or an id, <= 64 bytes) as a JSON string. */
static void
jt_str(struct jtext *t, const char *s)
{
	char buf[512];
	json_t *j;
	size_t n = 0;

	/* printable ASCII without '"' or '\\' is its own JSON text (what
	 * jansson writes for it); other strings go through jansson */
	while (s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' && s[n] != '\\')
		n++;
	if (s[n] == '\0') {
		JT_LIT(t, "\"");
		jt_add(t, s, n);
		JT_LIT(t, "\"");
		return;
	}
	n = 0;
	j = json_string(s);
	if (j != NULL)
		n = json_dumpb(j, buf, sizeof(buf),
			       JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (n == 0 || n > sizeof(buf))
		t->bad = true;
	else
		jt_add(t, buf, n);
}

/* Send t as the answer (or the 500 of an answer that failed). */
static void
jt_answer(struct dreq *d, struct jtext *t)
{
	if (t->bad || t->p == NULL) {
		free(t->p);
		http_request_resume_with(d->http, d->id, 200, NULL);
		return;
	}
	http_request_resume_json_text(d->http, d->id, 200, t->p, t->len);
}

/*
 * A variable's value as JSON text: integers, booleans and null written
 * here as jansson writes them (a dump costs two allocations: jansson's
 * loop-detection table and the text), the rest dumped by jansson.
 */
static void
jt_value(struct jtext *t, const json_t *v)
{
	char num[FMT_INT_MAX];
	char *vt;
	size_t vl = 0;

	switch (json_typeof(v)) {
	case JSON_INTEGER:
		/* json_int_t is 64 bits wide (long long or long) */
		jt_add(t, num, fmt_i64(num, (int64_t)json_integer_value(v)));
		return;
	case JSON_TRUE:
		JT_LIT(t, "true");
		return;
	case JSON_FALSE:
		JT_LIT(t, "false");
		return;
	case JSON_NULL:
		JT_LIT(t, "null");
		return;
	case JSON_OBJECT:
	case JSON_ARRAY:
	case JSON_STRING:
	case JSON_REAL:
		break;
	}
	vt = json_dump_compact(v, &vl);
	if (vt != NULL)
		jt_add(t, vt, vl);
	else
		t->bad = true;
	free(vt);
}

/* {"cmd":"VarReturn","name":..,"result":..,"coreInfo":..}; takes v */
static void
var_answer(struct dreq *d, json_t *v)
{
	struct jtext t = {0};

	JT_LIT(&t, "{\"cmd\":\"VarReturn\",\"name\":");
	jt_str(&t, d->name);
	JT_LIT(&t, ",\"result\":");
	if (v != NULL)
		jt_value(&t, v);
	else
		t.bad = true;
	json_decref(v);
	JT_LIT(&t, ",\"coreInfo\":");
	jt_add(&t, d->core, strlen(d->core));
	JT_LIT(&t, "}");
	t.bad = t.bad || d->core[0] == '\0';
	jt_answer(d, &t);
}

/* {"id":..,"last_app":null,"name":..,"connected":true,"return_value":N} */
static void
fn_answer(struct dreq *d, int value)
{
	struct jtext t = {0};
	char num[FMT_INT_MAX];
	size_t n;

	JT_LIT(&t, "{\"id\":");
	jt_str(&t, d->device_id);
	JT_LIT(&t, ",\"last_app\":null,\"name\":");
	jt_str(&t, d->name);
	JT_LIT(&t, ",\"connected\":true,\"return_value\":");
	/* not snprintf: its format parsing was a tenth of a microsecond
	   per call (perf of bench/run B4) */
	n = fmt_i64(num, value);
	jt_add(&t, num, n);
	JT_LIT(&t, "}");
	jt_answer(d, &t);
}

static void
dreq_device_done(uint64_t req_id, const struct session_result *res, void *arg)
{
	struct dreq *d = arg;
	json_t *v, *body;
	char *txt;

	if (d->refreshing) {
		dreq_refresh_done(d, res);
		return;
	}
	(void)req_id;
	d->reg_done = true;
	d->refs++; /* hold while answering: the close hook may run inside */
	if (res->status != 0) {
		dreq_answer_error(d, res->status);
	} else if (d->op == OP_VARIABLE) {
		v = rest_variable_value(d->vtype, res->data, res->data_len);
		if (d->raw) {
			struct http_request *req =
				http_request_lookup(d->http, d->id);

			if (json_is_string(v))
				txt = xstrdup(json_string_value(v));
			else
				txt = json_dumps(v, JSON_ENCODE_ANY);
			if (req != NULL && txt != NULL)
				http_respond_raw(req, 200, "text/plain", txt,
						 strlen(txt));
			free(txt);
			json_decref(v);
		} else {
			var_answer(d, v);
		}
	} else if (d->op == OP_FUNCTION) {
		fn_answer(d, (int)res->int_value);
	} else {
		body = json_pack("{s:s, s:b, s:b, s:b}", "id", d->device_id,
				 "connected", 1, "signaling",
				 d->arg != NULL && strcmp(d->arg, "1") == 0,
				 "ok", 1);
		http_request_resume_with(d->http, d->id, 200, body);
	}
	dreq_unref(d); /* the hold above */
	dreq_unref(d); /* the registry's reference */
}

/*
 * Send the request to the device, known to be online; d is owned by
 * the caller's reference.
 */
static void
dreq_request(struct dreq *d, enum session_req_kind kind, const char *name,
	     const char *arg)
{
	struct http_request *req = http_request_lookup(d->http, d->id);
	uint32_t tmo = (uint32_t)(d->r->cfg ? d->r->cfg->request_timeout : 30);
	int rc;

	if (req == NULL) {
		dreq_unref(d);
		return;
	}
	d->refreshing = kind == SESSION_REQ_DESCRIBE;
	rc = registry_request(d->reg, d->device_id, kind, name, arg, tmo * 1000,
			      dreq_device_done, d, &d->reg_id);
	if (rc != 0 && d->refreshing) {
		/* rate limited: the stored describe is all there is */
		d->refreshing = false;
		dreq_not_found(d);
		dreq_unref(d);
		return;
	}
	if (rc != 0) {
		dreq_answer_error(d, rc == CINDER_ERR_NOTFOUND
					     ? CINDER_ERR_UNAVAILABLE
					     : rc);
		dreq_unref(d);
		return;
	}
	/* the reference passes to the registry; add one for the close hook */
	d->refs++;
	http_request_on_close(req, dreq_closed, d);
}

/* dreq_request() if the device is online, else 404. */
void
dreq_send(struct dreq *d, enum session_req_kind kind, const char *name,
	  const char *arg)
{
	if (!registry_is_online(d->reg, d->device_id)) {
		dev_fail(d, 404, "Device is not connected");
		dreq_unref(d);
		return;
	}
	dreq_request(d, kind, name, arg);
}

/*
 * A wall-clock time in ms as PostgreSQL's TS() writes it
 * ("%Y-%m-%dT%H:%M:%S.mmmZ"): fmt_time_ms() for years up to 9999
 * (gmtime_r, strftime and snprintf were 0.4 us of a variable read, perf
 * of bench/run B4v), others as before.
 */
static void
iso_ms(uint64_t ms, char *out, size_t cap)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;

	if (cap >= FMT_TIME_LEN && fmt_time_ms(ms, out))
		return;
	if (gmtime_r(&sec, &tm) == NULL ||
	    strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		out[0] = '\0';
		return;
	}
	snprintf(out + strlen(out), cap - strlen(out), ".%03uZ",
		 (unsigned)(ms % 1000));
}

/* Append s (n bytes) to the text in buf (cap bytes) at *at, keeping it
   NUL-terminated. @return false, and nothing appended, if it would not
   fit */
static bool
put(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
	if (n >= cap - *at)
		return false;
	memcpy(buf + *at, s, n);
	*at += n;
	buf[*at] = '\0';
	return true;
}

#define PUT_LIT(buf, at, s) put((buf), sizeof(buf), (at), (s), sizeof(s) - 1)
#define PUT_STR(buf, at, s) put((buf), sizeof(buf), (at), (s), strlen(s))

/*
 * A variable answer's coreInfo, the keys and bytes of what
 * json_dump_compact() made of the device row (d->device_id's): the
 * times from the registry (the device is online), the product the
 * row's (has_product false: null). Written piece by piece: two
 * snprintf() calls were 2,200 instructions of each read (callgrind of
 * bench/run B4v).
 */
void
dreq_core_text(struct dreq *d, bool has_product, int64_t product,
	       const struct registry_device_now *now)
{
	char heard[32], hs[32], prod[FMT_INT_MAX];
	size_t at = 0, pl;

	iso_ms(now->heard_ms, heard, sizeof(heard));
	iso_ms(now->handshake_ms, hs, sizeof(hs));
	if (has_product) {
		pl = fmt_i64(prod, product);
	} else {
		memcpy(prod, "null", 5);
		pl = 4;
	}
	d->core[0] = '\0';
	if (heard[0] == '\0' || hs[0] == '\0' ||
	    !PUT_LIT(d->core, &at, "{\"last_app\":null,\"last_heard\":\"") ||
	    !PUT_STR(d->core, &at, heard) ||
	    !PUT_LIT(d->core, &at,
		     "\",\"connected\":true,\"last_handshake_at\":\"") ||
	    !PUT_STR(d->core, &at, hs) ||
	    !PUT_LIT(d->core, &at, "\",\"deviceID\":\"") ||
	    !PUT_STR(d->core, &at, d->device_id) ||
	    !PUT_LIT(d->core, &at, "\",\"product_id\":") ||
	    !put(d->core, sizeof(d->core), &at, prod, pl) ||
	    !PUT_LIT(d->core, &at, "}"))
		d->core[0] = '\0'; /* the answer is a 500 */
}

/*
 * Send a function call or variable read (d->device_id and, for a read,
 * d->core set) to the online device; consumes d's ref. found: the
 * describe the lists came from has d->name, vtype a variable's type. A
 * name missing from it makes the device re-describe first
 * (dreq_refresh_done), as it may have registered it since.
 */
void
dreq_app_send(struct dreq *d, bool found, const char *vtype)
{
	if (!found) {
		dreq_request(d, SESSION_REQ_DESCRIBE, NULL, NULL);
		return;
	}
	if (d->op == OP_VARIABLE) {
		fmt_strcpy(d->vtype, sizeof(d->vtype), vtype);
		dreq_request(d, SESSION_REQ_VARIABLE, d->name, NULL);
		return;
	}
	dreq_request(d, SESSION_REQ_FUNCTION, d->name, d->arg ? d->arg : "");
}

/*
 * A function call or variable read on a known row; consumes d's ref.
 * now: what the registry holds of the device, NULL if it is offline.
 */
void
dreq_app_request(struct dreq *d, const struct devrow *e,
		 const struct registry_device_now *now)
{
	const char *t = NULL;

	fmt_strcpy(d->device_id, sizeof(d->device_id), e->device_id);
	if (now == NULL) {
		dev_fail(d, 404, "Device is not connected");
		dreq_unref(d);
		return;
	}
	if (d->op == OP_VARIABLE) {
		dreq_core_text(d, e->has_product, e->product, now);
		t = devrow_var(e, d->name);
		dreq_app_send(d, t != NULL, t);
		return;
	}
	dreq_app_send(d, devrow_fn(e, d->name), NULL);
}

/*
 * A function call's or variable read's row without PostgreSQL or the
 * row cache: when :id is the id of a device connected here whose owner
 * is sure (registry_device_now()) and is the caller (or the caller is
 * an admin), DEV_ONE's answer is that device's row (an id match comes
 * first, and a name cannot look like an id). Of the row a call needs
 * only the id and the function list, a read the id, the variable list
 * and coreInfo's product_id; the lists of a connected device are those
 * of the describe its connection holds (row_done takes them too), and
 * the registry knows the product when the assigned one is sure as the
 * owner is and the Hello or a describe gave the rest
 * (registry_pres_product()). Sets d->device_id, *now, and whether the
 * describe has d->name (*found; a variable's type in *vtype, borrowed
 * from the registry until the loop runs again).
 * @return false (d untouched) if the registry cannot answer for
 * PostgreSQL: the device is not connected here, its owner is not sure
 * or someone else, or the registry lacks the list (a describe without
 * the application's part) or, for a read, the product.
 *
 * perf: with 10,000 devices called or read in turn (B4, B4v), the
 * first request to each after its connection was a PostgreSQL round
 * trip, most of a 5 s phase's; and a row kept per device in the row
 * cache cost every request a lookup of its own (the map's bucket and
 * entry and the row, out of cache): the describe is shared by the
 * connections that sent the same text, so mostly in cache, and its
 * lists are those the row would hold.
 */
bool
dreq_live(struct dreq *d, struct registry_device_now *now, bool *found,
	  const char **vtype)
{
	const struct describe *desc;
	const json_t *v;
	char id[25];
	size_t i;

	if (!device_id_ok(d->key, id) ||
	    !registry_device_now(d->reg, id, now) || !now->owner_sure ||
	    (!d->admin && now->owner_id != d->uid) ||
	    (desc = now->describe) == NULL)
		return false;
	*found = false;
	*vtype = NULL;
	if (d->op == OP_FUNCTION) {
		if (now->functions == NULL || !json_is_array(desc->functions))
			return false;
		json_array_foreach(desc->functions, i, v)
		{
			if (fn_kept(v) &&
			    strcmp(json_string_value(v), d->name) == 0) {
				*found = true;
				break;
			}
		}
	} else {
		if (!now->product_sure || now->variables == NULL ||
		    !json_is_object(desc->variables))
			return false;
		v = json_object_get(desc->variables, d->name);
		if (var_kept(d->name, strlen(d->name), v)) {
			*found = true;
			*vtype = json_string_value(v);
		}
	}
	memcpy(d->device_id, id, sizeof(d->device_id)); /* both 24 + NUL */
	return true;
}
