#!/usr/bin/env bash
# t0501: the Redshift dialect's statements run, not only read. No Redshift
# cluster is at hand, but most of its SQL is also PostgreSQL's: a project
# without views or dist/sort keys runs on the test PostgreSQL with
# `dialect: redshift`, with stand-ins for the system views the dialect
# reads (svv_table_info, stl_insert/stl_delete/stl_query, stv_sessions).
# That checks what golden text cannot: the deduplicated MERGE, DELETE +
# INSERT and append really apply increments, the scratch tables come and
# go on a reused session, versions are stable from run to run, a delete
# seen only in the log is a change unless sluice made it, and a role that
# may not read svv_table_info falls back to `always` with a warning.
. "$(dirname "$0")/lib.sh"

new_project rsp
# through either connector: an ODBC profile already names its dialect
if grep -q '^      dialect:' profiles.yml; then
	sed -i 's/^      dialect: .*/      dialect: redshift/' profiles.yml
else
	echo "      dialect: redshift" >>profiles.yml
fi
# One worker: the stand-in svv_table_info counts rows of whatever tables
# exist, and must not meet a table another worker is dropping.
sed -i 's/threads: 4/threads: 1/' profiles.yml
psql_q "create schema raw;
create table raw.src (id int, v text);
insert into raw.src values (1, 'a'), (2, 'b');
-- Redshift's tbl_rows, from a count (Redshift also counts deleted rows until VACUUM).
create function public.sluice_test_rows(r oid) returns bigint language plpgsql stable as \$\$
declare n bigint;
begin
  execute format('select count(*) from %s', r::regclass) into n;
  return n;
end \$\$;
create view public.svv_table_info as
  select c.oid as table_id, n.nspname::text as schema, c.relname::text as \"table\",
    public.sluice_test_rows(c.oid)::numeric(38,0) as tbl_rows
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind = 'r' and c.relpersistence = 'p' and n.nspname in ('raw', 'analytics');
create table public.stl_query (query integer, label text);
create table public.stl_insert (query integer, tbl integer, endtime timestamp);
create table public.stl_delete (query integer, tbl integer, endtime timestamp);
create view public.svv_external_tables as select ''::text as schemaname, ''::text as tablename where false;
create view public.stv_sessions as select backend_start as starttime, pid as process from pg_stat_activity;" >/dev/null || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: raw
    tables:
      - name: src
YML
model inc_merge "{{ config(materialized='incremental', unique_key='id') }}
select id, v from {{ source('raw', 'src') }}"
model inc_di "{{ config(materialized='incremental', unique_key='id', incremental_strategy='delete+insert') }}
select id, v from {{ source('raw', 'src') }}"
model inc_app "{{ config(materialized='incremental') }}
select id, v from {{ source('raw', 'src') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
model tbl "{{ config(materialized='table') }}
select count(*) as n from {{ source('raw', 'src') }}"
MODELS="inc_app inc_di inc_merge tbl"

ok "a first run builds every model with the Redshift statements" expect_exit 0 sluice run

t_stable() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)"
}
ok "with nothing written, the next run reuses everything: versions are stable" t_stable

t_increments() {
	# id 2 arrives twice: MERGE must see one row per key.
	psql_q "insert into raw.src values (2, 'b2'), (2, 'b2'), (3, 'c')" >/dev/null || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	# Which of the rows with id 2 wins is not defined; that there is one is.
	expect_eq "1 2 3" "$(psql_q "select string_agg(id::text, ' ' order by id) from analytics.inc_merge")" || return 1
	# DELETE + INSERT does not deduplicate: the increment is kept as it came.
	expect_eq "5" "$(psql_q "select count(*) from analytics.inc_di")" || return 1
	expect_eq "3" "$(psql_q "select count(*) from analytics.inc_di where id = 2")" || return 1
	expect_eq "1:a 2:b 3:c" "$(psql_q "select string_agg(id || ':' || v, ' ' order by id) from analytics.inc_app")" || return 1
	expect_eq "5" "$(psql_q "select n from analytics.tbl")"
}
ok "increments apply: deduplicated MERGE, DELETE + INSERT, append; the table is rebuilt" t_increments

