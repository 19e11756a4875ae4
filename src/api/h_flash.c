/* SPDX-License-Identifier: MIT */
/*
 * Flash API (docs/rest-api.md): PUT /v1/devices/:idOrName with a
 * multipart "file" part, what `particle flash DEVICE file.bin` sends.
 * h_device_put() (h_devices.c) hands such requests to h_device_flash().
 *
 * The binary is checked before anything reaches the device: a module
 * file with a good CRC and SHA-256 (module_parse()), the device's
 * platform, and no larger than the device's largest binary. Each failure
 * is a 400 naming the check ("code") and the device is untouched. The
 * device must be online here; only its owner or an administrator may
 * flash it (another user's device is not found). The image is stored
 * (fwstore, by SHA-256), put in the shared image cache (otacache.h:
 * one copy per binary; 503 ota_cache_full past ota_image_cache_mb),
 * then sent (healer_flash(), which publishes
 * spark/flash/status); the answer comes as soon as the transfer started:
 * {"id":..., "status":"Update started"}.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "err.h"
#include "healer/fwstore.h"
#include "healer/healer.h"
#include "healer/module.h"
#include "healer/ota.h"
#include "healer/otacache.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "xmalloc.h"

/* The device, owner-scoped ($1 caller, $2 admin, $3 id or name). */
static const char flash_dev_sql[] =
	"SELECT d.device_id, d.platform_id, COALESCE(d.owner_id, 0) "
	"FROM devices d WHERE (d.owner_id = $1::bigint OR $2::bool) "
	"AND (d.device_id = lower($3) OR d.name = $3) "
	"ORDER BY (d.device_id = lower($3)) DESC LIMIT 1";

struct flreq {
	struct rest *r;
	uint64_t id;
	char *fname;	/* client's file name */
	uint8_t *bytes; /* the file, owned until the image takes it */
	size_t len;
	struct module_info mi;
	int64_t uid;
	char device_id[32];
	int64_t owner_id;
	char logctx[32];
};

static void
flreq_free(struct flreq *f)
{
	free(f->fname);
	free(f->bytes);
	free(f);
}

static json_t *
flash_refusal(const char *code, const char *msg)
{
	return json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "error", msg,
			 "error_description", msg, "code", code);
}

static int
refuse_now(struct http_request *req, const char *code, const char *msg)
{
	log_info("%s: flash refused: %s", http_request_log_ctx(req), msg);
	return http_respond_json(req, 400, flash_refusal(code, msg));
}

static void
refuse_later(struct flreq *f, int status, const char *code, const char *msg)
{
	log_info("%s: flash refused: %s", f->logctx, msg);
	http_request_resume_with(f->r->http, f->id, status,
				 flash_refusal(code, msg));
}

/* Stored: send it. */
static void
flash_stored(int err, bool created, const uint8_t sha256[32], void *arg)
{
	struct flreq *f = arg;
	struct ota_cache *cache;
	struct ota_image *img;
	int rc;

	(void)created;
	if (err != 0) {
		rest_fail_err(f->r->http, f->id, err);
		goto out;
	}
	if (f->r->healer == NULL) {
		rest_fail_err(f->r->http, f->id, CINDER_ERR_UNAVAILABLE);
		goto out;
	}
	/* One copy per binary, shared by every device it is sent to. */
	cache = healer_images(f->r->healer);
	rc = ota_cache_put(cache, sha256, f->bytes, f->len, true, &img);
	f->bytes = NULL;
	if (rc != 0) {
		log_warn("%s: flash refused: the OTA image cache is full (%zu "
			 "of %zu bytes; ota_image_cache_mb)",
			 f->logctx, ota_cache_bytes(cache),
			 ota_cache_max(cache));
		http_request_resume_with(
			f->r->http, f->id, 503,
			flash_refusal("ota_cache_full",
				      "Too many different firmware images are "
				      "being sent at once: try again when a "
				      "running flash has finished"));
		goto out;
	}
	rc = healer_flash(f->r->healer, f->device_id, f->owner_id, img);
	ota_image_unref(img);
	switch (rc) {
	case 0:
		log_notice("%s: user %lld flashes %s (%s v%u, %zu bytes) to "
			   "device %s",
			   f->logctx, (long long)f->uid, f->fname,
			   module_func_name(f->mi.func), f->mi.version, f->len,
			   f->device_id);
		http_request_resume_with(f->r->http, f->id, 200,
					 json_pack("{s:s, s:s}", "id",
						   f->device_id, "status",
						   "Update started"));
		break;
	case CINDER_ERR_NOTFOUND:
		refuse_later(f, 400, "offline",
			     "Device is offline: it must be connected to be "
			     "flashed");
		break;
	case CINDER_ERR_BUSY:
		refuse_later(f, 400, "busy",
			     "This device is locked during the flashing "
			     "process: a flash is already running");
		break;
	case CINDER_ERR_TOO_BIG:
		refuse_later(f, 400, "too_big",
			     "The binary is larger than the device accepts");
		break;
	default:
		rest_fail_err(f->r->http, f->id, rc);
		break;
	}
out:
	flreq_free(f);
}

