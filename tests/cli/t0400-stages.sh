#!/usr/bin/env bash
# t0400: S3 stages. A lake database and a warehouse database; unload
# models stream lake tables into a stage (file:// here, s3rver in the
# second half), load models copy them into the warehouse, and every hop's
# row count is checked. Faults never touch the target.
. "$(dirname "$0")/lib.sh"
HARNESS=$(cd "$(dirname "$0")/../harness" && pwd)

new_lake
new_project stage
lake_connection "$LAKE"
lake_sources patients
lake_q "create schema lake;
create table lake.patients (id int primary key, name text, note text, born date, score numeric(6,2),
                            updated_at timestamptz);
insert into lake.patients
select g, 'patient ' || g,
       case g % 5 when 0 then null when 1 then '' when 2 then 'has \"quotes\", commas' when 3 then e'two\nlines' else 'ü ✓' end,
       date '1950-01-01' + g, g / 7.0, timestamptz '2026-01-01' + g * interval '1 minute'
from generate_series(1, 3000) g"

model unload_patients "{{ config(materialized='unload', connection='lake', max_file_size='40k', stage_retention=2) }}
select id, name, note, born, score, updated_at from {{ source('lake', 'patients') }}
{% if is_incremental() %}where updated_at > {{ watermark }}{% endif %}"
model patients "{{ config(materialized='load', watermark='updated_at') }}
{{ ref('unload_patients') }}"
model n_patients "select count(*) as n from {{ ref('patients') }}"

gen_dirs() { ls .sluice/stage/unload_patients/*/*/manifest 2>/dev/null | wc -l; }

t_roundtrip() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients)" || return 1
	# NULL and the empty string stay apart, newlines and quotes survive
	expect_eq "600|600" "$(psql_q "select count(*) filter (where note is null) || '|' || count(*) filter (where note = '') from analytics.patients")"
}
ok "round trip lake -> file:// stage -> warehouse: equal rows (NULL vs '', quotes, newlines, UTF-8)" t_roundtrip

t_parts() {
	local m
	m=$(ls .sluice/stage/unload_patients/*/*/manifest) || return 1
	expect_eq 3000 "$(jq '.meta.record_count' "$m")" || return 1
	# 40 KiB parts: several of them, each counted, adding up
	[ "$(jq '.entries | length' "$m")" -ge 3 ] || { echo "expected several parts"; cat "$m"; return 1; }
	expect_eq 3000 "$(jq '[.entries[].meta.record_count] | add' "$m")" || return 1
	expect_eq '"id" "name" "note" "born" "score" "updated_at"' "$(jq -r '[.schema.elements[].name | @json] | join(" ")' "$m")" || return 1
	expect_eq "numeric(6,2)" "$(jq -r '.schema.elements[4].type.base' "$m")" || return 1
	# content_length is each file's size
	local url f
	url=$(jq -r '.entries[0].url' "$m") || return 1
	f=${url#file://}
	expect_eq "$(stat -c %s "$f")" "$(jq '.entries[0].meta.content_length' "$m")"
}
ok "the manifest has Redshift's MANIFEST VERBOSE shape: entries with counts and sizes, schema, meta" t_parts

t_validations() {
	expect_eq "pass pass" "$(rr '[.results[] | select(.unique_id == "model.proj.patients") | .validations[].status] | join(" ")')" || return 1
	expect_eq "3000 3000" "$(rr '[.results[] | select(.unique_id == "model.proj.patients") | .validations[] | select(.name == "manifest record_count = rows loaded") | .expected, .actual] | join(" ")')" || return 1
	expect_eq "3000" "$(rr '.results[] | select(.unique_id == "model.proj.unload_patients") | .validations[0].actual')"
}
ok "run_results.json records every count under validations[] as {name, expected, actual, status}" t_validations

t_redshift_manifest_types() {
	local m
	m=$(ls .sluice/stage/unload_patients/*/*/manifest) || return 1
	# Redshift writes a varchar's length and a numeric's precision beside the base type
	jq '.schema.elements[1].type = {"base": "character varying", "length": 40}
	    | .schema.elements[4].type = {"base": "numeric", "precision": 7, "scale": 2}' "$m" >"$m.new" &&
		mv "$m.new" "$m" || return 1
	expect_exit 0 sluice run -s patients --force || return 1
	expect_eq "character varying(40) numeric(7,2)" "$(psql_q "select format_type(atttypid, atttypmod) from pg_attribute
		where attrelid = 'analytics.patients'::regclass and attname in ('name', 'score') order by attnum" | paste -sd ' ')" || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients)"
}
ok "a manifest's type lengths and precisions (as Redshift writes them) shape the loaded table" t_redshift_manifest_types

t_target_run() {
	expect_grep 'COPY \(' target/run/models/unload_patients.sql || return 1
	expect_grep 'TO STDOUT WITH \(FORMAT csv\)' target/run/models/unload_patients.sql || return 1
	expect_grep 'FROM STDIN WITH \(FORMAT csv\)' target/run/models/patients.sql || return 1
	expect_grep 'RENAME TO "patients"' target/run/models/patients.sql
}
ok "target/run shows the COPY statements and the swap" t_target_run

