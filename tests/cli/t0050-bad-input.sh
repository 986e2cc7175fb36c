#!/usr/bin/env bash
# t0050: mistakes in the project or on the command line exit 2 with a
# message naming the place (file:line:col); connection failures exit 3,
# and a password never shows in any output.
. "$(dirname "$0")/lib.sh"

# fails_with PATTERN COMMAND...: exit 2 and PATTERN (grep -E) in the output.
fails_with() {
	pat=$1
	shift
	expect_exit 2 "$@" || return 1
	expect_grep "$pat" "$T_DIR/out"
}

new_project cycle
model a "select * from {{ ref('b') }}"
model b "select * from {{ ref('a') }}"
ok "a cycle exits 2 with its path and a ref's location" \
	fails_with "models/[ab]\.sql:1:18: .*(a -> b -> a|b -> a -> b)" sluice run
ok "ls reports the cycle too" fails_with "(a -> b -> a|b -> a -> b)" sluice ls

new_project unknown_ref
model stg_orders "select 1 as id"
model orders "-- orders
select *
from {{ ref('stg_order') }}"
ok "an unknown ref names the place and suggests the near name" \
	fails_with "(^|[ :])models/orders\.sql:3:9: unknown ref 'stg_order' \(did you mean 'stg_orders'\?\)" sluice run

new_project unknown_source
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: patients
YML
model p "select *
  from {{ source('lake', 'patient') }}"
ok "an unknown source names the place and the source" \
	fails_with "models/p\.sql:2:11: unknown source 'lake\.patient'" sluice run

new_project dup
model dup "select 1 as id" a
model dup "select 2 as id" b
t_dup() {
	fails_with "models/a/dup\.sql" sluice run || return 1
	expect_grep "models/b/dup\.sql" "$T_DIR/out"
}
ok "duplicate model names: exit 2 naming both files" t_dup

new_project unclosed
model bad_if "select 1 as id
{% if true %}
, 2 as two"
ok "an unclosed {% if %}: end of file, and where it was opened" \
	fails_with "models/bad_if\.sql:4:1: unclosed \{% if %\} opened at 2:1" sluice compile

new_project undefined
model uv "select
    {{ var('nope') }} as x"
ok "an undefined var names the place and the var" \
	fails_with "models/uv\.sql:2:8: .*'nope'" sluice compile
model uv "select 1 as x"
model un "select {{ colums }} as x"
ok "an undefined name: models/un.sql:1:11: undefined name 'colums'" \
	fails_with "models/un\.sql:1:11: undefined name 'colums'" sluice compile

new_project bad_project_yaml
printf 'name: proj\nprofile: proj\n  bad: indent\n' >sluice.yml
model a "select 1 as id"
ok "bad YAML in sluice.yml: sluice.yml:3:6" fails_with "(^|[ :])sluice\.yml:3:6: " sluice run

new_project bad_props_yaml
model a "select 1 as id"
printf 'version: 2\nmodels:\n  - name: a\n    description: a: b\n' >models/props.yml
ok "bad YAML in a property file: models/props.yml:4:19" \
	fails_with "(^|[ :])models/props\.yml:4:19: " sluice run

new_project bad_mat
model mat "{{ config(materialized='tabel') }}
select 1 as id"
ok "an unknown materialization: place and suggestion" \
	fails_with "models/mat\.sql:1:4: .*unknown materialization 'tabel'.*did you mean 'table'" sluice run

new_project bad_conn
cat >>profiles.yml <<YML
      connections:
        lake:
$(conn_keys "          ")
YML
model conn "{{ config(connection='lakee') }}
select 1 as id"
ok "an unknown connection name: place and name" \
	fails_with "models/conn\.sql:1:4: .*unknown connection 'lakee'" sluice run

new_project bad_props
model orders "select 1 as id"
printf 'version: 2\nmodels:\n  - name: ordrs\n    description: typo\n' >models/props.yml
# dbt ignores them with a warning: a model removed, its YAML left behind
t_props_unknown_model() {
	expect_exit 0 sluice ls || return 1
	expect_grep "warning: models/props\.yml:3:11: .*'ordrs'.*did you mean 'orders'" "$T_DIR/out"
}
ok "properties for a model that does not exist: a warning with place and suggestion" t_props_unknown_model

new_project bad_cli
model a "select 1 as id"
ok "bad --vars exits 2 naming --vars" fails_with "--vars" sluice compile --vars '{a: [1'
ok "an unknown selector method exits 2 naming the selector" fails_with "bogus:x" sluice ls -s bogus:x
ok "a selector without a value exits 2 naming it" fails_with "'tag:'" sluice run -s tag:

ok "none of the above touched the database" \
	expect_eq 0 "$(psql_q "select count(*) from pg_namespace where nspname like 'analytics%'")"

# -- connection errors ----------------------------------------------------
# profile PORT PASSWORD: point the current project at PORT with PASSWORD.
profile() {
	cat >profiles.yml <<YML
proj:
  target: dev
  outputs:
    dev:
$(conn_keys "      " "$T_DB" "$1" "$2")
      schema: analytics
YML
}

new_project closed
profile 1 x
model a "{{ config(materialized='table') }}
select 1 as id"
t_closed() {
	expect_exit 3 sluice run || return 1
	expect_grep "127\.0\.0\.1|refused|connect" "$T_DIR/out" || return 1
	expect_exit 3 sluice debug
}
ok "a server that is not there: run and debug exit 3" t_closed

BADPW=wrong-Pa55word-xyzzy
new_project badpw
profile "$SLUICE_TEST_PGPORT" "$BADPW"
model a "{{ config(materialized='table') }}
select 1 as id"
t_badpw() {
	expect_exit 3 sluice run || return 1
	expect_grep "password authentication failed" "$T_DIR/out" || return 1
	expect_no_grep "$BADPW" "$T_DIR/out" || return 1
	expect_exit 3 sluice run --log-format json || return 1
	expect_no_grep "$BADPW" "$T_DIR/out"
}
ok "a wrong password exits 3 and the output does not contain it" t_badpw

t_badpw_debug() {
	expect_exit 3 sluice debug || return 1
	expect_no_grep "$BADPW" "$T_DIR/out" || return 1
	if [ -d target ] && grep -rq "$BADPW" target; then
		echo "the password is in target/:"
		grep -rl "$BADPW" target
		return 1
	fi
}
ok "debug with a wrong password exits 3 without printing it, nor in target/" t_badpw_debug

new_project goodpw
profile "$SLUICE_TEST_PGPORT" "$SLUICE_TEST_PGPASSWORD"
model a "{{ config(materialized='table') }}
select 1 as id"
t_goodpw() {
	expect_exit 0 sluice debug || return 1
	expect_no_grep "$SLUICE_TEST_PGPASSWORD" "$T_DIR/out" || return 1
	expect_grep "postgres" "$T_DIR/out" || return 1
	ver=$(psql_q "show server_version" | cut -d' ' -f1) || return 1
	expect_grep "$ver" "$T_DIR/out" || return 1
	expect_grep "[0-9.]+ ?ms" "$T_DIR/out" || return 1
	expect_exit 0 sluice run --log-format json || return 1
	expect_no_grep "$SLUICE_TEST_PGPASSWORD" "$T_DIR/out" || return 1
	if grep -rq "$SLUICE_TEST_PGPASSWORD" target; then
		echo "the password is in target/:"
		grep -rl "$SLUICE_TEST_PGPASSWORD" target
		return 1
	fi
}
ok "debug shows the server version and latency; debug and run never print the password, nor write it in target/" t_goodpw

done_testing
