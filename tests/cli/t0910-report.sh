#!/usr/bin/env bash
# t0910: target/report.html after every build, `sluice report`, and
# publishing (docs/report.md). A small project (a source, a view, a table
# with a failing data test, a shell model) is built twice (the second time
# reused) with --report-to a directory; then to s3rver through `report:`.
# The page is checked as a file (self-contained, no secret) and in
# headless Chromium (tests/harness/report-check.js: the DAG's nodes,
# statuses and reasons equal run_results.json's, a screenshot, and no
# network request but the file itself).
. "$(dirname "$0")/lib.sh"

CHECK="$(cd "$(dirname "$0")/../harness" && pwd)/report-check.js"
SECRET="t0910-secret-$$-$(date +%s%N)"
export SLUICE_T_SECRET="$SECRET"

new_project rep
# the planted secret: a second connection nothing uses, and the s3 key the
# publication signs with (s3rver checks the key id, not the signature)
cat >>profiles.yml <<YML
      connections:
        side:
$(conn_keys "          " "$T_DB" "$SLUICE_TEST_PGPORT" "{{ env_var('SLUICE_T_SECRET') }}")
      s3:
        endpoint: "${SLUICE_TEST_S3_ENDPOINT:-http://127.0.0.1:9}"
        region: "${SLUICE_TEST_S3_REGION:-us-east-1}"
        access_key_id: "${SLUICE_TEST_S3_ACCESS_KEY_ID:-none}"
        secret_access_key: "{{ env_var('SLUICE_T_SECRET') }}"
YML
psql_q "create schema shop; create table shop.orders (id int, customer text);
insert into shop.orders values (1, 'ann'), (2, null), (3, 'bob')" >/dev/null
cat >models/schema.yml <<'YML'
sources:
  - name: shop
    tables:
      - name: orders
        query: "select count(*) from shop.orders"
models:
  - name: orders
    columns:
      - name: customer
        tests: [not_null]
YML
model stg_orders "select id, customer from {{ source('shop', 'orders') }}" staging
model orders "{{ config(materialized='table') }}
select id, customer from {{ ref('stg_orders') }}" marts
cat >models/marts/export_orders.sh <<'SH'
# {{ config(depends_on=[ref('orders')]) }}
echo "exporting orders"
echo "t0910 log line from the shell model"
SH

PUB="$T_DIR/pub"
ok "a build with a failing test still writes the report and publishes it (exit 1)" \
	expect_exit 1 sluice build --report-to "$PUB"
ID1=$(rr '.metadata.invocation_id')
cp "$T_DIR/out" "$T_DIR/out1"

t_where() {
	expect_grep "^report: $P/target/report.html$" "$T_DIR/out1" || return 1
	expect_grep "^published: file://$PUB/$ID1/report.html$" "$T_DIR/out1" || return 1
	for f in report.html run_results.json manifest.json; do
		cmp "target/$f" "$PUB/$ID1/$f" || return 1
	done
	expect_eq fail "$(rr '.results[] | select(.unique_id | startswith("test.")) | .status')"
}
ok "the command says where the report is; the run's page and artifacts are at <dest>/<id>/" t_where

# the run hands its entries to the page as it writes them: the page must be
# the one its artifacts make
t_same_page() {
	cp target/report.html "$T_DIR/run.html" || return 1
	sluice report >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	cmp target/report.html "$T_DIR/run.html" || { echo "the run's page is not sluice report's"; return 1; }
}
ok "the page a failed build writes is the one sluice report makes from its artifacts" t_same_page

t_self_contained() {
	expect_no_grep 'https?://' target/report.html || return 1
	expect_no_grep '@import' target/report.html || return 1
	expect_no_grep 'src=["'\'']?[^d"'\'' ]' target/report.html || return 1
	expect_no_grep '<link' target/report.html || return 1
	# the data: one JSON script that no text inside it can end
	expect_eq 1 "$(grep -c 'type="application/json" id="sluice-data"' target/report.html)" || return 1
	expect_grep 't0910 log line from the shell model' target/report.html
}
ok "report.html is self-contained: no URL, no @import, no src= but data:" t_self_contained

