#!/usr/bin/env bash
# t1170: the dbt.* cross-database macros (engine/builtin-macros.sql) give
# the values dbt documents, on PostgreSQL. The models under models/both
# run twice: with the PostgreSQL forms, then with the Redshift forms on
# the same server (dialect: redshift, as t0501 does), and must give the
# same rows. The Redshift forms PostgreSQL cannot run (dateadd, datediff,
# listagg, getdate(), ...) are checked as compiled text. Last, the corpus
# of macro-heavy models under tests/fixtures/macros compiles, for both
# databases, to the SQL kept next to it, byte for byte.
. "$(dirname "$0")/lib.sh"
CORPUS=$(cd "$(dirname "$0")/../fixtures/macros" && pwd) || exit 1

new_project xdb
mkdir -p models/both models/pg

# ---- models whose PostgreSQL and Redshift forms both run here --------------

model types "{{ config(materialized='table') }}
select
  cast('abc' as {{ dbt.type_string() }}) as s,
  cast(42 as {{ dbt.type_int() }}) as i,
  cast(42 as {{ dbt.type_bigint() }}) as bi,
  cast(1.25 as {{ dbt.type_float() }}) as f,
  cast(1.5 as {{ dbt.type_numeric() }}) as n,
  cast('2024-02-29 10:11:12' as {{ dbt.type_timestamp() }}) as ts,
  cast('true' as {{ dbt.type_boolean() }}) as b" both

