#!/bin/bash
# SPDX-License-Identifier: MIT
# Devices as Device OS starts them (issue: functions missing, 3.0+ refused).
# - testapp in the Device OS start-up order (setup() after the cloud
#   connects, so the first describe has no app part): its functions and
#   variables reach the API within 2 s of "ready", and a call right after
#   "ready" works (the describe is refreshed when a name is missing).
# - A call to a name the device does not have: 404 after at most one
#   describe refresh; 100 such calls at once cost at most a few describes.
# - A device speaking as Device OS 3.0+ (--devos3): the 20-byte Hello is
#   accepted and its fields stored, its posted system describe does not
#   hide the app part, and the Goodbye it sends before a reset is recorded.
#   After the reboot setup() runs again and its functions come back.
# - system_firmware_version is null when the describe has no system module.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
[ -x "$SIM" ] || fail "no $SIM"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
start_cinderd
login alice@example.com alicepass123
A=(-H "Authorization: Bearer $TOKEN")

# --- Device OS start-up order (testapp's default) --------------------------
sim_provision "$T_DIR/dos" 2 --register --owner alice@example.com --prefix 7a
D1=$(sed -n 1p "$T_DIR/dos/devices.txt")
D2=$(sed -n 2p "$T_DIR/dos/devices.txt")
mkfifo "$T_DIR/dos.ctl"
"$SIM" run --dir "$T_DIR/dos" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	<"$T_DIR/dos.ctl" >"$T_DIR/dos.out" 2>"$T_DIR/dos.err" &
T_PIDS+=("$!")
exec 3>"$T_DIR/dos.ctl"

ready_d1() { grep -q "^ready $D1\$" "$T_DIR/dos.out"; }
WAIT_S=30 wait_for ready_d1 || fail "device not ready: $(cat "$T_DIR/dos.err")"
# Right after ready: the first describe was answered before setup(), yet a
# call works at once (or the settle describe already brought the names).
http POST "/v1/devices/$D1/setcounter" "${A[@]}" -d arg=42
expect 200 "call right after ready"
[ "$(field '["return_value"]')" = 42 ] || fail "return value: $HTTP_BODY"
grep -q "^setup $D1\$" "$T_DIR/dos.out" || fail "setup() did not run after connecting"

# D2: the full lists within 2 s of ready, without any API call touching it.
ready_d2() { grep -q "^ready $D2\$" "$T_DIR/dos.out"; }
WAIT_S=30 wait_for ready_d2 || fail "second device not ready"
full_lists() {
	http GET "/v1/devices/$D2" "${A[@]}"
	[ "$HTTP_STATUS" = 200 ] &&
		[ "$(field '["functions"].__len__()')" = 6 ] &&
		[ "$(field '["variables"]["greeting"]')" = string ]
}
WAIT_S=2 wait_for full_lists || fail "functions/variables not listed within 2 s: $HTTP_BODY"
# The device really answered an empty first describe: setup() came after it.
first_describe_line=$(grep -n "^describe $D2 1\$" "$T_DIR/dos.out" | cut -d: -f1)
setup_line=$(grep -n "^setup $D2\$" "$T_DIR/dos.out" | cut -d: -f1)
[ -n "$first_describe_line" ] && [ -n "$setup_line" ] &&
	[ "$first_describe_line" -lt "$setup_line" ] ||
	fail "setup() did not run after the first describe: $(cat "$T_DIR/dos.out")"
http GET "/v1/devices/$D2/greeting" "${A[@]}"
expect 200 "variable"
[ "$(field '["result"]')" = "hello from $D2" ] || fail "greeting: $HTTP_BODY"
# Module version 0 / no system module is unknown: null, never 0.4.0.
[ "$(field '["coreInfo"]["deviceID"]')" = "$D2" ] || fail "coreInfo"

# A missing name: 404 after at most one refresh.
describes() { grep -c "^describe $D2 " "$T_DIR/dos.out"; }
before=$(describes)
http POST "/v1/devices/$D2/nosuchfn" "${A[@]}" -d arg=x
expect 404 "missing function"
[ "$(field '["error"]')" = "Function not found" ] || fail "error text: $HTTP_BODY"
after=$(describes)
[ $((after - before)) -le 1 ] || fail "one missing name caused $((after - before)) describes"
http GET "/v1/devices/$D2/nosuchvar" "${A[@]}"
expect 404 "missing variable"
[ "$(field '["error"]')" = "Variable not found" ] || fail "error text: $HTTP_BODY"

