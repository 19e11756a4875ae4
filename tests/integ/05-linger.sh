#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What cinderd keeps per device outlives its session by
# device_cache_linger_s, then goes: a device that reconnects within the
# linger is served from the key cache; one that stays away has its cached
# key, its events state and its application hash dropped (/v1/ping
# counts them); a device that left with its publish rate limit spent
# keeps its buckets until they are full again, so that reconnecting does
# not reset its rate limit.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
sed -i 's/^log_level .*/log_level debug/' "$T_DIR/cinder.conf"
# The linger is long enough for a reconnect on a loaded box (the sim
# took 3.9 s once in CI), and shorter than the bucket's refill (20 s).
printf 'device_cache_linger_s 8\npublish_rate 1\npublish_burst 20\n' >>"$T_DIR/cinder.conf"
start_cinderd

# ping OBJ FIELD: a field of /v1/ping
ping_field() {
	http GET /v1/ping
	json_get "$HTTP_BODY" "[\"$1\"][\"$2\"]"
}
ping_is() { [ "$(ping_field "$1" "$2")" = "$3" ]; }

sim_provision "$T_DIR/d" 1 --register
id=$(head -1 "$T_DIR/d/devices.txt")

# Online: its key is cached, its state kept.
sim_run a "$T_DIR/d" --app testapp --no-reconnect
WAIT_S=30 wait_for sim_has_at_least a ready 1 || fail "device did not come online: $(cat "$T_DIR/a.err")"
[ "$(health key_cache)" = 1 ] || fail "key not cached"
[ "$(health key_cache_hits)" = 0 ] || fail "a first handshake counted as a cache hit"
wait_for ping_is events devices_kept 1 || fail "no events state for the online device"
wait_for ping_is healer app_hashes 1 || fail "no application hash for the online device"

# Back within the linger: served from the cache.
kill "$SIM_PID_a"
wait_for health_at_least lingering 1 || fail "the device that left is not lingering"
sim_run b "$T_DIR/d" --app testapp --no-reconnect
WAIT_S=30 wait_for sim_has_at_least b ready 1 || fail "device did not come back: $(cat "$T_DIR/b.err")"
[ "$(health key_cache_hits)" = 1 ] || fail "a reconnect within the linger missed the key cache"
[ "$(health forgotten)" = 0 ] || fail "state dropped while the device was back"

# Gone for longer than the linger: everything kept for it goes.
kill "$SIM_PID_b"
WAIT_S=30 wait_for health_at_least forgotten 1 || fail "the device's state was not dropped after the linger"
[ "$(health key_cache)" = 0 ] || fail "key still cached after the linger"
[ "$(health lingering)" = 0 ] || fail "still lingering after the linger"
ping_is events devices_kept 0 || fail "events state kept after the linger"
ping_is healer app_hashes 0 || fail "application hash kept after the linger"

# It comes back: a fresh lookup, and it works as before.
sim_run c "$T_DIR/d" --app testapp --publish burst:40 --no-reconnect
WAIT_S=30 wait_for sim_has_at_least c ready 1 || fail "device did not come back after the linger"
[ "$(health key_cache_hits)" = 1 ] || fail "a key dropped after the linger was still found"
[ "$(health key_cache)" = 1 ] || fail "key not cached again"

# It spends its publish rate limit (1/s, bursts of 20), then leaves: its
# buckets outlive the linger (8 s) until they are full again (20 s).
dropped_some() { [ "$(ping_field events dropped_rate)" -ge 10 ]; }
wait_for dropped_some || fail "the rate limit dropped nothing"
kill "$SIM_PID_c"
wait_for log_has "$id\] gone: kept until its publish rate limit refills" ||
	fail "the spent rate limit was not kept past the linger"
ping_is events devices_kept 1 || fail "events state dropped with its bucket spent"
WAIT_S=60 wait_for health_at_least forgotten 2 || fail "the state was never dropped once the bucket refilled"
ping_is events devices_kept 0 || fail "events state kept once the bucket refilled"
stop_cinderd
note "linger ok"
