/* SPDX-License-Identifier: MIT */
/*
 * Application layer: functions, variables, Describe, publish with the
 * device-side rate limits, subscriptions, received events, the §2.5
 * post-connect sequence, spark/device/reset and safe mode. Messages are
 * built with the shared codec into one scratch buffer and queued with
 * fw_device_send(); a thread handles one device at a time, and the
 * scratch buffers are per thread on a host (FW_SCRATCH), so they need no
 * locking.
 */
#include "config.h"

#include <string.h>

#include "coap/pcoap.h"
#include "fw_app.h"
#include "fw_err.h"
#include "fw_util.h"

#define PLAIN_MAX (FW_DEVICE_BUF - 2 - 16)

FW_SCRATCH uint8_t msgbuf[PLAIN_MAX];
FW_SCRATCH char namebuf[FW_APP_NAME_MAX + 2];
FW_SCRATCH char argbuf[FW_APP_ARG_MAX + 1];
FW_SCRATCH char evname[PCOAP_EVENT_NAME_MAX + 2];
FW_SCRATCH char evdata[FW_APP_EVENT_DATA_MAX + 1];

static bool
time_reached(uint32_t now, uint32_t t)
{
	return (int32_t)(now - t) >= 0;
}

static void
note(struct fw_app *a, enum fw_app_note what, const char *x, const char *y)
{
	if (a->notify != NULL)
		a->notify(a, what, x, y, a->notify_arg);
}

static int
from_pcoap(int r)
{
	switch (r) {
	case PCOAP_OK:
		return 0;
	case PCOAP_NOSPACE:
	case PCOAP_TOO_BIG:
		return FW_ERR_TOO_BIG;
	default:
		return FW_ERR_INVAL;
	}
}

/* Queue msgbuf[0..n); a message that took a fresh ID gives it back when
 * it could not be queued, so the device's sequence has no gap (§3.3). */
static int
queue(struct fw_app *a, size_t n, bool fresh_mid)
{
	int r = fw_device_send(&a->dev, msgbuf, n);

	if (r != 0 && fresh_mid)
		a->dev.mid--;
	return r;
}

static int
send_empty_ack(struct fw_app *a, uint16_t mid)
{
	size_t n;
	int r;

	if ((r = pcoap_build_empty_ack(msgbuf, sizeof(msgbuf), &n, mid)) !=
	    PCOAP_OK)
		return from_pcoap(r);
	return queue(a, n, false);
}

/* ACK with a code and the 1-byte token. */
static int
send_ack_code(struct fw_app *a, uint16_t mid, uint8_t code, uint8_t tok,
	      const uint8_t *payload, size_t plen)
{
	size_t n;
	int r;

	if ((r = pcoap_build_reply(msgbuf, sizeof(msgbuf), &n, PCOAP_ACK, code,
				   mid, &tok, 1, payload, plen)) != PCOAP_OK)
		return from_pcoap(r);
	return queue(a, n, false);
}

/* ---- registration ------------------------------------------------------- */

static bool
name_ok(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	return n > 0 && n <= FW_APP_NAME_MAX;
}

int
fw_app_function(struct fw_app *a, const char *name, fw_app_func_cb fn,
		void *ctx)
{
	size_t i;

	if (!name_ok(name) || fn == NULL)
		return FW_ERR_INVAL;
	for (i = 0; i < a->n_funcs; i++)
		if (strcmp(a->funcs[i].name, name) == 0)
			return FW_ERR_INVAL;
	if (a->n_funcs >= FW_APP_MAX_FUNCS)
		return FW_ERR_LIMIT;
	a->funcs[a->n_funcs].name = name;
	a->funcs[a->n_funcs].fn = fn;
	a->funcs[a->n_funcs].ctx = ctx;
	a->n_funcs++;
	return 0;
}

