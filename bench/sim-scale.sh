#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale check, not part of `make check`: N simulated devices (default
# 10000) connect to one cinderd at once; reports how long until all are
# online, handshakes per second, and cinderd's RSS per session.
#   bench/sim-scale.sh [N]          (from a build dir, or set top_builddir)
# Runs under its own throwaway PostgreSQL (tests/with-pg). Keys are
# registered in bulk with SQL (registering 10,000 devices one CLI call at a
# time would take minutes). One source address is enough: 10,000
# connections fit in the ephemeral port range.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
export top_builddir=${top_builddir:-$PWD}
N=${1:-10000}
if [ -z "${CINDER_TEST_PGHOST:-}" ]; then
	exec "$top_srcdir/tests/with-pg" "$0" "$@"
fi
. "$top_srcdir/tests/integ/lib.sh"
[ -x "$CINDERD" ] && [ -x "$SIM" ] ||
	{ echo "sim-scale: no $CINDERD or $SIM: run it from a build directory" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
integ_init
printf "log_level notice\n" >>"$T_DIR/cinder.conf"
start_cinderd
rss() { awk '/VmRSS/ {print $2}' "/proc/$CINDERD_PID/status"; }
rss0=$(rss)

t0=$(date +%s.%N)
"$SIM" provision --count "$N" --dir "$T_DIR/d" >/dev/null || fail "provision"
t1=$(date +%s.%N)
{
	echo "COPY devices (device_id, public_key) FROM STDIN WITH (FORMAT csv);"
	while read -r id; do
		printf '%s,"%s"\n' "$id" "$(cat "$T_DIR/d/$id.pub.pem")"
	done <"$T_DIR/d/devices.txt"
	echo '\.'
} | psql -X -q -h "$CINDER_TEST_PGHOST" -p "$CINDER_TEST_PGPORT" \
	-U "$CINDER_TEST_PGUSER" -d "$T_DB" >/dev/null || fail "bulk register"
t2=$(date +%s.%N)
sim_run all "$T_DIR/d" --app tinker
WAIT_S=600 wait_for health_at_least online "$N" || fail "only $(health online) of $N online"
t3=$(date +%s.%N)
rss1=$(rss)
# The server's view: first to last "online" line (the simulator's own start,
# parsing N private keys, is not the server's time).
win=$(grep ' online from ' "$T_DIR/cinderd.log" | awk '{print $1}' |
	python3 -c 'import sys,datetime as d
t=[d.datetime.fromisoformat(l.strip().rstrip("Z")) for l in sys.stdin]
print("%.2f" % (max(t)-min(t)).total_seconds())')
hs=$(health handshakes_ok)
fails=$(health handshakes_failed)
awk -v n="$N" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v win="$win" \
	-v r0="$rss0" -v r1="$rss1" -v hs="$hs" -v f="$fails" 'BEGIN {
	printf "devices %d: keys %.1f s, register %.1f s, all online in %.2f s (%.0f handshakes/s), %d handshakes, %d failed\n",
		n, t1 - t0, t2 - t1, t3 - t2, n / (t3 - t2), hs, f;
	printf "server side: first to last session online %.2f s (%.0f handshakes/s)\n",
		win, n / (win > 0 ? win : 1);
	printf "cinderd RSS %d KiB idle -> %d KiB with %d sessions: %.2f KiB per session\n",
		r0, r1, n, (r1 - r0) / n;
}'
stop_cinderd
