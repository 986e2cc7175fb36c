/*
 * test_state.c: the state backends behind engine/state.h. The local
 * backend's tests use fresh temporary project directories and need no
 * database; the warehouse backend's run against the harness's PostgreSQL
 * (SLUICE_TEST_PG*, see tests/harness/pg.sh) in a database of their own.
 * Crash safety is tested with real processes killed by SIGKILL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../connectors/postgres.h"
#include "../../engine/dialect.h"
#include "../../engine/json.h"
#define SLUICE_STATE_BACKEND   /* the snapshot readers every backend shares */
#include "../../engine/state.h"
#include "../../engine/util/clock.h"
#include "../../engine/util/fs.h"
#include "../../engine/util/xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

static char project_dir[256];
/* A test that fails before killing its child leaves it to the teardown. */
static pid_t child_pid;

static int make_project(void **unused)
{
	const char *base = getenv("SLUICE_TEST_TMP");

	(void)unused;
	snprintf(project_dir, sizeof(project_dir), "%s/sluice-state-XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(project_dir) ? 0 : -1;
}

static int drop_project(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
		child_pid = 0;
	}
	return fs_remove_tree(project_dir, &err);
}

static struct state_opts local_opts(const char *target)
{
	struct state_opts o = { 0 };

	o.spec = "local";
	o.project_dir = project_dir;
	o.project = "proj";
	o.target = target;
	o.user = "alice";
	o.invocation_id = "6f1c-run";
	return o;
}

static struct state *open_ok(const struct state_opts *o)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = NULL;

	if (state_open(&st, o, &err))
		fail_msg("state_open: %s", err.msg);
	return st;
}

static struct state *open_local(const char *target)
{
	struct state_opts o = local_opts(target);

	return open_ok(&o);
}

static void lock_ok(struct state *st)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (state_lock(st, -1, &err))
		fail_msg("state_lock: %s", err.msg);
}

/* A record as the engine writes one, varied by n; strings that stress JSON. */
static struct val record(struct arena *a, const char *uid, int n)
{
	struct val r = val_dict_new(), up = val_dict_new(), l = val_list_new();

	val_dict_set(a, &r, "unique_id", val_str(arena_strdup(a, uid)));
	val_dict_set(a, &r, "fingerprint", val_str(arena_printf(a, "fp-%d", n)));
	val_dict_set(a, &r, "status", val_str("success"));
	val_dict_set(a, &r, "rows", val_num(n));
	val_dict_set(a, &r, "duration", val_num(0.25));
	val_dict_set(a, &r, "note", val_str("quote ' \" back\\slash\nnewline \xc3\xa9t\xc3\xa9"));
	val_dict_set(a, &up, "model.proj.up", val_str("abc"));
	val_dict_set(a, &r, "upstream", up);
	val_list_push(a, &l, val_bool(1));
	val_list_push(a, &l, val_none());
	val_dict_set(a, &r, "list", l);
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
	assert_int_equal(v.kind, V_DICT);
	return v;
}

/* records[uid] equals record(uid, n). */
static void assert_record(struct arena *a, const struct val *records, const char *uid, int n)
{
	const struct val *got = val_get(records, uid);
	struct val want = record(a, uid, n);

	if (!got)
		fail_msg("record %s missing", uid);
	if (!val_equal(got, &want)) {
		struct buf b = BUF_INIT;
		val_repr(got, &b);
		fail_msg("record %s differs: %s", uid, b.s);
	}
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in: %s", needle, haystack);
}

static char *path_in_state(const char *name)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s/.sluice/state/%s", project_dir, name);
	return buf_detach(&b, NULL);
}

static void append_file(const char *name, const char *text)
{
	char *path = path_in_state(name);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	free(path);
}

static void write_state_file(const char *name, const char *text)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char *path = path_in_state(name);

	if (fs_write_file(path, text, strlen(text), &err))
		fail_msg("%s", err.msg);
	free(path);
}

static void read_state_file(const char *name, struct buf *out)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char *path = path_in_state(name);

	buf_reset(out);
	if (fs_read_file(path, out, &err))
		fail_msg("%s", err.msg);
	free(path);
}

static int state_file_exists(const char *name)
{
	char *path = path_in_state(name);
	int yes = fs_exists(path);

	free(path);
	return yes;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- local backend ---------------------------------------------------- */

static void test_local_round_trip(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf j = BUF_INIT;
	struct val recs;

	(void)unused;
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 0);
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.b", 2);
	put_ok(st, &a, "seed.proj.c", 3);
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 3);
	assert_record(&a, &recs, "model.proj.a", 1);
	assert_record(&a, &recs, "model.proj.b", 2);
	assert_record(&a, &recs, "seed.proj.c", 3);
	/* One line per put, durable without any finish. */
	read_state_file("dev.journal", &j);
	assert_int_equal(count_lines(j.s), 3);
	assert_false(state_file_exists("dev.json"));
	buf_release(&j);
	state_close(st);
	arena_release(&a);
}

static void test_local_survives_reopen(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct val recs;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.b", 2);
	state_close(st);        /* no finish: as if the run died here */

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 1);
	assert_record(&a, &recs, "model.proj.b", 2);
	state_close(st);
	arena_release(&a);
}

static void test_local_last_put_wins(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct val recs;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.b", 2);
	put_ok(st, &a, "model.proj.a", 10);
	put_ok(st, &a, "model.proj.a", 11);
	state_close(st);

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 11);
	assert_record(&a, &recs, "model.proj.b", 2);
	state_close(st);
	arena_release(&a);
}

static void test_local_torn_last_line(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf j = BUF_INIT;
	struct val recs;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.b", 2);
	state_close(st);
	/* What a kill -9 in the middle of a put's write() would leave. */
	append_file("dev.journal", "{\"uid\":\"model.proj.c\",\"record\":{\"fingerpr");

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_null(val_get(&recs, "model.proj.c"));
	/* The next run appends after it: the torn line must not end up in the middle. */
	lock_ok(st);
	put_ok(st, &a, "model.proj.d", 4);
	state_close(st);
	read_state_file("dev.journal", &j);
	assert_null(strstr(j.s, "fingerpr\""));
	assert_int_equal(count_lines(j.s), 3);

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 3);
	assert_record(&a, &recs, "model.proj.d", 4);
	state_close(st);
	buf_release(&j);
	arena_release(&a);
}

