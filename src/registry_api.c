/* SPDX-License-Identifier: MIT */
/*
 * What the API asks of one device's session (registry.h): whether it is
 * online and what it described, calls, variable reads, signals and
 * describe refreshes (their answers come back through
 * registry_req_finish()), events sent to it, its owner and cached key,
 * and firmware over the air paced by the socket's output. Loop thread
 * only.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "healer/ota.h"
#include "hmap.h"
#include "log.h"
#include "registry.h"
#include "registry_int.h"
#include "session.h"
#include "xmalloc.h"

/* ------------------------------------------------------------------ */
/* Requests from the API.                                             */

void
registry_req_finish(struct registry *reg, uint64_t req_id,
		    const struct session_result *res)
{
	struct pending_req *p = hmap_remove(reg->reqs, &req_id, sizeof(req_id));

	if (p == NULL)
		return; /* cancelled */
	p->cb(req_id, res, p->arg);
	free(p);
}

static struct devconn *
ready_conn(const struct registry *reg, const char *device_id)
{
	struct devconn *c;

	if (device_id == NULL || strlen(device_id) != DEVICE_ID_HEX)
		return NULL;
	c = hmap_get(reg->devices, device_id, DEVICE_ID_HEX);
	if (c == NULL || c->state != DC_FRAMED || c->session == NULL ||
	    session_state(c->session) != SESSION_READY)
		return NULL;
	return c;
}

bool
registry_is_online(const struct registry *reg, const char *device_id)
{
	return ready_conn(reg, device_id) != NULL;
}

bool
registry_describe_now(const struct registry *reg, const char *device_id,
		      uint64_t *gen, const char **functions,
		      const char **variables)
{
	const struct devconn *c = ready_conn(reg, device_id);
	const struct desc_blob *b;

	if (c == NULL)
		return false;
	/* connection ids are never reused and stay far below 2^48 */
	*gen = c->id << 16 | c->desc_gen;
	b = c->describe != NULL ? registry_desc_of(c->describe) : NULL;
	*functions = b != NULL ? b->functions : NULL;
	*variables = b != NULL ? b->variables : NULL;
	return true;
}

bool
registry_device_now(const struct registry *reg, const char *device_id,
		    struct registry_device_now *out)
{
	const struct devconn *c = ready_conn(reg, device_id);
	const struct desc_blob *b;
	struct timespec ts;
	uint64_t wall, mono;

	if (c == NULL)
		return false;
	out->gen = c->id << 16 | c->desc_gen;
	b = c->describe != NULL ? registry_desc_of(c->describe) : NULL;
	out->functions = b != NULL ? b->functions : NULL;
	out->variables = b != NULL ? b->variables : NULL;
	out->describe = b != NULL ? b->d : NULL;
	out->owner_id = c->owner_id;
	out->owner_sure = c->owner_sure;
	out->product_sure = c->owner_sure && c->online &&
			    registry_pres_product(c, &out->product_id);
	if (!out->product_sure)
		out->product_id = 0;
	/* the clocks' offset in microseconds, so that a time read twice
	   gives the same millisecond (both clocks read in milliseconds,
	   it could be one off) */
	clock_gettime(CLOCK_REALTIME, &ts);
	wall = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mono = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	out->heard_ms = (c->last_rx_ms * 1000 + wall - mono) / 1000;
	out->handshake_ms =
		((c->ready_ms != 0 ? c->ready_ms : c->opened_ms) * 1000 + wall -
		 mono) /
		1000;
	return true;
}

/*
 * An API describe refresh: share the one in flight, start one if none
 * ran in the last REFRESH_INTERVAL_MS, else CINDER_ERR_BUSY (the caller
 * answers from what it has: a client cannot make us hammer the device).
 */
