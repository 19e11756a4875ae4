#!/bin/bash
# SPDX-License-Identifier: MIT
# REST variables, functions and signals against live simulated devices
# (cinder-sim, testapp): typed variable results with coreInfo, format=raw,
# function calls with arg and args (form and JSON), unknown names (404),
# another user's device (404), many concurrent calls to one device (all
# answered), a silent device (408 after request_timeout), a client that
# leaves while waiting (the daemon keeps serving), connected in the list,
# a read by id answered from the registry in the bytes a read of the
# row gives (the product from the Hello, or assigned elsewhere), the row
# cache forgetting on an unclaim here or elsewhere (a NOTIFY) and
# sweeping rows no longer used.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"
echo "request_timeout 2" >>"$T_DIR/cinder.conf"
# the silent device sends nothing after its start-up: on a loaded box the
# checks before its own took longer than the default 45 s keep-alive
echo "keepalive_timeout 600" >>"$T_DIR/cinder.conf"

cinderd_cmd migrate >/dev/null || fail "migrate"
add_user alice@example.com alicepass123
add_user bob@example.com bobpass1234
start_cinderd
login alice@example.com alicepass123
ALICE=$TOKEN
login bob@example.com bobpass1234
BOB=$TOKEN
A=(-H "Authorization: Bearer $ALICE")
B=(-H "Authorization: Bearer $BOB")

"$SIM" provision --count 2 --dir "$T_DIR/ok" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice@example.com --prefix 6a >/dev/null || fail "provision"
"$SIM" provision --count 1 --dir "$T_DIR/quiet" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice@example.com --prefix 6b >/dev/null || fail "provision silent"
run_sim() { # run_sim NAME DIR [flags]
	local name=$1 dir=$2
	shift 2
	"$SIM" run --dir "$dir" --server "127.0.0.1:$DEV_PORT" \
		--server-key "$T_DIR/server_key.pub.der" --app testapp "$@" \
		</dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.err" &
	T_PIDS+=("$!")
}
run_sim ok "$T_DIR/ok"
OK_PID=${T_PIDS[-1]}
# early: a frozen device would never answer the describe that follows setup()
run_sim quiet "$T_DIR/quiet" --behaviour silent --startup early
ready() { [ "$(grep -c '^ready ' "$T_DIR/ok.out")" -ge 2 ] && [ "$(grep -c '^ready ' "$T_DIR/quiet.out")" -ge 1 ]; }
wait_for ready || fail "simulated devices not ready"
described() {
	[ "$(sql "SELECT count(*) FROM devices WHERE last_describe->'v' ? 'counter' OR variables ? 'counter'")" = 3 ]
}
wait_for described || fail "describe not stored"
D=$(head -1 "$T_DIR/ok/devices.txt")
Q=$(head -1 "$T_DIR/quiet/devices.txt")

http GET /v1/devices "${A[@]}"
expect 200 "list"
[ "$(json_get "$HTTP_BODY" '.__len__()')" = 3 ] || fail "alice has 3 devices"
[ "$(python3 -c 'import json,sys; print([x["connected"] for x in json.loads(sys.argv[1]) if x["id"] == sys.argv[2]])' "$HTTP_BODY" "$D")" = "[True]" ] ||
	fail "device not connected in the list: $HTTP_BODY"
http GET "/v1/devices/$D" "${A[@]}"
expect 200 "get"
DEV_PRODUCT=$(field '["product_id"]')
[ "$(field '["variables"]["counter"]')" = int32 ] || fail "variables: $HTTP_BODY"
[ "$(field '["variables"]["ratio"]')" = double ] || fail "double type"
[ "$(field '["variables"]["greeting"]')" = string ] || fail "string type"

# Functions: arg (form), args (JSON), return_value.
http POST "/v1/devices/$D/setcounter" "${A[@]}" -d arg=42
expect 200 "setcounter"
[ "$(field '["connected"]')" = True ] || fail "call connected"
[ "$(field '["id"]')" = "$D" ] || fail "call id"
http POST "/v1/devices/$D/echo" "${A[@]}" -H 'Content-Type: application/json' -d '{"args":"hello"}'
expect 200 "echo with args"
[ "$(field '["return_value"]')" = 5 ] || fail "echo return_value: $HTTP_BODY"
# The answer is written as text (devcall.c): the keys and bytes of the
# compact JSON it replaced.
[ "$HTTP_BODY" = "{\"id\":\"$D\",\"last_app\":null,\"name\":\"echo\",\"connected\":true,\"return_value\":5}" ] ||
	fail "function answer bytes: $HTTP_BODY"
