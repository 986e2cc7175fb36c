/*
 * executor.c: worker threads over a DAG; see executor.h.
 *
 * One mutex guards the scheduler state. The ready set is a binary heap
 * on the highest priority (dag->prio, the critical path), then the lowest
 * index: O(log ready) per pick, since a node found up to date sends no
 * statement and 10,000 of them go through in a fraction of a second. A
 * signal thread waits with sigtimedwait so it can also notice the end of
 * the run; a SIGUSR1 sent to it alone wakes it then, so the end of a run
 * does not wait for its tick.
 *
 * A thread the system refuses to start (pthread_create fails: EAGAIN at a
 * thread or memory limit) must not be waited for. The run goes on with
 * the workers that did start; with none, or without the signal thread
 * (a run that ignored Ctrl-C), nothing runs and every node is reported
 * skipped with the reason.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "executor.h"
#include "util/xalloc.h"

struct exec_private {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t *waiting;          /* per node: unfinished parents among todo */
	unsigned char *released;  /* per node: its children were let start before it ended */
	size_t *ready;            /* ready node indices */
	size_t nready;
	int running;
	int remaining;            /* todo nodes not yet finished */
	int done;                 /* the run is over: the signal thread may leave */
	int draining;             /* SIGUSR1: start nothing new, let what runs finish */
	struct exec_worker *workers;
	int failed;
};

void exec_worker_busy(struct exec_worker *w, struct sluice_conn *c)
{
	pthread_mutex_lock(&w->ex->priv->lock);
	w->busy = c;
	pthread_mutex_unlock(&w->ex->priv->lock);
}

int exec_cancelled(const struct exec_worker *w)
{
	return __atomic_load_n(&w->ex->signo, __ATOMIC_SEQ_CST) != 0;
}

/* Whether ready node a starts before b: the longer critical path, then the lower index. */
static int ready_before(const struct dag *d, size_t a, size_t b)
{
	return d->prio[a] > d->prio[b] || (d->prio[a] == d->prio[b] && a < b);
}

