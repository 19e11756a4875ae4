# SPDX-License-Identifier: MIT
# Helpers for the webhook integration tests (source after lib.sh): sinks
# (tests/integ/webhook_sink.py) and webhook/user shortcuts.

# sink_start NAME [--port P] [--tls CERT KEY]: a receiver logging to
# $T_DIR/sink-NAME.log; sets SINK_<NAME> to its port.
sink_start() {
	local name=$1
	shift
	rm -f "$T_DIR/sink-$name.port"
	python3 "$top_srcdir/tests/integ/webhook_sink.py" "$T_DIR/sink-$name.log" \
		"$T_DIR/sink-$name.port" "$@" 2>"$T_DIR/sink-$name.err" &
	T_PIDS+=("$!")
	printf -v "SINKPID_$name" '%s' "$!"
	touch "$T_DIR/sink-$name.log"
	wait_for test -s "$T_DIR/sink-$name.port" || fail "sink $name did not start: $(cat "$T_DIR/sink-$name.err")"
	printf -v "SINK_$name" '%s' "$(cat "$T_DIR/sink-$name.port")"
}
# sink_grep NAME PYEXPR: count requests r (a dict) for which PYEXPR holds.
sink_count() {
	python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if eval(sys.argv[2]):
        n += 1
print(n)' "$T_DIR/sink-$1.log" "$2"
}
sink_has() { [ "$(sink_count "$1" "$2")" -ge "${3:-1}" ]; }
# sink_values NAME PYEXPR: the distinct values of PYEXPR over the requests
# r, sorted, on one line (one python3 run, however many values are awaited).
sink_values() {
	python3 -c '
import json, sys
vals = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    vals.add(str(eval(sys.argv[2])))
print(" ".join(sorted(vals)))' "$T_DIR/sink-$1.log" "$2"
}
# sink_get NAME PYEXPR FIELD-EXPR: FIELD-EXPR of the first matching request.
sink_get() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if eval(sys.argv[2]):
        print(eval(sys.argv[3]))
        break' "$T_DIR/sink-$1.log" "$2" "$3"
}
# user_token NAME: create NAME@example.com and log in (sets TOKEN).
user_token() {
	add_user "$1@example.com" "$1pass123"
	login "$1@example.com" "$1pass123"
}
# hook TOKEN JSON: create a webhook, set HOOK_ID.
hook() {
	http POST /v1/webhooks -H "Authorization: Bearer $1" \
		-H 'Content-Type: application/json' -d "$2"
	expect 200 "create webhook $2"
	HOOK_ID=$(json_get "$HTTP_BODY" '["id"]')
}
# publish TOKEN NAME DATA: an API event (private).
publish() {
	http POST /v1/devices/events -H "Authorization: Bearer $1" \
		--data-urlencode "name=$2" --data-urlencode "data=$3" -d private=true
	expect 200 "publish $2"
}
# counter TOKEN ID NAME: a counter of a webhook.
counter() {
	http GET "/v1/webhooks/$2" -H "Authorization: Bearer $1"
	json_get "$HTTP_BODY" "[\"counters\"][\"$3\"]"
}
counter_at_least() { [ "$(counter "$1" "$2" "$3")" -ge "$4" ]; }
# out_is WANT CMD...: CMD prints WANT. For wait_for, which runs its
# arguments again each time (a "$(...)" in them would be read only once).
out_is() { local want=$1; shift; [ "$("$@")" = "$want" ]; }
out_at_least() { local want=$1; shift; [ "$("$@")" -ge "$want" ]; }

# Start cinderd and skip (77) if this build has no webhook routes.
webhooks_up() {
	start_cinderd
	http GET /v1/webhooks
	if [ "$HTTP_STATUS" = 404 ]; then
		echo "SKIP: webhook routes not wired into cinderd" >&2
		exit 77
	fi
}

# Config for the bulk delivery tests: loopback targets, one quick retry,
# no host back-off, room for many queued deliveries.
bulk_webhook_conf() {
	cat >>"$T_DIR/cinder.conf" <<CONF
webhook_allow_nets 127.0.0.0/8
webhook_retry 1
webhook_host_errors 0
webhook_queue_max 100000
CONF
}

# publish_burst TOKEN NAME COUNT: COUNT API events named NAME, published
# by cinder-loadgen over 4 keep-alive connections.
publish_burst() {
	"$top_builddir/bench/cinder-loadgen" events \
		--api "127.0.0.1:$API_PORT" --token "$1" --name "$2" \
		--events "$3" --concurrency 4 --seconds 120 >/dev/null
}
