#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Requests in flight are capped per webhook (webhook_max_inflight) and
# per user (webhook_user_inflight). A user's three hooks on one event,
# to a receiver that holds each request: never more than 2 at once on a
# hook or 3 for the user, the caps reached, and every delivery made as
# requests end (the hooks a cap held back are sent to in turn). Another
# user's hook is not held behind the first user's backlog.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webhook_lib.sh"
integ_init
N=40
bulk_webhook_conf
cat >>"$T_DIR/cinder.conf" <<CONF
webhook_max_inflight 2
webhook_user_inflight 3
CONF
webhooks_up
user_token alice
TA=$TOKEN
user_token bob
TB=$TOKEN
sink_start s
for i in 1 2 3; do
	hook "$TA" "{\"event\":\"cap/\",\"url\":\"http://127.0.0.1:$SINK_s/slow/h$i\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
done
hook "$TB" "{\"event\":\"cap/\",\"url\":\"http://127.0.0.1:$SINK_s/bob\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
HB=$HOOK_ID

# alice's burst: 3 x N deliveries, 3 held at a time for 0.15 s (~6 s)
publish_burst "$TA" cap/a $N || fail "publish alice's burst"
# bob's event while alice's backlog is being sent
wait_for sink_has s "r['path'].startswith('/slow/')" || fail "no delivery of alice's started"
publish "$TB" cap/b bob-1
wait_for sink_has s "r['path'] == '/bob' and r['body'] == 'bob-1'" || fail "bob's event not delivered"
alice_then=$(sink_count s "r['path'].startswith('/slow/')")
[ "$alice_then" -lt $((3 * N)) ] || fail "alice's backlog was gone before bob's delivery ($alice_then): the test proves nothing"

all_alice() { [ "$(sink_count s "r['path'].startswith('/slow/')")" -ge $((3 * N)) ]; }
WAIT_S=120 wait_for all_alice || fail "alice: $(sink_count s "r['path'].startswith('/slow/')") of $((3 * N)) delivered"
for i in 1 2 3; do
	got=$(sink_count s "r['path'] == '/slow/h$i'")
	[ "$got" = $N ] || fail "hook $i got $got requests, not $N"
done
most() {
	python3 -c '
import json, sys
m = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if sys.argv[2] in r:
        m = max(m, r[sys.argv[2]])
print(m)' "$T_DIR/sink-s.log" "$1"
}
[ "$(most held)" = 3 ] || fail "alice had $(most held) requests held at once (her cap is 3)"
[ "$(most held_path)" = 2 ] || fail "a hook had $(most held_path) requests held at once (its cap is 2)"
rows_gone() { [ "$(sql "SELECT count(*) FROM webhook_deliveries")" = 0 ]; }
WAIT_S=60 wait_for rows_gone || fail "rows left: $(sql "SELECT state, count(*) FROM webhook_deliveries GROUP BY 1")"
[ "$(counter "$TB" "$HB" ok)" = 1 ] || fail "bob's ok counter: $(counter "$TB" "$HB" ok)"
[ "$(sink_count s "r['path'] == '/bob'")" = 1 ] || fail "bob's hook got $(sink_count s "r['path'] == '/bob'") requests: another user's events reached it"
note "3 x $N deliveries, at most 3 held per user and 2 per hook; bob's event went out after $alice_then of alice's"
