/*
 * dialect-redshift.c: the SQL Amazon Redshift needs where it differs from
 * PostgreSQL, for the materializations, change detection, the run lock
 * and S3 stages. What it is for, in short (docs/redshift.md says why):
 *
 *   - views are late-binding (WITH NO SCHEMA BINDING): they bind to
 *     tables by name at query time, so swapping a table in never needs
 *     the views above it re-created (no dependents_query);
 *   - TRUNCATE commits the transaction it runs in: delete_all is DELETE;
 *   - temporary tables have no ON COMMIT DROP: the incremental scratch
 *     table is dropped by the statements that read it last;
 *   - MERGE fails when two source rows match one target row: it reads a
 *     deduplicated copy of the scratch table (CREATE TEMP TABLE ... LIKE);
 *   - string literals treat backslashes as escapes: rs_literal doubles
 *     them as well as quotes;
 *   - no advisory locks: the run lock is a row in a table, owned by a
 *     session that stv_sessions must still list;
 *   - statistics come from svv_table_info and the insert/delete logs
 *     (stl_* on provisioned clusters, sys_* on Serverless: the dialect
 *     `redshift-serverless`).
 *
 * Not here: executing anything (materialize.c, stage code) or choosing
 * the driver (connectors/registry.c).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dialect.h"
#include "util/xalloc.h"

#define IDENT_MAX 63            /* Redshift truncates identifiers past 127 bytes; sluice keeps to 63 */
#define INTERLEAVED_MAX 8       /* columns an interleaved sort key may have */
#define MAXFILESIZE_MIN_MB 5.0
#define MAXFILESIZE_MAX_MB 6200.0  /* 6.2 GB */

/* 'literal' with quotes and backslashes doubled, as Redshift's QUOTE_LITERAL does. */
static void rs_literal(struct buf *b, const char *s)
{
	buf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			buf_addc(b, *s);
		buf_addc(b, *s);
	}
	buf_addc(b, '\'');
}

/* A side name for a session table: "<base><suffix>", kept under IDENT_MAX. */
static void side_ident(struct buf *b, const char *base, const char *suffix)
{
	size_t n = strlen(base), room = IDENT_MAX - strlen(suffix);
	struct buf name = BUF_INIT;

	buf_add(&name, base, n < room ? n : room);
	buf_puts(&name, suffix);
	dialect_quote_ident(b, name.s);
	buf_release(&name);
}

/* ---- model config: dist and sort keys (dbt-redshift's names) ---- */

static const char *const dist_styles[] = { "all", "even", "auto" };

static const char *dist_style_word(const char *s)
{
	size_t i;

	for (i = 0; s && i < sizeof(dist_styles) / sizeof(dist_styles[0]); i++)
		if (!strcasecmp(s, dist_styles[i]))
			return dist_styles[i];
	return NULL;
}

static int present(const struct val *v)
{
	return v && v->kind != V_NONE;
}

static const char *cfg_str(const struct val *config, const char *key)
{
	const struct val *v = val_get(config, key);

	return v && v->kind == V_STR && v->u.str.len ? v->u.str.s : NULL;
}

static void upper(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_addc(b, (char)toupper((unsigned char)*s));
}

/*
 * dist: a style word (all, even, auto) or a column; diststyle: the style
 * spelled out (key needs dist: <column>). check_config has ruled out the
 * combinations that contradict each other.
 */
static void dist_clause(struct buf *b, const struct val *config)
{
	const char *dist = cfg_str(config, "dist"), *style = cfg_str(config, "diststyle");

	if (dist && dist_style_word(dist)) {
		buf_puts(b, " DISTSTYLE ");
		upper(b, dist);
	} else if (dist) {
		buf_puts(b, " DISTSTYLE KEY DISTKEY (");
		dialect_quote_ident(b, dist);
		buf_addc(b, ')');
	} else if (style && strcasecmp(style, "key")) {
		buf_puts(b, " DISTSTYLE ");
		upper(b, style);
	}
}

