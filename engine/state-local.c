/*
 * state-local.c: the `local` state backend, files under
 * <project>/.sluice/state/, one set per target:
 *
 *   <target>.json     snapshot: {"format": 1, "project", "target", "records"}
 *   <target>.journal  puts since the snapshot, one {"uid", "record"} a line
 *   <target>.lock     flock()ed by the run holding the lock; says who it is
 *   <target>.history  one JSON object a line per run, oldest first
 *
 * A put is one write() of one line plus fsync, so kill -9 leaves at most a
 * torn last line, which load ignores and the next lock cuts off. finish
 * writes a new snapshot (temp + fsync + rename + fsync of the directory)
 * and only then empties the journal; replaying a journal the snapshot
 * already holds changes nothing, so a crash anywhere leaves a loadable
 * state. Not for sharing state between machines: that is `warehouse`.
 */
#define SLUICE_STATE_BACKEND
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "json.h"
#include "state.h"
#include "util/strmap.h"
#include "util/fs.h"
#include "util/xalloc.h"


struct local_state {
	struct state base;
	char *dir, *snapshot, *tmp, *journal, *lockfile, *history;
	int lock_fd;             /* the flock()ed lock file, or -1 */
	int journal_fd;          /* O_APPEND; open while the lock is held, else -1 */
	pthread_mutex_t mu;      /* orders appends to the journal */
	off_t journal_size;      /* under mu: where the next line starts */
};

static char *state_path(const char *dir, const char *target, const char *suffix)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s/", dir);
	state_name_part(&b, target);
	buf_puts(&b, suffix);
	return buf_detach(&b, NULL);
}

static void local_free(struct local_state *l)
{
	free(l->dir);
	free(l->snapshot);
	free(l->tmp);
	free(l->journal);
	free(l->lockfile);
	free(l->history);
	pthread_mutex_destroy(&l->mu);
	state_base_release(&l->base);
	free(l);
}

static int local_open(const struct state_opts *o, struct state **out, struct sluice_err *err)
{
	struct local_state *l = xcalloc(1, sizeof(*l));
	struct buf dir = BUF_INIT;
	int rc;

	state_base_init(&l->base, &state_local, o);
	pthread_mutex_init(&l->mu, NULL);
	l->lock_fd = l->journal_fd = -1;
	buf_printf(&dir, "%s/.sluice/state", o->project_dir);
	l->dir = buf_detach(&dir, NULL);
	l->snapshot = state_path(l->dir, o->target, ".json");
	l->tmp = state_path(l->dir, o->target, ".json.tmp");
	l->journal = state_path(l->dir, o->target, ".journal");
	l->lockfile = state_path(l->dir, o->target, ".lock");
	l->history = state_path(l->dir, o->target, ".history");
	if ((rc = fs_mkdir_p(l->dir, err))) {
		local_free(l);
		return err_prefix(err, "state");
	}
	*out = &l->base;
	return 0;
}

static int io_error(struct sluice_err *err, const char *path, const char *what)
{
	return err_set(err, SLUICE_EIO, "%s: %s%s%s", path, what ? what : "", what ? ": " : "", strerror(errno));
}

/* Read a whole file from fd's current position into out. */
static int read_fd(int fd, const char *path, struct buf *out, struct sluice_err *err)
{
	char tmp[65536];
	ssize_t n;

	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return io_error(err, path, NULL);
		}
		buf_add(out, tmp, (size_t)n);
	}
	return 0;
}

/*
 * A file that may be missing: *exists says whether it was there. With st,
 * also its identity, and *keep_fd holds it open (so its inode number
 * cannot be reused by a new file while the caller compares).
 */
static int read_optional(const char *path, struct buf *out, int *exists, struct stat *st, int *keep_fd,
			 struct sluice_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	*exists = fd >= 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : io_error(err, path, NULL);
	if (st && fstat(fd, st) < 0)
		rc = io_error(err, path, NULL);
	else
		rc = read_fd(fd, path, out, err);
	if (keep_fd && !rc)
		*keep_fd = fd;
	else
		close(fd);
	return rc;
}

static int snapshot_error(struct local_state *l, struct sluice_err *err, const char *why)
{
	return err_set(err, SLUICE_EIO,
		       "%s: %s; if it cannot be repaired, delete it to start afresh (every node then counts as changed once)",
		       l->snapshot, why);
}

