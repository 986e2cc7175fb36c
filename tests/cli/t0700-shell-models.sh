#!/usr/bin/env bash
# t0700: shell models (models/*.sh) in the same DAG as SQL: psql through
# the environment sluice sets, ref() quoting, relation=true and
# depends_on, input files in the fingerprint (content hashes with the
# size+mtime fast path), declared outputs, failures with the log's last
# lines, timeouts and Ctrl-C reaching the script's own children, and no
# password in logs or artifacts.
. "$(dirname "$0")/lib.sh"

new_project sh
mkdir -p data/ref data/lookup
printf 'gene,chrom\nTP53,17\nKRAS,12\nEGFR,7\n' >data/ref/genes.csv
printf 'code,label\nA,alpha\n' >data/lookup/codes.csv

model base "{{ config(materialized='table') }}
select 1 as id, 'alpha' as name union all select 2, 'beta'"
# psql copies a ref'd table to a file: the ref is written inside "...".
cat >models/export_base.sh <<'SH'
# {{ config(inputs=['data/lookup/*.csv'], outputs=['target/files/base.csv']) }}
set -eu
mkdir -p target/files
psql -X -q -v ON_ERROR_STOP=1 -c "copy (select id, name from {{ ref('base') }} order by id) to stdout csv" >target/files/base.csv
SH
# ordering only: runs after the script, reads nothing it made
model after_export "{{ config(materialized='table', depends_on=[ref('export_base')]) }}
select 1 as done"
# a script that creates its relation, from an input file
cat >models/load_genes.sh <<'SH'
#!/bin/sh
# {{ config(relation=true, inputs=['data/ref/genes.csv']) }}
set -eu
psql -X -q -1 -v ON_ERROR_STOP=1 \
	-c "create table if not exists {{ this }} (gene text, chrom int)" \
	-c "truncate {{ this }}" \
	-c "\copy {{ this }} from 'data/ref/genes.csv' csv header"
SH
model gene_counts "{{ config(materialized='table') }}
select count(*) as genes from {{ ref('load_genes') }}"
MODELS="base export_base after_export load_genes gene_counts"

ok "a project of SQL and shell models runs" expect_exit 0 sluice run

t_first_run() {
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_eq "1,alpha
2,beta" "$(cat target/files/base.csv)" || return 1
	expect_eq 3 "$(psql_q 'select genes from analytics.gene_counts')" || return 1
	expect_eq "shell shell" "$(jq -r '[.nodes["model.proj.export_base", "model.proj.load_genes"].materialized] | join(" ")' target/manifest.json)" || return 1
	# the script as it ran: the ref became the relation, escaped for "..."
	expect_grep 'from \\"analytics\\"\.\\"base\\" order by id' target/run/models/export_base.sh || return 1
	# a shell model without relation=true is shown by its file
	expect_grep '^\[[0-9]/5\] OK shell models/export_base\.sh ' "$T_DIR/out" || return 1
	expect_grep '^\[[0-9]/5\] OK shell analytics\.load_genes ' "$T_DIR/out"
}
ok "psql wrote the file, the relation=true script's table feeds gene_counts" t_first_run

ok "an unchanged project is reused entirely" expect_exit 0 sluice run
ok "  every model reused" eval 'expect_eq "$(models_map reused)" "$(rr_statuses)"'

t_input_changed() {
	printf 'gene,chrom\nTP53,17\nKRAS,12\nEGFR,7\nBRAF,7\n' >data/ref/genes.csv
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused load_genes=success gene_counts=success)" "$(rr_statuses)" || return 1
	expect_eq "input 'data/ref/genes.csv' changed" "$(rr_reasons load_genes)" || return 1
	expect_eq "upstream 'load_genes' changed" "$(rr_reasons gene_counts)" || return 1
	expect_eq 4 "$(psql_q 'select genes from analytics.gene_counts')"
}
ok "a changed input file rebuilds exactly its script and what reads it" t_input_changed

