#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Webhook row writes under a full database queue (db_queue_max at its
# minimum): a burst of events to a hook that succeeds and to one that
# keeps failing (retried, then given up). No event is refused, no
# delivery result is lost: every event reaches the good sink once, every
# row ends (deleted, or marked failed), and the "queue was full" log line
# is rate-limited.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webhook_lib.sh"
integ_init
N=400
cat >>"$T_DIR/cinder.conf" <<CONF
db_queue_max 16
CONF
bulk_webhook_conf
webhooks_up
user_token alice
TA=$TOKEN
sink_start s
hook "$TA" "{\"event\":\"b/\",\"url\":\"http://127.0.0.1:$SINK_s/ok\"}"
HOK=$HOOK_ID
hook "$TA" "{\"event\":\"b/\",\"url\":\"http://127.0.0.1:$SINK_s/status500/x\"}"
HBAD=$HOOK_ID

publish_burst "$TA" b/x $N || fail "publish burst"

ok_all() { [ "$(sink_count s "r['path'] == '/ok'")" -ge $N ]; }
WAIT_S=120 wait_for ok_all || fail "only $(sink_count s "r['path'] == '/ok'") of $N delivered"
rows_done() {
	[ "$(sql "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '$HOK'")" = 0 ] &&
		[ "$(sql "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '$HBAD' AND state = 'failed'")" = $N ] &&
		[ "$(sql "SELECT count(*) FROM webhook_deliveries WHERE state <> 'failed'")" = 0 ]
}
WAIT_S=120 wait_for rows_done || fail "rows not finished: $(sql "SELECT webhook_id, state, attempts, count(*) FROM webhook_deliveries GROUP BY 1, 2, 3")"
[ "$(sink_count s "r['path'] == '/ok'")" = $N ] || fail "duplicate deliveries: $(sink_count s "r['path'] == '/ok'")"
[ "$(sink_count s "r['path'] == '/status500/x'")" = $((2 * N)) ] || fail "failing hook: $(sink_count s "r['path'] == '/status500/x'") requests, want $((2 * N))"
[ "$(counter "$TA" "$HOK" overflow)" = 0 ] || fail "events refused: $HTTP_BODY"
[ "$(counter "$TA" "$HBAD" given_up)" = $N ] || fail "given up: $HTTP_BODY"
# Both hooks' queues are empty again: new events are accepted and sent.
publish "$TA" b/y after
wait_for sink_has s "r['path'] == '/ok' and 'after' in r['body']" || fail "hook stuck after the burst"
# Data with array-literal syntax survives the batched INSERT verbatim.
hook "$TA" "{\"event\":\"q/\",\"url\":\"http://127.0.0.1:$SINK_s/q\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
DATA='a"b\c,{NULL},'"'"'x'"'"' é'
HEX=$(printf '%s' "$DATA" | od -An -tx1 | tr -d ' \n')
publish "$TA" q/1 "$DATA"
publish "$TA" q/2 NULL
wait_for sink_has s "r['path'] == '/q' and r['body'] == 'NULL'" || fail "NULL data"
wait_for sink_has s "r['path'] == '/q' and r['body'].encode().hex() == '$HEX'" ||
	fail "data changed: $(sink_get s "r['path'] == '/q'" "r['body']")"
# A row PostgreSQL refuses (invalid UTF-8) fails alone, not its batch.
pids=()
for i in 1 2 3 4 5 6; do
	http POST /v1/devices/events -H "Authorization: Bearer $TA" \
		-d "name=q/bad" -d "data=%FF%FE$i" -d private=true &
	pids+=("$!")
	http POST /v1/devices/events -H "Authorization: Bearer $TA" \
		-d "name=q/good" -d "data=good-$i" -d private=true &
	pids+=("$!")
done
wait "${pids[@]}"
good_all() { [ "$(sink_count s "r['path'] == '/q' and r['body'].startswith('good-')")" = 6 ]; }
wait_for good_all || fail "good events lost with a bad one: $(sink_count s "r['path'] == '/q' and r['body'].startswith('good-')")"
lines=$(grep -c "could not queue\|database queue was full" "$T_DIR/cinderd.log" || true)
[ "$lines" -le 20 ] || fail "$lines queue-full log lines (not rate-limited)"
note "queue-full log lines: $lines"
