/*
 * shell.h: shell models (.sh files among the models): their config, the
 * quoting of relations in their text, and running a rendered script as a
 * child process in its own process group, with its output scrubbed of
 * secrets into a log file, a timeout, and cancellation from another
 * thread.
 *
 * Not here: deciding whether a script must run, hashing its input and
 * output files (fileset.h), or recording state (kind-shell.c).
 */
#ifndef SLUICE_SHELL_H
#define SLUICE_SHELL_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include "../connectors/connector.h"
#include "manifest.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"
#include "value.h"

/*
 * Append s escaped for the inside of a double-quoted shell word: a
 * backslash before each of " \ $ `. The shell removes them again, both
 * inside "..." and in a bare word, so {{ ref('x') }} reaches psql as
 * "schema"."x" either way.
 */
void shell_escape_dq(struct buf *out, const char *s);

/* A shell model's config(), checked. */
struct shell_config {
	struct val inputs;         /* list of glob patterns (strings), maybe empty */
	struct val outputs;        /* list of paths (strings), maybe empty */
	double timeout;            /* seconds; 0: none */
	int relation;              /* the script creates the relation schema.name */
};

/*
 * Read and check n's config (n->mat == MAT_SHELL): inputs and outputs as a
 * string or a list of strings, timeout as seconds or '90s', '10m', '1h',
 * '1d', relation as a bool. Errors: SLUICE_EUSAGE at the config() call
 * ("models/x.sh:2:3: timeout ..."). Lists live in a.
 */
int shell_config(const struct node *n, struct arena *a, struct shell_config *out, struct sluice_err *err);


/*
 * A running script, as a connection the executor can cancel: mark
 * &p->base busy (exec_worker_busy) around shell_run. Its cancel() sends
 * the process group the signal *signo holds (the one sluice received), or
 * SIGINT when that is 0; a second cancel() sends SIGKILL.
 */
struct shell_proc {
	struct sluice_conn base;
	const int *signo;          /* borrowed: read when cancelled */
	pid_t pid;                 /* process group id, 0 before the start (atomic) */
	int cancels;               /* cancel() calls (atomic) */
	int forwarded;             /* the first signal was sent (atomic) */
};

void shell_proc_init(struct shell_proc *p, const char *name, const int *signo);

struct shell_cmd {
	const char *script;        /* the rendered text; its #! line, if any, picks the interpreter */
	const char *script_path;   /* where that text is on disk (what the interpreter runs) */
	const char *dir;           /* working directory */
	const char *env;           /* "NAME=value\n" lines overriding the inherited environment */
	const char *log_path;      /* stdout and stderr go here (truncated first) */
	const char *const *secrets;   /* scrubbed from the log and the tail ("***"); NULL-terminated, may be NULL */
	double timeout;            /* seconds; 0: none */
	double grace;              /* seconds between SIGTERM and SIGKILL; 0: 5 */
	size_t tail_lines;         /* lines kept for the error message; 0: 20 */
};

struct shell_result {
	int status;                /* exit status, or -1 when killed by a signal */
	int signo;                 /* the killing signal, or 0 */
	int timed_out;
	int cancelled;
	double elapsed;            /* seconds */
	struct buf tail;           /* the last lines of output, scrubbed, each ending in \n */
};

/*
 * Run cmd and wait for it (blocks). Returns 0 when the script exited 0.
 * Otherwise a negative code, with err saying how it ended (exit status,
 * signal, timeout) followed by its last lines of output: SLUICE_EDB for a
 * failed script, SLUICE_ECANCEL when p was cancelled, SLUICE_EIO when it
 * could not be started or the log could not be written. res (if not NULL)
 * is filled in either case; release it with shell_result_release().
 * When the script exits, any process it left in its group is left alone,
 * unless the run timed out or was cancelled: then the whole group is
 * killed.
 */
int shell_run(const struct shell_cmd *cmd, struct shell_proc *p, struct shell_result *res,
	      struct sluice_err *err);
void shell_result_release(struct shell_result *res);

#endif
