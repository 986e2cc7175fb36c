#!/usr/bin/env bash
# t0120: the repo's example project (sluice.yml, models/, data-tests/,
# demo/lake.sql) runs end to end against the test server, its marts hold
# what the lake says they should, and its data tests pass.
. "$(dirname "$0")/lib.sh"

top=$(cd "$(dirname "$SLUICE_BIN")" && pwd)
D=$T_DIR/demo
mkdir -p "$D"
cp -r "$top/sluice.yml" "$top/models" "$top/demo" "$top/data-tests" "$D"/ || exit 1
cat >"$D/profiles.yml" <<YML
clinic:
  target: dev
  outputs:
    dev:
$(conn_keys "      ")
      schema: analytics
      threads: 4
YML
cd "$D" || exit 1
lake_connection "$T_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$T_DB" -f demo/lake.sql >/dev/null || { echo "Bail out! demo/lake.sql failed"; exit 1; }

# The models that are built: every one but the ephemeral int_*, scripts included.
built=$(cd models && ls */*.sql */*.sh | grep -v '^intermediate/' | sed 's|.*/||; s|\.s[qh]l*$||' | sort)
nbuilt=$(echo "$built" | wc -l)

ok "sluice run on the demo project exits 0" expect_exit 0 sluice run
cp "$T_DIR/out" "$T_DIR/run1.out"

t_all_ok() {
	expect_eq "$(echo "$built" | sed 's/^/model.clinic./' | paste -sd' ' -)" \
		"$(rr '[.results[] | select(.status == "success") | .unique_id] | sort | join(" ")')" || return 1
	expect_eq 0 "$(rr '[.results[] | select(.status != "success")] | length')" || return 1
	expect_eq "$nbuilt" "$(grep -c '^\[[0-9]*/[0-9]*\] OK ' "$T_DIR/run1.out")" || return 1
	expect_no_grep '(ERROR|SKIP) ' "$T_DIR/run1.out" || return 1
	expect_grep ": $nbuilt ok, 0 error, 0 skipped" "$T_DIR/run1.out"
}
ok "every model is OK ($nbuilt built, the ephemeral one inlined)" t_all_ok

# The expected contents, computed from the lake with the models' rules.
ADULT="from lake.treatments t join lake.patients p using (patient_id)
	where t.dose_mg > 0 and date_part('year', age(date '2026-01-01', p.birth_date))::int >= 18"

# Each count is checked against the lake's, and the lake's against 0: two
# empty sides would be equal too.
t_dim_patients() {
	want=$(psql_q "select count(*) from lake.patients") || return 1
	expect_positive "$want" "lake patients" || return 1
	expect_eq "$want" "$(psql_q "select count(*) from analytics_marts.dim_patients")"
}
ok "dim_patients: one row per lake patient" t_dim_patients

t_trial_outcomes() {
	trials=$(psql_q "select count(distinct t.trial_id) $ADULT and t.trial_id in (select trial_id from lake.trials)") || return 1
	treatments=$(psql_q "select count(*) $ADULT and t.trial_id in (select trial_id from lake.trials)") || return 1
	responded=$(psql_q "select count(*) filter (where outcome = 'responded') $ADULT") || return 1
	expect_positive "$trials" "trials with adult treatments" || return 1
	expect_positive "$treatments" "adult treatments in a trial" || return 1
	expect_positive "$responded" "adult treatments that responded" || return 1
	expect_eq "$trials $treatments" \
		"$(psql_q "select count(*) || ' ' || sum(treatments) from analytics_marts.trial_outcomes")" || return 1
	expect_eq "$responded" "$(psql_q "select sum(responded) from analytics_marts.trial_outcomes")"
}
ok "trial_outcomes: one row per trial with adult treatments, counts add up" t_trial_outcomes

