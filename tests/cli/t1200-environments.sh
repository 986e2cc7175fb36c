#!/usr/bin/env bash
# t1200: reuse across environments (docs/environments.md). Two targets of
# one project on one PostgreSQL, prod and dev_alice, the state in the
# warehouse: prod builds everything; Alice changes one mart and builds it
# and what reads it, every other relation a view over prod's with prod's
# contents; a source change reuses nothing that read the old version;
# prod rebuilding after her run makes her next plan decide again; without
# a read grant on prod's schema she builds herself and the reason says
# why; reuse_mode: copy makes tables. Then the same through S3 state from
# two project directories.
. "$(dirname "$0")/lib.sh"

new_project envs
# a role of the cluster's, so its own name in each run (both connectors run at once)
ROLE=carol_t1200_$$
echo "state: warehouse" >>sluice.yml
{
	printf 'proj:\n  target: prod\n  outputs:\n'
	env_output prod analytics_prod
	env_output dev_alice analytics_alice "reuse_from: [prod]"
	env_output dev_bob analytics_bob "reuse_from: [prod]" "reuse_mode: copy"
	env_output dev_dan analytics_dan "reuse_from: [dev_alice]"
	env_output dev_carol analytics_carol "reuse_from: [prod]" |
		sed "s/^\(      user: \).*/\1\"$ROLE\"/; s/^\(      password: \).*/\1\"carol-pw\"/"
} >profiles.yml
psql_q "create schema lake;
create table lake.orders (id int, amount int); insert into lake.orders values (1, 10), (2, 20), (3, 30);
create table lake.customers (id int, name text); insert into lake.customers values (1, 'a'), (2, 'b');" || exit 1
sources_yml lake orders customers
model stg_orders "{{ config(materialized='table') }}
select id, amount from {{ source('lake', 'orders') }}"
model stg_customers "{{ config(materialized='table') }}
select id, name from {{ source('lake', 'customers') }}"
model mart_a "{{ config(materialized='table') }}
select sum(amount) as total from {{ ref('stg_orders') }}"
model mart_b "{{ config(materialized='table') }}
select count(*) as n from {{ ref('stg_customers') }}"
model report "{{ config(materialized='table') }}
select total * 2 as doubled from {{ ref('mart_a') }}"
model v_names "select name from {{ ref('stg_customers') }}"
model inc "{{ config(materialized='incremental') }}
select id from {{ ref('stg_orders') }}"
MODELS="inc mart_a mart_b report stg_customers stg_orders v_names"
TABLES="inc mart_a mart_b report stg_customers stg_orders"

settled() { stats_settled lake.orders 3 && stats_settled lake.customers 2; }
ok "setup: the statistics of the sources count the inserted rows" wait_until 10 settled

# --- bad input ---------------------------------------------------------------

t_bad_profile() {
	cp profiles.yml "$T_DIR/profiles.keep" || return 1
	sed -i 's/reuse_from: \[prod\]$/reuse_from: [prod, nope]/' profiles.yml || return 1
	expect_exit 2 sluice plan --target dev_alice || return 1
	expect_grep "profiles.yml:[0-9]+:[0-9]+: reuse_from: profile 'proj' has no output 'nope'" "$T_DIR/out" || return 1
	cp "$T_DIR/profiles.keep" profiles.yml || return 1
	sed -i 's/reuse_mode: copy/reuse_mode: clone/' profiles.yml || return 1
	expect_exit 2 sluice plan --target dev_bob || return 1
	expect_grep "profiles.yml:[0-9]+:[0-9]+: reuse_mode must be view or copy" "$T_DIR/out" || return 1
	cp "$T_DIR/profiles.keep" profiles.yml || return 1
	expect_exit 2 sluice plan --target dev_alice --reuse-from nope || return 1
	expect_grep "^.*--reuse-from nope: profile 'proj' has no such output" "$T_DIR/out"
}
ok "a reuse_from or reuse_mode that names nothing is an error at profiles.yml:line; so is --reuse-from" t_bad_profile

# --- prod builds everything ----------------------------------------------------

