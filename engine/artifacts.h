/*
 * artifacts.h: target/manifest.json and target/run_results.json, in
 * dbt's shapes where dbt has the concept, so existing tooling can read them.
 */
#ifndef SLUICE_ARTIFACTS_H
#define SLUICE_ARTIFACTS_H

#include "build.h"
#include "session.h"

int artifacts_write_manifest(const struct session *s, struct sluice_err *err);
/* exit_status: the process's exit code for this run (cmd.h), in metadata. */
int artifacts_write_run_results(const struct build *b, const char *command, int exit_status, struct sluice_err *err);

#endif
