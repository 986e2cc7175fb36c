#!/usr/bin/env bash
# t0209: a write made outside sluice into an incremental model stays there
# (its incremental run keeps it, docs/change-detection.md), so what reads
# that model must see it: its children are rebuilt, and once they have
# taken it in, nothing is rebuilt again. Found by the differential test
# (seed 1203, round 241).
. "$(dirname "$0")/lib.sh"

new_project outside
psql_q "create schema lake;
create table lake.ev (id int, v int); insert into lake.ev select g, g from generate_series(1, 10) g;" || exit 1
sources_yml lake ev
model inc "{{ config(materialized='incremental', unique_key='id') }}
select id, v from {{ source('lake', 'ev') }}
{% if is_incremental() %}where id > (select coalesce(max(id), 0) from {{ this }}){% endif %}"
model total "{{ config(materialized='table') }}
select count(*) as n, sum(v) as s from {{ ref('inc') }}"
model tv "select count(*) as n from {{ ref('inc') }}"
settled() { stats_settled lake.ev 10; }
ok "setup: the statistics of the source count the inserted rows" wait_until 10 settled

ok "the first run builds everything" expect_exit 0 sluice run

t_outside_write() {
	psql_q "insert into analytics.inc values (100, 1000)" >/dev/null || return 1
	wait_until 10 plan_builds inc || { cat "$T_DIR/plan.json"; return 1; }
	expect_exit 0 sluice run || return 1
	expect_grep "was changed outside sluice \(an incremental run keeps that change" <(rr_reasons inc) || return 1
	expect_eq success "$(rr_status total)" || return 1
	expect_eq "upstream 'inc' changed" "$(rr_reasons total)" || return 1
	# the child holds what its parent now holds, the outside row included
	expect_eq "11|1055" "$(psql_q "select n || '|' || s from analytics.total")"
}
ok "an outside write an incremental run keeps rebuilds what reads it, which then holds it" t_outside_write

t_then_quiet() {
	expect_exit 0 sluice run || return 1
	expect_eq "inc=reused total=reused tv=reused" "$(rr_statuses)"
}
ok "the next run rebuilds nothing" t_then_quiet

done_testing
