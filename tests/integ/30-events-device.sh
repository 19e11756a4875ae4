#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Events end to end with cinder-sim devices of two users: device -> SSE on
# the three user streams, private isolation between users, spark/status
# online and offline, device -> device with the three subscription scopes,
# API publish -> device and -> SSE, the spark/device/name helper, and the
# request errors (no prefix 400, no token 401, unknown device 404).
set -u
. "$(dirname "$0")/lib.sh"
integ_init
sed -i 's/^log_level .*/log_level debug/' "$T_DIR/cinder.conf"
start_cinderd

http GET /v1/events/x
[ "$HTTP_STATUS" = 404 ] && { echo "SKIP: event routes not wired into cinderd" >&2; exit 77; }

# Two users with a token each.
for u in alice bob; do
	add_user "$u@example.com" "${u}pass123"
done
login alice@example.com alicepass123
TA=$TOKEN
login bob@example.com bobpass123
TB=$TOKEN

# sse NAME PATH [curl args]: a background SSE client writing $T_DIR/sse-NAME.
sse() {
	local name=$1 path=$2
	shift 2
	curl -sN "$@" "$API$path" >"$T_DIR/sse-$name" 2>/dev/null &
	T_PIDS+=("$!")
}
sse_has() { grep -q -- "$2" "$T_DIR/sse-$1"; }
sse_ready() { grep -q '^:ok$' "$T_DIR/sse-$1"; }

# Streams first, so that they see the devices come online.
sse amine /v1/devices/events -H "Authorization: Bearer $TA"
sse bpub "/v1/events/t?access_token=$TB"
sse apub /v1/events/t -H "Authorization: Bearer $TA"
sse astatus /v1/devices/events/spark%2Fstatus -H "Authorization: Bearer $TA"
for s in amine bpub apub astatus; do
	wait_for sse_ready $s || fail "stream $s did not start"
done

# Errors before any stream starts.
http GET /v1/events -H "Authorization: Bearer $TA"
expect 400 "bare /v1/events"
http GET /v1/events/t
expect 401 "no token"
http GET /v1/devices/ffffffffffffffffffffffff/events -H "Authorization: Bearer $TA"
expect 404 "unknown device stream"
http POST /v1/devices/events -H "Authorization: Bearer $TA" -d data=x
expect 400 "publish without a name"

# Devices: two of alice's, one of bob's. Their simulators take commands
# from a FIFO each.
sim_provision "$T_DIR/a" 2 --register --owner alice@example.com
sim_provision "$T_DIR/b" 1 --register --owner bob@example.com
A1=$(sed -n 1p "$T_DIR/a/devices.txt")
A2=$(sed -n 2p "$T_DIR/a/devices.txt")
B1=$(sed -n 1p "$T_DIR/b/devices.txt")
sql "UPDATE devices SET name = 'kitchen' WHERE device_id = '$A1'" >/dev/null
# A1 belongs to alice's product "fleet" (id 4242).
sql "INSERT INTO products (id, name, slug, platform_id, owner_id) SELECT 4242, 'Fleet', 'fleet', 6, id FROM users WHERE username = 'alice@example.com'" >/dev/null ||
	fail "product insert"
