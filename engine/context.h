/*
 * context.h: the names and functions dbt gives a template beyond ref,
 * source and config, which manifest.c answers: relations as objects,
 * `model`, `execute`, `run_started_at`, `log`, `print`, `exceptions`,
 * `modules.datetime` and `modules.re`, `builtins`, `graph`, `tojson`,
 * `fromjson`, `fromyaml`, `config.get` and `config.require`.
 *
 * And those that read the warehouse, through the session's render_db:
 * run_query, statement blocks and load_result, adapter.get_relation,
 * load_relation, adapter.get_columns_in_relation. What they read is
 * recorded among the render's inputs, so a changed answer rebuilds.
 */
#ifndef SLUICE_CONTEXT_H
#define SLUICE_CONTEXT_H

#include "template.h"
#include "value.h"

struct manifest;
struct node;

/*
 * A logical render (for a fingerprint) names relations logically, so it
 * cannot run its queries: it takes, in order, the answers a physical
 * render of the same node got. run() makes that render the first time an
 * answer is needed; it fills answers, recording, with each query's
 * {table, data, hash}.
 */
struct query_replay {
	struct val answers;
	size_t next;
	int recording, done;
	int (*run)(struct query_replay *rp, struct sluice_err *err);
	void *ud;
};

struct context {
	const struct manifest *m;
	const struct node *node;       /* `model` and config.get: the node rendered, or NULL */
	int logical;                   /* rendering for a fingerprint: no clock, no randomness */
	const char *started_at;        /* run_started_at, "YYYY-MM-DD HH:MM:SS.ffffff+00:00" */
	struct err_list *warnings;     /* where exceptions.warn goes, or NULL */
	const char *conn;              /* the connection queries go to */
	struct val *used;              /* the render's inputs (fingerprints), or NULL */
	struct val *results;           /* statement results by name, for load_result (a dict), or NULL */
	struct query_replay *replay;   /* or NULL: queries run as asked */
};

/*
 * A relation as templates see it: it prints as rendered and has
 * .database, .schema, .identifier, .name, .table, .include() and
 * .render(). Strings are borrowed.
 */
struct val context_relation(struct arena *a, const char *database, const char *schema, const char *identifier,
			    struct val rendered);

/* The node as dbt's `model` (and generate_schema_name's `node`) shows it. */
struct val context_node(const struct manifest *m, const struct node *n, struct arena *a);

/* 0 and *out, 1 when the name is not one of these, or an error. */
int context_call(const struct context *cx, const struct tpl_call *c, struct val *out, struct sluice_err *err);
int context_lookup(const struct context *cx, const char *name, struct arena *a, struct val *out);

#endif
