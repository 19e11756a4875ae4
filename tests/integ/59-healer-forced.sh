#!/bin/bash
# SPDX-License-Identifier: MIT
# Forced updates (protocol.md §5.3) with cinder-sim --updates-disabled
# devices, whose application disabled updates: UpdateBegin gets 5.03.
# - A flash is refused cleanly: spark/flash/status failed and
#   particle/device/updates/pending reach the owner's stream, the log
#   says how to force it, firmware_updates_enabled turns false, the
#   device installs nothing. After PUT {"firmware_updates_forced": true}
#   the device receives particle/device/updates/forced = true and the
#   same flash installs.
# - A safe-mode heal refused the same way is reported once (a "stuck"
#   history row, GET /healer says why) and not retried in a loop; once
#   forced, it goes on and the device heals (both parts, in order).
# - Forcing is remembered: the device gets "true" again at its next
#   connection; PUT false sends "false".
set -u
. "$(dirname "$0")/lib.sh"
integ_init
. "$(dirname "$0")/healer_lib.sh"
# A long back-off: a refused heal must not be tried again by the
# device's later Describes within this test.
echo "healer_backoff 120" >>"$T_DIR/cinder.conf"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
make_parts 11
import_parts 1.5.2
APP="$T_DIR/app.bin"
mk -o "$APP" --platform 3 --function user_part --index 1 --version 6 \
	--dep system_part:2:1512 --size 4096 --seed 7
start_cinderd
login alice@example.com alicepass123
ALICE=$TOKEN
A=(-H "Authorization: Bearer $ALICE")
event_stream /v1/devices/events
wait_for grep -q ':ok' "$T_DIR/sse.out" || true

forced() { # forced ID true|false
	http PUT "/v1/devices/$1" "${A[@]}" -H 'Content-Type: application/json' \
		-d "{\"firmware_updates_forced\": $2}"
	expect 200 "PUT forced $2"
	[ "$(field '["firmware_updates_forced"]')" = "${2^}" ] || fail "PUT forced: $HTTP_BODY"
}

# --- A flash to a device with updates disabled ---
F=$(provision flash 59)
sim_run flash "$T_DIR/flash" --app testapp --updates-disabled
wait_for grep -q "^ready $F" "$T_DIR/flash.out" || fail "flash: not ready"
described() { [ -n "$(sql "SELECT 1 FROM devices WHERE device_id = '$1' AND last_describe IS NOT NULL")" ]; }
wait_for described "$F" || fail "flash: no describe"
http PUT "/v1/devices/$F" "${A[@]}" -F "file=@$APP;filename=app.bin"
expect 200 "flash"
wait_for grep -q "^ota $F rejected disabled" "$T_DIR/flash.out" ||
	fail "not refused: $(grep ota "$T_DIR/flash.out")"
flash_failed() { grep -A1 "^event: spark/flash/status" "$T_DIR/sse.out" | grep -q '"data":"failed"'; }
wait_for flash_failed || fail "no spark/flash/status failed: $(cat "$T_DIR/sse.out")"
wait_for grep -q "particle/device/updates/pending" "$T_DIR/sse.out" || fail "no updates/pending event"
wait_for grep -q "^event $F particle/device/updates/pending true" "$T_DIR/flash.out" ||
	fail "the device was not told an update is pending"
wait_for log_has "device $F: flash .*updates are disabled (5.03)" || fail "no refusal in the log"
log_has "device $F: updates are disabled by its application; PUT firmware_updates_forced=true" ||
	fail "the log does not say how to force it"
enabled_false() { [ "$(sql "SELECT firmware_updates_enabled FROM devices WHERE device_id = '$F'")" = f ]; }
wait_for enabled_false || fail "firmware_updates_enabled not false"
http GET "/v1/devices/$F" "${A[@]}"
[ "$(field '["firmware_updates_enabled"]')" = False ] || fail "GET enabled: $HTTP_BODY"
[ "$(field '["firmware_updates_forced"]')" = False ] || fail "GET forced: $HTTP_BODY"
! grep -q "^ota $F \(begin\|installed\)" "$T_DIR/flash.out" || fail "the refused device took an update"
note "refused flash"

