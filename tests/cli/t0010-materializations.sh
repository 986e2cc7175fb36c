#!/usr/bin/env bash
# t0010: what each materialization leaves in the database: view, table,
# custom schema, alias, ephemeral (inlined as CTEs), incremental
# append / delete+insert / merge, --full-refresh, and changing a model's
# materialization between runs.
. "$(dirname "$0")/lib.sh"

new_project m
cat >>sluice.yml <<'YML'
models:
  proj:
    staging:
      +schema: staging
YML
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: raw
    tables:
      - name: events
      - name: scores
      - name: customers
YML
psql_q "
create schema raw;
create table raw.events (id int, v text);
insert into raw.events values (1, 'a'), (2, 'b'), (3, 'c');
create table raw.scores (k1 int, k2 text, score int, updated int);
insert into raw.scores values (1, 'a', 10, 1), (1, 'b', 20, 1), (2, 'a', 30, 1);
create table raw.customers (id int, name text, updated int);
insert into raw.customers values (1, 'ann', 1), (2, 'bob', 1);
" || exit 1

model v_view "select 1 as id, 'a' as name union all select 2, 'b'"
model t_table "{{ config(materialized='table') }}
select i as id, i * i as sq from generate_series(1, 5) as i"
model stg_x "select 7 as id" staging
model m_alias "{{ config(materialized='table', alias='aliased_t') }}
select 3 as id"
model uses_alias "select id from {{ ref('m_alias') }}"
model eph_a "{{ config(materialized='ephemeral') }}
select i as id, i * 10 as v from generate_series(1, 3) as i"
model eph_b "{{ config(materialized='ephemeral') }}
select id, v + 1 as v from {{ ref('eph_a') }}"
model down_eph "{{ config(materialized='table') }}
select id, v from {{ ref('eph_b') }}"
model with_eph "{{ config(materialized='table') }}
with big as (
    select id, v from {{ ref('eph_a') }} where id > 1
)
select id, v from big"
PHASE="{% if is_incremental() %}'incr'{% else %}'full'{% endif %} as phase"
model inc_append "{{ config(materialized='incremental') }}
select id, v, $PHASE
from {{ source('raw', 'events') }}
{% if is_incremental() %}
where id > (select max(id) from {{ this }})
{% endif %}"
for strategy in delete+insert merge; do
	name=inc_di
	[ $strategy = merge ] && name=inc_merge_list
	model $name "{{ config(materialized='incremental', incremental_strategy='$strategy', unique_key=['k1', 'k2']) }}
select k1, k2, score, updated, $PHASE
from {{ source('raw', 'scores') }}
{% if is_incremental() %}
where updated > (select max(updated) from {{ this }})
{% endif %}"
done
model inc_merge "{{ config(materialized='incremental', unique_key='id') }}
select id, name, updated, $PHASE
from {{ source('raw', 'customers') }}
{% if is_incremental() %}
where updated > (select max(updated) from {{ this }})
{% endif %}"
model chg "{{ config(materialized='table') }}
select 1 as id"

# relkind SCHEMA NAME: r (table), v (view), or nothing.
relkind() {
	psql_q "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = '$1' and c.relname = '$2'"
}
scores() { psql_q "select string_agg(k1 || k2 || score || phase, ',' order by k1, k2) from analytics.$1"; }

ok "first run exits 0" expect_exit 0 sluice run

t_view() {
	expect_eq VIEW "$(psql_q "select table_type from information_schema.tables
		where table_schema = 'analytics' and table_name = 'v_view'")" || return 1
	expect_eq 1 "$(psql_q "select count(*) from information_schema.views
		where table_schema = 'analytics' and table_name = 'v_view'")" || return 1
	expect_eq "1a,2b" "$(psql_q "select string_agg(id || name, ',' order by id) from analytics.v_view")"
}
ok "view: a view with the model's rows" t_view

t_table() {
	expect_eq "BASE TABLE" "$(psql_q "select table_type from information_schema.tables
		where table_schema = 'analytics' and table_name = 't_table'")" || return 1
	expect_eq "1:1,2:4,3:9,4:16,5:25" "$(psql_q "select string_agg(id || ':' || sq, ',' order by id) from analytics.t_table")"
}
ok "table: a base table with the model's rows" t_table

