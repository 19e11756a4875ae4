#!/bin/bash
# SPDX-License-Identifier: MIT
# REST limits against a real cinderd: the POST /oauth/token per-IP limit
# answers 429 once reached (other routes still work), and 10 consecutive
# failed logins lock the address out of /oauth/token (429 even with the
# right password) while other routes keep working. A second daemon runs
# with a lowered token limit (the rate_limits key) to keep the test short.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
start_cinderd

try_login() { # try_login PASSWORD: the answer is in HTTP_STATUS
	http POST /oauth/token -u particle:particle -d grant_type=password \
		-d username=user@example.com -d password="$1"
}

http POST /v1/users -d username=user@example.com -d password=rightpass1
expect 200 "first user"
try_login rightpass1
expect 200 "good login"
TOKEN=$(json_get "$HTTP_BODY" '["access_token"]')

# Nine failures, a success resets the count.
for i in 1 2 3 4 5 6 7 8 9; do
	try_login wrongpass
	expect 400 "failure $i"
done
try_login rightpass1
expect 200 "success resets the failure count"
# Ten consecutive failures lock the address out.
for i in 1 2 3 4 5 6 7 8 9 10; do
	try_login wrongpass
	expect 400 "failure $i of 10"
done
try_login rightpass1
expect 429 "locked out even with the right password"
http GET /v1/access_tokens -u user@example.com:rightpass1
expect 429 "no password tries on Basic routes while locked"
http GET /v1/user -H "Authorization: Bearer $TOKEN"
expect 200 "other routes still work while locked"
stop_cinderd

# Rate limit of /oauth/token (100 / 5 min by default; 5 here).
start_cinderd --rate_limits token=5
for i in 1 2 3 4 5; do
	http POST /oauth/token -u nosuch:client -d grant_type=password \
		-d username=a -d password=b
	expect 401 "request $i under the limit"
done
http POST /oauth/token -u particle:particle -d grant_type=password \
	-d username=user@example.com -d password=rightpass1
expect 429 "over the token limit"
http GET /v1/ping
expect 200 "other routes unaffected"
stop_cinderd
echo "PASS: $T_NAME"
