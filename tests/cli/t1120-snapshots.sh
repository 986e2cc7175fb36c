#!/usr/bin/env bash
# t1120: snapshots (SCD type 2) as dbt documents them, over three days of
# changes to a source: updates, an insert, a hard delete and the key
# coming back (tests/fixtures/dbt-snapshots/days). The timestamp strategy
# with hard deletes invalidated, the check strategy with a two-column
# unique_key, and hard_deletes: new_record under both strategies (the
# check one with dbt_valid_to_current and renamed meta columns), each
# table compared whole, row for row, with expected/; new source columns
# added to an existing table; reuse when the source did not change; one
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
	expect_grep 'Done in .*: 4 ok, 0 error' "$T_DIR/out"
}
ok "day 1: the first snapshot creates every table" run_day 1
ok "day 2: updates, a delete and an insert" run_day 2
ok "day 3: updates and a key coming back" run_day 3

# expect_table TABLE ORDER TIMES EXPECTED: TABLE's rows (select *, ordered
# by ORDER) are expected/EXPECTED's, where Rk stands for the time run k
# wrote (the one value of the TIMES columns inside run k's time span) and
# #(text) for md5(text): dbt_scd_id as dbt computes it, outside the
# database. A run that wrote two different times fails.
expect_table() {
	subst= union=
	for c in $3; do union="${union:+$union union }select $c as v from $1"; done
	for k in 1 2 3; do
		psql_q "select distinct v::text from ($union) u where v between '$(sed -n 1p "$T_DIR/run$k")' and '$(sed -n 2p "$T_DIR/run$k")'" >"$T_DIR/times" || return 1
		if [ "$(wc -l <"$T_DIR/times")" -gt 1 ]; then
			echo "run $k wrote several times into $1:" && cat "$T_DIR/times" && return 1
		fi
		subst="$subst s/R$k/$(cat "$T_DIR/times")/g;" || return 1
	done
	perl -MDigest::MD5=md5_hex -pe "$subst"' 1 while s/#\(([^()#]*)\)/md5_hex($1)/e' "$FIX/expected/$4" >"$T_DIR/expected" &&
	psql_q "select * from $1 order by $2" >"$T_DIR/actual" &&
	diff -u "$T_DIR/expected" "$T_DIR/actual"
}

ok "timestamp strategy, deletes invalidated: every version, row for row as dbt documents it" \
	expect_table snapshots.customers_ts "id, dbt_valid_from" "dbt_valid_to" customers_ts.txt
ok "check strategy: a new version only when a checked column changed; deletes ignored" \
	expect_table snapshots.customers_check "id, dbt_valid_from" "dbt_valid_from dbt_valid_to" customers_check.txt
ok "hard_deletes new_record (timestamp): a deletion row at the run's time, closed when the key comes back" \
	expect_table snapshots.customers_nr "id, dbt_valid_from" "dbt_valid_from dbt_valid_to" customers_nr.txt
ok "new_record (check), dbt_valid_to_current and snapshot_meta_column_names" \
	expect_table snapshots.customers_nr_check "id, valid_from" "valid_from valid_to" customers_nr_check.txt

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
		alter table lake.customers add column fresh int;
		alter table lake.customers alter column extra type text using 'not a number'" >/dev/null &&
	expect_exit 1 sluice snapshot -s customers_wide || return 1
	expect_eq "4|4" "$(psql_q "select count(*), count(*) filter (where dbt_valid_to is null)
		from snapshots.customers_wide")" &&
	expect_eq "0" "$(psql_q "select count(*) from information_schema.columns
		where table_schema = 'snapshots' and table_name = 'customers_wide' and column_name = 'fresh'")"
}
ok "a failed snapshot leaves its table as it was, new columns included (one transaction)" t_failed_run_keeps_table

t_build_dag() {
	psql_q "alter table lake.customers drop column extra, drop column fresh" >/dev/null &&
	rm snapshots/wide.sql &&
	expect_exit 0 sluice build || return 1
	expect_grep 'OK view analytics\.current_customers' "$T_DIR/out" &&
	expect_eq "1|Ann|diamond
2|Bob|silver
3|Cy|bronze
4|Di|gold" "$(psql_q 'select * from analytics.current_customers order by id')"
}
ok "sluice build runs snapshots before the models that read them (timestamp: no new updated_at, no new version)" t_build_dag

