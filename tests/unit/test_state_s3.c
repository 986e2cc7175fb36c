/*
 * test_state_s3.c: the object-store state backend (engine/state-s3.c),
 * the logic behind `state: s3://bucket/prefix/`, run over the file://
 * store, whose conditional writes are real (an flock()ed compare and
 * rename), and over a wrapper of it that loses conditions on purpose
 * (HTTP 412 as S3 would answer a race), that runs a competitor's write
 * just before ours, or that answers 412 to a write it did make (a lost
 * answer, retried). The s3rver harness cannot test any of this: it
 * ignores conditional headers (see test_s3.c and docs/state.md); the
 * cli test t0800 runs the backend against it end to end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../../connectors/objstore.h"
#include "../../engine/state-s3.h"
#include "../../engine/util/clock.h"
#include "../../engine/util/fs.h"
#include "../../engine/util/xalloc.h"

/* ---- the store, and a store that loses on purpose ----------------------- */

static char tmp_dir[256];      /* the test's scratch directory */
static char root_url[300];     /* file://<tmp_dir>/bucket */
static pid_t child_pid;

/* What the wrapper does to put_if of keys ending in `key`; shared by all wrappers of a test. */
struct fake_ctl {
	pthread_mutex_t mu;
	const char *key;
	int lose;                 /* answer 412 without writing, this many times */
	int lose_after_write;     /* write, then answer 412 (the answer was lost), this many times */
	/* run just before put_if of `key` goes to the store (a competitor's write), this many times */
	void (*before)(struct objstore *inner, const char *key);
	int before_times;
	int calls;                /* put_if calls on `key` */
	int journal_gets;         /* get calls on journal objects */
	int hidden;               /* 1: the wrapper has no put_if at all */
};

static struct fake_ctl ctl;

struct fake {
	struct objstore base;
	struct objstore *inner;
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int fk_put(struct objstore *o, const char *key, const void *data, size_t len, struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;

	return f->inner->ops->put(f->inner, key, data, len, err);
}

static int fk_put_if(struct objstore *o, const char *key, const void *data, size_t len, const char *if_match,
		     int if_none_match, char etag_out[OBJSTORE_ETAG_SIZE], struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;
	int lose = 0, after = 0, rc;
	void (*before)(struct objstore *, const char *) = NULL;

	pthread_mutex_lock(&ctl.mu);
	if (ctl.key && ends_with(key, ctl.key)) {
		ctl.calls++;
		if (ctl.lose > 0) {
			ctl.lose--;
			lose = 1;
		} else if (ctl.lose_after_write > 0) {
			ctl.lose_after_write--;
			after = 1;
		} else if (ctl.before && ctl.before_times > 0) {
			ctl.before_times--;
			before = ctl.before;
		}
	}
	pthread_mutex_unlock(&ctl.mu);
	if (lose)
		return err_set(err, SLUICE_ECONFLICT, "s3 PUT s3://fake/%s: PreconditionFailed: At least one of the "
			       "pre-conditions you specified did not hold (HTTP 412)", key);
	if (before)
		before(f->inner, key);
	rc = f->inner->ops->put_if(f->inner, key, data, len, if_match, if_none_match, etag_out, err);
	if (!rc && after)
		return err_set(err, SLUICE_ECONFLICT, "s3 PUT s3://fake/%s: PreconditionFailed (HTTP 412)", key);
	return rc;
}

static int fk_put_stream(struct objstore *o, const char *key, long long size_hint, sluice_read_fn fn, void *ud,
			 struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;

	return f->inner->ops->put_stream(f->inner, key, size_hint, fn, ud, err);
}

static int fk_get(struct objstore *o, const char *key, sluice_write_fn fn, void *ud, struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;

	if (strstr(key, "/journal/")) {
		pthread_mutex_lock(&ctl.mu);
		ctl.journal_gets++;
		pthread_mutex_unlock(&ctl.mu);
	}
	return f->inner->ops->get(f->inner, key, fn, ud, err);
}

static int fk_head(struct objstore *o, const char *key, struct objstore_info *info, struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;

	return f->inner->ops->head(f->inner, key, info, err);
}

static int fk_list(struct objstore *o, const char *prefix, objstore_list_fn fn, void *ud, struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;

	return f->inner->ops->list(f->inner, prefix, fn, ud, err);
}

static int fk_del(struct objstore *o, const char *key, struct sluice_err *err)
{
	struct fake *f = (struct fake *)o;

	return f->inner->ops->del(f->inner, key, err);
}

static void fk_close(struct objstore *o)
{
	struct fake *f = (struct fake *)o;

	if (!f)
		return;
	f->inner->ops->close(f->inner);
	free(f);
}

static const struct objstore_ops fake_ops = {
	.scheme = "fake",
	.put = fk_put,
	.put_if = fk_put_if,
	.put_stream = fk_put_stream,
	.get = fk_get,
	.head = fk_head,
	.list = fk_list,
	.del = fk_del,
	.close = fk_close,
};

static const struct objstore_ops fake_ops_no_put_if = {
	.scheme = "fake",
	.put = fk_put,
	.put_stream = fk_put_stream,
	.get = fk_get,
	.head = fk_head,
	.list = fk_list,
	.del = fk_del,
	.close = fk_close,
};

static int open_fake(void *ud, struct objstore **out, struct sluice_err *err)
{
	struct fake *f;
	struct objstore *inner;
	int rc;

	(void)ud;
	*out = NULL;
	if ((rc = file_store_open(root_url, &inner, err)))
		return rc;
	f = xcalloc(1, sizeof(*f));
	f->base.ops = ctl.hidden ? &fake_ops_no_put_if : &fake_ops;
	f->inner = inner;
	*out = &f->base;
	return 0;
}

static int open_file(void *ud, struct objstore **out, struct sluice_err *err)
{
	(void)ud;
	return file_store_open(root_url, out, err);
}

/* ---- helpers ------------------------------------------------------------- */

static int setup(void **unused)
{
	const char *base = getenv("SLUICE_TEST_TMP");

	(void)unused;
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/sluice-state-s3-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp_dir))
		return -1;
	snprintf(root_url, sizeof(root_url), "file://%s/bucket/prefix/", tmp_dir);
	memset(&ctl, 0, sizeof(ctl));
	pthread_mutex_init(&ctl.mu, NULL);
	unsetenv("SLUICE_STATE_LOCK_TTL");
	return 0;
}

