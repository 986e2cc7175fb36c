/* fs.c: file helpers; see fs.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fs.h"
#include "xalloc.h"

int fs_read_file(const char *path, struct buf *out, struct sluice_err *err)
{
	char tmp[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
			close(fd);
			return SLUICE_EIO;
		}
		buf_add(out, tmp, (size_t)n);
	}
	close(fd);
	return 0;
}

int fs_atomic_open(struct fs_atomic *f, const char *path, struct sluice_err *err)
{
	f->path = path;
	f->err = err;
	f->rc = 0;
	f->written = f->started = 0;
	buf_init(&f->tmp);
	buf_init(&f->pending);
	buf_printf(&f->tmp, "%s.tmp.%ld", path, (long)getpid());
	f->fd = open(f->tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		f->rc = err_set(err, SLUICE_EIO, "%s: %s", f->tmp.s, strerror(errno));
		buf_release(&f->tmp);
	}
	return f->rc;
}

#define ATOMIC_CHUNK 65536

static void write_all(struct fs_atomic *f, const char *p, size_t len)
{
	while (len && !f->rc) {
		ssize_t n = write(f->fd, p, len);
		if (n < 0) {
			if (errno != EINTR)
				f->rc = err_set(f->err, SLUICE_EIO, "%s: %s", f->path, strerror(errno));
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
}

/*
 * Start writing back what is written so far, once a megabyte has piled up:
 * the disk works while the rest of the file is made, and the fsync at the
 * close (which still decides) has less left to wait for. A hint: its
 * errors are the fsync's to report.
 */
#define ATOMIC_WRITEBACK (1 << 20)

static void atomic_writeback(struct fs_atomic *f, size_t len)
{
	f->written += (off_t)len;
	if (f->written - f->started >= ATOMIC_WRITEBACK) {
		sync_file_range(f->fd, f->started, f->written - f->started, SYNC_FILE_RANGE_WRITE);
		f->started = f->written;
	}
}

static void atomic_flush(struct fs_atomic *f)
{
	write_all(f, f->pending.s, f->pending.len);
	atomic_writeback(f, f->pending.len);
	buf_reset(&f->pending);
}

int fs_atomic_write(struct fs_atomic *f, const void *data, size_t len)
{
	if (f->rc)
		return f->rc;
	if (len >= ATOMIC_CHUNK) {
		/* a whole file handed over at once is written as it is, not copied first */
		atomic_flush(f);
		write_all(f, data, len);
		atomic_writeback(f, len);
		return f->rc;
	}
	buf_add(&f->pending, data, len);
	if (f->pending.len >= ATOMIC_CHUNK)
		atomic_flush(f);
	return f->rc;
}

int fs_atomic_close(struct fs_atomic *f, int commit)
{
	if (f->fd < 0)
		return f->rc;
	atomic_flush(f);
	buf_release(&f->pending);
	if (!commit && !f->rc)
		f->rc = SLUICE_EIO;   /* the caller's error is in err already */
	if (!f->rc && fsync(f->fd) < 0)
		f->rc = err_set(f->err, SLUICE_EIO, "%s: fsync: %s", f->path, strerror(errno));
	if (close(f->fd) < 0 && !f->rc)
		f->rc = err_set(f->err, SLUICE_EIO, "%s: close: %s", f->path, strerror(errno));
	if (!f->rc && rename(f->tmp.s, f->path) < 0)
		f->rc = err_set(f->err, SLUICE_EIO, "%s: rename: %s", f->path, strerror(errno));
	if (f->rc)
		unlink(f->tmp.s);
	f->fd = -1;
	buf_release(&f->tmp);
	return f->rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len, struct sluice_err *err)
{
	struct fs_atomic f;

	if (fs_atomic_open(&f, path, err))
		return f.rc;
	fs_atomic_write(&f, data, len);
	return fs_atomic_close(&f, 1);
}

int fs_write_file(const char *path, const void *data, size_t len, struct sluice_err *err)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f)
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	if (fwrite(data, 1, len, f) != len)
		rc = err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	if (fclose(f) != 0 && !rc)
		rc = err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	return rc;
}

static int same_content(const char *path, const void *data, size_t len)
{
	struct stat st;
	char buf[65536];
	const char *p = data;
	int fd = open(path, O_RDONLY | O_CLOEXEC), same = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size == len) {
		same = 1;
		/* the size is known: no read past it just to meet the end (20,000 files in a no-op run) */
		while (same && len && (n = read(fd, buf, len < sizeof(buf) ? len : sizeof(buf))) > 0) {
			same = !memcmp(buf, p, (size_t)n);
			p += n;
			len -= (size_t)n;
		}
		same = same && len == 0;
	}
	close(fd);
	return same;
}

int fs_write_if_changed(const char *path, const void *data, size_t len, struct sluice_err *err)
{
	int rc;

	if (same_content(path, data, len))
		return 0;
	rc = fs_write_file(path, data, len, err);
	if (rc == SLUICE_EIO && errno == ENOENT) {
		if ((rc = fs_mkdir_parent(path, err)))
			return rc;
		rc = fs_write_file(path, data, len, err);
	}
	return rc;
}

int fs_mkdir_p(const char *path, struct sluice_err *err)
{
	char *p = xstrdup(path), *s;
	int rc = 0;

	for (s = p + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0777) < 0 && errno != EEXIST) {
				rc = err_set(err, SLUICE_EIO, "mkdir %s: %s", p, strerror(errno));
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return rc;
}

int fs_mkdir_parent(const char *path, struct sluice_err *err)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int rc;

	if (!slash || slash == path)
		return 0;
	dir = xstrndup(path, (size_t)(slash - path));
	rc = fs_mkdir_p(dir, err);
	free(dir);
	return rc;
}

int fs_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

int fs_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fs_remove_tree(const char *path, struct sluice_err *err)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0)
			return err_set(err, SLUICE_EIO, "rm %s: %s", path, strerror(errno));
		return 0;
	}
	d = opendir(path);
	if (!d)
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	while (!rc && (de = readdir(d))) {
		struct buf child = BUF_INIT;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		buf_printf(&child, "%s/%s", path, de->d_name);
		rc = fs_remove_tree(child.s, err);
		buf_release(&child);
	}
	closedir(d);
	if (!rc && rmdir(path) < 0)
		rc = err_set(err, SLUICE_EIO, "rmdir %s: %s", path, strerror(errno));
	return rc;
}
