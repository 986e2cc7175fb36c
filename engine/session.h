/*
 * session.h: what every command shares: the common flags, the loaded
 * project and manifest, the selection, who is running and the invocation
 * id. cmd-*.c files start with session_open and end with session_close.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include "identity.h"
#include "manifest.h"
#include "project.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

struct cli {
	const char *project_dir, *profiles_dir, *target, *vars;
	struct buf select, exclude;        /* space-joined -s / --exclude values */
	struct buf reuse_from;             /* --reuse-from (run, build, plan): comma-joined target names */
	const char *log_format;            /* text | json */
	const char *output;                /* ls: name | path | json | selector */
	const char *resource_type;         /* ls: model | source | all */
	int full_refresh;
	int force;                         /* --force: rebuild even what is up to date */
	int wait_lock;                     /* --wait-lock SECONDS; -1: fail at once */
	const char *format;                /* plan: text | json */
	const char *report_to;             /* run, build, test: --report-to DEST (report.h) */
	int threads;                       /* 0: from the profile */
	int no_compile_write;
	char **args;                       /* positional arguments left over */
	int nargs;
	int identity_git;                  /* set before cmd_open: ask git for the commit (commands that record runs) */
	int argc;                          /* the command's own argv (argv[0]: its name), borrowed */
	char **argv;
};

struct session {
	struct cli *cli;
	struct project project;
	struct manifest manifest;
	unsigned char *selected;           /* per node */
	char invocation_id[40];
	struct identity id;                /* who runs, from which commit, with which command line */
	const char *user;                  /* id.user */
	char schedule[64];                 /* $SLUICE_SCHEDULE: the schedule that started this run, or "" */
	char app_name[64];                 /* application_name: sluice/<user> */
	double started_at;                 /* epoch seconds */
	struct audit_log *audit;           /* target/audit.jsonl while run, build or test runs (audit.h), or NULL */
	struct render_db *render_db;       /* what templates read the warehouse through (conn.h) */
	char run_started_at[40];           /* the `run_started_at` templates see */
	struct err_list errors;            /* the project's errors, all of them when session_open failed on them */
	struct err_list warnings;          /* printed by session_open */
};

/*
 * Parse the common flags out of argv (argv[0] is the command name).
 * Unknown flags: SLUICE_EUSAGE. `extra` lists additional flags the command
 * accepts (NULL-terminated), which land in cli->args as "--flag[=value]".
 */
int cli_parse(struct cli *cli, int argc, char **argv, const char *const *extra, struct sluice_err *err);
void cli_release(struct cli *cli);

struct audit_log;

/*
 * Load project and manifest and apply the selection. The project's
 * warnings are printed. Errors of independent parts are all collected
 * in s->errors (err: the first, and how many more); the caller prints
 * them (ui_list) before session_close.
 */
int session_open(struct session *s, struct cli *cli, struct sluice_err *err);
void session_close(struct session *s);
/*
 * From now on log every statement to target/audit.jsonl (audit.h); closed
 * by session_close, after every connection. Errors name the file.
 */
int session_audit(struct session *s, struct sluice_err *err);

/* A new invocation id (a UUIDv7: sorts by time) into out[n], n >= 37. */
void session_new_invocation_id(char *out, size_t n);

#endif