static int teardown(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
		child_pid = 0;
	}
	pthread_mutex_destroy(&ctl.mu);
	return fs_remove_tree(tmp_dir, &err);
}

static struct state_opts opts(const char *target, const char *invocation)
{
	struct state_opts o = { 0 };

	o.spec = root_url;
	o.project_dir = tmp_dir;
	o.project = "proj";
	o.target = target;
	o.user = "alice";
	o.invocation_id = invocation;
	return o;
}

/* Open over the fake (fake != 0) or the plain file store, with a lease of ttl seconds (0: default). */
static struct state *open_with(const char *target, const char *invocation, int fake, int ttl)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = opts(target, invocation);
	struct state_store_opts so = { fake ? open_fake : open_file, NULL, "s3://bkt/prefix/", ttl };
	struct state *st = NULL;

	if (state_store_open(&o, &so, &st, &err))
		fail_msg("state_store_open: %s", err.msg);
	return st;
}

static struct state *open_st(void)
{
	return open_with("dev", "run-1", 0, 0);
}

static void lock_ok(struct state *st)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (state_lock(st, -1, &err))
		fail_msg("state_lock: %s", err.msg);
}

static struct val record(struct arena *a, const char *uid, int n)
{
	struct val r = val_dict_new();

	val_dict_set(a, &r, "unique_id", val_str(arena_strdup(a, uid)));
	val_dict_set(a, &r, "fingerprint", val_str(arena_printf(a, "fp-%d", n)));
	val_dict_set(a, &r, "status", val_str("success"));
	val_dict_set(a, &r, "rows", val_num(n));
	val_dict_set(a, &r, "note", val_str("quote ' \" back\\slash\nnewline \xc3\xa9t\xc3\xa9"));
	return r;
}

static void put_ok(struct state *st, struct arena *a, const char *uid, int n)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val r = record(a, uid, n);

	if (state_put(st, uid, &r, &err))
		fail_msg("state_put %s: %s", uid, err.msg);
}

static struct val load_ok(struct state *st, struct arena *a)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val v;

	if (state_load(st, a, &v, &err))
		fail_msg("state_load: %s", err.msg);
	return v;
}

static void finish_ok(struct state *st)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (state_finish(st, &err))
		fail_msg("state_finish: %s", err.msg);
}

/* records[uid].rows == n */
static void assert_rows(const struct val *records, const char *uid, int n)
{
	const struct val *r = val_get(records, uid);

	if (!r)
		fail_msg("record %s missing", uid);
	assert_int_equal(val_get_int(r, "rows", -1), n);
	assert_string_equal(val_get_str(r, "note", ""), "quote ' \" back\\slash\nnewline \xc3\xa9t\xc3\xa9");
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in: %s", needle, haystack);
}

/* Path of an object under the state's directory proj/dev/. */
static char *obj_path(const char *name)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s/bucket/prefix/proj/dev/%s", tmp_dir, name);
	return buf_detach(&b, NULL);
}

static const char *str_field(const json_t *j, const char *field)
{
	const char *v = json_string_value(json_object_get(j, field));

	return v ? v : "";
}

/* The object as JSON (caller decrefs), or NULL when missing. */
static json_t *obj_json(const char *name)
{
	char *path = obj_path(name);
	json_t *j = json_load_file(path, 0, NULL);

	free(path);
	return j;
}

/* A string field of the object ("" when missing), in a static buffer. */
static const char *obj_str(const char *name, const char *field)
{
	static char out[256];
	json_t *j = obj_json(name);

	snprintf(out, sizeof(out), "%s", j ? str_field(j, field) : "");
	json_decref(j);
	return out;
}

static long long obj_int(const char *name, const char *field)
{
	json_t *j = obj_json(name);
	long long v;

	if (!j)
		fail_msg("%s is missing or not JSON", name);
	v = (long long)json_integer_value(json_object_get(j, field));
	json_decref(j);
	return v;
}