t_schema() {
	expect_eq v "$(relkind analytics_staging stg_x)" || return 1
	expect_eq "" "$(relkind analytics stg_x)" || return 1
	expect_eq 7 "$(psql_q "select id from analytics_staging.stg_x")"
}
ok "+schema: staging builds into analytics_staging" t_schema

t_alias() {
	expect_eq r "$(relkind analytics aliased_t)" || return 1
	expect_eq "" "$(relkind analytics m_alias)" || return 1
	expect_eq 3 "$(psql_q "select id from analytics.uses_alias")" || return 1
	expect_grep '"analytics"\."aliased_t"' target/compiled/models/uses_alias.sql
}
ok "alias: the relation takes the alias, and ref() follows it" t_alias

t_eph_not_built() {
	expect_eq 0 "$(psql_q "select count(*) from pg_class where relname like 'eph\_%'")"
}
ok "ephemeral models are not created in the database" t_eph_not_built

t_eph_inlined() {
	f=target/compiled/models/down_eph.sql
	expect_grep '(^|[^a-z_])[Ww][Ii][Tt][Hh]([^a-z_]|$)' "$f" || return 1
	expect_grep 'i \* 10 as v' "$f" || return 1
	expect_grep 'v \+ 1 as v' "$f" || return 1
	expect_no_grep '"analytics"\."eph_' "$f" || return 1
	expect_no_grep '\{\{|\}\}' "$f"
}
ok "ephemeral chain: both SQL bodies inlined as CTEs in the compiled file" t_eph_inlined

t_eph_data() {
	expect_eq "1:11,2:21,3:31" "$(psql_q "select string_agg(id || ':' || v, ',' order by id) from analytics.down_eph")"
}
ok "ephemeral -> ephemeral -> table gives the right rows" t_eph_data

t_with_eph() {
	expect_eq "2:20,3:30" "$(psql_q "select string_agg(id || ':' || v, ',' order by id) from analytics.with_eph")" || return 1
	expect_grep 'i \* 10 as v' target/compiled/models/with_eph.sql
}
ok "a model starting with WITH can ref an ephemeral model" t_with_eph

t_first_incremental() {
	expect_eq "1a:full,2b:full,3c:full" \
		"$(psql_q "select string_agg(id || v || ':' || phase, ',' order by id) from analytics.inc_append")" || return 1
	expect_eq "1a10full,1b20full,2a30full" "$(scores inc_di)" || return 1
	expect_eq "1a10full,1b20full,2a30full" "$(scores inc_merge_list)" || return 1
	expect_eq "1ann:full,2bob:full" \
		"$(psql_q "select string_agg(id || name || ':' || phase, ',' order by id) from analytics.inc_merge")" || return 1
	expect_eq r "$(relkind analytics inc_merge)"
}
ok "incremental, first run: a table of all rows, is_incremental() false" t_first_incremental

psql_q "
insert into raw.events values (4, 'd'), (5, 'e');
update raw.scores set score = 21, updated = 2 where k1 = 1 and k2 = 'b';
insert into raw.scores values (2, 'b', 40, 2);
update raw.customers set name = 'bobby', updated = 2 where id = 2;
insert into raw.customers values (3, 'cy', 2);
" || exit 1

ok "second run exits 0" expect_exit 0 sluice run

t_append() {
	expect_eq "1a:full,2b:full,3c:full,4d:incr,5e:incr" \
		"$(psql_q "select string_agg(id || v || ':' || phase, ',' order by id) from analytics.inc_append")"
}
ok "append: exactly the new rows added, is_incremental() true" t_append

t_delete_insert() {
	expect_eq "1a10full,1b21incr,2a30full,2b40incr" "$(scores inc_di)"
}
ok "delete+insert on a two-column unique_key replaces only matching rows" t_delete_insert

t_merge_list() {
	expect_eq "1a10full,1b21incr,2a30full,2b40incr" "$(scores inc_merge_list)"
}
ok "merge on a two-column unique_key updates matches and inserts the rest" t_merge_list

t_merge() {
	expect_eq "1ann:full,2bobby:incr,3cy:incr" \
		"$(psql_q "select string_agg(id || name || ':' || phase, ',' order by id) from analytics.inc_merge")"
}
ok "merge (default with unique_key) updates and inserts" t_merge

