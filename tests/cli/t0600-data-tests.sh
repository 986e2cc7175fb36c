#!/usr/bin/env bash
# t0600: data tests (docs/data-tests.md) through `sluice test`: every
# generic test and sluice's validation tests pass on good data and fail on
# bad data with the exact number of failures and sample rows; singular
# tests; equal_row_count across two connections; and mistakes in the YAML
# are reported with file, line and column.
. "$(dirname "$0")/lib.sh"

new_project dt
SIDE_DB="${T_DB}_side"
psql -X -q -d postgres -c "CREATE DATABASE \"$SIDE_DB\"" >/dev/null || { echo "Bail out! cannot create $SIDE_DB"; exit 1; }
at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"$SIDE_DB\" WITH (FORCE)' >/dev/null 2>&1"
cat >>profiles.yml <<YML
      connections:
        side:
          type: postgres
          host: "$SLUICE_TEST_PGHOST"
          port: $SLUICE_TEST_PGPORT
          user: "$SLUICE_TEST_PGUSER"
          password: "{{ env_var('SLUICE_TEST_PGPASSWORD') }}"
          dbname: "$SIDE_DB"
YML
echo "test-paths: [checks]" >>sluice.yml

psql_q "create schema lake;
create table lake.clean_people (id int, site text, status text, age int, loaded_at timestamptz, ref_id int);
insert into lake.clean_people select i, case when i % 2 = 0 then 'a' else 'b' end, case when i % 3 = 0 then 'done' else 'new' end,
	20 + i, now() - interval '1 hour', i from generate_series(1, 10) i;
create table lake.dirty_people (id int, site text, status text, age int, loaded_at timestamptz, ref_id int);
insert into lake.dirty_people values
	(1, 'a', 'new', 30, now() - interval '3 days', 1),
	(2, null, 'new', 31, now() - interval '3 days', 2),
	(3, null, 'bad', 32, now() - interval '3 days', 99),
	(3, 'b', 'new', -1, now() - interval '3 days', 3),
	(4, 'b', 'weird', 33, now() - interval '3 days', 98),
	(4, 'b', 'new', 34, now() - interval '3 days', null),
	(5, 'c', 'done', 35, now() - interval '3 days', 5);" >/dev/null || exit 1
psql -X -q -d "$SIDE_DB" -c "create schema far; create table far.copy as select i as id from generate_series(1, 10) i;
	create table far.short as select i as id from generate_series(1, 6) i;" || exit 1

model clean "select * from {{ source('lake', 'clean_people') }}"
model dirty "select * from {{ source('lake', 'dirty_people') }}"
# The same tests on both models; only the relation differs.
tests_for() {
	cat <<YML
  - name: $1
    columns:
      - name: id
        tests: [not_null, unique]
      - name: site
        data_tests:
          - not_null
          - accepted_values:
              values: [a, b]
      - name: status
        tests:
          - accepted_values: {values: [new, done]}
      - name: ref_id
        tests:
          - relationships:
              to: ref('clean')
              field: id
      - name: age
        tests:
          - expression: ">= 0"
    tests:
      - row_count: {min: 10, max: 10}
      - equal_row_count:
          to: ref('clean')
      - equal_row_count:
          to: source('far', 'copy')
      - expression: "age < 200"
      - fresher_than: {field: loaded_at, within: 24h}
      - unique_combination: [id, site]
YML
}
{
	cat <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: clean_people
        columns:
          - name: id
            tests: [not_null]
      - name: dirty_people
  - name: far
    connection: side
    tables:
      - name: copy
      - name: short
        tests:
          - row_count: {min: 10, store_failures: true}
models:
YML
	tests_for clean
	tests_for dirty
} >models/schema.yml
mkdir -p checks
printf '%s\n' "-- people older than 100 or younger than 0" \
	"select * from {{ ref('dirty') }} where age < 0 or age > 100" >checks/dirty_ages.sql
printf '%s\n' "select * from {{ ref('clean') }} where age < 0" >checks/clean_ages.sql

