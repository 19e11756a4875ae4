#!/bin/bash
# SPDX-License-Identifier: MIT
# Flash API: PUT /v1/devices/:id with a multipart file (what
# `particle flash DEVICE app.bin` sends). Each bad binary (not a module,
# corrupt CRC, wrong platform, too big for the device) is a 400 naming
# the problem and the device sees no OTA; an offline device is a 400;
# another user's device is a 404; a good application image is stored,
# installed on a cinder-sim device, which resets and reconnects running
# it (its describe carries the new app hash); spark/flash/status
# started and success reach the owner's event stream, and so does
# spark/device/app-hash with the new app's hash. An administrator
# may flash any device (the owner check lets it through).
set -u
. "$(dirname "$0")/lib.sh"
integ_init
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"

mk() { "$CINDERD" firmware make-module "$@" >/dev/null || fail "make-module $*"; }

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
add_user bob@example.com bobpass1234
add_user root@example.com rootpass123 --admin
start_cinderd
login alice@example.com alicepass123
ALICE=$TOKEN
login bob@example.com bobpass1234
BOB=$TOKEN
A=(-H "Authorization: Bearer $ALICE")
B=(-H "Authorization: Bearer $BOB")
login root@example.com rootpass123
ROOT=$TOKEN
R=(-H "Authorization: Bearer $ROOT")

"$SIM" provision --count 2 --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice@example.com --prefix 5f >/dev/null || fail "provision"
D=$(sed -n 1p "$T_DIR/sim/devices.txt")
OFF=$(sed -n 2p "$T_DIR/sim/devices.txt")
# Only the first device runs; the second stays offline.
printf '%s\n' "$D" >"$T_DIR/sim/devices.txt"
sim_run sim "$T_DIR/sim" --app testapp
wait_for grep -q "^ready $D" "$T_DIR/sim.out" || fail "device not ready"
described() { [ -n "$(sql "SELECT 1 FROM devices WHERE device_id = '$D' AND last_describe IS NOT NULL")" ]; }
wait_for described || fail "no describe"

# Binaries: a good app for the simulator (platform 3, user part 1 that
# needs system part 2 >= 1512, the simulator's), and bad ones.
APP="$T_DIR/app.bin"
mk -o "$APP" --platform 3 --function user_part --index 1 --version 6 \
	--dep system_part:2:1512 --size 4096 --seed 7
head -c 2000 /dev/urandom >"$T_DIR/garbage.bin"
cp "$APP" "$T_DIR/crc.bin"
printf '\x55' | dd of="$T_DIR/crc.bin" bs=1 seek=2000 conv=notrunc 2>/dev/null
mk -o "$T_DIR/photon.bin" --platform 6 --function user_part --index 1 \
	--version 6 --dep system_part:2:1512 --size 4096
mk -o "$T_DIR/big.bin" --platform 3 --function user_part --index 1 \
	--version 6 --dep system_part:2:1512 --size 140000

flash() { # flash FILE [curl args]
	local f=$1
	shift
	http PUT "/v1/devices/$D" "$@" -F "file=@$f;filename=$(basename "$f")"
}
refused() { # refused FILE CODE
	flash "$1" "${A[@]}"
	expect 400 "$(basename "$1")"
	[ "$(field '["code"]')" = "$2" ] || fail "$1: code $(field '["code"]'), body $HTTP_BODY"
}
refused "$T_DIR/garbage.bin" not_a_module
refused "$T_DIR/crc.bin" crc_mismatch
refused "$T_DIR/photon.bin" wrong_platform
field '["error"]' | grep -q "platform 6" || fail "wrong platform text: $HTTP_BODY"
# Over the user part's slot (128 KB on the simulator's platform).
flash "$T_DIR/big.bin" "${A[@]}"
expect 400 "big.bin"
[ "$(field '["code"]')" = too_big ] || fail "big: $HTTP_BODY"
[ "$(sim_count sim ota)" = 0 ] || fail "a refused binary reached the device: $(grep ota "$T_DIR/sim.out")"