t_gene_burden() {
	want=$(psql_q "select count(*) from (select distinct v.gene, upper(p.site)
		from lake.variants v join lake.patients p using (patient_id)
		where v.vaf >= 0.05 and v.gene in ('TP53', 'KRAS', 'EGFR', 'BRAF', 'PIK3CA')) s") || return 1
	expect_positive "$want" "tracked (gene, site) pairs in the lake" || return 1
	expect_eq "$want" "$(psql_q "select count(*) from analytics_marts.gene_burden")"
}
ok "gene_burden: one row per tracked gene and site" t_gene_burden

AE_EXPECTED=$(psql_q "select count(*) $ADULT and t.adverse_event")
t_adverse_events() {
	expect_positive "$AE_EXPECTED" "adult adverse events in the lake" || return 1
	expect_eq "$AE_EXPECTED $AE_EXPECTED" \
		"$(psql_q "select count(*) || ' ' || count(distinct treatment_id) from analytics_marts.adverse_events")"
}
ok "adverse_events: every adult adverse event once" t_adverse_events

t_staging() {
	expect_eq "v v v v" "$(psql_q "select string_agg(c.relkind::text, ' ') from pg_class c
		join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics_staging'")" || return 1
	expect_eq 0 "$(psql_q "select count(*) from pg_class where relname = 'int_adult_treatments'")"
}
ok "staging: four views in analytics_staging; the intermediate model is not built" t_staging

t_export() {
	rows=$(psql_q "select count(*) from analytics_marts.trial_outcomes") || return 1
	expect_positive "$rows" "rows of trial_outcomes" || return 1
	expect_eq "$((rows + 1))" "$(wc -l <target/files/trial_outcomes.csv)" || return 1
	expect_eq "$(psql_q "select trial_id from analytics_marts.trial_outcomes order by trial_id limit 1")" \
		"$(sed -n 2p target/files/trial_outcomes.csv | cut -d, -f1)"
}
ok "the shell model exported trial_outcomes to target/files/trial_outcomes.csv with psql" t_export

t_second_run() {
	expect_exit 0 sluice run || return 1
	expect_grep " 0 error, 0 skipped" "$T_DIR/out" || return 1
	expect_eq "$AE_EXPECTED $AE_EXPECTED" \
		"$(psql_q "select count(*) || ' ' || count(distinct treatment_id) from analytics_marts.adverse_events")"
}
ok "a second run exits 0 and adverse_events is unchanged" t_second_run

t_build() {
	expect_exit 0 sluice build || return 1
	expect_eq 0 "$(rr '[.results[] | select(.status == "fail" or .status == "error" or .status == "skipped")] | length')" || return 1
	expect_eq 22 "$(rr '[.results[] | select(.unique_id | startswith("test."))] | length')" || return 1
	expect_eq "test.clinic.expression_stg_variants_vaf___0_95" "$(rr '[.results[] | select(.status == "warn") | .unique_id] | join(" ")')" || return 1
	expect_eq pass "$(rr '.results[] | select(.unique_id == "test.clinic.adverse_events_are_adults") | .status')"
}
ok "sluice build: the demo's data tests pass, the one review flag warns" t_build

t_nightly() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$T_DB" -f demo/nightly.sql >/dev/null || return 1
	wait_until 10 stats_settled lake.treatments 10100 || { echo "statistics never counted the insert"; return 1; }
	expect_exit 0 sluice run || return 1
	expect_grep "OK unload .*unload_treatments .* 100 rows" "$T_DIR/out" || return 1
	expect_grep "REUSED unload .*unload_patients" "$T_DIR/out" || return 1
	want=$(psql_q "select count(*) from lake.treatments") || return 1
	expect_positive "$want" "lake treatments" || return 1
	expect_eq "$want" "$(psql_q "select count(*) from analytics_raw.raw_treatments")" || return 1
	expect_eq "pass pass" "$(rr '[.results[] | select(.unique_id == "model.clinic.raw_treatments") | .validations[].status] | join(" ")')"
}
ok "the nightly load: only the 100 new treatments cross the stage, and every count matches" t_nightly

done_testing
