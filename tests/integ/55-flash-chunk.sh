#!/bin/bash
# SPDX-License-Identifier: MIT
# The OTA chunk size comes from the device (protocol.md §2.4, §5.2):
# - a Device OS 2.x device (8-byte Hello) says it with the event
#   spark/hardware/ota_chunk_size;
# - a Device OS 3.0+ device (--devos3) says it in its extended Hello;
# and the UpdateBegin of a flash uses it (the simulator prints the file
# and chunk size it received: "ota ID begin fast 4096/256"). A device
# announcing the usual 512 gets 512. The image installs in every case.
# The largest binary is announced the same way (spark/hardware/max_binary
# or the extended Hello): a flash larger than it is a 400 too_big naming
# the limit, and the device sees no OTA.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
start_cinderd
login alice@example.com alicepass123
A=(-H "Authorization: Bearer $TOKEN")
"$CINDERD" firmware make-module -o "$T_DIR/app.bin" --platform 3 \
	--function user_part --index 1 --version 6 --dep system_part:2:1512 \
	--size 4096 --seed 9 >/dev/null || fail "make-module"

# check NAME PREFIX CHUNK [sim flags]: a device announcing CHUNK (stored
# once online) gets UpdateBegin with CHUNK and installs the app.
check() {
	local name=$1 prefix=$2 chunk=$3 id
	shift 3
	sim_provision "$T_DIR/$name" 1 --register --owner alice@example.com --prefix "$prefix"
	id=$(head -1 "$T_DIR/$name/devices.txt")
	sim_run "$name" "$T_DIR/$name" --app testapp "$@"
	said() { [ "$(sql "SELECT ota_chunk_size FROM devices WHERE device_id = '$id'")" = "$chunk" ]; }
	WAIT_S=30 wait_for said || fail "$name: chunk size not stored: $(sql "SELECT ota_chunk_size FROM devices WHERE device_id = '$id'")"
	http PUT "/v1/devices/$id" "${A[@]}" -F "file=@$T_DIR/app.bin;filename=app.bin"
	[ "$HTTP_STATUS" = 200 ] || fail "$name: flash: $HTTP_STATUS $HTTP_BODY"
	wait_for grep -q "^ota $id installed" "$T_DIR/$name.out" ||
		fail "$name: not installed: $(grep ota "$T_DIR/$name.out")"
	[ "$(grep "^ota $id begin" "$T_DIR/$name.out")" = "ota $id begin fast 4096/$chunk" ] ||
		fail "$name: UpdateBegin: $(grep "^ota $id begin" "$T_DIR/$name.out")"
	note "$name: chunk $chunk"
}
check gen2 5a 512
check gen2_256 5b 256 --ota-chunk-size 256
check gen3_384 5c 384 --devos3 --ota-chunk-size 384

# small NAME PREFIX [sim flags]: a device announcing a 3000-byte limit
# refuses the 4096-byte app before any OTA.
small() {
	local name=$1 prefix=$2 id
	shift 2
	sim_provision "$T_DIR/$name" 1 --register --owner alice@example.com --prefix "$prefix"
	id=$(head -1 "$T_DIR/$name/devices.txt")
	sim_run "$name" "$T_DIR/$name" --app testapp --max-binary 3000 "$@"
	said() { [ "$(sql "SELECT max_binary_size FROM devices WHERE device_id = '$id'")" = 3000 ]; }
	WAIT_S=30 wait_for said || fail "$name: max binary not stored"
	http PUT "/v1/devices/$id" "${A[@]}" -F "file=@$T_DIR/app.bin;filename=app.bin"
	[ "$HTTP_STATUS" = 400 ] && [ "$(json_get "$HTTP_BODY" '["code"]')" = too_big ] ||
		fail "$name: flash over the limit: $HTTP_STATUS $HTTP_BODY"
	json_get "$HTTP_BODY" '["error"]' | grep -q "at most 3000" || fail "$name: message: $HTTP_BODY"
	[ "$(sim_count "$name" ota)" = 0 ] || fail "$name: an OTA reached the device"
	note "$name: too big refused"
}
small gen2_small 5d
small gen3_small 5e --devos3
stop_cinderd