ok "prod builds everything" expect_exit 0 sluice run --target prod

# rec TARGET NAME FIELD: a field of a state record in sluice_meta.node_state.
rec() {
	psql_q "select record::json->>'$3' from sluice_meta.node_state
		where project = 'proj' and target = '$1' and unique_id = 'model.proj.$2'"
}

t_prod_records() {
	for m in $TABLES; do
		expect_eq "prod analytics_prod $m" "$(rec prod "$m" target) $(rec prod "$m" schema) $(rec prod "$m" identifier)" ||
			return 1
		[ -n "$(rec prod "$m" relation_version)" ] || { echo "$m: no relation_version"; return 1; }
	done
}
ok "prod's records name target, schema and relation, and the version right after the build" t_prod_records

# --- Alice changes one mart ----------------------------------------------------

# late_reads SCHEMA NAME: what the late view SCHEMA.NAME reads: the body
# of the function it reads through, when its definition reads that function.
late_reads() {
	psql_q "select definition from pg_views where schemaname = '$1' and viewname = '$2'" |
		grep -q "$1\.$2__sluice_reuse()" &&
		psql_q "select prosrc from pg_proc where proname = '$2__sluice_reuse' and pronamespace = '$1'::regnamespace"
}

# same_rows SCHEMA NAME: SCHEMA.NAME holds the rows of analytics_prod.NAME, no more, no fewer.
same_rows() {
	expect_eq 0 "$(psql_q "select count(*) from ((select * from $1.$2 except all select * from analytics_prod.$2)
		union all (select * from analytics_prod.$2 except all select * from $1.$2)) d")"
}

t_alice_plan() {
	model mart_a "{{ config(materialized='table') }}
select sum(amount) + 1000 as total from {{ ref('stg_orders') }}"
	plan_out --target dev_alice || return 1
	expect_eq "$(models_map reuse mart_a=build report=build)" "$(plan_actions)" || return 1
	for m in stg_orders stg_customers mart_b; do
		plan_reasons "$m" | head -n 1 |
			grep -Eq '^reuse from prod \(built [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} by tester, run [0-9a-f]{4}…\)$' ||
			{ echo "$m:"; cat "$T_DIR/plan.out"; return 1; }
		expect_eq prod "$(jq -r --arg u "model.proj.$m" '.[] | select(.unique_id == $u) | .reuse_from.target' "$T_DIR/plan.json")" ||
			return 1
	done
	# an incremental model is never a view over another environment's table
	expect_eq copy "$(jq -r '.[] | select(.unique_id == "model.proj.inc") | .reuse_from.mode' "$T_DIR/plan.json")" || return 1
	# a view is made again here: over prod's view it would read prod's upstream
	plan_reasons v_names | head -n 1 |
		grep -Eq '^reuse from prod \(made again here over our own relations, as built [0-9-]+ [0-9:]+ by tester, run [0-9a-f]{4}…\)$' ||
		{ plan_reasons v_names; return 1; }
	expect_eq remade "$(jq -r '.[] | select(.unique_id == "model.proj.v_names") | .reuse_from.mode' "$T_DIR/plan.json")" ||
		return 1
	# but not when what it reads here is not what prod's reads
	cp models/stg_customers.sql "$T_DIR/stg_customers.keep" || return 1
	sed -i 's/select id, name/select id, upper(name) as name/' models/stg_customers.sql || return 1
	plan_out --target dev_alice || return 1
	cp "$T_DIR/stg_customers.keep" models/stg_customers.sql || return 1
	expect_eq "$(models_map reuse mart_a=build report=build stg_customers=build mart_b=build v_names=build)" "$(plan_actions)"
}
ok "Alice's plan after editing mart_a: it and report build; the rest reuse from prod (inc as a copy, the view made again)" t_alice_plan

