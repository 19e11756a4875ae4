/* SPDX-License-Identifier: MIT */
/*
 * Entry point of the REST API: builds the API object, registers the
 * route tables of h_oauth.c, h_user.c, h_devices.c and h_firmware.c, and
 * installs the authenticate hook (bearer token -> struct auth_user,
 * cached) and the admission hook (per-IP limits and failed-login
 * lockout). Also holds the helpers the handler files share: password
 * work on the crypto pool and token lookups in the database.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "api/ratelimit.h"
#include "api/rest_int.h"
#include "conf.h"
#include "crypto.h"
#include "cryptopool.h"
#include "err.h"
#include "fmt.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define REST_CACHE_TTL_MS 30000
#define REST_CACHE_MAX 10000

uint64_t
rest_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

int
rest_oauth_error(struct http *h, uint64_t id, int status, const char *code,
		 const char *desc)
{
	json_t *o = json_pack("{s:s, s:s}", "error", code, "error_description",
			      desc);

	return http_request_resume_with(h, id, status, o);
}

int
rest_fail(struct http *h, uint64_t id, int status, const char *desc)
{
	json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", desc);

	return http_request_resume_with(h, id, status, o);
}

int
rest_fail_err(struct http *h, uint64_t id, int err)
{
	return http_request_resume_error(h, id, err, NULL);
}

/*
 * Password work on the crypto pool.
 */
struct pwjob {
	struct rest *r;
	bool hashing;
	char *secret, *secret_hash; /* client check (may be NULL) */
	char *pw, *pw_hash;	    /* user check or the password to hash */
	bool pw_known;		    /* pw_hash is the user's, not the dummy */
	int client_r, user_r;
	char *out_hash;
	rest_check_cb check_cb;
	rest_hash_cb hash_cb;
	void *arg;
};

static void
pwjob_free(struct pwjob *j)
{
	if (j->secret)
		freezero(j->secret, strlen(j->secret));
	if (j->pw)
		freezero(j->pw, strlen(j->pw));
	free(j->secret_hash);
	free(j->pw_hash);
	free(j->out_hash);
	free(j);
}

static void
pwjob_work(void *arg)
{
	struct pwjob *j = arg;

	if (j->hashing) {
		j->user_r = crypto_password_hash(j->pw, &j->out_hash);
		return;
	}
	j->client_r = 0;
	if (j->secret_hash != NULL)
		j->client_r = crypto_password_verify(j->secret ? j->secret : "",
						     j->secret_hash);
	if (j->pw_hash != NULL) {
		j->user_r =
			crypto_password_verify(j->pw ? j->pw : "", j->pw_hash);
		if (!j->pw_known)
			j->user_r = CINDER_ERR_AUTH;
	} else {
		j->user_r = CINDER_ERR_AUTH;
	}
}

static void
rest_release(struct rest *r)
{
	if (r->dead && r->jobs == 0) {
		free(r->dummy_hash);
		free(r);
	}
}

static void
pwjob_done(void *arg, bool cancelled)
{
	struct pwjob *j = arg;
	struct rest *r = j->r;
	char *h;

	r->jobs--;
	if (r->dead) {
		pwjob_free(j);
		rest_release(r);
		return;
	}
	if (cancelled)
		j->client_r = j->user_r = CINDER_ERR_UNAVAILABLE;
	if (j->hashing) {
		h = j->out_hash;
		j->out_hash = NULL;
		j->hash_cb(r, cancelled ? CINDER_ERR_UNAVAILABLE : j->user_r, h,
			   j->arg);
	} else {
		j->check_cb(r, j->client_r, j->user_r, j->arg);
	}
	pwjob_free(j);
}

static int
pwjob_submit(struct rest *r, struct pwjob *j)
{
	int rc;

	j->r = r;
	rc = cryptopool_submit(r->pool, pwjob_work, pwjob_done, j);
	if (rc != 0) {
		j->check_cb = NULL;
		pwjob_free(j);
		return rc;
	}
	r->jobs++;
	return 0;
}