static void test_local_whole_last_line_without_newline(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf j = BUF_INIT;
	struct val recs;

	(void)unused;
	append_file("dev.journal", "{\"uid\":\"model.proj.x\",\"record\":{\"rows\":7}}");
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	state_close(st);
	read_state_file("dev.journal", &j);
	assert_int_equal(count_lines(j.s), 2);

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_int_equal(val_get_int(val_get(&recs, "model.proj.x"), "rows", 0), 7);
	state_close(st);
	buf_release(&j);
	arena_release(&a);
}

static void test_local_damaged_middle_line(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	char *journal = path_in_state("dev.journal"), where[400];
	struct val recs;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	state_close(st);
	append_file("dev.journal", "{\"uid\":\"model.proj.b\",\"rec\n");
	append_file("dev.journal", "{\"uid\":\"model.proj.c\",\"record\":{}}\n");

	st = open_local("dev");
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	snprintf(where, sizeof(where), "%s:2: ", journal);
	assert_contains(err.msg, where);
	/* A run must not paper over it either. */
	err = (struct sluice_err)SLUICE_ERR_INIT;
	assert_int_equal(state_lock(st, -1, &err), SLUICE_EIO);
	assert_contains(err.msg, where);
	state_close(st);
	free(journal);
	arena_release(&a);
}

static void test_local_damaged_snapshot(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	char *snap = path_in_state("dev.json");
	struct val recs;

	(void)unused;
	write_state_file("dev.json", "{\"format\": 1, \"project\": \"proj\", \"tar");
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, snap);
	assert_contains(err.msg, "delete it");

	write_state_file("dev.json", "{\"format\": 1, \"project\": \"other\", \"target\": \"dev\", \"records\": {}}");
	err = (struct sluice_err)SLUICE_ERR_INIT;
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, snap);
	assert_contains(err.msg, "project 'other', not 'proj'");

	write_state_file("dev.json", "{\"format\": 9, \"project\": \"proj\", \"target\": \"dev\", \"records\": {}}");
	err = (struct sluice_err)SLUICE_ERR_INIT;
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, "format 9");

	write_state_file("dev.json", "{\"format\": 1, \"project\": \"proj\", \"target\": \"dev\", \"records\": "
			 "{\"model.proj.a\": {\"rows\": 5}}}");
	recs = load_ok(st, &a);
	assert_int_equal(val_get_int(val_get(&recs, "model.proj.a"), "rows", 0), 5);
	state_close(st);
	free(snap);
	arena_release(&a);
}

static void test_local_finish_compacts(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf text = BUF_INIT;
	struct val recs, snap;
	int i;

	(void)unused;
	lock_ok(st);
	for (i = 0; i < 5; i++)
		put_ok(st, &a, arena_printf(&a, "model.proj.m%d", i), i);
	put_ok(st, &a, "model.proj.m0", 100);
	if (state_finish(st, &err))
		fail_msg("state_finish: %s", err.msg);
	read_state_file("dev.journal", &text);
	assert_int_equal(text.len, 0);
	read_state_file("dev.json", &text);
	if (json_parse_val(&a, "dev.json", text.s, &snap, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(val_get_int(&snap, "format", 0), 1);
	assert_string_equal(val_get_str(&snap, "project", ""), "proj");
	assert_string_equal(val_get_str(&snap, "target", ""), "dev");
	assert_int_equal(val_get(&snap, "records")->u.dict.n, 5);
	assert_false(state_file_exists("dev.json.tmp"));

	/* The same run goes on putting after a finish; the journal restarts. */
	put_ok(st, &a, "model.proj.m1", 101);
	read_state_file("dev.journal", &text);
	assert_int_equal(count_lines(text.s), 1);
	state_close(st);

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 5);
	assert_record(&a, &recs, "model.proj.m0", 100);
	assert_record(&a, &recs, "model.proj.m1", 101);
	assert_record(&a, &recs, "model.proj.m4", 4);
	state_close(st);
	buf_release(&text);
	arena_release(&a);
}

/* A crash after the snapshot's rename but before the journal is emptied. */
static void test_local_crash_before_truncate(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf journal = BUF_INIT;
	struct val recs;

	(void)unused;
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.a", 2);
	put_ok(st, &a, "model.proj.b", 3);
	read_state_file("dev.journal", &journal);
	if (state_finish(st, &err))
		fail_msg("state_finish: %s", err.msg);
	state_close(st);
	write_state_file("dev.journal", journal.s);
	write_state_file("dev.json.tmp", "{\"half\": ");       /* and a temp file cut short */

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 2);
	assert_record(&a, &recs, "model.proj.b", 3);
	lock_ok(st);
	if (state_finish(st, &err))
		fail_msg("state_finish: %s", err.msg);
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 2);
	state_close(st);
	buf_release(&journal);
	arena_release(&a);
}

#define PUT_THREADS 8
#define PUTS_EACH 200

struct putter {
	struct state *st;
	int id, failures;
	char msg[sizeof(((struct sluice_err *)0)->msg)];
};

static void *put_many(void *ud)
{
	struct putter *p = ud;
	struct arena a = ARENA_INIT;
	int i;

	for (i = 0; i < PUTS_EACH; i++) {
		struct sluice_err err = SLUICE_ERR_INIT;
		char uid[64];
		struct val r;

		snprintf(uid, sizeof(uid), "model.proj.t%d_%d", p->id, i);
		r = record(&a, uid, p->id * 1000 + i);
		if (state_put(p->st, uid, &r, &err) && !p->failures++)
			snprintf(p->msg, sizeof(p->msg), "%s", err.msg);
	}
	arena_release(&a);
	return NULL;
}