t_alice_run() {
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_grep "REUSED table analytics_alice.stg_orders \.+ [0-9.]+s$" "$T_DIR/out" || return 1
	expect_grep "^ +reuse from prod \(built .* by tester, run [0-9a-f]{4}…\)$" "$T_DIR/out" || return 1
	expect_grep "^ +reuse from prod \(a copy, built .* by tester, run [0-9a-f]{4}…\)$" "$T_DIR/out" || return 1
	expect_eq BASE "$(psql_q "select 'BASE' from information_schema.tables where table_schema = 'analytics_alice'
		and table_name = 'inc' and table_type = 'BASE TABLE'")" || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	psql_q "select definition from pg_views where schemaname = 'analytics_alice' and viewname = 'v_names'" |
		grep -q "analytics_alice.stg_customers" || { echo "v_names does not read Alice's stg_customers"; return 1; }
	expect_grep "^\[[0-9]+/[0-9]+\] REUSED view analytics_alice.v_names \.+ [0-9.]+s$" "$T_DIR/out" || return 1
	same_rows analytics_alice v_names || return 1
	# a late view: no dependency of prod's table, and the planner reads the table itself
	late_reads analytics_alice stg_orders | grep -q '"analytics_prod"."stg_orders"' || return 1
	expect_eq 0 "$(psql_q "select count(*) from pg_depend where refobjid = 'analytics_prod.stg_orders'::regclass
		and classid = 'pg_rewrite'::regclass")" || return 1
	psql_q "explain select * from analytics_alice.stg_orders where id = 2" | grep -q "Seq Scan on stg_orders" ||
		{ psql_q "explain select * from analytics_alice.stg_orders where id = 2"; return 1; }
	for m in stg_orders stg_customers mart_b; do
		expect_eq "prod analytics_prod.$m" \
			"$(t_noted jq -r --arg u "model.proj.$m" '.results[] | select(.unique_id == $u) | "\(.reused_from.target) \(.reused_from.schema).\(.reused_from.identifier)"' target/run_results.json)" ||
			return 1
		expect_eq VIEW "$(psql_q "select 'VIEW' from information_schema.views where table_schema = 'analytics_alice' and table_name = '$m'")" ||
			return 1
		same_rows analytics_alice "$m" || return 1
	done
	expect_eq "1060 2120" "$(psql_q "select total, (select doubled from analytics_alice.report) from analytics_alice.mart_a" | tr '|' ' ')" ||
		return 1
	expect_eq 60 "$(psql_q "select total from analytics_prod.mart_a")"
}
ok "Alice's run: reused relations are views over prod's with equal contents; her mart and report are hers" t_alice_run

# The fingerprint is the logical one: the schema of the target is not in it.
t_same_fp() {
	for m in stg_orders stg_customers mart_b; do
		expect_eq "$(rec prod "$m" fingerprint)" "$(rec dev_alice "$m" fingerprint)" || return 1
	done
	expect_eq prod "$(psql_q "select record::json->'reused_from'->>'target' from sluice_meta.node_state
		where target = 'dev_alice' and unique_id = 'model.proj.stg_orders'")" || return 1
	[ "$(rec prod mart_a fingerprint)" != "$(rec dev_alice mart_a fingerprint)" ] || { echo "mart_a equal"; return 1; }
}
ok "a node reused from prod has prod's fingerprint in Alice's state, and says where it came from" t_same_fp

t_alice_again() {
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)"
}
ok "Alice's next run reuses everything (nothing changed)" t_alice_again

# Dan reuses from Alice, whose stg_orders is a view over prod's: his view
# goes to prod's table itself, so a change there is seen by his next plan.
t_chain() {
	expect_exit 0 sluice run --target dev_dan || return 1
	expect_eq "prod dev_alice" "$(t_noted jq -r '.results[] | select(.unique_id == "model.proj.stg_orders") | "\(.reused_from.target) \(.reused_from.via)"' target/run_results.json)" ||
		return 1
	expect_grep "reuse from prod via dev_alice \(built " "$T_DIR/out" || return 1
	late_reads analytics_dan stg_orders | grep -q '"analytics_prod"."stg_orders"' ||
		{ echo "Dan's view is not over prod's table"; return 1; }
	expect_eq "dev_alice analytics_alice.mart_a" "$(t_noted jq -r '.results[] | select(.unique_id == "model.proj.mart_a") | "\(.reused_from.target) \(.reused_from.schema).\(.reused_from.identifier)"' target/run_results.json)"
}
ok "a target reusing from one that reused from prod points at prod's table, and says via whom" t_chain

