/*
 * test_executor.c: unit tests for engine/executor.c: parents finish before
 * their children start, a failure skips only what is downstream of it,
 * and a thread the system refuses to start is never waited for. Jobs are
 * callbacks on an in-memory DAG; no database.
 *
 * pthread_create is wrapped at link time (-Wl,--wrap=pthread_create, see
 * the Makefile), so that a test can make the system refuse the Nth
 * thread, as it does at a thread or memory limit.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "../../engine/executor.h"

/* ---- pthread_create, refused from the Nth call on ---- */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

static int refuse_from = -1;    /* 0-based call number; -1: never refuse */
static int ncreate;             /* calls so far; only the thread running executor_run creates */

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	if (refuse_from >= 0 && ncreate++ >= refuse_from)
		return EAGAIN;
	return __real_pthread_create(t, attr, fn, arg);
}

/* ---- a recording job table ---- */

#define N 6

struct rec {
	int fail[N];                  /* run() fails for these */
	int release[N];               /* run() lets its children start, and waits for them to */
	int started[N], ended[N];     /* clock values, 1-based; 0: never */
	int worker[N];                /* who ran it */
	int clock;                    /* atomic */
	int finished[N];              /* how often finished() came */
	enum exec_status st[N];
	struct sluice_err err[N];     /* what finished() was told */
};

