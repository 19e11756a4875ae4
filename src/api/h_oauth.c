/* SPDX-License-Identifier: MIT */
/*
 * OAuth and access-token routes (cloud-api.md 1.1): POST /oauth/token
 * (password and refresh_token grants, client credentials by HTTP Basic or
 * form fields) and the /v1/access_tokens family. A refresh token is
 * linked to the last access token issued with it; revoking that access
 * token (logout) revokes the refresh token too. Secrets are checked on
 * the crypto pool; each request is suspended while the database and the
 * pool work and answered by id.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/ratelimit.h"
#include "api/rest_int.h"
#include "crypto.h"
#include "err.h"
#include "fmt.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

/*
 * Besides the oauth_clients rows, the client id "user" is accepted as a
 * public client: particle-cli's `token create` asks with it.
 */
#define OAUTH_DEFAULT_EXPIRES 7776000LL	       /* 90 days */
#define OAUTH_MAX_EXPIRES (10LL * 366 * 86400) /* ten years */

/* One token or access-token request in flight. */
struct oreq {
	struct rest *r;
	uint64_t id;
	char ip[64];
	bool refresh; /* grant_type=refresh_token */
	char *client_id, *client_secret;
	char *username, *password; /* password grant, Basic auth */
	char *refresh_token;	   /* refresh grant */
	char *token;		   /* DELETE /v1/access_tokens/:token */
	long long expires_in;
	int64_t user_id;
};

static void
oreq_free(struct oreq *o)
{
	if (o == NULL)
		return;
	free(o->client_id);
	if (o->client_secret)
		freezero(o->client_secret, strlen(o->client_secret));
	free(o->username);
	if (o->password)
		freezero(o->password, strlen(o->password));
	if (o->refresh_token)
		freezero(o->refresh_token, strlen(o->refresh_token));
	if (o->token)
		freezero(o->token, strlen(o->token));
	free(o);
}

static struct oreq *
oreq_new(struct rest *r, struct http_request *req)
{
	struct oreq *o = xcalloc(1, sizeof(*o));

	o->r = r;
	o->id = http_request_id(req);
	snprintf(o->ip, sizeof(o->ip), "%s", http_request_client_ip(req));
	return o;
}