t_blame() {
	expect_exit 0 sluice blame --target dev_alice stg_orders || return 1
	expect_grep "^reused from +prod: analytics_prod.stg_orders \(a view over it\)$" "$T_DIR/out" || return 1
	expect_grep "^--- in prod:$" "$T_DIR/out" || return 1
	expect_grep "^model.proj.stg_orders \(analytics_prod.stg_orders, table\)$" "$T_DIR/out" || return 1
	expect_grep "^rows +3$" "$T_DIR/out"
}
ok "blame of a reused relation follows the chain to prod's record" t_blame

# --- prod rebuilds after Alice's run --------------------------------------------

t_prod_rebuilds() {
	oid=$(psql_q "select 'analytics_alice.stg_customers'::regclass::oid") || return 1
	expect_exit 0 sluice run --target prod --force -s stg_customers || return 1
	# prod's swap never touched Alice's view: it reads prod's new table through a function
	expect_eq "$oid" "$(psql_q "select 'analytics_alice.stg_customers'::regclass::oid")" || return 1
	same_rows analytics_alice stg_customers || return 1
	plan_out --target dev_alice || return 1
	plan_reasons stg_customers | grep -Eq "^reused from prod's analytics_prod.stg_customers, which changed since \(stats:[^)]*\): rebuilt there" ||
		{ cat "$T_DIR/plan.out"; return 1; }
	# same fingerprint: pointed at prod's new table again, not built
	expect_eq reuse "$(plan_action stg_customers)" || return 1
	expect_eq reuse "$(plan_action stg_orders)" || return 1
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq "$(models_map reused stg_customers=success)" "$(rr_statuses)"
}
ok "prod rebuilds stg_customers after Alice's run: her next plan says so and re-points it" t_prod_rebuilds

# prod_mart_b_dropped TARGET REASON: prod's mart_b dropped, TARGET's plan
# builds its mart_b, and the first line of its reasons matching REASON is there.
prod_mart_b_dropped() {
	psql_q "drop table analytics_prod.mart_b cascade" || return 1
	plan_out --target "$1" || return 1
	plan_reasons mart_b | grep -Eq "$2" || { cat "$T_DIR/plan.out"; return 1; }
	expect_eq build "$(plan_action mart_b)"
}
t_prod_dropped() {
	# Alice's view reads it late: it stays, and prod's cannot be read
	prod_mart_b_dropped dev_alice "^cannot reuse prod's analytics_prod.mart_b: .*does not exist" || return 1
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq 2 "$(psql_q "select n from analytics_alice.mart_b")" || return 1
	expect_exit 0 sluice run --target prod
}
ok "a relation of prod that was dropped is never reused: Alice builds it" t_prod_dropped

# --- a source change -------------------------------------------------------------

t_source_change() {
	psql_q "insert into lake.orders values (4, 40)" || return 1
	wait_until 10 plan_builds stg_orders --target dev_alice || { cat "$T_DIR/plan.json"; return 1; }
	plan_out --target dev_alice || return 1
	# nothing that read the old version is reused; what did not read it still is
	for m in stg_orders mart_a report inc; do
		expect_eq build "$(plan_action "$m")" || return 1
		plan_reasons "$m" | grep -q "^reuse from" && { echo "$m reused"; return 1; }
	done
	expect_eq reuse "$(plan_action stg_customers)" || return 1
	# once prod has built the new version, Alice reuses it again
	expect_exit 0 sluice run --target prod || return 1
	plan_out --target dev_alice || return 1
	expect_eq reuse "$(plan_action stg_orders)" || return 1
	plan_reasons stg_orders | head -n 1 | grep -q "^reuse from prod" || { cat "$T_DIR/plan.out"; return 1; }
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq 4 "$(psql_q "select count(*) from analytics_alice.stg_orders")"
}
ok "a source change: nothing that read the old version is reused; after prod builds it, Alice reuses it" t_source_change

