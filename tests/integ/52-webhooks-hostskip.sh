#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A host that keeps failing is skipped for a while: after two failures in
# a row (webhook_host_errors 2) the next delivery to that host is not
# sent but skipped, with a hook-error saying so, and counted; another
# host is unaffected.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webhook_lib.sh"
integ_init
cat >>"$T_DIR/cinder.conf" <<CONF
webhook_allow_nets 127.0.0.0/8
webhook_retry 60
webhook_host_errors 2
webhook_host_sleep 60
CONF
webhooks_up
user_token alice
TA=$TOKEN
sink_start plain
curl -sN -H "Authorization: Bearer $TA" "$API/v1/devices/events/hook-error" >"$T_DIR/sse" 2>/dev/null &
T_PIDS+=("$!")
wait_for grep -q '^:ok$' "$T_DIR/sse" || fail "stream did not start"

hook "$TA" "{\"event\":\"s/\",\"url\":\"http://127.0.0.1:$SINK_plain/status500/x\"}"
H=$HOOK_ID
# another host (nothing listens on 127.0.0.2): tried, not skipped
hook "$TA" "{\"event\":\"o/\",\"url\":\"http://127.0.0.2:$SINK_plain/other\"}"
publish "$TA" s/1 a
wait_for counter_at_least "$TA" "$H" failed 1 || fail "first failure"
publish "$TA" s/2 b
wait_for counter_at_least "$TA" "$H" failed 2 || fail "second failure"
publish "$TA" s/3 c
wait_for counter_at_least "$TA" "$H" skipped 1 || fail "third delivery not skipped"
wait_for grep -q 'Sleeping: too many errors from 127.0.0.1' "$T_DIR/sse" || fail "no hook-error about skipping"
publish "$TA" o/1 x
wait_for grep -q '^event: hook-error/o/1/0$' "$T_DIR/sse" || fail "no error from the other host"
grep -A1 '^event: hook-error/o/1/0$' "$T_DIR/sse" | grep -q Sleeping && fail "the other host was skipped"
[ "$(sink_count plain 'r["path"] == "/status500/x"')" = 2 ] || fail "a skipped delivery was sent"
[ "$(sql "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '$H' AND state = 'pending'")" = 3 ] ||
	fail "skipped delivery not kept for a retry"
stop_cinderd
echo "PASS: $T_NAME"
