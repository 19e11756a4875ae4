/* SPDX-License-Identifier: MIT */
/*
 * Config parsing. One table describes every key: its name, type, limits,
 * default and help. File, environment and flags all go through set_key(),
 * so a value is validated the same way wherever it comes from.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "netaddr.h"
#include "xmalloc.h"

enum key_type {
	KEY_STRING,
	KEY_LIMITS, /* "" or name=N[,name=N...] with known names */
	KEY_ADDR,
	KEY_INT,
	KEY_LEVEL,
};

struct key_def {
	const char *name;   /* key name as written in the file */
	enum key_type type; /* how the value is checked */
	size_t offset;	    /* field offset in struct conf */
	const char *def;    /* default value as text */
	long min, max;	    /* KEY_INT bounds */
	const char *help;   /* one line for --help */
};

#define OFF(f) offsetof(struct conf, f)

static const struct key_def keys[] = {
	{"database_url", KEY_STRING, OFF(database_url), "postgresql:///cinder",
	 0, 0, "PostgreSQL conninfo or URL (secrets: prefer a .pgpass file)"},
	{"db_queue_max", KEY_INT, OFF(db_queue_max), "10000", 16, 1000000,
	 "database statements queued or in flight; more are refused"},
	{"device_listen", KEY_ADDR, OFF(device_listen), "0.0.0.0:5683", 0, 0,
	 "address:port for device sessions"},
	{"api_listen", KEY_ADDR, OFF(api_listen), "0.0.0.0:8080", 0, 0,
	 "address:port for the REST API, SSE and console"},
	{"server_key", KEY_STRING, OFF(server_key), "server_key.pem", 0, 0,
	 "server RSA-2048 private key, PEM (create with cinderd keygen)"},
	{"log_level", KEY_LEVEL, OFF(log_level), "notice", 0, 0,
	 "err, warn, notice, info or debug"},
	{"log_file", KEY_STRING, OFF(log_file), "stderr", 0, 0,
	 "log file path, or stderr; reopened on SIGHUP"},
	{"crypto_threads", KEY_INT, OFF(crypto_threads), "0", 0, 256,
	 "RSA worker threads; 0 = one per core"},
	{"loop_nice", KEY_INT, OFF(loop_nice), "0", -20, 19,
	 "nice value of the loop thread alone (-20..19); 0 = as started"},
	{"sql_dir", KEY_STRING, OFF(sql_dir), CINDER_SQLDIR, 0, 0,
	 "directory holding the sql/NNNN_*.sql migrations"},
	{"node_id", KEY_STRING, OFF(node_id), "", 0, 0,
	 "this node's name in a cluster; empty = the host name"},
	{"handshake_timeout", KEY_INT, OFF(handshake_timeout), "30", 1, 600,
	 "seconds a device may take for the whole handshake"},
	{"max_handshakes", KEY_INT, OFF(max_handshakes), "2000", 1, 1000000,
	 "device handshakes in progress at once; more wait in the backlog"},
	{"keepalive_timeout", KEY_INT, OFF(keepalive_timeout), "45", 3, 3600,
	 "seconds of device silence before a session is closed (> 30: "
	 "devices ping after 15 s of silence)"},
	{"device_cache_linger_s", KEY_INT, OFF(device_cache_linger_s), "60", 0,
	 86400,
	 "seconds what is kept per device (cached key, rate-limit buckets, "
	 "application hash) outlives its session; a reconnect within it "
	 "finds them"},
	{"request_timeout", KEY_INT, OFF(request_timeout), "30", 1, 600,
	 "seconds to wait for a device to answer a function call or read"},
	{"max_sessions", KEY_INT, OFF(max_sessions), "200000", 1, 10000000,
	 "device sessions at once"},
	{"api_max_connections", KEY_INT, OFF(api_max_connections), "1024", 16,
	 1000000,
	 "API connections at once, SSE streams included; more wait in the "
	 "listen backlog"},
	{"publish_rate", KEY_INT, OFF(publish_rate), "1", 1, 1000000,
	 "device user events per second per device (Particle: 1)"},
	{"publish_burst", KEY_INT, OFF(publish_burst), "4", 1, 1000000,
	 "device user events in one burst per device (Particle: 4)"},
	{"tls_cert", KEY_STRING, OFF(tls_cert), "", 0, 0,
	 "PEM certificate chain; with tls_key, the API speaks HTTPS"},
	{"tls_key", KEY_STRING, OFF(tls_key), "", 0, 0,
	 "PEM private key for tls_cert"},
	{"rate_limits", KEY_LIMITS, OFF(rate_limits), "", 0, 0,
	 "per-IP limits per 5 min: all=N,token=N,lock=N; \"\" = "
	 "Particle's (10000, 100, 10 failed logins)"},
	{"trust_proxy", KEY_INT, OFF(trust_proxy), "0", 0, 1,
	 "1: take the client address from X-Forwarded-For (behind a proxy)"},
	{"web_root", KEY_STRING, OFF(web_root), "", 0, 0,
	 "directory of the web console's static files; empty = none"},
	{"webhook_allow_nets", KEY_STRING, OFF(webhook_allow_nets), "", 0, 0,
	 "networks webhooks may reach in spite of the private-address "
	 "guard, e.g. 127.0.0.0/8,::1"},
	{"webhook_retry", KEY_STRING, OFF(webhook_retry), "30,60", 0, 0,
	 "seconds before each retry of a failed webhook delivery"},
	{"webhook_ca_file", KEY_STRING, OFF(webhook_ca_file), "", 0, 0,
	 "PEM CA bundle for https webhooks; empty = the system's"},
	{"webhook_timeout", KEY_INT, OFF(webhook_timeout), "20", 1, 300,
	 "seconds a webhook receiver has to answer"},
	{"webhook_queue_max", KEY_INT, OFF(webhook_queue_max), "1000", 1,
	 1000000,
	 "unfinished deliveries per webhook; more are refused "
	 "and counted"},
	{"webhook_max_inflight", KEY_INT, OFF(webhook_max_inflight), "16", 1,
	 10000, "webhook requests in flight per webhook"},
	{"webhook_user_inflight", KEY_INT, OFF(webhook_user_inflight), "64", 1,
	 100000, "webhook requests in flight per user"},
	{"webhook_host_errors", KEY_INT, OFF(webhook_host_errors), "5", 0,
	 1000000, "consecutive failures before a host is skipped; 0 = never"},
	{"webhook_host_sleep", KEY_INT, OFF(webhook_host_sleep), "10", 1, 3600,
	 "seconds a failing host is skipped"},
	{"healer_max_concurrent", KEY_INT, OFF(healer_max_concurrent), "50", 1,
	 100000, "devices the safe-mode healer updates at once"},
	{"healer_retries", KEY_INT, OFF(healer_retries), "3", 1, 100,
	 "failed sends of one module to one device before giving up"},
	{"healer_backoff", KEY_INT, OFF(healer_backoff), "10", 1, 3600,
	 "seconds before a failed module is sent again (doubles per try)"},
	{"healer_prerelease", KEY_INT, OFF(healer_prerelease), "0", 0, 1,
	 "1: the healer may send modules found only in -rc releases"},
	{"ota_image_cache_mb", KEY_INT, OFF(ota_image_cache_mb), "256", 1,
	 65536,
	 "MB of distinct firmware images being sent at once (one copy "
	 "each, shared by every device receiving it); past it a flash "
	 "is refused"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct key_def *
find_key(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strlen(keys[i].name) == len &&
		    strncmp(keys[i].name, name, len) == 0)
			return &keys[i];
	}
	return NULL;
}