ok "sluice run builds the models and runs no test" expect_exit 0 sluice run
t_run_no_tests() {
	expect_no_grep 'test ' "$T_DIR/out" || return 1
	expect_eq 0 "$(rr '[.results[] | select(.unique_id | startswith("test."))] | length')"
}
ok "sluice run leaves the tests alone (none in its output or run_results)" t_run_no_tests

# Names as dbt makes them, for the tests of clean.
CLEAN_TESTS="accepted_values_clean_site__a__b accepted_values_clean_status__new__done
equal_row_count_clean_ref_clean_ equal_row_count_clean_source_far_copy_ expression_clean_age_200
expression_clean_age___0 fresher_than_clean_loaded_at__24h not_null_clean_id not_null_clean_site
relationships_clean_ref_id__id__ref_clean_ row_count_clean_10__10 unique_clean_id unique_combination_clean_id__site"

t_ls_names() {
	out=$(sluice ls --resource-type test --output name) || return 1
	for n in $CLEAN_TESTS clean_ages dirty_ages source_not_null_lake_clean_people_id; do
		expect_line "$n" "$out" || return 1
	done
	expect_eq 30 "$(echo "$out" | wc -l)"
}
ok "sluice ls lists the tests by their dbt-style names" t_ls_names

ok "sluice test -s clean --exclude dirty passes every test of clean, exit 0" expect_exit 0 sluice test -s clean --exclude dirty
t_clean() {
	expect_eq "14 14" "$(rr '[.results[] | select(.status == "pass")] | length') $(rr '.results | length')" || return 1
	for n in $CLEAN_TESTS clean_ages; do
		expect_eq "pass 0" "$(rr ".results[] | select(.unique_id == \"test.proj.$n\") | \"\(.status) \(.failures)\"")" || return 1
		expect_grep "^\[[0-9]+/14\] PASS test $n " "$T_DIR/out" || return 1
	done
	expect_grep 'Done in .*: tests 14 pass, 0 warn, 0 fail, 0 error, 0 skipped, 0 reused' "$T_DIR/out"
}
ok "clean: every generic, validation and singular test passes, reported per test" t_clean

