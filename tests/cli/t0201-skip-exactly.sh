#!/usr/bin/env bash
# t0201: when a source changes, `sluice run` rebuilds exactly the tables
# downstream of it and reuses everything else (docs/fingerprints.md), for a
# `stats` source (seen once PostgreSQL publishes the counts) and for a
# `trigger` source (seen at once). Incremental models run incrementally
# when only their inputs changed, and from scratch when their own code did,
# unless on_code_change: incremental.
. "$(dirname "$0")/lib.sh"

new_project skip
psql_q "create schema lake;
create table lake.s1 (id int); insert into lake.s1 values (1), (2), (3);
create table lake.s2 (id int); insert into lake.s2 values (10), (20);" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: s1
      - name: s2
        change_detection: trigger
YML
# s1 -> stg1 -> v1 (view) -> m1 --+
#   \-> eph (ephemeral) -> e_tab   +-> top
#   \-> inc (incremental)          |
# s2 -> stg2 -> m2                 |
#   stg1 + stg2 -> j --------------+
# lone reads nothing.
model stg1 "{{ config(materialized='table') }}
select id from {{ source('lake', 's1') }}"
model v1 "select id from {{ ref('stg1') }}"
model m1 "{{ config(materialized='table') }}
select count(*) as n from {{ ref('v1') }}"
model eph "{{ config(materialized='ephemeral') }}
select id from {{ source('lake', 's1') }} where id > 1"
model e_tab "{{ config(materialized='table') }}
select count(*) as n from {{ ref('eph') }}"
model stg2 "{{ config(materialized='table') }}
select id from {{ source('lake', 's2') }}"
model m2 "{{ config(materialized='table') }}
select count(*) as n from {{ ref('stg2') }}"
model j "{{ config(materialized='table') }}
select (select count(*) from {{ ref('stg1') }}) * 100 + (select count(*) from {{ ref('stg2') }}) as n"
model top "{{ config(materialized='table') }}
select j.n as j, m1.n as m1 from {{ ref('j') }} j cross join {{ ref('m1') }} m1"
model lone "{{ config(materialized='table') }}
select 1 as x"
model inc "{{ config(materialized='incremental', unique_key='id') }}
select id, {% if is_incremental() %}'incremental'{% else %}'full'{% endif %}::text as phase
from {{ source('lake', 's1') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
MODELS="e_tab inc j lone m1 m2 stg1 stg2 top v1"

# built_exactly NAME...: the plan builds exactly NAME..., then `sluice run` exits 0
# with NAME... success and every other model reused.
built_exactly() {
	_p="" _r=""
	for _m in "$@"; do
		_p="$_p $_m=build"
		_r="$_r $_m=success"
	done
	plan_out || return 1
	# shellcheck disable=SC2086
	expect_eq "$(models_map reuse $_p)" "$(plan_actions)" || return 1
	expect_exit 0 sluice run || return 1
	# shellcheck disable=SC2086
	expect_eq "$(models_map reused $_r)" "$(rr_statuses)"
}
# phases: the incremental model's rows, as id:phase.
phases() { psql_q "select string_agg(id || ':' || phase, ',' order by id) from analytics.inc"; }

ok "setup: s1's statistics count the inserted rows" wait_until 10 stats_settled lake.s1 3
ok "setup: sluice sources instrument (s2 uses trigger)" expect_exit 0 sluice sources instrument

t_first() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_eq "1:full,2:full,3:full" "$(phases)"
}
ok "the first run builds all 10 models" t_first
ok "the second run reuses all of them" built_exactly

# --- a stats source ---------------------------------------------------------------

psql_q "insert into lake.s1 values (4)"
t_stats() {
	wait_until 10 plan_builds stg1 || { echo "plan never saw the insert into lake.s1:"; cat "$T_DIR/plan.json"; return 1; }
	built_exactly stg1 m1 e_tab j top inc || return 1
	expect_eq "402 4" "$(psql_q "select j || ' ' || m1 from analytics.top")" || return 1
	expect_eq 3 "$(psql_q "select n from analytics.e_tab")"
}
ok "stats: an insert into s1 rebuilds exactly stg1, m1 (through view v1), e_tab (through ephemeral eph), j, top, inc" t_stats
ok "... and the next run reuses everything" built_exactly

t_incremental_data() {
	expect_eq "1:full,2:full,3:full,4:incremental" "$(phases)"
}
ok "incremental: only its source changed: it ran incrementally (only the new row merged)" t_incremental_data

# --- a trigger source --------------------------------------------------------------

t_trigger() {
	psql_q "insert into lake.s2 values (30)" || return 1
	# No polling: the counter commits with the write.
	built_exactly stg2 m2 j top || return 1
	expect_eq 3 "$(psql_q "select n from analytics.m2")" || return 1
	expect_eq "403 4" "$(psql_q "select j || ' ' || m1 from analytics.top")"
}
ok "trigger: an insert into s2, planned at once, rebuilds exactly stg2, m2, j, top" t_trigger

t_rollback() {
	psql_q "begin; insert into lake.s2 values (40); rollback" || return 1
	built_exactly
}
ok "trigger: a rolled-back insert rebuilds nothing" t_rollback

# --- incremental models and code changes ------------------------------------------

t_inc_code() {
	model inc "{{ config(materialized='incremental', unique_key='id') }}
select id, {% if is_incremental() %}'incremental'{% else %}'rebuilt'{% endif %}::text as phase
from {{ source('lake', 's1') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
	plan_out || return 1
	expect_eq build "$(plan_action inc)" || return 1
	expect_grep '^build  inc \(full refresh\): code changed$' "$T_DIR/plan.out" || return 1
	expect_eq true "$(jq -r '.[] | select(.unique_id == "model.proj.inc") | .full_refresh' "$T_DIR/plan.json")" || return 1
	built_exactly inc || return 1
	expect_line "code changed" "$(rr_reasons inc)" || return 1
	expect_eq "1:rebuilt,2:rebuilt,3:rebuilt,4:rebuilt" "$(phases)"
}
ok "incremental: its own SQL changed: a full refresh (every row rebuilt)" t_inc_code

t_occ_key() {
	model inc "{{ config(materialized='incremental', unique_key='id', on_code_change='incremental') }}
select id, {% if is_incremental() %}'incremental'{% else %}'rebuilt'{% endif %}::text as phase
from {{ source('lake', 's1') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
	built_exactly
}
ok "incremental: adding on_code_change alone rebuilds nothing" t_occ_key

t_occ() {
	model inc "{{ config(materialized='incremental', unique_key='id', on_code_change='incremental') }}
select id, {% if is_incremental() %}'incremental'{% else %}'rebuilt again'{% endif %}::text as phase
from {{ source('lake', 's1') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
	plan_out || return 1
	expect_grep '^build  inc: code changed$' "$T_DIR/plan.out" || return 1
	expect_eq null "$(jq -r '.[] | select(.unique_id == "model.proj.inc") | .full_refresh' "$T_DIR/plan.json")" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq success "$(rr_status inc)" || return 1
	expect_eq "1:rebuilt,2:rebuilt,3:rebuilt,4:rebuilt" "$(phases)"
}
ok "incremental: on_code_change: incremental: a code change runs incrementally (old rows kept)" t_occ

t_occ_source() {
	psql_q "insert into lake.s1 values (5)" || return 1
	wait_until 10 plan_builds stg1 || { echo "plan never saw the insert into lake.s1"; return 1; }
	built_exactly stg1 m1 e_tab j top inc || return 1
	expect_eq "1:rebuilt,2:rebuilt,3:rebuilt,4:rebuilt,5:incremental" "$(phases)"
}
ok "... and its source changing then merges only the new row" t_occ_source

t_full_refresh_flag() {
	plan_out --full-refresh -s inc || return 1
	expect_grep '^build  inc \(full refresh\): --full-refresh$' "$T_DIR/plan.out" || return 1
	expect_exit 0 sluice run --full-refresh -s inc || return 1
	expect_eq "1:rebuilt again,2:rebuilt again,3:rebuilt again,4:rebuilt again,5:rebuilt again" "$(phases)"
}
ok "incremental: --full-refresh rebuilds it from scratch" t_full_refresh_flag
ok "... and then everything is reused" built_exactly

done_testing
