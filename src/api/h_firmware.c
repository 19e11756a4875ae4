/* SPDX-License-Identifier: MIT */
/*
 * Device OS catalogue routes (docs/rest-api.md):
 *   GET  /v1/device-os/versions            releases (?platform_id=N,
 *                                          ?prerelease=true to list -rc)
 *   GET  /v1/device-os/versions/:version   one release and its modules
 *                                          (?platform_id=N: an object;
 *                                          without: an array per platform)
 *   POST /v1/device-os/versions            administrators: multipart
 *                                          upload of module files, with
 *                                          an optional "version" field
 * Every uploaded file is checked (src/healer/module.h) before anything
 * is stored; one bad file refuses the whole upload with its reason.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "crypto.h"
#include "err.h"
#include "fmt.h"
#include "healer/fwstore.h"
#include "healer/healer.h"
#include "healer/module.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define FW_UPLOAD_MAX_FILES 16

struct freq {
	struct rest *r;
	uint64_t id;
	bool one;	 /* GET version with platform_id: one object */
	size_t pending;	 /* inserts not yet completed */
	int err;	 /* first insert error */
	json_t *modules; /* upload answer */
	char *release;	 /* upload: release version or NULL */
};

static struct freq *
freq_new(struct rest *r, struct http_request *req)
{
	struct freq *f = xcalloc(1, sizeof(*f));

	f->r = r;
	f->id = http_request_id(req);
	return f;
}

static void
freq_free(struct freq *f)
{
	json_decref(f->modules);
	free(f->release);
	free(f);
}

/* ?platform_id=N into text for $n (NULL when absent). */
static int
platform_arg(struct http_request *req, char *buf, size_t cap, const char **out)
{
	const char *v = http_request_query(req, "platform_id");
	char *end;
	long n;

	*out = NULL;
	if (v == NULL || *v == '\0')
		return 0;
	n = strtol(v, &end, 10);
	if (*end != '\0' || n < 0 || n > 65535)
		return CINDER_ERR_INVAL;
	snprintf(buf, cap, "%ld", n);
	*out = buf;
	return 0;
}

static bool
query_true(struct http_request *req, const char *name)
{
	const char *v = http_request_query(req, name);

	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static long long
col_ll(const struct store_result *res, int row, int col)
{
	const char *v = store_result_value(res, row, col);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

/*
 * GET /v1/device-os/versions
 */
static void
list_done(int rc, const struct store_result *res, void *arg)
{
	struct freq *f = arg;
	json_t *arr;
	int i, n;

	if (rc != 0) {
		rest_fail_err(f->r->http, f->id, rc);
		goto out;
	}
	arr = json_array();
	n = store_result_ntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			arr,
			json_pack("{s:s, s:I, s:b, s:I, s:s}", "version",
				  store_result_value(res, i, 1), "platform_id",
				  (json_int_t)col_ll(res, i, 0), "prerelease",
				  store_result_value(res, i, 2)[0] == 't',
				  "module_count", (json_int_t)col_ll(res, i, 4),
				  "created_at", store_result_value(res, i, 3)));
	http_request_resume_with(f->r->http, f->id, 200, arr);
out:
	freq_free(f);
}

/* Releases, newest first per platform (numeric X.Y.Z, a release before
   its prereleases). */
static const char list_sql[] =
	"SELECT r.platform_id, r.version, r.prerelease, "
	"to_char(r.created_at AT TIME ZONE 'UTC', "
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), count(m.firmware_sha256) "
	"FROM device_os_releases r "
	"LEFT JOIN device_os_release_modules m USING (platform_id, version) "
	"WHERE ($1::int IS NULL OR r.platform_id = $1::int) "
	"AND ($2::bool OR NOT r.prerelease) "
	"GROUP BY r.platform_id, r.version "
	"ORDER BY r.platform_id, string_to_array(substring(r.version "
	"from '^[0-9.]+'), '.')::int[] DESC, r.prerelease, r.version DESC "
	"LIMIT 1000";

