#!/usr/bin/env bash
# t0203: one run at a time holds the state's lock (local and warehouse
# state): a second run fails at once naming the holder, or waits with
# --wait-lock and then sees what the first one built; nothing is corrupted.
# A run killed with -9 leaves no half-built relations, and the next run
# rebuilds exactly what did not finish; an interrupted (SIGINT) model says
# 'last run was interrupted'. The slow models wait at a gate (lib.sh) that the
# test opens when it is done acting on the run that waits.
. "$(dirname "$0")/lib.sh"
gate_setup || { echo "Bail out! cannot create the gate"; exit 1; }

# project DIR SCHEMA [STATE]: a project in its own schema (and, for warehouse
# state, with its own name: warehouse state is keyed by project and target).
project() {
	new_project "$1"
	sed -i "s/^name: proj$/name: $1/" sluice.yml
	sed -i "s/^      schema: analytics$/      schema: $2/" profiles.yml
	[ -n "${3:-}" ] && echo "state: $3" >>sluice.yml
	grep -q "schema: $2" profiles.yml || { echo "Bail out! profiles.yml not edited"; exit 1; }
}

# no_sessions: the server has noticed that every sluice session is gone.
no_sessions() {
	[ "$(psql_q "select count(*) from pg_stat_activity where datname = current_database()
		and application_name like 'sluice/%'")" = 0 ]
}
# leftovers: side relations (__sluice_new, __sluice_old) anywhere in the database.
leftovers() { psql_q "select string_agg(n.nspname || '.' || c.relname, ' ') from pg_class c
	join pg_namespace n on n.oid = c.relnamespace where position('__sluice_' in c.relname) > 0"; }
# exists SCHEMA.NAME: t or f.
exists() { psql_q "select to_regclass('$1') is not null"; }

# lock_tests KIND: the lock tests, in the current project (first, slow, after).
lock_tests() {
	kind=$1
	model first "{{ config(materialized='table') }}
select 1 as x"
	# Never built before the first run: a waiting run that planned before the
	# lock was its would build it again.
	model slow "{{ config(materialized='table') }}
select x from {{ ref('first') }} where (select public.gate_wait()) = 1"
	model after "{{ config(materialized='table') }}
select x + 1 as x from {{ ref('slow') }}"

	gate_close || exit 1
	bg_start "A_$kind" "$SLUICE_BIN" run
	ok "$kind: a first run is building (slow waits at the gate)" wait_until 60 at_gate

	# The first run holds the lock until the gate opens, so a run that waited
	# for the lock would only end at its timeout. The time "at once" takes,
	# B.ms, is the yardstick of t_wait_gives_up.
	t_fail_fast() {
		t0=$(date +%s%N)
		timeout 30 "$SLUICE_BIN" run >"$T_DIR/B.out" 2>&1
		rc=$?
		ms=$((($(date +%s%N) - t0) / 1000000))
		echo "$ms" >"$T_DIR/B.ms" || return 1
		cat "$T_DIR/B.out"
		[ "$rc" != 124 ] || { echo "the second run waited for the lock"; return 1; }
		[ "$rc" != 0 ] || { echo "the second run exited 0"; return 1; }
		[ ! -s "$T_DIR/A_$kind.rc" ] || { echo "the first run had already ended"; return 1; }
		[ "$ms" -lt 10000 ] || { echo "the second run took $ms ms to fail"; return 1; }
		# docs/state.md: state is locked by alice (pid 4242 on host ci-7, run 6f1c...)
		# since 2026-11-24T19:00:02Z; wait with --wait-lock SECONDS
		expect_grep 'state is locked by tester \(pid [0-9]+ on host [^,]+, run [0-9a-f-]+\) since [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z; wait with --wait-lock SECONDS$' "$T_DIR/B.out"
	}
	ok "$kind: a second run fails at once (exit non-zero), naming the holder and since when" t_fail_fast

	t_plan_unlocked() {
		expect_exit 0 timeout 30 "$SLUICE_BIN" plan || return 1
		[ ! -s "$T_DIR/A_$kind.rc" ] || { echo "the first run had already ended"; return 1; }
	}
	ok "$kind: sluice plan does not wait for the lock" t_plan_unlocked

	# C, started before the run that waits a second, meets the lock before
	# that one gives up; it must then be waiting, not failed.
	bg_start "C_$kind" "$SLUICE_BIN" run --wait-lock 60
	# "About a second": at least 1 s, and at most 3 s more than failing at
	# once took (B.ms), whatever the load.
	t_wait_gives_up() {
		t0=$(date +%s%N)
		timeout 30 "$SLUICE_BIN" run --wait-lock 1 >"$T_DIR/B1.out" 2>&1
		rc=$?
		ms=$((($(date +%s%N) - t0) / 1000000))
		cat "$T_DIR/B1.out"
		[ "$rc" != 0 ] || { echo "the run exited 0"; return 1; }
		[ ! -s "$T_DIR/A_$kind.rc" ] || { echo "the first run had already ended"; return 1; }
		b_ms=$(cat "$T_DIR/B.ms") || return 1
		[ "$ms" -ge 1000 ] && [ "$ms" -lt $((b_ms + 4000)) ] ||
			{ echo "it gave up after $ms ms (failing at once took $b_ms ms)"; return 1; }
		expect_grep 'state is locked by tester ' "$T_DIR/B1.out"
	}
	ok "$kind: --wait-lock 1 gives up after about a second, naming the holder" t_wait_gives_up

	t_third_waiting() {
		[ ! -s "$T_DIR/C_$kind.rc" ] || { echo "the run with --wait-lock 60 ended while the lock was held:"; cat "$T_DIR/C_$kind.log"; return 1; }
		[ ! -s "$T_DIR/A_$kind.rc" ] || { echo "the first run had already ended"; return 1; }
	}
	ok "$kind: meanwhile a third run, with --wait-lock 60, is waiting" t_third_waiting

	gate_open || exit 1
	t_waits() {
		expect_eq 0 "$(bg_wait "A_$kind" 60)" || { cat "$T_DIR/A_$kind.log"; return 1; }
		expect_eq 0 "$(bg_wait "C_$kind" 60)" || { cat "$T_DIR/C_$kind.log"; return 1; }
		cat "$T_DIR/C_$kind.log"
		expect_grep 'Done in .*: 0 ok, 0 error, 0 skipped, 3 reused$' "$T_DIR/C_$kind.log" || return 1
		expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)"
	}
	ok "$kind: once the gate opens, the third run gets the lock after the first, exits 0, and reuses what it built" t_waits

	t_intact() {
		expect_exit 0 sluice run || return 1
		expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)" || return 1
		expect_exit 0 sluice run --force -s first+ || return 1
		expect_eq "after=success first=success slow=success" "$(rr_statuses)"
	}
	ok "$kind: the state is intact: the next run reuses everything, a forced one rebuilds" t_intact
}

