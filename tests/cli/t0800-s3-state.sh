#!/usr/bin/env bash
# t0800: `state: s3://bucket/prefix/` against the harness's s3rver
# (docs/state.md): the state lives in the bucket, so deleting .sluice/ or
# running from a fresh copy of the project elsewhere reuses everything;
# credentials come from the profile's s3: block or the AWS_* environment
# and never show; a second run is refused naming the holder, or waits
# with --wait-lock; a run killed with -9 leaves a lock the next run on
# this machine takes over at once, and a lock of another machine is
# taken over only once its lease ran out. s3rver ignores conditional
# headers, so what this checks is the logic that reads before it writes;
# races on the conditions are unit-tested (tests/unit/test_state_s3.c).

# Like the other s3rver tests: skip only when the harness says why.
if [ -n "${SLUICE_TEST_S3_UNAVAILABLE:-}" ]; then
	echo "1..0 # SKIP s3rver is not available: $SLUICE_TEST_S3_UNAVAILABLE"
	exit 0
fi
: "${SLUICE_TEST_S3_ENDPOINT:?run the suite with make test (it starts s3rver)}"
. "$(dirname "$0")/lib.sh"

BUCKET=$SLUICE_TEST_S3_BUCKET
PREFIX="t0800-$$-$(date +%s)"
STATE_URL="s3://$BUCKET/$PREFIX/"
DIR="$PREFIX/proj/dev"          # where this project's state objects are
# s3rver checks the key id, not the signature: any secret does, and this
# one must never appear anywhere.
export T0800_SECRET="t0800-very-secret-$$"

# s3 ARGS...: curl against s3rver, signed like any S3 client (curl 7.88
# does not send the payload hash header S3 requires: docs/s3.md).
s3() {
	curl -sS -f --aws-sigv4 "aws:amz:$SLUICE_TEST_S3_REGION:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		--user "$SLUICE_TEST_S3_ACCESS_KEY_ID:$T0800_SECRET" "$@"
}
# s3_get KEY (a JSON object), s3_put KEY FILE, s3_keys PREFIX (one key a line).
# s3rver answers a PUT before its file is flushed (its putObject resolves on
# the hashing stream's end, not the file's), so a GET right after the run
# that wrote may see a short body: read until the JSON is whole.
s3_get() {
	_i=0
	while [ $_i -lt 30 ]; do
		_body=$(s3 "$SLUICE_TEST_S3_ENDPOINT/$BUCKET/$1") || return 1
		printf '%s' "$_body" | jq -e . >/dev/null 2>&1 && { printf '%s\n' "$_body"; return 0; }
		sleep 0.1
		_i=$((_i + 1))
	done
	echo "s3_get $1: not JSON after 3 s: $_body" >&2
	return 1
}
s3_put() { s3 -T "$2" "$SLUICE_TEST_S3_ENDPOINT/$BUCKET/$1" >/dev/null; }
s3_keys() {
	s3 "$SLUICE_TEST_S3_ENDPOINT/$BUCKET?list-type=2&prefix=$1" | grep -o '<Key>[^<]*</Key>' |
		sed 's/<[^>]*>//g'
}

# sleeping: a sluice session of this test is in pg_sleep.
sleeping() {
	[ "$(psql_q "select count(*) from pg_stat_activity where datname = current_database()
		and application_name like 'sluice/%' and state = 'active' and query like '%pg_sleep%'")" -ge 1 ]
}

new_project s3state
echo "state: $STATE_URL" >>sluice.yml
cat >>profiles.yml <<YML
      s3:
        endpoint: "$SLUICE_TEST_S3_ENDPOINT"
        region: "$SLUICE_TEST_S3_REGION"
        access_key_id: "$SLUICE_TEST_S3_ACCESS_KEY_ID"
        secret_access_key: "{{ env_var('T0800_SECRET') }}"
YML
model first "{{ config(materialized='table') }}
select 1 as x"
model slow "{{ config(materialized='table') }}
select x from {{ ref('first') }}, pg_sleep(4)"
model after "{{ config(materialized='table') }}
select x + 1 as x from {{ ref('slow') }}"

# --- the state lives in the bucket ---------------------------------------------

ok "the first run builds everything" expect_exit 0 sluice run

t_objects() {
	s3_get "$DIR/state.json" >"$T_DIR/state.json" || return 1
	expect_eq "1 proj dev" "$(jq -r '"\(.format) \(.project) \(.target)"' "$T_DIR/state.json")" || return 1
	expect_eq "model.proj.after model.proj.first model.proj.slow" \
		"$(jq -r '.records | keys | join(" ")' "$T_DIR/state.json")" || return 1
	# the journal was folded into state.json and emptied; the lock says it is free
	expect_eq "" "$(s3_keys "$DIR/journal/")" || return 1
	s3_get "$DIR/lock.json" >"$T_DIR/lock.json" || return 1
	expect_eq "released by tester" "$(jq -r 'if .released_at then "released by \(.released_by)" else "held" end' "$T_DIR/lock.json")" || return 1
	[ ! -e .sluice/state ] || { echo ".sluice/state was written:"; ls -l .sluice/state; return 1; }
}
ok "the bucket holds state.json with a record per model, an empty journal, a released lock; .sluice/state is not used" t_objects

