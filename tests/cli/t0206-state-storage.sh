#!/usr/bin/env bash
# t0206: how the state is stored and what happens when it is damaged
# (docs/state.md): the local snapshot and journal (the latest record wins,
# a torn last line is ignored and removed, a damaged line or snapshot is an
# error naming the file, never a silent rebuild), resetting state, target
# names in file names, and the warehouse tables shared by several projects.
. "$(dirname "$0")/lib.sh"

# project DIR NAME SCHEMA [STATE]
project() {
	new_project "$1"
	sed -i "s/^name: proj$/name: $2/" sluice.yml
	sed -i "s/^      schema: analytics$/      schema: $3/" profiles.yml
	[ -n "${4:-}" ] && echo "state: $4" >>sluice.yml
	model a "{{ config(materialized='table') }}
select 1 as x"
	model b "{{ config(materialized='table') }}
select x + 1 as x from {{ ref('a') }}"
	model c "{{ config(materialized='table') }}
select 3 as x"
}
# relations SCHEMA: each relation with its file node (changes when rebuilt).
relations() {
	psql_q "select c.relname || ':' || c.relfilenode from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = '$1' order by 1"
}
# statuses_are STATUS: run_results says STATUS for a, b and c.
statuses_are() { expect_eq "a=$1 b=$1 c=$1" "$(rr_statuses)"; }

# --- local: files ---------------------------------------------------------------

project loc proj analytics
S=.sluice/state
ok "local: the first run builds everything" expect_exit 0 sluice run

t_files() {
	expect_eq "1 proj dev" "$(jq -r '"\(.format) \(.project) \(.target)"' $S/dev.json)" || return 1
	expect_eq "model.proj.a model.proj.b model.proj.c" "$(jq -r '.records | keys | join(" ")' $S/dev.json)" || return 1
	expect_eq success "$(jq -r '.records["model.proj.a"].status' $S/dev.json)" || return 1
	[ ! -s $S/dev.journal ] || { echo "the journal was not emptied:"; cat $S/dev.journal; return 1; }
	# No secrets, no data: fingerprints are hashes.
	expect_eq 32 "$(jq -r '.records["model.proj.a"].fingerprint | length' $S/dev.json)"
}
ok "local: .sluice/state/dev.json holds one record per model; the journal is empty after the run" t_files

t_journal_wins() {
	jq -c '{uid: "model.proj.a", record: (.records["model.proj.a"] | .status = "error")}' $S/dev.json >>$S/dev.journal || return 1
	plan_out || return 1
	expect_eq "a=build b=reuse c=reuse" "$(plan_actions)" || return 1
	expect_eq "last run failed" "$(plan_reasons a)"
}
ok "local: a journal line replaces the snapshot's record (plan: a 'last run failed')" t_journal_wins

t_torn() {
	printf '{"uid": "model.proj.c", "record": {"unique_id": "model.pr' >>$S/dev.journal
	plan_out || return 1
	expect_eq "a=build b=reuse c=reuse" "$(plan_actions)" || return 1
	expect_exit 0 sluice run || return 1
	# a is rebuilt; it has the same fingerprint, so b below it is not.
	expect_eq "a=success b=reused c=reused" "$(rr_statuses)" || return 1
	[ ! -s $S/dev.journal ] || { echo "the journal was not emptied:"; cat $S/dev.journal; return 1; }
	expect_exit 0 sluice run || return 1
	statuses_are reused
}
ok "local: a torn last journal line (a put killed mid-write) is ignored, then removed" t_torn

t_damaged() {
	{
		echo 'this is not json'
		jq -c '{uid: "model.proj.c", record: .records["model.proj.c"]}' $S/dev.json || return 1
	} >$S/dev.journal
	before=$(relations analytics) || return 1
	sluice plan >"$T_DIR/out" 2>&1 && { echo "plan exited 0"; cat "$T_DIR/out"; return 1; }
	expect_grep '\.sluice/state/dev\.journal:1: damaged journal entry' "$T_DIR/out" || return 1
	sluice run >"$T_DIR/out" 2>&1 && { echo "run exited 0"; cat "$T_DIR/out"; return 1; }
	expect_grep '\.sluice/state/dev\.journal:1: damaged journal entry' "$T_DIR/out" || return 1
	expect_eq "$before" "$(relations analytics)"
}
ok "local: a damaged journal line in the middle is an error naming file and line; nothing is rebuilt" t_damaged

