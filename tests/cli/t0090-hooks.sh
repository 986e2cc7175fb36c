#!/usr/bin/env bash
# t0090: pre_hook / post_hook (string or list, templates) inside the
# model's transaction, on-run-start / on-run-end once per run.
. "$(dirname "$0")/lib.sh"

psql_q "create table public.hook_log (seq serial primary key, what text)" || exit 1
log() { psql_q "select string_agg(what, ' | ' order by seq) from public.hook_log"; }
clear_log() { psql_q "truncate public.hook_log restart identity"; }

new_project hooks
cat >>sluice.yml <<'YML'
on-run-start: "insert into public.hook_log (what) values ('run-start {{ target.name }}')"
on-run-end: "insert into public.hook_log (what) values ('run-end')"
YML
model h1 "{{ config(materialized='table',
    pre_hook=\"insert into public.hook_log (what) values ('pre {{ this }}')\",
    post_hook=[\"insert into public.hook_log (what) select 'post1 ' || count(*) from {{ this }}\",
               \"insert into public.hook_log (what) values ('post2')\"]) }}
select i as id from generate_series(1, 3) as i"

ok "a run with hooks exits 0" expect_exit 0 sluice run
ok "hooks run in order: on-run-start, pre_hook ({{ this }}), post_hooks in list order, on-run-end" \
	expect_eq 'run-start dev | pre "analytics"."h1" | post1 3 | post2 | run-end' "$(log)"
ok "the model itself was built" expect_eq 3 "$(psql_q "select count(*) from analytics.h1")"

clear_log
model h1 "{{ config(materialized='table',
    pre_hook=\"insert into public.hook_log (what) values ('pre {{ this }}')\",
    post_hook=[\"insert into public.hook_log (what) select 'post1 ' || count(*) from {{ this }}\",
               \"insert into public.hook_log (what) values ('post2')\"]) }}
select i as id from generate_series(1, 4) as i"
t_rebuild() {
	expect_exit 0 sluice run -s h1 || return 1
	expect_eq 'run-start dev | pre "analytics"."h1" | post1 4 | post2 | run-end' "$(log)"
}
ok "a rebuild runs them again: post_hook sees the new table as {{ this }}" t_rebuild

# A failing pre_hook: the node fails, the old table stays.
model h2 "{{ config(materialized='table') }}
select 'old' as v"
ok "h2 is built" expect_exit 0 sluice run -s h2
clear_log
model h2 "{{ config(materialized='table', pre_hook='select 1 / 0') }}
select 'new' as v"
t_bad_pre() {
	expect_exit 1 sluice run -s h2 || return 1
	expect_grep "division by zero" "$T_DIR/out" || return 1
	expect_eq error "$(rr '.results[] | select(.unique_id == "model.proj.h2") | .status')"
}
ok "a failing pre_hook fails the node (exit 1)" t_bad_pre
ok "... and leaves the old table" expect_eq old "$(psql_q "select string_agg(v, ',') from analytics.h2")"
ok "on-run-start and on-run-end still ran once each" expect_eq "run-start dev | run-end" "$(log)"

# A failing post_hook rolls the build back too: it is in the same transaction.
model h2 "{{ config(materialized='table', post_hook='select 1 / 0') }}
select 'new' as v"
ok "a failing post_hook fails the node" expect_exit 1 sluice run -s h2
ok "... and leaves the old table" expect_eq old "$(psql_q "select string_agg(v, ',') from analytics.h2")"

# Hooks of a failing model are rolled back with it.
clear_log
model h3 "{{ config(materialized='table', pre_hook=\"insert into public.hook_log (what) values ('pre h3')\") }}
select 1 / 0 as boom"
ok "a model failing after its pre_hook exits 1" expect_exit 1 sluice run -s h3
ok "... and its pre_hook's insert is rolled back" expect_eq "run-start dev | run-end" "$(log)"

done_testing
