/* SPDX-License-Identifier: MIT */
/*
 * Firmware store: insert, catalogue, fetch (see fwstore.h). Every
 * statement is a single one so that a write survives a reconnect
 * (at-least-once, and idempotent: ON CONFLICT DO NOTHING everywhere).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "err.h"
#include "healer/fwstore.h"
#include "xmalloc.h"

#define FWSTORE_CATALOGUE_MAX 4096

/* The image (idempotent), then, with a release ($25): the release row,
   the membership and the module-version name in device_os_versions.
   Foreign keys are checked at the end of the statement, when every CTE
   has inserted its rows. Returns 1 when the image was new. */
const char fwstore_insert_sql[] =
	"WITH img AS (INSERT INTO firmware_images (sha256, bytes, size, "
	"platform_id, module_function, module_index, module_version, "
	"dependencies, name, prefix_offset, start_address, end_address, "
	"module_flags, dep1_function, dep1_index, dep1_version, "
	"dep2_function, dep2_index, dep2_version, product_id, "
	"product_version, module_sha256, crc32, uploaded_by) VALUES ($1, $2, "
	"$3::int, $4::int, $5::smallint, $6::smallint, $7::int, $8::jsonb, "
	"$9, $10::int, $11::bigint, $12::bigint, $13::smallint, "
	"$14::smallint, $15::smallint, $16::int, $17::smallint, "
	"$18::smallint, $19::int, $20::int, $21::int, $22, $23::bigint, "
	"$24::bigint) ON CONFLICT (sha256) DO NOTHING RETURNING sha256), "
	"rel AS (INSERT INTO device_os_releases (platform_id, version, "
	"prerelease) SELECT $4::int, $25::text, $26::bool WHERE $25::text IS "
	"NOT NULL ON CONFLICT DO NOTHING), "
	"mem AS (INSERT INTO device_os_release_modules (platform_id, version, "
	"firmware_sha256) SELECT $4::int, $25::text, $1 WHERE $25::text IS "
	"NOT NULL ON CONFLICT DO NOTHING), "
	"ver AS (INSERT INTO device_os_versions (platform_id, "
	"module_function, module_index, module_version, version, "
	"firmware_sha256) SELECT $4::int, $5::smallint, $6::smallint, "
	"$7::int, $25::text, $1 WHERE $25::text IS NOT NULL AND NOT "
	"$26::bool ON CONFLICT DO NOTHING) "
	"SELECT count(*) FROM img";

static const char catalogue_sql[] =
	"SELECT encode(i.sha256, 'hex'), i.platform_id, i.module_function, "
	"i.module_index, i.module_version, i.dep1_function, i.dep1_index, "
	"i.dep1_version, i.dep2_function, i.dep2_index, i.dep2_version, "
	"coalesce(bool_and(r.prerelease), false) "
	"FROM firmware_images i "
	"LEFT JOIN device_os_release_modules m ON m.firmware_sha256 = "
	"i.sha256 "
	"LEFT JOIN device_os_releases r ON r.platform_id = m.platform_id "
	"AND r.version = m.version "
	"WHERE i.platform_id = $1::int AND i.module_function <> 5 "
	"GROUP BY i.sha256 "
	"ORDER BY i.module_function, i.module_index, i.module_version "
	"LIMIT 4096";

bool
fwstore_release_ok(const char *v, bool *prerelease)
{
	size_t n, i;
	int dots = 0, digits = 0;

	*prerelease = false;
	if (v == NULL || (n = strlen(v)) == 0 || n > FWSTORE_RELEASE_MAX)
		return false;
	for (i = 0; i < n && v[i] != '-' && v[i] != '+'; i++) {
		if (v[i] == '.') {
			if (digits == 0)
				return false;
			dots++;
			digits = 0;
		} else if (isdigit((unsigned char)v[i])) {
			digits++;
		} else {
			return false;
		}
	}
	if (dots != 2 || digits == 0)
		return false;
	if (i < n && v[i] == '-')
		*prerelease = true;
	if (i < n && i + 1 == n)
		return false; /* "1.2.3-" */
	for (i++; i < n; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '.' &&
		    v[i] != '-' && v[i] != '+')
			return false;
	}
	return true;
}

