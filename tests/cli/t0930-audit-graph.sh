#!/usr/bin/env bash
# t0930: target/audit.jsonl (docs/blame.md#the-audit-log): one line per
# statement, with node, user, connection, run, hash, rows, duration and
# the sqlstate of a failure; no secret of the profile and no literal of
# the SQL in it or in any other artifact. `sluice graph` in dot, Mermaid
# and JSON, with a selection, checked edge by edge.
. "$(dirname "$0")/lib.sh"

# A role of this test's own, whose password is a value nothing else holds.
ROLE="t0930_$$"
SECRET="t0930-pw-$$-$(date +%s)-q7"
LITERAL="t0930-literal-$$-zz"
psql_q "create role $ROLE login password '$SECRET'; grant all on database \"$T_DB\" to $ROLE;
create schema lake authorization $ROLE" >/dev/null || exit 1
at_exit "psql -X -q -d '$T_DB' -c 'drop owned by $ROLE' >/dev/null 2>&1; psql -X -q -d postgres -c 'drop role $ROLE' >/dev/null 2>&1"
PGUSER=$ROLE PGPASSWORD=$SECRET psql -X -q -c "create table lake.patients (id int); insert into lake.patients values (1), (2), (3)" ||
	exit 1
export SLUICE_T_SECRET=$SECRET

new_project audit
# the profile reaches the database as that role, its password from the environment
sed -i "s/^      user: .*/      user: \"$ROLE\"/; s/^      password: .*/      password: \"{{ env_var('SLUICE_T_SECRET') }}\"/" profiles.yml
grep -q "user: \"$ROLE\"" profiles.yml || exit 1
sources_yml lake patients
cat >models/_mart.yml <<'YML'
version: 2
models:
  - name: mart
    columns:
      - name: id
        tests: [not_null]
YML
model stg "select id, '$LITERAL' as tag from {{ source('lake', 'patients') }}"
model mart "{{ config(materialized='table') }}
select id, tag from {{ ref('stg') }}"

t_run() {
	sluice run >"$T_DIR/run.out" 2>&1 || { cat "$T_DIR/run.out"; return 1; }
	jq -e . target/audit.jsonl >/dev/null || { echo "audit.jsonl is not JSON lines"; return 1; }
	expect_positive "$(grep -c . target/audit.jsonl)" "audit lines"
}
ok "run writes target/audit.jsonl" t_run

t_fields() {
	inv=$(rr .metadata.invocation_id) || return 1
	# every line: every field, of this run and user, a 128-bit hex hash
	bad=$(t_noted jq -c --arg inv "$inv" 'select(.invocation_id != $inv or .user != "tester" or .connection != "default"
		or (.sql_hash | test("^[0-9a-f]{32}$") | not) or (.time | test("^20[0-9-]+T[0-9:.]+Z$") | not)
		or (.duration_ms | type) != "number" or (has("node") and has("rows") and has("call") and .status == "ok" | not))' \
		target/audit.jsonl) || return 1
	expect_eq "" "$bad" || return 1
	# the two models' statements are theirs; the catalog and version reads are the run's (null)
	expect_eq "model.proj.mart model.proj.stg" \
		"$(t_noted jq -r -s '[.[].node | select(. != null)] | unique | join(" ")' target/audit.jsonl)" || return 1
	expect_positive "$(t_noted jq -s '[.[] | select(.node == null)] | length' target/audit.jsonl)" "run-wide statements"
}
ok "each line has time, node, user, connection, run, hash, rows, duration" t_fields

t_rows() {
	# the statement that filled mart reports the rows run_results and the table have
	want=$(t_noted jq -r '.results[] | select(.unique_id == "model.proj.mart") | .adapter_response.rows_affected' target/run_results.json) || return 1
	expect_eq 3 "$want" || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics.mart")" || return 1
	expect_eq 3 "$(t_noted jq -s '[.[] | select(.node == "model.proj.mart" and .call == "exec") | .rows // 0] | max' target/audit.jsonl)"
}
ok "the rows of mart's statement match run_results and the table" t_rows

t_one_per_statement() {
	# a run with nothing to do sends a fixed set of reads; a second one
	# sends the same set: one line each, hashed alike across runs
	sluice run >/dev/null 2>&1 || return 1
	t_noted jq -r '"\(.node) \(.call) \(.sql_hash)"' target/audit.jsonl | sort >"$T_DIR/a1" || return 1
	sluice run >/dev/null 2>&1 || return 1
	t_noted jq -r '"\(.node) \(.call) \(.sql_hash)"' target/audit.jsonl | sort >"$T_DIR/a2" || return 1
	expect_positive "$(grep -c . "$T_DIR/a1")" "lines" || return 1
	cmp "$T_DIR/a1" "$T_DIR/a2" || { diff "$T_DIR/a1" "$T_DIR/a2"; return 1; }
}
ok "a run's lines are its statements, hashed alike from run to run" t_one_per_statement

t_failure() {
	model mart "{{ config(materialized='table') }}
select id / 0 as id, tag from {{ ref('stg') }}" || return 1
	expect_exit 1 sluice run || return 1
	expect_eq "22012" "$(t_noted jq -r 'select(.status == "error") | "\(.sqlstate)"' target/audit.jsonl)" || return 1
	expect_eq "model.proj.mart" "$(t_noted jq -r 'select(.status == "error") | .node' target/audit.jsonl)"
}
ok "a failed statement has status error and its sqlstate, under its node" t_failure

