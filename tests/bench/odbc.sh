#!/bin/sh
# tests/bench/odbc.sh: the ODBC connector (unixODBC + psqlODBC) against
# libpq on the same work, in the same run, against one PostgreSQL on
# loopback (tests/harness/pg.sh: TCP and a password for both): a no-op
# plan over 1,000 models, `sluice show --limit` of a 1M-row table, and
# loading 1M CSV rows (COPY through libpq, load_csv through ODBC). Prints
# markdown tables with wall time, peak RSS and the ODBC/libpq ratio for
# docs/benchmarks.md. Run by `make bench` (tests/bench/run.sh) or alone
# after `make sluice build/std/bench/load-csv`.
set -eu
top=$(pwd)
bin=$top/sluice
loader=$top/${BUILD:-build/std}/bench/load-csv
driver=${SLUICE_TEST_ODBC_DRIVER:-/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so}
[ -x "$loader" ] || { echo "odbc.sh: no $loader (make $loader)" >&2; exit 1; }
[ -r "$driver" ] || { echo "odbc.sh: no psqlODBC at $driver (apt-get install odbc-postgresql)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "odbc.sh needs GNU time (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/sluice-bench-odbc.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	sh "$top/tests/harness/pg.sh" stop "$tmp/pg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
sh "$top/tests/harness/pg.sh" start "$tmp/pg" >"$tmp/pg.env"
set -a
. "$tmp/pg.env"
set +a
export PGHOST="$SLUICE_TEST_PGHOST" PGPORT="$SLUICE_TEST_PGPORT" PGUSER="$SLUICE_TEST_PGUSER"
export PGPASSWORD="$SLUICE_TEST_PGPASSWORD" PGDATABASE=bench NO_COLOR=1
psql -X -q -d postgres -c "create database bench" >/dev/null

# measure N CMD...: "wall cpu KiB" of the fastest of N runs: wall
# seconds, the process's CPU seconds (user + system: on a shared machine
# the steadier figure) and its peak RSS. Output to $tmp/out.
measure() {
	runs=$1
	shift
	best=""
	for _ in $(seq "$runs"); do
		/usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" ||
			{ cat "$tmp/err" >&2; exit 1; }
		line=$(awk '{ printf "%s %.2f %s", $1, $2 + $3, $4 }' "$tmp/time")
		if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
			best=$line
		fi
	done
	echo "$best"
}
# field N "wall cpu KiB": one of the three.
field() { echo "$2" | awk -v n="$1" '{ print $n }'; }
mib() { awk -v k="$(field 3 "$1")" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# row LABEL LIBPQ ODBC [wall]: one table line; "wall": no CPU ratio
# (when one side's work is mostly the server's).
row() {
	cpu="$(ratio "$(field 2 "$3")" "$(field 2 "$2")")x"
	[ "${4:-}" = wall ] && cpu="(server-side work)"
	printf '| %s | %s / %s / %s | %s / %s / %s | %sx | %s |\n' "$1" \
		"$(field 1 "$2")" "$(field 2 "$2")" "$(mib "$2")" "$(field 1 "$3")" "$(field 2 "$3")" "$(mib "$3")" \
		"$(ratio "$(field 1 "$3")" "$(field 1 "$2")")" "$cpu"
}

# profiles PROJECT PG_SCHEMA ODBC_SCHEMA: targets pg (libpq) and odbc
# (psqlODBC, DSN-less) to the same database.
profiles() {
	cat >"$1/profiles.yml" <<YML
bench:
  target: pg
  outputs:
    pg:
      type: postgres
      host: "$PGHOST"
      port: $PGPORT
      user: "$PGUSER"
      password: "{{ env_var('PGPASSWORD') }}"
      dbname: bench
      schema: $2
      threads: 2
    odbc:
      type: odbc
      connection_string: "Driver=$driver;Server=$PGHOST"
      port: $PGPORT
      user: "$PGUSER"
      password: "{{ env_var('PGPASSWORD') }}"
      dbname: bench
      schema: $3
      threads: 2
YML
}

echo "## ODBC (psqlODBC $(dpkg-query -W -f '${Version}' odbc-postgresql 2>/dev/null || echo '?')) against libpq (issue 5)"
echo
echo "| work | libpq: wall s / CPU s / peak RSS MiB | ODBC: wall s / CPU s / peak RSS MiB | ODBC / libpq, wall | ODBC / libpq, CPU |"
echo "|---|---|---|---|---|"

# ---- a no-op plan over 1,000 models ----
# Each target is built once, through its own connector, into its own
# schema; then plan finds nothing to do. Best of 5.
p=$tmp/plan
sh "$top/tests/bench/gen-project.sh" "$p" 1000
profiles "$p" a_pg a_odbc
psql -X -q -c "create schema lake" >/dev/null
for t in 0 1 2 3 4 5 6 7 8 9; do
	psql -X -q -c "create table lake.t$t as select i as a, i as b, i as c, i as d, now() as created_at
		from generate_series(1, 100) i" >/dev/null
done
"$bin" run --project-dir "$p" --target pg >/dev/null
"$bin" run --project-dir "$p" --target odbc >/dev/null
n_pg=$(measure 5 "$bin" plan --project-dir "$p" --target pg)
grep -q "reuse" "$tmp/out" && ! grep -Eq "^build " "$tmp/out" || { echo "pg plan is not a no-op:" >&2; cat "$tmp/out" >&2; exit 1; }
n_odbc=$(measure 5 "$bin" plan --project-dir "$p" --target odbc)
grep -q "reuse" "$tmp/out" && ! grep -Eq "^build " "$tmp/out" || { echo "odbc plan is not a no-op:" >&2; cat "$tmp/out" >&2; exit 1; }
row "no-op \`sluice plan\`, 1,000 models (best of 5)" "$n_pg" "$n_odbc"

# ---- sluice show of a 1M-row table ----
# Built once (libpq); both targets read the same relation. Best of 3;
# 100k rows beside 1M shows whether memory depends on the row count.
q=$tmp/show
mkdir -p "$q/models"
printf 'name: bench\nprofile: bench\n' >"$q/sluice.yml"
profiles "$q" s s
cat >"$q/models/big.sql" <<'SQL'
{{ config(materialized='table') }}
select i as id, 'name ' || i as name, round((i % 100000) / 7.0, 2) as amount,
       timestamp '2024-01-01' + i * interval '1 second' as at, i % 2 = 0 as even,
       case when i % 10 = 0 then null else md5(i::text) end as hash
from generate_series(1, 1000000) as i
SQL
# The same rows without the types psqlODBC parses and prints again
# (numeric, timestamp, boolean), to show what the mix of types costs.
cat >"$q/models/big_text.sql" <<'SQL'
{{ config(materialized='table') }}
select id, name, hash from {{ ref('big') }}
SQL
"$bin" run --project-dir "$q" --target pg >/dev/null
s_pg=$(measure 3 "$bin" show big_text --limit 1000000 --format csv --project-dir "$q" --target pg)
s_odbc=$(measure 3 "$bin" show big_text --limit 1000000 --format csv --project-dir "$q" --target odbc)
row "\`sluice show big_text --limit 1000000 --format csv\` (integer and text columns only, best of 3)" "$s_pg" "$s_odbc"
for n in 100000 1000000; do
	s_pg=$(measure 3 "$bin" show big --limit "$n" --format csv --project-dir "$q" --target pg)
	cp "$tmp/out" "$tmp/pg.csv"
	s_odbc=$(measure 3 "$bin" show big --limit "$n" --format csv --project-dir "$q" --target odbc)
	[ "$(wc -l <"$tmp/out")" = $((n + 1)) ] || { echo "show gave $(wc -l <"$tmp/out") lines" >&2; exit 1; }
	# The whole table, the same bytes (order aside: without ORDER BY a
	# scan may start where another one is, synchronize_seqscans).
	if [ "$n" = 1000000 ] && [ "$(sort "$tmp/pg.csv" | md5sum)" != "$(sort "$tmp/out" | md5sum)" ]; then
		echo "show through ODBC differs from libpq" >&2
		exit 1
	fi
	row "\`sluice show big --limit $n --format csv\` (6 columns, best of 3)" "$s_pg" "$s_odbc"
done

# ---- loading 1M CSV rows: COPY (libpq) against load_csv (ODBC) ----
tail -n +2 "$tmp/pg.csv" >"$tmp/big.csv"
cols="id int, name text, amount numeric, at timestamp, even boolean, hash text"
export BENCH_TYPE=postgres
l_pg=$(measure 3 "$loader" loaded "$cols" "$tmp/big.csv")
export BENCH_TYPE=odbc BENCH_DRIVER="$driver"
l_odbc=$(measure 3 "$loader" loaded "$cols" "$tmp/big.csv")
[ "$(psql -X -A -t -c "select count(*) || ' ' || count(hash) from loaded")" = "1000000 900000" ] ||
	{ echo "load_csv loaded the wrong rows" >&2; exit 1; }
row "1M CSV rows into a table: COPY FROM STDIN against load_csv (best of 3)" "$l_pg" "$l_odbc" wall