void
conf_node_name(const struct conf *cfg, char *out, size_t outlen)
{
	if (cfg->node_id[0] != '\0')
		snprintf(out, outlen, "%s", cfg->node_id);
	else if (gethostname(out, outlen - 1) != 0)
		snprintf(out, outlen, "cinderd");
	out[outlen - 1] = '\0';
}

bool
conf_key_is_known(const char *name)
{
	return find_key(name, strlen(name)) != NULL;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Keys whose value is kept as a string (char * in struct conf). */
static bool
key_is_string(const struct key_def *k)
{
	return k->type == KEY_STRING || k->type == KEY_ADDR ||
	       k->type == KEY_LIMITS;
}

/* A listen address the daemon can bind (see netaddr.h). */
static bool
addr_is_valid(const char *v)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return netaddr_parse(v, &ss, &len) == 0;
}

/* "" or a comma list of all=N, token=N, lock=N (N a positive number). */
static bool
limits_are_valid(const char *v)
{
	static const char *const names[] = {"all=", "token=", "lock="};
	const char *p = v;
	size_t i, n;

	if (*v == '\0')
		return true;
	for (;;) {
		for (i = 0; i < 3; i++) {
			n = strlen(names[i]);
			if (strncmp(p, names[i], n) == 0)
				break;
		}
		if (i == 3 || p[n] < '1' || p[n] > '9')
			return false;
		p += n;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '\0')
			return true;
		if (*p++ != ',')
			return false;
	}
}

/*
 * Apply one value. where is "file:line", "environment" or "flag" for the
 * error message.
 */
