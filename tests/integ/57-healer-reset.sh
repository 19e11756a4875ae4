#!/bin/bash
# SPDX-License-Identifier: MIT
# The safe-mode healer when the device resets just as a transfer starts
# (docs/healer.md, Faults): the device answers a Describe and resets its
# connection at once (cinder-sim describe-reset: SO_LINGER 0, an RST),
# and cinderd, reading that Describe, starts the heal's transfer in the
# same turn of its loop, before it reads the reset. The first write to
# the socket fails inside the call that starts the transfer, whose final
# report ("disconnected") thus comes before that call returns. The heal
# must count it as one cut try and go on from the device's next
# Describe; before 65c4dc5 it stayed busy, with nothing out, for good.
# (keepalive_timeout 600: the held devices send no pings, and a slow
# run under ASan must not lose them to the 45 s default.)
#
# Deterministic, without timing luck:
# - the send needs no database: the catalogue is cached (loaded for the
#   device's first plan) and system part 1 is in memory, held by a user
#   flash to another device that is frozen (cinder-sim hold) and never
#   answers its UpdateBegin;
# - the device's heal is refused first (--updates-disabled): it waits,
#   stuck, for news, and a Describe 3 s later (healer_backoff) sends
#   part 1 again from the kick that follows the Describe;
# - the device is frozen and asked for a Describe (a call of a function
#   it lacks); with the request in its socket cinderd is stopped
#   (SIGSTOP), the device answers and resets (describe-reset, go), and
#   cinderd, continued, reads the answer (the RST waits behind it) and
#   sends in the same turn;
# - cinderd's log proves the path: the flash's "failed: disconnected"
#   comes before registry_flash()'s "flash N: ... bytes" line, written
#   once the start returned.
# Then the device, back at once, gets part 1 again (refused again), and
# once updates are forced it heals.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
. "$(dirname "$0")/healer_lib.sh"
# A refused heal is tried again on a Describe at least 3 s later: not on
# the device's Describes at connect (within 1 s of the refusal), but on
# the one this test asks for (5 s after the healer asked its own).
cat >>"$T_DIR/cinder.conf" <<CONF
healer_retries 3
healer_backoff 3
keepalive_timeout 600
CONF

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
make_parts 41
import_parts 1.5.2
start_cinderd
login alice@example.com alicepass123
ALICE=$TOKEN
A=(-H "Authorization: Bearer $ALICE")

# ctl_sim NAME [sim flags]: run the device of $T_DIR/NAME, its control
# commands read from the FIFO $T_DIR/NAME.ctl (the caller opens it).
ctl_sim() {
	local name=$1
	shift
	mkfifo "$T_DIR/$name.ctl"
	"$SIM" run --dir "$T_DIR/$name" --server "127.0.0.1:$DEV_PORT" \
		--server-key "$T_DIR/server_key.pub.der" --app testapp "$@" \
		<"$T_DIR/$name.ctl" >"$T_DIR/$name.out" 2>"$T_DIR/$name.err" &
	T_PIDS+=("$!")
}

# --- a transfer of system part 1 that stays out -------------------------
# The cache holds an image while a transfer holds it: a user flash of
# part 1 to a held device, which never answers its UpdateBegin (the
# transfer lasts until cinderd gives up: four UpdateBegins 6 s apart,
# then 30 s), keeps part 1 in memory for the heal below. The device is
# held now; it is flashed just before the heal's send.
K=$(provision keep 57b)
ctl_sim keep
exec 4>"$T_DIR/keep.ctl"
# Its two Describes at connect (the session's, then the session's after
# the start-up burst) answered: nothing else is asked of it.
wait_for grep -q "^describe $K 2$" "$T_DIR/keep.out" || fail "keep: describes: $(cat "$T_DIR/keep.out")"
echo "hold $K" >&4
wait_for grep -q "^held $K" "$T_DIR/keep.out" || fail "keep: not held"

# --- the device to reset: refused first, then stuck ----------------------
R=$(provision rst 57f)
ctl_sim rst --system-version 1000 --app-requires 1512 --updates-disabled
exec 3>"$T_DIR/rst.ctl"
wait_for grep -q "^ota $R rejected disabled" "$T_DIR/rst.out" ||
	fail "rst: not refused: $(cat "$T_DIR/rst.out")"
# Its Describes at connect (the session's, the healer's on the safe-mode
# report, the session's after the start-up burst) are over: from now on
# it is asked only by this test.
wait_for grep -q "^describe $R 3$" "$T_DIR/rst.out" ||
	fail "rst: describes: $(cat "$T_DIR/rst.out")"
stuck() { [ "$(sql "SELECT event FROM healer_history WHERE device_id = '$R'")" = stuck ]; }
wait_for stuck || fail "rst: refusal not recorded"

