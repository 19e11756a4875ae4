#!/bin/bash
# SPDX-License-Identifier: MIT
# POST /v1/device-os/versions: an administrator uploads module files as
# multipart/form-data; they are stored (idempotently) and grouped in the
# release given as "version". Non-administrators get 403; a bad file
# gets 400 naming the file and the failed check, and nothing of that
# upload is stored; no file, a user part or a bad version name get 400.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

mk() {
	local out=$T_DIR/$1
	shift
	"$CINDERD" firmware make-module -o "$out" "$@" || fail "make-module $*"
}
count() { sql "SELECT count(*) FROM $1"; }

mk b.bin --platform 10 --function bootloader --index 0 --version 1200 --size 2048
mk s1.bin --platform 10 --function system_part --index 1 --version 2000 --size 8192
mk s2.bin --platform 10 --function system_part --index 2 --version 2000 \
	--dep s:1:2000 --dep b:0:1200 --size 8192
mk app.bin --platform 10 --function user_part --index 1 --version 3 --dep s:2:2000
cp "$T_DIR/s2.bin" "$T_DIR/bad.bin"
printf '\x00\x00' | dd of="$T_DIR/bad.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null

start_cinderd
http POST /v1/users -d username=admin@example.com -d password=adminpass1
[ "$HTTP_STATUS" = 200 ] || fail "admin sign-up"
login admin@example.com adminpass1
ADMIN=$TOKEN
http POST /v1/users -H "Authorization: Bearer $ADMIN" \
	-d username=bob@example.com -d password=bobpass123
[ "$HTTP_STATUS" = 200 ] || fail "bob"
login bob@example.com bobpass123
BOB=$TOKEN
A=(-H "Authorization: Bearer $ADMIN")

http POST /v1/device-os/versions -H "Authorization: Bearer $BOB" \
	-F file=@"$T_DIR/s1.bin" -F version=2.0.0
[ "$HTTP_STATUS" = 403 ] || fail "non-admin upload: $HTTP_STATUS $HTTP_BODY"
[ "$(count firmware_images)" = 0 ] || fail "non-admin upload stored"

# A bad file among good ones: 400 with the reason, nothing stored.
http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/s1.bin" \
	-F file2=@"$T_DIR/bad.bin" -F version=2.0.0
[ "$HTTP_STATUS" = 400 ] || fail "bad file: $HTTP_STATUS $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["code"]')" = crc_mismatch ] || fail "code: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["file"]')" = bad.bin ] || fail "file: $HTTP_BODY"
json_get "$HTTP_BODY" '["error"]' | grep -q '^bad.bin: CRC mismatch' || fail "error: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["ok"]')" = False ] || fail "ok: $HTTP_BODY"
[ "$(count firmware_images)" = 0 ] && [ "$(count device_os_releases)" = 0 ] ||
	fail "a refused upload stored something"

http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/app.bin"
[ "$HTTP_STATUS" = 400 ] && [ "$(json_get "$HTTP_BODY" '["code"]')" = user_part ] ||
	fail "user part: $HTTP_STATUS $HTTP_BODY"
http POST /v1/device-os/versions "${A[@]}" -F version=2.0.0
[ "$HTTP_STATUS" = 400 ] || fail "no file: $HTTP_STATUS $HTTP_BODY"
http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/s1.bin" -F version=two
[ "$HTTP_STATUS" = 400 ] || fail "bad version: $HTTP_STATUS $HTTP_BODY"
head -c 5000 /dev/urandom >"$T_DIR/noise.bin"
http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/noise.bin"
[ "$HTTP_STATUS" = 400 ] && [ "$(json_get "$HTTP_BODY" '["code"]')" = not_a_module ] ||
	fail "noise: $HTTP_STATUS $HTTP_BODY"
[ "$(count firmware_images)" = 0 ] || fail "refused uploads stored something"

# The good upload.
http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/b.bin" \
	-F file2=@"$T_DIR/s1.bin" -F file3=@"$T_DIR/s2.bin" -F version=2.0.0
[ "$HTTP_STATUS" = 200 ] || fail "upload: $HTTP_STATUS $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["modules"].__len__()')" = 3 ] || fail "answer: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["modules"][2]["created"]')" = True ] || fail "created: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["modules"][2]["sha256"]')" = \
	"$(sha256sum "$T_DIR/s2.bin" | cut -d' ' -f1)" ] || fail "sha256: $HTTP_BODY"
[ "$(count firmware_images)" = 3 ] || fail "not stored"
[ "$(sql "SELECT count(*) FROM firmware_images i JOIN users u ON u.id = i.uploaded_by WHERE u.username = 'admin@example.com'")" = 3 ] ||
	fail "uploaded_by"
[ "$(count device_os_release_modules)" = 3 ] || fail "release membership"

# Again: idempotent, created false.
http POST /v1/device-os/versions "${A[@]}" -F file=@"$T_DIR/s2.bin" -F version=2.0.0
[ "$HTTP_STATUS" = 200 ] && [ "$(json_get "$HTTP_BODY" '["modules"][0]["created"]')" = False ] ||
	fail "re-upload: $HTTP_STATUS $HTTP_BODY"
[ "$(count firmware_images)" = 3 ] || fail "re-upload added rows"

http GET '/v1/device-os/versions/2.0.0?platform_id=10' "${A[@]}"
[ "$HTTP_STATUS" = 200 ] && [ "$(json_get "$HTTP_BODY" '["modules"].__len__()')" = 3 ] ||
	fail "release after upload: $HTTP_STATUS $HTTP_BODY"
# The daemon is still fine.
http GET /v1/ping
[ "$HTTP_STATUS" = 200 ] || fail "ping"
stop_cinderd
echo "PASS: $T_NAME"
