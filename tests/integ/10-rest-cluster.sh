#!/bin/bash
# SPDX-License-Identifier: MIT
# Two cinderd nodes on one PostgreSQL (cluster mode), a cinder-sim device
# publishing private events with a counter, connected to node B. A change
# of its row made through node A (unclaim, claim by another user), by an
# operator (a product, with a NOTIFY on cinder_devices) or lost while
# node B's database connection was down (resynchronised at its
# reconnect) reaches node B's registry: the old owner's calls answer 404
# and its streams stop showing the private events, exactly from the
# first event the new owner sees; product streams follow the product.
# Then the same through node B itself (a single node), where the stream
# of the device opened by its owner ends showing private events at the
# unclaim too.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
[ -x "$SIM" ] || fail "no $SIM"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
add_user bob@example.com bobpass1234
cp "$T_DIR/cinder.conf" "$T_DIR/cinder-b.conf"
echo "node_id node-a" >>"$T_DIR/cinder.conf"
echo "node_id node-b" >>"$T_DIR/cinder-b.conf"
start_cinderd
API_A=$API
: >"$T_DIR/cinderd-b.log"
"$CINDERD" run -c "$T_DIR/cinder-b.conf" >>"$T_DIR/cinderd-b.log" 2>&1 &
T_PIDS+=("$!")
b_ready() { grep -q "ready: devices on port" "$T_DIR/cinderd-b.log"; }
wait_for b_ready || fail "node B did not become ready"
DEV_PORT_B=$(sed -n 's/.*ready: devices on port \([0-9]*\), API on port \([0-9]*\).*/\1/p' "$T_DIR/cinderd-b.log")
API_B=http://127.0.0.1:$(sed -n 's/.*ready: devices on port \([0-9]*\), API on port \([0-9]*\).*/\2/p' "$T_DIR/cinderd-b.log")
# on_a/on_b CMD...: run an http call against that node
on_a() { API=$API_A "$@"; }
on_b() { API=$API_B "$@"; }

on_a login alice@example.com alicepass123
TA=$TOKEN
on_a login bob@example.com bobpass1234
TB=$TOKEN
HA=(-H "Authorization: Bearer $TA")
HB=(-H "Authorization: Bearer $TB")
ALICE_ID=$(sql "SELECT id FROM users WHERE username = 'alice@example.com'")
BOB_ID=$(sql "SELECT id FROM users WHERE username = 'bob@example.com'")

"$SIM" provision --count 1 --dir "$T_DIR/d" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice@example.com --prefix 7c >/dev/null || fail "provision"
D=$(head -1 "$T_DIR/d/devices.txt")
"$SIM" run --dir "$T_DIR/d" --server "127.0.0.1:$DEV_PORT_B" \
	--server-key "$T_DIR/server_key.pub.der" --app testapp \
	--publish secret:100:private </dev/null >"$T_DIR/sim.out" 2>"$T_DIR/sim.err" &
T_PIDS+=("$!")

# sse NAME PATH [curl args]: a stream from node B into $T_DIR/sse-NAME.
sse() {
	local name=$1 path=$2
	shift 2
	# appending: the test empties the file at times
	curl -sN "$@" "$API_B$path" >>"$T_DIR/sse-$name" 2>/dev/null &
	T_PIDS+=("$!")
}
sse_ready() { grep -q '^:ok$' "$T_DIR/sse-$1"; }
# counters NAME: the counters of the "secret" events a stream showed
counters() {
	awk '/^event: secret$/ { s = 1; next }
	     s && /^data: / { if (match($0, /"data":"[0-9]+"/))
				print substr($0, RSTART + 8, RLENGTH - 9); s = 0 }' \
		"$T_DIR/sse-$1"
}
max_counter() { counters "$1" | sort -n | tail -1; }
# first_after NAME N: the first counter above N a stream showed
first_after() { counters "$1" | awk -v n="$2" '$1 > n { print; exit }'; }
has_after() { [ -n "$(first_after "$1" "$2")" ]; }
reached() { [ "$(max_counter "$1")" -ge "$2" ] 2>/dev/null; }
# handover FROM TO: once TO's stream shows a first event, three more
# reach it and none of them (nor any later one) reaches FROM's streams
handover() {
	local from=$1 to=$2 k s
	shift 2
	wait_for has_after "$to" 0 || fail "$to never shows the device's private events"
	k=$(first_after "$to" 0)
	wait_for reached "$to" $((k + 3)) || fail "$to: no events after $k"
	for s in "$@"; do
		[ -z "$(first_after "$s" $((k - 1)))" ] ||
			fail "$s still shows private event $(first_after "$s" $((k - 1))) (the new owner's first is $k)"
	done
	HANDOVER_AT=$k
}
call_is() { # call_is STATUS TOKEN-ARRAY-NAME: a function call on node B
	local -n hdr=$2
	on_b http POST "/v1/devices/$D/echo" "${hdr[@]}" -d arg=xyz
	[ "$HTTP_STATUS" = "$1" ]
}

