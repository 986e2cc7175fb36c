#!/usr/bin/env bash
# t1150: ephemeral models as dbt has them: written to target/compiled with
# their refs resolved, tested (generic and singular tests run over the
# inlined query, reused until the ephemeral model's code or its upstream
# changes), and two test settings dbt projects use: `limit` in a test's
# config, and null in accepted_values.
. "$(dirname "$0")/lib.sh"

new_dbt_project shop
model int_orders_base "{{ config(materialized='ephemeral') }}
select order_id, customer_id, status, amount from {{ ref('stg_orders') }}" intermediate
# good data: 'returned' becomes a NULL status, which accepted_values does not count
model int_orders "{{ config(materialized='ephemeral') }}
select order_id, customer_id, nullif(status, 'returned') as status, amount
from {{ ref('int_orders_base') }}" intermediate
model order_totals "select order_id, amount from {{ ref('int_orders') }}" marts
cat >models/intermediate/props.yml <<'YML'
version: 2
models:
  - name: int_orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
      - name: status
        data_tests:
          - accepted_values:
              arguments:
                values: ['placed', 'shipped', 'completed', 'return_pending', null]
  - name: order_totals
    columns:
      - name: order_id
        data_tests:
          - relationships:
              arguments:
                to: ref('int_orders')
                field: order_id
YML
mkdir -p tests
cat >tests/assert_positive_amounts.sql <<'SQL'
select order_id, amount from {{ ref('int_orders') }} where amount <= 0
SQL
AV=accepted_values_int_orders_status__placed__shipped__completed__return_pending__None

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
		target/compiled/models/intermediate/int_orders_base.sql &&
	# a test on it reads its query, not a relation that is never built
	f=target/compiled/models/intermediate/props.yml/not_null_int_orders_order_id.sql &&
	expect_grep 'nullif\(status' "$f" &&
	expect_no_grep '"analytics"\."int_orders"' "$f"
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

