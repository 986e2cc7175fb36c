#!/usr/bin/env bash
# t1150: ephemeral models as dbt has them: written to target/compiled with
# their refs resolved.
. "$(dirname "$0")/lib.sh"

new_dbt_project shop
model int_orders_base "{{ config(materialized='ephemeral') }}
select order_id, customer_id, status, amount from {{ ref('stg_orders') }}" intermediate
model int_orders "{{ config(materialized='ephemeral') }}
select order_id, customer_id, nullif(status, 'returned') as status, amount
from {{ ref('int_orders_base') }}" intermediate
model order_totals "select order_id, amount from {{ ref('int_orders') }}" marts
t_compile() {
	expect_exit 0 sluice compile || return 1
	f=target/compiled/models/intermediate/int_orders.sql
	# its own select, the ephemeral model it reads inlined as a CTE, refs resolved
	expect_grep 'nullif\(status' "$f" &&
	expect_grep '^WITH "__sluice_cte__int_orders_base" AS \($' "$f" &&
	expect_grep 'from "analytics"\."stg_orders"' "$f" &&
	expect_grep 'from "__sluice_cte__int_orders_base"' "$f" &&
	expect_no_grep '\{\{|ref\(' "$f" &&
	expect_grep '^select order_id, customer_id, status, amount from "analytics"\."stg_orders"$' \
		target/compiled/models/intermediate/int_orders_base.sql
}
ok "sluice compile writes ephemeral models to target/compiled, refs resolved, ephemeral parents as CTEs" t_compile

t_run_writes_it() {
	rm -rf target &&
	expect_exit 0 sluice seed &&
	expect_exit 0 sluice run -s +order_totals || return 1
	test -f target/compiled/models/intermediate/int_orders.sql || { echo "run wrote no compiled int_orders.sql"; return 1; }
	expect_eq "0" "$(psql_q "select count(*) from pg_class where relname like 'int_orders%'")"
}
ok "sluice run writes them too, and builds nothing for them" t_run_writes_it

done_testing