static int
conn_refresh_describe(struct devconn *c, uint64_t id, uint64_t now)
{
	struct devconn_refresh *rf;
	int r;

	if (c->refresh == NULL)
		c->refresh = xcalloc(1, sizeof(*c->refresh));
	rf = c->refresh;
	if (rf->req != 0) {
		if (rf->n_waiters >= REFRESH_WAITERS_MAX)
			return CINDER_ERR_BUSY;
		/* Allocated while a refresh has waiters only. */
		if (rf->waiters == NULL)
			rf->waiters = xcalloc(REFRESH_WAITERS_MAX,
					      sizeof(*rf->waiters));
		rf->waiters[rf->n_waiters++] = id;
		return 0;
	}
	if (rf->last_ms != 0 && now - rf->last_ms < REFRESH_INTERVAL_MS)
		return CINDER_ERR_BUSY;
	r = session_request_describe(c->session, id, 0, now,
				     REFRESH_TIMEOUT_MS);
	if (r != 0)
		return r;
	rf->req = id;
	rf->last_ms = now;
	log_ctx(LOG_LEVEL_DEBUG, c->logctx, "refreshing the describe");
	return 0;
}

int
registry_request(struct registry *reg, const char *device_id,
		 enum session_req_kind kind, const char *name, const char *arg,
		 uint32_t timeout_ms, registry_done_cb cb, void *cbarg,
		 uint64_t *req_id)
{
	struct devconn *c = ready_conn(reg, device_id);
	struct pending_req *p;
	uint64_t id, now = registry_now_ms();
	int r;

	*req_id = 0;
	if (c == NULL)
		return CINDER_ERR_NOTFOUND;
	id = ++reg->next_req_id;
	p = xcalloc(1, sizeof(*p));
	p->req_id = id;
	p->conn_id = c->id;
	p->cb = cb;
	p->arg = cbarg;
	hmap_put(reg->reqs, &id, sizeof(id), p, NULL);
	switch (kind) {
	case SESSION_REQ_FUNCTION:
		r = session_request_function(c->session, id, name,
					     arg ? arg : "", now, timeout_ms);
		break;
	case SESSION_REQ_VARIABLE:
		r = session_request_variable(c->session, id, name, now,
					     timeout_ms);
		break;
	case SESSION_REQ_SIGNAL:
		r = session_request_signal(c->session, id,
					   arg != NULL && strcmp(arg, "0") != 0,
					   now, timeout_ms);
		break;
	case SESSION_REQ_DESCRIBE:
		r = conn_refresh_describe(c, id, now);
		break;
	default:
		r = CINDER_ERR_INVAL;
		break;
	}
	if (r != 0) {
		hmap_remove(reg->reqs, &id, sizeof(id));
		free(p);
		return r;
	}
	/* The new request's deadline may be earlier than the timer's. A
	   describe refresh has its own timeout (and may have been sent
	   anyway): a full tick finds it. */
	if (kind == SESSION_REQ_DESCRIBE)
		registry_conn_timer_cb(-1, 0, c);
	else
		registry_timer_request(c, now, timeout_ms);
	*req_id = id;
	return 0;
}

void
registry_request_cancel(struct registry *reg, uint64_t req_id)
{
	free(hmap_remove(reg->reqs, &req_id, sizeof(req_id)));
}

int
registry_send_event(struct registry *reg, const char *device_id,
		    const char *name, const uint8_t *data, size_t len,
		    uint32_t ttl, bool is_private)
{
	struct devconn *c = ready_conn(reg, device_id);

	if (c == NULL)
		return CINDER_ERR_NOTFOUND;
	return session_send_event(c->session, name, data, len, ttl, is_private);
}

void
registry_forget_key(struct registry *reg, const char *device_id)
{
	registry_hs_key_entry_free(
		hmap_remove(reg->keys, device_id, DEVICE_ID_HEX));
}

void
registry_set_owner(struct registry *reg, const char *device_id,
		   int64_t owner_id)
{
	struct devconn *c;

	if (device_id == NULL || strlen(device_id) != DEVICE_ID_HEX)
		return;
	if ((c = hmap_get(reg->devices, device_id, DEVICE_ID_HEX)) == NULL ||
	    c->owner_id == owner_id)
		return;
	c->owner_id = owner_id;
	if (reg->owner_cb != NULL)
		reg->owner_cb(c->id, c->idhex, owner_id, reg->owner_arg);
}

int64_t
registry_owner(const struct registry *reg, const char *device_id)
{
	struct devconn *c = ready_conn(reg, device_id);

	return c != NULL ? c->owner_id : -1;
}

