#!/usr/bin/env bash
# t0001: the command line itself: version, help, unknown commands and
# options, and running outside a project.
. "$(dirname "$0")/lib.sh"

t_version() {
	out=$(sluice --version) || return 1
	expect_eq "sluice 0.1.0" "$out"
}
ok "--version prints 'sluice 0.1.0'" t_version

t_help() {
	expect_exit 0 sluice help || return 1
	for c in run compile ls debug embedded; do
		expect_grep "^ +$c +[a-z]" "$T_DIR/out" || return 1
	done
}
ok "help lists run, compile, ls, debug and embedded" t_help

new_project p
model a "select 1 as id"

t_unknown_cmd() {
	expect_exit 2 sluice frobnicate || return 1
	expect_grep "frobnicate" "$T_DIR/out"
}
ok "an unknown command exits 2 and names it" t_unknown_cmd

t_unknown_opt() {
	expect_exit 2 sluice run --frobnicate || return 1
	expect_grep "--frobnicate" "$T_DIR/out" || return 1
	expect_exit 2 sluice ls --no-such-flag=1 || return 1
	expect_grep "--no-such-flag" "$T_DIR/out"
}
ok "an unknown option exits 2 and names it" t_unknown_opt

t_unknown_opt_no_side_effect() {
	expect_exit 2 sluice run --frobnicate || return 1
	expect_eq 0 "$(psql_q "select count(*) from pg_class where relname = 'a'")"
}
ok "a run with an unknown option builds nothing" t_unknown_opt_no_side_effect

mkdir -p "$T_DIR/empty"
cd "$T_DIR/empty" || exit 1

t_no_project() {
	for c in run compile ls debug; do
		expect_exit 2 sluice $c || { echo "(sluice $c)"; return 1; }
		expect_grep "sluice\.yml" "$T_DIR/out" || return 1
	done
}
ok "run/compile/ls/debug outside a project exit 2 mentioning sluice.yml" t_no_project

t_no_project_dir() {
	expect_exit 2 sluice ls --project-dir "$T_DIR/nowhere" || return 1
	expect_grep "nowhere" "$T_DIR/out"
}
ok "--project-dir to a missing directory exits 2 and names it" t_no_project_dir

t_project_dir() {
	expect_exit 0 sluice ls --project-dir "$T_DIR/p" --output name || return 1
	expect_eq "a" "$(cat "$T_DIR/out")"
}
ok "--project-dir runs a project from elsewhere" t_project_dir

done_testing
