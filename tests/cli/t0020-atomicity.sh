#!/usr/bin/env bash
# t0020: a rebuild is atomic: a failure leaves the old relation, views on a
# rebuilt table keep working (even across a column type change), and a
# reader in another session sees either the old or the new table, never an
# error or a mix.
. "$(dirname "$0")/lib.sh"

leftovers() {
	psql_q "select count(*) from pg_class where relname like '%\_\_sluice\_new' or relname like '%\_\_sluice\_old'"
}

# -- a failing rebuild --------------------------------------------------------
new_project fail
model t_atom "{{ config(materialized='table') }}
select i as id from generate_series(1, 3) as i"
ok "first build of t_atom" expect_exit 0 sluice run

model t_atom "{{ config(materialized='table') }}
select i as id, 10 / (i - 2) as x from generate_series(1, 5) as i"

t_failed_rebuild() {
	expect_exit 1 sluice run || return 1
	expect_grep "division by zero" "$T_DIR/out"
}
ok "a rebuild failing at runtime exits 1 and shows the database error" t_failed_rebuild

t_old_table_kept() {
	expect_eq "1,2,3" "$(psql_q "select string_agg(id::text, ',' order by id) from analytics.t_atom")" || return 1
	expect_eq "id" "$(psql_q "select string_agg(column_name, ',') from information_schema.columns
		where table_schema = 'analytics' and table_name = 't_atom'")"
}
ok "the old table is still there with its old rows and columns" t_old_table_kept

model v_atom "select 1 as id"
t_failed_view_rebuild() {
	expect_exit 0 sluice run -s v_atom || return 1
	model v_atom "select id, no_such_column from {{ ref('t_atom') }}"
	expect_exit 1 sluice run -s v_atom || return 1
	expect_eq "v 1" "$(psql_q "select relkind from pg_class where relname = 'v_atom'") $(psql_q "select id from analytics.v_atom")"
}
ok "a view whose rebuild fails keeps its old definition" t_failed_view_rebuild

ok "no __sluice_new/__sluice_old relation is left behind" expect_eq 0 "$(leftovers)"

# -- views on a rebuilt table -------------------------------------------------
new_project views
model base "{{ config(materialized='table') }}
select i as id, 'x' || i as name from generate_series(1, 3) as i"
model dep_view "select id, name from {{ ref('base') }}"
ok "first build of base and dep_view" expect_exit 0 sluice run

psql_q "
create view public.hand_view as select id, name from analytics.base;
create view public.hand_view2 as select id from public.hand_view where id > 1;
create view public.hand_on_dep as select name from analytics.dep_view;
" || exit 1

# views_see LETTER N: every view over base shows N rows (i, LETTERi).
views_see() {
	want=$(seq 1 "$2" | sed "s/.*/&$1&/" | paste -sd, -) || return 1
	expect_eq "$want" "$(psql_q "select string_agg(id || name, ',' order by id) from analytics.dep_view")" || return 1
	expect_eq "$want" "$(psql_q "select string_agg(id || name, ',' order by id) from public.hand_view")" || return 1
	expect_eq $(($2 - 1)) "$(psql_q "select count(*) from public.hand_view2")" || return 1
	expect_eq "$2" "$(psql_q "select count(*) from public.hand_on_dep where name like '$1%'")"
}

model base "{{ config(materialized='table') }}
select i as id, 'y' || i as name from generate_series(1, 4) as i"
t_rebuild_same_types() {
	expect_exit 0 sluice run -s base || return 1
	expect_eq "" "$(psql_q "select 1 from pg_class where relname = 'dep_view' and relkind <> 'v'")" || return 1
	views_see y 4
}
ok "after rebuilding base alone, its sluice view and hand-made views work" t_rebuild_same_types

model base "{{ config(materialized='table') }}
select i::bigint as id, 'z' || i as name, i * 2 as extra from generate_series(1, 5) as i"
t_rebuild_new_type() {
	expect_exit 0 sluice run -s base || return 1
	expect_eq "bigint" "$(psql_q "select data_type from information_schema.columns
		where table_schema = 'analytics' and table_name = 'base' and column_name = 'id'")" || return 1
	expect_eq 30 "$(psql_q "select sum(extra) from analytics.base")" || return 1
	views_see z 5
}
ok "int -> bigint and a new column: the dependent views still work" t_rebuild_new_type

model base "{{ config(materialized='table') }}
select i::bigint as id from generate_series(1, 6) as i"
t_rebuild_drops_used_column() {
	expect_exit 1 sluice run -s base || return 1
	expect_eq 5 "$(psql_q "select count(*) from analytics.base")" || return 1
	views_see z 5
}
ok "dropping a column a view uses fails the rebuild and keeps the old table" t_rebuild_drops_used_column

ok "still no __sluice_new/__sluice_old relation" expect_eq 0 "$(leftovers)"

# -- a reader during a long rebuild -------------------------------------------
# The rebuild's query waits at a gate (lib.sh) until the reader has read
# five times; then the reader reads on while sluice swaps, until it ends.
new_project reader
gate_setup || exit 1
model slow "{{ config(materialized='table') }}
select i as id, 'old' as ver from generate_series(1, 100) as i"
ok "first build of slow" expect_exit 0 sluice run

model slow "{{ config(materialized='table') }}
select i as id, 'new' as ver from generate_series(1, 200) as i
where (select public.gate_wait()) = 1"

# read_slow: one reader's look at slow, appended to $T_DIR/reads.
read_slow() {
	if ! psql_q "select count(*) || ':' || min(ver) || ':' || max(ver) from analytics.slow" >>"$T_DIR/reads" 2>&1; then
		echo "(that read failed)" >>"$T_DIR/reads"
	fi
}

t_reader() {
	: >"$T_DIR/reads"
	gate_close || return 1
	bg_start slowrun "$SLUICE_BIN" run -s slow || return 1
	wait_until 60 at_gate || { echo "the rebuild never reached the gate"; cat "$T_DIR/slowrun.log"; gate_open; return 1; }
	for i in 1 2 3 4 5; do
		read_slow || return 1
	done
	[ ! -s "$T_DIR/slowrun.rc" ] || { echo "the run ended while its query waited at the gate"; return 1; }
	gate_open || return 1
	# on while sluice swaps the tables: at least once, until the run ends
	end=$(($(date +%s) + 60))
	read_slow || return 1
	until [ -s "$T_DIR/slowrun.rc" ] || [ "$(date +%s)" -ge "$end" ]; do
		read_slow || return 1
	done
	expect_eq 0 "$(bg_wait slowrun 10)" || { cat "$T_DIR/slowrun.log"; return 1; }
	cat "$T_DIR/reads"
	[ "$(grep -c '^100:old:old$' "$T_DIR/reads")" -ge 5 ] || { echo "fewer than 5 reads of the old table"; return 1; }
	if grep -Ev '^(100:old:old|200:new:new)$' "$T_DIR/reads"; then
		echo "a reader saw something else than the old or the new table"
		return 1
	fi
	expect_eq "200:new:new" "$(psql_q "select count(*) || ':' || min(ver) || ':' || max(ver) from analytics.slow")"
}
ok "a reader during a rebuild sees all old or all new rows, never an error" t_reader

done_testing