static void test_local_concurrent_puts(void **unused)
{
	struct putter p[PUT_THREADS];
	pthread_t t[PUT_THREADS];
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf j = BUF_INIT;
	struct val recs;
	int i, k;

	(void)unused;
	lock_ok(st);
	for (i = 0; i < PUT_THREADS; i++) {
		p[i] = (struct putter){ st, i, 0, "" };
		assert_int_equal(pthread_create(&t[i], NULL, put_many, &p[i]), 0);
	}
	for (i = 0; i < PUT_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (p[i].failures)
			fail_msg("thread %d: %d puts failed: %s", i, p[i].failures, p[i].msg);
	}
	read_state_file("dev.journal", &j);
	assert_int_equal(count_lines(j.s), PUT_THREADS * PUTS_EACH);
	state_close(st);

	st = open_local("dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, PUT_THREADS * PUTS_EACH);
	for (i = 0; i < PUT_THREADS; i++)
		for (k = 0; k < PUTS_EACH; k += 37)
			assert_record(&a, &recs, arena_printf(&a, "model.proj.t%d_%d", i, k), i * 1000 + k);
	state_close(st);
	buf_release(&j);
	arena_release(&a);
}

/*
 * kill -9 at random moments of a run that puts and compacts: every put
 * that returned before the kill is there afterwards, and the state loads.
 */
static void test_local_kill9_anywhere(void **unused)
{
	struct arena a = ARENA_INIT;
	int round;

	(void)unused;
	for (round = 0; round < 6; round++) {
		int fds[2], got = 0, n;
		pid_t pid;
		struct state *st;
		struct val recs;
		int last = -1;

		assert_int_equal(pipe(fds), 0);
		child_pid = pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct arena ca = ARENA_INIT;
			struct state *cs = NULL;
			struct sluice_err err = SLUICE_ERR_INIT;
			struct state_opts o = local_opts("dev");
			int i;

			close(fds[0]);
			if (state_open(&cs, &o, &err) || state_lock(cs, 10, &err))
				_exit(2);
			for (i = 0;; i++) {
				char uid[64];
				struct val r;
				snprintf(uid, sizeof(uid), "model.proj.k%d", i % 300);
				r = record(&ca, uid, i);
				if (state_put(cs, uid, &r, &err))
					_exit(3);
				if (write(fds[1], &i, sizeof(i)) != sizeof(i))
					_exit(4);
				if (i % 40 == 39 && state_finish(cs, &err))
					_exit(5);
			}
		}
		close(fds[1]);
		/* Let it run a varying while, then kill it wherever it is. */
		while (got < 60 + round * 45 && read(fds[0], &n, sizeof(n)) == sizeof(n)) {
			last = n;
			got++;
		}
		kill(pid, SIGKILL);
		while (read(fds[0], &n, sizeof(n)) == sizeof(n))
			last = n;
		close(fds[0]);
		waitpid(pid, NULL, 0);
		child_pid = 0;
		if (last < 0)
			fail_msg("round %d: the child reported no put", round);

		st = open_local("dev");
		recs = load_ok(st, &a);
		/* The newest put of every uid that returned is what load sees (or a later one). */
		for (n = last; n >= 0 && n > last - 300; n--) {
			const char *uid = arena_printf(&a, "model.proj.k%d", n % 300);
			const struct val *r = val_get(&recs, uid);
			if (!r)
				fail_msg("round %d: %s (put %d) lost", round, uid, n);
			if (val_get_int(r, "rows", -1) < n)
				fail_msg("round %d: %s holds put %lld, not %d", round, uid, val_get_int(r, "rows", -1), n);
		}
		lock_ok(st);            /* takes over the dead run's lock, repairs the journal */
		state_close(st);
	}
	arena_release(&a);
}

/*
 * A run without the lock (sluice plan) may load while the holder compacts:
 * it must never see a record disappear, though the snapshot is replaced
 * and the journal emptied under it.
 */
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
		if ((state_put(c->st, uid, &r, &err) || state_finish(c->st, &err)) && !c->failures++)
			snprintf(c->msg, sizeof(c->msg), "%s", err.msg);
	}
	arena_release(&a);
	return NULL;
}

static void test_local_load_during_compaction(void **unused)
{
	struct compactor c;
	struct state *reader = open_local("dev");
	pthread_t t;
	size_t seen = 0;
	/* enough loads over enough compactions, however busy the machine: not a time */
	double deadline = clock_monotonic() + 60.0;
	int i;

	(void)unused;
	memset(&c, 0, sizeof(c));
	c.st = open_local("dev");
	lock_ok(c.st);
	assert_int_equal(pthread_create(&t, NULL, compact_loop, &c), 0);
	for (i = 0; (i < 200 || seen < 100) && clock_monotonic() < deadline; i++) {
		struct sluice_err err = SLUICE_ERR_INIT;
		struct arena a = ARENA_INIT;
		struct val recs;

		if (state_load(reader, &a, &recs, &err)) {
			c.stop = 1;
			pthread_join(t, NULL);
			fail_msg("load %d: %s", i, err.msg);
		}
		if (recs.u.dict.n < seen) {
			c.stop = 1;
			pthread_join(t, NULL);
			fail_msg("load %d saw %zu records after having seen %zu", i, recs.u.dict.n, seen);
		}
		seen = recs.u.dict.n;
		arena_release(&a);
	}
	c.stop = 1;
	pthread_join(t, NULL);
	if (c.failures)
		fail_msg("%s", c.msg);
	if (seen < 100 || i < 200)
		fail_msg("too little happened in 60 s to tell: %d loads, %zu records", i, seen);
	state_close(c.st);
	state_close(reader);
}

static void test_local_lock_same_process(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st1 = open_local("dev"), *st2 = open_local("dev"), *other = open_local("prod");
	char pid[64];

	(void)unused;
	lock_ok(st1);
	assert_int_equal(state_lock(st2, -1, &err), SLUICE_ELOCK);
	snprintf(pid, sizeof(pid), "alice (pid %ld on host ", (long)getpid());
	assert_contains(err.msg, "state is locked by ");
	assert_contains(err.msg, pid);
	assert_contains(err.msg, ", run 6f1c-run) since 20");
	assert_contains(err.msg, "Z; wait with --wait-lock SECONDS");
	/* Another target has its own lock. */
	lock_ok(other);
	state_close(st1);
	lock_ok(st2);
	state_close(st2);
	state_close(other);
}