/* The owner-scoped device row arrived: answer the failures (store
   error, 404) and @return false, or true with a row to read. */
static bool
device_found(struct rest *r, uint64_t id, int rc,
	     const struct store_result *res)
{
	if (rc != 0) {
		rest_fail_err(r->http, id, rc);
		return false;
	}
	if (store_result_ntuples(res) < 1) {
		http_request_resume_with(r->http, id, 404,
					 json_pack("{s:b, s:s}", "ok", 0,
						   "error", "No device found"));
		return false;
	}
	return true;
}

/* Queue an owner-scoped device query ($1 caller, $2 admin, $3 :id).
   @return 0 (cb will run) or the store's error (it will not) */
static int
device_query(struct http_request *req, struct rest *r, const char *sql,
	     store_done_cb cb, void *arg)
{
	const struct auth_user *au = auth_user_of(req);
	const char *key = http_request_param(req, "id");
	const char *params[3];
	char uid[24];

	snprintf(uid, sizeof(uid), "%lld", (long long)au->id);
	params[0] = uid;
	params[1] = au->is_admin ? "t" : "f";
	params[2] = key != NULL ? key : "";
	return store_query(r->store, STORE_Q_READ, sql, 3, params, cb, arg,
			   NULL);
}

static void
flash_device_row(int rc, const struct store_result *res, void *arg)
{
	struct flreq *f = arg;
	struct fwstore_image fi;
	uint32_t max_binary = 0;
	uint16_t chunk = 0;
	const char *pid;
	long platform;
	char msg[MODULE_ERRLEN + 80];

	if (!device_found(f->r, f->id, rc, res))
		goto fail;
	snprintf(f->device_id, sizeof(f->device_id), "%s",
		 store_result_value(res, 0, 0));
	pid = store_result_value(res, 0, 1);
	platform = pid != NULL && *pid ? strtol(pid, NULL, 10) : -1;
	f->owner_id = strtoll(store_result_value(res, 0, 2), NULL, 10);
	if (platform >= 0 && platform != f->mi.platform_id) {
		snprintf(msg, sizeof(msg),
			 "%s: wrong platform: the binary is for platform %u "
			 "(%s), the device is platform %ld (%s)",
			 f->fname, f->mi.platform_id,
			 module_platform_name(f->mi.platform_id) ?: "unknown",
			 platform,
			 module_platform_name((uint16_t)platform) ?: "unknown");
		refuse_later(f, 400, "wrong_platform", msg);
		goto fail;
	}
	if (registry_ota_limits(f->r->reg, f->device_id, &max_binary, &chunk) !=
	    0) {
		refuse_later(f, 400, "offline",
			     "Device is offline: it must be connected to be "
			     "flashed");
		goto fail;
	}
	if (max_binary != 0 && f->len > max_binary) {
		snprintf(msg, sizeof(msg),
			 "%s: too big: %zu bytes, the device accepts at most "
			 "%u",
			 f->fname, f->len, max_binary);
		refuse_later(f, 400, "too_big", msg);
		goto fail;
	}
	memset(&fi, 0, sizeof(fi));
	fi.bytes = f->bytes;
	fi.len = f->len;
	fi.mi = &f->mi;
	fi.name = f->fname[0] ? f->fname : NULL;
	fi.uploaded_by = f->uid;
	if ((rc = fwstore_image_insert(f->r->store, &fi, flash_stored, f)) !=
	    0) {
		rest_fail_err(f->r->http, f->id, rc);
		goto fail;
	}
	return;
fail:
	flreq_free(f);
}

