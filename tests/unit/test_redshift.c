/*
 * test_redshift.c: the Redshift dialect (engine/dialect-redshift.c) and
 * profile (connectors/registry.c, the IAM keys of connectors/odbc.c).
 * Golden tests pin the exact text of every statement shape, since no
 * Redshift cluster is at hand to run them on; the plans materialize.c
 * builds with the dialect are checked whole. The run lock, the one part
 * whose logic (not only its text) matters, runs through the warehouse
 * state backend against the harness's PostgreSQL, with a view standing in
 * for Redshift's stv_sessions (SLUICE_TEST_PG*, see tests/harness/pg.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../connectors/connector.h"
#include "../../connectors/odbc.h"
#include "../../connectors/postgres.h"
#include "../../engine/dialect.h"
#include "../../engine/materialize.h"
#include "../../engine/state.h"

static struct arena arena;
static const struct dialect *rs;

/* The whole statement, and never a TRUNCATE (it would commit the run's transaction). */
static void expect_sql(struct buf *b, const char *want)
{
	assert_string_equal(b->s, want);
	assert_null(strstr(b->s, "TRUNCATE"));
	buf_reset(b);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static struct val str(const char *s)
{
	return val_str(arena_strdup(&arena, s));
}

/* A config dict from key, value pairs (values already built) ending with NULL. */
static struct val config(const char *key, ...)
{
	struct val d = val_dict_new();
	va_list ap;

	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *))
		val_dict_set(&arena, &d, key, va_arg(ap, struct val));
	va_end(ap);
	return d;
}

static struct val list2(const char *a, const char *b)
{
	struct val l = val_list_new();

	val_list_push(&arena, &l, str(a));
	val_list_push(&arena, &l, str(b));
	return l;
}

static int setup(void **unused)
{
	(void)unused;
	arena_init(&arena);
	rs = dialect_find("redshift");
	return rs ? 0 : -1;
}

static int teardown(void **unused)
{
	(void)unused;
	arena_release(&arena);
	return 0;
}

/* ---- the dialect's identity and the slots it leaves empty ---- */

static void test_found_with_null_slots(void **unused)
{
	const struct dialect *sl = dialect_find("redshift-serverless");

	(void)unused;
	assert_string_equal(rs->name, "redshift");
	assert_non_null(sl);
	assert_string_equal(sl->name, "redshift-serverless");
	/* Late-binding views: swapping a table never re-creates the views above it. */
	assert_null(rs->dependents_query);
	assert_null(rs->recreate_dependent);
	assert_null(rs->search_path_qualify);
	/* Stages go through S3, not the client. */
	assert_null(rs->copy_out_csv);
	assert_null(rs->copy_in_csv);
	assert_null(rs->trigger_versions_query);
	assert_null(rs->instrument_sql);
	assert_null(rs->checksum_query);
	assert_string_equal(rs->begin, "BEGIN");
	assert_string_equal(rs->commit, "COMMIT");
	assert_string_equal(rs->rollback, "ROLLBACK");
	assert_string_equal(rs->unload_count_query, "SELECT pg_last_unload_count()");
	assert_string_equal(rs->copy_count_query, "SELECT pg_last_copy_count()");
	/* PostgreSQL keeps its behaviour: no config check, no session tag. */
	assert_null(dialect_find("postgres")->check_config);
	assert_null(dialect_find("postgres")->session_tag);
}

/* ---- tables, views, renames ---- */

static void test_create_table_plain(void **unused)
{
	struct buf b = BUF_INIT;
	struct val none = val_dict_new();

	(void)unused;
	rs->create_table_as(&b, "\"a\".\"t\"", "select 1", &none);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" AS (\nselect 1\n)");
	buf_release(&b);
}

static void test_create_table_dist_sort(void **unused)
{
	struct buf b = BUF_INIT;
	struct val c;

	(void)unused;
	c = config("dist", str("customer_id"), "sort", list2("order_date", "id"), NULL);
	rs->create_table_as(&b, "\"a\".\"t\"", "select 1", &c);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" DISTSTYLE KEY DISTKEY (\"customer_id\") "
		       "COMPOUND SORTKEY (\"order_date\", \"id\") AS (\nselect 1\n)");

	c = config("dist", str("EVEN"), NULL);
	rs->create_table_as(&b, "\"a\".\"t\"", "select 1", &c);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" DISTSTYLE EVEN AS (\nselect 1\n)");

	c = config("dist", str("all"), "sort", str("ts"), "sort_type", str("interleaved"), "backup", val_bool(0), NULL);
	rs->create_table_as(&b, "\"a\".\"t\"", "select 1", &c);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" BACKUP NO DISTSTYLE ALL INTERLEAVED SORTKEY (\"ts\") AS (\nselect 1\n)");

	c = config("diststyle", str("auto"), NULL);
	rs->create_table_as(&b, "\"a\".\"t\"", "select 1", &c);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" DISTSTYLE AUTO AS (\nselect 1\n)");

	/* Identifiers are quoted, quotes doubled. */
	c = config("diststyle", str("key"), "dist", str("we\"ird"), "sort", str("Mixed Case"), NULL);
	rs->create_table_as(&b, "\"a\".\"t\"", "select 1", &c);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" DISTSTYLE KEY DISTKEY (\"we\"\"ird\") "
		       "COMPOUND SORTKEY (\"Mixed Case\") AS (\nselect 1\n)");
	buf_release(&b);
}

