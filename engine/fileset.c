/*
 * fileset.c: globbing, stat and content hashes of declared files, with
 * the size+mtime fast path; see fileset.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileset.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/strmap.h"
#include "util/xalloc.h"

#define MAX_DEPTH 64

/* 0, or the errno that stopped the read. */
static int hash_file(const char *path, char out[HASH_HEX])
{
	struct hasher h;
	char chunk[65536];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return errno;
	hasher_init(&h);
	while (!e && (r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r > 0)
			hasher_add(&h, chunk, (size_t)r);
		else if (errno != EINTR)
			e = errno;
	}
	hasher_finish(&h, out);
	close(fd);
	return e;
}

int fileset_hash_file(const char *path, char out[HASH_HEX], struct sluice_err *err)
{
	int e = hash_file(path, out);

	return e ? err_set(err, SLUICE_EIO, "%s: %s", path, strerror(e)) : 0;
}

struct scan {
	const char *dir;
	struct strmap prev;            /* path -> its entry in the previous scan */
	struct arena *a;
	struct val *out;
	struct strmap seen;
	size_t rehashed;
	struct sluice_err *err;
};

/* Absolute path of a name as written. */
static void abs_path(struct buf *b, const char *dir, const char *name)
{
	if (name[0] == '/')
		buf_puts(b, name);
	else
		buf_printf(b, "%s/%s", dir, name);
}

/* One regular file: its entry from the previous scan, or a fresh hash. */
static int add_file(struct scan *s, const char *name, const struct stat *st)
{
	char mtime[32], hash[HASH_HEX];
	const struct val *old;
	const char *h = NULL;
	struct val e;
	char *key;

	if (strmap_get(&s->seen, name))
		return 0;
	snprintf(mtime, sizeof(mtime), "%lld", (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec);
	old = strmap_get(&s->prev, name);
	if (old && val_get_int(old, "size", -1) == (long long)st->st_size &&
	    !strcmp(val_get_str(old, "mtime_ns", ""), mtime))
		h = val_get_str(old, "hash", NULL);
	if (!h) {
		struct buf path = BUF_INIT;
		int fail;
		abs_path(&path, s->dir, name);
		fail = hash_file(path.s, hash);
		buf_release(&path);
		if (fail)
			return err_set(s->err, SLUICE_EIO, "'%s': %s", name, strerror(fail));
		h = hash;
		s->rehashed++;
	}
	key = arena_strdup(s->a, name);
	strmap_put(&s->seen, key, (void *)1);
	e = val_dict_new();
	val_dict_set(s->a, &e, "size", val_num((double)st->st_size));
	val_dict_set(s->a, &e, "mtime_ns", val_str(arena_strdup(s->a, mtime)));
	val_dict_set(s->a, &e, "hash", val_str(arena_strdup(s->a, h)));
	val_dict_append(s->a, s->out, key, e);   /* seen says it is new */
	return 0;
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every file under a directory, in name order, dot files skipped. */
static int add_dir(struct scan *s, const char *name, int depth)
{
	struct buf path = BUF_INIT;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (depth > MAX_DEPTH)
		return err_set(s->err, SLUICE_EIO, "'%s': directories nested too deep (a symlink loop?)", name);
	abs_path(&path, s->dir, name);
	if (!(d = opendir(path.s))) {
		rc = err_set(s->err, SLUICE_EIO, "'%s': %s", name, strerror(errno));
		buf_release(&path);
		return rc;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct buf child = BUF_INIT;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = xrealloc(names, cap * sizeof(char *));
		}
		buf_printf(&child, "%s%s%s", name, name[strlen(name) - 1] == '/' ? "" : "/", de->d_name);
		names[n++] = buf_detach(&child, NULL);
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_names);
	for (i = 0; i < n; i++) {
		struct buf child = BUF_INIT;
		struct stat st;
		abs_path(&child, s->dir, names[i]);
		if (!rc && !stat(child.s, &st)) {
			if (S_ISDIR(st.st_mode))
				rc = add_dir(s, names[i], depth + 1);
			else if (S_ISREG(st.st_mode))
				rc = add_file(s, names[i], &st);
		}
		buf_release(&child);
		free(names[i]);
	}
	free(names);
	buf_release(&path);
	return rc;
}

static int add_name(struct scan *s, const char *name)
{
	struct buf path = BUF_INIT;
	struct stat st;
	int rc = 0;

	abs_path(&path, s->dir, name);
	if (!stat(path.s, &st)) {
		if (S_ISDIR(st.st_mode))
			rc = add_dir(s, name, 0);
		else if (S_ISREG(st.st_mode))
			rc = add_file(s, name, &st);
	}
	buf_release(&path);
	return rc;
}

/* Backslash-escape glob(3)'s special characters in a literal directory name. */
static void glob_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (strchr("*?[]{}\\", *s))
			buf_addc(b, '\\');
		buf_addc(b, *s);
	}
}

static int add_glob(struct scan *s, const char *pattern)
{
	struct buf pat = BUF_INIT;
	size_t skip = 0, i;
	glob_t g;
	int rc = 0, grc;

	if (pattern[0] != '/') {
		glob_escape(&pat, s->dir);
		buf_addc(&pat, '/');
		skip = strlen(s->dir) + 1;
	}
	buf_puts(&pat, pattern);
	memset(&g, 0, sizeof(g));
	grc = glob(pat.s, GLOB_BRACE, NULL, &g);
	buf_release(&pat);
	if (grc == GLOB_NOSPACE)
		rc = err_set(s->err, SLUICE_EIO, "'%s': out of memory while globbing", pattern);
	for (i = 0; grc == 0 && i < g.gl_pathc && !rc; i++)
		if (strlen(g.gl_pathv[i]) > skip)
			rc = add_name(s, g.gl_pathv[i] + skip);
	globfree(&g);
	return rc;
}

int fileset_scan(const char *dir, const struct val *patterns, enum fileset_mode mode,
		 const struct val *prev, struct arena *a, struct val *out, size_t *rehashed,
		 struct sluice_err *err)
{
	struct scan s = { dir, STRMAP_INIT, a, out, STRMAP_INIT, 0, err };
	size_t i;
	int rc = 0;

	*out = val_dict_new();
	for (i = 0; prev && prev->kind == V_DICT && i < prev->u.dict.n; i++)
		strmap_put(&s.prev, prev->u.dict.keys[i], &prev->u.dict.vals[i]);
	for (i = 0; patterns && patterns->kind == V_LIST && i < patterns->u.list.n && !rc; i++) {
		const char *p = patterns->u.list.items[i].u.str.s;
		if (mode == FILESET_GLOB) {
			rc = add_glob(&s, p);
		} else {
			struct buf path = BUF_INIT;
			struct stat st;
			abs_path(&path, dir, p);
			if (!stat(path.s, &st) && S_ISREG(st.st_mode))
				rc = add_file(&s, p, &st);
			else if (!stat(path.s, &st))
				rc = err_set(err, SLUICE_EIO, "'%s' is not a regular file", p);
			buf_release(&path);
		}
	}
	strmap_release(&s.seen);
	strmap_release(&s.prev);
	if (rehashed)
		*rehashed = s.rehashed;
	return rc;
}