t_scratch_gone() {
	# The scratch tables were dropped by the statements that read them, so
	# the next incremental run on a fresh session finds nothing in its way.
	psql_q "insert into raw.src values (4, 'd')" >/dev/null || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_eq "4:d" "$(psql_q "select id || ':' || v from analytics.inc_merge where id = 4")"
}
ok "a second incremental run works on the same kind of session" t_scratch_gone

t_log_delete() {
	oid=$(psql_q "select 'raw.src'::regclass::oid::int") || return 1
	# Written by sluice (its query_group): not a change.
	psql_q "insert into stl_query values (8, 'sluice run=other user=etl');
		insert into stl_delete values (8, $oid, now())" >/dev/null || return 1
	plan_out || return 1
	expect_eq reuse "$(plan_action inc_merge)" || return 1
	# Written by someone else: a change, though the row count did not move.
	psql_q "insert into stl_query values (9, 'default');
		insert into stl_delete values (9, $oid, now())" >/dev/null || return 1
	plan_out || return 1
	expect_eq build "$(plan_action inc_merge)" || return 1
	plan_reasons inc_merge | grep -q "^source 'raw.src' changed (stats:$oid:6:: -> stats:$oid:6::20" ||
		{ cat "$T_DIR/plan.out"; return 1; }
}
ok "a delete seen only in stl_delete is a change, unless sluice's own session made it" t_log_delete

# Roles outlive databases: this one goes when the script ends (ok runs tests in a subshell).
role=rs_limited_$$
at_exit "psql -X -q -d '$T_DB' -c 'drop owned by $role cascade' >/dev/null 2>&1; psql -X -q -d postgres -c 'drop role if exists $role' >/dev/null 2>&1"
t_no_privilege() {
	psql_q "create role $role login password 'limited-pw';
		grant usage on schema raw, analytics to $role;
		grant select on all tables in schema raw, analytics to $role;
		grant select on stl_query, stl_insert, stl_delete, svv_external_tables to $role" >/dev/null || return 1
	sluice run >/dev/null 2>&1 || return 1
	sed -e "s/user: .*/user: $role/" -e "s/password: .*/password: limited-pw/" profiles.yml >"$T_DIR/limited.yml" || return 1
	cp profiles.yml "$T_DIR/saved.yml" || return 1
	cp "$T_DIR/limited.yml" profiles.yml || return 1
	sluice plan >"$T_DIR/plan.out" 2>"$T_DIR/plan.err"
	rc=$?
	cp "$T_DIR/saved.yml" profiles.yml || return 1
	expect_eq 0 "$rc" || { cat "$T_DIR/plan.out" "$T_DIR/plan.err"; return 1; }
	expect_grep "connection 'default': cannot read table statistics \(.*svv_table_info.*\); sources using change_detection stats are treated as always changed" "$T_DIR/plan.err" || return 1
	plan_reasons inc_merge | grep -q "^source 'raw.src' changed (stats:.* -> always:" ||
		{ cat "$T_DIR/plan.out"; return 1; }
}
ok "without SELECT on svv_table_info, stats sources count as always changed, with a warning" t_no_privilege

# Reuse across environments with the Redshift statements (docs/environments.md):
# a second output copies what dev built, inside the database.
t_reuse_copy() {
	sed -n '/^    dev:$/,$p' profiles.yml |
		sed -e '1s/dev:/dev2:/' -e 's/schema: analytics$/schema: analytics_dev2/' >"$T_DIR/dev2.yml" || return 1
	printf '      reuse_from: [dev]\n      reuse_mode: copy\n' >>"$T_DIR/dev2.yml" &&
	cat "$T_DIR/dev2.yml" >>profiles.yml || return 1
	expect_exit 0 sluice run || return 1
	expect_exit 0 sluice run --target dev2 || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	for m in $MODELS; do
		expect_eq "copy dev" "$(t_noted jq -r --arg u "model.proj.$m" '.results[] | select(.unique_id == $u) | "\(.reused_from.mode) \(.reused_from.target)"' target/run_results.json)" ||
			return 1
		expect_eq 0 "$(psql_q "select count(*) from ((select * from analytics_dev2.$m except all select * from analytics.$m)
			union all (select * from analytics.$m except all select * from analytics_dev2.$m)) d")" || return 1
	done
}
ok "a second target with reuse_mode: copy copies dev's tables through the Redshift statements" t_reuse_copy

done_testing