sql "UPDATE devices SET product_id = 4242 WHERE device_id = '$A1'" >/dev/null
sse aprod /v1/products/fleet/events/t -H "Authorization: Bearer $TA"
wait_for sse_ready aprod || fail "product stream did not start"
http GET /v1/products/4242/events -H "Authorization: Bearer $TB"
expect 403 "bob's product stream"
http GET /v1/products/nosuch/events -H "Authorization: Bearer $TA"
expect 404 "unknown product stream"
sim_ctl_run() { # sim_ctl_run NAME DIR: simulator reading commands from a FIFO
	local name=$1 dir=$2 fd
	mkfifo "$T_DIR/$name.ctl"
	exec {fd}<>"$T_DIR/$name.ctl"
	printf -v "CTL_$name" '%s' "$fd"
	"$SIM" run --dir "$dir" --server "127.0.0.1:$DEV_PORT" \
		--server-key "$T_DIR/server_key.pub.der" --app testapp \
		<"$T_DIR/$name.ctl" >"$T_DIR/$name.out" 2>"$T_DIR/$name.err" &
	T_PIDS+=("$!")
	printf -v "SIM_PID_$name" '%s' "$!"
}
ctl() { # ctl NAME LINE
	local v="CTL_$1"
	printf '%s\n' "$2" >&"${!v}"
}
# pub SIM LINE: a publish command, paced to the documented device rate
# (1 event/s per device; the server drops what goes faster).
declare -A LAST_PUB
pub() {
	local dev now last ms
	dev=$(awk '{print $2}' <<<"$2")
	now=$(date +%s%N)
	last=${LAST_PUB[$dev]:-0}
	ms=$(( 1100 - (now - last) / 1000000 ))
	if [ "$ms" -gt 0 ]; then
		sleep "$(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))"
	fi
	LAST_PUB[$dev]=$(date +%s%N)
	ctl "$1" "$2"
}
subscribed() { log_has "\\[$1\\] subscribed to \"$2\""; }
sim_has() { grep -q -- "$2" "$T_DIR/$1.out"; }
sim_ctl_run a "$T_DIR/a"
sim_ctl_run b "$T_DIR/b"
WAIT_S=30 wait_for sim_has_at_least a ready 2 || fail "alice's devices not ready: $(cat "$T_DIR/a.err")"
WAIT_S=30 wait_for sim_has_at_least b ready 1 || fail "bob's device not ready: $(cat "$T_DIR/b.err")"

# spark/status online reaches the owner's streams, never the other user's.
wait_for sse_has astatus "\"data\":\"online\".*\"coreid\":\"$A1\"" || fail "no spark/status online for A1"
wait_for sse_has astatus "\"data\":\"online\".*\"coreid\":\"$A2\"" || fail "no spark/status online for A2"
sse_has astatus "$B1" && fail "alice sees bob's device status"
grep -q '^event: spark/status$' "$T_DIR/sse-astatus" || fail "no event line for spark/status"

# Device -> device: subscriptions with the three scopes. A2: alice's own
# devices; B1: everyone's public events; B1 again: only A1's events.
ctl a "subscribe $A2 t/ mine"
ctl b "subscribe $B1 t/all all"
ctl b "subscribe $B1 t/dev $A1"
ctl a "subscribe $A1 spark/device/name"
wait_for subscribed "$A2" "t/" || fail "A2's subscription not seen"
wait_for subscribed "$B1" "t/all" || fail "B1's subscription not seen"
wait_for subscribed "$B1" "t/dev" || fail "B1's device subscription not seen"
wait_for subscribed "$A1" "spark/device/name" || fail "A1's subscription not seen"

# Device -> SSE, private: alice's user streams see it, bob's do not.
pub a "publish $A1 t/priv 21.5 private"
wait_for sse_has amine '^event: t/priv$' || fail "private event not on alice's devices stream"
wait_for sse_has apub "\"data\":\"21.5\",\"ttl\":60,\"published_at\":\"[-0-9T:.]*Z\",\"coreid\":\"$A1\"" ||
	fail "private event frame not as expected on alice's /v1/events/t"
wait_for sim_has a "^event $A2 t/priv 21.5" || fail "A2 (mine) did not receive A1's private event"

# Device -> SSE, public: bob's /v1/events/t sees it.
pub a "publish $A1 t/all/pub hello public"
wait_for sse_has bpub '^event: t/all/pub$' || fail "public event not on bob's /v1/events/t"
wait_for sim_has b "^event $B1 t/all/pub hello" || fail "B1 (all) did not receive the public event"
pub a "publish $A1 t/dev/x yes public"
wait_for sim_has b "^event $B1 t/dev/x yes" || fail "B1 (device A1) did not receive A1's event"
pub a "publish $A2 t/dev/y no public"
pub a "publish $A1 t/all/secret s private"
wait_for sse_has amine '^event: t/all/secret$' || fail "secret not on alice's stream"
# a public marker after them: once B1 has it, anything misrouted before
# it would have arrived too
pub a "publish $A1 t/all/m1 m public"
wait_for sim_has b "^event $B1 t/all/m1" || fail "marker not on B1"
wait_for sse_has bpub '^event: t/all/m1$' || fail "marker not on bob's stream"
sim_has b "t/dev/y" && fail "B1's device-scoped subscription got A2's event"
sim_has b "t/all/secret" && fail "B1 received alice's private event"
sse_has bpub "t/priv" && fail "bob's stream shows alice's private event"
sse_has bpub "t/all/secret" && fail "bob's stream shows alice's private event"

