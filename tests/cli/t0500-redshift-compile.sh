#!/usr/bin/env bash
# t0500: `sluice compile` against a Redshift output needs no cluster: it
# writes the Redshift statements to target/run (late-binding views, no
# TRUNCATE, DISTKEY/SORTKEY from model config), and bad Redshift settings
# stop it with a message that names the place and never the password.
. "$(dirname "$0")/lib.sh"

new_project rs
# Nothing listens there: compile must not try.
rs_profile() {
	cat >profiles.yml <<YML
proj:
  target: rs
  outputs:
    rs:
      type: redshift
      host: 127.0.0.1
      port: 1
      user: etl
      password: "s3cr3t-do-not-print"
      dbname: dev
      schema: analytics
      iam_role: "arn:aws:iam::123456789012:role/sluice-stage"
$1
YML
}
rs_profile ""
model orders "{{ config(materialized='table', dist='customer_id', sort=['order_date', 'id']) }}
select 1 as id, 2 as customer_id, current_date as order_date"
model events "{{ config(materialized='incremental', unique_key='id', dist='even', sort='ts', sort_type='interleaved') }}
select 1 as id, getdate() as ts"
model summary "select customer_id, count(*) as n from {{ ref('orders') }} group by 1"

ok "compile against an unreachable Redshift output exits 0" expect_exit 0 sluice compile

t_dist_sort() {
	expect_grep 'CREATE TABLE "analytics"\."orders__sluice_new" DISTSTYLE KEY DISTKEY \("customer_id"\) COMPOUND SORTKEY \("order_date", "id"\) AS \($' \
		target/run/models/orders.sql || return 1
	expect_grep 'CREATE TABLE "analytics"\."events__sluice_new" DISTSTYLE EVEN INTERLEAVED SORTKEY \("ts"\) AS \($' \
		target/run/models/events.sql
}
ok "target/run: DISTSTYLE/DISTKEY and COMPOUND/INTERLEAVED SORTKEY from model config" t_dist_sort

t_late_binding() {
	f=target/run/models/summary.sql
	expect_grep 'CREATE VIEW "analytics"\."summary__sluice_new" AS \($' "$f" || return 1
	expect_grep '^\) WITH NO SCHEMA BINDING;$' "$f" || return 1
	# Redshift renames views with ALTER TABLE, and nothing re-creates dependents.
	expect_grep 'ALTER TABLE "analytics"\."summary__sluice_new" RENAME TO "summary";' "$f" || return 1
	expect_no_grep 'ALTER VIEW|capture the views' "$f"
}
ok "target/run: views are late-binding (WITH NO SCHEMA BINDING), renamed with ALTER TABLE" t_late_binding

t_never() {
	for f in target/run/models/*.sql; do
		expect_no_grep 'TRUNCATE' "$f" || return 1
		expect_no_grep 'CREATE OR REPLACE' "$f" || return 1
		expect_no_grep 'ON COMMIT' "$f" || return 1
	done
}
ok "target/run: no TRUNCATE, no CREATE OR REPLACE, no ON COMMIT anywhere" t_never

t_same_project_postgres() {
	sed -e 's/type: redshift/type: postgres/' -e '/iam_role/d' profiles.yml >p.tmp && mv p.tmp profiles.yml || return 1
	expect_exit 0 sluice compile || return 1
	expect_no_grep 'DISTKEY|SORTKEY|SCHEMA BINDING' target/run/models/orders.sql || return 1
	expect_no_grep 'SCHEMA BINDING' target/run/models/summary.sql || return 1
	rs_profile ""
	expect_exit 0 sluice compile
}
ok "the same project compiles unchanged for PostgreSQL, without Redshift's clauses" t_same_project_postgres

t_serverless() {
	rs_profile "      dialect: redshift-serverless"
	expect_exit 0 sluice compile || return 1
	expect_grep 'WITH NO SCHEMA BINDING' target/run/models/summary.sql || return 1
	rs_profile ""
}
ok "dialect: redshift-serverless compiles the same statements" t_serverless

t_bad_sort_type() {
	model bad "{{ config(materialized='table', sort='id', sort_type='zigzag') }}
select 1 as id"
	expect_exit 2 sluice compile || return 1
	rm models/bad.sql
	expect_grep "models/bad\.sql:1:4: sort_type: 'zigzag' is not valid on Redshift \(compound or interleaved\)" "$T_DIR/out"
}
ok "a bad sort_type stops compile with exit 2 at the config() call" t_bad_sort_type

t_bad_dist() {
	model bad "{{ config(materialized='table', dist='customer_id', diststyle='even') }}
select 1 as customer_id"
	expect_exit 2 sluice compile || return 1
	rm models/bad.sql
	expect_grep "models/bad\.sql:1:4: dist: customer_id names a distribution key column, which means diststyle key, not even" "$T_DIR/out"
}
ok "dist: <column> with diststyle: even is refused" t_bad_dist

t_iam_without_driver() {
	rs_profile "      iam: {cluster_id: prod-cluster, region: eu-west-1, db_user: etl}"
	sed -i '/password:/d' profiles.yml || return 1
	expect_exit 2 sluice compile || return 1
	rs_profile ""
	expect_grep "profiles\.yml: connection 'default': type redshift: iam authentication needs the Amazon Redshift ODBC driver \(driver:\)" "$T_DIR/out" || return 1
	expect_grep "GetClusterCredentials" "$T_DIR/out"
}
ok "iam: without driver: is refused: libpq cannot fetch IAM credentials" t_iam_without_driver

t_password_and_iam() {
	rs_profile "      driver: Amazon Redshift ODBC Driver (x64)
      iam: {cluster_id: prod-cluster, region: eu-west-1, db_user: etl}"
	expect_exit 2 sluice compile || return 1
	rs_profile ""
	expect_grep "type redshift: set password or iam, not both" "$T_DIR/out" || return 1
	expect_no_grep "s3cr3t" "$T_DIR/out"
}
ok "password: and iam: together are refused, and the password is not printed" t_password_and_iam

t_bad_iam_role() {
	rs_profile ""
	sed -i 's|iam_role: .*|iam_role: sluice-stage|' profiles.yml || return 1
	expect_exit 2 sluice compile || return 1
	rs_profile ""
	expect_grep "iam_role must be the ARN of an IAM role" "$T_DIR/out"
}
ok "iam_role: must be an ARN" t_bad_iam_role

done_testing
