#!/usr/bin/env bash
# t0080: what `sluice run` reports: run_results.json fields, the progress
# lines, --log-format json, and parallel workers (--threads).
. "$(dirname "$0")/lib.sh"

new_project art
model x "{{ config(materialized='table') }}
select i as id from generate_series(1, 3) as i"
model y "select id from {{ ref('x') }}"

ok "run exits 0" expect_exit 0 sluice run
cp "$T_DIR/out" "$T_DIR/run.out"

# res ID FILTER: jq FILTER on the result of model ID.
res() { rr ".results[] | select(.unique_id == \"model.proj.$1\") | $2"; }

t_metadata() {
	expect_grep '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' <(rr .metadata.invocation_id) || return 1
	expect_eq true "$(rr '.elapsed_time | type == "number" and . > 0')" || return 1
	expect_eq "tester proj dev" "$(rr '[.metadata.user, .metadata.project_name, .metadata.target] | join(" ")')" || return 1
	expect_eq object "$(rr '.args | type')"
}
ok "metadata.invocation_id is a UUID, elapsed_time a positive number" t_metadata

t_results() {
	expect_eq "model.proj.x model.proj.y" "$(rr '[.results[].unique_id] | sort | join(" ")')" || return 1
	expect_eq "success" "$(res x .status)" || return 1
	expect_eq true "$(res x '.execution_time | type == "number" and . >= 0')" || return 1
	expect_eq "$(psql_q 'select count(*) from analytics.x')" "$(res x .adapter_response.rows_affected)" || return 1
	expect_eq 3 "$(res x .adapter_response.rows_affected)" || return 1
	expect_eq true "$(res x '.thread_id | type == "string" and length > 0')" || return 1
	expect_eq '"analytics"."x"' "$(res x .relation_name)"
}
ok "results[]: unique_id, status, execution_time, rows_affected = row count, thread_id" t_results

# The fractional seconds of an ISO 8601 time, as a number.
JQ_TS='def ts: (.[0:19] + "Z" | fromdateiso8601) + ("0" + (.[19:] | sub("Z$"; "")) | tonumber);'

t_timing() {
	expect_eq "compile execute" "$(res x '[.timing[].name] | join(" ")')" || return 1
	expect_eq true "$(jq -r "$JQ_TS"' [.results[] | select(.unique_id == "model.proj.x") | .timing[]
		| (.started_at | ts) <= (.completed_at | ts)] | all' target/run_results.json)" || return 1
	expect_eq true "$(jq -r "$JQ_TS"' .results[] | select(.unique_id == "model.proj.x") | .timing
		| (.[0].completed_at | ts) <= (.[1].started_at | ts)' target/run_results.json)"
}
ok "timing: compile then execute, with started_at <= completed_at" t_timing

t_lines() {
	f=$T_DIR/run.out
	expect_grep '^\[1/2\] START table analytics\.x$' "$f" || return 1
	expect_grep '^\[1/2\] OK table analytics\.x \.+ [0-9]+\.[0-9]{2}s 3 rows$' "$f" || return 1
	expect_grep '^\[2/2\] START view analytics\.y$' "$f" || return 1
	expect_grep '^\[2/2\] OK view analytics\.y \.+ [0-9]+\.[0-9]{2}s' "$f" || return 1
	expect_grep '^Done in [0-9]+\.[0-9]{2}s: 2 ok, 0 error, 0 skipped, 0 reused$' "$f"
}
ok "progress lines: [1/2] START ..., [1/2] OK table analytics.x ... 0.01s 3 rows, summary" t_lines

t_one_row() {
	model x "{{ config(materialized='table') }}
select 1 as id"
	expect_exit 0 sluice run -s x || return 1
	expect_grep '^\[1/1\] OK table analytics\.x \.+ [0-9]+\.[0-9]{2}s 1 row$' "$T_DIR/out"
}
ok "one row is '1 row'" t_one_row

t_json_log() {
	sluice run --log-format json >"$T_DIR/json.out" 2>"$T_DIR/json.err" || { cat "$T_DIR/json.err"; return 1; }
	[ -s "$T_DIR/json.out" ] || { echo "no output"; return 1; }
	n=0
	while IFS= read -r line; do
		n=$((n + 1))
		printf '%s' "$line" | jq -e 'type == "object"' >/dev/null 2>&1 ||
			{ echo "line $n is not a JSON object: $line"; return 1; }
	done <"$T_DIR/json.out"
	[ "$n" -ge 3 ] || { echo "only $n lines"; return 1; }
	grep -q 'model\.proj\.x' "$T_DIR/json.out" || { echo "no event names model.proj.x"; return 1; }
	expect_no_grep '^\[[0-9]' "$T_DIR/json.out"
}
ok "--log-format json: every line of output is one JSON object" t_json_log

new_project par
for i in 1 2 3 4; do
	model p$i "{{ config(materialized='table') }}
select $i as id where (select count(*) from pg_sleep(1)) = 1"
done

ok "four independent sleeping models with --threads 4" expect_exit 0 sluice run --threads 4

t_overlap() {
	# Every execute interval overlaps every other: the latest start is
	# before the earliest end.
	expect_eq true "$(jq -r "$JQ_TS"' [.results[].timing[] | select(.name == "execute")] as $e
		| ($e | length) == 4 and ([$e[].started_at | ts] | max) < ([$e[].completed_at | ts] | min)' target/run_results.json)" || {
		rr '.results[] | [.unique_id, (.timing[] | select(.name == "execute") | .started_at, .completed_at)] | join(" ")'
		return 1
	}
	expect_eq 4 "$(rr '[.results[].thread_id] | unique | length')"
}
ok "their execute timings overlap, on four distinct threads" t_overlap

t_serial() {
	expect_exit 0 sluice run --threads 1 || return 1
	expect_eq true "$(jq -r "$JQ_TS"' [.results[].timing[] | select(.name == "execute") | [(.started_at | ts), (.completed_at | ts)]]
		| sort | . as $e | [range(1; length) | $e[.][0] >= $e[. - 1][1]] | all' target/run_results.json)"
}
ok "with --threads 1 they do not overlap" t_serial

# "Ready models start in order of their longest remaining path": with one
# thread, the head of the long chain starts before the lone model, whose
# name sorts first.
new_project crit
model aaa_lone "select 1 as id"
model c1 "select 1 as id"
model c2 "select id from {{ ref('c1') }}"
model c3 "select id from {{ ref('c2') }}"
model c4 "select id from {{ ref('c3') }}"
t_critical_first() {
	expect_exit 0 sluice run --threads 1 || return 1
	expect_grep '^\[1/5\] START view analytics\.c1$' "$T_DIR/out"
}
ok "the critical path starts first" t_critical_first

done_testing
