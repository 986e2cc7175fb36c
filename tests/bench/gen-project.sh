#!/bin/sh
# gen-project.sh DIR N [M]: a synthetic sluice project of N models in
# folders of 100, each model ref()ing 1-3 earlier models (deterministically), with
# the template features real projects use (set, for, if, var, config).
# Sources: 10 lake tables that the first models read. With M, M macro
# files (macros/macNNN.sql, a dispatched macro and its two forms each),
# and every model calls one of them.
set -eu
dir=$1
n=$2
nmacros=${3:-0}
rm -rf "$dir"
mkdir -p "$dir/models"
cat >"$dir/sluice.yml" <<YML
name: bench
profile: bench
vars:
  start_date: '2024-01-01'
models:
  bench:
    +materialized: view
YML
{
	echo "version: 2"
	echo "sources:"
	echo "  - name: lake"
	echo "    tables:"
	for t in 0 1 2 3 4 5 6 7 8 9; do echo "      - name: t$t"; done
} >"$dir/models/sources.yml"
mkdir -p "$dir/macros"
awk -v m="$nmacros" -v dir="$dir" 'BEGIN {
	for (i = 0; i < m; i++) {
		f = sprintf("%s/macros/mac%03d.sql", dir, i);
		name = sprintf("mac%03d", i);
		print "{% macro " name "(col, part=\x27day\x27) -%}" > f;
		print "  {{ return(adapter.dispatch(\x27" name "\x27)(col, part)) }}" > f;
		print "{%- endmacro %}" > f;
		print "{% macro default__" name "(col, part) %}date_trunc(\x27{{ part }}\x27, {{ col }}){% endmacro %}" > f;
		print "{% macro postgres__" name "(col, part) -%}" > f;
		print "  {%- set parts = [part] -%}" > f;
		print "  date_trunc({{ \"\x27\" ~ parts | join(\x27,\x27) ~ \"\x27\" }}, {{ col }})" > f;
		print "{%- endmacro %}" > f;
		close(f);
	}
}'
awk -v n="$n" -v nmacros="$nmacros" -v dir="$dir" 'BEGIN {
	for (i = 0; i < n; i++) {
		folder = sprintf("%s/models/f%03d", dir, int(i / 100));
		if (i % 100 == 0)
			system("mkdir -p " folder);
		f = sprintf("%s/m%05d.sql", folder, i);
		mat = (i % 10 == 0) ? "table" : "view";
		print "{{ config(materialized=\x27" mat "\x27, tags=[\x27g" (i % 7) "\x27]) }}" > f;
		print "{% set cols = [\x27a\x27, \x27b\x27, \x27c\x27, \x27d\x27] %}" > f;
		print "-- model " i ": synthetic, for benchmarks" > f;
		print "with base as (" > f;
		if (i < 10) {
			print "    select * from {{ source(\x27lake\x27, \x27t" i "\x27) }}" > f;
		} else {
			k = 1 + (i * 7) % 3;
			for (j = 0; j < k; j++) {
				p = (i * 31 + j * 17) % i;
				print "    " (j ? "union all " : "") "select * from {{ ref(\x27m" sprintf("%05d", p) "\x27) }}" > f;
			}
		}
		print ")" > f;
		print "select" > f;
		print "{%- for c in cols %}" > f;
		print "    {{ c }}{% if c == \x27a\x27 %} + 1{% endif %} as {{ c }}," > f;
		print "{%- endfor %}" > f;
		if (nmacros > 0)
			print "    {{ mac" sprintf("%03d", i % nmacros) "(\x27created_at\x27) }} as day," > f;
		print "    created_at" > f;
		print "from base" > f;
		print "where created_at >= \x27{{ var(\x27start_date\x27) }}\x27" > f;
		print "{% if is_incremental() %}and created_at > (select max(created_at) from {{ this }}){% endif %}" > f;
		close(f);
	}
}'