static void test_views_bind_late(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->create_view(&b, "\"a\".\"v\"", "select * from \"a\".\"t\"");
	expect_sql(&b, "CREATE VIEW \"a\".\"v\" AS (\nselect * from \"a\".\"t\"\n) WITH NO SCHEMA BINDING");
	/* Redshift renames views with ALTER TABLE. */
	rs->rename(&b, "\"a\".\"v__sluice_new\"", REL_VIEW, "v");
	expect_sql(&b, "ALTER TABLE \"a\".\"v__sluice_new\" RENAME TO \"v\"");
	rs->rename(&b, "\"a\".\"t\"", REL_TABLE, "t__sluice_old");
	expect_sql(&b, "ALTER TABLE \"a\".\"t\" RENAME TO \"t__sluice_old\"");
	rs->drop(&b, "\"a\".\"v\"", REL_VIEW, 0);
	expect_sql(&b, "DROP VIEW IF EXISTS \"a\".\"v\"");
	rs->drop(&b, "\"a\".\"t\"", REL_TABLE, 1);
	expect_sql(&b, "DROP TABLE IF EXISTS \"a\".\"t\" CASCADE");
	rs->create_schema(&b, "my \"schema\"");
	expect_sql(&b, "CREATE SCHEMA IF NOT EXISTS \"my \"\"schema\"\"\"");
	rs->delete_all(&b, "\"a\".\"t\"");
	expect_sql(&b, "DELETE FROM \"a\".\"t\"");
	buf_release(&b);
}

/* ---- incremental strategies ---- */

static const char *const cols3[] = { "\"id\"", "\"v\"", "\"w\"" };
static const char *const key1[] = { "\"id\"" };
static const char *const key2[] = { "\"id\"", "\"day\"" };

static void test_temp_table_has_no_on_commit(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->create_temp_as(&b, "t__sluice_tmp", "select 1");
	expect_sql(&b, "DROP TABLE IF EXISTS \"t__sluice_tmp\";\n"
		       "CREATE TEMP TABLE \"t__sluice_tmp\" AS (\nselect 1\n)");
	buf_release(&b);
}

static void test_append_and_delete_insert(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->insert_from(&b, "\"a\".\"t\"", "t__sluice_tmp", cols3, 3);
	expect_sql(&b, "INSERT INTO \"a\".\"t\" (\"id\", \"v\", \"w\")\n"
		       "SELECT \"id\", \"v\", \"w\" FROM \"t__sluice_tmp\";\n"
		       "DROP TABLE \"t__sluice_tmp\"");
	rs->delete_matching(&b, "\"a\".\"t\"", "t__sluice_tmp", key2, 2);
	expect_sql(&b, "DELETE FROM \"a\".\"t\"\n"
		       "USING \"t__sluice_tmp\"\n"
		       "WHERE \"a\".\"t\".\"id\" = \"t__sluice_tmp\".\"id\" AND \"a\".\"t\".\"day\" = \"t__sluice_tmp\".\"day\"");
	buf_release(&b);
}

static void test_merge_reads_deduplicated_copy(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->merge(&b, "\"a\".\"t\"", "t__sluice_tmp", key1, 1, cols3, 3);
	expect_sql(&b,
		   "CREATE TEMP TABLE \"t__sluice_tmp_dedup\" (LIKE \"a\".\"t\");\n"
		   "INSERT INTO \"t__sluice_tmp_dedup\" (\"id\", \"v\", \"w\")\n"
		   "SELECT \"id\", \"v\", \"w\" FROM (\n"
		   "  SELECT \"id\", \"v\", \"w\", ROW_NUMBER() OVER (PARTITION BY \"id\" ORDER BY \"id\") AS sluice_row\n"
		   "  FROM \"t__sluice_tmp\"\n"
		   ") AS sluice_ranked\n"
		   "WHERE sluice_row = 1;\n"
		   "MERGE INTO \"a\".\"t\"\n"
		   "USING \"t__sluice_tmp_dedup\" AS sluice_source\n"
		   "ON \"a\".\"t\".\"id\" = sluice_source.\"id\"\n"
		   "WHEN MATCHED THEN UPDATE SET \"v\" = sluice_source.\"v\", \"w\" = sluice_source.\"w\"\n"
		   "WHEN NOT MATCHED THEN INSERT (\"id\", \"v\", \"w\")\n"
		   "VALUES (sluice_source.\"id\", sluice_source.\"v\", sluice_source.\"w\");\n"
		   "DROP TABLE \"t__sluice_tmp_dedup\";\n"
		   "DROP TABLE \"t__sluice_tmp\"");
	buf_release(&b);
}

static void test_merge_keys_only_and_long_names(void **unused)
{
	struct buf b = BUF_INIT;
	char tmp[64];
	const char *end;

	(void)unused;
	/* Redshift wants a WHEN MATCHED clause even with nothing but keys. */
	rs->merge(&b, "\"a\".\"t\"", "t__sluice_tmp", key2, 2, key2, 2);
	assert_contains(b.s, "ON \"a\".\"t\".\"id\" = sluice_source.\"id\" AND \"a\".\"t\".\"day\" = sluice_source.\"day\"\n"
			     "WHEN MATCHED THEN UPDATE SET \"id\" = sluice_source.\"id\"\n"
			     "WHEN NOT MATCHED THEN INSERT (\"id\", \"day\")\n");
	assert_contains(b.s, "PARTITION BY \"id\", \"day\" ORDER BY \"id\", \"day\"");
	buf_reset(&b);
	/* A 63-byte scratch table name still gives a dedup name within 63 bytes. */
	memset(tmp, 'x', 63);
	tmp[63] = '\0';
	rs->merge(&b, "\"a\".\"t\"", tmp, key1, 1, cols3, 3);
	assert_true(!strncmp(b.s, "CREATE TEMP TABLE \"", 19));
	end = strchr(b.s + 19, '"');
	assert_int_equal(end - (b.s + 19), 63);
	assert_true(!strncmp(end - 6, "_dedup", 6));
	buf_release(&b);
}

/* ---- catalog queries ---- */

