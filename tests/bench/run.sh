#!/bin/sh
# make bench: every benchmark, figures as ratios against a reference
# measured in the same run, with peak RSS. Results go to stdout; copy them
# into docs/benchmarks.md when they change.
set -eu
top=$(pwd)
tmp=$(mktemp -d /tmp/sluice-bench.XXXXXX)
cleanup() {
	for p in "$tmp"/p*; do
		[ -d "$p" ] && "$top/sluice" embedded remove --project-dir "$p" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time (apt-get install time)" >&2; exit 1; }

. "$top/tests/bench/lib.sh"

echo "## parse and compile (issue 2)"
echo
echo "| models | command | wall (s) | peak RSS (MiB) | reference: cat all files (s) | ratio |"
echo "|---|---|---|---|---|---|"
for n in 1000 10000; do
	p="$tmp/p$n"
	sh "$top/tests/bench/gen-project.sh" "$p" "$n"
	ref=$(best_of 5 sh -c "cat $p/models/*/*.sql $p/models/*.yml")
	# Writing 2n new files is file-system bound and noisy (on some disks
	# file creation slows down for seconds after a large delete), so the
	# first compile, into a target/ that never existed, is compared with
	# cp -r of the same files, also with no delete before it.
	first=$(best_of 1 "$top/sluice" compile --project-dir "$p")
	cpref=$(best_of 1 cp -r "$p/target" "$tmp/copy$n")
	for cmd in ls compile; do
		r=$(best_of 5 "$top/sluice" "$cmd" --project-dir "$p")
		label="sluice $cmd"
		[ "$cmd" = compile ] && label="sluice compile, unchanged project"
		printf '| %s | %s | %s | %.1f | %s | %sx |\n' "$n" "$label" "${r% *}" \
			"$(awk -v k="${r#* }" 'BEGIN { print k / 1024 }')" "${ref% *}" "$(ratio "${r% *}" "${ref% *}")"
	done
	printf '| %s | sluice compile, new target/ | %s | %.1f | cp -r of the same files: %s | %sx |\n' "$n" "${first% *}" \
		"$(awk -v k="${first#* }" 'BEGIN { print k / 1024 }')" "${cpref% *}" "$(ratio "${first% *}" "${cpref% *}")"
done

# ---- issue 15: the same 10,000 models, each calling one of 500 dispatched macros ----
# Goal: ls under 0.5 s, compile under 2 s. Reference: the project without macros.
echo
echo "## parse and compile with 500 macros (issue 15)"
echo
echo "| models | macros | command | wall (s) | peak RSS (MiB) | reference: no macros (s) | ratio |"
echo "|---|---|---|---|---|---|---|"
pm="$tmp/pm10000"
sh "$top/tests/bench/gen-project.sh" "$pm" 10000 500
"$top/sluice" compile --project-dir "$pm" >/dev/null
for cmd in ls compile; do
	r=$(best_of 5 "$top/sluice" "$cmd" --project-dir "$pm")
	ref=$(best_of 5 "$top/sluice" "$cmd" --project-dir "$tmp/p10000")
	printf '| 10000 | 500 | sluice %s | %s | %.1f | %s | %sx |\n' "$cmd" "${r% *}" \
		"$(awk -v k="${r#* }" 'BEGIN { print k / 1024 }')" "${ref% *}" "$(ratio "${r% *}" "${ref% *}")"
done
rm -rf "$pm"

# ---- issue 3: no-op plan and run on a fully built project ----
# The project runs on the embedded PostgreSQL. Reference: `sluice ls` on
# the same project in the same run (parse only, no database), so the ratio
# is what state, catalog and version queries add.
echo
echo "## no-op plan and run on an up-to-date project (issue 3)"
echo
echo "| models | command | wall (s) | peak RSS (MiB) | statements sent | reference: ls (s) | ratio |"
echo "|---|---|---|---|---|---|---|"
for n in 1000 10000; do
	p="$tmp/p$n"
	embedded_project "$p"
	build=$(best_of 1 "$top/sluice" run --project-dir "$p")
	xact() { psql -X -A -t -d bench -c "select xact_commit + xact_rollback from pg_stat_database where datname = 'bench'"; }
	ref=$(best_of 3 "$top/sluice" ls --project-dir "$p")
	for cmd in plan run; do
		before=$(xact)
		r=$(best_of 3 "$top/sluice" "$cmd" --project-dir "$p")
		after=$(xact)
		# three runs, each statement a transaction; minus this query itself
		stmts=$(( (after - before - 1) / 3 ))
		printf '| %s | no-op sluice %s | %s | %.1f | %s | %s | %sx |\n' "$n" "$cmd" "${r% *}" \
			"$(awk -v k="${r#* }" 'BEGIN { print k / 1024 }')" "$stmts" "${ref% *}" "$(ratio "${r% *}" "${ref% *}")"
	done
	printf '| %s | first full build (for scale) | %s | %.1f | | | |\n' "$n" "${build% *}" \
		"$(awk -v k="${build#* }" 'BEGIN { print k / 1024 }')"
	"$top/sluice" embedded remove --project-dir "$p" >/dev/null
done

# ---- issue 17: 50,000 models, each command against reading the files ----
echo
sh "$top/tests/bench/scale.sh" 50000

# ---- issue 4: lake -> stage -> warehouse ----
echo
echo "## stage transfers (issue 4)"
echo
sh "$top/tests/bench/stages.sh"
echo
echo "The same with parts in PostgreSQL's binary COPY format (format='binary'):"
echo
BENCH_FORMAT=binary sh "$top/tests/bench/stages.sh"
echo
sh "$top/tests/bench/odbc.sh"
# ---- issue 6: data tests, one shared scan against one query per test ----
echo
sh "$top/tests/bench/datatests.sh"
# ---- issue 12: the run report at 10,000 models, in Chromium ----
echo
sh "$top/tests/bench/report.sh"
# ---- issue 18: the demo's dev build with and without reuse_from ----
echo
echo "## reuse across environments (issue 18)"
echo
tmp="$tmp" sh "$top/tests/bench/reuse.sh"