t_no_secret() {
	expect_positive "$(find target -type f | wc -l)" "files under target/" || return 1
	if grep -rlF "$SECRET" target "$PUB"; then
		echo "the planted secret is in the files above"
		return 1
	fi
	# the same grep finds it when it is there
	printf '%s\n' "$SECRET" >"$T_DIR/planted" && grep -qF "$SECRET" "$T_DIR/planted"
}
ok "the planted secret is in no file under target/ nor in the publication" t_no_secret

t_sources() {
	expect_eq "source.proj.shop.orders query:3 null" \
		"$(rr '.sources[] | "\(.unique_id) \(.version) \(.changed)"')"
}
ok "run_results.json says which version of each source was read" t_sources

if command -v chromium >/dev/null 2>&1; then
	HAVE_CHROMIUM=1
else
	HAVE_CHROMIUM=""
fi
# ok_browser DESCRIPTION COMMAND...: ok, or skipped with the reason when chromium is missing
ok_browser() {
	if [ -z "$HAVE_CHROMIUM" ]; then
		T_COUNT=$((T_COUNT + 1))
		echo "ok $T_COUNT - $1 # SKIP chromium is not installed (make test installs it: Makefile DEBS)"
		return 0
	fi
	ok "$@"
}
# browse: report-check.js on target/report.html, facts into $T_DIR/facts.json
browse() {
	node "$CHECK" target/report.html --results target/run_results.json --manifest target/manifest.json \
		--screenshot target/report.png >"$T_DIR/facts.json"
}

t_browser() {
	browse || return 1
	expect_eq 4 "$(jq -r .nodes "$T_DIR/facts.json")" || return 1   # the source, two SQL models, the script
	expect_eq 1 "$(jq -r .tests "$T_DIR/facts.json")" || return 1
	expect_eq 1 "$(jq -r .requests "$T_DIR/facts.json")" || return 1
	# history.json is written by the run when history is kept in state
	if [ -f target/history.json ]; then
		expect_eq "$(jq '.runs | length' target/history.json)" "$(jq -r .history_rows "$T_DIR/facts.json")" || return 1
	else
		expect_eq "no history yet" "$(jq -r .history_text "$T_DIR/facts.json")" || return 1
	fi
	expect_eq 1 "$(jq -r .source_rows "$T_DIR/facts.json")" || return 1
	expect_eq '89504e470d0a1a0a' "$(head -c 8 target/report.png | od -An -tx1 | tr -d ' \n')" || return 1
	expect_positive "$(($(wc -c <target/report.png) / 10000))" "10 kB of screenshot"
}
ok_browser "in Chromium: one DAG node per model and source, statuses and reasons as run_results.json, no request" t_browser

ok "the second build reuses what did not change, and is published too" expect_exit 1 sluice build --report-to "$PUB"
ID2=$(rr '.metadata.invocation_id')

t_reused() {
	expect_eq reused "$(rr_status orders)" || return 1
	expect_eq "source.proj.shop.orders false" "$(rr '.sources[] | "\(.unique_id) \(.changed)"')" || return 1
	[ -z "$HAVE_CHROMIUM" ] && return 0
	browse
}
ok "the reused nodes show as reused in the page" t_reused
ok "  ...and it is the page sluice report makes from the artifacts" t_same_page

t_index() {
	expect_eq "$ID2 $ID1" "$(jq -r '[.runs[].invocation_id] | join(" ")' "$PUB/index.json")" || return 1
	expect_eq "1 1" "$(jq -r '[.runs[].failed] | map(tostring) | join(" ")' "$PUB/index.json")" || return 1
	expect_grep "<a id=\"latest\" href=\"$ID2/report.html\">latest</a>" "$PUB/index.html" || return 1
	# newest first in the page as well
	expect_eq "$ID2
$ID1" "$(grep -o "<tr class=\"run\"><td>[^<]*</td><td><a href=\"[^\"]*\">[^<]*" "$PUB/index.html" | sed 's/.*>//')" || return 1
	expect_grep 'tests\.|sources' "$PUB/$ID2/manifest.json"
}
ok "index.json and index.html list both runs, newest first, with a latest link" t_index

