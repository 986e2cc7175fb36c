#!/usr/bin/env bash
# t0202: the Groundhog Day test. With `state: warehouse` the state lives in
# the database (sluice_meta), so a fresh worker (no .sluice/, no target/,
# even another checkout directory) wakes up knowing what was built: it
# reuses everything and rebuilds only what a changed source reaches. With
# the default local state, the same fresh worker rebuilds everything.
. "$(dirname "$0")/lib.sh"

new_project gh
echo "state: warehouse" >>sluice.yml
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
YML
model a1 "{{ config(materialized='table') }}
select id from {{ source('lake', 's1') }}"
model a2 "{{ config(materialized='table') }}
select count(*) as n from {{ ref('a1') }}"
model b1 "{{ config(materialized='table') }}
select id from {{ source('lake', 's2') }}"
model b2 "select id from {{ ref('b1') }}"
model c "{{ config(materialized='table') }}
select (select n from {{ ref('a2') }}) as a, (select count(*) from {{ ref('b2') }}) as b"
model inc "{{ config(materialized='incremental', unique_key='id') }}
select id from {{ source('lake', 's2') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
MODELS="a1 a2 b1 b2 c inc"

# fresh_worker: what an ephemeral CI worker has: the project, no .sluice/, no target/.
fresh_worker() { rm -rf .sluice target; }

settled() { stats_settled lake.s1 3 && stats_settled lake.s2 2; }
ok "setup: the statistics of the sources count the inserted rows" wait_until 10 settled

t_build() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_eq "3 2" "$(psql_q "select a || ' ' || b from analytics.c")"
}
ok "warehouse state: the first run builds everything" t_build
ok "... and keeps its state in sluice_meta.node_state, one row per model" \
	expect_eq 6 "$(psql_q "select count(*) from sluice_meta.node_state where project = 'proj'")"

t_groundhog() {
	fresh_worker
	plan_out || return 1
	expect_eq "$(models_map reuse)" "$(plan_actions)" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)"
}
ok "a fresh worker (.sluice/ and target/ deleted) reuses every model, exit 0" t_groundhog

t_other_checkout() {
	W="$T_DIR/worker2"
	mkdir -p "$W" && cp -r sluice.yml profiles.yml models "$W/" || return 1
	cd "$W" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)"
}
ok "... so does another checkout of the project in another directory" t_other_checkout

t_change() {
	psql_q "insert into lake.s1 values (4)" || return 1
	fresh_worker
	wait_until 10 plan_builds a1 || { echo "plan never saw the insert into lake.s1:"; cat "$T_DIR/plan.json"; return 1; }
	expect_eq "$(models_map reuse a1=build a2=build c=build)" "$(plan_actions)" || return 1
	fresh_worker
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused a1=success a2=success c=success)" "$(rr_statuses)" || return 1
	expect_eq "4 2" "$(psql_q "select a || ' ' || b from analytics.c")"
}
ok "a fresh worker after an insert into s1: only a1, a2, c rebuild" t_change

t_change_again() {
	fresh_worker
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)"
}
ok "... and the next fresh worker reuses everything again" t_change_again

t_incremental() {
	psql_q "insert into lake.s2 values (30)" || return 1
	wait_until 10 stats_settled lake.s2 3 || { echo "s2's statistics never counted the insert"; return 1; }
	fresh_worker
	plan_out || return 1
	# The relation exists and its code did not change: incremental, not a full refresh.
	expect_grep "^build  inc: source 'lake.s2' changed " "$T_DIR/plan.out" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused b1=success c=success inc=success)" "$(rr_statuses)" || return 1
	expect_eq "4 3" "$(psql_q "select a || ' ' || b from analytics.c")" || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics.inc")"
}
ok "a fresh worker after an insert into s2: b1, c and inc (incrementally) rebuild; b2, a view, is reused" t_incremental

# --- the same with local state --------------------------------------------------

t_local() {
	sed -i '/^state:/d' sluice.yml || return 1
	# Switching backends starts from an empty state (docs/state.md).
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_eq "never built" "$(rr_reasons a1)" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)" || return 1
	fresh_worker
	plan_out || return 1
	expect_eq "$(models_map build)" "$(plan_actions)" || return 1
	for m in $MODELS; do
		expect_eq "never built" "$(plan_reasons "$m")" || return 1
	done
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	for m in $MODELS; do
		expect_eq "never built" "$(rr_reasons "$m")" || return 1
	done
}
ok "local state: the same fresh worker rebuilds everything ('never built')" t_local

done_testing
