#!/bin/bash
# SPDX-License-Identifier: MIT
# The safe-mode healer and the flash API under faults (cinder-sim
# --ota-drop-after closes a device's connection mid-transfer):
# - a device that drops once during its first system part reconnects
#   and gets that part again at once (no back-off: healer_backoff is set
#   far beyond the test's waits), then the second part, and is healed,
#   with the Hello of Device OS 2.x and of 3.0+;
# - a device that drops during every transfer is sent the part exactly
#   healer_retries times, one "failed" history row is written, and its
#   reconnects start no new transfer;
# - a user flash (PUT /v1/devices/:id) cut mid-transfer publishes
#   spark/flash/status "failed", and the device comes back running its
#   old application;
# - PostgreSQL stops between two parts of a heal (the device reconnects
#   on its cached key while it is down, the second image cannot be read)
#   and starts again: the heal completes and its history row lands.
# Uses a private cluster (it stops PostgreSQL), like 02-db-outage.sh.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
. "$(dirname "$0")/healer_lib.sh"

private_pg faults
cat >>"$T_DIR/cinder.conf" <<CONF
healer_retries 3
healer_backoff 600
CONF

history() { sql "SELECT event FROM healer_history WHERE device_id = '$1' ORDER BY id" | tr '\n' ' '; }

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
# 16 KB parts: 32 chunks of 512 bytes, so a drop after 4 is mid-transfer.
make_parts 21 --size 16384
import_parts 1.5.2
start_cinderd
login alice@example.com alicepass123
ALICE=$TOKEN
A=(-H "Authorization: Bearer $ALICE")
event_stream /v1/devices/events/spark

# --- PostgreSQL restarts between two parts of a heal -------------------
# First, while the healer holds no image yet: the second part must be
# read from the database after the device is back.
mkfifo "$T_DIR/ctl"
PGD=$(provision pgdown 57d)
"$SIM" run --dir "$T_DIR/pgdown" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	--system-version 1000 --app-requires 1512 --no-reconnect \
	<"$T_DIR/ctl" >"$T_DIR/pgdown.out" 2>"$T_DIR/pgdown.err" &
T_PIDS+=("$!")
exec 3>"$T_DIR/ctl"
# --no-reconnect: after its first part the device resets and stays off.
wait_for grep -q "^ota $PGD installed s/1 1512" "$T_DIR/pgdown.out" ||
	fail "pgdown: first part not installed: $(cat "$T_DIR/pgdown.out")"
wait_for grep -q "^closed $PGD reset" "$T_DIR/pgdown.out" || fail "pgdown: no reset"
pgcluster_stop "$pgdir" || fail "could not stop PostgreSQL"
ping_down() { http GET /v1/ping; [ "$HTTP_STATUS" = 503 ]; }
WAIT_S=30 wait_for ping_down || fail "health never reported the outage"
echo "start $PGD" >&3
back_pgd() { [ "$(grep -c "^ready $PGD" "$T_DIR/pgdown.out")" -ge 2 ]; }
WAIT_S=30 wait_for back_pgd ||
	fail "pgdown: no reconnect during the outage: $(cat "$T_DIR/pgdown.out")"
WAIT_S=30 wait_for log_has "device $PGD: heal: \(image .* not read\|catalogue not loaded\)" ||
	fail "pgdown: the heal did not meet the outage"
! grep -q "^ota $PGD installed s/2" "$T_DIR/pgdown.out" || fail "pgdown: healed without the database"
pgcluster_start "$pgdir" || fail "could not restart PostgreSQL"
WAIT_S=30 wait_for grep -q "^ota $PGD installed s/2 1512" "$T_DIR/pgdown.out" ||
	fail "pgdown: not healed after the restart: $(cat "$T_DIR/pgdown.out")"
# It resets once more and, started again, reports the healed modules.
reset2() { [ "$(grep -c "^closed $PGD reset" "$T_DIR/pgdown.out")" -ge 2 ]; }
wait_for reset2 || fail "pgdown: no reset after the second part"
echo "start $PGD" >&3
healed_pgd() { [ "$(history "$PGD")" = "healed " ]; }
WAIT_S=30 wait_for healed_pgd || fail "pgdown: history: $(history "$PGD")"
[ "$(sql "SELECT (detail->>'before') || ' / ' || (detail->>'after') FROM healer_history WHERE device_id = '$PGD'")" = "b0:501 s1:1000 s2:1000 s3:1000 / b0:501 s1:1512 s2:1512 s3:1000" ] ||
	fail "pgdown: history: $(sql "SELECT detail FROM healer_history WHERE device_id = '$PGD'")"
exec 3>&-
note "the heal survives a PostgreSQL restart"