static void test_catalog_queries(void **unused)
{
	struct buf b = BUF_INIT;
	const char *schemas[] = { "analytics", "o'brien" };

	(void)unused;
	/* Redshift literals treat backslashes as escapes: doubled too. */
	rs->columns_query(&b, "we\\ird", "it's");
	expect_sql(&b, "SELECT a.attname FROM pg_attribute a\n"
		       "JOIN pg_class c ON c.oid = a.attrelid\n"
		       "JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		       "WHERE n.nspname = 'we\\\\ird' AND c.relname = 'it''s' AND a.attnum > 0 AND NOT a.attisdropped\n"
		       "ORDER BY a.attnum");
	rs->relations_query(&b, schemas, 2);
	expect_sql(&b, "SELECT trim(n.nspname), trim(c.relname),\n"
		       "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' ELSE 'other' END\n"
		       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		       "WHERE c.relkind IN ('r', 'v') AND n.nspname IN ('analytics', 'o''brien')");
	rs->relations_query(&b, schemas, 0);
	assert_contains(b.s, "n.nspname IN (NULL)");
	buf_release(&b);
}

/* ---- change detection ---- */

static void test_stats_query_provisioned(void **unused)
{
	struct buf b = BUF_INIT;
	const char *schemas[] = { "raw", "raw" }, *idents[] = { "orders", "o'brien" };

	(void)unused;
	rs->source_stats_query(&b, schemas, idents, 2);
	expect_sql(&b,
		   "WITH w AS (\n"
		   "  SELECT c.oid::integer AS table_id, trim(n.nspname) AS schema_name, trim(c.relname) AS table_name,\n"
		   "    c.relkind\n"
		   "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		   "  WHERE c.relkind IN ('r', 'v') AND ((n.nspname = 'raw' AND c.relname = 'orders')\n"
		   "    OR (n.nspname = 'raw' AND c.relname = 'o''brien'))\n"
		   "),\n"
		   "writes AS (\n"
		   "  SELECT l.tbl AS table_id, max(l.inserted) AS inserted, max(l.deleted) AS deleted\n"
		   "  FROM (SELECT query, tbl, endtime AS inserted, NULL::timestamp AS deleted FROM stl_insert\n"
		   "        UNION ALL\n"
		   "        SELECT query, tbl, NULL::timestamp, endtime FROM stl_delete) l\n"
		   "  JOIN stl_query q ON q.query = l.query\n"
		   "  WHERE l.tbl IN (SELECT table_id FROM w) AND q.label NOT LIKE 'sluice run=%'\n"
		   "  GROUP BY l.tbl\n"
		   ")\n"
		   "SELECT w.schema_name, w.table_name,\n"
		   "  CASE WHEN w.relkind = 'r' THEN 'stats:' || w.table_id::varchar\n"
		   "    || ':' || coalesce(t.tbl_rows, 0)::bigint::varchar\n"
		   "    || ':' || coalesce(to_char(x.inserted, 'YYYY-MM-DD HH24:MI:SS.US'), '')\n"
		   "    || ':' || coalesce(to_char(x.deleted, 'YYYY-MM-DD HH24:MI:SS.US'), '') END\n"
		   "FROM w\n"
		   "LEFT JOIN svv_table_info t ON t.table_id = w.table_id\n"
		   "LEFT JOIN writes x ON x.table_id = w.table_id\n"
		   "UNION ALL\n"
		   "SELECT trim(e.schemaname), trim(e.tablename), NULL\n"
		   "FROM svv_external_tables e\n"
		   "WHERE (e.schemaname = 'raw' AND e.tablename = 'orders')\n"
		   "    OR (e.schemaname = 'raw' AND e.tablename = 'o''brien')");
	buf_release(&b);
}

static void test_stats_query_serverless(void **unused)
{
	const struct dialect *sl = dialect_find("redshift-serverless");
	struct buf b = BUF_INIT;
	const char *schemas[] = { "raw" }, *idents[] = { "orders" };

	(void)unused;
	sl->source_stats_query(&b, schemas, idents, 1);
	/* Serverless has no stl_* logs: the same version, from the SYS views. */
	assert_null(strstr(b.s, "stl_"));
	assert_contains(b.s, "writes AS (\n"
			     "  SELECT d.table_id,\n"
			     "    max(CASE WHEN trim(d.step_name) = 'insert' THEN d.end_time END) AS inserted,\n"
			     "    max(CASE WHEN trim(d.step_name) = 'delete' THEN d.end_time END) AS deleted\n"
			     "  FROM sys_query_detail d JOIN sys_query_history h ON h.query_id = d.query_id\n"
			     "  WHERE trim(d.step_name) IN ('insert', 'delete') AND d.table_id IN (SELECT table_id FROM w)\n"
			     "    AND h.query_label NOT LIKE 'sluice run=%'\n"
			     "  GROUP BY d.table_id\n"
			     ")\n");
	assert_contains(b.s, "LEFT JOIN svv_table_info t ON t.table_id = w.table_id\n");
	buf_release(&b);
}

/* sluice cache ls: a table's size from svv_table_info, for exactly the pairs asked (no VALUES lists on Redshift). */
static void test_relation_size_query(void **unused)
{
	const struct dialect *d = dialect_find("redshift");
	struct buf b = BUF_INIT;
	const char *schemas[] = { "prod", "prod" }, *idents[] = { "orders", "o'brien" };

	(void)unused;
	d->relation_size_query(&b, schemas, idents, 2);
	assert_contains(b.s, "LEFT JOIN svv_table_info t ON t.table_id = c.oid\n");
	assert_contains(b.s, "AND ((n.nspname = 'prod' AND c.relname = 'orders')\n"
			     "    OR (n.nspname = 'prod' AND c.relname = 'o''brien'))");
	buf_reset(&b);
	d->relation_size_query(&b, schemas, idents, 0);
	assert_contains(b.s, "AND (false)");
	buf_release(&b);
}

static void test_value_queries(void **unused)
{
	struct buf b = BUF_INIT;
	const char *schemas[] = { "raw", "raw" }, *idents[] = { "orders", "log" };
	const char *sqls[] = { "select max(batch) from raw.load_log;\n", "select 1" };

	(void)unused;
	rs->source_value_query(&b, schemas, idents, sqls, 2);
	expect_sql(&b, "SELECT 0 AS i, 't' AS present, (\nselect max(batch) from raw.load_log\n)::varchar(65535) AS v\n"
		       "UNION ALL\n"
		       "SELECT 1 AS i, 't' AS present, (\nselect 1\n)::varchar(65535) AS v\n"
		       "ORDER BY 1");
	rs->loaded_at_query(&b, schemas, idents, sqls, 0);
	expect_sql(&b, "SELECT 0 AS i, 'f' AS present, NULL::varchar AS v WHERE false");
	{
		const char *exprs[] = { "_loaded_at" };
		rs->loaded_at_query(&b, schemas, idents, exprs, 1);
		expect_sql(&b, "SELECT 0 AS i, 't' AS present, (SELECT max(_loaded_at) FROM \"raw\".\"orders\")"
			       "::varchar(65535) AS v\nORDER BY 1");
	}
	buf_release(&b);
}

/* ---- the run lock: statements ---- */

static void test_lock_statements(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->try_lock(&b, -42);
	expect_sql(&b, "CREATE TABLE IF NOT EXISTS sluice_meta.session_locks (lock_key bigint, pid integer);\n"
		       "BEGIN;\n"
		       "LOCK sluice_meta.session_locks;\n"
		       "DELETE FROM sluice_meta.session_locks\n"
		       "WHERE lock_key = -42 AND pid NOT IN (SELECT process FROM stv_sessions);\n"
		       "INSERT INTO sluice_meta.session_locks (lock_key, pid)\n"
		       "SELECT -42, pg_backend_pid()\n"
		       "WHERE NOT EXISTS (SELECT 1 FROM sluice_meta.session_locks WHERE lock_key = -42);\n"
		       "COMMIT;\n"
		       "SELECT count(*) > 0 FROM sluice_meta.session_locks WHERE lock_key = -42 AND pid = pg_backend_pid()");
	rs->unlock(&b, -42);
	expect_sql(&b, "DELETE FROM sluice_meta.session_locks WHERE lock_key = -42 AND pid = pg_backend_pid()");
	buf_release(&b);
}

static void test_session_tag(void **unused)
{
	struct buf tag = BUF_INIT, b = BUF_INIT;

	(void)unused;
	dialect_session_tag_text(&tag, "9f2e-run", "o'brien");
	assert_string_equal(tag.s, "sluice run=9f2e-run user=o'brien");
	rs->session_tag(&b, tag.s);
	expect_sql(&b, "SET query_group TO 'sluice run=9f2e-run user=o''brien'");
	buf_release(&tag);
	buf_release(&b);
}

/* ---- stages ---- */

/*
 * Every literal the engine writes (state records, watermarks, accepted
 * values) goes through dialect_literal: Redshift reads a backslash as an
 * escape, so a JSON state record's "\\" must reach it doubled.
 */
static void test_literals_double_backslashes(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	dialect_literal(rs, &b, "C:\\dir 'x'");
	expect_sql(&b, "'C:\\\\dir ''x'''");
	dialect_literal(dialect_find("postgres"), &b, "C:\\dir 'x'");
	expect_sql(&b, "'C:\\dir ''x'''");
	buf_release(&b);
}

/* Data tests: no FILTER clause, and timestamps from getdate(). */
static void test_data_test_shapes(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->count_if(&b, "\"id\" IS NULL");
	expect_sql(&b, "coalesce(sum(CASE WHEN \"id\" IS NULL THEN 1 ELSE 0 END), 0)");
	rs->now_minus(&b, 86400);
	expect_sql(&b, "dateadd(second, -86400, getdate())");
	rs->failures_query(&b, "select 1", 20);
	expect_sql(&b, "SELECT count(*) OVER () AS __sluice_failures, sluice_failing.*\nFROM (\nselect 1\n) AS sluice_failing\nLIMIT 20");
	buf_release(&b);
}

static void test_unload(void **unused)
{
	struct buf b = BUF_INIT;
	struct val c;

	(void)unused;
	c = config("gzip", val_bool(1), "max_file_size", val_num(256), NULL);
	rs->unload(&b, "select 'it''s' as a, 'C:\\dir' as p from t;\n", "s3://bkt/stage/orders/",
		   "arn:aws:iam::123456789012:role/unload", &c);
	expect_sql(&b, "UNLOAD ('select ''it''''s'' as a, ''C:\\\\dir'' as p from t')\n"
		       "TO 's3://bkt/stage/orders/'\n"
		       "IAM_ROLE 'arn:aws:iam::123456789012:role/unload'\n"
		       "FORMAT CSV\n"
		       "MANIFEST VERBOSE\n"
		       "GZIP\n"
		       "MAXFILESIZE 256 MB\n"
		       "ALLOWOVERWRITE");
	/* Without a role: the cluster's default one. No LIMIT is ever added. */
	c = config("max_file_size", str("1.5 gb"), "allow_overwrite", val_bool(0), NULL);
	rs->unload(&b, "select * from t", "s3://bkt/p/", NULL, &c);
	assert_null(strstr(b.s, "LIMIT"));
	expect_sql(&b, "UNLOAD ('select * from t')\n"
		       "TO 's3://bkt/p/'\n"
		       "IAM_ROLE default\n"
		       "FORMAT CSV\n"
		       "MANIFEST VERBOSE\n"
		       "MAXFILESIZE 1.5 GB");
	buf_release(&b);
}

static void test_copy_from_manifest(void **unused)
{
	struct buf b = BUF_INIT;

	(void)unused;
	rs->copy_from_manifest(&b, "\"a\".\"t\"", "s3://bkt/stage/orders/manifest", "arn:aws:iam::1:role/r", 1);
	expect_sql(&b, "COPY \"a\".\"t\"\n"
		       "FROM 's3://bkt/stage/orders/manifest'\n"
		       "IAM_ROLE 'arn:aws:iam::1:role/r'\n"
		       "MANIFEST\n"
		       "FORMAT CSV\n"
		       "EMPTYASNULL\n"
		       "GZIP");
	rs->copy_from_manifest(&b, "\"a\".\"t\"", "s3://b/m", NULL, 0);
	expect_sql(&b, "COPY \"a\".\"t\"\nFROM 's3://b/m'\nIAM_ROLE default\nMANIFEST\nFORMAT CSV\nEMPTYASNULL");
	buf_release(&b);
}

static void test_stage_tables(void **unused)
{
	struct buf setup_sql = BUF_INIT, query = BUF_INIT, cleanup = BUF_INIT, b = BUF_INIT;
	const char *names[] = { "id", "na\"me" }, *types[] = { "integer", "character varying(20)" };

	(void)unused;
	rs->describe(&setup_sql, &query, &cleanup, "select 1 as id;");
	expect_sql(&setup_sql, "DROP TABLE IF EXISTS \"__sluice_describe\";\n"
			       "CREATE TEMP TABLE \"__sluice_describe\" AS SELECT * FROM (\n"
			       "select 1 as id\n"
			       ") AS sluice_describe WHERE 1 = 0");
	expect_sql(&query, "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a\n"
			   "JOIN pg_class c ON c.oid = a.attrelid\n"
			   "WHERE c.relname = '__sluice_describe' AND pg_table_is_visible(c.oid)\n"
			   "  AND a.attnum > 0 AND NOT a.attisdropped\n"
			   "ORDER BY a.attnum");
	expect_sql(&cleanup, "DROP TABLE IF EXISTS \"__sluice_describe\"");
	rs->create_table_like(&b, "\"a\".\"new\"", "\"a\".\"old\"");
	expect_sql(&b, "CREATE TABLE \"a\".\"new\" (LIKE \"a\".\"old\")");
	rs->create_table_columns(&b, "\"a\".\"t\"", names, types, 2);
	expect_sql(&b, "CREATE TABLE \"a\".\"t\" (\"id\" integer, \"na\"\"me\" character varying(20))");
	buf_release(&setup_sql);
	buf_release(&query);
	buf_release(&cleanup);
	buf_release(&b);
}

/* ---- config checks ---- */

static void expect_config_error(struct val c, const char *key, const char *msg)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *got = NULL;

	assert_int_equal(rs->check_config(&c, &got, &err), SLUICE_EUSAGE);
	assert_non_null(got);
	assert_string_equal(got, key);
	assert_string_equal(err.msg, msg);
}

