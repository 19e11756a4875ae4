#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL goes away under a running cinderd: cinderd logs the outage,
# keeps running, keeps its device sessions, lets a known device reconnect
# (cached key), its health endpoint says the database is down (503), and
# once PostgreSQL is back it reconnects by itself, says so, and the queued
# presence writes land.
# Uses a private cluster (it stops PostgreSQL), not the shared harness one.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

private_pg outage

start_cinderd
http GET /v1/ping
[ "$HTTP_STATUS" = 200 ] || fail "ping before the outage: $HTTP_STATUS"
sim_provision "$T_DIR/d" 2 --register
sim_run a "$T_DIR/d" --count 1 --app tinker
WAIT_S=30 wait_for sim_has_at_least a ready 1 || fail "device a not ready"

pgcluster_stop "$pgdir" || fail "could not stop PostgreSQL"
ping_down() { http GET /v1/ping; [ "$HTTP_STATUS" = 503 ]; }
body=""
WAIT_S=30 wait_for ping_down || fail "health never reported the outage"
http GET /v1/ping; body=$HTTP_BODY
[ "$(json_get "$body" '["database"]')" = down ] || fail "database not down: $body"
kill -0 "$CINDERD_PID" || fail "cinderd died during the outage"
[ "$(health online)" = 1 ] || fail "the session did not survive the outage"
# The device reconnects during the outage: its cached key lets it in.
kill "$SIM_PID_a"
wait_for health_is online 0 || fail "device a did not leave"
sim_run a2 "$T_DIR/d" --count 1 --app tinker
WAIT_S=30 wait_for sim_has_at_least a2 ready 1 || fail "known device could not reconnect during the outage"
log_has "database unavailable: using the cached key" || fail "no cached-key log line"
wait_for log_has "lost\|connection to the database\|database.*down\|could not connect" || fail "outage not logged"

pgcluster_start "$pgdir" || fail "could not restart PostgreSQL"
ping_up() { http GET /v1/ping; [ "$HTTP_STATUS" = 200 ]; }
WAIT_S=30 wait_for ping_up || fail "cinderd did not recover"
http GET /v1/ping; body=$HTTP_BODY
[ "$(json_get "$body" '["database"]')" = up ] || fail "database not up again: $body"
[ "$(json_get "$body" '["store"]["reconnects"]')" -ge 1 ] || fail "no reconnect counted: $body"
id=$(head -1 "$T_DIR/d/devices.txt")
online_is_t() { [ "$(psql -X -At "$dbconn" -c "SELECT online FROM devices WHERE device_id = '$id'")" = t ]; }
WAIT_S=30 wait_for online_is_t ||
	fail "queued online write did not land after the outage"
stop_cinderd
note "outage and recovery ok"