static void test_local_lock_forked_child(void **unused)
{
	struct state *st = open_local("dev");
	char msg[2048] = "", pid[64];
	int fds[2], status;
	ssize_t n;
	pid_t child;

	(void)unused;
	lock_ok(st);
	assert_int_equal(pipe(fds), 0);
	child_pid = child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct sluice_err err = SLUICE_ERR_INIT;
		struct state_opts o = local_opts("dev");
		struct state *cs = NULL;
		int rc;

		o.user = "bob";
		if (state_open(&cs, &o, &err))
			_exit(2);
		rc = state_lock(cs, -1, &err);
		if (write(fds[1], err.msg, strlen(err.msg)) < 0)
			_exit(3);
		_exit(rc == SLUICE_ELOCK ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	assert_true(n > 0);
	msg[n] = '\0';
	waitpid(child, &status, 0);
	child_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child did not get SLUICE_ELOCK: %s", msg);
	snprintf(pid, sizeof(pid), "alice (pid %ld on host ", (long)getpid());
	assert_contains(msg, pid);
	assert_contains(msg, " since 20");
	state_close(st);
}

static void *close_later(void *ud)
{
	sleep_ms(300);
	state_close(ud);
	return NULL;
}

static void test_local_wait_lock(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st1 = open_local("dev"), *st2 = open_local("dev");
	pthread_t t;
	double t0, waited;

	(void)unused;
	lock_ok(st1);
	t0 = clock_monotonic();
	assert_int_equal(state_lock(st2, 1, &err), SLUICE_ELOCK);
	waited = clock_monotonic() - t0;
	assert_true(waited >= 0.95 && waited < 3);
	assert_contains(err.msg, "still locked after waiting 1 s");

	assert_int_equal(pthread_create(&t, NULL, close_later, st1), 0);
	t0 = clock_monotonic();
	err = (struct sluice_err)SLUICE_ERR_INIT;
	if (state_lock(st2, 5, &err))
		fail_msg("state_lock with wait: %s", err.msg);
	waited = clock_monotonic() - t0;
	/* The failed attempts while waiting leave no message behind for a caller to print. */
	assert_string_equal(err.msg, "");
	pthread_join(t, NULL);
	if (waited < 0.25 || waited > 2)
		fail_msg("waited %.2f s for a lock released after 0.3 s", waited);
	state_close(st2);
}

static void test_local_killed_holder(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = open_local("dev");
	char pid[64], c;
	int fds[2];
	pid_t child;
	double t0;

	(void)unused;
	assert_int_equal(pipe(fds), 0);
	child_pid = child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct state *cs = open_local("dev");
		struct sluice_err cerr = SLUICE_ERR_INIT;
		if (state_lock(cs, -1, &cerr) || write(fds[1], "L", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	snprintf(pid, sizeof(pid), "(pid %ld on host ", (long)child);
	assert_contains(err.msg, pid);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child_pid = 0;
	t0 = clock_monotonic();
	err = (struct sluice_err)SLUICE_ERR_INIT;
	if (state_lock(st, -1, &err))
		fail_msg("a dead holder's lock was not taken over: %s", err.msg);
	assert_true(clock_monotonic() - t0 < 0.5);
	state_close(st);
}

static void test_local_needs_lock_to_put(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct val r = record(&a, "model.proj.a", 1);

	(void)unused;
	assert_int_equal(state_put(st, "model.proj.a", &r, &err), SLUICE_EUSAGE);
	assert_contains(err.msg, "model.proj.a");
	assert_int_equal(state_finish(st, &err), 0);
	assert_false(state_file_exists("dev.json"));
	state_close(st);
	arena_release(&a);
}

/* ---- run history ------------------------------------------------------ */

static void history_put_ok(struct state *st, struct arena *a, const char *id, int n)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val r = val_dict_new();

	val_dict_set(a, &r, "invocation_id", val_str(arena_strdup(a, id)));
	val_dict_set(a, &r, "built", val_num(n));
	val_dict_set(a, &r, "command", val_str("sluice run -s 'x' \"y\""));
	if (state_history_put(st, &r, &err))
		fail_msg("state_history_put %s: %s", id, err.msg);
}

/* The invocation ids of the last n runs, newest first, space-separated. */
static void history_ids(struct state *st, struct arena *a, int n, struct buf *out)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val runs;
	size_t i;

	buf_reset(out);
	if (state_history_load(st, n, a, &runs, &err))
		fail_msg("state_history_load: %s", err.msg);
	assert_int_equal(runs.kind, V_LIST);
	for (i = 0; i < runs.u.list.n; i++)
		buf_printf(out, "%s%s", i ? " " : "", val_get_str(&runs.u.list.items[i], "invocation_id", "?"));
}

static void test_local_history(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = open_local("dev");
	struct buf ids = BUF_INIT;
	struct val r = val_dict_new();

	(void)unused;
	/* old state: no history, not an error */
	history_ids(st, &a, 50, &ids);
	assert_string_equal(ids.s, "");
	/* like a record, history needs the lock */
	assert_int_equal(state_history_put(st, &r, &err), SLUICE_EUSAGE);
	lock_ok(st);
	history_put_ok(st, &a, "run-1", 1);
	history_put_ok(st, &a, "run-2", 2);
	history_put_ok(st, &a, "run-3", 3);
	history_ids(st, &a, 2, &ids);
	assert_string_equal(ids.s, "run-3 run-2");
	state_close(st);
	/* a run killed mid-write leaves a torn line: ignored, and the next append starts afresh */
	append_file("dev.history", "{\"invocation_id\":\"run-4\",\"bui");
	st = open_local("dev");
	history_ids(st, &a, 50, &ids);
	assert_string_equal(ids.s, "run-3 run-2 run-1");
	lock_ok(st);
	history_put_ok(st, &a, "run-5", 5);
	history_ids(st, &a, 50, &ids);
	assert_string_equal(ids.s, "run-5 run-3 run-2 run-1");
	/* history is not a node record: the snapshot does not change */
	assert_false(state_file_exists("dev.json"));
	state_close(st);
	buf_release(&ids);
	arena_release(&a);
}

static void test_local_targets_apart(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *dev = open_local("dev"), *odd = open_local("../we ird");
	struct val recs;

	(void)unused;
	lock_ok(dev);
	lock_ok(odd);
	put_ok(dev, &a, "model.proj.a", 1);
	put_ok(odd, &a, "model.proj.a", 2);
	put_ok(odd, &a, "model.proj.b", 3);
	recs = load_ok(dev, &a);
	assert_int_equal(recs.u.dict.n, 1);
	assert_record(&a, &recs, "model.proj.a", 1);
	recs = load_ok(odd, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 2);
	/* A target name never reaches outside .sluice/state/. */
	assert_true(state_file_exists("%2E.%2Fwe%20ird.journal"));
	state_close(dev);
	state_close(odd);
	arena_release(&a);
}

/*
 * Reuse across environments reads another target's records without its
 * lock, whatever that target's run has put or folded; a forgotten record
 * is gone for it and for readers, before and after the compaction.
 */
static void load_target_and_forget(struct state *dev, struct state *prod)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val recs;

	lock_ok(prod);
	put_ok(dev, &a, "model.proj.a", 1);   /* dev is locked by the caller */
	put_ok(prod, &a, "model.proj.a", 2);
	put_ok(prod, &a, "model.proj.b", 3);
	if (state_load_target(dev, "prod", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 2);
	assert_record(&a, &recs, "model.proj.b", 3);
	if (state_load_target(dev, "never_ran", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 0);
	if (state_load_target(dev, "dev", &a, &recs, &err))    /* its own: state_load */
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 1);
	assert_int_equal(state_forget(dev, "model.proj.a", &err), 0);
	assert_int_equal(state_forget(prod, "model.proj.b", &err), 0);
	recs = load_ok(prod, &a);
	assert_int_equal(recs.u.dict.n, 1);
	assert_null(val_get(&recs, "model.proj.b"));
	assert_int_equal(state_finish(prod, &err), 0);
	if (state_load_target(dev, "prod", &a, &recs, &err))
		fail_msg("state_load_target: %s", err.msg);
	assert_int_equal(recs.u.dict.n, 1);
	assert_record(&a, &recs, "model.proj.a", 2);
	recs = load_ok(dev, &a);
	assert_int_equal(recs.u.dict.n, 0);
	arena_release(&a);
}

static void test_local_load_target_and_forget(void **unused)
{
	struct state *dev = open_local("dev"), *prod = open_local("prod");
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	/* forgetting needs the lock, like a put */
	assert_int_equal(state_forget(dev, "model.proj.a", &err), SLUICE_EUSAGE);
	lock_ok(dev);
	load_target_and_forget(dev, prod);
	state_close(dev);
	state_close(prod);
}

/* ---- snapshots: the two-thread reader against the one reader ---------- */

/* n records that look like a run's, with what JSON can hold that a hash cannot. */
static json_t *snapshot_records_new(int n)
{
	json_t *recs = json_object();
	char uid[64], fp[40];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(uid, sizeof(uid), "model.p.m%05d", i);
		snprintf(fp, sizeof(fp), "%032x", (unsigned)(i * 2654435761u));
		json_object_set_new(recs, uid,
				    json_pack("{s:s, s:s, s:s, s:f, s:i, s:b, s:n, s:{s:s}, s:[s, i], s:s, s:s}",
					      "unique_id", uid, "status", i % 7 ? "success" : "error",
					      "fingerprint", fp, "duration", i / 3.0 + 0.5, "rows", i - 5, "git_dirty", i % 2,
					      "git_commit", "vars", "var.day", i % 3 ? "mon" : "tue", "list", "x", i,
					      "sql", "select 'caf\u00e9', \"q\"\n\tfrom t", "user", "ann\u00e9e"));
	}
	return recs;
}

