#!/usr/bin/env bash
# t0603: the shared scan gives the same per-test results as one query per
# test (--no-combine, or tests: {+combine: false}) and reads the table
# once; passed tests are reused until their definition or their data
# changes; row_count_delta compares with the count of the last run that
# passed.
. "$(dirname "$0")/lib.sh"

new_project scan
psql_q "create schema lake;
create table lake.big (id int, a int, b text, status text, amount int, ts timestamptz);
insert into lake.big select i, case when i % 150 = 0 then null else i end, 'b' || i,
	case when i % 97 = 0 then 'lost' when i % 2 = 0 then 'open' else 'closed' end,
	case when i % 333 = 0 then -i else i end, now() - (i || ' minutes')::interval
from generate_series(1, 1000) i;
create table lake.daily (id int);
insert into lake.daily select generate_series(1, 100);" >/dev/null || exit 1

model big "{{ config(materialized='table') }}
select * from {{ source('lake', 'big') }}"
model ok_big "{{ config(materialized='table') }}
select * from {{ source('lake', 'big') }} where a is not null and amount >= 0 and status <> 'lost'"
model daily "select * from {{ source('lake', 'daily') }}"
model pred_only "select * from {{ source('lake', 'big') }}"
cat >models/schema.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: big
      - name: daily
models:
  - name: big
    columns:
      - name: id
        tests: [not_null, unique]
      - name: a
        tests: [not_null]
      - name: b
        tests: [not_null]
      - name: status
        tests:
          - accepted_values: {values: [open, closed]}
      - name: amount
        tests:
          - expression: ">= 0"
    tests:
      - row_count: {min: 1, max: 900}
      - fresher_than: {field: ts, within: 1h}
      - expression: "length(b) < 5"
  - name: ok_big
    columns:
      - name: id
        tests: [not_null]
      - name: a
        tests: [not_null]
      - name: b
        tests: [not_null]
      - name: status
        tests:
          - accepted_values: {values: [open, closed]}
      - name: amount
        tests:
          - expression: ">= 0"
    tests:
      - row_count: {min: 1}
  - name: daily
    tests:
      - row_count_delta: {max_pct: 10}
  # only tests that count rows: the shared scan skips the rows none fails
  - name: pred_only
    columns:
      - name: a
        tests: [not_null]
      - name: b
        tests: [not_null]
      - name: status
        tests:
          - accepted_values: {values: [open, closed]}
      - name: amount
        tests:
          - expression: ">= 0"
YML

ok "sluice run" expect_exit 0 sluice run

# every test's "unique_id status failures sorted-sample-ids"
results() {
	jq -r '.results[] | select(.unique_id | startswith("test.")) |
		"\(.unique_id) \(.status) \(.failures) \([.samples[] | (.id // .row_count // .latest // "-") | tostring] | sort | join(","))"' \
		target/run_results.json | LC_ALL=C sort
}

t_combined() {
	expect_exit 1 sluice test -s big pred_only || return 1
	results >"$T_DIR/combined.txt" || return 1
	# the eight tests of big that can share a pass did, in one query; pred_only's four in another
	expect_eq "12 2" "$(rr '[.results[] | select(.combined_scan)] | length') $(rr '[.results[] | select(.combined_scan) | .execution_time] | unique | length')" || return 1
	expect_eq "false" "$(rr '.results[] | select(.unique_id == "test.proj.unique_big_id") | .combined_scan')"
}
ok "sluice test: the tests of big that can share a scan are counted in one" t_combined

t_separate() {
	expect_exit 1 sluice test -s big pred_only --no-combine --force || return 1
	results >"$T_DIR/separate.txt" || return 1
	expect_eq 0 "$(rr '[.results[] | select(.combined_scan)] | length')" || return 1
	diff "$T_DIR/combined.txt" "$T_DIR/separate.txt" || return 1
	# and the results are not trivially equal
	expect_eq "test.proj.accepted_values_big_status__open__closed fail 10" "$(grep accepted_values_big "$T_DIR/separate.txt" | cut -d' ' -f1-3)" || return 1
	expect_eq "test.proj.not_null_big_a fail 6 150,300,450,600,750,900" "$(grep not_null_big_a "$T_DIR/separate.txt")" || return 1
	expect_eq "test.proj.row_count_big_900__1 fail 100 1000" "$(grep row_count_big "$T_DIR/separate.txt")" || return 1
	expect_eq "test.proj.fresher_than_big_ts__1h pass 0 " "$(grep fresher_than "$T_DIR/separate.txt")" || return 1
	expect_eq "test.proj.expression_pred_only_amount___0 fail 3 333,666,999" "$(grep expression_pred_only "$T_DIR/separate.txt")"
}
ok "--no-combine: one query per test, the same statuses, counts and samples" t_separate

t_config_off() {
	cp sluice.yml "$T_DIR/sluice.yml.orig" || return 1
	printf 'tests:\n  +combine: false\n' >>sluice.yml
	expect_exit 1 sluice test -s big pred_only --force || return 1
	cp "$T_DIR/sluice.yml.orig" sluice.yml || return 1
	expect_eq 0 "$(rr '[.results[] | select(.combined_scan)] | length')" || return 1
	results | diff "$T_DIR/combined.txt" -
}
ok "sluice.yml tests: {+combine: false} turns the shared scan off" t_config_off

