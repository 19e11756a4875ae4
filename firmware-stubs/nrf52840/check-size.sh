#!/bin/sh
# SPDX-License-Identifier: MIT
# Size budget of the nRF52840 stub image: print the section sizes of the
# cross-built ELF and fail if flash (text + data) exceeds 128 KB or RAM
# (data + bss, the 8 KB stack included) exceeds 32 KB. Skipped (77) when
# configure found no arm-none-eabi toolchain.
set -eu

builddir=${top_builddir:-.}
elf=$builddir/firmware-stubs/nrf52840/cinder-nrf52840.elf
flash_max=131072
ram_max=32768

# The toolchain configure found (empty when HAVE_ARM is false).
arm_size=$(sed -n 's/^ARM_SIZE = //p' "$builddir/Makefile" 2>/dev/null || true)
if [ -z "$arm_size" ]; then
	echo "SKIP: arm-none-eabi toolchain not configured"
	exit 77
fi
if [ ! -f "$elf" ]; then
	echo "FAIL: $elf was not built"
	exit 1
fi

"$arm_size" "$elf"
set -- $("$arm_size" "$elf" | awk 'NR == 2 { print $1, $2, $3 }')
text=$1 data=$2 bss=$3
flash=$((text + data))
ram=$((data + bss))
echo "flash: $flash of $flash_max bytes; RAM: $ram of $ram_max bytes"

rc=0
if [ "$flash" -gt "$flash_max" ]; then
	echo "FAIL: flash over budget by $((flash - flash_max)) bytes"
	rc=1
fi
if [ "$ram" -gt "$ram_max" ]; then
	echo "FAIL: RAM over budget by $((ram - ram_max)) bytes"
	rc=1
fi
exit $rc
