#!/usr/bin/env bash
# t0208: a state record that cannot be written fails its node and the run
# (docs/state.md). A node whose record is lost would be rebuilt, or worse
# appended again, by the next run, so a run that lost one must not say it
# succeeded; the error names the node, the state backend and the cause.
. "$(dirname "$0")/lib.sh"

new_project p
echo "state: warehouse" >>sluice.yml
model a "{{ config(materialized='table') }}
select 1 as x"
ok "the first run builds and records everything" expect_exit 0 sluice run

# b's own transaction takes the state table away before b's record is written
model b "{{ config(materialized='table',
    pre_hook=\"alter table sluice_meta.node_state rename to node_state_gone\") }}
select x + 1 as x from {{ ref('a') }}"

t_fails() {
	expect_exit 1 sluice run -s b || return 1
	expect_grep 'ERROR +table analytics\.b ' "$T_DIR/out" || return 1
	expect_grep 'state \(warehouse\): record for model\.proj\.b not saved: .*node_state' "$T_DIR/out" || return 1
	expect_grep '0 ok, 1 error' "$T_DIR/out" || return 1
	expect_eq error "$(jq -r '.results[] | select(.unique_id == "model.proj.b") | .status' target/run_results.json)"
}
ok "a failed state write fails the node and the run, naming the backend and the cause" t_fails

t_table_built() {
	# the table itself was committed: only its record is missing
	expect_eq 2 "$(psql_q 'select x from analytics.b')"
}
ok "what the node built is kept" t_table_built

t_next_run() {
	psql_q "alter table sluice_meta.node_state_gone rename to node_state" || return 1
	model b "{{ config(materialized='table') }}
select x + 1 as x from {{ ref('a') }}" || return 1
	expect_exit 0 sluice run || return 1
	expect_grep 'OK +table analytics\.b' "$T_DIR/out"
}
ok "with the state back, the next run rebuilds the node whose record was lost" t_next_run

done_testing
