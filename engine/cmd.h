/*
 * cmd.h: the subcommands, one file each (cmd-<name>.c). Each returns the
 * process exit code: 0 ok, 1 a node failed, 2 usage or project error,
 * 3 connection error, 128+signal when cancelled.
 */
#ifndef SLUICE_CMD_H
#define SLUICE_CMD_H

#include "util/err.h"

int cmd_run(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_debug(int argc, char **argv);
int cmd_embedded(int argc, char **argv);
int cmd_sources(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
/* build and test share one body (cmd-build.c); what: BUILD_* flags (build.h). */
int cmd_build_like(int argc, char **argv, const char *which, unsigned what);

/* Print err (with "sluice: error: ") and return its exit code. */
int cmd_fail(const struct sluice_err *err);
/*
 * The exit code of a command that ran nodes (run, build, test), after
 * flushing output: 128+signo when cancelled, 1 when nodes failed (each
 * was reported already) or stdout could not be written, else cmd_fail's.
 */
int cmd_nodes_exit(int rc, int signo, const struct sluice_err *err);

struct cli;
struct session;
/*
 * The start every project command shares: parse the flags (extra: more
 * accepted flags, or NULL), set up output, load the project and select.
 * Returns 0, or the exit code after printing the error (nothing is then
 * left to release). cmd_close undoes a successful cmd_open.
 */
int cmd_open(int argc, char **argv, const char *const *extra, struct cli *cli, struct session *s);
void cmd_close(struct cli *cli, struct session *s);

#endif
