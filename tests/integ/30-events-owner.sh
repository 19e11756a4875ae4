#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A device's MINE subscription follows its owner: device subscriptions
# sit in an index by owner (events.c), so a claim through the API, an
# unclaim, and an owner changed elsewhere (the row read again after a
# cinder_devices notification) must each move it. The device hears its
# owner's events and never another user's, before and after each change.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
add_user bob@example.com bobpass123
start_cinderd
login alice@example.com alicepass123
A=(-H "Authorization: Bearer $TOKEN")
login bob@example.com bobpass123
B=(-H "Authorization: Bearer $TOKEN")
sim_provision "$T_DIR/d" 1 --register --owner alice@example.com
D=$(head -1 "$T_DIR/d/devices.txt")

mkfifo "$T_DIR/ctl"
"$SIM" run --dir "$T_DIR/d" --server "127.0.0.1:$DEV_PORT" \
	--server-key "$T_DIR/server_key.pub.der" \
	<"$T_DIR/ctl" >"$T_DIR/d.out" 2>"$T_DIR/d.err" &
T_PIDS+=("$!")
exec 3>"$T_DIR/ctl"
WAIT_S=30 wait_for sim_has_at_least d ready 1 || fail "device not ready"
echo "subscribe $D x/ mine" >&3

# publish AUTH... NAME: an API event of that user, private
publish() {
	local name=$1
	shift
	http POST /v1/devices/events "$@" -d name="$name" -d data=1 -d private=true
	expect 200 "publish $name"
}
heard() { grep -q "^event $D $1 " "$T_DIR/d.out"; }
# hear AUTH... NAME: publish until the device hears it (the subscription
# races the first publish)
hear() {
	local name=$1 i
	shift
	for i in 1 2 3 4 5 6 7 8; do
		publish "$name" "$@"
		WAIT_S=2 wait_for heard "$name" && return 0
	done
	fail "the device never heard $name: $(tail -5 "$T_DIR/d.out")"
}
# The owner's event reaches the device; another user's, published
# before one that does, never does.
# owned_by OWNER OTHER TAG: OWNER and OTHER name the auth arrays (A, B).
owned_by() {
	local mine="$1[@]" other="$2[@]" tag=$3
	hear "x/$tag-mine-1" "${!mine}"
	publish "x/$tag-other" "${!other}"
	hear "x/$tag-mine-2" "${!mine}"
	heard "x/$tag-other" && fail "$tag: another user's event reached the device"
	return 0
}
owned_by A B alice

# Unclaimed by alice, claimed by bob through the API (registry_set_owner).
http DELETE "/v1/devices/$D" "${A[@]}"
expect 200 "alice unclaims"
http POST /v1/devices "${B[@]}" -d id="$D"
expect 200 "bob claims"
owned_by B A bob

# Given back to alice elsewhere: SQL and the notification another node
# (or the CLI) would send; the registry reads the row again.
sql "UPDATE devices SET owner_id = (SELECT id FROM users WHERE username = 'alice@example.com') WHERE device_id = '$D'" >/dev/null
sql "SELECT pg_notify('cinder_devices', '$D owner')" >/dev/null
wait_for log_has "owner changed elsewhere" || fail "the row was not read again"
owned_by A B alice-again
note "a MINE subscription followed two owner changes"
