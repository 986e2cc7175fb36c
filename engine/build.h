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

/* Open the connection named `name` of the session's target. */
int build_connect(struct session *s, const char *name, struct sluice_conn **out,
		  const struct dialect **dialect, struct sluice_err *err);

/*
 * For build-*.c, the node kinds build.c dispatches to. All thread-safe
 * for distinct nodes, like the job callbacks that call them.
 */
/* Index in b->slots of a connection name. */
size_t build_slot(const struct build *b, const char *connection);
/* Worker w's connection for slot (opened on first use); NULL with err on failure. */
struct sluice_conn *build_worker_conn(struct build *b, struct exec_worker *w, size_t slot,
				      struct sluice_err *err);
/* After a connection error: close w's connection for slot, so the next job reconnects. */
void build_drop_worker_conn(struct build *b, struct exec_worker *w, size_t slot);
/* The node's record from the previous runs' state, or NULL. */
const struct val *build_prev_record(const struct build *b, size_t idx);
/* Write target/<dir>/<path> (a warning, not an error, when it cannot). */
void build_write_target(struct build *b, const char *dir, const char *path, const char *text);
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
