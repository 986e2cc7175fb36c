#!/usr/bin/env bash
# t0200: every reason a model is rebuilt (docs/fingerprints.md, "Decisions
# and reasons"), each seen the way a user sees it: in `sluice plan` (text
# and JSON) and, after `sluice run`, in run_results.json `reasons`; and the
# edits that must not rebuild anything (whitespace, comments, tags).
. "$(dirname "$0")/lib.sh"

new_project reasons
cat >>sluice.yml <<'YML'
vars:
  x: 1
YML
# A second output of the same profile, writing to another schema.
cat >>profiles.yml <<YML
    other:
$(conn_keys "      ")
      schema: analytics_other
      threads: 4
YML
psql_q "create schema lake;
create table lake.t (id int); insert into lake.t values (1), (2), (3);
create table lake.u (id int); insert into lake.u values (1), (2);
create table lake.f (id int); insert into lake.f values (1), (2), (4);" || exit 1
cat >models/sources.yml <<'YML'
version: 2
sources:
  - name: lake
    tables:
      - name: t
      - name: u
      - name: f
YML
model base "{{ config(materialized='table') }}
select id from {{ source('lake', 't') }}"
model down "{{ config(materialized='table') }}
select id * 10 as id from {{ ref('base') }}"
model code_m "{{ config(materialized='table') }}
select 1 as x"
model cfg_m "{{ config(materialized='table', tags=['a']) }}
select 1 as x"
model var_m "{{ config(materialized='table') }}
select {{ var('x') }} as x"
model var_if "{{ config(materialized='table') }}
{% set unused = var('y', 'a') %}select 2 as x"
model env_m "{{ config(materialized='table') }}
select '{{ env_var('SLUICE_T0200_SECRET', 'none') }}' as v"
model vw "select id from {{ source('lake', 'u') }}"
model vt "{{ config(materialized='table') }}
select count(*) as n from {{ ref('vw') }}"
model div "{{ config(materialized='table') }}
select 100 / id as q from {{ source('lake', 'f') }}"
model div_down "{{ config(materialized='table') }}
select count(*) as n from {{ ref('div') }}"
MODELS="base cfg_m code_m div div_down down env_m var_if var_m vt vw"

# The versions sluice records must include the rows inserted above, or a
# later run would see them as a change.
settled() { stats_settled lake.t 3 && stats_settled lake.u 2 && stats_settled lake.f 3; }
ok "setup: the statistics of the sources count the inserted rows" wait_until 10 settled

# only_built NAME...: run_results says NAME... success and every other model reused.
only_built() {
	_kv=""
	for _m in "$@"; do _kv="$_kv $_m=success"; done
	# shellcheck disable=SC2086
	expect_eq "$(models_map reused $_kv)" "$(rr_statuses)"
}
# plan_only NAME...: the JSON plan builds NAME... and reuses every other model.
plan_only() {
	_kv=""
	for _m in "$@"; do _kv="$_kv $_m=build"; done
	# shellcheck disable=SC2086
	expect_eq "$(models_map reuse $_kv)" "$(plan_actions)"
}
# exact_reasons EXPECTED ACTUAL: two newline-separated lists, compared as such.
exact_reasons() {
	expect_eq "$1" "$2"
}

# t_reason NAME REASON [ARGS...]: `sluice plan ARGS` builds NAME listing REASON
# (text and JSON); `sluice run ARGS` exits 0, builds NAME, lists REASON.
t_reason() {
	_n=$1 _r=$2
	shift 2
	plan_out "$@" || return 1
	expect_eq build "$(plan_action "$_n")" || return 1
	expect_line "$_r" "$(plan_reasons "$_n")" || return 1
	expect_line "$_r" "$(plan_json_reasons "$_n")" || return 1
	expect_exit 0 sluice run "$@" || return 1
	expect_eq success "$(rr_status "$_n")" || return 1
	expect_line "$_r" "$(rr_reasons "$_n")"
}

# all_reused: plan and run both reuse every model, with no reasons.
all_reused() {
	plan_out || return 1
	expect_eq "$(models_map reuse)" "$(plan_actions)" || return 1
	expect_eq "0 to build, 11 to reuse" "$(tail -n 1 "$T_DIR/plan.out")" || return 1
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map reused)" "$(rr_statuses)" || return 1
	expect_eq 0 "$(rr '[.results[].reasons[]] | length')"
}

# settle: a quiet run, so that a failed test leaves nothing stale for the next.
settle() { sluice run >/dev/null 2>&1; }

# --- never built ---------------------------------------------------------------

