#!/usr/bin/env bash
# t0210: change detection (docs/change-detection.md) through `sluice
# sources versions|instrument|uninstrument`: a source's version changes
# when its data does and stays put when it does not, for every method;
# and the versions of many sources cost one metadata query per connection.
. "$(dirname "$0")/lib.sh"

new_project cd
cat >>profiles.yml <<YML
      connections:
        side:
$(conn_keys "          ")
YML
psql_q "create schema lake;
create table lake.patients (id int);
create table lake.events (id int);
create table lake.batches (batch_id int);
create table lake.feed (id int, loaded_at timestamptz);
insert into lake.batches values (1);
insert into lake.feed values (1, '2024-01-01 00:00:00+00');
create view lake.patients_v as select * from lake.patients;
create schema many;
$(for i in $(seq 1 20); do echo "create table many.m$i (id int);"; done)" >/dev/null || exit 1
{
	cat <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: patients
      - name: events
        change_detection: trigger
      - name: batches
        query: "select max(batch_id) from lake.batches;"
      - name: feed
        loaded_at_field: loaded_at
      - name: live
        identifier: patients
        change_detection: always
      - name: frozen
        identifier: patients
        change_detection: never
      - name: patients_v
      - name: ghost
      - name: ghost_trigger
        change_detection: trigger
      - name: ghost_query
        query: select 1
      - name: slow
        identifier: patients
        lag_tolerance: 700ms
  - name: many
    tables:
YML
	for i in $(seq 1 20); do echo "      - name: m$i"; done
	cat <<'YML'
  - name: split
    schema: many
    connection: side
    tables:
YML
	for i in $(seq 1 10); do echo "      - name: m$i"; done
} >models/sources.yml

# ver TABLE [SOURCE]: the version `sluice sources versions` reports now.
ver() {
	id="${2:-lake}.$1"
	if ! sluice sources versions -s "source:$id" >"$T_DIR/ver.out" 2>&1; then
		echo "FAILED: $(cat "$T_DIR/ver.out")"
		return
	fi
	awk -F '\t' -v id="source.proj.$id" '$1 == id { print $2 }' "$T_DIR/ver.out"
}

# changed TABLE OLD: its version is no longer OLD (and was read fine).
changed() {
	v=$(ver "$1") || return 1
	case $v in FAILED*|'') echo "$v"; return 1 ;; esac
	[ "$v" != "$2" ]
}

# matches ERE STRING
matches() {
	printf '%s\n' "$2" | grep -Eq -- "$1" && return 0
	echo "'$2' does not match $1"
	return 1
}

# --- stats (the default) ----------------------------------------------------

v1=$(ver patients)
ok "stats: the default method, from the statistics" matches '^stats:[0-9]+:0:0:0:' "$v1"
ok "stats: unchanged between two reads with no writes" expect_eq "$v1" "$(ver patients)"
psql_q "insert into lake.patients values (1), (2)"
# PostgreSQL publishes a backend's counters within about 1 s of it going idle.
ok "stats: an INSERT changes it" wait_until 3 changed patients "$v1"
v2=$(ver patients)
ok "stats: the inserted rows are counted" matches '^stats:[0-9]+:2:0:0:' "$v2"
ok "stats: unchanged again afterwards" expect_eq "$v2" "$(ver patients)"
psql_q "update lake.patients set id = 3 where id = 1"
ok "stats: an UPDATE changes it" wait_until 3 changed patients "$v2"
v3=$(ver patients)
psql_q "truncate lake.patients"
ok "stats: a TRUNCATE changes it" wait_until 3 changed patients "$v3"

ok "stats: one metadata query without lag_tolerance" \
	sh -c '"$SLUICE_BIN" sources versions -s source:lake.patients | tail -n 1 | grep -qx "# 1 metadata query"'