static int obj_exists(const char *name)
{
	char *path = obj_path(name);
	int yes = fs_exists(path);

	free(path);
	return yes;
}

static void write_obj(const char *name, const char *text)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char *path = obj_path(name);

	if (fs_mkdir_parent(path, &err) || fs_write_atomic(path, text, strlen(text), &err))
		fail_msg("%s", err.msg);
	free(path);
}

/* A lock as another worker would leave it: heartbeat `age` seconds ago, with a lease of ttl. */
static void foreign_lock(const char *host, long long pid, long age, int ttl)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "{\"user\":\"bob\",\"pid\":%lld,\"host\":\"%s\",\"invocation_id\":\"r-1\",\"since\":\"2026-11-24T19:00:02Z\","
		 "\"heartbeat\":\"x\",\"heartbeat_epoch\":%lld,\"ttl\":%d,\"generation\":7,\"token\":\"other\","
		 "\"boot_id\":\"b\",\"pid_ns\":\"n\",\"pid_start\":1}",
		 pid, host, (long long)time(NULL) - age, ttl);
	write_obj("lock.json", text);
}

/* Journal object names under journal/, sorted, joined by spaces. */
static int list_names(void *ud, const struct objstore_entry *e)
{
	struct buf *b = ud;

	buf_printf(b, "%s%s", b->len ? " " : "", e->key);
	return 0;
}

static void journal_names(struct buf *out)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore *s;

	buf_reset(out);
	assert_int_equal(file_store_open(root_url, &s, &err), 0);
	assert_int_equal(s->ops->list(s, "proj/dev/journal/", list_names, out, &err), 0);
	s->ops->close(s);
}

/* ---- records ------------------------------------------------------------- */

static void test_round_trip_and_compaction(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_st();
	struct buf names = BUF_INIT;
	struct val recs;

	(void)unused;
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 0);
	lock_ok(st);
	assert_int_equal(obj_int("lock.json", "generation"), 1);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.b", 2);
	put_ok(st, &a, "model.proj.a", 3);      /* the last put of a node wins */
	/* one object per put, durable before any finish */
	journal_names(&names);
	assert_string_equal(names.s, "proj/dev/journal/000000000001/00000001.json "
			    "proj/dev/journal/000000000001/00000002.json proj/dev/journal/000000000001/00000003.json");
	assert_false(obj_exists("state.json"));
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_rows(&recs, "model.proj.a", 3);
	assert_rows(&recs, "model.proj.b", 2);

	finish_ok(st);
	journal_names(&names);
	assert_string_equal(names.s, "");
	assert_int_equal(obj_int("state.json", "generation"), 1);
	assert_int_equal(obj_int("state.json", "sequence"), 3);
	assert_int_equal(obj_int("state.json", "format"), 1);
	state_close(st);
	/* released, not deleted: the next lock continues the count */
	assert_true(obj_str("lock.json", "released_at")[0] != '\0');

	st = open_with("dev", "run-2", 0, 0);     /* a fresh machine: nothing but the bucket */
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_rows(&recs, "model.proj.a", 3);
	lock_ok(st);
	assert_int_equal(obj_int("lock.json", "generation"), 2);
	put_ok(st, &a, "model.proj.c", 4);
	journal_names(&names);
	assert_string_equal(names.s, "proj/dev/journal/000000000002/00000001.json");
	finish_ok(st);
	state_close(st);
	assert_int_equal(obj_int("state.json", "generation"), 2);

	st = open_st();
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 3);
	assert_rows(&recs, "model.proj.c", 4);
	state_close(st);
	buf_release(&names);
	arena_release(&a);
}

/* finish merges what this run put from memory: only other runs' journal objects are read */
static void test_finish_reads_back_only_others_puts(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_with("dev", "run-1", 1, 0);
	struct val recs;
	int i;

	(void)unused;
	write_obj("journal/000000000000/00000001.json",
		  "{\"uid\":\"model.proj.left\",\"invocation_id\":\"dead\",\"record\":{\"rows\":7}}");
	lock_ok(st);
	for (i = 0; i < 20; i++)
		put_ok(st, &a, arena_printf(&a, "model.proj.m%d", i), i);
	ctl.journal_gets = 0;
	finish_ok(st);
	assert_int_equal(ctl.journal_gets, 1);
	state_close(st);
	st = open_st();
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 21);
	assert_rows(&recs, "model.proj.m19", 19);
	assert_int_equal(val_get_int(val_get(&recs, "model.proj.left"), "rows", -1), 7);
	state_close(st);
	arena_release(&a);
}

/*
 * A put cut short by kill -9 against a store that keeps partial uploads
 * (s3rver) leaves an empty journal object: it recorded nothing, the
 * others load, and the next finish compacts it away.
 */