int
rest_check(struct rest *r, const char *client_secret, const char *client_hash,
	   const char *password, const char *user_hash, rest_check_cb cb,
	   void *arg)
{
	struct pwjob *j = xcalloc(1, sizeof(*j));

	j->secret = client_secret ? xstrdup(client_secret) : NULL;
	j->secret_hash = client_hash ? xstrdup(client_hash) : NULL;
	j->pw = password ? xstrdup(password) : NULL;
	j->pw_known = user_hash != NULL;
	if (user_hash != NULL)
		j->pw_hash = xstrdup(user_hash);
	else if (r->dummy_hash != NULL)
		j->pw_hash = xstrdup(r->dummy_hash);
	j->check_cb = cb;
	j->arg = arg;
	return pwjob_submit(r, j);
}

int
rest_hash(struct rest *r, const char *password, rest_hash_cb cb, void *arg)
{
	struct pwjob *j = xcalloc(1, sizeof(*j));

	j->hashing = true;
	j->pw = xstrdup(password);
	j->hash_cb = cb;
	j->arg = arg;
	return pwjob_submit(r, j);
}

static void
dummy_done(struct rest *r, int err, char *hash, void *arg)
{
	(void)arg;
	if (err == 0 && hash != NULL && r->dummy_hash == NULL)
		r->dummy_hash = hash;
	else
		free(hash);
}

/*
 * Token lookup.
 */
struct tlookup {
	struct rest *r;
	uint8_t hash[32];
	rest_token_cb cb;
	void *arg;
};

static void
tlookup_done(int rc, const struct store_result *res, void *arg)
{
	struct tlookup *t = arg;
	struct auth_user u;
	const char *exp, *params[1];
	char hex[65];
	uint64_t exp_ms = 0;

	memset(&u, 0, sizeof(u));
	if (rc != 0) {
		t->cb(t->r, rc, NULL, t->arg);
		goto out;
	}
	if (store_result_ntuples(res) != 1) {
		t->cb(t->r, CINDER_ERR_AUTH, NULL, t->arg);
		goto out;
	}
	u.id = strtoll(store_result_value(res, 0, 0), NULL, 10);
	u.username = (char *)store_result_value(res, 0, 1);
	u.is_admin = store_result_value(res, 0, 2)[0] == 't';
	u.client_id = (char *)store_result_value(res, 0, 3);
	exp = store_result_value(res, 0, 4);
	if (exp != NULL)
		exp_ms = strtoull(exp, NULL, 10);
	auth_cache_put(t->r->cache, t->hash, &u, exp_ms, rest_now_ms());
	/* last_used_at: at most once per cache lifetime per token */
	fmt_hex(t->hash, 32, hex);
	params[0] = hex;
	store_query(t->r->store, STORE_Q_WRITE,
		    "UPDATE access_tokens SET last_used_at = now() WHERE "
		    "token_sha256 = decode($1, 'hex')",
		    1, params, NULL, NULL, NULL);
	t->cb(t->r, 0, &u, t->arg);
out:
	free(t);
}

int
rest_token_lookup(struct rest *r, const char *token, rest_token_cb cb,
		  void *arg)
{
	struct tlookup *t;
	const struct auth_user *u;
	char hex[65];
	const char *params[1];
	int rc;

	if (!auth_token_wellformed(token))
		return CINDER_ERR_AUTH;
	t = xcalloc(1, sizeof(*t));
	auth_token_hash(token, t->hash);
	if ((u = auth_cache_get(r->cache, t->hash, rest_now_ms())) != NULL) {
		free(t);
		cb(r, 0, u, arg);
		return 0;
	}
	t->r = r;
	t->cb = cb;
	t->arg = arg;
	fmt_hex(t->hash, 32, hex);
	params[0] = hex;
	rc = store_query(
		r->store, STORE_Q_READ,
		"SELECT u.id, u.username, u.is_admin, t.client_id, "
		"COALESCE((extract(epoch FROM t.expires_at) * 1000)"
		"::bigint, 0) "
		"FROM access_tokens t JOIN users u ON u.id = t.user_id "
		"WHERE t.token_sha256 = decode($1, 'hex') AND "
		"(t.expires_at IS NULL OR t.expires_at > now())",
		1, params, tlookup_done, t, NULL);
	if (rc != 0)
		free(t);
	return rc;
}

