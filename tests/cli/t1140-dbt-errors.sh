#!/usr/bin/env bash
# t1140: errors as a dbt user meets them: every project error in one run
# (at most 50, then how many more), each naming file:line:col, through
# every command; a ref to a seed or a snapshot that was never built says
# which command builds it; YAML read as dbt reads it: a duplicate key keeps
# its last value with a warning, and properties of a model that does not
# exist are a warning, not an error.
. "$(dirname "$0")/lib.sh"
TOP=$(pwd)   # new_dbt_project finds the fixtures from here

# ---- every error in one run ------------------------------------------------

new_project broken
model a "select 1 as id"
model b "select *
from {{ ref('nope') }}
join {{ ref('aa') }} using (id)"
model c "select * from {{ source('lake', 'missing') }}" staging
model d "select {{ oops" staging
model e "select * from {{ ref('b') }} join {{ ref('gone') }} using (id)" marts
cat >models/schema.yml <<'YML'
version: 2
models:
  - name: a
    config: [table]
YML
mkdir -p tests &&
printf 'select * from {{ ref("e") }} join {{ ref("zz") }} using (id)\n' >tests/no_orphans.sql

# the errors of the project above, in the order the loader finds them
BROKEN="models/schema.yml:4:13: config must be a map
models/staging/d.sql:1:8: unclosed '{{' (expected '}}')
models/b.sql:2:9: unknown ref 'nope'
models/b.sql:3:9: unknown ref 'aa' (did you mean 'a'?)
models/marts/e.sql:1:38: unknown ref 'gone'
models/staging/c.sql:1:18: unknown source 'lake.missing' (declare it under sources: in a properties file)
tests/no_orphans.sql:1:38: unknown ref 'zz'"

t_all_errors() {
	expect_exit 2 sluice compile || return 1
	expect_eq "$BROKEN" "$(sed 's/^sluice: error: //' "$T_DIR/out")"
}
ok "one run shows every broken ref, source, template, property and test, each with file:line:col" t_all_errors

# Every command loads the project the same way.
t_every_command() {
	for cmd in ls compile run build plan test seed snapshot debug graph sources; do
		expect_exit 2 sluice $cmd || { echo "(sluice $cmd)"; return 1; }
		expect_eq "$BROKEN" "$(sed 's/^sluice: error: //' "$T_DIR/out")" || { echo "(sluice $cmd)"; return 1; }
	done
}
ok "ls, compile, run, build, plan, test, seed, snapshot, debug, graph, sources: all of them" t_every_command

t_sixty() {
	new_project sixty || return 1
	for i in $(seq 1 60); do
		model "m$i" "select * from {{ ref('missing_$i') }}" || return 1
	done || return 1
	expect_exit 2 sluice ls || return 1
	expect_eq 50 "$(grep -c "^sluice: error: models/m[0-9]*\.sql:1:18: unknown ref 'missing_[0-9]*'$" "$T_DIR/out")" &&
	expect_eq "sluice: error: ... and 10 more errors" "$(tail -n 1 "$T_DIR/out")" &&
	expect_eq 51 "$(wc -l <"$T_DIR/out")"
}
ok "60 errors: the first 50, then how many more" t_sixty

# The size of a large dbt project: one run, not hundreds.
t_large() {
	new_project large || return 1
	for i in $(seq 1 1200); do
		if [ $((i % 4)) = 0 ]; then
			printf "select * from {{ ref('gone_%d') }}\n" "$i" >"models/m$i.sql" || return 1
		else
			printf 'select %d as id\n' "$i" >"models/m$i.sql" || return 1
		fi
	done || return 1
	expect_exit 2 sluice compile || return 1
	expect_eq 50 "$(grep -c "^sluice: error: models/m[0-9]*\.sql:1:18: unknown ref 'gone_[0-9]*'$" "$T_DIR/out")" &&
	expect_eq "sluice: error: ... and 250 more errors" "$(tail -n 1 "$T_DIR/out")"
}
ok "1,200 models, 300 broken refs: one run shows 50 and counts the 250 more" t_large

# A typo in sources.yml hides the sources it declares: the typo is the
# error, not every source() that reads them.
t_no_cascade() {
	new_project cascade &&
	sources_yml lake orders customers &&
	printf '    oops\n' >>models/sources.yml &&
	model a "select * from {{ source('lake', 'orders') }}" &&
	model b "select * from {{ source('lake', 'customers') }} join {{ ref('nope') }} using (id)" &&
	expect_exit 2 sluice ls || return 1
	expect_eq "sluice: error: models/sources.yml:8:1: could not find expected ':' (while scanning a simple key at line 7)
sluice: error: models/b.sql:1:57: unknown ref 'nope'" "$(cat "$T_DIR/out")"
}
ok "a broken properties file is one error, not one per source() it declared" t_no_cascade

