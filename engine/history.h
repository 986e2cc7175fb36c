/*
 * history.h: the record of a run as a whole, kept in the state (every
 * backend, so a fresh worker sees yesterday's runs) and shown as
 * target/history.json: the last HISTORY_SHOWN runs of this project and
 * target, newest first.
 *
 * Not here: where the state keeps it (state-*.c), or the per-node
 * records (build.c).
 */
#ifndef SLUICE_HISTORY_H
#define SLUICE_HISTORY_H

#include "build.h"

#define HISTORY_SHOWN 50

/*
 * At the end of run, build or test (which), failed or not: append the
 * run's record to the state, then write target/history.json from the
 * state's last runs. Both are a report, not the run's result: a failure
 * is a warning naming the backend and the cause. Nothing happens when the
 * run never held the state lock (it did not run).
 */
void history_record(struct build *b, const char *which, int exit_status);

#endif