lag_check() {
	t0=$(date +%s%N)
	sluice sources versions -s source:lake.slow source:lake.patients >"$T_DIR/lag.out" || return 1
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	[ "$ms" -ge 700 ] || { echo "took ${ms}ms, expected >= 700ms"; return 1; }
	expect_grep '^# 2 metadata queries$' "$T_DIR/lag.out"
}
ok "stats: lag_tolerance 700ms reads twice that far apart, once for the batch" lag_check

u1=$(ver patients_v)
ok "stats: a view cannot be tracked, so it changes every run" matches '^untracked:[0-9a-f-]{36}$' "$u1"
ok "stats: ... every run" changed patients_v "$u1"
psql_q "alter database \"$T_DB\" set track_counts = off"
ok "stats: with track_counts off, tables are untracked too" matches '^untracked:' "$(ver patients)"
psql_q "alter database \"$T_DB\" reset track_counts"

# --- trigger -----------------------------------------------------------------

ok "trigger: refused before instrument (exit 2)" expect_exit 2 sluice sources versions -s source:lake.events
ok "trigger: ... naming the property file and line" expect_grep \
	'^sluice: error: models/sources.yml:6: source lake.events uses change_detection: trigger but is not instrumented \(run sluice sources instrument\)$' \
	"$T_DIR/out"
ok "trigger: a missing table is missing, instrumented or not" expect_eq missing "$(ver ghost_trigger)"
ok "trigger: instrumenting a missing table fails (exit 1)" \
	expect_exit 1 sluice sources instrument -s source:lake.events source:lake.ghost_trigger
ok "trigger: ... naming it" expect_grep 'ghost_trigger.*does not exist' "$T_DIR/out"
ok "trigger: ... and installs nothing" \
	expect_eq 0 "$(psql_q "select count(*) from pg_trigger where tgname = 'sluice_version'")"

ok "trigger: instrument" expect_exit 0 sluice sources instrument -s source:lake.events
ok "trigger: ... reports the tables" expect_grep '^instrumented 1 source table$' "$T_DIR/out"
# Installing counts as a change: writes made before it were not counted.
ok "trigger: a counter, bumped by installing" expect_eq "trigger:1" "$(ver events)"
psql_q "insert into lake.events values (1), (2), (3)"
# No polling: the counter commits with the write.
ok "trigger: an INSERT changes it at once (one bump per statement)" expect_eq "trigger:2" "$(ver events)"
ok "trigger: unchanged with no writes" expect_eq "trigger:2" "$(ver events)"
psql_q "truncate lake.events"
ok "trigger: a TRUNCATE changes it at once" expect_eq "trigger:3" "$(ver events)"
psql_q "begin; insert into lake.events values (4); rollback"
ok "trigger: a rolled-back write does not" expect_eq "trigger:3" "$(ver events)"
ok "trigger: instrument again (idempotent: one trigger)" expect_exit 0 sluice sources instrument -s source:lake.events
ok "trigger: ... bumps the counter (writes while no trigger was in place are unknown)" \
	expect_eq "trigger:4" "$(ver events)"
ok "trigger: ... and one trigger" \
	expect_eq 1 "$(psql_q "select count(*) from pg_trigger where tgname = 'sluice_version'")"
psql_q "alter table lake.events disable trigger sluice_version"
ok "trigger: a disabled trigger counts as not instrumented" expect_exit 2 sluice sources versions -s source:lake.events
ok "trigger: uninstrument" expect_exit 0 sluice sources uninstrument -s source:lake.events
ok "trigger: ... reports the tables" expect_grep '^uninstrumented 1 source table$' "$T_DIR/out"
ok "trigger: ... removes the trigger" \
	expect_eq 0 "$(psql_q "select count(*) from pg_trigger where tgname = 'sluice_version'")"
ok "trigger: ... and the version is refused again" expect_exit 2 sluice sources versions -s source:lake.events

# --- query, loaded_at_field, always, never, missing --------------------------