int
fw_app_variable(struct fw_app *a, const char *name, enum fw_var_type type,
		const void *ptr, fw_app_var_cb get, void *ctx)
{
	struct fw_app_var *v;
	size_t i;

	if (!name_ok(name) || (ptr == NULL) == (get == NULL))
		return FW_ERR_INVAL;
	if (type != FW_VAR_BOOL && type != FW_VAR_INT &&
	    type != FW_VAR_STRING && type != FW_VAR_DOUBLE)
		return FW_ERR_INVAL;
	for (i = 0; i < a->n_vars; i++)
		if (strcmp(a->vars[i].name, name) == 0)
			return FW_ERR_INVAL;
	if (a->n_vars >= FW_APP_MAX_VARS)
		return FW_ERR_LIMIT;
	v = &a->vars[a->n_vars++];
	v->name = name;
	v->type = (uint8_t)type;
	v->ptr = ptr;
	v->get = get;
	v->ctx = ctx;
	return 0;
}

static int
add_sub(struct fw_app *a, const char *prefix, enum fw_sub_scope scope,
	const char *device, bool system, fw_app_event_cb fn, void *ctx)
{
	struct fw_app_sub *s;
	size_t plen, i;

	if (prefix == NULL || (plen = strlen(prefix)) == 0 ||
	    plen > FW_APP_FILTER_MAX)
		return FW_ERR_INVAL;
	if (scope == FW_SUB_DEVICE && (device == NULL || strlen(device) != 24))
		return FW_ERR_INVAL;
	if (scope != FW_SUB_ALL && scope != FW_SUB_MINE &&
	    scope != FW_SUB_DEVICE)
		return FW_ERR_INVAL;
	for (i = 0; i < a->n_subs; i++) {
		s = &a->subs[i];
		if (strcmp(s->prefix, prefix) == 0 && s->scope == scope &&
		    (scope != FW_SUB_DEVICE ||
		     strcmp(s->device, device) == 0)) {
			if (!s->system) {
				s->fn = fn;
				s->ctx = ctx;
			}
			return 0;
		}
	}
	if (a->n_subs >= FW_APP_MAX_SUBS)
		return FW_ERR_LIMIT;
	s = &a->subs[a->n_subs++];
	memset(s, 0, sizeof(*s));
	memcpy(s->prefix, prefix, plen + 1);
	s->scope = (uint8_t)scope;
	if (scope == FW_SUB_DEVICE)
		memcpy(s->device, device, 25);
	s->system = system;
	s->fn = fn;
	s->ctx = ctx;
	return 0;
}

int
fw_app_subscribe(struct fw_app *a, const char *prefix, enum fw_sub_scope scope,
		 const char *device, fw_app_event_cb fn, void *ctx)
{
	return add_sub(a, prefix, scope, device, false, fn, ctx);
}

/* ---- Describe ----------------------------------------------------------- */