# The script's own write is its build; a write into its relation by
# anyone else afterwards is a change made outside sluice, as for SQL models.
t_relation_written_outside() {
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)" || return 1
	psql_q "insert into analytics.load_genes values ('NRAS', 1)" >/dev/null || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused load_genes=success)" "$(rr_statuses)" || return 1
	expect_eq "relation analytics.load_genes was changed outside sluice" "$(rr_reasons load_genes)" || return 1
	expect_eq 4 "$(psql_q 'select count(*) from analytics.load_genes')"
}
ok "a write into a script's relation outside sluice rebuilds the script" t_relation_written_outside

t_input_added_removed() {
	printf 'code,label\nB,beta\n' >data/lookup/more.csv
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused export_base=success after_export=success)" "$(rr_statuses)" || return 1
	expect_eq "input 'data/lookup/more.csv' added" "$(rr_reasons export_base)" || return 1
	rm data/lookup/codes.csv
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused export_base=success after_export=success)" "$(rr_statuses)" || return 1
	expect_eq "input 'data/lookup/codes.csv' removed" "$(rr_reasons export_base)"
}
ok "an added or removed input file is named in the reason" t_input_added_removed

# The recorded mtime (ns) of an input, from the local state.
state_mtime() {
	jq -r --arg f "$1" '.records["model.proj.load_genes"].inputs[$f].mtime_ns' .sluice/state/dev.json
}
t_touch() {
	before=$(state_mtime data/ref/genes.csv) || return 1
	touch -d @978307200 data/ref/genes.csv || return 1
	plan_out || return 1
	expect_eq "0 to build, 5 to reuse" "$(tail -n 1 "$T_DIR/plan.out")" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)" || return 1
	# read again (new mtime recorded), so the next run takes the fast path
	expect_eq 978307200000000000 "$(state_mtime data/ref/genes.csv)" || return 1
	[ "$before" != 978307200000000000 ] || { echo "mtime was already recorded"; return 1; }
}
ok "touching an input without changing it re-hashes it and rebuilds nothing" t_touch

t_output_missing() {
	rm target/files/base.csv
	plan_out || return 1
	expect_eq "output 'target/files/base.csv' is missing" "$(plan_reasons export_base)" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq success "$(rr_status export_base)" || return 1
	[ -s target/files/base.csv ] || { echo "not written again"; return 1; }
	# same content again: what depends on it has nothing new to see
	expect_eq reused "$(rr_status after_export)"
}
ok "a missing output makes its script stale, and the run writes it again" t_output_missing

t_output_changed() {
	echo tampered >target/files/base.csv
	plan_out || return 1
	expect_eq "output 'target/files/base.csv' was changed outside sluice" "$(plan_reasons export_base)"
}
ok "an output rewritten outside sluice makes its script stale" t_output_changed

t_ref_needs_relation() {
	model reads_export "select * from {{ ref('export_base') }}"
	expect_exit 2 sluice ls || return 1
	expect_grep "models/reads_export.sql:1:18: ref\('export_base'\) names a shell model that creates no relation: to run after it, put depends_on=\[ref\('export_base'\)\] in config\(\)" "$T_DIR/out"
}
ok "ref() of a script without relation=true: an error at file:line pointing to depends_on" t_ref_needs_relation
rm -f models/reads_export.sql

t_bad_config() {
	printf "# {{ config(timeout='soon') }}\ntrue\n" >models/bad.sh
	expect_exit 2 sluice ls || return 1
	expect_grep "models/bad.sh:1:6: timeout takes a duration such as '90s', '10m' or '1h', not 'soon'" "$T_DIR/out" || return 1
	printf "{{ config(materialized='shell') }}\nselect 1\n" >models/bad.sql
	rm models/bad.sh
	expect_exit 2 sluice ls || return 1
	expect_grep "models/bad.sql:1:4: materialized='shell': shell models \(\.sh\) and only they" "$T_DIR/out"
}
ok "bad shell config is reported at its config() call" t_bad_config
rm -f models/bad.sh models/bad.sql

