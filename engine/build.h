/*
 * build.h: preparing and running the selected models, shared by the
 * commands that build (run, and later build/plan). Preparation looks up
 * which relations exist (one catalog query per connection), compiles each
 * node, plans its statements and writes target/compiled and target/run.
 * Execution creates schemas, runs on-run-start, the DAG, on-run-end.
 */
#ifndef SLUICE_BUILD_H
#define SLUICE_BUILD_H

#include "../connectors/connector.h"
#include "dialect.h"
#include "executor.h"
#include "materialize.h"
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
};

struct conn_slot {                     /* one per target connection */
	const struct sluice_connector *drv;
	const struct dialect *dialect;
	struct sluice_conn *main;      /* the main thread's connection, or NULL */
};

struct build {
	struct session *s;
	struct node_run *runs;         /* per manifest node */
	unsigned char *todo;           /* per node: run it */
	int ntodo;
	int offline;                   /* compile without connecting */
	struct conn_slot *slots;       /* per project->target.conns */
	struct strmap relations;       /* "schema.ident" -> (enum rel_kind + 1) */
	struct sluice_conn ***worker_conns;   /* [worker][slot] */
	int threads;
	struct executor ex;
	double finished_at;
	int ok, errors, skipped, reused;
};

/* Decide what runs, compile and plan it. Connection errors: SLUICE_ECONN. */
int build_prepare(struct build *b, struct session *s, int offline, struct sluice_err *err);
/* Run it. Returns 0, SLUICE_EDB (some node failed), SLUICE_ECANCEL or a hook/connection error. */
int build_execute(struct build *b, struct sluice_err *err);
void build_release(struct build *b);

/* Open the connection named `name` of the session's target. */
int build_connect(struct session *s, const char *name, struct sluice_conn **out,
		  const struct dialect **dialect, struct sluice_err *err);

#endif
