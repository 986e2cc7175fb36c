#!/usr/bin/env bash
# t0405: stages in PostgreSQL's binary COPY format (format='binary'):
# every type the lake holds arrives as it was, through parts that are
# binary COPY files of their own, in several streams each way, as deltas
# and zstd frames; what cannot read them says so.
. "$(dirname "$0")/lib.sh"

new_lake
new_project binstage
lake_connection "$LAKE"
lake_sources events
# a type of every kind: text with what CSV must quote, numbers at their
# edges, times, bytes, JSON, arrays, NULL in each; 80,000 rows, about 20 MiB: worth two unload streams
lake_q "create schema lake;
create table lake.events (id int primary key, big bigint, note text, score numeric(12,4), ratio float8,
                          day date, at timestamptz, span interval, raw bytea, doc jsonb, tags text[],
                          flag boolean, uid uuid);
insert into lake.events
select g, case when g % 11 = 0 then null else g::bigint * 3037000493 end,
       case g % 5 when 0 then null when 1 then '' when 2 then 'has \"quotes\", commas' when 3 then e'two\nlines\ttab' else 'ü ✓ 𝄞' end,
       case when g % 13 = 0 then null else g / 7.0 end,
       case g % 4 when 0 then 'NaN'::float8 when 1 then '-Infinity'::float8 when 2 then null else g * 1e-300 end,
       date '1950-01-01' + g, timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 minute',
       make_interval(days => g, secs => g / 3.0),
       case when g % 7 = 0 then null else decode(md5(g::text) || '00ff', 'hex') end,
       case when g % 9 = 0 then null else jsonb_build_object('g', g, 'list', jsonb_build_array(g, 'x', null)) end,
       case when g % 6 = 0 then null else array['a', null, g::text, ''] end,
       case when g % 3 = 0 then null else g % 2 = 0 end,
       md5(g::text)::uuid
from generate_series(1, 80000) g"

model unload_events "{{ config(materialized='unload', connection='lake', format='binary', max_file_size='2m', streams=2) }}
select * from {{ source('lake', 'events') }}
{% if is_incremental() %}where at > {{ watermark }}{% endif %}"
model events "{{ config(materialized='load', watermark='at', streams=2) }}
{{ ref('unload_events') }}"

gen() { ls -t .sluice/stage/unload_events/*/*/manifest | head -n 1; }

t_roundtrip() {
	expect_exit 0 sluice run --threads 4 || return 1
	expect_eq "$(table_hash "$LAKE" lake.events)" "$(table_hash "$T_DB" analytics.events)" || return 1
	# both hops in two streams
	expect_grep "OK unload .*unload_events .* 80000 rows \(2 streams\)" "$T_DIR/out" || return 1
	expect_grep "OK load .*events .* 80000 rows \(2 streams\)" "$T_DIR/out"
}
ok_libpq "the warehouse loads through psqlODBC, which has no COPY" \
	"format='binary': lake -> file:// stage -> warehouse in 2 streams each way, every type equal (NULLs, NaN, bytea, jsonb, arrays)" t_roundtrip

t_target_run() {
	expect_grep "^-- unload to .* \(binary COPY parts and a manifest\)" target/run/models/unload_events.sql || return 1
	expect_grep "TO STDOUT WITH \(FORMAT binary\)" target/run/models/unload_events.sql || return 1
	expect_grep "FROM STDIN WITH \(FORMAT binary\)" target/run/models/events.sql
}
ok_libpq "needs the round trip" "target/run shows the binary COPY statements of both hops" t_target_run

t_parts() {
	local m f n=0
	m=$(gen) || return 1
	expect_eq 80000 "$(jq '.meta.record_count' "$m")" || return 1
	expect_eq 80000 "$(jq '[.entries[].meta.record_count] | add' "$m")" || return 1
	for f in $(jq -r '.entries[].url' "$m"); do
		f=${f#file://}
		case $f in */part-*.pgcopy) ;; *) echo "not a binary part: $f"; return 1 ;; esac
		# each part is a binary COPY file of its own: the signature first, -1 as a field count last
		expect_eq "5047434f50590aff0d0a00" "$(head -c 11 "$f" | od -An -tx1 | tr -d ' \n')" || return 1
		expect_eq "ffff" "$(tail -c 2 "$f" | od -An -tx1 | tr -d ' \n')" || return 1
		expect_eq "$(stat -c %s "$f")" "$(jq --arg u "file://$f" '.entries[] | select(.url == $u) | .meta.content_length' "$m")" || return 1
		n=$((n + 1))
	done
	[ "$n" -ge 4 ] || { echo "expected several parts, found $n"; return 1; }
}
ok_libpq "needs the round trip" "each part is a binary COPY file with its own header and trailer, counted in the manifest" t_parts

