# tests/bench/lib.sh: helpers the benchmark scripts share. Needs $tmp (a
# scratch directory) and GNU time.

# best_of N CMD...: the fastest wall time of N runs (seconds) and the peak
# RSS of that run (KiB), as "secs kib".
best_of() {
	runs=$1
	shift
	best=""
	for _ in $(seq "$runs"); do
		/usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" ||
			{ cat "$tmp/err" >&2; exit 1; }
		line=$(cat "$tmp/time")
		if [ -z "$best" ] || awk -v a="${line% *}" -v b="${best% *}" 'BEGIN { exit !(a < b) }'; then
			best=$line
		fi
	done
	echo "$best"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }

# mib KIB: KiB as MiB with one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# three_runs CMD...: three runs of CMD, as "min median max maxrss" (seconds,
# and the largest peak RSS of the three in KiB).
three_runs() {
	: >"$tmp/three"
	for _ in 1 2 3; do
		/usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" ||
			{ cat "$tmp/err" >&2; exit 1; }
		cat "$tmp/time" >>"$tmp/three"
	done
	sort -n "$tmp/three" | awk '{ t[NR] = $1; if ($2 > m) m = $2 } END { print t[1], t[2], t[3], m }'
}

# embedded_project DIR: DIR's project on its own embedded PostgreSQL
# (started, left running: `sluice embedded remove` it), with the 10 lake
# tables gen-project.sh's sources name; PG* of it exported.
embedded_project() {
	cat >"$1/profiles.yml" <<YML
bench:
  target: dev
  outputs:
    dev: {type: postgres, embedded: true, dbname: bench, schema: analytics, threads: 2}
YML
	"$top/sluice" embedded start --project-dir "$1" >/dev/null
	"$top/sluice" debug --project-dir "$1" >/dev/null
	env_line=$("$top/sluice" embedded env --project-dir "$1")
	eval "$env_line"
	psql -X -q -d bench -c "create schema if not exists lake" >/dev/null
	for t in 0 1 2 3 4 5 6 7 8 9; do
		psql -X -q -d bench -c "create table if not exists lake.t$t as
			select i as a, i as b, i as c, i as d, now() as created_at from generate_series(1, 100) i" >/dev/null
	done
}
