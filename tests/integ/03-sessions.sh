#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Device sessions end to end with cinder-sim devices and a real PostgreSQL:
# registered devices complete the handshake and come online with their
# describe stored; an unknown device is refused and its key kept until an
# operator accepts it; a device presenting another key than the registered
# one is refused; garbage after the handshake closes only that session; a
# newer connection replaces an older one; devices go offline when they leave.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
start_cinderd

# Three registered devices come online.
sim_provision "$T_DIR/good" 3 --register
sim_run good "$T_DIR/good" --app testapp
WAIT_S=30 wait_for sim_has_at_least good ready 3 || fail "devices did not become ready: $(cat "$T_DIR/good.err")"
wait_for health_at_least online 3 || fail "health does not count 3 online devices"
wait_for sql_is "SELECT count(*) FROM devices WHERE online AND last_describe IS NOT NULL" 3 ||
	fail "devices not online with a describe in the database"
id=$(head -1 "$T_DIR/good/devices.txt")
# testapp registers its functions in setup(), after the first describe:
# the second one (start-up burst over) brings them.
has_echo() { [ "$(sql "SELECT functions ? 'echo' FROM devices WHERE device_id = '$id'")" = t ]; }
wait_for has_echo ||
	fail "functions registered in setup() never reached the device row"
row=$(sql "SELECT last_ip_address, last_handshake_at IS NOT NULL, functions ? 'echo', variables->>'counter', system_version IS NOT NULL FROM devices WHERE device_id = '$id'")
[ "$row" = "127.0.0.1|t|t|int32|t" ] || fail "device row not filled from the session: $row"
grep -q "dev $id\] online from 127.0.0.1" "$T_DIR/cinderd.log" || fail "no open line in the log"

# An unknown device is refused; its key is kept and can be accepted.
sim_provision "$T_DIR/unknown" 1
uid=$(head -1 "$T_DIR/unknown/devices.txt")
sim_run unknown "$T_DIR/unknown" --app tinker --reconnect
wait_for log_has "dev $uid\] closed: refused: unknown device" || fail "unknown device not refused with a log line"
cinderd_cmd device pending | grep -q "$uid" || fail "pending key not listed"
[ "$(sim_count unknown ready)" = 0 ] || fail "unknown device got a session"
cinderd_cmd device accept "$uid" >/dev/null || fail "device accept"
WAIT_S=40 wait_for sim_has_at_least unknown ready 1 || fail "accepted device did not connect"
cinderd_cmd device pending | grep -q "$uid" && fail "accepted key still pending"

# A device whose registered key is another device's key is refused.
sim_provision "$T_DIR/mis" 2
mid=$(sed -n 1p "$T_DIR/mis/devices.txt")
other=$(sed -n 2p "$T_DIR/mis/devices.txt")
cinderd_cmd device add "$mid" "$T_DIR/mis/$other.pub.pem" >/dev/null || fail "device add"
sim_run mis "$T_DIR/mis" --count 1 --app tinker --no-reconnect
wait_for log_has "dev $mid\] closed: refused: the key the device sent differs" || fail "key mismatch not refused"
[ "$(health key_mismatches)" -ge 1 ] || fail "key mismatch not counted"

# Garbage after the handshake closes that session only.
sim_provision "$T_DIR/bad" 1 --register
bid=$(head -1 "$T_DIR/bad/devices.txt")
sim_run bad "$T_DIR/bad" --app tinker --behaviour garbage --no-reconnect
# Random bytes usually fail the padding check; now and then they decrypt
# to something that is not CoAP. Either way only this session closes.
wait_for log_has "dev $bid\] closed: \(frame did not decrypt\|undecodable message\)" ||
	fail "garbage did not close the session"
[ "$(health online)" -ge 4 ] || fail "other devices lost their sessions"
kill -0 "$CINDERD_PID" || fail "cinderd died"

# A second connection of a device replaces the first.
sim_run dup "$T_DIR/good" --count 1 --app testapp --no-reconnect
wait_for health_at_least replaced 1 || fail "no replacement counted"
wait_for log_has "dev $id\] closed: replaced by a newer connection" || fail "no replacement log line"

# Known and unknown devices handshaking at once (key lookups of one loop
# turn share a statement, src/registry_hs.c): each gets its own answer.
sim_provision "$T_DIR/mixed" 8 --register
mixed_unknown=$(sed -n '2p;5p;7p' "$T_DIR/mixed/devices.txt")
for u in $mixed_unknown; do
	sql "DELETE FROM devices WHERE device_id = '$u'" >/dev/null
done
sim_run mixed "$T_DIR/mixed" --app tinker --no-reconnect
WAIT_S=30 wait_for sim_has_at_least mixed ready 5 ||
	fail "known devices of a mixed fleet did not become ready: $(cat "$T_DIR/mixed.err")"
for u in $mixed_unknown; do
	wait_for log_has "dev $u\] closed: refused: unknown device" ||
		fail "unknown device $u of a mixed fleet not refused"
done
[ "$(sim_count mixed ready)" = 5 ] || fail "an unknown device of a mixed fleet got a session"

# Devices that leave are marked offline.
kill "$SIM_PID_good" "$SIM_PID_dup" "$SIM_PID_unknown" "$SIM_PID_mixed"
WAIT_S=30 wait_for sql_is "SELECT count(*) FROM devices WHERE online" 0 ||
	fail "devices still online after they left: $(sql "SELECT device_id FROM devices WHERE online")"
stop_cinderd
note "sessions ok"