/* The file part: "file", else the first one. */
static const struct json_file *
flash_file(const struct json_files *files)
{
	size_t i;

	for (i = 0; i < files->n; i++)
		if (strcmp(files->v[i].name, "file") == 0)
			return &files->v[i];
	return &files->v[0];
}

int
h_device_flash(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const struct auth_user *au = auth_user_of(req);
	const struct json_files *files = http_request_files(req);
	const struct json_file *jf;
	struct module_error e;
	struct flreq *f;
	char msg[MODULE_ERRLEN + 80];
	const char *fname;
	int rc;

	if (au == NULL || files == NULL || files->n == 0)
		return http_respond_error(req, CINDER_ERR_INVAL, NULL,
					  "no file to flash");
	jf = flash_file(files);
	fname = jf->filename[0] ? jf->filename : jf->name;
	f = xcalloc(1, sizeof(*f));
	if (module_parse(jf->data, jf->len, NULL, &f->mi, &e) != 0) {
		free(f);
		snprintf(msg, sizeof(msg), "%s: %s", fname, e.msg);
		return refuse_now(req, module_err_code(e.code), msg);
	}
	f->r = r;
	f->id = http_request_id(req);
	f->uid = au->id;
	f->fname = xstrdup(fname);
	f->len = jf->len;
	f->bytes = xmalloc(jf->len);
	memcpy(f->bytes, jf->data, jf->len);
	snprintf(f->logctx, sizeof(f->logctx), "%s", http_request_log_ctx(req));
	rc = device_query(req, r, flash_dev_sql, flash_device_row, f);
	if (rc != 0) {
		flreq_free(f);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * GET /v1/devices/:id/healer: the heal in progress ("current", or null)
 * and the last 20 history rows, newest first.
 */
static const char healer_sql[] =
	"SELECT d.device_id, COALESCE((SELECT json_agg(json_build_object("
	"'at', to_char(x.at AT TIME ZONE 'UTC', "
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'outcome', x.event, "
	"'detail', x.detail) ORDER BY x.id DESC) FROM (SELECT * FROM "
	"healer_history h WHERE h.device_id = d.device_id ORDER BY h.id DESC "
	"LIMIT 20) x), '[]')::text FROM devices d "
	"WHERE (d.owner_id = $1::bigint OR $2::bool) "
	"AND (d.device_id = lower($3) OR d.name = $3) "
	"ORDER BY (d.device_id = lower($3)) DESC LIMIT 1";

struct hreq {
	struct rest *r;
	uint64_t id;
};

static void
healer_row(int rc, const struct store_result *res, void *arg)
{
	struct hreq *q = arg;
	const char *dev;
	json_t *hist, *cur;

	if (!device_found(q->r, q->id, rc, res))
		goto out;
	dev = store_result_value(res, 0, 0);
	hist = json_loads(store_result_value(res, 0, 1), 0, NULL);
	cur = healer_state_json(q->r->healer, dev);
	http_request_resume_with(q->r->http, q->id, 200,
				 json_pack("{s:s, s:o, s:o}", "id", dev,
					   "current", cur ? cur : json_null(),
					   "history",
					   hist ? hist : json_array()));
out:
	free(q);
}

static int
h_device_healer(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const struct auth_user *au = auth_user_of(req);
	struct hreq *q;
	int rc;

	if (au == NULL)
		return http_respond_error(req, CINDER_ERR_AUTH, NULL,
					  "authentication required");
	q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->id = http_request_id(req);
	rc = device_query(req, r, healer_sql, healer_row, q);
	if (rc != 0) {
		free(q);
		return rc;
	}
	return http_request_suspend(req);
}

const struct route h_flash_routes[] = {
	{"GET", "/v1/devices/:id/healer", ROUTE_AUTH_REQUIRED, h_device_healer},
};
const size_t h_flash_nroutes =
	sizeof(h_flash_routes) / sizeof(h_flash_routes[0]);
