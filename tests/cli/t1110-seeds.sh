#!/usr/bin/env bash
# t1110: seeds, as dbt has them: `sluice seed` loads the CSV files under
# seed-paths into tables with the types dbt infers (or column_types),
# handles CRLF, a byte order mark, quotes and another delimiter, reuses an
# unchanged seed and reloads an edited one or on --full-refresh; `run`
# leaves seeds alone (as dbt run does) and `build` loads them first.
. "$(dirname "$0")/lib.sh"

new_dbt_project shop
# every type, CRLF line ends and a UTF-8 byte order mark
printf '\357\273\277id,name,zip,active,signup,score,seen_at,note\r\n1,Ann,02134,true,2024-01-02,1.5,2024-01-02 10:00:00,"a, ""quoted"" note"\r\n2,Bo,10001,FALSE,2024-01-03,2,2024-01-03T11:00:00,plain\r\n3,Cy,,,,,,null\r\n' >seeds/people.csv
printf 'code;label\nA;first\nB;second\n' >seeds/codes.csv
cat >>dbt_project.yml <<'YML'
    people:
      +column_types:
        zip: varchar(5)
    codes:
      +delimiter: ";"
      +quote_columns: true
YML

t_run_leaves_seeds() {
	sluice run >"$T_DIR/out" 2>&1 || true   # the models fail: their seeds are not loaded
	expect_no_grep '\] [A-Z]+ seed ' "$T_DIR/out" &&
	expect_eq "0" "$(psql_q "select count(*) from pg_class where relname = 'raw_orders'")"
}
ok "sluice run does not load seeds (as dbt run)" t_run_leaves_seeds

t_seed() {
	expect_exit 0 sluice seed || return 1
	expect_grep 'OK seed analytics_raw\.people .* 3 rows' "$T_DIR/out" &&
	expect_grep 'Done in .*: 4 ok, 0 error' "$T_DIR/out" &&
	expect_no_grep 'view|table' "$T_DIR/out"
}
ok "sluice seed loads every seed and nothing else" t_seed

t_types() {
	expect_eq "id integer
name text
zip character varying
active boolean
signup date
score double precision
seen_at timestamp without time zone
note text" "$(psql_q "select column_name || ' ' || data_type from information_schema.columns
		where table_schema = 'analytics_raw' and table_name = 'people' order by ordinal_position")"
}
ok "types are inferred as dbt infers them, column_types wins" t_types

t_values() {
	expect_eq '1|Ann|02134|t|2024-01-02|1.5|2024-01-02 10:00:00|a, "quoted" note
2|Bo|10001|f|2024-01-03|2|2024-01-03 11:00:00|plain
3|Cy||||||' "$(psql_q "select * from analytics_raw.people order by id")" &&
	expect_eq "0" "$(psql_q "select count(*) from analytics_raw.people where note like E'%\\r%' or name like E'%\\r%'")" &&
	expect_eq "1" "$(psql_q "select count(*) from analytics_raw.people where note is null")"
}
ok "values: quotes, CRLF and the byte order mark gone, empty and null are NULL" t_values

t_delimiter_quote() {
	expect_eq "A|first
B|second" "$(psql_q 'select "code", "label" from analytics_raw.codes order by 1')"
}
ok "delimiter and quote_columns" t_delimiter_quote

t_reuse() {
	expect_exit 0 sluice seed || return 1
	expect_grep 'Done in .*: 0 ok, 0 error, 0 skipped, 4 reused' "$T_DIR/out" || return 1
	printf '7,5,2018-01-08,placed,40\n' >>seeds/raw_orders.csv &&
	expect_exit 0 sluice seed || return 1
	expect_grep 'OK seed analytics_raw\.raw_orders .* 7 rows' "$T_DIR/out" &&
	expect_grep 'Done in .*: 1 ok, 0 error, 0 skipped, 3 reused' "$T_DIR/out" &&
	expect_eq "7" "$(psql_q 'select count(*) from analytics_raw.raw_orders')"
}
ok "an unchanged seed is reused, an edited one reloaded" t_reuse

t_full_refresh() {
	psql_q "insert into analytics_raw.codes values ('X', 'stray')" >/dev/null &&
	expect_exit 0 sluice seed -s codes --full-refresh || return 1
	expect_grep 'OK seed analytics_raw\.codes .* 2 rows' "$T_DIR/out" &&
	expect_eq "2" "$(psql_q 'select count(*) from analytics_raw.codes')"
}
ok "--full-refresh reloads a seed" t_full_refresh

t_column_types_change() {
	sed -i 's/zip: varchar(5)/zip: text/' dbt_project.yml &&
	expect_exit 0 sluice seed -s people || return 1
	expect_grep 'OK seed analytics_raw\.people' "$T_DIR/out" &&
	expect_eq "text" "$(psql_q "select data_type from information_schema.columns
		where table_schema = 'analytics_raw' and table_name = 'people' and column_name = 'zip'")"
}
ok "a change of column_types reloads the seed" t_column_types_change

t_ref_resolves() {
	sluice compile -s stg_orders >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep 'from "analytics_raw"\."raw_orders"' target/compiled/models/staging/stg_orders.sql
}
ok "ref() to a seed compiles to its table" t_ref_resolves

t_build_order() {
	printf '8,2,2018-01-09,placed,50\n' >>seeds/raw_orders.csv &&
	expect_exit 0 sluice build || return 1
	expect_eq "8" "$(psql_q 'select count(*) from analytics.stg_orders')" &&
	expect_grep 'OK seed analytics_raw\.raw_orders' "$T_DIR/out" &&
	expect_grep 'OK table analytics\.customers' "$T_DIR/out"
}
ok "sluice build loads a seed before what reads it" t_build_order

# seed_fails_keeping ROW PATTERN: with ROW in place of raw_orders.csv's last
# added row, sluice seed fails saying PATTERN, and the table keeps its 8 rows.
seed_fails_keeping() {
	sed -i '10,$d' seeds/raw_orders.csv &&
	printf '%s\n' "$1" >>seeds/raw_orders.csv &&
	expect_exit 1 sluice seed -s raw_orders || return 1
	expect_grep "$2" "$T_DIR/out" &&
	expect_eq "8" "$(psql_q 'select count(*) from analytics_raw.raw_orders')"
}
ok "a malformed row fails the seed with its line; the table stays as it was" \
	seed_fails_keeping '9,2' 'seeds/raw_orders\.csv:10: 2 fields, the header has 5'
ok "a row the database refuses rolls the whole load back" \
	seed_fails_keeping '9,2,2018-01-10,a status far longer than twenty,1' 'seeds/raw_orders\.csv: .*value too long'

done_testing
