/*
 * state.h: what sluice remembers between runs, behind one small interface
 * with several backends: `local` (.sluice/state/, the default), `warehouse`
 * (tables in a sluice_meta schema on the default connection) and
 * `s3://bucket/prefix/` (objects in a bucket, see state-s3.c).
 *
 * A record is a JSON-shaped dict per node (struct val), so the backends
 * store it without knowing its fields. Fields the engine writes:
 *   unique_id, fingerprint, def_fingerprint, code_hash, config_hash,
 *   vars_hash, upstream {uid: fp}, sources {uid: version}, status
 *   ("success" | "error"), finished_at (epoch s), duration (s), rows,
 *   invocation_id, relation, relation_version, output_checksum,
 *   effective_fingerprint; for shell models inputs and outputs
 *   {path: {size, mtime_ns, hash}} (fileset.h); who built it, for blame:
 *   user, user_source, git_commit (null outside a repository), git_dirty.
 *
 * Concurrency: one run at a time holds the state's lock; state_put is
 * thread-safe (workers call it as nodes finish) and durable when it
 * returns, so a run killed with -9 keeps every record already put.
 */
#ifndef SLUICE_STATE_H
#define SLUICE_STATE_H

#include "../connectors/connector.h"
#include "dialect.h"
#include "util/arena.h"
#include "util/err.h"
#include "value.h"

struct state;

struct state_opts {
	const char *spec;            /* sluice.yml `state:`: "local" (default), "warehouse", "s3://bucket/prefix/" */
	const char *project_dir;     /* absolute */
	const char *project;         /* project name: rows/records are keyed by project and target */
	const char *target;          /* target name */
	const char *user;            /* who runs: shown to a waiting run */
	const char *invocation_id;
	/* Warehouse backend: open a dedicated connection on the default target connection. */
	int (*connect)(void *ud, struct sluice_conn **out, const struct dialect **dialect,
		       struct sluice_err *err);
	void *connect_ud;
	/*
	 * S3 backend: the default connection's `s3:` block from profiles.yml
	 * (endpoint, region, keys; see connectors/s3.h), read during
	 * state_open() only; NULL: the AWS_* environment alone.
	 */
	const struct val *s3;
};

/*
 * Open (creating .sluice/state/ or the sluice_meta tables as needed). Unknown
 * spec: SLUICE_EUSAGE; a known backend that is not built: SLUICE_ENOTSUP. On
 * failure *out is NULL. The strings in o are copied.
 */
int state_open(struct state **out, const struct state_opts *o, struct sluice_err *err);

/*
 * Take the run lock. wait_seconds < 0: fail at once; 0..N: wait up to N
 * seconds. When someone else holds it: SLUICE_ELOCK with a message naming
 * the holder and since when, e.g.
 *   "state is locked by alice (pid 4242 on host ci-7, run 6f1c...) since
 *    2026-11-24T19:00:02Z; wait with --wait-lock SECONDS"
 * A lock left by a dead process (kill -9) is taken over, never waited on.
 */
int state_lock(struct state *st, int wait_seconds, struct sluice_err *err);

/* Whether this process holds the run lock (state_lock succeeded). */
int state_is_locked(const struct state *st);

/* All records of this project and target: a dict unique_id -> record, allocated in a. */
int state_load(struct state *st, struct arena *a, struct val *records, struct sluice_err *err);

/*
 * The records of another target of the same project in the same store
 * (the environments a run may reuse from, docs/environments.md): like
 * state_load, read-only, no lock needed or taken. A target that never
 * ran: an empty dict. target equal to st's own: state_load.
 */
int state_load_target(struct state *st, const char *target, struct arena *a, struct val *records,
		      struct sluice_err *err);

/*
 * Store (replace) one record. Durable on return. Thread-safe. Needs the
 * lock (a put without it could be lost to another run's compaction):
 * without it, SLUICE_EUSAGE.
 */
int state_put(struct state *st, const char *unique_id, const struct val *record, struct sluice_err *err);

/*
 * Forget one node's record, as if it had never been built (sluice cache
 * prune). Needs the lock, like put; durable on return. In a journal, a
 * forgotten node is an entry whose record is null, folded away by the
 * next compaction.
 */
int state_forget(struct state *st, const char *unique_id, struct sluice_err *err);

/*
 * History: one record per run (a dict: invocation_id, started_at,
 * elapsed_time, user, command, status, exit_status, counts; see
 * history.h), appended at the end of the run. Needs the lock, like put;
 * durable on return. A backend that keeps no history: SLUICE_ENOTSUP.
 */
int state_history_put(struct state *st, const struct val *run, struct sluice_err *err);
/*
 * The last n runs of this project and target, newest first, as a list of
 * dicts allocated in a. No lock needed (a fresh worker reads it). State
 * written before history existed has none: an empty list.
 */
int state_history_load(struct state *st, int n, struct arena *a, struct val *runs, struct sluice_err *err);
/* How many runs the s3:// backend keeps (local and warehouse keep all). */
#define STATE_HISTORY_KEEP 200