sse amine /v1/devices/events -H "Authorization: Bearer $TA"
sse adev "/v1/devices/$D/events" -H "Authorization: Bearer $TA"
sse bmine /v1/devices/events -H "Authorization: Bearer $TB"
for s in amine adev bmine; do
	wait_for sse_ready $s || fail "stream $s did not start"
done
wait_for has_after amine 0 || fail "alice's stream shows no private event"
wait_for has_after adev 0 || fail "alice's device stream shows no private event"
wait_for call_is 200 HA || fail "alice's call on node B: $HTTP_STATUS $HTTP_BODY"
call_is 404 HB || fail "bob's call before the claim: $HTTP_STATUS"
[ -z "$(counters bmine)" ] || fail "bob saw alice's private events"

# Through node A: alice unclaims, bob claims.
on_a http DELETE "/v1/devices/$D" "${HA[@]}"
expect 200 "unclaim on node A"
on_a http POST /v1/devices "${HB[@]}" -d id="$D"
expect 200 "claim on node A"
[ "$(sql "SELECT owner_id FROM devices WHERE device_id = '$D'")" = "$BOB_ID" ] || fail "owner not bob"
wait_for call_is 404 HA || fail "alice's call after the unclaim: $HTTP_STATUS $HTTP_BODY"
wait_for call_is 200 HB || fail "bob's call after the claim: $HTTP_STATUS $HTTP_BODY"
handover alice bmine amine adev
note "node B: bob's first private event $HANDOVER_AT, none to alice from it on"
grep -q "owner changed elsewhere: .* -> $BOB_ID" "$T_DIR/cinderd-b.log" ||
	fail "node B did not log the owner change"
# a stream alice opens now shows nothing of it
sse anew /v1/devices/events -H "Authorization: Bearer $TA"
wait_for sse_ready anew || fail "stream anew did not start"
K=$(max_counter bmine)
wait_for reached bmine $((K + 3)) || fail "bob: no more events"
[ -z "$(counters anew)" ] || fail "alice's new stream shows bob's private events"

# An operator moves the device into a product of bob's: with the NOTIFY,
# node B's product stream and coreInfo follow at once.
PROD=$(sql "INSERT INTO products (name, slug, platform_id, owner_id) VALUES ('p', 'p-cluster', 6, $BOB_ID) RETURNING id" | head -1)
sse bprod "/v1/products/$PROD/events" -H "Authorization: Bearer $TB"
wait_for sse_ready bprod || fail "product stream did not start"
sql "UPDATE devices SET product_id = $PROD WHERE device_id = '$D'" >/dev/null
sql "SELECT pg_notify('cinder_devices', '$D product')" >/dev/null
wait_for has_after bprod 0 || fail "the product stream shows none of the device's events"
product_is() {
	on_b http GET "/v1/devices/$D/counter" "${HB[@]}"
	[ "$HTTP_STATUS" = 200 ] && [ "$(field '["coreInfo"]["product_id"]')" = "$1" ]
}
wait_for product_is "$PROD" || fail "coreInfo product_id on node B: $HTTP_BODY"
grep -q "product changed elsewhere: .* -> $PROD" "$T_DIR/cinderd-b.log" ||
	fail "node B did not log the product change"

# A change no notification tells of (sent while node B's connection was
# down): the reconnect reads every connected device's row again.
R0=$(on_b http GET /v1/ping && field '["store"]["reconnects"]')
sql "UPDATE devices SET owner_id = $ALICE_ID, product_id = NULL WHERE device_id = '$D'" >/dev/null
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
reconnected() { on_b http GET /v1/ping && [ "$(field '["store"]["reconnects"]')" -gt "$R0" ]; }
wait_for reconnected || fail "node B did not reconnect"
: >"$T_DIR/sse-amine" # nothing since bob's claim
handover bob amine bmine
note "after node B's reconnect: alice's first private event $HANDOVER_AT"
wait_for call_is 200 HA || fail "alice's call after the reconnect: $HTTP_STATUS"
wait_for call_is 404 HB || fail "bob's call after the reconnect: $HTTP_STATUS"

# A single node: the same through node B itself. Alice's device stream,
# opened while she owned the device, stops showing its private events at
# the unclaim.
: >"$T_DIR/sse-adev"
: >"$T_DIR/sse-bmine"
wait_for has_after adev 0 || fail "alice's device stream shows nothing"
on_b http DELETE "/v1/devices/$D" "${HA[@]}"
expect 200 "unclaim on node B"
call_is 404 HA || fail "alice's call right after her unclaim on node B: $HTTP_STATUS"
on_b http POST /v1/devices "${HB[@]}" -d id="$D"
expect 200 "claim on node B"
call_is 200 HB || fail "bob's call right after his claim on node B: $HTTP_STATUS"
handover alice bmine amine adev
note "node B alone: bob's first private event $HANDOVER_AT"
echo "PASS: $T_NAME"
