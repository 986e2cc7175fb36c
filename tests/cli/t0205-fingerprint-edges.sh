#!/usr/bin/env bash
# t0205: what the fingerprint's definition implies at its edges
# (docs/fingerprints.md): ephemeral models are part of their children's
# code; keyword case and string literals are code; views are re-created
# only for definition changes but pass their inputs' changes on; sources
# with change_detection always/never; and `sluice plan` changes nothing.
. "$(dirname "$0")/lib.sh"

new_project edges
psql_q "create schema lake;
create table lake.t (id int); insert into lake.t values (1), (2);
create table lake.codes (code text); insert into lake.codes values ('a');" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: t
      - name: live
        identifier: t
        change_detection: always
      - name: codes
        change_detection: never
      # The same table through stats, read by no model: to see when a write is counted.
      - name: codes_stats
        identifier: codes
YML
model eph "{{ config(materialized='ephemeral') }}
select id from {{ source('lake', 't') }}"
model from_eph "{{ config(materialized='table') }}
select count(*) as n from {{ ref('eph') }}"
model kw "{{ config(materialized='table') }}
select 'abc' as s"
model v "select 1 as x"
model under_v "{{ config(materialized='table') }}
select x from {{ ref('v') }}"
model every "{{ config(materialized='table') }}
select count(*) as n from {{ source('lake', 'live') }}"
model ref_codes "{{ config(materialized='table') }}
select code from {{ source('lake', 'codes') }}"
MODELS="every from_eph kw ref_codes under_v v"

# run_built NAME...: `sluice run` exits 0 with NAME... success and the rest reused
# (`every` reads an `always` source: it is built on every run).
run_built() {
	_r=" every=success"
	for _m in "$@"; do _r="$_r $_m=success"; done
	expect_exit 0 sluice run || return 1
	# shellcheck disable=SC2086
	expect_eq "$(models_map reused $_r)" "$(rr_statuses)"
}

settled() { stats_settled lake.t 2 && stats_settled lake.codes_stats 1; }
ok "setup: the statistics of the sources count the inserted rows" wait_until 10 settled
t_first() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)"
}
ok "the first run builds everything" t_first
ok "the second reuses everything but the model over an 'always' source" run_built

# --- code ------------------------------------------------------------------------

t_eph() {
	model eph "{{ config(materialized='ephemeral') }}
select id from {{ source('lake', 't') }} where id > 1"
	plan_out || return 1
	expect_line "code changed" "$(plan_reasons from_eph)" || return 1
	run_built from_eph || return 1
	expect_line "code changed" "$(rr_reasons from_eph)" || return 1
	expect_eq 1 "$(psql_q "select n from analytics.from_eph")"
}
ok "an ephemeral model's code is part of its child's: editing it rebuilds the child (code changed)" t_eph

t_case() {
	model kw "{{ config(materialized='table') }}
SELECT 'abc' AS s"
	plan_out || return 1
	expect_eq "code changed" "$(plan_reasons kw)" || return 1
	run_built kw
}
ok "upper/lower case of SQL keywords is a code change" t_case

t_literal() {
	model kw "{{ config(materialized='table') }}
SELECT 'a  b' AS s"
	run_built kw || return 1
	model kw "{{ config(materialized='table') }}
SELECT 'a b' AS s"
	plan_out || return 1
	expect_eq "code changed" "$(plan_reasons kw)" || return 1
	run_built kw || return 1
	expect_eq "a b" "$(psql_q "select s from analytics.kw")"
}
ok "white space inside a string literal is content: a code change" t_literal

# --- views ----------------------------------------------------------------------

t_view_code() {
	model v "select 2 as x"
	plan_out || return 1
	expect_eq "code changed" "$(plan_reasons v)" || return 1
	expect_eq "upstream 'v' changed" "$(plan_reasons under_v)" || return 1
	run_built v under_v || return 1
	expect_eq 2 "$(psql_q "select x from analytics.under_v")"
}
ok "a view whose code changed is re-created, and the table below it rebuilt" t_view_code