t_rm_sluice() {
	rm -rf .sluice target
	expect_exit 0 sluice run || return 1
	expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)"
}
ok "after rm -rf .sluice target, the next run reuses everything" t_rm_sluice

t_clone() {
	mkdir -p "$T_DIR/elsewhere"
	cp -r "$P" "$T_DIR/elsewhere/copy" || return 1
	rm -rf "$T_DIR/elsewhere/copy/.sluice" "$T_DIR/elsewhere/copy/target"
	cd "$T_DIR/elsewhere/copy" || return 1
	plan_out || return 1
	expect_eq "after=reuse first=reuse slow=reuse" "$(plan_actions)" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)"
}
ok "a fresh copy of the project on another path, same state URL: plan and run reuse everything" t_clone

t_env_credentials() {
	cp -r "$P" "$T_DIR/envcopy" && cd "$T_DIR/envcopy" || return 1
	rm -rf .sluice target
	# the profile without its s3: block: the AWS_* environment instead
	sed -i '/^      s3:$/,$d' profiles.yml || return 1
	grep -q 's3:' profiles.yml && { echo "profiles.yml still has the s3 block"; return 1; }
	env AWS_ENDPOINT_URL="$SLUICE_TEST_S3_ENDPOINT" AWS_REGION="$SLUICE_TEST_S3_REGION" \
		AWS_ACCESS_KEY_ID="$SLUICE_TEST_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$T0800_SECRET" \
		"$SLUICE_BIN" run >"$T_DIR/env.out" 2>&1 || { cat "$T_DIR/env.out"; return 1; }
	expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)" || return 1
	# a key id s3rver does not know: refused, naming the object, never the secret
	expect_exit 1 env AWS_ENDPOINT_URL="$SLUICE_TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID=NOSUCHKEY \
		AWS_SECRET_ACCESS_KEY="$T0800_SECRET" "$SLUICE_BIN" run || return 1
	cp "$T_DIR/out" "$T_DIR/denied.out" || return 1
	cat "$T_DIR/out"
	expect_grep "s3 HEAD s3://$BUCKET/$DIR/lock.json: Forbidden: access denied \\(HTTP 403\\)" "$T_DIR/out"
}
ok "credentials from AWS_* when the profile has no s3: block; a bad key id is refused naming the object" t_env_credentials