/* Lock held. */
static void ready_push(struct exec_private *p, const struct dag *d, size_t idx)
{
	size_t k = p->nready++;

	while (k && ready_before(d, idx, p->ready[(k - 1) / 2])) {
		p->ready[k] = p->ready[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	p->ready[k] = idx;
}

/* Release the children of a finished node. Lock held. */
static void release_children(struct executor *ex, size_t idx)
{
	const struct dag *d = ex->dag;
	struct exec_private *p = ex->priv;
	size_t k;

	for (k = 0; k < d->nchildren[idx]; k++) {
		size_t c = d->children[idx][k];
		if (ex->todo[c] && ex->status[c] == EXEC_PENDING && --p->waiting[c] == 0)
			ready_push(p, d, c);
	}
}

/* Mark node i and, transitively, its todo descendants skipped. Lock held. */
static void skip_downstream(struct executor *ex, size_t i, struct exec_worker *w, const char *why_name)
{
	const struct dag *d = ex->dag;
	struct exec_private *p = ex->priv;
	size_t *stack = xmalloc(d->n * sizeof(size_t)), top = 0, k;

	stack[top++] = i;
	while (top) {
		size_t n = stack[--top];
		for (k = 0; k < d->nchildren[n]; k++) {
			size_t c = d->children[n][k];
			struct sluice_err e = SLUICE_ERR_INIT;
			/* released early, it is ready or running: it fails by itself */
			if (!ex->todo[c] || ex->status[c] != EXEC_PENDING || !p->waiting[c])
				continue;
			ex->status[c] = EXEC_SKIPPED;
			p->remaining--;
			err_set(&e, SLUICE_EDB, "skipped: upstream '%s' failed", why_name);
			if (ex->ops->finished && ex->todo[c] == EXEC_RUN)
				ex->ops->finished(ex->ud, w, c, 0, EXEC_SKIPPED, &e);
			stack[top++] = c;
		}
	}
	free(stack);
}

static int pick_ready(struct exec_private *p, const struct dag *d, size_t *out)
{
	size_t k = 0, c, last;

	if (!p->nready)
		return 0;
	*out = p->ready[0];
	last = p->ready[--p->nready];
	/* the last one sifts down from the top */
	while ((c = 2 * k + 1) < p->nready) {
		if (c + 1 < p->nready && ready_before(d, p->ready[c + 1], p->ready[c]))
			c++;
		if (!ready_before(d, p->ready[c], last))
			break;
		p->ready[k] = p->ready[c];
		k = c;
	}
	if (p->nready)
		p->ready[k] = last;
	return 1;
}

static void *worker_main(void *arg)
{
	struct exec_worker *w = arg;
	struct executor *ex = w->ex;
	struct exec_private *p = ex->priv;
	const struct dag *d = ex->dag;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		size_t idx;
		int seq, rc, reused = 0;
		struct sluice_err err = SLUICE_ERR_INIT;
		enum exec_status st;

		while (!p->nready && p->remaining > 0 && !ex->signo && !p->draining)
			pthread_cond_wait(&p->cond, &p->lock);
		if (ex->signo || p->draining || p->remaining <= 0 || !pick_ready(p, d, &idx))
			break;
		if (ex->todo[idx] == EXEC_PASS) {
			ex->status[idx] = EXEC_SUCCESS;
			p->remaining--;
			release_children(ex, idx);
			pthread_cond_broadcast(&p->cond);
			continue;
		}
		seq = ++ex->nstarted;
		p->running++;
		if (ex->ops->started)
			ex->ops->started(ex->ud, w, idx, seq);
		pthread_mutex_unlock(&p->lock);

		rc = ex->ops->run(ex->ud, w, idx, &reused, &err);

		pthread_mutex_lock(&p->lock);
		w->busy = NULL;
		p->running--;
		p->remaining--;
		st = rc ? EXEC_ERROR : reused ? EXEC_REUSED : EXEC_SUCCESS;
		if (rc && ex->signo && !err.msg[0])
			err_set(&err, SLUICE_ECANCEL, "cancelled");
		ex->status[idx] = st;
		if (ex->ops->finished)
			ex->ops->finished(ex->ud, w, idx, seq, st, &err);
		if (rc) {
			p->failed = 1;
			skip_downstream(ex, idx, w, ex->ops->name(ex->ud, idx));
		} else if (!p->released[idx]) {
			release_children(ex, idx);
		}
		pthread_cond_broadcast(&p->cond);
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void exec_release_children(struct exec_worker *w, size_t idx)
{
	struct executor *ex = w->ex;
	struct exec_private *p = ex->priv;

	pthread_mutex_lock(&p->lock);
	if (!p->released[idx]) {
		p->released[idx] = 1;
		release_children(ex, idx);
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

static void *signal_main(void *arg)
{
	struct executor *ex = arg;
	struct exec_private *p = ex->priv;
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick), i;

		pthread_mutex_lock(&p->lock);
		if (p->done) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		if (sig == SIGUSR1) {
			p->draining = 1;
			pthread_cond_broadcast(&p->cond);
		} else if (sig > 0) {
			__atomic_store_n(&ex->signo, sig, __ATOMIC_SEQ_CST);
			for (i = 0; i < ex->threads; i++)
				if (p->workers[i].busy && p->workers[i].busy->drv->cancel)
					p->workers[i].busy->drv->cancel(p->workers[i].busy);
			pthread_cond_broadcast(&p->cond);
		}
		pthread_mutex_unlock(&p->lock);
	}
}

int executor_run(struct executor *ex)
{
	const struct dag *d = ex->dag;
	struct exec_private *p = xcalloc(1, sizeof(*p));
	pthread_t *tids, sigtid;
	sigset_t set, old;
	size_t i, k;
	int t, sig_started, create_errno = 0;

	ex->priv = p;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	ex->status = xcalloc(d->n ? d->n : 1, sizeof(*ex->status));
	p->waiting = xcalloc(d->n ? d->n : 1, sizeof(size_t));
	p->released = xcalloc(d->n ? d->n : 1, 1);
	p->ready = xmalloc((d->n ? d->n : 1) * sizeof(size_t));
	for (i = 0; i < d->n; i++) {
		if (!ex->todo[i])
			continue;
		if (ex->todo[i] == EXEC_RUN)
			ex->ntodo++;
		p->remaining++;
		for (k = 0; k < d->nparents[i]; k++)
			if (ex->todo[d->parents[i][k]])
				p->waiting[i]++;
		if (!p->waiting[i])
			ready_push(p, d, i);
	}
	if (ex->threads < 1)
		ex->threads = 1;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	{
		/* A stop that came before the run (held by main.c) cancels it before any job starts. */
		struct timespec now = { 0, 0 };
		sigset_t stop;
		int sig;

		sigemptyset(&stop);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGTERM);
		if ((sig = sigtimedwait(&stop, NULL, &now)) > 0)
			ex->signo = sig;
	}
	p->workers = xcalloc((size_t)ex->threads, sizeof(*p->workers));
	tids = xcalloc((size_t)ex->threads, sizeof(*tids));
	for (t = 0; t < ex->threads; t++) {
		p->workers[t].id = t + 1;
		p->workers[t].ex = ex;
	}
	/* pthread_create returns the error number; it does not set errno */
	sig_started = !(create_errno = pthread_create(&sigtid, NULL, signal_main, ex));
	ex->nworkers = 0;
	while (sig_started && ex->nworkers < ex->threads &&
	       !(create_errno = pthread_create(&tids[ex->nworkers], NULL, worker_main, &p->workers[ex->nworkers])))
		ex->nworkers++;
	for (t = 0; t < ex->nworkers; t++)
		pthread_join(tids[t], NULL);
	pthread_mutex_lock(&p->lock);
	p->done = 1;
	/* Whatever never started was cancelled, or had no thread to run on. */
	for (i = 0; i < d->n; i++)
		if (ex->todo[i] && ex->status[i] == EXEC_PENDING) {
			struct sluice_err e = SLUICE_ERR_INIT;
			ex->status[i] = EXEC_SKIPPED;
			if (ex->nworkers)
				err_set(&e, SLUICE_ECANCEL, "skipped: run cancelled");
			else
				err_set(&e, SLUICE_EIO, "skipped: cannot start a thread: %s", strerror(create_errno));
			p->failed = 1;
			if (ex->ops->finished && ex->todo[i] == EXEC_RUN)
				ex->ops->finished(ex->ud, &p->workers[0], i, 0, EXEC_SKIPPED, &e);
		}
	pthread_mutex_unlock(&p->lock);
	if (sig_started) {
		/*
		 * Wake it rather than wait out its tick (up to 100 ms on every
		 * run): it sees done before it looks at the signal, and one it
		 * has not taken dies with it, as it is sent to it alone.
		 */
		pthread_kill(sigtid, SIGUSR1);
		pthread_join(sigtid, NULL);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(tids);
	if (p->draining && !ex->signo)
		ex->signo = SIGTERM;   /* drained: ended like a termination, but without cancelling */
	if (ex->signo)
		return SLUICE_ECANCEL;
	return p->failed ? SLUICE_EDB : 0;
}

void executor_release(struct executor *ex)
{
	struct exec_private *p = ex->priv;

	if (p) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p->waiting);
		free(p->released);
		free(p->ready);
		free(p->workers);
		free(p);
	}
	free(ex->status);
	ex->priv = NULL;
	ex->status = NULL;
}