# ---- failures, in a project of their own -----------------------------------
new_project fail
printf 'x\n' >input.txt

t_missing_output() {
	cat >models/forgets.sh <<'SH'
# {{ config(outputs=['target/files/never.csv']) }}
echo "pretending to write"
SH
	model after_forgets "{{ config(depends_on=[ref('forgets')]) }} select 1 as x"
	expect_exit 1 sluice run -s forgets+ || return 1
	expect_eq error "$(rr_status forgets)" || return 1
	expect_eq skipped "$(rr_status after_forgets)" || return 1
	expect_grep "models/forgets.sh: the script exited 0 but did not write its declared output 'target/files/never.csv'" "$T_DIR/out"
}
ok "a declared output that is not written fails the node and skips downstream" t_missing_output

t_exit_status_tail() {
	cat >models/breaks.sh <<'SH'
i=1
while [ $i -le 30 ]; do echo "step $i"; i=$((i + 1)); done
echo "psql: error: relation does not exist" >&2
exit 4
SH
	expect_exit 1 sluice run -s breaks || return 1
	expect_grep "models/breaks.sh: exited with status 4; last lines of .*target/logs/breaks.log:" "$T_DIR/out" || return 1
	expect_grep "^    \| step 30$" "$T_DIR/out" || return 1
	expect_grep "^    \| psql: error: relation does not exist$" "$T_DIR/out" || return 1
	expect_no_grep "\| step 11$" "$T_DIR/out" || return 1
	# the whole output is in the log
	expect_grep "^step 1$" target/logs/breaks.log || return 1
	expect_grep "exited with status 4" target/run_results.json
}
ok "a non-zero exit fails the node and shows the log's last lines" t_exit_status_tail

t_timeout() {
	cat >models/hangs.sh <<'SH'
# {{ config(timeout='1s') }}
sleep 300 &
echo $! >target/sleep.pid
echo "waiting"
wait
SH
	t0=$(date +%s)
	expect_exit 1 sluice run -s hangs || return 1
	t1=$(date +%s)
	[ $((t1 - t0)) -le 4 ] || { echo "took $((t1 - t0)) s"; return 1; }
	expect_grep "models/hangs.sh: timed out after 1s: its process group was killed" "$T_DIR/out" || return 1
	pid=$(cat target/sleep.pid) || return 1
	[ -n "$pid" ] || return 1
	# gone, or a zombie waiting to be reaped (read from /proc: ps may not be installed)
	wait_until 3 sh -c "! kill -0 $pid 2>/dev/null || [ \"\$(cut -d' ' -f3 /proc/$pid/stat)\" = Z ]" ||
		{ echo "sleep $pid still runs"; return 1; }
}
ok "timeout kills the script's whole process group (its sleep is gone)" t_timeout

t_sigint() {
	rm -f target/child.pid target/child-got-int
	cat >models/waits.sh <<'SH'
sh -c 'trap "echo INT >target/child-got-int; exit 9" INT; echo $$ >target/child.pid; while :; do sleep 0.1; done'
SH
	bg_start int "$SLUICE_BIN" run -s waits || return 1
	wait_until 10 test -s target/child.pid || { echo "the script never started"; cat "$T_DIR/int.log"; return 1; }
	kill -INT "$BG_PID" || return 1
	rc=$(bg_wait int 10) || return 1
	cat "$T_DIR/int.log"
	expect_eq 130 "$rc" || return 1
	wait_until 5 test -s target/child-got-int || { echo "the script's child never got SIGINT"; return 1; }
	expect_eq error "$(rr_status waits)" || return 1
	rr '.results[0].message' | grep -q cancelled
}
ok "SIGINT to sluice reaches the script's child; sluice exits 130" t_sigint

# ---- environment and secrets -----------------------------------------------
new_project envp
cat >>profiles.yml <<YML
      s3:
        endpoint: http://127.0.0.1:9
        region: eu-west-1
        access_key_id: AKIDT0700
        secret_access_key: "{{ env_var('T0700_S3_SECRET') }}"
