#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A stop that arrives before cinderd's loop has run (SIGTERM while its
# start-up waits on PostgreSQL) still flushes the start-up writes: the
# stale online flag of a device this node held is reset, the stop is
# clean, and no "database writes not done" warning is logged.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

echo "node_id t-stop-node" >>"$T_DIR/cinder.conf"
server_key_copy
cinderd_cmd migrate >/dev/null || fail "migrate"
sim_provision "$T_DIR/d" 1 --register
id=$(head -1 "$T_DIR/d/devices.txt")
sql "UPDATE devices SET online = true, node_id = 't-stop-node' WHERE device_id = '$id'" >/dev/null ||
	fail "could not mark the device online"

# Hold schema_migrations so that cinderd's migration check waits for us.
mkfifo "$T_DIR/lock.in"
psql -X -q -At -h "$CINDER_TEST_PGHOST" -p "$CINDER_TEST_PGPORT" \
	-U "$CINDER_TEST_PGUSER" -d "$T_DB" <"$T_DIR/lock.in" >"$T_DIR/lock.out" 2>&1 &
T_PIDS+=("$!")
lock_pid=$!
exec 3>"$T_DIR/lock.in"
echo "BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&3
wait_for grep -q locked "$T_DIR/lock.out" || fail "could not lock schema_migrations"

: >"$T_DIR/cinderd.log"
"$CINDERD" run -c "$T_DIR/cinder.conf" >>"$T_DIR/cinderd.log" 2>&1 &
CINDERD_PID=$!
T_PIDS+=("$CINDERD_PID")
# its signal handlers are set before it connects: once it waits on the
# lock, SIGTERM is queued for its loop
waiting() {
	[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")" -ge 1 ]
}
wait_for waiting || fail "cinderd never waited on the migration lock"
kill -TERM "$CINDERD_PID" || fail "cinderd is not running"
echo "COMMIT;" >&3
exec 3>&-
wait "$lock_pid"

rc=0
wait "$CINDERD_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "cinderd exited $rc after an early SIGTERM"
log_has "ready: devices on port" || fail "cinderd did not get to ready"
log_has "received SIGTERM" || fail "the SIGTERM was not handled by the loop"
log_has "stopped" || fail "no stop line"
log_has "writes not done" && fail "start-up writes dropped at stop"
[ "$(sql "SELECT online FROM devices WHERE device_id = '$id'")" = f ] ||
	fail "the stale online flag was not reset before the stop"
note "early stop flushed the start-up writes"
