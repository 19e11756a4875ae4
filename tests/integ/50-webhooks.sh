#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Webhooks end to end against real receivers on loopback (a plain HTTP
# sink and a TLS sink with a self-signed certificate): definition checks
# (400 naming the field), one request per event with the right method,
# headers, auth and body for each body kind, TLS with and without
# certificate checks, hook-sent / hook-response (512-byte pieces) /
# hook-error events on the owner's stream and to a subscribed cinder-sim
# device, a receiver failing twice then answering, 4xx not retried, the
# private-address guard, counters, isolation between users, delete, and
# /v1/integrations.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webhook_lib.sh"
integ_init
sed -i "s/^log_level .*/log_level debug/" "$T_DIR/cinder.conf"
cat >>"$T_DIR/cinder.conf" <<CONF
webhook_allow_nets 127.0.0.1/32
webhook_retry 1,1
webhook_host_errors 0
webhook_ca_file $T_DIR/trusted.crt
CONF
# a receiver certificate cinderd trusts through webhook_ca_file
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_DIR/trusted.key" -out "$T_DIR/trusted.crt" \
	-days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
	fail "openssl req"
webhooks_up
expect 401 "webhooks without a token"

user_token alice
TA=$TOKEN
user_token bob
TB=$TOKEN
AUTH=(-H "Authorization: Bearer $TA")

# --- definitions are checked when created ---
bad() { # bad JSON FIELD
	http POST /v1/webhooks "${AUTH[@]}" -H 'Content-Type: application/json' -d "$1"
	expect 400 "bad definition $1"
	grep -q "\"$2: " <<<"$HTTP_BODY" || fail "400 for $1 does not name $2: $HTTP_BODY"
}
bad '{"event":"e","url":"ftp://example.com/"}' url
bad '{"event":"e"}' url
bad '{"url":"http://example.com/"}' event
bad '{"event":"e","url":"http://example.com/","requestType":"PATCH"}' requestType
bad '{"event":"e","url":"http://example.com/","json":{"a":"{{#open}}"}}' json
bad '{"event":"e","url":"http://example.com/","json":{},"form":{}}' json
big=$(head -c 20000 /dev/zero | tr '\0' b)
bad "{\"event\":\"e\",\"url\":\"http://example.com/\",\"body\":\"$big\"}" body
http GET /v1/webhooks "${AUTH[@]}"
expect 200 "list"
[ "$HTTP_BODY" = "[]" ] || fail "refused definitions were stored: $HTTP_BODY"

# --- receivers ---
sink_start plain
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_DIR/tls.key" -out "$T_DIR/tls.crt" \
	-days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
	fail "openssl req"
sink_start tls --tls "$T_DIR/tls.crt" "$T_DIR/tls.key"
sink_start trusted --tls "$T_DIR/trusted.crt" "$T_DIR/trusted.key"
P="http://127.0.0.1:$SINK_plain"
S="https://127.0.0.1:$SINK_tls"

# Alice's streams of hook events and of everything.
curl -sN "${AUTH[@]}" "$API/v1/devices/events/hook-" >"$T_DIR/sse-hooks" 2>/dev/null &
T_PIDS+=("$!")
wait_for grep -q '^:ok$' "$T_DIR/sse-hooks" || fail "hook event stream did not start"
sse_has() { grep -q -- "$1" "$T_DIR/sse-hooks"; }
curl -sN "${AUTH[@]}" "$API/v1/devices/events/big-reply" >"$T_DIR/sse-big" 2>/dev/null &
T_PIDS+=("$!")
wait_for grep -q '^:ok$' "$T_DIR/sse-big" || fail "big-reply stream did not start"

