#!/usr/bin/env bash
# sluice show: a model's rows through its connector, as a table, CSV or
# JSON lines; built models from their relation, ephemeral ones from SQL.
. "$(dirname "$0")/lib.sh"

new_project show
model people "{{ config(materialized='table') }}
select * from (values
  (1, 'Ann', 'plain'),
  (2, 'Bo, Jr.', 'has \"quotes\"'),
  (3, 'Cy', null)
) as t(id, name, note)"
model eph "{{ config(materialized='ephemeral') }}
select id * 10 as tens from {{ ref('people') }}"
model unbuilt "select 1 as x"
ok "build" expect_exit 0 sluice run -s people

t_table() {
	expect_exit 0 sluice show people || return 1
	# the last column is not padded: no trailing spaces
	expect_eq "id | name    | note" "$(sed -n 1p "$T_DIR/out")" || return 1
	expect_eq "---+---------+-------------" "$(sed -n 2p "$T_DIR/out")" || return 1
	expect_grep '^3  \| Cy      \| NULL$' "$T_DIR/out" || return 1
	expect_eq "(3 rows)" "$(tail -n 1 "$T_DIR/out")"
}
ok "table: aligned columns, a header rule, NULL shown, a row count" t_table

t_csv() {
	sluice show people --format csv >"$T_DIR/csv" || return 1
	expect_eq 'id,name,note
1,Ann,plain
2,"Bo, Jr.","has ""quotes"""
3,Cy,' "$(cat "$T_DIR/csv")"
}
ok "csv: a header, RFC 4180 quoting, NULL as an empty field" t_csv

t_json() {
	sluice show people --format json >"$T_DIR/json" || return 1
	expect_eq 3 "$(jq -s length "$T_DIR/json")" || return 1
	expect_eq 'null' "$(jq -s '.[2].note' "$T_DIR/json")" || return 1
	expect_eq '"Bo, Jr."' "$(jq -s '.[1].name' "$T_DIR/json")"
}
ok "json: one object per row, nulls as null" t_json

t_limit() {
	sluice show people --limit 1 --format csv >"$T_DIR/csv" || return 1
	expect_eq 2 "$(wc -l <"$T_DIR/csv")"
}
ok "--limit bounds the rows" t_limit

t_ephemeral() {
	sluice show eph --format csv >"$T_DIR/csv" || return 1
	expect_eq tens "$(head -n 1 "$T_DIR/csv")" || return 1
	expect_eq "10 20 30" "$(tail -n +2 "$T_DIR/csv" | sort -n | paste -sd ' ')"
}
ok "an ephemeral model shows the rows of its compiled SQL" t_ephemeral

t_not_built() {
	expect_exit 1 sluice show unbuilt || return 1
	expect_grep "analytics.unbuilt is not built yet \(sluice run -s unbuilt\)" "$T_DIR/out"
}
ok "a model not built yet: exit 1 and how to build it" t_not_built

t_bad() {
	expect_exit 2 sluice show nope || return 1
	expect_grep "no model named 'nope'" "$T_DIR/out" || return 1
	expect_exit 2 sluice show people --format xml || return 1
	expect_grep "--format takes table, csv or json" "$T_DIR/out" || return 1
	expect_exit 2 sluice show people --limit lots || return 1
	expect_grep "--limit takes a number of rows" "$T_DIR/out"
}
ok "unknown model, bad --format, bad --limit: exit 2 with the reason" t_bad

# The same rows through the other connector (libpq, or psqlODBC loaded by
# path, whichever the pass does not use): the engine does not know which
# connector it talks to.
t_other() {
	if [ "$SLUICE_TEST_CONNECTOR" = odbc ]; then
		other=libpq
	else
		other=odbc
	fi
	{
		echo "    other:"
		SLUICE_TEST_CONNECTOR=$other conn_keys "      "
		echo "      schema: analytics"
	} >>profiles.yml
	sluice show people --format csv >"$T_DIR/this.csv" || return 1
	sluice show people --format csv --target other >"$T_DIR/other.csv" 2>"$T_DIR/other.err" ||
		{ cat "$T_DIR/other.err"; return 1; }
	expect_eq "$(cat "$T_DIR/this.csv")" "$(cat "$T_DIR/other.csv")"
}
ok "through libpq and through ODBC (psqlODBC) show gives exactly the same rows" t_other

done_testing