t_third_run() {
	expect_exit 0 sluice run || return 1
	expect_eq "5 5 4 4 3" "$(psql_q "select (select count(*) from analytics.inc_append) || ' ' ||
		(select count(distinct id) from analytics.inc_append) || ' ' ||
		(select count(*) from analytics.inc_di) || ' ' ||
		(select count(*) from analytics.inc_merge_list) || ' ' ||
		(select count(*) from analytics.inc_merge)")"
}
ok "a run with no new source rows changes no incremental table" t_third_run

t_full_refresh() {
	expect_exit 0 sluice run --full-refresh || return 1
	expect_eq "1a:full,2b:full,3c:full,4d:full,5e:full" \
		"$(psql_q "select string_agg(id || v || ':' || phase, ',' order by id) from analytics.inc_append")" || return 1
	expect_eq "1a10full,1b21full,2a30full,2b40full" "$(scores inc_di)" || return 1
	expect_eq "1ann:full,2bobby:full,3cy:full" \
		"$(psql_q "select string_agg(id || name || ':' || phase, ',' order by id) from analytics.inc_merge")"
}
ok "--full-refresh rebuilds incremental models from scratch" t_full_refresh

t_table_to_view() {
	model chg "{{ config(materialized='view') }}
select 2 as id"
	expect_exit 0 sluice run -s chg || return 1
	expect_eq v "$(relkind analytics chg)" || return 1
	expect_eq 2 "$(psql_q "select id from analytics.chg")"
}
ok "table -> view on rerun" t_table_to_view

t_view_to_table() {
	model chg "{{ config(materialized='table') }}
select 3 as id"
	expect_exit 0 sluice run -s chg || return 1
	expect_eq r "$(relkind analytics chg)" || return 1
	expect_eq 3 "$(psql_q "select id from analytics.chg")"
}
ok "view -> table on rerun" t_view_to_table

t_missing_column() {
	# on_code_change: incremental keeps the incremental path despite the
	# edit (otherwise a code change means a full refresh, which succeeds).
	model inc_merge "{{ config(materialized='incremental', unique_key='id', on_code_change='incremental') }}
select id, updated, 'x' as phase from {{ source('raw', 'customers') }}"
	expect_exit 1 sluice run -s inc_merge || return 1
	expect_grep "(^|[^a-z_])name([^a-z_]|$)" "$T_DIR/out" || return 1
	expect_eq "1ann,2bobby,3cy" "$(psql_q "select string_agg(id || name, ',' order by id) from analytics.inc_merge")"
}
ok "incremental: a target column the SELECT lacks is an error; the table is untouched" t_missing_column

t_code_change_full_refresh() {
	model inc_merge "{{ config(materialized='incremental', unique_key='id') }}
select id, updated, 'y' as phase from {{ source('raw', 'customers') }}"
	expect_exit 0 sluice run -s inc_merge || return 1
	expect_eq "1y,2y,3y" "$(psql_q "select string_agg(id || phase, ',' order by id) from analytics.inc_merge")" || return 1
	expect_eq 0 "$(psql_q "select count(*) from information_schema.columns where table_schema = 'analytics' and table_name = 'inc_merge' and column_name = 'name'")"
}
ok "incremental: its own code changed, so it is rebuilt from scratch with the new columns" t_code_change_full_refresh

t_precedence() {
	mkdir -p models/prec
	cat >>sluice.yml <<'YML'
    prec:
      +materialized: table
YML
	cat >models/prec/props.yml <<'YML'
version: 2
models:
  - name: p_props
    config: {materialized: view}
  - name: p_both
    config: {materialized: view}
YML
	model p_folder "select 1 as id" prec
	model p_props "select 1 as id" prec
	model p_both "{{ config(materialized='table') }}
select 1 as id" prec
	expect_exit 0 sluice run -s path:models/prec || return 1
	expect_eq "r v r" "$(relkind analytics p_folder) $(relkind analytics p_props) $(relkind analytics p_both)"
}
ok "config precedence: folder < property file < config() in the model" t_precedence

t_no_leftovers() {
	expect_eq 0 "$(psql_q "select count(*) from pg_class where relname like '%\_\_sluice\_%'")"
}
ok "no __sluice_new/__sluice_old relations left behind" t_no_leftovers

done_testing