# --- one request per event, for each body kind ---
hook "$TA" "{\"event\":\"t/json\",\"url\":\"$P/json/{{PARTICLE_EVENT_NAME}}\",\"json\":{\"temp\":\"{{{t}}}\",\"dev\":\"{{PARTICLE_DEVICE_ID}}\"},\"headers\":{\"X-Secret\":\"hdr-{{t}}\"},\"auth\":{\"username\":\"u1\",\"password\":\"pw-secret-1\"}}"
H_JSON=$HOOK_ID
hook "$TA" "{\"event\":\"t/form\",\"url\":\"$P/form\",\"requestType\":\"PUT\",\"form\":{\"a\":\"{{{t}}}\"}}"
hook "$TA" "{\"event\":\"t/def\",\"url\":\"$P/def\"}"
hook "$TA" "{\"event\":\"t/get\",\"url\":\"$P/get\",\"requestType\":\"GET\",\"query\":{\"q\":\"{{t}}\"}}"
hook "$TA" "{\"event\":\"t/body\",\"url\":\"$P/body\",\"requestType\":\"DELETE\",\"body\":\"raw {{{PARTICLE_EVENT_VALUE}}}\",\"headers\":{\"Content-Type\":\"text/plain\"},\"noDefaults\":true}"
hook "$TA" "{\"event\":\"t/big\",\"url\":\"$P/big/x\",\"responseTopic\":\"big-reply/{{PARTICLE_EVENT_NAME}}\"}"
hook "$TA" "{\"event\":\"t/tmpl\",\"url\":\"$P/tmpl\",\"responseTemplate\":\"got {{reply}} at {{path}}\"}"
# Bob's hook on the same prefix never sees Alice's events.
hook "$TB" "{\"event\":\"t/\",\"url\":\"$P/bob\"}"
H_BOB=$HOOK_ID

publish "$TA" t/json '{"t":"21<5"}'
publish "$TA" t/form '{"t":"x&y"}'
publish "$TA" t/def 'plain data'
publish "$TA" t/get '{"t":"a b"}'
publish "$TA" t/body 'v1'
publish "$TA" t/big 'x'
publish "$TA" t/tmpl 'x'

wait_for sink_has plain 'r["path"].startswith("/json/")' || fail "no json request"
wait_for sink_has plain 'r["path"] == "/tmpl"' || fail "no tmpl request"
wait_for sink_has plain 'r["path"].startswith("/get")' || fail "no get request"
[ "$(sink_count plain 'r["path"] == "/json/t%2Fjson" or r["path"] == "/json/t/json"')" = 1 ] ||
	fail "json: not exactly one request: $(cat "$T_DIR/sink-plain.log")"
J='r["path"].startswith("/json/")'
[ "$(sink_get plain "$J" 'r["method"]')" = POST ] || fail "json: method"
[ "$(sink_get plain "$J" 'r["headers"]["content-type"]')" = application/json ] || fail "json: content type"
[ "$(sink_get plain "$J" 'r["headers"]["x-secret"]')" = "hdr-21&lt;5" ] || fail "json: templated header"
[ "$(sink_get plain "$J" 'r["headers"]["authorization"]')" = "Basic $(printf u1:pw-secret-1 | base64)" ] ||
	fail "json: basic auth"
[ "$(sink_get plain "$J" 'json.loads(r["body"])["temp"]')" = "21<5" ] || fail "json: body temp"
[ "$(sink_get plain "$J" 'json.loads(r["body"])["event"]')" = "t/json" ] || fail "json: default event"
[ "$(sink_get plain "$J" 'json.loads(r["body"])["coreid"]')" = "api" ] || fail "json: default coreid"
sink_get plain "$J" 'json.loads(r["body"])["published_at"]' | grep -Eq '^20[0-9-]{8}T[0-9:.]{12}Z$' ||
	fail "json: published_at"
F='r["path"] == "/form"'
[ "$(sink_get plain "$F" 'r["method"]')" = PUT ] || fail "form: method"
[ "$(sink_get plain "$F" 'r["headers"]["content-type"]')" = application/x-www-form-urlencoded ] || fail "form: type"
sink_get plain "$F" 'r["body"]' | grep -q '^a=x%26y&event=t%2Fform&data=' || fail "form: body $(sink_get plain "$F" 'r["body"]')"
D='r["path"] == "/def"'
sink_get plain "$D" 'r["body"]' | grep -q '^event=t%2Fdef&data=plain%20data&published_at=.*&coreid=api$' ||
	fail "default body: $(sink_get plain "$D" 'r["body"]')"