# --- the lock, local state -------------------------------------------------------

project lk analytics_lk
lock_tests local

# --- the lock, warehouse state ---------------------------------------------------

project wh analytics_wh warehouse
lock_tests warehouse

# kill9 NAME ARGS...: start `sluice ARGS`, kill -9 it while slow (or k2) waits
# at the gate, then open the gate: the server's session of the killed run
# goes on until its query ends.
kill9() {
	n=$1
	shift
	gate_close || return 1
	bg_start "$n" "$SLUICE_BIN" "$@" || { gate_open; return 1; }
	wait_until 60 at_gate || { echo "the run never reached the gate"; cat "$T_DIR/$n.log"; gate_open; return 1; }
	kill -KILL "$BG_PID" || { gate_open; return 1; }
	gate_open || return 1
	expect_eq "signal 9" "$(bg_wait "$n" 10)"
}

t_wh_kill() {
	model first "{{ config(materialized='table') }}
select 2 as x"
	kill9 W run || return 1
	wait_until 20 no_sessions || { echo "the server still has sluice sessions"; return 1; }
	expect_eq "" "$(leftovers)" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "after=success first=reused slow=success" "$(rr_statuses)" || return 1
	expect_eq 3 "$(psql_q "select x from analytics_wh.after")"
}
ok "warehouse: after a run killed with -9, the next run takes the lock and rebuilds what did not finish" t_wh_kill

# --- kill -9 in the middle of a run ---------------------------------------------------

project crash analytics_crash
psql_q "create schema lake; create table lake.s (id int); insert into lake.s values (1), (2);" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: s
YML
# With one thread: k1, then k2 (it waits at the gate, when that is closed),
# then k3 and k4 (the longest path goes first).
model k1 "{{ config(materialized='table') }}
select count(*) as n from {{ source('lake', 's') }}"
model k2 "{{ config(materialized='table') }}
select n from {{ ref('k1') }} where (select public.gate_wait()) = 1"
model k3 "{{ config(materialized='table') }}
select n from {{ ref('k2') }}"
model k4 "{{ config(materialized='table') }}
select 4 as x"
ok "crash: setup: the source's statistics count the inserted rows" wait_until 10 stats_settled lake.s 2