t_history() {
	cat >target/history.json <<JSON
{"runs": [
 {"invocation_id": "$ID2", "started_at": "2026-12-02T10:00:02Z", "elapsed_time": 2.5, "user": "tester", "command": "build",
  "status": "failed", "built": 0, "reused": 3, "failed": 1, "report": "$ID2/report.html"},
 {"invocation_id": "$ID1", "started_at": "2026-12-02T10:00:01Z", "elapsed_time": 4.0, "user": "tester", "command": "build",
  "status": "failed", "built": 3, "reused": 0, "failed": 1, "report": "https://evil.example/x"}
]}
JSON
	cp target/report.html "$T_DIR/before.html" || return 1
	sluice report >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep "^report: $P/target/report.html$" "$T_DIR/out" || return 1
	! cmp -s target/report.html "$T_DIR/before.html" || { echo "sluice report did not rewrite the page"; return 1; }
	expect_grep 'evil\.example' target/report.html || return 1
	[ -z "$HAVE_CHROMIUM" ] && return 0
	browse || return 1
	expect_eq 2 "$(jq -r .history_rows "$T_DIR/facts.json")" || return 1
	expect_eq 2 "$(jq -r .history_bars "$T_DIR/facts.json")" || return 1
	# the data's own URL is shown as text, never made a link; our own run's link is relative
	expect_eq "../$ID2/report.html" "$(jq -r '.links | join(" ")' "$T_DIR/facts.json")"
}
ok "sluice report rebuilds the page from target/, with history.json's runs" t_history

t_dom_check_fails() {
	[ -z "$HAVE_CHROMIUM" ] && return 0
	cp target/run_results.json "$T_DIR/rr.json" || return 1
	jq '(.results[] | select(.unique_id == "model.proj.orders") | .status) = "success"' "$T_DIR/rr.json" >target/run_results.json || return 1
	if node "$CHECK" target/report.html --results target/run_results.json --manifest target/manifest.json \
		>"$T_DIR/facts.json" 2>"$T_DIR/check.err"; then
		echo "report-check did not see the status that differs"
		cp "$T_DIR/rr.json" target/run_results.json
		return 1
	fi
	cp "$T_DIR/rr.json" target/run_results.json || return 1
	expect_grep 'model.proj.orders: the page says reused, run_results.json success' "$T_DIR/check.err"
}
ok_browser "the Chromium check fails when the page and run_results.json disagree" t_dom_check_fails

t_open() {
	env PATH=/nonexistent "$SLUICE_BIN" report --open >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep "^$P/target/report.html$" "$T_DIR/out"
}
ok "report --open without xdg-open prints the page's path" t_open
t_broken_results() {
	cp target/run_results.json "$T_DIR/rr.json" &&
	cp target/report.html "$T_DIR/before.html" || return 1
	printf '{\n  "metadata": {},\n  "results": [\n    {"unique_id": "x"} {}\n  ]\n}\n' >target/run_results.json
	expect_exit 2 sluice report
	rc=$?
	cp "$T_DIR/rr.json" target/run_results.json || return 1
	[ "$rc" = 0 ] || return 1
	expect_grep "^sluice: error: report: $P/target/run_results.json:4:24: " "$T_DIR/out" || return 1
	cmp -s target/report.html "$T_DIR/before.html" || { echo "a failed report replaced the page"; return 1; }
}
ok "a run_results.json that is not JSON: the file, line and column, exit 2, the page kept" t_broken_results

t_broken_manifest() {
	cp target/manifest.json "$T_DIR/manifest.json" &&
	head -c 200 "$T_DIR/manifest.json" >target/manifest.json || return 1
	sluice report >"$T_DIR/out" 2>&1
	rc=$?
	cp "$T_DIR/manifest.json" target/manifest.json || return 1
	[ "$rc" = 0 ] || { cat "$T_DIR/out"; return 1; }
	# the results alone still make nodes, named by their unique_id
	expect_grep '"n":"model.proj.orders"' target/report.html
}
ok "a manifest.json cut short: the page shows the results alone" t_broken_manifest

ok "--report-to on a command that writes no report is refused (exit 2)" expect_exit 2 sluice ls --report-to "$PUB"

t_bad_dest() {
	touch "$T_DIR/afile" &&
	expect_exit 1 sluice run -s stg_orders --report-to "$T_DIR/afile/sub" || return 1
	expect_grep "^sluice: error: publishing the report to file://$T_DIR/afile/sub: " "$T_DIR/out" || return 1
	expect_eq reused "$(rr_status stg_orders)" || return 1
	expect_no_grep "$SECRET" "$T_DIR/out"
}
ok "a destination that cannot be written: an error naming it, exit 1 after a good run" t_bad_dest

