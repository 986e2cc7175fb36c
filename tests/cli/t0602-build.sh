#!/usr/bin/env bash
# t0602: `sluice build` runs models and their data tests in one DAG: a
# model's tests right after it, an error-severity failure skips what reads
# the tested model (exit 1), a warning does not; `sluice run` is unchanged.
. "$(dirname "$0")/lib.sh"

new_project bld
psql_q "create schema lake;
create table lake.orders (id int, customer_id int, amount int);
insert into lake.orders select i, 1 + i % 5, i * 10 from generate_series(1, 30) i;
insert into lake.orders values (31, null, 5);
create table lake.customers (id int, email text);
insert into lake.customers select i, case when i = 2 then null else 'c' || i || '@x' end from generate_series(1, 5) i;" >/dev/null || exit 1

model stg_orders "select * from {{ source('lake', 'orders') }}"
model stg_customers "select * from {{ source('lake', 'customers') }}"
model fct_orders "{{ config(materialized='table') }}
select o.id, o.customer_id, o.amount from {{ ref('stg_orders') }} o"
model dim_customers "{{ config(materialized='table') }}
select c.id, c.email, (select count(*) from {{ ref('fct_orders') }} f where f.customer_id = c.id) as orders
from {{ ref('stg_customers') }} c"
model order_totals "{{ config(materialized='table') }}
select sum(amount) as total from {{ ref('fct_orders') }}"
model contacts "{{ config(materialized='table') }}
select id, email from {{ ref('stg_customers') }}"
model calendar "{{ config(materialized='table') }}
select d::date as day from generate_series(date '2026-01-01', date '2026-01-10', interval '1 day') d"
cat >models/schema.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: orders
      - name: customers
models:
  - name: stg_orders
    columns:
      - name: customer_id
        tests: [not_null]
  - name: stg_customers
    columns:
      - name: email
        tests:
          - not_null: {severity: warn}
  - name: fct_orders
    columns:
      - name: customer_id
        tests:
          - relationships:
              to: ref('dim_customers')
              field: id
  - name: calendar
    tests:
      - row_count: {min: 10, max: 10}
YML

ok "sluice run builds every model and runs no test, exit 0" expect_exit 0 sluice run
t_run() {
	expect_grep ': 7 ok, 0 error, 0 skipped' "$T_DIR/out" || return 1
	expect_no_grep '(PASS|FAIL|WARN) ' "$T_DIR/out"
}
ok "run: no test lines" t_run

ok "sluice build with a failing error test exits 1" expect_exit 1 sluice build --force
cp "$T_DIR/out" "$T_DIR/build1.out"

t_blocked() {
	expect_eq "calendar=success contacts=success dim_customers=skipped fct_orders=skipped not_null_stg_customers_email=warn not_null_stg_orders_customer_id=fail order_totals=skipped relationships_fct_orders_customer_id__id__ref_dim_customers_=skipped row_count_calendar_10__10=pass stg_customers=success stg_orders=success" \
		"$(jq -r '[.results[] | "\(.unique_id | sub("^[a-z]+\\.proj\\."; ""))=\(.status)"] | sort | join(" ")' target/run_results.json)" || return 1
	expect_grep "SKIP table analytics.fct_orders .* skipped: upstream 'not_null_stg_orders_customer_id' failed" "$T_DIR/build1.out" || return 1
	expect_grep '^\[[0-9]+/[0-9]+\] FAIL 1 test not_null_stg_orders_customer_id ' "$T_DIR/build1.out" || return 1
	expect_grep ': 4 ok, 0 error, 3 skipped, 0 reused' "$T_DIR/build1.out" || return 1
	expect_grep '^Tests: 1 pass, 1 warn, 1 fail, 0 error, 1 skipped, 0 reused' "$T_DIR/build1.out"
}
ok "the failing test skips everything that reads stg_orders; the rest is built" t_blocked

t_warn_does_not_block() {
	expect_eq "success" "$(rr_status contacts)" || return 1
	# the warning's line comes after stg_customers is built and before contacts starts
	w=$(grep -n 'WARN 1 test not_null_stg_customers_email' "$T_DIR/build1.out" | cut -d: -f1) || return 1
	m=$(grep -n 'OK view analytics.stg_customers' "$T_DIR/build1.out" | cut -d: -f1) || return 1
	c=$(grep -n 'START table analytics.contacts' "$T_DIR/build1.out" | cut -d: -f1) || return 1
	[ -n "$w" ] && [ -n "$m" ] && [ -n "$c" ] && [ "$m" -lt "$w" ] && [ "$w" -lt "$c" ] ||
		{ echo "model $m, test $w, downstream $c:"; cat "$T_DIR/build1.out"; return 1; }
}
ok "a warning does not block, and a model's tests run right after it, before its children" t_warn_does_not_block

t_fixed() {
	psql_q "update lake.orders set customer_id = 1 where customer_id is null" >/dev/null || return 1
	expect_exit 0 sluice build || return 1
	expect_eq "pass" "$(rr '.results[] | select(.unique_id == "test.proj.not_null_stg_orders_customer_id") | .status')" || return 1
	expect_eq "success" "$(rr_status fct_orders)" || return 1
	expect_eq "success" "$(rr_status order_totals)" || return 1
	expect_eq "pass" "$(rr '.results[] | select(.unique_id == "test.proj.relationships_fct_orders_customer_id__id__ref_dim_customers_") | .status')"
}
ok "once the data is fixed, build builds the rest and the relationships test runs after both models" t_fixed

t_select() {
	expect_exit 0 sluice build -s calendar || return 1
	expect_eq "calendar row_count_calendar_10__10" "$(jq -r '[.results[] | .unique_id | sub("^[a-z]+\\.proj\\."; "")] | sort | join(" ")' target/run_results.json)"
}
ok "build -s a model runs it and its tests only" t_select

done_testing
