/*
 * dialect-postgres.c: the SQL PostgreSQL needs for each materialization
 * step. Views bind to tables by OID here, so swapping a table in means
 * re-pointing the views that depend on it (dependents_query/replace_view).
 * Also the catalog and statistics queries change detection batches, and
 * the triggers of change_detection: trigger.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "dialect.h"
#include "util/xalloc.h"

static void pg_create_schema(struct buf *b, const char *schema)
{
	buf_puts(b, "CREATE SCHEMA IF NOT EXISTS ");
	dialect_quote_ident(b, schema);
}

static void pg_create_table_as(struct buf *b, const char *rel, const char *sql, const struct val *config)
{
	(void)config;
	buf_printf(b, "CREATE TABLE %s AS (\n%s\n)", rel, sql);
}

static void pg_create_view(struct buf *b, const char *rel, const char *sql)
{
	buf_printf(b, "CREATE VIEW %s AS (\n%s\n)", rel, sql);
}

static void pg_create_temp_as(struct buf *b, const char *name, const char *sql)
{
	buf_puts(b, "CREATE TEMPORARY TABLE ");
	dialect_quote_ident(b, name);
	buf_printf(b, " ON COMMIT DROP AS (\n%s\n)", sql);
}

static const char *kind_word(enum rel_kind kind)
{
	return kind == REL_VIEW ? "VIEW" : "TABLE";
}

static void pg_rename(struct buf *b, const char *rel, enum rel_kind kind, const char *new_ident)
{
	buf_printf(b, "ALTER %s %s RENAME TO ", kind_word(kind), rel);
	dialect_quote_ident(b, new_ident);
}

static void pg_drop(struct buf *b, const char *rel, enum rel_kind kind, int cascade)
{
	buf_printf(b, "DROP %s IF EXISTS %s%s", kind_word(kind), rel, cascade ? " CASCADE" : "");
}

static void pg_dependents_query(struct buf *b, const char *rel)
{
	buf_puts(b, "WITH RECURSIVE deps(oid, depth) AS (\n"
		 "  SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid\n"
		 "  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass\n"
		 "    AND d.refobjid = ");
	dialect_quote_literal(b, rel);
	buf_puts(b, "::regclass AND r.ev_class <> d.refobjid\n"
		 "  UNION\n"
		 "  SELECT r.ev_class, deps.depth + 1 FROM deps\n"
		 "  JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass\n"
		 "    AND d.refclassid = 'pg_class'::regclass\n"
		 "  JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> d.refobjid\n"
		 ")\n"
		 "SELECT n.nspname, c.relname, c.relkind::text, pg_get_viewdef(c.oid)\n"
		 "FROM (SELECT oid, max(depth) AS depth FROM deps GROUP BY oid) x\n"
		 "JOIN pg_class c ON c.oid = x.oid JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "WHERE c.relkind IN ('v', 'm')\n"
		 "ORDER BY x.depth, 1, 2");
}

static void pg_recreate_dependent(struct buf *b, const char *rel, const char *relkind, const char *definition)
{
	buf_printf(b, "CREATE %sVIEW %s AS %s", !strcmp(relkind, "m") ? "MATERIALIZED " : "", rel, definition);
}

static void pg_drop_dependent(struct buf *b, const char *rel, const char *relkind)
{
	buf_printf(b, "DROP %sVIEW IF EXISTS %s CASCADE", !strcmp(relkind, "m") ? "MATERIALIZED " : "", rel);
}

/*
 * A session publishes its counts when it goes idle, unless it did less
 * than 1 s before: then 10 s later, or at exit, which ends before it
 * leaves pg_stat_activity (docs/change-detection.md). So the sessions to
 * wait for went idle less than 10 s before as_of. Sessions that went idle
 * after it committed nothing the run has to see; sluice's own sessions
 * are left out: another run's writes count once it has ended.
 */
