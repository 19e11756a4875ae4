#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fan-out: 200 simulated devices of one user subscribe (MY_DEVICES) and
# 50 SSE streams are open; one API publish reaches every device and every
# stream, and the streams all carry the same frame bytes.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
sed -i 's/^log_level .*/log_level debug/' "$T_DIR/cinder.conf"
start_cinderd

http GET /v1/events/x
[ "$HTTP_STATUS" = 404 ] && { echo "SKIP: event routes not wired into cinderd" >&2; exit 77; }

N=200
S=50
add_user erin@example.com erinpass123
login erin@example.com erinpass123
TOK=$TOKEN

sim_provision "$T_DIR/d" $N --register --owner erin@example.com
mkfifo "$T_DIR/d.ctl"
exec {CTL}<>"$T_DIR/d.ctl"
"$SIM" run --dir "$T_DIR/d" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	<"$T_DIR/d.ctl" >"$T_DIR/d.out" 2>"$T_DIR/d.err" &
T_PIDS+=("$!")
WAIT_S=60 wait_for sim_has_at_least d ready $N || fail "devices not ready: $(sim_count d ready) of $N"
printf 'subscribe all fan/ mine\n' >&"$CTL"
subs_done() { [ "$(grep -c 'subscribed to "fan/"' "$T_DIR/cinderd.log")" -ge $N ]; }
for i in $(seq 1 $S); do
	curl -sN "$API/v1/devices/events/fan?access_token=$TOK" >"$T_DIR/sse-$i" 2>/dev/null &
	T_PIDS+=("$!")
done
streams_ready() { [ "$(grep -l '^:ok' "$T_DIR"/sse-* | wc -l)" -ge $S ]; }
wait_for streams_ready || fail "streams did not start"

WAIT_S=30 wait_for subs_done || fail "subscriptions not all seen"
got() { grep "^event [0-9a-f]* fan/x hello" "$T_DIR/d.out" | awk '{print $2}' | sort -u | wc -l; }
http POST /v1/devices/events -H "Authorization: Bearer $TOK" -d name=fan/x -d data=hello
[ "$HTTP_STATUS" = 200 ] || fail "publish: $HTTP_BODY"
all_streams() { [ "$(grep -l '^event: fan/x$' "$T_DIR"/sse-* | wc -l)" -ge $S ]; }
wait_for all_streams || fail "not every stream got the event"
[ "$(for f in "$T_DIR"/sse-*; do grep -A1 '^event: fan/x$' "$f"; done | sort -u | wc -l)" = 2 ] ||
	fail "streams carry different frames"
all_devices() { [ "$(got)" -ge $N ]; }
WAIT_S=30 wait_for all_devices || fail "only $(got) of $N devices received the event"
[ "$(grep -c "^event [0-9a-f]* fan/x hello" "$T_DIR/d.out")" = $N ] || fail "a device received the event twice"
kill -0 "$CINDERD_PID" || fail "cinderd died"
stop_cinderd
note "fan-out to $N devices and $S streams ok"
