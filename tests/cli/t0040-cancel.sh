#!/usr/bin/env bash
# t0040: SIGINT / SIGTERM during a run: the running statement is cancelled
# on the server, its table keeps its previous version, run_results.json is
# written, and the exit code is 130 / 143.
. "$(dirname "$0")/lib.sh"

new_project c
model sleepy "{{ config(materialized='table') }}
select 1 as id"
model after "select id from {{ ref('sleepy') }}"
ok "the previous version of sleepy is built" expect_exit 0 sluice run

model sleepy "{{ config(materialized='table') }}
select 2 as id where (select count(*) from pg_sleep(30)) = 1"
# The view after is dropped so that we can see it is not rebuilt.
psql_q "drop view analytics.after" || exit 1

# Sessions of this test's runs that are still executing the slow statement.
sleeping() {
	psql_q "select count(*) from pg_stat_activity
		where datname = current_database() and application_name = 'sluice/tester'
			and state = 'active' and query like '%pg_sleep(30)%'"
}
is_sleeping() { [ "$(sleeping)" -ge 1 ]; }
none_sleeping() { [ "$(sleeping)" = 0 ]; }

# interrupt SIGNAL CODE: run, wait for the slow statement, signal, check.
interrupt() {
	sig=$1 want=$2
	rm -f target/run_results.json
	bg_start "run$sig" "$SLUICE_BIN" run --threads 1 || return 1
	wait_until 15 is_sleeping || { echo "the slow statement never started"; cat "$T_DIR/run$sig.log"; return 1; }
	sleep 0.5
	t0=$(date +%s%N)
	kill -"$sig" "$BG_PID" || return 1
	rc=$(bg_wait "run$sig" 10) || return 1
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "sluice exited with '$rc' ${ms}ms after SIG$sig"
	cat "$T_DIR/run$sig.log"
	expect_eq "$want" "$rc" || return 1
	[ "$ms" -le 5000 ] || { echo "took more than 5 s to exit"; return 1; }
}

check_results() {
	[ -f target/run_results.json ] || { echo "no target/run_results.json"; return 1; }
	expect_eq error "$(rr '.results[] | select(.unique_id == "model.proj.sleepy") | .status')" || return 1
	msg=$(rr '.results[] | select(.unique_id == "model.proj.sleepy") | .message') || return 1
	echo "$msg" | grep -qi cancel || { echo "message does not mention cancel: $msg"; return 1; }
	expect_eq skipped "$(rr '.results[] | select(.unique_id == "model.proj.after") | .status')"
}

check_db() {
	expect_eq 1 "$(psql_q "select string_agg(id::text, ',') from analytics.sleepy")" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname in ('after', 'sleepy__sluice_new', 'sleepy__sluice_old')")"
}

for s in INT:130 TERM:143; do
	sig=${s%:*} code=${s#*:}
	ok "SIG$sig during a run: exit $code within 5 s" interrupt "$sig" "$code"
	ok "SIG$sig: run_results.json has sleepy error (cancelled) and after skipped" check_results
	ok "SIG$sig: the previous version of sleepy is intact, after not built" check_db
	ok "SIG$sig: the statement is no longer running on the server" wait_until 3 none_sleeping
done

# SIGTERM before the first node starts (here while a model's run_query
# sleeps as it compiles): sluice holds the signal until its executor
# starts, which cancels at once; the run ends 143 with run_results.json
# written, rather than dying of the signal with nothing recorded.
compiling() {
	[ "$(psql_q "select count(*) from pg_stat_activity
		where datname = current_database() and state = 'active' and query like '%pg_sleep(2.5)%'
			and query not like '%pg_stat_activity%'")" -ge 1 ]
}
t_term_before_nodes() {
	model slowparse "{% do run_query('select pg_sleep(2.5)') %}select 1 as x" &&
	rm -f target/run_results.json &&
	bg_start early "$SLUICE_BIN" run --threads 1 -s slowparse || return 1
	# only once sluice is compiling (its run_query sleeps), not while it starts
	wait_until 15 compiling || { echo "the compile-time query never started"; cat "$T_DIR/early.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	rc=$(bg_wait early 15) || return 1
	rm -f models/slowparse.sql
	cat "$T_DIR/early.log"
	expect_eq 143 "$rc" || return 1
	[ -f target/run_results.json ] || { echo "no target/run_results.json"; return 1; }
	expect_eq skipped "$(rr '.results[] | select(.unique_id == "model.proj.slowparse") | .status')"
}
ok "SIGTERM before the first node: exit 143, run_results.json written, nothing built" t_term_before_nodes

done_testing
