#!/usr/bin/env bash
# t0030: one failing model: its downstream is skipped, independent branches
# are built, exit 1; the lines, the summary and run_results.json say so.
. "$(dirname "$0")/lib.sh"

new_project iso
model a "{{ config(materialized='table') }}
select i as id from generate_series(1, 3) as i"
model b "{{ config(materialized='table') }}
select id, 1 / (id - 2) as inv from {{ ref('a') }}"
model c "select * from {{ ref('b') }}"
model x "{{ config(materialized='table') }}
select 1 as id"
model y "select id + 1 as id from {{ ref('x') }}"

ok "a run with a failing model exits 1" expect_exit 1 sluice run --threads 1
cp "$T_DIR/out" "$T_DIR/run.out"

relkind() {
	psql_q "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'analytics' and c.relname = '$1'"
}
t_db() {
	expect_eq r "$(relkind a)" || return 1
	expect_eq "" "$(relkind b)" || return 1
	expect_eq "" "$(relkind c)" || return 1
	expect_eq r "$(relkind x)" || return 1
	expect_eq v "$(relkind y)" || return 1
	expect_eq 2 "$(psql_q "select id from analytics.y")"
}
ok "a, x and y are built; b and c are not" t_db

t_lines() {
	f=$T_DIR/run.out
	expect_grep '^\[[0-9]/5\] OK table analytics\.a ' "$f" || return 1
	expect_grep '^\[[0-9]/5\] ERROR table analytics\.b ' "$f" || return 1
	expect_grep '^\[[-0-9]+/5\] SKIP view analytics\.c .*upstream .b. failed' "$f" || return 1
	expect_grep "upstream 'b' failed" "$f" || return 1
	expect_grep '^\[[0-9]/5\] OK table analytics\.x ' "$f" || return 1
	expect_grep '^\[[0-9]/5\] OK view analytics\.y ' "$f" || return 1
	expect_grep 'division by zero' "$f" || return 1
	expect_no_grep 'OK .* analytics\.[bc] ' "$f"
}
ok "the output shows OK for a, x, y, ERROR for b, SKIP for c (upstream 'b' failed)" t_lines

t_summary() {
	expect_grep '^Done in [0-9]+\.[0-9]+s: 3 ok, 1 error, 1 skipped, 0 reused$' "$T_DIR/run.out"
}
ok "the summary counts 3 ok, 1 error, 1 skipped" t_summary

t_results() {
	got=$(rr '[.results[] | "\(.unique_id)=\(.status)"] | sort | join(" ")') || return 1
	expect_eq "model.proj.a=success model.proj.b=error model.proj.c=skipped model.proj.x=success model.proj.y=success" "$got"
}
ok "run_results.json: a, x, y success; b error; c skipped" t_results

t_results_error() {
	msg=$(rr '.results[] | select(.unique_id == "model.proj.b") | .message') || return 1
	case $msg in
	*"division by zero"*) ;;
	*) echo "b's message lacks the database error: $msg"; return 1 ;;
	esac
	expect_eq 22012 "$(rr '.results[] | select(.unique_id == "model.proj.b") | .sqlstate')"
}
ok "run_results.json: b's message has the database's error text and SQLSTATE 22012" t_results_error

t_fixed() {
	model b "{{ config(materialized='table') }}
select id, 1 as inv from {{ ref('a') }}"
	expect_exit 0 sluice run || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics.c")" || return 1
	expect_grep ' 0 error, 0 skipped' "$T_DIR/out"
}
ok "once b is fixed, the next run builds everything and exits 0" t_fixed

done_testing