static void test_empty_journal_object(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st;
	struct val recs;

	(void)unused;
	write_obj("journal/000000000000/00000001.json",
		  "{\"uid\":\"model.proj.left\",\"invocation_id\":\"dead\",\"record\":{\"rows\":7}}");
	write_obj("journal/000000000000/00000002.json", "");
	st = open_st();
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 1);
	assert_int_equal(val_get_int(val_get(&recs, "model.proj.left"), "rows", -1), 7);
	lock_ok(st);
	finish_ok(st);
	state_close(st);
	assert_false(obj_exists("journal/000000000000/00000002.json"));
	st = open_st();
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 1);
	state_close(st);
	arena_release(&a);
}

static void test_needs_lock_to_put(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_st();
	struct val r = record(&a, "model.proj.a", 1);

	(void)unused;
	assert_int_equal(state_put(st, "model.proj.a", &r, &err), SLUICE_EUSAGE);
	assert_int_equal(state_finish(st, &err), 0);
	state_close(st);
	assert_false(obj_exists("state.json"));
	assert_false(obj_exists("lock.json"));
	arena_release(&a);
}

/* One run of a worker: open with id, lock, write its history record, release. */
static void history_run(const char *id, struct arena *a)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = open_with("dev", id, 0, 0);
	struct val r = val_dict_new();

	lock_ok(st);
	val_dict_set(a, &r, "invocation_id", val_str(arena_strdup(a, id)));
	if (state_history_put(st, &r, &err))
		fail_msg("state_history_put: %s", err.msg);
	state_close(st);
}

static void test_history(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_st();
	struct val runs;
	char id[32];
	int i;

	(void)unused;
	/* no history.json yet: none, not an error */
	assert_int_equal(state_history_load(st, 50, &a, &runs, &err), 0);
	assert_int_equal(runs.u.list.n, 0);
	state_close(st);
	for (i = 1; i <= STATE_HISTORY_KEEP + 2; i++) {
		snprintf(id, sizeof(id), "run-%03d", i);
		history_run(id, &a);
	}
	/* a fresh worker reads it newest first; the oldest beyond what is kept are gone */
	st = open_with("dev", "reader", 0, 0);
	assert_int_equal(state_history_load(st, 2, &a, &runs, &err), 0);
	assert_int_equal(runs.u.list.n, 2);
	snprintf(id, sizeof(id), "run-%03d", STATE_HISTORY_KEEP + 2);
	assert_string_equal(val_get_str(&runs.u.list.items[0], "invocation_id", ""), id);
	assert_int_equal(state_history_load(st, 1000, &a, &runs, &err), 0);
	assert_int_equal(runs.u.list.n, STATE_HISTORY_KEEP);
	assert_string_equal(val_get_str(&runs.u.list.items[STATE_HISTORY_KEEP - 1], "invocation_id", ""), "run-003");
	assert_string_equal(obj_str("history.json", "project"), "proj");
	state_close(st);
	/* a damaged history.json is named, and not replaced by a run's shorter one */
	{
		char *path = obj_path("history.json");
		const char *damaged = "{\"runs\": 7}";
		assert_int_equal(fs_write_file(path, damaged, strlen(damaged), &err), 0);
		free(path);
	}
	st = open_with("dev", "reader2", 0, 0);
	lock_ok(st);
	assert_int_not_equal(state_history_load(st, 5, &a, &runs, &err), 0);
	assert_contains(err.msg, "prefix/proj/dev/history.json: not a run history");
	memset(&err, 0, sizeof(err));
	{
		struct val r = val_dict_new();
		val_dict_set(&a, &r, "invocation_id", val_str("reader2"));
		assert_int_not_equal(state_history_put(st, &r, &err), 0);
	}
	assert_contains(err.msg, "run history not saved");
	assert_int_equal(obj_int("history.json", "runs"), 7);
	state_close(st);
	arena_release(&a);
}

static void test_targets_apart(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *dev = open_st(), *odd = open_with("../we ird", "run-1", 0, 0);
	struct buf path = BUF_INIT;
	struct val recs;

	(void)unused;
	lock_ok(dev);
	lock_ok(odd);            /* another target, another lock */
	put_ok(dev, &a, "model.proj.a", 1);
	put_ok(odd, &a, "model.proj.a", 2);
	finish_ok(odd);
	recs = load_ok(dev, &a);
	assert_rows(&recs, "model.proj.a", 1);
	recs = load_ok(odd, &a);
	assert_rows(&recs, "model.proj.a", 2);
	/* a target name never reaches outside its directory */
	buf_printf(&path, "%s/bucket/prefix/proj/%%2E.%%2Fwe%%20ird/state.json", tmp_dir);
	assert_true(fs_exists(path.s));
	state_close(dev);
	state_close(odd);
	buf_release(&path);
	arena_release(&a);
}

/*
 * Another target's records, read without its lock (reuse across
 * environments): its journal before the compaction, its snapshot after;
 * a forgotten record (a null in the journal) is gone in both.
 */
