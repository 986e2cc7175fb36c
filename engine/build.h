/*
 * build.h: the orchestrator shared by the commands that build (run, build,
 * test, plan, compile). Preparation selects the nodes, takes the state
 * lock, looks up which relations exist (one catalog query per
 * connection), loads the state, compiles and plans each node through its
 * kind (kind.h), and reads the versions of sources and built relations
 * (one batched query per connection). Execution creates schemas, runs
 * on-run-start, then the DAG, where each node decides right before it
 * would run whether it must (its parents are final by then, which is what
 * lets early cutoff work), then on-run-end.
 *
 * It schedules, decides and records; what a node does is its kind's.
 * It never asks which kind a node is.
 */
#ifndef SLUICE_BUILD_H
#define SLUICE_BUILD_H

#include <jansson.h>
#include <pthread.h>
#include "conn.h"
#include "executor.h"
#include "fingerprint.h"
#include "kind.h"
#include "materialize.h"
#include "sources.h"
#include "state.h"
#include "session.h"
#include "util/strmap.h"

/* What one node did in this run. Written by the worker that runs it (see kind.h). */
struct node_run {
	const struct node_kind *kind;
	struct plan plan;              /* the statements it sends (kinds that send a plan) */
	enum rel_kind existing;        /* what the catalog had at its relation */
	int failed_early;              /* compile/plan failed: err says why */
	struct sluice_err *err;        /* why it failed (heap), NULL until run_err() makes it */
	enum exec_status status;
	double compile_started, compile_done, started, finished;
	long long rows;
	const char *note;              /* said after the rows on a success line, e.g. "3 streams"; borrowed from the kind */
	int thread_id;
	int seq;
	/* fingerprints */
	char *logical_sql;             /* heap; NULL for sources */
	struct val used_vars;          /* in the build arena */
	struct val inputs;             /* files it reads: path -> {size, mtime_ns, hash} (fileset.h), or none */
	struct fp fp;                  /* computed when the node is decided */
	struct fp_decision decision;
	int decided;
	char effective[FP_HEX];        /* what children see: "" until known */
	char *output_checksum;         /* cutoff: checksum of the built output (heap) */
	char *relation_version;        /* stats version right after it was built (heap) */
	struct val validations;        /* list of {name, expected, actual, status} (worker arena) */
	void *kind_data;               /* the kind's own; its release slot frees it */
	struct val reused_from;        /* reused from another environment (reuse.h): {target, mode, ...}, else none */
	const struct val *reused_record; /* and that environment's record of the node (the build's arena) */
};

enum build_mode { BUILD_OFFLINE, BUILD_PLAN, BUILD_RUN };

/* What build_prepare_nodes runs: models (run), data tests (test), seeds (seed), snapshots (snapshot), all (build). */
enum {
	BUILD_MODELS = 1,
	BUILD_TESTS = 2,
	BUILD_NO_COMBINE = 4,          /* one query per test, no shared scans (--no-combine) */
	BUILD_SEEDS = 8,               /* seeds (seed, build) */
	BUILD_SNAPSHOTS = 16,          /* snapshots (snapshot, build) */
	/* the kinds that build relations children read: fingerprinted, counted in the summary */
	BUILD_RELATIONS = BUILD_MODELS | BUILD_SEEDS | BUILD_SNAPSHOTS,
};

struct build {
	struct session *s;
	enum build_mode mode;
	struct arena arena;            /* main thread only */
	struct arena *worker_arenas;   /* one per worker */
	struct state *state;
	struct val records;            /* unique_id -> previous state record */
	struct strmap record_index;    /* the same, hashed: dicts look up linearly */
	struct strmap dirs;            /* target/ directories seen: 1 existed, 2 made by this run */
	pthread_mutex_t dirs_lock;     /* guards dirs and dir_arena */
	struct arena dir_arena;        /* keys of dirs */
	struct target_writer *writer;  /* target/ files written behind the main thread while preparing */
	struct source_versions versions;
	struct node_run *runs;         /* per manifest node */
	unsigned char *todo;           /* per node: EXEC_RUN, EXEC_PASS or 0 */
	int ntodo;
	struct conn_pool conns;
	struct strmap relations;       /* "schema.ident" -> (enum rel_kind + 1) */
	int threads;
	struct executor ex;
	int executed;                  /* build_execute was called: there are results to report */
	double finished_at;
	int ok, errors, skipped, reused;
	unsigned what;                 /* BUILD_MODELS | BUILD_TESTS | ... */
	int nseq;                      /* progress lines numbered so far */
	void **kind_data;              /* per node_kinds[] entry: its run-wide data */
	/* What the executor walks: the manifest's DAG and todo, or one a kind's link slot made. */
	const struct dag *exec_dag;
	unsigned char *exec_todo;
	const struct node_kind *extra_owner;   /* whose jobs the exec DAG's nodes past the manifest's are */
	struct reuse_env *reuse_envs;  /* the environments this run may reuse from, in order (reuse.c) */
	size_t nreuse_envs;
	int reuse_copy;                /* reuse_mode: copy */
};

/*
 * Decide what runs, compile and plan it. BUILD_RUN also takes the state
 * lock (SLUICE_ELOCK when held). Connection errors: SLUICE_ECONN.
 * what: BUILD_* flags; build_prepare is BUILD_MODELS.
 */
/*
 * Open the state of s's project and target as a build does (sluice.yml
 * `state:`), without taking the lock: for commands that read or add
 * records of their own (sluice schedule). state_close() it.
 */
