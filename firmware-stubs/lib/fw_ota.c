/* SPDX-License-Identifier: MIT */
/*
 * OTA receive (protocol.md §5): UpdateBegin → empty ACK + UpdateReady;
 * chunks checked with CRC-32 and written to the port's flash area (normal
 * mode: empty ACK + ChunkReceived; fast mode: a bitmap, no replies);
 * UpdateDone → ChunkMissed while chunks are missing, otherwise the image
 * is validated (§5.8) and installed into the module table, and the
 * device resets with Hello flag 0x01. Bad images are refused with ACK
 * 4.00 and the old module stays.
 */
#include "config.h"

#include <string.h>

#include "coap/pcoap.h"
#include "fw_app.h"
#include "fw_crc32.h"
#include "fw_err.h"
#include "fw_util.h"

#define PLAIN_MAX (FW_DEVICE_BUF - 2 - 16)

FW_SCRATCH uint8_t otabuf[PLAIN_MAX];
FW_SCRATCH char jsonbuf[256];

static void
note(struct fw_app *a, enum fw_app_note what, const char *x, const char *y)
{
	if (a->notify != NULL)
		a->notify(a, what, x, y, a->notify_arg);
}

static int
queue(struct fw_app *a, int built, size_t n, bool fresh_mid)
{
	int r;

	if (built != PCOAP_OK) {
		if (fresh_mid)
			a->dev.mid--;
		return FW_ERR_INTERNAL;
	}
	r = fw_device_send(&a->dev, otabuf, n);
	if (r != 0 && fresh_mid)
		a->dev.mid--;
	return r;
}

static int
ack(struct fw_app *a, uint16_t mid, uint8_t code, const uint8_t *tok,
    const char *payload)
{
	size_t n;
	int r;

	if (code == PCOAP_CODE_EMPTY)
		r = pcoap_build_empty_ack(otabuf, sizeof(otabuf), &n, mid);
	else
		r = pcoap_build_reply(otabuf, sizeof(otabuf), &n, PCOAP_ACK,
				      code, mid, tok, tok != NULL ? 1 : 0,
				      (const uint8_t *)payload,
				      payload != NULL ? strlen(payload) : 0);
	return queue(a, r, n, false);
}

static bool
map_get(const struct fw_app_ota *o, uint16_t i)
{
	return (o->map[i / 8] >> (i % 8)) & 1;
}

