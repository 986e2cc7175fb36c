/*
 * state-s3.c: the `s3://bucket/prefix/` state backend, objects in a
 * bucket, so that ephemeral workers that may not write to the warehouse
 * share what earlier runs remembered. Under <prefix>/<project>/<target>/:
 *
 *   lock.json                  who holds the run lock, renewed by a heartbeat
 *   state.json                 snapshot: {"format": 1, "project", "target",
 *                              "generation", "sequence", "records"}
 *   journal/<gen>/<seq>.json   one object per put: {"uid", "invocation_id", "record"}
 *
 * Every change to lock.json and state.json is a conditional write
 * (objstore put_if: If-None-Match: * to create, If-Match: <etag> to
 * replace), so of two workers racing for the lock, or rewriting the
 * snapshot, one loses with SLUICE_ECONFLICT and looks again.
 *
 * The lock is a lease. Each lock taken gets the next generation number.
 * The holder rewrites lock.json every ttl/4 seconds (heartbeat); another
 * run may take it over when it says it was released, when its heartbeat
 * is older than its ttl (by the reader's clock), or at once when its
 * holder ran on this very machine (same host name, boot and PID
 * namespace) and that process is gone. Releasing rewrites lock.json as
 * released rather than deleting it, so that every step is conditional
 * and generations keep counting.
 *
 * A put is one small PutObject journal/<our generation>/<sequence>.json,
 * durable once S3 answers. finish merges the snapshot and every journal
 * object past the snapshot's mark into a new snapshot (If-Match on the
 * one it read), whose mark becomes the (generation, sequence) of the
 * newest object merged, and only then deletes the journal objects it
 * covers. Loading applies only journal objects past the mark, so a crash
 * between any two steps, or a late put from a run whose lease was taken
 * over (an older generation), leaves a correct state.
 *
 * Not for: object stores without conditional writes (refused at open).
 */
#define SLUICE_STATE_BACKEND
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "json.h"
#include "state-s3.h"
#include "util/strmap.h"
#include "util/xalloc.h"

#define LOCK_MAX (64 * 1024)                   /* a lock object is a few hundred bytes */
#define JOURNAL_MAX (64LL * 1024 * 1024)
#define SNAPSHOT_MAX (1024LL * 1024 * 1024)
#define LOCK_ROUNDS 8                          /* conditional writes lost in a row before giving up */
#define FINISH_ROUNDS 8

struct s3_state {
	struct state base;
	struct objstore *store;      /* loads, puts, finish: one call at a time, under mu */
	struct objstore *hb_store;   /* the heartbeat thread's own */
	char *where;                 /* "s3://bucket/prefix/proj/dev/": messages name objects with it */
	char *dir;                   /* "proj/dev/": keys under the store root */
	char *lock_key, *state_key, *journal_key, *history_key;
	int ttl;                     /* seconds: the lease we declare */
	char token[33];              /* this instance, in the lock: tells our own lock from others' */
	char boot_id[64], pid_ns[64];
	long long pid_start;         /* this process's start time in clock ticks, or -1 */

	pthread_mutex_t mu;
	unsigned seq;                /* under mu: the last journal sequence number used */
	/* under mu: the journal objects this run put, so finish need not read them back */
	struct strmap own;           /* key -> struct own_put */
	struct own_put **ownv;
	size_t nown, capown;

	/* The lock, once taken. lock_etag, lost and lost_to are under hb_mu. */
	int held;
	unsigned long long gen;
	char since[32];
	pthread_mutex_t hb_mu;
	pthread_cond_t hb_cv;
	pthread_t hb;
	int hb_running, hb_stop;
	char lock_etag[OBJSTORE_ETAG_SIZE];
	int lost;
	char lost_to[sizeof(((struct sluice_err *)0)->msg)];
};

struct own_put {
	char *key;
	char *body;
	size_t len;
};

/* ---- small helpers ----------------------------------------------------- */

static char *dir_key(const struct s3_state *s, const char *name)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s%s", s->dir, name);
	return buf_detach(&b, NULL);
}

static const char *str_or(const json_t *j, const char *def)
{
	const char *v = json_string_value(j);

	return v ? v : def;
}

