/* SPDX-License-Identifier: MIT */
/*
 * `cinderd firmware ...`: inspect a module file (JSON on stdout), build
 * one (tests, the simulator, the quickstart demo), run the planner on a
 * Describe and module files, and import Device OS modules into the
 * database (blocking libpq, CLI only).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "crypto.h"
#include "describe.h"
#include "err.h"
#include "fmt.h"
#include "healer/fwcli.h"
#include "healer/fwstore.h"
#include "healer/module.h"
#include "healer/planner.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

extern char **environ;

#define FWCLI_MAX_FILES 64

static const char usage_text[] =
	"usage:\n"
	"  cinderd firmware inspect FILE [--platform N]\n"
	"      parse a module file; print its header as JSON (exit 1 and\n"
	"      {\"ok\":false,\"error\":CODE,\"message\":TEXT} when it is "
	"bad)\n"
	"  cinderd firmware make-module -o FILE --platform N --function F\n"
	"      --index N --version N [--dep F:INDEX:VERSION]... [--size "
	"BYTES]\n"
	"      [--start ADDR] [--product-id N --product-version N] [--seed "
	"N]\n"
	"      [--flags N]   write a valid module (F: bootloader, "
	"system_part,\n"
	"      user_part, ... or b, s, u, ...)\n"
	"  cinderd firmware plan DESCRIBE.json [--platform N] [--prerelease]\n"
	"      MODULE...   the healer planner's next module for a device\n"
	"      with that Describe, given these module files as the\n"
	"      catalogue (JSON on stdout)\n"
	"  cinderd firmware import FILE... [--release VERSION] [-c CONF]\n"
	"      [--KEY VALUE]  store Device OS modules (system parts,\n"
	"      bootloaders, ...) in the database; --release groups them as\n"
	"      a release of their platform (\"1.5.2\", \"2.0.0-rc.1\" is a\n"
	"      prerelease). Nothing is stored when a file is bad.\n";

static int
read_file(const char *path, uint8_t **outp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	size_t n = 0, cap = MODULE_FILE_MAX + 1, got;

	*outp = NULL;
	*lenp = 0;
	if (f == NULL) {
		fprintf(stderr, "cinderd firmware: could not open %s: %s\n",
			path, strerror(errno));
		return CINDER_ERR_IO;
	}
	b = xmalloc(cap);
	while (n < cap && (got = fread(b + n, 1, cap - n, f)) > 0)
		n += got;
	if (ferror(f)) {
		fprintf(stderr, "cinderd firmware: could not read %s: %s\n",
			path, strerror(errno));
		fclose(f);
		free(b);
		return CINDER_ERR_IO;
	}
	fclose(f);
	*outp = b;
	*lenp = n; /* n == cap: module_parse() reports "too big" */
	return 0;
}

static json_t *
info_json(const struct module_info *mi, const uint8_t *file, size_t len)
{
	char sha[65], msha[65], f[2] = {0, 0}, crc[9];
	uint8_t digest[32];
	json_t *deps = json_array(), *o;
	const char *pname = module_platform_name(mi->platform_id);
	int k;

	for (k = 0; k < 2; k++) {
		const struct module_dep *d = &mi->deps[k];
		char df[2] = {module_func_char(d->func), 0};

		json_array_append_new(
			deps,
			json_pack("{s:s, s:s, s:i, s:i}", "function",
				  module_func_name(d->func), "f", df, "index",
				  d->index, "version", d->version));
	}
	sha[0] = '\0';
	if (crypto_sha256(file, len, digest) == 0)
		fmt_hex(digest, 32, sha);
	fmt_hex(mi->sha256, 32, msha);
	snprintf(crc, sizeof(crc), "%08x", mi->crc);
	f[0] = module_func_char(mi->func);
	o = json_pack("{s:b, s:I, s:s, s:I, s:I, s:I, s:i, s:i, s:i, s:s*, "
		      "s:s, s:s, s:i, s:o, s:i, s:s, s:s}",
		      "ok", 1, "size", (json_int_t)len, "sha256", sha,
		      "prefix_offset", (json_int_t)mi->prefix_offset,
		      "start_address", (json_int_t)mi->start, "end_address",
		      (json_int_t)mi->end, "flags", mi->flags, "version",
		      mi->version, "platform_id", mi->platform_id, "platform",
		      pname, "function", module_func_name(mi->func), "f", f,
		      "index", mi->index, "dependencies", deps, "suffix_size",
		      mi->suffix_size, "module_sha256", msha, "crc32", crc);
	if (mi->has_product) {
		json_object_set_new(o, "product_id",
				    json_integer(mi->product_id));
		json_object_set_new(o, "product_version",
				    json_integer(mi->product_version));
	}
	return o;
}

