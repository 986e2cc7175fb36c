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
 *    only while no worker runs (before and after executor_run).
 *  - Worker w's connections are worker w's alone: conn_pool_worker and
 *    conn_pool_drop may be called only from worker w's thread, during
 *    executor_run. The only call another thread may make on them is the
 *    driver's cancel(), which the executor makes through the connection a
 *    job marks busy (exec_worker_busy).
 *  - conn_pool_release closes everything; call it after executor_run.
 */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

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

/* The index of connection `name` in the target's connections (0, "default", when unknown). */
size_t conn_slot_of(const struct project *p, const char *name);

struct conn_slot {                     /* one per target connection */
	const struct sluice_connector *drv;
	const struct dialect *dialect;
	struct sluice_conn *main;      /* the main thread's connection, or NULL until used */
};

struct conn_pool {
	struct session *s;
	struct conn_slot *slots;       /* per project->target.conns */
	size_t nslots;
	struct sluice_conn ***workers; /* [worker - 1][slot], opened on first use */
	int nworkers;
};

/*
 * Resolve every connection's driver and dialect; opens nothing. Errors
 * (an unknown type or dialect) name profiles.yml and the connection.
 */
int conn_pool_init(struct conn_pool *pool, struct session *s, struct sluice_err *err);
/* Make room for `workers` worker threads' connections (before executor_run). */
void conn_pool_add_workers(struct conn_pool *pool, int workers);
/* The dialect of slot i. */
const struct dialect *conn_pool_dialect(const struct conn_pool *pool, size_t slot);
/* The main thread's connection of slot i, opened on first use. */
struct sluice_conn *conn_pool_main(struct conn_pool *pool, size_t slot, struct sluice_err *err);
/*
 * Worker `worker`'s (1-based) connection of slot i, opened on first use
 * and tagged with the run and user (dialect session_tag). Worker's thread only.
 */
struct sluice_conn *conn_pool_worker(struct conn_pool *pool, int worker, size_t slot, struct sluice_err *err);
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
