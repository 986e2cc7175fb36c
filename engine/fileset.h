/*
 * fileset.h: the files a shell model declares it reads (inputs, glob
 * patterns) or writes (outputs, paths), as the state keeps them: a dict
 * path -> {size, mtime_ns, hash}, where hash is the XXH3-128 of the
 * content in 32 hex digits and mtime_ns a decimal string (nanoseconds do
 * not fit a double).
 *
 * The fast path: a file whose size and mtime_ns equal those of its entry
 * in the previous scan keeps that entry's hash without being read, as
 * sources with trust_timestamps do. Touching a file therefore costs one
 * re-hash, and no rebuild when the content is the same.
 *
 * Not here: deciding what a changed file means (fingerprint.c).
 */
#ifndef SLUICE_FILESET_H
#define SLUICE_FILESET_H

#include <stddef.h>
#include "util/arena.h"
#include "util/err.h"
#include "util/hash.h"
#include "value.h"

enum fileset_mode {
	FILESET_GLOB,      /* glob(3) patterns (with {a,b}); a matching directory stands for every file under it */
	FILESET_PATHS,     /* plain file paths; missing ones are left out of the dict */
};

/*
 * Scan the files named by patterns (a list of strings, relative to dir or
 * absolute) into *out, a new dict in a keyed by the path as written
 * (relative paths stay relative to dir). prev is the previous dict (or
 * NULL). *rehashed (if not NULL) counts the files that had to be read.
 * Files and directories whose name starts with '.' are skipped when a
 * directory is expanded. A file that cannot be read: SLUICE_EIO naming it.
 */
int fileset_scan(const char *dir, const struct val *patterns, enum fileset_mode mode,
		 const struct val *prev, struct arena *a, struct val *out, size_t *rehashed,
		 struct sluice_err *err);

/* XXH3-128 of a file's content as 32 hex digits and NUL; SLUICE_EIO when it cannot be read. */
int fileset_hash_file(const char *path, char out[HASH_HEX], struct sluice_err *err);

#endif
