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