int build_state_open(struct session *s, struct state **out, struct sluice_err *err);
/*
 * The same for another target of the project, in the same store, reached
 * through this target's connection and s3: settings (sluice cache prune).
 */
int build_state_open_target(struct session *s, const char *target, struct state **out, struct sluice_err *err);
int build_prepare(struct build *b, struct session *s, enum build_mode mode, struct sluice_err *err);
int build_prepare_nodes(struct build *b, struct session *s, enum build_mode mode, unsigned what,
			struct sluice_err *err);
/* BUILD_PLAN: decide every selected node without running anything (runs[i].decision). */
void build_plan(struct build *b);
/*
 * Run it. Returns 0, SLUICE_EDB (some node failed, a failed state write
 * included), SLUICE_ECANCEL, or a hook, connection or state error.
 */
int build_execute(struct build *b, struct sluice_err *err);
/* Print the summary lines: the models', then each kind's own. */
void build_summary(const struct build *b, double elapsed);
/* Add node idx's kind's fields to its run_results entry o. */
void build_result_json(const struct build *b, size_t idx, json_t *o);
/*
 * A node's error record: 2 KB that most nodes never need, so it is made
 * on first use. run_err() gives it for writing; run_err_code() and
 * run_err_msg() read it as 0 and "" while there is none. A node's record
 * is touched only by whoever runs or prepares the node.
 */
struct sluice_err *run_err(struct node_run *r);
int run_err_code(const struct node_run *r);
const char *run_err_msg(const struct node_run *r);

/* Free what the build holds (not its session); a second call does nothing. */
void build_release(struct build *b);

/* ---- for the kinds (kind-*.c) ---- */

/* The node's state record from the last run, or NULL. */
const struct val *build_prev_record(const struct build *b, size_t idx);
/* The run-wide data of kind k (kind.h begin/end), as a settable slot. */
void **build_kind_data(const struct build *b, const struct node_kind *k);
/* The executor walks dag (nodes past the manifest's run through owner's extra_run). Main thread. */
void build_set_exec_dag(struct build *b, const struct dag *dag, unsigned char *todo, const struct node_kind *owner);
/* Worker w's arena: freed at the end of the build. */
struct arena *build_worker_arena(struct build *b, const struct exec_worker *w);
/* The dialect of node n's connection. */
const struct dialect *build_dialect(const struct build *b, const struct node *n);
/* Worker w's connection for node n, opened on first use. Worker w's thread only (conn.h). */
struct sluice_conn *build_worker_conn(struct build *b, struct exec_worker *w, const struct node *n,
				      struct sluice_err *err);
/* The main thread's connection for node n. Main thread only (conn.h). */
struct sluice_conn *build_main_conn(struct build *b, const struct node *n, struct sluice_err *err);
/*
 * A script that creates node idx's relation exited: wait (bounded) until
 * its sessions, named app, are gone, then record the relation's
 * statistics version, so that a later write outside sluice shows. Worker
 * thread of c.
 */
void build_script_wrote(struct build *b, size_t idx, struct sluice_conn *c, const char *app);
/* The leading comment of every statement node n sends. */
void build_audit_comment(const struct build *b, const struct node *n, struct buf *out);
/*
 * Write target/<dir>/<path>, only when its content changed; a failure is
 * a warning. Thread-safe. While the build prepares, the file is written
 * by a thread of its own (text is copied), and build_flush_target waits
 * for it: the executor starts only once target/ is whole.
 */
void build_write_target_file(struct build *b, const char *dir, const char *path, const char *text);
/* Wait until every target/ file asked for is written; later ones are written at once. Main thread. */
void build_flush_target(struct build *b);
/*
 * Compile node idx with o and plan its statements (incremental: the
 * incremental path), and write target/compiled and target/run. describe,
 * when not NULL, says in words what the plan's stage step does. Sets
 * runs[idx].err on failure. No I/O on a connection: thread-safe for
 * distinct nodes.
 */
int build_plan_node(struct build *b, size_t idx, const struct compile_opts *o, int incremental,
		    void (*describe)(const struct build *b, const struct node *n, const char *sql, struct buf *out));
/*
 * The fingerprint node idx shows its children now: what it passed on when
 * it ran or was settled, or, for a live node (a view, an ephemeral model)
 * not run, what it reads now. Worker, once idx's parents are final.
 */
const char *build_effective(const struct build *b, size_t idx, struct arena *a);
/*
 * Node idx, running on worker w, lets its children start now (they read
 * its output as it comes; executor.h exec_release_children): what it
 * passes on is settled first, as if it had succeeded. Worker.
 */
void build_release_children(struct build *b, struct exec_worker *w, size_t idx);
/* The default effective fingerprint (kind.h effective). */
void build_set_effective(struct build *b, size_t idx);
/*
 * The statistics version of schema.ident now, read on c (heap), or NULL
 * when the dialect has none, the relation has none (a view) or the query
 * failed.
 */
char *build_relation_version(const struct dialect *d, struct sluice_conn *c, const char *schema, const char *ident);
/*
 * Run node idx's plan on worker w's connection; rt runs its STEP_STAGE.
 * Then, unless its kind writes no relation, record the version of what it
 * built and (cutoff: checksum) its checksum. Worker.
 */
int build_run_plan(struct build *b, struct exec_worker *w, size_t idx, const struct plan_runtime *rt,
		   struct sluice_err *err);

#endif
