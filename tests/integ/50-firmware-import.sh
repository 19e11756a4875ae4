#!/bin/bash
# SPDX-License-Identifier: MIT
# `cinderd firmware import` against a real PostgreSQL: modules made with
# `cinderd firmware make-module` are stored once per SHA-256 with their
# header columns and grouped in a release; importing again changes
# nothing; a bad file (CRC, truncated, user part, bad release name)
# refuses the whole import with a clear message and stores nothing;
# prereleases are flagged. Then the REST listing shows them.
set -u
. "$(dirname "$0")/lib.sh"
integ_init

mk() { # mk FILE ARGS...: build a module with the CLI
	local out=$T_DIR/$1
	shift
	"$CINDERD" firmware make-module -o "$out" "$@" || fail "make-module $*"
}
count() { sql "SELECT count(*) FROM $1"; }

cinderd_cmd migrate >/dev/null || fail "migrate"

# The gcc virtual device (cinder-sim), Device OS 1.5.2.
mk b.bin --platform 3 --function bootloader --index 0 --version 501
mk s1.bin --platform 3 --function system_part --index 1 --version 1512 --size 4096
mk s2.bin --platform 3 --function system_part --index 2 --version 1512 \
	--dep s:1:1512 --dep b:0:400 --size 4096
mk s3.bin --platform 3 --function system_part --index 3 --version 1512 \
	--dep s:2:1512 --size 4096

out=$(cinderd_cmd firmware import "$T_DIR/b.bin" "$T_DIR/s1.bin" \
	"$T_DIR/s2.bin" "$T_DIR/s3.bin" --release 1.5.2 2>&1) ||
	fail "import: $out"
[ "$(echo "$out" | grep -c ': stored ')" = 4 ] || fail "import output: $out"
[ "$(count firmware_images)" = 4 ] || fail "images not stored"
[ "$(sql "SELECT module_function || '/' || module_index || '/' || module_version || '/' || dep1_function || ':' || dep1_index || ':' || dep1_version || '/' || dep2_function || ':' || dep2_index || ':' || dep2_version || '/' || size || '/' || prefix_offset || '/' || to_hex(start_address) FROM firmware_images WHERE name = 's2.bin'")" = \
	"4/2/1512/4:1:1512/2:0:400/4096/0/8040000" ] || fail "s2 header columns"
[ "$(sql "SELECT encode(sha256, 'hex') FROM firmware_images WHERE name = 's2.bin'")" = \
	"$(sha256sum "$T_DIR/s2.bin" | cut -d' ' -f1)" ] || fail "not addressed by SHA-256"
[ "$(sql "SELECT octet_length(bytes) = size FROM firmware_images WHERE name = 's1.bin'")" = t ] ||
	fail "bytes"
[ "$(sql "SELECT platform_id || ' ' || version || ' ' || prerelease FROM device_os_releases")" = \
	"3 1.5.2 false" ] || fail "release row"
[ "$(count device_os_release_modules)" = 4 ] || fail "release membership"
[ "$(sql "SELECT version FROM device_os_versions WHERE module_function = 4 AND module_index = 2")" = 1.5.2 ] ||
	fail "device_os_versions name"

# Idempotent.
out=$(cinderd_cmd firmware import "$T_DIR/s2.bin" --release 1.5.2 2>&1) || fail "re-import: $out"
echo "$out" | grep -q 'already stored' || fail "re-import output: $out"
[ "$(count firmware_images)" = 4 ] && [ "$(count device_os_release_modules)" = 4 ] ||
	fail "re-import changed rows"

# Bad files refuse the whole import.
mk new.bin --platform 3 --function system_part --index 1 --version 1600 --size 2048
cp "$T_DIR/s1.bin" "$T_DIR/crc.bin"
printf '\xff' | dd of="$T_DIR/crc.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$(cinderd_cmd firmware import "$T_DIR/new.bin" "$T_DIR/crc.bin" --release 1.6.0 2>&1) &&
	fail "a bad CRC was accepted"
