#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Webhook connections kept alive between requests (their watchers stay
# on the loop while idle): a burst to two hooks is delivered exactly
# once each and every row removed; a receiver that closes each idle
# connection, and one that is restarted while its connections are idle,
# still get every later event exactly once.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webhook_lib.sh"
integ_init
N=300
bulk_webhook_conf
webhooks_up
user_token alice
TA=$TOKEN
sink_start s
hook "$TA" "{\"event\":\"k/\",\"url\":\"http://127.0.0.1:$SINK_s/keep\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
HK=$HOOK_ID
hook "$TA" "{\"event\":\"k/\",\"url\":\"http://127.0.0.1:$SINK_s/drop/x\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
HD=$HOOK_ID
rows_gone() { [ "$(sql "SELECT count(*) FROM webhook_deliveries")" = 0 ]; }

# --- a burst: many requests on few connections ---
publish_burst "$TA" k/burst $N || fail "publish burst"
both_all() {
	[ "$(sink_count s "r['path'] == '/keep'")" -ge $N ] &&
		[ "$(sink_count s "r['path'] == '/drop/x'")" -ge $N ]
}
WAIT_S=120 wait_for both_all || fail "burst: $(sink_count s "r['path'] == '/keep'") and $(sink_count s "r['path'] == '/drop/x'") of $N delivered"
WAIT_S=60 wait_for rows_gone || fail "rows left: $(sql "SELECT state, count(*) FROM webhook_deliveries GROUP BY 1")"
WAIT_S=30 wait_for counter_at_least "$TA" "$HK" ok $N || fail "ok counter: $(counter "$TA" "$HK" ok)"
WAIT_S=30 wait_for counter_at_least "$TA" "$HD" ok $N || fail "ok counter: $(counter "$TA" "$HD" ok)"
# single events delivered more than once
dups() {
	python3 -c '
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["body"].startswith(("one-", "again-")):
        c[(r["path"], r["body"])] += 1
print(sum(1 for v in c.values() if v > 1))' "$T_DIR/sink-s.log"
}
[ "$(sink_count s "r['path'] == '/keep'")" = $N ] || fail "keep: $(sink_count s "r['path'] == '/keep'") requests"
[ "$(sink_count s "r['path'] == '/drop/x'")" = $N ] || fail "drop: $(sink_count s "r['path'] == '/drop/x'") requests"

# --- one event at a time: the receiver closes each idle connection ---
for i in 1 2 3 4 5; do
	publish "$TA" k/one "one-$i"
	wait_for sink_has s "r['path'] == '/drop/x' and r['body'] == 'one-$i'" || fail "event $i not delivered after an idle close"
	wait_for sink_has s "r['path'] == '/keep' and r['body'] == 'one-$i'" || fail "event $i not delivered on the kept connection"
done
WAIT_S=60 wait_for rows_gone || fail "rows left after single events"
[ "$(dups)" = 0 ] || fail "$(dups) events delivered more than once"

# --- the receiver restarts while cinderd's connections to it are idle ---
kill "$SINKPID_s"
wait "$SINKPID_s" 2>/dev/null
sink_start s --port "$SINK_s"
for i in 1 2 3; do
	publish "$TA" k/again "again-$i"
done
again_all() {
	[ "$(sink_count s "r['body'].startswith('again-')")" -ge 6 ]
}
WAIT_S=60 wait_for again_all || fail "after the restart: $(sink_count s "r['body'].startswith('again-')") of 6 requests"
WAIT_S=60 wait_for rows_gone || fail "rows left after the restart: $(sql "SELECT state, attempts, count(*) FROM webhook_deliveries GROUP BY 1, 2")"
[ "$(dups)" = 0 ] || fail "$(dups) events delivered more than once after the restart"
note "burst of $N to two hooks, idle closes and a receiver restart: every event once"