/*
 * End of run: compact what put wrote (local: journal into one file).
 * Without the lock there is nothing of ours to compact: returns 0.
 */
int state_finish(struct state *st, struct sluice_err *err);

/* Release the lock and free; accepts NULL. */
void state_close(struct state *st);

/*
 * For the backends (state-*.c) only, which define SLUICE_STATE_BACKEND
 * before including this header; the rest of the engine sees none of it.
 * state.c owns the common part: choosing the backend, serialising records
 * to JSON text, polling for the lock, the lock message's wording.
 */
#ifdef SLUICE_STATE_BACKEND
#include <stddef.h>
#include <jansson.h>
#include "util/buf.h"

struct state_backend {
	const char *name;
	/* Allocate the instance (struct state first) and prepare storage. */
	int (*open)(const struct state_opts *o, struct state **out, struct sluice_err *err);
	/*
	 * One attempt at the lock, never blocking on it: 0 when taken,
	 * SLUICE_ELOCK with holder set by state_holder_text() and since
	 * (ISO-8601 UTC or "") when someone else has it, other codes on error.
	 */
	int (*lock)(struct state *st, struct buf *holder, struct buf *since, struct sluice_err *err);
	/* Fill records (an empty dict) with unique_id -> record, allocated in a. */
	int (*load)(struct state *st, struct arena *a, struct val *records, struct sluice_err *err);
	/* The same for another target of st's project; never under a lock of that target's. */
	int (*load_target)(struct state *st, const char *target, struct arena *a, struct val *records,
			   struct sluice_err *err);
	/*
	 * record: compact JSON text of an object, no newline. Called only
	 * under the lock, from several threads at once: the backend
	 * serialises what must be, and returns once the record is durable.
	 */
	int (*put)(struct state *st, const char *unique_id, const char *record, size_t len,
		   struct sluice_err *err);
	/* Remove one record, under the lock; durable on return. */
	int (*forget)(struct state *st, const char *unique_id, struct sluice_err *err);
	/*
	 * Append one run's record (compact JSON text of an object), under
	 * the lock; NULL: no history. history_load fills runs (an empty
	 * array) with at most n records, newest first, lock or not.
	 */
	int (*history_put)(struct state *st, const char *run, size_t len, struct sluice_err *err);
	int (*history_load)(struct state *st, int n, json_t *runs, struct sluice_err *err);
	/* Called only under the lock, with no put running. */
	int (*finish)(struct state *st, struct sluice_err *err);
	/* Release the lock if held and free the instance (not NULL). */
	void (*close)(struct state *st);
};

/* The common part every instance starts with. */
struct state {
	const struct state_backend *be;
	char *project, *target, *user, *invocation_id, *host;
	int locked;
};

extern const struct state_backend state_local;
extern const struct state_backend state_warehouse;
extern const struct state_backend state_s3;

/* Fill the common part (copies the strings). */
void state_base_init(struct state *st, const struct state_backend *be, const struct state_opts *o);
void state_base_release(struct state *st);
/*
 * The common part of a read-only view of another target of st's
 * project (load_target): st's strings borrowed, target's too, no lock.
 * Never released.
 */
void state_base_peer(struct state *peer, const struct state *st, const char *target);
/* "alice (pid 4242 on host ci-7, run 6f1c...)": how a lock holder is named. */
void state_holder_text(struct buf *b, const char *user, long long pid, const char *host,
		       const char *invocation_id);
/*
 * Snapshots (one JSON object: format, project, target, records, and
 * what a backend adds) are read the same way by every backend that keeps
 * one. Parse text and check it is a snapshot this sluice reads, of st's
 * project and target, with a "records" object: 0 and *out (a new
 * reference), or -1 with why set to what is wrong, to be placed by the
 * caller in its own message.
 */
#define STATE_SNAPSHOT_FORMAT 1
/*
 * Snapshot text: the head (format, project, target, then extra's keys;
 * extra is stolen, may be NULL) and one record a line, sorted by
 * unique_id, so it greps and diffs well. what names the snapshot in
 * error messages.
 */
int state_snapshot_format(const struct state *st, json_t *extra, json_t *recs, const char *what, struct buf *out,
			  struct sluice_err *err);
int state_snapshot_parse(const struct state *st, const char *text, size_t len, json_t **out, struct buf *why);
/*
 * The same, the records converted into values one by one as they are
 * read (a 10,000-record snapshot is never one Jansson tree): appended to
 * records (a dict) in a, whose entries are the caller's whatever the
 * outcome. 0, or -1 with why set.
 */
int state_snapshot_load(const struct state *st, const char *text, size_t len, struct arena *a, struct val *records,
			struct buf *why);

/*
 * Names (project, target) as file names or object key segments: keep
 * [A-Za-z0-9_.-] but a leading dot, %XX the rest.
 */
void state_name_part(struct buf *b, const char *name);

/* Now in UTC: ISO-8601 "2026-11-24T19:00:02Z", or with sql a timestamp literal's "2026-11-24 19:00:02". */
void state_now_utc(char out[32], int sql);
#endif

#endif
