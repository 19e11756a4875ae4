#!/bin/bash
# SPDX-License-Identifier: MIT
# REST devices against a real cinderd, without live devices: key
# provisioning (good, missing and bad keys, someone else's device), device
# list and get, owner isolation between two users (404, empty list),
# admin visibility, rename (unique per owner), notes, ping, claim and
# unclaim, and the fast 404 for variables/functions of offline devices.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
start_cinderd

http POST /v1/users -d username=admin@example.com -d password=adminpass1
expect 200 "first user"
login admin@example.com adminpass1
ADMIN=$TOKEN
for u in alice bob; do
	http POST /v1/users -H "Authorization: Bearer $ADMIN" \
		-d username=$u@example.com -d password=${u}pass123
	expect 200 "create $u"
done
login alice@example.com alicepass123
ALICE=$TOKEN
login bob@example.com bobpass123
BOB=$TOKEN
A=(-H "Authorization: Bearer $ALICE")
B=(-H "Authorization: Bearer $BOB")

# Device keys.
openssl genrsa -out "$T_DIR/d1.pem" 1024 2>/dev/null || fail "genrsa"
openssl rsa -in "$T_DIR/d1.pem" -pubout -out "$T_DIR/d1.pub.pem" 2>/dev/null
openssl genrsa -out "$T_DIR/d2.pem" 1024 2>/dev/null
openssl rsa -in "$T_DIR/d2.pem" -pubout -out "$T_DIR/d2.pub.pem" 2>/dev/null
D1=0123456789abcdef01234567
D2=aaaaaaaaaaaaaaaaaaaaaaaa

# Provisioning: the caller becomes owner of a new device.
http POST "/v1/provisioning/${D1^^}" "${A[@]}" --data-urlencode "publicKey@$T_DIR/d1.pub.pem" \
	-d filename=cli -d order=manual_1 -d algorithm=rsa
expect 200 "provision d1"
[ "$(field '["id"]')" = "$D1" ] || fail "provision answer id"
[ "$(sql "SELECT u.username FROM devices d JOIN users u ON u.id = d.owner_id WHERE device_id = '$D1'")" = alice@example.com ] ||
	fail "alice should own d1"
http POST "/v1/provisioning/$D1" "${A[@]}"
expect 400 "no key"
[ "$(field '["error"]')" = "No key provided" ] || fail "no key error text"
http POST "/v1/provisioning/$D1" "${A[@]}" -d publicKey=garbage
expect 400 "bad key"
http POST "/v1/provisioning/nothex" "${A[@]}" --data-urlencode "publicKey@$T_DIR/d1.pub.pem"
expect 400 "bad device id"
# Bob cannot replace the key of Alice's device.
http POST "/v1/provisioning/$D1" "${B[@]}" --data-urlencode "publicKey@$T_DIR/d2.pub.pem"
expect 403 "provision someone else's device"
# Key rotation by the owner.
http POST "/v1/provisioning/$D1" "${A[@]}" --data-urlencode "publicKey@$T_DIR/d2.pub.pem"
expect 200 "owner re-provisions"
grep -q "$(sed -n 2p "$T_DIR/d2.pub.pem")" <(sql "SELECT public_key FROM devices WHERE device_id = '$D1'") ||
	fail "key not replaced"

# An unowned device registered by the operator.
sql "INSERT INTO devices (device_id, public_key, platform_id, system_version, variables, functions)
     VALUES ('$D2', 'x', 6, '1.5.2', '{\"counter\":\"int32\"}', '[\"echo\"]')" >/dev/null

# List and get, owner-scoped.
http GET /v1/devices "${A[@]}"
expect 200 "alice list"
[ "$(field '.__len__()')" = 1 ] || fail "alice sees 1 device: $HTTP_BODY"
for k in id name last_app last_ip_address last_heard last_handshake_at product_id \
	online connected platform_id cellular notes status system_firmware_version \
	functions variables serial_number firmware_updates_enabled firmware_updates_forced; do
	json_get "$HTTP_BODY" "[0]['$k']" >/dev/null || fail "list lacks $k"
done
[ "$(field '[0]["connected"]')" = False ] || fail "offline device connected"
[ "$(field '[0]["status"]')" = normal ] || fail "status"
http GET /v1/devices "${B[@]}"
expect 200 "bob list"
[ "$HTTP_BODY" = "[]" ] || fail "bob must see nothing: $HTTP_BODY"
http GET "/v1/devices/$D1" "${B[@]}"
expect 404 "bob gets alice's device"
http GET "/v1/devices/$D2" "${B[@]}"
expect 404 "unowned device is invisible"
http GET /v1/devices -H "Authorization: Bearer $ADMIN"
[ "$(field '.__len__()')" = 2 ] || fail "admin sees all: $HTTP_BODY"

