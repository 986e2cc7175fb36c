#!/usr/bin/env bash
# t1100: a dbt project runs as it is: dbt_project.yml when there is no
# sluice.yml (sluice.yml wins when both exist), its config trees by folder,
# dbt's custom schema rule, and profiles.yml found where dbt looks for it,
# or an error naming the places searched.
. "$(dirname "$0")/lib.sh"

new_dbt_project shop

t_debug_names_file() {
	sluice debug >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep '^project:  shop \(.*/dbt_project\.yml\)$' "$T_DIR/out" &&
	expect_grep '^models:   5, sources: 0, seeds: 2, snapshots: 0$' "$T_DIR/out"
}
ok "sluice debug says dbt_project.yml was read" t_debug_names_file

t_build() {
	expect_exit 0 sluice build || return 1
	expect_grep 'Done in .*: 6 ok, 0 error, 0 skipped' "$T_DIR/out" || return 1
	expect_eq "5" "$(psql_q 'select count(*) from analytics.customers')" || return 1
	# +schema: raw on seeds and marts on a folder: <target schema>_<custom>
	expect_eq "6" "$(psql_q 'select count(*) from analytics_raw.raw_orders')" || return 1
	expect_eq "4" "$(psql_q 'select count(*) from analytics_marts.order_status')" || return 1
	# staging: +materialized: view beats the project's table
	expect_eq "r v" "$(psql_q "select string_agg(relkind::text, ' ' order by relname) from pg_class
		where relname in ('stg_orders', 'customers')")"
}
ok "sluice build builds seeds and models with the folder config and custom schemas" t_build

t_disabled() {
	expect_eq "0" "$(psql_q "select count(*) from pg_class where relname = 'legacy_report'")" &&
	sluice ls >"$T_DIR/ls" 2>&1 &&
	expect_no_grep 'legacy_report' "$T_DIR/ls" &&
	expect_grep '^shop\.staging\.stg_orders$' "$T_DIR/ls"
}
ok "+enabled: false in the config tree leaves the model out" t_disabled

t_ref_disabled() {
	model uses_legacy "select * from {{ ref('legacy_report') }}" &&
	expect_exit 2 sluice ls || { rm -f models/uses_legacy.sql; return 1; }
	rm -f models/uses_legacy.sql
	expect_grep "models/uses_legacy\.sql:1:18: ref\('legacy_report'\): model 'legacy_report' \(models/marts/legacy_report\.sql\) is disabled" "$T_DIR/out"
}
ok "a ref to a disabled model says so" t_ref_disabled

t_tags() {
	sluice ls -s tag:staging >"$T_DIR/ls" 2>&1 || { cat "$T_DIR/ls"; return 1; }
	expect_eq "shop.staging.stg_customers
shop.staging.stg_orders" "$(cat "$T_DIR/ls")"
}
ok "+tags in the config tree select by tag" t_tags

t_sluice_yml_wins() {
	printf 'name: other\nprofile: shop\n' >sluice.yml &&
	sluice debug >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; rm -f sluice.yml; return 1; }
	rm -f sluice.yml
	expect_grep '^project:  other \(.*/sluice\.yml\)$' "$T_DIR/out"
}
ok "with both files, sluice.yml wins and debug says so" t_sluice_yml_wins

# profiles_found_in DIR VAR=VALUE: with profiles.yml moved to DIR and VAR
# set, sluice debug reads it from there.
profiles_found_in() {
	mkdir -p "$1" &&
	mv profiles.yml "$1/" || return 1
	env "$2" "$SLUICE_BIN" debug >"$T_DIR/out" 2>&1
	rc=$?
	mv "$1/profiles.yml" . || return 1
	[ "$rc" = 0 ] || { cat "$T_DIR/out"; return 1; }
	expect_grep "from $1/profiles.yml" "$T_DIR/out"
}

ok "profiles.yml in \$DBT_PROFILES_DIR is found" \
	profiles_found_in "$T_DIR/elsewhere" "DBT_PROFILES_DIR=$T_DIR/elsewhere"
ok "profiles.yml in ~/.dbt is found" profiles_found_in "$T_DIR/home/.dbt" "HOME=$T_DIR/home"

t_no_profiles() {
	mv profiles.yml "$T_DIR/away.yml" || return 1
	HOME="$T_DIR/nohome" expect_exit 2 sluice run
	rc=$?
	mv "$T_DIR/away.yml" profiles.yml || return 1
	[ "$rc" = 0 ] || return 1
	expect_grep "no profiles.yml found for profile 'shop'" "$T_DIR/out" &&
	expect_grep "DBT_PROFILES_DIR \(not set\)" "$T_DIR/out" &&
	expect_grep "$T_DIR/nohome/\.dbt/profiles\.yml" "$T_DIR/out" &&
	expect_no_grep "embedded" "$T_DIR/out"
}
ok "no profiles.yml in a dbt project: an error naming the places searched, no embedded server" t_no_profiles

done_testing
