#!/usr/bin/env bash
# t0204: early cutoff (docs/fingerprints.md, "Early cutoff"). A table with
# `cutoff: checksum` that is rebuilt but produces the same rows as before
# keeps its effective fingerprint, so the models below it are reused; when
# its output changes, they are rebuilt. Without cutoff, any rebuild
# cascades.
. "$(dirname "$0")/lib.sh"

new_project cut
psql_q "create schema lake; create table lake.log (id int); insert into lake.log values (1), (2);" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: log
YML
# cut -> below -> below2, with cutoff on cut; nocut -> nocut_below, without.
model cut "{{ config(materialized='table', cutoff='checksum') }}
select 1 as x"
model below "{{ config(materialized='table') }}
select x * 10 as y from {{ ref('cut') }}"
model below2 "{{ config(materialized='table') }}
select y + 1 as z from {{ ref('below') }}"
model nocut "{{ config(materialized='table') }}
select 1 as x"
model nocut_below "{{ config(materialized='table') }}
select x * 10 as y from {{ ref('nocut') }}"
# A dimension over an append-only log: the log grows, the output rarely changes.
model dim "{{ config(materialized='table', cutoff='checksum') }}
select count(*) > 0 as nonempty from {{ source('lake', 'log') }}"
model dim_below "{{ config(materialized='table') }}
select nonempty from {{ ref('dim') }}"
MODELS="below below2 cut dim dim_below nocut nocut_below"

# run_built NAME...: `sluice run` exits 0 with NAME... success and the rest reused.
run_built() {
	_r=""
	for _m in "$@"; do _r="$_r $_m=success"; done
	expect_exit 0 sluice run || return 1
	# shellcheck disable=SC2086
	expect_eq "$(models_map reused $_r)" "$(rr_statuses)"
}

ok "setup: the log's statistics count the inserted rows" wait_until 10 stats_settled lake.log 2
t_first() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)"
}
ok "the first run builds everything" t_first
ok "the second reuses everything" run_built

t_same_output() {
	model cut "{{ config(materialized='table', cutoff='checksum') }}
select 1 as x where true"
	run_built cut || return 1
	expect_line "code changed" "$(rr_reasons cut)"
}
ok "cutoff: code changed, same output: cut is rebuilt, below and below2 are reused" t_same_output
ok "... and the next run reuses everything" run_built

t_control() {
	model nocut "{{ config(materialized='table') }}
select 1 as x where true"
	run_built nocut nocut_below || return 1
	expect_line "upstream 'nocut' changed" "$(rr_reasons nocut_below)"
}
ok "without cutoff, the same edit rebuilds the table below too" t_control

t_new_output() {
	model cut "{{ config(materialized='table', cutoff='checksum') }}
select 2 as x"
	run_built cut below below2 || return 1
	expect_line "upstream 'cut' changed" "$(rr_reasons below)" || return 1
	expect_line "upstream 'below' changed" "$(rr_reasons below2)" || return 1
	expect_eq 21 "$(psql_q "select z from analytics.below2")"
}
ok "cutoff: when the output changes, below and below2 are rebuilt" t_new_output
ok "... and the next run reuses everything" run_built

t_back() {
	model cut "{{ config(materialized='table', cutoff='checksum') }}
select 1 as x"
	run_built cut below below2 || return 1
	expect_eq 11 "$(psql_q "select z from analytics.below2")"
}
ok "cutoff: an output that goes back to an earlier value is a change too" t_back

t_source() {
	psql_q "insert into lake.log values (3)" || return 1
	wait_until 10 plan_builds dim || { echo "plan never saw the insert into lake.log"; return 1; }
	run_built dim || return 1
	expect_line "source 'lake.log' changed" "$(rr_reasons dim | sed 's/ (.*//')"
}
ok "cutoff: the source of a dimension grows, the dimension is rebuilt, same rows: dim_below is reused" t_source

t_source_empty() {
	psql_q "delete from lake.log" || return 1
	wait_until 10 plan_builds dim || { echo "plan never saw the delete from lake.log"; return 1; }
	run_built dim dim_below || return 1
	expect_eq f "$(psql_q "select nonempty from analytics.dim_below")"
}
ok "cutoff: when the dimension's rows change, dim_below is rebuilt" t_source_empty
ok "... and the next run reuses everything" run_built

done_testing