static int
h_versions_list(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const char *params[2];
	char pid[8];
	struct freq *f;
	int rc;

	if (platform_arg(req, pid, sizeof(pid), &params[0]) != 0)
		return http_respond_error(req, CINDER_ERR_INVAL, NULL,
					  "platform_id must be a number");
	params[1] = query_true(req, "prerelease") ? "t" : "f";
	f = freq_new(r, req);
	rc = store_query(r->store, STORE_Q_READ, list_sql, 2, params, list_done,
			 f, NULL);
	if (rc != 0) {
		freq_free(f);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * GET /v1/device-os/versions/:version
 */
static json_t *
module_row_json(const struct store_result *res, int i)
{
	json_t *deps = json_loads(store_result_value(res, i, 7), 0, NULL);
	const char *name = store_result_value(res, i, 8);
	int func = (int)col_ll(res, i, 3);

	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:s?}", "sha256",
			 store_result_value(res, i, 2), "function",
			 module_func_name((uint8_t)func), "f",
			 (char[]){module_func_char((uint8_t)func), '\0'},
			 "index", (json_int_t)col_ll(res, i, 4), "version",
			 (json_int_t)col_ll(res, i, 5), "size",
			 (json_int_t)col_ll(res, i, 6), "dependencies",
			 deps != NULL ? deps : json_array(), "name", name);
}

static void
version_done(int rc, const struct store_result *res, void *arg)
{
	struct freq *f = arg;
	json_t *arr, *cur = NULL, *mods = NULL;
	long long pid, last = -1;
	int i, n;

	if (rc != 0) {
		rest_fail_err(f->r->http, f->id, rc);
		goto out;
	}
	n = store_result_ntuples(res);
	if (n == 0) {
		http_request_resume_error(f->r->http, f->id,
					  CINDER_ERR_NOTFOUND,
					  "Device OS version not found");
		goto out;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		pid = col_ll(res, i, 0);
		if (pid != last) {
			mods = json_array();
			cur = json_pack("{s:s, s:I, s:b, s:o}", "version",
					store_result_value(res, i, 9),
					"platform_id", (json_int_t)pid,
					"prerelease",
					store_result_value(res, i, 1)[0] == 't',
					"modules", mods);
			json_array_append_new(arr, cur);
			last = pid;
		}
		if (!store_result_is_null(res, i, 2))
			json_array_append_new(mods, module_row_json(res, i));
	}
	if (f->one) {
		cur = json_incref(json_array_get(arr, 0));
		json_decref(arr);
		arr = cur;
	}
	http_request_resume_with(f->r->http, f->id, 200, arr);
out:
	freq_free(f);
}

static int
h_version_get(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const char *params[2];
	char pid[8];
	struct freq *f;
	bool pre;
	int rc;

	params[0] = http_request_param(req, "version");
	if (!fwstore_release_ok(params[0], &pre))
		return http_respond_error(req, CINDER_ERR_NOTFOUND, NULL,
					  "Device OS version not found");
	if (platform_arg(req, pid, sizeof(pid), &params[1]) != 0)
		return http_respond_error(req, CINDER_ERR_INVAL, NULL,
					  "platform_id must be a number");
	f = freq_new(r, req);
	f->one = params[1] != NULL;
	rc = store_query(r->store, STORE_Q_READ,
			 "SELECT r.platform_id, r.prerelease, "
			 "encode(i.sha256, 'hex'), i.module_function, "
			 "i.module_index, i.module_version, i.size, "
			 "i.dependencies::text, i.name, r.version "
			 "FROM device_os_releases r "
			 "LEFT JOIN device_os_release_modules m "
			 "USING (platform_id, version) "
			 "LEFT JOIN firmware_images i ON i.sha256 = "
			 "m.firmware_sha256 "
			 "WHERE r.version = $1 AND ($2::int IS NULL OR "
			 "r.platform_id = $2::int) "
			 "ORDER BY r.platform_id, i.module_function, "
			 "i.module_index, i.module_version",
			 2, params, version_done, f, NULL);
	if (rc != 0) {
		freq_free(f);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * POST /v1/device-os/versions
 */
static void
upload_finish(struct freq *f)
{
	if (f->err != 0)
		rest_fail_err(f->r->http, f->id, f->err);
	else
		http_request_resume_with(f->r->http, f->id, 200,
					 json_pack("{s:b, s:s?, s:O}", "ok", 1,
						   "version", f->release,
						   "modules", f->modules));
	freq_free(f);
}

static void
upload_stored(int err, bool created, const uint8_t sha256[32], void *arg)
{
	struct freq *f = arg;
	char hex[65];
	size_t i;
	json_t *m;

	fmt_hex(sha256, 32, hex);
	if (err != 0 && f->err == 0)
		f->err = err;
	json_array_foreach(f->modules, i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "sha256")),
			   hex) == 0 &&
		    json_object_get(m, "created") == NULL)
			json_object_set_new(m, "created",
					    json_boolean(created));
	}
	if (--f->pending == 0) {
		healer_catalogue_changed(f->r->healer);
		upload_finish(f);
	}
}

