#!/usr/bin/env bash
# t0207: writes that happen while `sluice run` is running are never lost
# (docs/change-detection.md: "A model built while a load is still running
# reads the data as it was; the next run sees the change and rebuilds";
# "a table written, truncated or replaced outside sluice is rebuilt"):
# a source written after a model read it, a reused table written during
# the run, and a table written after sluice rebuilt it in the same run.
. "$(dirname "$0")/lib.sh"

new_project during
psql_q "create schema lake;
create table lake.t (id int); insert into lake.t values (1), (2);
create table lake.g (id int); insert into lake.g values (1), (2);" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: t
      - name: g
        change_detection: trigger
YML
model slow_t "{{ config(materialized='table') }}
select count(*) as n from {{ source('lake', 't') }}, pg_sleep(3)"
model slow_g "{{ config(materialized='table') }}
select count(*) as n from {{ source('lake', 'g') }}, pg_sleep(3)"
model quick "{{ config(materialized='table') }}
select 1 as x"
model quick_down "{{ config(materialized='table') }}
select count(*) as n from {{ ref('quick') }}"
MODELS="quick quick_down slow_g slow_t"

# sleeping MODEL: a sluice session is in MODEL's pg_sleep (its snapshot is taken).
sleeping() {
	[ "$(psql_q "select count(*) from pg_stat_activity where datname = current_database()
		and application_name like 'sluice/%' and state = 'active' and query like '%pg_sleep%'
		and query like '%$1%'")" -ge 1 ]
}

ok "setup: lake.t's statistics count the inserted rows" wait_until 10 stats_settled lake.t 2
ok "setup: sluice sources instrument" expect_exit 0 sluice sources instrument
ok "setup: the first run builds everything" expect_exit 0 sluice run
t_reused() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)"
}
ok "setup: the second reuses everything" t_reused

# --- a source written while a model that reads it is being built --------------------

# t_source_during KIND MODEL TABLE: force a rebuild of MODEL; while it sleeps (its
# snapshot taken), insert into TABLE; MODEL has the old count, and the next plan rebuilds it.
t_source_during() {
	bg_start "R_$1" "$SLUICE_BIN" run --force -s "$2" || return 1
	wait_until 20 sleeping "$2" || { echo "the run never reached pg_sleep"; cat "$T_DIR/R_$1.log"; return 1; }
	psql_q "insert into lake.$3 values (3)" || return 1
	expect_eq 0 "$(bg_wait "R_$1" 20)" || { cat "$T_DIR/R_$1.log"; return 1; }
	expect_eq 2 "$(psql_q "select n from analytics.$2")" || return 1
	if [ "$1" = stats ]; then
		wait_until 10 stats_settled "lake.$3" 3 || { echo "the statistics never counted the insert"; return 1; }
	fi
	plan_out || return 1
	expect_eq "$(models_map reuse "$2=build")" "$(plan_actions)" || return 1
	plan_reasons "$2" | grep -q "^source 'lake.$3' changed (" || { echo "reasons:"; plan_reasons "$2"; return 1; }
	expect_exit 0 sluice run || return 1
	expect_eq 3 "$(psql_q "select n from analytics.$2")"
}
ok "stats: a source written during the build of a model that read it: the next run rebuilds it" \
	t_source_during stats slow_t t
ok "trigger: the same with a trigger source" t_source_during trigger slow_g g

# --- sluice's own tables written during a run ----------------------------------------

t_reused_written() {
	bg_start W1 "$SLUICE_BIN" run --force -s slow_t || return 1
	wait_until 20 sleeping slow_t || { echo "the run never reached pg_sleep"; return 1; }
	psql_q "insert into analytics.quick values (99)" || return 1
	expect_eq 0 "$(bg_wait W1 20)" || return 1
	wait_until 10 plan_builds quick || { echo "plan never noticed the insert:"; cat "$T_DIR/plan.json"; return 1; }
	plan_out || return 1
	expect_eq "relation analytics.quick was changed outside sluice" "$(plan_reasons quick)" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq 0 "$(psql_q "select count(*) from analytics.quick where x = 99")"
}
ok "a table not rebuilt in a run, written outside sluice during it: the next run rebuilds it" t_reused_written

t_rebuilt_written() {
	# quick and quick_down are rebuilt at once; slow_t and slow_g keep the run
	# going while quick is written.
	bg_start W2 "$SLUICE_BIN" run --force --threads 4 || return 1
	wait_until 20 grep -q 'OK table analytics.quick_down ' "$T_DIR/W2.log" ||
		{ echo "quick and quick_down were never built:"; cat "$T_DIR/W2.log"; return 1; }
	sleeping slow_t || { echo "the run is no longer in slow_t"; cat "$T_DIR/W2.log"; return 1; }
	psql_q "insert into analytics.quick values (99)" || return 1
	expect_eq 0 "$(bg_wait W2 20)" || { cat "$T_DIR/W2.log"; return 1; }
	wait_until 10 plan_builds quick || { echo "plan never noticed the insert:"; cat "$T_DIR/plan.json"; return 1; }
	plan_out || return 1
	expect_eq "relation analytics.quick was changed outside sluice" "$(plan_reasons quick)"
}
ok "a table rebuilt early in a run, written outside sluice later in that run: the next run rebuilds it" t_rebuilt_written

done_testing
