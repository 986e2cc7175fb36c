#!/bin/sh
# tests/bench/report.sh (part of make bench): target/report.html for a
# 10,000-model project (tests/bench/gen-project.sh), from a compiled
# manifest and a synthetic run_results.json (4 workers; 70% reused, 28%
# built, 1% failed, 1% skipped), so no database is needed. Measures:
# `sluice report` (reference: jq reading the same artifacts), the page's
# size (reference: the artifacts it embeds), and its time to interactive
# in headless Chromium (tests/harness/report-check.js; reference: a page
# that only embeds and parses the same run_results.json). Prints a
# markdown table for docs/benchmarks.md.
set -eu
command -v chromium >/dev/null || { echo "tests/bench/report.sh needs Debian's chromium (make deps installs it)" >&2; exit 1; }
top=$(pwd)
tmp=$(mktemp -d /tmp/sluice-bench-report.XXXXXX)
trap '[ -n "${SLUICE_BENCH_KEEP:-}" ] || rm -rf "$tmp"' EXIT
. "$top/tests/bench/lib.sh"
N=${SLUICE_BENCH_REPORT_MODELS:-10000}
p="$tmp/p"

sh "$top/tests/bench/gen-project.sh" "$p" "$N"
"$top/sluice" compile --project-dir "$p" >/dev/null
jq -c '
	def at(s): (1764676800 + s) | strftime("%Y-%m-%dT%H:%M:%S.000000Z");
	[.nodes[] | select(.resource_type == "model")] as $m
	| ($m | length) as $n
	| { metadata: (.metadata + {exit_status: 1}), elapsed_time: ($n * 0.005 + 1), args: {which: "run", threads: 4},
	    results: [ $m | to_entries[] | .key as $k | .value as $v
		| ($k % 100) as $r
		| (if $r < 70 then "reused" elif $r < 98 then "success" elif $r < 99 then "error" else "skipped" end) as $s
		| { unique_id: $v.unique_id, status: $s, thread_id: "Thread-\($k % 4 + 1)",
		    execution_time: 0.018, relation_name: $v.relation_name,
		    reasons: (if $s == "success" then ["definition changed: code", "upstream changed: \($v.depends_on.nodes[0] // "none")"] else [] end),
		    message: (if $s == "error" then "relation \"lake.missing\" does not exist" elif $s == "reused" then "up to date: fingerprint unchanged" else "OK" end),
		    adapter_response: {rows_affected: (if $s == "success" then 100 else null end)},
		    fingerprint: "0123456789abcdef0123456789abcdef",
		    timing: [{name: "execute", started_at: at($k * 0.005), completed_at: at($k * 0.005 + 0.018)}] } ],
	    sources: [range(10) | {unique_id: "source.bench.lake.t\(.)", version: "stats:1:\(.)", previous: "stats:1:\(.)", changed: false}] }
' "$p/target/manifest.json" >"$p/target/run_results.json"

ref=$(best_of 5 jq -c . "$p/target/run_results.json" "$p/target/manifest.json")
r=$(best_of 5 "$top/sluice" report --project-dir "$p")
size=$(wc -c <"$p/target/report.html")
artifacts=$(cat "$p/target/run_results.json" "$p/target/manifest.json" | wc -c)
# the floor: a page that only embeds run_results.json the same way and parses it
{
	printf '<!doctype html><html><body><script type="application/json" id="d">'
	sed 's/</\\u003c/g' "$p/target/run_results.json"
	printf '</script><script>var d = JSON.parse(document.getElementById("d").textContent);'
	printf ' document.body.dataset.readyMs = String(Math.round(performance.now())); document.body.dataset.ready = "1";</script></body></html>'
} >"$tmp/reference.html"
# best of 3 page loads, each in a fresh browser
load() {
	best=""
	for _ in 1 2 3; do
		node "$top/tests/harness/report-check.js" "$@" >"$tmp/facts.json"
		ms=$(jq -r .ready_ms "$tmp/facts.json")
		if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; cp "$tmp/facts.json" "$tmp/best.json"; fi
	done
	echo "$best"
}
ref_ms=$(load "$tmp/reference.html")
page_ms=$(load "$p/target/report.html" --ungroup 1)
ungroup_ms=$(jq -r .ungroup_ms "$tmp/best.json")
heap=$(jq -r .js_heap_mib "$tmp/best.json")

echo "## The run report (issue 12)"
echo
echo "| models | measure | value | peak memory (MiB) | reference | ratio |"
echo "|---|---|---|---|---|---|"
printf '| %s | `sluice report` wall (s) | %s | %s (RSS) | jq reading the same artifacts: %s s | %sx |\n' "$N" "${r% *}" \
	"$(mib "${r#* }")" "${ref% *}" "$(ratio "${r% *}" "${ref% *}")"
printf '| %s | report.html size (MiB) | %s | | run_results.json + manifest.json: %s MiB | %sx |\n' "$N" \
	"$(mib $((size / 1024)))" "$(mib $((artifacts / 1024)))" "$(ratio "$size" "$artifacts")"
printf '| %s | time to interactive in Chromium, grouped by folder (ms) | %s | %s (JS heap) | a page that only parses run_results.json: %s ms | %sx |\n' \
	"$N" "$page_ms" "$heap" "$ref_ms" "$(ratio "$page_ms" "$ref_ms")"
printf '| %s | then drawing all %s nodes ungrouped (ms) | %s | | | |\n' "$N" "$N" "$ungroup_ms"
