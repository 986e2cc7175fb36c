#!/usr/bin/env bash
# t0601: what a failing data test means (docs/data-tests.md): severity
# warn and error, warn_if / error_if thresholds, project-wide defaults in
# sluice.yml, exit codes, and store_failures writing the failing rows to
# <schema>_audit.<test name>, replaced on every run.
. "$(dirname "$0")/lib.sh"

new_project sev
psql_q "create schema lake;
create table lake.items (id int, code text);
insert into lake.items select i, case when i <= 3 then null else 'x' end from generate_series(1, 20) i;" >/dev/null || exit 1
model items "select * from {{ source('lake', 'items') }}"
cat >models/schema.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: items
models:
  - name: items
    columns:
      - name: code
        tests:
          - not_null:
              name: default_severity
          - not_null:
              name: warn_severity
              severity: warn
          - not_null:
              name: error_above_5
              config:
                error_if: ">5"
          - not_null:
              name: warn_above_5
              warn_if: ">5"
              error_if: ">10"
          - not_null:
              name: error_at_3
              error_if: "=3"
              warn_if: "!=0"
          - not_null:
              name: warn_severity_ignores_error_if
              severity: warn
              error_if: ">=1"
              warn_if: ">=4"
          - not_null:
              name: stored
              store_failures: true
          - not_null:
              name: where_filtered
              where: "id > 2"
          - not_null:
              name: switched_off
              enabled: false
          - accepted_values:
              name: stored_pass
              values: [x]
              store_failures: true
YML

# status of test NAME in run_results.json: "status:failures"
st() { rr ".results[] | select(.unique_id == \"test.proj.$1\") | \"\(.status):\(.failures)\""; }

ok "sluice run" expect_exit 0 sluice run
ok "sluice test exits 1 when an error-severity test fails" expect_exit 1 sluice test
cp "$T_DIR/out" "$T_DIR/first.out"

t_severities() {
	expect_eq "fail:3" "$(st default_severity)" || return 1
	expect_eq "warn:3" "$(st warn_severity)" || return 1
	expect_grep '^\[[0-9]+/[0-9]+\] WARN 3 test warn_severity ' "$T_DIR/first.out" || return 1
	expect_grep '^\[[0-9]+/[0-9]+\] FAIL 3 test default_severity ' "$T_DIR/first.out"
}
ok "severity error fails, severity warn warns, with the count" t_severities

t_thresholds() {
	# 3 failing rows
	expect_eq "warn:3" "$(st error_above_5)" || return 1          # error_if >5 not met; warn_if !=0 met
	expect_eq "pass:3" "$(st warn_above_5)" || return 1           # neither threshold met
	expect_eq "fail:3" "$(st error_at_3)" || return 1
	expect_eq "pass:3" "$(st warn_severity_ignores_error_if)" || return 1   # warn: only warn_if counts
	expect_eq "Got 3 failing rows, configured to warn if !=0" "$(rr '.results[] | select(.unique_id == "test.proj.error_above_5") | .message')" || return 1
	expect_eq "Got 3 failing rows, configured to fail if !=0" "$(rr '.results[] | select(.unique_id == "test.proj.default_severity") | .message')"
}
ok "warn_if / error_if thresholds as dbt applies them" t_thresholds

t_where_enabled() {
	expect_eq "fail:1" "$(st where_filtered)" || return 1
	expect_eq "" "$(st switched_off)" || return 1
	expect_no_grep switched_off "$T_DIR/first.out"
}
ok "where: tests only the rows it names; enabled: false leaves the test out" t_where_enabled

t_store_failures() {
	expect_eq "3" "$(psql_q "select count(*) from analytics_audit.stored where code is null and id <= 3")" || return 1
	expect_eq "3" "$(psql_q "select count(*) from analytics_audit.stored")" || return 1
	expect_eq "0" "$(psql_q "select count(*) from analytics_audit.stored_pass")" || return 1
	expect_eq '"analytics_audit"."stored"' "$(rr '.results[] | select(.unique_id == "test.proj.stored") | .audit_relation')" || return 1
	expect_eq "fail:3:3" "$(rr '.results[] | select(.unique_id == "test.proj.stored") | "\(.status):\(.failures):\(.samples | length)"')"
}
ok "store_failures writes the failing rows to <schema>_audit.<test> (and an empty table when it passes)" t_store_failures

t_exit_warn_only() {
	expect_exit 0 sluice test -s warn_severity error_above_5 warn_above_5 || return 1
	expect_grep 'tests 0 pass, 2 warn, 0 fail, 0 error, 0 skipped, 1 reused' "$T_DIR/out" || return 1
	# the one that passed last time, with nothing changed since, is reused
	expect_eq "reused:null" "$(st warn_above_5)"
}
ok "warnings alone exit 0" t_exit_warn_only

t_store_replaced() {
	psql_q "update lake.items set code = 'y' where id = 1" >/dev/null || return 1
	expect_exit 1 sluice test -s stored stored_pass || return 1
	expect_eq "2,3" "$(psql_q "select string_agg(id::text, ',' order by id) from analytics_audit.stored")" || return 1
	expect_eq "1" "$(psql_q "select count(*) from analytics_audit.stored_pass")" || return 1
	expect_eq "fail:1" "$(st stored_pass)" || return 1
	# no side table left behind
	expect_eq "stored stored_pass" "$(psql_q "select string_agg(tablename, ' ' order by tablename) from pg_tables where schemaname = 'analytics_audit'")"
}
ok "the audit tables are replaced on the next run, in place" t_store_replaced

t_project_defaults() {
	cat >>sluice.yml <<'YML'
tests:
  +severity: warn
YML
	expect_exit 0 sluice test -s default_severity || return 1
	expect_eq "warn:2" "$(st default_severity)" || return 1
	# an entry's own severity still wins
	sed -i 's/name: error_at_3/name: error_at_3\n              severity: error/' models/schema.yml || return 1
	sed -i 's/error_if: "=3"/error_if: "=2"/' models/schema.yml || return 1
	expect_exit 1 sluice test -s error_at_3 || return 1
	expect_eq "fail:2" "$(st error_at_3)"
}
ok "sluice.yml tests: +severity sets the default, an entry's severity overrides it" t_project_defaults

t_bad_threshold() {
	sed -i 's/warn_if: ">5"/warn_if: "more than 5"/' models/schema.yml || return 1
	expect_exit 2 sluice test || return 1
	expect_grep 'models/schema.yml:[0-9]+:[0-9]+: warn_if must be a threshold such as ">10", ">=1" or "!=0"' "$T_DIR/out"
}
ok "a bad threshold is a usage error with file:line" t_bad_threshold

done_testing
