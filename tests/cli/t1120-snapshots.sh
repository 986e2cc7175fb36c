#!/usr/bin/env bash
# t1120: snapshots (SCD type 2) as dbt documents them, over three days of
# changes to a source, a hard delete among them (tests/fixtures/
# dbt-snapshots/days): the timestamp strategy with hard deletes
# invalidated, the check strategy with a two-column unique_key, compared
# row for row with expected/; reuse when the source did not change; one
# transaction, so a failed run leaves the table as it was.
. "$(dirname "$0")/lib.sh"

FIX="$(cd "$(dirname "$0")/../fixtures/dbt-snapshots" && pwd)"
new_dbt_project hist dbt-snapshots

# run_day N: the source as on day N, then sluice snapshot; the run's time
# span goes to $T_DIR/runN (the server's clock, before and after).
run_day() {
	psql_q "$(cat "days/day$1.sql")" >/dev/null &&
	psql_q "select now()::timestamp" >"$T_DIR/run$1" &&
	expect_exit 0 sluice snapshot || return 1
	psql_q "select now()::timestamp" >>"$T_DIR/run$1" &&
	expect_grep 'Done in .*: 2 ok, 0 error' "$T_DIR/out"
}
ok "day 1: the first snapshot creates both tables" run_day 1
ok "day 2: updates, a delete and an insert" run_day 2
ok "day 3: updates and a key coming back" run_day 3

# A deleted key is closed at the time of the run that saw it gone.
t_timestamp_rows() {
	r2_from=$(sed -n 1p "$T_DIR/run2") && r2_to=$(sed -n 2p "$T_DIR/run2") &&
	psql_q "select id, name, tier, updated_at, dbt_updated_at, dbt_valid_from,
		case when dbt_valid_to between '$r2_from' and '$r2_to' then 'run 2' else coalesce(dbt_valid_to::text, '') end
		from snapshots.customers_ts order by id, dbt_valid_from" >"$T_DIR/ts" || return 1
	diff -u "$FIX/expected/customers_ts.txt" "$T_DIR/ts"
}
ok "timestamp strategy: every version, row for row as dbt documents it" t_timestamp_rows

t_scd_ids() {
	expect_eq "8|0" "$(psql_q "select count(*), count(*) filter (where dbt_scd_id <>
		md5(coalesce(cast(id as varchar), '') || '|' || coalesce(cast(updated_at as varchar), '')))
		from snapshots.customers_ts")" &&
	expect_eq "6|0" "$(psql_q "select count(*), count(*) filter (where dbt_scd_id <>
		md5(coalesce(cast(id as varchar), '') || '|' || coalesce(cast(region as varchar), '') || '|' ||
		    coalesce(cast(dbt_valid_from as varchar), '')))
		from snapshots.customers_check")"
}
ok "dbt_scd_id is the hash of the key and the version's time" t_scd_ids

# run_case COLUMN: SQL naming the run whose time span holds COLUMN's value
# ("run 1", ...), else the value as text ('' for NULL).
run_case() {
	printf 'case'
	for k in 1 2 3; do
		printf " when %s between '%s' and '%s' then 'run %s'" "$1" \
			"$(sed -n 1p "$T_DIR/run$k")" "$(sed -n 2p "$T_DIR/run$k")" "$k"
	done
	printf " else coalesce(%s::text, '') end" "$1"
}

# Run k's versions start at run k's time.
t_check_rows() {
	psql_q "select id, region, name, tier, $(run_case dbt_valid_from), $(run_case dbt_valid_to)
		from snapshots.customers_check order by id, dbt_valid_from" >"$T_DIR/check" || return 1
	diff -u "$FIX/expected/customers_check.txt" "$T_DIR/check"
}
ok "check strategy: a new version only when a checked column changed; deletes ignored" t_check_rows

t_reuse() {
	expect_exit 0 sluice snapshot || return 1
	expect_grep 'REUSED snapshot snapshots\.customers_ts' "$T_DIR/out" &&
	expect_eq "8" "$(psql_q 'select count(*) from snapshots.customers_ts')"
}
ok "an unchanged source: the snapshot is reused" t_reuse

t_failed_run_keeps_table() {
	psql_q "alter table lake.customers add column extra int default 1" >/dev/null &&
	cat >snapshots/wide.sql <<'SQL' &&
{% snapshot customers_wide %}
{{ config(unique_key='id', strategy='check', check_cols='all') }}
select * from {{ source('lake', 'customers') }}
{% endsnapshot %}
SQL
	expect_exit 0 sluice snapshot -s customers_wide || return 1
	psql_q "update lake.customers set tier = 'x' where id = 4;
		alter table lake.customers alter column extra type text using 'not a number'" >/dev/null &&
	expect_exit 1 sluice snapshot -s customers_wide || return 1
	expect_eq "4|4" "$(psql_q "select count(*), count(*) filter (where dbt_valid_to is null)
		from snapshots.customers_wide")"
}
ok "a failed snapshot leaves its table as it was (one transaction)" t_failed_run_keeps_table

t_build_dag() {
	psql_q "alter table lake.customers drop column extra" >/dev/null &&
	rm snapshots/wide.sql &&
	expect_exit 0 sluice build || return 1
	expect_grep 'OK view analytics\.current_customers' "$T_DIR/out" &&
	expect_eq "1|Ann|diamond
2|Bob|silver
3|Cy|bronze
4|Di|gold" "$(psql_q 'select * from analytics.current_customers order by id')"
}
ok "sluice build runs snapshots before the models that read them (timestamp: no new updated_at, no new version)" t_build_dag

t_yaml_form() {
	cat >snapshots/snaps.yml <<'YML' &&
snapshots:
  - name: customers_yaml
    relation: source('lake', 'customers')
    config:
      unique_key: id
      strategy: check
      check_cols: all
      hard_deletes: invalidate
YML
	expect_exit 0 sluice snapshot -s customers_yaml || return 1
	psql_q "delete from lake.customers where id = 4" >/dev/null &&
	expect_exit 0 sluice snapshot -s customers_yaml || return 1
	expect_eq "1|t
2|t
3|t
4|f" "$(psql_q 'select id, dbt_valid_to is null from snapshots.customers_yaml order by id')"
}
ok "dbt 1.9's YAML snapshots: relation: and config:" t_yaml_form

done_testing
