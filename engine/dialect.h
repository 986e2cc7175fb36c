/*
 * dialect.h: SQL text that differs between warehouses. The materializer
 * asks the dialect for statements; it never writes a CREATE itself.
 *
 * A dialect is a const struct filled with designated initializers; a NULL
 * slot means the warehouse needs no such step (e.g. Redshift's late-binding
 * views need no re-pointing of dependent views). All functions append to
 * a buffer and cannot fail.
 */
#ifndef SLUICE_DIALECT_H
#define SLUICE_DIALECT_H

#include <stddef.h>
#include "util/buf.h"
#include "util/err.h"
#include "value.h"

/* What kind of relation exists (or is to be built). */
enum rel_kind { REL_NONE = 0, REL_TABLE, REL_VIEW, REL_OTHER };

struct dialect {
	const char *name;

	const char *begin, *commit, *rollback;

	void (*create_schema)(struct buf *b, const char *schema);
	/* CREATE TABLE rel AS (sql); config may carry physical options (dist/sort keys). */
	void (*create_table_as)(struct buf *b, const char *rel, const char *sql, const struct val *config);
	void (*create_view)(struct buf *b, const char *rel, const char *sql);
	/*
	 * A session-local scratch table for incremental runs, dropped at
	 * commit (Redshift has no ON COMMIT DROP: there the statements of
	 * insert_from and merge, which read it last, drop it).
	 */
	void (*create_temp_as)(struct buf *b, const char *name, const char *sql);
	/* ALTER ... RENAME TO new_ident (unqualified). */
	void (*rename)(struct buf *b, const char *rel, enum rel_kind kind, const char *new_ident);
	/* DROP ... IF EXISTS; cascade also drops dependent views (re-created by the caller). */
	void (*drop)(struct buf *b, const char *rel, enum rel_kind kind, int cascade);

	/*
	 * Views bound to a table by identity must be re-created when the table
	 * is swapped. A query yielding (schema, name, relkind 'v'|'m',
	 * definition) of every view depending on rel, directly or not, ordered
	 * so each comes after what it reads; NULL slot when views bind late.
	 * Run it after search_path_qualify so definitions are fully qualified.
	 */
	void (*dependents_query)(struct buf *b, const char *rel);
	const char *search_path_qualify;
	/*
	 * Taken inside a swap's transaction before its dependents are captured
	 * and held until it commits: swaps that drop and re-create views must
	 * not interleave, or two of them sharing a view deadlock, and a view
	 * captured by one could be re-created under it by another. NULL: none.
	 */
	const char *swap_lock;
	/* Re-create one captured dependent (relkind as returned above). */
	void (*recreate_dependent)(struct buf *b, const char *rel, const char *relkind, const char *definition);
	/* Drop one captured dependent (relkind as returned above), before the swap touches rel. */
	void (*drop_dependent)(struct buf *b, const char *rel, const char *relkind);
	/*
	 * Where views bind early: a view over another environment's relation
	 * (reuse.h) that no swap of theirs ever sees. read_columns_query
	 * yields one row: rel's column names ("a", "b") and their types
	 * ("a" integer, "b" text); late_view writes the statement that makes
	 * function fn read rel, to run first, and the view's SELECT over fn;
	 * late_view_drop drops fn once no view reads it. NULL: views bind late
	 * already (Redshift), or no late view can be made.
	 */
	void (*read_columns_query)(struct buf *b, const char *rel);
	void (*late_view)(struct buf *before, struct buf *select, const char *fn, const char *rel, const char *names,
			  const char *typed);
	void (*late_view_drop)(struct buf *b, const char *fn);

	/* Incremental strategies. cols: quoted column list "a", "b". keys: quoted key columns. */
	void (*insert_from)(struct buf *b, const char *target, const char *tmp, const char *const *cols, size_t ncols);
	void (*delete_matching)(struct buf *b, const char *target, const char *tmp, const char *const *keys, size_t nkeys);
	void (*merge)(struct buf *b, const char *target, const char *tmp, const char *const *keys, size_t nkeys,
		      const char *const *cols, size_t ncols);
	/* Query yielding (column name) of rel in order. */
	void (*columns_query)(struct buf *b, const char *schema, const char *ident);
	/* Query yielding (schema, name, kind 'table'|'view'|'other') for relations in schemas. */
	void (*relations_query)(struct buf *b, const char *const *schemas, size_t n);
	/*
	 * Rows (schema, name, bytes) for the relations schemas[i].idents[i]
	 * that exist, bytes on disk (0 for a view), for `sluice cache ls`;
	 * NULL slot: sizes are not shown.
	 */
	void (*relation_size_query)(struct buf *b, const char *const *schemas, const char *const *idents, size_t n);