# dbt adds a column new in the query to the table (at its end); older
# versions get NULL. The check strategy then counts every row as changed.
t_new_columns() {
	cat >snapshots/wide.sql <<'SQL' &&
{% snapshot wide_ts %}
{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at') }}
select * from {{ source('lake', 'customers') }}
{% endsnapshot %}

{% snapshot wide_check %}
{{ config(unique_key='id', strategy='check', check_cols='all') }}
select * from {{ source('lake', 'customers') }}
{% endsnapshot %}
SQL
	expect_exit 0 sluice snapshot -s wide_ts wide_check || return 1
	psql_q "alter table lake.customers add column email text;
		update lake.customers set email = 'ann@example.com', updated_at = '2024-01-04 08:00' where id = 1" >/dev/null &&
	expect_exit 0 sluice snapshot -s wide_ts wide_check || return 1
	rm snapshots/wide.sql &&
	expect_eq "id region name tier updated_at dbt_scd_id dbt_updated_at dbt_valid_from dbt_valid_to email" \
		"$(psql_q "select string_agg(column_name, ' ' order by ordinal_position) from information_schema.columns
			where table_schema = 'snapshots' and table_name = 'wide_ts'")" &&
	expect_eq "1|diamond||2024-01-04 08:00:00
1|diamond|ann@example.com|
2|silver||
3|bronze||
4|x||" "$(psql_q "select id, tier, email, dbt_valid_to from snapshots.wide_ts order by id, dbt_valid_from")" &&
	expect_eq "1||f
1|ann@example.com|t
2||f
2||t
3||f
3||t
4||f
4||t" "$(psql_q "select id, email, dbt_valid_to is null from snapshots.wide_check order by id, dbt_valid_from")"
}
ok "a column new in the query is added to the table; check strategy: every row changed" t_new_columns

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

# Key 4 is gone from here on: one deletion row, however many runs see it
# gone, with the key's last snapshotted values.
t_still_gone() {
	expect_exit 0 sluice snapshot -s customers_nr customers_nr_check || return 1
	psql_q "update lake.customers set tier = 'zinc', updated_at = '2024-01-05 08:00' where id = 2" >/dev/null &&
	expect_exit 0 sluice snapshot -s customers_nr customers_nr_check || return 1
	expect_grep 'Done in .*: 2 ok, 0 error' "$T_DIR/out" &&
	expect_eq "gold|False|f
gold|True|t" "$(psql_q "select tier, dbt_is_deleted, dbt_valid_to is null from snapshots.customers_nr
		where id = 4 order by dbt_valid_from")" &&
	expect_eq "gold|False|f
x|False|f
x|True|t" "$(psql_q "select tier, is_deleted, valid_to = '9999-12-31' from snapshots.customers_nr_check
		where id = 4 order by valid_from")"
}
ok "new_record: a key still gone on a later run gets no second deletion row" t_still_gone

# dbt_is_deleted is added to a table made without it; its older rows,
# NULL there, count as not deleted.
t_switch_to_new_record() {
	sed -i "s/invalidate_hard_deletes=True/hard_deletes='new_record'/" snapshots/customers.sql &&
	expect_exit 0 sluice snapshot -s customers_ts || return 1
	expect_eq "3||f
3||t
4||f
4|True|t" "$(psql_q "select id, dbt_is_deleted, dbt_valid_to is null from snapshots.customers_ts
		where id in (3, 4) order by id, dbt_valid_from")"
}
ok "hard_deletes switched to new_record on an existing table" t_switch_to_new_record

t_meta_names_errors() {
	cat >snapshots/bad.sql <<'SQL' &&
{% snapshot bad_meta %}
{{ config(unique_key='id', strategy='check', check_cols='all',
          snapshot_meta_column_names={'dbt_valid_until': 'until'}) }}
select id from {{ source('lake', 'customers') }}
{% endsnapshot %}
SQL
	expect_exit 1 sluice snapshot -s bad_meta || return 1
	expect_grep "snapshots/bad.sql: snapshot_meta_column_names: unknown column 'dbt_valid_until'" "$T_DIR/out" &&
	rm snapshots/bad.sql &&
	sed -i "s/hard_deletes='new_record')/hard_deletes='new_record', snapshot_meta_column_names={'dbt_valid_to': 'valid_until'})/" \
		snapshots/deletions.sql &&
	psql_q "update lake.customers set tier = 'tin' where id = 2" >/dev/null &&
	expect_exit 1 sluice snapshot -s customers_nr || return 1
	expect_grep 'snapshots.*customers_nr.* has no column valid_until' "$T_DIR/out"
}
ok "snapshot_meta_column_names: an unknown column, and a table made with other names" t_meta_names_errors

done_testing