static void sort_clause(struct buf *b, const struct val *config)
{
	const struct val *sort = val_get(config, "sort");
	const char *type = cfg_str(config, "sort_type");
	size_t i, n = 0;

	if (!present(sort))
		return;
	buf_puts(b, type && !strcasecmp(type, "interleaved") ? " INTERLEAVED SORTKEY (" : " COMPOUND SORTKEY (");
	if (sort->kind == V_STR) {
		dialect_quote_ident(b, sort->u.str.s);
	} else if (sort->kind == V_LIST) {
		for (i = 0; i < sort->u.list.n; i++) {
			if (sort->u.list.items[i].kind != V_STR)
				continue;
			buf_puts(b, n++ ? ", " : "");
			dialect_quote_ident(b, sort->u.list.items[i].u.str.s);
		}
	}
	buf_addc(b, ')');
}

/* A config value as the user wrote it, for messages. */
static void shown(const struct val *v, struct buf *out)
{
	val_format(v, out);
}

static int bad_value(struct sluice_err *err, const char *key, const struct val *v, const char *want)
{
	struct buf b = BUF_INIT;
	int rc;

	shown(v, &b);
	rc = err_set(err, SLUICE_EUSAGE, "%s: '%s' is not valid on Redshift (%s)", key, b.s, want);
	buf_release(&b);
	return rc;
}

static int is_boolish(const struct val *v)
{
	if (v->kind == V_BOOL)
		return 1;
	return v->kind == V_STR && (!strcasecmp(v->u.str.s, "true") || !strcasecmp(v->u.str.s, "false"));
}

/*
 * max_file_size: a number of MB, or "<number> MB|GB"; UNLOAD takes 5 MB
 * to 6.2 GB. *num and *unit get the normalized form.
 */
static int parse_file_size(const struct val *v, double *num, const char **unit)
{
	char *end;
	double x, mb;

	if (v->kind == V_NUM) {
		x = v->u.num;
		*unit = "MB";
	} else if (v->kind == V_STR) {
		errno = 0;
		x = strtod(v->u.str.s, &end);
		if (end == v->u.str.s || errno)
			return -1;
		while (*end == ' ')
			end++;
		if (!*end || !strcasecmp(end, "mb"))
			*unit = "MB";
		else if (!strcasecmp(end, "gb"))
			*unit = "GB";
		else
			return -1;
	} else {
		return -1;
	}
	mb = !strcmp(*unit, "GB") ? x * 1000 : x;
	if (!isfinite(x) || mb < MAXFILESIZE_MIN_MB - 1e-9 || mb > MAXFILESIZE_MAX_MB + 1e-9)
		return -1;
	*num = x;
	return 0;
}

static int check_dist(const struct val *config, const char **key, struct sluice_err *err)
{
	const struct val *dist = val_get(config, "dist"), *style = val_get(config, "diststyle");
	const char *d = NULL, *s = NULL;

	*key = "dist";
	if (present(dist)) {
		if (dist->kind != V_STR || !dist->u.str.len)
			return bad_value(err, "dist", dist, "a column name, or all, even or auto");
		d = dist->u.str.s;
	}
	if (present(style)) {
		*key = "diststyle";
		if (style->kind != V_STR || (!dist_style_word(style->u.str.s) && strcasecmp(style->u.str.s, "key")))
			return bad_value(err, "diststyle", style, "all, even, auto or key");
		s = style->u.str.s;
	}
	if (s && !strcasecmp(s, "key") && (!d || dist_style_word(d)))
		return err_set(err, SLUICE_EUSAGE, "diststyle: key needs dist: <column> (the distribution key)");
	if (s && strcasecmp(s, "key") && d && !dist_style_word(d))
		return err_set(err, SLUICE_EUSAGE,
			       "dist: %s names a distribution key column, which means diststyle key, not %s", d, s);
	if (s && d && dist_style_word(d) && strcasecmp(s, d))
		return err_set(err, SLUICE_EUSAGE, "dist: %s and diststyle: %s disagree: set one of them", d, s);
	return 0;
}

