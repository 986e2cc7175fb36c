/*
 * materialize.h: each materialization as a plan of steps, built without a
 * connection (so `compile` can write target/run) and executed on one.
 *
 * Every plan that changes a relation runs in one transaction: a reader
 * sees the old relation or the new one, never a half-built or missing one,
 * and a failure leaves the old one in place. Tables and views are built
 * under a side name and swapped in; views that depend on the swapped
 * relation are captured and re-created inside the same transaction.
 */
#ifndef SLUICE_MATERIALIZE_H
#define SLUICE_MATERIALIZE_H

#include <stddef.h>
#include "../connectors/connector.h"
#include "dialect.h"
#include "manifest.h"
#include "util/buf.h"
#include "util/err.h"

enum step_op {
	STEP_SQL,            /* run sql */
	STEP_CAPTURE,        /* remember the views depending on plan->target */
	STEP_RECREATE,       /* re-create the captured views */
	STEP_APPLY,          /* incremental: move rows from plan->tmp into plan->target */
	STEP_STAGE,          /* unload, or load into plan->stage_into: the caller's runtime (sql: what it does, for people) */
};

struct step {
	enum step_op op;
	char *sql;           /* STEP_SQL: owned */
	int counts_rows;     /* this step's row count is the node's */
};

struct plan {
	struct step *steps;
	size_t n, cap;
	const struct dialect *dialect;
	const char *audit;         /* leading comment for every statement (owned copy) */
	char *target;              /* quoted relation */
	char *schema, *ident;      /* unquoted parts of target */
	char *tmp;                 /* incremental scratch table (unquoted) */
	char *strategy;            /* append | delete+insert | merge */
	char **keys;               /* quoted unique_key columns */
	size_t nkeys;
	char *stage_into;          /* load: the quoted relation STEP_STAGE fills */
	int stage_create;          /* load: STEP_STAGE creates stage_into (else it exists) */
};

/* What STEP_STAGE does: the stage transfer, on c, inside the plan's transaction for loads. */
struct plan_runtime {
	int (*stage)(void *ud, const struct plan *p, struct sluice_conn *c, long long *rows, struct sluice_err *err);
	void *ud;
};

struct plan_input {
	const struct node *node;
	const struct dialect *dialect;
	const char *sql;           /* the compiled SELECT */
	enum rel_kind existing;    /* what exists now at the node's relation */
	int incremental;           /* run the incremental path (target exists, no full refresh) */
	const char *audit;         /* "/ * sluice run=... * /" comment */
	const char *const *pre_hooks, *const *post_hooks;   /* rendered */
	size_t npre, npost;
	const char *stage_text;    /* unload/load: what the transfer does, for target/run */
};

/*
 * For kinds that write their own statements (snapshots): an empty plan
 * for node n, its target and audit set; then its steps, in order.
 * plan_add_stage adds a STEP_STAGE whose rows are the node's, text saying
 * what it does. p is released with plan_release.
 */
void plan_init(struct plan *p, const struct node *n, const struct dialect *d, const char *audit);
void plan_add_sql(struct plan *p, const char *sql, int counts_rows);
void plan_add_stage(struct plan *p, const char *text);

/* Build the plan; SLUICE_EUSAGE for bad config (e.g. merge without unique_key). */
int plan_build(const struct plan_input *in, struct plan *out, struct sluice_err *err);
void plan_release(struct plan *p);

/* The statements as text, runtime steps as comments: target/run/<path>. */
void plan_write(const struct plan *p, struct buf *out);

/*
 * Run the plan on c. On failure, rolls back and returns the error (the old
 * relation is untouched). *rows gets the counting step's rows, or -1.
 * rt runs STEP_STAGE (may be NULL for plans without one).
 */
int plan_exec(const struct plan *p, struct sluice_conn *c, const struct plan_runtime *rt, long long *rows,
	      struct sluice_err *err);

/* Name of the side table for a relation identifier: "<ident>__sluice_<what>", kept under 63 bytes. */
char *plan_side_name(const char *ident, const char *what);

#endif
