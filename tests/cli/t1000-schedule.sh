#!/usr/bin/env bash
# t1000: sluice schedule: the schedules of sluice.yml, --list and --once,
# the foreground scheduler on a fast fake clock (a day in seconds), who
# ran it, catch-up after downtime, overlapping triggers, SIGHUP reload.
. "$(dirname "$0")/lib.sh"

new_project sched
model a "{{ config(materialized='table', tags=['nightly']) }}
select 1 as id, current_query() as q"
model b "{{ config(materialized='view') }}
select * from {{ ref('a') }}"
model other "{{ config(materialized='table') }}
select 2 as id"
cat >>sluice.yml <<'YML'
schedules:
  - name: nightly
    cron: "0 2 * * *"
    timezone: Europe/Athens
    command: build
    select: tag:nightly+
YML

t_list_never() {
	SLUICE_NOW=2026-03-28T12:00:00Z expect_exit 0 sluice schedule --list || return 1
	expect_grep '^nightly: "0 2 \* \* \*" Europe/Athens, sluice build -s tag:nightly\+' "$T_DIR/out" || return 1
	# the night the clocks go forward: 02:00 EET is 00:00 UTC, the next night 02:00 EEST is 23:00 UTC
	expect_grep '^  next: 2026-03-29 02:00 EET \(2026-03-29T00:00:00Z\)$' "$T_DIR/out" || return 1
	expect_grep '^  next: 2026-03-30 02:00 EEST \(2026-03-29T23:00:00Z\)$' "$T_DIR/out" || return 1
	expect_grep '^  last: never ran$' "$T_DIR/out"
}
ok "--list shows the next times in the schedule's zone, across DST, and that it never ran" t_list_never

t_once() {
	SLUICE_USER=eleni expect_exit 0 sluice schedule --once nightly || return 1
	expect_grep 'start +nightly: attempt 1 of 1: sluice build -s tag:nightly\+' "$T_DIR/out" || return 1
	expect_grep 'done +nightly: success after 1 attempt' "$T_DIR/out" || return 1
	# the selection applied: other was not built
	expect_eq 0 "$(psql_q "select count(*) from pg_tables where tablename = 'other'")" || return 1
	expect_eq nightly "$(rr .metadata.schedule)" || return 1
	expect_eq eleni "$(rr .metadata.user)" || return 1
	expect_eq 1 "$(rr '.attempts | length')" || return 1
	expect_eq success "$(rr '.attempts[0].status')" || return 1
	expect_eq "$(rr .metadata.invocation_id)" "$(rr '.attempts[0].invocation_id')"
}
ok "--once runs the schedule's command and selection now, and records the attempt" t_once

t_audit() {
	inv=$(rr .metadata.invocation_id) || return 1
	q=$(psql_q "select q from analytics.a") || return 1
	case $q in
	*"/* sluice run=$inv node=model.proj.a user=eleni schedule=nightly */"*) ;;
	*) printf 'no audit comment with user and schedule in:\n%s\n' "$q"; return 1 ;;
	esac
}
ok "a scheduled run's audit comment names the person and the schedule" t_audit

t_list_last() {
	expect_exit 0 sluice schedule --list || return 1
	expect_grep "^  last: success, trigger [0-9T:-]+Z, finished [0-9T:-]+Z, 1 attempt, run $(rr .metadata.invocation_id)\$" "$T_DIR/out"
}
ok "--list shows the last result, read from the state" t_list_last

t_once_unknown() {
	expect_exit 2 sluice schedule --once nighty || return 1
	expect_grep "no schedule 'nighty'" "$T_DIR/out" || return 1
	expect_exit 2 sluice schedule --once nightly -s other || return 1
	expect_grep "selection from sluice.yml" "$T_DIR/out"
}
ok "--once with an unknown name, or with -s, exits 2 and says why" t_once_unknown

t_once_force() {
	expect_exit 0 sluice schedule --once nightly || return 1
	expect_eq reused "$(rr '.results[] | select(.unique_id == "model.proj.a") | .status')" || return 1
	expect_exit 0 sluice schedule --once nightly --force || return 1
	expect_eq success "$(rr '.results[] | select(.unique_id == "model.proj.a") | .status')"
}
ok "--force reaches the run: what is up to date is rebuilt" t_once_force

