#!/bin/sh
# tests/bench/stages.sh (run by tests/bench/run.sh): move a table of N rows
# lake -> stage -> warehouse with an unload and a load model, through the
# file:// stage and through s3rver, against the direct pipe
#   psql -c "\copy (select ...) to stdout" | psql -c "\copy t from stdin"
# and against pg_dump -t lake.t | psql, between the same two databases of
# the same embedded PostgreSQL, in the same run. Each is run BENCH_RUNS
# times (default 3) and shown as min/median/max seconds. Prints a markdown
# table: the time of each hop (the unload's and the load's execution_time
# in run_results.json, medians; they overlap, the load reading parts while
# the unload writes them), the whole run's wall time, the pipe's and
# pg_dump's, the throughput ratio (median pipe time / median sluice time)
# and sluice's largest peak RSS; through s3rver also the CPU seconds
# s3rver itself used during the run (median), which bounds what sluice can
# do on a small machine; then `uptime`, since the figures mean little on a
# loaded machine.
#   sh tests/bench/stages.sh [ROWS...]     default: 1000000 5000000
# BENCH_THREADS (default 2): the run's threads; 1 runs the hops one after
# the other. BENCH_STREAMS: the load's `streams` (default: from threads);
# BENCH_UNLOAD_STREAMS the unload's (default: from threads).
# BENCH_COMPRESSION: the unload's `compression` (none, gzip, zstd).
# BENCH_FORMAT: the unload's `format` (csv, binary).
# BENCH_PART (default 16m): the unload's max_file_size, the grain at which
# the load starts and its streams share the work.
set -eu
top=$(pwd)
tmp=$(mktemp -d /tmp/sluice-bench-stage.XXXXXX)
p=$tmp/proj
cleanup() {
	"$top/sluice" embedded remove --project-dir "$p" >/dev/null 2>&1 || true
	sh "$top/tests/harness/s3.sh" stop "$tmp/s3" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
[ $# -gt 0 ] || set -- 1000000 5000000

mkdir -p "$p/models"
cat >"$p/sluice.yml" <<'YML'
name: bench
profile: bench
YML
write_profile() {
	cat >"$p/profiles.yml" <<YML
bench:
  target: dev
  outputs:
    dev:
      type: postgres
      embedded: true
      dbname: wh
      schema: wh
      threads: ${BENCH_THREADS:-2}
$1
      connections:
        lake: {type: postgres, embedded: true, dbname: lake, schema: lake}
YML
}
write_profile ""
cat >"$p/models/sources.yml" <<'YML'
sources:
  - name: lake
    connection: lake
    tables: [{name: t}]
YML
cat >"$p/models/unload_t.sql" <<YML
{{ config(materialized='unload', connection='lake', stage_retention=1, max_file_size='${BENCH_PART:-16m}'${BENCH_UNLOAD_STREAMS:+, streams=$BENCH_UNLOAD_STREAMS}${BENCH_COMPRESSION:+, compression='$BENCH_COMPRESSION'}${BENCH_FORMAT:+, format='$BENCH_FORMAT'}) }}
select * from {{ source('lake', 't') }}
YML
cat >"$p/models/t.sql" <<YML
{{ config(materialized='load'${BENCH_STREAMS:+, streams=$BENCH_STREAMS}) }}
{{ ref('unload_t') }}
YML

"$top/sluice" embedded start --project-dir "$p" >/dev/null
"$top/sluice" debug --project-dir "$p" >/dev/null
eval "$("$top/sluice" embedded env --project-dir "$p")"

# timed CMD...: "secs kib" of one run
timed() {
	/usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
	cat "$tmp/time"
}

s3=""
if sh "$top/tests/harness/s3.sh" start "$tmp/s3" >"$tmp/s3.env" 2>/dev/null; then
	. "$tmp/s3.env"
	s3=yes
fi

# s3cpu: CPU seconds s3rver has used so far (user + system), or 0 without it
s3cpu() {
	[ -f "$tmp/s3/s3rver.pid" ] || { echo 0; return; }
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$(cat "$tmp/s3/s3rver.pid")/stat"
}

# hop NODE: the node's execution_time in the last run, in seconds
hop() {
	jq -r --arg n "model.bench.$1" '.results[] | select(.unique_id == $n) | .execution_time * 100 | round / 100' \
		"$p/target/run_results.json"
}

runs=${BENCH_RUNS:-3}
# mmm "a b c ...": min/median/max of the numbers
mmm() { echo "$1" | tr " " "\n" | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%s/%s/%s", v[1], v[int((NR + 1) / 2)], v[NR] }'; }
med() { echo "$1" | tr " " "\n" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "| rows | path | unload hop (s, median) | load hop (s, median) | sluice (s, min/med/max) | psql pipe (s) | pg_dump \\| psql (s) | throughput vs pipe (medians) | sluice peak RSS (MiB, max) | s3rver CPU (s, median) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in "$@"; do
	psql -X -q -d lake -c "drop schema if exists lake cascade; create schema lake;
		create table lake.t as select i as id, 'name ' || i as name, (i % 1000) / 7.0 as amount,
		timestamptz '2026-01-01' + i * interval '1 second' as created_at, md5(i::text) as note
		from generate_series(1, $n) i" >/dev/null &&
	psql -X -q -d lake -c "vacuum analyze lake.t" >/dev/null
	pipe="" dump=""
	for i in $(seq "$runs"); do
		psql -X -q -d wh -c "drop table if exists public.ref_t; create table public.ref_t
			(id int, name text, amount numeric, created_at timestamptz, note text)" >/dev/null
		r=$(timed sh -c 'psql -X -q -d lake -c "\copy (select * from lake.t) to stdout" |
			psql -X -q -d wh -c "\copy public.ref_t from stdin"')
		pipe="$pipe ${r% *}"
		# pg_dump -t writes no CREATE SCHEMA: without one the restore fails
		# at CREATE TABLE, and psql would read the COPY's rows as SQL
		psql -X -q -d wh -c "drop schema if exists lake cascade; create schema lake" >/dev/null 2>&1
		r=$(timed sh -c 'pg_dump -d lake -t lake.t | psql -X -q -v ON_ERROR_STOP=1 -d wh')
		dump="$dump ${r% *}"
	done
	pipe=${pipe# } dump=${dump# }
	for path in file s3rver; do
		if [ "$path" = s3rver ]; then
			[ -n "$s3" ] || { echo "| $n | s3rver | skipped: s3rver could not be started | | | | | | |"; continue; }
			write_profile "      stage: s3://$SLUICE_TEST_S3_BUCKET/stage
      s3: {endpoint: $SLUICE_TEST_S3_ENDPOINT, region: us-east-1, access_key_id: S3RVER, secret_access_key: S3RVER}"
		else
			write_profile ""
		fi
		wall="" un="" ld="" rss=0 cpu=""
		for i in $(seq "$runs"); do
			c0=$(s3cpu)
			r=$(timed "$top/sluice" run --full-refresh --project-dir "$p")
			[ "$path" = s3rver ] && cpu="$cpu $(awk -v a="$c0" -v b="$(s3cpu)" 'BEGIN { printf "%.2f", b - a }')"
			[ -n "${BENCH_VERBOSE:-}" ] && grep -E "OK (un)?load" "$tmp/out" >&2
			got=$(psql -X -A -t -d wh -c "select count(*) from wh.t")
			[ "$got" = "$n" ] || { echo "loaded $got rows, expected $n" >&2; exit 1; }
			wall="$wall ${r% *}" un="$un $(hop unload_t)" ld="$ld $(hop t)"
			[ "${r#* }" -gt "$rss" ] && rss=${r#* }
		done
		printf '| %s | %s | %s | %s | %s | %s | %s | %.2fx | %.1f | %s |\n' "$n" "$path" "$(med "$un")" "$(med "$ld")" \
			"$(mmm "$wall")" "$(mmm "$pipe")" "$(mmm "$dump")" \
			"$(awk -v a="$(med "$pipe")" -v b="$(med "$wall")" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
			"$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "${cpu:+$(med "$cpu")}"
	done
done
echo
echo "uptime at the end: $(uptime)"