static int
set_key(struct conf *cfg, const struct key_def *k, const char *value,
	const char *where, char *err, size_t errlen)
{
	char *base = (char *)cfg;
	char **sp;
	char *end;
	long n;
	enum log_level level;

	switch (k->type) {
	case KEY_LIMITS:
	case KEY_ADDR:
	case KEY_STRING:
		if (k->type == KEY_ADDR && !addr_is_valid(value)) {
			seterr(err, errlen,
			       "%s: %s: \"%s\" is not a numeric address:port",
			       where, k->name, value);
			return CINDER_ERR_INVAL;
		}
		if (k->type == KEY_LIMITS && !limits_are_valid(value)) {
			seterr(err, errlen,
			       "%s: %s: \"%s\" is not a list of all=N, "
			       "token=N, lock=N",
			       where, k->name, value);
			return CINDER_ERR_INVAL;
		}
		sp = (char **)(void *)(base + k->offset);
		free(*sp);
		*sp = xstrdup(value);
		return 0;
	case KEY_INT:
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || n < k->min ||
		    n > k->max) {
			seterr(err, errlen,
			       "%s: %s: \"%s\" is not a number from %ld to %ld",
			       where, k->name, value, k->min, k->max);
			return CINDER_ERR_INVAL;
		}
		*(int *)(void *)(base + k->offset) = (int)n;
		return 0;
	case KEY_LEVEL:
		if (log_level_parse(value, &level) != 0) {
			seterr(err, errlen,
			       "%s: %s: \"%s\" is not one of err, warn, "
			       "notice, info, debug",
			       where, k->name, value);
			return CINDER_ERR_INVAL;
		}
		*(enum log_level *)(void *)(base + k->offset) = level;
		return 0;
	}
	return CINDER_ERR_INTERNAL;
}

struct conf *
conf_new_defaults(void)
{
	struct conf *cfg = xcalloc(1, sizeof(*cfg));
	size_t i;
	int r;

	for (i = 0; i < NKEYS; i++) {
		r = set_key(cfg, &keys[i], keys[i].def, "default", NULL, 0);
		if (r != 0)
			abort(); /* a bad default is a programming error */
	}
	return cfg;
}

void
conf_free(struct conf *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		if (key_is_string(&keys[i]))
			free(*(char **)(void *)((char *)cfg + keys[i].offset));
	}
	free(cfg->config_file);
	free(cfg);
}

#define MAX_LINE 4096

int
conf_parse_text(struct conf *cfg, const char *text, size_t len,
		const char *name, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	char where[300], value[MAX_LINE];
	unsigned lineno = 0;
	int r;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = eol ? eol : end, *ks, *ke, *vs, *ve;
		const struct key_def *k;

		p = eol ? eol + 1 : end;
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", name, lineno);
		if ((size_t)(le - ls) >= MAX_LINE) {
			seterr(err, errlen, "%s: line too long", where);
			return CINDER_ERR_INVAL;
		}
		while (ls < le && isspace((unsigned char)*ls))
			ls++;
		while (le > ls && isspace((unsigned char)le[-1]))
			le--;
		if (ls == le || *ls == '#')
			continue;
		if (memchr(ls, '\0', (size_t)(le - ls)) != NULL) {
			seterr(err, errlen, "%s: NUL byte in line", where);
			return CINDER_ERR_INVAL;
		}
		ks = ls;
		ke = ks;
		while (ke < le && !isspace((unsigned char)*ke))
			ke++;
		vs = ke;
		while (vs < le && isspace((unsigned char)*vs))
			vs++;
		ve = le;
		if ((k = find_key(ks, (size_t)(ke - ks))) == NULL) {
			seterr(err, errlen, "%s: unknown key \"%.*s\"", where,
			       (int)(ke - ks > 64 ? 64 : ke - ks), ks);
			return CINDER_ERR_INVAL;
		}
		/* Optional double quotes allow values with spaces or "". */
		if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
			vs++;
			ve--;
		} else if (vs == ve) {
			seterr(err, errlen, "%s: %s: missing value", where,
			       k->name);
			return CINDER_ERR_INVAL;
		}
		memcpy(value, vs, (size_t)(ve - vs));
		value[ve - vs] = '\0';
		if ((r = set_key(cfg, k, value, where, err, errlen)) != 0)
			return r;
	}
	return 0;
}