# A day of hourly triggers in 24 seconds: an hour a second. A trigger that
# comes while a run is slow (a loaded machine) is skipped: counted too.
cp sluice.yml sluice.yml.nightly
cat >>sluice.yml <<'YML'
  - name: hourly
    cron: "@hourly"
    select: other
YML

t_day() {
	SLUICE_NOW=2026-06-01T00:30:00Z SLUICE_TIME_SCALE=3600 bg_start day "$SLUICE_BIN" schedule || return 1
	wait_until 60 grep -q 'trigger time 2026-06-02T00:00:00Z' "$T_DIR/day.log" || { cat "$T_DIR/day.log"; return 1; }
	wait_until 30 grep -q 'done  *hourly: success.*' "$T_DIR/day.log" || return 1
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait day 30)" || { cat "$T_DIR/day.log"; return 1; }
	# 24 hourly triggers from 01:00 to 00:00 UTC (ran or skipped, never lost), one nightly at 00:00 UTC
	n=$(grep -cE 'hourly: trigger time 2026-06-0[12]T[0-9:]+Z( came during a run|$)' "$T_DIR/day.log") || return 1
	expect_eq 24 "$n" || { cat "$T_DIR/day.log"; return 1; }
	# 02:00 in Athens (EEST) is 23:00 UTC
	expect_eq 1 "$(grep -c 'nightly: trigger time' "$T_DIR/day.log")" || return 1
	expect_grep 'nightly: trigger time 2026-06-01T23:00:00Z' "$T_DIR/day.log" || return 1
	expect_grep 'end +stopped by SIGTERM' "$T_DIR/day.log"
}
ok "a fake clock runs a day of hourly triggers in seconds, at the right times" t_day

# Overlapping triggers: every minute, a run that takes more than a minute.
cat >sluice.yml <<'YML'
name: proj
profile: proj
schedules:
  - name: busy
    cron: "* * * * *"
    select: slow
YML
model slow "{{ config(materialized='table') }}
select 1 as id from pg_sleep(2)"

t_overlap() {
	SLUICE_NOW=2026-06-01T00:00:30Z SLUICE_TIME_SCALE=60 bg_start busy "$SLUICE_BIN" schedule || return 1
	wait_until 60 grep -q 'came during a run of busy: skipped' "$T_DIR/busy.log" || { cat "$T_DIR/busy.log"; return 1; }
	wait_until 60 grep -q 'done  *busy' "$T_DIR/busy.log" || return 1
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait busy 60)" || return 1
	# never two at once: each start follows the previous run's end
	awk '/start +busy/ { if (open) { print "overlap at " NR; bad = 1 } open = 1 } /done +busy/ { open = 0 }
		END { exit bad }' "$T_DIR/busy.log" || { cat "$T_DIR/busy.log"; return 1; }
	expect_grep 'skip +busy: trigger time 2026-06-01T00:0[0-9]:00Z came during a run of busy: skipped' "$T_DIR/busy.log"
}
ok "a trigger that fires during a run is skipped and logged, never queued" t_overlap

t_locked() {
	# another run holds the state lock: the scheduled run is skipped, not failed
	bg_start holder "$SLUICE_BIN" run -s slow --force --threads 1 || return 1
	wait_until 20 grep -q START "$T_DIR/holder.log" || { cat "$T_DIR/holder.log"; return 1; }
	expect_exit 1 sluice schedule --once busy || return 1
	expect_grep 'skip +busy: another run holds the state lock: state is locked by tester' "$T_DIR/out" || return 1
	expect_grep 'done +busy: skipped' "$T_DIR/out" || return 1
	expect_eq 0 "$(bg_wait holder 30)"
}
ok "a run started elsewhere holds the state lock: the scheduled run is skipped" t_locked

# Catch-up: down for three nights, the missed schedule runs once on start.
cat >sluice.yml <<'YML'
name: proj
profile: proj
schedules:
  - name: midnight
    cron: "@daily"
    select: other
YML