static int check_sort(const struct val *config, const char **key, struct sluice_err *err)
{
	const struct val *sort = val_get(config, "sort"), *type = val_get(config, "sort_type");
	size_t i, n = 0;

	*key = "sort";
	if (present(sort)) {
		if (sort->kind == V_STR && sort->u.str.len) {
			n = 1;
		} else if (sort->kind == V_LIST && sort->u.list.n) {
			for (i = 0; i < sort->u.list.n; i++)
				if (sort->u.list.items[i].kind != V_STR || !sort->u.list.items[i].u.str.len)
					return bad_value(err, "sort", sort, "a column name or a list of them");
			n = sort->u.list.n;
		} else {
			return bad_value(err, "sort", sort, "a column name or a list of them");
		}
	}
	if (!present(type))
		return 0;
	*key = "sort_type";
	if (type->kind != V_STR || (strcasecmp(type->u.str.s, "compound") && strcasecmp(type->u.str.s, "interleaved")))
		return bad_value(err, "sort_type", type, "compound or interleaved");
	if (!n)
		return err_set(err, SLUICE_EUSAGE, "sort_type: %s needs sort: <column or list of columns>", type->u.str.s);
	if (!strcasecmp(type->u.str.s, "interleaved") && n > INTERLEAVED_MAX)
		return err_set(err, SLUICE_EUSAGE, "sort_type: interleaved takes at most %d columns, sort: has %zu",
			       INTERLEAVED_MAX, n);
	return 0;
}

static int rs_check_config(const struct val *config, const char **key, struct sluice_err *err)
{
	static const char *const bools[] = { "backup", "gzip", "allow_overwrite" };
	const struct val *v;
	const char *unit;
	double num;
	size_t i;
	int rc;

	if ((rc = check_dist(config, key, err)) || (rc = check_sort(config, key, err)))
		return rc;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		*key = bools[i];
		if (present(v = val_get(config, bools[i])) && !is_boolish(v))
			return bad_value(err, bools[i], v, "true or false");
	}
	*key = "max_file_size";
	if (present(v = val_get(config, "max_file_size")) && parse_file_size(v, &num, &unit))
		return bad_value(err, "max_file_size", v, "a size from 5 MB to 6.2 GB, such as 256, '256 MB' or '1 GB'");
	*key = NULL;
	return 0;
}

/* ---- relations ---- */

static void rs_create_schema(struct buf *b, const char *schema)
{
	buf_puts(b, "CREATE SCHEMA IF NOT EXISTS ");
	dialect_quote_ident(b, schema);
}

/* CREATE TABLE ... [BACKUP NO] [DISTSTYLE ...] [... SORTKEY (...)] AS: Redshift has no CREATE OR REPLACE TABLE. */
static void rs_create_table_as(struct buf *b, const char *rel, const char *sql, const struct val *config)
{
	buf_printf(b, "CREATE TABLE %s", rel);
	if (present(val_get(config, "backup")) && !val_get_bool(config, "backup", 1))
		buf_puts(b, " BACKUP NO");
	dist_clause(b, config);
	sort_clause(b, config);
	buf_printf(b, " AS (\n%s\n)", sql);
}

static void rs_create_view(struct buf *b, const char *rel, const char *sql)
{
	buf_printf(b, "CREATE VIEW %s AS (\n%s\n) WITH NO SCHEMA BINDING", rel, sql);
}

/*
 * A temporary table lives until the session ends, and a worker's session
 * lasts the whole run: the same name may be left by an earlier run on the
 * session, so it is dropped first (and insert_from/merge drop it after).
 */
static void rs_create_temp_as(struct buf *b, const char *name, const char *sql)
{
	buf_puts(b, "DROP TABLE IF EXISTS ");
	dialect_quote_ident(b, name);
	buf_puts(b, ";\nCREATE TEMP TABLE ");
	dialect_quote_ident(b, name);
	buf_printf(b, " AS (\n%s\n)", sql);
}