t_never() {
	plan_out || return 1
	expect_eq "$(models_map build)" "$(plan_actions)" || return 1
	for m in $MODELS; do
		exact_reasons "never built" "$(plan_reasons "$m")" || return 1
		exact_reasons "never built" "$(plan_json_reasons "$m")" || return 1
	done
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	for m in $MODELS; do
		exact_reasons "never built" "$(rr_reasons "$m")" || return 1
	done
}
ok "never built: the first plan and run build every model, reason 'never built'" t_never
ok "a second run reuses every model, with no reasons" all_reused

# --- code ----------------------------------------------------------------------

t_cosmetic() {
	model code_m "{{ config(materialized='table') }}
-- a comment that explains nothing
{# and a template comment #}
select   1 /* inline */   as
		x"
	all_reused
}
ok "code: whitespace, indentation and comments only: still reused" t_cosmetic

t_code() {
	model code_m "{{ config(materialized='table') }}
select 2 as x"
	t_reason code_m "code changed" || return 1
	exact_reasons "code changed" "$(rr_reasons code_m)" || return 1
	only_built code_m || return 1
	expect_eq 2 "$(psql_q "select x from analytics.code_m")"
}
ok "code changed: an edited SELECT rebuilds that model only" t_code

# --- config --------------------------------------------------------------------

t_alias() {
	model cfg_m "{{ config(materialized='table', tags=['a'], alias='cfg_alias') }}
select 1 as x"
	t_reason cfg_m "config changed" || return 1
	expect_no_line "code changed" "$(rr_reasons cfg_m)" || return 1
	only_built cfg_m || return 1
	expect_eq 1 "$(psql_q "select x from analytics.cfg_alias")"
}
ok "config changed: a new alias (not 'code changed'), built under the new name" t_alias

t_hook() {
	model cfg_m "{{ config(materialized='table', tags=['a'], alias='cfg_alias', post_hook='select 1') }}
select 1 as x"
	t_reason cfg_m "config changed" || return 1
	exact_reasons "config changed" "$(rr_reasons cfg_m)" || return 1
	only_built cfg_m
}
ok "config changed: a post_hook added (a config key): reason exactly 'config changed'" t_hook

t_tags() {
	model cfg_m "{{ config(materialized='table', tags=['b', 'c'], alias='cfg_alias', post_hook='select 1') }}
select 1 as x"
	cat >models/props.yml <<'YML'
version: 2
models:
  - name: cfg_m
    description: A model whose documentation changed.
    config:
      meta: {owner: someone}
YML
	all_reused
}
ok "tags, description and meta changed: reused" t_tags

# --- vars ------------------------------------------------------------------------

t_var() {
	t_reason var_m "var 'x' changed" --vars '{x: 2}' || return 1
	only_built var_m || return 1
	expect_eq 2 "$(psql_q "select x from analytics.var_m")" || return 1
	# Back to the project's value: changed again.
	t_reason var_m "var 'x' changed" || return 1
	only_built var_m || return 1
	expect_eq 1 "$(psql_q "select x from analytics.var_m")"
}
ok "var 'x' changed: --vars rebuilds the model that reads it, and going back does too" t_var
settle

# A var read but not rendered into the SQL: the code is the same, only the var differs.
t_var_only() {
	t_reason var_if "var 'y' changed" --vars '{y: b}' || return 1
	exact_reasons "var 'y' changed" "$(rr_reasons var_if)" || return 1
	only_built var_if || return 1
	t_reason var_if "var 'y' changed" || return 1
	exact_reasons "var 'y' changed" "$(rr_reasons var_if)" || return 1
	only_built var_if
}
ok "var 'y' changed: the only reason when the SQL text is the same (read, not rendered)" t_var_only
settle

t_env() {
	export SLUICE_T0200_SECRET=hunter2-t0200
	t_reason env_m "env_var 'SLUICE_T0200_SECRET' changed" || return 1
	only_built env_m || return 1
	expect_eq hunter2-t0200 "$(psql_q "select v from analytics.env_m")" || return 1
	plan_out || return 1
	plan_only || return 1
	unset SLUICE_T0200_SECRET
	t_reason env_m "env_var 'SLUICE_T0200_SECRET' changed" || return 1
	only_built env_m
}
ok "env_var 'X' changed: a new value rebuilds the model that reads it, unsetting it does too" t_env
settle

t_env_secret() {
	[ -d .sluice ] || { echo "no .sluice directory"; return 1; }
	if grep -rl hunter2-t0200 .sluice; then
		echo "the env_var value is stored in the state"
		return 1
	fi
}
ok "... and the env_var's value is not in the state" t_env_secret

# --- upstream and sources ------------------------------------------------------

t_upstream() {
	model base "{{ config(materialized='table') }}
select id from {{ source('lake', 't') }} where id > 1"
	t_reason down "upstream 'base' changed" || return 1
	exact_reasons "code changed" "$(rr_reasons base)" || return 1
	exact_reasons "upstream 'base' changed" "$(rr_reasons down)" || return 1
	only_built base down || return 1
	expect_eq "20,30" "$(psql_q "select string_agg(id::text, ',' order by id) from analytics.down")"
}
ok "upstream 'm' changed: the table below a changed table is rebuilt" t_upstream

v_old=$(src_version lake.t)
has_stats_3() { printf '%s\n' "$v_old" | grep -Eq '^stats:[0-9]+:3:' || { echo "lake.t: '$v_old'"; return 1; }; }
ok "setup: lake.t has a stats version" has_stats_3
psql_q "insert into lake.t values (4)"

t_source() {
	wait_until 10 stats_settled lake.t 4 || { echo "lake.t's statistics never counted the insert"; return 1; }
	v_new=$(src_version lake.t) || return 1
	r="source 'lake.t' changed ($v_old -> $v_new)"
	t_reason base "$r" || return 1
	exact_reasons "$r" "$(rr_reasons base)" || return 1
	exact_reasons "upstream 'base' changed" "$(rr_reasons down)" || return 1
	only_built base down || return 1
	expect_eq "20,30,40" "$(psql_q "select string_agg(id::text, ',' order by id) from analytics.down")"
}
ok "source 'lake.t' changed (old -> new): an insert rebuilds the table reading it and the one below" t_source

t_view() {
	psql_q "insert into lake.u values (3)" || return 1
	wait_until 10 stats_settled lake.u 3 || { echo "lake.u's statistics never counted the insert"; return 1; }
	plan_out || return 1
	plan_only vt || return 1
	exact_reasons "" "$(plan_reasons vw)" || return 1
	exact_reasons "upstream 'vw' changed" "$(plan_reasons vt)" || return 1
	exact_reasons "upstream 'vw' changed" "$(plan_json_reasons vt)" || return 1
	expect_exit 0 sluice run || return 1
	only_built vt || return 1
	exact_reasons "upstream 'vw' changed" "$(rr_reasons vt)" || return 1
	expect_eq 3 "$(psql_q "select n from analytics.vt")"
}
ok "a view over a changed source is reused; the table under it is rebuilt (upstream 'vw' changed)" t_view

# --- relations changed outside sluice --------------------------------------------

t_missing() {
	psql_q "drop table analytics.down" || return 1
	t_reason down "relation analytics.down is missing (dropped outside sluice?)" || return 1
	exact_reasons "relation analytics.down is missing (dropped outside sluice?)" "$(rr_reasons down)" || return 1
	only_built down || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics.down")"
}
ok "relation ... is missing: a table dropped with psql is rebuilt" t_missing

t_outside() {
	psql_q "insert into analytics.down values (999)" || return 1
	wait_until 10 plan_builds down || { echo "plan never noticed the insert:"; cat "$T_DIR/plan.json"; return 1; }
	t_reason down "relation analytics.down was changed outside sluice" || return 1
	exact_reasons "relation analytics.down was changed outside sluice" "$(rr_reasons down)" || return 1
	only_built down || return 1
	expect_eq 0 "$(psql_q "select count(*) from analytics.down where id = 999")"
}
ok "relation ... was changed outside sluice: a row inserted with psql is undone by a rebuild" t_outside

ok "after all that, everything is reused" all_reused

# --- failures ------------------------------------------------------------------

psql_q "insert into lake.f values (0)"
t_fail() {
	wait_until 10 stats_settled lake.f 4 || { echo "lake.f's statistics never counted the insert"; return 1; }
	expect_exit 1 sluice run || return 1
	expect_eq "$(models_map reused div=error div_down=skipped)" "$(rr_statuses)" || return 1
	plan_out || return 1
	expect_eq build "$(plan_action div)" || return 1
	expect_line "last run failed" "$(plan_reasons div)" || return 1
	expect_line "last run failed" "$(plan_json_reasons div)"
}
ok "a row of lake.f makes div fail (division by zero): plan then says 'last run failed'" t_fail

deleted_one() { src_version lake.f | grep -Eq "^stats:[0-9]+:4:0:1:"; }
t_recover() {
	psql_q "delete from lake.f where id = 0" || return 1
	wait_until 10 deleted_one ||
		{ echo "lake.f's statistics never counted the delete: $(src_version lake.f)"; return 1; }
	t_reason div "last run failed" || return 1
	only_built div div_down || return 1
	expect_eq 3 "$(psql_q "select n from analytics.div_down")"
}
ok "once the row is gone, div is rebuilt ('last run failed'), and div_down with it" t_recover
ok "... and then everything is reused" all_reused

# --- flags and cue ------------------------------------------------------------

# t_flag FLAG: plan FLAG builds every model with exactly that reason; so does run.
t_flag() {
	plan_out "$1" || return 1
	expect_eq "$(models_map build)" "$(plan_actions)" || return 1
	for m in $MODELS; do
		exact_reasons "$1" "$(plan_reasons "$m")" || return 1
		exact_reasons "$1" "$(plan_json_reasons "$m")" || return 1
	done
	expect_exit 0 sluice run "$1" || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	for m in $MODELS; do
		exact_reasons "$1" "$(rr_reasons "$m")" || return 1
	done
}
ok "--force: every model is rebuilt, reason '--force'" t_flag --force
ok "--full-refresh: every model is rebuilt, reason '--full-refresh'" t_flag --full-refresh
ok "... and afterwards everything is reused" all_reused

t_cue() {
	model cue_m "{{ config(materialized='table', cue='always') }}
select 1 as x"
	expect_exit 0 sluice run || return 1
	expect_line "cue: always" "$(rr_reasons cue_m)" || return 1
	for _ in 1 2; do
		t_reason cue_m "cue: always" || return 1
		exact_reasons "cue: always" "$(rr_reasons cue_m)" || return 1
		MODELS="$MODELS cue_m" only_built cue_m || return 1
	done
}
ok "cue: always: rebuilt on every run, reason 'cue: always', the others reused" t_cue
rm -f models/cue_m.sql

# --- targets -----------------------------------------------------------------

# t_config_only [ARGS...]: every model is built with 'config changed' among its
# reasons and never 'code changed', in the plan and in run_results.json.
t_config_only() {
	plan_out "$@" || return 1
	expect_eq "$(models_map build)" "$(plan_actions)" || return 1
	for m in $MODELS; do
		expect_line "config changed" "$(plan_reasons "$m")" || return 1
		expect_no_line "code changed" "$(plan_reasons "$m")" || return 1
		expect_line "config changed" "$(plan_json_reasons "$m")" || return 1
	done
	expect_exit 0 sluice run "$@" || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	for m in $MODELS; do
		expect_line "config changed" "$(rr_reasons "$m")" || return 1
		expect_no_line "code changed" "$(rr_reasons "$m")" || return 1
	done
}
# State is kept per target (docs/state.md): another target never sees what
# this one built, so its first plan says 'never built' for every model.
t_other_target() {
	plan_out --target other || return 1
	expect_eq "$(models_map build)" "$(plan_actions)" || return 1
	for m in $MODELS; do
		expect_line "never built" "$(plan_reasons "$m")" || return 1
	done
}
ok "--target other has its own state: every model 'never built' there" t_other_target
t_other_schema() {
	expect_exit 0 sluice run --target other || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics_other.down")"
}
ok "--target other builds in that schema" t_other_schema

# The schema is where a relation lives, not what it holds: the fingerprint
# stays (so another target can reuse it, docs/environments.md) and the
# reason names the move.
t_moved() {
	sed -i 's/^      schema: analytics$/      schema: analytics_moved/' profiles.yml || return 1
	grep -q 'schema: analytics_moved' profiles.yml || { echo "profiles.yml not edited"; return 1; }
	plan_out || return 1
	expect_eq "$(models_map build)" "$(plan_actions)" || return 1
	for m in $MODELS; do
		plan_reasons "$m" | grep -Eq '^relation moved \(analytics\.[a-z_]+ -> analytics_moved\.[a-z_]+\)$' ||
			{ echo "$m: no 'relation moved'"; plan_reasons "$m"; return 1; }
		expect_no_line "code changed" "$(plan_reasons "$m")" || return 1
		expect_no_line "config changed" "$(plan_reasons "$m")" || return 1
	done
	expect_exit 0 sluice run || return 1
	expect_eq "$(models_map success)" "$(rr_statuses)" || return 1
	expect_eq 3 "$(psql_q "select count(*) from analytics_moved.down")"
}
ok "the dev output's schema edited in profiles.yml: relation moved, neither code nor config changed" t_moved

done_testing
