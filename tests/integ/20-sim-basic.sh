#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cinder-sim against cinderd: provision 3 devices (registered with
# `cinderd device add`), run them, wait for their ready lines, check the
# database (online, last_handshake_at, last_describe with the functions),
# then SIGTERM the simulator and wait for the devices to go offline.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice pw-for-alice-123
start_cinderd

"$SIM" provision --count 3 --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice --prefix 5a >/dev/null ||
	fail "provision"
[ "$(wc -l <"$T_DIR/sim/devices.txt")" = 3 ] || fail "devices.txt"
# idempotent: nothing new, nothing registered twice
"$SIM" provision --count 3 --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice --prefix 5a >/dev/null ||
	fail "second provision"
[ "$(wc -l <"$T_DIR/sim/devices.txt")" = 3 ] || fail "devices.txt grew"
ids=$(cat "$T_DIR/sim/devices.txt")
for id in $ids; do
	grep -q "BEGIN RSA PRIVATE KEY" "$T_DIR/sim/$id.pem" || fail "no PKCS#1 key for $id"
	[ "$(sql "SELECT count(*) FROM devices d JOIN users u ON u.id = d.owner_id WHERE d.device_id = '$id' AND u.username = 'alice'")" = 1 ] ||
		fail "$id not registered to alice"
done

mkfifo "$T_DIR/ctl"
"$SIM" run --dir "$T_DIR/sim" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	<"$T_DIR/ctl" >"$T_DIR/sim.out" 2>"$T_DIR/sim.err" &
SIM_PID=$!
T_PIDS+=("$SIM_PID")
exec 3>"$T_DIR/ctl"

n_ready() { grep -c '^ready ' "$T_DIR/sim.out"; }
all_ready() { [ "$(n_ready)" -ge 3 ]; }
wait_for all_ready || { cat "$T_DIR/sim.err" >&2; fail "devices not ready: $(cat "$T_DIR/sim.out")"; }

online() { [ "$(sql "SELECT count(*) FROM devices WHERE online AND last_handshake_at IS NOT NULL")" = 3 ]; }
wait_for online || fail "devices not online in the database"
described() {
	[ "$(sql "SELECT count(*) FROM devices WHERE last_describe->'f' ? 'setcounter' AND last_describe->'v'->>'counter' = '2'")" = 3 ]
}
wait_for described || fail "describe not stored: $(sql "SELECT last_describe FROM devices LIMIT 1")"
# the system part: platform 3 and the module table
[ "$(sql "SELECT count(*) FROM devices WHERE (last_describe->>'p')::int = 3 AND jsonb_array_length(last_describe->'m') = 5")" = 3 ] ||
	fail "system describe: $(sql "SELECT last_describe FROM devices LIMIT 1")"

# control: stats
echo stats >&3
has_stats() { grep -q '^stats connected=3 ready=3$' "$T_DIR/sim.out"; }
wait_for has_stats || fail "no stats line: $(tail -3 "$T_DIR/sim.out")"

kill -TERM "$SIM_PID"
wait "$SIM_PID" || fail "cinder-sim exited non-zero after SIGTERM"
[ "$(grep -c '^closed .* stopped$' "$T_DIR/sim.out")" = 3 ] || fail "no closed lines"
offline() { [ "$(sql "SELECT count(*) FROM devices WHERE online")" = 0 ]; }
wait_for offline || fail "devices still online after the simulator stopped"
note "sim basic ok"
