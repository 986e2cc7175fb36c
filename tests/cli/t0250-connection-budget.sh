#!/usr/bin/env bash
# t0250: a run fits its connections in what the server allows
# (docs/running.md, "Connections"). With more threads than the server
# has room for, sluice says so on its first line and runs with fewer
# workers instead of failing with "too many connections"; two runs that
# start at once, each planning for the same room, both finish.
. "$(dirname "$0")/lib.sh"

# A login limited to 8 sessions stands for a small server: the role's
# limit is one of the three the budget reads (server, role, database).
ROLE="${T_DB}_u"
psql_q "CREATE ROLE \"$ROLE\" LOGIN PASSWORD 'budget-secret' CONNECTION LIMIT 8;
GRANT ALL ON DATABASE \"$T_DB\" TO \"$ROLE\"" >/dev/null
at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"$T_DB\" WITH (FORCE)' -c 'DROP ROLE IF EXISTS \"$ROLE\"' >/dev/null 2>&1"

# budget_project DIR SCHEMA: 40 tables that each take a moment, as ROLE.
budget_project() {
	new_project "$1"
	conn_keys "      " "$T_DB" "" "budget-secret" | sed "s/^\( *user: \).*/\1\"$ROLE\"/" >"$T_DIR/keys"
	printf 'proj:\n  target: dev\n  outputs:\n    dev:\n%s\n      schema: %s\n      threads: 4\n' \
		"$(cat "$T_DIR/keys")" "$2" >profiles.yml
	for i in $(seq 40); do
		model "m$i" "{{ config(materialized='table') }}
select $i as i, pg_sleep(0.05) is not null as slept"
	done
}

# hold_sessions N: N sessions of ROLE busy elsewhere, until release_sessions.
hold_sessions() {
	for _i in $(seq "$1"); do
		PGUSER=$ROLE PGPASSWORD=budget-secret psql -X -q -d "$T_DB" -c "select pg_sleep(300)" >/dev/null 2>&1 &
	done
	wait_until 20 held_are "$1"
}
held_are() {
	[ "$(psql_q "select count(*) from pg_stat_activity where usename = '$ROLE' and query like '%pg_sleep(300)%'")" = "$1" ]
}
release_sessions() {
	psql_q "select count(pg_terminate_backend(pid)) from pg_stat_activity
		where usename = '$ROLE' and query like '%pg_sleep(300)%'" >/dev/null &&
	wait
}

budget_project one analytics

t_says_so() {
	expect_exit 0 sluice run --threads 32 || return 1
	# the first line of the run
	head -n 1 "$T_DIR/out" | grep -E '^threads: [0-9]+ of the 32 asked for: connection .default. may open [0-9]+ more sessions? \(of a limit of 8\), 2 kept free for others$' ||
		{ head -n 3 "$T_DIR/out"; return 1; }
	expect_no_grep 'too many connections' "$T_DIR/out"
}
ok "32 threads on a login allowed 8 sessions: the first line says how many run, and why" t_says_so

t_workers() {
	_planned=$(head -n 1 "$T_DIR/out" | sed -n 's/^threads: \([0-9]*\) of.*/\1/p') &&
	_used=$(rr '[.results[].thread_id | ltrimstr("Thread-") | tonumber] | max') &&
	# 8 - the run's main connection - 2 kept free = 5 more, and the main one is lent too:
	expect_eq 6 "$_planned" || return 1
	[ "$_used" -le "$_planned" ] && [ "$_used" -gt 1 ] || { echo "thread ids up to $_used, planned $_planned"; return 1; }
	expect_eq 40 "$(rr '[.results[] | select(.status == "success")] | length')"
}
ok "it ran on the workers it planned, in parallel, and built all 40" t_workers

t_enough_room() {
	expect_exit 0 sluice run --threads 3 --full-refresh || return 1
	expect_no_grep '^threads:' "$T_DIR/out"
}
ok "with room for every thread asked for, nothing is said" t_enough_room

# Two projects of the same login, one started while the other runs.
budget_project two analytics_two
cd "$T_DIR/one" || exit 1

t_two_at_once() {
	bg_start a "$SLUICE_BIN" run --threads 32 --full-refresh --project-dir "$T_DIR/one" &&
	bg_start b "$SLUICE_BIN" run --threads 32 --project-dir "$T_DIR/two" || return 1
	_a=$(bg_wait a 300) &&
	_b=$(bg_wait b 300) &&
	[ "$_a" = 0 ] && [ "$_b" = 0 ] || { echo "exit codes: $_a and $_b"; cat "$T_DIR/a.log" "$T_DIR/b.log"; return 1; }
	# (the second may plan before the first has opened all it planned for,
	# and then share its own connections: see the next test)
	expect_eq 40 "$(psql_q "select count(*) from information_schema.tables where table_schema = 'analytics_two'")"
}
ok "two runs of the same login at once, 32 threads each: both finish" t_two_at_once

# The room a run planned for is taken by someone else while it waits at a
# gate: the workers the server then refuses wait for the run's own
# connections, and every model is still built.
gate_setup
psql_q "GRANT SELECT ON public.gate TO \"$ROLE\"" >/dev/null
budget_project three analytics_three
model m1 "{{ config(materialized='table') }}
select 1 as i where (select public.gate_wait()) = 1"
for i in $(seq 2 40); do
	model "m$i" "{{ config(materialized='table') }}
select i + $i as i, pg_sleep(0.05) is not null as slept from {{ ref('m1') }}"
done

t_refused() {
	gate_close &&
	bg_start c "$SLUICE_BIN" run --threads 32 || return 1
	wait_until 60 at_gate || { echo "the run never reached the gate"; cat "$T_DIR/c.log"; return 1; }
	# all but one of the sessions it planned for are taken
	hold_sessions 5 || { release_sessions; return 1; }
	gate_open &&
	_c=$(bg_wait c 300) &&
	release_sessions &&
	[ "$_c" = 0 ] || { echo "exit code $_c"; cat "$T_DIR/c.log"; return 1; }
	grep "connection 'default': the server refused another session (.*); this run goes on with the [0-9]* it has" \
		"$T_DIR/c.log" || { cat "$T_DIR/c.log"; return 1; }
	expect_eq 40 "$(psql_q "select count(*) from information_schema.tables where table_schema = 'analytics_three'")"
}
ok "sessions refused after the run planned: its workers share its connections, and all 40 are built" t_refused
cd "$T_DIR/one" || exit 1

# A fuller server: the role's sessions are taken by someone else but two.
t_crowded() {
	hold_sessions 5 || { release_sessions; return 1; }
	expect_exit 0 sluice run --threads 32 --full-refresh
	_rc=$?
	release_sessions &&
	[ "$_rc" = 0 ] || return 1
	head -n 1 "$T_DIR/out" | grep '^threads: 1 of the 32 asked for' || { head -n 3 "$T_DIR/out"; return 1; }
}
ok "with 5 of its 8 sessions held elsewhere, the run goes on one at a time" t_crowded

done_testing
