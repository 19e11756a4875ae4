# SPDX-License-Identifier: MIT
# Helpers for integration tests: a database of their own on the harness
# PostgreSQL (tests/with-pg), a cinderd on ephemeral ports, HTTP with curl.
# Source it from bash after `set -u`. Every helper fails loudly.
# Environment: top_srcdir, top_builddir (from automake), CINDER_TEST_PGHOST,
# CINDER_TEST_PGPORT, CINDER_TEST_PGUSER (from tests/with-pg).

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
CINDERD=${CINDERD:-$top_builddir/src/cinderd}
TESTDEV=${TESTDEV:-$top_builddir/tests/integ/testdev}
T_NAME=$(basename "$0" .sh)
T_DIR=$top_builddir/tmp/$T_NAME.$$
T_PIDS=()

# python3 for the JSON helpers (json_get runs inside wait_for's loops) and
# the test receivers, found once: Debian's own when it is there
# (scripts/deps --test installs it), else the interpreter behind `python3`.
# A version manager's shim (pyenv's runs three bash scripts a call) cost
# ~0.45 CPU-s a call against ~0.04 for /usr/bin/python3, and tests call it
# hundreds of times. It is put first on PATH as a link in the build
# directory, so that every `python3`, in the background too ($! is the
# interpreter's pid), is the interpreter itself.
if [ -z "${CINDER_PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then
		CINDER_PYTHON=/usr/bin/python3
	else
		CINDER_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) ||
			CINDER_PYTHON=$(command -v python3)
	fi
	export CINDER_PYTHON
fi
T_BIN=$top_builddir/tmp/bin
if [ "$(readlink "$T_BIN/python3" 2>/dev/null)" != "$CINDER_PYTHON" ]; then
	mkdir -p "$T_BIN" && ln -sfn "$CINDER_PYTHON" "$T_BIN/python3.$$" &&
		mv -f "$T_BIN/python3.$$" "$T_BIN/python3" ||
		{ echo "FAIL: $T_NAME: could not link python3 into $T_BIN" >&2; exit 1; }
fi
PATH=$T_BIN:$PATH

fail() { echo "FAIL: $T_NAME: $*" >&2; [ -f "$T_DIR/cinderd.log" ] && tail -n 30 "$T_DIR/cinderd.log" >&2; exit 1; }
note() { echo "# $*"; }

integ_cleanup() {
	local p
	for p in "${T_PIDS[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	done
	if [ -n "${T_DB:-}" ] && [ -n "${CINDER_TEST_PGHOST:-}" ]; then
		psql -X -q -h "$CINDER_TEST_PGHOST" -p "$CINDER_TEST_PGPORT" \
			-U "$CINDER_TEST_PGUSER" -d postgres \
			-c "DROP DATABASE IF EXISTS $T_DB WITH (FORCE)" >/dev/null 2>&1
	fi
	[ "${T_KEEP:-0}" = 1 ] || rm -rf "$T_DIR"
}

# integ_init: make the scratch directory and the database; skip (77)
# when the harness PostgreSQL is absent.
integ_init() {
	if [ -z "${CINDER_TEST_PGHOST:-}" ]; then
		echo "SKIP: $T_NAME needs PostgreSQL: run under tests/with-pg" >&2
		exit 77
	fi
	mkdir -p "$T_DIR"
	trap integ_cleanup EXIT
	T_DB="t_${T_NAME//[^a-zA-Z0-9]/_}_$$"
	psql -X -q -h "$CINDER_TEST_PGHOST" -p "$CINDER_TEST_PGPORT" \
		-U "$CINDER_TEST_PGUSER" -d postgres \
		-c "CREATE DATABASE $T_DB" >/dev/null || fail "createdb"
	T_CONNINFO="host=$CINDER_TEST_PGHOST port=$CINDER_TEST_PGPORT user=$CINDER_TEST_PGUSER dbname=$T_DB"
	cat >"$T_DIR/cinder.conf" <<CONF
database_url "$T_CONNINFO"
device_listen 127.0.0.1:0
api_listen 127.0.0.1:0
server_key $T_DIR/server_key.pem
sql_dir $top_srcdir/sql
log_level info
CONF
}

# compat_init [NAME]: the start of a tests/compat script: skip (77)
# without the harness PostgreSQL or without node; install the npm
# packages from the lock file (tests/compat/install.sh); integ_init.
# NM is the node_modules folder.
compat_init() {
	if [ -n "${1:-}" ]; then
		T_NAME=$1
		T_DIR=$top_builddir/tmp/$T_NAME.$$
	fi
	if [ -z "${CINDER_TEST_PGHOST:-}" ]; then
		echo "SKIP: $T_NAME needs PostgreSQL: run under tests/with-pg" >&2
		exit 77
	fi
	NM=$top_srcdir/tests/compat/node_modules
	"$top_srcdir/tests/compat/install.sh" || exit $?
	integ_init
}

