#!/usr/bin/env bash
# t1030: the deployment: docker-compose.yml checked by `docker-compose
# config`, the Dockerfile by a lint of our own (no Docker engine runs
# here), and the same four services without containers: a PostgreSQL as
# the lake (a second cluster, started here), the harness's PostgreSQL as
# the warehouse, s3rver for the stage, and `sluice schedule` running the
# demo project's nightly schedule with deploy/profiles.yml, on a fast
# fake clock.
. "$(dirname "$0")/lib.sh"

skip_all_libpq "deploy/profiles.yml connects through libpq (type: postgres)"
top=$(cd "$(dirname "$SLUICE_BIN")" && pwd)

t_compose_config() {
	command -v docker-compose >/dev/null || { echo "docker-compose is not installed (Debian package docker-compose)"; return 1; }
	(cd "$top" && docker-compose --env-file .env.example -f docker-compose.yml config) >"$T_DIR/compose.yml" 2>"$T_DIR/compose.err" ||
		{ cat "$T_DIR/compose.err"; return 1; }
	expect_eq "lake s3 sluice warehouse" \
		"$(cd "$top" && docker-compose --env-file .env.example config --services 2>/dev/null | sort | paste -sd' ' -)" || return 1
	# sluice waits for the three others; its credentials came from the env file
	expect_grep '^    - --project-dir$' "$T_DIR/compose.yml" || return 1
	expect_grep '^      WAREHOUSE_PASSWORD: change-me-warehouse$' "$T_DIR/compose.yml" || return 1
	expect_eq "lake s3 warehouse" \
		"$(sed -n '/^  sluice:/,/^  [a-z]/p' "$T_DIR/compose.yml" | sed -n '/depends_on:/,/^    [a-z]/p' |
			grep -oE '^      [a-z0-9]+:' | tr -d ' :' | sort | paste -sd' ' -)"
}
ok "docker-compose config accepts docker-compose.yml: four services, sluice after the other three" t_compose_config

t_no_secrets() {
	# every credential in docker-compose.yml is a ${VARIABLE}; only .env.example holds values
	expect_no_grep '(PASSWORD|SECRET[A-Z_]*|USER): +[^$ ]' "$top/docker-compose.yml" || return 1
	expect_grep '^\.env$' "$top/.gitignore" || return 1
	expect_grep '^WAREHOUSE_PASSWORD=' "$top/.env.example" || return 1
	# (a tree exported without .git, as a release is, has only the .gitignore line)
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(cd "$top" && git check-ignore -q .env) || { echo ".env is not ignored by git"; return 1; }
	fi
	expect_no_grep '(password|secret_access_key): +"?[^"{ ]' "$top/deploy/profiles.yml"
}
ok "credentials come from .env: none in docker-compose.yml or deploy/profiles.yml" t_no_secrets

# The Dockerfile lint: stages, what the runtime holds, who it runs as, its entry point.
t_dockerfile() {
	f=$top/Dockerfile
	expect_eq "build runtime" "$(sed -nE 's/^FROM debian:12(-slim)? AS ([a-z]+)$/\2/p' "$f" | paste -sd' ' -)" || return 1
	expect_eq 2 "$(grep -c '^FROM ' "$f")" || return 1
	# the last stage: the runtime
	sed -n '/^FROM .* AS runtime$/,$p' "$f" >"$T_DIR/runtime" || return 1
	for pkg in libpq5 odbc-postgresql unixodbc ca-certificates tzdata libcurl4 libjansson4 libyaml-0-2 libxxhash0 libzstd1; do
		grep -qE "(^|[[:space:]])$pkg([[:space:]]|\$)" "$T_DIR/runtime" || { echo "the runtime stage lacks $pkg"; return 1; }
	done
	expect_no_grep '(build-essential|-dev( |$))' "$T_DIR/runtime" || return 1
	expect_grep '^COPY --from=build /src/sluice /usr/local/bin/sluice$' "$T_DIR/runtime" || return 1
	user=$(sed -n 's/^USER //p' "$T_DIR/runtime" | tail -n 1) || return 1
	case $user in
	'' | root | 0 | 0:*) echo "the runtime stage runs as '$user', not a user without privileges"; return 1 ;;
	esac
	expect_grep "useradd .*$user" "$T_DIR/runtime" || return 1
	expect_eq '["sluice", "schedule"]' "$(sed -n 's/^ENTRYPOINT //p' "$T_DIR/runtime")" || return 1
	# everything it copies from the repository exists
	for src in $(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$f"); do
		[ -e "$top/$src" ] || { echo "COPY $src: no such file in the repository"; return 1; }
	done
	expect_no_grep '^(ENV|ARG) .*(PASSWORD|SECRET)' "$f"
}
ok "the Dockerfile: two Debian 12 stages, libpq/psqlODBC/CA certificates at runtime, a non-root USER, ENTRYPOINT sluice schedule" t_dockerfile