t_audit() {
	model unload_audit "{{ config(materialized='unload', connection='lake') }}
select current_query() as q"
	model audit_q "{{ config(materialized='load') }}
{{ ref('unload_audit') }}"
	expect_exit 0 sluice run -s unload_audit audit_q || return 1
	# the lake ran the COPY with the audit comment in front, like every statement
	psql_q "select q from analytics.audit_q" >"$T_DIR/q" || return 1
	expect_grep '^/\* sluice run=[0-9a-f-]+ node=model\.proj\.unload_audit user=tester \*/' "$T_DIR/q" || return 1
	expect_grep '^COPY \($' "$T_DIR/q"
}
ok "the unload's COPY carries the audit comment naming the run, node and user" t_audit
# out here, so that the test's status is its last check's, and they go
# whatever it found
rm -f models/unload_audit.sql models/audit_q.sql

t_reused() {
	expect_exit 0 sluice run || return 1
	expect_eq "model.proj.n_patients=reused model.proj.patients=reused model.proj.unload_patients=reused" \
		"$(rr '[.results[] | .unique_id + "=" + .status] | sort | join(" ")')"
}
ok "nothing changed in the lake: the transfer is reused, nothing crosses the wire" t_reused

lake_q "insert into lake.patients select g, 'new ' || g, 'n', null, 0, timestamptz '2027-01-01' + g * interval '1 second'
        from generate_series(3001, 3025) g"
t_watermark() {
	wait_until 10 stats_settled lake.patients 3025 || { echo "statistics never counted the insert"; return 1; }
	expect_exit 0 sluice run || return 1
	expect_grep "OK unload .*unload_patients .* 25 rows" "$T_DIR/out" || return 1
	expect_grep "OK load .*patients .* 25 rows" "$T_DIR/out" || return 1
	expect_grep "where updated_at > '2026-01-03 02:00:00\+00'" target/run/models/unload_patients.sql || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients)"
}
ok "watermark: only the 25 new lake rows are unloaded and appended; the tables stay equal" t_watermark

t_no_double_append() {
	expect_exit 0 sluice run --force -s patients || return 1
	expect_eq 3025 "$(psql_q "select count(*) from analytics.patients")"
}
ok "a forced reload of a delta already loaded does not append it twice" t_no_double_append

# The load committed, then its state record was lost (a state write that
# failed, kill -9 between the two): the warehouse's own note of the
# generation it loaded keeps the next run from appending it again.
t_record_lost() {
	_st=.sluice/state/dev.json
	jq 'del(.records["model.proj.patients"])' "$_st" >"$T_DIR/st.json" && cp "$T_DIR/st.json" "$_st" || return 1
	expect_exit 0 sluice run -s patients || return 1
	expect_eq 3025 "$(psql_q "select count(*) from analytics.patients")" || return 1
	expect_eq 1 "$(psql_q "select count(*) from analytics.sluice_stage_loads where relation like '%patients%'")"
}
ok "the load's state record lost after it committed: the delta is not appended again" t_record_lost

t_retention() {
	expect_eq 2 "$(gen_dirs)"
}
ok "stage_retention: 2 keeps the two newest generations" t_retention

t_full_refresh() {
	expect_exit 0 sluice run --full-refresh -s unload_patients patients || return 1
	expect_grep "OK unload .* 3025 rows" "$T_DIR/out" || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients)"
}
ok "--full-refresh moves every row again and replaces the target" t_full_refresh

# ---- the two hops overlap ------------------------------------------------------

# audit_times NODE CALLS: "start end" (seconds) of NODE's statements whose
# call matches the regex CALLS in target/audit.jsonl, one line each, by start
audit_times() {
	t_noted jq -r --arg n "model.proj.$1" --arg c "^($2)\$" '
		def secs: (.[0:19] + "Z" | fromdateiso8601) + ("0" + .[19:-1] | tonumber);
		select(.node == $n and (.call | test($c))) | (.time | secs) as $t | "\($t) \($t + .duration_ms / 1000)"' \
		target/audit.jsonl | sort -n
}
# what moves a part into the warehouse: COPY, or batched INSERTs where there is no COPY (ODBC)
LOAD_CALLS="copy_in|load_csv"

# overlapped UNLOAD LOAD: LOAD read its first part before UNLOAD's last statement ended
overlapped() {
	local first end
	first=$(audit_times "$2" "$LOAD_CALLS" | head -n 1 | cut -d' ' -f1) &&
	end=$(audit_times "$1" '.*' | sort -n -k2 | tail -n 1 | cut -d' ' -f2) &&
	[ -n "$first" ] && [ -n "$end" ] || { echo "no part load of $2 or no statement of $1 in the audit log"; return 1; }
	awk -v a="$first" -v b="$end" 'BEGIN { exit !(a < b) }' ||
		{ echo "the load's first part was read at $first, after the unload ended at $end"; return 1; }
}

# the lake sleeps 3 s at row 1500: parts before it are complete in the stage by then
model unload_slow "{{ config(materialized='unload', connection='lake', max_file_size='20k') }}
select p.id, p.name, p.note from {{ source('lake', 'patients') }} p,
       lateral (select pg_sleep(case when p.id = 1500 then 3 else 0 end)) s"