t_damaged_fixed() {
	sed -i 1d $S/dev.journal || return 1
	expect_exit 0 sluice run || return 1
	statuses_are reused
}
ok "local: ... and once that line is deleted, the run goes on" t_damaged_fixed

t_bad_snapshot() {
	cp $S/dev.json "$T_DIR/dev.json.good" || return 1
	echo '{"format": 1, "project": "proj", "target": "dev", "records": {' >$S/dev.json
	before=$(relations analytics) || return 1
	sluice run >"$T_DIR/out" 2>&1 && { echo "run exited 0"; cat "$T_DIR/out"; return 1; }
	expect_grep '\.sluice/state/dev\.json' "$T_DIR/out" || return 1
	expect_eq "$before" "$(relations analytics)" || return 1
	jq -c '.project = "another"' "$T_DIR/dev.json.good" >$S/dev.json || return 1
	sluice run >"$T_DIR/out" 2>&1 && { echo "run exited 0 on another project's snapshot"; cat "$T_DIR/out"; return 1; }
	expect_grep '\.sluice/state/dev\.json' "$T_DIR/out" || return 1
	expect_eq "$before" "$(relations analytics)" || return 1
	cp "$T_DIR/dev.json.good" $S/dev.json || return 1
	expect_exit 0 sluice run || return 1
	statuses_are reused
}
ok "local: an unreadable snapshot, or another project's, is an error naming it, never a silent rebuild" t_bad_snapshot

t_reset() {
	rm $S/dev.json $S/dev.journal
	expect_exit 0 sluice run || return 1
	statuses_are success || return 1
	for m in a b c; do
		expect_eq "never built" "$(rr_reasons $m)" || return 1
	done
}
ok "local: deleting the target's files resets the state: everything is 'never built'" t_reset

t_target_name() {
	cat >>profiles.yml <<YML
    ci/prod:
$(conn_keys "      ")
      schema: analytics_ci
      threads: 4
YML
	expect_exit 0 sluice run --target ci/prod || return 1
	[ -s "$S/ci%2Fprod.json" ] || { echo "no $S/ci%2Fprod.json:"; ls -la $S; return 1; }
	expect_exit 0 sluice run --target ci/prod || return 1
	statuses_are reused
}
ok "local: a target named ci/prod is stored as ci%2Fprod.json" t_target_name

# --- warehouse -------------------------------------------------------------------

project wh pw analytics_pw warehouse
ok "warehouse: the first run builds everything" expect_exit 0 sluice run
ok "warehouse: one row per model in sluice_meta.node_state" \
	expect_eq "model.pw.a model.pw.b model.pw.c" \
	"$(psql_q "select string_agg(unique_id, ' ' order by unique_id) from sluice_meta.node_state where project = 'pw' and target = 'dev'")"

t_wh_bad() {
	psql_q "update sluice_meta.node_state set record = '{oops' where project = 'pw' and unique_id = 'model.pw.b'" || return 1
	before=$(relations analytics_pw) || return 1
	sluice run >"$T_DIR/out" 2>&1 && { echo "run exited 0"; cat "$T_DIR/out"; return 1; }
	expect_grep 'model\.pw\.b' "$T_DIR/out" || return 1
	expect_eq "$before" "$(relations analytics_pw)"
}
ok "warehouse: a record that is not JSON is an error naming its unique_id; nothing is rebuilt" t_wh_bad

t_wh_forget() {
	psql_q "delete from sluice_meta.node_state where project = 'pw' and target = 'dev' and unique_id = 'model.pw.b'" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "a=reused b=success c=reused" "$(rr_statuses)" || return 1
	expect_eq "never built" "$(rr_reasons b)"
}
ok "warehouse: deleting one node's row rebuilds that node only ('never built')" t_wh_forget

project wh2 pw2 analytics_pw2 warehouse
t_wh_shared() {
	expect_exit 0 sluice run || return 1
	statuses_are success || return 1
	expect_eq "never built" "$(rr_reasons a)" || return 1
	cd "$T_DIR/wh" || return 1
	expect_exit 0 sluice run || return 1
	statuses_are reused
}
ok "warehouse: another project with the same model names shares sluice_meta without sharing records" t_wh_shared

done_testing
