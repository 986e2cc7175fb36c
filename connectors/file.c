/*
 * file.c: the file:// object store (a local directory behind objstore.h).
 * objstore_open() in registry.c picks it for file:// URLs.
 *
 * Writes go to ".sluice-tmp-<pid>.<n>.<name>" beside the target and are renamed into place after
 * fsync, so a reader sees the old object or the new one, never half.
 * Keys map to paths under the root; keys with "." or ".." segments or a
 * leading '/' are refused so a key cannot escape the root.
 *
 * Conditional writes (put_if) are real, not best effort: every change to
 * a directory's entries (rename into place, unlink) happens under an
 * exclusive flock() of that directory, so checking the current ETag and
 * renaming over it is one step for every writer going through this file.
 * The ETag is the file's inode, size and modification time: a replaced
 * object always gets a new inode while the old one is still linked.
 *
 * Not for: remote file systems' locking semantics (flock on NFS is not
 * to be trusted), or programs that write into the directory behind
 * sluice's back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "objstore.h"
#include "../engine/util/fs.h"
#include "../engine/util/xalloc.h"

struct file_store {
	struct objstore base;
	char *root;               /* absolute directory, no trailing '/' */
};

/* In-flight writes: ".sluice-tmp-<pid>.<n>.<name>", hidden from list(). */
#define FILE_TMP_PREFIX ".sluice-tmp-"

static atomic_uint file_tmp_seq;

static int file_path(struct file_store *s, const char *key, struct buf *out, struct sluice_err *err)
{
	const char *p = key;

	if (!*key || *key == '/')
		return err_set(err, SLUICE_EUSAGE, "file://%s: bad key '%s'", s->root, key);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return err_set(err, SLUICE_EUSAGE, "file://%s: bad key '%s'", s->root, key);
		p += n;
		if (*p == '/')
			p++;
	}
	buf_printf(out, "%s/%s", s->root, key);
	return 0;
}