# The user flash starts only now, so that the transfer (its UpdateBegin
# tries and the wait after them, 48 s) is still out when the heal sends.
http PUT "/v1/devices/$K" "${A[@]}" -F "file=@$T_DIR/s1.bin;filename=s1.bin"
expect 200 "keep: flash"
wait_for grep -q "^input $K" "$T_DIR/keep.out" || fail "keep: no UpdateBegin"

# --- a Describe, then an RST, both read in one turn ------------------
echo "hold $R" >&3
wait_for grep -q "^held $R" "$T_DIR/rst.out" || fail "rst: not held"
# ask: a call of a function the device lacks makes cinderd ask it for a
# Describe first, unless it asked one in the last 5 s (its refreshes
# are that far apart): then the call is a 404 at once and is repeated.
CALL_PID=
ask() {
	if [ -z "$CALL_PID" ] || ! kill -0 "$CALL_PID" 2>/dev/null; then
		curl -sS -o "$T_DIR/call.out" -w '%{http_code}' "${A[@]}" \
			-d arg=x "$API/v1/devices/$R/nosuchfunction" \
			>"$T_DIR/call.status" 2>&1 &
		CALL_PID=$!
		T_PIDS+=("$CALL_PID")
	fi
	grep -q "^input $R" "$T_DIR/rst.out"
}
wait_for ask || fail "rst: no Describe asked"
kill -STOP "$CINDERD_PID" || fail "cannot stop cinderd"
printf 'describe-reset %s\ngo %s\n' "$R" "$R" >&3
wait_for grep -q "^closed $R" "$T_DIR/rst.out"
rc=$?
kill -CONT "$CINDERD_PID" || fail "cannot continue cinderd"
[ $rc = 0 ] || fail "rst: no reset after the Describe: $(cat "$T_DIR/rst.out")"
wait "$CALL_PID"

# The transfer failed inside its start: its "disconnected" report and the
# heal's count of it are logged before registry_flash()'s own line for
# that flash, which it writes once the start returned.
wait_for log_has "device $R: flash [0-9]*: failed: disconnected" ||
	fail "rst: no transfer cut: $(grep "$R" "$T_DIR/cinderd.log" | tail -15)"
N=$(sed -n "s/.*device $R: flash \([0-9]*\): failed: disconnected.*/\1/p" "$T_DIR/cinderd.log" | head -1)
line_of() { grep -n -- "$1" "$T_DIR/cinderd.log" | head -1 | cut -d: -f1; }
FAILED_AT=$(line_of "device $R: flash $N: failed: disconnected")
STARTED_AT=$(line_of "\[dev $R\] flash $N: [0-9]* bytes")
[ -n "$STARTED_AT" ] && [ "$FAILED_AT" -lt "$STARTED_AT" ] ||
	fail "rst: flash $N did not fail inside its start: $(grep "$R" "$T_DIR/cinderd.log" | tail -15)"
sed -n "$((FAILED_AT - 3)),${FAILED_AT}p" "$T_DIR/cinderd.log" |
	grep -q "\[dev $R\] closing device session: send failed" ||
	fail "rst: not a failed write: $(sed -n "$((FAILED_AT - 3)),${FAILED_AT}p" "$T_DIR/cinderd.log")"
log_has "device $R: heal: transfer cut by a disconnect, try 2 of 3" ||
	fail "rst: the cut was not counted"
note "a write to a reset socket fails inside the start of the transfer"

# The heal is not left waiting for a report that came already: the
# device's next Describe (it reconnects at once) sends the part again,
# refused again, and once updates are forced the device heals.
refused_again() { sed -n "/^drop $R describe/,\$p" "$T_DIR/rst.out" | grep -q "^ota $R rejected disabled"; }
wait_for refused_again ||
	fail "rst: no transfer after the reset (the heal stayed busy): $(grep "$R" "$T_DIR/cinderd.log" | tail -8)"
http PUT "/v1/devices/$R" "${A[@]}" -H 'Content-Type: application/json' \
	-d '{"firmware_updates_forced": true}'
expect 200 "rst: PUT forced"
WAIT_S=40 wait_for grep -q "^ota $R installed s/2 1512" "$T_DIR/rst.out" ||
	fail "rst: not healed: $(grep "$R" "$T_DIR/cinderd.log" | tail -15)"
[ "$(grep "^ota $R installed" "$T_DIR/rst.out" | cut -d' ' -f4 | tr '\n' ' ')" = "s/1 s/2 " ] ||
	fail "rst: order: $(grep "^ota" "$T_DIR/rst.out")"
history() { sql "SELECT event FROM healer_history WHERE device_id = '$R' ORDER BY id" | tr '\n' ' '; }
healed() { [ "$(history)" = "stuck healed " ]; }
wait_for healed || fail "rst: history: $(history)"
note "the heal goes on from the device's next Describe and completes"

exec 3>&- 4>&-
stop_cinderd