G='r["path"].startswith("/get")'
[ "$(sink_get plain "$G" 'r["method"]')" = GET ] || fail "get: method"
sink_get plain "$G" 'r["path"]' | grep -q '^/get?q=a%20b&event=t%2Fget&data=' || fail "get: query $(sink_get plain "$G" 'r["path"]')"
[ "$(sink_get plain "$G" 'r["body"]')" = "" ] || fail "get: body"
B='r["path"] == "/body"'
wait_for sink_has plain "$B" || fail "no body request"
[ "$(sink_get plain "$B" 'r["method"]')" = DELETE ] || fail "body: method"
[ "$(sink_get plain "$B" 'r["body"]')" = "raw v1" ] || fail "body: $(sink_get plain "$B" 'r["body"]')"
[ "$(sink_get plain "$B" 'r["headers"]["content-type"]')" = text/plain ] || fail "body: content type"
sink_get plain "$J" 'r["headers"]["user-agent"]' | grep -q ParticleBot || fail "user agent"

# --- events back: hook-sent, hook-response pieces, responseTemplate ---
wait_for sse_has '^event: hook-sent/t/json$' || fail "no hook-sent"
wait_for sse_has '^event: hook-response/t/json/0$' || fail "no hook-response"
grep -A1 '^event: hook-response/t/json/0$' "$T_DIR/sse-hooks" | grep -q 'reply\\":\\"ok' ||
	fail "hook-response data: $(grep -A1 'hook-response/t/json' "$T_DIR/sse-hooks")"
wait_for sse_has '^event: hook-response/t/tmpl/0$' || fail "no templated response"
grep -A1 '^event: hook-response/t/tmpl/0$' "$T_DIR/sse-hooks" | grep -q '"data":"got ok at /tmpl"' ||
	fail "responseTemplate: $(grep -A1 'hook-response/t/tmpl' "$T_DIR/sse-hooks")"
# 1200 bytes: pieces of 512, 512 and 176 on the custom responseTopic
wait_for grep -q '^event: big-reply/t/big/2$' "$T_DIR/sse-big" || fail "no third piece"
python3 - "$T_DIR/sse-big" <<'PY' || fail "pieces: $(cat "$T_DIR/sse-big")"
import json, sys
ev, sizes = None, {}
for line in open(sys.argv[1]):
    if line.startswith("event: "):
        ev = line[7:].strip()
    elif line.startswith("data: ") and ev:
        sizes[ev] = len(json.loads(line[6:])["data"])
assert sizes == {"big-reply/t/big/0": 512, "big-reply/t/big/1": 512,
                 "big-reply/t/big/2": 176}, sizes
PY

# --- TLS: a certificate from webhook_ca_file is checked and accepted; a
# self-signed one is accepted with rejectUnauthorized false, refused otherwise ---
hook "$TA" "{\"event\":\"t/tlsca\",\"url\":\"https://127.0.0.1:$SINK_trusted/ca\"}"
publish "$TA" t/tlsca 1
wait_for sink_has trusted 'r["path"] == "/ca"' || fail "no request to the trusted TLS receiver"
hook "$TA" "{\"event\":\"t/tlsok\",\"url\":\"$S/tls\",\"rejectUnauthorized\":false}"
hook "$TA" "{\"event\":\"t/tlsbad\",\"url\":\"$S/tlsbad\"}"
H_TLSBAD=$HOOK_ID
publish "$TA" t/tlsok 1
publish "$TA" t/tlsbad 1
wait_for sink_has tls 'r["path"] == "/tls"' || fail "no TLS request"
wait_for sse_has '^event: hook-error/t/tlsbad/0$' || fail "no hook-error for a bad certificate"
grep -A1 '^event: hook-error/t/tlsbad/0$' "$T_DIR/sse-hooks" | grep -qi 'certificate\|SSL' ||
	fail "hook-error does not say why: $(grep -A1 tlsbad "$T_DIR/sse-hooks")"
sink_has tls 'r["path"] == "/tlsbad"' && fail "request sent in spite of a bad certificate"

