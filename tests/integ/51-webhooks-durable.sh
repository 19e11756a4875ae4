#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Durable webhook delivery: the receiver is down while events arrive,
# cinderd restarts, PostgreSQL restarts (events published during its
# outage are queued by the store), and once the receiver is up it gets
# every accepted delivery; the queue is then empty. Also: a full queue
# refuses and counts events (never silently), and a host that keeps
# failing is skipped with a hook-error saying so.
# Uses a private cluster (it stops PostgreSQL), not the shared harness one.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webhook_lib.sh"
integ_init

private_pg durable
cat >>"$T_DIR/cinder.conf" <<CONF
webhook_allow_nets 127.0.0.1/32
webhook_retry 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2
webhook_host_errors 0
webhook_queue_max 20
CONF
webhooks_up
user_token alice
TA=$TOKEN

# A port with nobody listening (the sink comes up on it later).
sink_start probe
PORT=$SINK_probe
kill "$SINKPID_probe"
wait "$SINKPID_probe" 2>/dev/null

hook "$TA" "{\"event\":\"d/\",\"url\":\"http://127.0.0.1:$PORT/d\",\"json\":{\"v\":\"{{{PARTICLE_EVENT_VALUE}}}\"}}"
H=$HOOK_ID
for i in 1 2 3 4 5; do publish "$TA" d/x "before-$i"; done
tries() { [ "$(sql "SELECT count(*) FROM webhook_deliveries WHERE attempts >= 1 AND state = 'pending'")" = 5 ]; }
wait_for tries || fail "failed deliveries not rescheduled: $(sql "SELECT state, attempts, last_error FROM webhook_deliveries")"
sql "SELECT last_error FROM webhook_deliveries LIMIT 1" | grep -qi "connect" || fail "no connection error recorded"

# cinderd restarts with the receiver still down.
stop_cinderd
start_cinderd
for i in 1 2 3; do publish "$TA" d/x "restart-$i"; done

# PostgreSQL restarts: events published during the outage are kept.
pgcluster_stop "$pgdir" || fail "could not stop PostgreSQL"
ping_down() { http GET /v1/ping; [ "$HTTP_STATUS" = 503 ]; }
WAIT_S=30 wait_for ping_down || fail "outage not noticed"
for i in 1 2; do publish "$TA" d/x "outage-$i"; done
pgcluster_start "$pgdir" || fail "could not restart PostgreSQL"
ping_up() { http GET /v1/ping; [ "$HTTP_STATUS" = 200 ]; }
WAIT_S=30 wait_for ping_up || fail "cinderd did not recover"

# The receiver comes up: every accepted delivery arrives.
sink_start back --port "$PORT"
# One python3 run a poll: ten of them took 5-10 s a poll on a loaded box.
all_there() {
	[ "$(sink_values back "json.loads(r['body'])['v']")" = \
		"before-1 before-2 before-3 before-4 before-5 outage-1 outage-2 restart-1 restart-2 restart-3" ]
}
WAIT_S=90 wait_for all_there || fail "not every delivery arrived: $(cat "$T_DIR/sink-back.log")"
WAIT_S=20 wait_for out_is 0 sql "SELECT count(*) FROM webhook_deliveries" ||
	fail "rows left: $(sql "SELECT state, attempts, last_error FROM webhook_deliveries")"
note "$(sink_count back True) requests for 10 events (at least once)"

# A bounded queue: with the receiver down again, the 21st unfinished
# delivery is refused and counted, and a hook-error says so.
kill "$SINKPID_back"
wait "$SINKPID_back" 2>/dev/null
curl -sN -H "Authorization: Bearer $TA" "$API/v1/devices/events/hook-error" >"$T_DIR/sse-err" 2>/dev/null &
T_PIDS+=("$!")
wait_for grep -q '^:ok$' "$T_DIR/sse-err" || fail "stream did not start"
for i in $(seq 1 25); do publish "$TA" d/q "q-$i"; done
wait_for out_is 5 counter "$TA" "$H" overflow || fail "overflow counter: $(counter "$TA" "$H" overflow)"
wait_for grep -q 'queue full' "$T_DIR/sse-err" || fail "no hook-error for the full queue"
[ "$(sql "SELECT count(*) FROM webhook_deliveries")" = 20 ] || fail "queue is not 20 rows"
stop_cinderd
echo "PASS: $T_NAME"
