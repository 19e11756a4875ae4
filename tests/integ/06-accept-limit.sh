#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# With its file descriptors used up, cinderd pauses the device port and
# tries again every 100 ms instead of calling accept() again at once (it
# spun at full CPU and logged a line per try, 39 MB in 3 s): the failure
# is logged once, a device already online stays online, and once
# descriptors are free the queued connections are taken and a new device
# comes online. The API port's libmicrohttpd stops listening when it
# runs out of descriptors, and listened again only when something else
# ran it after a connection closed: with none left, never.
set -u
. "$(dirname "$0")/lib.sh"
integ_init
command -v prlimit >/dev/null || fail "prlimit (util-linux) is missing"
sed -i 's/^log_level .*/log_level debug/' "$T_DIR/cinder.conf"
server_key_copy

# At start cinderd raises its soft open-files limit towards the hard one,
# as far as max_sessions + api_max_connections + 256 need, and warns
# when the hard limit is short of that.
nofile_soft() { awk '/^Max open files/ {print $4}' "/proc/$1/limits"; }
start_limited() {
	: >"$T_DIR/cinderd.log"
	prlimit --nofile="$1" "$CINDERD" run -c "$T_DIR/cinder.conf" \
		>>"$T_DIR/cinderd.log" 2>&1 &
	CINDERD_PID=$!
	T_PIDS+=("$CINDERD_PID")
	wait_for log_has "ready: devices on port" ||
		fail "cinderd did not become ready under prlimit $1"
}
start_limited 256:4096
[ "$(nofile_soft "$CINDERD_PID")" = 4096 ] ||
	fail "soft limit not raised to the hard 4096: $(nofile_soft "$CINDERD_PID")"
log_has "open-files limit raised from 256 to 4096" || fail "no line for the raise"
log_has "warn open-files limit 4096 is below the 201280" ||
	fail "no warning for a hard limit below max_sessions' need"
stop_cinderd
cp "$T_DIR/cinder.conf" "$T_DIR/cinder.conf.orig"
printf 'max_sessions 1000\napi_max_connections 100\n' >>"$T_DIR/cinder.conf"
start_limited 256:4096
[ "$(nofile_soft "$CINDERD_PID")" = 1356 ] ||
	fail "soft limit not 1000 + 100 + 256: $(nofile_soft "$CINDERD_PID")"
log_has "is below the" && fail "a warning with enough descriptors"
stop_cinderd
mv "$T_DIR/cinder.conf.orig" "$T_DIR/cinder.conf"

start_cinderd

sim_provision "$T_DIR/a" 1 --register
sim_provision "$T_DIR/b" 1 --register
a=$(head -1 "$T_DIR/a/devices.txt")
sim_run a "$T_DIR/a" --app testapp
WAIT_S=30 wait_for sim_has_at_least a ready 1 || fail "device a did not come online"

# use_up PORT: leave cinderd three descriptors more than it has open,
# then connect eight times to PORT: three are accepted, five wait in
# the kernel's queue and every accept() for them fails with EMFILE. The
# connections' descriptors go to the array held.
use_up() {
	local nfd lim i fd
	nfd=$(ls "/proc/$CINDERD_PID/fd" | wc -l)
	lim=$((nfd + 3))
	prlimit --pid "$CINDERD_PID" --nofile="$lim:" || fail "prlimit"
	held=()
	for i in 1 2 3 4 5 6 7 8; do
		exec {fd}<>"/dev/tcp/127.0.0.1/$1" || fail "connect $i to $1"
		held+=("$fd")
	done
}
use_up "$DEV_PORT"
failures_3() {
	[ "$(grep -c "device listener: accept failed" "$T_DIR/cinderd.log")" -ge 3 ]
}
# Each retry logs a debug line: three lines mean 200 ms of retries at
# the least. A listener that retried at once would have logged an error
# per try by then.
wait_for failures_3 ||
	fail "no accept failure logged with the descriptors used up"
n=$(grep -c "err device listener: accept failed: Too many open files" \
	"$T_DIR/cinderd.log")
[ "$n" = 1 ] || fail "the accept failure was logged $n times as an error"
kill -0 "$CINDERD_PID" || fail "cinderd died"

# Free them: the held connections close, the queued ones are accepted
# and closed, and device b comes online. Device a never went offline.
for fd in "${held[@]}"; do exec {fd}>&-; done
wait_for log_has "device listener: accepting again" ||
	fail "the device port did not accept again"
sim_run b "$T_DIR/b" --app testapp
WAIT_S=30 wait_for sim_has_at_least b ready 1 ||
	fail "device b did not come online after the descriptors were freed"
log_has "dev $a\] closed" && fail "device a lost its session"
[ "$(health online)" = 2 ] || fail "online is not 2: $HTTP_BODY"
[ "$(health accept_errors)" -ge 1 ] || fail "accept_errors not counted: $HTTP_BODY"

# The API port: the same shortage, then every connection closed.
use_up "$API_PORT"
wait_for log_has "resource limit" ||
	fail "libmicrohttpd never ran out of descriptors"
# Its connections close while cinderd is stopped, so that it reads every
# close in one run and has none left after it: then nothing but the fix
# runs libmicrohttpd again.
kill -STOP "$CINDERD_PID" || fail "SIGSTOP"
for fd in "${held[@]}"; do exec {fd}>&-; done
kill -CONT "$CINDERD_PID" || fail "SIGCONT"
out=$(curl -sS -m 10 "$API/v1/ping") ||
	fail "the API did not answer once its connections had closed"
case $out in *'"ok":true'*) ;; *) fail "ping after the shortage: $out" ;; esac
stop_cinderd
note "descriptors used up: one error line, retries every 100 ms, devices served after"