/* ALTER VIEW ... RENAME is not Redshift's: ALTER TABLE renames views too. */
static void rs_rename(struct buf *b, const char *rel, enum rel_kind kind, const char *new_ident)
{
	(void)kind;
	buf_printf(b, "ALTER TABLE %s RENAME TO ", rel);
	dialect_quote_ident(b, new_ident);
}

static void rs_drop(struct buf *b, const char *rel, enum rel_kind kind, int cascade)
{
	buf_printf(b, "DROP %s IF EXISTS %s%s", kind == REL_VIEW ? "VIEW" : "TABLE", rel, cascade ? " CASCADE" : "");
}

/* ---- incremental strategies ---- */

static void rs_insert_from(struct buf *b, const char *target, const char *tmp,
			   const char *const *cols, size_t ncols)
{
	dialect_insert_select(b, target, tmp, cols, ncols);
	buf_puts(b, ";\nDROP TABLE ");
	dialect_quote_ident(b, tmp);
}

static void rs_delete_matching(struct buf *b, const char *target, const char *tmp,
			       const char *const *keys, size_t nkeys)
{
	struct buf src = BUF_INIT;

	dialect_quote_ident(&src, tmp);
	buf_printf(b, "DELETE FROM %s\nUSING %s\nWHERE ", target, src.s);
	dialect_key_match(b, target, src.s, keys, nkeys);
	buf_release(&src);
}

static int is_key(const char *col, const char *const *keys, size_t nkeys)
{
	size_t k;

	for (k = 0; k < nkeys; k++)
		if (!strcmp(col, keys[k]))
			return 1;
	return 0;
}

/*
 * MERGE fails when two source rows match the same target row, so it reads
 * a copy of the scratch table with one row per key (which of several rows
 * with one key wins is not defined: the increment should not have them).
 * The copy is LIKE the target, so it shares its distribution and the join
 * stays on each slice. Redshift wants both WHEN clauses; when every column
 * is a key, the update sets the first key to itself.
 */
static void rs_merge(struct buf *b, const char *target, const char *tmp, const char *const *keys,
		     size_t nkeys, const char *const *cols, size_t ncols)
{
	struct buf dedup = BUF_INIT;
	size_t i, nset = 0;

	side_ident(&dedup, tmp, "_dedup");
	buf_printf(b, "CREATE TEMP TABLE %s (LIKE %s);\nINSERT INTO %s (", dedup.s, target, dedup.s);
	dialect_col_list(b, "", cols, ncols);
	buf_puts(b, ")\nSELECT ");
	dialect_col_list(b, "", cols, ncols);
	buf_puts(b, " FROM (\n  SELECT ");
	dialect_col_list(b, "", cols, ncols);
	buf_puts(b, ", ROW_NUMBER() OVER (PARTITION BY ");
	dialect_col_list(b, "", keys, nkeys);
	buf_puts(b, " ORDER BY ");
	dialect_col_list(b, "", keys, nkeys);
	buf_puts(b, ") AS sluice_row\n  FROM ");
	dialect_quote_ident(b, tmp);
	buf_puts(b, "\n) AS sluice_ranked\nWHERE sluice_row = 1;\n");
	buf_printf(b, "MERGE INTO %s\nUSING %s AS sluice_source\nON ", target, dedup.s);
	dialect_key_match(b, target, "sluice_source", keys, nkeys);
	for (i = 0; i < ncols; i++) {
		if (is_key(cols[i], keys, nkeys))
			continue;
		buf_printf(b, "%s%s = sluice_source.%s", nset++ ? ", " : "\nWHEN MATCHED THEN UPDATE SET ", cols[i],
			   cols[i]);
	}
	if (!nset && nkeys)
		buf_printf(b, "\nWHEN MATCHED THEN UPDATE SET %s = sluice_source.%s", keys[0], keys[0]);
	buf_puts(b, "\nWHEN NOT MATCHED THEN INSERT (");
	dialect_col_list(b, "", cols, ncols);
	buf_puts(b, ")\nVALUES (");
	dialect_col_list(b, "sluice_source.", cols, ncols);
	buf_printf(b, ");\nDROP TABLE %s;\nDROP TABLE ", dedup.s);
	dialect_quote_ident(b, tmp);
	buf_release(&dedup);
}