# --- one drop: retried when the device is back, then healed ----------
# once NAME PREFIX [sim flags]: one device that drops during its first
# transfer; both Hello generations.
once() {
	local n=$1 id
	id=$(provision "$1" "$2")
	shift 2
	sim_run "$n" "$T_DIR/$n" --app testapp --system-version 1000 \
		--app-requires 1512 --ota-drop-after 4 "$@"
	wait_for grep -q "^drop $id ota" "$T_DIR/$n.out" || fail "$n: no drop: $(cat "$T_DIR/$n.out")"
	wait_for grep -q "^ota $id installed s/2 1512" "$T_DIR/$n.out" ||
		fail "$n: not healed after the drop: $(cat "$T_DIR/$n.out")"
	[ "$(grep "^ota $id installed" "$T_DIR/$n.out" | cut -d' ' -f4 | tr '\n' ' ')" = "s/1 s/2 " ] ||
		fail "$n: order: $(grep "^ota" "$T_DIR/$n.out")"
	[ "$(sim_count "$n" drop)" = 1 ] || fail "$n: dropped more than once"
	# Three transfers: s/1 cut, s/1 again, s/2.
	[ "$(grep -c "^ota $id begin" "$T_DIR/$n.out")" = 3 ] ||
		fail "$n: transfers: $(grep "^ota" "$T_DIR/$n.out")"
	grep -q "^ota $id rejected disconnected" "$T_DIR/$n.out" ||
		fail "$n: the partial image was not dropped"
	log_has "device $id: heal: transfer cut by a disconnect, try 2 of 3" ||
		fail "$n: the cut was not logged"
	healed_once() { [ "$(history "$id")" = "healed " ]; }
	wait_for healed_once || fail "$n: history: $(history "$id")"
	[ "$(sql "SELECT jsonb_array_length(detail->'parts') FROM healer_history WHERE device_id = '$id'")" = 2 ] ||
		fail "$n: parts: $(sql "SELECT detail FROM healer_history WHERE device_id = '$id'")"
}
once once 57a
once once3 57e --devos3
note "a drop mid-transfer is retried on reconnect and the heal completes (both Hello generations)"

# --- drops every time: healer_retries transfers, then it stops -------
ALWAYS=$(provision always 57b)
sim_run always "$T_DIR/always" --app testapp --system-version 1000 \
	--app-requires 1512 --ota-drop-after 4:1000
failed_always() { [ "$(history "$ALWAYS")" = "failed " ]; }
wait_for failed_always || fail "always: no failed row: $(history "$ALWAYS"): $(grep "$ALWAYS" "$T_DIR/cinderd.log" | tail -5)"
# Its reconnect after the last cut is planned, and nothing is sent.
wait_for log_has "device $ALWAYS: heal: not sending system_part 1 version 1512 again" ||
	fail "always: the reconnect after the last try was not planned"
[ "$(grep -c "^ota $ALWAYS begin" "$T_DIR/always.out")" = 3 ] ||
	fail "always: transfers: $(grep "^ota\|^drop" "$T_DIR/always.out")"
[ "$(sim_count always drop)" = 3 ] || fail "always: drops: $(sim_count always drop)"
sql "SELECT detail->>'reason' FROM healer_history WHERE device_id = '$ALWAYS'" |
	grep -q "failed 3 times: disconnected" || fail "always: reason: $(sql "SELECT detail FROM healer_history WHERE device_id = '$ALWAYS'")"
# A later Describe (the device's safe-mode report asks for one) re-plans
# the stuck heal quietly, which shows "healing" until it gives up again.
stuck_now() {
	http GET "/v1/devices/$ALWAYS/healer" "${A[@]}"
	[ "$HTTP_STATUS" = 200 ] && [ "$(field '["current"]["state"]')" = stuck ]
}
wait_for stuck_now || fail "always: current: $HTTP_BODY"
[ "$(field '["history"][0]["outcome"]')" = failed ] || fail "always: history: $HTTP_BODY"
kill "$SIM_PID_always"
note "a device that always drops gets healer_retries transfers, then none"

# --- a user flash cut mid-transfer ----------------------------------
USER=$(provision user 57c)
sim_run user "$T_DIR/user" --app testapp --ota-drop-after 4
wait_for grep -q "^ready $USER" "$T_DIR/user.out" || fail "user: not ready"
app_version() { sql "SELECT (m->>'v')::int FROM devices, jsonb_array_elements(last_describe->'m') m WHERE device_id = '$USER' AND m->>'f' = 'u'"; }
described() { [ -n "$(app_version)" ]; }
wait_for described || fail "user: no describe"
OLDV=$(app_version)
mk -o "$T_DIR/app.bin" --platform 3 --function user_part --index 1 \
	--version 9 --dep system_part:2:1512 --size 16384 --seed 23
: >"$T_DIR/user-flash.mark"
http PUT "/v1/devices/$USER" "${A[@]}" -F "file=@$T_DIR/app.bin;filename=app.bin"
expect 200 "user flash"
wait_for grep -q "^drop $USER ota" "$T_DIR/user.out" || fail "user: no drop: $(cat "$T_DIR/user.out")"
flash_status() { grep -A1 "^event: spark/flash/status" "$T_DIR/sse.out" | grep '^data:'; }
flash_failed() { flash_status | grep "$USER" | grep -q '"data":"failed"'; }
wait_for flash_failed || fail "user: no spark/flash/status failed: $(flash_status)"
flash_status | grep "$USER" | grep -q '"data":"started"' ||
	fail "user: no started before failed"
back() { [ "$(grep -c "^ready $USER" "$T_DIR/user.out")" -ge 2 ]; }
wait_for back || fail "user: did not reconnect: $(cat "$T_DIR/user.out")"
wait_for grep -q "^ota $USER rejected disconnected" "$T_DIR/user.out" ||
	fail "user: the partial image was kept"
! grep -q "^ota $USER installed" "$T_DIR/user.out" || fail "user: the cut image was installed"
# A Describe answered in the new session carries the old app.
redescribed() { awk '/^ready /{r++} r >= 2 && /^describe /{f=1} END{exit !f}' "$T_DIR/user.out"; }
wait_for redescribed || fail "user: no Describe after the reconnect"
same_app() { [ "$(app_version)" = "$OLDV" ]; }
wait_for same_app || fail "user: app version $(app_version), was $OLDV"
# The old app still answers.
http POST "/v1/devices/$USER/setcounter" "${A[@]}" -d arg=41
expect 200 "user: call after the cut"
[ "$(field '["return_value"]')" = 41 ] || fail "user: call: $HTTP_BODY"
! flash_status | grep "$USER" | grep -q '"data":"success"' ||
	fail "user: a success was published"
note "a cut user flash says failed and the old app keeps running"

stop_cinderd
