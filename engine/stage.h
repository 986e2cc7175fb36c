/*
 * stage.h: moving a query's rows from a database into object storage
 * (unload) and from object storage into a table (load), in bounded memory,
 * with the row counts of every hop so none is lost or duplicated.
 *
 * An unload writes one generation: CSV part files and a manifest in
 * Redshift's MANIFEST VERBOSE shape under "<model>/<invocation_id>/" of
 * the stage store. Where the connector streams COPY (copy_out), parts are
 * cut from that stream at row boundaries; otherwise rows come through
 * query() and are written as CSV here; on a warehouse that unloads by
 * itself (dialect unload slot, Redshift) the server writes both.
 *
 * A load fills a relation that the caller has made ready (or that it
 * creates from the manifest's schema) from every part of a generation, or
 * from every object under a prefix (S3 sources), and checks the counts.
 * It never touches the load's target: materialize.c swaps or merges
 * afterwards, in the same transaction.
 *
 * Not here: deciding what runs (build.c), transactions (materialize.c),
 * object storage protocols (connectors/objstore.h).
 */
#ifndef SLUICE_STAGE_H
#define SLUICE_STAGE_H

#include "../connectors/connector.h"
#include "../connectors/objstore.h"
#include "dialect.h"
#include "util/arena.h"
#include "value.h"

#define STAGE_MANIFEST "manifest"

/*
 * A generation that a load reads while its unload writes it, so the two
 * hops overlap. The unload announces each part once the store holds it
 * whole (what put_stream guarantees when it returns: renamed into place
 * on file://, a completed upload on S3), with the columns at the first
 * one, and the caller ends the feed with the unload's outcome. A load
 * reads the parts in order as they come and waits for the next one or
 * the end; the manifest, written last, is still what it checks against.
 * Thread-safe: one writer, any number of readers.
 */
struct stage_feed;

/* A feed not yet ended for the unload named name (for messages); caller owns it. */
struct stage_feed *stage_feed_new(const char *name);
/* Once no reader can still wait on it; accepts NULL. */
void stage_feed_free(struct stage_feed *f);
/*
 * The unload ended: rc 0 with the rows it wrote, or its error (msg). Wakes
 * every reader. Call it exactly once, on every path, or loads wait forever.
 */
void stage_feed_end(struct stage_feed *f, int rc, const char *msg, long long rows);

struct stage_unload {
	struct sluice_conn *c;
	const struct dialect *d;
	const char *audit;            /* leading comment for statements */
	const char *sql;              /* the compiled SELECT */
	struct objstore *store;
	const char *store_url;        /* the store's root URL, for manifest entries */
	const char *prefix;           /* generation: "<model>/<invocation_id>/" */
	const struct val *config;     /* gzip, max_file_size */
	const char *iam_role;         /* for server-side unloads, or NULL */
	struct stage_feed *feed;      /* announce each part as it completes, or NULL */
	/*
	 * Several streams, when u->sql reads one table whole and the dialect
	 * can share a snapshot (its snapshot_* slots): at most `streams`
	 * (fewer for a small table). open_streams opens up to want extra
	 * connections to c's database, idle and in autocommit, each with a
	 * stage store of its own (a store is used by one thread at a time),
	 * and returns how many it opened; close_streams gives them back.
	 * NULL open_streams or streams <= 1: one stream, on c.
	 */
	int streams;
	size_t (*open_streams)(void *ud, size_t want, struct sluice_conn **aux, struct objstore **stores);
	void (*close_streams)(void *ud, struct sluice_conn **aux, struct objstore **stores, size_t n);
	void *streams_ud;
	/* Whether the run is being cancelled (NULL: never): the streams stop. */
	int (*cancelled)(void *ud);
	void *cancel_ud;
};

/* The most streams an unload reads a table in. */
#define STAGE_MAX_STREAMS 8

/*
 * Whether an unload's config names a compression and a format there are:
 * 0, or SLUICE_EUSAGE naming the value. stage_unload takes a config that
 * passed it (the kind checks when it prepares the node).
 */