/*
 * Hooks.
 */
static void
auth_hook_done(struct rest *r, int err, const struct auth_user *u, void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct http_request *req = http_request_lookup(r->http, id);

	if (req == NULL)
		return;
	if (err == 0)
		http_request_set_user(req, auth_user_dup(u), auth_user_free);
	http_request_auth_done(r->http, id, err);
}

static int
auth_hook(struct http_request *req, const char *token, void *arg)
{
	struct rest *r = arg;
	struct auth_user *u;
	uint8_t hash[32];
	uint64_t id = http_request_id(req);
	int rc;

	if (!auth_token_wellformed(token))
		return CINDER_ERR_AUTH;
	auth_token_hash(token, hash);
	if ((u = auth_cache_ref(r->cache, hash, rest_now_ms())) != NULL) {
		http_request_set_user(req, u, auth_user_free);
		return 0;
	}
	rc = rest_token_lookup(r, token, auth_hook_done, (void *)(uintptr_t)id);
	return rc != 0 ? rc : HTTP_AUTH_PENDING;
}

static enum rl_bucket
bucket_of(const char *method, const char *pattern)
{
	if (pattern == NULL)
		return RL_ALL;
	if (strcmp(pattern, "/oauth/token") == 0 && strcmp(method, "POST") == 0)
		return RL_OAUTH_TOKEN;
	if (strcmp(pattern, "/v1/access_tokens") == 0 &&
	    strcmp(method, "GET") == 0)
		return RL_TOKENS_LIST;
	if (strcmp(pattern, "/v1/access_tokens/:token") == 0 &&
	    strcmp(method, "DELETE") == 0)
		return RL_TOKEN_DELETE;
	if (strcmp(pattern, "/v1/users") == 0 && strcmp(method, "POST") == 0)
		return RL_USERS_CREATE;
	if (strcmp(method, "GET") == 0 && strstr(pattern, "events") != NULL)
		return RL_EVENTS;
	return RL_ALL;
}

static int
admit_hook(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const char *ip = http_request_client_ip(req);
	const char *method = http_request_method(req);
	const char *pattern = http_request_pattern(req);
	enum rl_bucket b = bucket_of(method, pattern);
	uint64_t now = rest_now_ms();

	/* health checks (load balancers, wait-for-ready loops) are free */
	if (pattern != NULL && (strcmp(pattern, "/v1/ping") == 0 ||
				strcmp(pattern, "/healthz") == 0))
		return 0;
	/* a locked-out address may not try passwords anywhere */
	if ((b == RL_OAUTH_TOKEN || b == RL_TOKENS_LIST) &&
	    ratelimit_locked(r->rl, ip, now)) {
		log_ctx(LOG_LEVEL_INFO, http_request_log_ctx(req),
			"login from %s refused: locked out after failures", ip);
		return CINDER_ERR_BUSY;
	}
	if (ratelimit_hit(r->rl, ip, b, now) != 0) {
		log_ctx(LOG_LEVEL_INFO, http_request_log_ctx(req),
			"rate limit for %s reached", ip);
		return CINDER_ERR_BUSY;
	}
	return 0;
}

/*
 * Config key rate_limits: "all=N,token=N,lock=N" overrides the per-IP
 * requests per 5 minutes on all routes and on /oauth/token, and the
 * failed-login count that locks an address out; "" keeps Particle's.
 */
