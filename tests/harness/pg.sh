#!/bin/sh
# pg.sh: the test suite's own throw-away PostgreSQL, independent of sluice's
# embedded-server code (so a bug there cannot hide behind the tests).
#
#   sh tests/harness/pg.sh start DIR   initdb DIR/data, start, print settings
#   sh tests/harness/pg.sh stop DIR    fast shutdown (no-op when not running)
#   sh tests/harness/pg.sh restart DIR fast shutdown (sessions are terminated, 57P01), then start again
#   sh tests/harness/pg.sh resume DIR  start again a cluster that `stop` stopped (same port)
#
# `start` prints shell-evaluable SLUICE_TEST_PG*=value lines on stdout;
# progress and errors go to stderr. SLUICE_PG_MAX_CONNECTIONS sets the
# server's max_connections (default 60). Not for anything but tests: the role
# sluice_test has a fixed, published password.
set -e

me="pg.sh"
die() { echo "$me: $*" >&2; exit 1; }

usage() {
	echo "usage: sh tests/harness/pg.sh start|stop|restart|resume DIR" >&2
	exit 2
}

# Newest /usr/lib/postgresql/*/bin holding initdb, or $SLUICE_PG_BINDIR, or PATH.
find_bindir() {
	if [ -n "$SLUICE_PG_BINDIR" ]; then
		[ -x "$SLUICE_PG_BINDIR/initdb" ] ||
			die "SLUICE_PG_BINDIR=$SLUICE_PG_BINDIR has no initdb"
		echo "$SLUICE_PG_BINDIR"
		return
	fi
	best="" best_ver=0
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] || continue
		v=${d%/bin}
		v=${v##*/}
		v=${v%%.*}
		case $v in *[!0-9]*|'') continue ;; esac
		if [ "$v" -gt "$best_ver" ]; then
			best_ver=$v
			best=$d
		fi
	done
	if [ -z "$best" ] && command -v initdb >/dev/null 2>&1; then
		best=$(dirname "$(command -v initdb)")
	fi
	[ -n "$best" ] || die "no PostgreSQL server binaries (initdb) found; install the postgresql package or set SLUICE_PG_BINDIR"
	echo "$best"
}

# As root the server must run as an unprivileged user.
pick_user() {
	if [ "$(id -u)" != 0 ]; then
		echo ""
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

as_server() {
	if [ -n "$run_as" ]; then
		runuser -u "$run_as" -- "$@"
	else
		"$@"
	fi
}

# Single-quote a value for eval unless it is plainly safe.
q() {
	case $1 in
	*[!A-Za-z0-9_./:@+-]*|'')
		printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
	*) printf '%s' "$1" ;;
	esac
}

random_port() {
	r=$(od -An -N2 -tu2 /dev/urandom 2>/dev/null | tr -d ' ')
	[ -n "$r" ] || r=$$
	echo $((20000 + r % 30000))
}

port_busy() {
	command -v ss >/dev/null 2>&1 || return 1
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

log_tail() {
	[ -f "$1" ] && tail -n 8 "$1" | sed 's/^/  | /' >&2
	return 0
}

cmd_start() {
	bindir=$(find_bindir)
	run_as=$(pick_user)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	data=$dir/data
	run=$dir/run
	[ ! -e "$data/PG_VERSION" ] || die "$data already holds a cluster; stop it and use a fresh DIR"
	# Unix socket paths are limited to 107 bytes.
	[ ${#run} -le 90 ] || die "DIR is too long for a Unix socket path: $run"

	mkdir -p "$data" "$run"
	chmod 700 "$data"
	# Other local users (a test run as nobody) may use the socket too.
	chmod 711 "$run"
	: >"$dir/server.log"
	if [ -n "$run_as" ]; then
		chmod 711 "$dir"
		chown "$run_as" "$data" "$run" "$dir/server.log"
		as_server test -x "$dir" ||
			die "user $run_as cannot reach $dir (a parent directory is not traversable); use a DIR under /tmp"
	fi

	echo "$me: initdb $data${run_as:+ (as $run_as)}" >&2
	as_server "$bindir/initdb" -D "$data" -U sluice --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-instructions \
		>"$dir/initdb.log" 2>&1 || {
		echo "$me: initdb failed; $dir/initdb.log ends with:" >&2
		log_tail "$dir/initdb.log"
		exit 1
	}
	{
		echo "# added by tests/harness/pg.sh"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$run'"
		echo "fsync = off"
		echo "max_connections = ${SLUICE_PG_MAX_CONNECTIONS:-60}"
		echo "shared_buffers = 32MB"
	} >>"$data/postgresql.conf"

	tries=0
	port=$(random_port)
	while :; do
		tries=$((tries + 1))
		[ "$tries" -le 20 ] || die "no free port found after 20 tries"
		if port_busy "$port"; then
			port=$((port + 1))
			continue
		fi
		# The last "port =" line wins, so each retry just appends.
		echo "port = $port" >>"$data/postgresql.conf"
		if as_server "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
			start >"$dir/pg_ctl.log" 2>&1; then
			break
		fi
		if grep -q 'already in use' "$dir/server.log"; then
			: >"$dir/server.log"
			port=$(random_port)
			continue
		fi
		echo "$me: pg_ctl start failed; $dir/server.log ends with:" >&2
		log_tail "$dir/server.log"
		log_tail "$dir/pg_ctl.log"
		exit 1
	done

	"$bindir/psql" -X -q -h "$run" -p "$port" -U sluice -d postgres \
		-v ON_ERROR_STOP=1 \
		-c "create role sluice_test login superuser password 'sluice-test-secret'" \
		>"$dir/psql.log" 2>&1 || {
		echo "$me: creating role sluice_test failed:" >&2
		log_tail "$dir/psql.log"
		as_server "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || :
		exit 1
	}
	echo "$me: PostgreSQL listening on 127.0.0.1:$port and $run" >&2

	echo "SLUICE_TEST_PGHOST=127.0.0.1"
	echo "SLUICE_TEST_PGPORT=$port"
	echo "SLUICE_TEST_PGUSER=sluice_test"
	echo "SLUICE_TEST_PGPASSWORD=sluice-test-secret"
	echo "SLUICE_TEST_PGSOCKDIR=$(q "$run")"
}

# pg_ctl ACTION on the cluster in DIR, as the user that owns it (stop,
# restart, start: resume).
cmd_ctl() {
	bindir=$(find_bindir)
	data=$dir/data
	[ -f "$data/PG_VERSION" ] || die "no cluster in $data"
	if [ "$1" != start ] && [ ! -f "$data/postmaster.pid" ]; then
		echo "$me: no server running in $data" >&2
		[ "$1" = stop ] && return 0
		exit 1
	fi
	run_as=""
	if [ "$(id -u)" = 0 ]; then
		run_as=$(stat -c %U "$data")
		[ "$run_as" != root ] || run_as=""
	fi
	as_server "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -m fast -w -t 60 "$1" >"$dir/pg_ctl-$1.log" 2>&1 || {
		echo "$me: pg_ctl $1 failed:" >&2
		log_tail "$dir/pg_ctl-$1.log"
		exit 1
	}
}

[ $# -eq 2 ] || usage
dir=$2
case $1 in
start) cmd_start ;;
stop) cmd_ctl stop ;;
restart) cmd_ctl restart ;;
resume) cmd_ctl start ;;
*) usage ;;
esac
