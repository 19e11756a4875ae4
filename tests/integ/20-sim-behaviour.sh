#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cinder-sim behaviours and control: a device that sends a garbage frame
# after ready is dropped by cinderd (and, with --no-reconnect, stays
# away); stdin commands publish, subscribe (the device receives its own
# event back through cinderd) and stop a device, which goes offline;
# --publish sends a periodic event.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
cinderd_cmd migrate >/dev/null || fail "migrate"
add_user carol pw-for-carol-123
start_cinderd
"$SIM" provision --count 1 --dir "$T_DIR/bad" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner carol --prefix 7a >/dev/null || fail "provision bad"
"$SIM" provision --count 2 --dir "$T_DIR/ok" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner carol --prefix 7b --app testapp >/dev/null || fail "provision ok"
bad=$(head -1 "$T_DIR/bad/devices.txt")
ok1=$(sed -n 1p "$T_DIR/ok/devices.txt")
ok2=$(sed -n 2p "$T_DIR/ok/devices.txt")

"$SIM" run --dir "$T_DIR/bad" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --behaviour garbage --no-reconnect \
	</dev/null >"$T_DIR/bad.out" 2>"$T_DIR/bad.err" &
BAD_PID=$!
T_PIDS+=("$BAD_PID")
dropped() { grep -q "^closed $bad " "$T_DIR/bad.out"; }
wait_for dropped || fail "garbage device not dropped: $(cat "$T_DIR/bad.out")"
grep -q "^ready $bad\$" "$T_DIR/bad.out" || fail "garbage device never ready"
offline_bad() { [ "$(sql "SELECT online FROM devices WHERE device_id = '$bad'")" = f ]; }
wait_for offline_bad || fail "garbage device still online"
[ "$(grep -c "^ready $bad" "$T_DIR/bad.out")" = 1 ] || fail "reconnected despite --no-reconnect"
kill -0 "$BAD_PID" || fail "simulator exited with a device stopped (stdin at EOF)"

mkfifo "$T_DIR/ctl"
"$SIM" run --dir "$T_DIR/ok" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --publish tick/n:1500:private \
	<"$T_DIR/ctl" >"$T_DIR/ok.out" 2>"$T_DIR/ok.err" &
OK_PID=$!
T_PIDS+=("$OK_PID")
exec 3>"$T_DIR/ctl"
ready2() { [ "$(grep -c '^ready ' "$T_DIR/ok.out")" -ge 2 ]; }
wait_for ready2 || fail "devices not ready"

# ok2 subscribes to "sim/" from its owner's devices; ok1 publishes.
echo "subscribe $ok2 sim/ mine" >&3
echo "publish $ok1 sim/hello world private" >&3
got() { grep -q "^event $ok2 sim/hello world\$" "$T_DIR/ok.out"; }
# the subscription may race the publish: publish again until it arrives
for _ in 1 2 3 4 5; do
	WAIT_S=2 wait_for got && break
	echo "publish $ok1 sim/hello world private" >&3
done
got || fail "event not delivered: $(cat "$T_DIR/ok.out")"
# testapp answers vdev/mine with vdev/reply (and ok1 hears vdev/mine too)
echo "subscribe $ok1 vdev/reply mine" >&3
echo "publish $ok2 vdev/mine ping private" >&3
replied() { grep -q "^event $ok1 vdev/reply got vdev/mine=ping\$" "$T_DIR/ok.out"; }
for _ in 1 2 3 4 5; do
	WAIT_S=2 wait_for replied && break
	echo "publish $ok2 vdev/mine ping private" >&3
done
replied || fail "no vdev/reply: $(cat "$T_DIR/ok.out")"

# --publish: every device publishes tick/n with a counter every 1.5 s (well
# inside the device-side limit of 4 a second, which the test needs too)
echo "subscribe $ok2 tick/ mine" >&3
ticked() { grep -q "^event $ok2 tick/n [0-9][0-9]*\$" "$T_DIR/ok.out"; }
wait_for ticked || fail "no periodic event: $(tail -5 "$T_DIR/ok.out")"

echo "stop $ok1" >&3
stopped() { grep -q "^closed $ok1 stopped\$" "$T_DIR/ok.out"; }
wait_for stopped || fail "no closed line for stop"
off1() { [ "$(sql "SELECT online FROM devices WHERE device_id = '$ok1'")" = f ]; }
wait_for off1 || fail "stopped device still online"
[ "$(sql "SELECT online FROM devices WHERE device_id = '$ok2'")" = t ] || fail "the other device went offline"

echo quit >&3
wait "$OK_PID" || fail "quit: non-zero exit"
kill -TERM "$BAD_PID"
wait "$BAD_PID" || fail "SIGTERM: non-zero exit"
note "sim behaviour ok"