# ---- the four services without containers -----------------------------------
if [ -n "${SLUICE_TEST_S3_UNAVAILABLE:-}" ]; then
	T_COUNT=$((T_COUNT + 1))
	echo "ok $T_COUNT - the four services run the nightly schedule # SKIP s3rver is not available: $SLUICE_TEST_S3_UNAVAILABLE"
	done_testing
	exit $?
fi
: "${SLUICE_TEST_S3_ENDPOINT:?run the suite with make test (it starts s3rver)}"

# The lake: a PostgreSQL cluster of its own (pg.sh runs it as an
# unprivileged user, who must be able to reach its directory).
chmod go+x "$T_DIR" || exit 1
sh "$top/tests/harness/pg.sh" start "$T_DIR/lakepg" >"$T_DIR/lake.env" 2>"$T_DIR/lake.err" ||
	{ echo "Bail out! cannot start the lake's PostgreSQL: $(cat "$T_DIR/lake.err")"; exit 1; }
at_exit "sh '$top/tests/harness/pg.sh' stop '$T_DIR/lakepg' >/dev/null 2>&1"
LAKE_PORT=$(sed -n 's/^SLUICE_TEST_PGPORT=//p' "$T_DIR/lake.env")
PGPORT=$LAKE_PORT psql -X -q -d postgres -c "create database lake" || { echo "Bail out! create database lake"; exit 1; }
PGPORT=$LAKE_PORT psql -X -q -v ON_ERROR_STOP=1 -d lake -f "$top/demo/lake.sql" >/dev/null ||
	{ echo "Bail out! demo/lake.sql failed"; exit 1; }

D=$T_DIR/project
mkdir -p "$D"
cp -r "$top/sluice.yml" "$top/models" "$top/data-tests" "$D"/ || exit 1
export SLUICE_PROFILES_DIR=$top/deploy SLUICE_USER=ops
export WAREHOUSE_HOST=$SLUICE_TEST_PGHOST WAREHOUSE_PORT=$SLUICE_TEST_PGPORT WAREHOUSE_DB=$T_DB
export WAREHOUSE_USER=$SLUICE_TEST_PGUSER WAREHOUSE_PASSWORD=$SLUICE_TEST_PGPASSWORD
export LAKE_HOST=127.0.0.1 LAKE_PORT LAKE_DB=lake LAKE_USER=$SLUICE_TEST_PGUSER LAKE_PASSWORD=$SLUICE_TEST_PGPASSWORD
export S3_ENDPOINT=$SLUICE_TEST_S3_ENDPOINT S3_BUCKET=$SLUICE_TEST_S3_BUCKET S3_REGION=$SLUICE_TEST_S3_REGION
export S3_ACCESS_KEY_ID=$SLUICE_TEST_S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY=$SLUICE_TEST_S3_SECRET_ACCESS_KEY
unset OPS_WEBHOOK