model slow "{{ config(materialized='load') }}
{{ ref('unload_slow') }}"

t_overlap() {
	expect_exit 0 sluice run -s unload_slow slow || return 1
	expect_eq "$(table_hash "$LAKE" "(select id, name, note from lake.patients)")" \
		"$(table_hash "$T_DB" analytics.slow)" || return 1
	overlapped unload_slow slow
}
ok "the load reads the unload's first parts while the lake's query still runs (audit log times), equal rows" t_overlap

t_overlap_counts() {
	expect_eq "pass pass" "$(rr '[.results[] | select(.unique_id == "model.proj.slow") | .validations[].status] | join(" ")')" || return 1
	expect_eq "3025 3025" "$(rr '[.results[] | select(.unique_id == "model.proj.slow") | .validations[] | select(.name == "rows unloaded = manifest record_count") | .expected, .actual] | join(" ")')"
}
ok "... and still checks the rows unloaded against the manifest and the rows loaded" t_overlap_counts

# A side table left by a crashed run and locked by another session for 5 s
# holds the load up at its first statement (dropping it), inside its
# transaction, while the unload finishes; one of the parts is then altered
# before the load reads it from the unload's announcements.
model unload_slow "{{ config(materialized='unload', connection='lake', max_file_size='20k') }}
select p.id, p.name, p.note from {{ source('lake', 'patients') }} p"
side_locked() {
	[ "$(psql_q "select count(*) from pg_locks l join pg_class c on c.oid = l.relation
		where c.relname = 'slow__sluice_new' and l.mode = 'AccessExclusiveLock' and l.granted")" = 1 ]
}
manifests() { ls .sluice/stage/unload_slow/*/*/manifest 2>/dev/null | wc -l; }
more_manifests() { [ "$(manifests)" -gt "$1" ]; }
t_overlap_mismatch() {
	local before n m part
	before=$(table_hash "$T_DB" analytics.slow) &&
	n=$(manifests) &&
	psql_q "create table analytics.slow__sluice_new (x int)" || return 1
	bg_start L psql -X -q -d "$T_DB" -c "begin; lock table analytics.slow__sluice_new; select pg_sleep(5); commit" &&
	wait_until 10 side_locked || { echo "the side table was never locked"; return 1; }
	bg_start M "$SLUICE_BIN" run -s unload_slow slow &&
	wait_until 4 more_manifests "$n" || { echo "the unload wrote no manifest while the load waited"; return 1; }
	m=$(ls -t .sluice/stage/unload_slow/*/*/manifest | head -n 1) &&
	part=$(jq -r '.entries[1].url' "$m") &&
	part=${part#file://} &&
	# drop one row whose note is NULL
	sed -i '0,/^[0-9][0-9]*,patient [0-9]*,$/{//d}' "$part" || return 1
	expect_eq 1 "$(bg_wait M 30)" || { cat "$T_DIR/M.log"; return 1; }
	expect_grep "OK unload .*unload_slow" "$T_DIR/M.log" || return 1
	expect_grep "row counts differ: unloaded 3025, manifest record_count 3025, loaded 3024; the target was not touched" "$T_DIR/M.log" || return 1
	expect_eq "$before" "$(table_hash "$T_DB" analytics.slow)" || return 1
	# the load's drop of the leftover rolled back with it
	expect_eq 0 "$(bg_wait L 10)" || return 1
	psql_q "drop table analytics.slow__sluice_new"
}
ok "a part altered after the unload completed it, before the load read it: counts differ, the load rolls back" t_overlap_mismatch

# the same query, failing at row 2000: after the load has read the first parts
model unload_slow "{{ config(materialized='unload', connection='lake', max_file_size='20k') }}
select p.id, p.name, p.note || (1 / (2000 - p.id))::text as note from {{ source('lake', 'patients') }} p,
       lateral (select pg_sleep(case when p.id = 1500 then 3 else 0 end)) s"

t_overlap_unload_fails() {
	local before
	before=$(table_hash "$T_DB" analytics.slow) || return 1
	expect_exit 1 sluice run -s unload_slow slow || return 1
	expect_grep "ERROR unload .*unload_slow" "$T_DIR/out" || return 1
	expect_grep "ERROR load .*slow" "$T_DIR/out" || return 1
	expect_grep "unload 'unload_slow' failed \(.*division by zero.*\); the target was not touched" "$T_DIR/out" || return 1
	# it had read parts: the failure came mid-way, inside its transaction
	[ -n "$(audit_times slow "$LOAD_CALLS")" ] || { echo "the load read no part before the unload failed"; return 1; }
	expect_eq "$before" "$(table_hash "$T_DB" analytics.slow)" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname like '%__sluice_%'")"
}
ok "the unload fails mid-way: both nodes fail, the load names the cause, its target and side table are as before" t_overlap_unload_fails
rm -f models/unload_slow.sql models/slow.sql

# ---- several streams --------------------------------------------------------------

# One unload in 20 KiB parts (about 14), read by two loads: `wide` on three
# connections at once, `narrow` on one.
model unload_many "{{ config(materialized='unload', connection='lake', max_file_size='20k') }}
select id, name, note, born, score, updated_at from {{ source('lake', 'patients') }}"
model wide "{{ config(materialized='load', streams=3) }}
{{ ref('unload_many') }}"
model narrow "{{ config(materialized='load', streams=1) }}
{{ ref('unload_many') }}"
t_streams_rows() {
	expect_exit 0 sluice run -s unload_many wide narrow || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.wide)" || return 1
	expect_eq "$(table_hash "$T_DB" analytics.narrow)" "$(table_hash "$T_DB" analytics.wide)" || return 1
	# the line says how many streams read parts; one stream says nothing
	expect_grep "OK load analytics\.wide \.+ [0-9.]+s 3025 rows \(3 streams\)$" "$T_DIR/out" || return 1
	expect_grep "OK load analytics\.narrow \.+ [0-9.]+s 3025 rows$" "$T_DIR/out" || return 1
	expect_eq "pass pass" "$(rr '[.results[] | select(.unique_id == "model.proj.wide") | .validations[].status] | join(" ")')" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname like '%__sluice_%'")"
}
ok_libpq "ODBC loads through INSERTs, in one stream" \
	"three streams load the same rows as one, counts checked, the line names the streams, no side table left" t_streams_rows