	/*
	 * Optional statement run (errors ignored) after a build commits, so
	 * the write shows in the statistics the next change check reads.
	 */
	const char *after_write;

	/*
	 * Run lock for the warehouse state backend: a query returning one
	 * boolean (true = acquired) for a 64-bit key, and its release. The
	 * lock must end with the session, so a killed run cannot leave it.
	 */
	void (*try_lock)(struct buf *b, long long key);
	void (*unlock)(struct buf *b, long long key);

	/*
	 * Change detection (sources.c, docs/change-detection.md). Each query
	 * covers a whole batch of tables schemas[i].idents[i] in one round
	 * trip; a NULL slot means the warehouse cannot use that method.
	 *
	 * source_stats_query: rows (schema, name, version) for the tables of
	 * the batch that exist, version as documented in sources.h, or NULL
	 * when statistics cannot tell that the relation's data changed (a
	 * view, a foreign table). The text may start with statements that
	 * return no rows (clearing a statistics snapshot).
	 */
	void (*source_stats_query)(struct buf *b, const char *const *schemas, const char *const *idents, size_t n);
	/*
	 * pending_stats_query: rows (pid, seconds, as_of) for the other
	 * sessions of the database that may hold the counts of a write they
	 * committed before as_of without publishing them yet, with how long
	 * they may still hold them. as_of is a quoted literal of the server's
	 * time, or NULL for "now", which every row then returns as text for
	 * the next call. No rows: every write committed before as_of shows in
	 * source_stats_query. NULL slot: counts are never published late.
	 */
	void (*pending_stats_query)(struct buf *b, const char *as_of);
	/*
	 * A script's sessions (shell models that create their relation):
	 * app_name_env is the environment variable a client takes its
	 * application name from; sessions_named_query returns one count, the
	 * sessions of the database with application name app. A session
	 * publishes its counts as it ends, before it leaves that count, so
	 * once its script's sessions are gone the relation's statistics
	 * version holds the script's write. NULL: nothing to wait for.
	 */
	const char *app_name_env;
	void (*sessions_named_query)(struct buf *b, const char *app);
	/*
	 * One row: how many more sessions this login may open on this
	 * database now (the tightest of the server's, the role's and the
	 * database's limits, leaving the slots the server reserves alone),
	 * and the size of that limit. NULL: the warehouse does not say, and
	 * a run takes the threads it is given.
	 */
	void (*connection_budget_query)(struct buf *b);
	/*
	 * trigger_versions_query: rows (schema, name, instrumented 't'|'f',
	 * counter or NULL) for the tables of the batch that exist. Fails with
	 * SQLSTATE 42P01 when the counter table was never created.
	 */
	void (*trigger_versions_query)(struct buf *b, const char *const *schemas, const char *const *idents, size_t n);
	/*
	 * source_value_query: rows (i, exists 't'|'f', value) for i = 0..n-1:
	 * the value of sqls[i] (a query returning one value), evaluated only
	 * when table i exists; value NULL for a NULL or empty result.
	 * loaded_at_query: the same shape, with max(exprs[i]) over table i.
	 */
	void (*source_value_query)(struct buf *b, const char *const *schemas, const char *const *idents,
				   const char *const *sqls, size_t n);
	void (*loaded_at_query)(struct buf *b, const char *const *schemas, const char *const *idents,
				const char *const *exprs, size_t n);
	/*
	 * Statements (several, run in one transaction) that create the
	 * trigger-method metadata if missing and (re)install the
	 * statement-level trigger on each table; and that drop the triggers
	 * (leaving the metadata). Both idempotent.
	 */
	void (*instrument_sql)(struct buf *b, const char *const *schemas, const char *const *idents, size_t n);
	void (*uninstrument_sql)(struct buf *b, const char *const *schemas, const char *const *idents, size_t n);