static void test_check_config(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *key = "x";
	struct val c, many = val_list_new();
	int i;

	(void)unused;
	c = config("dist", str("customer_id"), "diststyle", str("KEY"), "sort", list2("a", "b"),
		   "sort_type", str("interleaved"), "backup", val_bool(0), "gzip", str("true"),
		   "max_file_size", str("6.2 GB"), NULL);
	assert_int_equal(rs->check_config(&c, &key, &err), 0);
	assert_null(key);

	expect_config_error(config("dist", val_num(5), NULL), "dist",
			    "dist: '5' is not valid on Redshift (a column name, or all, even or auto)");
	expect_config_error(config("diststyle", str("fast"), NULL), "diststyle",
			    "diststyle: 'fast' is not valid on Redshift (all, even, auto or key)");
	expect_config_error(config("diststyle", str("key"), NULL), "diststyle",
			    "diststyle: key needs dist: <column> (the distribution key)");
	expect_config_error(config("diststyle", str("even"), "dist", str("customer_id"), NULL), "diststyle",
			    "dist: customer_id names a distribution key column, which means diststyle key, not even");
	expect_config_error(config("diststyle", str("even"), "dist", str("all"), NULL), "diststyle",
			    "dist: all and diststyle: even disagree: set one of them");
	expect_config_error(config("sort", val_list_new(), NULL), "sort",
			    "sort: '[]' is not valid on Redshift (a column name or a list of them)");
	expect_config_error(config("sort_type", str("compound"), NULL), "sort_type",
			    "sort_type: compound needs sort: <column or list of columns>");
	for (i = 0; i < 9; i++)
		val_list_push(&arena, &many, str("c"));
	expect_config_error(config("sort", many, "sort_type", str("interleaved"), NULL), "sort_type",
			    "sort_type: interleaved takes at most 8 columns, sort: has 9");
	expect_config_error(config("backup", str("maybe"), NULL), "backup",
			    "backup: 'maybe' is not valid on Redshift (true or false)");
	expect_config_error(config("max_file_size", val_num(2), NULL), "max_file_size",
			    "max_file_size: '2' is not valid on Redshift (a size from 5 MB to 6.2 GB, such as 256, "
			    "'256 MB' or '1 GB')");
	expect_config_error(config("max_file_size", str("7 GB"), NULL), "max_file_size",
			    "max_file_size: '7 GB' is not valid on Redshift (a size from 5 MB to 6.2 GB, such as 256, "
			    "'256 MB' or '1 GB')");
	expect_config_error(config("max_file_size", str("100 KB"), NULL), "max_file_size",
			    "max_file_size: '100 KB' is not valid on Redshift (a size from 5 MB to 6.2 GB, such as 256, "
			    "'256 MB' or '1 GB')");
}

