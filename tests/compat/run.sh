#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compatibility of the REST API with the real clients: installs the pinned
# particle-cli and particle-api-js (install.sh, npm ci when node_modules is
# missing), starts cinderd with simulated devices (cinder-sim, testapp),
# then drives `particle login`, `whoami`, `list`, `get`, `call`,
# `token revoke`, `keys send`, `logout` and a particle-api-js script
# (apijs.js). Every client call runs under `timeout`. Run under
# tests/with-pg; skips (77) without PostgreSQL or node.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integ/lib.sh"
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"
compat_init compat-rest

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user carol@example.com carolpass123
start_cinderd
"$SIM" provision --count 1 --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner carol@example.com --prefix 7c >/dev/null ||
	fail "provision"
"$SIM" run --dir "$T_DIR/sim" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	</dev/null >"$T_DIR/sim.out" 2>"$T_DIR/sim.err" &
T_PIDS+=("$!")
ready() { grep -q '^ready ' "$T_DIR/sim.out"; }
wait_for ready || fail "simulated device not ready"
described() { [ "$(sql "SELECT count(*) FROM devices WHERE last_describe->'v' ? 'counter' OR variables ? 'counter'")" = 1 ]; }
wait_for described || fail "describe not stored"
DEV=$(head -1 "$T_DIR/sim/devices.txt")

# The CLI keeps its settings in $HOME/.particle/<profile>.config.json;
# apiUrl there points it at this cinderd.
particle_cli
strip() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; } # spinner and colour codes
run() { # run WHAT CMD...: run a CLI command, keep its output in $OUT
	OUT=$(CLI "$@" 2>&1 | strip; exit "${PIPESTATUS[0]}") ||
		fail "$WHAT: particle $*: $OUT"
}

WHAT=login run login --username carol@example.com --password carolpass123
grep -q '"access_token"' "$HOME/.particle/particle.config.json" || fail "login stored no token: $OUT"
WHAT=whoami run whoami
echo "$OUT" | grep -q carol@example.com || fail "whoami: $OUT"
WHAT=list run list
echo "$OUT" | grep -q "$DEV" || fail "list lacks the device: $OUT"
echo "$OUT" | grep -q 'online' || fail "list: device not online: $OUT"
echo "$OUT" | grep -q 'setcounter' || fail "list lacks functions: $OUT"
WHAT=call run call "$DEV" setcounter 23
[ "$(echo "$OUT" | tail -1)" = 0 ] || [ -n "$OUT" ] || fail "call output: $OUT"
WHAT="call echo" run call "$DEV" echo hello
echo "$OUT" | grep -qx 5 || fail "call echo should print 5: $OUT"
WHAT=get run get "$DEV" counter
echo "$OUT" | grep -qx 23 || fail "get counter should print 23: $OUT"
WHAT="get string" run get "$DEV" greeting
[ -n "$OUT" ] || fail "get greeting printed nothing"
if CLI get "$DEV" nosuchvar >/dev/null 2>&1; then
	fail "get of an unknown variable succeeded"
fi

# keys send: the CLI takes a PEM public key file.
openssl genrsa -out "$T_DIR/k.pem" 1024 2>/dev/null || fail "genrsa"
openssl rsa -in "$T_DIR/k.pem" -pubout -out "$T_DIR/k.pub.pem" 2>/dev/null
NEWDEV=7cffffffffffffffffffff01
WHAT="keys send" run keys send "$NEWDEV" "$T_DIR/k.pub.pem"
[ "$(sql "SELECT u.username FROM devices d JOIN users u ON u.id = d.owner_id WHERE device_id = '$NEWDEV'")" = carol@example.com ] ||
	fail "keys send did not provision: $OUT"

# token revoke (sends no credentials: holding the token is enough).
login carol@example.com carolpass123
EXTRA=$TOKEN
WHAT="token revoke" run token revoke "$EXTRA"
http GET /v1/user -H "Authorization: Bearer $EXTRA"
[ "$HTTP_STATUS" = 401 ] || fail "token revoke left the token usable: $OUT"

CLITOKEN=$(json_get "$(cat "$HOME/.particle/particle.config.json")" '["access_token"]')
WHAT=logout run logout
http GET /v1/user -H "Authorization: Bearer $CLITOKEN"
[ "$HTTP_STATUS" = 401 ] || note "logout left the CLI token valid: $OUT"

# particle-api-js
OUT=$(cd "$here" && timeout 60 node apijs.js "$API" carol@example.com carolpass123 "$DEV" 2>&1) ||
	fail "particle-api-js: $OUT"
echo "$OUT" | grep -q 'apijs: all passed' || fail "particle-api-js: $OUT"

stop_cinderd
echo "PASS: $T_NAME"