# Bob's private event never reaches alice.
pub b "publish $B1 t/bobonly b private"
pub a "publish $A1 t/marker m private"
wait_for sse_has apub '^event: t/marker$' || fail "marker not seen"
wait_for sim_has a "^event $A2 t/marker" || fail "marker not on A2"
sse_has apub "t/bobonly" && fail "alice's stream shows bob's private event"
sim_has a "t/bobonly" && fail "alice's device got bob's private event"

# A device stream: the owner sees private events; bob sees only public ones.
sse adev "/v1/devices/$A1/events" -H "Authorization: Bearer $TA"
sse adevname "/v1/devices/kitchen/events/t%2Fp" -H "Authorization: Bearer $TA"
sse bdev "/v1/devices/$A1/events?access_token=$TB"
for s in adev adevname bdev; do
	wait_for sse_ready $s || fail "stream $s did not start"
done
pub a "publish $A1 t/p1 one private"
pub a "publish $A1 t/p2 two public"
wait_for sse_has adev '^event: t/p1$' || fail "owner device stream misses the private event"
wait_for sse_has adevname '^event: t/p2$' || fail "device stream by name misses the event"
wait_for sse_has bdev '^event: t/p2$' || fail "bob's device stream misses the public event"
sse_has bdev 't/p1' && fail "bob's device stream shows a private event"

# API publish: to alice's streams (coreid "api") and her subscribed device.
http POST /v1/devices/events -H "Authorization: Bearer $TA" \
	-d name=t/api -d data='say "hi"' -d ttl=30
expect 200 "API publish"
[ "$(json_get "$HTTP_BODY" '["ok"]')" = True ] || fail "publish answer: $HTTP_BODY"
wait_for sse_has amine '"data":"say \\"hi\\"","ttl":30,.*"coreid":"api"' || fail "API event not on alice's stream"
wait_for sim_has a "^event $A2 t/api say \"hi\"" || fail "API event not delivered to A2"
http POST /v1/devices/events -H "Authorization: Bearer $TB" \
	-H 'Content-Type: application/json' -d '{"name":"t/all/bobapi","data":"pub","private":false}'
expect 200 "bob's public API publish"
wait_for sse_has apub '^event: t/all/bobapi$' || fail "bob's public API event not on alice's /v1/events/t"
wait_for sim_has b "^event $B1 t/all/bobapi pub" || fail "bob's API event not on B1"
sse_has amine 't/all/bobapi' && fail "alice's devices stream shows bob's API event"

# Product stream: A1's events (with the product keys), not A2's; a
# product publish from the API reaches it.
wait_for sse_has aprod "\"coreid\":\"$A1\",\"userid\":\"[0-9]*\",\"public\":false,\"productID\":4242" ||
	fail "product stream misses A1's private event"
sse_has aprod "\"coreid\":\"$A2\"" && fail "product stream shows a device outside the product"
http POST /v1/products/fleet/events -H "Authorization: Bearer $TA" -d name=t/fleet -d data=all
expect 200 "product publish"
wait_for sse_has aprod '"data":"all".*"coreid":"api".*"productID":4242' || fail "product publish not on the product stream"
http POST /v1/products/fleet/events -H "Authorization: Bearer $TB" -d name=t/fleet
expect 403 "bob's product publish"

# spark/device/name: the device asks, the cloud answers it alone.
pub a "publish $A1 spark/device/name"
wait_for sim_has a "^event $A1 spark/device/name kitchen" || fail "no device name answer"
sim_has a "^event $A2 spark/device/name" && fail "device name answer went to another device"
sse_has amine 'spark/device/name' && fail "spark/device/name shown on a stream"

# Offline: stopping the simulator gives spark/status offline.
kill "$SIM_PID_a"
wait_for sse_has astatus "\"data\":\"offline\".*\"coreid\":\"$A1\"" || fail "no spark/status offline for A1"
kill -0 "$CINDERD_PID" || fail "cinderd died"
stop_cinderd
note "events device routing ok"