http POST "/v1/devices/$D/echo" "${A[@]}" -d access_token="$ALICE" -d arg=abc
[ "$(field '["return_value"]')" = 3 ] || fail "access_token stripped from the form"

http POST "/v1/devices/$D/echo" "${A[@]}" -H 'Content-Type: application/json' -d '{"arg":12345}'
[ "$(field '["return_value"]')" = 5 ] || fail "numeric JSON arg: $HTTP_BODY"

# The call's argument and a body access_token from a form body are read
# without a jansson object (src/api/form.c; the object is built only when
# a handler asks for it): these answers are the ones the object gave.
# echo returns the length of the argument it got.
rv() { # rv WANT DESC CURL-ARGS...: a 200 whose return_value is WANT
	local want=$1 desc=$2 path=/v1/devices/$D/echo
	shift 2
	if [ "${1:-}" = --path ]; then path=$2; shift 2; fi
	http POST "$path" "$@"
	expect 200 "$desc"
	[ "$(field '["return_value"]')" = "$want" ] || fail "$desc: $HTTP_BODY, want $want"
}
bad() { # bad STATUS BODY DESC CURL-ARGS...: exactly this answer
	local st=$1 body=$2 desc=$3
	shift 3
	http POST "/v1/devices/$D/echo" "$@"
	expect "$st" "$desc"
	[ "$HTTP_BODY" = "$body" ] || fail "$desc: $HTTP_BODY"
}
rv 6 "plus and escapes" "${A[@]}" --data-raw 'arg=a+b%26c%3D'
rv 3 "UTF-8 escapes" "${A[@]}" --data-raw 'arg=%E2%82%AC'
rv 0 "empty arg" "${A[@]}" --data-raw 'arg='
rv 0 "arg without =" "${A[@]}" --data-raw 'arg'
rv 0 "no arg" "${A[@]}" --data-raw 'x=1'
rv 0 "arg twice: neither (an array)" "${A[@]}" --data-raw 'arg=abc&arg=de'
rv 2 "arg twice, then args" "${A[@]}" --data-raw 'arg=abc&arg=de&args=xy'
rv 5 "args" "${A[@]}" --data-raw 'args=hello'
rv 2 "arg before args" "${A[@]}" --data-raw 'args=hello&arg=hi'
rv 3 "escaped key" "${A[@]}" --data-raw 'a%72g=xyz'
rv 2 "empty fields" "${A[@]}" --data-raw '&&arg=ab&&'
rv 2 "empty key" "${A[@]}" --data-raw '=x&arg=ab'
rv 2 "empty key: its value is not checked" "${A[@]}" --data-raw '=%FF&arg=ab'
rv 2 "a field named arg+" "${A[@]}" --data-raw 'arg+=abcd&arg=ab'
rv 4 "query arg" --path "/v1/devices/$D/echo?arg=qqqq" "${A[@]}" --data-raw 'x=1'
rv 1 "body arg over query" --path "/v1/devices/$D/echo?arg=qqqq" "${A[@]}" --data-raw 'arg=z'
rv 4 "query arg after an arg twice" --path "/v1/devices/$D/echo?arg=qqqq" "${A[@]}" --data-raw 'arg=z&arg=y'
rv 3 "text/plain form" "${A[@]}" -H 'Content-Type: text/plain' --data-raw 'arg=abc'
rv 4 "text/plain JSON" "${A[@]}" -H 'Content-Type: text/plain' --data-raw '{"arg":"abcd"}'
rv 3 "no Content-Type" "${A[@]}" -H 'Content-Type:' --data-raw 'arg=abc'
rv 3 "form with charset" "${A[@]}" -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' --data-raw 'arg=abc'
rv 5 "multipart" "${A[@]}" -F arg=abcde
rv 1 "JSON true" "${A[@]}" -H 'Content-Type: application/json' -d '{"arg":true}'
rv 3 "JSON real" "${A[@]}" -H 'Content-Type: application/json' -d '{"arg":1.5}'
rv 0 "JSON array" "${A[@]}" -H 'Content-Type: application/json' -d '{"arg":["ab"]}'
MAL='malformed form body: bad percent-escape, NUL byte or invalid UTF-8'
for b in 'arg=%zz' 'arg=%4' 'arg=%' 'arg=%00' 'x=%FF&arg=a' '%FF=1&arg=a' \
	'arg=%C0%80' 'arg=%ED%A0%80' 'arg=%F4%90%80%80' 'arg=%E2%82' 'arg=%80' \
	'%zz&arg=a' 'arg=a&b=%G0'; do
	bad 400 "{\"ok\":false,\"error\":\"$MAL\",\"error_description\":\"$MAL\"}" \
		"malformed form $b" "${A[@]}" --data-raw "$b"