t_streams_again() {
	# a replaced target, read while the unload writes: the same again
	expect_exit 0 sluice run -s unload_many wide --full-refresh || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.wide)" || return 1
	expect_grep "OK load analytics\.wide .*\(3 streams\)$" "$T_DIR/out"
}
ok_libpq "ODBC loads through INSERTs, in one stream" \
	"... and again over an existing target, overlapping the unload" t_streams_again

# part_of MODEL N: the file of part N of MODEL's newest generation
part_of() {
	local m
	m=$(ls -t .sluice/stage/"$1"/*/*/manifest | head -n 1) &&
	jq -r ".entries[$2].url" "$m" | sed 's|^file://||'
}
t_stream_fails() {
	local before part
	before=$(table_hash "$T_DB" analytics.wide) &&
	part=$(part_of unload_many 6) || return 1
	# a value the target's integer column refuses, in one part
	sed -i '2s/^[0-9]*,/x1,/' "$part" || return 1
	expect_exit 1 sluice run -s wide --force || return 1
	expect_grep "ERROR load analytics\.wide" "$T_DIR/out" || return 1
	expect_grep "loading unload_many/.*/part-00006\.csv: .*invalid input syntax for type integer: \"x1\"" "$T_DIR/out" || return 1
	# the parts the other streams had loaded went with the streams' table
	expect_eq "$before" "$(table_hash "$T_DB" analytics.wide)" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname like '%__sluice_%'")"
}
ok_libpq "ODBC loads through INSERTs, in one stream" \
	"a part fails in one stream: the load fails naming it, the other streams' rows go too, target and tables as before" t_stream_fails

t_streams_count() {
	local before part
	expect_exit 0 sluice run -s unload_many --force &&
	before=$(table_hash "$T_DB" analytics.wide) &&
	part=$(part_of unload_many 3) || return 1
	# one whole row less in one part: every COPY succeeds, the counts do not agree
	sed -i '0,/^[0-9][0-9]*,patient [0-9]*,,/{//d}' "$part" || return 1
	expect_exit 1 sluice run -s wide --force || return 1
	expect_grep "row counts differ: unloaded 3025, manifest record_count 3025, loaded 3024; the target was not touched" "$T_DIR/out" || return 1
	expect_eq "$before" "$(table_hash "$T_DB" analytics.wide)" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname like '%__sluice_%'")"
}
ok_libpq "ODBC loads through INSERTs, in one stream" \
	"streams lose a row: the counts are checked before the swap, the target and tables are as before" t_streams_count
rm -f models/unload_many.sql models/wide.sql models/narrow.sql

# ---- unload streams ---------------------------------------------------------------

# A lake table of about 25 MiB on disk: worth three unload streams (one per
# 8 MiB), read whole by one unload in three streams and by one in one.
printf '      - name: big\n' >>models/sources.yml
lake_q "create table lake.big (id int primary key, k text, pad text);
insert into lake.big
select g, case g % 4 when 0 then null when 1 then '' when 2 then e'a\"b,\nc' else 'k' || g end, repeat(md5(g::text), 4)
from generate_series(1, 150000) g"
model unload_big3 "{{ config(materialized='unload', connection='lake', streams=3, max_file_size='2m') }}
select * from {{ source('lake', 'big') }}"
model unload_big1 "{{ config(materialized='unload', connection='lake', streams=1, max_file_size='2m') }}
select * from {{ source('lake', 'big') }}"
model big3 "{{ config(materialized='load', streams=1) }}
{{ ref('unload_big3') }}"