/* ---- whole plans (materialize.c) with the Redshift dialect ---- */

static struct model orders_model = { .name = "orders", .path = "models/orders.sql" };

static struct node orders_node(enum materialization mat, struct val cfg)
{
	struct node n;

	memset(&n, 0, sizeof(n));
	n.type = NODE_MODEL;
	n.unique_id = "model.proj.orders";
	n.name = "orders";
	n.model = &orders_model;
	n.config = cfg;
	n.config_pos = val_dict_new();
	n.mat = mat;
	n.mat_name = mat == MAT_VIEW ? "view" : mat == MAT_TABLE ? "table" : "incremental";
	n.schema = "analytics";
	n.identifier = "orders";
	n.relation = "\"analytics\".\"orders\"";
	n.display = "analytics.orders";
	n.connection = "default";
	return n;
}

static void plan_text(const struct node *n, enum rel_kind existing, int incremental, struct buf *out)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct plan_input in = { 0 };
	struct plan p;

	in.node = n;
	in.dialect = rs;
	in.sql = "select 1 as id";
	in.existing = existing;
	in.incremental = incremental;
	in.audit = "/* sluice run=r node=model.proj.orders user=u */\n";
	if (plan_build(&in, &p, &err))
		fail_msg("plan_build: %s", err.msg);
	plan_write(&p, out);
	plan_release(&p);
}