static void test_load_target_and_forget(void **unused)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *dev = open_st(), *prod = open_with("prod", "run-2", 0, 0);
	struct val recs;

	(void)unused;
	lock_ok(prod);
	put_ok(prod, &a, "model.proj.a", 2);
	put_ok(prod, &a, "model.proj.b", 3);
	if (state_load_target(dev, "prod", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 2);
	assert_rows(&recs, "model.proj.b", 3);
	assert_int_equal(state_forget(prod, "model.proj.b", &err), 0);
	if (state_load_target(dev, "prod", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 1);
	finish_ok(prod);
	if (state_load_target(dev, "prod", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 1);
	assert_rows(&recs, "model.proj.a", 2);
	assert_null(val_get(&recs, "model.proj.b"));
	if (state_load_target(dev, "never_ran", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 0);
	recs = load_ok(dev, &a);      /* dev's own state is untouched */
	assert_int_equal(recs.u.dict.n, 0);
	state_close(dev);
	state_close(prod);
	arena_release(&a);
}

/* A leftover journal of a run that died before finishing, with no lock object left. */
static void test_leftover_journal_is_loaded_and_generations_pass_it(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st;
	struct buf names = BUF_INIT;
	struct val recs;

	(void)unused;
	write_obj("state.json", "{\"format\":1,\"project\":\"proj\",\"target\":\"dev\",\"generation\":3,\"sequence\":9,\"records\":{\n"
		  "\"model.proj.a\":{\"rows\":1,\"note\":\"quote ' \\\" back\\\\slash\\nnewline \xc3\xa9t\xc3\xa9\"}}}\n");
	write_obj("journal/000000000005/00000001.json",
		  "{\"uid\":\"model.proj.a\",\"invocation_id\":\"dead\",\"record\":{\"rows\":5,"
		  "\"note\":\"quote ' \\\" back\\\\slash\\nnewline \xc3\xa9t\xc3\xa9\"}}");
	/* covered by the snapshot's generation 3: a late put of a run that lost its lease */
	write_obj("journal/000000000002/00000001.json",
		  "{\"uid\":\"model.proj.z\",\"invocation_id\":\"zombie\",\"record\":{\"rows\":2}}");
	st = open_st();
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 1);
	assert_rows(&recs, "model.proj.a", 5);
	lock_ok(st);
	/* past the highest generation written, although lock.json was gone */
	assert_int_equal(obj_int("lock.json", "generation"), 6);
	put_ok(st, &a, "model.proj.b", 6);
	finish_ok(st);
	state_close(st);
	assert_int_equal(obj_int("state.json", "generation"), 6);
	journal_names(&names);
	assert_string_equal(names.s, "");

	st = open_st();
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_rows(&recs, "model.proj.a", 5);
	assert_null(val_get(&recs, "model.proj.z"));
	state_close(st);
	buf_release(&names);
	arena_release(&a);
}

static void test_damaged_objects_are_named(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_st();
	struct val recs;

	(void)unused;
	write_obj("state.json", "{\"format\":1,\"project\":\"proj\",\"target\":\"dev\",\"records\":{");
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, "s3://bkt/prefix/proj/dev/state.json: ");
	assert_contains(err.msg, "delete it to start afresh");

	write_obj("state.json", "{\"format\":1,\"project\":\"other\",\"target\":\"dev\",\"generation\":1,\"sequence\":1,\"records\":{}}");
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, "holds the state of project 'other', not 'proj'");

	write_obj("state.json", "{\"format\":1,\"project\":\"proj\",\"target\":\"dev\",\"generation\":1,\"sequence\":1,\"records\":{}}");
	write_obj("journal/000000000002/00000001.json", "{\"uid\":\"model.proj.a\",\"rec");
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, "s3://bkt/prefix/proj/dev/journal/000000000002/00000001.json: damaged journal object");

	write_obj("lock.json", "not json");
	assert_int_equal(state_lock(st, -1, &err), SLUICE_EIO);
	assert_contains(err.msg, "s3://bkt/prefix/proj/dev/lock.json: not a sluice lock");
	assert_contains(err.msg, "if no run is going, delete it");
	state_close(st);
	arena_release(&a);
}

/* A reader without the lock (sluice plan) never sees a record vanish while the holder compacts. */
struct compactor {
	struct state *st;
	atomic_int stop;
	int failures;
	char msg[sizeof(((struct sluice_err *)0)->msg)];
};

static void *compact_loop(void *ud)
{
	struct compactor *c = ud;
	struct arena a = ARENA_INIT;
	int i;

	for (i = 0; !c->stop && i < 100000; i++) {
		struct sluice_err err = SLUICE_ERR_INIT;
		char uid[64];
		struct val r;

		snprintf(uid, sizeof(uid), "model.proj.c%d", i);
		r = record(&a, uid, i);
		if ((state_put(c->st, uid, &r, &err) || (i % 3 == 2 && state_finish(c->st, &err))) && !c->failures++)
			snprintf(c->msg, sizeof(c->msg), "%s", err.msg);
	}
	arena_release(&a);
	return NULL;
}