static void
print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

static bool
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

static int
cmd_inspect(int argc, char **argv)
{
	struct module_parse_opts opts = {0};
	struct module_info mi;
	struct module_error e;
	const char *path = NULL;
	unsigned long v;
	uint8_t *b = NULL;
	size_t len;
	int i, rc = 2;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--platform") == 0 && i + 1 < argc) {
			if (!parse_uint(argv[++i], 0xffff, &v))
				goto usage;
			opts.want_platform = true;
			opts.platform_id = (uint16_t)v;
		} else if (argv[i][0] != '-' && path == NULL) {
			path = argv[i];
		} else {
			goto usage;
		}
	}
	if (path == NULL)
		goto usage;
	if (read_file(path, &b, &len) != 0)
		return 1;
	if (module_parse(b, len, &opts, &mi, &e) != 0) {
		print_json(json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
				     module_err_code(e.code), "message",
				     e.msg));
		rc = 1;
	} else {
		print_json(info_json(&mi, b, len));
		rc = 0;
	}
	free(b);
	return rc;
usage:
	fputs(usage_text, stderr);
	return rc;
}

/* "s:1:207" or "system_part:1:207". */
static bool
parse_dep(const char *s, struct module_dep *d)
{
	char buf[32], *c1, *c2;
	unsigned long idx, ver;
	int f;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	if ((c1 = strchr(buf, ':')) == NULL ||
	    (c2 = strchr(c1 + 1, ':')) == NULL)
		return false;
	*c1 = *c2 = '\0';
	if ((f = module_func_parse(buf)) < 0 ||
	    !parse_uint(c1 + 1, 255, &idx) || !parse_uint(c2 + 1, 0xffff, &ver))
		return false;
	d->func = (uint8_t)f;
	d->index = (uint8_t)idx;
	d->version = (uint16_t)ver;
	return true;
}

