#!/usr/bin/env bash
# t1206: shell models across environments (docs/environments.md). A
# script another target ran with the same fingerprint is not run again
# when every file it declares is here with the content it wrote there; a
# script that makes a relation, declares no files, or whose files are not
# here as it wrote them, runs.
. "$(dirname "$0")/lib.sh"

new_project envshell
echo "state: warehouse" >>sluice.yml
{
	printf 'proj:\n  target: prod\n  outputs:\n'
	env_output prod analytics_prod
	env_output dev_alice analytics_alice "reuse_from: [prod]"
	env_output dev_bob analytics_bob "reuse_from: [prod]"
} >profiles.yml
model base "{{ config(materialized='table') }}
select 1 as id, 'alpha' as name union all select 2, 'beta'"
cat >models/export.sh <<'SH'
# {{ config(outputs=['out/base.csv']) }}
set -eu
echo export >>runs.log
mkdir -p out
psql -X -q -v ON_ERROR_STOP=1 -c "copy (select id, name from {{ ref('base') }} order by id) to stdout csv" >out/base.csv
SH
cat >models/load_rel.sh <<'SH'
# {{ config(relation=true) }}
set -eu
echo load_rel >>runs.log
psql -X -q -v ON_ERROR_STOP=1 -c "create table if not exists {{ this }} as select 1 as one"
SH
cat >models/notify.sh <<'SH'
# {{ config(depends_on=[ref('base')]) }}
echo notify >>runs.log
SH

# runs NAME: how many times NAME's script ran
runs() { grep -cx "$1" runs.log || true; }
plan_of() {
	sluice plan --target "$1" --format json 2>/dev/null |
		jq -r --arg u "model.proj.$2" '.[] | select(.unique_id == $u) | .action + " " + (.reasons | join("; "))'
}

t_prod() {
	expect_exit 0 sluice run --target prod || return 1
	expect_eq "1 1 1" "$(runs export) $(runs load_rel) $(runs notify)" || return 1
	expect_eq "1,alpha
2,beta" "$(cat out/base.csv)"
}
ok "prod runs the three scripts" t_prod

t_alice_plan() {
	expect_grep "^reuse reuse from prod \(its output files, written [0-9-]+ [0-9:]+ by .*, run [0-9a-f]{4}…\)" \
		<(plan_of dev_alice export) || return 1
	expect_grep "^build .*cannot reuse prod's load_rel: the script makes a relation of its own" <(plan_of dev_alice load_rel) ||
		return 1
	expect_grep "^build .*cannot reuse prod's notify: the script declares no output files" <(plan_of dev_alice notify)
}
ok "Alice's plan: prod's export serves her, its files being here; the others run" t_alice_plan

t_alice_run() {
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_grep "^\[[0-9]+/[0-9]+\] REUSED shell models/export.sh \.+ [0-9.]+s$" "$T_DIR/out" || return 1
	expect_eq "1 2 2" "$(runs export) $(runs load_rel) $(runs notify)" || return 1
	expect_eq files "$(rr '.results[] | select(.unique_id == "model.proj.export") | .reused_from.mode')" || return 1
	# and her next run has nothing to do with it
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq "1 2 2" "$(runs export) $(runs load_rel) $(runs notify)"
}
ok "Alice's run takes prod's export without running it, and runs the other two" t_alice_run

t_file_changed() {
	echo "3,gamma" >>out/base.csv
	expect_grep "^build .*cannot reuse prod's export: its output out/base.csv is not here as prod wrote it" \
		<(plan_of dev_bob export) || return 1
	expect_exit 0 sluice run --target dev_bob || return 1
	expect_eq "2" "$(runs export)" || return 1
	expect_eq "1,alpha
2,beta" "$(cat out/base.csv)"
}
ok "a file of prod's export that is not as prod wrote it: Bob runs the script" t_file_changed

done_testing
