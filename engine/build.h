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
};

/*
 * Decide what runs, compile and plan it. BUILD_RUN also takes the state
 * lock (SLUICE_ELOCK when held). Connection errors: SLUICE_ECONN.
 */
int build_prepare(struct build *b, struct session *s, enum build_mode mode, struct sluice_err *err);
/* BUILD_PLAN: decide every selected node without running anything (runs[i].decision). */
void build_plan(struct build *b);
/* Run it. Returns 0, SLUICE_EDB (some node failed), SLUICE_ECANCEL or a hook/connection error. */
int build_execute(struct build *b, struct sluice_err *err);
void build_release(struct build *b);

/* Open the connection named `name` of the session's target. */
int build_connect(struct session *s, const char *name, struct sluice_conn **out,
		  const struct dialect **dialect, struct sluice_err *err);

#endif
