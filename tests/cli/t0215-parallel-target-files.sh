#!/usr/bin/env bash
# t0215: sixteen incremental models whose code all changed, rebuilt from
# scratch by eight workers at once: each worker compiles its model again
# and writes target/compiled and target/run while the others do the same.
# Every model is rebuilt and every file under target/ is the one of its
# own model. Under ThreadSanitizer (make test SANITIZE=thread) this is
# the check that writing target files from worker threads is free of
# data races.
. "$(dirname "$0")/lib.sh"

new_project par
# models/gNN/incNN.sql: one directory each, so that the run's record of
# the directories under target/ it made holds 32 entries.
N=16
names() { i=1; while [ $i -le $N ]; do printf 'inc%02d\n' $i; i=$((i + 1)); done; }
MODELS=$(names | paste -sd ' ')

# write_models VERSION: every model selects VERSION as v, and on an
# incremental run only rows past what it holds.
write_models() {
	for m in $MODELS; do
		model "$m" "{{ config(materialized='incremental', unique_key='id') }}
select i as id, $1 as v, '$m' as model from generate_series(1, 3) as i, pg_sleep(0.3)
{% if is_incremental() %}
where i > (select max(id) from {{ this }})
{% endif %}" "g${m#inc}"
	done
}

write_models 1
ok "the first run builds the sixteen models" expect_exit 0 sluice run --threads 8
ok "  all sixteen succeeded" eval 'expect_eq "$(models_map success)" "$(rr_statuses)"'

# Their code changes: each is rebuilt from scratch (not appended to). The
# files under target/ are first written for an incremental run (before
# the run decides), then again by the worker that rebuilds the model;
# target/ starts empty, so that every directory is one the run made.
write_models 2
rm -rf target
ok "after a change to all sixteen, a run with 8 threads exits 0" expect_exit 0 sluice run --threads 8

t_all_rebuilt() {
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_grep 'Done in .*: 16 ok, 0 error, 0 skipped, 0 reused$' "$T_DIR/out" || return 1
	# 8 workers took part: thread ids 1..8 all appear
	expect_eq "Thread-1 Thread-2 Thread-3 Thread-4 Thread-5 Thread-6 Thread-7 Thread-8" \
		"$(rr '[.results[].thread_id] | unique | join(" ")')" || return 1
	for m in $MODELS; do
		expect_eq "1:2:$m,2:2:$m,3:2:$m" \
			"$(psql_q "select string_agg(id || ':' || v || ':' || model, ',' order by id) from analytics.$m")" ||
			return 1
	done
}
ok "every model holds its new rows once" t_all_rebuilt

t_target_files() {
	for m in $MODELS; do
		f=models/g${m#inc}/$m.sql
		for d in compiled run; do
			[ -s "target/$d/$f" ] || { echo "target/$d/$f is missing or empty"; ls -R target; return 1; }
			# its own model, at its new version, compiled for a full rebuild
			expect_grep "2 as v, '$m' as model" "target/$d/$f" || return 1
			expect_no_grep 'max\(id\)' "target/$d/$f" || return 1
			[ "$(grep -c "as model" "target/$d/$f")" = 1 ] || { cat "target/$d/$f"; return 1; }
		done
		# the plan of a rebuild: a new table swapped in, not rows added
		expect_grep "^CREATE TABLE \"analytics\"\\.\"${m}__sluice_new\" AS" "target/run/$f" || return 1
	done
	# nothing else under target/models
	expect_eq "$N $N" "$(find target/compiled -type f | wc -l) $(find target/run -type f | wc -l)"
}
ok "target/compiled and target/run hold each model's full-rebuild SQL, nothing else" t_target_files

done_testing
