#!/usr/bin/env bash
# t0200: the fault campaign (issue 16; docs/testing.md, "Fault campaign").
# tests/harness/faults.pl builds a project of about 50 nodes per trial,
# runs `sluice build` with 4 threads and injects one fault at a random
# point of its progress: kill -9, SIGTERM, pg_terminate_backend, a
# PostgreSQL restart or a stop of a few seconds, s3rver killed during a
# multipart upload, a full stage file system, the warehouse state table
# locked, S3 state writes answering 500. After each, no relation is
# half-built or left aside, each is old or new, the state knows exactly
# what finished, the next run repairs the rest, and no secret shows.
# `make faults TRIALS=N SEED=S` sets the campaign; 9 trials (each fault once) by default.
. "$(dirname "$0")/../cli/lib.sh"
# the campaign's own server runs as an unprivileged user, who must reach it
chmod 755 "$T_DIR" || exit 1

SEED=${SLUICE_FAULT_SEED:-20261202}
TRIALS=${SLUICE_FAULT_TRIALS:-9}

t_campaign() {
	nice -n 10 perl "$(dirname "$0")/../harness/faults.pl" --dir "$T_DIR/c" --seed "$SEED" --trials "$TRIALS" \
		>"$T_DIR/faults.out" 2>&1
	[ "$?" = 0 ] || { cat "$T_DIR/faults.out"; return 1; }
	expect_grep "^summary: seed $SEED, $TRIALS trials .*violations: 0$" "$T_DIR/faults.out"
}
ok "$TRIALS trials from seed $SEED, one fault each: 0 violations" t_campaign
sed 's/^/# /' "$T_DIR/faults.out"

done_testing