done
bad 400 '{"ok":false,"error":"unsupported content type application/zip","error_description":"unsupported content type application/zip"}' \
	"unsupported content type" "${A[@]}" -H 'Content-Type: application/zip' --data-raw 'arg=abc'
f256=$(printf 'f=1&%.0s' $(seq 1 255))
rv 1 "256 fields" "${A[@]}" --data-raw "${f256}arg=a"
TOO='{"ok":false,"error":"too many form fields","error_description":"too many form fields"}'
bad 413 "$TOO" "257 fields" "${A[@]}" --data-raw "${f256}f=1&arg=a"
bad 413 "$TOO" "257 fields, a bad escape after them" "${A[@]}" --data-raw "${f256}f=1&arg=%zz"
bad 400 "{\"ok\":false,\"error\":\"$MAL\",\"error_description\":\"$MAL\"}" \
	"a bad escape, then 257 fields" "${A[@]}" --data-raw "arg=%zz&${f256}f=1"
x() { printf "%$1s" '' | tr ' ' "${2:-x}"; }
rv 622 "622 bytes" "${A[@]}" --data-raw "arg=$(x 622)"
http POST "/v1/devices/$D/echo" "${A[@]}" --data-raw "arg=$(x 623)"
expect 400 "623 bytes: the device refuses"
DEVREF=$HTTP_BODY
bad 400 "$DEVREF" "1024 bytes: the device refuses" "${A[@]}" --data-raw "arg=$(x 1024)"
bad 400 '{"ok":false,"error":"Argument too long"}' "1025 bytes" "${A[@]}" --data-raw "arg=$(x 1025)"
bad 400 '{"ok":false,"error":"Argument too long"}' "1025 bytes in args" "${A[@]}" --data-raw "args=$(x 1025)"
bad 400 "$DEVREF" "1025 encoded bytes, 1023 decoded" "${A[@]}" --data-raw "arg=%41$(x 1022)"
rv 342 "342 bytes as 1026 escapes" "${A[@]}" --data-raw "arg=$(x 342 @ | sed 's/@/%41/g')"
rv 600 "a long body around the argument" "${A[@]}" --data-raw "arg=$(x 600)&pad=$(x 2000)"
bad 400 '{"ok":false,"error":"Argument too long"}' "1025 bytes in a long body" "${A[@]}" --data-raw "pad=$(x 2000)&arg=$(x 1025)"
# access_token in the form: found (escaped too), stripped, and not taken
# when repeated or empty (the header or the query's is used then).
rv 3 "body token" --data-raw "access_token=$ALICE&arg=abc"
rv 3 "escaped body token" --data-raw "access_token=$(printf '%%%02X' "'${ALICE:0:1}")${ALICE:1}&arg=abc"
rv 0 "body token, no arg" --data-raw "access_token=$ALICE"
rv 2 "body token last" --data-raw "arg=ab&access_token=$ALICE"
http POST "/v1/devices/$D/echo" --data-raw "access_token=$ALICE&access_token=$ALICE&arg=abc"
expect 401 "body token twice"
NOTOK=$HTTP_BODY
rv 3 "body token twice, query token" --path "/v1/devices/$D/echo?access_token=$ALICE" \
	--data-raw "access_token=$ALICE&access_token=$ALICE&arg=abc"
http POST "/v1/devices/$D/echo" --data-raw "access_token=&arg=abc"
expect 401 "empty body token"
[ "$HTTP_BODY" = "$NOTOK" ] || fail "empty body token: $HTTP_BODY"
rv 3 "empty body token, query token" --path "/v1/devices/$D/echo?access_token=$ALICE" \
	--data-raw "access_token=&arg=abc"
rv 3 "header token over a bad body token" "${A[@]}" --data-raw "access_token=nope&arg=abc"
http POST "/v1/devices/$D/echo" --data-raw "access_token=$BOB&arg=abc"
expect 404 "bob's body token"

