#!/bin/bash
# SPDX-License-Identifier: MIT
# 200 cinder-sim devices (one process) on system 1000 whose app needs
# 1512 connect at once and all heal (two small system parts each, a
# reboot between them) under healer_max_concurrent 25: the daemon's own
# high-water mark of heals at once (GET /v1/ping "healer": "peak") is 25,
# never more, it is never seen above the cap while the heals run, some
# devices waited their turn, and every device ends healed with one
# history row (HEAL_SCALE_N overrides the count for manual runs).
set -u
. "$(dirname "$0")/lib.sh"
integ_init
. "$(dirname "$0")/healer_lib.sh"
N=${HEAL_SCALE_N:-200}
CAP=25
echo "healer_max_concurrent $CAP" >>"$T_DIR/cinder.conf"
# hf FIELD: a field of the last GET /v1/ping's "healer" object.
hf() { json_get "$HTTP_BODY" "[\"healer\"][\"$1\"]"; }

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
# 1 KB parts: two chunks each, the test is about concurrency.
make_parts 31
import_parts 1.5.2
"$SIM" provision --count "$N" --dir "$T_DIR/sim" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice@example.com --prefix 58 \
	>/dev/null || fail "provision"
start_cinderd
http GET /v1/ping
[ "$(hf peak)" = 0 ] || fail "peak before any heal: $HTTP_BODY"
[ "$(hf max_concurrent)" = $CAP ] || fail "cap not reported: $HTTP_BODY"

start=$(date +%s)
sim_run sim "$T_DIR/sim" --app testapp --system-version 1000 --app-requires 1512
# While they heal, nobody sees more than the cap at once.
over=""
all_installed() {
	local a
	http GET /v1/ping
	a=$(hf active)
	[ "$a" -le $CAP ] || over="$over $a"
	[ "$(grep -c ' installed s/2 1512$' "$T_DIR/sim.out")" -ge "$N" ]
}
# stuck: what the first three devices not healed did and what cinderd
# logged about them (their last 15 lines), for a failure's report.
stuck() {
	local id k=0
	for id in $(awk '$1 == "ready" { print $2 }' "$T_DIR/sim.out" | sort -u); do
		grep -q "^ota $id installed s/2 " "$T_DIR/sim.out" && continue
		echo "--- $id (cinder-sim):"
		grep " $id\b" "$T_DIR/sim.out"
		echo "--- $id (cinderd):"
		grep "$id" "$T_DIR/cinderd.log" | tail -n 15
		k=$((k + 1))
		[ $k -lt 3 ] || break
	done
}
WAIT_S=150 wait_for all_installed || {
	stuck >&2
	fail "only $(grep -c ' installed s/2 1512$' "$T_DIR/sim.out") of $N healed; ping: $HTTP_BODY"
}
[ -z "$over" ] || fail "more than $CAP heals at once:$over"
all_rows() { [ "$(sql "SELECT count(*) FROM healer_history WHERE event = 'healed'")" = "$N" ]; }
WAIT_S=60 wait_for all_rows ||
	fail "history: $(sql "SELECT event, count(*) FROM healer_history GROUP BY 1")"
note "$N devices healed in $(( $(date +%s) - start )) s under a cap of $CAP"
[ "$(sql "SELECT count(*) FROM healer_history")" = "$N" ] ||
	fail "extra history rows: $(sql "SELECT event, count(*) FROM healer_history GROUP BY 1")"
[ "$(sql "SELECT count(DISTINCT device_id) FROM healer_history WHERE jsonb_array_length(detail->'parts') = 2")" = "$N" ] ||
	fail "not two parts each"
# Each device got each part once: no transfer was repeated.
[ "$(grep -c ' begin ' "$T_DIR/sim.out")" = $((2 * N)) ] ||
	fail "transfers: $(grep -c ' begin ' "$T_DIR/sim.out"), want $((2 * N))"
idle() { http GET /v1/ping; [ "$(hf active)" = 0 ] && [ "$(hf waiting)" = 0 ]; }
wait_for idle || fail "heals left: $HTTP_BODY"
peak=$(hf peak)
[ "$peak" -le $CAP ] || fail "peak $peak over the cap $CAP"
[ "$peak" = $CAP ] || fail "peak $peak: the cap was never reached"
log_has "heal waits: $CAP devices are healing" || fail "no device waited for a slot"
note "peak $peak heals at once"
kill -TERM "$SIM_PID_sim"
stop_cinderd