t_no_secret() {
	cd "$P" || return 1
	for f in target/*.json "$T_DIR"/*.out "$T_DIR/out"; do
		[ -f "$f" ] || continue
		if grep -q "$T0800_SECRET" "$f"; then
			echo "the secret is in $f"
			return 1
		fi
	done
	[ -d target ] && ls target/*.json >/dev/null
}
ok "the secret appears in no output and no artifact" t_no_secret

# --- one run at a time -------------------------------------------------------------

cd "$P" || exit 1
model first "{{ config(materialized='table') }}
select 2 as x"
bg_start A "$SLUICE_BIN" run
ok "a run that rebuilds is in pg_sleep" wait_until 20 sleeping

t_refused() {
	t0=$(date +%s)
	sluice run >"$T_DIR/B.out" 2>&1
	rc=$?
	t1=$(date +%s)
	cat "$T_DIR/B.out"
	[ "$rc" != 0 ] || { echo "the second run exited 0"; return 1; }
	[ $((t1 - t0)) -le 2 ] || { echo "the second run took $((t1 - t0)) s to fail"; return 1; }
	[ ! -s "$T_DIR/A.rc" ] || { echo "the first run had already ended"; return 1; }
	expect_grep 'state is locked by tester \(pid '"$(cat "$T_DIR/A.pid")"' on host [^,]+, run [0-9a-f-]+\) since [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z; wait with --wait-lock SECONDS$' "$T_DIR/B.out"
}
ok "a second run fails at once, naming the holder (user, pid, host, run) and since when" t_refused

bg_start C "$SLUICE_BIN" run --wait-lock 30
t_waited() {
	expect_eq 0 "$(bg_wait A 30)" || { cat "$T_DIR/A.log"; return 1; }
	expect_eq 0 "$(bg_wait C 30)" || { cat "$T_DIR/C.log"; return 1; }
	expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)"
}
ok "with --wait-lock 30 a third run waits for the first and reuses what it built" t_waited

# --- kill -9 -------------------------------------------------------------------------

model first "{{ config(materialized='table') }}
select 3 as x"
t_kill() {
	bg_start K "$SLUICE_BIN" run --threads 1 || return 1
	wait_until 20 sleeping || { echo "the run never reached pg_sleep"; cat "$T_DIR/K.log"; return 1; }
	kill -KILL "$BG_PID" || return 1
	expect_eq "signal 9" "$(bg_wait K 10)" || return 1
	# its lock is still there, naming the dead process; its record of first too
	s3_get "$DIR/lock.json" >"$T_DIR/lock.json" || return 1
	expect_eq "$BG_PID" "$(jq -r '.pid' "$T_DIR/lock.json")" || return 1
	expect_eq "null" "$(jq -r '.released_at' "$T_DIR/lock.json")" || return 1
	[ -n "$(s3_keys "$DIR/journal/")" ] || { echo "no journal object survived"; return 1; }
}
ok "a run killed -9 while slow rebuilds leaves its lock held and its journal in the bucket" t_kill

t_takeover() {
	gen=$(jq -r '.generation' "$T_DIR/lock.json") || return 1
	t0=$(date +%s)
	expect_exit 0 sluice run --threads 1 || return 1
	cat "$T_DIR/out"
	# the same machine, the holder's process gone: no waiting for the lease
	[ $(($(date +%s) - t0)) -lt 30 ] || { echo "the takeover waited"; return 1; }
	expect_eq "after=success first=reused slow=success" "$(rr_statuses)" || return 1
	expect_eq 3 "$(psql_q "select x from analytics.slow")" || return 1
	s3_get "$DIR/state.json" >"$T_DIR/state.json" || return 1
	expect_eq $((gen + 1)) "$(jq -r '.generation' "$T_DIR/state.json")" || return 1
	expect_eq "" "$(s3_keys "$DIR/journal/")"
}
ok "the next run takes the dead run's lock at once, reuses first (its record survived), builds slow and after" t_takeover
t_all_reused() {
	expect_exit 0 sluice run || return 1
	expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)"
}
ok "and the run after that reuses everything" t_all_reused

# --- SIGTERM -------------------------------------------------------------------------
# The lock's heartbeat thread starts before the workers; a signal it did
# not block would end the process at once (found by the fault campaign,
# tests/harness/faults.pl: "sigterm (s3) ... exit signal 15").

model first "{{ config(materialized='table') }}
select 4 as x"
t_term() {
	bg_start S "$SLUICE_BIN" run --threads 1 || return 1
	wait_until 20 sleeping || { echo "the run never reached pg_sleep"; cat "$T_DIR/S.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 143 "$(bg_wait S 30)" || { cat "$T_DIR/S.log"; return 1; }
	# its statement was cancelled on the server, its lock released
	expect_eq 0 "$(psql_q "select count(*) from pg_stat_activity where datname = current_database()
		and application_name like 'sluice/%' and query like '%pg_sleep%'")" || return 1
	s3_get "$DIR/lock.json" >"$T_DIR/lock.json" || return 1
	expect_eq false "$(jq -r '.released_at == null' "$T_DIR/lock.json")"
}
ok "SIGTERM during a run: it cancels its statement, releases the lock and exits 143" t_term
t_after_term() {
	expect_exit 0 sluice run || return 1
	expect_eq "after=success first=reused slow=success" "$(rr_statuses)"
}
ok "the next run builds what the interrupted one had not finished, and only that" t_after_term

# --- a lock of another machine ---------------------------------------------------------

# lock_of_elsewhere AGE: a lock held on host "elsewhere", last heartbeat AGE seconds ago, lease 120 s.
lock_of_elsewhere() {
	printf '{"user":"bob","pid":77,"host":"elsewhere","invocation_id":"r-1","since":"2026-11-24T19:00:02Z","heartbeat":"x","heartbeat_epoch":%d,"ttl":120,"generation":%d,"token":"t","boot_id":"b","pid_ns":"n","pid_start":1}' \
		$(($(date +%s) - $1)) 40 >"$T_DIR/foreign.json"
	s3_put "$DIR/lock.json" "$T_DIR/foreign.json"
}

t_foreign_live() {
	lock_of_elsewhere 10 || return 1
	expect_exit 1 sluice run || return 1
	expect_grep '^.*state is locked by bob \(pid 77 on host elsewhere, run r-1\) since 2026-11-24T19:00:02Z; wait with --wait-lock SECONDS$' "$T_DIR/out"
}
ok "a lock of another machine whose heartbeat is 10 s old (lease 120 s) is respected" t_foreign_live

t_foreign_expired() {
	lock_of_elsewhere 121 || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "after=reused first=reused slow=reused" "$(rr_statuses)" || return 1
	s3_get "$DIR/lock.json" >"$T_DIR/lock.json" || return 1
	expect_eq "41 tester" "$(jq -r '"\(.generation) \(.released_by)"' "$T_DIR/lock.json")"
}
ok "once its heartbeat is older than its lease, it is taken over (generation 40 -> 41)" t_foreign_expired

done_testing
