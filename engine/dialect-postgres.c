/*
 * dialect-postgres.c: the SQL PostgreSQL needs for each materialization
 * step. Views bind to tables by OID here, so swapping a table in means
 * re-pointing the views that depend on it (dependents_query/replace_view).
 */
#include <string.h>
#include "dialect.h"

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

static void col_list(struct buf *b, const char *prefix, const char *const *cols, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s%s", i ? ", " : "", prefix, cols[i]);
}

static void pg_insert_from(struct buf *b, const char *target, const char *tmp,
			   const char *const *cols, size_t ncols)
{
	buf_printf(b, "INSERT INTO %s (", target);
	col_list(b, "", cols, ncols);
	buf_puts(b, ")\nSELECT ");
	col_list(b, "", cols, ncols);
	buf_puts(b, " FROM ");
	dialect_quote_ident(b, tmp);
}

static void key_match(struct buf *b, const char *l, const char *r, const char *const *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s.%s = %s.%s", i ? " AND " : "", l, keys[i], r, keys[i]);
}

static void pg_delete_matching(struct buf *b, const char *target, const char *tmp,
			       const char *const *keys, size_t nkeys)
{
	buf_printf(b, "DELETE FROM %s AS sluice_target\nUSING ", target);
	dialect_quote_ident(b, tmp);
	buf_puts(b, " AS sluice_source\nWHERE ");
	key_match(b, "sluice_target", "sluice_source", keys, nkeys);
}

static void pg_merge(struct buf *b, const char *target, const char *tmp, const char *const *keys,
		     size_t nkeys, const char *const *cols, size_t ncols)
{
	size_t i, nset = 0;

	buf_printf(b, "MERGE INTO %s AS sluice_target\nUSING ", target);
	dialect_quote_ident(b, tmp);
	buf_puts(b, " AS sluice_source\nON ");
	key_match(b, "sluice_target", "sluice_source", keys, nkeys);
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
	col_list(b, "", cols, ncols);
	buf_puts(b, ")\nVALUES (");
	col_list(b, "sluice_source.", cols, ncols);
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

static void pg_try_lock(struct buf *b, long long key)
{
	buf_printf(b, "SELECT pg_try_advisory_lock(%lld)", key);
}

static void pg_unlock(struct buf *b, long long key)
{
	buf_printf(b, "SELECT pg_advisory_unlock(%lld)", key);
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
	.recreate_dependent = pg_recreate_dependent,
	.insert_from = pg_insert_from,
	.delete_matching = pg_delete_matching,
	.merge = pg_merge,
	.columns_query = pg_columns_query,
	.relations_query = pg_relations_query,
	/* PostgreSQL 15+: flush this backend's counters when it goes idle */
	.after_write = "SELECT pg_stat_force_next_flush()",
	.try_lock = pg_try_lock,
	.unlock = pg_unlock,
};