# gen_rows MODEL: the sorted lines of every part of MODEL's newest generation, hashed
gen_rows() {
	local m
	m=$(ls -t .sluice/stage/"$1"/*/*/manifest | head -n 1) &&
	jq -r '.entries[].url' "$m" | sed 's|^file://||' | xargs cat | LC_ALL=C sort | md5sum
}
# gen_count MODEL: the manifest's record_count, and the sum of its entries'
gen_count() {
	local m
	m=$(ls -t .sluice/stage/"$1"/*/*/manifest | head -n 1) &&
	jq -r '"\(.meta.record_count) \([.entries[].meta.record_count] | add)"' "$m"
}
t_unload_streams() {
	expect_exit 0 sluice run -s unload_big3 unload_big1 big3 || return 1
	# the line says how many streams read the table; one stream says nothing
	expect_grep "OK unload [^ ]*unload_big3 \.+ [0-9.]+s 150000 rows \(3 streams\)$" "$T_DIR/out" || return 1
	expect_grep "OK unload [^ ]*unload_big1 \.+ [0-9.]+s 150000 rows$" "$T_DIR/out" || return 1
	# exactly the rows of one stream, each once, and the manifest counts them all
	expect_eq "$(gen_rows unload_big1)" "$(gen_rows unload_big3)" || return 1
	expect_eq "150000 150000" "$(gen_count unload_big3)" || return 1
	expect_eq "$(table_hash "$LAKE" lake.big)" "$(table_hash "$T_DB" analytics.big3)" || return 1
	expect_eq pass "$(rr '.results[] | select(.unique_id == "model.proj.unload_big3") | .validations[0].status')" || return 1
	# the streams' transactions are over: no session of the run is left on the lake
	expect_eq 0 "$(lake_q "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()")"
}
ok_libpq "COPY streams need libpq" \
	"an unload of a whole table reads it in three streams: the same rows as one stream, counted, the line names them" t_unload_streams

# The lake through a login limited to 7 sessions: the connection budget
# reads the role's limit (a superuser's is not one).
ROLE="${T_DB}_lake"
lake_q "create role \"$ROLE\" login password 'lake-secret' connection limit 7;
grant usage on schema lake to \"$ROLE\"; grant select on lake.big to \"$ROLE\"" >/dev/null
at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"$LAKE\" WITH (FORCE)' -c 'DROP ROLE IF EXISTS \"$ROLE\"' >/dev/null 2>&1"
cat >>profiles.yml <<YML
        lake_small:
          type: postgres
          host: "$SLUICE_TEST_PGHOST"
          port: $SLUICE_TEST_PGPORT
          user: "$ROLE"
          password: lake-secret
          dbname: "$LAKE"
          schema: lake
YML
model unload_small "{{ config(materialized='unload', connection='lake_small', streams=3, max_file_size='2m') }}
select * from lake.big"
t_unload_streams_budget() {
	# room for the run's four workers (one of them the main connection), 2 kept free, and one session more
	expect_exit 0 sluice run -s unload_small || return 1
	expect_grep "unload_small: 2 streams, not 3: connection 'lake_small' has room for 1 more session$" "$T_DIR/out" || return 1
	expect_grep "OK unload [^ ]*unload_small \.+ [0-9.]+s 150000 rows \(2 streams\)$" "$T_DIR/out" || return 1
	expect_eq "$(gen_rows unload_big1)" "$(gen_rows unload_small)"
}
ok_libpq "COPY streams need libpq" \
	"unload streams count in the connection budget: fewer streams when the lake has room for fewer sessions" t_unload_streams_budget

# compression: zstd. Parts are zstd frames (.csv.zst), smaller than the CSV
# they hold; the load gets the CSV back, counts checked as ever.
model unload_z "{{ config(materialized='unload', connection='lake', compression='zstd', max_file_size='100k') }}
select id, name, note, born, score, updated_at from {{ source('lake', 'patients') }}"
model patients_z "{{ config(materialized='load') }}
{{ ref('unload_z') }}"
t_zstd() {
	local m f
	expect_exit 0 sluice run -s unload_z patients_z || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients_z)" || return 1
	expect_eq "pass pass" "$(rr '[.results[] | select(.unique_id == "model.proj.patients_z") | .validations[].status] | join(" ")')" || return 1
	m=$(ls -t .sluice/stage/unload_z/*/*/manifest | head -n 1) &&
	f=$(jq -r '.entries[0].url' "$m" | sed 's|^file://||') || return 1
	case $f in */part-00000.csv.zst) ;; *) echo "not a zstd part: $f"; return 1 ;; esac
	# the zstd magic number, and fewer bytes than the part's CSV
	expect_eq "28b52ffd" "$(od -An -tx1 -N4 "$f" | tr -d ' \n')" || return 1
	[ "$(jq -r '.entries[0].meta.content_length' "$m")" -lt 60000 ] || { jq . "$m"; return 1; }
}
ok "compression: zstd: parts are zstd frames, the load reads the rows back, counts checked" t_zstd

# Rows of exactly 64 bytes in 64 KiB parts: each part's CSV fills the
# load's 64 KiB decompression buffer exactly, where a frame ends.
model unload_z "{{ config(materialized='unload', connection='lake', compression='zstd', max_file_size='64k') }}
select lpad(id::text, 63, '0') as line from {{ source('lake', 'patients') }}"
t_zstd_exact() {
	expect_exit 0 sluice run -s unload_z patients_z --full-refresh || return 1
	expect_eq "$(lake_q "select count(*) from lake.patients")" "$(psql_q "select count(distinct line) from analytics.patients_z")" || return 1
	expect_eq "65536" "$(jq -r '[.entries[].meta.record_count] | .[0] * 64' "$(ls -t .sluice/stage/unload_z/*/*/manifest | head -n 1)")"
}
ok "compression: zstd: parts that end exactly at the load's buffer size" t_zstd_exact