int
fw_app_describe(struct fw_app *a, uint8_t flags, char *buf, size_t cap,
		size_t *len)
{
	bool app = flags == 0 || (flags & PCOAP_DESCRIBE_APP);
	bool sys = flags == 0 || (flags & PCOAP_DESCRIBE_SYSTEM);
	size_t i;
	int r = FW_ERR_TOO_BIG;

	*len = 0;
	if (cap == 0)
		return FW_ERR_TOO_BIG;
	buf[0] = '\0';
	if (fw_buf_put(buf, cap, len, "{", 1) != 0)
		return r;
	if (app) {
		if (fw_buf_puts(buf, cap, len, "\"f\":[") != 0)
			return r;
		for (i = 0; !a->safe_mode && i < a->n_funcs; i++) {
			if ((i > 0 && fw_buf_put(buf, cap, len, ",", 1) != 0) ||
			    fw_buf_put(buf, cap, len, "\"", 1) != 0 ||
			    fw_buf_put_json(buf, cap, len, a->funcs[i].name) !=
				    0 ||
			    fw_buf_put(buf, cap, len, "\"", 1) != 0)
				return r;
		}
		if (fw_buf_puts(buf, cap, len, "],\"v\":{") != 0)
			return r;
		for (i = 0; !a->safe_mode && i < a->n_vars; i++) {
			if ((i > 0 && fw_buf_put(buf, cap, len, ",", 1) != 0) ||
			    fw_buf_put(buf, cap, len, "\"", 1) != 0 ||
			    fw_buf_put_json(buf, cap, len, a->vars[i].name) !=
				    0 ||
			    fw_buf_put(buf, cap, len, "\":", 2) != 0 ||
			    fw_buf_putu(buf, cap, len, a->vars[i].type) != 0)
				return r;
		}
		if (fw_buf_put(buf, cap, len, "}", 1) != 0)
			return r;
	}
	if (sys) {
		if ((app && fw_buf_put(buf, cap, len, ",", 1) != 0) ||
		    fw_buf_puts(buf, cap, len, "\"p\":") != 0 ||
		    fw_buf_putu(buf, cap, len, a->dev.cfg.platform_id) != 0 ||
		    fw_buf_put(buf, cap, len, ",", 1) != 0 ||
		    fw_modules_json(&a->modules, buf, cap, len) != 0)
			return r;
	}
	if (fw_buf_put(buf, cap, len, "}", 1) != 0)
		return r;
	return 0;
}

static int
describe_cb(struct fw_device *d, uint8_t flags, char *buf, size_t cap,
	    size_t *len, void *arg)
{
	(void)d;
	return fw_app_describe(arg, flags, buf, cap, len);
}

/* ---- publish ------------------------------------------------------------ */

static bool
is_system_event(const char *name)
{
	return strncmp(name, "spark", 5) == 0 ||
	       strncmp(name, "particle", 8) == 0;
}

/* Check (and with take, consume) the rate budget. */
static bool
rate_ok(struct fw_app *a, bool system, bool take)
{
	uint32_t now = a->now;

	if (system) {
		if (time_reached(now, a->sys_window + FW_APP_SYS_WINDOW)) {
			a->sys_window = now;
			a->sys_count = 0;
		}
		if (a->sys_count >= FW_APP_SYS_BURST)
			return false;
		if (take)
			a->sys_count++;
		return true;
	}
	/* The oldest of the last four must be at least a window ago. */
	if (a->user_ts[a->user_ts_pos] != 0 &&
	    !time_reached(now, a->user_ts[a->user_ts_pos] + FW_APP_USER_WINDOW))
		return false;
	if (take) {
		a->user_ts[a->user_ts_pos] = now ? now : 1;
		a->user_ts_pos = (a->user_ts_pos + 1) % FW_APP_USER_BURST;
	}
	return true;
}

int
fw_app_publish(struct fw_app *a, const char *name, const char *data,
	       uint32_t ttl, unsigned flags)
{
	size_t nlen, dlen = data != NULL ? strlen(data) : 0, n;
	bool system;
	uint8_t type;
	int r;

	if (!fw_device_is_ready(&a->dev))
		return FW_ERR_INVAL;
	if (name == NULL || (nlen = strlen(name)) == 0 ||
	    nlen > PCOAP_EVENT_NAME_MAX)
		return FW_ERR_INVAL;
	if (dlen > FW_APP_EVENT_DATA_MAX)
		return FW_ERR_TOO_BIG;
	if (a->ota.active)
		return FW_ERR_BUSY; /* §5.1: no events during an update */
	a->now = a->dev.port->millis(a->dev.port->ctx);
	system = is_system_event(name);
	if (!rate_ok(a, system, false))
		return FW_ERR_LIMIT;
	type = (flags & FW_PUBLISH_WITH_ACK) && !(flags & FW_PUBLISH_NO_ACK)
		       ? PCOAP_CON
		       : PCOAP_NON;
	r = pcoap_build_event(msgbuf, sizeof(msgbuf), &n, type,
			      fw_device_next_mid(&a->dev),
			      (flags & FW_PUBLISH_PRIVATE) != 0, name, nlen,
			      ttl == 0 ? PCOAP_EVENT_TTL_DEFAULT : ttl,
			      (const uint8_t *)data, dlen);
	if (r != PCOAP_OK) {
		a->dev.mid--;
		return from_pcoap(r);
	}
	if ((r = queue(a, n, true)) != 0)
		return r;
	(void)rate_ok(a, system, true);
	return 0;
}

