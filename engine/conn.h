/*
 * conn.h: every connection the engine opens to a warehouse, in one place:
 * opening one by the name it has in the profile, the set a build keeps
 * (one main connection per profile connection, plus one per worker and
 * connection), and sending a statement with the audit comment that tells
 * the warehouse's own logs which run, node and user sent it.
 *
 * Not here: what the statements say (dialect.h, materialize.h) or how a
 * driver talks to its server (connectors/connector.h).
 *
 * Threads and ownership:
 *  - conn_open's connection belongs to its caller, who closes it with
 *    conn_close (which accepts NULL). Use it on one thread at a time.
 *  - A conn_pool belongs to the build that made it. Its main connections
 *    are the main thread's: conn_pool_main may be called only there, and
 *    only while no worker runs (before conn_pool_add_workers and after
 *    executor_run).
 *  - While the workers run, the pool lends connections for one job at a
 *    time: conn_pool_worker lends worker w a connection of a slot (the
 *    same one until the job ends), conn_pool_job_done takes back what w
 *    holds, conn_pool_drop closes a broken one. Worker w's calls come
 *    from worker w's thread only. The main connections are lent too: a
 *    run the server allows no other session still goes on, one job at a
 *    time. The only call another thread may make on a lent connection is
 *    the driver's cancel(), which the executor makes through the
 *    connection a job marks busy (exec_worker_busy).
 *  - conn_pool_release closes everything; call it after executor_run.
 *
 * Connection budget: conn_pool_plan asks the server how many sessions it
 * still allows (dialect connection_budget_query) and fits the workers in,
 * leaving a reserve free for others. When the server refuses a new
 * session anyway (another run took the room), a worker waits for one of
 * this run's connections instead of failing its job.
 */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include <pthread.h>
#include "../connectors/connector.h"
#include "dialect.h"
#include "session.h"

/*
 * Open the connection named `name` of the session's target, and say its
 * dialect (when dialect is not NULL). Unknown names and dialects:
 * SLUICE_EUSAGE; a server that cannot be reached: SLUICE_ECONN.
 */
int conn_open(struct session *s, const char *name, struct sluice_conn **out, const struct dialect **dialect,
	      struct sluice_err *err);

/*
 * The warehouse as templates read it (manifest.h's struct render_db): a
 * connection is opened when a template first reads it, and each query
 * runs alone in a read-only transaction, whichever thread asks.
 * conn_render_db_free closes what was opened; it accepts NULL.
 */
struct render_db *conn_render_db_new(struct session *s);
void conn_render_db_free(struct render_db *db);

/* The index of connection `name` in the target's connections (0, "default", when unknown). */
size_t conn_slot_of(const struct project *p, const char *name);

struct conn_slot {                     /* one per target connection */
	const struct sluice_connector *drv;
	const struct dialect *dialect;
	struct sluice_conn *main;      /* the main thread's connection, or NULL until used */
	struct sluice_conn **idle;     /* open and lent to no job (main among them while workers run) */
	size_t nidle;
	int nopen;                     /* open connections of the slot, main included */
	int refused;                   /* the server refused this run a new session */
	long long spare;               /* sessions the plan left beyond the workers', -1: not known */
};

struct conn_pool {
	struct session *s;
	struct conn_slot *slots;       /* per project->target.conns */
	size_t nslots;
	struct sluice_conn ***held;    /* [worker - 1][slot]: lent for the current job */
	int nworkers;
	pthread_mutex_t mu;            /* slots' idle, nopen, refused while workers run */
	pthread_cond_t returned;       /* a connection came back or was closed */
	int (*give_up)(void *ud);      /* a waiting worker stops when this says so */
	void *give_up_ud;
};

/*
 * Resolve every connection's driver and dialect; opens nothing. Errors
 * (an unknown type or dialect) name profiles.yml and the connection.
 */
int conn_pool_init(struct conn_pool *pool, struct session *s, struct sluice_err *err);
/*
 * How many of `threads` workers fit in what slot's server still allows,
 * in *workers (threads when the server does not say). When fewer fit,
 * why (one line: the limit, the sessions in use, the reserve) goes in
 * `why`. extra_per_worker: sessions a job may open besides the worker's
 * own (a shell model's script). Opens the slot's main connection.
 */
int conn_pool_plan(struct conn_pool *pool, size_t slot, int threads, int extra_per_worker, int *workers,
		   struct buf *why, struct sluice_err *err);
/*
 * Make room for `workers` worker threads and start lending (before
 * executor_run). give_up(ud) tells a worker waiting for a
 * connection to stop (a cancelled run).
 */
void conn_pool_add_workers(struct conn_pool *pool, int workers, int (*give_up)(void *ud), void *ud);
/*
 * Extra sessions a job may open on slot's server besides its worker's
 * (the streams of an unload or a load): up to want, within what
 * conn_pool_plan left once the workers fit (all of want when the server
 * does not say how many it allows). Give them back with
 * conn_pool_extra_done once they are closed. Any thread.
 */
int conn_pool_extra_take(struct conn_pool *pool, size_t slot, int want);
void conn_pool_extra_done(struct conn_pool *pool, size_t slot, int n);
/* The dialect of slot i. */
const struct dialect *conn_pool_dialect(const struct conn_pool *pool, size_t slot);
/* The main thread's connection of slot i, opened on first use. */
struct sluice_conn *conn_pool_main(struct conn_pool *pool, size_t slot, struct sluice_err *err);
/*
 * A connection of slot i lent to worker `worker` (1-based) until its job
 * ends: an idle one, or a new one tagged with the run and user (dialect
 * session_tag). When the server refuses a new one while this run has
 * others open, waits for one of them (up to CONN_WAIT_SECONDS).
 * Worker's thread only.
 */
#define CONN_WAIT_SECONDS 600
struct sluice_conn *conn_pool_worker(struct conn_pool *pool, int worker, size_t slot, struct sluice_err *err);
/* The job of worker `worker` ended: take back the connections it holds. */
void conn_pool_job_done(struct conn_pool *pool, int worker);
/* After a connection error: close worker's connection of slot i, so its next job reconnects. */
void conn_pool_drop(struct conn_pool *pool, int worker, size_t slot);
void conn_pool_release(struct conn_pool *pool);

/* The comment in front of every statement: run, node (or hook) and user. */
void conn_audit_comment(const struct session *s, const char *node, struct buf *out);

/*
 * Send one statement (or a query, rows to fn) on c with the audit comment
 * in front; audit may be NULL. Same returns as the driver's exec/query.
 */
int conn_send_exec(struct sluice_conn *c, const char *audit, const char *sql, long long *rows,
		   struct sluice_err *err);
int conn_send_query(struct sluice_conn *c, const char *audit, const char *sql, sluice_row_fn fn, void *ud,
		    struct sluice_err *err);

/* sluice_row_fn keeping the first value of the first row (heap) in *(char **)ud. */
int conn_first_value(void *ud, const struct sluice_row *row);

#endif