# --- no read grant ------------------------------------------------------------------

psql_q "drop role if exists $ROLE" >/dev/null 2>&1
psql_q "create role $ROLE login password 'carol-pw';
grant create, connect on database \"$T_DB\" to $ROLE;" || exit 1
at_exit "psql -X -q -d '$T_DB' -c 'drop owned by $ROLE cascade' >/dev/null 2>&1; psql -X -q -d postgres -c 'drop role if exists $ROLE' >/dev/null 2>&1"
t_no_grant() {
	psql_q "grant usage on schema lake to $ROLE; grant select on all tables in schema lake to $ROLE;
grant usage, create on schema sluice_meta to $ROLE;
grant select, insert, delete on all tables in schema sluice_meta to $ROLE;" || return 1
	expect_exit 0 sluice run --target dev_carol || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	rr_reasons stg_orders | grep -Eq "^cannot reuse prod's analytics_prod.stg_orders: .*permission denied" ||
		{ rr_reasons stg_orders; return 1; }
	expect_eq BASE "$(psql_q "select 'BASE' from information_schema.tables where table_schema = 'analytics_carol'
		and table_name = 'stg_orders' and table_type = 'BASE TABLE'")"
}
ok "without a read grant on prod's schema, Carol builds herself and the reason says why" t_no_grant

# --- reuse_mode: copy -------------------------------------------------------------------

t_copy() {
	expect_exit 0 sluice run --target dev_bob || return 1
	for m in stg_orders stg_customers mart_b inc; do
		expect_eq copy "$(t_noted jq -r --arg u "model.proj.$m" '.results[] | select(.unique_id == $u) | .reused_from.mode' target/run_results.json)" ||
			return 1
		expect_eq BASE "$(psql_q "select 'BASE' from information_schema.tables where table_schema = 'analytics_bob'
			and table_name = '$m' and table_type = 'BASE TABLE'")" || return 1
		same_rows analytics_bob "$m" || return 1
	done
}
ok "reuse_mode: copy makes tables copied from prod's, incremental models included" t_copy

t_copy_source_dropped() {
	# Bob's copy is still there, but what it was copied from is not
	prod_mart_b_dropped dev_bob "^reused from prod's analytics_prod.mart_b, which can no longer be read" || return 1
	expect_exit 0 sluice run --target prod
}
ok "prod's relation a copy was made from is dropped: Bob's next plan says so and builds it" t_copy_source_dropped

# --- sluice cache ls and prune ------------------------------------------------

t_cache_ls() {
	expect_exit 0 sluice cache ls --target dev_alice || return 1
	expect_grep "^environment +relation +fingerprint +built by +age +size +from$" "$T_DIR/out" || return 1
	fp=$(rec prod stg_orders fingerprint | cut -c1-12) && [ -n "$fp" ] || return 1
	expect_grep "^prod +analytics_prod.stg_orders +$fp +tester +[0-9]+[smhd] +[0-9.]+ [kMG]?B +$" "$T_DIR/out" || return 1
	expect_grep "^dev_alice +analytics_alice.stg_orders +$fp +tester +[0-9]+[smhd] +0 B +view over prod$" "$T_DIR/out" || return 1
	expect_grep "^dev_bob +analytics_bob.stg_orders +$fp +tester +[0-9]+[smhd] +[0-9.]+ [kMG]?B +copy of prod$" "$T_DIR/out" || return 1
	sluice cache ls --format json >"$T_DIR/ls.json" || return 1
	expect_eq "true true" "$(t_noted jq -r '[.[] | select(.environment == "prod" and .unique_id == "model.proj.stg_orders") | .exists, (.bytes > 0)] | join(" ")' "$T_DIR/ls.json")"
}
ok "cache ls shows every environment's relations: fingerprint, builder, age, size, and what is a view or copy of prod" t_cache_ls