/* Load text as a backend does; the records back as JSON (a new reference), or NULL and why. */
static json_t *snapshot_read_new(const struct state *st, const char *text, struct buf *why)
{
	struct arena a = ARENA_INIT;
	struct val records = val_dict_new();
	json_t *out = NULL;

	if (!state_snapshot_load(st, text, strlen(text), &a, &records, why))
		out = json_from_val_new(&records);
	arena_release(&a);
	return out;
}

/* recs written as a snapshot into text, and read back the same */
static void expect_read_back(const struct state *st, json_t *recs, struct buf *text)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf why = BUF_INIT;
	json_t *got;

	assert_int_equal(state_snapshot_format(st, NULL, json_incref(recs), "t", text, &err), 0);
	json_decref(recs);
	got = snapshot_read_new(st, text->s, &why);
	assert_non_null(got);
	assert_true(json_equal(got, recs));
	json_decref(got);
	buf_release(&why);
}

static void test_snapshot_two_readers(void **unused)
{
	struct state st = { .project = "p", .target = "dev" };
	int sizes[] = { 0, 1, 2, 3, 1001 }, k;

	(void)unused;
	for (k = 0; k < (int)(sizeof(sizes) / sizeof(sizes[0])); k++) {
		json_t *recs = snapshot_records_new(sizes[k]), *got, *doc;
		struct buf text = BUF_INIT, why = BUF_INIT;
		char *pretty;

		/* as written: one record a line, read by two threads */
		expect_read_back(&st, recs, &text);
		/* the same snapshot laid out by hand goes through the one reader, to the same records */
		doc = json_loadb(text.s, text.len, 0, NULL);
		assert_non_null(doc);
		pretty = json_dumps(doc, JSON_INDENT(2));
		got = snapshot_read_new(&st, pretty, &why);
		assert_non_null(got);
		assert_true(json_equal(got, recs));
		json_decref(got);
		free(pretty);
		json_decref(doc);
		json_decref(recs);
		buf_release(&text);
		buf_release(&why);
	}
}

/* text with the line of uid replaced by line (a new string) */
static char *line_replaced(const char *text, const char *uid, const char *line)
{
	struct buf b = BUF_INIT;
	char key[80];
	const char *at, *eol;

	snprintf(key, sizeof(key), "\n\"%s\":", uid);
	at = strstr(text, key);
	assert_non_null(at);
	eol = strchr(at + 1, '\n');
	buf_add(&b, text, (size_t)(at + 1 - text));
	buf_puts(&b, line);
	buf_puts(&b, eol);
	return buf_detach(&b, NULL);
}

/* What the two readers must not take as theirs: each still reads right, or fails as the one reader does. */
static void test_snapshot_odd_lines(void **unused)
{
	struct state st = { .project = "p", .target = "dev" }, other = { .project = "p", .target = "prod" };
	json_t *recs = snapshot_records_new(40), *got;
	struct buf text = BUF_INIT, why = BUF_INIT;
	char *bad;

	(void)unused;
	/* a unique_id with an escape in it */
	json_object_set_new(recs, "model.p.\"quoted\"", json_pack("{s:s}", "status", "success"));
	expect_read_back(&st, recs, &text);
	/* another target's snapshot is refused by both */
	assert_null(snapshot_read_new(&other, text.s, &why));
	assert_non_null(strstr(why.s, "'prod'"));
	/* a record cut short in the second half: an error, not fewer records */
	bad = line_replaced(text.s, "model.p.m00030", "\"model.p.m00030\":{\"status\":\"success\",");
	buf_reset(&why);
	assert_null(snapshot_read_new(&st, bad, &why));
	assert_non_null(strstr(why.s, "line"));
	free(bad);
	/* a record that is not an object: kept as the one reader keeps it, never dropped */
	bad = line_replaced(text.s, "model.p.m00031", "\"model.p.m00031\":7,");
	got = snapshot_read_new(&st, bad, &why);
	assert_non_null(got);
	assert_int_equal(json_integer_value(json_object_get(got, "model.p.m00031")), 7);
	assert_int_equal(json_object_size(got), json_object_size(recs));
	json_decref(got);
	free(bad);
	json_decref(recs);
	buf_release(&text);
	buf_release(&why);
}

