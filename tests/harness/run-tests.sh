#!/bin/sh
# Run the suite under prove: the chain linter of the end-to-end tests
# (tests/harness/chainlint.pl, once), the unit test binaries given as
# arguments, then tests/cli/t*.sh (or the scripts $SLUICE_TEST_SCRIPTS
# names), through libpq and again through ODBC. Starts a PostgreSQL server
# (tests/harness/pg.sh) and an S3-compatible server (tests/harness/s3.sh,
# s3rver pinned in tests/package-lock.json) of its own on loopback, and
# stops them afterwards.
set -u
top=$(pwd)
tmp=$(mktemp -d /tmp/sluice-test.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	sh "$top/tests/harness/s3.sh" stop "$tmp/s3" >/dev/null 2>&1
	sh "$top/tests/harness/pg.sh" stop "$tmp/pg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# SLUICE_TEST_SUITE: where the scripts are (tests/cli; make faults:
# tests/faults). SLUICE_TEST_SCRIPTS: the scripts to run, file names or globs
# under it separated by spaces ("t0040-cancel.sh t08*.sh"); all of
# them by default. A name that matches no script is an error, so that a
# renamed script cannot drop out of a subset unnoticed.
suite=${SLUICE_TEST_SUITE:-tests/cli}
scripts=""
for s in ${SLUICE_TEST_SCRIPTS:-t*.sh}; do
	found=""
	for t in $suite/$s; do
		case $t in
		$suite/t*.sh) [ -f "$t" ] || continue ;;
		*) continue ;;
		esac
		found=1
		case "$scripts " in
		*" $t "*) ;;
		*) scripts="$scripts $t" ;;
		esac
	done
	if [ -z "$found" ]; then
		echo "SLUICE_TEST_SCRIPTS: no script $suite/$s" >&2
		exit 2
	fi
done

if ! sh tests/harness/pg.sh start "$tmp/pg" >"$tmp/pg.env"; then
	echo "could not start the test PostgreSQL" >&2
	exit 1
fi
sh tests/harness/s3.sh start "$tmp/s3" >"$tmp/s3.env"
case $? in
0) ;;
3)	# s3rver comes from the npm registry; where that is unreachable (a
	# chroot without the network's CA certificates, say) the tests that
	# need it skip and say so. Everything else still runs.
	echo "WARNING: s3rver could not be installed: the S3 server tests will be skipped" >&2
	echo "SLUICE_TEST_S3_UNAVAILABLE='npm ci could not reach the npm registry'" >"$tmp/s3.env"
	;;
*)	echo "could not start the test S3 server (s3rver)" >&2
	exit 1
	;;
esac
set -a
. "$tmp/pg.env"
. "$tmp/s3.env"
set +a
export SLUICE_TEST_TMP="$tmp"
export SLUICE_BIN="$top/sluice"
export CMOCKA_MESSAGE_OUTPUT=TAP
# Sanitizer builds: leaks fail the test that leaked.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# ... except leaks inside the ODBC driver library (see the file).
export LSAN_OPTIONS="suppressions=$top/tests/harness/lsan-drivers.supp:print_suppressions=0"
# ThreadSanitizer (make test SANITIZE=thread): the first race ends the
# process at once with exit code 66, which no script expects (0, 1, 2, 130),
# rather than letting it run on with whatever the race did. No
# suppressions: no race inside libpq, psqlODBC or libcurl has been seen
# (docs/testing.md says how to add one if that changes).
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1"

# The end-to-end scripts run once per connector in $SLUICE_TEST_CONNECTORS:
# through libpq, then through psqlODBC (tests/cli/lib.sh writes the
# profiles accordingly), against the same server. The second pass runs
# wrappers under $BUILD/odbc/, so that prove names both passes apart and
# ends with one summary.
passes=""
for c in ${SLUICE_TEST_CONNECTORS:-libpq odbc}; do
	case $c in
	libpq)	passes="$passes$scripts" ;;
	odbc)	w="${BUILD:-build/std}/odbc"
		rm -rf "$w" && mkdir -p "$w" || exit 1
		for t in $scripts; do
			printf '#!/bin/sh\nexport SLUICE_TEST_CONNECTOR=odbc\nexec "%s" "$@"\n' "$top/$t" >"$w/${t##*/}"
			chmod +x "$w/${t##*/}"
			passes="$passes $w/${t##*/}"
		done ;;
	*)	echo "SLUICE_TEST_CONNECTORS: unknown connector '$c' (libpq, odbc)" >&2
		exit 2 ;;
	esac
done
# shellcheck disable=SC2086 # $passes are paths without spaces
prove --exec '' ${PROVE_JOBS:--j2} tests/harness/chainlint.pl "$@" $passes
