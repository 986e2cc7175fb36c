/*
 * kind.h: the node-kind interface. Every kind of node a build runs (SQL
 * models, shell models, unloads, loads, data tests) is a const struct of
 * slots; one table (kind.c) maps a node to its kind. The orchestrator
 * (build.c) schedules, decides and records through these slots and never
 * asks which kind it holds: a NULL slot means "not applicable" or "the
 * default", as each slot says.
 *
 * Threads: slots marked "main thread" run before or after the executor,
 * with no worker running. Slots marked "worker" run on the worker that
 * runs the node, concurrently with other workers running other nodes;
 * they may read what finished nodes left (the executor's lock orders a
 * parent's end before its children's start) and write only their own
 * node's struct node_run. Slots marked "locked" run with the executor's
 * lock held: keep them short.
 *
 * Adding a kind: write engine/kind-<name>.c with its const struct
 * node_kind, declare it below, and add one line to node_kind_of()'s table
 * in kind.c. docs/architecture.md walks through it.
 */
#ifndef SLUICE_KIND_H
#define SLUICE_KIND_H

#include <jansson.h>
#include <stddef.h>
#include "executor.h"
#include "fingerprint.h"
#include "manifest.h"

struct buf;
struct build;

enum {
	KIND_PASS = 1,          /* never runs: children wait for its parents (ephemeral) */
	KIND_LIVE = 2,          /* re-evaluated on every read: passes on what it reads now (view, ephemeral) */
	KIND_NO_RELATION = 4,   /* writes nothing in the warehouse (unload): no schema, no relation version */
	KIND_RECORDS_RESULT = 8,/* its state record is its last result, so a failure to compile is recorded too */
	KIND_INCREMENTAL = 16,  /* runs the incremental path when its relation exists and no full refresh is asked */
	KIND_OWN_SESSIONS = 32, /* its job may open sessions of its own (a script's): the connection budget counts them */
	KIND_SHAREABLE = 64,    /* its relation may be a view over another environment's (reuse.h) */
	KIND_COPYABLE = 128,    /* or a copy of it, made in the database (reuse.h) */
	KIND_REMADE = 256,      /* or made again over this target's own relations, as cheap (a view; reuse.h) */
	KIND_ADOPTS = 512,      /* or taken over by its adopt slot alone: nothing to view or copy (reuse.h) */
};

struct node_kind {
	const char *name;       /* for messages and docs only: never compared */
	unsigned flags;         /* KIND_* */
	unsigned what;          /* which commands run it: BUILD_MODELS or BUILD_TESTS (build.h) */

	/* ---- the run as a whole (main thread) ---- */

	/* Before nodes are selected: set up the kind's run-wide data (build_kind_data). */
	int (*begin)(struct build *b, struct sluice_err *err);
	/* Whether node idx runs in this command (NULL: it was selected). */
	int (*selected)(struct build *b, size_t idx);
	/* After every node is prepared: what the kind adds to the executor's DAG (build_set_exec_dag). */
	int (*link)(struct build *b, struct sluice_err *err);
	/* Its lines in the summary at the end of the command (NULL: counted with the models). */
	void (*summary)(const struct build *b, double elapsed);
	/* Free the run-wide data. */
	void (*end)(struct build *b);
	/* Executor jobs the kind added beyond the manifest's nodes (job k of them): run and name them. Worker. */
	int (*extra_run)(struct build *b, struct exec_worker *w, size_t k, int *reused, struct sluice_err *err);
	const char *(*extra_name)(const struct build *b, size_t k);

	/* ---- one node ---- */

	/*
	 * Main thread: compile and plan node idx, write target/compiled and
	 * target/run. On failure set runs[idx].err and return non-zero: the
	 * node then fails when its turn comes, without running. A KIND_PASS
	 * node's is called too when it is selected, for target/ alone.
	 */
	int (*prepare)(struct build *b, size_t idx);
	/* Main thread: mark in want the nodes whose versions its decision reads, beyond its source parents. */
	void (*wants)(const struct build *b, size_t idx, unsigned char *want);
	/*
	 * Worker, before the fingerprint: what it reads besides SQL (files
	 * into runs[idx].inputs) and what the decision should know (ctx). An
	 * error goes to runs[idx].err and fails the node.
	 */
	void (*reads)(struct build *b, size_t idx, struct arena *a, struct fp_context *ctx);
	/* Worker: whether what it built last time is still there (NULL: its relation is in the catalog). */
	int (*exists)(struct build *b, size_t idx);
	/* Worker: decide build or reuse on its own terms (NULL: the fingerprint rule, docs/fingerprints.md). */
	void (*decide)(struct build *b, size_t idx, struct arena *a);
	/*
	 * Worker, reuse across environments (reuse.h): theirs is another
	 * environment's record of node idx, built with the fingerprint it
	 * would build now. apply 0: whether what the node keeps beyond its
	 * relation (a stage generation, a loaded delta) can serve this target
	 * too; if not, why says so and it returns 0. apply 1: take it over,
	 * before the relation is made a view or a copy (a KIND_NO_RELATION
	 * kind has none: this is all its reuse). NULL: nothing but the relation.
	 */
	int (*adopt)(struct build *b, size_t idx, const struct val *theirs, int apply, struct buf *why);
	/* KIND_ADOPTS: what adopt takes over, as the mode its reused_from records ("stage", "files") */
	const char *adopted;
	/* Worker: a reused node's bookkeeping (NULL: nothing). */
	void (*reuse)(struct build *b, size_t idx, struct arena *a);
	/* Worker: build it. Set runs[idx].rows. Return 0 or a negative code with err set. */
	int (*run)(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err);
	/* Worker: what its children see, after it ran (built) or was reused (NULL: build_set_effective). */
	void (*effective)(struct build *b, size_t idx, int built);
	/* Worker: add its own fields to its state record; ok: it ran and succeeded (it may overwrite status). */
	void (*record)(struct build *b, size_t idx, int ok, struct val *rec, struct arena *a);
	/* Worker, once it knows it will build: print the START line (NULL: the model line). */
	void (*started)(struct build *b, size_t idx);
	/* Locked: print its line and count it (NULL: the model line and counts). */
	void (*finished)(struct build *b, size_t idx, enum exec_status st);
	/* Main thread: add its fields to its run_results.json entry. */
	void (*result)(const struct build *b, size_t idx, json_t *o);
	/* Free runs[idx].kind_data. */
	void (*release)(struct build *b, size_t idx);
};

/* The kinds: kind-sql.c, kind-shell.c, kind-stage.c, kind-datatest.c, kind-seed.c, kind-snapshot.c. */
extern const struct node_kind kind_view, kind_table, kind_incremental, kind_ephemeral;
extern const struct node_kind kind_shell, kind_unload, kind_load, kind_datatest, kind_source;
extern const struct node_kind kind_seed, kind_snapshot;

/* The kind of node n (kind.c: the one table). */
const struct node_kind *node_kind_of(const struct node *n);
/* Every kind, for the run-wide slots: node_kinds[0 .. node_kinds_n - 1]. */
extern const struct node_kind *const node_kinds[];
extern const size_t node_kinds_n;

#endif