ok "sluice test -s dirty fails, exit 1" expect_exit 1 sluice test -s dirty
cp "$T_DIR/out" "$T_DIR/dirty.out"
# failures: dirty has 7 rows; see the inserts above.
EXPECT="not_null_dirty_id=pass:0
unique_dirty_id=fail:2
not_null_dirty_site=fail:2
accepted_values_dirty_site__a__b=fail:1
accepted_values_dirty_status__new__done=fail:2
relationships_dirty_ref_id__id__ref_clean_=fail:2
expression_dirty_age___0=fail:1
row_count_dirty_10__10=fail:3
equal_row_count_dirty_ref_clean_=fail:3
equal_row_count_dirty_source_far_copy_=fail:3
expression_dirty_age_200=pass:0
fresher_than_dirty_loaded_at__24h=fail:1
unique_combination_dirty_id__site=fail:1
dirty_ages=fail:1"
t_dirty() {
	for e in $EXPECT; do
		n=${e%%=*} want=${e#*=}
		expect_eq "$n=$want" "$n=$(rr ".results[] | select(.unique_id == \"test.proj.$n\") | \"\(.status):\(.failures)\"")" || return 1
		if [ "${want%%:*}" = fail ]; then
			expect_grep "^\[[0-9]+/[0-9]+\] FAIL ${want#*:} test $n " "$T_DIR/dirty.out" || return 1
		fi
	done
}
ok "dirty: each test fails with its exact number of failures (dbt's counts)" t_dirty

t_samples() {
	expect_eq '[2,3]' "$(rr '[.results[] | select(.unique_id == "test.proj.not_null_dirty_site") | .samples[].id | tonumber] | sort | tojson')" || return 1
	expect_eq 'null,null' "$(rr '[.results[] | select(.unique_id == "test.proj.not_null_dirty_site") | .samples[].site] | map(tostring) | join(",")')" || return 1
	expect_eq '3:2,4:2' "$(rr '[.results[] | select(.unique_id == "test.proj.unique_dirty_id") | .samples[] | "\(.id):\(.n_records)"] | sort | join(",")')" || return 1
	expect_eq 'bad,weird' "$(rr '[.results[] | select(.unique_id == "test.proj.accepted_values_dirty_status__new__done") | .samples[].status] | sort | join(",")')" || return 1
	expect_eq '98,99' "$(rr '[.results[] | select(.unique_id == "test.proj.relationships_dirty_ref_id__id__ref_clean_") | .samples[].ref_id] | sort | join(",")')" || return 1
	expect_eq '7:10' "$(rr '.results[] | select(.unique_id == "test.proj.row_count_dirty_10__10") | .samples[0] | "\(.row_count):\(.min)"')" || return 1
	expect_eq '7:10' "$(rr '.results[] | select(.unique_id == "test.proj.equal_row_count_dirty_source_far_copy_") | .samples[0] | "\(.row_count):\(.to_row_count)"')" || return 1
	expect_eq '4:b:2' "$(rr '.results[] | select(.unique_id == "test.proj.unique_combination_dirty_id__site") | .samples[0] | "\(.id):\(.site):\(.n_records)"')" || return 1
	expect_eq '-1' "$(rr '.results[] | select(.unique_id == "test.proj.dirty_ages") | .samples[0].age')" || return 1
	# the first failing rows are shown under the FAIL line
	expect_grep '^    id=3, n_records=2$' "$T_DIR/dirty.out" || return 1
	expect_grep '^    7 rows, 3 fewer than min 10$' "$T_DIR/dirty.out"
}
ok "failing rows are kept as samples in run_results.json and shown under FAIL" t_samples

t_many_failures() {
	psql_q "insert into lake.dirty_people select 100 + i, null, 'new', 40, now(), 1 from generate_series(1, 30) i" >/dev/null || return 1
	expect_exit 1 sluice test -s dirty || return 1
	expect_eq "fail:32:20" "$(rr '.results[] | select(.unique_id == "test.proj.not_null_dirty_site") | "\(.status):\(.failures):\(.samples | length)"')" || return 1
	expect_grep '^    \.\.\. 27 more failing rows$' "$T_DIR/out" || return 1
	psql_q "delete from lake.dirty_people where id > 100" >/dev/null
}
ok "at most 20 sample rows are kept, 5 shown, however many fail" t_many_failures

t_source_test() {
	expect_exit 0 sluice test -s source:lake.clean_people || return 1
	expect_eq "test.proj.source_not_null_lake_clean_people_id=pass" "$(rr '[.results[] | "\(.unique_id)=\(.status)"] | join(" ")')"
}
ok "tests on a source run when the source is selected" t_source_test

t_other_connection() {
	expect_exit 1 sluice test -s source:far.short || return 1
	expect_eq "fail:4" "$(rr '.results[] | "\(.status):\(.failures)"')" || return 1
	expect_eq "6" "$(psql -X -A -t -d "$SIDE_DB" -c "select row_count from analytics_audit.source_row_count_far_short_10")"
}
ok "a test on a source on another connection runs there, and stores its failures there" t_other_connection

t_one_test() {
	expect_exit 1 sluice test -s unique_dirty_id || return 1
	expect_eq "test.proj.unique_dirty_id=fail" "$(rr '[.results[] | "\(.unique_id)=\(.status)"] | join(" ")')"
}
ok "-s <test name> runs just that test" t_one_test

t_manifest() {
	jq -e '.nodes["test.proj.relationships_dirty_ref_id__id__ref_clean_"] | .resource_type == "test"
		and .attached_node == "model.proj.dirty" and .column_name == "ref_id"
		and (.depends_on.nodes | sort == ["model.proj.clean", "model.proj.dirty"])' target/manifest.json >/dev/null ||
		{ jq '.nodes["test.proj.relationships_dirty_ref_id__id__ref_clean_"]' target/manifest.json; return 1; }
	jq -e '.nodes["test.proj.dirty_ages"].depends_on.nodes == ["model.proj.dirty"]' target/manifest.json >/dev/null
}
ok "manifest.json has the tests with their dependencies" t_manifest

t_compiled() {
	expect_grep 'NOT EXISTS' target/compiled/models/schema.yml/relationships_dirty_ref_id__id__ref_clean_.sql || return 1
	expect_grep '"analytics"."dirty"' target/compiled/checks/dirty_ages.sql
}
ok "target/compiled holds each test's failing-rows query" t_compiled

# ---- mistakes in the YAML: file, line and column ----
cp models/schema.yml "$T_DIR/schema.yml.good"
fails_with() {
	pattern=$1
	shift
	expect_exit 2 "$@" || return 1
	expect_grep "$pattern" "$T_DIR/out"
}

t_unknown_test() {
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	line=$(grep -n 'tests: \[not_null, unique\]' models/schema.yml | head -1 | cut -d: -f1) || return 1
	sed -i "${line}s/unique\]/uniqe]/" models/schema.yml || return 1
	fails_with "models/schema.yml:$line:[0-9]+: unknown test 'uniqe' \(did you mean 'unique'\?\)" sluice test
}
ok "an unknown test name: file:line:col and a suggestion" t_unknown_test

t_bad_yaml() {
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	printf '  - name: broken\n    columns: [oops\n' >>models/schema.yml
	fails_with "models/schema.yml:[0-9]+:[0-9]+: " sluice test
}
ok "YAML that does not parse: file:line:col" t_bad_yaml

t_bad_args() {
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	line=$(grep -n 'accepted_values: {values: \[new, done\]}' models/schema.yml | head -1 | cut -d: -f1) || return 1
	sed -i "${line}s/{values: \[new, done\]}/{valeus: [new, done]}/" models/schema.yml || return 1
	fails_with "models/schema.yml:$line:[0-9]+: unknown argument 'valeus' for accepted_values" sluice test || return 1
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	line=$(grep -n 'fresher_than' models/schema.yml | head -1 | cut -d: -f1) || return 1
	sed -i "${line}s/24h/24 parsecs/" models/schema.yml || return 1
	fails_with "models/schema.yml:$line:[0-9]+: within must be a duration such as 30m, 24h or 7d" sluice test || return 1
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	line=$(grep -n "to: ref('clean')" models/schema.yml | head -1 | cut -d: -f1) || return 1
	sed -i "${line}s/ref('clean')/ref('cleen')/" models/schema.yml || return 1
	fails_with "models/schema.yml:$line:[0-9]+: unknown model 'cleen' in to:" sluice test || return 1
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	line=$(grep -n "severity\|row_count: {min: 10, max: 10}" models/schema.yml | head -1 | cut -d: -f1) || return 1
	sed -i "${line}s/{min: 10, max: 10}/{min: 10, max: 10, severity: fatal}/" models/schema.yml || return 1
	fails_with "models/schema.yml:$line:[0-9]+: severity must be warn or error" sluice test
}
ok "bad arguments (a misspelt key, a bad duration, an unknown model, a bad severity): file:line:col" t_bad_args

t_unknown_column() {
	cp "$T_DIR/schema.yml.good" models/schema.yml || return 1
	line=$(grep -n -- '- name: site' models/schema.yml | sed -n 2p | cut -d: -f1) || return 1
	sed -i "${line}s/name: site/name: sitee/" models/schema.yml || return 1
	expect_exit 1 sluice test -s dirty || return 1
	expect_grep "ERROR test not_null_dirty_sitee " "$T_DIR/out" || return 1
	expect_grep "^    models/schema.yml:$line:[0-9]+: test not_null_dirty_sitee: unknown column 'sitee' in analytics.dirty \(did you mean 'site'\?\)" "$T_DIR/out" || return 1
	expect_eq error "$(rr '.results[] | select(.unique_id == "test.proj.not_null_dirty_sitee") | .status')" || return 1
	# the other tests of dirty, combined in the same scan, still report their own results
	expect_eq "fail:2" "$(rr '.results[] | select(.unique_id == "test.proj.accepted_values_dirty_status__new__done") | "\(.status):\(.failures)"')"
}
ok "a test on an unknown column: an error naming the YAML file and line, the others still run" t_unknown_column
cp "$T_DIR/schema.yml.good" models/schema.yml

done_testing