static char *
lowercase_dup(const char *s)
{
	char *d = xstrdup(s), *p;

	for (p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int
oauth_refuse(struct http_request *req, int status, const char *code,
	     const char *desc)
{
	return http_respond_json(req, status,
				 json_pack("{s:s, s:s}", "error", code,
					   "error_description", desc));
}

/*
 * POST /oauth/token
 */
static void
issue_done(int rc, const struct store_result *res, void *arg)
{
	struct oreq *o = arg;
	json_t *body;

	(void)res;
	if (rc != 0) {
		rest_fail_err(o->r->http, o->id, rc);
		goto out;
	}
	/* access token kept in o->token, refresh in o->refresh_token */
	body = json_pack("{s:s, s:s, s:I, s:s}", "token_type", "bearer",
			 "access_token", o->token, "expires_in",
			 (json_int_t)o->expires_in, "refresh_token",
			 o->refresh_token);
	http_request_resume_with(o->r->http, o->id, 200, body);
out:
	oreq_free(o);
}

static void
issue_tokens(struct oreq *o)
{
	char access[AUTH_TOKEN_LEN + 1], refresh[AUTH_TOKEN_LEN + 1];
	uint8_t ah[32], rh[32];
	char ahex[65], rhex[65], uid[24], exp[24];
	const char *params[5];
	int rc;

	if (auth_token_generate(access) != 0 ||
	    (!o->refresh && auth_token_generate(refresh) != 0)) {
		rest_fail_err(o->r->http, o->id, CINDER_ERR_INTERNAL);
		oreq_free(o);
		return;
	}
	auth_token_hash(access, ah);
	fmt_hex(ah, 32, ahex);
	if (!o->refresh) {
		auth_token_hash(refresh, rh);
		o->refresh_token = xstrdup(refresh);
	} else {
		auth_token_hash(o->refresh_token, rh);
	}
	fmt_hex(rh, 32, rhex);
	o->token = xstrdup(access);
	snprintf(uid, sizeof(uid), "%lld", (long long)o->user_id);
	snprintf(exp, sizeof(exp), "%lld", o->expires_in);
	params[0] = ahex;
	params[1] = rhex;
	params[2] = uid;
	params[3] = o->client_id;
	params[4] = exp;
	if (o->refresh)
		rc = store_query(
			o->r->store, STORE_Q_WRITE,
			"WITH a AS (INSERT INTO access_tokens (token_sha256, "
			"user_id, client_id, expires_at) VALUES (decode($1, "
			"'hex'), $3::bigint, $4, CASE WHEN $5::bigint = 0 THEN "
			"NULL ELSE now() + make_interval(secs => $5::bigint) "
			"END) RETURNING token_sha256) UPDATE refresh_tokens "
			"SET "
			"access_token_sha256 = (SELECT token_sha256 FROM a), "
			"last_used_at = now() WHERE token_sha256 = "
			"decode($2, 'hex')",
			5, params, issue_done, o, NULL);
	else
		rc = store_query(
			o->r->store, STORE_Q_WRITE,
			"WITH a AS (INSERT INTO access_tokens (token_sha256, "
			"user_id, client_id, expires_at) VALUES "
			"(decode($1, 'hex'), $3::bigint, $4, CASE WHEN "
			"$5::bigint = 0 THEN NULL ELSE now() + "
			"make_interval(secs => $5::bigint) END) RETURNING "
			"token_sha256) INSERT INTO refresh_tokens "
			"(token_sha256, user_id, client_id, "
			"access_token_sha256) SELECT decode($2, 'hex'), "
			"$3::bigint, $4, token_sha256 FROM a",
			5, params, issue_done, o, NULL);
	crypto_wipe(access, sizeof(access));
	crypto_wipe(refresh, sizeof(refresh));
	if (rc != 0) {
		rest_fail_err(o->r->http, o->id, rc);
		oreq_free(o);
	}
}

static void
token_checked(struct rest *r, int client_r, int user_r, void *arg)
{
	struct oreq *o = arg;

	if (client_r == CINDER_ERR_UNAVAILABLE ||
	    user_r == CINDER_ERR_UNAVAILABLE) {
		rest_fail_err(r->http, o->id, CINDER_ERR_UNAVAILABLE);
		goto fail;
	}
	if (client_r != 0) {
		rest_oauth_error(r->http, o->id, 401, "invalid_client",
				 "Client authentication failed");
		goto fail;
	}
	if (!o->refresh) {
		if (user_r != 0) {
			ratelimit_login_failed(r->rl, o->ip, rest_now_ms());
			rest_oauth_error(r->http, o->id, 400, "invalid_grant",
					 "User credentials are invalid");
			goto fail;
		}
		ratelimit_login_ok(r->rl, o->ip);
	}
	issue_tokens(o);
	return;
fail:
	oreq_free(o);
}

static void
token_looked_up(int rc, const struct store_result *res, void *arg)
{
	struct oreq *o = arg;
	struct rest *r = o->r;
	const char *client_hash, *user_hash, *uid, *rclient;

	if (rc != 0) {
		rest_fail_err(r->http, o->id, rc);
		goto fail;
	}
	if (store_result_ntuples(res) != 1 ||
	    strcmp(store_result_value(res, 0, 0), "t") != 0) {
		rest_oauth_error(r->http, o->id, 401, "invalid_client",
				 "Client authentication failed");
		goto fail;
	}
	client_hash = store_result_value(res, 0, 1);
	uid = store_result_value(res, 0, 2);
	user_hash = store_result_value(res, 0, 3);
	rclient = store_result_value(res, 0, 4);
	if (uid != NULL)
		o->user_id = strtoll(uid, NULL, 10);
	if (o->refresh) {
		/* the refresh token must exist and belong to this client */
		if (uid == NULL || rclient == NULL ||
		    strcmp(rclient, o->client_id) != 0) {
			rest_oauth_error(r->http, o->id, 400, "invalid_grant",
					 "The refresh token is invalid or "
					 "expired");
			goto fail;
		}
		if (client_hash == NULL) {
			issue_tokens(o);
			return;
		}
		user_hash = NULL;
	}
	rc = rest_check(r, o->client_secret, client_hash, o->password,
			user_hash, token_checked, o);
	if (rc != 0) {
		rest_fail_err(r->http, o->id, rc);
		goto fail;
	}
	return;
fail:
	oreq_free(o);
}

static int
h_oauth_token(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	struct oreq *o;
	const char *grant = http_request_arg(req, "grant_type");
	const char *v;
	char *bu = NULL, *bp = NULL;
	char hex[65];
	uint8_t h[32];
	const char *params[2];
	long long exp = OAUTH_DEFAULT_EXPIRES;
	int rc;

	if (grant == NULL)
		return oauth_refuse(req, 400, "invalid_request",
				    "grant_type is required");
	if (strcmp(grant, "password") != 0 &&
	    strcmp(grant, "refresh_token") != 0)
		return oauth_refuse(req, 400, "unsupported_grant_type",
				    "Only the password and refresh_token "
				    "grants are supported");
	if (!json_field_int(http_request_body(req), "expires_in", &exp) &&
	    (v = http_request_arg(req, "expires_in")) != NULL) {
		char *end;

		exp = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0')
			exp = -1;
	}
	if (exp < 0 || exp > OAUTH_MAX_EXPIRES)
		return oauth_refuse(req, 400, "invalid_request",
				    "expires_in must be 0 (never) up to ten "
				    "years in seconds");
	o = oreq_new(r, req);
	o->expires_in = exp;
	o->refresh = strcmp(grant, "refresh_token") == 0;
	if (http_request_basic_auth(req, &bu, &bp) == 0) {
		o->client_id = bu;
		o->client_secret = bp;
	} else if ((v = http_request_arg(req, "client_id")) != NULL) {
		o->client_id = xstrdup(v);
		v = http_request_arg(req, "client_secret");
		o->client_secret = xstrdup(v ? v : "");
	} else {
		oreq_free(o);
		return oauth_refuse(req, 401, "invalid_client",
				    "Client credentials are required");
	}
	if (o->refresh) {
		v = http_request_arg(req, "refresh_token");
		if (v == NULL || !auth_token_wellformed(v)) {
			oreq_free(o);
			return oauth_refuse(req, 400, "invalid_request",
					    "refresh_token is required");
		}
		o->refresh_token = xstrdup(v);
		auth_token_hash(v, h);
		fmt_hex(h, 32, hex);
		params[1] = hex;
	} else {
		const char *u = http_request_arg(req, "username");
		const char *p = http_request_arg(req, "password");

		if (u == NULL || p == NULL || *u == '\0' ||
		    strlen(p) > CRYPTO_PASSWORD_MAX) {
			oreq_free(o);
			return oauth_refuse(req, 400, "invalid_request",
					    "username and password are "
					    "required");
		}
		o->username = lowercase_dup(u);
		o->password = xstrdup(p);
		params[1] = o->username;
	}
	params[0] = o->client_id;
	if (o->refresh)
		rc = store_query(
			r->store, STORE_Q_READ,
			"SELECT c.client_id IS NOT NULL OR $1 = 'user', "
			"c.secret_hash, "
			"t.user_id, NULL::text, t.client_id FROM (SELECT 1) x "
			"LEFT JOIN oauth_clients c ON c.client_id = $1 "
			"LEFT JOIN refresh_tokens t ON t.token_sha256 = "
			"decode($2, 'hex') AND (t.expires_at IS NULL OR "
			"t.expires_at > now()) AND t.user_id IS NOT NULL",
			2, params, token_looked_up, o, NULL);
	else
		rc = store_query(
			r->store, STORE_Q_READ,
			"SELECT c.client_id IS NOT NULL OR $1 = 'user', "
			"c.secret_hash, u.id, "
			"u.password_hash, NULL::text FROM (SELECT 1) x "
			"LEFT JOIN oauth_clients c ON c.client_id = $1 "
			"LEFT JOIN users u ON u.username = $2",
			2, params, token_looked_up, o, NULL);
	if (rc != 0) {
		oreq_free(o);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * /v1/access_tokens (HTTP Basic username:password: legacy clients)
 */
static int
basic_refuse(struct http_request *req, const char *desc)
{
	return http_respond_json(req, 401,
				 json_pack("{s:b, s:s, s:[s]}", "ok", 0,
					   "error", desc, "errors", desc));
}

static void
list_done(int rc, const struct store_result *res, void *arg)
{
	struct oreq *o = arg;
	json_t *arr;
	int i, n;

	if (rc != 0) {
		rest_fail_err(o->r->http, o->id, rc);
		goto out;
	}
	arr = json_array();
	n = store_result_ntuples(res);
	for (i = 0; i < n; i++) {
		const char *exp = store_result_value(res, i, 1);

		json_array_append_new(
			arr,
			json_pack("{s:s, s:o, s:s}", "token",
				  store_result_value(res, i, 0), "expires_at",
				  exp ? json_string(exp) : json_null(),
				  "client", store_result_value(res, i, 2)));
	}
	http_request_resume_with(o->r->http, o->id, 200, arr);
out:
	oreq_free(o);
}

static void
delete_done(int rc, const struct store_result *res, void *arg)
{
	struct oreq *o = arg;

	(void)res;
	if (rc != 0)
		rest_fail_err(o->r->http, o->id, rc);
	else
		http_request_resume_with(o->r->http, o->id, 200,
					 json_pack("{s:b}", "ok", 1));
	oreq_free(o);
}

/* Delete one token: by its text, or (with Basic auth) by its hash hex. */
static int
delete_token(struct oreq *o)
{
	uint8_t h[32];
	char hex[65], uid[24];
	const char *params[3];
	bool by_hash = false;
	size_t i, n = strlen(o->token);

	auth_token_hash(o->token, h);
	auth_cache_remove(o->r->cache, h);
	fmt_hex(h, 32, hex);
	if (o->user_id != 0 && n == 64) {
		by_hash = true;
		for (i = 0; i < n; i++)
			if (!isxdigit((unsigned char)o->token[i]))
				by_hash = false;
	}
	snprintf(uid, sizeof(uid), "%lld", (long long)o->user_id);
	params[0] = hex;
	params[1] = uid;
	params[2] = by_hash ? o->token : hex;
	if (by_hash) {
		/* the cache is keyed by the same hash */
		uint8_t raw[32];

		for (i = 0; i < 32; i++) {
			unsigned int b;

			sscanf(o->token + 2 * i, "%2x", &b);
			raw[i] = (uint8_t)b;
		}
		auth_cache_remove(o->r->cache, raw);
	}
	if (o->user_id != 0)
		return store_query(
			o->r->store, STORE_Q_WRITE,
			"WITH r AS (DELETE FROM refresh_tokens WHERE "
			"user_id = $2::bigint AND access_token_sha256 "
			"IN (decode($1, 'hex'), decode(lower($3), "
			"'hex'))) DELETE FROM access_tokens WHERE "
			"user_id = $2::bigint AND token_sha256 IN "
			"(decode($1, 'hex'), decode(lower($3), "
			"'hex'))",
			3, params, delete_done, o, NULL);
	return store_query(o->r->store, STORE_Q_WRITE,
			   "WITH r AS (DELETE FROM refresh_tokens WHERE "
			   "access_token_sha256 = decode($1, 'hex')) DELETE "
			   "FROM access_tokens WHERE token_sha256 = "
			   "decode($1, 'hex')",
			   1, params, delete_done, o, NULL);
}

static void
basic_checked(struct rest *r, int client_r, int user_r, void *arg)
{
	struct oreq *o = arg;
	char uid[24];
	const char *params[1];
	int rc;

	(void)client_r;
	if (user_r != 0) {
		if (user_r == CINDER_ERR_AUTH)
			ratelimit_login_failed(r->rl, o->ip, rest_now_ms());
		http_request_resume_with(
			r->http, o->id, user_r == CINDER_ERR_AUTH ? 401 : 503,
			json_pack("{s:b, s:s, s:[s]}", "ok", 0, "error",
				  "Unauthorized", "errors", "Unauthorized"));
		oreq_free(o);
		return;
	}
	ratelimit_login_ok(r->rl, o->ip);
	if (o->token != NULL) {
		rc = delete_token(o);
	} else {
		snprintf(uid, sizeof(uid), "%lld", (long long)o->user_id);
		params[0] = uid;
		rc = store_query(
			r->store, STORE_Q_READ,
			"SELECT encode(token_sha256, 'hex'), "
			"to_char(expires_at "
			"AT TIME ZONE 'UTC', "
			"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
			"client_id FROM access_tokens WHERE user_id = "
			"$1::bigint AND (expires_at IS NULL OR expires_at > "
			"now()) ORDER BY created_at",
			1, params, list_done, o, NULL);
	}
	if (rc != 0) {
		rest_fail_err(r->http, o->id, rc);
		oreq_free(o);
	}
}

static void
basic_user_found(int rc, const struct store_result *res, void *arg)
{
	struct oreq *o = arg;
	const char *hash = NULL;

	if (rc != 0) {
		rest_fail_err(o->r->http, o->id, rc);
		oreq_free(o);
		return;
	}
	if (store_result_ntuples(res) == 1) {
		o->user_id = strtoll(store_result_value(res, 0, 0), NULL, 10);
		hash = store_result_value(res, 0, 1);
	}
	rc = rest_check(o->r, NULL, NULL, o->password, hash, basic_checked, o);
	if (rc != 0) {
		rest_fail_err(o->r->http, o->id, rc);
		oreq_free(o);
	}
}

/* Start the Basic username:password check of o (o->username set). */
static int
basic_start(struct http_request *req, struct oreq *o)
{
	const char *params[1] = {o->username};
	int rc;

	rc = store_query(o->r->store, STORE_Q_READ,
			 "SELECT id, password_hash FROM users WHERE "
			 "username = $1",
			 1, params, basic_user_found, o, NULL);
	if (rc != 0) {
		oreq_free(o);
		return rc;
	}
	return http_request_suspend(req);
}

static int
h_tokens_list(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	struct oreq *o;
	char *bu = NULL, *bp = NULL;

	if (http_request_basic_auth(req, &bu, &bp) != 0)
		return basic_refuse(req, "HTTP Basic username:password "
					 "required");
	o = oreq_new(r, req);
	o->username = lowercase_dup(bu);
	o->password = bp;
	free(bu);
	return basic_start(req, o);
}

static int
h_token_delete(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	struct oreq *o;
	const char *tok = http_request_param(req, "token");
	char *bu = NULL, *bp = NULL;
	int rc;

	if (tok == NULL || !auth_token_wellformed(tok))
		return http_respond_json(req, 200, json_pack("{s:b}", "ok", 1));
	o = oreq_new(r, req);
	o->token = xstrdup(tok);
	if (http_request_basic_auth(req, &bu, &bp) == 0) {
		o->username = lowercase_dup(bu);
		o->password = bp;
		free(bu);
		return basic_start(req, o);
	}
	/* No credentials (particle-api-js >= 11, current CLI): holding the
	 * token is the authority to revoke it. */
	if ((rc = delete_token(o)) != 0) {
		oreq_free(o);
		return rc;
	}
	return http_request_suspend(req);
}

/*
 * Bearer routes on the current token.
 */
static void
current_done(int rc, const struct store_result *res, void *arg)
{
	struct oreq *o = arg;
	const char *exp;

	if (rc != 0) {
		rest_fail_err(o->r->http, o->id, rc);
		goto out;
	}
	if (store_result_ntuples(res) != 1) {
		rest_oauth_error(o->r->http, o->id, 401, "invalid_token",
				 "The access token provided is invalid.");
		goto out;
	}
	exp = store_result_value(res, 0, 0);
	http_request_resume_with(
		o->r->http, o->id, 200,
		json_pack("{s:o, s:s, s:[], s:[]}", "expires_at",
			  exp ? json_string(exp) : json_null(), "client_id",
			  store_result_value(res, 0, 1), "scopes", "orgs"));
out:
	oreq_free(o);
}

static int
h_token_current(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const char *tok = http_request_token(req);
	struct oreq *o;
	uint8_t h[32];
	char hex[65];
	const char *params[1] = {hex};
	bool del = strcmp(http_request_method(req), "DELETE") == 0;
	int rc;

	if (tok == NULL)
		return CINDER_ERR_AUTH;
	auth_token_hash(tok, h);
	fmt_hex(h, 32, hex);
	o = oreq_new(r, req);
	if (del) {
		auth_cache_remove(r->cache, h);
		rc = store_query(r->store, STORE_Q_WRITE,
				 "WITH r AS (DELETE FROM refresh_tokens WHERE "
				 "access_token_sha256 = decode($1, 'hex')) "
				 "DELETE FROM access_tokens WHERE "
				 "token_sha256 = decode($1, 'hex')",
				 1, params, delete_done, o, NULL);
	} else {
		rc = store_query(
			r->store, STORE_Q_READ,
			"SELECT to_char(expires_at AT TIME ZONE 'UTC', "
			"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), client_id FROM "
			"access_tokens WHERE token_sha256 = decode($1, 'hex')",
			1, params, current_done, o, NULL);
	}
	if (rc != 0) {
		oreq_free(o);
		return rc;
	}
	return http_request_suspend(req);
}

static int
h_tokens_delete_all(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const struct auth_user *u = auth_user_of(req);
	struct oreq *o;
	char uid[24];
	const char *params[1] = {uid};
	int rc;

	if (u == NULL)
		return CINDER_ERR_AUTH;
	auth_cache_remove_user(r->cache, u->id);
	snprintf(uid, sizeof(uid), "%lld", (long long)u->id);
	o = oreq_new(r, req);
	rc = store_query(
		r->store, STORE_Q_WRITE,
		"WITH x AS (DELETE FROM refresh_tokens WHERE user_id = "
		"$1::bigint) DELETE FROM access_tokens WHERE "
		"user_id = $1::bigint",
		1, params, delete_done, o, NULL);
	if (rc != 0) {
		oreq_free(o);
		return rc;
	}
	return http_request_suspend(req);
}

const struct route h_oauth_routes[] = {
	{"POST", "/oauth/token", 0, h_oauth_token},
	{"GET", "/v1/access_tokens", 0, h_tokens_list},
	{"DELETE", "/v1/access_tokens", ROUTE_AUTH_REQUIRED,
	 h_tokens_delete_all},
	{"GET", "/v1/access_tokens/current", ROUTE_AUTH_REQUIRED,
	 h_token_current},
	{"DELETE", "/v1/access_tokens/current", ROUTE_AUTH_REQUIRED,
	 h_token_current},
	{"DELETE", "/v1/access_tokens/:token", 0, h_token_delete},
};
const size_t h_oauth_nroutes =
	sizeof(h_oauth_routes) / sizeof(h_oauth_routes[0]);
