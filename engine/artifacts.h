/*
 * artifacts.h: target/manifest.json and target/run_results.json, in
 * dbt's shapes where dbt has the concept, so existing tooling can read them.
 */
#ifndef SLUICE_ARTIFACTS_H
#define SLUICE_ARTIFACTS_H

#include "build.h"
#include "json.h"
#include "session.h"

int artifacts_write_manifest(const struct session *s, struct sluice_err *err);
/*
 * manifest.json's entries of nodes and of sources, in its order, each to
 * fn as json_load_members would read it back (item 1; fn owns the value):
 * the report of a run takes them from here rather than from the file.
 * Returns the first non-zero fn returned, else 0.
 */
int artifacts_manifest_entries(const struct session *s, json_member_fn fn, void *ud);
/*
 * exit_status: the process's exit code for this run (cmd.h), in metadata.
 * tee, unless NULL, gets every member and result as json_load_members
 * would read them back from the file (results split), its return ignored.
 */
int artifacts_write_run_results(const struct build *b, const char *command, int exit_status, json_member_fn tee,
				void *ud, struct sluice_err *err);

#endif
