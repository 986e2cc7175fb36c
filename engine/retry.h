/*
 * retry.h: which failures a scheduled run retries, and how long it waits.
 * Only transient failures are retried: the connection refused or reset,
 * the server restarting (SQLSTATE class 08, 57P01, 57P02, 57P03), S3
 * answering 5xx, serialization failures (40001) and deadlocks (40P01). A
 * SQL error, a failing data test or a bad project is never retried: a
 * second attempt would fail the same way.
 */
#ifndef SLUICE_RETRY_H
#define SLUICE_RETRY_H

/*
 * Whether an error is transient: by its SQLSTATE when there is one (""
 * or NULL when not), else by the words of its message (connectors that
 * lose the connection mid-statement may give no SQLSTATE).
 */
int retry_transient(const char *sqlstate, const char *message);

/* Seconds to wait before attempt number `next` (2, 3, ...): first, then doubled each time, at most an hour. */
double retry_backoff(double first, int next);

#endif