# Sequential scans of analytics.ok_big so far, once the statistics of the
# sessions that ended have been published.
scans() { psql_q "select seq_scan from pg_stat_user_tables where schemaname = 'analytics' and relname = 'ok_big'"; }
scans_are() { [ "$(scans)" = "$1" ]; }
t_one_pass() {
	before=$(scans) || return 1
	expect_exit 0 sluice test -s ok_big --force || return 1
	wait_until 5 scans_are $((before + 1)) || { echo "combined: $before -> $(scans) scans, expected one"; return 1; }
	before=$(scans) || return 1
	expect_exit 0 sluice test -s ok_big --force --no-combine || return 1
	wait_until 5 scans_are $((before + 6)) || { echo "separate: $before -> $(scans) scans, expected six"; return 1; }
}
ok "six tests of ok_big read the table once together, six times apart" t_one_pass

t_reuse() {
	expect_exit 0 sluice test -s ok_big || return 1
	expect_eq 6 "$(rr '[.results[] | select(.status == "reused")] | length')" || return 1
	expect_grep 'tests 0 pass, 0 warn, 0 fail, 0 error, 0 skipped, 6 reused' "$T_DIR/out" || return 1
	# failing tests are never reused
	expect_exit 1 sluice test -s big || return 1
	expect_eq "last run: fail" "$(rr '.results[] | select(.unique_id == "test.proj.not_null_big_a") | .reasons | join(";")')" || return 1
	expect_eq "reused" "$(rr '.results[] | select(.unique_id == "test.proj.not_null_big_b") | .status')"
}
ok "a passed test with nothing changed is reused; a failed one runs again" t_reuse

t_definition_change() {
	line=$(grep -n 'accepted_values: {values: \[open, closed\]}' models/schema.yml | sed -n 2p | cut -d: -f1) || return 1   # ok_big's
	sed -i "${line}s/\[open, closed\]/[open, closed], severity: error/" models/schema.yml || return 1
	expect_exit 0 sluice test -s ok_big || return 1
	expect_eq "test.proj.accepted_values_ok_big_status__open__closed=definition changed" \
		"$(rr '[.results[] | select(.status != "reused") | "\(.unique_id)=\(.reasons | join(";"))"] | join(" ")')"
}
ok "a changed definition (even only its config) runs that test alone again" t_definition_change

# tests_ran SEL N: `sluice test -s SEL` ran (did not reuse) N tests that passed.
tests_ran() {
	sluice test -s "$1" >/dev/null 2>&1 || return 1
	[ "$(rr '[.results[] | select(.status == "pass")] | length')" = "$2" ]
}
# test_status_is SEL STATUS: `sluice test -s SEL` gave its first test STATUS,
# and exited 1 if that is fail, 0 if not.
test_status_is() {
	sluice test -s "$1" >/dev/null 2>&1
	_rc=$?
	[ "$(rr '.results[0].status')" = "$2" ] || return 1
	if [ "$2" = fail ]; then
		[ "$_rc" = 1 ]
	else
		[ "$_rc" = 0 ]
	fi
}

t_data_change() {
	psql_q "update analytics.ok_big set b = 'x' where id = 1" >/dev/null || return 1
	wait_until 5 tests_ran ok_big 6 ||
		{ echo "the tests did not run again:"; rr '.results[] | "\(.unique_id) \(.status) \(.reasons)"'; return 1; }
	expect_eq "relation of 'ok_big' changed" "$(rr '[.results[].reasons[]] | unique | join(";")')"
}
ok "a write to the tested table outside sluice runs its tests again" t_data_change

t_upstream_change() {
	psql_q "insert into lake.big values (2000, 1, 'b', 'open', 1, now())" >/dev/null || return 1
	wait_until 5 plan_builds ok_big -s ok_big || return 1
	expect_exit 1 sluice build || return 1
	expect_eq "success" "$(rr_status ok_big)" || return 1
	expect_eq 6 "$(rr '[.results[] | select((.unique_id | test("ok_big")) and .status == "pass" and (.reasons | index("upstream '"'"'ok_big'"'"' changed")))] | length')"
}
ok "sluice build: a rebuilt model's tests run again" t_upstream_change

delta() { rr '.results[] | select(.unique_id == "test.proj.row_count_delta_daily_10") | "\(.status):\(.failures)"'; }
t_delta() {
	# (build already ran it once: the baseline is 100 rows)
	expect_exit 0 sluice test -s daily --force || return 1
	expect_eq "pass:0" "$(delta)" || return 1
	psql_q "insert into lake.daily select generate_series(101, 105)" >/dev/null || return 1
	wait_until 5 tests_ran daily 1 || return 1
	expect_eq "pass:0" "$(delta)" || return 1
	psql_q "insert into lake.daily select generate_series(106, 160)" >/dev/null || return 1
	wait_until 5 test_status_is daily fail || return 1
	expect_eq "fail:55" "$(delta)" || return 1
	expect_eq "105 160" "$(rr '.results[0].samples[0] | "\(.previous_row_count) \(.row_count)"')" || return 1
	# the failure did not move the baseline: still failing against 105
	expect_exit 1 sluice test -s daily || return 1
	expect_eq "fail:55" "$(delta)"
}
ok "row_count_delta: within max_pct passes and moves the baseline; beyond fails and keeps it" t_delta

done_testing