/* Merge the snapshot's records into recs. */
static int parse_snapshot(struct local_state *l, const struct buf *text, json_t *recs, struct sluice_err *err)
{
	struct buf why = BUF_INIT;
	json_t *j;
	int rc = 0;

	if (state_snapshot_parse(&l->base, text->s, text->len, &j, &why))
		rc = snapshot_error(l, err, why.s);
	else
		json_object_update(recs, json_object_get(j, "records"));
	buf_release(&why);
	json_decref(j);
	return rc;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *str_or(const json_t *j, const char *def)
{
	const char *s = json_string_value(j);

	return s ? s : def;
}

/* One journal line as (uid, record), or NULL with why set. */
static json_t *parse_entry(const char *line, size_t len, const char **uid, json_t **record, struct buf *why)
{
	json_error_t je;
	json_t *j = json_loadb(line, len, 0, &je);

	if (!j) {
		buf_printf(why, "column %d: %s", je.column, je.text);
		return NULL;
	}
	*uid = json_string_value(json_object_get(j, "uid"));
	*record = json_object_get(j, "record");
	if (!*uid || (!json_is_object(*record) && !json_is_null(*record))) {
		buf_puts(why, "expected {\"uid\": ..., \"record\": {...} or null}");
		json_decref(j);
		return NULL;
	}
	return j;
}

/*
 * Apply the journal's lines in order (the last put of a uid wins). An
 * invalid last line is a put that never returned (kill -9 mid-write): it
 * is skipped, and *keep (bytes worth keeping) stops before it. *newline
 * says the kept text lacks its final '\n'.
 */
static int replay_journal(const char *path, const struct buf *text, json_t *recs, size_t *keep, int *newline,
			  struct sluice_err *err)
{
	size_t start = 0, end, lineno = 0, last = text->len;
	int rc = 0;

	while (last > 0 && is_blank(text->s[last - 1]))
		last--;
	*keep = text->len;
	*newline = 0;
	for (; start < last; start = end + 1) {
		const char *line = text->s + start, *nl = memchr(line, '\n', text->len - start), *uid;
		struct buf why = BUF_INIT;
		json_t *entry, *record;
		size_t i;

		end = nl ? (size_t)(nl - text->s) : text->len;
		lineno++;
		for (i = start; i < end && is_blank(text->s[i]); i++)
			;
		if (i == end)
			continue;
		entry = parse_entry(line, end - start, &uid, &record, &why);
		if (entry) {
			if (json_is_null(record))
				json_object_del(recs, uid);   /* forgotten (state_forget) */
			else
				json_object_set(recs, uid, record);
			json_decref(entry);
			*newline = !nl;
		} else if (end >= last) {
			*keep = start;
			*newline = 0;
		} else {
			rc = err_set(err, SLUICE_EIO,
				     "%s:%zu: damaged journal entry (%s); remove that line to recover "
				     "(the nodes it recorded then count as changed once)", path, lineno, why.s);
		}
		buf_release(&why);
		if (rc)
			break;
	}
	return rc;
}

/* The snapshot's records as values in a, appended to vals, one record at a time. */
static int load_snapshot(struct local_state *l, const struct buf *text, struct arena *a, struct val *vals,
			 struct sluice_err *err)
{
	struct buf why = BUF_INIT;
	int rc = 0;

	if (state_snapshot_load(&l->base, text->s, text->len, a, vals, &why))
		rc = snapshot_error(l, err, why.s);
	buf_release(&why);
	return rc;
}

/*
 * Snapshot plus journal. A run that does not hold the lock (sluice plan)
 * may read while another compacts: if the snapshot was replaced after we
 * read it, the journal we read may already be emptied, so read again.
 * With vals, the snapshot's records go there as values (load_snapshot)
 * and *out holds the journal's alone, which replace them.
 */
static int read_records(struct local_state *l, json_t **out, struct arena *a, struct val *vals,
			struct sluice_err *err)
{
	int attempt, rc = 0;

	for (attempt = 0;; attempt++) {
		struct buf snap = BUF_INIT, jour = BUF_INIT;
		struct stat before, now;
		int have_snap, have_jour, newline, replaced = 0, snap_fd = -1;
		size_t keep;
		json_t *recs;

		rc = read_optional(l->snapshot, &snap, &have_snap, &before, &snap_fd, err);
		if (!rc)
			rc = read_optional(l->journal, &jour, &have_jour, NULL, NULL, err);
		if (!rc && !l->base.locked) {
			if (stat(l->snapshot, &now) < 0)
				replaced = have_snap;
			else
				replaced = !have_snap || now.st_ino != before.st_ino || now.st_dev != before.st_dev;
		}
		if (snap_fd >= 0)
			close(snap_fd);
		if (!rc && replaced && attempt < 100) {
			buf_release(&snap);
			buf_release(&jour);
			continue;
		}
		if (!rc && replaced)
			rc = err_set(err, SLUICE_EIO, "%s: replaced by another run while being read, %d times; try again",
				     l->snapshot, attempt);
		recs = json_object();
		if (!rc && have_snap)
			rc = vals ? load_snapshot(l, &snap, a, vals, err) : parse_snapshot(l, &snap, recs, err);
		if (!rc)
			rc = replay_journal(l->journal, &jour, recs, &keep, &newline, err);
		buf_release(&snap);
		buf_release(&jour);
		if (rc) {
			json_decref(recs);
			return rc;
		}
		*out = recs;
		return 0;
	}
}

static int local_load(struct state *st, struct arena *a, struct val *records, struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st;
	struct val journal;
	json_t *recs;
	int rc = read_records(l, &recs, a, records, err);
	size_t i;

	if (rc)
		return rc;
	/* the journal's puts came after the snapshot: each replaces its record, in its place */
	journal = json_drain_to_val(a, recs);
	json_decref(recs);
	if (journal.u.dict.n) {
		struct strmap at = STRMAP_INIT;
		for (i = 0; i < records->u.dict.n; i++)
			strmap_put(&at, records->u.dict.keys[i], &records->u.dict.vals[i]);
		for (i = 0; i < journal.u.dict.n; i++) {
			struct val *v = strmap_get(&at, journal.u.dict.keys[i]);
			if (v)
				*v = journal.u.dict.vals[i];
			else
				val_dict_append(a, records, journal.u.dict.keys[i], journal.u.dict.vals[i]);
		}
		strmap_release(&at);
	}
	return 0;
}

/*
 * Another target's files in the same .sluice/state/: read as a reader
 * without the lock reads them (read_records looks again when a
 * compaction replaces the snapshot meanwhile).
 */
static int local_load_target(struct state *st, const char *target, struct arena *a, struct val *records,
			     struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st, peer;
	int rc;

	memset(&peer, 0, sizeof(peer));
	state_base_peer(&peer.base, &l->base, target);
	peer.dir = l->dir;
	peer.snapshot = state_path(l->dir, target, ".json");
	peer.journal = state_path(l->dir, target, ".journal");
	rc = local_load(&peer.base, a, records, err);
	free(peer.snapshot);
	free(peer.journal);
	return rc;
}

static int fsync_dir(const char *dir, struct sluice_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return io_error(err, dir, NULL);
	if (fsync(fd) < 0)
		rc = io_error(err, dir, "fsync");
	close(fd);
	return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Cut a torn last line off the journal (or finish a whole one that lost
 * its '\n') before appending: left there, it would become a damaged line
 * in the middle. Called with the lock held.
 */
static int repair_journal(struct local_state *l, struct sluice_err *err)
{
	struct buf text = BUF_INIT;
	json_t *scratch = json_object();
	size_t keep;
	int newline, rc;

	if (lseek(l->journal_fd, 0, SEEK_SET) < 0) {
		rc = io_error(err, l->journal, NULL);
		goto out;
	}
	if ((rc = read_fd(l->journal_fd, l->journal, &text, err)))
		goto out;
	if ((rc = replay_journal(l->journal, &text, scratch, &keep, &newline, err)))
		goto out;
	if (keep < text.len && ftruncate(l->journal_fd, (off_t)keep) < 0) {
		rc = io_error(err, l->journal, "truncate");
		goto out;
	}
	if (newline && write_all(l->journal_fd, "\n", 1) < 0) {
		rc = io_error(err, l->journal, NULL);
		goto out;
	}
	if ((keep < text.len || newline) && fsync(l->journal_fd) < 0) {
		rc = io_error(err, l->journal, "fsync");
		goto out;
	}
	l->journal_size = (off_t)keep + newline;
out:
	json_decref(scratch);
	buf_release(&text);
	return rc;
}

/* What a waiting run shows: the holder file's JSON, turned into words. */
static void read_holder(struct local_state *l, struct buf *holder, struct buf *since)
{
	char text[4096];
	ssize_t n = pread(l->lock_fd, text, sizeof(text), 0);
	json_t *j;
	const char *s;

	if (n <= 0 || !(j = json_loadb(text, (size_t)n, 0, NULL)))
		return;
	state_holder_text(holder, str_or(json_object_get(j, "user"), "?"),
			  (long long)json_integer_value(json_object_get(j, "pid")),
			  str_or(json_object_get(j, "host"), "?"), str_or(json_object_get(j, "invocation_id"), NULL));
	if ((s = json_string_value(json_object_get(j, "since"))))
		buf_puts(since, s);
	json_decref(j);
}

static int write_holder(struct local_state *l, struct sluice_err *err)
{
	json_t *j = json_object();
	char since[32], *text;
	int rc = 0;

	state_now_utc(since, 0);
	json_object_set_new(j, "user", json_string(l->base.user));
	json_object_set_new(j, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(j, "host", json_string(l->base.host));
	json_object_set_new(j, "invocation_id", json_string(l->base.invocation_id));
	json_object_set_new(j, "since", json_string(since));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return err_set(err, SLUICE_EIO, "%s: cannot serialise the holder", l->lockfile);
	/* Informational only: no fsync, and a reader may see it empty for an instant. */
	if (ftruncate(l->lock_fd, 0) < 0 || pwrite(l->lock_fd, text, strlen(text), 0) != (ssize_t)strlen(text))
		rc = io_error(err, l->lockfile, NULL);
	free(text);
	return rc;
}

static int local_lock(struct state *st, struct buf *holder, struct buf *since, struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st;
	int rc;

	if (l->lock_fd < 0) {
		l->lock_fd = open(l->lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (l->lock_fd < 0)
			return io_error(err, l->lockfile, NULL);
	}
	/* The kernel drops a flock with the last descriptor, so a killed holder leaves none. */
	while (flock(l->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			read_holder(l, holder, since);
			return err_set(err, SLUICE_ELOCK, "%s: locked", l->lockfile);
		}
		return io_error(err, l->lockfile, "flock");
	}
	if ((rc = write_holder(l, err)))
		goto fail;
	l->journal_fd = open(l->journal, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (l->journal_fd < 0) {
		rc = io_error(err, l->journal, NULL);
		goto fail;
	}
	/* The journal's directory entry must be as durable as the lines put in it. */
	if ((rc = fsync_dir(l->dir, err)) || (rc = repair_journal(l, err)))
		goto fail;
	return 0;
fail:
	if (l->journal_fd >= 0)
		close(l->journal_fd);
	l->journal_fd = -1;
	flock(l->lock_fd, LOCK_UN);
	return rc;
}

static int local_put(struct state *st, const char *unique_id, const char *record, size_t len,
		     struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st;
	json_t *juid = json_string(unique_id);
	char *uid = juid ? json_dumps(juid, JSON_ENCODE_ANY) : NULL;
	struct buf line = BUF_INIT;
	ssize_t n;
	int rc = 0;

	json_decref(juid);
	if (!uid)
		return err_set(err, SLUICE_EUSAGE, "state: unique_id %s is not valid UTF-8", unique_id);
	buf_printf(&line, "{\"uid\":%s,\"record\":", uid);
	buf_add(&line, record, len);
	buf_puts(&line, "}\n");
	free(uid);

	pthread_mutex_lock(&l->mu);
	/* One write(), so a kill can tear only this line, and only at the end. */
	do
		n = write(l->journal_fd, line.s, line.len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)line.len) {
		l->journal_size += n;
	} else {
		if (n < 0)
			rc = io_error(err, l->journal, NULL);
		else
			rc = err_set(err, SLUICE_EIO, "%s: short write (disk full?)", l->journal);
		/* Take back a partial line, or the next one would be damaged mid-file. */
		if (n > 0 && ftruncate(l->journal_fd, l->journal_size) < 0)
			err_prefix(err, "%s: a partial line is left at the end", l->journal);
	}
	pthread_mutex_unlock(&l->mu);
	/* Outside the mutex: puts of other workers share one flush. */
	if (!rc && fdatasync(l->journal_fd) < 0)
		rc = io_error(err, l->journal, "fsync");
	buf_release(&line);
	if (rc)
		err_prefix(err, "state (local): record for %s not saved", unique_id);
	return rc;
}

/*
 * A run's record is one line, written with one write() under the lock;
 * a torn last line (kill -9 mid-write) is ignored by load, and the next
 * append starts on a line of its own.
 */
static int local_forget(struct state *st, const char *unique_id, struct sluice_err *err)
{
	return local_put(st, unique_id, "null", 4, err);
}

static int local_history_put(struct state *st, const char *run, size_t len, struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st;
	/* read-write: pread looks at the last byte */
	int fd = open(l->history, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644), rc = 0;
	struct buf line = BUF_INIT;
	struct stat sb;
	char last = '\n';

	if (fd < 0)
		return err_set(err, SLUICE_EIO, "state (local): run history not saved: %s: %s", l->history, strerror(errno));
	if (fstat(fd, &sb) == 0 && sb.st_size > 0 && pread(fd, &last, 1, sb.st_size - 1) != 1)
		last = '\n';
	if (last != '\n')
		buf_addc(&line, '\n');
	buf_add(&line, run, len);
	buf_addc(&line, '\n');
	if (write_all(fd, line.s, line.len) < 0 || fdatasync(fd) < 0)
		rc = io_error(err, l->history, NULL);
	if (close(fd) < 0 && !rc)
		rc = io_error(err, l->history, "close");
	buf_release(&line);
	if (rc)
		err_prefix(err, "state (local): run history not saved");
	return rc;
}

static int local_history_load(struct state *st, int n, json_t *runs, struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st;
	struct buf text = BUF_INIT;
	const char *end;
	int exists, rc;

	if ((rc = read_optional(l->history, &text, &exists, NULL, NULL, err)) || !exists)
		goto out;
	/* newest last: walk the lines backwards */
	end = text.s + text.len;
	while (end > text.s && (int)json_array_size(runs) < n) {
		const char *start = end - 1;
		json_t *j;
		while (start > text.s && start[-1] != '\n')
			start--;
		if ((j = json_loadb(start, (size_t)(end - start), 0, NULL)) && json_is_object(j))
			json_array_append(runs, j);
		json_decref(j);
		end = start;
	}
out:
	buf_release(&text);
	return rc;
}

static int write_snapshot(struct local_state *l, const struct buf *text, struct sluice_err *err)
{
	int fd = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;

	if (fd < 0)
		return io_error(err, l->tmp, NULL);
	if (write_all(fd, text->s, text->len) < 0)
		rc = io_error(err, l->tmp, NULL);
	else if (fsync(fd) < 0)
		rc = io_error(err, l->tmp, "fsync");
	if (close(fd) < 0 && !rc)
		rc = io_error(err, l->tmp, "close");
	if (!rc && rename(l->tmp, l->snapshot) < 0)
		rc = io_error(err, l->snapshot, "rename");
	if (rc)
		unlink(l->tmp);
	else
		rc = fsync_dir(l->dir, err);
	return rc;
}

static int local_finish(struct state *st, struct sluice_err *err)
{
	struct local_state *l = (struct local_state *)st;
	struct buf text = BUF_INIT;
	json_t *recs = NULL;
	int rc;

	if (l->journal_size == 0 && fs_exists(l->snapshot))
		return 0;
	if ((rc = read_records(l, &recs, NULL, NULL, err)) || (rc = state_snapshot_format(&l->base, NULL, recs, l->snapshot, &text, err)) ||
	    (rc = write_snapshot(l, &text, err)))
		goto out;
	/* Only now that the new snapshot is durable may the journal go. */
	if (ftruncate(l->journal_fd, 0) < 0) {
		rc = io_error(err, l->journal, "truncate");
		goto out;
	}
	if (fsync(l->journal_fd) < 0) {
		rc = io_error(err, l->journal, "fsync");
		goto out;
	}
	l->journal_size = 0;
out:
	json_decref(recs);
	buf_release(&text);
	if (rc)
		err_prefix(err, "state: compacting");
	return rc;
}

static void local_close(struct state *st)
{
	struct local_state *l = (struct local_state *)st;

	if (l->journal_fd >= 0)
		close(l->journal_fd);
	if (l->lock_fd >= 0) {
		/*
		 * Forget who held it before letting go, so nobody is named
		 * after we left. A failure only leaves stale words in a file
		 * nobody reads until it is locked again: nothing to report.
		 */
		if (st->locked && ftruncate(l->lock_fd, 0) < 0)
			errno = 0;
		close(l->lock_fd);
	}
	local_free(l);
}

const struct state_backend state_local = {
	.name = "local",
	.open = local_open,
	.lock = local_lock,
	.load = local_load,
	.load_target = local_load_target,
	.put = local_put,
	.forget = local_forget,
	.history_put = local_history_put,
	.history_load = local_history_load,
	.finish = local_finish,
	.close = local_close,
};