int
registry_ota_limits(const struct registry *reg, const char *device_id,
		    uint32_t *max_binary, uint16_t *chunk_size)
{
	struct devconn *c = ready_conn(reg, device_id);

	*max_binary = 0;
	*chunk_size = 0;
	if (c == NULL)
		return CINDER_ERR_NOTFOUND;
	*max_binary = c->max_binary;
	*chunk_size = c->chunk_size;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Firmware over the air (protocol.md §5).                            */

/* Chunk bytes a transfer may have queued on one socket: enough to keep
   the link busy, small enough that a slow device never buffers the
   image (1,000 transfers hold at most 16 MB of output). */
#define FLASH_OUT_BUDGET (16 * 1024)
/* Framing and AES padding a plaintext message gains on the wire. */
#define FLASH_FRAME_SLACK 64

struct flash_ctx {
	struct registry *reg;		   /* lives longer than any flash */
	uint64_t flash_id;		   /* the id the caller holds */
	uint64_t conn_id;		   /* the connection it runs on */
	char device_id[DEVICE_ID_HEX + 1]; /* for the report */
	registry_flash_cb cb;		   /* caller's callback */
	void *arg;			   /* caller's argument */
};

/* The output budget: what the socket's buffer still takes. */
static size_t
flash_space(void *arg)
{
	struct flash_ctx *f = arg;
	struct devconn *c = registry_conn_get(f->reg, f->conn_id);
	size_t queued;

	if (c == NULL || c->state != DC_FRAMED)
		return 0;
	queued = c->out_len;
	if (queued + FLASH_FRAME_SLACK >= FLASH_OUT_BUDGET)
		return 0;
	return FLASH_OUT_BUDGET - queued - FLASH_FRAME_SLACK;
}

static void
flash_report(void *arg, const struct ota_report *r)
{
	struct flash_ctx *f = arg;

	if (f->cb != NULL)
		f->cb(f->flash_id, f->device_id, r, f->arg);
	if (r->ev == OTA_EV_SUCCESS || r->ev == OTA_EV_FAILED)
		free(f);
}

/* Queued output went out: below half the budget, send more chunks. */
void
registry_conn_drained(struct devconn *c)
{
	if (!c->flashing || c->out_len > FLASH_OUT_BUDGET / 2)
		return;
	if (c->state != DC_FRAMED || c->session == NULL ||
	    !session_ota_active(c->session))
		return;
	session_ota_pump(c->session, registry_now_ms());
	registry_conn_timer_cb(-1, 0,
			       c); /* a normal-mode reply deadline moved */
}

int
registry_flash(struct registry *reg, const char *device_id,
	       struct ota_image *img, const struct ota_params *p,
	       registry_flash_cb cb, void *arg, uint64_t *flash_id)
{
	struct devconn *c = ready_conn(reg, device_id);
	struct ota_params par = {.fast = true};
	struct flash_ctx *f;
	uint64_t id;
	int r;

	*flash_id = 0;
	if (c == NULL)
		return CINDER_ERR_NOTFOUND;
	if (p != NULL)
		par = *p;
	/* What the device said (Hello or spark/hardware/\*), unless the
	   caller knows better. */
	if (par.chunk_size == 0)
		par.chunk_size = c->chunk_size;
	if (par.max_binary == 0)
		par.max_binary = c->max_binary;
	id = ++reg->next_req_id;
	f = xcalloc(1, sizeof(*f));
	f->reg = reg;
	f->flash_id = id;
	f->conn_id = c->id;
	memcpy(f->device_id, c->idhex, sizeof(f->device_id));
	f->cb = cb;
	f->arg = arg;
	c->flashing = true;
	*flash_id = id;
	r = session_ota_start(c->session, img, &par, flash_space, flash_report,
			      f, registry_now_ms());
	if (r != 0) {
		*flash_id = 0;
		free(f);
		return r;
	}
	/* f may be gone already (a final report); c is still ours. */
	log_ctx(LOG_LEVEL_INFO, c->logctx, "flash %llu: %zu bytes",
		(unsigned long long)id, img->len);
	registry_conn_timer_cb(-1, 0, c);
	return 0;
}