# Bad values are a 400; true is stored, sent to the device, and the same
# flash then installs.
http PUT "/v1/devices/$F" "${A[@]}" -H 'Content-Type: application/json' \
	-d '{"firmware_updates_forced": "maybe"}'
expect 400 "PUT forced maybe"
forced "$F" true
[ "$(sql "SELECT firmware_updates_forced FROM devices WHERE device_id = '$F'")" = t ] || fail "forced not stored"
wait_for grep -q "^event $F particle/device/updates/forced true" "$T_DIR/flash.out" ||
	fail "device not told: $(grep event "$T_DIR/flash.out")"
http PUT "/v1/devices/$F" "${A[@]}" -F "file=@$APP;filename=app.bin"
expect 200 "forced flash"
wait_for grep -q "^ota $F installed" "$T_DIR/flash.out" || fail "forced flash not installed: $(grep ota "$T_DIR/flash.out")"
flash_ok() { grep -A1 "^event: spark/flash/status" "$T_DIR/sse.out" | grep -q '"data":"success"'; }
wait_for flash_ok || fail "no spark/flash/status success"
# At the next connection (the reset after the update) it hears it again.
told_twice() { [ "$(grep -c "^event $F particle/device/updates/forced true" "$T_DIR/flash.out")" -ge 2 ]; }
wait_for told_twice || fail "not told again after reconnecting: $(grep event "$T_DIR/flash.out")"
forced "$F" false
wait_for grep -q "^event $F particle/device/updates/forced false" "$T_DIR/flash.out" ||
	fail "device not told false"
note "forced flash installed"

# --- A safe-mode heal of a device with updates disabled ---
H=$(provision heal 5a)
sim_run heal "$T_DIR/heal" --app testapp --system-version 1000 \
	--app-requires 1512 --updates-disabled
wait_for grep -q "^safemode $H" "$T_DIR/heal.out" || fail "heal: no safe mode"
wait_for grep -q "^ota $H rejected disabled" "$T_DIR/heal.out" || fail "heal: not refused"
stuck() { [ "$(sql "SELECT count(*) FROM healer_history WHERE device_id = '$H' AND event = 'stuck'")" = 1 ]; }
wait_for stuck || fail "refusal not recorded: $(sql "SELECT event, detail FROM healer_history WHERE device_id = '$H'")"
sql "SELECT detail->>'reason' FROM healer_history WHERE device_id = '$H' AND event = 'stuck'" |
	grep -q "firmware_updates_forced" || fail "history reason: $(sql "SELECT detail FROM healer_history WHERE device_id = '$H'")"
http GET "/v1/devices/$H/healer" "${A[@]}"
expect 200 "healer route"
[ "$(field '["current"]["state"]')" = stuck ] || fail "heal: current: $HTTP_BODY"
field '["current"]["problem"]' | grep -q "5.03" || fail "heal: problem: $HTTP_BODY"
# Its second Describe (after setup()) brings no new attempt.
wait_for grep -q "^describe $H 2" "$T_DIR/heal.out" || fail "heal: no second describe"
forced "$H" true
WAIT_S=40 wait_for grep -q "^ota $H installed s/2 1512" "$T_DIR/heal.out" ||
	fail "heal: not healed once forced: $(grep ota "$T_DIR/heal.out")"
[ "$(grep "^ota $H installed" "$T_DIR/heal.out" | cut -d' ' -f4 | tr '\n' ' ')" = "s/1 s/2 " ] ||
	fail "heal: order: $(grep "^ota" "$T_DIR/heal.out")"
healed() { [ "$(sql "SELECT count(*) FROM healer_history WHERE device_id = '$H' AND event = 'healed'")" = 1 ]; }
wait_for healed || fail "heal: no healed row: $(sql "SELECT event, detail FROM healer_history WHERE device_id = '$H'")"
# One refusal in all: the healer did not loop on it.
[ "$(grep -c "^ota $H rejected" "$T_DIR/heal.out")" = 1 ] ||
	fail "heal: refused more than once: $(grep "^ota $H" "$T_DIR/heal.out")"
[ "$(grep -c "device $H: cannot heal" "$T_DIR/cinderd.log")" = 1 ] || fail "heal: reported more than once"
note "refused heal reported once, healed once forced"
stop_cinderd # a clean exit (ASan: nothing leaked)
