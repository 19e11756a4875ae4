#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 200 simulated devices in one cinder-sim process connect at once and all
# reach ready; cinderd has all 200 online in the database (SIM_SCALE_N
# overrides the count for manual runs).
set -u
. "$(dirname "$0")/lib.sh"
integ_init

SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
N=${SIM_SCALE_N:-200}
cinderd_cmd migrate >/dev/null || fail "migrate"
start_cinderd

"$SIM" provision --count $N --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" >/dev/null || fail "provision"
[ "$(sql "SELECT count(*) FROM devices")" = $N ] || fail "not all registered"

start=$(date +%s)
"$SIM" run --dir "$T_DIR/sim" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" </dev/null \
	>"$T_DIR/sim.out" 2>"$T_DIR/sim.err" &
SIM_PID=$!
T_PIDS+=("$SIM_PID")

all_ready() { [ "$(grep -c '^ready ' "$T_DIR/sim.out")" -ge $N ]; }
WAIT_S=45 wait_for all_ready ||
	fail "only $(grep -c '^ready ' "$T_DIR/sim.out") of $N ready"
note "$N devices ready in $(( $(date +%s) - start )) s"
online() { [ "$(sql "SELECT count(*) FROM devices WHERE online")" = $N ]; }
WAIT_S=30 wait_for online || fail "only $(sql "SELECT count(*) FROM devices WHERE online") online"
grep -q '^closed ' "$T_DIR/sim.out" && fail "a device was dropped: $(grep '^closed ' "$T_DIR/sim.out" | head -3)"
kill -0 "$SIM_PID" || fail "simulator died (stdin at EOF must not stop it)"

kill -TERM "$SIM_PID"
wait "$SIM_PID" || fail "cinder-sim exited non-zero"
offline() { [ "$(sql "SELECT count(*) FROM devices WHERE online")" = 0 ]; }
wait_for offline || fail "devices still online"
note "sim scale ok"