static void rs_delete_all(struct buf *b, const char *rel)
{
	buf_printf(b, "DELETE FROM %s", rel);
}

/* ---- catalog ---- */

static void rs_columns_query(struct buf *b, const char *schema, const char *ident)
{
	buf_puts(b, "SELECT a.attname FROM pg_attribute a\n"
		 "JOIN pg_class c ON c.oid = a.attrelid\n"
		 "JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "WHERE n.nspname = ");
	rs_literal(b, schema);
	buf_puts(b, " AND c.relname = ");
	rs_literal(b, ident);
	buf_puts(b, " AND a.attnum > 0 AND NOT a.attisdropped\nORDER BY a.attnum");
}

static void rs_relations_query(struct buf *b, const char *const *schemas, size_t n)
{
	size_t i;

	buf_puts(b, "SELECT trim(n.nspname), trim(c.relname),\n"
		 "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' ELSE 'other' END\n"
		 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "WHERE c.relkind IN ('r', 'v') AND n.nspname IN (");
	for (i = 0; i < n; i++) {
		buf_puts(b, i ? ", " : "");
		rs_literal(b, schemas[i]);
	}
	if (!n)
		buf_puts(b, "NULL");
	buf_addc(b, ')');
}

static void want_pairs(struct buf *b, const char *sc, const char *tc, const char *const *schemas,
		       const char *const *idents, size_t n);

/* svv_table_info lists tables only (size in 1 MB blocks); a view has none. */
static void rs_relation_size_query(struct buf *b, const char *const *schemas, const char *const *idents, size_t n)
{
	buf_puts(b, "SELECT trim(n.nspname), trim(c.relname), coalesce(t.size, 0)::bigint * 1048576\n"
		 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "LEFT JOIN svv_table_info t ON t.table_id = c.oid\n"
		 "WHERE c.relkind IN ('r', 'v') AND (");
	want_pairs(b, "n.nspname", "c.relname", schemas, idents, n);
	buf_addc(b, ')');
}

/* ---- the run lock (state-warehouse.c) ---- */

/*
 * Redshift has no advisory locks. The lock is a row (key, pid of the
 * holding session) in sluice_meta.session_locks, taken under LOCK TABLE
 * so two runs cannot both insert it; a row whose session stv_sessions no
 * longer lists (the run was killed, the connection dropped) is stale and
 * removed by the next attempt. The query's last statement says whether
 * this session holds the row.
 */
static void rs_try_lock(struct buf *b, long long key)
{
	buf_printf(b, "CREATE TABLE IF NOT EXISTS sluice_meta.session_locks (lock_key bigint, pid integer);\n"
		   "BEGIN;\n"
		   "LOCK sluice_meta.session_locks;\n"
		   "DELETE FROM sluice_meta.session_locks\n"
		   "WHERE lock_key = %lld AND pid NOT IN (SELECT process FROM stv_sessions);\n"
		   "INSERT INTO sluice_meta.session_locks (lock_key, pid)\n"
		   "SELECT %lld, pg_backend_pid()\n"
		   "WHERE NOT EXISTS (SELECT 1 FROM sluice_meta.session_locks WHERE lock_key = %lld);\n"
		   "COMMIT;\n"
		   "SELECT count(*) > 0 FROM sluice_meta.session_locks WHERE lock_key = %lld AND pid = pg_backend_pid()",
		   key, key, key, key);
}

static void rs_unlock(struct buf *b, long long key)
{
	buf_printf(b, "DELETE FROM sluice_meta.session_locks WHERE lock_key = %lld AND pid = pg_backend_pid()", key);
}

/* ---- change detection (sources.c) ---- */

/* (n.nspname = 's' AND c.relname = 't') OR ...: Redshift has no VALUES lists to join. */
static void want_pairs(struct buf *b, const char *sc, const char *tc, const char *const *schemas,
		       const char *const *idents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		buf_printf(b, "%s(%s = ", i ? "\n    OR " : "", sc);
		rs_literal(b, schemas[i]);
		buf_printf(b, " AND %s = ", tc);
		rs_literal(b, idents[i]);
		buf_addc(b, ')');
	}
	if (!n)
		buf_puts(b, "false");
}