/* ---- subscriptions and received events ---------------------------------- */

static int
send_sub(struct fw_app *a, struct fw_app_sub *s)
{
	size_t n;
	int r;

	r = pcoap_build_subscribe(msgbuf, sizeof(msgbuf), &n,
				  fw_device_next_mid(&a->dev), s->prefix,
				  strlen(s->prefix), s->scope, s->device,
				  s->scope == FW_SUB_DEVICE ? 24 : 0);
	if (r != PCOAP_OK) {
		a->dev.mid--;
		s->sent = true; /* cannot be encoded: do not retry forever */
		return 0;
	}
	if ((r = queue(a, n, true)) != 0)
		return r;
	s->sent = true;
	return 0;
}

/* Send the subscriptions not sent on this connection; FW_ERR_BUSY when the
 * queue filled up (try again next step). */
static int
send_pending_subs(struct fw_app *a)
{
	size_t i;
	int r;

	for (i = 0; i < a->n_subs; i++) {
		if (a->subs[i].sent || (a->safe_mode && !a->subs[i].system))
			continue;
		if ((r = send_sub(a, &a->subs[i])) != 0)
			return r;
	}
	return 0;
}

void
fw_app_request_reset(struct fw_app *a, int mode, const char *reason)
{
	a->reset_pending = true;
	a->reset_mode = mode;
	a->reset_reason = reason;
	if (mode == PORT_RESET_SAFE_MODE)
		a->force_safe_mode = true;
}

static bool
is_true(const char *s)
{
	return strcmp(s, "true") == 0;
}

/* The system's own handling of spark* and particle* events (§3.8). */
static void
system_event(struct fw_app *a, const char *name, const char *data)
{
	if (strcmp(name, "spark/device/reset") == 0) {
		if (strcmp(data, "safe mode") == 0)
			fw_app_request_reset(a, PORT_RESET_SAFE_MODE,
					     "safe mode");
		else if (strcmp(data, "dfu") == 0)
			fw_app_request_reset(a, PORT_RESET_DFU, "dfu");
		else if (strcmp(data, "network") == 0)
			fw_app_request_reset(a, PORT_RESET_NETWORK, "network");
		else if (strcmp(data, "reboot") == 0)
			fw_app_request_reset(a, PORT_RESET_REBOOT, "reboot");
	} else if (strcmp(name, "particle/device/updates/forced") == 0) {
		a->updates_forced = is_true(data);
	} else if (strcmp(name, "particle/device/updates/pending") == 0) {
		a->updates_pending = is_true(data);
	} else if (strcmp(name, "particle/device/updates/enabled") == 0) {
		a->updates_enabled = is_true(data);
	}
}

static bool
prefix_of(const char *prefix, const char *name)
{
	return strncmp(prefix, name, strlen(prefix)) == 0;
}

static void
on_event(struct fw_app *a, const struct pcoap_msg *m)
{
	struct pcoap_event ev;
	size_t i, dlen;
	bool sys_done = false;

	if (m->type != PCOAP_NON && m->type != PCOAP_CON)
		return;
	if (pcoap_parse_event(m, &ev, evname, sizeof(evname)) != PCOAP_OK ||
	    ev.name_len > PCOAP_EVENT_NAME_MAX)
		return; /* Device OS drops what it cannot read */
	dlen = ev.data.len < FW_APP_EVENT_DATA_MAX ? ev.data.len
						   : FW_APP_EVENT_DATA_MAX;
	if (dlen > 0)
		memcpy(evdata, ev.data.p, dlen);
	evdata[dlen] = '\0';
	note(a, FW_NOTE_EVENT, evname, evdata);
	for (i = 0; i < a->n_subs; i++) {
		struct fw_app_sub *s = &a->subs[i];

		if (!prefix_of(s->prefix, evname))
			continue;
		if (s->system) {
			if (!sys_done)
				system_event(a, evname, evdata);
			sys_done = true;
		} else if (s->fn != NULL && !a->safe_mode) {
			s->fn(a, evname, evdata, s->ctx);
		}
	}
}

