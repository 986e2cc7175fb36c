#!/usr/bin/env bash
# t0230: a run never fails because of its own concurrency
# (docs/materializations.md, "Parallel swaps"). Tables rebuilt at once
# whose swaps share dependent views must not deadlock, and whoever reads
# a view while the tables under it are swapped sees the old or the new
# version, never an error.
. "$(dirname "$0")/lib.sh"

new_project swaps
for i in 1 2 3 4; do
	model "t$i" "{{ config(materialized='table') }}
select g, g * $i as vi from generate_series(1, 100) g"
done
for i in 1 2 3; do
	model "v$i" "select g, a.vi as a, b.vi as b from {{ ref('t$i') }} a join {{ ref('t$((i + 1))') }} b using (g)"
done
ok "setup: the first run" expect_exit 0 sluice run --threads 4

# refresh_n N: N full refreshes with 4 threads, each exiting 0 without a retry.
refresh_n() {
	for try in $(seq "$1"); do
		expect_exit 0 sluice run --full-refresh --threads 4 || { echo "try $try"; return 1; }
		expect_no_grep 'running it again' "$T_DIR/out" || { echo "try $try"; return 1; }
	done
}
ok "views shared by two tables each: 10 full refreshes with 4 threads, no deadlock" refresh_n 10

# reader: query every view until told to stop; one line per failed query
reader() {
	while [ ! -f "$T_DIR/stop" ]; do
		for v in "$@"; do
			if ! psql -X -q -A -t -d "$T_DB" -c "select count(*) from analytics.$v" >/dev/null 2>>"$T_DIR/reader.err"; then
				echo "$v" >>"$T_DIR/reader.failed"
			fi
			echo x >>"$T_DIR/reader.count"
		done
	done
}

t_readers() {
	rm -f "$T_DIR/stop" "$T_DIR/reader.failed" "$T_DIR/reader.count" "$T_DIR/reader.err"
	reader v1 v2 v3 &
	_rp=$!
	refresh_n 5
	_rc=$?
	touch "$T_DIR/stop" || return 1
	wait "$_rp" || return 1
	[ "$_rc" = 0 ] || return 1
	[ -s "$T_DIR/reader.count" ] || { echo "the reader read nothing"; return 1; }
	[ ! -s "$T_DIR/reader.failed" ] || { cat "$T_DIR/reader.err"; return 1; }
}
ok "readers of the views during 5 full refreshes never get an error" t_readers

t_one_view_over_all() {
	model vall "select g, t1.vi + t2.vi + t3.vi + t4.vi as s from {{ ref('t1') }} t1
join {{ ref('t2') }} t2 using (g) join {{ ref('t3') }} t3 using (g) join {{ ref('t4') }} t4 using (g)" || return 1
	expect_exit 0 sluice run --threads 4 || return 1
	refresh_n 5 || return 1
	expect_eq 1000 "$(psql_q 'select s from analytics.vall where g = 100')"
}
ok "one view over all four tables: 5 full refreshes with 4 threads" t_one_view_over_all

t_wide() {
	# 8 tables, and a view over every pair of neighbours and every third one
	for i in 1 2 3 4 5 6 7 8; do
		model "w$i" "{{ config(materialized='table') }}
select g, g + $i as x from generate_series(1, 50) g" || return 1
	done
	for i in 1 2 3 4 5 6; do
		model "wv$i" "select g from {{ ref('w$i') }} join {{ ref('w$((i + 1))') }} using (g)
join {{ ref('w$((i + 2))') }} using (g)" || return 1
	done
	expect_exit 0 sluice run --threads 8 || return 1
	for try in 1 2 3 4 5; do
		expect_exit 0 sluice run --full-refresh --threads 8 || { echo "try $try"; return 1; }
	done
}
ok "eight tables, six views over three tables each: 5 full refreshes with 8 threads" t_wide

done_testing