# --- a receiver failing twice then succeeding gets it on the third try ---
hook "$TA" "{\"event\":\"t/retry\",\"url\":\"$P/fail2/r\"}"
H_RETRY=$HOOK_ID
publish "$TA" t/retry 'once'
WAIT_S=30 wait_for sink_has plain 'r["path"] == "/fail2/r"' 3 || fail "third try did not come"
wait_for counter_at_least "$TA" "$H_RETRY" ok 1 || fail "retry: ok counter"
[ "$(counter "$TA" "$H_RETRY" failed)" = 2 ] || fail "retry: failed counter $(counter "$TA" "$H_RETRY" failed)"
[ "$(sink_count plain 'r["path"] == "/fail2/r"')" = 3 ] || fail "retry: more than 3 requests"
wait_for out_is 0 sql "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '$H_RETRY'" ||
	fail "a delivered row is left"

# --- 4xx is not retried; the error names the status ---
hook "$TA" "{\"event\":\"t/404\",\"url\":\"$P/status404/x\"}"
H_404=$HOOK_ID
publish "$TA" t/404 x
wait_for sse_has '^event: hook-error/t/404/0$' || fail "no hook-error for 404"
grep -A1 '^event: hook-error/t/404/0$' "$T_DIR/sse-hooks" | grep -q 'error status 404 from 127.0.0.1' || fail "404 text"
wait_for out_is failed sql "SELECT state FROM webhook_deliveries WHERE webhook_id = '$H_404'" ||
	fail "404 delivery not marked failed"
sleep 2.5 # two retry periods: nothing more may come
[ "$(sink_count plain 'r["path"] == "/status404/x"')" = 1 ] || fail "404 was retried"

# --- the private-address guard: 127.0.0.2 is loopback, not allowed ---
hook "$TA" "{\"event\":\"t/ssrf\",\"url\":\"http://127.0.0.2:$SINK_plain/ssrf\"}"
publish "$TA" t/ssrf x
wait_for sse_has '^event: hook-error/t/ssrf/0$' || fail "no hook-error for a refused address"
grep -A1 '^event: hook-error/t/ssrf/0$' "$T_DIR/sse-hooks" | grep -q 'address not allowed' || fail "ssrf text"

# --- to a subscribed device: hook-response reaches alice's cinder-sim ---
sim_provision "$T_DIR/a" 1 --register --owner alice@example.com
A1=$(sed -n 1p "$T_DIR/a/devices.txt")
mkfifo "$T_DIR/a.ctl"
exec {CTL}<>"$T_DIR/a.ctl"
"$SIM" run --dir "$T_DIR/a" --server "127.0.0.1:$DEV_PORT" --server-key "$T_DIR/server_key.pub.der" \
	--app testapp <"$T_DIR/a.ctl" >"$T_DIR/a.out" 2>"$T_DIR/a.err" &
T_PIDS+=("$!")
WAIT_S=30 wait_for sim_has_at_least a ready 1 || fail "device not ready: $(cat "$T_DIR/a.err")"
printf 'subscribe %s hook-response/t/dev mine\n' "$A1" >&"$CTL"
wait_for log_has "\\[$A1\\] subscribed to \"hook-response/t/dev\"" || fail "device subscription not seen"
# deviceID may be one of the owner's device names; it is stored as the id
sql "UPDATE devices SET name = 'sensor' WHERE device_id = '$A1'" >/dev/null
http POST /v1/webhooks "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"event\":\"t/dev\",\"url\":\"$P/dev\",\"deviceID\":\"nosuchname\"}"
expect 400 "unknown device name"
grep -q '"deviceID: ' <<<"$HTTP_BODY" || fail "unknown device name: $HTTP_BODY"
hook "$TA" "{\"event\":\"t/dev\",\"url\":\"$P/dev\",\"deviceID\":\"sensor\",\"json\":{\"v\":\"{{{v}}}\"}}"
[ "$(json_get "$HTTP_BODY" '["deviceID"]')" = "$A1" ] || fail "device name not resolved: $HTTP_BODY"
publish "$TA" t/dev '{"v":"from-api"}' # not from the device: filtered out
printf 'publish %s t/dev {"v":"from-device"} private\n' "$A1" >&"$CTL"
wait_for sink_has plain 'r["path"] == "/dev"' || fail "device event did not reach the sink"
[ "$(sink_get plain 'r["path"] == "/dev"' 'json.loads(r["body"])["v"]')" = from-device ] || fail "device filter"
[ "$(sink_get plain 'r["path"] == "/dev"' 'json.loads(r["body"])["coreid"]')" = "$A1" ] || fail "coreid"
wait_for grep -q "^event $A1 hook-response/t/dev/0 .*reply.*ok" "$T_DIR/a.out" ||
	fail "device did not get hook-response: $(cat "$T_DIR/a.out")"