static void test_specs(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = local_opts("dev");
	struct state *st = (struct state *)&o;

	(void)unused;
	/* s3:// is test_state_s3.c's; here only that the spec reaches it */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	o.spec = "s3://bucket/prefix/";
	assert_int_equal(state_open(&st, &o, &err), SLUICE_EUSAGE);
	assert_null(st);
	assert_non_null(strstr(err.msg, "state: s3://bucket/prefix/: s3: no credentials"));
	o.spec = "sqlite";
	assert_int_equal(state_open(&st, &o, &err), SLUICE_EUSAGE);
	assert_string_equal(err.msg,
			    "sluice.yml: unknown state backend 'sqlite' (known: local, warehouse, s3://bucket/prefix/)");
	o.spec = "Local";
	assert_int_equal(state_open(&st, &o, &err), SLUICE_EUSAGE);
	o.spec = NULL;
	st = open_ok(&o);
	lock_ok(st);
	state_close(st);
	assert_true(state_file_exists("dev.journal"));
	o.spec = "";
	st = open_ok(&o);
	state_close(st);
	state_close(NULL);
}

/* ---- warehouse backend ------------------------------------------------ */

static const char *pg_env[4];
static char pg_missing[1024];
static char pg_db[64];

static struct val pg_settings(struct arena *a, const char *dbname, const char *password)
{
	struct val s = val_dict_new();

	val_dict_set(a, &s, "type", val_str("postgres"));
	val_dict_set(a, &s, "host", val_str(pg_env[0]));
	val_dict_set(a, &s, "port", val_str(pg_env[1]));
	val_dict_set(a, &s, "user", val_str(pg_env[2]));
	val_dict_set(a, &s, "password", val_str(password ? password : pg_env[3]));
	val_dict_set(a, &s, "dbname", val_str(dbname));
	return s;
}

/* state_opts.connect: a new connection each call, as on a fresh machine. */
static int pg_state_connect(void *ud, struct sluice_conn **out, const struct dialect **d, struct sluice_err *err)
{
	struct sluice_conn_params p = { "default", ud, project_dir, "sluice/test_state" };

	*d = dialect_find("postgres");
	return pg_connector.connect(&p, out, err);
}

static struct sluice_conn *admin_connect(struct arena *a, const char *dbname)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val s = pg_settings(a, dbname, NULL);
	struct sluice_conn *c = NULL;
	struct sluice_conn_params p = { "admin", &s, project_dir, "sluice/test_state" };

	if (pg_connector.connect(&p, &c, &err))
		fail_msg("connect to %s: %s", dbname, err.msg);
	return c;
}

static void sql_ok(struct sluice_conn *c, const char *sql)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (c->drv->exec(c, sql, NULL, &err))
		fail_msg("%s: %s", sql, err.msg);
}

static int first_col(void *ud, const struct sluice_row *row)
{
	snprintf(ud, 256, "%s", row->values[0] ? row->values[0] : "NULL");
	return 0;
}

static void scalar(struct sluice_conn *c, const char *sql, char out[256])
{
	struct sluice_err err = SLUICE_ERR_INIT;

	out[0] = '\0';
	if (c->drv->query(c, sql, first_col, out, &err))
		fail_msg("%s: %s", sql, err.msg);
}

static void need_pg(void)
{
	if (pg_missing[0])
		fail_msg("%s", pg_missing);
}

/* Settings live in wh_arena for the whole group: opts.connect_ud points into it. */
static struct arena wh_arena;
static struct val wh_settings;

static struct state_opts wh_opts(const char *project, const char *target)
{
	struct state_opts o = { 0 };

	o.spec = "warehouse";
	o.project_dir = project_dir;
	o.project = project;
	o.target = target;
	o.user = "alice";
	o.invocation_id = "6f1c-run";
	o.connect = pg_state_connect;
	o.connect_ud = &wh_settings;
	return o;
}

static struct state *open_wh(const char *project, const char *target)
{
	struct state_opts o = wh_opts(project, target);

	need_pg();
	return open_ok(&o);
}

static void test_wh_tables_created(void **unused)
{
	struct arena a = ARENA_INIT;
	struct sluice_conn *c;
	struct state *st;
	char v[256];

	(void)unused;
	need_pg();
	c = admin_connect(&a, pg_db);
	sql_ok(c, "DROP SCHEMA IF EXISTS sluice_meta CASCADE");
	st = open_wh("p_tables", "dev");
	scalar(c, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sluice_meta' "
		  "AND table_name = 'node_state' AND column_name IN ('project', 'target', 'unique_id', "
		  "'record', 'updated_at', 'invocation_id')", v);
	assert_string_equal(v, "6");
	scalar(c, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sluice_meta' "
		  "AND table_name = 'locks' AND column_name IN ('project', 'target', 'holder', 'since')", v);
	assert_string_equal(v, "4");
	state_close(st);
	/* Opening again with the tables there is fine. */
	st = open_wh("p_tables", "dev");
	state_close(st);
	c->drv->close(c);
	arena_release(&a);
}

static void test_wh_round_trip(void **unused)
{
	struct arena a = ARENA_INIT;
	struct sluice_conn *c;
	struct state *st;
	struct val recs;
	char v[256];

	(void)unused;
	st = open_wh("p_round", "dev");
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 0);
	lock_ok(st);
	put_ok(st, &a, "model.proj.a", 1);
	put_ok(st, &a, "model.proj.b", 2);
	put_ok(st, &a, "model.proj.a", 3);
	recs = load_ok(st, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 3);
	assert_record(&a, &recs, "model.proj.b", 2);

	/* One row per node, the record as JSON text, with who wrote it. */
	c = admin_connect(&a, pg_db);
	scalar(c, "SELECT count(*) FROM sluice_meta.node_state WHERE project = 'p_round'", v);
	assert_string_equal(v, "2");
	scalar(c, "SELECT invocation_id FROM sluice_meta.node_state WHERE project = 'p_round' "
		  "AND unique_id = 'model.proj.a'", v);
	assert_string_equal(v, "6f1c-run");
	scalar(c, "SELECT record::json->>'fingerprint' FROM sluice_meta.node_state WHERE project = 'p_round' "
		  "AND unique_id = 'model.proj.a'", v);
	assert_string_equal(v, "fp-3");
	c->drv->close(c);
	state_close(st);
	arena_release(&a);
}

