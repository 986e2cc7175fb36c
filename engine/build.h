/*
 * build.h: preparing and running the selected models, shared by the
 * commands that build (run, plan, compile). Preparation looks up which
 * relations exist (one catalog query per connection), loads the state,
 * reads the versions of sources and built relations (one batched query
 * per connection), compiles each node, plans its statements and writes
 * target/compiled and target/run. Execution creates schemas, runs
 * on-run-start, then the DAG, where each node decides right before it
 * would run whether it must (its parents are final by then, which is what
 * lets early cutoff work), then on-run-end.
 */
#ifndef SLUICE_BUILD_H
#define SLUICE_BUILD_H

#include <jansson.h>
#include <pthread.h>
#include "../connectors/connector.h"
#include "dialect.h"
#include "executor.h"
#include "fingerprint.h"
#include "materialize.h"
#include "sources.h"
#include "state.h"
#include "session.h"
#include "util/strmap.h"

struct node_run {
	struct plan plan;
	enum rel_kind existing;
	int failed_early;              /* compile/plan failed: err says why */
	struct sluice_err err;
	enum exec_status status;
	double compile_started, compile_done, started, finished;
	long long rows;
	int thread_id;
	int seq;
	/* fingerprints */
	char *logical_sql;             /* heap; NULL for sources */
	struct val used_vars;          /* in the build arena */
	struct fp fp;                  /* computed when the node is decided */
	struct fp_decision decision;
	int decided;
	char effective[FP_HEX];        /* what children see: "" until known */
	char *output_checksum;         /* cutoff: checksum of the built output (heap) */
	char *relation_version;        /* stats version right after it was built (heap) */
	/* stages (build-stage.c) */
	char *watermark;               /* unload: the literal {{ watermark }} renders (heap), or NULL */
	int no_watermark;              /* unload: send everything this time (its query changed) */
	char *stage_generation;        /* unload: "<model>/<invocation_id>/" it wrote (heap) */
	int stage_delta;               /* unload: only rows past a watermark */
	char *loaded_generation;       /* load: the generation it loaded (heap) */
	struct val validations;        /* list of {name, expected, actual, status} (worker arena) */
	/* shell models (build-shell.c) */
	char *script;                  /* the rendered script (heap) */
	struct val inputs;             /* input files when decided: path -> {size, mtime_ns, hash} (fileset.h) */
	struct val outputs;            /* declared outputs on disk: when decided, then after the run */
	size_t rehashed;               /* files the last scan had to read */
};

struct conn_slot {                     /* one per target connection */
	const struct sluice_connector *drv;
	const struct dialect *dialect;
	struct sluice_conn *main;      /* the main thread's connection, or NULL */
};

enum build_mode { BUILD_OFFLINE, BUILD_PLAN, BUILD_RUN };

/* What build_prepare_nodes runs: models (run), data tests (test), both (build). */
enum {
	BUILD_MODELS = 1,
	BUILD_TESTS = 2,
	BUILD_NO_COMBINE = 4,          /* one query per test, no shared scans (--no-combine) */
};

struct build_tests;                    /* build-tests.c */

struct build {
	struct session *s;
	enum build_mode mode;
	struct arena arena;            /* main thread only */
	struct arena *worker_arenas;   /* one per worker */
	struct state *state;
	struct val records;            /* unique_id -> previous state record */
	struct strmap record_index;    /* the same, hashed: dicts look up linearly */
	struct strmap dirs;            /* target/ directories seen: 1 existed, 2 made by this run */
	pthread_mutex_t dirs_lock;
	struct arena dir_arena;        /* keys of dirs (under dirs_lock) */
	struct source_versions versions;
	struct node_run *runs;         /* per manifest node */
	unsigned char *todo;           /* per node: run it */
	int ntodo;
	struct conn_slot *slots;       /* per project->target.conns */
	struct strmap relations;       /* "schema.ident" -> (enum rel_kind + 1) */
	struct sluice_conn ***worker_conns;   /* [worker][slot] */
	int threads;
	struct executor ex;
	double finished_at;
	int ok, errors, skipped, reused;
	unsigned what;                 /* BUILD_MODELS | BUILD_TESTS | ... */
	int nseq;                      /* progress lines numbered so far */
	struct build_tests *tests;     /* tests of this run (build-tests.c), or NULL */
	/* What the executor walks: the manifest's DAG and todo, or build-tests.c's (with scan jobs). */
	const struct dag *exec_dag;
	unsigned char *exec_todo;
};

/*
 * Decide what runs, compile and plan it. BUILD_RUN also takes the state
 * lock (SLUICE_ELOCK when held). Connection errors: SLUICE_ECONN.
 */
int build_prepare(struct build *b, struct session *s, enum build_mode mode, struct sluice_err *err);
/* The same for models, tests or both (what: BUILD_* flags); build_prepare is BUILD_MODELS. */
int build_prepare_nodes(struct build *b, struct session *s, enum build_mode mode, unsigned what,
			struct sluice_err *err);