int stage_config_check(const struct val *config, struct sluice_err *err);
/* Whether an unload's config asks for parts in PostgreSQL's binary COPY format (format='binary'). */
int stage_binary(const struct val *config);
/*
 * Unload u->sql. *rows: rows written; *reported: what the database said
 * it sent (-1 when it says nothing; the sum of the streams'); a difference
 * is an error, in any stream. *streams: how many read the rows. On failure
 * (of any stream: the others stop), parts already written stay (no
 * manifest is written, so no load reads them), a multipart upload under
 * way is aborted, and retention removes the rest later.
 */
int stage_unload(const struct stage_unload *u, long long *rows, long long *reported, int *streams,
		 struct sluice_err *err);

struct stage_load {
	struct sluice_conn *c;
	const struct dialect *d;
	const char *audit;
	struct objstore *store;
	const char *store_url;
	const char *prefix;           /* a generation ("<model>/<id>/", read its manifest) */
	int listing;                  /* 1: prefix is an S3 source location: load every object under it */
	const char *into;             /* quoted relation to load into */
	int create;                   /* create `into` first: from the schema, else like `like` */
	const char *like;
	const char *const *col_names; /* listing loads: the columns (else from the manifest) */
	const char *const *col_types;
	size_t ncols;
	const char *iam_role;
	int header;                   /* listing loads: files start with a header line */
	/*
	 * The unload is writing the generation now, or NULL: read its parts
	 * as they complete, then wait for its end (a failed unload fails the
	 * load) and its manifest. counts->unloaded then comes from the feed.
	 */
	struct stage_feed *feed;
	/*
	 * Several streams: aux[0..naux) are extra connections to c's
	 * database (idle, autocommit), used only when create is set and the
	 * connector streams COPY in. Each takes the next part (in the feed's
	 * or the manifest's order) and copies it into streams_rel, a table
	 * made and committed on aux[0] (a left-over one is dropped first),
	 * so all of them can write it at once; into is then never created:
	 * once every count agrees, c renames streams_rel to into_ident inside
	 * its transaction, and nothing was visible to readers before. On
	 * failure streams_rel is dropped. naux 0: one stream, on c, as before.
	 */
	struct sluice_conn *const *aux;
	struct objstore *const *aux_stores;   /* one per aux: a store is used by one thread at a time */
	size_t naux;
	const char *streams_rel;      /* quoted, in into's schema */
	const char *into_ident;       /* into's name alone, for the rename */
	/* Whether the run is being cancelled (NULL: never): streams stop taking parts. */
	int (*cancelled)(void *ud);
	void *cancel_ud;
};

struct stage_counts {
	long long unloaded;           /* what the unload reported (-1: not known, e.g. a source) */
	long long manifest;           /* the manifest's meta.record_count (-1: no manifest) */
	long long loaded;             /* what the database loaded */
	int streams;                  /* connections that loaded parts (1 without aux) */
};

/*
 * Load and check: counts->unloaded must be set by the caller (the feed
 * sets it when there is one); a mismatch between any two known counts,
 * or a part read that is not the manifest's at that place, is SLUICE_EDB.
 */
int stage_load(const struct stage_load *l, struct stage_counts *counts, struct sluice_err *err);

/*
 * Keep the newest `keep` generations under "<dir>/" (one target's of a
 * model: "<model>/<target>"; generation names sort by time, invocation
 * ids being UUIDv7) and delete the older ones; *deleted counts objects
 * removed.
 */
int stage_retain(struct objstore *s, const char *dir, int keep, long long *deleted, struct sluice_err *err);

/* A version for the objects under prefix: a hash over (key, ETag, size) of each. */
int stage_listing_version(struct objstore *s, const char *prefix, struct buf *out, struct sluice_err *err);

/*
 * Open the stage store of a connection's settings (`stage:`, default
 * file://.sluice/stage; credentials from its `s3:` block), or the store at
 * url with those credentials. A relative file:// URL is under project_dir.
 * *url gets the normalised root URL (heap) even on failure.
 */
int stage_store_open(const struct val *settings, const char *project_dir, struct objstore **out,
		     char **url, struct sluice_err *err);
int stage_store_open_url(const char *spec, const struct val *settings, const char *project_dir,
			 struct objstore **out, char **url, struct sluice_err *err);

#endif