if [ -n "${SLUICE_TEST_S3_UNAVAILABLE:-}" ] || [ -z "${SLUICE_TEST_S3_ENDPOINT:-}" ]; then
	T_COUNT=$((T_COUNT + 1))
	echo "ok $T_COUNT - publishing to s3rver # SKIP s3rver is not available: ${SLUICE_TEST_S3_UNAVAILABLE:-no endpoint}"
else
	S3_PREFIX="t0910-$$-${SLUICE_TEST_CONNECTOR:-libpq}"
	# s3get KEY: an object from s3rver (a PUT may be answered before its file is whole: retry until it parses)
	s3get() {
		for _i in 1 2 3 4 5 6 7 8 9 10; do
			curl -sS -f --aws-sigv4 "aws:amz:$SLUICE_TEST_S3_REGION:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
				--user "$SLUICE_TEST_S3_ACCESS_KEY_ID:x" "$SLUICE_TEST_S3_ENDPOINT/$SLUICE_TEST_S3_BUCKET/$S3_PREFIX/$1" >"$T_DIR/s3obj" &&
				{ case $1 in *.json) jq -e . "$T_DIR/s3obj" >/dev/null 2>&1 ;; *) [ -s "$T_DIR/s3obj" ] ;; esac } && return 0
			sleep 0.3
		done
		return 1
	}
	echo "report: s3://$SLUICE_TEST_S3_BUCKET/$S3_PREFIX/" >>sluice.yml
	ok "report: s3://... in sluice.yml publishes a failed build to s3rver" expect_exit 1 sluice build
	ID3=$(rr '.metadata.invocation_id')
	ok "  ...a second one too" expect_exit 1 sluice build
	ID4=$(rr '.metadata.invocation_id')
	t_s3() {
		expect_grep "^published: s3://$SLUICE_TEST_S3_BUCKET/$S3_PREFIX/$ID4/report.html$" "$T_DIR/out" || return 1
		s3get "$ID3/report.html" || return 1
		expect_grep 'id="sluice-data"' "$T_DIR/s3obj" || return 1
		s3get "$ID4/run_results.json" || return 1
		expect_eq "$ID4" "$(jq -r .metadata.invocation_id "$T_DIR/s3obj")" || return 1
		s3get index.json || return 1
		expect_eq "$ID4 $ID3" "$(jq -r '[.runs[].invocation_id] | join(" ")' "$T_DIR/s3obj")" || return 1
		s3get index.html || return 1
		expect_grep "href=\"$ID4/report.html\">latest<" "$T_DIR/s3obj"
	}
	ok "  s3rver holds both runs' pages and artifacts, and the index lists them newest first" t_s3
fi

t_source_changed() {
	psql_q "insert into shop.orders values (4, 'cy')" >/dev/null || return 1
	expect_exit 1 sluice build || return 1   # the not_null test still fails
	expect_eq "source.proj.shop.orders query:4 query:3 true" \
		"$(rr '.sources[] | "\(.unique_id) \(.version) \(.previous) \(.changed)"')" || return 1
	[ -z "$HAVE_CHROMIUM" ] && return 0
	browse || return 1
	expect_eq 1 "$(jq -r .sources_changed "$T_DIR/facts.json")"
}
ok "a source that changed since the last run is marked changed, in run_results.json and on the page" t_source_changed

# Ctrl-C: the page and the publication are still written
gate_setup
model slow "{{ config(materialized='table') }} select 1 as x where (select public.gate_wait()) = 1"
t_interrupted() {
	gate_close || return 1
	bg_start int "$SLUICE_BIN" run -s slow --report-to "$PUB" || return 1
	wait_until 30 at_gate || { echo "the run never reached the gate"; cat "$T_DIR/int.log"; return 1; }
	kill -INT "$BG_PID" || return 1
	expect_eq 130 "$(bg_wait int 20)" || { cat "$T_DIR/int.log"; return 1; }
	gate_open || return 1
	id=$(rr '.metadata.invocation_id') || return 1
	expect_eq error "$(rr_status slow)" || return 1
	grep -q "\"invocation_id\":\"$id\"" target/report.html || { echo "target/report.html is not the interrupted run's"; return 1; }
	cmp target/report.html "$PUB/$id/report.html" || return 1
	expect_eq "$id" "$(jq -r '.runs[0].invocation_id' "$PUB/index.json")"
}
ok "an interrupted run (exit 130) still writes its report and publishes it" t_interrupted

done_testing