static int
limits_from_conf(struct rest *r, const char *spec)
{
	char *copy, *tok, *save = NULL;
	struct rl_rule rule = {0, 5ULL * 60 * 1000};
	int rc = 0;

	if (spec == NULL || *spec == '\0')
		return 0;
	copy = xstrdup(spec);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned v;
		char end;

		if (sscanf(tok, "token=%u%c", &v, &end) == 1) {
			rule.limit = v;
			ratelimit_set_rule(r->rl, RL_OAUTH_TOKEN, &rule);
		} else if (sscanf(tok, "all=%u%c", &v, &end) == 1) {
			rule.limit = v;
			ratelimit_set_rule(r->rl, RL_ALL, &rule);
		} else if (sscanf(tok, "lock=%u%c", &v, &end) == 1 && v > 0) {
			ratelimit_set_lockout(r->rl, v, 30ULL * 60 * 1000);
		} else {
			log_err("rate_limits: \"%s\" is not all=N, token=N or "
				"lock=N",
				tok);
			rc = CINDER_ERR_INVAL;
			break;
		}
	}
	free(copy);
	return rc;
}

/* The store's notification hook: device-row changes on any node. */
static void
notify_cb(const char *channel, const char *payload, void *arg)
{
	if (strcmp(channel, REST_DEVICES_CHANNEL) == 0)
		h_devices_notify(arg, payload);
}

int
rest_new(const struct rest_deps *deps, struct rest **out)
{
	struct rest *r = xcalloc(1, sizeof(*r));
	char pw[AUTH_TOKEN_LEN + 1];
	int rc = CINDER_ERR_INTERNAL;

	*out = NULL;
	r->base = deps->base;
	r->cfg = deps->cfg;
	r->http = deps->http;
	r->store = deps->store;
	r->reg = deps->reg;
	r->pool = deps->pool;
	r->cache = auth_cache_new(REST_CACHE_TTL_MS, REST_CACHE_MAX);
	r->rl = ratelimit_new(0);
	if ((rc = limits_from_conf(r, r->cfg->rate_limits)) != 0)
		goto out;
	if ((rc = http_add_routes(r->http, h_oauth_routes, h_oauth_nroutes,
				  r)) != 0 ||
	    (rc = http_add_routes(r->http, h_user_routes, h_user_nroutes, r)) !=
		    0 ||
	    (rc = http_add_routes(r->http, h_devices_routes, h_devices_nroutes,
				  r)) != 0 ||
	    (rc = http_add_routes(r->http, h_firmware_routes,
				  h_firmware_nroutes, r)) != 0 ||
	    (rc = http_add_routes(r->http, h_flash_routes, h_flash_nroutes,
				  r)) != 0) {
		log_err("rest: cannot register routes: %s", err_str(rc));
		goto out;
	}
	if (r->store != NULL) {
		store_notify_set(r->store, notify_cb, r);
		store_listen(r->store, REST_DEVICES_CHANNEL);
	}
	http_set_auth_cb(r->http, auth_hook, r);
	http_set_admit_cb(r->http, admit_hook, r);
	/* A hash to verify unknown users against, so that a login for a
	 * user that does not exist costs the same as a wrong password. */
	if (auth_token_generate(pw) == 0)
		rest_hash(r, pw, dummy_done, NULL);
	crypto_wipe(pw, sizeof(pw));
	*out = r;
	r = NULL;
	rc = 0;
out:
	if (r != NULL) {
		auth_cache_free(r->cache);
		ratelimit_free(r->rl);
		free(r);
	}
	return rc;
}

void
rest_set_healer(struct rest *r, struct healer *h)
{
	r->healer = h;
}

void
rest_status_fill(const struct rest *r, json_t *obj)
{
	json_object_set_new(obj, "api",
			    json_pack("{s:I, s:I, s:I}", "device_rows",
				      (json_int_t)h_devices_cache_count(r),
				      "device_rows_swept",
				      (json_int_t)r->devrows_swept,
				      "device_rows_registry",
				      (json_int_t)r->devrows_registry));
}

void
rest_free(struct rest *r)
{
	if (r == NULL)
		return;
	/* The HTTP server is gone already (see rest.h): no hooks to clear
	   there; the store's notification hook is ours. */
	if (r->store != NULL)
		store_notify_set(r->store, NULL, NULL);
	auth_cache_free(r->cache);
	ratelimit_free(r->rl);
	h_devices_cache_free(r);
	r->cache = NULL;
	r->rl = NULL;
	r->dead = true;
	rest_release(r);
}
