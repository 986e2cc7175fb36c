#!/usr/bin/env bash
# t1205: unloads and loads across environments (docs/environments.md).
# Alice's target reuses prod's stage generation when it holds every row
# and is in her stage, and her loads are copies of prod's tables, never
# views; a delta of hers that a copy already holds is never appended
# again.
. "$(dirname "$0")/lib.sh"

new_project envstage
echo "state: warehouse" >>sluice.yml
cat >profiles.yml <<YML
proj:
  target: prod
  outputs:
    prod:
$(conn_keys "      ")
      schema: analytics_prod
    dev_alice:
$(conn_keys "      ")
      schema: analytics_alice
      reuse_from: [prod]
YML
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
# gen_of TARGET NODE: the stage generation in TARGET's state record of NODE.
gen_of() {
	psql_q "select record::json->>'stage_generation' from sluice_meta.node_state
		where target = '$1' and unique_id = 'model.proj.$2'"
}

ok "setup: the statistics of the sources count the inserted rows" wait_until 10 settled 100
# prod: a first build, then a nightly delta, so its last events generation holds only new rows
t_prod() {
	expect_exit 0 sluice run --target prod || return 1
	psql_q "insert into lake.events select g, g % 7 from generate_series(101, 120) g" >/dev/null || return 1
	wait_until 10 settled 120 || return 1
	expect_exit 0 sluice run --target prod || return 1
	expect_eq "120:120:7260" "$(rows_of analytics_prod.raw_events)"
}
ok "prod builds, then loads a delta of 20 events" t_prod

t_alice_plan() {
	expect_grep "^reuse reuse from prod \(its stage generation, written .* by .*\)" <(plan_of dev_alice unload_codes) || return 1
	expect_grep "^reuse reuse from prod \(a copy, built " <(plan_of dev_alice raw_codes) || return 1
	# prod's last events generation is a delta: hers must hold every row, so she unloads herself
	expect_grep "^build .*cannot reuse prod's unload_events: its stage generation holds only rows past a watermark" \
		<(sluice plan --target dev_alice 2>&1 | grep unload_events) || return 1
}
ok "Alice's plan: prod's full generation is hers, its delta is not; the loads are copies" t_alice_plan

t_alice_run() {
	expect_exit 0 sluice run --target dev_alice || return 1
	# her codes are prod's generation, her events one of her own
	expect_eq "$(rr '.results[] | select(.unique_id == "model.proj.unload_codes") | .status')" "success" || return 1
	expect_eq "$(gen_of prod unload_codes)" "$(gen_of dev_alice unload_codes)" || return 1
	expect_positive "$(gen_of prod unload_codes | wc -c)" || return 1
	[ "$(gen_of prod unload_events)" != "$(gen_of dev_alice unload_events)" ] || { echo "events: prod's generation"; return 1; }
	expect_eq "r" "$(relkind analytics_alice raw_codes)" || return 1
	expect_eq "r" "$(relkind analytics_alice raw_events)" || return 1
	expect_eq "$(rows_of analytics_prod.raw_codes)" "$(rows_of analytics_alice.raw_codes)" || return 1
	expect_eq "120:120:7260" "$(rows_of analytics_alice.raw_events)" || return 1
	expect_eq "$(psql_q 'select * from analytics_prod.mart')" "$(psql_q 'select * from analytics_alice.mart')"
}
ok "Alice's run: codes from prod's generation, both raw tables copies of prod's, mart equal" t_alice_run

# New events; prod runs first, so Alice's unload writes a delta of her own
# while her load is again a copy of prod's, which holds that delta already.
t_delta_once() {
	psql_q "insert into lake.events select g, g % 7 from generate_series(121, 130) g" >/dev/null || return 1
	wait_until 10 settled 130 || return 1
	expect_exit 0 sluice run --target prod || return 1
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_grep "reuse from prod \(a copy" <(rr '.results[] | select(.unique_id == "model.proj.raw_events") | .message // ""') || return 1
	expect_eq "130:130:8515" "$(rows_of analytics_alice.raw_events)" || return 1
	# her load forced to run on her own generation: the copy holds it, nothing is appended twice
	expect_exit 0 sluice run --target dev_alice --select raw_events --force || return 1
	expect_eq "130:130:8515" "$(rows_of analytics_alice.raw_events)"
}
ok "a delta of Alice's that her copy of prod's load already holds is never appended again" t_delta_once

t_gen_gone() {
	psql_q "insert into lake.codes values (51, 'c51')" >/dev/null || return 1
	wait_until 10 stats_settled lake.codes 51 || return 1
	expect_exit 0 sluice run --target prod --select unload_codes || return 1
	gen=$(gen_of prod unload_codes) &&
		[ -n "$gen" ] && rm -rf ".sluice/stage/$gen" || return 1
	expect_grep "^build .*cannot reuse prod's unload_codes: its stage generation is not in this target's stage" \
		<(sluice plan --target dev_alice 2>&1 | grep unload_codes)
}
ok "a generation of prod's that is gone from the stage is not reused" t_gen_gone

done_testing
