#!/usr/bin/env bash
# t0060: node selection (docs/selection.md) through `sluice ls`, and
# `sluice run -s` building only what is selected.
#
#   source s.t -> stg_a --.
#                          >- mid (table) -> top (marts, table) -> fin (marts, view)
#   source s.u -> stg_b --'
#                    `------> side (marts, view)
#   lone
. "$(dirname "$0")/lib.sh"

new_project sel
cat >>sluice.yml <<'YML'
models:
  proj:
    marts:
      +tags: [marts]
YML
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: s
    schema: raw
    tables:
      - name: t
      - name: u
YML
model stg_a "select id from {{ source('s', 't') }}" staging
model stg_b "select id from {{ source('s', 'u') }}" staging
model mid "{{ config(materialized='table') }}
select a.id from {{ ref('stg_a') }} a join {{ ref('stg_b') }} b using (id)"
model top "{{ config(materialized='table') }}
select id from {{ ref('mid') }}" marts
model fin "select id from {{ ref('top') }}" marts
model side "select id from {{ ref('stg_b') }}" marts
model lone "select 1 as id"

# sel ARGS...: the model names `sluice ls` selects, sorted, on one line.
sel() {
	out=$(sluice ls --resource-type model --output name "$@") || { echo "sluice ls $* failed: $out"; return 1; }
	echo "$out" | sort | paste -sd' ' -
}

# selects "EXPECTED NAMES" ARGS...
selects() {
	want=$1
	shift
	expect_eq "$want" "$(sel "$@")"
}

ok "no selector: every model" selects "fin lone mid side stg_a stg_b top"
ok "mid" selects "mid" -s mid
ok "+mid: and its ancestors" selects "mid stg_a stg_b" -s +mid
ok "mid+: and its descendants" selects "fin mid top" -s mid+
ok "+mid+: both" selects "fin mid stg_a stg_b top" -s +mid+
ok "1+top: one level up" selects "mid top" -s 1+top
ok "2+fin: two levels up" selects "fin mid top" -s 2+fin
ok "mid+1: one level down" selects "mid top" -s mid+1
ok "stg_b+: all descendants" selects "fin mid side stg_b top" -s stg_b+
ok "@stg_a: descendants and their ancestors" selects "fin mid stg_a stg_b top" -s @stg_a
ok "stg_*: wildcard" selects "stg_a stg_b" -s 'stg_*'
ok "tag:marts (folder tags)" selects "fin side top" -s tag:marts
ok "path:models/staging (a directory)" selects "stg_a stg_b" -s path:models/staging
ok "path:models/marts/top.sql (a file)" selects "top" -s path:models/marts/top.sql
ok "source:s.t+ selects what reads s.t" selects "fin mid stg_a top" -s source:s.t+
ok "source:s+ selects what reads any table of s" selects "fin mid side stg_a stg_b top" -s source:s+
ok "config.materialized:table" selects "mid top" -s config.materialized:table
ok "union: lone mid" selects "lone mid" -s lone mid
ok "union in one quoted word list" selects "lone mid" -s "lone mid"
ok "intersection: tag:marts,config.materialized:table" selects "top" -s tag:marts,config.materialized:table
ok "--exclude: tag:marts minus fin" selects "side top" -s tag:marts --exclude fin
ok "--exclude alone: all but the marts" selects "lone mid stg_a stg_b" --exclude tag:marts
ok "union of a graph selector and an intersection" selects "lone top" -s lone tag:marts,mid+1

t_sources_listed() {
	out=$(sluice ls --resource-type source --output name) || return 1
	expect_eq 2 "$(echo "$out" | grep -c .)" || return 1
	echo "$out" | grep -q 't$' && echo "$out" | grep -q 'u$'
}
ok "--resource-type source lists the two source tables" t_sources_listed

t_path_output() {
	expect_eq "models/marts/top.sql" "$(sluice ls -s top --output path)"
}
ok "--output path" t_path_output

t_nothing() {
	expect_exit 0 sluice ls -s no_such_model || return 1
	expect_grep "nothing|[Nn]o nodes|matches no" "$T_DIR/out" || return 1
	expect_exit 0 sluice run -s no_such_model || return 1
	expect_grep "nothing|[Nn]o nodes|matches no" "$T_DIR/out"
}
ok "a selector matching nothing is not an error but warns" t_nothing

psql_q "create schema raw; create table raw.t (id int); create table raw.u (id int);
insert into raw.t values (1), (2); insert into raw.u values (2), (3);" || exit 1

t_run_one() {
	expect_exit 0 sluice run -s stg_a || return 1
	expect_eq "stg_a" "$(psql_q "select string_agg(relname, ' ' order by relname) from pg_class c
		join pg_namespace n on n.oid = c.relnamespace where n.nspname like 'analytics%'")" || return 1
	expect_eq 1 "$(rr '.results | length')"
}
ok "run -s stg_a builds only stg_a" t_run_one

t_run_plus() {
	expect_exit 0 sluice run -s +mid || return 1
	expect_eq "mid stg_a stg_b" "$(psql_q "select string_agg(relname, ' ' order by relname) from pg_class c
		join pg_namespace n on n.oid = c.relnamespace where n.nspname like 'analytics%'")" || return 1
	expect_eq 2 "$(psql_q "select id from analytics.mid")"
}
ok "run -s +mid builds mid and its ancestors only" t_run_plus

done_testing