YML
cat >>profiles.yml <<YML
      connections:
        wh_pg:
          type: postgres
          host: "$SLUICE_TEST_PGHOST"
          port: $SLUICE_TEST_PGPORT
          user: "$SLUICE_TEST_PGUSER"
          password: "{{ env_var('SLUICE_TEST_PGPASSWORD') }}"
          dbname: "$T_DB"
          schema: analytics
        wh_odbc:
          type: odbc
          driver: "${SLUICE_TEST_ODBC_DRIVER:-/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so}"
          host: "$SLUICE_TEST_PGHOST"
          port: $SLUICE_TEST_PGPORT
          user: "$SLUICE_TEST_PGUSER"
          password: "{{ env_var('SLUICE_TEST_PGPASSWORD') }}"
          dbname: "$T_DB"
          schema: analytics
YML
export T0700_S3_SECRET=t0700-aws-secret-value
cat >models/env_odbc.sh <<'SH'
# {{ config(connection='wh_odbc') }}
case $SLUICE_ODBC_CONNECTION_STRING in
*"$PGDATABASE_WANTED"*) echo "odbc connection string names the database" ;;
esac
echo "odbc: $SLUICE_ODBC_CONNECTION_STRING"
echo "PGPASSWORD=${PGPASSWORD:-unset}"
SH
# libpq's variables come from a libpq connection, whichever the default is
cat >models/env_check.sh <<'SH'
# {{ config(connection='wh_pg') }}
env | grep -E '^(SLUICE_(TARGET|INVOCATION_ID|NODE|SCHEMA)|PG(HOST|PORT|USER|DATABASE)|AWS_(ENDPOINT_URL|REGION|ACCESS_KEY_ID))=' | sort >target/env.txt
[ "$PGPASSWORD" = "$SLUICE_TEST_PGPASSWORD" ] && echo "PGPASSWORD is set: $PGPASSWORD"
[ "$AWS_SECRET_ACCESS_KEY" = "$T0700_S3_SECRET" ] && echo "AWS secret is set: $AWS_SECRET_ACCESS_KEY"
psql -X -A -t -c "select 'psql reached ' || current_database()"
exit 2
SH

t_env() {
	# none of libpq's variables come from the caller: sluice sets them
	# (env_check exits 2, so that its log's tail is in its message)
	expect_exit 1 env -u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD -u PGDATABASE PGDATABASE_WANTED="$T_DB" \
		"$SLUICE_BIN" run || return 1
	expect_eq "AWS_ACCESS_KEY_ID=AKIDT0700
AWS_ENDPOINT_URL=http://127.0.0.1:9
AWS_REGION=eu-west-1
PGDATABASE=$T_DB
PGHOST=$SLUICE_TEST_PGHOST
PGPORT=$SLUICE_TEST_PGPORT
PGUSER=$SLUICE_TEST_PGUSER
SLUICE_INVOCATION_ID=$(rr .metadata.invocation_id)
SLUICE_NODE=model.proj.env_check
SLUICE_SCHEMA=analytics
SLUICE_TARGET=dev" "$(cat target/env.txt)" || return 1
	expect_grep "^psql reached $T_DB$" target/logs/env_check.log || return 1
	expect_grep "^PGPASSWORD is set: \*\*\*$" target/logs/env_check.log || return 1
	expect_grep "^AWS secret is set: \*\*\*$" target/logs/env_check.log || return 1
	# an ODBC connection gives its connection string instead (the whole string is a secret)
	expect_eq success "$(rr_status env_odbc)" || return 1
	expect_grep "^odbc connection string names the database$" target/logs/env_odbc.log || return 1
	expect_grep "^odbc: \*\*\*$" target/logs/env_odbc.log || return 1
	expect_grep "^PGPASSWORD=unset$" target/logs/env_odbc.log
}
ok "the script gets SLUICE_*, its connection's PG* or ODBC string, and the s3 block's AWS_*" t_env