/* ---- functions and variables -------------------------------------------- */

static const struct fw_app_func *
find_func(const struct fw_app *a, const struct pcoap_view *name)
{
	size_t i;

	if (a->safe_mode)
		return NULL;
	for (i = 0; i < a->n_funcs; i++)
		if (strlen(a->funcs[i].name) == name->len &&
		    memcmp(a->funcs[i].name, name->p, name->len) == 0)
			return &a->funcs[i];
	return NULL;
}

static const struct fw_app_var *
find_var(const struct fw_app *a, const struct pcoap_view *name)
{
	size_t i;

	if (a->safe_mode)
		return NULL;
	for (i = 0; i < a->n_vars; i++)
		if (strlen(a->vars[i].name) == name->len &&
		    memcmp(a->vars[i].name, name->p, name->len) == 0)
			return &a->vars[i];
	return NULL;
}

static int
on_function(struct fw_app *a, const struct pcoap_msg *m)
{
	const struct fw_app_func *f;
	struct pcoap_call c;
	size_t n;
	int32_t result;
	int r;

	if (pcoap_parse_function_call(m, &c) != PCOAP_OK) {
		if (m->token.len == 1)
			return send_ack_code(a, m->mid, PCOAP_CODE_BAD_REQUEST,
					     m->token.p[0], NULL, 0);
		return FW_ERR_PROTO; /* v1.5.2: protocol error (§3.2) */
	}
	if (c.arg.len > FW_APP_ARG_MAX || c.name.len > FW_APP_NAME_MAX)
		return send_ack_code(a, m->mid, PCOAP_CODE_BAD_REQUEST, c.token,
				     NULL, 0);
	if ((r = send_empty_ack(a, m->mid)) != 0)
		return r;
	if ((f = find_func(a, &c.name)) == NULL)
		return 0; /* like 1.5: accepted, never answered */
	memcpy(namebuf, c.name.p, c.name.len);
	namebuf[c.name.len] = '\0';
	if (c.arg.len > 0)
		memcpy(argbuf, c.arg.p, c.arg.len);
	argbuf[c.arg.len] = '\0';
	note(a, FW_NOTE_CALL, namebuf, argbuf);
	result = (int32_t)f->fn(argbuf, f->ctx);
	r = pcoap_build_function_return(msgbuf, sizeof(msgbuf), &n,
					fw_device_next_mid(&a->dev), c.token,
					result);
	if (r != PCOAP_OK) {
		a->dev.mid--;
		return from_pcoap(r);
	}
	return queue(a, n, true);
}

