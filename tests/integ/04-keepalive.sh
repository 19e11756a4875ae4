#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A device that stops talking is dropped after keepalive_timeout, while a
# healthy device (which pings after 15 s of silence) stays connected.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
echo "keepalive_timeout 20" >>"$T_DIR/cinder.conf"
start_cinderd
sim_provision "$T_DIR/d" 2 --register
sim_run live "$T_DIR/d" --count 1 --app tinker --no-reconnect
sed -n 2p "$T_DIR/d/devices.txt" >"$T_DIR/d2.txt"
sid=$(cat "$T_DIR/d2.txt")
mkdir -p "$T_DIR/s" && cp "$T_DIR/d/$sid".* "$T_DIR/s/" && cp "$T_DIR/d2.txt" "$T_DIR/s/devices.txt"
sim_run silent "$T_DIR/s" --app tinker --behaviour silent --no-reconnect
wait_for health_at_least online 2 || fail "devices not online"
WAIT_S=40 wait_for log_has "dev $sid\] closed: keep-alive timeout" || fail "silent device was not dropped"
[ "$(health keepalive_timeouts)" = 1 ] || fail "expected exactly one keep-alive timeout"
[ "$(health online)" = 1 ] || fail "the healthy device was dropped too"
[ "$(sim_count live closed)" = 0 ] || fail "the healthy device saw its session close"
stop_cinderd
note "keep-alive ok"