# particle_cli [TOKEN USER]: a private $HOME whose particle-cli profile
# points at this cinderd (logged in as USER when a TOKEN is given), and
# CLI, which runs that particle-cli (60 s at most, no stdin).
particle_cli() {
	export HOME=$T_DIR/home PARTICLE_DISABLE_UPDATE=true NO_COLOR=1
	mkdir -p "$HOME/.particle"
	if [ -n "${1:-}" ]; then
		printf '{"apiUrl":"%s","access_token":"%s","username":"%s"}\n' \
			"$API" "$1" "${2:-}" >"$HOME/.particle/particle.config.json"
	else
		printf '{"apiUrl":"%s"}\n' "$API" >"$HOME/.particle/particle.config.json"
	fi
}
CLI() { timeout 60 node "$NM/particle-cli/src/index.js" "$@" </dev/null; }

# private_pg DBNAME: for tests that stop and start PostgreSQL: a
# cluster of the test's own in $T_DIR/pg (tests/pgcluster.sh; stopped
# on exit) with database DBNAME, which cinder.conf and sql now use.
# Sets pgdir (for pgcluster_stop/pgcluster_start) and dbconn. On exit
# the cluster is destroyed, also where pgcluster.sh put its files in a
# short directory of /tmp (a long $T_DIR: the socket path's limit), unless
# T_KEEP=1 keeps the test's files.
private_pg() {
	. "$top_srcdir/tests/pgcluster.sh"
	pgdir=$T_DIR/pg
	pgcluster_start "$pgdir" || fail "private cluster did not start"
	trap 'if [ "${T_KEEP:-0}" = 1 ]; then
		pgcluster_stop "$pgdir" >/dev/null 2>&1
	else
		pgcluster_destroy "$pgdir" >/dev/null 2>&1
	fi; integ_cleanup' EXIT
	local pgconn
	pgconn=$(pgcluster_conninfo "$pgdir")
	psql -X -q "$pgconn" -c "CREATE DATABASE $1" >/dev/null || fail "createdb $1"
	dbconn=${pgconn/dbname=postgres/dbname=$1}
	sed -i "s|^database_url .*|database_url \"$dbconn\"|" "$T_DIR/cinder.conf"
	sql() { psql -X -q -At "$dbconn" -c "$1"; }
}

# sql QUERY: run a query on the test database, print tuples unaligned.
sql() {
	psql -X -q -At -h "$CINDER_TEST_PGHOST" -p "$CINDER_TEST_PGPORT" \
		-U "$CINDER_TEST_PGUSER" -d "$T_DB" -c "$1"
}

cinderd_cmd() { "$CINDERD" "$@" -c "$T_DIR/cinder.conf"; }

# wait_for CMD...: retry a command for up to WAIT_S (default 20) seconds.
# The clock is bash's own $SECONDS: no process per try beyond the command
# and the sleep.
wait_for() {
	local deadline=$((SECONDS + ${WAIT_S:-20}))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

log_has() { grep -q -- "$1" "$T_DIR/cinderd.log"; }

# server_key_copy: put the server key files in $T_DIR. The key is made
# once per build directory and copied: an RSA-2048 keygen costs 0.2-0.7
# CPU-s, and no test needs a key of its own (01-daemon.sh runs keygen
# itself).
server_key_copy() {
	local cache=$top_builddir/tmp/server-key f
	mkdir -p "$cache" || fail "mkdir $cache"
	(
		flock 9
		[ -f "$cache/server_key.pub.pem" ] && exit 0
		sed "s|^server_key .*|server_key $cache/server_key.pem|" \
			"$T_DIR/cinder.conf" >"$cache/keygen.conf" &&
			"$CINDERD" keygen -c "$cache/keygen.conf" >/dev/null
	) 9>"$cache.lock" || fail "keygen"
	for f in server_key.pem server_key.pub.der server_key.pub.pem; do
		cp -p "$cache/$f" "$T_DIR/$f" || fail "copy $f"
	done
}

# start_cinderd [FLAGS...]: the server key if there is none, start, wait for
# the ready line, set CINDERD_PID, DEV_PORT and API_PORT.
start_cinderd() {
	[ -f "$T_DIR/server_key.pem" ] || server_key_copy
	: >"$T_DIR/cinderd.log"
	"$CINDERD" run -c "$T_DIR/cinder.conf" "$@" >>"$T_DIR/cinderd.log" 2>&1 &
	CINDERD_PID=$!
	T_PIDS+=("$CINDERD_PID")
	wait_for log_has "ready: devices on port" || fail "cinderd did not become ready"
	DEV_PORT=$(sed -n 's/.*ready: devices on port \([0-9]*\), API on port \([0-9]*\).*/\1/p' "$T_DIR/cinderd.log" | tail -1)
	API_PORT=$(sed -n 's/.*ready: devices on port \([0-9]*\), API on port \([0-9]*\).*/\2/p' "$T_DIR/cinderd.log" | tail -1)
	[ -n "$DEV_PORT" ] && [ -n "$API_PORT" ] || fail "no ports in the ready line"
	API="http://127.0.0.1:$API_PORT"
}

# stop_cinderd: SIGTERM and require a clean exit 0.
stop_cinderd() {
	local rc=0
	kill -TERM "$CINDERD_PID" || fail "cinderd is not running"
	wait "$CINDERD_PID" || rc=$?
	[ "$rc" -eq 0 ] || fail "cinderd exited $rc after SIGTERM"
}

# http METHOD PATH [curl args]: sets HTTP_STATUS and HTTP_BODY (not in a
# subshell, so call it directly, not as $(http ...)).
http() {
	local method=$1 path=$2 out
	shift 2
	HTTP_STATUS=000 HTTP_BODY=""
	out=$(curl -sS -X "$method" -w '\n%{http_code}' "$@" "$API$path") || return 1
	HTTP_STATUS=${out##*$'\n'}
	HTTP_BODY=${out%$'\n'*}
}

# json_get JSON EXPR: read a field with python3 (EXPR like ["devices"]["online"]).
json_get() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval("d"+sys.argv[2]))' "$1" "$2"
}