static int
on_variable(struct fw_app *a, const struct pcoap_msg *m)
{
	const struct fw_app_var *v;
	union fw_app_value val;
	struct pcoap_call c;
	uint8_t value[FW_APP_STRING_MAX];
	size_t vlen = 0, n;
	int r;

	if (pcoap_parse_variable(m, &c) != PCOAP_OK) {
		if (m->token.len == 1)
			return send_ack_code(a, m->mid, PCOAP_CODE_BAD_REQUEST,
					     m->token.p[0], NULL, 0);
		return FW_ERR_PROTO;
	}
	if ((v = find_var(a, &c.name)) == NULL)
		return send_ack_code(a, m->mid, PCOAP_CODE_NOT_FOUND, c.token,
				     NULL, 0);
	memset(&val, 0, sizeof(val));
	if (v->get != NULL) {
		memcpy(namebuf, c.name.p, c.name.len);
		namebuf[c.name.len] = '\0';
		v->get(namebuf, &val, v->ctx);
	} else {
		switch (v->type) {
		case FW_VAR_BOOL:
			val.b = *(const bool *)v->ptr;
			break;
		case FW_VAR_INT:
			val.i = *(const int32_t *)v->ptr;
			break;
		case FW_VAR_DOUBLE:
			val.d = *(const double *)v->ptr;
			break;
		default:
			val.s = v->ptr;
			break;
		}
	}
	switch (v->type) {
	case FW_VAR_BOOL:
		r = pcoap_value_encode_bool(val.b, value, sizeof(value), &vlen);
		break;
	case FW_VAR_INT:
		r = pcoap_value_encode_int32(val.i, value, sizeof(value),
					     &vlen);
		break;
	case FW_VAR_DOUBLE:
		r = pcoap_value_encode_double(val.d, value, sizeof(value),
					      &vlen);
		break;
	default:
		vlen = val.s != NULL ? strlen(val.s) : 0;
		if (vlen > sizeof(value))
			vlen = sizeof(value); /* truncated to fit (§3.11) */
		if (vlen > 0)
			memcpy(value, val.s, vlen);
		r = PCOAP_OK;
		break;
	}
	if (r != PCOAP_OK)
		return send_ack_code(a, m->mid, PCOAP_CODE_INTERNAL, c.token,
				     NULL, 0);
	if ((r = send_empty_ack(a, m->mid)) != 0)
		return r;
	r = pcoap_build_variable_reply(msgbuf, sizeof(msgbuf), &n, PCOAP_NON,
				       fw_device_next_mid(&a->dev), c.token,
				       value, vlen);
	if (r != PCOAP_OK) {
		a->dev.mid--;
		return from_pcoap(r);
	}
	return queue(a, n, true);
}

/* ---- dispatch ----------------------------------------------------------- */

static void
on_message(struct fw_device *d, const struct pcoap_msg *m, void *arg)
{
	struct fw_app *a = arg;
	int kind = pcoap_particle_kind(m), r = 0;
	uint8_t tok;
	bool on;

	(void)d;
	switch (kind) {
	case PCOAP_KIND_FUNCTION_CALL:
		r = on_function(a, m);
		break;
	case PCOAP_KIND_VARIABLE:
		r = on_variable(a, m);
		break;
	case PCOAP_KIND_EVENT:
		on_event(a, m);
		break;
	case PCOAP_KIND_SIGNAL:
		if (pcoap_parse_signal(m, &tok, &on) == PCOAP_OK)
			r = send_ack_code(a, m->mid, PCOAP_CODE_CHANGED, tok,
					  NULL, 0);
		break;
	case PCOAP_KIND_KEY_CHANGE:
		if (m->type == PCOAP_CON)
			r = send_empty_ack(a, m->mid);
		break;
	case PCOAP_KIND_UPDATE_BEGIN:
	case PCOAP_KIND_SAVE_BEGIN:
	case PCOAP_KIND_CHUNK:
	case PCOAP_KIND_UPDATE_DONE:
		r = fw_ota_handle(a, m, kind);
		break;
	case PCOAP_KIND_ACK:
	case PCOAP_KIND_EMPTY_ACK:
	case PCOAP_KIND_RST:
	case PCOAP_KIND_RESPONSE:
		break; /* acknowledgements of our CON messages */
	default:
		/* An unknown request: 4.04 so the cloud does not wait. */
		if (m->type == PCOAP_CON && m->code != PCOAP_CODE_EMPTY &&
		    m->code < PCOAP_CODE(2, 0)) {
			size_t n;

			if (pcoap_build_reply(msgbuf, sizeof(msgbuf), &n,
					      PCOAP_ACK, PCOAP_CODE_NOT_FOUND,
					      m->mid, m->token.p, m->token.len,
					      NULL, 0) == PCOAP_OK)
				r = queue(a, n, false);
		}
		break;
	}
	/* A reply that could not be queued cannot be sent later: the queue
	 * is empty when a frame is dispatched, so this is a real failure. */
	if (r != 0)
		fw_device_reconnect(&a->dev, a->now, r);
}

