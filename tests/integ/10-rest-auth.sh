#!/bin/bash
# SPDX-License-Identifier: MIT
# REST auth against a real cinderd: first-user sign-up, closed sign-up,
# admin-created users, /oauth/token (Basic and form client credentials,
# bad client, bad password, refresh grant, expires_in), bearer tokens
# from header, query and form, /v1/user, access token listing (Basic),
# revocation without credentials, current token, revoke-all.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
start_cinderd

# First user: sign-up is open while no user exists, and it becomes admin.
http POST /v1/users -d username=Admin@Example.com -d password=adminpass1
expect 200 "first sign-up"
[ "$(sql "SELECT username || ' ' || is_admin::int FROM users")" = "admin@example.com 1" ] ||
	fail "first user not stored lowercased as admin"
# Now it is closed for anonymous callers.
http POST /v1/users -d username=eve@example.com -d password=evepass123
expect 403 "second anonymous sign-up"
http POST /v1/users -d username=x -d password=short
expect 400 "short password"

# Login: HTTP Basic client credentials (docs default particle:particle).
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=admin@example.com -d password=adminpass1
expect 200 "login with Basic client"
[ "$(field '["token_type"]')" = bearer ] || fail "token_type"
[ "$(field '["expires_in"]')" = 7776000 ] || fail "default expires_in"
ADMIN=$(field '["access_token"]')
REFRESH=$(field '["refresh_token"]')
[[ "$ADMIN" =~ ^[0-9a-f]{40}$ ]] || fail "token format: $ADMIN"
[ "$(sql "SELECT count(*) FROM access_tokens WHERE token_sha256 = sha256('$ADMIN'::bytea)")" = 1 ] ||
	fail "token not stored as its SHA-256"

# Admin creates a second user with its token.
http POST /v1/users -H "Authorization: Bearer $ADMIN" \
	-d username=bob@example.com -d password=bobpass123
expect 200 "admin creates bob"
http POST /v1/users -H "Authorization: Bearer $ADMIN" \
	-d username=bob@example.com -d password=bobpass123
expect 400 "duplicate user"

# Form client credentials (particle-api-js), JSON body, expires_in.
http POST /oauth/token -H 'Content-Type: application/json' \
	-d '{"grant_type":"password","client_id":"particle-api","client_secret":"particle-api","username":"bob@example.com","password":"bobpass123","expires_in":3600}'
expect 200 "login with form client (JSON)"
[ "$(field '["expires_in"]')" = 3600 ] || fail "expires_in not honoured"
BOB=$(field '["access_token"]')
http POST /oauth/token -d client_id=CLI2 -d client_secret=client_secret_here \
	-d grant_type=password -d username=bob@example.com -d password=bobpass123 \
	-d expires_in=0
expect 200 "login with CLI2, never expiring"
BOB2=$(field '["access_token"]')
[ "$(sql "SELECT expires_at IS NULL FROM access_tokens WHERE token_sha256 = sha256('$BOB2'::bytea)")" = t ] ||
	fail "expires_in=0 should never expire"

# particle-cli `token create` uses the client id "user" (built in).
http POST /oauth/token -d client_id=user -d client_secret=whatever \
	-d grant_type=password -d username=bob@example.com -d password=bobpass123
expect 200 "login with the CLI token-create client"
http DELETE "/v1/access_tokens/$(field '["access_token"]')"
expect 200 "revoke it"

# Errors.
http POST /oauth/token -u nosuch:client -d grant_type=password \
	-d username=bob@example.com -d password=bobpass123
expect 401 "unknown client"
[ "$(field '["error"]')" = invalid_client ] || fail "invalid_client code"
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=bob@example.com -d password=wrongpass
expect 400 "wrong password"
[ "$(field '["error"]')" = invalid_grant ] || fail "invalid_grant code"
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=nobody@example.com -d password=whatever1
expect 400 "unknown user"
[ "$(field '["error"]')" = invalid_grant ] || fail "unknown user code"
http POST /oauth/token -u particle:particle -d username=a -d password=b
expect 400 "no grant_type"
[ "$(field '["error"]')" = invalid_request ] || fail "invalid_request code"

# Refresh grant: same client only.
http POST /oauth/token -u particle:particle -d grant_type=refresh_token \
	-d refresh_token="$REFRESH"