t_delta() {
	lake_q "insert into lake.events (id, note, at) select g, 'late ' || g, timestamptz '2027-01-01' + g * interval '1 second'
		from generate_series(80001, 80025) g" &&
	expect_exit 0 sluice run || return 1
	expect_eq 25 "$(jq '.meta.record_count' "$(gen)")" || return 1
	expect_eq "$(table_hash "$LAKE" lake.events)" "$(table_hash "$T_DB" analytics.events)"
}
ok_libpq "needs the round trip" "watermark: the 25 new rows go as a binary delta and are appended; the tables stay equal" t_delta

t_zstd() {
	local f
	model unload_events "{{ config(materialized='unload', connection='lake', format='binary', compression='zstd', max_file_size='2m') }}
select * from {{ source('lake', 'events') }}
{% if is_incremental() %}where at > {{ watermark }}{% endif %}" &&
	expect_exit 0 sluice run --full-refresh || return 1
	f=$(jq -r '.entries[0].url' "$(gen)") && f=${f#file://} || return 1
	case $f in */part-[0-9]*.pgcopy.zst) ;; *) echo "not a zstd binary part: $f"; return 1 ;; esac
	# the zstd magic number
	expect_eq "28b52ffd" "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" || return 1
	expect_eq "$(table_hash "$LAKE" lake.events)" "$(table_hash "$T_DB" analytics.events)"
}
ok_libpq "needs the round trip" "format='binary' with compression='zstd': .pgcopy.zst parts, the rows equal" t_zstd

t_csv_again() {
	model unload_events "{{ config(materialized='unload', connection='lake', max_file_size='2m') }}
select * from {{ source('lake', 'events') }}
{% if is_incremental() %}where at > {{ watermark }}{% endif %}" &&
	expect_exit 0 sluice run || return 1
	# the format is config: changed, everything is sent again, as CSV
	expect_grep "OK unload .*unload_events .* 80025 rows" "$T_DIR/out" || return 1
	case $(jq -r '.entries[0].url' "$(gen)") in *.csv) ;; *) echo "not CSV"; return 1 ;; esac
	expect_eq "$(table_hash "$LAKE" lake.events)" "$(table_hash "$T_DB" analytics.events)"
}
ok_libpq "needs the round trip" "back to format='csv': a change of config, the whole table goes again, equal" t_csv_again

t_format_unknown() {
	model unload_x "{{ config(materialized='unload', connection='lake', format='parquet') }}
select 1 as one" &&
	expect_exit 1 sluice run -s unload_x || return 1
	expect_grep "models/unload_x.sql: format: 'parquet' is not one of csv, binary" "$T_DIR/out"
}
ok "an unknown format is an error that names the model's file and the value" t_format_unknown
rm -f models/unload_x.sql

# The warehouse through psqlODBC: no COPY, so binary parts cannot be
# loaded; the load says which part and what to do, and touches nothing.
t_odbc_refuses() {
	model unload_events "{{ config(materialized='unload', connection='lake', format='binary', max_file_size='2m') }}
select * from {{ source('lake', 'events') }}" &&
	expect_exit 1 sluice run || return 1
	expect_grep "part-[0-9]+\.pgcopy is in PostgreSQL's binary COPY format, which connection 'default' cannot load; unload it with format='csv'" "$T_DIR/out" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname like 'events%'")"
}
if [ "$SLUICE_TEST_CONNECTOR" = odbc ]; then
	ok "psqlODBC has no COPY: a binary part is refused with what to do, nothing is written" t_odbc_refuses
fi

done_testing