static void pg_pending_stats_query(struct buf *b, const char *as_of)
{
	const char *t = as_of ? as_of : "clock_timestamp()";

	buf_printf(b, "SELECT pid, extract(epoch FROM state_change + interval '10200 milliseconds' - clock_timestamp()), "
		   "(%s)::text\n"
		   "FROM pg_stat_activity\n"
		   "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()\n"
		   "  AND state = 'idle' AND coalesce(application_name, '') NOT LIKE 'sluice/%%'\n"
		   "  AND state_change <= (%s)::timestamptz AND state_change > (%s)::timestamptz - interval '10200 milliseconds'",
		   t, t, t);
}

/*
 * The tightest of three limits: the server's (less the slots it reserves),
 * the role's and the database's; a superuser passes the last two.
 */
static void pg_connection_budget_query(struct buf *b)
{
	buf_puts(b, "WITH a AS (SELECT usename, datname FROM pg_stat_activity WHERE backend_type = 'client backend'),\n"
		 " me AS (SELECT rolconnlimit, rolsuper FROM pg_roles WHERE rolname = current_user)\n"
		 "SELECT room, lim FROM (\n"
		 " SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int\n"
		 "  - coalesce(current_setting('reserved_connections', true)::int, 0) - (SELECT count(*) FROM a) AS room,\n"
		 "  current_setting('max_connections')::int AS lim\n"
		 " UNION ALL SELECT rolconnlimit - (SELECT count(*) FROM a WHERE usename = current_user), rolconnlimit\n"
		 "  FROM me WHERE rolconnlimit >= 0 AND NOT rolsuper\n"
		 " UNION ALL SELECT d.datconnlimit - (SELECT count(*) FROM a WHERE a.datname = d.datname), d.datconnlimit\n"
		 "  FROM pg_database d, me WHERE d.datname = current_database() AND d.datconnlimit >= 0 AND NOT me.rolsuper\n"
		 ") x ORDER BY room LIMIT 1");
}

static void pg_sessions_named_query(struct buf *b, const char *app)
{
	buf_puts(b, "SELECT count(*) FROM pg_stat_activity\n"
		 "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ");
	dialect_quote_literal(b, app);
}

static void pg_delete_matching(struct buf *b, const char *target, const char *tmp,
			       const char *const *keys, size_t nkeys)
{
	buf_printf(b, "DELETE FROM %s AS sluice_target\nUSING ", target);
	dialect_quote_ident(b, tmp);
	buf_puts(b, " AS sluice_source\nWHERE ");
	dialect_key_match(b, "sluice_target", "sluice_source", keys, nkeys);
}

static void pg_merge(struct buf *b, const char *target, const char *tmp, const char *const *keys,
		     size_t nkeys, const char *const *cols, size_t ncols)
{
	size_t i, nset = 0;

	buf_printf(b, "MERGE INTO %s AS sluice_target\nUSING ", target);
	dialect_quote_ident(b, tmp);
	buf_puts(b, " AS sluice_source\nON ");
	dialect_key_match(b, "sluice_target", "sluice_source", keys, nkeys);
	for (i = 0; i < ncols; i++) {
		size_t k;
		int is_key = 0;
		for (k = 0; k < nkeys; k++)
			is_key |= !strcmp(cols[i], keys[k]);
		if (is_key)
			continue;
		buf_printf(b, "%s%s = sluice_source.%s", nset++ ? ", " : "\nWHEN MATCHED THEN UPDATE SET ",
			   cols[i], cols[i]);
	}
	buf_puts(b, "\nWHEN NOT MATCHED THEN INSERT (");
	dialect_col_list(b, "", cols, ncols);
	buf_puts(b, ")\nVALUES (");
	dialect_col_list(b, "sluice_source.", cols, ncols);
	buf_addc(b, ')');
}