/* BUILD_PLAN: decide every selected node without running anything (runs[i].decision). */
void build_plan(struct build *b);
/* Run it. Returns 0, SLUICE_EDB (some node failed), SLUICE_ECANCEL or a hook/connection error. */
int build_execute(struct build *b, struct sluice_err *err);
void build_release(struct build *b);

/* For build-*.c: the node's state record from the last run, or NULL. */
const struct val *build_prev_record(const struct build *b, size_t idx);
/* The index of connection `conn` in project->target.conns. */
size_t build_slot_of(const struct project *p, const char *conn);
/* sluice_row_fn keeping the first value of the first row (heap) in *(char **)ud. */
int build_first_value(void *ud, const struct sluice_row *row);

/* build-stage.c: unload and load models. */
struct build_stage_job {
	struct build *b;
	struct exec_worker *w;
	size_t idx;
};
/* Before compiling: an unload's watermark (sets o); a load's input is checked. */
int build_stage_prepare(struct build *b, struct node *n, struct compile_opts *o, struct sluice_err *err);
/* What the transfer does, for target/run. */
void build_stage_describe(const struct build *b, const struct node *n, const char *sql, struct buf *out);
/* Whether the generation an unload last wrote is still in the stage. */
int build_stage_exists(struct build *b, const struct node *n);
/* plan_runtime.stage; ud is a struct build_stage_job. */
int build_stage_run(void *ud, const struct plan *p, struct sluice_conn *c, long long *rows, struct sluice_err *err);
/* Whether a load appends/merges (its input is a delta, or it has a unique_key) rather than replaces. */
int build_stage_load_incremental(const struct build *b, const struct node *n);
/* A load whose input is a delta it has already loaded: nothing to do. */
int build_stage_nothing_new(const struct build *b, const struct node *n);
/*
 * For the jobs of other node kinds (build-shell.c). Thread-safe for
 * distinct nodes, like job_run.
 */
/* The node's previous state record, or NULL. */
const struct val *build_prev_record(const struct build *b, size_t idx);
/* Fingerprint node idx and decide build or reuse (runs[idx].fp, .decision). */
void build_decide(struct build *b, size_t idx, struct arena *a);
/* Write the state record of a node that just ran ("success", "error", "cancelled"). */
void build_put_record(struct build *b, size_t idx, const char *status, struct arena *a);
/* Worker w's connection of that name, opened on first use, and its dialect (if dialect is not NULL). */
struct sluice_conn *build_worker_conn(struct build *b, struct exec_worker *w, const char *connection,
				      const struct dialect **dialect, struct sluice_err *err);
/* Write target/<dir>/<path>, only when its content changed; a failure is a warning. */
void build_write_target_file(struct build *b, const char *dir, const char *path, const char *text);

/* Shell models (build-shell.c): render and write the script; scan its files into ctx; run it. */
int build_shell_prepare(struct build *b, struct node *n);
void build_shell_scan(struct build *b, size_t idx, struct arena *a, struct fp_context *ctx);
int build_shell_job(struct build *b, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err);

/* Open the connection named `name` of the session's target. */
int build_connect(struct session *s, const char *name, struct sluice_conn **out,
		  const struct dialect **dialect, struct sluice_err *err);

/* After a connection error: close w's connection for slot, so the next job reconnects. */
void build_drop_worker_conn(struct build *b, struct exec_worker *w, size_t slot);
/* The leading comment of every statement a node sends. */
void build_audit_comment(struct build *b, const struct node *n, struct buf *out);

/* ---- build-tests.c: data tests inside the run (docs/data-tests.md) ---- */

/*
 * Select the tests (a test runs when selected itself or when a model or
 * source it reads is selected, unless --exclude names it), compile them
 * and make the DAG the executor walks: the manifest's, plus one scan job
 * per relation whose tests share a pass, plus (when models run too) edges
 * from each test to the models downstream of what it tests, so a failing
 * test skips them.
 */
int build_tests_prepare(struct build *b, struct sluice_err *err);
/* Mark in want the sources and relations whose versions tests' fingerprints read. */
void build_tests_want_versions(const struct build *b, unsigned char *want);
/* Job callbacks for exec-DAG nodes that are tests or scan jobs (build_tests_owns). */
int build_tests_owns(const struct build *b, size_t idx);
int build_tests_run(struct build *b, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err);
const char *build_tests_job_name(const struct build *b, size_t idx);
/* A test node finished (b->runs[idx] is up to date): print its line and count it. Executor lock held. */
void build_tests_finished(struct build *b, size_t idx, enum exec_status st);
/* Counts for the summary line. */
void build_tests_counts(const struct build *b, int *pass, int *warn, int *fail, int *error, int *skipped,
			int *reused);
/* Add a test's fields (status, failures, samples, ...) to its run_results entry o. */
void build_tests_result_json(const struct build *b, size_t idx, json_t *o);
void build_tests_release(struct build *b);

#endif
