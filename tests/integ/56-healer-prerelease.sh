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
. "$(dirname "$0")/healer_lib.sh"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
make_parts 21
import_parts 1.5.2-rc.1
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