static void test_plan_table_swap(void **unused)
{
	struct node n = orders_node(MAT_TABLE, config("dist", str("customer_id"), NULL));
	struct buf b = BUF_INIT;

	(void)unused;
	plan_text(&n, REL_TABLE, 0, &b);
	/* No capture and no re-creation of dependent views, no CASCADE: views bind late. */
	expect_sql(&b, "BEGIN;\n\n"
		       "CREATE TABLE \"analytics\".\"orders__sluice_new\" DISTSTYLE KEY DISTKEY (\"customer_id\") AS (\n"
		       "select 1 as id\n);\n\n"
		       "ALTER TABLE \"analytics\".\"orders\" RENAME TO \"orders__sluice_old\";\n\n"
		       "ALTER TABLE \"analytics\".\"orders__sluice_new\" RENAME TO \"orders\";\n\n"
		       "DROP TABLE IF EXISTS \"analytics\".\"orders__sluice_old\";\n\n"
		       "COMMIT;\n\n");
	buf_release(&b);
}

static void test_plan_view_replacing_table(void **unused)
{
	struct node n = orders_node(MAT_VIEW, val_dict_new());
	struct buf b = BUF_INIT;

	(void)unused;
	plan_text(&n, REL_TABLE, 0, &b);
	expect_sql(&b, "BEGIN;\n\n"
		       "CREATE VIEW \"analytics\".\"orders__sluice_new\" AS (\nselect 1 as id\n) WITH NO SCHEMA BINDING;\n\n"
		       "ALTER TABLE \"analytics\".\"orders\" RENAME TO \"orders__sluice_old\";\n\n"
		       "ALTER TABLE \"analytics\".\"orders__sluice_new\" RENAME TO \"orders\";\n\n"
		       "DROP TABLE IF EXISTS \"analytics\".\"orders__sluice_old\";\n\n"
		       "COMMIT;\n\n");
	buf_release(&b);
}

static void test_plan_incremental_merge(void **unused)
{
	struct node n = orders_node(MAT_INCREMENTAL, config("unique_key", str("id"), NULL));
	struct buf b = BUF_INIT;

	(void)unused;
	plan_text(&n, REL_TABLE, 1, &b);
	assert_true(!strncmp(b.s, "BEGIN;\n\n"
				  "DROP TABLE IF EXISTS \"orders__sluice_tmp\";\n"
				  "CREATE TEMP TABLE \"orders__sluice_tmp\" AS (\nselect 1 as id\n);\n\n"
				  "CREATE TEMP TABLE \"orders__sluice_tmp_dedup\" (LIKE \"analytics\".\"orders\");\n",
			     strlen("BEGIN;\n\nDROP TABLE IF EXISTS \"orders__sluice_tmp\";\n"
				    "CREATE TEMP TABLE \"orders__sluice_tmp\" AS (\nselect 1 as id\n);\n\n"
				    "CREATE TEMP TABLE \"orders__sluice_tmp_dedup\" (LIKE \"analytics\".\"orders\");\n")));
	assert_contains(b.s, "MERGE INTO \"analytics\".\"orders\"\nUSING \"orders__sluice_tmp_dedup\" AS sluice_source\n"
			     "ON \"analytics\".\"orders\".\"id\" = sluice_source.\"id\"\n");
	assert_contains(b.s, "DROP TABLE \"orders__sluice_tmp\";\n\nCOMMIT;\n\n");
	assert_null(strstr(b.s, "TRUNCATE"));
	assert_null(strstr(b.s, "ON COMMIT"));
	buf_release(&b);
}

static void test_plan_bad_config_points_at_config_call(void **unused)
{
	struct node n = orders_node(MAT_TABLE, config("sort_type", str("zigzag"), "sort", str("id"), NULL));
	struct sluice_err err = SLUICE_ERR_INIT;
	struct plan_input in = { 0 };
	struct val pos = val_list_new();
	struct plan p;

	(void)unused;
	val_list_push(&arena, &pos, val_num(3));
	val_list_push(&arena, &pos, val_num(4));
	val_dict_set(&arena, &n.config_pos, "sort_type", pos);
	in.node = &n;
	in.dialect = rs;
	in.sql = "select 1";
	assert_int_equal(plan_build(&in, &p, &err), SLUICE_EUSAGE);
	assert_string_equal(err.msg, "models/orders.sql:3:4: sort_type: 'zigzag' is not valid on Redshift "
				     "(compound or interleaved)");
	plan_release(&p);
}

/* ---- the profile: type redshift ---- */

static struct val rs_settings(void)
{
	return config("type", str("redshift"), "host", str("cluster.example"), "dbname", str("dev"), "user", str("etl"),
		      NULL);
}

static void with(struct val *s, const char *key, struct val v)
{
	val_dict_set(&arena, s, key, v);
}

static struct val iam(const char *cluster, const char *region, const char *db_user)
{
	struct val d = val_dict_new();

	if (cluster)
		with(&d, "cluster_id", str(cluster));
	if (region)
		with(&d, "region", str(region));
	if (db_user)
		with(&d, "db_user", str(db_user));
	return d;
}