t_kill_first() {
	kill9 K1 run --threads 1 || return 1
	expect_eq "t f f" "$(exists analytics_crash.k1) $(exists analytics_crash.k2) $(exists analytics_crash.k4)"
}
ok "crash: a first build killed -9 while k2 runs: k1 was built, k2 and k4 were not" t_kill_first
ok "crash: the server notices the dead sessions" wait_until 20 no_sessions
ok "crash: ... and no __sluice_new/__sluice_old relation is left" expect_eq "" "$(leftovers)"

t_resume() {
	expect_exit 0 sluice run --threads 1 || return 1
	expect_eq "k1=reused k2=success k3=success k4=success" "$(rr_statuses)" || return 1
	expect_eq 2 "$(psql_q "select n from analytics_crash.k3")"
}
ok "crash: the next run reuses k1, builds k2, k3 below it, and k4 after it" t_resume

t_all_reused() {
	expect_exit 0 sluice run || return 1
	expect_eq "k1=reused k2=reused k3=reused k4=reused" "$(rr_statuses)"
}
ok "crash: and the run after that reuses everything" t_all_reused

psql_q "insert into lake.s values (3)"
t_kill_rebuild() {
	wait_until 10 stats_settled lake.s 3 || { echo "lake.s's statistics never counted the insert"; return 1; }
	kill9 K2 run --threads 1 || return 1
	# k1 was rebuilt; k2 still has the version of the last finished run.
	expect_eq "3 2" "$(psql_q "select (select n from analytics_crash.k1) || ' ' || (select n from analytics_crash.k2)")"
}
ok "crash: a rebuild killed -9 in k2 (after k1 was rebuilt) leaves the old k2 readable" t_kill_rebuild
ok "crash: the server notices the dead sessions" wait_until 20 no_sessions
ok "crash: ... and no __sluice_new/__sluice_old relation is left" expect_eq "" "$(leftovers)"

t_resume_rebuild() {
	plan_out || return 1
	expect_eq "k1=reuse k2=build k3=build k4=reuse" "$(plan_actions)" || return 1
	expect_exit 0 sluice run --threads 1 || return 1
	expect_eq "k1=reused k2=success k3=success k4=reused" "$(rr_statuses)" || return 1
	expect_line "upstream 'k1' changed" "$(rr_reasons k2)" || return 1
	expect_eq 3 "$(psql_q "select n from analytics_crash.k3")"
}
ok "crash: the next run reuses k1 (its record survived the kill) and builds k2 and k3 only" t_resume_rebuild
ok "crash: and the run after that reuses everything" t_all_reused

# --- SIGINT: last run was interrupted ---------------------------------------------------

psql_q "insert into lake.s values (4)"
t_sigint() {
	wait_until 10 stats_settled lake.s 4 || { echo "lake.s's statistics never counted the insert"; return 1; }
	gate_close || return 1
	bg_start I "$SLUICE_BIN" run --threads 1 || { gate_open; return 1; }
	wait_until 60 at_gate || { echo "the run never reached the gate"; cat "$T_DIR/I.log"; gate_open; return 1; }
	kill -INT "$BG_PID" || { gate_open; return 1; }
	expect_eq 130 "$(bg_wait I 20)" || { cat "$T_DIR/I.log"; gate_open; return 1; }
	gate_open || return 1
	expect_eq 3 "$(psql_q "select n from analytics_crash.k2")" || return 1
	plan_out || return 1
	expect_eq build "$(plan_action k2)" || return 1
	expect_line "last run was interrupted" "$(plan_reasons k2)" || return 1
	expect_line "last run was interrupted" "$(plan_json_reasons k2)"
}
ok "interrupted (SIGINT, exit 130) in k2: the old k2 stays; plan says 'last run was interrupted'" t_sigint

t_sigint_resume() {
	expect_exit 0 sluice run --threads 1 || return 1
	expect_eq "k1=reused k2=success k3=success k4=reused" "$(rr_statuses)" || return 1
	expect_line "last run was interrupted" "$(rr_reasons k2)" || return 1
	expect_eq 4 "$(psql_q "select n from analytics_crash.k3")"
}
ok "... and the next run rebuilds k2 ('last run was interrupted') and k3, reusing k1" t_sigint_resume
ok "... and the run after that reuses everything" t_all_reused

done_testing
