#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/compat/install.sh: install the pinned particle-cli,
# particle-api-js and binary-version-reader (Particle's module parser)
# into tests/compat/node_modules with `npm ci` (from
# package-lock.json) unless they are there already. Install scripts are
# not run: nothing may be fetched from outside the npm registry, and the
# commands the tests use need no native module. Exits 77 (skip) without
# node/npm, 1 when the install fails. execa is pinned here because
# particle-cli 3.43.1 requires it at run time (its `flash` command loads
# it) but lists it only as a development dependency.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "SKIP: node and npm are needed for the compatibility tests" >&2
	exit 77
fi
if [ -f "$here/node_modules/particle-cli/package.json" ] &&
	[ -f "$here/node_modules/particle-api-js/package.json" ] &&
	[ -f "$here/node_modules/binary-version-reader/package.json" ] &&
	[ -f "$here/node_modules/execa/package.json" ]; then
	exit 0
fi
cd "$here" || exit 1
# one installer at a time (make -j runs several compat tests)
exec 9>"${TMPDIR:-/tmp}/cinder-compat-npm.lock"
flock 9
[ -f node_modules/particle-cli/package.json ] &&
	[ -f node_modules/binary-version-reader/package.json ] &&
	[ -f node_modules/execa/package.json ] && exit 0
timeout 900 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error ||
	{ echo "npm ci failed" >&2; exit 1; }