# 100 calls to a missing name at once: at most a few describes.
before=$(describes)
pids=()
for i in $(seq 1 100); do
	curl -s -o /dev/null -w '%{http_code}\n' -X POST "${A[@]}" \
		-d arg=x "$API/v1/devices/$D2/nosuch$((i % 3))" >>"$T_DIR/burst.codes" &
	pids+=("$!")
done
wait "${pids[@]}"
[ "$(grep -c '^404$' "$T_DIR/burst.codes")" = 100 ] ||
	fail "burst: $(sort "$T_DIR/burst.codes" | uniq -c | tr '\n' ' ')"
after=$(describes)
note "100 calls to missing names: $((after - before)) describes"
[ $((after - before)) -le 3 ] || fail "100 missing calls caused $((after - before)) describes"

# --- Device OS 3.0+ -----------------------------------------------------------
sim_provision "$T_DIR/d3" 1 --register --owner alice@example.com --prefix 7b
D3=$(sed -n 1p "$T_DIR/d3/devices.txt")
mkfifo "$T_DIR/d3.ctl"
"$SIM" run --dir "$T_DIR/d3" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp --devos3 \
	--system-version 3005 \
	<"$T_DIR/d3.ctl" >"$T_DIR/d3.out" 2>"$T_DIR/d3.err" &
T_PIDS+=("$!")
exec 4>"$T_DIR/d3.ctl"
ready_d3() { grep -q "^ready $D3\$" "$T_DIR/d3.out"; }
WAIT_S=30 wait_for ready_d3 || fail "3.0+ device not ready: $(tail -5 "$T_DIR/cinderd.log")"
log_has "dev $D3\] hello: platform 3 product 3 version 65535 flags 0x30 system 3005 max message 767 max binary 262144 chunk 512" ||
	fail "extended hello not logged: $(grep "$D3" "$T_DIR/cinderd.log" | head -3)"
limits() {
	[ "$(sql "SELECT hello_system_version, max_binary_size, ota_chunk_size FROM devices WHERE device_id = '$D3'")" = "3005|262144|512" ]
}
wait_for limits || fail "extended hello fields not stored: $(sql "SELECT hello_system_version, max_binary_size, ota_chunk_size FROM devices WHERE device_id = '$D3'")"
d3_lists() {
	http GET "/v1/devices/$D3" "${A[@]}"
	[ "$HTTP_STATUS" = 200 ] && [ "$(field '["functions"].__len__()')" = 6 ] &&
		[ "$(field '["system_firmware_version"]')" = 3.0.0 ]
}
WAIT_S=2 wait_for d3_lists || fail "3.0+ device lists/version: $HTTP_BODY"

# A reboot: Goodbye first, then the device comes back and setup() runs again.
echo "reset $D3" >&4
goodbye() { [ "$(sql "SELECT last_goodbye->>'reset_reason' FROM devices WHERE device_id = '$D3'")" = 140 ]; }
wait_for goodbye || fail "goodbye not recorded: $(grep "$D3" "$T_DIR/cinderd.log" | tail -5)"
back() { [ "$(grep -c "^ready $D3\$" "$T_DIR/d3.out")" -ge 2 ] && [ "$(grep -c "^setup $D3\$" "$T_DIR/d3.out")" -ge 2 ]; }
WAIT_S=30 wait_for back || fail "device did not come back and run setup(): $(cat "$T_DIR/d3.out")"
http POST "/v1/devices/$D3/echo" "${A[@]}" -d arg=abcd
expect 200 "call after the reboot"
[ "$(field '["return_value"]')" = 4 ] || fail "echo after reboot: $HTTP_BODY"

# --- no system module: the version is unknown ---------------------------------
sim_provision "$T_DIR/nomod" 1 --register --owner alice@example.com --prefix 7c
D4=$(sed -n 1p "$T_DIR/nomod/devices.txt")
sim_run nomod "$T_DIR/nomod" --app tinker --system-version 0
WAIT_S=30 wait_for sim_has_at_least nomod ready 1 || fail "device without modules not ready"
described() { [ "$(sql "SELECT last_describe IS NOT NULL FROM devices WHERE device_id = '$D4'")" = t ]; }
wait_for described || fail "no describe stored"
http GET "/v1/devices/$D4" "${A[@]}"
expect 200 "get"
[ "$(field '["system_firmware_version"]')" = None ] || fail "unknown version not null: $HTTP_BODY"
[ "$(field '["current_build_target"]')" = None ] || fail "build target not null: $HTTP_BODY"
exit 0