static int resolve(const struct val *s, const struct sluice_connector **drv, const char **dialect,
		   struct sluice_err *err)
{
	return connector_resolve(s, drv, dialect, err);
}

static void test_profile_drivers(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const struct sluice_connector *drv;
	const char *dialect;
	struct val s = rs_settings();

	(void)unused;
	with(&s, "password", str("hunter2"));
	assert_int_equal(resolve(&s, &drv, &dialect, &err), 0);
	assert_string_equal(drv->name, "postgres");
	assert_string_equal(dialect, "redshift");
	assert_string_equal(connector_default_port(&s), "5439");

	with(&s, "driver", str("Amazon Redshift ODBC Driver (x64)"));
	with(&s, "dialect", str("redshift-serverless"));
	assert_int_equal(resolve(&s, &drv, &dialect, &err), 0);
	assert_string_equal(drv->name, "odbc");
	assert_non_null(dialect_find(dialect));

	s = config("type", str("postgres"), NULL);
	assert_null(connector_default_port(&s));
}

static void expect_profile_error(struct val s, const char *needle)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const struct sluice_connector *drv;
	const char *dialect;

	assert_int_equal(resolve(&s, &drv, &dialect, &err), SLUICE_EUSAGE);
	assert_contains(err.msg, needle);
	/* Messages name keys, never values. */
	assert_null(strstr(err.msg, "hunter2"));
	assert_null(strstr(err.msg, "c-prod"));
}

static void test_profile_bad_combinations(void **unused)
{
	struct val s;

	(void)unused;
	s = rs_settings();
	with(&s, "iam", iam("c-prod", "eu-west-1", "etl"));
	expect_profile_error(s, "type redshift: iam authentication needs the Amazon Redshift ODBC driver (driver:); "
				"through libpq sluice cannot get temporary credentials (that takes AWS "
				"GetClusterCredentials), so use password: there");

	with(&s, "driver", str("Amazon Redshift ODBC Driver (x64)"));
	with(&s, "password", str("hunter2"));
	expect_profile_error(s, "type redshift: set password or iam, not both");

	s = rs_settings();
	with(&s, "driver", str("Amazon Redshift ODBC Driver (x64)"));
	with(&s, "iam", iam("c-prod", NULL, "etl"));
	expect_profile_error(s, "type redshift: iam needs cluster_id and region");

	s = rs_settings();
	with(&s, "driver", str("Amazon Redshift ODBC Driver (x64)"));
	with(&s, "iam", str("yes"));
	expect_profile_error(s, "type redshift: iam must be a map: {cluster_id, region, db_user}");

	s = config("type", str("redshift"), "driver", str("x"), NULL);
	with(&s, "iam", iam("c-prod", "eu-west-1", NULL));
	expect_profile_error(s, "type redshift: iam needs db_user (or user:)");

	s = rs_settings();
	with(&s, "driver", str("x"));
	{
		struct val i = iam("c-prod", "eu-west-1", "etl");
		with(&i, "role_arn", str("arn:aws:iam::1:role/r"));
		with(&s, "iam", i);
	}
	expect_profile_error(s, "type redshift: unknown key iam.role_arn (known: cluster_id, region, db_user, profile)");

	s = rs_settings();
	with(&s, "iam_role", str("sluice-unload"));
	expect_profile_error(s, "type redshift: iam_role must be the ARN of an IAM role");
}

static void test_odbc_iam_keys(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf cs = BUF_INIT;
	struct val s = rs_settings(), i = iam("c-prod", "eu-west-1", NULL);

	(void)unused;
	/* Without iam: nothing. */
	assert_int_equal(odbc_iam_keys("default", &s, &cs, &err), 0);
	assert_string_equal(cs.s, "");
	with(&i, "profile", str("prod"));
	with(&s, "iam", i);
	odbc_cs_add(&cs, "Driver", "Amazon Redshift ODBC Driver (x64)");
	assert_int_equal(odbc_iam_keys("default", &s, &cs, &err), 0);
	/* db_user defaults to user: */
	assert_string_equal(cs.s, "Driver=Amazon Redshift ODBC Driver (x64);IAM=1;ClusterID=c-prod;Region=eu-west-1;"
				  "DbUser=etl;Profile=prod");
	buf_reset(&cs);
	buf_puts(&cs, "Driver=x;Region=us-east-1");
	assert_int_equal(odbc_iam_keys("default", &s, &cs, &err), SLUICE_EUSAGE);
	assert_string_equal(err.msg, "connection 'default' (odbc): Region is set both in connection_string and as "
				     "iam.region:");
	buf_release(&cs);
}

/* ---- the run lock, run: the warehouse state backend on PostgreSQL ---- */

static const char *pg_env[4];
static char pg_missing[1024];
static char pg_db[64];
static char project_dir[] = "/tmp";
static struct val pg_db_settings;
static pid_t child_pid;

static struct val pg_settings(const char *dbname)
{
	return config("type", str("postgres"), "host", str(pg_env[0]), "port", str(pg_env[1]), "user", str(pg_env[2]),
		      "password", str(pg_env[3]), "dbname", str(dbname), NULL);
}

/* Redshift's dialect over a PostgreSQL session: the lock's SQL is plain enough for both. */
static int rs_state_connect(void *ud, struct sluice_conn **out, const struct dialect **d, struct sluice_err *err)
{
	struct sluice_conn_params p = { "default", ud, project_dir, "sluice/test_redshift" };

	*d = dialect_find("redshift");
	return pg_connector.connect(&p, out, err);
}

static struct state_opts rs_opts(const char *project, const char *target)
{
	struct state_opts o = { 0 };

	o.spec = "warehouse";
	o.project_dir = project_dir;
	o.project = project;
	o.target = target;
	o.user = "alice";
	o.invocation_id = "7a1d-run";
	o.connect = rs_state_connect;
	o.connect_ud = &pg_db_settings;
	return o;
}