	/*
	 * Early cutoff: a query returning one text value that changes whenever
	 * rel's rows change (as a multiset: row order must not matter), in
	 * constant memory.
	 */
	void (*checksum_query)(struct buf *b, const char *rel);

	/*
	 * Stages (engine/stage.c, docs/stages.md). Files are CSV (RFC 4180,
	 * no header, NULL as an unquoted empty field, '' as a quoted one).
	 *
	 * copy_out_csv/copy_in_csv: the COPY statements a connector's
	 * copy_out/copy_in stream through; NULL when the warehouse has no
	 * client-side COPY (Redshift), and then unload/copy_from_manifest
	 * must be set.
	 */
	void (*copy_out_csv)(struct buf *b, const char *sql);
	void (*copy_in_csv)(struct buf *b, const char *rel);
	/*
	 * The same in the server's own binary COPY format (parts ending in
	 * .pgcopy, docs/stages.md, "format"): no text to parse at either
	 * end. NULL where the server has none.
	 */
	void (*copy_out_binary)(struct buf *b, const char *sql);
	void (*copy_in_binary)(struct buf *b, const char *rel);
	/*
	 * The columns of a query without running it: statements to run
	 * first (may be empty), a query yielding (name, type) in order, and
	 * statements that undo the first (may be empty).
	 */
	void (*describe)(struct buf *setup, struct buf *query, struct buf *cleanup, const char *sql);
	/* A new table with rel's columns, or with these columns. */
	void (*create_table_like)(struct buf *b, const char *rel, const char *like);
	void (*create_table_columns)(struct buf *b, const char *rel, const char *const *names,
				     const char *const *types, size_t n);
	/*
	 * Server-side transfers through S3 (Redshift): UNLOAD sql to parts
	 * under url_prefix with a MANIFEST VERBOSE, and COPY from such a
	 * manifest; each followed by a query returning the rows it moved.
	 * config: the model's (max_file_size, gzip, ...). iam_role may be NULL
	 * (credentials then come from the profile's s3 block).
	 */
	void (*unload)(struct buf *b, const char *sql, const char *url_prefix, const char *iam_role,
		       const struct val *config);
	const char *unload_count_query;
	void (*copy_from_manifest)(struct buf *b, const char *rel, const char *manifest_url,
				   const char *iam_role, int gzip);
	const char *copy_count_query;

	/* ---- added with the Redshift dialect; every slot below is optional ---- */

	/*
	 * Check the physical options of a model's config (dist/sort keys,
	 * file sizes) before any statement is written, since the functions
	 * above cannot fail: 0, or SLUICE_EUSAGE with a message naming the
	 * key and value, and *key (static) the config key to point at (the
	 * caller prefixes where the model set it). NULL slot: the warehouse
	 * ignores such keys.
	 */
	int (*check_config)(const struct val *config, const char **key, struct sluice_err *err);
	/*
	 * A statement tagging every later query of the session with tag, so
	 * the warehouse's own query log can be filtered by sluice run
	 * (Redshift: SET query_group). Run once per new connection, errors
	 * ignored; the leading comment of each statement stays as well.
	 */
	void (*session_tag)(struct buf *b, const char *tag);
	/*
	 * Empty rel inside the plan's transaction, keeping it in place.
	 * PostgreSQL's TRUNCATE is transactional; Redshift's commits the
	 * transaction it runs in, so there it is a DELETE.
	 */
	void (*delete_all)(struct buf *b, const char *rel);

	/*
	 * Data tests (engine/datatest.c, kind-datatest.c). count_if: an
	 * aggregate counting the rows where pred holds (0 on no rows), so
	 * many tests share one pass over a table. now_minus: a timestamp
	 * expression for the current time minus seconds, comparable with
	 * date and timestamp columns.
	 */
	void (*count_if)(struct buf *b, const char *pred);
	void (*now_minus)(struct buf *b, long long seconds);
	/*
	 * failures_query: a query returning at most limit rows of sql, each
	 * with the number of rows sql returns in all as its first column
	 * (named __sluice_failures), and no rows when sql returns none: a
	 * failing count and its sample in one pass. sample_query: at most
	 * limit rows of sql.
	 */
	void (*failures_query)(struct buf *b, const char *sql, int limit);
	void (*sample_query)(struct buf *b, const char *sql, int limit);

