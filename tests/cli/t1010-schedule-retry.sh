#!/usr/bin/env bash
# t1010: a scheduled run's retries (transient failures only, with
# exponential backoff, each attempt in run_results.json) and SIGTERM in the
# middle of a run (running nodes finish or, after the grace period, are
# cancelled; state stays consistent; the next run finishes the rest).
. "$(dirname "$0")/lib.sh"

new_project retry
psql_q "create sequence public.flaky" >/dev/null || exit 1
model a "{{ config(materialized='table') }}
select 1 as id"
# The first time it runs, its connection is terminated under it (57P01),
# as when the server restarts; the second time it succeeds.
model b "{{ config(materialized='table') }}
select id, case when nextval('public.flaky') = 1 then pg_terminate_backend(pg_backend_pid()) end as t
from {{ ref('a') }}"
cat >>sluice.yml <<'YML'
schedules:
  - {name: flaky, cron: "@daily", select: "a b", retries: 2, retry-delay: 1s}
  - {name: broken, cron: "@daily", select: bad, retries: 2, retry-delay: 1s}
  - {name: down, cron: "@daily", select: a, retries: 2, retry-delay: 1s}
  - {name: chain, cron: "@daily", select: "s1+", command: build}
YML

t_transient() {
	expect_exit 0 sluice schedule --once flaky || return 1
	expect_grep 'retry +flaky: attempt 1 failed with a transient error; attempt 2 in 1s: .*terminat' "$T_DIR/out" || return 1
	expect_grep 'done +flaky: success after 2 attempts' "$T_DIR/out" || return 1
	expect_eq 2 "$(rr '.attempts | length')" || return 1
	expect_eq "error true" "$(rr '.attempts[0] | "\(.status) \(.transient)"')" || return 1
	expect_eq success "$(rr '.attempts[1].status')" || return 1
	# run_results.json is the last attempt's; the first attempt's id differs
	expect_eq "$(rr .metadata.invocation_id)" "$(rr '.attempts[1].invocation_id')" || return 1
	[ "$(rr '.attempts[0].invocation_id')" != "$(rr '.attempts[1].invocation_id')" ] || return 1
	# the retry ran only what had not finished: a was built by the first attempt
	expect_eq "reused success" "$(rr '[.results[] | select(.unique_id == "model.proj.a" or .unique_id == "model.proj.b") | .status] | join(" ")')" || return 1
	expect_eq 1 "$(psql_q "select count(*) from analytics.b")"
}
ok "a connection terminated mid-run is retried, and the retry runs only what did not finish" t_transient

model bad "{{ config(materialized='table') }}
select 1 / 0 as boom"

t_permanent() {
	expect_exit 1 sluice schedule --once broken || return 1
	expect_grep 'fail +broken: attempt 1 failed; not retried \(not a transient error\)' "$T_DIR/out" || return 1
	expect_no_grep 'retry +broken' "$T_DIR/out" || return 1
	expect_eq 1 "$(rr '.attempts | length')" || return 1
	expect_eq "error false division by zero" "$(rr '.attempts[0] | "\(.status) \(.transient) \(.error)"')"
}
ok "a SQL error is never retried" t_permanent