static char *
deps_json(const struct module_info *mi)
{
	json_t *a = json_array();
	char n[8], *s;
	int k;

	for (k = 0; k < 2; k++) {
		const struct module_dep *d = &mi->deps[k];
		char f[2] = {module_func_char(d->func), '\0'};

		if (d->func == MODULE_FUNC_NONE)
			continue;
		snprintf(n, sizeof(n), "%u", d->index);
		json_array_append_new(a,
				      json_pack("{s:s, s:s, s:i}", "f", f, "n",
						n, "v", (int)d->version));
	}
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s != NULL ? s : xstrdup("[]");
}

/* Parameter $pno as the decimal text of v. */
static void
setnum(struct fwstore_params *fp, int pno, unsigned long long v)
{
	snprintf(fp->num[pno - 1], sizeof(fp->num[pno - 1]), "%llu", v);
	fp->p[pno - 1].value = fp->num[pno - 1];
}

int
fwstore_params_fill(struct fwstore_params *fp, const struct fwstore_image *img)
{
	const struct module_info *mi = img->mi;
	bool pre = false;
	int k;

	memset(fp, 0, sizeof(*fp));
	if (crypto_sha256(img->bytes, img->len, fp->sha) != 0)
		return CINDER_ERR_CRYPTO;
	fp->p[0] = (struct store_param){fp->sha, sizeof(fp->sha), true};
	fp->p[1] = (struct store_param){img->bytes, img->len, true};
	setnum(fp, 3, img->len);
	setnum(fp, 4, mi->platform_id);
	setnum(fp, 5, mi->func);
	setnum(fp, 6, mi->index);
	setnum(fp, 7, mi->version);
	fp->deps_json = deps_json(mi);
	fp->p[7].value = fp->deps_json;
	fp->p[8].value = img->name;
	setnum(fp, 10, mi->prefix_offset);
	setnum(fp, 11, mi->start);
	setnum(fp, 12, mi->end);
	setnum(fp, 13, mi->flags);
	for (k = 0; k < 2; k++) {
		setnum(fp, 14 + 3 * k, mi->deps[k].func);
		setnum(fp, 15 + 3 * k, mi->deps[k].index);
		setnum(fp, 16 + 3 * k, mi->deps[k].version);
	}
	if (mi->has_product) {
		setnum(fp, 20, mi->product_id);
		setnum(fp, 21, mi->product_version);
	}
	fp->p[21] = (struct store_param){mi->sha256, MODULE_SHA_LEN, true};
	setnum(fp, 23, mi->crc);
	if (img->uploaded_by > 0)
		setnum(fp, 24, (unsigned long long)img->uploaded_by);
	fp->p[24].value = img->release;
	if (img->release != NULL)
		(void)fwstore_release_ok(img->release, &pre);
	fp->p[25].value = pre ? "true" : "false";
	return 0;
}

void
fwstore_params_cleanup(struct fwstore_params *fp)
{
	free(fp->deps_json);
	fp->deps_json = NULL;
}

/*
 * Insert
 */
struct ins {
	fwstore_insert_cb cb;
	void *arg;
	uint8_t sha[32];
};

static void
insert_done(int r, const struct store_result *res, void *arg)
{
	struct ins *c = arg;
	const char *v;
	bool created = false;

	if (r == 0 && store_result_ntuples(res) == 1 &&
	    (v = store_result_value(res, 0, 0)) != NULL)
		created = strcmp(v, "0") != 0;
	c->cb(r, created, c->sha, c->arg);
	free(c);
}

