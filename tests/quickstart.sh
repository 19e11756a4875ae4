#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's first command, end to end, as a newcomer runs it:
#   tests/quickstart.sh BUILD_DIR
# runs scripts/quickstart with a scratch state directory, free ports and
# an existing build (CINDER_VAR, CINDER_API_PORT, CINDER_DEVICE_PORT,
# CINDER_BUILD), then follows what it printed:
#   - the curl line that lists the devices answers with old-1 and sim-1;
#   - the healer demo: the printed `particle flash old-1 ...` (the real
#     particle CLI from tests/compat/node_modules when it is installed,
#     else the printed curl alternative) flashes the app that needs
#     Device OS 1.5.2; old-1 goes through safe mode and the healer until
#     GET /v1/devices/old-1/healer says "healed" and the device reports
#     1.5.2 with its app's functions;
#   - a second run of scripts/quickstart keeps what runs;
#   - `scripts/quickstart stop` leaves no process behind.
# scripts/test runs it after the release build's make check.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: tests/quickstart.sh BUILD_DIR}" && pwd)
cd "$top"

fail() {
	echo "FAIL: quickstart: $*" >&2
	[ -f "$var/cinderd.log" ] && tail -n 20 "$var/cinderd.log" >&2
	[ -f "$var/sim-old.log" ] && tail -n 10 "$var/sim-old.log" >&2
	exit 1
}
# free_port: a free port below the kernel's ephemeral range, so that no
# outgoing connection (a benchmark's thousands of devices on the same
# box) takes it between here and cinderd's bind.
free_port() {
	python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(10000, max(low, 10001))
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
PY
}
# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

var=$(mktemp -d "${TMPDIR:-/tmp}/cinder-quickstart.XXXXXX")
export CINDER_VAR=$var CINDER_BUILD=$build
CINDER_API_PORT=$(free_port)
CINDER_DEVICE_PORT=$(free_port)
while [ "$CINDER_DEVICE_PORT" = "$CINDER_API_PORT" ]; do
	CINDER_DEVICE_PORT=$(free_port)
done
export CINDER_API_PORT CINDER_DEVICE_PORT
cleanup() {
	scripts/quickstart stop >/dev/null 2>&1 || true
	[ "${T_KEEP:-0}" = 1 ] || rm -rf "$var"
}
trap cleanup EXIT

scripts/quickstart >"$var/out" 2>"$var/err" || {
	cat "$var/err" >&2
	fail "scripts/quickstart failed"
}
grep -q '^Cinder is running' "$var/out" || fail "no banner: $(cat "$var/out")"
api=http://127.0.0.1:$CINDER_API_PORT
token=$(cat "$var/admin-token")
[ -n "$token" ] || fail "no admin token"
auth=(-H "Authorization: Bearer $token")

# The printed device list works and holds the demo devices.
list_cmd=$(grep -m1 -E '^  curl .*/v1/devices$' "$var/out") || fail "no device list line"
listed() {
	local out
	out=$(eval "$list_cmd" 2>/dev/null) || return 1
	grep -q '"name":"old-1"' <<<"$out" && grep -q '"name":"sim-1"' <<<"$out" &&
		grep -q '"connected":true' <<<"$out"
}
wait_until 30 listed || fail "devices not listed: $(eval "$list_cmd")"
online_old() {
	curl -fsS "${auth[@]}" "$api/v1/devices/old-1" 2>/dev/null |
		grep -q '"system_firmware_version":"1.0.0"'
}
wait_until 30 online_old || fail "old-1 is not on 1.0.0: $(curl -sS "${auth[@]}" "$api/v1/devices/old-1")"

# The healer demo, with the commands as printed.
flash_line=$(grep -m1 -E '^  particle flash old-1 ' "$var/out") || fail "no flash line"
curl_line=$(grep -m1 -E '^    \(or: curl -X PUT ' "$var/out" | sed -e 's/^    (or: //' -e 's/)$//') ||
	fail "no curl flash line"
cli=$top/tests/compat/node_modules/particle-cli/src/index.js
if command -v node >/dev/null && [ -f "$cli" ]; then
	export HOME=$var/home PARTICLE_DISABLE_UPDATE=true NO_COLOR=1
	mkdir -p "$HOME/.particle"
	printf '{"apiUrl":"%s","access_token":"%s","username":"admin"}\n' "$api" "$token" \
		>"$HOME/.particle/particle.config.json"
	particle() { timeout 60 node "$cli" "$@" </dev/null; }
	how="particle flash"
	out=$(eval "$flash_line" 2>&1) || fail "$flash_line: $out"
	grep -q 'Flash success' <<<"$out" || fail "$flash_line: $out"
else
	how="curl (no particle-cli here)"
	out=$(eval "$curl_line") || fail "$curl_line: $out"
	grep -q '"status":"Update started"' <<<"$out" || fail "$curl_line: $out"
fi
healed() {
	curl -fsS "${auth[@]}" "$api/v1/devices/old-1/healer" 2>/dev/null |
		grep -q '"outcome":"healed"'
}
wait_until 60 healed || fail "old-1 not healed: $(curl -sS "${auth[@]}" "$api/v1/devices/old-1/healer")"
running() {
	local out
	out=$(curl -fsS "${auth[@]}" "$api/v1/devices/old-1" 2>/dev/null) || return 1
	grep -q '"system_firmware_version":"1.5.2"' <<<"$out" && grep -q '"setcounter"' <<<"$out"
}
wait_until 30 running || fail "old-1 does not run its app on 1.5.2: $(curl -sS "${auth[@]}" "$api/v1/devices/old-1")"
grep -q 'safemode ' "$var/sim-old.log" || fail "old-1 never entered safe mode"
parts=$(grep ' installed s/' "$var/sim-old.log" | cut -d' ' -f4 | tr '\n' ' ')
[ "$parts" = "s/1 s/2 s/3 " ] || fail "parts installed: $(grep ' installed ' "$var/sim-old.log")"

# Running it again keeps what runs.
pid=$(cat "$var/cinderd.pid")
scripts/quickstart >"$var/out2" 2>"$var/err2" || fail "second run: $(cat "$var/err2")"
[ "$(cat "$var/cinderd.pid")" = "$pid" ] || fail "second run restarted cinderd"
grep -q 'cinderd already running' "$var/err2" || fail "second run: $(cat "$var/err2")"

pids=$(cat "$var"/*.pid)
scripts/quickstart stop >/dev/null 2>&1 || fail "stop"
for p in $pids; do
	! kill -0 "$p" 2>/dev/null || fail "process $p still runs after stop"
done
[ ! -f "$var/pg/data/postmaster.pid" ] || fail "PostgreSQL still runs after stop"
echo "PASS: quickstart (flash by $how, healed to 1.5.2)"
