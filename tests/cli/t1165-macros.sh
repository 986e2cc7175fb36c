#!/usr/bin/env bash
# t1165: a project's macros: called from models, dispatched by adapter
# (a project's postgres__ form wins over dbt's), as generic tests from
# YAML, naming schemas through generate_schema_name; an edit to a macro
# rebuilds exactly the models that call it, directly or not, and says
# which macro; an edit to an unused one rebuilds nothing; an error inside
# macros prints the chain of calls with their files.
. "$(dirname "$0")/lib.sh"

new_project macros
mkdir -p macros tests/generic
cat >macros/money.sql <<'SQL'
{% macro cents_to_dollars(col, scale=2) -%}
  {{ return(adapter.dispatch('cents_to_dollars')(col, scale)) }}
{%- endmacro %}
{% macro default__cents_to_dollars(col, scale) %}({{ col }} / 100)::numeric(16, {{ scale }}){% endmacro %}
{% macro postgres__cents_to_dollars(col, scale) %}round({{ col }} / 100.0, {{ scale }}){% endmacro %}
{% macro price_list(cols) -%}
  {%- set ns = namespace(out=[]) -%}
  {%- for c in cols -%}{% do ns.out.append(cents_to_dollars(c) ~ ' as ' ~ c ~ '_usd') %}{%- endfor -%}
  {{ ns.out | join(', ') }}
{%- endmacro %}
SQL
cat >macros/unused.sql <<'SQL'
{% macro never_called() %}select 1{% endmacro %}
SQL
cat >macros/schemas.sql <<'SQL'
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}_x{%- endif -%}
{%- endmacro %}
SQL
cat >macros/dates.sql <<'SQL'
{# a project's own postgres__ form of a dbt macro wins over dbt's #}
{% macro postgres__dateadd(datepart, interval, from_date_or_timestamp) -%}
  ({{ from_date_or_timestamp }} + make_interval({{ datepart }}s => {{ interval }}))
{%- endmacro %}
SQL
cat >tests/generic/positive.sql <<'SQL'
{% test positive(model, column_name, allow_zero=false) %}
select * from {{ model }} where {{ column_name }} {{ '<' if allow_zero else '<=' }} 0
{% endtest %}
SQL
model items "select 1 as id, 1250 as price, 399 as cost
union all select 2, 100, 0"
model priced "{{ config(materialized='table') }}
select id, {{ price_list(['price', 'cost']) }} from {{ ref('items') }}"
model margin "{{ config(materialized='table', schema='marts') }}
select id, price_usd - cost_usd as margin, {{ dbt.dateadd('day', 2, \"'2024-02-28'::date\") }} as due
from {{ ref('priced') }}"
model plain "{{ config(materialized='table') }}
select 1 as one"
cat >models/props.yml <<'YML'
version: 2
models:
  - name: priced
    columns:
      - name: cost_usd
        data_tests:
          - positive:
              allow_zero: true
      - name: price_usd
        data_tests:
          - positive
YML

t_build() {
	expect_exit 0 sluice build || return 1
	expect_grep 'Done in .*: 4 ok, 0 error' "$T_DIR/out" &&
	expect_grep 'Tests: 2 pass, 0 warn, 0 fail' "$T_DIR/out" || return 1
	# postgres__cents_to_dollars (round) was chosen, not default__ (::numeric(16, 2))
	expect_grep 'round\(price / 100\.0, 2\) as price_usd, round\(cost / 100\.0, 2\) as cost_usd' \
		target/compiled/models/priced.sql || return 1
	expect_eq "1|8.51|2024-03-01" "$(psql_q "select id, margin, due::date from marts_x.margin where id = 1")" || return 1
	# no custom schema: the target's, through the project's macro too
	expect_eq "1" "$(psql_q 'select count(*) from analytics.priced where id = 2')"
}
ok "models call macros: dispatch to the project's postgres__ form, generic tests, generate_schema_name" t_build

t_project_dateadd_wins() {
	expect_grep 'make_interval\(days => 2\)' target/compiled/models/margin.sql
}
ok "a project's postgres__dateadd wins over the dbt namespace's" t_project_dateadd_wins

t_generic_test_fails() {
	psql_q "update analytics.priced set price_usd = 0 where id = 2" >/dev/null &&
	expect_exit 1 sluice test -s priced || return 1
	expect_grep 'positive_priced_price_usd' "$T_DIR/out" &&
	expect_grep 'Done in .*: 1 error' "$T_DIR/out" || true
	expect_exit 0 sluice build -s priced
}
ok "a {% test %} macro from tests/generic/ fails on the row it finds" t_generic_test_fails

t_plan_after_edit() {
	# a comment: the SQL stays the same, the macro's text does not
	sed -i 's/round({{ col }}/{# rounded #}round({{ col }}/' macros/money.sql &&
	plan_json || return 1
	expect_eq "items=reuse margin=build plain=reuse priced=build" "$(plan_actions)" || return 1
	plan_json_reasons priced >"$T_DIR/reasons" &&
	expect_grep "macro 'proj\.postgres__cents_to_dollars' changed" "$T_DIR/reasons" || return 1
	expect_exit 0 sluice run
}
ok "an edit to a macro a model calls through another rebuilds it, and the reason names the macro" t_plan_after_edit

t_unused_macro() {
	printf '{%% macro never_called() %%}select 2{%% endmacro %%}\n' >macros/unused.sql &&
	plan_json || return 1
	expect_eq "items=reuse margin=reuse plain=reuse priced=reuse" "$(plan_actions)"
}
ok "an edit to a macro no model calls rebuilds nothing" t_unused_macro

t_error_chain() {
	cat >macros/broken.sql <<'SQL'
{% macro outer_one() %}{{ inner_one() }}{% endmacro %}
{% macro inner_one() %}
  {{ colums }}
{% endmacro %}
SQL
	model uses_broken "select {{ outer_one() }}" &&
	expect_exit 2 sluice compile || { rm -f macros/broken.sql models/uses_broken.sql; return 1; }
	rm -f macros/broken.sql models/uses_broken.sql
	expect_grep "models/uses_broken\.sql:1:11 → macros/broken\.sql:1:27 → macros/broken\.sql:3:6: undefined name 'colums'" "$T_DIR/out"
}
ok "an error inside macros prints the chain of calls, file by file" t_error_chain

t_duplicate_macro() {
	printf '{%% macro price_list(x) %%}{%% endmacro %%}\n' >macros/dup.sql &&
	expect_exit 2 sluice ls || { rm -f macros/dup.sql; return 1; }
	rm -f macros/dup.sql
	expect_grep "macros/money\.sql:6: macro 'price_list' is defined twice in proj \(also at macros/dup\.sql:1\)" "$T_DIR/out"
}
ok "two macros of one name in the project are an error naming both places" t_duplicate_macro

t_syntax_error() {
	printf '{%% macro m( %%}\n' >macros/bad.sql &&
	expect_exit 2 sluice ls || { rm -f macros/bad.sql; return 1; }
	rm -f macros/bad.sql
	expect_grep "macros/bad\.sql:1:13: " "$T_DIR/out"
}
ok "a macro file that does not parse is an error with its place" t_syntax_error

t_warehouse() {
	cat >macros/wh.sql <<'SQL'
{% macro col_list(rel) -%}
  {%- set cols = adapter.get_columns_in_relation(rel) -%}
  {{ cols | map(attribute='name') | join(',') }}
{%- endmacro %}
{% macro max_id() -%}
  {%- call statement('max_id', fetch_result=True) %}select max(id) as m from {{ ref('items') }}{% endcall -%}
  {{ return(load_result('max_id')['data'] | map(attribute=0) | first) }}
{%- endmacro %}
SQL
	model wh "{{ config(materialized='table') }}
{%- set r = run_query('select 41 + 1 as answer') -%}
select {{ r.columns[0].values()[0] }} as answer, {{ r[0]['answer'] }} as again, '{{ col_list(ref('items')) }}' as cols,
  {{ max_id() }} as max_id, {{ load_relation(ref('items')) is not none }} as here,
  {{ adapter.get_relation(database=none, schema='analytics', identifier='nowhere') is none }} as gone" &&
	expect_exit 0 sluice run -s wh || return 1
	expect_eq "42|42|id,price,cost|2|t|t" "$(psql_q 'select answer, again, cols, max_id, here, gone from analytics.wh')"
}
ok "run_query, statement blocks, load_result and the adapter's relation functions read the warehouse" t_warehouse

t_warehouse_input() {
	# what a render read is an input: a new max(id) rebuilds wh, and says why
	expect_exit 0 sluice run -s wh || return 1
	expect_grep 'reused' "$T_DIR/out" || return 1
	model items "select 1 as id, 1250 as price, 399 as cost
union all select 5, 100, 0" &&
	expect_exit 0 sluice run -s items &&
	plan_json -s wh || return 1
	plan_json_reasons wh >"$T_DIR/reasons" &&
	# the third query asked (the statement) has a new answer; the first two do not
	expect_grep "^query '3' changed$" "$T_DIR/reasons" &&
	expect_no_grep "query '[12]'" "$T_DIR/reasons"
}
ok "a changed answer to a query the template ran rebuilds the model" t_warehouse_input

t_read_only() {
	model writes "{% do run_query('create table analytics.sneaky (a int)') %}select 1 as a" &&
	expect_exit 2 sluice compile -s writes || { rm -f models/writes.sql; return 1; }
	rm -f models/writes.sql
	expect_grep 'models/writes\.sql:1:7: .*read-only transaction' "$T_DIR/out" &&
	expect_eq "0" "$(psql_q "select count(*) from pg_class where relname = 'sneaky'")"
}
ok "run_query runs read-only: a template cannot write the warehouse" t_read_only

t_not_yet() {
	model needs_md5 "select '{{ local_md5('x') }}' as h" &&
	expect_exit 2 sluice compile || { rm -f models/needs_md5.sql; return 1; }
	rm -f models/needs_md5.sql
	expect_grep "models/needs_md5\.sql:1:12: undefined function 'local_md5': dbt has it, sluice does not yet" "$T_DIR/out"
}
ok "a name of dbt's that sluice does not have yet says so" t_not_yet

t_override_builtin_test() {
	cat >macros/my_not_null.sql <<'SQL'
{% test not_null(model, column_name) %}
select * from {{ model }} where {{ column_name }} is null or {{ column_name }} = 0
{% endtest %}
SQL
	cat >models/plain.yml <<'YML'
version: 2
models:
  - name: plain
    columns:
      - name: one
        data_tests:
          - not_null
YML
	expect_exit 0 sluice test -s plain || return 1
	expect_grep 'where one is null or one = 0' target/compiled/models/plain.yml/not_null_plain_one.sql
}
ok "a project's test_not_null macro replaces the built-in not_null" t_override_builtin_test

done_testing