t_compression_unknown() {
	model unload_z "{{ config(materialized='unload', connection='lake', compression='lz4') }}
select 1 as one"
	expect_exit 1 sluice run -s unload_z || return 1
	expect_grep "compression: 'lz4' is not one of none, gzip, zstd" "$T_DIR/out"
}
ok "an unknown compression is an error that names it" t_compression_unknown
rm -f models/unload_z.sql models/patients_z.sql

# ---- faults -------------------------------------------------------------------

t_altered_part() {
	local before m part
	expect_exit 0 sluice run --full-refresh -s unload_patients || return 1
	before=$(table_hash "$T_DB" analytics.patients) || return 1
	m=$(ls -t .sluice/stage/unload_patients/*/*/manifest | head -n 1) || return 1
	part=$(jq -r '.entries[1].url' "$m") || return 1
	part=${part#file://}
	# drop one whole row from the part (lines of the numeric ids only)
	sed -i '0,/^[0-9][0-9]*,patient [0-9]*,,/{//d}' "$part" || return 1
	expect_exit 1 sluice run -s patients --force || return 1
	expect_grep "row counts differ: unloaded 3025, manifest record_count 3025, loaded 3024; the target was not touched" "$T_DIR/out" || return 1
	expect_eq "$before" "$(table_hash "$T_DB" analytics.patients)" || return 1
	expect_eq "" "$(psql_q "select relname from pg_class where relname like '%__sluice_%'")" || return 1
	expect_eq fail "$(rr '.results[] | select(.unique_id == "model.proj.patients") | .validations[1].status')"
}
ok "a part altered between unload and load: the load fails naming the three counts; target unchanged, no side table left" t_altered_part

t_recover() {
	# the unload's generation is still the altered one: rebuilding the unload fixes it
	expect_exit 0 sluice run -s unload_patients+ --force || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients)"
}
ok "... and a fresh transfer repairs it" t_recover

t_new_column() {
	model unload_patients "{{ config(materialized='unload', connection='lake', max_file_size='40k', stage_retention=2) }}
select id, name, note, born, score, updated_at, upper(name) as shout from {{ source('lake', 'patients') }}
{% if is_incremental() %}where updated_at > {{ watermark }}{% endif %}"
	expect_exit 0 sluice run -s unload_patients+ || return 1
	expect_grep "OK unload .* 3025 rows" "$T_DIR/out" || return 1
	expect_eq "3025 PATIENT 7" "$(psql_q "select count(*) || ' ' || max(shout) filter (where id = 7) from analytics.patients")"
}
ok "the unload's query gains a column: everything is sent again and the target takes the new schema" t_new_column

t_stage_deleted() {
	rm -rf .sluice/stage || return 1
	plan_out || return 1
	expect_eq build "$(plan_action unload_patients)" || return 1
	expect_line "its last stage generation is missing (deleted outside sluice?)" "$(plan_reasons unload_patients)"
}
ok "a deleted stage generation is noticed: the unload runs again" t_stage_deleted

t_bad_load() {
	model bad_load "{{ config(materialized='load') }}
select * from {{ ref('patients') }}"
	expect_exit 1 sluice run -s bad_load || return 1
	expect_grep "models/bad_load.sql: a load model's body is one \{\{ ref\('<unload model>'\) \}\} or \{\{ source\('<s3 source>', '<table>'\) \}\}" "$T_DIR/out"
}
ok "a load that does not read an unload or an S3 source is an error naming the file" t_bad_load
rm -f models/bad_load.sql

# ---- S3 sources: files versioned by listing ------------------------------------

mkdir -p "$T_DIR/drop"
printf 'id,label\n1,alpha\n2,"b, c"\n' >"$T_DIR/drop/a.csv"
cat >models/files.yml <<YML
sources:
  - name: drop
    tables:
      - name: codes
        location: "file://$T_DIR/drop/"
        format: csv
        header: true
        columns:
          - name: id
            data_type: integer
          - name: label
            data_type: text
YML
model codes "{{ config(materialized='load') }}
{{ source('drop', 'codes') }}"

t_s3_source() {
	expect_exit 0 sluice run -s codes || return 1
	expect_eq "1:alpha 2:b, c" "$(psql_q "select string_agg(id || ':' || label, ' ' order by id) from analytics.codes")" || return 1
	expect_exit 0 sluice run -s codes || return 1
	expect_eq reused "$(rr_status codes)" || return 1
	printf 'id,label\n3,gamma\n' >"$T_DIR/drop/b.csv"
	expect_exit 0 sluice run -s codes || return 1
	expect_eq success "$(rr_status codes)" || return 1
	expect_line "source 'drop.codes' changed" "$(rr_reasons codes | sed 's/ (.*//')" || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics.codes")"
}
ok "a source with location: (header lines skipped) a new file makes its load stale; unchanged files are not re-read" t_s3_source

# ---- through s3rver -----------------------------------------------------------

