#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Presence columns are written in batches (src/registry_pres.c): the
# database still ends with each device's last state. A connect writes the
# Hello and describe columns; connect/disconnect churn ends offline with
# last_heard after the last handshake; a device taking over its own older
# connection ends online; changes made during a PostgreSQL outage land in
# order once it is back. What changes of one device inside one batch leave
# is checked in tests/unit/check_registry_pres. A reconnect with the same
# describe leaves the describe columns as they are (describe_key, 0008).
# Uses a private cluster (it stops PostgreSQL).
set -u
. "$(dirname "$0")/lib.sh"
integ_init

private_pg presence

start_cinderd
sim_provision "$T_DIR/d" 3 --register
ids=$(tr '\n' ' ' <"$T_DIR/d/devices.txt")
col() { sql "SELECT string_agg($1, ',' ORDER BY device_id) FROM devices"; }
all_are() { [ "$(col "$1")" = "$2" ]; }

# connect: online, Hello and describe columns
sim_run a "$T_DIR/d" --count 3 --app tinker
WAIT_S=30 wait_for sim_has_at_least a ready 3 || fail "devices not ready"
wait_for all_are "online::text" "true,true,true" || fail "not online in the database: $(col online::text)"
wait_for all_are "(last_describe IS NOT NULL)::text" "true,true,true" ||
	fail "describe not stored: $(col "(last_describe IS NOT NULL)::text")"
all_are "last_ip_address" "127.0.0.1,127.0.0.1,127.0.0.1" || fail "last_ip_address: $(col last_ip_address)"
all_are "(last_handshake_at IS NOT NULL AND node_id IS NOT NULL AND platform_id IS NOT NULL)::text" \
	"true,true,true" || fail "Hello columns missing"

# each row names the describe it holds (0008); the mark below stays
# through the churn if reconnects with the same describe leave the
# describe columns alone (their writes land before the last offline)
wait_for all_are "(describe_key IS NOT NULL)::text" "true,true,true" ||
	fail "describe_key not stored: $(col "coalesce(describe_key, 'NULL')")"
sql "UPDATE devices SET last_describe = last_describe || '{\"mark\": 1}'" >/dev/null

# churn: three connect/disconnect rounds end offline
for round in 1 2 3; do
	kill "$(eval echo "\$SIM_PID_$([ $round = 1 ] && echo a || echo c$((round - 1)))")"
	wait_for health_is online 0 || fail "round $round: devices did not leave"
	sim_run "c$round" "$T_DIR/d" --count 3 --app tinker
	WAIT_S=30 wait_for sim_has_at_least "c$round" ready 3 || fail "round $round: not ready"
done
kill "$SIM_PID_c3"
wait_for health_is online 0 || fail "devices did not leave after the churn"
wait_for all_are "online::text" "false,false,false" || fail "not offline after the churn: $(col online::text)"
all_are "(last_heard >= last_handshake_at)::text" "true,true,true" ||
	fail "last_heard not after the last handshake"
all_are "coalesce(last_describe->>'mark', 'written')" "1,1,1" ||
	fail "the same describe was written again: $(col "coalesce(last_describe->>'mark', 'written')")"

# takeover: a second simulator with the same keys replaces the first's
# connections (offline of the old, online of the new)
sim_run t1 "$T_DIR/d" --count 3 --app tinker
WAIT_S=30 wait_for sim_has_at_least t1 ready 3 || fail "t1 not ready"
sim_run t2 "$T_DIR/d" --count 3 --app tinker
WAIT_S=30 wait_for sim_has_at_least t2 ready 3 || fail "t2 not ready"
replaced() { http GET /v1/ping; [ "$(json_get "$HTTP_BODY" '["devices"]["replaced"]')" -ge 3 ]; }
wait_for replaced || fail "no connection was replaced"
kill "$SIM_PID_t1"
wait_for health_is online 3 || fail "takeover: $(health online) online"
wait_for all_are "online::text" "true,true,true" || fail "not online after the takeover: $(col online::text)"
kill "$SIM_PID_t2"
wait_for health_is online 0 || fail "t2 did not leave"
wait_for all_are "online::text" "false,false,false" || fail "not offline after t2 left"

# outage: online and offline again while PostgreSQL is down; the final
# offline lands after it is back
sim_run o1 "$T_DIR/d" --count 3 --app tinker
WAIT_S=30 wait_for sim_has_at_least o1 ready 3 || fail "o1 not ready"
wait_for all_are "online::text" "true,true,true" || fail "not online before the outage"
pgcluster_stop "$pgdir" || fail "could not stop PostgreSQL"
ping_down() { http GET /v1/ping; [ "$HTTP_STATUS" = 503 ]; }
WAIT_S=30 wait_for ping_down || fail "health never reported the outage"
kill "$SIM_PID_o1"
wait_for health_is online 0 || fail "o1 did not leave"
sim_run o2 "$T_DIR/d" --count 3 --app tinker
WAIT_S=30 wait_for sim_has_at_least o2 ready 3 || fail "known devices could not reconnect during the outage"
kill "$SIM_PID_o2"
wait_for health_is online 0 || fail "o2 did not leave"
pgcluster_start "$pgdir" || fail "could not restart PostgreSQL"
ping_up() { http GET /v1/ping; [ "$HTTP_STATUS" = 200 ]; }
WAIT_S=30 wait_for ping_up || fail "cinderd did not recover"
WAIT_S=30 wait_for all_are "online::text" "false,false,false" ||
	fail "the offline written during the outage did not land: $(col online::text)"
all_are "(last_heard >= last_handshake_at)::text" "true,true,true" ||
	fail "last_heard not after the last handshake after the outage"
log_has "could not record device presence" && fail "a presence batch failed"
stop_cinderd
note "presence batches ok ($ids)"