t_refused() {
	# a port nothing listens on: connection refused, every time
	port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die; print $s->sockport') || return 1
	before=$(rr .metadata.invocation_id) || return 1
	cp profiles.yml profiles.yml.ok || return 1
	sed "s/port: .*/port: $port/" profiles.yml.ok >profiles.yml || return 1
	expect_exit 3 sluice schedule --once down
	rc=$?
	cp profiles.yml.ok profiles.yml || return 1
	[ "$rc" = 0 ] || return 1
	expect_grep 'retry +down: attempt 1 failed with a transient error; attempt 2 in 1s' "$T_DIR/out" || return 1
	expect_grep 'retry +down: attempt 2 failed with a transient error; attempt 3 in 2s' "$T_DIR/out" || return 1
	expect_grep 'fail +down: attempt 3 failed with a transient error, no retries left' "$T_DIR/out" || return 1
	expect_grep 'done +down: failure after 3 attempts' "$T_DIR/out" || return 1
	# what failed is said, also when the run's errors are JSON events
	expect_grep 'retry +down: attempt 1 failed .*: .*Connection refused' "$T_DIR/out" || return 1
	sed "s/port: .*/port: $port/" profiles.yml.ok >profiles.yml || return 1
	sluice schedule --once down --log-format json >"$T_DIR/out.json" 2>&1
	rc=$?
	cp profiles.yml.ok profiles.yml || return 1
	expect_eq 3 "$rc" || return 1
	expect_grep '"event":"retry","schedule":"down","message":"attempt 1 failed .*Connection refused' "$T_DIR/out.json" || return 1
	# no attempt wrote run_results.json: the one there (an earlier run's) is left alone
	expect_eq "$before $before" "$(rr '"\(.metadata.invocation_id) \(.attempts[0].invocation_id)"')"
}
ok "connection refused is retried with a doubling backoff, up to retries" t_refused

# SIGTERM: s1 runs for a while; s2 and s3 wait for it.
model s1 "{{ config(materialized='table') }}
select 1 as id from pg_sleep(3)"
model s2 "{{ config(materialized='table') }}
select * from {{ ref('s1') }}"
model s3 "{{ config(materialized='table') }}
select * from {{ ref('s2') }}"

t_term_drain() {
	bg_start term "$SLUICE_BIN" schedule --once chain || return 1
	wait_until 30 grep -q 'START table analytics.s1' "$T_DIR/term.log" || { cat "$T_DIR/term.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait term 60)" || { cat "$T_DIR/term.log"; return 1; }
	expect_grep 'stop +chain: letting running nodes finish \(up to 30s\), starting nothing new' "$T_DIR/term.log" || return 1
	expect_grep 'OK table analytics.s1' "$T_DIR/term.log" || return 1
	expect_grep 'done +chain: cancelled after 1 attempt' "$T_DIR/term.log" || return 1
	expect_eq "success skipped skipped" \
		"$(rr '[.results[] | select(.unique_id | test("model.proj.s[123]")) | .status] | join(" ")')" || return 1
	expect_eq cancelled "$(rr '.attempts[0].status')" || return 1
	# the next run finishes the rest, and keeps what the stopped one built
	expect_exit 0 sluice run -s s1+ || return 1
	expect_eq "model.proj.s1=reused model.proj.s2=success model.proj.s3=success" \
		"$(rr '[.results[] | "\(.unique_id)=\(.status)"] | sort | join(" ")')"
}
ok "SIGTERM lets the running node finish, starts nothing new, exits 0; the next run does the rest" t_term_drain

t_term_grace() {
	psql_q "drop table analytics.s1 cascade" >/dev/null || return 1
	bg_start grace "$SLUICE_BIN" schedule --once chain --grace 1 || return 1
	wait_until 30 grep -q 'START table analytics.s1' "$T_DIR/grace.log" || { cat "$T_DIR/grace.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait grace 60)" || { cat "$T_DIR/grace.log"; return 1; }
	expect_grep 'stop +chain: grace period over: cancelling the running nodes' "$T_DIR/grace.log" || return 1
	expect_grep 'ERROR table analytics.s1' "$T_DIR/grace.log" || return 1
	expect_eq error "$(rr '.results[] | select(.unique_id == "model.proj.s1") | .status')" || return 1
	# nothing half-built was recorded: the next run builds s1 again
	expect_exit 0 sluice run -s s1 || return 1
	expect_eq success "$(rr '.results[] | select(.unique_id == "model.proj.s1") | .status')"
}
ok "after the grace period the running node is cancelled, and rebuilt by the next run" t_term_grace

done_testing
