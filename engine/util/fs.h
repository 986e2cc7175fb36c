/*
 * fs.h: small file-system helpers with checked writes.
 */
#ifndef SLUICE_FS_H
#define SLUICE_FS_H

#include <stddef.h>
#include <sys/types.h>
#include "buf.h"
#include "err.h"

/* Read a whole file into out (appended). */
int fs_read_file(const char *path, struct buf *out, struct sluice_err *err);
/* Write via "<path>.tmp.<pid>" + fsync + rename, so readers see old or new, never half. */
int fs_write_atomic(const char *path, const void *data, size_t len, struct sluice_err *err);
/*
 * The same, written piece by piece: fs_atomic_open, any number of
 * fs_atomic_write (buffered: 64 KiB at a time reach the file), then
 * fs_atomic_close, which renames the file into place when every write
 * succeeded (commit non-zero) and removes it otherwise. The first error
 * is kept and returned by fs_atomic_close.
 */
struct fs_atomic {
	const char *path;
	struct buf tmp, pending;
	int fd, rc;
	struct sluice_err *err;
	off_t written, started;   /* bytes written; and handed to writeback (fs.c) */
};
int fs_atomic_open(struct fs_atomic *f, const char *path, struct sluice_err *err);
int fs_atomic_write(struct fs_atomic *f, const void *data, size_t len);
int fs_atomic_close(struct fs_atomic *f, int commit);
/* Plain write (no fsync): for derived files such as target/compiled. */
int fs_write_file(const char *path, const void *data, size_t len, struct sluice_err *err);
/*
 * Write only when the file does not already hold exactly these bytes:
 * re-compiling an unchanged project then costs reads, not rewrites.
 * Creates missing parent directories.
 */
int fs_write_if_changed(const char *path, const void *data, size_t len, struct sluice_err *err);
/* mkdir -p; mode 0777 & ~umask. */
int fs_mkdir_p(const char *path, struct sluice_err *err);
/* mkdir -p of the directory part of path. */
int fs_mkdir_parent(const char *path, struct sluice_err *err);
int fs_exists(const char *path);
int fs_is_dir(const char *path);
/* Recursively remove a directory tree; missing is not an error. */
int fs_remove_tree(const char *path, struct sluice_err *err);

#endif