model strings "{{ config(materialized='table') }}
select
  {{ dbt.concat([\"'ab'\", \"'-'\", 'c']) }} as concat,
  {{ dbt.split_part(\"'a,b,c'\", \"','\", 2) }} as split_2,
  {{ dbt.split_part(\"'a,b,c'\", \"','\", -1) }} as split_minus_1,
  {{ dbt.split_part(string_text=\"'x::y::z'\", delimiter_text=\"'::'\", part_number=-2) }} as split_minus_2,
  {{ dbt.position(\"'lo'\", \"'hello'\") }} as position,
  {{ dbt.length(\"'hello'\") }} as length,
  {{ dbt.replace(\"'a-b-c'\", \"'-'\", \"'+'\") }} as replace,
  {{ dbt.right(\"'sluice'\", 3) }} as right,
  {{ dbt.string_literal(dbt.escape_single_quotes(\"it's\")) }} as quoted,
  {{ dbt.cast_bool_to_text('1 = 1') }} as bool_true,
  {{ dbt.cast_bool_to_text('1 = 0') }} as bool_false,
  {{ dbt.cast_bool_to_text('null::boolean') }} as bool_null,
  {{ dbt.safe_cast(\"'12'\", dbt.type_int()) }} + 1 as safe_cast,
  {{ dbt.cast(\"'7'\", dbt.type_bigint()) }} * 2 as cast,
  {{ dbt.date(2024, 2, 9) }} as date,
  {{ dbt.date('2024', '02', '29') }} as date_from_strings,
  cast({{ dbt.date_trunc('month', \"'2024-02-29 10:11:12'::timestamp\") }} as date) as trunc_month,
  c
from (select 'c' as c) t" both

model setops "{{ config(materialized='table') }}
select 'except' as op, x from (
  select x from (values (1), (2), (3), (3)) a(x)
  {{ dbt.except() }}
  select x from (values (2)) b(x)
) e
union all
select 'intersect', x from (
  select x from (values (1), (2), (2)) a(x)
  {{ dbt.intersect() }}
  select x from (values (2), (4)) b(x)
) i" both

model bools "{{ config(materialized='table') }}
select g, {{ dbt.bool_or('v') }} as any_true
from (values ('a', false), ('a', true), ('b', false), ('b', null)) t(g, v)
group by g" both

# ---- models whose Redshift forms PostgreSQL cannot run -----------------------

model dates "{{ config(materialized='table') }}
select
  cast({{ dbt.dateadd('day', 3, \"'2024-01-30'::date\") }} as date) as add_3_days,
  cast({{ dbt.dateadd('month', 1, \"'2024-01-31'::date\") }} as date) as add_month_clamped,
  cast({{ dbt.dateadd(datepart='quarter', interval=-1, from_date_or_timestamp=\"'2024-05-15'::date\") }} as date) as sub_quarter,
  {{ dbt.dateadd('hour', 36, \"'2024-02-28 12:00'::timestamp\") }} as add_36_hours,
  {{ dbt.datediff(\"'2024-01-31'\", \"'2024-03-01'\", 'day') }} as diff_days,
  {{ dbt.datediff(\"'2024-03-01'\", \"'2024-01-31'\", 'day') }} as diff_days_back,
  {{ dbt.datediff(\"'2024-01-31'\", \"'2024-03-01'\", 'month') }} as diff_months,
  {{ dbt.datediff(\"'2023-11-15'\", \"'2024-02-01'\", 'month') }} as diff_months_over_year,
  {{ dbt.datediff(\"'2024-12-31'\", \"'2025-01-01'\", 'year') }} as diff_year_boundary,
  {{ dbt.datediff(\"'2024-03-31'\", \"'2024-04-01'\", 'quarter') }} as diff_quarter,
  {{ dbt.datediff(\"'2024-02-25'\", \"'2024-03-04'\", 'week') }} as diff_weeks,
  {{ dbt.datediff(\"'2024-02-28 23:59'\", \"'2024-02-29 00:01'\", 'hour') }} as diff_hour,
  {{ dbt.datediff(\"'2024-02-29 10:00:59'\", \"'2024-02-29 10:02:00'\", 'minute') }} as diff_minutes,
  {{ dbt.datediff(\"'2024-02-29 10:00:00.9'\", \"'2024-02-29 10:00:02.1'\", 'second') }} as diff_seconds,
  {{ dbt.datediff(\"'2024-02-29 10:00:00.0015'\", \"'2024-02-29 10:00:00.0031'\", 'millisecond') }} as diff_ms,
  {{ dbt.last_day(\"'2024-02-10'::date\", 'month') }} as last_day_feb,
  {{ dbt.last_day(\"'2023-02-10'::date\", 'month') }} as last_day_feb_2023,
  {{ dbt.last_day(\"'2024-05-10'::date\", 'quarter') }} as last_day_q2,
  {{ dbt.last_day(\"'2024-05-10'::date\", 'year') }} as last_day_year,
  abs(extract(epoch from {{ dbt.current_timestamp() }} - statement_timestamp())) < 60 as now_is_now" pg

model aggs "{{ config(materialized='table') }}
select
  g,
  {{ dbt.listagg('v', \"' | '\", 'order by v desc') }} as listed_desc,
  {{ dbt.listagg(measure='v', order_by_clause='order by v', limit_num=2) }} as first_two,
  {{ dbt.listagg('v', order_by_clause='order by v') }} as listed_default,
  {{ dbt.any_value('k') }} as any_k,
  {{ dbt.hash('g') }} = md5(g) as hash_is_md5,
  {{ dbt.hash(\"'sluice'\") }} as hash_sluice
from (values ('a', 'x', 1), ('a', 'z', 1), ('a', 'y', 1), ('b', 'w', 2)) t(g, v, k)
group by g" pg

model arrays "{{ config(materialized='table') }}
select
  {{ dbt.array_construct(['1', '2']) }} as ints,
  {{ dbt.array_construct([], dbt.type_string()) }} as empty_texts,
  {{ dbt.array_append(dbt.array_construct(['1']), '5') }} as appended,
  {{ dbt.array_concat(dbt.array_construct(['1']), dbt.array_construct(['2', '3'])) }} as concatenated" pg

# psql's one row as JSON: every column, its value, in order
row_json() { psql_q "select row_to_json(t) from analytics.$1 t"; }

# The rows the models under models/both give, whichever forms made them.
STRINGS='{"concat":"ab-c","split_2":"b","split_minus_1":"c","split_minus_2":"y","position":4,"length":5,"replace":"a+b+c","right":"ice","quoted":"it'"'"'s","bool_true":"true","bool_false":"false","bool_null":null,"safe_cast":13,"cast":14,"date":"2024-02-09","date_from_strings":"2024-02-29","trunc_month":"2024-02-01","c":"c"}'
t_both_values() {
	expect_eq "$STRINGS" "$(row_json strings)" &&
	# to_date forgives '2024-002-29': the text itself must be right
	expect_grep "to_date\('2024-02-29', 'YYYY-MM-DD'\) as date_from_strings" target/compiled/models/both/strings.sql &&
	expect_eq "except 1
except 3
intersect 2" "$(psql_q "select op || ' ' || x from analytics.setops order by op, x")" &&
	expect_eq "a true
b false" "$(psql_q "select g || ' ' || any_true from analytics.bools order by g")" &&
	expect_eq "abc 42 42 1.25 1.500000 2024-02-29 10:11:12 t" \
		"$(psql_q "select concat_ws(' ', s, i, bi, f, n, ts, b) from analytics.types")"
}

# types: the column types the type_* macros made, "name type, ..."
col_types() {
	psql_q "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum)
		from pg_attribute where attrelid = 'analytics.$1'::regclass and attnum > 0 and not attisdropped"
}

ok "sluice run builds every model calling the dbt.* macros on PostgreSQL" expect_exit 0 sluice run

ok "the string, cast, date, set and boolean macros give the documented values" t_both_values

t_types() {
	expect_eq "s text, i integer, bi bigint, f double precision, n numeric(28,6), ts timestamp without time zone, b boolean" \
		"$(col_types types)"
}
ok "the type_* macros make text, integer, bigint, float, numeric(28,6), timestamp, boolean" t_types

t_dates() {
	expect_eq '{"add_3_days":"2024-02-02","add_month_clamped":"2024-02-29","sub_quarter":"2024-02-15","add_36_hours":"2024-03-01T00:00:00","diff_days":30,"diff_days_back":-30,"diff_months":2,"diff_months_over_year":3,"diff_year_boundary":1,"diff_quarter":1,"diff_weeks":2,"diff_hour":1,"diff_minutes":2,"diff_seconds":2,"diff_ms":2,"last_day_feb":"2024-02-29","last_day_feb_2023":"2023-02-28","last_day_q2":"2024-06-30","last_day_year":"2024-12-31","now_is_now":true}' \
		"$(row_json dates)"
}
ok "dateadd, datediff (boundaries crossed), last_day (leap February) and current_timestamp" t_dates

t_aggs() {
	expect_eq 'a|z | y | x|x,y|x,y,z|1|t|
b|w|w|w|2|t|' "$(psql_q "select g, listed_desc, first_two, listed_default, any_k, hash_is_md5, '' from analytics.aggs order by g")" &&
	expect_eq "$(printf '%s' sluice | md5sum | cut -d' ' -f1)" "$(psql_q "select distinct hash_sluice from analytics.aggs")"
}
ok "listagg with order, delimiter and limit; any_value; hash is md5 of the text" t_aggs

t_arrays() {
	expect_eq '{1,2}|integer[]|{}|text[]|{1,5}|{1,2,3}' \
		"$(psql_q "select ints, pg_typeof(ints), empty_texts, pg_typeof(empty_texts), appended, concatenated from analytics.arrays")"
}
ok "array_construct (typed, empty), array_append and array_concat" t_arrays

# ---- the same models, Redshift forms, on PostgreSQL -------------------------

t_redshift_runs() {
	cp profiles.yml "$T_DIR/pg-profiles.yml" &&
	if grep -q '^      dialect:' profiles.yml; then
		sed -i 's/^      dialect: .*/      dialect: redshift/' profiles.yml
	else
		echo "      dialect: redshift" >>profiles.yml
	fi &&
	psql_q "set client_min_messages = warning; drop schema analytics cascade" >/dev/null &&
	expect_exit 0 sluice run -s path:models/both &&
	expect_grep "'x::y::z'" target/compiled/models/both/strings.sql &&
	expect_grep "reverse\(split_part\(reverse\('x::y::z'\), reverse\('::'\), 2\)\) as split_minus_2" target/compiled/models/both/strings.sql &&
	expect_grep "case when 1 = 1 then 'true' when not \(1 = 1\) then 'false' end as bool_true" target/compiled/models/both/strings.sql
}
ok "the models under models/both run with the Redshift forms (dialect: redshift)" t_redshift_runs

ok "... and give the same values" t_both_values

t_redshift_types() {
	expect_eq "s character varying, i integer, bi bigint, f double precision, n numeric(28,6), ts timestamp without time zone, b boolean" \
		"$(col_types types)"
}
ok "... with varchar for type_string, the rest as on PostgreSQL" t_redshift_types

# ---- Redshift forms PostgreSQL cannot run: the compiled text --------------------

t_redshift_text() {
	expect_exit 0 sluice compile -s path:models/pg || return 1
	d=target/compiled/models/pg
	expect_grep "cast\(dateadd\(day, 3, '2024-01-30'::date\) as date\) as add_3_days" $d/dates.sql &&
	expect_grep "cast\(dateadd\(quarter, -1, '2024-05-15'::date\) as date\) as sub_quarter" $d/dates.sql &&
	expect_grep "datediff\(month, '2024-01-31', '2024-03-01'\) as diff_months" $d/dates.sql &&
	expect_grep "datediff\(week, '2024-02-25', '2024-03-04'\) as diff_weeks" $d/dates.sql &&
	expect_grep "last_day\('2024-02-10'::date\) as last_day_feb," $d/dates.sql &&
	expect_grep "cast\(dateadd\(day, -1, dateadd\(quarter, 1, date_trunc\('quarter', '2024-05-10'::date\)\)\) as date\) as last_day_q2" $d/dates.sql &&
	expect_grep "extract\(epoch from getdate\(\) - statement_timestamp\(\)\)" $d/dates.sql &&
	expect_grep "listagg\(v, ' \| '\) within group \(order by v desc\) as listed_desc" $d/aggs.sql &&
	expect_grep "left\(listagg\(v, ','\) within group \(order by v\), length\(split_part\(listagg\(v, ','\) within group \(order by v\), ',', 1\)\) \+ length\(split_part\(listagg\(v, ','\) within group \(order by v\), ',', 2\)\) \+ 1 \* length\(cast\(',' as varchar\)\)\) as first_two" $d/aggs.sql &&
	expect_grep "any_value\(k\) as any_k" $d/aggs.sql &&
	expect_grep "md5\(cast\(g as varchar\(max\)\)\) = md5\(g\)" $d/aggs.sql &&
	expect_grep "array\(1, 2\) as ints" $d/arrays.sql &&
	expect_grep "array_concat\(array\(1\), array\(5\)\) as appended" $d/arrays.sql
}
ok "Redshift's dateadd, datediff, last_day, getdate(), listagg, any_value, hash and arrays compile as Redshift SQL" t_redshift_text

t_redshift_limit_error() {
	model bad_limit "select {{ dbt.listagg('v', limit_num='n') }} from t" pg &&
	expect_exit 2 sluice compile -s path:models/pg/bad_limit.sql
	rc=$?
	rm -f models/pg/bad_limit.sql
	[ "$rc" = 0 ] &&
	expect_grep "models/pg/bad_limit\.sql:1:[0-9]+ → .*builtin-macros\.sql:[0-9:]+: dbt\.listagg: on Redshift, limit_num must be a whole number above 0, not 'n'" "$T_DIR/out"
}
ok "a Redshift listagg whose limit_num is not a whole number stops compile, naming the model" t_redshift_limit_error

cp "$T_DIR/pg-profiles.yml" profiles.yml

# ---- the corpus: macro-heavy models and the SQL they compile to ----------------
# A project macro overriding dbt.dateadd through dispatch, a project macro
# dispatched without a namespace, macros calling macros calling dbt.*, a
# call block, namespace() in a loop, keyword arguments. To change what a
# model should compile to, edit tests/fixtures/macros/expected/ by hand and
# say why in the commit: the files are the specification, not a snapshot.

P="$T_DIR/corpus"
cp -R "$CORPUS/project" "$P" || exit 1
cd "$P" || exit 1
# compile needs no server: nothing listens on port 1
{
	printf 'corpus:\n  target: postgres\n  outputs:\n'
	for a in postgres redshift; do
		printf '    %s:\n      type: %s\n      host: 127.0.0.1\n      port: 1\n' $a $a
		printf '      user: nobody\n      password: unused\n      dbname: corpus\n      schema: analytics\n'
	done
} >profiles.yml

# compiled_as ADAPTER: compile for that output; target/compiled/models is
# the same, file for file and byte for byte, as expected/ADAPTER.
compiled_as() {
	rm -rf target &&
	expect_exit 0 sluice compile -t "$1" &&
	diff -ru "$CORPUS/expected/$1" target/compiled/models
}
ok "the corpus compiles for PostgreSQL to tests/fixtures/macros/expected/postgres" compiled_as postgres
ok "the corpus compiles for Redshift to tests/fixtures/macros/expected/redshift" compiled_as redshift

done_testing
