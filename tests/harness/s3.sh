#!/bin/sh
# s3.sh: the test suite's own throw-away S3-compatible server (s3rver, an
# npm package pinned in tests/package.json + package-lock.json) on
# 127.0.0.1 and a free port, with one bucket.
#
#   sh tests/harness/s3.sh start DIR   install s3rver if needed, start, print settings
#   sh tests/harness/s3.sh stop DIR    stop the server started in DIR (no-op when not running)
#
# `start` prints shell-evaluable lines on stdout:
#   SLUICE_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#   SLUICE_TEST_S3_BUCKET=sluice-test
#   SLUICE_TEST_S3_ACCESS_KEY_ID=S3RVER
#   SLUICE_TEST_S3_SECRET_ACCESS_KEY=S3RVER
#   SLUICE_TEST_S3_REGION=us-east-1
# SLUICE_S3_PORT: the port to listen on (default: any free one), so that a
# test can start a server it killed again where its clients expect it.
# Progress and errors go to stderr. The only network access beyond
# loopback is `npm ci` to the npm registry, once, when tests/node_modules
# is missing. s3rver's credentials are fixed and published: tests only.
set -e

me="s3.sh"
die() { echo "$me: $*" >&2; exit 1; }

[ $# -eq 2 ] || { echo "usage: sh tests/harness/s3.sh start|stop DIR" >&2; exit 2; }
cmd=$1
dir=$2
here=$(cd "$(dirname "$0")/.." && pwd)      # tests/
bucket=sluice-test

case $cmd in
start)
	node=$(command -v node || true)
	[ -n "$node" ] || die "node not found; install the nodejs and npm Debian packages"
	bin="$here/node_modules/s3rver/bin/s3rver.js"
	if [ ! -f "$bin" ]; then
		command -v npm >/dev/null 2>&1 || die "npm not found; install the npm Debian package"
		echo "$me: installing s3rver (npm ci --prefix tests)" >&2
		# Exit 3: the registry could not be reached (run-tests.sh then
		# skips the tests that need s3rver, saying why); other failures: 1.
		npm ci --prefix "$here" --no-audit --no-fund >&2 ||
			{ echo "$me: npm ci failed: the npm registry could not be used" >&2; exit 3; }
	fi
	mkdir -p "$dir/data"
	if [ -f "$dir/s3rver.pid" ] && kill -0 "$(cat "$dir/s3rver.pid")" 2>/dev/null; then
		die "a server already runs for $dir (pid $(cat "$dir/s3rver.pid"))"
	fi
	: >"$dir/s3rver.log"
	# s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3
	# only offers through its legacy provider.
	legacy=""
	"$node" --openssl-legacy-provider -e 0 2>/dev/null && legacy=--openssl-legacy-provider
	# -p 0: the kernel picks a free port; s3rver prints it.
	"$node" $legacy "$bin" -d "$dir/data" -a 127.0.0.1 -p "${SLUICE_S3_PORT:-0}" \
		--configure-bucket "$bucket" >"$dir/s3rver.log" 2>&1 &
	echo $! >"$dir/s3rver.pid"
	port=""
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/^S3rver listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/s3rver.log")
		[ -n "$port" ] && break
		kill -0 "$(cat "$dir/s3rver.pid")" 2>/dev/null || {
			cat "$dir/s3rver.log" >&2
			die "s3rver exited during start-up"
		}
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$port" ] || { cat "$dir/s3rver.log" >&2; die "s3rver did not start within 10 s"; }
	echo "SLUICE_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
	echo "SLUICE_TEST_S3_BUCKET=$bucket"
	echo "SLUICE_TEST_S3_ACCESS_KEY_ID=S3RVER"
	echo "SLUICE_TEST_S3_SECRET_ACCESS_KEY=S3RVER"
	echo "SLUICE_TEST_S3_REGION=us-east-1"
	;;
stop)
	[ -f "$dir/s3rver.pid" ] || exit 0
	pid=$(cat "$dir/s3rver.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/s3rver.pid"
	;;
*)
	echo "usage: sh tests/harness/s3.sh start|stop DIR" >&2
	exit 2
	;;
esac
