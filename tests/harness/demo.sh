#!/bin/sh
# make demo: fill the synthetic lake (its own database on the embedded
# PostgreSQL) and build the example pipeline at the repo root, with its
# data tests, three times: a first build (lake -> stage -> warehouse ->
# marts, each tested right after it is built), a rerun where nothing
# changed (models and passed tests reused), and a nightly load where new
# lake rows arrive (only they cross the stage; only what reads them is
# rebuilt and tested again, the shell model that exports a mart to a CSV
# file included). Then Alice changes one mart in her own target,
# dev_alice, which reuses what dev built (docs/environments.md): the mart
# is built on top of dev's relations, most of her schema is views onto
# dev's. The embedded server stops again at the end, and Alice's edit is
# undone.
set -eu
alice_keep=$(mktemp)
cp models/marts/gene_burden.sql "$alice_keep"
trap 'cp "$alice_keep" models/marts/gene_burden.sql; rm -f "$alice_keep"; ./sluice embedded stop >/dev/null 2>&1 || true' EXIT
./sluice embedded start >/dev/null
./sluice debug >/dev/null          # creates the clinic and lake databases on first use
eval "$(./sluice embedded env)"
psql -X -q -v ON_ERROR_STOP=1 -d lake -f demo/lake.sql

echo "== 1. sluice build: lake -> stage -> warehouse -> staging views -> marts, each tested right after it is built =="
./sluice build
echo
echo "== 2. sluice build again: nothing changed, nothing is redone (a warning is checked again) =="
./sluice build
echo
echo "== 3. the nightly load: new treatments arrive in the lake; only they cross =="
psql -X -q -v ON_ERROR_STOP=1 -d lake -f demo/nightly.sql
./sluice plan
./sluice build
echo
echo "== every hop's row counts (target/run_results.json) =="
jq -r '.results[] | select(.validations) | .unique_id as $u | .validations[] | "\($u): \(.name): \(.expected) = \(.actual) \(.status)"' target/run_results.json
echo
echo "== the marts =="
psql -X -d clinic -c 'select trial_name, drug, treatments, responded, stable, progressed from analytics_marts.trial_outcomes order by trial_id limit 5'
echo
echo "== what the shell model exported (target/files/trial_outcomes.csv) =="
head -n 4 target/files/trial_outcomes.csv
echo
echo "== the schedule in sluice.yml: sluice schedule --list (docs/schedule.md) =="
./sluice schedule --list
echo
echo "== 4. Alice rounds one column of one mart differently, in her own target (dev_alice: reuse_from: [dev]) =="
sed -i 's/round(avg(v.vaf)::numeric, 3) as mean_vaf/round(avg(v.vaf)::numeric, 2) as mean_vaf/' models/marts/gene_burden.sql
./sluice plan --target dev_alice
./sluice build --target dev_alice | grep -E '^(Done|Tests)|REUSED (unload|load|view|table|shell)|OK table .*gene_burden' || true
echo "(her unloads take dev's stage generations, her raw tables are copies of dev's, her staging views are made again over them,"
echo " the marts she did not touch are views over dev's, and dev's CSV export is already in target/files: one model is built)"
psql -X -d clinic -c "select 'dev' as target, * from (select * from analytics_marts.gene_burden order by 1, 2 limit 2) d
  union all select 'dev_alice', * from (select * from analytics_alice_marts.gene_burden order by 1, 2 limit 2) a"
./sluice cache ls | grep -E 'environment|gene_burden|stg_variants'
cp "$alice_keep" models/marts/gene_burden.sql
echo
echo "== the report of the last build: the DAG, why each node ran, the timeline, the failing rows =="
echo "report: $(pwd)/target/report.html   (./sluice report --open opens it)"