static void
on_ready(struct fw_device *d, void *arg)
{
	struct fw_app *a = arg;
	size_t i;

	d->cfg.hello_flags &= (uint8_t)~PCOAP_HELLO_F_OTA_DONE;
	if (a->ota.active) {
		/* a transfer does not survive its connection */
		memset(&a->ota, 0, sizeof(a->ota));
		note(a, FW_NOTE_OTA_REJECTED, "disconnected", NULL);
	}
	for (i = 0; i < a->n_subs; i++)
		a->subs[i].sent = false;
	a->seq = FW_SEQ_DESCRIBE_POST;
	note(a, FW_NOTE_READY, NULL, NULL);
}

/* ---- lifecycle ---------------------------------------------------------- */

void
fw_app_init(struct fw_app *a, const struct port *p,
	    const struct fw_app_config *cfg)
{
	struct fw_device_config dc = cfg->dev;

	memset(a, 0, sizeof(*a));
	dc.on_message = on_message;
	dc.on_ready = on_ready;
	dc.describe_cb = describe_cb;
	dc.describe = NULL;
	dc.cb_arg = a;
	fw_device_init(&a->dev, p, &dc);
	if (cfg->modules != NULL)
		a->modules = *cfg->modules;
	else
		fw_modules_init(&a->modules);
	a->updates_enabled = cfg->updates_enabled;
	a->fast_ota = cfg->fast_ota;
	a->devos3 = cfg->devos3;
	if (a->devos3) {
		a->dev.cfg.extended_hello = true;
		a->dev.cfg.hello_flags |=
			PCOAP_HELLO_F_GOODBYE | PCOAP_HELLO_F_DEVICE_DESCRIBE;
		a->dev.cfg.system_version =
			fw_modules_system_version(&a->modules);
		a->dev.cfg.max_binary = p->flash_size;
	}
	a->notify = cfg->notify;
	a->notify_arg = cfg->notify_arg;
	(void)add_sub(a, "spark", FW_SUB_MINE, NULL, true, NULL, NULL);
	(void)add_sub(a, "particle", FW_SUB_MINE, NULL, true, NULL, NULL);
}

void
fw_app_start(struct fw_app *a, uint32_t now)
{
	a->now = now;
	a->sys_window = now;
	a->safe_mode = a->force_safe_mode || fw_modules_safe_mode(&a->modules);
	fw_device_start(&a->dev, now);
}

void
fw_app_clear(struct fw_app *a)
{
	size_t i, n = 0;

	a->n_funcs = 0;
	a->n_vars = 0;
	for (i = 0; i < a->n_subs; i++) {
		if (a->subs[i].system)
			a->subs[n++] = a->subs[i];
	}
	a->n_subs = n;
}

static int
post_connect(struct fw_app *a)
{
	char num[12];
	size_t len = 0;
	int r = 0;

	while (a->seq != FW_SEQ_IDLE && a->seq != FW_SEQ_DONE) {
		switch (a->seq) {
		case FW_SEQ_DESCRIBE_POST:
			/* Device OS 2.2+ posts its system part itself. */
			if (a->devos3)
				r = fw_device_post_describe(
					&a->dev, PCOAP_DESCRIBE_SYSTEM);
			break;
		case FW_SEQ_MAX_BINARY:
			if (a->devos3)
				break; /* said in the extended Hello */
			len = 0;
			(void)fw_buf_putu(num, sizeof(num), &len,
					  a->dev.port->flash_size);
			r = fw_app_publish(a, "spark/hardware/max_binary", num,
					   60, FW_PUBLISH_PRIVATE);
			break;
		case FW_SEQ_CHUNK_SIZE:
			if (a->devos3)
				break;
			len = 0;
			(void)fw_buf_putu(num, sizeof(num), &len,
					  fw_device_chunk_size(&a->dev));
			r = fw_app_publish(a, "spark/hardware/ota_chunk_size",
					   num, 60, FW_PUBLISH_PRIVATE);
			break;
		case FW_SEQ_SAFEMODE:
			if (!a->safe_mode)
				break;
			r = fw_app_publish(a, "spark/device/safemode", "", 60,
					   FW_PUBLISH_PRIVATE);
			if (r == 0)
				note(a, FW_NOTE_SAFEMODE, NULL, NULL);
			break;
		case FW_SEQ_SUBS:
			r = send_pending_subs(a);
			break;
		case FW_SEQ_TIME:
			r = fw_device_request_time(&a->dev);
			break;
		default:
			break;
		}
		if (r == FW_ERR_BUSY)
			return 0; /* queue full: continue at the next step */
		a->seq++;
	}
	return 0;
}

