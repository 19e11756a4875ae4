#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A simulated device whose user app needs a newer system part than the
# one installed (--app-requires > --system-version) runs in safe mode:
# the simulator prints "safemode <id>", and the describe cinderd stores
# has no functions, and the user module's vv lacks DEPENDENCIES (0x04).
set -u
. "$(dirname "$0")/lib.sh"
integ_init

SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
cinderd_cmd migrate >/dev/null || fail "migrate"
start_cinderd
"$SIM" provision --count 1 --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" >/dev/null || fail "provision"
id=$(head -1 "$T_DIR/sim/devices.txt")

"$SIM" run --dir "$T_DIR/sim" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --system-version 1512 \
	--app-requires 2000 </dev/null >"$T_DIR/sim.out" 2>"$T_DIR/sim.err" &
SIM_PID=$!
T_PIDS+=("$SIM_PID")

safemode() { grep -q "^safemode $id\$" "$T_DIR/sim.out"; }
wait_for safemode || fail "no safemode line: $(cat "$T_DIR/sim.out")"
described() { [ -n "$(sql "SELECT 1 FROM devices WHERE device_id = '$id' AND last_describe IS NOT NULL")" ]; }
wait_for described || fail "no describe stored"
desc=$(sql "SELECT last_describe FROM devices WHERE device_id = '$id'")
[ "$(sql "SELECT jsonb_array_length(last_describe->'f') FROM devices WHERE device_id = '$id'")" = 0 ] ||
	fail "functions in safe mode: $desc"
user=$(sql "SELECT m FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$id' AND m->>'f' = 'u'")
[ -n "$user" ] || fail "no user module: $desc"
vc=$(sql "SELECT (m->>'vc')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$id' AND m->>'f' = 'u'")
vv=$(sql "SELECT (m->>'vv')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$id' AND m->>'f' = 'u'")
[ "$vc" = 30 ] || fail "user vc $vc: $user"
[ $(( vv & 4 )) = 0 ] || fail "user vv $vv has DEPENDENCIES: $user"
[ "$vv" = 26 ] || fail "user vv $vv: $user"
req=$(sql "SELECT (m->'d'->0->>'v')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$id' AND m->>'f' = 'u'")
[ "$req" = 2000 ] || fail "user dependency $req: $user"

kill -TERM "$SIM_PID"
wait "$SIM_PID" || fail "cinder-sim exited non-zero"
note "sim safemode ok"
