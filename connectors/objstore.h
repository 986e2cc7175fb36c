/*
 * objstore.h: the one small interface for object storage (stages, unloads,
 * loads), implemented by s3.c (s3://bucket/prefix) and file.c
 * (file:///dir). The engine picks an implementation by URL scheme through
 * objstore_open() (registry.c, beside the database drivers) and then only
 * talks to the vtable.
 *
 * Keys are relative to the store's root (the URL's bucket + prefix, or the
 * directory) and use '/' as separator. Bodies move through callbacks so a
 * store never holds more than one part (s3) or one read buffer (file).
 *
 * Not for: credentials discovery beyond the settings block and AWS_* env,
 * bucket management, or stage materializations (those live in engine/).
 * A store is used by one thread at a time; every call may block.
 */
#ifndef SLUICE_OBJSTORE_H
#define SLUICE_OBJSTORE_H

#include <stddef.h>
#include "connector.h"

struct objstore;

/*
 * An ETag as the stores report it, without quotes. S3's is its own (an MD5
 * for single-part uploads); file://'s is made of the file's inode, size and
 * modification time, so it changes whenever the object is replaced, but it
 * is not a content hash.
 */
#define OBJSTORE_ETAG_SIZE 80

struct objstore_info {
	int exists;               /* 0: no such key (head() still returns 0) */
	long long size;           /* bytes */
	char etag[OBJSTORE_ETAG_SIZE];
	char last_modified[64];   /* as the store reports it; may be "" */
};

/* One listed object; strings borrowed for the duration of the callback. */
struct objstore_entry {
	const char *key;          /* relative to the store root */
	long long size;
	const char *etag;         /* as head() reports it; may be "" */
};

/* Return 0 to continue, non-zero to stop (list() then returns that value). */
typedef int (*objstore_list_fn)(void *ud, const struct objstore_entry *e);

struct objstore_ops {
	const char *scheme;       /* "s3", "file": for messages */

	/* Store len bytes at key, replacing any object there. */
	int (*put)(struct objstore *s, const char *key, const void *data, size_t len,
		   struct sluice_err *err);
	/*
	 * Optional (NULL: this store cannot write conditionally). Store len
	 * bytes at key only if, atomically with the write:
	 *   if_none_match != 0: no object exists at key (if_match is ignored);
	 *   else: an object exists and its ETag is if_match (as head() gives it).
	 * On success etag_out (may be NULL) receives the new object's ETag, or
	 * "" when the store did not say. A failed condition writes nothing and
	 * returns SLUICE_ECONFLICT. A write whose answer was lost and retried
	 * may report SLUICE_ECONFLICT although it happened: callers re-read
	 * the object before deciding who won.
	 */
	int (*put_if)(struct objstore *s, const char *key, const void *data, size_t len,
		      const char *if_match, int if_none_match, char etag_out[OBJSTORE_ETAG_SIZE],
		      struct sluice_err *err);
	/*
	 * Store what fn yields until it returns 0. s3 uses one PutObject when
	 * the body fits in one part, else a multipart upload (aborted on any
	 * failure) whose part size follows size_hint (the bytes expected, or
	 * -1); file writes a temp file and renames it into place.
	 */
	int (*put_stream)(struct objstore *s, const char *key, long long size_hint, sluice_read_fn fn,
			  void *ud, struct sluice_err *err);
	/* Stream the object's bytes to fn. A missing key is an error. */
	int (*get)(struct objstore *s, const char *key, sluice_write_fn fn, void *ud,
		   struct sluice_err *err);
	/* Fill info; a missing key gives info->exists == 0 and returns 0. */
	int (*head)(struct objstore *s, const char *key, struct objstore_info *info,
		    struct sluice_err *err);
	/* Every key starting with prefix ("" for all), in key order. */
	int (*list)(struct objstore *s, const char *prefix, objstore_list_fn fn, void *ud,
		    struct sluice_err *err);
	/* Delete key; deleting a missing key succeeds (as in S3). */
	int (*del)(struct objstore *s, const char *key, struct sluice_err *err);
	/*
	 * Optional (NULL: call del per key): delete keys[0..n) in as few
	 * requests as the store allows. Missing keys succeed; stops at, and
	 * names, the first key that could not be deleted.
	 */
	int (*del_many)(struct objstore *s, const char *const *keys, size_t n, struct sluice_err *err);
	/* Free the store; accepts NULL. */
	void (*close)(struct objstore *s);
};

/* Implementations embed this first. */
struct objstore {
	const struct objstore_ops *ops;
};

/*
 * Open a store for url: "s3://bucket[/prefix]" (settings is the s3 block
 * from profiles.yml, or NULL for the AWS_* environment alone; see s3.h) or
 * "file:///absolute/dir" (created when missing). Caller owns *out and
 * frees it with objstore_close(). Unknown scheme: SLUICE_EUSAGE.
 */
int objstore_open(const char *url, const struct val *settings, struct objstore **out,
		  struct sluice_err *err);
/* Free a store from objstore_open() (or an implementation's opener); accepts NULL. */
void objstore_close(struct objstore *s);

/* The two implementations, for objstore_open() and tests. */
int s3_store_open(const char *url, const struct val *settings, struct objstore **out,
		  struct sluice_err *err);
int file_store_open(const char *url, struct objstore **out, struct sluice_err *err);

#endif
