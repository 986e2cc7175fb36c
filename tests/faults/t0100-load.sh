#!/usr/bin/env bash
# t0100: load (issue 16, docs/testing.md "Load"). A 2,000-model project
# run with --threads 32 against a PostgreSQL with max_connections = 20:
# sluice fits its connections in what the server allows and says so on
# its first line, instead of failing mid-run with "too many clients";
# two runs of different projects on that server at once both finish.
. "$(dirname "$0")/../cli/lib.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
# the server runs as an unprivileged user, who must reach its directory
PG20=$(mktemp -d "${SLUICE_TEST_TMP:-/tmp}/pg20.XXXXXX") && chmod 755 "$PG20" || exit 1
at_exit "sh '$top/tests/harness/pg.sh' stop '$PG20/pg' >/dev/null 2>&1; rm -rf '$PG20'"
SLUICE_PG_MAX_CONNECTIONS=20 sh "$top/tests/harness/pg.sh" start "$PG20/pg" >"$T_DIR/pg20.env" 2>"$T_DIR/pg20.log" ||
	{ echo "Bail out! cannot start the small server"; cat "$T_DIR/pg20.log"; exit 1; }
PORT20=$(sed -n 's/^SLUICE_TEST_PGPORT=//p' "$T_DIR/pg20.env")
PGPORT=$PORT20 psql -X -q -d postgres -c "CREATE DATABASE load" >/dev/null || { echo "Bail out! createdb"; exit 1; }
small_q() { PGPORT=$PORT20 psql_db load "$1"; }

# load_project DIR SCHEMA LAYERS WIDTH: LAYERS x WIDTH models on the small
# server; each model of a layer joins two of the layer before; tables and
# views alternate.
load_project() {
	new_project "$1"
	printf 'proj:\n  target: dev\n  outputs:\n    dev:\n%s\n      schema: %s\n      threads: 4\n' \
		"$(conn_keys "      " load "$PORT20")" "$2" >profiles.yml
	perl -e '
		my ($layers, $width) = @ARGV;
		for my $l (0 .. $layers - 1) {
			for my $i (0 .. $width - 1) {
				my $m = $i % 2 ? "view" : "table";
				open my $f, ">", "models/l${l}_$i.sql" or die;
				print $f "{{ config(materialized=\x27$m\x27) }}\n";
				if ($l == 0) {
					print $f "select g as id, md5(g::text) as v from generate_series(1, 50) g\n";
				} else {
					my ($a, $b) = ($i, ($i * 7 + 3) % $width);
					my $p = $l - 1;
					print $f "select a.id, a.v from {{ ref(\x27l${p}_$a\x27) }} a join {{ ref(\x27l${p}_$b\x27) }} b using (id)\n";
				}
				close $f;
			}
		}' "$3" "$4"
}

load_project big analytics 20 100

t_big() {
	expect_exit 0 sluice run --threads 32 || return 1
	head -n 1 "$T_DIR/out" | grep -E "^threads: [0-9]+ of the 32 asked for: connection 'default' may open [0-9]+ more sessions \(of a limit of 20\), 2 kept free for others$" ||
		{ head -n 3 "$T_DIR/out"; return 1; }
	expect_eq 2000 "$(rr '[.results[] | select(.status == "success")] | length')" || return 1
	expect_no_grep 'too many clients' "$T_DIR/out"
}
ok "2,000 models, --threads 32, max_connections 20: the first line says what fits, and every model is built" t_big

t_big_sum() {
	expect_eq 50 "$(small_q 'select count(*) from analytics.l19_99')"
}
ok "the last layer holds what the first one made" t_big_sum

load_project other analytics_other 10 50
t_two() {
	bg_start a "$SLUICE_BIN" run --threads 32 --full-refresh --project-dir "$T_DIR/big" &&
	bg_start b "$SLUICE_BIN" run --threads 32 --project-dir "$T_DIR/other" || return 1
	_a=$(bg_wait a 900) &&
	_b=$(bg_wait b 900) &&
	[ "$_a" = 0 ] && [ "$_b" = 0 ] || { echo "exit codes: $_a and $_b"; tail -n 20 "$T_DIR/a.log" "$T_DIR/b.log"; return 1; }
	expect_eq 500 "$(small_q "select count(*) from information_schema.tables where table_schema = 'analytics_other'")"
}
ok "two projects on the same small server at once, 32 threads each: both finish" t_two

done_testing