static void test_wh_fresh_machine(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *st1, *st2;
	struct val recs;

	(void)unused;
	st1 = open_wh("p_fresh", "prod");
	lock_ok(st1);
	put_ok(st1, &a, "model.proj.a", 1);
	put_ok(st1, &a, "model.proj.b", 2);
	/* Visible to another connection as soon as put returns... */
	st2 = open_wh("p_fresh", "prod");
	recs = load_ok(st2, &a);
	assert_int_equal(recs.u.dict.n, 2);
	state_close(st2);
	state_close(st1);
	/* ...and after the run is gone, to tomorrow's worker. */
	st2 = open_wh("p_fresh", "prod");
	recs = load_ok(st2, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 1);
	assert_record(&a, &recs, "model.proj.b", 2);
	state_close(st2);
	arena_release(&a);
}

/* One run of a worker: open, lock, write its history record, close. */
static void wh_history_run(const char *project, const char *id, struct arena *a)
{
	struct state_opts o = wh_opts(project, "prod");
	struct state *st;

	o.invocation_id = id;
	need_pg();
	st = open_ok(&o);
	lock_ok(st);
	history_put_ok(st, a, id, 1);
	state_close(st);
}

static void test_wh_history(void **unused)
{
	struct arena a = ARENA_INIT;
	struct sluice_conn *c;
	struct state *st;
	struct buf ids = BUF_INIT;

	(void)unused;
	need_pg();
	c = admin_connect(&a, pg_db);
	sql_ok(c, "DROP SCHEMA IF EXISTS sluice_meta CASCADE");
	/* a schema without run_history (an older sluice, or prepared by hand): no history, no error */
	st = open_wh("p_hist", "prod");
	history_ids(st, &a, 50, &ids);
	assert_string_equal(ids.s, "");
	state_close(st);
	/* three runs on three workers; ids are UUIDv7 in real runs, ordered like these */
	wh_history_run("p_hist", "01a2-0001", &a);
	wh_history_run("p_hist", "01a2-0002", &a);
	wh_history_run("p_hist", "01a2-0003", &a);
	wh_history_run("p_other", "01a2-0004", &a);
	/* a fresh worker reads them, newest first, only its project's */
	st = open_wh("p_hist", "prod");
	history_ids(st, &a, 2, &ids);
	assert_string_equal(ids.s, "01a2-0003 01a2-0002");
	history_ids(st, &a, 50, &ids);
	assert_string_equal(ids.s, "01a2-0003 01a2-0002 01a2-0001");
	state_close(st);
	c->drv->close(c);
	buf_release(&ids);
	arena_release(&a);
}

static void test_wh_lock_conflict(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st1, *st2;
	struct sluice_conn *c;
	char pid[64], v[256];

	(void)unused;
	st1 = open_wh("p_lock", "dev");
	st2 = open_wh("p_lock", "dev");
	lock_ok(st1);
	assert_int_equal(state_lock(st2, -1, &err), SLUICE_ELOCK);
	snprintf(pid, sizeof(pid), "state is locked by alice (pid %ld on host ", (long)getpid());
	assert_contains(err.msg, pid);
	assert_contains(err.msg, ", run 6f1c-run) since 20");
	assert_contains(err.msg, "Z; wait with --wait-lock SECONDS");
	state_close(st1);
	/* The holder's row goes with it. */
	c = admin_connect(&a, pg_db);
	scalar(c, "SELECT count(*) FROM sluice_meta.locks WHERE project = 'p_lock'", v);
	assert_string_equal(v, "0");
	lock_ok(st2);
	scalar(c, "SELECT count(*) FROM sluice_meta.locks WHERE project = 'p_lock'", v);
	assert_string_equal(v, "1");
	c->drv->close(c);
	state_close(st2);
	arena_release(&a);
}

