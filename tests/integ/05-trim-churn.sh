#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# After a connect storm cinderd gives the storm's free heap back
# (malloc_trim, "connect burst settled") once the handshakes have died
# down, even while devices keep reconnecting at a fleet's usual pace. It
# used to wait for a second with no handshake at all, which steady churn
# never leaves: the trim then never ran (bench/soak: ~6 MB at 10,000).
set -u
. "$(dirname "$0")/lib.sh"
integ_init
LOADGEN="$top_builddir/bench/cinder-loadgen"
[ -x "$LOADGEN" ] || fail "$LOADGEN is missing"
start_cinderd
add_user churn@example.com pw-churn-1
login churn@example.com pw-churn-1

# 300 devices (the trim's burst is 256 handshakes), then 5 of them
# closed and started again every second: 10 handshakes and closes a
# second, every second, for 20 s.
sim_provision "$T_DIR/d" 300 --register
psql -X -q -d "$T_CONNINFO" -c "UPDATE devices SET owner_id = (SELECT id
	FROM users WHERE username = 'churn@example.com')" >/dev/null ||
	fail "could not give the devices to the user"
"$LOADGEN" soak --dir "$T_DIR/d" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --api "127.0.0.1:$API_PORT" \
	--token "$TOKEN" --pid "$CINDERD_PID" --count 300 --rate 1 \
	--calls 0 --churn 100 --window 10 --seconds 20 --streams 1 \
	--concurrency 1 >"$T_DIR/loadgen.out" 2>&1 &
LG=$!
T_PIDS+=("$LG")
WAIT_S=60 wait_for grep -q '"window":0' "$T_DIR/loadgen.out" ||
	fail "the generator's first window never ended: $(tail -3 "$T_DIR/loadgen.out")"
grep -q '"churned":[1-9]' "$T_DIR/loadgen.out" ||
	fail "no device was reconnected in the first window"
# the storm ended at least 10 s ago and the churn goes on: the trim ran
log_has "connect burst settled (" ||
	fail "no trim after the storm while devices kept reconnecting"
note "$(grep -m1 -o 'connect burst settled (.*' "$T_DIR/cinderd.log")"
wait "$LG" || fail "cinder-loadgen soak failed: $(tail -3 "$T_DIR/loadgen.out")"
stop_cinderd
note "trim under churn ok"