int
fwstore_image_insert(struct store *st, const struct fwstore_image *img,
		     fwstore_insert_cb cb, void *arg)
{
	struct fwstore_params fp;
	struct ins *c;
	int r;

	if ((r = fwstore_params_fill(&fp, img)) != 0)
		goto out;
	c = xcalloc(1, sizeof(*c));
	c->cb = cb;
	c->arg = arg;
	memcpy(c->sha, fp.sha, sizeof(c->sha));
	r = store_query_params(st, STORE_Q_WRITE, fwstore_insert_sql,
			       FWSTORE_INSERT_NPARAMS, fp.p, insert_done, c,
			       NULL);
	if (r != 0)
		free(c);
out:
	fwstore_params_cleanup(&fp);
	return r;
}

/*
 * Catalogue
 */
struct cat {
	fwstore_catalogue_cb cb;
	void *arg;
};

static int
col_int(const struct store_result *res, int row, int col)
{
	const char *v = store_result_value(res, row, col);

	return v != NULL ? atoi(v) : 0;
}

static void
catalogue_done(int r, const struct store_result *res, void *arg)
{
	struct cat *c = arg;
	struct planner_image *v = NULL;
	const char *s;
	int n = 0, i, k;

	if (r == 0) {
		n = store_result_ntuples(res);
		if (n > FWSTORE_CATALOGUE_MAX)
			n = FWSTORE_CATALOGUE_MAX;
		v = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*v));
		for (i = 0; i < n; i++) {
			s = store_result_value(res, i, 0);
			snprintf(v[i].id, sizeof(v[i].id), "%s", s ? s : "");
			v[i].platform_id = (uint16_t)col_int(res, i, 1);
			v[i].func = (uint8_t)col_int(res, i, 2);
			v[i].index = (uint8_t)col_int(res, i, 3);
			v[i].version = (uint16_t)col_int(res, i, 4);
			for (k = 0; k < 2; k++) {
				v[i].deps[k].func =
					(uint8_t)col_int(res, i, 5 + 3 * k);
				v[i].deps[k].index =
					(uint8_t)col_int(res, i, 6 + 3 * k);
				v[i].deps[k].version =
					(uint16_t)col_int(res, i, 7 + 3 * k);
			}
			s = store_result_value(res, i, 11);
			v[i].prerelease = s != NULL && s[0] == 't';
		}
	}
	c->cb(r, v, (size_t)n, c->arg);
	free(v);
	free(c);
}

int
fwstore_catalogue_load(struct store *st, uint16_t platform_id,
		       fwstore_catalogue_cb cb, void *arg)
{
	char pid[8];
	const char *params[1] = {pid};
	struct cat *c = xcalloc(1, sizeof(*c));
	int r;

	snprintf(pid, sizeof(pid), "%u", (unsigned)platform_id);
	c->cb = cb;
	c->arg = arg;
	r = store_query(st, STORE_Q_READ, catalogue_sql, 1, params,
			catalogue_done, c, NULL);
	if (r != 0)
		free(c);
	return r;
}

/*
 * Fetch
 */
struct fetch {
	fwstore_fetch_cb cb;
	void *arg;
};

static void
fetch_done(int r, const struct store_result *res, void *arg)
{
	struct fetch *c = arg;
	uint8_t *b = NULL;
	size_t n = 0;

	if (r == 0 && store_result_ntuples(res) != 1)
		r = CINDER_ERR_NOTFOUND;
	if (r == 0)
		r = store_result_bytes(res, 0, 0, &b, &n);
	c->cb(r, b, n, c->arg);
	free(b);
	free(c);
}

int
fwstore_image_fetch(struct store *st, const uint8_t sha256[32],
		    fwstore_fetch_cb cb, void *arg)
{
	struct store_param p = {sha256, 32, true};
	struct fetch *c = xcalloc(1, sizeof(*c));
	int r;

	c->cb = cb;
	c->arg = arg;
	r = store_query_params(st, STORE_Q_READ,
			       "SELECT bytes FROM firmware_images WHERE "
			       "sha256 = $1",
			       1, &p, fetch_done, c, NULL);
	if (r != 0)
		free(c);
	return r;
}