static int
upload_refuse(struct http_request *req, const char *file, const char *code,
	      const char *msg)
{
	json_t *o = json_error_body(CINDER_ERR_INVAL, NULL, NULL);
	char text[MODULE_ERRLEN + 80];

	snprintf(text, sizeof(text), "%s: %s", file, msg);
	json_object_set_new(o, "error", json_string(text));
	json_object_set_new(o, "error_description", json_string(text));
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "file", json_string(file));
	log_info("%s: firmware upload refused: %s", http_request_log_ctx(req),
		 text);
	return http_respond_json(req, 400, o);
}

static int
h_versions_upload(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const struct auth_user *au = auth_user_of(req);
	const struct json_files *files = http_request_files(req);
	const char *release = http_request_arg(req, "version");
	struct module_info mi[FW_UPLOAD_MAX_FILES];
	struct module_error e;
	struct fwstore_image img;
	struct freq *f;
	char hex[65];
	uint8_t sha[32];
	size_t i;
	bool pre;
	int rc;

	if (au == NULL || !au->is_admin)
		return http_respond_error(req, CINDER_ERR_FORBIDDEN, NULL,
					  "only an administrator may add "
					  "Device OS modules");
	if (files == NULL || files->n == 0)
		return http_respond_error(req, CINDER_ERR_INVAL, NULL,
					  "no file: send the modules as "
					  "multipart/form-data file parts");
	if (files->n > FW_UPLOAD_MAX_FILES)
		return http_respond_error(req, CINDER_ERR_TOO_BIG, NULL,
					  "at most %d files per upload",
					  FW_UPLOAD_MAX_FILES);
	if (release != NULL && *release == '\0')
		release = NULL;
	if (release != NULL && !fwstore_release_ok(release, &pre))
		return http_respond_error(req, CINDER_ERR_INVAL, NULL,
					  "version must look like 1.5.2 or "
					  "2.0.0-rc.1");
	for (i = 0; i < files->n; i++) {
		const struct json_file *jf = &files->v[i];
		const char *fname = jf->filename[0] ? jf->filename : jf->name;

		if (module_parse(jf->data, jf->len, NULL, &mi[i], &e) != 0)
			return upload_refuse(req, fname,
					     module_err_code(e.code), e.msg);
		if (mi[i].func == MODULE_FUNC_USER)
			return upload_refuse(req, fname, "user_part",
					     "a user part is an application, "
					     "not Device OS");
	}
	f = freq_new(r, req);
	f->release = release != NULL ? xstrdup(release) : NULL;
	f->modules = json_array();
	for (i = 0; i < files->n; i++) {
		const struct json_file *jf = &files->v[i];

		if (crypto_sha256(jf->data, jf->len, sha) != 0)
			continue;
		fmt_hex(sha, 32, hex);
		json_array_append_new(
			f->modules,
			json_pack("{s:s, s:s, s:i, s:i, s:i, s:s}", "sha256",
				  hex, "function", module_func_name(mi[i].func),
				  "index", mi[i].index, "version",
				  mi[i].version, "platform_id",
				  mi[i].platform_id, "name", jf->filename));
	}
	/* Store callbacks never run inside store_query_params(): count
	   what was queued, then wait for all of it. */
	for (i = 0; i < files->n; i++) {
		const struct json_file *jf = &files->v[i];

		memset(&img, 0, sizeof(img));
		img.bytes = jf->data;
		img.len = jf->len;
		img.mi = &mi[i];
		img.name = jf->filename[0] ? jf->filename : NULL;
		img.uploaded_by = au->id;
		img.release = f->release;
		rc = fwstore_image_insert(r->store, &img, upload_stored, f);
		if (rc != 0) {
			f->err = rc;
			break;
		}
		f->pending++;
	}
	if (f->pending == 0) {
		rc = f->err;
		freq_free(f);
		return rc;
	}
	log_notice("%s: user %s uploads %zu Device OS module(s)%s%s",
		   http_request_log_ctx(req), au->username, files->n,
		   release ? " for release " : "", release ? release : "");
	return http_request_suspend(req);
}

const struct route h_firmware_routes[] = {
	{"GET", "/v1/device-os/versions", ROUTE_AUTH_REQUIRED, h_versions_list},
	{"GET", "/v1/device-os/versions/:version", ROUTE_AUTH_REQUIRED,
	 h_version_get},
	{"POST", "/v1/device-os/versions", ROUTE_AUTH_REQUIRED | ROUTE_UPLOAD,
	 h_versions_upload},
};
const size_t h_firmware_nroutes =
	sizeof(h_firmware_routes) / sizeof(h_firmware_routes[0]);
