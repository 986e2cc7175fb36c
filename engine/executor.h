/*
 * executor.h: runs the jobs of a DAG on worker threads. It knows nothing
 * of SQL: a job is a callback. Ready nodes with the longest remaining path
 * start first. When a job fails, everything downstream of it is skipped
 * and independent branches go on. SIGINT/SIGTERM cancel the running jobs
 * (through the connection each job marks as busy) and skip the rest.
 * SIGUSR1 drains: nothing new starts, the running jobs finish, the rest
 * is skipped, and the run ends as if by SIGTERM (signo; sluice schedule
 * sends it to give running nodes a grace period before it cancels them).
 */
#ifndef SLUICE_EXECUTOR_H
#define SLUICE_EXECUTOR_H

#include <stddef.h>
#include "../connectors/connector.h"
#include "dag.h"
#include "util/err.h"

enum { EXEC_RUN = 1, EXEC_PASS = 2 };

enum exec_status { EXEC_PENDING, EXEC_SUCCESS, EXEC_ERROR, EXEC_SKIPPED, EXEC_REUSED };

struct exec_worker {
	int id;                          /* 1-based; "thread_id" in run_results */
	struct sluice_conn *busy;        /* what cancel() interrupts; use exec_worker_busy() */
	struct executor *ex;
};

struct exec_ops {
	/*
	 * Run node idx on worker w. Return 0, or a negative code with err set.
	 * Return SLUICE_OK with *reused = 1 for a node that needed no work.
	 * Called concurrently from several threads for different nodes.
	 */
	int (*run)(void *ud, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err);
	/* A node's name, for "skipped: upstream 'x' failed". */
	const char *(*name)(void *ud, size_t idx);
	/* Progress callbacks, called with the executor's lock held: keep short. seq is 1-based. */
	void (*started)(void *ud, struct exec_worker *w, size_t idx, int seq);
	void (*finished)(void *ud, struct exec_worker *w, size_t idx, int seq, enum exec_status st,
			 const struct sluice_err *err);
};

struct executor {
	const struct dag *dag;
	/*
	 * Per node: 0 not part of this run (counts as done), EXEC_RUN run it,
	 * EXEC_PASS a pass-through node that is never run but orders its
	 * children after its parents (ephemeral models).
	 */
	const unsigned char *todo;
	int threads;
	const struct exec_ops *ops;
	void *ud;
	/* results */
	enum exec_status *status;       /* per node */
	int signo;                      /* signal that cancelled the run, or 0 */
	int ntodo, nstarted;
	int nworkers;                   /* worker threads that started: fewer than threads if the system refused some */
	/* private */
	struct exec_private *priv;
};

/*
 * Run to completion (or cancellation). Returns 0 when every node succeeded
 * or was reused, SLUICE_EDB when any failed or was skipped, SLUICE_ECANCEL
 * on a signal (ex->signo says which). Blocks SIGINT/SIGTERM in the calling
 * thread for its duration. When the system refuses to start some worker
 * threads, the others run every node (ex->nworkers says how many); when it
 * refuses all, or the signal thread, every node is skipped, finished()
 * saying why, and the result is SLUICE_EDB.
 */
int executor_run(struct executor *ex);
void executor_release(struct executor *ex);

/* Mark the connection a job is blocked on, so a signal can cancel it (NULL to clear). */
void exec_worker_busy(struct exec_worker *w, struct sluice_conn *c);
/*
 * Let the children of idx, which w is running, start before idx ends: a
 * producer whose children consume its output as it comes. Each child must
 * wait for what it reads and fail by itself when idx fails (it is not
 * skipped then); idx's end releases nothing more. Idempotent.
 */
void exec_release_children(struct exec_worker *w, size_t idx);
/* Whether the run is being cancelled (jobs may check between steps). */
int exec_cancelled(const struct exec_worker *w);

#endif
