#!/usr/bin/env bash
# t0260: the fault campaign's short form in `make test` (the long one is
# tests/faults/t0200-campaign.sh, `make faults`; docs/testing.md, "Fault
# campaign"). Three trials from a fixed seed, each with one fault at a
# point of the run's progress (not of time): kill -9, a terminated
# backend, a PostgreSQL restart; every guarantee of docs/state.md and
# docs/materializations.md holds after each. Then the test of the test:
# the same campaign with the warehouse damaged behind sluice's back after
# the fault must report violations.
. "$(dirname "$0")/lib.sh"
# the campaign's own server runs as an unprivileged user, who must reach it
chmod 755 "$T_DIR" || exit 1

faults() {
	nice -n 10 perl "$(dirname "$0")/../harness/faults.pl" --seed 20261202 "$@" >"$T_DIR/faults.out" 2>&1
}

t_short() {
	faults --dir "$T_DIR/c" --trials 3 --kinds kill9,terminate,pg_restart || { cat "$T_DIR/faults.out"; return 1; }
	expect_grep '^trial 1 seed 20261202: kill9 \([a-z0-9]+\) +ok: ' "$T_DIR/faults.out" &&
	expect_grep '^trial 2 seed 20261202: terminate \([a-z0-9]+\) +ok: ' "$T_DIR/faults.out" &&
	expect_grep '^trial 3 seed 20261202: pg_restart \([a-z0-9]+\) +ok: ' "$T_DIR/faults.out" &&
	expect_grep '^summary: seed 20261202, 3 trials .*faults by kind: kill9 1, terminate 1, pg_restart 1; violations: 0$' "$T_DIR/faults.out"
}
ok "kill -9, a terminated backend, a restarted server: nothing half-built, lost or done twice" t_short

t_sabotage() {
	faults --dir "$T_DIR/s" --trials 1 --kinds kill9 --sabotage
	_rc=$?
	[ "$_rc" = 1 ] || { echo "expected exit 1, got $_rc"; cat "$T_DIR/faults.out"; return 1; }
	expect_eq 1 "$(grep -c '^trial 1 seed 20261202: kill9 ([a-z0-9]*) *VIOLATION: .*side: left behind: analytics\.m[0-9_]*__sluice_new.*content: m[0-9_]* is neither old nor new' "$T_DIR/faults.out")"
}
ok "the test of the test: a side table left and rows changed behind sluice's back are violations" t_sabotage

done_testing