static void iso_utc(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* First line of a small file, trimmed; "" when unreadable. */
static void read_line(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	out[0] = '\0';
	if (!f)
		return;
	if (fgets(out, (int)cap, f)) {
		n = strcspn(out, "\r\n");
		out[n] = '\0';
	}
	fclose(f);
}

/* A process's start time (field 22 of /proc/PID/stat, clock ticks since boot), or -1. */
static long long proc_start(long long pid)
{
	char path[64], text[1024], *p;
	FILE *f;
	size_t n;
	int field;

	snprintf(path, sizeof(path), "/proc/%lld/stat", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* the command name may hold spaces and parentheses: count from the last ')' */
	if (!(p = strrchr(text, ')')))
		return -1;
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoll(p + 1, NULL, 10) : -1;
}

struct sink {
	struct buf *b;
	long long cap;
	const char *what;
};

static int sink_write(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct sink *k = ud;

	if ((long long)(k->b->len + len) > k->cap)
		return err_set(err, SLUICE_EIO, "%s: larger than %lld bytes: not written by sluice", k->what, k->cap);
	buf_add(k->b, data, len);
	return 0;
}

/* Get a whole object of at most cap bytes into out (reset first). */
static int get_object(struct s3_state *s, struct objstore *store, const char *key, long long cap,
		      struct buf *out, struct sluice_err *err)
{
	struct buf what = BUF_INIT;
	struct sink k = { out, cap, NULL };
	int rc, attempt;

	buf_printf(&what, "%s%s", s->where, key + strlen(s->dir));
	k.what = what.s;
	/*
	 * A read cut short resumes from the same object (s3.c); when the
	 * object was rewritten meanwhile (a heartbeat), that fails (412, or
	 * 416 from a store that ignores If-Match). These objects are small:
	 * read them again whole.
	 */
	for (attempt = 0; attempt < 3; attempt++) {
		buf_reset(out);
		memset(err, 0, sizeof(*err));
		if ((rc = store->ops->get(store, key, sink_write, &k, err)) != SLUICE_EIO)
			break;
	}
	buf_release(&what);
	return rc;
}

/* "s3://bucket/prefix/proj/dev/state.json" for key. */
static void object_name(const struct s3_state *s, const char *key, struct buf *out)
{
	buf_printf(out, "%s%s", s->where, key + strlen(s->dir));
}

/* ---- the lock ---------------------------------------------------------- */

/* The lock object we write: taken, or renewed with a new heartbeat. */
static char *holder_json(struct s3_state *s)
{
	json_t *j = json_object();
	time_t now = time(NULL);
	char beat[32];
	char *text;

	iso_utc(now, beat);
	json_object_set_new(j, "user", json_string(s->base.user));
	json_object_set_new(j, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(j, "host", json_string(s->base.host));
	json_object_set_new(j, "invocation_id", json_string(s->base.invocation_id));
	json_object_set_new(j, "since", json_string(s->since));
	json_object_set_new(j, "heartbeat", json_string(beat));
	json_object_set_new(j, "heartbeat_epoch", json_integer((json_int_t)now));
	json_object_set_new(j, "ttl", json_integer(s->ttl));
	json_object_set_new(j, "generation", json_integer((json_int_t)s->gen));
	json_object_set_new(j, "token", json_string(s->token));
	json_object_set_new(j, "boot_id", json_string(s->boot_id));
	json_object_set_new(j, "pid_ns", json_string(s->pid_ns));
	json_object_set_new(j, "pid_start", json_integer((json_int_t)s->pid_start));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/*
 * The lock object as it is now: *j NULL when there is none, else its
 * JSON (caller decrefs) and info->etag the ETag to replace it with. head
 * comes first: the body read after it is at least as new, so a stale
 * ETag can only make our conditional write lose, never win wrongly.
 */
static int read_lock(struct s3_state *s, struct objstore *store, struct objstore_info *info, json_t **j,
		     struct sluice_err *err)
{
	struct buf text = BUF_INIT, name = BUF_INIT;
	json_error_t je;
	int rc;

	*j = NULL;
	if ((rc = store->ops->head(store, s->lock_key, info, err)) || !info->exists)
		return rc;
	rc = get_object(s, store, s->lock_key, LOCK_MAX, &text, err);
	if (rc) {
		/* gone between head and get (released and deleted by hand): as if missing */
		struct objstore_info again;
		struct sluice_err ignored = SLUICE_ERR_INIT;

		if (!store->ops->head(store, s->lock_key, &again, &ignored) && !again.exists) {
			info->exists = 0;
			rc = 0;
		}
		goto out;
	}
	*j = json_loadb(text.s, text.len, 0, &je);
	if (!*j || !json_is_object(*j) ||
	    (!json_object_get(*j, "released_at") &&
	     (!json_is_integer(json_object_get(*j, "pid")) || !json_is_integer(json_object_get(*j, "heartbeat_epoch")) ||
	      !json_is_integer(json_object_get(*j, "ttl"))))) {
		object_name(s, s->lock_key, &name);
		rc = err_set(err, SLUICE_EIO, "%s: not a sluice lock (%s); if no run is going, delete it",
			     name.s, *j ? "fields missing" : je.text);
		json_decref(*j);
		*j = NULL;
	}
out:
	buf_release(&text);
	buf_release(&name);
	return rc;
}

enum verdict {
	HELD,        /* someone alive holds it */
	FREE,        /* released */
	OURS,        /* this very instance wrote it (a retried write that did land) */
	DEAD,        /* its holder ran on this machine and is gone */
	EXPIRED,     /* its heartbeat is older than its ttl */
};

static enum verdict judge(const struct s3_state *s, const json_t *j, time_t now)
{
	long long pid, beat, ttl, start;

	if (json_object_get(j, "released_at"))
		return FREE;
	if (!strcmp(str_or(json_object_get(j, "token"), ""), s->token))
		return OURS;
	pid = (long long)json_integer_value(json_object_get(j, "pid"));
	/*
	 * A pid means something only in its own PID namespace of its own
	 * boot: containers may share a host name, a rebooted machine reuses
	 * pids. Anything else waits for the lease to run out.
	 */
	if (!strcmp(str_or(json_object_get(j, "host"), ""), s->base.host) && s->boot_id[0] && s->pid_ns[0] &&
	    !strcmp(str_or(json_object_get(j, "boot_id"), ""), s->boot_id) &&
	    !strcmp(str_or(json_object_get(j, "pid_ns"), ""), s->pid_ns) && pid > 0) {
		start = (long long)json_integer_value(json_object_get(j, "pid_start"));
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			return DEAD;
		if (start > 0 && proc_start(pid) >= 0 && proc_start(pid) != start)
			return DEAD;       /* the pid now belongs to another process */
	}
	beat = (long long)json_integer_value(json_object_get(j, "heartbeat_epoch"));
	ttl = (long long)json_integer_value(json_object_get(j, "ttl"));
	if ((long long)now > beat + ttl)
		return EXPIRED;
	return HELD;
}

static void describe_holder(const json_t *j, struct buf *holder, struct buf *since)
{
	state_holder_text(holder, str_or(json_object_get(j, "user"), "?"),
			  (long long)json_integer_value(json_object_get(j, "pid")),
			  str_or(json_object_get(j, "host"), "?"), str_or(json_object_get(j, "invocation_id"), NULL));
	buf_puts(since, str_or(json_object_get(j, "since"), ""));
}

/* Keys journal/<gen>/<seq>.json: gen and seq, or -1 for a key of another shape. */
static int parse_journal_key(const char *rel, unsigned long long *gen, unsigned *seq)
{
	char *end;

	if (rel[0] < '0' || rel[0] > '9')
		return -1;
	*gen = strtoull(rel, &end, 10);
	if (*end != '/' || end[1] < '0' || end[1] > '9')
		return -1;
	*seq = (unsigned)strtoul(end + 1, &end, 10);
	return strcmp(end, ".json") ? -1 : 0;
}

struct jentry {
	char *key;
	unsigned long long gen;
	unsigned seq;
};

struct jlist {
	struct jentry *v;
	size_t n, cap;
	size_t strip;        /* length of the journal prefix */
};

static int jlist_add(void *ud, const struct objstore_entry *e)
{
	struct jlist *l = ud;
	unsigned long long gen;
	unsigned seq;

	/* Anything else under journal/ (a console's folder marker, say) is not ours: skip it. */
	if (strlen(e->key) <= l->strip || parse_journal_key(e->key + l->strip, &gen, &seq))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].key = xstrdup(e->key);
	l->v[l->n].gen = gen;
	l->v[l->n++].seq = seq;
	return 0;
}

static int jentry_cmp(const void *a, const void *b)
{
	const struct jentry *x = a, *y = b;

	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void jlist_release(struct jlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Every journal object, in (generation, sequence) order. */
static int list_journal(struct s3_state *s, struct jlist *l, struct sluice_err *err)
{
	int rc;

	memset(l, 0, sizeof(*l));
	l->strip = strlen(s->journal_key);
	rc = s->store->ops->list(s->store, s->journal_key, jlist_add, l, err);
	if (rc)
		return rc;
	/* listing order is by key; numbers of unequal widths would not sort by it */
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), jentry_cmp);
	return 0;
}

/* ---- the snapshot ------------------------------------------------------ */

/* The newest journal object a snapshot holds: (generation, sequence). */
struct mark {
	unsigned long long gen;
	unsigned seq;
};

static int mark_after(const struct jentry *e, const struct mark *m)
{
	return e->gen > m->gen || (e->gen == m->gen && e->seq > m->seq);
}

struct snapshot {
	int exists;
	char etag[OBJSTORE_ETAG_SIZE];
	struct mark mark;
	json_t *records;             /* uid -> record; owned */
};

static int snapshot_error(struct s3_state *s, struct sluice_err *err, const char *why)
{
	struct buf name = BUF_INIT;
	int rc;

	object_name(s, s->state_key, &name);
	rc = err_set(err, SLUICE_EIO,
		     "%s: %s; if it cannot be repaired, delete it to start afresh (every node then counts as changed once)",
		     name.s, why);
	buf_release(&name);
	return rc;
}

static int parse_snapshot(struct s3_state *s, const struct buf *text, struct snapshot *snap, struct sluice_err *err)
{
	struct buf why = BUF_INIT;
	json_t *j;
	int rc = 0;

	if (state_snapshot_parse(&s->base, text->s, text->len, &j, &why)) {
		rc = snapshot_error(s, err, why.s);
	} else if (!json_is_integer(json_object_get(j, "generation")) || !json_is_integer(json_object_get(j, "sequence"))) {
		rc = snapshot_error(s, err, "\"generation\" or \"sequence\" is missing");
	} else {
		snap->mark.gen = (unsigned long long)json_integer_value(json_object_get(j, "generation"));
		snap->mark.seq = (unsigned)json_integer_value(json_object_get(j, "sequence"));
		json_object_update(snap->records, json_object_get(j, "records"));
	}
	buf_release(&why);
	json_decref(j);
	return rc;
}

/* Read state.json (head first, for the same reason as read_lock). */
static int read_snapshot(struct s3_state *s, struct snapshot *snap, struct sluice_err *err)
{
	struct objstore_info info;
	struct buf text = BUF_INIT;
	int rc;

	memset(snap, 0, sizeof(*snap));
	snap->records = json_object();
	if ((rc = s->store->ops->head(s->store, s->state_key, &info, err)) || !info.exists)
		return rc;
	snap->exists = 1;
	snprintf(snap->etag, sizeof(snap->etag), "%s", info.etag);
	rc = get_object(s, s->store, s->state_key, SNAPSHOT_MAX, &text, err);
	if (!rc)
		rc = parse_snapshot(s, &text, snap, err);
	buf_release(&text);
	return rc;
}

static void snapshot_release(struct snapshot *snap)
{
	json_decref(snap->records);
	snap->records = NULL;
}

/*
 * Apply the journal objects past the snapshot's mark, in order. A missing
 * one (a compaction deleted it since the listing) gives *vanished = 1.
 * *newest: the mark of the newest object applied (or the snapshot's).
 */
static int apply_journal(struct s3_state *s, const struct jlist *l, struct snapshot *snap, int *vanished,
			 struct mark *newest, size_t *applied, struct sluice_err *err)
{
	struct buf text = BUF_INIT, name = BUF_INIT;
	size_t i;
	int rc = 0;

	*vanished = 0;
	*newest = snap->mark;
	*applied = 0;
	for (i = 0; i < l->n && !rc; i++) {
		json_error_t je;
		json_t *j, *record;
		const char *uid;

		const struct own_put *own;

		if (!mark_after(&l->v[i], &snap->mark))
			continue;    /* already in the snapshot, or a late put of a run that lost its lease */
		if ((own = strmap_get(&s->own, l->v[i].key)) != NULL) {
			buf_reset(&text);
			buf_add(&text, own->body, own->len);
		} else {
			rc = get_object(s, s->store, l->v[i].key, JOURNAL_MAX, &text, err);
		}
		if (rc) {
			struct objstore_info info;
			struct sluice_err ignored = SLUICE_ERR_INIT;

			if (!s->store->ops->head(s->store, l->v[i].key, &info, &ignored) && !info.exists) {
				*vanished = 1;
				rc = 0;
			}
			break;
		}
		if (!text.len) {
			/*
			 * A put cut short: S3 never shows one, but a store that keeps
			 * partial uploads (s3rver after kill -9) leaves it empty. A
			 * record is never empty: this one recorded nothing, as a torn
			 * last line of the local journal records nothing. The next
			 * compaction deletes it.
			 */
			if (mark_after(&l->v[i], newest)) {
				newest->gen = l->v[i].gen;
				newest->seq = l->v[i].seq;
			}
			continue;
		}
		j = json_loadb(text.s, text.len, 0, &je);
		uid = json_string_value(json_object_get(j, "uid"));
		record = json_object_get(j, "record");
		if (!uid || (!json_is_object(record) && !json_is_null(record))) {
			buf_reset(&name);
			object_name(s, l->v[i].key, &name);
			rc = err_set(err, SLUICE_EIO,
				     "%s: damaged journal object (%s); delete it to recover (the node it recorded then counts as "
				     "changed once)", name.s, j ? "expected {\"uid\": ..., \"record\": {...} or null}" : je.text);
		} else {
			if (json_is_null(record))
				json_object_del(snap->records, uid);   /* forgotten (state_forget) */
			else
				json_object_set(snap->records, uid, record);
			if (mark_after(&l->v[i], newest)) {
				newest->gen = l->v[i].gen;
				newest->seq = l->v[i].seq;
			}
			(*applied)++;
		}
		json_decref(j);
	}
	buf_release(&text);
	buf_release(&name);
	return rc;
}

/*
 * Snapshot plus newer journal objects. Without the lock, a compaction may
 * replace the snapshot and delete the journal between our reads: then
 * the snapshot's ETag changed or a journal object vanished, and we read
 * again.
 */
static int read_records(struct s3_state *s, struct snapshot *snap, struct jlist *l, struct sluice_err *err)
{
	int attempt, rc;

	for (attempt = 0;; attempt++) {
		struct objstore_info after;
		struct mark newest;
		size_t applied;
		int vanished = 0, moved = 0;

		if ((rc = read_snapshot(s, snap, err)) || (rc = list_journal(s, l, err)) ||
		    (rc = apply_journal(s, l, snap, &vanished, &newest, &applied, err)))
			goto fail;
		if (!s->held && !vanished) {
			if ((rc = s->store->ops->head(s->store, s->state_key, &after, err)))
				goto fail;
			moved = after.exists != snap->exists || (after.exists && strcmp(after.etag, snap->etag));
		}
		if (!vanished && !moved)
			return 0;
		snapshot_release(snap);
		jlist_release(l);
		if (attempt >= 20) {
			struct buf name = BUF_INIT;

			object_name(s, s->state_key, &name);
			rc = err_set(err, SLUICE_EIO, "%s: replaced by another run while being read, %d times; try again",
				     name.s, attempt + 1);
			buf_release(&name);
			return rc;
		}
	}
fail:
	snapshot_release(snap);
	jlist_release(l);
	return rc;
}

/*
 * The generation of a lock taken where there is no lock object (a new
 * state, or lock.json deleted by hand): past everything already written.
 */
static int fresh_generation(struct s3_state *s, unsigned long long *gen, struct sluice_err *err)
{
	struct snapshot snap;
	struct jlist l;
	int rc;

	rc = read_snapshot(s, &snap, err);
	*gen = snap.mark.gen;
	snapshot_release(&snap);
	if (rc || (rc = list_journal(s, &l, err)))
		return rc;
	if (l.n && l.v[l.n - 1].gen > *gen)
		*gen = l.v[l.n - 1].gen;
	jlist_release(&l);
	return 0;
}

/* ---- the heartbeat ----------------------------------------------------- */

/*
 * Renew the lease on the heartbeat's own store: only while lock.json is
 * still the one we wrote. A store that ignores conditions (see
 * docs/state.md) is at least checked just before.
 */
static int renew(struct s3_state *s, char etag[OBJSTORE_ETAG_SIZE], struct sluice_err *err)
{
	struct objstore_info info;
	json_t *j = NULL;
	char *text;
	int rc;

	if ((rc = read_lock(s, s->hb_store, &info, &j, err)))
		return rc;
	if (!j || strcmp(info.etag, etag)) {
		struct buf holder = BUF_INIT, since = BUF_INIT;

		if (j && !json_object_get(j, "released_at"))
			describe_holder(j, &holder, &since);
		rc = err_set(err, SLUICE_ECONFLICT, "%s", holder.len ? holder.s : "nobody (the lock object was replaced)");
		buf_release(&holder);
		buf_release(&since);
		json_decref(j);
		return rc;
	}
	json_decref(j);
	if (!(text = holder_json(s)))
		return err_set(err, SLUICE_EIO, "state: cannot serialise the lock holder");
	rc = s->hb_store->ops->put_if(s->hb_store, s->lock_key, text, strlen(text), etag, 0, etag, err);
	free(text);
	if (rc == SLUICE_ECONFLICT)
		err_set(err, SLUICE_ECONFLICT, "another run (the lock object was replaced)");
	return rc;
}

static void *heartbeat_main(void *ud)
{
	struct s3_state *s = ud;
	long interval_ms = s->ttl * 1000L / 4;

	if (interval_ms < 250)
		interval_ms = 250;
	pthread_mutex_lock(&s->hb_mu);
	while (!s->hb_stop && !s->lost) {
		struct sluice_err err = SLUICE_ERR_INIT;
		char etag[OBJSTORE_ETAG_SIZE];
		struct timespec until;
		int rc;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += interval_ms / 1000;
		until.tv_nsec += (interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!s->hb_stop && pthread_cond_timedwait(&s->hb_cv, &s->hb_mu, &until) != ETIMEDOUT)
			;
		if (s->hb_stop)
			break;
		memcpy(etag, s->lock_etag, sizeof(etag));
		pthread_mutex_unlock(&s->hb_mu);
		rc = renew(s, etag, &err);
		pthread_mutex_lock(&s->hb_mu);
		if (rc == 0) {
			memcpy(s->lock_etag, etag, sizeof(etag));
		} else if (rc == SLUICE_ECONFLICT) {
			s->lost = 1;
			snprintf(s->lost_to, sizeof(s->lost_to), "%s", err.msg);
		}
		/* other failures (the network) may pass: the next beat tries again */
	}
	pthread_mutex_unlock(&s->hb_mu);
	return NULL;
}

/*
 * The heartbeat runs for the whole run, the executor's workers only
 * later: it must not take SIGINT, SIGTERM or SIGUSR1, whose default
 * action would end the process there instead of reaching the executor's
 * signal thread (which cancels the statements and exits 130 or 143).
 */
static int heartbeat_start(struct s3_state *s)
{
	sigset_t set, old;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	rc = pthread_create(&s->hb, NULL, heartbeat_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void heartbeat_stop(struct s3_state *s)
{
	if (!s->hb_running)
		return;
	pthread_mutex_lock(&s->hb_mu);
	s->hb_stop = 1;
	pthread_cond_signal(&s->hb_cv);
	pthread_mutex_unlock(&s->hb_mu);
	pthread_join(s->hb, NULL);
	s->hb_running = 0;
}

/* Fails once the lease went to someone else; err says to whom. */
static int check_not_lost(struct s3_state *s, struct sluice_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&s->hb_mu);
	if (s->lost)
		rc = err_set(err, SLUICE_ELOCK,
			     "state: the lock was taken over by %s: this run could not renew it within its %d s lease",
			     s->lost_to, s->ttl);
	pthread_mutex_unlock(&s->hb_mu);
	return rc;
}

/* ---- the backend ------------------------------------------------------- */

/* Write lock.json as ours, replacing the object whose ETag is if_match, or creating it. */
static int write_lock(struct s3_state *s, unsigned long long gen, const char *if_match, struct sluice_err *err)
{
	char etag[OBJSTORE_ETAG_SIZE] = "";
	char *text;
	int rc;

	s->gen = gen;
	state_now_utc(s->since, 0);
	if (!(text = holder_json(s)))
		return err_set(err, SLUICE_EIO, "state: cannot serialise the lock holder");
	rc = s->store->ops->put_if(s->store, s->lock_key, text, strlen(text), if_match, !if_match, etag, err);
	free(text);
	if (rc)
		return rc;
	if (!etag[0]) {
		/* a store that did not say: what head reports is ours unless someone raced us */
		struct objstore_info info;

		if ((rc = s->store->ops->head(s->store, s->lock_key, &info, err)))
			return rc;
		snprintf(etag, sizeof(etag), "%s", info.etag);
	}
	memcpy(s->lock_etag, etag, sizeof(etag));
	return 0;
}

static int s3_lock(struct state *st, struct buf *holder, struct buf *since, struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st;
	int round, rc = 0;

	for (round = 0; round < LOCK_ROUNDS; round++) {
		struct objstore_info info;
		unsigned long long prev = 0;
		json_t *j = NULL;
		enum verdict v = FREE;

		pthread_mutex_lock(&s->mu);
		rc = read_lock(s, s->store, &info, &j, err);
		if (!rc && j) {
			v = judge(s, j, time(NULL));
			prev = (unsigned long long)json_integer_value(json_object_get(j, "generation"));
			if (v == HELD) {
				buf_reset(holder);
				buf_reset(since);
				describe_holder(j, holder, since);
			}
		} else if (!rc) {
			rc = fresh_generation(s, &prev, err);
		}
		json_decref(j);
		if (!rc && v == HELD) {
			pthread_mutex_unlock(&s->mu);
			return err_set(err, SLUICE_ELOCK, "%s: held by %s", s->where, holder->s);
		}
		if (!rc)
			rc = write_lock(s, v == OURS ? prev : prev + 1, info.exists ? info.etag : NULL, err);
		pthread_mutex_unlock(&s->mu);
		if (rc != SLUICE_ECONFLICT)
			break;
		/* someone wrote lock.json between our read and our write: look again */
	}
	if (rc == SLUICE_ECONFLICT)
		return err_set(err, SLUICE_ELOCK, "%s: the lock changed hands %d times while being taken", s->where,
			       LOCK_ROUNDS);
	if (rc)
		return err_prefix(err, "state: taking the lock");
	s->held = 1;
	s->lost = 0;
	s->hb_stop = 0;
	if (heartbeat_start(s))
		return err_set(err, SLUICE_EIO, "state: cannot start the lock's heartbeat thread");
	s->hb_running = 1;
	return 0;
}

static int s3_load(struct state *st, struct arena *a, struct val *records, struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st;
	struct snapshot snap;
	struct jlist l;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = read_records(s, &snap, &l, err);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return err_prefix(err, "state");
	*records = json_to_val(a, snap.records);
	snapshot_release(&snap);
	jlist_release(&l);
	return 0;
}

/*
 * Another target of the same project under the same prefix: its objects
 * read as a run without the lock reads its own (read_records looks again
 * when that target's run compacts meanwhile), on our store.
 */
static int s3_load_target(struct state *st, const char *target, struct arena *a, struct val *records,
			  struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st, peer;
	struct snapshot snap;
	struct jlist l;
	struct buf b = BUF_INIT;
	size_t root = strlen(s->where) - strlen(s->dir);
	int rc;

	memset(&peer, 0, sizeof(peer));
	state_base_peer(&peer.base, &s->base, target);
	peer.store = s->store;
	state_name_part(&b, s->base.project);
	buf_addc(&b, '/');
	state_name_part(&b, target);
	buf_addc(&b, '/');
	peer.dir = buf_detach(&b, NULL);
	buf_add(&b, s->where, root);
	buf_puts(&b, peer.dir);
	peer.where = buf_detach(&b, NULL);
	peer.state_key = dir_key(&peer, "state.json");
	peer.journal_key = dir_key(&peer, "journal/");
	pthread_mutex_lock(&s->mu);
	rc = read_records(&peer, &snap, &l, err);
	pthread_mutex_unlock(&s->mu);
	if (!rc) {
		*records = json_to_val(a, snap.records);
		snapshot_release(&snap);
		jlist_release(&l);
	}
	strmap_release(&peer.own);
	free(peer.dir);
	free(peer.where);
	free(peer.state_key);
	free(peer.journal_key);
	return rc ? err_prefix(err, "state") : 0;
}

static int s3_put(struct state *st, const char *unique_id, const char *record, size_t len, struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st;
	json_t *juid = json_string(unique_id), *jinv = json_string(s->base.invocation_id);
	char *uid = juid ? json_dumps(juid, JSON_ENCODE_ANY) : NULL;
	char *inv = jinv ? json_dumps(jinv, JSON_ENCODE_ANY) : NULL;
	struct buf body = BUF_INIT, key = BUF_INIT;
	int rc;

	json_decref(juid);
	json_decref(jinv);
	if (!uid || !inv) {
		rc = err_set(err, SLUICE_EUSAGE, "state: unique_id %s is not valid UTF-8", unique_id);
		goto out;
	}
	buf_printf(&body, "{\"uid\":%s,\"invocation_id\":%s,\"record\":", uid, inv);
	buf_add(&body, record, len);
	buf_puts(&body, "}\n");
	if ((rc = check_not_lost(s, err)))
		goto out;
	pthread_mutex_lock(&s->mu);
	buf_printf(&key, "%s%012llu/%08u.json", s->journal_key, s->gen, ++s->seq);
	rc = s->store->ops->put(s->store, key.s, body.s, body.len, err);
	if (!rc) {
		struct own_put *o = xmalloc(sizeof(*o));

		o->key = buf_detach(&key, NULL);
		o->body = buf_detach(&body, &o->len);
		if (s->nown == s->capown) {
			s->capown = s->capown ? 2 * s->capown : 64;
			s->ownv = xrealloc(s->ownv, s->capown * sizeof(*s->ownv));
		}
		s->ownv[s->nown++] = o;
		strmap_put(&s->own, o->key, o);
	}
	pthread_mutex_unlock(&s->mu);
out:
	if (rc)
		err_prefix(err, "state (s3): record for %s not saved", unique_id);
	free(uid);
	free(inv);
	buf_release(&body);
	buf_release(&key);
	return rc;
}

/*
 * history.json: {"format": 1, "project", "target", "runs": [newest
 * first]}, at most STATE_HISTORY_KEEP runs. Rewritten whole by each run
 * under the lock, so a read-modify-write is safe without conditions.
 */
#define HISTORY_MAX (64LL * 1024 * 1024)

static int s3_forget(struct state *st, const char *unique_id, struct sluice_err *err)
{
	return s3_put(st, unique_id, "null", 4, err);
}

static int read_history(struct s3_state *s, json_t **runs, struct sluice_err *err)
{
	struct objstore_info info;
	struct buf text = BUF_INIT;
	json_t *j = NULL, *r;
	int rc;

	*runs = NULL;
	if ((rc = s->store->ops->head(s->store, s->history_key, &info, err)))
		return rc;
	if (info.exists && !(rc = get_object(s, s->store, s->history_key, HISTORY_MAX, &text, err)))
		j = json_loadb(text.s, text.len, 0, NULL);
	buf_release(&text);
	if (rc)
		return rc;
	r = json_object_get(j, "runs");
	if (info.exists && !json_is_array(r)) {
		/* left as it is: a damaged history is not silently replaced by a short one */
		struct buf name = BUF_INIT;
		object_name(s, s->history_key, &name);
		rc = err_set(err, SLUICE_EIO, "%s: not a run history (no \"runs\" list); delete it to start afresh", name.s);
		buf_release(&name);
		json_decref(j);
		return rc;
	}
	*runs = info.exists ? json_incref(r) : json_array();
	json_decref(j);
	return 0;
}

static int s3_history_put(struct state *st, const char *run, size_t len, struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st;
	json_t *runs = NULL, *rec = json_loadb(run, len, 0, NULL), *doc;
	char *text = NULL;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (!(rc = check_not_lost(s, err)) && !(rc = read_history(s, &runs, err))) {
		json_array_insert_new(runs, 0, rec);
		rec = NULL;
		while (json_array_size(runs) > STATE_HISTORY_KEEP)
			json_array_remove(runs, json_array_size(runs) - 1);
		doc = json_pack("{s:i, s:s, s:s, s:O}", "format", STATE_SNAPSHOT_FORMAT, "project", s->base.project,
				"target", s->base.target, "runs", runs);
		text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		rc = text ? s->store->ops->put(s->store, s->history_key, text, strlen(text), err)
			  : err_set(err, SLUICE_EIO, "cannot serialise history.json");
	}
	pthread_mutex_unlock(&s->mu);
	json_decref(rec);
	json_decref(runs);
	free(text);
	if (rc) {
		struct buf name = BUF_INIT;
		object_name(s, s->history_key, &name);
		err_prefix(err, "state (s3): run history not saved to %s", name.s);
		buf_release(&name);
	}
	return rc;
}

static int s3_history_load(struct state *st, int n, json_t *runs, struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st;
	json_t *all = NULL;
	size_t i;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = read_history(s, &all, err);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return err_prefix(err, "state (s3)");
	for (i = 0; i < json_array_size(all) && (int)i < n; i++)
		json_array_append(runs, json_array_get(all, i));
	json_decref(all);
	return 0;
}

/* Forget the puts kept for finish (under mu, or with no put running). */
static void own_clear(struct s3_state *s)
{
	size_t i;

	for (i = 0; i < s->nown; i++) {
		free(s->ownv[i]->key);
		free(s->ownv[i]->body);
		free(s->ownv[i]);
	}
	free(s->ownv);
	s->ownv = NULL;
	s->nown = s->capown = 0;
	strmap_release(&s->own);
	s->own = (struct strmap)STRMAP_INIT;
}

/* Delete the journal objects the snapshot covers: l is sorted, so they come first. */
static int delete_covered(struct s3_state *s, const struct jlist *l, const struct mark *newest,
			  struct sluice_err *err)
{
	const char **keys;
	size_t n = 0, i;
	int rc = 0;

	while (n < l->n && !mark_after(&l->v[n], newest))
		n++;
	if (!n)
		return 0;
	if (s->store->ops->del_many) {
		keys = xmalloc(n * sizeof(*keys));
		for (i = 0; i < n; i++)
			keys[i] = l->v[i].key;
		rc = s->store->ops->del_many(s->store, keys, n, err);
		free(keys);
		return rc;
	}
	for (i = 0; i < n && !rc; i++)
		rc = s->store->ops->del(s->store, l->v[i].key, err);
	return rc;
}

/* The snapshot also records the newest journal position it holds. */
static int format_snapshot(struct s3_state *s, const struct snapshot *snap, const struct mark *mark, struct buf *out,
			   struct sluice_err *err)
{
	json_t *extra = json_object();

	json_object_set_new(extra, "generation", json_integer((json_int_t)mark->gen));
	json_object_set_new(extra, "sequence", json_integer((json_int_t)mark->seq));
	return state_snapshot_format(&s->base, extra, snap->records, "state", out, err);
}

/*
 * Fold the journal into a new snapshot (read, merge, write If-Match the
 * snapshot read, again from the start when that loses), then delete the
 * journal objects the snapshot now covers, oldest first.
 */
static int s3_finish(struct state *st, struct sluice_err *err)
{
	struct s3_state *s = (struct s3_state *)st;
	struct snapshot snap = { 0 };
	struct jlist l = { 0 };
	struct mark newest = { 0, 0 };
	int round, rc;

	if ((rc = check_not_lost(s, err)))
		return rc;
	pthread_mutex_lock(&s->mu);
	for (round = 0; round < FINISH_ROUNDS; round++) {
		struct buf text = BUF_INIT;
		size_t applied;
		int vanished;

		if ((rc = read_snapshot(s, &snap, err)) || (rc = list_journal(s, &l, err)) ||
		    (rc = apply_journal(s, &l, &snap, &vanished, &newest, &applied, err)))
			break;
		if (!vanished && (applied || !snap.exists)) {
			rc = format_snapshot(s, &snap, &newest, &text, err);
			if (!rc)
				rc = s->store->ops->put_if(s->store, s->state_key, text.s, text.len,
							   snap.exists ? snap.etag : NULL, !snap.exists, NULL, err);
		}
		buf_release(&text);
		if (!rc && !vanished)
			break;
		snapshot_release(&snap);
		jlist_release(&l);
		if (rc && rc != SLUICE_ECONFLICT)
			break;
		rc = SLUICE_ECONFLICT;
	}
	/* The snapshot is durable: what it covers may go. */
	if (!rc && !(rc = delete_covered(s, &l, &newest, err)))
		own_clear(s);
	pthread_mutex_unlock(&s->mu);
	snapshot_release(&snap);
	jlist_release(&l);
	if (rc == SLUICE_ECONFLICT)
		rc = err_set(err, SLUICE_EIO, "%sstate.json: rewritten by someone else %d times in a row although this run "
			     "holds the lock; is another tool writing there?", s->where, FINISH_ROUNDS);
	else if (rc)
		err_prefix(err, "state: compacting");
	return rc;
}

static void s3_free(struct s3_state *s)
{
	objstore_close(s->store);
	objstore_close(s->hb_store);
	free(s->where);
	free(s->dir);
	free(s->lock_key);
	free(s->state_key);
	free(s->journal_key);
	free(s->history_key);
	own_clear(s);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->hb_mu);
	pthread_cond_destroy(&s->hb_cv);
	state_base_release(&s->base);
	free(s);
}

/* Say the lock is free, if it is still ours. Best effort: a lease left behind expires. */
static void release(struct s3_state *s)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct objstore_info info;
	json_t *j = json_object();
	char at[32], *text;

	state_now_utc(at, 0);
	json_object_set_new(j, "released_at", json_string(at));
	json_object_set_new(j, "released_by", json_string(s->base.user));
	json_object_set_new(j, "generation", json_integer((json_int_t)s->gen));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text && !s->store->ops->head(s->store, s->lock_key, &info, &ignored) && info.exists &&
	    !strcmp(info.etag, s->lock_etag))
		s->store->ops->put_if(s->store, s->lock_key, text, strlen(text), s->lock_etag, 0, NULL, &ignored);
	free(text);
}

static void s3_close(struct state *st)
{
	struct s3_state *s = (struct s3_state *)st;

	heartbeat_stop(s);
	if (s->held && !s->lost)
		release(s);
	s3_free(s);
}

int state_store_open(const struct state_opts *o, const struct state_store_opts *so, struct state **out,
		     struct sluice_err *err)
{
	struct s3_state *s = xcalloc(1, sizeof(*s));
	struct buf b = BUF_INIT;
	const char *env = getenv("SLUICE_STATE_LOCK_TTL");
	unsigned char rnd[16];
	size_t i;
	int rc;

	*out = NULL;
	state_base_init(&s->base, &state_s3, o);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->hb_mu, NULL);
	pthread_cond_init(&s->hb_cv, NULL);
	state_name_part(&b, o->project);
	buf_addc(&b, '/');
	state_name_part(&b, o->target);
	buf_addc(&b, '/');
	s->dir = buf_detach(&b, NULL);
	buf_puts(&b, so->where);
	if (b.len && b.s[b.len - 1] != '/')
		buf_addc(&b, '/');
	buf_puts(&b, s->dir);
	s->where = buf_detach(&b, NULL);
	s->lock_key = dir_key(s, "lock.json");
	s->state_key = dir_key(s, "state.json");
	s->journal_key = dir_key(s, "journal/");
	s->history_key = dir_key(s, "history.json");

	s->ttl = so->lock_ttl;
	if (!s->ttl && env && *env) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*end || v < 2 || v > 86400) {
			rc = err_set(err, SLUICE_EUSAGE, "SLUICE_STATE_LOCK_TTL=%s: want a whole number of seconds from 2 to 86400",
				     env);
			goto fail;
		}
		s->ttl = (int)v;
	}
	if (!s->ttl)
		s->ttl = STATE_S3_LOCK_TTL;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = err_set(err, SLUICE_EIO, "state: getrandom: %s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(s->token + 2 * i, 3, "%02x", rnd[i]);
	read_line("/proc/sys/kernel/random/boot_id", s->boot_id, sizeof(s->boot_id));
	{
		ssize_t n = readlink("/proc/self/ns/pid", s->pid_ns, sizeof(s->pid_ns) - 1);

		s->pid_ns[n > 0 ? n : 0] = '\0';
	}
	s->pid_start = proc_start((long long)getpid());

	if ((rc = so->open_store(so->ud, &s->store, err)) || (rc = so->open_store(so->ud, &s->hb_store, err)))
		goto fail;
	if (!s->store->ops->put_if) {
		rc = err_set(err, SLUICE_ENOTSUP, "%s storage cannot write conditionally", s->store->ops->scheme);
		goto fail;
	}
	*out = &s->base;
	return 0;
fail:
	err_prefix(err, "state");
	s3_free(s);
	return rc;
}

/* state: s3://bucket/prefix/ in sluice.yml */
struct s3_url {
	const char *url;
	const struct val *settings;
};

static int open_s3_store(void *ud, struct objstore **out, struct sluice_err *err)
{
	const struct s3_url *u = ud;

	return objstore_open(u->url, u->settings, out, err);
}

static int s3_open(const struct state_opts *o, struct state **out, struct sluice_err *err)
{
	struct s3_url u = { o->spec, o->s3 };
	struct state_store_opts so = { open_s3_store, &u, o->spec, 0 };

	return state_store_open(o, &so, out, err);
}

const struct state_backend state_s3 = {
	.name = "s3",
	.open = s3_open,
	.lock = s3_lock,
	.load = s3_load,
	.load_target = s3_load_target,
	.put = s3_put,
	.forget = s3_forget,
	.history_put = s3_history_put,
	.history_load = s3_history_load,
	.finish = s3_finish,
	.close = s3_close,
};