/*
 * The version: "stats:<table id>:<tbl_rows>:<last insert>:<last delete>".
 * The table id changes when a table is replaced; svv_table_info.tbl_rows
 * (live, and counting deleted rows until VACUUM reclaims them) grows with
 * every insert and update; the end time of the latest insert and delete
 * step in the log catches deletes, and writes that keep the count. Writes
 * by sluice's own sessions (query_group DIALECT_TAG_PREFIX...) are left out
 * of the log part: they show in the id and the count at once, while log
 * rows may arrive later and would make sluice's own tables look written to
 * from outside. Views get NULL (untracked), so do Spectrum tables, which
 * only svv_external_tables knows. Empty tables are missing from
 * svv_table_info: their count is 0.
 */
static void stats_query(struct buf *b, const char *const *schemas, const char *const *idents, size_t n,
			int serverless)
{
	buf_puts(b, "WITH w AS (\n"
		 "  SELECT c.oid::integer AS table_id, trim(n.nspname) AS schema_name, trim(c.relname) AS table_name,\n"
		 "    c.relkind\n"
		 "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
		 "  WHERE c.relkind IN ('r', 'v') AND (");
	want_pairs(b, "n.nspname", "c.relname", schemas, idents, n);
	buf_puts(b, ")\n),\n");
	if (serverless) {
		buf_puts(b, "writes AS (\n"
			 "  SELECT d.table_id,\n"
			 "    max(CASE WHEN trim(d.step_name) = 'insert' THEN d.end_time END) AS inserted,\n"
			 "    max(CASE WHEN trim(d.step_name) = 'delete' THEN d.end_time END) AS deleted\n"
			 "  FROM sys_query_detail d JOIN sys_query_history h ON h.query_id = d.query_id\n"
			 "  WHERE trim(d.step_name) IN ('insert', 'delete') AND d.table_id IN (SELECT table_id FROM w)\n"
			 "    AND h.query_label NOT LIKE '" DIALECT_TAG_PREFIX "%'\n"
			 "  GROUP BY d.table_id\n"
			 ")\n");
	} else {
		buf_puts(b, "writes AS (\n"
			 "  SELECT l.tbl AS table_id, max(l.inserted) AS inserted, max(l.deleted) AS deleted\n"
			 "  FROM (SELECT query, tbl, endtime AS inserted, NULL::timestamp AS deleted FROM stl_insert\n"
			 "        UNION ALL\n"
			 "        SELECT query, tbl, NULL::timestamp, endtime FROM stl_delete) l\n"
			 "  JOIN stl_query q ON q.query = l.query\n"
			 "  WHERE l.tbl IN (SELECT table_id FROM w) AND q.label NOT LIKE '" DIALECT_TAG_PREFIX "%'\n"
			 "  GROUP BY l.tbl\n"
			 ")\n");
	}
	buf_puts(b, "SELECT w.schema_name, w.table_name,\n"
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
		 "WHERE ");
	want_pairs(b, "e.schemaname", "e.tablename", schemas, idents, n);
}

static void rs_source_stats_query(struct buf *b, const char *const *schemas, const char *const *idents, size_t n)
{
	stats_query(b, schemas, idents, n, 0);
}

static void rss_source_stats_query(struct buf *b, const char *const *schemas, const char *const *idents,
				   size_t n)
{
	stats_query(b, schemas, idents, n, 1);
}

/* sql without trailing ';' and blanks: inside parentheses or a literal they would break it. */
static size_t trimmed_len(const char *sql)
{
	size_t len = strlen(sql);

	while (len > 0 && (sql[len - 1] == ';' || isspace((unsigned char)sql[len - 1])))
		len--;
	return len;
}

/*
 * Redshift has no way to run a query given as text from inside another
 * (PostgreSQL's query_to_xml), so every value is a scalar subquery of one
 * UNION ALL, and "exists" is always true: a missing table fails the batch
 * (42P01), after which sources.c asks again one source at a time and names
 * the one whose table is missing.
 */