expect 200 "refresh"
ADMIN2=$(field '["access_token"]')
[ "$ADMIN2" != "$ADMIN" ] || fail "refresh gave the same token"
http POST /oauth/token -u particle-cli:particle-cli -d grant_type=refresh_token \
	-d refresh_token="$REFRESH"
expect 400 "refresh with another client"

# Bearer from header, query string and form body; /v1/user.
http GET /v1/user -H "Authorization: Bearer $BOB"
expect 200 "user by header"
[ "$(field '["username"]')" = bob@example.com ] || fail "whoami"
http GET "/v1/user?access_token=$BOB"
expect 200 "user by query"
used() { [ "$(sql "SELECT last_used_at IS NOT NULL FROM access_tokens WHERE token_sha256 = sha256('$BOB'::bytea)")" = t ]; }
wait_for used || fail "last_used_at not recorded"
http GET /v1/user
expect 401 "no token"
http GET /v1/user -H "Authorization: Bearer 0123456789abcdef0123456789abcdef01234567"
expect 401 "unknown token"

# Current token.
http GET /v1/access_tokens/current -H "Authorization: Bearer $BOB"
expect 200 "current"
[ "$(field '["client_id"]')" = particle-api ] || fail "current client_id"

# Listing with HTTP Basic username:password.
http GET /v1/access_tokens -u bob@example.com:bobpass123
expect 200 "list tokens"
[ "$(field '.__len__()')" = 2 ] || fail "bob should have 2 tokens: $HTTP_BODY"
http GET /v1/access_tokens -u bob@example.com:nope
expect 401 "list with a wrong password"
http GET /v1/access_tokens
expect 401 "list without credentials"

# Revoke without credentials (current CLI / particle-api-js >= 11).
http DELETE "/v1/access_tokens/$BOB2"
expect 200 "revoke without Basic"
http GET /v1/user -H "Authorization: Bearer $BOB2"
expect 401 "revoked token refused"
http DELETE "/v1/access_tokens/$BOB2"
expect 200 "revoking an unknown token is idempotent"

# Revoke by listed hash with Basic auth.
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=bob@example.com -d password=bobpass123
BOB3=$(field '["access_token"]')
H3=$(sql "SELECT encode(sha256('$BOB3'::bytea), 'hex')")
http DELETE "/v1/access_tokens/$H3" -u bob@example.com:bobpass123
expect 200 "revoke by hash with Basic"
http GET /v1/user -H "Authorization: Bearer $BOB3"
expect 401 "token revoked by hash"

# DELETE current (logout), then revoke all.
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=bob@example.com -d password=bobpass123
BOB4=$(field '["access_token"]')
BOBR=$(field '["refresh_token"]')
http POST /oauth/token -u particle:particle -d grant_type=refresh_token -d refresh_token="$BOBR"
expect 200 "refresh bob"
BOB5=$(field '["access_token"]')
http DELETE /v1/access_tokens/current -H "Authorization: Bearer $BOB5"
expect 200 "logout"
http GET /v1/user -H "Authorization: Bearer $BOB5"
expect 401 "logged out token"
http POST /oauth/token -u particle:particle -d grant_type=refresh_token -d refresh_token="$BOBR"
expect 400 "the refresh token died with the logout"
http GET /v1/user -H "Authorization: Bearer $BOB4"
expect 200 "an older access token of the same login stays valid"
http DELETE /v1/access_tokens/current -H "Authorization: Bearer $BOB"
expect 200 "logout"
http GET /v1/user -H "Authorization: Bearer $BOB"
expect 401 "logged out token"
http DELETE /v1/access_tokens -H "Authorization: Bearer $ADMIN2"
expect 200 "revoke all"
http GET /v1/user -H "Authorization: Bearer $ADMIN"
expect 401 "all admin tokens revoked"
[ "$(sql "SELECT count(*) FROM access_tokens a JOIN users u ON u.id = a.user_id WHERE u.username = 'admin@example.com'")" = 0 ] ||
	fail "tokens left after revoke all"

# Expired tokens are refused.
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=bob@example.com -d password=bobpass123 -d expires_in=1
EXP=$(field '["access_token"]')
sql "UPDATE access_tokens SET expires_at = now() - interval '1 s' WHERE token_sha256 = sha256('$EXP'::bytea)" >/dev/null
http GET /v1/user -H "Authorization: Bearer $EXP"
expect 401 "expired token"

stop_cinderd
echo "PASS: $T_NAME"