t_view_missing() {
	psql_q "drop view analytics.v" || return 1
	plan_out || return 1
	expect_eq "relation analytics.v is missing (dropped outside sluice?)" "$(plan_reasons v)" || return 1
	run_built v || return 1
	expect_eq 2 "$(psql_q "select x from analytics.v")"
}
ok "a view dropped outside sluice is re-created (the table below it is not rebuilt: same definition)" t_view_missing

# --- selection -------------------------------------------------------------------

t_selected_child() {
	model eph "{{ config(materialized='ephemeral') }}
select id from {{ source('lake', 't') }} where id > 0"
	model v "select 3 as x"
	# Only the table below the changed view is selected: the view is not re-created,
	# so the table below it has nothing new to read.
	expect_exit 0 sluice run -s under_v || return 1
	expect_eq "under_v=reused" "$(rr_statuses)" || return 1
	expect_eq 2 "$(psql_q "select x from analytics.under_v")" || return 1
	# When the view is built, the table below it is rebuilt too.
	run_built v under_v from_eph || return 1
	expect_eq 3 "$(psql_q "select x from analytics.under_v")"
}
ok "a child run alone while its parent is stale is reused; it is rebuilt once the parent is" t_selected_child

# --- always and never -------------------------------------------------------------

t_always() {
	plan_out || return 1
	expect_eq build "$(plan_action every)" || return 1
	plan_reasons every | grep -Eq "^source 'lake.live' changed \(always:[0-9a-f-]+ -> always:[0-9a-f-]+\)$" ||
		{ echo "every's reasons:"; plan_reasons every; return 1; }
	run_built
}
ok "change_detection: always: the model is rebuilt on every run ('source ... changed')" t_always

t_never() {
	psql_q "insert into lake.codes values ('b')" || return 1
	# Give the statistics time to tell, so that a stats-based change would show.
	wait_until 10 stats_settled lake.codes_stats 2 || { echo "lake.codes's statistics never counted the insert"; return 1; }
	run_built || return 1
	expect_eq a "$(psql_q "select string_agg(code, ',' order by code) from analytics.ref_codes")"
}
ok "change_detection: never: a write to the source rebuilds nothing" t_never

t_never_code() {
	model ref_codes "{{ config(materialized='table') }}
select code from {{ source('lake', 'codes') }} order by code"
	run_built ref_codes || return 1
	expect_eq "a,b" "$(psql_q "select string_agg(code, ',' order by code) from analytics.ref_codes")"
}
ok "change_detection: never: the model still rebuilds when its own code changes" t_never_code

# --- plan changes nothing -----------------------------------------------------------

# snapshot DIR: checksums of DIR's files (the state, target/)
snapshot() { find "$1" -type f -exec md5sum {} + | sort; }
relations() {
	psql_q "select c.relname || ':' || c.relfilenode from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'analytics' order by 1"
}
model kw "{{ config(materialized='table') }}
select 'changed' as s"
psql_q "drop table analytics.from_eph"
state_before=$(snapshot .sluice)
target_before=$(snapshot target)
relations_before=$(relations)
plan_out >"$T_DIR/plan_pure.out" 2>&1
cp "$T_DIR/plan.out" "$T_DIR/plan1.out"

t_plan_state() {
	cat "$T_DIR/plan_pure.out"
	expect_eq build "$(plan_action kw)" || return 1
	expect_eq build "$(plan_action from_eph)" || return 1
	expect_eq "$state_before" "$(snapshot .sluice)" || return 1
	expect_eq "$relations_before" "$(relations)" || return 1
	# The same plan again: nothing was recorded.
	plan_out || return 1
	expect_eq "$(grep -v '^build  every' "$T_DIR/plan1.out")" "$(grep -v '^build  every' "$T_DIR/plan.out")"
}
ok "sluice plan changes neither the state nor the database (a dropped table stays dropped)" t_plan_state
# target/run is "the statements its materialization runs" (docs/materializations.md).
t_plan_target() {
	printf '%s\n' "$target_before" >"$T_DIR/target.before"
	snapshot target >"$T_DIR/target.after" || return 1
	diff "$T_DIR/target.before" "$T_DIR/target.after" && return 0
	echo "(< before sluice plan, > after)"
	return 1
}
ok "sluice plan leaves target/ alone (no compiled SQL or statements that were never run)" t_plan_target
ok "... and the next run builds what the plan said" run_built kw from_eph

done_testing