static void pg_columns_query(struct buf *b, const char *schema, const char *ident)
{
	buf_puts(b, "SELECT a.attname FROM pg_attribute a\n"
		 "JOIN pg_class c ON c.oid = a.attrelid\n"
		 "JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "WHERE n.nspname = ");
	dialect_quote_literal(b, schema);
	buf_puts(b, " AND c.relname = ");
	dialect_quote_literal(b, ident);
	buf_puts(b, " AND a.attnum > 0 AND NOT a.attisdropped\nORDER BY a.attnum");
}

static void pg_read_columns_query(struct buf *b, const char *rel)
{
	buf_puts(b, "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),\n"
		 "  string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)\n"
		 "FROM pg_attribute WHERE attrelid = ");
	dialect_quote_literal(b, rel);
	buf_puts(b, "::regclass AND attnum > 0 AND NOT attisdropped");
}

/*
 * A SQL function's body is parsed when it is called, and records no
 * dependency on what it reads: the view over it binds late. Its type,
 * SETOF record, never changes, so it is replaced in place when the view
 * is made again; the view's column list says the rest. STABLE lets the
 * planner inline it: the view reads rel as a plain view would.
 */
static void pg_late_view(struct buf *before, struct buf *select, const char *fn, const char *rel, const char *names,
			 const char *typed)
{
	buf_printf(before, "CREATE OR REPLACE FUNCTION %s() RETURNS SETOF record LANGUAGE sql STABLE\n"
		   "AS $sluice$SELECT %s FROM %s$sluice$", fn, names, rel);
	buf_printf(select, "SELECT * FROM %s() AS r(%s)", fn, typed);
}

static void pg_late_view_drop(struct buf *b, const char *fn)
{
	buf_printf(b, "DROP FUNCTION IF EXISTS %s()", fn);
}

static void pg_relations_query(struct buf *b, const char *const *schemas, size_t n)
{
	size_t i;

	buf_puts(b, "SELECT n.nspname, c.relname,\n"
		 "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' ELSE 'other' END\n"
		 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname IN (");
	for (i = 0; i < n; i++) {
		if (i)
			buf_puts(b, ", ");
		dialect_quote_literal(b, schemas[i]);
	}
	if (!n)
		buf_puts(b, "NULL");
	buf_addc(b, ')');
}

static void want_tables(struct buf *b, const char *const *schemas, const char *const *idents, size_t n);

static void pg_relation_size_query(struct buf *b, const char *const *schemas, const char *const *idents, size_t n)
{
	buf_puts(b, "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid) FROM ");
	want_tables(b, schemas, idents, n);
}

static void pg_try_lock(struct buf *b, long long key)
{
	buf_printf(b, "SELECT pg_try_advisory_lock(%lld)", key);
}

static void pg_unlock(struct buf *b, long long key)
{
	buf_printf(b, "SELECT pg_advisory_unlock(%lld)", key);
}

/* ---- change detection (sources.c) ---- */

/* (VALUES ('s', 't'), ...) AS w(schema_name, table_name) */
static void want_tables(struct buf *b, const char *const *schemas, const char *const *idents, size_t n)
{
	size_t i;

	buf_puts(b, "(VALUES ");
	for (i = 0; i < n; i++) {
		buf_puts(b, i ? ", (" : "(");
		dialect_quote_literal(b, schemas[i]);
		buf_puts(b, ", ");
		dialect_quote_literal(b, idents[i]);
		buf_addc(b, ')');
	}
	if (!n)
		buf_puts(b, "(NULL::text, NULL::text)");
	buf_puts(b, ") AS w(schema_name, table_name)\n"
		 "JOIN pg_namespace n ON n.nspname = w.schema_name\n"
		 "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name\n");
}

/*
 * The counters are read through the functions pg_stat_user_tables is
 * made of, and the file node through pg_relation_filenode(): a join to
 * the view or to pg_class inside the per-table subquery would scan the
 * whole catalog once per table. A partitioned table's data lives
 * in its leaf partitions, so their file nodes and counters are summed.
 * Version NULL where counters say nothing: a view or a foreign table has
 * none, and with track_counts off they never move.
 *
 * The server's start time is deliberately not part of the version:
 * since PostgreSQL 15 the counters survive a clean restart (saved at
 * shutdown), and the embedded server restarts with every command, so it
 * would make everything look changed on every run. A crash discards the
 * counters, which sends them back towards zero: that is still a change.
 */
static void pg_source_stats_query(struct buf *b, const char *const *schemas, const char *const *idents,
				  size_t n)
{
	buf_puts(b, "SELECT 1 FROM pg_stat_clear_snapshot() WHERE false;\n"
		 "SELECT n.nspname, c.relname,\n"
		 "  CASE WHEN c.relkind IN ('r', 'p', 'm') AND current_setting('track_counts')::bool\n"
		 "  THEN concat_ws(':', 'stats', t.filenodes, t.ins, t.upd, t.del,\n"
		 "    coalesce((SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database()), '')) END\n"
		 "FROM ");
	want_tables(b, schemas, idents, n);
	buf_puts(b, "CROSS JOIN LATERAL (\n"
		 "  SELECT string_agg(pg_relation_filenode(r.oid)::text, '+' ORDER BY r.oid) AS filenodes,\n"
		 "    sum(pg_stat_get_tuples_inserted(r.oid)) AS ins,\n"
		 "    sum(pg_stat_get_tuples_updated(r.oid)) AS upd,\n"
		 "    sum(pg_stat_get_tuples_deleted(r.oid)) AS del\n"
		 "  FROM (SELECT c.oid\n"
		 "        UNION ALL\n"
		 "        SELECT relid FROM pg_partition_tree(c.oid) WHERE c.relkind = 'p' AND isleaf) r(oid)\n"
		 ") t");
}

#define PG_VERSION_TRIGGER "sluice_version"

/* A trigger enabled only for replication ('R') or disabled does not see ordinary writes. */
static void pg_trigger_versions_query(struct buf *b, const char *const *schemas, const char *const *idents,
				      size_t n)
{
	buf_puts(b, "SELECT n.nspname, c.relname,\n"
		 "  EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = '" PG_VERSION_TRIGGER "'\n"
		 "          AND g.tgenabled IN ('O', 'A')),\n"
		 "  v.version\n"
		 "FROM ");
	want_tables(b, schemas, idents, n);
	buf_puts(b, "LEFT JOIN sluice_meta.source_versions v\n"
		 "  ON v.schema_name = w.schema_name AND v.table_name = w.table_name");
}

/*
 * query_to_xml() runs a query given as text, so the query over table i is
 * only parsed when the table exists: a missing table is reported as such
 * instead of failing the whole batch. Text nodes come back XML-escaped.
 */
static void value_batch(struct buf *b, const char *const *schemas, const char *const *idents,
			const char *const *inner, size_t n)
{
	struct buf rel = BUF_INIT;
	size_t i;

	buf_puts(b, "SELECT w.i, w.rel IS NOT NULL,\n"
		 "  CASE WHEN w.rel IS NOT NULL THEN replace(replace(replace(\n"
		 "    (xpath('/row/v/text()', query_to_xml(w.q, false, true, '')))[1]::text,\n"
		 "    '&lt;', '<'), '&gt;', '>'), '&amp;', '&') END\n"
		 "FROM (VALUES ");
	for (i = 0; i < n; i++) {
		buf_reset(&rel);
		dialect_relation(&rel, schemas[i], idents[i]);
		buf_printf(b, "%s(%zu, to_regclass(", i ? ",\n  " : "", i);
		dialect_quote_literal(b, rel.s);
		buf_puts(b, "), ");
		dialect_quote_literal(b, inner[i]);
		buf_addc(b, ')');
	}
	if (!n)
		buf_puts(b, "(0, NULL::regclass, NULL::text)");
	buf_puts(b, ") AS w(i, rel, q)\nORDER BY w.i");
	buf_release(&rel);
}

/* Wrap per-table SQL in `SELECT (...)::text AS v`, as value_batch expects. */
static void value_query_with(struct buf *b, const char *const *schemas, const char *const *idents,
			     const char *const *args, size_t n, int loaded_at)
{
	struct buf *inner = xcalloc(n ? n : 1, sizeof(*inner));
	const char **texts = xcalloc(n ? n : 1, sizeof(*texts));
	size_t i, len;

	for (i = 0; i < n; i++) {
		buf_init(&inner[i]);
		if (loaded_at) {
			buf_printf(&inner[i], "SELECT (max(%s))::text AS v FROM ", args[i]);
			dialect_relation(&inner[i], schemas[i], idents[i]);
		} else {
			/* a trailing ';' would end the scalar subquery early */
			for (len = strlen(args[i]); len > 0; len--)
				if (args[i][len - 1] != ';' && !isspace((unsigned char)args[i][len - 1]))
					break;
			buf_puts(&inner[i], "SELECT (");
			buf_add(&inner[i], args[i], len);
			buf_puts(&inner[i], "\n)::text AS v");
		}
		texts[i] = inner[i].s;
	}
	value_batch(b, schemas, idents, texts, n);
	for (i = 0; i < n; i++)
		buf_release(&inner[i]);
	free(inner);
	free(texts);
}

static void pg_source_value_query(struct buf *b, const char *const *schemas, const char *const *idents,
				  const char *const *sqls, size_t n)
{
	value_query_with(b, schemas, idents, sqls, n, 0);
}

static void pg_loaded_at_query(struct buf *b, const char *const *schemas, const char *const *idents,
			       const char *const *exprs, size_t n)
{
	value_query_with(b, schemas, idents, exprs, n, 1);
}

/*
 * One counter row per table, bumped once per writing statement. SECURITY
 * DEFINER: writers need no privileges on sluice_meta. ENABLE ALWAYS: the
 * trigger also fires for writes applied by logical replication, which
 * would otherwise leave the table looking unchanged forever. Installing
 * counts as a change: writes made while no trigger was in place (before,
 * or between uninstrument and instrument) were not counted.
 */
static void pg_instrument_sql(struct buf *b, const char *const *schemas, const char *const *idents,
			      size_t n)
{
	size_t i;

	buf_puts(b, "CREATE SCHEMA IF NOT EXISTS sluice_meta;\n"
		 "CREATE TABLE IF NOT EXISTS sluice_meta.source_versions (\n"
		 "  schema_name text NOT NULL,\n"
		 "  table_name text NOT NULL,\n"
		 "  version bigint NOT NULL,\n"
		 "  PRIMARY KEY (schema_name, table_name)\n"
		 ");\n"
		 "CREATE OR REPLACE FUNCTION sluice_meta.bump_version() RETURNS trigger\n"
		 "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $sluice$\n"
		 "BEGIN\n"
		 "  INSERT INTO sluice_meta.source_versions AS v (schema_name, table_name, version)\n"
		 "  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 1)\n"
		 "  ON CONFLICT (schema_name, table_name) DO UPDATE SET version = v.version + 1;\n"
		 "  RETURN NULL;\n"
		 "END\n"
		 "$sluice$;\n");
	for (i = 0; i < n; i++) {
		struct buf rel = BUF_INIT;
		dialect_relation(&rel, schemas[i], idents[i]);
		buf_printf(b, "DROP TRIGGER IF EXISTS " PG_VERSION_TRIGGER " ON %s;\n"
			   "CREATE TRIGGER " PG_VERSION_TRIGGER " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s\n"
			   "  FOR EACH STATEMENT EXECUTE FUNCTION sluice_meta.bump_version();\n"
			   "ALTER TABLE %s ENABLE ALWAYS TRIGGER " PG_VERSION_TRIGGER ";\n"
			   "INSERT INTO sluice_meta.source_versions AS v (schema_name, table_name, version)\n"
			   "VALUES (",
			   rel.s, rel.s, rel.s);
		dialect_quote_literal(b, schemas[i]);
		buf_puts(b, ", ");
		dialect_quote_literal(b, idents[i]);
		buf_puts(b, ", 1)\nON CONFLICT (schema_name, table_name) DO UPDATE SET version = v.version + 1;\n");
		buf_release(&rel);
	}
}

static void pg_uninstrument_sql(struct buf *b, const char *const *schemas, const char *const *idents,
				size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		buf_puts(b, "DROP TRIGGER IF EXISTS " PG_VERSION_TRIGGER " ON ");
		dialect_relation(b, schemas[i], idents[i]);
		buf_puts(b, ";\n");
	}
}

/* TRUNCATE is transactional here, and cheaper than DELETE. */
static void pg_delete_all(struct buf *b, const char *rel)
{
	buf_printf(b, "TRUNCATE %s", rel);
}

static void pg_checksum_query(struct buf *b, const char *rel)
{
	/* count, and a sum of 60-bit row hashes: order-free, constant memory */
	buf_printf(b, "SELECT count(*)::text || ':' || coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text\n"
		   "FROM %s AS t", rel);
}

/* ---- stages ---- */

static void pg_copy_out_csv(struct buf *b, const char *sql)
{
	buf_printf(b, "COPY (\n%s\n) TO STDOUT WITH (FORMAT csv)", sql);
}

static void pg_copy_in_csv(struct buf *b, const char *rel)
{
	buf_printf(b, "COPY %s FROM STDIN WITH (FORMAT csv)", rel);
}

static void pg_copy_out_binary(struct buf *b, const char *sql)
{
	buf_printf(b, "COPY (\n%s\n) TO STDOUT WITH (FORMAT binary)", sql);
}

static void pg_copy_in_binary(struct buf *b, const char *rel)
{
	buf_printf(b, "COPY %s FROM STDIN WITH (FORMAT binary)", rel);
}

/* A temporary view names the query's columns and types without running it. */
static void pg_describe(struct buf *setup, struct buf *query, struct buf *cleanup, const char *sql)
{
	buf_printf(setup, "CREATE OR REPLACE TEMPORARY VIEW \"__sluice_describe\" AS (\n%s\n)", sql);
	buf_puts(query, "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a\n"
		 "WHERE a.attrelid = 'pg_temp.__sluice_describe'::regclass AND a.attnum > 0 AND NOT a.attisdropped\n"
		 "ORDER BY a.attnum");
	buf_puts(cleanup, "DROP VIEW IF EXISTS pg_temp.\"__sluice_describe\"");
}

/* EXPLAIN's JSON: the top node comes first, so the first figures are its own. */
static void pg_estimate_query(struct buf *b, const char *sql)
{
	buf_printf(b, "EXPLAIN (FORMAT JSON)\n%s", sql);
}

static long long json_figure(const char *plan, const char *name)
{
	const char *at = strstr(plan, name);

	return at ? strtoll(at + strlen(name), NULL, 10) : -1;
}

static long long pg_estimate_bytes(const char *plan)
{
	long long rows = json_figure(plan, "\"Plan Rows\":"), width = json_figure(plan, "\"Plan Width\":");

	/* COPY's CSV: the width plus a separator per column, roughly one per 8 bytes */
	return rows < 0 || width <= 0 ? -1 : rows * (width + width / 8 + 1);
}

/* Unload streams: one exported snapshot, TID range scans (PostgreSQL 14) over block ranges. */
static void pg_snapshot_import(struct buf *b, const char *id)
{
	buf_puts(b, "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT ");
	dialect_quote_literal(b, id);
}

static void pg_table_blocks_query(struct buf *b, const char *rel)
{
	/* older servers would scan the whole table once per range: no row, one stream */
	buf_puts(b, "SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint, pg_relation_size(c.oid)\n"
		 "FROM pg_class c WHERE c.oid = to_regclass(");
	dialect_quote_literal(b, rel);
	buf_puts(b, ") AND c.relkind IN ('r', 'm') AND current_setting('server_version_num')::int >= 140000");
}

static void pg_block_range(struct buf *b, long long lo, long long hi)
{
	buf_printf(b, "\nWHERE ctid >= '(%lld,0)'::tid", lo);
	if (hi >= 0)
		buf_printf(b, " AND ctid < '(%lld,0)'::tid", hi);
}

/* ---- data tests ---- */

static void pg_count_if(struct buf *b, const char *pred)
{
	buf_printf(b, "count(*) FILTER (WHERE %s)", pred);
}

static void pg_now_minus(struct buf *b, long long seconds)
{
	buf_printf(b, "(now() - interval '%lld seconds')", seconds);
}

const struct dialect dialect_postgres = {
	.name = "postgres",
	.begin = "BEGIN",
	.commit = "COMMIT",
	.rollback = "ROLLBACK",
	.create_schema = pg_create_schema,
	.create_table_as = pg_create_table_as,
	.create_view = pg_create_view,
	.create_temp_as = pg_create_temp_as,
	.rename = pg_rename,
	.drop = pg_drop,
	.dependents_query = pg_dependents_query,
	.search_path_qualify = "SET LOCAL search_path TO ''",
	/* one key for the database ('sluice' in ASCII): the deadlock detector sees it, unlike a mutex */
	.swap_lock = "SELECT pg_advisory_xact_lock(x'736c75696365'::bigint)",
	.recreate_dependent = pg_recreate_dependent,
	.drop_dependent = pg_drop_dependent,
	.read_columns_query = pg_read_columns_query,
	.late_view = pg_late_view,
	.late_view_drop = pg_late_view_drop,
	.insert_from = dialect_insert_select,
	.delete_matching = pg_delete_matching,
	.merge = pg_merge,
	.columns_query = pg_columns_query,
	.relations_query = pg_relations_query,
	.relation_size_query = pg_relation_size_query,
	/* PostgreSQL 15+: flush this backend's counters when it goes idle */
	.after_write = "SELECT pg_stat_force_next_flush()",
	.try_lock = pg_try_lock,
	.unlock = pg_unlock,
	.source_stats_query = pg_source_stats_query,
	.pending_stats_query = pg_pending_stats_query,
	.app_name_env = "PGAPPNAME",
	.sessions_named_query = pg_sessions_named_query,
	.connection_budget_query = pg_connection_budget_query,
	.trigger_versions_query = pg_trigger_versions_query,
	.source_value_query = pg_source_value_query,
	.loaded_at_query = pg_loaded_at_query,
	.instrument_sql = pg_instrument_sql,
	.uninstrument_sql = pg_uninstrument_sql,
	.checksum_query = pg_checksum_query,
	.copy_out_csv = pg_copy_out_csv,
	.copy_in_csv = pg_copy_in_csv,
	.copy_out_binary = pg_copy_out_binary,
	.copy_in_binary = pg_copy_in_binary,
	.describe = pg_describe,
	.create_table_like = dialect_create_table_like,
	.create_table_columns = dialect_create_table_columns,
	.delete_all = pg_delete_all,
	.count_if = pg_count_if,
	.now_minus = pg_now_minus,
	.failures_query = dialect_failures_query,
	.sample_query = dialect_sample_query,
	.estimate_query = pg_estimate_query,
	.estimate_bytes = pg_estimate_bytes,
	.snapshot_begin = "BEGIN ISOLATION LEVEL REPEATABLE READ",
	.snapshot_export = "SELECT pg_export_snapshot()",
	.snapshot_import = pg_snapshot_import,
	.table_blocks_query = pg_table_blocks_query,
	.block_range = pg_block_range,
};
