#!/bin/bash
# SPDX-License-Identifier: MIT
# Prereleases and the healer: the parts a safe-mode device needs exist
# only in a -rc release.
# - By default the healer never chooses them: the heal is reported as
#   missing (one history row) and the device gets no OTA.
# - With `healer_prerelease 1` (the operator allows it) the same kind of
#   device is healed from the -rc release, parts in order.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"

mk() { "$CINDERD" firmware make-module "$@" >/dev/null || fail "make-module $*"; }
provision() { # provision NAME PREFIX: one device of alice's; prints its id
	"$SIM" provision --count 1 --dir "$T_DIR/$1" --cinderd "$CINDERD" \
		--config "$T_DIR/cinder.conf" --owner alice@example.com \
		--prefix "$2" >/dev/null || fail "provision $1"
	head -1 "$T_DIR/$1/devices.txt"
}

cinderd_cmd migrate >/dev/null || fail "migrate"
printf 'alicepass123\n' | cinderd_cmd user add alice@example.com >/dev/null || fail "user add"
mk -o "$T_DIR/s1.bin" --platform 3 --function system_part --index 1 \
	--version 1512 --dep bootloader:0:400 --seed 21
mk -o "$T_DIR/s2.bin" --platform 3 --function system_part --index 2 \
	--version 1512 --dep system_part:1:1512 --dep bootloader:0:400 --seed 22
cinderd_cmd firmware import "$T_DIR/s1.bin" "$T_DIR/s2.bin" \
	--release 1.5.2-rc.1 >/dev/null || fail "import"
[ "$(sql "SELECT prerelease FROM device_os_releases")" = t ] || fail "not a prerelease"

# --- default: prereleases are not chosen ---
start_cinderd
NO=$(provision no 6a)
sim_run no "$T_DIR/no" --app testapp --system-version 1000 --app-requires 1512
wait_for grep -q "^safemode $NO" "$T_DIR/no.out" || fail "no: no safe mode"
missing() { [ "$(sql "SELECT count(*) FROM healer_history WHERE device_id = '$NO' AND event = 'missing'")" = 1 ]; }
wait_for missing || fail "no: not reported missing: $(sql "SELECT event, detail FROM healer_history")"
[ "$(sim_count no ota)" = 0 ] || fail "no: a prerelease part was sent: $(grep ota "$T_DIR/no.out")"
stop_cinderd
note "prerelease not chosen by default"

# --- the operator allows prereleases ---
echo "healer_prerelease 1" >>"$T_DIR/cinder.conf"
start_cinderd
YES=$(provision yes 6b)
sim_run yes "$T_DIR/yes" --app testapp --system-version 1000 --app-requires 1512
WAIT_S=40 wait_for grep -q "^ota $YES installed s/2 1512" "$T_DIR/yes.out" ||
	fail "yes: not healed: $(cat "$T_DIR/yes.out")"
[ "$(grep "^ota $YES installed" "$T_DIR/yes.out" | cut -d' ' -f4 | tr '\n' ' ')" = "s/1 s/2 " ] ||
	fail "yes: order: $(grep "^ota" "$T_DIR/yes.out")"
healed() { [ "$(sql "SELECT count(*) FROM healer_history WHERE device_id = '$YES' AND event = 'healed'")" = 1 ]; }
wait_for healed || fail "yes: no healed row: $(sql "SELECT event, detail FROM healer_history")"
stop_cinderd
note "prerelease chosen with healer_prerelease 1"