static void test_load_during_compaction(void **unused)
{
	struct compactor c;
	struct state *reader = open_with("dev", "run-r", 0, 0);
	pthread_t t;
	size_t seen = 0;
	double until = clock_monotonic() + 1.5;
	int loads = 0;

	(void)unused;
	memset(&c, 0, sizeof(c));
	c.st = open_st();
	lock_ok(c.st);
	assert_int_equal(pthread_create(&t, NULL, compact_loop, &c), 0);
	while (clock_monotonic() < until) {
		struct arena a = ARENA_INIT;
		struct sluice_err err = SLUICE_ERR_INIT;
		struct val recs;

		if (state_load(reader, &a, &recs, &err))
			fail_msg("load during compaction: %s", err.msg);
		if (recs.u.dict.n < seen)
			fail_msg("load %d saw %zu records after %zu", loads, recs.u.dict.n, seen);
		seen = recs.u.dict.n;
		loads++;
		arena_release(&a);
	}
	c.stop = 1;
	pthread_join(t, NULL);
	if (c.failures)
		fail_msg("the compacting run failed %d times: %s", c.failures, c.msg);
	assert_true(seen > 0);
	print_message("# %d loads, up to %zu records\n", loads, seen);
	state_close(c.st);
	state_close(reader);
}

/* ---- the lock ------------------------------------------------------------ */

static void test_second_run_refused_naming_holder(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *a = open_st(), *b = open_with("dev", "run-2", 0, 0);
	char want[512], host[256];

	(void)unused;
	lock_ok(a);
	assert_int_equal(state_lock(b, -1, &err), SLUICE_ELOCK);
	gethostname(host, sizeof(host));
	snprintf(want, sizeof(want), "state is locked by alice (pid %ld on host %s, run run-1) since ", (long)getpid(),
		 host);
	assert_contains(err.msg, want);
	assert_contains(err.msg, "Z; wait with --wait-lock SECONDS");
	/* the holder's lock did not change hands */
	assert_string_equal(obj_str("lock.json", "invocation_id"), "run-1");
	state_close(a);
	/* released: the waiting one gets it */
	lock_ok(b);
	assert_int_equal(obj_int("lock.json", "generation"), 2);
	state_close(b);
}

static void test_wait_lock(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *a = open_st(), *b = open_with("dev", "run-2", 0, 0);
	double t0;

	(void)unused;
	lock_ok(a);
	t0 = clock_monotonic();
	assert_int_equal(state_lock(b, 1, &err), SLUICE_ELOCK);
	assert_true(clock_monotonic() - t0 >= 0.95);
	assert_contains(err.msg, "still locked after waiting 1 s (--wait-lock 1)");
	state_close(a);
	state_close(b);
}