/* Device OS reset-reason numbers (system_defs.h) for the Goodbye. */
static uint32_t
reset_reason_code(int mode)
{
	switch (mode) {
	case PORT_RESET_OTA:
		return 70; /* RESET_REASON_UPDATE */
	case PORT_RESET_SAFE_MODE:
		return 110; /* RESET_REASON_SAFE_MODE */
	case PORT_RESET_DFU:
		return 120; /* RESET_REASON_DFU_MODE */
	default:
		return 140; /* RESET_REASON_USER */
	}
}

static void
do_reset(struct fw_app *a, uint32_t now)
{
	const struct port *p = a->dev.port;

	a->reset_pending = false;
	a->goodbye_sent = false;
	note(a, FW_NOTE_RESET, a->reset_reason, NULL);
	if (p->system_reset != NULL)
		p->system_reset(p->ctx, a->reset_mode);
	if (a->reset_mode == PORT_RESET_OTA)
		a->dev.cfg.hello_flags |= PCOAP_HELLO_F_OTA_DONE;
	if (a->reset_mode != PORT_RESET_NETWORK) {
		/* a staged update lands (its slot exists: validated) */
		if (a->staged_set)
			(void)fw_modules_set(&a->modules, &a->staged);
		a->staged_set = false;
		/* a reboot: the app starts again, safe mode re-evaluated */
		a->safe_mode =
			a->force_safe_mode || fw_modules_safe_mode(&a->modules);
		if (a->reset_mode != PORT_RESET_SAFE_MODE)
			a->force_safe_mode = false;
		memset(&a->ota, 0, sizeof(a->ota));
		/* the Hello says what runs now (an update may have landed) */
		a->dev.cfg.system_version =
			fw_modules_system_version(&a->modules);
	}
	a->seq = FW_SEQ_IDLE;
	fw_device_reconnect(&a->dev, now, FW_ERR_RESET);
}

int
fw_app_step(struct fw_app *a, uint32_t now)
{
	int i, r = 0;

	a->now = now;
	for (i = 0; i < 4; i++) {
		uint16_t mid = a->dev.mid;
		enum fw_app_seq seq = a->seq;

		if ((r = fw_device_step(&a->dev, now)) != 0)
			return r;
		if (!fw_device_is_ready(&a->dev))
			break;
		if (a->reset_pending) {
			if (a->devos3 && !a->goodbye_sent) {
				/* the Goodbye goes out before the reset */
				a->goodbye_sent = true;
				(void)fw_device_goodbye(
					&a->dev,
					reset_reason_code(a->reset_mode));
				continue;
			}
			if (fw_device_tx_idle(&a->dev))
				do_reset(a, now);
			break;
		}
		if (a->seq != FW_SEQ_DONE)
			post_connect(a);
		else
			(void)send_pending_subs(a);
		fw_ota_timer(a, now);
		/* something new queued: flush it within this step */
		if (mid == a->dev.mid && seq == a->seq)
			break;
	}
	return 0;
}