# Another user's device: not found. An unknown one: not found.
flash "$APP" "${B[@]}"
expect 404 "bob flashes alice's device"
http PUT "/v1/devices/0123456789abcdef01234567" "${A[@]}" -F "file=@$APP"
expect 404 "unknown device"
# Offline.
http PUT "/v1/devices/$OFF" "${A[@]}" -F "file=@$APP"
expect 400 "offline device"
[ "$(field '["code"]')" = offline ] || fail "offline: $HTTP_BODY"
# An administrator is not the owner but gets past the owner check: the
# same answers as alice, not bob's 404.
http PUT "/v1/devices/$OFF" "${R[@]}" -F "file=@$APP"
expect 400 "admin flashes alice's offline device"
[ "$(field '["code"]')" = offline ] || fail "admin offline: $HTTP_BODY"
flash "$T_DIR/photon.bin" "${R[@]}"
expect 400 "admin flashes a photon binary to alice's device"
[ "$(field '["code"]')" = wrong_platform ] || fail "admin wrong platform: $HTTP_BODY"
[ "$(sim_count sim ota)" = 0 ] || fail "a refused admin flash reached the device"
# Rename still works on the same route (form and JSON).
http PUT "/v1/devices/$D" "${A[@]}" -d name=flashee
expect 200 "rename by form"
http PUT "/v1/devices/flashee" "${A[@]}" -H 'Content-Type: application/json' -d '{"notes":"x"}'
expect 200 "notes by JSON"

# The event stream of alice, to see spark/flash/status.
curl -sS -N -H "Authorization: Bearer $ALICE" "$API/v1/devices/events/spark" \
	>"$T_DIR/sse.out" 2>/dev/null &
T_PIDS+=("$!")
wait_for grep -q ':ok' "$T_DIR/sse.out" || true

hash=$(sha256sum "$APP" | cut -d' ' -f1)
flash "$APP" "${A[@]}"
expect 200 "flash"
[ "$(field '["status"]')" = "Update started" ] || fail "answer: $HTTP_BODY"
[ "$(field '["id"]')" = "$D" ] || fail "answer id: $HTTP_BODY"
[ "$(sql "SELECT count(*) FROM firmware_images WHERE encode(sha256, 'hex') = '$hash'")" = 1 ] ||
	fail "image not stored"
wait_for grep -q "^ota $D installed" "$T_DIR/sim.out" || fail "not installed: $(grep ota "$T_DIR/sim.out")"
wait_for grep -q "spark/flash/status" "$T_DIR/sse.out" || fail "no spark/flash/status event"
wait_for grep -q '"data":"success"' "$T_DIR/sse.out" || fail "no success: $(cat "$T_DIR/sse.out")"
grep -q '"data":"started"' "$T_DIR/sse.out" || fail "no started: $(cat "$T_DIR/sse.out")"
# It resets and reconnects running the new app: its user module is the
# version just sent.
[ "$(grep -c "^ready $D" "$T_DIR/sim.out")" -ge 1 ] || fail "ready"
reconnected() { [ "$(grep -c "^ready $D" "$T_DIR/sim.out")" -ge 2 ]; }
wait_for reconnected || fail "no reconnect: $(cat "$T_DIR/sim.out")"
newapp() { [ "$(sql "SELECT (m->>'v')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$D' AND m->>'f' = 'u'")" = 6 ]; }
wait_for newapp || fail "describe does not show the new app: $(sql "SELECT last_describe FROM devices WHERE device_id = '$D'")"
# The application hash changed: spark/device/app-hash with the new one.
apphash=$(sql "SELECT m->>'u' FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$D' AND m->>'f' = 'u'")
[ -n "$apphash" ] || fail "no app hash in the describe"
wait_for grep -q "\"data\":\"$apphash\"" "$T_DIR/sse.out" ||
	fail "no spark/device/app-hash $apphash: $(grep -A1 app-hash "$T_DIR/sse.out")"
grep -q "spark/device/app-hash" "$T_DIR/sse.out" || fail "app-hash event name"
# ... and stored, for after a restart or the linger (0006).
apphash_stored() { [ "$(sql "SELECT app_hash FROM devices WHERE device_id = '$D'")" = "$apphash" ]; }
wait_for apphash_stored || fail "app hash not stored: $(sql "SELECT app_hash FROM devices WHERE device_id = '$D'")"
http GET "/v1/devices/$D" "${A[@]}"
expect 200 "get after flash"
[ "$(field '["connected"]')" = True ] || fail "not connected after flash"
stop_cinderd # a clean exit (ASan: nothing leaked)
note "flash ok"