echo "$out" | grep -q 'crc.bin: CRC mismatch' || fail "CRC message: $out"
echo "$out" | grep -q 'nothing stored' || fail "nothing-stored message: $out"
head -c 1000 "$T_DIR/s1.bin" >"$T_DIR/short.bin"
out=$(cinderd_cmd firmware import "$T_DIR/short.bin" 2>&1) && fail "truncated file accepted"
echo "$out" | grep -q 'length mismatch' || fail "truncated message: $out"
head -c 3000 /dev/urandom >"$T_DIR/garbage.bin"
out=$(cinderd_cmd firmware import "$T_DIR/garbage.bin" 2>&1) && fail "garbage accepted"
echo "$out" | grep -q 'not a module file' || fail "garbage message: $out"
mk app.bin --platform 3 --function user_part --index 1 --version 6 --dep s:2:1512
out=$(cinderd_cmd firmware import "$T_DIR/app.bin" 2>&1) && fail "user part accepted"
echo "$out" | grep -q 'user part' || fail "user part message: $out"
out=$(cinderd_cmd firmware import "$T_DIR/new.bin" --release 1.6 2>&1) && fail "bad release accepted"
echo "$out" | grep -q 'not a release version' || fail "release message: $out"
out=$(cinderd_cmd firmware import "$T_DIR/missing.bin" 2>&1) && fail "missing file accepted"
[ "$(count firmware_images)" = 4 ] && [ "$(count device_os_releases)" = 1 ] ||
	fail "a refused import stored something"

# A prerelease, and a Photon release.
out=$(cinderd_cmd firmware import "$T_DIR/new.bin" --release 2.0.0-rc.1 2>&1) || fail "rc: $out"
[ "$(sql "SELECT prerelease FROM device_os_releases WHERE version = '2.0.0-rc.1'")" = t ] ||
	fail "prerelease flag"
mk p1.bin --platform 6 --function system_part --index 1 --version 1512 --dep s:2:207
out=$(cinderd_cmd firmware import "$T_DIR/p1.bin" --release 1.5.2 2>&1) || fail "photon: $out"

# REST listing.
start_cinderd
http POST /v1/users -d username=admin@example.com -d password=adminpass1
[ "$HTTP_STATUS" = 200 ] || fail "sign-up: $HTTP_STATUS"
login admin@example.com adminpass1
AUTH=(-H "Authorization: Bearer $TOKEN")

http GET /v1/device-os/versions
[ "$HTTP_STATUS" = 401 ] || fail "listing without a token: $HTTP_STATUS"
http GET /v1/device-os/versions "${AUTH[@]}"
[ "$HTTP_STATUS" = 200 ] || fail "list: $HTTP_STATUS $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '.__len__()')" = 2 ] || fail "list without prereleases: $HTTP_BODY"
http GET '/v1/device-os/versions?prerelease=true&platform_id=3' "${AUTH[@]}"
[ "$(json_get "$HTTP_BODY" '[0]["version"]')" = 2.0.0-rc.1 ] || fail "rc first: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '[1]["module_count"]')" = 4 ] || fail "module_count: $HTTP_BODY"
http GET '/v1/device-os/versions?platform_id=6' "${AUTH[@]}"
[ "$(json_get "$HTTP_BODY" '[0]["platform_id"]')" = 6 ] &&
	[ "$(json_get "$HTTP_BODY" '.__len__()')" = 1 ] || fail "platform filter: $HTTP_BODY"
http GET '/v1/device-os/versions?platform_id=x' "${AUTH[@]}"
[ "$HTTP_STATUS" = 400 ] || fail "bad platform_id: $HTTP_STATUS"

http GET '/v1/device-os/versions/1.5.2?platform_id=3' "${AUTH[@]}"
[ "$HTTP_STATUS" = 200 ] || fail "version: $HTTP_STATUS $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["modules"].__len__()')" = 4 ] || fail "modules: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["modules"][0]["function"]')" = bootloader ] || fail "order: $HTTP_BODY"
[ "$(json_get "$HTTP_BODY" '["modules"][2]["dependencies"][1]["v"]')" = 400 ] ||
	fail "dependencies: $HTTP_BODY"
http GET /v1/device-os/versions/1.5.2 "${AUTH[@]}"
[ "$(json_get "$HTTP_BODY" '.__len__()')" = 2 ] || fail "both platforms: $HTTP_BODY"
http GET '/v1/device-os/versions/9.9.9?platform_id=3' "${AUTH[@]}"
[ "$HTTP_STATUS" = 404 ] || fail "unknown version: $HTTP_STATUS"
stop_cinderd
echo "PASS: $T_NAME"
