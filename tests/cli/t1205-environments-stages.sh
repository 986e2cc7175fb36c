#!/usr/bin/env bash
# t1205: unloads and loads across environments (docs/environments.md).
# Alice's target reuses prod's stage generation when it is in her stage
# and holds every row, or is a delta that prod's loads took, and her loads
# are copies of prod's tables, never views; a delta that a copy already
# holds is never appended again, and a load never replaces its table with
# a delta.
. "$(dirname "$0")/lib.sh"

new_project envstage
echo "state: warehouse" >>sluice.yml
{
	printf 'proj:\n  target: prod\n  outputs:\n'
	env_output prod analytics_prod
	env_output dev_alice analytics_alice "reuse_from: [prod]"
} >profiles.yml
psql_q "create schema lake;
create table lake.codes (id int, name text); insert into lake.codes select g, 'c' || g from generate_series(1, 50) g;
create table lake.events (id int, v int); insert into lake.events select g, g % 7 from generate_series(1, 100) g;" || exit 1
sources_yml lake codes events
model unload_codes "{{ config(materialized='unload') }}
select id, name from {{ source('lake', 'codes') }}"
model raw_codes "{{ config(materialized='load') }}
{{ ref('unload_codes') }}"
model unload_events "{{ config(materialized='unload') }}
select id, v from {{ source('lake', 'events') }}
{% if is_incremental() %}where id > {{ watermark }}{% endif %}"
model raw_events "{{ config(materialized='load', watermark='id') }}
{{ ref('unload_events') }}"
model mart "{{ config(materialized='table') }}
select count(*) as n, sum(v) as s from {{ ref('raw_events') }} join {{ ref('raw_codes') }} using (id)"

# plan_of TARGET NODE: the plan's action and first reason for NODE.
plan_of() {
	sluice plan --target "$1" --format json 2>/dev/null |
		jq -r --arg u "model.proj.$2" '.[] | select(.unique_id == $u) | .action + " " + (.reasons[0] // "")'
}
relkind() { psql_q "select c.relkind from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = '$1' and c.relname = '$2'"; }
rows_of() { psql_q "select count(*) || ':' || count(distinct id) || ':' || coalesce(sum(id), 0) from $1"; }
settled() { stats_settled lake.events "$1"; }
# add_events FIRST LAST: new lake events FIRST..LAST, once the statistics count them.
add_events() {
	psql_q "insert into lake.events select g, g % 7 from generate_series($1, $2) g" >/dev/null &&
		wait_until 10 settled "$2"
}
# gen_of TARGET NODE: the stage generation in TARGET's state record of NODE.
gen_of() {
	psql_q "select record::json->>'stage_generation' from sluice_meta.node_state
		where target = '$1' and unique_id = 'model.proj.$2'"
}

ok "setup: the statistics of the sources count the inserted rows" wait_until 10 settled 100
# prod: a first build, then a nightly delta, so its last events generation holds only new rows
t_prod() {
	expect_exit 0 sluice run --target prod || return 1
	add_events 101 120 || return 1
	expect_exit 0 sluice run --target prod || return 1
	expect_eq "120:120:7260" "$(rows_of analytics_prod.raw_events)"
}
ok "prod builds, then loads a delta of 20 events" t_prod

t_alice_plan() {
	expect_grep "^reuse reuse from prod \(its stage generation, written .* by .*\)" <(plan_of dev_alice unload_codes) || return 1
	expect_grep "^reuse reuse from prod \(a copy, built " <(plan_of dev_alice raw_codes) || return 1
	# prod's last events generation is a delta, which prod's load took: hers is a copy of that load, so it serves her too
	expect_grep "^reuse reuse from prod \(its stage generation, written " <(plan_of dev_alice unload_events) || return 1
	expect_grep "^reuse reuse from prod \(a copy, built " <(plan_of dev_alice raw_events)
}
ok "Alice's plan: prod's generations are hers, its delta too, as the loads are copies of prod's" t_alice_plan

t_alice_run() {
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq "$(rr '.results[] | select(.unique_id == "model.proj.unload_codes") | .status')" "success" || return 1
	for u in unload_codes unload_events; do
		expect_eq "$(gen_of prod $u)" "$(gen_of dev_alice $u)" || return 1
		expect_positive "$(gen_of prod $u | wc -c)" || return 1
	done
	expect_eq "r" "$(relkind analytics_alice raw_codes)" || return 1
	expect_eq "r" "$(relkind analytics_alice raw_events)" || return 1
	expect_eq "$(rows_of analytics_prod.raw_codes)" "$(rows_of analytics_alice.raw_codes)" || return 1
	expect_eq "120:120:7260" "$(rows_of analytics_alice.raw_events)" || return 1
	expect_eq "$(psql_q 'select * from analytics_prod.mart')" "$(psql_q 'select * from analytics_alice.mart')"
}
ok "Alice's run: prod's generations, both raw tables copies of prod's, mart equal" t_alice_run

