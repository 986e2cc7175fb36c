/*
 * state-s3.h: the object-store state backend (state-s3.c) opened over
 * any store, for state.c's `s3://bucket/prefix/` spec and for tests,
 * which run the same logic over file:// (whose conditional writes are
 * real) or over a store that loses conditions on purpose.
 *
 * Not for the engine: it opens state through state_open() (state.h).
 */
#ifndef SLUICE_STATE_S3_H
#define SLUICE_STATE_S3_H

#include "../connectors/objstore.h"
#include "state.h"

/* The lease of the lock, in seconds, when neither the caller nor SLUICE_STATE_LOCK_TTL says. */
#define STATE_S3_LOCK_TTL 120

struct state_store_opts {
	/*
	 * Open one store at the state's root (the URL's bucket and prefix).
	 * Called twice by state_store_open(): one store for loads, puts and
	 * compaction, one for the lock's heartbeat thread. Caller-owned
	 * stores are closed by state_close().
	 */
	int (*open_store)(void *ud, struct objstore **out, struct sluice_err *err);
	void *ud;
	const char *where;   /* the root's URL, for messages: "s3://bucket/prefix/" */
	int lock_ttl;        /* seconds; 0: $SLUICE_STATE_LOCK_TTL, else STATE_S3_LOCK_TTL */
};

/*
 * Open the state of o->project and o->target under the store's root.
 * Same contract as state_open(); the stores that open_store() gave are
 * owned by the state from then on. A store without put_if is refused
 * (SLUICE_ENOTSUP): the lock depends on it.
 */
int state_store_open(const struct state_opts *o, const struct state_store_opts *so, struct state **out,
		     struct sluice_err *err);

#endif
