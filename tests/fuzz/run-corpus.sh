#!/bin/sh
# SPDX-License-Identifier: MIT
# Replay every seed corpus through its fuzz target, so that each target is
# a regression test in `make check`. Convention: the program
# tests/fuzz/fuzz_<name> (built by mk/*.am with tests/fuzz/standalone.c,
# or as a libFuzzer binary with --enable-fuzzing) replays the files of
# tests/fuzz/corpus/<name>/. Files are passed one by one: given a
# directory, libFuzzer would start fuzzing instead of replaying.
set -u
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
status=0
ran=0

for dir in "$srcdir"/tests/fuzz/corpus/*/; do
	[ -d "$dir" ] || continue
	name=$(basename "$dir")
	bin="$builddir/tests/fuzz/fuzz_$name"
	if [ ! -x "$bin" ]; then
		# Its owner has not wired the program up yet: say so loudly,
		# but do not fail the other corpora for it.
		echo "SKIP: $name: $bin is not built (add it to mk/fuzz.am)"
		continue
	fi
	files=$(find "$dir" -type f ! -name '.*' | sort)
	if [ -z "$files" ]; then
		echo "FAIL: $name: empty corpus"
		status=1
		continue
	fi
	# Corpus file names contain no spaces, so word splitting is safe.
	# shellcheck disable=SC2086
	if "$bin" $files >"$builddir/tests/fuzz/$name.replay.log" 2>&1; then
		echo "PASS: $name ($(echo "$files" | wc -l) inputs)"
	else
		echo "FAIL: $name (see tests/fuzz/$name.replay.log)"
		tail -n 20 "$builddir/tests/fuzz/$name.replay.log"
		status=1
	fi
	ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "no fuzz target replayed"; exit 77; }
exit $status