# expect STATUS WHAT: fail unless the last http call answered STATUS.
expect() { [ "$HTTP_STATUS" = "$1" ] || fail "$2: status $HTTP_STATUS, body $HTTP_BODY"; }

# field EXPR: a field of the last http call's JSON body.
field() { json_get "$HTTP_BODY" "$1"; }

# --- users ---
# add_user EMAIL PASSWORD [--admin]: create a user with `cinderd user add`.
add_user() {
	printf '%s\n' "$2" | cinderd_cmd user add "$1" ${3:-} >/dev/null ||
		fail "user add $1"
}

# login EMAIL PASSWORD: log in as the particle CLI does (cinderd must run)
# and set TOKEN to the access token. Call it directly, not as $(login ...),
# so that a refused login fails the test itself rather than a subshell.
login() {
	http POST /oauth/token -u particle:particle -d grant_type=password \
		-d "username=$1" -d "password=$2"
	expect 200 "login $1"
	TOKEN=$(field '["access_token"]')
}

# --- simulated devices (firmware-stubs/cinder-sim) ---
SIM=${SIM:-$top_builddir/firmware-stubs/cinder-sim}

# sim_provision DIR COUNT [--register] [extra provision flags]: make COUNT
# devices in DIR; --register also registers their keys with cinderd.
sim_provision() {
	local dir=$1 n=$2 reg=()
	shift 2
	if [ "${1:-}" = --register ]; then
		reg=(--cinderd "$CINDERD" --config "$T_DIR/cinder.conf")
		shift
	fi
	"$SIM" provision --count "$n" --dir "$dir" "${reg[@]}" "$@" >/dev/null ||
		fail "cinder-sim provision failed"
}

# sim_run NAME DIR [run flags]: start a simulator in the background with
# its output in $T_DIR/NAME.out; sets SIM_PID_<NAME>.
sim_run() {
	local name=$1 dir=$2
	shift 2
	"$SIM" run --dir "$dir" --server "127.0.0.1:$DEV_PORT" \
		--server-key "$T_DIR/server_key.pub.der" "$@" \
		</dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.err" &
	T_PIDS+=("$!")
	printf -v "SIM_PID_$name" '%s' "$!"
}

# sim_count NAME WORD: how many "WORD ..." lines the simulator printed.
sim_count() { grep -c "^$2 " "$T_DIR/$1.out" 2>/dev/null || true; }
sim_has_at_least() { [ "$(sim_count "$1" "$2")" -ge "$3" ]; }

# health FIELD: a field of /v1/ping's "devices" object.
health() {
	http GET /v1/ping
	json_get "$HTTP_BODY" "[\"devices\"][\"$1\"]"
}
health_at_least() { [ "$(health "$1")" -ge "$2" ]; }
# health_is FIELD VALUE / sql_is QUERY VALUE: conditions for wait_for, which
# runs them again on each try ("wait_for test "$(health x)" = 0" would
# compare the value read once, before the first try).
health_is() { [ "$(health "$1")" = "$2" ]; }
sql_is() { [ "$(sql "$1")" = "$2" ]; }