if [ -n "${SLUICE_TEST_S3_UNAVAILABLE:-}" ]; then
	for d in "s3rver: round trip with multipart parts" "s3rver: a part upload fails" "s3rver: the server stopped mid-unload"; do
		T_COUNT=$((T_COUNT + 1))
		echo "ok $T_COUNT # skip $d: $SLUICE_TEST_S3_UNAVAILABLE"
	done
	done_testing
	exit
fi

sh "$HARNESS/s3.sh" start "$T_DIR/s3" >"$T_DIR/s3.env" || { echo "Bail out! cannot start s3rver"; exit 1; }
at_exit "sh '$HARNESS/s3.sh' stop '$T_DIR/s3' >/dev/null 2>&1"
. "$T_DIR/s3.env"
cat >>profiles.yml <<YML
      stage: s3://$SLUICE_TEST_S3_BUCKET/stage
      s3:
        endpoint: $SLUICE_TEST_S3_ENDPOINT
        region: $SLUICE_TEST_S3_REGION
        access_key_id: $SLUICE_TEST_S3_ACCESS_KEY_ID
        secret_access_key: "{{ env_var('S3_SECRET') }}"
        part_size: 65536
        allow_small_parts: true
        max_attempts: 2
YML
export S3_SECRET="$SLUICE_TEST_S3_SECRET_ACCESS_KEY"
model unload_patients "{{ config(materialized='unload', connection='lake', max_file_size='300k', gzip=true) }}
select id, name, note, born, score, updated_at from {{ source('lake', 'patients') }}"

# has_part N: s3rver holds part N of some unload_patients generation
has_part() { find "$T_DIR/s3/data/$SLUICE_TEST_S3_BUCKET/stage/unload_patients" -name "part-$1*" | grep -q .; }

t_s3_roundtrip() {
	expect_exit 0 sluice run -s unload_patients patients --full-refresh || return 1
	expect_eq "$(table_hash "$LAKE" lake.patients)" "$(table_hash "$T_DB" analytics.patients)" || return 1
	# 300 KiB parts go up as multipart uploads of 64 KiB parts
	has_part 00000.csv.gz || { echo "no gzipped part in the bucket"; find "$T_DIR/s3/data" | head; return 1; }
	expect_no_grep "$SLUICE_TEST_S3_SECRET_ACCESS_KEY" target/run_results.json
}
ok "s3rver: round trip with gzipped multipart parts, equal rows, no secret in the artifacts" t_s3_roundtrip

model unload_slow "{{ config(materialized='unload', connection='lake', max_file_size='20k', gzip=true) }}
select p.id, p.name, p.note from {{ source('lake', 'patients') }} p,
       lateral (select pg_sleep(case when p.id = 1500 then 3 else 0 end)) s"
model slow "{{ config(materialized='load') }}
{{ ref('unload_slow') }}"
t_s3_overlap() {
	expect_exit 0 sluice run -s unload_slow slow --full-refresh || return 1
	expect_eq "$(table_hash "$LAKE" "(select id, name, note from lake.patients)")" \
		"$(table_hash "$T_DB" analytics.slow)" || return 1
	overlapped unload_slow slow
}
ok "s3rver: the load reads gzipped parts while the lake's query still runs, equal rows" t_s3_overlap
rm -f models/unload_slow.sql models/slow.sql

# A proxy in front of s3rver fails every upload of multipart part 3 with
# HTTP 500. One stage file of about 270 KiB goes up in 64 KiB parts, the
# next part filling while the one before it is sent.
model unload_patients "{{ config(materialized='unload', connection='lake', max_file_size='1m') }}
select id, name, note, born, score, updated_at from {{ source('lake', 'patients') }}"
# via_proxy NAME ARG...: s3-fault-proxy.js ARG... (after s3rver's port) in
# the background as NAME, and profiles.yml pointed at it; the profile of
# s3rver itself is kept in $T_DIR/profiles.s3rver.yml, to put back.
via_proxy() {
	local name=$1 port
	shift
	bg_start "$name" node "$HARNESS/s3-fault-proxy.js" "${SLUICE_TEST_S3_ENDPOINT##*:}" "$@" || return 1
	at_exit "kill $BG_PID 2>/dev/null" || return 1
	wait_until 10 grep -q '^listening' "$T_DIR/$name.log" || { cat "$T_DIR/$name.log"; return 1; }
	port=$(sed -n 's/^listening //p' "$T_DIR/$name.log") || return 1
	sed "s|endpoint: $SLUICE_TEST_S3_ENDPOINT|endpoint: http://127.0.0.1:$port|" profiles.yml >"$T_DIR/profiles.yml" &&
	cp profiles.yml "$T_DIR/profiles.s3rver.yml" && cp "$T_DIR/profiles.yml" profiles.yml
}
t_s3_part_fails() {
	local before rc
	before=$(table_hash "$T_DB" analytics.patients) || return 1
	via_proxy P 3 "$T_DIR/proxy.log" || return 1
	expect_exit 1 sluice run -s unload_patients patients --full-refresh
	rc=$?
	cp "$T_DIR/profiles.s3rver.yml" profiles.yml && [ $rc -eq 0 ] || return 1
	expect_grep "s3 PUT s3://$SLUICE_TEST_S3_BUCKET/stage/unload_patients/.*/part-00000.csv: InternalError: part failed by the test \\(HTTP 500\\)" \
		"$T_DIR/out" || return 1
	# parts 1 and 2 went up; after the failed part 3 the upload was aborted
	expect_grep "^PUT /$SLUICE_TEST_S3_BUCKET/stage/unload_patients/.*partNumber=2&" "$T_DIR/proxy.log" || return 1
	expect_grep "^DELETE /$SLUICE_TEST_S3_BUCKET/stage/unload_patients/.*/part-00000.csv\\?uploadId=" "$T_DIR/proxy.log" || return 1
	expect_no_grep "^POST .*part-00000.csv\\?uploadId=" "$T_DIR/proxy.log" || return 1
	# no manifest: no load can read the generation, and the target is as it was
	expect_no_grep "^PUT .*/manifest" "$T_DIR/proxy.log" || return 1
	expect_eq "$before" "$(table_hash "$T_DB" analytics.patients)"
}
ok "s3rver: a multipart part upload fails: the unload fails naming it, the upload is aborted, no manifest, target unchanged" t_s3_part_fails

