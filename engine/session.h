/*
 * session.h: what every command shares: the common flags, the loaded
 * project and manifest, the selection, who is running and the invocation
 * id. cmd-*.c files start with session_open and end with session_close.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include "manifest.h"
#include "project.h"
#include "util/buf.h"
#include "util/err.h"

struct cli {
	const char *project_dir, *profiles_dir, *target, *vars;
	struct buf select, exclude;        /* space-joined -s / --exclude values */
	const char *log_format;            /* text | json */
	const char *output;                /* ls: name | path | json | selector */
	const char *resource_type;         /* ls: model | source | all */
	int full_refresh;
	int force;                         /* --force: rebuild even what is up to date */
	int wait_lock;                     /* --wait-lock SECONDS; -1: fail at once */
	const char *format;                /* plan: text | json */
	int threads;                       /* 0: from the profile */
	int no_compile_write;
	char **args;                       /* positional arguments left over */
	int nargs;
};

struct session {
	struct cli *cli;
	struct project project;
	struct manifest manifest;
	unsigned char *selected;           /* per node */
	char invocation_id[40];
	char user[128];
	char schedule[64];                 /* $SLUICE_SCHEDULE: the schedule that started this run, or "" */
	char app_name[64];                 /* application_name: sluice/<user> */
	double started_at;                 /* epoch seconds */
};

/*
 * Parse the common flags out of argv (argv[0] is the command name).
 * Unknown flags: SLUICE_EUSAGE. `extra` lists additional flags the command
 * accepts (NULL-terminated), which land in cli->args as "--flag[=value]".
 */
int cli_parse(struct cli *cli, int argc, char **argv, const char *const *extra, struct sluice_err *err);
void cli_release(struct cli *cli);

/* Load project and manifest and apply the selection. */
int session_open(struct session *s, struct cli *cli, struct sluice_err *err);
void session_close(struct session *s);

/* A new invocation id (a UUIDv7: sorts by time) into out[n], n >= 37. */
void session_new_invocation_id(char *out, size_t n);

/* Wall clock in epoch seconds, with microseconds. */
double now_seconds(void);
/* ISO 8601 UTC with microseconds, as dbt writes it. */
void format_iso_time(double t, char *out, size_t n);

#endif