# Rename, then address by name; names are unique per owner.
http PUT "/v1/devices/$D1" "${A[@]}" -d name=kitchen
expect 200 "rename"
[ "$(field '["name"]')" = kitchen ] || fail "rename answer"
http GET /v1/devices/kitchen "${A[@]}"
expect 200 "get by name"
[ "$(field '["id"]')" = "$D1" ] || fail "by name id"
http GET /v1/devices/kitchen "${B[@]}"
expect 404 "bob by alice's name"
http PUT "/v1/devices/$D1" "${A[@]}" -d name='bad name!'
expect 400 "bad name"
D3=cccccccccccccccccccccccc
http POST "/v1/provisioning/$D3" "${A[@]}" --data-urlencode "publicKey@$T_DIR/d1.pub.pem"
expect 200 "provision d3"
http PUT "/v1/devices/$D3" "${A[@]}" -d name=kitchen
expect 400 "duplicate name for one owner"
http PUT "/v1/devices/$D3" "${B[@]}" -d name=cellar
expect 404 "bob renames alice's device"
http DELETE "/v1/devices/$D3" "${A[@]}"
expect 200 "unclaim d3"
http PUT "/v1/devices/kitchen" "${A[@]}" -d notes='by the window'
expect 200 "notes"
http GET "/v1/devices/$D1" "${A[@]}"
[ "$(field '["notes"]')" = "by the window" ] || fail "notes stored"
http PUT "/v1/devices/$D1" "${A[@]}" -d signal=2
expect 400 "bad signal"
http PUT "/v1/devices/$D1" "${A[@]}" -d signal=1
expect 404 "signal offline device"
http PUT "/v1/devices/$D1" "${A[@]}"
expect 400 "nothing to do"
http PUT "/v1/devices/$D1/ping" "${A[@]}"
expect 200 "ping"
[ "$(field '["online"]')" = False ] || fail "ping online"

# Variables and functions of an offline device: fast 404.
http GET "/v1/devices/$D1/counter" "${A[@]}"
expect 404 "variable offline"
http POST "/v1/devices/$D1/echo" "${A[@]}" -d arg=hi
expect 404 "function offline"
http GET "/v1/devices/$D1/counter" "${B[@]}"
expect 404 "variable of someone else's device"

# Claim the unowned device; a second claim by another user is refused.
http POST /v1/devices "${B[@]}" -d id="$D2"
expect 200 "bob claims d2"
[ "$(field '["ok"]')" = True ] || fail "claim ok"
http POST /v1/devices "${B[@]}" -d id="$D2"
expect 200 "claim again is idempotent"
http POST /v1/devices "${A[@]}" -d id="$D2"
expect 403 "alice claims bob's device"
http POST /v1/devices "${A[@]}" -d id=bbbbbbbbbbbbbbbbbbbbbbbb
expect 404 "claim unknown device"
http POST /v1/devices "${A[@]}" -d id=zz
expect 400 "claim bad id"
http GET "/v1/devices/$D2" "${B[@]}"
expect 200 "bob sees d2"
[ "$(field '["variables"]["counter"]')" = int32 ] || fail "variables map"
[ "$(field '["functions"][0]')" = echo ] || fail "functions array"
[ "$(field '["system_firmware_version"]')" = 1.5.2 ] || fail "system_firmware_version"
http GET "/v1/devices/$D2/counter" "${B[@]}"
expect 404 "variable of an offline claimed device"

# Unclaim: the device disappears from Bob's list.
http DELETE "/v1/devices/$D2" "${A[@]}"
expect 404 "alice unclaims bob's device"
http DELETE "/v1/devices/$D2" "${B[@]}"
expect 200 "bob unclaims"
http GET /v1/devices "${B[@]}"
[ "$HTTP_BODY" = "[]" ] || fail "unclaimed device still listed"
[ "$(sql "SELECT owner_id IS NULL FROM devices WHERE device_id = '$D2'")" = t ] || fail "owner not cleared"

# Hostile input is refused cleanly.
long=$(head -c 3000 /dev/zero | tr '\0' a)
http GET "/v1/devices/$long" "${A[@]}"
expect 404 "very long device key"
http GET "/v1/devices/$long/$long" "${A[@]}"
[ "$HTTP_STATUS" = 400 ] || [ "$HTTP_STATUS" = 404 ] || fail "very long variable name: $HTTP_STATUS"
http GET /v1/devices -H "Authorization: Bearer $long"
expect 401 "very long token"
head -c 200000 /dev/urandom | base64 -w0 >"$T_DIR/bigkey"
http POST "/v1/provisioning/$D1" "${A[@]}" --data-urlencode "publicKey@$T_DIR/bigkey"
expect 400 "huge key"
http POST /v1/devices "${A[@]}" -H 'Content-Type: application/json' -d '{"id":["x"]}'
expect 400 "id of the wrong type"
http PUT "/v1/devices/%00" "${A[@]}" -d name=x
[ "$HTTP_STATUS" = 400 ] || [ "$HTTP_STATUS" = 404 ] || fail "NUL in the path: $HTTP_STATUS"
kill -0 "$CINDERD_PID" || fail "cinderd died on hostile input"

stop_cinderd
echo "PASS: $T_NAME"