static void value_union(struct buf *b, const char *const *schemas, const char *const *idents,
			const char *const *args, size_t n, int loaded_at)
{
	size_t i;

	for (i = 0; i < n; i++) {
		buf_printf(b, "%sSELECT %zu AS i, 't' AS present, (", i ? "\nUNION ALL\n" : "", i);
		if (loaded_at) {
			buf_printf(b, "SELECT max(%s) FROM ", args[i]);
			dialect_relation(b, schemas[i], idents[i]);
		} else {
			buf_puts(b, "\n");
			buf_add(b, args[i], trimmed_len(args[i]));
			buf_puts(b, "\n");
		}
		buf_puts(b, ")::varchar(65535) AS v");
	}
	if (!n)
		buf_puts(b, "SELECT 0 AS i, 'f' AS present, NULL::varchar AS v WHERE false");
	else
		buf_puts(b, "\nORDER BY 1");
}

static void rs_source_value_query(struct buf *b, const char *const *schemas, const char *const *idents,
				  const char *const *sqls, size_t n)
{
	value_union(b, schemas, idents, sqls, n, 0);
}

static void rs_loaded_at_query(struct buf *b, const char *const *schemas, const char *const *idents,
			       const char *const *exprs, size_t n)
{
	value_union(b, schemas, idents, exprs, n, 1);
}

/* ---- stages: UNLOAD to S3 and COPY from a manifest ---- */

/* A temporary table names the query's columns and types; its creation runs the query with no rows. */
static void rs_describe(struct buf *setup, struct buf *query, struct buf *cleanup, const char *sql)
{
	buf_puts(setup, "DROP TABLE IF EXISTS \"__sluice_describe\";\n"
		 "CREATE TEMP TABLE \"__sluice_describe\" AS SELECT * FROM (\n");
	buf_add(setup, sql, trimmed_len(sql));
	buf_puts(setup, "\n) AS sluice_describe WHERE 1 = 0");
	buf_puts(query, "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a\n"
		 "JOIN pg_class c ON c.oid = a.attrelid\n"
		 "WHERE c.relname = '__sluice_describe' AND pg_table_is_visible(c.oid)\n"
		 "  AND a.attnum > 0 AND NOT a.attisdropped\n"
		 "ORDER BY a.attnum");
	buf_puts(cleanup, "DROP TABLE IF EXISTS \"__sluice_describe\"");
}

/* Redshift needs an authorization: without an ARN, the cluster's default IAM role. */
static void iam_role_clause(struct buf *b, const char *iam_role)
{
	buf_puts(b, "\nIAM_ROLE ");
	if (iam_role && *iam_role)
		rs_literal(b, iam_role);
	else
		buf_puts(b, "default");
}

/*
 * The query goes inside a string literal, quotes and backslashes doubled,
 * exactly as written: UNLOAD refuses a LIMIT on the outer SELECT, and
 * sluice adds none. CSV writes NULL as an empty unquoted field. With
 * ALLOWOVERWRITE (the default) a rerun replaces the manifest and parts of
 * the same names; parts of an earlier, larger unload stay, but the
 * manifest lists only this one's.
 */
static void rs_unload(struct buf *b, const char *sql, const char *url_prefix, const char *iam_role,
		      const struct val *config)
{
	struct buf q = BUF_INIT;
	const struct val *size = val_get(config, "max_file_size");
	const char *unit;
	double num;

	buf_add(&q, sql, trimmed_len(sql));
	buf_puts(b, "UNLOAD (");
	rs_literal(b, q.s);
	buf_puts(b, ")\nTO ");
	rs_literal(b, url_prefix);
	iam_role_clause(b, iam_role);
	buf_puts(b, "\nFORMAT CSV\nMANIFEST VERBOSE");
	if (val_get_bool(config, "gzip", 0))
		buf_puts(b, "\nGZIP");
	if (present(size) && !parse_file_size(size, &num, &unit))
		buf_printf(b, "\nMAXFILESIZE %g %s", num, unit);
	if (val_get_bool(config, "allow_overwrite", 1))
		buf_puts(b, "\nALLOWOVERWRITE");
	buf_release(&q);
}