# New events; prod runs first, so Alice takes prod's new delta and her load
# is again a copy of prod's, which holds that delta already.
t_delta_once() {
	add_events 121 130 || return 1
	expect_exit 0 sluice run --target prod || return 1
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_grep "reuse from prod \(a copy" <(rr '.results[] | select(.unique_id == "model.proj.raw_events") | .message // ""') || return 1
	expect_eq "130:130:8515" "$(rows_of analytics_alice.raw_events)" || return 1
	# her load forced to run on that delta: the copy holds it, nothing is appended twice
	expect_exit 0 sluice run --target dev_alice --select raw_events --force || return 1
	expect_eq "130:130:8515" "$(rows_of analytics_alice.raw_events)"
}
ok "a delta that Alice's copy of prod's load already holds is never appended again" t_delta_once

# prod unloads new events but does not load them: its delta serves no copy
t_delta_not_taken() {
	add_events 131 140 || return 1
	expect_exit 0 sluice run --target prod --select unload_events || return 1
	expect_grep "^build .*cannot reuse prod's unload_events: its stage generation holds only rows past a watermark, and not every load below took it there" \
		<(sluice plan --target dev_alice 2>&1 | grep unload_events) || return 1
	expect_exit 0 sluice run --target dev_alice || return 1
	[ "$(gen_of prod unload_events)" != "$(gen_of dev_alice unload_events)" ] || { echo "events: prod's generation"; return 1; }
	expect_eq "140:140:9870" "$(rows_of analytics_alice.raw_events)"
}
ok "a delta of prod's that prod's load did not take is not Alice's: she sends and appends her own" t_delta_not_taken

# prod's last events generation is that delta; its table is dropped by hand
t_delta_short() {
	psql_q "drop table analytics_prod.raw_events cascade" >/dev/null || return 1
	expect_exit 0 sluice run --target prod || return 1
	expect_grep "^its last generation holds only rows past a watermark, and analytics_prod.raw_events holds none before them$" \
		<(rr '.results[] | select(.unique_id == "model.proj.unload_events") | .reasons[]') || return 1
	expect_eq "140:140:9870" "$(rows_of analytics_prod.raw_events)"
}
ok "a load whose table is gone under a delta gets every row again: the unload sends them all" t_delta_short

# a load that would replace its table with a delta fails, and the table stays
t_delta_replace() {
	add_events 141 145 || return 1
	expect_exit 0 sluice run --target prod --select unload_events || return 1
	expect_exit 1 sluice run --target prod --select raw_events --full-refresh || return 1
	expect_grep "raw_events: unload 'unload_events' sent only rows past the watermark, but this load would replace its target and lose the rows before them; run \`sluice build --full-refresh -s unload_events\+\`" "$T_DIR/out" ||
		return 1
	expect_eq "140:140:9870" "$(rows_of analytics_prod.raw_events)" || return 1
	# the same once that delta is in the table: a full refresh of the load alone cannot be done
	expect_exit 0 sluice run --target prod || return 1
	expect_eq "145:145:10585" "$(rows_of analytics_prod.raw_events)" || return 1
	expect_exit 1 sluice run --target prod --select raw_events --full-refresh || return 1
	expect_eq "145:145:10585" "$(rows_of analytics_prod.raw_events)"
}
ok "a load never replaces its table with a delta: it fails, says how, and the table keeps its rows" t_delta_replace

# stage_retention counts a target's own generations: Alice's unloads never delete prod's
t_retention_own() {
	sed -i "s/materialized='unload')/materialized='unload', stage_retention=1)/" models/unload_events.sql || return 1
	expect_exit 0 sluice run --target prod -s unload_events --full-refresh || return 1
	gen=$(gen_of prod unload_events) && [ -n "$gen" ] || return 1
	expect_exit 0 sluice run --target dev_alice -s unload_events --full-refresh || return 1
	expect_exit 0 sluice run --target dev_alice -s unload_events --full-refresh || return 1
	[ -f ".sluice/stage/${gen}manifest" ] || { echo "prod's generation $gen was deleted"; return 1; }
	expect_eq 1 "$(ls .sluice/stage/unload_events/dev_alice/*/manifest | wc -l)"
}
ok "stage_retention keeps each target's newest generations, and never deletes another's" t_retention_own

done_testing