static void
map_set(struct fw_app_ota *o, uint16_t i)
{
	o->map[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void
abort_ota(struct fw_app *a, const char *why)
{
	memset(&a->ota, 0, sizeof(a->ota));
	note(a, FW_NOTE_OTA_REJECTED, why, NULL);
}

static int
update_begin(struct fw_app *a, const struct pcoap_msg *m)
{
	const struct port *p = a->dev.port;
	struct pcoap_update_begin ub;
	struct fw_app_ota *o = &a->ota;
	uint32_t chunks;
	uint8_t tok;
	char size[24];
	size_t n, len = 0;
	int r;

	if (pcoap_parse_update_begin(m, &tok, &ub) != PCOAP_OK) {
		if (m->token.len != 1)
			return FW_ERR_PROTO;
		return ack(a, m->mid, PCOAP_CODE_BAD_REQUEST, m->token.p, NULL);
	}
	if (!a->updates_enabled && !a->updates_forced) {
		note(a, FW_NOTE_OTA_REJECTED, "disabled", NULL);
		return ack(a, m->mid, PCOAP_CODE_UNAVAILABLE, &tok, NULL);
	}
	if (ub.file_size == 0)
		ub.file_size = p->flash_size;
	chunks = ub.chunk_size == 0
			 ? 0
			 : (ub.file_size + ub.chunk_size - 1) / ub.chunk_size;
	if (ub.chunk_size == 0 || ub.chunk_size > PCOAP_DEVICE_RX_MAX ||
	    ub.file_size > p->flash_size || chunks == 0 ||
	    chunks > FW_APP_OTA_MAX_CHUNKS || ub.store != 0 ||
	    ub.address != 0) {
		note(a, FW_NOTE_OTA_REJECTED, "parameters", NULL);
		return ack(a, m->mid, PCOAP_CODE_BAD_REQUEST, &tok, NULL);
	}
	if (p->flash_erase == NULL ||
	    p->flash_erase(p->ctx, 0, ub.file_size) != 0) {
		note(a, FW_NOTE_OTA_REJECTED, "flash", NULL);
		return ack(a, m->mid, PCOAP_CODE_INTERNAL, &tok, NULL);
	}
	memset(o, 0, sizeof(*o));
	o->active = true;
	o->fast = (ub.flags & PCOAP_UPDATE_F_FAST) && a->fast_ota;
	o->chunk_size = ub.chunk_size;
	o->file_size = ub.file_size;
	o->n_chunks = (uint16_t)chunks;
	o->last_at = a->now;
	if ((r = ack(a, m->mid, PCOAP_CODE_EMPTY, NULL, NULL)) != 0)
		return r;
	r = pcoap_build_update_ready(otabuf, sizeof(otabuf), &n,
				     fw_device_next_mid(&a->dev), tok,
				     o->fast ? 1 : 0);
	if ((r = queue(a, r, n, true)) != 0)
		return r;
	/* "file size/chunk size" */
	(void)fw_buf_putu(size, sizeof(size), &len, ub.file_size);
	(void)fw_buf_put(size, sizeof(size), &len, "/", 1);
	(void)fw_buf_putu(size, sizeof(size), &len, ub.chunk_size);
	note(a, FW_NOTE_OTA_BEGIN, o->fast ? "fast" : "normal", size);
	return 0;
}

/* Store one chunk; false when it does not belong to the image. */
static bool
store_chunk(struct fw_app *a, uint16_t idx, const struct pcoap_view *data)
{
	const struct port *p = a->dev.port;
	struct fw_app_ota *o = &a->ota;
	uint32_t off = (uint32_t)idx * o->chunk_size;
	size_t len = data->len;

	if (idx >= o->n_chunks || len == 0 || len > o->chunk_size)
		return false;
	if (len > o->file_size - off)
		len = o->file_size - off; /* padded last chunk */
	if (map_get(o, idx))
		return true; /* duplicate: already stored */
	if (p->flash_write(p->ctx, off, data->p, len) != 0)
		return false;
	map_set(o, idx);
	o->received++;
	return true;
}

static int
chunk(struct fw_app *a, const struct pcoap_msg *m)
{
	struct fw_app_ota *o = &a->ota;
	struct pcoap_chunk c;
	bool ok;
	size_t n;
	uint16_t idx;
	int r;

	if (pcoap_parse_chunk(m, &c) != PCOAP_OK)
		return 0; /* unreadable: the UpdateDone check finds it */
	if (!o->active) {
		if (m->type == PCOAP_CON && !c.has_index)
			return ack(a, m->mid, PCOAP_CODE_EMPTY, NULL, NULL);
		return 0;
	}
	o->last_at = a->now;
	ok = fw_crc32(0, c.data.p, c.data.len) == c.crc;
	idx = c.has_index ? c.index : o->next;
	if (ok)
		ok = store_chunk(a, idx, &c.data);
	if (o->fast && c.has_index)
		return 0; /* fast mode: the bitmap is the only record */
	if (ok && !c.has_index)
		o->next++;
	if (m->type == PCOAP_CON &&
	    (r = ack(a, m->mid, PCOAP_CODE_EMPTY, NULL, NULL)) != 0)
		return r;
	r = pcoap_build_chunk_received(otabuf, sizeof(otabuf), &n,
				       fw_device_next_mid(&a->dev), c.token,
				       ok);
	return queue(a, r, n, true);
}

/* Read the image in small blocks for the CRC. */
FW_SCRATCH uint8_t readbuf[64];

int
fw_ota_validate(struct fw_app *a, uint32_t file_size, struct fw_module *out)
{
	const struct port *p = a->dev.port;
	const struct fw_module *slot;
	struct fw_module_info mi;
	uint32_t crc = 0, off, want, mlen;
	uint16_t suffix;
	size_t n;

	if (file_size < FW_MOD_PREFIX_LEN + 4 + 38)
		return FW_ERR_MALFORMED;
	if (p->flash_read(p->ctx, 0, readbuf, FW_MOD_PREFIX_LEN) != 0)
		return FW_ERR_IO;
	if (fw_module_parse_prefix(readbuf, &mi) != 0)
		return FW_ERR_MALFORMED;
	mlen = mi.end - mi.start;
	if (mlen != file_size - 4)
		return FW_ERR_MALFORMED;
	for (off = 0; off < mlen; off += (uint32_t)n) {
		n = mlen - off < sizeof(readbuf) ? mlen - off : sizeof(readbuf);
		if (p->flash_read(p->ctx, off, readbuf, n) != 0)
			return FW_ERR_IO;
		crc = fw_crc32(crc, readbuf, n);
	}
	if (p->flash_read(p->ctx, mlen, readbuf, 4) != 0)
		return FW_ERR_IO;
	want = fw_get_be32(readbuf);
	if (crc != want)
		return FW_ERR_CRYPTO;
	if (mi.platform_id != a->dev.cfg.platform_id)
		return FW_ERR_INVAL;
	if ((slot = fw_modules_find(&a->modules, mi.func, mi.index)) == NULL)
		return FW_ERR_INVAL;
	if (mi.start != slot->addr || mlen > slot->size)
		return FW_ERR_INVAL; /* RANGE */
	*out = *slot;
	out->version = mi.version;
	out->deps[0] = mi.deps[0];
	out->deps[1] = mi.deps[1];
	if (mi.func == FW_MOD_USER) {
		/* the suffix ends the module: size (LE) at end - 2 */
		if (p->flash_read(p->ctx, mlen - 2, readbuf, 2) != 0)
			return FW_ERR_IO;
		suffix = (uint16_t)(readbuf[0] | readbuf[1] << 8);
		if (suffix < 36 || suffix > mlen - FW_MOD_PREFIX_LEN)
			return FW_ERR_MALFORMED;
		if (p->flash_read(p->ctx, mlen - 34, out->hash,
				  FW_MOD_HASH_LEN) != 0)
			return FW_ERR_IO;
		out->has_hash = true;
	} else if (!fw_modules_deps_met(&a->modules, out)) {
		/* a system part must not break the chain (DEPENDENCIES_FULL);
		 * a user part's dependencies are optional (§4.4) */
		return FW_ERR_INVAL;
	}
	return 0;
}

static const char *
reason(int r)
{
	switch (r) {
	case FW_ERR_CRYPTO:
		return "crc";
	case FW_ERR_MALFORMED:
		return "header";
	case FW_ERR_INVAL:
		return "module";
	default:
		return "flash";
	}
}

static int
send_missed(struct fw_app *a)
{
	struct fw_app_ota *o = &a->ota;
	uint16_t idx[FW_APP_MISSED_MAX];
	size_t k = 0, n;
	uint16_t i;
	int r;

	for (i = 0; i < o->n_chunks && k < FW_APP_MISSED_MAX; i++)
		if (!map_get(o, i))
			idx[k++] = i;
	r = pcoap_build_chunk_missed(otabuf, sizeof(otabuf), &n, PCOAP_CON,
				     fw_device_next_mid(&a->dev), idx, k);
	return queue(a, r, n, true);
}

static int
update_done(struct fw_app *a, const struct pcoap_msg *m)
{
	struct fw_app_ota *o = &a->ota;
	struct fw_module mod;
	char ver[12], cnt[12], fn[8];
	size_t len = 0;
	int r;

	if (m->token.len != 1)
		return m->type == PCOAP_CON ? FW_ERR_PROTO : 0;
	if (!o->active)
		return ack(a, m->mid, PCOAP_CODE_BAD_REQUEST, m->token.p, NULL);
	if (o->received < o->n_chunks) {
		if ((r = ack(a, m->mid, PCOAP_CODE_BAD_REQUEST, m->token.p,
			     NULL)) != 0)
			return r;
		return send_missed(a);
	}
	(void)fw_buf_putu(cnt, sizeof(cnt), &len, o->n_chunks);
	note(a, FW_NOTE_OTA_DONE, cnt, NULL);
	if ((r = fw_ota_validate(a, o->file_size, &mod)) != 0) {
		abort_ota(a, reason(r));
		return ack(a, m->mid, PCOAP_CODE_BAD_REQUEST, m->token.p, NULL);
	}
	/* §5.6: {"r":"ok","u":<the staged module>} */
	len = 0;
	mod.loc = 't';
	if (fw_buf_puts(jsonbuf, sizeof(jsonbuf), &len,
			"{\"r\":\"ok\",\"u\":") != 0 ||
	    fw_modules_json_one(&mod, mod.vc, a->dev.cfg.platform_id, jsonbuf,
				sizeof(jsonbuf), &len) != 0 ||
	    fw_buf_put(jsonbuf, sizeof(jsonbuf), &len, "}", 1) != 0)
		jsonbuf[0] = '\0';
	if ((r = ack(a, m->mid, PCOAP_CODE_CHANGED, m->token.p,
		     jsonbuf[0] != '\0' ? jsonbuf : NULL)) != 0)
		return r;
	/* Installed by the reset, as Device OS's bootloader does: until
	   then a Describe still lists the module it replaces. */
	mod.loc = 'm';
	a->staged = mod;
	a->staged_set = true;
	memset(o, 0, sizeof(*o));
	fn[0] = fw_module_func_char(mod.func);
	fn[1] = '/';
	len = 2;
	(void)fw_buf_putu(fn, sizeof(fn), &len, mod.index);
	len = 0;
	(void)fw_buf_putu(ver, sizeof(ver), &len, mod.version);
	note(a, FW_NOTE_OTA_INSTALLED, fn, ver);
	fw_app_request_reset(a, PORT_RESET_OTA, "ota");
	return 0;
}

int
fw_ota_handle(struct fw_app *a, const struct pcoap_msg *m, int kind)
{
	switch (kind) {
	case PCOAP_KIND_UPDATE_BEGIN:
	case PCOAP_KIND_SAVE_BEGIN:
		return update_begin(a, m);
	case PCOAP_KIND_CHUNK:
		return chunk(a, m);
	case PCOAP_KIND_UPDATE_DONE:
		return update_done(a, m);
	default:
		return 0;
	}
}

void
fw_ota_timer(struct fw_app *a, uint32_t now)
{
	if (a->ota.active &&
	    (int32_t)(now - (a->ota.last_at + FW_APP_OTA_TIMEOUT)) >= 0)
		abort_ota(a, "timeout");
}