t_catchup() {
	SLUICE_NOW=2026-06-01T23:59:50Z SLUICE_TIME_SCALE=10 bg_start first "$SLUICE_BIN" schedule || return 1
	wait_until 60 grep -q 'done  *midnight: success' "$T_DIR/first.log" || { cat "$T_DIR/first.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait first 30)" || return 1
	SLUICE_NOW=2026-06-05T12:00:00Z bg_start second "$SLUICE_BIN" schedule || return 1
	wait_until 60 grep -q 'done  *midnight' "$T_DIR/second.log" || { cat "$T_DIR/second.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait second 30)" || return 1
	expect_grep 'catch-up +midnight: missed 3 triggers while down, the last at 2026-06-05T00:00:00Z: running once' \
		"$T_DIR/second.log" || return 1
	expect_eq 1 "$(grep -c 'trigger  *midnight' "$T_DIR/second.log")" || { cat "$T_DIR/second.log"; return 1; }
	expect_grep 'trigger +midnight: trigger time 2026-06-05T00:00:00Z' "$T_DIR/second.log" || return 1
	# started again the same day: nothing was missed since
	SLUICE_NOW=2026-06-05T13:00:00Z bg_start third "$SLUICE_BIN" schedule || return 1
	wait_until 30 grep -q 'next  *midnight' "$T_DIR/third.log" || return 1
	sleep 1
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait third 30)" || return 1
	expect_no_grep 'catch-up|trigger' "$T_DIR/third.log"
}
ok "after downtime a missed schedule runs once on start, never as a burst" t_catchup

# SIGHUP reloads the project: a schedule added, then a broken file kept out.
cat >sluice.yml <<'YML'
name: proj
profile: proj
schedules:
  - {name: yearly, cron: "0 0 1 1 *"}
YML

t_reload() {
	bg_start hup "$SLUICE_BIN" schedule || return 1
	wait_until 30 grep -q 'next  *yearly' "$T_DIR/hup.log" || { cat "$T_DIR/hup.log"; return 1; }
	cat >>sluice.yml <<'YML'
  - {name: monthly, cron: "0 0 1 * *", timezone: America/New_York}
YML
	kill -HUP "$BG_PID" || return 1
	wait_until 30 grep -q 'reload  *2 schedules loaded' "$T_DIR/hup.log" || { cat "$T_DIR/hup.log"; return 1; }
	wait_until 30 grep -q 'next  *monthly: .* 00:00 E[SD]T)' "$T_DIR/hup.log" || { cat "$T_DIR/hup.log"; return 1; }
	echo "  - {name: broken, cron: \"61 * * * *\"}" >>sluice.yml
	kill -HUP "$BG_PID" || return 1
	wait_until 30 grep -q 'reload  *failed, keeping the schedules loaded before: sluice.yml:6:[0-9]*: schedule .broken.: cron: minute' \
		"$T_DIR/hup.log" || { cat "$T_DIR/hup.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait hup 30)"
}
ok "SIGHUP reloads sluice.yml; a broken one is reported and the old schedules stay" t_reload

t_bad_cron() {
	printf 'name: proj\nprofile: proj\nschedules:\n  - {name: n, cron: "0 25 * * *"}\n' >sluice.yml
	expect_exit 2 sluice schedule --list || return 1
	expect_grep "^sluice: error: sluice.yml:4:21: schedule 'n': cron: hour: '25' is out of range 0-23\$" "$T_DIR/out" || return 1
	expect_exit 2 sluice run || return 1
	expect_grep "sluice.yml:4:21" "$T_DIR/out"
}
ok "a bad cron expression is an error at its file, line and column, for every command" t_bad_cron

t_print() {
	printf 'name: proj\nprofile: proj\nschedules:\n  - {name: n, cron: "30 1 * * 1-5", timezone: Europe/Athens}\n' >sluice.yml
	expect_exit 0 sluice schedule --print-systemd || return 1
	expect_grep "^ExecStart=/.*/sluice schedule --project-dir $P --grace 30\$" "$T_DIR/out" || return 1
	expect_grep '^ExecReload=/bin/kill -HUP \$MAINPID$' "$T_DIR/out" || return 1
	expect_grep '^KillMode=mixed$' "$T_DIR/out" || return 1
	expect_grep '^User=tester$' "$T_DIR/out" || return 1
	expect_exit 0 sluice schedule --print-crontab || return 1
	expect_grep '^CRON_TZ=Europe/Athens$' "$T_DIR/out" || return 1
	expect_grep "^30 1 \* \* 1-5 mkdir -p $P/target/logs && /.*/sluice schedule --project-dir $P --once n >>$P/target/logs/schedule-n.log 2>&1\$" "$T_DIR/out"
}
ok "--print-systemd and --print-crontab print a unit and crontab lines for this project" t_print

done_testing
