/*
 * manifest.h: the project turned into nodes with final config, relations
 * and dependencies. It parses every model template, applies in-file
 * config(), resolves ref()/source() into DAG edges and checks for cycles.
 * It also renders ("compiles") a node's SQL with the relations filled in.
 *
 * Not here: talking to databases, deciding what to build, or running.
 * After manifest_build everything is read-only, so worker threads may call
 * manifest_compile concurrently with their own scratch arenas.
 */
#ifndef SLUICE_MANIFEST_H
#define SLUICE_MANIFEST_H

#include <stddef.h>
#include "../connectors/connector.h"
#include "dag.h"
#include "macros.h"
#include "project.h"
#include "template.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/strmap.h"

enum node_type { NODE_MODEL, NODE_SOURCE, NODE_TEST };

/*
 * The warehouse as templates read it (run_query, statement,
 * adapter.get_columns_in_relation), given by the session. query runs sql
 * read-only on connection conn and gives fn each row; it may be called
 * from any thread.
 */
struct render_db {
	int (*query)(const struct render_db *db, const char *conn, const char *sql,
		     int (*fn)(void *ud, const struct sluice_row *row), void *ud, struct sluice_err *err);
};

struct datatest;

/* The materializations; names in mat_names[] (manifest.c). */
enum materialization { MAT_VIEW, MAT_TABLE, MAT_INCREMENTAL, MAT_EPHEMERAL, MAT_UNLOAD, MAT_LOAD, MAT_SHELL,
		       MAT_SEED, MAT_SNAPSHOT, MAT__COUNT };

struct node {
	size_t idx;
	enum node_type type;
	const char *unique_id;
	const char *name;
	struct model *model;           /* NODE_MODEL */
	struct source_table *source;   /* NODE_SOURCE */
	struct datatest *test;         /* NODE_TEST (datatest.h) */
	struct tpl *tpl;               /* NODE_MODEL, and singular NODE_TEST */
	struct val config;             /* final config: folder < properties < config() */
	struct val config_pos;         /* key -> [line, col] of the config() call that set it */
	enum materialization mat;
	const char *mat_name;
	const char *schema;            /* relation schema (custom schemas: <target>_<custom>);
	                                  tests: the audit schema with store_failures, else NULL */
	const char *identifier;        /* relation name (alias or model name) */
	const char *relation;          /* quoted "schema"."identifier" */
	const char *display;           /* schema.identifier, for people */
	const char *connection;        /* connection name ("default") */
	const char **tags;
	size_t ntags;
	struct dag_node_info info;     /* for selection */
};

struct manifest {
	struct project *project;
	struct node *nodes;            /* sources first, then models, as in the project, then tests */
	size_t n;
	struct dag *dag;
	struct strmap by_name;         /* model name -> node */
	struct strmap by_source;       /* "source.table" -> node */
	struct val target;             /* the `target` template variable */
	struct macro_set macros;       /* the project's, its packages' and dbt's macros */
	const struct render_db *db;    /* set by the session; NULL: templates cannot read the warehouse */
	const char *run_started_at;    /* "YYYY-MM-DD HH:MM:SS.ffffff", set by the session */
	struct strmap depends_on_refs; /* private: "path:line:col" of each ref() inside config() */
	struct strmap disabled;        /* private: name -> struct model * of each disabled model */
};

/*
 * Build; errors are SLUICE_EUSAGE with file:line:col (cycles list the path).
 * With p->errors, the errors of each model, test, ref() and source() are
 * added there and the build goes on: it returns 0 then, and the caller
 * checks the list.
 */
int manifest_build(struct manifest *m, struct project *p, struct sluice_err *err);
void manifest_release(struct manifest *m);

struct node *manifest_node(const struct manifest *m, const char *name);

/* What compiling a node needs to know about the world. */
struct compile_opts {
	int is_incremental;            /* value of is_incremental() */
	const char *invocation_id;     /* for the invocation_id variable, or NULL */
	/*
	 * Name relations logically (ref('x'), source('s', 't'), this) instead
	 * of by schema: the form fingerprints hash, so a change of target
	 * schema is a config change, not a code change.
	 */
	int logical;
	/*
	 * The `watermark` variable of an unload feeding a load with
	 * `watermark:`: a quoted SQL literal, or NULL (renders NULL).
	 */
	const char *watermark;
};

/*
 * Render node n's SQL into out: refs to built models become their quoted
 * relations, refs to ephemeral models become CTEs injected at the top.
 * A shell model renders to its script, relations escaped for use inside a
 * double-quoted shell word (see shell_escape_dq).
 * Values read through var()/env_var() are recorded in *used (a dict in
 * scratch) when used is not NULL. Thread-safe for distinct scratch arenas.
 */
int manifest_compile(const struct manifest *m, const struct node *n, const struct compile_opts *o,
		     struct arena *scratch, struct buf *out, struct val *used, struct sluice_err *err);

/*
 * Node n as a FROM clause reads it: its quoted relation, or, for an
 * ephemeral model (which has none), its compiled query in parentheses, the
 * ephemeral models it reads inlined as CTEs. With o->logical, relations
 * are named logically (ref('x')), for fingerprints. Appends to out.
 */
int manifest_read_sql(const struct manifest *m, const struct node *n, const struct compile_opts *o,
		      struct arena *scratch, struct buf *out, struct sluice_err *err);

/* Render an arbitrary template string (hooks) in node n's context (n may be NULL). */
int manifest_render_string(const struct manifest *m, const struct node *n, const char *what,
			   const char *src, const struct compile_opts *o, struct arena *scratch,
			   struct buf *out, struct sluice_err *err);

#endif