static int
load_file(struct conf *cfg, const char *path, bool must_exist, char *err,
	  size_t errlen)
{
	FILE *fp;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int r = CINDER_ERR_INTERNAL;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		seterr(err, errlen, "could not open config file %s: %s", path,
		       strerror(errno));
		return CINDER_ERR_IO;
	}
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= (1u << 20)) {
				seterr(err, errlen,
				       "%s: config file larger than 1 MiB",
				       path);
				r = CINDER_ERR_TOO_BIG;
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			buf = xreallocarray(buf, cap, 1);
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		seterr(err, errlen, "could not read config file %s", path);
		r = CINDER_ERR_IO;
		goto out;
	}
	r = conf_parse_text(cfg, buf, len, path, err, errlen);
	if (r == 0)
		cfg->config_file = xstrdup(path);
out:
	free(buf);
	fclose(fp);
	return r;
}

static int
load_env(struct conf *cfg, char *const *envp, char *err, size_t errlen)
{
	char name[64];
	size_t i, j;
	int r;

	for (; *envp != NULL; envp++) {
		const char *e = *envp, *eq;

		if (strncmp(e, "CINDER_", 7) != 0)
			continue;
		if ((eq = strchr(e, '=')) == NULL || eq - e - 7 >= 63)
			continue;
		for (i = 7, j = 0; e + i < eq; i++, j++)
			name[j] = (char)tolower((unsigned char)e[i]);
		name[j] = '\0';
		for (i = 0; i < NKEYS; i++) {
			if (strcmp(keys[i].name, name) != 0)
				continue;
			r = set_key(cfg, &keys[i], eq + 1, "environment", err,
				    errlen);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

static int
load_flags(struct conf *cfg, int argc, char *const *argv, char *err,
	   size_t errlen)
{
	const struct key_def *k;
	const char *a, *v, *eq;
	char name[64];
	size_t n, i;
	int idx, r;

	for (idx = 0; idx < argc; idx++) {
		a = argv[idx];
		if (strncmp(a, "--", 2) != 0) {
			seterr(err, errlen, "unexpected argument \"%s\"", a);
			return CINDER_ERR_INVAL;
		}
		a += 2;
		eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a) : strlen(a);
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		/* Flags may use dashes: --device-listen = device_listen. */
		for (i = 0; i < n; i++)
			name[i] = a[i] == '-' ? '_' : a[i];
		name[n] = '\0';
		if ((k = find_key(name, n)) == NULL) {
			seterr(err, errlen, "unknown option --%s", name);
			return CINDER_ERR_INVAL;
		}
		if (eq != NULL) {
			v = eq + 1;
		} else if (idx + 1 < argc) {
			v = argv[++idx];
		} else {
			seterr(err, errlen, "option --%s needs a value", name);
			return CINDER_ERR_INVAL;
		}
		if ((r = set_key(cfg, k, v, "flag", err, errlen)) != 0)
			return r;
	}
	return 0;
}

int
conf_load(const char *path, bool must_exist, char *const *envp, int argc,
	  char *const *argv, struct conf **out, char *err, size_t errlen)
{
	struct conf *cfg = NULL;
	int r = CINDER_ERR_INTERNAL;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	cfg = conf_new_defaults();
	if (path != NULL &&
	    (r = load_file(cfg, path, must_exist, err, errlen)) != 0)
		goto out;
	if (envp != NULL && (r = load_env(cfg, envp, err, errlen)) != 0)
		goto out;
	if ((r = load_flags(cfg, argc, argv, err, errlen)) != 0)
		goto out;
	r = 0;
	*out = cfg;
	cfg = NULL;
out:
	conf_free(cfg);
	return r;
}

void
conf_dump(const struct conf *cfg, FILE *fp)
{
	const char *base = (const char *)cfg;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		const char *s;

		switch (k->type) {
		case KEY_STRING:
		case KEY_ADDR:
		case KEY_LIMITS:
			s = *(char *const *)(const void *)(base + k->offset);
			/* Never print a password that may sit in the URL. */
			if (strcmp(k->name, "database_url") == 0 &&
			    (strstr(s, "password") != NULL ||
			     strchr(s, '@') != NULL))
				s = "(set, not shown: may hold a password)";
			fprintf(fp, "%s \"%s\"\n", k->name, s);
			break;
		case KEY_INT:
			fprintf(fp, "%s %d\n", k->name,
				*(const int *)(const void *)(base + k->offset));
			break;
		case KEY_LEVEL:
			fprintf(fp, "%s %s\n", k->name,
				log_level_name(
					*(const enum log_level
						  *)(const void *)(base +
								   k->offset)));
			break;
		}
	}
}

void
conf_print_keys(FILE *fp)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		fprintf(fp, "  --%-20s %s (default: %s)\n", keys[i].name,
			keys[i].help, keys[i].def[0] ? keys[i].def : "\"\"");
}
