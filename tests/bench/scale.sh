#!/bin/sh
# scale.sh [N]: ls, compile, no-op plan and no-op run on a project of N
# models (default 50,000; gen-project.sh), three runs each: wall time
# min / median / max and the largest peak RSS, against reading the same
# files (find + cat of every model and property file) in the same run. The
# project is built once on its own embedded PostgreSQL first. Part of
# make bench (run.sh); figures go to docs/benchmarks.md.
set -eu
n=${1:-50000}
top=$(pwd)
tmp=$(mktemp -d /tmp/sluice-scale.XXXXXX)
p="$tmp/p"
cleanup() {
	[ -d "$p" ] && "$top/sluice" embedded remove --project-dir "$p" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time (apt-get install time)" >&2; exit 1; }
. "$top/tests/bench/lib.sh"

sh "$top/tests/bench/gen-project.sh" "$p" "$n"
embedded_project "$p"
build=$(best_of 1 "$top/sluice" run --project-dir "$p")
echo "## $n models (issue 17): load $(uptime | sed 's/.*load average: //')"
echo
echo "| models | command | wall (s), min / median / max | peak RSS (MiB) | reference: find + cat of all files (s) | ratio (medians) |"
echo "|---|---|---|---|---|---|"
# find, not a glob: 50,000 names are more than one command line holds
ref=$(three_runs sh -c "find '$p/models' -type f \\( -name '*.sql' -o -name '*.yml' \\) -exec cat {} +")
set -- $ref
rmin=$1 rmed=$2 rmax=$3
for cmd in ls compile plan run; do
	label="sluice $cmd"
	case $cmd in
	compile) label="sluice compile, unchanged project" ;;
	plan | run) label="no-op sluice $cmd" ;;
	esac
	set -- $(three_runs "$top/sluice" "$cmd" --project-dir "$p")
	printf '| %s | %s | %s / %s / %s | %s | %s / %s / %s | %sx |\n' "$n" "$label" "$1" "$2" "$3" "$(mib "$4")" \
		"$rmin" "$rmed" "$rmax" "$(ratio "$2" "$rmed")"
done
printf '| %s | first full build (for scale, one run) | %s | %s | | |\n' "$n" "${build% *}" "$(mib "${build#* }")"
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
