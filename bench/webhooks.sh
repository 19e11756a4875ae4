#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# B5 webhooks, not part of `make check`. Prints:
#   - deliveries per cinderd CPU-second to a local keep-alive sink: N API
#     events are published once with no webhook and once with one
#     matching webhook; the difference in cinderd's CPU time (user +
#     system, /proc) is the cost of N deliveries (durable: an INSERT and a
#     DELETE in PostgreSQL each, one HTTP request);
#   - p50/p99 from publish to the request reaching the sink, at full speed
#     and at a light paced rate;
#   - cinderd's RSS while a sink stalls (accepts, never answers).
#   bench/webhooks.sh [N]     (from a build dir, default N 20000)
# Runs under its own throwaway PostgreSQL (tests/with-pg).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
export top_builddir=${top_builddir:-$PWD}
N=${1:-20000}
if [ -z "${CINDER_TEST_PGHOST:-}" ]; then
	exec "$top_srcdir/tests/with-pg" "$0" "$@"
fi
. "$top_srcdir/tests/integ/lib.sh"
. "$top_srcdir/tests/integ/webhook_lib.sh"
LOADGEN=$top_builddir/bench/cinder-loadgen
for x in "$CINDERD" "$LOADGEN"; do
	[ -x "$x" ] || { echo "webhooks bench: no $x: run it from a build directory" >&2; exit 2; }
done
integ_init
cat >>"$T_DIR/cinder.conf" <<CONF
log_level notice
rate_limits all=100000000,token=100,lock=10
webhook_allow_nets 127.0.0.1/32
webhook_queue_max 1000000
webhook_max_inflight 64
webhook_user_inflight 256
CONF
start_cinderd
user_token bench && TOK=$TOKEN || fail "token"
cpu() { awk '{print $14 + $15}' "/proc/$CINDERD_PID/stat"; } # clock ticks
hz=$(getconf CLK_TCK)
rss() { awk '/VmRSS/ {print $2}' "/proc/$CINDERD_PID/status"; }
bsink() { # bsink NAME [--stall]: sets BPORT_NAME, BPID_NAME
	local name=$1
	shift
	"$LOADGEN" sink --port-file "$T_DIR/$name.port" \
		--stats-file "$T_DIR/$name.stats" "$@" &
	T_PIDS+=("$!")
	printf -v "BPID_$name" '%s' "$!"
	wait_for test -s "$T_DIR/$name.port" || fail "sink $name"
	printf -v "BPORT_$name" '%s' "$(cat "$T_DIR/$name.port")"
}
pub() { # pub NAME N CONNS RATE: prints the wall time
	"$LOADGEN" events --api "127.0.0.1:$API_PORT" --token "$TOK" \
		--name "$1" --events "$2" --concurrency "$3" --rate "$4" \
		--seconds 600 | sed -n 's/.*"elapsed_s":\([0-9.]*\).*/\1/p'
	[ "${PIPESTATUS[0]}" = 0 ]
}
sink_stats() { # sink_stats NAME: "count p50 p99" so far
	local pid="BPID_$1"
	rm -f "$T_DIR/$1.stats"
	kill -USR1 "${!pid}"
	wait_for test -s "$T_DIR/$1.stats"
	cat "$T_DIR/$1.stats"
}
rows() { sql "SELECT count(*) FROM webhook_deliveries"; }

bsink fast
# 1. baseline: N publishes nobody listens to
c0=$(cpu)
tb=$(pub bench/none "$N" 4 0) || fail "publish"
c1=$(cpu)
# 2. the same with a webhook
hook "$TOK" "{\"event\":\"bench/hook\",\"url\":\"http://127.0.0.1:$BPORT_fast/in\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
H=$HOOK_ID
c2=$(cpu)
t0=$(date +%s.%N)
tw=$(pub bench/hook "$N" 4 0) || fail "publish"
WAIT_S=600 wait_for counter_at_least "$TOK" "$H" ok "$N" || fail "not all delivered: $(counter "$TOK" "$H" ok)"
t1=$(date +%s.%N)
c3=$(cpu)
WAIT_S=60 wait_for out_is 0 rows || fail "rows left"
read -r cnt p50 p99 _ < <(sink_stats fast)
base=$(( c1 - c0 ))
with=$(( c3 - c2 ))
per_s=$(awk -v n="$N" -v d="$(( with - base ))" -v hz="$hz" 'BEGIN { if (d <= 0) print "inf"; else printf "%d", n / (d / hz) }')
echo "B5 webhooks, N=$N"
echo "  publish only:        $(awk -v t="$base" -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}') cinderd CPU-s, $tb s wall"
echo "  publish + deliver:   $(awk -v t="$with" -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}') cinderd CPU-s, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s wall to the last delivery"
echo "  deliveries per cinderd CPU-second (difference): $per_s"
echo "  event -> request at full speed: p50 ${p50} ms, p99 ${p99} ms ($cnt requests)"

# 3. light load: 1000 events at 100/s
kill "$BPID_fast"; wait "$BPID_fast" 2>/dev/null
bsink light
http DELETE "/v1/webhooks/$H" -H "Authorization: Bearer $TOK"
hook "$TOK" "{\"event\":\"bench/light\",\"url\":\"http://127.0.0.1:$BPORT_light/in\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
pub bench/light 1000 1 100 >/dev/null || fail "publish"
WAIT_S=60 wait_for counter_at_least "$TOK" "$HOOK_ID" ok 1000 || fail "light: not all delivered"
read -r cnt p50 p99 _ < <(sink_stats light)
echo "  event -> request at 100 events/s: p50 ${p50} ms, p99 ${p99} ms ($cnt requests)"

# 4. a stalled sink: the queue grows in PostgreSQL, memory stays bounded
bsink stall --stall 1
hook "$TOK" "{\"event\":\"bench/stall\",\"url\":\"http://127.0.0.1:$BPORT_stall/in\",\"body\":\"{{{PARTICLE_EVENT_VALUE}}}\",\"noDefaults\":true}"
r0=$(rss)
pub bench/stall "$N" 4 0 >/dev/null || fail "publish"
WAIT_S=120 wait_for out_at_least "$N" rows || fail "stall: rows $(rows)"
r1=$(rss)
echo "  stalled sink: RSS ${r0} KiB before, ${r1} KiB with $N deliveries queued ($(counter "$TOK" "$HOOK_ID" in_flight) in flight)"
stop_cinderd 2>/dev/null || true
