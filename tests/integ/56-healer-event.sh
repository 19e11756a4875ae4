#!/bin/bash
# SPDX-License-Identifier: MIT
# spark/device/safemode triggers the healer (protocol.md §4.4, §4.5): a
# safe-mode device whose parts the catalogue lacks is reported missing
# and waits (stuck). An administrator uploads the parts; when the device
# then publishes spark/device/safemode (as it does after every
# handshake), cinderd asks it for a Describe and the heal starts on that
# same connection, without waiting for a reconnect.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
. "$(dirname "$0")/healer_lib.sh"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user root@example.com rootpass123 --admin
make_parts 31
start_cinderd
login root@example.com rootpass123
ROOT=$TOKEN
A=(-H "Authorization: Bearer $ROOT")

sim_provision "$T_DIR/d" 1 --register --owner root@example.com --prefix 6c
ID=$(head -1 "$T_DIR/d/devices.txt")
mkfifo "$T_DIR/d.ctl"
"$SIM" run --dir "$T_DIR/d" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	--system-version 1000 --app-requires 1512 \
	<"$T_DIR/d.ctl" >"$T_DIR/d.out" 2>"$T_DIR/d.err" &
T_PIDS+=("$!")
exec 4>"$T_DIR/d.ctl"

wait_for grep -q "^safemode $ID" "$T_DIR/d.out" || fail "no safe mode"
missing() { [ "$(sql "SELECT count(*) FROM healer_history WHERE device_id = '$ID' AND event = 'missing'")" = 1 ]; }
wait_for missing || fail "not reported missing: $(sql "SELECT event, detail FROM healer_history")"
# Three Describes come at start-up, and each is planned (quietly, still
# missing): the handshake's, the one after setup(), and the one cinderd
# asks for when the device publishes spark/device/safemode after the
# handshake. From here on only a new Describe can start the heal; the
# upload must wait for all three, or the last one starts it.
wait_for grep -q "^describe $ID 3" "$T_DIR/d.out" || fail "no third describe"
planned_thrice() { [ "$(grep -c "device $ID: heal plan" "$T_DIR/cinderd.log")" -ge 3 ]; }
wait_for planned_thrice || fail "start-up describes not planned: $(grep "$ID" "$T_DIR/cinderd.log")"

http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/s1.bin" \
	-F file2=@"$T_DIR/s2.bin" -F version=1.5.2
[ "$HTTP_STATUS" = 200 ] || fail "upload: $HTTP_STATUS $HTTP_BODY"
[ "$(sim_count d ota)" = 0 ] || fail "an OTA before the event"

echo "publish $ID spark/device/safemode" >&4
WAIT_S=30 wait_for grep -q "^ota $ID installed s/1 1512" "$T_DIR/d.out" ||
	fail "the event did not start the heal: $(cat "$T_DIR/d.out")"
log_has "device $ID: reports safe mode" ||
	fail "no log of the event"
# The heal began on the first connection: one "ready" before it.
[ "$(sed -n "1,/^ota $ID begin/p" "$T_DIR/d.out" | grep -c "^ready $ID")" = 1 ] ||
	fail "the heal waited for a reconnect: $(cat "$T_DIR/d.out")"
WAIT_S=40 wait_for grep -q "^ota $ID installed s/2 1512" "$T_DIR/d.out" ||
	fail "not healed: $(cat "$T_DIR/d.out")"
healed() { [ "$(sql "SELECT count(*) FROM healer_history WHERE device_id = '$ID' AND event = 'healed'")" = 1 ]; }
wait_for healed || fail "no healed row: $(sql "SELECT event, detail FROM healer_history")"
echo quit >&4
stop_cinderd
