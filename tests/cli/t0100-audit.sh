#!/usr/bin/env bash
# t0100: traceability (application_name, the comment on every statement)
# and identifier quoting: odd names cannot inject SQL.
. "$(dirname "$0")/lib.sh"

new_project audit
model audit "{{ config(materialized='table') }}
select current_setting('application_name') as app, current_query() as q"

ok "run exits 0" expect_exit 0 sluice run

t_app() {
	expect_eq "sluice/tester" "$(psql_q "select app from analytics.audit")"
}
ok "application_name is sluice/\$SLUICE_USER" t_app

t_comment() {
	inv=$(rr .metadata.invocation_id) || return 1
	[ -n "$inv" ] || return 1
	q=$(psql_q "select q from analytics.audit") || return 1
	want="/* sluice run=$inv node=model.proj.audit user=tester */"
	case $q in
	*"$want"*) ;;
	*) printf 'statement lacks %s:\n%s\n' "$want" "$q"; return 1 ;;
	esac
	# "Every statement starts with a comment"
	case $(printf '%s' "$q" | sed '1s/^[[:space:]]*//') in
	"$want"*) ;;
	*) printf 'statement does not start with the comment:\n%s\n' "$q"; return 1 ;;
	esac
}
ok "the statement starts with /* sluice run=<invocation_id> node=model.proj.audit user=tester */" t_comment

t_login_user() {
	me=$(id -un) || return 1
	(unset SLUICE_USER; "$SLUICE_BIN" run --force -s audit) >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_eq "sluice/$me" "$(psql_q "select app from analytics.audit")" || return 1
	inv=$(rr .metadata.invocation_id) || return 1
	psql_q "select q from analytics.audit" | grep -qF "/* sluice run=$inv node=model.proj.audit user=$me */" ||
		{ psql_q "select q from analytics.audit"; return 1; }
	expect_eq "$me" "$(rr .metadata.user)"
}
ok "without SLUICE_USER the login name is used" t_login_user

# -- identifiers ----------------------------------------------------------
psql_q "create table public.victim (id int); insert into public.victim values (1)" || exit 1

model odd "{{ config(materialized='table', alias='x\"; drop table public.victim; --') }}
select 1 as id"
model 'we"ird' "{{ config(materialized='table') }}
select 2 as \"col\"\"umn\", 'it''s' as \"select\""
model quoted_schema "{{ config(materialized='view', schema='s\"; drop table public.victim; --') }}
select * from {{ ref('odd') }}"
model inc_odd "{{ config(materialized='incremental', unique_key='k\"ey') }}
select i as \"k\"\"ey\", 'v' || i as \"va\"\"l\" from generate_series(1, {{ var('n', 2) }}) as i"

t_odd_run() {
	expect_exit 0 sluice run || return 1
	expect_exit 0 sluice run --vars '{n: 3}'
}
ok "models with quotes in alias, file name, schema and columns build (twice)" t_odd_run

ok "public.victim still exists" expect_eq 1 "$(psql_q "select count(*) from public.victim")"

t_odd_relations() {
	expect_eq 1 "$(psql_q "select id from analytics.\"x\"\"; drop table public.victim; --\"")" || return 1
	expect_eq "2 it's" "$(psql_q "select \"col\"\"umn\" || ' ' || \"select\" from analytics.\"we\"\"ird\"")" || return 1
	expect_eq 1 "$(psql_q "select id from \"analytics_s\"\"; drop table public.victim; --\".quoted_schema")"
}
ok "the oddly named relations exist under their exact names" t_odd_relations

t_odd_incremental() {
	expect_eq "1v1,2v2,3v3" "$(psql_q "select string_agg(\"k\"\"ey\" || \"va\"\"l\", ',' order by \"k\"\"ey\") from analytics.inc_odd")"
}
ok "incremental merge with quoted key and column names" t_odd_incremental

long=$(printf 'm%.0s' $(seq 1 60))
model "$long" "{{ config(materialized='table') }}
select 1 as id"
t_long_name() {
	expect_exit 0 sluice run -s "$long" || return 1
	model "$long" "{{ config(materialized='table') }}
select 2 as id"
	expect_exit 0 sluice run -s "$long" || return 1
	expect_eq 2 "$(psql_q "select id from analytics.$long")" || return 1
	expect_eq 0 "$(psql_q "select count(*) from pg_class where relname like '%\_\_sluice\_%'")"
}
ok "a 60-byte model name: side names are shortened, rebuild works, no leftovers" t_long_name

done_testing
