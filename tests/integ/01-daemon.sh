#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cinderd lifecycle: help lists the subcommands, keygen writes the key files,
# migrate is idempotent, run answers /v1/ping with JSON, SIGHUP reopens the
# log, and SIGTERM stops it with exit status 0.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

out=$("$CINDERD" help) || fail "cinderd help failed"
for c in run keygen migrate user device check-config; do
	grep -q "^  $c " <<<"$out" || fail "cinderd help does not list $c"
done
"$CINDERD" keygen --help | grep -q "usage: cinderd keygen" || fail "keygen --help"
"$CINDERD" nosuch >/dev/null 2>&1 && fail "unknown subcommand accepted"

cinderd_cmd keygen >/dev/null || fail "keygen"
[ "$(stat -c %a "$T_DIR/server_key.pem")" = 600 ] || fail "server key is not mode 0600"
[ "$(stat -c %s "$T_DIR/server_key.pub.der")" = 294 ] || fail "public DER is not 294 bytes"
grep -q "BEGIN PUBLIC KEY" "$T_DIR/server_key.pub.pem" || fail "no public PEM"
cinderd_cmd keygen >/dev/null 2>&1 && fail "keygen overwrote an existing key"

cinderd_cmd migrate >/dev/null || fail "migrate"
cinderd_cmd migrate >/dev/null || fail "second migrate"
[ "$(sql "SELECT count(*) FROM schema_migrations WHERE version LIKE '0001%'")" = 1 ] || fail "0001 not recorded once"

# Config errors name the key and the line.
printf 'log_level loud\n' >"$T_DIR/bad.conf"
err=$("$CINDERD" check-config -c "$T_DIR/bad.conf" 2>&1) && fail "bad config accepted"
grep -q "bad.conf:1: log_level" <<<"$err" || fail "config error does not name line and key: $err"
"$CINDERD" check-config -c "$T_DIR/cinder.conf" | grep -q "configuration OK" || fail "check-config"

# Users: password from stdin; a duplicate is refused.
add_user alice 'correct horse battery'
printf 'correct horse battery\n' | cinderd_cmd user add alice >/dev/null 2>&1 && fail "duplicate user accepted"
hash=$(sql "SELECT password_hash FROM users WHERE username = 'alice'")
case "$hash" in '$pbkdf2-sha256$'*) ;; *) fail "password not stored hashed: $hash" ;; esac

start_cinderd
http GET /v1/ping || fail "ping request"; body=$HTTP_BODY
[ "$HTTP_STATUS" = 200 ] || fail "ping answered $HTTP_STATUS: $body"
[ "$(json_get "$body" '["ok"]')" = True ] || fail "ping not ok: $body"
[ "$(json_get "$body" '["database"]')" = up ] || fail "database not up: $body"
[ "$(json_get "$body" '["devices"]["online"]')" = 0 ] || fail "devices online: $body"
# the allocator's figures walk the heap: only when asked for
[ "$(json_get "$body" '.get("heap_in_use", "none")')" = none ] ||
	fail "heap figures without ?heap=1: $body"
http GET '/v1/ping?heap=1' || fail "ping request"; body=$HTTP_BODY
if ldd --version 2>&1 | grep -qi 'gnu libc\|glibc'; then
	# (0 under AddressSanitizer, whose allocator glibc cannot see)
	[ "$(json_get "$body" '.get("heap_in_use", "none")')" != none ] ||
		fail "no heap_in_use with ?heap=1: $body"
fi

kill -HUP "$CINDERD_PID"
wait_for log_has "log file reopened" || fail "no SIGHUP log line"
kill -0 "$CINDERD_PID" || fail "cinderd died on SIGHUP"

stop_cinderd
log_has "stopped" || fail "no stop line in the log"

# loop_nice: the loop (main) thread alone; the crypto workers keep theirs.
# A higher value needs no privilege.
thread_nice() { awk '{ sub(/.*\) /, ""); print $17 }' "/proc/$CINDERD_PID/task/$1/stat"; }
start_cinderd --loop_nice=5
[ "$(thread_nice "$CINDERD_PID")" = 5 ] || fail "loop thread not at nice 5"
for t in /proc/"$CINDERD_PID"/task/*; do
	t=${t##*/}
	[ "$t" = "$CINDERD_PID" ] && continue
	[ "$(thread_nice "$t")" = "$(nice)" ] || fail "worker $t took the loop's nice"
done
log_has "loop thread at nice 5" || fail "no loop_nice log line"
stop_cinderd
# A lower value without CAP_SYS_NICE (and RLIMIT_NICE 0) is refused with a
# warning, and cinderd runs on.
drop=()
if [ "$(id -u)" = 0 ]; then
	command -v setpriv >/dev/null && drop=(setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice)
fi
if [ "$(id -u)" != 0 ] || [ ${#drop[@]} -gt 0 ]; then
	CINDERD_REAL=$CINDERD
	CINDERD=$T_DIR/cinderd-nocap
	printf '#!/bin/sh\nulimit -e 0 2>/dev/null\nexec %s %s "$@"\n' "${drop[*]:-}" "$CINDERD_REAL" >"$CINDERD"
	chmod +x "$CINDERD"
	start_cinderd --loop_nice=-5
	wait_for log_has "loop_nice -5 refused" || fail "no refusal line"
	http GET /v1/ping || fail "ping request"
	expect 200 "ping after a refused loop_nice"
	stop_cinderd
	CINDERD=$CINDERD_REAL
else
	note "loop_nice refusal not checked (root without setpriv)"
fi
note "lifecycle ok"