static int
cmd_make(int argc, char **argv)
{
	struct module_spec s;
	struct module_error e;
	const char *out = NULL, *opt, *val;
	unsigned long v;
	uint8_t *b = NULL;
	size_t len;
	int i, f, ndeps = 0, rc = 1;
	bool have_f = false;
	FILE *fp;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < argc; i++) {
		opt = argv[i];
		if (i + 1 >= argc)
			goto usage;
		val = argv[++i];
		if (strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0) {
			out = val;
		} else if (strcmp(opt, "--function") == 0) {
			if ((f = module_func_parse(val)) <= 0)
				goto bad;
			s.func = (uint8_t)f;
			have_f = true;
		} else if (strcmp(opt, "--dep") == 0) {
			if (ndeps == 2 || !parse_dep(val, &s.deps[ndeps++]))
				goto bad;
		} else {
			unsigned long max = 0xffff;

			if (strcmp(opt, "--start") == 0 ||
			    strcmp(opt, "--seed") == 0)
				max = 0xffffffffUL;
			else if (strcmp(opt, "--size") == 0)
				max = MODULE_FILE_MAX;
			else if (strcmp(opt, "--index") == 0 ||
				 strcmp(opt, "--flags") == 0)
				max = 255;
			if (!parse_uint(val, max, &v))
				goto bad;
			if (strcmp(opt, "--platform") == 0)
				s.platform_id = (uint16_t)v;
			else if (strcmp(opt, "--index") == 0)
				s.index = (uint8_t)v;
			else if (strcmp(opt, "--version") == 0)
				s.version = (uint16_t)v;
			else if (strcmp(opt, "--size") == 0)
				s.size = v;
			else if (strcmp(opt, "--start") == 0)
				s.start = (uint32_t)v;
			else if (strcmp(opt, "--seed") == 0)
				s.seed = (uint32_t)v;
			else if (strcmp(opt, "--flags") == 0)
				s.flags = (uint8_t)v;
			else if (strcmp(opt, "--product-id") == 0) {
				s.product_id = (uint16_t)v;
				s.has_product = true;
			} else if (strcmp(opt, "--product-version") == 0) {
				s.product_version = (uint16_t)v;
				s.has_product = true;
			} else
				goto usage;
		}
	}
	if (out == NULL || !have_f)
		goto usage;
	if (module_build(&s, &b, &len, &e) != 0) {
		fprintf(stderr, "cinderd firmware make-module: %s\n", e.msg);
		return 1;
	}
	if ((fp = fopen(out, "wb")) == NULL || fwrite(b, 1, len, fp) != len) {
		fprintf(stderr,
			"cinderd firmware make-module: could not write %s: "
			"%s\n",
			out, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		goto out;
	}
	if (fclose(fp) != 0) {
		fprintf(stderr,
			"cinderd firmware make-module: could not write %s: "
			"%s\n",
			out, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(b);
	return rc;
bad:
	fprintf(stderr, "cinderd firmware make-module: bad value for %s: %s\n",
		opt, val);
	return 2;
usage:
	fputs(usage_text, stderr);
	return 2;
}

static int
load_describe(const char *path, struct describe **d)
{
	char err[DESCRIBE_ERRLEN];
	uint8_t *b;
	size_t len;
	int r;

	if (read_file(path, &b, &len) != 0)
		return CINDER_ERR_IO;
	r = describe_parse((const char *)b, len, d, err, sizeof(err));
	free(b);
	if (r != 0)
		fprintf(stderr, "cinderd firmware plan: %s: %s\n", path, err);
	return r;
}

static int
cmd_plan(int argc, char **argv)
{
	static struct planner_image cat[FWCLI_MAX_FILES];
	struct planner_opts opts = {0};
	struct planner_result res;
	struct describe *d = NULL;
	struct module_info mi;
	struct module_error e;
	const char *dpath = NULL, *base;
	unsigned long v;
	long platform = -1;
	size_t n = 0;
	uint8_t *b;
	size_t len;
	json_t *o;
	int i, rc = 2;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--platform") == 0 && i + 1 < argc) {
			if (!parse_uint(argv[++i], 0xffff, &v))
				goto usage;
			platform = (long)v;
		} else if (strcmp(argv[i], "--prerelease") == 0) {
			opts.allow_prerelease = true;
		} else if (argv[i][0] == '-') {
			goto usage;
		} else if (dpath == NULL) {
			dpath = argv[i];
		} else if (n < FWCLI_MAX_FILES) {
			if (read_file(argv[i], &b, &len) != 0)
				return 1;
			if (module_parse(b, len, NULL, &mi, &e) != 0) {
				fprintf(stderr,
					"cinderd firmware plan: %s: %s\n",
					argv[i], e.msg);
				free(b);
				return 1;
			}
			free(b);
			base = strrchr(argv[i], '/');
			snprintf(cat[n].id, sizeof(cat[n].id), "%s",
				 base ? base + 1 : argv[i]);
			cat[n].platform_id = mi.platform_id;
			cat[n].func = mi.func;
			cat[n].index = mi.index;
			cat[n].version = mi.version;
			memcpy(cat[n].deps, mi.deps, sizeof(mi.deps));
			n++;
		} else {
			goto usage;
		}
	}
	if (dpath == NULL)
		goto usage;
	if (load_describe(dpath, &d) != 0)
		return 1;
	if (platform < 0)
		platform = d->platform_id >= 0 ? d->platform_id : 0;
	planner_next(d, (uint16_t)platform, cat, n, &opts, &res);
	o = json_pack("{s:s, s:s, s:I}", "status",
		      planner_status_str(res.status), "reason", res.reason,
		      "needs", (json_int_t)res.n_needs);
	if (res.status == PLANNER_SEND || res.status == PLANNER_MISSING) {
		char f[2] = {module_func_char(res.need.func), 0};

		json_object_set_new(
			o, "need",
			json_pack("{s:s, s:i, s:I, s:b, s:I}", "f", f, "index",
				  res.need.index, "version",
				  (json_int_t)res.need.version, "installed",
				  res.need.installed, "have",
				  (json_int_t)res.need.have));
	}
	if (res.image != NULL) {
		char f[2] = {module_func_char(res.image->func), 0};

		json_object_set_new(o, "image",
				    json_pack("{s:s, s:s, s:i, s:i}", "id",
					      res.image->id, "f", f, "index",
					      res.image->index, "version",
					      res.image->version));
	}
	print_json(o);
	describe_free(d);
	return 0;
usage:
	fputs(usage_text, stderr);
	return rc;
}

struct import_file {
	const char *path;
	uint8_t *bytes;
	size_t len;
	struct module_info mi;
};