static void test_killed_holder_on_this_machine(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_with("dev", "run-2", 0, 0);
	struct val recs;
	char want[64], c;
	int fds[2];
	pid_t pid;
	double t0;

	(void)unused;
	assert_int_equal(pipe(fds), 0);
	child_pid = pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct arena ca = ARENA_INIT;
		struct state *cs = open_st();
		struct sluice_err cerr = SLUICE_ERR_INIT;
		struct val r = record(&ca, "model.proj.a", 41), r2 = record(&ca, "model.proj.b", 42);

		if (state_lock(cs, -1, &cerr) || state_put(cs, "model.proj.a", &r, &cerr) ||
		    state_put(cs, "model.proj.b", &r2, &cerr) || write(fds[1], "L", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	snprintf(want, sizeof(want), "(pid %ld on host ", (long)pid);
	assert_contains(err.msg, want);

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	child_pid = 0;
	/* its lease has two minutes to run, but its process is gone: taken over at once */
	t0 = clock_monotonic();
	err = (struct sluice_err)SLUICE_ERR_INIT;
	if (state_lock(st, -1, &err))
		fail_msg("a dead holder's lock was not taken over: %s", err.msg);
	assert_true(clock_monotonic() - t0 < 0.5);
	assert_int_equal(obj_int("lock.json", "generation"), 2);
	/* what it put before dying is there */
	recs = load_ok(st, &a);
	assert_rows(&recs, "model.proj.a", 41);
	assert_rows(&recs, "model.proj.b", 42);
	put_ok(st, &a, "model.proj.b", 43);
	finish_ok(st);
	state_close(st);
	assert_int_equal(obj_int("state.json", "generation"), 2);
	st = open_st();
	recs = load_ok(st, &a);
	assert_rows(&recs, "model.proj.a", 41);
	assert_rows(&recs, "model.proj.b", 43);
	state_close(st);
	arena_release(&a);
}

static void test_other_host_waits_for_expiry(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = open_st();

	(void)unused;
	/* a live-looking lock of another machine, even with our pid: not ours to judge */
	foreign_lock("elsewhere", (long long)getpid() + 1000000, 10, 120);
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	assert_contains(err.msg, "state is locked by bob (pid ");
	assert_contains(err.msg, " on host elsewhere, run r-1) since 2026-11-24T19:00:02Z; wait with --wait-lock");
	/* its heartbeat is older than its lease: taken over, and the generation goes on from its */
	foreign_lock("elsewhere", 77, 121, 120);
	lock_ok(st);
	assert_int_equal(obj_int("lock.json", "generation"), 8);
	assert_string_equal(obj_str("lock.json", "invocation_id"), "run-1");
	state_close(st);
}

static void test_heartbeat_keeps_the_lease(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *a = open_with("dev", "run-1", 0, 2), *b = open_with("dev", "run-2", 0, 2);
	long long first;

	(void)unused;
	lock_ok(a);
	first = obj_int("lock.json", "heartbeat_epoch");
	assert_int_equal(obj_int("lock.json", "ttl"), 2);
	/* three leases long: without a heartbeat, b would take it */
	sleep_ms(3500);
	assert_true(obj_int("lock.json", "heartbeat_epoch") >= first + 2);
	assert_int_equal(state_lock(b, -1, &err), SLUICE_ELOCK);
	state_close(a);
	state_close(b);
}

static void test_lease_taken_over_stops_puts(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_with("dev", "run-1", 0, 2);
	struct val r = record(&a, "model.proj.a", 1);
	double until = clock_monotonic() + 3;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	/* someone judged our lease expired and took the lock (a paused VM, a partition) */
	foreign_lock("elsewhere", 77, 0, 120);
	while (clock_monotonic() < until && !state_put(st, "model.proj.a", &r, &err))
		sleep_ms(100);
	assert_int_equal(err.code, SLUICE_ELOCK);
	assert_contains(err.msg, "record for model.proj.a not saved: state: the lock was taken over by bob (pid 77 on "
			"host elsewhere, run r-1)");
	assert_int_equal(state_finish(st, &err), SLUICE_ELOCK);
	state_close(st);
	/* and closing did not release the new holder's lock */
	assert_string_equal(obj_str("lock.json", "invocation_id"), "r-1");
	arena_release(&a);
}

/* ---- conditions lost ------------------------------------------------------- */

static void competitor_takes_lock(struct objstore *inner, const char *key)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char text[512];

	/* alive on another machine, heartbeat now */
	snprintf(text, sizeof(text),
		 "{\"user\":\"carol\",\"pid\":5,\"host\":\"rival\",\"invocation_id\":\"r-9\",\"since\":\"2026-11-24T20:00:00Z\","
		 "\"heartbeat\":\"x\",\"heartbeat_epoch\":%lld,\"ttl\":120,\"generation\":1,\"token\":\"t\"}",
		 (long long)time(NULL));
	if (inner->ops->put(inner, key, text, strlen(text), &err))
		fail_msg("%s", err.msg);
}

static void test_race_for_a_new_lock_lost(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = open_with("dev", "run-1", 1, 0);

	(void)unused;
	/* between our look (no lock.json) and our If-None-Match write, a rival creates it */
	ctl.key = "lock.json";
	ctl.before = competitor_takes_lock;
	ctl.before_times = 1;
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	assert_contains(err.msg, "state is locked by carol (pid 5 on host rival, run r-9) since 2026-11-24T20:00:00Z");
	assert_int_equal(ctl.calls, 1);
	assert_string_equal(obj_str("lock.json", "invocation_id"), "r-9");
	state_close(st);
}

static void test_race_for_an_expired_lock_lost(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = open_with("dev", "run-1", 1, 0);

	(void)unused;
	/* both see an expired lease; the rival's If-Match lands first, ours then fails for real */
	foreign_lock("elsewhere", 77, 500, 120);
	ctl.key = "lock.json";
	ctl.before = competitor_takes_lock;
	ctl.before_times = 1;
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	assert_contains(err.msg, "state is locked by carol (pid 5 on host rival");
	state_close(st);
}

static void test_412_then_look_again(void **unused)
{
	struct state *st = open_with("dev", "run-1", 1, 0);

	(void)unused;
	/* a 412 that changed nothing (a conflicting request in flight): look again, and take it */
	ctl.key = "lock.json";
	ctl.lose = 2;
	lock_ok(st);
	assert_int_equal(ctl.calls, 3);
	assert_string_equal(obj_str("lock.json", "invocation_id"), "run-1");
	state_close(st);
}

static void test_412_for_a_write_that_landed(void **unused)
{
	struct state *st = open_with("dev", "run-1", 1, 0), *other = open_with("dev", "run-2", 0, 0);
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	/* our write landed but its answer was lost; the retry's 412 must not make us wait for ourselves */
	ctl.key = "lock.json";
	ctl.lose_after_write = 1;
	lock_ok(st);
	assert_int_equal(ctl.calls, 2);
	assert_int_equal(obj_int("lock.json", "generation"), 1);
	assert_int_equal(state_lock(other, -1, &err), SLUICE_ELOCK);
	state_close(st);
	state_close(other);
}

static void test_lock_gives_up_after_rounds(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = open_with("dev", "run-1", 1, 0);

	(void)unused;
	ctl.key = "lock.json";
	ctl.lose = 1000;
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	assert_contains(err.msg, "state is locked by another run (holder not recorded)");
	assert_int_equal(ctl.calls, 8);
	state_close(st);
}

static void rival_finishes(struct objstore *inner, const char *key)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *text = "{\"format\":1,\"project\":\"proj\",\"target\":\"dev\",\"generation\":0,\"sequence\":0,\"records\":{\n"
			   "\"model.proj.r\":{\"rows\":9}}}\n";

	if (inner->ops->put(inner, key, text, strlen(text), &err))
		fail_msg("%s", err.msg);
}

