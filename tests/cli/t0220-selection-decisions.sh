#!/usr/bin/env bash
# t0220: a node's decision, and the fingerprint it records, never depend
# on what was selected (docs/fingerprints.md, "Selection"). A view that is
# not selected is still read as it is now, so what selects a table below
# it sees what the view sees; a table that is not selected passes on what
# it last built.
. "$(dirname "$0")/lib.sh"

new_project sel
psql_q "create schema raw;
create table raw.t (k int, v int); insert into raw.t values (1, 10), (2, 20);
create table raw.u (k int, v int); insert into raw.u values (1, 100), (2, 200);
create table raw.e (id int); insert into raw.e values (1), (2);" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: raw
    tables:
      - name: t
        change_detection: trigger
      - name: u
        change_detection: trigger
      - name: e
        change_detection: trigger
YML
# raw.t -> a (table) --+
#                      +-> b (table) -> c (table)
# raw.u -> vu (view) --+
# raw.e -> stg_e (view) -> inc (incremental)
model a "{{ config(materialized='table') }}
select k, v from {{ source('raw', 't') }}"
model vu "select k, v from {{ source('raw', 'u') }}"
model b "{{ config(materialized='table') }}
select a.k, a.v + vu.v as v from {{ ref('a') }} a join {{ ref('vu') }} vu using (k)"
model c "{{ config(materialized='table') }}
select sum(v) as total from {{ ref('b') }}"
model stg_e "select id from {{ source('raw', 'e') }}"
model inc "{{ config(materialized='incremental', unique_key='id') }}
select id from {{ ref('stg_e') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"

ok "setup: sluice sources instrument" expect_exit 0 sluice sources instrument
ok "setup: the first run builds everything" expect_exit 0 sluice run

psql_q "update raw.u set v = v + 1" >/dev/null

t_plan_selected() {
	plan_out -s b || return 1
	expect_eq build "$(plan_action b)" || return 1
	expect_line "upstream 'vu' changed" "$(plan_reasons b)" || return 1
	# what the full plan decides for b, the selection decides too
	plan_out || return 1
	expect_eq build "$(plan_action b)"
}
ok "plan -s b sees that the view it reads, not selected, reads a changed source" t_plan_selected

t_run_selected() {
	expect_exit 0 sluice run -s b || return 1
	expect_eq success "$(rr_status b)" || return 1
	expect_eq "1:111 2:221" "$(psql_q "select string_agg(k || ':' || v, ' ' order by k) from analytics.b")"
}
ok "run -s b rebuilds b from what the view reads now" t_run_selected

t_full_plan_after() {
	plan_out || return 1
	expect_eq reuse "$(plan_action b)" || return 1
	expect_eq build "$(plan_action c)" || return 1
	expect_line "upstream 'b' changed" "$(plan_reasons c)"
}
ok "after run -s b, the full plan does not want b again, only c below it" t_full_plan_after

t_unselected_table() {
	psql_q "update raw.t set v = v + 5" >/dev/null || return 1
	# a is stale, but not selected: b passes on what a last built, so b is up to date
	plan_out -s b || return 1
	expect_eq reuse "$(plan_action b)" || return 1
	plan_out -s a+ || return 1
	expect_eq "a=build b=build c=build" "$(plan_actions)"
}
ok "an unselected table passes on what it last built, a selected one what it will build" t_unselected_table
ok "run catches up" expect_exit 0 sluice run

t_incremental_behind_view() {
	psql_q "insert into raw.e values (3), (4)" >/dev/null || return 1
	expect_exit 0 sluice run -s inc || return 1
	expect_eq success "$(rr_status inc)" || return 1
	expect_eq 4 "$(psql_q "select count(*) from analytics.inc")"
}
ok "new rows behind a staging view reach an incremental model run alone" t_incremental_behind_view

t_threads() {
	psql_q "update raw.u set v = v + 1" >/dev/null || return 1
	# b waits for a through nothing, but for vu's parents it must not race
	expect_exit 0 sluice run --threads 4 -s a b c || return 1
	expect_eq "a=reused b=success c=success" "$(rr_statuses)" || return 1
	plan_out || return 1
	expect_eq "a=reuse b=reuse c=reuse inc=reuse stg_e=reuse vu=reuse" "$(plan_actions)"
}
ok "with threads, a selection leaves nothing the full plan would still build" t_threads

done_testing