static struct state *open_rs(const char *project, const char *target)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = rs_opts(project, target);
	struct state *st = NULL;

	if (pg_missing[0])
		fail_msg("%s", pg_missing);
	if (state_open(&st, &o, &err))
		fail_msg("state_open: %s", err.msg);
	return st;
}

static void lock_ok(struct state *st, int wait)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (state_lock(st, wait, &err))
		fail_msg("state_lock: %s", err.msg);
}

static void test_lock_conflict_and_release(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st1, *st2, *other;

	(void)unused;
	st1 = open_rs("p_lock", "dev");
	st2 = open_rs("p_lock", "dev");
	other = open_rs("p_lock", "prod");
	lock_ok(st1, -1);
	assert_int_equal(state_lock(st2, -1, &err), SLUICE_ELOCK);
	assert_contains(err.msg, "state is locked by alice");
	/* Another target's lock is another row. */
	lock_ok(other, -1);
	state_close(st1);
	lock_ok(st2, -1);
	state_close(st2);
	state_close(other);
}

static void test_lock_killed_holder(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st;
	int fds[2];
	char c;

	(void)unused;
	if (pg_missing[0])
		fail_msg("%s", pg_missing);
	assert_int_equal(pipe(fds), 0);
	child_pid = fork();
	assert_true(child_pid >= 0);
	if (child_pid == 0) {
		struct state_opts o = rs_opts("p_kill", "dev");
		struct sluice_err cerr = SLUICE_ERR_INIT;
		struct state *cs = NULL;
		if (state_open(&cs, &o, &cerr) || state_lock(cs, -1, &cerr) || write(fds[1], "L", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1)
		fail_msg("the child could not take the lock");
	close(fds[0]);
	st = open_rs("p_kill", "dev");
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	/* Killed with -9: its session ends, stv_sessions forgets it, the row is stale. */
	kill(child_pid, SIGKILL);
	waitpid(child_pid, NULL, 0);
	child_pid = 0;
	err = (struct sluice_err)SLUICE_ERR_INIT;
	if (state_lock(st, 5, &err))
		fail_msg("the killed holder's lock did not come free: %s", err.msg);
	state_close(st);
}

static void admin_exec(const char *dbname, const char *sql, struct sluice_err *err)
{
	struct val s = pg_settings(dbname);
	struct sluice_conn_params p = { "admin", &s, project_dir, "sluice/test_redshift" };
	struct sluice_conn *c = NULL;

	if (pg_connector.connect(&p, &c, err))
		return;
	c->drv->exec(c, sql, NULL, err);
	c->drv->close(c);
}

static int pg_setup(void **unused)
{
	static const char *names[4] = { "SLUICE_TEST_PGHOST", "SLUICE_TEST_PGPORT", "SLUICE_TEST_PGUSER",
					"SLUICE_TEST_PGPASSWORD" };
	struct sluice_err err = SLUICE_ERR_INIT;
	char sql[256];
	int i;

	setup(unused);
	for (i = 0; i < 4; i++) {
		pg_env[i] = getenv(names[i]);
		if (!pg_env[i] || !*pg_env[i]) {
			snprintf(pg_missing, sizeof(pg_missing),
				 "%s is not set: the lock tests need the harness's PostgreSQL "
				 "(set -a; eval \"$(sh tests/harness/pg.sh start DIR)\"; set +a)", names[i]);
			return 0;
		}
	}
	snprintf(pg_db, sizeof(pg_db), "sluice_redshift_test_%ld", (long)getpid());
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_db);
	admin_exec("postgres", sql, &err);
	/* What Redshift's stv_sessions says: the sessions that are still there. */
	if (!err.code)
		admin_exec(pg_db, "CREATE VIEW public.stv_sessions AS "
				  "SELECT backend_start AS starttime, pid AS process FROM pg_stat_activity", &err);
	if (err.code)
		snprintf(pg_missing, sizeof(pg_missing), "cannot prepare database %s: %.200s", pg_db, err.msg);
	pg_db_settings = pg_settings(pg_db);
	return 0;
}

static int pg_teardown(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char sql[256];

	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
	}
	if (pg_db[0] && !pg_missing[0]) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_db);
		admin_exec("postgres", sql, &err);
	}
	connectors_shutdown();
	return teardown(unused);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_with_null_slots),
		cmocka_unit_test(test_create_table_plain),
		cmocka_unit_test(test_create_table_dist_sort),
		cmocka_unit_test(test_views_bind_late),
		cmocka_unit_test(test_temp_table_has_no_on_commit),
		cmocka_unit_test(test_append_and_delete_insert),
		cmocka_unit_test(test_merge_reads_deduplicated_copy),
		cmocka_unit_test(test_merge_keys_only_and_long_names),
		cmocka_unit_test(test_catalog_queries),
		cmocka_unit_test(test_stats_query_provisioned),
		cmocka_unit_test(test_stats_query_serverless),
		cmocka_unit_test(test_relation_size_query),
		cmocka_unit_test(test_value_queries),
		cmocka_unit_test(test_lock_statements),
		cmocka_unit_test(test_session_tag),
		cmocka_unit_test(test_literals_double_backslashes),
		cmocka_unit_test(test_data_test_shapes),
		cmocka_unit_test(test_unload),
		cmocka_unit_test(test_copy_from_manifest),
		cmocka_unit_test(test_stage_tables),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_plan_table_swap),
		cmocka_unit_test(test_plan_view_replacing_table),
		cmocka_unit_test(test_plan_incremental_merge),
		cmocka_unit_test(test_plan_bad_config_points_at_config_call),
		cmocka_unit_test(test_profile_drivers),
		cmocka_unit_test(test_profile_bad_combinations),
		cmocka_unit_test(test_odbc_iam_keys),
		cmocka_unit_test(test_lock_conflict_and_release),
		cmocka_unit_test(test_lock_killed_holder),
	};

	return cmocka_run_group_tests(tests, pg_setup, pg_teardown);
}
