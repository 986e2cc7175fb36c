/*
 * reuse.h: reusing what another environment (target) of the same project
 * built, when it was built with exactly the fingerprint a node of this
 * run would build now (docs/environments.md). The environments come from
 * the target's reuse_from in profiles.yml or from --reuse-from; their
 * records come from the same state store (state_load_target).
 *
 * One place for every kind: build.c asks here after it decided, and a
 * kind only says by its flags whether its relation may be a view over
 * another environment's (KIND_SHAREABLE) or a copy of it (KIND_COPYABLE).
 * Nothing here writes outside this target's own relations.
 */
#ifndef SLUICE_REUSE_H
#define SLUICE_REUSE_H

#include "build.h"

/*
 * Resolve the environments (--reuse-from wins over the profile's
 * reuse_from) and load their records. An unknown --reuse-from name:
 * SLUICE_EUSAGE. An environment whose records cannot be read is a
 * warning: nothing is reused from it. Main thread, after the state is open.
 */
int reuse_prepare(struct build *b, struct sluice_err *err);

/*
 * After node idx was decided (runs[idx].decision), on connection c of
 * its own target (reads only, so read grants on the other schemas are
 * enough):
 *  - a node reused from another environment last time, whose source was
 *    rebuilt or dropped since, must be decided again: a reason says so;
 *  - a node to build that an environment built with the same fingerprint,
 *    still there and unchanged, is reused from it: runs[idx].reused_from
 *    is set (in a) and its first reason says from where. A source that
 *    cannot be read is a reason too, and the node is built here.
 */
/* Whether reuse_decide has anything to ask for node idx (so a connection is needed). */
int reuse_wanted(const struct build *b, size_t idx);
void reuse_decide(struct build *b, size_t idx, struct sluice_conn *c, struct arena *a);

/* Make node idx's relation a view over, or a copy of, its source (reused_from). Worker. */
int reuse_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err);

/* Environment target's record of unique_id, as loaded for this run, or NULL (a kind's adopt). */
const struct val *reuse_record(const struct build *b, const char *target, const char *unique_id);

/*
 * After node idx was built or reused (worker): when it was a late view
 * over another environment's relation (dialect late_view) and is not one
 * now, drop the function that view read through.
 */
void reuse_tidy(struct build *b, struct exec_worker *w, size_t idx);

/* Free what reuse_prepare loaded; accepts a build without any. */
void reuse_release(struct build *b);

/* "reuse from prod (built 2026-12-01 02:14 by eleni, run 0193...)" of a reused_from dict. */
void reuse_describe(const struct val *from, struct buf *out);

#endif
