#!/bin/bash
# SPDX-License-Identifier: MIT
# spark/device/app-hash survives the linger and a restart: the last
# application hash of each device is kept in devices.app_hash
# (sql/0006_app_hash.sql). A device's first Describe ever publishes
# nothing; a device reflashed while cinderd had forgotten it (gone for
# longer than device_cache_linger_s) comes back with one event carrying
# the new hash; after a restart the same app publishes nothing, and a
# new one publishes once.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
. "$(dirname "$0")/healer_lib.sh"
sed -i 's/^log_level .*/log_level debug/' "$T_DIR/cinder.conf"
printf 'device_cache_linger_s 1\n' >>"$T_DIR/cinder.conf"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
start_cinderd
login alice@example.com alicepass123
A=(-H "Authorization: Bearer $TOKEN")
ID=$(provision d 7a)

# stream N: the event stream into sse.out, ready when ':ok' shows.
stream() {
	curl -sS -N "${A[@]}" "$API/v1/devices/events/spark%2Fdevice%2Fapp-hash" \
		>"$T_DIR/sse$1.out" 2>/dev/null &
	T_PIDS+=("$!")
	wait_for grep -q ':ok' "$T_DIR/sse$1.out" || true
}
# events N: how many app-hash events stream N got
events() { grep -c '^event: spark/device/app-hash' "$T_DIR/sse$1.out" || true; }
# stored: devices.app_hash
stored() { sql "SELECT coalesce(app_hash, 'none') FROM devices WHERE device_id = '$ID'"; }
# compared N: cinderd compared N Describes with the stored hash
compared() { [ "$(grep -c "device $ID: application hash [0-9A-Fa-f]*, stored" "$T_DIR/cinderd.log")" -ge "$1" ]; }
# describe_hash: the "u" of the last Describe
describe_hash() {
	sql "SELECT m->>'u' FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$ID' AND m->>'f' = 'u'"
}
# Two applications (cinder-sim --app-hash); cinderd reports them as the
# device sends them (uppercase).
HASH_A=$(printf 'A%.0s' {1..64})
HASH_B=$(printf '0B%.0s' {1..32})
# connect NAME HASH: the device online running an app of that hash;
# leave NAME: offline.
connect() {
	sim_run "$1" "$T_DIR/d" --app testapp --app-hash "$2" --no-reconnect
	WAIT_S=30 wait_for sim_has_at_least "$1" ready 1 ||
		fail "$1: not online: $(cat "$T_DIR/$1.err")"
}
leave() {
	local pid_var="SIM_PID_$1"
	kill "${!pid_var}"
	wait "${!pid_var}" 2>/dev/null || true
}
[ "$(stored)" = none ] || fail "a hash before any Describe: $(stored)"
stream 1

# First Describe ever (app A): stored, nothing published.
connect a "$HASH_A"
wait_for compared 1 || fail "the first hash was not compared: $(grep "$ID" "$T_DIR/cinderd.log")"
[ "$(describe_hash)" = "$HASH_A" ] || fail "the describe has $(describe_hash), not $HASH_A"
[ "$(stored)" = "$HASH_A" ] || fail "stored $(stored), not $HASH_A"
log_has "device $ID: application hash $HASH_A, stored none" || fail "compared with a hash on the first Describe"

# Away past the linger: forgotten. Reflashed (app B), it comes back:
# one event with the new hash.
leave a
wait_for health_at_least forgotten 1 || fail "the device was not forgotten"
connect b "$HASH_B"
wait_for compared 2 || fail "not compared after the linger"
wait_for grep -q "\"data\":\"$HASH_B\"" "$T_DIR/sse1.out" ||
	fail "no spark/device/app-hash $HASH_B after the linger: $(cat "$T_DIR/sse1.out")"
[ "$(stored)" = "$HASH_B" ] || fail "stored $(stored), not $HASH_B"
leave b

# Restart: the same app publishes nothing; the stored hash is kept.
stop_cinderd
start_cinderd
login alice@example.com alicepass123
A=(-H "Authorization: Bearer $TOKEN")
stream 2
connect c "$HASH_B"
wait_for compared 1 || fail "not compared after the restart"
log_has "device $ID: application hash $HASH_B, stored $HASH_B" || fail "compared with something else: $(grep "$ID" "$T_DIR/cinderd.log")"
leave c

# Reflashed (app A) while cinderd was down: one event after the restart.
stop_cinderd
start_cinderd
login alice@example.com alicepass123
A=(-H "Authorization: Bearer $TOKEN")
stream 3
connect e "$HASH_A"
wait_for compared 1 || fail "not compared after the second restart"
wait_for grep -q "\"data\":\"$HASH_A\"" "$T_DIR/sse3.out" ||
	fail "no spark/device/app-hash $HASH_A after the restart: $(cat "$T_DIR/sse3.out")"
[ "$(stored)" = "$HASH_A" ] || fail "stored $(stored), not $HASH_A"
leave e
stop_cinderd # a clean exit (ASan: nothing leaked)
# Exactly one event each time, none for the unchanged app.
[ "$(events 1)" = 1 ] || fail "$(events 1) events across the linger: $(cat "$T_DIR/sse1.out")"
[ "$(events 2)" = 0 ] || fail "an event for the same app after the restart: $(cat "$T_DIR/sse2.out")"
[ "$(events 3)" = 1 ] || fail "$(events 3) events after the restart: $(cat "$T_DIR/sse3.out")"
note "app hash ok"