/* EMPTYASNULL: an unquoted empty field is NULL, a quoted one ("") the empty string. */
static void rs_copy_from_manifest(struct buf *b, const char *rel, const char *manifest_url, const char *iam_role,
				  int gzip)
{
	buf_printf(b, "COPY %s\nFROM ", rel);
	rs_literal(b, manifest_url);
	iam_role_clause(b, iam_role);
	buf_puts(b, "\nMANIFEST\nFORMAT CSV\nEMPTYASNULL");
	if (gzip)
		buf_puts(b, "\nGZIP");
}

/* ---- audit ---- */

static void rs_session_tag(struct buf *b, const char *tag)
{
	buf_puts(b, "SET query_group TO ");
	rs_literal(b, tag);
}


/* ---- data tests ---- */

/* No FILTER clause on Redshift; a sum over no rows is NULL. */
static void rs_count_if(struct buf *b, const char *pred)
{
	buf_printf(b, "coalesce(sum(CASE WHEN %s THEN 1 ELSE 0 END), 0)", pred);
}

/* getdate() is the current time in UTC, as a timestamp. */
static void rs_now_minus(struct buf *b, long long seconds)
{
	buf_printf(b, "dateadd(second, %lld, getdate())", -seconds);
}

#define REDSHIFT_SLOTS                                                  \
	.begin = "BEGIN",                                              \
	.commit = "COMMIT",                                            \
	.rollback = "ROLLBACK",                                        \
	.create_schema = rs_create_schema,                             \
	.create_table_as = rs_create_table_as,                         \
	.create_view = rs_create_view,                                 \
	.create_temp_as = rs_create_temp_as,                           \
	.rename = rs_rename,                                           \
	.drop = rs_drop,                                               \
	.insert_from = rs_insert_from,                                 \
	.delete_matching = rs_delete_matching,                         \
	.merge = rs_merge,                                             \
	.columns_query = rs_columns_query,                             \
	.relations_query = rs_relations_query,                         \
	.relation_size_query = rs_relation_size_query,                 \
	.try_lock = rs_try_lock,                                       \
	.unlock = rs_unlock,                                           \
	.source_value_query = rs_source_value_query,                   \
	.loaded_at_query = rs_loaded_at_query,                         \
	.quote_literal = rs_literal,                                    \
	.describe = rs_describe,                                       \
	.count_if = rs_count_if,                                       \
	.now_minus = rs_now_minus,                                     \
	.failures_query = dialect_failures_query,                      \
	.sample_query = dialect_sample_query,                          \
	.create_table_like = dialect_create_table_like,                \
	.create_table_columns = dialect_create_table_columns,          \
	.unload = rs_unload,                                           \
	.unload_count_query = "SELECT pg_last_unload_count()",         \
	.copy_from_manifest = rs_copy_from_manifest,                   \
	.copy_count_query = "SELECT pg_last_copy_count()",             \
	.check_config = rs_check_config,                               \
	.session_tag = rs_session_tag,                                 \
	.delete_all = rs_delete_all

/*
 * Left NULL on purpose: dependents_query, search_path_qualify and
 * recreate_dependent (late-binding views), after_write (nothing to flush),
 * trigger_versions_query and (un)instrument_sql (no triggers), the
 * checksum (no row-to-text cast), copy_out_csv and copy_in_csv (no COPY
 * through the client: stages go through S3).
 */
const struct dialect dialect_redshift = {
	.name = "redshift",
	REDSHIFT_SLOTS,
	.source_stats_query = rs_source_stats_query,
};

/* Serverless keeps no stl_* logs: the write times come from sys_query_detail. */
const struct dialect dialect_redshift_serverless = {
	.name = "redshift-serverless",
	REDSHIFT_SLOTS,
	.source_stats_query = rss_source_stats_query,
};