# Variables: typed results, coreInfo, raw.
http GET "/v1/devices/$D/counter" "${A[@]}"
expect 200 "counter"
[ "$(field '["cmd"]')" = VarReturn ] || fail "cmd"
[ "$(field '["name"]')" = counter ] || fail "name"
[ "$(field '["result"]')" = 42 ] || fail "counter after setcounter: $HTTP_BODY"
[ "$(field '["coreInfo"]["deviceID"]')" = "$D" ] || fail "coreInfo.deviceID"
[ "$(field '["coreInfo"]["connected"]')" = True ] || fail "coreInfo.connected"
python3 -c '
import json, sys
b = sys.argv[1]
v = json.loads(b)
assert list(v) == ["cmd", "name", "result", "coreInfo"], list(v)
assert list(v["coreInfo"]) == ["last_app", "last_heard", "connected",
    "last_handshake_at", "deviceID", "product_id"], list(v["coreInfo"])
assert v["coreInfo"]["last_app"] is None
assert b == json.dumps(v, separators=(",", ":"), ensure_ascii=False), b
' "$HTTP_BODY" || fail "variable answer keys and bytes: $HTTP_BODY"
# coreInfo's times come from the registry (the device is online), in
# PostgreSQL's format; the product from the device row.
python3 -c '
import datetime, json, re, sys
c = json.loads(sys.argv[1])["coreInfo"]
now = datetime.datetime.now(datetime.timezone.utc)
for k in ("last_heard", "last_handshake_at"):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", c[k]), c
    t = datetime.datetime.strptime(c[k], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs((now - t).total_seconds()) < 600, (k, c[k])
assert c["last_handshake_at"] <= c["last_heard"], c
assert str(c["product_id"]) == sys.argv[2], (c, sys.argv[2])
' "$HTTP_BODY" "$DEV_PRODUCT" || fail "coreInfo values: $HTTP_BODY"
http GET "/v1/devices/$D/ratio" "${A[@]}"
expect 200 "ratio"
[ "$(field '["result"].__class__.__name__')" = float ] || fail "double result: $HTTP_BODY"
http GET "/v1/devices/$D/greeting" "${A[@]}"
expect 200 "greeting"
[ "$(field '["result"].__class__.__name__')" = str ] || fail "string result: $HTTP_BODY"
http GET "/v1/devices/$D/counter?format=raw" "${A[@]}"
expect 200 "raw"
[ "$HTTP_BODY" = 42 ] || fail "raw body: $HTTP_BODY"

# Unknown names, someone else's device.
http GET "/v1/devices/$D/nosuchvar" "${A[@]}"
expect 404 "unknown variable"
[ "$(field '["error"]')" = "Variable not found" ] || fail "variable error text"
http POST "/v1/devices/$D/nosuchfn" "${A[@]}" -d arg=x
expect 404 "unknown function"
[ "$(field '["error"]')" = "Function not found" ] || fail "function error text"
http GET "/v1/devices/$D/counter" "${B[@]}"
expect 404 "bob reads alice's variable"
http POST "/v1/devices/$D/echo" "${B[@]}" -d arg=x
expect 404 "bob calls alice's function"
# A call by an id the registry knows is answered without the device row
# (devcall.c, dreq_live): the id in any case, the owner's only.
http POST "/v1/devices/${D^^}/echo" "${A[@]}" -d arg=abcd
expect 200 "call by the id in capitals"
[ "$(field '["id"]')" = "$D" ] || fail "call id in capitals: $HTTP_BODY"
[ "$(field '["return_value"]')" = 4 ] || fail "capitals return_value: $HTTP_BODY"
http POST "/v1/devices/${D^^}/echo" "${B[@]}" -d arg=x
expect 404 "bob calls alice's function by the id in capitals"

# Signal.
http PUT "/v1/devices/$D" "${A[@]}" -d signal=1
expect 200 "signal on"
http PUT "/v1/devices/$D" "${A[@]}" -H 'Content-Type: application/json' -d '{"signal":false}'
expect 200 "signal off (JSON boolean)"
[ "$(field '["signaling"]')" = False ] || fail "signaling false"

# Many concurrent calls to one device are queued, not dropped.
pids=()
for i in $(seq 1 20); do
	curl -sS -o "$T_DIR/par.$i" -w '%{http_code}\n' -H "Authorization: Bearer $ALICE" \
		-d "arg=$(printf '%*s' "$i" '' | tr ' ' x)" "$API/v1/devices/$D/echo" >"$T_DIR/par.$i.code" &
	pids+=("$!")
done
wait "${pids[@]}"
for i in $(seq 1 20); do
	[ "$(cat "$T_DIR/par.$i.code")" = 200 ] || fail "parallel call $i: $(cat "$T_DIR/par.$i")"
	[ "$(json_get "$(cat "$T_DIR/par.$i")" '["return_value"]')" = "$i" ] || fail "parallel call $i value"
done

# A silent device: 408 after request_timeout (2 s here).
start=$(date +%s)
http GET "/v1/devices/$Q/counter" "${A[@]}"
expect 408 "silent device variable"
[ "$(field '["error"]')" = "Timed out." ] || fail "timeout text"
[ $(( $(date +%s) - start )) -le 6 ] || fail "timeout took too long"
http POST "/v1/devices/$Q/echo" "${A[@]}" -d arg=x
expect 408 "silent device function"
# A client that gives up while waiting: the daemon goes on serving.
curl -sS -m 0.5 -H "Authorization: Bearer $ALICE" "$API/v1/devices/$Q/counter" >/dev/null 2>&1
http GET "/v1/devices/$D/counter" "${A[@]}"
expect 200 "served after a client left"

# A read by the id of a device connected here is answered without
# PostgreSQL when the registry knows the row's product (devcall.c,
# dreq_live); a read by the name reads the row. Both answers are
# the same bytes, last_heard aside (the last bytes from the device: it
# moves with each answer). Whatever the product comes from: the Hello
# (the simulator's 3), or one assigned elsewhere (an UPDATE and a
# NOTIFY), which the next read shows.
api() { http GET /v1/ping; json_get "$HTTP_BODY" "[\"api\"][\"$1\"]"; }
rows_read() { http GET /v1/ping; json_get "$HTTP_BODY" '["devices"]["rows_read"]'; }
read_again() { [ "$(rows_read)" -gt "$1" ]; }
rows_are() { [ "$(api device_rows)" = "$1" ]; }
same_but_heard() { # same_but_heard BODY BODY
	python3 -c '
import re, sys
a, b = (re.sub(r"\"last_heard\":\"[^\"]*\"", "\"last_heard\":T", x) for x in sys.argv[1:3])
assert a == b, (a, b)
' "$1" "$2"
}
# read_both PRODUCT: by id (from the registry) then by name (the row)
read_both() {
	local n body
	n=$(api device_rows_registry)
	http GET "/v1/devices/$D/greeting" "${A[@]}"
	expect 200 "greeting by id"
	body=$HTTP_BODY
	[ "$(field '["coreInfo"]["product_id"]')" = "$1" ] || fail "product by id: $body, want $1"
	[ "$(api device_rows_registry)" = $((n + 1)) ] || fail "read by id not from the registry: $HTTP_BODY"
	http GET "/v1/devices/reader/greeting" "${A[@]}"
	expect 200 "greeting by name"
	[ "$(api device_rows_registry)" = $((n + 1)) ] || fail "read by name from the registry: $HTTP_BODY"
	same_but_heard "$body" "$HTTP_BODY" || fail "by id and by name differ: $body vs $HTTP_BODY"
}
http PUT "/v1/devices/$D" "${A[@]}" -d name=reader
expect 200 "rename"
R0=$(rows_read)
sql "SELECT pg_notify('cinder_devices', '$D')" >/dev/null # after the rename's
wait_for read_again "$R0" || fail "the row not read again"
read_both "$DEV_PRODUCT"
PROD=$(sql "INSERT INTO products (name, slug, platform_id) VALUES ('p', 'p-calls', 3) RETURNING id" | head -1)
sql "UPDATE devices SET product_id = $PROD WHERE device_id = '$D'" >/dev/null
sql "SELECT pg_notify('cinder_devices', '$D owner')" >/dev/null
wait_for rows_are 0 || fail "rows kept after the product notification"
http GET "/v1/devices/$D/greeting" "${A[@]}"
expect 200 "read after a product assigned elsewhere"
[ "$(field '["coreInfo"]["product_id"]')" = "$PROD" ] || fail "assigned product not read: $HTTP_BODY"
R0=$(rows_read)
sql "SELECT pg_notify('cinder_devices', '$D')" >/dev/null
wait_for read_again "$R0" || fail "the row not read again"
read_both "$PROD"
sql "UPDATE devices SET product_id = NULL WHERE device_id = '$D'" >/dev/null
sql "SELECT pg_notify('cinder_devices', '$D owner')" >/dev/null
wait_for rows_are 0 || fail "rows kept after the second product notification"
http GET "/v1/devices/$D/greeting" "${A[@]}"
[ "$(field '["coreInfo"]["product_id"]')" = "$DEV_PRODUCT" ] || fail "product unassigned elsewhere still read: $HTTP_BODY"

# A change through the API holds at once: after an unclaim the same
# call, answered from the registry just before, is refused.
http POST "/v1/devices/$D/echo" "${A[@]}" -d arg=xy
expect 200 "call before unclaim"
http DELETE "/v1/devices/$D" "${A[@]}"
expect 200 "unclaim"
http POST "/v1/devices/$D/echo" "${A[@]}" -d arg=xy
expect 404 "call right after unclaim"
http GET "/v1/devices/$D/counter" "${A[@]}"
expect 404 "read right after unclaim"

# Calls and reads by a name keep the device row for a moment (those by
# the id of a device connected here need none, dreq_live); the sweep
# drops rows no request can use (devrow.c, every 10 s): an offline
# device's row once its 2 s are over, then, once its device has gone,
# the row of a connected one; /v1/ping counts them.
[ "$(api device_rows)" = 0 ] || fail "rows left after the unclaim: $HTTP_BODY"
"$SIM" provision --count 1 --dir "$T_DIR/off" --cinderd "$CINDERD" \
	--config "$T_DIR/cinder.conf" --owner alice@example.com --prefix 6c >/dev/null || fail "provision offline"
D2=$(sed -n 2p "$T_DIR/ok/devices.txt")
O=$(head -1 "$T_DIR/off/devices.txt")
http PUT "/v1/devices/$D2" "${A[@]}" -d name=second
expect 200 "rename the second device"
http POST "/v1/devices/$D2/echo" "${A[@]}" -d arg=xy
expect 200 "call on the second device by its id"
[ "$(api device_rows)" = 0 ] || fail "a row kept for a call by id: $HTTP_BODY"
http POST "/v1/devices/second/echo" "${A[@]}" -d arg=xy
expect 200 "call on the second device by its name"
http POST "/v1/devices/$O/echo" "${A[@]}" -d arg=xy
expect 404 "call on an offline device"
[ "$(api device_rows)" = 2 ] || fail "two rows kept: $HTTP_BODY"
swept() { [ "$(api device_rows_swept)" -ge "$1" ] && [ "$(api device_rows)" = "$2" ]; }
WAIT_S=30 wait_for swept 1 1 || fail "the offline device's row not swept: $HTTP_BODY"
http POST "/v1/devices/second/echo" "${A[@]}" -d arg=xyz
expect 200 "the connected device's row still serves"
[ "$(api device_rows)" = 1 ] || fail "the connected device's row: $HTTP_BODY"
# A change made elsewhere (another node, the CLI) comes as a NOTIFY on
# cinder_devices: the rows are forgotten and the unclaim holds here at
# once (PostgreSQL is asked; the registry reads the owner again too,
# 10-rest-cluster.sh).
OWNER=$(sql "SELECT owner_id FROM devices WHERE device_id = '$D2'")
sql "UPDATE devices SET owner_id = NULL WHERE device_id = '$D2'" >/dev/null
sql "SELECT pg_notify('cinder_devices', '$D2')" >/dev/null
wait_for rows_are 0 || fail "rows kept after a notification: $HTTP_BODY"
http POST "/v1/devices/second/echo" "${A[@]}" -d arg=xy
expect 404 "call by the name after an unclaim made elsewhere"
http POST "/v1/devices/$D2/echo" "${A[@]}" -d arg=xy
expect 404 "call by the id after an unclaim made elsewhere"
sql "UPDATE devices SET owner_id = $OWNER WHERE device_id = '$D2'" >/dev/null
sql "SELECT pg_notify('cinder_devices', '$D2')" >/dev/null
http POST "/v1/devices/second/echo" "${A[@]}" -d arg=xy
expect 200 "call after the claim back"
[ "$(api device_rows)" = 1 ] || fail "the row kept again: $HTTP_BODY"
kill "$OK_PID"
WAIT_S=30 wait_for swept 2 0 || fail "the row of a device gone not swept: $HTTP_BODY"

kill -0 "$CINDERD_PID" || fail "cinderd died"
stop_cinderd
echo "PASS: $T_NAME"
