# SPDX-License-Identifier: MIT
# Shared by the healer tests (56-*, 57-*, 58-*, 59-*); source it after
# lib.sh. The simulator, system parts of a Device OS "1.5.2" for the
# simulator's platform (3), provisioning and logging in.

SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}
[ -x "$SIM" ] || fail "no $SIM"

mk() { "$CINDERD" firmware make-module "$@" >/dev/null || fail "make-module $*"; }

# make_parts SEED [make-module options]: $T_DIR/s1.bin and s2.bin, system
# parts 1 and 2 at module version 1512; part 2 needs part 1 at 1512 (the
# dependency shape of real Device OS and of cinder-sim's module table).
make_parts() {
	local seed=$1
	shift
	mk -o "$T_DIR/s1.bin" --platform 3 --function system_part --index 1 \
		--version 1512 --dep bootloader:0:400 --seed "$seed" "$@"
	mk -o "$T_DIR/s2.bin" --platform 3 --function system_part --index 2 \
		--version 1512 --dep system_part:1:1512 --dep bootloader:0:400 \
		--seed $((seed + 1)) "$@"
}

# import_parts RELEASE: `cinderd firmware import` of the two parts.
import_parts() {
	cinderd_cmd firmware import "$T_DIR/s1.bin" "$T_DIR/s2.bin" \
		--release "$1" >/dev/null || fail "import $1"
}

# provision NAME PREFIX: one device of alice@example.com in $T_DIR/NAME;
# prints its id.
provision() {
	"$SIM" provision --count 1 --dir "$T_DIR/$1" --cinderd "$CINDERD" \
		--config "$T_DIR/cinder.conf" --owner alice@example.com \
		--prefix "$2" >/dev/null || fail "provision $1"
	head -1 "$T_DIR/$1/devices.txt"
}

# event_stream PATH: the owner's event stream at PATH (with the token in
# A), written to $T_DIR/sse.out until the test ends.
event_stream() {
	curl -sS -N "${A[@]}" "$API$1" >"$T_DIR/sse.out" 2>/dev/null &
	T_PIDS+=("$!")
}
