/*
 * audit.h: target/audit.jsonl, one line per statement sluice sends to a
 * database during run, build and test: when, for which node, by whom, on
 * which connection, in which run, a hash of the SQL text, rows, duration
 * and, on error, the SQLSTATE. Never the SQL text, its literals, or an
 * error message (which may quote them).
 *
 * It works as a shim (SQLite's VFS shims, curl's connection filters):
 * conn_open wraps every connection it opens, so every statement is seen,
 * whichever file sends it, the state's own included. The wrapper keeps the
 * driver's capabilities: a slot the driver leaves NULL stays NULL.
 *
 * Threads: lines are written whole, under one mutex, from any thread.
 * audit_set_node is per thread: a worker names the node it runs.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include "../connectors/connector.h"

struct audit_log;

/* Create (truncate) path. Errors: SLUICE_EIO naming the file. The strings are copied. */
int audit_open(struct audit_log **out, const char *path, const char *invocation_id, const char *user,
	       struct sluice_err *err);
/* Close; accepts NULL. Connections wrapped with it must be closed first. */
void audit_close(struct audit_log *log);

/*
 * A connection that logs to log every statement it forwards to c, and
 * owns c (closing it closes c). log NULL: c itself.
 */
struct sluice_conn *audit_wrap(struct audit_log *log, struct sluice_conn *c);

/* The node whose statements this thread sends from now on (a unique id), or NULL. */
void audit_set_node(const char *unique_id);
/* What audit_set_node last set on this thread, for threads a node starts to send its statements. */
const char *audit_node(void);

/* The hash written for sql: its text without sluice's leading audit comment, as hash_hex. */
void audit_sql_hash(const char *sql, char out[33]);

#endif