	/* 'literal' where the standard doubling of quotes is not enough; NULL: standard. */
	void (*quote_literal)(struct buf *b, const char *s);

	/*
	 * Optional: the planner's guess of a query's size, without running
	 * it. estimate_query plans sql; estimate_bytes reads the first value
	 * of its first row and returns rows x average width in bytes, or -1
	 * when the text says nothing. Stages size S3 parts by it.
	 */
	void (*estimate_query)(struct buf *b, const char *sql);
	long long (*estimate_bytes)(const char *plan);

	/*
	 * Optional: unload streams (stage.c), several connections reading one
	 * table in ranges of its blocks, all in one snapshot. snapshot_begin
	 * starts a transaction whose first query, snapshot_export, returns
	 * the snapshot's id as text; snapshot_import begins a transaction on
	 * another connection that reads that snapshot (while the first one is
	 * open). table_blocks_query: one row (blocks, bytes) when rel (as the
	 * query names it) is a table whose rows can be read by block range
	 * cheaply, no row otherwise (a view, an old server). block_range
	 * appends a WHERE clause keeping the rows of blocks [lo, hi), or from
	 * lo to the end when hi < 0. All set or none.
	 */
	const char *snapshot_begin;
	const char *snapshot_export;
	void (*snapshot_import)(struct buf *b, const char *id);
	void (*table_blocks_query)(struct buf *b, const char *rel);
	void (*block_range)(struct buf *b, long long lo, long long hi);
};

const struct dialect *dialect_find(const char *name);

/*
 * A string literal for dialect d: its quote_literal slot when set (a
 * warehouse whose literals read backslashes as escapes), else the
 * standard form below. Every literal the engine writes goes through this.
 */
void dialect_literal(const struct dialect *d, struct buf *b, const char *s);

/* Quoting shared by every dialect here: "ident" and 'literal' (doubled quotes). */
void dialect_quote_ident(struct buf *b, const char *ident);
void dialect_quote_literal(struct buf *b, const char *s);
/* Whether s is a plain identifier (letters, digits, _; not starting with a digit). */
int dialect_is_ident(const char *s);
/*
 * A plain identifier written unquoted in dbt's SQL (a seed's column, a
 * snapshot's unique_key), quoted as PostgreSQL and Redshift fold it: lower
 * case. Quoted, a column named like a keyword (order, user) still works.
 */
void dialect_folded_ident(struct buf *b, const char *ident);
/* "schema"."ident" */
void dialect_relation(struct buf *b, const char *schema, const char *ident);
/* prefix-qualified, comma-separated list of (already quoted) columns */
void dialect_col_list(struct buf *b, const char *prefix, const char *const *cols, size_t n);
/* l.k1 = r.k1 AND l.k2 = r.k2 ... for (already quoted) key columns */
void dialect_key_match(struct buf *b, const char *l, const char *r, const char *const *keys, size_t n);
/* failures_query/sample_query in standard SQL (window count, LIMIT), shared by both dialects. */
void dialect_failures_query(struct buf *b, const char *sql, int limit);
void dialect_sample_query(struct buf *b, const char *sql, int limit);
/* INSERT INTO target (cols) SELECT cols FROM "tmp": the insert_from both dialects start from. */
void dialect_insert_select(struct buf *b, const char *target, const char *tmp, const char *const *cols, size_t n);
/* The CREATE TABLE shapes both dialects here share (create_table_like/_columns slots). */
void dialect_create_table_like(struct buf *b, const char *rel, const char *like);
void dialect_create_table_columns(struct buf *b, const char *rel, const char *const *names,
				  const char *const *types, size_t n);

/*
 * The tag session_tag sets, and that a dialect's queries over the
 * warehouse's log filter on: "sluice run=<invocation id> user=<user>".
 */
#define DIALECT_TAG_PREFIX "sluice run="
void dialect_session_tag_text(struct buf *b, const char *invocation_id, const char *user);

#endif
