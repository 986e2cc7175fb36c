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
int cmd_compile(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_debug(int argc, char **argv);
int cmd_embedded(int argc, char **argv);
int cmd_sources(int argc, char **argv);

/* Print err (with "sluice: error: ") and return its exit code. */
int cmd_fail(const struct sluice_err *err);

#endif