# --- isolation and counters ---
[ "$(sink_count plain 'r["path"] == "/bob"')" = 0 ] || fail "bob's webhook saw alice's events"
[ "$(counter "$TB" "$H_BOB" sent)" = 0 ] || fail "bob's counter moved"
http GET "/v1/webhooks/$H_JSON" -H "Authorization: Bearer $TB"
expect 404 "bob reads alice's webhook"
http DELETE "/v1/webhooks/$H_JSON" -H "Authorization: Bearer $TB"
expect 404 "bob deletes alice's webhook"
publish "$TB" t/bobs 'b'
wait_for sink_has plain 'r["path"] == "/bob"' || fail "bob's own event did not reach his webhook"
[ "$(counter "$TA" "$H_JSON" sent)" = 1 ] || fail "json sent counter"
[ "$(counter "$TA" "$H_JSON" ok)" = 1 ] || fail "json ok counter"
[ "$(counter "$TA" "$H_TLSBAD" failed)" -ge 1 ] || fail "tls failed counter"
http GET "/v1/webhooks/$H_TLSBAD" "${AUTH[@]}"
grep -q '"last_error":"[^"]' <<<"$HTTP_BODY" || fail "no last_error: $HTTP_BODY"

# --- list, delete, integrations ---
http GET /v1/webhooks "${AUTH[@]}"
expect 200 "list"
n=$(json_get "$HTTP_BODY" '.__len__()')
http DELETE "/v1/webhooks/$H_JSON" "${AUTH[@]}"
expect 200 "delete"
http GET /v1/webhooks "${AUTH[@]}"
[ "$(json_get "$HTTP_BODY" '.__len__()')" = $((n - 1)) ] || fail "delete did not remove it"
publish "$TA" t/json '{"t":"after"}'
http POST /v1/integrations "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"integration_type\":\"Webhook\",\"event\":\"t/int\",\"url\":\"$P/int\"}"
expect 200 "integration create"
[ "$(json_get "$HTTP_BODY" '["integration_type"]')" = Webhook ] || fail "integration shape: $HTTP_BODY"
IID=$(json_get "$HTTP_BODY" '["id"]')
http POST /v1/integrations "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"integration_type\":\"AzureIotHub\",\"event\":\"t/int\",\"url\":\"$P/int\"}"
expect 400 "non-webhook integration"
# a delivery before the edit: the engine has prepared (parsed) the old
# definition, which the edit must replace for the same event
publish "$TA" t/int x
wait_for sink_has plain 'r["path"] == "/int"' || fail "integration not used"
http PUT "/v1/integrations/$IID" "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"event\":\"t/int\",\"url\":\"$P/int2\",\"body\":\"v={{{PARTICLE_EVENT_VALUE}}}\"}"
expect 200 "integration replace"
publish "$TA" t/int y
wait_for sink_has plain 'r["path"] == "/int2" and r["body"] == "v=y"' ||
	fail "replaced integration not used: $(sink_get plain 'r["path"] == "/int2"' 'r["body"]')"
[ "$(sink_count plain 'r["path"] == "/int"')" = 1 ] || fail "the old definition was used after the edit"
http DELETE "/v1/integrations/$IID" "${AUTH[@]}"
expect 200 "integration delete"
[ "$(sink_count plain 'r["path"].startswith("/json/")')" = 1 ] || fail "deleted webhook still fired"

# Secrets never reach the log.
grep -q 'pw-secret-1' "$T_DIR/cinderd.log" && fail "a password is in the log"
stop_cinderd
echo "PASS: $T_NAME"
