#!/bin/sh
# Reuse across environments (issue 18): the demo's Alice build with and
# without reuse_from. A copy of the example project on its own embedded
# PostgreSQL is built by dev, nightly load included, as `make demo` does;
# then Alice's one-mart change is built in a target of her own that has
# never run, three times with `reuse_from: [dev]` and three times in one
# without it (each time from an empty schema and state). Run by run.sh;
# alone: sh tests/bench/reuse.sh (from the repository's root).
set -eu
top=$(pwd)
if [ -z "${tmp:-}" ]; then
	tmp=$(mktemp -d /tmp/sluice-bench.XXXXXX)
	trap '"$top/sluice" embedded remove --project-dir "$tmp/preuse" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
fi
. "$top/tests/bench/lib.sh"
p="$tmp/preuse"
mkdir -p "$p"
git -C "$top" ls-files -z models demo sluice.yml profiles.yml | (cd "$top" && xargs -0 cp --parents -t "$p")
cd "$p"
# Alice's twin without reuse_from: the same output under another name and schema
sed -n '/^    dev_alice:$/,$p' profiles.yml | sed 's/^    dev_alice:$/    dev_solo:/; s/schema: analytics_alice$/schema: analytics_solo/; /reuse_from:/d' >"$tmp/solo.yml"
cat "$tmp/solo.yml" >>profiles.yml
"$top/sluice" embedded start >/dev/null
"$top/sluice" debug >/dev/null
eval "$("$top/sluice" embedded env)"
psql -X -q -v ON_ERROR_STOP=1 -d lake -f demo/lake.sql
"$top/sluice" build >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d lake -f demo/nightly.sql
"$top/sluice" build >/dev/null
sed -i 's/round(avg(v.vaf)::numeric, 3) as mean_vaf/round(avg(v.vaf)::numeric, 2) as mean_vaf/' models/marts/gene_burden.sql

# fresh TARGET SCHEMA_PREFIX: TARGET as if it had never run
fresh() {
	rm -f .sluice/state/"$1".*
	for s in $(psql -X -A -t -d clinic -c "select nspname from pg_namespace where nspname like '$2%'"); do
		psql -X -q -d clinic -c "drop schema $s cascade" 2>/dev/null
	done
}
# builds TARGET SCHEMA_PREFIX: three builds from nothing, as "min median max maxrss built"
builds() {
	: >"$tmp/three"
	for _ in 1 2 3; do
		fresh "$1" "$2"
		/usr/bin/time -f '%e %M' -o "$tmp/time" "$top/sluice" build --target "$1" >"$tmp/out" 2>&1 ||
			{ cat "$tmp/out" >&2; exit 1; }
		cat "$tmp/time" >>"$tmp/three"
	done
	built=$(sed -n 's/^Done in .*: \([0-9]*\) ok, .*/\1/p' "$tmp/out")
	sort -n "$tmp/three" | awk -v n="$built" '{ t[NR] = $1; if ($2 > m) m = $2 } END { print t[1], t[2], t[3], m, n }'
}
with=$(builds dev_alice analytics_alice)
without=$(builds dev_solo analytics_solo)
"$top/sluice" embedded remove >/dev/null

echo "| Alice's build (one mart changed) | models built | wall min / median / max (s) | peak RSS (MiB) | speed-up (median without / with) |"
echo "|---|---|---|---|---|"
set -- $with
printf '| with reuse_from: [dev] | %s of 17 | %s / %s / %s | %s | %sx |\n' "$5" "$1" "$2" "$3" "$(mib "$4")" \
	"$(ratio "$(echo "$without" | cut -d' ' -f2)" "$2")"
set -- $without
printf '| without | %s of 17 | %s / %s / %s | %s | 1.0x |\n' "$5" "$1" "$2" "$3" "$(mib "$4")"
