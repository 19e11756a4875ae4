#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cinder's module parser and healer planner against Particle's
# binary-version-reader (HalModuleParser, HalDependencyResolver, the
# package's own test-image helper and describe fixtures): see
# modules.js. Needs no database; skips (77) without node or the modules.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$here/../..}"
CINDERD=${CINDERD:-$top_builddir/src/cinderd}
case $CINDERD in /*) ;; *) CINDERD=$PWD/$CINDERD ;; esac
"$here/install.sh" || exit $?
if ! command -v node >/dev/null || [ ! -d "$here/node_modules/binary-version-reader" ]; then
	echo "SKIP: node and tests/compat/node_modules are needed" >&2
	exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/cinder-modules.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$here" || exit 1
node "$here/modules.js" "$CINDERD" "$work" || exit 1
echo "PASS: modules"
