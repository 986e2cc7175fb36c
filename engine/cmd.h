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
int cmd_blame(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_schedule(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_deps(int argc, char **argv);
int cmd_cache(int argc, char **argv);
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
/* The exit code cmd_nodes_exit will return, without printing anything. */
int cmd_exit_status(int rc, int signo, const struct sluice_err *err);

struct build;
/*
 * The end run, build and test share, failed or not: run_results.json
 * (with the exit status) and the summary when the nodes were executed,
 * the run's history (state and target/history.json), then the report
 * (cmd_report_run), fed the results as they were written: the build is
 * released before it (build_release). Returns what cmd_report_run
 * returns, 0 when there was no report to write.
 */
int cmd_build_end(struct build *b, const char *which, int rc, const struct sluice_err *err);

struct cli;
struct session;
struct report_in;
/*
 * The end of run, build and test, whatever happened: write
 * target/report.html from in (run_results.json's members, fed as they
 * were written; it is freed) and the session's manifest, the page
 * `sluice report` would make from the artifacts, and publish it where
 * --report-to or sluice.yml's `report:` says. Prints one line for each.
 * Returns 0, or -1 when either failed (the error is printed): the run's
 * own exit code stands, but a run that succeeded then exits 1.
 */
int cmd_report_run(struct session *s, struct report_in *in);
int cmd_report(int argc, char **argv);
/*
 * The start every project command shares: parse the flags (extra: more
 * accepted flags, or NULL), set up output, load the project and select.
 * Returns 0, or the exit code after printing the error (nothing is then
 * left to release). cmd_close undoes a successful cmd_open.
 */
int cmd_open(int argc, char **argv, const char *const *extra, struct cli *cli, struct session *s);
void cmd_close(struct cli *cli, struct session *s);

#endif