t_one_error() {
	new_project one &&
	model a "select 1 as id" &&
	model b "select * from {{ ref('aa') }}" &&
	expect_exit 2 sluice run || return 1
	expect_eq "sluice: error: models/b.sql:1:18: unknown ref 'aa' (did you mean 'a'?)" "$(cat "$T_DIR/out")"
}
ok "one error reads as before" t_one_error

# ---- what is really wrong with a ref ------------------------------------------

cd "$TOP" || exit 1
new_dbt_project shop
mkdir -p snapshots &&
cat >snapshots/customers_snap.sql <<'SQL'
{% snapshot customers_snap %}
{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols='all') }}
select * from {{ ref('raw_customers') }}
{% endsnapshot %}
SQL
model from_snap "select * from {{ ref('customers_snap') }}" marts

t_seed_not_built() {
	expect_exit 1 sluice run -s stg_customers from_snap || return 1
	expect_grep "ERROR.*stg_customers" "$T_DIR/out" &&
	expect_grep "'raw_customers' is a seed: run sluice seed \(analytics_raw\.raw_customers does not exist\)" "$T_DIR/out" &&
	expect_grep "'customers_snap' is a snapshot: run sluice snapshot \(snapshots\.customers_snap does not exist\)" "$T_DIR/out" &&
	expect_no_grep "does not exist.*relation|relation .* does not exist" "$T_DIR/out"
}
ok "a ref to a seed or a snapshot never built says which command builds it" t_seed_not_built

t_plan_seed_not_built() {
	sluice plan -s stg_customers >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep "^error  stg_customers: 'raw_customers' is a seed: run sluice seed" "$T_DIR/out"
}
ok "sluice plan says so before anything runs" t_plan_seed_not_built

t_test_seed_not_built() {
	expect_exit 1 sluice test -s raw_customers || return 1
	expect_grep "'raw_customers' is a seed: run sluice seed" "$T_DIR/out"
}
ok "sluice test on a seed never loaded says so too" t_test_seed_not_built

t_after_seed() {
	expect_exit 0 sluice seed && expect_exit 0 sluice snapshot && expect_exit 0 sluice run || return 1
	expect_no_grep "is a (seed|snapshot)" "$T_DIR/out" &&
	expect_eq "5" "$(psql_q 'select count(*) from analytics_marts.from_snap')"
}
ok "once seeded and snapshotted, run builds them" t_after_seed

# ---- YAML as dbt reads it ---------------------------------------------------------

t_duplicate_key() {
	cat >>dbt_project.yml <<'YML'
vars:
  min_amount: 7
YML
	model uses_var "select {{ var('min_amount') }} as m" &&
	expect_exit 0 sluice compile -s uses_var || return 1
	line=$(grep -n '^vars:' dbt_project.yml | tail -n 1 | cut -d: -f1) || return 1
	expect_grep "^sluice: warning: dbt_project\.yml:$line:1: duplicate key 'vars' \(first at line [0-9]+\): the last value is used$" "$T_DIR/out" &&
	expect_grep "select 7 as m" target/compiled/models/uses_var.sql
}
ok "a duplicate key warns with file:line and its last value wins" t_duplicate_key

t_duplicate_key_sluice_yml() {
	new_project dup &&
	printf 'vars:\n  x: 1\n  x: 2\n' >>sluice.yml &&
	model m "select {{ var('x') }} as x" &&
	expect_exit 0 sluice compile || return 1
	expect_grep "^sluice: warning: sluice\.yml:5:3: duplicate key 'x' \(first at line 4\): the last value is used$" "$T_DIR/out" &&
	expect_grep "select 2 as x" target/compiled/models/m.sql
}
ok "the same in sluice.yml" t_duplicate_key_sluice_yml

t_props_missing_model() {
	model kept "select 1 as id" &&
	cat >models/schema.yml <<'YML' &&
version: 2
models:
  - name: kept
    description: here
  - name: removed_long_ago
    description: its file is gone
YML
	expect_exit 0 sluice run || return 1
	expect_grep "^sluice: warning: models/schema\.yml:5:11: properties for unknown model 'removed_long_ago': ignored$" "$T_DIR/out" &&
	expect_grep "OK .*analytics\.kept" "$T_DIR/out"
}
ok "properties of a model that does not exist: a warning, and the run works" t_props_missing_model

done_testing
