#!/usr/bin/env bash
# t0070: `sluice compile` needs no database: it renders SQL and the exact
# statements into target/, and writes manifest.json.
. "$(dirname "$0")/lib.sh"

new_project comp
# A server that is not there: compile must not need it.
cat >profiles.yml <<'YML'
proj:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 1
      user: nobody
      password: nothing
      dbname: nowhere
      schema: analytics
YML
cat >>sluice.yml <<'YML'
vars:
  greeting: hello
YML
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: s
    schema: raw
    tables:
      - name: t
YML
model x "{{ config(materialized='table') }}
select {{ var('n') }} as n,
       '{{ var('greeting') }}' as g,
       '{{ env_var('SLUICE_T_ENV', 'dflt') }}' as e"
model y "select n from {{ ref('x') }}" sub
model z "select * from {{ source('s', 't') }}"
model inc "{{ config(materialized='incremental', unique_key='id') }}
select id from {{ source('s', 't') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}"
cat >models/props.yml <<'YML'
models:
  - name: z
    columns:
      - name: id
        tests: [not_null]
YML

unset SLUICE_T_ENV
ok "compile with an unreachable server exits 0" expect_exit 0 sluice compile --vars '{n: 42}'

t_tests_compiled() {
	f=target/compiled/models/props.yml/not_null_z_id.sql
	expect_grep '"analytics"\."z"' "$f" || return 1
	expect_grep '"id" IS NULL' "$f"
}
ok "data tests compile too: target/compiled/models/props.yml/not_null_z_id.sql selects the failing rows" t_tests_compiled

t_compiled() {
	f=target/compiled/models/x.sql
	expect_grep "42 as n" "$f" || return 1
	expect_grep "'hello' as g" "$f" || return 1
	expect_grep "'dflt' as e" "$f" || return 1
	expect_no_grep "\{\{|\{%" "$f"
}
ok "target/compiled/models/x.sql: --vars, sluice.yml vars and env_var default rendered" t_compiled

t_ref_quoted() {
	expect_grep 'from "analytics"\."x"' target/compiled/models/sub/y.sql || return 1
	expect_grep 'from "raw"\."t"' target/compiled/models/z.sql
}
ok "ref and source render as quoted \"schema\".\"name\" relations" t_ref_quoted

t_run_statements() {
	f=target/run/models/x.sql
	expect_grep 'CREATE TABLE "analytics"\."x__sluice_new"' "$f" || return 1
	expect_grep 'RENAME TO "x"' "$f" || return 1
	expect_grep "42 as n" "$f" || return 1
	expect_grep 'CREATE VIEW "analytics"\."y__sluice_new"' target/run/models/sub/y.sql || return 1
	expect_grep 'RENAME TO "y"' target/run/models/sub/y.sql
}
ok "target/run/models holds the CREATE ... and ALTER ... RENAME statements" t_run_statements

t_incremental_first_build() {
	expect_no_grep 'max\(id\)' target/compiled/models/inc.sql || return 1
	expect_grep 'CREATE TABLE' target/run/models/inc.sql || return 1
	expect_no_grep 'MERGE' target/run/models/inc.sql
}
ok "an incremental model compiles as its first build" t_incremental_first_build

t_manifest() {
	m=target/manifest.json
	expect_eq '["model.proj.x"]' "$(jq -c '.nodes["model.proj.y"].depends_on.nodes' $m)" || return 1
	expect_eq '["source.proj.s.t"]' "$(jq -c '.nodes["model.proj.z"].depends_on.nodes' $m)" || return 1
	expect_eq '[]' "$(jq -c '.nodes["model.proj.x"].depends_on.nodes' $m)" || return 1
	expect_eq '"analytics"."x"' "$(jq -r '.nodes["model.proj.x"].relation_name' $m)" || return 1
	expect_eq 'table view view incremental' \
		"$(jq -r '[.nodes["model.proj.x", "model.proj.y", "model.proj.z", "model.proj.inc"].materialized] | join(" ")' $m)" || return 1
	expect_eq 'models/sub/y.sql' "$(jq -r '.nodes["model.proj.y"].path' $m)" || return 1
	expect_eq '["model.proj.y"]' "$(jq -c '.child_map["model.proj.x"]' $m)" || return 1
	expect_eq 'proj' "$(jq -r '.metadata.project_name' $m)" || return 1
	expect_eq 1 "$(jq '.sources | length' $m)"
}
ok "manifest.json: nodes with depends_on, relation_name, materialized, path; child_map; sources" t_manifest

t_manifest_fields() {
	m=target/manifest.json
	expect_eq true "$(jq '.metadata | [.sluice_version, .generated_at, .invocation_id, .project_name, .user, .target]
		| map(type == "string") | all' $m)" || { jq .metadata $m; return 1; }
	expect_eq "0.1.0 tester dev" "$(jq -r '.metadata | "\(.sluice_version) \(.user) \(.target)"' $m)" || return 1
	for k in unique_id name resource_type path materialized config depends_on relation_name schema alias tags fqn compiled_path; do
		expect_eq true "$(jq --arg k $k '.nodes["model.proj.y"] | has($k)' $m)" || { echo "node lacks $k"; return 1; }
	done
	expect_eq '["proj","sub","y"]' "$(jq -c '.nodes["model.proj.y"].fqn' $m)" || return 1
	expect_eq 'analytics x' "$(jq -r '.nodes["model.proj.x"] | "\(.schema) \(.alias)"' $m)"
}
ok "manifest.json: metadata and node fields as documented" t_manifest_fields

t_env_var_set() {
	export SLUICE_T_ENV=from-env
	expect_exit 0 sluice compile --vars '{"n": 7, "greeting": "hey"}' || return 1
	expect_grep "7 as n" target/compiled/models/x.sql || return 1
	expect_grep "'hey' as g" target/compiled/models/x.sql || return 1
	expect_grep "'from-env' as e" target/compiled/models/x.sql
}
ok "env_var takes the environment's value; JSON --vars override sluice.yml vars" t_env_var_set

t_deterministic() {
	sluice compile --vars '{n: 42}' >/dev/null 2>&1 || return 1
	cp -r target/compiled "$T_DIR/c1" || return 1
	sluice compile --vars '{n: 42}' >/dev/null 2>&1 || return 1
	diff -r "$T_DIR/c1" target/compiled
}
ok "compiling twice gives the same files byte for byte" t_deterministic

t_missing_var() {
	expect_exit 2 sluice compile || return 1
	expect_grep "models/x\.sql:2:11: .*'n'" "$T_DIR/out"
}
ok "without --vars the undefined var n is an error at models/x.sql:2:11" t_missing_var

# Where profiles.yml comes from, and which output: docs/profiles.md.
t_profiles_dir() {
	mkdir -p "$T_DIR/profiles"
	cat >"$T_DIR/profiles/profiles.yml" <<'YML'
proj:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 1
      dbname: nowhere
      schema: from_dir
    prod:
      type: postgres
      host: 127.0.0.1
      port: 1
      dbname: nowhere
      schema: "{{ env_var('SLUICE_T_SCHEMA', 'prod_default') }}"
YML
	expect_exit 0 sluice compile --vars '{n: 1}' --profiles-dir "$T_DIR/profiles" || return 1
	expect_grep 'from "from_dir"\."x"' target/compiled/models/sub/y.sql || return 1
	expect_exit 0 sluice compile --vars '{n: 1}' --profiles-dir "$T_DIR/profiles" --target prod || return 1
	expect_grep 'from "prod_default"\."x"' target/compiled/models/sub/y.sql || return 1
	export SLUICE_T_SCHEMA=prod_env
	expect_exit 0 sluice compile --vars '{n: 1}' --profiles-dir "$T_DIR/profiles" --target prod || return 1
	expect_grep 'from "prod_env"\."x"' target/compiled/models/sub/y.sql
}
ok "--profiles-dir wins over the project's profiles.yml; --target picks an output; env_var in a profile" t_profiles_dir

t_profiles_env() {
	export SLUICE_PROFILES_DIR=$T_DIR/profiles
	expect_exit 0 sluice compile --vars '{n: 1}' || return 1
	expect_grep 'from "from_dir"\."x"' target/compiled/models/sub/y.sql || return 1
	expect_exit 0 sluice compile --vars '{n: 1}' -t prod || return 1
	expect_grep 'from "prod_default"\."x"' target/compiled/models/sub/y.sql
}
ok "\$SLUICE_PROFILES_DIR wins over the project's profiles.yml; -t picks an output" t_profiles_env

t_unknown_target() {
	expect_exit 2 sluice compile --vars '{n: 1}' --target nope || return 1
	expect_grep "nope" "$T_DIR/out"
}
ok "an unknown --target exits 2 and names it" t_unknown_target

done_testing
