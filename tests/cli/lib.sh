# tests/cli/lib.sh: the end-to-end test library (TAP), sourced by each
# tests/cli/tNNNN-*.sh. In the style of git's t/test-lib.sh: every test
# script gets its own scratch directory and its own database on the
# harness's PostgreSQL (tests/harness/pg.sh), and talks to ./sluice.
set -u
: "${SLUICE_BIN:?run the suite with make test}"
: "${SLUICE_TEST_PGPORT:?run the suite with make test}"

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "${SLUICE_TEST_TMP:-/tmp}/$T_NAME.XXXXXX")
T_DB=$(echo "t_${T_NAME}_$$" | tr -c 'a-zA-Z0-9_\n' '_')
T_COUNT=0
T_FAILED=0
export NO_COLOR=1 SLUICE_USER=tester
export PGHOST="$SLUICE_TEST_PGHOST" PGPORT="$SLUICE_TEST_PGPORT" PGUSER="$SLUICE_TEST_PGUSER"
export PGPASSWORD="$SLUICE_TEST_PGPASSWORD" PGDATABASE="$T_DB"

sluice() { "$SLUICE_BIN" "$@"; }

# t_noted COMMAND...: run a command whose output tests compare; when it
# fails, note it in $T_DIR/.failed as well, and ok fails the test it ran in.
# A failed query inside "$(...)" prints nothing, so without this
# expect_eq "$(psql_q A)" "$(psql_q B)" would pass when both fail, and
# expect_eq "" "$(psql_q ...)" whenever its query does.
t_noted() {
	"$@" && return 0
	_t_noted_rc=$?
	[ "${T_NOTE-}" = off ] ||
		printf '%s failed (exit %s): %s\n' "$1" "$_t_noted_rc" "$*" >>"$T_DIR/.failed"
	return "$_t_noted_rc"
}

