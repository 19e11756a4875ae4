#!/bin/bash
# SPDX-License-Identifier: MIT
# A function call made right after a device connects, before the describe
# that lists its functions is kept, must not leave a cached device row
# that answers 404 once the describe is there (devrow.c's row cache
# keys rows on the describe the connection holds). cinder-sim's testapp
# with --startup devos registers its functions after the connection is
# up, so its first describe lists none; calls run without pause from
# before the device connects, two connections in turn. And a row read while PostgreSQL lags the
# describe the connection holds (its columns emptied here) must not
# answer from the lagging lists.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
[ -x "$SIM" ] || fail "no $SIM"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
start_cinderd
login alice@example.com alicepass123
sim_provision "$T_DIR/d" 1 --register --owner alice@example.com --prefix 6c --app testapp
D=$(head -1 "$T_DIR/d/devices.txt")

# hammer FILE: call echo until FILE.stop exists, one status per line
hammer() {
	until [ -e "$1.stop" ]; do
		curl -sS -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
			-d arg=abc "$API/v1/devices/$D/echo" >>"$1" || true
	done
}
has_echo() { [ "$(sql "SELECT count(*) FROM devices WHERE device_id = '$D' AND functions ? 'echo'")" = 1 ]; }
# the call that follows the device being heard answers from the device
called() {
	http POST "/v1/devices/$D/echo" -H "Authorization: Bearer $TOKEN" -d arg=abcd
	[ "$HTTP_STATUS" != 404 ] || [ "$(json_get "$HTTP_BODY" '["error"]')" = "Device is not connected" ]
}

offline() { [ "$(health online)" = 0 ]; }

for round in 1 2; do
	rm -f "$T_DIR/h$round.stop"
	hammer "$T_DIR/h$round" &
	hpid=$!
	sql "UPDATE devices SET functions = NULL, variables = NULL, last_describe = NULL, describe_key = NULL WHERE device_id = '$D'" >/dev/null
	sim_run "r$round" "$T_DIR/d" --app testapp --startup devos --no-reconnect
	wait_for sim_has_at_least "r$round" ready 1 || fail "round $round: device not ready"
	wait_for has_echo || fail "round $round: describe not stored"
	touch "$T_DIR/h$round.stop"
	wait "$hpid"
	wait_for called || fail "round $round: not connected"
	[ "$HTTP_STATUS" = 200 ] || fail "round $round: call after the describe: $HTTP_STATUS $HTTP_BODY"
	[ "$(json_get "$HTTP_BODY" '["return_value"]')" = 4 ] || fail "round $round: $HTTP_BODY"
	note "round $round: $(sort "$T_DIR/h$round" | uniq -c | tr '\n' ' ')"

	# a rename empties the cache; the row then read lists nothing, and
	# the unknown name spends the connection's describe refresh
	http PUT "/v1/devices/$D" -H "Authorization: Bearer $TOKEN" -d name="dev$round"
	[ "$HTTP_STATUS" = 200 ] || fail "round $round: rename: $HTTP_BODY"
	sql "UPDATE devices SET functions = NULL, variables = NULL, last_describe = NULL, describe_key = NULL WHERE device_id = '$D'" >/dev/null
	http POST "/v1/devices/$D/nosuchfn" -H "Authorization: Bearer $TOKEN" -d arg=x
	[ "$HTTP_STATUS" = 404 ] || fail "round $round: nosuchfn: $HTTP_STATUS $HTTP_BODY"
	http POST "/v1/devices/$D/echo" -H "Authorization: Bearer $TOKEN" -d arg=abcde
	[ "$HTTP_STATUS" = 200 ] || fail "round $round: call with PostgreSQL behind: $HTTP_STATUS $HTTP_BODY"
	[ "$(json_get "$HTTP_BODY" '["return_value"]')" = 5 ] || fail "round $round: $HTTP_BODY"
	pid_var=SIM_PID_r$round
	kill "${!pid_var}"
	wait "${!pid_var}" 2>/dev/null
	wait_for offline || fail "round $round: device did not leave"
done
kill -0 "$CINDERD_PID" || fail "cinderd died"
stop_cinderd