static void file_etag(const struct stat *st, char out[OBJSTORE_ETAG_SIZE])
{
	snprintf(out, OBJSTORE_ETAG_SIZE, "%llx-%llx-%llx.%09ld", (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size, (unsigned long long)st->st_mtim.tv_sec,
		 (long)st->st_mtim.tv_nsec);
}

/*
 * Open path's directory and flock() it exclusively: the guard of every
 * change to its entries. Returns the descriptor (close it to unlock) or
 * a negative code.
 */
static int lock_parent(const char *path, struct sluice_err *err)
{
	const char *slash = strrchr(path, '/');
	struct buf dir = BUF_INIT;
	int fd;

	buf_add(&dir, path, slash && slash != path ? (size_t)(slash - path) : 1);
	fd = open(dir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fd = err_set(err, SLUICE_EIO, "%s: %s", dir.s, strerror(errno));
	} else {
		while (flock(fd, LOCK_EX) < 0) {
			if (errno == EINTR)
				continue;
			err_set(err, SLUICE_EIO, "%s: flock: %s", dir.s, strerror(errno));
			close(fd);
			fd = SLUICE_EIO;
			break;
		}
	}
	buf_release(&dir);
	return fd;
}

static int parent_exists(const char *path)
{
	const char *slash = strrchr(path, '/');
	struct buf dir = BUF_INIT;
	int yes;

	buf_add(&dir, path, slash && slash != path ? (size_t)(slash - path) : 1);
	yes = fs_is_dir(dir.s);
	buf_release(&dir);
	return yes;
}

/* What put_if asks for; NULL for a plain write. */
struct file_cond {
	const char *if_match;
	int if_none_match;
	char *etag_out;
};

/*
 * Rename tmp over path under the directory's lock, after checking cond,
 * then make the new entry durable. On SLUICE_ECONFLICT nothing changed.
 */
static int file_commit(const char *path, const char *tmp, const struct file_cond *cond,
		       struct sluice_err *err)
{
	int dfd = lock_parent(path, err), ret = 0;
	struct stat st;

	if (dfd < 0)
		return dfd;
	if (cond) {
		char cur[OBJSTORE_ETAG_SIZE] = "";
		int exists = stat(path, &st) == 0;

		if (!exists && errno != ENOENT) {
			ret = err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (exists)
			file_etag(&st, cur);
		if (cond->if_none_match && exists)
			ret = err_set(err, SLUICE_ECONFLICT, "%s: PreconditionFailed: the object exists", path);
		else if (!cond->if_none_match && !exists)
			ret = err_set(err, SLUICE_ECONFLICT, "%s: PreconditionFailed: no such object", path);
		else if (!cond->if_none_match && strcmp(cur, cond->if_match ? cond->if_match : "") != 0)
			ret = err_set(err, SLUICE_ECONFLICT, "%s: PreconditionFailed: the object changed", path);
		if (ret < 0)
			goto out;
	}
	if (rename(tmp, path) < 0) {
		ret = err_set(err, SLUICE_EIO, "%s: rename: %s", path, strerror(errno));
		goto out;
	}
	if (fsync(dfd) < 0) {
		ret = err_set(err, SLUICE_EIO, "%s: fsync of the directory: %s", path, strerror(errno));
		goto out;
	}
	if (cond && cond->etag_out) {
		if (stat(path, &st) < 0)
			cond->etag_out[0] = '\0';
		else
			file_etag(&st, cond->etag_out);
	}
out:
	close(dfd);
	return ret;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Write the object: data/len when fn is NULL, else what fn yields. Temp
 * file + fsync + rename (when cond holds); the temp file is removed on
 * any failure.
 */
static int file_write(struct file_store *s, const char *key, const void *data, size_t len,
		      sluice_read_fn fn, void *ud, const struct file_cond *cond, struct sluice_err *err)
{
	struct buf path = BUF_INIT, tmp = BUF_INIT;
	char *chunk = NULL;
	int fd = -1, ret;

	ret = file_path(s, key, &path, err);
	if (ret < 0)
		goto out;
	ret = fs_mkdir_parent(path.s, err);
	if (ret < 0)
		goto out;
	/* same directory as the target, so rename() stays on one file system */
	{
		const char *slash = strrchr(path.s, '/');

		buf_add(&tmp, path.s, (size_t)(slash - path.s) + 1);
		buf_printf(&tmp, "%s%ld.%u.%s", FILE_TMP_PREFIX, (long)getpid(),
			   atomic_fetch_add(&file_tmp_seq, 1), slash + 1);
	}
	fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		ret = err_set(err, SLUICE_EIO, "%s: %s", tmp.s, strerror(errno));
		goto out;
	}
	if (!fn) {
		if (write_all(fd, data, len) < 0) {
			ret = err_set(err, SLUICE_EIO, "%s: write: %s", path.s, strerror(errno));
			goto fail;
		}
	} else {
		chunk = xmalloc(64 * 1024);
		for (;;) {
			ssize_t n = fn(ud, chunk, 64 * 1024, err);

			if (n < 0) {
				ret = err_prefix(err, "%s", path.s);
				goto fail;
			}
			if (n == 0)
				break;
			if (write_all(fd, chunk, (size_t)n) < 0) {
				ret = err_set(err, SLUICE_EIO, "%s: write: %s", path.s, strerror(errno));
				goto fail;
			}
		}
	}
	if (fsync(fd) < 0) {
		ret = err_set(err, SLUICE_EIO, "%s: fsync: %s", path.s, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = err_set(err, SLUICE_EIO, "%s: close: %s", path.s, strerror(errno));
		goto fail;
	}
	fd = -1;
	ret = file_commit(path.s, tmp.s, cond, err);
	if (ret < 0)
		goto fail;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp.s);
out:
	free(chunk);
	buf_release(&path);
	buf_release(&tmp);
	return ret;
}

static int fst_put(struct objstore *o, const char *key, const void *data, size_t len,
		   struct sluice_err *err)
{
	return file_write((struct file_store *)o, key, data, len, NULL, NULL, NULL, err);
}

static int fst_put_if(struct objstore *o, const char *key, const void *data, size_t len,
		      const char *if_match, int if_none_match, char etag_out[OBJSTORE_ETAG_SIZE],
		      struct sluice_err *err)
{
	struct file_cond cond = { if_match, if_none_match, etag_out };

	return file_write((struct file_store *)o, key, data, len, NULL, NULL, &cond, err);
}

static int fst_put_stream(struct objstore *o, const char *key, long long size_hint, sluice_read_fn fn,
			  void *ud, struct sluice_err *err)
{
	(void)size_hint;
	return file_write((struct file_store *)o, key, NULL, 0, fn, ud, NULL, err);
}

static int fst_get(struct objstore *o, const char *key, sluice_write_fn fn, void *ud,
		   struct sluice_err *err)
{
	struct file_store *s = (struct file_store *)o;
	struct buf path = BUF_INIT;
	char *chunk = NULL;
	int fd = -1, ret;

	ret = file_path(s, key, &path, err);
	if (ret < 0)
		goto out;
	fd = open(path.s, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = err_set(err, SLUICE_EIO, "%s: %s", path.s,
			      errno == ENOENT ? "no such object" : strerror(errno));
		goto out;
	}
	chunk = xmalloc(64 * 1024);
	for (;;) {
		ssize_t n = read(fd, chunk, 64 * 1024);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = err_set(err, SLUICE_EIO, "%s: read: %s", path.s, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		ret = fn(ud, chunk, (size_t)n, err);
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(chunk);
	buf_release(&path);
	return ret;
}

static int fst_head(struct objstore *o, const char *key, struct objstore_info *info,
		    struct sluice_err *err)
{
	struct file_store *s = (struct file_store *)o;
	struct buf path = BUF_INIT;
	struct stat st;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = file_path(s, key, &path, err);
	if (ret < 0)
		goto out;
	if (stat(path.s, &st) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			ret = err_set(err, SLUICE_EIO, "%s: %s", path.s, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		struct tm tm;

		info->exists = 1;
		info->size = (long long)st.st_size;
		file_etag(&st, info->etag);
		if (gmtime_r(&st.st_mtime, &tm))
			strftime(info->last_modified, sizeof(info->last_modified),
				 "%a, %d %b %Y %H:%M:%S GMT", &tm);
	}
out:
	buf_release(&path);
	return ret;
}

/* Collected keys, sorted at the end so file:// lists in key order like S3. */
struct key_entry {
	char *key;
	long long size;
	char etag[OBJSTORE_ETAG_SIZE];
};

struct key_list {
	struct key_entry *v;
	size_t n, cap;
};

static int is_temp_name(const char *name)
{
	return strncmp(name, FILE_TMP_PREFIX, strlen(FILE_TMP_PREFIX)) == 0;
}

static int walk(const char *dir, const char *rel, struct key_list *kl, struct sluice_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_set(err, SLUICE_EIO, "%s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		struct buf full = BUF_INIT, key = BUF_INIT;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    is_temp_name(de->d_name))
			continue;
		buf_printf(&full, "%s/%s", dir, de->d_name);
		buf_printf(&key, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		if (stat(full.s, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				ret = walk(full.s, key.s, kl, err);
			} else if (S_ISREG(st.st_mode)) {
				if (kl->n == kl->cap) {
					kl->cap = kl->cap ? kl->cap * 2 : 64;
					kl->v = xrealloc(kl->v, kl->cap * sizeof(*kl->v));
				}
				kl->v[kl->n].size = (long long)st.st_size;
				file_etag(&st, kl->v[kl->n].etag);
				kl->v[kl->n++].key = buf_detach(&key, NULL);
			}
		}
		buf_release(&full);
		buf_release(&key);
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct key_entry *)a)->key, ((const struct key_entry *)b)->key);
}

static int fst_list(struct objstore *o, const char *prefix, objstore_list_fn fn, void *ud,
		    struct sluice_err *err)
{
	struct file_store *s = (struct file_store *)o;
	struct key_list kl = { NULL, 0, 0 };
	size_t i, plen = prefix ? strlen(prefix) : 0;
	int ret;

	/* Walks the whole root: stages are small directories, not data lakes. */
	ret = walk(s->root, "", &kl, err);
	if (ret == 0 && kl.n)
		qsort(kl.v, kl.n, sizeof(*kl.v), key_cmp);
	for (i = 0; ret == 0 && i < kl.n; i++) {
		struct objstore_entry e;

		if (plen && strncmp(kl.v[i].key, prefix, plen) != 0)
			continue;
		e.key = kl.v[i].key;
		e.size = kl.v[i].size;
		e.etag = kl.v[i].etag;
		ret = fn(ud, &e);
	}
	for (i = 0; i < kl.n; i++)
		free(kl.v[i].key);
	free(kl.v);
	return ret;
}

static int fst_del(struct objstore *o, const char *key, struct sluice_err *err)
{
	struct file_store *s = (struct file_store *)o;
	struct buf path = BUF_INIT;
	int ret = file_path(s, key, &path, err), dfd = -1;

	if (ret == 0 && !parent_exists(path.s))
		goto out;       /* no directory, no object: deleting it succeeds */
	if (ret == 0 && (dfd = lock_parent(path.s, err)) < 0)
		ret = dfd;
	if (ret == 0 && unlink(path.s) < 0 && errno != ENOENT)
		ret = err_set(err, SLUICE_EIO, "%s: delete: %s", path.s, strerror(errno));
	else if (ret == 0 && fsync(dfd) < 0)
		ret = err_set(err, SLUICE_EIO, "%s: fsync of the directory: %s", path.s, strerror(errno));
out:
	if (dfd >= 0)
		close(dfd);
	buf_release(&path);
	return ret;
}

static void fst_close(struct objstore *o)
{
	struct file_store *s = (struct file_store *)o;

	if (!s)
		return;
	free(s->root);
	free(s);
}

static const struct objstore_ops file_store_ops = {
	.scheme = "file",
	.put = fst_put,
	.put_if = fst_put_if,
	.put_stream = fst_put_stream,
	.get = fst_get,
	.head = fst_head,
	.list = fst_list,
	.del = fst_del,
	.close = fst_close,
};

int file_store_open(const char *url, struct objstore **out, struct sluice_err *err)
{
	struct file_store *s;
	const char *path;
	size_t n;
	int ret;

	*out = NULL;
	if (strncmp(url, "file://", 7) != 0 || url[7] != '/')
		return err_set(err, SLUICE_EUSAGE, "%s: want file:///absolute/dir", url);
	path = url + 7;
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &file_store_ops;
	s->root = xstrndup(path, n);
	ret = fs_mkdir_p(s->root, err);
	if (ret < 0) {
		fst_close(&s->base);
		return ret;
	}
	*out = &s->base;
	return 0;
}
