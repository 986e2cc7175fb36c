#!/usr/bin/env bash
# t0130: with no profiles.yml anywhere, sluice runs its own PostgreSQL
# (docs/embedded.md): started for a command and stopped after it, or by
# hand with `sluice embedded start|status|env|stop|remove`.
. "$(dirname "$0")/lib.sh"
skip_all_libpq "no profiles.yml: the embedded server is reached through libpq whatever the pass"

export HOME=$T_DIR
unset SLUICE_PROFILES_DIR
P=$T_DIR/emb
mkdir -p "$P/models"
cd "$P" || exit 1
printf 'name: proj\nprofile: proj\n' >sluice.yml
model t "{{ config(materialized='table') }}
select 42 as answer"

# Bounded: a hung server start must not hang the suite.
esluice() { timeout 120 "$SLUICE_BIN" "$@"; }

embedded_cleanup() {
	cd "$P" 2>/dev/null || return
	timeout 60 "$SLUICE_BIN" embedded stop >/dev/null 2>&1
	# The socket directory the status showed, when sluice leaves it behind.
	[ -s "$T_DIR/sockdir" ] && case $(cat "$T_DIR/sockdir") in
		/tmp/sluice-*) rmdir "$(cat "$T_DIR/sockdir")" 2>/dev/null ;;
	esac
	if [ -L .sluice/pg ]; then
		d=$(dirname "$(readlink -f .sluice/pg)")
		case $d in /var/tmp/sluice-embedded-*) rm -rf "$d" ;; esac
	fi
}
at_exit embedded_cleanup

# in_embedded SQL: run SQL with psql on the embedded server, database sluice.
in_embedded() {
	(eval "$("$SLUICE_BIN" embedded env)" && psql -X -q -A -t -v ON_ERROR_STOP=1 -d sluice -c "$1")
}
status_is_running() { "$SLUICE_BIN" embedded status 2>&1 | grep -q running; }

ok "sluice run with no profiles.yml exits 0 (embedded server)" expect_exit 0 esluice run

t_cluster() {
	[ -e .sluice/pg ] || { echo ".sluice/pg does not exist"; ls -la .sluice; return 1; }
	[ -f .sluice/pg/PG_VERSION ] || { echo ".sluice/pg holds no cluster"; ls -la .sluice/pg/; return 1; }
}
ok "the run created the cluster under .sluice/pg" t_cluster

t_stopped_after_run() {
	expect_exit 1 "$SLUICE_BIN" embedded status || return 1
	expect_grep "stopped" "$T_DIR/out" || return 1
	expect_no_grep "running" "$T_DIR/out" || return 1
	[ ! -e .sluice/pg/postmaster.pid ] || { echo "postmaster.pid still there"; return 1; }
}
ok "the server is stopped again after the run (status says stopped)" t_stopped_after_run

# The server restarts with every command: that alone must not make
# anything look changed, or the default setup would never reuse a thing.
t_reuse_across_restarts() {
	expect_exit 0 esluice run || return 1
	expect_grep "0 ok, 0 error, 0 skipped, [1-9][0-9]* reused" "$T_DIR/out" || return 1
	expect_eq "reused" "$(jq -r '[.results[].status] | unique | join(",")' target/run_results.json)"
}
ok "a second run (server restarted on demand) reuses every model" t_reuse_across_restarts

ok "sluice embedded start exits 0" expect_exit 0 esluice embedded start

t_status_running() {
	expect_exit 0 "$SLUICE_BIN" embedded status || return 1
	expect_grep "pid" "$T_DIR/out" || return 1
	expect_grep "port" "$T_DIR/out" || return 1
	expect_grep "socket" "$T_DIR/out" || return 1
	grep -oE 'socket[ :=]+/[^ ,]+' "$T_DIR/out" | sed 's/^socket[ :=]*//' >"$T_DIR/sockdir" || return 1
	pid=$(grep -oE 'pid[ :=]+[0-9]+' "$T_DIR/out" | grep -oE '[0-9]+$') || return 1
	[ -n "$pid" ] && kill -0 "$pid" || { echo "no live pid in the status"; return 1; }
}
ok "status prints a live pid, the port and the socket" t_status_running

t_env() {
	env_out=$("$SLUICE_BIN" embedded env) || return 1
	for v in PGHOST PGPORT PGUSER; do
		echo "$env_out" | grep -q "$v=" || { echo "embedded env does not set $v: $env_out"; return 1; }
	done
}
ok "embedded env sets PGHOST, PGPORT and PGUSER" t_env

ok "psql through embedded env sees the table sluice built in database sluice, schema public" \
	expect_eq 42 "$(in_embedded "select answer from public.t")"

t_run_keeps_manual_server() {
	pid1=$("$SLUICE_BIN" embedded status | grep -oE 'pid[ :=]+[0-9]+') || return 1
	model t "{{ config(materialized='table') }}
select 43 as answer"
	expect_exit 0 esluice run || return 1
	status_is_running || { echo "the server stopped after the run"; return 1; }
	expect_eq "$pid1" "$("$SLUICE_BIN" embedded status | grep -oE 'pid[ :=]+[0-9]+')" || return 1
	expect_eq 43 "$(in_embedded "select answer from public.t")"
}
ok "a run while the server was started by hand uses it and leaves it running" t_run_keeps_manual_server

t_stop() {
	expect_exit 0 esluice embedded stop || return 1
	expect_exit 1 "$SLUICE_BIN" embedded status || return 1
	expect_grep "stopped" "$T_DIR/out" || return 1
	if in_embedded "select 1" >/dev/null 2>&1; then
		echo "still reachable after stop"
		return 1
	fi
}
ok "sluice embedded stop stops it" t_stop

t_restart_keeps_data() {
	expect_exit 0 esluice embedded start || return 1
	expect_eq 43 "$(in_embedded "select answer from public.t")" || return 1
	expect_exit 0 esluice embedded stop
}
ok "the data survives a stop and start" t_restart_keeps_data

# remove: the cluster is gone, also the one in /var/tmp that a project in
# a directory the server user cannot enter (root's, a mktemp one) links to
cluster_dir() {
	if [ -L .sluice/pg ]; then dirname "$(readlink -f .sluice/pg)"; else echo "$P/.sluice/pg"; fi
}
t_remove() {
	expect_exit 0 esluice embedded start || return 1
	data=$(cluster_dir) || return 1
	[ -d "$data" ] || { echo "no cluster at $data"; return 1; }
	expect_exit 0 esluice embedded remove || return 1
	expect_grep "^embedded PostgreSQL removed$" "$T_DIR/out" || return 1
	[ ! -e "$data" ] && [ ! -e .sluice/pg ] || { echo "$data or .sluice/pg is still there"; return 1; }
	expect_exit 1 esluice embedded status || return 1
	expect_grep "^not initialised$" "$T_DIR/out"
}
ok "sluice embedded remove stops the server and deletes its cluster, in /var/tmp too" t_remove
ok "after remove, a run starts over on a new cluster" expect_exit 0 esluice run

done_testing