t_no_secrets() {
	for f in target/logs/env_check.log target/logs/env_odbc.log target/run_results.json target/manifest.json "$T_DIR/out" .sluice/state/*; do
		expect_no_grep "$SLUICE_TEST_PGPASSWORD|$T0700_S3_SECRET" "$f" || return 1
	done
	# the secrets did reach the script: the tail in the message is scrubbed too
	expect_grep "PGPASSWORD is set: \*\*\*" target/run_results.json
}
ok "passwords and keys appear in no log, artifact or message" t_no_secrets

# A password written inside an ODBC connection_string, with no password:
# key, is a secret too (the driver lists it): whether the script cuts it
# out of $SLUICE_ODBC_CONNECTION_STRING or prints the environment it got
# from the caller. Both keys psqlODBC reads, brace-quoted and plain. The
# connections are ODBC ones of their own, so both passes run this.
new_project cspw
cat >>profiles.yml <<YML
      connections:
        cs_braced:
          type: odbc
          connection_string: "Driver=$T_ODBC_DRIVER;Server=$SLUICE_TEST_PGHOST;Port=$SLUICE_TEST_PGPORT;UID=$SLUICE_TEST_PGUSER;PWD={{ '{' }}{{ env_var('SLUICE_TEST_PGPASSWORD') }}{{ '}' }};Database=$T_DB"
          schema: analytics
        cs_plain:
          type: odbc
          connection_string: "Driver=$T_ODBC_DRIVER;Server=$SLUICE_TEST_PGHOST;Port=$SLUICE_TEST_PGPORT;UID=$SLUICE_TEST_PGUSER;Password={{ env_var('SLUICE_TEST_PGPASSWORD') }};Database=$T_DB"
          schema: analytics
YML
cat >models/cs_braced.sh <<'SH'
# {{ config(connection='cs_braced') }}
pw=$(printf '%s\n' "$SLUICE_ODBC_CONNECTION_STRING" | sed -n 's/.*;PWD={\([^}]*\)};.*/\1/p')
[ "$pw" = "$SLUICE_TEST_PGPASSWORD" ] && echo "PWD from the connection string: $pw"
echo "as written: PWD={$pw}"
env | grep -E '^(SLUICE_|PG)' | sort
SH
cat >models/cs_plain.sh <<'SH'
# {{ config(connection='cs_plain') }}
pw=$(printf '%s\n' "$SLUICE_ODBC_CONNECTION_STRING" | sed -n 's/.*;Password=\([^;]*\);.*/\1/p')
[ "$pw" = "$SLUICE_TEST_PGPASSWORD" ] && echo "Password from the connection string: $pw"
env | grep -E '^(SLUICE_|PG)' | sort
SH

t_cs_password() {
	expect_exit 0 sluice run || return 1
	expect_eq "cs_braced=success cs_plain=success" "$(rr_statuses)" || return 1
	expect_grep "^PWD from the connection string: \*\*\*$" target/logs/cs_braced.log || return 1
	expect_grep "^as written: PWD=\{\*\*\*\}$" target/logs/cs_braced.log || return 1
	expect_grep "^Password from the connection string: \*\*\*$" target/logs/cs_plain.log || return 1
	# the whole string, and the caller's copies of the password
	expect_grep "^SLUICE_ODBC_CONNECTION_STRING=\*\*\*$" target/logs/cs_plain.log || return 1
	expect_grep "^SLUICE_TEST_PGPASSWORD=\*\*\*$" target/logs/cs_plain.log || return 1
	for f in target/logs/cs_braced.log target/logs/cs_plain.log target/run_results.json "$T_DIR/out"; do
		expect_no_grep "$SLUICE_TEST_PGPASSWORD" "$f" || return 1
	done
}
ok "a password inside an ODBC connection_string stays out of logs, braced or not" t_cs_password

done_testing