# psql_db DB SQL: one value per line, no headers, against database DB.
psql_db() { t_noted psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# psql_q SQL: psql_db against this test's database.
psql_q() { psql_db "$T_DB" "$1"; }

T_AT_EXIT=""
# at_exit COMMAND: a shell command (one string) run when the script ends, before
# the database and scratch directory go away (e.g. stopping a server it started).
at_exit() { T_AT_EXIT="$T_AT_EXIT
$1"; }

t_cleanup() {
	eval "$T_AT_EXIT"
	for f in "$T_DIR"/*.pid; do
		[ -f "$f" ] && [ ! -f "${f%.pid}.rc" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$T_DB\" WITH (FORCE)" >/dev/null 2>&1
	rm -rf "$T_DIR"
}
trap t_cleanup EXIT
psql -X -q -d postgres -c "CREATE DATABASE \"$T_DB\"" >/dev/null || { echo "Bail out! cannot create $T_DB"; exit 1; }

# ok DESCRIPTION COMMAND...: a test passes when the command succeeds, and
# no query or jq of t_noted's failed since the previous test (in the
# command, in its arguments, or in the setup before it).
ok() {
	desc=$1
	shift
	T_COUNT=$((T_COUNT + 1))
	( "$@" ) >"$T_DIR/.out" 2>&1
	_ok_rc=$?
	if [ -s "$T_DIR/.failed" ]; then
		{
			echo "--- failed since the previous test (a comparison may have seen their empty output):"
			cat "$T_DIR/.failed"
		} >>"$T_DIR/.out"
		rm -f "$T_DIR/.failed"
		_ok_rc=1
	fi
	if [ "$_ok_rc" = 0 ]; then
		echo "ok $T_COUNT - $desc"
	else
		T_FAILED=$((T_FAILED + 1))
		echo "not ok $T_COUNT - $desc"
		# awk ends every line, even an unterminated last one, so the
		# next TAP line stays on its own line.
		# on stderr too: prove shows it without -v, so CI logs say why
		awk '{ print "#   " $0 }' "$T_DIR/.out" | tail -n 40 | tee /dev/stderr
	fi
}

# expect_eq EXPECTED ACTUAL: for use inside ok's commands. Two empty strings
# are equal: when both sides are computed, check that they are not
# (expect_positive for counts).
expect_eq() {
	[ "$1" = "$2" ] && return 0
	printf 'expected: %s\n     got: %s\n' "$1" "$2"
	return 1
}

# expect_grep PATTERN FILE: grep -E with the file shown on failure. An empty
# PATTERN (a variable that came out empty) would match any file: it fails.
expect_grep() {
	[ -n "$1" ] || { echo "expect_grep: empty pattern (for $2)"; return 1; }
	grep -Eq -- "$1" "$2" && return 0
	echo "pattern not found: $1"
	echo "--- $2:"
	cat "$2"
	return 1
}

# expect_no_grep PATTERN FILE: PATTERN is not in FILE, which exists; an error
# of grep's (no such file, a bad pattern) is not "not found".
expect_no_grep() {
	[ -n "$1" ] || { echo "expect_no_grep: empty pattern (for $2)"; return 1; }
	grep -Eq -- "$1" "$2"
	case $? in
	1)	return 0 ;;
	0)	echo "pattern unexpectedly found: $1" ;;
	*)	echo "expect_no_grep: grep failed on $2 (pattern: $1)"
		return 1 ;;
	esac
	echo "--- $2:"
	cat "$2"
	return 1
}

# expect_positive N WHAT: N is a whole number above 0; for counts compared
# with other counts, which would be equal when both are 0.
expect_positive() {
	case $1 in
	'' | *[!0-9]* | 0 | 0*) echo "expected a positive count of $2, got '$1'"; return 1 ;;
	esac
}

# expect_exit CODE COMMAND...: run, save output to $T_DIR/out, check the exit code.
expect_exit() {
	want=$1
	shift
	"$@" >"$T_DIR/out" 2>&1
	got=$?
	[ "$got" = "$want" ] && return 0
	echo "exit code: expected $want, got $got"
	cat "$T_DIR/out"
	return 1
}

# The connector the suite runs through: libpq (the default) or, with
# SLUICE_TEST_CONNECTOR=odbc (run-tests.sh's second pass), psqlODBC through
# unixODBC, loaded by path, against the same server, database and user.
SLUICE_TEST_CONNECTOR=${SLUICE_TEST_CONNECTOR:-libpq}
T_ODBC_DRIVER=${SLUICE_TEST_ODBC_DRIVER:-/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so}

# conn_keys INDENT [DBNAME [PORT [PASSWORD]]]: the YAML keys of a connection
# to DBNAME (this test's database by default) through the connector under
# test; PASSWORD is written as given (default: an env_var() of the test's
# password). Port, user, password and dbname are keys of their own for
# both connectors, so that scripts can edit them and templates see
# target.dbname.
conn_keys() {
	if [ "$SLUICE_TEST_CONNECTOR" = odbc ]; then
		printf '%stype: odbc\n%sdialect: postgres\n' "$1" "$1"
		printf '%sconnection_string: "Driver=%s;Server=%s"\n' "$1" "$T_ODBC_DRIVER" "$SLUICE_TEST_PGHOST"
	else
		printf '%stype: postgres\n%shost: "%s"\n' "$1" "$1" "$SLUICE_TEST_PGHOST"
	fi
	printf '%sport: %s\n%suser: "%s"\n' "$1" "${3:-$SLUICE_TEST_PGPORT}" "$1" "$SLUICE_TEST_PGUSER"
	printf '%spassword: "%s"\n' "$1" "${4:-"{{ env_var('SLUICE_TEST_PGPASSWORD') }}"}"
	printf '%sdbname: "%s"\n' "$1" "${2:-$T_DB}"
}

# ok_libpq REASON DESCRIPTION COMMAND...: ok, but in the ODBC pass the test
# is reported as skipped with REASON: for what only the libpq connector does.
ok_libpq() {
	if [ "$SLUICE_TEST_CONNECTOR" = odbc ]; then
		T_COUNT=$((T_COUNT + 1))
		rm -f "$T_DIR/.failed"	# what its arguments ran is not a test's
		echo "ok $T_COUNT - $2 # SKIP $1"
		return 0
	fi
	shift
	ok "$@"
}

# skip_all_libpq REASON: the whole script is about libpq; in the ODBC pass
# it reports itself skipped and ends.
skip_all_libpq() {
	[ "$SLUICE_TEST_CONNECTOR" = odbc ] || return 0
	echo "1..0 # SKIP $1"
	exit 0
}

# new_lake: a database of its own for the test's lake ($LAKE), dropped at
# exit; lake_q SQL runs in it.
new_lake() {
	LAKE="${T_DB}_lake"
	psql -X -q -d postgres -c "CREATE DATABASE \"$LAKE\"" >/dev/null || { echo "Bail out! cannot create $LAKE"; exit 1; }
	at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"$LAKE\" WITH (FORCE)' >/dev/null 2>&1"
}
lake_q() { psql_db "$LAKE" "$1"; }

# lake_connection DBNAME: profiles.yml's connections: block, a connection
# named lake to DBNAME, schema lake, through libpq in both passes (an
# unload streams COPY out of it).
lake_connection() {
	cat >>profiles.yml <<YML
      connections:
        lake:
          type: postgres
          host: "$SLUICE_TEST_PGHOST"
          port: $SLUICE_TEST_PGPORT
          user: "$SLUICE_TEST_PGUSER"
          password: "{{ env_var('SLUICE_TEST_PGPASSWORD') }}"
          dbname: "$1"
          schema: lake
YML
}

# lake_sources TABLE...: models/sources.yml, a source named lake on the
# connection lake with these tables.
lake_sources() {
	printf 'sources:\n  - name: lake\n    connection: lake\n    tables:\n' >models/sources.yml
	for t in "$@"; do
		printf '      - name: %s\n' "$t" >>models/sources.yml
	done
}

# table_hash DB TABLE: a table's rows as one hash, so two databases can be compared.
table_hash() {
	psql_db "$1" "select count(*) || ':' || coalesce(md5(string_agg(t::text, '|' order by t.id)), '') from $2 t"
}

# new_project DIR: an empty project whose profile points at this test's database.
new_project() {
	P="$T_DIR/$1"
	mkdir -p "$P/models"
	cat >"$P/sluice.yml" <<YML
name: proj
profile: proj
YML
	write_profile proj
	cd "$P" || exit 1
}

# write_profile NAME: $P/profiles.yml with profile NAME, target dev, this
# test's database through the connector under test, schema analytics.
write_profile() {
	cat >"$P/profiles.yml" <<YML
$1:
  target: dev
  outputs:
    dev:
$(conn_keys "      ")
      schema: analytics
      threads: 4
YML
}

# env_output NAME SCHEMA [LINE]...: one output of a profiles.yml with
# several environments (t12xx), on this test's database, with more keys
# ("reuse_from: [prod]") as lines.
env_output() {
	printf '    %s:\n' "$1"
	conn_keys "      "
	printf '      schema: %s\n' "$2"
	shift 2
	for _line in "$@"; do
		printf '      %s\n' "$_line"
	done
}

# model NAME SQL [DIR]: write models/[DIR/]NAME.sql
model() {
	d=models${3:+/$3}
	mkdir -p "$d"
	printf '%s\n' "$2" >"$d/$1.sql"
}

# sources_yml SOURCE TABLE...: models/sources.yml declaring those tables of SOURCE.
sources_yml() {
	_src=$1
	shift
	mkdir -p models
	printf 'version: 2\nsources:\n  - name: %s\n    tables:\n' "$_src" >models/sources.yml
	for _t in "$@"; do
		printf '      - name: %s\n' "$_t" >>models/sources.yml
	done
}

# wait_until SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds;
# fails when it has not after SECONDS. What t_noted sees fail in a poll is
# not noted: a poll may fail until it does not.
wait_until() {
	_end=$(($(date +%s) + $1))
	shift
	_wait_note=${T_NOTE-}
	T_NOTE=off
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$_end" ]; then
			T_NOTE=$_wait_note
			return 1
		fi
		sleep 0.1
	done
	T_NOTE=$_wait_note
}

# bg_start NAME PROGRAM ARGS...: run a program (not a shell function: use
# "$SLUICE_BIN") in the background with SIGINT at its default, as a user's
# terminal would (a plain & in a script ignores it). $BG_PID is its pid,
# $T_DIR/NAME.log its output; when it ends, $T_DIR/NAME.rc holds its exit
# code, or "signal N" when a signal killed it. Killed at exit if still running.
bg_start() {
	_n=$1
	shift
	rm -f "$T_DIR/$_n.pid" "$T_DIR/$_n.rc"
	perl -e '
		$SIG{INT} = $SIG{QUIT} = "DEFAULT";
		my $f = shift;
		my $pid = fork;
		die "fork: $!" unless defined $pid;
		if (!$pid) { exec @ARGV; exit 127 }
		sub put { open my $h, ">", "$_[0].tmp" or die; print $h "$_[1]\n"; close $h; rename "$_[0].tmp", $_[0] }
		put("$f.pid", $pid);
		waitpid($pid, 0);
		put("$f.rc", $? & 127 ? "signal " . ($? & 127) : $? >> 8);
	' "$T_DIR/$_n" "$@" </dev/null >"$T_DIR/$_n.log" 2>&1 &
	wait_until 10 test -s "$T_DIR/$_n.pid" || { echo "bg_start: $_n did not start"; return 1; }
	BG_PID=$(cat "$T_DIR/$_n.pid")
}

# bg_wait NAME SECONDS: wait up to SECONDS for NAME to end; prints its exit code
# (or "signal N"), or "timeout".
bg_wait() {
	if wait_until "$2" test -s "$T_DIR/$1.rc"; then
		cat "$T_DIR/$1.rc"
	else
		echo timeout
	fi
}

# rr JQ_FILTER: jq -r on target/run_results.json of the current project.
rr() { t_noted jq -r "$1" target/run_results.json; }

done_testing() {
	if [ -s "$T_DIR/.failed" ]; then
		T_COUNT=$((T_COUNT + 1))
		T_FAILED=$((T_FAILED + 1))
		echo "not ok $T_COUNT - no query or jq failed after the last test"
		awk '{ print "#   " $0 }' "$T_DIR/.failed" | tee /dev/stderr
	fi
	echo "1..$T_COUNT"
	[ "$T_FAILED" = 0 ]
}

# --- fingerprints and state (t0200-t0209) ------------------------------------
# Models are named by their short name (the part after model.<project>.), so
# the helpers work for any project name.

# plan_out [ARGS...]: `sluice plan ARGS` into $T_DIR/plan.out and `sluice plan
# --format json ARGS` into $T_DIR/plan.json; fails, showing why, if either fails.
plan_out() {
	if ! sluice plan "$@" >"$T_DIR/plan.out" 2>&1; then
		echo "sluice plan $* failed:"
		cat "$T_DIR/plan.out"
		return 1
	fi
	if ! sluice plan --format json "$@" >"$T_DIR/plan.json" 2>"$T_DIR/plan.err"; then
		echo "sluice plan --format json $* failed:"
		cat "$T_DIR/plan.json" "$T_DIR/plan.err"
		return 1
	fi
}

# plan_json [ARGS...]: only the JSON plan (for polling), into $T_DIR/plan.json.
plan_json() { sluice plan --format json "$@" >"$T_DIR/plan.json" 2>"$T_DIR/plan.err"; }

# plan_action NAME: build or reuse, from $T_DIR/plan.json.
plan_action() {
	t_noted jq -r --arg n "$1" '.[] | select((.unique_id | sub("^model\\.[^.]*\\."; "")) == $n) | .action' "$T_DIR/plan.json"
}

# plan_reasons NAME: NAME's reasons in the text plan ($T_DIR/plan.out), one a line.
plan_reasons() {
	t_noted awk -v n="$1" '
		($1 == "build" || $1 == "reuse") && ($2 == n || $2 == n ":") {
			sub(/^(build|reuse)  [^ :]+( \(full refresh\))?(: )?/, "")
			if ($0 != "") { gsub(/; /, "\n"); print }
		}' "$T_DIR/plan.out"
}

# plan_json_reasons NAME: the same from $T_DIR/plan.json.
plan_json_reasons() {
	t_noted jq -r --arg n "$1" '.[] | select((.unique_id | sub("^model\\.[^.]*\\."; "")) == $n) | .reasons[]' "$T_DIR/plan.json"
}

# plan_actions: "name=action ..." for every model of $T_DIR/plan.json, sorted by name.
plan_actions() {
	t_noted jq -r '[.[] | "\(.unique_id | sub("^model\\.[^.]*\\."; ""))=\(.action)"] | sort | join(" ")' "$T_DIR/plan.json"
}

# plan_builds NAME [ARGS...]: run the JSON plan; succeeds when it would build NAME
# (for wait_until, e.g. while the statistics of a written source are on their way).
plan_builds() {
	_n=$1
	shift
	plan_json "$@" && [ "$(plan_action "$_n")" = build ]
}

# rr_status NAME, rr_reasons NAME (one a line): from target/run_results.json.
rr_status() {
	t_noted jq -r --arg n "$1" '.results[] | select((.unique_id | sub("^model\\.[^.]*\\."; "")) == $n) | .status' target/run_results.json
}
rr_reasons() {
	t_noted jq -r --arg n "$1" '.results[] | select((.unique_id | sub("^model\\.[^.]*\\."; "")) == $n) | (.reasons // [])[]' target/run_results.json
}

# rr_statuses: "name=status ..." for every result, sorted by name.
rr_statuses() {
	t_noted jq -r '[.results[] | "\(.unique_id | sub("^model\\.[^.]*\\."; ""))=\(.status)"] | sort | join(" ")' target/run_results.json
}

# expect_line LINE TEXT: TEXT (lines) has LINE exactly; expect_no_line: has not.
# An empty LINE would be found in an empty TEXT: it fails.
expect_line() {
	[ -n "$1" ] || { echo "expect_line: empty line"; return 1; }
	printf '%s\n' "$2" | grep -Fxq -- "$1" && return 0
	printf 'line not found: %s\n--- in:\n%s\n' "$1" "$2"
	return 1
}
expect_no_line() {
	[ -n "$1" ] || { echo "expect_no_line: empty line"; return 1; }
	printf '%s\n' "$2" | grep -Fxq -- "$1" || return 0
	printf 'line unexpectedly found: %s\n--- in:\n%s\n' "$1" "$2"
	return 1
}

# src_version SOURCE.TABLE: its version now, from `sluice sources versions`.
src_version() {
	sluice sources versions -s "source:$1" 2>/dev/null |
		awk -F '\t' -v s="$1" '$1 ~ /^source\./ && substr($1, length($1) - length(s)) == "." s { print $2 }'
}

# stats_settled SOURCE.TABLE INSERTED: its stats version counts INSERTED rows
# inserted (PostgreSQL publishes the counts about 1 s after the writer goes
# idle: poll with wait_until before relying on a version).
stats_settled() {
	src_version "$1" | grep -Eq "^stats:[0-9]+:$2:"
}

# models_map DEFAULT [NAME=VALUE...]: "name=value ..." for every model named in
# $MODELS, sorted as rr_statuses and plan_actions sort them: VALUE for those
# named, DEFAULT for the others. E.g. expect_eq "$(models_map reused a=success)" "$(rr_statuses)".
models_map() {
	_def=$1
	shift
	for _m in $MODELS; do
		_s=$_def
		for _kv in "$@"; do
			[ "${_kv%%=*}" = "$_m" ] && _s=${_kv#*=}
		done
		echo "$_m=$_s"
	done | LC_ALL=C sort | paste -sd ' '
}

# --- a gate: a model waits at it until the test opens it ---------------------
# For tests that act while a build is under way (read, lock, kill, interrupt):
# they wait for the state they need, not for time, so a busy machine does not
# make them fail. A model whose query has "where (select public.gate_wait()) = 1"
# waits while the gate is closed; gate_wait polls public.gate (a volatile
# function sees each commit) and fails the query after 120 s rather than hang.

# gate_setup: the gate (open) and gate_wait in this test's database.
gate_setup() {
	psql_q "create table public.gate (open boolean not null);
insert into public.gate values (true);
create function public.gate_wait() returns int language plpgsql volatile as \$\$
begin
	for i in 1 .. 2400 loop
		if (select open from public.gate) then
			return 1;
		end if;
		perform pg_sleep(0.05);
	end loop;
	raise exception 'gate_wait: the gate stayed closed for 120 s';
end \$\$" >/dev/null
}
gate_close() { psql_q "update public.gate set open = false" >/dev/null; }
gate_open() { psql_q "update public.gate set open = true" >/dev/null; }

# at_gate: a session of sluice's waits at the gate (for wait_until).
at_gate() {
	[ "$(psql_q "select count(*) from pg_stat_activity where datname = current_database()
		and application_name like 'sluice/%' and state = 'active' and query like '%gate_wait()%'")" -ge 1 ]
}

# --- dbt projects (t11xx) ------------------------------------------------------

# new_dbt_project DIR [FIXTURE]: a copy of tests/fixtures/FIXTURE (default
# dbt-shop: a dbt_project.yml, no sluice.yml) with a dbt profile `shop` for
# this test's database in the project directory; cd into it.
new_dbt_project() {
	P="$T_DIR/$1"
	mkdir -p "$T_DIR" &&
	cp -R "$(dirname "$0")/../fixtures/${2:-dbt-shop}" "$P" || exit 1
	write_profile shop
	cd "$P" || exit 1
}