# Unload streams through s3rver: every upload of part file 1 fails, in
# whichever of the three streams writes it; the load reads as they write.
t_s3_stream_fails() {
	local before rc
	before=$(table_hash "$T_DB" analytics.big3) || return 1
	via_proxy Q 0 "$T_DIR/proxy-streams.log" /part-00001.csv || return 1
	expect_exit 1 sluice run -s unload_big3 big3 --full-refresh
	rc=$?
	cp "$T_DIR/profiles.s3rver.yml" profiles.yml && [ $rc -eq 0 ] || return 1
	expect_grep "ERROR unload [^ ]*unload_big3" "$T_DIR/out" || return 1
	expect_grep "s3 PUT s3://$SLUICE_TEST_S3_BUCKET/stage/unload_big3/.*/part-00001.csv: InternalError: part failed by the test \\(HTTP 500\\)" \
		"$T_DIR/out" || return 1
	expect_grep "unload 'unload_big3' failed \(s3 PUT .*part-00001.csv: .*\); the target was not touched" "$T_DIR/out" || return 1
	# the other streams stopped: parts 0 and 2 were started, and no part past a few
	expect_grep "^PUT /$SLUICE_TEST_S3_BUCKET/stage/unload_big3/.*/part-00002.csv" "$T_DIR/proxy-streams.log" || return 1
	expect_no_grep "^PUT /$SLUICE_TEST_S3_BUCKET/stage/unload_big3/.*/part-0000[6-9].csv" "$T_DIR/proxy-streams.log" || return 1
	# the failed part's upload is aborted; no manifest: no load can read the generation
	expect_grep "^DELETE /$SLUICE_TEST_S3_BUCKET/stage/unload_big3/.*/part-00001.csv\\?uploadId=" "$T_DIR/proxy-streams.log" || return 1
	expect_no_grep "^PUT .*/manifest" "$T_DIR/proxy-streams.log" || return 1
	expect_eq "$before" "$(table_hash "$T_DB" analytics.big3)"
}
ok_libpq "COPY streams need libpq" \
	"s3rver: a part fails in one unload stream: the others stop, the unload fails naming it, no manifest, target unchanged" t_s3_stream_fails

# the lake pauses at row 1500, after some parts are uploaded
model unload_patients "{{ config(materialized='unload', connection='lake', max_file_size='20k') }}
select p.id, p.name, p.note, p.born, p.score, p.updated_at
from {{ source('lake', 'patients') }} p, lateral (select pg_sleep(case when p.id = 1500 then 4 else 0 end)) s"
t_s3_down() {
	local before
	before=$(table_hash "$T_DB" analytics.patients) || return 1
	bg_start U "$SLUICE_BIN" run -s unload_patients patients || return 1
	# parts before row 1500 are uploaded; then the server goes away
	wait_until 20 has_part 00001 ||
		{ echo "no part was uploaded"; cat "$T_DIR/U.log"; return 1; }
	sh "$HARNESS/s3.sh" stop "$T_DIR/s3" >/dev/null 2>&1 || return 1
	expect_eq 1 "$(bg_wait U 60)" || { cat "$T_DIR/U.log"; return 1; }
	expect_grep "ERROR unload .*unload_patients" "$T_DIR/U.log" || return 1
	expect_grep "s3 PUT s3://$SLUICE_TEST_S3_BUCKET/stage/unload_patients/.*part-0000[0-9].csv: .*(Couldn't connect|connect)" "$T_DIR/U.log" || return 1
	# the load was reading the parts as they came: it fails with the unload,
	# or first, on a part it could no longer get
	expect_grep "ERROR load .*patients" "$T_DIR/U.log" || return 1
	expect_grep "unload 'unload_patients' failed \(s3 PUT .*\); the target was not touched|loading unload_patients/.*part-[0-9]+.csv: s3 GET .*connect" "$T_DIR/U.log" || return 1
	expect_eq "$before" "$(table_hash "$T_DB" analytics.patients)"
}
ok "s3rver: the server stopped mid-unload: both nodes fail clearly, the target is unchanged" t_s3_down

done_testing