static void test_snapshot_if_match_lost_then_merged_again(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_with("dev", "run-1", 1, 0);
	struct val recs;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	finish_ok(st);                   /* state.json now exists: later writes are If-Match */
	put_ok(st, &a, "model.proj.b", 2);
	/* first a plain 412, then a rival rewrites state.json just before our If-Match */
	ctl.key = "state.json";
	ctl.lose = 1;
	ctl.before = rival_finishes;
	ctl.before_times = 1;
	finish_ok(st);
	assert_int_equal(ctl.calls, 3);
	state_close(st);
	st = open_st();
	recs = load_ok(st, &a);
	/* our merge went onto the rival's snapshot, not over it */
	assert_int_equal(val_get_int(val_get(&recs, "model.proj.r"), "rows", -1), 9);
	assert_rows(&recs, "model.proj.b", 2);
	state_close(st);
	arena_release(&a);
}

static void test_snapshot_conflicts_give_up(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_with("dev", "run-1", 1, 0);
	struct buf names = BUF_INIT;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	ctl.key = "state.json";
	ctl.lose = 1000;
	assert_int_equal(state_finish(st, &err), SLUICE_EIO);
	assert_contains(err.msg, "s3://bkt/prefix/proj/dev/state.json: rewritten by someone else 8 times");
	/* the record is not lost: its journal object stays until a snapshot holds it */
	journal_names(&names);
	assert_string_equal(names.s, "proj/dev/journal/000000000001/00000001.json");
	state_close(st);
	buf_release(&names);
	arena_release(&a);
}

static void test_heartbeat_412_means_lost(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_with("dev", "run-1", 1, 2);
	struct val r = record(&a, "model.proj.a", 1);
	double until;

	(void)unused;
	lock_ok(st);
	/* the store says lock.json changed although it looks the same to a HEAD */
	ctl.key = "lock.json";
	ctl.lose = 1;
	until = clock_monotonic() + 3;
	while (clock_monotonic() < until && !state_put(st, "model.proj.a", &r, &err))
		sleep_ms(100);
	assert_int_equal(err.code, SLUICE_ELOCK);
	assert_contains(err.msg, "the lock was taken over by another run");
	state_close(st);
	arena_release(&a);
}

static void test_store_without_conditions_refused(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = opts("dev", "run-1");
	struct state_store_opts so = { open_fake, NULL, "s3://bkt/prefix/", 0 };
	struct state *st = (struct state *)&o;

	(void)unused;
	ctl.hidden = 1;
	assert_int_equal(state_store_open(&o, &so, &st, &err), SLUICE_ENOTSUP);
	assert_null(st);
	assert_string_equal(err.msg, "state: fake storage cannot write conditionally");
}

static void test_bad_ttl(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = opts("dev", "run-1");
	struct state_store_opts so = { open_file, NULL, "s3://bkt/prefix/", 0 };
	struct state *st = NULL;

	(void)unused;
	setenv("SLUICE_STATE_LOCK_TTL", "1m", 1);
	assert_int_equal(state_store_open(&o, &so, &st, &err), SLUICE_EUSAGE);
	assert_contains(err.msg, "SLUICE_STATE_LOCK_TTL=1m");
	setenv("SLUICE_STATE_LOCK_TTL", "30", 1);
	assert_int_equal(state_store_open(&o, &so, &st, &err), 0);
	lock_ok(st);
	assert_int_equal(obj_int("lock.json", "ttl"), 30);
	state_close(st);
	unsetenv("SLUICE_STATE_LOCK_TTL");
}

/* state: s3://... goes to this backend, with the profile's s3 block or the AWS_* environment. */
static void test_spec_reaches_backend(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = opts("dev", "run-1");
	struct state *st = (struct state *)&o;

	(void)unused;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	o.spec = "s3://bucket/prefix/";
	assert_int_equal(state_open(&st, &o, &err), SLUICE_EUSAGE);
	assert_null(st);
	assert_contains(err.msg, "state: s3://bucket/prefix/: s3: no credentials");
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip_and_compaction),
		T(test_finish_reads_back_only_others_puts),
		T(test_empty_journal_object),
		T(test_needs_lock_to_put),
		T(test_targets_apart),
		T(test_load_target_and_forget),
		T(test_history),
		T(test_leftover_journal_is_loaded_and_generations_pass_it),
		T(test_damaged_objects_are_named),
		T(test_load_during_compaction),
		T(test_second_run_refused_naming_holder),
		T(test_wait_lock),
		T(test_killed_holder_on_this_machine),
		T(test_other_host_waits_for_expiry),
		T(test_heartbeat_keeps_the_lease),
		T(test_lease_taken_over_stops_puts),
		T(test_race_for_a_new_lock_lost),
		T(test_race_for_an_expired_lock_lost),
		T(test_412_then_look_again),
		T(test_412_for_a_write_that_landed),
		T(test_lock_gives_up_after_rounds),
		T(test_snapshot_if_match_lost_then_merged_again),
		T(test_snapshot_conflicts_give_up),
		T(test_heartbeat_412_means_lost),
		T(test_store_without_conditions_refused),
		T(test_bad_ttl),
		T(test_spec_reaches_backend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
