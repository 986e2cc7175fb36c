#!/usr/bin/env bash
# t0900: the randomized differential test of skipping
# (tests/harness/differential.pl; docs/testing.md, "The differential
# test"). Random projects, random changes, random selections with several
# threads; after every run, every selected relation must equal its query
# now, a full run must equal a from-scratch run in a second database, and
# the models executed must be exactly those the rules say; and a second
# environment, alice, reusing from dev after each full run, must hold
# what building gives. A fixed seed here; `make campaign ROUNDS=N SEED=S`
# runs it long.
. "$(dirname "$0")/lib.sh"

SEED=${SLUICE_DIFF_SEED:-20261202}
ROUNDS=${SLUICE_DIFF_ROUNDS:-25}
DB2="${T_DB}_2"
psql -X -q -d postgres -c "CREATE DATABASE \"$DB2\"" >/dev/null || { echo "Bail out! cannot create $DB2"; exit 1; }
at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"$DB2\" WITH (FORCE)' >/dev/null 2>&1"
at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"${T_DB}_s\" WITH (FORCE)' >/dev/null 2>&1"

# campaign_dir DIR DB DB2: a workspace for the driver, a profile per database.
campaign_dir() {
	mkdir -p "$1/p1" "$1/p2"
	for p in 1 2; do
		if [ $p = 1 ]; then db=$2; else db=$3; fi
		cat >"$1/p$p/profiles.yml" <<YML
diff:
  target: dev
  outputs:
    dev:
$(conn_keys "      " "$db")
      schema: analytics
YML
	done
	# the second environment (docs/environments.md): same database and state
	cat >>"$1/p1/profiles.yml" <<YML
    alice:
$(conn_keys "      " "$2")
      schema: analytics_alice
      reuse_from: [dev]
YML
}

diff_run() {
	perl "$(dirname "$0")/../harness/differential.pl" --quiet "$@" >"$T_DIR/diff.out" 2>&1
}

t_campaign() {
	campaign_dir "$T_DIR/w" "$T_DB" "$DB2" || return 1
	diff_run --dir "$T_DIR/w" --db "$T_DB" --db2 "$DB2" --seed "$SEED" --rounds "$ROUNDS" \
		--env2 alice --env2-schema analytics_alice || {
		cat "$T_DIR/diff.out"
		return 1
	}
	expect_grep '^result: ok: ' "$T_DIR/diff.out" &&
	expect_grep ' second-environment runs \([1-9][0-9]* relations reused from dev\)' "$T_DIR/diff.out"
}
ok "$ROUNDS rounds from seed $SEED: no stale, missed, wasted or failed run" t_campaign
sed -n 's/^result: /# /p' "$T_DIR/diff.out"

# The test of the test: one write hidden from change detection (its
# trigger switched off) must come out as a stale table.
t_sabotage() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB2\" WITH (FORCE)" -c "CREATE DATABASE \"$DB2\"" \
		-c "CREATE DATABASE \"${T_DB}_s\"" >/dev/null || return 1
	campaign_dir "$T_DIR/s" "${T_DB}_s" "$DB2" || return 1
	diff_run --dir "$T_DIR/s" --db "${T_DB}_s" --db2 "$DB2" --seed "$SEED" --rounds 6 --sabotage
	rc=$?
	expect_eq 1 "$rc" || { cat "$T_DIR/diff.out"; return 1; }
	expect_grep '^result: stale$' "$T_DIR/diff.out" &&
	expect_grep 'relations that differ from their query now: .*sab' "$T_DIR/diff.out"
}
ok "a write change detection cannot see is reported as a stale table" t_sabotage

done_testing