t_tests_pass() {
	expect_exit 0 sluice build || return 1
	for t in unique_int_orders_order_id not_null_int_orders_order_id "$AV" \
		relationships_order_totals_order_id__order_id__ref_int_orders_ assert_positive_amounts; do
		expect_grep "PASS test $t " "$T_DIR/out" || return 1
	done
	# the two tests that share a pass share one over the inlined query
	expect_eq "true" "$(rr ".results[] | select(.unique_id | startswith(\"test.shop.$AV.\")) | .combined_scan")"
}
ok "tests on an ephemeral model (generic, singular, relationships to it) pass on good data; null in values is allowed" t_tests_pass

t_reused() {
	expect_exit 0 sluice test || return 1
	expect_grep "REUSED test $AV " "$T_DIR/out" &&
	expect_grep 'REUSED test assert_positive_amounts ' "$T_DIR/out" &&
	expect_grep 'REUSED test relationships_order_totals_order_id__order_id__ref_int_orders_ ' "$T_DIR/out" &&
	# what they read is a view, stg_orders: not run by sluice test, it shows what build saw
	expect_grep 'REUSED test unique_stg_orders_order_id ' "$T_DIR/out"
}
ok "with nothing changed, sluice test after sluice build reuses them" t_reused

t_bad_data() {
	# the ephemeral model's code changes: three unknown statuses, two amounts not above 0
	model int_orders "{{ config(materialized='ephemeral') }}
select order_id, customer_id, case when order_id <= 3 then 'lost' else nullif(status, 'returned') end as status,
       amount - 12 as amount
from {{ ref('int_orders_base') }}" intermediate &&
	expect_exit 1 sluice test || return 1
	expect_grep "FAIL 3 test $AV " "$T_DIR/out" &&
	expect_grep 'FAIL 2 test assert_positive_amounts ' "$T_DIR/out" &&
	# not reused: the code it runs changed, though its own definition did not
	expect_grep 'PASS test not_null_int_orders_order_id ' "$T_DIR/out" &&
	expect_eq "definition changed" "$(rr '.results[] | select(.unique_id | startswith("test.shop.not_null_int_orders_order_id.")) | .reasons | join(",")')" &&
	# what does not read it is still reused
	expect_grep 'REUSED test unique_customers_customer_id ' "$T_DIR/out" &&
	expect_eq "3" "$(rr ".results[] | select(.unique_id | startswith(\"test.shop.$AV.\")) | .failures")"
}
ok "a change to the ephemeral model's code reruns its tests, which count its failing rows" t_bad_data

t_upstream_change() {
	model int_orders "{{ config(materialized='ephemeral') }}
select order_id, customer_id, nullif(status, 'returned') as status, amount
from {{ ref('int_orders_base') }}" intermediate &&
	expect_exit 0 sluice test &&
	expect_exit 0 sluice test &&
	expect_grep 'REUSED test not_null_int_orders_order_id ' "$T_DIR/out" || return 1
	# the ephemeral model it inlines changes: the same rows, but other code
	model int_orders_base "{{ config(materialized='ephemeral') }}
select order_id, customer_id, status, amount from {{ ref('stg_orders') }} where order_id > 0" intermediate &&
	expect_exit 0 sluice test || return 1
	expect_grep 'PASS test not_null_int_orders_order_id ' "$T_DIR/out" &&
	expect_grep 'PASS test assert_positive_amounts ' "$T_DIR/out" &&
	expect_grep 'REUSED test unique_customers_customer_id ' "$T_DIR/out"
}
ok "a change to an ephemeral model it inlines reruns them too" t_upstream_change

t_upstream_view() {
	expect_exit 0 sluice test &&
	expect_grep 'REUSED test not_null_int_orders_order_id ' "$T_DIR/out" || return 1
	# the view under them is rebuilt with other code by a run
	model stg_orders "select id as order_id, user_id as customer_id, order_date, status, amount
from {{ ref('raw_orders') }}
where amount >= {{ var('min_amount') }} and id > 0" staging &&
	expect_exit 0 sluice run -s stg_orders &&
	expect_exit 0 sluice test || return 1
	expect_grep 'PASS test not_null_int_orders_order_id ' "$T_DIR/out" &&
	expect_eq "upstream 'stg_orders' changed" "$(rr '.results[] | select(.unique_id | startswith("test.shop.not_null_int_orders_order_id.")) | .reasons | join(",")')"
}
ok "... and so does a view upstream of it, rebuilt by sluice run" t_upstream_view

# limit: seven rows, three with an unknown status, one with none
model limits "select g as id, case when g % 2 = 0 then 'bad' when g = 7 then null else 'ok' end as status
from generate_series(1, 7) g"
cat >models/limits.yml <<'YML'
version: 2
models:
  - name: limits
    columns:
      - name: id
        data_tests: [not_null]
      - name: status
        data_tests:
          - accepted_values:
              values: ['ok', null]
              config:
                limit: 2
          - accepted_values:
              name: status_stored
              values: ['ok']
              config:
                limit: 1
                store_failures: true
YML
cat >tests/bad_statuses.sql <<'SQL'
{{ config(limit=2, store_failures=true) }}
select * from {{ ref('limits') }} where status = 'bad'
SQL

t_limit() {
	expect_exit 1 sluice build -s limits || return 1
	# counted over the first 2 failing rows, as dbt counts them; no "more" line
	expect_grep 'FAIL 2 test accepted_values_limits_status__ok__None ' "$T_DIR/out" &&
	expect_no_grep 'more failing row' "$T_DIR/out" &&
	expect_eq "2" "$(rr '.results[] | select(.unique_id | startswith("test.shop.accepted_values_limits_status__ok__None.")) | .samples | length')" &&
	expect_eq "true" "$(rr '.results[] | select(.unique_id | startswith("test.shop.accepted_values_limits_status__ok__None.")) | .combined_scan')" &&
	expect_grep 'FAIL 1 test status_stored ' "$T_DIR/out" &&
	expect_eq "1" "$(psql_q 'select count(*) from analytics_audit.status_stored')" &&
	expect_grep 'FAIL 2 test bad_statuses ' "$T_DIR/out" &&
	expect_eq "2" "$(psql_q 'select count(*) from analytics_audit.bad_statuses')"
}
ok "limit caps the failing rows counted, shown and stored" t_limit

t_limit_by_itself() {
	expect_exit 1 sluice test -s limits --no-combine || return 1
	expect_grep 'FAIL 2 test accepted_values_limits_status__ok__None ' "$T_DIR/out"
}
ok "... also when the test runs its own query" t_limit_by_itself

done_testing
