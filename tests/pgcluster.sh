# SPDX-License-Identifier: MIT
# Helpers to run a private, throwaway PostgreSQL cluster for tests.
# Source this file from bash; it defines functions only and changes no
# shell options. A cluster lives entirely in one directory DIR:
#   DIR/data  the data directory      DIR/sock  the Unix socket directory
#   DIR/log   the server log          DIR/port  the port number (socket name)
#   DIR/conninfo  libpq conninfo of the "postgres" maintenance database
# When DIR cannot hold the cluster (not reachable by the postgres user when
# running as root, or too long for a Unix socket path), the cluster lives in
# a directory under /tmp named in DIR/realdir; the functions follow it.
# The server listens on the Unix socket only (listen_addresses = ''), trusts
# local connections and runs with fsync off. When run as root, the server
# programs run as the "postgres" user (PostgreSQL refuses to run as root).

# Superuser name created by initdb; clients connect as this user.
PGCLUSTER_USER=${PGCLUSTER_USER:-postgres}

# pgcluster_find_bindir: set PGCLUSTER_BINDIR to a directory holding initdb,
# pg_ctl and postgres. Returns 1 when PostgreSQL's server programs are absent.
pgcluster_find_bindir() {
	local d cand
	if [ -n "${PGCLUSTER_BINDIR:-}" ] && [ -x "$PGCLUSTER_BINDIR/pg_ctl" ]; then
		return 0
	fi
	cand=""
	if command -v pg_config >/dev/null 2>&1; then
		cand="$(pg_config --bindir 2>/dev/null)"
	fi
	# Newest Debian version first.
	cand="$cand $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -rn)"
	for d in $cand; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			PGCLUSTER_BINDIR=$d
			return 0
		fi
	done
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		PGCLUSTER_BINDIR=$(dirname "$(command -v pg_ctl)")
		return 0
	fi
	return 1
}

# pgcluster_as_server CMD...: run a server program as the cluster owner.
pgcluster_as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# pgcluster_dir DIR: print where the cluster of DIR really lives.
pgcluster_dir() {
	if [ -f "$1/realdir" ]; then
		cat "$1/realdir"
	else
		echo "$1"
	fi
}

# pgcluster_init DIR: create the directory layout and run initdb.
pgcluster_init() {
	local top=$1 dir=$1 port
	if ! pgcluster_find_bindir; then
		echo "pgcluster: initdb/pg_ctl not found (install postgresql)" >&2
		return 1
	fi
	mkdir -p "$top" || return 1
	# Socket paths are limited to 107 bytes; root's server user must
	# reach the directory. Otherwise use a short directory under /tmp.
	if [ ${#top} -gt 60 ] || { [ "$(id -u)" -eq 0 ] &&
		! runuser -u postgres -- test -x "$top" 2>/dev/null; }; then
		dir=$(mktemp -d /tmp/cinder-pgc.XXXXXX) || return 1
		echo "$dir" >"$top/realdir"
	fi
	mkdir -p "$dir/sock" || return 1
	if [ "$(id -u)" -eq 0 ]; then
		if ! id postgres >/dev/null 2>&1; then
			echo "pgcluster: running as root needs a 'postgres' user" >&2
			return 1
		fi
		chown postgres: "$dir" "$dir/sock" || return 1
		chmod 755 "$dir" "$dir/sock" || return 1
		if ! runuser -u postgres -- test -w "$dir"; then
			echo "pgcluster: $dir is not reachable by user postgres" >&2
			return 1
		fi
	fi
	# The port only names the socket file; pick one per cluster anyway so
	# that a cluster is never confused with another in logs.
	port=$((20000 + ($$ + RANDOM) % 30000))
	echo "$port" >"$dir/port"
	if ! pgcluster_as_server "$PGCLUSTER_BINDIR/initdb" -D "$dir/data" \
		-U "$PGCLUSTER_USER" -A trust -E UTF8 --no-locale --no-sync \
		>"$dir/initdb.log" 2>&1; then
		echo "pgcluster: initdb failed:" >&2
		cat "$dir/initdb.log" >&2
		return 1
	fi
	cat >>"$dir/data/postgresql.conf" <<EOF

# pgcluster.sh test settings
listen_addresses = ''
unix_socket_directories = '$dir/sock'
port = $port
fsync = off
full_page_writes = off
synchronous_commit = off
shared_buffers = 16MB
max_connections = 200
log_min_messages = warning
EOF
	echo "host=$dir/sock port=$port user=$PGCLUSTER_USER dbname=postgres" \
		>"$dir/conninfo"
	if [ "$dir" != "$top" ]; then
		cp "$dir/port" "$dir/conninfo" "$top/" || return 1
	fi
}

# pgcluster_start DIR: start an initialised cluster; waits until it accepts
# connections. Runs pgcluster_init first when DIR holds no cluster yet.
pgcluster_start() {
	local dir
	dir=$(pgcluster_dir "$1")
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		pgcluster_init "$1" || return 1
		dir=$(pgcluster_dir "$1")
	fi
	pgcluster_find_bindir || return 1
	if [ "$(id -u)" -eq 0 ]; then
		touch "$dir/log" && chown postgres: "$dir/log"
	fi
	if ! pgcluster_as_server "$PGCLUSTER_BINDIR/pg_ctl" -D "$dir/data" \
		-l "$dir/log" -w -t 60 start >/dev/null 2>&1; then
		echo "pgcluster: could not start PostgreSQL in $dir:" >&2
		tail -n 20 "$dir/log" >&2
		return 1
	fi
}

# pgcluster_stop DIR: fast shutdown (clients are disconnected); waits.
pgcluster_stop() {
	local dir
	dir=$(pgcluster_dir "$1")
	pgcluster_find_bindir || return 1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	pgcluster_as_server "$PGCLUSTER_BINDIR/pg_ctl" -D "$dir/data" -m fast \
		-w -t 60 stop >/dev/null 2>&1
}

# pgcluster_restart DIR: stop then start.
pgcluster_restart() {
	pgcluster_stop "$1" && pgcluster_start "$1"
}

# pgcluster_conninfo DIR: print the maintenance database's conninfo.
pgcluster_conninfo() {
	cat "$(pgcluster_dir "$1")/conninfo"
}

# pgcluster_destroy DIR: stop the server if running and remove DIR.
pgcluster_destroy() {
	local top=$1 dir
	[ -n "$top" ] && [ -d "$top" ] || return 0
	dir=$(pgcluster_dir "$top")
	if [ -f "$dir/data/postmaster.pid" ]; then
		pgcluster_stop "$top" ||
			pgcluster_as_server "$PGCLUSTER_BINDIR/pg_ctl" \
				-D "$dir/data" -m immediate -w stop >/dev/null 2>&1
	fi
	[ "$dir" != "$top" ] && rm -rf "$dir"
	rm -rf "$top"
}
