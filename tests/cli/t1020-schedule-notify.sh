#!/usr/bin/env bash
# t1020: notifications of scheduled runs: a JSON POST received by a local
# listener (tests/harness/webhook.pl) on failure, on recovery, and as a
# Slack message; the webhook URL, a secret, is in no log, artifact or
# state; a webhook that fails never fails the run.
. "$(dirname "$0")/lib.sh"

HOOKS="$(dirname "$0")/../harness/webhook.pl"

# Everything sluice prints in this script is kept in all.log, for t_secret.
sluice() {
	"$SLUICE_BIN" "$@" >"$T_DIR/one.log" 2>&1; _rc=$?
	cat "$T_DIR/one.log" >>"$T_DIR/all.log"
	cat "$T_DIR/one.log"
	return "$_rc"
}

# listen NAME [STATUS]: a listener answering STATUS; its port in $T_DIR/NAME.port,
# the bodies it receives in $T_DIR/NAME.bodies.
listen() {
	perl "$HOOKS" "$T_DIR/$1.port" "$T_DIR/$1.bodies" "${2:-200}" &
	echo $! >"$T_DIR/$1.listener"
	at_exit "kill $! 2>/dev/null"
	wait_until 10 test -s "$T_DIR/$1.port" || { echo "listener $1 did not start"; exit 1; }
	: >"$T_DIR/$1.bodies"
}
listen ok
listen err 500

new_project notify
model good "{{ config(materialized='table') }}
select 1 as id"
model flaky "{{ config(materialized='table') }}
select 1 / {{ var('d', 0) }} as x"
cat >>sluice.yml <<'YML'
report: https://reports.example/clinic
schedules:
  - {name: nightly, cron: "0 2 * * *", timezone: Europe/Athens, select: "good flaky", notify: [ops, chat]}
  - {name: loud, cron: "@daily", select: good, notify: [failing]}
notifications:
  ops: {webhook: "{{ env_var('OPS_WEBHOOK') }}", on: [failure, recovery]}
  chat: {webhook: "{{ env_var('CHAT_WEBHOOK') }}", on: always, format: slack}
  failing: {webhook: "{{ env_var('FAILING_WEBHOOK') }}", on: [always]}
YML
export OPS_WEBHOOK="http://127.0.0.1:$(cat "$T_DIR/ok.port")/ops/Tok3n-s3cret"
export CHAT_WEBHOOK="http://127.0.0.1:$(cat "$T_DIR/ok.port")/chat/Tok3n-s3cret"
export FAILING_WEBHOOK="http://127.0.0.1:$(cat "$T_DIR/err.port")/fail/Tok3n-s3cret"

# body N PATH: the JSON body of the Nth request to PATH the ok listener received.
body() { awk -v p="$2" '$2 == p { if (++n == '"$1"') { sub(/^[^ ]+ [^ ]+ /, ""); print } }' "$T_DIR/ok.bodies"; }

t_failure() {
	expect_exit 1 sluice schedule --once nightly || return 1
	expect_grep 'notify +nightly: sent to .ops.' "$T_DIR/out" || return 1
	b=$(body 1 /ops/Tok3n-s3cret) || return 1
	inv=$(rr .metadata.invocation_id) || return 1
	expect_eq "proj nightly failure false" "$(printf '%s' "$b" | t_noted jq -r '"\(.project) \(.schedule) \(.status) \(.recovery)"')" || return 1
	expect_eq "1 1" "$(printf '%s' "$b" | t_noted jq -r '"\(.counts.success) \(.counts.error)"')" || return 1
	expect_eq "model.proj.flaky: division by zero" \
		"$(printf '%s' "$b" | t_noted jq -r '.failed_nodes[] | "\(.unique_id): \(.error)"')" || return 1
	expect_eq "https://reports.example/clinic/$inv/report.html" "$(printf '%s' "$b" | t_noted jq -r .report_url)" || return 1
	expect_eq "$inv tester 1" "$(printf '%s' "$b" | t_noted jq -r '"\(.invocation_id) \(.user) \(.attempts)"')" || return 1
	printf '%s' "$b" | t_noted jq -e '.duration > 0' >/dev/null
}
ok "a failed run POSTs project, schedule, status, counts, failed nodes, report link" t_failure

t_slack() {
	t=$(body 1 /chat/Tok3n-s3cret | t_noted jq -r .text) || return 1
	case $t in
	":x: proj nightly: *failure*"*"model.proj.flaky"*"division by zero"*"/report.html|report>") ;;
	*) printf 'unexpected slack text:\n%s\n' "$t"; return 1 ;;
	esac
}
ok "format: slack sends a Slack message body" t_slack

t_recovery() {
	expect_exit 0 sluice schedule --once nightly --vars '{d: 1}' || return 1
	expect_eq "success true" "$(body 2 /ops/Tok3n-s3cret | t_noted jq -r '"\(.status) \(.recovery)"')" || return 1
	# success again: no longer a recovery, and ops hears only of failures and recoveries
	expect_exit 0 sluice schedule --once nightly --vars '{d: 1}' || return 1
	expect_eq 2 "$(grep -c '^POST /ops/' "$T_DIR/ok.bodies")" || return 1
	expect_eq 3 "$(grep -c '^POST /chat/' "$T_DIR/ok.bodies")"
}
ok "a success after a failure is a recovery; on: [failure, recovery] skips plain successes" t_recovery

t_failing_hook() {
	expect_exit 0 sluice schedule --once loud || return 1
	expect_grep "notify +loud: failed: notification 'failing': the webhook answered HTTP 500 \(the run's result stands\)" "$T_DIR/out" || return 1
	expect_eq 1 "$(grep -c '^POST /fail/' "$T_DIR/err.bodies")" || return 1
	# nobody listening at all
	FAILING_WEBHOOK="http://127.0.0.1:1/fail/Tok3n-s3cret" expect_exit 0 sluice schedule --once loud || return 1
	expect_grep "notify +loud: failed: notification 'failing': Couldn't connect to server" "$T_DIR/out" || return 1
}
ok "a webhook that fails is logged and never fails the run" t_failing_hook

t_unset() {
	(unset OPS_WEBHOOK; sluice run -s good) >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	(unset OPS_WEBHOOK; sluice schedule --once nightly --vars '{d: 0}') >"$T_DIR/out" 2>&1; rc=$?
	expect_eq 1 "$rc" || return 1
	expect_grep "notify +nightly: failed: notification 'ops': sluice.yml:[0-9]+: webhook: environment variable 'OPS_WEBHOOK' is not set" "$T_DIR/out"
}
ok "sluice run needs no webhook variable; a missing one is a logged notification failure" t_unset

t_secret() {
	expect_grep 'done +nightly' "$T_DIR/all.log" || return 1
	expect_no_grep 'Tok3n' "$T_DIR/all.log" || return 1
	if grep -rl 'Tok3n' target .sluice; then
		echo "the webhook URL is in the files above"
		return 1
	fi
	expect_eq 0 "$(psql_q "select count(*) from pg_stat_activity where query like '%Tok3n%' and pid <> pg_backend_pid()")"
}
ok "the webhook URL appears in no log, artifact or state" t_secret

done_testing
