#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `particle flash DEVICE app.bin` (particle-cli, cloud flash) against
# cinderd and a cinder-sim device: the CLI says "Flash success!", the
# device installs the application (made with `cinderd firmware
# make-module`) and reconnects running it; a binary for another platform
# fails with the server's message and the device sees no OTA; a system
# part (newer than the device's) flashed the same way is installed and
# the device comes back describing it. Run under
# tests/with-pg; skips (77) without PostgreSQL or node.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integ/lib.sh"
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"
compat_init compat-flash

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user carol@example.com carolpass123
start_cinderd
"$SIM" provision --count 1 --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner carol@example.com --prefix 7d >/dev/null ||
	fail "provision"
sim_run sim "$T_DIR/sim" --app testapp
DEV=$(head -1 "$T_DIR/sim/devices.txt")
wait_for grep -q "^ready $DEV" "$T_DIR/sim.out" || fail "simulated device not ready"

"$CINDERD" firmware make-module -o "$T_DIR/app.bin" --platform 3 \
	--function user_part --index 1 --version 7 --dep system_part:2:1512 \
	--size 8192 --seed 3 >/dev/null || fail "make-module app"
"$CINDERD" firmware make-module -o "$T_DIR/photon.bin" --platform 6 \
	--function user_part --index 1 --version 7 --dep system_part:2:1512 \
	--size 8192 >/dev/null || fail "make-module photon"
# System part 1 at 2000 (the simulator runs 1512), its usual dependency.
"$CINDERD" firmware make-module -o "$T_DIR/system-part1.bin" --platform 3 \
	--function system_part --index 1 --version 2000 --dep bootloader:0:400 \
	--seed 5 >/dev/null || fail "make-module system part"

particle_cli
strip() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

CLI login --username carol@example.com --password carolpass123 >/dev/null 2>&1 ||
	fail "login"
if OUT=$(CLI flash "$DEV" "$T_DIR/photon.bin" 2>&1 | strip; exit "${PIPESTATUS[0]}"); then
	fail "flash of a photon binary succeeded: $OUT"
fi
echo "$OUT" | grep -q "wrong platform" || fail "the CLI does not show why: $OUT"
[ "$(sim_count sim ota)" = 0 ] || fail "a refused binary reached the device"

OUT=$(CLI flash "$DEV" "$T_DIR/app.bin" 2>&1 | strip; exit "${PIPESTATUS[0]}") ||
	fail "particle flash: $OUT"
echo "$OUT" | grep -q "Flash success" || fail "particle flash output: $OUT"
wait_for grep -q "^ota $DEV installed" "$T_DIR/sim.out" ||
	fail "not installed: $(cat "$T_DIR/sim.out")"
reconnected() { [ "$(grep -c "^ready $DEV" "$T_DIR/sim.out")" -ge 2 ]; }
wait_for reconnected || fail "no reconnect"
newapp() { [ "$(sql "SELECT (m->>'v')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$DEV' AND m->>'f' = 'u'")" = 7 ]; }
wait_for newapp || fail "describe does not show the new app"

OUT=$(CLI flash "$DEV" "$T_DIR/system-part1.bin" 2>&1 | strip; exit "${PIPESTATUS[0]}") ||
	fail "particle flash of a system part: $OUT"
echo "$OUT" | grep -q "Flash success" || fail "particle flash output (system part): $OUT"
wait_for grep -q "^ota $DEV installed s/1 2000" "$T_DIR/sim.out" ||
	fail "system part not installed: $(grep ota "$T_DIR/sim.out")"
newsys() { [ "$(sql "SELECT (m->>'v')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$DEV' AND m->>'f' = 's' AND m->>'n' = '1' AND m->>'l' = 'm'")" = 2000 ]; }
wait_for newsys || fail "describe does not show system part 1 at 2000: $(sql "SELECT last_describe FROM devices WHERE device_id = '$DEV'")"
note "particle flash of a system part ok"
note "particle flash ok"