static int
import_store(const struct conf *cfg, struct import_file *fl, size_t n,
	     const char *release)
{
	struct fwstore_params fp;
	struct fwstore_image img;
	char err[256], *first = NULL, sha[65];
	const char *base;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		memset(&img, 0, sizeof(img));
		base = strrchr(fl[i].path, '/');
		img.bytes = fl[i].bytes;
		img.len = fl[i].len;
		img.mi = &fl[i].mi;
		img.name = base != NULL ? base + 1 : fl[i].path;
		img.release = release;
		if ((r = fwstore_params_fill(&fp, &img)) == 0)
			r = store_sync_query_params(
				cfg->database_url, fwstore_insert_sql,
				FWSTORE_INSERT_NPARAMS, fp.p, &first, err,
				sizeof(err));
		fmt_hex(fp.sha, 32, sha);
		fwstore_params_cleanup(&fp);
		if (r != 0) {
			fprintf(stderr,
				"cinderd firmware import: could not store "
				"%s: %s\n",
				fl[i].path, err[0] ? err : err_str(r));
			free(first);
			return 1;
		}
		printf("%s: %s %s %u version %u for platform %u (sha256 "
		       "%s)%s%s\n",
		       fl[i].path,
		       first != NULL && strcmp(first, "0") != 0
			       ? "stored"
			       : "already stored",
		       module_func_name(fl[i].mi.func), fl[i].mi.index,
		       fl[i].mi.version, fl[i].mi.platform_id, sha,
		       release ? " in release " : "", release ? release : "");
		free(first);
		first = NULL;
	}
	return 0;
}

static int
cmd_import(int argc, char **argv)
{
	struct import_file fl[FWCLI_MAX_FILES];
	struct module_error e;
	struct conf *cfg = NULL;
	const char *release = NULL, *conf_path = NULL;
	char **flags = xcalloc((size_t)argc + 1, sizeof(char *));
	char err[CONF_ERRLEN];
	size_t n = 0, i;
	int nflags = 0, k, rc = 2;
	bool pre, must_exist = true;

	memset(fl, 0, sizeof(fl));
	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--release") == 0 && k + 1 < argc) {
			release = argv[++k];
		} else if ((strcmp(argv[k], "-c") == 0 ||
			    strcmp(argv[k], "--config") == 0) &&
			   k + 1 < argc) {
			conf_path = argv[++k];
		} else if (strncmp(argv[k], "--", 2) == 0) {
			flags[nflags++] = argv[k];
			if (strchr(argv[k], '=') == NULL && k + 1 < argc)
				flags[nflags++] = argv[++k];
		} else if (n < FWCLI_MAX_FILES) {
			fl[n++].path = argv[k];
		} else {
			fprintf(stderr,
				"cinderd firmware import: at most %d files\n",
				FWCLI_MAX_FILES);
			goto out;
		}
	}
	if (n == 0) {
		fputs(usage_text, stderr);
		goto out;
	}
	if (release != NULL && !fwstore_release_ok(release, &pre)) {
		fprintf(stderr,
			"cinderd firmware import: \"%s\" is not a release "
			"version (like 1.5.2 or 2.0.0-rc.1)\n",
			release);
		goto out;
	}
	rc = 1;
	for (i = 0; i < n; i++) {
		if (read_file(fl[i].path, &fl[i].bytes, &fl[i].len) != 0)
			goto out;
		if (module_parse(fl[i].bytes, fl[i].len, NULL, &fl[i].mi, &e) !=
		    0) {
			fprintf(stderr,
				"cinderd firmware import: %s: %s; nothing "
				"stored\n",
				fl[i].path, e.msg);
			goto out;
		}
		if (fl[i].mi.func == MODULE_FUNC_USER) {
			fprintf(stderr,
				"cinderd firmware import: %s: a user part is "
				"an application, not Device OS; nothing "
				"stored\n",
				fl[i].path);
			goto out;
		}
	}
	if (conf_path == NULL &&
	    (conf_path = getenv("CINDER_CONFIG")) == NULL) {
		conf_path = "cinder.conf";
		must_exist = false;
	}
	if (conf_load(conf_path, must_exist, environ, nflags, flags, &cfg, err,
		      sizeof(err)) != 0) {
		fprintf(stderr, "cinderd: %s\n", err);
		rc = 2;
		goto out;
	}
	if (log_open(cfg->log_level, NULL) != 0)
		goto out;
	rc = import_store(cfg, fl, n, release);
	log_close();
out:
	for (i = 0; i < n; i++)
		free(fl[i].bytes);
	conf_free(cfg);
	free(flags);
	return rc;
}

int
fwcli_main(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "-h") == 0 ||
	    strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
		fputs(usage_text, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	if (strcmp(argv[0], "inspect") == 0)
		return cmd_inspect(argc - 1, argv + 1);
	if (strcmp(argv[0], "make-module") == 0)
		return cmd_make(argc - 1, argv + 1);
	if (strcmp(argv[0], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(argv[0], "plan") == 0)
		return cmd_plan(argc - 1, argv + 1);
	fprintf(stderr, "cinderd firmware: unknown command \"%s\"\n%s", argv[0],
		usage_text);
	return 2;
}