static int job_run(void *ud, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	struct rec *r = ud;

	(void)reused;
	/* atomic: a releasing parent polls its children's */
	__atomic_store_n(&r->started[idx], __atomic_add_fetch(&r->clock, 1, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
	r->worker[idx] = w->id;
	if (r->release[idx]) {
		/* a producer: its children start while it still runs (bounded wait) */
		int tries;
		exec_release_children(w, idx);
		for (tries = 0; tries < 5000 && !(__atomic_load_n(&r->started[1], __ATOMIC_SEQ_CST) &&
						  __atomic_load_n(&r->started[3], __ATOMIC_SEQ_CST)); tries++)
			usleep(1000);
	}
	usleep(2000);   /* long enough for the other workers to pick something */
	r->ended[idx] = __atomic_add_fetch(&r->clock, 1, __ATOMIC_SEQ_CST);
	return r->fail[idx] ? err_set(err, SLUICE_EDB, "n%zu failed", idx) : 0;
}

static const char *job_name(void *ud, size_t idx)
{
	static const char *const names[N] = { "n0", "n1", "n2", "n3", "n4", "n5" };

	(void)ud;
	return names[idx];
}

static void job_finished(void *ud, struct exec_worker *w, size_t idx, int seq, enum exec_status st,
			 const struct sluice_err *err)
{
	struct rec *r = ud;

	(void)w;
	(void)seq;
	r->finished[idx]++;
	r->st[idx] = st;
	if (err)
		r->err[idx] = *err;
}

static const struct exec_ops ops = { .run = job_run, .name = job_name, .finished = job_finished };

/* n0 -> n1 -> n2, n0 -> n3, and apart from them n4 -> n5. */
static const size_t edges[][2] = { { 0, 1 }, { 1, 2 }, { 0, 3 }, { 4, 5 } };

static int run(struct arena *a, struct rec *r, int threads, int refuse, struct executor *ex)
{
	static const unsigned char todo[N] = { EXEC_RUN, EXEC_RUN, EXEC_RUN, EXEC_RUN, EXEC_RUN, EXEC_RUN };
	struct dag *d = dag_new(a, N);
	size_t *cycle, ncycle, i;
	int rc;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		dag_add_edge(d, edges[i][0], edges[i][1]);
	assert_int_equal(dag_check(d, &cycle, &ncycle), 0);
	memset(ex, 0, sizeof(*ex));
	ex->dag = d;
	ex->todo = todo;
	ex->threads = threads;
	ex->ops = &ops;
	ex->ud = r;
	refuse_from = refuse;
	ncreate = 0;
	rc = executor_run(ex);
	refuse_from = -1;
	return rc;
}

/* ---- tests ---- */

static void test_failure_skips_downstream_only(void **state)
{
	struct arena a = ARENA_INIT;
	struct rec r = { .fail = { [1] = 1 } };
	struct executor ex;
	size_t i;

	(void)state;
	assert_int_equal(run(&a, &r, 3, -1, &ex), SLUICE_EDB);
	assert_int_equal(ex.nworkers, 3);
	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		if (r.started[edges[i][1]])
			assert_true(r.ended[edges[i][0]] < r.started[edges[i][1]]);
	assert_int_equal(r.st[0], EXEC_SUCCESS);
	assert_int_equal(r.st[1], EXEC_ERROR);
	assert_string_equal(r.err[1].msg, "n1 failed");
	assert_int_equal(r.st[2], EXEC_SKIPPED);
	assert_int_equal(r.started[2], 0);
	assert_string_equal(r.err[2].msg, "skipped: upstream 'n1' failed");
	assert_int_equal(r.st[3], EXEC_SUCCESS);
	assert_int_equal(r.st[4], EXEC_SUCCESS);
	assert_int_equal(r.st[5], EXEC_SUCCESS);
	for (i = 0; i < N; i++) {
		assert_int_equal(r.finished[i], 1);
		assert_int_equal(ex.status[i], r.st[i]);
	}
	executor_release(&ex);
	arena_release(&a);
}

/*
 * n0 lets its children start early, then fails: n1 and n3 run while it
 * runs and end on their own (they are not skipped, and finish once); what
 * is below the failing n1 is skipped as usual.
 */
static void test_released_children_run_with_parent(void **state)
{
	struct arena a = ARENA_INIT;
	struct rec r = { .fail = { [0] = 1, [1] = 1 }, .release = { [0] = 1 } };
	struct executor ex;
	size_t i;

	(void)state;
	assert_int_equal(run(&a, &r, 3, -1, &ex), SLUICE_EDB);
	assert_true(r.started[1] && r.started[1] < r.ended[0]);
	assert_true(r.started[3] && r.started[3] < r.ended[0]);
	assert_int_equal(r.st[0], EXEC_ERROR);
	assert_int_equal(r.st[1], EXEC_ERROR);
	assert_int_equal(r.st[3], EXEC_SUCCESS);
	assert_int_equal(r.st[2], EXEC_SKIPPED);
	assert_string_equal(r.err[2].msg, "skipped: upstream 'n1' failed");
	assert_int_equal(r.st[5], EXEC_SUCCESS);
	for (i = 0; i < N; i++) {
		assert_int_equal(r.finished[i], 1);
		assert_int_equal(ex.status[i], r.st[i]);
	}
	executor_release(&ex);
	arena_release(&a);
}

/* Three of four workers refused: the one that started runs everything. */
static void test_some_workers_refused(void **state)
{
	struct arena a = ARENA_INIT;
	struct rec r = { .fail = { 0 } };
	struct executor ex;
	size_t i;

	(void)state;
	/* call 0 starts the signal thread, call 1 the first worker */
	assert_int_equal(run(&a, &r, 4, 2, &ex), 0);
	assert_int_equal(ex.nworkers, 1);
	for (i = 0; i < N; i++) {
		assert_int_equal(r.st[i], EXEC_SUCCESS);
		assert_int_equal(r.worker[i], 1);
	}
	executor_release(&ex);
	arena_release(&a);
}

static void assert_all_skipped_unstarted(const struct rec *r, const struct executor *ex)
{
	size_t i;

	assert_int_equal(ex->nworkers, 0);
	for (i = 0; i < N; i++) {
		assert_int_equal(r->started[i], 0);
		assert_int_equal(r->finished[i], 1);
		assert_int_equal(r->st[i], EXEC_SKIPPED);
		assert_string_equal(r->err[i].msg, "skipped: cannot start a thread: Resource temporarily unavailable");
	}
}

static void test_no_worker_started(void **state)
{
	struct arena a = ARENA_INIT;
	struct rec r = { .fail = { 0 } };
	struct executor ex;

	(void)state;
	assert_int_equal(run(&a, &r, 4, 1, &ex), SLUICE_EDB);
	assert_all_skipped_unstarted(&r, &ex);
	executor_release(&ex);
	arena_release(&a);
}

/* Without the signal thread Ctrl-C would be ignored: nothing runs. */
static void test_signal_thread_refused(void **state)
{
	struct arena a = ARENA_INIT;
	struct rec r = { .fail = { 0 } };
	struct executor ex;

	(void)state;
	assert_int_equal(run(&a, &r, 2, 0, &ex), SLUICE_EDB);
	assert_int_equal(ncreate, 1);   /* no worker was tried after it */
	assert_all_skipped_unstarted(&r, &ex);
	executor_release(&ex);
	arena_release(&a);
}

/* ---- the order one worker starts nodes in ---- */

#define BIG 400

struct order {
	size_t seq[BIG];
	size_t n;
};

static int order_run(void *ud, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	struct order *o = ud;

	(void)w;
	(void)reused;
	(void)err;
	o->seq[o->n++] = idx;
	return 0;
}

static const char *order_name(void *ud, size_t idx)
{
	(void)ud;
	(void)idx;
	return "n";
}

/*
 * A random DAG (fixed seed) on one worker: each pick is the ready node
 * with the longest critical path, the lowest index among equals, as a
 * scan of every ready node finds it.
 */
static void test_pick_order(void **state)
{
	static const struct exec_ops order_ops = { .run = order_run, .name = order_name };
	static unsigned char todo[BIG];
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, BIG);
	struct order got = { .n = 0 };
	size_t want[BIG], waiting[BIG], ready[BIG], nready = 0, i, k, *cycle, ncycle;
	unsigned seed = 17;
	struct executor ex;

	(void)state;
	for (i = 0; i < BIG; i++) {
		todo[i] = EXEC_RUN;
		/* 0 to 3 parents among the earlier nodes */
		for (k = rand_r(&seed) % 4; i && k > 0; k--)
			dag_add_edge(d, (size_t)rand_r(&seed) % i, i);
	}
	assert_int_equal(dag_check(d, &cycle, &ncycle), 0);
	for (i = 0; i < BIG; i++)
		if (!(waiting[i] = d->nparents[i]))
			ready[nready++] = i;
	for (i = 0; i < BIG; i++) {
		size_t best = 0, j;
		for (j = 1; j < nready; j++)
			if (d->prio[ready[j]] > d->prio[ready[best]] ||
			    (d->prio[ready[j]] == d->prio[ready[best]] && ready[j] < ready[best]))
				best = j;
		want[i] = ready[best];
		ready[best] = ready[--nready];
		for (k = 0; k < d->nchildren[want[i]]; k++)
			if (--waiting[d->children[want[i]][k]] == 0)
				ready[nready++] = d->children[want[i]][k];
	}
	memset(&ex, 0, sizeof(ex));
	ex.dag = d;
	ex.todo = todo;
	ex.threads = 1;
	ex.ops = &order_ops;
	ex.ud = &got;
	assert_int_equal(executor_run(&ex), 0);
	assert_int_equal(got.n, BIG);
	assert_memory_equal(got.seq, want, sizeof(want));
	executor_release(&ex);
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_skips_downstream_only),
		cmocka_unit_test(test_released_children_run_with_parent),
		cmocka_unit_test(test_some_workers_refused),
		cmocka_unit_test(test_no_worker_started),
		cmocka_unit_test(test_signal_thread_refused),
		cmocka_unit_test(test_pick_order),
	};

	/* a run waiting for a thread that never started would hang: fail instead */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
