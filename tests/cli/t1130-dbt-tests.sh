#!/usr/bin/env bash
# t1130: tests as a dbt project writes them: data_tests: and tests:, the
# 1.10 arguments: form, config: blocks (severity, where, enabled,
# store_failures), tests on seeds, and dbt's names and unique_ids, hash
# suffix included, in what sluice prints and in run_results.json.
. "$(dirname "$0")/lib.sh"

new_dbt_project shop
cat >models/more_tests.yml <<'YML'
version: 2
models:
  - name: order_status
    columns:
      - name: status
        data_tests:
          - not_null:
              config:
                where: "orders > 1"
          - accepted_values:
              arguments:
                values: [placed, shipped]
              config:
                severity: warn
                store_failures: true
          - unique:
              config:
                enabled: false
YML

t_build() {
	expect_exit 0 sluice build || return 1
	expect_grep 'Tests: 8 pass, 1 warn, 0 fail' "$T_DIR/out" &&
	expect_grep 'WARN 2 test accepted_values_order_status_status__placed__shipped' "$T_DIR/out" &&
	expect_no_grep 'unique_order_status_status' "$T_DIR/out"
}
ok "sluice build runs dbt-style tests: config severity warns, enabled: false leaves one out" t_build

t_unique_ids() {
	expect_eq "test.shop.accepted_values_order_status_status__placed__shipped.$(test_hash accepted_values_order_status_status__placed__shipped)" \
		"$(rr '.results[] | select(.unique_id | startswith("test.shop.accepted_values_order_status")) | .unique_id')" &&
	expect_eq "9" "$(rr '[.results[] | select(.unique_id | test("^test\\.shop\\.[a-z_]+\\.[0-9a-f]{10}$"))] | length')"
}
# The hash dbt would give: computed here the way dbt documents it, for the
# one test whose arguments are plain (values as a YAML list of names).
test_hash() {
	printf "%s{'kwargs': {'column_name': 'status', 'model': \"{{ get_where_subquery(ref('order_status')) }}\", 'values': ['placed', 'shipped']}, 'name': 'accepted_values', 'namespace': 'None'}" "$1" |
		md5sum | cut -c23-32
}
ok "unique_ids are dbt's: test.<project>.<name>.<10 hex digits of dbt's hash>" t_unique_ids

t_where() {
	expect_eq "pass" "$(rr '.results[] | select(.unique_id | startswith("test.shop.not_null_order_status_status.")) | .status')"
}
ok "a test's where: config is applied" t_where

t_store_failures() {
	expect_eq "2" "$(psql_q "select count(*) from analytics_marts_audit.accepted_values_order_status_status__placed__shipped")"
}
ok "store_failures keeps the failing rows in the audit table" t_store_failures

t_seed_test() {
	expect_eq "pass" "$(rr '.results[] | select(.unique_id | startswith("test.shop.unique_raw_customers_id.")) | .status')"
}
ok "a test on a seed runs after the seed" t_seed_test

done_testing