t_topology() {
	# 01:59:30 in Athens; a fake second is a tenth of a real one
	SLUICE_NOW=2026-06-01T22:59:30Z SLUICE_TIME_SCALE=10 bg_start nightly "$SLUICE_BIN" schedule \
		--project-dir "$D" --log-format json || return 1
	wait_until 180 grep -q '"event":"done"' "$T_DIR/nightly.log" || { cat "$T_DIR/nightly.log"; return 1; }
	kill -TERM "$BG_PID" || return 1
	expect_eq 0 "$(bg_wait nightly 60)" || { cat "$T_DIR/nightly.log"; return 1; }
	# every stdout line is JSON: the scheduler's and the run's
	grep -v '^sluice: ' "$T_DIR/nightly.log" | t_noted jq -e . >/dev/null || { cat "$T_DIR/nightly.log"; return 1; }
	expect_eq "nightly 2026-06-01T23:00:00Z" \
		"$(t_noted jq -r 'select(.event == "trigger") | "\(.schedule) \(.message | sub("trigger time "; ""))"' "$T_DIR/nightly.log")" || return 1
	expect_eq "success after 1 attempt" \
		"$(t_noted jq -r 'select(.event == "done") | .message | sub(" in .*"; "")' "$T_DIR/nightly.log")" || return 1
	cd "$D" || return 1
	expect_eq "nightly ops" "$(rr '"\(.metadata.schedule) \(.metadata.user)"')" || return 1
	# the rows crossed from the lake through the S3 stage into the warehouse
	want=$(PGPORT=$LAKE_PORT psql_db lake "select count(*) from lake.patients") || return 1
	expect_positive "$want" "lake patients" || return 1
	expect_eq "$want" "$(psql_q "select count(*) from analytics_marts.dim_patients")" || return 1
	expect_eq 0 "$(rr '[.results[] | select(.status != "success" and .status != "pass" and .status != "warn")] | length')"
}
ok "lake, warehouse, S3 and sluice schedule: the nightly schedule loads the lake into the warehouse" t_topology

# The lake's server restarts (pg_ctl restart) in the middle of a run: a
# transient failure, retried. A small project of its own on the lake.
R=$T_DIR/restart
mkdir -p "$R/models"
cat >"$R/sluice.yml" <<'YML'
name: restart
profile: restart
schedules:
  - {name: lakeside, cron: "@daily", retries: 2, retry-delay: 2s}
YML
cat >"$R/profiles.yml" <<YML
restart:
  target: lake
  outputs:
    lake:
      type: postgres
      host: 127.0.0.1
      port: $LAKE_PORT
      user: "$SLUICE_TEST_PGUSER"
      password: "{{ env_var('LAKE_PASSWORD') }}"
      dbname: lake
      schema: scratch
YML
printf '%s\n' "{{ config(materialized='table') }}" "select 1 as id from pg_sleep(3)" >"$R/models/slow.sql"

t_restart() {
	bg_start lakeside "$SLUICE_BIN" schedule --project-dir "$R" --profiles-dir "$R" --once lakeside || return 1
	wait_until 30 grep -q 'START table scratch.slow' "$T_DIR/lakeside.log" || { cat "$T_DIR/lakeside.log"; return 1; }
	sh "$top/tests/harness/pg.sh" restart "$T_DIR/lakepg" 2>"$T_DIR/restart.err" || { cat "$T_DIR/restart.err"; return 1; }
	expect_eq 0 "$(bg_wait lakeside 90)" || { cat "$T_DIR/lakeside.log"; return 1; }
	expect_grep 'retry +lakeside: attempt 1 failed with a transient error; attempt 2 in 2s: .*terminat' \
		"$T_DIR/lakeside.log" || return 1
	expect_grep 'done +lakeside: success after 2 attempts' "$T_DIR/lakeside.log" || return 1
	expect_eq 1 "$(PGPORT=$LAKE_PORT psql_db lake "select count(*) from scratch.slow")"
}
ok "the lake's server restarted mid-run: the run is retried and succeeds" t_restart

done_testing