ok "query: the value of the source's query" expect_eq "query:1" "$(ver batches)"
psql_q "insert into lake.batches values (5)"
ok "query: changes with it, at once" expect_eq "query:5" "$(ver batches)"
ok "query: unchanged with no writes" expect_eq "query:5" "$(ver batches)"
f1=$(ver feed)
ok "loaded_at_field: max of the column" matches '^loaded_at:2024-01-01 ' "$f1"
psql_q "insert into lake.feed values (2, '2024-02-01 00:00:00+00')"
ok "loaded_at_field: a newer row changes it" matches '^loaded_at:2024-02-01 ' "$(ver feed)"
a1=$(ver live)
ok "always: an invocation's id" matches '^always:[0-9a-f-]{36}$' "$a1"
ok "always: different every invocation" changed live "$a1"
ok "never: constant" expect_eq "never never" "$(ver frozen) $(ver frozen)"
ok "a table that does not exist is missing" expect_eq missing "$(ver ghost)"
ok "... also with query:" expect_eq missing "$(ver ghost_query)"

# --- one metadata query per connection ----------------------------------------

ok "20 stats sources: one metadata query" \
	sh -c '"$SLUICE_BIN" sources versions -s source:many >"$0/many.out" &&
	       [ "$(grep -c "	stats:" "$0/many.out")" = 20 ] &&
	       tail -n 1 "$0/many.out" | grep -qx "# 1 metadata query"' "$T_DIR"
ok "... one per connection" \
	sh -c '"$SLUICE_BIN" sources versions -s source:many source:split | tail -n 1 | grep -qx "# 2 metadata queries"'

# The counter above is sluice's own word; the server's count of committed
# transactions in this test's database is not. Each autocommit statement
# is one, so 20 sources must cost what 1 costs. (A transaction from
# autovacuum can add noise, never remove it: three tries.)
xacts() {
	psql -X -q -A -t -d postgres -c "select xact_commit from pg_stat_database where datname = '$T_DB'"
}
# A backend publishes its counts as it exits, just after sluice does.
settled_xacts() {
	prev=$(xacts)
	for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		sleep 0.15
		cur=$(xacts)
		[ "$cur" = "$prev" ] && break
		prev=$cur
	done
	echo "$prev"
}
xacts_of() {
	before=$(settled_xacts)
	sluice sources versions -s "$@" >/dev/null || return 1
	after=$(settled_xacts)
	echo $((after - before))
}
same_cost() {
	for _ in 1 2 3; do
		one=$(xacts_of source:many.m1) && all=$(xacts_of source:many) || return 1
		[ "$one" = "$all" ] && return 0
	done
	echo "transactions for 1 source: $one, for 20: $all"
	return 1
}
ok "20 stats sources cost the server what 1 does" same_cost

# --- bad configuration and unreachable servers ----------------------------------

new_project bad
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: s
    tables:
      - name: ok
      - name: t
        change_detection: sometimes
YML
ok "unknown change_detection: exit 2" expect_exit 2 sluice sources versions
ok "... naming the file, line and the known methods" expect_grep \
	"^sluice: error: models/sources.yml:6: source s.t: unknown change_detection 'sometimes' \(known: stats, trigger, query, loaded_at_field, always, never\)$" \
	"$T_DIR/out"
ok "... also for instrument" expect_exit 2 sluice sources instrument
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: s
    tables:
      - name: t
        lag_tolerance: soon
YML
ok "a bad lag_tolerance: exit 2" expect_exit 2 sluice sources versions
ok "... naming it" expect_grep "models/sources.yml:5: source s.t: lag_tolerance .*'soon'" "$T_DIR/out"
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: s
    tables:
      - name: t
YML
sed -i "s/port: $SLUICE_TEST_PGPORT/port: 1/" profiles.yml
ok "a server that cannot be reached: exit 3" expect_exit 3 sluice sources versions
ok "unknown action: exit 2" expect_exit 2 sluice sources refresh

done_testing
