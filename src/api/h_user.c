/* SPDX-License-Identifier: MIT */
/*
 * User routes: GET /v1/user (who am I, read by particle whoami and
 * particle-api-js) and POST /v1/users (create an account). Sign-up is
 * closed by default: a new account is created only by an administrator's
 * token, or when no user exists yet (that first user becomes an admin).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/rest_int.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define USER_NAME_MAX 254
#define USER_PASSWORD_MIN 8

struct ureq {
	struct rest *r;
	uint64_t id;
	char *username;
	char *password;
	bool admin_caller; /* the request carries an admin token */
	bool make_admin;   /* is_admin requested by an admin */
};

static void
ureq_free(struct ureq *u)
{
	if (u == NULL)
		return;
	free(u->username);
	if (u->password)
		freezero(u->password, strlen(u->password));
	free(u);
}

static void
user_get_done(int rc, const struct store_result *res, void *arg)
{
	struct ureq *u = arg;
	long long n = 0;

	if (rc != 0) {
		rest_fail_err(u->r->http, u->id, rc);
		goto out;
	}
	if (store_result_ntuples(res) == 1)
		n = strtoll(store_result_value(res, 0, 0), NULL, 10);
	http_request_resume_with(
		u->r->http, u->id, 200,
		json_pack("{s:s, s:[], s:{s:s, s:s, s:b}, s:{s:b}, s:b, s:b, "
			  "s:I, s:I, s:[]}",
			  "username", u->username, "subscription_ids",
			  "account_info", "first_name", "", "last_name", "",
			  "business_account", 0, "mfa", "enabled", 0,
			  "scim_provisioned", 0, "no_password", 0,
			  "wifi_device_count", (json_int_t)n,
			  "cellular_device_count", (json_int_t)0,
			  "memberships"));
out:
	ureq_free(u);
}

static int
h_user_get(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const struct auth_user *au = auth_user_of(req);
	struct ureq *u;
	char uid[24];
	const char *params[1] = {uid};
	int rc;

	if (au == NULL)
		return CINDER_ERR_AUTH;
	u = xcalloc(1, sizeof(*u));
	u->r = r;
	u->id = http_request_id(req);
	u->username = xstrdup(au->username);
	snprintf(uid, sizeof(uid), "%lld", (long long)au->id);
	rc = store_query(r->store, STORE_Q_READ,
			 "SELECT count(*) FROM devices WHERE owner_id = "
			 "$1::bigint",
			 1, params, user_get_done, u, NULL);
	if (rc != 0) {
		ureq_free(u);
		return rc;
	}
	return http_request_suspend(req);
}

static bool
username_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > USER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && strchr("@._+-", c) == NULL)
			return false;
	}
	return true;
}

static void
create_done(int rc, const struct store_result *res, void *arg)
{
	struct ureq *u = arg;
	struct http *h = u->r->http;
	const char *exists = "user with the username already exists";

	if (rc == CINDER_ERR_CONFLICT) {
		http_request_resume_with(h, u->id, 400,
					 json_pack("{s:b, s:s, s:[s]}", "ok", 0,
						   "error", exists, "errors",
						   exists));
	} else if (rc != 0) {
		rest_fail_err(h, u->id, rc);
	} else if (store_result_ntuples(res) != 1) {
		rest_fail(h, u->id, 403,
			  "Sign-up is closed: an administrator creates "
			  "accounts");
	} else {
		log_notice("user %s created (id %s%s)", u->username,
			   store_result_value(res, 0, 0),
			   store_result_value(res, 0, 1)[0] == 't' ? ", admin"
								   : "");
		http_request_resume_with(h, u->id, 200,
					 json_pack("{s:b}", "ok", 1));
	}
	ureq_free(u);
}

static void
create_hashed(struct rest *r, int err, char *hash, void *arg)
{
	struct ureq *u = arg;
	const char *params[4];
	int rc;

	if (err != 0 || hash == NULL) {
		rest_fail_err(r->http, u->id, err ? err : CINDER_ERR_INTERNAL);
		free(hash);
		ureq_free(u);
		return;
	}
	params[0] = u->username;
	params[1] = hash;
	params[2] = u->make_admin ? "t" : "f";
	params[3] = u->admin_caller ? "t" : "f";
	/* Without an admin caller only the very first account may be made,
	 * and it becomes the administrator. */
	rc = store_query(
		r->store, STORE_Q_READ,
		"INSERT INTO users (username, password_hash, is_admin) "
		"SELECT $1, $2, $3::bool OR NOT EXISTS (SELECT 1 FROM "
		"users) WHERE $4::bool OR NOT EXISTS (SELECT 1 FROM "
		"users) RETURNING id, is_admin",
		4, params, create_done, u, NULL);
	free(hash);
	if (rc != 0) {
		rest_fail_err(r->http, u->id, rc);
		ureq_free(u);
	}
}

static void
create_start(struct rest *r, struct ureq *u)
{
	int rc = rest_hash(r, u->password, create_hashed, u);

	if (rc != 0) {
		rest_fail_err(r->http, u->id, rc);
		ureq_free(u);
	}
}

static void
create_caller(struct rest *r, int err, const struct auth_user *au, void *arg)
{
	struct ureq *u = arg;

	if (err != 0) {
		http_request_resume_with(
			r->http, u->id, err == CINDER_ERR_AUTH ? 401 : 503,
			json_pack("{s:s, s:s}", "error", "invalid_token",
				  "error_description",
				  "The access token provided is invalid."));
		ureq_free(u);
		return;
	}
	u->admin_caller = au->is_admin;
	if (!u->admin_caller)
		u->make_admin = false;
	create_start(r, u);
}

static int
h_users_create(struct http_request *req, void *arg)
{
	struct rest *r = arg;
	const char *name = http_request_arg(req, "username");
	const char *pw = http_request_arg(req, "password");
	const char *tok = http_request_token(req);
	struct ureq *u;
	bool adm = false;
	char *p;
	int rc;

	if (name == NULL || pw == NULL)
		return http_respond_json(
			req, 400,
			json_pack("{s:b, s:s, s:[s]}", "ok", 0, "error",
				  "username and password are required",
				  "errors",
				  "username and password are required"));
	if (strlen(pw) < USER_PASSWORD_MIN || strlen(pw) > CRYPTO_PASSWORD_MAX)
		return http_respond_json(
			req, 400,
			json_pack("{s:b, s:s, s:[s]}", "ok", 0, "error",
				  "the password needs at least 8 characters",
				  "errors",
				  "the password needs at least 8 characters"));
	u = xcalloc(1, sizeof(*u));
	u->r = r;
	u->id = http_request_id(req);
	u->username = xstrdup(name);
	for (p = u->username; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!username_ok(u->username)) {
		ureq_free(u);
		return http_respond_json(req, 400,
					 json_pack("{s:b, s:s, s:[s]}", "ok", 0,
						   "error", "invalid username",
						   "errors",
						   "invalid username"));
	}
	u->password = xstrdup(pw);
	if (json_field_bool(http_request_body(req), "is_admin", &adm))
		u->make_admin = adm;
	if (tok != NULL) {
		rc = rest_token_lookup(r, tok, create_caller, u);
		if (rc != 0) {
			ureq_free(u);
			return rc;
		}
	} else {
		u->make_admin = false;
		create_start(r, u);
	}
	return http_request_suspend(req);
}

const struct route h_user_routes[] = {
	{"GET", "/v1/user", ROUTE_AUTH_REQUIRED, h_user_get},
	{"POST", "/v1/users", 0, h_users_create},
};
const size_t h_user_nroutes = sizeof(h_user_routes) / sizeof(h_user_routes[0]);