t_cache_prune() {
	psql_q "drop table analytics_bob.report" || return 1
	expect_exit 0 sluice cache prune --older-than 30d || return 1
	expect_grep "^0 records forgotten$" "$T_DIR/out" || return 1
	expect_exit 0 sluice cache prune --older-than 0s --dry-run || return 1
	expect_grep "^would forget dev_bob model.proj.report \(analytics_bob.report is gone; built [0-9]+[smhd] ago by tester\)$" "$T_DIR/out" ||
		return 1
	expect_eq 1 "$(psql_q "select count(*) from sluice_meta.node_state where target = 'dev_bob' and unique_id = 'model.proj.report'")" ||
		return 1
	expect_exit 0 sluice cache prune --older-than 0s || return 1
	expect_grep "^forgot dev_bob model.proj.report " "$T_DIR/out" || return 1
	expect_no_grep "forgot [a-z_]+ model.proj.stg_orders" "$T_DIR/out" || return 1
	expect_eq 0 "$(psql_q "select count(*) from sluice_meta.node_state where target = 'dev_bob' and unique_id = 'model.proj.report'")" ||
		return 1
	plan_out --target dev_bob || return 1
	expect_line "never built" "$(plan_reasons report)" || return 1
	expect_exit 2 sluice cache prune || return 1
	expect_grep "older-than takes an age such as 30d" "$T_DIR/out"
}
ok "cache prune --older-than forgets only records whose relation is gone and old enough" t_cache_prune

t_cli_reuse() {
	expect_exit 0 sluice plan --target dev_alice --reuse-from prod --format json || return 1
	expect_exit 2 sluice compile --reuse-from prod || return 1
	expect_grep "reuse-from is for run, build and plan" "$T_DIR/out"
}
ok "--reuse-from is taken by plan and refused by compile" t_cli_reuse

# --- the same through S3 state, two project directories -----------------------------------

if [ -n "${SLUICE_TEST_S3_UNAVAILABLE:-}" ] || [ -z "${SLUICE_TEST_S3_ENDPOINT:-}" ]; then
	done_testing
	exit 0
fi
PREFIX="t1200-$$-$(date +%s)"
export T1200_SECRET="t1200-secret-$$"
for d in prodbox alicebox; do
	rm -rf "$T_DIR/$d"
	cp -r "$P" "$T_DIR/$d" || exit 1
	rm -rf "$T_DIR/$d/.sluice" "$T_DIR/$d/target"
	sed -i "s|^state: warehouse|state: s3://$SLUICE_TEST_S3_BUCKET/$PREFIX/|" "$T_DIR/$d/sluice.yml"
	sed -i 's/analytics_prod/s3_prod/; s/analytics_alice/s3_alice/' "$T_DIR/$d/profiles.yml"
	for t in prod dev_alice; do
		sed -i "/^    $t:\$/a\\
      s3:\\
        endpoint: \"$SLUICE_TEST_S3_ENDPOINT\"\\
        region: \"$SLUICE_TEST_S3_REGION\"\\
        access_key_id: \"$SLUICE_TEST_S3_ACCESS_KEY_ID\"\\
        secret_access_key: \"{{ env_var('T1200_SECRET') }}\"" "$T_DIR/$d/profiles.yml"
	done
done

t_s3() {
	cd "$T_DIR/prodbox" || return 1
	expect_exit 0 sluice run --target prod || return 1
	cd "$T_DIR/alicebox" || return 1
	model report "{{ config(materialized='table') }}
select total * 3 as tripled from {{ ref('mart_a') }}"
	plan_out --target dev_alice || return 1
	expect_eq "$(models_map reuse report=build)" "$(plan_actions)" || return 1
	expect_exit 0 sluice run --target dev_alice || return 1
	expect_eq VIEW "$(psql_q "select 'VIEW' from information_schema.views where table_schema = 's3_alice' and table_name = 'mart_a'")" ||
		return 1
	expect_eq "$(psql_q "select total * 3 from s3_prod.mart_a")" "$(psql_q "select tripled from s3_alice.report")" || return 1
	[ ! -e .sluice/state ] || { echo ".sluice/state was written"; return 1; }
}
ok "S3 state, two project directories: Alice's changed report builds on prod's mart_a through a view" t_s3

done_testing
