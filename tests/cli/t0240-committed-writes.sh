#!/usr/bin/env bash
# t0240: every write committed before a run starts is seen by that run
# (docs/change-detection.md, "stats"): the nightly chain "the loader
# finishes, then sluice runs at once", back to back, with a writer that
# disconnects, one that stays connected and idle, and one that commits
# twice within a second. SLUICE_T0240_ROUNDS sets the back-to-back rounds
# of the quick cases (default 10; docs/testing.md has a 200-round run).
. "$(dirname "$0")/lib.sh"

ROUNDS=${SLUICE_T0240_ROUNDS:-10}
IDLE_ROUNDS=${SLUICE_T0240_IDLE_ROUNDS:-1}

new_project writes
psql_q "create schema raw; create table raw.s (id int)" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: raw
    tables:
      - name: s
YML
model m "{{ config(materialized='table') }}
select count(*) as n from {{ source('raw', 's') }}"
ok "setup: the first run" expect_exit 0 sluice run

# seen N: the run that just ended rebuilt m, which counts N rows.
seen() {
	expect_eq success "$(rr_status m)" || return 1
	expect_eq "$1" "$(psql_q 'select n from analytics.m')"
}
count() { psql_q 'select count(*) from raw.s'; }

t_disconnect() {
	for r in $(seq "$ROUNDS"); do
		psql_q "insert into raw.s values ($r)" >/dev/null || return 1
		expect_exit 0 sluice run || { echo "round $r"; return 1; }
		seen "$(count)" || { echo "round $r: the run missed the write"; return 1; }
	done
}
ok "a writer that disconnects: $ROUNDS rounds of write then run, no write missed" t_disconnect

t_twice() {
	for r in $(seq "$ROUNDS"); do
		psql -X -q -d "$T_DB" -c "insert into raw.s values ($r)" -c "insert into raw.s values ($r)" >/dev/null ||
			return 1
		expect_exit 0 sluice run || { echo "round $r"; return 1; }
		seen "$(count)" || { echo "round $r: the run missed the second commit"; return 1; }
	done
}
ok "a writer that commits twice within a second, then disconnects: $ROUNDS rounds" t_twice

# read_many N: N short sessions, one after the other, each reading and leaving.
read_many() {
	for i in $(seq "$1"); do
		psql -X -q -A -t -d "$T_DB" -c "select $i" >/dev/null || return 1
	done
}

t_readers_do_not_hold_it_up() {
	# sessions that go idle after the run has looked committed nothing it must see
	read_many 40 &
	_bp=$!
	start=$(date +%s)
	expect_exit 0 sluice run || { kill "$_bp"; return 1; }
	took=$(($(date +%s) - start))
	wait "$_bp" || return 1
	[ "$took" -lt 5 ] || { echo "the run took $took s: it waited for readers that came after it"; return 1; }
}
ok "readers that come and go during the run do not hold it up" t_readers_do_not_hold_it_up

# An idle writer: one psql session fed through a fifo, kept open.
mkfifo "$T_DIR/w.fifo" || exit 1
psql -X -q -A -t -d "$T_DB" <"$T_DIR/w.fifo" >"$T_DIR/w.out" 2>&1 &
exec 7>"$T_DIR/w.fifo"
at_exit "exec 7>&-"
# write SQL MARK: send SQL to the idle writer and wait until it has committed.
write() {
	printf '%s\n\\echo %s\n' "$1" "$2" >&7 &&
		wait_until 10 grep -qx "$2" "$T_DIR/w.out"
}

t_idle() {
	for r in $(seq "$IDLE_ROUNDS"); do
		write "insert into raw.s values ($r);" "idle-$r" || return 1
		expect_exit 0 sluice run || { echo "round $r"; return 1; }
		seen "$(count)" || { echo "round $r: the run missed the idle writer's commit"; return 1; }
	done
}
ok "a writer that stays connected and idle: $IDLE_ROUNDS rounds" t_idle

t_idle_twice() {
	for r in $(seq "$IDLE_ROUNDS"); do
		write "insert into raw.s values ($r); insert into raw.s values ($r);" "twice-$r" || return 1
		expect_exit 0 sluice run || { echo "round $r"; return 1; }
		seen "$(count)" || { echo "round $r: the run missed the idle writer's second commit"; return 1; }
		# the wait is said once it is long enough to notice
		expect_grep "waiting up to .* s more for 1 session that may not have published" "$T_DIR/out" || return 1
	done
}
ok "a writer that commits twice within a second and stays idle: $IDLE_ROUNDS rounds" t_idle_twice

done_testing