t_no_secret() {
	# a run that sends the literal (stg's view is created again)
	sluice run --force -s stg >"$T_DIR/run.out" 2>&1 || { cat "$T_DIR/run.out"; return 1; }
	[ -s target/audit.jsonl ] && [ -s target/manifest.json ] && [ -s target/run_results.json ] &&
		[ -s target/history.json ] || { ls -la target; return 1; }
	# the password nowhere under target/ (compiled SQL, logs included), nor in the state
	if grep -rlF -- "$SECRET" target .sluice; then
		echo "the secret is in the files above"
		return 1
	fi
	# the literal only in the compiled SQL (target/compiled, target/run) and
	# the report, which shows the statements sent: the SQL, by design
	if grep -rlF -- "$LITERAL" target | grep -v '^target/\(compiled/\|run/\|report\.html$\)'; then
		echo "the literal is in the files above"
		return 1
	fi
	# the check can see: the literal is in the compiled SQL
	grep -qF -- "$LITERAL" target/compiled/models/stg.sql
}
ok "no secret under target/ or in the state; no literal in audit.jsonl or any JSON artifact" t_no_secret

# -- graph ------------------------------------------------------------------
model mart "{{ config(materialized='table') }}
select id, tag from {{ ref('stg') }}"
model 'we"ird' "select * from {{ ref('mart') }}"
cat >models/export.sh <<'SH'
# {{ config(outputs=['target/files/mart.csv']) }}
echo "{{ ref('mart') }}" >/dev/null
SH
model unload_mart "{{ config(materialized='unload') }}
select * from {{ ref('mart') }}"
model load_mart "{{ config(materialized='load') }}
{{ ref('unload_mart') }}"
model lonely "select 1 as one"

# What `-s stg+ --exclude load_mart` must draw: from stg down, without load_mart.
TEST_ID=test.proj.not_null_mart_id
WANT_EDGES="model.proj.mart>model.proj.export
model.proj.mart>model.proj.unload_mart
model.proj.mart>model.proj.we\"ird
model.proj.mart>$TEST_ID
model.proj.stg>model.proj.mart"

t_graph_json() {
	sluice graph --format json -s stg+ --exclude load_mart >"$T_DIR/g.json" || return 1
	expect_eq "$WANT_EDGES" "$(t_noted jq -r '.edges[] | "\(.from)>\(.to)"' "$T_DIR/g.json" | LC_ALL=C sort)" || return 1
	expect_eq "model export
model mart
model stg
model unload_mart
model we\"ird
test not_null_mart_id" "$(t_noted jq -r '.nodes[] | "\(.resource_type) \(.name)"' "$T_DIR/g.json" | LC_ALL=C sort)"
}
ok "graph --format json: the selected nodes and exactly the edges between them" t_graph_json

t_graph_dot() {
	sluice graph -s stg+ --exclude load_mart >"$T_DIR/g.dot" || return 1
	head -n 1 "$T_DIR/g.dot" | grep -qx 'digraph sluice {' || return 1
	# "a" -> "b"; lines, unescaped back to a>b
	got=$(sed -n 's/^  "\(.*\)" -> "\(.*\)";$/\1>\2/p' "$T_DIR/g.dot" | sed 's/\\"/"/g' | LC_ALL=C sort) || return 1
	expect_eq "$WANT_EDGES" "$got" || return 1
	expect_grep '^  "model.proj.we\\"ird" \[label="we\\"ird", shape=box\];$' "$T_DIR/g.dot" || return 1
	# a quote left unescaped would end the ID early: every line has an even number of unescaped quotes
	expect_eq "" "$(sed 's/\\"//g' "$T_DIR/g.dot" | awk -F'"' 'NF % 2 == 0')" || return 1
	if command -v dot >/dev/null; then dot -Tsvg "$T_DIR/g.dot" >/dev/null || return 1; fi
}
ok "graph (dot): the same edges, names escaped" t_graph_dot

t_graph_mermaid() {
	sluice graph --format mermaid -s stg+ --exclude load_mart >"$T_DIR/g.mmd" || return 1
	head -n 1 "$T_DIR/g.mmd" | grep -qx 'flowchart LR' || return 1
	expect_grep '^  n[0-9]+\["we#quot;ird"\]$' "$T_DIR/g.mmd" || return 1
	# map n<i> to its label, then edges to label pairs
	got=$(awk '
		/^  n[0-9]+[\[{(]/ { id = $1; sub(/[\[{(].*/, "", id); l = $0; sub(/^[^"]*"/, "", l); sub(/".*$/, "", l);
			gsub(/#quot;/, "\"", l); label[id] = l; next }
		/-->/ { print label[$1] ">" label[$3] }' "$T_DIR/g.mmd" | LC_ALL=C sort) || return 1
	expect_eq "mart>export
mart>not_null_mart_id
mart>unload_mart
mart>we\"ird
stg>mart" "$got"
}
ok "graph --format mermaid: the same edges between labels, quotes as #quot;" t_graph_mermaid

t_graph_bad() {
	expect_exit 2 sluice graph --format svg || return 1
	expect_grep "format takes dot, mermaid or json, not 'svg'" "$T_DIR/out"
}
ok "graph --format svg is refused" t_graph_bad

done_testing