static void test_wh_killed_holder(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st;
	char pid[64], c;
	int fds[2];
	pid_t child;
	double t0;

	(void)unused;
	need_pg();
	assert_int_equal(pipe(fds), 0);
	child_pid = child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct state_opts o = wh_opts("p_kill", "dev");
		struct sluice_err cerr = SLUICE_ERR_INIT;
		struct state *cs = NULL;
		if (state_open(&cs, &o, &cerr) || state_lock(cs, -1, &cerr) || write(fds[1], "L", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1)
		fail_msg("the child could not take the lock");
	close(fds[0]);
	st = open_wh("p_kill", "dev");
	assert_int_equal(state_lock(st, -1, &err), SLUICE_ELOCK);
	snprintf(pid, sizeof(pid), "(pid %ld on host ", (long)child);
	assert_contains(err.msg, pid);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child_pid = 0;
	t0 = clock_monotonic();
	err = (struct sluice_err)SLUICE_ERR_INIT;
	if (state_lock(st, 5, &err))
		fail_msg("the killed holder's lock did not come free: %s", err.msg);
	if (clock_monotonic() - t0 > 5)
		fail_msg("took %.1f s", clock_monotonic() - t0);
	state_close(st);
}

static void test_wh_targets_apart(void **unused)
{
	struct arena a = ARENA_INIT;
	struct state *dev, *prod, *other;
	struct val recs;

	(void)unused;
	dev = open_wh("p_apart", "dev");
	prod = open_wh("p_apart", "prod");
	other = open_wh("p_apart2", "dev");
	lock_ok(dev);
	lock_ok(prod);          /* locks are per target too */
	lock_ok(other);
	put_ok(dev, &a, "model.proj.a", 1);
	put_ok(prod, &a, "model.proj.a", 2);
	put_ok(prod, &a, "model.proj.b", 3);
	recs = load_ok(dev, &a);
	assert_int_equal(recs.u.dict.n, 1);
	assert_record(&a, &recs, "model.proj.a", 1);
	recs = load_ok(prod, &a);
	assert_int_equal(recs.u.dict.n, 2);
	assert_record(&a, &recs, "model.proj.a", 2);
	recs = load_ok(other, &a);
	assert_int_equal(recs.u.dict.n, 0);
	state_close(dev);
	state_close(prod);
	state_close(other);
	arena_release(&a);
}

static void test_wh_load_target_and_forget(void **unused)
{
	struct state *dev = open_wh("p_target", "dev"), *prod = open_wh("p_target", "prod");

	(void)unused;
	lock_ok(dev);
	load_target_and_forget(dev, prod);
	state_close(dev);
	state_close(prod);
}

static void test_wh_bad_record(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct sluice_conn *c;
	struct state *st;
	struct val recs;

	(void)unused;
	st = open_wh("p_bad", "dev");
	c = admin_connect(&a, pg_db);
	sql_ok(c, "INSERT INTO sluice_meta.node_state VALUES ('p_bad', 'dev', 'model.proj.broken', '{\"rows\": ', "
		  "now(), 'x')");
	assert_int_equal(state_load(st, &a, &recs, &err), SLUICE_EIO);
	assert_contains(err.msg, "state (warehouse): ");
	assert_contains(err.msg, "model.proj.broken");
	c->drv->close(c);
	state_close(st);
	arena_release(&a);
}

static void test_wh_errors(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state_opts o = wh_opts("p_err", "dev");
	struct val bad;
	struct state *st = NULL;

	(void)unused;
	need_pg();
	bad = pg_settings(&a, pg_db, "not-the-password-xyzzy");
	o.connect_ud = &bad;
	assert_int_not_equal(state_open(&st, &o, &err), 0);
	assert_null(st);
	assert_contains(err.msg, "state (warehouse): ");
	assert_null(strstr(err.msg, "xyzzy"));
	assert_null(strstr(err.msg, pg_env[3]));
	o.connect = NULL;
	assert_int_equal(state_open(&st, &o, &err), SLUICE_EUSAGE);
	arena_release(&a);
}

static int wh_setup(void **unused)
{
	static const char *names[4] = { "SLUICE_TEST_PGHOST", "SLUICE_TEST_PGPORT", "SLUICE_TEST_PGUSER",
					"SLUICE_TEST_PGPASSWORD" };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	struct sluice_conn_params p = { "admin", NULL, "/tmp", "sluice/test_state" };
	struct val s;
	struct buf sql = BUF_INIT;
	int i;

	(void)unused;
	for (i = 0; i < 4; i++) {
		pg_env[i] = getenv(names[i]);
		if (!pg_env[i] || !*pg_env[i]) {
			snprintf(pg_missing, sizeof(pg_missing),
				 "%s is not set: the warehouse tests need the harness's PostgreSQL "
				 "(set -a; eval \"$(sh tests/harness/pg.sh start DIR)\"; set +a)", names[i]);
			return 0;
		}
	}
	snprintf(pg_db, sizeof(pg_db), "sluice_state_test_%ld", (long)getpid());
	s = pg_settings(&wh_arena, "postgres", NULL);
	p.settings = &s;
	if (pg_connector.connect(&p, &c, &err)) {
		snprintf(pg_missing, sizeof(pg_missing), "cannot reach the test PostgreSQL: %.200s", err.msg);
		return 0;
	}
	buf_printf(&sql, "DROP DATABASE IF EXISTS %s", pg_db);
	if (!c->drv->exec(c, sql.s, NULL, &err)) {
		buf_reset(&sql);
		buf_printf(&sql, "CREATE DATABASE %s", pg_db);
		c->drv->exec(c, sql.s, NULL, &err);
	}
	if (err.code)
		snprintf(pg_missing, sizeof(pg_missing), "cannot create database %s: %.200s", pg_db, err.msg);
	c->drv->close(c);
	buf_release(&sql);
	wh_settings = pg_settings(&wh_arena, pg_db, NULL);
	return 0;
}

static int wh_teardown(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	struct sluice_conn_params p = { "admin", NULL, "/tmp", "sluice/test_state" };
	struct val s;
	struct buf sql = BUF_INIT;

	(void)unused;
	if (pg_db[0] && pg_env[0] && !pg_missing[0]) {
		s = pg_settings(&wh_arena, "postgres", NULL);
		p.settings = &s;
		if (!pg_connector.connect(&p, &c, &err)) {
			buf_printf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_db);
			c->drv->exec(c, sql.s, NULL, &err);
			c->drv->close(c);
		}
	}
	buf_release(&sql);
	connectors_shutdown();
	arena_release(&wh_arena);
	return 0;
}

#define LOCAL(t) cmocka_unit_test_setup_teardown(t, make_project, drop_project)

int main(void)
{
	const struct CMUnitTest tests[] = {
		LOCAL(test_local_round_trip),
		LOCAL(test_local_survives_reopen),
		LOCAL(test_local_last_put_wins),
		LOCAL(test_local_torn_last_line),
		LOCAL(test_local_whole_last_line_without_newline),
		LOCAL(test_local_damaged_middle_line),
		LOCAL(test_local_damaged_snapshot),
		LOCAL(test_local_finish_compacts),
		LOCAL(test_local_crash_before_truncate),
		LOCAL(test_local_concurrent_puts),
		LOCAL(test_local_kill9_anywhere),
		LOCAL(test_local_load_during_compaction),
		LOCAL(test_local_lock_same_process),
		LOCAL(test_local_lock_forked_child),
		LOCAL(test_local_wait_lock),
		LOCAL(test_local_killed_holder),
		LOCAL(test_local_needs_lock_to_put),
		LOCAL(test_local_targets_apart),
		LOCAL(test_local_load_target_and_forget),
		LOCAL(test_local_history),
		LOCAL(test_specs),
		LOCAL(test_snapshot_two_readers),
		LOCAL(test_snapshot_odd_lines),
		LOCAL(test_wh_tables_created),
		LOCAL(test_wh_round_trip),
		LOCAL(test_wh_fresh_machine),
		LOCAL(test_wh_history),
		LOCAL(test_wh_lock_conflict),
		LOCAL(test_wh_killed_holder),
		LOCAL(test_wh_targets_apart),
		LOCAL(test_wh_load_target_and_forget),
		LOCAL(test_wh_bad_record),
		LOCAL(test_wh_errors),
	};

	return cmocka_run_group_tests(tests, wh_setup, wh_teardown);
}
